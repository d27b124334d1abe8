//! More of ksqlDB's string functions: `INSTR`, `SPLIT` (strings and bytes), `ELT`, `FIELD`,
//! `CHR`, and the URL functions (`URL_EXTRACT_HOST`, `…_PORT`, `…_PATH`, `…_QUERY`,
//! `…_FRAGMENT`, `…_PROTOCOL`, `…_PARAMETER`, `URL_ENCODE_PARAM`, `URL_DECODE_PARAM`).
//!
//! ksqlDB reads a URL with `java.net.URI`, whose grammar is RFC 2396's with Java's
//! deviations (IPv6 literals, an empty authority before a path, non-ASCII characters where
//! escapes may be): [`JavaUri`] parses the same way. So relative references (`/a?b=1`) have a
//! path and a query, a host keeps its case, an explicit port is kept even when it is the
//! scheme's default, an authority that is not `[user@]host[:port]` has no host, and text that
//! is not a URI at all is an error (NULL plus a processing-log entry). Paths, queries and
//! fragments come back percent-decoded (UTF-8, malformed bytes as U+FFFD); hosts and schemes
//! as written.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BinaryBuilder, Int32Array, ListBuilder, StringArray, StringBuilder,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Int64Type};
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{ScalarUDF, Signature, TypeSignature, Volatility};

use super::{Arrays, KsqlFunction, returns};

pub fn functions() -> Vec<ScalarUDF> {
    let mut functions = vec![
        KsqlFunction::udf(
            "instr",
            Signature::one_of(
                (2..=4)
                    .map(|n| {
                        let mut types = vec![DataType::Utf8, DataType::Utf8];
                        types.extend(std::iter::repeat_n(DataType::Int32, n - 2));
                        TypeSignature::Exact(types)
                    })
                    .collect(),
                Volatility::Immutable,
            ),
            returns::<2>,
            instr,
        ),
        KsqlFunction::udf(
            "split",
            Signature::one_of(
                vec![
                    TypeSignature::Exact(vec![DataType::Utf8, DataType::Utf8]),
                    TypeSignature::Exact(vec![DataType::Binary, DataType::Binary]),
                ],
                Volatility::Immutable,
            ),
            |args| {
                let item = args.first().cloned().unwrap_or(DataType::Utf8);
                Ok(DataType::List(Arc::new(Field::new("item", item, true))))
            },
            split,
        ),
        KsqlFunction::udf("elt", Signature::variadic_any(Volatility::Immutable), returns::<0>, elt),
        KsqlFunction::udf("field", Signature::variadic_any(Volatility::Immutable), returns::<2>, field),
        KsqlFunction::udf("chr", Signature::any(1, Volatility::Immutable), returns::<0>, chr),
        KsqlFunction::udf("url_encode_param", text_signature(1), returns::<0>, |args, _| {
            map_text(&args[0], |s| Ok(Some(form_urlencoded::byte_serialize(s.as_bytes()).collect())))
        }),
        KsqlFunction::udf("url_decode_param", text_signature(1), returns::<0>, |args, _| {
            map_text(&args[0], |s| url_decode(s).map(Some))
        }),
        KsqlFunction::udf("url_extract_parameter", text_signature(2), returns::<0>, url_extract_parameter),
    ];
    for (name, part) in URL_PARTS {
        functions.push(KsqlFunction::udf(
            name,
            text_signature(1),
            if name == "url_extract_port" { returns::<2> } else { returns::<0> },
            part,
        ));
    }
    functions
}

/// `URL_EXTRACT_…` functions: a part of each URL, NULL when it has none; an error when the
/// text is not a URI.
const URL_PARTS: [(&str, super::Invoke); 6] = [
    ("url_extract_host", |args, _| map_text(&args[0], |s| Ok(JavaUri::parse(s)?.host.map(str::to_owned)))),
    ("url_extract_path", |args, _| map_text(&args[0], |s| Ok(JavaUri::parse(s)?.path.map(percent_decode)))),
    ("url_extract_query", |args, _| map_text(&args[0], |s| Ok(JavaUri::parse(s)?.query.map(percent_decode)))),
    ("url_extract_fragment", |args, _| map_text(&args[0], |s| Ok(JavaUri::parse(s)?.fragment.map(percent_decode)))),
    ("url_extract_protocol", |args, _| map_text(&args[0], |s| Ok(JavaUri::parse(s)?.scheme.map(str::to_owned)))),
    ("url_extract_port", |args, _| {
        let urls = args[0].as_string::<i32>();
        let ports = urls.iter().map(|s| s.map(|s| JavaUri::parse(s).map(|u| u.port)).transpose().map(Option::flatten));
        Ok(Arc::new(ports.collect::<Result<Int32Array>>()?))
    }),
];

fn text_signature(n: usize) -> Signature {
    Signature::exact(vec![DataType::Utf8; n], Volatility::Immutable)
}

/// `f` over each string (NULL stays NULL); an error from `f` fails the call.
fn map_text(array: &ArrayRef, f: impl Fn(&str) -> Result<Option<String>>) -> Result<ArrayRef> {
    let strings = array.as_string::<i32>();
    let out = strings.iter().map(|s| s.map(&f).transpose().map(Option::flatten)).collect::<Result<Vec<_>>>()?;
    super::words::string_array(&out)
}

