//! Running one QTT case against Eddy, as ksqlDB's `TestExecutor` runs it against Kafka
//! Streams' test driver: the statements in order on a fresh embedded log, then the inputs one
//! at a time in file order (each on partition 0, the next waiting until every query has
//! processed the last), then each output topic compared record by record, in order.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use super::compare::matches;
use super::qtt::{TestCase, TestRecord};
use super::records::{Side, to_bytes, to_json};
use crate::catalog::{Source, property_map};
use crate::log::{EmbeddedLog, Header, Log, LogError, NewRecord, TopicSpec};
use crate::session::{Session, SessionError};
use crate::sql::Statement;

/// A case gets this long before it counts as failed.
const CASE_TIMEOUT: Duration = Duration::from_secs(30);

/// How a case ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail(String),
    /// Not run, and why: it needs what Eddy does not have yet, or ksqlDB disabled it.
    Skip(String),
}

/// Formats of a schema registry that Eddy does not support yet.
const REGISTRY_FORMATS: [&str; 0] = [];
/// Functions ksqlDB defines only in its test jar.
const TEST_ONLY_FUNCTIONS: [&str; 13] = [
    "THROWING_UDTF",
    "BAD_UDF",
    "WHENCONDITION",
    "WHENRESULT",
    "GENERIC_VAR_ARG",
    "MID_VAR_ARG",
    "MULTI_ARG",
    "FOUR_ARG",
    "FIVE_ARG",
    "VAR_ARG",
    "TEST_UDTF",
    "TEST_UDF",
    "BACKWARD_CONCAT",
];

/// Runs one case (or says why it is skipped).
pub async fn run_case(case: &TestCase) -> Outcome {
    if let Some(reason) = skip_reason(case) {
        return Outcome::Skip(reason);
    }
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => return Outcome::Fail(format!("cannot make a data directory: {e}")),
    };
    // A REST case (expected HTTP responses) runs against the HTTP server.
    let rest = case.node.responses.is_some() || case.node.expected_error.is_some();
    let run = async { if rest { super::rest::run_in(dir.path(), case).await } else { run_in(dir.path(), case).await } };
    match tokio::time::timeout(CASE_TIMEOUT, run).await {
        Ok(outcome) => outcome,
        Err(_) => Outcome::Fail(format!("did not finish within {CASE_TIMEOUT:?}")),
    }
}

/// Why a case cannot run here yet, decided from its text.
fn skip_reason(case: &TestCase) -> Option<String> {
    let node = &case.node;
    if node.enabled == Some(false) {
        return Some("disabled in ksqlDB's suite".into());
    }
    let text = node.statements.join("\n").to_uppercase();
    let words: Vec<&str> = text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).collect();
    let registry = REGISTRY_FORMATS.iter().any(|f| words.contains(f))
        || node.topics.iter().any(|t| {
            [&t.value_format, &t.key_format]
                .iter()
                .any(|f| f.as_deref().is_some_and(|f| REGISTRY_FORMATS.contains(&f.to_uppercase().as_str())))
        });
    if registry {
        return Some("needs a format Eddy does not support".into());
    }
    if node.proto_responses {
        return Some("expects protobuf responses (application/vnd.ksql.v1+protobuf)".into());
    }
    if let Some(function) = TEST_ONLY_FUNCTIONS.iter().find(|f| words.contains(*f)) {
        return Some(format!("test-only ksqlDB function {function}"));
    }
    None
}

/// A fresh embedded log in `dir` and a session over it whose streaming statements stop once
/// caught up.
pub(super) async fn open_session(dir: &std::path::Path) -> Result<(Arc<dyn Log>, Session), Outcome> {
    let log: Arc<dyn Log> = match EmbeddedLog::open(dir) {
        Ok(log) => Arc::new(log),
        Err(e) => return Err(Outcome::Fail(format!("cannot open the log: {e}"))),
    };
    let mut session = match Session::open(Arc::clone(&log)).await {
        Ok(session) => session,
        Err(e) => return Err(Outcome::Fail(format!("cannot open a session: {e}"))),
    };
    session.set_until_idle(true);
    Ok((log, session))
}

async fn run_in(dir: &std::path::Path, case: &TestCase) -> Outcome {
    let (log, mut session) = match open_session(dir).await {
        Ok(opened) => opened,
        Err(outcome) => return outcome,
    };
    let outcome = drive(&log, &mut session, case).await;
    session.shutdown().await;
    outcome
}

