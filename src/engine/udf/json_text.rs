//! ksqlDB's functions over JSON text: `EXTRACTJSONFIELD`, `IS_JSON_STRING`,
//! `JSON_ARRAY_CONTAINS`, `JSON_ARRAY_LENGTH`, `JSON_CONCAT`, `JSON_ITEMS`, `JSON_KEYS`,
//! `JSON_RECORDS`.
//!
//! ksqlDB reads JSON with Jackson: objects keep their keys in document order (a repeated key
//! keeps its first place and its last value), decimals stay exact, and text after the first
//! value is not read. serde_json is built here without `preserve_order` and
//! `arbitrary_precision`, so its `Value` would sort keys and round decimals: it only
//! validates the text and finds the first value ([`RawValue`]), and [`Json`] then reads that
//! text into a tree that keeps order and the numbers as written, and writes it back the way
//! Jackson does.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int32Array, ListBuilder, MapArray, StringArray, StringBuilder, StructArray,
};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer, ScalarBuffer};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Fields, Float64Type, Int64Type};
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::{ScalarUDF, Signature, Volatility};
use serde::Deserialize;
use serde::de::{SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::{Arrays, KsqlFunction, returns};

pub fn functions() -> Vec<ScalarUDF> {
    let text = || Signature::exact(vec![DataType::Utf8], Volatility::Immutable);
    vec![
        KsqlFunction::udf(
            "extractjsonfield",
            Signature::exact(vec![DataType::Utf8, DataType::Utf8], Volatility::Immutable),
            returns::<0>,
            extract_json_field,
        ),
        KsqlFunction::udf("is_json_string", text(), returns::<6>, is_json_string),
        KsqlFunction::udf(
            "json_array_contains",
            Signature::any(2, Volatility::Immutable),
            |args| match args.first() {
                Some(DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null) => {
                    Ok(DataType::Boolean)
                }
                _ => {
                    let shown: Vec<String> = args.iter().map(crate::sql::types::ksql_type_name).collect();
                    plan_err!("Function 'JSON_ARRAY_CONTAINS' does not accept parameters ({}).", shown.join(", "))
                }
            },
            json_array_contains,
        ),
        KsqlFunction::udf("json_array_length", text(), returns::<2>, json_array_length),
        KsqlFunction::udf(
            "json_concat",
            Signature::variadic(vec![DataType::Utf8], Volatility::Immutable),
            returns::<0>,
            json_concat,
        ),
        KsqlFunction::udf("json_items", text(), |_| Ok(string_list()), json_items),
        KsqlFunction::udf("json_keys", text(), |_| Ok(string_list()), json_keys),
        KsqlFunction::udf("json_records", text(), |_| Ok(string_map()), json_records),
    ]
}

/// `ARRAY<STRING>`.
fn string_list() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
}

/// `MAP<STRING, STRING>`.
fn string_map() -> DataType {
    let entries =
        Fields::from(vec![Field::new("key", DataType::Utf8, false), Field::new("value", DataType::Utf8, true)]);
    DataType::Map(Arc::new(Field::new("entries", DataType::Struct(entries), false)), false)
}

/// A JSON value as Jackson's tree holds it.
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    /// The number as written.
    Number(String),
    String(String),
    Array(Vec<Json>),
    /// The entries in document order, each key once.
    Object(Vec<(String, Json)>),
}

/// Jackson's limit on nesting (`StreamReadConstraints`); it also bounds the recursion here.
const MAX_DEPTH: usize = 1000;

/// The first JSON value of `text` as Jackson's `readTree` reads it: `None` for blank text
/// (Jackson's missing node), an error for invalid JSON.
fn parse(text: &str) -> std::result::Result<Option<Json>, String> {
    let Some(raw) = first_value(text)? else { return Ok(None) };
    Reader { text: raw, pos: 0 }.value(0).map(Some)
}

/// The text of the first JSON value, validated by serde_json; `None` for blank text. What
/// follows is not read, except that (as in Jackson) a number must be followed by white
/// space and `true`, `false` or `null` must not run into a letter or digit.
fn first_value(text: &str) -> std::result::Result<Option<&str>, String> {
    if text.trim_start_matches([' ', '\t', '\n', '\r']).is_empty() {
        return Ok(None);
    }
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let raw = <&RawValue>::deserialize(&mut deserializer).map_err(|e| e.to_string())?.get();
    let end = (raw.as_ptr() as usize).saturating_sub(text.as_ptr() as usize) + raw.len();
    let next = text.get(end..).and_then(|rest| rest.chars().next());
    match (raw.as_bytes().first(), next) {
        (Some(b'-' | b'0'..=b'9'), Some(c)) if !matches!(c, ' ' | '\t' | '\n' | '\r') => {
            Err(format!("Unexpected character ('{c}'): expected space separating root-level values"))
        }
        (Some(b't' | b'f' | b'n'), Some(c)) if c.is_alphanumeric() || c == '_' || c == '$' => {
            Err(format!("Unrecognized token '{raw}{c}'"))
        }
        _ => Ok(Some(raw)),
    }
}

