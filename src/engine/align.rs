//! Taking the records of several partitions (a join's inputs) in event-time order, as a
//! Kafka Streams task takes its partitions: of the partitions' next records, the earliest
//! goes first.
//!
//! Each partition's decoded records wait in a queue, in offset order. [`Aligned::pop_ready`]
//! hands out runs of rows, earliest head first, for as long as it can tell what is earliest:
//! it stops when a partition's queue is empty and that partition may have more records (its
//! next record might be earlier than anything queued), so that the caller reads it first. A
//! partition that is caught up (nothing more to read now) does not hold the others back.
//! Without this, a join catching up on a backlog would take whole fetches of one topic
//! before the other's: a small topic's fetch spans far more time than a big one's, and stream
//! time would run ahead, closing windows before their rows had been read.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use datafusion::arrow::array::{Array, AsArray, BooleanArray, Int64Array};
use datafusion::arrow::datatypes::Int64Type;

use super::source::DecodedRows;
use crate::format::FormatError;
use crate::log::follower::split_stream_id;
use crate::log::{Follower, LogError, Record};

/// The input a stream id is a partition of.
fn input_of(stream: u32) -> usize {
    split_stream_id(stream).0
}

/// A run of decoded rows, cut from a fetch.
struct Piece {
    /// Tells it apart from the others queued (see [`Aligned::pop_ready`]).
    id: u64,
    rows: DecodedRows,
    times: Int64Array,
    /// The rows' `ROWOFFSET`s (absent in tests' rows without one).
    offsets: Option<Int64Array>,
    replay: bool,
    /// The partition's next offset once this piece is all taken.
    next_offset: u64,
}

/// The queues of a set of partitions, by stream id.
#[derive(Default)]
pub struct Aligned {
    queues: BTreeMap<u32, (VecDeque<Piece>, usize)>,
    /// The next piece's id.
    pieces: u64,
    /// Partitions of one input take turns too (by default only inputs do): for an operator
    /// whose stream time decides what is late, so that no partition runs ahead of the others.
    interleave_partitions: bool,
}

/// Rows of one input handed out, in event-time order (of one partition or, taking turns,
/// of several): whether they are replayed, and where each partition they came from reads on
/// after them (for progress markers and checkpoints: exact even when the rows are a part of
/// a fetch). Rows that are no records' (a fetch all of whose records failed to decode) only
/// move progress.
pub struct Ready {
    pub input: usize,
    pub replay: bool,
    pub rows: DecodedRows,
    /// `(stream, next offset)`, each stream once.
    pub progress: Vec<(u32, u64)>,
}

/// Rows [`Aligned::pop_ready`] takes, before they are gathered: `length` rows from `start` of
/// the piece that is `source` among those taken from.
struct Run {
    stream: u32,
    replay: bool,
    source: usize,
    start: usize,
    length: usize,
    next_offset: u64,
}

impl Aligned {
    /// Queues whose partitions, of one input too, are taken in event-time order.
    pub fn interleaving_partitions() -> Self {
        Aligned { queues: BTreeMap::new(), pieces: 0, interleave_partitions: true }
    }

    /// Queues `rows` (all the decoded records of a fetch of `stream`, or a part of it) after
    /// that stream's earlier ones; `next_offset` is where the stream reads on after them.
    pub fn push(&mut self, stream: u32, replay: bool, rows: DecodedRows, next_offset: u64) -> Result<(), FormatError> {
        let time_column = rows.batch.schema().index_of("ROWTIME")?;
        let times = rows.batch.column(time_column).as_primitive::<Int64Type>().clone();
        let offsets = rows.batch.column_by_name("ROWOFFSET").and_then(|c| c.as_primitive_opt::<Int64Type>()).cloned();
        self.pieces += 1;
        let piece = Piece { id: self.pieces, rows, times, offsets, replay, next_offset };
        self.queues.entry(stream).or_default().0.push_back(piece);
        Ok(())
    }

