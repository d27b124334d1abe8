//! Tumbling and hopping windows with `EMIT FINAL`, batch at a time: each open window holds
//! its groups in DataFusion's group table ([`GroupValues`]) and its aggregates'
//! [`GroupsAccumulator`]s, so a batch costs one `intern` and one `update_batch` per window
//! it touches, whatever the number of groups, and no state is kept per group beyond the
//! accumulators' columns. A window's results are emitted when it closes, all at once, in
//! the order its groups began, and the window is dropped.
//!
//! Windows that emit changes run on [`super::groups_aggregate::GroupsAggregate`]; session
//! windows, aggregations of tables and aggregates without a groups accumulator on
//! [`super::aggregate::Aggregate`]. All write and read one snapshot form: a query can resume
//! from any one's checkpoint.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch};
use datafusion::arrow::compute::{cast, filter_record_batch, take};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use datafusion::physical_plan::aggregates::group_values::{GroupValues, new_group_values};
use datafusion::physical_plan::aggregates::order::GroupOrdering;

use super::aggregate::{AggregatePlan, SNAPSHOT_SEQUENCE, SNAPSHOT_STREAM_TIME};
use super::operator::{Operator, TimedBatch};
use super::plan::{PlanError, RowError, evaluate_isolating, guarded};

/// One open window's groups.
struct Window {
    end: i64,
    groups: Box<dyn GroupValues>,
    accumulators: Vec<Box<dyn GroupsAccumulator>>,
    /// Per group: the latest event time among its rows (its result's timestamp)…
    latest: Vec<i64>,
    /// …and when it began, counted across windows (kept in snapshots).
    sequences: Vec<u64>,
}

/// The operator (see the module's documentation).
pub struct FinalWindows {
    plan: Arc<AggregatePlan>,
    windows: super::window::TimeWindows,
    description: String,
    /// The grouping columns other than the window's (a constant column when there are none).
    key_schema: SchemaRef,
    /// Open windows by start.
    open: BTreeMap<i64, Window>,
    stream_time: i64,
    next_sequence: u64,
    errors: Vec<RowError>,
}

impl FinalWindows {
    /// Whether `plan` is one this operator runs.
    pub fn runs(plan: &AggregatePlan) -> bool {
        plan.emit_final
            && plan.table_keys.is_none()
            && plan.windows.is_some_and(|w| !w.is_session())
            && plan.group_by.len() >= 2
            && plan.aggregates.iter().all(|a| a.groups_accumulator_supported())
    }

    pub fn try_new(plan: Arc<AggregatePlan>, description: String) -> Result<Self, PlanError> {
        let Some(windows) = plan.windows.filter(|_| Self::runs(&plan)) else {
            return Err(PlanError::user("not a tumbling or hopping window with EMIT FINAL"));
        };
        let keys = plan.group_by.len() - 2;
        let mut fields: Vec<Field> =
            plan.aggregate_schema.fields().iter().take(keys).map(|f| f.as_ref().clone()).collect();
        if fields.is_empty() {
            fields.push(Field::new("__all", DataType::Boolean, false));
        }
        Ok(FinalWindows {
            windows,
            description,
            key_schema: Arc::new(Schema::new(fields)),
            open: BTreeMap::new(),
            stream_time: i64::MIN,
            next_sequence: 0,
            errors: Vec::new(),
            plan,
        })
    }

    fn window(&self, end: i64) -> Result<Window, PlanError> {
        Ok(Window {
            end,
            groups: new_group_values(Arc::clone(&self.key_schema), &GroupOrdering::None)?,
            accumulators: self
                .plan
                .aggregates
                .iter()
                .map(|a| a.create_groups_accumulator())
                .collect::<Result<_, _>>()?,
            latest: Vec::new(),
            sequences: Vec::new(),
        })
    }

    /// The grouping columns other than the window's, of `rows` rows.
    fn key_columns(&self, keys: &[ArrayRef], rows: usize) -> Vec<ArrayRef> {
        let own = &keys[..keys.len() - 2];
        if own.is_empty() { vec![Arc::new(BooleanArray::from(vec![true; rows]))] } else { own.to_vec() }
    }

    fn update(&mut self, batch: TimedBatch, out: &mut Vec<TimedBatch>) -> Result<(), PlanError> {
        let plan = Arc::clone(&self.plan);
        // Records without a value are no rows of a stream: they update nothing.
        let mut rows = batch.rows;
        if let Some(tombstones) = &batch.tombstones {
            rows = filter_record_batch(&rows, &datafusion::arrow::compute::not(tombstones)?)?;
        }
        rows = self.windows.assign(&rows, plan.row_time_index, &mut self.stream_time)?;
        if let Some(filter) = &plan.filter {
            let mask = evaluate_isolating(filter, &rows, &mut self.errors)?;
            let mask = mask.as_boolean_opt().ok_or_else(|| PlanError::user("WHERE must be a condition"))?;
            rows = filter_record_batch(&rows, mask)?;
        }
        if rows.num_rows() > 0 {
            self.absorb(&rows)?;
        }
        self.evict(batch.replay, out)
    }

