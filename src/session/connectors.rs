//! Connectors in a session: `CREATE SOURCE|SINK CONNECTOR`, `DROP CONNECTOR`,
//! `SHOW [SOURCE|SINK] CONNECTORS` and `DESCRIBE CONNECTOR`, with ksqlDB's messages and REST
//! entities. A connector is durable in the command topic, as a stream is. Each runs in the one
//! process that claims it (as a query does), and is started again when that process opens
//! again, going on from its committed position.

use std::sync::atomic::Ordering;

use datafusion::sql::sqlparser::ast::{Ident, Value};
use serde_json::json;

use super::*;
use crate::catalog::Source;
use crate::connect::{ConnectorConfig, ConnectorState, RunningConnector};
use crate::sql::ast::{ConnectorKind, ConnectorScope, CreateConnector};

/// A connector, as `CREATE SOURCE|SINK CONNECTOR` made it.
#[derive(Debug, Clone)]
pub struct ConnectorDefinition {
    pub kind: ConnectorKind,
    /// Its name and properties (`name` among them, as Kafka Connect has it).
    pub config: ConnectorConfig,
    /// The statement that created it, as it prints.
    pub statement: String,
}

/// A connector's state and counters, for `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorMetrics {
    pub name: String,
    /// `source` or `sink`.
    pub kind: &'static str,
    pub class: String,
    /// Kafka Connect's name of its task's state (`RUNNING`, `RETRYING`, …; `UNASSIGNED` when
    /// it runs in no process here).
    pub state: String,
    pub records_in: u64,
    pub records_out: u64,
    pub bytes: u64,
    /// Transient errors met.
    pub errors: u64,
    /// Records a sink could not take (in the processing log).
    pub skipped: u64,
    /// A sink's records in its topics past its last commit.
    pub lag: u64,
}

/// A connector's one task: Kafka Connect's name of its state (`UNASSIGNED` when it runs in no
/// process here), and why it failed or is retrying.
struct Task {
    state: &'static str,
    trace: Option<String>,
}

impl Task {
    /// The connector's own state: Kafka Connect keeps a connector `RUNNING` when its task
    /// failed.
    fn connector_state(&self) -> &'static str {
        if self.state == "FAILED" { "RUNNING" } else { self.state }
    }
}

/// A running connector's counts.
#[derive(Default)]
struct Counts {
    records_in: u64,
    records_out: u64,
    bytes: u64,
    errors: u64,
    skipped: u64,
}

/// A connector running in this process, with the claim that makes it this process's.
pub(super) struct Running {
    connector: RunningConnector,
    _claim: crate::log::Claim,
}

/// The id a connector is claimed under (beside the queries' ids).
fn claim_id(name: &str) -> String {
    format!("connector-{name}")
}

/// A `WITH` clause as a connector's configuration: quoted keys as written, bare ones in
/// capitals (ksqlDB's identifiers), values as text; `name` is the connector's.
pub(super) fn connector_config(create: &CreateConnector) -> ConnectorConfig {
    let name = resolved_name(&create.name);
    let mut properties: BTreeMap<String, String> = create
        .properties
        .0
        .iter()
        .map(|(key, value)| {
            let key = if key.quote_style.is_some() { key.value.clone() } else { key.value.to_uppercase() };
            let value = match value {
                Value::SingleQuotedString(text) | Value::DoubleQuotedString(text) => text.clone(),
                Value::Number(number, _) => number.to_string(),
                Value::Boolean(b) => b.to_string(),
                other => other.to_string(),
            };
            (key, value)
        })
        .collect();
    properties.insert("name".into(), name.clone());
    ConnectorConfig { name, properties }
}

fn kind_name(kind: ConnectorKind) -> &'static str {
    match kind {
        ConnectorKind::Source => "source",
        ConnectorKind::Sink => "sink",
    }
}

/// Kafka Connect's name of a connector's state.
fn state_name(state: &ConnectorState) -> &'static str {
    match state {
        ConnectorState::Running => "RUNNING",
        ConnectorState::Stopped => "STOPPED",
        ConnectorState::Failed(_) => "FAILED",
        ConnectorState::Retrying(_) => "RETRYING",
    }
}

/// A single-column `Message` table, as ksqlDB's CLI shows connector results.
fn message(text: String, entity: serde_json::Value) -> StatementResult {
    StatementResult::table(&["Message"], vec![vec![text]]).with_entity(entity)
}

/// A warning, as ksqlDB answers an `IF [NOT] EXISTS` that did nothing.
fn warning(statement: &str, text: String) -> StatementResult {
    let entity = json!({"@type": "warning_entity", "statementText": statement, "message": text, "warnings": []});
    message(text, entity)
}

