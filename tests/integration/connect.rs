//! The connector seam: a source connector's records land in its topic; a sink connector is
//! handed a topic's records, and a restarted sink goes on after what it flushed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use eddy::connect::{
    Connector, ConnectorClass, ConnectorConfig, ConnectorError, ConnectorState, Connectors, RunningConnector,
    SinkConnector, SourceConnector,
};
use eddy::log::{EmbeddedLog, Log, NewRecord, Record};
use futures::future::BoxFuture;

use super::support::records;

/// Counts from `next` to `end` into `numbers`, ten records a poll.
struct Counter {
    next: u64,
    end: u64,
}

impl SourceConnector for Counter {
    fn topic(&self) -> &str {
        "numbers"
    }

    fn poll(&mut self) -> BoxFuture<'_, Result<Option<Vec<NewRecord>>, ConnectorError>> {
        let batch: Vec<NewRecord> = (self.next..self.end.min(self.next + 10))
            .map(|n| NewRecord::new(0, Some(Bytes::from(format!("k{}", n % 3))), Some(Bytes::from(n.to_string()))))
            .collect();
        self.next += batch.len() as u64;
        Box::pin(async move { Ok((!batch.is_empty()).then_some(batch)) })
    }
}

/// What a test sink made durable, and a signal at each flush.
#[derive(Default)]
struct Outside {
    flushed: Mutex<Vec<String>>,
    flushes: tokio::sync::Notify,
}

struct Collector {
    outside: Arc<Outside>,
    taken: Vec<String>,
}

impl SinkConnector for Collector {
    fn topics(&self) -> Vec<String> {
        vec!["numbers".into()]
    }

    fn put<'a>(&'a mut self, _topic: &'a str, records: &'a [Record]) -> BoxFuture<'a, Result<(), ConnectorError>> {
        self.taken
            .extend(records.iter().map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into()));
        Box::pin(async { Ok(()) })
    }

    fn flush(&mut self) -> BoxFuture<'_, Result<(), ConnectorError>> {
        self.outside.flushed.lock().unwrap().append(&mut self.taken);
        self.outside.flushes.notify_waiters();
        Box::pin(async { Ok(()) })
    }
}

/// Both connectors as classes, by name; the collector's durable store is shared.
struct Classes {
    outside: Arc<Outside>,
}

impl ConnectorClass for Classes {
    fn names(&self) -> &[&'static str] {
        &["Counter", "Collector"]
    }

    fn create(&self, config: &ConnectorConfig) -> Result<Connector, ConnectorError> {
        match config.required("connector.class")?.to_ascii_lowercase().as_str() {
            "counter" => {
                let number = |name: &str| -> Result<u64, ConnectorError> {
                    config.required(name)?.parse().map_err(|_| ConnectorError::new(format!("{name} is not a number")))
                };
                Ok(Connector::Source(Box::new(Counter { next: number("from")?, end: number("to")? })))
            }
            _ => Ok(Connector::Sink(Box::new(Collector { outside: Arc::clone(&self.outside), taken: Vec::new() }))),
        }
    }
}

fn config(name: &str, properties: &[(&str, &str)]) -> ConnectorConfig {
    ConnectorConfig {
        name: name.into(),
        properties: properties.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    }
}

/// Waits (a flush at a time) until the sink has made `count` records durable.
async fn flushed(outside: &Outside, count: usize) -> Vec<String> {
    let wait = async {
        loop {
            let flush = outside.flushes.notified();
            if outside.flushed.lock().unwrap().len() >= count {
                return outside.flushed.lock().unwrap().clone();
            }
            flush.await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), wait).await.expect("the sink flushed in time")
}

