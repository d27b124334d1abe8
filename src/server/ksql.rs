//! `POST /ksql`: statements other than queries, answered with one entity each.
//!
//! The statements run one by one on the server's session. A request's `streamsProperties`
//! and `sessionVariables`, and any `SET` or `DEFINE` among its statements, apply to the rest
//! of the request only. The first failure answers 400 with a `statement_error` holding the
//! entities of the statements before it (which took effect).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Shared, error, json_response, parse_body, request_properties};
use crate::catalog::source_name;
use crate::session::{Session, StatementResult, entity};
use crate::sql::ast::{SourceKind, Statement, Terminate};

/// `KsqlRequest`: only `ksql` is required.
#[derive(Debug, Deserialize)]
pub(super) struct KsqlRequest {
    pub ksql: String,
    #[serde(default, rename = "streamsProperties")]
    pub streams_properties: serde_json::Map<String, Value>,
    #[serde(default, rename = "sessionVariables")]
    pub session_variables: serde_json::Map<String, Value>,
}

pub(super) async fn handle(State(shared): State<Arc<Shared>>, body: Result<Bytes, BytesRejection>) -> Response {
    let request: KsqlRequest = match parse_body(body) {
        Ok(request) => request,
        Err(response) => return response,
    };
    let statements = match Session::statements(&request.ksql) {
        Ok(statements) => statements,
        Err(e) => return statement_error(e.kind(), &e.to_string(), &request.ksql, Vec::new()),
    };
    let mut session = shared.session.lock().await;
    let (properties, variables) = (session.properties().clone(), session.variables().clone());
    let mut scoped = properties.clone();
    scoped.extend(request_properties(&request.streams_properties));
    session.set_properties(scoped);
    let mut scoped_variables = variables.clone();
    for (name, value) in request_properties(&request.session_variables) {
        scoped_variables.insert(name.to_lowercase(), value);
    }
    session.set_variables(scoped_variables);
    let answer = run_statements(&mut session, &statements).await;
    session.set_properties(properties);
    session.set_variables(variables);
    answer
}

async fn run_statements(session: &mut Session, statements: &[String]) -> Response {
    let mut entities: Vec<Value> = Vec::with_capacity(statements.len());
    for text in statements {
        let text = format!("{};", text.trim());
        let parsed = crate::sql::parse_one(&text).ok();
        if matches!(parsed, Some(Statement::Select(_) | Statement::Print(_))) {
            return error(
                StatusCode::BAD_REQUEST,
                40002,
                "The following statement types should be issued to the websocket endpoint '/query':\n\t* PRINT\n\t* \
                 SELECT",
            );
        }
        let mut results: Vec<StatementResult> = Vec::new();
        if let Err(e) = session.execute(&text, &mut |r: StatementResult| results.push(r)).await {
            return statement_error(e.kind(), &e.to_string(), &text, entities);
        }
        let sequence = session.commands_applied().saturating_sub(1);
        for result in results {
            let mut entity = entity_of(&result, parsed.as_ref(), sequence);
            entity["statementText"] = json!(text);
            entity["warnings"] = json!([]);
            entities.push(entity);
        }
    }
    json_response(StatusCode::OK, Value::Array(entities))
}

/// ksqlDB's `statement_error`: 400 for a bad statement, 5xx for a failure of Eddy or of what it
/// depends on (see [`crate::error::ErrorKind::rest_status`]).
fn statement_error(kind: crate::error::ErrorKind, message: &str, text: &str, entities: Vec<Value>) -> Response {
    let (status, code) = kind.rest_status();
    json_response(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        entity::to_value(&entity::StatementError {
            kind: "statement_error",
            error_code: code,
            message: message.to_owned(),
            statement_text: text.to_owned(),
            entities,
        }),
    )
}

/// The entity of a statement's result: its own (SHOW, DESCRIBE), a `currentStatus` for a
/// command, a `warning_entity` for one that did nothing (`IF NOT EXISTS`).
fn entity_of(result: &StatementResult, statement: Option<&Statement>, sequence: u64) -> Value {
    match result {
        StatementResult::Entity { entity, .. } => entity.clone(),
        StatementResult::Status { message } if message.ends_with("already exists") => {
            entity::to_value(&entity::Warning { kind: "warning_entity", message: message.clone() })
        }
        StatementResult::Status { message } => {
            let query_id = message.strip_prefix("Created query with ID ").map(|id| id.trim().to_string());
            entity::to_value(&entity::CurrentStatus {
                command_id: Some(statement.map_or_else(|| "statement/execute".to_string(), command_id)),
                command_sequence_number: Some(i64::try_from(sequence).unwrap_or(i64::MAX)),
                ..entity::CurrentStatus::success(message, query_id)
            })
        }
        other => entity::fallback(other),
    }
}

/// ksqlDB's command id: `stream/`NAME`/create`, `table/`NAME`/drop`, `terminate/ID/execute`.
fn command_id(statement: &Statement) -> String {
    let kind = |kind: SourceKind| match kind {
        SourceKind::Stream => "stream",
        SourceKind::Table => "table",
    };
    match statement {
        Statement::CreateSource(create) => format!("{}/`{}`/create", kind(create.kind), source_name(&create.name)),
        Statement::CreateAsSelect(create) => format!("{}/`{}`/create", kind(create.kind), source_name(&create.name)),
        Statement::InsertInto(insert) => format!("stream/`{}`/create", source_name(&insert.target)),
        Statement::Drop(drop) => format!("{}/`{}`/drop", kind(drop.kind), source_name(&drop.name)),
        Statement::Terminate(Terminate::Query(id)) => format!("terminate/{}/execute", id.to_uppercase()),
        Statement::Terminate(Terminate::All) => "terminate/ALL/execute".into(),
        Statement::CreateType { name, .. } => format!("type/{name}/create"),
        Statement::DropType { name, .. } => format!("type/{name}/drop"),
        _ => "statement/execute".into(),
    }
}
