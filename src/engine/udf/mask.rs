//! ksqlDB's masking functions: `MASK`, `MASK_LEFT`, `MASK_RIGHT`, `MASK_KEEP_LEFT` and
//! `MASK_KEEP_RIGHT`, each with the default masks (upper case → `X`, lower case → `x`, digit
//! → `n`, anything else → `-`) or four given ones, where a NULL mask leaves its class as it is.
//!
//! As in ksqlDB, positions and `n` count UTF-16 code units and a character's class is Java's
//! `Character.getType` (upper-case letter `Lu`, lower-case letter `Ll`, decimal digit `Nd`).
//! Java masks a character outside the BMP as two units: the first by the character's class,
//! the second (a lone low surrogate) as "other"; where Java would leave a lone surrogate in
//! the result (a NULL "other" mask, or `n` cutting a pair in two), it is U+FFFD here (as in
//! `SUBSTRING`), so that the result keeps Java's length.

use std::sync::LazyLock;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{DataFusionError, Result, exec_err};
use datafusion::logical_expr::{ScalarUDF, Signature, TypeSignature, Volatility};
use regex::Regex;

use super::words::string_array;
use super::{Arrays, KsqlFunction, returns};

pub fn functions() -> Vec<ScalarUDF> {
    let mut functions = vec![KsqlFunction::udf(
        "mask",
        Signature::one_of(
            vec![TypeSignature::Exact(vec![DataType::Utf8]), TypeSignature::Exact(vec![DataType::Utf8; 5])],
            Volatility::Immutable,
        ),
        returns::<0>,
        |args, _| mask_rows(args, "MASK", None),
    )];
    for (name, invoke) in MASKS_BY_POSITION {
        functions.push(KsqlFunction::udf(name, positional_signature(), returns::<0>, invoke));
    }
    functions
}

/// The functions that mask part of the string, by the count `n` they take.
const MASKS_BY_POSITION: [(&str, super::Invoke); 4] = [
    ("mask_left", |args, _| mask_rows(args, "MASK_LEFT", Some(Part::Left))),
    ("mask_right", |args, _| mask_rows(args, "MASK_RIGHT", Some(Part::Right))),
    ("mask_keep_left", |args, _| mask_rows(args, "MASK_KEEP_LEFT", Some(Part::AllButLeft))),
    ("mask_keep_right", |args, _| mask_rows(args, "MASK_KEEP_RIGHT", Some(Part::AllButRight))),
];

/// `(STRING, INT)` and `(STRING, INT, STRING × 4)`, the count an INT or a BIGINT.
fn positional_signature() -> Signature {
    let variants = [DataType::Int32, DataType::Int64]
        .into_iter()
        .flat_map(|n| {
            let mut with_masks = vec![DataType::Utf8, n.clone()];
            with_masks.extend(vec![DataType::Utf8; 4]);
            [TypeSignature::Exact(vec![DataType::Utf8, n]), TypeSignature::Exact(with_masks)]
        })
        .collect();
    Signature::one_of(variants, Volatility::Immutable)
}

/// Which `n` units of the string are masked.
#[derive(Debug, Clone, Copy)]
enum Part {
    /// The first n.
    Left,
    /// The last n.
    Right,
    /// All but the first n.
    AllButLeft,
    /// All but the last n.
    AllButRight,
}

impl Part {
    /// The range of units masked in a string of `length` units.
    fn range(self, length: usize, n: usize) -> std::ops::Range<usize> {
        let n = n.min(length);
        match self {
            Part::Left => 0..n,
            Part::Right => length - n..length,
            Part::AllButLeft => n..length,
            Part::AllButRight => 0..length - n,
        }
    }
}

/// The replacement for each class of character; `None` leaves the class unmasked.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Masks {
    upper: Option<u16>,
    lower: Option<u16>,
    digit: Option<u16>,
    other: Option<u16>,
}

const DEFAULT_MASKS: Masks =
    Masks { upper: Some(b'X' as u16), lower: Some(b'x' as u16), digit: Some(b'n' as u16), other: Some(b'-' as u16) };

