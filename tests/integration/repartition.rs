//! Repartitioning through internal topics, as ksqlDB does: a stream joined on other than its
//! key is written again to `_eddy_query_<id>-<where>-repartition`, keyed by its join
//! expression and partitioned as the other side is; the join reads that topic, in event-time
//! order with the other side even when the repartitioning lags behind; TERMINATE removes the
//! topic; `eddy.join.repartition = 'memory'` re-keys in memory instead.

use super::support::{records, run, session, text};
use eddy::log::partitioner::partition_for_key;
use eddy::log::{NewRecord, TopicSpec};

const ENRICH: &str = "SET 'auto.offset.reset' = 'earliest';
CREATE TABLE regions (id INT PRIMARY KEY, name STRING) WITH (KAFKA_TOPIC='regions', VALUE_FORMAT='JSON', PARTITIONS=3);
CREATE STREAM views (user_id STRING KEY, page STRING, region_id INT) WITH (KAFKA_TOPIC='views', VALUE_FORMAT='JSON', PARTITIONS=2);
INSERT INTO regions (ROWTIME, id, name) VALUES (1000, 1, 'eu');
INSERT INTO regions (ROWTIME, id, name) VALUES (1000, 2, 'us');
INSERT INTO views (ROWTIME, user_id, page, region_id) VALUES (2000, 'alice', '/a', 1);
INSERT INTO views (ROWTIME, user_id, page, region_id) VALUES (3000, 'bob', '/b', 2);
INSERT INTO views (ROWTIME, user_id, page, region_id) VALUES (4000, 'carol', '/c', 7);
INSERT INTO views (ROWTIME, user_id, page, region_id) VALUES (5000, 'dave', '/d', NULL);
CREATE STREAM enriched AS SELECT v.region_id AS region_id, v.user_id AS user_id, v.page AS page, r.name AS region
  FROM views v LEFT JOIN regions r ON v.region_id = r.id;";

const TOPIC: &str = "_eddy_query_CSAS_ENRICHED_2-Join-repartition";

/// `key value` of each record, sorted (partitions interleave).
fn sorted_lines(records: &[eddy::log::Record]) -> Vec<String> {
    let mut lines: Vec<String> = records.iter().map(|r| format!("{} {}", text(&r.key), text(&r.value))).collect();
    lines.sort();
    lines
}

#[tokio::test]
async fn a_stream_joined_off_its_key_is_repartitioned_through_an_internal_topic() {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut s) = session(dir.path()).await;
    run(&mut s, ENRICH).await.unwrap();
    s.wait_until_idle().await.unwrap();
    assert_eq!(
        sorted_lines(&records(log.as_ref(), "ENRICHED").await),
        [
            "\0\0\0\u{1} {\"USER_ID\":\"alice\",\"PAGE\":\"/a\",\"REGION\":\"eu\"}",
            "\0\0\0\u{2} {\"USER_ID\":\"bob\",\"PAGE\":\"/b\",\"REGION\":\"us\"}",
            "\0\0\0\u{7} {\"USER_ID\":\"carol\",\"PAGE\":\"/c\",\"REGION\":null}",
            r#"<null> {"USER_ID":"dave","PAGE":"/d","REGION":null}"#,
        ]
    );
    // The repartition topic: partitioned as the table is, keyed by the join expression (in
    // the join's key format, KAFKA), every column of the stream in the value, the event time
    // kept.
    assert_eq!(log.partition_count(TOPIC).await.unwrap(), 3);
    let repartitioned = records(log.as_ref(), TOPIC).await;
    assert_eq!(
        sorted_lines(&repartitioned),
        [
            "\0\0\0\u{1} {\"USER_ID\":\"alice\",\"PAGE\":\"/a\",\"REGION_ID\":1}",
            "\0\0\0\u{2} {\"USER_ID\":\"bob\",\"PAGE\":\"/b\",\"REGION_ID\":2}",
            "\0\0\0\u{7} {\"USER_ID\":\"carol\",\"PAGE\":\"/c\",\"REGION_ID\":7}",
            r#"<null> {"USER_ID":"dave","PAGE":"/d","REGION_ID":null}"#,
        ]
    );
    let mut times: Vec<i64> = repartitioned.iter().map(|r| r.timestamp_ms).collect();
    times.sort();
    assert_eq!(times, [2000, 3000, 4000, 5000]);
    for partition in 0..3 {
        for record in log.read(TOPIC, partition, 0, 1 << 20).await.unwrap().records {
            if let Some(key) = &record.key {
                assert_eq!(
                    partition_for_key(key, 3),
                    partition,
                    "keyed records go where Kafka's partitioner puts them"
                );
            }
        }
    }
    // Internal: SHOW ALL TOPICS lists it, SHOW TOPICS does not; EXPLAIN shows the step.
    let all = run(&mut s, "SHOW ALL TOPICS;").await.unwrap().concat();
    assert!(all.contains(TOPIC), "{all}");
    assert!(!run(&mut s, "SHOW TOPICS;").await.unwrap().concat().contains(TOPIC));
    let explained = run(&mut s, "EXPLAIN CSAS_ENRICHED_2;").await.unwrap().concat();
    assert!(explained.contains(&format!("-> Repartition by V.REGION_ID (query CSAS_ENRICHED_2-Join-repartition)\nSource VIEWS (topic '{TOPIC}', key KAFKA, value JSON) = input 0")), "{explained}");
    s.shutdown().await;
}

