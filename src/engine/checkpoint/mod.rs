//! Checkpoints of persistent queries: everything a query needs to go on after a crash as if
//! it had not stopped, taken together at one point of its input.
//!
//! The source task sends a barrier after a round of input (about once a second, see
//! [`super::query`]); the operator task snapshots every operator's state when the barrier
//! reaches it, having processed all input before it; the sink flushes all output before it,
//! notes where each output partition ends, and writes one file holding the source positions,
//! the sink positions and the operators' states. The file is written aside, synced, and
//! renamed into place, so a checkpoint is whole or absent; the two newest are kept.
//!
//! A checkpoint file: `EDDYCKP1`, a length-prefixed JSON header ([`Header`]), each
//! operator's state batches as length-prefixed Arrow IPC streams, and a CRC-32C of all of it.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use serde::{Deserialize, Serialize};

use std::time::Duration;

use super::offsets::Positions;
use crate::log::{Fetch, Log, LogError, NewRecord, TopicDescription, TopicSpec};

mod topic;
pub use topic::TopicStore;

const MAGIC: &[u8; 8] = b"EDDYCKP1";
/// Checkpoints kept per query: the newest, and the one before in case the newest is damaged.
const KEEP: usize = 2;

/// A query's state at one barrier.
#[derive(Debug, Clone, Default)]
pub struct Checkpoint {
    /// Counts up from 0 (the checkpoint taken when the query first starts).
    pub epoch: u64,
    /// Per input stream (see `follower::stream_id`), the next offset to read.
    pub sources: Positions,
    /// Per output partition, where the output ended: what lies beyond was written after
    /// the checkpoint and is cut off before the query resumes from it.
    pub sink: Positions,
    /// Per operator of the chain, its state (`None`: it keeps none).
    pub operators: Vec<Option<Vec<RecordBatch>>>,
    /// The query was its output's only writer when this was taken: output past `sink` is
    /// its own, and may be cut off.
    pub exactly_once: bool,
}

/// What the JSON part of a file holds.
#[derive(Debug, Serialize, Deserialize)]
struct Header {
    epoch: u64,
    sources: Positions,
    sink: Positions,
    /// Per operator, how many state batches follow (`None`: it keeps none).
    operators: Vec<Option<usize>>,
    #[serde(default)]
    exactly_once: bool,
}

/// Where a query's checkpoints are kept: files in a directory of the log's (the embedded
/// log's data directory), or records of the `_eddy_checkpoints` topic (a log without a
/// directory: Kafka).
#[derive(Debug, Clone)]
pub enum CheckpointStore {
    Files(FileStore),
    Topic(TopicStore),
}

impl CheckpointStore {
    /// The checkpoints of `query_id` in files under `root`.
    pub fn new(root: &Path, query_id: &str) -> Self {
        CheckpointStore::Files(FileStore::new(root, query_id))
    }

    /// The checkpoints of `query_id` where `log` keeps them: its checkpoint directory, else
    /// its `_eddy_checkpoints` topic.
    pub fn for_log(log: &std::sync::Arc<dyn Log>, query_id: &str) -> Self {
        match log.checkpoint_dir() {
            Some(root) => CheckpointStore::new(&root, query_id),
            None => CheckpointStore::Topic(TopicStore { log: std::sync::Arc::clone(log), query: query_id.to_owned() }),
        }
    }

    /// Whether the query has no checkpoint at all.
    pub async fn is_empty(&self) -> Result<bool, LogError> {
        match self {
            CheckpointStore::Files(files) => {
                let files = files.clone();
                blocking(move || files.is_empty()).await
            }
            CheckpointStore::Topic(topic) => Ok(topic.scan().await?.commits.is_empty()),
        }
    }

    /// The newest checkpoint that reads back whole, if any (see [`FileStore::latest`]).
    pub async fn latest(&self) -> Result<Option<Checkpoint>, LogError> {
        match self {
            CheckpointStore::Files(files) => {
                let files = files.clone();
                blocking(move || files.latest()).await
            }
            CheckpointStore::Topic(topic) => topic.latest().await,
        }
    }

