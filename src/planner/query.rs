//! A query over one source, planned with DataFusion: filter and projection, aggregations
//! (windowed or not) and `OVER` windows.
//!
//! The query goes through DataFusion's own planner against an empty table with the source's
//! row schema; the resulting `Projection`/`Filter`/`TableScan` plan becomes physical
//! expressions evaluated a batch at a time. Identifiers follow ksqlDB: unquoted ones are
//! upper-cased, quoted ones kept (DataFusion's own normalisation is off).

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::datasource::MemTable;
use datafusion::logical_expr::{Expr as LogicalExpr, LogicalPlan};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::sqlparser::ast::{
    Expr, Ident, ObjectName, ObjectNamePart, SelectItem, SetExpr, visit_expressions_mut, visit_relations_mut,
};

use crate::engine::plan::{PlanError, StatelessPlan, guarded, physical_expr, unqualified};
use crate::sql::ast::StreamingQuery;

/// A query, planned: stateless (filter and projection), or an aggregation.
#[derive(Debug)]
pub enum QueryPlan {
    Stateless(StatelessPlan),
    /// A stream query with `OVER` windows.
    Over {
        plan: crate::engine::over::OverPlan,
        /// The projection as written (as [`StatelessPlan::items`]).
        items: Vec<Expr>,
    },
    Aggregate {
        plan: crate::engine::aggregate::AggregatePlan,
        /// The projection as written, one expression per output column (as
        /// [`StatelessPlan::items`]).
        items: Vec<Expr>,
    },
}

/// Plans `query` (see [`StatelessPlan::try_new`]), aggregations included.
pub async fn plan_query(
    query: &StreamingQuery,
    source_name: &str,
    row_schema: SchemaRef,
    star_columns: &[String],
) -> Result<QueryPlan, PlanError> {
    crate::error::fault_point("panic-in-planning");
    {
        if !query.within.is_empty() || !query.partition_by.is_empty() {
            return Err(PlanError::user("joins and PARTITION BY are not supported yet"));
        }
        let mut windows = query.window.as_ref().map(crate::engine::window::TimeWindows::try_new).transpose()?;
        let emit_final = query.emit == Some(crate::sql::ast::Emit::Final);
        if emit_final {
            let Some(windows) = windows.as_mut() else {
                return Err(PlanError::user("EMIT FINAL is only supported for windowed aggregations."));
            };
            // A final result waits for the window to close: without a grace period, at its end.
            if query.window.as_ref().is_some_and(|w| w.grace_period.is_none()) {
                windows.grace_ms = 0;
            }
        }
        let row_time_index =
            row_schema.index_of("ROWTIME").map_err(|_| PlanError::user("the input rows lack ROWTIME"))?;
        let context = planning_context();
        let input = datafusion::common::DFSchema::try_from_qualified_schema(source_name, &row_schema)?;
        let typing_state = context.state();
        let typer = super::rewrite::Typer { state: &typing_state, schema: &input, qualified: false };

        let mut standard = query.query.as_ref().clone();
        normalise_identifiers(&mut standard);
        expand_star(&mut standard, star_columns);
        expand_struct_stars(&mut standard, &typer)?;
        let input_names: Vec<String> = row_schema.fields().iter().map(|f| f.name().clone()).collect();
        let (items, names) = name_projection(&mut standard, &input_names, &typer)?;
        rewrite_struct_access(&mut standard)?;
        rewrite_with_types(&mut standard, &typer)?;
        super::rewrite::rewrite_constructors(&mut standard)?;
        super::rewrite::type_literals(&mut standard);
        let calls = super::table_functions::extract(&mut standard, &typer)?;
        // The projection reads the table functions' results as columns after the row's; a
        // windowed aggregation groups by WINDOWSTART and WINDOWEND too, after the row's.
        let plan_schema = if calls.is_empty() {
            row_schema.clone()
        } else {
            crate::engine::table_functions::extended_schema(&row_schema, &calls)
        };
        let plan_schema = match windows {
            None => plan_schema,
            Some(_) => {
                if !calls.is_empty() {
                    return Err(PlanError::user("Table functions cannot be used with windows"));
                }
                check_window_bounds(&standard, context.state().aggregate_functions())?;
                group_by_windows(&mut standard)?;
                crate::engine::window::windowed_schema(&plan_schema)
            }
        };
        check_group_by(&standard, &items, &context.state(), source_name)?;
        frames_in_milliseconds(&mut standard)?;
        let table = MemTable::try_new(plan_schema.clone(), vec![vec![]])?;
        context.register_table(datafusion::common::TableReference::bare(source_name), Arc::new(table))?;
        let state = context.state();
        let unnest_input = input.clone();
        let input = datafusion::common::DFSchema::try_from_qualified_schema(source_name, &plan_schema)?;
        let checked = standard.clone();
        let statement = datafusion::sql::parser::Statement::Statement(Box::new(
            datafusion::sql::sqlparser::ast::Statement::Query(Box::new(standard)),
        ));
        let planned =
            futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(state.statement_to_plan(statement)))
                .await
                .map_err(|_| PlanError::internal("DataFusion panicked planning the query"))?;
        let plan = match planned {
            Ok(plan) => plan,
            Err(e) => {
                return Err(locate_failure(
                    &checked,
                    &super::rewrite::Typer { state: &state, schema: &input, qualified: false },
                    e,
                ));
            }
        };
        // An aggregation goes through DataFusion's analyzer first: it casts the arguments of
        // aggregate functions to the types their accumulators take (AVG of a BIGINT, say).
        let analyzed = if aggregate_parts(&plan).is_some() || window_parts(&plan).is_some() {
            Some(guarded(|| state.analyzer().execute_and_check(plan.clone(), state.config_options(), |_, _| {}))??)
        } else {
            None
        };
        if let Some(parts) = analyzed.as_ref().and_then(window_parts) {
            if windows.is_some() || !calls.is_empty() {
                return Err(PlanError::user("OVER cannot be combined with a WINDOW clause or table functions"));
            }
            let plan = plan_over(parts, &state, &input, &plan_schema, &names, row_time_index)?;
            return Ok(QueryPlan::Over { plan, items });
        }
        if let Some(parts) = analyzed.as_ref().and_then(aggregate_parts) {
            let mut aggregate = plan_aggregate(parts, &state, &input, &plan_schema, &names, row_time_index)?;
            aggregate.windows = windows;
            aggregate.emit_final = emit_final;
            return Ok(QueryPlan::Aggregate { plan: aggregate, items });
        }
        if windows.is_some() {
            return Err(PlanError::user("A WINDOW clause needs an aggregation (GROUP BY)"));
        }
        let (exprs, predicate) = stateless_parts(&plan)?;

        let physical = |e: LogicalExpr| physical_expr(&state, e, &input);
        let filter = predicate.map(physical).transpose()?;
        let mut projection = Vec::with_capacity(exprs.len());
        let mut fields = Vec::with_capacity(exprs.len());
        if exprs.len() != names.len() {
            return Err(PlanError::user(format!("{} columns planned for {} named", exprs.len(), names.len())));
        }
        for (expr, name) in exprs.iter().zip(names) {
            let expr = physical(expr.clone())?;
            let data_type = expr.data_type(&plan_schema)?;
            fields.push(Field::new(name, data_type, true));
            projection.push(expr);
        }
        let unnest = if calls.is_empty() {
            None
        } else {
            let arguments = calls
                .iter()
                .map(|call| {
                    let logical = state.create_logical_expr_from_sql_expr(
                        datafusion::sql::sqlparser::ast::ExprWithAlias { expr: call.argument.clone(), alias: None },
                        &unnest_input,
                    )?;
                    physical(logical)
                })
                .collect::<Result<Vec<_>, PlanError>>()?;
            let kinds = calls.iter().map(|c| c.kind).collect();
            Some(crate::engine::table_functions::Unnest { kinds, arguments, schema: plan_schema.clone() })
        };
        Ok(QueryPlan::Stateless(StatelessPlan {
            filter,
            unnest,
            projection,
            output: Arc::new(Schema::new(fields)),
            items,
            row_time_index,
            filter_to_tombstones: false,
        }))
    }
}

