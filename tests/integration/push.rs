//! Push queries run as persistent queries do: the same reading order over partitions, the
//! same operators, bad records in the processing log.

use std::collections::BTreeMap;

use bytes::Bytes;
use eddy::log::{Log, NewRecord, TopicSpec};

use super::support::{push_rows, records, run, session, text};

/// Events per partition.
const EVENTS: u64 = 300;

/// `clicks` on 3 partitions, each written in turn, all of one partition before the next: a
/// reader taking partitions as they come sees partition 0's late events first, and would
/// take partitions 1 and 2 for late. Within each partition a few events are out of order by
/// more than the grace period (late however the partitions are read). Returns how many
/// events are on time.
async fn write_clicks(log: &dyn Log) -> u64 {
    log.create_topic("clicks", &TopicSpec::new(3)).await.unwrap();
    let mut on_time = 0;
    for partition in 0..3u32 {
        let mut batch = Vec::new();
        for i in 0..EVENTS {
            // Interleaved in event time across partitions: 1 s apart overall.
            let mut ts = 1_000 * (3 * i + u64::from(partition));
            if i % 50 == 49 {
                ts -= 30_000; // three windows back: late
            } else {
                on_time += 1;
            }
            let key = format!("u{}", (3 * i + u64::from(partition)) % 4);
            let value = format!(r#"{{"page":"/p{}"}}"#, i % 7);
            batch.push(NewRecord::new(ts as i64, Some(Bytes::from(key)), Some(Bytes::from(value))));
        }
        log.append("clicks", partition, &batch).await.unwrap();
    }
    on_time
}

/// The last row of each (user, window start): `(user, start) -> count`.
fn final_counts(rows: &[Vec<&str>]) -> BTreeMap<(String, String), u64> {
    rows.iter().map(|r| ((r[0].to_string(), r[1].to_string()), r[3].parse().unwrap())).collect()
}

/// The same windowed aggregation over a 3-partition topic whose partitions are far apart in
/// arrival order: as a push query it closes the windows as the persistent query does (in
/// event-time order across partitions, so that only the events late within their own
/// partition are dropped).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_windowed_push_query_reads_partitions_in_event_time_order_as_a_persistent_one() {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut s) = session(dir.path()).await;
    let on_time = write_clicks(log.as_ref()).await;
    let aggregation = "SELECT user, WINDOWSTART AS ws, WINDOWEND AS we, COUNT(*) AS n FROM clicks \
                       WINDOW TUMBLING (SIZE 10 SECONDS, GRACE PERIOD 0 SECONDS) GROUP BY user";
    run(
        &mut s,
        &format!(
            "SET 'auto.offset.reset' = 'earliest';
             CREATE STREAM clicks (user STRING KEY, page STRING)
               WITH (KAFKA_TOPIC='clicks', VALUE_FORMAT='JSON');
             CREATE TABLE counts AS {aggregation};"
        ),
    )
    .await
    .unwrap();
    s.wait_until_idle().await.unwrap();

    let pushed = run(&mut s, &format!("{aggregation} EMIT CHANGES;")).await.unwrap();
    let pushed = final_counts(&push_rows(&pushed));
    let persisted = run(&mut s, "SELECT user, WINDOWSTART, WINDOWEND, n FROM counts EMIT CHANGES;").await.unwrap();
    let persisted = final_counts(&push_rows(&persisted));

    assert_eq!(pushed, persisted);
    // Every on-time event is counted: no partition was taken for late.
    assert_eq!(pushed.values().sum::<u64>(), on_time, "{pushed:?}");
    // 900 s of events in 10 s windows, for each of 4 users.
    assert_eq!(pushed.len(), 90 * 4);
    s.shutdown().await;
}

/// A push query skips the records it cannot read, and each has an entry in the processing
/// log under the push query's id, as a persistent query's would.
#[tokio::test]
async fn a_push_query_logs_the_records_it_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut s) = session(dir.path()).await;
    log.create_topic("readings", &TopicSpec::new(1)).await.unwrap();
    let values: [&[u8]; 5] =
        [br#"{"celsius": 21}"#, b"{not json", br#"{"celsius": "warm"}"#, br#"{"celsius": 23}"#, b"\xff\xfe"];
    let batch: Vec<NewRecord> =
        values.iter().map(|v| NewRecord::new(0, Some(Bytes::from("room")), Some(Bytes::copy_from_slice(v)))).collect();
    log.append("readings", 0, &batch).await.unwrap();

    let out = run(
        &mut s,
        "SET 'auto.offset.reset' = 'earliest';
         CREATE STREAM readings (room STRING KEY, celsius INT) WITH (KAFKA_TOPIC='readings', VALUE_FORMAT='JSON');
         SELECT room, celsius * 2 AS doubled FROM readings EMIT CHANGES;",
    )
    .await
    .unwrap();
    assert_eq!(push_rows(&out), [vec!["room", "42"], vec!["room", "46"]], "{out:?}");

    let entries: Vec<serde_json::Value> = records(log.as_ref(), "eddy_processing_log")
        .await
        .iter()
        .map(|r| serde_json::from_str(&text(&r.value)).unwrap())
        .collect();
    let offsets: Vec<u64> = entries.iter().map(|e| e["SOURCE_OFFSET"].as_u64().unwrap()).collect();
    assert_eq!(offsets, [1, 2, 4], "{entries:?}");
    for entry in &entries {
        assert!(entry["QUERY_ID"].as_str().unwrap().starts_with("transient_READINGS_"), "{entry}");
        assert_eq!(entry["SOURCE_TOPIC"], "readings");
        assert!(!entry["ERROR"].as_str().unwrap().is_empty(), "{entry}");
    }
}
