use std::sync::Arc;

use super::*;
use crate::log::EmbeddedLog;

const V1: &str = r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"long"}]}"#;
const V2: &str = r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"long"},
    {"name":"item","type":"string","default":""}]}"#;

fn avro(text: &str) -> Schema {
    Schema { schema: text.to_owned(), schema_type: SchemaType::Avro, references: Vec::new() }
}

async fn open(dir: &std::path::Path) -> Registry {
    let log: Arc<dyn Log> = Arc::new(EmbeddedLog::open(dir).unwrap());
    Registry::open(log).await.unwrap()
}

#[tokio::test]
async fn a_schema_has_one_id_and_subjects_number_their_versions() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = open(dir.path()).await;
    let first = registry.register("orders-value", avro(V1)).await.unwrap();
    // The same schema again (other whitespace): the same id, no new version.
    let spaced = V1.replace(',', ", ");
    assert_eq!(registry.register("orders-value", avro(&spaced)).await.unwrap(), first);
    assert_eq!(registry.versions("orders-value").unwrap(), [1]);
    let second = registry.register("orders-value", avro(V2)).await.unwrap();
    assert_ne!(second, first);
    assert_eq!(registry.versions("orders-value").unwrap(), [1, 2]);
    // Another subject with a known schema shares its id, at its own version 1.
    assert_eq!(registry.register("archive-value", avro(V1)).await.unwrap(), first);
    assert_eq!(registry.subjects(), ["archive-value", "orders-value"]);
    let latest = registry.version("orders-value", Version::Latest).unwrap();
    assert_eq!((latest.version, latest.id), (2, second));
    assert_eq!(registry.lookup("orders-value", &avro(V1)).unwrap().version, 1);
    assert_eq!(registry.uses_of(first).unwrap(), [("archive-value".to_owned(), 1), ("orders-value".to_owned(), 1)]);
    assert_eq!(registry.schema(second).unwrap().schema, V2);
}

#[tokio::test]
async fn errors_carry_confluents_codes() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = open(dir.path()).await;
    assert_eq!(registry.versions("nope").unwrap_err().code, 40401);
    registry.register("s", avro(V1)).await.unwrap();
    assert_eq!(registry.version("s", Version::Number(7)).unwrap_err().code, 40402);
    assert_eq!(registry.lookup("s", &avro(V2)).unwrap_err().code, 40403);
    assert_eq!(registry.schema(99).unwrap_err().code, 40403);
    assert_eq!(registry.register("s", avro("{not json")).await.unwrap_err().code, 42201);
    assert_eq!(Version::parse("0").unwrap_err().code, 42202);
    assert_eq!(registry.set_level(None, "SIDEWAYS").await.unwrap_err().code, 42203);
    registry.set_mode(Some("s"), "READONLY").await.unwrap();
    assert_eq!(registry.register("s", avro(V2)).await.unwrap_err().code, 42205);
}

