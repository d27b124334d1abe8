//! A running query, persistent or push: a source task, an operator task and a sink task,
//! joined by bounded channels (see [`super::operator`] for what flows). A persistent query's
//! sink is a topic; a push query's is its client ([`Sink::Client`]), so both read, order,
//! process and report bad records the same way.
//!
//! - The source task follows the input topic from the committed offsets (or the start
//!   `auto.offset.reset` picks), decodes each fetch into one batch of rows, and follows it
//!   with a progress marker. Records that do not decode are skipped and counted.
//! - The operator task runs the operator chain over each batch.
//! - The sink task encodes and appends what arrives, draining whatever is queued before each
//!   flush (batches grow under load, stay small when idle); after a flush it publishes how
//!   far the input has been written, and commits that at most once a second and when the
//!   query stops.
//!
//! [`RunningQuery::stop`] stops the source, lets the rest drain, flushes and commits.
//! Dropping a `RunningQuery` without stopping it aborts its tasks.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use datafusion::arrow::array::RecordBatch;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;

use super::align::Aligned;
use super::checkpoint::{Checkpoint, CheckpointStore, Fences, ReadCommitted};
use super::offsets::{OffsetStore, Positions};
use super::operator::{Message, Operator, TimedBatch, run_chain};
use super::plan::RowError;
use super::processing_log::{Entry, Kind, ProcessingLog, push_merged};
use super::sink::SinkEncoder;
use super::source::{decode, row_schema};
use crate::catalog::Source;
use crate::log::{Follower, Log, LogError, Producer, Record};

/// Barriers are spaced so that checkpoints take at most about 1/20 of a query's time.
const CHECKPOINT_SHARE: u32 = 20;

/// Messages queued between two tasks of a query.
const CHANNEL_CAPACITY: usize = 16;
/// A source batch is cut at this many records…
const BATCH_RECORDS: usize = 8192;
/// (…or `QuerySpec::linger` after its first record arrived.)
/// Commits are at most this frequent while a query is busy.
const COMMIT_INTERVAL: Duration = Duration::from_secs(1);

/// What a query needs to run.
pub struct QuerySpec {
    pub id: String,
    pub input: Arc<Source>,
    /// A join's other inputs, in join order: their rows reach the operators tagged with
    /// their position (1, 2, …; see [`TimedBatch::input`]).
    pub joined: Vec<Arc<Source>>,
    pub operators: Vec<Box<dyn Operator>>,
    pub sink: Sink,
    /// Where to start without a commit: the earliest offsets, or the log ends.
    pub from_earliest: bool,
    /// How long a source batch waits for more records before it is cut.
    pub linger: Duration,
    /// The operators keep state (an aggregation): after a restart the input is read again
    /// from where the query first started, the records before the commit only to rebuild
    /// that state (nothing is written twice).
    pub rebuild_state: bool,
    /// The sink's key is the input's, unchanged (no PARTITION BY or GROUP BY): a record
    /// without a key stays without one.
    pub keeps_key: bool,
    /// Read the input's partitions in event-time order (see [`super::align`]) even with a
    /// single input, for operators whose stream time decides what is late.
    pub in_time_order: bool,
    /// Checkpoints, where the log has a place for them (otherwise the legacy way: commits
    /// in `_eddy_offsets`, and state rebuilt by reading the input again).
    pub checkpoints: Option<Checkpointing>,
    /// The read-committed views of the session's topics (see [`Fences`]).
    pub fences: Arc<Fences>,
    /// How often barriers flow: checkpoints, and checks of the state limit.
    pub barrier_interval: Duration,
    /// The operators' state may hold at most this many bytes; beyond, the query stops with
    /// an error.
    pub state_limit: Option<u64>,
    /// Queries writing the topics some inputs read (a join's repartition topics, see
    /// [`super::repartition`]), by the input they feed: started already, owned by this query
    /// from now on. That input is read in event-time order with the others only as far as
    /// its feeder has caught up (else a backlog read by the feeder would reach the join late).
    pub feeders: Vec<(usize, RunningQuery)>,
    /// Each input row goes through the operators alone, so an aggregation emits every
    /// update (a push query with ksqlDB's record cache off, `cache.max.bytes.buffering=0`).
    pub every_update: bool,
}

/// Where a query's output goes.
pub enum Sink {
    /// A topic, in the formats of the source over it (a persistent query).
    Topic(Arc<Source>),
    /// The client of a push query, batch by batch as the operators produce them. Nothing is
    /// committed or checkpointed: a push query starts afresh each time.
    Client(mpsc::Sender<TimedBatch>),
}

/// How a query checkpoints.
pub struct Checkpointing {
    pub store: CheckpointStore,
    /// This query is the only writer of its output on a log that can cut it back: after a
    /// crash its output is cut back to the checkpoint (exactly once), and readers see it
    /// only up to its last checkpoint. Otherwise its output is at-least-once.
    pub exactly_once: bool,
    /// The latest checkpoint (none at the first start), its output already cut back to it:
    /// the session does that for all its queries before it starts any (see [`cut_back`]).
    pub latest: Option<Checkpoint>,
}

/// How a query is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryStatus {
    Running,
    Stopped,
    /// It failed and stopped; why.
    Error(String),
}

impl QueryStatus {
    pub fn name(&self) -> &'static str {
        match self {
            QueryStatus::Running => "RUNNING",
            QueryStatus::Stopped => "STOPPED",
            QueryStatus::Error(_) => "ERROR",
        }
    }
}

/// What the tasks of a query share with its owner.
pub struct QueryState {
    status: Mutex<QueryStatus>,
    /// How far the input has been read and its output written, per partition.
    written: Mutex<Positions>,
    /// False once the query was dropped without being stopped (see
    /// [`CheckpointStore::write_guarded`]).
    alive: Mutex<bool>,
    /// How far the input is covered by a checkpoint on disk (`None`: it takes none).
    checkpointed: Mutex<Option<Positions>>,
    pub records_read: AtomicU64,
    pub records_written: AtomicU64,
    /// Records skipped: they did not decode, had no timestamp, or could not be written.
    pub records_skipped: AtomicU64,
    /// Rows an expression failed on (kept, with a null column).
    pub expression_errors: AtomicU64,
    /// Key and value bytes of the records read and written.
    pub bytes_read: AtomicU64,
    pub bytes_written: AtomicU64,
    /// From reading records to having written what they produced.
    pub latency: LatencyHistogram,
    /// The operators' state, in bytes, at the last barrier.
    pub state_bytes: AtomicU64,
    /// Checkpoints written since the query started here.
    pub checkpoints: AtomicU64,
    /// What the last checkpoint cost, in microseconds: taking the operators' snapshots, and
    /// writing the file. Barriers are spaced to keep that a small share of the time.
    snapshot_micros: AtomicU64,
    write_micros: AtomicU64,
    /// Woken whenever `written` moves or the status changes.
    pub progressed: Notify,
}

impl QueryState {
    pub fn status(&self) -> QueryStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or(QueryStatus::Error("state poisoned".into()))
    }

    pub fn written(&self) -> Positions {
        self.written.lock().map(|w| w.clone()).unwrap_or_default()
    }

    fn set_status(&self, status: QueryStatus) {
        if let Ok(mut s) = self.status.lock() {
            // The first error is the one to report.
            if !matches!(*s, QueryStatus::Error(_)) {
                *s = status;
            }
        }
        self.progressed.notify_waiters();
    }

    fn fail(&self, id: &str, stage: &str, error: impl std::fmt::Display) {
        tracing::error!(query = id, stage, %error, "query failed");
        self.set_status(QueryStatus::Error(format!("{stage}: {error}")));
    }
}

/// Key and value bytes of records.
fn record_bytes(records: &[crate::log::Record]) -> u64 {
    records
        .iter()
        .map(|r| r.key.as_ref().map_or(0, |k| k.len()) + r.value.as_ref().map_or(0, |v| v.len()))
        .sum::<usize>() as u64
}

/// A histogram of durations with fixed buckets (Prometheus' cumulative form is computed when
/// read), updated without locks.
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    /// Observations at most each bound of [`LATENCY_BUCKETS_SECONDS`] (not cumulative), and
    /// above the last.
    counts: [AtomicU64; LATENCY_BUCKETS_SECONDS.len() + 1],
    sum_micros: AtomicU64,
}

