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
//!
//! One file per part: `source` (the source task and its barriers), `decode` (records into
//! batches, on every core), `operators` (the operator task), `sink` (the sink tasks, with
//! checkpoints and fences), `resume` (where a query goes on from), `report` (bad records to
//! the processing log) and `state` (status and metrics).

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;

use super::checkpoint::{Checkpoint, CheckpointStore, Fences, ReadCommitted};
use super::offsets::{OffsetStore, Positions};
use super::operator::{Operator, TimedBatch};
use super::processing_log::ProcessingLog;
use super::sink::SinkEncoder;
use crate::catalog::Source;
use crate::log::{Log, LogError, Producer};

mod decode;
mod operators;
mod report;
mod resume;
mod sink;
mod source;
mod state;

use decode::{Piece, batches_of, decode_noting, decode_pieces, note_errors, split_replayed};
use operators::{OperatorTask, run_operators};
use report::Reporter;
pub use resume::cut_back;
use resume::{QueryIdentity, output_ends, resume_from_checkpoint, resume_from_commit};
use sink::{Checkpointer, FenceKeeper, SinkParts, write_client, write_sink};
use source::{Barriers, read_source, until};
pub use state::{LATENCY_BUCKETS_SECONDS, LatencyHistogram, QueryState, QueryStatus};

/// Messages queued between two tasks of a query.
const CHANNEL_CAPACITY: usize = 16;

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
            Some(checkpoints) => checkpoints.store.is_empty().await? && offsets.load(&spec.id).await?.is_some(),
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

    /// Tells the source to stop reading; what it read drains to the sink (see
    /// [`RunningQuery::stop`], which also waits for that).
    pub fn request_stop(&self) {
        let _ = self.stop.send(true);
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

fn join_error(e: tokio::task::JoinError) -> LogError {
    LogError::Io { operation: "checkpoint", path: Default::default(), source: std::io::Error::other(e) }
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
