//! Stream-stream joins within a window (`WITHIN … [GRACE PERIOD …]`): rows are buffered per
//! key for as long as the other side can still match them; outer joins emit unmatched rows
//! once their window has closed.

use std::collections::{HashMap, VecDeque};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::row::OwnedRow;
use datafusion::logical_expr::JoinType;

use super::{Buffered, Join, Joined, KeyRef, Pending, Row, retention};
use crate::engine::plan::PlanError;

/// Stored rows are compacted (see `Join::compact_if_sparse`) only beyond this many.
pub(super) const COMPACT_MIN_ROWS: usize = 65_536;

impl Join {
    /// A stream row of a stream-stream join, as Kafka Streams' `KStreamKStreamJoin` takes it
    /// (with KIP-633's grace periods): it joins the other side's visible rows of its key within
    /// the window (oldest first), then waits in its own side's store. An outer side's row
    /// that joins nothing is emitted padded with nulls: at once without a grace period (the
    /// legacy "spurious" results), else once its window has closed.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn stream_stream(
        &mut self,
        side: usize,
        key: OwnedRow,
        row: Row,
        key_value: KeyRef,
        before_ms: i64,
        after_ms: i64,
        grace_ms: Option<i64>,
        results: &mut Vec<Joined>,
    ) -> Result<(), PlanError> {
        let kind = self.step.kind;
        let retention = retention(before_ms, after_ms, grace_ms);
        self.stream_time = self.stream_time.max(row.time);
        // How long after its time a row of `side` can still be joined by the other side.
        let after_of = |side: usize| if side == 0 { after_ms } else { before_ms };
        if let Some(grace) = grace_ms
            && row.time == self.stream_time
        {
            self.emit_closed(after_of(side), grace, results);
        }
        // A left row at t joins right rows in [t - before, t + after]; a right row at t, left
        // rows in [t - after, t + before].
        let (from, to) = if side == 0 {
            (row.time.saturating_sub(before_ms), row.time.saturating_add(after_ms))
        } else {
            (row.time.saturating_sub(after_ms), row.time.saturating_add(before_ms))
        };
        let visible_after = self.store_time[1 - side].saturating_sub(retention);
        let mut matched = false;
        let mut joined_pending: Vec<u64> = Vec::new();
        if let Some(others) = self.buffers[1 - side].get_mut(&key) {
            let mut hits: Vec<&mut Buffered> = others
                .iter_mut()
                .filter(|o| o.row.time >= from && o.row.time <= to && o.row.time > visible_after)
                .collect();
            hits.sort_by_key(|o| (o.row.time, o.sequence));
            for other in hits {
                matched = true;
                if !other.matched {
                    joined_pending.push(other.sequence);
                }
                other.matched = true;
                let (left, right) = if side == 0 { (&row, &other.row) } else { (&other.row, &row) };
                results.push(Joined {
                    left: Some(left.row.clone()),
                    right: Some(right.row.clone()),
                    key: key_value.clone(),
                    time: left.time.max(right.time),
                    deleted: false,
                });
            }
        }
        if !joined_pending.is_empty() {
            self.pending.retain(|p| !joined_pending.contains(&p.sequence));
        }
        let outer_for_this_side = match kind {
            JoinType::Left => side == 0,
            JoinType::Right => side == 1,
            JoinType::Full => true,
            _ => false,
        };
        self.sequence += 1;
        let sequence = self.sequence;
        if !matched && outer_for_this_side {
            let padded = |row: &Row| {
                let (left, right) =
                    if side == 0 { (Some(row.row.clone()), None) } else { (None, Some(row.row.clone())) };
                Joined { left, right, key: key_value.clone(), time: row.time, deleted: false }
            };
            if grace_ms.is_none() || row.time.saturating_add(after_of(side)) < self.stream_time {
                results.push(padded(&row));
            } else {
                self.pending.push(Pending { side, sequence, row: row.clone(), key: key_value.clone() });
            }
        }
        self.store_time[side] = self.store_time[side].max(row.time);
        self.oldest[side] = self.oldest[side].min(row.time);
        self.buffers[side].entry(key).or_default().push_back(Buffered { row, matched, sequence });
        Ok(())
    }

    /// Rows no longer visible (older than `retention` before their store's time) leave the
    /// stores. Matching never sees them anyway, so they go in bulk: once the oldest is an
    /// eighth of the retention past it, not a few at every batch.
    pub(super) fn evict(&mut self, retention: i64) {
        let slack = (retention / 8).max(1);
        for (s, buffer) in self.buffers.iter_mut().enumerate() {
            let horizon = self.store_time[s].saturating_sub(retention);
            if self.oldest[s] > horizon.saturating_sub(slack) {
                continue; // nothing old enough
            }
            let mut oldest = i64::MAX;
            buffer.retain(|_, rows| {
                while rows.front().is_some_and(|r| r.row.time <= horizon) {
                    rows.pop_front();
                }
                if let Some(first) = rows.front() {
                    oldest = oldest.min(first.row.time);
                }
                !rows.is_empty()
            });
            self.oldest[s] = oldest;
        }
    }

    /// Stored rows share the batches they came in; when those batches hold many more rows
    /// than are still stored (a table's rows replaced, a window's rows gone), the stored rows
    /// are copied into batches of their own, so that memory follows the state's size.
    pub(super) fn compact_if_sparse(&mut self) -> Result<(), PlanError> {
        // Looking costs a pass over the stored rows: it is done after as many rows have been
        // stored (or deleted) as were live at the last look (and at least 65,536).
        if self.stored_since_check < self.next_check {
            return Ok(());
        }
        let live = self.tables.iter().map(HashMap::len).sum::<usize>()
            + self.buffers.iter().flat_map(|b| b.values()).map(VecDeque::len).sum::<usize>()
            + self.pending.len()
            + self.foreign_rows.len();
        self.stored_since_check = 0;
        self.next_check = live.max(COMPACT_MIN_ROWS);
        let held = self.over_held_batches(RecordBatch::num_rows);
        if held > 2 * live + COMPACT_MIN_ROWS {
            let snapshot = Join::snapshot(self)?;
            Join::restore(self, &snapshot)?;
        }
        Ok(())
    }

    /// Pending rows whose window has closed (`stream time > t + after + grace`, `after` of
    /// the processing side, as Kafka Streams has it) are emitted padded with nulls, oldest
    /// first, up to the first still open.
    pub(super) fn emit_closed(&mut self, after: i64, grace: i64, results: &mut Vec<Joined>) {
        self.pending.sort_by_key(|p| (p.row.time, p.sequence));
        let stream_time = self.stream_time;
        let closed = self
            .pending
            .iter()
            .take_while(|p| stream_time > p.row.time.saturating_add(after).saturating_add(grace))
            .count();
        for p in self.pending.drain(..closed) {
            let (left, right) = if p.side == 0 { (Some(p.row.row), None) } else { (None, Some(p.row.row)) };
            results.push(Joined { left, right, key: p.key, time: p.row.time, deleted: false });
        }
    }
}
