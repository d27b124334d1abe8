//! One partition of a topic: its segments, appends serialised across processes, reads, and
//! retention.
//!
//! # Sharing a partition between processes
//! Several processes may open one data directory. Appends take an exclusive `flock` on the
//! partition's `lock` file, then *refresh* (catch up with what other processes wrote), then
//! write, so offsets stay contiguous whoever appends. Every frame is written with a single
//! positioned write at the end of the valid data.
//!
//! A reader never takes the lock: it refreshes by scanning new bytes past what it knows. A
//! frame it sees half-written simply is not accepted yet. Only a holder of the lock (an
//! opener or an appender) may *repair*: with the lock held no write is in progress, so
//! anything after the last valid frame is a torn or corrupt tail, and is cut off.
//!
//! Within a process the state sits behind a mutex held only for bookkeeping and appends;
//! reads plan under it and do their I/O outside it.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;

use super::flusher::FlushHandle;
use super::frame::{self, FrameHeader};
use super::segment::{ReadPlan, ScanTail, Segment, index_path};
use crate::log::config::{CleanupPolicy, TopicConfig};
use crate::log::error::LogError;
use crate::log::record::{Fetch, NewRecord, Record};

/// Frames are cut at about this size, so one read serves a bounded amount of data.
const FRAME_TARGET_BYTES: usize = 1024 * 1024;

pub struct Partition {
    topic: String,
    id: u32,
    dir: PathBuf,
    config: TopicConfig,
    /// `flock`ed by appends and repairs; shared by every process using the directory.
    lock_file: File,
    /// Where sealed segments go to be fsynced and indexed.
    flusher: FlushHandle,
    state: Mutex<PartitionState>,
    /// Bumped whenever this partition may have new data; waiters watch it.
    changed: watch::Sender<u64>,
}

struct PartitionState {
    /// Sorted by base offset; never empty; the last is the active segment.
    segments: Vec<Segment>,
    /// The directory's modification time when the segment list was last read: segments
    /// are created and deleted by other processes too, and either changes it.
    dir_modified: Option<SystemTime>,
    encode_buffer: Vec<u8>,
    unflushed_records: u64,
    last_flush: Instant,
}

/// Holds the partition's cross-process write lock until dropped.
struct WriteLock<'a>(&'a File);

impl<'a> WriteLock<'a> {
    fn acquire(file: &'a File, dir: &Path) -> Result<Self, LogError> {
        file.lock().map_err(LogError::io("lock partition", dir))?;
        Ok(WriteLock(file))
    }
}

impl Drop for WriteLock<'_> {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

impl Partition {
    /// Creates the directory of a new partition with its first, empty segment.
    pub fn create_dir(dir: &Path) -> Result<(), LogError> {
        std::fs::create_dir_all(dir).map_err(LogError::io("create partition", dir))?;
        Segment::create(dir, 0)?;
        Ok(())
    }

