//! Whether one schema can read what another wrote, per kind, as the registry checks a new
//! version against the subject's earlier ones (BACKWARD: the new one reads the old one's
//! records; FORWARD: the other way round).
//!
//! - AVRO: Avro's schema resolution rules (`apache-avro`'s `SchemaCompatibility`).
//! - PROTOBUF: the wire-level rules of Confluent's registry. Both schemas are compiled and
//!   compared message by message (by full name) and field by field (by number). The writer's
//!   package and messages must stay. A field's kind may change only within one wire type
//!   (`int32`/`int64`/`uint32`/`uint64`/`bool`/enums, `sint32`/`sint64`,
//!   `fixed32`/`sfixed32`, `fixed64`/`sfixed64`, `string`/`bytes`). A message or enum field
//!   keeps its type's name. Required fields (proto2) are neither added nor removed, and
//!   fields do not leave a oneof or join one that exists. Names, new fields, enum constants
//!   and new messages are free.
//! - JSON: the reader must accept every document the writer accepts. This is Confluent's
//!   rule, and its consequences too: adding a property to an open content model (no
//!   `additionalProperties: false`) is incompatible, as the writer's documents may already
//!   hold it with another type. It covers `type` (an `integer` read as a `number`),
//!   `properties`, `required`, `additionalProperties`, `items`, `enum`/`const`, the numeric,
//!   length and size bounds, `pattern`, `uniqueItems`, `not`, `oneOf`/`anyOf`/`allOf`, and
//!   `$ref`s, local or into the schemas it refers to (put into its `$defs` first).

use std::collections::HashSet;

use prost_reflect::{Cardinality, DescriptorPool, FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value};

use super::{Reference, RegistryError, Schema, SchemaType, parse_avro, protobuf};

/// Whether `reader` reads what `writer` wrote; else why not, as Confluent's registry words
/// it (`{errorType:…, description:…}`). Both are of one kind. Schemas they refer to are found
/// by `resolve`.
pub(super) fn can_read(
    writer: &Schema,
    reader: &Schema,
    resolve: &dyn Fn(&Reference) -> Result<Schema, RegistryError>,
) -> Result<(), String> {
    if writer.schema_type != reader.schema_type {
        return Err("{errorType:'SCHEMA_TYPE_CHANGED', description:'the schema is of another kind'}".into());
    }
    match reader.schema_type {
        SchemaType::Avro => {
            let writer = parse_avro(writer, resolve).map_err(|e| e.message)?;
            let reader = parse_avro(reader, resolve).map_err(|e| e.message)?;
            apache_avro::schema_compatibility::SchemaCompatibility::can_read(&writer, &reader)
                .map_err(|e| e.to_string())
        }
        SchemaType::Protobuf => {
            let writer = protobuf::compile_registered(writer, resolve)?;
            let reader = protobuf::compile_registered(reader, resolve)?;
            protobuf_can_read(&writer, &reader).map_err(|d| d.to_string())
        }
        SchemaType::Json => {
            let (writer, reader) = (json_self_contained(writer, resolve)?, json_self_contained(reader, resolve)?);
            Json { writer: &writer, reader: &reader, seen: HashSet::new() }
                .covers(&reader, &writer, "#")
                .map_err(|d| d.to_string())
        }
    }
}

/// One difference that breaks compatibility: Confluent's error type, and where.
#[derive(Debug, PartialEq)]
pub(super) struct Difference {
    kind: &'static str,
    at: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{{errorType:'{}', description:'at path '{}''}}", self.kind, self.at)
    }
}

fn differs(kind: &'static str, at: impl Into<String>) -> Result<(), Difference> {
    Err(Difference { kind, at: at.into() })
}

// ---------------------------------------------------------------------------------------------
// PROTOBUF

/// Whether `reader` (compiled) reads what `writer` wrote.
fn protobuf_can_read(writer: &DescriptorPool, reader: &DescriptorPool) -> Result<(), Difference> {
    let file = |pool: &DescriptorPool| pool.get_file_by_name(protobuf::SCHEMA_FILE);
    let (Some(writer_file), Some(reader_file)) = (file(writer), file(reader)) else { return Ok(()) };
    if writer_file.package_name() != reader_file.package_name() {
        return differs("PACKAGE_CHANGED", "#/");
    }
    let own = |pool: &DescriptorPool| -> Vec<MessageDescriptor> {
        pool.all_messages().filter(|m| m.parent_file().name() == protobuf::SCHEMA_FILE && !m.is_map_entry()).collect()
    };
    for old in own(writer) {
        let Some(new) = reader.get_message_by_name(old.full_name()) else {
            return differs("MESSAGE_REMOVED", format!("#/{}", old.full_name()));
        };
        message_can_read(&old, &new)?;
    }
    Ok(())
}

