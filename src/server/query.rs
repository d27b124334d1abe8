//! `POST /query`, `POST /query-stream` and `POST /close-query`: push and pull queries (and
//! `PRINT`) streamed back as their results come, in the format the `Accept` header picks.
//!
//! Each query runs in its own task on a fork of the server's session. Its results go
//! through a bounded channel to the response body, one chunk (an HTTP/1.1 chunk or an
//! HTTP/2 DATA frame) per line, as ksqlDB's clients expect; a client that reads slowly holds
//! the query back (see [`crate::session::ResultSink::flush`]). The query stops when it ends
//! (LIMIT, a pull query's answer), when `/close-query` names it, when the client goes away,
//! or when the server stops.

use std::collections::VecDeque;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use super::wire;
use tokio::sync::{Notify, mpsc, oneshot};

use super::{Shared, error, parse_body, request_properties, rows, streaming_body};
use crate::session::{ResultSink, RowsHeader, SessionError, StatementResult};
use crate::sql::ast::Statement;

/// How rows are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `application/vnd.ksqlapi.delimited.v1`: the metadata object, then an array per row,
    /// each on its own line.
    Delimited,
    /// `application/json` on `/query-stream`: one JSON array, metadata first.
    JsonArray,
    /// `/query`'s and `application/vnd.ksql.v1+json`: `[{"header":…},\n{"row":…},\n…]`.
    StreamedRows,
}

impl Shape {
    fn content_type(self) -> &'static str {
        match self {
            Shape::Delimited => "application/vnd.ksqlapi.delimited.v1",
            Shape::JsonArray => "application/json",
            Shape::StreamedRows => "application/vnd.ksql.v1+json",
        }
    }
}

/// The shape the `Accept` header asks for, the first acceptable in its order; `None` when
/// it names none Eddy writes (406).
fn negotiate(headers: &HeaderMap, query_endpoint: bool) -> Option<Shape> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Some(if query_endpoint { Shape::StreamedRows } else { Shape::Delimited });
    };
    let mut wanted: Vec<(f32, usize, &str)> = accept
        .split(',')
        .enumerate()
        .map(|(i, part)| {
            let mut pieces = part.split(';');
            let media = pieces.next().unwrap_or_default().trim();
            let quality =
                pieces.filter_map(|p| p.trim().strip_prefix("q=")).find_map(|q| q.parse::<f32>().ok()).unwrap_or(1.0);
            (quality, i, media)
        })
        .collect();
    wanted.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    wanted.into_iter().filter(|(q, _, _)| *q > 0.0).find_map(|(_, _, media)| match media {
        "application/vnd.ksqlapi.delimited.v1" | "*/*" | "application/*" | "" => Some(Shape::Delimited),
        "application/json" if query_endpoint => Some(Shape::StreamedRows),
        "application/json" => Some(Shape::JsonArray),
        "application/vnd.ksql.v1+json" => Some(Shape::StreamedRows),
        _ => None,
    })
}

/// `/query-stream`'s body.
#[derive(Debug, Deserialize)]
pub(super) struct QueryStreamArgs {
    sql: String,
    #[serde(default)]
    properties: serde_json::Map<String, Value>,
    #[serde(default, rename = "sessionVariables")]
    session_variables: serde_json::Map<String, Value>,
}

pub(super) async fn query(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let request: super::ksql::KsqlRequest = match parse_body(body) {
        Ok(request) => request,
        Err(response) => return response,
    };
    let Some(shape) = negotiate(&headers, true) else {
        return error(StatusCode::NOT_ACCEPTABLE, 40600, "Not Acceptable");
    };
    let args = QueryStreamArgs {
        sql: request.ksql,
        properties: request.streams_properties,
        session_variables: request.session_variables,
    };
    run(shared, args, shape).await
}

pub(super) async fn query_stream(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let args: QueryStreamArgs = match parse_body(body) {
        Ok(args) => args,
        Err(response) => return response,
    };
    let Some(shape) = negotiate(&headers, false) else {
        return error(StatusCode::NOT_ACCEPTABLE, 40600, "Not Acceptable");
    };
    run(shared, args, shape).await
}

