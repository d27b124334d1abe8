//! Formats: record keys and values as bytes, to and from Arrow, a batch at a time.
//!
//! A [`Format`] is looked up by name ([`Formats`]) when a source is created; it may give the
//! columns of a side declared without any (a schema registry's formats will), and makes the
//! [`Codec`] that serialises the columns of one side of a record (the key columns, or the
//! value columns). The built-in formats:
//! - `KAFKA`: Kafka's primitive serialisers, one column: INT (4 bytes big-endian), BIGINT
//!   (8), DOUBLE (IEEE-754, 8), STRING (UTF-8), BYTES (as is);
//! - `JSON`: an object whose field names match the columns case-insensitively (ksqlDB's
//!   rule); with `WRAP_SINGLE_VALUE=false`, a single column is the bare JSON value;
//! - `DELIMITED`: the columns in order, separated by a delimiter (`,` by default), an empty
//!   field being null;
//! - `NONE`: no columns, no bytes;
//! - `AVRO` ([`avro`]), `JSON_SR` ([`json_sr`]) and `PROTOBUF` ([`protobuf`]): Confluent's
//!   records, with a schema registry ([`Formats::with_registry`]); `PROTOBUF_NOSR`, Protocol
//!   Buffers without one.
//!
//! Decoding takes many payloads and returns one `RecordBatch` plus the payloads that did not
//! decode, each with its reason, so that one bad record costs its own row, not the batch.
//! Decoders are arrow-json's and arrow-csv's push decoders, and for JSON objects of flat
//! primitive columns a one-pass decoder of Eddy's own (`json::flat`, measured 4× faster;
//! it hands anything unusual to arrow-json); per-record work happens only when a batch
//! fails, to find the culprits.

pub mod avro;
pub(crate) mod confluent;
mod delimited;
pub mod json;
pub mod json_sr;
mod kafka;
pub mod protobuf;

use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::{Array, ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use futures::future::BoxFuture;

/// Why a format cannot be used as asked, or a batch cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FormatError(pub String);

/// A serialisation format: how one side of a record (its key or its value) becomes columns
/// and back. Formats are looked up by name in [`Formats`] when a source is created.
///
/// The contract:
/// - [`Format::infer_columns`] runs at CREATE, before the statement is checked, for a side
///   declared without columns: a format whose schemas live elsewhere (a schema registry)
///   returns them, and the statement is logged with them, so that replaying it needs no
///   lookup. It may wait on I/O; the built-in formats infer nothing.
/// - [`Format::codec`] checks that the format can hold a side's columns and returns the
///   codec for them, once per source. Codecs are synchronous and batch-at-a-time: they run
///   on the hot path.
/// - A codec's [`Decoded`] rows may carry the schema id each payload was written with
///   ([`Decoded::schema_ids`]), for formats that put one in each record.
pub trait Format: Send + Sync + std::fmt::Debug {
    /// The name in `KEY_FORMAT`/`VALUE_FORMAT`/`FORMAT`, in capitals.
    fn name(&self) -> &'static str;

    /// The codec for a side with columns `schema`, or why this format cannot hold them.
    fn codec(&self, schema: SchemaRef, options: FormatOptions) -> Result<Arc<dyn Codec>, FormatError>;

    /// The columns of a side declared without any (see the trait's contract); `None` when
    /// the format cannot tell.
    fn infer_columns<'a>(&'a self, _subject: &'a Subject) -> BoxFuture<'a, Result<Option<SchemaRef>, FormatError>> {
        Box::pin(std::future::ready(Ok(None)))
    }

    /// True for the format named `name` (any case).
    fn is(&self, name: &str) -> bool {
        self.name().eq_ignore_ascii_case(name)
    }
}

/// Which side of which topic a schema is asked for (a schema registry's subject is
/// `<topic>-key` or `<topic>-value`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub topic: String,
    pub key: bool,
    /// The schema named by `KEY_SCHEMA_ID`/`VALUE_SCHEMA_ID`, rather than the latest.
    pub schema_id: Option<u32>,
    /// The side is one value, not wrapped in a record (a key; `WRAP_SINGLE_VALUE=false`).
    pub unwrapped: bool,
    /// `KEY_SCHEMA_FULL_NAME`/`VALUE_SCHEMA_FULL_NAME`: which message of a PROTOBUF schema.
    pub full_name: Option<String>,
}

