//! Push queries: `SELECT … FROM stream [WHERE …] EMIT CHANGES [LIMIT n]`, streaming rows to
//! the caller until LIMIT, cancellation, or (with `until_idle`) the end of the data present.

use datafusion::sql::sqlparser::ast::{Expr as SqlExpr, LimitClause, Value};

use super::*;
use datafusion::arrow::datatypes::SchemaRef;

use crate::engine::query::RunningQuery;
use crate::sql::ast::{Emit, StreamingQuery};

/// Batches of rows queued between a push query's sink and the loop handing them to the
/// client.
const CLIENT_BATCHES: usize = 16;

impl Session {
    /// Runs a push query as a persistent query is run (the same tasks, reading order and
    /// processing log), its sink the client: rows are handed on batch by batch until LIMIT,
    /// until the client has gone, or (with `until_idle`) until the input present is read.
    pub(super) async fn push_query(
        &self,
        query: &StreamingQuery,
        on_result: &mut dyn ResultSink,
    ) -> Result<(), SessionError> {
        check_push(query)?;
        let mut query = query.clone();
        let limit = take_limit(&mut query)?;
        let plan = self.planner().plan_push(&query).await?;
        let config = self.config_over(&self.properties).map_err(|e| refusal(e.to_string()))?;
        let keys: Vec<&str> = plan.table_keys.iter().map(String::as_str).collect();
        let header = print_header(&plan.input.name, &plan.output, &keys, on_result);
        if limit == Some(0) {
            on_result.send(StatementResult::status("Limit Reached"));
            return Ok(());
        }
        let (rows_tx, mut rows) = tokio::sync::mpsc::channel(CLIENT_BATCHES);
        let spec = crate::engine::query::QuerySpec {
            id: header.query_id.clone(),
            input: plan.input,
            joined: plan.joined,
            operators: plan.operators,
            sink: crate::engine::query::Sink::Client(rows_tx),
            from_earliest: self.properties.get("auto.offset.reset").is_some_and(|v| v == "earliest"),
            linger: config.source_linger,
            rebuild_state: false,
            keeps_key: false,
            in_time_order: plan.in_time_order,
            checkpoints: None,
            fences: Arc::clone(&self.fences),
            barrier_interval: config.checkpoint_interval,
            state_limit: config.state_limit,
            feeders: Vec::new(),
            every_update: self.caching_off(),
        };
        // Started before waiting for the persistent queries: what they write from the input
        // present is part of what it reads, even from the log's end.
        let running = RunningQuery::start(Arc::clone(&self.log), spec, crate::log::Claim::unshared()).await?;
        if self.until_idle {
            self.wait_until_idle().await?;
        }
        // The header goes out now: rows may be a long time coming.
        if !on_result.flush().await {
            return Ok(());
        }
        // With `until_idle`, the query is told to stop once it has read what its inputs hold;
        // its rows drain through the channel, which closes when it has ended.
        let mut watching = self.until_idle;
        let mut emitted = 0u64;
        loop {
            let batch = match watching {
                true => tokio::select! {
                    batch = rows.recv() => batch,
                    idle = self.push_caught_up(&running) => {
                        idle?;
                        running.request_stop();
                        watching = false;
                        continue;
                    }
                },
                false => rows.recv().await,
            };
            let Some(batch) = batch else { break };
            if print_rows(&batch, &header, limit, &mut emitted, on_result)? {
                return Ok(());
            }
            // A receiver that falls behind holds the query back; one that is gone stops it.
            if !on_result.flush().await {
                return Ok(());
            }
        }
        // Its tasks have ended (a failing one reports its error as it ends).
        let state = Arc::clone(&running.state);
        running.stop().await;
        match state.status() {
            crate::engine::query::QueryStatus::Error(reason) => Err(refusal(reason)),
            _ => Ok(()),
        }
    }

    /// Waits until push query `query` has handed on everything its inputs hold now (or has
    /// stopped).
    async fn push_caught_up(&self, query: &RunningQuery) -> Result<(), SessionError> {
        loop {
            let progressed = query.state.progressed.notified();
            tokio::pin!(progressed);
            progressed.as_mut().enable();
            if query.caught_up(self.log.as_ref()).await? {
                return Ok(());
            }
            let _ = tokio::time::timeout(super::persistent::IDLE_RECHECK, progressed).await;
        }
    }

