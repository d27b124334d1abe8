//! Session windows: the example in `queries/` merges sessions as Kafka Streams does, with
//! tombstones for the sessions merged away, keys carrying the session's end and start.

use std::sync::Arc;

use eddy::log::{EmbeddedLog, Log};
use eddy::session::{Session, StatementResult};

fn example() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("queries/user-sessions.sql");
    std::fs::read_to_string(path).unwrap()
}

/// `(user, start, end, value)` of each record, the window read from the key's last 16 bytes
/// (end, then start, big-endian), minutes after midnight.
fn session_records(records: &[eddy::log::Record]) -> Vec<(String, i64, i64, String)> {
    const MIDNIGHT: i64 = 1_767_225_600_000;
    records
        .iter()
        .map(|r| {
            let key = r.key.as_deref().unwrap();
            let (user, window) = key.split_at(key.len() - 16);
            let end = i64::from_be_bytes(window[..8].try_into().unwrap());
            let start = i64::from_be_bytes(window[8..].try_into().unwrap());
            let value = r.value.as_deref().map_or("<null>".to_string(), |v| {
                let json: serde_json::Value = serde_json::from_slice(v).unwrap();
                json["CLICKS"].to_string()
            });
            (String::from_utf8_lossy(user).into_owned(), (start - MIDNIGHT) / 60_000, (end - MIDNIGHT) / 60_000, value)
        })
        .collect()
}

#[tokio::test]
async fn sessions_merge_with_tombstones_for_the_sessions_merged_away() {
    let dir = tempfile::tempdir().unwrap();
    let log: Arc<dyn Log> = Arc::new(EmbeddedLog::open(dir.path()).unwrap());
    let mut s = Session::open(Arc::clone(&log)).await.unwrap();
    s.set_until_idle(true);
    let mut out = Vec::new();
    s.execute(&example(), &mut |r: StatementResult| out.push(r.to_string())).await.unwrap();
    s.wait_until_idle().await.unwrap();
    let fetch = log.read("SESSIONS", 0, 0, usize::MAX / 2).await.unwrap();
    let alice: Vec<_> = session_records(&fetch.records).into_iter().filter(|r| r.0 == "alice").collect();
    let row = |start: i64, end: i64, value: &str| ("alice".to_string(), start, end, value.to_string());
    assert_eq!(
        alice,
        [
            row(0, 0, "1"),
            row(0, 0, "<null>"), // merged into the next
            row(0, 2, "2"),
            row(10, 10, "1"), // more than 5 minutes later: a session of its own
            row(0, 2, "<null>"),
            row(10, 10, "<null>"),
            row(0, 10, "4"), // 00:06 bridges the two
        ]
    );
    // The session's end is the output record's timestamp.
    let last = fetch.records.iter().rev().find(|r| r.key.as_deref().is_some_and(|k| k.starts_with(b"alice"))).unwrap();
    assert_eq!(last.timestamp_ms, 1_767_225_600_000 + 10 * 60_000);
    // The pull query at the end of the file answers with the merged session.
    let answer = out.concat();
    assert!(answer.contains(" alice   | 00:00   | 00:10 | 4      | [/home, /search, /cart, /deals]"), "{answer}");
    let described = {
        let mut d = Vec::new();
        s.execute("DESCRIBE EXTENDED sessions;", &mut |r: StatementResult| d.push(r.to_string())).await.unwrap();
        d.concat()
    };
    assert!(described.contains("SESSION"), "{described}");
    s.shutdown().await;
}

#[tokio::test]
async fn a_late_record_for_a_closed_session_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let log: Arc<dyn Log> = Arc::new(EmbeddedLog::open(dir.path()).unwrap());
    let mut s = Session::open(Arc::clone(&log)).await.unwrap();
    s.set_until_idle(true);
    let script = "SET 'auto.offset.reset' = 'earliest';
        SET 'eddy.source.linger.ms' = '0';
        CREATE STREAM pings (id STRING KEY, n INT) WITH (KAFKA_TOPIC='pings', VALUE_FORMAT='JSON', PARTITIONS=1);
        CREATE TABLE runs AS SELECT id, COUNT(*) AS n FROM pings
          WINDOW SESSION (10 SECONDS, GRACE PERIOD 5 SECONDS) GROUP BY id EMIT FINAL;
        INSERT INTO pings (ROWTIME, id, n) VALUES (0, 'a', 1);
        INSERT INTO pings (ROWTIME, id, n) VALUES (4000, 'a', 1);
        INSERT INTO pings (ROWTIME, id, n) VALUES (60000, 'a', 1);
        INSERT INTO pings (ROWTIME, id, n) VALUES (8000, 'a', 1);
        INSERT INTO pings (ROWTIME, id, n) VALUES (120000, 'a', 1);";
    s.execute(script, &mut |_| {}).await.unwrap();
    s.wait_until_idle().await.unwrap();
    let fetch = log.read("RUNS", 0, 0, usize::MAX / 2).await.unwrap();
    // EMIT FINAL: one result per session once closed (gap + grace after its end); the record
    // at 8 s came after [0 s, 4 s] had closed (stream time 60 s), so it was dropped.
    let windows: Vec<(i64, i64)> = fetch
        .records
        .iter()
        .map(|r| {
            let key = r.key.as_deref().unwrap();
            let window = &key[key.len() - 16..];
            let end = i64::from_be_bytes(window[..8].try_into().unwrap());
            (i64::from_be_bytes(window[8..].try_into().unwrap()), end)
        })
        .collect();
    assert_eq!(windows, [(0, 4000), (60000, 60000)]);
    let values: Vec<String> = fetch
        .records
        .iter()
        .map(|r| serde_json::from_slice::<serde_json::Value>(r.value.as_deref().unwrap()).unwrap()["N"].to_string())
        .collect();
    assert_eq!(values, ["2", "1"]);
    s.shutdown().await;
}
