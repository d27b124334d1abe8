//! GROUP BY over a join, cut in two: the join (its FROM, ON and WITHIN, projecting the
//! "bridge" columns the aggregation reads, the join key and `ROWTIME`) and the aggregation
//! over the bridge rows (WHERE, GROUP BY, HAVING, WINDOW and the projection, each column
//! reference rewritten to its bridge column). See [`crate::engine::join_aggregate`] for how
//! the two run.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    AccessExpr, Expr, GroupByExpr, Ident, ObjectName, SelectItem, SetExpr, TableFactor, TableWithJoins,
    visit_expressions_mut,
};

use super::join::{alias_of, name_join_projection, qualified, rowkey_name};
use crate::engine::join::JoinInput;
use crate::engine::plan::PlanError;
use crate::sql::ast::StreamingQuery;

/// A join query that aggregates, cut in two.
#[derive(Debug, Clone)]
pub struct Split {
    /// The join, projecting the bridge columns (the join key among them).
    pub join: StreamingQuery,
    /// The aggregation, reading the bridge rows as the source `bridge_name`.
    pub aggregate: StreamingQuery,
    /// The name the aggregation reads the bridge rows as (the first input's).
    pub bridge_name: String,
    /// The bridge column that holds the join key.
    pub key_column: String,
}

/// Whether a join query aggregates: GROUP BY, HAVING or WINDOW.
pub fn aggregates(query: &StreamingQuery) -> bool {
    let SetExpr::Select(select) = query.query.body.as_ref() else { return false };
    let grouped = !matches!(&select.group_by, GroupByExpr::Expressions(e, _) if e.is_empty());
    grouped || select.having.is_some() || query.window.is_some()
}

/// Cuts an aggregating join query over `inputs` (in FROM order) into its join and its
/// aggregation.
pub fn split(query: &StreamingQuery, inputs: &[JoinInput]) -> Result<Split, PlanError> {
    let (mut standard, from) = super::join::join_select(query)?;
    let mut aliases: Vec<String> = Vec::with_capacity(inputs.len());
    for relation in std::iter::once(&from.relation).chain(from.joins.iter().map(|j| &j.relation)) {
        let Some((_, alias)) = alias_of(relation) else {
            return Err(PlanError::user("a join reads sources by name"));
        };
        aliases.push(alias);
    }
    if aliases.len() != inputs.len() {
        return Err(PlanError::user("a join reads each source it names"));
    }
    // ksqlDB has no window bounds in an aggregation over a join.
    let SetExpr::Select(select) = standard.body.as_mut() else { unreachable!("checked above") };
    for item in &select.projection {
        let found = item_columns(item).into_iter().find(|c| c == "WINDOWSTART" || c == "WINDOWEND");
        if let Some(column) = found {
            return Err(PlanError::user(format!("SELECT column '{column}' cannot be resolved.")));
        }
    }
    // Named as the join's columns would be (`l.id` is ID, or L_ID where another input has an ID).
    name_join_projection(&mut standard, inputs)?;
    let SetExpr::Select(select) = standard.body.as_mut() else { unreachable!("checked above") };

    // Every column reference, qualified, becomes its bridge column.
    let mut bridge = Bridge { inputs, aliases: &aliases, columns: Vec::new() };
    for item in select.projection.iter_mut() {
        if let SelectItem::ExprWithAlias { expr, .. } = item {
            bridge.rewrite(expr)?;
        }
    }
    if let Some(selection) = select.selection.as_mut() {
        bridge.rewrite(selection)?;
    }
    if let GroupByExpr::Expressions(exprs, _) = &mut select.group_by {
        for expr in exprs.iter_mut() {
            bridge.rewrite(expr)?;
        }
    }
    if let Some(having) = select.having.as_mut() {
        bridge.rewrite(having)?;
    }
    let key_column = rowkey_name(inputs);
    let mut projection: Vec<SelectItem> = bridge
        .columns
        .iter()
        .map(|(input, column, name)| SelectItem::ExprWithAlias {
            expr: Expr::CompoundIdentifier(vec![
                Ident::with_quote('`', aliases[*input].clone()),
                Ident::with_quote('`', column.clone()),
            ]),
            alias: Ident::with_quote('`', name.clone()),
        })
        .collect();
    if bridge.columns.iter().any(|(_, _, name)| *name == key_column || name == "ROWTIME") {
        return Err(PlanError::user(format!("a join's column is named {key_column} or ROWTIME: alias the source")));
    }
    projection.push(SelectItem::ExprWithAlias {
        expr: Expr::CompoundIdentifier(vec![
            Ident::with_quote('`', aliases[0].clone()),
            Ident::with_quote('`', key_column.clone()),
        ]),
        alias: Ident::with_quote('`', key_column.clone()),
    });

    let bridge_name = inputs[0].name.clone();
    let mut join_select = select.clone();
    join_select.projection = projection;
    join_select.selection = None;
    join_select.group_by = GroupByExpr::Expressions(Vec::new(), Vec::new());
    join_select.having = None;
    join_select.from = vec![from];
    select.from = vec![TableWithJoins {
        relation: TableFactor::Table {
            name: ObjectName::from(vec![Ident::with_quote('`', bridge_name.clone())]),
            alias: None,
            args: None,
            with_hints: Vec::new(),
            version: None,
            with_ordinality: false,
            partitions: Vec::new(),
            json_path: None,
            sample: None,
            index_hints: Vec::new(),
        },
        joins: Vec::new(),
    }];
    let mut join_query = standard.clone();
    *join_query.body = SetExpr::Select(join_select);

    Ok(Split {
        join: StreamingQuery {
            query: Box::new(join_query),
            window: None,
            partition_by: Vec::new(),
            emit: None,
            within: query.within.clone(),
        },
        aggregate: StreamingQuery {
            query: Box::new(standard),
            window: query.window.clone(),
            partition_by: query.partition_by.clone(),
            emit: query.emit,
            within: Vec::new(),
        },
        bridge_name,
        key_column,
    })
}

