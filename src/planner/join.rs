//! Joins of two sources or more, planned with DataFusion: its `Join` node gives the
//! equi-join keys; the WHERE clause and the projection become physical expressions over the
//! joined rows, which [`crate::engine::join::Join`] runs.
//!
//! Names follow ksqlDB: `SELECT *` and `l.*` name columns `L_COL`; a qualified column
//! `l.col` is `L_COL`, a bare one `COL`; any other expression `KSQL_COL_n`.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::datasource::MemTable;
use datafusion::logical_expr::{Expr as LogicalExpr, JoinType, LogicalPlan};
use datafusion::sql::sqlparser::ast::{Expr, Ident, SelectItem, SetExpr, TableFactor};

use crate::engine::join::{JoinInput, JoinPlan, JoinShape, JoinStep, ROWKEY};
use crate::engine::plan::PlanError;
use crate::sql::ast::StreamingQuery;

/// The alias of a FROM or JOIN relation (its name when it has none), upper-cased.
pub(super) fn alias_of(relation: &TableFactor) -> Option<(String, String)> {
    let TableFactor::Table { name, alias, .. } = relation else { return None };
    let name = name.to_string().trim_matches('`').to_string();
    let alias = alias.as_ref().map_or_else(|| name.clone(), |a| a.name.value.clone());
    Some((name, alias))
}

fn qualified_schema(alias: &str, schema: &SchemaRef) -> Result<datafusion::common::DFSchema, PlanError> {
    Ok(datafusion::common::DFSchema::try_from_qualified_schema(
        datafusion::common::TableReference::bare(alias),
        schema,
    )?)
}

/// A join query's SELECT (identifiers normalised) and its one FROM … JOIN … relation.
pub(super) fn join_select(
    query: &StreamingQuery,
) -> Result<(datafusion::sql::sqlparser::ast::Query, datafusion::sql::sqlparser::ast::TableWithJoins), PlanError> {
    let mut standard = query.query.as_ref().clone();
    super::query::normalise_identifiers(&mut standard);
    let SetExpr::Select(select) = standard.body.as_ref() else {
        return Err(PlanError::user("only SELECT … FROM a JOIN b is supported"));
    };
    let [from] = select.from.as_slice() else {
        return Err(PlanError::user("a join reads its sources as FROM a JOIN b ON … [JOIN c ON …]"));
    };
    let from = from.clone();
    Ok((standard, from))
}

