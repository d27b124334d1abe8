//! More of ksqlDB's string functions: `INSTR`, `SPLIT` (strings and bytes), `ELT`, `FIELD`,
//! `CHR`, and the URL functions (`URL_EXTRACT_HOST`, `…_PORT`, `…_PATH`, `…_QUERY`,
//! `…_FRAGMENT`, `…_PROTOCOL`, `…_PARAMETER`, `URL_ENCODE_PARAM`, `URL_DECODE_PARAM`).

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BinaryBuilder, Int32Array, ListBuilder, StringArray, StringBuilder,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field};
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
        KsqlFunction::udf(
            "to_bytes",
            Signature::exact(vec![DataType::Utf8, DataType::Utf8], Volatility::Immutable),
            |_| Ok(DataType::Binary),
            to_bytes,
        ),
        KsqlFunction::udf(
            "from_bytes",
            Signature::exact(vec![DataType::Binary, DataType::Utf8], Volatility::Immutable),
            returns::<0>,
            from_bytes,
        ),
        // ksqlDB's ENCODE(text, from, to) replaces DataFusion's ENCODE(bytes, format).
        KsqlFunction::udf("encode", text_signature(3), returns::<0>, |args, _| {
            let (texts, from, to) =
                (args[0].as_string::<i32>(), args[1].as_string::<i32>(), args[2].as_string::<i32>());
            let out: StringArray = (0..texts.len())
                .map(|row| {
                    if texts.is_null(row) || from.is_null(row) || to.is_null(row) {
                        return None;
                    }
                    decode_bytes(&encode_text(texts.value(row), from.value(row))?, to.value(row))
                })
                .collect();
            Ok(Arc::new(out))
        }),
        KsqlFunction::udf(
            "regexp_split_to_array",
            text_signature(2),
            |_| Ok(DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))),
            regexp_split,
        ),
        KsqlFunction::udf("url_encode_param", text_signature(1), returns::<0>, |args, _| {
            Ok(map_text(&args[0], |s| Some(form_urlencoded::byte_serialize(s.as_bytes()).collect())))
        }),
        KsqlFunction::udf("url_decode_param", text_signature(1), returns::<0>, |args, _| {
            Ok(map_text(&args[0], |s| {
                form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned())
            }))
        }),
        KsqlFunction::udf("url_extract_parameter", text_signature(2), returns::<0>, |args, _| {
            let names = args[1].as_string::<i32>();
            let urls = args[0].as_string::<i32>();
            let out: StringArray = (0..urls.len())
                .map(|row| {
                    if urls.is_null(row) || names.is_null(row) {
                        return None;
                    }
                    let url = url::Url::parse(urls.value(row)).ok()?;
                    url.query_pairs().find(|(k, _)| k == names.value(row)).map(|(_, v)| {
                        // ksqlDB returns the raw (still encoded) value.
                        let raw = url.query().unwrap_or_default();
                        raw.split('&')
                            .find_map(|pair| {
                                let (k, v2) = pair.split_once('=')?;
                                (k == names.value(row)).then(|| v2.to_owned())
                            })
                            .unwrap_or_else(|| v.into_owned())
                    })
                })
                .collect();
            Ok(Arc::new(out))
        }),
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

/// `URL_EXTRACT_…` functions: the part of each URL, null when absent or not a URL.
const URL_PARTS: [(&str, super::Invoke); 6] = [
    ("url_extract_host", |args, _| Ok(map_text(&args[0], |s| url::Url::parse(s).ok()?.host_str().map(str::to_owned)))),
    ("url_extract_path", |args, _| {
        Ok(map_text(&args[0], |s| {
            let path = url::Url::parse(s).ok()?.path().to_owned();
            // The URL parser adds a `/` to a URL without a path; ksqlDB's (Java's) does not.
            let written = s.split(['?', '#']).next().unwrap_or(s);
            let has_path = written.split("://").nth(1).is_some_and(|rest| rest.contains('/'));
            Some(if has_path { path } else { String::new() })
        }))
    }),
    ("url_extract_query", |args, _| Ok(map_text(&args[0], |s| url::Url::parse(s).ok()?.query().map(str::to_owned)))),
    ("url_extract_fragment", |args, _| {
        Ok(map_text(&args[0], |s| url::Url::parse(s).ok()?.fragment().map(str::to_owned)))
    }),
    ("url_extract_protocol", |args, _| Ok(map_text(&args[0], |s| Some(url::Url::parse(s).ok()?.scheme().to_owned())))),
    ("url_extract_port", |args, _| {
        let urls = args[0].as_string::<i32>();
        let ports: Int32Array =
            urls.iter().map(|s| s.and_then(|s| url::Url::parse(s).ok()?.port().map(i32::from))).collect();
        Ok(Arc::new(ports))
    }),
];