/// `INSTR(s, sub[, position[, occurrence]])`: the 1-based position (in UTF-16 units) of the
/// occurrence-th match of `sub`, matches overlapping, searched from `position`; 0 when there
/// is none, when `s` or `sub` is NULL, or when `occurrence` is below 1. A negative position
/// searches backwards as ksqlDB does, in the reversed text: the match must end at or before
/// the position counted from the end. A NULL position or occurrence is an error (Java `int`s).
fn instr(args: &Arrays, _: &DataType) -> Result<ArrayRef> {
    let (texts, subs) = (args[0].as_string::<i32>(), args[1].as_string::<i32>());
    let ints: Vec<ArrayRef> = args[2..].iter().map(|a| cast(a, &DataType::Int32)).collect::<Result<_, _>>()?;
    let ints: Vec<_> = ints.iter().map(|a| a.as_primitive::<datafusion::arrow::datatypes::Int32Type>()).collect();
    let mut out = Vec::with_capacity(texts.len());
    for row in 0..texts.len() {
        if ints.iter().any(|a| a.is_null(row)) {
            return exec_err!("INSTR: the position and the occurrence cannot be NULL");
        }
        if texts.is_null(row) || subs.is_null(row) {
            out.push(0);
            continue;
        }
        let position = ints.first().map_or(1, |a| a.value(row));
        let occurrence = ints.get(1).map_or(1, |a| a.value(row));
        out.push(instr_row(texts.value(row), subs.value(row), position, occurrence));
    }
    Ok(Arc::new(Int32Array::from(out)))
}

/// INSTR of one row: over bytes when both strings are ASCII (then bytes are UTF-16 units),
/// else over UTF-16 units.
fn instr_row(text: &str, sub: &str, position: i32, occurrence: i32) -> i32 {
    if text.is_ascii() && sub.is_ascii() {
        java_instr(text.as_bytes(), sub.as_bytes(), position, occurrence, |s| s.iter().rev().copied().collect())
    } else {
        let units = |s: &str| s.encode_utf16().collect::<Vec<u16>>();
        java_instr(&units(text), &units(sub), position, occurrence, reverse_utf16)
    }
}

/// ksqlDB's INSTR over code units, in Java's wrapping `int` arithmetic: for a negative
/// position, the text and `sub` are reversed (by `reverse`) and searched forwards.
fn java_instr<T: PartialEq + Copy>(
    text: &[T],
    sub: &[T],
    position: i32,
    occurrence: i32,
    reverse: fn(&[T]) -> Vec<T>,
) -> i32 {
    if position.wrapping_abs() > text.len() as i32 {
        return 0;
    }
    if position >= 0 {
        return find_from(text, sub, position, occurrence, false);
    }
    find_from(&reverse(text), &reverse(sub), position.wrapping_neg(), occurrence, true)
}

/// UTF-16 units reversed as Java's `StringBuilder.reverse` reverses them: a surrogate pair
/// stays in order.
fn reverse_utf16(units: &[u16]) -> Vec<u16> {
    let mut out: Vec<u16> = units.iter().rev().copied().collect();
    let mut i = 0;
    while i + 1 < out.len() {
        if (0xDC00..0xE000).contains(&out[i]) && (0xD800..0xDC00).contains(&out[i + 1]) {
            out.swap(i, i + 1);
            i += 2;
        } else {
            i += 1;
        }
    }
    out
}

/// The search from the 1-based `position` (Commons Lang's `substring(text, position - 1)`,
/// where a negative start counts from the end) for the occurrence-th `sub`; the 1-based
/// position of the match in the text as given (`reversed`: in the text before reversal), or 0.
fn find_from<T: PartialEq>(text: &[T], sub: &[T], position: i32, occurrence: i32, reversed: bool) -> i32 {
    let length = text.len() as i32;
    let mut start = position.wrapping_sub(1);
    if start < 0 {
        start = start.saturating_add(length).max(0);
    }
    let tail = text.get(start as usize..).unwrap_or_default();
    let Some(i) = ordinal_index_of(tail, sub, occurrence) else { return 0 };
    if reversed {
        length.wrapping_sub(position).wrapping_sub(i).wrapping_sub(sub.len() as i32).wrapping_add(2)
    } else {
        i.wrapping_add(position)
    }
}

/// Commons Lang's `ordinalIndexOf`: the index of the n-th match, matches overlapping; an
/// empty `sub` is found at 0, and `n` below 1 finds nothing.
fn ordinal_index_of<T: PartialEq>(text: &[T], sub: &[T], n: i32) -> Option<i32> {
    if n <= 0 {
        return None;
    }
    if sub.is_empty() {
        return Some(0);
    }
    let mut found = 0;
    for (i, window) in text.windows(sub.len()).enumerate() {
        if window == sub {
            found += 1;
            if found == n {
                return Some(i as i32);
            }
        }
    }
    None
}
/// `SPLIT(s, delimiter)`: the parts between delimiters (characters, for an empty one).
fn split(args: &Arrays, _: &DataType) -> Result<ArrayRef> {
    match args[0].data_type() {
        DataType::Utf8 => {
            let (texts, delimiters) = (args[0].as_string::<i32>(), args[1].as_string::<i32>());
            let mut out = ListBuilder::new(StringBuilder::new());
            for row in 0..texts.len() {
                if texts.is_null(row) || delimiters.is_null(row) {
                    out.append_null();
                    continue;
                }
                let (text, delimiter) = (texts.value(row), delimiters.value(row));
                if text.is_empty() {
                    out.append_value([Some("")]);
                } else if delimiter.is_empty() {
                    out.append_value(text.chars().map(|c| Some(c.to_string())));
                } else {
                    out.append_value(text.split(delimiter).map(Some));
                }
            }
            Ok(Arc::new(out.finish()))
        }
        DataType::Binary => {
            let (bytes, delimiters) = (args[0].as_binary::<i32>(), args[1].as_binary::<i32>());
            let mut out = ListBuilder::new(BinaryBuilder::new());
            for row in 0..bytes.len() {
                if bytes.is_null(row) || delimiters.is_null(row) {
                    out.append_null();
                    continue;
                }
                let (value, delimiter) = (bytes.value(row), delimiters.value(row));
                if value.is_empty() {
                    out.append_value([Some(Vec::new())]);
                } else if delimiter.is_empty() {
                    out.append_value(value.iter().map(|b| Some(vec![*b])));
                } else {
                    let mut parts = Vec::new();
                    let mut start = 0;
                    let mut i = 0;
                    while i + delimiter.len() <= value.len() {
                        if &value[i..i + delimiter.len()] == delimiter {
                            parts.push(Some(value[start..i].to_vec()));
                            i += delimiter.len();
                            start = i;
                        } else {
                            i += 1;
                        }
                    }
                    parts.push(Some(value[start..].to_vec()));
                    out.append_value(parts);
                }
            }
            Ok(Arc::new(out.finish()))
        }
        other => exec_err!("SPLIT of {other}"),
    }
}

