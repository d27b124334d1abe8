//! `PROTOBUF` and `PROTOBUF_NOSR`: records as Protocol Buffers messages.
//!
//! `PROTOBUF` keeps its schemas (`.proto` text) in a schema registry and frames records as
//! Confluent's serializer does: a zero magic byte, the schema's 4-byte id, then the message
//! indexes (which message of the file: a zig-zag varint count and the indexes, a single `0`
//! for the first message), then the message. `PROTOBUF_NOSR` has no registry and no framing:
//! the schema is the columns'.
//!
//! Schemas are compiled at runtime with `protox` and records read and written as
//! `prost-reflect`'s dynamic messages. Between messages and Arrow, values go through the
//! `JSON` format's codec (a message is turned into the JSON ksqlDB would write for its columns,
//! and back): simple and exact, but not the fastest path; a direct decoder to Arrow is work
//! left for later.
//!
//! ksqlDB's semantics: a key and a value are each one message whose fields are the columns
//! (a single value cannot be unwrapped); proto3 fields have no null, so a null column is
//! written as the field's default and read back so (`0`, `""`, an empty list), unless the
//! columns' schema is generated with `*_PROTOBUF_NULLABLE_REPRESENTATION` `OPTIONAL` (proto3
//! `optional` fields) or `WRAPPER` (`google.protobuf` wrappers). Reading unwraps wrappers;
//! `google.protobuf.Timestamp`, `google.type.Date`, `google.type.TimeOfDay` and
//! `confluent.type.Decimal` are TIMESTAMP, DATE, TIME and DECIMAL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::{BufMut, Bytes, BytesMut};
use datafusion::arrow::array::Array;
use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use futures::future::BoxFuture;
use prost::Message as _;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, ReflectMessage, Value as Proto,
};
use serde_json::{Map, Number, Value};

use super::confluent::{
    Writer, decimal_bytes, decimal_from_bytes, decimal_text, decode_bodies, frame, schema_to_infer, unframe, unscaled,
};
use super::{Codec, Decoded, Format, FormatError, FormatOptions, Registration, Subject};
use crate::registry::client::RegistryRef;
use crate::registry::{self, Schema as RegisteredSchema, SchemaType};

/// The `PROTOBUF` format (with a registry) or `PROTOBUF_NOSR` (without).
#[derive(Debug, Clone)]
pub struct Protobuf {
    registry: Option<RegistryRef>,
}

impl Protobuf {
    /// `PROTOBUF`, over `registry`.
    pub fn new(registry: RegistryRef) -> Protobuf {
        Protobuf { registry: Some(registry) }
    }

    /// `PROTOBUF_NOSR`.
    pub fn without_registry() -> Protobuf {
        Protobuf { registry: None }
    }
}

/// How a generated schema represents a column's null (`*_PROTOBUF_NULLABLE_REPRESENTATION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nullable {
    /// Plain proto3 fields: null is the default value.
    Default,
    /// proto3 `optional` fields.
    Optional,
    /// `google.protobuf` wrapper messages.
    Wrapper,
}

impl Nullable {
    pub fn parse(text: &str) -> Result<Nullable, FormatError> {
        match text.to_ascii_uppercase().as_str() {
            "OPTIONAL" => Ok(Nullable::Optional),
            "WRAPPER" => Ok(Nullable::Wrapper),
            _ => Err(FormatError(format!(
                "Invalid PROTOBUF_NULLABLE_REPRESENTATION: '{text}'; valid values are OPTIONAL and WRAPPER"
            ))),
        }
    }
}

