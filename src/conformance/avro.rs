//! Test records in AVRO, as ksqlDB's test harness writes and reads them: a test's JSON value
//! is written with the topic subject's latest schema (the one the case gives, else the one the
//! statement registered), in Confluent's framing; what a query wrote is read back with the
//! schema its id names and compared as JSON.
//!
//! This goes through `apache-avro`, not Eddy's own codec (`arrow-avro`), so that the format is
//! checked against an independent implementation of Avro.

use std::collections::HashMap;

use apache_avro::Schema;
use apache_avro::schema::Name;
use apache_avro::types::Value as Avro;
use serde_json::{Number, Value};

use crate::format::confluent;
use crate::registry::SchemaType;
use crate::registry::client::SchemaRegistry;

/// `value` written with `subject`'s latest schema: magic byte, schema id, datum.
pub async fn to_bytes(registry: &dyn SchemaRegistry, subject: &str, value: &Value) -> Result<Vec<u8>, String> {
    let latest = registry
        .latest(subject)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no schema registered for {subject}"))?;
    if latest.schema.schema_type != SchemaType::Avro {
        return Err(format!("{subject}'s schema is not AVRO"));
    }
    let schema = crate::registry::parse_avro_text(&latest.schema.schema)?;
    let names = names_of(&schema)?;
    let mut bytes = Vec::new();
    confluent::frame(latest.id, &mut bytes);
    write_datum(value, &schema, &names, &mut bytes)?;
    // What was written must read back as the schema's.
    apache_avro::from_avro_datum(&schema, &mut &bytes[5..], None).map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// What `bytes` (Confluent-framed Avro) hold, as JSON.
pub fn to_json(registry: &dyn SchemaRegistry, bytes: &[u8]) -> Result<Value, String> {
    let (id, datum) = confluent::unframe(bytes, "AVRO")?;
    let registered = registry.schema_by_id(id).map_err(|e| e.to_string())?;
    let schema = crate::registry::parse_avro_text(&registered.schema)?;
    let names = names_of(&schema)?;
    let mut reader = datum;
    let value = apache_avro::from_avro_datum(&schema, &mut reader, None).map_err(|e| e.to_string())?;
    if !reader.is_empty() {
        return Err(format!("{} bytes after the datum", reader.len()));
    }
    json_of(&value, &schema, &names)
}

type Names = HashMap<Name, Schema>;

fn names_of(schema: &Schema) -> Result<Names, String> {
    let resolved = apache_avro::schema::ResolvedSchema::try_from(schema).map_err(|e| e.to_string())?;
    Ok(resolved.get_names().iter().map(|(name, schema)| (name.clone(), (*schema).clone())).collect())
}

fn resolve<'a>(schema: &'a Schema, names: &'a Names) -> Result<&'a Schema, String> {
    match schema {
        Schema::Ref { name } => names.get(name).ok_or_else(|| format!("unknown type {name}")),
        other => Ok(other),
    }
}

/// A test's JSON value written as an Avro datum of `schema` (ksqlDB's spec conventions: bytes
/// in base64, decimals as numbers, enums by symbol, records' fields by name ignoring case).
/// Written here rather than through `apache-avro`'s values so that a map's entries keep the
/// order the test gives them (its maps are hash maps).
fn write_datum(value: &Value, schema: &Schema, names: &Names, out: &mut Vec<u8>) -> Result<(), String> {
    let schema = resolve(schema, names)?;
    let mismatch = || format!("{value} is not a {schema:?}");
    // (Numbers may be given as text: `"10"`.)
    let int = || value.as_i64().or_else(|| value.as_str()?.parse().ok()).ok_or_else(mismatch);
    let int32 = || i32::try_from(int()?).map_err(|_| mismatch());
    match schema {
        Schema::Null if value.is_null() => {}
        Schema::Boolean => out.push(u8::from(value.as_bool().ok_or_else(mismatch)?)),
        Schema::Int | Schema::Date | Schema::TimeMillis => long(i64::from(int32()?), out),
        Schema::Long
        | Schema::TimeMicros
        | Schema::TimestampMillis
        | Schema::TimestampMicros
        | Schema::LocalTimestampMillis
        | Schema::LocalTimestampMicros => long(int()?, out),
        Schema::Float => out.extend_from_slice(&(value.as_f64().ok_or_else(mismatch)? as f32).to_le_bytes()),
        Schema::Double => out.extend_from_slice(&value.as_f64().ok_or_else(mismatch)?.to_le_bytes()),
        Schema::String | Schema::Uuid => {
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Null => return Err(mismatch()),
                other => other.to_string(),
            };
            long(text.len() as i64, out);
            out.extend_from_slice(text.as_bytes());
        }
        Schema::Bytes => {
            let bytes = base64(value).ok_or_else(mismatch)?;
            long(bytes.len() as i64, out);
            out.extend_from_slice(&bytes);
        }
        Schema::Fixed(fixed) => {
            let bytes = base64(value).filter(|b| b.len() == fixed.size).ok_or_else(mismatch)?;
            out.extend_from_slice(&bytes);
        }
        Schema::Enum(e) => {
            let symbol = value.as_str().ok_or_else(mismatch)?;
            long(e.symbols.iter().position(|s| s == symbol).ok_or_else(mismatch)? as i64, out);
        }
        Schema::Union(union) => {
            let variants = union.variants();
            let start = out.len();
            let written = variants.iter().enumerate().any(|(i, variant)| {
                if value.is_null() != matches!(variant, Schema::Null) {
                    return false;
                }
                out.truncate(start);
                long(i as i64, out);
                write_datum(value, variant, names, out).is_ok()
            });
            if !written {
                out.truncate(start);
                return Err(mismatch());
            }
        }
        Schema::Array(array) => {
            let items = value.as_array().ok_or_else(mismatch)?;
            if !items.is_empty() {
                long(items.len() as i64, out);
                for item in items {
                    write_datum(item, &array.items, names, out)?;
                }
            }
            out.push(0);
        }
        Schema::Map(map) => {
            let entries = value.as_object().ok_or_else(mismatch)?;
            if !entries.is_empty() {
                long(entries.len() as i64, out);
                for (key, item) in entries {
                    long(key.len() as i64, out);
                    out.extend_from_slice(key.as_bytes());
                    write_datum(item, &map.types, names, out)?;
                }
            }
            out.push(0);
        }
        Schema::Record(record) => {
            let object = value.as_object().ok_or_else(mismatch)?;
            for field in &record.fields {
                let given = object
                    .get(&field.name)
                    .or_else(|| object.iter().find(|(k, _)| k.eq_ignore_ascii_case(&field.name)).map(|(_, v)| v));
                let given = given.or(field.default.as_ref()).unwrap_or(&Value::Null);
                write_datum(given, &field.schema, names, out)?;
            }
        }
        Schema::Decimal(decimal) => {
            let bytes = confluent::decimal_bytes(unscaled(value, decimal.scale).ok_or_else(mismatch)?);
            match decimal.inner.as_ref() {
                Schema::Fixed(fixed) if fixed.size >= bytes.len() => {
                    let fill = if bytes[0] & 0x80 != 0 { 0xff } else { 0 };
                    out.extend(std::iter::repeat_n(fill, fixed.size - bytes.len()));
                    out.extend_from_slice(&bytes);
                }
                Schema::Fixed(_) => return Err(mismatch()),
                _ => {
                    long(bytes.len() as i64, out);
                    out.extend_from_slice(&bytes);
                }
            }
        }
        _ => return Err(mismatch()),
    }
    Ok(())
}

