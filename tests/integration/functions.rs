//! ksqlDB's built-in functions, as data: `tests/functions/*.cases` hold SQL expressions and
//! the JSON each must produce, run through the same session path as a user's query (a
//! persistent query over one row, its output read back from its sink topic).
//!
//! A case file has lines of three kinds:
//! - `EXPRESSION => JSON`: the expression's value in ksqlDB's JSON (numbers compare by value,
//!   maps without order);
//! - `EXPRESSION => error`: the function fails on the row, so the value is null and the
//!   processing log gets an entry (ksqlDB's behaviour for a function that throws);
//! - `EXPRESSION => refused: TEXT`: the query is refused before it starts, with TEXT in the
//!   message.
//!
//! Scalar expressions read the columns of one input row, `I INT = 5, BI BIGINT = 5,
//! D DOUBLE = 2.5, S STRING = 'text'`, and literals. Aggregates come in blocks: a line
//! `@ TYPE | v1 | v2 | …` gives the rows of a column `V` (values as SQL literals, all in one
//! group), and the cases after it aggregate over them, their JSON being the group's last result.
//!
//! Every ksqlDB function `SHOW FUNCTIONS` lists must appear in some case.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::support::{records, run, session};

/// One case: where it is, the SQL, and what it must give.
#[derive(Debug, Clone)]
struct Case {
    at: String,
    expression: String,
    expected: Expected,
}

#[derive(Debug, Clone)]
enum Expected {
    Value(Value),
    Error,
    Refused(String),
}

/// Cases sharing their input: scalar ones over the fixed row, or one aggregate block.
#[derive(Debug, Default)]
struct Group {
    /// `None` for scalar cases; else the column type and the values' SQL.
    rows: Option<(String, Vec<String>)>,
    cases: Vec<Case>,
}

fn case_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/functions");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/functions")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cases"))
        .collect();
    files.sort();
    files
}

fn parse(path: &Path) -> Vec<Group> {
    let text = std::fs::read_to_string(path).unwrap();
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let mut groups = vec![Group::default()];
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = format!("{name}:{}", number + 1);
        if let Some(block) = line.strip_prefix('@') {
            let mut parts = block.split(" | ").map(str::trim);
            let column_type = parts.next().unwrap().to_owned();
            groups.push(Group { rows: Some((column_type, parts.map(str::to_owned).collect())), cases: vec![] });
            continue;
        }
        let (expression, expected) = line.rsplit_once(" => ").unwrap_or_else(|| panic!("{at}: no ` => `"));
        let expected = match expected.trim() {
            "error" => Expected::Error,
            other => match other.strip_prefix("refused:") {
                Some(message) => Expected::Refused(message.trim().to_owned()),
                None => Expected::Value(
                    serde_json::from_str(other).unwrap_or_else(|e| panic!("{at}: expected JSON ({e}): {other}")),
                ),
            },
        };
        groups.last_mut().unwrap().cases.push(Case { at, expression: expression.trim().to_owned(), expected });
    }
    groups
}

/// Whether a value written by Eddy is the expected one.
fn same(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Number(e), Value::Number(a)) => {
            let (e, a) = (e.as_f64().unwrap(), a.as_f64().unwrap());
            e == a || (e - a).abs() <= 1e-12 * e.abs().max(a.abs())
        }
        (Value::Array(e), Value::Array(a)) => e.len() == a.len() && e.iter().zip(a).all(|(e, a)| same(e, a)),
        (Value::Object(e), Value::Object(a)) => {
            e.len() == a.len() && e.iter().all(|(k, v)| a.get(k).is_some_and(|a| same(v, a)))
        }
        (e, a) => e == a,
    }
}

