//! Connectors: bridges between topics and the outside world, as Kafka Connect's are to
//! ksqlDB. A source connector brings records in and Eddy appends them to a topic; a sink
//! connector is handed the records of topics and takes them out.
//!
//! The contract:
//! - A [`ConnectorClass`] makes a connector from its properties (`connector.class` picks the
//!   class by one of its names in [`Connectors`]); it refuses bad properties there, before
//!   anything runs.
//! - A [`SourceConnector`] is polled for records, one batch at a time, and may wait for
//!   them. Eddy appends each batch to the connector's topic (partitioned by key, as a
//!   producer does) and counts it. A connector that ends returns `None`.
//! - A [`SinkConnector`] is handed each batch read from its topics with `put`, then asked
//!   to `flush`: once `flush` returns, what it was handed is durable outside, and only then
//!   does Eddy commit the positions read (in `_eddy_offsets`, under the connector's name).
//!   A sink restarted goes on after its last commit: at-least-once, effectively once for a
//!   sink that upserts by key. Positions are committed per topic (`connector-<name>/<topic>`).
//! - A sink reads at least one topic; a source's topic is made if missing (one partition).
//! - Errors are [`ConnectorError`]s; a connector that fails stops, with its reason in its
//!   status. Each runs as one task, stopped cleanly by [`RunningConnector::stop`] (a sink
//!   flushes and commits first); queues between Eddy and a connector are bounded.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub mod datagen;
pub mod jdbc;
pub mod websocket;

use crate::engine::offsets::{OffsetStore, Positions};
use crate::log::follower::split_stream_id;
use crate::log::{Follower, Log, LogError, NewRecord, Producer, Record};

/// Why a connector cannot be made or stopped working.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConnectorError {
    pub message: String,
    /// The outside world is not there for now (a server down, a connection lost): the
    /// connector is retried, with a growing pause, instead of failing.
    pub transient: bool,
}

impl ConnectorError {
    pub fn new(message: impl Into<String>) -> ConnectorError {
        ConnectorError { message: message.into(), transient: false }
    }

    /// An error that may pass: see [`ConnectorError::transient`].
    pub fn transient(message: impl Into<String>) -> ConnectorError {
        ConnectorError { message: message.into(), transient: true }
    }
}

impl From<LogError> for ConnectorError {
    fn from(e: LogError) -> Self {
        ConnectorError::new(e.to_string())
    }
}

/// A connector's name and properties (`connector.class` among them), as `CREATE … CONNECTOR`
/// gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorConfig {
    pub name: String,
    pub properties: BTreeMap<String, String>,
}

impl ConnectorConfig {
    /// A property that must be there.
    pub fn required(&self, name: &str) -> Result<&str, ConnectorError> {
        self.properties
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| ConnectorError::new(format!("connector {} needs the property '{name}'", self.name)))
    }
}

/// Brings records into a topic (see the module's contract).
pub trait SourceConnector: Send + 'static {
    /// The topic its records go to.
    fn topic(&self) -> &str;

    /// The next records, waiting for some; `None` once it has ended. Cancel-safe: a stop
    /// drops the future, which must lose nothing it has not returned.
    fn poll(&mut self) -> BoxFuture<'_, Result<Option<Vec<NewRecord>>, ConnectorError>>;

    /// Where it has come to, once the records it returned are appended: committed then, and
    /// given back to [`SourceConnector::resume`] when it starts again. `None` for a source
    /// with no position (a feed that cannot be replayed).
    fn position(&self) -> Option<u64> {
        None
    }

    /// Goes on from `position`, committed before it stopped (called before the first poll).
    fn resume(&mut self, _position: u64) {}
}

/// Takes records of topics out (see the module's contract).
pub trait SinkConnector: Send + 'static {
    /// The topics it reads.
    fn topics(&self) -> Vec<String>;

    /// Takes a batch of records of `topic`.
    fn put<'a>(&'a mut self, topic: &'a str, records: &'a [Record]) -> BoxFuture<'a, Result<(), ConnectorError>>;

    /// Makes everything taken so far durable outside.
    fn flush(&mut self) -> BoxFuture<'_, Result<(), ConnectorError>>;

    /// Forgets what was put since the last flush, after a transient error: it is put again
    /// (from the last commit) once the connector is retried.
    fn reset(&mut self) {}

    /// The records of the last `put` it could not take, by offset, with why: they are
    /// skipped, counted, and written to the processing log.
    fn rejected(&mut self) -> Vec<(u64, String)> {
        Vec::new()
    }
}

/// A connector, made.
pub enum Connector {
    Source(Box<dyn SourceConnector>),
    Sink(Box<dyn SinkConnector>),
}