/// Upper bounds of the latency buckets, in seconds.
pub const LATENCY_BUCKETS_SECONDS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

impl LatencyHistogram {
    pub fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let bucket =
            LATENCY_BUCKETS_SECONDS.iter().position(|b| seconds <= *b).unwrap_or(LATENCY_BUCKETS_SECONDS.len());
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Cumulative counts per bound (the last is the total), and the sum in seconds.
    pub fn cumulative(&self) -> (Vec<u64>, f64) {
        let mut total = 0;
        let counts = self
            .counts
            .iter()
            .map(|c| {
                total += c.load(Ordering::Relaxed);
                total
            })
            .collect();
        (counts, self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6)
    }
}

/// A query's tasks and the handles to stop it and watch it.
pub struct RunningQuery {
    pub id: String,
    /// The queries feeding its inputs (see [`QuerySpec::feeders`]).
    feeders: Vec<RunningQuery>,
    /// This process's claim on running the query, released when it stops.
    _claim: crate::log::Claim,
    pub input: Arc<Source>,
    /// A join's other inputs.
    pub joined: Vec<Arc<Source>>,
    /// The source over the topic it writes (none for a push query's client).
    pub sink: Option<Arc<Source>>,
    pub state: Arc<QueryState>,
    /// The session's fences (see [`Fences`]).
    fences: Arc<Fences>,
    /// Stops its tasks (shared with the query it feeds, which stops it when it fails).
    stop: Arc<watch::Sender<bool>>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningQuery {
    /// Starts the query's tasks on the current tokio runtime, holding `claim` while it runs.
    ///
    /// With checkpoints, the query goes on from its latest one: its operators take back
    /// their state, its inputs are read from the checkpoint's positions, and (exactly once)
    /// output written after the checkpoint is cut off first. At its very first start it
    /// takes checkpoint 0 (nothing read, nothing written) before anything runs.
    pub async fn start(
        log: Arc<dyn Log>,
        mut spec: QuerySpec,
        claim: crate::log::Claim,
    ) -> Result<RunningQuery, LogError> {
        let offsets = OffsetStore::new(Arc::clone(&log));
        // Every input's partitions, named by `stream_id(input, partition)`: a single input's
        // are its partition numbers, as they always were.
        let inputs: Vec<Arc<Source>> =
            std::iter::once(Arc::clone(&spec.input)).chain(spec.joined.iter().cloned()).collect();
        let mut start: Vec<(u32, u64)> = Vec::new();
        for (i, input) in inputs.iter().enumerate() {
            // A topic a feeder writes is this query's alone: all of it is for this query
            // (what the feeder wrote before this started too).
            let earliest = spec.from_earliest || spec.feeders.iter().any(|(fed, _)| *fed == i);
            for (partition, offset) in crate::log::start_positions(log.as_ref(), &input.topic, earliest).await? {
                start.push((crate::log::follower::stream_id(i, partition), offset));
            }
        }
        let sink_source = match &spec.sink {
            Sink::Topic(source) => Some(Arc::clone(source)),
            Sink::Client(_) => None,
        };
        let identity = QueryIdentity {
            id: &spec.id,
            sink_topic: sink_source.as_ref().map_or("", |s| s.topic.as_str()),
            operators: spec.operators.len(),
            rebuild_state: spec.rebuild_state,
        };
        // A data directory from before checkpoints: its queries go on from their commits, the
        // old way (a checkpoint taken while they replay would not match their output).
        let legacy = match &spec.checkpoints {
            Some(checkpoints) => checkpoints.store.is_empty()? && offsets.load(&spec.id).await?.is_some(),
            None => true,
        };
        let mut checkpoints = if legacy { None } else { spec.checkpoints.take() };
        let (positions, replay_until, restored, next_epoch, sink_ends) = match (&mut checkpoints, &spec.sink) {
            (Some(checkpoints), _) => {
                let resumed = resume_from_checkpoint(log.as_ref(), &identity, checkpoints, &start).await?;
                (resumed.positions, Positions::new(), resumed.restored, resumed.next_epoch, resumed.sink)
            }
            (None, Sink::Client(_)) => (start, Positions::new(), None, 1, Positions::new()),
            (None, Sink::Topic(_)) => {
                let (positions, replay_until) = resume_from_commit(&offsets, &identity, &start).await?;
                (positions, replay_until, None, 1, Positions::new())
            }
        };
        let state = Arc::new(QueryState {
            status: Mutex::new(QueryStatus::Running),
            written: Mutex::new(positions.iter().copied().collect()),
            alive: Mutex::new(true),
            checkpointed: Mutex::new(checkpoints.as_ref().map(|_| positions.iter().copied().collect())),
            records_read: AtomicU64::new(0),
            records_written: AtomicU64::new(0),
            records_skipped: AtomicU64::new(0),
            expression_errors: AtomicU64::new(0),
            bytes_read: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
            latency: LatencyHistogram::default(),
            state_bytes: AtomicU64::new(0),
            checkpoints: AtomicU64::new(0),
            snapshot_micros: AtomicU64::new(0),
            write_micros: AtomicU64::new(0),
            progressed: Notify::new(),
        });
        let (stop, stop_rx) = watch::channel(false);
        let stop = Arc::new(stop);
        let (source_tx, operator_rx) = mpsc::channel(CHANNEL_CAPACITY);
        let (operator_tx, sink_rx) = mpsc::channel(CHANNEL_CAPACITY);
        // Inputs are read through the fences of queries writing them exactly once.
        let reader: Arc<dyn Log> = Arc::new(ReadCommitted { log: Arc::clone(&log), fences: Arc::clone(&spec.fences) });
        let barriers = Barriers { interval: spec.barrier_interval, next_epoch, stateless: !spec.rebuild_state };
        let in_time_order = spec.in_time_order;
        let processing_log = ProcessingLog::new(Arc::clone(&log));
        let reporter = || Reporter {
            query_id: spec.id.clone(),
            input_topic: spec.input.topic.clone(),
            log: processing_log.clone(),
            pending: Mutex::new(Vec::new()),
        };
        let (source_reporter, operator_reporter) = (reporter(), reporter());
        let feeders = std::mem::take(&mut spec.feeders);
        let feeding: Vec<(usize, Watch)> = feeders.iter().map(|(input, query)| (*input, query.watch())).collect();

        let source = {
            let (state, id) = (Arc::clone(&state), spec.id.clone());
            let linger = spec.linger;
            tokio::spawn(async move {
                let read = read_source(
                    reader.as_ref(),
                    &inputs,
                    positions,
                    replay_until,
                    linger,
                    barriers,
                    in_time_order,
                    &feeding,
                    &source_reporter,
                    source_tx,
                    stop_rx,
                    &state,
                );
                if let Err(e) = read.await {
                    state.fail(&id, "source", e);
                }
            })
        };
        let operators = {
            let (state, id, chain) = (Arc::clone(&state), spec.id.clone(), spec.operators);
            let snapshots = checkpoints.is_some();
            let (limit, every_update) = (spec.state_limit, spec.every_update);
            tokio::spawn(async move {
                let task = OperatorTask {
                    chain,
                    restored,
                    snapshots,
                    state_limit: limit,
                    every_update,
                    reporter: operator_reporter,
                };
                let run = run_operators(task, operator_rx, operator_tx, &state);
                if let Err(e) = run.await {
                    state.fail(&id, "operator", e);
                }
            })
        };
        let sink = match spec.sink {
            Sink::Client(rows) => {
                let state = Arc::clone(&state);
                tokio::spawn(async move {
                    write_client(rows, sink_rx, &state).await;
                    state.set_status(QueryStatus::Stopped);
                })
            }
            Sink::Topic(sink) => {
                let producer = Producer::new(Arc::clone(&log), &sink.topic).await?;
                let (state, id, encoder) =
                    (Arc::clone(&state), spec.id.clone(), SinkEncoder::new(Arc::clone(&sink), spec.keeps_key));
                let checkpointer = checkpoints.map(|c| Checkpointer {
                    store: c.store,
                    exactly_once: c.exactly_once,
                    fence: c
                        .exactly_once
                        .then(|| FenceKeeper::new(Arc::clone(&spec.fences), &sink.topic, &spec.id, sink_ends)),
                    log: Arc::clone(&log),
                    topic: sink.topic.clone(),
                    query: Arc::clone(&state),
                    writing: None,
                });
                let fences = Arc::clone(&spec.fences);
                tokio::spawn(async move {
                    let sink = SinkParts { encoder, producer, offsets, checkpointer, processing_log };
                    match write_sink(&id, sink, sink_rx, &state).await {
                        Ok(true) => state.set_status(QueryStatus::Stopped),
                        // Output past the last checkpoint stays fenced until the query runs again.
                        Ok(false) => {
                            fences.freeze(&id);
                            state.set_status(QueryStatus::Stopped);
                        }
                        Err(e) => {
                            fences.freeze(&id);
                            state.fail(&id, "sink", e);
                        }
                    }
                })
            }
        };
        let feeders: Vec<RunningQuery> = feeders.into_iter().map(|(_, query)| query).collect();
        let mut tasks = vec![source, operators, sink];
        if !feeders.is_empty() {
            // A failed query stops its feeders: what they write is read by nothing else.
            let (state, stops) = (Arc::clone(&state), feeders.iter().map(|f| Arc::clone(&f.stop)).collect::<Vec<_>>());
            tasks.push(tokio::spawn(async move {
                until(&[&state], || state.status() != QueryStatus::Running).await;
                if matches!(state.status(), QueryStatus::Error(_)) {
                    for stop in stops {
                        let _ = stop.send(true);
                    }
                }
            }));
        }
        Ok(RunningQuery {
            id: spec.id,
            feeders,
            _claim: claim,
            input: spec.input,
            joined: spec.joined,
            sink: sink_source,
            state,
            fences: spec.fences,
            stop,
            tasks,
        })
    }

    /// Stops reading, lets what was read drain to the sink, flushes and commits (then the
    /// queries feeding it do the same).
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        // (The watch over its feeders, after the three tasks, ends when the sink has stopped.)
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
        for feeder in std::mem::take(&mut self.feeders) {
            Box::pin(feeder.stop()).await;
        }
    }