async fn drive(log: &Arc<dyn Log>, session: &mut Session, case: &TestCase) -> Outcome {
    let node = &case.node;
    let mut ignore = |_| {};
    // Inputs come one at a time and each is waited for: batches need not linger.
    let mut setup = "SET 'auto.offset.reset' = 'earliest'; SET 'eddy.source.linger.ms' = '0';".to_string();
    // The case's ksqlDB properties, those Eddy's sessions take.
    const KNOWN: [&str; 3] = [
        "ksql.persistence.default.format.key",
        "ksql.persistence.default.format.value",
        "ksql.persistence.wrap.single.values",
    ];
    for (name, value) in &node.properties {
        let value = match value {
            serde_json::Value::Bool(b) => Some(b.to_string()),
            other => other.as_str().map(str::to_owned),
        };
        if KNOWN.contains(&name.as_str())
            && let Some(value) = value
        {
            setup.push_str(&format!(" SET '{name}' = '{}';", value.replace('\'', "''")));
        }
    }
    if let Err(e) = session.execute(&setup, &mut ignore).await {
        return Outcome::Fail(format!("cannot set up the session: {e}"));
    }
    let partitions: BTreeMap<String, u32> =
        node.topics.iter().map(|t| (t.name.clone(), t.partitions.unwrap_or(1))).collect();
    if let Err(e) = register_schemas(session, case).await {
        return Outcome::Fail(e);
    }
    // ksqlDB runs a case's statements as one script, a line each: each statement is run on
    // the line it would have there, so that positions in messages match.
    let mut line = 0;
    for statement in &node.statements {
        if let Err(e) = create_source_topics(log.as_ref(), statement, &partitions).await {
            return Outcome::Fail(format!("cannot create the topic of '{statement}': {e}"));
        }
        let placed = format!("{}{statement}", "\n".repeat(line));
        line += 1 + statement.matches('\n').count();
        if let Err(e) = session.execute(&placed, &mut ignore).await {
            return refused(case, &e);
        }
    }
    if let Some(expected) = &node.expected_exception
        && node.inputs.is_empty()
    {
        return Outcome::Fail(format!(
            "expected {} ({}), but every statement ran",
            expected.kind.as_deref().unwrap_or("an error"),
            expected.message.as_deref().unwrap_or("")
        ));
    }

    let mut topics: Vec<String> = node.outputs.iter().map(|r| r.topic.clone()).collect();
    if case.check_all_sinks {
        for query in session.catalog().queries() {
            if let Some(sink) = session.catalog().source(&query.sink) {
                topics.push(sink.topic.clone());
            }
        }
    }
    let mut outputs = Outputs::new(topics.into_iter());
    for input in &node.inputs {
        if let Err(e) = feed(log.as_ref(), session, input, &partitions).await {
            return Outcome::Fail(format!("cannot write input {}: {e}", describe(input)));
        }
        if let Err(e) = session.wait_until_idle().await {
            return Outcome::Fail(format!("waiting for the queries: {e}"));
        }
        if let Err(e) = outputs.collect(log.as_ref()).await {
            return Outcome::Fail(format!("cannot read the outputs: {e}"));
        }
    }
    if let Err(e) = session.wait_until_idle().await {
        return Outcome::Fail(format!("waiting for the queries: {e}"));
    }
    if let Err(e) = outputs.collect(log.as_ref()).await {
        return Outcome::Fail(format!("cannot read the outputs: {e}"));
    }
    if let Some(expected) = &node.expected_exception {
        // ksqlDB's query failing while processing (a StreamsException): one of Eddy's failed.
        if expected.kind.as_deref().is_some_and(|k| k.ends_with("StreamsException"))
            && !session.failed_queries().is_empty()
        {
            return Outcome::Pass;
        }
        return Outcome::Fail(format!(
            "expected {} ({}) while processing, but nothing failed",
            expected.kind.as_deref().unwrap_or("an error"),
            expected.message.as_deref().unwrap_or("")
        ));
    }
    match compare_outputs(session, &node.outputs, &outputs) {
        Outcome::Pass => match &node.post {
            Some(post) => check_post(log.as_ref(), session, post).await,
            None => Outcome::Pass,
        },
        other => other,
    }
}

