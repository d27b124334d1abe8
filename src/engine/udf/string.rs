//! String and general functions with ksqlDB's semantics: `LEN`, `SUBSTRING` (1-based,
//! negative positions from the end, strings and bytes), `LPAD`/`RPAD` (null for an empty
//! pad or a negative length), `GENERATE_SERIES` (counting down when the end is below the
//! start), `AS_VALUE`.
//!
//! Strings are measured as Java measures them, in UTF-16 code units: a character outside the
//! BMP counts 2. Where a position cuts such a character in two, Java would keep half of it (a
//! lone surrogate, which no UTF-8 text can hold); that half is U+FFFD here, so that lengths
//! stay Java's.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BinaryArray, Int32Array, Int64Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Int64Type};
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

/// `LEN(s)`: UTF-16 code units of a string (Java's `String.length`), bytes of BYTES.
fn len(args: &Arrays, _: &DataType) -> Result<ArrayRef> {
    let lengths: Int32Array = match args[0].data_type() {
        DataType::Utf8 => args[0].as_string::<i32>().iter().map(|s| s.map(|s| utf16_len(s) as i32)).collect(),
        DataType::Binary => args[0].as_binary::<i32>().iter().map(|b| b.map(|b| b.len() as i32)).collect(),
        other => return exec_err!("LEN of {other}"),
    };
    Ok(Arc::new(lengths))
}

/// A string's length in UTF-16 code units, as Java counts.
pub(crate) fn utf16_len(s: &str) -> usize {
    if s.is_ascii() { s.len() } else { s.encode_utf16().count() }
}

/// UTF-16 units `start..end` of `s` (clamped to its length), as Java's `substring`; where the
/// range cuts a character outside the BMP in two, its half (a lone surrogate to Java) is
/// U+FFFD, so that the result keeps Java's length.
pub(crate) fn utf16_slice(s: &str, start: usize, end: usize) -> std::borrow::Cow<'_, str> {
    if s.is_ascii() {
        let end = end.min(s.len());
        return std::borrow::Cow::Borrowed(s.get(start.min(end)..end).unwrap_or_default());
    }
    let mut out = String::new();
    let mut unit = 0;
    for c in s.chars() {
        let width = c.len_utf16();
        let inside = (unit + width).min(end).saturating_sub(unit.max(start));
        if inside == width {
            out.push(c);
        } else if inside > 0 {
            out.push('\u{FFFD}');
        }
        unit += width;
        if unit >= end {
            break;
        }
    }
    std::borrow::Cow::Owned(out)
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

/// ksqlDB's end index for a start and a length: clamped to the value, never before the start.
/// `start + length` is Java's `int` sum when the length is an INT, so a length near
/// 2^31 wraps to a negative end, which gives an empty result as in ksqlDB.
fn end_index(length: usize, start: usize, count: i64) -> usize {
    let sum = match i32::try_from(count) {
        Ok(count) => i64::from((start as i32).wrapping_add(count)),
        Err(_) => (start as i64).saturating_add(count),
    };
    sum.clamp(start as i64, length.max(start) as i64) as usize
}

/// The integer arguments after the first (positions, lengths) as BIGINTs, whatever their width.
fn integers(args: &Arrays) -> Result<Vec<Int64Array>> {
    args[1..]
        .iter()
        .filter(|a| a.data_type().is_integer())
        .map(|a| Ok(datafusion::arrow::compute::cast(a, &DataType::Int64)?.as_primitive::<Int64Type>().clone()))
        .collect()
}

/// Row `row` of each integer argument, `None` if any is NULL.
fn integers_at(numbers: &[Int64Array], row: usize) -> Option<Vec<i64>> {
    numbers.iter().map(|n| (!n.is_null(row)).then(|| n.value(row))).collect()
}

/// `SUBSTRING(s, position[, length])`: UTF-16 units of a string or bytes of BYTES, from the
/// 1-based position (negative: from the end) for the length (default: to the end). Any
/// NULL gives NULL.
fn substring(args: &Arrays, _: &DataType) -> Result<ArrayRef> {
    let numbers = integers(args)?;
    let range = |length: usize, numbers: &[i64]| {
        let start = start_index(length, numbers[0]);
        let end = numbers.get(1).map_or(length, |&count| end_index(length, start, count));
        (start, end)
    };
    match args[0].data_type() {
        DataType::Utf8 => {
            let texts = args[0].as_string::<i32>();
            let out: StringArray = (0..texts.len())
                .map(|row| {
                    let numbers = integers_at(&numbers, row).filter(|_| texts.is_valid(row))?;
                    let text = texts.value(row);
                    let (start, end) = range(utf16_len(text), &numbers);
                    Some(utf16_slice(text, start, end))
                })
                .collect();
            Ok(Arc::new(out))
        }
        DataType::Binary => {
            let bytes = args[0].as_binary::<i32>();
            let out: BinaryArray = (0..bytes.len())
                .map(|row| {
                    let numbers = integers_at(&numbers, row).filter(|_| bytes.is_valid(row))?;
                    let value = bytes.value(row);
                    let (start, end) = range(value.len(), &numbers);
                    value.get(start..end)
                })
                .collect();
            Ok(Arc::new(out))
        }
        other => exec_err!("SUBSTRING of {other}"),
    }
}

