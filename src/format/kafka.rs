//! The KAFKA format: Kafka's primitive serialisers for a single column.

use bytes::Bytes;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BinaryArray, BinaryBuilder, Float64Array, Int32Array, Int64Array, PrimitiveBuilder, RecordBatch,
    StringArray, StringBuilder,
};
use datafusion::arrow::datatypes::{ArrowPrimitiveType, DataType, Float64Type, Int32Type, Int64Type, SchemaRef};

use super::{Decoded, FormatError, rows_without_columns};
use crate::sql::types::ksql_type_name;

/// One column, of a type Kafka's serialisers have.
pub fn check(schema: &SchemaRef) -> Result<(), FormatError> {
    match schema.fields().len() {
        0 => return Ok(()), // a keyless source: nothing to serialise
        1 => {}
        n => {
            let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            return Err(FormatError(format!(
                "The 'KAFKA' format only supports a single field. Got {n}: {}",
                names.join(", ")
            )));
        }
    }
    match schema.field(0).data_type() {
        DataType::Int32 | DataType::Int64 | DataType::Float64 | DataType::Utf8 | DataType::Binary => Ok(()),
        // ksqlDB names the kind of type only: 'ARRAY', not 'ARRAY<INTEGER>'.
        other => {
            let name = ksql_type_name(other);
            let kind = name.split(['<', '(']).next().unwrap_or(&name);
            Err(FormatError(format!("The 'KAFKA' format does not support type '{kind}'")))
        }
    }
}

pub fn decode(schema: &SchemaRef, payloads: &[&[u8]]) -> Result<Decoded, FormatError> {
    let mut errors = Vec::new();
    let column: Option<ArrayRef> = match schema.fields().first().map(|f| f.data_type()) {
        None => None,
        Some(DataType::Int32) => {
            Some(fixed_width::<Int32Type, 4>(payloads, &mut errors, "Integer", i32::from_be_bytes))
        }
        Some(DataType::Int64) => Some(fixed_width::<Int64Type, 8>(payloads, &mut errors, "Long", i64::from_be_bytes)),
        Some(DataType::Float64) => {
            Some(fixed_width::<Float64Type, 8>(payloads, &mut errors, "Double", f64::from_be_bytes))
        }
        Some(DataType::Utf8) => {
            let mut b = StringBuilder::with_capacity(payloads.len(), payloads.iter().map(|p| p.len()).sum());
            for (i, p) in payloads.iter().enumerate() {
                match std::str::from_utf8(p) {
                    Ok(s) => b.append_value(s),
                    Err(e) => errors.push((i, format!("the value is not valid UTF-8: {e}"))),
                }
            }
            Some(Arc::new(b.finish()))
        }
        Some(DataType::Binary) => {
            let mut b = BinaryBuilder::with_capacity(payloads.len(), payloads.iter().map(|p| p.len()).sum());
            for p in payloads {
                b.append_value(p);
            }
            Some(Arc::new(b.finish()))
        }
        Some(other) => return Err(FormatError(format!("The 'KAFKA' format does not support type '{other}'"))),
    };
    let batch = match column {
        Some(column) => RecordBatch::try_new(schema.clone(), vec![column])?,
        None => rows_without_columns(schema, payloads.len())?,
    };
    Ok(Decoded { batch, errors, schema_ids: None })
}

/// Decodes payloads of exactly `N` bytes each (Kafka's INT, BIGINT, DOUBLE serialisers);
/// others are errors with Kafka's message.
fn fixed_width<T: ArrowPrimitiveType, const N: usize>(
    payloads: &[&[u8]],
    errors: &mut Vec<(usize, String)>,
    kind: &str,
    from_bytes: impl Fn([u8; N]) -> T::Native,
) -> ArrayRef {
    let mut builder = PrimitiveBuilder::<T>::with_capacity(payloads.len());
    for (i, payload) in payloads.iter().enumerate() {
        match <[u8; N]>::try_from(*payload) {
            Ok(bytes) => builder.append_value(from_bytes(bytes)),
            Err(_) => errors.push((i, size_error(kind, N, payload.len()))),
        }
    }
    Arc::new(builder.finish())
}

/// Kafka's message for a payload of the wrong size.
fn size_error(kind: &str, expected: usize, got: usize) -> String {
    format!("Size of data received by {kind}Deserializer is not {expected} (it is {got})")
}

pub fn encode(batch: &RecordBatch) -> Result<Vec<Option<Bytes>>, FormatError> {
    let Some(column) = batch.columns().first() else {
        return Ok(vec![None; batch.num_rows()]);
    };
    let any = column.as_any();
    let encoded: Vec<Option<Bytes>> = if let Some(a) = any.downcast_ref::<Int32Array>() {
        a.iter().map(|v| v.map(|v| Bytes::copy_from_slice(&v.to_be_bytes()))).collect()
    } else if let Some(a) = any.downcast_ref::<Int64Array>() {
        a.iter().map(|v| v.map(|v| Bytes::copy_from_slice(&v.to_be_bytes()))).collect()
    } else if let Some(a) = any.downcast_ref::<Float64Array>() {
        a.iter().map(|v| v.map(|v| Bytes::copy_from_slice(&v.to_be_bytes()))).collect()
    } else if let Some(a) = any.downcast_ref::<StringArray>() {
        a.iter().map(|v| v.map(|v| Bytes::copy_from_slice(v.as_bytes()))).collect()
    } else if let Some(a) = any.downcast_ref::<BinaryArray>() {
        a.iter().map(|v| v.map(Bytes::copy_from_slice)).collect()
    } else {
        return Err(FormatError(format!("The 'KAFKA' format does not support type '{}'", column.data_type())));
    };
    Ok(encoded)
}