/// The bare column names an item reads.
fn item_columns(item: &SelectItem) -> Vec<String> {
    let mut found = Vec::new();
    let mut item = item.clone();
    let expr = match &mut item {
        SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } => expr,
        _ => return found,
    };
    let _ = visit_expressions_mut(expr, |e: &mut Expr| {
        if let Expr::Identifier(ident) = e {
            found.push(ident.value.clone());
        }
        ControlFlow::<()>::Continue(())
    });
    found
}

/// The bridge columns found so far: input, column, bridge name.
struct Bridge<'a> {
    inputs: &'a [JoinInput],
    aliases: &'a [String],
    columns: Vec<(usize, String, String)>,
}

impl Bridge<'_> {
    /// The bridge column of `alias.column`, taken on first use.
    fn column(&mut self, input: usize, column: &str) -> Ident {
        let name = format!("{}_{column}", self.aliases[input]);
        if !self.columns.iter().any(|(i, c, _)| *i == input && c == column) {
            self.columns.push((input, column.to_string(), name.clone()));
        }
        Ident::with_quote('`', name)
    }

    /// `expr` reading bridge columns: `alias.col` (and a bare `col` of one input) is
    /// `ALIAS_COL`; a bare `ROWTIME` is the joined row's time.
    fn rewrite(&mut self, expr: &mut Expr) -> Result<(), PlanError> {
        *expr = qualified(expr, self.inputs, self.aliases);
        let mut failure = None;
        let _ = visit_expressions_mut(expr, |e: &mut Expr| {
            match e {
                Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
                    if let Some(input) = self.aliases.iter().position(|a| *a == parts[0].value) {
                        let column = self.column(input, &parts[1].value);
                        *e = if parts.len() == 2 {
                            Expr::Identifier(column)
                        } else {
                            let mut rest: Vec<Ident> = parts[2..].to_vec();
                            rest.insert(0, column);
                            Expr::CompoundIdentifier(rest)
                        };
                    }
                }
                // `t.col[1]`
                Expr::CompoundFieldAccess { root, access_chain } => {
                    if let Expr::Identifier(alias) = root.as_ref()
                        && let Some(input) = self.aliases.iter().position(|a| *a == alias.value)
                        && let Some(AccessExpr::Dot(Expr::Identifier(field))) = access_chain.first()
                    {
                        let column = self.column(input, &field.value);
                        access_chain.remove(0);
                        *e = if access_chain.is_empty() {
                            Expr::Identifier(column)
                        } else {
                            Expr::CompoundFieldAccess {
                                root: Box::new(Expr::Identifier(column)),
                                access_chain: std::mem::take(access_chain),
                            }
                        };
                    }
                }
                Expr::Identifier(ident) if ident.value != "ROWTIME" => {
                    let owners: Vec<&str> = self
                        .inputs
                        .iter()
                        .filter(|i| i.row_schema.index_of(&ident.value).is_ok())
                        .map(|i| i.name.as_str())
                        .collect();
                    if owners.len() > 1 && failure.is_none() {
                        let column = &ident.value;
                        failure = Some(PlanError::user(format!(
                            "Column '{column}' is ambiguous. Could be {}.",
                            owners.iter().map(|o| format!("{o}.{column}")).collect::<Vec<_>>().join(" or ")
                        )));
                    }
                }
                _ => {}
            }
            ControlFlow::<()>::Continue(())
        });
        failure.map_or(Ok(()), Err)
    }
}
