//! Planning a query that runs: a persistent query (CSAS, CTAS, INSERT INTO … SELECT) or a
//! push query, from its SQL and the catalog's sources to the engine's plans and operators,
//! with the keys of its output (ksqlDB's rules and messages).

use std::sync::Arc;
use std::time::Duration;

use datafusion::sql::sqlparser::ast::{Expr, SetExpr, TableFactor};

use super::Planner;
use super::keys::{
    check_reserved_names, expand_star_for_partitioning, key_columns, partitions_by_null, strip_quotes,
    unqualified_if_bare,
};
use super::query::{QueryPlan, plan_query};
use crate::catalog::{ColumnRole, Source, source_name};
use crate::engine::operator::{Operator, Project};
use crate::engine::plan::{PlanError, StatelessPlan};
use crate::engine::source::row_schema;
use crate::sql::ast::{SourceKind, SqlType, StreamingQuery};

/// A refusal of the query, with ksqlDB's message.
fn refusal(message: String) -> PlanError {
    PlanError::user(message)
}

impl Planner<'_> {
    /// Plans a persistent query writing `sink_name`, deciding which output columns are keys
    /// with ksqlDB's rules and messages.
    pub async fn plan_persistent(&self, query: &StreamingQuery, sink_name: &str) -> Result<PlannedQuery, PlanError> {
        if query.query.limit_clause.is_some() {
            return Err(refusal("Persistent queries don't support LIMIT clause.".into()));
        }
        if let Some(sources) = self.join_sources(query)? {
            check_kafka_values(&sources, "JOIN")?;
            return self.plan_join_persistent(query, sink_name, sources).await;
        }
        let input = self.query_source(query)?;
        if !group_by_of(query).is_empty() {
            check_kafka_values(std::slice::from_ref(&input), "GROUP BY")?;
        }
        let star: Vec<String> = input.columns.iter().map(|c| c.name.clone()).collect();
        let mut without_partitioning = query.clone();
        without_partitioning.partition_by.clear();
        if !query.partition_by.is_empty() && !partitions_by_null(query) {
            expand_star_for_partitioning(&mut without_partitioning, &query.partition_by, &input);
        }
        if input.kind == SourceKind::Table && !query.partition_by.is_empty() {
            return Err(refusal(format!("Cannot PARTITION BY a TABLE: {} is keyed by its PRIMARY KEY", input.name)));
        }
        let planned = plan_query(&without_partitioning, &input.name, row_schema(&input), &star).await?;
        let (plan, items) = match planned {
            QueryPlan::Stateless(mut plan) => {
                if input.kind == SourceKind::Table {
                    if plan.has_table_functions() {
                        return Err(refusal("Table source is not supported with table functions".into()));
                    }
                    // A table's row that stops matching the WHERE clause is deleted downstream.
                    plan.filter_to_tombstones();
                }
                let items = plan.items().to_vec();
                (Planned::Stateless(Arc::new(plan)), items)
            }
            QueryPlan::Aggregate { mut plan, items } => {
                if group_by_of(query).is_empty() {
                    return Err(refusal(format!(
                        "CREATE TABLE AS SELECT statement does not support aggregate function [{}] without a GROUP \
                         BY clause.",
                        aggregate_calls(&items).join(", ")
                    )));
                }
                check_state_format(&plan, input.value_format.as_ref())?;
                if input.kind == SourceKind::Table {
                    aggregate_table(&mut plan, &input)?;
                }
                if !query.partition_by.is_empty() {
                    return Err(refusal("PARTITION BY is not supported with GROUP BY".into()));
                }
                (Planned::Aggregate(Arc::new(plan)), items)
            }
            QueryPlan::Over { plan, items } => {
                if input.kind == SourceKind::Table {
                    return Err(refusal("OVER windows read a STREAM: a table's rows have no arrival order".into()));
                }
                (Planned::Over(Arc::new(plan)), items)
            }
        };
        let names: Vec<String> = match &plan {
            Planned::Stateless(p) => p.output_schema(),
            Planned::Aggregate(p) => &p.output,
            Planned::Over(p) => &p.output,
            Planned::Join(p) => &p.output,
            Planned::JoinAggregate(_, p) => &p.output,
        }
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
        let grouping = match &plan {
            Planned::Aggregate(_) => Some(group_by_of(query)),
            Planned::Stateless(_) | Planned::Over(_) | Planned::Join(_) | Planned::JoinAggregate(..) => None,
        };
        let keys = key_columns(query, &input, &items, &names, sink_name, grouping.as_deref())?;
        check_reserved_names(&items, &names, &keys)?;
        if keys.iter().all(|k| k.is_some()) {
            return Err(refusal("The projection contains no value columns.".into()));
        }
        Ok(PlannedQuery { input, joined: Vec::new(), plan, keys })
    }

    /// The sources of a join query (`FROM a JOIN b`), or `None` for a one-source query.
    pub fn join_sources(&self, query: &StreamingQuery) -> Result<Option<Vec<Arc<Source>>>, PlanError> {
        let datafusion::sql::sqlparser::ast::SetExpr::Select(select) = query.query.body.as_ref() else {
            return Ok(None);
        };
        let Some(from) = select.from.first() else { return Ok(None) };
        if from.joins.is_empty() {
            return Ok(None);
        }
        if select.from.len() > 1 {
            return Err(refusal("FROM names one source, then JOIN the others".into()));
        }
        let source = |relation: &datafusion::sql::sqlparser::ast::TableFactor| -> Result<Arc<Source>, PlanError> {
            let datafusion::sql::sqlparser::ast::TableFactor::Table { name, .. } = relation else {
                return Err(refusal("a join reads sources by name".into()));
            };
            let name = source_name(name);
            self.catalog
                .source(&name)
                .cloned()
                .ok_or_else(|| refusal(format!("{name} does not exist.{}", self.catalog.alternatives(&name, None))))
        };
        let mut sources = vec![source(&from.relation)?];
        for join in &from.joins {
            let next = source(&join.relation)?;
            if sources.iter().any(|s| s.name == next.name) && from.joins.len() > 1 {
                return Err(refusal(format!(
                    "N-way joins do not support multiple occurrences of the same source. Source: '{}'",
                    next.name
                )));
            }
            sources.push(next);
        }
        Ok(Some(sources))
    }

    /// A join re-keyed by `PARTITION BY e`: its result is keyed by the projected column that
    /// is `e` (not by the join key), and written partitioned by it.
    async fn plan_partitioned_join(
        &self,
        query: &StreamingQuery,
        sink_name: &str,
        sources: Vec<Arc<Source>>,
    ) -> Result<PlannedQuery, PlanError> {
        use datafusion::sql::sqlparser::ast::{SelectItem, SetExpr};
        let mut joined = query.clone();
        joined.partition_by.clear();
        if let SetExpr::Select(select) = joined.query.body.as_ref()
            && select
                .projection
                .iter()
                .any(|i| matches!(i, SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)))
        {
            return Err(refusal("SELECT * with PARTITION BY of a join is not supported yet: name the columns".into()));
        }
        let mut plan = self.plan_join_checked(&joined, &sources).await?;
        let names: Vec<String> = plan.output.fields().iter().map(|f| f.name().clone()).collect();
        let mut keys = vec![None; plan.items.len()];
        if !partitions_by_null(query) {
            let [by] = query.partition_by.as_slice() else {
                return Err(refusal("PARTITION BY of a join takes one expression".into()));
            };
            let by = unqualified_if_bare(by);
            let text = |e: &Expr| strip_quotes(&unqualified_if_bare(e));
            // A bare column matches the projection's column of that name, whichever source's.
            let matches = |item: &Expr| match (&by, item) {
                (Expr::Identifier(column), Expr::CompoundIdentifier(parts)) => {
                    parts.last().is_some_and(|p| p.value == column.value)
                }
                _ => text(item) == text(&by),
            };
            let Some(i) = plan.items.iter().position(matches) else {
                return Err(refusal(format!(
                    "Key missing from projection (ie, SELECT). See https://cnfl.io/2LV7ouS.\nThe query used to build \
                     `{sink_name}` must include the partitioning expression {} in its projection (eg, SELECT {}...).",
                    text(&by),
                    text(&by)
                )));
            };
            keys[i] = Some(0);
        }
        plan.key_output = None;
        joined_query(plan, &names, keys, sources)
    }

    /// Plans a join of `sources` as ksqlDB checks one: self joins, value formats, each
    /// table joined on its key, partition counts of sides joined on their keys.
    pub async fn plan_join_checked(
        &self,
        query: &StreamingQuery,
        sources: &[Arc<Source>],
    ) -> Result<crate::engine::join::JoinPlan, PlanError> {
        use crate::engine::join::JoinShape;
        use crate::planner::join::plan_join;
        if sources[0].name == sources[1].name {
            return Err(refusal(format!(
                "Can not join '{0}' to '{0}': self joins are not yet supported.",
                sources[0].name
            )));
        }
        let kafka: Vec<&str> =
            sources.iter().filter(|s| s.value_format.is(crate::format::KAFKA)).map(|s| s.name.as_str()).collect();
        if !kafka.is_empty() {
            return Err(refusal(format!(
                "Source(s) {} are using the 'KAFKA' value format. This format does not yet support JOIN.",
                kafka.join(", ")
            )));
        }
        let plan = plan_join(query, &join_inputs(sources)).await?;
        for (step, on) in plan.on.iter().enumerate() {
            let right = &sources[step + 1];
            let condition = &plan.conditions[step];
            let shape = plan.steps[step].shape;
            // The right side names its key column.
            let right_key: Vec<&str> =
                right.columns.iter().filter(|c| c.role == ColumnRole::Key).map(|c| c.name.as_str()).collect();
            let on_right_key = matches!(&on[1], Expr::CompoundIdentifier(parts) if parts.last().is_some_and(|c| right_key == [c.value.as_str()]));
            // ksqlDB joins sides joined on their keys partition by partition: their partition
            // counts must match. (Eddy reads every partition in one task and re-keys in memory,
            // so it could join them; the check keeps queries portable to and from ksqlDB.)
            let left_keyed = plan.steps[..=step].iter().all(|s| s.left_keyed);
            if left_keyed && on_right_key && shape != JoinShape::ForeignKey {
                let counts =
                    [self.log.partition_count(&sources[0].topic).await?, self.log.partition_count(&right.topic).await?];
                if counts[0] != counts[1] {
                    return Err(refusal(format!(
                        "Can't join `{}` with `{}` since the number of partitions don't match. `{}` partitions = {}; \
                         `{}` partitions = {}. Please repartition either one so that the number of partitions match.",
                        sources[0].name, right.name, sources[0].name, counts[0], right.name, counts[1]
                    )));
                }
            }
            // A table is joined on its PRIMARY KEY.
            if right.kind == SourceKind::Table && !on_right_key {
                let message = if matches!(shape, JoinShape::TableTable | JoinShape::ForeignKey) {
                    "table-table joins require to join on the primary key of the right input table"
                } else {
                    "stream-table joins require to join on the table's primary key"
                };
                return Err(refusal(format!("Invalid join condition: {message}. Got {condition}.")));
            }
        }
        Ok(plan)
    }

    /// Plans a join query: DataFusion plans it over both sources' rows; the key is the join
    /// key, which the projection must include as ksqlDB requires.
    async fn plan_join_persistent(
        &self,
        query: &StreamingQuery,
        sink_name: &str,
        sources: Vec<Arc<Source>>,
    ) -> Result<PlannedQuery, PlanError> {
        if crate::planner::join_aggregate::aggregates(query) {
            return self.plan_aggregated_join(query, sink_name, sources).await;
        }
        if !query.partition_by.is_empty() {
            return self.plan_partitioned_join(query, sink_name, sources).await;
        }
        let mut plan = self.plan_join_checked(query, &sources).await?;
        let names: Vec<String> = plan.output.fields().iter().map(|f| f.name().clone()).collect();
        // The key: the join expression of either side that is a column, as written, or
        // ROWKEY when neither is (or for FULL OUTER, where it may come from either side).
        let synthetic = plan.synthetic_key;
        let text = |e: &Expr| strip_quotes(&unqualified_if_bare(e));
        let wanted: Vec<String> =
            if synthetic { vec![plan.rowkey.clone()] } else { plan.key_columns.iter().map(text).collect() };
        let mut keys = vec![None; plan.items.len()];
        // The first key column in the projection, the left side's first.
        match wanted.iter().find_map(|w| plan.items.iter().position(|item| text(item) == *w)) {
            Some(i) => {
                // The key column once: the same expression again under another name is refused.
                let again: Vec<usize> =
                    (0..plan.items.len()).filter(|j| text(&plan.items[*j]) == text(&plan.items[i])).collect();
                if again.len() > 1 {
                    let mut aliases: Vec<&str> = again.iter().map(|j| names[*j].as_str()).collect();
                    aliases.sort();
                    return Err(refusal(format!(
                        "The projection contains a key column (`{}`) more than once, aliased as: {}.",
                        names[i],
                        aliases.join(" and ")
                    )));
                }
                keys[i] = Some(0);
                plan.key_output = Some(i);
            }
            None if plan.steps.last().is_some_and(|step| step.shape == crate::engine::join::JoinShape::ForeignKey) => {
                // A foreign-key join's rows are keyed by the left table's primary key.
                let left = sources[0].name.clone();
                let missing: Vec<String> =
                    wanted.iter().map(|k| format!("`{}`", k.rsplit('.').next().unwrap_or(k))).collect();
                let column = if missing.len() == 1 { "column" } else { "columns" };
                return Err(refusal(format!(
                    "Primary key {column} missing in projection. For foreign-key table-table joins, the projection \
                     must include all primary key columns from the left input table ({left}). Missing {column}: {}.",
                    missing.join(", ")
                )));
            }
            None => {
                let shown = match wanted.split_last() {
                    Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
                    _ => wanted.concat(),
                };
                let (what, example) = if synthetic {
                    (format!("join expression {}", plan.rowkey), plan.rowkey.clone())
                } else {
                    let plural = if wanted.len() > 1 { "s" } else { "" };
                    (format!("join expression{plural} {shown}"), wanted[0].clone())
                };
                let mut message = format!(
                    "Key missing from projection (ie, SELECT). See https://cnfl.io/2LV7ouS.\nThe query used to build \
                     `{sink_name}` must include the {what} in its projection (eg, SELECT {example}...)."
                );
                if synthetic {
                    message.push_str(&format!(
                        "\n{} was added as a synthetic key column because the join criteria did not match any \
                         source column. This expression must be included in the projection and may be aliased.",
                        plan.rowkey
                    ));
                }
                return Err(refusal(message));
            }
        }
        joined_query(plan, &names, keys, sources)
    }

    /// GROUP BY over a join: a table keyed by the grouping expressions, as any aggregation.
    async fn plan_aggregated_join(
        &self,
        query: &StreamingQuery,
        sink_name: &str,
        sources: Vec<Arc<Source>>,
    ) -> Result<PlannedQuery, PlanError> {
        let grouped = self.plan_grouped_join(query, &sources).await?;
        let names: Vec<String> = grouped.aggregate.output.fields().iter().map(|f| f.name().clone()).collect();
        // The grouping expressions are over the bridge rows, as the projection is.
        let bridge_schema = crate::engine::join_aggregate::bridge_schema(&grouped.join.output);
        let columns = bridge_schema
            .fields()
            .iter()
            .filter_map(|f| {
                Some(crate::catalog::Column {
                    name: f.name().clone(),
                    sql_type: SqlType::from_arrow(f.data_type())?,
                    data_type: f.data_type().clone(),
                    role: ColumnRole::Value,
                })
            })
            .collect();
        let bridge =
            Source { name: grouped.bridge_name.clone(), columns, schema: bridge_schema, ..sources[0].as_ref().clone() };
        let grouping = group_by_of(&grouped.query);
        let keys = key_columns(&grouped.query, &bridge, &grouped.items, &names, sink_name, Some(&grouping))?;
        check_reserved_names(&grouped.items, &names, &keys)?;
        if keys.iter().all(|k| k.is_some()) {
            return Err(refusal("The projection contains no value columns.".into()));
        }
        let mut sources = sources.into_iter();
        let input = sources.next().ok_or_else(|| refusal("a join reads sources".into()))?;
        Ok(PlannedQuery {
            input,
            joined: sources.collect(),
            plan: Planned::JoinAggregate(Arc::new(grouped.join), Arc::new(grouped.aggregate)),
            keys,
        })
    }

    /// Plans GROUP BY over a join: the join, producing bridge rows, and the aggregation of
    /// them, as of a stream (or, when every input is a table, of a changelog keyed by the
    /// join key).
    pub async fn plan_grouped_join(
        &self,
        query: &StreamingQuery,
        sources: &[Arc<Source>],
    ) -> Result<GroupedJoin, PlanError> {
        use crate::engine::join_aggregate::bridge_schema;
        use crate::planner::join_aggregate::split;
        if !query.partition_by.is_empty() {
            return Err(refusal("PARTITION BY is not supported with GROUP BY".into()));
        }
        let split = split(query, &join_inputs(sources))?;
        let join = self.plan_join_checked(&split.join, sources).await?;
        let bridge = bridge_schema(&join.output);
        let planned = plan_query(&split.aggregate, &split.bridge_name, Arc::clone(&bridge), &[]).await?;
        let QueryPlan::Aggregate { mut plan, items } = planned else {
            return Err(refusal("a join with WINDOW or HAVING must aggregate: add GROUP BY".into()));
        };
        check_state_format(&plan, sources[0].value_format.as_ref())?;
        if sources.iter().all(|s| s.kind == SourceKind::Table) {
            let key = bridge.index_of(&split.key_column).map_err(|e| refusal(e.to_string()))?;
            aggregate_changelog(&mut plan, vec![key])?;
        }
        Ok(GroupedJoin { join, aggregate: plan, items, query: split.aggregate, bridge_name: split.bridge_name })
    }

    /// The one stream a query reads.
    pub fn query_source(&self, query: &StreamingQuery) -> Result<Arc<crate::catalog::Source>, PlanError> {
        let SetExpr::Select(select) = query.query.body.as_ref() else {
            return Err(refusal("only SELECT … FROM a stream is supported yet".into()));
        };
        let [from] = select.from.as_slice() else {
            return Err(refusal("a query reads exactly one source (joins are not supported yet)".into()));
        };
        if !from.joins.is_empty() {
            return Err(refusal("joins are not supported yet".into()));
        }
        let TableFactor::Table { name, .. } = &from.relation else {
            return Err(refusal("a query reads a stream by name".into()));
        };
        let name = source_name(name);
        let source = self
            .catalog
            .source(&name)
            .cloned()
            .ok_or_else(|| refusal(format!("{name} does not exist.{}", self.catalog.alternatives(&name, None))))?;
        Ok(source)
    }
}

