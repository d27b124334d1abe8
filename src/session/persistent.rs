//! Persistent queries: `CREATE STREAM … AS SELECT`, `INSERT INTO … SELECT`, `TERMINATE`,
//! `SHOW QUERIES`, `EXPLAIN <query id>`, and keeping the queries of the catalog running.
//!
//! A persistent query is planned when it is created: its output columns become the sink's
//! columns (keys as ksqlDB decides them), and the sink's `CREATE STREAM` is logged with the
//! statement, so replaying the command topic restores the catalog without planning. Which
//! queries run follows the catalog: [`Session::sync_queries`] (after every catch-up) starts
//! the queries that should run and are not, and stops those that were terminated.

use std::pin::Pin;
use std::time::Duration;

use datafusion::sql::sqlparser::ast::{Expr, Ident, Value};

use super::command_log::Command;
use super::*;
use crate::catalog::{QueryInfo, Source, property_map};
use crate::engine::checkpoint::CheckpointStore;
use crate::engine::operator::{Operator, Project};
use crate::engine::plan::{StatelessPlan, unqualified};
use crate::engine::query::{Checkpointing, QuerySpec, RunningQuery};
use crate::engine::source::row_schema;
use crate::planner::query::{QueryPlan, normalise_expression, plan_query};
use crate::sql::ast::{ColumnConstraint, ColumnDef, CreateAsSelect, CreateSource, InsertInto, Properties, SqlType};
use crate::sql::ast::{StreamingQuery, Terminate};

/// How long [`Session::wait_until_idle`] sleeps between checks when nothing wakes it.
pub(super) const IDLE_RECHECK: Duration = Duration::from_millis(100);

/// A persistent query, planned.
pub(super) struct PlannedQuery {
    input: Arc<Source>,
    /// A join's other input.
    joined: Vec<Arc<Source>>,
    plan: Planned,
    /// Per output column: its place in the sink's key, if it is a key column.
    keys: Vec<Option<usize>>,
}

/// A running persistent query's numbers (see [`Session::query_metrics`]).
#[derive(Debug, Clone)]
pub struct QueryMetrics {
    pub id: String,
    pub sink: String,
    pub status: String,
    pub records_in: u64,
    pub records_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Records skipped (undecodable input, unwritable output).
    pub errors: u64,
    /// Records in its inputs it has not processed yet.
    pub lag: u64,
    /// Bytes its state holds, at its last barrier.
    pub state_bytes: u64,
    /// Checkpoints taken since it started here.
    pub checkpoints: u64,
    /// Processing latency: cumulative counts per bucket of
    /// [`crate::engine::query::LATENCY_BUCKETS_SECONDS`] (the last is the total), and the sum
    /// in seconds.
    pub latency: (Vec<u64>, f64),
}

/// GROUP BY over a join, planned.
pub(super) struct GroupedJoin {
    pub join: crate::engine::join::JoinPlan,
    pub aggregate: crate::engine::aggregate::AggregatePlan,
    /// The projection, over the bridge rows.
    pub items: Vec<Expr>,
    /// The aggregation, over the bridge rows.
    pub query: StreamingQuery,
    pub bridge_name: String,
}

/// What a persistent query does between its source and its sink.
enum Planned {
    /// Filter and projection (a stream from a stream, a changelog from a table).
    Stateless(Arc<StatelessPlan>),
    /// GROUP BY: a table from a stream.
    Aggregate(Arc<crate::engine::aggregate::AggregatePlan>),
    /// `OVER` windows: a stream from a stream, a row out per row in.
    Over(Arc<crate::engine::over::OverPlan>),
    /// A join of two sources.
    Join(Arc<crate::engine::join::JoinPlan>),
    /// GROUP BY over a join: the join's steps, then the aggregation of its rows.
    JoinAggregate(Arc<crate::engine::join::JoinPlan>, Arc<crate::engine::aggregate::AggregatePlan>),
}

impl PlannedQuery {
    fn output_schema(&self) -> &datafusion::arrow::datatypes::SchemaRef {
        match &self.plan {
            Planned::Stateless(plan) => plan.output_schema(),
            Planned::Aggregate(plan) => &plan.output,
            Planned::Over(plan) => &plan.output,
            Planned::Join(plan) => &plan.output,
            Planned::JoinAggregate(_, plan) => &plan.output,
        }
    }

    /// The join, for a join query.
    pub(super) fn join_plan(&self) -> Option<&crate::engine::join::JoinPlan> {
        match &self.plan {
            Planned::Join(plan) | Planned::JoinAggregate(plan, _) => Some(plan),
            Planned::Stateless(_) | Planned::Aggregate(_) | Planned::Over(_) => None,
        }
    }

    /// The query's inputs, in order.
    pub(super) fn sources(&self) -> Vec<Arc<Source>> {
        std::iter::once(&self.input).chain(&self.joined).cloned().collect()
    }

    /// Reads `source` as input `input` instead.
    fn replace_input(&mut self, input: usize, source: Arc<Source>) {
        match input.checked_sub(1) {
            None => self.input = source,
            Some(i) => {
                if let Some(joined) = self.joined.get_mut(i) {
                    *joined = source;
                }
            }
        }
    }

    /// What the query produces: a table when it aggregates or reads a table.
    fn produces(&self) -> SourceKind {
        match &self.plan {
            Planned::Aggregate(_) | Planned::JoinAggregate(..) => SourceKind::Table,
            Planned::Stateless(_) | Planned::Over(_) => self.input.kind,
            // A stream joined with anything is a stream; two tables make a table.
            Planned::Join(_) => self.input.kind,
        }
    }
}

impl Session {
    /// `CREATE STREAM s [WITH (…)] AS SELECT …`.
    pub(super) async fn create_as_select(
        &mut self,
        create: &CreateAsSelect,
        text: &str,
    ) -> Result<StatementResult, SessionError> {
        let name = source_name(&create.name);
        if let Some(existing) = self.catalog.source(&name) {
            if create.if_not_exists {
                return Ok(StatementResult::status(format!("{} {name} already exists", kind_title(existing.kind))));
            }
            if create.or_replace {
                return Err(SessionError::NotSupported {
                    what: "CREATE OR REPLACE … AS SELECT".into(),
                    hint: Some(format!("TERMINATE the query writing {name}, DROP it, and create it again")),
                    at: Location::new(1, 1),
                });
            }
        }
        if create.query.query.limit_clause.is_some() {
            return Err(refusal(format!(
                "CREATE {} AS SELECT statements don't support LIMIT clause.",
                create.kind.keyword()
            )));
        }
        let planned = self.plan_persistent(&create.query, &name).await?;
        // Without aggregation a query produces what it reads: a stream from a stream, a table
        // (its changelog) from a table; with one, a table.
        if create.kind != planned.produces() {
            let (produces, use_kind) = match planned.produces() {
                SourceKind::Stream => ("STREAM", "CREATE STREAM AS SELECT"),
                SourceKind::Table => ("TABLE", "CREATE TABLE AS SELECT"),
            };
            return Err(refusal(format!(
                "Invalid result type. Your SELECT query produces a {produces}. Please use {use_kind} statement instead."
            )));
        }
        let sink = self.sink_statement(create, &planned).await?;
        let sink_text = Statement::CreateSource(sink.clone()).to_string();
        let sink_source = self.catalog.plan_source(&sink, sink_text.clone()).map_err(|e| refusal(e.0))?;
        self.ensure_topic(&sink_source).await?;
        self.register_query(text, Some(sink_text), &name).await
    }