/// `ELT(n, s1, s2, …)`: the n-th string (1-based), NULL when out of range; a NULL `n` is an
/// error (a Java `int`).
fn elt(args: &Arrays, _: &DataType) -> Result<ArrayRef> {
    let Some((index, strings)) = args.split_first() else { return exec_err!("ELT needs arguments") };
    let index = cast(index, &DataType::Int64)?;
    let index = index.as_primitive::<Int64Type>();
    let strings: Vec<ArrayRef> = strings.iter().map(|a| cast(a, &DataType::Utf8)).collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(index.len());
    for row in 0..index.len() {
        if index.is_null(row) {
            return exec_err!("ELT: the index cannot be NULL");
        }
        let chosen = usize::try_from(index.value(row)).ok().and_then(|n| strings.get(n.checked_sub(1)?));
        out.push(chosen.map(|c| c.as_string::<i32>()).filter(|c| c.is_valid(row)).map(|c| c.value(row)));
    }
    Ok(Arc::new(StringArray::from(out)))
}

/// `FIELD(s, s1, s2, …)`: the 1-based position of `s` among the rest, 0 when absent or null.
fn field(args: &Arrays, _: &DataType) -> Result<ArrayRef> {
    let strings: Vec<ArrayRef> = args.iter().map(|a| cast(a, &DataType::Utf8)).collect::<Result<_, _>>()?;
    let Some((needle, haystack)) = strings.split_first() else { return exec_err!("FIELD needs arguments") };
    let needle = needle.as_string::<i32>();
    let out: Int32Array = (0..needle.len())
        .map(|row| {
            if needle.is_null(row) {
                return Some(0);
            }
            let position = haystack.iter().position(|h| {
                let h = h.as_string::<i32>();
                !h.is_null(row) && h.value(row) == needle.value(row)
            });
            Some(position.map_or(0, |p| p as i32 + 1))
        })
        .collect();
    Ok(Arc::new(out))
}

/// `CHR(code)`: the character of a code point, NULL for a value that is not one; or
/// `CHR('\uXXXX…')`: a text of at least 6 UTF-16 units starting with `\u`, unescaped as
/// Java text (Commons Lang's `unescapeJava`, so what follows the first escape is unescaped
/// too), NULL for any other text. A malformed `\u` escape is an error. Java would keep a
/// lone surrogate (`CHR(55296)`, `CHR('\ud800')`); it is U+FFFD here.
fn chr(args: &Arrays, _: &DataType) -> Result<ArrayRef> {
    match args[0].data_type() {
        DataType::Utf8 => map_text(&args[0], |s| {
            if !s.starts_with("\\u") || super::string::utf16_len(s) < 6 {
                return Ok(None);
            }
            unescape_java(s).map(Some)
        }),
        _ => {
            let codes = cast(&args[0], &DataType::Int64)?;
            let out: StringArray = codes
                .as_primitive::<Int64Type>()
                .iter()
                .map(|c| match u32::try_from(c?).ok()? {
                    0xD800..=0xDFFF => Some('\u{FFFD}'.to_string()),
                    code => char::from_u32(code).map(String::from),
                })
                .collect();
            Ok(Arc::new(out))
        }
    }
}

/// Java's escapes unescaped as Commons Lang's `unescapeJava` does: octal `\0`–`\377`,
/// `\uXXXX` (any number of `u`s, an optional `+`), `\b \t \n \f \r`, `\\ \" \'`, and a
/// backslash before anything else dropped. Surrogate escapes pair up; a lone one is U+FFFD.
fn unescape_java(text: &str) -> Result<String> {
    let units: Vec<u16> = text.encode_utf16().collect();
    let unit = |i: usize| units.get(i).copied().unwrap_or(0);
    let is_octal = |u: u16| (u16::from(b'0')..=u16::from(b'7')).contains(&u);
    let mut out: Vec<u16> = Vec::with_capacity(units.len());
    let mut i = 0;
    while i < units.len() {
        if unit(i) != u16::from(b'\\') {
            out.push(unit(i));
            i += 1;
            continue;
        }
        let next = unit(i + 1);
        if i + 1 < units.len() && is_octal(next) {
            let mut digits = 1;
            if i + 2 < units.len() && is_octal(unit(i + 2)) {
                digits = 2;
                if i + 3 < units.len() && next <= u16::from(b'3') && is_octal(unit(i + 3)) {
                    digits = 3;
                }
            }
            out.push(units[i + 1..i + 1 + digits].iter().fold(0, |value, d| value * 8 + (d - u16::from(b'0'))));
            i += 1 + digits;
        } else if i + 1 < units.len() && next == u16::from(b'u') {
            let mut j = i + 2;
            while units.get(j) == Some(&u16::from(b'u')) {
                j += 1;
            }
            if units.get(j) == Some(&u16::from(b'+')) {
                j += 1;
            }
            let Some(hex) = units.get(j..j + 4) else {
                let rest = String::from_utf16_lossy(&units[i..]);
                return exec_err!("Less than 4 hex digits in unicode value: '{rest}' due to end of CharSequence");
            };
            let Some(value) = java_parse_hex(hex) else {
                return exec_err!("Unable to parse unicode value: {}", String::from_utf16_lossy(hex));
            };
            // Java's `(char) value`: the low 16 bits.
            out.push(value as u16);
            i = j + 4;
        } else {
            let escaped = match u8::try_from(next).unwrap_or(0) {
                b'b' => Some(0x08),
                b'n' => Some(u16::from(b'\n')),
                b't' => Some(u16::from(b'\t')),
                b'f' => Some(0x0C),
                b'r' => Some(u16::from(b'\r')),
                b'\\' | b'"' | b'\'' => Some(next),
                _ => None,
            };
            match escaped.filter(|_| i + 1 < units.len()) {
                Some(escaped) => {
                    out.push(escaped);
                    i += 2;
                }
                // A backslash before anything else is dropped.
                None => i += 1,
            }
        }
    }
    Ok(String::from_utf16_lossy(&out))
}

