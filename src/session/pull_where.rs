//! How a pull query over a table finds its rows, decided from its WHERE clause as ksqlDB
//! decides it: a key lookup, a range scan of the key, or a scan of the whole table.
//!
//! The clause is put in disjunctive normal form (`IN` becomes equalities joined by OR,
//! `BETWEEN` two bounds), then each disjunct is checked: every comparison must have a column
//! on one side and no column on the other, a key column only with `=` (ranges only when
//! range scans are on), every key column of a multi-column key bound, and so on. What does
//! not fit needs a table scan, which `ksql.query.pull.table.scan.enabled` allows (ksqlDB's
//! default) or refuses with ksqlDB's message. Keys compared with NULL, or with a value of
//! another type, are refused in any case.
//!
//! This only decides and refuses: the rows are then found by the query's filter over the
//! table's state, whatever the access.

use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr, UnaryOperator, Value};

use crate::catalog::{Column, ColumnRole, Source};
use crate::sql::ast::SqlType;

/// What the session's properties allow.
#[derive(Debug, Clone, Copy)]
pub(super) struct ScanOptions {
    /// `ksql.query.pull.table.scan.enabled` (default true).
    pub table_scans: bool,
    /// `ksql.query.pull.range.scan.enabled` (default true).
    pub range_scans: bool,
}

/// How the rows are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    KeyLookup,
    RangeScan,
    TableScan,
}

/// Beyond this many disjuncts a clause is not rewritten: it needs a table scan.
const MAX_DISJUNCTS: usize = 256;

/// A key column as ksqlDB prints it in messages: `` `ID` INTEGER KEY ``, or without the
/// backticks.
fn key_text(column: &Column, quoted: bool) -> String {
    if quoted {
        format!("`{}` {} KEY", column.name, column.sql_type)
    } else {
        format!("{} {} KEY", column.name, column.sql_type)
    }
}

/// Decides the access for `where_clause` over `source` (a table), or refuses it with
/// ksqlDB's message.
pub(super) fn access(where_clause: Option<&Expr>, source: &Source, options: ScanOptions) -> Result<Access, String> {
    let windowed = source.window_key_bytes() > 0;
    let keys: Vec<&Column> = source.columns.iter().filter(|c| c.role == ColumnRole::Key).collect();
    let table_scan = || {
        if options.table_scans {
            Ok(Access::TableScan)
        } else {
            Err("Query requires table scan to be enabled. Table scans can be enabled by setting \
                 ksql.query.pull.table.scan.enabled=true"
                .to_string())
        }
    };
    let Some(where_clause) = where_clause else { return table_scan() };
    let Some(disjuncts) = disjunctive_form(where_clause) else { return table_scan() };
    let checker = Checker { source, keys: &keys, windowed, options };
    for disjunct in &disjuncts {
        if checker.needs_table_scan(disjunct)? {
            return Ok(Access::TableScan);
        }
    }
    let mut lookups = Vec::with_capacity(disjuncts.len());
    for disjunct in &disjuncts {
        lookups.push(checker.constraint(disjunct)?);
    }
    let access = if lookups.contains(&Constraint::None) {
        Access::TableScan
    } else if lookups.iter().all(|c| *c == Constraint::Equal) {
        Access::KeyLookup
    } else if lookups.len() == 1 {
        Access::RangeScan
    } else {
        Access::TableScan
    };
    match access {
        Access::RangeScan if options.range_scans && !windowed => Ok(Access::RangeScan),
        Access::KeyLookup => Ok(Access::KeyLookup),
        _ => table_scan(),
    }
}