/// A persistent query, planned.
pub struct PlannedQuery {
    pub input: Arc<Source>,
    /// A join's other input.
    pub joined: Vec<Arc<Source>>,
    pub plan: Planned,
    /// Per output column: its place in the sink's key, if it is a key column.
    pub keys: Vec<Option<usize>>,
}

/// GROUP BY over a join, planned.
pub struct GroupedJoin {
    pub join: crate::engine::join::JoinPlan,
    pub aggregate: crate::engine::aggregate::AggregatePlan,
    /// The projection, over the bridge rows.
    pub items: Vec<Expr>,
    /// The aggregation, over the bridge rows.
    pub query: StreamingQuery,
    pub bridge_name: String,
}

/// What a persistent query does between its source and its sink.
pub enum Planned {
    /// Filter and projection (a stream from a stream, a changelog from a table).
    Stateless(Arc<StatelessPlan>),
    /// GROUP BY: a table from a stream.
    Aggregate(Arc<crate::engine::aggregate::AggregatePlan>),
    /// `OVER` windows: a stream from a stream, a row out per row in.
    Over(Arc<crate::engine::over::OverPlan>),
    /// A join of two sources.
    Join(Arc<crate::engine::join::JoinPlan>),
    /// GROUP BY over a join: the join's steps, then the aggregation of its rows.
    JoinAggregate(Arc<crate::engine::join::JoinPlan>, Arc<crate::engine::aggregate::AggregatePlan>),
}

