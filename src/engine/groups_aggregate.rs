//! Aggregation that emits its changes (`EMIT CHANGES`, the default) of a stream, unwindowed
//! or in tumbling and hopping windows, and of a table, batch at a time on DataFusion's
//! [`GroupsAccumulator`]s.
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
//! A table's rows change: each row's contribution (its group and arguments) is kept by its
//! key, in chunks as the states are, and a changed row's earlier contribution is taken out of
//! its group before the new one goes in. `GroupsAccumulator` cannot take rows out, so this
//! runs only for aggregates whose state is a sum (COUNT, SUM, AVG: see
//! [`super::udf::aggregates::retracts_by_negation`]): a row taken out is its own state
//! (`convert_to_state`) negated and merged. ksqlDB emits every change of a table's
//! aggregation, so a batch is taken in as runs of changes that touch no group and no key
//! twice, each run's groups emitted with the values they have after it.
//!
//! Session windows, tables' aggregations of other functions and aggregates without a groups
//! accumulator use [`super::aggregate::Aggregate`]; tumbling and hopping windows with
//! `EMIT FINAL` use [`super::window_aggregate::FinalWindows`].

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

/// A group interned ahead of its first row (a table's changes are interned before they are
/// taken in, run by run) has no row yet.
const NOWHERE: At = (usize::MAX, 0);

/// Rows kept a batch at a time: chunks of columns, appended, each owner's latest row found by
/// where it is ([`At`]; [`NOWHERE`] for none). Superseded rows are garbage until
/// [`Chunks::compact`] gathers the live ones into one chunk.
#[derive(Default)]
struct Chunks {
    chunks: Vec<Vec<ArrayRef>>,
    /// The rows the chunks hold, superseded ones included.
    stored: usize,
}

impl Chunks {
    /// Appends a chunk; returns its number.
    fn push(&mut self, chunk: Vec<ArrayRef>) -> usize {
        self.stored += chunk.first().map_or(0, |c| c.len());
        self.chunks.push(chunk);
        self.chunks.len() - 1
    }

    /// Holds `chunk` alone, its rows all live.
    fn replace(&mut self, chunk: Vec<ArrayRef>) {
        self.chunks.clear();
        self.stored = 0;
        self.push(chunk);
    }

    fn width(&self) -> usize {
        self.chunks.first().map_or(0, Vec::len)
    }

    /// The given columns of the rows at `at`.
    fn gather(&self, columns: std::ops::Range<usize>, at: &[At]) -> Result<Vec<ArrayRef>, PlanError> {
        columns
            .map(|c| {
                let sources: Vec<&dyn Array> = self.chunks.iter().map(|chunk| chunk[c].as_ref()).collect();
                Ok(interleave(&sources, at)?)
            })
            .collect()
    }

    /// Whether the garbage is worth gathering away: as many superseded rows as `live` ones.
    fn crowded(&self, live: usize) -> bool {
        self.chunks.len() > 1 && self.stored >= 2 * live.max(1)
    }

    /// Gathers the rows `at` points to (in its order) into the one chunk, and points `at` there.
    fn compact(&mut self, at: &mut [At]) -> Result<(), PlanError> {
        let placed: Vec<At> = at.iter().copied().filter(|at| *at != NOWHERE).collect();
        if self.chunks.len() <= 1 && self.stored == placed.len() {
            return Ok(());
        }
        if placed.is_empty() {
            self.chunks.clear();
            self.stored = 0;
            return Ok(());
        }
        let gathered = self.gather(0..self.width(), &placed)?;
        for (next, at) in at.iter_mut().filter(|at| **at != NOWHERE).enumerate() {
            *at = (0, next);
        }
        self.replace(gathered);
        Ok(())
    }

    /// The one chunk, once compacted.
    fn only(&self) -> Option<&Vec<ArrayRef>> {
        self.chunks.first()
    }