    /// `INSERT INTO s SELECT …`: the query's columns must be the stream's.
    pub(super) async fn insert_select(
        &mut self,
        insert: &InsertInto,
        text: &str,
    ) -> Result<StatementResult, SessionError> {
        let name = source_name(&insert.target);
        let target = self.catalog.source(&name).cloned().ok_or_else(|| {
            let at = insert.target.0.first().and_then(|part| part.as_ident()).map(|ident| ident.span.start);
            refusal(format!(
                "{}Source `{name}` does not exist.",
                at.map(crate::sql::position_prefix).unwrap_or_default()
            ))
        })?;
        if target.kind != SourceKind::Stream {
            return Err(refusal(format!("INSERT INTO can only be used to insert into a stream. {name} is a table.")));
        }
        if target.read_only {
            return Err(refusal(format!(
                "Cannot insert into read-only {}: {name}",
                target.kind.keyword().to_lowercase()
            )));
        }
        if insert.query.query.limit_clause.is_some() {
            return Err(refusal("INSERT INTO statements don't support LIMIT clause.".into()));
        }
        let planned = self.plan_persistent(&insert.query, &name).await?;
        let result = describe_columns(&planned);
        let sink: Vec<String> = target
            .columns
            .iter()
            .filter(|c| matches!(c.role, ColumnRole::Key | ColumnRole::Value))
            .map(|c| format!("`{}` {}{}", c.name, c.sql_type, if c.role == ColumnRole::Key { " KEY" } else { "" }))
            .collect();
        if result != sink {
            return Err(refusal(format!(
                "Incompatible schema between results and sink.\nResult schema is {}\nSink schema is {}",
                result.join(", "),
                sink.join(", ")
            )));
        }
        if planned.input.name == name {
            return Err(refusal(format!("Cannot insert into {name} from itself")));
        }
        self.register_query(text, None, &name).await
    }

    /// Logs a persistent query's command (catching up starts it) and says its id.
    async fn register_query(
        &mut self,
        text: &str,
        sink: Option<String>,
        sink_name: &str,
    ) -> Result<StatementResult, SessionError> {
        let mut properties = self.properties.clone();
        // How it re-keys join sides stays as it was created (see `super::repartition`).
        let config = crate::config::Config::default().with(self.defaults.iter()).map_err(|e| refusal(e.0))?;
        let config = config.with(properties.iter()).map_err(|e| refusal(e.0))?;
        properties.insert(crate::config::JOIN_REPARTITION.into(), config.join_repartition.name().into());
        let command = Command { statement: text.to_owned(), sink, properties };
        self.log_full_command(command).await?;
        let id = self.newest_query_writing(sink_name);
        Ok(StatementResult::status(format!("Created query with ID {id}")))
    }

    /// `TERMINATE id` / `TERMINATE ALL`.
    pub(super) async fn terminate(
        &mut self,
        terminate: &Terminate,
        text: &str,
    ) -> Result<StatementResult, SessionError> {
        if let Terminate::Query(id) = terminate
            && self.catalog.query(&id.to_uppercase()).is_none()
        {
            return Err(refusal(format!("Unknown queryId: {id}")));
        }
        self.log_command(text).await?;
        Ok(StatementResult::status("Query terminated."))
    }

