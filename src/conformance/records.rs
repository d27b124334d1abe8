//! Test records to and from the bytes of a topic: a QTT record's key or value is written in
//! the JSON form of its format (an object for JSON, a CSV string for DELIMITED, a bare number
//! or string for KAFKA), and compared in that form.
//!
//! KAFKA goes through Eddy's own codecs, with JSON (unwrapped) as the bridge: JSON text is
//! decoded into a row of the side's schema and the row encoded with Kafka's serialisers, and
//! the other way round for what a query wrote.

use bytes::Bytes;
use serde_json::Value;

use std::sync::Arc;

use crate::catalog::Source;
use crate::format::{Codec, DELIMITED, FormatOptions, JSON, NONE};

/// A record's key or its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Key,
    Value,
}

fn side_of(source: &Source, side: Side) -> (&dyn Codec, &'static str) {
    match side {
        Side::Key => (source.key_codec.as_ref(), source.key_format.name()),
        Side::Value => (source.value_codec.as_ref(), source.value_format.name()),
    }
}

/// The bytes a test value stands for, written as `source` reads them (`None` for null, or
/// for the NONE format). Without a source, JSON text.
pub fn to_bytes(source: Option<&Source>, side: Side, value: &Value) -> Result<Option<Bytes>, String> {
    if value.is_null() {
        return Ok(None);
    }
    let Some(source) = source else {
        return Ok(Some(json_text(value).into()));
    };
    let (codec, format) = side_of(source, side);
    match format {
        NONE => Ok(None),
        JSON => Ok(Some(serde_json::to_vec(value).unwrap_or_default().into())),
        DELIMITED => Ok(Some(json_text(value).into())),
        _ => {
            if codec.schema().fields().is_empty() {
                return Ok(Some(json_text(value).into()));
            }
            let bridge = json_bridge(codec)?;
            let decoded =
                bridge.decode(&[serde_json::to_vec(value).unwrap_or_default().as_slice()]).map_err(|e| e.0)?;
            if let Some((_, error)) = decoded.errors.first() {
                return Err(format!(
                    "the test value {value} is not a {}: {error}",
                    codec.schema().field(0).data_type()
                ));
            }
            let mut encoded = codec.encode(&decoded.batch).map_err(|e| e.0)?;
            Ok(encoded.pop().flatten())
        }
    }
}

/// What `bytes` hold, in a test's JSON form, read as `source` writes them.
pub fn to_json(source: Option<&Source>, side: Side, bytes: Option<&[u8]>) -> Value {
    let Some(bytes) = bytes else { return Value::Null };
    let text = || Value::String(String::from_utf8_lossy(bytes).into_owned());
    let Some(source) = source else {
        return serde_json::from_slice(bytes).unwrap_or_else(|_| text());
    };
    let (codec, format) = side_of(source, side);
    match format {
        NONE => Value::Null,
        JSON => serde_json::from_slice(bytes).unwrap_or_else(|_| text()),
        DELIMITED => text(),
        _ => {
            let read = || -> Result<Value, String> {
                let decoded = codec.decode(&[bytes]).map_err(|e| e.0)?;
                if let Some((_, error)) = decoded.errors.first() {
                    return Err(error.clone());
                }
                let mut encoded = json_bridge(codec)?.encode(&decoded.batch).map_err(|e| e.0)?;
                let json = encoded.pop().flatten().ok_or("no bytes")?;
                serde_json::from_slice(&json).map_err(|e| e.to_string())
            };
            read().unwrap_or_else(|_| text())
        }
    }
}

/// A JSON codec over the same columns, a single one unwrapped.
fn json_bridge(codec: &dyn Codec) -> Result<Arc<dyn Codec>, String> {
    let options = FormatOptions { wrap_single_value: codec.schema().fields().len() != 1, ..FormatOptions::default() };
    crate::format::builtin(JSON).codec(codec.schema().clone(), options).map_err(|e| e.0)
}

/// A string as it is, anything else as JSON text.
fn json_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
