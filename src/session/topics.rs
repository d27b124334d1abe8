//! Statements about sources and their topics: creating the topic of a new source, dropping
//! a source, and `SHOW` / `DESCRIBE`.

use super::entity;
use super::*;

impl Session {
    /// Checks the planned source's topic exists, creating it when `PARTITIONS` is given.
    pub(super) async fn ensure_topic(&self, source: &crate::catalog::Source) -> Result<(), SessionError> {
        let (topic, properties) = (&source.topic, &source.properties);
        let partitions = properties
            .get("PARTITIONS")
            .map(|p| p.parse::<u32>())
            .transpose()
            .map_err(|_| refusal("PARTITIONS must be a positive integer".into()))?;
        match self.log.partition_count(topic).await {
            Ok(existing) => match partitions {
                Some(wanted) if wanted != existing => Err(refusal(format!(
                    "A Kafka topic with the name '{topic}' already exists, with different partition/replica \
                     configuration than required. KSQL expects {wanted} partitions (topic has {existing})."
                ))),
                _ => Ok(()),
            },
            Err(LogError::UnknownTopic(_)) => {
                let Some(partitions) = partitions else {
                    return Err(refusal(format!(
                        "Topic '{topic}' does not exist. If you want to create a new topic for the \
                         stream/table please re-run the statement providing the required 'PARTITIONS' \
                         configuration in the WITH clause (and optionally 'REPLICAS')."
                    )));
                };
                let replicas = properties.get("REPLICAS").and_then(|r| r.parse::<u16>().ok()).unwrap_or(1);
                let mut spec = TopicSpec { partitions, replication_factor: replicas, configs: BTreeMap::new() };
                if let Some(retention) = properties.get("RETENTION_MS") {
                    spec.configs.insert("retention.ms".into(), retention.clone());
                }
                match self.log.create_topic(topic, &spec).await {
                    Ok(()) => Ok(()),
                    // Made meanwhile (by a connector starting, another process): as good, if
                    // it has the partitions wanted.
                    Err(LogError::TopicExists(_)) => match self.log.partition_count(topic).await? {
                        existing if existing == partitions => Ok(()),
                        existing => Err(refusal(format!(
                            "A Kafka topic with the name '{topic}' already exists, with different partition/replica \
                             configuration than required. KSQL expects {partitions} partitions (topic has {existing})."
                        ))),
                    },
                    Err(e) if e.is_user_error() => Err(refusal(e.to_string())),
                    Err(e) => Err(SessionError::Log(e)),
                }
            }
            Err(e) => Err(SessionError::Log(e)),
        }
    }

