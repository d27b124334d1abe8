//! ksqlDB's word and text functions: `INITCAP`, `TRIM` (Java's: characters up to U+0020 off
//! both ends), `REPLACE` (literal), `SPLIT_TO_MAP`, `UUID()` and `UUID(bytes)`; each replaces
//! DataFusion's function of the same name where there is one.
//!
//! `CONCAT`, `CONCAT_WS` and `MD5` are DataFusion's, which already behave as ksqlDB's (the
//! tests below hold them to it): `CONCAT` skips NULLs and gives `''` (or empty bytes) when all
//! are NULL; `CONCAT_WS` is NULL for a NULL separator, skips NULL values and refuses fewer
//! than two arguments when planning; both take strings or bytes. `MD5` is the lower-case hex
//! of the UTF-8 bytes (typed `Utf8View`, which Eddy reads as STRING).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, MapBuilder, MapFieldNames, StringArray, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Fields};
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};

use super::{Arrays, KsqlFunction, returns};

pub fn functions() -> Vec<ScalarUDF> {
    vec![
        KsqlFunction::udf("initcap", text_signature(1), returns::<0>, |args, _| {
            string_array(&map_text(&args[0], |s| Some(initcap(s))))
        }),
        KsqlFunction::udf("trim", text_signature(1), returns::<0>, |args, _| {
            string_array(&map_text(&args[0], |s| Some(s.trim_matches(|c: char| c <= '\u{20}'))))
        }),
        KsqlFunction::udf("replace", text_signature(3), returns::<0>, replace),
        KsqlFunction::udf("split_to_map", text_signature(3), |_| Ok(string_map_type()), split_to_map),
        ScalarUDF::from(Uuid::new()),
    ]
}

fn text_signature(n: usize) -> Signature {
    Signature::exact(vec![DataType::Utf8; n], Volatility::Immutable)
}

/// `f` over each string (null stays null).
fn map_text<'a, T>(array: &'a ArrayRef, f: impl Fn(&'a str) -> Option<T>) -> Vec<Option<T>> {
    array.as_string::<i32>().iter().map(|s| s.and_then(&f)).collect()
}

/// Strings as an array, or an error when they are too much text for one (over 2 GiB).
pub(crate) fn string_array<S: AsRef<str>>(values: &[Option<S>]) -> Result<ArrayRef> {
    let bytes: usize = values.iter().flatten().map(|s| s.as_ref().len()).sum();
    if bytes > i32::MAX as usize {
        return exec_err!("the result is over 2 GiB of text, too large for one batch");
    }
    let mut out = StringBuilder::with_capacity(values.len(), bytes);
    for value in values {
        out.append_option(value.as_ref());
    }
    Ok(Arc::new(out.finish()))
}

/// Java's `\s`: the ASCII whitespace INITCAP splits words on.
fn is_java_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r')
}

/// `INITCAP(s)`: lower case, then each word's first character upper case, words being split
/// by ASCII whitespace. Leading whitespace goes; whitespace after a word stays. As in Java,
/// a first character outside the BMP is left as it is (Java upper-cases one UTF-16 unit).
fn initcap(s: &str) -> String {
    let lower = s.to_lowercase();
    let mut out = String::with_capacity(lower.len());
    let mut word_start = true;
    for c in lower.chars() {
        if is_java_space(c) {
            if !out.is_empty() {
                out.push(c);
            }
            word_start = true;
        } else {
            if word_start && c.len_utf16() == 1 {
                out.extend(c.to_uppercase());
            } else {
                out.push(c);
            }
            word_start = false;
        }
    }
    out
}

/// `REPLACE(s, old, new)`: every literal `old` replaced by `new`; an empty `old` puts `new`
/// before each character and at the end (Java's `String.replace`; between the two halves of
/// a character outside the BMP Java would put it too, making the text invalid, which is not
/// done here). Any NULL gives NULL.
fn replace(args: &Arrays, _: &DataType) -> Result<ArrayRef> {
    let (texts, olds, news) = (args[0].as_string::<i32>(), args[1].as_string::<i32>(), args[2].as_string::<i32>());
    let mut out = Vec::with_capacity(texts.len());
    for row in 0..texts.len() {
        if texts.is_null(row) || olds.is_null(row) || news.is_null(row) {
            out.push(None);
            continue;
        }
        let (text, old, new) = (texts.value(row), olds.value(row), news.value(row));
        // The result's size first: a short `old` and a long `new` could ask for gigabytes.
        let count = if old.is_empty() { text.chars().count() + 1 } else { text.matches(old).count() };
        let size = (text.len() - count * old.len()).saturating_add(count.saturating_mul(new.len()));
        if size > i32::MAX as usize {
            return exec_err!("REPLACE: the result would be {size} bytes, too large");
        }
        out.push(Some(text.replace(old, new)));
    }
    string_array(&out)
}