/// Java's `Integer.parseInt(text, 16)` of four UTF-16 units.
fn java_parse_hex(units: &[u16]) -> Option<i32> {
    java_parse_hex_text(&String::from_utf16(units).ok()?)
}

/// `URL_EXTRACT_PARAMETER(url, name)`: the value of the first parameter named `name` in the
/// URL's decoded query (split on `&`, then at the first `=`), `''` for a name without `=`;
/// NULL when there is no such parameter or no query. An error when the URL is not a URI.
fn url_extract_parameter(args: &Arrays, _: &DataType) -> Result<ArrayRef> {
    let (urls, names) = (args[0].as_string::<i32>(), args[1].as_string::<i32>());
    let mut out = Vec::with_capacity(urls.len());
    for row in 0..urls.len() {
        if urls.is_null(row) {
            out.push(None);
            continue;
        }
        let query = JavaUri::parse(urls.value(row))?.query.map(percent_decode);
        let (Some(query), true) = (query, names.is_valid(row)) else {
            out.push(None);
            continue;
        };
        let name = names.value(row);
        out.push(query.split('&').find_map(|parameter| match parameter.split_once('=') {
            Some((key, value)) => (key == name).then(|| value.to_owned()),
            None => (parameter == name).then(String::new),
        }));
    }
    super::words::string_array(&out)
}

/// `URL_DECODE_PARAM(text)`: Java's `URLDecoder.decode(text, "UTF-8")`: `+` is a space, and
/// each run of `%XX` escapes is UTF-8 (malformed bytes as U+FFFD). A `%` without two more
/// characters, or two that are not a hex number (Java's `parseInt`, so `%+1` is 1 and `%-1`
/// fails), is an error.
fn url_decode(text: &str) -> Result<String> {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut escaped: Vec<u8> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(' ');
                i += 1;
            }
            b'%' => {
                escaped.clear();
                while bytes.get(i) == Some(&b'%') {
                    let Some(pair) = bytes.get(i + 1..i + 3) else {
                        return exec_err!("URLDecoder: Incomplete trailing escape (%) pattern");
                    };
                    let value = std::str::from_utf8(pair).ok().and_then(java_parse_hex_text);
                    match value {
                        Some(value) if value >= 0 => escaped.push(value as u8),
                        Some(_) => {
                            return exec_err!(
                                "URLDecoder: Illegal hex characters in escape (%) pattern - negative value"
                            );
                        }
                        None => return exec_err!("URLDecoder: Illegal hex characters in escape (%) pattern"),
                    }
                    i += 3;
                }
                out.push_str(&String::from_utf8_lossy(&escaped));
            }
            _ => {
                let end = text[i..].find(['+', '%']).map_or(text.len(), |n| i + n);
                out.push_str(&text[i..end]);
                i = end;
            }
        }
    }
    Ok(out)
}

/// Java's `Integer.parseInt(text, 16)`: an optional sign, then ASCII hex digits.
fn java_parse_hex_text(text: &str) -> Option<i32> {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let value = i32::from_str_radix(digits, 16).ok()?;
    Some(if negative { -value } else { value })
}

/// Java's `URI` decoding of a component: each run of `%XX` escapes is UTF-8, malformed bytes
/// U+FFFD; everything else as it is. (The parser has checked that every `%` starts an escape.)
fn percent_decode(text: &str) -> String {
    if !text.contains('%') {
        return text.to_owned();
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut escaped: Vec<u8> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            let end = text[i..].find('%').map_or(text.len(), |n| i + n);
            out.push_str(&text[i..end]);
            i = end;
            continue;
        }
        escaped.clear();
        while let (Some(b'%'), Some(high), Some(low)) = (bytes.get(i), bytes.get(i + 1), bytes.get(i + 2)) {
            let (Some(high), Some(low)) = (char::from(*high).to_digit(16), char::from(*low).to_digit(16)) else {
                break;
            };
            escaped.push((high << 4 | low) as u8);
            i += 3;
        }
        if escaped.is_empty() {
            // A `%` the parser would not have let through: kept as it is.
            out.push('%');
            i += 1;
        }
        out.push_str(&String::from_utf8_lossy(&escaped));
    }
    out
}

/// The parts of a URI reference as `java.net.URI` parses it (RFC 2396 and Java's
/// deviations), borrowed from the text; `None` for a part it does not have. A server-based
/// authority gives a host (and maybe a port); a registry-based one (anything else that is
/// legal there) gives neither.
#[derive(Debug, Default, PartialEq)]
struct JavaUri<'a> {
    scheme: Option<&'a str>,
    host: Option<&'a str>,
    port: Option<i32>,
    /// `None` for an opaque URI (`mailto:x`).
    path: Option<&'a str>,
    query: Option<&'a str>,
    fragment: Option<&'a str>,
}

/// A class of ASCII characters (a bit per code), and whether `%XX` escapes and non-ASCII
/// characters other than spaces and controls belong to it too.
#[derive(Clone, Copy)]
struct Chars {
    ascii: u128,
    escaped: bool,
}

impl Chars {
    const fn of(chars: &[u8]) -> Chars {
        let mut ascii = 0u128;
        let mut i = 0;
        while i < chars.len() {
            ascii |= 1 << chars[i];
            i += 1;
        }
        Chars { ascii, escaped: false }
    }

    const fn range(first: u8, last: u8) -> Chars {
        let mut ascii = 0u128;
        let mut c = first;
        while c <= last {
            ascii |= 1 << c;
            c += 1;
        }
        Chars { ascii, escaped: false }
    }

    const fn or(self, other: Chars) -> Chars {
        Chars { ascii: self.ascii | other.ascii, escaped: self.escaped || other.escaped }
    }