    /// Opens a partition: loads sealed segments from their index files, scans the active one
    /// and cuts a torn or corrupt tail, applies retention. Takes the write lock meanwhile.
    pub fn open(
        topic: &str,
        id: u32,
        dir: PathBuf,
        config: TopicConfig,
        flusher: FlushHandle,
    ) -> Result<Partition, LogError> {
        let lock_path = dir.join("lock");
        let lock_file =
            File::options().create(true).truncate(false).write(true).open(&lock_path).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => LogError::UnknownTopic(topic.to_owned()),
                _ => LogError::Io { operation: "open partition lock", path: lock_path.clone(), source: e },
            })?;
        let partition = Partition {
            topic: topic.to_owned(),
            id,
            dir,
            config,
            lock_file,
            flusher,
            state: Mutex::new(PartitionState {
                segments: Vec::new(),
                dir_modified: None,
                encode_buffer: Vec::new(),
                unflushed_records: 0,
                last_flush: Instant::now(),
            }),
            changed: watch::Sender::new(0),
        };
        {
            let mut state = partition.lock_state();
            let _lock = partition.write_lock()?;
            partition.reload_segments(&mut state, true)?;
            partition.enforce_retention_locked(&mut state, SystemTime::now())?;
        }
        Ok(partition)
    }

    fn write_lock(&self) -> Result<WriteLock<'_>, LogError> {
        WriteLock::acquire(&self.lock_file, &self.dir)
    }

    pub fn id(&self) -> u32 {
        self.id
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A receiver that changes whenever this process learns of new data in the partition.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Tells waiters that the partition may have changed (called by the file watcher).
    pub fn notify_changed(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn lock_state(&self) -> MutexGuard<'_, PartitionState> {
        // A panic while holding the lock cannot leave the state inconsistent on disk (the
        // files are the truth and are rescanned), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Appends records in order; returns the offset of the first. All or none are checked
    /// against `max.message.bytes` before anything is written.
    pub fn append(&self, records: &[NewRecord]) -> Result<u64, LogError> {
        for record in records {
            let size = frame::encoded_record_bytes(record);
            if size as u64 > self.config.max_message_bytes {
                return Err(LogError::RecordTooLarge {
                    topic: self.topic.clone(),
                    size,
                    max: self.config.max_message_bytes,
                });
            }
        }
        let mut guard = self.lock_state();
        let state = &mut *guard;
        let lock = self.write_lock()?;
        self.refresh(state, true)?;
        let first_offset = active(state)?.next_offset;
        if records.is_empty() {
            return Ok(first_offset);
        }

        // Encode every frame first, then write runs of frames, rolling between them.
        let mut buffer = std::mem::take(&mut state.encode_buffer);
        buffer.clear();
        let mut frames: Vec<FrameHeader> = Vec::new();
        let mut next_offset = first_offset;
        for chunk in frame_chunks(records) {
            let start = buffer.len();
            frame::encode_frame(&mut buffer, next_offset, chunk);
            let header = frame::check_frame(&buffer[start..]).map_err(|e| LogError::Corrupt {
                path: self.dir.clone(),
                position: 0,
                reason: format!("frame encoded in memory does not check: {e:?} (this is a bug)"),
            })?;
            next_offset = header.next_offset();
            frames.push(header);
        }
        let result = self.write_frames(state, &buffer, &frames);
        state.encode_buffer = buffer;
        result?;

        state.unflushed_records += records.len() as u64;
        self.flush_if_due(state)?;
        drop(lock);
        drop(guard);
        self.notify_changed();
        Ok(first_offset)
    }

    fn write_frames(&self, state: &mut PartitionState, buffer: &[u8], frames: &[FrameHeader]) -> Result<(), LogError> {
        let mut start = 0usize;
        let mut i = 0usize;
        while i < frames.len() {
            self.roll_if_needed(state, frames[i].frame_bytes as u64)?;
            let room = self.config.segment_bytes.saturating_sub(active(state)?.valid_bytes);
            // Take as many frames as fit in the active segment (at least one).
            let mut end = i;
            let mut bytes = 0u64;
            while end < frames.len() && (end == i || bytes + frames[end].frame_bytes as u64 <= room) {
                bytes += frames[end].frame_bytes as u64;
                end += 1;
            }
            let len = bytes as usize;
            active_mut(state)?.write_frames(&buffer[start..start + len], &frames[i..end])?;
            start += len;
            i = end;
        }
        Ok(())
    }

    /// Seals the active segment and starts a new one when the next frame would overflow it
    /// or it is older than `segment.ms`.
    fn roll_if_needed(&self, state: &mut PartitionState, incoming_bytes: u64) -> Result<(), LogError> {
        let segment = active(state)?;
        if segment.valid_bytes == 0 {
            return Ok(());
        }
        let too_big = segment.valid_bytes + incoming_bytes > self.config.segment_bytes;
        let age_ms = SystemTime::now().duration_since(segment.created).unwrap_or_default().as_millis();
        let too_old = age_ms >= self.config.segment_ms as u128;
        if !(too_big || too_old) {
            return Ok(());
        }
        self.flusher.seal(segment.seal_request());
        let next = Segment::create(&self.dir, segment.next_offset)?;
        state.segments.push(next);
        sync_dir(&self.dir)?;
        state.dir_modified = dir_modified(&self.dir)?;
        self.enforce_retention_locked(state, SystemTime::now())?;
        Ok(())
    }

    fn flush_if_due(&self, state: &mut PartitionState) -> Result<(), LogError> {
        let by_count = self.config.flush_messages.is_some_and(|n| state.unflushed_records >= n);
        let by_time = self.config.flush_ms.is_some_and(|ms| state.last_flush.elapsed() >= Duration::from_millis(ms));
        if by_count || by_time {
            active(state)?.sync()?;
            state.unflushed_records = 0;
            state.last_flush = Instant::now();
        }
        Ok(())
    }

    /// Reads records from `offset` on, about `max_bytes` of them (at least one frame).
    pub fn read(&self, offset: u64, max_bytes: usize) -> Result<Fetch, LogError> {
        let (plan, high_watermark) = {
            let mut state = self.lock_state();
            if offset >= active(&state)?.next_offset {
                self.refresh(&mut state, false)?;
            }
            let high_watermark = active(&state)?.next_offset;
            let earliest = oldest(&state)?.base_offset;
            if offset < earliest || offset > high_watermark {
                return Err(LogError::OffsetOutOfRange {
                    topic: self.topic.clone(),
                    partition: self.id,
                    offset,
                    earliest,
                    latest: high_watermark,
                });
            }
            if offset == high_watermark {
                return Ok(Fetch { records: Vec::new(), high_watermark });
            }
            let segment = segment_holding(&state.segments, offset);
            (segment.plan_read(offset), high_watermark)
        };
        let mut records = Vec::new();
        plan.read(offset, max_bytes, &mut records)?;
        Ok(Fetch { records, high_watermark })
    }

    pub fn earliest_offset(&self) -> Result<u64, LogError> {
        let mut state = self.lock_state();
        self.refresh(&mut state, false)?;
        Ok(oldest(&state)?.base_offset)
    }

    pub fn latest_offset(&self) -> Result<u64, LogError> {
        let mut state = self.lock_state();
        self.refresh(&mut state, false)?;
        Ok(active(&state)?.next_offset)
    }

    /// Bytes of valid data across the partition's segments.
    pub fn size_bytes(&self) -> Result<u64, LogError> {
        let mut state = self.lock_state();
        self.refresh(&mut state, false)?;
        Ok(state.segments.iter().map(|s| s.valid_bytes).sum())
    }

    pub fn segment_count(&self) -> usize {
        self.lock_state().segments.len()
    }

    /// The first offset whose record has a timestamp of at least `timestamp_ms` (Kafka's
    /// `offsetsForTimes`), or `None` when every record is older.
    pub fn offset_for_timestamp(&self, timestamp_ms: i64) -> Result<Option<u64>, LogError> {
        let plans: Vec<ReadPlan> = {
            let mut state = self.lock_state();
            self.refresh(&mut state, false)?;
            state
                .segments
                .iter()
                .filter(|s| s.max_timestamp_ms >= timestamp_ms)
                .map(|s| s.plan_time_lookup(timestamp_ms))
                .collect()
        };
        for plan in plans {
            let found = plan.find(|bytes, header| {
                if header.max_timestamp_ms < timestamp_ms {
                    return Ok(None);
                }
                let mut records: Vec<Record> = Vec::new();
                frame::decode_records(bytes, header, 0, &mut records).map_err(|e| LogError::Corrupt {
                    path: self.dir.clone(),
                    position: 0,
                    reason: format!("{e:?}"),
                })?;
                Ok(records.iter().find(|r| r.timestamp_ms >= timestamp_ms).map(|r| r.offset))
            })?;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// Deletes closed segments past `retention.ms` / `retention.bytes`; returns how many.
    pub fn enforce_retention(&self, now: SystemTime) -> Result<usize, LogError> {
        let mut state = self.lock_state();
        let _lock = self.write_lock()?;
        self.refresh(&mut state, true)?;
        self.enforce_retention_locked(&mut state, now)
    }

    fn enforce_retention_locked(&self, state: &mut PartitionState, now: SystemTime) -> Result<usize, LogError> {
        if self.config.cleanup_policy == CleanupPolicy::Compact {
            return Ok(0);
        }
        let mut deleted = 0;
        while state.segments.len() > 1 {
            let oldest = &state.segments[0];
            let expired = match self.config.retention_ms {
                Some(ms) => {
                    let age = now.duration_since(oldest.last_modified()?).unwrap_or_default();
                    age >= Duration::from_millis(ms as u64)
                }
                None => false,
            };
            let oversized = match self.config.retention_bytes {
                Some(max) => {
                    let total: u64 = state.segments.iter().map(|s| s.valid_bytes).sum();
                    total - oldest.valid_bytes >= max
                }
                None => false,
            };
            if !(expired || oversized) {
                break;
            }
            let segment = state.segments.remove(0);
            tracing::info!(
                topic = %self.topic,
                partition = self.id,
                base_offset = segment.base_offset,
                next_offset = segment.next_offset,
                reason = if expired { "retention.ms" } else { "retention.bytes" },
                "deleting segment"
            );
            remove_if_exists(&segment.path)?;
            remove_if_exists(&index_path(&segment.path))?;
            deleted += 1;
        }
        if deleted > 0 {
            state.dir_modified = dir_modified(&self.dir)?;
        }
        Ok(deleted)
    }

    /// Catches up with what other processes did: segments created or deleted (seen by the
    /// directory's modification time) and frames appended to the active segment. With
    /// `repair` the caller holds the write lock.
    fn refresh(&self, state: &mut PartitionState, repair: bool) -> Result<(), LogError> {
        let modified = dir_modified(&self.dir).map_err(|e| match e {
            LogError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                LogError::UnknownTopic(self.topic.clone())
            }
            other => other,
        })?;
        if modified != state.dir_modified {
            return self.reload_segments(state, repair);
        }
        let segment = active_mut(state)?;
        let len = segment.file_len()?;
        if len < segment.valid_bytes {
            // Cut back by another process (recovery takes back output written after a
            // checkpoint): what is known of it no longer holds.
            segment.rescan()?;
        }
        if repair || len != segment.valid_bytes {
            segment.scan(repair)?;
        }
        Ok(())
    }

    /// Re-reads the segment list, keeping what is already known of surviving segments.
    fn reload_segments(&self, state: &mut PartitionState, repair: bool) -> Result<(), LogError> {
        // Read before listing, so a change made meanwhile triggers another reload; recorded
        // only once the reload succeeded, so a failed one is retried.
        let modified = dir_modified(&self.dir)?;
        let mut listed = list_segments(&self.dir, repair)?;
        if listed.is_empty() {
            if !repair {
                return Err(no_segments());
            }
            // Only a damaged directory gets here (creation makes segment 0 first).
            let base = state.segments.last().map_or(0, |s| s.next_offset);
            let segment = Segment::create(&self.dir, base)?;
            listed.push((base, segment.path.clone()));
        }
        state.segments.retain(|s| listed.iter().any(|(base, _)| *base == s.base_offset));
        let last = listed.len() - 1;
        for (i, (base_offset, path)) in listed.into_iter().enumerate() {
            let is_active = i == last;
            let known = state.segments.iter().position(|s| s.base_offset == base_offset);
            let k = match known {
                Some(k) => k,
                None => {
                    let mut segment = Segment::open(path, base_offset)?;
                    let indexed = !is_active && segment.load_index()?;
                    let k = state.segments.partition_point(|s| s.base_offset < base_offset);
                    state.segments.insert(k, segment);
                    if indexed {
                        continue;
                    }
                    k
                }
            };
            // A segment we knew as active may have grown, and been sealed, since (or been
            // cut back).
            let segment = &mut state.segments[k];
            if segment.file_len()? < segment.valid_bytes {
                segment.rescan()?;
            }
            let tail = segment.scan(repair)?;
            if !is_active && tail != ScanTail::Clean {
                tracing::warn!(segment = %segment.path.display(), ?tail, "sealed segment had an invalid tail");
            }
        }
        check_contiguous(&self.dir, &state.segments)?;
        state.dir_modified = modified;
        Ok(())
    }

    /// Cuts off every record at or after `offset`, which must be where a frame starts (or
    /// the log end, when nothing is cut). The segment holding `offset` becomes the active one
    /// (cut back, its index file removed); the segments after it are deleted.
    pub fn truncate(&self, offset: u64) -> Result<(), LogError> {
        let mut guard = self.lock_state();
        let state = &mut *guard;
        let _lock = self.write_lock()?;
        self.refresh(state, true)?;
        let end = active(state)?.next_offset;
        let earliest = oldest(state)?.base_offset;
        if offset == end {
            return Ok(());
        }
        if offset > end || offset < earliest {
            return Err(LogError::OffsetOutOfRange {
                topic: self.topic.clone(),
                partition: self.id,
                offset,
                earliest,
                latest: end,
            });
        }
        let keep = state.segments.partition_point(|s| s.base_offset <= offset).max(1);
        // Newest first: a crash part-way leaves the segments contiguous.
        for segment in state.segments.drain(keep..).rev() {
            remove_if_exists(&index_path(&segment.path))?;
            remove_if_exists(&segment.path)?;
            sync_dir(&self.dir)?;
        }
        let segment = active_mut(state)?;
        remove_if_exists(&index_path(&segment.path))?;
        segment.cut(offset)?;
        segment.sync()?;
        sync_dir(&self.dir)?;
        state.dir_modified = dir_modified(&self.dir)?;
        tracing::info!(topic = %self.topic, partition = self.id, offset, removed = end - offset, "cut the partition back");
        drop(guard);
        self.notify_changed();
        Ok(())
    }

    /// Flushes the active segment to disk (on graceful shutdown).
    pub fn sync(&self) -> Result<(), LogError> {
        let mut state = self.lock_state();
        if state.unflushed_records > 0 {
            active(&state)?.sync()?;
            state.unflushed_records = 0;
            state.last_flush = Instant::now();
        }
        Ok(())
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        if let Err(e) = self.sync() {
            tracing::warn!(error = %e, "could not flush partition on close");
        }
    }
}

fn oldest(state: &PartitionState) -> Result<&Segment, LogError> {
    state.segments.first().ok_or_else(no_segments)
}

fn active(state: &PartitionState) -> Result<&Segment, LogError> {
    state.segments.last().ok_or_else(no_segments)
}

fn active_mut(state: &mut PartitionState) -> Result<&mut Segment, LogError> {
    state.segments.last_mut().ok_or_else(no_segments)
}

/// Only a partition whose directory was emptied behind our back has no segment.
fn no_segments() -> LogError {
    LogError::Corrupt { path: PathBuf::new(), position: 0, reason: "partition has no segment files".into() }
}

/// The segment whose offsets include `offset` (which is below the log end).
fn segment_holding(segments: &[Segment], offset: u64) -> &Segment {
    let i = segments.partition_point(|s| s.base_offset <= offset).saturating_sub(1);
    let mut i = i;
    // Skip empty segments that end exactly at `offset`.
    while i + 1 < segments.len() && segments[i].next_offset <= offset {
        i += 1;
    }
    &segments[i]
}

/// Splits records into runs that each make one frame of about `FRAME_TARGET_BYTES`.
fn frame_chunks(records: &[NewRecord]) -> impl Iterator<Item = &[NewRecord]> {
    let mut rest = records;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut bytes = frame::FRAME_OVERHEAD_BYTES;
        let mut n = 0;
        while n < rest.len() {
            let size = frame::encoded_record_bytes(&rest[n]);
            if n > 0 && bytes + size > FRAME_TARGET_BYTES {
                break;
            }
            bytes += size;
            n += 1;
        }
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        Some(chunk)
    })
}