/// `MAP<STRING, STRING>` as Eddy declares it.
fn string_map_type() -> DataType {
    let entries =
        Fields::from(vec![Field::new("key", DataType::Utf8, false), Field::new("value", DataType::Utf8, true)]);
    DataType::Map(Arc::new(Field::new("entries", DataType::Struct(entries), false)), false)
}

/// `SPLIT_TO_MAP(s, entry_delimiter, kv_delimiter)`: entries split on the first delimiter
/// (empty ones dropped), each split on the second into key (before the first) and value (up
/// to the next, if any); entries without it are dropped; a repeated key keeps its last value
/// (in its first place: ksqlDB's order is a HashMap's, so none in particular). NULL for a
/// NULL argument, an empty delimiter or two equal delimiters.
fn split_to_map(args: &Arrays, _: &DataType) -> Result<ArrayRef> {
    let (texts, entry_delimiters, kv_delimiters) =
        (args[0].as_string::<i32>(), args[1].as_string::<i32>(), args[2].as_string::<i32>());
    let names = MapFieldNames { entry: "entries".into(), key: "key".into(), value: "value".into() };
    let mut out = MapBuilder::new(Some(names), StringBuilder::new(), StringBuilder::new());
    for row in 0..texts.len() {
        if texts.is_null(row) || entry_delimiters.is_null(row) || kv_delimiters.is_null(row) {
            out.append(false)?;
            continue;
        }
        let (text, entry_delimiter, kv_delimiter) =
            (texts.value(row), entry_delimiters.value(row), kv_delimiters.value(row));
        if entry_delimiter.is_empty() || kv_delimiter.is_empty() || entry_delimiter == kv_delimiter {
            out.append(false)?;
            continue;
        }
        let mut entries: Vec<(&str, &str)> = Vec::new();
        for entry in text.split(entry_delimiter).filter(|e| !e.is_empty()) {
            let mut parts = entry.split(kv_delimiter);
            let (Some(key), Some(value)) = (parts.next(), parts.next()) else { continue };
            match entries.iter_mut().find(|(k, _)| *k == key) {
                Some(existing) => existing.1 = value,
                None => entries.push((key, value)),
            }
        }
        for (key, value) in entries {
            out.keys().append_value(key);
            out.values().append_value(value);
        }
        out.append(true)?;
    }
    Ok(Arc::new(out.finish()))
}

/// `UUID()`: a random version-4 UUID per row (DataFusion's `uuid`, which is one); and
/// `UUID(bytes)`: 16 bytes as a UUID (two big-endian longs, as Java reads them), NULL for
/// any other length or NULL. Volatile, so that `UUID()` is not folded into one value.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Uuid {
    signature: Signature,
}

impl Uuid {
    fn new() -> Self {
        let signature = Signature::one_of(
            vec![TypeSignature::Nullary, TypeSignature::Exact(vec![DataType::Binary])],
            Volatility::Volatile,
        );
        Uuid { signature }
    }
}

impl ScalarUDFImpl for Uuid {
    fn name(&self) -> &str {
        "uuid"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        match args.args.first() {
            None => datafusion::functions::string::uuid().invoke_with_args(args),
            Some(bytes) => Ok(ColumnarValue::Array(uuid_of_bytes(&bytes.to_array(args.number_rows)?)?)),
        }
    }
}

