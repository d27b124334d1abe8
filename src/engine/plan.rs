//! What flows between operators ([`TimedBatch`]), why a plan fails ([`PlanError`], with its
//! kind), and a planned filter and projection applied to batches ([`StatelessPlan`], which
//! [`crate::planner::query`] builds). Expressions are evaluated so that one failing row costs
//! only its own column (`evaluate_isolating`): the row gets a null and a [`RowError`].

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray, RecordBatch};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::compute::kernels::boolean::{and, not};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::logical_expr::Expr as LogicalExpr;
use datafusion::optimizer::simplify_expressions::{ExprSimplifier, SimplifyContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::sql::sqlparser::ast::{Expr, visit_expressions_mut};

use crate::error::ErrorKind;

/// Why a query cannot run (yet), and whose fault that is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PlanError {
    pub kind: ErrorKind,
    pub message: String,
}

impl PlanError {
    /// The query is wrong: `message` says how, in ksqlDB's words where it has them.
    pub fn user(message: impl Into<String>) -> PlanError {
        PlanError { kind: ErrorKind::User, message: message.into() }
    }

    /// Eddy is wrong: `cause` is kept after "internal error (this is a bug): ".
    pub fn internal(cause: impl AsRef<str>) -> PlanError {
        PlanError { kind: ErrorKind::Internal, message: crate::error::bug_message(cause.as_ref()) }
    }
}

impl From<datafusion::arrow::error::ArrowError> for PlanError {
    fn from(e: datafusion::arrow::error::ArrowError) -> Self {
        PlanError::user(e.to_string())
    }
}

/// DataFusion's own kinds decide: its internal errors are bugs (its or Eddy's), I/O and
/// external errors are external, the rest (plans, schemas, types, execution) the query's.
impl From<datafusion::error::DataFusionError> for PlanError {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        use datafusion::error::DataFusionError as E;
        let kind = match e.find_root() {
            E::Internal(_) => ErrorKind::Internal,
            E::IoError(_) | E::ObjectStore(_) | E::ResourcesExhausted(_) => ErrorKind::External,
            _ => ErrorKind::User,
        };
        PlanError { kind, message: e.to_string() }
    }
}

/// The log failed under planning (reading a topic's partitions): not the query's fault.
impl From<crate::log::LogError> for PlanError {
    fn from(e: crate::log::LogError) -> Self {
        let kind = if e.is_user_error() { ErrorKind::User } else { ErrorKind::External };
        PlanError { kind, message: e.to_string() }
    }
}

/// A filter and a projection, evaluated per batch.
#[derive(Debug)]
pub struct StatelessPlan {
    pub(crate) filter: Option<Arc<dyn PhysicalExpr>>,
    /// Table functions, between the filter and the projection.
    pub(crate) unnest: Option<super::table_functions::Unnest>,
    pub(crate) projection: Vec<Arc<dyn PhysicalExpr>>,
    pub(crate) output: SchemaRef,
    /// The projection as written (identifiers resolved, `*` expanded, qualifiers dropped),
    /// one per output column: what decides which output columns are keys.
    pub(crate) items: Vec<Expr>,
    /// Where `ROWTIME` is in the input rows.
    pub(crate) row_time_index: usize,
    /// Rows the filter rejects become tombstones instead of disappearing (a table's
    /// changelog: the row is deleted downstream).
    pub(crate) filter_to_tombstones: bool,
}

/// Rows with the event time of each, flowing between a query's operators.
#[derive(Debug, Clone)]
pub struct TimedBatch {
    pub rows: RecordBatch,
    /// Milliseconds since the epoch, one per row (Int64, never null).
    pub timestamps_ms: ArrayRef,
    /// Rows that stand for records without a value (tombstones): a sink writes them with
    /// no value. `None` when there are none.
    pub tombstones: Option<BooleanArray>,
    /// For rows of a windowed aggregation: each row's window start and end (a windowed
    /// sink writes the start into the record key, as ksqlDB does).
    pub windows: Option<(ArrayRef, ArrayRef)>,
    /// Rows replayed to rebuild state after a restart: operators take them in, sinks write
    /// nothing of them (it was written before).
    pub replay: bool,
    /// Which of the query's inputs the rows are of: 0, or a join's other inputs 1, 2, …
    /// (operators after a join see 0).
    pub input: usize,
}

impl TimedBatch {
    /// `len` of its rows from `offset`, with their timestamps, tombstones and windows.
    pub fn slice(&self, offset: usize, len: usize) -> TimedBatch {
        TimedBatch {
            rows: self.rows.slice(offset, len),
            timestamps_ms: self.timestamps_ms.slice(offset, len),
            tombstones: self.tombstones.as_ref().map(|t| t.slice(offset, len)),
            windows: self.windows.as_ref().map(|(start, end)| (start.slice(offset, len), end.slice(offset, len))),
            replay: self.replay,
            input: self.input,
        }
    }
}

