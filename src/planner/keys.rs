//! Which output columns of a query are its sink's key, by ksqlDB's rules (GROUP BY,
//! PARTITION BY, a join's key, or the input's key passed through), and the checks and
//! rewrites around them.

use datafusion::sql::sqlparser::ast::{Expr, Ident, Value};

use super::query::normalise_expression;
use crate::catalog::{ColumnRole, Source};
use crate::engine::plan::{PlanError, unqualified};
use crate::sql::ast::StreamingQuery;

/// A refusal of the query, with ksqlDB's message.
fn refusal(message: String) -> PlanError {
    PlanError::user(message)
}

/// Which output columns are keys, and their place in the key. Without PARTITION BY, those
/// that are the input's key columns (each exactly once, all of them); with it, those that
/// are its expressions (all of them, compared without source qualifiers), in its order;
/// with `PARTITION BY NULL`, none.
pub fn key_columns(
    query: &StreamingQuery,
    input: &Source,
    items: &[Expr],
    names: &[String],
    sink_name: &str,
    group_by: Option<&[Expr]>,
) -> Result<Vec<Option<usize>>, PlanError> {
    // GROUP BY keys its result by the grouping expressions, as PARTITION BY does.
    let (keying, what_keys) = match group_by {
        Some(exprs) => (exprs, "grouping expression"),
        None => (query.partition_by.as_slice(), "partitioning expression"),
    };
    let partition_by: Vec<Expr> = keying
        .iter()
        .map(|e| {
            let mut e = e.clone();
            normalise_expression(&mut e);
            unqualified(&e)
        })
        .collect();
    if group_by.is_none() && partitions_by_null(query) {
        if partition_by.len() > 1 {
            return Err(refusal("Cannot PARTITION BY multiple columns including NULL".into()));
        }
        return Ok(vec![None; items.len()]);
    }
    let (wanted, what): (Vec<Expr>, &str) = if partition_by.is_empty() {
        let keys = input.columns.iter().filter(|c| c.role == ColumnRole::Key);
        (keys.map(|c| Expr::Identifier(Ident::with_quote('`', c.name.clone()))).collect(), "key column")
    } else {
        for expr in &partition_by {
            if let Expr::Identifier(ident) = expr
                && !input.columns.iter().any(|c| c.name == ident.value)
                && !crate::engine::source::PSEUDO_COLUMNS.iter().any(|(p, _)| *p == ident.value)
            {
                return Err(refusal(format!(
                    "PARTITION BY column '{0}' cannot be resolved. '{0}' must be a column in the source schema \
                     since PARTITION BY is applied on the input.",
                    ident.value
                )));
            }
        }
        (partition_by, what_keys)
    };
    let same = |a: &Expr, b: &Expr| match (unnested(a), unnested(b)) {
        (Expr::Identifier(x), Expr::Identifier(y)) => x.value == y.value,
        (a, b) => strip_quotes(a) == strip_quotes(b),
    };
    if group_by.is_some() {
        for (i, expr) in wanted.iter().enumerate() {
            if wanted[..i].iter().any(|earlier| same(earlier, expr)) {
                return Err(refusal(format!("Duplicate GROUP BY expression: {}", qualified_text(&keying[i], input))));
            }
        }
    }
    let mut keys = vec![None; items.len()];
    let mut missing = Vec::new();
    for (position, want) in wanted.iter().enumerate() {
        let found: Vec<usize> = (0..items.len()).filter(|i| same(&items[*i], want)).collect();
        match found.as_slice() {
            [] => missing.push(position),
            [one] => keys[*one] = Some(position),
            several => {
                let mut aliases: Vec<&str> = several.iter().map(|i| names[*i].as_str()).collect();
                aliases.sort();
                if group_by.is_some() {
                    let quoted: Vec<String> = aliases.iter().map(|a| format!("`{a}`")).collect();
                    return Err(refusal(format!(
                        "The projection contains a key column more than once: {}.",
                        quoted.join(" and ")
                    )));
                }
                return Err(refusal(format!(
                    "The projection contains a key column (`{}`) more than once, aliased as: {}.",
                    strip_quotes(want),
                    aliases.join(" and ")
                )));
            }
        }
    }
    if !missing.is_empty() {
        // For PARTITION BY ksqlDB names them all, as written but qualified by the source; for
        // GROUP BY only those missing, a column by its name.
        let all: Vec<String> = if keying.is_empty() {
            wanted.iter().map(strip_quotes).collect()
        } else if group_by.is_some() {
            missing
                .iter()
                .map(|i| match &wanted[*i] {
                    Expr::Identifier(ident) => ident.value.clone(),
                    _ => qualified_text(&keying[*i], input),
                })
                .collect()
        } else {
            keying.iter().map(|e| qualified_text(e, input)).collect()
        };
        let plural = if all.len() > 1 { "s" } else { "" };
        let listed = match all.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
            _ => all.concat(),
        };
        return Err(refusal(format!(
            "Key{plural} missing from projection (ie, SELECT).\nThe query used to build `{sink_name}` must include \
             the {what}{plural} {listed} in its projection (eg, SELECT {}...).",
            all.join(", ")
        )));
    }
    Ok(keys)
}