/// Makes connectors of one kind.
pub trait ConnectorClass: Send + Sync {
    /// The names `connector.class` may give it (Eddy's, then Kafka Connect's).
    fn names(&self) -> &[&'static str];

    fn create(&self, config: &ConnectorConfig) -> Result<Connector, ConnectorError>;

    /// Makes the connector knowing the catalog's streams and tables (a sink reads each of
    /// its topics through the stream or table over it). By default, as [`ConnectorClass::create`].
    fn create_with(
        &self,
        config: &ConnectorConfig,
        _sources: &[Arc<crate::catalog::Source>],
    ) -> Result<Connector, ConnectorError> {
        self.create(config)
    }
}

/// The connector classes Eddy knows, by name.
#[derive(Default, Clone)]
pub struct Connectors {
    classes: Vec<Arc<dyn ConnectorClass>>,
}

impl std::fmt::Debug for Connectors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.classes.iter().filter_map(|c| c.names().first())).finish()
    }
}

impl Connectors {
    /// Eddy's own connectors; the sources' values written in one of `formats`.
    pub fn builtin(formats: &crate::format::Formats) -> Connectors {
        let mut connectors = Connectors::default();
        connectors.register(Arc::new(datagen::Datagen::new(formats.clone())));
        connectors.register(Arc::new(websocket::WebSocket));
        connectors.register(Arc::new(jdbc::Jdbc));
        connectors
    }

    pub fn register(&mut self, class: Arc<dyn ConnectorClass>) {
        self.classes.push(class);
    }

    /// The connector `config` describes, made by the class its `connector.class` names.
    pub fn create(&self, config: &ConnectorConfig) -> Result<Connector, ConnectorError> {
        self.create_with(config, &[])
    }

    /// As [`Connectors::create`], with the catalog's streams and tables.
    pub fn create_with(
        &self,
        config: &ConnectorConfig,
        sources: &[Arc<crate::catalog::Source>],
    ) -> Result<Connector, ConnectorError> {
        let class = config.required("connector.class")?;
        let found = self.classes.iter().find(|c| c.names().iter().any(|n| n.eq_ignore_ascii_case(class)));
        match found {
            Some(found) => found.create_with(config, sources),
            None => {
                let known: Vec<&str> = self.classes.iter().filter_map(|c| c.names().first().copied()).collect();
                Err(ConnectorError::new(format!(
                    "Unknown connector class {class}; Eddy's connectors are: {}",
                    if known.is_empty() { "none yet".to_string() } else { known.join(", ") }
                )))
            }
        }
    }
}

/// How a connector is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectorState {
    Running,
    /// It ended (a source with nothing more) or was stopped.
    Stopped,
    Failed(String),
    /// A transient error stopped it for now (the reason): it is tried again after a pause
    /// that grows from [`RETRY_FIRST`] to [`RETRY_MOST`], and runs again once that works.
    Retrying(String),
}

/// The first pause before a connector that met a transient error is tried again.
pub const RETRY_FIRST: Duration = Duration::from_millis(100);
/// The longest pause between tries.
pub const RETRY_MOST: Duration = Duration::from_secs(10);

/// What a running connector's task shares with its owner.
#[derive(Debug)]
pub struct ConnectorStatus {
    state: Mutex<ConnectorState>,
    pub records_in: AtomicU64,
    pub records_out: AtomicU64,
    pub bytes: AtomicU64,
    /// Transient errors met (each followed by a retry).
    pub errors: AtomicU64,
    /// Records a sink could not take (in the processing log).
    pub skipped: AtomicU64,
}

impl ConnectorStatus {
    pub fn state(&self) -> ConnectorState {
        self.state.lock().map(|s| s.clone()).unwrap_or(ConnectorState::Failed("state poisoned".into()))
    }

    fn set(&self, state: ConnectorState) {
        if let Ok(mut s) = self.state.lock() {
            *s = state;
        }
    }
}

/// How often a sink commits while records flow.
const COMMIT_INTERVAL: Duration = Duration::from_secs(1);
/// How long a sink waits for records before it flushes what it has.
const SINK_IDLE: Duration = Duration::from_millis(200);

