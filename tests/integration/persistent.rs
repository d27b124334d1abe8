//! Persistent queries through a session over a real embedded log: CSAS and INSERT INTO …
//! SELECT writing sink topics, ksqlDB's key rules, TERMINATE and DROP, and a restart that
//! resumes from the committed offsets without writing anything twice.

use std::sync::Arc;

use eddy::session::Session;

use super::support::{records, run, session, text};

const PAGEVIEWS: &str = "SET 'auto.offset.reset' = 'earliest';
    CREATE STREAM pv (user_id STRING KEY, page STRING, ms BIGINT)
      WITH (KAFKA_TOPIC='pv', VALUE_FORMAT='JSON', PARTITIONS=1);
    INSERT INTO pv (ROWTIME, user_id, page, ms) VALUES (1000, 'alice', '/home', 1200);
    INSERT INTO pv (ROWTIME, user_id, page, ms) VALUES (2000, 'bob', '/cart', 800);
    INSERT INTO pv (ROWTIME, user_id, page, ms) VALUES (3000, 'alice', '/cart', 2500);";

#[tokio::test]
async fn csas_filters_and_projects_into_its_sink_topic() {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut s) = session(dir.path()).await;
    run(&mut s, PAGEVIEWS).await.unwrap();
    let out = run(
        &mut s,
        "CREATE STREAM carts AS SELECT user_id, ms * 2 AS double_ms, UCASE(page) FROM pv WHERE page = '/cart';",
    )
    .await
    .unwrap();
    assert_eq!(out, [" Created query with ID CSAS_CARTS_1\n"]);
    s.wait_until_idle().await.unwrap();
    let written: Vec<(String, String, i64)> =
        records(log.as_ref(), "CARTS").await.iter().map(|r| (text(&r.key), text(&r.value), r.timestamp_ms)).collect();
    assert_eq!(
        written,
        [
            ("bob".into(), r#"{"DOUBLE_MS":1600,"KSQL_COL_0":"/CART"}"#.into(), 2000),
            ("alice".into(), r#"{"DOUBLE_MS":5000,"KSQL_COL_0":"/CART"}"#.into(), 3000),
        ]
    );
    let described = run(&mut s, "DESCRIBE carts;").await.unwrap().concat();
    assert!(described.contains("USER_ID") && described.contains("STRING (key)"), "{described}");
    let queries = run(&mut s, "SHOW QUERIES;").await.unwrap().concat();
    assert!(queries.contains("CSAS_CARTS_1") && queries.contains("RUNNING"), "{queries}");
    let explained = run(&mut s, "EXPLAIN CSAS_CARTS_1;").await.unwrap().concat();
    assert!(explained.contains("Source PV") && explained.contains("Sink CARTS"), "{explained}");
    assert!(explained.contains("Records read: 3, written: 2, skipped: 0"), "{explained}");
    s.shutdown().await;
}

#[tokio::test]
async fn a_restart_resumes_where_the_queries_stopped() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (_log, mut s) = session(dir.path()).await;
        run(&mut s, PAGEVIEWS).await.unwrap();
        run(&mut s, "CREATE STREAM long_views AS SELECT user_id, page FROM pv WHERE ms > 1000;").await.unwrap();
        s.wait_until_idle().await.unwrap();
        s.shutdown().await;
    }
    let (log, mut s) = session(dir.path()).await;
    run(&mut s, "INSERT INTO pv (user_id, page, ms) VALUES ('carol', '/faq', 4000);").await.unwrap();
    s.wait_until_idle().await.unwrap();
    let pages: Vec<String> = records(log.as_ref(), "LONG_VIEWS").await.iter().map(|r| text(&r.value)).collect();
    assert_eq!(pages, [r#"{"PAGE":"/home"}"#, r#"{"PAGE":"/cart"}"#, r#"{"PAGE":"/faq"}"#]);
    s.shutdown().await;
}

#[tokio::test]
async fn chained_queries_and_insert_into_select() {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut s) = session(dir.path()).await;
    run(&mut s, PAGEVIEWS).await.unwrap();
    run(
        &mut s,
        "CREATE STREAM by_page WITH (KAFKA_TOPIC='by_page', VALUE_FORMAT='DELIMITED') AS
           SELECT page, user_id FROM pv PARTITION BY page;
         CREATE STREAM homes AS SELECT page, user_id FROM by_page WHERE page = '/home';
         INSERT INTO homes SELECT page, user_id FROM by_page WHERE page = '/cart';",
    )
    .await
    .unwrap();
    s.wait_until_idle().await.unwrap();
    let by_page: Vec<(String, String)> =
        records(log.as_ref(), "by_page").await.iter().map(|r| (text(&r.key), text(&r.value))).collect();
    assert_eq!(by_page.len(), 3);
    assert!(by_page.contains(&("/home".into(), "alice".into())), "{by_page:?}");
    let mut homes: Vec<String> = records(log.as_ref(), "HOMES").await.iter().map(|r| text(&r.key)).collect();
    homes.sort();
    assert_eq!(homes, ["/cart", "/cart", "/home"]);

    let e = run(&mut s, "INSERT INTO homes SELECT user_id, page FROM pv;").await.unwrap_err();
    assert!(e.to_string().contains("Incompatible schema between results and sink"), "{e}");
    let e = run(&mut s, "DROP STREAM by_page;").await.unwrap_err();
    assert!(e.to_string().contains("The following queries read from this source: [CSAS_HOMES_"), "{e}");
    s.shutdown().await;
}

