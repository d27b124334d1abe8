//! The fast path of JSON decoding: objects whose columns are all flat primitives (BOOLEAN,
//! INT, BIGINT, DOUBLE, STRING), parsed in one pass straight into Arrow arrays.
//!
//! The general path respells every key into a copy of the payload and hands the copy to
//! arrow-json's tape decoder, which makes a second pass over it; this path reads each byte
//! once. It takes only what it is sure to read as the general path does — a well-formed
//! object of plain values — and gives up on the whole batch at anything else (an escaped
//! key, a number in a STRING column, a duplicate key, a bad record), which the general path
//! then decodes, errors and all. Key names match columns exactly first, then
//! case-insensitively (ksqlDB's rule); a record's keys usually come in the order the
//! previous record's did, so each is first compared with the key met at its place there.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanBuilder, PrimitiveArray, RecordBatch, StringArray};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer, ScalarBuffer};
use datafusion::arrow::datatypes::{DataType, Float64Type, Int32Type, Int64Type, SchemaRef};

/// One column being built.
enum Column {
    Boolean(BooleanBuilder),
    Int32(Vec<i32>),
    Int64(Vec<i64>),
    Float64(Vec<f64>),
    /// Bytes, end offsets.
    Utf8(Vec<u8>, Vec<i32>),
}

/// A column and its validity.
struct Builder {
    column: Column,
    valid: Vec<bool>,
    /// Set by the current record.
    seen: bool,
}

impl Builder {
    fn new(data_type: &DataType, capacity: usize) -> Option<Builder> {
        let column = match data_type {
            DataType::Boolean => Column::Boolean(BooleanBuilder::with_capacity(capacity)),
            DataType::Int32 => Column::Int32(Vec::with_capacity(capacity)),
            DataType::Int64 => Column::Int64(Vec::with_capacity(capacity)),
            DataType::Float64 => Column::Float64(Vec::with_capacity(capacity)),
            DataType::Utf8 => {
                let mut offsets = Vec::with_capacity(capacity + 1);
                offsets.push(0);
                Column::Utf8(Vec::with_capacity(capacity * 16), offsets)
            }
            _ => return None,
        };
        Some(Builder { column, valid: Vec::with_capacity(capacity), seen: false })
    }

    fn push_null(&mut self) {
        self.valid.push(false);
        match &mut self.column {
            Column::Boolean(b) => b.append_value(false),
            Column::Int32(v) => v.push(0),
            Column::Int64(v) => v.push(0),
            Column::Float64(v) => v.push(0.0),
            Column::Utf8(bytes, offsets) => offsets.push(bytes.len() as i32),
        }
    }

    /// Reads the value at `at` into the column; the end of the value, or `None` when this
    /// path does not take it.
    fn push(&mut self, bytes: &[u8], at: usize) -> Option<usize> {
        if bytes[at..].starts_with(b"null") {
            self.push_null();
            return Some(at + 4);
        }
        match &mut self.column {
            Column::Boolean(b) => {
                let (value, end) = match bytes[at] {
                    b't' if bytes[at..].starts_with(b"true") => (true, at + 4),
                    b'f' if bytes[at..].starts_with(b"false") => (false, at + 5),
                    _ => return None,
                };
                b.append_value(value);
                self.valid.push(true);
                Some(end)
            }
            Column::Int32(v) => {
                let (value, end) = integer(bytes, at)?;
                v.push(i32::try_from(value).ok()?);
                self.valid.push(true);
                Some(end)
            }
            Column::Int64(v) => {
                let (value, end) = integer(bytes, at)?;
                v.push(value);
                self.valid.push(true);
                Some(end)
            }
            Column::Float64(v) => {
                let end = number_end(bytes, at)?;
                v.push(std::str::from_utf8(&bytes[at..end]).ok()?.parse().ok()?);
                self.valid.push(true);
                Some(end)
            }
            Column::Utf8(values, offsets) => {
                if bytes[at] != b'"' {
                    return None; // a number or boolean is coerced to text by the general path
                }
                let i = special(bytes, at + 1);
                match bytes.get(i)? {
                    b'"' => {}
                    b'\\' => {
                        // Escapes: read by serde_json, for this string alone.
                        let end = super::skip_string(bytes, at)?;
                        let text: String = serde_json::from_slice(&bytes[at..end]).ok()?;
                        values.extend_from_slice(text.as_bytes());
                        offsets.push(i32::try_from(values.len()).ok()?);
                        self.valid.push(true);
                        return Some(end);
                    }
                    _ => return None, // a control character
                }
                values.extend_from_slice(&bytes[at + 1..i]);
                offsets.push(i32::try_from(values.len()).ok()?);
                self.valid.push(true);
                Some(i + 1)
            }
        }
    }