    /// Takes windowed rows into their windows' groups.
    fn absorb(&mut self, rows: &RecordBatch) -> Result<(), PlanError> {
        let plan = Arc::clone(&self.plan);
        let (rows, keys) = plan.grouped(rows.clone(), &mut self.errors)?;
        let n = rows.num_rows();
        if n == 0 {
            return Ok(());
        }
        let arguments = plan.arguments(&rows, &mut self.errors)?;
        let times = rows.column(plan.row_time_index).as_primitive::<Int64Type>().clone();
        let starts = keys[keys.len() - 2].as_primitive::<Int64Type>().clone();
        let ends = keys[keys.len() - 1].as_primitive::<Int64Type>().clone();
        let key_columns = self.key_columns(&keys, n);
        let mut ids: Vec<usize> = Vec::with_capacity(n);
        for part in super::window::split_by_window(&starts, &ends, &key_columns, &arguments, &times)? {
            let super::window::WindowRows { start, end, keys: columns, arguments, times, .. } = part;
            if !self.open.contains_key(&start) {
                let window = self.window(end)?;
                self.open.insert(start, window);
            }
            let Some(window) = self.open.get_mut(&start) else { continue };
            ids.clear();
            window.groups.intern(&columns, &mut ids)?;
            let total = window.groups.len();
            for (accumulator, args) in window.accumulators.iter_mut().zip(&arguments) {
                accumulator.update_batch(args, &ids, None, total)?;
            }
            while window.sequences.len() < total {
                self.next_sequence += 1;
                window.sequences.push(self.next_sequence);
            }
            window.latest.resize(total, i64::MIN);
            for (id, time) in ids.iter().zip(times.values()) {
                window.latest[*id] = window.latest[*id].max(*time);
            }
        }
        Ok(())
    }

    /// Emits and drops the windows that have closed, earliest first.
    fn evict(&mut self, replay: bool, out: &mut Vec<TimedBatch>) -> Result<(), PlanError> {
        let delay = self.windows.close_delay();
        while let Some(entry) = self.open.first_entry() {
            if entry.get().end.saturating_add(delay) > self.stream_time {
                break;
            }
            let start = *entry.key();
            let window = entry.remove();
            self.emit(start, window, replay, out)?;
        }
        Ok(())
    }

    /// A window's grouping columns, emptying its group table: its own key columns as
    /// interned (the constant column when there are none), and the aggregation's grouping
    /// columns (the key columns, then the window's start and end).
    fn take_keys(&self, start: i64, window: &mut Window) -> Result<(Vec<ArrayRef>, Vec<ArrayRef>), PlanError> {
        let count = window.latest.len();
        let interned = window.groups.emit(EmitTo::All)?;
        let mut columns = if self.plan.group_by.len() == 2 { Vec::new() } else { interned.clone() };
        columns.push(Arc::new(Int64Array::from(vec![start; count])));
        columns.push(Arc::new(Int64Array::from(vec![window.end; count])));
        Ok((interned, columns))
    }

    /// A window's groups as the aggregation's rows (group columns, window, aggregates), with
    /// each group's latest event time; the window is left empty.
    fn drain(&self, start: i64, window: &mut Window) -> Result<(RecordBatch, Vec<i64>), PlanError> {
        let plan = &self.plan;
        let (_, mut columns) = self.take_keys(start, window)?;
        for accumulator in &mut window.accumulators {
            columns.push(accumulator.evaluate(EmitTo::All)?);
        }
        let columns = columns
            .into_iter()
            .zip(plan.aggregate_schema.fields())
            .map(|(c, f)| if c.data_type() == f.data_type() { Ok(c) } else { cast(&c, f.data_type()) })
            .collect::<Result<Vec<_>, _>>()?;
        let rows = RecordBatch::try_new(plan.aggregate_schema.clone(), columns)?;
        Ok((rows, std::mem::take(&mut window.latest)))
    }

    fn emit(
        &mut self,
        start: i64,
        mut window: Window,
        replay: bool,
        out: &mut Vec<TimedBatch>,
    ) -> Result<(), PlanError> {
        let plan = Arc::clone(&self.plan);
        let (mut aggregated, stamps) = self.drain(start, &mut window)?;
        let mut stamps = Int64Array::from(stamps);
        // HAVING drops a window's group: a final result is emitted once, so none was in the
        // table before.
        if let Some(having) = &plan.having {
            let mask = evaluate_isolating(having, &aggregated, &mut self.errors)?;
            let mask = mask.as_boolean_opt().ok_or_else(|| PlanError::user("HAVING must be a condition"))?;
            // (A null HAVING drops its row: arrow's filter passes only true.)
            aggregated = filter_record_batch(&aggregated, mask)?;
            stamps = datafusion::arrow::compute::filter(&stamps, mask)?.as_primitive::<Int64Type>().clone();
        }
        if aggregated.num_rows() == 0 {
            return Ok(());
        }
        let n = plan.group_by.len();
        let windows = Some((aggregated.column(n - 2).clone(), aggregated.column(n - 1).clone()));
        let projected = plan
            .projection
            .iter()
            .map(|e| evaluate_isolating(e, &aggregated, &mut self.errors))
            .collect::<Result<Vec<_>, _>>()?;
        let rows = RecordBatch::try_new(plan.output.clone(), projected)?;
        out.push(TimedBatch { rows, timestamps_ms: Arc::new(stamps), tombstones: None, windows, replay, input: 0 });
        Ok(())
    }