    pub(super) async fn drop_source(&mut self, drop: &DropSource, text: &str) -> Result<StatementResult, SessionError> {
        let name = source_name(&drop.name);
        let Some(source) = self.catalog.source(&name).cloned() else {
            if drop.if_exists {
                return Ok(StatementResult::status(format!("Source `{name}` does not exist.")));
            }
            let kind = drop.kind.keyword();
            let kind = format!("{}{}", &kind[..1], kind[1..].to_lowercase());
            return Err(refusal(format!(
                "{kind} {name} does not exist.{}",
                self.catalog.alternatives(&name, Some(drop.kind))
            )));
        };
        if source.kind != drop.kind {
            let (is, not) = (source.kind.keyword(), drop.kind.keyword());
            return Err(refusal(format!("Incompatible data source type is {is}, but statement was DROP {not}")));
        }
        if source.read_only && drop.delete_topic {
            return Err(refusal(format!("Cannot delete topic for read-only source: {name}")));
        }
        let (reading, writing) = self.catalog.queries_using(&name);
        if !reading.is_empty() || !writing.is_empty() {
            return Err(refusal(format!(
                "Cannot drop {name}.\nThe following queries read from this source: [{}].\n\
                 The following queries write into this source: [{}].\n\
                 You need to terminate them before dropping {name}.",
                reading.join(", "),
                writing.join(", ")
            )));
        }
        self.log_command(text).await?;
        if drop.delete_topic {
            match self.log.delete_topic(&source.topic).await {
                Ok(()) | Err(LogError::UnknownTopic(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(StatementResult::status(format!("Source `{name}` (topic: {}) was dropped.", source.topic)))
    }

    pub(super) async fn show(&self, target: ShowTarget) -> Result<StatementResult, SessionError> {
        let sources = |kind: SourceKind| -> Vec<Vec<String>> {
            self.catalog
                .sources()
                .filter(|s| s.kind == kind)
                .map(|s| {
                    vec![
                        s.name.clone(),
                        s.topic.clone(),
                        s.key_format.name().into(),
                        s.value_format.name().into(),
                        "false".into(),
                    ]
                })
                .collect()
        };
        Ok(match target {
            ShowTarget::Connectors(scope) => self.show_connectors(scope, "SHOW CONNECTORS"),
            ShowTarget::Streams => StatementResult::table(
                &["Stream Name", "Kafka Topic", "Key Format", "Value Format", "Windowed"],
                sources(SourceKind::Stream),
            )
            .with_entity(super::entity::sources(
                SourceKind::Stream,
                self.catalog.sources().filter(|s| s.kind == SourceKind::Stream).map(|s| s.as_ref()),
            )),
            ShowTarget::Tables => StatementResult::table(
                &["Table Name", "Kafka Topic", "Key Format", "Value Format", "Windowed"],
                sources(SourceKind::Table),
            )
            .with_entity(super::entity::sources(
                SourceKind::Table,
                self.catalog.sources().filter(|s| s.kind == SourceKind::Table).map(|s| s.as_ref()),
            )),
            ShowTarget::Topics | ShowTarget::AllTopics => {
                let mut rows = Vec::new();
                for topic in self.log.list_topics().await? {
                    if target == ShowTarget::Topics && topic.starts_with('_') {
                        continue; // internal topics show with SHOW ALL TOPICS
                    }
                    let partitions = self.log.partition_count(&topic).await?;
                    rows.push(vec![topic, partitions.to_string(), "1".into()]);
                }
                let topics = rows
                    .iter()
                    .map(|r| entity::KafkaTopic {
                        name: r[0].clone(),
                        replica_info: vec![1; r[1].parse().unwrap_or(0)],
                    })
                    .collect();
                StatementResult::table(&["Kafka Topic", "Partitions", "Partition Replicas"], rows)
                    .with_entity(entity::to_value(&entity::Listing::KafkaTopics { topics }))
            }
            ShowTarget::Properties => {
                // Eddy's own with the values in force here (defaults, the command line's, SET's).
                let config = crate::config::Config::default()
                    .with(self.defaults.iter())
                    .and_then(|config| config.with(self.properties.iter()))
                    .map_err(|e| refusal(e.0))?;
                let mut properties: BTreeMap<String, (&str, String)> = crate::config::PROPERTIES
                    .iter()
                    .map(|p| (p.name.to_string(), ("EDDY", config.value_of(p))))
                    .collect();
                properties.insert("auto.offset.reset".into(), ("KSQL", "latest".into()));
                for (name, value) in self.defaults.iter().chain(&self.properties) {
                    let scope = if name.starts_with(crate::config::PREFIX) { "EDDY" } else { "KSQL" };
                    properties.insert(name.clone(), (scope, value.clone()));
                }
                let listed = properties
                    .iter()
                    .map(|(k, (scope, v))| entity::Property {
                        name: k.clone(),
                        scope: (*scope).to_owned(),
                        value: v.clone(),
                    })
                    .collect();
                let defaults = properties.keys().filter(|k| !self.properties.contains_key(*k)).cloned().collect();
                let entity = entity::to_value(&entity::Listing::Properties {
                    properties: listed,
                    overwritten_properties: self.properties.keys().cloned().collect(),
                    default_properties: defaults,
                });
                let rows = properties.into_iter().map(|(k, (scope, v))| vec![k, scope.into(), v]).collect();
                StatementResult::table(&["Property", "Scope", "Value"], rows).with_entity(entity)
            }
            ShowTarget::Variables => StatementResult::table(
                &["Variable Name", "Value"],
                self.variables.iter().map(|(k, v)| vec![k.clone(), v.clone()]).collect(),
            )
            .with_entity(entity::to_value(&entity::Listing::Variables {
                variables: self
                    .variables
                    .iter()
                    .map(|(k, v)| entity::Variable { name: k.clone(), value: v.clone() })
                    .collect(),
            })),
            ShowTarget::Types => StatementResult::table(
                &["Type Name", "Schema"],
                self.catalog.types().map(|(k, v)| vec![k.clone(), v.to_string()]).collect(),
            ),
            ShowTarget::Queries => self.show_queries(),
            ShowTarget::Functions => StatementResult::table(
                &["Function Name", "Category"],
                crate::engine::functions::all()
                    .iter()
                    .map(|f| vec![f.name.to_owned(), f.category.to_owned()])
                    .collect(),
            ),
        })
    }

    pub(super) async fn describe(
        &self,
        source: &crate::catalog::Source,
        extended: bool,
    ) -> Result<StatementResult, SessionError> {
        let rows = source
            .columns
            .iter()
            .map(|c| {
                let role = match &c.role {
                    ColumnRole::Key if source.kind == SourceKind::Table => " (primary key)".to_string(),
                    ColumnRole::Key => " (key)".to_string(),
                    ColumnRole::Value => String::new(),
                    ColumnRole::Headers => " (headers)".to_string(),
                    ColumnRole::Header(k) => format!(" (header('{k}'))"),
                };
                vec![c.name.clone(), format!("{}{role}", c.sql_type)]
            })
            .collect();
        let mut title = format!(
            "Name: {}\nType: {}\nKafka topic: {}\nKey format: {}\nValue format: {}",
            source.name,
            source.kind.keyword(),
            source.topic,
            source.key_format.name(),
            source.value_format.name()
        );
        if let Some(column) = &source.timestamp_column {
            title.push_str(&format!("\nTimestamp field: {column}"));
        }
        if extended {
            let description = self.log.describe_topic(&source.topic).await;
            match description {
                Ok(topic) => {
                    let records: u64 = topic.partitions.iter().map(|p| p.latest_offset - p.earliest_offset).sum();
                    title.push_str(&format!(
                        "\nPartitions: {}\nRecords in topic: {records}\nStatement: {}",
                        topic.partitions.len(),
                        source.statement
                    ));
                    let (reading, writing) = self.catalog.queries_using(&source.name);
                    let described = |ids: &[String]| -> String {
                        ids.iter()
                            .map(|id| {
                                let counts = self.running.get(id).map(|q| {
                                    use std::sync::atomic::Ordering::Relaxed;
                                    format!(
                                        " (read {}, written {}, skipped {})",
                                        q.state.records_read.load(Relaxed),
                                        q.state.records_written.load(Relaxed),
                                        q.state.records_skipped.load(Relaxed)
                                    )
                                });
                                format!("\n  {id}{}", counts.unwrap_or_default())
                            })
                            .collect()
                    };
                    title.push_str(&format!(
                        "\nQueries that read from this {}:{}\nQueries that write into this {}:{}",
                        source.kind.keyword(),
                        described(&reading),
                        source.kind.keyword(),
                        described(&writing)
                    ));
                }
                Err(e) => title.push_str(&format!("\nTopic: unavailable ({e})")),
            }
        }
        let (reading, writing) = self.catalog.queries_using(&source.name);
        let partitions = self.log.partition_count(&source.topic).await.ok();
        let entity = super::entity::source_description(source, &reading, &writing, partitions, extended);
        Ok(StatementResult::Table { title: Some(title), columns: vec!["Field".into(), "Type".into()], rows }
            .with_entity(entity))
    }
}
