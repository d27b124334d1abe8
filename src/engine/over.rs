//! `OVER` windows (beyond ksqlDB): `AGG(x) OVER (PARTITION BY k ORDER BY ROWTIME ROWS
//! BETWEEN n PRECEDING AND CURRENT ROW)` or `… RANGE BETWEEN INTERVAL 'n' unit PRECEDING AND
//! CURRENT ROW`, in a stream query. Every input row gives one output row, in arrival order,
//! carrying the aggregate over its frame: the rows of its partition that arrived before it
//! (the last n, or those at most the interval older than it by `ROWTIME`) and itself.
//!
//! Each partition keeps only its frame: the frame's rows (their aggregate arguments and
//! event times) and an accumulator. DataFusion's sliding accumulators take a row leaving the
//! frame out again (`retract_batch`); for a function that cannot, the accumulator is rebuilt
//! from the frame's rows. Frames follow arrival order: a row that arrives late is framed with
//! the rows that arrived before it, and a RANGE frame drops rows from its front only.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::{Int64Type, SchemaRef};
use datafusion::arrow::row::{OwnedRow, RowConverter, SortField};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::Accumulator;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;

use super::operator::{Operator, TimedBatch};
use super::plan::{PlanError, RowError, evaluate_isolating, guarded};

/// Which rows before the current one a frame holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// `ROWS BETWEEN n PRECEDING AND CURRENT ROW`: the n rows before.
    Rows(usize),
    /// `RANGE BETWEEN INTERVAL … PRECEDING AND CURRENT ROW`: those at most this many
    /// milliseconds older.
    Range(i64),
    /// `UNBOUNDED PRECEDING`: every row of the partition so far.
    Unbounded,
}

/// One `AGG(…) OVER (…)`.
#[derive(Debug)]
pub struct OverWindow {
    pub function: Arc<AggregateFunctionExpr>,
    /// At least one expression: without PARTITION BY, a constant (one partition).
    pub partition_by: Vec<Arc<dyn PhysicalExpr>>,
    pub frame: Frame,
}

/// A stream query with `OVER` windows, planned.
#[derive(Debug)]
pub struct OverPlan {
    /// WHERE, on the input rows.
    pub filter: Option<Arc<dyn PhysicalExpr>>,
    pub windows: Vec<OverWindow>,
    /// The input rows with one column per window after them.
    pub windowed_schema: SchemaRef,
    /// The projection, on the windowed rows.
    pub projection: Vec<Arc<dyn PhysicalExpr>>,
    pub output: SchemaRef,
    /// Where `ROWTIME` is in the input rows.
    pub row_time_index: usize,
}

/// One partition's frame.
struct Partition {
    accumulator: Box<dyn Accumulator>,
    /// The frame's rows, oldest first: event time and aggregate arguments.
    rows: VecDeque<(i64, Vec<ScalarValue>)>,
}

/// The `OVER` operator: per window, its partitions.
pub struct Over {
    plan: Arc<OverPlan>,
    description: String,
    converters: Vec<RowConverter>,
    partitions: Vec<HashMap<OwnedRow, Partition>>,
    /// Rows an expression failed on, not yet taken (see [`Operator::take_errors`]).
    errors: Vec<RowError>,
}

impl Over {
    pub fn try_new(plan: Arc<OverPlan>, description: String) -> Result<Self, PlanError> {
        let input = plan.windowed_schema.as_ref();
        let converters = plan
            .windows
            .iter()
            .map(|w| {
                let fields = w.partition_by.iter().map(|e| Ok(SortField::new(e.data_type(input)?))).collect::<Result<
                    Vec<_>,
                    PlanError,
                >>(
                )?;
                Ok(RowConverter::new(fields)?)
            })
            .collect::<Result<Vec<_>, PlanError>>()?;
        let partitions = plan.windows.iter().map(|_| HashMap::new()).collect();
        Ok(Over { plan, description, converters, partitions, errors: Vec::new() })
    }