impl Subject {
    /// The side of `topic`, its latest schema.
    pub fn new(topic: impl Into<String>, key: bool) -> Subject {
        Subject { topic: topic.into(), key, schema_id: None, unwrapped: false, full_name: None }
    }

    /// The registry's name for it: `<topic>-key` or `<topic>-value`.
    pub fn name(&self) -> String {
        format!("{}-{}", self.topic, if self.key { "key" } else { "value" })
    }
}

/// Why a codec is made ready ([`Codec::prepare`]): for a source a statement declares, for a
/// query's sink (ksqlDB registers a sink's schema always, a source's only where the topic's
/// subject has none), or for a query started again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    Source,
    Sink,
    /// A query starting again (after a restart): the schema's id is looked up, nothing is
    /// registered.
    Restart,
}

/// A format, shared.
pub type FormatRef = Arc<dyn Format>;

/// Serialises the columns of one side of a record, a batch at a time.
pub trait Codec: Send + Sync + std::fmt::Debug {
    /// The columns, in order.
    fn schema(&self) -> &SchemaRef;

    /// Decodes payloads (not tombstones: the caller handles null values) into rows.
    fn decode(&self, payloads: &[&[u8]]) -> Result<Decoded, FormatError>;

    /// Encodes every row of `batch` (whose columns are this codec's, in order). A row whose
    /// encoding is no bytes at all (a null single KAFKA value, the NONE format) is `None`.
    fn encode(&self, batch: &RecordBatch) -> Result<Vec<Option<Bytes>>, FormatError>;

    /// Makes ready what the codec needs from outside, when a statement creates its source:
    /// a schema registry's formats register their schema. It may wait on I/O; the built-in
    /// formats need nothing.
    fn prepare<'a>(&'a self, _registration: Registration) -> BoxFuture<'a, Result<(), FormatError>> {
        Box::pin(std::future::ready(Ok(())))
    }

    /// Fetches ahead what decoding `payloads` will need from outside, waiting without
    /// holding a thread: a remote registry's schemas for ids not met before, which decoding
    /// then finds cached. The built-in formats need nothing (and read nothing of `payloads`).
    fn prefetch<'a>(&'a self, _payloads: &mut dyn Iterator<Item = &[u8]>) -> BoxFuture<'a, ()> {
        Box::pin(std::future::ready(()))
    }

    /// A codec for a query that reads only the columns marked in `used` (one mark per
    /// column of [`Codec::schema`]): it decodes those and leaves the others null, when the
    /// format can skip a value for less than reading it (AVRO, whose values carry their
    /// lengths). It refuses the records this codec refuses, but for text that is no UTF-8
    /// in a skipped value (which ksqlDB's Avro reader takes too, as replacement
    /// characters). `None` when the format cannot skip, or nothing would be skipped.
    fn reading_only(&self, _used: &[bool]) -> Option<Arc<dyn Codec>> {
        None
    }
}

/// The names of the built-in formats.
pub const KAFKA: &str = "KAFKA";
pub const JSON: &str = "JSON";
pub const DELIMITED: &str = "DELIMITED";
pub const NONE: &str = "NONE";
pub const AVRO: &str = "AVRO";
pub const JSON_SR: &str = "JSON_SR";
pub const PROTOBUF: &str = "PROTOBUF";
pub const PROTOBUF_NOSR: &str = "PROTOBUF_NOSR";

/// Whether format `name` keeps its schemas in a schema registry.
pub fn uses_registry(name: &str) -> bool {
    ["AVRO", "JSON_SR", "PROTOBUF"].iter().any(|f| f.eq_ignore_ascii_case(name))
}

/// The formats a session knows, by name: the built-in ones, and any registered.
#[derive(Debug, Clone)]
pub struct Formats {
    /// By name in capitals.
    by_name: std::collections::BTreeMap<String, FormatRef>,
    /// The schema registry the registry's formats use, if any.
    registry: Option<crate::registry::client::RegistryRef>,
}