/// The `post` conditions that make sense for Eddy: each named source exists with its type,
/// schema (`ID INT KEY, NAME STRING`) and formats; no topic matches `topics.blacklist`.
async fn check_post(log: &dyn Log, session: &Session, post: &Value) -> Outcome {
    for expected in post["sources"].as_array().into_iter().flatten() {
        let Some(name) = expected["name"].as_str() else { continue };
        let Some(source) = session.catalog().source(name) else {
            return Outcome::Fail(format!("post: source {name} does not exist"));
        };
        if let Some(kind) = expected["type"].as_str()
            && !kind.eq_ignore_ascii_case(source.kind.keyword())
        {
            return Outcome::Fail(format!("post: {name} is a {}, not a {kind}", source.kind.keyword()));
        }
        if let Some(schema) = expected["schema"].as_str() {
            let actual = schema_text(source);
            if normalise_schema(schema) != normalise_schema(&actual) {
                return Outcome::Fail(format!("post: {name} has schema {actual}, expected {schema}"));
            }
        }
        let format_of = |value: &Value| value.as_str().or_else(|| value["format"].as_str()).map(str::to_uppercase);
        if let Some(format) = format_of(&expected["keyFormat"])
            && format != source.key_format.name()
        {
            return Outcome::Fail(format!(
                "post: {name} has key format {}, expected {format}",
                source.key_format.name()
            ));
        }
        if let Some(format) = format_of(&expected["valueFormat"])
            && format != source.value_format.name()
        {
            return Outcome::Fail(format!(
                "post: {name} has value format {}, expected {format}",
                source.value_format.name()
            ));
        }
    }
    if let Some(expected) = post["topics"]["topics"].as_array() {
        // ksqlDB's repartition topics, `_confluent-ksql-<service id>query_<id>-<where>-repartition`,
        // are Eddy's `_eddy_query_<id>-<where>-repartition` (its ids count differently): the
        // same ones, no more.
        let place =
            |name: &str| name.split_once("query_").and_then(|(_, rest)| rest.split_once('-')).map(|p| p.1.to_owned());
        let mut wanted: Vec<String> = expected
            .iter()
            .filter_map(|t| t["name"].as_str())
            .filter(|name| name.ends_with("-repartition"))
            .filter_map(place)
            .collect();
        let topics = match log.list_topics().await {
            Ok(topics) => topics,
            Err(e) => return Outcome::Fail(format!("post: cannot list topics: {e}")),
        };
        let mut made: Vec<String> = topics
            .iter()
            .filter(|t| t.starts_with("_eddy_query_") && t.ends_with("-repartition"))
            .filter_map(|t| place(t))
            .collect();
        wanted.sort();
        made.sort();
        if wanted != made {
            return Outcome::Fail(format!(
                "post: repartition topics {}, expected {}",
                made.join(", "),
                wanted.join(", ")
            ));
        }
    }
    if let Some(pattern) = post["topics"]["blacklist"].as_str() {
        let Ok(regex) = regex::Regex::new(&format!("^(?:{pattern})$")) else {
            return Outcome::Fail(format!("post: bad blacklist pattern {pattern}"));
        };
        match log.list_topics().await {
            Ok(topics) => {
                if let Some(topic) = topics.iter().find(|t| regex.is_match(t)) {
                    return Outcome::Fail(format!("post: topic {topic} matches the blacklist {pattern}"));
                }
            }
            Err(e) => return Outcome::Fail(format!("post: cannot list topics: {e}")),
        }
    }
    Outcome::Pass
}

/// A source's columns as ksqlDB writes a schema: `ID INT KEY, NAME STRING`.
fn schema_text(source: &Source) -> String {
    use crate::catalog::ColumnRole;
    let columns: Vec<String> = source
        .columns
        .iter()
        .map(|c| {
            let role = match &c.role {
                // ksqlDB writes a table's PRIMARY KEY as KEY in schemas.
                ColumnRole::Key => " KEY".to_string(),
                ColumnRole::Value => String::new(),
                ColumnRole::Headers => " HEADERS".to_string(),
                ColumnRole::Header(k) => format!(" HEADER('{k}')"),
            };
            format!("`{}` {}{role}", c.name, c.sql_type)
        })
        .collect();
    columns.join(", ")
}

/// A schema's text compared loosely: no backticks, one spelling per type, no spaces around
/// punctuation.
fn normalise_schema(text: &str) -> String {
    // Unquoted words are upper-cased, as ksqlDB parses a schema's text; quoted ones are kept.
    let text: String = text
        .split('`')
        .enumerate()
        .map(|(i, part)| if i % 2 == 0 { part.to_uppercase() } else { part.to_owned() })
        .collect();
    let mut out = String::with_capacity(text.len());
    let mut last_space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            last_space = true;
            continue;
        }
        if last_space && !matches!(c, '<' | '>' | ',' | '(' | ')') && !out.ends_with(['<', ',', '(']) {
            out.push(' ');
        }
        last_space = false;
        out.push(c);
    }
    // A table's key is `PRIMARY KEY` in some files, `KEY` in others.
    out.split(' ')
        .map(|word| word.replace("INTEGER", "INT").replace("VARCHAR", "STRING"))
        .collect::<Vec<_>>()
        .join(" ")
        .replace(" PRIMARY KEY", " KEY")
}

