//! GROUP BY over a join: a windowed count straight off a stream-table join (the enrichment
//! example), a table-table join aggregated with retractions when a joined row moves to
//! another group, the same after a restart, a push query, and ksqlDB's refusals.

use super::support::{push_rows, records, run, session, text};
use eddy::log::Record;

const SALES: &str = "SET 'auto.offset.reset' = 'earliest';
    CREATE TABLE customers (id STRING PRIMARY KEY, region STRING)
      WITH (KAFKA_TOPIC='customers', VALUE_FORMAT='JSON', PARTITIONS=1);
    CREATE TABLE orders (id INT PRIMARY KEY, customer STRING, amount INT)
      WITH (KAFKA_TOPIC='orders', VALUE_FORMAT='JSON', PARTITIONS=1);
    INSERT INTO customers (ROWTIME, id, region) VALUES (1000, 'alice', 'EU');
    INSERT INTO customers (ROWTIME, id, region) VALUES (1000, 'bob', 'US');
    INSERT INTO orders (ROWTIME, id, customer, amount) VALUES (2000, 1, 'alice', 10);
    INSERT INTO orders (ROWTIME, id, customer, amount) VALUES (3000, 2, 'bob', 20);
    INSERT INTO orders (ROWTIME, id, customer, amount) VALUES (4000, 3, 'alice', 5);
    INSERT INTO customers (ROWTIME, id, region) VALUES (5000, 'alice', 'US');
    INSERT INTO orders (ROWTIME, id, customer, amount) VALUES (6000, 2, 'bob', 25);
    CREATE TABLE sales_per_region AS
      SELECT c.region AS region, COUNT(*) AS orders, SUM(o.amount) AS total
      FROM orders o JOIN customers c ON o.customer = c.id
      GROUP BY c.region;";

/// `timestamp key value` of each record.
fn lines(records: &[Record]) -> Vec<String> {
    records.iter().map(|r| format!("{} {} {}", r.timestamp_ms, text(&r.key), text(&r.value))).collect()
}

