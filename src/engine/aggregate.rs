//! Unwindowed aggregation: `SELECT k, COUNT(*), SUM(x) FROM stream [WHERE …] GROUP BY k
//! [HAVING …]`, a table whose rows change as records arrive.
//!
//! DataFusion plans the query; its `Aggregate` node gives the grouping expressions and the
//! aggregate functions, whose accumulators (DataFusion's own) hold each group's state. Every
//! batch updates the groups its rows belong to, and each group it touched is emitted once
//! with its new values (the `HAVING` filter and the projection applied to it), stamped with
//! the latest event time among its rows in the batch: one update per group per batch, as
//! ksqlDB emits one per record with its cache off (a batch of one record) and fewer with it on.
//!
//! [`Aggregate`] keeps a DataFusion [`Accumulator`] per group, for what the batch-at-a-time
//! operators cannot run: session windows (whose groups merge), aggregations of tables by
//! functions whose state is not a sum (a changed row is taken out of its group again, which
//! only the sliding accumulators can do in general) and aggregate functions without a groups
//! accumulator. Streams' aggregations otherwise run
//! on [`super::groups_aggregate`] (`EMIT CHANGES`) and [`super::window_aggregate`] (windows
//! with `EMIT FINAL`). This module also holds what they share: the plan and the snapshot's
//! form, so that each resumes from another's checkpoint.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{filter_record_batch, take};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use datafusion::arrow::row::{OwnedRow, RowConverter, SortField};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::Accumulator;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_plan::aggregates::group_values::new_group_values;
use datafusion::physical_plan::aggregates::order::GroupOrdering;

use super::operator::{Operator, TimedBatch};
use super::plan::{PlanError, RowError, evaluate_isolating, guarded};

/// An aggregation, planned.
#[derive(Debug)]
pub struct AggregatePlan {
    /// The windows rows are assigned to first (a windowed aggregation), if any.
    pub windows: Option<super::window::TimeWindows>,
    /// `EMIT FINAL`: a window's result is emitted once, when it closes, not at each update.
    pub emit_final: bool,
    /// Aggregating a table: where its key columns are in the input rows. A row replacing an
    /// earlier one of the same key first takes the earlier one out of its group.
    pub table_keys: Option<Vec<usize>>,
    /// WHERE, on the input rows.
    pub filter: Option<Arc<dyn PhysicalExpr>>,
    /// The grouping expressions, on the input rows.
    pub group_by: Vec<Arc<dyn PhysicalExpr>>,
    /// The aggregate functions, with their arguments on the input rows.
    pub aggregates: Vec<Arc<AggregateFunctionExpr>>,
    /// The aggregation's own rows: the group columns, then the aggregates.
    pub aggregate_schema: SchemaRef,
    /// HAVING, on the aggregation's rows.
    pub having: Option<Arc<dyn PhysicalExpr>>,
    /// The projection, on the aggregation's rows.
    pub projection: Vec<Arc<dyn PhysicalExpr>>,
    pub output: SchemaRef,
    /// Where `ROWTIME` is in the input rows.
    pub row_time_index: usize,
}

impl AggregatePlan {
    /// Each aggregate's arguments, evaluated on `rows`.
    pub(crate) fn arguments(
        &self,
        rows: &RecordBatch,
        errors: &mut Vec<RowError>,
    ) -> Result<Vec<Vec<ArrayRef>>, PlanError> {
        self.aggregates
            .iter()
            .map(|a| a.expressions().iter().map(|e| evaluate_isolating(e, rows, errors)).collect())
            .collect()
    }

    /// `rows`' grouping columns, and the rows left once those with a null grouping value
    /// are dropped: such a row belongs to no group, and ksqlDB drops it.
    pub(crate) fn grouped(
        &self,
        rows: RecordBatch,
        errors: &mut Vec<RowError>,
    ) -> Result<(RecordBatch, Vec<ArrayRef>), PlanError> {
        let keys: Vec<ArrayRef> =
            self.group_by.iter().map(|e| evaluate_isolating(e, &rows, errors)).collect::<Result<_, _>>()?;
        if keys.iter().all(|k| k.null_count() == 0) {
            return Ok((rows, keys));
        }
        let keyed: BooleanArray = (0..rows.num_rows()).map(|i| Some(keys.iter().all(|k| k.is_valid(i)))).collect();
        let keys = keys.iter().map(|k| datafusion::arrow::compute::filter(k, &keyed)).collect::<Result<_, _>>()?;
        Ok((filter_record_batch(&rows, &keyed)?, keys))
    }

    /// The schema of a snapshot with these columns: the grouping fields, then `a:i` per
    /// state column of aggregate `a`, then the latest time, sequence and HAVING mark.
    pub(crate) fn snapshot_schema(&self, columns: &[ArrayRef]) -> Result<SchemaRef, PlanError> {
        let mut fields: Vec<Field> =
            self.aggregate_schema.fields().iter().take(self.group_by.len()).map(|f| f.as_ref().clone()).collect();
        let mut at = fields.len();
        for (a, aggregate) in self.aggregates.iter().enumerate() {
            for i in 0..aggregate.state_fields()?.len() {
                let column = columns.get(at).ok_or_else(|| PlanError::user("a snapshot column is missing"))?;
                fields.push(Field::new(format!("{a}:{i}"), column.data_type().clone(), true));
                at += 1;
            }
        }
        fields.push(Field::new(SNAPSHOT_LATEST, DataType::Int64, false));
        fields.push(Field::new(SNAPSHOT_SEQUENCE, DataType::Int64, false));
        fields.push(Field::new(SNAPSHOT_PASSED, DataType::Boolean, false));
        Ok(Arc::new(Schema::new(fields)))
    }

    pub(crate) fn empty_snapshot_schema(&self) -> Result<SchemaRef, PlanError> {
        let mut columns: Vec<ArrayRef> = self
            .aggregate_schema
            .fields()
            .iter()
            .take(self.group_by.len())
            .map(|f| datafusion::arrow::array::new_empty_array(f.data_type()))
            .collect();
        for aggregate in &self.aggregates {
            columns.extend(
                aggregate.state_fields()?.iter().map(|f| datafusion::arrow::array::new_empty_array(f.data_type())),
            );
        }
        self.snapshot_schema(&columns)
    }

    /// A new group's accumulators. Aggregating a table takes rows out again, so it uses the
    /// functions' sliding accumulators, those that can retract (SUM's, for one).
    pub fn accumulators(&self) -> Result<Vec<Box<dyn Accumulator>>, PlanError> {
        let sliding = self.table_keys.is_some();
        Ok(self
            .aggregates
            .iter()
            .map(|a| if sliding { a.create_sliding_accumulator() } else { a.create_accumulator() })
            .collect::<Result<_, _>>()?)
    }
}

