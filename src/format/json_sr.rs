//! `JSON_SR`: JSON records in Confluent's wire format for JSON Schema (a zero magic byte, the
//! schema's id in a schema registry as 4 bytes big-endian, then the JSON text), with the
//! columns' JSON Schema in the registry.
//!
//! The JSON itself is read and written by the `JSON` format's codec, a batch at a time: this
//! format adds the framing, the schema ids, the schemas ksqlDB generates for columns (Kafka
//! Connect's JSON Schema conventions: `oneOf` with `null` for an optional value,
//! `connect.type` for the integer widths and bytes, `title` for decimals and times), and
//! columns inferred from a registered schema.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::confluent::{Writer, decode_bodies, frame, schema_to_infer, unframe};
use super::{Codec, Decoded, Format, FormatError, FormatOptions, Registration, Subject};
use crate::registry::client::RegistryRef;
use crate::registry::{Schema as RegisteredSchema, SchemaType};

/// The `JSON_SR` format, over a schema registry.
#[derive(Debug, Clone)]
pub struct JsonSr {
    registry: RegistryRef,
}

impl JsonSr {
    pub fn new(registry: RegistryRef) -> JsonSr {
        JsonSr { registry }
    }
}

impl Format for JsonSr {
    fn name(&self) -> &'static str {
        super::JSON_SR
    }

    fn codec(&self, schema: SchemaRef, options: FormatOptions) -> Result<Arc<dyn Codec>, FormatError> {
        let bare = !options.wrap_single_value && schema.fields().len() == 1;
        if !options.wrap_single_value && schema.fields().len() != 1 {
            return Err(FormatError("'WRAP_SINGLE_VALUE' is only valid for single-field value schemas".into()));
        }
        let writer = match options.schema_id {
            Some(id) => {
                let registered = self.registry.schema_by_id(id).map_err(|e| FormatError(e.to_string()))?;
                if registered.schema_type != SchemaType::Json {
                    return Err(FormatError(format!("schema {id} is {:?}, not JSON", registered.schema_type)));
                }
                registered
            }
            None => RegisteredSchema {
                schema: schema_of(&schema, bare)?.to_string(),
                schema_type: SchemaType::Json,
                references: Vec::new(),
            },
        };
        let extra = if bare { Vec::new() } else { extra_properties(&writer.schema, &schema) };
        let json_options = FormatOptions { subject: None, schema_id: None, full_name: None, ..options.clone() };
        Ok(Arc::new(JsonSrCodec {
            json: super::builtin(super::JSON).codec(schema.clone(), json_options)?,
            schema,
            bare,
            written: Writer::new(self.registry.clone(), options.subject.clone(), writer, options.schema_id),
            extra,
        }))
    }

    fn infer_columns<'a>(&'a self, subject: &'a Subject) -> BoxFuture<'a, Result<Option<SchemaRef>, FormatError>> {
        Box::pin(async move {
            let Some(schema) = schema_to_infer(&self.registry, subject, SchemaType::Json).await? else {
                return Ok(None);
            };
            let bad = |e: String| FormatError(format!("the schema of {}: {e}", subject.name()));
            let parsed: Ordered = serde_json::from_str(&schema.schema).map_err(|e| bad(e.to_string()))?;
            let referenced = self.registry.resolve_references(&schema).await.map_err(|e| bad(e.to_string()))?;
            let documents = referenced
                .into_iter()
                .map(|(name, schema)| Ok((name, serde_json::from_str::<Ordered>(&schema.schema)?)))
                .collect::<Result<Vec<_>, serde_json::Error>>()
                .map_err(|e| bad(e.to_string()))?;
            let upper = subject.schema_id.is_none();
            let data_type = Refs { root: &parsed, documents: &documents, depth: 0 }.arrow_type(&parsed, upper)?;
            let fields: Vec<Field> = match data_type {
                DataType::Struct(fields) if !subject.unwrapped => {
                    fields.iter().map(|f| f.as_ref().clone().with_nullable(true)).collect()
                }
                single => vec![Field::new(if subject.key { "ROWKEY" } else { "ROWVAL" }, single, true)],
            };
            Ok(Some(Arc::new(Schema::new(fields))))
        })
    }
}