impl Session {
    /// The connector named `name`, ignoring case (as Kafka Connect's names are compared).
    pub(super) fn connector(&self, name: &str) -> Option<&ConnectorDefinition> {
        self.connectors
            .get(name)
            .or_else(|| self.connectors.values().find(|c| c.config.name.eq_ignore_ascii_case(name)))
    }

    /// The catalog's connectors, by name.
    pub fn connectors(&self) -> impl Iterator<Item = &ConnectorDefinition> {
        self.connectors.values()
    }

    /// `CREATE SOURCE|SINK CONNECTOR`: validated by making the connector (which checks its
    /// properties), then logged; it starts once the catalog has it.
    pub(super) async fn create_connector(
        &mut self,
        create: &CreateConnector,
        statement: &str,
    ) -> Result<StatementResult, SessionError> {
        let config = connector_config(create);
        if self.connector(&config.name).is_some() {
            let text = format!("Connector {} already exists", config.name);
            if create.if_not_exists {
                return Ok(warning(statement, text));
            }
            return Err(refusal(text));
        }
        let made = self
            .connector_classes
            .create_with(&config, &self.catalog.sources().cloned().collect::<Vec<_>>())
            .map_err(|e| refusal(e.message))?;
        let made_kind = match made {
            crate::connect::Connector::Source(_) => ConnectorKind::Source,
            crate::connect::Connector::Sink(_) => ConnectorKind::Sink,
        };
        if made_kind != create.kind {
            return Err(refusal(format!(
                "{} is a {} connector: write CREATE {} CONNECTOR",
                config.properties.get("connector.class").map(String::as_str).unwrap_or_default(),
                kind_name(made_kind),
                made_kind.keyword()
            )));
        }
        self.log_command(&Statement::CreateConnector(create.clone()).to_string()).await?;
        let definition = self.connector(&config.name).cloned().ok_or_else(|| {
            refusal(format!("connector {} was created by another process at the same time", config.name))
        })?;
        let entity = json!({
            "@type": "connector_info",
            "info": {
                "name": definition.config.name,
                "config": definition.config.properties,
                "tasks": [{"connector": definition.config.name, "task": 0}],
                "type": kind_name(definition.kind),
            },
            "warnings": [],
        });
        Ok(message(format!("Created connector {}", definition.config.name), entity))
    }

    /// `DROP CONNECTOR`: it stops (a sink flushing and committing first) once the catalog
    /// no longer has it. Its committed position stays, as Kafka Connect's offsets do: a
    /// connector made again under the name goes on from there.
    pub(super) async fn drop_connector(
        &mut self,
        if_exists: bool,
        name: &Ident,
        statement: &str,
    ) -> Result<StatementResult, SessionError> {
        let name = resolved_name(name);
        let Some(definition) = self.connector(&name).cloned() else {
            if if_exists {
                return Ok(warning(statement, format!("Connector '{name}' does not exist.")));
            }
            return Err(refusal(format!(
                "Failed to drop connector: {{\"error_code\":404,\"message\":\"Connector {name} not found\"}}"
            )));
        };
        let name = definition.config.name;
        let quoted = Ident::with_quote('`', name.clone());
        self.log_command(&Statement::DropConnector { if_exists: false, name: quoted }.to_string()).await?;
        let entity =
            json!({"@type": "drop_connector", "statementText": statement, "connectorName": name, "warnings": []});
        Ok(message(format!("Dropped connector \"{name}\""), entity))
    }

    /// Kafka Connect's status of a connector: its state and its one task's, with the
    /// reason it failed.
    fn connector_status(&self, definition: &ConnectorDefinition) -> serde_json::Value {
        let worker = "eddy";
        let task = self.task(definition);
        let mut task_json = json!({"id": 0, "state": task.state, "worker_id": worker});
        if let Some(trace) = &task.trace {
            task_json["trace"] = json!(trace);
        }
        json!({
            "name": definition.config.name,
            "connector": {"state": task.connector_state(), "worker_id": worker},
            "tasks": [task_json],
            "type": kind_name(definition.kind),
        })
    }

    /// A connector's one task as this process sees it.
    fn task(&self, definition: &ConnectorDefinition) -> Task {
        let Some(state) = self.connectors_running.get(&definition.config.name).map(|r| r.connector.status.state())
        else {
            return Task { state: "UNASSIGNED", trace: None };
        };
        let trace = match &state {
            ConnectorState::Failed(reason) | ConnectorState::Retrying(reason) => Some(reason.clone()),
            ConnectorState::Running | ConnectorState::Stopped => None,
        };
        Task { state: state_name(&state), trace }
    }