/// The clause as a list of disjuncts, each a list of conjuncts; None when it would be too
/// many.
fn disjunctive_form(expr: &Expr) -> Option<Vec<Vec<Expr>>> {
    let disjuncts = match expr {
        Expr::Nested(inner) => return disjunctive_form(inner),
        Expr::BinaryOp { left, op: BinaryOperator::Or, right } => {
            let mut left = disjunctive_form(left)?;
            left.extend(disjunctive_form(right)?);
            left
        }
        Expr::BinaryOp { left, op: BinaryOperator::And, right } => {
            let (left, right) = (disjunctive_form(left)?, disjunctive_form(right)?);
            if left.len().saturating_mul(right.len()) > MAX_DISJUNCTS {
                return None;
            }
            let mut product = Vec::with_capacity(left.len() * right.len());
            for l in &left {
                for r in &right {
                    product.push(l.iter().chain(r).cloned().collect());
                }
            }
            product
        }
        Expr::InList { expr: tested, list, negated: false } => {
            list.iter().map(|value| vec![compare(tested, BinaryOperator::Eq, value)]).collect()
        }
        Expr::Between { expr: tested, negated: false, low, high } => {
            vec![vec![compare(tested, BinaryOperator::GtEq, low), compare(tested, BinaryOperator::LtEq, high)]]
        }
        Expr::UnaryOp { op: UnaryOperator::Not, expr: inner } => match negated(inner) {
            Some(negation) => return disjunctive_form(&negation),
            None => vec![vec![expr.clone()]],
        },
        other => vec![vec![other.clone()]],
    };
    (disjuncts.len() <= MAX_DISJUNCTS).then_some(disjuncts)
}

fn compare(left: &Expr, op: BinaryOperator, right: &Expr) -> Expr {
    Expr::BinaryOp { left: Box::new(left.clone()), op, right: Box::new(right.clone()) }
}

/// `NOT expr` without the NOT, where the negation can be pushed inside.
fn negated(expr: &Expr) -> Option<Expr> {
    let not = |e: &Expr| Expr::UnaryOp { op: UnaryOperator::Not, expr: Box::new(e.clone()) };
    Some(match expr {
        Expr::Nested(inner) => return negated(inner),
        Expr::UnaryOp { op: UnaryOperator::Not, expr: inner } => inner.as_ref().clone(),
        Expr::BinaryOp { left, op: BinaryOperator::And, right } => {
            Expr::BinaryOp { left: Box::new(not(left)), op: BinaryOperator::Or, right: Box::new(not(right)) }
        }
        Expr::BinaryOp { left, op: BinaryOperator::Or, right } => {
            Expr::BinaryOp { left: Box::new(not(left)), op: BinaryOperator::And, right: Box::new(not(right)) }
        }
        Expr::BinaryOp { left, op, right } => {
            let inverse = match op {
                BinaryOperator::Eq => BinaryOperator::NotEq,
                BinaryOperator::NotEq => BinaryOperator::Eq,
                BinaryOperator::Lt => BinaryOperator::GtEq,
                BinaryOperator::LtEq => BinaryOperator::Gt,
                BinaryOperator::Gt => BinaryOperator::LtEq,
                BinaryOperator::GtEq => BinaryOperator::Lt,
                _ => return None,
            };
            compare(left, inverse, right)
        }
        _ => return None,
    })
}

/// A disjunct's bound on the key: every key column equal to a value, one range, or none
/// that a lookup can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Constraint {
    Equal,
    Range,
    None,
}

struct Checker<'a> {
    source: &'a Source,
    keys: &'a [&'a Column],
    windowed: bool,
    options: ScanOptions,
}

/// A column named directly (qualified by the source or not): its name as resolved.
fn column_name(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Nested(inner) => column_name(inner),
        Expr::Identifier(ident) => Some(crate::sql::types::resolved_name(ident)),
        Expr::CompoundIdentifier(parts) if parts.len() == 2 => parts.last().map(crate::sql::types::resolved_name),
        _ => None,
    }
}

fn mentions_column(expr: &Expr) -> bool {
    datafusion::sql::sqlparser::ast::visit_expressions(expr, |e: &Expr| match e {
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => std::ops::ControlFlow::Break(()),
        _ => std::ops::ControlFlow::Continue(()),
    })
    .is_break()
}

/// A comparison's column side and the other side (the column on the right first, as ksqlDB
/// looks).
fn sides(left: &Expr, right: &Expr) -> Option<(String, Expr)> {
    column_name(right).map(|c| (c, left.clone())).or_else(|| column_name(left).map(|c| (c, right.clone())))
}

fn conjunction(terms: &[Expr]) -> Expr {
    let mut terms = terms.iter().cloned();
    let first = terms.next().unwrap_or(Expr::Value(Value::Boolean(true).into()));
    terms.fold(first, |all, term| Expr::BinaryOp {
        left: Box::new(all),
        op: BinaryOperator::And,
        right: Box::new(term),
    })
}