/// The DataFusion context queries are planned in: identifiers as the SQL front end resolved
/// them, `1.5` a DECIMAL (as to ksqlDB; `1.5E0` stays a DOUBLE), `STRING`/`VARCHAR` Arrow's
/// `Utf8` as sources' columns are, and ksqlDB's functions registered.
pub(crate) fn planning_context() -> SessionContext {
    let mut config = SessionConfig::new();
    let parser = &mut config.options_mut().sql_parser;
    parser.enable_ident_normalization = false;
    parser.parse_float_as_decimal = true;
    parser.map_string_types_to_utf8view = false;
    let context = SessionContext::new_with_config(config);
    crate::engine::udf::register(&context);
    context
}

/// WINDOWSTART and WINDOWEND are the window's: only the projection may read them, and not
/// as an aggregate's argument. The WHERE clause reads the input's rows, which have none.
fn check_window_bounds(
    query: &datafusion::sql::sqlparser::ast::Query,
    aggregates: &std::collections::HashMap<String, Arc<datafusion::logical_expr::AggregateUDF>>,
) -> Result<(), PlanError> {
    use datafusion::sql::sqlparser::ast::{GroupByExpr, visit_expressions};
    let SetExpr::Select(select) = query.body.as_ref() else { return Ok(()) };
    let bound = |clause: &Expr| match visit_expressions(clause, |e: &Expr| match e {
        Expr::Identifier(ident) if ident.value == "WINDOWSTART" || ident.value == "WINDOWEND" => {
            ControlFlow::Break(ident.value.clone())
        }
        _ => ControlFlow::Continue(()),
    }) {
        ControlFlow::Break(column) => Some(column),
        ControlFlow::Continue(()) => None,
    };
    if let Some(column) = select.selection.as_ref().and_then(bound) {
        return Err(PlanError::user(format!("Error in WHERE expression: Unknown column {column}.")));
    }
    let mut clauses: Vec<Expr> = select.having.iter().cloned().collect();
    if let GroupByExpr::Expressions(exprs, _) = &select.group_by {
        clauses.extend(exprs.iter().cloned());
    }
    // The arguments of aggregate calls in the projection.
    for item in &select.projection {
        if let SelectItem::ExprWithAlias { expr, .. } | SelectItem::UnnamedExpr(expr) = item {
            let _ = visit_expressions(expr, |e: &Expr| {
                if let Expr::Function(f) = e
                    && aggregates.contains_key(&f.name.to_string().to_lowercase())
                {
                    clauses.push(e.clone());
                }
                ControlFlow::<()>::Continue(())
            });
        }
    }
    if let Some(column) = clauses.iter().find_map(bound) {
        return Err(PlanError::user(format!(
            "Window bounds column {column} can only be used in the SELECT clause of windowed aggregations and can \
             not be passed to aggregate functions.\nSee https://github.com/confluentinc/ksql/issues/4397"
        )));
    }
    Ok(())
}

/// A windowed aggregation also groups by the window: `WINDOWSTART, WINDOWEND` join its
/// GROUP BY.
const WINDOW_WITHOUT_GROUP_BY: &str =
    "Non-aggregate SELECT expression(s) not part of GROUP BY: a windowed query needs a GROUP BY clause";

/// A `GROUP BY` ksqlDB refuses: with an aggregate function in it, an expression twice, or
/// no aggregate function to compute.
fn check_group_by(
    query: &datafusion::sql::sqlparser::ast::Query,
    written: &[Expr],
    state: &datafusion::execution::SessionState,
    source_name: &str,
) -> Result<(), PlanError> {
    use datafusion::sql::sqlparser::ast::{GroupByExpr, visit_expressions};
    let SetExpr::Select(select) = query.body.as_ref() else { return Ok(()) };
    if !matches!(&select.group_by, GroupByExpr::Expressions(exprs, _) if !exprs.is_empty()) {
        return Ok(());
    }
    let aggregates = state.aggregate_functions();
    let GroupByExpr::Expressions(grouping, _) = &select.group_by else { return Ok(()) };
    for (i, expr) in grouping.iter().enumerate() {
        let mut found = None;
        let _ = visit_expressions(expr, |e: &Expr| {
            if let Expr::Function(f) = e
                && aggregates.contains_key(&f.name.to_string().to_lowercase())
            {
                found = Some(f.name.to_string().to_uppercase());
                return std::ops::ControlFlow::Break(());
            }
            std::ops::ControlFlow::Continue(())
        });
        if let Some(name) = found {
            return Err(PlanError::user(format!(
                "GROUP BY does not support aggregate functions: {name} is an aggregate function."
            )));
        }
        if grouping[..i].contains(expr) {
            let shown = match expr {
                Expr::Identifier(ident) => format!("{source_name}.{}", ident.value),
                other => other.to_string(),
            };
            return Err(PlanError::user(format!("Duplicate GROUP BY expression: {shown}")));
        }
    }
    let calls_aggregate = |expr: &Expr| {
        visit_expressions(expr, |e: &Expr| match e {
            // An unknown function is left for planning to say so.
            Expr::Function(f)
                if aggregates.contains_key(&f.name.to_string().to_lowercase())
                    || !state.scalar_functions().contains_key(&f.name.to_string().to_lowercase()) =>
            {
                std::ops::ControlFlow::Break(())
            }
            _ => std::ops::ControlFlow::Continue(()),
        })
        .is_break()
    };
    let projected = select.projection.iter().any(|item| match item {
        SelectItem::ExprWithAlias { expr, .. } | SelectItem::UnnamedExpr(expr) => calls_aggregate(expr),
        _ => false,
    });
    if !projected && !select.having.as_ref().is_some_and(calls_aggregate) {
        return Err(PlanError::user("GROUP BY requires aggregate functions in either the SELECT or HAVING clause."));
    }
    let is_aggregate =
        |f: &datafusion::sql::sqlparser::ast::Function| aggregates.contains_key(&f.name.to_string().to_lowercase());
    let is_known = |f: &datafusion::sql::sqlparser::ast::Function| {
        let name = f.name.to_string().to_lowercase();
        aggregates.contains_key(&name)
            || state.scalar_functions().contains_key(&name)
            || state.higher_order_functions().contains_key(&name)
            || ["struct", "map", "substring", "count_distinct", "explode", "cube_explode", "ksql_cast"]
                .contains(&name.as_str())
    };
    check_grouped_columns(select, written, grouping, &is_aggregate, &is_known)
}