    /// `SHOW QUERIES`.
    pub(super) fn show_queries(&self) -> StatementResult {
        let rows: Vec<Vec<String>> = self
            .catalog
            .queries()
            .map(|q| {
                let status = match self.running.get(&q.id) {
                    Some(running) => running.state.status().name().to_string(),
                    None => "NOT RUNNING HERE".to_string(),
                };
                let topic = self.catalog.source(&q.sink).map(|s| s.topic.clone()).unwrap_or_default();
                vec![q.id.clone(), "PERSISTENT".into(), status, q.sink.clone(), topic, q.statement.clone()]
            })
            .collect();
        let queries: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "queryString": r[5], "sinks": [r[3]], "sinkKafkaTopics": [r[4]], "id": r[0],
                    "statusCount": {r[2].clone(): 1}, "queryType": "PERSISTENT", "state": r[2],
                })
            })
            .collect();
        StatementResult::table(
            &["Query ID", "Query Type", "Status", "Sink Name", "Sink Kafka Topic", "Query String"],
            rows,
        )
        .with_entity(serde_json::json!({"@type": "queries", "queries": queries}))
    }

    /// The numbers of the persistent queries this session runs, for `/metrics`.
    pub async fn query_metrics(&self) -> Vec<QueryMetrics> {
        use std::sync::atomic::Ordering::Relaxed;
        let mut all = Vec::with_capacity(self.running.len());
        for (id, query) in &self.running {
            let state = &query.state;
            // Records in the inputs not yet read and written: the consumer lag (of the
            // queries repartitioning its inputs too).
            let mut lag = 0u64;
            for part in std::iter::once(query).chain(query.feeders()) {
                let written = part.state.written();
                for (i, input) in std::iter::once(&part.input).chain(&part.joined).enumerate() {
                    let partitions = self.log.partition_count(&input.topic).await.unwrap_or(0);
                    for partition in 0..partitions {
                        let latest = self.log.latest_offset(&input.topic, partition).await.unwrap_or(0);
                        let at = written.get(&crate::log::follower::stream_id(i, partition)).copied().unwrap_or(0);
                        lag += latest.saturating_sub(at);
                    }
                }
            }
            all.push(QueryMetrics {
                id: id.clone(),
                sink: query.sink.as_ref().map(|s| s.name.clone()).unwrap_or_default(),
                status: state.status().name().to_string(),
                records_in: state.records_read.load(Relaxed),
                records_out: state.records_written.load(Relaxed),
                bytes_in: state.bytes_read.load(Relaxed),
                bytes_out: state.bytes_written.load(Relaxed),
                errors: state.records_skipped.load(Relaxed) + state.expression_errors.load(Relaxed),
                lag,
                state_bytes: state.state_bytes.load(Relaxed),
                checkpoints: state.checkpoints.load(Relaxed),
                latency: state.latency.cumulative(),
            });
        }
        all
    }

    /// `EXPLAIN <query id>`: the query's topology and how it is doing.
    pub(super) async fn explain_query(&self, id: &str) -> Result<StatementResult, SessionError> {
        let info = self.catalog.query(&id.to_uppercase()).cloned().ok_or_else(|| {
            refusal(format!(
                "Query with id:{id} does not exist, use SHOW QUERIES to view the full set of running queries."
            ))
        })?;
        let (query, _) = persistent_query_of(&info)?;
        let planned = self.plan_persistent(&query, &info.sink).await?;
        let sink =
            self.catalog.source(&info.sink).cloned().ok_or_else(|| refusal(format!("{} does not exist", info.sink)))?;
        let described = |source: &Source| {
            format!(
                "{} (topic '{}', key {}, value {})",
                source.name,
                source.topic,
                source.key_format.name(),
                source.value_format.name()
            )
        };
        let repartitions = self.repartitions_of(&info, &planned);
        let mut lines = Vec::new();
        // A join's inputs, read in event-time order; some through their repartition topics.
        for (i, source) in planned.sources().iter().enumerate() {
            let input = if planned.joined.is_empty() { String::new() } else { format!(" = input {i}") };
            match repartitions.iter().find(|r| r.input == i) {
                Some(repartition) => {
                    let internal = repartition.internal(&info.id)?;
                    lines.push(format!("Source {}", described(source)));
                    lines.push(format!(
                        "  -> Repartition by {} (query {})\nSource {}{input}",
                        repartition.written,
                        repartition.query_id(&info.id),
                        described(&internal)
                    ));
                }
                None => lines.push(format!("Source {}{input}", described(source))),
            }
        }
        for operator in operators_for(&query, &planned, self.query_config(&info)?.state_ttl)? {
            lines.push(format!("  -> {}", operator.describe()));
        }
        lines.push(format!(
            "  -> Sink {} (topic '{}', key {}, value {})",
            sink.name,
            sink.topic,
            sink.key_format.name(),
            sink.value_format.name()
        ));
        let mut title = format!("ID: {}\nQuery: {}\nTopology:\n{}", info.id, info.statement, lines.join("\n"));
        if let Some(running) = self.running.get(&info.id) {
            let state = &running.state;
            use std::sync::atomic::Ordering::Relaxed;
            title.push_str(&format!(
                "\nStatus: {}\nRecords read: {}, written: {}, skipped: {}, with failed expressions: {}\nState: {} bytes; checkpoints taken: {}",
                state.status().name(),
                state.records_read.load(Relaxed),
                state.records_written.load(Relaxed),
                state.records_skipped.load(Relaxed),
                state.expression_errors.load(Relaxed),
                state.state_bytes.load(Relaxed),
                state.checkpoints.load(Relaxed)
            ));
            if let crate::engine::query::QueryStatus::Error(reason) = state.status() {
                title.push_str(&format!("\nError: {reason}"));
            }
            for feeder in running.feeders() {
                let written = feeder.state.records_written.load(Relaxed);
                let status = feeder.state.status();
                title.push_str(&format!("\nRepartitioning {}: {}, {written} written", feeder.id, status.name()));
            }
        }
        Ok(StatementResult::Table {
            title: Some(title),
            columns: vec!["Column".into(), "Type".into()],
            rows: sink.columns.iter().map(|c| vec![c.name.clone(), c.sql_type.to_string()]).collect(),
        })
    }

    /// Starts the catalog's queries that are not running here, and stops the running ones
    /// the catalog no longer has (terminated, maybe by another process).
    pub(super) async fn sync_queries(&mut self) -> Result<(), SessionError> {
        if !self.runs_queries {
            return Ok(());
        }
        let gone: Vec<String> = self.running.keys().filter(|id| self.catalog.query(id).is_none()).cloned().collect();
        for id in gone {
            if let Some(query) = self.running.remove(&id) {
                let feeders: Vec<(String, String)> = query
                    .feeders()
                    .iter()
                    .filter_map(|f| Some((f.id.clone(), f.sink.as_ref()?.topic.clone())))
                    .collect();
                query.stop().await;
                self.remove_feeders(&feeders).await;
                self.forget_query(&id);
            }
        }
        let missing: Vec<QueryInfo> =
            self.catalog.queries().filter(|q| !self.running.contains_key(&q.id)).cloned().collect();
        // One process runs each query: the one that claims it (the others retry at their
        // next statement, so a query moves on when its process stops).
        let mut claimed = Vec::with_capacity(missing.len());
        for info in missing {
            if let Some(claim) = self.log.claim(&format!("query-{}", info.id)).await? {
                claimed.push((info, claim));
            }
        }
        // Every output is cut back to its checkpoint before any query starts reading: a
        // query reading another's output must not see what is about to be cut off.
        let mut ready = Vec::with_capacity(claimed.len());
        for (info, claim) in claimed {
            let mut checkpoints = self.checkpointing(&info);
            if let (Some(checkpoints), Some(sink)) = (&mut checkpoints, self.catalog.source(&info.sink)) {
                let cut = crate::engine::query::cut_back(
                    self.log.as_ref(),
                    &checkpoints.store,
                    &sink.topic,
                    checkpoints.exactly_once,
                );
                match cut.await {
                    Ok(latest) => checkpoints.latest = latest,
                    Err(e) => {
                        tracing::error!(query = %info.id, error = %e, "cannot start the query: its checkpoint");
                        continue;
                    }
                }
            }
            ready.push((info, claim, checkpoints));
        }
        for (info, claim, checkpoints) in ready {
            match self.start_query(&info, claim, checkpoints).await {
                Ok(running) => {
                    self.running.insert(info.id.clone(), running);
                }
                Err(e) => tracing::error!(query = %info.id, error = %e, "cannot start the query"),
            }
        }
        Ok(())
    }

    /// What a terminated query leaves that goes with it: its fences and checkpoints.
    pub(super) fn forget_query(&self, id: &str) {
        self.fences.lift(id);
        if let Some(root) = self.log.checkpoint_dir()
            && let Err(e) = CheckpointStore::new(&root, id).delete_all()
        {
            tracing::warn!(query = %id, error = %e, "cannot delete the checkpoints of a terminated query");
        }
    }

    /// Starts a query with `checkpoints` (see [`Session::checkpointing`]), its output cut
    /// back already.
    async fn start_query(
        &self,
        info: &QueryInfo,
        claim: crate::log::Claim,
        checkpoints: Option<Checkpointing>,
    ) -> Result<RunningQuery, SessionError> {
        let (query, _) = persistent_query_of(info)?;
        let mut planned = self.plan_persistent(&query, &info.sink).await?;
        let sink =
            self.catalog.source(&info.sink).cloned().ok_or_else(|| refusal(format!("{} does not exist", info.sink)))?;
        let rebuild_state = !matches!(planned.plan, Planned::Stateless(_));
        // Without PARTITION BY or GROUP BY the key passes through: a null key stays null.
        let keeps_key =
            query.partition_by.is_empty() && matches!(planned.plan, Planned::Stateless(_) | Planned::Over(_));
        let config = self.query_config(info)?;
        let barrier_interval = config.checkpoint_interval;
        // Where stream time decides what is late (windows, OVER frames), partitions are read
        // in event-time order, so that none runs ahead of the others (as a join's inputs are).
        let in_time_order = match &planned.plan {
            Planned::Aggregate(plan) => plan.windows.is_some(),
            Planned::Over(_) => true,
            _ => false,
        };
        let linger = config.source_linger;
        let from_earliest = info.properties.get("auto.offset.reset").is_some_and(|v| v == "earliest");
        // Sides joined on other than their keys are read from their repartition topics.
        let settings = super::repartition::FeederSettings { from_earliest, linger, barrier_interval };
        let mut feeders = Vec::new();
        for repartition in self.repartitions_of(info, &planned) {
            let (feeder, internal) = self.start_feeder(info, &repartition, &settings).await?;
            planned.replace_input(repartition.input, internal);
            feeders.push((repartition.input, feeder));
        }
        let spec = QuerySpec {
            feeders,
            in_time_order,
            checkpoints,
            fences: Arc::clone(&self.fences),
            barrier_interval,
            state_limit: config.state_limit,
            joined: planned.joined.clone(),
            id: info.id.clone(),
            rebuild_state,
            keeps_key,
            operators: operators_for(&query, &planned, config.state_ttl)?,
            input: planned.input,
            sink: crate::engine::query::Sink::Topic(sink),
            from_earliest,
            linger,
            every_update: false,
        };
        Ok(RunningQuery::start(Arc::clone(&self.log), spec, claim).await?)
    }

    /// How a query checkpoints: where the log has a place for checkpoints; exactly once
    /// where the log can cut its output back and no other query writes into it.
    fn checkpointing(&self, info: &QueryInfo) -> Option<Checkpointing> {
        let writers = self.catalog.queries().filter(|q| q.sink == info.sink).count();
        self.log.checkpoint_dir().map(|root| Checkpointing {
            store: CheckpointStore::new(&root, &info.id),
            exactly_once: writers == 1,
            latest: None,
        })
    }

    /// Waits until every running query has written everything its input holds (queries that
    /// feed each other included).
    pub async fn wait_until_idle(&self) -> Result<(), SessionError> {
        self.wait_for_queries(false).await
    }

    /// Waits until every running query is idle (as [`Session::wait_until_idle`]) and its
    /// latest checkpoint, on disk, covers everything it has read: a crash now would lose
    /// nothing and replay nothing.
    pub async fn wait_until_checkpointed(&self) -> Result<(), SessionError> {
        self.wait_for_queries(true).await
    }

    async fn wait_for_queries(&self, checkpointed: bool) -> Result<(), SessionError> {
        loop {
            // Register for wake-ups before looking, so that none is missed in between.
            let mut wakes: Vec<Pin<Box<tokio::sync::futures::Notified<'_>>>> =
                self.running.values().map(|q| Box::pin(q.state.progressed.notified())).collect();
            for wake in wakes.iter_mut() {
                wake.as_mut().enable();
            }
            let mut idle = true;
            for query in self.running.values() {
                if !query.caught_up(self.log.as_ref()).await? || (checkpointed && !query.checkpointed()) {
                    idle = false;
                    break;
                }
            }
            if idle {
                return Ok(());
            }
            let _ = tokio::time::timeout(IDLE_RECHECK, futures::future::select_all(wakes)).await;
        }
    }

    pub fn has_running_queries(&self) -> bool {
        !self.running.is_empty()
    }

    /// Stops every query running here: each drains what it read, flushes and commits.
    pub async fn shutdown(&mut self) {
        let running = std::mem::take(&mut self.running);
        futures::future::join_all(running.into_values().map(|q| q.stop())).await;
    }

    /// Eddy's properties for query `info`: what it kept when it was created, over this
    /// process's defaults.
    pub(super) fn query_config(&self, info: &QueryInfo) -> Result<crate::config::Config, SessionError> {
        crate::config::Config::default()
            .with(self.defaults.iter())
            .and_then(|config| config.with(info.properties.iter()))
            .map_err(|e| refusal(format!("query {}: {e}", info.id)))
    }

    /// The id of the newest query writing `sink`.
    fn newest_query_writing(&self, sink: &str) -> String {
        let newest = self.catalog.queries().filter(|q| q.sink == sink).max_by_key(|q| query_sequence(&q.id));
        newest.map(|q| q.id.clone()).unwrap_or_default()
    }

    /// Plans a persistent query writing `sink_name`, deciding which output columns are keys
    /// with ksqlDB's rules and messages.
    pub(super) async fn plan_persistent(
        &self,
        query: &StreamingQuery,
        sink_name: &str,
    ) -> Result<PlannedQuery, SessionError> {
        if query.query.limit_clause.is_some() {
            return Err(refusal("Persistent queries don't support LIMIT clause.".into()));
        }
        if let Some(sources) = self.join_sources(query)? {
            check_kafka_values(&sources, "JOIN")?;
            return self.plan_join_persistent(query, sink_name, sources).await;
        }
        let input = self.query_source(query)?;
        if !group_by_of(query).is_empty() {
            check_kafka_values(std::slice::from_ref(&input), "GROUP BY")?;
        }
        let star: Vec<String> = input.columns.iter().map(|c| c.name.clone()).collect();
        let mut without_partitioning = query.clone();
        without_partitioning.partition_by.clear();
        if !query.partition_by.is_empty() && !partitions_by_null(query) {
            expand_star_for_partitioning(&mut without_partitioning, &query.partition_by, &input);
        }
        if input.kind == SourceKind::Table && !query.partition_by.is_empty() {
            return Err(refusal(format!("Cannot PARTITION BY a TABLE: {} is keyed by its PRIMARY KEY", input.name)));
        }
        let planned = plan_query(&without_partitioning, &input.name, row_schema(&input), &star)
            .await
            .map_err(SessionError::from)?;
        let (plan, items) = match planned {
            QueryPlan::Stateless(mut plan) => {
                if input.kind == SourceKind::Table {
                    if plan.has_table_functions() {
                        return Err(refusal("Table source is not supported with table functions".into()));
                    }
                    // A table's row that stops matching the WHERE clause is deleted downstream.
                    plan.filter_to_tombstones();
                }
                let items = plan.items().to_vec();
                (Planned::Stateless(Arc::new(plan)), items)
            }
            QueryPlan::Aggregate { mut plan, items } => {
                if group_by_of(query).is_empty() {
                    return Err(refusal(format!(
                        "CREATE TABLE AS SELECT statement does not support aggregate function [{}] without a GROUP \
                         BY clause.",
                        aggregate_calls(&items).join(", ")
                    )));
                }
                check_state_format(&plan, input.value_format)?;
                if input.kind == SourceKind::Table {
                    aggregate_table(&mut plan, &input)?;
                }
                if !query.partition_by.is_empty() {
                    return Err(refusal("PARTITION BY is not supported with GROUP BY".into()));
                }
                (Planned::Aggregate(Arc::new(plan)), items)
            }
            QueryPlan::Over { plan, items } => {
                if input.kind == SourceKind::Table {
                    return Err(refusal("OVER windows read a STREAM: a table's rows have no arrival order".into()));
                }
                (Planned::Over(Arc::new(plan)), items)
            }
        };
        let names: Vec<String> = match &plan {
            Planned::Stateless(p) => p.output_schema(),
            Planned::Aggregate(p) => &p.output,
            Planned::Over(p) => &p.output,
            Planned::Join(p) => &p.output,
            Planned::JoinAggregate(_, p) => &p.output,
        }
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
        let grouping = match &plan {
            Planned::Aggregate(_) => Some(group_by_of(query)),
            Planned::Stateless(_) | Planned::Over(_) | Planned::Join(_) | Planned::JoinAggregate(..) => None,
        };
        let keys = key_columns(query, &input, &items, &names, sink_name, grouping.as_deref())?;
        check_reserved_names(&items, &names, &keys)?;
        if keys.iter().all(|k| k.is_some()) {
            return Err(refusal("The projection contains no value columns.".into()));
        }
        Ok(PlannedQuery { input, joined: Vec::new(), plan, keys })
    }

    /// The sources of a join query (`FROM a JOIN b`), or `None` for a one-source query.
    pub(super) fn join_sources(&self, query: &StreamingQuery) -> Result<Option<Vec<Arc<Source>>>, SessionError> {
        let datafusion::sql::sqlparser::ast::SetExpr::Select(select) = query.query.body.as_ref() else {
            return Ok(None);
        };
        let Some(from) = select.from.first() else { return Ok(None) };
        if from.joins.is_empty() {
            return Ok(None);
        }
        if select.from.len() > 1 {
            return Err(refusal("FROM names one source, then JOIN the others".into()));
        }
        let source = |relation: &datafusion::sql::sqlparser::ast::TableFactor| -> Result<Arc<Source>, SessionError> {
            let datafusion::sql::sqlparser::ast::TableFactor::Table { name, .. } = relation else {
                return Err(refusal("a join reads sources by name".into()));
            };
            let name = source_name(name);
            self.catalog
                .source(&name)
                .cloned()
                .ok_or_else(|| refusal(format!("{name} does not exist.{}", self.catalog.alternatives(&name, None))))
        };
        let mut sources = vec![source(&from.relation)?];
        for join in &from.joins {
            let next = source(&join.relation)?;
            if sources.iter().any(|s| s.name == next.name) && from.joins.len() > 1 {
                return Err(refusal(format!(
                    "N-way joins do not support multiple occurrences of the same source. Source: '{}'",
                    next.name
                )));
            }
            sources.push(next);
        }
        Ok(Some(sources))
    }

    /// A join re-keyed by `PARTITION BY e`: its result is keyed by the projected column that
    /// is `e` (not by the join key), and written partitioned by it.
    async fn plan_partitioned_join(
        &self,
        query: &StreamingQuery,
        sink_name: &str,
        sources: Vec<Arc<Source>>,
    ) -> Result<PlannedQuery, SessionError> {
        use datafusion::sql::sqlparser::ast::{SelectItem, SetExpr};
        let mut joined = query.clone();
        joined.partition_by.clear();
        if let SetExpr::Select(select) = joined.query.body.as_ref()
            && select
                .projection
                .iter()
                .any(|i| matches!(i, SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)))
        {
            return Err(refusal("SELECT * with PARTITION BY of a join is not supported yet: name the columns".into()));
        }
        let mut plan = self.plan_join_checked(&joined, &sources).await?;
        let names: Vec<String> = plan.output.fields().iter().map(|f| f.name().clone()).collect();
        let mut keys = vec![None; plan.items.len()];
        if !partitions_by_null(query) {
            let [by] = query.partition_by.as_slice() else {
                return Err(refusal("PARTITION BY of a join takes one expression".into()));
            };
            let by = unqualified_if_bare(by);
            let text = |e: &Expr| strip_quotes(&unqualified_if_bare(e));
            // A bare column matches the projection's column of that name, whichever source's.
            let matches = |item: &Expr| match (&by, item) {
                (Expr::Identifier(column), Expr::CompoundIdentifier(parts)) => {
                    parts.last().is_some_and(|p| p.value == column.value)
                }
                _ => text(item) == text(&by),
            };
            let Some(i) = plan.items.iter().position(matches) else {
                return Err(refusal(format!(
                    "Key missing from projection (ie, SELECT). See https://cnfl.io/2LV7ouS.\nThe query used to build \
                     `{sink_name}` must include the partitioning expression {} in its projection (eg, SELECT {}...).",
                    text(&by),
                    text(&by)
                )));
            };
            keys[i] = Some(0);
        }
        plan.key_output = None;
        joined_query(plan, &names, keys, sources)
    }

    /// Plans a join of `sources` as ksqlDB checks one: self joins, value formats, each
    /// table joined on its key, partition counts of sides joined on their keys.
    pub(super) async fn plan_join_checked(
        &self,
        query: &StreamingQuery,
        sources: &[Arc<Source>],
    ) -> Result<crate::engine::join::JoinPlan, SessionError> {
        use crate::engine::join::JoinShape;
        use crate::planner::join::plan_join;
        if sources[0].name == sources[1].name {
            return Err(refusal(format!(
                "Can not join '{0}' to '{0}': self joins are not yet supported.",
                sources[0].name
            )));
        }
        let kafka: Vec<&str> = sources
            .iter()
            .filter(|s| s.value_format == crate::catalog::Format::Kafka)
            .map(|s| s.name.as_str())
            .collect();
        if !kafka.is_empty() {
            return Err(refusal(format!(
                "Source(s) {} are using the 'KAFKA' value format. This format does not yet support JOIN.",
                kafka.join(", ")
            )));
        }
        let plan = plan_join(query, &join_inputs(sources)).await.map_err(SessionError::from)?;
        for (step, on) in plan.on.iter().enumerate() {
            let right = &sources[step + 1];
            let condition = &plan.conditions[step];
            let shape = plan.steps[step].shape;
            // The right side names its key column.
            let right_key: Vec<&str> =
                right.columns.iter().filter(|c| c.role == ColumnRole::Key).map(|c| c.name.as_str()).collect();
            let on_right_key = matches!(&on[1], Expr::CompoundIdentifier(parts) if parts.last().is_some_and(|c| right_key == [c.value.as_str()]));
            // ksqlDB joins sides joined on their keys partition by partition: their partition
            // counts must match. (Eddy reads every partition in one task and re-keys in memory,
            // so it could join them; the check keeps queries portable to and from ksqlDB.)
            let left_keyed = plan.steps[..=step].iter().all(|s| s.left_keyed);
            if left_keyed && on_right_key && shape != JoinShape::ForeignKey {
                let counts =
                    [self.log.partition_count(&sources[0].topic).await?, self.log.partition_count(&right.topic).await?];
                if counts[0] != counts[1] {
                    return Err(refusal(format!(
                        "Can't join `{}` with `{}` since the number of partitions don't match. `{}` partitions = {}; \
                         `{}` partitions = {}. Please repartition either one so that the number of partitions match.",
                        sources[0].name, right.name, sources[0].name, counts[0], right.name, counts[1]
                    )));
                }
            }
            // A table is joined on its PRIMARY KEY.
            if right.kind == SourceKind::Table && !on_right_key {
                let message = if matches!(shape, JoinShape::TableTable | JoinShape::ForeignKey) {
                    "table-table joins require to join on the primary key of the right input table"
                } else {
                    "stream-table joins require to join on the table's primary key"
                };
                return Err(refusal(format!("Invalid join condition: {message}. Got {condition}.")));
            }
        }
        Ok(plan)
    }

    /// Plans a join query: DataFusion plans it over both sources' rows; the key is the join
    /// key, which the projection must include as ksqlDB requires.
    async fn plan_join_persistent(
        &self,
        query: &StreamingQuery,
        sink_name: &str,
        sources: Vec<Arc<Source>>,
    ) -> Result<PlannedQuery, SessionError> {
        if crate::planner::join_aggregate::aggregates(query) {
            return self.plan_aggregated_join(query, sink_name, sources).await;
        }
        if !query.partition_by.is_empty() {
            return self.plan_partitioned_join(query, sink_name, sources).await;
        }
        let mut plan = self.plan_join_checked(query, &sources).await?;
        let names: Vec<String> = plan.output.fields().iter().map(|f| f.name().clone()).collect();
        // The key: the join expression of either side that is a column, as written, or
        // ROWKEY when neither is (or for FULL OUTER, where it may come from either side).
        let synthetic = plan.synthetic_key;
        let text = |e: &Expr| strip_quotes(&unqualified_if_bare(e));
        let wanted: Vec<String> =
            if synthetic { vec![plan.rowkey.clone()] } else { plan.key_columns.iter().map(text).collect() };
        let mut keys = vec![None; plan.items.len()];
        // The first key column in the projection, the left side's first.
        match wanted.iter().find_map(|w| plan.items.iter().position(|item| text(item) == *w)) {
            Some(i) => {
                // The key column once: the same expression again under another name is refused.
                let again: Vec<usize> =
                    (0..plan.items.len()).filter(|j| text(&plan.items[*j]) == text(&plan.items[i])).collect();
                if again.len() > 1 {
                    let mut aliases: Vec<&str> = again.iter().map(|j| names[*j].as_str()).collect();
                    aliases.sort();
                    return Err(refusal(format!(
                        "The projection contains a key column (`{}`) more than once, aliased as: {}.",
                        names[i],
                        aliases.join(" and ")
                    )));
                }
                keys[i] = Some(0);
                plan.key_output = Some(i);
            }
            None if plan.steps.last().is_some_and(|step| step.shape == crate::engine::join::JoinShape::ForeignKey) => {
                // A foreign-key join's rows are keyed by the left table's primary key.
                let left = sources[0].name.clone();
                let missing: Vec<String> =
                    wanted.iter().map(|k| format!("`{}`", k.rsplit('.').next().unwrap_or(k))).collect();
                let column = if missing.len() == 1 { "column" } else { "columns" };
                return Err(refusal(format!(
                    "Primary key {column} missing in projection. For foreign-key table-table joins, the projection \
                     must include all primary key columns from the left input table ({left}). Missing {column}: {}.",
                    missing.join(", ")
                )));
            }
            None => {
                let shown = match wanted.split_last() {
                    Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
                    _ => wanted.concat(),
                };
                let (what, example) = if synthetic {
                    (format!("join expression {}", plan.rowkey), plan.rowkey.clone())
                } else {
                    let plural = if wanted.len() > 1 { "s" } else { "" };
                    (format!("join expression{plural} {shown}"), wanted[0].clone())
                };
                let mut message = format!(
                    "Key missing from projection (ie, SELECT). See https://cnfl.io/2LV7ouS.\nThe query used to build \
                     `{sink_name}` must include the {what} in its projection (eg, SELECT {example}...)."
                );
                if synthetic {
                    message.push_str(&format!(
                        "\n{} was added as a synthetic key column because the join criteria did not match any \
                         source column. This expression must be included in the projection and may be aliased.",
                        plan.rowkey
                    ));
                }
                return Err(refusal(message));
            }
        }
        joined_query(plan, &names, keys, sources)
    }

    /// GROUP BY over a join: a table keyed by the grouping expressions, as any aggregation.
    async fn plan_aggregated_join(
        &self,
        query: &StreamingQuery,
        sink_name: &str,
        sources: Vec<Arc<Source>>,
    ) -> Result<PlannedQuery, SessionError> {
        let grouped = self.plan_grouped_join(query, &sources).await?;
        let names: Vec<String> = grouped.aggregate.output.fields().iter().map(|f| f.name().clone()).collect();
        // The grouping expressions are over the bridge rows, as the projection is.
        let bridge_schema = crate::engine::join_aggregate::bridge_schema(&grouped.join.output);
        let columns = bridge_schema
            .fields()
            .iter()
            .filter_map(|f| {
                Some(crate::catalog::Column {
                    name: f.name().clone(),
                    sql_type: SqlType::from_arrow(f.data_type())?,
                    data_type: f.data_type().clone(),
                    role: ColumnRole::Value,
                })
            })
            .collect();
        let bridge =
            Source { name: grouped.bridge_name.clone(), columns, schema: bridge_schema, ..sources[0].as_ref().clone() };
        let grouping = group_by_of(&grouped.query);
        let keys = key_columns(&grouped.query, &bridge, &grouped.items, &names, sink_name, Some(&grouping))?;
        check_reserved_names(&grouped.items, &names, &keys)?;
        if keys.iter().all(|k| k.is_some()) {
            return Err(refusal("The projection contains no value columns.".into()));
        }
        let mut sources = sources.into_iter();
        let input = sources.next().ok_or_else(|| refusal("a join reads sources".into()))?;
        Ok(PlannedQuery {
            input,
            joined: sources.collect(),
            plan: Planned::JoinAggregate(Arc::new(grouped.join), Arc::new(grouped.aggregate)),
            keys,
        })
    }

    /// Plans GROUP BY over a join: the join, producing bridge rows, and the aggregation of
    /// them, as of a stream (or, when every input is a table, of a changelog keyed by the
    /// join key).
    pub(super) async fn plan_grouped_join(
        &self,
        query: &StreamingQuery,
        sources: &[Arc<Source>],
    ) -> Result<GroupedJoin, SessionError> {
        use crate::engine::join_aggregate::bridge_schema;
        use crate::planner::join_aggregate::split;
        if !query.partition_by.is_empty() {
            return Err(refusal("PARTITION BY is not supported with GROUP BY".into()));
        }
        let split = split(query, &join_inputs(sources)).map_err(SessionError::from)?;
        let join = self.plan_join_checked(&split.join, sources).await?;
        let bridge = bridge_schema(&join.output);
        let planned = plan_query(&split.aggregate, &split.bridge_name, Arc::clone(&bridge), &[])
            .await
            .map_err(SessionError::from)?;
        let QueryPlan::Aggregate { mut plan, items } = planned else {
            return Err(refusal("a join with WINDOW or HAVING must aggregate: add GROUP BY".into()));
        };
        check_state_format(&plan, sources[0].value_format)?;
        if sources.iter().all(|s| s.kind == SourceKind::Table) {
            let key = bridge.index_of(&split.key_column).map_err(|e| refusal(e.to_string()))?;
            aggregate_changelog(&mut plan, vec![key])?;
        }
        Ok(GroupedJoin { join, aggregate: plan, items, query: split.aggregate, bridge_name: split.bridge_name })
    }

    /// The `CREATE STREAM` of a CSAS's sink: the query's columns, with its properties and the
    /// input's where it gives none.
    async fn sink_statement(
        &self,
        create: &CreateAsSelect,
        planned: &PlannedQuery,
    ) -> Result<CreateSource, SessionError> {
        let given = property_map(&create.properties).map_err(|e| refusal(e.0))?;
        let has_keys = planned.keys.iter().any(|k| k.is_some());
        if !has_keys && given.get("KEY_FORMAT").is_some_and(|f| !f.eq_ignore_ascii_case("NONE")) {
            return Err(refusal("Key format specified for stream without key columns.".into()));
        }
        let input = &planned.input;
        let mut properties: BTreeMap<String, String> = given.clone();
        properties.entry("KAFKA_TOPIC".into()).or_insert_with(|| source_name(&create.name));
        if !given.contains_key("FORMAT") {
            // Keys need a format: a keyless input's NONE becomes ksqlDB's default, KAFKA.
            let default_key_format = self
                .properties
                .get("ksql.persistence.default.format.key")
                .map_or_else(|| "KAFKA".to_string(), |f| f.to_uppercase());
            let key_format = match (has_keys, input.key_format) {
                (false, _) => "NONE",
                // A key where the input had none: the session's default key format.
                (true, crate::catalog::Format::None) => default_key_format.as_str(),
                (true, format) => format.name(),
            };
            properties.entry("KEY_FORMAT".into()).or_insert_with(|| key_format.into());
            properties.entry("VALUE_FORMAT".into()).or_insert_with(|| input.value_format.name().into());
        }
        // A sink in its input's format inherits the format's options it does not set.
        for (format, delimiter, input_format) in
            [("KEY_FORMAT", "KEY_DELIMITER", input.key_format), ("VALUE_FORMAT", "VALUE_DELIMITER", input.value_format)]
        {
            let same_format = properties
                .get(format)
                .or(properties.get("FORMAT"))
                .is_some_and(|f| f.eq_ignore_ascii_case(input_format.name()));
            if same_format
                && !properties.contains_key(delimiter)
                && let Some(inherited) = input.properties.get(delimiter)
            {
                properties.insert(delimiter.into(), inherited.clone());
            }
        }
        if let Planned::Aggregate(plan) | Planned::JoinAggregate(_, plan) = &planned.plan
            && let Some(windows) = &plan.windows
        {
            properties.insert("WINDOW_TYPE".into(), windows.kind_name().into());
            if !windows.is_session() {
                properties.insert("WINDOW_SIZE".into(), format!("{} MILLISECONDS", windows.size_ms));
            }
        }
        // A windowed stream's rows keep their windows through a projection (not re-keyed),
        // and through a join of windowed sources.
        if matches!(&planned.plan, Planned::Stateless(_) | Planned::Join(_))
            && create.query.partition_by.is_empty()
            && input.window_key_bytes() > 0
        {
            for property in ["WINDOW_TYPE", "WINDOW_SIZE"] {
                if let Some(value) = input.properties.get(property) {
                    properties.insert(property.into(), value.clone());
                }
            }
        }
        if !properties.contains_key("PARTITIONS") {
            let partitions = self.log.partition_count(&input.topic).await?;
            properties.insert("PARTITIONS".into(), partitions.to_string());
        }
        let schema = planned.output_schema();
        let mut columns = Vec::with_capacity(schema.fields().len());
        // Key columns first, in key order; then the values in projection order.
        let mut order: Vec<usize> = (0..schema.fields().len()).collect();
        order.sort_by_key(|i| planned.keys[*i].unwrap_or(usize::MAX));
        for i in order {
            let (field, is_key) = (schema.field(i), planned.keys[i].is_some());
            let data_type = match SqlType::from_arrow(field.data_type()) {
                Some(t) => t,
                None if field.data_type().is_null() => {
                    return Err(refusal(format!(
                        "Can't infer a type of null. Please explicitly cast it to a required type, \
                         e.g. CAST(null AS VARCHAR). Column: {}",
                        field.name()
                    )));
                }
                None => {
                    return Err(refusal(format!(
                        "Column {} has type {}, which ksqlDB types cannot hold",
                        field.name(),
                        field.data_type()
                    )));
                }
            };
            let constraint = match (is_key, create.kind) {
                (false, _) => ColumnConstraint::None,
                (true, SourceKind::Stream) => ColumnConstraint::Key,
                (true, SourceKind::Table) => ColumnConstraint::PrimaryKey,
            };
            columns.push(ColumnDef { name: Ident::with_quote('`', field.name().clone()), data_type, constraint });
        }
        let mut sink = CreateSource {
            or_replace: false,
            source: false,
            kind: create.kind,
            if_not_exists: false,
            name: create.name.clone(),
            columns,
            properties: Properties(
                properties.into_iter().map(|(k, v)| (Ident::new(k), Value::SingleQuotedString(v))).collect(),
            ),
        };
        self.default_value_wrapping(&mut sink);
        Ok(sink)
    }
}