impl StatelessPlan {
    pub fn output_schema(&self) -> &SchemaRef {
        &self.output
    }

    /// Whether the projection calls table functions (EXPLODE, …).
    pub fn has_table_functions(&self) -> bool {
        self.unnest.is_some()
    }

    /// Makes rows the filter rejects tombstones rather than dropping them (for tables).
    pub fn filter_to_tombstones(&mut self) {
        self.filter_to_tombstones = true;
    }

    /// The projection as written, one expression per output column (identifiers resolved,
    /// source qualifiers dropped).
    pub fn items(&self) -> &[Expr] {
        &self.items
    }

    /// The rows of `batch` that pass the filter, projected.
    pub fn apply(&self, batch: &RecordBatch) -> Result<RecordBatch, PlanError> {
        Ok(self.apply_timed(batch, None)?.rows)
    }

    /// As [`StatelessPlan::apply`], keeping each row's `ROWTIME`. Tombstone rows (as
    /// ksqlDB treats a stream record without a value) never pass a filter, and pass a bare
    /// projection as tombstones.
    pub fn apply_timed(&self, batch: &RecordBatch, tombstones: Option<&BooleanArray>) -> Result<TimedBatch, PlanError> {
        self.apply_reporting(batch, tombstones).map(|(rows, _)| rows)
    }

    /// As [`StatelessPlan::apply_timed`], with the rows an expression failed on (a CAST of
    /// a string that is no number, …): as ksqlDB does, such a row's failing column is null
    /// (a failing WHERE does not pass), and the error is returned for the processing log.
    pub fn apply_reporting(
        &self,
        batch: &RecordBatch,
        tombstones: Option<&BooleanArray>,
    ) -> Result<(TimedBatch, Vec<RowError>), PlanError> {
        guarded(|| {
            let mut errors = Vec::new();
            let rows = self.apply_unguarded(batch, tombstones, &mut errors)?;
            Ok((rows, errors))
        })?
    }

    fn apply_unguarded(
        &self,
        batch: &RecordBatch,
        tombstones: Option<&BooleanArray>,
        errors: &mut Vec<RowError>,
    ) -> Result<TimedBatch, PlanError> {
        let plan_error = |e: datafusion::arrow::error::ArrowError| PlanError::user(e.to_string());
        let (kept, tombstones) = match &self.filter {
            None => (batch.clone(), tombstones.cloned()),
            Some(filter) => {
                let mask = evaluate_isolating(filter, batch, errors)?;
                let mask = mask
                    .as_any()
                    .downcast_ref::<BooleanArray>()
                    .ok_or_else(|| PlanError::user("WHERE must be a condition"))?;
                let mask = match tombstones {
                    Some(t) => and(mask, &not(t).map_err(plan_error)?).map_err(plan_error)?,
                    None => mask.clone(),
                };
                if self.filter_to_tombstones {
                    // Every row stays; those that do not pass are deletions.
                    // A null condition does not pass.
                    let passed = if datafusion::arrow::array::Array::null_count(&mask) > 0 {
                        datafusion::arrow::compute::prep_null_mask_filter(&mask)
                    } else {
                        mask.clone()
                    };
                    (batch.clone(), Some(not(&passed).map_err(plan_error)?))
                } else {
                    (filter_record_batch(batch, &mask).map_err(plan_error)?, None)
                }
            }
        };
        let (kept, tombstones) = match &self.unnest {
            None => (kept, tombstones),
            Some(unnest) => {
                let (expanded, sources) = unnest.apply(&kept)?;
                let tombstones = match tombstones {
                    Some(t) => datafusion::arrow::compute::take(&t, &sources, None)
                        .map_err(plan_error)?
                        .as_any()
                        .downcast_ref::<BooleanArray>()
                        .cloned(),
                    None => None,
                };
                (expanded, tombstones)
            }
        };
        let columns =
            self.projection.iter().map(|e| evaluate_isolating(e, &kept, errors)).collect::<Result<Vec<_>, _>>()?;
        let rows = RecordBatch::try_new_with_options(
            self.output.clone(),
            columns,
            &datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(kept.num_rows())),
        )
        .map_err(|e| PlanError::user(e.to_string()))?;
        // A windowed source's rows keep their windows.
        let windows = match (kept.column_by_name("WINDOWSTART"), kept.column_by_name("WINDOWEND")) {
            (Some(start), Some(end)) => Some((start.clone(), end.clone())),
            _ => None,
        };
        Ok(TimedBatch {
            rows,
            timestamps_ms: kept.column(self.row_time_index).clone(),
            tombstones,
            windows,
            replay: false,
            input: 0,
        })
    }
}

/// A row an expression failed on: where its record was (from `ROWPARTITION`/`ROWOFFSET`,
/// when the rows have them) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub partition: Option<u32>,
    pub offset: Option<u64>,
    pub message: String,
}