impl Format for Protobuf {
    fn name(&self) -> &'static str {
        if self.registry.is_some() { super::PROTOBUF } else { super::PROTOBUF_NOSR }
    }

    fn codec(&self, schema: SchemaRef, options: FormatOptions) -> Result<Arc<dyn Codec>, FormatError> {
        let key = options.subject.as_ref().is_some_and(|s| s.key);
        if !options.wrap_single_value && !key {
            return Err(FormatError(format!(
                "Format '{}' does not support 'WRAP_SINGLE_VALUE' set to 'false'.",
                self.name()
            )));
        }
        let (written, pool, full_name) = match (options.schema_id, &self.registry) {
            (Some(id), Some(registry)) => {
                let registered = registry.schema_by_id(id).map_err(|e| FormatError(e.to_string()))?;
                if registered.schema_type != SchemaType::Protobuf {
                    return Err(FormatError(format!("schema {id} is {:?}, not PROTOBUF", registered.schema_type)));
                }
                let pool = compile_registered(registry.as_ref(), &registered)?;
                (registered, pool, options.full_name.clone())
            }
            _ => {
                let text = schema_of(&schema, options.nullable)?;
                let pool = compile(&text)?;
                (
                    RegisteredSchema { schema: text, schema_type: SchemaType::Protobuf, references: Vec::new() },
                    pool,
                    None,
                )
            }
        };
        let message = message_of(&pool, full_name.as_deref())?;
        // Every column must be a field the message can hold (a schema id's message may have more).
        let json_options = FormatOptions { wrap_single_value: true, delimiter: b',', ..FormatOptions::default() };
        let key = options.subject.as_ref().is_some_and(|s| s.key);
        let index = index_in_file(&message);
        Ok(Arc::new(ProtobufCodec {
            json: super::builtin(super::JSON).codec(schema.clone(), json_options)?,
            schema,
            key,
            writer: self.registry.clone().map(|r| Writer::new(r, options.subject.clone(), written, options.schema_id)),
            message,
            index,
            readers: Mutex::default(),
        }))
    }

    fn infer_columns<'a>(&'a self, subject: &'a Subject) -> BoxFuture<'a, Result<Option<SchemaRef>, FormatError>> {
        Box::pin(async move {
            let Some(registry) = &self.registry else { return Ok(None) };
            let Some(schema) = schema_to_infer(registry, subject, SchemaType::Protobuf).await? else { return Ok(None) };
            let pool = compile_registered(registry.as_ref(), &schema)?;
            let message = message_of(&pool, subject.full_name.as_deref()).map_err(|_| {
                FormatError(format!(
                    "Schema for message {} on topic '{}' does not exist in the Schema Registry.",
                    if subject.key { "keys" } else { "values" },
                    subject.topic
                ))
            })?;
            let upper = subject.schema_id.is_none();
            let fields = message
                .fields()
                .map(|f| Ok(Field::new(named(f.name(), upper), arrow_type(&f, upper)?, true)))
                .collect::<Result<Vec<_>, FormatError>>()?;
            Ok(Some(Arc::new(Schema::new(fields))))
        })
    }
}

fn named(name: &str, upper: bool) -> String {
    if upper { name.to_uppercase() } else { name.to_owned() }
}

/// A schema's `.proto` text compiled into descriptors.
pub(crate) fn compile(text: &str) -> Result<DescriptorPool, FormatError> {
    registry::protobuf::compile(text, Vec::new()).map_err(FormatError)
}

/// A registered schema compiled, with the schemas it refers to (other subjects' versions,
/// imported by their names), fetched from `registry`.
pub(crate) fn compile_registered(
    registry: &dyn crate::registry::client::SchemaRegistry,
    schema: &RegisteredSchema,
) -> Result<DescriptorPool, FormatError> {
    registry::protobuf::compile_registered(schema, |reference| registry.referenced(reference)).map_err(FormatError)
}

/// The message a side's records are: `full_name` (`*_SCHEMA_FULL_NAME`), else the schema's
/// first.
pub(crate) fn message_of(pool: &DescriptorPool, full_name: Option<&str>) -> Result<MessageDescriptor, FormatError> {
    let file =
        pool.get_file_by_name(registry::protobuf::SCHEMA_FILE).ok_or_else(|| FormatError("no schema file".into()))?;
    match full_name {
        Some(name) => pool
            .get_message_by_name(name)
            .or_else(|| file.messages().find(|m| m.name() == name))
            .ok_or_else(|| FormatError(format!("the schema has no message {name}"))),
        None => file.messages().next().ok_or_else(|| FormatError("the schema has no message".into())),
    }
}

/// ksqlDB's schema for columns: `message ConnectDefault1` with a field per column, nested
/// messages for STRUCTs (`ConnectDefault2`, …).
pub fn schema_of(columns: &Schema, nullable: Option<Nullable>) -> Result<String, FormatError> {
    let nullable = nullable.unwrap_or(Nullable::Default);
    let mut imports = std::collections::BTreeSet::new();
    let mut counter = 1;
    let body = message_text("ConnectDefault1", columns.fields(), nullable, &mut counter, &mut imports, 0)?;
    let mut text = String::from("syntax = \"proto3\";\n\n");
    for import in &imports {
        text.push_str(&format!("import \"{import}\";\n"));
    }
    if !imports.is_empty() {
        text.push('\n');
    }
    text.push_str(&body);
    Ok(text)
}

