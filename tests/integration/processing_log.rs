//! The processing log: bad records are skipped, counted, and written to `PROCESSING_LOG`,
//! one entry each, with no other effect on the query.

use bytes::Bytes;
use eddy::log::{Log, NewRecord, TopicSpec};

use super::support::{push_rows, records, run, session, text};

const GOOD: u64 = 600_000;

/// `events` on 3 partitions: `GOOD` good records with twelve bad ones among them (four that
/// are not JSON, four with a wrong type, four without a usable event time); returns the bad ones'
/// `(partition, offset)`.
async fn write_events(log: &dyn Log) -> Vec<(u32, u64)> {
    log.create_topic("events", &TopicSpec::new(3)).await.unwrap();
    let bad_values: [&[u8]; 12] = [
        b"{not json",
        b"\xff\xfe\x00garbage",
        b"",
        b"[1, 2",
        br#"{"amount": "lots", "ts": 5}"#,
        br#"{"amount": {"nested": true}, "ts": 5}"#,
        br#"{"amount": [1], "ts": 5}"#,
        br#"{"amount": true, "ts": 5}"#,
        br#"{"amount": 1, "ts": null}"#,
        br#"{"amount": 1}"#,
        br#"{"amount": 1, "ts": -7}"#,
        br#"{"amount": 1, "ts": "yesterday"}"#,
    ];
    let mut bad = Vec::new();
    let mut pending: [Vec<NewRecord>; 3] = Default::default();
    let mut next_offset = [0u64; 3];
    for i in 0..GOOD {
        let partition = (i % 3) as usize;
        let value = format!(r#"{{"amount":{},"ts":{i}}}"#, i % 100);
        pending[partition].push(NewRecord::new(0, Some(Bytes::from(format!("u{}", i % 50))), Some(value.into())));
        if i % 50_000 == 7 {
            let value = bad_values[bad.len()];
            pending[partition].push(NewRecord::new(0, Some(Bytes::from("bad")), Some(Bytes::from(value))));
            bad.push((partition as u32, next_offset[partition] + pending[partition].len() as u64 - 1));
        }
        if pending[partition].len() >= 10_000 {
            let records = std::mem::take(&mut pending[partition]);
            next_offset[partition] =
                log.append("events", partition as u32, &records).await.unwrap() + records.len() as u64;
        }
    }
    for (partition, records) in pending.iter().enumerate() {
        log.append("events", partition as u32, records).await.unwrap();
    }
    assert_eq!(bad.len(), 12);
    bad
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twelve_bad_records_among_600_000_make_twelve_entries_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut s) = session(dir.path()).await;
    let bad = write_events(log.as_ref()).await;
    run(
        &mut s,
        "SET 'auto.offset.reset' = 'earliest';
         CREATE STREAM events (user STRING KEY, amount BIGINT, ts BIGINT)
           WITH (KAFKA_TOPIC='events', VALUE_FORMAT='JSON', TIMESTAMP='ts');
         CREATE STREAM totals AS SELECT user, amount FROM events;",
    )
    .await
    .unwrap();
    s.wait_until_idle().await.unwrap();
    let metrics = s.query_metrics().await;
    assert_eq!(metrics[0].status, "RUNNING");

    // The output is every good record, and only those.
    let out = records(log.as_ref(), "TOTALS").await;
    assert_eq!(out.len() as u64, GOOD);
    let sum: u64 = out
        .iter()
        .map(|r| serde_json::from_str::<serde_json::Value>(&text(&r.value)).unwrap()["AMOUNT"].as_u64().unwrap())
        .sum();
    assert_eq!(sum, (0..GOOD).map(|i| i % 100).sum::<u64>());
    assert!(out.iter().all(|r| text(&r.key) != "bad"));

    // Twelve entries, one per bad record, where it was.
    let entries = records(log.as_ref(), "eddy_processing_log").await;
    let mut logged: Vec<(u32, u64)> = entries
        .iter()
        .map(|r| {
            let entry: serde_json::Value = serde_json::from_str(&text(&r.value)).unwrap();
            assert_eq!(entry["QUERY_ID"], "CSAS_TOTALS_1");
            assert_eq!(entry["SOURCE_TOPIC"], "events");
            assert_eq!(entry["RECORD_KEY"], "bad");
            assert!(!entry["ERROR"].as_str().unwrap().is_empty());
            (entry["SOURCE_PARTITION"].as_u64().unwrap() as u32, entry["SOURCE_OFFSET"].as_u64().unwrap())
        })
        .collect();
    logged.sort_unstable();
    let mut expected = bad.clone();
    expected.sort_unstable();
    assert_eq!(logged, expected);
    let kinds: Vec<String> = entries
        .iter()
        .map(|r| serde_json::from_str::<serde_json::Value>(&text(&r.value)).unwrap()["KIND"].to_string())
        .collect();
    // A null, missing or negative time; "yesterday" is no BIGINT, so it did not decode.
    assert_eq!(kinds.iter().filter(|k| k.contains("TIMESTAMP")).count(), 3, "{kinds:?}");

    // Counted in the query's metrics, and readable in SQL.
    let metrics = s.query_metrics().await;
    assert_eq!(metrics[0].errors, 12);
    let shown =
        run(&mut s, "SELECT SOURCE_PARTITION, SOURCE_OFFSET, KIND FROM PROCESSING_LOG EMIT CHANGES; SHOW STREAMS;")
            .await
            .unwrap();
    assert_eq!(push_rows(&shown).len(), 12, "{shown:?}");
    assert!(shown.join("").contains("PROCESSING_LOG"));
}

