//! The embedded log: topics as files in a data directory, shared safely by several
//! processes on one machine.
//!
//! # Layout
//! ```text
//! <data-dir>/format                          "eddy-log 1"
//! <data-dir>/topics/<topic>/topic.json       partitions, replication factor, configs
//! <data-dir>/topics/<topic>/<p>/lock         flock'ed by appenders of partition p
//! <data-dir>/topics/<topic>/<p>/<base>.log   a segment: frames of records (see `frame`)
//! <data-dir>/topics/<topic>/<p>/<base>.index index of a sealed segment (see `segment`)
//! <data-dir>/staging/                        topics being created or deleted
//! <data-dir>/claims/query-<id>.lock          flock'ed by the process running a query
//! ```
//! Creating a topic builds it under `staging/` and renames it into `topics/` (atomic: other
//! processes see all of it or nothing); deleting renames it out first.
//!
//! # Modules, in data-flow order
//! - `frame`: the bytes of a record batch, with its checksum;
//! - `segment`: one file of frames, its index, scans and reads;
//! - `partition`: segments, cross-process appends, repair, retention;
//! - `flusher`: fsyncs and indexes sealed segments in the background;
//! - `watcher`: wakes readers when other processes append.

mod flusher;
mod frame;
mod partition;
mod segment;
mod watcher;

pub use self::segment::segment_file_name;

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use self::flusher::Flusher;
use self::partition::Partition;
use self::watcher::Watcher;
use super::config::TopicConfig;
use super::error::LogError;
use super::record::{Fetch, NewRecord};
use super::{Log, PartitionDescription, TopicDescription, TopicSpec, validate_topic_name};

const FORMAT: &str = "eddy-log 1\n";
/// Readers re-check this often even without a wake-up (a missed event costs this much).
const RECHECK_WATCHED: Duration = Duration::from_secs(1);
/// …and this often where inotify is unavailable.
const RECHECK_UNWATCHED: Duration = Duration::from_millis(20);
/// At most this many partitions per topic.
const MAX_PARTITIONS: u32 = 10_000;

/// `topic.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TopicMeta {
    partitions: u32,
    replication_factor: u16,
    configs: BTreeMap<String, String>,
}

/// An open topic: its partitions, and the inode of its directory so that a topic deleted and
/// re-created by another process is noticed.
struct OpenTopic {
    inode: u64,
    meta: TopicMeta,
    partitions: Vec<Arc<Partition>>,
}

/// The embedded implementation of [`Log`].
pub struct EmbeddedLog {
    root: PathBuf,
    topics: Mutex<HashMap<String, Arc<OpenTopic>>>,
    /// Started on the first wait (it needs a tokio runtime); `None` inside if unavailable.
    watcher: Mutex<Option<Option<Watcher>>>,
    /// Declared last: dropped after the partitions, it finishes their queued seals.
    flusher: Flusher,
}