    /// Makes `stream` known before anything of it is queued: while it is not caught up,
    /// [`Aligned::pop_ready`] waits for its rows (a stream never seen holds nothing back).
    pub fn track(&mut self, stream: u32) {
        self.queues.entry(stream).or_default();
    }

    /// Whether `stream` has nothing queued.
    pub fn is_empty(&self, stream: u32) -> bool {
        self.queues.get(&stream).is_none_or(|(queue, _)| queue.is_empty())
    }

    /// Whether nothing is queued at all.
    pub fn all_empty(&self) -> bool {
        self.queues.values().all(|(queue, _)| queue.is_empty())
    }

    /// Up to about `max_rows` rows in event-time order (ties to the lower stream id). Stops
    /// early when a stream with nothing queued is not `caught_up`: its next records must be
    /// read first. Consecutive rows of one input come as one batch, gathered once (taking
    /// turns, partitions' rows may alternate row by row).
    pub fn pop_ready(&mut self, caught_up: impl Fn(u32) -> bool, max_rows: usize) -> Result<Vec<Ready>, FormatError> {
        let mut runs: Vec<Run> = Vec::new();
        // The pieces rows were taken from: their rows and tombstones, by piece id.
        let mut sources: Vec<(datafusion::arrow::array::RecordBatch, Option<BooleanArray>)> = Vec::new();
        let mut source_of: HashMap<u64, usize> = HashMap::new();
        let mut note = |piece: &Piece| {
            *source_of.entry(piece.id).or_insert_with(|| {
                sources.push((piece.rows.batch.clone(), piece.rows.tombstones.clone()));
                sources.len() - 1
            })
        };
        let mut taken = 0;
        loop {
            // An empty piece (a fetch whose records all failed to decode) only moves progress.
            for (stream, (queue, cursor)) in self.queues.iter_mut() {
                while queue.front().is_some_and(|p| p.rows.batch.num_rows() == 0) {
                    if let Some(piece) = queue.pop_front() {
                        *cursor = 0;
                        let source = note(&piece);
                        let (replay, next_offset) = (piece.replay, piece.next_offset);
                        runs.push(Run { stream: *stream, replay, source, start: 0, length: 0, next_offset });
                    }
                }
            }
            if taken >= max_rows || self.queues.iter().any(|(s, (q, _))| q.is_empty() && !caught_up(*s)) {
                break;
            }
            let head =
                |piece: &Piece, at: usize| if piece.times.is_null(at) { i64::MIN } else { piece.times.value(at) };
            let heads: Vec<(u32, i64)> =
                self.queues.iter().filter_map(|(s, (q, cursor))| q.front().map(|p| (*s, head(p, *cursor)))).collect();
            let Some(&(chosen, _)) = heads.iter().min_by_key(|(s, time)| (*time, *s)) else { break };
            // Partitions of one input are independent (Kafka Streams runs them as separate
            // tasks): a run ends only where another input's next row comes (unless they take
            // turns too).
            let interleave = self.interleave_partitions;
            let others = heads
                .iter()
                .filter(|(s, _)| if interleave { *s != chosen } else { input_of(*s) != input_of(chosen) })
                .map(|(_, t)| *t)
                .min()
                .unwrap_or(i64::MAX);
            let Some((queue, cursor)) = self.queues.get_mut(&chosen) else { break };
            let Some(front) = queue.front() else { break };
            let rows = front.rows.batch.num_rows();
            let mut end = *cursor + 1;
            while end < rows && head(front, end) <= others {
                end += 1;
            }
            let finished = end == rows;
            // A part of a fetch ends after its last row's record (records that did not
            // decode before it are behind it too).
            let next_offset = if finished {
                front.next_offset
            } else {
                front.offsets.as_ref().map_or(front.next_offset, |o| o.value(end - 1) as u64 + 1)
            };
            let source = note(front);
            let length = end - *cursor;
            runs.push(Run { stream: chosen, replay: front.replay, source, start: *cursor, length, next_offset });
            taken += length;
            *cursor = end;
            if finished {
                queue.pop_front();
                *cursor = 0;
            }
        }
        let mut out: Vec<Ready> = Vec::new();
        for group in runs.chunk_by(|a, b| (input_of(a.stream), a.replay) == (input_of(b.stream), b.replay)) {
            out.push(gather(group, &sources)?);
        }
        Ok(out)
    }
}

