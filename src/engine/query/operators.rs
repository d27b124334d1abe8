//! The operator task: runs the operator chain over each batch, and snapshots it at barriers.

use std::sync::atomic::Ordering;
use std::time::Instant;

use datafusion::arrow::array::RecordBatch;
use tokio::sync::mpsc;

use super::{QueryState, Reporter, TaskError};
use crate::engine::operator::{Message, Operator, run_chain};
use crate::engine::plan::RowError;

/// What the operator task runs.
pub(super) struct OperatorTask {
    pub(super) chain: Vec<Box<dyn Operator>>,
    /// The operators' states to resume from.
    pub(super) restored: Option<Vec<Option<Vec<RecordBatch>>>>,
    /// Barriers take snapshots (the query checkpoints).
    pub(super) snapshots: bool,
    pub(super) state_limit: Option<u64>,
    /// Rows go through one at a time (see [`super::QuerySpec::every_update`]).
    pub(super) every_update: bool,
    pub(super) reporter: Reporter,
}

/// Runs the operator chain over the batches, in order. A barrier takes each operator's
/// state (when checkpointing) and checks the state limit. `restored` holds the states of the
/// checkpoint the query resumes from.
pub(super) async fn run_operators(
    task: OperatorTask,
    mut input: mpsc::Receiver<Message>,
    out: mpsc::Sender<Message>,
    state: &QueryState,
) -> Result<(), TaskError> {
    let OperatorTask { mut chain, restored, snapshots, state_limit, every_update, reporter } = task;
    let reporter = &reporter;
    if let Some(restored) = restored {
        if restored.len() != chain.len() {
            return Err(TaskError::Plan(crate::engine::plan::PlanError::internal(format!(
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
