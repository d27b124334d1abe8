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

use datafusion::sql::sqlparser::ast::{Ident, Value};

use super::command_log::Command;
use super::*;
use crate::catalog::{QueryInfo, Source, property_map};
use crate::engine::checkpoint::CheckpointStore;
use crate::engine::query::{Checkpointing, QuerySpec, RunningQuery};
use crate::planner::persistent::{Planned, PlannedQuery, describe_columns, operators_for};
use crate::sql::ast::{ColumnConstraint, ColumnDef, CreateAsSelect, CreateSource, InsertInto, Properties, SqlType};
use crate::sql::ast::{StreamingQuery, Terminate};

/// How long [`Session::wait_until_idle`] sleeps between checks when nothing wakes it.
pub(super) const IDLE_RECHECK: Duration = Duration::from_millis(100);

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
        let planned = self.planner().plan_persistent(&create.query, &name).await?;
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
        check_schema_id_columns(&sink_source).await?;
        super::prepare_codecs(&sink_source, crate::format::Registration::Sink).await?;
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
        let planned = self.planner().plan_persistent(&insert.query, &name).await?;
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

    /// The persistent queries that failed while running, with why.
    pub fn failed_queries(&self) -> Vec<(String, String)> {
        self.running
            .iter()
            .filter_map(|(id, running)| match running.state.status() {
                crate::engine::query::QueryStatus::Error(reason) => Some((id.clone(), reason)),
                _ => None,
            })
            .collect()
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
        let queries = rows.iter().map(|r| super::entity::QueryRef::listed(&r[0], &r[5], &r[3], &r[4], &r[2])).collect();
        StatementResult::table(
            &["Query ID", "Query Type", "Status", "Sink Name", "Sink Kafka Topic", "Query String"],
            rows,
        )
        .with_entity(super::entity::to_value(&super::entity::Listing::Queries { queries }))
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
        let planned = self.planner().plan_persistent(&query, &info.sink).await?;
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
                self.forget_query(&id).await;
            }
        }
        let missing: Vec<QueryInfo> =
            self.catalog.queries().filter(|q| !self.running.contains_key(&q.id)).cloned().collect();
        // One process runs each query: the one that claims it (the others retry at their
        // next statement, so a query moves on when its process stops).
        let mut claimed = Vec::with_capacity(missing.len());
        for info in missing {
            let input = info.inputs.first().and_then(|name| self.catalog.source(name));
            let partitions = match input {
                Some(input) => self.log.partition_count(&input.topic).await,
                None => Ok(1),
            };
            // A query that cannot be assigned is left for the next statement to try again
            // (an input topic deleted under it, a coordinator failing); the others go on.
            match partitions.map_err(SessionError::from) {
                Ok(partitions) => match self.assign(&info.id, partitions).await {
                    Ok(Some(claim)) => claimed.push((info, claim)),
                    Ok(None) => {}
                    Err(e) => tracing::error!(query = %info.id, error = %e, "cannot assign the query"),
                },
                Err(e) => tracing::error!(query = %info.id, error = %e, "cannot assign the query: its input"),
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
    pub(super) async fn forget_query(&self, id: &str) {
        self.fences.lift(id);
        if let Err(e) = CheckpointStore::for_log(&self.log, id).delete_all().await {
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
        let mut planned = self.planner().plan_persistent(&query, &info.sink).await?;
        let sink =
            self.catalog.source(&info.sink).cloned().ok_or_else(|| refusal(format!("{} does not exist", info.sink)))?;
        // The sink's schema ids, found now (without blocking a thread on a remote registry)
        // rather than at its first write. One not found yet is looked up when written.
        if let Err(e) = super::prepare_codecs(&sink, crate::format::Registration::Restart).await {
            tracing::warn!(query = %info.id, error = %e, "cannot look the sink's schema ids up yet");
        }
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
        // A query that reads few of its stream's columns has the others skipped, not decoded.
        if let Some(narrowed) = planned.input_columns_used().and_then(|used| planned.input.reading_only(&used)) {
            planned.input = Arc::new(narrowed);
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

    /// How a query checkpoints: in the log's checkpoint directory or its checkpoint topic;
    /// exactly once where the log can cut its output back and no other query writes into it.
    fn checkpointing(&self, info: &QueryInfo) -> Option<Checkpointing> {
        let writers = self.catalog.queries().filter(|q| q.sink == info.sink).count();
        Some(Checkpointing {
            store: CheckpointStore::for_log(&self.log, &info.id),
            exactly_once: writers == 1 && self.log.can_truncate(),
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
        self.stop_connectors().await;
        let running = std::mem::take(&mut self.running);
        futures::future::join_all(running.into_values().map(|q| q.stop())).await;
    }

    /// Eddy's properties for query `info`: what it kept when it was created, over this
    /// process's defaults.
    pub(super) fn query_config(&self, info: &QueryInfo) -> Result<crate::config::Config, SessionError> {
        self.config_over(&info.properties).map_err(|e| refusal(format!("query {}: {e}", info.id)))
    }

    /// Eddy's properties among `properties`, over this process's defaults.
    pub(super) fn config_over(
        &self,
        properties: &BTreeMap<String, String>,
    ) -> Result<crate::config::Config, crate::config::ConfigError> {
        crate::config::Config::default().with(self.defaults.iter()).and_then(|config| config.with(properties.iter()))
    }

    /// Asks the log's coordinator whether this process runs query `id` (whose input has
    /// `partitions`): the claim to hold while it does, or `None` when another process runs
    /// it. Only whole queries are assigned yet.
    pub(super) async fn assign(&self, id: &str, partitions: u32) -> Result<Option<crate::log::Claim>, SessionError> {
        let Some(assignment) = self.log.coordinator().assign(id, partitions).await? else { return Ok(None) };
        if assignment.partitions.len() != partitions as usize {
            return Err(SessionError::Internal {
                message: format!(
                    "{}: query {id} was given {} of its {partitions} partitions, and a query split among \
                     processes is not supported yet",
                    crate::error::BUG,
                    assignment.partitions.len()
                ),
                at: Location::new(1, 1),
            });
        }
        Ok(Some(assignment.into_claim()))
    }

    /// What the planner reads: this session's catalog and log.
    pub(super) fn planner(&self) -> crate::planner::Planner<'_> {
        crate::planner::Planner { catalog: &self.catalog, log: self.log.as_ref() }
    }

    /// The id of the newest query writing `sink`.
    fn newest_query_writing(&self, sink: &str) -> String {
        let newest = self.catalog.queries().filter(|q| q.sink == sink).max_by_key(|q| query_sequence(&q.id));
        newest.map(|q| q.id.clone()).unwrap_or_default()
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
            let key_format = match (has_keys, &input.key_format) {
                (false, _) => "NONE",
                // A key where the input had none: the session's default key format.
                (true, format) if format.is(crate::format::NONE) => default_key_format.as_str(),
                (true, format) => format.name(),
            };
            properties.entry("KEY_FORMAT".into()).or_insert_with(|| key_format.into());
            properties.entry("VALUE_FORMAT".into()).or_insert_with(|| input.value_format.name().into());
        }
        // A sink in its input's format inherits the format's options it does not set.
        for (format, delimiter, input_format) in [
            ("KEY_FORMAT", "KEY_DELIMITER", &input.key_format),
            ("VALUE_FORMAT", "VALUE_DELIMITER", &input.value_format),
        ] {
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

/// A query writing with a registered schema (`KEY_SCHEMA_ID`/`VALUE_SCHEMA_ID`) must produce
/// that schema's columns, in its order, as far as it has columns: the schema may have more
/// (written with their defaults), but none of the query's may be missing, of another type or
/// elsewhere. ksqlDB's message names the columns that are not where the schema has them.
async fn check_schema_id_columns(sink: &crate::catalog::Source) -> Result<(), SessionError> {
    use crate::catalog::ColumnRole;
    for (key, format) in [(true, &sink.key_format), (false, &sink.value_format)] {
        let side = if key { "KEY" } else { "VALUE" };
        let Some(id) = sink.properties.get(&format!("{side}_SCHEMA_ID")).and_then(|id| id.parse::<u32>().ok()) else {
            continue;
        };
        let subject = crate::format::Subject {
            topic: sink.topic.clone(),
            key,
            schema_id: Some(id),
            unwrapped: key || sink.properties.get("WRAP_SINGLE_VALUE").is_some_and(|w| w.eq_ignore_ascii_case("false")),
            full_name: sink.properties.get(&format!("{side}_SCHEMA_FULL_NAME")).cloned(),
        };
        let inferred = format.infer_columns(&subject).await.map_err(|e| SessionError::External {
            message: format!("cannot read schema {id} of the schema registry: {e}"),
            at: Location::new(1, 1),
        })?;
        let Some(registered) = inferred else { continue };
        let registered: Vec<(String, Option<crate::sql::ast::SqlType>)> = registered
            .fields()
            .iter()
            .map(|f| (f.name().clone(), crate::sql::ast::SqlType::from_arrow(f.data_type())))
            .collect();
        let is_side = |role: &ColumnRole| if key { *role == ColumnRole::Key } else { *role == ColumnRole::Value };
        let produced: Vec<&crate::catalog::Column> = sink.columns.iter().filter(|c| is_side(&c.role)).collect();
        let misplaced: Vec<String> = produced
            .iter()
            .enumerate()
            .filter(|(i, column)| {
                registered
                    .get(*i)
                    .is_none_or(|(name, sql_type)| *name != column.name || sql_type.as_ref() != Some(&column.sql_type))
            })
            .map(|(_, column)| format!("`{}` {}", column.name, column.sql_type))
            .collect();
        if !misplaced.is_empty() {
            let shown: Vec<String> = registered
                .iter()
                .map(|(name, sql_type)| match sql_type {
                    Some(sql_type) => format!("`{name}` {sql_type}"),
                    None => format!("`{name}`"),
                })
                .collect();
            return Err(refusal(format!(
                "The following {} columns are changed, missing or reordered: [{}]. Schema from schema registry is [{}]",
                side.to_lowercase(),
                misplaced.join(", "),
                shown.join(", ")
            )));
        }
    }
    Ok(())
}
