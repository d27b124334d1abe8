//! Eddy's own properties (`eddy.*`), typed and checked in one place.
//!
//! A property reaches a query from three layers, each over the one before: the defaults
//! given on the command line (`--property NAME=VALUE`, and the environment variables the
//! command line reads), the session's `SET`s (or a REST request's properties), and what a
//! persistent query kept when it was created. [`Config::set`] is the one parser: a `SET` of
//! a bad value or of an unknown `eddy.*` name is refused with the reason, and no value is
//! read anywhere else. Properties outside `eddy.*` (ksqlDB's) pass through as text.

use std::time::Duration;

/// The prefix of Eddy's own properties.
pub const PREFIX: &str = "eddy.";
/// How long a source waits for more records before it cuts a batch.
pub const SOURCE_LINGER: &str = "eddy.source.linger.ms";
/// How often a persistent query takes a checkpoint.
pub const CHECKPOINT_INTERVAL: &str = "eddy.checkpoint.interval.ms";
/// The most bytes a query's state may hold before the query fails.
pub const STATE_LIMIT: &str = "eddy.query.state.max.bytes";
/// How long an unwindowed aggregation keeps a group it has not seen.
pub const STATE_TTL: &str = "eddy.state.ttl.ms";
/// How a join re-keys a side joined on something other than its key.
pub const JOIN_REPARTITION: &str = "eddy.join.repartition";

/// A source batch is cut this long after its first record arrived, by default.
pub const DEFAULT_LINGER: Duration = Duration::from_millis(5);
/// Barriers (checkpoints) are this frequent by default.
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

/// A property value refused, or a name Eddy does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// How a join re-keys a side joined on something other than its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repartition {
    /// Through an internal repartition topic, as ksqlDB does (the default).
    Topic,
    /// In the join itself: no extra write and read of every record, but nothing a Kafka
    /// consumer or a second process could share.
    Memory,
}

impl Repartition {
    pub fn name(self) -> &'static str {
        match self {
            Repartition::Topic => "topic",
            Repartition::Memory => "memory",
        }
    }
}

/// Eddy's properties, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub source_linger: Duration,
    pub checkpoint_interval: Duration,
    pub state_limit: Option<u64>,
    pub state_ttl: Option<Duration>,
    pub join_repartition: Repartition,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            source_linger: DEFAULT_LINGER,
            checkpoint_interval: DEFAULT_CHECKPOINT_INTERVAL,
            state_limit: None,
            state_ttl: None,
            join_repartition: Repartition::Topic,
        }
    }
}

/// One of Eddy's properties: its name, what it does, and how its value is read.
pub struct Property {
    pub name: &'static str,
    pub doc: &'static str,
    apply: fn(&mut Config, &str) -> Result<(), String>,
    current: fn(&Config) -> String,
}

/// Every property Eddy knows, in name order.
pub const PROPERTIES: &[Property] = &[
    Property {
        name: CHECKPOINT_INTERVAL,
        doc: "milliseconds between a persistent query's checkpoints (default 1000; 0, as often as it can)",
        apply: |config, value| {
            config.checkpoint_interval = Duration::from_millis(whole_number(value)?);
            Ok(())
        },
        current: |config| config.checkpoint_interval.as_millis().to_string(),
    },
    Property {
        name: JOIN_REPARTITION,
        doc: "'topic' (default) or 'memory': how a join re-keys a side not joined on its key",
        apply: |config, value| {
            config.join_repartition = match value.trim().to_ascii_lowercase().as_str() {
                "topic" => Repartition::Topic,
                "memory" => Repartition::Memory,
                _ => return Err("String must be one of: topic, memory".into()),
            };
            Ok(())
        },
        current: |config| config.join_repartition.name().into(),
    },
    Property {
        name: STATE_LIMIT,
        doc: "the most bytes a query's state may hold before the query fails (default: no limit)",
        apply: |config, value| {
            config.state_limit = Some(whole_number(value)?);
            Ok(())
        },
        current: |config| config.state_limit.map(|n| n.to_string()).unwrap_or_default(),
    },
    Property {
        name: SOURCE_LINGER,
        doc: "milliseconds a source waits for more records before it cuts a batch (default 5)",
        apply: |config, value| {
            config.source_linger = Duration::from_millis(whole_number(value)?);
            Ok(())
        },
        current: |config| config.source_linger.as_millis().to_string(),
    },
    Property {
        name: STATE_TTL,
        doc: "milliseconds an unwindowed aggregation keeps a group it has not seen (default: forever)",
        apply: |config, value| {
            config.state_ttl = Some(positive_millis(value)?);
            Ok(())
        },
        current: |config| config.state_ttl.map(|d| d.as_millis().to_string()).unwrap_or_default(),
    },
];

impl Config {
    /// Sets property `name` to `value` when it is one of Eddy's (true), or says nothing of a
    /// name outside `eddy.*` (false). An unknown `eddy.*` name or a bad value is refused.
    pub fn set(&mut self, name: &str, value: &str) -> Result<bool, ConfigError> {
        let lower = name.to_ascii_lowercase();
        if !lower.starts_with(PREFIX) {
            return Ok(false);
        }
        let property = property(&lower).ok_or_else(|| {
            let known: Vec<&str> = PROPERTIES.iter().map(|p| p.name).collect();
            ConfigError(format!("Unknown property {name}. Eddy's properties are: {}", known.join(", ")))
        })?;
        (property.apply)(self, value)
            .map_err(|reason| ConfigError(format!("Invalid value {value} for configuration {name}: {reason}")))?;
        Ok(true)
    }

