//! The command topic: every catalog change is appended to it, and a new session replays it.

use super::*;

impl Session {
    /// Appends a catalog-changing statement to the command topic.
    pub(super) async fn log_command(&self, statement: &str) -> Result<(), SessionError> {
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
        Ok(())
    }

    /// Rebuilds the catalog from the command topic. A command that no longer applies is
    /// logged and skipped, never fatal: the rest of the catalog still comes back.
    pub(super) async fn replay(&mut self) -> Result<(), SessionError> {
        let end = match self.log.latest_offset(COMMAND_TOPIC, 0).await {
            Ok(end) => end,
            Err(LogError::UnknownTopic(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let mut offset = self.log.earliest_offset(COMMAND_TOPIC, 0).await?;
        while offset < end {
            let fetch = self.log.read(COMMAND_TOPIC, 0, offset, 1024 * 1024).await?;
            let Some(last) = fetch.records.last().map(|r| r.offset) else { break };
            for record in &fetch.records {
                if let Err(reason) = self.replay_command(record.value.as_deref().unwrap_or_default()) {
                    tracing::warn!(offset = record.offset, %reason, "skipping a command that no longer applies");
                }
            }
            offset = last + 1;
        }
        Ok(())
    }

    pub(super) fn replay_command(&mut self, value: &[u8]) -> Result<(), String> {
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
