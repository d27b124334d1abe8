//! A producer over any [`Log`]: picks partitions as Kafka's producer does and batches
//! records per partition.

use std::sync::Arc;

use super::Log;
use super::error::LogError;
use super::partitioner::partition_for_key;
use super::record::NewRecord;

/// Buffers records per partition until [`Producer::flush`].
///
/// Keyed records go to Kafka's default partition for their key; records without a key are
/// spread round-robin over the partitions; an explicit partition wins over both.
pub struct Producer {
    log: Arc<dyn Log>,
    topic: String,
    partition_count: u32,
    next_unkeyed: u32,
    pending: Vec<Vec<NewRecord>>,
    pending_records: usize,
    /// Key and value bytes buffered.
    pending_bytes: usize,
}

impl Producer {
    /// A producer for an existing topic.
    pub async fn new(log: Arc<dyn Log>, topic: &str) -> Result<Producer, LogError> {
        let partition_count = log.partition_count(topic).await?;
        Ok(Producer {
            log,
            topic: topic.to_owned(),
            partition_count,
            next_unkeyed: 0,
            pending: (0..partition_count).map(|_| Vec::new()).collect(),
            pending_records: 0,
            pending_bytes: 0,
        })
    }

    /// Records buffered and not yet flushed.
    pub fn pending_records(&self) -> usize {
        self.pending_records
    }

    /// Key and value bytes of the records buffered.
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Checks that `partition` exists.
    pub fn check_partition(&self, partition: u32) -> Result<(), LogError> {
        if partition < self.partition_count {
            Ok(())
        } else {
            Err(LogError::UnknownPartition {
                topic: self.topic.clone(),
                partition,
                partition_count: self.partition_count,
            })
        }
    }

    /// Buffers `record` for `partition`, or for the partition its key (or the round-robin)
    /// picks; returns the partition.
    pub fn send(&mut self, record: NewRecord, partition: Option<u32>) -> Result<u32, LogError> {
        let partition = match (partition, &record.key) {
            (Some(p), _) => {
                self.check_partition(p)?;
                p
            }
            (None, Some(key)) => partition_for_key(key, self.partition_count),
            (None, None) => {
                let p = self.next_unkeyed % self.partition_count;
                self.next_unkeyed = self.next_unkeyed.wrapping_add(1);
                p
            }
        };
        self.pending_bytes += record.payload_bytes();
        self.pending[partition as usize].push(record);
        self.pending_records += 1;
        Ok(partition)
    }

    /// Appends everything buffered, the partitions concurrently (on Kafka, a request each in
    /// flight at once). Partitions whose append failed keep their records; the first error
    /// is returned.
    pub async fn flush(&mut self) -> Result<(), LogError> {
        let (log, topic) = (&self.log, &self.topic);
        let appends =
            self.pending.iter().enumerate().filter(|(_, records)| !records.is_empty()).map(
                |(partition, records)| async move { (partition, log.append(topic, partition as u32, records).await) },
            );
        let outcomes = futures::future::join_all(appends).await;
        let mut first_error = None;
        for (partition, outcome) in outcomes {
            match outcome {
                Ok(_) => {
                    let records = &mut self.pending[partition];
                    self.pending_records -= records.len();
                    records.clear();
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            self.pending_bytes = self.pending.iter().flatten().map(NewRecord::payload_bytes).sum();
            return Err(e);
        }
        self.pending_bytes = 0;
        Ok(())
    }
}
