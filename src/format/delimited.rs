//! The DELIMITED format: the columns in order, separated by a delimiter; an empty field is
//! null. Decoded with arrow-csv's push decoder; written as ksqlDB writes it (commons-csv's
//! quoting, Java's text of a DOUBLE).

use bytes::Bytes;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::csv::reader::ReaderBuilder;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;

use super::{Decoded, FormatError, FormatOptions, decode_isolating, textual_columns};

/// Only flat columns: no ARRAY, MAP or STRUCT.
pub fn check(schema: &SchemaRef) -> Result<(), FormatError> {
    for field in schema.fields() {
        if matches!(field.data_type(), DataType::List(_) | DataType::Map(..) | DataType::Struct(_)) {
            let kind = match field.data_type() {
                DataType::List(_) => "ARRAY",
                DataType::Map(..) => "MAP",
                _ => "STRUCT",
            };
            return Err(FormatError(format!(
                "The 'DELIMITED' format does not support type '{kind}' (column {})",
                field.name()
            )));
        }
    }
    Ok(())
}

pub fn decode(schema: &SchemaRef, options: &FormatOptions, payloads: &[&[u8]]) -> Result<Decoded, FormatError> {
    // Times are written as numbers (epoch milliseconds, days, milliseconds of the day):
    // read them as integers, then cast.
    let wire = wire_schema(schema);
    let decoded = decode_wire(&wire, options, payloads)?;
    if wire == *schema {
        return Ok(decoded);
    }
    let columns = decoded
        .batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(column, field)| datafusion::arrow::compute::cast(column, field.data_type()))
        .collect::<Result<Vec<_>, _>>()?;
    let options = datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(decoded.batch.num_rows()));
    let batch = RecordBatch::try_new_with_options(schema.clone(), columns, &options)?;
    Ok(Decoded { batch, errors: decoded.errors, schema_ids: None })
}

/// The schema as the text holds it: temporal columns as integers.
fn wire_schema(schema: &SchemaRef) -> SchemaRef {
    let fields: Vec<datafusion::arrow::datatypes::Field> = schema
        .fields()
        .iter()
        .map(|f| {
            let wire = match f.data_type() {
                DataType::Timestamp(..) => DataType::Int64,
                DataType::Date32 | DataType::Time32(_) => DataType::Int32,
                other => other.clone(),
            };
            f.as_ref().clone().with_data_type(wire)
        })
        .collect();
    std::sync::Arc::new(datafusion::arrow::datatypes::Schema::new(fields))
}

fn decode_wire(schema: &SchemaRef, options: &FormatOptions, payloads: &[&[u8]]) -> Result<Decoded, FormatError> {
    let null = regex_empty()?;
    let decode_many = |chunk: &[&[u8]]| -> Result<RecordBatch, String> {
        let mut decoder = ReaderBuilder::new(schema.clone())
            .with_header(false)
            .with_delimiter(options.delimiter)
            .with_null_regex(null.clone())
            .with_batch_size(chunk.len().max(1))
            .build_decoder();
        let mut text = Vec::with_capacity(chunk.iter().map(|p| p.len() + 1).sum());
        for payload in chunk {
            text.extend_from_slice(payload);
            text.push(b'\n');
        }
        super::feed(&text, |chunk| decoder.decode(chunk).map_err(|e| e.to_string()))?;
        decoder.decode(&[]).map_err(|e| e.to_string())?;
        Ok(decoder.flush().map_err(|e| e.to_string())?.unwrap_or_else(|| RecordBatch::new_empty(schema.clone())))
    };
    decode_isolating(schema, payloads, decode_many)
}

fn regex_empty() -> Result<regex::Regex, FormatError> {
    regex::Regex::new("^$").map_err(|e| FormatError(e.to_string()))
}

/// Each row as one line of text, as ksqlDB writes it (commons-csv 1.4's default format): a
/// null is an empty field; a field is quoted (its quotes doubled) when it holds the delimiter,
/// a quote or a line break, starts with a character up to `#` (a space, a tab), ends with one
/// up to a space, or, first on the line, is empty or starts outside printable ASCII.
pub fn encode(batch: &RecordBatch, options: &FormatOptions) -> Result<Vec<Option<Bytes>>, FormatError> {
    let textual = super::java_doubles(textual_columns(batch)?)?;
    let columns: Vec<ArrayRef> =
        textual.columns().iter().map(|c| cast(c, &DataType::Utf8)).collect::<Result<_, _>>()?;
    let strings: Vec<&StringArray> = columns.iter().map(|c| c.as_string::<i32>()).collect();
    let rows = batch.num_rows();
    let bytes: usize = strings.iter().map(|s| s.values().len() + rows).sum();
    let mut text = Vec::with_capacity(bytes + bytes / 8);
    let mut ends = Vec::with_capacity(rows);
    for row in 0..rows {
        for (i, column) in strings.iter().enumerate() {
            if i > 0 {
                text.push(options.delimiter);
            }
            if column.is_valid(row) {
                write_field(&mut text, column.value(row), i == 0, options.delimiter);
            }
        }
        ends.push(text.len());
    }
    Ok(super::row_views(text, ends))
}

fn write_field(out: &mut Vec<u8>, value: &str, first: bool, delimiter: u8) {
    if !needs_quotes(value, first, delimiter) {
        out.extend_from_slice(value.as_bytes());
        return;
    }
    out.push(b'"');
    for byte in value.bytes() {
        if byte == b'"' {
            out.push(b'"');
        }
        out.push(byte);
    }
    out.push(b'"');
}

/// commons-csv 1.4's rule for quoting a field (its `QuoteMode.MINIMAL`).
fn needs_quotes(value: &str, first: bool, delimiter: u8) -> bool {
    let Some(start) = value.chars().next() else { return first };
    let start = u32::from(start);
    // RFC 4180's TEXTDATA is 0x20-0x21, 0x23-0x2B, 0x2D-0x7E.
    let outside_text = start < 0x20 || (start > 0x21 && start < 0x23) || (start > 0x2B && start < 0x2D) || start > 0x7E;
    (first && outside_text)
        || start <= u32::from(b'#')
        || value.bytes().any(|b| b == b'\n' || b == b'\r' || b == b'"' || b == delimiter)
        || value.chars().last().is_some_and(|end| end <= ' ')
}