impl Default for Formats {
    /// The built-in formats: KAFKA, JSON, DELIMITED and NONE.
    fn default() -> Self {
        let mut formats = Formats { by_name: Default::default(), registry: None };
        for builtin in [Builtin::Kafka, Builtin::Json, Builtin::Delimited, Builtin::None] {
            formats.register(Arc::new(builtin));
        }
        formats.register(Arc::new(protobuf::Protobuf::without_registry()));
        formats
    }
}

impl Formats {
    /// The built-in formats and those of a schema registry (AVRO, JSON_SR), over `registry`.
    pub fn with_registry(registry: crate::registry::client::RegistryRef) -> Formats {
        let mut formats = Formats::default();
        formats.register(Arc::new(avro::Avro::new(registry.clone())));
        formats.register(Arc::new(json_sr::JsonSr::new(registry.clone())));
        formats.register(Arc::new(protobuf::Protobuf::new(registry.clone())));
        formats.registry = Some(registry);
        formats
    }

    /// The schema registry the registry's formats use, if any.
    pub fn registry(&self) -> Option<&crate::registry::client::RegistryRef> {
        self.registry.as_ref()
    }

    /// Adds a format (replacing one of the same name).
    pub fn register(&mut self, format: FormatRef) {
        self.by_name.insert(format.name().to_ascii_uppercase(), format);
    }

    /// The format named `name` (any case).
    pub fn get(&self, name: &str) -> Result<FormatRef, FormatError> {
        let upper = name.to_ascii_uppercase();
        if let Some(format) = self.by_name.get(upper.as_str()) {
            return Ok(Arc::clone(format));
        }
        match upper.as_str() {
            "AVRO" | "JSON_SR" | "PROTOBUF" => {
                Err(FormatError(format!("format {upper} needs a schema registry, and this session has none")))
            }
            other => Err(FormatError(format!("Unknown format: {other}"))),
        }
    }
}

/// A built-in format by name (for Eddy's own topics: repartitioning, tests).
pub fn builtin(name: &str) -> FormatRef {
    Formats::default().get(name).unwrap_or_else(|_| Arc::new(Builtin::Json))
}

/// The formats built in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Builtin {
    /// Kafka's primitive serialisers: INT, BIGINT, DOUBLE, STRING.
    Kafka,
    Json,
    Delimited,
    /// No bytes at all (keyless streams).
    None,
}

impl Format for Builtin {
    fn name(&self) -> &'static str {
        match self {
            Builtin::Kafka => KAFKA,
            Builtin::Json => JSON,
            Builtin::Delimited => DELIMITED,
            Builtin::None => NONE,
        }
    }

    /// Checks that the format can hold `schema` (KAFKA: one column of a primitive type; NONE:
    /// no column).
    fn codec(&self, schema: SchemaRef, options: FormatOptions) -> Result<Arc<dyn Codec>, FormatError> {
        match self {
            Builtin::Kafka => kafka::check(&schema)?,
            Builtin::Delimited => delimited::check(&schema)?,
            Builtin::None if !schema.fields().is_empty() => {
                return Err(FormatError("The 'NONE' format can only be used when no columns are defined.".into()));
            }
            Builtin::Json if !options.wrap_single_value && schema.fields().len() != 1 => {
                return Err(FormatError("'WRAP_SINGLE_VALUE' is only valid for single-field value schemas".into()));
            }
            _ => {}
        }
        Ok(Arc::new(BuiltinCodec { format: *self, schema, options }))
    }
}

impl From<datafusion::arrow::error::ArrowError> for FormatError {
    fn from(e: datafusion::arrow::error::ArrowError) -> Self {
        FormatError(e.to_string())
    }
}

/// Format options from a source's WITH clause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatOptions {
    /// `WRAP_SINGLE_VALUE`: a single column is written as an object (true) or bare.
    pub wrap_single_value: bool,
    /// `VALUE_DELIMITER`/`KEY_DELIMITER` for DELIMITED.
    pub delimiter: u8,
    /// The side's subject in a schema registry, for the formats that use one.
    pub subject: Option<Subject>,
    /// `KEY_SCHEMA_ID`/`VALUE_SCHEMA_ID`: the registered schema to write with.
    pub schema_id: Option<u32>,
    /// `KEY_SCHEMA_FULL_NAME`/`VALUE_SCHEMA_FULL_NAME`: the name of the schema generated
    /// (AVRO), or of the message to use (PROTOBUF).
    pub full_name: Option<String>,
    /// `*_PROTOBUF_NULLABLE_REPRESENTATION`: how a generated PROTOBUF schema holds nulls.
    pub nullable: Option<protobuf::Nullable>,
}