/// The stream exists for a statement naming it even before anything went wrong.
#[tokio::test]
async fn the_processing_log_can_be_followed_before_anything_goes_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, mut s) = session(dir.path()).await;
    let shown = run(&mut s, "SHOW STREAMS;").await.unwrap().join("");
    assert!(!shown.contains("PROCESSING_LOG"), "{shown}");
    let out = run(&mut s, "SELECT * FROM PROCESSING_LOG EMIT CHANGES;").await.unwrap();
    assert!(push_rows(&out).is_empty(), "{out:?}");
}

/// An expression that fails on a row (a CAST of a non-number, a division by zero) makes that
/// row's column null, as in ksqlDB, and one processing-log entry for the row; the query runs on.
#[tokio::test]
async fn a_failing_expression_nulls_its_column_and_is_logged() {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut s) = session(dir.path()).await;
    run(
        &mut s,
        "SET 'auto.offset.reset' = 'earliest';
         CREATE STREAM s (k STRING KEY, v STRING, n INT) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON', PARTITIONS=1);
         INSERT INTO s (k, v, n) VALUES ('a', '12', 1);
         INSERT INTO s (k, v, n) VALUES ('b', 'abc', 0);
         INSERT INTO s (k, v, n) VALUES ('c', '7', 2);
         CREATE STREAM t AS SELECT k, CAST(v AS INT) AS i, 10 / n AS q FROM s WHERE 10 / (n - 2) < 100;
         CREATE TABLE sums AS SELECT k, SUM(CAST(v AS INT)) AS total, COUNT(*) AS n FROM s GROUP BY k;",
    )
    .await
    .unwrap();
    s.wait_until_idle().await.unwrap();
    let out: Vec<(String, String)> =
        records(log.as_ref(), "T").await.iter().map(|r| (text(&r.key), text(&r.value))).collect();
    // c's WHERE divides by zero: it does not pass.
    assert_eq!(out, [("a".into(), r#"{"I":12,"Q":10}"#.into()), ("b".into(), r#"{"I":null,"Q":null}"#.into())]);
    let entries: Vec<serde_json::Value> = records(log.as_ref(), "eddy_processing_log")
        .await
        .iter()
        .map(|r| serde_json::from_str(&text(&r.value)).unwrap())
        .collect();
    let mut rows: Vec<(&str, u64, &str)> = entries
        .iter()
        .map(|e| (e["QUERY_ID"].as_str().unwrap(), e["SOURCE_OFFSET"].as_u64().unwrap(), e["KIND"].as_str().unwrap()))
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        [("CSAS_T_1", 1, "EXPRESSION"), ("CSAS_T_1", 2, "EXPRESSION"), ("CTAS_SUMS_2", 1, "EXPRESSION")],
        "{entries:?}"
    );
    assert!(
        entries.iter().all(|e| e["ERROR"].as_str().unwrap().contains("by zero")
            || e["ERROR"].as_str().unwrap().contains("Cannot cast string 'abc'")),
        "{entries:?}"
    );
    // The aggregation counted b's row; its SUM had nothing to add.
    let sums: Vec<String> = records(log.as_ref(), "SUMS").await.iter().map(|r| text(&r.value)).collect();
    assert!(sums.contains(&r#"{"TOTAL":0,"N":1}"#.to_string()), "{sums:?}");
    assert!(s.query_metrics().await.iter().all(|m| m.status == "RUNNING"));
}
