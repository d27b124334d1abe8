//! [`Log`] over a Kafka cluster, through librdkafka (the `rdkafka` crate): topics, produce,
//! fetch and offsets as any Kafka client sees them. Why librdkafka: `docs/kafka.md`.
//!
//! One producer per log (idempotent, `acks=all`, records in the order appended), one admin
//! client, and a pool of consumers that read partitions from any offset ([`reader`]).
//! Records go out with CreateTime timestamps and their headers (several values of a key,
//! and null values, kept); what Eddy reads back is exactly what Java clients wrote. The log
//! end offset is taken from a fetch's high watermark rather than from ListOffsets(LATEST),
//! which some brokers answer wrongly after multi-record batches (tansu does: see
//! `stack-notes.md`).
//!
//! Not here (yet): sharing one query's partitions across processes (its coordinator is
//! [`super::coordinator::Solo`]: each process runs every query it starts).

pub mod config;
mod context;
mod reader;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header as KafkaHeader, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;

pub use config::KafkaConfig;
use context::Context;
use reader::{Readers, client_error};

use super::{Fetch, Log, LogError, NewRecord, PartitionDescription, TopicDescription, TopicSpec};

/// How long a produced record, or an admin or metadata request, may take, retries
/// (connection loss, a leader moving, a broker restarting) included, before it fails.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long connecting may take before it fails with librdkafka's last error.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A Kafka cluster as a [`Log`].
pub struct KafkaLog {
    config: KafkaConfig,
    producer: FutureProducer<Context>,
    admin: AdminClient<Context>,
    /// For metadata and offsets requests (blocking calls, made on the blocking pool).
    metadata: Arc<BaseConsumer<Context>>,
    readers: Readers,
    /// Topics known to exist, with their partitions: librdkafka's producer, asked to write
    /// to a topic the broker does not have, waits for it to appear before it fails.
    known: std::sync::Mutex<std::collections::HashMap<String, u32>>,
    /// The log end of each partition as far as this process knows it (its own appends, the
    /// ends ListOffsets gave): a read below it waits for records a fetch has not brought yet,
    /// so what this process appended it reads back at once.
    ends: std::sync::Mutex<std::collections::HashMap<(String, u32), u64>>,
}

impl KafkaLog {
    /// Connects to the cluster through `brokers` (`HOST:PORT[,HOST:PORT…]`), in plaintext.
    pub async fn connect(brokers: &str) -> Result<KafkaLog, LogError> {
        KafkaLog::connect_with(brokers, "none").await
    }

    /// Connects, compressing produced batches with `compression`: `none`, `gzip`, `lz4`,
    /// `snappy` or `zstd`.
    pub async fn connect_with(brokers: &str, compression: &str) -> Result<KafkaLog, LogError> {
        KafkaLog::open(KafkaConfig::new(brokers), compression).await
    }