/// The most bytes one padded value may have (Arrow's offsets are `i32`).
const MAX_PADDED: usize = i32::MAX as usize;

/// `LPAD`/`RPAD(input, length, padding)`: the input padded (on the left when `left`) with
/// the padding repeated to exactly `length` UTF-16 units (bytes for BYTES), or cut to its
/// first `length`. NULL for a NULL argument, an empty padding or a negative length.
fn pad(args: &Arrays, left: bool) -> Result<ArrayRef> {
    let numbers = integers(args)?;
    match args[0].data_type() {
        DataType::Utf8 => {
            let (texts, pads) = (args[0].as_string::<i32>(), args[2].as_string::<i32>());
            let mut out = Vec::with_capacity(texts.len());
            for row in 0..texts.len() {
                let numbers = integers_at(&numbers, row).filter(|_| texts.is_valid(row) && pads.is_valid(row));
                let padded = match numbers {
                    Some(numbers) => pad_text(texts.value(row), numbers[0], pads.value(row), left)?,
                    None => None,
                };
                out.push(padded);
            }
            super::words::string_array(&out)
        }
        DataType::Binary => {
            let (bytes, pads) = (args[0].as_binary::<i32>(), args[2].as_binary::<i32>());
            let mut out = Vec::with_capacity(bytes.len());
            for row in 0..bytes.len() {
                let numbers = integers_at(&numbers, row).filter(|_| bytes.is_valid(row) && pads.is_valid(row));
                let padded = match numbers {
                    Some(numbers) => pad_bytes(bytes.value(row), numbers[0], pads.value(row), left)?,
                    None => None,
                };
                out.push(padded);
            }
            Ok(Arc::new(out.iter().map(|b| b.as_deref()).collect::<BinaryArray>()))
        }
        other => exec_err!("LPAD/RPAD of {other}"),
    }
}

/// One padded string, counting UTF-16 units as Java does.
fn pad_text(input: &str, length: i64, padding: &str, left: bool) -> Result<Option<String>> {
    let Ok(length) = usize::try_from(length) else { return Ok(None) };
    let (input_units, pad_units) = (utf16_len(input), utf16_len(padding));
    if pad_units == 0 {
        return Ok(None);
    }
    if input_units >= length {
        return Ok(Some(utf16_slice(input, 0, length).into_owned()));
    }
    let missing = length - input_units;
    let (whole, part) = (missing / pad_units, missing % pad_units);
    let size = whole.saturating_mul(padding.len()).saturating_add(padding.len()).saturating_add(input.len());
    if size > MAX_PADDED {
        return exec_err!("the padded value would be over {MAX_PADDED} bytes, too large");
    }
    let filler = padding.repeat(whole) + &utf16_slice(padding, 0, part);
    Ok(Some(if left { filler + input } else { input.to_owned() + &filler }))
}

/// One padded BYTES value.
fn pad_bytes(input: &[u8], length: i64, padding: &[u8], left: bool) -> Result<Option<Vec<u8>>> {
    let Ok(length) = usize::try_from(length) else { return Ok(None) };
    if padding.is_empty() {
        return Ok(None);
    }
    if input.len() >= length {
        return Ok(Some(input[..length].to_vec()));
    }
    if length > MAX_PADDED {
        return exec_err!("the padded value would be over {MAX_PADDED} bytes, too large");
    }
    let filler = padding.iter().cycle().take(length - input.len()).copied();
    Ok(Some(if left {
        filler.chain(input.iter().copied()).collect()
    } else {
        input.iter().copied().chain(filler).collect()
    }))
}

/// The most values one batch of series may hold, in bytes (Arrow's offsets are `i32`).
const MAX_SERIES_BYTES: usize = i32::MAX as usize;

