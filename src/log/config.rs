//! Topic configuration, under Kafka's names.
//!
//! A topic's configs are a string map (what the user gave at creation) validated into a
//! [`TopicConfig`]. Unknown names and bad values are refused with a message that says what
//! is accepted.

use std::collections::BTreeMap;

use super::error::LogError;

/// What happens to old data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CleanupPolicy {
    /// Whole segments are deleted by `retention.ms` and `retention.bytes`.
    Delete,
    /// Accepted for ksqlDB compatibility (changelog topics ask for it); the embedded log
    /// keeps every record and applies time/size retention only if they are set explicitly.
    Compact,
}

/// The validated settings of one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicConfig {
    /// Delete a closed segment once its newest record is older than this; `None` keeps data
    /// forever (`-1`).
    pub retention_ms: Option<i64>,
    /// Delete the oldest closed segments while the partition is larger than this; `None`
    /// for no limit (`-1`).
    pub retention_bytes: Option<u64>,
    /// Roll to a new segment when the active one would grow past this.
    pub segment_bytes: u64,
    /// Roll to a new segment when the active one's first record is older than this.
    pub segment_ms: i64,
    /// fsync after this many records since the last fsync; `None`: not by count.
    pub flush_messages: Option<u64>,
    /// fsync when an append comes this long after the last fsync; `None`: not by time.
    pub flush_ms: Option<u64>,
    /// The largest record accepted.
    pub max_message_bytes: u64,
    pub cleanup_policy: CleanupPolicy,
}

/// Every config name the embedded log understands, with its default as Kafka prints it.
pub const CONFIG_DEFAULTS: &[(&str, &str)] = &[
    ("cleanup.policy", "delete"),
    ("flush.messages", "-1"),
    ("flush.ms", "1000"),
    ("max.message.bytes", "8388608"),
    ("retention.bytes", "-1"),
    ("retention.ms", "604800000"),
    ("segment.bytes", "67108864"),
    ("segment.ms", "604800000"),
];

impl Default for TopicConfig {
    fn default() -> Self {
        TopicConfig::from_map(&BTreeMap::new()).expect("the defaults are valid")
    }
}

impl TopicConfig {
    /// Validates `configs` (names as in Kafka) over the defaults.
    pub fn from_map(configs: &BTreeMap<String, String>) -> Result<Self, LogError> {
        for name in configs.keys() {
            if !CONFIG_DEFAULTS.iter().any(|(known, _)| known == name) {
                let known: Vec<&str> = CONFIG_DEFAULTS.iter().map(|(n, _)| *n).collect();
                return Err(LogError::InvalidConfig(format!(
                    "unknown config '{name}'; known configs: {}",
                    known.join(", ")
                )));
            }
        }
        let get = |name: &str| -> &str {
            configs
                .get(name)
                .map(String::as_str)
                .unwrap_or_else(|| CONFIG_DEFAULTS.iter().find(|(n, _)| *n == name).map_or("", |(_, d)| d))
        };
        let cleanup_policy = match get("cleanup.policy") {
            "delete" => CleanupPolicy::Delete,
            "compact" | "compact,delete" | "delete,compact" => CleanupPolicy::Compact,
            other => {
                return Err(LogError::InvalidConfig(format!(
                    "cleanup.policy must be 'delete' or 'compact', not '{other}'"
                )));
            }
        };
        Ok(TopicConfig {
            retention_ms: optional(get("retention.ms"), "retention.ms")?,
            retention_bytes: optional(get("retention.bytes"), "retention.bytes")?.map(|b: i64| b as u64),
            segment_bytes: at_least(get("segment.bytes"), "segment.bytes", 1024)?,
            segment_ms: at_least(get("segment.ms"), "segment.ms", 1)? as i64,
            flush_messages: optional(get("flush.messages"), "flush.messages")?.map(|n: i64| n as u64),
            flush_ms: optional(get("flush.ms"), "flush.ms")?.map(|n: i64| n as u64),
            max_message_bytes: at_least(get("max.message.bytes"), "max.message.bytes", 1)?,
            cleanup_policy,
        })
    }

    /// Every config with its effective value, for `describe`.
    pub fn effective(configs: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        CONFIG_DEFAULTS
            .iter()
            .map(|(name, default)| {
                let value = configs.get(*name).cloned().unwrap_or_else(|| (*default).to_owned());
                ((*name).to_owned(), value)
            })
            .collect()
    }
}

/// A non-negative number, or `-1` for "none".
fn optional(value: &str, name: &str) -> Result<Option<i64>, LogError> {
    match value.trim().parse::<i64>() {
        Ok(-1) => Ok(None),
        Ok(n) if n >= 0 => Ok(Some(n)),
        _ => Err(LogError::InvalidConfig(format!("{name} must be a non-negative integer or -1, not '{value}'"))),
    }
}

fn at_least(value: &str, name: &str, minimum: u64) -> Result<u64, LogError> {
    match value.trim().parse::<u64>() {
        Ok(n) if n >= minimum => Ok(n),
        _ => Err(LogError::InvalidConfig(format!("{name} must be an integer of at least {minimum}, not '{value}'"))),
    }
}

/// Parses `k=v` (as given to `--config`) into a pair.
pub fn parse_config_pair(text: &str) -> Result<(String, String), LogError> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.trim().to_owned())),
        _ => Err(LogError::InvalidConfig(format!("expected name=value, got '{text}'"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_follow_kafka() {
        let c = TopicConfig::default();
        assert_eq!(c.retention_ms, Some(604_800_000));
        assert_eq!(c.retention_bytes, None);
        assert_eq!(c.segment_bytes, 64 * 1024 * 1024);
        assert_eq!(c.cleanup_policy, CleanupPolicy::Delete);
    }

    #[test]
    fn values_are_validated() {
        let c = TopicConfig::from_map(&map(&[("retention.ms", "-1"), ("retention.bytes", "5000")])).unwrap();
        assert_eq!(c.retention_ms, None);
        assert_eq!(c.retention_bytes, Some(5000));
        for bad in [
            ("retention.ms", "soon"),
            ("retention.ms", "-2"),
            ("segment.bytes", "10"),
            ("cleanup.policy", "shred"),
            ("no.such.config", "1"),
        ] {
            let err = TopicConfig::from_map(&map(&[bad])).unwrap_err();
            assert!(matches!(err, LogError::InvalidConfig(_)), "{bad:?}");
        }
    }

    #[test]
    fn config_pairs_parse() {
        assert_eq!(parse_config_pair("a.b=1").unwrap(), ("a.b".into(), "1".into()));
        assert!(parse_config_pair("novalue").is_err());
        assert!(parse_config_pair("=1").is_err());
    }
}