/// The fields of one message, by number.
fn message_can_read(old: &MessageDescriptor, new: &MessageDescriptor) -> Result<(), Difference> {
    let real_oneof = |f: &FieldDescriptor| f.containing_oneof().filter(|o| !o.is_synthetic());
    let mut moved_into: Vec<String> = Vec::new();
    for old_field in old.fields() {
        let at = format!("#/{}/{}", old.full_name(), old_field.number());
        let Some(new_field) = new.get_field(old_field.number()) else {
            if old_field.cardinality() == Cardinality::Required {
                return differs("REQUIRED_FIELD_REMOVED", at);
            }
            if real_oneof(&old_field).is_some() {
                return differs("ONEOF_FIELD_REMOVED", at);
            }
            continue;
        };
        field_can_read(&old_field, &new_field, &at)?;
        match (real_oneof(&old_field), real_oneof(&new_field)) {
            (Some(_), None) => return differs("ONEOF_FIELD_REMOVED", at),
            (None, Some(oneof)) => {
                if old.oneofs().any(|o| !o.is_synthetic() && o.name() == oneof.name()) {
                    return differs("FIELD_MOVED_TO_EXISTING_ONEOF", at);
                }
                if moved_into.contains(&oneof.name().to_owned()) {
                    return differs("MULTIPLE_FIELDS_MOVED_TO_ONEOF", at);
                }
                moved_into.push(oneof.name().to_owned());
            }
            _ => {}
        }
    }
    for new_field in new.fields() {
        if old.get_field(new_field.number()).is_none() && new_field.cardinality() == Cardinality::Required {
            return differs("REQUIRED_FIELD_ADDED", format!("#/{}/{}", new.full_name(), new_field.number()));
        }
    }
    Ok(())
}

/// One field, its kind and its cardinality.
fn field_can_read(old: &FieldDescriptor, new: &FieldDescriptor, at: &str) -> Result<(), Difference> {
    if new.cardinality() == Cardinality::Required && old.cardinality() != Cardinality::Required {
        return differs("REQUIRED_FIELD_ADDED", at);
    }
    if old.is_map() || new.is_map() {
        if !(old.is_map() && new.is_map()) {
            return differs("FIELD_KIND_CHANGED", at);
        }
        let (Kind::Message(old_entry), Kind::Message(new_entry)) = (old.kind(), new.kind()) else {
            return Ok(());
        };
        for number in [1, 2] {
            if let (Some(o), Some(n)) = (old_entry.get_field(number), new_entry.get_field(number)) {
                kind_can_read(&o.kind(), &n.kind(), at)?;
            }
        }
        return Ok(());
    }
    if old.is_list() != new.is_list() {
        // A length-delimited value is read as one element of a list, and the last of a list
        // as the value: packed numbers are not.
        let delimited = |k: &Kind| matches!(k, Kind::String | Kind::Bytes | Kind::Message(_));
        if !(delimited(&old.kind()) && delimited(&new.kind())) {
            return differs("FIELD_SCALAR_KIND_CHANGED", at);
        }
    }
    kind_can_read(&old.kind(), &new.kind(), at)
}

