//! The session: catalog statements against a real embedded log, the command topic and its
//! replay, variables, and how failures are reported.

use std::sync::Arc;

use eddy::log::{EmbeddedLog, Log};
use eddy::session::{COMMAND_TOPIC, Session, SessionError, StatementResult};

async fn session(dir: &std::path::Path) -> (Arc<dyn Log>, Session) {
    let log: Arc<dyn Log> = Arc::new(EmbeddedLog::open(dir).unwrap());
    let session = Session::open(Arc::clone(&log)).await.unwrap();
    (log, session)
}

/// Runs a script; returns every result's text, or the error.
async fn run(session: &mut Session, script: &str) -> Result<Vec<String>, SessionError> {
    let mut out = Vec::new();
    session.execute(script, &mut |r: StatementResult| out.extend(super::support::texts(&r))).await?;
    Ok(out)
}

#[tokio::test]
async fn sources_are_created_over_topics_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (log, mut s) = session(dir.path()).await;
        let out = run(
            &mut s,
            "CREATE STREAM pv (id STRING KEY, page STRING) WITH (KAFKA_TOPIC='pv', VALUE_FORMAT='JSON', PARTITIONS=3);
             CREATE TYPE addr AS STRUCT<street STRING>;
             CREATE TABLE users (id STRING PRIMARY KEY, home ADDR) WITH (KAFKA_TOPIC='users', FORMAT='JSON', PARTITIONS=1);
             CREATE STREAM gone (a INT) WITH (KAFKA_TOPIC='gone', VALUE_FORMAT='JSON', PARTITIONS=1);
             DROP STREAM gone DELETE TOPIC;",
        )
        .await
        .unwrap();
        assert_eq!(out[0], " Stream created\n");
        assert_eq!(out[2], " Table created\n");
        assert_eq!(out[4], " Source `GONE` (topic: gone) was dropped.\n");
        assert_eq!(log.partition_count("pv").await.unwrap(), 3, "PARTITIONS created the topic");
        assert!(log.partition_count("gone").await.is_err(), "DELETE TOPIC deleted it");
    }
    // A new session over the same data directory replays the command topic.
    let (log, mut s) = session(dir.path()).await;
    assert_eq!(s.catalog().sources().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["PV", "USERS"]);
    let described = run(&mut s, "DESCRIBE users;").await.unwrap().join("");
    assert!(described.contains("HOME  | STRUCT<street STRING>"), "{described}");
    let topics = run(&mut s, "SHOW TOPICS; SHOW ALL TOPICS;").await.unwrap();
    assert!(!topics[0].contains(COMMAND_TOPIC) && topics[1].contains(COMMAND_TOPIC), "{topics:?}");
    assert_eq!(log.latest_offset(COMMAND_TOPIC, 0).await.unwrap(), 5, "one command per catalog change");
}

#[tokio::test]
async fn variables_apply_to_the_statements_after_their_define() {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut s) = session(dir.path()).await;
    run(
        &mut s,
        "DEFINE name = 'orders'; DEFINE parts = '2';
         CREATE STREAM ${name} (a INT) WITH (KAFKA_TOPIC='${name}_topic', VALUE_FORMAT='JSON', PARTITIONS=${parts});",
    )
    .await
    .unwrap();
    assert_eq!(log.partition_count("orders_topic").await.unwrap(), 2);
    assert!(s.catalog().source("ORDERS").is_some());
    let vars = run(&mut s, "SHOW VARIABLES; UNDEFINE name;").await.unwrap().join("");
    let row = |name: &str, value: &str| vars.lines().any(|l| l.split('|').map(str::trim).eq([name, value]));
    assert!(row("name", "orders") && row("parts", "2"), "{vars}");
    // A variable not defined stays as written, as ksqlDB's substitution leaves it: here no
    // name, so the statement does not parse.
    let e = run(&mut s, "SHOW STREAMS;\nDROP STREAM ${name};").await.unwrap_err();
    assert_eq!(e.location().map(|l| l.line), Some(2), "{e}");
    // In text it is text; `$${…}` is `${…}` whatever is defined.
    run(&mut s, "DEFINE parts = '1'; CREATE STREAM t (a STRING) WITH (KAFKA_TOPIC='t', VALUE_FORMAT='JSON', PARTITIONS=${parts});
                 INSERT INTO t VALUES ('${topic} $${parts}');")
        .await
        .unwrap();
    let written = super::support::records(log.as_ref(), "t").await;
    assert_eq!(super::support::text(&written[0].value), r#"{"A":"${topic} ${parts}"}"#);
}

#[tokio::test]
async fn failures_say_where_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, mut s) = session(dir.path()).await;
    let cases: &[(&str, &str, (u64, u64))] = &[
        (
            "SHOW STREAMS;\n  CREATE STREAM s (a INT) WITH (KAFKA_TOPIC='t', VALUE_FORMAT='JSON');",
            "does not exist",
            (2, 3),
        ),
        ("CREATE STREAM s (a INT) WITH (VALUE_FORMAT='JSON', PARTITIONS=1);", "KAFKA_TOPIC", (1, 1)),
        ("\n\nCREATE STREAM o AS SELECT * FROM s EMIT CHANGES;", "S does not exist", (3, 1)),
        ("DROP TABLE nothing;", "does not exist", (1, 1)),
        ("DESCRIBE nothing;", "Could not find", (1, 1)),
        ("SET 'auto.offset.reset' = 'sometimes';", "auto.offset.reset", (1, 1)),
        ("SHOW STREAMS; CREATE STREAM (", "Expected", (1, 29)),
        ("RUN SCRIPT '/no/such/file.sql';", "Cannot read script", (1, 1)),
        ("CREATE INDEX i ON t (a);", "not part of ksqlDB", (1, 1)),
    ];
    for (script, expected, (line, column)) in cases {
        let e = run(&mut s, script).await.unwrap_err();
        assert!(e.to_string().contains(expected), "{script}: {e}");
        assert!(e.is_user_error());
        assert_eq!(e.location().map(|l| (l.line, l.column)), Some((*line, *column)), "{script}: {e}");
    }
    // A refused statement changes nothing: the same name can be created afterwards.
    run(&mut s, "CREATE STREAM s (a INT) WITH (KAFKA_TOPIC='t', VALUE_FORMAT='JSON', PARTITIONS=1);").await.unwrap();
    let again = run(&mut s, "CREATE STREAM s (a INT) WITH (KAFKA_TOPIC='t', VALUE_FORMAT='JSON');").await.unwrap_err();
    assert!(again.to_string().contains("already exists"), "{again}");
    let quiet = run(&mut s, "CREATE STREAM IF NOT EXISTS s (a INT) WITH (KAFKA_TOPIC='t', VALUE_FORMAT='JSON');").await;
    assert!(quiet.is_ok());
}