/// The columns of a planned query as an INSERT INTO compares them with its sink's.
fn describe_columns(planned: &PlannedQuery) -> Vec<String> {
    planned
        .output_schema()
        .fields()
        .iter()
        .zip(&planned.keys)
        .map(|(f, key)| {
            let sql_type =
                SqlType::from_arrow(f.data_type()).map_or_else(|| f.data_type().to_string(), |t| t.to_string());
            format!("`{}` {sql_type}{}", f.name(), if key.is_some() { " KEY" } else { "" })
        })
        .collect()
}

/// The operators of a planned query, source to sink; `state_ttl` bounds an unwindowed
/// aggregation's state in time.
fn operators_for(
    query: &StreamingQuery,
    planned: &PlannedQuery,
    state_ttl: Option<Duration>,
) -> Result<Vec<Box<dyn Operator>>, SessionError> {
    let select = match query.query.body.as_ref() {
        datafusion::sql::sqlparser::ast::SetExpr::Select(select) => Some(select),
        _ => None,
    };
    let filter = select.and_then(|s| s.selection.as_ref()).map(|c| format!("Filter: {c}; ")).unwrap_or_default();
    let columns: Vec<String> = planned
        .output_schema()
        .fields()
        .iter()
        .zip(&planned.keys)
        .map(|(f, key)| format!("{}{}", f.name(), if key.is_some() { " (key)" } else { "" }))
        .collect();
    let mut description = format!("{filter}Project: {}", columns.join(", "));
    if !query.partition_by.is_empty() {
        let by: Vec<String> = query.partition_by.iter().map(|e| e.to_string()).collect();
        description.push_str(&format!("; re-keyed by {}", by.join(", ")));
    }
    match &planned.plan {
        Planned::Stateless(plan) => Ok(vec![Box::new(Project::new(Arc::clone(plan), description))]),
        Planned::Join(plan) => join_operators(plan, &format!("; {filter}Project: {}", columns.join(", "))),
        Planned::JoinAggregate(join, plan) => {
            let mut operators = join_operators(join, "")?;
            let bridge = crate::engine::join_aggregate::bridge_schema(&join.output);
            operators.push(Box::new(crate::engine::join_aggregate::StampRowTime::new(bridge)));
            let by = group_by_of(query).iter().map(|e| e.to_string()).collect::<Vec<_>>().join(", ");
            let description = format!("{filter}Aggregate by {by}; Project: {}", columns.join(", "));
            operators.push(aggregate_operator(plan, description, state_ttl)?);
            Ok(operators)
        }
        Planned::Over(plan) => {
            let description = format!("{filter}Over (frames per partition); Project: {}", columns.join(", "));
            let operator =
                crate::engine::over::Over::try_new(Arc::clone(plan), description).map_err(SessionError::from)?;
            Ok(vec![Box::new(operator)])
        }
        Planned::Aggregate(plan) => {
            let by = group_by_of(query).iter().map(|e| e.to_string()).collect::<Vec<_>>().join(", ");
            let description = format!("{filter}Aggregate by {by}; Project: {}", columns.join(", "));
            Ok(vec![aggregate_operator(plan, description, state_ttl)?])
        }
    }
}

