//! ksqlDB's numeric functions where DataFusion's differ: `ABS` (in its argument's type, the
//! most negative INT or BIGINT its own absolute value as Java's `Math.abs` has it), `ROUND`
//! (to the nearest integer as Java's `Math.round`: an INT, BIGINT or DOUBLE becomes a BIGINT,
//! halves go up; or a DOUBLE or DECIMAL to `n` decimal places of its shortest decimal form,
//! halves toward positive infinity as ksqlDB's mix of `HALF_UP` and `HALF_DOWN` has it, a
//! DECIMAL keeping its type), `TRUNC` (the same shapes, toward zero), `CEIL` and `FLOOR` (an
//! INT stays an INT, a DECIMAL keeps its scale), `SIGN` (an INT), `SQRT` (NaN for a negative
//! number), `LOG` (natural with one argument, `(base, value)` with two), `POWER` (always a
//! DOUBLE, as Java's `Math.pow`), `RADIANS`/`DEGREES` and `GREATEST`/`LEAST` (Java's orders:
//! strings by UTF-16 code unit, bytes as signed). The trigonometric and other DOUBLE functions
//! are DataFusion's, which coerce INT, BIGINT and DECIMAL to DOUBLE as ksqlDB's overloads do.
//!
//! A Java parameter of a primitive type (`ROUND(int)`, `ROUND(long)`) cannot take NULL: such a
//! call fails on the row, as in ksqlDB.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Decimal128Array, Float64Array, Int32Array, Int64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Float64Type, Int32Type, Int64Type};
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::{ScalarUDF, Signature, TypeSignature, Volatility};

use super::{Arrays, KsqlFunction, returns};

