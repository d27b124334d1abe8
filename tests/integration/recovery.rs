//! Crash recovery: a query killed at any moment resumes from its last checkpoint, and its
//! output ends exactly as an uninterrupted run's.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::Bytes;
use eddy::log::{EmbeddedLog, Log, NewRecord, TopicSpec};

use super::cli::{eddy, run_ok};
use super::support::{records, text};

const USERS: u64 = 200;

/// `events`: `count` JSON records keyed by user, a millisecond apart, on 2 partitions.
async fn write_events(dir: &Path, count: u64) {
    let log = EmbeddedLog::open(dir).unwrap();
    log.create_topic("events", &TopicSpec::new(2)).await.unwrap();
    let mut batch: [Vec<NewRecord>; 2] = [Vec::new(), Vec::new()];
    for i in 0..count {
        let user = format!("u{}", (i * 7919) % USERS);
        let value = format!(r#"{{"user":"{user}","amount":{}}}"#, i % 10);
        let partition = (i % USERS % 2) as usize;
        batch[partition].push(NewRecord::new(i as i64, Some(Bytes::from(user)), Some(Bytes::from(value))));
        if batch[partition].len() == 10_000 {
            log.append("events", partition as u32, &std::mem::take(&mut batch[partition])).await.unwrap();
        }
    }
    for (partition, records) in batch.iter().enumerate() {
        log.append("events", partition as u32, records).await.unwrap();
    }
}

const COUNTS: &str = "SET 'auto.offset.reset' = 'earliest';
CREATE STREAM events (user STRING KEY, amount BIGINT) WITH (KAFKA_TOPIC='events', VALUE_FORMAT='JSON');
CREATE TABLE counts AS SELECT user, COUNT(*) AS n, SUM(amount) AS total
  FROM events WINDOW TUMBLING (SIZE 10 SECONDS) GROUP BY user;";

/// The output topic as `(key bytes → values in order)`.
async fn changelog(dir: &Path, topic: &str) -> BTreeMap<Vec<u8>, Vec<serde_json::Value>> {
    let log = EmbeddedLog::open(dir).unwrap();
    let mut changes: BTreeMap<Vec<u8>, Vec<serde_json::Value>> = BTreeMap::new();
    for record in records(&log, topic).await {
        let value = serde_json::from_str(&text(&record.value)).unwrap();
        changes.entry(record.key.map(|k| k.to_vec()).unwrap_or_default()).or_default().push(value);
    }
    changes
}

/// How many records `COUNTS` holds past the latest checkpoint of the query writing it (once
/// it has taken a checkpoint after its first).
async fn output_past_checkpoint(log: &EmbeddedLog, dir: &Path) -> Option<u64> {
    let store = eddy::engine::checkpoint::FileStore::new(&dir.join("checkpoints"), "CTAS_COUNTS_1");
    let checkpoint = store.latest().ok()??;
    if checkpoint.epoch == 0 {
        return None;
    }
    let mut past = 0;
    for (partition, end) in checkpoint.sink {
        past += log.latest_offset("COUNTS", partition).await.ok()?.saturating_sub(end);
    }
    Some(past)
}

/// The issue's "done when": a windowed aggregation killed with SIGKILL mid-run and resumed
/// ends with the same result as an uninterrupted run, and its changelog shows no replayed
/// update (each window's count only increases along the output topic).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_windowed_count_killed_with_sigkill_resumes_exactly_once() {
    const EVENTS: u64 = 800_000;
    let straight = tempfile::tempdir().unwrap();
    let crashed = tempfile::tempdir().unwrap();
    let script = straight.path().join("counts.sql");
    std::fs::write(&script, COUNTS).unwrap();
    for dir in [straight.path(), crashed.path()] {
        write_events(dir, EVENTS).await;
    }
    run_ok(straight.path(), &["run", script.to_str().unwrap(), "--until-idle"]);

    // Checkpoints every 20 ms. Killed again and again, each time once the query has written
    // output past its latest checkpoint (which the next start must cut off), until it was
    // killed so at least twice.
    let expected = changelog(straight.path(), "COUNTS").await;
    let log = EmbeddedLog::open(crashed.path()).unwrap();
    let (mut kills, mut finished) = (0, false);
    while kills < 2 && !finished {
        let mut args = vec!["run", "--until-idle"];
        if kills == 0 {
            args.insert(1, script.to_str().unwrap());
        }
        let mut child = eddy(crashed.path())
            .args(&args)
            .env("EDDY_CHECKPOINT_INTERVAL_MS", "20")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if child.try_wait().unwrap().is_some() {
                finished = true;
                break;
            }
            assert!(Instant::now() < deadline, "no progress within two minutes");
            if let Some(past) = output_past_checkpoint(&log, crashed.path()).await
                && past > 0
            {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                // A checkpoint may have been taken between the look and the kill.
                let written: usize = changelog(crashed.path(), "COUNTS").await.values().map(Vec::len).sum();
                assert!(written < expected.values().map(Vec::len).sum(), "killed before the end");
                if output_past_checkpoint(&log, crashed.path()).await.is_some_and(|past| past > 0) {
                    kills += 1;
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    assert_eq!(kills, 2, "the query finished before it was killed twice with output to cut off");

    // Resumed with no file: the data directory's query goes on from its checkpoint.
    run_ok(crashed.path(), &["run", "--until-idle"]);
    let resumed = changelog(crashed.path(), "COUNTS").await;
    let last = |c: &BTreeMap<Vec<u8>, Vec<serde_json::Value>>| -> BTreeMap<Vec<u8>, serde_json::Value> {
        c.iter().map(|(k, v)| (k.clone(), v.last().unwrap().clone())).collect()
    };
    assert_eq!(last(&resumed), last(&expected), "the final counts differ from an uninterrupted run's");
    // The straight run is right: every event is counted once.
    let counted: u64 = last(&expected).values().map(|v| v["N"].as_u64().unwrap()).sum();
    assert_eq!(counted, EVENTS);
    for (key, values) in &resumed {
        let counts: Vec<u64> = values.iter().map(|v| v["N"].as_u64().unwrap()).collect();
        assert!(counts.windows(2).all(|w| w[0] < w[1]), "a replayed update for {key:?}: {counts:?}");
    }
}

/// What the queries of a session wrote: per sink topic, a table's final row per key, or a
/// stream's records (sorted, as partitions interleave differently from run to run).
async fn outputs(s: &eddy::session::Session) -> BTreeMap<String, Vec<(String, String)>> {
    use eddy::sql::ast::SourceKind;
    let mut all = BTreeMap::new();
    for query in s.catalog().queries() {
        let Some(sink) = s.catalog().source(&query.sink) else { continue };
        let mut rows: Vec<(String, String)> = Vec::new();
        let mut last: BTreeMap<Vec<u8>, String> = BTreeMap::new();
        for record in records(s.log().as_ref(), &sink.topic).await {
            match sink.kind {
                SourceKind::Table => {
                    last.insert(record.key.as_deref().unwrap_or_default().to_vec(), text(&record.value));
                }
                SourceKind::Stream => rows.push((text(&record.key), text(&record.value))),
            }
        }
        rows.extend(last.into_iter().map(|(k, v)| (String::from_utf8_lossy(&k).into_owned(), v)));
        rows.sort();
        all.insert(sink.topic.clone(), rows);
    }
    all
}

/// Every pipeline in `queries/`, run straight and with the process "killed" (every task
/// dropped, nothing flushed or checkpointed on the way out) and resumed, with one schedule:
/// its statements, then its inputs one INSERT at a time, each processed before the next (so
/// that a join meets its inputs in one order). The crash comes right after an INSERT, while
/// the queries process it; at the first, middle and last INSERT in turn. The outputs are the
/// same every time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_pipeline_recovers_from_a_crash_with_the_same_results() {
    use super::support::{run, session};
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("queries");
    let mut compared = 0;
    let mut paths: Vec<_> = std::fs::read_dir(&examples).unwrap().map(|e| e.unwrap().path()).collect();
    paths.sort();
    for path in paths.into_iter().filter(|p| p.extension().is_some_and(|e| e == "sql")) {
        let script = std::fs::read_to_string(&path).unwrap();
        if script.contains("\n-- requires: ") {
            continue; // (it needs a server outside: its own test runs it)
        }
        let statements = eddy::session::Session::statements(&script).unwrap();
        let is = |s: &str, words: &[&str]| {
            let upper = s.trim_start().to_uppercase();
            words.iter().any(|w| upper.starts_with(w))
        };
        let setup: String = statements
            .iter()
            .filter(|s| !is(s, &["INSERT", "SELECT", "PRINT", "SHOW", "LIST", "DESCRIBE", "EXPLAIN"]))
            .map(|s| format!("{s};\n"))
            .collect();
        let inserts: Vec<String> = statements.iter().filter(|s| is(s, &["INSERT"])).map(|s| format!("{s};")).collect();

        let straight = tempfile::tempdir().unwrap();
        let (_, mut s) = session(straight.path()).await;
        run(&mut s, &setup).await.unwrap();
        for insert in &inserts {
            run(&mut s, insert).await.unwrap();
            s.wait_until_idle().await.unwrap();
        }
        let expected = outputs(&s).await;
        s.shutdown().await;
        if expected.is_empty() {
            continue;
        }
        compared += 1;

        let mut crash_points = vec![0, inserts.len() / 2, inserts.len().saturating_sub(1)];
        crash_points.dedup();
        for crash_after in crash_points {
            let crashed = tempfile::tempdir().unwrap();
            let (_, mut s) = session(crashed.path()).await;
            // Checkpoints as often as they can be: the crash finds some state to restore.
            run(&mut s, &format!("SET 'eddy.checkpoint.interval.ms' = '0';\n{setup}")).await.unwrap();
            for (i, insert) in inserts.iter().enumerate() {
                run(&mut s, insert).await.unwrap();
                if i == crash_after {
                    drop(s); // the crash
                    s = session(crashed.path()).await.1;
                }
                // Processed and checkpointed before the next INSERT, as it was processed
                // before the next in the straight run: the crash replays only what the last
                // INSERT brought, in the order the straight run saw it.
                s.wait_until_checkpointed().await.unwrap();
            }
            let got = outputs(&s).await;
            s.shutdown().await;
            assert_eq!(got, expected, "{}, crashed after INSERT {crash_after}", path.display());
        }
    }
    assert!(compared >= 7, "pipelines with persistent queries compared: {compared}");
}

/// A query whose state outgrows `eddy.query.state.max.bytes` stops with an error that says
/// so; the other queries keep running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_over_its_state_limit_stops_and_the_others_run_on() {
    use super::support::{run, session};
    let dir = tempfile::tempdir().unwrap();
    let (log, mut s) = session(dir.path()).await;
    write_events(dir.path(), 20_000).await;
    run(
        &mut s,
        "SET 'auto.offset.reset' = 'earliest';
         CREATE STREAM events (user STRING KEY, amount BIGINT) WITH (KAFKA_TOPIC='events', VALUE_FORMAT='JSON');
         SET 'eddy.query.state.max.bytes' = '20000';
         CREATE TABLE per_user AS SELECT user, COUNT(*) AS n FROM events GROUP BY user;
         UNSET 'eddy.query.state.max.bytes';
         CREATE STREAM big AS SELECT user, amount * 2 AS doubled FROM events;",
    )
    .await
    .unwrap();
    s.wait_until_idle().await.unwrap();
    // The limit is checked at the barriers (a tenth of the checkpoint interval after the
    // input is caught up).
    let deadline = Instant::now() + Duration::from_secs(30);
    let statuses = loop {
        let statuses: BTreeMap<String, String> =
            s.query_metrics().await.into_iter().map(|m| (m.sink, m.status)).collect();
        if statuses["PER_USER"] != "RUNNING" || Instant::now() > deadline {
            break statuses;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(statuses["PER_USER"], "ERROR");
    assert_eq!(statuses["BIG"], "RUNNING");
    let explained = run(&mut s, "EXPLAIN CTAS_PER_USER_1;").await.unwrap().join("");
    assert!(explained.contains("more than its limit of 20000 (eddy.query.state.max.bytes)"), "{explained}");
    assert_eq!(records(log.as_ref(), "BIG").await.len(), 20_000);
}

/// A checkpoint that cannot be written fails its query at once, saying why: an idle query
/// has no next barrier to notice it at, and `wait_until_checkpointed` would wait forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_that_cannot_be_written_fails_its_query() {
    use super::support::{run, session};
    let dir = tempfile::tempdir().unwrap();
    let (_log, mut s) = session(dir.path()).await;
    run(
        &mut s,
        "SET 'auto.offset.reset' = 'earliest';
         CREATE STREAM x (k STRING KEY, v INT) WITH (KAFKA_TOPIC='x', VALUE_FORMAT='JSON', PARTITIONS=1);
         CREATE STREAM z AS SELECT k, v * 10 AS v FROM x;",
    )
    .await
    .unwrap();
    s.wait_until_checkpointed().await.unwrap();
    // A file where the query's checkpoints go: the next one cannot be written.
    let checkpoints = dir.path().join("checkpoints").join("CSAS_Z_1");
    std::fs::remove_dir_all(&checkpoints).unwrap();
    std::fs::write(&checkpoints, b"in the way").unwrap();
    run(&mut s, "INSERT INTO x (k, v) VALUES ('a', 1);").await.unwrap();
    let waited = tokio::time::timeout(Duration::from_secs(60), s.wait_until_checkpointed()).await;
    waited.expect("the wait ends when the query fails").unwrap();
    let statuses: BTreeMap<String, String> = s.query_metrics().await.into_iter().map(|m| (m.sink, m.status)).collect();
    assert_eq!(statuses["Z"], "ERROR");
    let explained = run(&mut s, "EXPLAIN CSAS_Z_1;").await.unwrap().join("");
    assert!(explained.contains("checkpoint"), "{explained}");
}

/// Rows others write into a query's output (here INSERT VALUES) are read downstream even
/// while the query is idle, and a clean restart keeps them: only a crash cuts output back,
/// and only to where the query's last checkpoint saw the topic end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_others_write_into_an_output_are_seen_and_kept() {
    use super::support::{run, session};
    let dir = tempfile::tempdir().unwrap();
    let (log, mut s) = session(dir.path()).await;
    run(
        &mut s,
        "SET 'auto.offset.reset' = 'earliest';
         CREATE STREAM x (k STRING KEY, v INT) WITH (KAFKA_TOPIC='x', VALUE_FORMAT='JSON', PARTITIONS=1);
         INSERT INTO x (k, v) VALUES ('a', 1);
         CREATE STREAM z AS SELECT k, v * 10 AS v FROM x;
         CREATE STREAM w AS SELECT k, v + 1 AS v FROM z;",
    )
    .await
    .unwrap();
    s.wait_until_checkpointed().await.unwrap();
    // Z is idle, and checkpointed; a row goes into its topic from elsewhere.
    run(&mut s, "INSERT INTO z (k, v) VALUES ('b', 7);").await.unwrap();
    s.wait_until_idle().await.unwrap();
    let values = |records: Vec<eddy::log::Record>| -> Vec<String> { records.iter().map(|r| text(&r.value)).collect() };
    assert_eq!(values(records(log.as_ref(), "W").await), [r#"{"V":11}"#, r#"{"V":8}"#]);
    s.shutdown().await;
    drop(s);
    // A clean restart cuts nothing.
    let (log, mut s) = session(dir.path()).await;
    run(&mut s, "INSERT INTO x (k, v) VALUES ('c', 2);").await.unwrap();
    s.wait_until_idle().await.unwrap();
    assert_eq!(values(records(log.as_ref(), "Z").await), [r#"{"V":10}"#, r#"{"V":7}"#, r#"{"V":20}"#]);
    assert_eq!(values(records(log.as_ref(), "W").await), [r#"{"V":11}"#, r#"{"V":8}"#, r#"{"V":21}"#]);
}
