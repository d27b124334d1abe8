//! One segment of a partition: a file of frames starting at a base offset, its sparse
//! offset/time index in memory, and its index file once it is sealed.
//!
//! A segment is *active* (the last of its partition, the only one appended to) or *sealed*.
//! The active segment's index lives only in memory and is rebuilt by scanning the file when a
//! process opens the partition; a sealed segment's index is written once, at sealing, to
//! `<base>.index` (with its own checksum), so opening a partition does not rescan old data.
//!
//! Nothing here takes locks: [`super::partition`] decides when a scan may repair (cut a torn
//! tail) and when it may only observe.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};

use super::frame::{self, FRAME_PREFIX_BYTES, FrameError, FrameHeader};
use crate::log::error::LogError;
use crate::log::record::Record;

/// A new index entry is added once this many bytes were written since the last one.
const INDEX_INTERVAL_BYTES: u64 = 4096;
/// Scans read the file in chunks of this size.
const SCAN_CHUNK_BYTES: usize = 1024 * 1024;
/// Reads fetch at least this much, so that skipping to an offset past the index entry
/// takes one system call.
const SKIP_CHUNK_BYTES: usize = 64 * 1024;
const INDEX_MAGIC: &[u8; 8] = b"EDDYIDX1";

/// A point in the segment where a frame starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IndexEntry {
    /// Base offset of the frame at `position`.
    offset: u64,
    position: u64,
    /// The largest record timestamp before `position` (`i64::MIN` if none).
    max_timestamp_before_ms: i64,
}

/// Why a scan stopped before the end of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanTail {
    /// Every byte of the file is a valid frame.
    Clean,
    /// The file ends inside a frame (a write in progress, or a torn write).
    Incomplete { position: u64, bytes: u64 },
    /// A complete frame is invalid (corruption, or a write in progress seen half-done).
    Invalid { position: u64, bytes: u64, reason: String },
}

pub struct Segment {
    pub base_offset: u64,
    pub path: PathBuf,
    file: Arc<File>,
    /// Bytes of complete, checked frames from the start of the file.
    pub valid_bytes: u64,
    /// The offset after the last record.
    pub next_offset: u64,
    /// The largest record timestamp (`i64::MIN` while empty).
    pub max_timestamp_ms: i64,
    /// When the segment was created (wall clock), for `segment.ms`.
    pub created: SystemTime,
    index: Vec<IndexEntry>,
    bytes_since_index: u64,
}

/// A sealed segment still to be made durable: its data fsynced, then its index written.
/// The index is written only after the data is on disk, so an index file always describes
/// durable bytes; until it exists, openers rescan the segment.
pub struct SealRequest {
    file: Arc<File>,
    path: PathBuf,
    index: Vec<u8>,
}