/// An Avro `long` (or `int`): zig-zag, then a base-128 varint.
fn long(value: i64, out: &mut Vec<u8>) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        out.push((zigzag as u8) | 0x80);
        zigzag >>= 7;
    }
    out.push(zigzag as u8);
}

fn base64(value: &Value) -> Option<Vec<u8>> {
    crate::format::base64_decode(value.as_str()?)
}

/// A decimal's digits without its point, at `scale`: a number, or a number as text.
fn unscaled(value: &Value, scale: usize) -> Option<i128> {
    match value {
        Value::Number(n) => confluent::unscaled(&n.to_string(), scale),
        Value::String(s) => confluent::unscaled(s, scale),
        _ => None,
    }
}

/// An Avro value as a test's JSON.
fn json_of(value: &Avro, schema: &Schema, names: &Names) -> Result<Value, String> {
    let schema = resolve(schema, names)?;
    let float = |f: f64| Number::from_f64(f).map_or(Value::Null, Value::Number);
    Ok(match (value, schema) {
        (Avro::Union(i, inner), Schema::Union(union)) => {
            let variant = union.variants().get(*i as usize).ok_or("union branch out of range")?;
            json_of(inner, variant, names)?
        }
        (Avro::Null, _) => Value::Null,
        (Avro::Boolean(b), _) => Value::Bool(*b),
        (Avro::Int(i) | Avro::Date(i) | Avro::TimeMillis(i), _) => Value::from(*i),
        (
            Avro::Long(i)
            | Avro::TimeMicros(i)
            | Avro::TimestampMillis(i)
            | Avro::TimestampMicros(i)
            | Avro::LocalTimestampMillis(i)
            | Avro::LocalTimestampMicros(i),
            _,
        ) => Value::from(*i),
        (Avro::Float(f), _) => float(f64::from(*f)),
        (Avro::Double(f), _) => float(*f),
        (Avro::String(s) | Avro::Enum(_, s), _) => Value::String(s.clone()),
        (Avro::Bytes(b) | Avro::Fixed(_, b), _) => Value::String(crate::format::base64_encode(b)),
        (Avro::Uuid(u), _) => Value::String(u.to_string()),
        (Avro::Decimal(d), Schema::Decimal(decimal)) => {
            let bytes = Vec::<u8>::try_from(d).map_err(|e| e.to_string())?;
            let unscaled = confluent::decimal_from_bytes(&bytes).ok_or("decimal wider than 128 bits")?;
            let text = confluent::decimal_text(unscaled, decimal.scale);
            serde_json::from_str(&text).map_err(|e| e.to_string())?
        }
        (Avro::Array(items), Schema::Array(array)) => {
            Value::Array(items.iter().map(|v| json_of(v, &array.items, names)).collect::<Result<_, _>>()?)
        }
        (Avro::Map(entries), Schema::Map(map)) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| Ok((k.clone(), json_of(v, &map.types, names)?)))
                .collect::<Result<_, String>>()?,
        ),
        (Avro::Record(fields), Schema::Record(record)) => Value::Object(
            fields
                .iter()
                .zip(&record.fields)
                .map(|((name, v), field)| Ok((name.clone(), json_of(v, &field.schema, names)?)))
                .collect::<Result<_, String>>()?,
        ),
        (other, schema) => return Err(format!("cannot show {other:?} of {schema:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_read_from_numbers_and_text_and_longs_are_zigzag_varints() {
        assert_eq!(unscaled(&serde_json::json!(65.21), 2), Some(6521));
        assert_eq!(unscaled(&serde_json::json!(-1.5), 2), Some(-150));
        assert_eq!(unscaled(&serde_json::json!("10"), 2), Some(1000));
        assert_eq!(unscaled(&serde_json::json!(true), 2), None);
        let mut out = Vec::new();
        for value in [0, -1, 1, -64, 64, i64::MAX] {
            long(value, &mut out);
        }
        assert_eq!(&out[..6], &[0, 1, 2, 127, 128, 1]);
    }
}
