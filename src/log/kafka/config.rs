//! How Eddy connects to a Kafka cluster: the brokers and the client properties, set the way
//! Kafka clients set them (`--kafka-config FILE`, a Java properties file).
//!
//! The properties go to librdkafka, which takes Kafka's own names for the connection and
//! security settings (`security.protocol`, `sasl.mechanism`, `sasl.username`,
//! `sasl.password`, `ssl.ca.location`, `ssl.certificate.location`, `ssl.key.location`, …).
//! What only the Java client understands is translated or refused here:
//! - `sasl.jaas.config` (`…LoginModule required username="KEY" password="SECRET";`) becomes
//!   `sasl.username` and `sasl.password`;
//! - Java keystores and truststores (`ssl.truststore.*`, JKS) are refused with a hint: give
//!   PEM files (`ssl.ca.location`, …) instead;
//! - settings for other components in the same file (serializers, `schema.registry.*`,
//!   `basic.auth.*`, `client.dns.lookup`) are left out.
//!
//! Anything else is passed as it is; librdkafka refuses a name it does not know, and that
//! refusal is reported with the property's name.

use std::collections::BTreeMap;
use std::path::Path;

use super::LogError;

/// The brokers and client properties of a cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KafkaConfig {
    /// `HOST:PORT[,HOST:PORT…]`.
    pub brokers: String,
    /// librdkafka properties, already translated from Java's.
    pub properties: BTreeMap<String, String>,
}

/// Keys meant for other components than the Kafka client, left out.
const OTHER_COMPONENTS: &[&str] = &[
    "key.serializer",
    "value.serializer",
    "key.deserializer",
    "value.deserializer",
    "client.dns.lookup",
    "basic.auth.credentials.source",
    "basic.auth.user.info",
];

impl KafkaConfig {
    /// Brokers only: a plaintext connection with no authentication.
    pub fn new(brokers: &str) -> KafkaConfig {
        KafkaConfig { brokers: brokers.to_owned(), properties: BTreeMap::new() }
    }

    /// Reads a properties file; `brokers` (the command line's `--kafka`) wins over the file's
    /// `bootstrap.servers`.
    pub fn from_file(path: &Path, brokers: Option<&str>) -> Result<KafkaConfig, LogError> {
        let text = std::fs::read_to_string(path).map_err(LogError::io("read", path))?;
        KafkaConfig::from_properties(&parse_properties(&text), brokers)
            .map_err(|e| LogError::InvalidConfig(format!("{}: {e}", path.display())))
    }

    /// Translates Java client properties into librdkafka's (see the module's list).
    pub fn from_properties(given: &BTreeMap<String, String>, brokers: Option<&str>) -> Result<KafkaConfig, String> {
        let mut properties = BTreeMap::new();
        let mut file_brokers = None;
        for (key, value) in given {
            match key.as_str() {
                "bootstrap.servers" => file_brokers = Some(value.clone()),
                "sasl.jaas.config" => {
                    let (username, password) = jaas_credentials(value)?;
                    properties.insert("sasl.username".to_owned(), username);
                    properties.insert("sasl.password".to_owned(), password);
                }
                "sasl.mechanisms" => {
                    properties.insert("sasl.mechanism".to_owned(), value.clone());
                }
                k if k.starts_with("ssl.truststore.") || k.starts_with("ssl.keystore.type") => {
                    return Err(format!(
                        "'{k}': Java key and trust stores are not read; give PEM files with \
                         ssl.ca.location (and ssl.certificate.location, ssl.key.location)"
                    ));
                }
                k if OTHER_COMPONENTS.contains(&k) || k.starts_with("schema.registry.") => {
                    tracing::debug!(property = k, "left out of the Kafka client's properties");
                }
                _ => {
                    properties.insert(key.clone(), value.clone());
                }
            }
        }
        let brokers =
            brokers.map(str::to_owned).or(file_brokers).ok_or("no brokers: give --kafka or bootstrap.servers")?;
        Ok(KafkaConfig { brokers, properties })
    }