/// A snapshot's groups read back, table by table (see [`AggregatePlan::read_snapshot`]).
pub(crate) struct SnapshotTable {
    pub start: i64,
    pub end: i64,
    /// Its groups' grouping columns and each aggregate's state columns, in the order the
    /// groups began…
    pub keys: Vec<ArrayRef>,
    pub states: Vec<Vec<ArrayRef>>,
    /// …with their latest event times, sequences and HAVING marks.
    pub latest: Vec<i64>,
    pub sequences: Vec<u64>,
    pub passed: Vec<bool>,
}

impl AggregatePlan {
    /// A snapshot in [`Aggregate`]'s form split into tables of groups: one per window start
    /// when windowed, one (at `i64::MIN`, ending at `i64::MAX`) otherwise, each in the order
    /// its groups began; and the stream time.
    pub(crate) fn read_snapshot(&self, snapshot: &RecordBatch) -> Result<(Vec<SnapshotTable>, i64), PlanError> {
        let keys = self.group_by.len();
        let widths: Vec<usize> =
            self.aggregates.iter().map(|a| a.state_fields().map(|f| f.len())).collect::<Result<_, _>>()?;
        if keys + widths.iter().sum::<usize>() + 3 > snapshot.num_columns() {
            return Err(PlanError::user("the snapshot is not of this aggregation"));
        }
        let column = |name: &str| {
            snapshot.column_by_name(name).cloned().ok_or_else(|| PlanError::user(format!("the snapshot lacks {name}")))
        };
        let latest = column(SNAPSHOT_LATEST)?.as_primitive::<Int64Type>().clone();
        let sequences = column(SNAPSHOT_SEQUENCE)?.as_primitive::<Int64Type>().clone();
        let passed = column(SNAPSHOT_PASSED)?.as_boolean().clone();
        let stream_time =
            snapshot.schema().metadata().get(SNAPSHOT_STREAM_TIME).and_then(|t| t.parse().ok()).unwrap_or(i64::MIN);
        let mut order: Vec<u32> = (0..snapshot.num_rows() as u32).collect();
        order.sort_by_key(|i| sequences.value(*i as usize));
        let mut tables: std::collections::BTreeMap<i64, (i64, Vec<u32>)> = std::collections::BTreeMap::new();
        if self.windows.is_some() {
            let bounds = |c: usize| snapshot.column(c).as_primitive_opt::<Int64Type>().cloned();
            let (Some(starts), Some(ends)) = (bounds(keys - 2), bounds(keys - 1)) else {
                return Err(PlanError::user("the snapshot is not of a windowed aggregation"));
            };
            for i in order {
                let (start, end) = (starts.value(i as usize), ends.value(i as usize));
                tables.entry(start).or_insert((end, Vec::new())).1.push(i);
            }
        } else if !order.is_empty() {
            tables.insert(i64::MIN, (i64::MAX, order));
        }
        let tables = tables
            .into_iter()
            .map(|(start, (end, rows))| {
                let rows = UInt32Array::from(rows);
                let pick = |c: &ArrayRef| take(c.as_ref(), &rows, None);
                let mut at = keys;
                let mut states = Vec::with_capacity(widths.len());
                for width in &widths {
                    states.push(snapshot.columns()[at..at + width].iter().map(pick).collect::<Result<_, _>>()?);
                    at += width;
                }
                let indices = rows.values().iter().map(|i| *i as usize);
                Ok(SnapshotTable {
                    start,
                    end,
                    keys: snapshot.columns()[..keys].iter().map(pick).collect::<Result<_, _>>()?,
                    states,
                    latest: indices.clone().map(|i| latest.value(i)).collect(),
                    sequences: indices.clone().map(|i| sequences.value(i) as u64).collect(),
                    passed: indices.map(|i| passed.value(i)).collect(),
                })
            })
            .collect::<Result<_, PlanError>>()?;
        Ok((tables, stream_time))
    }
}

/// One group's state.
struct Group {
    /// The group's key, as a one-row array per grouping expression.
    key: Vec<ArrayRef>,
    accumulators: Vec<Box<dyn Accumulator>>,
    /// The latest event time among its rows (an EMIT FINAL result's timestamp).
    latest_ms: i64,
    /// When it was created, for emitting closed windows in arrival order.
    sequence: u64,
    /// Whether its last emitted row passed HAVING: a group HAVING rejects is deleted from
    /// the table (a tombstone) only if it was in it.
    passed: bool,
}

/// The aggregation operator: groups by key, each with its accumulators.
pub struct Aggregate {
    plan: Arc<AggregatePlan>,
    description: String,
    converter: RowConverter,
    /// The grouping columns (a constant boolean without GROUP BY), for a batch's group table.
    key_schema: SchemaRef,
    groups: HashMap<OwnedRow, Group>,
    /// The largest event time seen (for windows: which have closed).
    stream_time: i64,
    /// The next group's `sequence`.
    next_sequence: u64,
    /// The earliest stream time at which an open window closes (`i64::MAX` when none is
    /// open): eviction looks at the groups only once stream time gets there.
    earliest_close: i64,
    /// Aggregating a table: each of its rows' group and aggregate arguments, by table key,
    /// to take out when the row changes.
    previous: HashMap<OwnedRow, Previous>,
    /// Session windows: the key columns alone, as rows.
    key_converter: Option<RowConverter>,
    /// Session windows: each key's sessions (start, end, group id).
    sessions: HashMap<OwnedRow, Vec<(i64, i64, OwnedRow)>>,
    /// An unwindowed stream aggregation forgets a group no row has updated for this long
    /// (event time), if set: state bounded in time (beyond ksqlDB).
    state_ttl_ms: Option<i64>,
    /// The stream time at which to look for expired groups next.
    next_expiry: i64,
    /// Aggregating a table: its key columns as rows (made at the first batch).
    table_key_converter: Option<RowConverter>,
    /// Rows an expression failed on, not yet taken (see [`Operator::take_errors`]).
    errors: Vec<RowError>,
}

/// An aggregation's state (see [`Aggregate::snapshot`]).
#[derive(Debug, Clone)]
pub struct AggregateSnapshot {
    /// A row per group.
    pub groups: RecordBatch,
    /// Aggregating a table: a row per table row, with its group and aggregate arguments.
    pub table_rows: Option<RecordBatch>,
}