    const fn with_escapes(self) -> Chars {
        Chars { ascii: self.ascii, escaped: true }
    }

    /// Whether an ASCII character is in the class (NUL never is).
    fn has(self, c: u8) -> bool {
        c != 0 && c < 128 && self.ascii & (1 << c) != 0
    }
}

const DIGIT: Chars = Chars::range(b'0', b'9');
const ALPHA: Chars = Chars::range(b'a', b'z').or(Chars::range(b'A', b'Z'));
const ALPHANUM: Chars = DIGIT.or(ALPHA);
const HEX: Chars = DIGIT.or(Chars::range(b'a', b'f')).or(Chars::range(b'A', b'F'));
const UNRESERVED: Chars = ALPHANUM.or(Chars::of(b"-_.!~*'()"));
const RESERVED: Chars = Chars::of(b";/?:@&=+$,[]");
const URIC: Chars = RESERVED.or(UNRESERVED).with_escapes();
const PCHAR: Chars = UNRESERVED.or(Chars::of(b":@&=+$,")).with_escapes();
const PATH: Chars = PCHAR.or(Chars::of(b";/"));
const DASH: Chars = Chars::of(b"-");
const DOT: Chars = Chars::of(b".");
const USERINFO: Chars = UNRESERVED.or(Chars::of(b";:&=+$,")).with_escapes();
const REG_NAME: Chars = UNRESERVED.or(Chars::of(b"$,;:@&=+")).with_escapes();
const SERVER: Chars = USERINFO.or(ALPHANUM).or(DASH).or(Chars::of(b".:@[]"));
const SERVER_PERCENT: Chars = SERVER.or(Chars::of(b"%"));
const SCHEME: Chars = ALPHA.or(DIGIT).or(Chars::of(b"+-."));
const SCOPE_ID: Chars = ALPHANUM.or(Chars::of(b"_."));

/// Java's `Character.isSpaceChar` (Zs, Zl, Zp) above U+0080.
fn is_space_char(c: char) -> bool {
    matches!(
        c,
        '\u{A0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200A}' | '\u{2028}' | '\u{2029}' | '\u{202F}' | '\u{205F}' | '\u{3000}'
    )
}

/// Why a text is not a URI, as Java words it.
type UriResult<T> = std::result::Result<T, String>;

/// The parser's state: the text, and the server parts found so far.
struct UriParser<'a> {
    input: &'a str,
    host: Option<&'a str>,
    port: Option<i32>,
    ipv6_bytes: usize,
}

impl<'a> JavaUri<'a> {
    /// `new URI(text)`; an error (ksqlDB's message) when the text is not a URI.
    fn parse(text: &'a str) -> Result<JavaUri<'a>> {
        let mut parser = UriParser { input: text, host: None, port: None, ipv6_bytes: 0 };
        match parser.uri() {
            Ok(uri) => Ok(uri),
            Err(reason) => exec_err!("URL input has invalid syntax: {text} ({reason})"),
        }
    }
}

impl<'a> UriParser<'a> {
    fn fail<T>(&self, reason: &str, at: usize) -> UriResult<T> {
        Err(format!("{reason} at index {at}: {}", self.input))
    }

    fn byte(&self, at: usize) -> Option<u8> {
        self.input.as_bytes().get(at).copied()
    }

    /// Whether the character at `at` (before `end`) is `c`.
    fn at(&self, at: usize, end: usize, c: u8) -> bool {
        at < end && self.byte(at) == Some(c)
    }

    /// The first position from `start` (before `end`) holding one of `stop`, or `end`.
    fn scan_to(&self, start: usize, end: usize, stop: &[u8]) -> usize {
        self.input.as_bytes()[start.min(end)..end].iter().position(|b| stop.contains(b)).map_or(end, |n| start + n)
    }

    /// As [`scan_to`](Self::scan_to), but `None` when one of `error` comes first.
    fn scan_unless(&self, start: usize, end: usize, error: &[u8], stop: &[u8]) -> Option<usize> {
        let tail = &self.input.as_bytes()[start.min(end)..end];
        match tail.iter().position(|b| error.contains(b) || stop.contains(b)) {
            Some(n) if error.contains(&tail[n]) => None,
            Some(n) => Some(start + n),
            None => Some(end),
        }
    }

    /// The end of the run of `class` characters from `start` (before `end`); a `%` not
    /// followed by two hex digits, where escapes are allowed, is an error.
    fn scan(&self, start: usize, end: usize, class: Chars) -> UriResult<usize> {
        let mut p = start;
        while p < end {
            let Some(c) = self.input.get(p..).and_then(|rest| rest.chars().next()) else { break };
            if c.is_ascii() && class.has(c as u8) {
                p += 1;
                continue;
            }
            if class.escaped {
                if c == '%' {
                    let hex = |at: usize| self.byte(at).is_some_and(|b| HEX.has(b));
                    if p + 3 <= end && hex(p + 1) && hex(p + 2) {
                        p += 3;
                        continue;
                    }
                    return self.fail("Malformed escape pair", p);
                }
                if c as u32 > 128 && !is_space_char(c) && !c.is_control() {
                    p += c.len_utf8();
                    continue;
                }
            }
            break;
        }
        Ok(p)
    }

    fn check(&self, start: usize, end: usize, class: Chars, what: &str) -> UriResult<()> {
        let p = self.scan(start, end, class)?;
        if p < end {
            return self.fail(&format!("Illegal character in {what}"), p);
        }
        Ok(())
    }