    /// The state in [`super::aggregate::Aggregate`]'s form: a row per group (grouping
    /// columns, each aggregate's state columns, latest event time, sequence, HAVING mark),
    /// in the order the groups began, stream time in the metadata. Taking a window's state
    /// empties its accumulators, so each window is built again from what was taken.
    fn snapshot_groups(&mut self) -> Result<RecordBatch, PlanError> {
        let mut parts: Vec<RecordBatch> = Vec::with_capacity(self.open.len());
        let starts: Vec<i64> = self.open.keys().copied().collect();
        for start in starts {
            let Some(mut window) = self.open.remove(&start) else { continue };
            let count = window.latest.len();
            let (own_keys, mut columns) = self.take_keys(start, &mut window)?;
            let mut states: Vec<Vec<ArrayRef>> = Vec::with_capacity(window.accumulators.len());
            for accumulator in &mut window.accumulators {
                let state = accumulator.state(EmitTo::All)?;
                columns.extend(state.iter().cloned());
                states.push(state);
            }
            columns.push(Arc::new(Int64Array::from(window.latest.clone())));
            columns.push(Arc::new(Int64Array::from(window.sequences.iter().map(|s| *s as i64).collect::<Vec<_>>())));
            columns.push(Arc::new(BooleanArray::from(vec![false; count])));
            // The window again, from what was taken.
            let mut rebuilt = self.window(window.end)?;
            let mut ids = Vec::with_capacity(count);
            rebuilt.groups.intern(&own_keys, &mut ids)?;
            for (accumulator, state) in rebuilt.accumulators.iter_mut().zip(&states) {
                accumulator.merge_batch(state, &ids, count)?;
            }
            rebuilt.latest = window.latest;
            rebuilt.sequences = window.sequences;
            self.open.insert(start, rebuilt);
            parts.push(RecordBatch::try_new(self.plan.snapshot_schema(&columns)?, columns)?);
        }
        let schema = match parts.first() {
            Some(part) => part.schema(),
            None => self.plan.empty_snapshot_schema()?,
        };
        let mut all = datafusion::arrow::compute::concat_batches(&schema, &parts)?;
        // Groups in the order they began, across windows.
        let order = datafusion::arrow::compute::sort_to_indices(
            all.column_by_name(SNAPSHOT_SEQUENCE).ok_or_else(|| PlanError::user("no sequence"))?,
            None,
            None,
        )?;
        let columns = all.columns().iter().map(|c| take(c.as_ref(), &order, None)).collect::<Result<Vec<_>, _>>()?;
        let metadata = [(SNAPSHOT_STREAM_TIME.to_owned(), self.stream_time.to_string())].into();
        all = RecordBatch::try_new(Arc::new(schema.as_ref().clone().with_metadata(metadata)), columns)?;
        Ok(all)
    }

    fn restore_groups(&mut self, snapshot: &RecordBatch) -> Result<(), PlanError> {
        let (tables, stream_time) = self.plan.read_snapshot(snapshot)?;
        self.open.clear();
        self.stream_time = stream_time;
        self.next_sequence = 0;
        for table in tables {
            let count = table.latest.len();
            let mut window = self.window(table.end)?;
            let mut ids = Vec::with_capacity(count);
            window.groups.intern(&self.key_columns(&table.keys, count), &mut ids)?;
            for (accumulator, state) in window.accumulators.iter_mut().zip(&table.states) {
                accumulator.merge_batch(state, &ids, count)?;
            }
            self.next_sequence = table.sequences.iter().copied().fold(self.next_sequence, u64::max);
            window.latest = table.latest;
            window.sequences = table.sequences;
            self.open.insert(table.start, window);
        }
        Ok(())
    }
}

impl Operator for FinalWindows {
    fn process(&mut self, batch: TimedBatch, out: &mut Vec<TimedBatch>) -> Result<(), PlanError> {
        guarded(|| self.update(batch, out))?
    }

    fn describe(&self) -> String {
        self.description.clone()
    }

    fn snapshot(&mut self) -> Result<Option<Vec<RecordBatch>>, PlanError> {
        Ok(Some(vec![guarded(|| self.snapshot_groups())??]))
    }

    fn restore(&mut self, state: Vec<RecordBatch>) -> Result<(), PlanError> {
        let groups = state.first().ok_or_else(|| PlanError::user("an aggregation's checkpoint has no groups"))?;
        guarded(|| self.restore_groups(groups))?
    }

    fn state_bytes(&self) -> usize {
        self.open
            .values()
            .map(|w| w.groups.size() + w.accumulators.iter().map(|a| a.size()).sum::<usize>() + w.latest.len() * 16)
            .sum()
    }

    fn take_errors(&mut self) -> Vec<RowError> {
        std::mem::take(&mut self.errors)
    }
}
