//! Bytes and their text: `TO_BYTES`, `FROM_BYTES` and `ENCODE` in the encodings ksqlDB
//! names (`hex`, `utf8`, `ascii`, `base64`), and numbers read from bytes: `INT_FROM_BYTES`,
//! `BIGINT_FROM_BYTES`, `DOUBLE_FROM_BYTES`.
//!
//! The encodings are Java's, as ksqlDB uses them. `TO_BYTES` is strict: hex of even length
//! without a prefix (`DatatypeConverter.parseHexBinary`), base64 as `java.util.Base64`
//! decodes it (padding optional but, if there, right). `ENCODE` uses Commons Codec: hex may
//! be written `0x…` (an odd count of digits gets a leading 0) or `X'…'`/`x'…'`, and base64
//! is lenient (characters outside the alphabet skipped, both alphabets, decoding stops at
//! `=`). Bytes that are not UTF-8 (or ASCII) become text with U+FFFD in their place, and
//! characters that are not ASCII become `?` in ASCII, never an error.
//!
//! The number functions take the bytes and, optionally, a byte order: `'BIG_ENDIAN'` (the
//! default) or `'LITTLE_ENDIAN'`, in any case. As in ksqlDB, the byte order is checked before
//! anything else (so a bad or NULL order is an error even for NULL bytes), then NULL bytes
//! give NULL, and bytes of the wrong length are an error.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BinaryArray, Float64Array, Int32Array, Int64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{ScalarUDF, Signature, TypeSignature, Volatility};

use super::{Arrays, KsqlFunction, returns};

pub fn functions() -> Vec<ScalarUDF> {
    let text = |n: usize| Signature::exact(vec![DataType::Utf8; n], Volatility::Immutable);
    vec![
        KsqlFunction::udf("to_bytes", text(2), |_| Ok(DataType::Binary), to_bytes),
        KsqlFunction::udf(
            "from_bytes",
            Signature::exact(vec![DataType::Binary, DataType::Utf8], Volatility::Immutable),
            returns::<0>,
            from_bytes,
        ),
        // ksqlDB's ENCODE(text, from, to) replaces DataFusion's ENCODE(bytes, format).
        KsqlFunction::udf("encode", text(3), returns::<0>, encode),
        KsqlFunction::udf("int_from_bytes", signature(), |_| Ok(DataType::Int32), int_from_bytes),
        KsqlFunction::udf("bigint_from_bytes", signature(), |_| Ok(DataType::Int64), bigint_from_bytes),
        KsqlFunction::udf("double_from_bytes", signature(), |_| Ok(DataType::Float64), double_from_bytes),
    ]
}

/// An encoding ksqlDB names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Hex,
    Utf8,
    Ascii,
    Base64,
}

impl Encoding {
    /// ksqlDB's `Encoding.from`: the name in any case (Java's `equalsIgnoreCase`).
    fn named(name: &str) -> Result<Encoding> {
        for (known, encoding) in
            [("hex", Encoding::Hex), ("utf8", Encoding::Utf8), ("ascii", Encoding::Ascii), ("base64", Encoding::Base64)]
        {
            if java_equals_ignore_case(name, known) {
                return Ok(encoding);
            }
        }
        exec_err!("Unknown encoding type '{name}'. Supported formats are 'hex', 'utf8', 'ascii', and 'base64'.")
    }

    /// Bytes as text: hex in capitals when `upper_hex` (ksqlDB's FROM_BYTES) else in lower
    /// case (ENCODE), base64 padded, UTF-8 and ASCII with U+FFFD for what they cannot read.
    fn text(self, bytes: &[u8], upper_hex: bool) -> String {
        match self {
            Encoding::Hex => {
                let digits: &[u8; 16] = if upper_hex { b"0123456789ABCDEF" } else { b"0123456789abcdef" };
                bytes
                    .iter()
                    .flat_map(|b| [digits[usize::from(b >> 4)] as char, digits[usize::from(b & 15)] as char])
                    .collect()
            }
            Encoding::Utf8 => String::from_utf8_lossy(bytes).into_owned(),
            Encoding::Ascii => bytes.iter().map(|&b| if b.is_ascii() { char::from(b) } else { '\u{FFFD}' }).collect(),
            Encoding::Base64 => crate::format::base64_encode(bytes),
        }
    }
}