    /// True when a checkpoint on disk covers everything the query (and each query feeding it)
    /// has read (or it takes none, or it has stopped).
    pub fn checkpointed(&self) -> bool {
        self.watch().checkpointed() && self.feeders.iter().all(RunningQuery::checkpointed)
    }

    /// True when the query (and each query feeding it) has written everything its input
    /// holds now (or has failed, and will not move again).
    pub async fn caught_up(&self, log: &dyn Log) -> Result<bool, LogError> {
        for feeder in &self.feeders {
            if !Box::pin(feeder.caught_up(log)).await? {
                return Ok(false);
            }
        }
        self.watch().caught_up(log).await
    }

    /// The queries feeding this one's inputs (see [`QuerySpec::feeders`]).
    pub fn feeders(&self) -> &[RunningQuery] {
        &self.feeders
    }

    fn watch(&self) -> Watch {
        let inputs = std::iter::once(&self.input).chain(&self.joined).cloned().collect();
        Watch { state: Arc::clone(&self.state), inputs, fences: Arc::clone(&self.fences) }
    }
}

/// What tells how far a query is, for the session and for the queries it feeds.
#[derive(Clone)]
struct Watch {
    state: Arc<QueryState>,
    inputs: Vec<Arc<Source>>,
    fences: Arc<Fences>,
}

impl Watch {
    /// True when a checkpoint on disk covers everything the query has read (or it takes
    /// none, or it has stopped).
    fn checkpointed(&self) -> bool {
        if !matches!(self.state.status(), QueryStatus::Running) {
            return true;
        }
        let checkpointed = self.state.checkpointed.lock().map(|c| c.clone()).unwrap_or_default();
        checkpointed.is_none_or(|c| c == self.state.written())
    }

