//! Table functions in a query: each call in the projection is taken out and replaced by a
//! column `__TF_n`, which [`crate::engine::table_functions::Unnest`] fills in.

use std::ops::ControlFlow;

use datafusion::arrow::datatypes::DataType;
use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, Query, SelectItem, SetExpr, visit_expressions_mut,
};

use super::rewrite::Typer;
use crate::engine::plan::PlanError;
use crate::engine::table_functions::{Call, Kind};
use crate::sql::types::ksql_type_name;

/// Replaces the table function calls of the projection with `__TF_n` columns, typing their
/// arguments against the input; returns the calls in order.
pub fn extract(query: &mut Query, typer: &Typer<'_>) -> Result<Vec<Call>, PlanError> {
    let SetExpr::Select(select) = query.body.as_mut() else { return Ok(Vec::new()) };
    let mut calls: Vec<Call> = Vec::new();
    for item in select.projection.iter_mut() {
        let (SelectItem::ExprWithAlias { expr, .. } | SelectItem::UnnamedExpr(expr)) = item else { continue };
        let outcome = visit_expressions_mut(expr, |e: &mut Expr| {
            let Expr::Function(function) = e else { return ControlFlow::Continue(()) };
            let kind = match function.name.to_string().as_str() {
                "explode" => Kind::Explode,
                "cube_explode" => Kind::CubeExplode,
                _ => return ControlFlow::Continue(()),
            };
            let name = function.name.to_string();
            let FunctionArguments::List(list) = &function.args else {
                return ControlFlow::Break(PlanError::user(format!("{name} takes one ARRAY")));
            };
            let [FunctionArg::Unnamed(FunctionArgExpr::Expr(argument))] = list.args.as_slice() else {
                return ControlFlow::Break(PlanError::user(format!("{name} takes one ARRAY")));
            };
            let data_type = match typer.check(argument) {
                Ok(DataType::List(item)) => match kind {
                    Kind::Explode => item.data_type().clone(),
                    Kind::CubeExplode => DataType::List(item),
                },
                Ok(other) => {
                    return ControlFlow::Break(PlanError::user(format!(
                        "Function '{name}' does not accept parameters ({}).\nValid alternatives are:\n\
                         {name}(ARRAY<DECIMAL> input)\n{name}(ARRAY<T> list)",
                        ksql_type_name(&other)
                    )));
                }
                Err(why) => return ControlFlow::Break(PlanError::user(why)),
            };
            let column = format!("__TF_{}", calls.len());
            calls.push(Call { kind, column: column.clone(), argument: argument.clone(), data_type });
            *e = Expr::Identifier(Ident::with_quote('`', column));
            ControlFlow::Continue(())
        });
        if let ControlFlow::Break(e) = outcome {
            return Err(e);
        }
    }
    Ok(calls)
}
