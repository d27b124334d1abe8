//! The JSON format.
//!
//! ksqlDB matches JSON field names to columns case-insensitively, at every level of nested
//! structs, but never touches the keys of a MAP. arrow-json matches names exactly, so each
//! payload is parsed, its struct keys renamed to the schema's spelling (guided by the
//! schema, so map keys stay as they are), and the rows handed to arrow-json's decoder.
//! Keys are respelled by a scan of the raw bytes (no value is built); payloads the scan
//! cannot respell go through a `serde_json::Value`. Flat objects of primitive columns, the
//! common case, take a faster path still: [`flat`], one pass straight into Arrow arrays.

use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, PrimitiveArray, StructArray};
use datafusion::arrow::datatypes::{DataType, Field, Fields, SchemaRef};
use datafusion::arrow::datatypes::{Decimal128Type, DecimalType, FieldRef, Float64Type};
use datafusion::arrow::json::reader::ReaderBuilder;
use datafusion::arrow::json::writer::{Encoder, EncoderFactory, EncoderOptions, NullableEncoder, make_encoder};
use datafusion::arrow::record_batch::RecordBatch;
use serde_json::{Map, Value};

use super::{Decoded, FormatError, FormatOptions, decode_isolating, textual_columns};

mod flat;

pub fn decode(schema: &SchemaRef, options: &FormatOptions, payloads: &[&[u8]]) -> Result<Decoded, FormatError> {
    let unwrapped = !options.wrap_single_value && schema.fields().len() == 1;
    if !unwrapped && let Some(batch) = flat::decode(schema, payloads) {
        return Ok(Decoded::rows_only(batch));
    }
    decode_general(schema, options, payloads)
}

/// Checks that where the fast path takes `payloads`, it reads what the general path reads
/// (for `eddy fuzz json`).
pub fn check_fast_path(schema: &SchemaRef, payloads: &[&[u8]]) -> Result<(), String> {
    let Some(fast) = flat::decode(schema, payloads) else { return Ok(()) };
    let general = decode_general(schema, &FormatOptions::default(), payloads).map_err(|e| e.0)?;
    if !general.errors.is_empty() {
        return Err(format!("the fast path took records the general path refuses: {:?}", general.errors));
    }
    if fast != general.batch {
        return Err(format!("the fast path read {fast:?} where the general path read {:?}", general.batch));
    }
    Ok(())
}

/// Any schema, any payloads: keys respelled, then arrow-json's decoder.
fn decode_general(schema: &SchemaRef, options: &FormatOptions, payloads: &[&[u8]]) -> Result<Decoded, FormatError> {
    // Each payload becomes one line of JSON with the schema's spelling of every struct key,
    // which arrow-json's tape decoder then reads in one go.
    // All lines go into one buffer (newline-terminated); `lines` holds each one's bounds.
    let mut text: Vec<u8> = Vec::with_capacity(payloads.iter().map(|p| p.len() + 2).sum());
    let mut lines: Vec<std::ops::Range<usize>> = Vec::with_capacity(payloads.len());
    let mut row_index: Vec<usize> = Vec::with_capacity(payloads.len());
    let mut errors: Vec<(usize, String)> = Vec::new();
    let unwrapped = !options.wrap_single_value && schema.fields().len() == 1;
    // BYTES need base64 turned into hex, which only the slow path does.
    let fast = !schema.fields().iter().any(|f| has_binary(f.data_type()));
    for (i, payload) in payloads.iter().enumerate() {
        let start = text.len();
        let canonical = fast
            && if unwrapped {
                text.push(b'{');
                push_key(&mut text, schema.field(0).name());
                let copied = canonical_value(payload, schema.field(0).data_type(), &mut text).is_some();
                text.push(b'}');
                copied
            } else {
                canonical_object(payload, schema.fields(), &mut text).is_some()
            };
        if !canonical {
            text.truncate(start);
            match renamed_line(schema, unwrapped, payload) {
                Ok(bytes) => text.extend_from_slice(&bytes),
                Err(reason) => {
                    errors.push((i, reason));
                    continue;
                }
            }
        }
        text.push(b'\n');
        lines.push(start..text.len());
        row_index.push(i);
    }
    let decode_many = |rows: &[std::ops::Range<usize>]| -> Result<RecordBatch, String> {
        let mut decoder = ReaderBuilder::new(schema.clone())
            .with_coerce_primitive(true)
            .with_batch_size(rows.len().max(1))
            .build_decoder()
            .map_err(|e| e.to_string())?;
        // Consecutive lines are one slice of the buffer (all of them, the first time).
        let bytes = match (rows.first(), rows.last()) {
            (Some(first), Some(last)) => &text[first.start..last.end],
            _ => &[][..],
        };
        super::feed(bytes, |chunk| decoder.decode(chunk).map_err(|e| e.to_string()))?;
        Ok(decoder.flush().map_err(|e| e.to_string())?.unwrap_or_else(|| RecordBatch::new_empty(schema.clone())))
    };
    // Decode the lines, isolating any that arrow-json refuses (a type mismatch).
    let decoded = decode_isolating(schema, &lines, decode_many)?;
    errors.extend(decoded.errors.into_iter().map(|(j, reason)| (row_index[j], reason)));
    errors.sort_by_key(|(i, _)| *i);
    Ok(Decoded { batch: decoded.batch, errors, schema_ids: None })
}