/// ksqlDB's rule for what a grouped query may read outside its aggregates: a SELECT item is
/// a GROUP BY expression, or reads (outside aggregate calls and GROUP BY expressions) only
/// columns that are GROUP BY expressions; so does HAVING. The refusal lists the items as
/// they were written (`written`, one per projected column), not as Eddy rewrote them.
fn check_grouped_columns(
    select: &datafusion::sql::sqlparser::ast::Select,
    written: &[Expr],
    grouping: &[Expr],
    is_aggregate: &dyn Fn(&datafusion::sql::sqlparser::ast::Function) -> bool,
    is_known: &dyn Fn(&datafusion::sql::sqlparser::ast::Function) -> bool,
) -> Result<(), PlanError> {
    // Unknown functions are for planning to name first.
    let mut unknown = false;
    for expr in select.projection.iter().filter_map(|item| match item {
        SelectItem::ExprWithAlias { expr, .. } | SelectItem::UnnamedExpr(expr) => Some(expr),
        _ => None,
    }) {
        let _ = datafusion::sql::sqlparser::ast::visit_expressions(expr, |e: &Expr| {
            if let Expr::Function(f) = e
                && !is_known(f)
            {
                unknown = true;
            }
            std::ops::ControlFlow::<()>::Continue(())
        });
    }
    if unknown {
        return Ok(());
    }
    // Expressions compare as text, without qualifiers, quotes or outer parentheses.
    let key = |mut e: &Expr| {
        while let Expr::Nested(inner) = e {
            e = inner;
        }
        match e {
            Expr::Identifier(ident) => ident.value.to_uppercase(),
            Expr::CompoundIdentifier(parts) => parts.last().map(|p| p.value.to_uppercase()).unwrap_or_default(),
            other => unqualified(other).to_string().replace('`', "").to_uppercase(),
        }
    };
    // A window bound selected under its own name is refused later, as ksqlDB refuses it first.
    let bare_window_bound = select.projection.iter().any(|item| {
        let bound = |e: &Expr| ["WINDOWSTART", "WINDOWEND"].contains(&key(e).as_str());
        match item {
            SelectItem::UnnamedExpr(e) => bound(e),
            SelectItem::ExprWithAlias { expr, alias } => bound(expr) && alias.value.eq_ignore_ascii_case(&key(expr)),
            _ => false,
        }
    });
    if bare_window_bound {
        return Ok(());
    }
    let mut grouped: Vec<String> = grouping.iter().map(key).collect();
    grouped.extend(["WINDOWSTART".to_string(), "WINDOWEND".to_string()]);
    let free_columns = |expr: &Expr| {
        let mut columns = Vec::new();
        free_columns_of(expr, &grouped, &key, is_aggregate, &mut columns);
        columns
    };
    let unmatched: Vec<String> = select
        .projection
        .iter()
        .enumerate()
        .filter_map(|(i, item)| match item {
            SelectItem::ExprWithAlias { expr, .. } | SelectItem::UnnamedExpr(expr) => Some((i, expr)),
            _ => None,
        })
        .filter(|(_, expr)| !grouped.contains(&key(expr)) && !free_columns(expr).is_empty())
        .map(|(i, expr)| ksql_expression_text(written.get(i).unwrap_or(expr)))
        .collect();
    if !unmatched.is_empty() {
        return Err(PlanError::user(format!(
            "Non-aggregate SELECT expression(s) not part of GROUP BY: {}\nEither add the column(s) to the GROUP BY \
             or remove them from the SELECT.",
            unmatched.join(", ")
        )));
    }
    if let Some(having) = &select.having {
        let columns: Vec<String> = free_columns(having).iter().map(ksql_expression_text).collect();
        if !columns.is_empty() {
            return Err(PlanError::user(format!(
                "Non-aggregate HAVING expression not part of GROUP BY: {}\nConsider switching the HAVING clause to \
                 a WHERE clause before the GROUP BY.",
                columns.join(", ")
            )));
        }
    }
    Ok(())
}

/// The columns `expr` reads outside aggregate calls and outside its parts that are GROUP BY
/// expressions, and that are not GROUP BY expressions themselves.
fn free_columns_of(
    expr: &Expr,
    grouped: &[String],
    key: &dyn Fn(&Expr) -> String,
    is_aggregate: &dyn Fn(&datafusion::sql::sqlparser::ast::Function) -> bool,
    columns: &mut Vec<Expr>,
) {
    use datafusion::sql::sqlparser::ast::{Visit, Visitor};
    struct Free<'a> {
        grouped: &'a [String],
        key: &'a dyn Fn(&Expr) -> String,
        is_aggregate: &'a dyn Fn(&datafusion::sql::sqlparser::ast::Function) -> bool,
        /// Set while inside an aggregate call or a GROUP BY expression: the expression there.
        inside: Option<*const Expr>,
        columns: &'a mut Vec<Expr>,
    }
    impl Visitor for Free<'_> {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &Expr) -> std::ops::ControlFlow<()> {
            if self.inside.is_some() {
                return std::ops::ControlFlow::Continue(());
            }
            let enclosing = match expr {
                Expr::Function(f) => (self.is_aggregate)(f),
                _ => false,
            } || self.grouped.contains(&(self.key)(expr));
            if enclosing {
                self.inside = Some(std::ptr::from_ref(expr));
            } else if matches!(expr, Expr::Identifier(_) | Expr::CompoundIdentifier(_))
                && !self.columns.iter().any(|c| (self.key)(c) == (self.key)(expr))
            {
                self.columns.push(expr.clone());
            }
            std::ops::ControlFlow::Continue(())
        }
        fn post_visit_expr(&mut self, expr: &Expr) -> std::ops::ControlFlow<()> {
            if self.inside == Some(std::ptr::from_ref(expr)) {
                self.inside = None;
            }
            std::ops::ControlFlow::Continue(())
        }
    }
    let mut free = Free { grouped, key, is_aggregate, inside: None, columns };
    let _ = expr.visit(&mut free);
}

