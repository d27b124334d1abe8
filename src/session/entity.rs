//! The entities ksqlDB's REST API answers statements with (`{"@type":"streams",…}`), built
//! beside the command line's text of the same results (see [`StatementResult::Entity`]).
//! The server adds `statementText` and `warnings` to each.

use serde_json::{Value, json};

use super::StatementResult;
use crate::catalog::{ColumnRole, Source};
use crate::sql::ast::{SourceKind, SqlType};

/// A column type as ksqlDB's REST API describes it: `{"type":"ARRAY","fields":null,"memberSchema":{…}}`.
pub fn schema(sql_type: &SqlType) -> Value {
    let (name, fields, member) = match sql_type {
        SqlType::Boolean => ("BOOLEAN", Value::Null, Value::Null),
        SqlType::Int => ("INTEGER", Value::Null, Value::Null),
        SqlType::Bigint => ("BIGINT", Value::Null, Value::Null),
        SqlType::Double => ("DOUBLE", Value::Null, Value::Null),
        SqlType::Decimal { precision, scale } => {
            return json!({"type": "DECIMAL", "fields": null, "memberSchema": null,
                          "parameters": {"precision": precision, "scale": scale}});
        }
        SqlType::String => ("STRING", Value::Null, Value::Null),
        SqlType::Bytes => ("BYTES", Value::Null, Value::Null),
        SqlType::Timestamp => ("TIMESTAMP", Value::Null, Value::Null),
        SqlType::Date => ("DATE", Value::Null, Value::Null),
        SqlType::Time => ("TIME", Value::Null, Value::Null),
        SqlType::Array(item) => ("ARRAY", Value::Null, schema(item)),
        SqlType::Map(_, value) => ("MAP", Value::Null, schema(value)),
        SqlType::Struct(members) => (
            "STRUCT",
            Value::Array(members.iter().map(|(name, t)| json!({"name": name.value, "schema": schema(t)})).collect()),
            Value::Null,
        ),
        SqlType::Custom(name) => return json!({"type": name.value, "fields": null, "memberSchema": null}),
    };
    json!({"type": name, "fields": fields, "memberSchema": member})
}

/// One source in `SHOW STREAMS` / `SHOW TABLES`.
pub fn source_summary(source: &Source) -> Value {
    json!({
        "type": source.kind.keyword(),
        "name": source.name,
        "topic": source.topic,
        "keyFormat": source.key_format.name(),
        "valueFormat": source.value_format.name(),
        "isWindowed": source.window().is_some(),
    })
}

/// `SHOW STREAMS` or `SHOW TABLES`.
pub fn sources<'a>(kind: SourceKind, sources: impl Iterator<Item = &'a Source>) -> Value {
    let (tag, list) = match kind {
        SourceKind::Stream => ("streams", "streams"),
        SourceKind::Table => ("tables", "tables"),
    };
    json!({"@type": tag, list: sources.map(source_summary).collect::<Vec<_>>()})
}

/// `DESCRIBE [EXTENDED] source`: its columns, queries, formats and topic.
pub fn source_description(
    source: &Source,
    reading: &[String],
    writing: &[String],
    partitions: Option<u32>,
    extended: bool,
) -> Value {
    let fields: Vec<Value> = source
        .columns
        .iter()
        .map(|c| {
            let mut field = json!({"name": c.name, "schema": schema(&c.sql_type)});
            match &c.role {
                ColumnRole::Key => field["type"] = json!("KEY"),
                ColumnRole::Headers | ColumnRole::Header(_) => field["type"] = json!("HEADER"),
                ColumnRole::Value => {}
            }
            field
        })
        .collect();
    let query = |id: &String| json!({"id": id, "queryString": "", "sinks": [], "sinkKafkaTopics": [], "queryType": "PERSISTENT", "state": "RUNNING"});
    json!({
        "@type": "sourceDescription",
        "sourceDescription": {
            "name": source.name,
            "windowType": source.window().map(|(kind, _)| kind),
            "readQueries": reading.iter().map(query).collect::<Vec<_>>(),
            "writeQueries": writing.iter().map(query).collect::<Vec<_>>(),
            "fields": fields,
            "type": source.kind.keyword(),
            "timestamp": source.timestamp_column.clone().unwrap_or_default(),
            "statistics": "",
            "errorStats": "",
            "extended": extended,
            "keyFormat": source.key_format.name(),
            "valueFormat": source.value_format.name(),
            "topic": source.topic,
            "partitions": partitions.unwrap_or(0),
            "replication": 1,
            "statement": source.statement,
            "queryOffsetSummaries": [],
            "sourceConstraints": [],
        }
    })
}

/// A text table's REST entity where none is more specific: `SHOW FUNCTIONS`, `EXPLAIN`, …
/// as a `currentStatus` whose message is the table as the command line shows it.
pub fn fallback(result: &StatementResult) -> Value {
    match result {
        StatementResult::Entity { entity, .. } => entity.clone(),
        other => json!({
            "@type": "currentStatus",
            "commandStatus": {"status": "SUCCESS", "message": other.to_string().trim_end(), "queryId": null},
        }),
    }
}
