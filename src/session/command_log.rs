//! The command topic: the source of truth of the catalog, as ksqlDB's command topic is.
//!
//! A catalog change is validated, appended here, and only then applied, by the same
//! [`Session::catch_up`] that applies the changes other processes append. A session catches up
//! when it opens and before every statement, so a stream created by `eddy run` in one terminal
//! is known to the REPL in another at its next statement.

use super::*;

impl Session {
    /// Appends a catalog-changing statement (already validated) to the command topic, then
    /// catches up, which applies it.
    pub(super) async fn log_command(&mut self, statement: &str) -> Result<(), SessionError> {
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
        let value = serde_json::json!({ "statement": statement }).to_string();
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
            Err(LogError::UnknownTopic(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let mut offset = self.commands_applied.max(self.log.earliest_offset(COMMAND_TOPIC, 0).await?);
        while offset < end {
            let fetch = self.log.read(COMMAND_TOPIC, 0, offset, 1024 * 1024).await?;
            let Some(last) = fetch.records.last().map(|r| r.offset) else { break };
            for record in &fetch.records {
                if let Err(reason) = self.apply_command(record.value.as_deref().unwrap_or_default()) {
                    tracing::warn!(offset = record.offset, %reason, "skipping a command that no longer applies");
                }
            }
            offset = last + 1;
        }
        self.commands_applied = offset;
        Ok(())
    }

    fn apply_command(&mut self, value: &[u8]) -> Result<(), String> {
        let command: serde_json::Value = serde_json::from_slice(value).map_err(|e| e.to_string())?;
        let text = command["statement"].as_str().ok_or("no statement")?;
        match parse_one(text).map_err(|e| e.to_string())? {
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
            other => return Err(format!("not a catalog command: {other}")),
        }
        Ok(())
    }
}