#[tokio::test]
async fn scripts_run_scripts() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, mut s) = session(dir.path()).await;
    let inner = dir.path().join("inner.sql");
    std::fs::write(&inner, "CREATE STREAM a (x INT) WITH (KAFKA_TOPIC='a', VALUE_FORMAT='JSON', PARTITIONS=1);")
        .unwrap();
    let looping = dir.path().join("loop.sql");
    std::fs::write(&looping, format!("RUN SCRIPT '{}';", looping.display())).unwrap();
    run(&mut s, &format!("RUN SCRIPT '{}';", inner.display())).await.unwrap();
    assert!(s.catalog().source("A").is_some());
    let e = run(&mut s, &format!("RUN SCRIPT '{}';", looping.display())).await.unwrap_err();
    assert!(e.to_string().contains("nests"), "{e}");
}

async fn produce(log: &dyn Log, topic: &str, values: &[&str]) {
    let records: Vec<eddy::log::NewRecord> = values
        .iter()
        .map(|v| {
            eddy::log::NewRecord::new(
                1_700_000_000_000,
                Some(bytes::Bytes::from(format!("k-{v}"))),
                Some(bytes::Bytes::from(v.to_string())),
            )
        })
        .collect();
    log.append(topic, 0, &records).await.unwrap();
}

#[tokio::test]
async fn print_shows_records_as_ksqldb_does() {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut s) = session(dir.path()).await;
    log.create_topic("Orders", &eddy::log::TopicSpec::new(1)).await.unwrap();
    produce(log.as_ref(), "Orders", &["a", "b", "c", "d", "e"]).await;
    s.set_until_idle(true);
    let out = run(&mut s, "PRINT 'Orders' FROM BEGINNING LIMIT 2;").await.unwrap();
    assert_eq!(
        out,
        [
            "rowtime: 2023/11/14 22:13:20.000 Z, key: k-a, value: a, partition: 0\n",
            "rowtime: 2023/11/14 22:13:20.000 Z, key: k-b, value: b, partition: 0\n"
        ]
    );
    let sampled = run(&mut s, "PRINT orders FROM BEGINNING INTERVAL 2;").await.unwrap();
    let values: Vec<&str> =
        sampled.iter().map(|l| l.split("value: ").nth(1).unwrap().split(',').next().unwrap()).collect();
    assert_eq!(values, ["a", "c", "e"], "every second record; the name matched case-insensitively");
    assert!(run(&mut s, "PRINT orders;").await.unwrap().is_empty(), "from the end, caught up at once");
    let e = run(&mut s, "PRINT nowhere;").await.unwrap_err();
    assert!(e.to_string().contains("Could not find topic 'nowhere'"), "{e}");
}

/// Without until-idle, PRINT follows the topic until its LIMIT is reached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn print_follows_new_records() {
    let dir = tempfile::tempdir().unwrap();
    let (log, s) = session(dir.path()).await;
    log.create_topic("t", &eddy::log::TopicSpec::new(1)).await.unwrap();
    produce(log.as_ref(), "t", &["first"]).await;
    let printing = tokio::spawn(async move {
        let mut s = s;
        run(&mut s, "PRINT t FROM BEGINNING LIMIT 3;").await
    });
    produce(log.as_ref(), "t", &["second"]).await;
    produce(log.as_ref(), "t", &["third"]).await;
    let lines = tokio::time::timeout(std::time::Duration::from_secs(30), printing).await.unwrap().unwrap().unwrap();
    assert_eq!(lines.len(), 3);
    assert!(lines[2].contains("value: third"), "{lines:?}");
}

