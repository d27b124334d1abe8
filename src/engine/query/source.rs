//! The source task: reads the inputs (in event-time order across partitions where that
//! matters, see [`crate::engine::align`]), cuts them into batches, and sends barriers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use super::{
    Piece, QueryState, QueryStatus, Reporter, TaskError, Watch, batches_of, decode_noting, decode_pieces, note_errors,
    split_replayed,
};
use crate::catalog::Source;
use crate::engine::align::Aligned;
use crate::engine::offsets::Positions;
use crate::engine::operator::Message;
use crate::engine::source::row_schema;
use crate::log::record::payload_bytes;
use crate::log::{Follower, Log, Record};

/// Barriers are spaced so that checkpoints take at most about 1/20 of a query's time.
const CHECKPOINT_SHARE: u32 = 20;

/// A source batch is cut at this many records (or `QuerySpec::linger` after its first
/// record arrived).
const BATCH_RECORDS: usize = 8192;

/// When the source sends barriers.
pub(super) struct Barriers {
    pub(super) interval: Duration,
    pub(super) next_epoch: u64,
    /// The operators keep no state: a checkpoint is a small file's write and `fsync`.
    pub(super) stateless: bool,
}

/// Reads the input and sends it on as batches. A batch is cut when it holds
/// [`BATCH_RECORDS`] records, or when the linger has passed since its first record arrived
/// (with no linger, when no more records are there at once): columnar batches under load,
/// a few milliseconds of latency at most when records trickle.
#[allow(clippy::too_many_arguments)]
pub(super) async fn read_source(
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
                state.bytes_read.fetch_add(fetches.iter().map(|(_, records)| payload_bytes(records)).sum(), Ordering::Relaxed);
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
pub(super) const ROUNDS_IN_FLIGHT: usize = 2;

/// Hands on a decoded round of one input: notes its bad records, then sends its rows
/// (replayed ones first: they come before the commit), per input one batch of each run of
/// pieces in the order they were read, and then how far it reached. False when the rest of
/// the query has stopped (and said why).
pub(super) async fn hand_on(
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

/// Resolves once the query is told to stop.
pub(super) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// When a source sends barriers: once a round of input was sent and `interval` has passed
/// since the last barrier; sooner (a tenth of it) when the input is caught up, so that an
/// idle query's output is checkpointed (and seen by readers of it) soon; and last when the
/// query stops. Never closer than [`CHECKPOINT_SHARE`] allows: a query whose state takes long
/// to snapshot checkpoints less often.
pub(super) struct BarrierClock {
    pub(super) interval: Duration,
    pub(super) epoch: u64,
    pub(super) last: tokio::time::Instant,
    /// Input was sent since the last barrier.
    pub(super) dirty: bool,
    /// See [`Barriers::stateless`].
    pub(super) stateless: bool,
}

impl BarrierClock {
    pub(super) fn new(barriers: Barriers) -> Self {
        BarrierClock {
            interval: barriers.interval,
            epoch: barriers.next_epoch,
            last: tokio::time::Instant::now(),
            dirty: false,
            stateless: barriers.stateless,
        }
    }

    /// Sends a barrier; false when the rest of the query has stopped.
    pub(super) async fn send(&mut self, out: &mpsc::Sender<Message>) -> bool {
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
    pub(super) fn pause(&self, state: &QueryState) -> Duration {
        let write = Duration::from_micros(state.write_micros.load(Ordering::Relaxed));
        if self.stateless {
            return write.min(self.interval);
        }
        (Duration::from_micros(state.snapshot_micros.load(Ordering::Relaxed)) + write) * CHECKPOINT_SHARE
    }

    /// After a round of input: a barrier if one is due.
    pub(super) async fn after_round(&mut self, out: &mpsc::Sender<Message>, state: &QueryState) -> bool {
        self.dirty = true;
        if self.last.elapsed() >= self.interval.max(self.pause(state)) { self.send(out).await } else { true }
    }

    /// Resolves when an idle query's barrier is due (never while nothing was sent).
    pub(super) async fn idle_due(&self, state: &QueryState) {
        if self.dirty {
            tokio::time::sleep_until(self.last + (self.interval / 10).max(self.pause(state))).await;
        } else {
            std::future::pending::<()>().await;
        }
    }

    /// The last barrier, when the query stops: its checkpoint also records where the
    /// output ends now, so that what others wrote into it meanwhile is never cut off.
    pub(super) async fn send_final(&mut self, out: &mpsc::Sender<Message>) {
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
pub(super) async fn read_aligned(
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
            state.bytes_read.fetch_add(payload_bytes(records), Ordering::Relaxed);
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
pub(super) async fn a_feeder_failed(feeders: &[(usize, Watch)]) {
    let states: Vec<&QueryState> = feeders.iter().map(|(_, f)| f.state.as_ref()).collect();
    until(&states, || states.iter().any(|s| matches!(s.status(), QueryStatus::Error(_)))).await;
}

/// Resolves once `done` holds, looked at again whenever one of `states` progresses (never,
/// without states).
pub(super) async fn until(states: &[&QueryState], done: impl Fn() -> bool) {
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
pub(super) const FEEDER_RECHECK: Duration = Duration::from_millis(20);

/// What [`read_aligned`] reads: the inputs, with their row schemas, how far to replay, and
/// which are fed by other queries.
pub(super) struct Reading<'a> {
    pub(super) log: &'a dyn Log,
    pub(super) inputs: &'a [Arc<Source>],
    pub(super) schemas: &'a [datafusion::arrow::datatypes::SchemaRef],
    pub(super) replay_until: &'a Positions,
    pub(super) feeders: &'a [(usize, Watch)],
}
