//! Joins of two sources: stream-stream (`WITHIN`), stream-table and table-table, planned
//! into a [`JoinPlan`] by [`crate::planner::join`] and run by [`Join`].
//!
//! The joined rows are the left input's row (its columns and pseudo columns, then
//! `ROWKEY`, the join key), then the right input's row: the schema of DataFusion's `Join`
//! node. A side without a match is nulls.
//!
//! One file per concern: this one holds the plan, the operator and the table joins;
//! `windowed` the stream-stream joins, `foreign_key` the foreign-key joins, `snapshot` the
//! state in checkpoints.
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

mod foreign_key;
mod snapshot;
mod windowed;

use snapshot::CLOCKS;
pub use snapshot::JoinSnapshot;
use windowed::COMPACT_MIN_ROWS;

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