    fn bytes(&self) -> usize {
        self.chunks.iter().flatten().map(|c| c.get_array_memory_size()).sum()
    }
}

/// A table of groups (see the module's documentation).
struct Groups {
    /// The window's end (`i64::MAX` unwindowed).
    end: i64,
    table: Box<dyn GroupValues>,
    /// Rows of the interned key columns, then each aggregate's state columns.
    rows: Chunks,
    /// Per group: its latest row in `rows`.
    at: Vec<At>,
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
            rows: Chunks::default(),
            at: Vec::new(),
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
        self.rows.compact(&mut self.at)
    }

    fn bytes(&self) -> usize {
        self.table.size() + self.rows.bytes() + self.len() * (std::mem::size_of::<At>() + 8 + 8 + 1 + 4)
    }
}

/// Aggregating a table: the rows a batch takes out of their groups. They are the first
/// `rows` rows of the table's share of the batch, whose other rows are added.
struct Retracted {
    rows: usize,
    /// Each aggregate's arguments for the rows taken out.
    arguments: Vec<Vec<ArrayRef>>,
    /// The order in which the rows change their groups: each table row's earlier version
    /// taken out before its new one is added.
    order: Vec<u32>,
}

/// Aggregating a table: each table row's contribution to its group, by its key, kept as
/// Arrow rows as the groups' states are (the key columns, the interned grouping columns,
/// then each aggregate's arguments).
struct Contributions {
    /// The table's key columns, interned.
    key_fields: Vec<Field>,
    keys: Box<dyn GroupValues>,
    rows: Chunks,
    /// Per table key: its row's contribution ([`NOWHERE`] when it has none: deleted, or in no
    /// group), and that group's id.
    at: Vec<At>,
    group: Vec<usize>,
    /// How many table keys have a contribution.
    live: usize,
}

/// A batch of a table's changes, evaluated: each row's interned grouping columns, each
/// aggregate's arguments, its time and its table key.
struct Changes {
    interned: Vec<ArrayRef>,
    arguments: Vec<Vec<ArrayRef>>,
    times: ArrayRef,
    table_keys: Vec<ArrayRef>,
}

impl Contributions {
    fn new(key_fields: Vec<Field>) -> Result<Self, PlanError> {
        Ok(Contributions {
            keys: new_group_values(Arc::new(Schema::new(key_fields.clone())), &GroupOrdering::None)?,
            key_fields,
            rows: Chunks::default(),
            at: Vec::new(),
            group: Vec::new(),
            live: 0,
        })
    }

    /// The contribution of table key `key`, and its group, if it has one.
    fn of(&self, key: usize) -> Option<(At, usize)> {
        (self.at[key] != NOWHERE).then(|| (self.at[key], self.group[key]))
    }

    /// Every live contribution, gathered (and kept) as the one chunk, in table key order.
    fn compact(&mut self) -> Result<Option<&Vec<ArrayRef>>, PlanError> {
        self.rows.compact(&mut self.at)?;
        Ok(self.rows.only())
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
    /// Aggregating a table: its rows' contributions.
    contributions: Option<Contributions>,
    errors: Vec<RowError>,
}

impl GroupsAggregate {
    /// Whether `plan` is one this operator runs.
    pub fn runs(plan: &AggregatePlan) -> bool {
        let table = plan.table_keys.is_some();
        !plan.emit_final
            && plan.windows.is_none_or(|w| !w.is_session() && !table)
            && plan.aggregates.iter().all(|a| a.groups_accumulator_supported())
            && (!table || plan.aggregates.iter().all(|a| super::udf::aggregates::retracts_by_negation(a)))
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
            contributions: None,
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
        if let Some(table_keys) = &plan.table_keys {
            return self.absorb_changes(&batch, table_keys, out);
        }
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
        parts.into_iter().map(|part| self.absorb_into(part, None)).collect()
    }

