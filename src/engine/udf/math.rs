//! ksqlDB's numeric functions where DataFusion's differ: `ROUND` (to the nearest integer as
//! Java's `Math.round`: a DOUBLE becomes a BIGINT, halves go up; or to `n` decimal places half
//! away from zero, `BigDecimal`'s `HALF_UP`, keeping a DECIMAL a DECIMAL), `TRUNC` (the same
//! shapes, toward zero), `CEIL` and `FLOOR` (an INT stays an INT, a DECIMAL keeps its scale),
//! `SIGN` (an INT), `SQRT` (NaN for a negative number), `LOG` (natural with one argument, `(base, value)` with two) and `POWER`
//! (always a DOUBLE, as Java's `Math.pow`). The trigonometric and other DOUBLE functions are
//! DataFusion's, which coerce INT and BIGINT to DOUBLE as ksqlDB's overloads do.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Decimal128Array, Float64Array, Int32Array, Int64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Float64Type, Int64Type};
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::{ScalarUDF, Signature, TypeSignature, Volatility};

use super::{Arrays, KsqlFunction, returns};

pub fn functions() -> Vec<ScalarUDF> {
    vec![
        KsqlFunction::udf("round", Signature::variadic_any(Volatility::Immutable), |a| round_type("round", a), round),
        KsqlFunction::udf("trunc", Signature::variadic_any(Volatility::Immutable), |a| round_type("trunc", a), trunc),
        KsqlFunction::udf(
            "ceil",
            Signature::any(1, Volatility::Immutable),
            |a| integral_type("ceil", a),
            |a, _| to_integral(&a[0], Rounding::Ceiling),
        ),
        KsqlFunction::udf(
            "floor",
            Signature::any(1, Volatility::Immutable),
            |a| integral_type("floor", a),
            |a, _| to_integral(&a[0], Rounding::Floor),
        ),
        KsqlFunction::udf(
            "sign",
            widening(&[&[DataType::Int32], &[DataType::Int64], &[DataType::Float64]]),
            returns::<2>,
            sign,
        ),
        KsqlFunction::udf(
            "radians",
            widening(&[&[DataType::Float64]]),
            |_| Ok(DataType::Float64),
            |args, _| doubles2(&args[0], &args[0], |v, _| java_radians(v)),
        ),
        KsqlFunction::udf(
            "degrees",
            widening(&[&[DataType::Float64]]),
            |_| Ok(DataType::Float64),
            |args, _| doubles2(&args[0], &args[0], |v, _| v * 180.0 / std::f64::consts::PI),
        ),
        KsqlFunction::udf(
            "greatest",
            Signature::variadic_any(Volatility::Immutable),
            |a| extreme_type("greatest", a),
            |a, t| extreme(a, t, true),
        ),
        KsqlFunction::udf(
            "least",
            Signature::variadic_any(Volatility::Immutable),
            |a| extreme_type("least", a),
            |a, t| extreme(a, t, false),
        ),
        // DataFusion's SQRT refuses a negative number; Java's gives NaN.
        KsqlFunction::udf(
            "sqrt",
            widening(&[&[DataType::Float64]]),
            |_| Ok(DataType::Float64),
            |args, _| doubles2(&args[0], &args[0], |v, _| v.sqrt()),
        ),
        KsqlFunction::udf(
            "log",
            widening(&[&[DataType::Float64], &[DataType::Float64, DataType::Float64]]),
            |_| Ok(DataType::Float64),
            log,
        ),
        KsqlFunction::udf(
            "power",
            widening(&[&[DataType::Float64, DataType::Float64]]),
            |_| Ok(DataType::Float64),
            |args, _| {
                doubles2(&args[0], &args[1], |base, exponent| {
                    // Java's Math.pow differs from C's pow in two corners.
                    if exponent.is_nan() || (base.abs() == 1.0 && exponent.is_infinite()) {
                        f64::NAN
                    } else {
                        base.powf(exponent)
                    }
                })
            },
        ),
    ]
}

