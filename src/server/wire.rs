//! The server's own answers beside the statements' entities, typed as ksqlDB writes them: the
//! server's info and health, command statuses, and the pieces of the streaming answers
//! (`/query`, `/query-stream`, `/inserts-stream`).

use serde::Serialize;
use serde_json::Value;

/// `GET /info`.
#[derive(Debug, Serialize)]
pub struct Info {
    #[serde(rename = "KsqlServerInfo")]
    pub server: ServerInfo,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerInfo {
    pub version: &'static str,
    pub kafka_cluster_id: &'static str,
    pub ksql_service_id: &'static str,
    pub server_status: &'static str,
}

/// `GET /healthcheck`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    pub is_healthy: bool,
    pub details: HealthDetails,
    pub server_state: &'static str,
}

#[derive(Debug, Serialize)]
pub struct HealthDetails {
    pub metastore: Healthy,
    pub kafka: Healthy,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Healthy {
    pub is_healthy: bool,
}

impl Health {
    pub fn ready() -> Health {
        let healthy = || Healthy { is_healthy: true };
        Health {
            is_healthy: true,
            details: HealthDetails { metastore: healthy(), kafka: healthy() },
            server_state: "READY",
        }
    }
}

/// `GET /status/...`: a command's outcome.
#[derive(Debug, Serialize)]
pub struct CommandOutcome {
    pub status: &'static str,
    pub message: String,
}

/// `/query`'s first element: the query's id and its columns as `` `NAME` TYPE, … ``.
#[derive(Debug, Serialize)]
pub struct StreamedHeader<'a> {
    pub header: HeaderBody<'a>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HeaderBody<'a> {
    pub query_id: &'a str,
    pub schema: String,
}

/// `/query-stream`'s first element (or line): the query's id, column names and types.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryMetadata<'a> {
    pub query_id: &'a str,
    pub column_names: Vec<String>,
    pub column_types: Vec<String>,
}

/// A `/query` row; a deletion is marked as a tombstone.
#[derive(Debug, Serialize)]
pub struct StreamedRow {
    pub row: RowBody,
}

#[derive(Debug, Serialize)]
pub struct RowBody {
    pub columns: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tombstone: Option<bool>,
}

/// An error written into a `/query` answer already under way.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamedError {
    pub error_message: Value,
}

/// The last element of a `/query` answer that ends (a pull query's, a LIMIT reached).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FinalMessage<'a> {
    pub final_message: &'a str,
}

/// `/inserts-stream`'s answer to each row, by its sequence number.
#[derive(Debug, Serialize)]
pub struct InsertAck {
    pub status: &'static str,
    pub seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl InsertAck {
    pub fn ok(seq: u64) -> InsertAck {
        InsertAck { status: "ok", seq, error_code: None, message: None }
    }

    pub fn error(seq: u64, message: String) -> InsertAck {
        InsertAck { status: "error", seq, error_code: Some(40000), message: Some(message) }
    }
}

/// `entity` as JSON text (these types always serialise).
pub fn text(entity: &impl Serialize) -> String {
    serde_json::to_string(entity).unwrap_or_else(|e| format!("{{\"error\":\"unserialisable: {e}\"}}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(entity: &impl Serialize) -> Value {
        serde_json::from_str(&text(entity)).unwrap()
    }

    #[test]
    fn answers_serialise_as_ksqldb_writes_them() {
        assert_eq!(
            value(&StreamedRow { row: RowBody { columns: vec![1.into()], tombstone: Some(true) } }),
            serde_json::json!({"row": {"columns": [1], "tombstone": true}})
        );
        assert_eq!(
            value(&StreamedRow { row: RowBody { columns: vec![], tombstone: None } }),
            serde_json::json!({"row": {"columns": []}})
        );
        assert_eq!(
            value(&InsertAck::error(3, "bad".into())),
            serde_json::json!({"status": "error", "seq": 3, "error_code": 40000, "message": "bad"})
        );
        assert_eq!(value(&InsertAck::ok(4)), serde_json::json!({"status": "ok", "seq": 4}));
        assert_eq!(
            value(&Health::ready()),
            serde_json::json!({"isHealthy": true, "details": {"metastore": {"isHealthy": true},
                               "kafka": {"isHealthy": true}}, "serverState": "READY"})
        );
        assert_eq!(
            value(&FinalMessage { final_message: "Limit Reached" }),
            serde_json::json!({"finalMessage": "Limit Reached"})
        );
    }
}
