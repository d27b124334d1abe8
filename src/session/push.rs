//! Push queries: `SELECT … FROM stream [WHERE …] EMIT CHANGES [LIMIT n]`, streaming rows to
//! the caller until LIMIT, cancellation, or (with `until_idle`) the end of the data present.

use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::sql::sqlparser::ast::{Expr as SqlExpr, LimitClause, SetExpr, TableFactor, Value};

use super::*;
use crate::engine::plan::StatelessPlan;
use crate::engine::source::{decode, row_schema};
use crate::log::Follower;
use crate::sql::ast::{Emit, StreamingQuery};

/// Columns are at least this wide when rows are printed.
const MIN_COLUMN_WIDTH: usize = 12;

impl Session {
    pub(super) async fn push_query(
        &self,
        query: &StreamingQuery,
        on_result: &mut (dyn FnMut(StatementResult) + Send),
    ) -> Result<(), SessionError> {
        check_push(query)?;
        let mut query = query.clone();
        let limit = take_limit(&mut query)?;
        let source = self.query_source(&query)?;
        let schema = row_schema(&source);
        let star: Vec<String> = source.columns.iter().map(|c| c.name.clone()).collect();
        let plan =
            StatelessPlan::try_new(&query, &source.name, schema.clone(), &star).await.map_err(|e| refusal(e.0))?;

        let from_earliest = self.properties.get("auto.offset.reset").is_some_and(|v| v == "earliest");
        let positions = crate::log::start_positions(self.log.as_ref(), &source.topic, from_earliest).await?;
        if self.until_idle {
            // What the persistent queries will write from the input present is part of it.
            self.wait_until_idle().await?;
        }
        let mut follower = Follower::new(self.log.as_ref(), &source.topic, positions, self.until_idle);

        let columns: Vec<String> = plan.output_schema().fields().iter().map(|f| f.name().clone()).collect();
        let widths: Vec<usize> = columns.iter().map(|c| c.chars().count().max(MIN_COLUMN_WIDTH)).collect();
        let rule = format!("+{}+", widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("+"));
        on_result(StatementResult::Line(rule.clone()));
        on_result(StatementResult::Line(row_line(&columns, &widths)));
        on_result(StatementResult::Line(rule));
        if limit == Some(0) {
            on_result(StatementResult::status("Limit Reached"));
            return Ok(());
        }

        let mut emitted = 0u64;
        while let Some((partition, records)) = follower.next().await? {
            let rows = decode(&source, &schema, partition, &records).map_err(|e| refusal(e.0))?;
            for (offset, reason) in &rows.errors {
                tracing::warn!(topic = %source.topic, partition, offset, %reason, "skipping a record that does not decode");
            }
            // A push query shows rows; records without a value are not rows.
            let live = match &rows.tombstones {
                Some(t) => datafusion::arrow::compute::filter_record_batch(
                    &rows.batch,
                    &datafusion::arrow::compute::kernels::boolean::not(t).map_err(|e| refusal(e.to_string()))?,
                )
                .map_err(|e| refusal(e.to_string()))?,
                None => rows.batch,
            };
            let output = plan.apply(&live).map_err(|e| refusal(e.0))?;
            let options = FormatOptions::default().with_null("null");
            let formatters = output
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| refusal(e.to_string()))?;
            for row in 0..output.num_rows() {
                let cells: Vec<String> = formatters.iter().map(|f| f.value(row).to_string()).collect();
                on_result(StatementResult::Line(row_line(&cells, &widths)));
                emitted += 1;
                if limit.is_some_and(|limit| emitted >= limit) {
                    on_result(StatementResult::status("Limit Reached"));
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// `EXPLAIN SELECT …`: plans the push query (so an invalid one is refused as running it
    /// would be) and shows its topology, source to client.
    pub(super) async fn explain_push_query(&self, query: &StreamingQuery) -> Result<StatementResult, SessionError> {
        check_push(query)?;
        let mut query = query.clone();
        let limit = take_limit(&mut query)?;
        let source = self.query_source(&query)?;
        let star: Vec<String> = source.columns.iter().map(|c| c.name.clone()).collect();
        let plan =
            StatelessPlan::try_new(&query, &source.name, row_schema(&source), &star).await.map_err(|e| refusal(e.0))?;
        let SetExpr::Select(select) = query.query.body.as_ref() else {
            return Err(refusal("only SELECT … FROM a stream is supported yet".into()));
        };
        let partitions = self.log.partition_count(&source.topic).await?;
        let mut lines = vec![format!(
            "Source {} (stream over topic '{}', {partitions} partition(s), key {}, value {})",
            source.name,
            source.topic,
            source.key_format.name(),
            source.value_format.name()
        )];
        if let Some(condition) = &select.selection {
            lines.push(format!("  -> Filter: {condition}"));
        }
        let outputs: Vec<String> = plan.output_schema().fields().iter().map(|f| f.name().clone()).collect();
        let items: Vec<String> = select.projection.iter().map(|item| item.to_string()).collect();
        lines.push(format!("  -> Project: {} (columns {})", items.join(", "), outputs.join(", ")));
        let limit = limit.map(|n| format!(", LIMIT {n}")).unwrap_or_default();
        lines.push(format!("  -> Client: push query, rows as records arrive{limit}"));
        Ok(StatementResult::Table {
            title: Some(format!("Query: {query}\nTopology:\n{}", lines.join("\n"))),
            columns: vec!["Column".into(), "Type".into()],
            rows: plan
                .output_schema()
                .fields()
                .iter()
                .map(|f| vec![f.name().clone(), crate::sql::types::ksql_type_name(f.data_type())])
                .collect(),
        })
    }

    /// The one stream a query reads.
    pub(super) fn query_source(&self, query: &StreamingQuery) -> Result<Arc<crate::catalog::Source>, SessionError> {
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
        let source = self.catalog.source(&name).cloned().ok_or_else(|| refusal(format!("{name} does not exist.")))?;
        Ok(source)
    }
}

/// Only `EMIT CHANGES` queries run as push queries.
fn check_push(query: &StreamingQuery) -> Result<(), SessionError> {
    match query.emit {
        Some(Emit::Changes) => Ok(()),
        Some(Emit::Final) => Err(refusal(
            "EMIT FINAL needs a windowed aggregation, which is not supported yet; \
             use EMIT CHANGES for a push query"
                .into(),
        )),
        None => Err(refusal("EXPLAIN of a pull query is not supported yet; add EMIT CHANGES for a push query".into())),
    }
}

/// Removes `LIMIT n` from the query (a push query stops after n rows) and returns n.
pub(super) fn take_limit(query: &mut StreamingQuery) -> Result<Option<u64>, SessionError> {
    match query.query.limit_clause.take() {
        None => Ok(None),
        Some(LimitClause::LimitOffset { limit: Some(SqlExpr::Value(value)), offset: None, .. }) => match &value.value {
            Value::Number(n, _) => n.parse::<u64>().map(Some).map_err(|_| refusal(format!("LIMIT {n} is not a count"))),
            other => Err(refusal(format!("LIMIT {other} is not a count"))),
        },
        Some(other) => Err(refusal(format!("{other} is not supported; use LIMIT n"))),
    }
}

/// `|a           |b           |`
fn row_line(cells: &[String], widths: &[usize]) -> String {
    let padded: Vec<String> = cells.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
    format!("|{}|", padded.join("|"))
}