#[tokio::test]
async fn keys_follow_ksqldbs_rules() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, mut s) = session(dir.path()).await;
    run(&mut s, PAGEVIEWS).await.unwrap();
    let cases = [
        ("CREATE STREAM o1 AS SELECT page FROM pv;", "must include the key column USER_ID in its projection"),
        ("CREATE STREAM o2 AS SELECT user_id, user_id AS u2, page FROM pv;", "key column (`USER_ID`) more than once"),
        ("CREATE STREAM o3 AS SELECT user_id FROM pv;", "The projection contains no value columns."),
        ("CREATE STREAM o4 AS SELECT user_id, page FROM pv PARTITION BY nope;", "PARTITION BY column 'NOPE'"),
        (
            "CREATE STREAM o5 AS SELECT user_id, ms FROM pv PARTITION BY page;",
            "partitioning expression PV.PAGE in its projection",
        ),
        ("CREATE STREAM o6 WITH (KEY_FORMAT='JSON') AS SELECT * FROM pv PARTITION BY NULL;", "Key format specified"),
        ("CREATE STREAM o7 AS SELECT user_id, page FROM pv LIMIT 3;", "LIMIT"),
    ];
    for (statement, expected) in cases {
        let e = run(&mut s, statement).await.unwrap_err();
        assert!(e.to_string().contains(expected), "{statement}: {e}");
    }
    run(&mut s, "CREATE STREAM keyless AS SELECT * FROM pv PARTITION BY NULL;").await.unwrap();
    let described = run(&mut s, "DESCRIBE keyless;").await.unwrap().concat();
    assert!(!described.contains("(key)") && described.contains("Key format: NONE"), "{described}");
    s.shutdown().await;
}

#[tokio::test]
async fn terminate_stops_a_query_and_frees_its_sources() {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut s) = session(dir.path()).await;
    run(&mut s, PAGEVIEWS).await.unwrap();
    run(&mut s, "CREATE STREAM copy AS SELECT * FROM pv;").await.unwrap();
    s.wait_until_idle().await.unwrap();
    let e = run(&mut s, "TERMINATE nope;").await.unwrap_err();
    assert!(e.to_string().contains("Unknown queryId"), "{e}");
    assert_eq!(run(&mut s, "TERMINATE CSAS_COPY_1;").await.unwrap(), [" Query terminated.\n"]);
    run(&mut s, "INSERT INTO pv (user_id, page, ms) VALUES ('dan', '/x', 1);").await.unwrap();
    assert_eq!(records(log.as_ref(), "COPY").await.len(), 3, "a terminated query writes nothing more");
    run(&mut s, "DROP STREAM copy DELETE TOPIC; DROP STREAM pv;").await.unwrap();
    assert!(!run(&mut s, "SHOW QUERIES;").await.unwrap().concat().contains("CSAS"));
}