/// `GENERATE_SERIES(start, end[, step])`: `start` to `end` inclusive by `step` (1, or -1 when
/// `end` is not above `start`). As ksqlDB computes it, in Java's arithmetic: INT series in
/// `int`, BIGINT series in `long` with an `int` count (`1 + (int) ((end - start) / step)`),
/// so the extremes wrap as they do there. A NULL argument, a step of 0 or one going away
/// from `end`, and a count that is negative or too large are errors.
fn generate_series(args: &Arrays, result: &DataType) -> Result<ArrayRef> {
    use datafusion::arrow::array::{Int32Builder, Int64Builder, ListBuilder};
    let wide: Vec<ArrayRef> =
        args.iter().map(|a| datafusion::arrow::compute::cast(a, &DataType::Int64)).collect::<Result<_, _>>()?;
    let numbers: Vec<Int64Array> = wide.iter().map(|a| a.as_primitive::<Int64Type>().clone()).collect();
    let is_int = matches!(result, DataType::List(item) if item.data_type() == &DataType::Int32);
    let width = if is_int { 4 } else { 8 };
    let rows = args[0].len();
    let mut total = 0usize;
    // Each row's first value, step and count (ksqlDB's parameters are Java primitives: a
    // NULL one is an error).
    let mut series = Vec::with_capacity(rows);
    for row in 0..rows {
        let Some(values) = integers_at(&numbers, row) else {
            return exec_err!("GENERATE_SERIES: an argument is null");
        };
        let (start, end) = (values[0], values[1]);
        let (step, count) = if is_int {
            let (start, end) = (start as i32, end as i32);
            let diff = end.wrapping_sub(start);
            let step = values.get(2).map_or(if diff > 0 { 1 } else { -1 }, |&s| s as i32);
            check_step(i64::from(diff), i64::from(step))?;
            (i64::from(step), 1i32.wrapping_add(diff.wrapping_div(step)))
        } else {
            let diff = end.wrapping_sub(start);
            let step = values.get(2).copied().unwrap_or(if diff > 0 { 1 } else { -1 });
            check_step(diff, step)?;
            (step, 1i32.wrapping_add(diff.wrapping_div(step) as i32))
        };
        let Ok(count) = usize::try_from(count) else {
            return exec_err!("GENERATE_SERIES: Illegal Capacity: {count}");
        };
        total = total.saturating_add(count);
        if total.saturating_mul(width) > MAX_SERIES_BYTES {
            return exec_err!("GENERATE_SERIES: the series is too large");
        }
        series.push((start, step, count));
    }
    if is_int {
        let mut builder = ListBuilder::with_capacity(Int32Builder::with_capacity(total), rows);
        for (start, step, count) in series {
            let (start, step) = (start as i32, step as i32);
            builder.append_value((0..count).map(|i| Some(start.wrapping_add(step.wrapping_mul(i as i32)))));
        }
        Ok(Arc::new(builder.finish()))
    } else {
        let mut builder = ListBuilder::with_capacity(Int64Builder::with_capacity(total), rows);
        for (start, step, count) in series {
            builder.append_value((0..count).map(|i| Some(start.wrapping_add(step.wrapping_mul(i as i64)))));
        }
        Ok(Arc::new(builder.finish()))
    }
}