impl PlannedQuery {
    pub fn output_schema(&self) -> &datafusion::arrow::datatypes::SchemaRef {
        match &self.plan {
            Planned::Stateless(plan) => plan.output_schema(),
            Planned::Aggregate(plan) => &plan.output,
            Planned::Over(plan) => &plan.output,
            Planned::Join(plan) => &plan.output,
            Planned::JoinAggregate(_, plan) => &plan.output,
        }
    }

    /// The join, for a join query.
    pub fn join_plan(&self) -> Option<&crate::engine::join::JoinPlan> {
        match &self.plan {
            Planned::Join(plan) | Planned::JoinAggregate(plan, _) => Some(plan),
            Planned::Stateless(_) | Planned::Aggregate(_) | Planned::Over(_) => None,
        }
    }

    /// The query's inputs, in order.
    pub fn sources(&self) -> Vec<Arc<Source>> {
        std::iter::once(&self.input).chain(&self.joined).cloned().collect()
    }

    /// Reads `source` as input `input` instead.
    pub fn replace_input(&mut self, input: usize, source: Arc<Source>) {
        match input.checked_sub(1) {
            None => self.input = source,
            Some(i) => {
                if let Some(joined) = self.joined.get_mut(i) {
                    *joined = source;
                }
            }
        }
    }

