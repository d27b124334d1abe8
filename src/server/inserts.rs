//! `POST /inserts-stream`: the body's first line names the stream (`{"target":"S"}`), each
//! further line is a row (`{"COL":value,…}`); each row is acknowledged as it is written
//! (`{"status":"ok","seq":0}`), or refused with the reason. The body is read as it comes, so a
//! client can stream rows for as long as it likes; acks are delimited lines, or one JSON
//! array with `Accept: application/json`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc;

use super::{Shared, error, streaming_body};

/// A row as its line gives it.
type Row = serde_json::Map<String, Value>;

/// Rows decoded and written together, at most.
const ROWS_PER_WRITE: usize = 1024;

pub(super) async fn handle(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> Response {
    let json_array = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("application/json"));
    let limit = shared.config.max_body_bytes;
    let mut lines = Lines { body: body.into_data_stream(), buffer: Vec::new(), limit, done: false };
    let target = match lines.next().await {
        Some(Ok(line)) => match serde_json::from_slice::<Value>(&line) {
            Ok(args) => match args.get("target").and_then(Value::as_str) {
                Some(target) => target.to_string(),
                None => return error(StatusCode::BAD_REQUEST, 40000, "The first line must name the target stream"),
            },
            Err(e) => return error(StatusCode::BAD_REQUEST, 40000, &format!("Invalid JSON in request: {e}")),
        },
        Some(Err(message)) => return error(StatusCode::BAD_REQUEST, 40000, &message),
        None => return error(StatusCode::BAD_REQUEST, 40000, "No insert arguments in the request"),
    };
    // The stream must exist before any row is taken.
    let session = shared.session.lock().await.fork();
    if let Err(e) = session.insert_target(&target) {
        return error(StatusCode::BAD_REQUEST, 40000, &e.to_string());
    }
    let (acks, body) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let mut seq = 0u64;
        let mut first = true;
        let mut ack = |entity: super::wire::InsertAck| {
            let entity = super::wire::text(&entity);
            let chunk = if json_array {
                let separator = if first { "[" } else { "," };
                format!("{separator}{entity}")
            } else {
                format!("{entity}\n")
            };
            first = false;
            Bytes::from(chunk)
        };
        let mut batch: Vec<(u64, Result<Row, String>)> = Vec::new();
        loop {
            let next = lines.next().await;
            let ended = next.is_none();
            if let Some(line) = next {
                let row = line.and_then(|line| match serde_json::from_slice::<Value>(&line) {
                    Ok(Value::Object(row)) => Ok(row),
                    Ok(_) => Err("a row is a JSON object".to_string()),
                    Err(e) => Err(format!("Invalid JSON: {e}")),
                });
                batch.push((seq, row));
                seq += 1;
            }
            // Write what has arrived when the body pauses, or a batch is full, or at the end.
            if !batch.is_empty() && (ended || batch.len() >= ROWS_PER_WRITE || !lines.has_ready_line()) {
                let rows: Vec<Row> = batch.iter().filter_map(|(_, row)| row.as_ref().ok().cloned()).collect();
                let written = session.insert_json_rows(&target, &rows).await;
                let mut outcomes = match written {
                    Ok(outcomes) => outcomes.into_iter(),
                    Err(e) => vec![Err(e.to_string()); rows.len()].into_iter(),
                };
                for (seq, row) in batch.drain(..) {
                    let outcome = row.and_then(|_| outcomes.next().unwrap_or(Ok(())));
                    let entity = match outcome {
                        Ok(()) => super::wire::InsertAck::ok(seq),
                        Err(message) => super::wire::InsertAck::error(seq, message),
                    };
                    if acks.send(ack(entity)).await.is_err() {
                        return;
                    }
                }
            }
            if ended {
                break;
            }
        }
        if json_array {
            let close = if first { "[]" } else { "]" };
            let _ = acks.send(Bytes::from(close)).await;
        }
    });
    let content_type = if json_array { "application/json" } else { "application/vnd.ksqlapi.delimited.v1" };
    (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], streaming_body(body)).into_response()
}

/// A request body's lines, as they arrive; a line longer than `limit` is an error.
struct Lines {
    body: axum::body::BodyDataStream,
    buffer: Vec<u8>,
    limit: usize,
    done: bool,
}

impl Lines {
    /// The next non-empty line, waiting for it; `None` at the end of the body.
    async fn next(&mut self) -> Option<Result<Vec<u8>, String>> {
        loop {
            if let Some(line) = self.take_line() {
                return Some(line);
            }
            if self.done {
                let rest = std::mem::take(&mut self.buffer);
                return (!rest.iter().all(u8::is_ascii_whitespace)).then_some(Ok(rest));
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.buffer.extend_from_slice(&chunk),
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(e.to_string()));
                }
                None => self.done = true,
            }
        }
    }

    /// Whether a whole line is buffered (more rows can be taken without waiting).
    fn has_ready_line(&self) -> bool {
        self.buffer.contains(&b'\n') || (self.done && !self.buffer.iter().all(u8::is_ascii_whitespace))
    }

    fn take_line(&mut self) -> Option<Result<Vec<u8>, String>> {
        loop {
            let Some(end) = self.buffer.iter().position(|b| *b == b'\n') else {
                if self.buffer.len() > self.limit {
                    self.buffer.clear();
                    return Some(Err(format!("A line of the request is longer than {} bytes", self.limit)));
                }
                return None;
            };
            let line: Vec<u8> = self.buffer.drain(..=end).collect();
            let line = line.trim_ascii();
            if !line.is_empty() {
                return Some(Ok(line.to_vec()));
            }
        }
    }
}
