//! Joins: the examples in `queries/` (enrichment, orders with shipments) give the results a
//! ksqlDB user expects, whichever topic was written first; a join query rebuilds its state
//! after a restart without writing anything twice; and a join operator's state, snapshot
//! mid-stream and restored into a fresh operator, continues as if nothing happened.

use std::sync::Arc;

use super::support::{push_rows, records, run, session, text};
use datafusion::arrow::array::{ArrayRef, BooleanArray, Int32Array, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use eddy::engine::join::{Join, JoinInput};
use eddy::engine::operator::{Operator, TimedBatch};
use eddy::log::Record;
use eddy::planner::join::plan_join;
use eddy::sql::ast::Statement;

fn example(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("queries").join(name);
    std::fs::read_to_string(path).unwrap()
}

/// `key value` of each record.
fn lines(records: &[Record]) -> Vec<String> {
    records.iter().map(|r| format!("{} {}", text(&r.key), text(&r.value))).collect()
}

#[tokio::test]
async fn page_views_pick_up_their_users_row_as_of_the_views_time() {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut s) = session(dir.path()).await;
    run(&mut s, &example("pageview-enrichment.sql")).await.unwrap();
    s.wait_until_idle().await.unwrap();
    // The views were written before the users: the join reads both in event-time order.
    assert_eq!(
        lines(&records(log.as_ref(), "ENRICHED_VIEWS").await),
        [
            r#"alice {"NAME":"Alice","REGION":"EU","PAGE":"/home","DURATION_MS":1200}"#,
            r#"bob {"NAME":"Bob","REGION":"US","PAGE":"/cart","DURATION_MS":800}"#,
            r#"carol {"NAME":null,"REGION":null,"PAGE":"/home","DURATION_MS":300}"#,
            r#"alice {"NAME":"Alice","REGION":"US","PAGE":"/checkout","DURATION_MS":2500}"#,
        ]
    );
    s.shutdown().await;
}

#[tokio::test]
async fn a_push_query_joins_as_a_persistent_query_does() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, mut s) = session(dir.path()).await;
    run(&mut s, &example("pageview-enrichment.sql")).await.unwrap();
    let out = run(
        &mut s,
        "SELECT v.user_id AS user_id, u.region AS region, v.page AS page FROM views v LEFT JOIN users u \
         ON v.user_id = u.user_id EMIT CHANGES LIMIT 4;",
    )
    .await
    .unwrap();
    let rows = push_rows(&out);
    assert_eq!(
        rows,
        [["alice", "EU", "/home"], ["bob", "US", "/cart"], ["carol", "null", "/home"], ["alice", "US", "/checkout"]]
    );
    s.shutdown().await;
}

#[tokio::test]
async fn orders_join_shipments_within_the_hour_and_the_others_wait_for_their_window_to_close() {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut s) = session(dir.path()).await;
    run(&mut s, &example("orders-shipments.sql")).await.unwrap();
    s.wait_until_idle().await.unwrap();
    let out = records(log.as_ref(), "SHIPPED_ORDERS").await;
    assert_eq!(
        lines(&out),
        [
            r#"o-1 {"CUSTOMER":"alice","TOTAL":25.5,"CARRIER":"DHL","ORDERED":"09:00","SHIPPED":"09:30"}"#,
            r#"o-3 {"CUSTOMER":"carol","TOTAL":99.9,"CARRIER":"FedEx","ORDERED":"09:20","SHIPPED":"09:50"}"#,
            // Emitted when the 11:00 shipment moved stream time past 09:10 + 1 h + 10 min.
            r#"o-2 {"CUSTOMER":"bob","TOTAL":12.0,"CARRIER":null,"ORDERED":"09:10","SHIPPED":null}"#,
        ]
    );
    // A joined result is stamped with the later of its rows' times; a null-padded one with its row's.
    let minutes = |r: &Record| (r.timestamp_ms - 1_767_225_600_000) / 60_000 - 9 * 60;
    assert_eq!(out.iter().map(minutes).collect::<Vec<_>>(), [30, 50, 10]);
    s.shutdown().await;
}

