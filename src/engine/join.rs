//! Joins of two sources: stream-stream (`WITHIN`), stream-table and table-table, planned
//! into a [`JoinPlan`] by [`crate::planner::join`] and run by [`Join`].
//!
//! The joined rows are the left input's row (its columns and pseudo columns, then
//! `ROWKEY`, the join key), then the right input's row: the schema of DataFusion's `Join`
//! node. A side without a match is nulls.
//!
//! Names follow ksqlDB: `SELECT *` and `l.*` name columns `L_COL`; a qualified column
//! `l.col` is `L_COL`, a bare one `COL`; any other expression `KSQL_COL_n`.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use datafusion::arrow::row::{OwnedRow, RowConverter, SortField};
use datafusion::logical_expr::JoinType;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::sql::sqlparser::ast::Expr;

use super::operator::{Operator, TimedBatch};
use super::plan::{PlanError, RowError, evaluate_isolating, guarded};

/// The synthetic key column of a join's rows: the join key (either side's, for an outer
/// join), as ksqlDB names it.
pub const ROWKEY: &str = "ROWKEY";

/// One input of a join, as planning needs it.
#[derive(Debug, Clone)]
pub struct JoinInput {
    /// The source's name.
    pub name: String,
    pub row_schema: SchemaRef,
    /// `SELECT *`'s columns (the source's own, without pseudo columns).
    pub star: Vec<String>,
    pub table: bool,
    /// The source's key columns.
    pub key: Vec<String>,
    /// A windowed source's window: its type (upper-cased) and size, if it has one.
    pub window: Option<(String, Option<i64>)>,
}

/// What kind of join, by its inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinShape {
    /// `WITHIN`: both sides buffered for the window.
    StreamStream { before_ms: i64, after_ms: i64, grace_ms: Option<i64> },
    /// The stream's rows look the table's current rows up.
    StreamTable,
    /// Both sides keyed stores; every change emits.
    TableTable,
    /// A table's rows look a table's row up by a foreign key (a column of theirs that is
    /// not their key): the result is keyed by the left table's key.
    ForeignKey,
}

/// One two-way join of a chain: the rows joined so far (or the first source) with the
/// next source.
#[derive(Debug)]
pub struct JoinStep {
    pub shape: JoinShape,
    pub kind: JoinType,
    /// Per side (left, right): the join key, on that side's rows.
    pub keys: [Arc<dyn PhysicalExpr>; 2],
    /// Per side: its row schema (the first source's with `ROWKEY` after it; later, the rows
    /// joined so far).
    pub sides: [SchemaRef; 2],
    /// The joined rows: left row, then right row.
    pub joined: SchemaRef,
    /// The query input whose rows are the right side (the left side is input 0).
    pub right_input: usize,
    /// Whether the left side is joined on its key (else it is re-keyed by its expression).
    pub left_keyed: bool,
    /// A foreign-key join's left key (the left table's primary key, on its rows).
    pub left_primary_key: Option<Arc<dyn PhysicalExpr>>,
    /// Windowed sources: per side, its rows' WINDOWSTART and WINDOWEND, which a match
    /// must share as well as the key (the record key holds the window).
    pub window_keys: Option<[[Arc<dyn PhysicalExpr>; 2]; 2]>,
}

