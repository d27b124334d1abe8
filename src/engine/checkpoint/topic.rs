//! Checkpoints kept in a topic, `_eddy_checkpoints`, for logs without a directory of their
//! own (Kafka): a query's state survives the process, and a query restarted on another
//! machine resumes from it instead of reading its input again from the start.
//!
//! A checkpoint is the same bytes as a checkpoint file ([`super::encode`]), cut into records
//! of at most [`CHUNK_BYTES`] (Kafka's default `max.message.bytes` is 1 MiB), then a commit
//! record says it is whole:
//! - chunk `i` of epoch `e` has the key `<query>/<e mod 2>/<i>` and, as value, `e` (8 bytes,
//!   big-endian) followed by the chunk;
//! - the commit has the key `<query>` and, as value, JSON `{"epoch": e, "chunks": n}`.
//!
//! The topic is compacted: the newest value of each key is kept. Keys alternate between two
//! slots by epoch, so writing epoch `e + 1` never overwrites epoch `e`, the one the latest
//! commit names, and a crash between the chunks and the commit leaves `e` readable. Dropping a
//! query writes tombstones for its keys.
//!
//! Reading the latest checkpoint reads the topic from its start, as Kafka Streams restores a
//! changelog: with compaction that is a few records per query.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{Checkpoint, decode, encode};
use crate::log::{Log, LogError, NewRecord, TopicSpec};

/// The topic every query's checkpoints go to.
pub const CHECKPOINT_TOPIC: &str = "_eddy_checkpoints";
/// The largest chunk of a checkpoint in one record.
const CHUNK_BYTES: usize = 512 * 1024;
/// Bytes asked of the log per read while scanning.
const FETCH_BYTES: usize = 4 * 1024 * 1024;

/// The checkpoints of one query in [`CHECKPOINT_TOPIC`].
#[derive(Clone)]
pub struct TopicStore {
    pub(super) log: Arc<dyn Log>,
    pub(super) query: String,
}

impl std::fmt::Debug for TopicStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TopicStore({CHECKPOINT_TOPIC}, {})", self.query)
    }
}

/// A commit record's value.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(super) struct Commit {
    epoch: u64,
    chunks: usize,
}

/// What a scan of the topic found for one query.
#[derive(Default)]
pub(super) struct Scan {
    /// The commits seen, in order (the newest last).
    pub(super) commits: Vec<Commit>,
    /// The newest chunk of each (slot, index): its epoch and bytes.
    chunks: BTreeMap<(u64, usize), (u64, Bytes)>,
}

impl TopicStore {
    fn chunk_key(&self, epoch: u64, index: usize) -> String {
        format!("{}/{}/{index}", self.query, epoch % 2)
    }

    /// Reads the topic from its start, keeping what belongs to this query.
    pub(super) async fn scan(&self) -> Result<Scan, LogError> {
        let mut scan = Scan::default();
        let end = match self.log.latest_offset(CHECKPOINT_TOPIC, 0).await {
            Ok(end) => end,
            Err(LogError::UnknownTopic(_)) => return Ok(scan),
            Err(e) => return Err(e),
        };
        let mut offset = self.log.earliest_offset(CHECKPOINT_TOPIC, 0).await?;
        let chunk_prefix = format!("{}/", self.query);
        while offset < end {
            let fetch = self.log.read(CHECKPOINT_TOPIC, 0, offset, FETCH_BYTES).await?;
            let Some(last) = fetch.records.last() else { break };
            offset = last.offset + 1;
            for record in fetch.records {
                let Some(key) = record.key.as_deref().and_then(|k| std::str::from_utf8(k).ok()) else { continue };
                if key == self.query {
                    match record.value.as_deref().map(serde_json::from_slice::<Commit>) {
                        Some(Ok(commit)) => scan.commits.push(commit),
                        // A tombstone: the query was dropped; what came before is gone.
                        None => scan = Scan::default(),
                        Some(Err(e)) => tracing::warn!(query = %self.query, %e, "ignoring a corrupt checkpoint commit"),
                    }
                } else if let Some(slot_index) = key.strip_prefix(&chunk_prefix) {
                    let Some((slot, index)) = slot_index.split_once('/') else { continue };
                    let (Ok(slot), Ok(index)) = (slot.parse::<u64>(), index.parse::<usize>()) else { continue };
                    match record.value {
                        Some(value) if value.len() >= 8 => {
                            let epoch = u64::from_be_bytes(value[..8].try_into().unwrap_or_default());
                            scan.chunks.insert((slot, index), (epoch, value.slice(8..)));
                        }
                        _ => {
                            scan.chunks.remove(&(slot, index));
                        }
                    }
                }
            }
        }
        Ok(scan)
    }