    fn update(&mut self, batch: TimedBatch, out: &mut Vec<TimedBatch>) -> Result<(), PlanError> {
        let plan = Arc::clone(&self.plan);
        // Records without a value are no rows of a stream.
        let mut rows = batch.rows;
        if let Some(tombstones) = &batch.tombstones {
            rows = filter_record_batch(&rows, &datafusion::arrow::compute::not(tombstones)?)?;
        }
        if let Some(filter) = &plan.filter {
            let mask = evaluate_isolating(filter, &rows, &mut self.errors)?;
            let mask = mask.as_boolean_opt().ok_or_else(|| PlanError::user("WHERE must be a condition"))?;
            rows = filter_record_batch(&rows, mask)?;
        }
        if rows.num_rows() == 0 {
            return Ok(());
        }
        let times = rows.column(plan.row_time_index).as_primitive::<Int64Type>().clone();
        let mut columns = rows.columns().to_vec();
        for (w, window) in plan.windows.iter().enumerate() {
            columns.push(self.frame_values(w, window, &rows, &times)?);
        }
        let windowed = RecordBatch::try_new(Arc::clone(&plan.windowed_schema), columns)?;
        let projected = plan
            .projection
            .iter()
            .map(|e| evaluate_isolating(e, &windowed, &mut self.errors))
            .collect::<Result<Vec<_>, _>>()?;
        out.push(TimedBatch {
            rows: RecordBatch::try_new(Arc::clone(&plan.output), projected)?,
            timestamps_ms: Arc::new(times),
            tombstones: None,
            windows: None,
            replay: batch.replay,
            input: 0,
        });
        Ok(())
    }

    /// Window `w`'s value for every row of `rows`, each over its frame.
    fn frame_values(
        &mut self,
        w: usize,
        window: &OverWindow,
        rows: &RecordBatch,
        times: &datafusion::arrow::array::Int64Array,
    ) -> Result<ArrayRef, PlanError> {
        let n = rows.num_rows();
        let keys: Vec<ArrayRef> = window
            .partition_by
            .iter()
            .map(|e| evaluate_isolating(e, rows, &mut self.errors))
            .collect::<Result<_, _>>()?;
        let keys = self.converters[w].convert_columns(&keys)?;
        let arguments: Vec<ArrayRef> = window
            .function
            .expressions()
            .iter()
            .map(|e| evaluate_isolating(e, rows, &mut self.errors))
            .collect::<Result<_, _>>()?;
        let partitions = &mut self.partitions[w];
        let mut values = Vec::with_capacity(n);
        for row in 0..n {
            let partition = match partitions.entry(keys.row(row).owned()) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => e.insert(Partition {
                    accumulator: window.function.create_sliding_accumulator()?,
                    rows: VecDeque::new(),
                }),
            };
            let time = times.value(row);
            let current: Vec<ArrayRef> = arguments.iter().map(|a| a.slice(row, 1)).collect();
            partition.accumulator.update_batch(&current)?;
            if window.frame != Frame::Unbounded {
                let scalars =
                    arguments.iter().map(|a| ScalarValue::try_from_array(a, row)).collect::<Result<Vec<_>, _>>()?;
                partition.rows.push_back((time, scalars));
                let mut leaving: Vec<Vec<ScalarValue>> = Vec::new();
                while let Some((oldest, _)) = partition.rows.front() {
                    let out_of_frame = match window.frame {
                        Frame::Rows(preceding) => partition.rows.len() > preceding + 1,
                        Frame::Range(ms) => *oldest < time.saturating_sub(ms),
                        Frame::Unbounded => false,
                    };
                    if !out_of_frame {
                        break;
                    }
                    if let Some((_, arguments)) = partition.rows.pop_front() {
                        leaving.push(arguments);
                    }
                }
                if !leaving.is_empty() {
                    retract(window, partition, &leaving)?;
                }
            }
            values.push(partition.accumulator.evaluate()?);
        }
        let field = self.plan.windowed_schema.field(rows.num_columns() + w);
        let column = ScalarValue::iter_to_array(values)?;
        Ok(if column.data_type() == field.data_type() {
            column
        } else {
            datafusion::arrow::compute::cast(&column, field.data_type())?
        })
    }
}