/// The operator of an aggregation: tumbling and hopping windows with EMIT FINAL run batch at
/// a time on DataFusion's groups accumulators, everything else group by group.
fn aggregate_operator(
    plan: &Arc<crate::engine::aggregate::AggregatePlan>,
    description: String,
    state_ttl: Option<Duration>,
) -> Result<Box<dyn Operator>, SessionError> {
    if crate::engine::window_aggregate::FinalWindows::runs(plan) {
        let operator = crate::engine::window_aggregate::FinalWindows::try_new(Arc::clone(plan), description)
            .map_err(SessionError::from)?;
        return Ok(Box::new(operator));
    }
    let operator = crate::engine::aggregate::Aggregate::try_new(Arc::clone(plan), description)
        .map_err(SessionError::from)?
        .with_state_ttl(state_ttl.map(|ttl| i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)));
    Ok(Box::new(operator))
}

/// A join operator per step of `plan`; the last step's description ends with `last`.
pub(super) fn join_operators(
    plan: &Arc<crate::engine::join::JoinPlan>,
    last: &str,
) -> Result<Vec<Box<dyn Operator>>, SessionError> {
    let mut operators: Vec<Box<dyn Operator>> = Vec::with_capacity(plan.steps.len());
    for (i, step) in plan.steps.iter().enumerate() {
        let suffix = if i + 1 == plan.steps.len() { last } else { "" };
        let description = format!("{:?} join {:?} with input {}{suffix}", step.kind, step.shape, step.right_input);
        let operator =
            crate::engine::join::Join::try_new(Arc::clone(plan), i, description).map_err(SessionError::from)?;
        operators.push(Box::new(operator));
    }
    Ok(operators)
}