/// Reads every record of a one-partition-or-more topic as (partition, key, value, timestamp).
async fn records(log: &dyn Log, topic: &str) -> Vec<(u32, Option<Vec<u8>>, Option<Vec<u8>>, i64)> {
    let mut out = Vec::new();
    for partition in 0..log.partition_count(topic).await.unwrap() {
        let fetch = log.read(topic, partition, 0, 1 << 20).await.unwrap();
        for r in fetch.records {
            out.push((partition, r.key.map(|k| k.to_vec()), r.value.map(|v| v.to_vec()), r.timestamp_ms));
        }
    }
    out
}

#[tokio::test]
async fn insert_values_encodes_keys_and_values_in_the_sources_formats() {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut s) = session(dir.path()).await;
    run(
        &mut s,
        "CREATE STREAM pv (id STRING KEY, page STRING, n INT, price DECIMAL(5,2), tags ARRAY<STRING>)
           WITH (KAFKA_TOPIC='pv', VALUE_FORMAT='JSON', PARTITIONS=4);
         INSERT INTO pv (id, page, n, price) VALUES ('alice', '/home', 1 + 2, 12.5);
         INSERT INTO pv (ROWTIME, id, page) VALUES (1700000000000, 'bob', UPPER('/cart'));
         INSERT INTO pv VALUES ('carol', '/x', 7, 1.25, ARRAY['a', 'b']);
         CREATE STREAM counts (k BIGINT KEY, v DOUBLE) WITH (KAFKA_TOPIC='counts', FORMAT='KAFKA', PARTITIONS=1);
         INSERT INTO counts (k, v) VALUES (42, 0.5);
         CREATE TABLE d (id STRING PRIMARY KEY, a STRING, b INT)
           WITH (KAFKA_TOPIC='d', KEY_FORMAT='KAFKA', VALUE_FORMAT='DELIMITED', VALUE_DELIMITER='|', PARTITIONS=1);
         INSERT INTO d (id, a, b) VALUES ('x', 'p|q', NULL);",
    )
    .await
    .unwrap();
    let pv = records(log.as_ref(), "pv").await;
    let by_key = |key: &str| pv.iter().find(|r| r.1.as_deref() == Some(key.as_bytes())).unwrap().clone();
    let alice = by_key("alice");
    let text = |value: &Option<Vec<u8>>| value.as_deref().map(|v| String::from_utf8(v.to_vec()).unwrap());
    assert_eq!(text(&alice.2).as_deref(), Some(r#"{"PAGE":"/home","N":3,"PRICE":12.50,"TAGS":null}"#));
    assert_eq!(alice.0, eddy::log::partitioner::partition_for_key(b"alice", 4), "Kafka's partition for the key");
    let bob = by_key("bob");
    assert_eq!(text(&bob.2).as_deref(), Some(r#"{"PAGE":"/CART","N":null,"PRICE":null,"TAGS":null}"#));
    assert_eq!(bob.3, 1_700_000_000_000, "ROWTIME set the timestamp");
    assert_eq!(text(&by_key("carol").2).as_deref(), Some(r#"{"PAGE":"/x","N":7,"PRICE":1.25,"TAGS":["a","b"]}"#));

    let counts = records(log.as_ref(), "counts").await;
    assert_eq!(counts[0].1.as_deref(), Some(&42i64.to_be_bytes()[..]));
    assert_eq!(counts[0].2.as_deref(), Some(&0.5f64.to_be_bytes()[..]));

    let d = records(log.as_ref(), "d").await;
    assert_eq!((d[0].1.as_deref(), d[0].2.as_deref()), (Some(&b"x"[..]), Some(&b"\"p|q\"|"[..])));
}

#[tokio::test]
async fn insert_values_refuses_what_does_not_fit() {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut s) = session(dir.path()).await;
    run(
        &mut s,
        "CREATE STREAM s (id STRING KEY, n INT, h BYTES HEADER('x'))
           WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON', PARTITIONS=1);",
    )
    .await
    .unwrap();
    for (sql, expected) in [
        ("INSERT INTO s (id, n) VALUES ('a', 'many');", "Expected type INTEGER for field N"),
        ("INSERT INTO s (id) VALUES ('a', 1);", "Expected number columns and values to match: 1, 2"),
        ("INSERT INTO s VALUES ('a');", "Expected a value for each column"),
        ("INSERT INTO s (id, ROWOFFSET) VALUES ('a', 1);", "Inserting into column `ROWOFFSET` is not allowed."),
        ("INSERT INTO nope (id) VALUES ('a');", "unknown stream/table: `NOPE`"),
        (
            "INSERT INTO \"s\" (id) VALUES ('a');",
            "unknown stream/table: `s`\nDid you mean S? Hint: try removing double quotes from the source name.",
        ),
        ("INSERT INTO s (id, missing) VALUES ('a', 1);", "MISSING does not exist"),
        ("INSERT INTO s (id, h) VALUES ('a', NULL);", "HEADER columns"),
        ("INSERT INTO s (id, id) VALUES ('a', 'b');", "more than once"),
        ("INSERT INTO s (ROWTIME, id) VALUES ('soon', 'a');", "ROWTIME"),
        ("INSERT INTO s (id, n) VALUES ('a', no_such_function(1));", "Failed to evaluate"),
    ] {
        let e = run(&mut s, sql).await.unwrap_err();
        assert!(e.to_string().contains(expected), "{sql}: {e}");
    }
    assert_eq!(log.latest_offset("s", 0).await.unwrap(), 0, "nothing was written");
}

/// Two sessions on one data directory (as a REPL in one terminal and `eddy run` in another):
/// each sees the other's catalog changes at its next statement.
#[tokio::test]
async fn sessions_see_each_others_catalog_changes() {
    let dir = tempfile::tempdir().unwrap();
    let (_log_a, mut a) = session(dir.path()).await;
    let (_log_b, mut b) = session(dir.path()).await;
    run(&mut a, "CREATE STREAM s (x INT) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON', PARTITIONS=1);").await.unwrap();
    let shown = run(&mut b, "SHOW STREAMS;").await.unwrap().join("");
    assert!(shown.contains(" S "), "{shown}");
    let again = run(&mut b, "CREATE STREAM s (x INT) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON');").await.unwrap_err();
    assert!(again.to_string().contains("already exists"), "{again}");
    run(&mut b, "DROP STREAM s; CREATE TYPE t AS STRUCT<a INT>;").await.unwrap();
    assert!(run(&mut a, "DESCRIBE s;").await.unwrap_err().to_string().contains("Could not find"));
    assert!(run(&mut a, "SHOW TYPES;").await.unwrap().join("").contains("STRUCT<a INTEGER>"));
}

async fn pageviews(dir: &std::path::Path) -> (Arc<dyn Log>, Session) {
    let (log, mut s) = session(dir).await;
    run(
        &mut s,
        "CREATE STREAM pv (user_id STRING KEY, page STRING, duration_ms BIGINT)
           WITH (KAFKA_TOPIC='pv', VALUE_FORMAT='JSON', PARTITIONS=1);
         INSERT INTO pv (user_id, page, duration_ms) VALUES ('alice', '/home', 1200);
         INSERT INTO pv (user_id, page, duration_ms) VALUES ('bob', '/cart', 800);
         INSERT INTO pv (user_id, page, duration_ms) VALUES ('carol', '/checkout', 2500);
         SET 'auto.offset.reset' = 'earliest';",
    )
    .await
    .unwrap();
    (log, s)
}

/// The data rows of a push query's output (between the header rules).
fn rows(lines: &[String]) -> Vec<Vec<String>> {
    lines
        .iter()
        .filter(|l| l.starts_with('|'))
        .skip(1)
        .map(|l| l.trim().trim_matches('|').split('|').map(|c| c.trim().to_string()).collect())
        .collect()
}

#[tokio::test]
async fn push_queries_filter_and_project_a_stream() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, mut s) = pageviews(dir.path()).await;
    s.set_until_idle(true);
    let out = run(
        &mut s,
        "SELECT user_id, ucase(page) AS loud, duration_ms / 100, ROWOFFSET FROM pv WHERE duration_ms > 1000 EMIT CHANGES;",
    )
    .await
    .unwrap();
    assert!(out[1].contains("|USER_ID") && out[1].contains("|LOUD") && out[1].contains("|KSQL_COL_0"), "{out:?}");
    assert_eq!(rows(&out), [["alice", "/HOME", "12", "0"], ["carol", "/CHECKOUT", "25", "2"]]);

    let star = run(&mut s, "SELECT * FROM pv EMIT CHANGES LIMIT 2;").await.unwrap();
    assert!(star[1].contains("DURATION_MS") && !star[1].contains("ROWTIME"), "no pseudo columns in *: {star:?}");
    assert_eq!(rows(&star).len(), 2);
    assert_eq!(star.last().unwrap(), " Limit Reached\n");
    let none = run(&mut s, "SELECT * FROM pv EMIT CHANGES LIMIT 0;").await.unwrap();
    assert!(rows(&none).is_empty(), "{none:?}");

    let aliased = run(&mut s, "SELECT p.page FROM pv p WHERE p.user_id = 'bob' EMIT CHANGES;").await.unwrap();
    assert_eq!(rows(&aliased), [["/cart"]]);
}

#[tokio::test]
async fn a_push_query_aggregates_without_group_by_as_one_group() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, mut s) = pageviews(dir.path()).await;
    s.set_until_idle(true);
    let out = run(&mut s, "SELECT COUNT(*) AS views, SUM(duration_ms) AS total FROM pv EMIT CHANGES;").await.unwrap();
    assert_eq!(rows(&out).last().unwrap(), &["3", "4500"], "{out:?}");
}

