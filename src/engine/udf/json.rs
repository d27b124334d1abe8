//! `TO_JSON_STRING`: any value as the JSON text ksqlDB writes for it. (ksqlDB's other JSON
//! functions read JSON text; they are in `json_text`.)
//!
//! ksqlDB prepares the value and has Jackson write it: dates as `yyyy-MM-dd`, times as
//! `LocalTime` writes them (`HH:mm`, or `HH:mm:ss` when the seconds are not 0; milliseconds
//! dropped), timestamps as UTC `yyyy-MM-ddTHH:mm:ss.SSS`, bytes as base64, struct fields and
//! map keys sorted; doubles as Java's `Double.toString` (NaN and the infinities as strings),
//! decimals in plain notation with their scale, and strings with Jackson's escapes.

use std::cmp::Ordering;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, DecimalType, Float64Type, Int32Type, Int64Type, Time32MillisecondType,
    TimeUnit, TimestampMillisecondType,
};
use datafusion::common::Result;
use datafusion::logical_expr::{ScalarUDF, Signature, Volatility};

use super::json_text::quote;
use super::{Arrays, KsqlFunction, returns};

pub fn functions() -> Vec<ScalarUDF> {
    vec![KsqlFunction::udf("to_json_string", Signature::any(1, Volatility::Immutable), returns::<0>, to_json_string)]
}

/// `TO_JSON_STRING(x)`: the value as compact JSON text, `null` for NULL.
fn to_json_string(args: &Arrays, _: &DataType) -> Result<ArrayRef> {
    let column = &args[0];
    let mut out = Vec::with_capacity(column.len());
    let mut text = String::new();
    for row in 0..column.len() {
        text.clear();
        write_json(column, row, &mut text)?;
        out.push(Some(text.clone()));
    }
    super::words::string_array(&out)
}