fn text_signature(n: usize) -> Signature {
    Signature::exact(vec![DataType::Utf8; n], Volatility::Immutable)
}

/// `f` over each string (null stays null).
fn map_text(array: &ArrayRef, f: impl Fn(&str) -> Option<String>) -> ArrayRef {
    let strings = array.as_string::<i32>();
    let out: StringArray = strings.iter().map(|s| s.and_then(&f)).collect();
    Arc::new(out)
}

/// `INSTR(s, sub[, position[, occurrence]])`: 1-based position of the occurrence-th match
/// from `position` (negative: searching backwards from the end), 0 when none.
fn instr(args: &Arrays, _: &DataType) -> Result<ArrayRef> {
    let (texts, subs) = (args[0].as_string::<i32>(), args[1].as_string::<i32>());
    let ints: Vec<ArrayRef> = args[2..].iter().map(|a| cast(a, &DataType::Int64)).collect::<Result<_, _>>()?;
    let ints: Vec<&datafusion::arrow::array::Int64Array> =
        ints.iter().map(|a| a.as_primitive::<datafusion::arrow::datatypes::Int64Type>()).collect();
    let out: Int32Array = (0..texts.len())
        .map(|row| {
            if texts.is_null(row) || subs.is_null(row) {
                return Some(0);
            }
            let (text, sub): (Vec<char>, Vec<char>) =
                (texts.value(row).chars().collect(), subs.value(row).chars().collect());
            let position = ints.first().map_or(1, |a| if a.is_null(row) { 1 } else { a.value(row) });
            let occurrence = ints.get(1).map_or(1, |a| if a.is_null(row) { 1 } else { a.value(row) }).max(1);
            Some(find_occurrence(&text, &sub, position, occurrence as usize))
        })
        .collect();
    Ok(Arc::new(out))
}

