//! Decoding fetched records into batches, on every core when there are many, with the
//! records that do not decode noted for the processing log.

use std::sync::Arc;

use super::{QueryState, Reporter, TaskError, join_error};
use crate::catalog::Source;
use crate::engine::offsets::Positions;
use crate::engine::operator::TimedBatch;
use crate::engine::source::decode;
use crate::log::Record;

/// Records of one partition to decode, and whether they only rebuild state.
pub(super) struct Piece {
    pub(super) stream: u32,
    pub(super) replay: bool,
    pub(super) records: Vec<Record>,
}

/// Fetches cut into pieces at the commit: records below it were written before, and only
/// rebuild state.
pub(super) fn split_replayed(fetches: Vec<(u32, Vec<Record>)>, replay_until: &Positions) -> Vec<Piece> {
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
pub(super) async fn decode_noting(
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
pub(super) fn note_errors(
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
pub(super) static CORES: std::sync::LazyLock<usize> =
    std::sync::LazyLock::new(|| std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get));

/// Below this many records, pieces are decoded on the task's own thread.
pub(super) const PARALLEL_DECODE_RECORDS: usize = 2048;

/// `work` done on `items`, its results in order. Below `inline_below` (by `size`), on this
/// thread; otherwise on every core: the items are cut into runs of consecutive items of
/// about equal size, each done on a thread of the blocking pool, except the first when
/// `first_here` (then this thread does it meanwhile).
pub(super) async fn on_every_core<T, R>(
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
pub(super) async fn decode_pieces(
    inputs: &[Arc<Source>],
    schemas: &[datafusion::arrow::datatypes::SchemaRef],
    pieces: Vec<Piece>,
    share: bool,
) -> Result<Vec<(Piece, crate::engine::source::DecodedRows)>, TaskError> {
    use crate::log::follower::split_stream_id;
    for piece in &pieces {
        if let Some(input) = inputs.get(split_stream_id(piece.stream).0) {
            crate::engine::source::prefetch(input, &piece.records).await;
        }
    }
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
pub(super) const COMBINE_BELOW_ROWS: usize = 1024;

/// Batches of decoded pieces (each with its input and whether it is replayed), in order:
/// consecutive small pieces of one input (replayed or not) become one batch, as far as
/// [`COMBINE_BELOW_ROWS`] rows, and bigger ones go on as they are (copying them would cost
/// more than it saves).
pub(super) fn batches_of(
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
pub(super) fn combine(
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