/// Java's `getBytes(US_ASCII)`: each character outside ASCII is `?`.
fn ascii_bytes(text: &str) -> Vec<u8> {
    text.chars().map(|c| if c.is_ascii() { c as u8 } else { b'?' }).collect()
}

/// `TO_BYTES(text, encoding)`: the text decoded; an unknown encoding, hex that is not an even
/// count of hex digits, or text that is not base64 is an error.
fn to_bytes(args: &Arrays, _: &DataType) -> Result<ArrayRef> {
    let (texts, encodings) = (args[0].as_string::<i32>(), args[1].as_string::<i32>());
    let mut out: Vec<Option<Vec<u8>>> = Vec::with_capacity(texts.len());
    for row in 0..texts.len() {
        if texts.is_null(row) || encodings.is_null(row) {
            out.push(None);
            continue;
        }
        let text = texts.value(row);
        out.push(Some(match Encoding::named(encodings.value(row))? {
            Encoding::Hex => match strict_hex(text) {
                Ok(bytes) => bytes,
                Err(why) => return exec_err!("{why}: {text}"),
            },
            Encoding::Utf8 => text.as_bytes().to_vec(),
            Encoding::Ascii => ascii_bytes(text),
            Encoding::Base64 => match java_base64(text) {
                Ok(bytes) => bytes,
                Err(why) => return exec_err!("{why}"),
            },
        }));
    }
    Ok(Arc::new(out.iter().map(|b| b.as_deref()).collect::<BinaryArray>()))
}

/// `FROM_BYTES(bytes, encoding)`: the bytes as text (hex in capitals); an unknown encoding is
/// an error.
fn from_bytes(args: &Arrays, _: &DataType) -> Result<ArrayRef> {
    let (bytes, encodings) = (args[0].as_binary::<i32>(), args[1].as_string::<i32>());
    let mut out = Vec::with_capacity(bytes.len());
    for row in 0..bytes.len() {
        if bytes.is_null(row) || encodings.is_null(row) {
            out.push(None);
            continue;
        }
        out.push(Some(Encoding::named(encodings.value(row))?.text(bytes.value(row), true)));
    }
    super::words::string_array(&out)
}

/// `ENCODE(text, from, to)`: the text read in one encoding and written in another. The pair
/// is looked up as ksqlDB does, by the two names lower-cased and joined (`'hexa', 'scii'` is
/// hex to ascii); the same encoding twice, or an unknown one, is an error, as is invalid hex.
fn encode(args: &Arrays, _: &DataType) -> Result<ArrayRef> {
    let (texts, from, to) = (args[0].as_string::<i32>(), args[1].as_string::<i32>(), args[2].as_string::<i32>());
    let mut out = Vec::with_capacity(texts.len());
    for row in 0..texts.len() {
        if texts.is_null(row) || from.is_null(row) || to.is_null(row) {
            out.push(None);
            continue;
        }
        let Some((input, output)) = encoding_pair(&(from.value(row).to_lowercase() + &to.value(row).to_lowercase()))
        else {
            return exec_err!("Supported input and output encodings are: hex, utf8, ascii and base64");
        };
        let text = texts.value(row);
        let bytes = match input {
            Encoding::Hex => match commons_hex(text) {
                Ok(bytes) => bytes,
                Err(why) => return exec_err!("{why}"),
            },
            Encoding::Utf8 => text.as_bytes().to_vec(),
            Encoding::Ascii => ascii_bytes(text),
            Encoding::Base64 => lenient_base64(text),
        };
        out.push(Some(output.text(&bytes, false)));
    }
    super::words::string_array(&out)
}

/// ENCODE's twelve conversions, by their joined names.
fn encoding_pair(joined: &str) -> Option<(Encoding, Encoding)> {
    let names =
        [("hex", Encoding::Hex), ("utf8", Encoding::Utf8), ("ascii", Encoding::Ascii), ("base64", Encoding::Base64)];
    for (from_name, from) in names {
        for (to_name, to) in names {
            if from != to
                && joined.len() == from_name.len() + to_name.len()
                && joined.starts_with(from_name)
                && joined.ends_with(to_name)
            {
                return Some((from, to));
            }
        }
    }
    None
}