    /// A table's changes, in order: a row's earlier version leaves its group (a retraction)
    /// before the row joins its own, unless it is a deletion, fails the WHERE clause or has a
    /// null grouping value. Each change emits the groups it touched, the retraction's first,
    /// as ksqlDB does. The batch is cut into runs of changes that touch no group and no key
    /// twice, each run taken in at once: its changes' values are then each change's own.
    fn absorb_changes(
        &mut self,
        batch: &TimedBatch,
        table_keys: &[usize],
        out: &mut Vec<TimedBatch>,
    ) -> Result<(), PlanError> {
        let plan = Arc::clone(&self.plan);
        let rows = &batch.rows;
        let n = rows.num_rows();
        if n == 0 {
            return Ok(());
        }
        let passes: Option<BooleanArray> = match &plan.filter {
            None => None,
            Some(filter) => {
                let mask = evaluate_isolating(filter, rows, &mut self.errors)?;
                Some(mask.as_boolean_opt().ok_or_else(|| PlanError::user("WHERE must be a condition"))?.clone())
            }
        };
        let keys: Vec<ArrayRef> =
            plan.group_by.iter().map(|e| evaluate_isolating(e, rows, &mut self.errors)).collect::<Result<_, _>>()?;
        let deleted = |i: usize| batch.tombstones.as_ref().is_some_and(|t| t.is_valid(i) && t.value(i));
        let adds: Vec<bool> = (0..n)
            .map(|i| {
                !deleted(i)
                    && keys.iter().all(|k| k.is_valid(i))
                    && passes.as_ref().is_none_or(|p| p.is_valid(i) && p.value(i))
            })
            .collect();
        let changes = Changes {
            interned: self.interned_keys(&keys, n),
            arguments: plan.arguments(rows, &mut self.errors)?,
            times: rows.column(plan.row_time_index).clone(),
            table_keys: table_keys.iter().map(|i| rows.column(*i).clone()).collect(),
        };
        if self.contributions.is_none() {
            let fields = changes
                .table_keys
                .iter()
                .enumerate()
                .map(|(i, c)| Field::new(format!("__key{i}"), c.data_type().clone(), true))
                .collect();
            self.contributions = Some(Contributions::new(fields)?);
        }
        if !self.open.contains_key(&UNWINDOWED) {
            self.open.insert(UNWINDOWED, Groups::new(i64::MAX, &self.key_schema)?);
        }
        // Each row's table key, and the group it joins (if it does).
        let (Some(contributions), Some(groups)) = (self.contributions.as_mut(), self.open.get_mut(&UNWINDOWED)) else {
            return Err(PlanError::internal("a table's aggregation lost its state"));
        };
        let mut ids = Vec::with_capacity(n);
        contributions.keys.intern(&changes.table_keys, &mut ids)?;
        contributions.at.resize(contributions.keys.len(), NOWHERE);
        contributions.group.resize(contributions.keys.len(), usize::MAX);
        let joining = UInt32Array::from((0..n as u32).filter(|i| adds[*i as usize]).collect::<Vec<_>>());
        let joining_keys: Vec<ArrayRef> =
            changes.interned.iter().map(|k| take(k.as_ref(), &joining, None)).collect::<Result<_, _>>()?;
        let mut joined = Vec::with_capacity(joining.len());
        groups.table.intern(&joining_keys, &mut joined)?;
        let mut group_of: Vec<Option<usize>> = vec![None; n];
        for (row, group) in joining.values().iter().zip(&joined) {
            group_of[*row as usize] = Some(*group);
        }
        // Runs of changes touching no group and no key twice.
        let mut run: Vec<u32> = Vec::new();
        let mut seen_groups: std::collections::HashSet<usize> = std::collections::HashSet::new();
        let mut seen_keys: std::collections::HashSet<usize> = std::collections::HashSet::new();
        for row in 0..n {
            let Some(contributions) = self.contributions.as_ref() else { break };
            let key = ids[row];
            let leaving = contributions.of(key).map(|(_, group)| group);
            let touches = leaving.into_iter().chain(group_of[row]);
            if seen_keys.contains(&key) || touches.clone().any(|g| seen_groups.contains(&g)) {
                let touched = self.change_run(&changes, &ids, &group_of, &run)?;
                self.emit(touched.into_iter().collect(), batch.replay, out)?;
                run.clear();
                seen_groups.clear();
                seen_keys.clear();
                // The run changed the state: this row's earlier version may be another now.
                let Some(contributions) = self.contributions.as_ref() else { break };
                let leaving = contributions.of(key).map(|(_, group)| group);
                seen_groups.extend(leaving.into_iter().chain(group_of[row]));
            } else {
                seen_groups.extend(touches);
            }
            seen_keys.insert(key);
            run.push(row as u32);
        }
        let touched = self.change_run(&changes, &ids, &group_of, &run)?;
        self.emit(touched.into_iter().collect(), batch.replay, out)
    }