/// A connector's task, and the handles to watch and stop it.
pub struct RunningConnector {
    pub name: String,
    pub status: Arc<ConnectorStatus>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl RunningConnector {
    /// Starts `connector` over `log`; a sink goes on after its last commit (or from the
    /// earliest records).
    pub fn start(log: Arc<dyn Log>, name: &str, connector: Connector) -> RunningConnector {
        let status = Arc::new(ConnectorStatus {
            state: Mutex::new(ConnectorState::Running),
            records_in: AtomicU64::new(0),
            records_out: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
        });
        let (stop, stopped) = watch::channel(false);
        let task = {
            let (status, name) = (Arc::clone(&status), name.to_owned());
            tokio::spawn(async move {
                let run = match connector {
                    Connector::Source(source) => run_source(log, &name, source, &status, stopped).await,
                    Connector::Sink(sink) => run_sink(log, &name, sink, &status, stopped).await,
                };
                match run {
                    Ok(()) => status.set(ConnectorState::Stopped),
                    Err(e) => {
                        tracing::error!(connector = %name, error = %e, "connector failed");
                        status.set(ConnectorState::Failed(e.message));
                    }
                }
            })
        };
        RunningConnector { name: name.to_owned(), status, stop, task: Some(task) }
    }

    /// Stops the connector: a source after the batch it is writing, a sink once it has
    /// flushed and committed what it was handed.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Waits until the connector has stopped by itself (a source that ended, or a failure).
    pub async fn finished(&mut self) {
        if let Some(task) = self.task.as_mut() {
            let _ = task.await;
            self.task = None;
        }
    }
}

impl Drop for RunningConnector {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

async fn run_source(
    log: Arc<dyn Log>,
    name: &str,
    mut source: Box<dyn SourceConnector>,
    status: &ConnectorStatus,
    mut stop: watch::Receiver<bool>,
) -> Result<(), ConnectorError> {
    let offsets = OffsetStore::new(Arc::clone(&log));
    let position_id = format!("connector-{name}/source");
    if let Some(position) = offsets.load(&position_id).await?.and_then(|p| p.get(&0).copied()) {
        source.resume(position);
    }
    // A topic that is not there yet is made, as a broker makes one for a producer.
    if let Err(LogError::UnknownTopic(_)) = log.partition_count(source.topic()).await {
        match log.create_topic(source.topic(), &crate::log::TopicSpec::new(1)).await {
            Ok(()) | Err(LogError::TopicExists(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let mut producer = Producer::new(Arc::clone(&log), source.topic()).await?;
    let mut pause = RETRY_FIRST;
    let mut retrying = false;
    loop {
        let polled = tokio::select! {
            polled = source.poll() => polled,
            _ = stop.wait_for(|stop| *stop) => return Ok(()),
        };
        let polled = match polled {
            Ok(polled) => polled,
            Err(e) if e.transient => {
                tracing::warn!(connector = %name, error = %e, retry_in = ?pause, "connector retrying");
                status.set(ConnectorState::Retrying(e.message));
                status.errors.fetch_add(1, Ordering::Relaxed);
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = stop.wait_for(|stop| *stop) => return Ok(()),
                }
                pause = (pause * 2).min(RETRY_MOST);
                retrying = true;
                continue;
            }
            Err(e) => return Err(e),
        };
        if retrying {
            (pause, retrying) = (RETRY_FIRST, false);
            status.set(ConnectorState::Running);
        }
        let Some(records) = polled else { return Ok(()) };
        let count = records.len() as u64;
        let bytes = records.iter().map(crate::log::NewRecord::payload_bytes).sum::<usize>() as u64;
        for record in records {
            producer.send(record, None)?;
        }
        producer.flush().await?;
        if let Some(position) = source.position() {
            offsets.commit(&position_id, &Positions::from([(0, position)])).await?;
        }
        status.records_in.fetch_add(count, Ordering::Relaxed);
        status.records_out.fetch_add(count, Ordering::Relaxed);
        status.bytes.fetch_add(bytes, Ordering::Relaxed);
    }
}

async fn run_sink(
    log: Arc<dyn Log>,
    name: &str,
    mut sink: Box<dyn SinkConnector>,
    status: &ConnectorStatus,
    mut stop: watch::Receiver<bool>,
) -> Result<(), ConnectorError> {
    let topics = sink.topics();
    if topics.is_empty() {
        return Err(ConnectorError::new(format!("sink connector {name} reads no topic")));
    }
    let mut pause = RETRY_FIRST;
    let mut retrying = false;
    loop {
        let round = sink_round(&log, name, sink.as_mut(), &topics, status, &mut stop, &mut retrying).await;
        match round {
            Ok(()) => return Ok(()),
            Err(e) if e.transient => {
                // What was put since the last commit is put again, after the pause.
                tracing::warn!(connector = %name, error = %e, retry_in = ?pause, "sink connector retrying");
                status.set(ConnectorState::Retrying(e.message));
                status.errors.fetch_add(1, Ordering::Relaxed);
                sink.reset();
                retrying = true;
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = stop.wait_for(|stop| *stop) => return Ok(()),
                }
                pause = (pause * 2).min(RETRY_MOST);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Reads the sink's topics from its last commit, putting and committing, until stopped or
/// until an error (a transient one is retried by [`run_sink`] from the last commit again).
async fn sink_round(
    log: &Arc<dyn Log>,
    name: &str,
    sink: &mut dyn SinkConnector,
    topics: &[String],
    status: &ConnectorStatus,
    stop: &mut watch::Receiver<bool>,
    retrying: &mut bool,
) -> Result<(), ConnectorError> {
    let offsets = OffsetStore::new(Arc::clone(log));
    // Per topic: where to go on from, and what has been read.
    let mut read: Vec<Positions> = Vec::with_capacity(topics.len());
    let mut starts = Vec::with_capacity(topics.len());
    for topic in topics {
        let committed = offsets.load(&commit_id(name, topic)).await?.unwrap_or_default();
        let mut positions = Vec::new();
        for partition in 0..log.partition_count(topic).await? {
            let start = match committed.get(&partition) {
                Some(offset) => *offset,
                None => log.earliest_offset(topic, partition).await?,
            };
            positions.push((partition, start));
        }
        starts.push((topic.clone(), positions));
        read.push(committed);
    }
    let mut follower = Follower::of_topics(log.as_ref(), starts, false);
    let mut last_commit = tokio::time::Instant::now();
    let mut unflushed = false;
    loop {
        let next = tokio::select! {
            next = follower.next() => Some(next?),
            _ = tokio::time::sleep(SINK_IDLE), if unflushed => None,
            _ = stop.wait_for(|stop| *stop) => break,
        };
        let next = match next {
            Some(None) => break, // (it follows no partition)
            Some(Some(next)) => Some(next),
            None => None,
        };
        if let Some((stream, records)) = next {
            let (input, partition) = split_stream_id(stream);
            let (Some(topic), Some(last)) = (topics.get(input), records.last()) else { continue };
            sink.put(topic, &records).await?;
            let rejected = sink.rejected();
            if !rejected.is_empty() {
                reject(log, name, topic, partition, &records, rejected, status).await?;
            }
            if let Some(positions) = read.get_mut(input) {
                positions.insert(partition, last.offset + 1);
            }
            unflushed = true;
            let bytes = crate::log::record::payload_bytes(&records);
            status.records_in.fetch_add(records.len() as u64, Ordering::Relaxed);
            status.bytes.fetch_add(bytes, Ordering::Relaxed);
            if last_commit.elapsed() < COMMIT_INTERVAL {
                continue;
            }
        }
        if unflushed {
            flush_and_commit(sink, &offsets, name, topics, &read, status).await?;
            unflushed = false;
            last_commit = tokio::time::Instant::now();
            if std::mem::take(retrying) {
                status.set(ConnectorState::Running);
            }
        }
    }
    if unflushed {
        // Stopping: what does not flush now is read again at the next start.
        if let Err(e) = flush_and_commit(sink, &offsets, name, topics, &read, status).await {
            if !e.transient {
                return Err(e);
            }
            tracing::warn!(connector = %name, error = %e, "sink connector stopped without its last flush");
        }
    }
    Ok(())
}

/// Records a sink could not take: counted, and written to the processing log as the
/// connector's (`connector-<name>`).
async fn reject(
    log: &Arc<dyn Log>,
    name: &str,
    topic: &str,
    partition: u32,
    records: &[Record],
    rejected: Vec<(u64, String)>,
    status: &ConnectorStatus,
) -> Result<(), ConnectorError> {
    use crate::engine::processing_log::{Entry, ProcessingLog};
    status.skipped.fetch_add(rejected.len() as u64, Ordering::Relaxed);
    let writer = format!("connector-{name}");
    let entries: Vec<Entry> = rejected
        .into_iter()
        .filter_map(|(offset, why)| {
            let record = records.iter().find(|r| r.offset == offset)?;
            tracing::warn!(connector = %name, topic, partition, offset, reason = %why, "a sink skips a record");
            Some(Entry::for_record(&writer, topic, partition, record, why))
        })
        .collect();
    let processing_log = ProcessingLog::new(Arc::clone(log));
    processing_log.ensure_topic().await?;
    processing_log.write(&entries).await?;
    Ok(())
}

/// Where sink connector `name` commits its positions in `topic`.
pub fn commit_id(name: &str, topic: &str) -> String {
    format!("connector-{name}/{topic}")
}

/// The sink makes what it took durable; then, and only then, the positions are committed.
async fn flush_and_commit(
    sink: &mut dyn SinkConnector,
    offsets: &OffsetStore,
    name: &str,
    topics: &[String],
    read: &[Positions],
    status: &ConnectorStatus,
) -> Result<(), ConnectorError> {
    sink.flush().await?;
    for (topic, positions) in topics.iter().zip(read) {
        offsets.commit(&commit_id(name, topic), positions).await?;
    }
    let taken = status.records_in.load(Ordering::Relaxed);
    status.records_out.store(taken, Ordering::Relaxed);
    Ok(())
}