    /// Which columns of its input's rows ([`row_schema`]) the query reads, when it is known
    /// to read no others: a filter and projection, or an aggregation, of a stream. `None`
    /// when it may read any (a table's rows are kept whole as its state; joins, `OVER`
    /// and table functions are not walked).
    pub fn input_columns_used(&self) -> Option<Vec<bool>> {
        use datafusion::physical_expr::PhysicalExpr;
        if self.input.kind != SourceKind::Stream {
            return None;
        }
        let expressions: Vec<Arc<dyn PhysicalExpr>> = match &self.plan {
            Planned::Stateless(plan) if plan.unnest.is_none() => {
                plan.filter.iter().chain(&plan.projection).cloned().collect()
            }
            Planned::Aggregate(plan) if plan.table_keys.is_none() => {
                let arguments = plan.aggregates.iter().flat_map(|a| {
                    let ordering = a.order_bys().iter().map(|o| Arc::clone(&o.expr));
                    a.expressions().into_iter().chain(ordering)
                });
                plan.filter.iter().chain(&plan.group_by).cloned().chain(arguments).collect()
            }
            _ => return None,
        };
        let mut used = vec![false; row_schema(&self.input).fields().len()];
        for expression in &expressions {
            for column in datafusion::physical_expr::utils::collect_columns(expression) {
                *used.get_mut(column.index())? = true;
            }
        }
        Some(used)
    }