/// Reads JSON text that serde_json has already validated into a [`Json`].
struct Reader<'a> {
    text: &'a str,
    pos: usize,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// The value at the cursor, inside `depth` arrays or objects.
    fn value(&mut self, depth: usize) -> std::result::Result<Json, String> {
        self.skip_whitespace();
        let start = self.pos;
        match self.peek() {
            Some(b'{' | b'[') if depth >= MAX_DEPTH => {
                Err(format!("Document nesting depth exceeds the maximum allowed ({MAX_DEPTH})"))
            }
            Some(b'{') => {
                self.pos += 1;
                let mut entries: Vec<(String, Json)> = Vec::new();
                let mut places: HashMap<String, usize> = HashMap::new();
                loop {
                    self.skip_whitespace();
                    match self.peek() {
                        Some(b'}') => break,
                        Some(b',') => self.pos += 1,
                        Some(b'"') => {
                            let key = self.string()?;
                            self.skip_whitespace();
                            if self.peek() != Some(b':') {
                                return Err("expected ':'".into());
                            }
                            self.pos += 1;
                            let value = self.value(depth + 1)?;
                            match places.get(&key) {
                                Some(&place) => entries[place].1 = value,
                                None => {
                                    places.insert(key.clone(), entries.len());
                                    entries.push((key, value));
                                }
                            }
                        }
                        _ => return Err("expected a field name".into()),
                    }
                }
                self.pos += 1;
                Ok(Json::Object(entries))
            }
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_whitespace();
                    match self.peek() {
                        Some(b']') => break,
                        Some(b',') => self.pos += 1,
                        Some(_) => items.push(self.value(depth + 1)?),
                        None => return Err("unterminated array".into()),
                    }
                }
                self.pos += 1;
                Ok(Json::Array(items))
            }
            Some(b'"') => Ok(Json::String(self.string()?)),
            Some(b't') => {
                self.pos += 4;
                Ok(Json::Bool(true))
            }
            Some(b'f') => {
                self.pos += 5;
                Ok(Json::Bool(false))
            }
            Some(b'n') => {
                self.pos += 4;
                Ok(Json::Null)
            }
            Some(b'-' | b'0'..=b'9') => {
                while matches!(self.peek(), Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')) {
                    self.pos += 1;
                }
                Ok(Json::Number(self.text.get(start..self.pos).unwrap_or("0").to_owned()))
            }
            _ => Err("expected a value".into()),
        }
    }

    /// The string starting at the cursor (at its `"`), unescaped. A lone surrogate escape
    /// becomes U+FFFD.
    fn string(&mut self) -> std::result::Result<String, String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            let start = self.pos;
            while !matches!(self.peek(), Some(b'"' | b'\\') | None) {
                self.pos += 1;
            }
            out.push_str(self.text.get(start..self.pos).unwrap_or_default());
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 2;
                    let c = match self.text.as_bytes().get(self.pos - 1) {
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => self.unicode_escape()?,
                        Some(&c) => char::from(c),
                        None => return Err("unterminated string".into()),
                    };
                    out.push(c);
                }
                _ => return Err("unterminated string".into()),
            }
        }
    }

    /// The character of a `\uXXXX` escape (the cursor after the `u`), joining a surrogate pair.
    fn unicode_escape(&mut self) -> std::result::Result<char, String> {
        let unit = self.hex4()?;
        if (0xD800..0xDC00).contains(&unit) && self.text.get(self.pos..self.pos + 2) == Some("\\u") {
            let saved = self.pos;
            self.pos += 2;
            let low = self.hex4()?;
            if (0xDC00..0xE000).contains(&low) {
                let code = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                return Ok(char::from_u32(code).unwrap_or('\u{FFFD}'));
            }
            self.pos = saved;
        }
        Ok(char::from_u32(unit).unwrap_or('\u{FFFD}'))
    }

    fn hex4(&mut self) -> std::result::Result<u32, String> {
        let digits = self.text.get(self.pos..self.pos + 4).ok_or("short \\u escape")?;
        self.pos += 4;
        u32::from_str_radix(digits, 16).map_err(|e| e.to_string())
    }
}

impl Json {
    /// Compact JSON text as Jackson writes it: decimals in plain notation when `plain` (the
    /// configured mapper, `WRITE_BIGDECIMAL_AS_PLAIN`), else as `BigDecimal.toString`
    /// (`JsonNode.toString`, which uses a default mapper).
    fn write(&self, plain: bool, out: &mut String) -> std::result::Result<(), String> {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Number(text) => out.push_str(&number_text(text, plain)?),
            Json::String(s) => quote(s, out),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(plain, out)?;
                }
                out.push(']');
            }
            Json::Object(entries) => {
                out.push('{');
                for (i, (key, value)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    quote(key, out);
                    out.push(':');
                    value.write(plain, out)?;
                }
                out.push('}');
            }
        }
        Ok(())
    }

    fn to_text(&self, plain: bool) -> std::result::Result<String, String> {
        let mut out = String::new();
        self.write(plain, &mut out)?;
        Ok(out)
    }
}

