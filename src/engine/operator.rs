//! The shape every operator shares, and the messages that flow between a query's tasks.
//!
//! A query is a source task, an operator task running a chain of [`Operator`]s, and a sink
//! task, joined by bounded channels of [`Message`]s. Data moves as [`TimedBatch`]es; a
//! [`Message::Progress`] marker follows the batches decoded from a partition's records and
//! says how far that partition has been read, so that the sink can commit source offsets
//! only once everything before the marker has been written. Operators never see the markers:
//! the operator task forwards them in order. [`Message::Barrier`]s travel the same way: at
//! each, the operator task snapshots the operators' state for a checkpoint.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;

pub use super::plan::TimedBatch;
use super::plan::{PlanError, StatelessPlan};

/// What flows between a query's tasks.
#[derive(Debug)]
pub enum Message {
    Data(TimedBatch),
    /// Every record of `partition` below `next_offset` is in the data sent before this.
    Progress {
        partition: u32,
        next_offset: u64,
        /// When the records were read (the sink measures processing latency from it).
        read_at: std::time::Instant,
    },
    /// A checkpoint barrier: everything read before it, and nothing after, is in the data
    /// and progress sent before it. The operator task fills in `states` (each operator's
    /// state having processed that data); the sink checkpoints (see [`super::checkpoint`]).
    Barrier {
        epoch: u64,
        states: Vec<Option<Vec<RecordBatch>>>,
    },
}

/// One step of a query's processing.
///
/// `process` is the one required method: it takes a batch and pushes what it produces onto
/// `out` (nothing at all rather than an empty batch). An error stops the query: it means
/// the query cannot go on (a bug, or an expression that fails on every row), not that one
/// record was bad — bad records are dropped by the source and counted.
pub trait Operator: Send {
    fn process(&mut self, batch: TimedBatch, out: &mut Vec<TimedBatch>) -> Result<(), PlanError>;

    /// A short description for `EXPLAIN`.
    fn describe(&self) -> String;

    /// The operator's state as Arrow batches, for a checkpoint; `None` for an operator that
    /// keeps none (the default).
    fn snapshot(&mut self) -> Result<Option<Vec<RecordBatch>>, PlanError> {
        Ok(None)
    }

    /// Takes back the state of a [`Operator::snapshot`] of the same operator (of the same
    /// query), replacing any held.
    fn restore(&mut self, state: Vec<RecordBatch>) -> Result<(), PlanError> {
        if state.is_empty() { Ok(()) } else { Err(PlanError::user(format!("{} keeps no state", self.describe()))) }
    }

    /// The rows an expression failed on since the last call (for the processing log).
    fn take_errors(&mut self) -> Vec<super::plan::RowError> {
        Vec::new()
    }

    /// About how many bytes of memory the operator's state holds (for the state limit and
    /// metrics); 0 for a stateless one.
    fn state_bytes(&self) -> usize {
        0
    }
}

/// Filter and projection: a [`StatelessPlan`] applied per batch.
pub struct Project {
    plan: Arc<StatelessPlan>,
    description: String,
    /// Rows an expression failed on, not yet taken.
    errors: Vec<super::plan::RowError>,
}

impl Project {
    pub fn new(plan: Arc<StatelessPlan>, description: String) -> Self {
        Project { plan, description, errors: Vec::new() }
    }
}

impl Operator for Project {
    fn process(&mut self, batch: TimedBatch, out: &mut Vec<TimedBatch>) -> Result<(), PlanError> {
        let (mut projected, errors) = self.plan.apply_reporting(&batch.rows, batch.tombstones.as_ref())?;
        // Replayed rows were reported when first read.
        if !batch.replay {
            self.errors.extend(errors);
        }
        projected.replay = batch.replay;
        if projected.rows.num_rows() > 0 {
            out.push(projected);
        }
        Ok(())
    }

    fn describe(&self) -> String {
        self.description.clone()
    }

    fn take_errors(&mut self) -> Vec<super::plan::RowError> {
        std::mem::take(&mut self.errors)
    }
}

/// Drops the rows of records without a value: a push query over a stream deems them invalid
/// and ignores them, as ksqlDB does (a persistent query writes them on).
pub struct DropDeletions;

impl Operator for DropDeletions {
    fn process(&mut self, batch: TimedBatch, out: &mut Vec<TimedBatch>) -> Result<(), PlanError> {
        let Some(tombstones) = &batch.tombstones else {
            out.push(batch);
            return Ok(());
        };
        let kept = datafusion::arrow::compute::not(tombstones)?;
        let rows = datafusion::arrow::compute::filter_record_batch(&batch.rows, &kept)?;
        if rows.num_rows() > 0 {
            let timestamps_ms = datafusion::arrow::compute::filter(&batch.timestamps_ms, &kept)?;
            let windows = match &batch.windows {
                Some((start, end)) => Some((
                    datafusion::arrow::compute::filter(start, &kept)?,
                    datafusion::arrow::compute::filter(end, &kept)?,
                )),
                None => None,
            };
            out.push(TimedBatch { rows, timestamps_ms, tombstones: None, windows, ..batch });
        }
        Ok(())
    }

    fn describe(&self) -> String {
        "drop records without a value".into()
    }
}

/// Runs `batch` through `operators` in order.
pub fn run_chain(operators: &mut [Box<dyn Operator>], batch: TimedBatch) -> Result<Vec<TimedBatch>, PlanError> {
    let mut current = vec![batch];
    for operator in operators.iter_mut() {
        let mut next = Vec::with_capacity(current.len());
        for batch in current {
            operator.process(batch, &mut next)?;
        }
        if next.is_empty() {
            return Ok(next);
        }
        current = next;
    }
    Ok(current)
}