/// A join of two or more sources, planned: a chain of two-way joins (left-deep, in FROM
/// order), then WHERE and the projection.
#[derive(Debug)]
pub struct JoinPlan {
    pub steps: Vec<Arc<JoinStep>>,
    /// WHERE, and the ON clauses' conditions beyond the keys, on the last step's rows.
    pub filter: Option<Arc<dyn PhysicalExpr>>,
    pub projection: Vec<Arc<dyn PhysicalExpr>>,
    pub output: SchemaRef,
    /// The projection as written, qualifiers kept (`L.A`) and bare columns qualified by
    /// their source, one per output column.
    pub items: Vec<Expr>,
    /// Per step: its ON expressions, the left side's then the right source's (qualified).
    pub on: Vec<[Expr; 2]>,
    /// Per step: its ON condition as written (bare columns qualified), for messages.
    pub conditions: Vec<String>,
    /// The key is ROWKEY, no source's column: the last join is FULL OUTER, or no column
    /// holds its key.
    pub synthetic_key: bool,
    /// The name of the key column the first source's rows carry: ROWKEY, or ROWKEY_n when
    /// a source has a column of that name (the synthetic key's name).
    pub rowkey: String,
    /// The columns (qualified, as written) that hold the result's key: the last join's
    /// sides that are columns, and the columns that held the rows' key before it if the
    /// last join is on that key.
    pub key_columns: Vec<Expr>,
    /// The output column that is the key, if the projection has one (set by the caller):
    /// its values are always the join key, whichever side's column it is named after.
    pub key_output: Option<usize>,
}

impl JoinPlan {
    pub fn kinds(&self) -> Vec<JoinType> {
        self.steps.iter().map(|s| s.kind).collect()
    }
}

/// How long a stream-stream join keeps a row: the window both ways and the grace period
/// (without one, ksqlDB's legacy default: 24 hours less twice the window, at least 0).
pub(crate) fn retention(before_ms: i64, after_ms: i64, grace_ms: Option<i64>) -> i64 {
    let grace = grace_ms.unwrap_or_else(|| (24 * 3_600_000 - 2 * before_ms).max(0));
    before_ms.saturating_add(after_ms).saturating_add(grace)
}

/// A row of a batch (shared, not copied): joined rows are gathered from such references.
#[derive(Debug, Clone)]
struct RowRef {
    batch: Arc<RecordBatch>,
    index: usize,
}