/// ksqlDB's JSON Schema for columns (Kafka Connect's): an object of optional properties in
/// column order, or with `bare`, the one column's optional type.
pub fn schema_of(columns: &Schema, bare: bool) -> Result<Value, FormatError> {
    if bare {
        return Ok(optional(json_type(columns.field(0).data_type())?));
    }
    object_of(columns.fields())
}

fn object_of(fields: &Fields) -> Result<Value, FormatError> {
    let mut properties = serde_json::Map::new();
    for (index, field) in fields.iter().enumerate() {
        let mut property = optional(json_type(field.data_type())?);
        property["connect.index"] = json!(index);
        properties.insert(field.name().clone(), property);
    }
    Ok(json!({"type": "object", "properties": properties}))
}

fn optional(schema: Value) -> Value {
    json!({"oneOf": [{"type": "null"}, schema]})
}

/// The JSON Schema Connect writes for a column type.
fn json_type(data_type: &DataType) -> Result<Value, FormatError> {
    let logical = |title: &str, connect_type: &str| json!({"type": "integer", "title": format!("org.apache.kafka.connect.data.{title}"), "connect.version": 1, "connect.type": connect_type});
    Ok(match data_type {
        DataType::Boolean => json!({"type": "boolean"}),
        DataType::Int8 | DataType::Int16 | DataType::Int32 => json!({"type": "integer", "connect.type": "int32"}),
        DataType::Int64 => json!({"type": "integer", "connect.type": "int64"}),
        DataType::Float32 | DataType::Float64 => json!({"type": "number", "connect.type": "float64"}),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => json!({"type": "string"}),
        DataType::Binary | DataType::LargeBinary => json!({"type": "string", "connect.type": "bytes"}),
        DataType::Decimal128(precision, scale) => json!({
            "type": "number", "title": "org.apache.kafka.connect.data.Decimal", "connect.version": 1,
            "connect.type": "bytes",
            "connect.parameters": {"scale": scale.to_string(), "connect.decimal.precision": precision.to_string()}
        }),
        DataType::Timestamp(..) => logical("Timestamp", "int64"),
        DataType::Date32 => logical("Date", "int32"),
        DataType::Time32(_) => logical("Time", "int32"),
        DataType::List(item) => json!({"type": "array", "items": optional(json_type(item.data_type())?)}),
        DataType::Map(entries, _) => {
            let DataType::Struct(kv) = entries.data_type() else {
                return Err(FormatError(format!("unexpected map type {data_type}")));
            };
            if kv[0].data_type() != &DataType::Utf8 {
                return Err(FormatError("JSON only supports MAP types with STRING keys".into()));
            }
            json!({"type": "object", "additionalProperties": optional(json_type(kv[1].data_type())?), "connect.type": "map"})
        }
        DataType::Struct(fields) => object_of(fields)?,
        other => return Err(FormatError(format!("JSON_SR cannot hold a column of type {other}"))),
    })
}

/// A JSON value with its objects' keys in document order (a JSON Schema's properties are
/// columns in that order when they carry no `connect.index`).
#[derive(Debug, Clone, PartialEq)]
enum Ordered {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Ordered>),
    Object(Vec<(String, Ordered)>),
}

