//! The entities ksqlDB's REST API answers with (`{"@type":"streams",…}`), as typed values
//! serialised by serde, built beside the command line's text of the same results (see
//! [`StatementResult::Entity`]). The server adds `statementText` and `warnings` to each
//! statement's entity.

use serde::Serialize;
use serde_json::Value;

use super::StatementResult;
use crate::catalog::{ColumnRole, Source};
use crate::sql::ast::{SourceKind, SqlType};

/// A column type as ksqlDB's REST API describes it: `{"type":"ARRAY","fields":null,"memberSchema":{…}}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Schema {
    #[serde(rename = "type")]
    pub type_name: String,
    /// A STRUCT's members.
    pub fields: Option<Vec<Field>>,
    /// An ARRAY's items, a MAP's values.
    pub member_schema: Option<Box<Schema>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<DecimalParameters>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecimalParameters {
    pub precision: u64,
    pub scale: u64,
}

/// A named column or STRUCT member; `type` marks a source's key and header columns.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Field {
    pub name: String,
    pub schema: Schema,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
}

impl Schema {
    pub fn of(sql_type: &SqlType) -> Schema {
        let plain = |name: &str| Schema { type_name: name.into(), fields: None, member_schema: None, parameters: None };
        match sql_type {
            SqlType::Boolean => plain("BOOLEAN"),
            SqlType::Int => plain("INTEGER"),
            SqlType::Bigint => plain("BIGINT"),
            SqlType::Double => plain("DOUBLE"),
            SqlType::Decimal { precision, scale } => Schema {
                parameters: Some(DecimalParameters { precision: *precision, scale: *scale }),
                ..plain("DECIMAL")
            },
            SqlType::String => plain("STRING"),
            SqlType::Bytes => plain("BYTES"),
            SqlType::Timestamp => plain("TIMESTAMP"),
            SqlType::Date => plain("DATE"),
            SqlType::Time => plain("TIME"),
            SqlType::Array(item) => Schema { member_schema: Some(Box::new(Schema::of(item))), ..plain("ARRAY") },
            SqlType::Map(_, value) => Schema { member_schema: Some(Box::new(Schema::of(value))), ..plain("MAP") },
            SqlType::Struct(members) => Schema {
                fields: Some(
                    members
                        .iter()
                        .map(|(name, t)| Field { name: name.value.clone(), schema: Schema::of(t), role: None })
                        .collect(),
                ),
                ..plain("STRUCT")
            },
            SqlType::Custom(name) => plain(&name.value),
        }
    }
}

/// One source in `SHOW STREAMS` / `SHOW TABLES`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceSummary {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub name: String,
    pub topic: String,
    pub key_format: &'static str,
    pub value_format: &'static str,
    pub is_windowed: bool,
}

impl SourceSummary {
    pub fn of(source: &Source) -> SourceSummary {
        SourceSummary {
            kind: source.kind.keyword(),
            name: source.name.clone(),
            topic: source.topic.clone(),
            key_format: source.key_format.name(),
            value_format: source.value_format.name(),
            is_windowed: source.window().is_some(),
        }
    }
}

/// `SHOW STREAMS` or `SHOW TABLES`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "@type", rename_all = "camelCase")]
pub enum SourceList {
    Streams { streams: Vec<SourceSummary> },
    Tables { tables: Vec<SourceSummary> },
}

/// A query reading or writing a described source.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryRef {
    pub id: String,
    pub query_string: String,
    pub sinks: Vec<String>,
    pub sink_kafka_topics: Vec<String>,
    pub query_type: &'static str,
    pub state: String,
    /// `SHOW QUERIES`: how many servers hold the query in each state (here, one).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub status_count: std::collections::BTreeMap<String, u32>,
}

impl QueryRef {
    fn persistent(id: &str) -> QueryRef {
        QueryRef {
            id: id.to_owned(),
            query_string: String::new(),
            sinks: Vec::new(),
            sink_kafka_topics: Vec::new(),
            query_type: "PERSISTENT",
            state: "RUNNING".into(),
            status_count: Default::default(),
        }
    }

    /// A persistent query as `SHOW QUERIES` lists it.
    pub fn listed(id: &str, statement: &str, sink: &str, topic: &str, state: &str) -> QueryRef {
        QueryRef {
            query_string: statement.to_owned(),
            sinks: vec![sink.to_owned()],
            sink_kafka_topics: vec![topic.to_owned()],
            state: state.to_owned(),
            status_count: [(state.to_owned(), 1)].into(),
            ..QueryRef::persistent(id)
        }
    }
}