/// The slow path: parse into a `serde_json::Value`, rename by the schema, print again.
fn renamed_line(schema: &SchemaRef, unwrapped: bool, payload: &[u8]) -> Result<Vec<u8>, String> {
    let value: Value = serde_json::from_slice(payload).map_err(|e| format!("invalid JSON: {e}"))?;
    let object = if unwrapped {
        Map::from_iter([(schema.field(0).name().clone(), value)])
    } else {
        match value {
            Value::Object(object) => object,
            other => return Err(format!("expected a JSON object, found {}", kind(&other))),
        }
    };
    let renamed = rename_struct(object, schema.fields())?;
    serde_json::to_vec(&Value::Object(renamed)).map_err(|e| e.to_string())
}

fn has_binary(data_type: &DataType) -> bool {
    match data_type {
        DataType::Binary => true,
        DataType::List(item) => has_binary(item.data_type()),
        DataType::Struct(fields) => fields.iter().any(|f| has_binary(f.data_type())),
        DataType::Map(entries, _) => has_binary(entries.data_type()),
        _ => false,
    }
}

fn push_key(out: &mut Vec<u8>, name: &str) {
    if name.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
    } else {
        // A name that needs escaping is printed as JSON prints strings.
        out.extend_from_slice(serde_json::to_string(name).unwrap_or_default().as_bytes());
        out.push(b':');
    }
}

/// The fast path: copies the JSON object in `bytes` to `out` with its keys spelled as the
/// struct's fields (case-insensitively; an exact match wins), recursing into struct-typed
/// values and dropping keys that match no field, without building any value. `None` when it
/// cannot (not an object, an escaped key, a list or map of structs), for the slow path.
fn canonical_object(bytes: &[u8], fields: &Fields, out: &mut Vec<u8>) -> Option<()> {
    let mut at = skip_space(bytes, 0);
    if bytes.get(at) != Some(&b'{') {
        return None;
    }
    at += 1;
    out.push(b'{');
    let mut first = true;
    loop {
        at = skip_space(bytes, at);
        match bytes.get(at)? {
            b'}' => {
                out.push(b'}');
                return (skip_space(bytes, at + 1) == bytes.len()).then_some(());
            }
            b',' if !first => at = skip_space(bytes, at + 1),
            _ if first => {}
            _ => return None,
        }
        first = false;
        if bytes.get(at)? != &b'"' {
            return None;
        }
        let key_end = at + 1 + bytes[at + 1..].iter().position(|b| *b == b'"' || *b == b'\\')?;
        if bytes[key_end] != b'"' {
            return None; // an escaped key: let serde_json read it
        }
        let key = &bytes[at + 1..key_end];
        at = skip_space(bytes, key_end + 1);
        if bytes.get(at)? != &b':' {
            return None;
        }
        let value_start = skip_space(bytes, at + 1);
        let value_end = skip_value(bytes, value_start)?;
        at = value_end;
        let Some(field) = field_for(fields, key).map(|i| &fields[i]) else { continue };
        if out.last() != Some(&b'{') {
            out.push(b',');
        }
        push_key(out, field.name());
        canonical_value(&bytes[value_start..value_end], field.data_type(), out)?;
    }
}