/// An expression as ksqlDB prints it in messages: binary operations in parentheses, function
/// names and columns in capitals, no source qualifiers.
pub(crate) fn ksql_expression_text(expr: &Expr) -> String {
    match expr {
        Expr::BinaryOp { left, op, right } => {
            format!("({} {op} {})", ksql_expression_text(left), ksql_expression_text(right))
        }
        Expr::Nested(inner) => ksql_expression_text(inner),
        Expr::Value(v) if v.value == datafusion::sql::sqlparser::ast::Value::Null => "null".into(),
        Expr::Substring { expr, substring_from, substring_for, .. } => {
            let args: Vec<String> = std::iter::once(expr)
                .chain(substring_from)
                .chain(substring_for)
                .map(|e| ksql_expression_text(e))
                .collect();
            format!("SUBSTRING({})", args.join(", "))
        }
        Expr::Identifier(ident) => ident.value.to_uppercase(),
        Expr::CompoundIdentifier(parts) => parts.last().map(|p| p.value.to_uppercase()).unwrap_or_default(),
        Expr::Function(f) => {
            let args: Vec<String> = match &f.args {
                datafusion::sql::sqlparser::ast::FunctionArguments::List(list) => list
                    .args
                    .iter()
                    .map(|a| match a {
                        datafusion::sql::sqlparser::ast::FunctionArg::Unnamed(
                            datafusion::sql::sqlparser::ast::FunctionArgExpr::Expr(e),
                        ) => ksql_expression_text(e),
                        other => other.to_string(),
                    })
                    .collect(),
                _ => Vec::new(),
            };
            format!("{}({})", f.name.to_string().to_uppercase(), args.join(", "))
        }
        other => super::rewrite::ksql_text(&unqualified(other)),
    }
}

fn group_by_windows(query: &mut datafusion::sql::sqlparser::ast::Query) -> Result<(), PlanError> {
    use datafusion::sql::sqlparser::ast::GroupByExpr;
    let SetExpr::Select(select) = query.body.as_mut() else { return Ok(()) };
    let GroupByExpr::Expressions(exprs, _) = &mut select.group_by else {
        return Err(PlanError::user(WINDOW_WITHOUT_GROUP_BY));
    };
    if exprs.is_empty() {
        return Err(PlanError::user(WINDOW_WITHOUT_GROUP_BY));
    }
    for column in ["WINDOWSTART", "WINDOWEND"] {
        exprs.push(Expr::Identifier(Ident::with_quote('`', column)));
    }
    Ok(())
}

/// A planning failure said as ksqlDB says it: which clause failed ("Invalid Predicate" for
/// the WHERE clause, "Invalid Select" for a projected expression) and why.
fn locate_failure(
    query: &datafusion::sql::sqlparser::ast::Query,
    typer: &super::rewrite::Typer<'_>,
    error: datafusion::error::DataFusionError,
) -> PlanError {
    tracing::debug!(%error, "DataFusion could not plan the query");
    let message = error.to_string();
    if message.contains("must be in GROUP BY or an aggregate function") {
        // `… column "TEST.D1" must appear in the GROUP BY …`: ksqlDB names the column.
        let column = message.split("column \"").nth(1).and_then(|rest| rest.split('"').next()).unwrap_or_default();
        let column = column.rsplit('.').next().unwrap_or(column);
        return PlanError::user(format!("Non-aggregate SELECT expression(s) not part of GROUP BY: {column}"));
    }
    if let Some(rest) = message.split("Invalid function '").nth(1) {
        let name = rest.split('\'').next().unwrap_or_default().to_uppercase();
        return PlanError::user(format!("Can't find any functions with the name '{name}'"));
    }
    if let SetExpr::Select(select) = query.body.as_ref() {
        if let Some(Err(why)) = select.selection.as_ref().map(|s| typer.check(s)) {
            if let Some(column) = unknown_column(&why) {
                return PlanError::user(format!("WHERE column '{column}' cannot be resolved."));
            }
            return PlanError::user(format!("Invalid Predicate: {why}"));
        }
        for item in &select.projection {
            if let SelectItem::ExprWithAlias { expr, .. } | SelectItem::UnnamedExpr(expr) = item
                && let Err(why) = typer.check(expr)
            {
                if let Some(column) = unknown_column(&why) {
                    if column == "WINDOWSTART" || column == "WINDOWEND" {
                        return PlanError::user(format!(
                            "Reserved column name in select: `{column}`. Please remove or alias the column."
                        ));
                    }
                    return PlanError::user(format!("SELECT column '{column}' cannot be resolved."));
                }
                return PlanError::user(format!("Invalid Select: {why}"));
            }
        }
    }
    PlanError::from(error)
}

/// The column a typing failure (`why`, DataFusion's "No field named …") names, so that an
/// unknown column is said as ksqlDB says it.
pub(crate) fn unknown_column(why: &str) -> Option<&str> {
    let rest = why.split("No field named ").nth(1)?;
    Some(rest.split(['.', ' ', '\n']).next()?.trim_matches('"'))
}

/// The rewrites that need the types of sub-expressions, on the WHERE clause and on each
/// projected expression.
pub(crate) fn rewrite_with_types(
    query: &mut datafusion::sql::sqlparser::ast::Query,
    typer: &super::rewrite::Typer<'_>,
) -> Result<(), PlanError> {
    use super::rewrite::rewrite_typed;
    let SetExpr::Select(select) = query.body.as_mut() else { return Ok(()) };
    if let Some(selection) = select.selection.as_mut() {
        let written = selection.clone();
        rewrite_typed(selection, typer, "Invalid Predicate").map_err(|e| in_filter("WHERE", &written, e))?;
    }
    for item in select.projection.iter_mut() {
        if let SelectItem::ExprWithAlias { expr, .. } | SelectItem::UnnamedExpr(expr) = item {
            rewrite_typed(expr, typer, "Invalid Select")?;
        }
    }
    // Grouping expressions get the same rewrites, so that they still match the projection's.
    if let datafusion::sql::sqlparser::ast::GroupByExpr::Expressions(exprs, _) = &mut select.group_by {
        for expr in exprs {
            rewrite_typed(expr, typer, "Invalid Group By")?;
        }
    }
    if let Some(having) = select.having.as_mut() {
        let written = having.clone();
        rewrite_typed(having, typer, "Invalid Having").map_err(|e| in_filter("HAVING", &written, e))?;
    }
    Ok(())
}

/// A comparison refused in a WHERE or HAVING clause, said as ksqlDB says it: which clause,
/// why, and the clause as ksqlDB prints it.
fn in_filter(clause: &str, written: &Expr, error: PlanError) -> PlanError {
    if !["Cannot compare ", "Comparison with NULL "].iter().any(|p| error.message.starts_with(p)) {
        return error;
    }
    PlanError::user(format!(
        "Error in {clause} expression: {}\nStatement: {}",
        error.message,
        ksql_expression_text(written)
    ))
}