/// Plans a join query over `inputs` (in FROM order).
pub async fn plan_join(query: &StreamingQuery, inputs: &[JoinInput]) -> Result<JoinPlan, PlanError> {
    crate::error::fault_point("panic-in-planning");
    let (mut standard, from) = join_select(query)?;
    let SetExpr::Select(select) = standard.body.as_ref() else { unreachable!("join_select checked it") };
    let from = &from;
    let grouped =
        !matches!(&select.group_by, datafusion::sql::sqlparser::ast::GroupByExpr::Expressions(e, _) if e.is_empty());
    if grouped || select.having.is_some() || query.window.is_some() {
        return Err(PlanError::user(
            "GROUP BY over a join is not supported yet: write the join to a stream first \
             (CREATE STREAM joined AS SELECT … FROM a JOIN b …), then aggregate that stream",
        ));
    }
    if from.joins.len() + 1 != inputs.len() {
        return Err(PlanError::user("a join reads each source it names"));
    }
    let operators: Vec<datafusion::sql::sqlparser::ast::JoinOperator> =
        from.joins.iter().map(|j| j.join_operator.clone()).collect();
    let mut aliases: Vec<String> = Vec::with_capacity(inputs.len());
    for relation in std::iter::once(&from.relation).chain(from.joins.iter().map(|j| &j.relation)) {
        let Some((_, alias)) = alias_of(relation) else {
            return Err(PlanError::user("a join reads sources by name"));
        };
        aliases.push(alias);
    }
    let qualify = |expr: &Expr| qualified(expr, inputs, &aliases);
    let sources_of = |expr: &Expr| -> Vec<usize> {
        let mut found = Vec::new();
        let _ = datafusion::sql::sqlparser::ast::visit_expressions(expr, |e: &Expr| {
            let qualifier = match e {
                Expr::CompoundIdentifier(parts) => parts.first(),
                // `t.col[1]`
                Expr::CompoundFieldAccess { root, .. } => match root.as_ref() {
                    Expr::Identifier(ident) => Some(ident),
                    _ => None,
                },
                _ => None,
            };
            if let Some(qualifier) = qualifier
                && let Some(i) = aliases.iter().position(|a| *a == qualifier.value)
                && !found.contains(&i)
            {
                found.push(i);
            }
            std::ops::ControlFlow::<()>::Continue(())
        });
        found
    };

    let context = super::query::planning_context();
    let state = context.state();
    let mut all = qualified_schema(&aliases[0], &inputs[0].row_schema)?;
    for (alias, input) in aliases.iter().zip(inputs).skip(1) {
        all = all.join(&qualified_schema(alias, &input.row_schema)?)?;
    }

    // Each ON: sides in order (the new source's side right), checked as ksqlDB checks them.
    let mut on: Vec<[Expr; 2]> = Vec::with_capacity(operators.len());
    let mut conditions: Vec<String> = Vec::with_capacity(operators.len());
    let mut shapes: Vec<JoinShape> = Vec::with_capacity(operators.len());
    let mut left_keyeds: Vec<bool> = Vec::with_capacity(operators.len());
    let mut key_columns: Vec<Expr> = Vec::new();
    for (step, operator) in operators.iter().enumerate() {
        let written = on_keys(operator)?;
        let written = [qualify(&written[0]), qualify(&written[1])];
        // ksqlDB prints a null literal in lower case.
        let shown = |e: &Expr| match e {
            Expr::Value(v) if v.value == datafusion::sql::sqlparser::ast::Value::Null => "null".to_string(),
            other => other.to_string(),
        };
        let condition = format!("({} = {})", shown(&written[0]), shown(&written[1]));
        for side in &written {
            let mut unknown = None;
            let mut references = 0;
            let _ = datafusion::sql::sqlparser::ast::visit_expressions(side, |e: &Expr| {
                match e {
                    Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
                        references += 1;
                        if !aliases.contains(&parts[0].value) {
                            unknown = Some(parts[0].value.clone());
                        }
                    }
                    Expr::Identifier(_) | Expr::CompoundFieldAccess { .. } => references += 1,
                    _ => {}
                }
                std::ops::ControlFlow::<()>::Continue(())
            });
            if let Some(unknown) = unknown {
                return Err(PlanError::user(format!(
                    "Failed to prepare statement: '{unknown}' is not a valid stream/table name or alias."
                )));
            }
            if references == 0 {
                return Err(PlanError::user(format!(
                    "Invalid comparison expression '{}' in join '{condition}'. Each side of the join comparision \
                     must contain references from exactly one source.",
                    shown(side)
                )));
            }
        }
        for side in &written {
            // Where the expression is in the statement, as ksqlDB says it.
            let at = crate::sql::position_prefix(datafusion::sql::sqlparser::ast::Spanned::span(side).start);
            let typer = super::rewrite::Typer { state: &state, schema: &all, qualified: true };
            let has_arrow = side.to_string().contains("->");
            if !has_arrow && let Err(why) = typer.check(side) {
                if why.contains("No field named") {
                    return Err(PlanError::user(format!("{at}JOIN ON column '{side}' cannot be resolved.")));
                }
                if let Some(refusal) = ambiguous_column(&why, side, inputs) {
                    return Err(refusal);
                }
            }
        }
        let (left_sources, right_sources) = (sources_of(&written[0]), sources_of(&written[1]));
        if let ([l], [r]) = (left_sources.as_slice(), right_sources.as_slice())
            && l == r
        {
            return Err(PlanError::user(format!(
                "Each side of the join must reference exactly one source and not the same source. Left side \
                 references `{0}` and right references `{0}`",
                inputs[*l].name
            )));
        }
        let new = step + 1;
        let oriented = if left_sources == [new] && right_sources.iter().all(|s| *s < new) {
            [written[1].clone(), written[0].clone()]
        } else {
            written.clone()
        };
        if sources_of(&oriented[1]) != [new] || sources_of(&oriented[0]).iter().any(|s| *s >= new) {
            return Err(PlanError::user(format!(
                "A join criteria is expected to reference the source (`{}`) in the FROM clause, instead the right \
                 source references `{}` and the left source references `{}`",
                inputs[new].name,
                sources_of(&oriented[1]).iter().map(|s| inputs[*s].name.clone()).collect::<Vec<_>>().join(", "),
                sources_of(&oriented[0]).iter().map(|s| inputs[*s].name.clone()).collect::<Vec<_>>().join(", ")
            )));
        }
        let typer = super::rewrite::Typer { state: &state, schema: &all, qualified: true };
        let is_column = |e: &Expr| matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_));
        // A key holding a map (at any depth) is refused, as for any key column.
        if let Expr::CompoundIdentifier(parts) = &oriented[0]
            && let Ok(data_type) = typer.check(&oriented[0])
            && contains_map(&data_type)
        {
            let name = parts.iter().map(|p| p.value.as_str()).collect::<Vec<_>>().join("_");
            return Err(PlanError::user(format!(
                "Map keys, including types that contain maps, are not supported as they may lead to unexpected \
                 behavior due to inconsistent serialization. Key column name: `{name}`. Column type: {}. See \
                 https://github.com/confluentinc/ksql/issues/6621 for more.",
                crate::sql::types::ksql_type_name(&data_type)
            )));
        }
        if oriented.iter().all(is_column)
            && let (Ok(left), Ok(right)) = (typer.check(&oriented[0]), typer.check(&oriented[1]))
            && left != right
        {
            let name = |t: &DataType| crate::sql::types::ksql_type_name(t);
            return Err(PlanError::user(format!(
                "Invalid join condition: types don't match. Got {}{{{}}} = {}{{{}}}.",
                oriented[0],
                name(&left),
                oriented[1],
                name(&right)
            )));
        }
        // The rows so far are a table only if every source so far is one.
        let left_table = inputs[..new].iter().all(|i| i.table);
        let left_name = &inputs[0].name;
        let shape = match (left_table, inputs[new].table) {
            (false, false) => {
                let Some((_, within)) = query.within.iter().find(|(j, _)| *j == step) else {
                    return Err(PlanError::user(
                        "Stream-Stream joins must have a WITHIN clause specified. None was provided. To learn about \
                         how to specify a WITHIN clause with a stream-stream join, please visit: \
                         https://docs.confluent.io/current/ksql/docs/syntax-reference.html#create-stream-as-select",
                    ));
                };
                let ms = |span: crate::sql::ast::TimeSpan| i64::try_from(span.millis()).unwrap_or(i64::MAX);
                JoinShape::StreamStream {
                    before_ms: ms(within.before),
                    after_ms: ms(within.after.unwrap_or(within.before)),
                    grace_ms: within.grace_period.map(ms),
                }
            }
            (false, true) => JoinShape::StreamTable,
            (true, true) => JoinShape::TableTable,
            (true, false) => {
                return Err(PlanError::user(format!(
                    "Invalid join order: table-stream joins are not supported; only stream-table joins. Got {} {} {}.",
                    left_name,
                    join_words(operator),
                    inputs[new].name
                )));
            }
        };
        if !matches!(shape, JoinShape::StreamStream { .. }) && query.within.iter().any(|(j, _)| *j == step) {
            return Err(PlanError::user("A WITHIN clause is only for stream-stream joins"));
        }
        if shape == JoinShape::StreamTable
            && matches!(
                operator,
                datafusion::sql::sqlparser::ast::JoinOperator::FullOuter(_)
                    | datafusion::sql::sqlparser::ast::JoinOperator::Right(_)
                    | datafusion::sql::sqlparser::ast::JoinOperator::RightOuter(_)
            )
        {
            let what = if matches!(operator, datafusion::sql::sqlparser::ast::JoinOperator::FullOuter(_)) {
                "full-outer"
            } else {
                "right"
            };
            return Err(PlanError::user(format!(
                "Invalid join type: {what} join not supported for stream-table join. Got {} {} {}.",
                inputs[new - 1].name,
                join_words(operator),
                inputs[new].name
            )));
        }
        // Windowed sources join only windowed sources of the same kind, on their keys.
        let windows = [&inputs[0].window, &inputs[new].window];
        let described = |w: &Option<(String, Option<i64>)>| w.as_ref().map(|(kind, _)| kind.clone());
        match (described(windows[0]), described(windows[1])) {
            (None, None) => {}
            (Some(left), Some(right)) => {
                if (left == "SESSION") != (right == "SESSION") {
                    return Err(PlanError::user(format!(
                        "Incompatible windowed sources.\nLeft source: {left}\nRight source: {right}\nSession windowed \
                         sources can only be joined to other session windowed sources, and may still not result in \
                         expected behaviour as session bounds must be an exact match for the join to work\nHopping \
                         and tumbling windowed sources can only be joined to other hopping and tumbling windowed \
                         sources"
                    )));
                }
                let on_key = |side: usize, expr: &Expr| {
                    matches!(expr, Expr::CompoundIdentifier(parts)
                        if inputs[side].key.len() == 1 && parts.last().is_some_and(|c| c.value == inputs[side].key[0]))
                };
                if windows[0] != windows[1] || !on_key(0, &oriented[0]) || !on_key(new, &oriented[1]) {
                    let see = if windows[0] == windows[1] || !on_key(0, &oriented[0]) || !on_key(new, &oriented[1]) {
                        " See https://github.com/confluentinc/ksql/issues/4385."
                    } else {
                        ""
                    };
                    return Err(PlanError::user(format!(
                        "Implicit repartitioning of windowed sources is not supported.{see}"
                    )));
                }
            }
            (left, right) => {
                let (windowed, other, kind) = match (left, right) {
                    (Some(kind), None) => (0, new, kind),
                    (None, Some(kind)) => (new, 0, kind),
                    _ => unreachable!("both or neither are handled above"),
                };
                return Err(PlanError::user(format!(
                    "Can not join windowed source to non-windowed source.\n`{}` is {kind} windowed\n`{}` is not \
                     windowed",
                    inputs[windowed].name, inputs[other].name
                )));
            }
        }
        // The columns that hold the key after this join: the left side's key columns if it
        // is joined on them (else its expression, if a column), and the right side's.
        let text = |e: &Expr| e.to_string();
        let left_keyed = if step == 0 {
            matches!(&oriented[0], Expr::CompoundIdentifier(parts)
                if inputs[0].key.len() == 1 && parts.last().is_some_and(|c| c.value == inputs[0].key[0]))
        } else {
            key_columns.iter().any(|k| text(k) == text(&oriented[0]))
        };
        let mut shape = shape;
        let condition = format!("{} = {}", written[0], written[1]);
        if shape == JoinShape::TableTable && !left_keyed {
            if step > 0 {
                return Err(PlanError::user(format!(
                    "Invalid join condition: foreign-key table-table joins are not supported as part of n-way \
                     joins. Got {condition}."
                )));
            }
            if matches!(
                operator,
                datafusion::sql::sqlparser::ast::JoinOperator::FullOuter(_)
                    | datafusion::sql::sqlparser::ast::JoinOperator::Right(_)
                    | datafusion::sql::sqlparser::ast::JoinOperator::RightOuter(_)
            ) {
                return Err(PlanError::user(format!(
                    "Invalid join type: {} join not supported for foreign-key table-table join. Got {} {} {}.",
                    if matches!(operator, datafusion::sql::sqlparser::ast::JoinOperator::FullOuter(_)) {
                        "full-outer"
                    } else {
                        "right"
                    },
                    inputs[0].name,
                    join_words(operator),
                    inputs[1].name
                )));
            }
            // Its results are keyed by the left table's key: one column.
            if inputs[0].key.len() != 1 {
                return Err(PlanError::user(format!(
                    "Invalid join condition: a foreign-key join needs a left table keyed by one column; `{}` has {}. \
                     Got {condition}.",
                    inputs[0].name,
                    inputs[0].key.len()
                )));
            }
            shape = JoinShape::ForeignKey;
        }
        let mut next: Vec<Expr> = Vec::new();
        if shape == JoinShape::ForeignKey {
            next.push(first_primary_key(&aliases, inputs));
        } else if matches!(operator, datafusion::sql::sqlparser::ast::JoinOperator::FullOuter(_)) {
            // The key may come from either side: ROWKEY, no column, holds it.
        } else {
            // Expressions too: a later join on one of them is on the key.
            if left_keyed && step > 0 {
                next.extend(key_columns.iter().cloned());
            } else {
                next.push(oriented[0].clone());
            }
            if !next.iter().any(|k| text(k) == text(&oriented[1])) {
                next.push(oriented[1].clone());
            }
        }
        key_columns = next;
        left_keyeds.push(left_keyed);
        conditions.push(condition);
        on.push(oriented);
        shapes.push(shape);
    }

    // The first source's rows carry ROWKEY, the join key, set by each join step: of the last
    // step's type, since the result's key is the last join's (earlier steps' keys, if of
    // another type, are not read from it).
    let key_type = {
        let typer = super::rewrite::Typer { state: &state, schema: &all, qualified: true };
        let Some(last) = shapes.len().checked_sub(1) else {
            return Err(PlanError::user("a join query names two or more sources"));
        };
        // A foreign-key join's rows are keyed by the left table's key.
        let primary = first_primary_key(&aliases, inputs);
        let mut last_key = if shapes[last] == JoinShape::ForeignKey { primary } else { on[last][0].clone() };
        super::query::rewrite_struct_access(&mut last_key)?;
        let last_key = &last_key;
        typer.check(last_key).map_err(|e| PlanError::user(format!("Invalid join condition {last_key}: {e}")))?
    };
    // Every column may be null in a joined row (a side without a match).
    let nullable = |schema: &SchemaRef| -> Vec<Field> {
        schema.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect()
    };
    let mut first = nullable(&inputs[0].row_schema);
    let rowkey = rowkey_name(inputs);
    first.push(Field::new(&rowkey, key_type, true));
    let mut schemas: Vec<SchemaRef> = vec![Arc::new(Schema::new(first))];
    schemas.extend(inputs[1..].iter().map(|i| Arc::new(Schema::new(nullable(&i.row_schema)))));

    key_columns.retain(|e| matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_)));
    let synthetic_key = key_columns.is_empty();
    expand_join_star(&mut standard, &aliases, inputs, synthetic_key.then_some(rowkey.as_str()));
    let typer = super::rewrite::Typer { state: &state, schema: &all, qualified: true };
    super::query::expand_struct_stars(&mut standard, &typer)?;
    let (items, names) = name_join_projection(&mut standard, inputs)?;
    let items: Vec<Expr> = items.iter().map(&qualify).collect();
    let mut joined_input = qualified_schema(&aliases[0], &schemas[0])?;
    for (alias, schema) in aliases.iter().zip(&schemas).skip(1) {
        joined_input = joined_input.join(&qualified_schema(alias, schema)?)?;
    }
    let typer = super::rewrite::Typer { state: &state, schema: &joined_input, qualified: true };
    for item in &items {
        if item.to_string().contains("->") {
            continue;
        }
        if let Err(why) = typer.check(item) {
            if let Some(column) = super::query::unknown_column(&why) {
                return Err(PlanError::user(format!("SELECT column '{column}' cannot be resolved.")));
            }
            if let Some(refusal) = ambiguous_column(&why, item, inputs) {
                return Err(refusal);
            }
        }
    }
    super::query::rewrite_struct_access(&mut standard)?;
    super::query::rewrite_with_types(&mut standard, &typer)?;
    super::rewrite::rewrite_constructors(&mut standard)?;
    super::rewrite::type_literals(&mut standard);

    for (input, schema) in inputs.iter().zip(&schemas) {
        let table = MemTable::try_new(schema.clone(), vec![vec![]])?;
        context.register_table(datafusion::common::TableReference::bare(input.name.as_str()), Arc::new(table))?;
    }
    let state = context.state();
    let statement = datafusion::sql::parser::Statement::Statement(Box::new(
        datafusion::sql::sqlparser::ast::Statement::Query(Box::new(standard)),
    ));
    let planned = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(state.statement_to_plan(statement)))
        .await
        .map_err(|_| PlanError::internal("DataFusion panicked planning the join"))??;
    let (projection, filter, top) = join_parts(&planned)?;
    // The chain of Join nodes, innermost (the first step) first.
    let mut nodes = vec![top];
    while let LogicalPlan::Join(inner) = skip_aliases(nodes[nodes.len() - 1].left.as_ref()) {
        nodes.push(inner);
    }
    nodes.reverse();
    if nodes.len() != shapes.len() {
        return Err(PlanError::user("the join was planned in an unexpected shape"));
    }
    let physical =
        |e: LogicalExpr, schema: &datafusion::common::DFSchema| crate::engine::plan::physical_expr(&state, e, schema);
    let mut steps = Vec::with_capacity(nodes.len());
    let mut rest: Vec<LogicalExpr> = filter.into_iter().collect();
    for (i, (node, shape)) in nodes.iter().zip(&shapes).enumerate() {
        // DataFusion's planner leaves ON as a condition (its optimizer finds the equality):
        // the equality between the two sides is the key; anything else filters.
        let (equalities, others) = split_on(node)?;
        let [(left_key, right_key)] = equalities.as_slice() else {
            return Err(PlanError::user(format!(
                "Invalid join condition: joins on multiple conditions are not yet supported. Got {}.",
                node.filter.as_ref().map_or_else(String::new, |f| f.to_string())
            )));
        };
        rest.extend(others);
        let kind = node.join_type;
        if !matches!(kind, JoinType::Inner | JoinType::Left | JoinType::Right | JoinType::Full) {
            return Err(PlanError::user(format!("{kind} joins are not supported")));
        }
        let left_primary_key = match shape {
            JoinShape::ForeignKey => {
                let column = inputs[0].key.first().cloned().unwrap_or_default();
                let column = datafusion::common::Column::new(
                    Some(datafusion::common::TableReference::bare(aliases[0].as_str())),
                    column,
                );
                Some(physical(LogicalExpr::Column(column), node.left.schema())?)
            }
            _ => None,
        };
        let window_keys = if inputs[0].window.is_some() && inputs[i + 1].window.is_some() {
            let column = |alias: &str, name: &str, schema: &datafusion::common::DFSchema| {
                let column =
                    datafusion::common::Column::new(Some(datafusion::common::TableReference::bare(alias)), name);
                physical(LogicalExpr::Column(column), schema)
            };
            let (left, right) = (node.left.schema(), node.right.schema());
            Some([
                [column(&aliases[0], "WINDOWSTART", left)?, column(&aliases[0], "WINDOWEND", left)?],
                [column(&aliases[i + 1], "WINDOWSTART", right)?, column(&aliases[i + 1], "WINDOWEND", right)?],
            ])
        } else {
            None
        };
        let left_schema: SchemaRef = Arc::new(node.left.schema().as_arrow().clone());
        let right_schema: SchemaRef = Arc::new(node.right.schema().as_arrow().clone());
        steps.push(Arc::new(JoinStep {
            shape: *shape,
            kind,
            keys: [physical(left_key.clone(), node.left.schema())?, physical(right_key.clone(), node.right.schema())?],
            sides: [left_schema, right_schema],
            joined: Arc::new(node.schema.as_arrow().clone()),
            right_input: i + 1,
            left_keyed: left_keyeds[i],
            left_primary_key,
            window_keys,
        }));
    }
    let joined_dfschema = top.schema.as_ref();
    let joined: SchemaRef = Arc::new(joined_dfschema.as_arrow().clone());
    let filter = match rest.into_iter().reduce(|a, b| a.and(b)) {
        Some(condition) => Some(physical(condition, joined_dfschema)?),
        None => None,
    };
    if projection.len() != names.len() {
        return Err(PlanError::user(format!("{} columns planned for {} named", projection.len(), names.len())));
    }
    let mut physical_projection = Vec::with_capacity(names.len());
    let mut fields = Vec::with_capacity(names.len());
    for (expr, name) in projection.into_iter().zip(&names) {
        let expr = physical(expr, joined_dfschema)?;
        fields.push(Field::new(name, expr.data_type(&joined)?, true));
        physical_projection.push(expr);
    }
    Ok(JoinPlan {
        steps,
        filter,
        projection: physical_projection,
        output: Arc::new(Schema::new(fields)),
        items,
        on,
        conditions,
        synthetic_key,
        rowkey,
        key_columns,
        key_output: None,
    })
}