#[tokio::test]
async fn a_join_rebuilds_its_state_after_a_restart_without_writing_twice() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (_log, mut s) = session(dir.path()).await;
        run(&mut s, &example("pageview-enrichment.sql")).await.unwrap();
        s.wait_until_idle().await.unwrap();
        s.shutdown().await;
    }
    let (log, mut s) = session(dir.path()).await;
    let before = records(log.as_ref(), "ENRICHED_VIEWS").await.len();
    // Bob's row came before the restart: the join must still have it.
    run(&mut s, "INSERT INTO views (ROWTIME, user_id, page, duration_ms) VALUES (1767226000000, 'bob', '/again', 5);")
        .await
        .unwrap();
    s.wait_until_idle().await.unwrap();
    let after = records(log.as_ref(), "ENRICHED_VIEWS").await;
    assert_eq!(after.len(), before + 1, "only the new view's result is written");
    assert_eq!(lines(&after[before..]), [r#"bob {"NAME":"Bob","REGION":"US","PAGE":"/again","DURATION_MS":5}"#]);
    s.shutdown().await;
}

#[tokio::test]
async fn a_table_joins_another_on_a_foreign_key() {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut s) = session(dir.path()).await;
    run(
        &mut s,
        "SET 'auto.offset.reset' = 'earliest';
         CREATE TABLE customers (id STRING PRIMARY KEY, name STRING) WITH (KAFKA_TOPIC='customers', VALUE_FORMAT='JSON', PARTITIONS=1);
         CREATE TABLE orders (id STRING PRIMARY KEY, customer_id STRING, total DOUBLE) WITH (KAFKA_TOPIC='orders', VALUE_FORMAT='JSON', PARTITIONS=1);
         CREATE TABLE order_names AS SELECT o.id AS id, c.name AS name, o.total AS total
           FROM orders o JOIN customers c ON o.customer_id = c.id;
         INSERT INTO customers (ROWTIME, id, name) VALUES (1, 'c1', 'alice');
         INSERT INTO orders (ROWTIME, id, customer_id, total) VALUES (2, 'o10', 'c1', 5.0);
         INSERT INTO orders (ROWTIME, id, customer_id, total) VALUES (3, 'o11', 'c1', 7.5);
         INSERT INTO customers (ROWTIME, id, name) VALUES (4, 'c1', 'Alice');
         INSERT INTO orders (ROWTIME, id, customer_id, total) VALUES (5, 'o11', 'c2', 7.5);",
    )
    .await.unwrap();
    s.wait_until_idle().await.unwrap();
    assert_eq!(
        lines(&records(log.as_ref(), "ORDER_NAMES").await),
        [
            r#"o10 {"NAME":"alice","TOTAL":5.0}"#,
            r#"o11 {"NAME":"alice","TOTAL":7.5}"#,
            // A customer's change reaches every order naming it.
            r#"o10 {"NAME":"Alice","TOTAL":5.0}"#,
            r#"o11 {"NAME":"Alice","TOTAL":7.5}"#,
            // Order o11 now names a customer there is none of: an inner join deletes it.
            "o11 <null>",
        ]
    );
    s.shutdown().await;
}

/// `(ID INT KEY, V INT)` rows with the pseudo columns, as a source's rows are.
fn row_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("ID", DataType::Int32, true),
        Field::new("V", DataType::Int32, true),
        Field::new("ROWTIME", DataType::Int64, false),
        Field::new("ROWPARTITION", DataType::Int32, false),
        Field::new("ROWOFFSET", DataType::Int64, false),
    ]))
}