/// Names a persistent query may not give its value columns (ksqlDB's pseudo columns).
pub const RESERVED_COLUMNS: [&str; 5] = ["ROWTIME", "ROWPARTITION", "ROWOFFSET", "WINDOWSTART", "WINDOWEND"];

/// A value column named as a pseudo column is refused, with ksqlDB's two messages: one for
/// selecting the pseudo column itself without an alias, one for an alias of that name.
pub fn check_reserved_names(items: &[Expr], names: &[String], keys: &[Option<usize>]) -> Result<(), PlanError> {
    for ((item, name), key) in items.iter().zip(names).zip(keys) {
        if key.is_some() || !RESERVED_COLUMNS.contains(&name.as_str()) {
            continue;
        }
        // A qualified column (`l.ROWTIME`) is the pseudo column itself too.
        let selected_as_is = match item {
            Expr::Identifier(ident) => ident.value.eq_ignore_ascii_case(name),
            Expr::CompoundIdentifier(parts) => parts.last().is_some_and(|p| p.value.eq_ignore_ascii_case(name)),
            _ => false,
        };
        return Err(refusal(if selected_as_is {
            format!("Reserved column name in select: `{name}`. Please remove or alias the column.")
        } else {
            format!("`{name}` is a reserved column name. You cannot use it as an alias for a column.")
        }));
    }
    Ok(())
}

/// An expression without the parentheses around it.
pub fn unnested(mut expr: &Expr) -> &Expr {
    while let Expr::Nested(inner) = expr {
        expr = inner;
    }
    expr
}

/// `L.A` stays `L.A`; used to compare a join's projection with its ON expressions.
pub fn unqualified_if_bare(expr: &Expr) -> Expr {
    let mut expr = expr.clone();
    normalise_expression(&mut expr);
    expr
}

pub fn strip_quotes(expr: &Expr) -> String {
    expr.to_string().replace('`', "")
}

/// `PARTITION BY NULL`.
pub fn partitions_by_null(query: &StreamingQuery) -> bool {
    query.partition_by.iter().any(|e| matches!(e, Expr::Value(v) if v.value == Value::Null))
}

/// A PARTITION BY expression as ksqlDB prints it in messages: columns qualified by the
/// source, function names upper-cased, a binary operation in parentheses.
pub fn qualified_text(expr: &Expr, input: &Source) -> String {
    let mut expr = expr.clone();
    normalise_expression(&mut expr);
    let mut expr = unqualified(&expr);
    let _ = datafusion::sql::sqlparser::ast::visit_expressions_mut(&mut expr, |e: &mut Expr| {
        if let Expr::Identifier(ident) = e
            && input.columns.iter().any(|c| c.name == ident.value)
        {
            *e = Expr::CompoundIdentifier(vec![Ident::new(input.name.clone()), Ident::new(ident.value.clone())]);
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    if matches!(expr, Expr::BinaryOp { ref op, .. } if *op != datafusion::sql::sqlparser::ast::BinaryOperator::Arrow) {
        expr = Expr::Nested(Box::new(expr));
    }
    crate::planner::rewrite::ksql_text(&expr).replace('`', "").replace(" -> ", "->")
}

/// `SELECT * … PARTITION BY e, …` selects the partitioning expressions (the new key), then
/// the input's value columns, then its old key columns (as values), as ksqlDB does.
pub fn expand_star_for_partitioning(query: &mut StreamingQuery, partition_by: &[Expr], input: &Source) {
    use datafusion::sql::sqlparser::ast::{SelectItem, SetExpr};
    let SetExpr::Select(select) = query.query.body.as_mut() else { return };
    if !matches!(select.projection.as_slice(), [SelectItem::Wildcard(_)]) {
        return;
    }
    let normalised: Vec<Expr> = partition_by
        .iter()
        .map(|e| {
            let mut e = e.clone();
            normalise_expression(&mut e);
            unqualified(&e)
        })
        .collect();
    let is_new_key = |name: &str| normalised.iter().any(|e| matches!(e, Expr::Identifier(i) if i.value == name));
    let column = |name: &str| SelectItem::UnnamedExpr(Expr::Identifier(Ident::with_quote('`', name.to_owned())));
    let mut items: Vec<SelectItem> = partition_by.iter().cloned().map(SelectItem::UnnamedExpr).collect();
    items.extend(
        input.columns.iter().filter(|c| c.role != ColumnRole::Key && !is_new_key(&c.name)).map(|c| column(&c.name)),
    );
    items.extend(
        input.columns.iter().filter(|c| c.role == ColumnRole::Key && !is_new_key(&c.name)).map(|c| column(&c.name)),
    );
    select.projection = items;
}
