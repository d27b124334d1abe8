//! Pull queries: `SELECT … FROM t [WHERE …] [LIMIT n]` without `EMIT CHANGES`, answered at
//! once from the source's current state and ended.
//!
//! A table's state is materialized ([`crate::engine::store::MaterializedTable`]): the latest
//! row per key of its changelog (a tombstone deletes the key), kept in the session and
//! brought up to date at each pull by reading only what was appended since. A stream's state
//! is every row. The query is then the same filter and projection a push query runs, over
//! that state as one batch, and a windowed table's rows carry `WINDOWSTART` and `WINDOWEND`
//! to bound. What ksqlDB refuses is refused first: a table no query keeps, and a WHERE
//! clause that needs a table scan where `ksql.query.pull.table.scan.enabled` is false
//! ([`super::pull_where`]).

use datafusion::arrow::array::RecordBatch;

use datafusion::sql::sqlparser::ast::SetExpr;

use super::push::take_limit;
use super::*;
use crate::engine::plan::StatelessPlan;
use crate::engine::source::{decode, prefetch, row_schema};
use crate::engine::store::MaterializedTable;
use crate::log::Record;
use crate::sql::ast::StreamingQuery;

/// What ksqlDB adds to its refusals of pull queries (its `PULL_QUERY_SYNTAX_HELP`).
pub(super) const PULL_QUERY_HELP: &str =
    " See https://cnfl.io/queries for more info.\nAdd EMIT CHANGES if you intended to issue a push query.";

/// What a pull query may not have, refused with ksqlDB's messages: JOIN, WINDOW, GROUP BY,
/// PARTITION BY, and the pseudo columns ROWPARTITION and ROWOFFSET (a materialized row has
/// no single record behind it).
fn check_pull(query: &StreamingQuery) -> Result<(), SessionError> {
    use datafusion::sql::sqlparser::ast::{Expr, GroupByExpr, SetExpr, visit_expressions};
    let unsupported = |what: &str| refusal(format!("Pull queries don't support {what} clauses.{PULL_QUERY_HELP}"));
    let SetExpr::Select(select) = query.query.body.as_ref() else { return Ok(()) };
    if select.from.iter().any(|f| !f.joins.is_empty()) || select.from.len() > 1 {
        return Err(unsupported("JOIN"));
    }
    if query.window.is_some() {
        return Err(unsupported("WINDOW"));
    }
    if !matches!(&select.group_by, GroupByExpr::Expressions(e, _) if e.is_empty()) {
        return Err(unsupported("GROUP BY"));
    }
    if !query.partition_by.is_empty() {
        return Err(unsupported("PARTITION BY"));
    }
    let pseudo = |expr: &Expr| -> Vec<String> {
        let mut found = Vec::new();
        let _ = visit_expressions(expr, |e: &Expr| {
            if let Expr::Identifier(ident) = e {
                let name = ident.value.to_uppercase();
                if (name == "ROWPARTITION" || name == "ROWOFFSET") && !found.contains(&name) {
                    found.push(name);
                }
            }
            std::ops::ControlFlow::<()>::Continue(())
        });
        found
    };
    let selected: Vec<String> = select
        .projection
        .iter()
        .flat_map(|item| match item {
            datafusion::sql::sqlparser::ast::SelectItem::UnnamedExpr(e)
            | datafusion::sql::sqlparser::ast::SelectItem::ExprWithAlias { expr: e, .. } => pseudo(e),
            _ => Vec::new(),
        })
        .collect();
    let listed = |columns: &[String]| columns.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ");
    if !selected.is_empty() {
        return Err(refusal(format!(
            "Pull queries don't support the following columns in SELECT clauses: {}",
            listed(&selected)
        )));
    }
    let filtered = select.selection.as_ref().map(pseudo).unwrap_or_default();
    if !filtered.is_empty() {
        return Err(refusal(format!(
            "Pull queries don't support the following columns in WHERE clauses: {}",
            listed(&filtered)
        )));
    }
    Ok(())
}

/// Bytes asked of the log per read while materializing.
const FETCH_BYTES: usize = 1024 * 1024;