/// Java's `String.compareTo`: by UTF-16 units.
fn java_order(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// One value of an array as JSON text, appended to `out`.
fn write_json(array: &ArrayRef, row: usize, out: &mut String) -> Result<()> {
    if array.is_null(row) {
        out.push_str("null");
        return Ok(());
    }
    match array.data_type() {
        DataType::Null => out.push_str("null"),
        DataType::Boolean => out.push_str(if array.as_boolean().value(row) { "true" } else { "false" }),
        DataType::Int32 => out.push_str(&array.as_primitive::<Int32Type>().value(row).to_string()),
        DataType::Int64 => out.push_str(&array.as_primitive::<Int64Type>().value(row).to_string()),
        DataType::Float64 => {
            let value = array.as_primitive::<Float64Type>().value(row);
            let text = crate::format::java_double(value);
            // Jackson quotes what is not a JSON number.
            if value.is_finite() { out.push_str(&text) } else { quote(&text, out) }
        }
        DataType::Decimal128(precision, scale) => {
            let value = array.as_primitive::<Decimal128Type>().value(row);
            out.push_str(&Decimal128Type::format_decimal(value, *precision, *scale));
        }
        DataType::Utf8 => quote(array.as_string::<i32>().value(row), out),
        DataType::Binary => quote(&crate::format::base64_encode(array.as_binary::<i32>().value(row)), out),
        DataType::Date32 => {
            let days = array.as_primitive::<Date32Type>().value(row);
            let date = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)
                .and_then(|d| d.checked_add_signed(chrono::Duration::days(i64::from(days))));
            match date {
                Some(date) => quote(&date.format("%Y-%m-%d").to_string(), out),
                None => out.push_str("null"),
            }
        }
        DataType::Time32(TimeUnit::Millisecond) => {
            let seconds = array.as_primitive::<Time32MillisecondType>().value(row).div_euclid(1000);
            let (hours, minutes, seconds) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
            let text = if seconds == 0 {
                format!("{hours:02}:{minutes:02}")
            } else {
                format!("{hours:02}:{minutes:02}:{seconds:02}")
            };
            quote(&text, out);
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            let millis = array.as_primitive::<TimestampMillisecondType>().value(row);
            match chrono::DateTime::from_timestamp_millis(millis) {
                Some(t) => quote(&t.format("%Y-%m-%dT%H:%M:%S%.3f").to_string(), out),
                None => out.push_str("null"),
            }
        }
        DataType::List(_) => {
            let items = array.as_list::<i32>().value(row);
            out.push('[');
            for i in 0..items.len() {
                if i > 0 {
                    out.push(',');
                }
                write_json(&items, i, out)?;
            }
            out.push(']');
        }
        DataType::Map(..) => {
            let entries = array.as_map().value(row);
            let (keys, values) = (entries.column(0), entries.column(1));
            let mut sorted: Vec<(String, usize)> = (0..entries.len()).map(|i| (key_text(keys, i), i)).collect();
            sorted.sort_by(|(a, _), (b, _)| java_order(a, b));
            out.push('{');
            let mut first = true;
            for (n, (key, i)) in sorted.iter().enumerate() {
                // A repeated key keeps its last value (Java's `TreeMap.put`).
                if sorted.get(n + 1).is_some_and(|(next, _)| next == key) {
                    continue;
                }
                if !first {
                    out.push(',');
                }
                first = false;
                quote(key, out);
                out.push(':');
                write_json(values, *i, out)?;
            }
            out.push('}');
        }
        DataType::Struct(fields) => {
            let columns = array.as_struct().columns();
            let mut order: Vec<usize> = (0..fields.len()).collect();
            order.sort_by(|&a, &b| java_order(fields[a].name(), fields[b].name()));
            out.push('{');
            for (n, i) in order.into_iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                quote(fields[i].name(), out);
                out.push(':');
                write_json(&columns[i], row, out)?;
            }
            out.push('}');
        }
        DataType::Utf8View
        | DataType::LargeUtf8
        | DataType::Int8
        | DataType::Int16
        | DataType::Float32
        | DataType::Date64
        | DataType::Time32(_)
        | DataType::Time64(_)
        | DataType::Timestamp(..) => {
            // Written as ksqlDB's type of the same kind.
            let wider = match array.data_type() {
                DataType::Float32 => DataType::Float64,
                DataType::Int8 | DataType::Int16 => DataType::Int32,
                DataType::Date64 => DataType::Date32,
                DataType::Time32(_) | DataType::Time64(_) => DataType::Time32(TimeUnit::Millisecond),
                DataType::Timestamp(..) => DataType::Timestamp(TimeUnit::Millisecond, None),
                _ => DataType::Utf8,
            };
            let cast = datafusion::arrow::compute::cast(&array.slice(row, 1), &wider)?;
            write_json(&cast, 0, out)?;
        }
        _ => {
            let text = datafusion::arrow::util::display::array_value_to_string(array, row)?;
            quote(&text, out);
        }
    }
    Ok(())
}

/// A map key as text (ksqlDB's keys are strings; `toString` of anything else).
fn key_text(keys: &ArrayRef, i: usize) -> String {
    match keys.data_type() {
        DataType::Utf8 => keys.as_string::<i32>().value(i).to_owned(),
        _ => datafusion::arrow::util::display::array_value_to_string(keys, i).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Float64Array, StringArray, Time32MillisecondArray};

    use super::*;

    fn json(array: ArrayRef) -> Vec<String> {
        let out = to_json_string(&[array], &DataType::Utf8).unwrap();
        out.as_string::<i32>().iter().map(|s| s.unwrap().to_owned()).collect()
    }

    #[test]
    fn doubles_are_javas() {
        let doubles = Float64Array::from(vec![Some(1e10), Some(100.0), Some(f64::NAN), Some(f64::NEG_INFINITY), None]);
        assert_eq!(json(Arc::new(doubles)), ["1.0E10", "100.0", "\"NaN\"", "\"-Infinity\"", "null"]);
    }

    #[test]
    fn times_drop_zero_seconds_and_strings_escape_like_jackson() {
        let times = Time32MillisecondArray::from(vec![37_800_000, 37_805_123]);
        assert_eq!(json(Arc::new(times)), ["\"10:30\"", "\"10:30:05\""]);
        let strings = StringArray::from(vec!["a\"\u{1f}é/"]);
        assert_eq!(json(Arc::new(strings)), ["\"a\\\"\\u001Fé/\""]);
    }
}