#[tokio::test]
async fn a_source_fills_its_topic_and_a_sink_restarted_goes_on_after_its_last_flush() {
    let dir = tempfile::tempdir().unwrap();
    let log: Arc<dyn Log> = Arc::new(EmbeddedLog::open(dir.path()).unwrap());
    let outside = Arc::new(Outside::default());
    let mut connectors = Connectors::default();
    connectors.register(Arc::new(Classes { outside: Arc::clone(&outside) }));

    let counter = connectors.create(&config("count", &[("connector.class", "counter"), ("from", "0"), ("to", "1000")]));
    let mut source = RunningConnector::start(Arc::clone(&log), "count", counter.unwrap());
    source.finished().await;
    assert_eq!(source.status.state(), ConnectorState::Stopped);
    assert_eq!(source.status.records_out.load(std::sync::atomic::Ordering::Relaxed), 1000);
    assert_eq!(records(log.as_ref(), "numbers").await.len(), 1000);

    let collector = || connectors.create(&config("collect", &[("connector.class", "Collector")])).unwrap();
    let sink = RunningConnector::start(Arc::clone(&log), "collect", collector());
    let taken = flushed(&outside, 1000).await;
    assert_eq!(taken.len(), 1000);
    assert_eq!(taken.iter().map(|n| n.parse::<u64>().unwrap()).sum::<u64>(), (0..1000).sum::<u64>());
    sink.stop().await;

    // Ten more, then the sink again: it is handed only those.
    let more = connectors.create(&config("count", &[("connector.class", "Counter"), ("from", "1000"), ("to", "1010")]));
    RunningConnector::start(Arc::clone(&log), "count", more.unwrap()).finished().await;
    outside.flushed.lock().unwrap().clear();
    let sink = RunningConnector::start(Arc::clone(&log), "collect", collector());
    let taken = flushed(&outside, 10).await;
    let expected: Vec<String> = (1000..1010).map(|n| n.to_string()).collect();
    assert_eq!(taken, expected);
    sink.stop().await;

    // A class no one registered, and a property missing, are refused before anything runs.
    let unknown = connectors.create(&config("x", &[("connector.class", "JdbcSinkConnector")])).err().unwrap();
    assert!(unknown.message.contains("Unknown connector class JdbcSinkConnector"), "{unknown}");
    let missing = connectors.create(&config("x", &[("connector.class", "Counter"), ("from", "1")])).err().unwrap();
    assert!(missing.message.contains("'to'"), "{missing}");
}