    /// Connects with `config`'s brokers and client properties (TLS, SASL, …).
    pub async fn open(config: KafkaConfig, compression: &str) -> Result<KafkaLog, LogError> {
        let compression = compression.to_ascii_lowercase();
        if !matches!(compression.as_str(), "none" | "gzip" | "lz4" | "snappy" | "zstd") {
            return Err(LogError::InvalidConfig(format!(
                "unknown compression '{compression}': none, gzip, lz4, snappy or zstd"
            )));
        }
        let brokers = config.brokers.clone();
        let bootstrap: Vec<String> =
            brokers.split(',').map(|b| b.trim().to_string()).filter(|b| !b.is_empty()).collect();
        if bootstrap.is_empty() {
            return Err(LogError::Broker(format!("no broker in '{brokers}'")));
        }
        // A broker that refuses connections is reported at once (the client would retry).
        let mut reachable = false;
        let mut last_error = String::new();
        for broker in &bootstrap {
            match tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(broker.as_str())).await {
                Ok(Ok(_)) => {
                    reachable = true;
                    break;
                }
                Ok(Err(e)) => last_error = e.to_string(),
                Err(_) => last_error = "timed out".into(),
            }
        }
        if !reachable {
            return Err(LogError::Broker(format!("cannot connect to Kafka at {brokers}: {last_error}")));
        }
        let refused = |e: KafkaError| LogError::InvalidConfig(format!("Kafka client properties: {e}"));
        let timeout_ms = REQUEST_TIMEOUT.as_millis().to_string();
        let context = Context::default();
        let producer: FutureProducer<Context> = config
            .client_config()
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("compression.type", &compression)
            .set("linger.ms", "0")
            .set("message.timeout.ms", &timeout_ms)
            .set("queue.buffering.max.messages", "1000000")
            .create_with_context(context.clone())
            .map_err(refused)?;
        let admin: AdminClient<Context> =
            config.client_config().create_with_context(context.clone()).map_err(refused)?;
        let metadata: Arc<BaseConsumer<Context>> = Arc::new(
            config
                .client_config()
                .set("group.id", "eddy-metadata")
                .create_with_context(context.clone())
                .map_err(refused)?,
        );
        let log = KafkaLog {
            readers: Readers::new(config.client_config(), context.clone()),
            config,
            producer,
            admin,
            metadata,
            known: Default::default(),
            ends: Default::default(),
        };
        // Authentication and TLS problems show here, not at the first query, and at once.
        let deadline = tokio::time::Instant::now() + CONNECT_TIMEOUT;
        loop {
            match log.blocking(|m| m.fetch_metadata(None, Duration::from_secs(1)).map(|_| ())).await {
                Ok(()) => return Ok(log),
                Err(e) => {
                    let refusal = context.refusal();
                    if refusal.is_some() || tokio::time::Instant::now() >= deadline {
                        let why = refusal.or_else(|| context.last_error()).unwrap_or_else(|| e.to_string());
                        return Err(LogError::Broker(format!("cannot connect to Kafka at {brokers}: {why}")));
                    }
                }
            }
        }
    }

    /// The brokers and client properties it was opened with.
    pub fn config(&self) -> &KafkaConfig {
        &self.config
    }

    /// Runs a blocking librdkafka call on the metadata consumer, off the async threads.
    async fn blocking<T: Send + 'static>(
        &self,
        call: impl FnOnce(&BaseConsumer<Context>) -> Result<T, KafkaError> + Send + 'static,
    ) -> Result<T, LogError> {
        let metadata = Arc::clone(&self.metadata);
        tokio::task::spawn_blocking(move || {
            // Serve the events (errors, logs) queued on the handle since the last call, so
            // they do not pile up: nothing else polls it.
            let _ = metadata.poll(Duration::ZERO);
            call(&metadata)
        })
        .await
        .map_err(|e| LogError::Broker(format!("Kafka request stopped: {e}")))?
        .map_err(client_error)
    }

    /// The partitions of `topic` with the number of replicas of the first.
    async fn topic_metadata(&self, topic: &str) -> Result<(u32, u16), LogError> {
        let name = topic.to_owned();
        let found = self
            .blocking(move |m| {
                let metadata = m.fetch_metadata(Some(&name), REQUEST_TIMEOUT)?;
                Ok(metadata.topics().first().map(|t| {
                    let replicas = t.partitions().first().map_or(1, |p| p.replicas().len());
                    (t.error(), t.partitions().len() as u32, replicas as u16)
                }))
            })
            .await?;
        match found {
            Some((None, partitions, replicas)) if partitions > 0 => Ok((partitions, replicas.max(1))),
            _ => Err(LogError::UnknownTopic(topic.to_owned())),
        }
    }

    /// Earliest and (as ListOffsets answers it) latest offsets of a partition.
    async fn watermarks(&self, topic: &str, partition: u32) -> Result<(u64, u64), LogError> {
        let name = topic.to_owned();
        let (low, high) = self
            .blocking(move |m| m.fetch_watermarks(&name, partition as i32, REQUEST_TIMEOUT))
            .await
            .map_err(|e| topic_error(topic, e))?;
        Ok((low.max(0) as u64, high.max(0) as u64))
    }

    /// The log end this process knows of for a partition (0 when it knows none).
    fn known_end(&self, topic: &str, partition: u32) -> u64 {
        let ends = self.ends.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        ends.get(&(topic.to_owned(), partition)).copied().unwrap_or(0)
    }

    /// Records that the partition's log end is at least `end`.
    fn saw_end(&self, topic: &str, partition: u32, end: u64) {
        let mut ends = self.ends.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let known = ends.entry((topic.to_owned(), partition)).or_insert(0);
        *known = (*known).max(end);
    }

    /// A cursor of the partition at `offset`; a partition not read yet is checked first, so
    /// that no fetch is sent for a topic the broker does not have.
    async fn cursor(&self, topic: &str, partition: u32, offset: u64) -> Result<reader::Guard, LogError> {
        if !self.readers.reads(topic, partition) {
            self.check_partition(topic, partition).await?;
        }
        self.readers.cursor(topic, partition, offset).await
    }

    /// Fails unless the topic has the partition; a topic seen before is not asked about (the
    /// offsets requests that follow fail for a topic deleted since).
    async fn check_known_partition(&self, topic: &str, partition: u32) -> Result<(), LogError> {
        let known = self.known.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(topic).copied();
        match known {
            Some(count) if partition < count => Ok(()),
            _ => self.check_partition(topic, partition).await,
        }
    }

    async fn check_partition(&self, topic: &str, partition: u32) -> Result<(), LogError> {
        let (count, _) = self.topic_metadata(topic).await?;
        self.known.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(topic.to_owned(), count);
        if partition >= count {
            return Err(LogError::UnknownPartition { topic: topic.to_string(), partition, partition_count: count });
        }
        Ok(())
    }
}

