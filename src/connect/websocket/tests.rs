use std::collections::BTreeMap;
use std::time::Duration;

use tokio::net::TcpListener;

use super::*;
use crate::connect::{ConnectorState, RunningConnector};
use crate::log::{EmbeddedLog, Log};

fn config(url: &str, extra: &[(&str, &str)]) -> ConnectorConfig {
    let mut properties: BTreeMap<String, String> =
        [("url", url), ("kafka.topic", "feed")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    properties.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    ConnectorConfig { name: "WS".into(), properties }
}

/// Waits until `topic` holds `count` records.
async fn filled(log: &dyn Log, count: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while log.latest_offset("feed", 0).await.unwrap_or(0) < count {
        assert!(tokio::time::Instant::now() < deadline, "the feed has not {count} records");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn messages_become_records_keyed_by_a_field_and_a_lost_connection_is_made_again() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/feed", listener.local_addr().unwrap());
    let (sent_tx, mut sent_rx) = tokio::sync::mpsc::channel::<()>(1);
    let server = tokio::spawn(async move {
        // The first connection: four messages, then the server goes away.
        let (tcp, _) = listener.accept().await.unwrap();
        let mut socket = tokio_tungstenite::accept_async(tcp).await.unwrap();
        for message in [
            Message::text(r#"{"sensor": "a", "t": 1}"#),
            Message::binary(vec![1u8, 2, 3]),
            Message::text(r#"{"sensor": 7, "t": 2}"#),
            Message::text("not json"),
        ] {
            socket.send(message).await.unwrap();
        }
        socket.close(None).await.unwrap();
        sent_tx.send(()).await.unwrap();
        // The connector comes back: one more.
        let (tcp, _) = listener.accept().await.unwrap();
        let mut socket = tokio_tungstenite::accept_async(tcp).await.unwrap();
        socket.send(Message::text(r#"{"sensor": "b", "t": 3}"#)).await.unwrap();
        // Held open until the test ends.
        let _ = socket.next().await;
    });
    let dir = tempfile::tempdir().unwrap();
    let log: Arc<dyn Log> = Arc::new(EmbeddedLog::open(dir.path()).unwrap());
    let connector = WebSocketConnector::new(&config(&url, &[("key.field", "sensor")])).unwrap();
    let dropped = Arc::clone(&connector.dropped);
    let running = RunningConnector::start(Arc::clone(&log), "WS", Connector::Source(Box::new(connector)));
    sent_rx.recv().await.unwrap();
    filled(log.as_ref(), 4).await;
    let records = log.read("feed", 0, 0, 1 << 20).await.unwrap().records;
    let taken: Vec<(Option<&[u8]>, &[u8])> =
        records.iter().map(|r| (r.key.as_deref(), r.value.as_deref().unwrap())).collect();
    assert_eq!(
        taken,
        [
            (Some(&b"a"[..]), &br#"{"sensor": "a", "t": 1}"#[..]),
            (Some(&b"7"[..]), &br#"{"sensor": 7, "t": 2}"#[..]),
            (None, &b"not json"[..]),
            (Some(&b"b"[..]), &br#"{"sensor": "b", "t": 3}"#[..]),
        ]
    );
    assert_eq!(dropped.load(Ordering::Relaxed), 1, "the binary message");
    assert_eq!(running.status.state(), ConnectorState::Running);
    running.stop().await;
    server.abort();
}

#[tokio::test]
async fn a_server_that_is_not_there_is_retried_with_its_reason() {
    // A port nothing listens on.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    drop(listener);
    let dir = tempfile::tempdir().unwrap();
    let log: Arc<dyn Log> = Arc::new(EmbeddedLog::open(dir.path()).unwrap());
    let connector = WebSocketConnector::new(&config(&url, &[])).unwrap();
    let running = RunningConnector::start(Arc::clone(&log), "WS", Connector::Source(Box::new(connector)));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let ConnectorState::Retrying(reason) = running.status.state() {
            assert!(reason.contains("cannot connect to ws://127.0.0.1"), "{reason}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not retrying: {:?}", running.status.state());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    running.stop().await;
}

#[test]
fn its_options_are_checked() {
    let refused = |config: ConnectorConfig| WebSocketConnector::new(&config).err().unwrap().message;
    assert!(refused(config("http://example.com", &[])).contains("ws://"));
    assert!(refused(config("not a url", &[])).contains("no URL"));
    let mut no_topic = config("ws://example.com", &[]);
    no_topic.properties.remove("kafka.topic");
    assert!(refused(no_topic).contains("kafka.topic"));
    let mut no_url = config("ws://example.com", &[]);
    no_url.properties.remove("url");
    assert!(refused(no_url).contains("'url'"));
}