/// A string in quotes with Jackson's escapes: `\"`, `\\`, the short forms of control
/// characters that have one, `\u00XX` (upper-case hex) for the others; nothing else escaped.
pub(crate) fn quote(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Jackson's largest scale for a decimal written in plain notation.
const MAX_PLAIN_SCALE: i64 = 9999;

/// A JSON number as Jackson writes it back: an integer as its value (`-0` is `0`), any
/// other number as the exact `BigDecimal` of its text (`1.50` stays `1.50`, `1e2` is `100` in
/// plain notation and `1E+2` otherwise).
fn number_text(text: &str, plain: bool) -> std::result::Result<String, String> {
    if !text.contains(['.', 'e', 'E']) {
        return Ok(if text == "-0" { "0".into() } else { text.to_owned() });
    }
    let (negative, body) = match text.strip_prefix('-') {
        Some(body) => (true, body),
        None => (false, text),
    };
    let (mantissa, exponent) = body.split_once(['e', 'E']).unwrap_or((body, "0"));
    let exponent: i64 = exponent.parse().map_err(|_| format!("Invalid number: {text}"))?;
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{whole}{fraction}");
    let digits = match digits.trim_start_matches('0') {
        "" => "0",
        significant => significant,
    };
    let scale = fraction.len() as i64 - exponent;
    if i32::try_from(scale).is_err() {
        return Err(format!("Invalid number: {text} (scale out of range)"));
    }
    if plain && scale.abs() > MAX_PLAIN_SCALE {
        return Err(format!("Attempt to write plain BigDecimal with illegal scale ({scale})"));
    }
    Ok(big_decimal_text(negative, digits, scale, plain))
}

/// Java's `BigDecimal` text for `(-)digits × 10^-scale` (`digits` without leading zeros, `0`
/// for zero, which has no sign): `toPlainString` when `plain`, else `toString`, which
/// switches to `1.5E+3` / `1E-7` notation for a negative scale or more than six leading
/// zeros.
pub(crate) fn big_decimal_text(negative: bool, digits: &str, scale: i64, plain: bool) -> String {
    let sign = if negative && digits != "0" { "-" } else { "" };
    let len = digits.len() as i64;
    let adjusted = len - 1 - scale;
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    if plain || (scale > 0 && adjusted >= -6) {
        return if scale < 0 {
            if digits == "0" { "0".into() } else { format!("{sign}{digits}{}", "0".repeat((-scale) as usize)) }
        } else if len > scale {
            let point = (len - scale) as usize;
            format!("{sign}{}.{}", &digits[..point], &digits[point..])
        } else {
            format!("{sign}0.{}{digits}", "0".repeat((scale - len) as usize))
        };
    }
    let (first, rest) = digits.split_at(1);
    let point = if rest.is_empty() { String::new() } else { format!(".{rest}") };
    let exponent_sign = if adjusted > 0 { "+" } else { "" };
    format!("{sign}{first}{point}E{exponent_sign}{adjusted}")
}

/// The text argument as UTF-8 strings.
fn texts(array: &ArrayRef) -> Result<StringArray> {
    Ok(cast(array, &DataType::Utf8)?.as_string::<i32>().clone())
}

/// Parses one row's text, an error (ksqlDB's message) when it is not JSON.
fn parse_row(text: &str) -> Result<Option<Json>> {
    match parse(text) {
        Ok(json) => Ok(json),
        Err(reason) => exec_err!("Invalid JSON format: {text} ({reason})"),
    }
}

/// `EXTRACTJSONFIELD(json, path)`: the value at a path (ksqlDB's: `$`, then `.name`,
/// `["quoted name"]` or `[name or index]`) as text: a string bare, anything else as Jackson's
/// `JsonNode.toString` writes it (a JSON null as `null`, decimals as `BigDecimal.toString`).
/// A step that is not there gives NULL: a missing key, an index out of range or not a
/// number on an array, any step into a scalar. Blank text (Jackson's missing node) gives
/// `''` for `$` and NULL for any longer path. Invalid JSON or an invalid path is an error.
fn extract_json_field(args: &Arrays, _: &DataType) -> Result<ArrayRef> {
    let (texts, paths) = (texts(&args[0])?, texts(&args[1])?);
    let mut tokens: Option<(&str, Vec<String>)> = None;
    let mut out = Vec::with_capacity(texts.len());
    for row in 0..texts.len() {
        if texts.is_null(row) || paths.is_null(row) {
            out.push(None);
            continue;
        }
        let path = paths.value(row);
        if tokens.as_ref().is_none_or(|(last, _)| *last != path) {
            tokens = Some((path, json_path(path)?));
        }
        let steps = tokens.as_ref().map(|(_, steps)| steps.as_slice()).unwrap_or_default();
        let Some(json) = parse_row(texts.value(row))? else {
            out.push(steps.is_empty().then(String::new));
            continue;
        };
        let mut node = Some(&json);
        for step in steps {
            node = match node {
                Some(Json::Array(items)) => {
                    step.parse::<i32>().ok().and_then(|i| usize::try_from(i).ok()).and_then(|i| items.get(i))
                }
                Some(Json::Object(entries)) => entries.iter().find(|(key, _)| key == step).map(|(_, value)| value),
                _ => None,
            };
        }
        out.push(match node {
            None => None,
            Some(Json::String(s)) => Some(s.clone()),
            Some(other) => match other.to_text(false) {
                Ok(text) => Some(text),
                Err(reason) => return exec_err!("JSON serialization error: {reason}"),
            },
        });
    }
    super::words::string_array(&out)
}

/// ksqlDB's JSON path (`JsonPathTokenizer`): `$`, then steps `.name` (letters, digits, `_`,
/// `:` or `@`), `[name]` (letters, digits or `_`) or `["name"]` (with `\"` and `\\`
/// escapes), as the names they look up. Anything else is an error.
fn json_path(path: &str) -> Result<Vec<String>> {
    let invalid = || exec_err!("Invalid JSON path: '{path}'");
    let Some(mut rest) = path.strip_prefix('$') else { return invalid() };
    // Java's `Character.isLetterOrDigit` of one UTF-16 unit.
    let name_char = |c: char| c == '_' || (c.len_utf16() == 1 && is_letter_or_digit(c));
    let mut steps = Vec::new();
    while let Some(c) = rest.chars().next() {
        rest = &rest[c.len_utf8()..];
        match c {
            '.' => {
                let end = rest.find(|c: char| !(c == ':' || c == '@' || name_char(c))).unwrap_or(rest.len());
                if end == 0 {
                    return invalid();
                }
                steps.push(rest[..end].to_owned());
                rest = &rest[end..];
            }
            '[' if rest.starts_with('"') => {
                let mut name = String::new();
                let mut chars = rest[1..].char_indices();
                let end = loop {
                    match chars.next() {
                        Some((i, '"')) => break i + 2,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, escaped @ ('"' | '\\'))) => name.push(escaped),
                            _ => return invalid(),
                        },
                        Some((_, c)) => name.push(c),
                        None => return invalid(),
                    }
                };
                steps.push(name);
                rest = &rest[end..];
                let Some(after) = rest.strip_prefix(']') else { return invalid() };
                rest = after;
            }
            '[' => {
                let end = rest.find(|c: char| !name_char(c)).unwrap_or(rest.len());
                if end == 0 {
                    return invalid();
                }
                steps.push(rest[..end].to_owned());
                let Some(after) = rest[end..].strip_prefix(']') else { return invalid() };
                rest = after;
            }
            _ => return invalid(),
        }
    }
    Ok(steps)
}