/// Masks each row: `args` is the string, then (with `part`) the count, then optionally the
/// four masks. Per row, as ksqlDB checks: a mask that is not one UTF-16 unit is an error,
/// then a NULL or negative count, and only then is a NULL string NULL.
fn mask_rows(args: &Arrays, name: &str, part: Option<Part>) -> Result<ArrayRef> {
    let texts = args[0].as_string::<i32>();
    let counts = match part {
        Some(_) => Some(cast(&args[1], &DataType::Int64)?),
        None => None,
    };
    let counts = counts.as_ref().map(|c| c.as_primitive::<Int64Type>());
    let first_mask = if part.is_some() { 2 } else { 1 };
    let masks: Vec<&StringArray> = args.get(first_mask..).unwrap_or_default().iter().map(|a| a.as_string()).collect();
    let mut out = Vec::with_capacity(texts.len());
    for row in 0..texts.len() {
        let row_masks = match masks.as_slice() {
            [upper, lower, digit, other] => Masks {
                upper: mask_char(upper, row)?,
                lower: mask_char(lower, row)?,
                digit: mask_char(digit, row)?,
                other: mask_char(other, row)?,
            },
            _ => DEFAULT_MASKS,
        };
        let n = match counts {
            Some(counts) if counts.is_null(row) => {
                return exec_err!("function {name} requires a number of characters to mask or skip, not NULL");
            }
            Some(counts) => match usize::try_from(counts.value(row)) {
                Ok(n) => Some(n),
                Err(_) => {
                    return exec_err!("function {name} requires a non-negative number of characters to mask or skip");
                }
            },
            None => None,
        };
        if texts.is_null(row) {
            out.push(None);
            continue;
        }
        let units: Vec<u16> = texts.value(row).encode_utf16().collect();
        let range = match (part, n) {
            (Some(part), Some(n)) => part.range(units.len(), n),
            _ => 0..units.len(),
        };
        out.push(Some(mask_range(&units, range, &row_masks)));
    }
    string_array(&out)
}

/// The mask in row `row` of `masks`: `None` for NULL, else it must be one UTF-16 unit.
fn mask_char(masks: &StringArray, row: usize) -> Result<Option<u16>> {
    if masks.is_null(row) {
        return Ok(None);
    }
    let mask = masks.value(row);
    let mut units = mask.encode_utf16();
    match (units.next(), units.next()) {
        (Some(unit), None) => Ok(Some(unit)),
        _ => Err(DataFusionError::Execution(format!(
            "Invalid mask character. Must be only single character, but was '{mask}'"
        ))),
    }
}

/// `units` with those in `range` masked as Java's `Masker.mask` masks a substring, as text.
fn mask_range(units: &[u16], range: std::ops::Range<usize>, masks: &Masks) -> String {
    let (start, end) = (range.start.min(units.len()), range.end.min(units.len()));
    let mut out: Vec<u16> = Vec::with_capacity(units.len());
    out.extend_from_slice(units.get(..start).unwrap_or_default());
    let masked = units.get(start..end.max(start)).unwrap_or_default();
    for i in 0..masked.len() {
        // Java's `codePointAt(i)`: a whole pair at a high surrogate, else the unit alone.
        let code_point = match (masked[i], masked.get(i + 1)) {
            (high @ 0xD800..=0xDBFF, Some(&low @ 0xDC00..=0xDFFF)) => {
                0x10000 + ((u32::from(high) - 0xD800) << 10) + (u32::from(low) - 0xDC00)
            }
            (unit, _) => u32::from(unit),
        };
        match class_mask(code_point, masks) {
            Some(mask) => out.push(mask),
            None => match char::from_u32(code_point) {
                Some(c) => out.extend_from_slice(c.encode_utf16(&mut [0; 2])),
                // A lone surrogate: Java keeps it, only to make the text invalid.
                None => out.push(masked[i]),
            },
        }
    }
    out.extend_from_slice(units.get(end.max(start)..).unwrap_or_default());
    // Lone surrogates (see the module's comment) are U+FFFD.
    char::decode_utf16(out).map(|c| c.unwrap_or('\u{FFFD}')).collect()
}

