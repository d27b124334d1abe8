//! [`Log`] over a Kafka cluster, through `rskafka`: topics, produce, fetch and offsets as
//! any Kafka client sees them.
//!
//! One client per log; a partition client per partition used, kept. Records go out as
//! Kafka's record batches (CreateTime timestamps, headers), uncompressed; what Eddy reads back
//! is exactly what Java clients wrote. The log end offset is taken from a fetch's high
//! watermark rather than from ListOffsets(LATEST), which some brokers answer wrongly after
//! multi-record batches (tansu does: see `stack-notes.md`).
//!
//! Not here (yet): topic configs at creation (rskafka sends none), more than one value per
//! header key or a header without a value (rskafka's headers are a map of bytes),
//! and sharing queries across processes (its coordinator is [`super::coordinator::Solo`]:
//! each process runs every query it starts).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use rskafka::client::error::{Error as KafkaError, ProtocolError};
use rskafka::client::partition::{Compression, OffsetAt, PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};

use super::{Fetch, Header, Log, LogError, NewRecord, PartitionDescription, Record, TopicDescription, TopicSpec};

/// How long a read waits for data on the broker: tansu answers a fetch that may not wait
/// with nothing at all, even where records are.
const READ_WAIT_MS: i32 = 10;

/// How long a request is retried (connection loss, a leader moving) before it fails.
const RETRY_DEADLINE: Duration = Duration::from_secs(30);

/// Retries with exponential backoff and jitter, from 100 ms up to 2 s apart, for at most
/// [`RETRY_DEADLINE`]: a broker that comes back within it loses nothing; one that does not
/// fails the operation with a clear error (rskafka's default retries for ever).
fn backoff() -> rskafka::BackoffConfig {
    rskafka::BackoffConfig {
        init_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(2),
        base: 2.0,
        deadline: Some(RETRY_DEADLINE),
    }
}

/// How long admin requests may take on the broker.
const ADMIN_TIMEOUT_MS: i32 = 30_000;

/// A Kafka cluster as a [`Log`].
pub struct KafkaLog {
    client: Client,
    brokers: String,
    /// How produced batches are compressed.
    compression: Compression,
    partitions: tokio::sync::Mutex<HashMap<(String, u32), Arc<PartitionClient>>>,
}

impl KafkaLog {
    /// Connects to the cluster through `brokers` (`HOST:PORT[,HOST:PORT…]`).
    pub async fn connect(brokers: &str) -> Result<KafkaLog, LogError> {
        KafkaLog::connect_with(brokers, "none").await
    }

    /// Connects, compressing produced batches with `compression`: `none`, `gzip`, `lz4`,
    /// `snappy` or `zstd`.
    pub async fn connect_with(brokers: &str, compression: &str) -> Result<KafkaLog, LogError> {
        let compression = match compression.to_ascii_lowercase().as_str() {
            "none" => Compression::NoCompression,
            "gzip" => Compression::Gzip,
            "lz4" => Compression::Lz4,
            "snappy" => Compression::Snappy,
            "zstd" => Compression::Zstd,
            other => {
                return Err(LogError::InvalidConfig(format!(
                    "unknown compression '{other}': none, gzip, lz4, snappy or zstd"
                )));
            }
        };
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
        let client = ClientBuilder::new(bootstrap.clone())
            .client_id("eddy")
            .backoff_config(backoff())
            .build()
            .await
            .map_err(|e| LogError::Broker(format!("cannot connect to Kafka at {brokers}: {e}")))?;
        Ok(KafkaLog {
            client,
            brokers: brokers.to_string(),
            compression,
            partitions: tokio::sync::Mutex::new(HashMap::new()),
        })
    }

    async fn partition(&self, topic: &str, partition: u32) -> Result<Arc<PartitionClient>, LogError> {
        let mut partitions = self.partitions.lock().await;
        if let Some(client) = partitions.get(&(topic.to_string(), partition)) {
            return Ok(Arc::clone(client));
        }
        let count = self.partition_count(topic).await?;
        if partition >= count {
            return Err(LogError::UnknownPartition { topic: topic.to_string(), partition, partition_count: count });
        }
        let client = self
            .client
            .partition_client(topic, partition as i32, UnknownTopicHandling::Retry)
            .await
            .map_err(|e| broker_error(topic, e))?;
        let client = Arc::new(client);
        partitions.insert((topic.to_string(), partition), Arc::clone(&client));
        Ok(client)
    }