/// Names every projected column as ksqlDB does and makes the name the item's alias: a
/// column keeps its name, `s->f` is named `F` (`F_1`, `F_2`, … when taken), and any other
/// expression without an alias is `KSQL_COL_n`, counting only such generated names and
/// skipping names in use. Returns each item's expression, qualifiers dropped, and names.
fn name_projection(
    query: &mut datafusion::sql::sqlparser::ast::Query,
    input_names: &[String],
    typer: &super::rewrite::Typer<'_>,
) -> Result<(Vec<Expr>, Vec<String>), PlanError> {
    let SetExpr::Select(select) = query.body.as_mut() else {
        return Err(PlanError::user("only SELECT … FROM a source is supported"));
    };
    let mut taken: Vec<String> = Vec::with_capacity(select.projection.len());
    let mut generated = 0usize;
    let mut items = Vec::with_capacity(select.projection.len());
    for item in select.projection.iter_mut() {
        let (expr, name) = match std::mem::replace(item, SelectItem::Wildcard(Default::default())) {
            SelectItem::ExprWithAlias { expr, alias } => (expr, alias.value),
            SelectItem::UnnamedExpr(expr) => {
                let name = match &expr {
                    Expr::Identifier(ident) => ident.value.clone(),
                    Expr::CompoundIdentifier(parts) => parts.last().map(|p| p.value.clone()).unwrap_or_default(),
                    expr if deref_field(expr).is_some() => {
                        let field = deref_field(expr).map(|f| f.value.clone()).unwrap_or_default();
                        let mut name = field.clone();
                        let mut n = 0;
                        while taken.contains(&name) || input_names.contains(&name) {
                            n += 1;
                            name = format!("{field}_{n}");
                        }
                        name
                    }
                    _ => loop {
                        let name = format!("KSQL_COL_{generated}");
                        generated += 1;
                        if !taken.contains(&name) && !input_names.contains(&name) {
                            break name;
                        }
                    },
                };
                (expr, name)
            }
            SelectItem::QualifiedWildcard(kind, _) => {
                let qualifier = kind.to_string().trim_end_matches(".*").to_uppercase();
                return Err(PlanError::user(format!("'{qualifier}' is not a valid stream/table name or alias.")));
            }
            other => return Err(PlanError::user(format!("'{other}' is not supported in a projection"))),
        };
        if taken.contains(&name) {
            // ksqlDB names the second column and its type.
            let typed = typer.check_as_ksql(&expr).map(|t| format!(" {}", crate::sql::types::ksql_type_name(&t)));
            return Err(PlanError::user(format!(
                "Duplicate value columns found in schema: `{name}`{}",
                typed.unwrap_or_default()
            )));
        }
        taken.push(name.clone());
        items.push(unqualified(&expr));
        *item = SelectItem::ExprWithAlias { expr, alias: Ident::with_quote('`', name) };
    }
    Ok((items, taken))
}

/// The field of `s->field`.
fn deref_field(expr: &Expr) -> Option<&Ident> {
    match expr {
        Expr::BinaryOp { op: datafusion::sql::sqlparser::ast::BinaryOperator::Arrow, right, .. } => {
            match right.as_ref() {
                Expr::Identifier(field) => Some(field),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The parts of a `Projection [→ Filter (HAVING)] → Aggregate [→ Filter (WHERE)] → TableScan`
/// plan: projection, HAVING, the aggregate node, WHERE.
struct AggregateParts<'a> {
    projection: Vec<LogicalExpr>,
    having: Option<LogicalExpr>,
    aggregate: &'a datafusion::logical_expr::Aggregate,
    filter: Option<LogicalExpr>,
}

fn aggregate_parts(plan: &LogicalPlan) -> Option<AggregateParts<'_>> {
    let LogicalPlan::Projection(projection) = plan else { return None };
    let mut input = projection.input.as_ref();
    let mut having = None;
    if let LogicalPlan::Filter(filter) = input {
        having = Some(filter.predicate.clone());
        input = filter.input.as_ref();
    }
    let LogicalPlan::Aggregate(aggregate) = input else { return None };
    let mut below = aggregate.input.as_ref();
    let mut filter = None;
    loop {
        match below {
            LogicalPlan::Filter(f) if filter.is_none() => {
                filter = Some(f.predicate.clone());
                below = f.input.as_ref();
            }
            LogicalPlan::SubqueryAlias(alias) => below = alias.input.as_ref(),
            LogicalPlan::TableScan(_) => break,
            _ => return None,
        }
    }
    Some(AggregateParts { projection: projection.expr.clone(), having, aggregate, filter })
}

/// The parts of a `Projection → Window+ [→ Filter (WHERE)] → TableScan` plan: the
/// projection, the window functions (innermost node's first, the order of their columns in
/// the top node's rows), the top node's schema, and WHERE.
struct WindowParts<'a> {
    projection: Vec<LogicalExpr>,
    functions: Vec<LogicalExpr>,
    schema: &'a datafusion::common::DFSchema,
    filter: Option<LogicalExpr>,
}

fn window_parts(plan: &LogicalPlan) -> Option<WindowParts<'_>> {
    let LogicalPlan::Projection(projection) = plan else { return None };
    let LogicalPlan::Window(top) = projection.input.as_ref() else { return None };
    let mut nodes = vec![top];
    let mut below = top.input.as_ref();
    while let LogicalPlan::Window(node) = below {
        nodes.push(node);
        below = node.input.as_ref();
    }
    let mut filter = None;
    loop {
        match below {
            LogicalPlan::Filter(f) if filter.is_none() => {
                filter = Some(f.predicate.clone());
                below = f.input.as_ref();
            }
            LogicalPlan::SubqueryAlias(alias) => below = alias.input.as_ref(),
            LogicalPlan::TableScan(_) => break,
            _ => return None,
        }
    }
    let functions = nodes.iter().rev().flat_map(|n| n.window_expr.iter().cloned()).collect();
    Some(WindowParts { projection: projection.expr.clone(), functions, schema: top.schema.as_ref(), filter })
}

