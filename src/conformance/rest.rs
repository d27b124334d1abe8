//! ksqlDB's REST conformance cases (`rest-query-validation-tests`), run against `eddy
//! server` over HTTP, as ksqlDB's `RestTestExecutor` runs them against its server: the
//! statements before the first query go to `/ksql` in one request; then the inputs are
//! written and the persistent queries catch up; then each query goes to `/query` (with
//! `auto.offset.reset` earliest). The responses are compared with `responses` (an expected
//! entity's fields must be in the actual one; a query's header schema, rows and final
//! message exactly), an error with `expectedError` (status, and the message contained in
//! the actual one), and the topics with `outputs` as any QTT case's.

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::{Value, json};

use super::compare::matches;
use super::qtt::TestCase;
use super::runner::{Outcome, Outputs, compare_outputs, create_source_topics, ensure_topic, feed, register_schemas};
use crate::log::Log;
use crate::session::Session;
use crate::sql::Statement;

/// Runs one REST case in `dir`.
pub(super) async fn run_in(dir: &std::path::Path, case: &TestCase) -> Outcome {
    // Push queries end once caught up (the harness reads what the inputs give).
    let (log, mut session) = match super::runner::open_session(dir).await {
        Ok(opened) => opened,
        Err(outcome) => return outcome,
    };
    if let Err(e) = session.execute("SET 'eddy.source.linger.ms' = '0';", &mut |_| {}).await {
        return Outcome::Fail(format!("cannot set up the session: {e}"));
    }
    let config = crate::server::Config { listen: SocketAddr::from(([127, 0, 0, 1], 0)), ..Default::default() };
    let server = match crate::server::start(session, config).await {
        Ok(server) => server,
        Err(e) => return Outcome::Fail(format!("cannot start the server: {e}")),
    };
    let outcome = drive(&log, &server, case).await;
    if let Err(e) = server.stop().await {
        return Outcome::Fail(format!("the server did not stop cleanly: {e}"));
    }
    outcome
}

async fn drive(log: &Arc<dyn Log>, server: &crate::server::Running, case: &TestCase) -> Outcome {
    let node = &case.node;
    let partitions: std::collections::BTreeMap<String, u32> =
        node.topics.iter().map(|t| (t.name.clone(), t.partitions.unwrap_or(1))).collect();
    for (topic, count) in &partitions {
        if let Err(e) = ensure_topic(log.as_ref(), topic, *count).await {
            return Outcome::Fail(format!("cannot create topic {topic}: {e}"));
        }
    }
    if let Err(e) = server.with_session(async |session: &mut Session| register_schemas(session, case).await).await {
        return Outcome::Fail(e);
    }
    let first_query = node
        .statements
        .iter()
        .position(|s| matches!(crate::sql::parse_one(s), Ok(Statement::Select(_) | Statement::Print(_))))
        .unwrap_or(node.statements.len());
    let (admin, queries) = node.statements.split_at(first_query);
    let mut responses: Vec<Value> = Vec::new();

    if !admin.is_empty() {
        for statement in admin {
            if let Err(e) = create_source_topics(log.as_ref(), statement, &partitions).await {
                return Outcome::Fail(format!("cannot create the topic of '{statement}': {e}"));
            }
        }
        let answer = match post_statements(case, server.addr, "/ksql", &admin.join("\n")).await {
            Ok(answer) => answer,
            Err(outcome) => return outcome,
        };
        responses.extend(answer.as_array().into_iter().flatten().map(|entity| json!({"admin": entity})));
    }

    let mut outputs = Outputs::new(node.outputs.iter().map(|r| r.topic.clone()));
    // One input at a time, each processed before the next, as QTT cases run (ksqlDB's
    // harness runs without record caching: every update is in the output).
    for input in &node.inputs {
        let fed = server
            .with_session(async |session: &mut Session| {
                feed(log.as_ref(), session, input, &partitions).await?;
                session.wait_until_idle().await.map_err(|e| e.to_string())
            })
            .await;
        if let Err(e) = fed {
            return Outcome::Fail(format!("cannot write an input: {e}"));
        }
    }
    if let Err(e) = outputs.collect(log.as_ref()).await {
        return Outcome::Fail(format!("cannot read the outputs: {e}"));
    }

    for query in queries {
        let answer = match post_statements(case, server.addr, "/query", query).await {
            Ok(answer) => answer,
            Err(outcome) => return outcome,
        };
        // A pull query's rows have no order (ksqlDB's come partition by partition).
        let pull = matches!(crate::sql::parse_one(query), Ok(Statement::Select(q)) if q.emit.is_none());
        responses.push(json!({"query": answer, "pull": pull}));
    }
    if let Some(expected) = &node.expected_error {
        return Outcome::Fail(format!("expected an error ({expected}), but every statement ran"));
    }
    let outcome =
        server.with_session(async |session: &mut Session| compare_outputs(session, &node.outputs, &outputs)).await;
    if outcome != Outcome::Pass {
        return outcome;
    }
    compare_responses(node.responses.as_deref().unwrap_or_default(), &responses)
}