/// Degrees in radians as ksqlDB's `Math.toRadians` computes them (`x / 180 * π`: its expected
/// results were made so, and the last digit differs from `x * (π / 180)`).
pub(crate) fn java_radians(degrees: f64) -> f64 {
    degrees / 180.0 * std::f64::consts::PI
}

/// Overloads tried in order, each argument widening to the first that it fits (INT to BIGINT
/// to DOUBLE, DECIMAL to DOUBLE), as ksqlDB resolves them.
pub(crate) fn widening(overloads: &[&[DataType]]) -> Signature {
    Signature::one_of(
        overloads.iter().map(|types| TypeSignature::Exact(types.to_vec())).collect(),
        Volatility::Immutable,
    )
}

/// `f` over two columns as doubles; null where either is.
fn doubles2(a: &ArrayRef, b: &ArrayRef, f: impl Fn(f64, f64) -> f64) -> Result<ArrayRef> {
    let (a, b) = (cast(a, &DataType::Float64)?, cast(b, &DataType::Float64)?);
    let out: Float64Array = a
        .as_primitive::<Float64Type>()
        .iter()
        .zip(b.as_primitive::<Float64Type>().iter())
        .map(|(a, b)| Some(f(a?, b?)))
        .collect();
    Ok(Arc::new(out))
}

/// GREATEST and LEAST take arguments of one type (ksqlDB's generic `T, T...`): DECIMALs of
/// any precision (the result the widest), else the same type. Numbers of different types are
/// ambiguous to ksqlDB, which has no one overload to widen them to.
fn extreme_type(name: &str, args: &[DataType]) -> Result<DataType> {
    let comparable = |t: &DataType| {
        matches!(
            t,
            DataType::Int32
                | DataType::Int64
                | DataType::Float64
                | DataType::Decimal128(..)
                | DataType::Utf8
                | DataType::Binary
                | DataType::Date32
                | DataType::Time32(_)
                | DataType::Timestamp(..)
        )
    };
    let typed: Vec<&DataType> = args.iter().filter(|t| !t.is_null()).collect();
    let Some(first) = typed.first() else {
        return if args.is_empty() { not_accepted(name, args) } else { ambiguous(name, args) };
    };
    if typed.iter().all(|t| matches!(t, DataType::Decimal128(..))) {
        let (integer_digits, scale) = typed.iter().fold((0i16, 0i16), |(digits, scale), t| match t {
            DataType::Decimal128(p, s) => (digits.max(i16::from(*p) - i16::from(*s)), scale.max(i16::from(*s))),
            _ => (digits, scale),
        });
        return Ok(DataType::Decimal128((integer_digits + scale).clamp(1, 38) as u8, scale.clamp(0, 38) as i8));
    }
    if typed.iter().all(|t| t == first) && comparable(first) {
        return Ok((*first).clone());
    }
    // Numbers of different types widen to DOUBLE only when one is a DOUBLE; otherwise more
    // than one overload would take them.
    if typed.iter().all(|t| t.is_numeric()) {
        return if typed.contains(&&DataType::Float64) { Ok(DataType::Float64) } else { ambiguous(name, args) };
    }
    // Text is parsed as a DATE, TIME or TIMESTAMP beside one of them.
    let temporal: Vec<&&DataType> = typed.iter().filter(|t| !matches!(t, DataType::Utf8)).collect();
    if let Some(first) = temporal.first()
        && matches!(first, DataType::Date32 | DataType::Time32(_) | DataType::Timestamp(..))
        && temporal.iter().all(|t| t == first)
    {
        return Ok((**first).clone());
    }
    not_accepted(name, args)
}

fn ambiguous<T>(name: &str, args: &[DataType]) -> Result<T> {
    plan_err!("Function '{name}' cannot be resolved due to ambiguous method parameters ({}).", ksql_type_names(args))
}

/// Argument types as ksqlDB lists them in messages (`null` for an untyped NULL).
fn ksql_type_names(args: &[DataType]) -> String {
    let names: Vec<String> =
        args.iter().map(|t| if t.is_null() { "null".into() } else { crate::sql::types::ksql_type_name(t) }).collect();
    names.join(", ")
}

