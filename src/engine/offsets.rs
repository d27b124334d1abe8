//! Committed source offsets of persistent queries, kept in the internal topic
//! `_eddy_offsets`: one record per commit, keyed by query id, the value the next offset to
//! read of each source partition. A query restarts from its last commit.
//!
//! A commit follows the sink's flush of everything read before it, so a restart re-reads at
//! most what was read after the last commit: at-least-once. Where the log has a place for
//! checkpoints (the embedded log), queries checkpoint instead (`engine::checkpoint`), exactly
//! once; commits remain for logs without one (Kafka) and for sink connectors.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;

use crate::log::record::now_ms;
use crate::log::{Log, LogError, NewRecord, TopicSpec};

/// The internal topic holding commits.
pub const OFFSETS_TOPIC: &str = "_eddy_offsets";

/// `partition → next offset to read`.
pub type Positions = BTreeMap<u32, u64>;

/// Reads and writes commits.
#[derive(Clone)]
pub struct OffsetStore {
    log: Arc<dyn Log>,
}

impl OffsetStore {
    pub fn new(log: Arc<dyn Log>) -> Self {
        OffsetStore { log }
    }

    /// The last commit of `query_id`, if it ever committed.
    pub async fn load(&self, query_id: &str) -> Result<Option<Positions>, LogError> {
        let end = match self.log.latest_offset(OFFSETS_TOPIC, 0).await {
            Ok(end) => end,
            Err(LogError::UnknownTopic(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut offset = self.log.earliest_offset(OFFSETS_TOPIC, 0).await?;
        let mut last = None;
        while offset < end {
            let fetch = self.log.read(OFFSETS_TOPIC, 0, offset, 1024 * 1024).await?;
            let Some(next) = fetch.records.last().map(|r| r.offset + 1) else { break };
            for record in &fetch.records {
                if record.key.as_deref() == Some(query_id.as_bytes())
                    && let Some(value) = record.value.as_deref()
                {
                    match serde_json::from_slice::<Positions>(value) {
                        Ok(positions) => last = Some(positions),
                        Err(e) => tracing::warn!(query_id, offset = record.offset, %e, "ignoring a corrupt commit"),
                    }
                }
            }
            offset = next;
        }
        Ok(last)
    }

    /// Records that `query_id` has written everything read before `positions`.
    pub async fn commit(&self, query_id: &str, positions: &Positions) -> Result<(), LogError> {
        // A map of numbers always serialises.
        let value = serde_json::to_vec(positions).unwrap_or_default();
        let record = NewRecord::new(now_ms(), Some(Bytes::copy_from_slice(query_id.as_bytes())), Some(value.into()));
        match self.log.append(OFFSETS_TOPIC, 0, std::slice::from_ref(&record)).await {
            Err(LogError::UnknownTopic(_)) => {
                let spec = TopicSpec::new(1).with_config("retention.ms", "-1");
                match self.log.create_topic(OFFSETS_TOPIC, &spec).await {
                    Ok(()) | Err(LogError::TopicExists(_)) => {}
                    Err(e) => return Err(e),
                }
                self.log.append(OFFSETS_TOPIC, 0, &[record]).await.map(|_| ())
            }
            other => other.map(|_| ()),
        }
    }
}