/// ksqlDB's checks of a step: not 0, and pointing from the start towards the end.
fn check_step(diff: i64, step: i64) -> Result<()> {
    if step == 0 {
        return exec_err!("GENERATE_SERIES step cannot be zero");
    }
    if (diff > 0 && step < 0) || (diff < 0 && step > 0) {
        return exec_err!("GENERATE_SERIES step has wrong sign");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{ListArray, StringArray};

    use super::*;

    fn call(
        invoke: crate::engine::udf::Invoke,
        text: &str,
        numbers: &[Option<i32>],
        pad: Option<&str>,
    ) -> Result<Option<String>> {
        let mut args: Vec<ArrayRef> = vec![Arc::new(StringArray::from(vec![text]))];
        args.extend(numbers.iter().map(|n| Arc::new(Int32Array::from(vec![*n])) as ArrayRef));
        args.extend(pad.map(|p| Arc::new(StringArray::from(vec![p])) as ArrayRef));
        let out = invoke(&args, &DataType::Utf8)?;
        Ok(out.as_string::<i32>().iter().next().flatten().map(str::to_owned))
    }

    #[test]
    fn lengths_and_positions_are_utf16_units() {
        let lengths = len(&[Arc::new(StringArray::from(vec!["a😀", "", "é"])) as ArrayRef], &DataType::Int32).unwrap();
        assert_eq!(lengths.as_primitive::<datafusion::arrow::datatypes::Int32Type>().values(), &[3, 0, 1]);
        let substring = |text, numbers: &[Option<i32>]| call(substring, text, numbers, None).unwrap();
        assert_eq!(substring("a😀b", &[Some(4)]).as_deref(), Some("b"));
        assert_eq!(substring("a😀b", &[Some(2), Some(2)]).as_deref(), Some("😀"));
        // Half a pair is U+FFFD, as long as Java's lone surrogate.
        assert_eq!(substring("a😀b", &[Some(3)]).as_deref(), Some("\u{FFFD}b"));
        assert_eq!(substring("a😀b", &[Some(1), Some(2)]).as_deref(), Some("a\u{FFFD}"));
        assert_eq!(substring("hello", &[Some(-3), Some(2)]).as_deref(), Some("ll"));
        assert_eq!(substring("hello", &[Some(0), Some(-1)]).as_deref(), Some(""));
        assert_eq!(substring("hello", &[Some(2), None]), None);
        // Java's int sum of start and length wraps.
        assert_eq!(substring("hello", &[Some(2), Some(i32::MAX)]).as_deref(), Some(""));
        assert_eq!(substring("hello", &[Some(i32::MIN)]).as_deref(), Some("hello"));
    }

    #[test]
    fn pads_count_utf16_units() {
        let lpad = |text, n, pad| call(|a, _| super::pad(a, true), text, &[n], Some(pad)).unwrap();
        let rpad = |text, n, pad| call(|a, _| super::pad(a, false), text, &[n], Some(pad)).unwrap();
        assert_eq!(lpad("hi", Some(5), "ab").as_deref(), Some("abahi"));
        assert_eq!(lpad("😀", Some(3), "x").as_deref(), Some("x😀"));
        assert_eq!(lpad("😀x", Some(1), "x").as_deref(), Some("\u{FFFD}"));
        assert_eq!(rpad("a", Some(4), "😀").as_deref(), Some("a😀\u{FFFD}"));
        assert_eq!(rpad("a", Some(0), "x").as_deref(), Some(""));
        assert_eq!(rpad("a", Some(-1), "x"), None);
        assert_eq!(rpad("a", None, "x"), None);
        assert_eq!(rpad("a", Some(3), ""), None);
        // Over 2 GiB: an error, not an allocation that fails.
        assert!(call(|a, _| super::pad(a, false), "a", &[Some(i32::MAX)], Some("xy")).is_err());
    }

    fn series(args: Vec<ArrayRef>, item: DataType) -> Result<Vec<Option<Vec<i64>>>> {
        let result = DataType::List(Arc::new(datafusion::arrow::datatypes::Field::new("item", item, true)));
        let out = generate_series(&args, &result)?;
        let list = out.as_any().downcast_ref::<ListArray>().unwrap();
        let wide = datafusion::arrow::compute::cast(list.values(), &DataType::Int64)?;
        let values = wide.as_primitive::<Int64Type>();
        Ok((0..list.len())
            .map(|row| {
                let range = list.value_offsets()[row] as usize..list.value_offsets()[row + 1] as usize;
                Some(range.map(|i| values.value(i)).collect())
            })
            .collect())
    }

    fn ints(values: &[i32]) -> ArrayRef {
        Arc::new(Int32Array::from(values.to_vec()))
    }

    #[test]
    fn series_use_javas_arithmetic() {
        let int = |values: &[&[i32]]| series(values.iter().map(|v| ints(v)).collect(), DataType::Int32);
        assert_eq!(int(&[&[1], &[5], &[2]]).unwrap(), [Some(vec![1, 3, 5])]);
        assert_eq!(int(&[&[5], &[1]]).unwrap(), [Some(vec![5, 4, 3, 2, 1])]);
        assert_eq!(int(&[&[3], &[3]]).unwrap(), [Some(vec![3])]);
        // The last value never passes the end.
        assert_eq!(int(&[&[1], &[6], &[2]]).unwrap(), [Some(vec![1, 3, 5])]);
        assert_eq!(int(&[&[5], &[i32::MAX], &[1_073_741_823]]).unwrap(), [Some(vec![5, 1_073_741_828])]);
        // Java's int difference wraps: the default step is then -1, and the count negative.
        assert!(int(&[&[-2], &[i32::MAX]]).is_err());
        // The difference wraps too: here it turns negative, so the step has the wrong sign.
        assert!(int(&[&[-2_147_483_642], &[i32::MAX], &[i32::MAX]]).is_err());
        assert!(int(&[&[1], &[5], &[0]]).is_err());
        assert!(int(&[&[1], &[5], &[-1]]).is_err());
        let nulls = vec![ints(&[1]), Arc::new(Int32Array::from(vec![None])) as ArrayRef];
        assert!(series(nulls, DataType::Int32).is_err());
        // A BIGINT series's count is an int: 5e9 values are too many.
        let longs = vec![
            Arc::new(Int64Array::from(vec![0])) as ArrayRef,
            Arc::new(Int64Array::from(vec![5_000_000_000])) as ArrayRef,
        ];
        assert!(series(longs, DataType::Int64).is_err());
        let longs = vec![
            Arc::new(Int64Array::from(vec![i64::MIN])) as ArrayRef,
            Arc::new(Int64Array::from(vec![i64::MAX])) as ArrayRef,
        ];
        // (end - start) wraps to -1: one step down.
        assert_eq!(series(longs, DataType::Int64).unwrap(), [Some(vec![i64::MIN, i64::MAX])]);
    }
}