/// What every request of a case asks: input from the start, and no cache, so that an
/// aggregation's every update is seen (ksqlDB's cases expect them all).
fn earliest() -> Value {
    json!({"ksql.streams.auto.offset.reset": "earliest", "ksql.streams.cache.max.bytes.buffering": 0})
}

/// A request failed: right if the case expects this error.
fn expected_error(case: &TestCase, status: u16, answer: &Value) -> Outcome {
    let message = answer["message"].as_str().unwrap_or_default();
    let Some(expected) = &case.node.expected_error else {
        return Outcome::Fail(format!("HTTP {status}: {message}"));
    };
    if let Some(wanted) = expected["status"].as_u64()
        && u64::from(status) != wanted
    {
        return Outcome::Fail(format!("expected HTTP {wanted}, got {status}: {message}"));
    }
    match expected["message"].as_str() {
        Some(wanted) if !message.contains(wanted) => {
            Outcome::Fail(format!("expected an error with \"{wanted}\", got: {message}"))
        }
        _ => Outcome::Pass,
    }
}

/// Each expected response against the actual one at its place.
fn compare_responses(expected: &[Value], actual: &[Value]) -> Outcome {
    if expected.len() != actual.len() {
        return Outcome::Fail(format!(
            "expected {} responses, got {}: {}",
            expected.len(),
            actual.len(),
            Value::Array(actual.to_vec())
        ));
    }
    for (i, (want, got)) in expected.iter().zip(actual).enumerate() {
        let ok = match (&want["admin"], &want["query"]) {
            (Value::Object(_), _) => contains(&want["admin"], &got["admin"]),
            (_, Value::Array(rows)) => query_matches(rows, &got["query"], got["pull"] == true),
            _ => true,
        };
        if !ok {
            return Outcome::Fail(format!("response {i}: expected {want}, got {got}"));
        }
    }
    Outcome::Pass
}

/// An expected entity's fields are in the actual one (recursively), values as compared in
/// QTT.
fn contains(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            e.iter().all(|(name, value)| a.get(name).is_some_and(|actual| contains(value, actual)))
        }
        (Value::Array(e), Value::Array(a)) => e.len() == a.len() && e.iter().zip(a).all(|(e, a)| contains(e, a)),
        (e, a) => matches(e, a),
    }
}

/// A query's answer: the header's schema, then each row and message, exactly (a pull
/// query's rows in any order).
fn query_matches(expected: &[Value], actual: &Value, pull: bool) -> bool {
    let Some(actual) = actual.as_array() else { return false };
    if expected.len() != actual.len() {
        return false;
    }
    let one = |want: &Value, got: &Value| match want.get("header") {
        Some(header) => header["schema"] == got["header"]["schema"],
        None => matches(want, got),
    };
    if !pull {
        return expected.iter().zip(actual).all(|(want, got)| one(want, got));
    }
    let mut unmatched: Vec<&Value> = actual.iter().collect();
    expected.iter().all(|want| match unmatched.iter().position(|got| one(want, got)) {
        Some(i) => {
            unmatched.swap_remove(i);
            true
        }
        None => false,
    })
}

/// POSTs statements to `path` reading topics from their start; the answer as JSON, or the
/// case's outcome when the request failed (right if the case expects the error).
async fn post_statements(case: &TestCase, addr: SocketAddr, path: &str, statements: &str) -> Result<Value, Outcome> {
    // The case's properties go with every request, as a client's would.
    let mut properties = earliest();
    for (name, value) in &case.node.properties {
        properties[name] = value.clone();
    }
    let body = json!({"ksql": statements, "streamsProperties": properties});
    let (status, text) =
        post(addr, path, &body.to_string()).await.map_err(|e| Outcome::Fail(format!("POST {path}: {e}")))?;
    let answer: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if status != 200 {
        return Err(expected_error(case, status, &answer));
    }
    Ok(answer)
}

/// POSTs `body` (ksqlDB's streamed-rows format asked for); the status and the body.
async fn post(addr: SocketAddr, path: &str, body: &str) -> Result<(u16, String), String> {
    let client = crate::http::Client::new(&format!("http://{addr}"))?;
    let response = client.request("POST", path, body, "application/vnd.ksql.v1+json").await?;
    let status = response.status;
    Ok((status, response.text().await?))
}