impl Ordered {
    fn get(&self, key: &str) -> Option<&Ordered> {
        match self {
            Ordered::Object(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Ordered::String(s) => Some(s),
            _ => None,
        }
    }

    fn as_u64(&self) -> Option<u64> {
        match self {
            Ordered::Number(n) => n.as_u64(),
            Ordered::String(s) => s.parse().ok(),
            _ => None,
        }
    }
}

impl<'de> serde::Deserialize<'de> for Ordered {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_unit<E>(self) -> Result<Ordered, E> {
                Ok(Ordered::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<Ordered, E> {
                Ok(Ordered::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Ordered, E> {
                Ok(Ordered::Number(n.into()))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Ordered, E> {
                Ok(Ordered::Number(n.into()))
            }
            fn visit_f64<E>(self, n: f64) -> Result<Ordered, E> {
                Ok(serde_json::Number::from_f64(n).map_or(Ordered::Null, Ordered::Number))
            }
            fn visit_str<E>(self, s: &str) -> Result<Ordered, E> {
                Ok(Ordered::String(s.to_owned()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Ordered, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Ordered::Array(items))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Ordered::Object(entries))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// Where a JSON Schema's `$ref`s lead: its own document (`#/definitions/…`, `#/$defs/…`) and
/// the schemas it refers to by name (`other.json`, `other.json#/definitions/…`), each with
/// the document its references are relative to.
struct Refs<'a> {
    root: &'a Ordered,
    documents: &'a [(String, Ordered)],
    depth: usize,
}

/// How deep `$ref`s may lead (a recursive schema has no columns).
const MOST_REF_DEPTH: usize = 32;

/// A JSON pointer's target in `root` (`` for the root, `/definitions/X`, …).
fn pointer<'v>(root: &'v Ordered, path: &str) -> Option<&'v Ordered> {
    if path.is_empty() {
        return Some(root);
    }
    let parts: Vec<String> =
        path.strip_prefix('/')?.split('/').map(|p| p.replace("~1", "/").replace("~0", "~")).collect();
    parts.iter().try_fold(root, |at, part| match at {
        Ordered::Object(_) => at.get(part),
        Ordered::Array(items) => items.get(part.parse::<usize>().ok()?),
        _ => None,
    })
}

impl<'a> Refs<'a> {
    /// The schema `schema`'s `$ref` leads to, in the document it is in; `None` without one.
    fn follow(&self, schema: &Ordered) -> Result<Option<(Refs<'a>, &'a Ordered)>, FormatError> {
        let Some(reference) = schema.get("$ref").and_then(Ordered::as_str) else { return Ok(None) };
        if self.depth >= MOST_REF_DEPTH {
            return Err(FormatError(format!("JSON_SR cannot infer columns from a recursive schema ({reference})")));
        }
        let (document, path) = reference.split_once('#').unwrap_or((reference, ""));
        let root = if document.is_empty() {
            self.root
        } else {
            &self
                .documents
                .iter()
                .find(|(name, _)| name == document)
                .ok_or_else(|| {
                    FormatError(format!("the schema refers to {document}, which is not among its references"))
                })?
                .1
        };
        let target =
            pointer(root, path).ok_or_else(|| FormatError(format!("the schema's $ref {reference} leads nowhere")))?;
        Ok(Some((Refs { root, documents: self.documents, depth: self.depth + 1 }, target)))
    }

    /// The column type a JSON Schema describes, as Kafka Connect reads it (`upper`: property
    /// names in capitals, ksqlDB's for columns inferred from a subject's latest schema).
    fn arrow_type(&self, schema: &Ordered, upper: bool) -> Result<DataType, FormatError> {
        if let Some((refs, target)) = self.follow(schema)? {
            return refs.arrow_type(target, upper);
        }
        described_type(self, schema, upper)
    }
}

/// [`Refs::arrow_type`] of a schema that is no `$ref`.
fn described_type(refs: &Refs, schema: &Ordered, upper: bool) -> Result<DataType, FormatError> {
    let unsupported = || FormatError(format!("JSON_SR cannot infer a column from the schema {schema:?}"));
    // An optional value: `oneOf`/`anyOf` with null, or a `type` list with "null".
    for union in ["oneOf", "anyOf"] {
        if let Some(Ordered::Array(branches)) = schema.get(union) {
            let kept: Vec<&Ordered> =
                branches.iter().filter(|b| b.get("type").and_then(Ordered::as_str) != Some("null")).collect();
            return match kept[..] {
                [only] => refs.arrow_type(only, upper),
                _ => Err(unsupported()),
            };
        }
    }
    let kind = match schema.get("type") {
        Some(Ordered::String(kind)) => kind.as_str(),
        Some(Ordered::Array(kinds)) => {
            let kept: Vec<&str> = kinds.iter().filter_map(Ordered::as_str).filter(|k| *k != "null").collect();
            match kept[..] {
                [only] => only,
                _ => return Err(unsupported()),
            }
        }
        _ => return Err(unsupported()),
    };
    let connect_type = schema.get("connect.type").and_then(Ordered::as_str);
    let title = schema.get("title").and_then(Ordered::as_str).unwrap_or_default();
    Ok(match (kind, title) {
        (_, "org.apache.kafka.connect.data.Decimal") => {
            let parameters = schema.get("connect.parameters");
            let parameter = |name: &str| parameters.and_then(|p| p.get(name)).and_then(Ordered::as_u64);
            let precision = parameter("connect.decimal.precision").unwrap_or(38).min(38) as u8;
            let scale = parameter("scale").unwrap_or(0).min(u64::from(precision)) as i8;
            DataType::Decimal128(precision, scale)
        }
        (_, "org.apache.kafka.connect.data.Timestamp") => DataType::Timestamp(TimeUnit::Millisecond, None),
        (_, "org.apache.kafka.connect.data.Date") => DataType::Date32,
        (_, "org.apache.kafka.connect.data.Time") => DataType::Time32(TimeUnit::Millisecond),
        ("boolean", _) => DataType::Boolean,
        ("integer", _) if matches!(connect_type, Some("int8" | "int16" | "int32")) => DataType::Int32,
        ("integer", _) => DataType::Int64,
        ("number", _) => DataType::Float64,
        ("string", _) if connect_type == Some("bytes") => DataType::Binary,
        ("string", _) => DataType::Utf8,
        ("array", _) => {
            let item = schema.get("items").map(|i| refs.arrow_type(i, upper)).transpose()?.unwrap_or(DataType::Utf8);
            DataType::List(Arc::new(Field::new("item", item, true)))
        }
        ("object", _) => match (schema.get("properties"), schema.get("additionalProperties")) {
            (Some(Ordered::Object(properties)), _) if connect_type != Some("map") => {
                let mut fields: Vec<(u64, usize, Field)> = Vec::with_capacity(properties.len());
                for (position, (name, property)) in properties.iter().enumerate() {
                    let index = property.get("connect.index").and_then(Ordered::as_u64).unwrap_or(u64::MAX);
                    let name = if upper { name.to_uppercase() } else { name.clone() };
                    fields.push((index, position, Field::new(name, refs.arrow_type(property, upper)?, true)));
                }
                fields.sort_by_key(|(index, position, _)| (*index, *position));
                DataType::Struct(fields.into_iter().map(|(_, _, f)| f).collect())
            }
            (_, Some(values @ Ordered::Object(_))) => {
                let value = refs.arrow_type(values, upper)?;
                let entries = Field::new(
                    "entries",
                    DataType::Struct(
                        vec![Field::new("key", DataType::Utf8, false), Field::new("value", value, true)].into(),
                    ),
                    false,
                );
                DataType::Map(Arc::new(entries), false)
            }
            _ => return Err(unsupported()),
        },
        _ => return Err(unsupported()),
    })
}

/// One side's codec: the JSON codec, framed.
#[derive(Debug)]
struct JsonSrCodec {
    json: Arc<dyn Codec>,
    schema: SchemaRef,
    bare: bool,
    /// The JSON Schema records are written with.
    written: Writer,
    /// What each record gets for the schema's properties the columns lack (`"p":null`, or
    /// the property's default), comma-separated: as ksqlDB writes with a registered schema.
    extra: Vec<u8>,
}

/// The members a record written with JSON Schema `schema` gets for the properties `columns`
/// lack (matched ignoring case): each its `default`, else null, as `"p":v` joined by commas.
fn extra_properties(schema: &str, columns: &Schema) -> Vec<u8> {
    let (Ok(ordered), Ok(plain)) = (serde_json::from_str::<Ordered>(schema), serde_json::from_str::<Value>(schema))
    else {
        return Vec::new();
    };
    let Some(Ordered::Object(properties)) = ordered.get("properties") else { return Vec::new() };
    let members: Vec<String> = properties
        .iter()
        .map(|(name, _)| name)
        .filter(|name| !columns.fields().iter().any(|f| f.name().eq_ignore_ascii_case(name)))
        .map(|name| {
            let value = plain["properties"][name.as_str()].get("default").cloned().unwrap_or(Value::Null);
            format!("{}:{value}", Value::String(name.clone()))
        })
        .collect();
    members.join(",").into_bytes()
}

impl Codec for JsonSrCodec {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn decode(&self, payloads: &[&[u8]]) -> Result<Decoded, FormatError> {
        if self.schema.fields().is_empty() {
            return self.json.decode(payloads);
        }
        let mut bodies: Vec<&[u8]> = Vec::with_capacity(payloads.len());
        let mut ids: Vec<u32> = Vec::with_capacity(payloads.len());
        let mut positions: Vec<usize> = Vec::with_capacity(payloads.len());
        let mut errors = Vec::new();
        for (i, payload) in payloads.iter().enumerate() {
            match unframe(payload, "JSON_SR") {
                Ok((id, body)) => {
                    bodies.push(body);
                    ids.push(id);
                    positions.push(i);
                }
                Err(reason) => errors.push((i, reason)),
            }
        }
        decode_bodies(self.json.as_ref(), &bodies, &positions, Some(&ids), errors)
    }

    fn encode(&self, batch: &datafusion::arrow::array::RecordBatch) -> Result<Vec<Option<Bytes>>, FormatError> {
        if self.schema.fields().is_empty() || batch.num_rows() == 0 {
            return self.json.encode(batch);
        }
        let id = self.written.id()?;
        let encoded = self.json.encode(batch)?;
        // Every row framed into one buffer, each row a slice of it: one allocation a batch.
        let framed_len: usize = encoded.iter().flatten().map(|row| row.len() + 7 + self.extra.len()).sum();
        let mut framed = BytesMut::with_capacity(framed_len);
        Ok(encoded
            .into_iter()
            .map(|row| {
                // A bare null is no bytes at all (a tombstone, a null key).
                let row = row.filter(|bytes| !(self.bare && bytes.as_ref() == b"null"))?;
                frame(id, &mut framed);
                match row.split_last() {
                    Some((b'}', body)) if !self.extra.is_empty() => {
                        framed.put_slice(body);
                        if body.len() > 1 {
                            framed.put_u8(b',');
                        }
                        framed.put_slice(&self.extra);
                        framed.put_u8(b'}');
                    }
                    _ => framed.put_slice(&row),
                }
                Some(framed.split().freeze())
            })
            .collect())
    }

    fn prepare<'a>(&'a self, registration: Registration) -> BoxFuture<'a, Result<(), FormatError>> {
        if self.schema.fields().is_empty() {
            return Box::pin(std::future::ready(Ok(())));
        }
        Box::pin(self.written.prepare(registration))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::ast::SqlType;

    fn inferred(schema: &str, upper: bool) -> String {
        inferred_with(schema, &[], upper).unwrap()
    }

    /// With `referenced` schemas, by name.
    fn inferred_with(schema: &str, referenced: &[(&str, &str)], upper: bool) -> Result<String, FormatError> {
        let parsed: Ordered = serde_json::from_str(schema).unwrap();
        let documents: Vec<(String, Ordered)> =
            referenced.iter().map(|(name, text)| (name.to_string(), serde_json::from_str(text).unwrap())).collect();
        let data_type = Refs { root: &parsed, documents: &documents, depth: 0 }.arrow_type(&parsed, upper)?;
        Ok(SqlType::from_arrow(&data_type).unwrap().to_string())
    }

    #[test]
    fn refs_lead_into_the_schema_and_the_schemas_it_refers_to() {
        let local = r##"{"type": "object", "properties": {"at": {"$ref": "#/definitions/point"}},
            "definitions": {"point": {"type": "object", "properties": {"x": {"type": "number"}}}}}"##;
        assert_eq!(inferred(local, false), "STRUCT<`at` STRUCT<`x` DOUBLE>>");
        // Another subject's schema, by the name the reference gives it; its own `#` refs are
        // relative to it.
        let main = r#"{"type": "object", "properties": {"ship": {"$ref": "address.json"}}}"#;
        let address = r##"{"type": "object", "properties": {"city": {"type": "string"},
            "zip": {"$ref": "#/$defs/zip"}}, "$defs": {"zip": {"type": "integer"}}}"##;
        assert_eq!(
            inferred_with(main, &[("address.json", address)], false).unwrap(),
            "STRUCT<`ship` STRUCT<`city` STRING, `zip` BIGINT>>"
        );
        assert!(inferred_with(main, &[], false).unwrap_err().0.contains("not among its references"));
        // A recursive schema has no columns: refused, not followed forever.
        let tree = r##"{"type": "object", "properties": {"kids": {"type": "array", "items": {"$ref": "#"}}}}"##;
        assert!(inferred_with(tree, &[], false).unwrap_err().0.contains("recursive"));
    }