impl EmbeddedLog {
    /// Opens (creating if needed) the data directory at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<EmbeddedLog, LogError> {
        let root = root.into();
        for dir in [root.join("topics"), root.join("staging"), root.join("checkpoints")] {
            std::fs::create_dir_all(&dir).map_err(LogError::io("create data directory", &dir))?;
        }
        let format_path = root.join("format");
        match std::fs::read_to_string(&format_path) {
            Ok(text) if text == FORMAT => {}
            Ok(text) => {
                return Err(LogError::Corrupt {
                    path: format_path,
                    position: 0,
                    reason: format!("unknown data directory format {:?}; expected {:?}", text.trim(), FORMAT.trim()),
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::write(&format_path, FORMAT).map_err(LogError::io("write", &format_path))?;
            }
            Err(e) => return Err(LogError::Io { operation: "read", path: format_path, source: e }),
        }
        Ok(EmbeddedLog { root, topics: Mutex::default(), watcher: Mutex::default(), flusher: Flusher::start() })
    }

    fn topic_dir(&self, name: &str) -> PathBuf {
        self.root.join("topics").join(name)
    }

    /// The open topic `name`, opening it (and its partitions) on first use; re-opened if
    /// another process deleted and re-created it.
    fn topic(&self, name: &str) -> Result<Arc<OpenTopic>, LogError> {
        validate_topic_name(name).map_err(|_| LogError::UnknownTopic(name.to_owned()))?;
        let dir = self.topic_dir(name);
        let inode = match std::fs::metadata(&dir) {
            Ok(m) => m.ino(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.lock_topics().remove(name);
                return Err(LogError::UnknownTopic(name.to_owned()));
            }
            Err(e) => return Err(LogError::Io { operation: "stat topic", path: dir, source: e }),
        };
        if let Some(open) = self.lock_topics().get(name).filter(|t| t.inode == inode) {
            return Ok(Arc::clone(open));
        }
        let meta = read_meta(&dir, name)?;
        let config = TopicConfig::from_map(&meta.configs)?;
        let partitions = (0..meta.partitions)
            .map(|p| {
                let partition =
                    Partition::open(name, p, dir.join(p.to_string()), config.clone(), self.flusher.handle());
                partition.map(Arc::new)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let open = Arc::new(OpenTopic { inode, meta, partitions });
        self.lock_topics().insert(name.to_owned(), Arc::clone(&open));
        Ok(open)
    }

    fn partition(&self, topic: &str, partition: u32) -> Result<Arc<Partition>, LogError> {
        let open = self.topic(topic)?;
        open.partitions.get(partition as usize).cloned().ok_or_else(|| LogError::UnknownPartition {
            topic: topic.to_owned(),
            partition,
            partition_count: open.meta.partitions,
        })
    }

    fn lock_topics(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<OpenTopic>>> {
        self.topics.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers `partition` with the file watcher (starting it on first use).
    fn watch(&self, partition: &Arc<Partition>) -> bool {
        let mut watcher = self.watcher.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match watcher.get_or_insert_with(Watcher::start) {
            Some(w) => {
                w.watch(partition);
                true
            }
            None => false,
        }
    }

    /// Applies retention to every topic now; returns the number of segments deleted. Also
    /// done whenever a segment is rolled and when a partition is opened.
    pub fn enforce_retention(&self) -> Result<usize, LogError> {
        let mut deleted = 0;
        for name in self.list_topic_names()? {
            let topic = match self.topic(&name) {
                Ok(topic) => topic,
                Err(LogError::UnknownTopic(_)) => continue,
                Err(e) => return Err(e),
            };
            for partition in &topic.partitions {
                deleted += partition.enforce_retention(SystemTime::now())?;
            }
        }
        Ok(deleted)
    }

    /// Number of segment files of a partition (for tests and `describe`).
    pub fn segment_count(&self, topic: &str, partition: u32) -> Result<usize, LogError> {
        Ok(self.partition(topic, partition)?.segment_count())
    }

    fn list_topic_names(&self) -> Result<Vec<String>, LogError> {
        let dir = self.root.join("topics");
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(LogError::io("list topics", &dir))? {
            let entry = entry.map_err(LogError::io("list topics", &dir))?;
            if let Some(name) = entry.file_name().to_str()
                && validate_topic_name(name).is_ok()
                && entry.path().join("topic.json").exists()
            {
                names.push(name.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    /// A fresh directory under `staging/`.
    fn staging_dir(&self, purpose: &str, name: &str) -> PathBuf {
        let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        self.root.join("staging").join(format!("{purpose}-{name}-{}-{nanos}", std::process::id()))
    }

    fn create_topic_sync(&self, name: &str, spec: &TopicSpec) -> Result<(), LogError> {
        validate_topic_name(name)?;
        if spec.partitions == 0 || spec.partitions > MAX_PARTITIONS {
            return Err(LogError::InvalidConfig(format!(
                "a topic has 1 to {MAX_PARTITIONS} partitions, not {}",
                spec.partitions
            )));
        }
        if spec.replication_factor == 0 {
            return Err(LogError::InvalidConfig("the replication factor must be at least 1".into()));
        }
        TopicConfig::from_map(&spec.configs)?;
        let target = self.topic_dir(name);
        if target.join("topic.json").exists() {
            return Err(LogError::TopicExists(name.to_owned()));
        }
        let staging = self.staging_dir("create", name);
        let result = (|| {
            std::fs::create_dir_all(&staging).map_err(LogError::io("create topic", &staging))?;
            let meta = TopicMeta {
                partitions: spec.partitions,
                replication_factor: spec.replication_factor,
                configs: spec.configs.clone(),
            };
            for p in 0..spec.partitions {
                Partition::create_dir(&staging.join(p.to_string()))?;
            }
            let meta_path = staging.join("topic.json");
            let json = serde_json::to_vec_pretty(&meta).map_err(|e| LogError::InvalidConfig(e.to_string()))?;
            std::fs::write(&meta_path, json).map_err(LogError::io("write", &meta_path))?;
            std::fs::rename(&staging, &target).map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists | std::io::ErrorKind::DirectoryNotEmpty => {
                    LogError::TopicExists(name.to_owned())
                }
                _ => LogError::Io { operation: "create topic", path: target.clone(), source: e },
            })
        })();
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&staging);
        }
        result
    }

    fn delete_topic_sync(&self, name: &str) -> Result<(), LogError> {
        validate_topic_name(name).map_err(|_| LogError::UnknownTopic(name.to_owned()))?;
        let dir = self.topic_dir(name);
        let doomed = self.staging_dir("delete", name);
        std::fs::rename(&dir, &doomed).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => LogError::UnknownTopic(name.to_owned()),
            _ => LogError::Io { operation: "delete topic", path: dir.clone(), source: e },
        })?;
        if let Some(topic) = self.lock_topics().remove(name) {
            for partition in &topic.partitions {
                partition.notify_changed();
            }
        }
        std::fs::remove_dir_all(&doomed).map_err(LogError::io("delete topic", &doomed))
    }
}

fn read_meta(dir: &Path, name: &str) -> Result<TopicMeta, LogError> {
    let path = dir.join("topic.json");
    let bytes = std::fs::read(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => LogError::UnknownTopic(name.to_owned()),
        _ => LogError::Io { operation: "read", path: path.clone(), source: e },
    })?;
    let meta: TopicMeta = serde_json::from_slice(&bytes).map_err(|e| LogError::Corrupt {
        path: path.clone(),
        position: 0,
        reason: e.to_string(),
    })?;
    if meta.partitions == 0 || meta.partitions > MAX_PARTITIONS {
        return Err(LogError::Corrupt {
            path,
            position: 0,
            reason: format!("{} partitions; a topic has 1 to {MAX_PARTITIONS}", meta.partitions),
        });
    }
    Ok(meta)
}

#[async_trait]
impl Log for EmbeddedLog {
    async fn create_topic(&self, name: &str, spec: &TopicSpec) -> Result<(), LogError> {
        self.create_topic_sync(name, spec)
    }

    async fn delete_topic(&self, name: &str) -> Result<(), LogError> {
        self.delete_topic_sync(name)
    }

    async fn list_topics(&self) -> Result<Vec<String>, LogError> {
        self.list_topic_names()
    }

    async fn describe_topic(&self, name: &str) -> Result<TopicDescription, LogError> {
        let topic = self.topic(name)?;
        let partitions = topic
            .partitions
            .iter()
            .map(|p| {
                Ok(PartitionDescription {
                    partition: p.id(),
                    earliest_offset: p.earliest_offset()?,
                    latest_offset: p.latest_offset()?,
                    size_bytes: Some(p.size_bytes()?),
                })
            })
            .collect::<Result<Vec<_>, LogError>>()?;
        Ok(TopicDescription {
            name: name.to_owned(),
            replication_factor: topic.meta.replication_factor,
            partitions,
            configs: TopicConfig::effective(&topic.meta.configs),
        })
    }

    async fn partition_count(&self, name: &str) -> Result<u32, LogError> {
        Ok(self.topic(name)?.meta.partitions)
    }

    async fn truncate(&self, topic: &str, partition: u32, offset: u64) -> Result<(), LogError> {
        self.partition(topic, partition)?.truncate(offset)
    }

    fn can_truncate(&self) -> bool {
        true
    }

    fn checkpoint_dir(&self) -> Option<PathBuf> {
        Some(self.root.join("checkpoints"))
    }

    async fn append(&self, topic: &str, partition: u32, records: &[NewRecord]) -> Result<u64, LogError> {
        self.partition(topic, partition)?.append(records)
    }

    async fn read(&self, topic: &str, partition: u32, offset: u64, max_bytes: usize) -> Result<Fetch, LogError> {
        self.partition(topic, partition)?.read(offset, max_bytes)
    }

    async fn earliest_offset(&self, topic: &str, partition: u32) -> Result<u64, LogError> {
        self.partition(topic, partition)?.earliest_offset()
    }

    async fn latest_offset(&self, topic: &str, partition: u32) -> Result<u64, LogError> {
        self.partition(topic, partition)?.latest_offset()
    }

    async fn offset_for_timestamp(
        &self,
        topic: &str,
        partition: u32,
        timestamp_ms: i64,
    ) -> Result<Option<u64>, LogError> {
        self.partition(topic, partition)?.offset_for_timestamp(timestamp_ms)
    }

    /// One process per query among those sharing the data directory (`claims/`).
    fn coordinator(&self) -> Arc<dyn super::coordinator::Coordinator> {
        Arc::new(super::coordinator::FileClaims::new(self.root.join("claims")))
    }

    async fn wait_for_data(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        timeout: Duration,
    ) -> Result<bool, LogError> {
        let deadline = Instant::now() + timeout;
        let p = self.partition(topic, partition)?;
        let recheck = if self.watch(&p) { RECHECK_WATCHED } else { RECHECK_UNWATCHED };
        let mut changed = p.subscribe();
        loop {
            changed.borrow_and_update();
            // Re-resolving catches a topic deleted meanwhile.
            if self.partition(topic, partition)?.latest_offset()? > offset {
                return Ok(true);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            let _ = tokio::time::timeout((deadline - now).min(recheck), changed.changed()).await;
        }
    }
}