    /// The newest committed checkpoint that reads back whole (a damaged one is skipped for
    /// the one before), if any. Fails when there are commits but none reads back.
    pub(super) async fn latest(&self) -> Result<Option<Checkpoint>, LogError> {
        let scan = self.scan().await?;
        // The last two commits of different epochs: the newest, and the one before it.
        let mut candidates: Vec<Commit> = Vec::new();
        for commit in scan.commits.iter().rev() {
            if candidates.iter().all(|c| c.epoch != commit.epoch) {
                candidates.push(*commit);
            }
            if candidates.len() == 2 {
                break;
            }
        }
        for commit in &candidates {
            let mut bytes = Vec::new();
            let mut whole = true;
            for index in 0..commit.chunks {
                match scan.chunks.get(&(commit.epoch % 2, index)) {
                    Some((epoch, chunk)) if *epoch == commit.epoch => bytes.extend_from_slice(chunk),
                    _ => {
                        whole = false;
                        break;
                    }
                }
            }
            if !whole {
                tracing::warn!(query = %self.query, epoch = commit.epoch, "skipping a checkpoint whose chunks are gone");
                continue;
            }
            match decode(&bytes) {
                Ok(checkpoint) => return Ok(Some(checkpoint)),
                Err(reason) => {
                    tracing::warn!(query = %self.query, epoch = commit.epoch, %reason, "skipping a damaged checkpoint")
                }
            }
        }
        match candidates.first() {
            None => Ok(None),
            Some(commit) => Err(LogError::Corrupt {
                path: format!("{CHECKPOINT_TOPIC}/{}", self.query).into(),
                position: commit.epoch,
                reason: "no checkpoint of the query reads back whole; it cannot resume".into(),
            }),
        }
    }

    /// Writes the chunks, then (while `alive` says the query still runs) the commit.
    pub async fn write(&self, checkpoint: &Checkpoint, alive: impl Fn() -> bool) -> Result<u64, LogError> {
        let bytes = encode(checkpoint).map_err(|reason| LogError::Corrupt {
            path: CHECKPOINT_TOPIC.into(),
            position: checkpoint.epoch,
            reason: format!("cannot encode checkpoint {}: {reason}", checkpoint.epoch),
        })?;
        let now = chrono::Utc::now().timestamp_millis();
        let chunks: Vec<NewRecord> = bytes
            .chunks(CHUNK_BYTES)
            .enumerate()
            .map(|(index, chunk)| {
                let mut value = Vec::with_capacity(8 + chunk.len());
                value.extend_from_slice(&checkpoint.epoch.to_be_bytes());
                value.extend_from_slice(chunk);
                NewRecord::new(now, Some(Bytes::from(self.chunk_key(checkpoint.epoch, index))), Some(value.into()))
            })
            .collect();
        let commit = serde_json::to_vec(&Commit { epoch: checkpoint.epoch, chunks: chunks.len() }).unwrap_or_default();
        self.append(&chunks).await?;
        if !alive() {
            return Err(LogError::Unsupported("checkpointing a query that was dropped"));
        }
        self.append(&[NewRecord::new(now, Some(Bytes::from(self.query.clone())), Some(commit.into()))]).await?;
        Ok(bytes.len() as u64)
    }

    /// Tombstones for every key of the query.
    pub(super) async fn delete_all(&self) -> Result<(), LogError> {
        let scan = self.scan().await?;
        if scan.commits.is_empty() && scan.chunks.is_empty() {
            return Ok(());
        }
        let now = chrono::Utc::now().timestamp_millis();
        let mut tombstones: Vec<NewRecord> = scan
            .chunks
            .keys()
            .map(|(slot, index)| NewRecord::new(now, Some(Bytes::from(format!("{}/{slot}/{index}", self.query))), None))
            .collect();
        tombstones.push(NewRecord::new(now, Some(Bytes::from(self.query.clone())), None));
        self.append(&tombstones).await
    }

    /// Appends to the topic, making it (compacted, kept for ever) the first time.
    async fn append(&self, records: &[NewRecord]) -> Result<(), LogError> {
        match self.log.append(CHECKPOINT_TOPIC, 0, records).await {
            Err(LogError::UnknownTopic(_)) => {
                let spec = TopicSpec::new(1).with_config("cleanup.policy", "compact").with_config("retention.ms", "-1");
                match self.log.create_topic(CHECKPOINT_TOPIC, &spec).await {
                    Ok(()) | Err(LogError::TopicExists(_)) => {}
                    Err(e) => return Err(e),
                }
                self.log.append(CHECKPOINT_TOPIC, 0, records).await.map(|_| ())
            }
            other => other.map(|_| ()),
        }
    }
}