#[tokio::test]
async fn the_registry_is_back_after_a_restart_deletions_and_levels_included() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = {
        let mut registry = open(dir.path()).await;
        let first = registry.register("s", avro(V1)).await.unwrap();
        let second = registry.register("s", avro(V2)).await.unwrap();
        registry.register("gone", avro(V1)).await.unwrap();
        assert_eq!(registry.delete_subject("gone").await.unwrap(), [1]);
        registry.set_level(Some("s"), "full").await.unwrap();
        (first, second)
    };
    let mut registry = open(dir.path()).await;
    assert_eq!(registry.subjects(), ["s"]);
    assert_eq!(registry.versions("s").unwrap(), [1, 2]);
    assert_eq!(registry.version("s", Version::Number(2)).unwrap().id, second);
    // A deleted subject's schema stays readable by id.
    assert_eq!(registry.schema(first).unwrap().schema, V1);
    assert_eq!(registry.level(Some("s")), "FULL");
    assert_eq!(registry.level(Some("other")), "BACKWARD");
    // Ids go on from the highest.
    let third = registry.register("t", avro(r#"{"type":"string"}"#)).await.unwrap();
    assert_eq!(third, second + 1);
}

#[tokio::test]
async fn an_incompatible_schema_is_refused_at_the_subjects_level() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = open(dir.path()).await;
    registry.register("s", avro(V1)).await.unwrap();
    // A field without a default cannot read the records written before it (BACKWARD).
    let without_default = r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"long"},
        {"name":"qty","type":"int"}]}"#;
    let refused = registry.register("s", avro(without_default)).await.unwrap_err();
    assert_eq!((refused.status, refused.code), (409, 409), "{refused}");
    assert!(refused.message.contains("incompatible with an earlier schema for subject \"s\""), "{refused}");
    assert!(!registry.compatible("s", Version::Latest, &avro(without_default)).unwrap());
    // With a default it can.
    assert!(registry.compatible("s", Version::Latest, &avro(V2)).unwrap());
    registry.register("s", avro(V2)).await.unwrap();
    // FORWARD: the old schema must read the new one's records; removing a field without a
    // default breaks that.
    registry.set_level(Some("s"), "FORWARD").await.unwrap();
    let fewer = r#"{"type":"record","name":"Order","fields":[{"name":"item","type":"string","default":""}]}"#;
    assert_eq!(registry.register("s", avro(fewer)).await.unwrap_err().code, 409);
    registry.set_level(Some("s"), "NONE").await.unwrap();
    registry.register("s", avro(fewer)).await.unwrap();
    assert_eq!(registry.versions("s").unwrap(), [1, 2, 3]);
    // Not Avro at all: refused as invalid.
    assert_eq!(registry.register("x", avro(r#"{"type":"no-such-type"}"#)).await.unwrap_err().code, 42201);
}

#[tokio::test]
async fn protobuf_and_json_schemas_are_checked_by_their_own_rules() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = open(dir.path()).await;
    let of = |schema_type, text: &str| Schema { schema: text.to_owned(), schema_type, references: Vec::new() };
    // PROTOBUF: a field's wire type may not change; a new field is fine.
    let proto = |fields: &str| of(SchemaType::Protobuf, &format!("syntax = \"proto3\"; message M {{ {fields} }}"));
    registry.register("p", proto("int32 id = 1;")).await.unwrap();
    let refused = registry.register("p", proto("string id = 1;")).await.unwrap_err();
    assert_eq!(refused.code, 409, "{refused}");
    assert!(refused.message.contains("FIELD_SCALAR_KIND_CHANGED"), "{refused}");
    registry.register("p", proto("int64 id = 1; string name = 2;")).await.unwrap();
    // Not PROTOBUF at all: refused as invalid.
    assert_eq!(registry.register("q", proto("int32 id = ;")).await.unwrap_err().code, 42201);
    // JSON: closed content models take new optional properties; open ones do not.
    let json = |text: &str| of(SchemaType::Json, text);
    let closed = r#"{"type":"object","properties":{"id":{"type":"integer"}},"additionalProperties":false}"#;
    registry.register("j", json(closed)).await.unwrap();
    let more = r#"{"type":"object","properties":{"id":{"type":"integer"},"name":{"type":"string"}},
        "additionalProperties":false}"#;
    registry.register("j", json(more)).await.unwrap();
    let open_more = r#"{"type":"object","properties":{"id":{"type":"integer"},"name":{"type":"string"},
        "n":{"type":"number"}}}"#;
    registry.register("j", json(open_more)).await.unwrap();
    let opener = r#"{"type":"object","properties":{"id":{"type":"integer"},"name":{"type":"string"},
        "n":{"type":"number"},"m":{"type":"number"}}}"#;
    let refused = registry.register("j", json(opener)).await.unwrap_err();
    assert!(refused.message.contains("PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"), "{refused}");
    // Another kind of schema under the same subject.
    assert_eq!(registry.register("j", avro(V1)).await.unwrap_err().code, 409);
}
