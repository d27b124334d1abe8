use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde_json::json;

use super::*;
use crate::format::{Format, FormatOptions, Registration, Subject};
use crate::log::{EmbeddedLog, Log};
use crate::registry::client::{Embedded, SchemaRegistry};
use crate::sql::ast::SqlType;

fn columns(fields: Vec<Field>) -> SchemaRef {
    Arc::new(Schema::new(fields))
}

fn rows(schema: &SchemaRef, rows: &[serde_json::Value]) -> RecordBatch {
    let json = crate::format::builtin(crate::format::JSON).codec(schema.clone(), FormatOptions::default()).unwrap();
    let texts: Vec<String> = rows.iter().map(|r| r.to_string()).collect();
    let payloads: Vec<&[u8]> = texts.iter().map(|t| t.as_bytes()).collect();
    json.decode(&payloads).unwrap().batch
}

fn as_json(schema: &SchemaRef, batch: &RecordBatch) -> Vec<serde_json::Value> {
    let json = crate::format::builtin(crate::format::JSON).codec(schema.clone(), FormatOptions::default()).unwrap();
    json.encode(batch).unwrap().into_iter().map(|b| serde_json::from_slice(&b.unwrap()).unwrap()).collect()
}

fn options(nullable: Option<Nullable>) -> FormatOptions {
    FormatOptions { subject: Some(Subject::new("t", false)), nullable, ..FormatOptions::default() }
}

fn sample() -> SchemaRef {
    columns(vec![
        Field::new("I", DataType::Int32, true),
        Field::new("L", DataType::Int64, true),
        Field::new("S", DataType::Utf8, true),
        Field::new("A", DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))), true),
        Field::new("ST", DataType::Struct(vec![Field::new("X", DataType::Int32, true)].into()), true),
        Field::new("TS", DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Millisecond, None), true),
    ])
}

#[test]
fn the_schema_of_columns_is_ksqldbs_and_compiles() {
    let text = schema_of(&sample(), None).unwrap();
    assert!(text.starts_with("syntax = \"proto3\";\n\nimport \"google/protobuf/timestamp.proto\";\n"), "{text}");
    assert!(text.contains("message ConnectDefault1 {\n  int32 I = 1;\n  int64 L = 2;\n  string S = 3;\n  repeated string A = 4;\n  ConnectDefault2 ST = 5;\n  google.protobuf.Timestamp TS = 6;\n"), "{text}");
    let pool = compile(&text).unwrap();
    assert_eq!(message_of(&pool, None).unwrap().name(), "ConnectDefault1");
    let optional = schema_of(&columns(vec![Field::new("I", DataType::Int32, true)]), Some(Nullable::Optional)).unwrap();
    assert!(optional.contains("optional int32 I = 1;"), "{optional}");
    let wrapped = schema_of(&columns(vec![Field::new("I", DataType::Int32, true)]), Some(Nullable::Wrapper)).unwrap();
    assert!(wrapped.contains("google.protobuf.Int32Value I = 1;"), "{wrapped}");
}

#[test]
fn without_a_registry_nulls_are_defaults_unless_the_schema_says_otherwise() {
    let schema = sample();
    let batch = rows(
        &schema,
        &[
            json!({"I": 1, "L": 2, "S": "s", "A": ["x"], "ST": {"X": 3}, "TS": 1700000000123i64}),
            json!({"I": null, "L": null, "S": null, "A": null, "ST": null, "TS": null}),
        ],
    );
    let plain = Protobuf::without_registry().codec(schema.clone(), options(None)).unwrap();
    let encoded = plain.encode(&batch).unwrap();
    let payloads: Vec<&[u8]> = encoded.iter().map(|b| b.as_deref().unwrap()).collect();
    let decoded = plain.decode(&payloads).unwrap();
    assert!(decoded.errors.is_empty(), "{:?}", decoded.errors);
    assert_eq!(
        as_json(&schema, &decoded.batch),
        vec![
            json!({"I": 1, "L": 2, "S": "s", "A": ["x"], "ST": {"X": 3}, "TS": 1700000000123i64}),
            json!({"I": 0, "L": 0, "S": "", "A": [], "ST": null, "TS": null}),
        ]
    );
    for nullable in [Nullable::Optional, Nullable::Wrapper] {
        let codec = Protobuf::without_registry().codec(schema.clone(), options(Some(nullable))).unwrap();
        let encoded = codec.encode(&batch).unwrap();
        let payloads: Vec<&[u8]> = encoded.iter().map(|b| b.as_deref().unwrap()).collect();
        let decoded = codec.decode(&payloads).unwrap();
        assert_eq!(
            as_json(&schema, &decoded.batch)[1],
            json!({"I": null, "L": null, "S": null, "A": [], "ST": null, "TS": null}),
            "{nullable:?}"
        );
    }
}