/// The greatest (or least) argument of each row that is not null, null when all are.
/// Arrow's order is Java's: NaN above every number, -0.0 below 0.0.
fn extreme(args: &Arrays, result: &DataType, greatest: bool) -> Result<ArrayRef> {
    use datafusion::arrow::compute::kernels::{cmp, zip::zip};
    let mut best = cast(&args[0], result)?;
    for next in &args[1..] {
        let next = cast(next, result)?;
        let better = if greatest { cmp::gt(&next, &best)? } else { cmp::lt(&next, &best)? };
        let take: datafusion::arrow::array::BooleanArray = (0..next.len())
            .map(|row| Some(next.is_valid(row) && (best.is_null(row) || (better.is_valid(row) && better.value(row)))))
            .collect();
        best = zip(&take, &next, &best)?;
    }
    Ok(best)
}

/// `SIGN(x)`: -1, 0 or 1 as an INT; NaN is 0.
fn sign(args: &Arrays, _: &DataType) -> Result<ArrayRef> {
    let doubles = cast(&args[0], &DataType::Float64)?;
    let out: Int32Array = doubles
        .as_primitive::<Float64Type>()
        .iter()
        .map(|v| {
            v.map(|v| {
                if v > 0.0 {
                    1
                } else if v < 0.0 {
                    -1
                } else {
                    0
                }
            })
        })
        .collect();
    Ok(Arc::new(out))
}

/// `LOG(x)` is the natural logarithm (ksqlDB's code, though its docs say base 10);
/// `LOG(base, x)` is `ln(x) / ln(base)`, NaN for a base that is not positive or is 1.
fn log(args: &Arrays, _: &DataType) -> Result<ArrayRef> {
    match args {
        [value] => doubles2(value, value, |v, _| v.ln()),
        [base, value] => {
            doubles2(
                base,
                value,
                |base, value| {
                    if base <= 0.0 || base == 1.0 { f64::NAN } else { value.ln() / base.ln() }
                },
            )
        }
        _ => exec_err!("LOG takes one or two arguments"),
    }
}

/// CEIL and FLOOR keep integers and DECIMALs as they are typed; other numbers become DOUBLE.
fn integral_type(name: &str, args: &[DataType]) -> Result<DataType> {
    match args.first() {
        Some(t @ (DataType::Int32 | DataType::Int64 | DataType::Decimal128(..) | DataType::Float64)) => Ok(t.clone()),
        Some(t) if t.is_numeric() || t.is_null() => Ok(DataType::Float64),
        other => not_accepted(name, other.into_iter().cloned().collect::<Vec<_>>().as_slice()),
    }
}

fn not_accepted<T>(name: &str, args: &[DataType]) -> Result<T> {
    plan_err!("Function '{name}' does not accept parameters ({}).", ksql_type_names(args))
}

/// The way a value is brought to fewer decimal places.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rounding {
    /// To the nearest, halves away from zero.
    HalfUp,
    /// Toward zero.
    Down,
    Ceiling,
    Floor,
}

fn to_integral(value: &ArrayRef, rounding: Rounding) -> Result<ArrayRef> {
    match value.data_type() {
        t if t.is_integer() => Ok(value.clone()),
        DataType::Decimal128(precision, scale) => {
            let decimals = value.as_primitive::<Decimal128Type>();
            let scale = i64::from(*scale);
            let out: Decimal128Array =
                decimals.iter().map(|v| v.map(|v| rescale(round_decimal(v, scale, 0, rounding), 0, scale))).collect();
            Ok(Arc::new(out.with_precision_and_scale(*precision, scale as i8)?))
        }
        _ => {
            let doubles = cast(value, &DataType::Float64)?;
            let f = if rounding == Rounding::Ceiling { f64::ceil } else { f64::floor };
            let out: Float64Array = doubles.as_primitive::<Float64Type>().iter().map(|v| v.map(f)).collect();
            Ok(Arc::new(out))
        }
    }
}

