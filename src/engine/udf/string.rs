//! String and general functions with ksqlDB's semantics: `LEN`, `SUBSTRING` (1-based,
//! negative positions from the end, strings and bytes), `LPAD`/`RPAD` (null for an empty
//! pad or a negative length), `GENERATE_SERIES` (counting down when the end is below the
//! start), `AS_VALUE`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int32Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{ScalarUDF, Signature, TypeSignature, Volatility};

use super::{Arrays, KsqlFunction, returns, same_as_first};

pub fn functions() -> Vec<ScalarUDF> {
    vec![
        KsqlFunction::udf(
            "len",
            Signature::one_of(
                vec![TypeSignature::Exact(vec![DataType::Utf8]), TypeSignature::Exact(vec![DataType::Binary])],
                Volatility::Immutable,
            ),
            returns::<2>,
            len,
        ),
        // Replaces DataFusion's `substr` (PostgreSQL's semantics), which SUBSTRING(…) plans to.
        KsqlFunction::udf(
            "substr",
            Signature::one_of(
                [DataType::Utf8, DataType::Binary]
                    .into_iter()
                    .flat_map(|t| {
                        let with_position = integer_variants(vec![t.clone()], 1, None);
                        with_position.into_iter().chain(integer_variants(vec![t], 2, None))
                    })
                    .collect(),
                Volatility::Immutable,
            ),
            same_as_first,
            substring,
        ),
        KsqlFunction::udf("lpad", pad_signature(), same_as_first, |args, _| pad(args, true)),
        KsqlFunction::udf("rpad", pad_signature(), same_as_first, |args, _| pad(args, false)),
        KsqlFunction::udf(
            "generate_series",
            Signature::one_of(
                [DataType::Int32, DataType::Int64]
                    .into_iter()
                    .flat_map(|t| {
                        [
                            TypeSignature::Exact(vec![t.clone(), t.clone()]),
                            TypeSignature::Exact(vec![t.clone(), t.clone(), t]),
                        ]
                    })
                    .collect(),
                Volatility::Immutable,
            ),
            |args| {
                let item = args.first().cloned().unwrap_or(DataType::Int64);
                Ok(DataType::List(Arc::new(datafusion::arrow::datatypes::Field::new("item", item, true))))
            },
            generate_series,
        ),
        // A key column copied into the value (`PARTITION BY` on an expression of it).
        KsqlFunction::udf("as_value", Signature::any(1, Volatility::Immutable), same_as_first, |args, _| {
            Ok(args[0].clone())
        }),
    ]
}

/// `LEN(s)`: characters of a string, bytes of BYTES.
fn len(args: &Arrays, _: &DataType) -> Result<ArrayRef> {
    let lengths: Int32Array = match args[0].data_type() {
        DataType::Utf8 => args[0].as_string::<i32>().iter().map(|s| s.map(|s| s.chars().count() as i32)).collect(),
        DataType::Binary => args[0].as_binary::<i32>().iter().map(|b| b.map(|b| b.len() as i32)).collect(),
        other => return exec_err!("LEN of {other}"),
    };
    let _ = lengths.len();
    Ok(Arc::new(lengths))
}

fn pad_signature() -> Signature {
    Signature::one_of(
        [DataType::Utf8, DataType::Binary]
            .into_iter()
            .flat_map(|t| integer_variants(vec![t.clone()], 1, Some(t)))
            .collect(),
        Volatility::Immutable,
    )
}

/// Signatures of `first…` then `count` integers (INT or BIGINT each, so that literals and
/// columns of either width match exactly), then `last` if given.
fn integer_variants(first: Vec<DataType>, count: usize, last: Option<DataType>) -> Vec<TypeSignature> {
    let mut prefixes = vec![first];
    for _ in 0..count {
        prefixes = prefixes
            .into_iter()
            .flat_map(|p| {
                [DataType::Int32, DataType::Int64].into_iter().map(move |i| {
                    let mut next = p.clone();
                    next.push(i);
                    next
                })
            })
            .collect();
    }
    prefixes
        .into_iter()
        .map(|mut types| {
            types.extend(last.clone());
            TypeSignature::Exact(types)
        })
        .collect()
}

/// ksqlDB's start index (0-based) for a 1-based position: negative counts from the end,
/// out-of-range clamps.
fn start_index(length: usize, position: i64) -> usize {
    let length = length as i64;
    let start = if position < 0 { (length + position).max(0) } else { (position - 1).clamp(0, length) };
    start as usize
}

