//! Numbers read from their bytes: `INT_FROM_BYTES`, `BIGINT_FROM_BYTES`, `DOUBLE_FROM_BYTES`.
//!
//! Each takes the bytes and, optionally, a byte order: `'BIG_ENDIAN'` (the default) or
//! `'LITTLE_ENDIAN'`, in any case. As in ksqlDB, the byte order is checked before anything
//! else (so a bad or NULL order is an error even for NULL bytes), then NULL bytes give NULL,
//! and bytes of the wrong length are an error.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int32Array, Int64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{ScalarUDF, Signature, TypeSignature, Volatility};

use super::{Arrays, KsqlFunction};

pub fn functions() -> Vec<ScalarUDF> {
    vec![
        KsqlFunction::udf("int_from_bytes", signature(), |_| Ok(DataType::Int32), int_from_bytes),
        KsqlFunction::udf("bigint_from_bytes", signature(), |_| Ok(DataType::Int64), bigint_from_bytes),
        KsqlFunction::udf("double_from_bytes", signature(), |_| Ok(DataType::Float64), double_from_bytes),
    ]
}

/// `INT_FROM_BYTES(bytes[, order])`: a 4-byte two's-complement integer.
fn int_from_bytes(args: &Arrays, _: &DataType) -> Result<ArrayRef> {
    let values = read::<4>(args)?;
    Ok(Arc::new(values.into_iter().map(|v| v.map(i32::from_be_bytes)).collect::<Int32Array>()))
}

/// `BIGINT_FROM_BYTES(bytes[, order])`: an 8-byte two's-complement integer.
fn bigint_from_bytes(args: &Arrays, _: &DataType) -> Result<ArrayRef> {
    let values = read::<8>(args)?;
    Ok(Arc::new(values.into_iter().map(|v| v.map(i64::from_be_bytes)).collect::<Int64Array>()))
}

/// `DOUBLE_FROM_BYTES(bytes[, order])`: an 8-byte IEEE-754 double.
fn double_from_bytes(args: &Arrays, _: &DataType) -> Result<ArrayRef> {
    let values = read::<8>(args)?;
    Ok(Arc::new(values.into_iter().map(|v| v.map(f64::from_be_bytes)).collect::<Float64Array>()))
}

/// `(BYTES)` or `(BYTES, STRING)`.
fn signature() -> Signature {
    Signature::one_of(
        vec![
            TypeSignature::Exact(vec![DataType::Binary]),
            TypeSignature::Exact(vec![DataType::Binary, DataType::Utf8]),
        ],
        Volatility::Immutable,
    )
}

/// Per row, the `N` bytes in big-endian order (reversed when the row asks for
/// little-endian), or `None` for NULL bytes; an error for a bad byte order or length.
fn read<const N: usize>(args: &Arrays) -> Result<Vec<Option<[u8; N]>>> {
    let bytes = cast(&args[0], &DataType::Binary)?;
    let bytes = bytes.as_binary::<i32>();
    let orders = match args.get(1) {
        Some(orders) => Some(cast(orders, &DataType::Utf8)?),
        None => None,
    };
    let orders = orders.as_ref().map(|o| o.as_string::<i32>());
    let mut out = Vec::with_capacity(bytes.len());
    for row in 0..bytes.len() {
        let little_endian = match orders {
            None => false,
            Some(orders) => little_endian(orders.is_valid(row).then(|| orders.value(row)))?,
        };
        if bytes.is_null(row) {
            out.push(None);
            continue;
        }
        let value = bytes.value(row);
        let Ok(mut fixed) = <[u8; N]>::try_from(value) else {
            return exec_err!("Number of bytes must be equal to {N}, but found {}", value.len());
        };
        if little_endian {
            fixed.reverse();
        }
        out.push(Some(fixed));
    }
    Ok(out)
}

/// Whether a byte order names little-endian; an error unless it is `BIG_ENDIAN` or
/// `LITTLE_ENDIAN` (Java's `equalsIgnoreCase`).
fn little_endian(order: Option<&str>) -> Result<bool> {
    match order {
        Some(order) if java_equals_ignore_case(order, "BIG_ENDIAN") => Ok(false),
        Some(order) if java_equals_ignore_case(order, "LITTLE_ENDIAN") => Ok(true),
        _ => exec_err!(
            "Byte order must be BIG_ENDIAN or LITTLE_ENDIAN. Unknown byte order '{}'.",
            order.unwrap_or("null")
        ),
    }
}

/// Java's `String.equalsIgnoreCase`: UTF-16 units equal as they are, upper-cased or
/// lower-cased one by one (so a dotless `ı` matches `I`).
fn java_equals_ignore_case(a: &str, b: &str) -> bool {
    let (mut a, mut b) = (a.encode_utf16(), b.encode_utf16());
    loop {
        match (a.next(), b.next()) {
            (None, None) => return true,
            (Some(x), Some(y)) if x == y || same_ignoring_case(x, y) => {}
            _ => return false,
        }
    }
}