/// Java's `Character.isLetterOrDigit`: a letter (`L*`) or a decimal digit (`Nd`).
fn is_letter_or_digit(c: char) -> bool {
    static LETTER_OR_DIGIT: std::sync::LazyLock<Option<regex::Regex>> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"\A[\p{L}\p{Nd}]\z").ok());
    if c.is_ascii() {
        return c.is_ascii_alphanumeric();
    }
    let mut buffer = [0; 4];
    LETTER_OR_DIGIT.as_ref().is_some_and(|r| r.is_match(c.encode_utf8(&mut buffer)))
}

/// `IS_JSON_STRING(text)`: whether the text starts with a valid JSON value; FALSE for NULL
/// or blank text, never NULL.
fn is_json_string(args: &Arrays, _: &DataType) -> Result<ArrayRef> {
    let texts = texts(&args[0])?;
    let out: BooleanArray =
        texts.iter().map(|text| Some(text.is_some_and(|t| matches!(parse(t), Ok(Some(_)))))).collect();
    Ok(Arc::new(out))
}

/// `JSON_ARRAY_LENGTH(text)`: the number of elements of a top-level array; NULL for NULL,
/// blank or non-array JSON; an error for invalid JSON.
fn json_array_length(args: &Arrays, _: &DataType) -> Result<ArrayRef> {
    let texts = texts(&args[0])?;
    let mut out = Vec::with_capacity(texts.len());
    for text in texts.iter() {
        out.push(match text.map(parse_row).transpose()?.flatten() {
            Some(Json::Array(items)) => Some(i32::try_from(items.len()).unwrap_or(i32::MAX)),
            _ => None,
        });
    }
    Ok(Arc::new(Int32Array::from(out)))
}

/// `JSON_KEYS(text)`: the keys of a top-level object in document order; NULL for NULL,
/// blank or non-object JSON; an error for invalid JSON.
fn json_keys(args: &Arrays, _: &DataType) -> Result<ArrayRef> {
    let texts = texts(&args[0])?;
    let mut out = ListBuilder::new(StringBuilder::new());
    for text in texts.iter() {
        match text.map(parse_row).transpose()?.flatten() {
            Some(Json::Object(entries)) => {
                for (key, _) in entries {
                    out.values().append_value(key);
                }
                out.append(true);
            }
            _ => out.append(false),
        }
    }
    Ok(Arc::new(out.finish()))
}

/// `JSON_ITEMS(text)`: each element of a top-level array as compact JSON (strings keep
/// their quotes). NULL for NULL; an error for blank, `null`, non-array or invalid JSON
/// (ksqlDB reads the text as a `List`, which fails on all of those).
fn json_items(args: &Arrays, _: &DataType) -> Result<ArrayRef> {
    let texts = texts(&args[0])?;
    let mut out = ListBuilder::new(StringBuilder::new());
    for text in texts.iter() {
        let Some(text) = text else {
            out.append(false);
            continue;
        };
        let Some(Json::Array(items)) = parse_row(text)? else {
            return exec_err!("Invalid JSON format: {text} (not a JSON array)");
        };
        for item in items {
            match item.to_text(false) {
                Ok(json) => out.values().append_value(json),
                Err(reason) => return exec_err!("JSON serialization error: {reason}"),
            }
        }
        out.append(true);
    }
    Ok(Arc::new(out.finish()))
}