impl Default for FormatOptions {
    fn default() -> Self {
        FormatOptions {
            wrap_single_value: true,
            delimiter: b',',
            subject: None,
            schema_id: None,
            full_name: None,
            nullable: None,
        }
    }
}

impl FormatOptions {
    /// Parses a delimiter as ksqlDB does: one character, or `SPACE` / `TAB` (in capitals); a
    /// blank one and anything else are refused with ksqlDB's messages.
    pub fn parse_delimiter(text: &str) -> Result<u8, FormatError> {
        match text {
            _ if text.trim().is_empty() => Err(FormatError(
                "Delimiter cannot be empty, if you meant to have a tab or space for delimiter, please use the special \
                 values 'TAB' or 'SPACE'\nExample valid value: ';'"
                    .into(),
            )),
            "SPACE" => Ok(b' '),
            "TAB" => Ok(b'\t'),
            _ if text.len() == 1 => Ok(text.as_bytes()[0]),
            _ if text.chars().count() == 1 => {
                Err(FormatError(format!("Invalid delimiter value: '{text}'. Eddy's delimiters are ASCII characters")))
            }
            _ => Err(FormatError(format!(
                "Invalid delimiter value: '{text}'. Delimiter must be a single character or TAB,SPACE\nExample valid \
                 value: ';'"
            ))),
        }
    }
}

/// The decoded rows of a batch of payloads.
#[derive(Debug)]
pub struct Decoded {
    /// One row per payload that decoded, in input order.
    pub batch: RecordBatch,
    /// For each payload that did not decode: its index in the input, and why.
    pub errors: Vec<(usize, String)>,
    /// Per row, the id of the schema its payload was written with, for formats whose
    /// records carry one (a schema registry's); `None` otherwise.
    pub schema_ids: Option<Vec<u32>>,
}

impl Decoded {
    /// Rows that all decoded, without schema ids.
    pub fn rows_only(batch: RecordBatch) -> Decoded {
        Decoded { batch, errors: Vec::new(), schema_ids: None }
    }

    /// The indexes of the payloads that became rows (the input minus the errors).
    pub fn rows(&self, payloads: usize) -> Vec<usize> {
        let mut bad = self.errors.iter().map(|(i, _)| *i).peekable();
        (0..payloads)
            .filter(|i| {
                if bad.peek() == Some(i) {
                    bad.next();
                    false
                } else {
                    true
                }
            })
            .collect()
    }
}

/// A built-in format's codec.
#[derive(Debug, Clone)]
struct BuiltinCodec {
    format: Builtin,
    schema: SchemaRef,
    options: FormatOptions,
}

impl Codec for BuiltinCodec {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn decode(&self, payloads: &[&[u8]]) -> Result<Decoded, FormatError> {
        match self.format {
            Builtin::Kafka => kafka::decode(&self.schema, payloads),
            Builtin::Json => json::decode(&self.schema, &self.options, payloads),
            Builtin::Delimited => delimited::decode(&self.schema, &self.options, payloads),
            Builtin::None => Ok(Decoded::rows_only(rows_without_columns(&self.schema, payloads.len())?)),
        }
    }

    fn encode(&self, batch: &RecordBatch) -> Result<Vec<Option<Bytes>>, FormatError> {
        if batch.num_columns() != self.schema.fields().len() {
            return Err(FormatError(format!(
                "expected {} columns to encode, got {}",
                self.schema.fields().len(),
                batch.num_columns()
            )));
        }
        if self.schema.fields().is_empty() {
            // No columns (a keyless stream's key): no bytes at all, whatever the format.
            return Ok(vec![None; batch.num_rows()]);
        }
        match self.format {
            Builtin::Kafka => kafka::encode(batch),
            Builtin::Json => json::encode(batch, &self.options),
            Builtin::Delimited => delimited::encode(batch, &self.options),
            Builtin::None => Ok(vec![None; batch.num_rows()]),
        }
    }
}

