//! Comparing what a query wrote with what a test expects, as ksqlDB's
//! `ExpectedRecordComparator` does: numbers by value (an INT 1 equals a DOUBLE 1.0, a DECIMAL
//! 1.10 equals 1.1), object fields by name or by their upper-cased name, arrays element by
//! element, everything else exactly.

use serde_json::Value;

/// True when `actual` is what `expected` describes.
pub fn matches(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Number(e), Value::Number(a)) => match (e.as_i64(), a.as_i64()) {
            (Some(e), Some(a)) => e == a,
            _ => match (e.as_f64(), a.as_f64()) {
                (Some(e), Some(a)) => e == a || (e - a).abs() <= f64::EPSILON * e.abs().max(a.abs()),
                _ => e.to_string() == a.to_string(),
            },
        },
        (Value::Object(e), Value::Object(a)) => {
            e.len() == a.len()
                && e.iter().all(|(name, value)| {
                    // A field the actual row lacks reads as null, as ksqlDB's comparator reads it.
                    let found = a.get(name).or_else(|| a.get(&name.to_uppercase()));
                    matches(value, found.unwrap_or(&Value::Null))
                })
        }
        (Value::Array(e), Value::Array(a)) => e.len() == a.len() && e.iter().zip(a).all(|(e, a)| matches(e, a)),
        // A number written as text (a DECIMAL in a string, say) against a number.
        (Value::String(e), Value::Number(a)) | (Value::Number(a), Value::String(e)) => {
            e.parse::<f64>().ok().zip(a.as_f64()).is_some_and(|(e, a)| e == a)
        }
        (e, a) => e == a,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn numbers_compare_by_value_and_fields_by_upper_cased_name() {
        assert!(matches(&json!(1), &json!(1.0)));
        assert!(matches(&json!(1.10), &json!(1.1)));
        assert!(!matches(&json!(1), &json!(2)));
        assert!(matches(&json!({"id": 1}), &json!({"ID": 1})));
        assert!(!matches(&json!({"ID": 1}), &json!({"ID": 1, "X": null})));
        assert!(matches(&json!([1, {"a": "x"}]), &json!([1.0, {"A": "x"}])));
        assert!(!matches(&json!("1"), &json!("01")));
    }
}