    fn finish(self) -> Option<ArrayRef> {
        let nulls = self.valid.iter().any(|v| !v).then(|| NullBuffer::from(self.valid));
        Some(match self.column {
            Column::Boolean(mut b) => {
                let values = b.finish();
                Arc::new(datafusion::arrow::array::BooleanArray::new(values.values().clone(), nulls))
            }
            Column::Int32(v) => Arc::new(PrimitiveArray::<Int32Type>::new(ScalarBuffer::from(v), nulls)),
            Column::Int64(v) => Arc::new(PrimitiveArray::<Int64Type>::new(ScalarBuffer::from(v), nulls)),
            Column::Float64(v) => Arc::new(PrimitiveArray::<Float64Type>::new(ScalarBuffer::from(v), nulls)),
            Column::Utf8(values, offsets) => {
                // Checks the text is UTF-8 (all of it at once) and the offsets in bounds.
                let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
                Arc::new(StringArray::try_new(offsets, values.into(), nulls).ok()?)
            }
        })
    }
}

/// A JSON integer (`-?(0|[1-9][0-9]*)`, at most 18 digits so it cannot overflow) at `at`, and
/// its end; `None` for anything else (a fraction, an exponent, a longer number).
fn integer(bytes: &[u8], at: usize) -> Option<(i64, usize)> {
    let negative = bytes[at] == b'-';
    let digits = at + usize::from(negative);
    let mut i = digits;
    let mut value: i64 = 0;
    while let Some(b @ b'0'..=b'9') = bytes.get(i) {
        value = value.wrapping_mul(10).wrapping_add(i64::from(b - b'0')); // checked by the count below
        i += 1;
    }
    let count = i - digits;
    if count == 0 || count > 18 || (bytes[digits] == b'0' && count > 1) {
        return None;
    }
    if matches!(bytes.get(i), Some(b'.' | b'e' | b'E')) {
        return None;
    }
    Some((if negative { -value } else { value }, i))
}

/// The end of the JSON number at `at` (`-?int frac? exp?`), checked against JSON's grammar.
fn number_end(bytes: &[u8], at: usize) -> Option<usize> {
    let digits = |mut i: usize| {
        let start = i;
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        (i > start).then_some(i)
    };
    let mut i = at + usize::from(bytes[at] == b'-');
    let int_end = digits(i)?;
    if bytes[i] == b'0' && int_end > i + 1 {
        return None;
    }
    i = int_end;
    if bytes.get(i) == Some(&b'.') {
        i = digits(i + 1)?;
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        i = digits(i)?;
    }
    Some(i)
}

