//! Planning a push query: the operators a persistent query of the same SQL would run, and
//! how its rows are shown to the client.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;

use super::Planner;
use crate::catalog::ColumnRole;
use crate::engine::plan::PlanError;
use crate::engine::source::row_schema;
use crate::sql::ast::StreamingQuery;

fn refusal(message: String) -> PlanError {
    PlanError::user(message)
}

/// A planned push query: what it runs, and how its rows are shown.
pub struct PushPlan {
    pub input: Arc<crate::catalog::Source>,
    pub joined: Vec<Arc<crate::catalog::Source>>,
    pub operators: Vec<Box<dyn crate::engine::operator::Operator>>,
    pub output: SchemaRef,
    /// Columns shown even in a deleted row (a table's key, and its window bounds).
    pub table_keys: Vec<String>,
    /// Stream time decides what is late (windows, OVER frames): partitions are read in
    /// event-time order.
    pub in_time_order: bool,
}

impl Planner<'_> {
    /// Plans push query `query` (its LIMIT taken off).
    pub async fn plan_push(&self, query: &StreamingQuery) -> Result<PushPlan, PlanError> {
        match self.join_sources(query)? {
            Some(sources) => self.plan_push_join(query, sources).await,
            None => self.plan_push_single(query).await,
        }
    }

    /// A push query over one source: its operators as a persistent query's would be (filter
    /// and projection, an aggregation, or OVER windows).
    async fn plan_push_single(&self, query: &StreamingQuery) -> Result<PushPlan, PlanError> {
        use crate::planner::query::{QueryPlan, plan_query};
        let source = self.query_source(query)?;
        let table = source.kind == crate::sql::ast::SourceKind::Table;
        let star = star_columns(&source);
        let planned = plan_query(query, &source.name, row_schema(&source), &star).await?;
        let (filter, items) = clauses(query);
        // A table's deletions are rows too (ksqlDB's tombstones), as they are to an
        // aggregation of it; a stream's records without a value are ignored.
        let mut operators: Vec<Box<dyn crate::engine::operator::Operator>> = Vec::new();
        if !table {
            operators.push(Box::new(crate::engine::operator::DropDeletions));
        }
        let (output, in_time_order) = match planned {
            QueryPlan::Stateless(plan) => {
                let schema = plan.output_schema().clone();
                let described = format!("{filter}Project: {items} (columns {})", names(&schema));
                operators.push(Box::new(crate::engine::operator::Project::new(Arc::new(plan), described)));
                (schema, false)
            }
            QueryPlan::Over { plan, .. } => {
                if table {
                    return Err(refusal("OVER windows read a STREAM: a table's rows have no arrival order".into()));
                }
                let schema = plan.output.clone();
                let described = format!("{filter}Over (frames per partition); Project: {items}");
                let operator = crate::engine::over::Over::try_new(Arc::new(plan), described)?;
                operators.push(Box::new(operator));
                (schema, true)
            }
            QueryPlan::Aggregate { mut plan, .. } => {
                if table {
                    crate::planner::persistent::aggregate_table(&mut plan, &source)?;
                }
                let windowed = plan.windows.is_some();
                let described = format!("{filter}Aggregate by {}; Project: {items}", group_by(query));
                let (operator, schema) = aggregate_operator(plan, described)?;
                operators.push(operator);
                (schema, windowed)
            }
        };
        // A table's key columns stay in its deleted rows.
        let mut table_keys = Vec::new();
        if table {
            table_keys.extend(source.columns.iter().filter(|c| c.role == ColumnRole::Key).map(|c| c.name.clone()));
            if source.window_key_bytes() > 0 {
                table_keys.extend(crate::engine::source::WINDOW_COLUMNS.iter().map(|c| (*c).to_owned()));
            }
        }
        Ok(PushPlan { input: source, joined: Vec::new(), operators, output, table_keys, in_time_order })
    }

    /// A push query over a join: a join operator per JOIN (and an aggregation after them),
    /// its inputs read together in event-time order, as a persistent query's are.
    async fn plan_push_join(
        &self,
        query: &StreamingQuery,
        sources: Vec<Arc<crate::catalog::Source>>,
    ) -> Result<PushPlan, PlanError> {
        let (filter, items) = clauses(query);
        let (operators, output) = if crate::planner::join_aggregate::aggregates(query) {
            let grouped = self.plan_grouped_join(query, &sources).await?;
            let join = Arc::new(grouped.join);
            let mut operators = crate::planner::persistent::join_operators(&join, "")?;
            let bridge = crate::engine::join_aggregate::bridge_schema(&join.output);
            operators.push(Box::new(crate::engine::join_aggregate::StampRowTime::new(bridge)));
            let described = format!("{filter}Aggregate by {}; Project: {items}", group_by(query));
            let (operator, schema) = aggregate_operator(grouped.aggregate, described)?;
            operators.push(operator);
            (operators, schema)
        } else {
            if !query.partition_by.is_empty() {
                return Err(refusal("PARTITION BY of a join is not supported yet".into()));
            }
            let plan = Arc::new(self.plan_join_checked(query, &sources).await?);
            let described = format!("; {filter}Project: {items} (columns {})", names(&plan.output));
            let operators = crate::planner::persistent::join_operators(&plan, &described)?;
            (operators, plan.output.clone())
        };
        let mut sources = sources.into_iter();
        let input = sources.next().ok_or_else(|| refusal("a join reads two sources or more".into()))?;
        Ok(PushPlan {
            input,
            joined: sources.collect(),
            operators,
            output,
            table_keys: Vec::new(),
            // (A join's inputs are read in event-time order in any case.)
            in_time_order: false,
        })
    }
}