    /// What the query produces: a table when it aggregates or reads a table.
    pub fn produces(&self) -> SourceKind {
        match &self.plan {
            Planned::Aggregate(_) | Planned::JoinAggregate(..) => SourceKind::Table,
            Planned::Stateless(_) | Planned::Over(_) => self.input.kind,
            // A stream joined with anything is a stream; two tables make a table.
            Planned::Join(_) => self.input.kind,
        }
    }
}

/// The columns of a planned query as an INSERT INTO compares them with its sink's.
pub fn describe_columns(planned: &PlannedQuery) -> Vec<String> {
    planned
        .output_schema()
        .fields()
        .iter()
        .zip(&planned.keys)
        .map(|(f, key)| {
            let sql_type =
                SqlType::from_arrow(f.data_type()).map_or_else(|| f.data_type().to_string(), |t| t.to_string());
            format!("`{}` {sql_type}{}", f.name(), if key.is_some() { " KEY" } else { "" })
        })
        .collect()
}

/// The operators of a planned query, source to sink; `state_ttl` bounds an unwindowed
/// aggregation's state in time.
pub fn operators_for(
    query: &StreamingQuery,
    planned: &PlannedQuery,
    state_ttl: Option<Duration>,
) -> Result<Vec<Box<dyn Operator>>, PlanError> {
    let select = match query.query.body.as_ref() {
        datafusion::sql::sqlparser::ast::SetExpr::Select(select) => Some(select),
        _ => None,
    };
    let filter = select.and_then(|s| s.selection.as_ref()).map(|c| format!("Filter: {c}; ")).unwrap_or_default();
    let columns: Vec<String> = planned
        .output_schema()
        .fields()
        .iter()
        .zip(&planned.keys)
        .map(|(f, key)| format!("{}{}", f.name(), if key.is_some() { " (key)" } else { "" }))
        .collect();
    let mut description = format!("{filter}Project: {}", columns.join(", "));
    if !query.partition_by.is_empty() {
        let by: Vec<String> = query.partition_by.iter().map(|e| e.to_string()).collect();
        description.push_str(&format!("; re-keyed by {}", by.join(", ")));
    }
    match &planned.plan {
        Planned::Stateless(plan) => Ok(vec![Box::new(Project::new(Arc::clone(plan), description))]),
        Planned::Join(plan) => join_operators(plan, &format!("; {filter}Project: {}", columns.join(", "))),
        Planned::JoinAggregate(join, plan) => {
            let mut operators = join_operators(join, "")?;
            let bridge = crate::engine::join_aggregate::bridge_schema(&join.output);
            operators.push(Box::new(crate::engine::join_aggregate::StampRowTime::new(bridge)));
            let by = group_by_of(query).iter().map(|e| e.to_string()).collect::<Vec<_>>().join(", ");
            let description = format!("{filter}Aggregate by {by}; Project: {}", columns.join(", "));
            operators.push(aggregate_operator(plan, description, state_ttl)?);
            Ok(operators)
        }
        Planned::Over(plan) => {
            let description = format!("{filter}Over (frames per partition); Project: {}", columns.join(", "));
            let operator = crate::engine::over::Over::try_new(Arc::clone(plan), description)?;
            Ok(vec![Box::new(operator)])
        }
        Planned::Aggregate(plan) => {
            let by = group_by_of(query).iter().map(|e| e.to_string()).collect::<Vec<_>>().join(", ");
            let description = format!("{filter}Aggregate by {by}; Project: {}", columns.join(", "));
            Ok(vec![aggregate_operator(plan, description, state_ttl)?])
        }
    }
}

