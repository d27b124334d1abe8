//! Topics: the storage every stream and table sits on.
//!
//! [`Log`] is the one interface to topic storage. It has two implementations: the embedded
//! log ([`EmbeddedLog`], the default, files in a data directory) and Kafka ([`KafkaLog`]).
//! Which process runs which query is its [`coordinator`]'s to decide.
//! Everything above this module (sources, sinks, the catalog's command topic, `eddy topic`)
//! talks to `dyn Log` only.
//!
//! Vocabulary: a *topic* has *partitions*; a partition is a sequence of *records* at
//! contiguous *offsets* starting from the partition's earliest offset.

pub mod config;
pub mod coordinator;
pub mod embedded;
pub mod error;
pub mod follower;
pub mod kafka;
pub mod partitioner;
pub mod producer;
pub mod record;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;

pub use config::TopicConfig;
pub use embedded::EmbeddedLog;
pub use error::LogError;
pub use follower::{Follower, start_positions, wait_for_any};
pub use kafka::{KafkaConfig, KafkaLog};
pub use producer::Producer;
pub use record::{Fetch, Header, NewRecord, Record};

/// What to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub partitions: u32,
    /// Kept and reported; the embedded log has one copy whatever this says.
    pub replication_factor: u16,
    /// Kafka topic configs (`retention.ms`, …), validated by [`TopicConfig::from_map`].
    pub configs: BTreeMap<String, String>,
}

impl TopicSpec {
    pub fn new(partitions: u32) -> Self {
        TopicSpec { partitions, replication_factor: 1, configs: BTreeMap::new() }
    }

    pub fn with_config(mut self, name: &str, value: &str) -> Self {
        self.configs.insert(name.to_owned(), value.to_owned());
        self
    }
}

/// A topic as `describe` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    pub name: String,
    pub replication_factor: u16,
    pub partitions: Vec<PartitionDescription>,
    /// Every config with its effective value (defaults included).
    pub configs: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionDescription {
    pub partition: u32,
    pub earliest_offset: u64,
    /// The log end offset: the offset the next record will get.
    pub latest_offset: u64,
    /// Bytes on disk, where the log knows them.
    pub size_bytes: Option<u64>,
}

