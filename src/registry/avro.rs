//! AVRO schemas that refer to other subjects' schemas (Confluent's schema references): a named
//! type defined in a referenced schema is used by its name. Readers and writers that take one
//! self-contained schema (`arrow-avro`, `apache-avro`) get the schema with each referenced
//! type's definition put where it is first used, as Avro's own parsing of several schemas
//! together would resolve it.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::{Reference, RegistryError, Schema};

/// Avro's primitive type names, which are never references.
const PRIMITIVES: [&str; 8] = ["null", "boolean", "int", "long", "float", "double", "bytes", "string"];

/// `schema` as one self-contained Avro schema: the named types it takes from the schemas it
/// refers to (and those from theirs), found by `resolve`, defined where first used.
pub fn self_contained(
    schema: &Schema,
    resolve: impl Fn(&Reference) -> Result<Schema, RegistryError>,
) -> Result<Value, String> {
    let parse = |text: &str| serde_json::from_str::<Value>(text).map_err(|e| format!("not an Avro schema: {e}"));
    let main = parse(&schema.schema)?;
    if schema.references.is_empty() {
        return Ok(main);
    }
    // Every named type the referenced schemas define, by full name.
    let mut named: BTreeMap<String, Value> = BTreeMap::new();
    for (_, found) in super::referenced_schemas(schema, resolve).map_err(|e| e.to_string())? {
        collect_named(&parse(&found.schema)?, "", &mut named);
    }
    let mut defined = BTreeSet::new();
    Ok(inline(&main, "", &named, &mut defined))
}

/// The full name of type `name` in namespace `namespace`.
fn full_name(name: &str, namespace: &str) -> String {
    if name.contains('.') || namespace.is_empty() { name.to_owned() } else { format!("{namespace}.{name}") }
}

/// The namespace a named type's definition sets for what it holds.
fn namespace_of(definition: &Map<String, Value>, enclosing: &str) -> String {
    let name = definition.get("name").and_then(Value::as_str).unwrap_or_default();
    match name.rsplit_once('.') {
        Some((namespace, _)) => namespace.to_owned(),
        None => definition.get("namespace").and_then(Value::as_str).unwrap_or(enclosing).to_owned(),
    }
}

/// Adds the named types `schema` defines (records, enums, fixed, nested ones too) to `named`,
/// each with its namespace made explicit so that it means the same wherever it is put.
fn collect_named(schema: &Value, namespace: &str, named: &mut BTreeMap<String, Value>) {
    match schema {
        Value::Array(union) => union.iter().for_each(|member| collect_named(member, namespace, named)),
        Value::Object(definition) => {
            let inner = namespace_of(definition, namespace);
            if let Some(name) = definition.get("name").and_then(Value::as_str)
                && matches!(definition.get("type").and_then(Value::as_str), Some("record" | "error" | "enum" | "fixed"))
            {
                let mut explicit = definition.clone();
                let short = name.rsplit('.').next().unwrap_or(name).to_owned();
                explicit.insert("name".into(), Value::String(short.clone()));
                if !inner.is_empty() {
                    explicit.insert("namespace".into(), Value::String(inner.clone()));
                }
                named.entry(full_name(&short, &inner)).or_insert(Value::Object(explicit));
            }
            for key in ["type", "items", "values"] {
                if let Some(held) = definition.get(key).filter(|v| !v.is_string()) {
                    collect_named(held, &inner, named);
                }
            }
            if let Some(Value::Array(fields)) = definition.get("fields") {
                fields.iter().for_each(|field| collect_named(&field["type"], &inner, named));
            }
        }
        _ => {}
    }
}

/// `schema` with the first use of each of `named`'s types (not defined before, in `defined`)
/// replaced by its definition.
fn inline(schema: &Value, namespace: &str, named: &BTreeMap<String, Value>, defined: &mut BTreeSet<String>) -> Value {
    match schema {
        Value::String(name) if !PRIMITIVES.contains(&name.as_str()) => {
            let candidates = [full_name(name, namespace), name.clone()];
            for candidate in candidates {
                if defined.contains(&candidate) {
                    return schema.clone();
                }
                if let Some(definition) = named.get(&candidate) {
                    defined.insert(candidate);
                    return inline(definition, namespace, named, defined);
                }
            }
            schema.clone()
        }
        Value::Array(union) => Value::Array(union.iter().map(|m| inline(m, namespace, named, defined)).collect()),
        Value::Object(definition) => {
            let inner = namespace_of(definition, namespace);
            let mut out = definition.clone();
            if let Some(name) = definition.get("name").and_then(Value::as_str)
                && definition.get("type").and_then(Value::as_str).is_some_and(|t| t != "array" && t != "map")
            {
                defined.insert(full_name(name.rsplit('.').next().unwrap_or(name), &inner));
            }
            for key in ["type", "items", "values"] {
                if let Some(held) = definition.get(key) {
                    out.insert(key.into(), inline(held, &inner, named, defined));
                }
            }
            if let Some(Value::Array(fields)) = definition.get("fields") {
                let fields = fields
                    .iter()
                    .map(|field| {
                        let mut field = field.clone();
                        if let Some(held) = field.get("type").cloned() {
                            field["type"] = inline(&held, &inner, named, defined);
                        }
                        field
                    })
                    .collect();
                out.insert("fields".into(), Value::Array(fields));
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::SchemaType;

    #[test]
    fn referenced_types_are_defined_where_first_used() {
        let address = Schema {
            schema:
                r#"{"type":"record","name":"Address","namespace":"shop","fields":[{"name":"city","type":"string"}]}"#
                    .into(),
            schema_type: SchemaType::Avro,
            references: Vec::new(),
        };
        let reference = Reference { name: "shop.Address".into(), subject: "address".into(), version: 1 };
        let order = Schema {
            schema: r#"{"type":"record","name":"Order","namespace":"shop","fields":[
                {"name":"ship","type":"Address"},{"name":"bill","type":["null","shop.Address"]}]}"#
                .into(),
            schema_type: SchemaType::Avro,
            references: vec![reference.clone()],
        };
        let resolve = |r: &Reference| {
            if *r == reference { Ok(address.clone()) } else { Err(RegistryError::new(404, 40402, "no")) }
        };
        let whole = self_contained(&order, resolve).unwrap();
        // Defined at its first use, named at the second.
        assert_eq!(whole["fields"][0]["type"]["fields"][0]["name"], "city");
        assert_eq!(whole["fields"][1]["type"][1], "shop.Address");
        let parsed = apache_avro::Schema::parse(&whole).unwrap();
        assert!(matches!(parsed, apache_avro::Schema::Record(_)));
        // A reference that is not there.
        let missing = Schema { references: vec![Reference { version: 9, ..reference.clone() }], ..order.clone() };
        assert!(self_contained(&missing, resolve).is_err());
    }
}
