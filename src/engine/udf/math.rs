//! ksqlDB's `ROUND`: to the nearest integer as Java's `Math.round` (a DOUBLE becomes a
//! BIGINT, halves go up), or to `n` decimal places half away from zero (`BigDecimal`'s
//! `HALF_UP`), keeping a DECIMAL a DECIMAL.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Decimal128Array, Float64Array, Int64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Float64Type, Int64Type};
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::{ScalarUDF, Signature, Volatility};

use super::{Arrays, KsqlFunction};

pub fn functions() -> Vec<ScalarUDF> {
    vec![KsqlFunction::udf("round", Signature::variadic_any(Volatility::Immutable), round_type, round)]
}

fn round_type(args: &[DataType]) -> Result<DataType> {
    let places = args.len() == 2;
    Ok(match args.first() {
        Some(DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64) if !places => args[0].clone(),
        Some(DataType::Float32 | DataType::Float64) if !places => DataType::Int64,
        Some(DataType::Decimal128(p, s)) if !places => {
            DataType::Decimal128((*p - (*s).max(0) as u8 + 1).clamp(1, 38), 0)
        }
        Some(DataType::Decimal128(p, s)) => DataType::Decimal128(*p, *s),
        Some(t) if t.is_numeric() && places => DataType::Float64,
        Some(t) if t.is_null() => DataType::Float64,
        other => return plan_err!("Function 'round' does not accept parameters ({other:?})"),
    })
}

fn round(args: &Arrays, result: &DataType) -> Result<ArrayRef> {
    let places: Option<Vec<Option<i64>>> = match args.get(1) {
        Some(p) => Some(cast(p, &DataType::Int64)?.as_primitive::<Int64Type>().iter().collect()),
        None => None,
    };
    let value = &args[0];
    match (value.data_type(), result) {
        (t, _) if t.is_integer() && places.is_none() => Ok(value.clone()),
        (_, DataType::Int64) => {
            let doubles = cast(value, &DataType::Float64)?;
            let out: Int64Array =
                doubles.as_primitive::<Float64Type>().iter().map(|v| v.map(|v| (v + 0.5).floor() as i64)).collect();
            Ok(Arc::new(out))
        }
        (_, DataType::Float64) => {
            let doubles = cast(value, &DataType::Float64)?;
            let doubles = doubles.as_primitive::<Float64Type>();
            let out: Float64Array = (0..doubles.len())
                .map(|row| {
                    let n = places.as_ref().and_then(|p| p[row])?;
                    doubles.is_valid(row).then(|| half_up(doubles.value(row), n))
                })
                .collect();
            Ok(Arc::new(out))
        }
        (DataType::Decimal128(_, scale), DataType::Decimal128(precision, target_scale)) => {
            let decimals = value.as_primitive::<Decimal128Type>();
            let scale = i64::from(*scale);
            let out: Decimal128Array = (0..decimals.len())
                .map(|row| {
                    let n = match &places {
                        Some(p) => p[row]?,
                        None => 0,
                    };
                    decimals.is_valid(row).then(|| {
                        let rounded = round_decimal(decimals.value(row), scale, n);
                        // Back to the result's scale (the input's, when places are given).
                        rescale(rounded, n.min(scale), i64::from(*target_scale))
                    })
                })
                .collect();
            Ok(Arc::new(out.with_precision_and_scale(*precision, *target_scale)?))
        }
        (from, to) => exec_err!("ROUND from {from} to {to}"),
    }
}

/// `value` rounded to `places` decimal places, halves away from zero, as `BigDecimal`'s
/// `HALF_UP` does on the double's shortest decimal form (Java's `BigDecimal.valueOf`).
fn half_up(value: f64, places: i64) -> f64 {
    let factor = 10f64.powi(places.clamp(-300, 300) as i32);
    // Repair the binary representation error before rounding (2.675 is 2.67499… as a double).
    let scaled = ((value * factor) * 1e9).round() / 1e9;
    (scaled.abs() + 0.5).floor().copysign(value) / factor
}

/// A decimal's unscaled `value` at `scale`, rounded to `places` (half away from zero); the
/// result at scale `min(places, scale)`.
fn round_decimal(value: i128, scale: i64, places: i64) -> i128 {
    if places >= scale {
        return value;
    }
    let factor = 10i128.pow((scale - places).clamp(0, 38) as u32);
    let (quotient, remainder) = (value / factor, value % factor);
    if remainder.abs() * 2 >= factor { quotient + value.signum() } else { quotient }
}

fn rescale(value: i128, from: i64, to: i64) -> i128 {
    if to >= from {
        value * 10i128.pow((to - from).clamp(0, 38) as u32)
    } else {
        value / 10i128.pow((from - to).clamp(0, 38) as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_ksqldbs() {
        assert_eq!(half_up(2.675, 2), 2.68);
        assert_eq!(half_up(-2.5, 0), -3.0);
        assert_eq!(half_up(1.2345, 3), 1.235);
        assert_eq!(round_decimal(12345, 2, 0), 123);
        assert_eq!(round_decimal(12350, 2, 0), 124);
        assert_eq!(round_decimal(-12350, 2, 0), -124);
        assert_eq!(rescale(124, 0, 2), 12400);
    }
}