/// `TRUNC(x [, places])`: as ROUND, toward zero. A DOUBLE's NaN becomes 0 and its infinities
/// BIGINT's extremes (Java's narrowing); with places, they are errors.
fn trunc(args: &Arrays, result: &DataType) -> Result<ArrayRef> {
    let value = &args[0];
    match (value.data_type(), result, args.get(1)) {
        (t, _, None) if t.is_integer() => Ok(cast(value, &DataType::Int64)?),
        (_, DataType::Int64, None) => {
            let doubles = cast(value, &DataType::Float64)?;
            let out: Int64Array = doubles.as_primitive::<Float64Type>().iter().map(|v| v.map(|v| v as i64)).collect();
            Ok(Arc::new(out))
        }
        (_, DataType::Float64, Some(places)) => {
            let doubles = cast(value, &DataType::Float64)?;
            let places = cast(places, &DataType::Int64)?;
            let out: Float64Array = doubles
                .as_primitive::<Float64Type>()
                .iter()
                .zip(places.as_primitive::<Int64Type>().iter())
                .map(|(v, n)| match (v, n) {
                    (Some(v), Some(_)) if !v.is_finite() => exec_err!("TRUNC of {v} to decimal places"),
                    (Some(v), Some(n)) => Ok(Some(truncate_double(v, n))),
                    _ => Ok(None),
                })
                .collect::<Result<_>>()?;
            Ok(Arc::new(out))
        }
        (DataType::Decimal128(_, scale), DataType::Decimal128(precision, target_scale), places) => {
            decimal_to_places(value, *scale, places, Rounding::Down, *precision, *target_scale)
        }
        (from, to, _) => exec_err!("TRUNC from {from} to {to}"),
    }
}

/// `value` truncated to `places` decimal places of its shortest decimal form (Java's
/// `BigDecimal.valueOf(value).setScale(places, DOWN)`).
fn truncate_double(value: f64, places: i64) -> f64 {
    let scientific = format!("{value:e}");
    let Some((mantissa, exponent)) = scientific.split_once('e') else { return value };
    let Ok(exponent) = exponent.parse::<i64>() else { return value };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let Ok(unscaled) = digits.parse::<i128>() else { return value };
    // value = unscaled * 10^-scale
    let scale = digits.len() as i64 - 1 - exponent;
    if scale <= places {
        return value;
    }
    let kept = unscaled / 10i128.pow((scale - places).clamp(0, 38) as u32);
    let sign = if value.is_sign_negative() { "-" } else { "" };
    format!("{sign}{kept}e{}", -places).parse().unwrap_or(value)
}

fn round_type(name: &str, args: &[DataType]) -> Result<DataType> {
    let places = args.len() == 2;
    Ok(match args.first() {
        // ksqlDB's TRUNC of an INT is a BIGINT; its ROUND keeps the type.
        Some(DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64) if !places && name == "trunc" => {
            DataType::Int64
        }
        Some(DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64) if !places => args[0].clone(),
        Some(DataType::Float32 | DataType::Float64) if !places => DataType::Int64,
        Some(DataType::Decimal128(p, s)) if !places => {
            DataType::Decimal128((*p - (*s).max(0) as u8 + 1).clamp(1, 38), 0)
        }
        Some(DataType::Decimal128(p, s)) => DataType::Decimal128(*p, *s),
        Some(t) if t.is_numeric() && places => DataType::Float64,
        Some(t) if t.is_null() => DataType::Float64,
        _ => return not_accepted(name, args),
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
            decimal_to_places(value, *scale, args.get(1), Rounding::HalfUp, *precision, *target_scale)
        }
        (from, to) => exec_err!("ROUND from {from} to {to}"),
    }
}