fn message_text(
    name: &str,
    fields: &Fields,
    nullable: Nullable,
    counter: &mut usize,
    imports: &mut std::collections::BTreeSet<&'static str>,
    depth: usize,
) -> Result<String, FormatError> {
    let indent = "  ".repeat(depth);
    let mut lines = Vec::new();
    let mut nested = Vec::new();
    for (i, field) in fields.iter().enumerate() {
        let number = i + 1;
        let (type_name, repeated) = match field.data_type() {
            DataType::List(item) => {
                (field_type(item.data_type(), Nullable::Default, counter, imports, &mut nested, depth)?, true)
            }
            other => (field_type(other, nullable, counter, imports, &mut nested, depth)?, false),
        };
        let label = match (repeated, nullable, field.data_type()) {
            (true, _, _) => "repeated ",
            (false, Nullable::Optional, data_type) if is_scalar(data_type) => "optional ",
            _ => "",
        };
        lines.push(format!("{indent}  {label}{type_name} {} = {number};", field.name()));
    }
    let mut text = format!("{indent}message {name} {{\n");
    for line in lines {
        text.push_str(&line);
        text.push('\n');
    }
    for message in nested {
        text.push('\n');
        text.push_str(&message);
    }
    text.push_str(&format!("{indent}}}\n"));
    Ok(text)
}

fn is_scalar(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Boolean | DataType::Int32 | DataType::Int64 | DataType::Float64 | DataType::Utf8 | DataType::Binary
    )
}

/// A column type's protobuf type, nested messages written to `nested`.
fn field_type(
    data_type: &DataType,
    nullable: Nullable,
    counter: &mut usize,
    imports: &mut std::collections::BTreeSet<&'static str>,
    nested: &mut Vec<String>,
    depth: usize,
) -> Result<String, FormatError> {
    let wrapper = nullable == Nullable::Wrapper;
    let scalar = |plain: &str, wrapped: &str, imports: &mut std::collections::BTreeSet<&'static str>| {
        if wrapper {
            imports.insert("google/protobuf/wrappers.proto");
            format!("google.protobuf.{wrapped}")
        } else {
            plain.to_owned()
        }
    };
    Ok(match data_type {
        DataType::Boolean => scalar("bool", "BoolValue", imports),
        DataType::Int8 | DataType::Int16 | DataType::Int32 => scalar("int32", "Int32Value", imports),
        DataType::Int64 => scalar("int64", "Int64Value", imports),
        DataType::Float32 | DataType::Float64 => scalar("double", "DoubleValue", imports),
        DataType::Utf8 => scalar("string", "StringValue", imports),
        DataType::Binary => scalar("bytes", "BytesValue", imports),
        DataType::Decimal128(..) => {
            imports.insert("confluent/type/decimal.proto");
            "confluent.type.Decimal".into()
        }
        DataType::Timestamp(..) => {
            imports.insert("google/protobuf/timestamp.proto");
            "google.protobuf.Timestamp".into()
        }
        DataType::Date32 => {
            imports.insert("google/type/date.proto");
            "google.type.Date".into()
        }
        DataType::Time32(_) => {
            imports.insert("google/type/timeofday.proto");
            "google.type.TimeOfDay".into()
        }
        DataType::Map(entries, _) => {
            let DataType::Struct(kv) = entries.data_type() else {
                return Err(FormatError(format!("unexpected map type {data_type}")));
            };
            if kv[0].data_type() != &DataType::Utf8 {
                return Err(FormatError("PROTOBUF format only supports MAP types with STRING keys".into()));
            }
            let value = field_type(kv[1].data_type(), Nullable::Default, counter, imports, nested, depth)?;
            format!("map<string, {value}>")
        }
        DataType::Struct(fields) => {
            *counter += 1;
            let name = format!("ConnectDefault{counter}");
            nested.push(message_text(&name, fields, nullable, counter, imports, depth + 1)?);
            name
        }
        DataType::List(_) => return Err(FormatError("PROTOBUF cannot hold an ARRAY of ARRAYs".into())),
        other => return Err(FormatError(format!("PROTOBUF cannot hold a column of type {other}"))),
    })
}