/// One record per batch: (input, id, v, time); `v` None is a tombstone.
fn batches(events: &[(usize, i32, Option<i32>, i64)]) -> Vec<TimedBatch> {
    events
        .iter()
        .enumerate()
        .map(|(offset, (input, id, v, time))| {
            let columns: Vec<ArrayRef> = vec![
                Arc::new(Int32Array::from(vec![*id])),
                Arc::new(Int32Array::from(vec![*v])),
                Arc::new(Int64Array::from(vec![*time])),
                Arc::new(Int32Array::from(vec![0])),
                Arc::new(Int64Array::from(vec![offset as i64])),
            ];
            let rows = RecordBatch::try_new(row_schema(), columns).unwrap();
            TimedBatch {
                timestamps_ms: rows.column(2).clone(),
                rows,
                tombstones: v.is_none().then(|| BooleanArray::from(vec![true])),
                windows: None,
                replay: false,
                input: *input,
            }
        })
        .collect()
}

async fn join(sql: &str, tables: [bool; 2]) -> Join {
    let Statement::Select(query) = eddy::sql::parse_one(sql).unwrap() else { panic!("not a query") };
    let inputs: Vec<JoinInput> = ["L", "R"]
        .iter()
        .zip(tables)
        .map(|(name, table)| JoinInput {
            name: name.to_string(),
            row_schema: row_schema(),
            star: vec!["ID".into(), "V".into()],
            table,
            key: vec!["ID".into()],
            window: None,
        })
        .collect();
    let plan = plan_join(&query, &inputs).await.unwrap();
    Join::try_new(Arc::new(plan), 0, "test".into()).unwrap()
}

/// Every output row as text with its time, deletions marked.
fn results(operator: &mut Join, input: Vec<TimedBatch>) -> Vec<String> {
    let mut lines = Vec::new();
    for batch in input {
        let mut out = Vec::new();
        operator.process(batch, &mut out).unwrap();
        for batch in out {
            let formatted =
                datafusion::arrow::util::pretty::pretty_format_batches(std::slice::from_ref(&batch.rows)).unwrap();
            let times = batch.timestamps_ms.as_any().downcast_ref::<Int64Array>().unwrap().clone();
            for (i, line) in formatted.to_string().lines().skip(3).filter(|l| !l.starts_with('+')).enumerate() {
                let deleted = batch.tombstones.as_ref().is_some_and(|t| t.value(i));
                lines.push(format!("{line} @{}{}", times.value(i), if deleted { " <deleted>" } else { "" }));
            }
        }
    }
    lines
}

#[tokio::test]
async fn a_restored_join_snapshot_continues_as_if_nothing_happened() {
    // (input, id, v, time)
    let events: [(usize, i32, Option<i32>, i64); 10] = [
        (0, 1, Some(10), 1_000),
        (1, 1, Some(20), 2_000),
        (0, 2, Some(11), 3_000),
        (1, 3, Some(2), 4_000),
        (0, 1, Some(12), 5_000),
        (1, 2, Some(21), 9_000),
        (0, 3, Some(3), 12_000),
        (1, 1, None, 13_000),
        (0, 4, Some(1), 30_000),
        (1, 4, Some(24), 31_000),
    ];
    for (sql, tables) in [
        (
            "SELECT L.ID, L.V AS LV, R.V AS RV FROM L LEFT JOIN R WITHIN 5 SECONDS GRACE PERIOD 2 SECONDS \
             ON L.ID = R.ID EMIT CHANGES;",
            [false, false],
        ),
        (
            "SELECT ROWKEY, L.V AS LV, R.V AS RV FROM L FULL OUTER JOIN R WITHIN 5 SECONDS ON L.ID = R.ID EMIT CHANGES;",
            [false, false],
        ),
        ("SELECT L.ID, L.V AS LV, R.V AS RV FROM L LEFT JOIN R ON L.ID = R.ID EMIT CHANGES;", [false, true]),
        ("SELECT ROWKEY, L.V AS LV, R.V AS RV FROM L FULL OUTER JOIN R ON L.ID = R.ID EMIT CHANGES;", [true, true]),
        // A foreign key: L.V names an R row.
        ("SELECT L.ID, L.V AS LV, R.V AS RV FROM L LEFT JOIN R ON L.V = R.ID EMIT CHANGES;", [true, true]),
    ] {
        let mut straight = join(sql, tables).await;
        let expected = results(&mut straight, batches(&events));
        assert!(!expected.is_empty(), "{sql}");
        for cut in [0, 3, 5, 8] {
            let (before, after) = events.split_at(cut);
            let mut first = join(sql, tables).await;
            let mut got = results(&mut first, batches(before));
            let snapshot = first.snapshot().unwrap();
            let mut second = join(sql, tables).await;
            second.restore(&snapshot).unwrap();
            assert_eq!(second.state_bytes() > 0, first.state_bytes() > 0, "{sql}, restored after {cut} records");
            got.extend(results(&mut second, batches(after)));
            assert_eq!(got, expected, "{sql}, restored after {cut} records");
        }
    }
}