/// Pairs of hex digits (either case) as bytes: an odd count (of UTF-16 units, checked
/// first as in Java) or another character is an error, with Java's reason.
fn hex_pairs(hex: &str, odd: &str, illegal: impl Fn(char, usize) -> String) -> std::result::Result<Vec<u8>, String> {
    if super::string::utf16_len(hex) % 2 == 1 {
        return Err(odd.to_owned());
    }
    if let Some((index, c)) = hex.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
        return Err(illegal(c, index));
    }
    let digit = |b: u8| char::from(b).to_digit(16).unwrap_or(0) as u8;
    Ok(hex.as_bytes().chunks(2).map(|pair| (digit(pair[0]) << 4) | digit(pair[1])).collect())
}

/// TO_BYTES's hex (`DatatypeConverter.parseHexBinary`): no prefix, an even count of digits.
fn strict_hex(hex: &str) -> std::result::Result<Vec<u8>, String> {
    hex_pairs(hex, "hexBinary needs to be even-length", |_, _| "contains illegal character for hexBinary".into())
}

/// ENCODE's hex (Commons Codec's `Hex.decodeHex`, after ksqlDB strips `0x`, padding an odd
/// count of digits after it with a leading 0, or `X'…'`).
fn commons_hex(text: &str) -> std::result::Result<Vec<u8>, String> {
    let hex =
        match text.strip_prefix("0x") {
            // Java's `matches("0x.*")`: `.` is no line terminator.
            Some(digits) if !digits.contains(['\n', '\r', '\u{85}', '\u{2028}', '\u{2029}']) => {
                if digits.len() % 2 == 1 { format!("0{digits}") } else { digits.to_owned() }
            }
            _ => match text
                .strip_prefix(['x', 'X'])
                .and_then(|t| t.strip_prefix('\''))
                .and_then(|t| t.strip_suffix('\''))
            {
                Some(digits) if !digits.contains(['\n', '\r', '\u{85}', '\u{2028}', '\u{2029}']) => digits.to_owned(),
                _ => text.to_owned(),
            },
        };
    hex_pairs(&hex, "Odd number of characters.", |c, index| {
        format!("Illegal hexadecimal character {c} at index {index}")
    })
}

/// Commons Codec's lenient base64: either alphabet (`-` and `_` as `+` and `/`), other
/// characters skipped, decoding ends at the first `=`, and a last lone digit (6 bits) is
/// dropped.
fn lenient_base64(text: &str) -> Vec<u8> {
    let mut digits: Vec<u8> = text
        .bytes()
        .take_while(|&b| b != b'=')
        .filter_map(|b| match b {
            b'-' => Some(b'+'),
            b'_' => Some(b'/'),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' => Some(b),
            _ => None,
        })
        .collect();
    if digits.len() % 4 == 1 {
        digits.pop();
    }
    // Only alphabet digits are left, in a length that decodes.
    base64::Engine::decode(&crate::format::BASE64, &digits).unwrap_or_default()
}

