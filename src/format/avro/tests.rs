use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, Int32Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde_json::json;

use super::*;
use crate::format::{Format, FormatOptions, Registration, Subject};
use crate::log::{EmbeddedLog, Log};
use crate::registry::client::{Embedded, SchemaRegistry};
use crate::sql::ast::SqlType;

async fn registry(dir: &std::path::Path) -> Arc<Embedded> {
    let log: Arc<dyn Log> = Arc::new(EmbeddedLog::open(dir).unwrap());
    Arc::new(Embedded::open(log).await.unwrap())
}

/// The Arrow schema of columns written as ksqlDB's SQL.
fn columns(sql: &[(&str, &str)]) -> SchemaRef {
    let fields: Vec<Field> = sql
        .iter()
        .map(|(name, ty)| {
            let parsed = crate::sql::parse_one(&format!(
                "CREATE STREAM s (x {ty}) WITH (kafka_topic='t', value_format='JSON');"
            ))
            .unwrap();
            let crate::sql::Statement::CreateSource(create) = parsed else { panic!() };
            let sql_type: SqlType = create.columns[0].data_type.clone();
            Field::new(*name, sql_type.to_arrow(&|_| None).unwrap(), true)
        })
        .collect();
    Arc::new(Schema::new(fields))
}

fn options(topic: &str, key: bool, wrap: bool) -> FormatOptions {
    FormatOptions { wrap_single_value: wrap, subject: Some(Subject::new(topic, key)), ..FormatOptions::default() }
}

/// Rows from JSON objects, through the JSON format.
fn rows(schema: &SchemaRef, rows: &[serde_json::Value]) -> RecordBatch {
    let json = crate::format::builtin(crate::format::JSON).codec(schema.clone(), FormatOptions::default()).unwrap();
    let texts: Vec<String> = rows.iter().map(|r| r.to_string()).collect();
    let payloads: Vec<&[u8]> = texts.iter().map(|t| t.as_bytes()).collect();
    let decoded = json.decode(&payloads).unwrap();
    assert!(decoded.errors.is_empty(), "{:?}", decoded.errors);
    decoded.batch
}

#[tokio::test]
async fn every_column_type_goes_through_avro_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path()).await;
    let format = Avro::new(registry.clone());
    let schema = columns(&[
        ("I", "INT"),
        ("B", "BIGINT"),
        ("D", "DOUBLE"),
        ("S", "STRING"),
        ("F", "BOOLEAN"),
        ("DEC", "DECIMAL(4, 2)"),
        ("TS", "TIMESTAMP"),
        ("DT", "DATE"),
        ("TM", "TIME"),
        ("BY", "BYTES"),
        ("A", "ARRAY<STRING>"),
        ("M", "MAP<STRING, INT>"),
        ("ST", "STRUCT<X INT, `y` STRING>"),
    ]);
    let codec = format.codec(schema.clone(), options("t", false, true)).unwrap();
    codec.prepare(Registration::Sink).await.unwrap();
    let batch = rows(
        &schema,
        &[
            json!({"I": 1, "B": 12345678901i64, "D": 2.5, "S": "a", "F": true, "DEC": 65.21, "TS": 1700000000123i64,
                   "DT": 19000, "TM": 3600000, "BY": "AQI=", "A": ["x", null], "M": {"k": 1, "n": null},
"ST": {"X": 3, "y": "why"}}),
            json!({"I": null, "S": null, "A": null, "ST": null}),
        ],
    );
    let encoded = codec.encode(&batch).unwrap();
    assert_eq!(encoded.len(), 2);
    let id = registry.latest("t-value").await.unwrap().unwrap().id;
    for bytes in encoded.iter().flatten() {
        assert_eq!(bytes[0], 0, "Confluent's magic byte");
        assert_eq!(u32::from_be_bytes(bytes[1..5].try_into().unwrap()), id);
    }
    let payloads: Vec<&[u8]> = encoded.iter().map(|b| b.as_deref().unwrap()).collect();
    let decoded = codec.decode(&payloads).unwrap();
    assert!(decoded.errors.is_empty(), "{:?}", decoded.errors);
    assert_eq!(decoded.batch, batch);
    assert_eq!(decoded.schema_ids, Some(vec![id, id]));
    // ksqlDB's schema: a record of optional fields.
    let registered: serde_json::Value =
        serde_json::from_str(&registry.latest("t-value").await.unwrap().unwrap().schema.schema).unwrap();
    assert_eq!(registered["name"], "KsqlDataSourceSchema");
    assert_eq!(registered["namespace"], "io.confluent.ksql.avro_schemas");
    assert_eq!(registered["fields"][0], json!({"name": "I", "type": ["null", "int"], "default": null}));
}