/// One batch of rows `(id, v)` of input `input` at time `time`; `v` None rows are deletions.
fn big_batch(input: usize, rows: &[(i32, Option<i32>)], time: i64) -> TimedBatch {
    let n = rows.len();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int32Array::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())),
        Arc::new(Int32Array::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())),
        Arc::new(Int64Array::from(vec![time; n])),
        Arc::new(Int32Array::from(vec![0; n])),
        Arc::new(Int64Array::from((0..n as i64).collect::<Vec<_>>())),
    ];
    let batch = RecordBatch::try_new(row_schema(), columns).unwrap();
    TimedBatch {
        timestamps_ms: batch.column(2).clone(),
        rows: batch,
        tombstones: Some(BooleanArray::from(rows.iter().map(|r| r.1.is_none()).collect::<Vec<_>>())),
        windows: None,
        replay: false,
        input,
    }
}

#[tokio::test]
async fn stored_rows_do_not_keep_the_batches_they_came_in_alive() {
    let sql = "SELECT L.ID, L.V AS LV, R.V AS RV FROM L LEFT JOIN R ON L.ID = R.ID EMIT CHANGES;";
    let mut operator = join(sql, [false, true]).await;
    let mut out = Vec::new();
    // 100,000 table rows in one batch, then all but one deleted.
    let rows: Vec<(i32, Option<i32>)> = (0..100_000).map(|i| (i, Some(i))).collect();
    operator.process(big_batch(1, &rows, 1), &mut out).unwrap();
    let full = operator.state_bytes();
    let deletions: Vec<(i32, Option<i32>)> = (1..100_000).map(|i| (i, None)).collect();
    operator.process(big_batch(1, &deletions, 2), &mut out).unwrap();
    operator.process(big_batch(1, &[(0, Some(0))], 2), &mut out).unwrap();
    // The one row left is copied out of its 100,000-row batch.
    assert!(operator.state_bytes() * 100 < full, "{} bytes held of {full}", operator.state_bytes());
    // And still joins.
    operator.process(big_batch(0, &[(0, Some(7))], 3), &mut out).unwrap();
    assert_eq!(out.last().unwrap().rows.num_rows(), 1);
}