/// The column type of a message's field, as ksqlDB reads it.
fn arrow_type(field: &FieldDescriptor, upper: bool) -> Result<DataType, FormatError> {
    if field.is_map() {
        let Kind::Message(entry) = field.kind() else { return Err(FormatError("bad map field".into())) };
        let value = arrow_type(&entry.map_entry_value_field(), upper)?;
        let entries = Field::new(
            "entries",
            DataType::Struct(vec![Field::new("key", DataType::Utf8, false), Field::new("value", value, true)].into()),
            false,
        );
        return Ok(DataType::Map(Arc::new(entries), false));
    }
    if let Kind::Message(message) = field.kind()
        && message.full_name() == "confluent.type.Decimal"
    {
        return Ok(decimal_of(field));
    }
    let single = kind_type(&field.kind(), upper)?;
    Ok(if field.is_list() { DataType::List(Arc::new(Field::new("item", single, true))) } else { single })
}

/// A `confluent.type.Decimal` field's type: its precision and scale from the field's
/// `(confluent.field_meta)` params, else the widest.
fn decimal_of(field: &FieldDescriptor) -> DataType {
    let options = field.options();
    let params = field
        .parent_pool()
        .get_extension_by_name("confluent.field_meta")
        .filter(|meta| options.has_extension(meta))
        .and_then(|meta| match options.get_extension(&meta).as_ref() {
            Proto::Message(meta) => match meta.get_field_by_name("params").as_deref() {
                Some(Proto::Map(params)) => Some(params.clone()),
                _ => None,
            },
            _ => None,
        })
        .unwrap_or_default();
    let param = |name: &str| match params.get(&MapKey::String(name.into())) {
        Some(Proto::String(text)) => text.parse::<u8>().ok(),
        _ => None,
    };
    let precision = param("precision").unwrap_or(38).clamp(1, 38);
    let scale = param("scale").unwrap_or(0).min(precision);
    DataType::Decimal128(precision, scale as i8)
}

fn kind_type(kind: &Kind, upper: bool) -> Result<DataType, FormatError> {
    Ok(match kind {
        Kind::Bool => DataType::Boolean,
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => DataType::Int32,
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 | Kind::Uint32 | Kind::Fixed32 | Kind::Uint64 | Kind::Fixed64 => {
            DataType::Int64
        }
        Kind::Float | Kind::Double => DataType::Float64,
        Kind::String | Kind::Enum(_) => DataType::Utf8,
        Kind::Bytes => DataType::Binary,
        Kind::Message(message) => match message.full_name() {
            "google.protobuf.BoolValue" => DataType::Boolean,
            "google.protobuf.Int32Value" => DataType::Int32,
            "google.protobuf.Int64Value" | "google.protobuf.UInt32Value" | "google.protobuf.UInt64Value" => {
                DataType::Int64
            }
            "google.protobuf.FloatValue" | "google.protobuf.DoubleValue" => DataType::Float64,
            "google.protobuf.StringValue" => DataType::Utf8,
            "google.protobuf.BytesValue" => DataType::Binary,
            "google.protobuf.Timestamp" => DataType::Timestamp(TimeUnit::Millisecond, None),
            "google.type.Date" => DataType::Date32,
            "google.type.TimeOfDay" => DataType::Time32(TimeUnit::Millisecond),
            // Without the field's precision and scale at hand: the widest.
            "confluent.type.Decimal" => DataType::Decimal128(38, 10),
            _ => DataType::Struct(
                message
                    .fields()
                    .map(|f| Ok(Field::new(named(f.name(), upper), arrow_type(&f, upper)?, true)))
                    .collect::<Result<Vec<_>, FormatError>>()?
                    .into(),
            ),
        },
    })
}

/// One side's codec.
#[derive(Debug)]
struct ProtobufCodec {
    json: Arc<dyn Codec>,
    schema: SchemaRef,
    /// A key's codec (a key whose columns are all null is no key).
    key: bool,
    /// The schema written with and its id: `None` for PROTOBUF_NOSR.
    writer: Option<Writer>,
    /// The message written, and its index in its file.
    message: MessageDescriptor,
    index: usize,
    /// The schemas of the ids met, compiled.
    readers: Mutex<HashMap<u32, DescriptorPool>>,
}