#[tokio::test]
async fn views_are_counted_per_region_and_window_straight_off_the_join() {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut s) = session(dir.path()).await;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("queries/pageview-enrichment.sql");
    run(&mut s, &std::fs::read_to_string(path).unwrap()).await.unwrap();
    s.wait_until_idle().await.unwrap();
    // Keys are the region then the window's start (8 bytes, big-endian), as ksqlDB writes them.
    let rows: Vec<(String, i64, String)> = records(log.as_ref(), "REGION_ACTIVITY")
        .await
        .iter()
        .map(|r| {
            let key = r.key.as_deref().unwrap();
            let (region, start) = key.split_at(key.len() - 8);
            let start = i64::from_be_bytes(start.try_into().unwrap());
            (String::from_utf8_lossy(region).into_owned(), start, text(&r.value))
        })
        .collect();
    let window = |minute: i64| 1_767_225_600_000 + minute * 60_000;
    assert_eq!(
        rows,
        [
            ("EU".into(), window(0), r#"{"VIEWS":1,"TOTAL_MS":1200}"#.into()),
            ("US".into(), window(0), r#"{"VIEWS":1,"TOTAL_MS":800}"#.into()),
            // Carol's view has no region (no user row): a null grouping key is not counted.
            // Alice's 00:05 view is from the US, where she moved at 00:04.
            ("US".into(), window(5), r#"{"VIEWS":1,"TOTAL_MS":2500}"#.into()),
        ]
    );
    s.shutdown().await;
}

#[tokio::test]
async fn an_aggregated_table_join_takes_a_row_out_of_its_old_group_when_it_moves() {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut s) = session(dir.path()).await;
    run(&mut s, SALES).await.unwrap();
    s.wait_until_idle().await.unwrap();
    assert_eq!(
        lines(&records(log.as_ref(), "SALES_PER_REGION").await),
        [
            r#"2000 EU {"ORDERS":1,"TOTAL":10}"#,
            r#"3000 US {"ORDERS":1,"TOTAL":20}"#,
            r#"4000 EU {"ORDERS":2,"TOTAL":15}"#,
            // Alice moves to the US: each of her orders leaves the EU, then joins the US.
            r#"5000 EU {"ORDERS":1,"TOTAL":5}"#,
            r#"5000 US {"ORDERS":2,"TOTAL":30}"#,
            r#"5000 EU {"ORDERS":0,"TOTAL":0}"#,
            r#"5000 US {"ORDERS":3,"TOTAL":35}"#,
            // Bob's order changes: its old amount is taken out, the new one added.
            r#"6000 US {"ORDERS":3,"TOTAL":40}"#,
        ]
    );
    s.shutdown().await;
}

#[tokio::test]
async fn an_aggregated_join_rebuilds_its_state_after_a_restart_without_writing_twice() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (_log, mut s) = session(dir.path()).await;
        run(&mut s, SALES).await.unwrap();
        s.wait_until_idle().await.unwrap();
        s.shutdown().await;
    }
    let (log, mut s) = session(dir.path()).await;
    let before = records(log.as_ref(), "SALES_PER_REGION").await.len();
    // Order 2 moves to a customer in the EU: its amount leaves the US total, which the
    // restarted query must still know.
    run(&mut s, "INSERT INTO customers (ROWTIME, id, region) VALUES (7000, 'carol', 'EU');").await.unwrap();
    run(&mut s, "INSERT INTO orders (ROWTIME, id, customer, amount) VALUES (8000, 2, 'carol', 25);").await.unwrap();
    s.wait_until_idle().await.unwrap();
    let after = records(log.as_ref(), "SALES_PER_REGION").await;
    assert_eq!(
        lines(&after[before..]),
        [r#"8000 US {"ORDERS":2,"TOTAL":15}"#, r#"8000 EU {"ORDERS":1,"TOTAL":25}"#],
        "only the moved order's two updates are written"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn a_push_query_aggregates_a_join_as_a_persistent_query_does() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, mut s) = session(dir.path()).await;
    run(&mut s, SALES).await.unwrap();
    let out = run(
        &mut s,
        "SELECT c.region, SUM(o.amount) AS total FROM orders o JOIN customers c ON o.customer = c.id \
         GROUP BY c.region EMIT CHANGES;",
    )
    .await
    .unwrap();
    let rows = push_rows(&out);
    assert_eq!(
        rows,
        [["EU", "10"], ["US", "20"], ["EU", "15"], ["EU", "5"], ["US", "30"], ["EU", "0"], ["US", "35"], ["US", "40"]]
    );
    s.shutdown().await;
}

#[tokio::test]
async fn an_aggregated_join_is_refused_where_ksqldb_refuses_it() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, mut s) = session(dir.path()).await;
    run(&mut s, SALES).await.unwrap();
    for (statement, message) in [
        (
            "CREATE TABLE a AS SELECT c.region, COUNT(*), WINDOWSTART AS ws FROM orders o JOIN customers c \
             ON o.customer = c.id WINDOW TUMBLING (SIZE 1 SECOND) GROUP BY c.region;",
            "SELECT column 'WINDOWSTART' cannot be resolved.",
        ),
        (
            "CREATE TABLE b AS SELECT c.region, MAX(o.amount) FROM orders o JOIN customers c \
             ON o.customer = c.id GROUP BY c.region;",
            "The aggregation functions MAX cannot be applied to a table source",
        ),
        (
            "CREATE TABLE c AS SELECT COUNT(*) AS n FROM orders o JOIN customers c ON o.customer = c.id \
             GROUP BY c.region;",
            "must include the grouping expression",
        ),
    ] {
        let refused = run(&mut s, statement).await.unwrap_err().to_string();
        assert!(refused.contains(message), "{statement}: {refused}");
    }
    s.shutdown().await;
}
