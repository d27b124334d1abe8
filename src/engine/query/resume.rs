//! Where a query goes on from when it starts: its latest checkpoint (the operators' state
//! with it, its output cut back to it), or its committed offsets.

use datafusion::arrow::array::RecordBatch;

use super::Checkpointing;
use crate::engine::checkpoint::{Checkpoint, CheckpointStore};
use crate::engine::offsets::{OffsetStore, Positions};
use crate::log::{Log, LogError};

/// Where a checkpointing query goes on from: its latest checkpoint's positions (partitions
/// added since from `start`), its operators' states (taken out of `checkpoints.latest`) and
/// the next epoch; its output has been cut back to the checkpoint already. Without a
/// checkpoint (the first start) it takes checkpoint 0 at `start`.
pub(super) async fn resume_from_checkpoint(
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
        checkpoints.store.write(first).await?;
        return Ok(Resumed { positions: start.to_vec(), restored: None, next_epoch: 1, sink });
    };
    let positions = start.iter().map(|&(p, o)| (p, checkpoint.sources.get(&p).copied().unwrap_or(o))).collect();
    tracing::info!(query = query.id, epoch = checkpoint.epoch, "resuming from a checkpoint");
    // Output past the checkpoint is cut off, unless others write the topic too.
    let sink = output_ends(log, query.sink_topic).await?;
    Ok(Resumed { positions, restored: Some(checkpoint.operators), next_epoch: checkpoint.epoch + 1, sink })
}

/// Where a checkpointing query goes on from.
pub(super) struct Resumed {
    pub(super) positions: Vec<(u32, u64)>,
    pub(super) restored: Option<Vec<Option<Vec<RecordBatch>>>>,
    pub(super) next_epoch: u64,
    /// Where its output ends as it starts.
    pub(super) sink: Positions,
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
    let Some(checkpoint) = store.latest().await? else {
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
pub(super) async fn resume_from_commit(
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
pub(super) struct QueryIdentity<'a> {
    pub(super) id: &'a str,
    pub(super) sink_topic: &'a str,
    /// How many operators it has.
    pub(super) operators: usize,
    pub(super) rebuild_state: bool,
}

/// Where each partition of `topic` ends.
pub(super) async fn output_ends(log: &dyn Log, topic: &str) -> Result<Positions, LogError> {
    let mut ends = Positions::new();
    for partition in 0..log.partition_count(topic).await? {
        ends.insert(partition, log.latest_offset(topic, partition).await?);
    }
    Ok(ends)
}