/// Makes sure `accumulator` still holds `state`, which its `state()` just returned: some
/// accumulators hand their state over rather than copy it (DataFusion's distinct counts of
/// strings empty their set), and those are rebuilt from it (`fresh` makes an empty one). Asking
/// twice tells them apart, and costs far less than rebuilding every accumulator.
pub(crate) fn keep_state(
    accumulator: &mut Box<dyn Accumulator>,
    state: &[ScalarValue],
    fresh: impl FnOnce() -> Result<Box<dyn Accumulator>, PlanError>,
) -> Result<(), PlanError> {
    if accumulator.state()? == state {
        return Ok(());
    }
    let mut rebuilt = fresh()?;
    let arrays = state.iter().map(ScalarValue::to_array).collect::<Result<Vec<_>, _>>()?;
    rebuilt.merge_batch(&arrays)?;
    *accumulator = rebuilt;
    Ok(())
}

/// A snapshot's columns after the group key and the accumulators' states.
pub(crate) const SNAPSHOT_LATEST: &str = "__latest_ms";
pub(crate) const SNAPSHOT_SEQUENCE: &str = "__sequence";
pub(crate) const SNAPSHOT_PASSED: &str = "__passed";
/// A snapshot's schema metadata: the stream time.
pub(crate) const SNAPSHOT_STREAM_TIME: &str = "eddy.stream_time";

/// The groups a batch changed (or closed), in output order, each with its values and the
/// timestamp its output row gets.
#[derive(Default)]
struct Changed {
    ids: Vec<OwnedRow>,
    keys: Vec<Vec<ArrayRef>>,
    values: Vec<Vec<ScalarValue>>,
    stamps: Vec<i64>,
    /// Groups that are gone (sessions merged into a new one): their rows are tombstones.
    deleted: Vec<bool>,
}

impl Changed {
    fn push(&mut self, id: OwnedRow, group: &mut Group, stamp: i64) -> Result<(), PlanError> {
        self.ids.push(id);
        self.keys.push(group.key.clone());
        self.values.push(group.accumulators.iter_mut().map(|a| a.evaluate()).collect::<Result<_, _>>()?);
        self.stamps.push(stamp);
        self.deleted.push(false);
        Ok(())
    }

    fn push_deleted(&mut self, id: OwnedRow, group: &mut Group, stamp: i64) -> Result<(), PlanError> {
        self.push(id, group, stamp)?;
        if let Some(last) = self.deleted.last_mut() {
            *last = true;
        }
        Ok(())
    }
}

/// A table row's contribution to its group.
struct Previous {
    group: OwnedRow,
    /// Per aggregate, its arguments for this row (one-row arrays).
    arguments: Vec<Vec<ArrayRef>>,
}

impl Aggregate {
    /// The group ids of `rows` rows whose grouping values are `keys` (all one group when
    /// there is no GROUP BY).
    fn group_ids(&self, keys: &[ArrayRef], rows: usize) -> Result<datafusion::arrow::row::Rows, PlanError> {
        if keys.is_empty() {
            let constant: ArrayRef = Arc::new(BooleanArray::from(vec![true; rows]));
            return Ok(self.converter.convert_columns(&[constant])?);
        }
        Ok(self.converter.convert_columns(keys)?)
    }

    pub fn try_new(plan: Arc<AggregatePlan>, description: String) -> Result<Self, PlanError> {
        let fields: Vec<SortField> = plan
            .aggregate_schema
            .fields()
            .iter()
            .take(plan.group_by.len())
            .map(|f| SortField::new(f.data_type().clone()))
            .collect();
        let key_converter = match plan.windows {
            Some(w) if w.is_session() => Some(RowConverter::new(fields[..fields.len().saturating_sub(2)].to_vec())?),
            _ => None,
        };
        let mut key_fields: Vec<datafusion::arrow::datatypes::Field> =
            plan.aggregate_schema.fields().iter().take(plan.group_by.len()).map(|f| f.as_ref().clone()).collect();
        if key_fields.is_empty() {
            key_fields.push(datafusion::arrow::datatypes::Field::new("__all", DataType::Boolean, false));
        }
        Ok(Aggregate {
            key_schema: Arc::new(Schema::new(key_fields)),
            key_converter,
            sessions: HashMap::new(),
            state_ttl_ms: None,
            next_expiry: i64::MIN,
            table_key_converter: None,
            errors: Vec::new(),
            // Without GROUP BY every row is of one group: its id is a constant's.
            converter: if fields.is_empty() {
                RowConverter::new(vec![SortField::new(DataType::Boolean)])?
            } else {
                RowConverter::new(fields)?
            },
            plan,
            description,
            groups: HashMap::new(),
            stream_time: i64::MIN,
            next_sequence: 0,
            earliest_close: i64::MAX,
            previous: HashMap::new(),
        })
    }

    /// Forget a group of an unwindowed stream aggregation once no row has updated it for
    /// `ttl_ms` of event time. Its last row stays in the output table; a later row of its key
    /// starts it again from nothing.
    pub fn with_state_ttl(mut self, ttl_ms: Option<i64>) -> Self {
        let unwindowed_stream = self.plan.windows.is_none() && self.plan.table_keys.is_none();
        self.state_ttl_ms = ttl_ms.filter(|ttl| *ttl > 0 && unwindowed_stream);
        self
    }

    fn update(&mut self, batch: TimedBatch, out: &mut Vec<TimedBatch>) -> Result<(), PlanError> {
        let replay = batch.replay;
        if self.state_ttl_ms.is_some() {
            // Unwindowed aggregation keeps no stream time otherwise.
            let times = batch.rows.column(self.plan.row_time_index).as_primitive::<Int64Type>();
            if let Some(latest) = datafusion::arrow::compute::max(times) {
                self.stream_time = self.stream_time.max(latest);
            }
        }
        // Expired groups go before the batch, which may start them again.
        self.expire();
        if let Some(changed) = self.absorb(batch)?
            && !self.plan.emit_final
        {
            self.emit(changed, replay, out)?;
        }
        self.evict(replay, out)
    }

    /// Drops the groups older than the state's time-to-live, looking a quarter of it apart.
    fn expire(&mut self) {
        let Some(ttl) = self.state_ttl_ms else { return };
        if self.stream_time < self.next_expiry {
            return;
        }
        let horizon = self.stream_time.saturating_sub(ttl);
        self.groups.retain(|_, g| g.latest_ms >= horizon);
        self.next_expiry = self.stream_time.saturating_add((ttl / 4).max(1));
    }

    /// The bytes the groups hold (keys and accumulators), as DataFusion's accumulators count
    /// theirs.
    pub fn state_bytes(&self) -> usize {
        self.groups
            .iter()
            .map(|(id, g)| {
                id.as_ref().len()
                    + g.key.iter().map(|k| k.get_array_memory_size()).sum::<usize>()
                    + g.accumulators.iter().map(|a| a.size()).sum::<usize>()
            })
            .sum()
    }