    fn uri(&mut self) -> UriResult<JavaUri<'a>> {
        let input = self.input;
        let n = input.len();
        let mut uri = JavaUri::default();
        let mut p = match self.scan_unless(0, n, b"/?#", b":") {
            Some(colon) if self.at(colon, n, b':') => {
                if colon == 0 {
                    return self.fail("Expected scheme name", 0);
                }
                self.check(0, 1, ALPHA, "scheme name")?;
                self.check(1, colon, SCHEME, "scheme name")?;
                uri.scheme = Some(&input[..colon]);
                let p = colon + 1;
                if self.at(p, n, b'/') {
                    self.hierarchical(p, n, &mut uri)?
                } else {
                    let q = self.scan_to(p, n, b"#");
                    if q <= p {
                        return self.fail("Expected scheme-specific part", p);
                    }
                    self.check(p, q, URIC, "opaque part")?;
                    q
                }
            }
            _ => self.hierarchical(0, n, &mut uri)?,
        };
        if self.at(p, n, b'#') {
            self.check(p + 1, n, URIC, "fragment")?;
            uri.fragment = Some(&input[p + 1..]);
            p = n;
        }
        if p < n {
            return self.fail("Expected end of URI", p);
        }
        uri.host = self.host;
        uri.port = self.port;
        Ok(uri)
    }

    fn hierarchical(&mut self, start: usize, n: usize, uri: &mut JavaUri<'a>) -> UriResult<usize> {
        let mut p = start;
        if self.at(p, n, b'/') && self.at(p + 1, n, b'/') {
            p += 2;
            let q = self.scan_to(p, n, b"/?#");
            if q > p {
                p = self.authority(p, q)?;
            } else if q >= n {
                return self.fail("Expected authority", p);
            }
        }
        let q = self.scan_to(p, n, b"?#");
        self.check(p, q, PATH, "path")?;
        uri.path = Some(&self.input[p..q]);
        p = q;
        if self.at(p, n, b'?') {
            p += 1;
            let q = self.scan_to(p, n, b"#");
            self.check(p, q, URIC, "query")?;
            uri.query = Some(&self.input[p..q]);
            p = q;
        }
        Ok(p)
    }

    /// The authority `start..n`: server-based when it parses as `[user@]host[:port]`, else
    /// registry-based when its characters allow, else an error.
    fn authority(&mut self, start: usize, n: usize) -> UriResult<usize> {
        let server_class = if self.scan_to(start, n, b"]") > start { SERVER_PERCENT } else { SERVER };
        let server_chars = self.scan(start, n, server_class)? == n;
        let registry_chars = self.scan(start, n, REG_NAME)? == n;
        if server_chars {
            match self.server(start, n, registry_chars) {
                Ok(end) if end == n => return Ok(n),
                Ok(end) => {
                    (self.host, self.port) = (None, None);
                    if !registry_chars {
                        return self.fail("Expected end of authority", end);
                    }
                }
                Err(reason) => {
                    (self.host, self.port) = (None, None);
                    if !registry_chars {
                        return Err(reason);
                    }
                }
            }
        }
        if registry_chars {
            return Ok(n);
        }
        self.fail("Illegal character in authority", start)
    }

    /// `[user@]host[:port]` in `start..n`; the position where it stops. With `lenient` (the
    /// authority could be registry-based), a host that stops early returns that position
    /// instead of failing.
    fn server(&mut self, start: usize, n: usize, lenient: bool) -> UriResult<usize> {
        let mut p = start;
        if let Some(at) = self.scan_unless(p, n, b"/?#", b"@").filter(|&q| self.at(q, n, b'@')) {
            self.check(p, at, USERINFO, "user info")?;
            p = at + 1;
        }
        if self.at(p, n, b'[') {
            p += 1;
            match self.scan_unless(p, n, b"/?#", b"]") {
                Some(q) if q > p && self.at(q, n, b']') => {
                    let r = self.scan_to(p, q, b"%");
                    if r > p {
                        self.ipv6(p, r)?;
                        if r + 1 == q {
                            return self.fail("scope id expected", p);
                        }
                        if r < q {
                            self.check(r + 1, q, SCOPE_ID, "scope id")?;
                        }
                    } else {
                        self.ipv6(p, q)?;
                    }
                    self.host = Some(&self.input[p - 1..q + 1]);
                    p = q + 1;
                }
                q => return self.fail("Expected closing bracket for IPv6 address", q.unwrap_or(p)),
            }
        } else {
            let q = match self.ipv4(p, n) {
                Some(q) if q > p => q,
                _ => match self.hostname(p, n, lenient)? {
                    Some(q) => q,
                    None => return Ok(p),
                },
            };
            p = q;
        }
        if self.at(p, n, b':') {
            p += 1;
            let q = self.scan_to(p, n, b"/");
            if q > p {
                self.check(p, q, DIGIT, "port number")?;
                match self.input[p..q].parse::<i32>() {
                    Ok(port) => self.port = Some(port),
                    Err(_) => return self.fail("Malformed port number", p),
                }
                p = q;
            }
        } else if p < n && lenient {
            return Ok(p);
        }
        if p < n {
            return self.fail("Expected port number", p);
        }
        Ok(p)
    }

    /// A dotted IPv4 address at `start` (followed by nothing or `:`), its end; `None` if
    /// there is none.
    fn ipv4(&mut self, start: usize, n: usize) -> Option<usize> {
        let p = self.scan_ipv4(start, n, false).ok().flatten()?;
        if p > start && p < n && self.byte(p) != Some(b':') {
            return None;
        }
        if p > start {
            self.host = Some(&self.input[start..p]);
        }
        Some(p)
    }

    /// Four dotted bytes from `start`: their end, `None` when the text there is not digits
    /// and dots (or, `strict`, not only them), an error when it is but not four bytes.
    fn scan_ipv4(&self, start: usize, n: usize, strict: bool) -> UriResult<Option<usize>> {
        let m = self.scan(start, n, DIGIT.or(DOT))?;
        if m <= start || (strict && m != n) {
            return Ok(None);
        }
        let mut p = start;
        for part in 0..7 {
            let q = if part % 2 == 0 { self.scan_byte(p, m)? } else { p + usize::from(self.at(p, m, b'.')) };
            if q <= p {
                return self.fail("Malformed IPv4 address", q);
            }
            p = q;
        }
        if p < m {
            return self.fail("Malformed IPv4 address", p);
        }
        Ok(Some(p))
    }