    /// Writes `checkpoint` durably; returns its size in bytes.
    pub async fn write(&self, checkpoint: Checkpoint) -> Result<u64, LogError> {
        match self {
            CheckpointStore::Files(files) => {
                let files = files.clone();
                blocking(move || files.write(&checkpoint)).await
            }
            CheckpointStore::Topic(topic) => topic.write(&checkpoint, || true).await,
        }
    }

    /// Deletes every checkpoint of the query (it was terminated).
    pub async fn delete_all(&self) -> Result<(), LogError> {
        match self {
            CheckpointStore::Files(files) => {
                let files = files.clone();
                blocking(move || files.delete_all()).await
            }
            CheckpointStore::Topic(topic) => topic.delete_all().await,
        }
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, LogError> + Send + 'static,
) -> Result<T, LogError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| LogError::Broker(format!("checkpoint task stopped: {e}")))?
}

/// The checkpoints of one query, in a directory of their own.
#[derive(Debug, Clone)]
pub struct FileStore {
    dir: PathBuf,
}

impl FileStore {
    /// The checkpoints of `query_id` under `root`.
    pub fn new(root: &Path, query_id: &str) -> Self {
        FileStore { dir: root.join(query_id) }
    }

    fn path(&self, epoch: u64) -> PathBuf {
        self.dir.join(format!("{epoch:020}.ckpt"))
    }

    /// Epochs of the checkpoints on disk, oldest first.
    fn epochs(&self) -> Result<Vec<u64>, LogError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(LogError::Io { operation: "list checkpoints", path: self.dir.clone(), source: e }),
        };
        let mut epochs = Vec::new();
        for entry in entries {
            let entry = entry.map_err(LogError::io("list checkpoints", &self.dir))?;
            let name = entry.file_name();
            if let Some(epoch) = name.to_str().and_then(|n| n.strip_suffix(".ckpt")).and_then(|n| n.parse().ok()) {
                epochs.push(epoch);
            }
        }
        epochs.sort_unstable();
        Ok(epochs)
    }

    /// Whether the query has no checkpoint at all.
    pub fn is_empty(&self) -> Result<bool, LogError> {
        Ok(self.epochs()?.is_empty())
    }

    /// The newest checkpoint that reads back whole (a damaged one is skipped, with a
    /// warning, for the one before), if any.
    /// Fails when there are checkpoints but none reads back: starting over would write the
    /// output again.
    pub fn latest(&self) -> Result<Option<Checkpoint>, LogError> {
        let epochs = self.epochs()?;
        for epoch in epochs.iter().rev() {
            let path = self.path(*epoch);
            let bytes = std::fs::read(&path).map_err(LogError::io("read checkpoint", &path))?;
            match decode(&bytes) {
                Ok(checkpoint) => return Ok(Some(checkpoint)),
                Err(reason) => tracing::warn!(checkpoint = %path.display(), %reason, "skipping a damaged checkpoint"),
            }
        }
        match epochs.last() {
            None => Ok(None),
            Some(epoch) => Err(LogError::Corrupt {
                path: self.path(*epoch),
                position: 0,
                reason: "every checkpoint of the query is damaged; it cannot resume (move the directory aside to start it over)".into(),
            }),
        }
    }

    /// Writes `checkpoint` durably (aside, synced, renamed), then deletes all but the newest
    /// [`KEEP`]. Returns the file's size.
    pub fn write(&self, checkpoint: &Checkpoint) -> Result<u64, LogError> {
        self.write_guarded(checkpoint, &std::sync::Mutex::new(true))
    }

    /// As [`CheckpointStore::write`], renaming the file into place only while `alive` (held
    /// meanwhile) says the query still runs: a query dropped without stopping (a crash, as
    /// far as it knows) publishes nothing after it was dropped, as a killed process would.
    pub fn write_guarded(&self, checkpoint: &Checkpoint, alive: &std::sync::Mutex<bool>) -> Result<u64, LogError> {
        std::fs::create_dir_all(&self.dir).map_err(LogError::io("create checkpoint directory", &self.dir))?;
        let bytes = encode(checkpoint).map_err(|reason| LogError::Corrupt {
            path: self.dir.clone(),
            position: 0,
            reason: format!("cannot encode checkpoint {}: {reason}", checkpoint.epoch),
        })?;
        let path = self.path(checkpoint.epoch);
        // A name of its own: a dropped query's write may still be finishing (the thread it
        // runs on cannot be stopped) while the query, restarted, writes the same epoch.
        static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let write = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = self.dir.join(format!("{:020}.{}-{write}.ckpt.tmp", checkpoint.epoch, std::process::id()));
        let mut file = File::create(&tmp).map_err(LogError::io("write checkpoint", &tmp))?;
        file.write_all(&bytes).and_then(|()| file.sync_all()).map_err(LogError::io("write checkpoint", &tmp))?;
        {
            let alive = alive.lock().unwrap_or_else(|p| p.into_inner());
            if !*alive {
                let _ = std::fs::remove_file(&tmp);
                return Err(LogError::Unsupported("checkpointing a query that was dropped"));
            }
            std::fs::rename(&tmp, &path).map_err(LogError::io("rename checkpoint", &path))?;
        }
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(LogError::io("sync checkpoint directory", &self.dir))?;
        let epochs = self.epochs()?;
        // Older than the newest kept: and any file a crash left half-written (of an earlier
        // epoch: one of this epoch may be a restarted query's, being written).
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let unfinished_epoch = name
                    .to_str()
                    .filter(|n| n.ends_with(".ckpt.tmp"))
                    .and_then(|n| n.split('.').next())
                    .and_then(|epoch| epoch.parse::<u64>().ok());
                if unfinished_epoch.is_some_and(|epoch| epoch < checkpoint.epoch) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        for old in &epochs[..epochs.len().saturating_sub(KEEP)] {
            let old = self.path(*old);
            if let Err(e) = std::fs::remove_file(&old) {
                tracing::warn!(checkpoint = %old.display(), %e, "cannot delete an old checkpoint");
            }
        }
        Ok(bytes.len() as u64)
    }

    /// Deletes every checkpoint of the query (it was terminated).
    pub fn delete_all(&self) -> Result<(), LogError> {
        match std::fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(LogError::Io { operation: "delete checkpoints", path: self.dir.clone(), source: e })
            }
            _ => Ok(()),
        }
    }
}