/// DECIMALs brought to `places` decimal places (0 when not given) by `rounding`, at the
/// result's precision and scale.
fn decimal_to_places(
    value: &ArrayRef,
    scale: i8,
    places: Option<&ArrayRef>,
    rounding: Rounding,
    precision: u8,
    target_scale: i8,
) -> Result<ArrayRef> {
    let places: Option<Vec<Option<i64>>> = match places {
        Some(p) => Some(cast(p, &DataType::Int64)?.as_primitive::<Int64Type>().iter().collect()),
        None => None,
    };
    let decimals = value.as_primitive::<Decimal128Type>();
    let scale = i64::from(scale);
    let out: Decimal128Array = (0..decimals.len())
        .map(|row| {
            let n = match &places {
                Some(p) => p[row]?,
                None => 0,
            };
            decimals.is_valid(row).then(|| {
                let rounded = round_decimal(decimals.value(row), scale, n, rounding);
                // Back to the result's scale (the input's, when places are given).
                rescale(rounded, n.min(scale), i64::from(target_scale))
            })
        })
        .collect();
    Ok(Arc::new(out.with_precision_and_scale(precision, target_scale)?))
}

/// `value` rounded to `places` decimal places, halves away from zero, as `BigDecimal`'s
/// `HALF_UP` does on the double's shortest decimal form (Java's `BigDecimal.valueOf`).
fn half_up(value: f64, places: i64) -> f64 {
    let factor = 10f64.powi(places.clamp(-300, 300) as i32);
    // Repair the binary representation error before rounding (2.675 is 2.67499… as a double).
    let scaled = ((value * factor) * 1e9).round() / 1e9;
    (scaled.abs() + 0.5).floor().copysign(value) / factor
}

/// A decimal's unscaled `value` at `scale`, brought to `places` by `rounding`; the result at
/// scale `min(places, scale)`.
fn round_decimal(value: i128, scale: i64, places: i64, rounding: Rounding) -> i128 {
    if places >= scale {
        return value;
    }
    let factor = 10i128.pow((scale - places).clamp(0, 38) as u32);
    let (quotient, remainder) = (value / factor, value % factor);
    match rounding {
        Rounding::HalfUp if remainder.abs() * 2 >= factor => quotient + value.signum(),
        Rounding::Ceiling if remainder > 0 => quotient + 1,
        Rounding::Floor if remainder < 0 => quotient - 1,
        _ => quotient,
    }
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
        assert_eq!(round_decimal(12345, 2, 0, Rounding::HalfUp), 123);
        assert_eq!(round_decimal(12350, 2, 0, Rounding::HalfUp), 124);
        assert_eq!(round_decimal(-12350, 2, 0, Rounding::HalfUp), -124);
        assert_eq!(round_decimal(-121, 2, 0, Rounding::Floor), -2);
        assert_eq!(round_decimal(121, 2, 0, Rounding::Ceiling), 2);
        assert_eq!(round_decimal(-199, 2, 0, Rounding::Down), -1);
        assert_eq!(rescale(124, 0, 2), 12400);
    }

    #[test]
    fn truncation_works_on_the_shortest_decimal_form() {
        assert_eq!(truncate_double(1.23, 2), 1.23);
        assert_eq!(truncate_double(1.2389, 2), 1.23);
        assert_eq!(truncate_double(-1.2389, 2), -1.23);
        assert_eq!(truncate_double(12345.67, -3), 12000.0);
        assert_eq!(truncate_double(0.5, 0), 0.0);
    }

    #[test]
    fn sign_log_and_power_are_javas() {
        let ints: ArrayRef = Arc::new(datafusion::arrow::array::Int32Array::from(vec![Some(-3), Some(0), None]));
        let signs = sign(&[ints], &DataType::Int32).unwrap();
        assert_eq!(
            signs.as_primitive::<datafusion::arrow::datatypes::Int32Type>().iter().collect::<Vec<_>>(),
            [Some(-1), Some(0), None]
        );
        let doubles = |v: Vec<f64>| -> ArrayRef { Arc::new(Float64Array::from(v)) };
        let logs = log(&[doubles(vec![2.0, 1.0, -2.0]), doubles(vec![8.0, 5.0, 5.0])], &DataType::Float64).unwrap();
        let logs = logs.as_primitive::<Float64Type>();
        assert_eq!(logs.value(0), 3.0);
        assert!(logs.value(1).is_nan() && logs.value(2).is_nan());
    }
}