/// Each row's 16 bytes as a UUID's text (NULL for another length).
fn uuid_of_bytes(bytes: &ArrayRef) -> Result<ArrayRef> {
    let Some(bytes) = bytes.as_binary_opt::<i32>() else {
        return exec_err!("UUID needs BYTES, not {}", bytes.data_type());
    };
    let out: StringArray = bytes
        .iter()
        .map(|b| {
            let b: &[u8; 16] = b?.try_into().ok()?;
            let hex = |range: std::ops::Range<usize>| b[range].iter().map(|x| format!("{x:02x}")).collect::<String>();
            Some(format!("{}-{}-{}-{}-{}", hex(0..4), hex(4..6), hex(6..8), hex(8..10), hex(10..16)))
        })
        .collect();
    Ok(Arc::new(out))
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::BinaryArray;
    use datafusion::arrow::util::display::array_value_to_string;
    use datafusion::prelude::SessionContext;

    use super::*;

    use crate::engine::udf::test_arrays::{strings, texts};

    fn owned(values: &[Option<&str>]) -> Vec<Option<String>> {
        values.iter().map(|v| v.map(str::to_owned)).collect()
    }

    /// The functions of `udf/mod.rs` on one row, by SQL: its value as text, `None` for NULL.
    async fn query(sql: &str) -> Result<Option<String>> {
        let context = SessionContext::new();
        super::super::register(&context);
        let batches = context.sql(sql).await?.collect().await?;
        let column = batches[0].column(0);
        Ok((!column.is_null(0)).then(|| array_value_to_string(column, 0).unwrap()))
    }

    #[test]
    fn initcap_is_javas() {
        assert_eq!(initcap("the QUICK  brown fox"), "The Quick  Brown Fox");
        assert_eq!(initcap("  lead and trail\t "), "Lead And Trail\t ");
        assert_eq!(initcap("hello-world o'neil"), "Hello-world O'neil");
        // Only ASCII whitespace splits words; ß upper-cases to SS.
        assert_eq!(initcap("a\u{A0}b ßa"), "A\u{A0}b SSa");
        assert_eq!(initcap(""), "");
        assert_eq!(initcap(" \t"), "");
        let out = string_array(&map_text(&strings(&[None, Some("ab")]), |s| Some(initcap(s)))).unwrap();
        assert_eq!(texts(&out), owned(&[None, Some("Ab")]));
    }

    #[tokio::test]
    async fn trim_cuts_control_characters_too() {
        assert_eq!(query("SELECT trim('  text  ')").await.unwrap().as_deref(), Some("text"));
        assert_eq!(
            query("SELECT trim(concat(chr(1), 'a b', chr(10), chr(32)))").await.unwrap().as_deref(),
            Some("a b")
        );
        // A no-break space is above U+0020: it stays.
        assert_eq!(query("SELECT trim(concat(chr(160), 'a'))").await.unwrap().as_deref(), Some("\u{A0}a"));
        assert_eq!(query("SELECT trim(CAST(NULL AS VARCHAR))").await.unwrap(), None);
    }

    #[test]
    fn replace_is_literal() {
        let run = |t: Option<&str>, o: Option<&str>, n: Option<&str>| {
            texts(&replace(&[strings(&[t]), strings(&[o]), strings(&[n])], &DataType::Utf8).unwrap()).remove(0)
        };
        assert_eq!(run(Some("banana"), Some("an"), Some("AN")).as_deref(), Some("bANANa"));
        assert_eq!(run(Some("a.c"), Some("."), Some("$1")).as_deref(), Some("a$1c"));
        assert_eq!(run(Some("ab"), Some(""), Some("-")).as_deref(), Some("-a-b-"));
        assert_eq!(run(Some(""), Some(""), Some("-")).as_deref(), Some("-"));
        assert_eq!(run(Some("text"), None, Some("x")), None);
        assert_eq!(run(None, Some("a"), Some("x")), None);
        assert_eq!(run(Some("text"), Some("t"), None), None);
    }

    fn split(text: Option<&str>, entries: Option<&str>, kv: Option<&str>) -> Option<Vec<(String, Option<String>)>> {
        let out = split_to_map(&[strings(&[text]), strings(&[entries]), strings(&[kv])], &DataType::Null).unwrap();
        assert_eq!(out.data_type(), &string_map_type());
        let map = out.as_map();
        if map.is_null(0) {
            return None;
        }
        let entries = map.value(0);
        let (keys, values) = (entries.column(0).as_string::<i32>(), entries.column(1).as_string::<i32>());
        Some(
            (0..keys.len())
                .map(|i| (keys.value(i).to_owned(), values.is_valid(i).then(|| values.value(i).to_owned())))
                .collect(),
        )
    }

    fn pairs(values: &[(&str, &str)]) -> Option<Vec<(String, Option<String>)>> {
        Some(values.iter().map(|(k, v)| ((*k).to_owned(), Some((*v).to_owned()))).collect())
    }

    #[test]
    fn split_to_map_is_ksqldbs() {
        assert_eq!(split(Some("a=1;b=2"), Some(";"), Some("=")), pairs(&[("a", "1"), ("b", "2")]));
        // Empty entries and entries without `=` go; the last value of a key wins.
        assert_eq!(split(Some("a=1;;b;a=3"), Some(";"), Some("=")), pairs(&[("a", "3")]));
        // The value ends at the next `=`; keys and values may be empty.
        assert_eq!(split(Some("a=1=2;=x;y="), Some(";"), Some("=")), pairs(&[("a", "1"), ("", "x"), ("y", "")]));
        assert_eq!(split(Some("k:v||k2:v2"), Some("||"), Some(":")), pairs(&[("k", "v"), ("k2", "v2")]));
        assert_eq!(split(Some(""), Some(";"), Some("=")), pairs(&[]));
        assert_eq!(split(Some("a=1"), Some(";"), Some(";")), None);
        assert_eq!(split(Some("a=1"), Some(""), Some("=")), None);
        assert_eq!(split(Some("a=1"), Some(";"), None), None);
        assert_eq!(split(None, Some(";"), Some("=")), None);
    }

    #[test]
    fn uuid_of_sixteen_bytes() {
        let bytes: ArrayRef = Arc::new(BinaryArray::from(vec![
            Some(&(0u8..16).collect::<Vec<_>>()[..]),
            Some(&[0xFFu8; 16][..]),
            Some(&[0u8, 1][..]),
            None,
        ]));
        assert_eq!(
            texts(&uuid_of_bytes(&bytes).unwrap()),
            owned(&[
                Some("00010203-0405-0607-0809-0a0b0c0d0e0f"),
                Some("ffffffff-ffff-ffff-ffff-ffffffffffff"),
                None,
                None
            ])
        );
    }

    #[tokio::test]
    async fn uuid_is_random_per_row_and_version_4() {
        let context = SessionContext::new();
        super::super::register(&context);
        let batches =
            context.sql("SELECT uuid() FROM (VALUES (1), (2), (3)) AS t(x)").await.unwrap().collect().await.unwrap();
        let values: Vec<String> = batches
            .iter()
            .flat_map(|b| b.column(0).as_string::<i32>().iter().map(|s| s.unwrap().to_owned()).collect::<Vec<_>>())
            .collect();
        assert_eq!(values.len(), 3);
        for value in &values {
            assert_eq!(value.len(), 36);
            assert_eq!(&value[14..15], "4");
            assert!(value.chars().all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c)), "{value}");
        }
        assert!(values[0] != values[1] && values[1] != values[2]);
        let from_bytes = query("SELECT uuid(X'000102030405060708090A0B0C0D0E0F')").await.unwrap();
        assert_eq!(from_bytes.as_deref(), Some("00010203-0405-0607-0809-0a0b0c0d0e0f"));
    }

    /// DataFusion's CONCAT, CONCAT_WS and MD5 are left in place: they must stay ksqlDB's.
    #[tokio::test]
    async fn datafusions_concat_and_md5_are_ksqldbs() {
        let value = |sql: &'static str| async move { query(sql).await.unwrap() };
        assert_eq!(value("SELECT concat('a', CAST(NULL AS VARCHAR), 'b')").await.as_deref(), Some("ab"));
        assert_eq!(value("SELECT concat(CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR))").await.as_deref(), Some(""));
        assert_eq!(value("SELECT concat(X'01', CAST(NULL AS BYTEA), X'02')").await.as_deref(), Some("0102"));
        assert_eq!(value("SELECT concat(CAST(NULL AS BYTEA))").await.as_deref(), Some(""));
        assert_eq!(value("SELECT concat_ws('-', 'a', CAST(NULL AS VARCHAR), 'b')").await.as_deref(), Some("a-b"));
        assert_eq!(value("SELECT concat_ws(CAST(NULL AS VARCHAR), 'a', 'b')").await, None);
        assert_eq!(
            value("SELECT concat_ws(X'00', X'01', CAST(NULL AS BYTEA), X'02')").await.as_deref(),
            Some("010002")
        );
        assert!(query("SELECT concat_ws('-')").await.is_err());
        assert_eq!(value("SELECT md5('hello')").await.as_deref(), Some("5d41402abc4b2a76b9719d911017c592"));
        // Of the UTF-8 bytes C3 A9, as ksqlDB's.
        assert_eq!(value("SELECT md5('é')").await.as_deref(), Some("66ddcd97cfdeabb2f6fb8a999b4bc76f"));
        assert_eq!(value("SELECT md5(CAST(NULL AS VARCHAR))").await, None);
    }

    #[tokio::test]
    async fn ksqldbs_functions_replace_datafusions() {
        // DataFusion's INITCAP capitalises after any non-alphanumeric character.
        assert_eq!(query("SELECT initcap('hello-world')").await.unwrap().as_deref(), Some("Hello-world"));
        assert_eq!(query("SELECT replace('ab', '', '-')").await.unwrap().as_deref(), Some("-a-b-"));
        let map = query("SELECT split_to_map('a=1;b=2', ';', '=')").await.unwrap();
        assert_eq!(map.as_deref(), Some("{a: 1, b: 2}"));
    }
}