/// `JSON_RECORDS(text)`: the entries of a top-level object, string values unquoted and
/// others as compact JSON (`null` for a JSON null); NULL for NULL, blank or non-object
/// JSON; an error for invalid JSON.
fn json_records(args: &Arrays, result: &DataType) -> Result<ArrayRef> {
    let DataType::Map(entries_field, sorted) = result else { return exec_err!("JSON_RECORDS returns a MAP") };
    let DataType::Struct(kv) = entries_field.data_type() else { return exec_err!("a map's entries are a struct") };
    let texts = texts(&args[0])?;
    let (mut keys, mut values) = (StringBuilder::new(), StringBuilder::new());
    let mut offsets = vec![0i32];
    let mut valid = Vec::with_capacity(texts.len());
    let mut count = 0usize;
    for text in texts.iter() {
        let entries = match text.map(parse_row).transpose()?.flatten() {
            Some(Json::Object(entries)) => Some(entries),
            _ => None,
        };
        valid.push(entries.is_some());
        for (key, value) in entries.unwrap_or_default() {
            keys.append_value(key);
            match value {
                Json::String(s) => values.append_value(s),
                other => match other.to_text(false) {
                    Ok(json) => values.append_value(json),
                    Err(reason) => return exec_err!("JSON serialization error: {reason}"),
                },
            }
            count += 1;
        }
        let Ok(end) = i32::try_from(count) else { return exec_err!("JSON_RECORDS: too many entries in one batch") };
        offsets.push(end);
    }
    let entries = StructArray::try_new(kv.clone(), vec![Arc::new(keys.finish()), Arc::new(values.finish())], None)?;
    Ok(Arc::new(MapArray::try_new(
        entries_field.clone(),
        OffsetBuffer::new(ScalarBuffer::from(offsets)),
        entries,
        Some(NullBuffer::from(valid)),
        *sorted,
    )?))
}

/// `JSON_CONCAT(text, …)`: objects merged (later keys win, top level only) when every
/// argument is an object, else arrays concatenated, each non-array wrapped as a one-element
/// array. Compact JSON with decimals in plain notation. NULL when any argument is NULL or
/// blank; an error for invalid JSON.
fn json_concat(args: &Arrays, _: &DataType) -> Result<ArrayRef> {
    let columns = args.iter().map(texts).collect::<Result<Vec<_>>>()?;
    let rows = columns.first().map_or(0, |c| c.len());
    let mut out = Vec::with_capacity(rows);
    'rows: for row in 0..rows {
        let mut values = Vec::with_capacity(columns.len());
        for column in &columns {
            if column.is_null(row) {
                out.push(None);
                continue 'rows;
            }
            match parse_row(column.value(row))? {
                Some(json) => values.push(json),
                None => {
                    out.push(None);
                    continue 'rows;
                }
            }
        }
        let merged = concat(values);
        match merged.map(|json| json.to_text(true)) {
            Some(Ok(text)) => out.push(Some(text)),
            Some(Err(reason)) => return exec_err!("JSON serialization error: {reason}"),
            None => out.push(None),
        }
    }
    Ok(Arc::new(StringArray::from(out)))
}

/// JSON_CONCAT's merge of parsed values (`None` when there are none).
fn concat(values: Vec<Json>) -> Option<Json> {
    let all_objects = values.iter().all(|v| matches!(v, Json::Object(_)));
    let mut values = values.into_iter();
    let first = values.next()?;
    if values.as_slice().is_empty() {
        return Some(first);
    }
    if all_objects {
        let Json::Object(mut entries) = first else { return None };
        let mut places: HashMap<String, usize> = entries.iter().enumerate().map(|(i, (k, _))| (k.clone(), i)).collect();
        for value in values {
            let Json::Object(more) = value else { continue };
            for (key, value) in more {
                match places.get(&key) {
                    Some(&place) => entries[place].1 = value,
                    None => {
                        places.insert(key.clone(), entries.len());
                        entries.push((key, value));
                    }
                }
            }
        }
        Some(Json::Object(entries))
    } else {
        let mut items = Vec::new();
        for value in std::iter::once(first).chain(values) {
            match value {
                Json::Array(more) => items.extend(more),
                other => items.push(other),
            }
        }
        Some(Json::Array(items))
    }
}

/// What `JSON_ARRAY_CONTAINS` looks for: a JSON element matches only when it is of the
/// value's kind (ksqlDB's token check) and equal to it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Sought<'a> {
    Null,
    /// An INT (`narrow`) or BIGINT: only JSON integers match, and one out of range stops
    /// the search with FALSE (Jackson's coercion error).
    Integer {
        value: i64,
        narrow: bool,
    },
    /// A DOUBLE: only JSON numbers with a fraction or exponent match, bit for bit.
    Double(f64),
    Text(&'a str),
    Bool(bool),
    /// Any other type: nothing matches.
    Nothing,
}