/// ksqlDB's refusal of a JOIN or GROUP BY over sources whose values are in the KAFKA format
/// (it would need a repartition or changelog topic in that format).
fn check_kafka_values(sources: &[Arc<Source>], operation: &str) -> Result<(), SessionError> {
    let kafka: Vec<&str> =
        sources.iter().filter(|s| s.value_format == crate::catalog::Format::Kafka).map(|s| s.name.as_str()).collect();
    if kafka.is_empty() {
        return Ok(());
    }
    Err(refusal(format!(
        "Source(s) {} are using the 'KAFKA' value format. This format does not yet support {operation}.\nThe KAFKA \
         format is primarily intended for use as a key format. It can be used as a value format, but can not be used \
         in any operation that requires a repartition or changelog topic.",
        kafka.join(", ")
    )))
}

/// The GROUP BY expressions of a query as written.
/// The aggregate calls of a projection as ksqlDB prints them (`COUNT(*)` counts ROWTIME).
fn aggregate_calls(items: &[Expr]) -> Vec<String> {
    let context = crate::planner::query::planning_context();
    let state = context.state();
    let mut calls = Vec::new();
    for item in items {
        let _ = datafusion::sql::sqlparser::ast::visit_expressions(item, |e: &Expr| {
            if let Expr::Function(f) = e {
                let name = f.name.to_string().to_lowercase();
                if state.aggregate_functions().contains_key(&name) || name == "count_distinct" {
                    let text = crate::planner::query::ksql_expression_text(e);
                    calls.push(if text == "COUNT(*)" || text == "COUNT()" { "COUNT(ROWTIME)".into() } else { text });
                    return std::ops::ControlFlow::Continue(());
                }
            }
            std::ops::ControlFlow::<()>::Continue(())
        });
    }
    calls
}