/// A row of nulls of `schema`.
fn null_row(schema: &SchemaRef) -> Result<RecordBatch, PlanError> {
    let columns = schema.fields().iter().map(|f| datafusion::arrow::array::new_null_array(f.data_type(), 1)).collect();
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// Rows (or, for `None`, the row of `nulls`) of batches of one schema, gathered into one.
fn gather(nulls: &RecordBatch, refs: &[Option<&RowRef>]) -> Result<RecordBatch, PlanError> {
    let mut batches: Vec<&RecordBatch> = vec![nulls];
    let mut seen: HashMap<*const RecordBatch, usize> = HashMap::new();
    let mut indices: Vec<(usize, usize)> = Vec::with_capacity(refs.len());
    for r in refs {
        indices.push(match r {
            None => (0, 0),
            Some(r) => {
                let at = *seen.entry(Arc::as_ptr(&r.batch)).or_insert_with(|| {
                    batches.push(r.batch.as_ref());
                    batches.len() - 1
                });
                (at, r.index)
            }
        });
    }
    Ok(datafusion::arrow::compute::interleave_record_batch(&batches, &indices)?)
}

/// A side's row: a row of a batch of that side's schema, and its event time.
#[derive(Debug, Clone)]
struct Row {
    row: RowRef,
    time: i64,
}

/// A buffered stream row of a stream-stream join.
#[derive(Debug, Clone)]
struct Buffered {
    row: Row,
    /// Whether it has joined a row of the other side (an outer join's null-padded result
    /// is for rows that never did).
    matched: bool,
    /// Arrival order.
    sequence: u64,
}

/// An outer side's row that has joined nothing yet, waiting for its window to close.
#[derive(Debug, Clone)]
struct Pending {
    side: usize,
    sequence: u64,
    row: Row,
    key: KeyRef,
}

/// A join key: a value of an array of keys (shared, not copied).
#[derive(Debug, Clone)]
struct KeyRef {
    array: ArrayRef,
    index: usize,
}

impl KeyRef {
    /// The first value of a one-value array.
    fn of(array: ArrayRef) -> Self {
        KeyRef { array, index: 0 }
    }
}

/// One result: a left row and a right row (either may be missing for outer joins), the
/// join key, the timestamp, and whether it is a deletion (a table-table join's tombstone).
struct Joined {
    left: Option<RowRef>,
    right: Option<RowRef>,
    key: KeyRef,
    time: i64,
    deleted: bool,
}

/// A foreign-key join's left row: the row, its key, and the foreign key it names.
#[derive(Debug, Clone)]
struct ForeignRow {
    row: Row,
    key: KeyRef,
    foreign: Option<OwnedRow>,
}

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

/// Stored rows are compacted (see `Join::compact_if_sparse`) only beyond this many.
const COMPACT_MIN_ROWS: usize = 65_536;

const STORE_TABLE: i8 = 0;
const STORE_BUFFER: i8 = 1;
const STORE_PENDING: i8 = 2;
const STORE_FOREIGN: i8 = 3;

/// The join operator: one step of the chain (the last one applies WHERE and the projection).
pub struct Join {
    plan: Arc<JoinPlan>,
    step: Arc<JoinStep>,
    last: bool,
    description: String,
    converter: RowConverter,
    key_type: DataType,
    /// Tables' current rows by join key: the right side of a stream-table join, both sides
    /// of a table-table join.
    tables: [HashMap<OwnedRow, Row>; 2],
    /// Stream-stream: each side's rows within the window, by key, in arrival order.
    buffers: [HashMap<OwnedRow, VecDeque<Buffered>>; 2],
    /// Stream-stream outer joins with a grace period: rows that have not joined yet, waiting
    /// for their window to close (then they are emitted null-padded), in arrival order.
    pending: Vec<Pending>,
    /// Stream-stream: the largest time put into each side's store.
    store_time: [i64; 2],
    /// Stream-stream: rows taken, for arrival order.
    sequence: u64,
    stream_time: i64,
    /// Foreign-key joins: the left table's rows by their key, the keys that name each
    /// foreign key (in key order, for a stable output order), and the left key's encoder.
    foreign_rows: HashMap<OwnedRow, ForeignRow>,
    foreign_index: HashMap<OwnedRow, BTreeSet<OwnedRow>>,
    primary_converter: Option<RowConverter>,
    /// Stream-stream: the oldest time in each side's store (a bound: eviction skips a side
    /// with nothing older than its horizon).
    oldest: [i64; 2],
    /// Rows stored since the last look at how sparse the stores' batches are, and how many
    /// make the next look.
    stored_since_check: usize,
    next_check: usize,
    /// Per side, a row of nulls (an outer join's missing side).
    nulls: [RecordBatch; 2],
    /// Rows an expression failed on, not yet taken (see [`Operator::take_errors`]).
    errors: Vec<RowError>,
}

impl Join {
    /// The operator of step `step` of `plan`.
    pub fn try_new(plan: Arc<JoinPlan>, step: usize, description: String) -> Result<Self, PlanError> {
        let last = step + 1 == plan.steps.len();
        let step = plan.steps.get(step).cloned().ok_or_else(|| PlanError::user(format!("no join step {step}")))?;
        let key_type = step.keys[0].data_type(&step.sides[0])?;
        let primary_converter = match &step.left_primary_key {
            Some(primary) => Some(RowConverter::new(vec![SortField::new(primary.data_type(&step.sides[0])?)])?),
            None => None,
        };
        Ok(Join {
            errors: Vec::new(),
            foreign_rows: HashMap::new(),
            foreign_index: HashMap::new(),
            primary_converter,
            oldest: [i64::MIN, i64::MIN],
            stored_since_check: 0,
            next_check: COMPACT_MIN_ROWS,
            nulls: [null_row(&step.sides[0])?, null_row(&step.sides[1])?],
            converter: RowConverter::new(
                std::iter::once(key_type.clone())
                    .chain(step.window_keys.iter().flat_map(|_| [DataType::Int64, DataType::Int64]))
                    .map(SortField::new)
                    .collect(),
            )?,
            key_type,
            plan,
            step,
            last,
            description,
            tables: [HashMap::new(), HashMap::new()],
            buffers: [HashMap::new(), HashMap::new()],
            pending: Vec::new(),
            store_time: [i64::MIN, i64::MIN],
            sequence: 0,
            stream_time: i64::MIN,
        })
    }

    /// The bytes of the rows the operator holds (tables, windows and waiting rows).
    pub fn state_bytes(&self) -> usize {
        self.over_held_batches(RecordBatch::get_array_memory_size)
    }

    /// `measure` summed over the batches the stored rows are in, each batch once.
    fn over_held_batches(&self, measure: impl Fn(&RecordBatch) -> usize) -> usize {
        let mut batches: HashMap<*const RecordBatch, usize> = HashMap::new();
        let mut count = |r: &Row| {
            batches.entry(Arc::as_ptr(&r.row.batch)).or_insert_with(|| measure(&r.row.batch));
        };
        self.tables.iter().flat_map(|t| t.values()).for_each(&mut count);
        self.buffers.iter().flat_map(|b| b.values()).flatten().for_each(|b| count(&b.row));
        self.pending.iter().for_each(|p| count(&p.row));
        self.foreign_rows.values().for_each(|f| count(&f.row));
        batches.values().sum()
    }

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

    fn snapshot_side(&self, side: usize, entries: &[(i8, &Row, u64, bool)]) -> Result<RecordBatch, PlanError> {
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

    fn restore_side(&mut self, side: usize, batch: &RecordBatch) -> Result<(), PlanError> {
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

    fn update(&mut self, batch: TimedBatch, out: &mut Vec<TimedBatch>) -> Result<(), PlanError> {
        // Rows for a later step pass through.
        if batch.input != 0 && batch.input != self.step.right_input {
            out.push(batch);
            return Ok(());
        }
        let side = usize::from(batch.input != 0);
        let plan = Arc::clone(&self.step);
        let mut rows = batch.rows;
        let n = rows.num_rows();
        if n == 0 {
            return Ok(());
        }
        // A repartitioned side's rows bring their key (see `super::repartition`).
        let key = match super::repartition::take_key(&rows)? {
            Some((source_rows, key)) => {
                rows = source_rows;
                key
            }
            None => evaluate_isolating(&plan.keys[side], &rows, &mut self.errors)?,
        };
        let key = if key.data_type() == &self.key_type {
            key
        } else {
            datafusion::arrow::compute::cast(&key, &self.key_type)?
        };
        // A foreign-key join's rows are keyed by the left table's key.
        let primary = match (&plan.left_primary_key, side) {
            (Some(primary), 0) => Some(evaluate_isolating(primary, &rows, &mut self.errors)?),
            _ => None,
        };
        // Rows of the side's (nullable) schema; the first source's rows get ROWKEY.
        let mut columns = rows.columns().to_vec();
        if side == 0 && columns.len() + 1 == plan.sides[0].fields().len() {
            let rowkey_type = plan.sides[0].field(columns.len()).data_type();
            let rowkey = primary.as_ref().unwrap_or(&key);
            columns.push(if rowkey.data_type() == rowkey_type {
                rowkey.clone()
            } else {
                datafusion::arrow::compute::cast(rowkey, rowkey_type)?
            });
        }
        rows = RecordBatch::try_new(plan.sides[side].clone(), columns)?;
        let shared = Arc::new(rows.clone());
        // A windowed source's rows match on their window too.
        let mut key_columns = vec![key.clone()];
        if let Some(windows) = &plan.window_keys {
            for bound in &windows[side] {
                key_columns.push(evaluate_isolating(bound, &rows, &mut self.errors)?);
            }
        }
        let keys = self.converter.convert_columns(&key_columns)?;
        let times = batch.timestamps_ms.as_primitive::<Int64Type>().clone();
        let deleted = |i: usize| batch.tombstones.as_ref().is_some_and(|t| t.value(i));
        let mut results: Vec<Joined> = Vec::new();
        if plan.shape == JoinShape::ForeignKey {
            for i in 0..n {
                let row = Row { row: RowRef { batch: Arc::clone(&shared), index: i }, time: times.value(i) };
                match &primary {
                    Some(primary) => self.foreign_left(primary, i, &key, &keys, row, deleted(i), &mut results)?,
                    None if key.is_null(i) => {}
                    None => self.foreign_right(keys.row(i).owned(), row, deleted(i), &mut results),
                }
            }
            self.stored_since_check += n;
            self.compact_if_sparse()?;
            if results.is_empty() {
                return Ok(());
            }
            return self.emit(results, batch.replay, out);
        }
        for i in 0..n {
            let row = Row { row: RowRef { batch: Arc::clone(&shared), index: i }, time: times.value(i) };
            let k = KeyRef { array: key.clone(), index: i };
            match plan.shape {
                JoinShape::StreamTable => {
                    if side == 1 {
                        if key.is_null(i) {
                            continue;
                        }
                        if deleted(i) {
                            self.tables[1].remove(&keys.row(i).owned());
                        } else {
                            self.tables[1].insert(keys.row(i).owned(), row);
                        }
                        continue;
                    }
                    if deleted(i) {
                        continue; // no row of a stream
                    }
                    let found = if key.is_null(i) { None } else { self.tables[1].get(&keys.row(i).owned()) };
                    match (found, plan.kind) {
                        (Some(right), _) => results.push(Joined {
                            left: Some(row.row.clone()),
                            right: Some(right.row.clone()),
                            key: k,
                            time: row.time,
                            deleted: false,
                        }),
                        (None, JoinType::Left) => results.push(Joined {
                            left: Some(row.row.clone()),
                            right: None,
                            key: k,
                            time: row.time,
                            deleted: false,
                        }),
                        (None, _) => {}
                    }
                }
                JoinShape::TableTable => {
                    if key.is_null(i) {
                        continue;
                    }
                    let id = keys.row(i).owned();
                    let previous = if deleted(i) {
                        self.tables[side].remove(&id)
                    } else {
                        self.tables[side].insert(id.clone(), row.clone())
                    };
                    if deleted(i) && previous.is_none() {
                        continue; // deleting a row that was not there changes nothing
                    }
                    let this = if deleted(i) { None } else { Some(row.clone()) };
                    let other = self.tables[1 - side].get(&id).cloned();
                    let (left, right) =
                        if side == 0 { (this.clone(), other.clone()) } else { (other.clone(), this.clone()) };
                    let present = |r: &Option<Row>| r.is_some();
                    let emits = match plan.kind {
                        JoinType::Inner => present(&other),
                        JoinType::Left => side == 0 || present(&other),
                        JoinType::Right => side == 1 || present(&other),
                        _ => true,
                    };
                    if !emits {
                        continue;
                    }
                    let joins = match plan.kind {
                        JoinType::Inner => present(&left) && present(&right),
                        JoinType::Left => present(&left),
                        JoinType::Right => present(&right),
                        _ => present(&left) || present(&right),
                    };
                    let time =
                        [&this, &other].iter().filter_map(|r| r.as_ref().map(|r| r.time)).max().unwrap_or(row.time);
                    let time = time.max(row.time);
                    // A deletion still names its key: the old row stands in for the gone one.
                    let stand_in = |r: Option<Row>, old: &Option<Row>| r.or_else(|| old.clone());
                    let (left, right) = if joins {
                        (left, right)
                    } else if side == 0 {
                        (stand_in(left, &previous), right)
                    } else {
                        (left, stand_in(right, &previous))
                    };
                    results.push(Joined {
                        left: left.map(|r| r.row),
                        right: right.map(|r| r.row),
                        key: k,
                        time,
                        deleted: !joins,
                    });
                }
                JoinShape::ForeignKey => {} // above
                JoinShape::StreamStream { before_ms, after_ms, grace_ms } => {
                    if deleted(i) || key.is_null(i) {
                        continue;
                    }
                    self.stream_stream(side, keys.row(i).owned(), row, k, before_ms, after_ms, grace_ms, &mut results)?;
                }
            }
        }
        if let JoinShape::StreamStream { before_ms, after_ms, grace_ms } = plan.shape {
            self.evict(retention(before_ms, after_ms, grace_ms));
        }
        if !(plan.shape == JoinShape::StreamTable && side == 0) {
            self.stored_since_check += n;
            self.compact_if_sparse()?;
        }
        if results.is_empty() {
            return Ok(());
        }
        self.emit(results, batch.replay, out)
    }

    /// A left table row of a foreign-key join, as Kafka Streams' foreign-key join takes it:
    /// it looks up the right row its foreign key names; without one, a left join emits it
    /// padded with nulls and an inner join retracts the earlier result if the foreign key
    /// changed. A deletion deletes the result.
    #[allow(clippy::too_many_arguments)]
    fn foreign_left(
        &mut self,
        primary: &ArrayRef,
        i: usize,
        foreign: &ArrayRef,
        foreign_rows: &datafusion::arrow::row::Rows,
        row: Row,
        deleted: bool,
        results: &mut Vec<Joined>,
    ) -> Result<(), PlanError> {
        if primary.is_null(i) {
            return Ok(());
        }
        let Some(converter) = &self.primary_converter else {
            return Err(PlanError::internal("a foreign-key join without its left key"));
        };
        let sliced = primary.slice(i, 1);
        let id = converter.convert_columns(std::slice::from_ref(&sliced))?.row(0).owned();
        let key = KeyRef::of(sliced);
        let fk = (!foreign.is_null(i)).then(|| foreign_rows.row(i).owned());
        let previous = if deleted {
            self.foreign_rows.remove(&id)
        } else {
            self.foreign_rows.insert(id.clone(), ForeignRow { row: row.clone(), key: key.clone(), foreign: fk.clone() })
        };
        if let Some(old) = previous.as_ref().and_then(|p| p.foreign.as_ref())
            && let Some(ids) = self.foreign_index.get_mut(old)
        {
            ids.remove(&id);
            if ids.is_empty() {
                self.foreign_index.remove(old);
            }
        }
        if deleted {
            if let Some(previous) = previous {
                results.push(Joined { left: Some(previous.row.row), right: None, key, time: row.time, deleted: true });
            }
            return Ok(());
        }
        if let Some(fk) = &fk {
            self.foreign_index.entry(fk.clone()).or_default().insert(id);
        }
        match (fk.as_ref().and_then(|f| self.tables[1].get(f)), self.step.kind) {
            (Some(right), _) => results.push(Joined {
                left: Some(row.row.clone()),
                right: Some(right.row.clone()),
                key,
                time: row.time.max(right.time),
                deleted: false,
            }),
            (None, JoinType::Left) => {
                results.push(Joined { left: Some(row.row), right: None, key, time: row.time, deleted: false })
            }
            (None, _) => {
                if previous.is_some_and(|p| p.foreign != fk) {
                    results.push(Joined { left: Some(row.row), right: None, key, time: row.time, deleted: true });
                }
            }
        }
        Ok(())
    }

    /// A right table row of a foreign-key join: every left row naming its key joins it
    /// again (a deletion: an inner join's results are deleted, a left join's null-padded).
    fn foreign_right(&mut self, id: OwnedRow, row: Row, deleted: bool, results: &mut Vec<Joined>) {
        let previous =
            if deleted { self.tables[1].remove(&id) } else { self.tables[1].insert(id.clone(), row.clone()) };
        if deleted && previous.is_none() {
            return;
        }
        let Some(ids) = self.foreign_index.get(&id) else { return };
        for left in ids.iter().filter_map(|l| self.foreign_rows.get(l)) {
            let time = left.row.time.max(row.time);
            results.push(match (deleted, self.step.kind) {
                (false, _) => Joined {
                    left: Some(left.row.row.clone()),
                    right: Some(row.row.clone()),
                    key: left.key.clone(),
                    time,
                    deleted: false,
                },
                (true, JoinType::Left) => Joined {
                    left: Some(left.row.row.clone()),
                    right: None,
                    key: left.key.clone(),
                    time,
                    deleted: false,
                },
                (true, _) => {
                    Joined { left: Some(left.row.row.clone()), right: None, key: left.key.clone(), time, deleted: true }
                }
            });
        }
    }

    /// A stream row of a stream-stream join, as Kafka Streams' `KStreamKStreamJoin` takes it
    /// (with KIP-633's grace periods): it joins the other side's visible rows of its key within
    /// the window (oldest first), then waits in its own side's store. An outer side's row
    /// that joins nothing is emitted padded with nulls: at once without a grace period (the
    /// legacy "spurious" results), else once its window has closed.
    #[allow(clippy::too_many_arguments)]
    fn stream_stream(
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
    fn evict(&mut self, retention: i64) {
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
    fn compact_if_sparse(&mut self) -> Result<(), PlanError> {
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
    fn emit_closed(&mut self, after: i64, grace: i64, results: &mut Vec<Joined>) {
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

    /// The results as joined rows; the last step's through WHERE and the projection.
    fn emit(&mut self, results: Vec<Joined>, replay: bool, out: &mut Vec<TimedBatch>) -> Result<(), PlanError> {
        let step = &self.step;
        let lefts: Vec<Option<&RowRef>> = results.iter().map(|r| r.left.as_ref()).collect();
        let rights: Vec<Option<&RowRef>> = results.iter().map(|r| r.right.as_ref()).collect();
        let left = gather(&self.nulls[0], &lefts)?;
        let right = gather(&self.nulls[1], &rights)?;
        let mut columns = left.columns().to_vec();
        // ROWKEY is this join's key (a right or full outer join's, even without a left row).
        if let Ok(at) = step.sides[0].index_of(&self.plan.rowkey) {
            let mut arrays: Vec<&dyn Array> = Vec::new();
            let mut seen: HashMap<*const (), usize> = HashMap::new();
            let mut indices: Vec<(usize, usize)> = Vec::with_capacity(results.len());
            for result in &results {
                let array = &result.key.array;
                let at = *seen.entry(Arc::as_ptr(array).cast::<()>()).or_insert_with(|| {
                    arrays.push(array.as_ref());
                    arrays.len() - 1
                });
                indices.push((at, result.key.index));
            }
            let key = datafusion::arrow::compute::interleave(&arrays, &indices)?;
            let wanted = step.sides[0].field(at).data_type();
            columns[at] = if key.data_type() == wanted { key } else { datafusion::arrow::compute::cast(&key, wanted)? };
        }
        columns.extend(right.columns().iter().cloned());
        let mut joined = RecordBatch::try_new(step.joined.clone(), columns)?;
        let mut times: Vec<i64> = results.iter().map(|r| r.time).collect();
        let mut deleted: Vec<bool> = results.iter().map(|r| r.deleted).collect();
        if !self.last {
            let tombstones = deleted.iter().any(|d| *d).then(|| BooleanArray::from(deleted));
            out.push(TimedBatch {
                rows: joined,
                timestamps_ms: Arc::new(Int64Array::from(times)),
                tombstones,
                windows: None,
                replay,
                input: 0,
            });
            return Ok(());
        }
        let plan = &self.plan;
        if let Some(filter) = &plan.filter {
            let mask = evaluate_isolating(filter, &joined, &mut self.errors)?;
            let mask = mask.as_boolean_opt().ok_or_else(|| PlanError::user("WHERE must be a condition"))?;
            // A deletion passes: the row it deletes may have passed.
            let keep: Vec<bool> =
                (0..joined.num_rows()).map(|i| deleted[i] || (mask.is_valid(i) && mask.value(i))).collect();
            let keep_mask = BooleanArray::from(keep.clone());
            joined = filter_record_batch(&joined, &keep_mask)?;
            times = times.into_iter().zip(&keep).filter(|(_, k)| **k).map(|(t, _)| t).collect();
            deleted = deleted.into_iter().zip(&keep).filter(|(_, k)| **k).map(|(d, _)| d).collect();
        }
        if joined.num_rows() == 0 {
            return Ok(());
        }
        let mut projected = plan
            .projection
            .iter()
            .map(|e| evaluate_isolating(e, &joined, &mut self.errors))
            .collect::<Result<Vec<_>, _>>()?;
        // The key column holds the join key, whichever side's column it is named after.
        if let Some(k) = plan.key_output
            && let Some(rowkey) = joined.column_by_name(&plan.rowkey)
        {
            let wanted = plan.output.field(k).data_type();
            projected[k] = if rowkey.data_type() == wanted {
                rowkey.clone()
            } else {
                datafusion::arrow::compute::cast(rowkey, wanted)?
            };
        }
        let tombstones = deleted.iter().any(|d| *d).then(|| BooleanArray::from(deleted));
        // Windowed sources' results keep the first source's windows (its columns lead).
        let windows =
            match (&step.window_keys, joined.column_by_name("WINDOWSTART"), joined.column_by_name("WINDOWEND")) {
                (Some(_), Some(start), Some(end)) => Some((start.clone(), end.clone())),
                _ => None,
            };
        out.push(TimedBatch {
            rows: RecordBatch::try_new(plan.output.clone(), projected)?,
            timestamps_ms: Arc::new(Int64Array::from(times)),
            tombstones,
            windows,
            replay,
            input: 0,
        });
        Ok(())
    }
}

impl Operator for Join {
    fn process(&mut self, batch: TimedBatch, out: &mut Vec<TimedBatch>) -> Result<(), PlanError> {
        guarded(|| self.update(batch, out))?
    }

    fn describe(&self) -> String {
        self.description.clone()
    }

    /// Each side's stored rows, then the clocks as one row (`store_time_0`, `store_time_1`,
    /// `sequence`, `stream_time`).
    fn snapshot(&mut self) -> Result<Option<Vec<RecordBatch>>, PlanError> {
        let JoinSnapshot { sides: [left, right], store_time, sequence, stream_time } = Join::snapshot(self)?;
        let clocks = [store_time[0], store_time[1], sequence as i64, stream_time];
        let fields: Vec<Field> = CLOCKS.iter().map(|name| Field::new(*name, DataType::Int64, false)).collect();
        let columns = clocks.iter().map(|c| Arc::new(Int64Array::from(vec![*c])) as ArrayRef).collect();
        let clocks = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
        Ok(Some(vec![left, right, clocks]))
    }

    fn restore(&mut self, state: Vec<RecordBatch>) -> Result<(), PlanError> {
        guarded(|| self.restore_checkpoint(state))?
    }

    fn state_bytes(&self) -> usize {
        Join::state_bytes(self)
    }

    fn take_errors(&mut self) -> Vec<RowError> {
        std::mem::take(&mut self.errors)
    }
}

impl Join {
    /// Takes back the batches of [`Operator::snapshot`].
    fn restore_checkpoint(&mut self, state: Vec<RecordBatch>) -> Result<(), PlanError> {
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
const CLOCKS: [&str; 4] = ["store_time_0", "store_time_1", "sequence", "stream_time"];