/// Topic storage.
///
/// Every method is cancel-safe in the sense that dropping its future never leaves a partition
/// half-written: an append either wrote its frames (possibly some of several, each whole)
/// or nothing, and offsets stay contiguous. Errors are [`LogError`]s; those for which
/// [`LogError::is_user_error`] holds (unknown topic, bad partition, bad config, offset out of
/// range) are the caller's to report; the rest are storage failures.
#[async_trait]
pub trait Log: Send + Sync + 'static {
    /// Creates a topic. Fails with [`LogError::TopicExists`] if it exists, and with
    /// [`LogError::InvalidTopicName`] / [`LogError::InvalidConfig`] for bad input.
    async fn create_topic(&self, name: &str, spec: &TopicSpec) -> Result<(), LogError>;

    /// Deletes a topic and its data. Readers of it get [`LogError::UnknownTopic`] afterwards.
    async fn delete_topic(&self, name: &str) -> Result<(), LogError>;

    /// Names of all topics, sorted.
    async fn list_topics(&self) -> Result<Vec<String>, LogError>;

    /// Partitions with their offsets, and configs.
    async fn describe_topic(&self, name: &str) -> Result<TopicDescription, LogError>;

    /// The number of partitions of a topic (cheap; no offsets are read).
    async fn partition_count(&self, name: &str) -> Result<u32, LogError>;

    /// Appends `records`, in order, to one partition; returns the offset of the first (the
    /// log end offset if `records` is empty). When it returns, the records are in the
    /// operating system's hands (they survive the process being killed); whether they are
    /// on disk depends on the topic's `flush.*` configs.
    async fn append(&self, topic: &str, partition: u32, records: &[NewRecord]) -> Result<u64, LogError>;

    /// Reads records of one partition from `offset` on, about `max_bytes` of them (at least
    /// one record if any is there). An empty fetch means `offset` is the log end.
    /// Fails with [`LogError::OffsetOutOfRange`] below the earliest or beyond the log end.
    async fn read(&self, topic: &str, partition: u32, offset: u64, max_bytes: usize) -> Result<Fetch, LogError>;

    /// The first offset still stored.
    async fn earliest_offset(&self, topic: &str, partition: u32) -> Result<u64, LogError>;

    /// The log end offset: the offset the next appended record will get.
    async fn latest_offset(&self, topic: &str, partition: u32) -> Result<u64, LogError>;

    /// The first offset whose record's timestamp is at least `timestamp_ms`, or `None` if
    /// every record is older (Kafka's `offsetsForTimes`).
    async fn offset_for_timestamp(
        &self,
        topic: &str,
        partition: u32,
        timestamp_ms: i64,
    ) -> Result<Option<u64>, LogError>;

    /// Waits until the partition has a record at `offset` (its log end is past `offset`) or
    /// `timeout` elapses; returns whether data is there. Dropping the future stops waiting.
    async fn wait_for_data(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        timeout: Duration,
    ) -> Result<bool, LogError>;

    /// How processes sharing this log share its queries (see [`coordinator`]): by default
    /// each runs everything it starts.
    fn coordinator(&self) -> std::sync::Arc<dyn coordinator::Coordinator> {
        std::sync::Arc::new(coordinator::Solo)
    }

    /// Cuts off every record of the partition at or after `offset` (which must be where an
    /// append ended): recovery takes back output written after a query's last checkpoint.
    /// Logs that cannot (Kafka) answer [`LogError::Unsupported`], as this default does.
    async fn truncate(&self, topic: &str, partition: u32, offset: u64) -> Result<(), LogError> {
        let _ = (topic, partition, offset);
        Err(LogError::Unsupported("cutting a partition back"))
    }

    /// Whether [`Log::truncate`] works: a query that checkpoints is then exactly once (its
    /// output is cut back to its checkpoint after a crash).
    fn can_truncate(&self) -> bool {
        false
    }

    /// Where persistent queries keep their checkpoints, if this log has a place for them
    /// (the embedded log's data directory); without one, they keep them in a topic
    /// (`_eddy_checkpoints`).
    fn checkpoint_dir(&self) -> Option<std::path::PathBuf> {
        None
    }
}

/// Ownership of a piece of work, released when dropped (see [`coordinator`]).
pub struct Claim {
    /// Whatever holds the claim (a locked file), kept alive with it.
    _held: Box<dyn std::any::Any + Send + Sync>,
}

impl Claim {
    pub fn new(held: impl std::any::Any + Send + Sync) -> Claim {
        Claim { _held: Box::new(held) }
    }

    /// A claim nobody else can contest.
    pub fn unshared() -> Claim {
        Claim::new(())
    }
}

impl std::fmt::Debug for Claim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Claim")
    }
}

/// Checks a topic name with Kafka's rules: 1–249 characters of `[A-Za-z0-9._-]`, not `.`
/// or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), LogError> {
    let invalid = |reason: &str| Err(LogError::InvalidTopicName { name: name.to_owned(), reason: reason.to_owned() });
    if name.is_empty() {
        return invalid("a topic name cannot be empty");
    }
    if name == "." || name == ".." {
        return invalid("a topic name cannot be '.' or '..'");
    }
    if name.len() > 249 {
        return invalid("a topic name has at most 249 characters");
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return invalid(&format!("'{c}' is not allowed; use letters, digits, '.', '_' and '-'"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka() {
        for good in ["orders", "_eddy_commands", "a.b-c_D9", &"x".repeat(249)] {
            assert!(validate_topic_name(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "a b", "a/b", "ü", &"x".repeat(250)] {
            assert!(validate_topic_name(bad).is_err(), "{bad}");
        }
    }
}