/// The listings of `SHOW QUERIES`, `SHOW TOPICS`, `SHOW PROPERTIES` and `SHOW VARIABLES`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "@type", rename_all = "camelCase")]
pub enum Listing {
    Queries {
        queries: Vec<QueryRef>,
    },
    #[serde(rename = "kafka_topics")]
    KafkaTopics {
        topics: Vec<KafkaTopic>,
    },
    #[serde(rename_all = "camelCase")]
    Properties {
        properties: Vec<Property>,
        overwritten_properties: Vec<String>,
        default_properties: Vec<String>,
    },
    Variables {
        variables: Vec<Variable>,
    },
}

/// A topic in `SHOW TOPICS`: a replica count per partition.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KafkaTopic {
    pub name: String,
    pub replica_info: Vec<u32>,
}

/// A property in `SHOW PROPERTIES`, with its scope (`KSQL`, or `EDDY` for Eddy's own).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Property {
    pub name: String,
    pub scope: String,
    pub value: String,
}

/// A variable in `SHOW VARIABLES`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Variable {
    pub name: String,
    pub value: String,
}

/// `DESCRIBE [EXTENDED] source`'s body.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceDescription {
    pub name: String,
    pub window_type: Option<String>,
    pub read_queries: Vec<QueryRef>,
    pub write_queries: Vec<QueryRef>,
    pub fields: Vec<Field>,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub timestamp: String,
    pub statistics: String,
    pub error_stats: String,
    pub extended: bool,
    pub key_format: &'static str,
    pub value_format: &'static str,
    pub topic: String,
    pub partitions: u32,
    pub replication: u32,
    pub statement: String,
    pub query_offset_summaries: Vec<Value>,
    pub source_constraints: Vec<String>,
}

/// `{"@type":"sourceDescription","sourceDescription":{…}}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "@type", rename_all = "camelCase")]
pub enum Described {
    SourceDescription {
        #[serde(rename = "sourceDescription")]
        description: Box<SourceDescription>,
    },
}

/// A statement's outcome: `{"@type":"currentStatus","commandStatus":{…}}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CurrentStatus {
    #[serde(rename = "@type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command_id: Option<String>,
    pub command_status: CommandStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command_sequence_number: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandStatus {
    pub status: &'static str,
    pub message: String,
    pub query_id: Option<String>,
}

impl CurrentStatus {
    /// A statement that succeeded, with its message (and the id of a query it started).
    pub fn success(message: &str, query_id: Option<String>) -> CurrentStatus {
        CurrentStatus {
            kind: "currentStatus",
            command_id: None,
            command_status: CommandStatus { status: "SUCCESS", message: message.to_owned(), query_id },
            command_sequence_number: None,
        }
    }
}

/// ksqlDB's error body: `{"@type":"generic_error","error_code":…,"message":…}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GenericError {
    #[serde(rename = "@type")]
    pub kind: &'static str,
    pub error_code: u32,
    pub message: String,
}

impl GenericError {
    pub fn new(error_code: u32, message: &str) -> GenericError {
        GenericError { kind: "generic_error", error_code, message: message.to_owned() }
    }
}

/// A statement refused: its error, its text, and the entities of the statements before it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatementError {
    #[serde(rename = "@type")]
    pub kind: &'static str,
    #[serde(rename = "error_code")]
    pub error_code: u32,
    pub message: String,
    pub statement_text: String,
    pub entities: Vec<Value>,
}

/// A warning in place of a statement's entity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Warning {
    #[serde(rename = "@type")]
    pub kind: &'static str,
    pub message: String,
}

/// An entity as JSON (serialising these types cannot fail: no maps with non-string keys).
pub fn to_value(entity: &impl Serialize) -> Value {
    serde_json::to_value(entity).unwrap_or_else(|e| Value::String(format!("unserialisable entity: {e}")))
}

/// `SHOW STREAMS` or `SHOW TABLES`.
pub fn sources<'a>(kind: SourceKind, sources: impl Iterator<Item = &'a Source>) -> Value {
    let listed: Vec<SourceSummary> = sources.map(SourceSummary::of).collect();
    to_value(&match kind {
        SourceKind::Stream => SourceList::Streams { streams: listed },
        SourceKind::Table => SourceList::Tables { tables: listed },
    })
}