    /// Digits from `start` that make a byte (0 to 255): their end, or `start`.
    fn scan_byte(&self, start: usize, n: usize) -> UriResult<usize> {
        let q = self.scan(start, n, DIGIT)?;
        if q > start && self.input[start..q].parse::<u32>().map_or(true, |b| b > 255) {
            return Ok(start);
        }
        Ok(q)
    }

    /// An IPv4 address that must fill `start..n`.
    fn take_ipv4(&self, start: usize, n: usize, expected: &str) -> UriResult<usize> {
        match self.scan_ipv4(start, n, true)? {
            Some(p) if p > start => Ok(p),
            _ => self.fail(&format!("Expected {expected}"), start),
        }
    }

    /// A host name of dotted labels (letters, digits, inner dashes; the last label of
    /// several starting with a letter), followed by nothing or `:`. `Ok(None)` when
    /// `lenient` and something else follows.
    fn hostname(&mut self, start: usize, n: usize, lenient: bool) -> UriResult<Option<usize>> {
        let mut p = start;
        let mut last_label = None;
        loop {
            let q = self.scan(p, n, ALPHANUM)?;
            if q <= p {
                break;
            }
            last_label = Some(p);
            p = q;
            let q = self.scan(p, n, ALPHANUM.or(DASH))?;
            if q > p {
                if self.byte(q - 1) == Some(b'-') {
                    return self.fail("Illegal character in hostname", q - 1);
                }
                p = q;
            }
            if !self.at(p, n, b'.') {
                break;
            }
            p += 1;
            if p >= n {
                break;
            }
        }
        if p < n && !self.at(p, n, b':') {
            if lenient {
                return Ok(None);
            }
            return self.fail("Illegal character in hostname", p);
        }
        let Some(label) = last_label else { return self.fail("Expected hostname", start) };
        if label > start && !self.byte(label).is_some_and(|b| ALPHA.has(b)) {
            return self.fail("Illegal character in hostname", label);
        }
        self.host = Some(&self.input[start..p]);
        Ok(Some(p))
    }

    /// An IPv6 address filling `start..n` (RFC 2373: hex groups, one `::`, maybe an IPv4
    /// tail), 16 bytes in all, fewer only with `::`.
    fn ipv6(&mut self, start: usize, n: usize) -> UriResult<usize> {
        let mut p = start;
        let mut compressed = false;
        match self.hex_groups(p, n)? {
            Some(q) => {
                p = q;
                if self.at(p, n, b':') && self.at(p + 1, n, b':') {
                    compressed = true;
                    p = self.after_compression(p + 2, n)?;
                } else if self.at(p, n, b':') {
                    p = self.take_ipv4(p + 1, n, "IPv4 address")?;
                    self.ipv6_bytes += 4;
                }
            }
            None if self.at(p, n, b':') && self.at(p + 1, n, b':') => {
                compressed = true;
                p = self.after_compression(p + 2, n)?;
            }
            None => {}
        }
        if p < n {
            return self.fail("Malformed IPv6 address", start);
        }
        if self.ipv6_bytes > 16 {
            return self.fail("IPv6 address too long", start);
        }
        if !compressed && self.ipv6_bytes < 16 {
            return self.fail("IPv6 address too short", start);
        }
        if compressed && self.ipv6_bytes == 16 {
            return self.fail("Malformed IPv6 address", start);
        }
        Ok(p)
    }

    /// What follows `::`: nothing, hex groups (maybe with an IPv4 tail), or an IPv4 address.
    fn after_compression(&mut self, start: usize, n: usize) -> UriResult<usize> {
        if start == n {
            return Ok(start);
        }
        match self.hex_groups(start, n)? {
            Some(p) if self.at(p, n, b':') => {
                let p = self.take_ipv4(p + 1, n, "hex digits or IPv4 address")?;
                self.ipv6_bytes += 4;
                Ok(p)
            }
            Some(p) => Ok(p),
            None => {
                let p = self.take_ipv4(start, n, "hex digits or IPv4 address")?;
                self.ipv6_bytes += 4;
                Ok(p)
            }
        }
    }