/// Waits until `topic` holds `count` records (a connector filling it runs on its own task).
async fn filled(log: &dyn Log, topic: &str, count: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while log.latest_offset(topic, 0).await.unwrap_or(0) < count {
        assert!(tokio::time::Instant::now() < deadline, "{topic} has not {count} records");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

const ORDERS_GEN: &str = "CREATE SOURCE CONNECTOR orders_gen WITH ('connector.class'='DatagenSource',
    'kafka.topic'='orders', 'quickstart'='orders', 'max.interval'=0, 'iterations'=100, 'random.seed'=5);";

#[tokio::test]
async fn datagen_made_with_sql_fills_a_topic_a_stream_reads_and_survives_a_restart() {
    use super::support::{run, session, text};
    let dir = tempfile::tempdir().unwrap();
    {
        let (log, mut s) = session(dir.path()).await;
        let out = run(&mut s, ORDERS_GEN).await.unwrap().concat();
        assert!(out.contains("Created connector ORDERS_GEN"), "{out}");
        filled(log.as_ref(), "orders", 100).await;
        let again = run(&mut s, ORDERS_GEN).await.unwrap_err().to_string();
        assert!(again.contains("Connector ORDERS_GEN already exists"), "{again}");
        let quiet = run(&mut s, &ORDERS_GEN.replace("CONNECTOR orders_gen", "CONNECTOR IF NOT EXISTS Orders_Gen"))
            .await
            .unwrap()
            .concat();
        assert!(quiet.contains("Connector ORDERS_GEN already exists"), "{quiet}");
        run(
            &mut s,
            "SET 'auto.offset.reset' = 'earliest';
             CREATE STREAM orders (id STRING KEY, ordertime BIGINT, orderid INT, itemid STRING, orderunits DOUBLE,
                                   address STRUCT<city STRING, state STRING, zipcode BIGINT>)
               WITH (KAFKA_TOPIC='orders', VALUE_FORMAT='JSON');
             CREATE STREAM cities AS SELECT id, orderid, address->city AS city FROM orders;",
        )
        .await
        .unwrap();
        s.wait_until_idle().await.unwrap();
        let cities = records(log.as_ref(), "CITIES").await;
        assert_eq!(cities.len(), 100);
        assert_eq!(text(&cities[7].key), "7", "the key is orderid, as text");
        assert!(text(&cities[7].value).starts_with(r#"{"ORDERID":7,"CITY":"City_"#), "{}", text(&cities[7].value));
        let described = run(&mut s, "DESCRIBE CONNECTOR orders_gen;").await.unwrap().concat();
        for expected in [
            "Name                 : ORDERS_GEN",
            "Class                : DatagenSource",
            "Type                 : source",
            "Records out          : 100",
            "Related Topics",
            " orders",
            " ORDERS ",
        ] {
            assert!(described.contains(expected), "{expected} in {described}");
        }
        s.shutdown().await;
    }
    // Opened again: the connector is back, and goes on from its 100 records (it made them all).
    let (log, mut s) = session(dir.path()).await;
    let listed = run(&mut s, "SHOW CONNECTORS;").await.unwrap().concat();
    assert!(listed.contains(" Connector Name | Type   | Class         | Status"), "{listed}");
    assert!(listed.contains(" ORDERS_GEN     | SOURCE | DatagenSource |"), "{listed}");
    assert!(run(&mut s, "SHOW SINK CONNECTORS;").await.unwrap().concat().lines().all(|l| !l.contains("ORDERS_GEN")));
    let dropped = run(&mut s, "DROP CONNECTOR orders_gen;").await.unwrap().concat();
    assert!(dropped.contains(r#"Dropped connector "ORDERS_GEN""#), "{dropped}");
    assert_eq!(log.latest_offset("orders", 0).await.unwrap(), 100, "nothing made twice");
    let missing = run(&mut s, "DROP CONNECTOR orders_gen;").await.unwrap_err().to_string();
    assert!(missing.contains("Connector ORDERS_GEN not found"), "{missing}");
    let quiet = run(&mut s, "DROP CONNECTOR IF EXISTS orders_gen;").await.unwrap().concat();
    assert!(quiet.contains("Connector 'ORDERS_GEN' does not exist."), "{quiet}");
    let wrong_way =
        run(&mut s, &ORDERS_GEN.replace("SOURCE CONNECTOR", "SINK CONNECTOR")).await.unwrap_err().to_string();
    assert!(wrong_way.contains("DatagenSource is a source connector"), "{wrong_way}");
    let unknown =
        run(&mut s, "CREATE SOURCE CONNECTOR c WITH ('connector.class'='Nope');").await.unwrap_err().to_string();
    assert!(unknown.contains("Unknown connector class Nope"), "{unknown}");
    s.shutdown().await;
}

/// `DESCRIBE CONNECTOR name`, polled until it shows `state`.
async fn described_once(s: &mut eddy::session::Session, name: &str, state: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let described = super::support::run(s, &format!("DESCRIBE CONNECTOR {name};")).await.unwrap().concat();
        if described.contains(state) {
            return described;
        }
        assert!(tokio::time::Instant::now() < deadline, "not {state}: {described}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls `query` on `client` until its rows (as text) are `expected`.
async fn rows_become(client: &tokio_postgres::Client, query: &str, expected: &[&str]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let rows: Vec<String> = match client.query(query, &[]).await {
            Ok(rows) => rows.iter().map(|r| r.get::<_, String>(0)).collect(),
            Err(_) => Vec::new(),
        };
        if rows == expected {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{query}: {rows:?}, not {expected:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jdbc_sink_keeps_a_postgres_table_in_step_and_waits_out_the_database_going_away() {
    use super::support::{Postgres, run, session};
    let postgres = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let (_log, mut s) = session(dir.path()).await;
    // Totals per item; an item whose total reaches 10 leaves the table (a tombstone).
    run(
        &mut s,
        "SET 'auto.offset.reset' = 'earliest';
         CREATE STREAM orders (item STRING, units INT, price DECIMAL(6, 2))
           WITH (KAFKA_TOPIC='orders', VALUE_FORMAT='JSON', PARTITIONS=1);
         CREATE TABLE totals WITH (KAFKA_TOPIC='totals') AS
           SELECT item, SUM(units) AS units, MAX(price) AS top, COUNT(*) AS n FROM orders GROUP BY item
           HAVING SUM(units) < 10;
         INSERT INTO orders VALUES ('apple', 2, 1.50);
         INSERT INTO orders VALUES ('pear', 3, 0.75);
         INSERT INTO orders VALUES ('apple', 4, 1.25);
         INSERT INTO orders VALUES ('fig', 9, 3.10);",
    )
    .await
    .unwrap();
    let created = run(
        &mut s,
        &format!(
            "CREATE SINK CONNECTOR totals_pg WITH ('connector.class'='JdbcSinkConnector',
               'connection.url'='{}', 'topics'='totals', 'table.name.format'='item_${{topic}}',
               'insert.mode'='upsert', 'pk.mode'='record_key', 'auto.create'='true', 'delete.enabled'='true');",
            postgres.jdbc_url()
        ),
    )
    .await
    .unwrap()
    .concat();
    assert!(created.contains("Created connector TOTALS_PG"), "{created}");
    let client = postgres.client().await;
    let query = r#"SELECT "ITEM" || ' ' || "UNITS" || ' ' || "TOP" || ' ' || "N" FROM item_totals ORDER BY "ITEM""#;
    rows_become(&client, query, &["apple 6 1.50 2", "fig 9 3.10 1", "pear 3 0.75 1"]).await;
    // The table's types, as auto.create made them.
    let types: Vec<String> = client
        .query(
            "SELECT column_name || ' ' || data_type FROM information_schema.columns WHERE table_name = 'item_totals' \
             ORDER BY ordinal_position",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(types, ["ITEM text", "UNITS integer", "TOP numeric", "N bigint"]);

    // fig reaches 10: its row is deleted; pear is updated.
    run(&mut s, "INSERT INTO orders VALUES ('fig', 1, 1.00); INSERT INTO orders VALUES ('pear', 1, 0.80);")
        .await
        .unwrap();
    rows_become(&client, query, &["apple 6 1.50 2", "pear 4 0.80 2"]).await;

    // The database goes away: the connector retries with the reason, then catches up.
    drop(client);
    postgres.pg_ctl("stop");
    run(&mut s, "INSERT INTO orders VALUES ('kiwi', 5, 0.40); INSERT INTO orders VALUES ('apple', 1, 2.00);")
        .await
        .unwrap();
    let described = described_once(&mut s, "totals_pg", "RETRYING").await;
    assert!(described.contains("cannot connect to jdbc:postgresql://127.0.0.1"), "{described}");
    postgres.pg_ctl("start");
    let client = postgres.client().await;
    rows_become(&client, query, &["apple 7 2.00 3", "kiwi 5 0.40 1", "pear 4 0.80 2"]).await;
    // The rows land when PostgreSQL commits; the state turns RUNNING once the topics'
    // positions are committed after that, a moment later.
    described_once(&mut s, "totals_pg", "RUNNING").await;
    let listed = run(&mut s, "SHOW SINK CONNECTORS;").await.unwrap().concat();
    assert!(listed.contains("RUNNING (1/1 tasks RUNNING)"), "{listed}");
    s.shutdown().await;
}

/// `queries/orders-to-postgres.sql` against a throwaway PostgreSQL, its datagen bounded to
/// 500 orders made at once: every order is counted in exactly one row of the table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_orders_to_postgres_example_fills_its_table() {
    use super::support::{Postgres, run, session};
    let postgres = Postgres::start();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("queries/orders-to-postgres.sql");
    let script = std::fs::read_to_string(path).unwrap();
    let script = script
        .replace("jdbc:postgresql://127.0.0.1:5432/postgres?user=postgres", &postgres.jdbc_url())
        .replace("'max.interval' = 200", "'max.interval' = 0, 'iterations' = 500");
    assert!(script.contains("'iterations' = 500") && script.contains(&postgres.jdbc_url()), "the example changed");
    let dir = tempfile::tempdir().unwrap();
    let (log, mut s) = session(dir.path()).await;
    run(&mut s, &script).await.unwrap();
    filled(log.as_ref(), "orders", 500).await;
    let units: f64 = records(log.as_ref(), "orders")
        .await
        .iter()
        .map(|r| {
            serde_json::from_slice::<serde_json::Value>(r.value.as_deref().unwrap()).unwrap()["orderunits"]
                .as_f64()
                .unwrap()
        })
        .sum();
    let client = postgres.client().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let row = client
            .query_one(
                r#"SELECT COALESCE(SUM("ORDERS"), 0)::BIGINT, COALESCE(SUM("UNITS"), 0) FROM "REVENUE_PER_ITEM""#,
                &[],
            )
            .await;
        if let Ok(row) = row {
            let (orders, total): (i64, f64) = (row.get(0), row.get(1));
            if orders == 500 {
                assert!((total - units).abs() < 1e-6, "{total} units in the table, {units} ordered");
                break;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "the table has not counted the 500 orders");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.shutdown().await;
}

/// Datagen orders, totals per item, upserted into PostgreSQL by `eddy run`, killed with
/// SIGKILL mid-stream and started again: the table ends as the totals of the orders in the
/// topic, no row missing and no order counted twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jdbc_sinks_table_survives_a_kill_9_with_nothing_missing_or_doubled() {
    use std::process::{Command, Stdio};
    let postgres = super::support::Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let logs = tempfile::tempdir().unwrap();
    let eddy = |run: &str| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_eddy"));
        command.arg("--data-dir").arg(d).env_remove("EDDY_DATA_DIR").env_remove("EDDY_LOG");
        let stderr = std::fs::File::create(logs.path().join(run)).unwrap();
        command.stdout(Stdio::null()).stderr(stderr);
        command
    };
    let stderr_of = |run: &str| std::fs::read_to_string(logs.path().join(run)).unwrap_or_default();
    let pipeline = d.join("pipeline.sql");
    std::fs::write(
        &pipeline,
        format!(
            "SET 'auto.offset.reset' = 'earliest';
             CREATE SOURCE CONNECTOR orders_gen WITH ('connector.class'='DatagenSource', 'kafka.topic'='orders',
               'quickstart'='orders', 'max.interval'=2, 'iterations'=3000, 'random.seed'=11);
             CREATE STREAM orders (id STRING KEY, orderid INT, itemid STRING, orderunits DOUBLE)
               WITH (KAFKA_TOPIC='orders', VALUE_FORMAT='JSON', PARTITIONS=1);
             CREATE TABLE totals AS SELECT itemid, COUNT(*) AS orders FROM orders GROUP BY itemid;
             CREATE SINK CONNECTOR totals_pg WITH ('connector.class'='JdbcSinkConnector',
               'connection.url'='{}', 'topics'='TOTALS', 'insert.mode'='upsert', 'pk.mode'='record_key',
               'auto.create'='true');",
            postgres.jdbc_url()
        ),
    )
    .unwrap();
    let mut first = eddy("first").args(["run", pipeline.to_str().unwrap()]).spawn().unwrap();
    let client = postgres.client().await;
    let counted = async || -> i64 {
        match client.query_one(r#"SELECT COALESCE(SUM("ORDERS"), 0)::BIGINT FROM "TOTALS""#, &[]).await {
            Ok(row) => row.get(0),
            Err(_) => 0,
        }
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while counted().await == 0 {
        assert!(tokio::time::Instant::now() < deadline, "nothing reached PostgreSQL:\n{}", stderr_of("first"));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let killed_at = counted().await;

    // Started again with nothing new to say: the catalog's queries and connectors resume.
    let empty = d.join("empty.sql");
    std::fs::write(&empty, "SHOW CONNECTORS;").unwrap();
    let second = eddy("second").args(["run", empty.to_str().unwrap()]).spawn().unwrap();
    let orders_in_topic = async || -> std::collections::BTreeMap<String, i64> {
        let log = EmbeddedLog::open(d).unwrap();
        let mut totals = std::collections::BTreeMap::new();
        for record in records(&log, "orders").await {
            let order: serde_json::Value = serde_json::from_slice(record.value.as_deref().unwrap()).unwrap();
            *totals.entry(order["itemid"].as_str().unwrap().to_owned()).or_insert(0) += 1;
        }
        totals
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let expected = orders_in_topic().await;
        let generated: i64 = expected.values().sum();
        let table: std::collections::BTreeMap<String, i64> = client
            .query(r#"SELECT "ITEMID", "ORDERS" FROM "TOTALS""#, &[])
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        if generated >= 3000 && table == expected {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "after the kill at {killed_at} orders counted: {} orders in the topic, the table counts {}\n\
             first run:\n{}\nsecond run:\n{}",
            generated,
            table.values().sum::<i64>(),
            stderr_of("first"),
            stderr_of("second")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = Command::new("kill").args(["-INT", &second.id().to_string()]).status().unwrap();
    assert!(status.success());
    let out = second.wait_with_output().unwrap();
    assert!(out.status.success(), "the second run stopped with {:?}", out.status);
}

/// `insert.mode=insert` appends every record by binary COPY, each type as PostgreSQL has it;
/// `auto.evolve` adds a column the table lacks; without it, the missing column fails the
/// connector with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jdbc_sink_inserts_by_copy_and_evolves_the_table() {
    use super::support::{Postgres, run, session};
    let postgres = Postgres::start();
    let client = postgres.client().await;
    // The table is there already, without the DAY column.
    client
        .batch_execute(
            r#"CREATE TABLE events ("ID" BIGINT, "NAME" TEXT, "OK" BOOLEAN, "PRICE" NUMERIC(8, 3), "AT" TIMESTAMP,
                                   "TAGS" JSONB, "RAW" BYTEA)"#,
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (log, mut s) = session(dir.path()).await;
    run(
        &mut s,
        "SET 'auto.offset.reset' = 'earliest';
         CREATE STREAM events (id BIGINT, name STRING, ok BOOLEAN, price DECIMAL(8, 3), at TIMESTAMP,
                               tags ARRAY<STRING>, raw BYTES, day DATE)
           WITH (KAFKA_TOPIC='events', VALUE_FORMAT='JSON', PARTITIONS=1);
         INSERT INTO events VALUES (1, 'a', true, 12.5, '2026-01-02T03:04:05.678', ARRAY['x', 'y'], TO_BYTES('AQI=', 'base64'), '2026-01-02');
         INSERT INTO events VALUES (1, 'a again', false, -0.001, '2026-01-03T00:00:00', ARRAY['z'], NULL, NULL);
         INSERT INTO events VALUES (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL);",
    )
    .await
    .unwrap();
    let sink = |name: &str, evolve: bool| {
        format!(
            "CREATE SINK CONNECTOR {name} WITH ('connector.class'='JdbcSinkConnector', 'connection.url'='{}',
               'topics'='events', 'auto.evolve'='{evolve}');",
            postgres.jdbc_url()
        )
    };
    // Without auto.evolve: refused by the table, with the reason.
    run(&mut s, &sink("strict", false)).await.unwrap();
    let described = described_once(&mut s, "strict", "FAILED").await;
    assert!(described.contains("lacks the columns DAY"), "{described}");
    run(&mut s, "DROP CONNECTOR strict;").await.unwrap();
    // A record no JSON reader takes: skipped, counted, in the processing log.
    let bad = eddy::log::NewRecord::new(0, None, Some(Bytes::from_static(b"{not json")));
    log.append("events", 0, &[bad]).await.unwrap();
    run(&mut s, &sink("evolving", true)).await.unwrap();
    rows_become(
        &client,
        r#"SELECT concat_ws('|', "ID", "NAME", "OK", "PRICE", "AT", "TAGS", encode("RAW", 'base64'), "DAY")
           FROM events ORDER BY "ID", "NAME" NULLS LAST"#,
        &[
            "1|a|t|12.500|2026-01-02 03:04:05.678|[\"x\", \"y\"]|AQI=|2026-01-02",
            "1|a again|f|-0.001|2026-01-03 00:00:00|[\"z\"]",
            "2",
        ],
    )
    .await;
    let logged: Vec<String> =
        records(log.as_ref(), "eddy_processing_log").await.iter().map(|r| super::support::text(&r.value)).collect();
    assert!(
        logged.iter().any(|e| e.contains(r#""QUERY_ID":"connector-EVOLVING""#) && e.contains("{not json")),
        "{logged:?}"
    );
    let described = run(&mut s, "DESCRIBE CONNECTOR evolving;").await.unwrap().concat();
    assert!(described.contains("Skipped records      : 1"), "{described}");
    s.shutdown().await;
}