/// Runs one group's cases in one session; returns the failures.
async fn run_group(group: &Group, number: usize) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut s) = session(dir.path()).await;
    let source = format!("FN_INPUT_{number}");
    let setup = match &group.rows {
        None => format!(
            "CREATE STREAM {source} (ID INT KEY, I INT, BI BIGINT, D DOUBLE, S STRING)
               WITH (KAFKA_TOPIC='{source}', VALUE_FORMAT='JSON', PARTITIONS=1);
             INSERT INTO {source} (ID, I, BI, D, S) VALUES (1, 5, 5, 2.5, 'text');"
        ),
        Some((column_type, values)) => {
            let mut script = format!(
                "CREATE STREAM {source} (ID INT KEY, V {column_type})
                   WITH (KAFKA_TOPIC='{source}', VALUE_FORMAT='JSON', PARTITIONS=1);"
            );
            for value in values {
                script.push_str(&format!("INSERT INTO {source} (ID, V) VALUES (1, {value});"));
            }
            script
        }
    };
    run(&mut s, &format!("{setup} SET 'auto.offset.reset' = 'earliest';")).await.unwrap();
    let mut failures = Vec::new();
    let mut queries = 0;
    let mut query = async |s: &mut eddy::session::Session, cases: &[&Case]| {
        queries += 1;
        let sink = format!("FN_OUT_{queries}");
        let items: Vec<String> = cases.iter().enumerate().map(|(i, c)| format!("{} AS C{i}", c.expression)).collect();
        let sql = match group.rows {
            None => format!("CREATE STREAM {sink} AS SELECT ID, {} FROM {source};", items.join(", ")),
            Some(_) => format!("CREATE TABLE {sink} AS SELECT ID, {} FROM {source} GROUP BY ID;", items.join(", ")),
        };
        let outcome = run(s, &sql).await;
        s.wait_until_idle().await.unwrap();
        (sink, outcome)
    };
    let values: Vec<&Case> = group.cases.iter().filter(|c| matches!(c.expected, Expected::Value(_))).collect();
    if !values.is_empty() {
        let (sink, outcome) = query(&mut s, &values).await;
        match outcome {
            Ok(_) => {
                let written = records(log.as_ref(), &sink).await;
                let last: Value = written
                    .last()
                    .and_then(|r| r.value.as_deref())
                    .map(|v| serde_json::from_slice(v).unwrap())
                    .unwrap_or(Value::Null);
                for (i, case) in values.iter().enumerate() {
                    let Expected::Value(expected) = &case.expected else { unreachable!() };
                    let actual = last.get(format!("C{i}")).cloned().unwrap_or(Value::Null);
                    if !same(expected, &actual) {
                        failures.push(format!("{}: {} gave {actual}, not {expected}", case.at, case.expression));
                    }
                }
            }
            // One refused expression refuses the query: try each alone to say which.
            Err(_) => {
                for case in &values {
                    let (_, outcome) = query(&mut s, &[case]).await;
                    if let Err(e) = outcome {
                        failures.push(format!("{}: {} was refused: {e}", case.at, case.expression));
                    }
                }
                if failures.is_empty() {
                    failures.push(format!("{}…: refused together, each alone passes", values[0].at));
                }
            }
        }
    }
    for case in group.cases.iter().filter(|c| !matches!(c.expected, Expected::Value(_))) {
        let entries_before = processing_log_entries(log.as_ref()).await;
        let (sink, outcome) = query(&mut s, &[case]).await;
        match (&case.expected, outcome) {
            (Expected::Refused(message), Err(e)) if e.to_string().contains(message.as_str()) => {}
            (Expected::Refused(message), outcome) => failures
                .push(format!("{}: {} gave {outcome:?}, not a refusal with {message:?}", case.at, case.expression)),
            (_, Err(e)) => failures.push(format!("{}: {} was refused: {e}", case.at, case.expression)),
            (_, Ok(_)) => {
                let written = records(log.as_ref(), &sink).await;
                let value: Value = written
                    .last()
                    .and_then(|r| r.value.as_deref())
                    .map_or(Value::Null, |v| serde_json::from_slice(v).unwrap());
                let entries = processing_log_entries(log.as_ref()).await - entries_before;
                if !value.get("C0").unwrap_or(&Value::Null).is_null() || entries == 0 {
                    failures.push(format!(
                        "{}: {} gave {value} and {entries} processing-log entries, not null and an entry",
                        case.at, case.expression
                    ));
                }
            }
        }
    }
    s.shutdown().await;
    failures
}

/// How many entries the processing log has (none before its topic exists).
async fn processing_log_entries(log: &dyn eddy::log::Log) -> usize {
    let topic = eddy::engine::processing_log::PROCESSING_LOG_TOPIC;
    match log.partition_count(topic).await {
        Ok(_) => records(log, topic).await.len(),
        Err(_) => 0,
    }
}

/// The upper-cased names of the functions a case calls (words followed by `(`).
fn called(expression: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut word = String::new();
    for c in expression.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
        } else {
            if c == '(' && !word.is_empty() {
                names.insert(word.to_ascii_uppercase());
            }
            if !c.is_whitespace() {
                word.clear();
            }
        }
    }
    names
}

#[tokio::test]
async fn every_function_gives_what_ksqldb_documents() {
    let mut failures = Vec::new();
    let mut covered = BTreeSet::new();
    let mut count = 0;
    for file in case_files() {
        for (number, group) in parse(&file).iter().enumerate() {
            count += group.cases.len();
            covered.extend(group.cases.iter().flat_map(|c| called(&c.expression)));
            failures.extend(run_group(group, number).await);
        }
    }
    assert!(count > 0, "no cases in tests/functions");
    let uncovered: Vec<&str> = eddy::engine::udf::catalogue::CATALOGUE
        .iter()
        .map(|f| f.name)
        .filter(|name| !covered.contains(*name))
        .collect();
    assert!(uncovered.is_empty(), "functions with no case in tests/functions: {uncovered:?}");
    assert!(failures.is_empty(), "{} of {count} cases failed:\n{}", failures.len(), failures.join("\n"));
}
