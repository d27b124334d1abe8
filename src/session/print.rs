//! `PRINT`: a topic's records as ksqlDB prints them.

use super::*;
use crate::log::Follower;

impl Session {
    /// `PRINT`: the topic's records as ksqlDB prints them, following new ones until
    /// cancelled (or until caught up, with `until_idle`).
    pub(super) async fn print(
        &self,
        print: &crate::sql::ast::Print,
        on_result: &mut dyn ResultSink,
    ) -> Result<(), SessionError> {
        let topic = self.find_topic(&print.topic).await?;
        let positions = crate::log::start_positions(self.log.as_ref(), &topic, print.from_beginning).await?;
        if self.until_idle {
            // What the persistent queries will write from the input present is part of it.
            self.wait_until_idle().await?;
        }
        let mut follower = Follower::new(self.log.as_ref(), &topic, positions, self.until_idle);
        let interval = print.interval.unwrap_or(1).max(1);
        let (mut seen, mut printed) = (0u64, 0u64);
        while let Some((partition, records)) = follower.next().await? {
            for record in &records {
                seen += 1;
                if (seen - 1) % interval != 0 {
                    continue;
                }
                on_result.send(StatementResult::Line(print_line(record, partition)));
                printed += 1;
                if print.limit.is_some_and(|limit| printed >= limit) {
                    return Ok(());
                }
            }
            if !on_result.flush().await {
                return Ok(());
            }
        }
        Ok(())
    }

    /// A topic by exact name, else by a unique case-insensitive match (`PRINT orders`).
    pub(super) async fn find_topic(&self, name: &str) -> Result<String, SessionError> {
        let topics = self.log.list_topics().await?;
        if topics.iter().any(|t| t == name) {
            return Ok(name.to_owned());
        }
        let matches: Vec<&String> = topics.iter().filter(|t| t.eq_ignore_ascii_case(name)).collect();
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            _ => Err(refusal(format!(
                "Could not find topic '{name}'. Topic names are case-sensitive; SHOW TOPICS lists them."
            ))),
        }
    }
}

/// One record as ksqlDB's PRINT shows it.
fn print_line(record: &crate::log::Record, partition: u32) -> String {
    let time = datafusion::arrow::temporal_conversions::timestamp_ms_to_datetime(record.timestamp_ms)
        .map_or_else(|| record.timestamp_ms.to_string(), |t| t.format("%Y/%m/%d %H:%M:%S%.3f Z").to_string());
    fn text(bytes: &Option<Bytes>) -> std::borrow::Cow<'_, str> {
        bytes.as_deref().map_or("<null>".into(), String::from_utf8_lossy)
    }
    format!("rowtime: {time}, key: {}, value: {}, partition: {partition}", text(&record.key), text(&record.value))
}