/// `DESCRIBE [EXTENDED] source`: its columns, queries, formats and topic.
pub fn source_description(
    source: &Source,
    reading: &[String],
    writing: &[String],
    partitions: Option<u32>,
    extended: bool,
) -> Value {
    let fields = source
        .columns
        .iter()
        .map(|c| Field {
            name: c.name.clone(),
            schema: Schema::of(&c.sql_type),
            role: match &c.role {
                ColumnRole::Key => Some("KEY"),
                ColumnRole::Headers | ColumnRole::Header(_) => Some("HEADER"),
                ColumnRole::Value => None,
            },
        })
        .collect();
    let description = SourceDescription {
        name: source.name.clone(),
        window_type: source.window().map(|(kind, _)| kind),
        read_queries: reading.iter().map(|id| QueryRef::persistent(id)).collect(),
        write_queries: writing.iter().map(|id| QueryRef::persistent(id)).collect(),
        fields,
        kind: source.kind.keyword(),
        timestamp: source.timestamp_column.clone().unwrap_or_default(),
        statistics: String::new(),
        error_stats: String::new(),
        extended,
        key_format: source.key_format.name(),
        value_format: source.value_format.name(),
        topic: source.topic.clone(),
        partitions: partitions.unwrap_or(0),
        replication: 1,
        statement: source.statement.clone(),
        query_offset_summaries: Vec::new(),
        source_constraints: Vec::new(),
    };
    to_value(&Described::SourceDescription { description: Box::new(description) })
}

/// A text table's REST entity where none is more specific: `SHOW FUNCTIONS`, `EXPLAIN`, …
/// as a `currentStatus` whose message is the table as the command line shows it.
pub fn fallback(result: &StatementResult) -> Value {
    match result {
        StatementResult::Entity { entity, .. } => entity.clone(),
        other => to_value(&CurrentStatus::success(other.to_string().trim_end(), None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities_serialise_as_ksqldb_writes_them() {
        let decimal = to_value(&Schema::of(&SqlType::Decimal { precision: 4, scale: 2 }));
        assert_eq!(
            decimal,
            serde_json::json!({"type": "DECIMAL", "fields": null, "memberSchema": null,
                               "parameters": {"precision": 4, "scale": 2}})
        );
        let array = to_value(&Schema::of(&SqlType::Array(Box::new(SqlType::Int))));
        assert_eq!(
            array,
            serde_json::json!({"type": "ARRAY", "fields": null,
                               "memberSchema": {"type": "INTEGER", "fields": null, "memberSchema": null}})
        );
        let list = to_value(&SourceList::Tables { tables: Vec::new() });
        assert_eq!(list, serde_json::json!({"@type": "tables", "tables": []}));
        let status = to_value(&CurrentStatus::success("Stream created", None));
        assert_eq!(
            status,
            serde_json::json!({"@type": "currentStatus",
                               "commandStatus": {"status": "SUCCESS", "message": "Stream created", "queryId": null}})
        );
        let error = to_value(&GenericError::new(40001, "bad"));
        assert_eq!(error, serde_json::json!({"@type": "generic_error", "error_code": 40001, "message": "bad"}));
        let queries = to_value(&Listing::Queries {
            queries: vec![QueryRef::listed("CTAS_T_1", "CREATE TABLE t AS …", "T", "t", "RUNNING")],
        });
        assert_eq!(
            queries,
            serde_json::json!({"@type": "queries", "queries": [{
                "id": "CTAS_T_1", "queryString": "CREATE TABLE t AS …", "sinks": ["T"], "sinkKafkaTopics": ["t"],
                "queryType": "PERSISTENT", "state": "RUNNING", "statusCount": {"RUNNING": 1}}]})
        );
        let topics =
            to_value(&Listing::KafkaTopics { topics: vec![KafkaTopic { name: "t".into(), replica_info: vec![1, 1] }] });
        assert_eq!(
            topics,
            serde_json::json!({"@type": "kafka_topics", "topics": [{"name": "t", "replicaInfo": [1, 1]}]})
        );
        let properties = to_value(&Listing::Properties {
            properties: vec![Property { name: "p".into(), scope: "KSQL".into(), value: "v".into() }],
            overwritten_properties: vec!["p".into()],
            default_properties: Vec::new(),
        });
        assert_eq!(
            properties,
            serde_json::json!({"@type": "properties", "properties": [{"name": "p", "scope": "KSQL", "value": "v"}],
                               "overwrittenProperties": ["p"], "defaultProperties": []})
        );
        let variables =
            to_value(&Listing::Variables { variables: vec![Variable { name: "x".into(), value: "1".into() }] });
        assert_eq!(variables, serde_json::json!({"@type": "variables", "variables": [{"name": "x", "value": "1"}]}));
    }
}