/// `RANGE BETWEEN INTERVAL '10' SECONDS PRECEDING …` over `ROWTIME` (milliseconds): the
/// interval becomes its milliseconds, which DataFusion frames a BIGINT order by.
fn frames_in_milliseconds(query: &mut datafusion::sql::sqlparser::ast::Query) -> Result<(), PlanError> {
    use datafusion::sql::sqlparser::ast::{WindowFrameBound, WindowType};
    let outcome = visit_expressions_mut(query, |e: &mut Expr| {
        if let Expr::Function(f) = e
            && let Some(WindowType::WindowSpec(spec)) = &mut f.over
            && let Some(frame) = &mut spec.window_frame
        {
            for bound in [Some(&mut frame.start_bound), frame.end_bound.as_mut()].into_iter().flatten() {
                let (WindowFrameBound::Preceding(Some(value)) | WindowFrameBound::Following(Some(value))) = bound
                else {
                    continue;
                };
                // A count is a bare number to DataFusion (literal typing made it a cast).
                if let Expr::Cast { expr: inner, .. } = value.as_ref()
                    && matches!(inner.as_ref(), Expr::Value(_))
                {
                    *value = inner.clone();
                }
                if let Expr::Interval(interval) = value.as_ref() {
                    match crate::engine::window::interval_ms(interval) {
                        Ok(ms) => {
                            **value = Expr::value(datafusion::sql::sqlparser::ast::Value::Number(ms.to_string(), false))
                        }
                        Err(e) => return ControlFlow::Break(e),
                    }
                }
            }
        }
        ControlFlow::Continue(())
    });
    match outcome {
        ControlFlow::Break(e) => Err(e),
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// `e` with columns qualified by the source's alias unqualified where `input` has them by
/// name, so that they resolve against the source's schema.
fn unaliased(e: LogicalExpr, input: &datafusion::common::DFSchema) -> Result<LogicalExpr, PlanError> {
    use datafusion::common::tree_node::{Transformed, TreeNode};
    e.transform(|e| match e {
        LogicalExpr::Column(c) if c.relation.is_some() && input.field_with_unqualified_name(&c.name).is_ok() => {
            Ok(Transformed::yes(LogicalExpr::Column(datafusion::common::Column::new_unqualified(c.name))))
        }
        other => Ok(Transformed::no(other)),
    })
    .map(|t| t.data)
    .map_err(PlanError::from)
}

/// The physical parts of a query with `OVER` windows.
fn plan_over(
    parts: WindowParts<'_>,
    state: &datafusion::execution::SessionState,
    input: &datafusion::common::DFSchema,
    input_schema: &SchemaRef,
    names: &[String],
    row_time_index: usize,
) -> Result<crate::engine::over::OverPlan, PlanError> {
    use datafusion::logical_expr::expr::{AggregateFunction, WindowFunction, WindowFunctionParams};
    use datafusion::logical_expr::{WindowFrameBound, WindowFrameUnits, WindowFunctionDefinition};
    let unalias = |e: LogicalExpr| unaliased(e, input);
    let on_input = |e: LogicalExpr| physical_expr(state, unalias(e)?, input);
    let filter = parts.filter.map(on_input).transpose()?;
    let mut windows = Vec::with_capacity(parts.functions.len());
    for function in parts.functions {
        let function = match function {
            LogicalExpr::Alias(alias) => *alias.expr,
            other => other,
        };
        let LogicalExpr::WindowFunction(window) = function else {
            return Err(PlanError::user(format!("unexpected window expression {function}")));
        };
        let WindowFunction { fun, params } = *window;
        let WindowFunctionParams { args, partition_by, order_by, window_frame, filter, distinct, .. } = params;
        let WindowFunctionDefinition::AggregateUDF(udaf) = fun else {
            return Err(PlanError::user(format!(
                "{} is not supported with OVER: only aggregate functions (AVG, SUM, COUNT, MIN, MAX, …) are",
                fun.name().to_uppercase()
            )));
        };
        let orders_by_rowtime = |sort: &datafusion::logical_expr::SortExpr| {
            matches!(&sort.expr, LogicalExpr::Column(c) if c.name == "ROWTIME") && sort.asc
        };
        if !order_by.iter().all(orders_by_rowtime) || order_by.len() > 1 {
            return Err(PlanError::user("OVER windows are ordered by ROWTIME (ORDER BY ROWTIME), in arrival order"));
        }
        if !matches!(window_frame.end_bound, WindowFrameBound::CurrentRow) {
            return Err(PlanError::user("An OVER frame ends at the CURRENT ROW: a stream has no rows after it yet"));
        }
        let count = |value: &datafusion::common::ScalarValue| -> Result<i64, PlanError> {
            match value.cast_to(&datafusion::arrow::datatypes::DataType::Int64)? {
                datafusion::common::ScalarValue::Int64(Some(n)) if n >= 0 => Ok(n),
                other => {
                    Err(PlanError::user(format!("an OVER frame bound must be a count or an interval, not {other}")))
                }
            }
        };
        let frame = match (&window_frame.units, &window_frame.start_bound) {
            (_, WindowFrameBound::Preceding(v)) if v.is_null() => crate::engine::over::Frame::Unbounded,
            (WindowFrameUnits::Rows, WindowFrameBound::Preceding(v)) => {
                crate::engine::over::Frame::Rows(count(v)? as usize)
            }
            (WindowFrameUnits::Rows, WindowFrameBound::CurrentRow) => crate::engine::over::Frame::Rows(0),
            (WindowFrameUnits::Range, WindowFrameBound::Preceding(v)) => crate::engine::over::Frame::Range(count(v)?),
            (WindowFrameUnits::Range, WindowFrameBound::CurrentRow) => crate::engine::over::Frame::Range(0),
            _ => {
                return Err(PlanError::user(
                    "An OVER frame is ROWS BETWEEN n PRECEDING AND CURRENT ROW or RANGE BETWEEN INTERVAL … PRECEDING \
                     AND CURRENT ROW",
                ));
            }
        };
        // The aggregate function itself, lowered as an aggregation's are.
        let aggregate =
            LogicalExpr::AggregateFunction(AggregateFunction::new_udf(udaf, args, distinct, filter, vec![], None));
        let aggregate = unalias(aggregate)?;
        let planning = datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext::default();
        let lowered = guarded(|| {
            datafusion::physical_expr::aggregate::LoweredAggregateBuilder::new(
                &aggregate,
                input,
                input_schema.as_ref(),
                state.execution_props(),
                &planning,
            )
            .build()
        })??;
        let mut partition_by = partition_by.into_iter().map(on_input).collect::<Result<Vec<_>, _>>()?;
        if partition_by.is_empty() {
            partition_by.push(datafusion::physical_expr::expressions::lit(true));
        }
        windows.push(crate::engine::over::OverWindow { function: lowered.aggregate, partition_by, frame });
    }
    let windowed_schema: SchemaRef = Arc::new(parts.schema.as_arrow().clone());
    if parts.projection.len() != names.len() {
        return Err(PlanError::user(format!("{} columns planned for {} named", parts.projection.len(), names.len())));
    }
    let mut projection = Vec::with_capacity(names.len());
    let mut fields = Vec::with_capacity(names.len());
    for (expr, name) in parts.projection.into_iter().zip(names) {
        let expr = physical_expr(state, expr, parts.schema)?;
        fields.push(Field::new(name, expr.data_type(&windowed_schema)?, true));
        projection.push(expr);
    }
    Ok(crate::engine::over::OverPlan {
        filter,
        windows,
        windowed_schema,
        projection,
        output: Arc::new(Schema::new(fields)),
        row_time_index,
    })
}

/// The physical parts of an aggregation: WHERE and the grouping and aggregate functions on
/// the input; HAVING and the projection on the aggregation's rows.
fn plan_aggregate(
    parts: AggregateParts<'_>,
    state: &datafusion::execution::SessionState,
    input: &datafusion::common::DFSchema,
    input_schema: &SchemaRef,
    names: &[String],
    row_time_index: usize,
) -> Result<crate::engine::aggregate::AggregatePlan, PlanError> {
    let unalias = |e: LogicalExpr| unaliased(e, input);
    let on_input = |e: LogicalExpr| physical_expr(state, unalias(e)?, input);
    let filter = parts.filter.map(on_input).transpose()?;
    let group_by = parts.aggregate.group_expr.iter().cloned().map(on_input).collect::<Result<Vec<_>, _>>()?;
    let aggregates = parts
        .aggregate
        .aggr_expr
        .iter()
        .map(|e| {
            let e = unalias(e.clone())?;
            let planning = datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext::default();
            let lowered = guarded(|| {
                datafusion::physical_expr::aggregate::LoweredAggregateBuilder::new(
                    &e,
                    input,
                    input_schema.as_ref(),
                    state.execution_props(),
                    &planning,
                )
                .build()
            })??;
            Ok(lowered.aggregate)
        })
        .collect::<Result<Vec<_>, PlanError>>()?;
    let aggregate_dfschema = parts.aggregate.schema.as_ref();
    let aggregate_schema: SchemaRef = Arc::new(aggregate_dfschema.as_arrow().clone());
    let on_groups = |e: LogicalExpr| physical_expr(state, e, aggregate_dfschema);
    let having = parts.having.map(on_groups).transpose()?;
    if parts.projection.len() != names.len() {
        return Err(PlanError::user(format!("{} columns planned for {} named", parts.projection.len(), names.len())));
    }
    let mut projection = Vec::with_capacity(names.len());
    let mut fields = Vec::with_capacity(names.len());
    for (expr, name) in parts.projection.into_iter().zip(names) {
        let expr = on_groups(expr)?;
        fields.push(Field::new(name, expr.data_type(&aggregate_schema)?, true));
        projection.push(expr);
    }
    Ok(crate::engine::aggregate::AggregatePlan {
        windows: None,
        emit_final: false,
        table_keys: None,
        filter,
        group_by,
        aggregates,
        aggregate_schema,
        having,
        projection,
        output: Arc::new(Schema::new(fields)),
        row_time_index,
    })
}

/// The projection expressions and the filter predicate of a
/// `Projection [→ Filter] → TableScan` plan (aliases of the source allowed between).
fn stateless_parts(plan: &LogicalPlan) -> Result<(Vec<LogicalExpr>, Option<LogicalExpr>), PlanError> {
    let unsupported = |what: &str| PlanError::user(format!("{what} is not supported yet in queries"));
    let LogicalPlan::Projection(projection) = plan else {
        return Err(unsupported(plan.display().to_string().split(':').next().unwrap_or("this query")));
    };
    let mut input = projection.input.as_ref();
    let mut predicate = None;
    loop {
        match input {
            LogicalPlan::Filter(filter) if predicate.is_none() => {
                predicate = Some(filter.predicate.clone());
                input = filter.input.as_ref();
            }
            LogicalPlan::SubqueryAlias(alias) => input = alias.input.as_ref(),
            LogicalPlan::TableScan(_) => break,
            LogicalPlan::Aggregate(_) => return Err(unsupported("aggregation (GROUP BY)")),
            LogicalPlan::Join(_) => return Err(unsupported("a join")),
            LogicalPlan::Window(_) => return Err(unsupported("a window function")),
            other => return Err(unsupported(other.display().to_string().split(':').next().unwrap_or("this query"))),
        }
    }
    // Columns are qualified by the alias when there is one; strip it so they resolve
    // against the source's schema.
    let unalias = |e: LogicalExpr| -> Result<LogicalExpr, PlanError> {
        use datafusion::common::tree_node::{Transformed, TreeNode};
        e.transform(|e| match e {
            LogicalExpr::Column(c) => {
                Ok(Transformed::yes(LogicalExpr::Column(datafusion::common::Column::new_unqualified(c.name))))
            }
            other => Ok(Transformed::no(other)),
        })
        .map(|t| t.data)
        .map_err(PlanError::from)
    };
    let exprs = projection.expr.iter().cloned().map(unalias).collect::<Result<Vec<_>, _>>()?;
    Ok((exprs, predicate.map(unalias).transpose()?))
}

/// ksqlDB's `s->f` (a struct's field) becomes DataFusion's `get_field(s, 'F')`, the field
/// named as ksqlDB resolves it (upper-cased unless quoted; the identifiers are normalised
/// already). `s->*` is refused for now.
pub(crate) fn rewrite_struct_access<V: datafusion::sql::sqlparser::ast::VisitMut>(
    query: &mut V,
) -> Result<(), PlanError> {
    use datafusion::sql::sqlparser::ast::{BinaryOperator, Value};
    let outcome = visit_expressions_mut(query, |expr: &mut Expr| {
        let Expr::BinaryOp { op: BinaryOperator::Arrow, right, .. } = expr else {
            return ControlFlow::Continue(());
        };
        let field = match right.as_ref() {
            Expr::Identifier(ident) => ident.value.clone(),
            _ => return ControlFlow::Break(PlanError::user("'->*' (all fields of a struct) is not supported yet")),
        };
        let Expr::BinaryOp { left, .. } = std::mem::replace(expr, Expr::value(Value::Null)) else {
            return ControlFlow::Continue(());
        };
        *expr = super::rewrite::call("get_field", vec![*left, Expr::value(Value::SingleQuotedString(field))]);
        ControlFlow::Continue(())
    });
    match outcome {
        ControlFlow::Break(error) => Err(error),
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// Replaces `*` in the projection with the given columns (quoted, so kept as they are).
fn expand_star(query: &mut datafusion::sql::sqlparser::ast::Query, columns: &[String]) {
    if let SetExpr::Select(select) = query.body.as_mut() {
        let items = std::mem::take(&mut select.projection);
        let star =
            || columns.iter().map(|c| SelectItem::UnnamedExpr(Expr::Identifier(Ident::with_quote('`', c.clone()))));
        for item in items {
            match item {
                SelectItem::Wildcard(_) => select.projection.extend(star()),
                // `s.*` where `s` names the source (or its alias) is `*`; anything else is
                // left for the planner to refuse.
                SelectItem::QualifiedWildcard(
                    datafusion::sql::sqlparser::ast::SelectItemQualifiedWildcardKind::ObjectName(name),
                    _,
                ) if qualifies_source(&name, select.from.first()) => select.projection.extend(star()),
                other => select.projection.push(other),
            }
        }
    }
}

/// `s->*` in the projection: every field of the struct `s`, as `s->f` items.
pub(crate) fn expand_struct_stars(
    query: &mut datafusion::sql::sqlparser::ast::Query,
    typer: &super::rewrite::Typer<'_>,
) -> Result<(), PlanError> {
    use datafusion::sql::sqlparser::ast::BinaryOperator;
    let SetExpr::Select(select) = query.body.as_mut() else { return Ok(()) };
    let items = std::mem::take(&mut select.projection);
    for item in items {
        let SelectItem::UnnamedExpr(Expr::BinaryOp { left, op: BinaryOperator::Arrow, right }) = &item else {
            select.projection.push(item);
            continue;
        };
        if !matches!(right.as_ref(), Expr::Wildcard(_)) {
            select.projection.push(item);
            continue;
        }
        // The struct's type: typed with its own `->` accesses rewritten.
        let mut struct_expr = left.as_ref().clone();
        rewrite_struct_access(&mut struct_expr)?;
        let fields = match typer.check(&struct_expr) {
            Ok(datafusion::arrow::datatypes::DataType::Struct(fields)) => fields,
            Ok(other) => {
                return Err(PlanError::user(format!(
                    "'{left}->*' needs a STRUCT, not {}",
                    crate::sql::types::ksql_type_name(&other)
                )));
            }
            Err(why) => return Err(PlanError::user(why)),
        };
        for field in fields.iter() {
            select.projection.push(SelectItem::UnnamedExpr(Expr::BinaryOp {
                left: left.clone(),
                op: BinaryOperator::Arrow,
                right: Box::new(Expr::Identifier(Ident::with_quote('`', field.name().clone()))),
            }));
        }
    }
    Ok(())
}

/// Whether `name` is the source's name or alias.
fn qualifies_source(name: &ObjectName, from: Option<&datafusion::sql::sqlparser::ast::TableWithJoins>) -> bool {
    use datafusion::sql::sqlparser::ast::TableFactor;
    let Some(TableFactor::Table { name: table, alias, .. }) = from.map(|f| &f.relation) else { return false };
    let wanted = name.to_string();
    table.to_string().eq_ignore_ascii_case(&wanted)
        || alias.as_ref().is_some_and(|a| a.name.value.eq_ignore_ascii_case(&wanted))
}

/// ksqlDB's identifier rules on an expression: unquoted column names upper-cased, function
/// names lower-cased.
pub fn normalise_expression(expr: &mut Expr) {
    let _ = visit_expressions_mut(expr, |e: &mut Expr| {
        normalise_one(e);
        ControlFlow::<()>::Continue(())
    });
}

/// An identifier's name as ksqlDB resolves it: upper-cased unless quoted.
pub fn normalised_name(ident: &Ident) -> String {
    if ident.quote_style.is_none() { ident.value.to_uppercase() } else { ident.value.clone() }
}

fn normalise_one(expr: &mut Expr) {
    let upper = |ident: &mut Ident| {
        if ident.quote_style.is_none() {
            ident.value = ident.value.to_uppercase();
        }
    };
    match expr {
        Expr::Identifier(ident) => upper(ident),
        Expr::CompoundIdentifier(idents) => idents.iter_mut().for_each(upper),
        // A "function" without parentheses (`USER`, `i.user`) is a column: ksqlDB has no
        // niladic functions.
        Expr::Function(function)
            if matches!(function.args, datafusion::sql::sqlparser::ast::FunctionArguments::None)
                && function.over.is_none()
                && function.filter.is_none() =>
        {
            let mut idents: Vec<Ident> = function.name.0.iter().filter_map(|part| part.as_ident().cloned()).collect();
            idents.iter_mut().for_each(upper);
            *expr = match idents.len() {
                1 => Expr::Identifier(idents.remove(0)),
                _ => Expr::CompoundIdentifier(idents),
            };
        }
        Expr::Function(function) => {
            for part in function.name.0.iter_mut() {
                if let ObjectNamePart::Identifier(ident) = part
                    && ident.quote_style.is_none()
                {
                    ident.value = ident.value.to_lowercase();
                }
            }
        }
        // A lambda's parameters resolve as its body's identifiers do. They are quoted once
        // resolved: DataFusion lower-cases unquoted lambda parameters whatever its settings.
        Expr::Lambda(lambda) => {
            use datafusion::sql::sqlparser::ast::OneOrManyWithParens;
            let resolve = |ident: &mut Ident| {
                upper(ident);
                ident.quote_style = Some('`');
            };
            match &mut lambda.params {
                OneOrManyWithParens::One(p) => resolve(&mut p.name),
                OneOrManyWithParens::Many(ps) => ps.iter_mut().for_each(|p| resolve(&mut p.name)),
            }
        }
        _ => {}
    }
}

/// ksqlDB's identifier rules on a query: unquoted column and source names upper-cased,
/// aliases too; function names lower-cased (DataFusion's registry spelling).
pub(crate) fn normalise_identifiers(query: &mut datafusion::sql::sqlparser::ast::Query) {
    let upper = |ident: &mut Ident| {
        if ident.quote_style.is_none() {
            ident.value = ident.value.to_uppercase();
        }
    };
    let _ = visit_expressions_mut(query, |expr: &mut Expr| {
        normalise_one(expr);
        ControlFlow::<()>::Continue(())
    });
    let _ = visit_relations_mut(query, |name: &mut ObjectName| {
        for part in name.0.iter_mut() {
            if let ObjectNamePart::Identifier(ident) = part {
                upper(ident);
            }
        }
        ControlFlow::<()>::Continue(())
    });
    if let SetExpr::Select(select) = query.body.as_mut() {
        for item in select.projection.iter_mut() {
            if let SelectItem::ExprWithAlias { alias, .. } = item {
                upper(alias);
            }
        }
        for table in select.from.iter_mut() {
            let relations = std::iter::once(&mut table.relation).chain(table.joins.iter_mut().map(|j| &mut j.relation));
            for relation in relations {
                if let datafusion::sql::sqlparser::ast::TableFactor::Table { alias: Some(alias), .. } = relation {
                    upper(&mut alias.name);
                }
            }
        }
    }
}
impl StatelessPlan {
    /// Plans `query` over a stream whose rows have `row_schema`, registered as `source_name`.
    /// `SELECT *` means `star_columns` (the source's own columns: ksqlDB leaves the pseudo
    /// columns out of it). An aggregation is refused: see [`plan_query`].
    pub async fn try_new(
        query: &StreamingQuery,
        source_name: &str,
        row_schema: SchemaRef,
        star_columns: &[String],
    ) -> Result<Self, PlanError> {
        match plan_query(query, source_name, row_schema, star_columns).await? {
            QueryPlan::Stateless(plan) => Ok(plan),
            QueryPlan::Aggregate { .. } => {
                Err(PlanError::user("aggregation (GROUP BY) is not supported yet in push queries"))
            }
            QueryPlan::Over { .. } => Err(PlanError::user("OVER is not supported yet in push queries")),
        }
    }
}