/// `rows` rows of a schema with no columns (a keyless source's key side, the NONE format).
fn rows_without_columns(schema: &SchemaRef, rows: usize) -> Result<RecordBatch, FormatError> {
    let options = datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(rows));
    Ok(RecordBatch::try_new_with_options(schema.clone(), Vec::new(), &options)?)
}

/// Arrow types as ksqlDB writes them in text formats: timestamps, dates and times as
/// numbers, bytes as base64; nested types are kept as they are.
fn textual_columns(batch: &RecordBatch) -> Result<RecordBatch, FormatError> {
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        let column = textual(column)?;
        fields.push(field.as_ref().clone().with_data_type(column.data_type().clone()));
        columns.push(column);
    }
    let schema = std::sync::Arc::new(datafusion::arrow::datatypes::Schema::new(fields));
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// One column as the text formats write it, nested values included (a list of BYTES is a
/// list of base64 strings).
fn textual(column: &ArrayRef) -> Result<ArrayRef, FormatError> {
    use datafusion::arrow::array::{AsArray, ListArray, StructArray};
    use datafusion::arrow::compute::cast;
    use datafusion::arrow::datatypes::Field;
    Ok(match column.data_type() {
        DataType::Timestamp(..) => cast(column, &DataType::Int64)?,
        DataType::Date32 | DataType::Time32(_) => cast(column, &DataType::Int32)?,
        DataType::Binary => base64_column(column)?,
        DataType::List(item) if needs_text(item.data_type()) => {
            let list = column.as_list::<i32>();
            let values = textual(list.values())?;
            let item = std::sync::Arc::new(Field::new(item.name(), values.data_type().clone(), true));
            std::sync::Arc::new(ListArray::try_new(item, list.offsets().clone(), values, list.nulls().cloned())?)
        }
        DataType::Struct(fields) if fields.iter().any(|f| needs_text(f.data_type())) => {
            let parts = column.as_struct();
            let columns = parts.columns().iter().map(textual).collect::<Result<Vec<_>, _>>()?;
            let fields: Vec<Field> = fields
                .iter()
                .zip(&columns)
                .map(|(f, c)| f.as_ref().clone().with_data_type(c.data_type().clone()))
                .collect();
            std::sync::Arc::new(StructArray::try_new(fields.into(), columns, parts.nulls().cloned())?)
        }
        _ => column.clone(),
    })
}

fn needs_text(data_type: &DataType) -> bool {
    match data_type {
        DataType::Timestamp(..) | DataType::Date32 | DataType::Time32(_) | DataType::Binary => true,
        DataType::List(item) => needs_text(item.data_type()),
        DataType::Struct(fields) => fields.iter().any(|f| needs_text(f.data_type())),
        _ => false,
    }
}

fn base64_column(column: &ArrayRef) -> Result<ArrayRef, FormatError> {
    use datafusion::arrow::array::{BinaryArray, StringBuilder};
    let binary =
        column.as_any().downcast_ref::<BinaryArray>().ok_or_else(|| FormatError("expected a BYTES column".into()))?;
    let mut out = StringBuilder::with_capacity(binary.len(), binary.value_data().len() * 4 / 3 + 4);
    for value in binary.iter() {
        match value {
            Some(bytes) => out.append_value(base64_encode(bytes)),
            None => out.append_null(),
        }
    }
    Ok(std::sync::Arc::new(out.finish()))
}

/// A DOUBLE as Java's `Double.toString` writes it, which is how ksqlDB writes DOUBLEs as text:
/// `2.5`, `100.0`, `1.0E7`, `1.0E-4`, `4.9E-324`, `NaN`, `Infinity`. Between 10⁻³ and 10⁷ the
/// digits are plain, else scientific; the digits are the fewest that read back as the same
/// double, but never fewer than two where two are closer (Java's rule since JDK 19).
pub fn java_double(value: f64) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if value == 0.0 {
        return if value.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    let magnitude = value.abs();
    if (1e-3..1e7).contains(&magnitude) {
        let plain = value.to_string();
        return if plain.contains('.') { plain } else { format!("{plain}.0") };
    }
    let mut scientific = format!("{value:e}");
    if !scientific.split('e').next().unwrap_or_default().contains('.') {
        // One significant digit: two are used when the closest two-digit decimal reads back.
        let two = format!("{value:.1e}");
        scientific = if two.parse::<f64>() == Ok(value) { two } else { scientific.replacen('e', ".0e", 1) };
    }
    scientific.replacen('e', "E", 1)
}

