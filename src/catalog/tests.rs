use super::*;
use crate::sql::{Statement, parse_one};

fn plan(catalog: &Catalog, sql: &str) -> Result<Source, CatalogError> {
    let Statement::CreateSource(create) = parse_one(sql).unwrap() else { panic!("{sql}") };
    catalog.plan_source(&create, sql.to_owned())
}

fn message(result: Result<Source, CatalogError>) -> String {
    result.unwrap_err().0
}

#[test]
fn a_stream_becomes_a_source_with_an_arrow_schema() {
    let catalog = Catalog::default();
    let s = plan(
        &catalog,
        "CREATE STREAM pageviews (id STRING KEY, `viewTime` BIGINT, page STRING, h BYTES HEADER('trace')) \
         WITH (kafka_topic='pv', value_format='json', timestamp='viewTime')",
    )
    .unwrap();
    assert_eq!(s.name, "PAGEVIEWS");
    assert_eq!(s.topic, "pv");
    assert_eq!((s.key_format.name(), s.value_format.name()), ("KAFKA", "JSON"));
    let names: Vec<&str> = s.schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["ID", "viewTime", "PAGE", "H"]);
    assert_eq!(s.columns[0].role, ColumnRole::Key);
    assert_eq!(s.columns[3].role, ColumnRole::Header("trace".into()));
    assert_eq!(s.timestamp_column.as_deref(), Some("viewTime"));
}

#[test]
fn ksqldb_rules_are_enforced_with_its_messages() {
    let mut catalog = Catalog::default();
    assert!(
        message(plan(&catalog, "CREATE TABLE t (a INT) WITH (kafka_topic='t', value_format='JSON')"))
            .starts_with("Tables require a PRIMARY KEY")
    );
    assert!(
        message(plan(&catalog, "CREATE STREAM s (a INT PRIMARY KEY) WITH (kafka_topic='t', value_format='JSON')"))
            .contains("please use 'KEY' for streams")
    );
    assert!(
        message(plan(&catalog, "CREATE TABLE t (a INT KEY) WITH (kafka_topic='t', value_format='JSON')"))
            .contains("please use 'PRIMARY KEY' for tables")
    );
    assert!(message(plan(&catalog, "CREATE STREAM s (a INT) WITH (value_format='JSON')")).contains("KAFKA_TOPIC"));
    assert!(message(plan(&catalog, "CREATE STREAM s (a INT) WITH (kafka_topic='t')")).contains("VALUE_FORMAT"));
    assert!(
        message(plan(&catalog, "CREATE STREAM s (a INT) WITH (kafka_topic='t', format='JSON', value_format='JSON')"))
            .contains("FORMAT")
    );
    assert!(
        message(plan(&catalog, "CREATE STREAM s (a INT) WITH (kafka_topic='t', value_format='AVRO')"))
            .contains("schema registry")
    );
    assert!(
        message(plan(&catalog, "CREATE STREAM s (a INT) WITH (kafka_topic='t', value_format='XML')"))
            .contains("Unknown format")
    );
    assert!(
        message(plan(&catalog, "CREATE STREAM s (a INT) WITH (kafka_topic='t', value_format='JSON', colour='red')"))
            .contains("COLOUR")
    );
    assert!(
        message(plan(&catalog, "CREATE STREAM s (a INT, A STRING) WITH (kafka_topic='t', value_format='JSON')"))
            .contains("Duplicate column")
    );
    assert!(
        message(plan(&catalog, "CREATE STREAM s (k MAP<STRING, INT> KEY) WITH (kafka_topic='t', value_format='JSON')"))
            .starts_with("Map keys")
    );
    assert!(
        message(plan(&catalog, "CREATE STREAM s (h STRING HEADERS) WITH (kafka_topic='t', value_format='JSON')"))
            .contains("HEADER")
    );
    assert!(
        message(plan(&catalog, "CREATE STREAM s (a INT) WITH (kafka_topic='t', value_format='JSON', timestamp='b')"))
            .contains("TIMESTAMP column")
    );
    assert!(
        message(plan(&catalog, "CREATE STREAM s (a DECIMAL(50, 1)) WITH (kafka_topic='t', value_format='JSON')"))
            .contains("DECIMAL")
    );
    assert!(
        message(plan(&catalog, "CREATE STREAM s (a WHATEVER) WITH (kafka_topic='t', value_format='JSON')"))
            .contains("unknown type")
    );

    let s = plan(&catalog, "CREATE STREAM s (a INT) WITH (kafka_topic='t', value_format='JSON')").unwrap();
    catalog.add_source(s);
    assert!(
        message(plan(&catalog, "CREATE TABLE s (a INT PRIMARY KEY) WITH (kafka_topic='t', value_format='JSON')"))
            .contains("already exists")
    );
    assert!(
        plan(&catalog, "CREATE OR REPLACE STREAM s (a INT, b INT) WITH (kafka_topic='t', value_format='JSON')").is_ok()
    );
}

#[test]
fn declared_types_resolve_in_columns() {
    let mut catalog = Catalog::default();
    catalog.add_type("ADDRESS".into(), SqlType::Struct(vec![("street".into(), SqlType::String)])).unwrap();
    assert!(catalog.add_type("ADDRESS".into(), SqlType::Int).is_err());
    let s = plan(&catalog, "CREATE STREAM s (home address) WITH (kafka_topic='t', value_format='JSON')").unwrap();
    assert!(matches!(s.columns[0].data_type, DataType::Struct(_)));
    assert!(catalog.remove_type("ADDRESS").is_some());
    assert!(!catalog.has_type("ADDRESS"));
}