#[tokio::test]
async fn with_a_registry_records_are_framed_and_columns_inferred() {
    let dir = tempfile::tempdir().unwrap();
    let log: Arc<dyn Log> = Arc::new(EmbeddedLog::open(dir.path()).unwrap());
    let registry = Arc::new(Embedded::open(log).await.unwrap());
    let format = Protobuf::new(registry.clone());
    let schema = columns(vec![Field::new("I", DataType::Int32, true), Field::new("S", DataType::Utf8, true)]);
    let codec = format.codec(schema.clone(), options(None)).unwrap();
    codec.prepare(Registration::Sink).await.unwrap();
    let batch = rows(&schema, &[json!({"I": 7, "S": "x"})]);
    let encoded = codec.encode(&batch).unwrap();
    let bytes = encoded[0].as_deref().unwrap();
    let id = registry.latest("t-value").await.unwrap().unwrap().id;
    // Magic byte, schema id, message index 0, then field 1 (varint 7) and field 2 ("x").
    assert_eq!(bytes[..6], [0, 0, 0, 0, id as u8, 0]);
    assert_eq!(&bytes[6..], &[8, 7, 18, 1, b'x']);
    let decoded = codec.decode(&[bytes, b"\x01bad"]).unwrap();
    assert_eq!(decoded.errors, vec![(1, "Unknown magic byte!".to_owned())]);
    assert_eq!(decoded.schema_ids, Some(vec![id]));

    // A producer's schema with a second message, named by VALUE_SCHEMA_FULL_NAME.
    let text = "syntax = \"proto3\"; message A {int32 x = 1;} message B {float c1 = 1; uint32 c2 = 2; repeated string tags = 3; map<string, int64> m = 4; E e = 5; enum E {Z = 0; ONE = 1;}}";
    let schema = crate::registry::Schema { schema: text.into(), schema_type: SchemaType::Protobuf, references: vec![] };
    registry.register("p-value", schema).await.unwrap();
    let subject = Subject { full_name: Some("B".into()), ..Subject::new("p", false) };
    let inferred = format.infer_columns(&subject).await.unwrap().unwrap();
    let types: Vec<String> = inferred
        .fields()
        .iter()
        .map(|f| format!("{} {}", f.name(), SqlType::from_arrow(f.data_type()).unwrap()))
        .collect();
    assert_eq!(types, ["C1 DOUBLE", "C2 BIGINT", "TAGS ARRAY<STRING>", "M MAP<STRING, BIGINT>", "E STRING"]);
}

#[test]
fn message_indexes_are_read_as_confluent_writes_them() {
    assert_eq!(message_indexes(&[0, 8]), Some((vec![0], &[8u8][..])));
    // One index, 1 (zig-zag 2), then the message.
    assert_eq!(message_indexes(&[2, 2, 9]), Some((vec![1], &[9u8][..])));
    // Two indexes: a nested message.
    assert_eq!(message_indexes(&[4, 2, 4]), Some((vec![1, 2], &[][..])));
    // A negative count, or indexes cut short, are not indexes.
    assert_eq!(message_indexes(&[1]), None);
    assert_eq!(message_indexes(&[4, 2]), None);
}

#[tokio::test]
async fn a_schema_importing_another_subjects_schema_is_read_through_it() {
    let dir = tempfile::tempdir().unwrap();
    let log: Arc<dyn Log> = Arc::new(EmbeddedLog::open(dir.path()).unwrap());
    let registry = Arc::new(Embedded::open(log).await.unwrap());
    let proto = |text: &str, references| crate::registry::Schema {
        schema: text.into(),
        schema_type: SchemaType::Protobuf,
        references,
    };
    registry
        .register("event.proto", proto("syntax = \"proto3\"; message Event { int64 timestamp = 1; }", vec![]))
        .await
        .unwrap();
    let reference =
        crate::registry::Reference { name: "event.proto".into(), subject: "event.proto".into(), version: 1 };
    let text = "syntax = \"proto3\"; import \"event.proto\"; message Logistics { Event event = 1; }";
    registry.register("l-value", proto(text, vec![reference])).await.unwrap();
    let format = Protobuf::new(registry.clone());
    let inferred = format.infer_columns(&Subject::new("l", false)).await.unwrap().unwrap();
    assert_eq!(SqlType::from_arrow(inferred.field(0).data_type()).unwrap().to_string(), "STRUCT<`TIMESTAMP` BIGINT>");
}