    /// A connector's counts, zero when it does not run here.
    fn counts(&self, definition: &ConnectorDefinition) -> Counts {
        let Some(running) = self.connectors_running.get(&definition.config.name) else { return Counts::default() };
        let status = &running.connector.status;
        Counts {
            records_in: status.records_in.load(Ordering::Relaxed),
            records_out: status.records_out.load(Ordering::Relaxed),
            bytes: status.bytes.load(Ordering::Relaxed),
            errors: status.errors.load(Ordering::Relaxed),
            skipped: status.skipped.load(Ordering::Relaxed),
        }
    }

    /// `SHOW [SOURCE|SINK] CONNECTORS`.
    pub(super) fn show_connectors(&self, scope: ConnectorScope, statement: &str) -> StatementResult {
        let listed: Vec<(&ConnectorDefinition, String)> = self
            .connectors
            .values()
            .filter(|c| match scope {
                ConnectorScope::All => true,
                ConnectorScope::Source => c.kind == ConnectorKind::Source,
                ConnectorScope::Sink => c.kind == ConnectorKind::Sink,
            })
            .map(|c| {
                let task = self.task(c);
                let summary = if task.connector_state() == "RUNNING" {
                    let running = usize::from(task.state == "RUNNING");
                    let overall = if running == 0 { "WARNING" } else { "RUNNING" };
                    format!("{overall} ({running}/1 tasks RUNNING)")
                } else {
                    task.connector_state().to_owned()
                };
                (c, summary)
            })
            .collect();
        let class = |c: &ConnectorDefinition| c.config.properties.get("connector.class").cloned().unwrap_or_default();
        let rows = listed
            .iter()
            .map(|(c, state)| vec![c.config.name.clone(), c.kind.keyword().to_owned(), class(c), state.clone()])
            .collect();
        let connectors: Vec<serde_json::Value> = listed
            .iter()
            .map(|(c, state)| {
                json!({"name": c.config.name, "type": kind_name(c.kind), "className": class(c), "state": state})
            })
            .collect();
        let entity =
            json!({"@type": "connector_list", "statementText": statement, "warnings": [], "connectors": connectors});
        StatementResult::table(&["Connector Name", "Type", "Class", "Status"], rows).with_entity(entity)
    }

    /// `DESCRIBE CONNECTOR`: Kafka Connect's status, the topics it reads or writes, the
    /// streams and tables over them, and its counts.
    pub(super) fn describe_connector(&self, name: &Ident, statement: &str) -> Result<StatementResult, SessionError> {
        let name = resolved_name(name);
        let definition = self.connector(&name).ok_or_else(|| {
            refusal(format!(
                "Failed to query connector status: {{\"error_code\":404,\"message\":\"No status found for connector {name}\"}}"
            ))
        })?;
        let status = self.connector_status(definition);
        let class = definition.config.properties.get("connector.class").cloned().unwrap_or_default();
        let topics = connector_topics(definition);
        let sources: Vec<&Source> =
            self.catalog.sources().filter(|s| topics.contains(&s.topic)).map(|s| s.as_ref()).collect();
        let task = self.task(definition);
        let Counts { records_in, records_out, bytes, errors, skipped } = self.counts(definition);
        let line = |label: &str, value: &str| format!("{label:<20} : {value}");
        let mut text = vec![
            line("Name", &definition.config.name),
            line("Class", &class),
            line("Type", kind_name(definition.kind)),
            line("State", task.connector_state()),
            line("WorkerId", "eddy"),
            line("Records in", &records_in.to_string()),
            line("Records out", &records_out.to_string()),
            line("Bytes", &bytes.to_string()),
            line("Errors", &errors.to_string()),
            line("Skipped records", &skipped.to_string()),
        ];
        let task_table = StatementResult::table(
            &["Task ID", "State", "Error Trace"],
            vec![vec!["0".into(), task.state.to_owned(), task.trace.unwrap_or_default()]],
        );
        text.push(String::new());
        text.push(task_table.to_string().trim_end().to_owned());
        if !sources.is_empty() {
            let rows = sources
                .iter()
                .map(|s| vec![s.name.clone(), s.topic.clone(), kind_title(s.kind).to_uppercase()])
                .collect();
            text.push(String::new());
            let table = StatementResult::table(&["KSQL Source Name", "Kafka Topic", "Type"], rows);
            text.push(table.to_string().trim_end().to_owned());
        }
        if !topics.is_empty() {
            text.push(String::new());
            let table = StatementResult::table(&["Related Topics"], topics.iter().map(|t| vec![t.clone()]).collect());
            text.push(table.to_string().trim_end().to_owned());
        }
        let entity = json!({
            "@type": "connector_description",
            "statementText": statement,
            "connectorClass": class,
            "status": status,
            "sources": sources
                .iter()
                .map(|s| super::entity::source_description(s, &[], &[], None, false)["sourceDescription"].clone())
                .collect::<Vec<_>>(),
            "topics": topics,
            "metrics": {"recordsIn": records_in, "recordsOut": records_out, "bytes": bytes, "errors": errors, "skipped": skipped},
            "warnings": [],
        });
        Ok(StatementResult::status(text.join("\n")).with_entity(entity))
    }