#[tokio::test]
async fn push_queries_refuse_what_is_not_supported_yet() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, mut s) = pageviews(dir.path()).await;
    s.set_until_idle(true);
    run(
        &mut s,
        "CREATE TABLE users (id STRING PRIMARY KEY, name STRING) WITH (KAFKA_TOPIC='u', FORMAT='JSON', PARTITIONS=1);",
    )
    .await
    .unwrap();
    for (sql, expected) in [
        ("SELECT * FROM nothing EMIT CHANGES;", "NOTHING does not exist"),
        ("SELECT * FROM pv WINDOW TUMBLING (SIZE 1 MINUTE) EMIT CHANGES;", "windowed query needs a GROUP BY"),
        ("SELECT * FROM pv JOIN users ON pv.user_id = users.name EMIT CHANGES;", "join on the table's primary key"),
        ("SELECT no_such_column FROM pv EMIT CHANGES;", "NO_SUCH_COLUMN"),
        ("SELECT * FROM pv EMIT CHANGES LIMIT 1 OFFSET 2;", "LIMIT n"),
    ] {
        let e = run(&mut s, sql).await.unwrap_err();
        assert!(e.to_string().contains(expected), "{sql}: {e}");
    }
}

/// Without until-idle a push query follows the stream: rows inserted after it started
/// arrive, until its LIMIT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_queries_follow_new_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (log, s) = pageviews(dir.path()).await;
    let following = tokio::spawn(async move {
        let mut s = s;
        run(&mut s, "SELECT page FROM pv WHERE duration_ms >= 1000 EMIT CHANGES LIMIT 3;").await
    });
    let (_other_log, mut other) = session(dir.path()).await;
    run(&mut other, "INSERT INTO pv (user_id, page, duration_ms) VALUES ('dave', '/late', 5000);").await.unwrap();
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), following).await.unwrap().unwrap().unwrap();
    assert_eq!(rows(&out), [["/home"], ["/checkout"], ["/late"]]);
    drop(log);
}