#[tokio::test]
async fn terminate_removes_the_repartition_topic_and_a_restart_goes_on_where_it_was() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (_log, mut s) = session(dir.path()).await;
        run(&mut s, ENRICH).await.unwrap();
        s.wait_until_idle().await.unwrap();
        s.shutdown().await;
    }
    let (log, mut s) = session(dir.path()).await;
    run(&mut s, "INSERT INTO views (ROWTIME, user_id, page, region_id) VALUES (6000, 'erin', '/e', 2);").await.unwrap();
    s.wait_until_idle().await.unwrap();
    // Nothing read twice: one record more in each topic.
    assert_eq!(records(log.as_ref(), TOPIC).await.len(), 5);
    let out = records(log.as_ref(), "ENRICHED").await;
    assert_eq!(out.len(), 5);
    assert!(out.iter().any(|r| text(&r.value) == r#"{"USER_ID":"erin","PAGE":"/e","REGION":"us"}"#));
    let checkpoints = dir.path().join("checkpoints").join("CSAS_ENRICHED_2-Join-repartition");
    assert!(checkpoints.exists());
    run(&mut s, "TERMINATE CSAS_ENRICHED_2;").await.unwrap();
    assert!(!log.list_topics().await.unwrap().iter().any(|t| t.ends_with("-repartition")));
    assert!(!checkpoints.exists(), "the repartitioning query's checkpoints go with it");
    s.shutdown().await;
}

#[tokio::test]
async fn a_query_created_to_rekey_in_memory_writes_no_topic_and_joins_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut s) = session(dir.path()).await;
    run(&mut s, &format!("SET 'eddy.join.repartition' = 'memory';\n{ENRICH}")).await.unwrap();
    s.wait_until_idle().await.unwrap();
    assert_eq!(records(log.as_ref(), "ENRICHED").await.len(), 4);
    assert!(!log.list_topics().await.unwrap().iter().any(|t| t.ends_with("-repartition")));
    let refused =
        run(&mut s, "SET 'eddy.join.repartition' = 'disk';\nCREATE STREAM again AS SELECT * FROM views;").await;
    assert!(refused.unwrap_err().to_string().contains("String must be one of: topic, memory"));
    s.shutdown().await;
}