impl std::fmt::Debug for KafkaLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KafkaLog({})", self.config.brokers)
    }
}

/// An error about `topic`: one it does not have is the caller's.
fn topic_error(topic: &str, error: LogError) -> LogError {
    match &error {
        LogError::Broker(message) if message.contains("Unknown topic") => LogError::UnknownTopic(topic.to_owned()),
        _ => error,
    }
}

fn admin_options() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(REQUEST_TIMEOUT)).request_timeout(Some(REQUEST_TIMEOUT))
}

#[async_trait]
impl Log for KafkaLog {
    async fn create_topic(&self, name: &str, spec: &TopicSpec) -> Result<(), LogError> {
        super::validate_topic_name(name)?;
        let partitions =
            i32::try_from(spec.partitions).map_err(|_| LogError::InvalidConfig("too many partitions".into()))?;
        let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(i32::from(spec.replication_factor)));
        for (key, value) in &spec.configs {
            topic = topic.set(key, value);
        }
        let results = self.admin.create_topics([&topic], &admin_options()).await.map_err(client_error)?;
        for result in results {
            match result {
                Ok(_) => {}
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => return Err(LogError::TopicExists(name.to_owned())),
                Err((_, RDKafkaErrorCode::InvalidConfig)) => {
                    return Err(LogError::InvalidConfig(format!("the broker refused the configs of '{name}'")));
                }
                Err((_, code)) => return Err(LogError::Broker(format!("cannot create topic '{name}': {code}"))),
            }
        }
        Ok(())
    }

    async fn delete_topic(&self, name: &str) -> Result<(), LogError> {
        // No fetch of the topic may be answered after it is gone (`Readers::forget`).
        if self.readers.forget(name) {
            tokio::time::sleep(reader::IN_FLIGHT).await;
        }
        self.known.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(name);
        self.ends.lock().unwrap_or_else(std::sync::PoisonError::into_inner).retain(|(topic, _), _| topic != name);
        let results = self.admin.delete_topics(&[name], &admin_options()).await.map_err(client_error)?;
        for result in results {
            match result {
                Ok(_) => {}
                Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {
                    return Err(LogError::UnknownTopic(name.to_owned()));
                }
                Err((_, code)) => return Err(LogError::Broker(format!("cannot delete topic '{name}': {code}"))),
            }
        }
        Ok(())
    }

    async fn list_topics(&self) -> Result<Vec<String>, LogError> {
        let mut names = self
            .blocking(|m| {
                let metadata = m.fetch_metadata(None, REQUEST_TIMEOUT)?;
                Ok(metadata.topics().iter().map(|t| t.name().to_owned()).collect::<Vec<_>>())
            })
            .await?;
        names.sort();
        Ok(names)
    }

    async fn describe_topic(&self, name: &str) -> Result<TopicDescription, LogError> {
        let (count, replication_factor) = self.topic_metadata(name).await?;
        let mut partitions = Vec::with_capacity(count as usize);
        for partition in 0..count {
            partitions.push(PartitionDescription {
                partition,
                earliest_offset: self.earliest_offset(name, partition).await?,
                latest_offset: self.latest_offset(name, partition).await?,
                size_bytes: None,
            });
        }
        // Brokers that do not answer DescribeConfigs leave the configs empty.
        let mut configs = std::collections::BTreeMap::new();
        if let Ok(results) = self.admin.describe_configs([&ResourceSpecifier::Topic(name)], &admin_options()).await {
            for resource in results.into_iter().flatten() {
                for entry in resource.entries {
                    if let Some(value) = entry.value {
                        configs.insert(entry.name, value);
                    }
                }
            }
        }
        Ok(TopicDescription { name: name.to_string(), replication_factor, partitions, configs })
    }

    async fn partition_count(&self, name: &str) -> Result<u32, LogError> {
        Ok(self.topic_metadata(name).await?.0)
    }

    async fn append(&self, topic: &str, partition: u32, records: &[NewRecord]) -> Result<u64, LogError> {
        if records.is_empty() {
            return self.latest_offset(topic, partition).await;
        }
        self.check_known_partition(topic, partition).await?;
        let p = i32::try_from(partition).map_err(|_| LogError::UnknownPartition {
            topic: topic.to_owned(),
            partition,
            partition_count: 0,
        })?;
        let mut deliveries = Vec::with_capacity(records.len());
        for record in records {
            let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
            for header in &record.headers {
                headers = headers.insert(KafkaHeader { key: &header.key, value: header.value.as_deref() });
            }
            let mut out: FutureRecord<'_, [u8], [u8]> =
                FutureRecord::to(topic).partition(p).timestamp(record.timestamp_ms).headers(headers);
            out.key = record.key.as_deref();
            out.payload = record.value.as_deref();
            let mut out = out;
            // A full queue waits for deliveries to make room.
            loop {
                match self.producer.send_result(out) {
                    Ok(delivery) => {
                        deliveries.push(delivery);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        out = back;
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    Err((e, _)) => return Err(produce_error(topic, partition, e)),
                }
            }
        }
        let (mut first, mut last) = (None, 0);
        for delivery in deliveries {
            match delivery.await {
                Ok(Ok(delivered)) => {
                    first.get_or_insert(delivered.offset.max(0) as u64);
                    last = last.max(delivered.offset.max(0) as u64);
                }
                Ok(Err((e, _))) => return Err(produce_error(topic, partition, e)),
                Err(_) => return Err(LogError::Broker("the producer stopped".into())),
            }
        }
        self.saw_end(topic, partition, last + 1);
        Ok(first.unwrap_or(0))
    }

    async fn read(&self, topic: &str, partition: u32, offset: u64, max_bytes: usize) -> Result<Fetch, LogError> {
        let known_end = self.known_end(topic, partition);
        let mut cursor = self.cursor(topic, partition, offset).await?;
        match cursor.read(max_bytes, known_end).await {
            Ok((records, high_watermark)) => Ok(Fetch { records, high_watermark }),
            Err(LogError::UnknownTopic(_)) | Err(LogError::OffsetOutOfRange { .. }) => {
                drop(cursor);
                // Say which, with the partition's real bounds.
                self.check_partition(topic, partition).await?;
                let (earliest, latest) =
                    (self.earliest_offset(topic, partition).await?, self.latest_offset(topic, partition).await?);
                Err(LogError::OffsetOutOfRange { topic: topic.to_owned(), partition, offset, earliest, latest })
            }
            Err(e) => Err(e),
        }
    }

    async fn earliest_offset(&self, topic: &str, partition: u32) -> Result<u64, LogError> {
        self.check_known_partition(topic, partition).await?;
        Ok(self.watermarks(topic, partition).await?.0)
    }

    /// ListOffsets(LATEST), checked against the high watermark of a fetch of the record
    /// before it (the one a broker answers exactly).
    async fn latest_offset(&self, topic: &str, partition: u32) -> Result<u64, LogError> {
        self.check_known_partition(topic, partition).await?;
        let (earliest, listed) = self.watermarks(topic, partition).await?;
        if listed <= earliest {
            self.saw_end(topic, partition, listed);
            return Ok(listed);
        }
        let mut cursor = self.cursor(topic, partition, listed - 1).await?;
        let (_, high_watermark) = cursor.read(1, listed).await?;
        let end = high_watermark.max(listed);
        drop(cursor);
        self.saw_end(topic, partition, end);
        Ok(end)
    }

    async fn offset_for_timestamp(
        &self,
        topic: &str,
        partition: u32,
        timestamp_ms: i64,
    ) -> Result<Option<u64>, LogError> {
        self.check_known_partition(topic, partition).await?;
        let name = topic.to_owned();
        let found = self
            .blocking(move |m| {
                let mut query = rdkafka::TopicPartitionList::new();
                query.add_partition_offset(&name, partition as i32, rdkafka::Offset::Offset(timestamp_ms))?;
                let answer = m.offsets_for_times(query, REQUEST_TIMEOUT)?;
                Ok(answer.elements().first().map(|e| e.offset()))
            })
            .await?;
        Ok(match found {
            Some(rdkafka::Offset::Offset(offset)) if offset >= 0 => Some(offset as u64),
            _ => None,
        })
    }

    async fn wait_for_data(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        timeout: Duration,
    ) -> Result<bool, LogError> {
        let known_end = self.known_end(topic, partition);
        let mut cursor = self.cursor(topic, partition, offset).await?;
        cursor.wait(timeout, known_end).await
    }
}

fn produce_error(topic: &str, partition: u32, error: KafkaError) -> LogError {
    match error.rdkafka_error_code() {
        Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic) => {
            LogError::UnknownTopic(topic.to_owned())
        }
        Some(RDKafkaErrorCode::UnknownPartition) => {
            LogError::UnknownPartition { topic: topic.to_owned(), partition, partition_count: 0 }
        }
        _ => LogError::Broker(error.to_string()),
    }
}