fn group_by_of(query: &StreamingQuery) -> Vec<Expr> {
    use datafusion::sql::sqlparser::ast::{GroupByExpr, SetExpr};
    match query.query.body.as_ref() {
        SetExpr::Select(select) => match &select.group_by {
            GroupByExpr::Expressions(exprs, _) => exprs.clone(),
            GroupByExpr::All(_) => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// ksqlDB keeps some functions' state in the source's value format, and DELIMITED cannot
/// hold a list or struct.
fn check_state_format(
    plan: &crate::engine::aggregate::AggregatePlan,
    value_format: crate::catalog::Format,
) -> Result<(), SessionError> {
    let structured_state = ["topk", "topkdistinct", "correlation", "collect_list", "collect_set", "histogram"];
    if value_format == crate::catalog::Format::Delimited
        && plan.aggregates.iter().any(|a| structured_state.contains(&a.fun().name()))
    {
        return Err(refusal(
            "One of the functions used in the statement has an intermediate type that the value format can not \
             handle. Please remove the function or change the format."
                .into(),
        ));
    }
    Ok(())
}

/// Aggregating a table: each change of a row retracts its previous version, so only
/// aggregate functions that can take a value out again may be used, and no windows.
pub(super) fn aggregate_table(
    plan: &mut crate::engine::aggregate::AggregatePlan,
    input: &Source,
) -> Result<(), SessionError> {
    // A table's rows replace each other by key: each change retracts the last.
    let schema = row_schema(input);
    let keys = input
        .columns
        .iter()
        .filter(|c| c.role == ColumnRole::Key)
        .map(|c| schema.index_of(&c.name))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| refusal(e.to_string()))?;
    aggregate_changelog(plan, keys)
}

/// Aggregating a changelog whose rows replace each other by the columns `keys`: each
/// change retracts the last, so only aggregate functions that can take a value out again
/// may be used, and no windows.
pub(super) fn aggregate_changelog(
    plan: &mut crate::engine::aggregate::AggregatePlan,
    keys: Vec<usize>,
) -> Result<(), SessionError> {
    if plan.windows.is_some() {
        return Err(refusal("A TABLE cannot be aggregated in windows".into()));
    }
    plan.table_keys = Some(keys);
    // Only aggregates that can take a value out again can follow a table.
    let mut unable: Vec<String> = Vec::new();
    for aggregate in &plan.aggregates {
        let name = aggregate.fun().name().to_uppercase();
        // ksqlDB has no table variant of MIN and MAX, though DataFusion can retract.
        let retracts = aggregate.create_sliding_accumulator().is_ok_and(|a| a.supports_retract_batch())
            && !matches!(name.as_str(), "MIN" | "MAX");
        if !retracts && !unable.contains(&name) {
            unable.push(name);
        }
    }
    if !unable.is_empty() {
        let listed = match unable.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
            _ => unable.concat(),
        };
        return Err(refusal(format!(
            "The aggregation functions {listed} cannot be applied to a table source, only to a stream source."
        )));
    }
    Ok(())
}

/// Which output columns are keys, and their place in the key. Without PARTITION BY, those
/// that are the input's key columns (each exactly once, all of them); with it, those that
/// are its expressions (all of them, compared without source qualifiers), in its order;
/// with `PARTITION BY NULL`, none.
fn key_columns(
    query: &StreamingQuery,
    input: &Source,
    items: &[Expr],
    names: &[String],
    sink_name: &str,
    group_by: Option<&[Expr]>,
) -> Result<Vec<Option<usize>>, SessionError> {
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
const RESERVED_COLUMNS: [&str; 5] = ["ROWTIME", "ROWPARTITION", "ROWOFFSET", "WINDOWSTART", "WINDOWEND"];

/// A value column named as a pseudo column is refused, with ksqlDB's two messages: one for
/// selecting the pseudo column itself without an alias, one for an alias of that name.
fn check_reserved_names(items: &[Expr], names: &[String], keys: &[Option<usize>]) -> Result<(), SessionError> {
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
fn unnested(mut expr: &Expr) -> &Expr {
    while let Expr::Nested(inner) = expr {
        expr = inner;
    }
    expr
}

/// `L.A` stays `L.A`; used to compare a join's projection with its ON expressions.
fn unqualified_if_bare(expr: &Expr) -> Expr {
    let mut expr = expr.clone();
    normalise_expression(&mut expr);
    expr
}

fn strip_quotes(expr: &Expr) -> String {
    expr.to_string().replace('`', "")
}

/// `PARTITION BY NULL`.
fn partitions_by_null(query: &StreamingQuery) -> bool {
    query.partition_by.iter().any(|e| matches!(e, Expr::Value(v) if v.value == Value::Null))
}

/// A PARTITION BY expression as ksqlDB prints it in messages: columns qualified by the
/// source, function names upper-cased, a binary operation in parentheses.
fn qualified_text(expr: &Expr, input: &Source) -> String {
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
fn expand_star_for_partitioning(query: &mut StreamingQuery, partition_by: &[Expr], input: &Source) {
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

/// The join inputs of `sources`, in FROM order.
pub(super) fn join_inputs(sources: &[Arc<Source>]) -> Vec<crate::engine::join::JoinInput> {
    sources
        .iter()
        .map(|s| crate::engine::join::JoinInput {
            name: s.name.clone(),
            row_schema: row_schema(s),
            star: s.columns.iter().map(|c| c.name.clone()).collect(),
            table: s.kind == SourceKind::Table,
            key: s.columns.iter().filter(|c| c.role == ColumnRole::Key).map(|c| c.name.clone()).collect(),
            window: s.window(),
        })
        .collect()
}

/// A planned join with its key columns chosen: checked as any query's projection is.
fn joined_query(
    plan: crate::engine::join::JoinPlan,
    names: &[String],
    keys: Vec<Option<usize>>,
    sources: Vec<Arc<Source>>,
) -> Result<PlannedQuery, SessionError> {
    check_reserved_names(&plan.items, names, &keys)?;
    if keys.iter().all(|k| k.is_some()) {
        return Err(refusal("The projection contains no value columns.".into()));
    }
    let mut sources = sources.into_iter();
    let input = sources.next().ok_or_else(|| refusal("a join reads sources".into()))?;
    Ok(PlannedQuery { input, joined: sources.collect(), plan: Planned::Join(Arc::new(plan)), keys })
}

/// The query of a persistent query's statement, and whether it is an INSERT INTO.
fn persistent_query_of(info: &QueryInfo) -> Result<(StreamingQuery, bool), SessionError> {
    match parse_one(&info.statement).map_err(SessionError::Parse)? {
        Statement::CreateAsSelect(create) => Ok((*create.query, false)),
        Statement::InsertInto(insert) => Ok((*insert.query, true)),
        other => Err(refusal(format!("not a persistent query: {other}"))),
    }
}

/// The command offset at the end of a query id, which orders queries by creation.
fn query_sequence(id: &str) -> u64 {
    id.rsplit('_').next().and_then(|n| n.parse().ok()).unwrap_or(0)
}