/// DOUBLE columns (at the top level) as Java's text, for the formats that write text.
fn java_doubles(batch: RecordBatch) -> Result<RecordBatch, FormatError> {
    use datafusion::arrow::array::{AsArray, StringArray};
    use datafusion::arrow::datatypes::Float64Type;
    if !batch.schema().fields().iter().any(|f| f.data_type() == &DataType::Float64) {
        return Ok(batch);
    }
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if let Some(doubles) = column.as_primitive_opt::<Float64Type>() {
            let text: StringArray = doubles.iter().map(|v| v.map(java_double)).collect();
            fields.push(field.as_ref().clone().with_data_type(DataType::Utf8));
            columns.push(std::sync::Arc::new(text));
        } else {
            fields.push(field.as_ref().clone());
            columns.push(column.clone());
        }
    }
    let schema = std::sync::Arc::new(datafusion::arrow::datatypes::Schema::new(fields));
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// The rows encoded one after another in `text`, row `i` ending at `ends[i]`, each as a view
/// of the one buffer (no allocation or copy per row).
fn row_views(text: Vec<u8>, ends: Vec<usize>) -> Vec<Option<Bytes>> {
    let text = Bytes::from(text);
    let mut start = 0;
    ends.into_iter()
        .map(|end| {
            let row = text.slice(start..end);
            start = end;
            Some(row)
        })
        .collect()
}

/// Base64 as Eddy reads and writes it (the `base64` crate): the standard alphabet (RFC 4648),
/// written with padding, read with or without it, and the unused bits of a last digit not
/// checked, as `java.util.Base64`'s basic decoder reads it.
pub const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Standard base64 with padding, as ksqlDB writes BYTES in JSON and DELIMITED.
pub fn base64_encode(bytes: &[u8]) -> String {
    base64::Engine::encode(&BASE64, bytes)
}

/// Decodes standard base64 (padding optional); `None` if it is not base64.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    base64::Engine::decode(&BASE64, text).ok()
}

/// Decodes `items` with `decode_many` (which fails as a whole on any bad item); on failure,
/// decodes one item at a time to keep the good ones and name the bad ones.
/// Hands `bytes` to a push decoder (arrow-json's or arrow-csv's `decode`) until it has
/// taken them all or takes no more.
fn feed(bytes: &[u8], mut decode: impl FnMut(&[u8]) -> Result<usize, String>) -> Result<(), String> {
    let mut offset = 0;
    while offset < bytes.len() {
        let read = decode(&bytes[offset..])?;
        if read == 0 {
            break;
        }
        offset += read;
    }
    Ok(())
}

/// Decodes `items` in one go; when that fails, one by one, so that a bad item fails alone.
/// A decoder that panics on an item (arrow's parsers overflow on some numbers in debug
/// builds) fails that item the same way: hostile input never takes a query down.
fn decode_isolating<T>(
    schema: &SchemaRef,
    items: &[T],
    decode_many: impl Fn(&[T]) -> Result<RecordBatch, String>,
) -> Result<Decoded, FormatError> {
    let decode_many = |items: &[T]| -> Result<RecordBatch, String> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decode_many(items))).unwrap_or_else(|panic| {
            Err(format!("the decoder failed on it ({})", crate::error::panic_message(panic.as_ref())))
        })
    };
    if let Ok(batch) = decode_many(items)
        && batch.num_rows() == items.len()
    {
        return Ok(Decoded::rows_only(batch));
    }
    let mut batches = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match decode_many(std::slice::from_ref(item)) {
            Ok(batch) if batch.num_rows() == 1 => batches.push(batch),
            Ok(batch) => errors.push((i, format!("expected one record, decoded {}", batch.num_rows()))),
            Err(reason) => errors.push((i, reason)),
        }
    }
    let batch = datafusion::arrow::compute::concat_batches(schema, &batches)?;
    Ok(Decoded { batch, errors, schema_ids: None })
}

#[cfg(test)]
mod tests;