    /// Colon-separated groups of 1 to 4 hex digits from `start`, stopping before `::` or an
    /// IPv4 tail: their end, `None` when there is none.
    fn hex_groups(&mut self, start: usize, n: usize) -> UriResult<Option<usize>> {
        let q = self.scan(start, n, HEX)?;
        if q <= start || self.at(q, n, b'.') {
            return Ok(None);
        }
        if q > start + 4 {
            return self.fail("IPv6 hexadecimal digit sequence too long", start);
        }
        self.ipv6_bytes += 2;
        let mut p = q;
        while p < n {
            if !self.at(p, n, b':') || self.at(p + 1, n, b':') {
                break;
            }
            p += 1;
            let q = self.scan(p, n, HEX)?;
            if q <= p {
                return self.fail("Expected digits for an IPv6 address", p);
            }
            if self.at(q, n, b'.') {
                p -= 1;
                break;
            }
            if q > p + 4 {
                return self.fail("IPv6 hexadecimal digit sequence too long", p);
            }
            self.ipv6_bytes += 2;
            p = q;
        }
        Ok(Some(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(text: &str) -> JavaUri<'_> {
        JavaUri::parse(text).unwrap()
    }

    #[test]
    fn instr_is_ksqldbs() {
        assert_eq!(instr_row("CORPORATE FLOOR", "OR", 3, 2), 14);
        assert_eq!(instr_row("CORPORATE FLOOR", "OR", -3, 1), 5);
        // Backwards, a match must end at or before the position from the end.
        assert_eq!(instr_row("abcab", "ab", -1, 1), 4);
        assert_eq!(instr_row("abcab", "ab", -2, 1), 1);
        // Overlapping occurrences; an occurrence below 1, position 0 or past the end: 0.
        assert_eq!(instr_row("aaaa", "aa", 1, 3), 3);
        assert_eq!(instr_row("abc", "b", 1, 0), 0);
        assert_eq!(instr_row("abc", "c", 0, 1), 0);
        assert_eq!(instr_row("abc", "a", 4, 1), 0);
        assert_eq!(instr_row("abc", "", 2, 1), 2);
        // UTF-16 units, pairs kept whole when reversed.
        assert_eq!(instr_row("😀a😀", "a", 1, 1), 3);
        assert_eq!(instr_row("😀a😀", "😀", -1, 1), 4);
        assert_eq!(instr_row("😀a😀", "😀", -2, 1), 1);
    }

    #[test]
    fn chr_unescapes_as_java() {
        assert_eq!(unescape_java(r"\u004b").unwrap(), "K");
        assert_eq!(unescape_java(r"\uuu004b\101\7\n\q\\").unwrap(), "KA\u{7}\nq\\");
        assert_eq!(unescape_java(r"\u+004b\ud83d\ude00").unwrap(), "K😀");
        assert_eq!(unescape_java(r"\ud800x").unwrap(), "\u{FFFD}x");
        assert_eq!(unescape_java(r"\u-041").unwrap(), "\u{FFBF}");
        assert!(unescape_java(r"\u00zz").is_err());
        assert!(unescape_java(r"\u004").is_err());
        let run = |s: &str| {
            let out = chr(&[Arc::new(StringArray::from(vec![s])) as ArrayRef], &DataType::Utf8).unwrap();
            out.as_string::<i32>().iter().next().flatten().map(str::to_owned)
        };
        assert_eq!(run(r"\u004b\tx").as_deref(), Some("K\tx"));
        assert_eq!(run(r"\u04b"), None);
        assert_eq!(run(r"x\u004b"), None);
        let codes = Arc::new(datafusion::arrow::array::Int32Array::from(vec![Some(75), Some(-1), Some(0xD800), None]));
        let out = chr(&[codes as ArrayRef], &DataType::Utf8).unwrap();
        let out: Vec<_> = out.as_string::<i32>().iter().collect();
        assert_eq!(out, [Some("K"), None, Some("\u{FFFD}"), None]);
    }

    #[test]
    fn uris_parse_as_javas() {
        let full = uri("HTTP://user:pw@Example.COM:80/a/../b%20c?q=1%26x&r#frag%21");
        assert_eq!(
            full,
            JavaUri {
                scheme: Some("HTTP"),
                host: Some("Example.COM"),
                port: Some(80),
                path: Some("/a/../b%20c"),
                query: Some("q=1%26x&r"),
                fragment: Some("frag%21"),
            }
        );
        assert_eq!(percent_decode(full.path.unwrap()), "/a/../b c");
        // Relative references, empty authority, opaque URIs.
        assert_eq!(uri("/p?x=1").path, Some("/p"));
        assert_eq!(uri("/p?x=1").query, Some("x=1"));
        assert_eq!(uri("file:///etc").host, None);
        assert_eq!(uri("file:///etc").path, Some("/etc"));
        assert_eq!(uri("mailto:a@b.org"), JavaUri { scheme: Some("mailto"), ..JavaUri::default() });
        assert_eq!(uri("http://x.org").path, Some(""));
        // Registry-based authorities have no host or port.
        assert_eq!(uri("http://under_score.org:80/").host, None);
        assert_eq!(uri("http://under_score.org:80/").port, None);
        assert_eq!(uri("http://x.org:99999999999/").host, None);
        assert_eq!(uri("http://1.2.3.4.5/").host, None);
        assert_eq!(uri("http://1.2.3.4:8/").host, Some("1.2.3.4"));
        assert_eq!(uri("http://x-.org/").host, None);
        // IPv6.
        assert_eq!(uri("http://[::1]:8080/").host, Some("[::1]"));
        assert_eq!(uri("http://[1:2:3:4:5:6:7:8]/").host, Some("[1:2:3:4:5:6:7:8]"));
        assert_eq!(uri("http://[::ffff:1.2.3.4]/").host, Some("[::ffff:1.2.3.4]"));
        assert_eq!(uri("http://[fe80::1%eth0]/").host, Some("[fe80::1%eth0]"));
        // Non-ASCII characters are allowed where escapes are.
        assert_eq!(uri("http://x.org/é?ü#😀").path, Some("/é"));
        for bad in [
            "http://x y/",
            "http://",
            "://x",
            "1http://x",
            "http://x.org/a b",
            "http://x.org/%zz",
            "http://x.org/?%4",
            "http://x.org/#a#b",
            "mailto:",
            "http://[1:2]/",
            "http://[::1/",
            "http://x.org/\u{A0}",
            "a:b\u{85}",
        ] {
            assert!(JavaUri::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn url_decode_is_javas_url_decoder() {
        assert_eq!(url_decode("a+b%20c&d=%C3%A9").unwrap(), "a b c&d=é");
        // Java parses each pair with `parseInt`, which takes a sign.
        assert_eq!(url_decode("%+41%ff").unwrap(), "\u{4}1\u{FFFD}");
        for bad in ["%", "%4", "a%zz", "%-1"] {
            assert!(url_decode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn url_parameters_come_from_the_decoded_query() {
        let run = |url: &str, name: &str| {
            let args =
                [Arc::new(StringArray::from(vec![url])) as ArrayRef, Arc::new(StringArray::from(vec![name])) as _];
            let out = url_extract_parameter(&args, &DataType::Utf8)?;
            Ok::<_, datafusion::error::DataFusionError>(
                out.as_string::<i32>().iter().next().flatten().map(str::to_owned),
            )
        };
        assert_eq!(run("http://x/?a=1%262&b=x=y", "b").unwrap().as_deref(), Some("x=y"));
        assert_eq!(run("http://x/?a=1%262&b=x=y", "a").unwrap().as_deref(), Some("1"));
        assert_eq!(run("http://x/?a=1%262&b=x=y", "2").unwrap().as_deref(), Some(""));
        assert_eq!(run("http://x/?a=1", "c").unwrap(), None);
        assert_eq!(run("http://x/", "a").unwrap(), None);
        assert!(run("http://x y/?a=1", "a").is_err());
    }
}