/// `java.util.Base64`'s basic decoder: only the standard alphabet; padding optional, but a
/// final unit of one digit, a wrong count of `=`, or anything after them is an error, said
/// as Java says it. The unused bits of the last digit are not checked.
fn java_base64(text: &str) -> std::result::Result<Vec<u8>, String> {
    use base64::DecodeError;
    // Padding, where there is some, completes the last unit of four.
    if text.ends_with('=') && !text.len().is_multiple_of(4) {
        return Err("Input byte array has wrong 4-byte ending unit".to_owned());
    }
    base64::Engine::decode(&crate::format::BASE64, text).map_err(|e| match e {
        DecodeError::InvalidByte(_, b'=') | DecodeError::InvalidPadding => {
            "Input byte array has wrong 4-byte ending unit".to_owned()
        }
        DecodeError::InvalidByte(_, b) => format!("Illegal base64 character {:x}", b as i8),
        DecodeError::InvalidLength(_) => "Last unit does not have enough valid bits".to_owned(),
        DecodeError::InvalidLastSymbol(at, _) => format!("Input byte array has incorrect ending byte at {at}"),
    })
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

    /// ENCODE, TO_BYTES or FROM_BYTES on one row of text arguments, the first as its UTF-8
    /// bytes when `bytes_first`; a binary result is shown as a list of bytes.
    fn text_call(invoke: super::super::Invoke, args: &[&str], bytes_first: bool) -> Result<Option<String>> {
        let mut columns: Vec<ArrayRef> =
            args.iter().map(|a| Arc::new(StringArray::from(vec![*a])) as ArrayRef).collect();
        if bytes_first {
            columns[0] = Arc::new(BinaryArray::from(vec![args[0].as_bytes()]));
        }
        let out = invoke(&columns, &DataType::Utf8)?;
        Ok(match out.data_type() {
            DataType::Binary => out.as_binary::<i32>().iter().next().flatten().map(|b| format!("{b:?}")),
            _ => out.as_string::<i32>().iter().next().flatten().map(str::to_owned),
        })
    }

    #[test]
    fn encode_is_commons_codecs() {
        let encode = |text: &str, from: &str, to: &str| text_call(encode, &[text, from, to], false);
        assert_eq!(encode("616263", "hex", "utf8").unwrap().as_deref(), Some("abc"));
        assert!(encode("0x616", "hex", "hex").unwrap_err().to_string().contains("Supported"));
        assert_eq!(encode("0x616", "HEX", "base64").unwrap().as_deref(), Some("BhY="));
        assert_eq!(encode("X'6162'", "hex", "ascii").unwrap().as_deref(), Some("ab"));
        assert_eq!(encode("x''", "hex", "ascii").unwrap().as_deref(), Some(""));
        assert_eq!(encode("ff41", "hex", "ascii").unwrap().as_deref(), Some("\u{FFFD}A"));
        assert_eq!(encode("é", "utf8", "hex").unwrap().as_deref(), Some("c3a9"));
        assert_eq!(encode("é", "ascii", "hex").unwrap().as_deref(), Some("3f"));
        assert_eq!(encode("é", "utf8", "ascii").unwrap().as_deref(), Some("\u{FFFD}\u{FFFD}"));
        assert_eq!(encode("Y W\nJj=ignored", "base64", "utf8").unwrap().as_deref(), Some("abc"));
        assert_eq!(encode("-_8", "base64", "hex").unwrap().as_deref(), Some("fbff"));
        assert_eq!(encode("YWJjZ", "base64", "utf8").unwrap().as_deref(), Some("abc"));
        assert_eq!(encode("616263", "hexa", "scii").unwrap().as_deref(), Some("abc"));
        for (text, from, to) in
            [("abc", "utf8", "utf8"), ("abc", "utf8", "morse"), ("616", "hex", "utf8"), ("6g", "hex", "utf8")]
        {
            assert!(encode(text, from, to).is_err(), "{text} {from} {to}");
        }
    }

    #[test]
    fn to_and_from_bytes_are_strict_and_lenient_as_java() {
        let to = |text: &str, encoding: &str| text_call(to_bytes, &[text, encoding], false);
        assert_eq!(to("0aFF", "Hex").unwrap().as_deref(), Some("[10, 255]"));
        assert_eq!(to("AQ", "base64").unwrap().as_deref(), Some("[1]"));
        assert_eq!(to("AQI=", "BASE64").unwrap().as_deref(), Some("[1, 2]"));
        assert_eq!(to("AR==", "base64").unwrap().as_deref(), Some("[1]"));
        assert_eq!(to("", "base64").unwrap().as_deref(), Some("[]"));
        assert_eq!(to("é", "ascii").unwrap().as_deref(), Some("[63]"));
        for (text, encoding) in [
            ("0x12", "hex"),
            ("123", "hex"),
            ("AQ=", "base64"),
            ("=", "base64"),
            ("A", "base64"),
            ("AQ==AQ==", "base64"),
            ("AQI==", "base64"),
            ("A Q==", "base64"),
            ("-_", "base64"),
            ("abc", "ebcdic"),
        ] {
            assert!(to(text, encoding).is_err(), "{text} {encoding}");
        }
        let from = |text: &str, encoding: &str| text_call(from_bytes, &[text, encoding], true);
        assert_eq!(from("\u{1}\u{FF}", "hex").unwrap().as_deref(), Some("01C3BF"));
        assert_eq!(from("é", "ascii").unwrap().as_deref(), Some("\u{FFFD}\u{FFFD}"));
        assert!(from("abc", "hexadecimal").is_err());
    }

    #[test]
    fn byte_order_compares_like_java() {
        assert!(java_equals_ignore_case("big_endian", "BIG_ENDIAN"));
        assert!(java_equals_ignore_case("b\u{131}g_endian", "BIG_ENDIAN"));
        assert!(!java_equals_ignore_case("BIG_ENDIANS", "BIG_ENDIAN"));
        assert!(!java_equals_ignore_case("", "BIG_ENDIAN"));
    }
}