/// Both sides repartitioned, with a backlog written before the join starts: the join reads
/// the repartition topics in event-time order with each other only as far as their queries
/// have caught up, so no window closes before its rows arrive (as in
/// `joins::a_backlog_joins_as_if_it_had_arrived_live`).
#[tokio::test]
async fn a_repartitioned_backlog_joins_as_if_it_had_arrived_live() {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut s) = session(dir.path()).await;
    log.create_topic("views", &TopicSpec::new(2)).await.unwrap();
    log.create_topic("buys", &TopicSpec::new(1)).await.unwrap();
    // Keyed by an id each; joined on the user in their values.
    let views: Vec<NewRecord> = (0..30_000u64)
        .map(|n| {
            let value = format!(r#"{{"user":"u{}","page":"/p/{}"}}"#, n % 1000, n % 100);
            NewRecord::new((n * 10) as i64, Some(format!("v{n}").into()), Some(value.into()))
        })
        .collect();
    let buys: Vec<NewRecord> = (0..30_000u64)
        .filter(|n| n % 10 == 0)
        .map(|n| {
            let value = format!(r#"{{"user":"u{}","amount":1.5}}"#, n % 1000);
            NewRecord::new((n * 10 + 5_000) as i64, Some(format!("b{n}").into()), Some(value.into()))
        })
        .collect();
    for (i, chunk) in views.chunks(5_000).enumerate() {
        log.append("views", (i % 2) as u32, chunk).await.unwrap();
    }
    log.append("buys", 0, &buys).await.unwrap();
    run(
        &mut s,
        "SET 'auto.offset.reset' = 'earliest';
         CREATE STREAM views (id STRING KEY, user STRING, page STRING) WITH (KAFKA_TOPIC='views', VALUE_FORMAT='JSON');
         CREATE STREAM buys (id STRING KEY, user STRING, amount DOUBLE) WITH (KAFKA_TOPIC='buys', VALUE_FORMAT='JSON');
         CREATE STREAM bought AS SELECT v.user AS user, v.page AS page, b.amount AS amount
           FROM views v JOIN buys b WITHIN 1 MINUTE GRACE PERIOD 10 SECONDS ON v.user = b.user;",
    )
    .await
    .unwrap();
    s.wait_until_idle().await.unwrap();
    // Each purchase joins every view of its user within a minute either way.
    assert_eq!(records(log.as_ref(), "BOUGHT").await.len(), 32_400);
    let topics = log.list_topics().await.unwrap();
    for side in ["left", "right"] {
        let topic = format!("_eddy_query_CSAS_BOUGHT_2-Join-{side}-repartition");
        assert!(topics.contains(&topic), "{topics:?}");
        // Both as many partitions as the larger side: co-partitioned with each other.
        assert_eq!(log.partition_count(&topic).await.unwrap(), 2, "{topic}");
    }
    s.shutdown().await;
}

/// A table keyed in another format than the stream it is joined with is written again in
/// the stream's (ksqlDB's `RightSourceKeyed-SelectKey`): its deletions go through too.
#[tokio::test]
async fn a_table_keyed_in_another_format_is_repartitioned_with_its_deletions() {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut s) = session(dir.path()).await;
    run(
        &mut s,
        "SET 'auto.offset.reset' = 'earliest';
         CREATE TABLE t (id INT PRIMARY KEY, val STRING) WITH (KAFKA_TOPIC='t', KEY_FORMAT='KAFKA', VALUE_FORMAT='JSON', PARTITIONS=1);
         CREATE STREAM s (id INT KEY, foo INT) WITH (KAFKA_TOPIC='s', KEY_FORMAT='DELIMITED', VALUE_FORMAT='JSON', PARTITIONS=1);
         CREATE STREAM out AS SELECT s.id AS id, s.foo AS foo, t.val AS val FROM s JOIN t ON s.id = t.id;",
    )
    .await
    .unwrap();
    let kafka_int = |n: i32| Some(bytes::Bytes::copy_from_slice(&n.to_be_bytes()));
    let delimited = |n: i32| Some(bytes::Bytes::from(n.to_string()));
    let table = |time: i64, key: i32, value: Option<&str>| {
        NewRecord::new(time, kafka_int(key), value.map(|v| bytes::Bytes::from(v.to_owned())))
    };
    let stream = |time: i64, key: i32, foo: i32| {
        NewRecord::new(time, delimited(key), Some(bytes::Bytes::from(format!(r#"{{"FOO":{foo}}}"#))))
    };
    log.append("t", 0, &[table(1, 1, Some(r#"{"VAL":"one"}"#)), table(1, 2, Some(r#"{"VAL":"two"}"#))]).await.unwrap();
    log.append("s", 0, &[stream(2, 1, 10), stream(3, 2, 20)]).await.unwrap();
    s.wait_until_idle().await.unwrap();
    log.append("t", 0, &[table(4, 1, None)]).await.unwrap();
    s.wait_until_idle().await.unwrap();
    log.append("s", 0, &[stream(5, 1, 11), stream(6, 2, 21)]).await.unwrap();
    s.wait_until_idle().await.unwrap();
    let out: Vec<String> =
        records(log.as_ref(), "OUT").await.iter().map(|r| format!("{} {}", text(&r.key), text(&r.value))).collect();
    // Keyed as the stream is (DELIMITED); row 1 was deleted before the second view of it.
    assert_eq!(out, [r#"1 {"FOO":10,"VAL":"one"}"#, r#"2 {"FOO":20,"VAL":"two"}"#, r#"2 {"FOO":21,"VAL":"two"}"#]);
    let topic = "_eddy_query_CSAS_OUT_2-RightSourceKeyed-SelectKey-repartition";
    let repartitioned: Vec<String> =
        records(log.as_ref(), topic).await.iter().map(|r| format!("{} {}", text(&r.key), text(&r.value))).collect();
    assert_eq!(repartitioned, [r#"1 {"ID":1,"VAL":"one"}"#, r#"2 {"ID":2,"VAL":"two"}"#, "1 <null>"]);
    s.shutdown().await;
}

/// When the query writing a repartition topic fails, the join fails with it, saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_fails_when_its_repartitioning_does() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, mut s) = session(dir.path()).await;
    run(&mut s, ENRICH).await.unwrap();
    s.wait_until_checkpointed().await.unwrap();
    // A file where the repartitioning query's checkpoints go: its next one cannot be written.
    let checkpoints = dir.path().join("checkpoints").join("CSAS_ENRICHED_2-Join-repartition");
    std::fs::remove_dir_all(&checkpoints).unwrap();
    std::fs::write(&checkpoints, b"in the way").unwrap();
    run(&mut s, "INSERT INTO views (ROWTIME, user_id, page, region_id) VALUES (6000, 'erin', '/e', 2);").await.unwrap();
    let waited = tokio::time::timeout(std::time::Duration::from_secs(60), s.wait_until_checkpointed()).await;
    waited.expect("the wait ends when the queries fail").unwrap();
    let explained = run(&mut s, "EXPLAIN CSAS_ENRICHED_2;").await.unwrap().concat();
    assert!(explained.contains("Status: ERROR"), "{explained}");
    assert!(explained.contains("its repartitioning failed") && explained.contains("checkpoint"), "{explained}");
    s.shutdown().await;
}

/// A join that never checkpointed (it crashed before its first checkpoint, after its
/// repartitioning query had written) reads its repartition topic from the start, whatever
/// `auto.offset.reset` says: all of that topic is for it.
#[tokio::test]
async fn a_join_without_a_checkpoint_reads_its_repartition_topic_from_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let enrich_from_latest = ENRICH.replacen("SET 'auto.offset.reset' = 'earliest';", "", 1);
    {
        let (_log, mut s) = session(dir.path()).await;
        run(&mut s, &enrich_from_latest).await.unwrap();
        run(&mut s, "INSERT INTO views (ROWTIME, user_id, page, region_id) VALUES (6000, 'erin', '/e', 2);")
            .await
            .unwrap();
        s.wait_until_checkpointed().await.unwrap();
        s.shutdown().await;
    }
    // As if the join had never got to its first checkpoint: its checkpoints and output gone,
    // the repartitioning query's kept.
    let (log, mut s) = {
        use eddy::log::Log;
        let log = eddy::log::EmbeddedLog::open(dir.path()).unwrap();
        for partition in 0..log.partition_count("ENRICHED").await.unwrap() {
            log.truncate("ENRICHED", partition, 0).await.unwrap();
        }
        std::fs::remove_dir_all(dir.path().join("checkpoints").join("CSAS_ENRICHED_2")).unwrap();
        drop(log);
        session(dir.path()).await
    };
    assert_eq!(records(log.as_ref(), TOPIC).await.len(), 1, "erin's view, repartitioned before");
    s.wait_until_idle().await.unwrap();
    // Joined (the table, read from its end as the query starts afresh, has no row for it).
    let out: Vec<String> = records(log.as_ref(), "ENRICHED").await.iter().map(|r| text(&r.value)).collect();
    assert_eq!(out, [r#"{"USER_ID":"erin","PAGE":"/e","REGION":null}"#]);
    s.shutdown().await;
}

/// A join that fails stops the queries repartitioning its inputs: what they write is for it
/// alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_join_stops_its_repartitioning() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, mut s) = session(dir.path()).await;
    run(&mut s, ENRICH).await.unwrap();
    s.wait_until_checkpointed().await.unwrap();
    let explained = run(&mut s, "EXPLAIN CSAS_ENRICHED_2;").await.unwrap().concat();
    assert!(explained.contains("Repartitioning CSAS_ENRICHED_2-Join-repartition: RUNNING, 4 written"), "{explained}");
    // A file where the join's checkpoints go: its next one cannot be written.
    let checkpoints = dir.path().join("checkpoints").join("CSAS_ENRICHED_2");
    std::fs::remove_dir_all(&checkpoints).unwrap();
    std::fs::write(&checkpoints, b"in the way").unwrap();
    run(&mut s, "INSERT INTO views (ROWTIME, user_id, page, region_id) VALUES (6000, 'erin', '/e', 2);").await.unwrap();
    let waited = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        loop {
            let explained = run(&mut s, "EXPLAIN CSAS_ENRICHED_2;").await.unwrap().concat();
            if explained.contains("Repartitioning CSAS_ENRICHED_2-Join-repartition: STOPPED") {
                return explained;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    });
    let explained = waited.await.expect("the repartitioning query stops");
    assert!(explained.contains("Status: ERROR"), "{explained}");
    s.shutdown().await;
}