    /// True when the query has written everything its input holds now, in the partitions
    /// it reads (or has failed, and will not move again).
    async fn caught_up(&self, log: &dyn Log) -> Result<bool, LogError> {
        if matches!(self.state.status(), QueryStatus::Error(_) | QueryStatus::Stopped) {
            return Ok(true);
        }
        for (id, written) in self.state.written() {
            let (i, partition) = crate::log::follower::split_stream_id(id);
            let Some(input) = self.inputs.get(i) else { continue };
            let latest = log.latest_offset(&input.topic, partition).await?;
            if written < self.fences.caught_up_at(&input.topic, partition, latest) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// True when everything the query has written is there to read: it is caught up and
    /// checkpointed (or it is not running). An error when it failed.
    async fn settled(&self, log: &dyn Log) -> Result<bool, TaskError> {
        if let QueryStatus::Error(reason) = self.state.status() {
            return Err(TaskError::Feeder(reason));
        }
        // (The cheap look first: a busy feeder is mostly not checkpointed.)
        Ok(self.checkpointed() && self.caught_up(log).await?)
    }
}

impl Drop for RunningQuery {
    fn drop(&mut self) {
        // As if the process had died here: no checkpoint is published after this.
        *self.state.alive.lock().unwrap_or_else(|p| p.into_inner()) = false;
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Where a checkpointing query goes on from: its latest checkpoint's positions (partitions
/// added since from `start`), its operators' states (taken out of `checkpoints.latest`) and
/// the next epoch; its output has been cut back to the checkpoint already. Without a
/// checkpoint (the first start) it takes checkpoint 0 at `start`.
async fn resume_from_checkpoint(
    log: &dyn Log,
    query: &QueryIdentity<'_>,
    checkpoints: &mut Checkpointing,
    start: &[(u32, u64)],
) -> Result<Resumed, LogError> {
    let Some(checkpoint) = checkpoints.latest.take() else {
        let sink = output_ends(log, query.sink_topic).await?;
        let first = Checkpoint {
            epoch: 0,
            sources: start.iter().copied().collect(),
            sink: sink.clone(),
            operators: vec![None; query.operators],
            exactly_once: checkpoints.exactly_once,
        };
        let store = checkpoints.store.clone();
        tokio::task::spawn_blocking(move || store.write(&first)).await.map_err(join_error)??;
        return Ok(Resumed { positions: start.to_vec(), restored: None, next_epoch: 1, sink });
    };
    let positions = start.iter().map(|&(p, o)| (p, checkpoint.sources.get(&p).copied().unwrap_or(o))).collect();
    tracing::info!(query = query.id, epoch = checkpoint.epoch, "resuming from a checkpoint");
    // Output past the checkpoint is cut off, unless others write the topic too.
    let sink = output_ends(log, query.sink_topic).await?;
    Ok(Resumed { positions, restored: Some(checkpoint.operators), next_epoch: checkpoint.epoch + 1, sink })
}

/// Where a checkpointing query goes on from.
struct Resumed {
    positions: Vec<(u32, u64)>,
    restored: Option<Vec<Option<Vec<RecordBatch>>>>,
    next_epoch: u64,
    /// Where its output ends as it starts.
    sink: Positions,
}

/// Cuts a query's output back to its latest checkpoint, where both the checkpoint and the
/// query now are exactly once (its output's only writer): what lies beyond was written
/// after the checkpoint, by it, and will be written again. Returns that checkpoint (for
/// [`Checkpointing::latest`]). The session does this for every query before it starts any,
/// so that no query reads output that is about to be cut off.
pub async fn cut_back(
    log: &dyn Log,
    store: &CheckpointStore,
    topic: &str,
    exactly_once: bool,
) -> Result<Option<Checkpoint>, LogError> {
    let store = store.clone();
    let Some(checkpoint) = tokio::task::spawn_blocking(move || store.latest()).await.map_err(join_error)?? else {
        return Ok(None);
    };
    if !(exactly_once && checkpoint.exactly_once) {
        return Ok(Some(checkpoint));
    }
    let ends = output_ends(log, topic).await?;
    for (&partition, &end) in &checkpoint.sink {
        let now = ends.get(&partition).copied().unwrap_or(0);
        if now > end {
            tracing::info!(
                topic,
                partition,
                records = now - end,
                "cutting off output written after the last checkpoint"
            );
            log.truncate(topic, partition, end).await?;
        } else if now < end {
            tracing::warn!(topic, partition, now, end, "the output is shorter than at the checkpoint");
        }
    }
    Ok(Some(checkpoint))
}

/// Where a query without checkpoints goes on from: its last commit (partitions added since
/// from `start`); a stateful one reads again from where it first started, replaying up to
/// the commit to rebuild its state.
async fn resume_from_commit(
    offsets: &OffsetStore,
    query: &QueryIdentity<'_>,
    start: &[(u32, u64)],
) -> Result<(Vec<(u32, u64)>, Positions), LogError> {
    let committed = offsets.load(query.id).await?;
    // Where the query first started: recorded at its first start, for rebuilding state.
    let origin_id = format!("{}/origin", query.id);
    let origin = match offsets.load(&origin_id).await? {
        Some(origin) => origin,
        None => {
            let origin: Positions = start.iter().copied().collect();
            offsets.commit(&origin_id, &origin).await?;
            origin
        }
    };
    let replay_until: Positions = match (&committed, query.rebuild_state) {
        (Some(committed), true) => committed.clone(),
        _ => Positions::new(),
    };
    let positions = start
        .iter()
        .map(|&(p, o)| {
            let resume = committed.as_ref().and_then(|c| c.get(&p).copied()).unwrap_or(o);
            if replay_until.contains_key(&p) {
                (p, origin.get(&p).copied().unwrap_or(o).min(resume))
            } else {
                (p, resume)
            }
        })
        .collect();
    Ok((positions, replay_until))
}

/// What resuming needs to know of a query.
struct QueryIdentity<'a> {
    id: &'a str,
    sink_topic: &'a str,
    /// How many operators it has.
    operators: usize,
    rebuild_state: bool,
}

/// Where each partition of `topic` ends.
async fn output_ends(log: &dyn Log, topic: &str) -> Result<Positions, LogError> {
    let mut ends = Positions::new();
    for partition in 0..log.partition_count(topic).await? {
        ends.insert(partition, log.latest_offset(topic, partition).await?);
    }
    Ok(ends)
}

fn join_error(e: tokio::task::JoinError) -> LogError {
    LogError::Io { operation: "checkpoint", path: Default::default(), source: std::io::Error::other(e) }
}

/// When the source sends barriers.
struct Barriers {
    interval: Duration,
    next_epoch: u64,
    /// The operators keep no state: a checkpoint is a small file's write and `fsync`.
    stateless: bool,
}

/// Why a task of a query stopped.
#[derive(Debug, thiserror::Error)]
enum TaskError {
    #[error("{0}")]
    Log(#[from] LogError),
    #[error("{0}")]
    Format(#[from] crate::format::FormatError),
    #[error("{0}")]
    Plan(#[from] super::plan::PlanError),
    /// A query feeding this one failed.
    #[error("its repartitioning failed: {0}")]
    Feeder(String),
    /// The operators' state outgrew `eddy.query.state.max.bytes`.
    #[error(
        "the query's state holds {bytes} bytes, more than its limit of {limit} \
         (eddy.query.state.max.bytes); raise the limit, or bound the state (a window, a \
         RETENTION, or 'eddy.state.ttl.ms')"
    )]
    StateLimit { bytes: u64, limit: u64 },
}

/// Reads the input and sends it on as batches. A batch is cut when it holds
/// [`BATCH_RECORDS`] records, or when the linger has passed since its first record arrived
/// (with no linger, when no more records are there at once): columnar batches under load,
/// a few milliseconds of latency at most when records trickle.
#[allow(clippy::too_many_arguments)]
async fn read_source(
    log: &dyn Log,
    inputs: &[Arc<Source>],
    positions: Vec<(u32, u64)>,
    replay_until: Positions,
    linger: Duration,
    barriers: Barriers,
    in_time_order: bool,
    feeders: &[(usize, Watch)],
    reporter: &Reporter,
    out: mpsc::Sender<Message>,
    mut stop: watch::Receiver<bool>,
    state: &QueryState,
) -> Result<(), TaskError> {
    use crate::log::follower::split_stream_id;
    use futures::StreamExt;
    let schemas: Vec<_> = inputs.iter().map(|i| row_schema(i)).collect();
    let topics = inputs
        .iter()
        .enumerate()
        .map(|(i, input)| {
            let mine = positions.iter().filter(|(id, _)| split_stream_id(*id).0 == i);
            (input.topic.clone(), mine.map(|(id, offset)| (split_stream_id(*id).1, *offset)).collect())
        })
        .collect();
    let mut follower = Follower::of_topics(log, topics, false);
    let mut barrier = BarrierClock::new(barriers);
    if inputs.len() > 1 || in_time_order {
        let aligned = if inputs.len() == 1 { Aligned::interleaving_partitions() } else { Aligned::default() };
        let reading = Reading { log, inputs, schemas: &schemas, replay_until: &replay_until, feeders };
        return read_aligned(aligned, follower, reading, &mut barrier, reporter, &out, &mut stop, state).await;
    }
    // Rounds read and being decoded, oldest first: the next round is read while the last
    // is decoded (on the blocking pool), and each is handed on when its turn comes.
    let mut in_flight = futures::stream::FuturesOrdered::new();
    let mut ended = false;
    loop {
        tokio::select! {
            biased;
            () = stopped(&mut stop) => {
                barrier.send_final(&out).await;
                return Ok(());
            }
            Some(round) = in_flight.next(), if !in_flight.is_empty() => {
                let (decoded, progress, read_at) = round?;
                let sent = hand_on(inputs, decoded, progress, read_at, reporter, &out, state).await?;
                if !sent || !barrier.after_round(&out, state).await || (ended && in_flight.is_empty()) {
                    return Ok(());
                }
            }
            next = follower.next(), if !ended && in_flight.len() < ROUNDS_IN_FLIGHT => {
                let Some(first) = next? else {
                    // No more input will come (the follower has no partitions).
                    if in_flight.is_empty() {
                        return Ok(());
                    }
                    ended = true;
                    continue;
                };
                let mut fetches = vec![first];
                let mut count = fetches[0].1.len();
                let deadline = tokio::time::Instant::now() + linger;
                while count < BATCH_RECORDS {
                    let more = if linger.is_zero() {
                        follower.next_available().await?
                    } else {
                        match tokio::time::timeout_at(deadline, follower.next()).await {
                            Ok(next) => next?,
                            Err(_) => None,
                        }
                    };
                    let Some(fetch) = more else { break };
                    count += fetch.1.len();
                    fetches.push(fetch);
                }
                state.records_read.fetch_add(count as u64, Ordering::Relaxed);
                state.bytes_read.fetch_add(fetches.iter().map(|(_, records)| record_bytes(records)).sum(), Ordering::Relaxed);
                let read_at = Instant::now();
                let mut progress: BTreeMap<u32, u64> = BTreeMap::new();
                for (stream, records) in &fetches {
                    if let Some(last) = records.last() {
                        progress.insert(*stream, last.offset + 1);
                    }
                }
                let pieces = split_replayed(fetches, &replay_until);
                // While the operators keep up, this task reads the next round as this one
                // is decoded; when they fall behind (their queue is over half full), it
                // takes a share of the decoding instead of reading ahead (the threads
                // would only take turns on the cores).
                let share = out.capacity() < out.max_capacity() / 2;
                let schemas = &schemas;
                in_flight.push_back(async move {
                    Ok::<_, TaskError>((decode_pieces(inputs, schemas, pieces, share).await?, progress, read_at))
                });
            }
            () = barrier.idle_due(state), if in_flight.is_empty() => {
                if !barrier.send(&out).await {
                    return Ok(());
                }
            }
        }
    }
}

/// At most this many rounds of input are read and not yet handed on.
const ROUNDS_IN_FLIGHT: usize = 2;

/// Hands on a decoded round of one input: notes its bad records, then sends its rows
/// (replayed ones first: they come before the commit), per input one batch of each run of
/// pieces in the order they were read, and then how far it reached. False when the rest of
/// the query has stopped (and said why).
async fn hand_on(
    inputs: &[Arc<Source>],
    decoded: Vec<(Piece, crate::engine::source::DecodedRows)>,
    progress: BTreeMap<u32, u64>,
    read_at: Instant,
    reporter: &Reporter,
    out: &mpsc::Sender<Message>,
    state: &QueryState,
) -> Result<bool, TaskError> {
    use crate::log::follower::split_stream_id;
    note_errors(inputs, &decoded, reporter, state);
    reporter.flush().await?;
    let mut pieces: Vec<(u32, bool, crate::engine::source::DecodedRows)> = decoded
        .into_iter()
        .filter(|(_, rows)| rows.batch.num_rows() > 0)
        .map(|(piece, rows)| (piece.stream, piece.replay, rows))
        .collect();
    pieces.sort_by_key(|(_, replay, _)| !*replay);
    let pieces = pieces.into_iter().map(|(stream, replay, rows)| (split_stream_id(stream).0, replay, rows));
    for batch in batches_of(pieces)? {
        if out.send(Message::Data(batch)).await.is_err() {
            return Ok(false);
        }
    }
    for (partition, next_offset) in progress {
        if out.send(Message::Progress { partition, next_offset, read_at }).await.is_err() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Bad records a query met: counted, and written to the processing log.
struct Reporter {
    query_id: String,
    /// The query's (first) input topic, for entries about rows.
    input_topic: String,
    log: ProcessingLog,
    /// Entries noted and not yet written.
    pending: Mutex<Vec<Entry>>,
}

impl Reporter {
    /// Notes the records of `records` (a fetch of `topic`'s `partition`, in offset order)
    /// that `errors` name (sorted by offset; a record may be named twice, key and value):
    /// one entry each.
    fn note(&self, state: &QueryState, topic: &str, partition: u32, records: &[Record], errors: &[(u64, String)]) {
        let mut entries: Vec<Entry> = Vec::new();
        for (offset, reason) in errors {
            let Ok(i) = records.binary_search_by_key(offset, |r| r.offset) else { continue };
            push_merged(&mut entries, Entry::for_record(&self.query_id, topic, partition, &records[i], reason.clone()));
        }
        let Some(first) = entries.first() else { return };
        state.records_skipped.fetch_add(entries.len() as u64, Ordering::Relaxed);
        tracing::warn!(query = %self.query_id, topic, partition, records = entries.len(), first = %first.error, "skipping records that cannot be processed (see PROCESSING_LOG)");
        if let Ok(mut pending) = self.pending.lock() {
            pending.extend(entries);
        }
    }

    /// Writes what was noted.
    async fn flush(&self) -> Result<(), LogError> {
        let entries = self.pending.lock().map(|mut p| std::mem::take(&mut *p)).unwrap_or_default();
        self.log.write(&entries).await
    }

    /// Writes the rows expressions failed on (one entry per row) at once.
    async fn report_rows(&self, state: &QueryState, mut errors: Vec<RowError>) -> Result<(), LogError> {
        // In record order, a row's errors (its WHERE's, its columns') together.
        errors.sort_by_key(|e| (e.partition, e.offset));
        let mut entries: Vec<Entry> = Vec::with_capacity(errors.len());
        for error in errors {
            let entry = Entry {
                query_id: self.query_id.clone(),
                kind: Kind::Expression,
                source_topic: self.input_topic.clone(),
                source_partition: error.partition,
                source_offset: error.offset,
                error: error.message,
                record_key: None,
                record_value: None,
            };
            push_merged(&mut entries, entry);
        }
        let Some(first) = entries.first() else { return Ok(()) };
        state.expression_errors.fetch_add(entries.len() as u64, Ordering::Relaxed);
        tracing::warn!(query = %self.query_id, rows = entries.len(), first = %first.error, "expressions failed on rows; their columns are null (see PROCESSING_LOG)");
        self.log.write(&entries).await
    }
}

/// Resolves once the query is told to stop.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// When a source sends barriers: once a round of input was sent and `interval` has passed
/// since the last barrier; sooner (a tenth of it) when the input is caught up, so that an
/// idle query's output is checkpointed (and seen by readers of it) soon; and last when the
/// query stops. Never closer than [`CHECKPOINT_SHARE`] allows: a query whose state takes long
/// to snapshot checkpoints less often.
struct BarrierClock {
    interval: Duration,
    epoch: u64,
    last: tokio::time::Instant,
    /// Input was sent since the last barrier.
    dirty: bool,
    /// See [`Barriers::stateless`].
    stateless: bool,
}

impl BarrierClock {
    fn new(barriers: Barriers) -> Self {
        BarrierClock {
            interval: barriers.interval,
            epoch: barriers.next_epoch,
            last: tokio::time::Instant::now(),
            dirty: false,
            stateless: barriers.stateless,
        }
    }

    /// Sends a barrier; false when the rest of the query has stopped.
    async fn send(&mut self, out: &mpsc::Sender<Message>) -> bool {
        let sent = out.send(Message::Barrier { epoch: self.epoch, states: Vec::new() }).await.is_ok();
        self.epoch += 1;
        self.last = tokio::time::Instant::now();
        self.dirty = false;
        sent
    }

    /// The least time between barriers: what the last checkpoint cost, times
    /// [`CHECKPOINT_SHARE`]. A stateless query's checkpoint costs no work, only the wait for
    /// its write (one slow `fsync` would otherwise hold its next twenty times as long, and
    /// the readers of its output, which see it once checkpointed, with it): the time of its
    /// last write, at most the interval.
    fn pause(&self, state: &QueryState) -> Duration {
        let write = Duration::from_micros(state.write_micros.load(Ordering::Relaxed));
        if self.stateless {
            return write.min(self.interval);
        }
        (Duration::from_micros(state.snapshot_micros.load(Ordering::Relaxed)) + write) * CHECKPOINT_SHARE
    }

    /// After a round of input: a barrier if one is due.
    async fn after_round(&mut self, out: &mpsc::Sender<Message>, state: &QueryState) -> bool {
        self.dirty = true;
        if self.last.elapsed() >= self.interval.max(self.pause(state)) { self.send(out).await } else { true }
    }

    /// Resolves when an idle query's barrier is due (never while nothing was sent).
    async fn idle_due(&self, state: &QueryState) {
        if self.dirty {
            tokio::time::sleep_until(self.last + (self.interval / 10).max(self.pause(state))).await;
        } else {
            std::future::pending::<()>().await;
        }
    }

    /// The last barrier, when the query stops: its checkpoint also records where the
    /// output ends now, so that what others wrote into it meanwhile is never cut off.
    async fn send_final(&mut self, out: &mpsc::Sender<Message>) {
        self.send(out).await;
    }
}

/// A join's inputs, read as `read_source` reads one input but handed on in event-time order
/// across all their partitions (see [`super::align`]): every partition with nothing queued
/// is read (without waiting) before rows are handed on, so that none runs ahead.
///
/// An input fed by another query (a repartition topic) counts as caught up only once that
/// query has settled (see [`Watch::settled`]): its output is then all there to read.
#[allow(clippy::too_many_arguments)]
async fn read_aligned(
    mut aligned: Aligned,
    mut follower: Follower<'_>,
    reading: Reading<'_>,
    barrier: &mut BarrierClock,
    reporter: &Reporter,
    out: &mpsc::Sender<Message>,
    stop: &mut watch::Receiver<bool>,
    state: &QueryState,
) -> Result<(), TaskError> {
    use crate::log::follower::split_stream_id;
    let Reading { log, inputs, schemas, replay_until, feeders } = reading;
    // Decodes what was read (on all cores) and queues it to be aligned.
    let queue = async |aligned: &mut Aligned, fetches: Vec<(u32, Vec<Record>)>| -> Result<(), TaskError> {
        for (_, records) in &fetches {
            state.records_read.fetch_add(records.len() as u64, Ordering::Relaxed);
            state.bytes_read.fetch_add(record_bytes(records), Ordering::Relaxed);
        }
        for (piece, rows) in decode_noting(inputs, schemas, fetches, replay_until, reporter, state).await? {
            let Some(last) = piece.records.last() else { continue };
            aligned.push(piece.stream, piece.replay, rows, last.offset + 1)?;
        }
        Ok(())
    };
    loop {
        if *stop.borrow() {
            barrier.send_final(out).await;
            return Ok(());
        }
        // Which feeders are still at work, looked at before reading: what a settled one wrote
        // is all read by the refill after. (Registered for their wake-ups before looking.)
        let mut moved: Vec<_> = Vec::new();
        let mut unsettled: Vec<usize> = Vec::new();
        for (input, feeder) in feeders {
            let mut wake = Box::pin(feeder.state.progressed.notified());
            wake.as_mut().enable();
            if !feeder.settled(log).await? {
                moved.push(wake);
                unsettled.push(*input);
            }
        }
        if !unsettled.is_empty() {
            for stream in (0..follower.stream_count()).map(|i| follower.stream_at(i)) {
                if unsettled.contains(&split_stream_id(stream).0) {
                    aligned.track(stream);
                }
            }
        }
        let (mut caught_up, fetched) = crate::engine::align::refill(&mut follower, &aligned).await?;
        caught_up.retain(|s| !unsettled.contains(&split_stream_id(*s).0));
        queue(&mut aligned, fetched).await?;
        reporter.flush().await?;
        let ready = aligned.pop_ready(|s| caught_up.contains(&s), BATCH_RECORDS)?;
        if ready.is_empty() {
            // Rows wait for a feeder's: until it moves (or a moment passes, to look again).
            let on_feeder = !moved.is_empty() && !aligned.all_empty();
            if on_feeder || aligned.all_empty() {
                // (Or everything is caught up: wait for more.)
                let feeder_moved = async {
                    if on_feeder {
                        let _ = tokio::time::timeout(FEEDER_RECHECK, futures::future::select_all(moved)).await;
                    } else {
                        std::future::pending::<()>().await;
                    }
                };
                let next = tokio::select! {
                    () = stopped(stop) => {
                        barrier.send_final(out).await;
                        return Ok(());
                    }
                    _ = barrier.idle_due(state) => {
                        if !barrier.send(out).await {
                            return Ok(());
                        }
                        continue;
                    }
                    () = feeder_moved => continue,
                    // (Looked at again at the top of the loop, where its failure fails this.)
                    () = a_feeder_failed(feeders), if !on_feeder => continue,
                    next = follower.next(), if !on_feeder => next?,
                };
                let Some(fetch) = next else { return Ok(()) };
                queue(&mut aligned, vec![fetch]).await?;
                reporter.flush().await?;
            }
            continue;
        }
        // One batch per run of rows of one input (replayed or not), in order.
        let read_at = Instant::now();
        let mut progress: BTreeMap<u32, u64> = BTreeMap::new();
        let mut pieces = Vec::with_capacity(ready.len());
        for piece in ready {
            progress.extend(piece.progress);
            pieces.push((piece.input, piece.replay, piece.rows));
        }
        let batches = batches_of(pieces)?;
        for batch in batches {
            if out.send(Message::Data(batch)).await.is_err() {
                return Ok(()); // the rest of the query has stopped (and said why)
            }
        }
        for (partition, next_offset) in progress {
            if out.send(Message::Progress { partition, next_offset, read_at }).await.is_err() {
                return Ok(());
            }
        }
        if !barrier.after_round(out, state).await {
            return Ok(());
        }
    }
}

/// Resolves when one of `feeders` has failed (never, without feeders).
async fn a_feeder_failed(feeders: &[(usize, Watch)]) {
    let states: Vec<&QueryState> = feeders.iter().map(|(_, f)| f.state.as_ref()).collect();
    until(&states, || states.iter().any(|s| matches!(s.status(), QueryStatus::Error(_)))).await;
}

/// Resolves once `done` holds, looked at again whenever one of `states` progresses (never,
/// without states).
async fn until(states: &[&QueryState], done: impl Fn() -> bool) {
    if states.is_empty() {
        return std::future::pending().await;
    }
    loop {
        // Registered for wake-ups before looking, so that none is missed in between.
        let mut changes: Vec<_> = states.iter().map(|s| Box::pin(s.progressed.notified())).collect();
        for change in &mut changes {
            change.as_mut().enable();
        }
        if done() {
            return;
        }
        futures::future::select_all(changes).await;
    }
}

/// How often a query waiting on a feeder (see [`read_aligned`]) looks at it again when it
/// has not signalled.
const FEEDER_RECHECK: Duration = Duration::from_millis(20);

/// What [`read_aligned`] reads: the inputs, with their row schemas, how far to replay, and
/// which are fed by other queries.
struct Reading<'a> {
    log: &'a dyn Log,
    inputs: &'a [Arc<Source>],
    schemas: &'a [datafusion::arrow::datatypes::SchemaRef],
    replay_until: &'a Positions,
    feeders: &'a [(usize, Watch)],
}

/// Records of one partition to decode, and whether they only rebuild state.
struct Piece {
    stream: u32,
    replay: bool,
    records: Vec<Record>,
}

/// Fetches cut into pieces at the commit: records below it were written before, and only
/// rebuild state.
fn split_replayed(fetches: Vec<(u32, Vec<Record>)>, replay_until: &Positions) -> Vec<Piece> {
    let mut pieces = Vec::with_capacity(fetches.len());
    for (stream, mut records) in fetches {
        let replay_end = replay_until.get(&stream).copied().unwrap_or(0);
        let split = records.partition_point(|r| r.offset < replay_end);
        // Nothing replayed (the common case): the records move on whole, uncopied.
        let fresh = if split == 0 { std::mem::take(&mut records) } else { records.split_off(split) };
        for (records, replay) in [(records, true), (fresh, false)] {
            if !records.is_empty() {
                pieces.push(Piece { stream, replay, records });
            }
        }
    }
    pieces
}

/// Decodes fetches (split at the commit, see [`split_replayed`]) with [`decode_pieces`], and
/// notes the records that did not decode, except replayed ones (noted when first read).
async fn decode_noting(
    inputs: &[Arc<Source>],
    schemas: &[datafusion::arrow::datatypes::SchemaRef],
    fetches: Vec<(u32, Vec<Record>)>,
    replay_until: &Positions,
    reporter: &Reporter,
    state: &QueryState,
) -> Result<Vec<(Piece, crate::engine::source::DecodedRows)>, TaskError> {
    let decoded = decode_pieces(inputs, schemas, split_replayed(fetches, replay_until), true).await?;
    note_errors(inputs, &decoded, reporter, state);
    Ok(decoded)
}

/// Notes the records of decoded pieces that did not decode, except replayed ones (noted
/// when first read).
fn note_errors(
    inputs: &[Arc<Source>],
    decoded: &[(Piece, crate::engine::source::DecodedRows)],
    reporter: &Reporter,
    state: &QueryState,
) {
    for (piece, rows) in decoded {
        let (i, partition) = crate::log::follower::split_stream_id(piece.stream);
        if !piece.replay
            && let Some(input) = inputs.get(i)
        {
            reporter.note(state, &input.topic, partition, &piece.records, &rows.errors);
        }
    }
}

/// The cores work is spread over (asked once: on Linux the answer reads cgroup files).
static CORES: std::sync::LazyLock<usize> =
    std::sync::LazyLock::new(|| std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get));

/// Below this many records, pieces are decoded on the task's own thread.
const PARALLEL_DECODE_RECORDS: usize = 2048;

/// `work` done on `items`, its results in order. Below `inline_below` (by `size`), on this
/// thread; otherwise on every core: the items are cut into runs of consecutive items of
/// about equal size, each done on a thread of the blocking pool, except the first when
/// `first_here` (then this thread does it meanwhile).
async fn on_every_core<T, R>(
    items: Vec<T>,
    size: impl Fn(&T) -> usize,
    inline_below: usize,
    first_here: bool,
    work: impl Fn(Vec<T>) -> Vec<R> + Clone + Send + 'static,
) -> Result<Vec<R>, TaskError>
where
    T: Send + 'static,
    R: Send + 'static,
{
    let (count, total): (usize, usize) = (items.len(), items.iter().map(&size).sum());
    let runs = if total < inline_below { 1 } else { (*CORES).min(items.len()) };
    if runs <= 1 {
        return Ok(work(items));
    }
    // Cut where a run has its share.
    let mut cut: Vec<Vec<T>> = vec![Vec::new()];
    let mut in_run = 0;
    for item in items {
        if in_run * runs >= total && cut.len() < runs {
            cut.push(Vec::new());
            in_run = 0;
        }
        in_run += size(&item);
        if let Some(run) = cut.last_mut() {
            run.push(item);
        }
    }
    let mut cut = cut.into_iter();
    let first = if first_here { cut.next() } else { None };
    let handles: Vec<_> = cut
        .map(|run| {
            let work = work.clone();
            tokio::task::spawn_blocking(move || work(run))
        })
        .collect();
    let mut done = Vec::with_capacity(count);
    if let Some(first) = first {
        done.extend(work(first));
    }
    for handle in handles {
        done.extend(handle.await.map_err(|e| TaskError::Log(join_error(e)))?);
    }
    Ok(done)
}

/// Decodes `pieces`, in order, on every core when they are many (see [`on_every_core`]; this
/// thread takes a share when `share`).
async fn decode_pieces(
    inputs: &[Arc<Source>],
    schemas: &[datafusion::arrow::datatypes::SchemaRef],
    pieces: Vec<Piece>,
    share: bool,
) -> Result<Vec<(Piece, crate::engine::source::DecodedRows)>, TaskError> {
    use crate::log::follower::split_stream_id;
    let (inputs, schemas) = (inputs.to_vec(), schemas.to_vec());
    let decode_run = move |run: Vec<Piece>| {
        run.into_iter()
            .filter_map(|piece| {
                let (i, partition) = split_stream_id(piece.stream);
                let rows = decode(inputs.get(i)?, schemas.get(i)?, partition, &piece.records);
                Some((piece, rows))
            })
            .collect::<Vec<_>>()
    };
    let decoded = on_every_core(pieces, |p| p.records.len(), PARALLEL_DECODE_RECORDS, share, decode_run).await?;
    decoded.into_iter().map(|(piece, rows)| Ok((piece, rows?))).collect()
}

/// Pieces at least this big go on as batches of their own; smaller ones are put together.
const COMBINE_BELOW_ROWS: usize = 1024;

/// Batches of decoded pieces (each with its input and whether it is replayed), in order:
/// consecutive small pieces of one input (replayed or not) become one batch, as far as
/// [`COMBINE_BELOW_ROWS`] rows, and bigger ones go on as they are (copying them would cost
/// more than it saves).
fn batches_of(
    pieces: impl IntoIterator<Item = (usize, bool, crate::engine::source::DecodedRows)>,
) -> Result<Vec<TimedBatch>, TaskError> {
    let mut batches: Vec<TimedBatch> = Vec::new();
    let mut run: Vec<crate::engine::source::DecodedRows> = Vec::new();
    let mut run_rows = 0;
    let mut run_key: Option<(usize, bool)> = None;
    for (input, replay, rows) in pieces {
        if rows.batch.num_rows() == 0 {
            continue;
        }
        if let Some((i, replayed)) = run_key
            && ((i, replayed) != (input, replay) || run_rows >= COMBINE_BELOW_ROWS)
        {
            batches.extend(combine(std::mem::take(&mut run), i, replayed)?);
            run_rows = 0;
        }
        run_key = Some((input, replay));
        run_rows += rows.batch.num_rows();
        run.push(rows);
    }
    if let Some((input, replay)) = run_key {
        batches.extend(combine(run, input, replay)?);
    }
    Ok(batches)
}

/// One batch of the decoded pieces of one input (their tombstone marks included).
fn combine(
    pieces: Vec<crate::engine::source::DecodedRows>,
    input: usize,
    replay: bool,
) -> Result<Option<TimedBatch>, crate::format::FormatError> {
    use datafusion::arrow::array::BooleanArray;
    let Some(first) = pieces.first() else { return Ok(None) };
    let schema = first.batch.schema();
    let row_time = schema.index_of("ROWTIME")?;
    let any_tombstones = pieces.iter().any(|p| p.tombstones.is_some());
    let (rows, tombstones) = if pieces.len() == 1 {
        let Some(piece) = pieces.into_iter().next() else { return Ok(None) };
        (piece.batch, piece.tombstones)
    } else {
        let tombstones = any_tombstones.then(|| {
            let marks: Vec<bool> = pieces
                .iter()
                .flat_map(|p| match &p.tombstones {
                    Some(t) => (0..t.len()).map(|i| t.value(i)).collect::<Vec<_>>(),
                    None => vec![false; p.batch.num_rows()],
                })
                .collect();
            BooleanArray::from(marks)
        });
        let batches: Vec<&datafusion::arrow::array::RecordBatch> = pieces.iter().map(|p| &p.batch).collect();
        (datafusion::arrow::compute::concat_batches(&schema, batches)?, tombstones)
    };
    let timestamps_ms = rows.column(row_time).clone();
    Ok(Some(TimedBatch { rows, timestamps_ms, tombstones, windows: None, replay, input }))
}

/// Runs the operator chain over the batches, in order. A barrier takes each operator's
/// state (when checkpointing) and checks the state limit. `restored` holds the states of the
/// checkpoint the query resumes from.
/// What the operator task runs.
struct OperatorTask {
    chain: Vec<Box<dyn Operator>>,
    /// The operators' states to resume from.
    restored: Option<Vec<Option<Vec<RecordBatch>>>>,
    /// Barriers take snapshots (the query checkpoints).
    snapshots: bool,
    state_limit: Option<u64>,
    /// Rows go through one at a time (see [`QuerySpec::every_update`]).
    every_update: bool,
    reporter: Reporter,
}

async fn run_operators(
    task: OperatorTask,
    mut input: mpsc::Receiver<Message>,
    out: mpsc::Sender<Message>,
    state: &QueryState,
) -> Result<(), TaskError> {
    let OperatorTask { mut chain, restored, snapshots, state_limit, every_update, reporter } = task;
    let reporter = &reporter;
    if let Some(restored) = restored {
        if restored.len() != chain.len() {
            return Err(TaskError::Plan(super::plan::PlanError::internal(format!(
                "the checkpoint has {} operators, the query {}: was it planned differently?",
                restored.len(),
                chain.len()
            ))));
        }
        for (operator, saved) in chain.iter_mut().zip(restored) {
            if let Some(saved) = saved {
                operator.restore(saved)?;
            }
        }
    }
    while let Some(message) = input.recv().await {
        let forwarded = match message {
            Message::Data(batch) => {
                let mut sent = Ok(());
                let pieces = match every_update {
                    true => (0..batch.rows.num_rows()).map(|row| batch.slice(row, 1)).collect(),
                    false => vec![batch],
                };
                for piece in pieces {
                    for batch in run_chain(&mut chain, piece)? {
                        sent = out.send(Message::Data(batch)).await;
                    }
                }
                let errors: Vec<RowError> = chain.iter_mut().flat_map(|o| o.take_errors()).collect();
                reporter.report_rows(state, errors).await?;
                sent
            }
            progress @ Message::Progress { .. } => out.send(progress).await,
            Message::Barrier { epoch, .. } => {
                let bytes = chain.iter().map(|o| o.state_bytes() as u64).sum::<u64>();
                state.state_bytes.store(bytes, Ordering::Relaxed);
                if let Some(limit) = state_limit.filter(|limit| bytes > *limit) {
                    return Err(TaskError::StateLimit { bytes, limit });
                }
                let states = if snapshots {
                    let started = Instant::now();
                    let states = chain.iter_mut().map(|o| o.snapshot()).collect::<Result<Vec<_>, _>>()?;
                    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                    state.snapshot_micros.store(micros, Ordering::Relaxed);
                    states
                } else {
                    Vec::new()
                };
                out.send(Message::Barrier { epoch, states }).await
            }
        };
        if forwarded.is_err() {
            return Ok(());
        }
    }
    Ok(())
}

/// Keeps an exactly-once query's fence: readers of its output stop at its last durable
/// checkpoint while it has written output past it, and read to the end otherwise (so an
/// idle query holds back no one, nor what others write into its topic).
#[derive(Clone)]
struct FenceKeeper {
    fences: Arc<Fences>,
    topic: String,
    id: String,
    shared: Arc<Mutex<FenceState>>,
}

struct FenceState {
    /// Output was written past the last barrier.
    dirty: bool,
    /// Where the output ended at the last durable checkpoint.
    durable: Positions,
}

impl FenceKeeper {
    /// The fence of a query whose output ended at `durable` at its last checkpoint.
    fn new(fences: Arc<Fences>, topic: &str, id: &str, durable: Positions) -> Self {
        let shared = Arc::new(Mutex::new(FenceState { dirty: false, durable }));
        FenceKeeper { fences, topic: topic.to_owned(), id: id.to_owned(), shared }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FenceState> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Before output is written: fenced at the last durable checkpoint.
    fn writing(&self) {
        let mut state = self.lock();
        if !state.dirty {
            state.dirty = true;
            for (partition, end) in &state.durable {
                self.fences.set(&self.topic, *partition, &self.id, *end);
            }
        }
    }

    /// At a barrier: everything written so far is in the checkpoint being taken.
    fn barrier(&self) {
        self.lock().dirty = false;
    }

    /// A checkpoint whose output ended at `sink` is on disk: the fence moves to it, or is
    /// lifted when nothing was written since its barrier.
    fn durable(&self, sink: &Positions) {
        let mut state = self.lock();
        state.durable = sink.clone();
        if state.dirty {
            for (partition, end) in sink {
                self.fences.set(&self.topic, *partition, &self.id, *end);
            }
        } else {
            self.fences.lift(&self.id);
        }
    }
}

/// Writes a query's checkpoints: one at a time, in the background of the sink.
struct Checkpointer {
    store: CheckpointStore,
    exactly_once: bool,
    /// Exactly once: the query's fence.
    fence: Option<FenceKeeper>,
    log: Arc<dyn Log>,
    /// The output topic.
    topic: String,
    /// The query's state (for what the checkpoints cover).
    query: Arc<QueryState>,
    /// The checkpoint being written: its size and how long writing it took.
    writing: Option<JoinHandle<Result<(u64, Duration), LogError>>>,
}

impl Checkpointer {
    /// Starts writing the checkpoint of a barrier (after the previous one is done), with
    /// everything before it written: `sources` read, and the output as it ends now.
    async fn start(
        &mut self,
        state: &QueryState,
        epoch: u64,
        states: Vec<Option<Vec<RecordBatch>>>,
    ) -> Result<(), LogError> {
        self.finish(state).await?;
        let sources = state.written();
        let sink = output_ends(self.log.as_ref(), &self.topic).await?;
        let covered = sources.clone();
        let checkpoint = Checkpoint { epoch, sources, sink, operators: states, exactly_once: self.exactly_once };
        let (store, fence) = (self.store.clone(), self.fence.clone());
        if let Some(fence) = &fence {
            fence.barrier();
        }
        let query = Arc::clone(&self.query);
        self.writing = Some(tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let bytes = store.write_guarded(&checkpoint, &query.alive)?;
            let took = started.elapsed();
            if let Some(fence) = fence {
                fence.durable(&checkpoint.sink);
            }
            if let Ok(mut checkpointed) = query.checkpointed.lock() {
                *checkpointed = Some(covered);
            }
            query.progressed.notify_waiters();
            Ok((bytes, took))
        }));
        Ok(())
    }

    /// Waits for the checkpoint being written, if any; notes what writing it took. Cancel
    /// safe: dropped while waiting, the write stays in hand.
    async fn finish(&mut self, state: &QueryState) -> Result<(), LogError> {
        if let Some(writing) = &mut self.writing {
            let outcome = writing.await;
            self.writing = None;
            let (bytes, took) = outcome.map_err(join_error)??;
            let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
            state.write_micros.store(micros, Ordering::Relaxed);
            tracing::debug!(bytes, micros, "checkpoint written");
        }
        Ok(())
    }

    /// Resolves when the checkpoint being written is done, as [`Checkpointer::finish`]
    /// (never while none is): a write that failed fails the query then, not at the next
    /// barrier, which an idle query may never have.
    async fn written(&mut self, state: &QueryState) -> Result<(), LogError> {
        if self.writing.is_none() {
            return std::future::pending().await;
        }
        self.finish(state).await
    }
}

/// What the sink task writes with.
/// A push query's sink: hands its client every batch, and publishes how far the input has
/// been handed on. It ends when the input does, or when the client has gone.
async fn write_client(rows: mpsc::Sender<TimedBatch>, mut input: mpsc::Receiver<Message>, state: &QueryState) {
    while let Some(message) = input.recv().await {
        match message {
            Message::Data(batch) => {
                let count = batch.rows.num_rows() as u64;
                if rows.send(batch).await.is_err() {
                    return;
                }
                state.records_written.fetch_add(count, Ordering::Relaxed);
            }
            Message::Progress { partition, next_offset, read_at } => {
                state.latency.observe(read_at.elapsed());
                if let Ok(mut positions) = state.written.lock() {
                    positions.insert(partition, next_offset);
                }
                state.progressed.notify_waiters();
            }
            Message::Barrier { .. } => {}
        }
    }
}

struct SinkParts {
    encoder: SinkEncoder,
    producer: Producer,
    offsets: OffsetStore,
    checkpointer: Option<Checkpointer>,
    processing_log: ProcessingLog,
}

async fn write_sink(
    id: &str,
    parts: SinkParts,
    mut input: mpsc::Receiver<Message>,
    state: &QueryState,
) -> Result<bool, TaskError> {
    let SinkParts { encoder, mut producer, offsets, mut checkpointer, processing_log } = parts;
    let mut pending: BTreeMap<u32, u64> = BTreeMap::new();
    // When the records behind the progress markers of this round were read.
    let mut read_times: Vec<Instant> = Vec::new();
    let mut last_commit = Instant::now();
    let mut uncommitted = false;
    // Output was written since the last checkpoint.
    let mut unchecked = false;
    loop {
        let first = tokio::select! {
            message = input.recv() => match message {
                Some(message) => message,
                None => break,
            },
            written = async {
                match checkpointer.as_mut() {
                    Some(checkpointer) => checkpointer.written(state).await,
                    None => std::future::pending().await,
                }
            } => {
                written?;
                continue;
            }
        };
        let mut next = Some(first);
        let mut barrier = None;
        while let Some(message) = next {
            match message {
                // Output rebuilt from replayed records was written before the restart.
                Message::Data(batch) if batch.replay => {}
                Message::Data(batch) => {
                    let errors = encoder.write(&batch, &mut producer)?;
                    if !errors.is_empty() {
                        state.records_skipped.fetch_add(errors.len() as u64, Ordering::Relaxed);
                        tracing::warn!(query = id, rows = errors.len(), first = %errors[0], "skipping output rows that cannot be written (see PROCESSING_LOG)");
                        let entries: Vec<Entry> = errors
                            .into_iter()
                            .map(|error| Entry {
                                query_id: id.to_owned(),
                                kind: Kind::Serialization,
                                source_topic: encoder.sink().topic.clone(),
                                source_partition: None,
                                source_offset: None,
                                error,
                                record_key: None,
                                record_value: None,
                            })
                            .collect();
                        processing_log.write(&entries).await?;
                    }
                }
                Message::Progress { partition, next_offset, read_at } => {
                    pending.insert(partition, next_offset);
                    read_times.push(read_at);
                }
                Message::Barrier { epoch, states } => {
                    // Everything before the barrier is flushed before it is checkpointed.
                    barrier = Some((epoch, states));
                    break;
                }
            }
            next = input.try_recv().ok();
        }
        let (written, bytes) = (producer.pending_records() as u64, producer.pending_bytes() as u64);
        if written > 0
            && let Some(fence) = checkpointer.as_ref().and_then(|c| c.fence.as_ref())
        {
            fence.writing();
        }
        producer.flush().await?;
        state.records_written.fetch_add(written, Ordering::Relaxed);
        state.bytes_written.fetch_add(bytes, Ordering::Relaxed);
        unchecked |= written > 0;
        for read_at in read_times.drain(..) {
            state.latency.observe(read_at.elapsed());
        }
        if !pending.is_empty() {
            if let Ok(mut positions) = state.written.lock() {
                positions.append(&mut pending);
            }
            uncommitted = true;
            state.progressed.notify_waiters();
        }
        match (&mut checkpointer, barrier) {
            (Some(checkpointer), Some((epoch, states))) => {
                checkpointer.start(state, epoch, states).await?;
                state.checkpoints.fetch_add(1, Ordering::Relaxed);
                unchecked = false;
            }
            (Some(_), None) => {}
            (None, _) => {
                if uncommitted && last_commit.elapsed() >= COMMIT_INTERVAL {
                    offsets.commit(id, &state.written()).await?;
                    last_commit = Instant::now();
                    uncommitted = false;
                }
            }
        }
    }
    producer.flush().await?;
    match &mut checkpointer {
        Some(checkpointer) => {
            checkpointer.finish(state).await?;
            // Stopped with everything checkpointed: nothing it wrote can be cut off.
            if !unchecked && let Some(fence) = &checkpointer.fence {
                fence.fences.lift(id);
            }
            Ok(!unchecked)
        }
        None if uncommitted => offsets.commit(id, &state.written()).await.map(|()| true).map_err(TaskError::from),
        None => Ok(true),
    }
}