/// `(base_offset, path)` of every segment file in `dir`, sorted. With `repair`, temporary
/// files of an index write interrupted long ago (by a crash) are removed; recent ones may be
/// a flusher's work in progress.
fn list_segments(dir: &Path, repair: bool) -> Result<Vec<(u64, PathBuf)>, LogError> {
    let mut segments = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(LogError::io("list partition", dir))?;
    for entry in entries {
        let path = entry.map_err(LogError::io("list partition", dir))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
        if name.ends_with(".tmp") && repair && is_stale(&path) {
            let _ = std::fs::remove_file(&path);
        } else if let Some(base) = name.strip_suffix(".log").and_then(|b| b.parse::<u64>().ok()) {
            segments.push((base, path));
        }
    }
    segments.sort_unstable_by_key(|(base, _)| *base);
    Ok(segments)
}

/// Segments must follow each other without gaps or overlaps.
fn check_contiguous(dir: &Path, segments: &[Segment]) -> Result<(), LogError> {
    for pair in segments.windows(2) {
        if pair[0].next_offset != pair[1].base_offset {
            return Err(LogError::Corrupt {
                path: dir.to_path_buf(),
                position: 0,
                reason: format!(
                    "segment {} ends at offset {} but the next starts at {}",
                    pair[0].path.display(),
                    pair[0].next_offset,
                    pair[1].base_offset
                ),
            });
        }
    }
    Ok(())
}

/// Older than any index write takes.
fn is_stale(path: &Path) -> bool {
    const STALE_AFTER: Duration = Duration::from_secs(600);
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| SystemTime::now().duration_since(t).unwrap_or_default() > STALE_AFTER)
}

fn dir_modified(dir: &Path) -> Result<Option<SystemTime>, LogError> {
    let metadata = std::fs::metadata(dir).map_err(LogError::io("stat partition", dir))?;
    Ok(metadata.modified().ok())
}

fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(LogError::io("fsync directory", dir))
}

fn remove_if_exists(path: &Path) -> Result<(), LogError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LogError::Io { operation: "delete segment", path: path.to_path_buf(), source: e }),
    }
}