impl Session {
    pub(super) async fn pull_query(&self, query: &StreamingQuery) -> Result<StatementResult, SessionError> {
        check_pull(query)?;
        let mut query = query.clone();
        let limit = take_limit(&mut query)?;
        if limit.is_some() && !self.flag("ksql.query.pull.limit.clause.enabled", true) {
            return Err(refusal(format!(
                "LIMIT clause in pull queries is currently disabled. You can enable them by setting \
                 ksql.query.pull.limit.clause.enabled=true.{PULL_QUERY_HELP}"
            )));
        }
        // ORDER BY (beyond ksqlDB) sorts the answer by selected columns, after the projection.
        let order_by = query.query.order_by.take();
        let source = self.planner().query_source(&query)?;
        let schema = row_schema(&source);
        // `SELECT *` of a windowed table: its key, the window's bounds, then its values.
        let star = crate::planner::push::star_columns(&source);
        let windowed = source.window_key_bytes() > 0;
        let plan =
            StatelessPlan::try_new(&query, &source.name, schema.clone(), &star).await.map_err(SessionError::from)?;
        if source.kind == SourceKind::Table {
            self.check_queryable(&source)?;
            // Any access reads the whole state here; the decision only refuses what ksqlDB refuses.
            let options = super::pull_where::ScanOptions {
                table_scans: self.flag("ksql.query.pull.table.scan.enabled", true),
                range_scans: self.flag("ksql.query.pull.range.scan.enabled", true),
            };
            let selection = match query.query.body.as_ref() {
                SetExpr::Select(select) => select.selection.as_ref(),
                _ => None,
            };
            super::pull_where::access(selection, &source, options).map_err(refusal)?;
        }
        if self.until_idle {
            // What the persistent queries will write from the input present is part of it.
            self.wait_until_idle().await?;
        }
        let state = self.current_rows(&source, &schema).await?;
        let mut rows = plan.apply(&state).map_err(SessionError::from)?;
        if let Some(order_by) = &order_by {
            rows = sorted(rows, order_by)?;
        }
        let shown = limit.map_or(rows.num_rows(), |n| rows.num_rows().min(n as usize));
        let limit_reached = limit.is_some_and(|n| rows.num_rows() as u64 >= n);
        let schema = rows.schema();
        let keys = schema
            .fields()
            .iter()
            .map(|f| {
                // A table's key columns (a stream's rows have no key to look up by).
                source.kind == SourceKind::Table
                    && (source.columns.iter().any(|c| c.role == ColumnRole::Key && c.name == *f.name())
                        || (windowed && crate::engine::source::WINDOW_COLUMNS.contains(&f.name().as_str())))
            })
            .collect();
        let header = Arc::new(super::result::RowsHeader {
            query_id: super::push::transient_query_id(&source.name),
            schema,
            keys,
            push: false,
            completion: match source.kind {
                SourceKind::Stream if limit_reached => Some("Limit Reached"),
                SourceKind::Stream => Some("Query Completed"),
                SourceKind::Table => None,
            },
        });
        Ok(StatementResult::Rows(super::result::QueryRows { header, batch: rows.slice(0, shown), tombstones: None }))
    }

    /// A table is queryable where a query keeps it (CREATE TABLE AS SELECT) or it is a
    /// source table (`CREATE SOURCE TABLE`), as in ksqlDB.
    fn check_queryable(&self, source: &crate::catalog::Source) -> Result<(), SessionError> {
        if source.read_only || !self.catalog.queries_using(&source.name).1.is_empty() {
            return Ok(());
        }
        let name = &source.name;
        Err(refusal(format!(
            "The `{name}` table isn't queryable. To derive a queryable table, you can do 'CREATE TABLE QUERYABLE_{name} \
             AS SELECT * FROM {name}'.{PULL_QUERY_HELP}"
        )))
    }

    /// A boolean property set in the session, or `default`.
    fn flag(&self, name: &str, default: bool) -> bool {
        self.properties.get(name).and_then(|v| crate::planner::rewrite::parse_boolean(v)).unwrap_or(default)
    }