/// One batch of the rows of `runs` (of one input), in order.
fn gather(
    runs: &[Run],
    sources: &[(datafusion::arrow::array::RecordBatch, Option<BooleanArray>)],
) -> Result<Ready, FormatError> {
    let mut progress: Vec<(u32, u64)> = Vec::new();
    for run in runs {
        match progress.iter_mut().find(|(s, _)| *s == run.stream) {
            Some(at) => at.1 = run.next_offset,
            None => progress.push((run.stream, run.next_offset)),
        }
    }
    let (input, replay) = runs.first().map(|r| (input_of(r.stream), r.replay)).unwrap_or_default();
    let with_rows: Vec<&Run> = runs.iter().filter(|r| r.length > 0).collect();
    let rows = match with_rows.as_slice() {
        [] => {
            let (batch, _) = &sources[runs.first().map_or(0, |r| r.source)];
            DecodedRows { batch: batch.slice(0, 0), tombstones: None, errors: Vec::new() }
        }
        [run] => {
            let (batch, tombstones) = &sources[run.source];
            DecodedRows {
                batch: batch.slice(run.start, run.length),
                tombstones: tombstones.as_ref().map(|t| t.slice(run.start, run.length)),
                errors: Vec::new(),
            }
        }
        several => {
            // The group's pieces (of one input: one schema), and its rows among them.
            let mut used: Vec<usize> = Vec::new();
            let mut indices: Vec<(usize, usize)> = Vec::with_capacity(several.iter().map(|r| r.length).sum());
            for run in several {
                let at = match used.iter().position(|s| *s == run.source) {
                    Some(at) => at,
                    None => {
                        used.push(run.source);
                        used.len() - 1
                    }
                };
                indices.extend((run.start..run.start + run.length).map(|row| (at, row)));
            }
            let batches: Vec<&datafusion::arrow::array::RecordBatch> = used.iter().map(|s| &sources[*s].0).collect();
            let batch = datafusion::arrow::compute::interleave_record_batch(&batches, &indices)?;
            let marks: Vec<Option<&BooleanArray>> = used.iter().map(|s| sources[*s].1.as_ref()).collect();
            let tombstones = marks.iter().any(Option::is_some).then(|| {
                indices
                    .iter()
                    .map(|(at, row)| Some(marks[*at].is_some_and(|t| t.value(*row))))
                    .collect::<BooleanArray>()
            });
            DecodedRows { batch, tombstones, errors: Vec::new() }
        }
    };
    Ok(Ready { input, replay, rows, progress })
}