    /// Every connector's state and counters (for `/metrics`).
    pub async fn connector_metrics(&self) -> Vec<ConnectorMetrics> {
        let offsets = crate::engine::offsets::OffsetStore::new(Arc::clone(&self.log));
        let mut all = Vec::with_capacity(self.connectors.len());
        for definition in self.connectors.values() {
            let counts = self.counts(definition);
            let mut lag = 0;
            if definition.kind == ConnectorKind::Sink {
                for topic in connector_topics(definition) {
                    let id = crate::connect::commit_id(&definition.config.name, &topic);
                    let committed = offsets.load(&id).await.ok().flatten().unwrap_or_default();
                    for partition in 0..self.log.partition_count(&topic).await.unwrap_or(0) {
                        let latest = self.log.latest_offset(&topic, partition).await.unwrap_or(0);
                        let from = match committed.get(&partition) {
                            Some(offset) => *offset,
                            None => self.log.earliest_offset(&topic, partition).await.unwrap_or(0),
                        };
                        lag += latest.saturating_sub(from);
                    }
                }
            }
            all.push(ConnectorMetrics {
                name: definition.config.name.clone(),
                kind: kind_name(definition.kind),
                class: definition.config.properties.get("connector.class").cloned().unwrap_or_default(),
                state: self.task(definition).state.to_owned(),
                records_in: counts.records_in,
                records_out: counts.records_out,
                bytes: counts.bytes,
                errors: counts.errors,
                skipped: counts.skipped,
                lag,
            });
        }
        all
    }

    /// Starts the catalog's connectors that run nowhere yet (those this process claims),
    /// and stops the running ones the catalog no longer has.
    pub(super) async fn sync_connectors(&mut self) -> Result<(), SessionError> {
        if !self.runs_queries {
            return Ok(());
        }
        let gone: Vec<String> =
            self.connectors_running.keys().filter(|name| self.connector(name).is_none()).cloned().collect();
        for name in gone {
            if let Some(running) = self.connectors_running.remove(&name) {
                running.connector.stop().await;
            }
        }
        let missing: Vec<ConnectorDefinition> = self
            .connectors
            .values()
            .filter(|c| !self.connectors_running.contains_key(&c.config.name))
            .cloned()
            .collect();
        for definition in missing {
            let name = definition.config.name.clone();
            let claim = match self.assign(&claim_id(&name), 1).await {
                Ok(Some(claim)) => claim,
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!(connector = %name, error = %e, "cannot assign the connector");
                    continue;
                }
            };
            match self
                .connector_classes
                .create_with(&definition.config, &self.catalog.sources().cloned().collect::<Vec<_>>())
            {
                Ok(made) => {
                    // A sink reads a query's output only as far as the query has checkpointed
                    // it (what lies beyond may be cut off and written again after a crash).
                    let log: Arc<dyn crate::log::Log> = Arc::new(crate::engine::checkpoint::ReadCommitted {
                        log: Arc::clone(&self.log),
                        fences: Arc::clone(&self.fences),
                    });
                    let connector = RunningConnector::start(log, &name, made);
                    self.connectors_running.insert(name, Running { connector, _claim: claim });
                }
                Err(e) => tracing::error!(connector = %name, error = %e, "cannot start the connector"),
            }
        }
        Ok(())
    }

    /// Stops every connector running here: a source after the batch it is writing, a sink
    /// once it has flushed and committed.
    pub(super) async fn stop_connectors(&mut self) {
        let running = std::mem::take(&mut self.connectors_running);
        futures::future::join_all(running.into_values().map(|r| r.connector.stop())).await;
    }
}

/// The topics a connector writes (a source's `kafka.topic`) or reads (a sink's `topics`).
fn connector_topics(definition: &ConnectorDefinition) -> Vec<String> {
    let properties = &definition.config.properties;
    let listed = match definition.kind {
        ConnectorKind::Source => properties.get("kafka.topic"),
        ConnectorKind::Sink => properties.get("topics"),
    };
    listed
        .map(|topics| topics.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default()
}