/// Evaluates `expr` over `batch` in one go; when that fails, row by row, so that only the
/// rows it fails on are null (each noted in `errors`).
pub(crate) fn evaluate_isolating(
    expr: &Arc<dyn PhysicalExpr>,
    batch: &RecordBatch,
    errors: &mut Vec<RowError>,
) -> Result<ArrayRef, PlanError> {
    let rows = batch.num_rows();
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::{Int32Type, Int64Type};
    let partitions = batch.column_by_name("ROWPARTITION").and_then(|c| c.as_primitive_opt::<Int32Type>().cloned());
    let offsets = batch.column_by_name("ROWOFFSET").and_then(|c| c.as_primitive_opt::<Int64Type>().cloned());
    let mut note = |row: usize, message: String| {
        // A call inside a CASE branch or a lambda saw fewer rows: its index is not the batch's.
        let row = row.min(rows.saturating_sub(1));
        errors.push(RowError {
            partition: partitions.as_ref().map(|p| p.value(row) as u32),
            offset: offsets.as_ref().map(|o| o.value(row) as u64),
            message,
        })
    };
    // Calls of ksqlDB's functions that failed on a row are null there, and noted.
    super::udf::take_call_errors();
    let evaluated = expr.evaluate(batch).and_then(|v| v.into_array(rows));
    for (row, message) in super::udf::take_call_errors() {
        note(row, message);
    }
    let whole = match evaluated {
        Ok(array) => return Ok(array),
        Err(e) => e,
    };
    let data_type = expr.data_type(&batch.schema())?;
    if rows == 1 {
        note(0, whole.to_string());
        return Ok(datafusion::arrow::array::new_null_array(&data_type, 1));
    }
    let mut parts: Vec<ArrayRef> = Vec::with_capacity(rows);
    for row in 0..rows {
        match expr.evaluate(&batch.slice(row, 1)).and_then(|v| v.into_array(1)) {
            Ok(value) => parts.push(value),
            Err(e) => {
                note(row, e.to_string());
                parts.push(datafusion::arrow::array::new_null_array(&data_type, 1));
            }
        }
    }
    let parts: Vec<&dyn datafusion::arrow::array::Array> = parts.iter().map(|p| p.as_ref()).collect();
    Ok(datafusion::arrow::compute::concat(&parts)?)
}

/// Runs `f`, turning a panic in it (a bug in Eddy, DataFusion or Arrow that input reached)
/// into an error, so that one bad query or batch never takes the process down.
pub fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, PlanError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .map_err(|panic| PlanError::internal(crate::error::panic_message(panic.as_ref())))
}

/// `expr` with source qualifiers dropped (`I.ID` becomes `ID`): ksqlDB compares
/// expressions so (a PARTITION BY expression with its projection, say).
pub fn unqualified(expr: &Expr) -> Expr {
    let mut expr = expr.clone();
    let _ = visit_expressions_mut(&mut expr, |e: &mut Expr| {
        if let Expr::CompoundIdentifier(parts) = e
            && let Some(last) = parts.last()
        {
            *e = Expr::Identifier(last.clone());
        }
        ControlFlow::<()>::Continue(())
    });
    expr
}

/// `e` as a physical expression over `schema`. DataFusion's simplifier runs first: some
/// functions (COALESCE among them) exist only in their simplified form. It is told no query
/// start time, so NOW() and the like stay per-row instead of being fixed at planning.
pub(crate) fn physical_expr(
    state: &datafusion::execution::SessionState,
    e: LogicalExpr,
    schema: &datafusion::common::DFSchema,
) -> Result<Arc<dyn PhysicalExpr>, PlanError> {
    let simplifier = ExprSimplifier::new(SimplifyContext::builder().with_schema(Arc::new(schema.clone())).build());
    let e = guarded(|| simplifier.simplify(e))??;
    Ok(guarded(|| state.create_physical_expr(e, schema))??)
}

#[cfg(test)]
mod tests {
    use datafusion::error::DataFusionError;

    use super::PlanError;
    use crate::error::ErrorKind;

    #[test]
    fn datafusion_errors_keep_their_kind() {
        let kind = |e: DataFusionError| PlanError::from(e).kind;
        assert_eq!(kind(DataFusionError::Plan("no such column".into())), ErrorKind::User);
        assert_eq!(kind(DataFusionError::Internal("unexpected".into())), ErrorKind::Internal);
        let io = std::io::Error::other("disk gone");
        assert_eq!(kind(DataFusionError::IoError(io)), ErrorKind::External);
        let wrapped = DataFusionError::Context("planning".into(), Box::new(DataFusionError::Internal("x".into())));
        assert_eq!(kind(wrapped), ErrorKind::Internal);
        let bug = PlanError::internal("two operators where one was planned");
        assert_eq!(bug.message, "internal error (this is a bug): two operators where one was planned");
    }
}
