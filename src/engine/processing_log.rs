//! The processing log: one entry per record a query could not process (it did not decode,
//! had no event time, or its result could not be written), in the topic
//! `eddy_processing_log`, which SQL reads as the stream `PROCESSING_LOG`. The record is
//! skipped and the query goes on; nothing vanishes silently.
//!
//! An entry is a JSON object: the query, what went wrong, where the record was (topic,
//! partition, offset) and its key and value as text, each cut to [`MAX_RAW_BYTES`].
//! The topic is created with the first entry (or the first statement naming the stream).

use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;

use crate::log::record::now_ms;
use crate::log::{Log, LogError, NewRecord, Record, TopicSpec};

pub const PROCESSING_LOG_TOPIC: &str = "eddy_processing_log";
pub const PROCESSING_LOG_STREAM: &str = "PROCESSING_LOG";
/// The stream over the topic, as it is added to every catalog once the topic exists.
pub const PROCESSING_LOG_DDL: &str = "CREATE STREAM PROCESSING_LOG (QUERY_ID STRING, KIND STRING, \
     SOURCE_TOPIC STRING, SOURCE_PARTITION INT, SOURCE_OFFSET BIGINT, ERROR STRING, RECORD_KEY STRING, \
     RECORD_VALUE STRING) WITH (KAFKA_TOPIC='eddy_processing_log', VALUE_FORMAT='JSON', PARTITIONS=1)";
/// A record's key and value are kept up to this many bytes each.
pub const MAX_RAW_BYTES: usize = 1024;

/// What went wrong with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Kind {
    /// Its key or value did not decode as the source's format and columns say.
    Deserialization,
    /// It has no valid event time (a null or bad `TIMESTAMP` column).
    Timestamp,
    /// A table's record has no key.
    MissingKey,
    /// An expression failed on the record's row (its column is null, or WHERE did not pass).
    Expression,
    /// A result row could not be encoded or written.
    Serialization,
}

/// One processing-log entry.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct Entry {
    pub query_id: String,
    pub kind: Kind,
    pub source_topic: String,
    pub source_partition: Option<u32>,
    pub source_offset: Option<u64>,
    pub error: String,
    pub record_key: Option<String>,
    pub record_value: Option<String>,
}

impl Entry {
    /// An entry for a record of `topic` that could not be read, with the record's bytes.
    pub fn for_record(query_id: &str, topic: &str, partition: u32, record: &Record, error: String) -> Entry {
        let kind = if error.starts_with(crate::engine::source::MISSING_KEY) {
            Kind::MissingKey
        } else if error.contains("timestamp") {
            Kind::Timestamp
        } else {
            Kind::Deserialization
        };
        Entry {
            query_id: query_id.to_owned(),
            kind,
            source_topic: topic.to_owned(),
            source_partition: Some(partition),
            source_offset: Some(record.offset),
            error,
            record_key: record.key.as_deref().map(cut),
            record_value: record.value.as_deref().map(cut),
        }
    }
}

/// Adds `entry` to `entries`, as part of the last one when both are about the same record
/// (one entry per record, its errors joined).
pub fn push_merged(entries: &mut Vec<Entry>, entry: Entry) {
    if let Some(last) = entries.last_mut().filter(|e| {
        entry.source_offset.is_some()
            && e.source_offset == entry.source_offset
            && e.source_partition == entry.source_partition
    }) {
        last.error.push_str("; ");
        last.error.push_str(&entry.error);
    } else {
        entries.push(entry);
    }
}

/// The first [`MAX_RAW_BYTES`] of `bytes` as text (invalid UTF-8 replaced).
fn cut(bytes: &[u8]) -> String {
    let mut end = bytes.len().min(MAX_RAW_BYTES);
    // Do not split a UTF-8 sequence at the cut.
    while end < bytes.len() && end > 0 && (bytes[end] & 0xC0) == 0x80 {
        end -= 1;
    }
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// Writes entries to the processing-log topic.
#[derive(Clone)]
pub struct ProcessingLog {
    log: Arc<dyn Log>,
}

impl ProcessingLog {
    pub fn new(log: Arc<dyn Log>) -> Self {
        ProcessingLog { log }
    }

    /// Creates the topic unless it exists.
    pub async fn ensure_topic(&self) -> Result<(), LogError> {
        match self.log.partition_count(PROCESSING_LOG_TOPIC).await {
            Ok(_) => Ok(()),
            Err(LogError::UnknownTopic(_)) => {
                match self.log.create_topic(PROCESSING_LOG_TOPIC, &TopicSpec::new(1)).await {
                    Ok(()) | Err(LogError::TopicExists(_)) => Ok(()),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Appends `entries`, in order.
    pub async fn write(&self, entries: &[Entry]) -> Result<(), LogError> {
        if entries.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let records: Vec<NewRecord> = entries
            .iter()
            .map(|entry| {
                // An entry of strings and numbers always serialises.
                let value = serde_json::to_vec(entry).unwrap_or_default();
                NewRecord::new(now, Some(Bytes::from(entry.query_id.clone())), Some(Bytes::from(value)))
            })
            .collect();
        match self.log.append(PROCESSING_LOG_TOPIC, 0, &records).await {
            Err(LogError::UnknownTopic(_)) => {
                self.ensure_topic().await?;
                self.log.append(PROCESSING_LOG_TOPIC, 0, &records).await.map(|_| ())
            }
            other => other.map(|_| ()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_records_are_cut_on_a_character_boundary() {
        assert_eq!(cut(b"abc"), "abc");
        let long = "é".repeat(MAX_RAW_BYTES); // two bytes each
        let kept = cut(long.as_bytes());
        assert!(kept.len() <= MAX_RAW_BYTES && kept.chars().all(|c| c == 'é'), "{kept}");
        assert_eq!(cut(&[0xff, b'a']), "\u{fffd}a");
    }
}