/// Reads every partition `follower` follows that has nothing queued in `aligned` (without
/// waiting); returns what was read, to be decoded and queued, and the partitions that had
/// nothing to read (caught up, for [`Aligned::pop_ready`]).
#[allow(clippy::type_complexity)]
pub async fn refill(
    follower: &mut Follower<'_>,
    aligned: &Aligned,
) -> Result<(HashSet<u32>, Vec<(u32, Vec<Record>)>), LogError> {
    let mut caught_up = HashSet::new();
    let mut fetched = Vec::new();
    for i in 0..follower.stream_count() {
        let stream = follower.stream_at(i);
        if !aligned.is_empty(stream) {
            continue;
        }
        match follower.fetch(i).await? {
            Some(fetch) => fetched.push(fetch),
            None => {
                caught_up.insert(stream);
            }
        }
    }
    Ok((caught_up, fetched))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::RecordBatch;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn rows(times: &[i64]) -> DecodedRows {
        let schema = Arc::new(Schema::new(vec![Field::new("ROWTIME", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(times.to_vec()))]).unwrap();
        DecodedRows { batch, tombstones: None, errors: Vec::new() }
    }

    /// Each batch handed out: its input, and its rows' times.
    fn times(ready: &[Ready]) -> Vec<(usize, Vec<i64>)> {
        ready.iter().map(|r| (r.input, r.rows.batch.column(0).as_primitive::<Int64Type>().values().to_vec())).collect()
    }

    #[test]
    fn the_earliest_head_goes_first_and_a_stream_that_may_have_more_holds_the_others() {
        let mut aligned = Aligned::default();
        let other = crate::log::follower::stream_id(1, 0); // input 1's partition 0
        aligned.push(0, false, rows(&[1, 5, 9]), 3).unwrap();
        aligned.push(other, false, rows(&[2, 3, 20]), 3).unwrap();
        // Stream 1 is not caught up: once its rows before 20 are out, stream 0 goes on to 9,
        // then nothing more until stream 1 is read again (it may have rows before 20).
        let ready = aligned.pop_ready(|_| false, 100).unwrap();
        assert_eq!(times(&ready), [(0, vec![1]), (1, vec![2, 3]), (0, vec![5, 9])]);
        assert_eq!(ready.last().unwrap().progress, [(0, 3)]);
        // Caught up, stream 0 no longer holds stream 1 back.
        let ready = aligned.pop_ready(|_| true, 100).unwrap();
        assert_eq!(times(&ready), [(1, vec![20])]);
        assert!(aligned.all_empty());
    }

    #[test]
    fn a_tracked_stream_nothing_was_read_of_holds_the_others_until_caught_up() {
        let mut aligned = Aligned::default();
        let other = crate::log::follower::stream_id(1, 0);
        aligned.push(0, false, rows(&[1, 5]), 2).unwrap();
        // Untracked, a stream nothing was read of is not waited for…
        assert_eq!(times(&aligned.pop_ready(|_| false, 100).unwrap()), [(0, vec![1, 5])]);
        aligned.push(0, false, rows(&[7]), 3).unwrap();
        aligned.track(other);
        // …tracked, it is, until it is caught up.
        assert!(aligned.pop_ready(|s| s != other, 100).unwrap().is_empty());
        assert_eq!(times(&aligned.pop_ready(|_| true, 100).unwrap()), [(0, vec![7])]);
    }

    #[test]
    fn partitions_of_one_input_take_turns_when_asked() {
        let mut aligned = Aligned::interleaving_partitions();
        let mut marked = rows(&[2, 4, 6]);
        marked.tombstones = Some(BooleanArray::from(vec![true, false, false]));
        aligned.push(1, false, marked, 3).unwrap();
        aligned.push(0, false, rows(&[1, 3, 5]), 3).unwrap();
        let ready = aligned.pop_ready(|_| true, 100).unwrap();
        // Gathered into one batch, tombstone marks with their rows.
        assert_eq!(times(&ready), [(0, vec![1, 2, 3, 4, 5, 6])]);
        let marks = ready[0].rows.tombstones.as_ref().expect("marks");
        assert_eq!((0..6).map(|i| marks.value(i)).collect::<Vec<_>>(), [false, true, false, false, false, false]);
    }

    #[test]
    fn partitions_of_one_input_do_not_interleave_row_by_row() {
        let mut aligned = Aligned::default();
        aligned.push(0, false, rows(&[1, 3, 5]), 3).unwrap();
        aligned.push(1, false, rows(&[2, 4, 6]), 3).unwrap();
        let ready = aligned.pop_ready(|_| true, 100).unwrap();
        // One batch of the input's rows, partition by partition.
        assert_eq!(times(&ready), [(0, vec![1, 3, 5, 2, 4, 6])]);
        assert_eq!(ready[0].progress, [(0, 3), (1, 3)]);
    }
}