/// `{"queryId": "…"}`: stops that push query (its response ends).
pub(super) async fn close_query(State(shared): State<Arc<Shared>>, body: Result<Bytes, BytesRejection>) -> Response {
    #[derive(Deserialize)]
    struct CloseQuery {
        #[serde(rename = "queryId")]
        query_id: String,
    }
    let request: CloseQuery = match parse_body(body) {
        Ok(request) => request,
        Err(response) => return response,
    };
    let stop = shared.queries.lock().ok().and_then(|queries| queries.get(&request.query_id).cloned());
    match stop {
        Some(stop) => {
            stop.notify_one();
            StatusCode::OK.into_response()
        }
        None => error(StatusCode::BAD_REQUEST, 40000, &format!("No query with id {}", request.query_id)),
    }
}

/// Runs one query statement and streams its results back.
async fn run(shared: Arc<Shared>, args: QueryStreamArgs, shape: Shape) -> Response {
    let statements = match crate::session::Session::statements(&args.sql) {
        Ok(statements) => statements,
        Err(e) => return error(StatusCode::BAD_REQUEST, 40001, &e.to_string()),
    };
    let [statement] = statements.as_slice() else {
        return error(StatusCode::BAD_REQUEST, 40000, "Expected exactly one query statement");
    };
    let text = format!("{};", statement.trim());
    let print = match crate::sql::parse_one(&text) {
        Ok(Statement::Select(_)) => false,
        Ok(Statement::Print(_)) => true,
        Ok(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                40000,
                "The /query and /query-stream endpoints run SELECT and PRINT statements; use /ksql for the others",
            );
        }
        Err(e) => return error(StatusCode::BAD_REQUEST, 40001, &e.to_string()),
    };
    let Ok(permit) = Arc::clone(&shared.push_permits).try_acquire_owned() else {
        return error(
            StatusCode::BAD_REQUEST,
            40003,
            &format!("The maximum number of push queries ({}) is running", shared.config.max_push_queries),
        );
    };
    let mut session = shared.session.lock().await.fork();
    let mut properties = session.properties().clone();
    properties.extend(request_properties(&args.properties));
    session.set_properties(properties);
    let mut variables = session.variables().clone();
    variables.extend(request_properties(&args.session_variables));
    session.set_variables(variables);

    let (chunks, body) = mpsc::channel::<Bytes>(64);
    let (started, answered) = oneshot::channel::<Result<(), Response>>();
    let stop = Arc::new(Notify::new());
    let mut stopping = shared.stopping.clone();
    let task_shared = Arc::clone(&shared);
    tokio::spawn(async move {
        let mut sink = HttpSink {
            chunks: chunks.clone(),
            pending: VecDeque::new(),
            shape,
            print,
            header: None,
            finished: None,
            started: Some(started),
            shared: Arc::clone(&task_shared),
            stop: Arc::clone(&stop),
        };
        let outcome = tokio::select! {
            outcome = session.execute(&text, &mut sink) => Some(outcome),
            () = chunks.closed() => None,
            () = stop.notified() => Some(Ok(())),
            _ = stopping.wait_for(|stopping| *stopping) => Some(Ok(())),
        };
        if let Some(outcome) = outcome {
            sink.finish(outcome).await;
        }
        if let Some(header) = &sink.header
            && let Ok(mut queries) = task_shared.queries.lock()
        {
            queries.remove(&header.query_id);
        }
        drop(permit);
    });
    match answered.await {
        Ok(Ok(())) => {
            let content_type = if print { "text/plain" } else { shape.content_type() };
            (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], streaming_body(body)).into_response()
        }
        Ok(Err(response)) => response,
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, 50000, "the query ended before it started"),
    }
}

/// Turns a query's results into the chunks of its response.
struct HttpSink {
    chunks: mpsc::Sender<Bytes>,
    /// Chunks not yet handed to the response (at most one batch's).
    pending: VecDeque<Bytes>,
    shape: Shape,
    print: bool,
    header: Option<Arc<RowsHeader>>,
    /// A push query's closing message (`Limit Reached`).
    finished: Option<String>,
    /// Told once the response can start (its first result), or why it cannot.
    started: Option<oneshot::Sender<Result<(), Response>>>,
    shared: Arc<Shared>,
    stop: Arc<Notify>,
}

impl HttpSink {
    fn start(&mut self) {
        if let Some(started) = self.started.take() {
            let _ = started.send(Ok(()));
        }
    }

    fn push(&mut self, chunk: String) {
        self.pending.push_back(Bytes::from(chunk));
    }