fn find_occurrence(text: &[char], sub: &[char], position: i64, occurrence: usize) -> i32 {
    let len = text.len() as i64;
    if position == 0 || position.abs() > len || sub.len() > text.len() {
        return 0;
    }
    let matches_at = |i: usize| text[i..].starts_with(sub);
    let mut found = 0;
    if position > 0 {
        for i in (position - 1) as usize..=text.len() - sub.len() {
            if matches_at(i) {
                found += 1;
                if found == occurrence {
                    return i as i32 + 1;
                }
            }
        }
    } else {
        let start = (len + position) as usize;
        for i in (0..=start.min(text.len() - sub.len())).rev() {
            if matches_at(i) {
                found += 1;
                if found == occurrence {
                    return i as i32 + 1;
                }
            }
        }
    }
    0
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

/// `ELT(n, s1, s2, …)`: the n-th string (1-based), null when out of range.
fn elt(args: &Arrays, _: &DataType) -> Result<ArrayRef> {
    let Some((index, strings)) = args.split_first() else { return exec_err!("ELT needs arguments") };
    let index = cast(index, &DataType::Int64)?;
    let index = index.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
    let strings: Vec<ArrayRef> = strings.iter().map(|a| cast(a, &DataType::Utf8)).collect::<Result<_, _>>()?;
    let out: StringArray = (0..index.len())
        .map(|row| {
            if index.is_null(row) {
                return None;
            }
            let n = index.value(row);
            let chosen = strings.get(usize::try_from(n).ok()?.checked_sub(1)?)?.as_string::<i32>();
            (!chosen.is_null(row)).then(|| chosen.value(row).to_owned())
        })
        .collect();
    Ok(Arc::new(out))
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

/// `CHR(code)` or `CHR('\uXXXX')`: the character, null when not one.
fn chr(args: &Arrays, _: &DataType) -> Result<ArrayRef> {
    let out: StringArray = match args[0].data_type() {
        DataType::Utf8 => args[0]
            .as_string::<i32>()
            .iter()
            .map(|s| {
                // `\uXXXX`, or a surrogate pair `\uD8XX\uDCXX`, as Java writes UTF-16.
                let units: Vec<u16> =
                    s?.split("\\u").skip(1).map(|hex| u16::from_str_radix(hex, 16).ok()).collect::<Option<_>>()?;
                let text = String::from_utf16(&units).ok()?;
                (text.chars().count() == 1).then_some(text)
            })
            .collect(),
        _ => {
            let codes = cast(&args[0], &DataType::Int64)?;
            codes
                .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                .iter()
                .map(|c| char::from_u32(u32::try_from(c?).ok()?).map(|c| c.to_string()))
                .collect()
        }
    };
    Ok(Arc::new(out))
}

/// Bytes of `text` in an encoding ksqlDB names: `hex`, `utf8`, `ascii`, `base64`.
fn encode_text(text: &str, encoding: &str) -> Option<Vec<u8>> {
    match encoding.to_ascii_lowercase().as_str() {
        "utf8" => Some(text.as_bytes().to_vec()),
        // As Java encodes US-ASCII: a character outside it is '?'.
        "ascii" => Some(text.chars().map(|c| if c.is_ascii() { c as u8 } else { b'?' }).collect()),
        "base64" => crate::format::base64_decode(text),
        "hex" => {
            let hex = text
                .strip_prefix("0x")
                .or_else(|| text.strip_prefix("X'").and_then(|t| t.strip_suffix('\'')))
                .unwrap_or(text);
            let hex = if hex.len() % 2 == 1 { format!("0{hex}") } else { hex.to_owned() };
            (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok()).collect()
        }
        _ => None,
    }
}

/// Text of `bytes` in an encoding ksqlDB names.
fn decode_bytes(bytes: &[u8], encoding: &str) -> Option<String> {
    match encoding.to_ascii_lowercase().as_str() {
        "utf8" => String::from_utf8(bytes.to_vec()).ok(),
        "ascii" => Some(bytes.iter().map(|b| if b.is_ascii() { *b as char } else { '\u{FFFD}' }).collect()),
        "base64" => Some(crate::format::base64_encode(bytes)),
        "hex" => Some(bytes.iter().map(|b| format!("{b:02x}")).collect()),
        _ => None,
    }
}

/// `TO_BYTES(text, encoding)`: an odd-length or invalid hex text, invalid base64 or an
/// unknown encoding is an error.
fn to_bytes(args: &Arrays, _: &DataType) -> Result<ArrayRef> {
    let (texts, encodings) = (args[0].as_string::<i32>(), args[1].as_string::<i32>());
    let out: datafusion::arrow::array::BinaryArray = (0..texts.len())
        .map(|row| {
            if texts.is_null(row) || encodings.is_null(row) {
                return Ok(None);
            }
            let (text, encoding) = (texts.value(row), encodings.value(row));
            if encoding.eq_ignore_ascii_case("hex") && text.len() % 2 == 1 {
                return exec_err!("TO_BYTES: hex text of odd length: {text}");
            }
            match encode_text(text, encoding) {
                Some(bytes) => Ok(Some(bytes)),
                None => exec_err!("TO_BYTES: '{text}' is not valid {encoding}, or {encoding} is not an encoding"),
            }
        })
        .collect::<Result<_>>()?;
    Ok(Arc::new(out))
}

/// `FROM_BYTES(bytes, encoding)`: an unknown encoding is an error.
fn from_bytes(args: &Arrays, _: &DataType) -> Result<ArrayRef> {
    let (bytes, encodings) = (args[0].as_binary::<i32>(), args[1].as_string::<i32>());
    let out: StringArray = (0..bytes.len())
        .map(|row| {
            if bytes.is_null(row) || encodings.is_null(row) {
                return Ok(None);
            }
            let encoding = encodings.value(row);
            // ksqlDB writes hex in capitals here (and in lower case from ENCODE).
            match decode_bytes(bytes.value(row), encoding) {
                Some(text) if encoding.eq_ignore_ascii_case("hex") => Ok(Some(text.to_uppercase())),
                Some(text) => Ok(Some(text)),
                None => exec_err!("FROM_BYTES: unknown encoding {encoding}, or bytes that are not {encoding}"),
            }
        })
        .collect::<Result<_>>()?;
    Ok(Arc::new(out))
}

/// `REGEXP_SPLIT_TO_ARRAY(text, pattern)`.
fn regexp_split(args: &Arrays, _: &DataType) -> Result<ArrayRef> {
    let (texts, patterns) = (args[0].as_string::<i32>(), args[1].as_string::<i32>());
    let mut out = ListBuilder::new(StringBuilder::new());
    for row in 0..texts.len() {
        let pattern = (!patterns.is_null(row)).then(|| regex::Regex::new(patterns.value(row)).ok()).flatten();
        match (texts.is_null(row), pattern) {
            (false, Some(pattern)) => out.append_value(pattern.split(texts.value(row)).map(Some)),
            _ => out.append_null(),
        }
    }
    Ok(Arc::new(out.finish()))
}