#[tokio::test]
async fn a_single_key_is_a_bare_datum_and_a_null_one_no_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path()).await;
    let format = Avro::new(registry.clone());
    let schema = columns(&[("K", "INT")]);
    let codec = format.codec(schema.clone(), options("t", true, false)).unwrap();
    codec.prepare(Registration::Sink).await.unwrap();
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(Int32Array::from(vec![Some(10), None]))]).unwrap();
    let encoded = codec.encode(&batch).unwrap();
    // Avro's int 10 is the zig-zag varint 20.
    assert_eq!(encoded[0].as_deref(), Some(&[0, 0, 0, 0, 1, 20][..]));
    assert_eq!(encoded[1], None);
    assert_eq!(registry.latest("t-key").await.unwrap().unwrap().schema.schema, "\"int\"");
    let decoded = codec.decode(&[encoded[0].as_deref().unwrap()]).unwrap();
    assert_eq!(decoded.batch.column(0).as_primitive::<datafusion::arrow::datatypes::Int32Type>().value(0), 10);
}

/// Registers `schema` (Avro JSON) under `subject`; its id.
async fn register(registry: &Embedded, subject: &str, schema: serde_json::Value) -> u32 {
    let schema = crate::registry::Schema {
        schema: schema.to_string(),
        schema_type: crate::registry::SchemaType::Avro,
        references: Vec::new(),
    };
    registry.register(subject, schema).await.unwrap()
}

/// A record of `fields` written with schema `id`, in Confluent's framing (by apache-avro).
fn written(id: u32, schema: &serde_json::Value, fields: Vec<(&str, apache_avro::types::Value)>) -> Vec<u8> {
    let schema = apache_avro::Schema::parse_str(&schema.to_string()).unwrap();
    let record = apache_avro::types::Value::Record(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect());
    let mut bytes = vec![0];
    bytes.extend_from_slice(&id.to_be_bytes());
    bytes.extend(apache_avro::to_avro_datum(&schema, record).unwrap());
    bytes
}

#[tokio::test]
async fn records_of_older_and_newer_schemas_read_into_the_same_columns() {
    use apache_avro::types::Value as A;
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path()).await;
    let v1 = json!({"type": "record", "name": "r", "fields": [{"name": "id", "type": "int"}]});
    let v2 = json!({"type": "record", "name": "r", "fields": [
        {"name": "id", "type": "int"},
        {"name": "name", "type": ["null", "string"], "default": null},
        {"name": "extra", "type": "long", "default": 0}
    ]});
    let id1 = register(&registry, "t-value", v1.clone()).await;
    let id2 = register(&registry, "t-value", v2.clone()).await;
    assert_ne!(id1, id2);
    let format = Avro::new(registry.clone());
    // The columns are the newer schema's but one, in capitals.
    let schema = columns(&[("ID", "BIGINT"), ("NAME", "STRING")]);
    let codec = format.codec(schema.clone(), options("t", false, true)).unwrap();
    let old = written(id1, &v1, vec![("id", A::Int(1))]);
    let new = written(
        id2,
        &v2,
        vec![("id", A::Int(2)), ("name", A::Union(1, Box::new(A::String("b".into())))), ("extra", A::Long(9))],
    );
    let decoded = codec.decode(&[&old, &new, &old]).unwrap();
    assert!(decoded.errors.is_empty(), "{:?}", decoded.errors);
    assert_eq!(decoded.schema_ids, Some(vec![id1, id2, id1]));
    let ids: Vec<i64> =
        decoded.batch.column(0).as_primitive::<datafusion::arrow::datatypes::Int64Type>().values().to_vec();
    assert_eq!(ids, vec![1, 2, 1]);
    let names = decoded.batch.column(1).as_any().downcast_ref::<StringArray>().unwrap();
    assert_eq!(names.iter().collect::<Vec<_>>(), vec![None, Some("b"), None]);
}