fn kind_can_read(old: &Kind, new: &Kind, at: &str) -> Result<(), Difference> {
    /// Kinds one wire type reads alike.
    fn wire_group(kind: &Kind) -> Option<u8> {
        Some(match kind {
            Kind::Int32 | Kind::Int64 | Kind::Uint32 | Kind::Uint64 | Kind::Bool | Kind::Enum(_) => 0,
            Kind::Sint32 | Kind::Sint64 => 1,
            Kind::Fixed32 | Kind::Sfixed32 => 2,
            Kind::Fixed64 | Kind::Sfixed64 => 3,
            Kind::String | Kind::Bytes => 4,
            Kind::Float => 5,
            Kind::Double => 6,
            Kind::Message(_) => return None,
        })
    }
    match (old, new) {
        (Kind::Message(a), Kind::Message(b)) if a.full_name() != b.full_name() => {
            differs("FIELD_NAMED_TYPE_CHANGED", at)
        }
        (Kind::Enum(a), Kind::Enum(b)) if a.full_name() != b.full_name() => differs("FIELD_NAMED_TYPE_CHANGED", at),
        (Kind::Message(_), Kind::Message(_)) => Ok(()),
        (Kind::Message(_), _) | (_, Kind::Message(_)) => differs("FIELD_KIND_CHANGED", at),
        _ if wire_group(old) == wire_group(new) => Ok(()),
        _ => differs("FIELD_SCALAR_KIND_CHANGED", at),
    }
}

// ---------------------------------------------------------------------------------------------
// JSON

/// Where a JSON schema keeps the schemas it refers to once they are put into it.
const EMBEDDED: &str = "eddy-reference:";

/// A JSON schema with the schemas it refers to (and those they refer to) put into its
/// `$defs`, and its `$ref`s to them (`other.json`, `other.json#/definitions/x`) made local,
/// theirs too: one document, compared as one.
fn json_self_contained(
    schema: &Schema,
    resolve: &dyn Fn(&Reference) -> Result<Schema, RegistryError>,
) -> Result<Value, String> {
    let parse = |text: &str| serde_json::from_str::<Value>(text).map_err(|e| e.to_string());
    let mut root = parse(&schema.schema)?;
    if schema.references.is_empty() {
        return Ok(root);
    }
    let documents = super::referenced_schemas(schema, resolve).map_err(|e| e.to_string())?;
    let documents: Vec<(String, Value)> =
        documents.into_iter().map(|(name, found)| Ok((name, parse(&found.schema)?))).collect::<Result<_, String>>()?;
    let names: Vec<String> = documents.iter().map(|(name, _)| name.clone()).collect();
    localise_refs(&mut root, "", &names);
    let Value::Object(map) = &mut root else { return Ok(root) };
    let defs = map.entry("$defs").or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(defs) = defs else { return Err("$defs is not an object".into()) };
    for (name, mut document) in documents {
        let here = format!("/$defs/{}", escape(&format!("{EMBEDDED}{name}")));
        localise_refs(&mut document, &here, &names);
        defs.insert(format!("{EMBEDDED}{name}"), document);
    }
    Ok(root)
}

/// A JSON pointer's part, escaped.
fn escape(part: &str) -> String {
    part.replace('~', "~0").replace('/', "~1")
}

/// Rewrites the `$ref`s of a document that sits at `here` in the whole: its own (`#…`) to
/// point into it, those to `names` (other documents) to where they are put.
fn localise_refs(schema: &mut Value, here: &str, names: &[String]) {
    match schema {
        Value::Array(items) => items.iter_mut().for_each(|item| localise_refs(item, here, names)),
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get_mut("$ref") {
                let (document, path) = reference.split_once('#').unwrap_or((reference.as_str(), ""));
                let local = if document.is_empty() {
                    Some(format!("#{here}{path}"))
                } else if names.iter().any(|n| n == document) {
                    Some(format!("#/$defs/{}{path}", escape(&format!("{EMBEDDED}{document}"))))
                } else {
                    None
                };
                if let Some(local) = local {
                    *reference = local;
                }
            }
            map.iter_mut().filter(|(k, _)| *k != "$ref").for_each(|(_, v)| localise_refs(v, here, names));
        }
        _ => {}
    }
}

/// A JSON Schema comparison: the two documents (for their local `$ref`s), and the pairs of
/// references already being compared (a recursive schema is compatible with itself).
struct Json<'a> {
    writer: &'a Value,
    reader: &'a Value,
    seen: HashSet<(String, String)>,
}

/// Keywords that do not constrain documents.
const ANNOTATIONS: [&str; 14] = [
    "$schema",
    "$id",
    "id",
    "$comment",
    "title",
    "description",
    "default",
    "examples",
    "definitions",
    "$defs",
    "format",
    "readOnly",
    "writeOnly",
    "deprecated",
];