impl ProtobufCodec {
    /// One payload as the JSON of its message, with the schema id it names (PROTOBUF).
    fn read(&self, payload: &[u8]) -> Result<(Option<u32>, Vec<u8>), String> {
        let Some(registry) = self.writer.as_ref().map(Writer::registry) else {
            let message = DynamicMessage::decode(self.message.clone(), payload).map_err(|e| e.to_string())?;
            return Ok((None, serde_json::to_vec(&json_of_message(&message)).map_err(|e| e.to_string())?));
        };
        let (id, rest) = unframe(payload, "PROTOBUF")?;
        let (indexes, body) = message_indexes(rest).ok_or("malformed message indexes")?;
        let mut readers = self.readers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let std::collections::hash_map::Entry::Vacant(vacant) = readers.entry(id) {
            let registered = registry.schema_by_id(id).map_err(|e| e.to_string())?;
            if registered.schema_type != SchemaType::Protobuf {
                return Err(format!("schema {id} is {:?}, not PROTOBUF", registered.schema_type));
            }
            vacant.insert(compile_registered(registry.as_ref(), &registered).map_err(|e| e.0)?);
        }
        let message = readers.get(&id).and_then(|pool| message_at(pool, &indexes)).ok_or("no such message")?;
        drop(readers);
        let decoded = DynamicMessage::decode(message, body).map_err(|e| e.to_string())?;
        Ok((Some(id), serde_json::to_vec(&json_of_message(&decoded)).map_err(|e| e.to_string())?))
    }
}

/// The message the indexes read by [`message_indexes`] name in the schema's file.
pub(crate) fn message_at(pool: &DescriptorPool, indexes: &[usize]) -> Option<MessageDescriptor> {
    let (first, nested) = indexes.split_first()?;
    let mut message = pool.get_file_by_name(registry::protobuf::SCHEMA_FILE)?.messages().nth(*first)?;
    for index in nested {
        let child = message.child_messages().nth(*index)?;
        message = child;
    }
    Some(message)
}

/// A top-level message's index in its file (0 for a nested one, which is not written).
pub(crate) fn index_in_file(message: &MessageDescriptor) -> usize {
    message.parent_file().messages().position(|m| m.full_name() == message.full_name()).unwrap_or(0)
}

/// Writes Confluent's message indexes for the top-level message `index`: a single `0` for the
/// first, else a count of one and the index (zig-zag varints).
pub(crate) fn write_message_index(index: usize, out: &mut impl BufMut) {
    if index == 0 {
        out.put_u8(0);
        return;
    }
    out.put_u8(2);
    let mut zigzag = (index as u64) << 1;
    while zigzag >= 0x80 {
        out.put_u8((zigzag as u8) | 0x80);
        zigzag >>= 7;
    }
    out.put_u8(zigzag as u8);
}

/// Confluent's message indexes: a zig-zag varint count then the indexes; a count of zero
/// is the first message. Returns them and the rest.
pub(crate) fn message_indexes(bytes: &[u8]) -> Option<(Vec<usize>, &[u8])> {
    let (count, mut rest) = zigzag(bytes)?;
    if count == 0 {
        return Some((vec![0], rest));
    }
    if count < 0 {
        return None;
    }
    let mut indexes = Vec::with_capacity(count.min(16) as usize);
    for _ in 0..count {
        let (index, after) = zigzag(rest)?;
        indexes.push(usize::try_from(index).ok()?);
        rest = after;
    }
    Some((indexes, rest))
}

fn zigzag(bytes: &[u8]) -> Option<(i64, &[u8])> {
    let mut value: u64 = 0;
    for (i, byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((((value >> 1) as i64) ^ -((value & 1) as i64), &bytes[i + 1..]));
        }
    }
    None
}

/// A message as the JSON ksqlDB writes for the columns it holds: unset plain fields are their
/// defaults, unset messages and optional fields null; wrappers unwrapped; times as numbers.
pub fn json_of_message(message: &DynamicMessage) -> Value {
    let mut object = Map::new();
    for field in message.descriptor().fields() {
        let present = message.has_field(&field);
        let value = if !present && field.supports_presence() && !field.is_list() && !field.is_map() {
            Value::Null
        } else {
            json_of_value(&message.get_field(&field), &field.kind())
        };
        object.insert(field.name().to_owned(), value);
    }
    Value::Object(object)
}

