//! The sink task: a topic's (encoding, appending, committing, checkpointing, fencing), or a
//! push query's client's.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use datafusion::arrow::array::RecordBatch;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{QueryState, TaskError, join_error, output_ends};
use crate::engine::checkpoint::{Checkpoint, CheckpointStore, Fences};
use crate::engine::offsets::{OffsetStore, Positions};
use crate::engine::operator::{Message, TimedBatch};
use crate::engine::processing_log::{Entry, Kind, ProcessingLog};
use crate::engine::sink::SinkEncoder;
use crate::log::{Log, LogError, Producer};

/// Commits are at most this frequent while a query is busy.
const COMMIT_INTERVAL: Duration = Duration::from_secs(1);

/// Keeps an exactly-once query's fence: readers of its output stop at its last durable
/// checkpoint while it has written output past it, and read to the end otherwise (so an
/// idle query holds back no one, nor what others write into its topic).
#[derive(Clone)]
pub(super) struct FenceKeeper {
    pub(super) fences: Arc<Fences>,
    pub(super) topic: String,
    pub(super) id: String,
    pub(super) shared: Arc<Mutex<FenceState>>,
}

pub(super) struct FenceState {
    /// Output was written past the last barrier.
    pub(super) dirty: bool,
    /// Where the output ended at the last durable checkpoint.
    pub(super) durable: Positions,
}

impl FenceKeeper {
    /// The fence of a query whose output ended at `durable` at its last checkpoint.
    pub(super) fn new(fences: Arc<Fences>, topic: &str, id: &str, durable: Positions) -> Self {
        let shared = Arc::new(Mutex::new(FenceState { dirty: false, durable }));
        FenceKeeper { fences, topic: topic.to_owned(), id: id.to_owned(), shared }
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, FenceState> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Before output is written: fenced at the last durable checkpoint.
    pub(super) fn writing(&self) {
        let mut state = self.lock();
        if !state.dirty {
            state.dirty = true;
            for (partition, end) in &state.durable {
                self.fences.set(&self.topic, *partition, &self.id, *end);
            }
        }
    }

    /// At a barrier: everything written so far is in the checkpoint being taken.
    pub(super) fn barrier(&self) {
        self.lock().dirty = false;
    }

    /// A checkpoint whose output ended at `sink` is on disk: the fence moves to it, or is
    /// lifted when nothing was written since its barrier.
    pub(super) fn durable(&self, sink: &Positions) {
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
pub(super) struct Checkpointer {
    pub(super) store: CheckpointStore,
    pub(super) exactly_once: bool,
    /// Exactly once: the query's fence.
    pub(super) fence: Option<FenceKeeper>,
    pub(super) log: Arc<dyn Log>,
    /// The output topic.
    pub(super) topic: String,
    /// The query's state (for what the checkpoints cover).
    pub(super) query: Arc<QueryState>,
    /// The checkpoint being written: its size and how long writing it took.
    pub(super) writing: Option<JoinHandle<Result<(u64, Duration), LogError>>>,
}

impl Checkpointer {
    /// Starts writing the checkpoint of a barrier (after the previous one is done), with
    /// everything before it written: `sources` read, and the output as it ends now.
    pub(super) async fn start(
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
        self.writing = Some(tokio::spawn(async move {
            let started = Instant::now();
            let bytes = match &store {
                CheckpointStore::Files(files) => {
                    let (files, query, checkpoint) = (files.clone(), Arc::clone(&query), checkpoint.clone());
                    tokio::task::spawn_blocking(move || files.write_guarded(&checkpoint, &query.alive))
                        .await
                        .map_err(join_error)??
                }
                CheckpointStore::Topic(topic) => {
                    topic.write(&checkpoint, || *query.alive.lock().unwrap_or_else(|p| p.into_inner())).await?
                }
            };
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
    pub(super) async fn finish(&mut self, state: &QueryState) -> Result<(), LogError> {
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
    pub(super) async fn written(&mut self, state: &QueryState) -> Result<(), LogError> {
        if self.writing.is_none() {
            return std::future::pending().await;
        }
        self.finish(state).await
    }
}

/// A push query's sink: hands its client every batch, and publishes how far the input has
/// been handed on. It ends when the input does, or when the client has gone.
pub(super) async fn write_client(
    rows: mpsc::Sender<TimedBatch>,
    mut input: mpsc::Receiver<Message>,
    state: &QueryState,
) {
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

/// What the sink task writes with.
pub(super) struct SinkParts {
    pub(super) encoder: SinkEncoder,
    pub(super) producer: Producer,
    pub(super) offsets: OffsetStore,
    pub(super) checkpointer: Option<Checkpointer>,
    pub(super) processing_log: ProcessingLog,
}

pub(super) async fn write_sink(
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