    /// The log end offset: ListOffsets(LATEST), checked against the high watermark of a
    /// fetch of the record before it (the one a broker answers exactly).
    async fn high_watermark(&self, topic: &str, partition: u32) -> Result<u64, LogError> {
        let client = self.partition(topic, partition).await?;
        let listed = client.get_offset(OffsetAt::Latest).await.map_err(|e| broker_error(topic, e))?.max(0);
        if listed == 0 {
            return Ok(0);
        }
        match fetch(&client, topic, listed - 1, 1, READ_WAIT_MS).await? {
            Some((_, high_watermark)) => Ok(high_watermark.max(listed) as u64),
            None => Ok(listed as u64),
        }
    }
}

impl std::fmt::Debug for KafkaLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KafkaLog({})", self.brokers)
    }
}

/// A broker's error as the log's: unknown topics and existing ones are the caller's.
fn broker_error(topic: &str, error: KafkaError) -> LogError {
    match &error {
        KafkaError::ServerError { protocol_error: ProtocolError::UnknownTopicOrPartition, .. } => {
            LogError::UnknownTopic(topic.to_string())
        }
        KafkaError::ServerError { protocol_error: ProtocolError::TopicAlreadyExists, .. } => {
            LogError::TopicExists(topic.to_string())
        }
        _ => LogError::Broker(error.to_string()),
    }
}

/// A fetch; `None` when the broker answers with no data at all (tansu does so for a fetch at
/// the log end, where Kafka answers with no records and the high watermark).
async fn fetch(
    client: &PartitionClient,
    topic: &str,
    offset: i64,
    max_bytes: usize,
    max_wait_ms: i32,
) -> Result<Option<(Vec<rskafka::record::RecordAndOffset>, i64)>, LogError> {
    let max = i32::try_from(max_bytes.max(1)).unwrap_or(i32::MAX);
    match client.fetch_records(offset, 1..max.max(2), max_wait_ms).await {
        Ok(fetched) => Ok(Some(fetched)),
        Err(KafkaError::InvalidResponse(message)) if message.contains("got 0") => Ok(None),
        Err(e) => Err(broker_error(topic, e)),
    }
}

fn kafka_record(record: &NewRecord) -> rskafka::record::Record {
    rskafka::record::Record {
        key: record.key.as_ref().map(|k| k.to_vec()),
        value: record.value.as_ref().map(|v| v.to_vec()),
        headers: record
            .headers
            .iter()
            .map(|h| (h.key.clone(), h.value.as_ref().map_or_else(Vec::new, |v| v.to_vec())))
            .collect(),
        timestamp: chrono::DateTime::from_timestamp_millis(record.timestamp_ms).unwrap_or_default(),
    }
}

fn eddy_record(record: rskafka::record::RecordAndOffset) -> Record {
    let rskafka::record::RecordAndOffset { record, offset } = record;
    Record {
        offset: offset.max(0) as u64,
        timestamp_ms: record.timestamp.timestamp_millis(),
        key: record.key.map(Bytes::from),
        value: record.value.map(Bytes::from),
        headers: record
            .headers
            .into_iter()
            .map(|(key, value)| Header { key, value: Some(Bytes::from(value)) })
            .collect(),
    }
}

#[async_trait]
impl Log for KafkaLog {
    async fn create_topic(&self, name: &str, spec: &TopicSpec) -> Result<(), LogError> {
        super::validate_topic_name(name)?;
        let controller = self.client.controller_client().map_err(|e| broker_error(name, e))?;
        let partitions =
            i32::try_from(spec.partitions).map_err(|_| LogError::InvalidConfig("too many partitions".into()))?;
        controller
            .create_topic(name, partitions, spec.replication_factor as i16, ADMIN_TIMEOUT_MS)
            .await
            .map_err(|e| broker_error(name, e))
    }