/// A query's WHERE (as `Filter: …; `, or nothing) and its projection, as written, for the
/// operators' descriptions (`EXPLAIN`).
fn clauses(query: &StreamingQuery) -> (String, String) {
    let datafusion::sql::sqlparser::ast::SetExpr::Select(select) = query.query.body.as_ref() else {
        return (String::new(), String::new());
    };
    let filter = select.selection.as_ref().map(|c| format!("Filter: {c}; ")).unwrap_or_default();
    let items: Vec<String> = select.projection.iter().map(|item| item.to_string()).collect();
    (filter, items.join(", "))
}

/// A query's GROUP BY expressions, as written.
fn group_by(query: &StreamingQuery) -> String {
    let by: Vec<String> = super::persistent::group_by_of(query).iter().map(|e| e.to_string()).collect();
    by.join(", ")
}

/// The column names of `schema`, comma-separated.
fn names(schema: &SchemaRef) -> String {
    schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ")
}

/// An aggregation's operator, and the rows it produces for printing: the grouping columns
/// marked (shown even for deletions).
fn aggregate_operator(
    plan: crate::engine::aggregate::AggregatePlan,
    described: String,
) -> Result<(Box<dyn crate::engine::operator::Operator>, SchemaRef), PlanError> {
    let keys = plan.group_by.len();
    let fields: Vec<_> = plan
        .output
        .fields()
        .iter()
        .map(|f| {
            let grouped = plan.aggregate_schema.fields().iter().take(keys).any(|g| g.name() == f.name());
            let mut field = f.as_ref().clone();
            if grouped {
                field.set_metadata([(GROUPING_COLUMN.to_owned(), String::new())].into());
            }
            field
        })
        .collect();
    let schema = Arc::new(datafusion::arrow::datatypes::Schema::new(fields));
    let operator = super::persistent::aggregate_operator(&Arc::new(plan), described, None)?;
    Ok((operator, schema))
}

/// `SELECT *`'s columns: the source's, with a windowed source's window bounds after its key.
pub fn star_columns(source: &crate::catalog::Source) -> Vec<String> {
    let mut star: Vec<String> = source.columns.iter().map(|c| c.name.clone()).collect();
    if source.window_key_bytes() > 0 {
        let keys = source.columns.iter().filter(|c| c.role == crate::catalog::ColumnRole::Key).count();
        for (i, bound) in crate::engine::source::WINDOW_COLUMNS.iter().enumerate() {
            star.insert(keys + i, (*bound).to_string());
        }
    }
    star
}

/// Marks a column of a push query's rows as a grouping column (shown for a deleted group).
const GROUPING_COLUMN: &str = "eddy.grouping";

/// True for a grouping column of a push query's rows (shown even in a deleted row).
pub fn is_grouping_column(schema: &SchemaRef, column: usize) -> bool {
    schema.field(column).metadata().contains_key(GROUPING_COLUMN)
}