/// `JSON_ARRAY_CONTAINS(text, value)`: whether some top-level element of a JSON array is
/// the value (see [`Sought`]); nested elements never match, a JSON null matches NULL.
/// Elements are read in order, so a match before invalid text still counts; otherwise
/// non-array or invalid text gives FALSE. A NULL text is an error.
fn json_array_contains(args: &Arrays, _: &DataType) -> Result<ArrayRef> {
    let texts = texts(&args[0])?;
    let values = &args[1];
    let strings = match values.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Some(self::texts(values)?),
        _ => None,
    };
    let integers = match values.data_type() {
        DataType::Int8 | DataType::Int16 | DataType::Int32 => Some((cast(values, &DataType::Int64)?, true)),
        DataType::Int64 => Some((values.clone(), false)),
        _ => None,
    };
    let mut out = Vec::with_capacity(texts.len());
    for row in 0..texts.len() {
        if texts.is_null(row) {
            return exec_err!("JSON_ARRAY_CONTAINS: the JSON text is NULL");
        }
        // A NULL literal's array has no null buffer: its type says it is all NULL.
        let sought = if values.data_type().is_null() || values.is_null(row) {
            Sought::Null
        } else if let Some((integers, narrow)) = &integers {
            Sought::Integer { value: integers.as_primitive::<Int64Type>().value(row), narrow: *narrow }
        } else if let Some(strings) = &strings {
            Sought::Text(strings.value(row))
        } else {
            match values.data_type() {
                DataType::Float64 => Sought::Double(values.as_primitive::<Float64Type>().value(row)),
                DataType::Boolean => Sought::Bool(values.as_boolean().value(row)),
                _ => Sought::Nothing,
            }
        };
        out.push(Some(array_contains(texts.value(row), sought)));
    }
    Ok(Arc::new(BooleanArray::from(out)))
}

/// Streams the elements of a top-level JSON array until one matches.
fn array_contains(text: &str, sought: Sought) -> bool {
    struct Search<'s, 'v> {
        sought: Sought<'v>,
        found: &'s mut bool,
    }
    impl<'de> Visitor<'de> for Search<'_, '_> {
        type Value = ();

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON array")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut elements: A) -> std::result::Result<(), A::Error> {
            while let Some(element) = elements.next_element::<&RawValue>()? {
                match element_matches(element.get(), self.sought) {
                    Some(true) => {
                        *self.found = true;
                        return Ok(());
                    }
                    Some(false) => {}
                    None => return Err(serde::de::Error::custom("value out of range")),
                }
            }
            Ok(())
        }
    }
    let mut found = false;
    let mut deserializer = serde_json::Deserializer::from_str(text);
    // Stopping early leaves the rest unread, which serde_json reports as an error: the
    // answer is `found` either way.
    let _ = serde::Deserializer::deserialize_seq(&mut deserializer, Search { sought, found: &mut found });
    found
}