    /// The header, in this response's shape; registers a push query for `/close-query`.
    fn open(&mut self, header: Arc<RowsHeader>) {
        self.start();
        if header.push
            && let Ok(mut queries) = self.shared.queries.lock()
        {
            queries.insert(header.query_id.clone(), Arc::clone(&self.stop));
        }
        let chunk = match self.shape {
            Shape::StreamedRows => {
                let schema = rows::schema_text(&header);
                format!(
                    "[{}",
                    wire::text(&wire::StreamedHeader {
                        header: wire::HeaderBody { query_id: &header.query_id, schema }
                    })
                )
            }
            Shape::Delimited | Shape::JsonArray => {
                let (names, types) = rows::columns(&header);
                let metadata = wire::text(&wire::QueryMetadata {
                    query_id: &header.query_id,
                    column_names: names,
                    column_types: types,
                });
                if self.shape == Shape::Delimited { format!("{metadata}\n") } else { format!("[{metadata}") }
            }
        };
        self.push(chunk);
        self.header = Some(header);
    }

    fn rows(&mut self, rows: &crate::session::QueryRows) {
        if self.header.as_ref().is_none_or(|h| !Arc::ptr_eq(h, &rows.header)) {
            self.open(Arc::clone(&rows.header));
        }
        let values = match rows::values(rows) {
            Ok(values) => values,
            Err(e) => {
                self.failure(&e);
                return;
            }
        };
        for (i, row) in values.into_iter().enumerate() {
            let deleted = rows.is_tombstone(i);
            let chunk = match self.shape {
                Shape::StreamedRows => {
                    let tombstone = deleted.then_some(true);
                    format!(",\n{}", wire::text(&wire::StreamedRow { row: wire::RowBody { columns: row, tombstone } }))
                }
                // ksqlDB drops deletions here ("not currently supported").
                _ if deleted => continue,
                Shape::Delimited => format!("{}\n", Value::Array(row)),
                Shape::JsonArray => format!(",{}", Value::Array(row)),
            };
            self.push(chunk);
        }
    }

    /// An error after the response started: written in the stream, as ksqlDB does.
    fn failure(&mut self, message: &str) {
        let entity = crate::session::entity::to_value(&crate::session::entity::GenericError::new(50000, message));
        let chunk = match self.shape {
            Shape::StreamedRows => format!(",\n{}", wire::text(&wire::StreamedError { error_message: entity })),
            Shape::Delimited => format!("{entity}\n"),
            Shape::JsonArray => format!(",{entity}"),
        };
        self.push(chunk);
    }

    /// The statement ended: its error, or the closing of the response's array.
    async fn finish(&mut self, outcome: Result<(), SessionError>) {
        if let Err(e) = outcome {
            if let Some(started) = self.started.take() {
                let (status, code) = e.kind().rest_status();
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let _ = started.send(Err(error(status, code, &e.to_string())));
                return;
            }
            self.failure(&e.to_string());
        }
        // A query with no rows still answers with its header (a pull query's are all here).
        self.start();
        if !self.print {
            match (self.shape, self.header.is_some()) {
                (Shape::StreamedRows, true) => {
                    let completion = self.header.as_ref().and_then(|h| h.completion).map(str::to_string);
                    let end = match self.finished.take().or(completion) {
                        Some(message) => {
                            format!(",\n{}]", wire::text(&wire::FinalMessage { final_message: &message }))
                        }
                        None => "]".to_string(),
                    };
                    self.push(end);
                }
                (Shape::JsonArray, true) => self.push("]".to_string()),
                _ => {}
            }
        }
        self.flush().await;
    }
}

impl ResultSink for HttpSink {
    fn send(&mut self, result: StatementResult) {
        match result {
            StatementResult::Header(header) => self.open(header),
            StatementResult::Rows(rows) => self.rows(&rows),
            StatementResult::Line(line) => {
                self.start();
                self.push(format!("{line}\n"));
            }
            StatementResult::Status { message } => self.finished = Some(message),
            StatementResult::Table { .. } | StatementResult::Entity { .. } => {}
        }
    }

    fn flush(&mut self) -> futures::future::BoxFuture<'_, bool> {
        Box::pin(async move {
            while let Some(chunk) = self.pending.pop_front() {
                if self.chunks.send(chunk).await.is_err() {
                    return false;
                }
            }
            true
        })
    }
}