impl Checker<'_> {
    /// ksqlDB's refusal of a WHERE clause a pull query cannot use, with its help text.
    fn invalid(&self, message: &str, windowed: bool) -> String {
        let window_help = if windowed {
            "\n - (optionally) limits the time bounds of the windowed table.\n\t Bounds on [`WINDOWSTART`, \
             `WINDOWEND`] are supported\n\t Supported operators are [EQUAL, GREATER_THAN, GREATER_THAN_OR_EQUAL, \
             LESS_THAN, LESS_THAN_OR_EQUAL]"
        } else {
            ""
        };
        format!(
            "{message}.{}\nPull queries require a WHERE clause that:\n - includes a key equality expression, e.g. `SELECT * \
             FROM X WHERE <key-column> = Y;`.\n - in the case of a multi-column key, is a conjunction of equality \
             expressions that cover all key columns.\n - to support range expressions, e.g.,  SELECT * FROM X WHERE \
             <key-column> < Y;`, range scans need to be enabled by setting \
             ksql.query.pull.range.scan.enabled=true{window_help}\nIf more flexible queries are needed, , table scans \
             can be enabled by setting ksql.query.pull.table.scan.enabled=true.",
            super::pull::PULL_QUERY_HELP
        )
    }

    /// A table scan where they are on, else ksqlDB's refusal.
    fn scan_or(&self, message: &str, windowed: bool) -> Result<(), String> {
        if self.options.table_scans { Ok(()) } else { Err(self.invalid(message, windowed)) }
    }

    fn key_index(&self, column: &str) -> Option<usize> {
        self.keys.iter().position(|k| k.name == column)
    }

    /// Whether the disjunct needs a table scan; refused where table scans are off.
    fn needs_table_scan(&self, disjunct: &[Expr]) -> Result<bool, String> {
        let mut seen = vec![false; self.keys.len()];
        let mut keyed = false;
        let mut scan = false;
        for term in disjunct {
            match term {
                Expr::BinaryOp { left, op, right } if crate::planner::rewrite::comparison_name(op).is_some() => {
                    let Some((column, other)) = sides(left, right) else {
                        scan = true;
                        self.scan_or("A comparison must directly reference a key column", self.windowed)?;
                        continue;
                    };
                    if mentions_column(&other) {
                        scan = true;
                        self.scan_or(
                            "A comparison must be between a key column and a resolvable expression",
                            self.windowed,
                        )?;
                        continue;
                    }
                    if column == "WINDOWSTART" || column == "WINDOWEND" {
                        if *op == BinaryOperator::NotEq {
                            return Err(self.invalid(&format!("Unsupported {column} bounds: NOT_EQUAL"), true));
                        }
                        if !self.windowed {
                            return Err(self.invalid("Cannot use WINDOWSTART/WINDOWEND on non-windowed source", false));
                        }
                        continue;
                    }
                    let Some(index) = self.key_index(&column) else { continue };
                    if *op == BinaryOperator::NotEq {
                        let keys: Vec<String> = self.keys.iter().map(|k| key_text(k, true)).collect();
                        scan = true;
                        self.scan_or(
                            &format!("Bound on key columns '[{}]' must currently be '='", keys.join(", ")),
                            self.windowed,
                        )?;
                    }
                    if seen[index] && !self.options.table_scans {
                        return Err(self.invalid(
                            "A comparison condition on the key column cannot be combined with other comparisons such \
                             as an IN predicate",
                            self.windowed,
                        ));
                    }
                    seen[index] = true;
                    keyed = true;
                }
                Expr::Like { expr: value, pattern, .. } | Expr::ILike { expr: value, pattern, .. } => {
                    let Some(column) = column_name(value) else {
                        scan = true;
                        self.scan_or("Like condition must be between strings", self.windowed)?;
                        continue;
                    };
                    if let Some(found) = self.source.columns.iter().find(|c| c.name == column)
                        && found.sql_type != SqlType::String
                    {
                        return Err(self.invalid(
                            &format!(
                                "The column type for Like condition must be VARCHAR. The column type is {}",
                                found.sql_type
                            ),
                            self.windowed,
                        ));
                    }
                    if !matches!(pattern.as_ref(), Expr::Value(v) if matches!(v.value, Value::SingleQuotedString(_) | Value::Null))
                    {
                        return Err(self.invalid("Like condition on non-string pattern", self.windowed));
                    }
                }
                other => {
                    scan = true;
                    self.scan_or(
                        &format!(
                            "Unsupported expression in WHERE clause: {}",
                            crate::planner::query::ksql_expression_text(other)
                        ),
                        false,
                    )?;
                }
            }
        }
        if scan {
            return Ok(true);
        }
        if !keyed {
            self.scan_or(
                &format!(
                    "WHERE clause missing key column for disjunct: {}",
                    crate::planner::query::ksql_expression_text(&conjunction(disjunct))
                ),
                self.windowed,
            )?;
            return Ok(true);
        }
        let bound = seen.iter().filter(|s| **s).count();
        if bound != self.keys.len() {
            let specified: Vec<String> =
                self.keys.iter().zip(&seen).filter(|(_, s)| **s).map(|(k, _)| format!("`{}`", k.name)).collect();
            let expected: Vec<String> = self.keys.iter().map(|k| key_text(k, true)).collect();
            self.scan_or(
                &format!(
                    "Multi-column sources must specify every key in the WHERE clause. Specified: [{}] Expected: [{}]",
                    specified.join(", "),
                    expected.join(", ")
                ),
                self.windowed,
            )?;
            return Ok(true);
        }
        Ok(false)
    }

    /// The disjunct's bound on the key; a key compared with NULL or with a value of another
    /// type is refused.
    fn constraint(&self, disjunct: &[Expr]) -> Result<Constraint, String> {
        // Per key column, the most selective operator: an equality wins, else the first.
        let mut operators: Vec<Option<BinaryOperator>> = vec![None; self.keys.len()];
        for term in disjunct {
            let Expr::BinaryOp { left, op, right } = term else { continue };
            let Some((column, other)) = sides(left, right) else { continue };
            let Some(index) = self.key_index(&column) else { continue };
            self.check_key_value(index, &other, term)?;
            if operators[index] != Some(BinaryOperator::Eq) && (*op == BinaryOperator::Eq || operators[index].is_none())
            {
                operators[index] = Some(op.clone());
            }
        }
        let bound: Vec<(usize, &BinaryOperator)> =
            operators.iter().enumerate().filter_map(|(i, op)| op.as_ref().map(|op| (i, op))).collect();
        Ok(match bound.as_slice() {
            [] => Constraint::None,
            [(_, BinaryOperator::Eq)] => Constraint::Equal,
            [(index, _)] if matches!(self.keys[*index].sql_type, SqlType::String | SqlType::Bytes) => Constraint::Range,
            [_] => Constraint::None,
            many if many.iter().all(|(_, op)| **op == BinaryOperator::Eq) => Constraint::Equal,
            _ => Constraint::None,
        })
    }

    /// A key's value: not NULL, and a literal of the key's kind (a string for a STRING key,
    /// a number for a numeric one).
    fn check_key_value(&self, index: usize, value: &Expr, term: &Expr) -> Result<(), String> {
        let key = self.keys[index];
        let value = match value {
            Expr::Nested(inner) => inner.as_ref(),
            other => other,
        };
        let Expr::Value(literal) = value else { return Ok(()) };
        let numeric_key =
            matches!(key.sql_type, SqlType::Int | SqlType::Bigint | SqlType::Double | SqlType::Decimal { .. });
        match &literal.value {
            Value::Null => Err(format!(
                "Primary key columns can not be NULL: {}",
                crate::planner::query::ksql_expression_text(term)
            )),
            Value::SingleQuotedString(text) if numeric_key => {
                Err(format!("'{text}' can not be converted to the type of the key column: {}", key_text(key, false)))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(sql: &str) -> Source {
        let statement = crate::sql::parse_one(sql).unwrap();
        let crate::sql::Statement::CreateSource(create) = statement else { panic!("not a CREATE") };
        crate::catalog::Catalog::default().plan_source(&create, sql.into()).unwrap()
    }

    fn where_of(sql: &str) -> Expr {
        let crate::sql::Statement::Select(query) = crate::sql::parse_one(sql).unwrap() else { panic!("not a SELECT") };
        let datafusion::sql::sqlparser::ast::SetExpr::Select(select) = query.query.body.as_ref() else { panic!() };
        select.selection.clone().unwrap()
    }

    const SCANS_OFF: ScanOptions = ScanOptions { table_scans: false, range_scans: true };
    const SCANS_ON: ScanOptions = ScanOptions { table_scans: true, range_scans: true };

    fn decide(table: &str, clause: &str, options: ScanOptions) -> Result<Access, String> {
        let source = source(table);
        access(Some(&where_of(&format!("SELECT * FROM T WHERE {clause};"))), &source, options)
    }

    const ONE_KEY: &str = "CREATE TABLE T (ID INT PRIMARY KEY, V STRING) WITH (KAFKA_TOPIC='t', VALUE_FORMAT='JSON');";
    const TWO_KEYS: &str =
        "CREATE TABLE T (A STRING PRIMARY KEY, B INT PRIMARY KEY, V INT) WITH (KAFKA_TOPIC='t', FORMAT='JSON');";

    #[test]
    fn key_equalities_are_lookups_and_in_lists_are_several() {
        assert_eq!(decide(ONE_KEY, "ID = 1", SCANS_OFF), Ok(Access::KeyLookup));
        assert_eq!(decide(ONE_KEY, "ID IN (1, 2, 3)", SCANS_OFF), Ok(Access::KeyLookup));
        assert_eq!(decide(ONE_KEY, "(ID = 1 OR ID = 2) AND V = 'x'", SCANS_OFF), Ok(Access::KeyLookup));
        assert_eq!(decide(TWO_KEYS, "A = 'x' AND B = 2", SCANS_OFF), Ok(Access::KeyLookup));
    }

    #[test]
    fn what_needs_a_scan_is_refused_when_scans_are_off_and_scanned_otherwise() {
        use Access::{KeyLookup, TableScan};
        for (clause, message, with_scans) in [
            ("V = 'x'", "WHERE clause missing key column for disjunct: (V = 'x')", TableScan),
            ("ID != 1", "Bound on key columns '[`ID` INTEGER KEY]' must currently be '='", TableScan),
            ("ID + 1 = 2", "A comparison must directly reference a key column", TableScan),
            ("ID = V", "A comparison must be between a key column and a resolvable expression", TableScan),
            // With scans on, each disjunct's equality is the most selective bound: lookups.
            ("ID = 1 AND ID IN (1, 2)", "cannot be combined with other comparisons such as an IN predicate", KeyLookup),
            ("ID > 1", "Query requires table scan to be enabled", TableScan),
        ] {
            let refused = decide(ONE_KEY, clause, SCANS_OFF).unwrap_err();
            assert!(refused.contains(message), "{clause}: {refused}");
            assert_eq!(decide(ONE_KEY, clause, SCANS_ON), Ok(with_scans), "{clause}");
        }
        let refused = decide(TWO_KEYS, "A = 'x'", SCANS_OFF).unwrap_err();
        assert!(refused.contains("Specified: [`A`] Expected: [`A` STRING KEY, `B` INTEGER KEY]"), "{refused}");
    }

    #[test]
    fn a_range_on_a_string_key_is_a_range_scan() {
        assert_eq!(decide(TWO_KEYS, "A > 'x' AND B = 1", SCANS_OFF).ok(), None);
        let string_key = "CREATE TABLE T (K STRING PRIMARY KEY, V INT) WITH (KAFKA_TOPIC='t', FORMAT='JSON');";
        assert_eq!(decide(string_key, "K >= 'a'", SCANS_OFF), Ok(Access::RangeScan));
        let off = ScanOptions { table_scans: false, range_scans: false };
        assert!(decide(string_key, "K >= 'a'", off).unwrap_err().starts_with("Query requires table scan"));
    }

    #[test]
    fn keys_compared_with_null_or_another_type_are_refused_even_with_scans() {
        assert_eq!(
            decide(ONE_KEY, "ID IN (NULL)", SCANS_ON),
            Err("Primary key columns can not be NULL: (ID = null)".into())
        );
        assert_eq!(
            decide(ONE_KEY, "ID IN ('10', 8)", SCANS_ON),
            Err("'10' can not be converted to the type of the key column: ID INTEGER KEY".into())
        );
    }

    #[test]
    fn negations_are_pushed_inside() {
        assert_eq!(decide(ONE_KEY, "NOT (ID != 1)", SCANS_OFF), Ok(Access::KeyLookup));
        assert!(decide(ONE_KEY, "NOT (ID = 1)", SCANS_OFF).is_err());
    }
}