/// Applies `f` to each row's units (chars or bytes) with its integer arguments, for strings
/// or bytes alike.
fn per_unit(
    args: &Arrays,
    f: impl Fn(&[char], &[i64], Option<&[char]>) -> Option<Vec<char>>,
    g: impl Fn(&[u8], &[i64], Option<&[u8]>) -> Option<Vec<u8>>,
    pad_last: bool,
) -> Result<ArrayRef> {
    use datafusion::arrow::array::{BinaryArray, StringArray};
    let rows = args[0].len();
    // The integer arguments (positions, lengths), whatever their width.
    let wide: Vec<ArrayRef> = args[1..]
        .iter()
        .filter(|a| a.data_type().is_integer())
        .map(|a| datafusion::arrow::compute::cast(a, &DataType::Int64))
        .collect::<Result<_, _>>()?;
    let numbers: Vec<&datafusion::arrow::array::Int64Array> =
        wide.iter().map(|a| a.as_primitive::<datafusion::arrow::datatypes::Int64Type>()).collect();
    let ints_at =
        |row: usize| -> Option<Vec<i64>> { numbers.iter().map(|n| (!n.is_null(row)).then(|| n.value(row))).collect() };
    match args[0].data_type() {
        DataType::Utf8 => {
            let (text, pads) = (args[0].as_string::<i32>(), pad_last.then(|| args[2].as_string::<i32>()));
            let out: StringArray = (0..rows)
                .map(|row| {
                    if text.is_null(row) || pads.is_some_and(|p| p.is_null(row)) {
                        return None;
                    }
                    let chars: Vec<char> = text.value(row).chars().collect();
                    let pad: Option<Vec<char>> = pads.map(|p| p.value(row).chars().collect());
                    f(&chars, &ints_at(row)?, pad.as_deref()).map(|c| c.into_iter().collect::<String>())
                })
                .collect();
            Ok(Arc::new(out))
        }
        DataType::Binary => {
            let (bytes, pads) = (args[0].as_binary::<i32>(), pad_last.then(|| args[2].as_binary::<i32>()));
            let out: BinaryArray = (0..rows)
                .map(|row| {
                    if bytes.is_null(row) || pads.is_some_and(|p| p.is_null(row)) {
                        return None;
                    }
                    g(bytes.value(row), &ints_at(row)?, pads.map(|p| p.value(row)))
                })
                .collect();
            Ok(Arc::new(out))
        }
        other => exec_err!("expected a string or bytes, got {other}"),
    }
}

fn substring(args: &Arrays, _: &DataType) -> Result<ArrayRef> {
    fn cut<T: Clone>(units: &[T], numbers: &[i64]) -> Option<Vec<T>> {
        let start = start_index(units.len(), numbers[0]);
        let end = match numbers.get(1) {
            Some(length) => (start as i64 + length).clamp(start as i64, units.len() as i64) as usize,
            None => units.len(),
        };
        Some(units[start..end].to_vec())
    }
    per_unit(args, |c, n, _| cut(c, n), |b, n, _| cut(b, n), false)
}

fn pad(args: &Arrays, left: bool) -> Result<ArrayRef> {
    fn padded<T: Clone>(units: &[T], numbers: &[i64], pad: Option<&[T]>, left: bool) -> Option<Vec<T>> {
        let (length, pad) = (numbers[0], pad?);
        if length < 0 || pad.is_empty() {
            return None;
        }
        let length = length as usize;
        if units.len() >= length {
            return Some(units[..length].to_vec());
        }
        let filler: Vec<T> = pad.iter().cycle().take(length - units.len()).cloned().collect();
        Some(if left { [filler, units.to_vec()].concat() } else { [units.to_vec(), filler].concat() })
    }
    per_unit(args, |c, n, p| padded(c, n, p, left), |b, n, p| padded(b, n, p, left), true)
}

/// `GENERATE_SERIES(start, end[, step])`: `start` to `end` inclusive, by `step` (1 or -1 by
/// the direction when not given); null for a step of 0 or one that points away from `end`.
fn generate_series(args: &Arrays, result: &DataType) -> Result<ArrayRef> {
    use datafusion::arrow::array::{Int32Builder, Int64Builder, ListBuilder};
    let wide: Vec<ArrayRef> =
        args.iter().map(|a| datafusion::arrow::compute::cast(a, &DataType::Int64)).collect::<Result<_, _>>()?;
    let numbers: Vec<&datafusion::arrow::array::Int64Array> =
        wide.iter().map(|a| a.as_primitive::<datafusion::arrow::datatypes::Int64Type>()).collect();
    // ksqlDB's parameters are Java primitives: a null one is an error, as is a step of 0 or
    // one going away from the end.
    let series = |row: usize| -> Result<Vec<i64>> {
        let values: Option<Vec<i64>> = numbers.iter().map(|n| (!n.is_null(row)).then(|| n.value(row))).collect();
        let Some(values) = values else { return exec_err!("GENERATE_SERIES: an argument is null") };
        let (start, end) = (values[0], values[1]);
        let step = values.get(2).copied().unwrap_or(if end >= start { 1 } else { -1 });
        if step == 0 || (end.saturating_sub(start)).signum() * step.signum() < 0 {
            return exec_err!("GENERATE_SERIES: step {step} never goes from {start} to {end}");
        }
        let count = (end.saturating_sub(start) / step).unsigned_abs().saturating_add(1);
        Ok((0..count).map(|i| start.wrapping_add(step.wrapping_mul(i as i64))).collect())
    };
    let rows = args[0].len();
    let is_int = matches!(result, DataType::List(item) if item.data_type() == &DataType::Int32);
    if is_int {
        let mut builder = ListBuilder::new(Int32Builder::new());
        for row in 0..rows {
            builder.append_value(series(row)?.into_iter().map(|v| Some(v as i32)));
        }
        Ok(Arc::new(builder.finish()))
    } else {
        let mut builder = ListBuilder::new(Int64Builder::new());
        for row in 0..rows {
            builder.append_value(series(row)?.into_iter().map(Some));
        }
        Ok(Arc::new(builder.finish()))
    }
}