/// The operator of an aggregation. Streams' aggregations run batch at a time on DataFusion's
/// groups accumulators: tumbling and hopping windows with EMIT FINAL, and those emitting
/// changes unwindowed or in such windows. Session windows, tables' aggregations and aggregate
/// functions without a groups accumulator run group by group.
pub(crate) fn aggregate_operator(
    plan: &Arc<crate::engine::aggregate::AggregatePlan>,
    description: String,
    state_ttl: Option<Duration>,
) -> Result<Box<dyn Operator>, PlanError> {
    if crate::engine::window_aggregate::FinalWindows::runs(plan) {
        let operator = crate::engine::window_aggregate::FinalWindows::try_new(Arc::clone(plan), description)?;
        return Ok(Box::new(operator));
    }
    let ttl_ms = state_ttl.map(|ttl| i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
    if crate::engine::groups_aggregate::GroupsAggregate::runs(plan) {
        let operator = crate::engine::groups_aggregate::GroupsAggregate::try_new(Arc::clone(plan), description)?
            .with_state_ttl(ttl_ms);
        return Ok(Box::new(operator));
    }
    let operator = crate::engine::aggregate::Aggregate::try_new(Arc::clone(plan), description)?.with_state_ttl(ttl_ms);
    Ok(Box::new(operator))
}

/// A join operator per step of `plan`; the last step's description ends with `last`.
pub fn join_operators(
    plan: &Arc<crate::engine::join::JoinPlan>,
    last: &str,
) -> Result<Vec<Box<dyn Operator>>, PlanError> {
    let mut operators: Vec<Box<dyn Operator>> = Vec::with_capacity(plan.steps.len());
    for (i, step) in plan.steps.iter().enumerate() {
        let suffix = if i + 1 == plan.steps.len() { last } else { "" };
        let description = format!("{:?} join {:?} with input {}{suffix}", step.kind, step.shape, step.right_input);
        let operator = crate::engine::join::Join::try_new(Arc::clone(plan), i, description)?;
        operators.push(Box::new(operator));
    }
    Ok(operators)
}

/// ksqlDB's refusal of a JOIN or GROUP BY over sources whose values are in the KAFKA format
/// (it would need a repartition or changelog topic in that format).
fn check_kafka_values(sources: &[Arc<Source>], operation: &str) -> Result<(), PlanError> {
    let kafka: Vec<&str> =
        sources.iter().filter(|s| s.value_format.is(crate::format::KAFKA)).map(|s| s.name.as_str()).collect();
    if kafka.is_empty() {
        return Ok(());
    }
    Err(refusal(format!(
        "Source(s) {} are using the 'KAFKA' value format. This format does not yet support {operation}.\nThe KAFKA \
         format is primarily intended for use as a key format. It can be used as a value format, but can not be used \
         in any operation that requires a repartition or changelog topic.",
        kafka.join(", ")
    )))
}

/// The GROUP BY expressions of a query as written.
/// The aggregate calls of a projection as ksqlDB prints them (`COUNT(*)` counts ROWTIME).
fn aggregate_calls(items: &[Expr]) -> Vec<String> {
    let context = crate::planner::query::planning_context();
    let state = context.state();
    let mut calls = Vec::new();
    for item in items {
        let _ = datafusion::sql::sqlparser::ast::visit_expressions(item, |e: &Expr| {
            if let Expr::Function(f) = e {
                let name = f.name.to_string().to_lowercase();
                if state.aggregate_functions().contains_key(&name) || name == "count_distinct" {
                    let text = crate::planner::query::ksql_expression_text(e);
                    calls.push(if text == "COUNT(*)" || text == "COUNT()" { "COUNT(ROWTIME)".into() } else { text });
                    return std::ops::ControlFlow::Continue(());
                }
            }
            std::ops::ControlFlow::<()>::Continue(())
        });
    }
    calls
}

pub(super) fn group_by_of(query: &StreamingQuery) -> Vec<Expr> {
    use datafusion::sql::sqlparser::ast::{GroupByExpr, SetExpr};
    match query.query.body.as_ref() {
        SetExpr::Select(select) => match &select.group_by {
            GroupByExpr::Expressions(exprs, _) => exprs.clone(),
            GroupByExpr::All(_) => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// ksqlDB keeps some functions' state in the source's value format, and DELIMITED cannot
/// hold a list or struct.
fn check_state_format(
    plan: &crate::engine::aggregate::AggregatePlan,
    value_format: &dyn crate::format::Format,
) -> Result<(), PlanError> {
    let structured_state = ["topk", "topkdistinct", "correlation", "collect_list", "collect_set", "histogram"];
    if value_format.is(crate::format::DELIMITED)
        && plan.aggregates.iter().any(|a| structured_state.contains(&a.fun().name()))
    {
        return Err(refusal(
            "One of the functions used in the statement has an intermediate type that the value format can not \
             handle. Please remove the function or change the format."
                .into(),
        ));
    }
    Ok(())
}

/// Aggregating a table: each change of a row retracts its previous version, so only
/// aggregate functions that can take a value out again may be used, and no windows.
pub fn aggregate_table(plan: &mut crate::engine::aggregate::AggregatePlan, input: &Source) -> Result<(), PlanError> {
    // A table's rows replace each other by key: each change retracts the last.
    let schema = row_schema(input);
    let keys = input
        .columns
        .iter()
        .filter(|c| c.role == ColumnRole::Key)
        .map(|c| schema.index_of(&c.name))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| refusal(e.to_string()))?;
    aggregate_changelog(plan, keys)
}

/// Aggregating a changelog whose rows replace each other by the columns `keys`: each
/// change retracts the last, so only aggregate functions that can take a value out again
/// may be used, and no windows.
fn aggregate_changelog(plan: &mut crate::engine::aggregate::AggregatePlan, keys: Vec<usize>) -> Result<(), PlanError> {
    if plan.windows.is_some() {
        return Err(refusal("A TABLE cannot be aggregated in windows".into()));
    }
    plan.table_keys = Some(keys);
    // Only aggregates that can take a value out again can follow a table.
    let mut unable: Vec<String> = Vec::new();
    for aggregate in &plan.aggregates {
        let name = aggregate.fun().name().to_uppercase();
        // ksqlDB has no table variant of MIN and MAX, though DataFusion can retract.
        let retracts = aggregate.create_sliding_accumulator().is_ok_and(|a| a.supports_retract_batch())
            && !matches!(name.as_str(), "MIN" | "MAX");
        if !retracts && !unable.contains(&name) {
            unable.push(name);
        }
    }
    if !unable.is_empty() {
        let listed = match unable.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
            _ => unable.concat(),
        };
        return Err(refusal(format!(
            "The aggregation functions {listed} cannot be applied to a table source, only to a stream source."
        )));
    }
    Ok(())
}

/// The join inputs of `sources`, in FROM order.
pub fn join_inputs(sources: &[Arc<Source>]) -> Vec<crate::engine::join::JoinInput> {
    sources
        .iter()
        .map(|s| crate::engine::join::JoinInput {
            name: s.name.clone(),
            row_schema: row_schema(s),
            star: s.columns.iter().map(|c| c.name.clone()).collect(),
            table: s.kind == SourceKind::Table,
            key: s.columns.iter().filter(|c| c.role == ColumnRole::Key).map(|c| c.name.clone()).collect(),
            window: s.window(),
        })
        .collect()
}

/// A planned join with its key columns chosen: checked as any query's projection is.
fn joined_query(
    plan: crate::engine::join::JoinPlan,
    names: &[String],
    keys: Vec<Option<usize>>,
    sources: Vec<Arc<Source>>,
) -> Result<PlannedQuery, PlanError> {
    check_reserved_names(&plan.items, names, &keys)?;
    if keys.iter().all(|k| k.is_some()) {
        return Err(refusal("The projection contains no value columns.".into()));
    }
    let mut sources = sources.into_iter();
    let input = sources.next().ok_or_else(|| refusal("a join reads sources".into()))?;
    Ok(PlannedQuery { input, joined: sources.collect(), plan: Planned::Join(Arc::new(plan)), keys })
}