pub fn functions() -> Vec<ScalarUDF> {
    vec![
        KsqlFunction::udf(
            "abs",
            Signature::any(1, Volatility::Immutable),
            |a| integral_type("abs", a),
            |a, _| abs(&a[0]),
        ),
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
/// Arrow's order of numbers and times is Java's (NaN above every number, -0.0 below 0.0);
/// strings and bytes take Java's own (see [`java_order`]).
fn extreme(args: &Arrays, result: &DataType, greatest: bool) -> Result<ArrayRef> {
    use datafusion::arrow::compute::kernels::{cmp, zip::zip};
    if matches!(result, DataType::Utf8 | DataType::Binary) {
        return extreme_in_java_order(args, result, greatest);
    }
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

/// `ABS(x)` in x's type. Java's `Math.abs` wraps: the most negative INT (BIGINT) is its own
/// absolute value (DataFusion's fails on it).
fn abs(value: &ArrayRef) -> Result<ArrayRef> {
    Ok(match value.data_type() {
        DataType::Int32 => Arc::new(value.as_primitive::<Int32Type>().unary::<_, Int32Type>(i32::wrapping_abs)),
        DataType::Int64 => Arc::new(value.as_primitive::<Int64Type>().unary::<_, Int64Type>(i64::wrapping_abs)),
        DataType::Decimal128(precision, scale) => Arc::new(
            value
                .as_primitive::<Decimal128Type>()
                .unary::<_, Decimal128Type>(i128::wrapping_abs)
                .with_precision_and_scale(*precision, *scale)?,
        ),
        _ => {
            let doubles = cast(value, &DataType::Float64)?;
            Arc::new(doubles.as_primitive::<Float64Type>().unary::<_, Float64Type>(f64::abs))
        }
    })
}

/// GREATEST or LEAST of strings or bytes, row by row in Java's order.
fn extreme_in_java_order(args: &Arrays, result: &DataType, greatest: bool) -> Result<ArrayRef> {
    let arrays: Vec<ArrayRef> = args.iter().map(|a| cast(a, result)).collect::<Result<_, _>>()?;
    let rows = arrays.first().map_or(0, |a| a.len());
    let mut picks: Vec<(usize, usize)> = Vec::with_capacity(rows);
    for row in 0..rows {
        let mut best: Option<usize> = None;
        for (i, array) in arrays.iter().enumerate() {
            if array.is_null(row) {
                continue;
            }
            let better = match best {
                None => true,
                Some(b) => {
                    let order = java_order(array, &arrays[b], row);
                    if greatest { order.is_gt() } else { order.is_lt() }
                }
            };
            if better {
                best = Some(i);
            }
        }
        // A row with every argument null takes the first (null).
        picks.push((best.unwrap_or(0), row));
    }
    let columns: Vec<&dyn Array> = arrays.iter().map(|a| a.as_ref()).collect();
    Ok(datafusion::arrow::compute::interleave(&columns, &picks)?)
}

/// Java's order of two non-null values at `row`: `String.compareTo` compares UTF-16 code
/// units (so U+FFFD sorts above U+1F600), `ByteBuffer.compareTo` signed bytes (so 0x80 sorts
/// below 0x01).
fn java_order(a: &ArrayRef, b: &ArrayRef, row: usize) -> std::cmp::Ordering {
    if let (Some(a), Some(b)) = (a.as_string_opt::<i32>(), b.as_string_opt::<i32>()) {
        return a.value(row).encode_utf16().cmp(b.value(row).encode_utf16());
    }
    match (a.as_binary_opt::<i32>(), b.as_binary_opt::<i32>()) {
        (Some(a), Some(b)) => a.value(row).iter().map(|x| *x as i8).cmp(b.value(row).iter().map(|x| *x as i8)),
        _ => std::cmp::Ordering::Equal,
    }
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

/// ABS, CEIL and FLOOR keep INTs, BIGINTs, DOUBLEs and DECIMALs as they are typed; other
/// numbers become DOUBLE.
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
    /// To the nearest, halves toward positive infinity: ksqlDB's ROUND (`HALF_UP` above zero,
    /// `HALF_DOWN` otherwise, so that -2.5 rounds to -2 as `Math.round` has it).
    HalfCeiling,
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

/// `TRUNC(x [, places])`: as ROUND, toward zero. An INT or BIGINT is a BIGINT (null stays
/// null: Java's parameters are boxed here); a DOUBLE's NaN becomes 0 and its infinities
/// BIGINT's extremes (Java's narrowing); with places, they are errors (`BigDecimal` has none).
fn trunc(args: &Arrays, result: &DataType) -> Result<ArrayRef> {
    let value = &args[0];
    match (value.data_type(), result, args.get(1)) {
        (DataType::Decimal128(_, scale), DataType::Decimal128(precision, target_scale), places) => {
            decimal_to_places(value, *scale, places, Rounding::Down, *precision, *target_scale)
        }
        (t, _, None) if t.is_integer() => Ok(cast(value, &DataType::Int64)?),
        (_, _, None) => {
            let doubles = cast(value, &DataType::Float64)?;
            let out: Int64Array = doubles.as_primitive::<Float64Type>().iter().map(|v| v.map(|v| v as i64)).collect();
            Ok(Arc::new(out))
        }
        (_, _, Some(places)) => doubles_to_places("TRUNC", value, places, Rounding::Down),
    }
}

/// ROUND and TRUNC of a DOUBLE to `places` decimal places (`BigDecimal.valueOf(x)
/// .setScale(places, …).doubleValue()`): null where either is; NaN and the infinities fail.
fn doubles_to_places(name: &str, value: &ArrayRef, places: &ArrayRef, rounding: Rounding) -> Result<ArrayRef> {
    let doubles = cast(value, &DataType::Float64)?;
    let places = cast(places, &DataType::Int64)?;
    let out: Float64Array = doubles
        .as_primitive::<Float64Type>()
        .iter()
        .zip(places.as_primitive::<Int64Type>().iter())
        .map(|(v, n)| match (v, n) {
            (Some(v), Some(_)) if !v.is_finite() => exec_err!("{name} of {v} to decimal places: not a decimal number"),
            (Some(v), Some(n)) => Ok(Some(double_to_places(v, n, rounding))),
            _ => Ok(None),
        })
        .collect::<Result<_>>()?;
    Ok(Arc::new(out))
}

/// A finite `value` brought to `places` decimal places of its shortest decimal form (Java's
/// `BigDecimal.valueOf`, whose `Double.toString` is the shortest form since JDK 19) by
/// `rounding`, back to the nearest double. Zero is never negative (`BigDecimal` has no -0).
fn double_to_places(value: f64, places: i64, rounding: Rounding) -> f64 {
    let scientific = format!("{:e}", value.abs());
    let Some((mantissa, exponent)) = scientific.split_once('e') else { return value };
    let Ok(exponent) = exponent.parse::<i64>() else { return value };
    let digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).map(|d| d - b'0').collect();
    // |value| = digits × 10^-scale
    let scale = digits.len() as i64 - 1 - exponent;
    if value == 0.0 {
        return 0.0;
    }
    if scale <= places {
        return value;
    }
    let dropped = (scale - places).min(digits.len() as i64 + 1) as usize;
    let kept_len = digits.len().saturating_sub(dropped);
    let (kept, rest) = digits.split_at(kept_len);
    // The first dropped digit (0 when more are dropped than there are) and whether any after it
    // is not zero.
    let (first, more) = match rest.split_first() {
        Some((first, more)) if dropped <= digits.len() => (*first, more.iter().any(|d| *d != 0)),
        _ => (0, !rest.is_empty() && rest.iter().any(|d| *d != 0)),
    };
    let negative = value < 0.0;
    let up = match rounding {
        // Away from zero for a positive number at a half, toward zero for a negative one.
        Rounding::HalfCeiling => first > 5 || (first == 5 && (more || !negative)),
        Rounding::Down => false,
        Rounding::Ceiling => !negative && (first != 0 || more),
        Rounding::Floor => negative && (first != 0 || more),
    };
    let mut number: Vec<u8> = kept.iter().map(|d| d + b'0').collect();
    if number.is_empty() {
        number.push(b'0');
    }
    if up {
        // Add one to the last kept digit, carrying.
        let mut at = number.len();
        loop {
            if at == 0 {
                number.insert(0, b'1');
                break;
            }
            at -= 1;
            if number[at] == b'9' {
                number[at] = b'0';
            } else {
                number[at] += 1;
                break;
            }
        }
    }
    if number.iter().all(|d| *d == b'0') {
        return 0.0;
    }
    let text = format!("{}{}e{}", if negative { "-" } else { "" }, String::from_utf8_lossy(&number), -places);
    text.parse().unwrap_or(value)
}

/// ROUND's and TRUNC's result: with one argument, a BIGINT (ROUND and TRUNC of an INT,
/// BIGINT or DOUBLE) or a DECIMAL of the integer digits; with decimal places (an INT), a DOUBLE
/// or the DECIMAL's own type. An INT or BIGINT with places could widen to DOUBLE or DECIMAL,
/// which ksqlDB finds ambiguous.
fn round_type(name: &str, args: &[DataType]) -> Result<DataType> {
    let places = match args {
        [_] => false,
        [_, DataType::Int32 | DataType::Null] => true,
        _ => return not_accepted(name, args),
    };
    Ok(match &args[0] {
        DataType::Int32 | DataType::Int64 if places => return ambiguous(name, args),
        DataType::Decimal128(p, s) if !places => {
            let digits = i16::from(*p) - i16::from(*s);
            if digits < 1 {
                return plan_err!("DECIMAL precision must be >= 1: DECIMAL({digits},0)");
            }
            DataType::Decimal128(digits.clamp(1, 38) as u8, 0)
        }
        DataType::Decimal128(p, s) => DataType::Decimal128(*p, *s),
        t if t.is_numeric() && !places => DataType::Int64,
        t if t.is_numeric() || t.is_null() => DataType::Float64,
        _ => return not_accepted(name, args),
    })
}

/// `ROUND(x [, places])`. Without places an INT or BIGINT is itself as a BIGINT (its Java
/// parameter is primitive: null fails) and a DOUBLE is `Math.round(x)`.
fn round(args: &Arrays, result: &DataType) -> Result<ArrayRef> {
    let value = &args[0];
    match (value.data_type(), result, args.get(1)) {
        (DataType::Decimal128(_, scale), DataType::Decimal128(precision, target_scale), places) => {
            decimal_to_places(value, *scale, places, Rounding::HalfCeiling, *precision, *target_scale)
        }
        (t, _, None) if t.is_integer() => {
            if value.null_count() > 0 {
                return exec_err!(
                    "ROUND of a null {} (a primitive Java parameter)",
                    crate::sql::types::ksql_type_name(t)
                );
            }
            Ok(cast(value, &DataType::Int64)?)
        }
        (_, _, None) => {
            let doubles = cast(value, &DataType::Float64)?;
            let out: Int64Array = doubles.as_primitive::<Float64Type>().iter().map(|v| v.map(java_round)).collect();
            Ok(Arc::new(out))
        }
        (_, _, Some(places)) => doubles_to_places("ROUND", value, places, Rounding::HalfCeiling),
    }
}

/// Java's `Math.round`: `floor(x + 0.5)` computed exactly (0.49999999999999994 is 0, 2^52 + 1
/// is itself), NaN 0, the infinities BIGINT's extremes.
fn java_round(value: f64) -> i64 {
    let floor = value.floor();
    // `value - floor` is exact for every finite double.
    let rounded = if value - floor >= 0.5 { floor + 1.0 } else { floor };
    rounded as i64
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

/// A decimal's unscaled `value` at `scale`, brought to `places` by `rounding`; the result at
/// scale `min(places, scale)`.
fn round_decimal(value: i128, scale: i64, places: i64, rounding: Rounding) -> i128 {
    if places >= scale {
        return value;
    }
    if scale - places > 38 {
        // More digits dropped than a DECIMAL has: less than half a unit is left.
        return match rounding {
            Rounding::Ceiling if value > 0 => 1,
            Rounding::Floor if value < 0 => -1,
            _ => 0,
        };
    }
    let factor = 10i128.pow((scale - places) as u32);
    let (quotient, remainder) = (value / factor, value % factor);
    match rounding {
        Rounding::HalfCeiling if remainder > 0 && remainder >= factor - remainder => quotient + 1,
        Rounding::HalfCeiling if remainder < 0 && -remainder > factor + remainder => quotient - 1,
        Rounding::Ceiling if remainder > 0 => quotient + 1,
        Rounding::Floor if remainder < 0 => quotient - 1,
        _ => quotient,
    }
}

fn rescale(value: i128, from: i64, to: i64) -> i128 {
    if to >= from {
        value.saturating_mul(10i128.pow((to - from).clamp(0, 38) as u32))
    } else if from - to > 38 {
        0
    } else {
        value / 10i128.pow((from - to) as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_ksqldbs() {
        assert_eq!(double_to_places(2.675, 2, Rounding::HalfCeiling), 2.68);
        assert_eq!(double_to_places(-2.5, 0, Rounding::HalfCeiling), -2.0);
        assert_eq!(double_to_places(-2.51, 0, Rounding::HalfCeiling), -3.0);
        assert_eq!(double_to_places(-1.25, 1, Rounding::HalfCeiling), -1.2);
        assert_eq!(double_to_places(1.2345, 3, Rounding::HalfCeiling), 1.235);
        assert_eq!(double_to_places(0.4999999999999, 0, Rounding::HalfCeiling), 0.0);
        assert_eq!(double_to_places(12345.67, -2, Rounding::HalfCeiling), 12300.0);
        assert_eq!(double_to_places(99.96, 1, Rounding::HalfCeiling), 100.0);
        assert_eq!(double_to_places(0.0005, 2, Rounding::HalfCeiling), 0.0);
        assert_eq!(double_to_places(0.5, -1, Rounding::HalfCeiling), 0.0);
        assert_eq!(double_to_places(5.0, -1, Rounding::HalfCeiling), 10.0);
        assert!(double_to_places(-0.4, 0, Rounding::HalfCeiling).is_sign_positive());
        assert_eq!(double_to_places(1e300, -400, Rounding::HalfCeiling), 0.0);
        assert_eq!(double_to_places(1.5, 400, Rounding::HalfCeiling), 1.5);
        assert_eq!(java_round(0.49999999999999994), 0);
        assert_eq!(java_round(-2.5), -2);
        assert_eq!(java_round(2.5), 3);
        assert_eq!(java_round(4503599627370497.0), 4503599627370497);
        assert_eq!(java_round(f64::NAN), 0);
        assert_eq!(java_round(f64::INFINITY), i64::MAX);
        assert_eq!(round_decimal(12345, 2, 0, Rounding::HalfCeiling), 123);
        assert_eq!(round_decimal(12350, 2, 0, Rounding::HalfCeiling), 124);
        assert_eq!(round_decimal(-12350, 2, 0, Rounding::HalfCeiling), -123);
        assert_eq!(round_decimal(-12351, 2, 0, Rounding::HalfCeiling), -124);
        assert_eq!(round_decimal(-121, 2, 0, Rounding::Floor), -2);
        assert_eq!(round_decimal(121, 2, 0, Rounding::Ceiling), 2);
        assert_eq!(round_decimal(-199, 2, 0, Rounding::Down), -1);
        assert_eq!(round_decimal(99, 2, -100, Rounding::HalfCeiling), 0);
        assert_eq!(rescale(124, 0, 2), 12400);
        assert_eq!(rescale(124, -100, 2), i128::MAX);
        assert_eq!(rescale(124, 100, 2), 0);
    }

    #[test]
    fn truncation_works_on_the_shortest_decimal_form() {
        assert_eq!(double_to_places(1.23, 2, Rounding::Down), 1.23);
        assert_eq!(double_to_places(1.2389, 2, Rounding::Down), 1.23);
        assert_eq!(double_to_places(-1.2389, 2, Rounding::Down), -1.23);
        assert_eq!(double_to_places(12345.67, -3, Rounding::Down), 12000.0);
        assert_eq!(double_to_places(0.5, 0, Rounding::Down), 0.0);
        assert!(double_to_places(-1e-300, 2, Rounding::Down).is_sign_positive());
    }

    #[test]
    fn greatest_and_least_order_as_java() {
        let strings = |v: Vec<Option<&str>>| -> ArrayRef { Arc::new(datafusion::arrow::array::StringArray::from(v)) };
        let args =
            [strings(vec![Some("\u{FFFD}"), None, Some("a")]), strings(vec![Some("\u{1F600}"), None, Some("B")])];
        let out = extreme(&args, &DataType::Utf8, true).unwrap();
        assert_eq!(out.as_string::<i32>().iter().collect::<Vec<_>>(), [Some("\u{FFFD}"), None, Some("a")]);
        let bytes = |v: Vec<&[u8]>| -> ArrayRef { Arc::new(datafusion::arrow::array::BinaryArray::from(v)) };
        let out = extreme(&[bytes(vec![&[0x80]]), bytes(vec![&[0x01]])], &DataType::Binary, true).unwrap();
        assert_eq!(out.as_binary::<i32>().value(0), [0x01]);
        let out = extreme(&[bytes(vec![&[0x80]]), bytes(vec![&[0x01]])], &DataType::Binary, false).unwrap();
        assert_eq!(out.as_binary::<i32>().value(0), [0x80]);
    }

    #[test]
    fn abs_wraps_as_javas() {
        let ints: ArrayRef = Arc::new(Int32Array::from(vec![Some(i32::MIN), Some(-3), None]));
        let out = abs(&ints).unwrap();
        assert_eq!(out.as_primitive::<Int32Type>().iter().collect::<Vec<_>>(), [Some(i32::MIN), Some(3), None]);
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