/// The position of the first quote, backslash or control character at or after `at` (the
/// end of `bytes` when there is none): where a string's plain run ends. Eight bytes at a
/// time.
fn special(bytes: &[u8], mut at: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // A high bit in each byte of the word that is zero.
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        // Bytes under 0x20 (a byte of 0x80 or more never counts: `!word` clears its bit).
        let control = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
        let found = zero(word ^ (ONES * u64::from(b'"'))) | zero(word ^ (ONES * u64::from(b'\\'))) | control;
        if found != 0 {
            return at + (found.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    while at < bytes.len() && !matches!(bytes[at], b'"' | b'\\' | 0..0x20) {
        at += 1;
    }
    at
}

/// Whether two short byte strings (keys) are equal: compared inline, a word at a time,
/// rather than by a call to `memcmp`.
#[inline]
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (mut a, mut b) = (a, b);
    while let (Some(x), Some(y)) = (a.get(..8), b.get(..8)) {
        if x.iter().zip(y).fold(0u8, |d, (p, q)| d | (p ^ q)) != 0 {
            return false;
        }
        (a, b) = (&a[8..], &b[8..]);
    }
    a.iter().zip(b).all(|(p, q)| p == q)
}

/// Past JSON's whitespace (stricter than the general path's scan, which also skips a form
/// feed: such a payload is left to it).
fn skip_space(bytes: &[u8], mut at: usize) -> usize {
    while bytes.get(at).is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r')) {
        at += 1;
    }
    at
}