    #[test]
    fn columns_are_inferred_as_kafka_connect_reads_json_schemas() {
        // (As text: a `json!` object would sort its keys.)
        let schema = r#"{"type": "object", "properties": {
            "b": {"type": "integer"},
            "a": {"oneOf": [{"type": "null"}, {"type": "integer", "connect.type": "int32"}]},
            "d": {"type": "number", "title": "org.apache.kafka.connect.data.Decimal",
                  "connect.parameters": {"scale": "2", "connect.decimal.precision": "4"}},
            "m": {"type": "object", "additionalProperties": {"type": "string"}},
            "l": {"type": ["null", "array"], "items": {"type": "boolean"}},
            "t": {"type": "integer", "title": "org.apache.kafka.connect.data.Timestamp"},
            "y": {"type": "string", "connect.type": "bytes"}
        }}"#;
        // In document order (the properties carry no connect.index).
        assert_eq!(
            inferred(schema, true),
            "STRUCT<`B` BIGINT, `A` INTEGER, `D` DECIMAL(4, 2), `M` MAP<STRING, STRING>, `L` ARRAY<BOOLEAN>, `T` TIMESTAMP, `Y` BYTES>"
        );
        let indexed = r#"{"type": "object", "properties": {
            "x": {"connect.index": 1, "type": "string"}, "y": {"connect.index": 0, "type": "boolean"}
        }}"#;
        assert_eq!(inferred(indexed, false), "STRUCT<`y` BOOLEAN, `x` STRING>");
    }

    #[test]
    fn the_schema_of_columns_is_kafka_connects() {
        let columns = Schema::new(vec![
            Field::new("A", DataType::Int32, true),
            Field::new("S", DataType::Struct(vec![Field::new("X", DataType::Utf8, true)].into()), true),
        ]);
        let schema = schema_of(&columns, false).unwrap();
        assert_eq!(
            schema,
            json!({"type": "object", "properties": {
                "A": {"connect.index": 0, "oneOf": [{"type": "null"}, {"type": "integer", "connect.type": "int32"}]},
                "S": {"connect.index": 1, "oneOf": [{"type": "null"}, {"type": "object", "properties": {
                    "X": {"connect.index": 0, "oneOf": [{"type": "null"}, {"type": "string"}]}
                }}]}
            }})
        );
        // What is generated reads back as the same columns.
        assert_eq!(inferred(&schema.to_string(), false), "STRUCT<`A` INTEGER, `S` STRUCT<`X` STRING>>");
    }
}