/// Two UTF-16 units equal after Java's one-character upper- or lower-casing.
fn same_ignoring_case(x: u16, y: u16) -> bool {
    let (Some(x), Some(y)) = (char::from_u32(u32::from(x)), char::from_u32(u32::from(y))) else { return false };
    simple_upper(x) == simple_upper(y) || simple_lower(x) == simple_lower(y)
}

/// Java's `Character.toUpperCase`: the character itself where the mapping is not one character.
fn simple_upper(c: char) -> char {
    let mut mapped = c.to_uppercase();
    match (mapped.next(), mapped.next()) {
        (Some(upper), None) => upper,
        _ => c,
    }
}

/// Java's `Character.toLowerCase` (`İ` lower-cases to `i`).
fn simple_lower(c: char) -> char {
    if c == '\u{130}' {
        return 'i';
    }
    let mut mapped = c.to_lowercase();
    match (mapped.next(), mapped.next()) {
        (Some(lower), None) => lower,
        _ => c,
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{BinaryArray, StringArray};

    use super::*;

    fn call(name: &str, args: Vec<ArrayRef>) -> Result<ArrayRef> {
        let invoke: super::super::Invoke = match name {
            "int_from_bytes" => int_from_bytes,
            "bigint_from_bytes" => bigint_from_bytes,
            _ => double_from_bytes,
        };
        invoke(&args, &DataType::Null)
    }

    fn bytes(values: Vec<Option<&[u8]>>) -> ArrayRef {
        Arc::new(BinaryArray::from(values))
    }

    fn orders(values: Vec<Option<&str>>) -> ArrayRef {
        Arc::new(StringArray::from(values))
    }

    #[test]
    fn int_from_bytes_reads_four_bytes_in_either_order() {
        let one: &[u8] = &[0, 0, 0, 1];
        let minus: &[u8] = &[0xff, 0xff, 0xff, 0xfe];
        let out = call("int_from_bytes", vec![bytes(vec![Some(one), Some(minus), None])]).unwrap();
        assert_eq!(
            out.as_primitive::<datafusion::arrow::datatypes::Int32Type>(),
            &Int32Array::from(vec![Some(1), Some(-2), None])
        );
        let out = call(
            "int_from_bytes",
            vec![bytes(vec![Some(one), Some(one)]), orders(vec![Some("little_endian"), Some("Big_Endian")])],
        )
        .unwrap();
        assert_eq!(
            out.as_primitive::<datafusion::arrow::datatypes::Int32Type>(),
            &Int32Array::from(vec![16_777_216, 1])
        );
    }

    #[test]
    fn wrong_length_or_order_is_an_error() {
        let short: &[u8] = &[1, 2, 3];
        let error = call("int_from_bytes", vec![bytes(vec![Some(short)])]).unwrap_err().to_string();
        assert!(error.contains("Number of bytes must be equal to 4, but found 3"), "{error}");
        let eight: &[u8] = &[0; 8];
        assert!(call("bigint_from_bytes", vec![bytes(vec![Some(eight)]), orders(vec![Some("MIDDLE")])]).is_err());
        // The order is checked first, so a NULL order fails even for NULL bytes.
        let error = call("double_from_bytes", vec![bytes(vec![None]), orders(vec![None])]).unwrap_err().to_string();
        assert!(error.contains("Unknown byte order 'null'"), "{error}");
        assert!(call("bigint_from_bytes", vec![bytes(vec![Some(&[0; 4])])]).is_err());
    }

    #[test]
    fn bigint_and_double_from_bytes() {
        let big: &[u8] = &[0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        let out = call("bigint_from_bytes", vec![bytes(vec![Some(big), None])]).unwrap();
        assert_eq!(
            out.as_primitive::<datafusion::arrow::datatypes::Int64Type>(),
            &Int64Array::from(vec![Some(i64::MAX), None])
        );
        let little = 1.5f64.to_le_bytes();
        let out = call(
            "double_from_bytes",
            vec![
                bytes(vec![Some(&1.5f64.to_be_bytes()), Some(&little)]),
                orders(vec![Some("BIG_ENDIAN"), Some("LITTLE_ENDIAN")]),
            ],
        )
        .unwrap();
        assert_eq!(
            out.as_primitive::<datafusion::arrow::datatypes::Float64Type>(),
            &Float64Array::from(vec![1.5, 1.5])
        );
    }

    #[test]
    fn byte_order_compares_like_java() {
        assert!(java_equals_ignore_case("big_endian", "BIG_ENDIAN"));
        assert!(java_equals_ignore_case("b\u{131}g_endian", "BIG_ENDIAN"));
        assert!(!java_equals_ignore_case("BIG_ENDIANS", "BIG_ENDIAN"));
        assert!(!java_equals_ignore_case("", "BIG_ENDIAN"));
    }
}