    /// The source's rows now: a table's latest row per key (key order), a stream's every row.
    async fn current_rows(
        &self,
        source: &crate::catalog::Source,
        schema: &datafusion::arrow::datatypes::SchemaRef,
    ) -> Result<RecordBatch, SessionError> {
        let mut pieces: Vec<RecordBatch> = Vec::new();
        if source.kind == SourceKind::Table {
            let mut views = self.materialized.lock().await;
            let view = views.entry(source.name.clone()).or_insert_with(|| MaterializedTable::new(&source.topic));
            if view.topic() != source.topic {
                *view = MaterializedTable::new(&source.topic);
            }
            view.catch_up(self.log.as_ref()).await?;
            // Decoded a run of rows of one partition at a time, keeping key order.
            let mut run: Vec<Record> = Vec::new();
            let mut run_partition = 0;
            for (partition, record) in view.rows() {
                if partition != run_partition && !run.is_empty() {
                    prefetch(source, &run).await;
                    pieces.push(decode(source, schema, run_partition, &run).map_err(|e| refusal(e.0))?.batch);
                    run.clear();
                }
                run_partition = partition;
                run.push(record.clone());
            }
            if !run.is_empty() {
                prefetch(source, &run).await;
                pieces.push(decode(source, schema, run_partition, &run).map_err(|e| refusal(e.0))?.batch);
            }
        } else {
            for partition in 0..self.log.partition_count(&source.topic).await? {
                let end = self.log.latest_offset(&source.topic, partition).await?;
                let mut offset = self.log.earliest_offset(&source.topic, partition).await?;
                while offset < end {
                    let fetch = self.log.read(&source.topic, partition, offset, FETCH_BYTES).await?;
                    let Some(last) = fetch.records.last() else { break };
                    offset = last.offset + 1;
                    prefetch(source, &fetch.records).await;
                    let rows = decode(source, schema, partition, &fetch.records).map_err(|e| refusal(e.0))?;
                    // Records without a value are no rows of a stream.
                    pieces.push(match &rows.tombstones {
                        Some(t) => datafusion::arrow::compute::filter_record_batch(
                            &rows.batch,
                            &datafusion::arrow::compute::not(t).map_err(|e| refusal(e.to_string()))?,
                        )
                        .map_err(|e| refusal(e.to_string()))?,
                        None => rows.batch,
                    });
                }
            }
        }
        datafusion::arrow::compute::concat_batches(schema, &pieces).map_err(|e| refusal(e.to_string()))
    }
}

/// The answer sorted by `ORDER BY` terms that name selected columns (or their positions,
/// from 1); ascending unless `DESC`, nulls last ascending and first descending as in SQL.
fn sorted(rows: RecordBatch, order_by: &datafusion::sql::sqlparser::ast::OrderBy) -> Result<RecordBatch, SessionError> {
    use datafusion::arrow::compute::{SortColumn, SortOptions, lexsort_to_indices, take_record_batch};
    use datafusion::sql::sqlparser::ast::{Expr, OrderByKind, Value};
    let OrderByKind::Expressions(terms) = &order_by.kind else {
        return Err(refusal("ORDER BY ALL is not supported; name the columns".into()));
    };
    let schema = rows.schema();
    let mut columns = Vec::with_capacity(terms.len());
    for term in terms {
        let index = match &term.expr {
            Expr::Identifier(ident) => schema.index_of(&crate::planner::query::normalised_name(ident)).ok(),
            Expr::CompoundIdentifier(parts) => {
                parts.last().and_then(|ident| schema.index_of(&crate::planner::query::normalised_name(ident)).ok())
            }
            Expr::Value(v) => match &v.value {
                Value::Number(n, _) => {
                    n.parse::<usize>().ok().filter(|n| (1..=schema.fields().len()).contains(n)).map(|n| n - 1)
                }
                _ => None,
            },
            _ => None,
        };
        let Some(index) = index else {
            return Err(refusal(format!("ORDER BY {} must name a selected column (or its position)", term.expr)));
        };
        let descending = term.options.asc == Some(false);
        let nulls_first = term.options.nulls_first.unwrap_or(descending);
        columns.push(SortColumn {
            values: rows.column(index).clone(),
            options: Some(SortOptions { descending, nulls_first }),
        });
    }
    let indices = lexsort_to_indices(&columns, None).map_err(|e| refusal(e.to_string()))?;
    take_record_batch(&rows, &indices).map_err(|e| refusal(e.to_string()))
}