    /// Takes in a run of a table's changes (rows of distinct keys, touching distinct groups).
    fn change_run(
        &mut self,
        changes: &Changes,
        ids: &[usize],
        group_of: &[Option<usize>],
        run: &[u32],
    ) -> Result<Option<Touched>, PlanError> {
        let Some(contributions) = self.contributions.as_mut() else { return Ok(None) };
        let (mut taken, mut added, mut order_of, mut outgoing) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for row in run {
            let key = ids[*row as usize];
            if let Some((at, _)) = contributions.of(key) {
                contributions.at[key] = NOWHERE;
                order_of.push((false, taken.len()));
                taken.push(at);
                outgoing.push(*row);
                contributions.live -= 1;
            }
            if let Some(group) = group_of[*row as usize] {
                order_of.push((true, added.len()));
                added.push((*row, key));
                contributions.group[key] = group;
            }
        }
        if order_of.is_empty() {
            return Ok(None);
        }
        let key_width = self.key_schema.fields().len();
        let table_width = changes.table_keys.len();
        let gathered = contributions.rows.gather(0..contributions.rows.width(), &taken)?;
        let rows_in = UInt32Array::from(added.iter().map(|(row, _)| *row).collect::<Vec<_>>());
        let pick = |c: &ArrayRef| take(c.as_ref(), &rows_in, None);
        // The rows taken out, then those added: interned keys, times and arguments.
        let mut part_keys = Vec::with_capacity(key_width);
        for k in 0..key_width {
            let added_keys = pick(&changes.interned[k])?;
            part_keys.push(match gathered.get(table_width + k) {
                Some(out) => datafusion::arrow::compute::concat(&[out.as_ref(), added_keys.as_ref()])?,
                None => added_keys,
            });
        }
        let outgoing_times = take(&changes.times, &UInt32Array::from(outgoing), None)?;
        let part_times =
            datafusion::arrow::compute::concat(&[outgoing_times.as_ref(), pick(&changes.times)?.as_ref()])?
                .as_primitive::<Int64Type>()
                .clone();
        let added_arguments = changes
            .arguments
            .iter()
            .map(|args| args.iter().map(pick).collect::<Result<Vec<_>, _>>())
            .collect::<Result<Vec<_>, _>>()?;
        let mut at = table_width + key_width;
        let mut taken_arguments = Vec::with_capacity(changes.arguments.len());
        for args in &changes.arguments {
            taken_arguments.push(match gathered.is_empty() {
                true => args.iter().map(|a| datafusion::arrow::array::new_empty_array(a.data_type())).collect(),
                false => gathered[at..at + args.len()].to_vec(),
            });
            at += args.len();
        }
        let order =
            order_of.iter().map(|(is_added, i)| if *is_added { (taken.len() + i) as u32 } else { *i as u32 }).collect();
        // The contributions of the rows added.
        if !added.is_empty() {
            let mut chunk: Vec<ArrayRef> = changes.table_keys.iter().map(pick).collect::<Result<_, _>>()?;
            chunk.extend(part_keys[..key_width].iter().map(|k| k.slice(taken.len(), added.len())));
            chunk.extend(added_arguments.iter().flatten().cloned());
            let c = contributions.rows.push(chunk);
            for (i, (_, key)) in added.iter().enumerate() {
                contributions.at[*key] = (c, i);
            }
            contributions.live += added.len();
        }
        if contributions.rows.crowded(contributions.live) {
            contributions.compact()?;
        }
        let part = WindowRows {
            start: UNWINDOWED,
            end: i64::MAX,
            rows: None,
            keys: part_keys,
            arguments: added_arguments,
            times: part_times,
        };
        let retracted = Retracted { rows: taken.len(), arguments: taken_arguments, order };
        Ok(Some(self.absorb_into(part, Some(retracted))?))
    }

