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
                    config.required(name)?.parse().map_err(|_| ConnectorError(format!("{name} is not a number")))
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
    assert!(unknown.0.contains("Unknown connector class JdbcSinkConnector"), "{unknown}");
    let missing = connectors.create(&config("x", &[("connector.class", "Counter"), ("from", "1")])).err().unwrap();
    assert!(missing.0.contains("'to'"), "{missing}");
}