/// The join key's column in the first source's rows: ROWKEY, or ROWKEY_n when a source
/// has a column of that name.
pub(super) fn rowkey_name(inputs: &[JoinInput]) -> String {
    let taken = |name: &str| inputs.iter().any(|i| i.row_schema.index_of(name).is_ok());
    let mut rowkey = ROWKEY.to_string();
    let mut n = 0;
    while taken(&rowkey) {
        n += 1;
        rowkey = format!("{ROWKEY}_{n}");
    }
    rowkey
}

/// `expr` with each bare column qualified by the alias of the one input that has it
/// (columns of several inputs, or of none, stay bare).
pub(super) fn qualified(expr: &Expr, inputs: &[JoinInput], aliases: &[String]) -> Expr {
    let mut expr = expr.clone();
    let _ = datafusion::sql::sqlparser::ast::visit_expressions_mut(&mut expr, |e: &mut Expr| {
        if let Expr::Identifier(ident) = e {
            let owners: Vec<usize> =
                (0..inputs.len()).filter(|i| inputs[*i].row_schema.index_of(&ident.value).is_ok()).collect();
            if let [owner] = owners.as_slice() {
                *e = Expr::CompoundIdentifier(vec![Ident::new(aliases[*owner].clone()), ident.clone()]);
            }
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    expr
}

/// The first source's (single) key column, qualified.
fn first_primary_key(aliases: &[String], inputs: &[JoinInput]) -> Expr {
    let column = inputs[0].key.first().cloned().unwrap_or_else(|| ROWKEY.to_string());
    Expr::CompoundIdentifier(vec![Ident::new(aliases[0].clone()), Ident::new(column)])
}

/// Whether a type is or holds a map.
fn contains_map(data_type: &DataType) -> bool {
    match data_type {
        DataType::Map(..) => true,
        DataType::List(item) => contains_map(item.data_type()),
        DataType::Struct(fields) => fields.iter().any(|f| contains_map(f.data_type())),
        _ => false,
    }
}

/// A plan below any subquery aliases.
fn skip_aliases(plan: &LogicalPlan) -> &LogicalPlan {
    match plan {
        LogicalPlan::SubqueryAlias(alias) => skip_aliases(alias.input.as_ref()),
        other => other,
    }
}

/// The join's equalities between an expression of the left side and one of the right (from
/// `on`, or found in the ON condition), and the ON condition's other conjuncts.
#[allow(clippy::type_complexity)]
fn split_on(
    join: &datafusion::logical_expr::Join,
) -> Result<(Vec<(LogicalExpr, LogicalExpr)>, Vec<LogicalExpr>), PlanError> {
    use datafusion::logical_expr::{BinaryExpr, Operator};
    let mut equalities: Vec<(LogicalExpr, LogicalExpr)> = join.on.clone();
    let mut rest = Vec::new();
    let (left, right) = (join.left.schema(), join.right.schema());
    let within = |e: &LogicalExpr, schema: &datafusion::common::DFSchema| {
        let columns = e.column_refs();
        !columns.is_empty() && columns.iter().all(|c| schema.has_column(c))
    };
    if let Some(filter) = &join.filter {
        for conjunct in datafusion::logical_expr::utils::split_conjunction(filter) {
            match conjunct {
                LogicalExpr::BinaryExpr(BinaryExpr { left: a, op: Operator::Eq, right: b }) => {
                    if within(a, left) && within(b, right) {
                        equalities.push(((**a).clone(), (**b).clone()));
                    } else if within(a, right) && within(b, left) {
                        equalities.push(((**b).clone(), (**a).clone()));
                    } else {
                        rest.push(conjunct.clone());
                    }
                }
                other => rest.push(other.clone()),
            }
        }
    }
    Ok((equalities, rest))
}

/// An expression as ksqlDB prints conditions: every binary operation in parentheses.
fn parenthesised(expr: &Expr) -> String {
    match expr {
        Expr::Nested(inner) => parenthesised(inner),
        Expr::BinaryOp { left, op, right } => format!("({} {op} {})", parenthesised(left), parenthesised(right)),
        other => other.to_string(),
    }
}

/// A join's type as ksqlDB's messages write it: `[INNER] JOIN`, `LEFT [OUTER] JOIN`, …
fn join_words(operator: &datafusion::sql::sqlparser::ast::JoinOperator) -> &'static str {
    use datafusion::sql::sqlparser::ast::JoinOperator;
    match operator {
        JoinOperator::Left(_) | JoinOperator::LeftOuter(_) => "LEFT [OUTER] JOIN",
        JoinOperator::Right(_) | JoinOperator::RightOuter(_) => "RIGHT [OUTER] JOIN",
        JoinOperator::FullOuter(_) => "[FULL] OUTER JOIN",
        _ => "[INNER] JOIN",
    }
}

/// The two sides of `ON a = b`, as written.
fn on_keys(operator: &datafusion::sql::sqlparser::ast::JoinOperator) -> Result<[Expr; 2], PlanError> {
    use datafusion::sql::sqlparser::ast::{BinaryOperator, JoinConstraint, JoinOperator};
    let constraint = match operator {
        JoinOperator::Join(c)
        | JoinOperator::Inner(c)
        | JoinOperator::Left(c)
        | JoinOperator::LeftOuter(c)
        | JoinOperator::Right(c)
        | JoinOperator::RightOuter(c)
        | JoinOperator::FullOuter(c) => c,
        _ => return Err(PlanError::user("only INNER, LEFT, RIGHT and FULL OUTER joins are supported")),
    };
    let JoinConstraint::On(condition) = constraint else {
        return Err(PlanError::user("a join needs an ON clause"));
    };
    let mut condition = condition;
    while let Expr::Nested(inner) = condition {
        condition = inner;
    }
    match condition {
        Expr::BinaryOp { left, op: BinaryOperator::Eq, right } => Ok([(**left).clone(), (**right).clone()]),
        Expr::BinaryOp { op: BinaryOperator::And, .. } => Err(PlanError::user(format!(
            "Invalid join condition: joins on multiple conditions are not yet supported. Got {}.",
            parenthesised(condition)
        ))),
        other => {
            Err(PlanError::user(format!("Unsupported join expression: {other}. Only equality joins are supported.")))
        }
    }
}

/// `SELECT *` and `a.*` in a join: each source's columns as `alias.col AS ALIAS_COL`.
fn expand_join_star(
    query: &mut datafusion::sql::sqlparser::ast::Query,
    aliases: &[String],
    inputs: &[JoinInput],
    synthetic_key: Option<&str>,
) {
    let SetExpr::Select(select) = query.body.as_mut() else { return };
    let columns_of = |side: usize| -> Vec<SelectItem> {
        inputs[side]
            .star
            .iter()
            .map(|column| SelectItem::ExprWithAlias {
                expr: Expr::CompoundIdentifier(vec![Ident::new(aliases[side].clone()), Ident::with_quote('`', column)]),
                alias: Ident::with_quote('`', format!("{}_{column}", aliases[side])),
            })
            .collect()
    };
    let mut expanded = Vec::with_capacity(select.projection.len());
    for item in std::mem::take(&mut select.projection) {
        match &item {
            SelectItem::Wildcard(_) => {
                // A synthetic key leads `SELECT *`.
                if let Some(rowkey) = synthetic_key {
                    expanded.push(SelectItem::UnnamedExpr(Expr::Identifier(Ident::new(rowkey))));
                }
                for side in 0..inputs.len() {
                    expanded.extend(columns_of(side));
                }
            }
            SelectItem::QualifiedWildcard(kind, _) => {
                let name = kind.to_string().trim_end_matches(".*").trim_matches('`').to_uppercase();
                match aliases.iter().position(|a| a.eq_ignore_ascii_case(&name)) {
                    Some(side) => expanded.extend(columns_of(side)),
                    None => expanded.push(item),
                }
            }
            _ => expanded.push(item),
        }
    }
    select.projection = expanded;
}

/// Names every projected column as ksqlDB names a join's: `l.col` is `L_COL` when `col` is
/// a column of both sources (or a pseudo column), else `COL`; `col` is `COL`; anything else
/// `KSQL_COL_n`. Returns the items as written and the names.
/// ksqlDB's refusal of a column of several sources named without its source, at the
/// expression's position, when `why` (a typing failure of `expr`) says so.
fn ambiguous_column(why: &str, expr: &Expr, inputs: &[JoinInput]) -> Option<PlanError> {
    let rest = why.split("Ambiguous reference to unqualified field ").nth(1)?;
    let column = rest.split_whitespace().next().unwrap_or(rest).trim_matches('"');
    let at = crate::sql::position_prefix(datafusion::sql::sqlparser::ast::Spanned::span(expr).start);
    let owners: Vec<String> = inputs
        .iter()
        .filter(|i| i.row_schema.index_of(column).is_ok())
        .map(|i| format!("{}.{column}", i.name))
        .collect();
    Some(PlanError::user(format!(
        "Exception while preparing statement: {at}Column '{column}' is ambiguous. Could be {}.",
        owners.join(" or ")
    )))
}

pub(super) fn name_join_projection(
    query: &mut datafusion::sql::sqlparser::ast::Query,
    inputs: &[JoinInput],
) -> Result<(Vec<Expr>, Vec<String>), PlanError> {
    let shared = |column: &str| {
        let pseudo = crate::engine::source::PSEUDO_COLUMNS.iter().any(|(p, _)| *p == column)
            || crate::engine::source::WINDOW_COLUMNS.contains(&column);
        pseudo || inputs.iter().filter(|i| i.row_schema.index_of(column).is_ok()).count() > 1
    };
    let SetExpr::Select(select) = query.body.as_mut() else {
        return Err(PlanError::user("only SELECT … FROM a JOIN b is supported"));
    };
    let mut names: Vec<String> = Vec::with_capacity(select.projection.len());
    let mut items = Vec::with_capacity(select.projection.len());
    let mut generated = 0usize;
    for item in select.projection.iter_mut() {
        let (expr, name) = match std::mem::replace(item, SelectItem::Wildcard(Default::default())) {
            SelectItem::ExprWithAlias { expr, alias } => (expr, alias.value),
            SelectItem::UnnamedExpr(expr) => {
                let name = match &expr {
                    Expr::Identifier(ident) => Some(ident.value.clone()),
                    Expr::CompoundIdentifier(parts) if parts.len() == 2 => Some(if shared(&parts[1].value) {
                        format!("{}_{}", parts[0].value, parts[1].value)
                    } else {
                        parts[1].value.clone()
                    }),
                    // `s->f` is named after its field.
                    Expr::BinaryOp { op: datafusion::sql::sqlparser::ast::BinaryOperator::Arrow, right, .. } => {
                        match right.as_ref() {
                            Expr::Identifier(field) => Some(field.value.clone()),
                            _ => None,
                        }
                    }
                    _ => None,
                };
                let name = name.unwrap_or_else(|| {
                    loop {
                        let candidate = format!("KSQL_COL_{generated}");
                        generated += 1;
                        if !names.contains(&candidate) {
                            break candidate;
                        }
                    }
                });
                (expr, name)
            }
            SelectItem::QualifiedWildcard(kind, _) => {
                let qualifier = kind.to_string().trim_end_matches(".*").trim_matches('`').to_uppercase();
                return Err(PlanError::user(format!("'{qualifier}' is not a valid stream/table name or alias.")));
            }
            other => return Err(PlanError::user(format!("'{other}' is not supported in a join's projection"))),
        };
        if names.contains(&name) {
            return Err(PlanError::user(format!("Duplicate value columns found in schema: `{name}`")));
        }
        names.push(name.clone());
        items.push(expr.clone());
        *item = SelectItem::ExprWithAlias { expr, alias: Ident::with_quote('`', name) };
    }
    Ok((items, names))
}

/// The parts of `Projection [→ Filter] → Join → (TableScan, TableScan)`.
fn join_parts(
    plan: &LogicalPlan,
) -> Result<(Vec<LogicalExpr>, Option<LogicalExpr>, &datafusion::logical_expr::Join), PlanError> {
    let unsupported = |what: &str| PlanError::user(format!("{what} is not supported yet in a join"));
    let LogicalPlan::Projection(projection) = plan else {
        return Err(unsupported(plan.display().to_string().split(':').next().unwrap_or("this query")));
    };
    let mut input = projection.input.as_ref();
    let mut filter = None;
    loop {
        match input {
            LogicalPlan::Filter(f) if filter.is_none() => {
                filter = Some(f.predicate.clone());
                input = f.input.as_ref();
            }
            LogicalPlan::Join(join) => return Ok((projection.expr.clone(), filter, join)),
            LogicalPlan::Aggregate(_) => return Err(unsupported("aggregation (GROUP BY)")),
            other => return Err(unsupported(other.display().to_string().split(':').next().unwrap_or("this query"))),
        }
    }
}