/// A statement failed: right if the case expects it (with the message), a skip if it needs
/// a later issue, a failure otherwise.
fn refused(case: &TestCase, error: &SessionError) -> Outcome {
    let message = error.to_string();
    if let Some(expected) = &case.node.expected_exception {
        return match &expected.message {
            Some(wanted) if !message.contains(wanted.as_str()) => {
                Outcome::Fail(format!("expected an error with \"{wanted}\", got: {message}"))
            }
            _ => Outcome::Pass,
        };
    }
    if let SessionError::NotSupported { .. } = error
        && let Some(issue) = message.split("issue ").nth(1).and_then(|rest| rest.chars().next())
        && issue.is_ascii_digit()
    {
        return Outcome::Skip(message);
    }
    Outcome::Fail(format!("statement refused: {message}"))
}

/// Creates the topics `CREATE STREAM|TABLE` statements (without PARTITIONS) name, as
/// ksqlDB's test driver has every topic exist up front.
pub(super) async fn create_source_topics(
    log: &dyn Log,
    statements: &str,
    partitions: &BTreeMap<String, u32>,
) -> Result<(), LogError> {
    let Ok(parsed) = crate::sql::parse_sql(statements) else { return Ok(()) };
    for statement in parsed {
        let Statement::CreateSource(create) = statement else { continue };
        let Ok(properties) = property_map(&create.properties) else { continue };
        let Some(topic) = properties.get("KAFKA_TOPIC") else { continue };
        if !properties.contains_key("PARTITIONS") {
            ensure_topic(log, topic, partitions.get(topic).copied().unwrap_or(1)).await?;
        }
    }
    Ok(())
}