/// Takes rows that left the frame out of the partition's aggregate: retracted where the
/// accumulator can, else the accumulator is rebuilt from the rows still in the frame.
fn retract(window: &OverWindow, partition: &mut Partition, leaving: &[Vec<ScalarValue>]) -> Result<(), PlanError> {
    let columns = |rows: &mut dyn Iterator<Item = &Vec<ScalarValue>>| -> Result<Vec<ArrayRef>, PlanError> {
        let rows: Vec<&Vec<ScalarValue>> = rows.collect();
        let arity = window.function.expressions().len();
        (0..arity)
            .map(|a| Ok(ScalarValue::iter_to_array(rows.iter().map(|r| r[a].clone()))?))
            .collect::<Result<Vec<_>, PlanError>>()
    };
    if partition.accumulator.supports_retract_batch() {
        let gone = columns(&mut leaving.iter())?;
        partition.accumulator.retract_batch(&gone)?;
    } else {
        let mut fresh = window.function.create_sliding_accumulator()?;
        if !partition.rows.is_empty() {
            let kept = columns(&mut partition.rows.iter().map(|(_, r)| r))?;
            fresh.update_batch(&kept)?;
        }
        partition.accumulator = fresh;
    }
    Ok(())
}

/// An `OVER` operator's state (see [`Over::snapshot`]): a batch per window.
#[derive(Debug, Clone)]
pub struct OverSnapshot {
    pub windows: Vec<RecordBatch>,
}

impl Over {
    /// The bytes the partitions hold (keys, accumulators and frame rows).
    pub fn state_bytes(&self) -> usize {
        self.partitions
            .iter()
            .flat_map(HashMap::iter)
            .map(|(key, p)| {
                key.as_ref().len()
                    + p.accumulator.size()
                    + p.rows
                        .iter()
                        .map(|(_, args)| 8 + args.iter().map(ScalarValue::size).sum::<usize>())
                        .sum::<usize>()
            })
            .sum()
    }

    /// The state as a batch per window, a row per partition: its key columns, then for a
    /// bounded frame the frame's rows (`__times`, a list of event times, and a list per
    /// argument `__arg{j}`), for an unbounded one the accumulator's state (`__state{i}`).
    pub fn snapshot(&mut self) -> Result<OverSnapshot, PlanError> {
        guarded(|| {
            let mut windows = Vec::with_capacity(self.plan.windows.len());
            for w in 0..self.plan.windows.len() {
                windows.push(self.snapshot_window(w)?);
            }
            Ok(OverSnapshot { windows })
        })?
    }