#[tokio::test]
async fn one_process_runs_each_query_and_another_takes_over_when_it_stops() {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut first) = session(dir.path()).await;
    run(&mut first, PAGEVIEWS).await.unwrap();
    run(&mut first, "CREATE STREAM copy AS SELECT * FROM pv;").await.unwrap();
    first.wait_until_idle().await.unwrap();

    // A second session on the same data (another process, as far as the log is concerned)
    // sees the query but does not run it too.
    let mut second = Session::open(Arc::clone(&log)).await.unwrap();
    let queries = run(&mut second, "SHOW QUERIES;").await.unwrap().concat();
    assert!(queries.contains("CSAS_COPY_1") && queries.contains("NOT RUNNING HERE"), "{queries}");
    run(&mut second, "INSERT INTO pv (user_id, page, ms) VALUES ('erin', '/y', 2);").await.unwrap();
    first.wait_until_idle().await.unwrap();
    assert_eq!(records(log.as_ref(), "COPY").await.len(), 4, "written once");

    // When the first stops, the second takes the query over at its next statement.
    first.shutdown().await;
    drop(first);
    run(&mut second, "INSERT INTO pv (user_id, page, ms) VALUES ('fay', '/z', 3);").await.unwrap();
    let queries = run(&mut second, "SHOW QUERIES;").await.unwrap().concat();
    assert!(queries.contains("| RUNNING") && !queries.contains("NOT RUNNING HERE"), "{queries}");
    second.set_until_idle(true);
    second.wait_until_idle().await.unwrap();
    assert_eq!(records(log.as_ref(), "COPY").await.len(), 5, "resumed from the commit, nothing twice");
    second.shutdown().await;
}

