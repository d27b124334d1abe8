//! The log layer's error type.

use std::path::PathBuf;

/// What can go wrong talking to a log (embedded or Kafka).
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("topic '{0}' does not exist")]
    UnknownTopic(String),

    #[error("topic '{0}' already exists")]
    TopicExists(String),

    #[error("invalid topic name '{name}': {reason}")]
    InvalidTopicName { name: String, reason: String },

    #[error("topic '{topic}' has no partition {partition} (it has {partition_count})")]
    UnknownPartition { topic: String, partition: u32, partition_count: u32 },

    #[error("invalid topic config: {0}")]
    InvalidConfig(String),

    #[error(
        "offset {offset} is out of range for {topic}-{partition} \
         (earliest {earliest}, latest {latest})"
    )]
    OffsetOutOfRange { topic: String, partition: u32, offset: u64, earliest: u64, latest: u64 },

    #[error("a record of {size} bytes exceeds max.message.bytes ({max}) of topic '{topic}'")]
    RecordTooLarge { topic: String, size: usize, max: u64 },

    /// The log cannot do this at all.
    #[error("{0} is not supported by this log")]
    Unsupported(&'static str),

    /// A Kafka broker failed the request (or could not be reached).
    #[error("Kafka: {0}")]
    Broker(String),

    #[error("corrupt data in {} at byte {position}: {reason}", path.display())]
    Corrupt { path: PathBuf, position: u64, reason: String },

    #[error("{} on {}: {source}", operation, path.display())]
    Io {
        operation: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl LogError {
    /// True when the error is the caller's doing (a name, a number, a config) rather than
    /// the storage's; the CLI exits with 1 for these and 2 for the rest.
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            LogError::UnknownTopic(_)
                | LogError::TopicExists(_)
                | LogError::InvalidTopicName { .. }
                | LogError::UnknownPartition { .. }
                | LogError::InvalidConfig(_)
                | LogError::OffsetOutOfRange { .. }
                | LogError::RecordTooLarge { .. }
        )
    }

    pub(crate) fn io(operation: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> LogError {
        let path = path.into();
        move |source| LogError::Io { operation, path, source }
    }
}
