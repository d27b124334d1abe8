//! A join's state as Arrow batches, for checkpoints, and back.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, BooleanArray, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema};

use super::{Buffered, ForeignRow, Join, KeyRef, Pending, Row, RowRef, gather};
use crate::engine::plan::{PlanError, evaluate_isolating, guarded};

/// A join operator's state, as Arrow batches: per side, its stored rows (the side's columns,
/// then `__store`: 0 a table row, 1 a stream row in the window, 2 a row waiting for its window
/// to close, 3 a foreign-key join's left row; `__time`, `__sequence` and `__matched`), and the
/// clocks. Keys are not stored: restoring computes them from the rows again.
#[derive(Debug, Clone)]
pub struct JoinSnapshot {
    pub sides: [RecordBatch; 2],
    pub store_time: [i64; 2],
    pub sequence: u64,
    pub stream_time: i64,
}

pub(super) const STORE_TABLE: i8 = 0;
pub(super) const STORE_BUFFER: i8 = 1;
pub(super) const STORE_PENDING: i8 = 2;
pub(super) const STORE_FOREIGN: i8 = 3;

impl Join {
    /// Takes back the batches of [`crate::engine::operator::Operator::snapshot`].
    pub(super) fn restore_checkpoint(&mut self, state: Vec<RecordBatch>) -> Result<(), PlanError> {
        let [left, right, clocks]: [RecordBatch; 3] =
            state.try_into().map_err(|_| PlanError::user("a join's checkpoint has three batches"))?;
        let clock = |i: usize| -> Result<i64, PlanError> {
            let column = clocks.columns().get(i).and_then(|c| c.as_any().downcast_ref::<Int64Array>());
            column
                .filter(|c| c.len() == 1)
                .map(|c| c.value(0))
                .ok_or_else(|| PlanError::user("a join's clocks are damaged"))
        };
        let snapshot = JoinSnapshot {
            sides: [left, right],
            store_time: [clock(0)?, clock(1)?],
            sequence: clock(2)? as u64,
            stream_time: clock(3)?,
        };
        Join::restore(self, &snapshot)
    }
}

/// The columns of a join checkpoint's clocks batch.
pub(super) const CLOCKS: [&str; 4] = ["store_time_0", "store_time_1", "sequence", "stream_time"];

impl Join {
    /// The operator's state (see [`JoinSnapshot`]).
    pub fn snapshot(&self) -> Result<JoinSnapshot, PlanError> {
        guarded(|| {
            let mut sides = Vec::with_capacity(2);
            for side in 0..2 {
                // (store, row, sequence, matched)
                let mut entries: Vec<(i8, &Row, u64, bool)> = Vec::new();
                entries.extend(self.tables[side].values().map(|r| (STORE_TABLE, r, 0, false)));
                for rows in self.buffers[side].values() {
                    entries.extend(rows.iter().map(|b| (STORE_BUFFER, &b.row, b.sequence, b.matched)));
                }
                entries.extend(
                    self.pending.iter().filter(|p| p.side == side).map(|p| (STORE_PENDING, &p.row, p.sequence, false)),
                );
                if side == 0 {
                    entries.extend(self.foreign_rows.values().map(|f| (STORE_FOREIGN, &f.row, 0, false)));
                }
                sides.push(self.snapshot_side(side, &entries)?);
            }
            let [left, right]: [RecordBatch; 2] =
                sides.try_into().map_err(|_| PlanError::user("a join has two sides"))?;
            Ok(JoinSnapshot {
                sides: [left, right],
                store_time: self.store_time,
                sequence: self.sequence,
                stream_time: self.stream_time,
            })
        })?
    }

