//! Push queries: `SELECT … FROM stream [WHERE …] EMIT CHANGES [LIMIT n]`, streaming rows to
//! the caller until LIMIT, cancellation, or (with `until_idle`) the end of the data present.

use datafusion::sql::sqlparser::ast::{Expr as SqlExpr, LimitClause, SetExpr, TableFactor, Value};

use super::*;
use datafusion::arrow::datatypes::SchemaRef;

use crate::engine::plan::StatelessPlan;
use crate::engine::query::RunningQuery;
use crate::engine::source::row_schema;
use crate::sql::ast::{Emit, StreamingQuery};

/// An aggregation's operator, and the rows it produces for printing: the grouping columns
/// marked (shown even for deletions), and the schema marked when a table is aggregated.
fn aggregate_operator(
    plan: crate::engine::aggregate::AggregatePlan,
    table: bool,
    described: String,
) -> Result<(Box<dyn crate::engine::operator::Operator>, SchemaRef), SessionError> {
    let mut metadata = std::collections::HashMap::new();
    if table {
        metadata.insert(AGGREGATES_TABLE.to_owned(), String::new());
    }
    let keys = plan.group_by.len();
    let fields: Vec<_> = plan
        .output
        .fields()
        .iter()
        .map(|f| {
            let grouped = plan.aggregate_schema.fields().iter().take(keys).any(|g| g.name() == f.name());
            let mut field = f.as_ref().clone();
            if grouped {
                field.set_metadata([(GROUPING_COLUMN.to_owned(), String::new())].into());
            }
            field
        })
        .collect();
    let schema = Arc::new(datafusion::arrow::datatypes::Schema::new_with_metadata(fields, metadata));
    let operator =
        crate::engine::aggregate::Aggregate::try_new(Arc::new(plan), described).map_err(SessionError::from)?;
    Ok((Box::new(operator), schema))
}

/// Batches of rows queued between a push query's sink and the loop handing them to the
/// client.
const CLIENT_BATCHES: usize = 16;