fn json_of_value(value: &Proto, kind: &Kind) -> Value {
    match value {
        Proto::Bool(b) => Value::Bool(*b),
        Proto::I32(i) => Value::from(*i),
        Proto::I64(i) => Value::from(*i),
        Proto::U32(i) => Value::from(*i),
        Proto::U64(i) => Value::from(*i),
        Proto::F32(f) => Number::from_f64(f64::from(*f)).map_or(Value::Null, Value::Number),
        Proto::F64(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Proto::String(s) => Value::String(s.clone()),
        Proto::Bytes(b) => Value::String(super::base64_encode(b)),
        Proto::EnumNumber(n) => match kind {
            Kind::Enum(e) => e.get_value(*n).map_or_else(|| Value::from(*n), |v| Value::String(v.name().to_owned())),
            _ => Value::from(*n),
        },
        Proto::List(items) => Value::Array(items.iter().map(|v| json_of_value(v, kind)).collect()),
        Proto::Map(entries) => {
            let value_kind = match kind {
                Kind::Message(entry) => entry.map_entry_value_field().kind(),
                other => other.clone(),
            };
            Value::Object(entries.iter().map(|(k, v)| (map_key(k), json_of_value(v, &value_kind))).collect())
        }
        Proto::Message(message) => json_of_known(message).unwrap_or_else(|| json_of_message(message)),
    }
}

fn map_key(key: &MapKey) -> String {
    match key {
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(i) => i.to_string(),
        MapKey::I64(i) => i.to_string(),
        MapKey::U32(i) => i.to_string(),
        MapKey::U64(i) => i.to_string(),
        MapKey::String(s) => s.clone(),
    }
}

/// The well-known messages ksqlDB reads as a value: wrappers, times, decimals.
fn json_of_known(message: &DynamicMessage) -> Option<Value> {
    let int = |name: &str| match message.get_field_by_name(name).as_deref() {
        Some(Proto::I32(i)) => i64::from(*i),
        Some(Proto::I64(i)) => *i,
        Some(Proto::U32(i)) => i64::from(*i),
        _ => 0,
    };
    Some(match message.descriptor().full_name() {
        name if name.starts_with("google.protobuf.") && name.ends_with("Value") => {
            let field = message.descriptor().get_field_by_name("value")?;
            json_of_value(&message.get_field(&field), &field.kind())
        }
        "google.protobuf.Timestamp" => Value::from(int("seconds") * 1000 + int("nanos") / 1_000_000),
        "google.type.TimeOfDay" => {
            Value::from(((int("hours") * 60 + int("minutes")) * 60 + int("seconds")) * 1000 + int("nanos") / 1_000_000)
        }
        "google.type.Date" => {
            let date = chrono::NaiveDate::from_ymd_opt(int("year") as i32, int("month") as u32, int("day") as u32)?;
            Value::from((date - chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?).num_days())
        }
        "confluent.type.Decimal" => {
            let bytes = match message.get_field_by_name("value").as_deref() {
                Some(Proto::Bytes(b)) => b.to_vec(),
                _ => Vec::new(),
            };
            let unscaled = decimal_from_bytes(&bytes)?;
            let text = decimal_text(unscaled, int("scale").max(0) as usize);
            serde_json::from_str(&text).ok()?
        }
        _ => return None,
    })
}

/// A JSON object as a message of `descriptor`: fields by name ignoring case, null fields
/// left unset.
pub fn message_of_json(descriptor: &MessageDescriptor, object: &Map<String, Value>) -> Result<DynamicMessage, String> {
    let mut message = DynamicMessage::new(descriptor.clone());
    for field in descriptor.fields() {
        let given = object
            .get(field.name())
            .or_else(|| object.iter().find(|(k, _)| k.eq_ignore_ascii_case(field.name())).map(|(_, v)| v));
        let Some(given) = given.filter(|v| !v.is_null()) else { continue };
        let value = if field.is_map() {
            let Kind::Message(entry) = field.kind() else { return Err("bad map field".into()) };
            let (key_field, value_field) = (entry.map_entry_key_field(), entry.map_entry_value_field());
            let entries = given.as_object().ok_or_else(|| format!("{} is not a map", field.name()))?;
            let mut map = HashMap::with_capacity(entries.len());
            for (k, v) in entries {
                if v.is_null() {
                    continue;
                }
                let key = match key_field.kind() {
                    Kind::String => MapKey::String(k.clone()),
                    Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => MapKey::I32(k.parse().map_err(|_| "bad map key")?),
                    Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => MapKey::I64(k.parse().map_err(|_| "bad map key")?),
                    Kind::Uint32 | Kind::Fixed32 => MapKey::U32(k.parse().map_err(|_| "bad map key")?),
                    Kind::Uint64 | Kind::Fixed64 => MapKey::U64(k.parse().map_err(|_| "bad map key")?),
                    Kind::Bool => MapKey::Bool(k == "true"),
                    _ => return Err("bad map key type".into()),
                };
                map.insert(key, proto_of(v, &value_field.kind())?);
            }
            Proto::Map(map)
        } else if field.is_list() {
            let items = given.as_array().ok_or_else(|| format!("{} is not a list", field.name()))?;
            // (A null item cannot be in a repeated field: it is its default.)
            Proto::List(
                items
                    .iter()
                    .map(|item| match item {
                        Value::Null => Ok(default_of(&field.kind())),
                        item => proto_of(item, &field.kind()),
                    })
                    .collect::<Result<_, _>>()?,
            )
        } else {
            proto_of(given, &field.kind())?
        };
        message.set_field(&field, value);
    }
    Ok(message)
}

fn default_of(kind: &Kind) -> Proto {
    match kind {
        Kind::Message(m) => Proto::Message(DynamicMessage::new(m.clone())),
        Kind::Enum(_) => Proto::EnumNumber(0),
        Kind::Bool => Proto::Bool(false),
        Kind::String => Proto::String(String::new()),
        Kind::Bytes => Proto::Bytes(Bytes::new()),
        Kind::Float => Proto::F32(0.0),
        Kind::Double => Proto::F64(0.0),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Proto::I32(0),
        Kind::Uint32 | Kind::Fixed32 => Proto::U32(0),
        Kind::Uint64 | Kind::Fixed64 => Proto::U64(0),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Proto::I64(0),
    }
}

/// One JSON value as a protobuf value of `kind`.
fn proto_of(value: &Value, kind: &Kind) -> Result<Proto, String> {
    let mismatch = || format!("{value} is not a {kind:?}");
    let int = || {
        value
            .as_i64()
            .or_else(|| value.as_f64().map(|f| f as i64))
            .or_else(|| value.as_str()?.parse().ok())
            .ok_or_else(mismatch)
    };
    let float = || value.as_f64().or_else(|| value.as_str()?.parse().ok()).ok_or_else(mismatch);
    Ok(match kind {
        Kind::Bool => Proto::Bool(value.as_bool().ok_or_else(mismatch)?),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Proto::I32(i32::try_from(int()?).map_err(|_| mismatch())?),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Proto::I64(int()?),
        Kind::Uint32 | Kind::Fixed32 => Proto::U32(u32::try_from(int()?).map_err(|_| mismatch())?),
        Kind::Uint64 | Kind::Fixed64 => Proto::U64(u64::try_from(int()?).map_err(|_| mismatch())?),
        Kind::Float => Proto::F32(float()? as f32),
        Kind::Double => Proto::F64(float()?),
        Kind::String => Proto::String(match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }),
        Kind::Bytes => Proto::Bytes(Bytes::from(value.as_str().and_then(super::base64_decode).ok_or_else(mismatch)?)),
        Kind::Enum(e) => match value {
            Value::String(name) => Proto::EnumNumber(e.get_value_by_name(name).ok_or_else(mismatch)?.number()),
            _ => Proto::EnumNumber(i32::try_from(int()?).map_err(|_| mismatch())?),
        },
        Kind::Message(descriptor) => Proto::Message(known_of_json(value, descriptor)?.map_or_else(
            || {
                let object = value.as_object().ok_or_else(mismatch)?;
                message_of_json(descriptor, object)
            },
            Ok,
        )?),
    })
}