    pub(super) fn snapshot_side(
        &self,
        side: usize,
        entries: &[(i8, &Row, u64, bool)],
    ) -> Result<RecordBatch, PlanError> {
        use datafusion::arrow::array::Int8Array;
        let schema = &self.step.sides[side];
        let rows: Vec<Option<&RowRef>> = entries.iter().map(|e| Some(&e.1.row)).collect();
        let mut columns = gather(&self.nulls[side], &rows)?.columns().to_vec();
        columns.push(Arc::new(Int8Array::from(entries.iter().map(|e| e.0).collect::<Vec<_>>())));
        columns.push(Arc::new(Int64Array::from(entries.iter().map(|e| e.1.time).collect::<Vec<_>>())));
        columns.push(Arc::new(Int64Array::from(entries.iter().map(|e| e.2 as i64).collect::<Vec<_>>())));
        columns.push(Arc::new(BooleanArray::from(entries.iter().map(|e| e.3).collect::<Vec<_>>())));
        let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new("__store", DataType::Int8, false));
        fields.push(Field::new("__time", DataType::Int64, false));
        fields.push(Field::new("__sequence", DataType::Int64, false));
        fields.push(Field::new("__matched", DataType::Boolean, false));
        Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?)
    }

    /// Takes the state of a [`JoinSnapshot`] of the same join step (replacing any held).
    pub fn restore(&mut self, snapshot: &JoinSnapshot) -> Result<(), PlanError> {
        guarded(|| {
            self.tables = [HashMap::new(), HashMap::new()];
            self.buffers = [HashMap::new(), HashMap::new()];
            self.pending.clear();
            self.foreign_rows.clear();
            self.foreign_index.clear();
            for (side, batch) in snapshot.sides.iter().enumerate() {
                self.restore_side(side, batch)?;
            }
            for buffer in self.buffers.iter_mut().flat_map(|b| b.values_mut()) {
                buffer.make_contiguous().sort_by_key(|b| b.sequence);
            }
            self.pending.sort_by_key(|p| p.sequence);
            self.store_time = snapshot.store_time;
            self.sequence = snapshot.sequence;
            self.stream_time = snapshot.stream_time;
            Ok(())
        })?
    }

    pub(super) fn restore_side(&mut self, side: usize, batch: &RecordBatch) -> Result<(), PlanError> {
        let schema = self.step.sides[side].clone();
        let width = schema.fields().len();
        if batch.num_columns() != width + 4 {
            return Err(PlanError::user("the snapshot is not of this join"));
        }
        let rows = RecordBatch::try_new(schema, batch.columns()[..width].to_vec())?;
        let shared = Arc::new(rows.clone());
        let n = rows.num_rows();
        if n == 0 {
            return Ok(());
        }
        let store = batch.column(width).as_primitive::<datafusion::arrow::datatypes::Int8Type>().clone();
        let time = batch.column(width + 1).as_primitive::<Int64Type>().clone();
        let sequence = batch.column(width + 2).as_primitive::<Int64Type>().clone();
        let matched = batch.column(width + 3).as_boolean().clone();
        // The keys, computed as `update` computes them.
        let step = Arc::clone(&self.step);
        let key = evaluate_isolating(&step.keys[side], &rows, &mut self.errors)?;
        let key = if key.data_type() == &self.key_type {
            key
        } else {
            datafusion::arrow::compute::cast(&key, &self.key_type)?
        };
        let mut key_columns = vec![key.clone()];
        if let Some(windows) = &step.window_keys {
            for bound in &windows[side] {
                key_columns.push(evaluate_isolating(bound, &rows, &mut self.errors)?);
            }
        }
        let keys = self.converter.convert_columns(&key_columns)?;
        let primary = match (&step.left_primary_key, side) {
            (Some(primary), 0) => Some(evaluate_isolating(primary, &rows, &mut self.errors)?),
            _ => None,
        };
        for i in 0..n {
            let row = Row { row: RowRef { batch: Arc::clone(&shared), index: i }, time: time.value(i) };
            let id = keys.row(i).owned();
            let sequence = u64::try_from(sequence.value(i)).unwrap_or(0);
            match store.value(i) {
                STORE_TABLE => {
                    self.tables[side].insert(id, row);
                }
                STORE_BUFFER => self.buffers[side].entry(id).or_default().push_back(Buffered {
                    row,
                    matched: matched.value(i),
                    sequence,
                }),
                STORE_PENDING => {
                    self.pending.push(Pending { side, sequence, row, key: KeyRef { array: key.clone(), index: i } })
                }
                STORE_FOREIGN => {
                    let (Some(primary), Some(converter)) = (&primary, &self.primary_converter) else {
                        return Err(PlanError::user("the snapshot is not of this join"));
                    };
                    let pk = primary.slice(i, 1);
                    let pk_id = converter.convert_columns(std::slice::from_ref(&pk))?.row(0).owned();
                    let foreign = (!key.is_null(i)).then_some(id);
                    if let Some(fk) = &foreign {
                        self.foreign_index.entry(fk.clone()).or_default().insert(pk_id.clone());
                    }
                    self.foreign_rows.insert(pk_id, ForeignRow { row, key: KeyRef::of(pk), foreign });
                }
                other => return Err(PlanError::user(format!("unknown join store {other} in the snapshot"))),
            }
        }
        Ok(())
    }
}