/// The mask for a code point's class (a lone surrogate is "other").
fn class_mask(code_point: u32, masks: &Masks) -> Option<u16> {
    let Some(c) = char::from_u32(code_point) else { return masks.other };
    match class_of(c) {
        Class::Upper => masks.upper,
        Class::Lower => masks.lower,
        Class::Digit => masks.digit,
        Class::Other => masks.other,
    }
}

/// A character's class, as Java's `Character.getType` draws the lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Upper,
    Lower,
    Digit,
    Other,
}

/// Unicode's general categories `Lu`, `Ll` and `Nd` (the `regex` crate has their tables).
static UPPER: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"\A\p{Lu}\z").ok());
static LOWER: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"\A\p{Ll}\z").ok());
static DIGIT: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"\A\p{Nd}\z").ok());

fn class_of(c: char) -> Class {
    match c {
        'A'..='Z' => Class::Upper,
        'a'..='z' => Class::Lower,
        '0'..='9' => Class::Digit,
        c if c.is_ascii() => Class::Other,
        c => {
            let mut buffer = [0; 4];
            let text = c.encode_utf8(&mut buffer);
            let is = |category: &LazyLock<Option<Regex>>| category.as_ref().is_some_and(|r| r.is_match(text));
            if is(&UPPER) {
                Class::Upper
            } else if is(&LOWER) {
                Class::Lower
            } else if is(&DIGIT) {
                Class::Digit
            } else {
                Class::Other
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Int32Array, Int64Array};

    use super::*;

    use crate::engine::udf::test_arrays::{strings, texts};

    /// `MASK…(input, n[, masks])` on one row.
    fn run(
        part: Option<Part>,
        input: Option<&str>,
        n: Option<i64>,
        masks: Option<[Option<&str>; 4]>,
    ) -> Result<Option<String>> {
        let mut args = vec![strings(&[input])];
        if part.is_some() {
            args.push(Arc::new(Int64Array::from(vec![n])));
        }
        for mask in masks.iter().flatten() {
            args.push(strings(&[*mask]));
        }
        Ok(texts(&mask_rows(&args, "TEST", part)?).remove(0))
    }

    fn mask(input: &str) -> Option<String> {
        run(None, Some(input), None, None).unwrap()
    }

    const CUSTOM: Option<[Option<&str>; 4]> = Some([Some("U"), Some("l"), Some("#"), Some("*")]);

    #[test]
    fn mask_replaces_by_class() {
        assert_eq!(mask("AbC-12 x").as_deref(), Some("XxX-nn-x"));
        assert_eq!(run(None, Some("AbC-12"), None, CUSTOM).unwrap().as_deref(), Some("UlU*##"));
        let keep_upper = Some([None, Some("l"), Some("#"), Some("*")]);
        assert_eq!(run(None, Some("AbC-12"), None, keep_upper).unwrap().as_deref(), Some("AlC*##"));
        assert_eq!(run(None, None, None, None).unwrap(), None);
        assert_eq!(mask("").as_deref(), Some(""));
        // Java's classes beyond ASCII: Lu, Ll, Nd; a titlecase letter, a letter-like symbol
        // (Other_Uppercase, not Lu) and a non-decimal number are "other".
        assert_eq!(mask("ÉéΣσ٣ǅⒶ½").as_deref(), Some("XxXxn---"));
    }

    #[test]
    fn bad_masks_are_errors_even_for_a_null_string() {
        assert!(run(None, Some("AbC"), None, Some([Some("UU"), Some("l"), Some("#"), Some("*")])).is_err());
        assert!(run(None, None, None, Some([Some(""), Some("l"), Some("#"), Some("*")])).is_err());
        // A character outside the BMP is two UTF-16 units, so not one mask character.
        assert!(run(None, Some("a"), None, Some([Some("😀"), None, None, None])).is_err());
        assert!(run(Some(Part::Left), Some("a"), Some(1), Some([Some("ab"), None, None, None])).is_err());
    }

    #[test]
    fn positional_masks() {
        let left = |s, n| run(Some(Part::Left), Some(s), Some(n), None).unwrap();
        assert_eq!(left("AbCd12", 2).as_deref(), Some("XxCd12"));
        assert_eq!(left("AbCd12", 0).as_deref(), Some("AbCd12"));
        assert_eq!(run(Some(Part::Left), Some("AbCd12"), Some(20), CUSTOM).unwrap().as_deref(), Some("UlUl##"));
        let right = |s, n| run(Some(Part::Right), Some(s), Some(n), None).unwrap();
        assert_eq!(right("AbCd12", 2).as_deref(), Some("AbCdnn"));
        assert_eq!(right("AbCd12", 9).as_deref(), Some("XxXxnn"));
        assert_eq!(run(Some(Part::Right), Some("AbCd12"), Some(2), CUSTOM).unwrap().as_deref(), Some("AbCd##"));
        let keep_left = |s, n| run(Some(Part::AllButLeft), Some(s), Some(n), None).unwrap();
        assert_eq!(keep_left("AbCd12", 2).as_deref(), Some("AbXxnn"));
        assert_eq!(keep_left("AbCd12", 10).as_deref(), Some("AbCd12"));
        assert_eq!(run(Some(Part::AllButLeft), Some("AbCd12"), Some(2), CUSTOM).unwrap().as_deref(), Some("AbUl##"));
        let keep_right = |s, n| run(Some(Part::AllButRight), Some(s), Some(n), None).unwrap();
        assert_eq!(keep_right("AbCd12", 2).as_deref(), Some("XxXx12"));
        assert_eq!(keep_right("AbCd12", 10).as_deref(), Some("AbCd12"));
        assert_eq!(keep_right("AbCd12", 0).as_deref(), Some("XxXxnn"));
    }

    #[test]
    fn counts_and_nulls() {
        for part in [Part::Left, Part::Right, Part::AllButLeft, Part::AllButRight] {
            assert!(run(Some(part), Some("abc"), Some(-1), None).is_err());
            assert!(run(Some(part), Some("abc"), None, None).is_err());
            // A bad count is an error before a NULL string is NULL, as in ksqlDB.
            assert!(run(Some(part), None, Some(-1), None).is_err());
            assert_eq!(run(Some(part), None, Some(1), None).unwrap(), None);
        }
        // INT counts work as BIGINT ones.
        let args = [strings(&[Some("AbCd12")]), Arc::new(Int32Array::from(vec![3])) as ArrayRef];
        assert_eq!(texts(&mask_rows(&args, "MASK_LEFT", Some(Part::Left)).unwrap()), vec![Some("XxXd12".to_owned())]);
    }

    #[test]
    fn characters_outside_the_bmp_are_two_units() {
        // Masked: the character by its class, its second unit as "other".
        assert_eq!(mask("a😀").as_deref(), Some("x--"));
        assert_eq!(mask("𝐀").as_deref(), Some("X-"));
        // Unmasked: the character stays, then its second unit (a lone surrogate to Java).
        let keep_other = Some([Some("U"), Some("l"), Some("#"), None]);
        assert_eq!(run(None, Some("a😀b"), None, keep_other).unwrap().as_deref(), Some("l😀\u{FFFD}l"));
        // `n` counts units: 1 keeps "a", 2 more mask the emoji.
        assert_eq!(run(Some(Part::AllButLeft), Some("a😀"), Some(1), None).unwrap().as_deref(), Some("a--"));
        // Cutting a pair in two: the masked half is "other", the kept half U+FFFD.
        assert_eq!(run(Some(Part::Left), Some("😀b"), Some(1), None).unwrap().as_deref(), Some("-\u{FFFD}b"));
    }
}