/// A JSON value as one of the well-known messages (wrappers, times, decimals), if `descriptor`
/// is one.
fn known_of_json(value: &Value, descriptor: &MessageDescriptor) -> Result<Option<DynamicMessage>, String> {
    let mut message = DynamicMessage::new(descriptor.clone());
    // Times are numbers (milliseconds, days), or text as the JSON format writes them inside maps.
    let millis = || {
        value
            .as_i64()
            .or_else(|| {
                let text = value.as_str()?;
                let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
                if let Ok(at) = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f") {
                    return Some(at.and_utc().timestamp_millis());
                }
                if let Ok(time) = chrono::NaiveTime::parse_from_str(text, "%H:%M:%S%.f") {
                    return Some((time - chrono::NaiveTime::MIN).num_milliseconds());
                }
                chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok().map(|date| (date - epoch).num_days())
            })
            .ok_or_else(|| format!("{value} is not a time"))
    };
    match descriptor.full_name() {
        name if name.starts_with("google.protobuf.") && name.ends_with("Value") => {
            let field = descriptor.get_field_by_name("value").ok_or("no value field")?;
            message.set_field(&field, proto_of(value, &field.kind())?);
        }
        "google.protobuf.Timestamp" => {
            let ms = millis()?;
            message.set_field_by_name("seconds", Proto::I64(ms.div_euclid(1000)));
            message.set_field_by_name("nanos", Proto::I32((ms.rem_euclid(1000) * 1_000_000) as i32));
        }
        "google.type.TimeOfDay" => {
            let ms = millis()?;
            message.set_field_by_name("hours", Proto::I32((ms / 3_600_000) as i32));
            message.set_field_by_name("minutes", Proto::I32((ms / 60_000 % 60) as i32));
            message.set_field_by_name("seconds", Proto::I32((ms / 1000 % 60) as i32));
            message.set_field_by_name("nanos", Proto::I32((ms % 1000 * 1_000_000) as i32));
        }
        "google.type.Date" => {
            let days = millis()?;
            let date = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)
                .and_then(|epoch| epoch.checked_add_signed(chrono::TimeDelta::days(days)))
                .ok_or("date out of range")?;
            use chrono::Datelike;
            message.set_field_by_name("year", Proto::I32(date.year()));
            message.set_field_by_name("month", Proto::I32(date.month() as i32));
            message.set_field_by_name("day", Proto::I32(date.day() as i32));
        }
        "confluent.type.Decimal" => {
            let text = match value {
                Value::Number(n) => n.to_string(),
                Value::String(s) => s.clone(),
                _ => return Err(format!("{value} is not a decimal")),
            };
            // At the scale and precision the text has.
            let digits = text.trim_start_matches('-');
            let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
            let unscaled = unscaled(&text, fraction.len()).ok_or_else(|| format!("{value} is not a decimal"))?;
            message.set_field_by_name("value", Proto::Bytes(Bytes::from(decimal_bytes(unscaled))));
            message.set_field_by_name("precision", Proto::U32(whole.len() as u32 + fraction.len() as u32));
            message.set_field_by_name("scale", Proto::I32(fraction.len() as i32));
        }
        _ => return Ok(None),
    }
    Ok(Some(message))
}