impl SealRequest {
    pub fn run(self) -> Result<(), LogError> {
        self.file.sync_data().map_err(LogError::io("fsync segment", &self.path))?;
        let path = index_path(&self.path);
        let tmp = path.with_extension(format!("index.{}.tmp", std::process::id()));
        std::fs::write(&tmp, &self.index).map_err(LogError::io("write index", &tmp))?;
        File::open(&tmp).and_then(|f| f.sync_all()).map_err(LogError::io("fsync index", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(LogError::io("rename index", &path))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Where a read of a segment starts, taken under the partition lock and served outside it.
pub struct ReadPlan {
    file: Arc<File>,
    path: PathBuf,
    position: u64,
    /// The base offset the frame at `position` must have; each next frame follows on.
    first_offset: u64,
    end: u64,
}

pub fn segment_file_name(base_offset: u64) -> String {
    format!("{base_offset:020}.log")
}

pub fn index_path(log_path: &Path) -> PathBuf {
    log_path.with_extension("index")
}

impl Segment {
    /// Creates an empty segment file; fails if it exists.
    pub fn create(dir: &Path, base_offset: u64) -> Result<Segment, LogError> {
        let path = dir.join(segment_file_name(base_offset));
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(LogError::io("create segment", &path))?;
        Ok(Segment::empty(path, file, base_offset, SystemTime::now()))
    }

    /// Opens an existing segment file without reading it: the caller scans it or loads its
    /// index.
    pub fn open(path: PathBuf, base_offset: u64) -> Result<Segment, LogError> {
        let file = File::options().read(true).write(true).open(&path).map_err(LogError::io("open segment", &path))?;
        let metadata = file.metadata().map_err(LogError::io("stat segment", &path))?;
        let created = metadata.created().or_else(|_| metadata.modified()).unwrap_or(SystemTime::now());
        Ok(Segment::empty(path, file, base_offset, created))
    }

    fn empty(path: PathBuf, file: File, base_offset: u64, created: SystemTime) -> Segment {
        Segment {
            base_offset,
            path,
            file: Arc::new(file),
            valid_bytes: 0,
            next_offset: base_offset,
            max_timestamp_ms: i64::MIN,
            created,
            index: Vec::new(),
            bytes_since_index: 0,
        }
    }

    /// Current length of the file on disk (may exceed `valid_bytes` while another process
    /// writes, or after a torn write).
    pub fn file_len(&self) -> Result<u64, LogError> {
        Ok(self.file.metadata().map_err(LogError::io("stat segment", &self.path))?.len())
    }

    /// When the segment was last written, for `retention.ms`.
    pub fn last_modified(&self) -> Result<SystemTime, LogError> {
        self.file.metadata().and_then(|m| m.modified()).map_err(LogError::io("stat segment", &self.path))
    }

    /// Accepts frames past `valid_bytes` until the end of the file or the first frame that is
    /// incomplete or invalid, and reports why it stopped. With `repair`, the caller holds the
    /// partition's write lock (no write is in progress), so whatever follows the last valid
    /// frame is a torn or corrupt tail: the file is cut back to the last valid frame.
    pub fn scan(&mut self, repair: bool) -> Result<ScanTail, LogError> {
        let file = Arc::clone(&self.file);
        let file_len = self.file_len()?;
        let mut window = Window::default();
        let tail = loop {
            let position = self.valid_bytes;
            if position >= file_len {
                break ScanTail::Clean;
            }
            let remaining = file_len - position;
            let incomplete = ScanTail::Incomplete { position, bytes: remaining };
            let Some(prefix) = window.get(&file, &self.path, position, FRAME_PREFIX_BYTES, file_len)? else {
                break incomplete;
            };
            let frame_bytes = match frame::frame_length(prefix) {
                Ok(n) => n,
                Err(FrameError::Incomplete) => break incomplete,
                Err(FrameError::Invalid(reason)) => {
                    break ScanTail::Invalid { position, bytes: remaining, reason };
                }
            };
            let Some(bytes) = window.get(&file, &self.path, position, frame_bytes, file_len)? else {
                break incomplete;
            };
            match frame::check_frame(bytes) {
                Ok(header) if header.base_offset == self.next_offset => self.accept(&header, position),
                Ok(header) => {
                    let reason = offset_mismatch(header.base_offset, self.next_offset);
                    break ScanTail::Invalid { position, bytes: remaining, reason };
                }
                Err(FrameError::Incomplete) => break incomplete,
                Err(FrameError::Invalid(reason)) => {
                    break ScanTail::Invalid { position, bytes: remaining, reason };
                }
            }
        };
        if repair && tail != ScanTail::Clean {
            tracing::warn!(
                segment = %self.path.display(),
                ?tail,
                "cutting the segment back to its last valid record"
            );
            self.file.set_len(self.valid_bytes).map_err(LogError::io("truncate segment", &self.path))?;
        }
        Ok(tail)
    }

    /// Forgets what is known of the segment's frames, to scan them again from the start.
    pub fn rescan(&mut self) -> Result<(), LogError> {
        self.valid_bytes = 0;
        self.next_offset = self.base_offset;
        self.max_timestamp_ms = i64::MIN;
        self.index.clear();
        self.bytes_since_index = 0;
        Ok(())
    }

    /// Cuts the segment back to end just before `offset`, which must be where one of its
    /// frames starts (or its base offset): the frames are scanned again from the start.
    pub fn cut(&mut self, offset: u64) -> Result<(), LogError> {
        self.rescan()?;
        let file = Arc::clone(&self.file);
        let file_len = self.file_len()?;
        let mut window = Window::default();
        while self.next_offset < offset {
            let position = self.valid_bytes;
            let header = window
                .get(&file, &self.path, position, FRAME_PREFIX_BYTES, file_len)?
                .and_then(|prefix| frame::frame_length(prefix).ok())
                .map(|length| window.get(&file, &self.path, position, length, file_len))
                .transpose()?
                .flatten()
                .and_then(|bytes| frame::check_frame(bytes).ok());
            match header {
                Some(header) if header.next_offset() <= offset => self.accept(&header, position),
                _ => {
                    return Err(LogError::Corrupt {
                        path: self.path.clone(),
                        position,
                        reason: format!("cannot cut the segment at offset {offset}: no frame starts there"),
                    });
                }
            }
        }
        self.file.set_len(self.valid_bytes).map_err(LogError::io("truncate segment", &self.path))
    }

    /// Records a frame written at `position` (by this process or, found by a scan, another).
    fn accept(&mut self, header: &FrameHeader, position: u64) {
        if self.index.is_empty() || self.bytes_since_index >= INDEX_INTERVAL_BYTES {
            self.index.push(IndexEntry {
                offset: header.base_offset,
                position,
                max_timestamp_before_ms: self.max_timestamp_ms,
            });
            self.bytes_since_index = 0;
        }
        let frame_bytes = header.frame_bytes as u64;
        self.bytes_since_index += frame_bytes;
        self.valid_bytes = position + frame_bytes;
        self.next_offset = header.next_offset();
        self.max_timestamp_ms = self.max_timestamp_ms.max(header.max_timestamp_ms);
    }

    /// Writes encoded frames (whose headers are `headers`, in order) at the end of the valid
    /// data, in one system call.
    pub fn write_frames(&mut self, bytes: &[u8], headers: &[FrameHeader]) -> Result<(), LogError> {
        self.file.write_all_at(bytes, self.valid_bytes).map_err(LogError::io("append to segment", &self.path))?;
        let mut position = self.valid_bytes;
        for header in headers {
            self.accept(header, position);
            position += header.frame_bytes as u64;
        }
        Ok(())
    }

    pub fn sync(&self) -> Result<(), LogError> {
        self.file.sync_data().map_err(LogError::io("fsync segment", &self.path))
    }

    /// Plans a read starting at the frame that holds `offset` (which must be in this segment).
    pub fn plan_read(&self, offset: u64) -> ReadPlan {
        self.plan_from(self.entry_at_or_before(|e| e.offset <= offset))
    }

    /// Plans a scan for the first record with a timestamp of at least `timestamp_ms`: it
    /// starts at the last index entry before which every record is older.
    pub fn plan_time_lookup(&self, timestamp_ms: i64) -> ReadPlan {
        self.plan_from(self.entry_at_or_before(|e| e.max_timestamp_before_ms < timestamp_ms))
    }

    fn plan_from(&self, entry: Option<&IndexEntry>) -> ReadPlan {
        ReadPlan {
            file: Arc::clone(&self.file),
            path: self.path.clone(),
            position: entry.map_or(0, |e| e.position),
            first_offset: entry.map_or(self.base_offset, |e| e.offset),
            end: self.valid_bytes,
        }
    }

    /// The last index entry satisfying `before` (a predicate that holds for a prefix).
    fn entry_at_or_before(&self, before: impl Fn(&IndexEntry) -> bool) -> Option<&IndexEntry> {
        let n = self.index.partition_point(|e| before(e));
        n.checked_sub(1).map(|i| &self.index[i])
    }

    /// What sealing this segment takes: an fsync of its file, then its index file. Run by
    /// the [`super::flusher`] in the background, so a roll does not wait for the disk.
    pub fn seal_request(&self) -> SealRequest {
        let mut index = Vec::with_capacity(64 + self.index.len() * 24);
        index.extend_from_slice(INDEX_MAGIC);
        for n in [self.base_offset, self.next_offset, self.valid_bytes] {
            index.extend_from_slice(&n.to_le_bytes());
        }
        index.extend_from_slice(&self.max_timestamp_ms.to_le_bytes());
        index.extend_from_slice(&(self.index.len() as u64).to_le_bytes());
        for e in &self.index {
            index.extend_from_slice(&e.offset.to_le_bytes());
            index.extend_from_slice(&e.position.to_le_bytes());
            index.extend_from_slice(&e.max_timestamp_before_ms.to_le_bytes());
        }
        let crc = crc32c::crc32c(&index);
        index.extend_from_slice(&crc.to_le_bytes());
        SealRequest { file: Arc::clone(&self.file), path: self.path.clone(), index }
    }

    /// Loads the index file of a sealed segment. Returns false (leaving the segment as it
    /// was) when the file is missing, damaged or does not describe the segment's bytes; the
    /// caller then scans instead.
    pub fn load_index(&mut self) -> Result<bool, LogError> {
        let path = index_path(&self.path);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(LogError::Io { operation: "read index", path, source: e }),
        };
        let Some(parsed) = parse_index(&bytes) else {
            tracing::warn!(index = %path.display(), "index file is damaged; rescanning its segment");
            return Ok(false);
        };
        if parsed.base_offset != self.base_offset || parsed.valid_bytes != self.file_len()? {
            tracing::warn!(index = %path.display(), "index file does not match its segment; rescanning");
            return Ok(false);
        }
        self.valid_bytes = parsed.valid_bytes;
        self.next_offset = parsed.next_offset;
        self.max_timestamp_ms = parsed.max_timestamp_ms;
        self.index = parsed.entries;
        self.bytes_since_index = 0;
        Ok(true)
    }
}

struct ParsedIndex {
    base_offset: u64,
    next_offset: u64,
    valid_bytes: u64,
    max_timestamp_ms: i64,
    entries: Vec<IndexEntry>,
}

fn parse_index(bytes: &[u8]) -> Option<ParsedIndex> {
    let (body, crc) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
    if crc32c::crc32c(body) != u32::from_le_bytes(crc.try_into().ok()?) || !body.starts_with(INDEX_MAGIC) {
        return None;
    }
    let mut words =
        body[INDEX_MAGIC.len()..].chunks_exact(8).map(|w| u64::from_le_bytes(w.try_into().unwrap_or_default()));
    let base_offset = words.next()?;
    let next_offset = words.next()?;
    let valid_bytes = words.next()?;
    let max_timestamp_ms = words.next()? as i64;
    let count = words.next()?;
    let mut entries = Vec::new();
    for _ in 0..count {
        entries.push(IndexEntry {
            offset: words.next()?,
            position: words.next()?,
            max_timestamp_before_ms: words.next()? as i64,
        });
    }
    if words.next().is_some() || next_offset < base_offset {
        return None;
    }
    Some(ParsedIndex { base_offset, next_offset, valid_bytes, max_timestamp_ms, entries })
}

/// A window of a file's bytes, refilled in large chunks so that scanning many small frames
/// costs few system calls.
#[derive(Default)]
struct Window {
    start: u64,
    bytes: Vec<u8>,
}

impl Window {
    /// `len` bytes at `position`, or `None` when the file (of `file_len` bytes) ends first.
    fn get(
        &mut self,
        file: &File,
        path: &Path,
        position: u64,
        len: usize,
        file_len: u64,
    ) -> Result<Option<&[u8]>, LogError> {
        let end = position + len as u64;
        if end > file_len {
            return Ok(None);
        }
        let cached = position >= self.start && end <= self.start + self.bytes.len() as u64;
        if !cached {
            let want = (len.max(SCAN_CHUNK_BYTES) as u64).min(file_len - position) as usize;
            self.bytes.resize(want, 0);
            let got = read_up_to(file, &mut self.bytes, position).map_err(LogError::io("read segment", path))?;
            self.bytes.truncate(got);
            self.start = position;
            if got < len {
                return Ok(None); // the file shrank under us: a concurrent repair
            }
        }
        let from = (position - self.start) as usize;
        Ok(Some(&self.bytes[from..from + len]))
    }
}

/// Reads into `buf` from `position` until it is full or the file ends; returns bytes read.
fn read_up_to(file: &File, buf: &mut [u8], position: u64) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], position + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

impl ReadPlan {
    /// Reads records with an offset of at least `min_offset` into `out`, roughly `max_bytes`
    /// of frames (always at least one whole frame). Every frame's checksum is verified
    /// again: data that rotted after it was written is reported, never served.
    pub fn read(&self, min_offset: u64, max_bytes: usize, out: &mut Vec<Record>) -> Result<(), LogError> {
        let mut position = self.position;
        let mut expected_offset = self.first_offset;
        let mut budget = max_bytes.max(1);
        while position < self.end && budget > 0 {
            // Read ahead at least a scan chunk: frames before `min_offset` are skipped over.
            let chunk = self.read_chunk(position, budget.max(SKIP_CHUNK_BYTES))?;
            let mut used = 0usize;
            while used < chunk.len() {
                let rest = &chunk[used..];
                let at = position + used as u64;
                let peeked = match frame::peek_header(rest) {
                    Ok(header) if header.frame_bytes <= rest.len() => header,
                    Ok(_) | Err(FrameError::Incomplete) if used > 0 => break,
                    Ok(_) | Err(FrameError::Incomplete) => {
                        return Err(self.corrupt(at, "frame runs past the valid end of the segment".into()));
                    }
                    Err(FrameError::Invalid(reason)) => return Err(self.corrupt(at, reason)),
                };
                if peeked.base_offset != expected_offset {
                    return Err(self.corrupt(at, offset_mismatch(peeked.base_offset, expected_offset)));
                }
                expected_offset = peeked.next_offset();
                // Frames wholly before `min_offset` are skipped by their length alone: their
                // records are not served, so a damaged one must not block what follows.
                if peeked.next_offset() > min_offset {
                    let header = frame::check_frame(rest).map_err(|e| self.corrupt(at, describe(e)))?;
                    let frame_bytes = chunk.slice(used..used + header.frame_bytes);
                    frame::decode_records(&frame_bytes, &header, min_offset, out)
                        .map_err(|e| self.corrupt(at, describe(e)))?;
                    budget = budget.saturating_sub(header.frame_bytes);
                }
                used += peeked.frame_bytes;
                if budget == 0 {
                    break;
                }
            }
            position += used as u64;
        }
        Ok(())
    }

    /// Visits frame headers from the planned position (for timestamp lookups), stopping when
    /// `visit` returns `Some`.
    pub fn find<T>(
        &self,
        mut visit: impl FnMut(&Bytes, &FrameHeader) -> Result<Option<T>, LogError>,
    ) -> Result<Option<T>, LogError> {
        let mut position = self.position;
        let mut expected_offset = self.first_offset;
        while position < self.end {
            let chunk = self.read_chunk(position, SCAN_CHUNK_BYTES)?;
            let mut used = 0usize;
            while used < chunk.len() {
                let header = match frame::check_frame(&chunk[used..]) {
                    Ok(header) => header,
                    Err(FrameError::Incomplete) if used > 0 => break,
                    Err(e) => return Err(self.corrupt(position + used as u64, describe(e))),
                };
                if header.base_offset != expected_offset {
                    return Err(
                        self.corrupt(position + used as u64, offset_mismatch(header.base_offset, expected_offset))
                    );
                }
                expected_offset = header.next_offset();
                let frame_bytes = chunk.slice(used..used + header.frame_bytes);
                if let Some(found) = visit(&frame_bytes, &header)? {
                    return Ok(Some(found));
                }
                used += header.frame_bytes;
            }
            position += used as u64;
        }
        Ok(None)
    }

    /// Reads about `want` bytes at `position`, extended to hold at least the first frame.
    fn read_chunk(&self, position: u64, want: usize) -> Result<Bytes, LogError> {
        let available = (self.end - position) as usize;
        let mut len = want.max(FRAME_PREFIX_BYTES).min(available);
        let mut buf = BytesMut::zeroed(len);
        let got = read_up_to(&self.file, &mut buf, position).map_err(LogError::io("read segment", &self.path))?;
        if got < len {
            return Err(self.corrupt(position + got as u64, "segment is shorter than its valid length".into()));
        }
        let first = frame::frame_length(&buf).map_err(|e| self.corrupt(position, describe(e)))?;
        if first > len {
            if first > available {
                return Err(self.corrupt(position, "frame runs past the valid end of the segment".into()));
            }
            // The rest of the frame, after the bytes already read.
            let read = len;
            len = first;
            buf.resize(len, 0);
            let got = read_up_to(&self.file, &mut buf[read..], position + read as u64)
                .map_err(LogError::io("read segment", &self.path))?;
            if read + got < len {
                let end = position + (read + got) as u64;
                return Err(self.corrupt(end, "segment is shorter than its valid length".into()));
            }
        }
        Ok(buf.freeze())
    }

    fn corrupt(&self, position: u64, reason: String) -> LogError {
        LogError::Corrupt { path: self.path.clone(), position, reason }
    }
}

fn describe(error: FrameError) -> String {
    match error {
        FrameError::Incomplete => "frame is cut short".into(),
        FrameError::Invalid(reason) => reason,
    }
}

fn offset_mismatch(found: u64, expected: u64) -> String {
    format!("frame has base offset {found} where {expected} was expected")
}