#[tokio::test]
async fn a_codec_reading_some_columns_skips_the_others_and_reads_the_same_rows() {
    use apache_avro::types::Value as A;
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path()).await;
    let v1 = json!({"type": "record", "name": "r", "fields": [
        {"name": "id", "type": "long"},
        {"name": "url", "type": "string"},
        {"name": "price", "type": "long"},
        {"name": "note", "type": "string"},
        {"name": "unread", "type": "string"}
    ]});
    let id = register(&registry, "t-value", v1.clone()).await;
    // NOTE is read as an INT: its text is cast (null where it is no number) whether the
    // query uses it or not, as the whole codec does.
    let schema = columns(&[("ID", "BIGINT"), ("URL", "STRING"), ("PRICE", "BIGINT"), ("NOTE", "INT")]);
    let codec = Avro::new(registry.clone()).codec(schema.clone(), options("t", false, true)).unwrap();
    assert!(codec.reading_only(&[true, true, true, true]).is_none(), "nothing to skip");
    let reading = codec.reading_only(&[false, false, true, false]).unwrap();
    assert_eq!(reading.schema(), &schema);
    let record = |id: i64, note: &str| {
        written(
            id as u32,
            &v1,
            vec![
                ("id", A::Long(id)),
                ("url", A::String(format!("https://example.com/{id}"))),
                ("price", A::Long(id * 10)),
                ("note", A::String(note.into())),
                ("unread", A::String("x".into())),
            ],
        )
    };
    let with_id = |mut bytes: Vec<u8>| {
        bytes[1..5].copy_from_slice(&id.to_be_bytes());
        bytes
    };
    let (one, two, bad) = (with_id(record(1, "7")), with_id(record(2, "8")), with_id(record(3, "eight")));
    let truncated = &one[..one.len() - 3];
    // From several threads at once, each with a decoder of its own.
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                let decoded = reading.decode(&[&one, &bad, truncated, &two]).unwrap();
                let failed: Vec<usize> = decoded.errors.iter().map(|(i, _)| *i).collect();
                assert_eq!(failed, vec![2], "{:?}", decoded.errors);
                let batch = &decoded.batch;
                assert_eq!(batch.num_rows(), 3);
                let prices = batch.column(2).as_primitive::<datafusion::arrow::datatypes::Int64Type>();
                assert_eq!(prices.values().to_vec(), vec![10, 30, 20]);
                assert_eq!(batch.column(0).null_count(), 3, "ID is skipped");
                assert_eq!(batch.column(1).null_count(), 3, "URL is skipped");
                let notes = batch.column(3).as_primitive::<datafusion::arrow::datatypes::Int32Type>();
                assert_eq!(notes.iter().collect::<Vec<_>>(), vec![Some(7), None, Some(8)], "NOTE is read");
            });
        }
    });
    // The whole codec reads every column, and the same rows.
    let decoded = codec.decode(&[&one, &bad, truncated, &two]).unwrap();
    assert_eq!(decoded.errors.iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![2]);
    assert_eq!(decoded.batch.column(1).as_string::<i32>().value(0), "https://example.com/1");
    assert_eq!(decoded.batch.column(3).null_count(), 1);
}

