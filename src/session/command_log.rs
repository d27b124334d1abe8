//! The command topic: the source of truth of the catalog, as ksqlDB's command topic is.
//!
//! A catalog change is validated, appended here, and only then applied, by the same
//! [`Session::catch_up`] that applies the changes other processes append. A session catches up
//! when it opens and before every statement, so a stream created by `eddy run` in one terminal
//! is known to the REPL in another at its next statement.

use super::*;
use crate::catalog::QueryInfo;

/// One record of the command topic.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(super) struct Command {
    /// The statement, as it prints.
    pub statement: String,
    /// For a `CREATE … AS SELECT`: the `CREATE STREAM|TABLE` of its sink, columns resolved
    /// when the query was planned (so replaying it needs no planning).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sink: Option<String>,
    /// For a persistent query: the session properties it was created with.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
}

impl Session {
    /// Appends a catalog-changing statement (already validated) to the command topic, then
    /// catches up, which applies it.
    pub(super) async fn log_command(&mut self, statement: &str) -> Result<(), SessionError> {
        self.log_full_command(Command { statement: statement.to_owned(), ..Command::default() }).await
    }

    /// As [`Session::log_command`], for commands with more than a statement.
    pub(super) async fn log_full_command(&mut self, command: Command) -> Result<(), SessionError> {
        match self.log.partition_count(COMMAND_TOPIC).await {
            Ok(_) => {}
            Err(LogError::UnknownTopic(_)) => {
                let spec = TopicSpec::new(1).with_config("retention.ms", "-1");
                match self.log.create_topic(COMMAND_TOPIC, &spec).await {
                    Ok(()) | Err(LogError::TopicExists(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        }
        let value = serde_json::to_string(&command).unwrap_or_default();
        let record = NewRecord::new(now_ms(), None, Some(Bytes::from(value)));
        self.log.append(COMMAND_TOPIC, 0, &[record]).await?;
        self.catch_up().await
    }

    /// Applies the commands appended since this session last looked (all of them when it
    /// opens). A command that no longer applies (say, two processes created the same stream
    /// at once) is logged and skipped, never fatal: the rest of the catalog still comes back.
    pub(super) async fn catch_up(&mut self) -> Result<(), SessionError> {
        let end = match self.log.latest_offset(COMMAND_TOPIC, 0).await {
            Ok(end) => end,
            Err(LogError::UnknownTopic(_)) => return self.add_processing_log().await,
            Err(e) => return Err(e.into()),
        };
        let mut offset = self.commands_applied.max(self.log.earliest_offset(COMMAND_TOPIC, 0).await?);
        while offset < end {
            let fetch = self.log.read(COMMAND_TOPIC, 0, offset, 1024 * 1024).await?;
            let Some(last) = fetch.records.last().map(|r| r.offset) else { break };
            for record in &fetch.records {
                if let Err(reason) = self.apply_command(record.offset, record.value.as_deref().unwrap_or_default()) {
                    tracing::warn!(offset = record.offset, %reason, "skipping a command that no longer applies");
                }
            }
            offset = last + 1;
        }
        self.commands_applied = offset;
        self.add_processing_log().await?;
        self.sync_queries().await?;
        self.sync_connectors().await
    }

    /// Adds the stream `PROCESSING_LOG` to the catalog once its topic exists (it is no
    /// command: every session has it, and it takes no query id).
    async fn add_processing_log(&mut self) -> Result<(), SessionError> {
        use crate::engine::processing_log::{PROCESSING_LOG_DDL, PROCESSING_LOG_STREAM, PROCESSING_LOG_TOPIC};
        if self.catalog.source(PROCESSING_LOG_STREAM).is_some() {
            return Ok(());
        }
        match self.log.partition_count(PROCESSING_LOG_TOPIC).await {
            Ok(_) => {}
            Err(LogError::UnknownTopic(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        let Ok(Statement::CreateSource(create)) = parse_one(PROCESSING_LOG_DDL) else {
            return Err(SessionError::Log(LogError::Unsupported("the processing log's stream (a bug)")));
        };
        match self.catalog.plan_source(&create, PROCESSING_LOG_DDL.to_owned()) {
            Ok(source) => {
                self.catalog.add_source(source);
            }
            Err(e) => tracing::warn!(error = %e.0, "cannot add the stream PROCESSING_LOG"),
        }
        Ok(())
    }

    fn apply_command(&mut self, offset: u64, value: &[u8]) -> Result<(), String> {
        let command: Command = serde_json::from_slice(value).map_err(|e| e.to_string())?;
        let text = command.statement.as_str();
        match parse_one(text).map_err(|e| e.to_string())? {
            Statement::CreateAsSelect(create) => {
                let sink_text = command.sink.as_deref().ok_or("no sink")?;
                let Statement::CreateSource(sink) = parse_one(sink_text).map_err(|e| e.to_string())? else {
                    return Err(format!("not a sink: {sink_text}"));
                };
                let source = self.catalog.plan_source(&sink, sink_text.to_owned()).map_err(|e| e.0)?;
                let prefix = match create.kind {
                    SourceKind::Stream => "CSAS",
                    SourceKind::Table => "CTAS",
                };
                let id = format!("{prefix}_{}_{offset}", source.name);
                let sink = self.catalog.add_source(source);
                self.catalog.add_query(QueryInfo {
                    id,
                    statement: text.to_owned(),
                    sink: sink.name.clone(),
                    inputs: query_inputs(&create.query),
                    properties: command.properties,
                });
            }
            Statement::InsertInto(insert) => {
                self.catalog.add_query(QueryInfo {
                    id: format!("INSERTQUERY_{offset}"),
                    statement: text.to_owned(),
                    sink: source_name(&insert.target),
                    inputs: query_inputs(&insert.query),
                    properties: command.properties,
                });
            }
            Statement::Terminate(crate::sql::ast::Terminate::Query(id)) => {
                self.catalog.remove_query(&id.to_uppercase());
            }
            Statement::Terminate(crate::sql::ast::Terminate::All) => {
                let ids: Vec<String> = self.catalog.queries().map(|q| q.id.clone()).collect();
                for id in ids {
                    self.catalog.remove_query(&id);
                }
            }
            Statement::CreateSource(create) => {
                let source = self.catalog.plan_source(&create, text.to_owned()).map_err(|e| e.0)?;
                self.catalog.add_source(source);
            }
            Statement::Drop(drop) => {
                self.catalog.remove_source(&source_name(&drop.name));
            }
            Statement::CreateType { name, data_type, .. } => {
                self.catalog.add_type(resolved_name(&name), data_type).map_err(|e| e.0)?;
            }
            Statement::DropType { name, .. } => {
                self.catalog.remove_type(&resolved_name(&name));
            }
            Statement::CreateConnector(create) => {
                let config = super::connectors::connector_config(&create);
                if self.connector(&config.name).is_some() {
                    return Err(format!("connector {} exists", config.name));
                }
                let definition =
                    super::connectors::ConnectorDefinition { kind: create.kind, config, statement: text.to_owned() };
                self.connectors.insert(definition.config.name.clone(), definition);
            }
            Statement::DropConnector { name, .. } => {
                if let Some(name) = self.connector(&resolved_name(&name)).map(|c| c.config.name.clone()) {
                    self.connectors.remove(&name);
                }
            }
            other => return Err(format!("not a catalog command: {other}")),
        }
        Ok(())
    }
}

/// The streams and tables a query reads, by catalog name.
pub(super) fn query_inputs(query: &crate::sql::ast::StreamingQuery) -> Vec<String> {
    let mut inputs = Vec::new();
    let _ = datafusion::sql::sqlparser::ast::visit_relations(query.query.as_ref(), |name| {
        let name = source_name(name);
        if !inputs.contains(&name) {
            inputs.push(name);
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    inputs
}