    /// Whether the connection is encrypted (TLS), from `security.protocol`.
    pub fn uses_tls(&self) -> bool {
        self.properties.get("security.protocol").is_some_and(|p| p.to_ascii_uppercase().ends_with("SSL"))
    }

    /// The client configuration every librdkafka handle of the log starts from.
    pub(super) fn client_config(&self) -> rdkafka::ClientConfig {
        let mut config = rdkafka::ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", "eddy")
            .set("allow.auto.create.topics", "false");
        if let Ok(debug) = std::env::var("EDDY_KAFKA_DEBUG") {
            config.set("debug", debug);
        }
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }
}

/// `username` and `password` of a JAAS login module line (PLAIN's or SCRAM's).
fn jaas_credentials(jaas: &str) -> Result<(String, String), String> {
    let field = |name: &str| -> Option<String> {
        let at = jaas.find(&format!("{name}="))? + name.len() + 1;
        let rest = &jaas[at..];
        let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        let end = rest[1..].find(quote)?;
        Some(rest[1..1 + end].to_owned())
    };
    match (field("username"), field("password")) {
        (Some(username), Some(password)) => Ok((username, password)),
        _ => {
            Err("sasl.jaas.config: expected username=\"…\" password=\"…\" (PlainLoginModule or ScramLoginModule)"
                .into())
        }
    }
}

/// A Java properties file's `key=value` (or `key: value`, `key value`) lines; `#` and `!`
/// start comments, and a line ending in `\` goes on on the next.
pub fn parse_properties(text: &str) -> BTreeMap<String, String> {
    let mut properties = BTreeMap::new();
    let mut logical = String::new();
    for line in text.lines() {
        let line = line.trim_start();
        if logical.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with('!')) {
            continue;
        }
        if let Some(continued) = line.strip_suffix('\\') {
            logical.push_str(continued);
            continue;
        }
        logical.push_str(line);
        let entry = std::mem::take(&mut logical);
        let split = entry.find(['=', ':', ' ', '\t']).unwrap_or(entry.len());
        let key = entry[..split].trim().to_owned();
        let value = entry[split..].trim_start_matches([' ', '\t']);
        let value = value.strip_prefix(['=', ':']).unwrap_or(value).trim();
        if !key.is_empty() {
            properties.insert(key, value.to_owned());
        }
    }
    properties
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confluent_cloud_properties_become_librdkafka_settings() {
        let file = "# Confluent Cloud\n\
            bootstrap.servers=pkc-1.europe-west1.gcp.confluent.cloud:9092\n\
            security.protocol=SASL_SSL\n\
            sasl.mechanism=PLAIN\n\
            sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule \\\n   \
              required username='KEY' password=\"SE=CRET\";\n\
            client.dns.lookup=use_all_dns_ips\n\
            session.timeout.ms: 45000\n\
            schema.registry.url=https://psrc-1.gcp.confluent.cloud\n";
        let config = KafkaConfig::from_properties(&parse_properties(file), None).unwrap();
        assert_eq!(config.brokers, "pkc-1.europe-west1.gcp.confluent.cloud:9092");
        let expected: BTreeMap<String, String> = [
            ("sasl.mechanism", "PLAIN"),
            ("sasl.password", "SE=CRET"),
            ("sasl.username", "KEY"),
            ("security.protocol", "SASL_SSL"),
            ("session.timeout.ms", "45000"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(config.properties, expected);
        assert!(config.uses_tls());
        assert_eq!(KafkaConfig::from_properties(&parse_properties(file), Some("h:1")).unwrap().brokers, "h:1");
    }

    #[test]
    fn java_stores_and_bad_jaas_lines_are_refused_with_a_hint() {
        let refused = |text: &str| KafkaConfig::from_properties(&parse_properties(text), Some("h:1")).unwrap_err();
        assert!(refused("ssl.truststore.location=/x.jks").contains("ssl.ca.location"));
        assert!(refused("sasl.jaas.config=x required;").contains("username="));
        assert!(KafkaConfig::from_properties(&BTreeMap::new(), None).unwrap_err().contains("--kafka"));
    }
}