impl Codec for ProtobufCodec {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn prefetch<'a>(&'a self, payloads: &mut dyn Iterator<Item = &[u8]>) -> BoxFuture<'a, ()> {
        match &self.writer {
            Some(writer) => super::confluent::prefetch(writer.registry(), payloads),
            None => Box::pin(std::future::ready(())),
        }
    }

    fn decode(&self, payloads: &[&[u8]]) -> Result<Decoded, FormatError> {
        if self.schema.fields().is_empty() {
            return self.json.decode(payloads);
        }
        let mut texts: Vec<Vec<u8>> = Vec::with_capacity(payloads.len());
        let mut positions = Vec::with_capacity(payloads.len());
        let mut ids = Vec::with_capacity(payloads.len());
        let mut errors = Vec::new();
        for (i, payload) in payloads.iter().enumerate() {
            match self.read(payload) {
                Ok((id, text)) => {
                    texts.push(text);
                    positions.push(i);
                    ids.extend(id);
                }
                Err(reason) => errors.push((i, reason)),
            }
        }
        let bodies: Vec<&[u8]> = texts.iter().map(Vec::as_slice).collect();
        let ids = self.writer.as_ref().map(|_| ids.as_slice());
        decode_bodies(self.json.as_ref(), &bodies, &positions, ids, errors)
    }

    fn encode(&self, batch: &datafusion::arrow::array::RecordBatch) -> Result<Vec<Option<Bytes>>, FormatError> {
        if self.schema.fields().is_empty() || batch.num_rows() == 0 {
            return self.json.encode(batch);
        }
        let header = match &self.writer {
            Some(writer) => Some(writer.id()?),
            None => None,
        };
        let rows = self.json.encode(batch)?;
        rows.into_iter()
            .enumerate()
            .map(|(i, row)| {
                let Some(row) = row else { return Ok(None) };
                // A key whose columns are all null is no key at all.
                if self.key && batch.columns().iter().all(|c| c.is_null(i)) {
                    return Ok(None);
                }
                let object: Map<String, Value> =
                    serde_json::from_slice(&row).map_err(|e| FormatError(e.to_string()))?;
                let message = message_of_json(&self.message, &object).map_err(FormatError)?;
                let mut out = BytesMut::with_capacity(message.encoded_len() + 6);
                if let Some(id) = header {
                    frame(id, &mut out);
                    write_message_index(self.index, &mut out);
                }
                message.encode(&mut out).map_err(|e| FormatError(e.to_string()))?;
                Ok(Some(out.freeze()))
            })
            .collect()
    }

    fn prepare<'a>(&'a self, registration: Registration) -> BoxFuture<'a, Result<(), FormatError>> {
        match &self.writer {
            Some(writer) if !self.schema.fields().is_empty() => Box::pin(writer.prepare(registration)),
            _ => Box::pin(std::future::ready(Ok(()))),
        }
    }
}

#[cfg(test)]
mod tests;