    /// Takes one table's rows in (see the module's documentation).
    fn absorb_into(&mut self, part: WindowRows, retracted: Option<Retracted>) -> Result<Touched, PlanError> {
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
        groups.at.resize(total, NOWHERE);
        groups.latest.resize(total, i64::MIN);
        groups.passed.resize(total, false);
        groups.slot.resize(total, u32::MAX);
        while groups.sequences.len() < total {
            self.next_sequence += 1;
            groups.sequences.push(self.next_sequence);
        }
        // The batch's groups in the order of their first row (or change), each row's among
        // them, and each group's latest time in the batch.
        let mut touched: Vec<usize> = Vec::new();
        let mut firsts: Vec<u32> = Vec::new();
        let mut local: Vec<usize> = vec![0; ids.len()];
        let mut batch_latest: Vec<i64> = Vec::new();
        let order: Box<dyn Iterator<Item = usize>> = match &retracted {
            Some(retracted) => Box::new(retracted.order.iter().map(|row| *row as usize)),
            None => Box::new(0..ids.len()),
        };
        for row in order {
            let (id, time) = (ids[row], part.times.value(row));
            if groups.slot[id] == u32::MAX {
                groups.slot[id] = touched.len() as u32;
                touched.push(id);
                firsts.push(row as u32);
                batch_latest.push(time);
            }
            let slot = groups.slot[id] as usize;
            local[row] = slot;
            batch_latest[slot] = batch_latest[slot].max(time);
            groups.latest[id] = groups.latest[id].max(time);
        }
        for id in &touched {
            groups.slot[*id] = u32::MAX;
        }
        // A table's rows taken out come first in `part`, before the rows added.
        let taken_out = retracted.as_ref().map_or(0, |r| r.rows);
        let count = touched.len();
        // The touched groups' earlier states first, then the batch's rows.
        let earlier: Vec<(usize, At)> = touched
            .iter()
            .enumerate()
            .filter_map(|(i, id)| groups.at.get(*id).filter(|at| **at != NOWHERE).map(|at| (i, *at)))
            .collect();
        let mut states: Vec<Vec<ArrayRef>> = Vec::with_capacity(fresh.len());
        let mut from = key_width;
        let whence: Vec<At> = earlier.iter().map(|(_, at)| *at).collect();
        let earlier_ids: Vec<usize> = earlier.iter().map(|(i, _)| *i).collect();
        for (a, ((accumulator, arguments), width)) in
            fresh.iter_mut().zip(&part.arguments).zip(&self.widths).enumerate()
        {
            if !earlier.is_empty() {
                let state = groups.rows.gather(from..from + width, &whence)?;
                accumulator.merge_batch(&state, &earlier_ids, count)?;
            }
            if let Some(retracted) = retracted.as_ref().filter(|r| r.rows > 0) {
                // A row taken out is its own state negated, merged (see `retracts_by_negation`).
                let alone = accumulator.convert_to_state(&retracted.arguments[a], None)?;
                let negated = alone
                    .iter()
                    .map(|state| datafusion::arrow::compute::kernels::numeric::neg_wrapping(state.as_ref()))
                    .collect::<Result<Vec<_>, _>>()?;
                accumulator.merge_batch(&negated, &local[..taken_out], count)?;
            }
            accumulator.update_batch(arguments, &local[taken_out..], None, count)?;
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
        let c = groups.rows.push(chunk);
        for (row, id) in touched.iter().enumerate() {
            groups.at[*id] = (c, row);
        }
        if groups.rows.crowded(groups.len()) {
            groups.compact()?;
        }
        // A stream's group is stamped with its latest time (as Kafka Streams stamps an
        // aggregate), a table's with the latest time of the rows that changed it.
        let stamps = match retracted {
            Some(_) => batch_latest,
            None => touched.iter().map(|id| groups.latest[*id]).collect(),
        };
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
        let rows: Vec<ArrayRef> = match groups.rows.only() {
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
            let Some(chunk) = groups.rows.only() else { continue };
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

impl GroupsAggregate {
    /// A table's rows in [`super::aggregate::Aggregate`]'s form: the key columns
    /// (`__key0`…), `__group` (the group's key as a row of Arrow's row format), then each
    /// aggregate's arguments (`a:j`).
    fn snapshot_table_rows(&mut self) -> Result<RecordBatch, PlanError> {
        let key_width = self.key_schema.fields().len();
        let converter = self.group_converter()?;
        let Some(contributions) = self.contributions.as_mut() else {
            let options = datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(0));
            let fields: Vec<Field> = vec![Field::new("__group", DataType::Binary, false)];
            let empty = datafusion::arrow::array::new_empty_array(&DataType::Binary);
            return Ok(RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), vec![empty], &options)?);
        };
        let table_width = contributions.key_fields.len();
        let key_fields = contributions.key_fields.clone();
        let chunk = contributions.compact()?.cloned();
        let mut fields: Vec<Field> = key_fields;
        let mut columns: Vec<ArrayRef> = match &chunk {
            Some(chunk) => chunk[..table_width].to_vec(),
            None => fields.iter().map(|f| datafusion::arrow::array::new_empty_array(f.data_type())).collect(),
        };
        let groups = match &chunk {
            Some(chunk) => {
                let rows = converter.convert_columns(&chunk[table_width..table_width + key_width])?;
                datafusion::arrow::array::BinaryArray::from_iter_values(rows.iter().map(|r| r.as_ref().to_vec()))
            }
            None => datafusion::arrow::array::BinaryArray::from_iter_values(Vec::<Vec<u8>>::new()),
        };
        fields.push(Field::new("__group", DataType::Binary, false));
        columns.push(Arc::new(groups));
        let mut at = table_width + key_width;
        for (a, aggregate) in self.plan.aggregates.iter().enumerate() {
            for (j, expr) in aggregate.expressions().iter().enumerate() {
                let column = match &chunk {
                    Some(chunk) => chunk[at].clone(),
                    None => datafusion::arrow::array::new_empty_array(
                        &expr.data_type(&self.plan.aggregate_schema).unwrap_or(DataType::Null),
                    ),
                };
                fields.push(Field::new(format!("{a}:{j}"), column.data_type().clone(), true));
                columns.push(column);
                at += 1;
            }
        }
        let rows = columns.first().map_or(0, |c| c.len());
        let options = datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(rows));
        Ok(RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), columns, &options)?)
    }

    fn restore_table_rows(&mut self, rows: &RecordBatch) -> Result<(), PlanError> {
        let key_count = rows.schema().fields().iter().filter(|f| f.name().starts_with("__key")).count();
        if key_count == 0 || rows.num_rows() == 0 {
            return Ok(());
        }
        let groups = rows
            .column_by_name("__group")
            .and_then(|g| g.as_binary_opt::<i32>().cloned())
            .ok_or_else(|| PlanError::user("the snapshot lacks __group"))?;
        let converter = self.group_converter()?;
        let parser = converter.parser();
        let group_columns = converter.convert_rows(groups.iter().flatten().map(|bytes| parser.parse(bytes)))?;
        let keys: Vec<ArrayRef> = rows.columns()[..key_count].to_vec();
        let fields = rows.schema().fields()[..key_count].iter().map(|f| f.as_ref().clone()).collect();
        let mut contributions = Contributions::new(fields)?;
        let mut ids = Vec::with_capacity(rows.num_rows());
        contributions.keys.intern(&keys, &mut ids)?;
        if contributions.keys.len() != rows.num_rows() {
            return Err(PlanError::user("the snapshot holds a table row twice"));
        }
        // Each row's group, among those restored.
        if !self.open.contains_key(&UNWINDOWED) {
            self.open.insert(UNWINDOWED, Groups::new(i64::MAX, &self.key_schema)?);
        }
        let Some(groups) = self.open.get_mut(&UNWINDOWED) else { return Ok(()) };
        let known = groups.table.len();
        let mut group_ids = Vec::with_capacity(ids.len());
        groups.table.intern(&group_columns, &mut group_ids)?;
        if groups.table.len() != known {
            return Err(PlanError::user("the snapshot holds a table row of no group"));
        }
        let arguments = &rows.columns()[key_count + 1..];
        let chunk: Vec<ArrayRef> = keys.into_iter().chain(group_columns).chain(arguments.iter().cloned()).collect();
        contributions.at = vec![NOWHERE; ids.len()];
        contributions.group = vec![usize::MAX; ids.len()];
        for (row, (id, group)) in ids.iter().zip(&group_ids).enumerate() {
            contributions.at[*id] = (0, row);
            contributions.group[*id] = *group;
        }
        contributions.rows.replace(chunk);
        contributions.live = ids.len();
        self.contributions = Some(contributions);
        Ok(())
    }

    /// The interned grouping columns as rows of Arrow's row format (the groups' ids in
    /// [`super::aggregate::Aggregate`]'s snapshots).
    fn group_converter(&self) -> Result<datafusion::arrow::row::RowConverter, PlanError> {
        let fields =
            self.key_schema.fields().iter().map(|f| datafusion::arrow::row::SortField::new(f.data_type().clone()));
        Ok(datafusion::arrow::row::RowConverter::new(fields.collect())?)
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
        self.rows.replace(chunk);
        self.at = (0..count).map(|row| (0, row)).collect();
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

    /// The groups' batch, then a table's rows' batch when aggregating a table.
    fn snapshot(&mut self) -> Result<Option<Vec<RecordBatch>>, PlanError> {
        let mut state = vec![guarded(|| self.snapshot_groups())??];
        if self.plan.table_keys.is_some() {
            state.push(guarded(|| self.snapshot_table_rows())??);
        }
        Ok(Some(state))
    }

    fn restore(&mut self, state: Vec<RecordBatch>) -> Result<(), PlanError> {
        let groups = state.first().ok_or_else(|| PlanError::user("an aggregation's checkpoint has no groups"))?;
        guarded(|| self.restore_groups(groups))??;
        self.contributions = None;
        match state.get(1) {
            Some(rows) => guarded(|| self.restore_table_rows(rows))?,
            None => Ok(()),
        }
    }

    fn state_bytes(&self) -> usize {
        let contributions = self.contributions.as_ref().map_or(0, |c| {
            c.keys.size() + c.rows.bytes() + c.at.len() * (std::mem::size_of::<At>() + std::mem::size_of::<usize>())
        });
        self.open.values().map(Groups::bytes).sum::<usize>() + contributions
    }

    fn take_errors(&mut self) -> Vec<RowError> {
        std::mem::take(&mut self.errors)
    }
}