#[tokio::test]
async fn a_table_query_is_a_changelog_where_filtered_rows_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut s) = session(dir.path()).await;
    run(
        &mut s,
        "SET 'auto.offset.reset' = 'earliest';
         CREATE TABLE users (id STRING PRIMARY KEY, region STRING, visits INT)
           WITH (KAFKA_TOPIC='users', VALUE_FORMAT='JSON', PARTITIONS=1);
         INSERT INTO users (id, region, visits) VALUES ('ann', 'eu', 3);
         INSERT INTO users (id, region, visits) VALUES ('bob', 'us', 5);
         INSERT INTO users (id, region, visits) VALUES ('ann', 'us', 4);",
    )
    .await
    .unwrap();
    let e = run(&mut s, "CREATE STREAM eu AS SELECT id, visits FROM users WHERE region = 'eu';").await.unwrap_err();
    assert!(e.to_string().contains("Your SELECT query produces a TABLE"), "{e}");
    run(&mut s, "CREATE TABLE eu_users AS SELECT id, visits * 10 AS score FROM users WHERE region = 'eu';")
        .await
        .unwrap();
    s.wait_until_idle().await.unwrap();
    // ann joins (eu), bob never matches (a deletion of a row that never was), ann leaves.
    let changes: Vec<(String, String)> =
        records(log.as_ref(), "EU_USERS").await.iter().map(|r| (text(&r.key), text(&r.value))).collect();
    assert_eq!(
        changes,
        [("ann".into(), r#"{"SCORE":30}"#.into()), ("bob".into(), "<null>".into()), ("ann".into(), "<null>".into())]
    );
    let described = run(&mut s, "DESCRIBE eu_users;").await.unwrap().concat();
    assert!(described.contains("Type: TABLE") && described.contains("(primary key)"), "{described}");
    let pushed = run(&mut s, "SELECT id, region FROM users EMIT CHANGES LIMIT 3;").await.unwrap().concat();
    assert!(pushed.contains("|ann") && pushed.contains("|us"), "{pushed}");
    s.shutdown().await;
}

#[tokio::test]
async fn group_by_makes_a_table_updated_as_records_arrive() {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut s) = session(dir.path()).await;
    // Records arrive one at a time (linger 0 and a wait after each), as in ksqlDB's tests.
    run(&mut s, "SET 'eddy.source.linger.ms' = '0';").await.unwrap();
    run(&mut s, PAGEVIEWS).await.unwrap();
    let e =
        run(&mut s, "CREATE STREAM per_user AS SELECT user_id, COUNT(*) FROM pv GROUP BY user_id;").await.unwrap_err();
    assert!(e.to_string().contains("Your SELECT query produces a TABLE"), "{e}");
    let e = run(&mut s, "CREATE TABLE t AS SELECT COUNT(*) AS n FROM pv GROUP BY user_id;").await.unwrap_err();
    assert!(e.to_string().contains("must include the grouping expression USER_ID in"), "{e}");
    run(
        &mut s,
        "CREATE TABLE per_user AS SELECT user_id, COUNT(*) AS views, SUM(ms) AS total, MAX(page) AS last_page
           FROM pv WHERE ms > 0 GROUP BY user_id HAVING COUNT(*) >= 1;",
    )
    .await
    .unwrap();
    s.wait_until_idle().await.unwrap();
    run(&mut s, "INSERT INTO pv (ROWTIME, user_id, page, ms) VALUES (4000, 'bob', '/x', 100);").await.unwrap();
    s.wait_until_idle().await.unwrap();
    let updates: Vec<(String, String, i64)> = records(log.as_ref(), "PER_USER")
        .await
        .iter()
        .map(|r| (text(&r.key), text(&r.value), r.timestamp_ms))
        .collect();
    let last = updates.last().unwrap();
    assert_eq!(last, &("bob".to_string(), r#"{"VIEWS":2,"TOTAL":900,"LAST_PAGE":"/x"}"#.to_string(), 4000));
    let alice: Vec<&(String, String, i64)> = updates.iter().filter(|u| u.0 == "alice").collect();
    assert_eq!(alice.last().unwrap().1, r#"{"VIEWS":2,"TOTAL":3700,"LAST_PAGE":"/home"}"#);
    let described = run(&mut s, "DESCRIBE per_user;").await.unwrap().concat();
    assert!(described.contains("Type: TABLE") && described.contains("USER_ID   | STRING (primary key)"), "{described}");
    s.shutdown().await;
}

#[tokio::test]
async fn an_aggregation_rebuilds_its_state_after_a_restart_without_writing_twice() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (_log, mut s) = session(dir.path()).await;
        run(&mut s, PAGEVIEWS).await.unwrap();
        run(&mut s, "CREATE TABLE views AS SELECT user_id, COUNT(*) AS n FROM pv GROUP BY user_id;").await.unwrap();
        s.wait_until_idle().await.unwrap();
        s.shutdown().await;
    }
    let (log, mut s) = session(dir.path()).await;
    let before = records(log.as_ref(), "VIEWS").await.len();
    run(&mut s, "INSERT INTO pv (user_id, page, ms) VALUES ('alice', '/again', 1);").await.unwrap();
    s.wait_until_idle().await.unwrap();
    let after = records(log.as_ref(), "VIEWS").await;
    assert_eq!(after.len(), before + 1, "only the new record's update is written");
    let last = after.last().unwrap();
    assert_eq!((text(&last.key), text(&last.value)), ("alice".to_string(), r#"{"N":3}"#.to_string()));
    s.shutdown().await;
}

#[tokio::test]
async fn pull_queries_answer_from_the_current_state() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, mut s) = session(dir.path()).await;
    run(&mut s, PAGEVIEWS).await.unwrap();
    run(&mut s, "CREATE TABLE views AS SELECT user_id, COUNT(*) AS n, SUM(ms) AS total FROM pv GROUP BY user_id;")
        .await
        .unwrap();
    // A table: the latest row per key.
    let all = run(&mut s, "SELECT * FROM views;").await.unwrap().concat();
    assert!(all.contains(" alice   | 2 | 3700") && all.contains(" bob     | 1 | 800"), "{all}");
    let one = run(&mut s, "SELECT n FROM views WHERE user_id = 'bob';").await.unwrap().concat();
    assert!(one.contains(" 1") && !one.contains("alice"), "{one}");
    // A stream: every row, to LIMIT.
    let rows = run(&mut s, "SELECT page FROM pv WHERE ms > 1000 LIMIT 1;").await.unwrap().concat();
    assert!(rows.contains("/home") && !rows.contains("/cart"), "{rows}");
    s.shutdown().await;
}

#[tokio::test]
async fn pull_queries_follow_the_materialized_table_and_bound_windows() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, mut s) = session(dir.path()).await;
    run(&mut s, PAGEVIEWS).await.unwrap(); // at 1 s, 2 s and 3 s
    run(
        &mut s,
        "CREATE TABLE busy AS SELECT user_id, COUNT(*) AS n FROM pv GROUP BY user_id HAVING COUNT(*) < 3;
         CREATE TABLE per_minute AS SELECT user_id, COUNT(*) AS views FROM pv
           WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY user_id;",
    )
    .await
    .unwrap();
    let first = run(&mut s, "SELECT * FROM busy;").await.unwrap().concat();
    assert!(first.contains(" alice   | 2") && first.contains(" bob     | 1"), "{first}");
    // New records are folded in at the next pull; a group HAVING now rejects is gone.
    run(
        &mut s,
        "INSERT INTO pv (ROWTIME, user_id, page, ms) VALUES (61000, 'alice', '/later', 5);
         INSERT INTO pv (ROWTIME, user_id, page, ms) VALUES (62000, 'carol', '/faq', 5);",
    )
    .await
    .unwrap();
    let second = run(&mut s, "SELECT * FROM busy;").await.unwrap().concat();
    assert!(!second.contains("alice") && second.contains(" carol   | 1"), "{second}");
    // A windowed table: one row per key and window, bounded by WINDOWSTART.
    let windows = run(&mut s, "SELECT user_id, WINDOWSTART, WINDOWEND, views FROM per_minute WHERE user_id = 'alice';")
        .await
        .unwrap()
        .concat();
    assert!(windows.contains(" alice   | 0           | 60000     | 2"), "{windows}");
    assert!(windows.contains(" alice   | 60000       | 120000    | 1"), "{windows}");
    let later =
        run(&mut s, "SELECT user_id, views FROM per_minute WHERE WINDOWSTART >= 60000;").await.unwrap().concat();
    assert!(later.contains("alice") && later.contains("carol") && !later.contains("bob"), "{later}");
    // ORDER BY (beyond ksqlDB) sorts by selected columns, before LIMIT.
    let top = run(&mut s, "SELECT user_id, views FROM per_minute ORDER BY views DESC, user_id LIMIT 2;")
        .await
        .unwrap()
        .concat();
    let alice_first = top.find(" alice   | 2").unwrap_or(usize::MAX);
    assert!(alice_first < top.find(" alice   | 1").unwrap_or(0), "{top}");
    assert!(!top.contains("carol"), "{top}");
    let e = run(&mut s, "SELECT user_id FROM per_minute ORDER BY views;").await.unwrap_err();
    assert!(e.to_string().contains("must name a selected column"), "{e}");
    s.shutdown().await;
}