/// Copies one JSON value of type `data_type` to `out`, struct keys respelled.
fn canonical_value(value: &[u8], data_type: &DataType, out: &mut Vec<u8>) -> Option<()> {
    let first = value.get(skip_space(value, 0)).copied();
    match data_type {
        DataType::Struct(inner) if first == Some(b'{') => canonical_object(value, inner, out),
        // An object or array read as a STRING is its JSON text, compact (ksqlDB's rule).
        DataType::Utf8 if matches!(first, Some(b'{' | b'[')) => {
            let text = compact_json(value)?;
            out.extend_from_slice(serde_json::to_string(&text).ok()?.as_bytes());
            Some(())
        }
        DataType::List(item) if matches!(item.data_type(), DataType::Struct(_) | DataType::Map(..)) => None,
        DataType::Map(entries, _)
            if matches!(entries.data_type(), DataType::Struct(kv) if kv.len() == 2
                && matches!(kv[1].data_type(), DataType::Struct(_) | DataType::List(_) | DataType::Map(..))) =>
        {
            None
        }
        _ => {
            out.extend_from_slice(value);
            Some(())
        }
    }
}

/// JSON text without the whitespace between tokens, keys kept in their order; `None` when it
/// is not UTF-8.
fn compact_json(value: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(value.len());
    let mut at = 0;
    while at < value.len() {
        match value[at] {
            b'"' => {
                let end = skip_string(value, at)?;
                out.extend_from_slice(&value[at..end]);
                at = end;
            }
            b' ' | b'\t' | b'\n' | b'\r' => at += 1,
            byte => {
                out.push(byte);
                at += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// The field a JSON key names, as ksqlDB matches them: exactly, else case-insensitively.
fn field_for(fields: &Fields, key: &[u8]) -> Option<usize> {
    let names = || fields.iter().map(|f| f.name().as_bytes());
    names().position(|n| n == key).or_else(|| names().position(|n| n.eq_ignore_ascii_case(key)))
}

fn skip_space(bytes: &[u8], mut at: usize) -> usize {
    while at < bytes.len() && bytes[at].is_ascii_whitespace() {
        at += 1;
    }
    at
}

/// The end of the JSON value starting at `at` (strings, objects and arrays skipped whole).
fn skip_value(bytes: &[u8], at: usize) -> Option<usize> {
    match bytes.get(at)? {
        b'"' => skip_string(bytes, at),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = at;
            while i < bytes.len() {
                match bytes[i] {
                    b'"' => {
                        i = skip_string(bytes, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            None
        }
        _ => {
            let end = bytes[at..].iter().position(|b| matches!(b, b',' | b'}' | b']') || b.is_ascii_whitespace());
            let end = end.map_or(bytes.len(), |n| at + n);
            (end > at).then_some(end)
        }
    }
}

/// The end of the string starting at the quote at `at`.
fn skip_string(bytes: &[u8], at: usize) -> Option<usize> {
    let mut i = at + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// Renames the keys of a JSON object to the struct's field names (case-insensitively;
/// an exact match wins), recursing by type; keys that match no field are dropped.
fn rename_struct(object: Map<String, Value>, fields: &Fields) -> Result<Map<String, Value>, String> {
    let mut out = Map::with_capacity(fields.len());
    for (key, value) in object {
        if let Some(field) = field_for(fields, key.as_bytes()).map(|i| &fields[i]) {
            out.insert(field.name().clone(), rename_value(value, field.data_type())?);
        }
    }
    Ok(out)
}

/// Follows the schema into `value`: struct keys renamed, map keys kept, BYTES turned from
/// ksqlDB's base64 into the hex arrow-json reads.
fn rename_value(value: Value, data_type: &DataType) -> Result<Value, String> {
    Ok(match (value, data_type) {
        (Value::Object(object), DataType::Struct(fields)) => Value::Object(rename_struct(object, fields)?),
        (Value::Array(items), DataType::List(item)) => {
            Value::Array(items.into_iter().map(|v| rename_value(v, item.data_type())).collect::<Result<_, _>>()?)
        }
        (Value::Object(object), DataType::Map(entries, _)) => {
            let DataType::Struct(kv) = entries.data_type() else { return Ok(Value::Object(object)) };
            let value_type = kv.get(1).map(|f| f.data_type().clone()).unwrap_or(DataType::Null);
            Value::Object(
                object
                    .into_iter()
                    .map(|(k, v)| Ok((k, rename_value(v, &value_type)?)))
                    .collect::<Result<_, String>>()?,
            )
        }
        (value @ (Value::Object(_) | Value::Array(_)), DataType::Utf8) => Value::String(value.to_string()),
        (Value::String(text), DataType::Binary) => {
            let bytes = super::base64_decode(&text).ok_or_else(|| format!("'{text}' is not base64 (BYTES)"))?;
            Value::String(bytes.iter().map(|b| format!("{b:02x}")).collect())
        }
        (value, _) => value,
    })
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Each row of `batch` as one JSON object (or, for a single column not wrapped, its value):
/// arrow-json's encoders write every row straight into one buffer, and each record is a
/// view of its row's bytes.
pub fn encode(batch: &RecordBatch, options: &FormatOptions) -> Result<Vec<Option<Bytes>>, FormatError> {
    let textual = textual_columns(batch)?;
    let rows = textual.num_rows();
    let encoder_options =
        EncoderOptions::default().with_explicit_nulls(true).with_encoder_factory(Arc::new(DecimalEncoders));
    let mut text = Vec::with_capacity(estimated_bytes(&textual));
    let unwrapped = !options.wrap_single_value && textual.num_columns() == 1;
    let (field, array): (FieldRef, ArrayRef) = if unwrapped {
        (Arc::clone(&textual.schema().fields()[0]), Arc::clone(textual.column(0)))
    } else {
        let fields = textual.schema().fields().clone();
        (Arc::new(Field::new_struct("", fields, false)), Arc::new(StructArray::from(textual)))
    };
    let mut encoder = make_encoder(&field, array.as_ref(), &encoder_options)?;
    let mut ends = Vec::with_capacity(rows);
    for row in 0..rows {
        if encoder.is_null(row) {
            text.extend_from_slice(b"null");
        } else {
            encoder.encode(row, &mut text);
        }
        ends.push(text.len());
    }
    Ok(super::row_views(text, ends))
}

/// About how many bytes `batch`'s rows take as JSON objects: the buffer is made that big
/// at once (each time it would double, every byte so far is copied).
fn estimated_bytes(batch: &RecordBatch) -> usize {
    let rows = batch.num_rows();
    let values: usize = batch
        .columns()
        .iter()
        .map(|column| match column.data_type() {
            DataType::Utf8 => {
                let offsets = column.as_string::<i32>().offsets();
                let span = offsets.last().zip(offsets.first()).map_or(0, |(last, first)| last - first);
                span.max(0) as usize + 2 * rows
            }
            DataType::Boolean => 5 * rows,
            data_type if data_type.is_primitive() => 20 * rows,
            _ => 32 * rows,
        })
        .sum();
    let names: usize = batch.schema().fields().iter().map(|f| f.name().len() + 4).sum();
    values + rows * (names + 2)
}

/// Encoders of DECIMAL columns that write each value's digits straight into the output.
/// arrow-json formats a decimal through a `String` per value (its digits, then the digits
/// with the point put in), which took as long as the rest of a row; these write the same
/// text, and leave to it the values it would cut short (more digits than the precision)
/// and scales of zero or less.
#[derive(Debug)]
struct DecimalEncoders;

impl EncoderFactory for DecimalEncoders {
    fn make_default_encoder<'a>(
        &self,
        _field: &'a FieldRef,
        array: &'a dyn Array,
        _options: &'a EncoderOptions,
    ) -> Result<Option<NullableEncoder<'a>>, datafusion::arrow::error::ArrowError> {
        if let Some(doubles) = array.as_primitive_opt::<Float64Type>() {
            // arrow-json writes NaN and the infinities as null; ksqlDB (Jackson) as strings.
            if doubles.values().iter().all(|v| v.is_finite()) {
                return Ok(None);
            }
            return Ok(Some(NullableEncoder::new(Box::new(DoubleEncoder { doubles }), array.nulls().cloned())));
        }
        let Some(decimals) = array.as_primitive_opt::<Decimal128Type>() else { return Ok(None) };
        let (precision, scale) = (decimals.precision(), decimals.scale());
        if scale <= 0 {
            return Ok(None);
        }
        let encoder = DecimalEncoder { decimals, precision, scale: scale as u32, unit: 10u128.pow(scale as u32) };
        Ok(Some(NullableEncoder::new(Box::new(encoder), array.nulls().cloned())))
    }
}

/// DOUBLEs as arrow-json writes them, but NaN and ±Infinity as Jackson does: `"NaN"`,
/// `"Infinity"`, `"-Infinity"`.
struct DoubleEncoder<'a> {
    doubles: &'a PrimitiveArray<Float64Type>,
}

impl Encoder for DoubleEncoder<'_> {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        let value = self.doubles.value(idx);
        if value.is_nan() {
            out.extend_from_slice(b"\"NaN\"");
        } else if value.is_infinite() {
            out.extend_from_slice(if value > 0.0 { b"\"Infinity\"" } else { b"\"-Infinity\"" });
        } else {
            let mut buffer = [0u8; lexical_core::BUFFER_SIZE];
            out.extend_from_slice(lexical_core::write(value, &mut buffer));
        }
    }
}

struct DecimalEncoder<'a> {
    decimals: &'a PrimitiveArray<Decimal128Type>,
    precision: u8,
    /// Above zero.
    scale: u32,
    /// Ten to the scale: one in the last place's units.
    unit: u128,
}

impl Encoder for DecimalEncoder<'_> {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        let value = self.decimals.value(idx);
        let magnitude = value.unsigned_abs();
        // In 64 bits when both fit (almost always): 128-bit division is a slow library call.
        let (mut whole, mut fraction) = (itoa::Buffer::new(), itoa::Buffer::new());
        let (digits, whole, fraction) = match (u64::try_from(magnitude), u64::try_from(self.unit)) {
            (Ok(m), Ok(unit)) => (m.checked_ilog10(), whole.format(m / unit), fraction.format(m % unit)),
            _ => (
                magnitude.checked_ilog10(),
                whole.format(magnitude / self.unit),
                fraction.format(magnitude % self.unit),
            ),
        };
        if digits.map_or(1, |log| log + 1) > u32::from(self.precision) {
            // arrow-json cuts such a value to the precision's digits: its own text.
            out.extend_from_slice(Decimal128Type::format_decimal(value, self.precision, self.scale as i8).as_bytes());
            return;
        }
        if value < 0 {
            out.push(b'-');
        }
        out.extend_from_slice(whole.as_bytes());
        out.push(b'.');
        let fraction = fraction.as_bytes();
        out.resize(out.len() + self.scale as usize - fraction.len(), b'0');
        out.extend_from_slice(fraction);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{
        BooleanArray, Decimal128Array, Float64Array, Int32Array, Int64Array, ListArray, StringArray,
    };
    use datafusion::arrow::datatypes::{Int32Type, Schema};
    use datafusion::arrow::json::writer::{LineDelimited, WriterBuilder};

    /// The text arrow-json writes for `batch`, with or without the decimal encoders.
    fn written(batch: &RecordBatch, ours: bool) -> String {
        let mut builder = WriterBuilder::new().with_explicit_nulls(true);
        if ours {
            builder = builder.with_encoder_factory(Arc::new(DecimalEncoders));
        }
        let mut writer = builder.build::<_, LineDelimited>(Vec::new());
        writer.write(batch).unwrap();
        writer.finish().unwrap();
        String::from_utf8(writer.into_inner()).unwrap()
    }

    #[test]
    fn decimals_are_written_as_arrow_json_writes_them() {
        let mut values: Vec<Option<i128>> = vec![None, Some(0), Some(i128::MAX), Some(i128::MIN), Some(-1), Some(1)];
        // Powers of ten and their neighbours, both signs; and a spread of other values.
        for exponent in 0..38 {
            let power = 10i128.pow(exponent);
            values.extend([power - 1, power, power + 1, -power + 1, -power, -power - 1].map(Some));
        }
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push(Some((x as i64 as i128) >> (x % 60)));
        }
        for (precision, scale) in [(1, 1), (3, 3), (10, 2), (12, 4), (18, 1), (38, 10), (38, 37), (5, 0), (7, -2)] {
            let array = Decimal128Array::from(values.clone()).with_precision_and_scale(precision, scale).unwrap();
            let schema = Arc::new(Schema::new(vec![Field::new("D", DataType::Decimal128(precision, scale), true)]));
            let options = EncoderOptions::default();
            let taken = DecimalEncoders.make_default_encoder(schema.fields().first().unwrap(), &array, &options);
            assert_eq!(taken.unwrap().is_some(), scale > 0);
            let batch = RecordBatch::try_new(schema, vec![Arc::new(array)]).unwrap();
            assert_eq!(written(&batch, true), written(&batch, false), "DECIMAL({precision}, {scale})");
        }
    }

    #[test]
    fn rows_are_written_as_arrow_json_writes_them() {
        let n = 300;
        let pick = |i: usize, every: usize| !i.is_multiple_of(every);
        let strings: StringArray = (0..n)
            .map(|i| pick(i, 7).then(|| ["plain", "with \"quotes\"", "tab\t\u{1}", "ünï", ""][i % 5].repeat(i % 3)))
            .collect();
        let lists = ListArray::from_iter_primitive::<Int32Type, _, _>(
            (0..n).map(|i| pick(i, 5).then(|| (0..i % 4).map(|v| pick(v, 3).then_some(v as i32)).collect::<Vec<_>>())),
        );
        let inner = StructArray::from(vec![
            (
                Arc::new(Field::new("A", DataType::Int32, true)),
                Arc::new(Int32Array::from_iter((0..n).map(|i| pick(i, 2).then_some(i as i32)))) as ArrayRef,
            ),
            (Arc::new(Field::new("B", DataType::Utf8, true)), Arc::new(strings.clone()) as ArrayRef),
        ]);
        let columns: Vec<(&str, ArrayRef)> = vec![
            ("I", Arc::new(Int64Array::from_iter((0..n).map(|i| pick(i, 3).then_some(i as i64 * -7919))))),
            ("F", Arc::new(Float64Array::from_iter((0..n).map(|i| pick(i, 4).then_some(i as f64 / 7.0))))),
            ("S", Arc::new(strings)),
            ("BOOL", Arc::new(BooleanArray::from_iter((0..n).map(|i| pick(i, 6).then_some(i % 2 == 0))))),
            (
                "D",
                Arc::new(
                    Decimal128Array::from_iter((0..n).map(|i| pick(i, 8).then_some(i as i128 * 1_000_003 - 40_000)))
                        .with_precision_and_scale(12, 3)
                        .unwrap(),
                ),
            ),
            ("L", Arc::new(lists)),
            ("ST", Arc::new(inner)),
        ];
        let fields: Vec<Field> =
            columns.iter().map(|(name, column)| Field::new(*name, column.data_type().clone(), true)).collect();
        let batch =
            RecordBatch::try_new(Arc::new(Schema::new(fields)), columns.into_iter().map(|(_, c)| c).collect()).unwrap();
        let lines = |batch: &RecordBatch, options: &FormatOptions| -> Vec<String> {
            encode(batch, options)
                .unwrap()
                .into_iter()
                .map(|row| String::from_utf8(row.unwrap().to_vec()).unwrap())
                .collect()
        };
        let expected: Vec<String> = written(&batch, true).lines().map(str::to_owned).collect();
        assert_eq!(lines(&batch, &FormatOptions::default()), expected);
        // Sliced, and a single column unwrapped: its values alone.
        let sliced = batch.slice(17, 100);
        let expected: Vec<String> = written(&sliced, true).lines().map(str::to_owned).collect();
        assert_eq!(lines(&sliced, &FormatOptions::default()), expected);
        for column in 0..batch.num_columns() {
            let single = sliced.project(&[column]).unwrap();
            let name = single.schema().field(0).name().clone();
            let unwrapped: Vec<String> =
                written(&single, true).lines().map(|line| line[name.len() + 4..line.len() - 1].to_owned()).collect();
            let options = FormatOptions { wrap_single_value: false, ..FormatOptions::default() };
            assert_eq!(lines(&single, &options), unwrapped, "{name}");
            let wrapped = FormatOptions { wrap_single_value: true, ..FormatOptions::default() };
            assert_eq!(lines(&single, &wrapped).len(), 100);
        }
    }
}
