//! JSON functions: `TO_JSON_STRING` and `EXTRACTJSONFIELD`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, DecimalType, Float64Type, Int32Type, Int64Type, TimeUnit,
};
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{ScalarUDF, Signature, Volatility};
use serde_json::Value;

use super::{Arrays, KsqlFunction, returns};

pub fn functions() -> Vec<ScalarUDF> {
    vec![
        KsqlFunction::udf("to_json_string", Signature::any(1, Volatility::Immutable), returns::<0>, to_json_string),
        KsqlFunction::udf(
            "extractjsonfield",
            Signature::exact(vec![DataType::Utf8, DataType::Utf8], Volatility::Immutable),
            returns::<0>,
            extract_json_field,
        ),
    ]
}

/// `TO_JSON_STRING(x)`: any value as JSON text (`null` for null); dates, times and
/// timestamps as ISO-8601 strings, bytes as base64.
fn to_json_string(args: &Arrays, _: &DataType) -> Result<ArrayRef> {
    let column = &args[0];
    let strings: StringArray = (0..column.len()).map(|row| Some(json_value(column, row).to_string())).collect();
    Ok(Arc::new(strings))
}

/// One value of an array as JSON.
pub fn json_value(array: &ArrayRef, row: usize) -> Value {
    if array.is_null(row) {
        return Value::Null;
    }
    match array.data_type() {
        DataType::Boolean => Value::Bool(array.as_boolean().value(row)),
        DataType::Int32 => Value::from(array.as_primitive::<Int32Type>().value(row)),
        DataType::Int64 => Value::from(array.as_primitive::<Int64Type>().value(row)),
        DataType::Float64 => {
            let f = array.as_primitive::<Float64Type>().value(row);
            serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
        }
        DataType::Decimal128(_, scale) => {
            let text = Decimal128Type::format_decimal(array.as_primitive::<Decimal128Type>().value(row), 38, *scale);
            text.parse::<serde_json::Number>().map_or(Value::String(text), Value::Number)
        }
        DataType::Utf8 => Value::String(array.as_string::<i32>().value(row).to_owned()),
        DataType::Binary => Value::String(crate::format::base64_encode(array.as_binary::<i32>().value(row))),
        DataType::Date32 => {
            let days = array.as_primitive::<Date32Type>().value(row);
            let date = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)
                .and_then(|d| d.checked_add_signed(chrono::Duration::days(i64::from(days))));
            date.map_or(Value::Null, |d| Value::String(d.format("%Y-%m-%d").to_string()))
        }
        DataType::Time32(TimeUnit::Millisecond) => {
            let millis = array.as_primitive::<datafusion::arrow::datatypes::Time32MillisecondType>().value(row);
            let time = chrono::NaiveTime::from_num_seconds_from_midnight_opt(
                (millis / 1000) as u32,
                (millis % 1000) as u32 * 1_000_000,
            );
            time.map_or(Value::Null, |t| Value::String(t.format("%H:%M:%S").to_string()))
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            let millis = array.as_primitive::<datafusion::arrow::datatypes::TimestampMillisecondType>().value(row);
            chrono::DateTime::from_timestamp_millis(millis)
                .map_or(Value::Null, |t| Value::String(t.format("%Y-%m-%dT%H:%M:%S%.3f").to_string()))
        }
        DataType::List(_) => {
            let list = array.as_list::<i32>();
            let items = list.value(row);
            Value::Array((0..items.len()).map(|i| json_value(&items, i)).collect())
        }
        DataType::Map(..) => {
            let map = array.as_map();
            let entries = map.value(row);
            let (keys, values) = (entries.column(0).clone(), entries.column(1).clone());
            Value::Object(
                (0..entries.len())
                    .map(|i| {
                        let key = match json_value(&keys, i) {
                            Value::String(s) => s,
                            other => other.to_string(),
                        };
                        (key, json_value(&values, i))
                    })
                    .collect(),
            )
        }
        DataType::Struct(fields) => {
            let parts = array.as_struct();
            Value::Object(
                fields.iter().zip(parts.columns()).map(|(f, c)| (f.name().clone(), json_value(c, row))).collect(),
            )
        }
        _ => match datafusion::arrow::util::display::array_value_to_string(array, row) {
            Ok(text) => Value::String(text),
            Err(_) => Value::Null,
        },
    }
}

/// `EXTRACTJSONFIELD(json, '$.path')`: the value at a JSONPath (`$.a.b`, `$.a[0]`,
/// `$['a']`) as text — a string bare, anything else as JSON — or null when absent or when
/// the text is not JSON.
fn extract_json_field(args: &Arrays, _: &DataType) -> Result<ArrayRef> {
    let (texts, paths) = (args[0].as_string::<i32>(), args[1].as_string::<i32>());
    let mut out = Vec::with_capacity(texts.len());
    for row in 0..texts.len() {
        if texts.is_null(row) || paths.is_null(row) {
            out.push(None);
            continue;
        }
        let Ok(value) = serde_json::from_str::<Value>(texts.value(row)) else {
            out.push(None);
            continue;
        };
        let Some(steps) = json_path(paths.value(row)) else {
            return exec_err!("Invalid JSON path: {}", paths.value(row));
        };
        let mut current = Some(&value);
        for step in &steps {
            current = match (current, step) {
                (Some(Value::Object(map)), PathStep::Field(name)) => map.get(name),
                (Some(Value::Array(items)), PathStep::Index(i)) => items.get(*i),
                _ => None,
            };
        }
        out.push(match current {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => Some(other.to_string()),
        });
    }
    Ok(Arc::new(StringArray::from(out)))
}

enum PathStep {
    Field(String),
    Index(usize),
}

/// `$.a.b[0]['c']` as steps.
fn json_path(path: &str) -> Option<Vec<PathStep>> {
    let mut rest = path.trim().strip_prefix('$')?;
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            steps.push(PathStep::Field(after[..end].to_owned()));
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']')?;
            let inside = after[..end].trim();
            if let Some(quoted) = inside
                .strip_prefix('\'')
                .and_then(|s| s.strip_suffix('\''))
                .or_else(|| inside.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
            {
                steps.push(PathStep::Field(quoted.to_owned()));
            } else {
                steps.push(PathStep::Index(inside.parse().ok()?));
            }
            rest = &after[end + 1..];
        } else {
            return None;
        }
    }
    Some(steps)
}