/// Whether a schema accepts every document: `true`, or an object with no keyword that
/// constrains (annotations and Kafka Connect's `connect.*` aside).
fn accepts_all(schema: &Value) -> bool {
    match schema {
        Value::Bool(b) => *b,
        Value::Object(o) => o.keys().all(|k| ANNOTATIONS.contains(&k.as_str()) || k.starts_with("connect.")),
        _ => false,
    }
}

/// A JSON pointer's target in `root` (`#`, `#/definitions/X`, …).
fn pointer<'v>(root: &'v Value, reference: &str) -> Option<&'v Value> {
    let path = reference.strip_prefix('#')?;
    if path.is_empty() {
        return Some(root);
    }
    let decoded: Vec<String> = path.split('/').skip(1).map(|p| p.replace("~1", "/").replace("~0", "~")).collect();
    decoded.iter().try_fold(root, |at, part| match at {
        Value::Object(o) => o.get(part),
        Value::Array(a) => a.get(part.parse::<usize>().ok()?),
        _ => None,
    })
}

/// `schema` with its siblings `extra` (the keywords beside a `oneOf`), as one object.
fn with_siblings(schema: &Value, extra: &Map<String, Value>) -> Value {
    match schema {
        Value::Object(o) => {
            let mut merged = extra.clone();
            merged.extend(o.iter().map(|(k, v)| (k.clone(), v.clone())));
            Value::Object(merged)
        }
        other => other.clone(),
    }
}

/// The types a schema allows (`None`: any).
fn types(schema: &Map<String, Value>) -> Option<Vec<&str>> {
    match schema.get("type")? {
        Value::String(t) => Some(vec![t.as_str()]),
        Value::Array(ts) => Some(ts.iter().filter_map(Value::as_str).collect()),
        _ => None,
    }
}

/// Whether a schema's documents may be of `kind` (`number` includes `integer`).
fn may_be(schema: &Map<String, Value>, kind: &str) -> bool {
    types(schema).is_none_or(|ts| ts.iter().any(|t| *t == kind || (kind == "integer" && *t == "number")))
}

