//! Aggregation of a stream that emits its changes (`EMIT CHANGES`, the default), unwindowed
//! or in tumbling and hopping windows, batch at a time on DataFusion's [`GroupsAccumulator`]s.
//!
//! A table of groups ([`Groups`]: one for an unwindowed aggregation, one per open window
//! otherwise) interns keys in DataFusion's group table ([`GroupValues`]) and keeps each
//! group's key and aggregate states as Arrow rows, appended a batch at a time to a list of
//! chunks, with where each group's latest row is. A batch then costs, per aggregate, whatever
//! its number of groups:
//! 1. one `merge_batch` of the touched groups' earlier states (gathered with `interleave`)
//!    into a fresh accumulator, and one `update_batch` of the batch's rows;
//! 2. one `state`, appended as the touched groups' new rows;
//! 3. one `merge_batch` and `evaluate` of those states for the values emitted, so each group
//!    the batch touched is emitted once with its new values, stamped with the latest event
//!    time among its rows (as Kafka Streams stamps an aggregate).
//!
//! A group's superseded rows are garbage; once the chunks hold twice as many rows as there
//! are groups, they are gathered into one (amortised constant work per row). A checkpoint is
//! that gathered chunk, in [`super::aggregate::Aggregate`]'s snapshot form, so a query resumes
//! from either operator's checkpoint.
//!
//! Session windows, aggregations of tables (which take rows out again) and aggregates
//! without a groups accumulator use [`super::aggregate::Aggregate`]; tumbling and hopping
//! windows with `EMIT FINAL` use [`super::window_aggregate::FinalWindows`].

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{cast, filter_record_batch, interleave, take};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use datafusion::physical_plan::aggregates::group_values::{GroupValues, new_group_values};
use datafusion::physical_plan::aggregates::order::GroupOrdering;

use super::aggregate::{AggregatePlan, SNAPSHOT_SEQUENCE, SNAPSHOT_STREAM_TIME};
use super::operator::{Operator, TimedBatch};
use super::plan::{PlanError, RowError, evaluate_isolating, guarded};
use super::window::{WindowRows, split_by_window};

/// The key of the one table of an unwindowed aggregation.
const UNWINDOWED: i64 = i64::MIN;

/// Where a group's latest row is: chunk and row.
type At = (usize, usize);

/// A table of groups (see the module's documentation).
struct Groups {
    /// The window's end (`i64::MAX` unwindowed).
    end: i64,
    table: Box<dyn GroupValues>,
    /// Rows of the interned key columns, then each aggregate's state columns.
    chunks: Vec<Vec<ArrayRef>>,
    /// Per group: its latest row in `chunks`.
    at: Vec<At>,
    /// The rows `chunks` hold, superseded ones included.
    stored: usize,
    /// Per group: the latest event time among its rows (its results' timestamp)…
    latest: Vec<i64>,
    /// …when it began, counted across tables (kept in snapshots)…
    sequences: Vec<u64>,
    /// …and whether its last emitted row passed HAVING.
    passed: Vec<bool>,
    /// Per group, while a batch is taken in: its number among the batch's groups.
    slot: Vec<u32>,
}

/// What a batch did to one table: its groups in the order of their first row, each with the
/// key and values to emit.
struct Touched {
    /// The window (or [`UNWINDOWED`]) and each group's id in its table.
    start: i64,
    ids: Vec<usize>,
    /// Each group's first row in the batch.
    firsts: Vec<u32>,
    /// The interned key columns, a row per group.
    keys: Vec<ArrayRef>,
    /// Each aggregate's value, a row per group.
    values: Vec<ArrayRef>,
    stamps: Vec<i64>,
}

impl Groups {
    fn new(end: i64, key_schema: &SchemaRef) -> Result<Self, PlanError> {
        Ok(Groups {
            end,
            table: new_group_values(Arc::clone(key_schema), &GroupOrdering::None)?,
            chunks: Vec::new(),
            at: Vec::new(),
            stored: 0,
            latest: Vec::new(),
            sequences: Vec::new(),
            passed: Vec::new(),
            slot: Vec::new(),
        })
    }

    fn len(&self) -> usize {
        self.at.len()
    }

