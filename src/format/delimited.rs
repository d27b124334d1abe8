//! The DELIMITED format: the columns in order, separated by a delimiter; an empty field is
//! null. Decoded with arrow-csv's push decoder.

use bytes::Bytes;
use datafusion::arrow::csv::reader::ReaderBuilder;
use datafusion::arrow::csv::writer::WriterBuilder;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;

use super::{Decoded, FormatError, FormatOptions, decode_isolating, split_lines, textual_columns};

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
    Ok(Decoded { batch, errors: decoded.errors })
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

pub fn encode(batch: &RecordBatch, options: &FormatOptions) -> Result<Vec<Option<Bytes>>, FormatError> {
    let textual = super::java_doubles(textual_columns(batch)?)?;
    let mut writer = WriterBuilder::new().with_header(false).with_delimiter(options.delimiter).build(Vec::new());
    writer.write(&textual)?;
    let mut lines = split_lines(writer.into_inner(), batch.num_rows())?;
    if batch.num_columns() == 1 {
        // The CSV writer quotes a record of one empty field (`""`) to tell it from no
        // record; here each row is its own record, and an empty field is null.
        for line in lines.iter_mut().flatten() {
            if line.as_ref() == b"\"\"" {
                line.clear();
            }
        }
    }
    Ok(lines)
}