fn encode(checkpoint: &Checkpoint) -> Result<Vec<u8>, String> {
    let header = Header {
        epoch: checkpoint.epoch,
        sources: checkpoint.sources.clone(),
        sink: checkpoint.sink.clone(),
        operators: checkpoint.operators.iter().map(|o| o.as_ref().map(Vec::len)).collect(),
        exactly_once: checkpoint.exactly_once,
    };
    let json = serde_json::to_vec(&header).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(64 + json.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    for batch in checkpoint.operators.iter().flatten().flatten() {
        let mut ipc = Vec::new();
        {
            let mut writer = StreamWriter::try_new(&mut ipc, &batch.schema()).map_err(|e| e.to_string())?;
            writer.write(batch).map_err(|e| e.to_string())?;
            writer.finish().map_err(|e| e.to_string())?;
        }
        out.extend_from_slice(&(ipc.len() as u64).to_le_bytes());
        out.extend_from_slice(&ipc);
    }
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

fn decode(bytes: &[u8]) -> Result<Checkpoint, String> {
    let Some((body, crc)) = bytes.split_last_chunk::<4>() else { return Err("too short".into()) };
    if crc32c::crc32c(body) != u32::from_le_bytes(*crc) {
        return Err("checksum mismatch".into());
    }
    let mut rest = body.strip_prefix(MAGIC.as_slice()).ok_or("not a checkpoint file")?;
    let take = |rest: &mut &[u8]| -> Result<Vec<u8>, String> {
        let (len, tail) = rest.split_first_chunk::<8>().ok_or("truncated")?;
        let len = usize::try_from(u64::from_le_bytes(*len)).map_err(|e| e.to_string())?;
        if tail.len() < len {
            return Err("truncated".into());
        }
        let (part, tail) = tail.split_at(len);
        *rest = tail;
        Ok(part.to_vec())
    };
    let header: Header = serde_json::from_slice(&take(&mut rest)?).map_err(|e| e.to_string())?;
    let mut operators = Vec::with_capacity(header.operators.len());
    for count in &header.operators {
        let Some(count) = count else {
            operators.push(None);
            continue;
        };
        let mut batches = Vec::with_capacity(*count);
        for _ in 0..*count {
            let ipc = take(&mut rest)?;
            let reader = StreamReader::try_new(std::io::Cursor::new(ipc), None).map_err(|e| e.to_string())?;
            for batch in reader {
                batches.push(batch.map_err(|e| e.to_string())?);
            }
        }
        operators.push(Some(batches));
    }
    if !rest.is_empty() {
        return Err("bytes left over".into());
    }
    Ok(Checkpoint {
        epoch: header.epoch,
        sources: header.sources,
        sink: header.sink,
        operators,
        exactly_once: header.exactly_once,
    })
}

/// Read-committed views of topics that queries write exactly once: a query reading another
/// query's output sees it only up to that query's last checkpoint, since what lies beyond
/// may be cut off and written again differently after a crash. Shared by the queries of a
/// session; a topic nobody fences reads to its end.
#[derive(Debug, Default)]
pub struct Fences {
    /// `(topic, partition) → (writer → stable end)`.
    stable: std::sync::Mutex<BTreeMap<(String, u32), BTreeMap<String, u64>>>,
    /// Writers that stopped with output past their fences.
    frozen: std::sync::Mutex<std::collections::BTreeSet<String>>,
    /// Bumped whenever a fence moves.
    moved: tokio::sync::Notify,
}

impl Fences {
    /// Where readers of `topic`'s `partition` stop: the least of its writers' fences.
    pub fn stable_end(&self, topic: &str, partition: u32) -> Option<u64> {
        let stable = self.stable.lock().unwrap_or_else(|p| p.into_inner());
        stable.get(&(topic.to_owned(), partition)).and_then(|writers| writers.values().min().copied())
    }

    /// Sets `writer`'s fence on a partition.
    pub fn set(&self, topic: &str, partition: u32, writer: &str, end: u64) {
        let mut stable = self.stable.lock().unwrap_or_else(|p| p.into_inner());
        stable.entry((topic.to_owned(), partition)).or_default().insert(writer.to_owned(), end);
        drop(stable);
        self.moved.notify_waiters();
    }

    /// Where a reader of `topic`'s `partition` that wants to be caught up must get to, the
    /// partition ending at `latest`: the end, unless a writer that stopped with output past
    /// its fence (it failed) holds the partition back; then that fence, as nothing beyond it
    /// will become visible before the writer runs again.
    pub fn caught_up_at(&self, topic: &str, partition: u32, latest: u64) -> u64 {
        let stable = self.stable.lock().unwrap_or_else(|p| p.into_inner());
        let frozen = self.frozen.lock().unwrap_or_else(|p| p.into_inner());
        stable
            .get(&(topic.to_owned(), partition))
            .into_iter()
            .flatten()
            .filter(|(writer, _)| frozen.contains(*writer))
            .map(|(_, end)| *end)
            .fold(latest, u64::min)
    }

    /// Marks `writer` stopped with output past its fences (it failed): its fences stay.
    pub fn freeze(&self, writer: &str) {
        self.frozen.lock().unwrap_or_else(|p| p.into_inner()).insert(writer.to_owned());
        self.moved.notify_waiters();
    }

    /// Lifts `writer`'s fences (it stopped with everything it wrote checkpointed).
    pub fn lift(&self, writer: &str) {
        let mut stable = self.stable.lock().unwrap_or_else(|p| p.into_inner());
        for writers in stable.values_mut() {
            writers.remove(writer);
        }
        stable.retain(|_, writers| !writers.is_empty());
        drop(stable);
        self.frozen.lock().unwrap_or_else(|p| p.into_inner()).remove(writer);
        self.moved.notify_waiters();
    }

    /// Resolves when some fence moves.
    pub fn moved(&self) -> tokio::sync::futures::Notified<'_> {
        self.moved.notified()
    }
}

/// A log read through [`Fences`]: records past a partition's fence are not there yet.
/// Everything but reading delegates.
pub struct ReadCommitted {
    pub log: std::sync::Arc<dyn Log>,
    pub fences: std::sync::Arc<Fences>,
}

#[async_trait::async_trait]
impl Log for ReadCommitted {
    async fn create_topic(&self, name: &str, spec: &TopicSpec) -> Result<(), LogError> {
        self.log.create_topic(name, spec).await
    }

    async fn delete_topic(&self, name: &str) -> Result<(), LogError> {
        self.log.delete_topic(name).await
    }

    async fn list_topics(&self) -> Result<Vec<String>, LogError> {
        self.log.list_topics().await
    }

    async fn describe_topic(&self, name: &str) -> Result<TopicDescription, LogError> {
        self.log.describe_topic(name).await
    }

    async fn partition_count(&self, name: &str) -> Result<u32, LogError> {
        self.log.partition_count(name).await
    }

    async fn append(&self, topic: &str, partition: u32, records: &[NewRecord]) -> Result<u64, LogError> {
        self.log.append(topic, partition, records).await
    }

    async fn read(&self, topic: &str, partition: u32, offset: u64, max_bytes: usize) -> Result<Fetch, LogError> {
        let stable = self.fences.stable_end(topic, partition);
        if stable.is_some_and(|end| offset >= end) {
            return Ok(Fetch { records: Vec::new(), high_watermark: offset });
        }
        let mut fetch = self.log.read(topic, partition, offset, max_bytes).await?;
        if let Some(end) = stable {
            fetch.records.retain(|r| r.offset < end);
            fetch.high_watermark = fetch.high_watermark.min(end);
        }
        Ok(fetch)
    }

    async fn earliest_offset(&self, topic: &str, partition: u32) -> Result<u64, LogError> {
        self.log.earliest_offset(topic, partition).await
    }

    async fn latest_offset(&self, topic: &str, partition: u32) -> Result<u64, LogError> {
        let latest = self.log.latest_offset(topic, partition).await?;
        Ok(self.fences.stable_end(topic, partition).map_or(latest, |end| latest.min(end)))
    }

    async fn offset_for_timestamp(
        &self,
        topic: &str,
        partition: u32,
        timestamp_ms: i64,
    ) -> Result<Option<u64>, LogError> {
        self.log.offset_for_timestamp(topic, partition, timestamp_ms).await
    }

    async fn wait_for_data(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        timeout: Duration,
    ) -> Result<bool, LogError> {
        let moved = self.fences.moved();
        tokio::pin!(moved);
        moved.as_mut().enable();
        match self.fences.stable_end(topic, partition) {
            Some(end) if offset >= end => {
                // The records may be there already: what holds them back is the fence.
                let _ = tokio::time::timeout(timeout, moved).await;
                Ok(self.fences.stable_end(topic, partition).is_none_or(|end| offset < end))
            }
            _ => self.log.wait_for_data(topic, partition, offset, timeout).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn batch(n: i64) -> RecordBatch {
        let schema =
            Arc::new(Schema::new(vec![Field::new("k", DataType::Utf8, false), Field::new("v", DataType::Int64, true)]));
        let keys: Vec<String> = (0..n).map(|i| format!("k{i}")).collect();
        RecordBatch::try_new(
            schema,
            vec![Arc::new(StringArray::from(keys)), Arc::new(Int64Array::from_iter_values(0..n))],
        )
        .unwrap()
    }

    #[test]
    fn checkpoints_read_back_and_only_the_newest_two_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path(), "CTAS_X_1");
        assert!(store.latest().unwrap().is_none());
        for epoch in 0..4 {
            let checkpoint = Checkpoint {
                epoch,
                sources: [(0, 10 * epoch), (1, 7)].into(),
                sink: [(0, 3 * epoch)].into(),
                operators: vec![None, Some(vec![batch(epoch as i64 + 1), batch(2)])],
                exactly_once: true,
            };
            store.write(&checkpoint).unwrap();
        }
        assert_eq!(store.epochs().unwrap(), [2, 3]);
        let latest = store.latest().unwrap().unwrap();
        assert_eq!((latest.epoch, latest.sources[&0], latest.sink[&0], latest.exactly_once), (3, 30, 9, true));
        let states = latest.operators[1].as_ref().unwrap();
        assert_eq!((latest.operators[0].is_none(), states.len()), (true, 2));
        assert_eq!(states[0], batch(4));
    }

    /// A query dropped (a crash) while writing a checkpoint, and restarted at once, writes
    /// the same epoch again: each write has its own file, and only files of earlier epochs
    /// are taken for a crash's leftovers (CI once hung on the restarted query's checkpoint,
    /// its file deleted under it by the dropped query's write).
    #[test]
    fn a_dropped_querys_unfinished_write_leaves_the_restarted_querys_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path(), "q");
        store.write(&Checkpoint { epoch: 0, ..Default::default() }).unwrap();
        let unfinished = |epoch: u64| store.dir.join(format!("{epoch:020}.1-1.ckpt.tmp"));
        // A crash's leftover of epoch 0, and epoch 1 being written by the restarted query.
        std::fs::write(unfinished(0), b"half").unwrap();
        std::fs::write(unfinished(1), b"being written").unwrap();
        // The dropped query's write of epoch 1 finishes: refused, and its own file removed.
        let dropped =
            store.write_guarded(&Checkpoint { epoch: 1, ..Default::default() }, &std::sync::Mutex::new(false));
        assert!(dropped.is_err());
        assert_eq!(store.latest().unwrap().unwrap().epoch, 0);
        assert!(unfinished(1).exists());
        store.write(&Checkpoint { epoch: 1, ..Default::default() }).unwrap();
        assert_eq!(store.latest().unwrap().unwrap().epoch, 1);
        assert!(!unfinished(0).exists() && unfinished(1).exists());
        let files = std::fs::read_dir(&store.dir).unwrap().count();
        assert_eq!(files, 3, "two checkpoints and the other writer's file");
    }

    #[test]
    fn a_damaged_newest_checkpoint_gives_way_to_the_one_before() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path(), "q");
        for epoch in 0..2 {
            store.write(&Checkpoint { epoch, ..Default::default() }).unwrap();
        }
        let newest = store.path(1);
        let mut bytes = std::fs::read(&newest).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        std::fs::write(&newest, &bytes).unwrap();
        assert_eq!(store.latest().unwrap().unwrap().epoch, 0);
        // With every one damaged, the query cannot resume.
        std::fs::write(store.path(0), &bytes).unwrap();
        assert!(store.latest().is_err());
    }

    #[test]
    fn readers_stop_at_the_least_fence_of_a_partitions_writers() {
        let fences = Fences::default();
        assert_eq!(fences.stable_end("t", 0), None);
        fences.set("t", 0, "a", 10);
        fences.set("t", 0, "b", 4);
        assert_eq!(fences.stable_end("t", 0), Some(4));
        fences.lift("b");
        assert_eq!(fences.stable_end("t", 0), Some(10));
        assert_eq!(fences.caught_up_at("t", 0, 12), 12);
        fences.freeze("a");
        assert_eq!(fences.caught_up_at("t", 0, 12), 10);
        fences.lift("a");
        assert_eq!(fences.stable_end("t", 0), None);
        assert_eq!(fences.caught_up_at("t", 0, 12), 12);
    }
}