    /// Every group's latest row, gathered (and kept) as the one chunk.
    fn compact(&mut self) -> Result<(), PlanError> {
        if self.chunks.len() == 1 && self.stored == self.len() {
            return Ok(());
        }
        let Some(width) = self.chunks.first().map(Vec::len) else { return Ok(()) };
        let gathered = (0..width)
            .map(|c| {
                let sources: Vec<&dyn Array> = self.chunks.iter().map(|chunk| chunk[c].as_ref()).collect();
                interleave(&sources, &self.at)
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.chunks = vec![gathered];
        self.at = (0..self.len()).map(|row| (0, row)).collect();
        self.stored = self.len();
        Ok(())
    }

    /// The columns from `from` on of the given groups' latest rows.
    fn gather(&self, from: usize, width: usize, at: &[At]) -> Result<Vec<ArrayRef>, PlanError> {
        (from..from + width)
            .map(|c| {
                let sources: Vec<&dyn Array> = self.chunks.iter().map(|chunk| chunk[c].as_ref()).collect();
                Ok(interleave(&sources, at)?)
            })
            .collect()
    }

    fn bytes(&self) -> usize {
        self.table.size()
            + self.chunks.iter().flatten().map(|c| c.get_array_memory_size()).sum::<usize>()
            + self.len() * (std::mem::size_of::<At>() + 8 + 8 + 1 + 4)
    }
}

/// The operator (see the module's documentation).
pub struct GroupsAggregate {
    plan: Arc<AggregatePlan>,
    description: String,
    /// The grouping columns other than the window's (a constant column when there are none).
    key_schema: SchemaRef,
    /// How many of the grouping columns are the aggregation's own (not the window's).
    own_keys: usize,
    /// Each aggregate's number of state columns.
    widths: Vec<usize>,
    /// The tables by window start ([`UNWINDOWED`] alone when unwindowed).
    open: BTreeMap<i64, Groups>,
    stream_time: i64,
    next_sequence: u64,
    /// An unwindowed aggregation forgets a group no row has updated for this long (event
    /// time), if set; the stream time at which to look for such groups next.
    state_ttl_ms: Option<i64>,
    next_expiry: i64,
    errors: Vec<RowError>,
}

impl GroupsAggregate {
    /// Whether `plan` is one this operator runs.
    pub fn runs(plan: &AggregatePlan) -> bool {
        !plan.emit_final
            && plan.table_keys.is_none()
            && plan.windows.is_none_or(|w| !w.is_session())
            && plan.aggregates.iter().all(|a| a.groups_accumulator_supported())
    }

    pub fn try_new(plan: Arc<AggregatePlan>, description: String) -> Result<Self, PlanError> {
        if !Self::runs(&plan) {
            return Err(PlanError::internal("not a stream aggregation emitting changes on groups accumulators"));
        }
        let own_keys = plan.group_by.len() - if plan.windows.is_some() { 2 } else { 0 };
        let mut fields: Vec<Field> =
            plan.aggregate_schema.fields().iter().take(own_keys).map(|f| f.as_ref().clone()).collect();
        if fields.is_empty() {
            fields.push(Field::new("__all", DataType::Boolean, false));
        }
        let widths = plan.aggregates.iter().map(|a| a.state_fields().map(|f| f.len())).collect::<Result<_, _>>()?;
        Ok(GroupsAggregate {
            description,
            key_schema: Arc::new(Schema::new(fields)),
            own_keys,
            widths,
            open: BTreeMap::new(),
            stream_time: i64::MIN,
            next_sequence: 0,
            state_ttl_ms: None,
            next_expiry: i64::MIN,
            errors: Vec::new(),
            plan,
        })
    }

    /// Forget a group of an unwindowed aggregation once no row has updated it for `ttl_ms` of
    /// event time. Its last row stays in the output table; a later row of its key starts it
    /// again from nothing.
    pub fn with_state_ttl(mut self, ttl_ms: Option<i64>) -> Self {
        self.state_ttl_ms = ttl_ms.filter(|ttl| *ttl > 0 && self.plan.windows.is_none());
        self
    }

    fn accumulators(&self) -> Result<Vec<Box<dyn GroupsAccumulator>>, PlanError> {
        Ok(self.plan.aggregates.iter().map(|a| a.create_groups_accumulator()).collect::<Result<_, _>>()?)
    }

    /// The interned key columns of `rows` rows: the grouping columns other than the window's,
    /// or a constant column when there are none.
    fn interned_keys(&self, keys: &[ArrayRef], rows: usize) -> Vec<ArrayRef> {
        let own = &keys[..self.own_keys];
        if own.is_empty() { vec![Arc::new(BooleanArray::from(vec![true; rows]))] } else { own.to_vec() }
    }

    fn update(&mut self, batch: TimedBatch, out: &mut Vec<TimedBatch>) -> Result<(), PlanError> {
        let plan = Arc::clone(&self.plan);
        // Records without a value are no rows of a stream: they update nothing.
        let mut rows = batch.rows;
        if let Some(tombstones) = &batch.tombstones {
            rows = filter_record_batch(&rows, &datafusion::arrow::compute::not(tombstones)?)?;
        }
        match &plan.windows {
            Some(windows) => rows = windows.assign(&rows, plan.row_time_index, &mut self.stream_time)?,
            None if self.state_ttl_ms.is_some() => {
                let times = rows.column(plan.row_time_index).as_primitive::<Int64Type>();
                if let Some(latest) = datafusion::arrow::compute::max(times) {
                    self.stream_time = self.stream_time.max(latest);
                }
            }
            None => {}
        }
        // Expired groups go before the batch, which may start them again.
        self.expire()?;
        if let Some(filter) = &plan.filter {
            let mask = evaluate_isolating(filter, &rows, &mut self.errors)?;
            let mask = mask.as_boolean_opt().ok_or_else(|| PlanError::user("WHERE must be a condition"))?;
            rows = filter_record_batch(&rows, mask)?;
        }
        if rows.num_rows() > 0 {
            let touched = self.absorb(&rows)?;
            self.emit(touched, batch.replay, out)?;
        }
        self.evict();
        Ok(())
    }

    /// Takes rows into their groups; returns what each table's groups became.
    fn absorb(&mut self, rows: &RecordBatch) -> Result<Vec<Touched>, PlanError> {
        let plan = Arc::clone(&self.plan);
        let (rows, keys) = plan.grouped(rows.clone(), &mut self.errors)?;
        let n = rows.num_rows();
        if n == 0 {
            return Ok(Vec::new());
        }
        let arguments = plan.arguments(&rows, &mut self.errors)?;
        let times = rows.column(plan.row_time_index).as_primitive::<Int64Type>().clone();
        let interned = self.interned_keys(&keys, n);
        let parts = match plan.windows {
            None => {
                let (keys, arguments) = (interned, arguments);
                vec![WindowRows { start: UNWINDOWED, end: i64::MAX, rows: None, keys, arguments, times }]
            }
            Some(_) => {
                let starts = keys[keys.len() - 2].as_primitive::<Int64Type>().clone();
                let ends = keys[keys.len() - 1].as_primitive::<Int64Type>().clone();
                split_by_window(&starts, &ends, &interned, &arguments, &times)?
            }
        };
        parts.into_iter().map(|part| self.absorb_into(part)).collect()
    }

    /// Takes one table's rows in (see the module's documentation).
    fn absorb_into(&mut self, part: WindowRows) -> Result<Touched, PlanError> {
        let (start, end) = (part.start, part.end);
        let key_width = self.key_schema.fields().len();
        let mut fresh = self.accumulators()?;
        let mut evaluators = self.accumulators()?;
        if !self.open.contains_key(&start) {
            self.open.insert(start, Groups::new(end, &self.key_schema)?);
        }
        let Some(groups) = self.open.get_mut(&start) else {
            return Err(PlanError::internal("a table of groups vanished"));
        };
        let mut ids: Vec<usize> = Vec::with_capacity(part.times.len());
        groups.table.intern(&part.keys, &mut ids)?;
        let total = groups.table.len();
        groups.latest.resize(total, i64::MIN);
        groups.passed.resize(total, false);
        groups.slot.resize(total, u32::MAX);
        while groups.sequences.len() < total {
            self.next_sequence += 1;
            groups.sequences.push(self.next_sequence);
        }
        // The batch's groups in the order of their first row, and each row's among them.
        let mut touched: Vec<usize> = Vec::new();
        let mut firsts: Vec<u32> = Vec::new();
        let mut local: Vec<usize> = Vec::with_capacity(ids.len());
        for (row, (id, time)) in ids.iter().zip(part.times.values()).enumerate() {
            if groups.slot[*id] == u32::MAX {
                groups.slot[*id] = touched.len() as u32;
                touched.push(*id);
                firsts.push(row as u32);
            }
            local.push(groups.slot[*id] as usize);
            groups.latest[*id] = groups.latest[*id].max(*time);
        }
        for id in &touched {
            groups.slot[*id] = u32::MAX;
        }
        let count = touched.len();
        // The touched groups' earlier states first, then the batch's rows.
        let earlier: Vec<(usize, At)> =
            touched.iter().enumerate().filter_map(|(i, id)| groups.at.get(*id).map(|at| (i, *at))).collect();
        let mut states: Vec<Vec<ArrayRef>> = Vec::with_capacity(fresh.len());
        let mut from = key_width;
        let whence: Vec<At> = earlier.iter().map(|(_, at)| *at).collect();
        let earlier_ids: Vec<usize> = earlier.iter().map(|(i, _)| *i).collect();
        for ((accumulator, arguments), width) in fresh.iter_mut().zip(&part.arguments).zip(&self.widths) {
            if !earlier.is_empty() {
                let state = groups.gather(from, *width, &whence)?;
                accumulator.merge_batch(&state, &earlier_ids, count)?;
            }
            accumulator.update_batch(arguments, &local, None, count)?;
            states.push(accumulator.state(EmitTo::All)?);
            from += width;
        }
        let all: Vec<usize> = (0..count).collect();
        let mut values = Vec::with_capacity(evaluators.len());
        for (evaluator, state) in evaluators.iter_mut().zip(&states) {
            evaluator.merge_batch(state, &all, count)?;
            values.push(evaluator.evaluate(EmitTo::All)?);
        }
        // The touched groups' new rows.
        let positions = UInt32Array::from(firsts.clone());
        let keys: Vec<ArrayRef> =
            part.keys.iter().map(|k| take(k.as_ref(), &positions, None)).collect::<Result<_, _>>()?;
        let chunk: Vec<ArrayRef> = keys.iter().cloned().chain(states.into_iter().flatten()).collect();
        let c = groups.chunks.len();
        groups.chunks.push(chunk);
        groups.at.resize(total, (0, 0));
        for (row, id) in touched.iter().enumerate() {
            groups.at[*id] = (c, row);
        }
        groups.stored += count;
        if groups.stored >= 2 * groups.len() && groups.chunks.len() > 1 {
            groups.compact()?;
        }
        let stamps = touched.iter().map(|id| groups.latest[*id]).collect();
        let firsts = match &part.rows {
            Some(rows) => firsts.iter().map(|f| rows.value(*f as usize)).collect(),
            None => firsts,
        };
        Ok(Touched { start, ids: touched, firsts, keys, values, stamps })
    }

    /// The touched groups as output rows, in the order of their first row: HAVING, then the
    /// projection.
    fn emit(&mut self, touched: Vec<Touched>, replay: bool, out: &mut Vec<TimedBatch>) -> Result<(), PlanError> {
        if touched.is_empty() {
            return Ok(());
        }
        let plan = Arc::clone(&self.plan);
        let mut parts = Vec::with_capacity(touched.len());
        for part in &touched {
            let count = part.ids.len();
            let mut columns: Vec<ArrayRef> = if self.own_keys == 0 { Vec::new() } else { part.keys.clone() };
            if plan.windows.is_some() {
                let end = self.open.get(&part.start).map_or(i64::MAX, |g| g.end);
                columns.push(Arc::new(Int64Array::from(vec![part.start; count])));
                columns.push(Arc::new(Int64Array::from(vec![end; count])));
            }
            columns.extend(part.values.iter().cloned());
            let columns = columns
                .into_iter()
                .zip(plan.aggregate_schema.fields())
                .map(|(c, f)| if c.data_type() == f.data_type() { Ok(c) } else { cast(&c, f.data_type()) })
                .collect::<Result<Vec<_>, _>>()?;
            parts.push(RecordBatch::try_new(plan.aggregate_schema.clone(), columns)?);
        }
        let mut aggregated = datafusion::arrow::compute::concat_batches(&plan.aggregate_schema, &parts)?;
        let mut owners: Vec<(i64, usize)> =
            touched.iter().flat_map(|t| t.ids.iter().map(|id| (t.start, *id))).collect();
        let mut stamps: Vec<i64> = touched.iter().flat_map(|t| t.stamps.iter().copied()).collect();
        if touched.len() > 1 {
            let firsts = UInt32Array::from(touched.iter().flat_map(|t| t.firsts.iter().copied()).collect::<Vec<_>>());
            let order = datafusion::arrow::compute::sort_to_indices(&firsts, None, None)?;
            let columns =
                aggregated.columns().iter().map(|c| take(c.as_ref(), &order, None)).collect::<Result<Vec<_>, _>>()?;
            aggregated = RecordBatch::try_new(plan.aggregate_schema.clone(), columns)?;
            owners = order.values().iter().map(|i| owners[*i as usize]).collect();
            stamps = order.values().iter().map(|i| stamps[*i as usize]).collect();
        }
        // HAVING: a rejected group becomes a tombstone if its previous row was in the table,
        // and emits nothing if it was not (as Kafka Streams' filter with old values).
        let mut tombstones = None;
        if let Some(having) = &plan.having {
            let mask = evaluate_isolating(having, &aggregated, &mut self.errors)?;
            let mask = mask.as_boolean_opt().ok_or_else(|| PlanError::user("HAVING must be a condition"))?;
            let mut keep = Vec::with_capacity(owners.len());
            let mut rejected = Vec::with_capacity(owners.len());
            for (i, (start, id)) in owners.iter().enumerate() {
                let passes = mask.is_valid(i) && mask.value(i);
                let before = match self.open.get_mut(start).and_then(|g| g.passed.get_mut(*id)) {
                    Some(passed) => std::mem::replace(passed, passes),
                    None => false,
                };
                keep.push(passes || before);
                if passes || before {
                    rejected.push(!passes);
                }
            }
            if keep.iter().any(|k| !k) {
                aggregated = filter_record_batch(&aggregated, &BooleanArray::from(keep.clone()))?;
                stamps = stamps.iter().zip(&keep).filter(|(_, k)| **k).map(|(s, _)| *s).collect();
            }
            tombstones = rejected.iter().any(|r| *r).then(|| BooleanArray::from(rejected));
        }
        if aggregated.num_rows() == 0 {
            return Ok(());
        }
        let windows = plan.windows.map(|_| {
            let n = plan.group_by.len();
            (aggregated.column(n - 2).clone(), aggregated.column(n - 1).clone())
        });
        let projected = plan
            .projection
            .iter()
            .map(|e| evaluate_isolating(e, &aggregated, &mut self.errors))
            .collect::<Result<Vec<_>, _>>()?;
        let rows = RecordBatch::try_new(plan.output.clone(), projected)?;
        out.push(TimedBatch {
            rows,
            timestamps_ms: Arc::new(Int64Array::from(stamps)),
            tombstones,
            windows,
            replay,
            input: 0,
        });
        Ok(())
    }

    /// Windows that have closed leave the state (their last changes were emitted already).
    fn evict(&mut self) {
        let Some(windows) = self.plan.windows else { return };
        let delay = windows.close_delay();
        while let Some(entry) = self.open.first_entry() {
            if entry.get().end.saturating_add(delay) > self.stream_time {
                break;
            }
            entry.remove();
        }
    }

    /// Drops the groups older than the state's time-to-live, looking a quarter of it apart.
    fn expire(&mut self) -> Result<(), PlanError> {
        let Some(ttl) = self.state_ttl_ms else { return Ok(()) };
        if self.stream_time < self.next_expiry {
            return Ok(());
        }
        self.next_expiry = self.stream_time.saturating_add((ttl / 4).max(1));
        let horizon = self.stream_time.saturating_sub(ttl);
        let Some(groups) = self.open.get_mut(&UNWINDOWED) else { return Ok(()) };
        let kept: Vec<u32> = (0..groups.len()).filter(|g| groups.latest[*g] >= horizon).map(|g| g as u32).collect();
        if kept.len() == groups.len() {
            return Ok(());
        }
        groups.compact()?;
        let kept = UInt32Array::from(kept);
        let rows: Vec<ArrayRef> = match groups.chunks.first() {
            Some(chunk) => chunk.iter().map(|c| take(c.as_ref(), &kept, None)).collect::<Result<_, _>>()?,
            None => return Ok(()),
        };
        let pick = |values: &[i64]| kept.values().iter().map(|g| values[*g as usize]).collect::<Vec<_>>();
        let latest = pick(&groups.latest);
        let sequences = kept.values().iter().map(|g| groups.sequences[*g as usize]).collect();
        let passed = kept.values().iter().map(|g| groups.passed[*g as usize]).collect();
        let key_width = self.key_schema.fields().len();
        let mut rebuilt = Groups::new(i64::MAX, &self.key_schema)?;
        rebuilt.fill(rows, key_width, latest, sequences, passed)?;
        self.open.insert(UNWINDOWED, rebuilt);
        Ok(())
    }

    /// The state in [`super::aggregate::Aggregate`]'s form: a row per group (grouping
    /// columns, each aggregate's state columns, latest event time, sequence, HAVING mark),
    /// in the order the groups began, stream time in the metadata.
    fn snapshot_groups(&mut self) -> Result<RecordBatch, PlanError> {
        let plan = Arc::clone(&self.plan);
        let key_width = self.key_schema.fields().len();
        let mut parts: Vec<RecordBatch> = Vec::with_capacity(self.open.len());
        for (start, groups) in self.open.iter_mut() {
            groups.compact()?;
            let Some(chunk) = groups.chunks.first() else { continue };
            let count = groups.len();
            let mut columns: Vec<ArrayRef> = if self.own_keys == 0 { Vec::new() } else { chunk[..key_width].to_vec() };
            if plan.windows.is_some() {
                columns.push(Arc::new(Int64Array::from(vec![*start; count])));
                columns.push(Arc::new(Int64Array::from(vec![groups.end; count])));
            }
            columns.extend(chunk[key_width..].iter().cloned());
            columns.push(Arc::new(Int64Array::from(groups.latest.clone())));
            columns.push(Arc::new(Int64Array::from(groups.sequences.iter().map(|s| *s as i64).collect::<Vec<_>>())));
            columns.push(Arc::new(BooleanArray::from(groups.passed.clone())));
            parts.push(RecordBatch::try_new(plan.snapshot_schema(&columns)?, columns)?);
        }
        let schema = match parts.first() {
            Some(part) => part.schema(),
            None => plan.empty_snapshot_schema()?,
        };
        let all = datafusion::arrow::compute::concat_batches(&schema, &parts)?;
        let metadata = [(SNAPSHOT_STREAM_TIME.to_owned(), self.stream_time.to_string())].into();
        let schema = Arc::new(schema.as_ref().clone().with_metadata(metadata));
        if parts.len() <= 1 {
            return Ok(RecordBatch::try_new(schema, all.columns().to_vec())?);
        }
        // Groups in the order they began, across windows.
        let sequences = all.column_by_name(SNAPSHOT_SEQUENCE).ok_or_else(|| PlanError::internal("no sequence"))?;
        let order = datafusion::arrow::compute::sort_to_indices(sequences, None, None)?;
        let columns = all.columns().iter().map(|c| take(c.as_ref(), &order, None)).collect::<Result<Vec<_>, _>>()?;
        Ok(RecordBatch::try_new(schema, columns)?)
    }

    fn restore_groups(&mut self, snapshot: &RecordBatch) -> Result<(), PlanError> {
        let (tables, stream_time) = self.plan.read_snapshot(snapshot)?;
        self.open.clear();
        self.stream_time = stream_time;
        self.next_sequence = 0;
        let key_width = self.key_schema.fields().len();
        for table in tables {
            let mut chunk = self.interned_keys(&table.keys, table.latest.len());
            chunk.extend(table.states.into_iter().flatten());
            self.next_sequence = table.sequences.iter().copied().fold(self.next_sequence, u64::max);
            let mut groups = Groups::new(table.end, &self.key_schema)?;
            groups.fill(chunk, key_width, table.latest, table.sequences, table.passed)?;
            self.open.insert(table.start, groups);
        }
        Ok(())
    }
}

impl Groups {
    /// Fills an empty table with distinct groups' rows (keys, then states) and their marks.
    fn fill(
        &mut self,
        chunk: Vec<ArrayRef>,
        key_width: usize,
        latest: Vec<i64>,
        sequences: Vec<u64>,
        passed: Vec<bool>,
    ) -> Result<(), PlanError> {
        let count = latest.len();
        let mut ids = Vec::with_capacity(count);
        self.table.intern(&chunk[..key_width], &mut ids)?;
        if self.table.len() != count || ids.iter().enumerate().any(|(i, id)| i != *id) {
            return Err(PlanError::user("the snapshot holds a group twice"));
        }
        self.chunks = vec![chunk];
        self.at = (0..count).map(|row| (0, row)).collect();
        self.stored = count;
        self.latest = latest;
        self.sequences = sequences;
        self.passed = passed;
        self.slot = vec![u32::MAX; count];
        Ok(())
    }
}

impl Operator for GroupsAggregate {
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
        self.open.values().map(Groups::bytes).sum()
    }

    fn take_errors(&mut self) -> Vec<RowError> {
        std::mem::take(&mut self.errors)
    }
}