    async fn delete_topic(&self, name: &str) -> Result<(), LogError> {
        let controller = self.client.controller_client().map_err(|e| broker_error(name, e))?;
        controller.delete_topic(name, ADMIN_TIMEOUT_MS).await.map_err(|e| broker_error(name, e))?;
        self.partitions.lock().await.retain(|(topic, _), _| topic != name);
        Ok(())
    }

    async fn list_topics(&self) -> Result<Vec<String>, LogError> {
        let mut names: Vec<String> =
            self.client.list_topics().await.map_err(|e| broker_error("", e))?.into_iter().map(|t| t.name).collect();
        names.sort();
        Ok(names)
    }

    async fn describe_topic(&self, name: &str) -> Result<TopicDescription, LogError> {
        let count = self.partition_count(name).await?;
        let mut partitions = Vec::with_capacity(count as usize);
        for partition in 0..count {
            partitions.push(PartitionDescription {
                partition,
                earliest_offset: self.earliest_offset(name, partition).await?,
                latest_offset: self.latest_offset(name, partition).await?,
                size_bytes: None,
            });
        }
        Ok(TopicDescription { name: name.to_string(), replication_factor: 1, partitions, configs: Default::default() })
    }

    async fn partition_count(&self, name: &str) -> Result<u32, LogError> {
        let topics = self.client.list_topics().await.map_err(|e| broker_error(name, e))?;
        topics
            .into_iter()
            .find(|t| t.name == name)
            .map(|t| t.partitions.len() as u32)
            .ok_or_else(|| LogError::UnknownTopic(name.to_string()))
    }

    async fn append(&self, topic: &str, partition: u32, records: &[NewRecord]) -> Result<u64, LogError> {
        let client = self.partition(topic, partition).await?;
        if records.is_empty() {
            return self.latest_offset(topic, partition).await;
        }
        let offsets = client
            .produce(records.iter().map(kafka_record).collect(), self.compression)
            .await
            .map_err(|e| broker_error(topic, e))?;
        Ok(offsets.first().copied().unwrap_or(0).max(0) as u64)
    }

    async fn read(&self, topic: &str, partition: u32, offset: u64, max_bytes: usize) -> Result<Fetch, LogError> {
        let client = self.partition(topic, partition).await?;
        let Some((records, high_watermark)) = fetch(&client, topic, offset as i64, max_bytes, READ_WAIT_MS).await?
        else {
            return Ok(Fetch { records: Vec::new(), high_watermark: offset });
        };
        let mut records: Vec<Record> = records.into_iter().map(eddy_record).filter(|r| r.offset >= offset).collect();
        records.sort_by_key(|r| r.offset);
        Ok(Fetch { records, high_watermark: high_watermark.max(0) as u64 })
    }

    async fn earliest_offset(&self, topic: &str, partition: u32) -> Result<u64, LogError> {
        let client = self.partition(topic, partition).await?;
        Ok(client.get_offset(OffsetAt::Earliest).await.map_err(|e| broker_error(topic, e))?.max(0) as u64)
    }

    async fn latest_offset(&self, topic: &str, partition: u32) -> Result<u64, LogError> {
        self.high_watermark(topic, partition).await
    }

    async fn offset_for_timestamp(
        &self,
        topic: &str,
        partition: u32,
        timestamp_ms: i64,
    ) -> Result<Option<u64>, LogError> {
        let client = self.partition(topic, partition).await?;
        let at = chrono::DateTime::from_timestamp_millis(timestamp_ms).unwrap_or_default();
        let offset = client.get_offset(OffsetAt::Timestamp(at)).await.map_err(|e| broker_error(topic, e))?;
        Ok((offset >= 0).then_some(offset as u64))
    }

    async fn wait_for_data(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        timeout: Duration,
    ) -> Result<bool, LogError> {
        let client = self.partition(topic, partition).await?;
        let wait = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        Ok(match fetch(&client, topic, offset as i64, 64 * 1024, wait).await? {
            Some((records, high_watermark)) => !records.is_empty() || high_watermark.max(0) as u64 > offset,
            None => false,
        })
    }
}