    /// `EXPLAIN SELECT …`: plans the push query (so an invalid one is refused as running it
    /// would be) and shows its topology, source to client.
    pub(super) async fn explain_push_query(&self, query: &StreamingQuery) -> Result<StatementResult, SessionError> {
        check_push(query)?;
        let mut query = query.clone();
        let limit = take_limit(&mut query)?;
        let plan = self.planner().plan_push(&query).await?;
        let mut lines = Vec::new();
        for (i, source) in std::iter::once(&plan.input).chain(&plan.joined).enumerate() {
            let partitions = self.log.partition_count(&source.topic).await?;
            let input = if plan.joined.is_empty() { String::new() } else { format!(" = input {i}") };
            lines.push(format!(
                "Source {} ({} over topic '{}', {partitions} partition(s), key {}, value {}){input}",
                source.name,
                source.kind.keyword().to_lowercase(),
                source.topic,
                source.key_format.name(),
                source.value_format.name()
            ));
        }
        lines.extend(plan.operators.iter().map(|operator| format!("  -> {}", operator.describe())));
        let limit = limit.map(|n| format!(", LIMIT {n}")).unwrap_or_default();
        lines.push(format!("  -> Client: push query, rows as records arrive{limit}"));
        Ok(StatementResult::Table {
            title: Some(format!("Query: {query}\nTopology:\n{}", lines.join("\n"))),
            columns: vec!["Column".into(), "Type".into()],
            rows: plan
                .output
                .fields()
                .iter()
                .map(|f| vec![f.name().clone(), crate::sql::types::ksql_type_name(f.data_type())])
                .collect(),
        })
    }

    /// `cache.max.bytes.buffering` (`ksql.streams.` before it) set to 0: an aggregating push
    /// query emits every record's update instead of one per key and batch.
    pub(super) fn caching_off(&self) -> bool {
        ["cache.max.bytes.buffering", "ksql.streams.cache.max.bytes.buffering"]
            .iter()
            .any(|name| self.properties.get(*name).is_some_and(|v| v.trim() == "0"))
    }
}

/// Announces a push query's columns; returns the header its rows go under.
fn print_header(
    source: &str,
    output_schema: &SchemaRef,
    table_keys: &[&str],
    on_result: &mut dyn ResultSink,
) -> Arc<super::result::RowsHeader> {
    let header = Arc::new(super::result::RowsHeader {
        query_id: transient_query_id(source),
        schema: output_schema.clone(),
        keys: (0..output_schema.fields().len())
            .map(|c| {
                crate::planner::push::is_grouping_column(output_schema, c)
                    || table_keys.contains(&output_schema.field(c).name().as_str())
            })
            .collect(),
        push: true,
        completion: None,
    });
    on_result.send(StatementResult::Header(Arc::clone(&header)));
    header
}

/// `transient_<SOURCE>_<n>`: a push or pull query's id, unique in this process.
pub(super) fn transient_query_id(source: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    // Distinct across restarts too, as ksqlDB's random ids are.
    let started = crate::log::record::now_ms().rem_euclid(1_000_000_000) as u64;
    format!("transient_{source}_{}", started * 1000 + n % 1000)
}

/// Hands on a batch of a push query's rows, one result per row (a deleted row shows its
/// key and nulls); true once LIMIT rows have been handed on.
fn print_rows(
    produced: &crate::engine::operator::TimedBatch,
    header: &Arc<super::result::RowsHeader>,
    limit: Option<u64>,
    emitted: &mut u64,
    on_result: &mut dyn ResultSink,
) -> Result<bool, SessionError> {
    for row in 0..produced.rows.num_rows() {
        let rows = super::result::QueryRows {
            header: Arc::clone(header),
            batch: produced.rows.slice(row, 1),
            tombstones: produced.tombstones.as_ref().map(|t| t.slice(row, 1)),
        };
        on_result.send(StatementResult::Rows(rows));
        *emitted += 1;
        if limit.is_some_and(|limit| *emitted >= limit) {
            on_result.send(StatementResult::status("Limit Reached"));
            return Ok(true);
        }
    }
    Ok(false)
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
            Value::Number(n, _) => n
                .parse::<u64>()
                .map(Some)
                .map_err(|_| refusal("Failed to prepare statement: Value must be integer for command: LIMIT".into())),
            other => Err(refusal(format!("LIMIT {other} is not a count"))),
        },
        Some(LimitClause::LimitOffset {
            limit: Some(SqlExpr::UnaryOp { op: datafusion::sql::sqlparser::ast::UnaryOperator::Minus, .. }),
            ..
        }) => Err(refusal(
            "Pull queries don't support negative integers in the LIMIT clause. See https://cnfl.io/queries for more \
             info."
                .into(),
        )),
        Some(other) => Err(refusal(format!("{other} is not supported; use LIMIT n"))),
    }
}
