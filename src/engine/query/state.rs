//! How a query is doing, shared by its tasks and its owner: status, positions, metrics.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use crate::engine::offsets::Positions;

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
    pub(super) status: Mutex<QueryStatus>,
    /// How far the input has been read and its output written, per partition.
    pub(super) written: Mutex<Positions>,
    /// False once the query was dropped without being stopped (see
    /// [`CheckpointStore::write_guarded`]).
    pub(super) alive: Mutex<bool>,
    /// How far the input is covered by a checkpoint on disk (`None`: it takes none).
    pub(super) checkpointed: Mutex<Option<Positions>>,
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
    pub(super) snapshot_micros: AtomicU64,
    pub(super) write_micros: AtomicU64,
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

    pub(super) fn set_status(&self, status: QueryStatus) {
        if let Ok(mut s) = self.status.lock() {
            // The first error is the one to report.
            if !matches!(*s, QueryStatus::Error(_)) {
                *s = status;
            }
        }
        self.progressed.notify_waiters();
    }

    pub(super) fn fail(&self, id: &str, stage: &str, error: impl std::fmt::Display) {
        tracing::error!(query = id, stage, %error, "query failed");
        self.set_status(QueryStatus::Error(format!("{stage}: {error}")));
    }
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