/// ksqlDB's `->` reads struct fields (nested, quoted names kept, binding tighter than `+`),
/// and `[n]` array elements counted from 1.
#[tokio::test]
async fn push_queries_read_struct_fields_and_array_elements() {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut s) = session(dir.path()).await;
    s.set_until_idle(true);
    run(
        &mut s,
        "CREATE STREAM users (id STRING KEY, address STRUCT<street STRING, `zipCode` INT, geo STRUCT<lat DOUBLE>>, tags ARRAY<STRING>)
           WITH (KAFKA_TOPIC='users', VALUE_FORMAT='JSON', PARTITIONS=1);
         SET 'auto.offset.reset' = 'earliest';",
    )
    .await
    .unwrap();
    let records = [
        eddy::log::NewRecord::new(
            0,
            Some(bytes::Bytes::from("u1")),
            Some(bytes::Bytes::from(
                r#"{"address": {"street": "Main", "zipCode": 12345, "geo": {"lat": 1.5}}, "tags": ["a", "b"]}"#,
            )),
        ),
        eddy::log::NewRecord::new(0, Some(bytes::Bytes::from("u2")), Some(bytes::Bytes::from(r#"{"tags": []}"#))),
    ];
    log.append("users", 0, &records).await.unwrap();
    let out = run(
        &mut s,
        "SELECT id, address->street AS street, address->`zipCode` AS zip, address->geo->lat + 1 AS lat, tags[2] AS second
           FROM users WHERE address->street = 'Main' OR address IS NULL EMIT CHANGES;",
    )
    .await
    .unwrap();
    assert_eq!(rows(&out), [["u1", "Main", "12345", "2.5", "b"], ["u2", "null", "null", "null", "null"]]);
    // `s->*` is every field of the struct, named after them.
    let all = run(&mut s, "SELECT address->* FROM users EMIT CHANGES;").await.unwrap();
    assert!(all[1].contains("|STREET") && all[1].contains("|zipCode") && all[1].contains("|GEO"), "{all:?}");
    assert_eq!(rows(&all)[0], ["Main", "12345", "{LAT: 1.5}"]);
}

/// `HEADERS` holds every header of a record (an empty array when there are none);
/// `HEADER('k')` the value of the last header with key `k`.
#[tokio::test]
async fn push_queries_read_headers() {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut s) = session(dir.path()).await;
    s.set_until_idle(true);
    run(
        &mut s,
        "CREATE STREAM s (id STRING KEY, v INT, h ARRAY<STRUCT<key STRING, value BYTES>> HEADERS, trace BYTES HEADER('trace'))
           WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON', PARTITIONS=1);
         SET 'auto.offset.reset' = 'earliest';",
    )
    .await
    .unwrap();
    let header = |key: &str, value: &[u8]| eddy::log::Header {
        key: key.into(),
        value: Some(bytes::Bytes::copy_from_slice(value)),
    };
    let mut with_headers =
        eddy::log::NewRecord::new(0, Some(bytes::Bytes::from("a")), Some(bytes::Bytes::from(r#"{"v": 1}"#)));
    with_headers.headers = vec![header("trace", b"\x01"), header("other", b"x"), header("trace", b"\x02")];
    let without = eddy::log::NewRecord::new(0, Some(bytes::Bytes::from("b")), Some(bytes::Bytes::from(r#"{"v": 2}"#)));
    log.append("s", 0, &[with_headers, without]).await.unwrap();
    let out =
        run(&mut s, "SELECT id, array_length(h) AS n, h[2]->key AS second, trace FROM s EMIT CHANGES;").await.unwrap();
    assert_eq!(rows(&out), [["a", "3", "other", "02"], ["b", "0", "null", "null"]]);
}

/// Records that do not decode are skipped (issue 8 will log them); the good ones flow and
/// nothing panics, whatever the bytes.
#[tokio::test]
async fn push_queries_skip_records_that_do_not_decode() {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut s) = session(dir.path()).await;
    s.set_until_idle(true);
    run(
        &mut s,
        "CREATE STREAM s (id INT KEY, v BIGINT, tags ARRAY<STRING>, h ARRAY<STRUCT<key STRING, value BYTES>> HEADERS)
           WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON', PARTITIONS=1);
         SET 'auto.offset.reset' = 'earliest';",
    )
    .await
    .unwrap();
    let key = |n: i32| Some(bytes::Bytes::copy_from_slice(&n.to_be_bytes()));
    let value = |text: &'static str| Some(bytes::Bytes::from_static(text.as_bytes()));
    let mut odd_headers = eddy::log::NewRecord::new(0, key(7), value(r#"{"v": 7}"#));
    odd_headers.headers = vec![eddy::log::Header { key: "".into(), value: None }];
    let records = vec![
        eddy::log::NewRecord::new(0, key(1), value(r#"{"v": 1, "tags": ["x"]}"#)),
        eddy::log::NewRecord::new(0, key(2), value("not json")),
        eddy::log::NewRecord::new(0, key(3), value(r#"{"v": "three"}"#)),
        eddy::log::NewRecord::new(0, key(4), None),
        eddy::log::NewRecord::new(0, Some(bytes::Bytes::from_static(b"\xff")), value(r#"{"v": 5}"#)),
        eddy::log::NewRecord::new(0, key(6), value(r#"{"v": 99999999999999999999999}"#)),
        eddy::log::NewRecord::new(0, key(8), value(r#"{"tags": [1, {"a": 2}], "v": 8}"#)),
        odd_headers,
        eddy::log::NewRecord::new(0, key(9), value(r#"[]"#)),
        eddy::log::NewRecord::new(0, key(10), value(r#"{"v": 10}"#)),
    ];
    log.append("s", 0, &records).await.unwrap();
    let out = run(&mut s, "SELECT id, v FROM s EMIT CHANGES;").await.unwrap();
    let ids: Vec<String> = rows(&out).into_iter().map(|r| r[0].clone()).collect();
    assert!(
        ids.contains(&"1".to_string()) && ids.contains(&"7".to_string()) && ids.contains(&"10".to_string()),
        "{ids:?}"
    );
    for bad in ["2", "3", "4", "5", "9"] {
        assert!(!ids.contains(&bad.to_string()), "record {bad} should have been skipped: {ids:?}");
    }
}

#[tokio::test]
async fn explain_shows_a_push_querys_topology() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, mut s) = pageviews(dir.path()).await;
    let out = run(
        &mut s,
        "EXPLAIN SELECT user_id, ucase(page) AS loud FROM pv WHERE duration_ms > 1000 EMIT CHANGES LIMIT 3;",
    )
    .await
    .unwrap()
    .join("");
    for expected in [
        "Source PV (stream over topic 'pv', 1 partition(s), key KAFKA, value JSON)",
        "-> Filter: duration_ms > 1000; Project: user_id, ucase(page) AS loud (columns USER_ID, LOUD)",
        "-> Client: push query, rows as records arrive, LIMIT 3",
        " LOUD    | STRING",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in\n{out}");
    }
    // Aggregations and their windows explain as they run.
    let grouped = run(
        &mut s,
        "EXPLAIN SELECT user_id, COUNT(*) AS n FROM pv WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY user_id EMIT CHANGES;",
    )
    .await
    .unwrap()
    .join("");
    assert!(grouped.contains("-> Aggregate by user_id; Project: user_id, COUNT(*) AS n"), "{grouped}");
    assert!(grouped.contains(" N       | BIGINT"), "{grouped}");
    let bad = run(&mut s, "EXPLAIN SELECT nope FROM pv EMIT CHANGES;").await.unwrap_err();
    assert!(bad.to_string().contains("NOPE"), "{bad}");
    let pull = run(&mut s, "EXPLAIN SELECT * FROM pv EMIT FINAL;").await.unwrap_err();
    assert!(pull.to_string().contains("EMIT CHANGES"), "{pull}");
    let missing = run(&mut s, "EXPLAIN CSAS_X_1;").await.unwrap_err();
    assert!(missing.to_string().contains("does not exist"), "{missing}");
}

/// Whatever the query text, a push query answers or refuses; it never panics.
#[tokio::test]
async fn hostile_queries_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, mut s) = pageviews(dir.path()).await;
    s.set_until_idle(true);
    let heads = ["SELECT", "EXPLAIN SELECT"];
    let items = [
        "*",
        "user_id",
        "page",
        "duration_ms",
        "ROWTIME",
        "ROWOFFSET",
        "duration_ms / 0",
        "page->x",
        "page[1]",
        "ucase(page)",
        "CAST(page AS INT)",
        "CAST(page AS MAP<STRING, INT>)",
        "x => x",
        "NULL",
        "'a' || page",
        "duration_ms * 99999999999999",
        "COUNT(*)",
        "-duration_ms",
        "page LIKE '%'",
        "array_length(page)",
        "`page`",
        "pv.page",
        "p.page",
        "1.5e308 * 10",
        "abs(-9223372036854775808)",
        "CASE WHEN 1 THEN 2 END",
    ];
    let tails = [
        "EMIT CHANGES",
        "WHERE duration_ms > 'x' EMIT CHANGES",
        "WHERE page EMIT CHANGES",
        "EMIT CHANGES LIMIT 0",
        "EMIT CHANGES LIMIT 1",
        "GROUP BY page EMIT CHANGES",
        "p EMIT CHANGES",
        "WHERE NULL EMIT CHANGES",
        "WHERE duration_ms / 0 = 1 EMIT CHANGES",
        "EMIT FINAL",
        "",
    ];
    let mut state = 0x5eed_1234u32;
    let mut pick = |n: usize| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state as usize % n
    };
    for _ in 0..300 {
        let projection: Vec<&str> = (0..1 + pick(3)).map(|_| items[pick(items.len())]).collect();
        let sql =
            format!("{} {} FROM pv {};", heads[pick(heads.len())], projection.join(", "), tails[pick(tails.len())]);
        // Ok or Err are both fine; a panic fails the test.
        let _ = run(&mut s, &sql).await;
    }
}

#[tokio::test]
async fn functions_are_listed_and_described() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, mut s) = session(dir.path()).await;
    let listed = run(&mut s, "SHOW FUNCTIONS;").await.unwrap().join("");
    assert!(listed.contains(" UCASE ") && listed.contains(" CONCAT "), "{listed}");
    let described = run(&mut s, "DESCRIBE FUNCTION lcase;").await.unwrap().join("");
    assert!(described.contains("Name        : LCASE") && described.contains("LCASE(input STRING)"), "{described}");
    let listed_aggregate = listed.contains(" TOPKDISTINCT ") && listed.contains(" EXPLODE ");
    assert!(listed_aggregate, "aggregate and table functions are listed too: {listed}");
    let e = run(&mut s, "DESCRIBE FUNCTION nope;").await.unwrap_err();
    assert!(e.to_string().contains("Can't find any functions with the name 'nope'"), "{e}");
}

#[tokio::test]
async fn pull_queries_refuse_what_ksqldb_refuses_and_answer_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, mut s) = session(dir.path()).await;
    run(
        &mut s,
        "CREATE TABLE plain (id INT PRIMARY KEY, n INT) WITH (KAFKA_TOPIC='plain', FORMAT='JSON', PARTITIONS=1);
         CREATE STREAM events (id INT KEY, n INT) WITH (KAFKA_TOPIC='events', FORMAT='JSON', PARTITIONS=1);
         CREATE TABLE counts AS SELECT id, COUNT(*) AS c FROM events GROUP BY id;
         INSERT INTO events (id, n) VALUES (1, 10);",
    )
    .await
    .unwrap();
    // A table no query keeps is not queryable.
    let e = run(&mut s, "SELECT * FROM plain WHERE id = 1;").await.unwrap_err();
    assert!(e.to_string().contains("The `PLAIN` table isn't queryable"), "{e}");
    // Table scans are on by default: any WHERE works.
    assert!(run(&mut s, "SELECT * FROM counts WHERE c > 0;").await.is_ok());
    run(&mut s, "SET 'ksql.query.pull.table.scan.enabled' = 'false';").await.unwrap();
    assert!(run(&mut s, "SELECT * FROM counts WHERE id IN (1, 2);").await.is_ok(), "key lookups still work");
    for (sql, expected) in [
        ("SELECT * FROM counts WHERE c > 0;", "WHERE clause missing key column for disjunct: (C > 0)"),
        ("SELECT * FROM counts WHERE id > 0;", "Query requires table scan to be enabled"),
        ("SELECT * FROM counts;", "Query requires table scan to be enabled"),
        ("SELECT * FROM counts WHERE id IN (NULL);", "Primary key columns can not be NULL: (ID = null)"),
        (
            "SELECT * FROM counts WHERE id = '1';",
            "Error in WHERE expression: Cannot compare ID (INTEGER) to '1' (STRING) with EQUAL.\nStatement: (ID = '1')",
        ),
    ] {
        let e = run(&mut s, sql).await.unwrap_err();
        assert!(e.to_string().contains(expected), "{sql}: {e}");
    }
    run(&mut s, "SET 'ksql.query.pull.limit.clause.enabled' = 'false';").await.unwrap();
    let e = run(&mut s, "SELECT * FROM counts WHERE id = 1 LIMIT 1;").await.unwrap_err();
    assert!(e.to_string().contains("LIMIT clause in pull queries is currently disabled"), "{e}");
}

/// Eddy's own properties are typed: a bad value or an unknown `eddy.*` name is refused at
/// `SET`, with the reason, and `SHOW PROPERTIES` lists the values in force.
#[tokio::test]
async fn eddy_properties_are_checked_when_set() {
    let dir = tempfile::tempdir().unwrap();
    let (_, mut s) = session(dir.path()).await;
    let refused = run(&mut s, "SET 'eddy.checkpoint.interval.ms' = 'soon';").await.unwrap_err();
    assert_eq!(
        refused.to_string(),
        "Invalid value soon for configuration eddy.checkpoint.interval.ms: a whole number, 0 or more"
    );
    assert_eq!(refused.location().map(|at| (at.line, at.column)), Some((1, 1)));
    let unknown = run(&mut s, "SET 'eddy.source.linger' = '3';").await.unwrap_err().to_string();
    assert!(unknown.starts_with("Unknown property eddy.source.linger."), "{unknown}");
    assert!(unknown.contains("eddy.source.linger.ms"), "{unknown}");
    assert!(s.properties().is_empty(), "nothing refused is kept: {:?}", s.properties());

    run(&mut s, "SET 'eddy.source.linger.ms' = '2';").await.unwrap();
    let listed = run(&mut s, "SHOW PROPERTIES;").await.unwrap().join("\n");
    let row = |name: &str| -> Vec<String> {
        let line = listed.lines().find(|l| l.trim_start().starts_with(name)).unwrap_or_default();
        line.split('|').map(|cell| cell.trim().to_string()).collect()
    };
    assert_eq!(row("eddy.source.linger.ms"), ["eddy.source.linger.ms", "EDDY", "2"], "{listed}");
    assert_eq!(row("eddy.checkpoint.interval.ms"), ["eddy.checkpoint.interval.ms", "EDDY", "1000"], "{listed}");
}

/// A format that knows its topics' columns, as one backed by a schema registry does: a
/// `CREATE` naming it needs no columns, and the statement kept holds those it found.
#[derive(Debug)]
struct KnownColumns;

impl eddy::format::Format for KnownColumns {
    fn name(&self) -> &'static str {
        "KNOWN"
    }

    fn codec(
        &self,
        schema: datafusion::arrow::datatypes::SchemaRef,
        options: eddy::format::FormatOptions,
    ) -> Result<std::sync::Arc<dyn eddy::format::Codec>, eddy::format::FormatError> {
        eddy::format::builtin(eddy::format::JSON).codec(schema, options)
    }

    fn infer_columns<'a>(
        &'a self,
        subject: &'a eddy::format::Subject,
    ) -> futures::future::BoxFuture<
        'a,
        Result<Option<datafusion::arrow::datatypes::SchemaRef>, eddy::format::FormatError>,
    > {
        use datafusion::arrow::datatypes::{DataType, Field, Schema};
        let fields = match (subject.topic.as_str(), subject.key) {
            ("readings", false) => {
                vec![Field::new("CELSIUS", DataType::Int32, true), Field::new("ROOM", DataType::Utf8, true)]
            }
            _ => Vec::new(),
        };
        Box::pin(async move { Ok((!fields.is_empty()).then(|| std::sync::Arc::new(Schema::new(fields)))) })
    }
}

#[tokio::test]
async fn a_format_may_give_the_columns_of_a_source_declared_without_them() {
    let dir = tempfile::tempdir().unwrap();
    let log: Arc<dyn Log> = Arc::new(EmbeddedLog::open(dir.path()).unwrap());
    let formats = || {
        let mut formats = eddy::format::Formats::default();
        formats.register(Arc::new(KnownColumns));
        formats
    };
    let mut s = Session::open_with(Arc::clone(&log), Default::default(), formats()).await.unwrap();
    s.set_until_idle(true);
    let out = super::support::run(
        &mut s,
        "CREATE STREAM readings WITH (KAFKA_TOPIC='readings', VALUE_FORMAT='known', PARTITIONS=1);
         INSERT INTO readings (celsius, room) VALUES (21, 'kitchen');
         SET 'auto.offset.reset' = 'earliest';
         SELECT room, celsius FROM readings EMIT CHANGES;
         DESCRIBE readings;",
    )
    .await
    .unwrap();
    assert_eq!(super::support::push_rows(&out), [vec!["kitchen", "21"]], "{out:?}");
    let described = out.join("");
    assert!(described.contains("CELSIUS") && described.contains("KNOWN"), "{described}");
    // Declared columns are kept as declared; an unknown format is still refused.
    let declared = super::support::run(
        &mut s,
        "CREATE STREAM other (x INT) WITH (KAFKA_TOPIC='other', VALUE_FORMAT='KNOWN', PARTITIONS=1); DESCRIBE other;",
    )
    .await
    .unwrap()
    .join("");
    assert!(declared.contains(" X ") && !declared.contains("CELSIUS"), "{declared}");
    let unknown =
        super::support::run(&mut s, "CREATE STREAM u WITH (KAFKA_TOPIC='u', VALUE_FORMAT='NOPE', PARTITIONS=1);")
            .await
            .unwrap_err();
    assert!(unknown.to_string().contains("Unknown format: NOPE"), "{unknown}");
    // The statement kept holds the columns: a session opened again restores the stream.
    drop(s);
    let mut again = Session::open_with(log, Default::default(), formats()).await.unwrap();
    let described = super::support::run(&mut again, "DESCRIBE readings;").await.unwrap().join("");
    assert!(described.contains("CELSIUS"), "{described}");
}