    /// The state as one batch: a row per group (its key columns, then each aggregate's state
    /// columns, then its latest event time, sequence and HAVING mark), groups in creation
    /// order, and stream time in the schema's metadata. [`Aggregate::restore`] takes it back.
    /// A table's aggregation (which also keeps each table row's contribution) has none yet.
    pub fn snapshot(&mut self) -> Result<AggregateSnapshot, PlanError> {
        guarded(|| self.snapshot_unguarded())?
    }

    fn snapshot_unguarded(&mut self) -> Result<AggregateSnapshot, PlanError> {
        let groups = self.snapshot_groups()?;
        let table_rows = match self.plan.table_keys {
            Some(_) => Some(self.snapshot_table_rows()?),
            None => None,
        };
        Ok(AggregateSnapshot { groups, table_rows })
    }

    /// A table's rows, each with the group it counts in and its aggregate arguments: the key
    /// columns, `__group` (the group's row bytes), then a column per argument.
    fn snapshot_table_rows(&self) -> Result<RecordBatch, PlanError> {
        let entries: Vec<(&OwnedRow, &Previous)> = self.previous.iter().collect();
        let mut fields: Vec<datafusion::arrow::datatypes::Field> = Vec::new();
        let mut columns: Vec<ArrayRef> = Vec::new();
        if let Some(converter) = &self.table_key_converter {
            let keys = converter.convert_rows(entries.iter().map(|(k, _)| k.row()))?;
            for (i, key) in keys.into_iter().enumerate() {
                fields.push(datafusion::arrow::datatypes::Field::new(
                    format!("__key{i}"),
                    key.data_type().clone(),
                    true,
                ));
                columns.push(key);
            }
        }
        let groups =
            datafusion::arrow::array::BinaryArray::from_iter_values(entries.iter().map(|(_, p)| p.group.as_ref()));
        fields.push(datafusion::arrow::datatypes::Field::new("__group", DataType::Binary, false));
        columns.push(Arc::new(groups));
        for (a, aggregate) in self.plan.aggregates.iter().enumerate() {
            for (j, expr) in aggregate.expressions().iter().enumerate() {
                let parts: Vec<&dyn Array> = entries.iter().map(|(_, p)| p.arguments[a][j].as_ref()).collect();
                let column = if parts.is_empty() {
                    datafusion::arrow::array::new_empty_array(
                        &expr.data_type(&self.plan.aggregate_schema).unwrap_or(DataType::Null),
                    )
                } else {
                    datafusion::arrow::compute::concat(&parts)?
                };
                fields.push(datafusion::arrow::datatypes::Field::new(
                    format!("{a}:{j}"),
                    column.data_type().clone(),
                    true,
                ));
                columns.push(column);
            }
        }
        let options = datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(entries.len()));
        Ok(RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), columns, &options)?)
    }

    fn snapshot_groups(&mut self) -> Result<RecordBatch, PlanError> {
        let plan = Arc::clone(&self.plan);
        let key_count = plan.group_by.len();
        let templates = self.state_templates()?;
        let mut groups: Vec<&mut Group> = self.groups.values_mut().collect();
        groups.sort_by_key(|g| g.sequence);
        let mut fields: Vec<datafusion::arrow::datatypes::FieldRef> =
            plan.aggregate_schema.fields().iter().take(key_count).cloned().collect();
        let mut columns: Vec<ArrayRef> = Vec::new();
        for (k, field) in fields.iter().enumerate() {
            let parts: Vec<&dyn Array> = groups.iter().map(|g| g.key[k].as_ref()).collect();
            columns.push(if parts.is_empty() {
                datafusion::arrow::array::new_empty_array(field.data_type())
            } else {
                datafusion::arrow::compute::concat(&parts)?
            });
        }
        let states: Vec<Vec<ScalarValue>> = groups
            .iter_mut()
            .map(|g| {
                let mut all = Vec::new();
                for (j, accumulator) in g.accumulators.iter_mut().enumerate() {
                    let state = accumulator.state()?;
                    keep_state(accumulator, &state, || {
                        let sliding = plan.table_keys.is_some();
                        let function = &plan.aggregates[j];
                        Ok(if sliding {
                            function.create_sliding_accumulator()?
                        } else {
                            function.create_accumulator()?
                        })
                    })?;
                    all.extend(state);
                }
                Ok(all)
            })
            .collect::<Result<_, PlanError>>()?;
        let mut at = 0;
        // The accumulators' own states (a sliding accumulator's may hold more than the
        // function's state fields), shaped as a fresh accumulator's.
        for (a, template) in templates.iter().enumerate() {
            for (i, empty) in template.iter().enumerate() {
                let column = if states.is_empty() {
                    datafusion::arrow::array::new_empty_array(&empty.data_type())
                } else {
                    ScalarValue::iter_to_array(states.iter().map(|s| s[at].clone()))?
                };
                fields.push(Arc::new(datafusion::arrow::datatypes::Field::new(
                    format!("{a}:{i}"),
                    column.data_type().clone(),
                    true,
                )));
                columns.push(column);
                at += 1;
            }
        }
        let latest = Int64Array::from(groups.iter().map(|g| g.latest_ms).collect::<Vec<_>>());
        let sequence = Int64Array::from(groups.iter().map(|g| g.sequence as i64).collect::<Vec<_>>());
        let passed = BooleanArray::from(groups.iter().map(|g| g.passed).collect::<Vec<_>>());
        for (name, column) in [
            (SNAPSHOT_LATEST, Arc::new(latest) as ArrayRef),
            (SNAPSHOT_SEQUENCE, Arc::new(sequence)),
            (SNAPSHOT_PASSED, Arc::new(passed)),
        ] {
            fields.push(Arc::new(datafusion::arrow::datatypes::Field::new(name, column.data_type().clone(), false)));
            columns.push(column);
        }
        let metadata = [(SNAPSHOT_STREAM_TIME.to_owned(), self.stream_time.to_string())].into();
        let schema = datafusion::arrow::datatypes::Schema::new_with_metadata(fields, metadata);
        let options = datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(groups.len()));
        Ok(RecordBatch::try_new_with_options(Arc::new(schema), columns, &options)?)
    }

    /// Replaces the state with a snapshot's (of the same query).
    pub fn restore(&mut self, snapshot: &AggregateSnapshot) -> Result<(), PlanError> {
        guarded(|| {
            self.restore_groups(&snapshot.groups)?;
            if let Some(rows) = &snapshot.table_rows {
                self.restore_table_rows(rows)?;
            }
            Ok(())
        })?
    }

    /// A fresh accumulator's state per aggregate: how many state columns each has, and
    /// their types.
    fn state_templates(&self) -> Result<Vec<Vec<ScalarValue>>, PlanError> {
        let mut fresh = self.plan.accumulators()?;
        Ok(fresh.iter_mut().map(|a| a.state()).collect::<Result<_, _>>()?)
    }

    fn restore_table_rows(&mut self, rows: &RecordBatch) -> Result<(), PlanError> {
        let key_count = rows.schema().fields().iter().filter(|f| f.name().starts_with("__key")).count();
        let keys: Vec<ArrayRef> = rows.columns()[..key_count].to_vec();
        if key_count > 0 {
            let fields = keys.iter().map(|k| SortField::new(k.data_type().clone())).collect();
            self.table_key_converter = Some(RowConverter::new(fields)?);
        }
        let Some(converter) = &self.table_key_converter else { return Ok(()) };
        let table_keys = converter.convert_columns(&keys)?;
        let groups = rows
            .column_by_name("__group")
            .and_then(|g| g.as_binary_opt::<i32>().cloned())
            .ok_or_else(|| PlanError::user("the snapshot lacks __group"))?;
        let parser = self.converter.parser();
        let mut at = key_count + 1;
        let mut arguments: Vec<Vec<ArrayRef>> = Vec::new();
        for aggregate in &self.plan.aggregates {
            let width = aggregate.expressions().len();
            arguments.push(rows.columns()[at..at + width].to_vec());
            at += width;
        }
        for row in 0..rows.num_rows() {
            let group = parser.parse(groups.value(row)).owned();
            let arguments = arguments.iter().map(|args| args.iter().map(|a| a.slice(row, 1)).collect()).collect();
            self.previous.insert(table_keys.row(row).owned(), Previous { group, arguments });
        }
        Ok(())
    }

    fn restore_groups(&mut self, snapshot: &RecordBatch) -> Result<(), PlanError> {
        let plan = Arc::clone(&self.plan);
        let key_count = plan.group_by.len();
        let column = |name: &str| {
            snapshot.column_by_name(name).cloned().ok_or_else(|| PlanError::user(format!("the snapshot lacks {name}")))
        };
        let latest = column(SNAPSHOT_LATEST)?;
        let latest = latest.as_primitive::<Int64Type>();
        let sequence = column(SNAPSHOT_SEQUENCE)?;
        let sequence = sequence.as_primitive::<Int64Type>();
        let passed = column(SNAPSHOT_PASSED)?;
        let passed = passed.as_boolean();
        self.groups.clear();
        self.sessions.clear();
        self.previous.clear();
        self.stream_time =
            snapshot.schema().metadata().get(SNAPSHOT_STREAM_TIME).and_then(|t| t.parse().ok()).unwrap_or(i64::MIN);
        let keys: Vec<ArrayRef> = snapshot.columns()[..key_count].to_vec();
        let ids = self.group_ids(&keys, snapshot.num_rows())?;
        let session_keys = match &self.key_converter {
            Some(converter) => Some(converter.convert_columns(&keys[..key_count - 2])?),
            None => None,
        };
        let widths: Vec<usize> = self.state_templates()?.iter().map(|t| t.len()).collect();
        for row in 0..snapshot.num_rows() {
            let mut accumulators = plan.accumulators()?;
            let mut at = key_count;
            for (accumulator, width) in accumulators.iter_mut().zip(widths.iter().copied()) {
                if at + width > snapshot.num_columns() {
                    return Err(PlanError::user("the snapshot is not of this aggregation"));
                }
                let states: Vec<ArrayRef> =
                    snapshot.columns()[at..at + width].iter().map(|c| c.slice(row, 1)).collect();
                accumulator.merge_batch(&states)?;
                at += width;
            }
            let key: Vec<ArrayRef> = keys.iter().map(|k| k.slice(row, 1)).collect();
            let id = ids.row(row).owned();
            if let Some(session_keys) = &session_keys {
                let long = |a: &ArrayRef| a.as_primitive_opt::<Int64Type>().map_or(0, |v| v.value(0));
                let (start, end) = (long(&key[key_count - 2]), long(&key[key_count - 1]));
                self.sessions.entry(session_keys.row(row).owned()).or_default().push((start, end, id.clone()));
            }
            let group = Group {
                key,
                accumulators,
                latest_ms: latest.value(row),
                sequence: sequence.value(row) as u64,
                passed: passed.value(row),
            };
            self.next_sequence = self.next_sequence.max(group.sequence);
            self.groups.insert(id, group);
        }
        self.earliest_close = match plan.windows {
            Some(windows) => {
                let end_index = key_count - 1;
                self.groups
                    .values()
                    .filter_map(|g| g.key[end_index].as_primitive_opt::<Int64Type>().map(|e| e.value(0)))
                    .map(|end| end.saturating_add(windows.close_delay()))
                    .min()
                    .unwrap_or(i64::MAX)
            }
            None => i64::MAX,
        };
        Ok(())
    }

    /// Windows that have closed leave the state; with EMIT FINAL their results are emitted
    /// now, earliest window first.
    fn evict(&mut self, replay: bool, out: &mut Vec<TimedBatch>) -> Result<(), PlanError> {
        let Some(windows) = self.plan.windows else { return Ok(()) };
        let end_index = self.plan.group_by.len() - 1;
        let end_of =
            |group: &Group| group.key[end_index].as_primitive_opt::<Int64Type>().map_or(i64::MAX, |e| e.value(0));
        let stream_time = self.stream_time;
        if stream_time < self.earliest_close {
            return Ok(());
        }
        let closed: Vec<OwnedRow> = self
            .groups
            .iter()
            .filter(|(_, g)| end_of(g).saturating_add(windows.close_delay()) <= stream_time)
            .map(|(k, _)| k.clone())
            .collect();
        if closed.is_empty() {
            return Ok(());
        }
        let mut closed: Vec<(OwnedRow, Group)> =
            closed.into_iter().filter_map(|k| self.groups.remove(&k).map(|g| (k, g))).collect();
        self.earliest_close =
            self.groups.values().map(|g| end_of(g).saturating_add(windows.close_delay())).min().unwrap_or(i64::MAX);
        if windows.is_session() {
            let groups = &self.groups;
            self.sessions.retain(|_, sessions| {
                sessions.retain(|(_, _, id)| groups.contains_key(id));
                !sessions.is_empty()
            });
        }
        if !self.plan.emit_final {
            return Ok(());
        }
        closed.sort_by_key(|(_, g)| (end_of(g), g.sequence));
        let mut changed = Changed::default();
        for (id, mut group) in closed {
            let stamp = group.latest_ms;
            changed.push(id, &mut group, stamp)?;
        }
        self.emit(changed, replay, out)
    }

    /// Takes a batch's rows into their groups; returns the groups it changed, each with its
    /// new values and the latest event time among the batch's rows of it.
    #[allow(clippy::type_complexity)]
    fn absorb(&mut self, batch: TimedBatch) -> Result<Option<Changed>, PlanError> {
        if let Some(table_keys) = self.plan.table_keys.clone() {
            return self.absorb_changelog(batch, &table_keys);
        }
        if let Some(windows) = self.plan.windows.filter(|w| w.is_session()) {
            return self.absorb_sessions(batch, windows);
        }
        let plan = Arc::clone(&self.plan);
        // Records without a value are no rows of a stream: they update nothing.
        let mut rows = batch.rows;
        if let Some(tombstones) = &batch.tombstones {
            rows = filter_record_batch(&rows, &datafusion::arrow::compute::not(tombstones)?)?;
        }
        if let Some(windows) = &plan.windows {
            rows = windows.assign(&rows, plan.row_time_index, &mut self.stream_time)?;
        }
        if let Some(filter) = &plan.filter {
            let mask = evaluate_isolating(filter, &rows, &mut self.errors)?;
            let mask = mask.as_boolean_opt().ok_or_else(|| PlanError::user("WHERE must be a condition"))?;
            rows = filter_record_batch(&rows, mask)?;
        }
        if rows.num_rows() == 0 {
            return Ok(None);
        }
        let (rows, keys) = plan.grouped(rows, &mut self.errors)?;
        if rows.num_rows() == 0 {
            return Ok(None);
        }
        // Each row's group in this batch, groups numbered in the order of their first row:
        // DataFusion's group table interns the keys a column at a time.
        let n = rows.num_rows();
        let interned: Vec<ArrayRef> =
            if keys.is_empty() { vec![Arc::new(BooleanArray::from(vec![true; n]))] } else { keys.clone() };
        let mut batch_groups = new_group_values(Arc::clone(&self.key_schema), &GroupOrdering::None)?;
        let mut group_of: Vec<usize> = Vec::with_capacity(n);
        batch_groups.intern(&interned, &mut group_of)?;
        let mut first_rows: Vec<u32> = vec![u32::MAX; batch_groups.len()];
        for (i, g) in group_of.iter().enumerate() {
            if first_rows[*g] == u32::MAX {
                first_rows[*g] = i as u32;
            }
        }
        // The groups' keys as rows (the state's keys), converted for the groups alone.
        let firsts = UInt32Array::from(first_rows.clone());
        let first_keys: Vec<ArrayRef> =
            keys.iter().map(|k| take(k.as_ref(), &firsts, None)).collect::<Result<_, _>>()?;
        let converted = self.group_ids(&first_keys, first_rows.len())?;
        // The rows grouped (a counting sort, stable): group g's rows are
        // `grouped[starts[g]..starts[g + 1]]`, in their order.
        let mut starts = vec![0usize; first_rows.len() + 1];
        for g in &group_of {
            starts[*g + 1] += 1;
        }
        for g in 0..first_rows.len() {
            starts[g + 1] += starts[g];
        }
        let mut next = starts.clone();
        let mut grouped = vec![0u32; n];
        for (i, g) in group_of.iter().enumerate() {
            grouped[next[*g]] = i as u32;
            next[*g] += 1;
        }
        let grouped = UInt32Array::from(grouped);
        // Each aggregate's arguments taken once in that order; a group's are a slice of them.
        let arguments: Vec<Vec<ArrayRef>> = plan
            .arguments(&rows, &mut self.errors)?
            .iter()
            .map(|args| args.iter().map(|a| take(a.as_ref(), &grouped, None)).collect::<Result<Vec<_>, _>>())
            .collect::<Result<_, _>>()?;
        let times = rows.column(plan.row_time_index).as_primitive::<Int64Type>().clone();

        let mut changed = Changed::default();
        for g in 0..first_rows.len() {
            let (from, count) = (starts[g], starts[g + 1] - starts[g]);
            let key = converted.row(g).owned();
            let group = match self.groups.entry(key.clone()) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    // Copied out: a slice would keep the batch's groups' column alive.
                    let one = UInt32Array::from(vec![g as u32]);
                    let key: Vec<ArrayRef> =
                        first_keys.iter().map(|k| take(k.as_ref(), &one, None)).collect::<Result<_, _>>()?;
                    let accumulators = plan.accumulators()?;
                    self.next_sequence += 1;
                    if let Some(windows) = &plan.windows {
                        let end = key.last().and_then(|k| k.as_primitive_opt::<Int64Type>().map(|e| e.value(0)));
                        self.earliest_close =
                            self.earliest_close.min(end.unwrap_or(i64::MAX).saturating_add(windows.close_delay()));
                    }
                    e.insert(Group {
                        key,
                        accumulators,
                        latest_ms: i64::MIN,
                        sequence: self.next_sequence,
                        passed: false,
                    })
                }
            };
            for (accumulator, args) in group.accumulators.iter_mut().zip(&arguments) {
                let sliced: Vec<ArrayRef> = args.iter().map(|a| a.slice(from, count)).collect();
                accumulator.update_batch(&sliced)?;
            }
            let rows_of = &grouped.values()[from..from + count];
            let latest = rows_of.iter().map(|i| times.value(*i as usize)).max().unwrap_or(0);
            group.latest_ms = group.latest_ms.max(latest);
            if !plan.emit_final {
                // As Kafka Streams stamps an aggregate: the latest time of the rows in it.
                let stamp = group.latest_ms;
                changed.push(key, group, stamp)?;
            }
        }
        Ok(Some(changed))
    }

    /// Session windows, record by record as Kafka Streams merges them: a record joins every
    /// session of its key within the gap of it, merged into one (their aggregates merged,
    /// then the record added); the sessions merged away are deleted (tombstones first), the
    /// merged one emitted, stamped with its end. A record whose merged session would already
    /// have closed is dropped as late.
    fn absorb_sessions(
        &mut self,
        batch: TimedBatch,
        windows: super::window::TimeWindows,
    ) -> Result<Option<Changed>, PlanError> {
        let plan = Arc::clone(&self.plan);
        let gap = windows.session_gap_ms.unwrap_or(0);
        let mut rows = batch.rows;
        if let Some(tombstones) = &batch.tombstones {
            rows = filter_record_batch(&rows, &datafusion::arrow::compute::not(tombstones)?)?;
        }
        // Each record is a session of its own to start with: WINDOWSTART = WINDOWEND = its time.
        let times = rows.column(plan.row_time_index).clone();
        let mut columns = rows
            .schema()
            .fields()
            .iter()
            .zip(rows.columns())
            .filter(|(f, _)| !matches!(f.name().as_str(), "WINDOWSTART" | "WINDOWEND"))
            .map(|(_, c)| c.clone())
            .collect::<Vec<_>>();
        columns.push(times.clone());
        columns.push(times);
        let mut rows = RecordBatch::try_new(super::window::windowed_schema(&rows.schema()), columns)?;
        if let Some(filter) = &plan.filter {
            let mask = evaluate_isolating(filter, &rows, &mut self.errors)?;
            let mask = mask.as_boolean_opt().ok_or_else(|| PlanError::user("WHERE must be a condition"))?;
            rows = filter_record_batch(&rows, mask)?;
        }
        let n = rows.num_rows();
        if n == 0 {
            return Ok(None);
        }
        let key_count = plan.group_by.len() - 2;
        let keys: Vec<ArrayRef> = plan.group_by[..key_count]
            .iter()
            .map(|e| evaluate_isolating(e, &rows, &mut self.errors))
            .collect::<Result<_, _>>()?;
        let Some(key_converter) = self.key_converter.as_ref() else { return Ok(None) };
        let key_rows = key_converter.convert_columns(&keys)?;
        let arguments = plan.arguments(&rows, &mut self.errors)?;
        let times = rows.column(plan.row_time_index).as_primitive::<Int64Type>().clone();
        let mut changed = Changed::default();
        for row in 0..n {
            if keys.iter().any(|k| k.is_null(row)) {
                continue; // no group, as ksqlDB drops it
            }
            let time = times.value(row);
            self.stream_time = self.stream_time.max(time);
            let key = key_rows.row(row).owned();
            let sessions = self.sessions.entry(key).or_default();
            let (merging, staying): (Vec<_>, Vec<_>) = std::mem::take(sessions)
                .into_iter()
                .partition(|(start, end, _)| *end >= time.saturating_sub(gap) && *start <= time.saturating_add(gap));
            let start = merging.iter().map(|(s, _, _)| *s).chain([time]).min().unwrap_or(time);
            let end = merging.iter().map(|(_, e, _)| *e).chain([time]).max().unwrap_or(time);
            if end.saturating_add(windows.close_delay()) <= self.stream_time {
                *sessions = staying.into_iter().chain(merging).collect();
                continue; // late: its session has closed
            }
            *sessions = staying;
            let mut accumulators = plan.accumulators()?;
            let mut merging = merging;
            merging.sort_by_key(|(s, _, _)| *s);
            for (_, old_end, id) in merging {
                let Some(mut old) = self.groups.remove(&id) else { continue };
                for (accumulator, previous) in accumulators.iter_mut().zip(old.accumulators.iter_mut()) {
                    let state: Vec<ArrayRef> =
                        previous.state()?.iter().map(|v| v.to_array()).collect::<Result<_, _>>()?;
                    accumulator.merge_batch(&state)?;
                }
                changed.push_deleted(id, &mut old, old_end)?;
            }
            let one = UInt32Array::from(vec![row as u32]);
            for (accumulator, args) in accumulators.iter_mut().zip(&arguments) {
                let taken: Vec<ArrayRef> =
                    args.iter().map(|a| take(a.as_ref(), &one, None)).collect::<Result<_, _>>()?;
                accumulator.update_batch(&taken)?;
            }
            let mut group_key: Vec<ArrayRef> =
                keys.iter().map(|k| take(k.as_ref(), &one, None)).collect::<Result<_, _>>()?;
            group_key.push(Arc::new(Int64Array::from(vec![start])));
            group_key.push(Arc::new(Int64Array::from(vec![end])));
            let id = self.converter.convert_columns(&group_key)?.row(0).owned();
            self.next_sequence += 1;
            let mut group =
                Group { key: group_key, accumulators, latest_ms: end, sequence: self.next_sequence, passed: false };
            changed.push(id.clone(), &mut group, end)?;
            self.groups.insert(id.clone(), group);
            self.earliest_close = self.earliest_close.min(end.saturating_add(windows.close_delay()));
            self.sessions.entry(key_rows.row(row).owned()).or_default().push((start, end, id));
        }
        Ok((!changed.ids.is_empty()).then_some(changed))
    }

    /// A table's changes, row by row: a row's earlier version leaves its group (a
    /// retraction), then the row joins its group, unless it is a deletion or fails the WHERE
    /// clause. Each change emits the groups it touched, the retraction's first.
    #[allow(clippy::type_complexity)]
    fn absorb_changelog(&mut self, batch: TimedBatch, table_keys: &[usize]) -> Result<Option<Changed>, PlanError> {
        let plan = Arc::clone(&self.plan);
        let rows = batch.rows;
        let n = rows.num_rows();
        let deleted = |i: usize| batch.tombstones.as_ref().is_some_and(|t| t.value(i));
        let passes: Vec<bool> = match &plan.filter {
            None => vec![true; n],
            Some(filter) => {
                let mask = evaluate_isolating(filter, &rows, &mut self.errors)?;
                let mask = mask.as_boolean_opt().ok_or_else(|| PlanError::user("WHERE must be a condition"))?;
                (0..n).map(|i| mask.is_valid(i) && mask.value(i)).collect()
            }
        };
        let key_columns: Vec<ArrayRef> = table_keys.iter().map(|i| rows.column(*i).clone()).collect();
        if self.table_key_converter.is_none() {
            let fields = key_columns.iter().map(|k| SortField::new(k.data_type().clone())).collect();
            self.table_key_converter = Some(RowConverter::new(fields)?);
        }
        let Some(key_converter) = self.table_key_converter.as_ref() else { return Ok(None) };
        let table_keys = key_converter.convert_columns(&key_columns)?;
        let groups: Vec<ArrayRef> =
            plan.group_by.iter().map(|e| evaluate_isolating(e, &rows, &mut self.errors)).collect::<Result<_, _>>()?;
        let group_rows = self.group_ids(&groups, n)?;
        let arguments = plan.arguments(&rows, &mut self.errors)?;
        let times = rows.column(plan.row_time_index).as_primitive::<Int64Type>().clone();

        let mut changed = Changed::default();
        for (i, passed) in passes.iter().enumerate() {
            let table_key = table_keys.row(i).owned();
            let time = times.value(i);
            let mut touched: Vec<OwnedRow> = Vec::with_capacity(2);
            if let Some(previous) = self.previous.remove(&table_key)
                && let Some(group) = self.groups.get_mut(&previous.group)
            {
                for (accumulator, arguments) in group.accumulators.iter_mut().zip(&previous.arguments) {
                    if !accumulator.supports_retract_batch() {
                        return Err(PlanError::user(
                            "this aggregate function cannot take a table row out again (not supported yet)",
                        ));
                    }
                    accumulator.retract_batch(arguments)?;
                }
                touched.push(previous.group);
            }
            let grouped = groups.iter().all(|g| g.is_valid(i));
            if !deleted(i) && *passed && grouped {
                let group_key = group_rows.row(i).owned();
                let one = UInt32Array::from(vec![i as u32]);
                let row_arguments: Vec<Vec<ArrayRef>> = arguments
                    .iter()
                    .map(|args| args.iter().map(|a| take(a.as_ref(), &one, None)).collect::<Result<_, _>>())
                    .collect::<Result<_, _>>()?;
                if !self.groups.contains_key(&group_key) {
                    let key = groups.iter().map(|g| take(g.as_ref(), &one, None)).collect::<Result<_, _>>()?;
                    let accumulators = plan.accumulators()?;
                    self.next_sequence += 1;
                    let group =
                        Group { key, accumulators, latest_ms: i64::MIN, sequence: self.next_sequence, passed: false };
                    self.groups.insert(group_key.clone(), group);
                }
                if let Some(group) = self.groups.get_mut(&group_key) {
                    for (accumulator, arguments) in group.accumulators.iter_mut().zip(&row_arguments) {
                        accumulator.update_batch(arguments)?;
                    }
                }
                self.previous.insert(table_key, Previous { group: group_key.clone(), arguments: row_arguments });
                if !touched.contains(&group_key) {
                    touched.push(group_key);
                }
            }
            for key in touched {
                if let Some(group) = self.groups.get_mut(&key) {
                    group.latest_ms = group.latest_ms.max(time);
                    changed.push(key, group, time)?;
                }
            }
        }
        Ok((!changed.ids.is_empty()).then_some(changed))
    }

    /// The updated groups as output rows: HAVING, then the projection.
    fn emit(&mut self, changed: Changed, replay: bool, out: &mut Vec<TimedBatch>) -> Result<(), PlanError> {
        let plan = Arc::clone(&self.plan);
        let Changed { ids, keys, values, stamps, deleted } = changed;
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(plan.aggregate_schema.fields().len());
        for k in 0..plan.group_by.len() {
            let parts: Vec<&dyn Array> = keys.iter().map(|key| key[k].as_ref()).collect();
            columns.push(datafusion::arrow::compute::concat(&parts)?);
        }
        for (a, field) in plan.aggregate_schema.fields().iter().skip(plan.group_by.len()).enumerate() {
            let column = ScalarValue::iter_to_array(values.iter().map(|v| v[a].clone()))?;
            columns.push(if column.data_type() == field.data_type() {
                column
            } else {
                datafusion::arrow::compute::cast(&column, field.data_type())?
            });
        }
        let mut aggregated = RecordBatch::try_new(plan.aggregate_schema.clone(), columns)?;
        let mut stamps = stamps;
        // HAVING: a rejected group becomes a tombstone if its previous row was in the table,
        // and emits nothing if it was not (as Kafka Streams' filter with old values).
        // Which rows stay, and which of them are tombstones: groups gone (merged sessions),
        // and with HAVING, a rejected group that was in the table (one that was not emits
        // nothing), as Kafka Streams' filter with old values.
        let mut keep = vec![true; ids.len()];
        let mut tombstone = deleted.clone();
        if let Some(having) = &plan.having {
            let mask = evaluate_isolating(having, &aggregated, &mut self.errors)?;
            let mask = mask.as_boolean_opt().ok_or_else(|| PlanError::user("HAVING must be a condition"))?;
            // Closed windows have left `groups`; a batch may touch a group more than once.
            let mut seen: HashMap<&OwnedRow, bool> = HashMap::new();
            for (i, id) in ids.iter().enumerate() {
                if deleted[i] {
                    continue;
                }
                let passes = mask.is_valid(i) && mask.value(i);
                let before = seen.get(id).copied().unwrap_or_else(|| self.groups.get(id).is_some_and(|g| g.passed));
                seen.insert(id, passes);
                keep[i] = passes || before;
                tombstone[i] = !passes;
            }
            for (id, passes) in seen {
                if let Some(group) = self.groups.get_mut(id) {
                    group.passed = passes;
                }
            }
        }
        if keep.iter().any(|k| !k) {
            let kept = BooleanArray::from(keep.clone());
            aggregated = filter_record_batch(&aggregated, &kept)?;
            stamps = stamps.iter().zip(&keep).filter(|(_, k)| **k).map(|(s, _)| *s).collect();
            tombstone = tombstone.iter().zip(&keep).filter(|(_, k)| **k).map(|(t, _)| *t).collect();
        }
        let rejected = tombstone.iter().any(|t| *t).then(|| BooleanArray::from(tombstone));
        // The window of each row: the last two grouping columns of a windowed aggregation.
        let windows = plan.windows.map(|_| {
            let n = plan.group_by.len();
            (aggregated.column(n - 2).clone(), aggregated.column(n - 1).clone())
        });
        let stamps: ArrayRef = Arc::new(Int64Array::from(stamps));
        let tombstones = rejected;
        if aggregated.num_rows() == 0 {
            return Ok(());
        }
        let projected = plan
            .projection
            .iter()
            .map(|e| evaluate_isolating(e, &aggregated, &mut self.errors))
            .collect::<Result<Vec<_>, _>>()?;
        let rows = RecordBatch::try_new(plan.output.clone(), projected)?;
        out.push(TimedBatch { rows, timestamps_ms: stamps, tombstones, windows, replay, input: 0 });
        Ok(())
    }
}

impl Operator for Aggregate {
    fn process(&mut self, batch: TimedBatch, out: &mut Vec<TimedBatch>) -> Result<(), PlanError> {
        guarded(|| self.update(batch, out))?
    }

    fn describe(&self) -> String {
        self.description.clone()
    }

    /// The groups' batch, then a table's rows' batch when aggregating a table.
    fn snapshot(&mut self) -> Result<Option<Vec<RecordBatch>>, PlanError> {
        let AggregateSnapshot { groups, table_rows } = Aggregate::snapshot(self)?;
        Ok(Some(std::iter::once(groups).chain(table_rows).collect()))
    }

    fn restore(&mut self, state: Vec<RecordBatch>) -> Result<(), PlanError> {
        let mut state = state.into_iter();
        let groups = state.next().ok_or_else(|| PlanError::user("an aggregation's checkpoint has no groups"))?;
        Aggregate::restore(self, &AggregateSnapshot { groups, table_rows: state.next() })
    }

    fn state_bytes(&self) -> usize {
        Aggregate::state_bytes(self)
    }

    fn take_errors(&mut self) -> Vec<RowError> {
        std::mem::take(&mut self.errors)
    }
}
