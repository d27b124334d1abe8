//! The JSON format.
//!
//! ksqlDB matches JSON field names to columns case-insensitively, at every level of nested
//! structs, but never touches the keys of a MAP. arrow-json matches names exactly, so each
//! payload is parsed, its struct keys renamed to the schema's spelling (guided by the
//! schema, so map keys stay as they are), and the rows handed to arrow-json's decoder.
//! This costs a `serde_json::Value` per record; a tape-level rename is the faster path to
//! measure when the benchmarks call for it.

use datafusion::arrow::datatypes::{DataType, Fields, SchemaRef};
use datafusion::arrow::json::reader::ReaderBuilder;
use datafusion::arrow::json::writer::{LineDelimited, WriterBuilder};
use datafusion::arrow::record_batch::RecordBatch;
use serde_json::{Map, Value};

use super::{Decoded, FormatError, FormatOptions, decode_isolating, split_lines, textual_columns};

pub fn decode(schema: &SchemaRef, options: &FormatOptions, payloads: &[&[u8]]) -> Result<Decoded, FormatError> {
    let mut rows: Vec<Value> = Vec::with_capacity(payloads.len());
    let mut row_index: Vec<usize> = Vec::with_capacity(payloads.len());
    let mut errors: Vec<(usize, String)> = Vec::new();
    let unwrapped = !options.wrap_single_value && schema.fields().len() == 1;
    for (i, payload) in payloads.iter().enumerate() {
        let value: Value = match serde_json::from_slice(payload) {
            Ok(value) => value,
            Err(e) => {
                errors.push((i, format!("invalid JSON: {e}")));
                continue;
            }
        };
        let object = if unwrapped {
            Map::from_iter([(schema.field(0).name().clone(), value)])
        } else {
            match value {
                Value::Object(object) => object,
                other => {
                    errors.push((i, format!("expected a JSON object, found {}", kind(&other))));
                    continue;
                }
            }
        };
        match rename_struct(object, schema.fields()) {
            Ok(object) => {
                rows.push(Value::Object(object));
                row_index.push(i);
            }
            Err(reason) => errors.push((i, reason)),
        }
    }
    let decode_many = |rows: &[Value]| -> Result<RecordBatch, String> {
        let mut decoder = ReaderBuilder::new(schema.clone())
            .with_coerce_primitive(true)
            .build_decoder()
            .map_err(|e| e.to_string())?;
        decoder.serialize(rows).map_err(|e| e.to_string())?;
        Ok(decoder.flush().map_err(|e| e.to_string())?.unwrap_or_else(|| RecordBatch::new_empty(schema.clone())))
    };
    // Decode the parsed rows, isolating any that arrow-json refuses (a type mismatch).
    let decoded = decode_isolating(schema, &rows, decode_many)?;
    errors.extend(decoded.errors.into_iter().map(|(j, reason)| (row_index[j], reason)));
    errors.sort_by_key(|(i, _)| *i);
    Ok(Decoded { batch: decoded.batch, errors })
}

/// Renames the keys of a JSON object to the struct's field names (case-insensitively;
/// an exact match wins), recursing by type; keys that match no field are dropped.
fn rename_struct(object: Map<String, Value>, fields: &Fields) -> Result<Map<String, Value>, String> {
    let mut out = Map::with_capacity(fields.len());
    for (key, value) in object {
        let field = fields
            .iter()
            .find(|f| f.name() == &key)
            .or_else(|| fields.iter().find(|f| f.name().eq_ignore_ascii_case(&key)));
        if let Some(field) = field {
            out.insert(field.name().clone(), rename_value(value, field.data_type())?);
        }
    }
    Ok(out)
}

/// Follows the schema into `value`: struct keys renamed, map keys kept, BYTES turned from
/// ksqlDB's base64 into the hex arrow-json reads.
fn rename_value(value: Value, data_type: &DataType) -> Result<Value, String> {
    Ok(match (value, data_type) {
        (Value::Object(object), DataType::Struct(fields)) => Value::Object(rename_struct(object, fields)?),
        (Value::Array(items), DataType::List(item)) => {
            Value::Array(items.into_iter().map(|v| rename_value(v, item.data_type())).collect::<Result<_, _>>()?)
        }
        (Value::Object(object), DataType::Map(entries, _)) => {
            let DataType::Struct(kv) = entries.data_type() else { return Ok(Value::Object(object)) };
            let value_type = kv.get(1).map(|f| f.data_type().clone()).unwrap_or(DataType::Null);
            Value::Object(
                object
                    .into_iter()
                    .map(|(k, v)| Ok((k, rename_value(v, &value_type)?)))
                    .collect::<Result<_, String>>()?,
            )
        }
        (Value::String(text), DataType::Binary) => {
            let bytes = super::base64_decode(&text).ok_or_else(|| format!("'{text}' is not base64 (BYTES)"))?;
            Value::String(bytes.iter().map(|b| format!("{b:02x}")).collect())
        }
        (value, _) => value,
    })
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub fn encode(batch: &RecordBatch, options: &FormatOptions) -> Result<Vec<Option<Vec<u8>>>, FormatError> {
    let textual = textual_columns(batch)?;
    let mut writer = WriterBuilder::new().with_explicit_nulls(true).build::<_, LineDelimited>(Vec::new());
    writer.write(&textual)?;
    writer.finish()?;
    let mut lines = split_lines(writer.into_inner(), batch.num_rows())?;
    if !options.wrap_single_value && batch.num_columns() == 1 {
        // `{"NAME":value}` → `value`
        let prefix = serde_json::to_string(batch.schema().field(0).name()).unwrap_or_default().len() + 2;
        for line in lines.iter_mut().flatten() {
            if line.len() > prefix {
                *line = line[prefix..line.len() - 1].to_vec();
            }
        }
    }
    Ok(lines)
}
