//! ksqlDB's expressions in DataFusion's terms: the rewrites a query's AST goes through after
//! its identifiers are resolved and before DataFusion plans it.
//!
//! - Without types: `SUBSTRING(…)` calls ksqlDB's `substr`, `MAP(k := v, …)` becomes `map([k, …], [v, …])`, `STRUCT(f := v, …)`
//!   becomes `named_struct('F', v, …)`, a cast to `ARRAY<…>`/`MAP<…>`/`STRUCT<…>` becomes
//!   `ksql_cast(x, 'TYPE')`.
//! - With the types of sub-expressions (DataFusion types them against the input rows):
//!   `a + b` on strings is concatenation; the literals of `x IN (…)` are converted to the
//!   type of `x` as ksqlDB converts them (`'10'` to 10 for an INT, `'yes'` to true for a
//!   BOOLEAN), and items that cannot compare with `x` are refused with ksqlDB's message.
//!
//! Rewrites run bottom-up (sqlparser's visitor calls back after an expression's children),
//! so a sub-expression is already in DataFusion's terms when its parent is typed.

use std::ops::ControlFlow;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::DFSchema;
use datafusion::execution::SessionState;
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, CastKind, DataType as SqlDataType, Expr, ExprWithAlias, Function, FunctionArg, FunctionArgExpr,
    FunctionArgumentList, FunctionArguments, Ident, ObjectName, Value, ValueWithSpan, visit_expressions_mut,
};

use crate::engine::plan::PlanError;
use crate::sql::types::ksql_type_name;