#[tokio::test]
async fn bad_records_fail_alone() {
    use apache_avro::types::Value as A;
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path()).await;
    let v1 = json!({"type": "record", "name": "r", "fields": [{"name": "s", "type": "string"}]});
    let id = register(&registry, "t-value", v1.clone()).await;
    let codec = Avro::new(registry.clone()).codec(columns(&[("S", "STRING")]), options("t", false, true)).unwrap();
    let good = written(id, &v1, vec![("s", A::String("hello".into()))]);
    let truncated = &good[..good.len() - 2];
    let unknown = [&[0u8, 0, 0, 0, 99][..], &good[5..]].concat();
    let decoded = codec.decode(&[&good, b"{\"s\": 1}", truncated, &unknown, &[0, 0], &good]).unwrap();
    let bad: Vec<usize> = decoded.errors.iter().map(|(i, _)| *i).collect();
    assert_eq!(bad, vec![1, 2, 3, 4]);
    assert!(decoded.errors[0].1.contains("Unknown magic byte"), "{:?}", decoded.errors);
    assert!(decoded.errors[2].1.contains("99"), "{:?}", decoded.errors);
    assert_eq!(decoded.batch.num_rows(), 2);
    assert_eq!(decoded.schema_ids, Some(vec![id, id]));
}

#[tokio::test]
async fn columns_are_inferred_from_the_latest_schema() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path()).await;
    register(
        &registry,
        "t-value",
        json!({"type": "record", "name": "r", "fields": [
            {"name": "c1", "type": "boolean"},
            {"name": "c2", "type": {"type": "enum", "name": "Suit", "symbols": ["A", "B"]}},
            {"name": "c3", "type": {"type": "record", "name": "n", "fields": [{"name": "f1", "type": "int"}]}},
            {"name": "c4", "type": "float"},
            {"name": "c5", "type": {"type": "long", "logicalType": "timestamp-millis"}}
        ]}),
    )
    .await;
    register(&registry, "t-key", json!("long")).await;
    let format = Avro::new(registry.clone());
    let inferred = format.infer_columns(&Subject::new("t", false)).await.unwrap().unwrap();
    let types: Vec<(String, String)> = inferred
        .fields()
        .iter()
        .map(|f| (f.name().clone(), SqlType::from_arrow(f.data_type()).unwrap().to_string()))
        .collect();
    assert_eq!(
        types,
        vec![
            ("C1".into(), "BOOLEAN".into()),
            ("C2".into(), "STRING".into()),
            ("C3".into(), "STRUCT<`F1` INTEGER>".into()),
            ("C4".into(), "DOUBLE".into()),
            ("C5".into(), "TIMESTAMP".into()),
        ]
    );
    let key = format.infer_columns(&Subject::new("t", true)).await.unwrap().unwrap();
    assert_eq!(key.field(0).name(), "ROWKEY");
    assert_eq!(key.field(0).data_type(), &DataType::Int64);
    assert!(format.infer_columns(&Subject::new("other", false)).await.unwrap().is_none());
}

#[tokio::test]
async fn a_sinks_schema_incompatible_with_the_subjects_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry(dir.path()).await;
    register(&registry, "t-value", json!({"type": "record", "name": "r", "fields": [{"name": "A", "type": "int"}]}))
        .await;
    let codec = Avro::new(registry.clone()).codec(columns(&[("A", "STRING")]), options("t", false, true)).unwrap();
    let refused = codec.prepare(Registration::Sink).await.unwrap_err();
    assert!(refused.0.contains("Could not register schema for topic: t"), "{refused}");
    // A source's schema is not registered over an existing one.
    codec.prepare(Registration::Source).await.unwrap();
}

#[tokio::test]
async fn columns_avro_cannot_name_or_hold_are_refused_with_ksqldbs_messages() {
    let dir = tempfile::tempdir().unwrap();
    let format = Avro::new(registry(dir.path()).await);
    let refused = |schema: SchemaRef, options: FormatOptions| format.codec(schema, options).unwrap_err().0;
    assert_eq!(
        refused(columns(&[("M", "MAP<INT, STRING>")]), options("t", false, true)),
        "Avro only supports MAPs with STRING keys"
    );
    assert_eq!(
        refused(columns(&[("1A", "INT")]), options("t", false, true)),
        "Schema is not compatible with Avro: Illegal initial character: 1A"
    );
    let unnamed = FormatOptions { full_name: Some(" ".into()), ..options("t", false, true) };
    assert!(refused(columns(&[("A", "INT")]), unnamed).starts_with("fullSchemaName cannot be empty"));
}