/// Whether one element's JSON text is the sought value; `None` stops the search (an
/// integer out of the sought type's range).
fn element_matches(element: &str, sought: Sought) -> Option<bool> {
    let integer = !element.contains(['.', 'e', 'E']);
    Some(match (element.as_bytes().first(), sought) {
        (Some(b'n'), Sought::Null) => true,
        (Some(b't'), Sought::Bool(b)) => b,
        (Some(b'f'), Sought::Bool(b)) => !b,
        (Some(b'"'), Sought::Text(s)) => Reader { text: element, pos: 0 }.string().is_ok_and(|e| e == s),
        (Some(b'-' | b'0'..=b'9'), Sought::Integer { value, narrow }) if integer => {
            let parsed = if narrow { element.parse::<i32>().map(i64::from) } else { element.parse::<i64>() };
            parsed.ok()? == value
        }
        (Some(b'-' | b'0'..=b'9'), Sought::Double(value)) if !integer => {
            element.parse::<f64>().is_ok_and(|e| e.to_bits() == value.to_bits())
        }
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Float64Array, Int64Array, ListArray, NullArray};
    use datafusion::arrow::datatypes::Int32Type;

    use super::*;

    fn strings(values: &[Option<&str>]) -> ArrayRef {
        Arc::new(StringArray::from(values.to_vec()))
    }

    fn one(text: &str) -> ArrayRef {
        strings(&[Some(text)])
    }

    fn lists(array: &ArrayRef) -> Vec<Option<Vec<Option<String>>>> {
        let list = array.as_any().downcast_ref::<ListArray>().unwrap();
        (0..list.len())
            .map(|row| {
                list.is_valid(row).then(|| {
                    let items = list.value(row);
                    items.as_string::<i32>().iter().map(|s| s.map(str::to_owned)).collect()
                })
            })
            .collect()
    }

    fn owned(items: &[&str]) -> Option<Vec<Option<String>>> {
        Some(items.iter().map(|s| Some((*s).to_owned())).collect())
    }

    #[test]
    fn is_json_string_accepts_any_value_and_ignores_what_follows() {
        let input = strings(&[
            Some(r#"{"a": [1, 2]}"#),
            Some("null"),
            Some("\"text\""),
            Some(""),
            Some("   "),
            Some("{\"a\":"),
            None,
            Some("[1] trailing"),
            Some("123abc"),
            Some("123 abc"),
            Some("truex"),
            Some("abc"),
        ]);
        let out = is_json_string(&[input], &DataType::Boolean).unwrap();
        let expected =
            BooleanArray::from(vec![true, true, true, false, false, false, false, true, false, true, false, false]);
        assert_eq!(out.as_boolean(), &expected);
    }

    fn extract(json: &str, path: &str) -> Result<Option<String>> {
        let out = extract_json_field(&[one(json), one(path)], &DataType::Utf8)?;
        Ok(out.as_string::<i32>().iter().next().flatten().map(str::to_owned))
    }

    #[test]
    fn extract_json_field_follows_ksqldbs_paths() {
        let doc = r#"{"a": {"z": [10, "x", null, {"k": 1.50}], "0": true}, "b c": "d", "e": 1e2}"#;
        assert_eq!(extract(doc, "$.a.z[1]").unwrap().as_deref(), Some("x"));
        assert_eq!(extract(doc, "$.a.z.0").unwrap().as_deref(), Some("10"));
        assert_eq!(extract(doc, "$.a.z[2]").unwrap().as_deref(), Some("null"));
        assert_eq!(extract(doc, "$.a.z[3]").unwrap().as_deref(), Some(r#"{"k":1.50}"#));
        assert_eq!(extract(doc, "$.a[0]").unwrap().as_deref(), Some("true"));
        assert_eq!(extract(doc, r#"$["b c"]"#).unwrap().as_deref(), Some("d"));
        assert_eq!(extract(doc, "$.e").unwrap().as_deref(), Some("1E+2"));
        assert_eq!(
            extract(doc, "$").unwrap().as_deref(),
            Some(r#"{"a":{"z":[10,"x",null,{"k":1.50}],"0":true},"b c":"d","e":1E+2}"#)
        );
        // Missing steps: NULL.
        for path in ["$.x", "$.a.z[9]", "$.a.z[x]", "$.a.z.x", "$.a.z[1].y", "$.e.f"] {
            assert_eq!(extract(doc, path).unwrap(), None, "{path}");
        }
        assert!(extract(doc, "$.b c").is_err());
        assert_eq!(extract(doc, "$.a.z[00]").unwrap().as_deref(), Some("10"));
        assert_eq!(extract("  ", "$").unwrap().as_deref(), Some(""));
        assert_eq!(extract("", "$.a").unwrap(), None);
        assert_eq!(extract("null", "$").unwrap().as_deref(), Some("null"));
        assert!(extract("{", "$.a").is_err());
    }

    #[test]
    fn json_paths_are_tokenized_as_ksqldb() {
        assert_eq!(json_path("$").unwrap(), Vec::<String>::new());
        assert_eq!(json_path(r#"$.a:b@c[_1]["x\"y\\"]"#).unwrap(), ["a:b@c", "_1", "x\"y\\"]);
        assert_eq!(json_path("$.é[Σ]").unwrap(), ["é", "Σ"]);
        for bad in
            ["", "a", " $.a", "$.", "$.a-b", "$['a']", "$[-1]", "$[ 1]", "$[1", r#"$["a"#, r#"$["a\n"]"#, "$a", "$.😀"]
        {
            assert!(json_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn json_array_length_counts_the_top_level() {
        let input = strings(&[Some("[1, [2, 3], {\"a\": 4}]"), Some("[]"), Some("{\"a\": 1}"), Some(""), None]);
        let out = json_array_length(&[input], &DataType::Int32).unwrap();
        assert_eq!(out.as_primitive::<Int32Type>(), &Int32Array::from(vec![Some(3), Some(0), None, None, None]));
        assert!(json_array_length(&[one("[1,")], &DataType::Int32).is_err());
    }

    #[test]
    fn json_keys_keeps_document_order() {
        let input = strings(&[Some(r#"{"b": 1, "a": {"z": 2}, "c": 3, "a": 4}"#), Some("{}"), Some("[1]"), None]);
        let out = json_keys(&[input], &string_list()).unwrap();
        assert_eq!(lists(&out), vec![owned(&["b", "a", "c"]), owned(&[]), None, None]);
        assert!(json_keys(&[one("{\"a\" 1}")], &string_list()).is_err());
    }

    #[test]
    fn json_items_rewrites_each_element_compactly() {
        let input = strings(&[Some(r#"[ {"b" : 1, "a": [1.50, 1e2]}, "x\ty", null, 7, -0 ]"#), Some("[]"), None]);
        let out = json_items(&[input], &string_list()).unwrap();
        assert_eq!(
            lists(&out),
            vec![owned(&[r#"{"b":1,"a":[1.50,1E+2]}"#, r#""x\ty""#, "null", "7", "0"]), owned(&[]), None]
        );
        for bad in ["{\"a\": 1}", "null", "", "[1,"] {
            assert!(json_items(&[one(bad)], &string_list()).is_err(), "{bad}");
        }
    }

    #[test]
    fn json_records_unquotes_strings_only() {
        let input =
            strings(&[Some(r#"{"s": "a\"b", "n": 0.0000001, "o": {"k": [true]}, "z": null}"#), Some("[]"), None]);
        let out = json_records(&[input], &string_map()).unwrap();
        let map = out.as_map();
        assert!(map.is_valid(0) && map.is_null(1) && map.is_null(2));
        let entries = map.value(0);
        let keys: Vec<_> = entries.column(0).as_string::<i32>().iter().flatten().collect();
        let values: Vec<_> = entries.column(1).as_string::<i32>().iter().flatten().collect();
        assert_eq!(keys, ["s", "n", "o", "z"]);
        assert_eq!(values, ["a\"b", "1E-7", r#"{"k":[true]}"#, "null"]);
        assert!(json_records(&[one("{,}")], &string_map()).is_err());
    }

    #[test]
    fn json_concat_merges_objects_or_concatenates_arrays() {
        let run = |args: &[Option<&str>]| -> Result<Option<String>> {
            let columns: Vec<ArrayRef> = args.iter().map(|a| strings(&[*a])).collect();
            let out = json_concat(&columns, &DataType::Utf8)?;
            Ok(out.as_string::<i32>().iter().next().flatten().map(str::to_owned))
        };
        assert_eq!(
            run(&[Some(r#"{"a": 1, "b": 2}"#), Some(r#"{"b": 3, "c": 1e2}"#)]).unwrap().as_deref(),
            Some(r#"{"a":1,"b":3,"c":100}"#)
        );
        assert_eq!(
            run(&[Some("[1, 2]"), Some(r#"{"a": 1}"#), Some("3")]).unwrap().as_deref(),
            Some(r#"[1,2,{"a":1},3]"#)
        );
        assert_eq!(run(&[Some("[1]"), None]).unwrap(), None);
        assert_eq!(run(&[Some("[1]"), Some("")]).unwrap(), None);
        assert_eq!(run(&[Some(" 1.0 ")]).unwrap().as_deref(), Some("1.0"));
        assert!(run(&[Some("[1]"), Some("[")]).is_err());
    }

    #[test]
    fn json_array_contains_matches_kind_and_value() {
        let check = |json: &str, value: ArrayRef| -> bool {
            let out = json_array_contains(&[one(json), value], &DataType::Boolean).unwrap();
            out.as_boolean().value(0)
        };
        let int = |v: i32| -> ArrayRef { Arc::new(Int32Array::from(vec![v])) };
        assert!(check("[1, 2, 3]", int(2)));
        assert!(check("[1, 2, 3]", Arc::new(Int64Array::from(vec![3]))));
        assert!(!check("[1.0]", int(1)));
        assert!(!check("[1]", Arc::new(Float64Array::from(vec![1.0]))));
        assert!(check("[1.0]", Arc::new(Float64Array::from(vec![1.0]))));
        assert!(check(r#"["a\u0062"]"#, one("ab")));
        assert!(!check("[[1], {\"a\": 1}]", int(1)));
        assert!(check("[false, null]", Arc::new(NullArray::new(1))));
        assert!(check("[true]", Arc::new(BooleanArray::from(vec![true]))));
        // A match before broken text counts; an INT out of range ends the search.
        assert!(check("[2, oops", int(2)));
        assert!(!check("[oops, 2]", int(2)));
        assert!(!check("[9999999999, 2]", int(2)));
        assert!(check("[9999999999, 2]", Arc::new(Int64Array::from(vec![2]))));
        assert!(!check("{\"a\": 2}", int(2)));
        assert!(!check("", int(2)));
        assert!(json_array_contains(&[strings(&[None]), int(1)], &DataType::Boolean).is_err());
    }

    #[test]
    fn numbers_are_written_like_big_decimal() {
        assert_eq!(number_text("1.50", false).unwrap(), "1.50");
        assert_eq!(number_text("-0.0", false).unwrap(), "0.0");
        assert_eq!(number_text("1e2", false).unwrap(), "1E+2");
        assert_eq!(number_text("1e2", true).unwrap(), "100");
        assert_eq!(number_text("12.5e-10", false).unwrap(), "1.25E-9");
        assert_eq!(number_text("12.5e-10", true).unwrap(), "0.00000000125");
        assert_eq!(number_text("0.000001", false).unwrap(), "0.000001");
        assert_eq!(number_text("0e5", false).unwrap(), "0E+5");
        assert_eq!(number_text("0e5", true).unwrap(), "0");
        assert_eq!(number_text("-123456789012345678901234567890", true).unwrap(), "-123456789012345678901234567890");
        assert!(number_text("1e99999", true).is_err());
    }

    #[test]
    fn strings_are_escaped_like_jackson() {
        let out = parse(r#""a\/b\u001fc\u00e9\ud83d\ude00\ud800""#).unwrap().unwrap();
        assert_eq!(out, Json::String("a/b\u{1f}c\u{e9}\u{1F600}\u{FFFD}".into()));
        assert_eq!(out.to_text(true).unwrap(), "\"a/b\\u001Fc\u{e9}\u{1F600}\u{FFFD}\"");
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(parse(&deep).is_err());
        let fine = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(&fine).is_ok());
    }
}