/// Rewrites that need no types.
pub fn rewrite_constructors<V: datafusion::sql::sqlparser::ast::VisitMut + datafusion::sql::sqlparser::ast::Visit>(
    node: &mut V,
) -> Result<(), PlanError> {
    // An array constructor cast to a type needs no element to type it (ksqlDB types a CAST
    // by its target alone).
    let mut cast_arrays: Vec<*const Expr> = Vec::new();
    let _ = datafusion::sql::sqlparser::ast::visit_expressions(&*node, |e: &Expr| {
        if let Expr::Cast { expr: inner, .. } = e
            && matches!(inner.as_ref(), Expr::Array(_))
        {
            cast_arrays.push(std::ptr::from_ref(inner.as_ref()));
        }
        ControlFlow::<()>::Continue(())
    });
    let outcome = visit_expressions_mut(node, |expr: &mut Expr| {
        let typed_by_cast = cast_arrays.contains(&std::ptr::from_ref(&*expr));
        match expr {
            Expr::Function(function) => {
                let name = function.name.to_string();
                // TIMESTAMPADD(SECONDS, …): the unit is a word, passed on as a string.
                if crate::engine::udf::dates::UNIT_FUNCTIONS.contains(&name.as_str())
                    && let FunctionArguments::List(list) = &mut function.args
                    && let Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(first))) = list.args.first_mut()
                    && let Expr::Identifier(unit) = first
                    && unit.quote_style.is_none()
                    && matches!(
                        unit.value.to_ascii_uppercase().trim_end_matches('S'),
                        "MILLISECOND" | "SECOND" | "MINUTE" | "HOUR" | "DAY"
                    )
                {
                    *first = Expr::value(Value::SingleQuotedString(unit.value.to_ascii_uppercase()));
                }
                // COUNT_DISTINCT(x) is DataFusion's COUNT(DISTINCT x).
                if name == "count_distinct"
                    && let FunctionArguments::List(list) = &mut function.args
                {
                    list.duplicate_treatment = Some(datafusion::sql::sqlparser::ast::DuplicateTreatment::Distinct);
                    function.name = ObjectName::from(vec![Ident::new("count")]);
                }
                // COUNT(*) counts ROWTIME, as ksqlDB rewrites it (a row always has one), so
                // that it is not the same aggregate as COUNT(1) to DataFusion.
                if name == "count"
                    && let FunctionArguments::List(list) = &mut function.args
                    && let [FunctionArg::Unnamed(argument @ FunctionArgExpr::Wildcard)] = list.args.as_mut_slice()
                {
                    *argument = FunctionArgExpr::Expr(Expr::Identifier(Ident::new("ROWTIME")));
                }
                let assignments = || assignment_args(function);
                match name.as_str() {
                    "map" => {
                        let empty = matches!(&function.args, FunctionArguments::List(l) if l.args.is_empty())
                            || matches!(&function.args, FunctionArguments::None);
                        if empty {
                            return ControlFlow::Break(PlanError::user(
                                "Map constructor cannot be empty. Please supply at least one key value pair (see \
                                 https://github.com/confluentinc/ksql/issues/4239).",
                            ));
                        }
                        if let Some(pairs) = assignments() {
                            for (part, all_null) in [
                                ("keys", pairs.iter().all(|(k, _)| is_null_literal(k))),
                                ("values", pairs.iter().all(|(_, v)| is_null_literal(v))),
                            ] {
                                if all_null {
                                    let one = part.trim_end_matches('s');
                                    return ControlFlow::Break(PlanError::user(format!(
                                        "Cannot construct a map with all NULL {part} (see \
                                         https://github.com/confluentinc/ksql/issues/4239). As a workaround, you may \
                                         cast a NULL {one} to the desired type."
                                    )));
                                }
                            }
                            let (keys, values): (Vec<Expr>, Vec<Expr>) = pairs.into_iter().unzip();
                            *expr = call("map", vec![call("make_array", keys), call("make_array", values)]);
                        }
                    }
                    "struct" => {
                        if let Some(pairs) = assignments() {
                            let mut args = Vec::with_capacity(pairs.len() * 2);
                            for (field, value) in pairs {
                                let Expr::Identifier(ident) = field else {
                                    return ControlFlow::Break(PlanError::user(format!(
                                        "A STRUCT field name must be an identifier, not {field}"
                                    )));
                                };
                                args.push(Expr::value(Value::SingleQuotedString(ident.value)));
                                args.push(value);
                            }
                            if args.is_empty() {
                                return ControlFlow::Break(PlanError::user("STRUCT() needs at least one field"));
                            }
                            *expr = call("named_struct", args);
                        }
                    }
                    _ => {}
                }
            }
            Expr::Array(array) if array.elem.is_empty() && !typed_by_cast => {
                return ControlFlow::Break(PlanError::user(
                    "Array constructor cannot be empty. Please supply at least one element (see \
                     https://github.com/confluentinc/ksql/issues/4239).",
                ));
            }
            Expr::Array(array) if array.elem.iter().all(is_null_literal) && !typed_by_cast => {
                return ControlFlow::Break(PlanError::user(
                    "Cannot construct an array with all NULL elements (see \
                     https://github.com/confluentinc/ksql/issues/4239). As a workaround, you may cast a NULL value \
                     to the desired type.",
                ));
            }
            // DataFusion plans SUBSTRING(…) straight to its own function; ksqlDB's is ours.
            Expr::Substring { .. } => {
                if let Expr::Substring { expr: text, substring_from, substring_for, .. } =
                    std::mem::replace(expr, Expr::value(Value::Null))
                {
                    let mut args = vec![*text];
                    args.extend(substring_from.map(|e| *e));
                    args.extend(substring_for.map(|e| *e));
                    *expr = call("substr", args);
                }
            }
            // BYTES is not a type DataFusion's SQL knows.
            Expr::Cast { kind: CastKind::Cast, data_type: SqlDataType::Bytes(_), .. } => {
                if let Expr::Cast { expr: inner, .. } = std::mem::replace(expr, Expr::value(Value::Null)) {
                    *expr = call("ksql_cast", vec![*inner, Expr::value(Value::SingleQuotedString("BYTES".into()))]);
                }
            }
            Expr::Cast { kind: CastKind::Cast, data_type: SqlDataType::Custom(name, _), .. } => {
                let type_text = name.to_string();
                if let Expr::Cast { expr: inner, .. } = std::mem::replace(expr, Expr::value(Value::Null)) {
                    *expr = call("ksql_cast", vec![*inner, Expr::value(Value::SingleQuotedString(type_text))]);
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    });
    match outcome {
        ControlFlow::Break(e) => Err(e),
        ControlFlow::Continue(()) => Ok(()),
    }
}

fn is_null_literal(e: &Expr) -> bool {
    matches!(e, Expr::Value(v) if v.value == Value::Null)
}

/// The plain (unnamed) arguments of a call, cloned.
fn unnamed_arguments(args: &[FunctionArg]) -> Vec<Expr> {
    args.iter()
        .filter_map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

/// ksqlDB's literal types: an integer that fits an INT is an INT (DataFusion would make
/// every integer a BIGINT). Decimal literals are DECIMAL through DataFusion's
/// `parse_float_as_decimal`.
pub fn type_literals<V: datafusion::sql::sqlparser::ast::VisitMut>(node: &mut V) {
    let _ = visit_expressions_mut(node, |expr: &mut Expr| {
        match expr {
            Expr::Value(ValueWithSpan { value: Value::Number(n, _), .. })
                if !n.contains(['.', 'e', 'E']) && n.parse::<i32>().is_ok() =>
            {
                let literal = std::mem::replace(expr, Expr::value(Value::Null));
                *expr = Expr::Cast {
                    kind: CastKind::Cast,
                    expr: Box::new(literal),
                    data_type: SqlDataType::Int(None),
                    array: false,
                    format: None,
                };
            }
            // A number with an exponent is a DOUBLE (a decimal of it could not hold 4.9E-324).
            Expr::Value(ValueWithSpan { value: Value::Number(n, _), .. }) if n.contains(['e', 'E']) => {
                let text = n.clone();
                *expr = Expr::Cast {
                    kind: CastKind::Cast,
                    expr: Box::new(Expr::value(Value::SingleQuotedString(text))),
                    data_type: SqlDataType::Double(datafusion::sql::sqlparser::ast::ExactNumberInfo::None),
                    array: false,
                    format: None,
                };
            }
            // The elements of an array share a type: if one integer literal needs a BIGINT,
            // they all are BIGINTs (as in ksqlDB).
            Expr::Array(array) => widen_if_mixed(&mut array.elem),
            Expr::Function(function) if function.name.to_string() == "make_array" => {
                if let FunctionArguments::List(list) = &mut function.args {
                    let mut elements = unnamed_arguments(&list.args);
                    if elements.len() == list.args.len() {
                        widen_if_mixed(&mut elements);
                        list.args =
                            elements.into_iter().map(|e| FunctionArg::Unnamed(FunctionArgExpr::Expr(e))).collect();
                    }
                }
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
}

/// Undoes the INT typing of integer literals among `elements` when another integer literal
/// among them is too large for an INT.
fn widen_if_mixed(elements: &mut [Expr]) {
    let is_big = |e: &Expr| matches!(e, Expr::Value(ValueWithSpan { value: Value::Number(n, _), .. }) if !n.contains(['.', 'e', 'E']));
    if !elements.iter().any(is_big) {
        return;
    }
    for element in elements.iter_mut() {
        if let Expr::Cast { data_type: SqlDataType::Int(None), expr: inner, .. } = element
            && matches!(inner.as_ref(), Expr::Value(ValueWithSpan { value: Value::Number(..), .. }))
        {
            let literal = std::mem::replace(inner.as_mut(), Expr::value(Value::Null));
            *element = literal;
        }
    }
}

/// Types expressions against the input rows.
pub struct Typer<'a> {
    pub state: &'a SessionState,
    pub schema: &'a DFSchema,
    /// Columns keep their source qualifiers (a join: `L.A` and `R.A` differ); with one
    /// source they are dropped.
    pub qualified: bool,
}

impl Typer<'_> {
    /// The type DataFusion gives `expr`, if it plans.
    pub fn type_of(&self, expr: &Expr) -> Option<DataType> {
        self.check(expr).ok()
    }

    /// The type of `expr` with its literals typed as ksqlDB types them (`1` is an INTEGER),
    /// or why it does not plan.
    pub fn check_as_ksql(&self, expr: &Expr) -> Result<DataType, String> {
        let mut typed = expr.clone();
        type_literals(&mut typed);
        self.check(&typed)
    }

    /// The type DataFusion gives `expr`, or why it does not plan (DataFusion's prefixes
    /// removed).
    pub fn check(&self, expr: &Expr) -> Result<DataType, String> {
        // One source: its alias need not qualify columns for typing.
        let mut expr = if self.qualified { expr.clone() } else { crate::engine::plan::unqualified(expr) };
        rewrite_constructors(&mut expr).map_err(|e| e.message)?;
        let typed = crate::engine::plan::guarded(|| {
            self.state
                .create_logical_expr_from_sql_expr(ExprWithAlias { expr: expr.clone(), alias: None }, self.schema)
                .and_then(|logical| datafusion::logical_expr::ExprSchemable::get_type(&logical, self.schema))
        })
        .map_err(|e| e.message)?;
        typed.map_err(|e| {
            let mut message = e.to_string();
            for prefix in ["Error during planning: ", "Execution error: ", "This feature is not implemented: "] {
                while let Some(rest) = message.strip_prefix(prefix) {
                    message = rest.to_string();
                }
            }
            message
        })
    }
}

/// Rewrites that need types. `context` starts ksqlDB's messages ("Invalid Predicate" for a
/// WHERE, "Invalid Select" for a projection).
pub fn rewrite_typed(expr: &mut Expr, typer: &Typer<'_>, context: &str) -> Result<(), PlanError> {
    let parameters = lambda_parameters(expr);
    // A lambda's parameter shadows a column of its name, which the typer would find.
    let mentions_parameter = |e: &Expr| {
        let mut found = false;
        let _ = datafusion::sql::sqlparser::ast::visit_expressions(e, |e: &Expr| {
            if let Expr::Identifier(ident) = e
                && parameters.iter().any(|p| p.eq_ignore_ascii_case(&ident.value))
            {
                found = true;
            }
            ControlFlow::<()>::Continue(())
        });
        found
    };
    let outcome = visit_expressions_mut(expr, |expr: &mut Expr| {
        if let Expr::Function(function) = expr
            && let Some(refusal) =
                non_literal_parameter(function).or_else(|| unresolved_call(function, typer, &mentions_parameter))
        {
            return ControlFlow::Break(refusal);
        }
        let is_null = |e: &Expr| matches!(e, Expr::Value(v) if v.value == Value::Null);
        let result = match expr {
            // ksqlDB has no arithmetic with an untyped NULL.
            Expr::BinaryOp { left, op, right } if is_arithmetic(op) && (is_null(left) || is_null(right)) => {
                let type_name = |e: &Expr| {
                    if is_null(e) {
                        "null".to_string()
                    } else {
                        typer
                            .check_as_ksql(e)
                            .ok()
                            .map_or_else(|| "unknown".into(), |t| crate::sql::types::ksql_type_name(&t))
                    }
                };
                let text = |e: &Expr| if is_null(e) { "null".to_string() } else { ksql_text(e) };
                Err(PlanError::user(format!(
                    "Error processing expression: ({} {op} {}). Arithmetic on types {} and {} are not supported.",
                    text(left),
                    text(right),
                    type_name(left),
                    type_name(right)
                )))
            }
            Expr::BinaryOp { left, op: op @ BinaryOperator::Plus, right } => {
                let is_string = |e: &Expr| !mentions_parameter(e) && typer.type_of(e).is_some_and(|t| is_string(&t));
                if is_string(left) || is_string(right) {
                    *op = BinaryOperator::StringConcat;
                }
                Ok(())
            }
            Expr::InList { expr: needle, list, .. } => coerce_in_list(needle, list, typer, context),
            Expr::Between { expr: tested, low, high, .. } if is_time_column(tested) => {
                timestamp_text_to_millis(low).and_then(|()| timestamp_text_to_millis(high))
            }
            Expr::Array(array) => coerce_elements(&mut array.elem, typer),
            Expr::Function(function) if function.name.to_string().eq_ignore_ascii_case("map") => {
                match assignment_args(function) {
                    Some(pairs) => {
                        let (mut keys, mut values): (Vec<Expr>, Vec<Expr>) = pairs.into_iter().unzip();
                        coerce_elements(&mut keys, typer).and_then(|()| coerce_elements(&mut values, typer)).map(|()| {
                            let mut coerced = keys.into_iter().zip(values);
                            let _ = for_each_assignment(function, |key, value| {
                                if let Some((k, v)) = coerced.next() {
                                    (*key, *value) = (k, v);
                                }
                                Ok(true)
                            });
                        })
                    }
                    None => Ok(()),
                }
            }
            Expr::Function(function) if function.name.to_string() == "make_array" => match &mut function.args {
                FunctionArguments::List(list) => {
                    let mut elements = unnamed_arguments(&list.args);
                    let coerced = coerce_elements(&mut elements, typer);
                    if coerced.is_ok() && elements.len() == list.args.len() {
                        for (arg, element) in list.args.iter_mut().zip(elements) {
                            *arg = FunctionArg::Unnamed(FunctionArgExpr::Expr(element));
                        }
                    }
                    coerced
                }
                _ => Ok(()),
            },
            // ksqlDB compares without SQL's unknown: a comparison with a null is false.
            Expr::BinaryOp { left, op, right } if is_comparison(op) => {
                let converted = if is_time_column(left) {
                    timestamp_text_to_millis(right)
                } else if is_time_column(right) {
                    timestamp_text_to_millis(left)
                } else {
                    Ok(())
                };
                if let Err(refusal) = converted {
                    return ControlFlow::Break(refusal);
                }
                if is_null(left) || is_null(right) {
                    // ksqlDB names the types' base names, NULL for the null literal.
                    let base_type = |e: &Expr| {
                        if is_null(e) {
                            return "NULL".to_string();
                        }
                        let name = typer
                            .check_as_ksql(e)
                            .map_or_else(|_| "NULL".into(), |t| crate::sql::types::ksql_type_name(&t));
                        name.split(['(', '<']).next().unwrap_or_default().to_string()
                    };
                    Err(PlanError::user(format!(
                        "Comparison with NULL not supported: {} {op} {}\nUse 'IS NULL' or 'IS NOT NULL' instead.",
                        base_type(left),
                        base_type(right)
                    )))
                } else if !mentions_parameter(left)
                    && !mentions_parameter(right)
                    && let Some(refusal) = invalid_comparison(left, op, right, typer)
                {
                    Err(refusal)
                } else {
                    let compared = std::mem::replace(expr, Expr::value(Value::Null));
                    *expr =
                        call("coalesce", vec![Expr::Nested(Box::new(compared)), Expr::value(Value::Boolean(false))]);
                    Ok(())
                }
            }
            Expr::Function(function)
                if function.name.to_string() == "coalesce"
                    && matches!(&function.args, FunctionArguments::List(l) if l.args.is_empty()) =>
            {
                Err(PlanError::user("Function 'COALESCE' does not accept parameters ()."))
            }
            // A cast of an ARRAY, MAP or STRUCT to a string is ksqlDB's (Java's) text of it.
            Expr::Cast { kind: CastKind::Cast, expr: inner, data_type, .. }
                if matches!(data_type, SqlDataType::String(_) | SqlDataType::Varchar(_) | SqlDataType::Text)
                    && typer
                        .type_of(inner)
                        .is_some_and(|t| matches!(t, DataType::List(_) | DataType::Map(..) | DataType::Struct(_))) =>
            {
                let inner = std::mem::replace(inner.as_mut(), Expr::value(Value::Null));
                *expr = call("ksql_cast", vec![inner, Expr::value(Value::SingleQuotedString("STRING".into()))]);
                Ok(())
            }
            // SUM starts at 0 in ksqlDB (DataFusion's is null until a value is not), and SUM
            // of an INT is an INT (DataFusion widens it to BIGINT).
            Expr::Function(function)
                if function.name.to_string().eq_ignore_ascii_case("sum")
                    && let FunctionArguments::List(list) = &function.args
                    && let [FunctionArg::Unnamed(FunctionArgExpr::Expr(argument))] = list.args.as_slice()
                    && let Some(argument_type @ (DataType::Int32 | DataType::Int64 | DataType::Float64)) =
                        typer.type_of(argument) =>
            {
                let sum = std::mem::replace(expr, Expr::value(Value::Null));
                let zero = Expr::value(Value::Number(
                    if argument_type == DataType::Float64 { "0E0" } else { "0" }.into(),
                    false,
                ));
                let started = call("coalesce", vec![sum, zero]);
                *expr = if argument_type == DataType::Int32 {
                    Expr::Cast {
                        kind: CastKind::Cast,
                        expr: Box::new(started),
                        data_type: SqlDataType::Int(None),
                        array: false,
                        format: None,
                    }
                } else {
                    started
                };
                Ok(())
            }
            // AVG of no values is 0.0 in ksqlDB, not null.
            Expr::Function(function)
                if function.name.to_string().eq_ignore_ascii_case("avg")
                    && let FunctionArguments::List(list) = &function.args
                    && list.args.len() == 1 =>
            {
                let average = std::mem::replace(expr, Expr::value(Value::Null));
                *expr = call("coalesce", vec![average, Expr::value(Value::Number("0E0".into(), false))]);
                Ok(())
            }
            _ => Ok(()),
        };
        match result {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => ControlFlow::Break(e),
        }
    });
    match outcome {
        ControlFlow::Break(e) => Err(e),
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// The elements of an array (or a map's keys or values) brought to one type as ksqlDB's
/// constructors do: the type of the elements that are not literals (else of the literals),
/// and the literals converted to it — text to a number or a boolean when it reads as one
/// (`'2e1'` is 20), numbers and booleans to text; text that does not read is refused with
/// ksqlDB's message.
fn coerce_elements(elements: &mut [Expr], typer: &Typer<'_>) -> Result<(), PlanError> {
    let literal_text = |e: &Expr| match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    };
    let is_literal = |e: &Expr| {
        matches!(e, Expr::Value(_))
            || matches!(e, Expr::Cast { expr, .. } if matches!(expr.as_ref(), Expr::Value(_)))
            || matches!(e, Expr::UnaryOp { expr, .. } if matches!(expr.as_ref(), Expr::Value(_)))
    };
    let typed = |e: &Expr| typer.check_as_ksql(e).ok();
    let types: Vec<Option<DataType>> =
        elements.iter().map(|e| if is_null_literal(e) { None } else { typed(e) }).collect();
    let rank = |t: &DataType| match t {
        DataType::Int32 => 1,
        DataType::Int64 => 2,
        DataType::Decimal128(..) => 3,
        DataType::Float64 => 4,
        _ => 0,
    };
    // The elements that decide: those that are not literals, else all.
    let deciding: Vec<&DataType> = {
        let columns: Vec<&DataType> =
            elements.iter().zip(&types).filter(|(e, _)| !is_literal(e)).filter_map(|(_, t)| t.as_ref()).collect();
        if columns.is_empty() { types.iter().flatten().filter(|t| !is_string(t)).collect() } else { columns }
    };
    let Some(first) = deciding.first() else { return Ok(()) };
    let target = if deciding.iter().all(|t| rank(t) > 0) {
        deciding.iter().copied().max_by_key(|t| rank(t)).cloned().unwrap_or(DataType::Null)
    } else {
        (*first).clone()
    };
    for (element, element_type) in elements.iter_mut().zip(&types) {
        let Some(element_type) = element_type else { continue };
        if element_type == &target || !is_literal(element) {
            continue;
        }
        let invalid =
            |text: &str| PlanError::user(format!("invalid input syntax for type {}: \"{text}\".", type_name(&target)));
        match (&target, literal_text(element)) {
            (t, Some(text)) if rank(t) > 0 => {
                let number: f64 = text.trim().parse().map_err(|_| invalid(&text))?;
                let whole = number.fract() == 0.0;
                let replacement = match t {
                    DataType::Int32 if whole && number.abs() <= f64::from(i32::MAX) => {
                        format!("CAST({} AS INT)", number as i64)
                    }
                    DataType::Int64 if whole && number.abs() < 9.2e18 => format!("CAST({} AS BIGINT)", number as i64),
                    DataType::Float64 => format!("{number:e}"),
                    DataType::Decimal128(..) => text.trim().to_owned(),
                    _ => return Err(invalid(&text)),
                };
                *element = parse_expression(&replacement).ok_or_else(|| invalid(&text))?;
            }
            (DataType::Boolean, Some(text)) => {
                let value = parse_boolean(text.trim()).ok_or_else(|| invalid(&text))?;
                *element = Expr::value(Value::Boolean(value));
            }
            (t, None) if is_string(t) => {
                let literal = match &*element {
                    Expr::Cast { expr, .. } => expr.as_ref().clone(),
                    other => other.clone(),
                };
                let text = match literal {
                    Expr::Value(v) => match v.value {
                        Value::Number(n, _) => n,
                        Value::Boolean(b) => b.to_string(),
                        _ => continue,
                    },
                    _ => continue,
                };
                *element = Expr::value(Value::SingleQuotedString(text));
            }
            _ => {}
        }
    }
    Ok(())
}

/// One expression parsed in Eddy's dialect.
fn parse_expression(text: &str) -> Option<Expr> {
    let dialect = crate::sql::dialect::EddyDialect::default();
    datafusion::sql::sqlparser::parser::Parser::new(&dialect).try_with_sql(text).ok()?.parse_expr().ok()
}

/// The items of `needle IN (list)` in `needle`'s type, as ksqlDB converts them.
fn coerce_in_list(needle: &Expr, list: &mut [Expr], typer: &Typer<'_>, context: &str) -> Result<(), PlanError> {
    let Some(target) = typer.type_of(needle) else { return Ok(()) };
    // ksqlDB names the type the list has widened to so far: a DECIMAL grows to hold the
    // numbers before the one refused.
    let mut widened = target.clone();
    for item in list.iter_mut() {
        let shown = ksql_text(item);
        let literal_type = typer.check_as_ksql(item).ok();
        match coerce_to(item, &target, typer, context)? {
            Coerced::Done => {
                if let (DataType::Decimal128(p, s), Some(t)) = (&widened, &literal_type) {
                    widened = widen_decimal(*p, *s, t).unwrap_or(widened);
                }
            }
            Coerced::Mismatch(found) => {
                return Err(PlanError::user(format!(
                    "{context}: operator does not exist: {} = {} ({shown})\nHint: You might need to add explicit type casts.",
                    type_name(&widened),
                    type_name(&found)
                )));
            }
        }
    }
    Ok(())
}

/// DECIMAL(precision, scale) widened to hold a number of type `other` too, as ksqlDB widens:
/// the larger scale and the larger count of integer digits (INTEGER has 10, BIGINT 19).
fn widen_decimal(precision: u8, scale: i8, other: &DataType) -> Option<DataType> {
    let (other_precision, other_scale) = match other {
        DataType::Int32 => (10, 0),
        DataType::Int64 => (19, 0),
        DataType::Decimal128(p, s) => (*p, *s),
        _ => return None,
    };
    let digits = (i16::from(precision) - i16::from(scale)).max(i16::from(other_precision) - i16::from(other_scale));
    let scale = scale.max(other_scale);
    let precision = u8::try_from(digits + i16::from(scale)).ok()?.min(38);
    Some(DataType::Decimal128(precision, scale))
}

enum Coerced {
    Done,
    /// The expression has this type, which cannot compare with the target.
    Mismatch(DataType),
}

/// Converts the literals of `expr` (a literal, or an ARRAY, MAP or STRUCT constructor of
/// them) to `target` as ksqlDB does; other expressions must have a comparable type. A
/// STRUCT constructor is completed with null fields and put in the target's field order; one
/// with fields the target lacks can never be equal, and becomes NULL.
fn coerce_to(expr: &mut Expr, target: &DataType, typer: &Typer<'_>, context: &str) -> Result<Coerced, PlanError> {
    let invalid = |kind: &DataType, text: &str| {
        let name = type_name(kind);
        let kind = name.split('(').next().unwrap_or(&name).to_owned();
        PlanError::user(format!("{context}: invalid input syntax for type {kind}: \"{text}\"."))
    };
    match expr {
        Expr::Value(ValueWithSpan { value, .. }) => {
            let converted = match (value.clone(), target) {
                (Value::Null, _) => return Ok(Coerced::Done),
                (Value::SingleQuotedString(text), t) if is_string(t) => Value::SingleQuotedString(text),
                (Value::SingleQuotedString(text), DataType::Boolean) => {
                    Value::Boolean(parse_boolean(&text).ok_or_else(|| invalid(target, &text))?)
                }
                (Value::SingleQuotedString(text), t) if t.is_numeric() => {
                    let trimmed = text.trim();
                    // "4.000" is an INTEGER 4 to ksqlDB; "4.5" is not.
                    let valid = match t {
                        DataType::Int32 | DataType::Int64 => {
                            trimmed.parse::<i64>().is_ok() || trimmed.parse::<f64>().is_ok_and(|f| f.fract() == 0.0)
                        }
                        _ => trimmed.parse::<f64>().is_ok(),
                    };
                    if !valid {
                        return Err(invalid(target, &text));
                    }
                    Value::Number(trimmed.to_string(), false)
                }
                (Value::Number(n, _), t) if is_string(t) => Value::SingleQuotedString(n),
                (Value::Boolean(b), t) if is_string(t) => Value::SingleQuotedString(b.to_string()),
                (Value::Number(n, long), t) if t.is_numeric() => Value::Number(n, long),
                (Value::Boolean(b), DataType::Boolean) => Value::Boolean(b),
                (other, _) => {
                    return Ok(Coerced::Mismatch(match other {
                        Value::Boolean(_) => DataType::Boolean,
                        Value::Number(ref n, _) if n.contains('.') => DataType::Decimal128(2, 1),
                        Value::Number(..) => DataType::Int32,
                        _ => DataType::Utf8,
                    }));
                }
            };
            *value = converted;
            Ok(Coerced::Done)
        }
        Expr::Array(array) if matches!(target, DataType::List(_)) => {
            let DataType::List(item) = target else { return Ok(Coerced::Done) };
            for element in array.elem.iter_mut() {
                if let Coerced::Mismatch(_) = coerce_to(element, item.data_type(), typer, context)? {
                    return Ok(Coerced::Mismatch(
                        typer.check_as_ksql(expr).ok().or_else(|| typer.type_of(expr)).unwrap_or(DataType::Null),
                    ));
                }
            }
            Ok(Coerced::Done)
        }
        Expr::Function(function) if constructor(function, "map") && matches!(target, DataType::Map(..)) => {
            let DataType::Map(entries, _) = target else { return Ok(Coerced::Done) };
            let DataType::Struct(kv) = entries.data_type() else { return Ok(Coerced::Done) };
            let mismatched = for_each_assignment(function, |key, value| {
                Ok(matches!(coerce_to(key, kv[0].data_type(), typer, context)?, Coerced::Mismatch(_))
                    || matches!(coerce_to(value, kv[1].data_type(), typer, context)?, Coerced::Mismatch(_)))
            })?;
            if mismatched {
                return Ok(Coerced::Mismatch(typer.type_of(expr).unwrap_or(DataType::Null)));
            }
            Ok(Coerced::Done)
        }
        Expr::Function(function) if constructor(function, "struct") && matches!(target, DataType::Struct(_)) => {
            let DataType::Struct(fields) = target else { return Ok(Coerced::Done) };
            let Some(pairs) = assignment_args(function) else { return Ok(Coerced::Done) };
            let mut by_name: Vec<(String, Expr)> = Vec::with_capacity(pairs.len());
            for (name, value) in pairs {
                let Expr::Identifier(ident) = name else { return Ok(Coerced::Done) };
                by_name.push((ident.value, value));
            }
            if by_name.iter().any(|(name, _)| fields.iter().all(|f| f.name() != name)) {
                *expr = Expr::value(Value::Null);
                return Ok(Coerced::Done);
            }
            let mut completed = Vec::with_capacity(fields.len());
            for field in fields.iter() {
                let mut value = match by_name.iter().find(|(name, _)| name == field.name()) {
                    Some((_, value)) => value.clone(),
                    None => Expr::Cast {
                        kind: CastKind::Cast,
                        expr: Box::new(Expr::value(Value::Null)),
                        data_type: SqlDataType::Custom(
                            ObjectName::from(vec![Ident::new(type_name(field.data_type()))]),
                            vec![],
                        ),
                        array: false,
                        format: None,
                    },
                };
                if let Coerced::Mismatch(_) = coerce_to(&mut value, field.data_type(), typer, context)? {
                    return Ok(Coerced::Mismatch(typer.type_of(expr).unwrap_or(DataType::Null)));
                }
                completed.push(Expr::BinaryOp {
                    left: Box::new(Expr::Identifier(Ident::with_quote('`', field.name().clone()))),
                    op: BinaryOperator::Assignment,
                    right: Box::new(value),
                });
            }
            *expr = call("struct", completed);
            Ok(Coerced::Done)
        }
        _ => match typer.type_of(expr) {
            Some(found) if !comparable(target, &found) => {
                Ok(Coerced::Mismatch(typer.check_as_ksql(expr).unwrap_or(found)))
            }
            _ => Ok(Coerced::Done),
        },
    }
}

fn constructor(function: &Function, name: &str) -> bool {
    function.name.to_string() == name && assignment_args(function).is_some()
}

/// Calls `f` on the key and value of each `key := value` argument; true if any call did.
fn for_each_assignment(
    function: &mut Function,
    mut f: impl FnMut(&mut Expr, &mut Expr) -> Result<bool, PlanError>,
) -> Result<bool, PlanError> {
    let FunctionArguments::List(list) = &mut function.args else { return Ok(false) };
    let mut any = false;
    for arg in list.args.iter_mut() {
        if let FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::BinaryOp {
            left,
            op: BinaryOperator::Assignment,
            right,
        })) = arg
        {
            any |= f(left, right)?;
        }
    }
    Ok(any)
}

/// ksqlDB's refusal of an aggregate's parameter that must be a literal (TOPK's and
/// TOPKDISTINCT's `k`, the count and `ignoreNulls` of LATEST_BY_OFFSET and EARLIEST_BY_OFFSET)
/// but is an expression.
fn non_literal_parameter(function: &Function) -> Option<PlanError> {
    let name = function.name.to_string().to_uppercase();
    let FunctionArguments::List(list) = &function.args else { return None };
    let first_literal = match name.as_str() {
        "TOPK" | "TOPKDISTINCT" => list.args.len().checked_sub(1)?,
        "LATEST_BY_OFFSET" | "EARLIEST_BY_OFFSET" => 1,
        _ => return None,
    };
    let is_literal = |e: &Expr| match e {
        Expr::Value(_) => true,
        Expr::UnaryOp { expr, .. } | Expr::Cast { expr, .. } => matches!(expr.as_ref(), Expr::Value(_)),
        _ => false,
    };
    list.args.iter().enumerate().skip(first_literal).find_map(|(index, argument)| match argument {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) if !is_literal(e) => Some(PlanError::user(format!(
            "Parameter {} passed to function {name} must be a literal constant, but was expression: '{}'",
            index + 1,
            ksql_text(e)
        ))),
        _ => None,
    })
}

/// ksqlDB's refusal of a call of one of its scalar functions that no variation takes:
/// "Function 'x' does not accept parameters (…)", with the variations there are. `None` when
/// the call resolves, or when what fails is not the call itself (an argument that does not
/// plan, a lambda's parameter).
fn unresolved_call(
    function: &Function,
    typer: &Typer<'_>,
    mentions_parameter: &dyn Fn(&Expr) -> bool,
) -> Option<PlanError> {
    let name = function.name.to_string().to_lowercase();
    // COALESCE names itself in capitals in ksqlDB's refusal (an arm of `rewrite_typed`).
    let documented = crate::engine::udf::catalogue::find(&name).filter(|f| {
        f.kind == crate::engine::udf::catalogue::FunctionKind::Scalar && f.category != "LAMBDA" && f.name != "COALESCE"
    })?;
    let refusal = |types: &str| {
        let mut message = format!("Function '{name}' does not accept parameters ({types}).\nValid alternatives are:");
        for signature in documented.signatures {
            message.push_str(&format!("\n{signature}"));
        }
        PlanError::user(message)
    };
    let FunctionArguments::List(list) = &function.args else { return None };
    let mut arguments = Vec::with_capacity(list.args.len());
    for argument in &list.args {
        match argument {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => arguments.push(e),
            FunctionArg::Unnamed(FunctionArgExpr::Wildcard) if list.args.len() == 1 => return Some(refusal("")),
            _ => return None,
        }
    }
    if arguments.iter().any(|a| mentions_parameter(a) || matches!(a, Expr::Lambda(_))) {
        return None;
    }
    let typed = |e: &Expr| typer.check_as_ksql(e);
    let message = typed(&Expr::Function(function.clone())).err()?;
    if message.starts_with(&format!("Function '{name}' does not accept"))
        || message.starts_with(&format!("Function '{name}' cannot be resolved"))
    {
        return Some(PlanError::user(message));
    }
    let mut types = Vec::with_capacity(arguments.len());
    for argument in arguments {
        let is_null = matches!(argument, Expr::Value(v) if v.value == Value::Null);
        types.push(if is_null { "null".to_string() } else { type_name(&typed(argument).ok()?) });
    }
    Some(refusal(&types.join(", ")))
}

/// The names of the parameters of the lambdas in `expr`.
fn lambda_parameters(expr: &Expr) -> Vec<String> {
    let mut names = Vec::new();
    let _ = datafusion::sql::sqlparser::ast::visit_expressions(expr, |e: &Expr| {
        if let Expr::Lambda(lambda) = e {
            names.extend(lambda.params.iter().map(|p| p.name.value.clone()));
        }
        ControlFlow::<()>::Continue(())
    });
    names
}

/// ksqlDB's refusal of a comparison between types that do not compare: numbers with numbers,
/// strings with strings and with times, dates and timestamps with each other and with
/// strings, times with times and strings, bytes with bytes; booleans, arrays, maps and structs
/// only with their own kind and only for (in)equality.
fn invalid_comparison(left: &Expr, op: &BinaryOperator, right: &Expr, typer: &Typer<'_>) -> Option<PlanError> {
    let typed = |e: &Expr| typer.check_as_ksql(e).ok();
    let (left_type, right_type) = (typed(left)?, typed(right)?);
    // ROWTIME, WINDOWSTART and WINDOWEND compare with a timestamp's text (ksqlDB parses it).
    if (is_time_column(left) && is_string(&right_type)) || (is_time_column(right) && is_string(&left_type)) {
        return None;
    }
    let equality = matches!(op, BinaryOperator::Eq | BinaryOperator::NotEq);
    let is_temporal = |t: &DataType| matches!(t, DataType::Date32 | DataType::Timestamp(..));
    let valid = match &left_type {
        DataType::Null => true,
        _ if right_type == DataType::Null => true,
        l if l.is_numeric() => right_type.is_numeric(),
        l if is_string(l) => is_string(&right_type) || is_temporal(&right_type) || is_time(&right_type),
        DataType::Boolean => right_type == DataType::Boolean && equality,
        DataType::List(_) => matches!(right_type, DataType::List(_)) && equality,
        DataType::Map(..) => matches!(right_type, DataType::Map(..)) && equality,
        DataType::Struct(_) => matches!(right_type, DataType::Struct(_)) && equality,
        l if is_time(l) => is_time(&right_type) || is_string(&right_type),
        l if is_temporal(l) => is_temporal(&right_type) || is_string(&right_type),
        DataType::Binary => right_type == DataType::Binary,
        _ => true,
    };
    let operator = comparison_name(op)?;
    (!valid).then(|| {
        PlanError::user(format!(
            "Cannot compare {} ({}) to {} ({}) with {operator}.",
            ksql_text(left),
            type_name(&left_type),
            ksql_text(right),
            type_name(&right_type)
        ))
    })
}

/// Whether `e` names ROWTIME, WINDOWSTART or WINDOWEND, which compare with a timestamp's text.
fn is_time_column(e: &Expr) -> bool {
    let names = ["ROWTIME", "WINDOWSTART", "WINDOWEND"];
    match e {
        Expr::Identifier(ident) => names.contains(&ident.value.to_uppercase().as_str()),
        Expr::CompoundIdentifier(parts) => {
            parts.last().is_some_and(|i| names.contains(&i.value.to_uppercase().as_str()))
        }
        _ => false,
    }
}

/// A string literal compared with ROWTIME, WINDOWSTART or WINDOWEND made the milliseconds it
/// names, as ksqlDB does: `'2018'`, `'2018-01'`, `'2018-01-02T03'`, … `'…T03:04:05.678'`, with
/// an optional `Z` or offset (`+01:00`, `-0500`); UTC otherwise.
fn timestamp_text_to_millis(expr: &mut Expr) -> Result<(), PlanError> {
    let Expr::Value(v) = &*expr else { return Ok(()) };
    let Value::SingleQuotedString(text) = &v.value else { return Ok(()) };
    let millis = partial_timestamp_millis(text).ok_or_else(|| {
        PlanError::user(format!(
            "Failed to parse timestamp '{text}': use the format yyyy-MM-dd'T'HH:mm:ss.SSS, any part from the end \
             left out, with an optional time zone"
        ))
    })?;
    *expr = Expr::value(Value::Number(millis.to_string(), false));
    Ok(())
}

fn partial_timestamp_millis(text: &str) -> Option<i64> {
    const TIME: &str = "00:00:00.000";
    let (date, time, zone) = match text.split_once('T') {
        Some((date, rest)) => {
            let zone_at = rest.find(['+', '-']).unwrap_or(rest.len());
            let (time, zone) = rest.split_at(zone_at);
            (date.to_owned(), time.trim_end_matches('Z').to_owned(), zone)
        }
        None => {
            let parts = text.split('-').count();
            let date = match parts {
                1 => format!("{text}-01-01"),
                2 => format!("{text}-01"),
                _ => text.to_owned(),
            };
            (date, String::new(), "")
        }
    };
    let time = if time.len() >= TIME.len() { time } else { format!("{time}{}", TIME.get(time.len()..)?) };
    let local = chrono::NaiveDateTime::parse_from_str(&format!("{date}T{time}"), "%Y-%m-%dT%H:%M:%S%.3f").ok()?;
    let offset_seconds = if zone.is_empty() { 0 } else { crate::engine::udf::dates::zone(zone)?.local_minus_utc() };
    Some(local.and_utc().timestamp_millis() - i64::from(offset_seconds) * 1000)
}

fn is_time(t: &DataType) -> bool {
    matches!(t, DataType::Time32(_) | DataType::Time64(_))
}

/// Whether values of two types compare (numbers with numbers, like with like).
fn comparable(a: &DataType, b: &DataType) -> bool {
    match (a, b) {
        (DataType::Null, _) | (_, DataType::Null) => true,
        (a, b) if a.is_numeric() && b.is_numeric() => true,
        (a, b) if is_string(a) && is_string(b) => true,
        (DataType::List(x), DataType::List(y)) => comparable(x.data_type(), y.data_type()),
        (DataType::Map(x, _), DataType::Map(y, _)) => match (x.data_type(), y.data_type()) {
            (DataType::Struct(x), DataType::Struct(y)) if x.len() == 2 && y.len() == 2 => {
                comparable(x[1].data_type(), y[1].data_type())
            }
            _ => true,
        },
        (DataType::Struct(x), DataType::Struct(y)) => x
            .iter()
            .all(|f| y.iter().find(|g| g.name() == f.name()).is_none_or(|g| comparable(f.data_type(), g.data_type()))),
        (a, b) => std::mem::discriminant(a) == std::mem::discriminant(b),
    }
}

/// A type as ksqlDB names it in messages (DataFusion's own types by their ksqlDB kin).
fn type_name(t: &DataType) -> String {
    crate::sql::ast::SqlType::from_arrow(t)
        .map_or_else(|| ksql_type_name(t), |t| ksql_type_name(&t.to_arrow(&|_| None).unwrap_or(DataType::Null)))
}

/// A comparison operator as ksqlDB names it in messages (its `ComparisonExpression.Type`).
pub fn comparison_name(op: &BinaryOperator) -> Option<&'static str> {
    Some(match op {
        BinaryOperator::Eq => "EQUAL",
        BinaryOperator::NotEq => "NOT_EQUAL",
        BinaryOperator::Lt => "LESS_THAN",
        BinaryOperator::LtEq => "LESS_THAN_OR_EQUAL",
        BinaryOperator::Gt => "GREATER_THAN",
        BinaryOperator::GtEq => "GREATER_THAN_OR_EQUAL",
        _ => return None,
    })
}

/// An expression as ksqlDB prints it: function names upper-cased.
pub fn ksql_text(expr: &Expr) -> String {
    let mut expr = expr.clone();
    let _ = visit_expressions_mut(&mut expr, |e: &mut Expr| {
        if let Expr::Function(f) = e {
            for part in f.name.0.iter_mut() {
                if let datafusion::sql::sqlparser::ast::ObjectNamePart::Identifier(ident) = part {
                    ident.value = ident.value.to_uppercase();
                }
            }
        }
        ControlFlow::<()>::Continue(())
    });
    expr.to_string().replace(" := ", ":=")
}

fn is_arithmetic(op: &BinaryOperator) -> bool {
    matches!(
        op,
        BinaryOperator::Plus
            | BinaryOperator::Minus
            | BinaryOperator::Multiply
            | BinaryOperator::Divide
            | BinaryOperator::Modulo
    )
}

fn is_comparison(op: &BinaryOperator) -> bool {
    matches!(
        op,
        BinaryOperator::Eq
            | BinaryOperator::NotEq
            | BinaryOperator::Lt
            | BinaryOperator::LtEq
            | BinaryOperator::Gt
            | BinaryOperator::GtEq
    )
}

fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// ksqlDB's boolean text: any prefix of TRUE/YES or FALSE/NO, in any case.
pub fn parse_boolean(text: &str) -> Option<bool> {
    let lower = text.trim().to_ascii_lowercase();
    if lower.is_empty() {
        return None;
    }
    if "true".starts_with(&lower) || "yes".starts_with(&lower) {
        Some(true)
    } else if "false".starts_with(&lower) || "no".starts_with(&lower) {
        Some(false)
    } else {
        None
    }
}

/// The `(name := value, …)` arguments of a constructor call, or `None` if they are not all
/// assignments (or there are none).
fn assignment_args(function: &Function) -> Option<Vec<(Expr, Expr)>> {
    let FunctionArguments::List(list) = &function.args else { return None };
    let mut pairs = Vec::with_capacity(list.args.len());
    for arg in &list.args {
        let FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::BinaryOp { left, op: BinaryOperator::Assignment, right })) =
            arg
        else {
            return None;
        };
        pairs.push((left.as_ref().clone(), right.as_ref().clone()));
    }
    (!pairs.is_empty()).then_some(pairs)
}

/// `name(args…)`.
pub fn call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args.into_iter().map(|e| FunctionArg::Unnamed(FunctionArgExpr::Expr(e))).collect(),
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_parse_as_ksqldb_reads_them() {
        assert_eq!(parse_boolean("TrUe"), Some(true));
        assert_eq!(parse_boolean("tr"), Some(true));
        assert_eq!(parse_boolean("Y"), Some(true));
        assert_eq!(parse_boolean("n"), Some(false));
        assert_eq!(parse_boolean("Not a boolean"), None);
    }
}