/// A backlog: two topics of very different densities, written before the join starts. A
/// fetch of the sparse one spans ten times the time of a fetch of the dense one; read fetch
/// by fetch, stream time would run ahead and close the dense side's windows before its rows
/// were read. Read in event-time order, every pair joins.
#[tokio::test]
async fn a_backlog_joins_as_if_it_had_arrived_live() {
    use eddy::log::{NewRecord, TopicSpec};
    let dir = tempfile::tempdir().unwrap();
    let (log, mut s) = session(dir.path()).await;
    log.create_topic("views", &TopicSpec::new(1)).await.unwrap();
    log.create_topic("buys", &TopicSpec::new(1)).await.unwrap();
    let views: Vec<NewRecord> = (0..30_000u64)
        .map(|n| {
            let value = format!(r#"{{"page":"/p/{}"}}"#, n % 100);
            NewRecord::new((n * 10) as i64, Some(format!("u{}", n % 1000).into()), Some(value.into()))
        })
        .collect();
    let buys: Vec<NewRecord> = (0..30_000u64)
        .filter(|n| n % 10 == 0)
        .map(|n| {
            NewRecord::new(
                (n * 10 + 5_000) as i64,
                Some(format!("u{}", n % 1000).into()),
                Some(r#"{"amount":1.5}"#.into()),
            )
        })
        .collect();
    for chunk in views.chunks(5_000) {
        log.append("views", 0, chunk).await.unwrap();
    }
    log.append("buys", 0, &buys).await.unwrap();
    run(
        &mut s,
        "SET 'auto.offset.reset' = 'earliest';
         CREATE STREAM views (user_id STRING KEY, page STRING) WITH (KAFKA_TOPIC='views', VALUE_FORMAT='JSON');
         CREATE STREAM buys (user_id STRING KEY, amount DOUBLE) WITH (KAFKA_TOPIC='buys', VALUE_FORMAT='JSON');
         CREATE STREAM bought AS SELECT v.user_id AS user_id, v.page AS page, b.amount AS amount
           FROM views v JOIN buys b WITHIN 1 MINUTE GRACE PERIOD 10 SECONDS ON v.user_id = b.user_id;",
    )
    .await
    .unwrap();
    s.wait_until_idle().await.unwrap();
    // Each purchase joins every view of its user within a minute either way (a user comes
    // back every 10 s: 12 views, fewer at the ends).
    let expected: usize = (0..30_000i64)
        .step_by(10)
        .map(|n| {
            (0..30_000i64)
                .skip((n % 1000) as usize)
                .step_by(1000)
                .filter(|m| (m * 10 - (n * 10 + 5_000)).abs() <= 60_000)
                .count()
        })
        .sum();
    assert_eq!(expected, 32_400);
    assert_eq!(records(log.as_ref(), "BOUGHT").await.len(), expected);
    s.shutdown().await;
}

#[tokio::test]
async fn an_n_way_join_is_keyed_by_its_last_join_whatever_the_earlier_keys_types() {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut s) = session(dir.path()).await;
    run(
        &mut s,
        "SET 'auto.offset.reset' = 'earliest';
         CREATE STREAM s1 (id INT KEY, name STRING) WITH (KAFKA_TOPIC='s1', VALUE_FORMAT='JSON', PARTITIONS=1);
         CREATE TABLE t2 (id INT PRIMARY KEY, v STRING) WITH (KAFKA_TOPIC='t2', VALUE_FORMAT='JSON', PARTITIONS=1);
         CREATE TABLE t3 (name STRING PRIMARY KEY, w STRING) WITH (KAFKA_TOPIC='t3', VALUE_FORMAT='JSON', PARTITIONS=1);
         INSERT INTO t2 (ROWTIME, id, v) VALUES (1, 1, 'v1');
         INSERT INTO t3 (ROWTIME, name, w) VALUES (1, 'abc', 'w1');
         INSERT INTO s1 (ROWTIME, id, name) VALUES (2, 1, 'abc');
         CREATE STREAM out3 AS SELECT s1.name AS name, t2.v AS v, t3.w AS w
           FROM s1 JOIN t2 ON s1.id = t2.id JOIN t3 ON s1.name = t3.name;",
    )
    .await
    .unwrap();
    s.wait_until_idle().await.unwrap();
    // Keyed by the STRING name of the second join, not the INT id of the first.
    assert_eq!(lines(&records(log.as_ref(), "OUT3").await), [r#"abc {"V":"v1","W":"w1"}"#]);
    s.shutdown().await;
}

#[tokio::test]
async fn a_foreign_key_join_needs_a_left_table_keyed_by_one_column() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, mut s) = session(dir.path()).await;
    let refused = run(
        &mut s,
        "CREATE TABLE l (a INT PRIMARY KEY, b INT PRIMARY KEY, f INT) WITH (KAFKA_TOPIC='l', FORMAT='JSON', PARTITIONS=1);
         CREATE TABLE r (id INT PRIMARY KEY, v STRING) WITH (KAFKA_TOPIC='r', FORMAT='JSON', PARTITIONS=1);
         CREATE TABLE o AS SELECT l.a, l.b, r.v FROM l JOIN r ON l.a = r.id;",
    )
    .await
    .unwrap_err();
    assert!(refused.to_string().contains("a foreign-key join needs a left table keyed by one column"), "{refused}");
    s.shutdown().await;
}