/// A planned push query: what it runs, and how its rows are shown.
struct PushPlan {
    input: Arc<crate::catalog::Source>,
    joined: Vec<Arc<crate::catalog::Source>>,
    operators: Vec<Box<dyn crate::engine::operator::Operator>>,
    output: SchemaRef,
    /// Columns shown even in a deleted row (a table's key, and its window bounds).
    table_keys: Vec<String>,
    /// Stream time decides what is late (windows, OVER frames): partitions are read in
    /// event-time order.
    in_time_order: bool,
}

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
        let plan = match self.join_sources(&query)? {
            Some(sources) => self.push_join(&query, sources).await?,
            None => self.push_single(&query).await?,
        };
        let config = crate::config::Config::default()
            .with(self.defaults.iter())
            .and_then(|config| config.with(self.properties.iter()))
            .map_err(|e| refusal(e.to_string()))?;
        let keys: Vec<&str> = plan.table_keys.iter().map(String::as_str).collect();
        let header = print_header(&plan.input.name, &plan.output, &keys, on_result);
        if limit == Some(0) {
            on_result.send(StatementResult::status("Limit Reached"));
            return Ok(());
        }
        if self.until_idle {
            // What the persistent queries will write from the input present is part of it.
            self.wait_until_idle().await?;
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
        let running = RunningQuery::start(Arc::clone(&self.log), spec, crate::log::Claim::unshared()).await?;
        let state = Arc::clone(&running.state);
        // The header goes out now: rows may be a long time coming.
        if !on_result.flush().await {
            return Ok(());
        }
        let mut running = Some(running);
        let mut emitted = 0u64;
        loop {
            let batch = match &running {
                Some(query) if self.until_idle => tokio::select! {
                    batch = rows.recv() => batch,
                    idle = self.push_caught_up(query) => {
                        idle?;
                        // Everything read is queued for the client by now: what is left
                        // to hand on is in the channel, which closes as the query ends.
                        running = None;
                        continue;
                    }
                },
                _ => rows.recv().await,
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

    /// A push query over one source: its operators as a persistent query's would be (filter
    /// and projection, an aggregation, or OVER windows).
    async fn push_single(&self, query: &StreamingQuery) -> Result<PushPlan, SessionError> {
        use crate::planner::query::{QueryPlan, plan_query};
        let source = self.query_source(query)?;
        let table = source.kind == crate::sql::ast::SourceKind::Table;
        let star = star_columns(&source);
        let planned = plan_query(query, &source.name, row_schema(&source), &star).await.map_err(SessionError::from)?;
        let described = format!("push query over {}", source.name);
        // A table's deletions are rows too (ksqlDB's tombstones), as they are to an
        // aggregation of it; a stream's records without a value are ignored.
        let mut operators: Vec<Box<dyn crate::engine::operator::Operator>> = Vec::new();
        if !table {
            operators.push(Box::new(crate::engine::operator::DropDeletions));
        }
        let (output, in_time_order) = match planned {
            QueryPlan::Stateless(plan) => {
                let schema = plan.output_schema().clone();
                operators.push(Box::new(crate::engine::operator::Project::new(Arc::new(plan), described)));
                (schema, false)
            }
            QueryPlan::Over { plan, .. } => {
                if table {
                    return Err(refusal("OVER windows read a STREAM: a table's rows have no arrival order".into()));
                }
                let schema = plan.output.clone();
                let operator =
                    crate::engine::over::Over::try_new(Arc::new(plan), described).map_err(SessionError::from)?;
                operators.push(Box::new(operator));
                (schema, true)
            }
            QueryPlan::Aggregate { mut plan, .. } => {
                if table {
                    super::persistent::aggregate_table(&mut plan, &source)?;
                }
                let windowed = plan.windows.is_some();
                let (operator, schema) = aggregate_operator(plan, table, described)?;
                operators.push(operator);
                (schema, windowed)
            }
        };
        // A table's key columns stay in its deleted rows.
        let mut table_keys = Vec::new();
        if table {
            table_keys.extend(source.columns.iter().filter(|c| c.role == ColumnRole::Key).map(|c| c.name.clone()));
            if source.window_key_bytes() > 0 {
                table_keys.extend(crate::engine::source::WINDOW_COLUMNS.iter().map(|c| (*c).to_owned()));
            }
        }
        Ok(PushPlan { input: source, joined: Vec::new(), operators, output, table_keys, in_time_order })
    }

    /// A push query over a join: a join operator per JOIN (and an aggregation after them),
    /// its inputs read together in event-time order, as a persistent query's are.
    async fn push_join(
        &self,
        query: &StreamingQuery,
        sources: Vec<Arc<crate::catalog::Source>>,
    ) -> Result<PushPlan, SessionError> {
        let (operators, output) = if crate::planner::join_aggregate::aggregates(query) {
            let grouped = self.plan_grouped_join(query, &sources).await?;
            let join = Arc::new(grouped.join);
            let mut operators = super::persistent::join_operators(&join, "")?;
            let bridge = crate::engine::join_aggregate::bridge_schema(&join.output);
            operators.push(Box::new(crate::engine::join_aggregate::StampRowTime::new(bridge)));
            let table = sources.iter().all(|s| s.kind == crate::sql::ast::SourceKind::Table);
            let (operator, schema) = aggregate_operator(grouped.aggregate, table, "push query over a join".into())?;
            operators.push(operator);
            (operators, schema)
        } else {
            if !query.partition_by.is_empty() {
                return Err(refusal("PARTITION BY of a join is not supported yet".into()));
            }
            let plan = Arc::new(self.plan_join_checked(query, &sources).await?);
            let operators = super::persistent::join_operators(&plan, "")?;
            (operators, plan.output.clone())
        };
        let mut sources = sources.into_iter();
        let input = sources.next().ok_or_else(|| refusal("a join reads two sources or more".into()))?;
        Ok(PushPlan {
            input,
            joined: sources.collect(),
            operators,
            output,
            table_keys: Vec::new(),
            // (A join's inputs are read in event-time order in any case.)
            in_time_order: false,
        })
    }

    /// `EXPLAIN SELECT …`: plans the push query (so an invalid one is refused as running it
    /// would be) and shows its topology, source to client.
    pub(super) async fn explain_push_query(&self, query: &StreamingQuery) -> Result<StatementResult, SessionError> {
        check_push(query)?;
        let mut query = query.clone();
        let limit = take_limit(&mut query)?;
        let source = self.query_source(&query)?;
        let star: Vec<String> = source.columns.iter().map(|c| c.name.clone()).collect();
        let plan = StatelessPlan::try_new(&query, &source.name, row_schema(&source), &star)
            .await
            .map_err(SessionError::from)?;
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

    /// `cache.max.bytes.buffering` (`ksql.streams.` before it) set to 0: an aggregating push
    /// query emits every record's update instead of one per key and batch.
    pub(super) fn caching_off(&self) -> bool {
        ["cache.max.bytes.buffering", "ksql.streams.cache.max.bytes.buffering"]
            .iter()
            .any(|name| self.properties.get(*name).is_some_and(|v| v.trim() == "0"))
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
        let source = self
            .catalog
            .source(&name)
            .cloned()
            .ok_or_else(|| refusal(format!("{name} does not exist.{}", self.catalog.alternatives(&name, None))))?;
        Ok(source)
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
            .map(|c| key_column(output_schema, c) || table_keys.contains(&output_schema.field(c).name().as_str()))
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

/// `SELECT *`'s columns: the source's, with a windowed source's window bounds after its key.
pub(super) fn star_columns(source: &crate::catalog::Source) -> Vec<String> {
    let mut star: Vec<String> = source.columns.iter().map(|c| c.name.clone()).collect();
    if source.window_key_bytes() > 0 {
        let keys = source.columns.iter().filter(|c| c.role == crate::catalog::ColumnRole::Key).count();
        for (i, bound) in crate::engine::source::WINDOW_COLUMNS.iter().enumerate() {
            star.insert(keys + i, (*bound).to_string());
        }
    }
    star
}

/// Marks a push query's rows as an aggregation of a table (its deletions count).
const AGGREGATES_TABLE: &str = "eddy.aggregates_table";
/// Marks a column of a push query's rows as a grouping column (shown for a deleted group).
const GROUPING_COLUMN: &str = "eddy.grouping";

fn key_column(schema: &SchemaRef, column: usize) -> bool {
    schema.field(column).metadata().contains_key(GROUPING_COLUMN)
}