#[tokio::test]
async fn tumbling_windows_count_per_window_and_key_the_window_start() {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut s) = session(dir.path()).await;
    run(&mut s, "SET 'eddy.source.linger.ms' = '0';").await.unwrap();
    run(&mut s, PAGEVIEWS).await.unwrap(); // at 1 s, 2 s and 3 s
    run(&mut s, "INSERT INTO pv (ROWTIME, user_id, page, ms) VALUES (61000, 'alice', '/later', 5);").await.unwrap();
    run(
        &mut s,
        "CREATE TABLE per_minute AS SELECT user_id, COUNT(*) AS views, WINDOWSTART AS ws, WINDOWEND AS we
           FROM pv WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY user_id;",
    )
    .await
    .unwrap();
    s.wait_until_idle().await.unwrap();
    let written = records(log.as_ref(), "PER_MINUTE").await;
    let last = written.last().unwrap();
    let key = last.key.as_deref().unwrap();
    // The key: the user, then the window start (big-endian milliseconds).
    assert_eq!(&key[..key.len() - 8], b"alice");
    assert_eq!(i64::from_be_bytes(key[key.len() - 8..].try_into().unwrap()), 60_000);
    assert_eq!(text(&last.value), r#"{"VIEWS":1,"WS":60000,"WE":120000}"#);
    let first_minute: Vec<String> = written
        .iter()
        .filter(|r| r.key.as_deref().is_some_and(|k| k.starts_with(b"alice") && k.ends_with(&0i64.to_be_bytes())))
        .map(|r| text(&r.value))
        .collect();
    assert_eq!(first_minute.last().unwrap(), r#"{"VIEWS":2,"WS":0,"WE":60000}"#);
    let described = run(&mut s, "DESCRIBE EXTENDED per_minute;").await.unwrap().concat();
    assert!(described.contains("WINDOW_TYPE") || described.contains("TUMBLING"), "{described}");
    s.shutdown().await;
}

#[tokio::test]
async fn aggregating_a_table_retracts_a_row_before_counting_its_new_version() {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut s) = session(dir.path()).await;
    run(
        &mut s,
        "SET 'auto.offset.reset' = 'earliest'; SET 'eddy.source.linger.ms' = '0';
         CREATE TABLE users (id STRING PRIMARY KEY, region STRING) WITH (KAFKA_TOPIC='users', VALUE_FORMAT='JSON', PARTITIONS=1);
         CREATE TABLE per_region AS SELECT region, COUNT(*) AS n FROM users GROUP BY region;",
    )
    .await
    .unwrap();
    for insert in [
        "INSERT INTO users (id, region) VALUES ('ann', 'eu');",
        "INSERT INTO users (id, region) VALUES ('bob', 'eu');",
        "INSERT INTO users (id, region) VALUES ('ann', 'us');",
    ] {
        run(&mut s, insert).await.unwrap();
        s.wait_until_idle().await.unwrap();
    }
    let changes: Vec<(String, String)> =
        records(log.as_ref(), "PER_REGION").await.iter().map(|r| (text(&r.key), text(&r.value))).collect();
    // ann moving to us: eu loses one (the retraction first), then us gains one.
    assert_eq!(
        changes,
        [
            ("eu".into(), r#"{"N":1}"#.into()),
            ("eu".into(), r#"{"N":2}"#.into()),
            ("eu".into(), r#"{"N":1}"#.into()),
            ("us".into(), r#"{"N":1}"#.into()),
        ]
    );
    let e = run(&mut s, "CREATE TABLE t AS SELECT region, MAX(id) AS m FROM users GROUP BY region;").await.unwrap_err();
    assert!(e.to_string().contains("cannot be applied to a table source"), "{e}");
    s.shutdown().await;
}

#[tokio::test]
async fn queries_reading_few_of_an_avro_streams_columns_see_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut s) = session(dir.path()).await;
    run(
        &mut s,
        "SET 'auto.offset.reset' = 'earliest';
         CREATE STREAM bids (auction BIGINT, price BIGINT, channel STRING, url STRING, at STRING)
           WITH (KAFKA_TOPIC='bids', VALUE_FORMAT='AVRO', PARTITIONS=1, TIMESTAMP='at',
                 TIMESTAMP_FORMAT='yyyy-MM-dd HH:mm:ss');
         INSERT INTO bids VALUES (1, 100, 'web', 'https://a/1', '2026-01-01 00:00:01');
         INSERT INTO bids VALUES (2, 250, 'app', 'https://a/2', '2026-01-01 00:00:02');
         INSERT INTO bids VALUES (3, 50, 'web', 'https://a/3', '2026-01-01 00:00:03');",
    )
    .await
    .unwrap();
    // The TIMESTAMP column is read though no query names it; AUCTION and URL are skipped.
    run(&mut s, "CREATE STREAM cheap WITH (VALUE_FORMAT='JSON') AS SELECT channel FROM bids WHERE price < 200;")
        .await
        .unwrap();
    run(
        &mut s,
        "CREATE TABLE per_channel WITH (VALUE_FORMAT='JSON') AS
           SELECT channel, COUNT(*) AS c, SUM(price) AS s FROM bids GROUP BY channel;",
    )
    .await
    .unwrap();
    s.wait_until_idle().await.unwrap();
    let cheap: Vec<(String, i64)> =
        records(log.as_ref(), "CHEAP").await.iter().map(|r| (text(&r.value), r.timestamp_ms)).collect();
    assert_eq!(
        cheap,
        [(r#"{"CHANNEL":"web"}"#.to_owned(), 1767225601000), (r#"{"CHANNEL":"web"}"#.to_owned(), 1767225603000)]
    );
    // Each channel's latest total (updates within a batch are folded into one).
    let totals: std::collections::BTreeMap<String, String> =
        records(log.as_ref(), "PER_CHANNEL").await.iter().map(|r| (text(&r.key), text(&r.value))).collect();
    let expected = [("app", r#"{"C":1,"S":250}"#), ("web", r#"{"C":2,"S":150}"#)];
    assert_eq!(totals, expected.map(|(k, v)| (k.to_owned(), v.to_owned())).into());
    s.shutdown().await;
}