    fn snapshot_window(&mut self, w: usize) -> Result<RecordBatch, PlanError> {
        use datafusion::arrow::datatypes::{DataType, Field, Schema};
        let window = &self.plan.windows[w];
        let partitions: Vec<(&OwnedRow, &mut Partition)> = self.partitions[w].iter_mut().collect();
        let mut fields = Vec::new();
        let mut columns: Vec<ArrayRef> = Vec::new();
        let keys = self.converters[w].convert_rows(partitions.iter().map(|(k, _)| k.row()))?;
        for (i, key) in keys.into_iter().enumerate() {
            fields.push(Field::new(format!("__key{i}"), key.data_type().clone(), true));
            columns.push(key);
        }
        let mut partitions = partitions;
        let list_of = |values: Vec<ScalarValue>, item: &DataType| -> ScalarValue {
            ScalarValue::List(ScalarValue::new_list(&values, item, true))
        };
        if window.frame == Frame::Unbounded {
            let mut template = window.function.create_sliding_accumulator()?;
            let template = template.state()?;
            let states: Vec<Vec<ScalarValue>> = partitions
                .iter_mut()
                .map(|(_, p)| {
                    let state = p.accumulator.state()?;
                    super::aggregate::keep_state(&mut p.accumulator, &state, || {
                        Ok(window.function.create_sliding_accumulator()?)
                    })?;
                    Ok(state)
                })
                .collect::<Result<_, PlanError>>()?;
            for (i, empty) in template.iter().enumerate() {
                let column = if states.is_empty() {
                    datafusion::arrow::array::new_empty_array(&empty.data_type())
                } else {
                    ScalarValue::iter_to_array(states.iter().map(|s| s[i].clone()))?
                };
                fields.push(Field::new(format!("__state{i}"), column.data_type().clone(), true));
                columns.push(column);
            }
        } else {
            let times: Vec<ScalarValue> = partitions
                .iter()
                .map(|(_, p)| {
                    list_of(p.rows.iter().map(|(t, _)| ScalarValue::Int64(Some(*t))).collect(), &DataType::Int64)
                })
                .collect();
            let mut lists = vec![("__times".to_owned(), DataType::Int64, times)];
            for (j, argument) in window.function.expressions().iter().enumerate() {
                let item = argument.data_type(&self.plan.windowed_schema)?;
                let values = partitions
                    .iter()
                    .map(|(_, p)| list_of(p.rows.iter().map(|(_, args)| args[j].clone()).collect(), &item))
                    .collect();
                lists.push((format!("__arg{j}"), item, values));
            }
            for (name, item, values) in lists {
                let column = if values.is_empty() {
                    datafusion::arrow::array::new_empty_array(&DataType::List(Arc::new(Field::new("item", item, true))))
                } else {
                    ScalarValue::iter_to_array(values)?
                };
                fields.push(Field::new(name, column.data_type().clone(), true));
                columns.push(column);
            }
        }
        let options = datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(partitions.len()));
        Ok(RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), columns, &options)?)
    }

    /// Replaces the state with a snapshot's (of the same query). A bounded frame's
    /// accumulator is rebuilt from its rows, so that they can be retracted again.
    pub fn restore(&mut self, snapshot: &OverSnapshot) -> Result<(), PlanError> {
        guarded(|| {
            if snapshot.windows.len() != self.plan.windows.len() {
                return Err(PlanError::user("the snapshot is not of this query"));
            }
            for (w, batch) in snapshot.windows.iter().enumerate() {
                self.restore_window(w, batch)?;
            }
            Ok(())
        })?
    }

    fn restore_window(&mut self, w: usize, batch: &RecordBatch) -> Result<(), PlanError> {
        let window = &self.plan.windows[w];
        let schema = batch.schema();
        let named = |prefix: &str| -> Vec<ArrayRef> {
            schema
                .fields()
                .iter()
                .zip(batch.columns())
                .filter(|(f, _)| f.name().starts_with(prefix))
                .map(|(_, c)| c.clone())
                .collect()
        };
        let keys = self.converters[w].convert_columns(&named("__key"))?;
        let states = named("__state");
        let times = batch.column_by_name("__times").cloned();
        let arguments = named("__arg");
        let partitions = &mut self.partitions[w];
        partitions.clear();
        for row in 0..batch.num_rows() {
            let mut accumulator = window.function.create_sliding_accumulator()?;
            let mut rows = VecDeque::new();
            if let Some(times) = &times {
                let times = times.as_list::<i32>().value(row);
                let times = times.as_primitive::<Int64Type>();
                let args: Vec<ArrayRef> = arguments.iter().map(|a| a.as_list::<i32>().value(row)).collect();
                for i in 0..times.len() {
                    let values =
                        args.iter().map(|a| ScalarValue::try_from_array(a, i)).collect::<Result<Vec<_>, _>>()?;
                    rows.push_back((times.value(i), values));
                }
                if !args.is_empty() && !times.is_empty() {
                    accumulator.update_batch(&args)?;
                }
            } else {
                let state: Vec<ArrayRef> = states.iter().map(|s| s.slice(row, 1)).collect();
                accumulator.merge_batch(&state)?;
            }
            partitions.insert(keys.row(row).owned(), Partition { accumulator, rows });
        }
        Ok(())
    }
}

impl Operator for Over {
    fn process(&mut self, batch: TimedBatch, out: &mut Vec<TimedBatch>) -> Result<(), PlanError> {
        guarded(|| self.update(batch, out))?
    }

    fn describe(&self) -> String {
        self.description.clone()
    }

    /// A batch per window.
    fn snapshot(&mut self) -> Result<Option<Vec<RecordBatch>>, PlanError> {
        Ok(Some(Over::snapshot(self)?.windows))
    }

    fn restore(&mut self, state: Vec<RecordBatch>) -> Result<(), PlanError> {
        Over::restore(self, &OverSnapshot { windows: state })
    }

    fn state_bytes(&self) -> usize {
        Over::state_bytes(self)
    }

    fn take_errors(&mut self) -> Vec<RowError> {
        std::mem::take(&mut self.errors)
    }
}