    /// This configuration with every `eddy.*` property among `properties` set over it, in
    /// order (later ones win).
    pub fn with<'a>(
        &self,
        properties: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) -> Result<Config, ConfigError> {
        let mut config = self.clone();
        for (name, value) in properties {
            config.set(name, value)?;
        }
        Ok(config)
    }

    /// Property `name`'s value in this configuration, as `SHOW PROPERTIES` lists it.
    pub fn value_of(&self, property: &Property) -> String {
        (property.current)(self)
    }
}

/// Checks a `SET` before it is kept: `Ok` for any name outside `eddy.*`.
pub fn check(name: &str, value: &str) -> Result<(), ConfigError> {
    Config::default().set(name, value).map(|_| ())
}

/// Property `name` (lower case), if Eddy knows it.
fn property(name: &str) -> Option<&'static Property> {
    PROPERTIES.iter().find(|p| p.name == name)
}

/// `NAME=VALUE`, as the command line's `--property` takes a property.
pub fn parse_assignment(text: &str) -> Result<(String, String), ConfigError> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| ConfigError(format!("'{text}' is not NAME=VALUE (for example eddy.source.linger.ms=1)")))?;
    let name = name.trim();
    if name.is_empty() {
        return Err(ConfigError(format!("'{text}' has no property name before '='")));
    }
    check(name, value.trim())?;
    Ok((name.to_string(), value.trim().to_string()))
}

fn whole_number(value: &str) -> Result<u64, String> {
    value.trim().parse::<u64>().map_err(|_| "a whole number, 0 or more".to_string())
}

fn positive_millis(value: &str) -> Result<Duration, String> {
    match whole_number(value)? {
        0 => Err("a whole number of milliseconds, 1 or more".into()),
        ms => Ok(Duration::from_millis(ms)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_known_properties_and_refuses_bad_values() {
        let mut config = Config::default();
        assert_eq!(config.set("eddy.checkpoint.interval.ms", "250"), Ok(true));
        assert_eq!(config.checkpoint_interval, Duration::from_millis(250));
        assert_eq!(config.set("EDDY.JOIN.REPARTITION", "Memory"), Ok(true));
        assert_eq!(config.join_repartition, Repartition::Memory);
        assert_eq!(config.set("auto.offset.reset", "earliest"), Ok(false));

        let refused = config.set("eddy.checkpoint.interval.ms", "soon").unwrap_err();
        assert_eq!(
            refused.0,
            "Invalid value soon for configuration eddy.checkpoint.interval.ms: a whole number, 0 or more"
        );
        assert!(config.set("eddy.state.ttl.ms", "0").is_err());
        assert!(config.set("eddy.source.linger.ms", "-1").is_err());
        assert!(config.set("eddy.join.repartition", "disk").unwrap_err().0.contains("topic, memory"));
        // A refused value leaves the configuration as it was.
        assert_eq!(config.checkpoint_interval, Duration::from_millis(250));
    }

    #[test]
    fn refuses_unknown_eddy_properties_naming_the_known_ones() {
        let refused = check("eddy.checkpoint.interval", "10").unwrap_err();
        assert!(refused.0.starts_with("Unknown property eddy.checkpoint.interval."), "{refused}");
        assert!(refused.0.contains("eddy.checkpoint.interval.ms"), "{refused}");
        assert_eq!(check("ksql.streams.num.stream.threads", "4"), Ok(()));
    }

    #[test]
    fn layers_apply_in_order() {
        let command_line = std::collections::BTreeMap::from([("eddy.source.linger.ms".to_string(), "1".to_string())]);
        let base = Config::default().with(&command_line).unwrap();
        let session = [("eddy.source.linger.ms".to_string(), "7".to_string())];
        let resolved = base.with(session.iter().map(|(k, v)| (k, v))).unwrap();
        assert_eq!(resolved.source_linger, Duration::from_millis(7));
        assert_eq!(base.source_linger, Duration::from_millis(1));
    }

    #[test]
    fn every_property_lists_its_value() {
        let config = Config::default();
        let listed: Vec<String> = PROPERTIES.iter().map(|p| format!("{}={}", p.name, config.value_of(p))).collect();
        assert!(listed.contains(&"eddy.checkpoint.interval.ms=1000".to_string()), "{listed:?}");
        let mut names: Vec<&str> = PROPERTIES.iter().map(|p| p.name).collect();
        names.sort_unstable();
        assert_eq!(names, PROPERTIES.iter().map(|p| p.name).collect::<Vec<_>>());
    }

    #[test]
    fn assignments_from_the_command_line() {
        assert_eq!(parse_assignment("eddy.state.ttl.ms = 60000"), Ok(("eddy.state.ttl.ms".into(), "60000".into())));
        assert!(parse_assignment("eddy.state.ttl.ms").is_err());
        assert!(parse_assignment("=3").is_err());
        assert!(parse_assignment("eddy.state.ttl.ms=forever").is_err());
    }
}