/// Decodes `payloads` (each a JSON object) into a batch of `schema`, or `None` when the
/// schema is not all flat primitives or any payload is one this path does not take.
pub(super) fn decode(schema: &SchemaRef, payloads: &[&[u8]]) -> Option<RecordBatch> {
    let mut builders: Vec<Builder> =
        schema.fields().iter().map(|f| Builder::new(f.data_type(), payloads.len())).collect::<Option<_>>()?;
    // The keys of the previous record, in order, with the column each named.
    let mut previous: Vec<(&[u8], Option<usize>)> = Vec::with_capacity(builders.len());
    for payload in payloads {
        let bytes = *payload;
        let mut at = skip_space(bytes, 0);
        if bytes.get(at) != Some(&b'{') {
            return None;
        }
        at = skip_space(bytes, at + 1);
        let mut place = 0;
        if bytes.get(at) == Some(&b'}') {
            at += 1;
        } else {
            loop {
                if bytes.get(at) != Some(&b'"') {
                    return None;
                }
                // The key the previous record had here, if this is it (that key holds no
                // quote, escape or control character, so a quote after it ends this one).
                let key_start = at + 1;
                let (key_end, column) = match previous.get(place) {
                    Some((seen, column))
                        if bytes.get(key_start + seen.len()) == Some(&b'"')
                            && same(seen, &bytes[key_start..key_start + seen.len()]) =>
                    {
                        (key_start + seen.len(), *column)
                    }
                    _ => {
                        let key_end = special(bytes, key_start);
                        if bytes.get(key_end) != Some(&b'"') {
                            return None;
                        }
                        let key = &bytes[key_start..key_end];
                        let column = super::field_for(schema.fields(), key);
                        previous.truncate(place);
                        previous.push((key, column));
                        (key_end, column)
                    }
                };
                place += 1;
                at = skip_space(bytes, key_end + 1);
                if bytes.get(at) != Some(&b':') {
                    return None;
                }
                at = skip_space(bytes, at + 1);
                if at >= bytes.len() {
                    return None;
                }
                at = match column {
                    Some(c) => {
                        let builder = &mut builders[c];
                        if builder.seen {
                            return None; // a duplicate key: the general path decides
                        }
                        builder.seen = true;
                        builder.push(bytes, at)?
                    }
                    None => super::skip_value(bytes, at)?,
                };
                at = skip_space(bytes, at);
                match bytes.get(at) {
                    Some(b',') => at = skip_space(bytes, at + 1),
                    Some(b'}') => {
                        at += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        if skip_space(bytes, at) != bytes.len() {
            return None;
        }
        for builder in &mut builders {
            if !std::mem::take(&mut builder.seen) {
                builder.push_null();
            }
        }
    }
    let columns = builders.into_iter().map(Builder::finish).collect::<Option<Vec<_>>>()?;
    let options = datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(payloads.len()));
    RecordBatch::try_new_with_options(schema.clone(), columns, &options).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{Field, Schema};

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("ID", DataType::Int64, true),
            Field::new("NAME", DataType::Utf8, true),
            Field::new("SCORE", DataType::Float64, true),
            Field::new("OK", DataType::Boolean, true),
            Field::new("N", DataType::Int32, true),
        ]))
    }

    /// The general path's batch for the same payloads.
    fn general(schema: &SchemaRef, payloads: &[&[u8]]) -> RecordBatch {
        super::super::decode_general(schema, &crate::format::FormatOptions::default(), payloads).unwrap().batch
    }

    #[test]
    fn reads_what_the_general_path_reads() {
        let schema = schema();
        let payloads: Vec<&[u8]> = vec![
            br#"{"id":1,"name":"a","score":1.5,"ok":true,"n":-3}"#,
            br#" { "NAME" : "b\"\u00e9" , "Id" : -0 , "extra" : {"x":[1,{"y":"}"}]}, "score": 2e3 } "#,
            br#"{}"#,
            br#"{"id":null,"name":null,"score":-0.25E-2,"ok":false,"n":2147483647}"#,
            "{\"name\":\"h\u{e9}llo\",\"score\":7}".as_bytes(),
        ];
        let fast = decode(&schema, &payloads).expect("the fast path takes these");
        assert_eq!(fast, general(&schema, &payloads));
    }

    #[test]
    fn leaves_to_the_general_path_what_it_does_not_take() {
        let schema = schema();
        for payload in [
            &br#"{"id":"12"}"#[..],
            br#"{"name":12}"#,
            br#"{"id":1.5}"#,
            br#"{"id":1e3}"#,
            br#"{"id":01}"#,
            br#"{"id":12345678901234567890}"#,
            br#"{"n":2147483648}"#,
            br#"{"id":1,"ID":2}"#,
            br#"{"i\"d":1}"#,
            br#"{"id":1"#,
            br#"{"id":1} x"#,
            br#"[1]"#,
            b"{\"name\":\"tab\there\"}",
            br#"{"score":.5}"#,
            br#"{"score":1.}"#,
            b"{\"name\":\"\xff\"}",
        ] {
            assert!(decode(&schema, &[payload]).is_none(), "{}", String::from_utf8_lossy(payload));
        }
    }

    #[test]
    fn word_scans_agree_with_byte_scans() {
        let plain = |b: u8| !matches!(b, b'"' | b'\\' | 0..0x20);
        // Every byte, at every place of runs long enough for whole words and a tail, after
        // plain bytes that include those next to the special ones and the high ones.
        for length in 0..20 {
            for place in 0..=length {
                for byte in 0..=255u8 {
                    let mut bytes: Vec<u8> = (0..length).map(|i| [b'a', 0x21, 0x80, 0xff, b'[', b']'][i % 6]).collect();
                    if place < length {
                        bytes[place] = byte;
                    }
                    for from in 0..=length {
                        let expected = (from..length).find(|i| !plain(bytes[*i])).unwrap_or(length);
                        assert_eq!(special(&bytes, from), expected, "{bytes:?} from {from}");
                    }
                    let other: Vec<u8> = bytes.iter().map(|b| if *b == byte { b'a' } else { *b }).collect();
                    assert_eq!(same(&bytes, &other), bytes == other);
                    assert!(same(&bytes, &bytes.clone()));
                }
            }
        }
        assert!(!same(b"abc", b"abcd"));
    }

    #[test]
    fn only_flat_primitive_schemas() {
        let nested = Arc::new(Schema::new(vec![Field::new(
            "S",
            DataType::Struct(vec![Field::new("A", DataType::Int64, true)].into()),
            true,
        )]));
        assert!(decode(&nested, &[br#"{"s":{"a":1}}"#]).is_none());
    }
}