impl Json<'_> {
    /// Whether `new` accepts every document `old` accepts.
    fn covers(&mut self, new: &Value, old: &Value, at: &str) -> Result<(), Difference> {
        // Local references first (each pair once).
        let reference = |v: &Value| v.get("$ref").and_then(Value::as_str).map(str::to_owned);
        let (new_ref, old_ref) = (reference(new), reference(old));
        if new_ref.is_some() || old_ref.is_some() {
            let key = (
                new_ref.clone().unwrap_or_else(|| new.to_string()),
                old_ref.clone().unwrap_or_else(|| old.to_string()),
            );
            if self.seen.contains(&key) {
                return Ok(());
            }
            let resolve = |root: &Value, reference: Option<String>, here: &Value| -> Option<Value> {
                match reference {
                    Some(r) => pointer(root, &r).cloned(),
                    None => Some(here.clone()),
                }
            };
            let (Some(new_target), Some(old_target)) =
                (resolve(self.reader, new_ref.clone(), new), resolve(self.writer, old_ref.clone(), old))
            else {
                // A reference to another document: equal ones read alike.
                return if new_ref == old_ref { Ok(()) } else { differs("REFERENCE_CHANGED", at) };
            };
            self.seen.insert(key.clone());
            let covered = self.covers(&new_target, &old_target, at);
            self.seen.remove(&key);
            return covered;
        }
        if accepts_all(new) || old == &Value::Bool(false) {
            return Ok(());
        }
        let (Value::Object(new_map), Value::Object(old_map)) = (new, old) else {
            return differs("TYPE_NARROWED", at);
        };
        // Combinations: a reader's allOf must each cover; a writer's alternatives must each
        // be covered; a reader's alternatives cover if one does.
        if let Some(Value::Array(all)) = new_map.get("allOf") {
            let mut rest = new_map.clone();
            rest.remove("allOf");
            for part in all {
                self.covers(part, old, at)?;
            }
            return self.covers(&Value::Object(rest), old, at);
        }
        for combiner in ["oneOf", "anyOf"] {
            if let Some(Value::Array(alternatives)) = old_map.get(combiner) {
                let mut siblings = old_map.clone();
                siblings.remove(combiner);
                for alternative in alternatives {
                    self.covers(new, &with_siblings(alternative, &siblings), at)?;
                }
                return Ok(());
            }
        }
        for combiner in ["oneOf", "anyOf"] {
            if let Some(Value::Array(alternatives)) = new_map.get(combiner) {
                let mut siblings = new_map.clone();
                siblings.remove(combiner);
                let covered = alternatives.iter().any(|a| self.covers(&with_siblings(a, &siblings), old, at).is_ok());
                return if covered { Ok(()) } else { differs("COMBINED_TYPE_SUBSCHEMAS_CHANGED", at) };
            }
        }
        if let Some(Value::Array(all)) = old_map.get("allOf") {
            let mut siblings = old_map.clone();
            siblings.remove("allOf");
            let covered = all.iter().any(|part| self.covers(new, &with_siblings(part, &siblings), at).is_ok());
            return if covered { Ok(()) } else { differs("COMBINED_TYPE_SUBSCHEMAS_CHANGED", at) };
        }
        if accepts_all(old) {
            return differs("TYPE_NARROWED", at);
        }
        self.leaf_covers(new_map, old_map, at)
    }

    /// [`covers`](Self::covers) for two schemas with no combinations and no references.
    fn leaf_covers(&mut self, new: &Map<String, Value>, old: &Map<String, Value>, at: &str) -> Result<(), Difference> {
        match (types(new), types(old)) {
            (Some(_), None) => return differs("TYPE_NARROWED", at),
            (Some(new_types), Some(old_types)) => {
                let read = |t: &&str| new_types.contains(t) || (*t == "integer" && new_types.contains(&"number"));
                if !old_types.iter().all(read) {
                    let narrowed = |t: &&str| read(t) || (*t == "number" && new_types.contains(&"integer"));
                    let kind = if old_types.iter().any(narrowed) { "TYPE_NARROWED" } else { "TYPE_CHANGED" };
                    return differs(kind, at);
                }
            }
            _ => {}
        }
        // Listed values: the reader's must include the writer's.
        let listed = |s: &Map<String, Value>| -> Option<Vec<Value>> {
            s.get("const").map(|c| vec![c.clone()]).or_else(|| s.get("enum")?.as_array().cloned())
        };
        if let Some(allowed) = listed(new) {
            match listed(old) {
                Some(written) if written.iter().all(|v| allowed.contains(v)) => {}
                Some(_) => return differs("ENUM_ARRAY_NARROWED", at),
                None => return differs("ENUM_ARRAY_NARROWED", at),
            }
        }
        // Bounds: the reader's lower bounds no higher, its upper bounds no lower.
        let number = |s: &Map<String, Value>, k: &str| s.get(k).and_then(Value::as_f64);
        // (Each keyword, the type it bounds, and whether it is a lower bound.)
        for (keyword, kind, lower) in [
            ("minimum", "number", true),
            ("exclusiveMinimum", "number", true),
            ("minLength", "string", true),
            ("minItems", "array", true),
            ("minProperties", "object", true),
            ("maximum", "number", false),
            ("exclusiveMaximum", "number", false),
            ("maxLength", "string", false),
            ("maxItems", "array", false),
            ("maxProperties", "object", false),
        ] {
            let narrower = |written: f64, bound: f64| if lower { written < bound } else { written > bound };
            if let Some(bound) = number(new, keyword)
                && may_be(old, kind)
                && number(old, keyword).is_none_or(|o| narrower(o, bound))
            {
                let kind = if lower { "MINIMUM_INCREASED" } else { "MAXIMUM_DECREASED" };
                return differs(kind, format!("{at}/{keyword}"));
            }
        }
        if let Some(step) = number(new, "multipleOf")
            && may_be(old, "number")
            && number(old, "multipleOf").is_none_or(|o| (o / step).fract().abs() > 1e-9)
        {
            return differs("MULTIPLE_OF_CHANGED", at);
        }
        for exact in ["pattern", "not", "dependencies", "dependentRequired", "dependentSchemas", "patternProperties"] {
            if let Some(wanted) = new.get(exact)
                && old.get(exact) != Some(wanted)
            {
                return differs("CONSTRAINT_ADDED", format!("{at}/{exact}"));
            }
        }
        if may_be(old, "object") {
            self.object_covers(new, old, at)?;
        }
        if may_be(old, "array") {
            self.array_covers(new, old, at)?;
        }
        Ok(())
    }

    fn object_covers(
        &mut self,
        new: &Map<String, Value>,
        old: &Map<String, Value>,
        at: &str,
    ) -> Result<(), Difference> {
        let open = Value::Bool(true);
        let properties = |s: &Map<String, Value>| s.get("properties").and_then(Value::as_object).cloned();
        let (new_props, old_props) = (properties(new).unwrap_or_default(), properties(old).unwrap_or_default());
        let (new_extra, old_extra) =
            (new.get("additionalProperties").unwrap_or(&open), old.get("additionalProperties").unwrap_or(&open));
        for (name, old_prop) in &old_props {
            let here = format!("{at}/properties/{name}");
            match new_props.get(name) {
                Some(new_prop) => self.covers(new_prop, old_prop, &here)?,
                None => {
                    if self.covers(new_extra, old_prop, &here).is_err() {
                        return differs("PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL", here);
                    }
                }
            }
        }
        for (name, new_prop) in new_props.iter().filter(|(name, _)| !old_props.contains_key(*name)) {
            let here = format!("{at}/properties/{name}");
            if self.covers(new_prop, old_extra, &here).is_err() {
                let kind = if *old_extra == open {
                    "PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"
                } else {
                    "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
                };
                return differs(kind, here);
            }
        }
        let required = |s: &Map<String, Value>| -> Vec<String> {
            s.get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default()
        };
        let old_required = required(old);
        for name in required(new).into_iter().filter(|n| !old_required.contains(n)) {
            let has_default = new_props.get(&name).and_then(|p| p.get("default")).is_some();
            if !has_default {
                return differs("REQUIRED_ATTRIBUTE_ADDED", format!("{at}/required/{name}"));
            }
        }
        self.covers(new_extra, old_extra, &format!("{at}/additionalProperties")).map_err(|_| Difference {
            kind: "ADDITIONAL_PROPERTIES_NARROWED",
            at: format!("{at}/additionalProperties"),
        })
    }

    fn array_covers(&mut self, new: &Map<String, Value>, old: &Map<String, Value>, at: &str) -> Result<(), Difference> {
        if new.get("uniqueItems") == Some(&Value::Bool(true)) && old.get("uniqueItems") != Some(&Value::Bool(true)) {
            return differs("UNIQUE_ITEMS_ADDED", at);
        }
        let open = Value::Bool(true);
        // Positional items (`prefixItems`, or an `items` array before 2020-12), then the rest.
        let positional = |s: &Map<String, Value>| -> Vec<Value> {
            s.get("prefixItems")
                .or_else(|| s.get("items").filter(|i| i.is_array()))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        let rest = |s: &Map<String, Value>| -> Value {
            if s.contains_key("prefixItems") || s.get("items").is_some_and(Value::is_array) {
                s.get("additionalItems").or_else(|| s.get("items").filter(|i| !i.is_array())).cloned()
            } else {
                s.get("items").cloned()
            }
            .unwrap_or_else(|| open.clone())
        };
        let (new_at, old_at) = (positional(new), positional(old));
        let (new_rest, old_rest) = (rest(new), rest(old));
        for index in 0..new_at.len().max(old_at.len()) {
            let n = new_at.get(index).unwrap_or(&new_rest);
            let o = old_at.get(index).unwrap_or(&old_rest);
            self.covers(n, o, &format!("{at}/items/{index}"))?;
        }
        self.covers(&new_rest, &old_rest, &format!("{at}/items"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> Schema {
        Schema { schema: text.to_owned(), schema_type: SchemaType::Json, references: Vec::new() }
    }

    fn proto(text: &str) -> Schema {
        Schema { schema: text.to_owned(), schema_type: SchemaType::Protobuf, references: Vec::new() }
    }

    fn none(_: &Reference) -> Result<Schema, RegistryError> {
        Err(RegistryError::new(404, 40402, "no references here"))
    }

    /// The error type `reader` reading `writer` fails with, or "" when it reads it.
    fn reading(writer: &Schema, reader: &Schema) -> String {
        match can_read(writer, reader, &none) {
            Ok(()) => String::new(),
            Err(e) => e.split('\'').nth(1).unwrap_or(&e).to_owned(),
        }
    }

    #[test]
    fn json_schemas_read_what_they_accept() {
        let open = json(r#"{"type":"object","properties":{"id":{"type":"integer"}}}"#);
        let closed = json(r#"{"type":"object","properties":{"id":{"type":"integer"}},"additionalProperties":false}"#);
        let closed_more = json(
            r#"{"type":"object","properties":{"id":{"type":"integer"},"name":{"type":"string"}},
                "additionalProperties":false}"#,
        );
        let open_more = json(r#"{"type":"object","properties":{"id":{"type":"integer"},"name":{"type":"string"}}}"#);
        // The same schema; anything to the empty schema.
        assert_eq!(reading(&open, &open), "");
        assert_eq!(reading(&open, &json("{}")), "");
        assert_eq!(reading(&json("{}"), &open), "TYPE_NARROWED");
        // A property added: to a closed model it is compatible; to an open one it is not.
        assert_eq!(reading(&closed, &closed_more), "");
        assert_eq!(reading(&open, &open_more), "PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL");
        // A property removed: an open reader takes it, a closed one does not.
        assert_eq!(reading(&open_more, &open), "");
        assert_eq!(reading(&closed_more, &closed), "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL");
        // Closing an open model narrows it.
        assert_eq!(reading(&open, &closed), "ADDITIONAL_PROPERTIES_NARROWED");
        // integer is read as number, not the other way.
        let number = json(r#"{"type":"object","properties":{"id":{"type":"number"}}}"#);
        assert_eq!(reading(&open, &number), "");
        assert_eq!(reading(&number, &open), "TYPE_NARROWED");
        let text = json(r#"{"type":"object","properties":{"id":{"type":"string"}}}"#);
        assert_eq!(reading(&open, &text), "TYPE_CHANGED");
        // A required property added.
        let required = json(r#"{"type":"object","properties":{"id":{"type":"integer"}},"required":["id"]}"#);
        assert_eq!(reading(&open, &required), "REQUIRED_ATTRIBUTE_ADDED");
        assert_eq!(reading(&required, &open), "");
        // Bounds and lists of values.
        assert_eq!(
            reading(&json(r#"{"type":"string","maxLength":5}"#), &json(r#"{"type":"string","maxLength":9}"#)),
            ""
        );
        assert_eq!(
            reading(&json(r#"{"type":"string","maxLength":9}"#), &json(r#"{"type":"string","maxLength":5}"#)),
            "MAXIMUM_DECREASED"
        );
        assert_eq!(reading(&json(r#"{"enum":["a","b"]}"#), &json(r#"{"enum":["a","b","c"]}"#)), "");
        assert_eq!(reading(&json(r#"{"enum":["a","b"]}"#), &json(r#"{"enum":["a"]}"#)), "ENUM_ARRAY_NARROWED");
    }

    #[test]
    fn json_schemas_compare_combinations_and_references() {
        // Kafka Connect's optional fields: a oneOf with null.
        let optional = json(r#"{"type":"object","properties":{"n":{"oneOf":[{"type":"null"},{"type":"integer"}]}}}"#);
        let plain = json(r#"{"type":"object","properties":{"n":{"type":"integer"}}}"#);
        assert_eq!(reading(&plain, &optional), "");
        assert_eq!(reading(&optional, &plain), "TYPE_CHANGED");
        // Local references, recursive ones included.
        let tree = r##"{"$ref":"#/definitions/node","definitions":{"node":{"type":"object",
            "properties":{"children":{"type":"array","items":{"$ref":"#/definitions/node"}}}}}}"##;
        assert_eq!(reading(&json(tree), &json(tree)), "");
        let leaf = json(r#"{"type":"object","properties":{"children":{"type":"array","items":{"type":"string"}}}}"#);
        assert_eq!(reading(&json(tree), &leaf), "TYPE_CHANGED");
    }

    #[test]
    fn json_schemas_are_compared_with_the_schemas_they_refer_to() {
        let address = |zip: &str| {
            json(&format!(
                r##"{{"type":"object","properties":{{"zip":{{"$ref":"#/$defs/zip"}}}},"$defs":{{"zip":{{"type":"{zip}"}}}}}}"##
            ))
        };
        let reference = |version| Reference { name: "address.json".into(), subject: "address".into(), version };
        let resolve = |r: &Reference| match r.version {
            1 => Ok(address("integer")),
            2 => Ok(address("number")),
            _ => Ok(address("string")),
        };
        let order = |version| Schema {
            references: vec![reference(version)],
            ..json(r#"{"type":"object","properties":{"ship":{"$ref":"address.json"}},"additionalProperties":false}"#)
        };
        assert_eq!(can_read(&order(1), &order(1), &resolve), Ok(()));
        // integer read as number (the referenced schema's own `$ref` followed), not as string.
        assert_eq!(can_read(&order(1), &order(2), &resolve), Ok(()));
        let changed = can_read(&order(1), &order(3), &resolve).unwrap_err();
        assert!(changed.contains("TYPE_CHANGED"), "{changed}");
    }

    #[test]
    fn protobuf_schemas_read_what_the_wire_carries() {
        let v1 = proto("syntax = \"proto3\"; package p; message M { int32 id = 1; string name = 2; }");
        let same = |fields: &str| proto(&format!("syntax = \"proto3\"; package p; message M {{ {fields} }}"));
        assert_eq!(reading(&v1, &v1), "");
        // New fields, renamed fields, removed fields, varints widened: the wire reads alike.
        assert_eq!(reading(&v1, &same("int32 id = 1; string name = 2; double price = 3;")), "");
        assert_eq!(reading(&v1, &same("int32 key = 1; string label = 2;")), "");
        assert_eq!(reading(&v1, &same("int32 id = 1;")), "");
        assert_eq!(reading(&v1, &same("int64 id = 1; bytes name = 2;")), "");
        // Another wire type, a string as a list of strings (fine) and of a number (not).
        assert_eq!(reading(&v1, &same("string id = 1; string name = 2;")), "FIELD_SCALAR_KIND_CHANGED");
        assert_eq!(reading(&v1, &same("int32 id = 1; repeated string name = 2;")), "");
        assert_eq!(reading(&v1, &same("repeated int32 id = 1; string name = 2;")), "FIELD_SCALAR_KIND_CHANGED");
        // A message field, a package, a message gone.
        let nested = |t: &str| {
            proto(&format!("syntax = \"proto3\"; package p; message A {{}} message B {{}} message M {{ {t} x = 1; }}"))
        };
        assert_eq!(reading(&nested("A"), &nested("B")), "FIELD_NAMED_TYPE_CHANGED");
        assert_eq!(reading(&nested("A"), &nested("int32")), "FIELD_KIND_CHANGED");
        assert_eq!(
            reading(&v1, &proto("syntax = \"proto3\"; package q; message M { int32 id = 1; }")),
            "PACKAGE_CHANGED"
        );
        let two = proto("syntax = \"proto3\"; package p; message M { int32 id = 1; } message N {}");
        assert_eq!(
            reading(&two, &proto("syntax = \"proto3\"; package p; message M { int32 id = 1; }")),
            "MESSAGE_REMOVED"
        );
        // Oneofs: one field into a new oneof is fine, two are not, nor one into an old oneof.
        assert_eq!(reading(&v1, &same("oneof o { int32 id = 1; } string name = 2;")), "");
        assert_eq!(reading(&v1, &same("oneof o { int32 id = 1; string name = 2; }")), "MULTIPLE_FIELDS_MOVED_TO_ONEOF");
        let with_oneof = same("oneof o { int32 id = 1; } string name = 2;");
        assert_eq!(
            reading(&with_oneof, &same("oneof o { int32 id = 1; string name = 2; }")),
            "FIELD_MOVED_TO_EXISTING_ONEOF"
        );
        assert_eq!(reading(&with_oneof, &v1), "ONEOF_FIELD_REMOVED");
        // proto2's required fields are neither added nor removed.
        let p2 = |fields: &str| proto(&format!("syntax = \"proto2\"; package p; message M {{ {fields} }}"));
        assert_eq!(
            reading(&p2("optional int32 id = 1;"), &p2("optional int32 id = 1; required int32 n = 2;")),
            "REQUIRED_FIELD_ADDED"
        );
        assert_eq!(reading(&p2("required int32 id = 1;"), &p2("")), "REQUIRED_FIELD_REMOVED");
        assert_eq!(reading(&p2("required int32 id = 1;"), &p2("optional int32 id = 1;")), "");
    }
}