pub(super) async fn ensure_topic(log: &dyn Log, topic: &str, partitions: u32) -> Result<(), LogError> {
    match log.create_topic(topic, &TopicSpec::new(partitions)).await {
        Ok(()) | Err(LogError::TopicExists(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The source reading (or writing) `topic`, for its formats.
fn source_for(session: &Session, topic: &str) -> Option<Arc<Source>> {
    session.catalog().sources().find(|s| s.topic == topic).cloned()
}

/// The schemas the case's topics have, registered as ksqlDB's harness registers them before
/// the statements run (`<topic>-key`, `<topic>-value`). Its topics are those the case
/// declares, then those of the statements that declare their columns (a `CREATE` with its
/// columns: their schemas are the ones the statement would register). It keeps them in a
/// Java `HashMap` by name and registers each topic's key schema, then its value schema, in
/// the map's order: that order decides the ids of schemas registered without one.
pub(super) async fn register_schemas(session: &Session, case: &TestCase) -> Result<(), String> {
    let Some(registry) = session.catalog().formats().registry() else { return Ok(()) };
    // ksqlDB's harness registers with a mock registry, which checks no compatibility.
    registry.set_level(None, "NONE").await.map_err(|e| format!("cannot set the registry's compatibility: {e}"))?;
    enum Topic<'a> {
        Declared(&'a super::qtt::TestTopic),
        Derived(Box<Source>),
    }
    let mut topics: Vec<(String, Topic)> =
        case.node.topics.iter().map(|t| (t.name.clone(), Topic::Declared(t))).collect();
    for statement in &case.node.statements {
        if let Some(source) = session.declared_source(statement)
            && !topics.iter().any(|(name, _)| *name == source.topic)
        {
            topics.push((source.topic.clone(), Topic::Derived(Box::new(source))));
        }
    }
    let names: Vec<&str> = topics.iter().map(|(name, _)| name.as_str()).collect();
    for index in java_hash_map_order(&names) {
        match &topics[index].1 {
            Topic::Declared(topic) => register_topic_schemas(registry, topic).await?,
            Topic::Derived(source) => {
                for codec in [&source.key_codec, &source.value_codec] {
                    codec.prepare(crate::format::Registration::Source).await.map_err(|e| e.0)?;
                }
            }
        }
    }
    Ok(())
}

/// The order in which a Java `HashMap<String, _>` (default capacity and load factor) iterates
/// keys put in the order of `names`: by bucket (the hash's spread bits), then as put.
fn java_hash_map_order(names: &[&str]) -> Vec<usize> {
    let mut capacity: usize = 16;
    while names.len() * 4 > capacity * 3 {
        capacity *= 2;
    }
    let bucket = |name: &str| {
        // Java's String.hashCode over UTF-16 code units, then HashMap's spread.
        let hash = name.encode_utf16().fold(0u32, |h, unit| h.wrapping_mul(31).wrapping_add(u32::from(unit)));
        ((hash ^ (hash >> 16)) as usize) & (capacity - 1)
    };
    let mut order: Vec<usize> = (0..names.len()).collect();
    order.sort_by_key(|&i| (bucket(names[i]), i));
    order
}

/// The id after the highest one `registry` has given (ids are given from 1 up, as ksqlDB's
/// harness registers them).
fn next_free_id(registry: &dyn crate::registry::client::SchemaRegistry) -> u32 {
    (1..).find(|id| registry.schema_by_id(*id).is_err()).unwrap_or(1)
}

/// A declared topic's key and value schemas, registered.
async fn register_topic_schemas(
    registry: &crate::registry::client::RegistryRef,
    topic: &super::qtt::TestTopic,
) -> Result<(), String> {
    for (schema, id, key, references) in [
        (&topic.key_schema, topic.key_schema_id, true, &topic.key_schema_references),
        (&topic.value_schema, topic.value_schema_id, false, &topic.value_schema_references),
    ] {
        let Some(raw) = schema else { continue };
        let schema: Value = serde_json::from_str(raw.get()).map_err(|e| e.to_string())?;

        let format = if key { &topic.key_format } else { &topic.value_format };
        let schema_type = match format.as_deref().map(str::to_uppercase).as_deref() {
            Some("JSON_SR" | "JSON") => crate::registry::SchemaType::Json,
            Some("PROTOBUF") => crate::registry::SchemaType::Protobuf,
            Some(_) => crate::registry::SchemaType::Avro,
            // Unnamed: a JSON Schema is an object of properties or a `oneOf`; else Avro.
            None if schema.get("properties").or(schema.get("oneOf")).is_some() || schema["type"] == "object" => {
                crate::registry::SchemaType::Json
            }
            None => crate::registry::SchemaType::Avro,
        };
        // A schema given as a string is that text when it is JSON (quoted) or a `.proto`; an
        // Avro primitive (`"int"`) is the string itself; anything else is as written.
        let text = match &schema {
            Value::String(text)
                if schema_type == crate::registry::SchemaType::Protobuf
                    || serde_json::from_str::<Value>(text).is_ok() =>
            {
                text.clone()
            }
            _ => raw.get().to_owned(),
        };
        // Each schema referred to is registered under its name, as ksqlDB's harness does, but
        // after the schema that refers to it as far as ids go: ksqlDB's mock registry gives the
        // topic's schema the next id. (Eddy's registry wants a reference there before the
        // schema that uses it, so the ids are given: the next free one is kept for the topic's.)
        let reserved = (id.is_none() && !references.is_empty()).then(|| next_free_id(registry.as_ref()));
        let mut names = Vec::with_capacity(references.len());
        for reference in references {
            let text = match &reference.schema {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            let kind = match reference.format.as_deref().map(str::to_uppercase).as_deref() {
                Some("PROTOBUF") => crate::registry::SchemaType::Protobuf,
                Some("JSON_SR" | "JSON") => crate::registry::SchemaType::Json,
                _ => crate::registry::SchemaType::Avro,
            };
            let referenced = crate::registry::Schema { schema: text, schema_type: kind, references: Vec::new() };
            let registered = match reserved {
                Some(reserved) => {
                    let own = next_free_id(registry.as_ref()).max(reserved + 1);
                    registry.import(&reference.name, referenced, own).await
                }
                None => registry.register(&reference.name, referenced).await,
            };
            registered.map_err(|e| format!("cannot register {}: {e}", reference.name))?;
            let version = registry.latest(&reference.name).await.map_err(|e| e.to_string())?.map_or(1, |r| r.version);
            names.push(crate::registry::Reference {
                name: reference.name.clone(),
                subject: reference.name.clone(),
                version,
            });
        }
        let schema = crate::registry::Schema { schema: text, schema_type, references: names };
        let subject = crate::format::Subject::new(topic.name.clone(), key).name();
        let registered = match id.or(reserved) {
            Some(id) => registry.import(&subject, schema, id).await,
            None => registry.register(&subject, schema).await,
        };
        registered.map_err(|e| format!("cannot register {subject}'s schema: {e}"))?;
    }
    Ok(())
}

/// The format `source` reads the side in, if it uses a schema registry.
fn registry_format(source: Option<&Source>, side: Side) -> Option<&'static str> {
    let source = source?;
    let format = match side {
        Side::Key => &source.key_format,
        Side::Value => &source.value_format,
    };
    crate::format::uses_registry(format.name()).then(|| format.name())
}

/// A test value as bytes: in AVRO, with the side's registered schema; else as
/// [`to_bytes`] writes it.
async fn test_bytes(
    session: &Session,
    source: Option<&Source>,
    side: Side,
    topic: &str,
    value: &Value,
) -> Result<Option<Bytes>, String> {
    let subject = crate::format::Subject::new(topic, side == Side::Key).name();
    match (session.catalog().formats().registry(), registry_format(source, side)) {
        (Some(registry), Some(crate::format::AVRO)) if !value.is_null() => {
            Ok(Some(super::avro::to_bytes(registry.as_ref(), &subject, value).await?.into()))
        }
        (Some(registry), Some(crate::format::JSON_SR)) if !value.is_null() => {
            let latest = registry.latest(&subject).await.map_err(|e| e.to_string())?;
            let id = latest.ok_or_else(|| format!("no schema registered for {subject}"))?.id;
            let mut bytes = Vec::new();
            crate::format::confluent::frame(id, &mut bytes);
            bytes.extend(serde_json::to_vec(value).map_err(|e| e.to_string())?);
            Ok(Some(bytes.into()))
        }
        (Some(registry), Some(crate::format::PROTOBUF)) if !value.is_null() => {
            let property = if side == Side::Key { "KEY_SCHEMA_FULL_NAME" } else { "VALUE_SCHEMA_FULL_NAME" };
            let full_name = source.and_then(|s| s.properties.get(property)).map(String::as_str);
            Ok(Some(protobuf_bytes(registry.as_ref(), &subject, full_name, value).await?.into()))
        }
        _ if source.is_some_and(|s| side_format(s, side).is(crate::format::PROTOBUF_NOSR)) && !value.is_null() => {
            let codec = side_codec(source, side).ok_or("no codec")?;
            let decoded = wrapped_json(codec)?.decode(&[value.to_string().as_bytes()]).map_err(|e| e.0)?;
            if let Some((_, error)) = decoded.errors.first() {
                return Err(format!("the test value {value} does not fit the columns: {error}"));
            }
            Ok(codec.encode(&decoded.batch).map_err(|e| e.0)?.pop().flatten())
        }
        _ => to_bytes(source, side, value),
    }
}

fn side_format(source: &Source, side: Side) -> &crate::format::FormatRef {
    match side {
        Side::Key => &source.key_format,
        Side::Value => &source.value_format,
    }
}

fn side_codec(source: Option<&Source>, side: Side) -> Option<&dyn crate::format::Codec> {
    source.map(|s| match side {
        Side::Key => s.key_codec.as_ref(),
        Side::Value => s.value_codec.as_ref(),
    })
}

/// A JSON codec over a codec's columns, wrapped in an object (PROTOBUF's shape).
fn wrapped_json(codec: &dyn crate::format::Codec) -> Result<Arc<dyn crate::format::Codec>, String> {
    crate::format::builtin(crate::format::JSON)
        .codec(codec.schema().clone(), crate::format::FormatOptions::default())
        .map_err(|e| e.0)
}

/// A test value written as a message of `subject`'s latest schema (its first message),
/// framed as Confluent's serializer frames it.
async fn protobuf_bytes(
    registry: &dyn crate::registry::client::SchemaRegistry,
    subject: &str,
    full_name: Option<&str>,
    value: &Value,
) -> Result<Vec<u8>, String> {
    use crate::format::protobuf::{index_in_file, write_message_index};
    use prost::Message as _;
    let latest = registry.latest(subject).await.map_err(|e| e.to_string())?;
    let latest = latest.ok_or_else(|| format!("no schema registered for {subject}"))?;
    let pool = crate::format::protobuf::compile_registered(registry, &latest.schema).map_err(|e| e.0)?;
    let descriptor = crate::format::protobuf::message_of(&pool, full_name).map_err(|e| e.0)?;
    let object = value.as_object().ok_or_else(|| format!("{value} is not a message"))?;
    let message = crate::format::protobuf::message_of_json(&descriptor, object)?;
    let mut bytes = Vec::new();
    crate::format::confluent::frame(latest.id, &mut bytes);
    write_message_index(index_in_file(&descriptor), &mut bytes);
    message.encode(&mut bytes).map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// Framed PROTOBUF bytes as JSON, read with the schema their id names.
fn protobuf_json(registry: &dyn crate::registry::client::SchemaRegistry, bytes: &[u8]) -> Result<Value, String> {
    let (id, rest) = crate::format::confluent::unframe(bytes, "PROTOBUF")?;
    let schema = registry.schema_by_id(id).map_err(|e| e.to_string())?;
    let pool = crate::format::protobuf::compile_registered(registry, &schema).map_err(|e| e.0)?;
    let (indexes, body) = crate::format::protobuf::message_indexes(rest).ok_or("bad message indexes")?;
    let descriptor = crate::format::protobuf::message_at(&pool, &indexes).ok_or("no message")?;
    let message = prost_reflect::DynamicMessage::decode(descriptor, body).map_err(|e| e.to_string())?;
    Ok(crate::format::protobuf::json_of_message(&message))
}

/// Written bytes as a test's JSON: AVRO with the schema their id names; else as [`to_json`]
/// reads them.
fn test_json(session: &Session, source: Option<&Source>, side: Side, bytes: Option<&[u8]>) -> Value {
    match (session.catalog().formats().registry(), bytes, registry_format(source, side)) {
        (Some(registry), Some(bytes), Some(crate::format::AVRO)) => super::avro::to_json(registry.as_ref(), bytes)
            .unwrap_or_else(|e| Value::String(format!("unreadable AVRO ({e}): {}", String::from_utf8_lossy(bytes)))),
        (_, Some([0, _, _, _, _, json @ ..]), Some(crate::format::JSON_SR)) => serde_json::from_slice(json)
            .unwrap_or_else(|_| Value::String(format!("unreadable JSON_SR: {}", String::from_utf8_lossy(json)))),
        (Some(registry), Some(bytes), Some(crate::format::PROTOBUF)) => protobuf_json(registry.as_ref(), bytes)
            .unwrap_or_else(|e| Value::String(format!("unreadable PROTOBUF ({e})"))),
        (_, Some(bytes), _) if source.is_some_and(|s| side_format(s, side).is(crate::format::PROTOBUF_NOSR)) => {
            let read = || -> Result<Value, String> {
                let codec = side_codec(source, side).ok_or("no codec")?;
                let decoded = codec.decode(&[bytes]).map_err(|e| e.0)?;
                if let Some((_, error)) = decoded.errors.first() {
                    return Err(error.clone());
                }
                let json = wrapped_json(codec)?.encode(&decoded.batch).map_err(|e| e.0)?.pop().flatten();
                serde_json::from_slice(&json.ok_or("no bytes")?).map_err(|e| e.to_string())
            };
            read().unwrap_or_else(|e| Value::String(format!("unreadable PROTOBUF_NOSR ({e})")))
        }
        _ => to_json(source, side, bytes),
    }
}

/// Writes one input record on partition 0.
pub(super) async fn feed(
    log: &dyn Log,
    session: &Session,
    input: &TestRecord,
    partitions: &BTreeMap<String, u32>,
) -> Result<(), String> {
    ensure_topic(log, &input.topic, partitions.get(&input.topic).copied().unwrap_or(1))
        .await
        .map_err(|e| e.to_string())?;
    let source = source_for(session, &input.topic);
    let key = match &input.key {
        Some(key) => test_bytes(session, source.as_deref(), Side::Key, &input.topic, key).await?,
        None => None,
    };
    // A windowed source's key carries its window: the start (8 bytes, big-endian), or the
    // end and the start for a session.
    let key = match (&input.window, source.as_ref().map_or(0, |s| s.window_key_bytes())) {
        (Some(window), bytes @ (8 | 16)) => {
            let mut key = key.map(|k| k.to_vec()).unwrap_or_default();
            let (start, end) = (window["start"].as_i64().unwrap_or(0), window["end"].as_i64().unwrap_or(0));
            if bytes == 16 {
                key.extend_from_slice(&end.to_be_bytes());
            }
            key.extend_from_slice(&start.to_be_bytes());
            Some(Bytes::from(key))
        }
        (_, _) => key,
    };
    let value = test_bytes(session, source.as_deref(), Side::Value, &input.topic, &input.value).await?;
    let mut record = NewRecord::new(input.timestamp.unwrap_or(0), key, value);
    for header in input.headers.iter().flatten() {
        let value = match &header.value {
            Some(text) => Some(Bytes::from(
                crate::format::base64_decode(text).ok_or_else(|| format!("header {} is not base64", header.key))?,
            )),
            None => None,
        };
        record.headers.push(Header { key: header.key.clone(), value });
    }
    log.append(&input.topic, 0, &[record]).await.map(|_| ()).map_err(|e| e.to_string())
}

/// What the queries wrote to the topics the case checks, in the order it was written.
pub(super) struct Outputs {
    /// Per topic: the next offset to read per partition, and the records read.
    topics: BTreeMap<String, (Vec<u64>, Vec<crate::log::Record>)>,
}

impl Outputs {
    pub(super) fn new(topics: impl Iterator<Item = String>) -> Self {
        Outputs { topics: topics.map(|t| (t, (Vec::new(), Vec::new()))).collect() }
    }

    /// Reads what was written since the last call (partition by partition).
    pub(super) async fn collect(&mut self, log: &dyn Log) -> Result<(), LogError> {
        for (topic, (positions, records)) in self.topics.iter_mut() {
            let count = match log.partition_count(topic).await {
                Ok(count) => count,
                Err(LogError::UnknownTopic(_)) => continue,
                Err(e) => return Err(e),
            };
            positions.resize(count as usize, 0);
            for partition in 0..count {
                loop {
                    let fetch = log.read(topic, partition, positions[partition as usize], 1 << 20).await?;
                    let Some(last) = fetch.records.last() else { break };
                    positions[partition as usize] = last.offset + 1;
                    records.extend(fetch.records);
                }
            }
        }
        Ok(())
    }
}

pub(super) fn compare_outputs(session: &Session, expected: &[TestRecord], outputs: &Outputs) -> Outcome {
    for (topic, (_, actual)) in &outputs.topics {
        let wanted: Vec<&TestRecord> = expected.iter().filter(|r| r.topic == *topic).collect();
        let source = source_for(session, topic);
        // A windowed key is the key proper, then the window start (8 bytes, big-endian).
        let window_bytes = source.as_ref().map_or(0, |s| s.window_key_bytes());
        let window_size = source.as_ref().and_then(|s| s.window()).and_then(|(_, size)| size);
        let got: Vec<Written> = actual
            .iter()
            .map(|r| {
                let (key, window) = match r.key.as_deref() {
                    Some(key) if window_bytes == 8 && key.len() >= 8 => {
                        let (proper, start) = key.split_at(key.len() - 8);
                        let start = i64::from_be_bytes(start.try_into().unwrap_or_default());
                        (Some(proper), Some((start, start + window_size.unwrap_or(0))))
                    }
                    // A session: the key proper, then the end and the start.
                    Some(key) if window_bytes == 16 && key.len() >= 16 => {
                        let (proper, window) = key.split_at(key.len() - 16);
                        let end = i64::from_be_bytes(window[..8].try_into().unwrap_or_default());
                        let start = i64::from_be_bytes(window[8..].try_into().unwrap_or_default());
                        (Some(proper), Some((start, end)))
                    }
                    other => (other, None),
                };
                (
                    test_json(session, source.as_deref(), Side::Key, key),
                    test_json(session, source.as_deref(), Side::Value, r.value.as_deref()),
                    r.timestamp_ms,
                    window,
                )
            })
            .collect();
        for (i, want) in wanted.iter().enumerate() {
            let Some((key, value, timestamp, window)) = got.get(i) else {
                return Outcome::Fail(format!(
                    "topic {topic}: expected {} records, got {}; the first missing is {}",
                    wanted.len(),
                    got.len(),
                    describe(want)
                ));
            };
            let key_ok = matches(want.key.as_ref().unwrap_or(&Value::Null), key);
            let value_ok = matches(&want.value, value);
            let time_ok = want.timestamp.is_none_or(|t| t == *timestamp);
            let window_ok = want.window.as_ref().is_none_or(|w| {
                let (start, end) = (w["start"].as_i64(), w["end"].as_i64());
                window.is_some_and(|(s, e)| start == Some(s) && end == Some(e))
            });
            if !(key_ok && value_ok && time_ok && window_ok) {
                let shown = window.map(|(s, e)| format!(" window=[{s},{e})")).unwrap_or_default();
                return Outcome::Fail(format!(
                    "topic {topic} record {i}: expected {}, got key={key} value={value} timestamp={timestamp}{shown}",
                    describe(want)
                ));
            }
        }
        if got.len() > wanted.len() {
            let (key, value, _, _) = &got[wanted.len()];
            return Outcome::Fail(format!(
                "topic {topic}: expected {} records, got {}; the first extra is key={key} value={value}",
                wanted.len(),
                got.len()
            ));
        }
    }
    Outcome::Pass
}

/// A written record as compared: key, value, timestamp, window (start, end).
type Written = (Value, Value, i64, Option<(i64, i64)>);

fn describe(record: &TestRecord) -> String {
    let key = record.key.as_ref().map_or_else(|| "null".to_string(), |k| k.to_string());
    let time = record.timestamp.map(|t| format!(" timestamp={t}")).unwrap_or_default();
    format!("key={key} value={}{time}", record.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_are_taken_in_a_java_hash_maps_order() {
        // Java: "OUTPUT".hashCode() spreads to bucket 5, "input" to 1, "model-transaction" to 0,
        // "transaction" to 14 (of 16).
        assert_eq!(java_hash_map_order(&["OUTPUT", "input"]), [1, 0]);
        assert_eq!(java_hash_map_order(&["transaction", "model-transaction"]), [1, 0]);
        // Past 12 keys the table has 32 buckets; the order is still by bucket, then as put.
        let many: Vec<String> = (0..13).map(|i| format!("t{i}")).collect();
        let names: Vec<&str> = many.iter().map(String::as_str).collect();
        // (Buckets of t0…t12 among 32: 28, 29, 30, 31, 0, 1, 2, 3, 4, 5, 18, 21, 20.)
        assert_eq!(java_hash_map_order(&names), [4, 5, 6, 7, 8, 9, 10, 12, 11, 0, 1, 2, 3]);
    }

    #[test]
    fn schemas_compare_as_ksqldb_parses_them() {
        assert_eq!(
            normalise_schema("ROWOFFSET BIGINT KEY, val INT"),
            normalise_schema("`ROWOFFSET` BIGINT KEY, `VAL` INTEGER")
        );
        assert_eq!(
            normalise_schema("`ROWKEY` struct<`id` BIGINT> KEY"),
            normalise_schema("`ROWKEY` STRUCT<`id` BIGINT> KEY")
        );
        assert_ne!(normalise_schema("`id` INT"), normalise_schema("`ID` INT"));
    }
}
