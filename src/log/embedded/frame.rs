//! The on-disk frame of a record batch: how records are laid out in a segment file.
//!
//! Every append writes one or more *frames*. A frame carries a CRC-32C over every other byte
//! of it (base offset and length included, unlike Kafka's, because offsets are never
//! reassigned here), so a torn write or a flipped bit anywhere is detected before any record
//! of the frame is served. All integers are little-endian.
//!
//! ```text
//! frame   := base_offset:u64 length:u32 crc:u32 body   (length = bytes of crc + body;
//!                                                        crc over base_offset, length, body)
//! body    := version:u8 attributes:u8 record_count:u32
//!            first_timestamp:i64 max_timestamp:i64 record*
//! record  := timestamp:i64 key_len:i32 key value_len:i32 value header_count:u32 header*
//! header  := key_len:u32 key(UTF-8) value_len:i32 value
//! ```
//! A length of `-1` encodes a null key, value (tombstone) or header value. Record `i` of a
//! frame has offset `base_offset + i`.
//!
//! This module only encodes and decodes bytes; it does no I/O and never panics on bad input.

use bytes::Bytes;

use crate::log::record::{Header, NewRecord, Record};

/// Bytes before the body: base offset, length, crc.
pub const FRAME_PREFIX_BYTES: usize = 8 + 4 + 4;
/// Bytes of the body's fixed part: version, attributes, count, first and max timestamp.
const BODY_FIXED_BYTES: usize = 1 + 1 + 4 + 8 + 8;
/// Total bytes of a frame with no records.
pub const FRAME_OVERHEAD_BYTES: usize = FRAME_PREFIX_BYTES + BODY_FIXED_BYTES;
/// Fixed bytes of one record: timestamp, key length, value length, header count.
pub const RECORD_OVERHEAD_BYTES: usize = 8 + 4 + 4 + 4;
/// The only body version written so far.
const VERSION: u8 = 1;
/// No frame may claim to be larger than this; a bigger length is corruption, not data.
pub const MAX_FRAME_BYTES: usize = 256 * 1024 * 1024;

/// What is wrong with a frame that fails to decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The bytes end before the frame does: a write in progress, or a torn tail.
    Incomplete,
    /// The frame is complete but its content is invalid: checksum, length or layout.
    Invalid(String),
}

/// The fixed fields of a frame, read without decoding its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub base_offset: u64,
    pub record_count: u32,
    pub first_timestamp_ms: i64,
    pub max_timestamp_ms: i64,
    /// Bytes of the whole frame, prefix included.
    pub frame_bytes: usize,
}

impl FrameHeader {
    /// The offset after the frame's last record.
    pub fn next_offset(&self) -> u64 {
        self.base_offset + u64::from(self.record_count)
    }
}

/// Bytes one record takes inside a frame.
pub fn encoded_record_bytes(record: &NewRecord) -> usize {
    RECORD_OVERHEAD_BYTES
        + record.key.as_ref().map_or(0, |k| k.len())
        + record.value.as_ref().map_or(0, |v| v.len())
        + record.headers.iter().map(|h| 4 + h.key.len() + 4 + h.value.as_ref().map_or(0, |v| v.len())).sum::<usize>()
}

/// Appends one frame holding `records` (at least one) to `out`; returns the frame's size.
pub fn encode_frame(out: &mut Vec<u8>, base_offset: u64, records: &[NewRecord]) -> usize {
    let start = out.len();
    let first_timestamp_ms = records.first().map_or(0, |r| r.timestamp_ms);
    let max_timestamp_ms = records.iter().map(|r| r.timestamp_ms).max().unwrap_or(0);
    out.extend_from_slice(&base_offset.to_le_bytes());
    out.extend_from_slice(&[0; 8]); // length and crc, filled in below
    out.push(VERSION);
    out.push(0);
    out.extend_from_slice(&(records.len() as u32).to_le_bytes());
    out.extend_from_slice(&first_timestamp_ms.to_le_bytes());
    out.extend_from_slice(&max_timestamp_ms.to_le_bytes());
    for record in records {
        out.extend_from_slice(&record.timestamp_ms.to_le_bytes());
        put_nullable(out, record.key.as_deref());
        put_nullable(out, record.value.as_deref());
        out.extend_from_slice(&(record.headers.len() as u32).to_le_bytes());
        for header in &record.headers {
            out.extend_from_slice(&(header.key.len() as u32).to_le_bytes());
            out.extend_from_slice(header.key.as_bytes());
            put_nullable(out, header.value.as_deref());
        }
    }
    let frame_bytes = out.len() - start;
    let length = (frame_bytes - 12) as u32;
    out[start + 8..start + 12].copy_from_slice(&length.to_le_bytes());
    let crc = frame_crc(&out[start..]);
    out[start + 12..start + 16].copy_from_slice(&crc.to_le_bytes());
    frame_bytes
}

fn put_nullable(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => out.extend_from_slice(&(-1i32).to_le_bytes()),
        Some(b) => {
            out.extend_from_slice(&(b.len() as i32).to_le_bytes());
            out.extend_from_slice(b);
        }
    }
}

/// The checksum of a whole frame: everything but the checksum field itself.
fn frame_crc(frame: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&frame[..12]), &frame[FRAME_PREFIX_BYTES..])
}

/// How many bytes the frame starting at `bytes[0]` claims to take, if its prefix is there.
pub fn frame_length(bytes: &[u8]) -> Result<usize, FrameError> {
    if bytes.len() < FRAME_PREFIX_BYTES {
        return Err(FrameError::Incomplete);
    }
    let length = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
    let frame_bytes = 12 + length;
    if !(FRAME_OVERHEAD_BYTES..=MAX_FRAME_BYTES).contains(&frame_bytes) {
        return Err(FrameError::Invalid(format!("impossible frame length {frame_bytes}")));
    }
    Ok(frame_bytes)
}

/// Reads the fixed fields of the frame at the start of `bytes` *without* verifying its
/// checksum: enough to skip over it, never enough to serve its records.
pub fn peek_header(bytes: &[u8]) -> Result<FrameHeader, FrameError> {
    let frame_bytes = frame_length(bytes)?;
    if bytes.len() < FRAME_OVERHEAD_BYTES {
        return Err(FrameError::Incomplete);
    }
    let mut cursor = Cursor::new(&bytes[FRAME_PREFIX_BYTES + 2..FRAME_OVERHEAD_BYTES]);
    Ok(FrameHeader {
        base_offset: u64::from_le_bytes(bytes[0..8].try_into().map_err(|_| FrameError::Incomplete)?),
        record_count: cursor.u32()?,
        first_timestamp_ms: cursor.i64()?,
        max_timestamp_ms: cursor.i64()?,
        frame_bytes,
    })
}

/// Checks the frame at the start of `bytes` (length, checksum, fixed fields) and returns its
/// header. The records are not decoded; a valid checksum makes their layout trustworthy
/// enough to be decoded later with bounds checks.
pub fn check_frame(bytes: &[u8]) -> Result<FrameHeader, FrameError> {
    let frame_bytes = frame_length(bytes)?;
    if bytes.len() < frame_bytes {
        return Err(FrameError::Incomplete);
    }
    let frame = &bytes[..frame_bytes];
    let stored_crc = u32::from_le_bytes([frame[12], frame[13], frame[14], frame[15]]);
    let body = &frame[FRAME_PREFIX_BYTES..];
    let actual_crc = frame_crc(frame);
    if stored_crc != actual_crc {
        return Err(FrameError::Invalid(format!(
            "checksum mismatch (stored {stored_crc:#010x}, computed {actual_crc:#010x})"
        )));
    }
    if body[0] != VERSION {
        return Err(FrameError::Invalid(format!("unknown frame version {}", body[0])));
    }
    let mut cursor = Cursor::new(&body[2..]);
    let record_count = cursor.u32()?;
    let first_timestamp_ms = cursor.i64()?;
    let max_timestamp_ms = cursor.i64()?;
    if record_count == 0 {
        return Err(FrameError::Invalid("frame with no records".into()));
    }
    Ok(FrameHeader {
        base_offset: u64::from_le_bytes(frame[0..8].try_into().map_err(|_| FrameError::Incomplete)?),
        record_count,
        first_timestamp_ms,
        max_timestamp_ms,
        frame_bytes,
    })
}

/// Decodes the records of a checked frame whose bytes are `frame` (a slice of a shared
/// buffer, so keys and values are views into it, not copies), pushing those with an offset
/// of at least `min_offset` onto `out`.
pub fn decode_records(
    frame: &Bytes,
    header: &FrameHeader,
    min_offset: u64,
    out: &mut Vec<Record>,
) -> Result<(), FrameError> {
    if frame.len() < header.frame_bytes || header.frame_bytes < FRAME_OVERHEAD_BYTES {
        return Err(FrameError::Incomplete);
    }
    let body = frame.slice(FRAME_OVERHEAD_BYTES..header.frame_bytes);
    let mut cursor = Cursor::new(&body);
    // Each record takes at least its timestamp and three lengths: a damaged count reserves
    // no more than the body could hold.
    out.reserve((header.record_count as usize).min(body.len() / 20));
    for i in 0..header.record_count {
        let timestamp_ms = cursor.i64()?;
        let key = cursor.nullable(&body)?;
        let value = cursor.nullable(&body)?;
        let header_count = cursor.u32()?;
        let mut headers = Vec::new();
        for _ in 0..header_count {
            let key_len = cursor.u32()? as usize;
            let key = std::str::from_utf8(cursor.take(key_len)?)
                .map_err(|_| FrameError::Invalid("header key is not UTF-8".into()))?
                .to_owned();
            let value = cursor.nullable(&body)?;
            headers.push(Header { key, value });
        }
        let offset = header.base_offset + u64::from(i);
        if offset >= min_offset {
            out.push(Record { offset, timestamp_ms, key, value, headers });
        }
    }
    if cursor.position != body.len() {
        return Err(FrameError::Invalid("trailing bytes after the last record".into()));
    }
    Ok(())
}

/// A bounds-checked reader over a frame body.
struct Cursor<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Cursor<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Cursor { bytes, position: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        let end = self
            .position
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| FrameError::Invalid("record runs past the end of its frame".into()))?;
        let slice = &self.bytes[self.position..end];
        self.position = end;
        Ok(slice)
    }

    fn u32(&mut self) -> Result<u32, FrameError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i32(&mut self) -> Result<i32, FrameError> {
        Ok(self.u32()? as i32)
    }

    fn i64(&mut self) -> Result<i64, FrameError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_le_bytes(a))
    }

    /// A length-prefixed byte string as a zero-copy slice of `shared`, or `None` for `-1`.
    fn nullable(&mut self, shared: &Bytes) -> Result<Option<Bytes>, FrameError> {
        let len = self.i32()?;
        if len == -1 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| FrameError::Invalid(format!("negative length {len}")))?;
        let start = self.position;
        self.take(len)?;
        Ok(Some(shared.slice(start..start + len)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<NewRecord> {
        vec![
            NewRecord::new(10, Some(Bytes::from_static(b"k1")), Some(Bytes::from_static(b"v1"))),
            NewRecord::new(30, None, None),
            NewRecord {
                timestamp_ms: 20,
                key: Some(Bytes::new()),
                value: Some(Bytes::from_static(b"hello")),
                headers: vec![
                    Header { key: "h".into(), value: Some(Bytes::from_static(b"x")) },
                    Header { key: "n".into(), value: None },
                ],
            },
        ]
    }

    fn encode(base: u64, records: &[NewRecord]) -> Bytes {
        let mut out = Vec::new();
        let n = encode_frame(&mut out, base, records);
        assert_eq!(n, out.len());
        assert_eq!(n, FRAME_OVERHEAD_BYTES + records.iter().map(encoded_record_bytes).sum::<usize>());
        Bytes::from(out)
    }

    #[test]
    fn frame_round_trips() {
        let records = sample();
        let frame = encode(100, &records);
        let header = check_frame(&frame).unwrap();
        assert_eq!(header.base_offset, 100);
        assert_eq!(header.record_count, 3);
        assert_eq!(header.first_timestamp_ms, 10);
        assert_eq!(header.max_timestamp_ms, 30);
        assert_eq!(header.next_offset(), 103);
        let mut out = Vec::new();
        decode_records(&frame, &header, 0, &mut out).unwrap();
        assert_eq!(out.len(), 3);
        for (i, (got, want)) in out.iter().zip(&records).enumerate() {
            assert_eq!(got.offset, 100 + i as u64);
            assert_eq!(got.timestamp_ms, want.timestamp_ms);
            assert_eq!(got.key, want.key);
            assert_eq!(got.value, want.value);
            assert_eq!(got.headers, want.headers);
        }
        out.clear();
        decode_records(&frame, &header, 102, &mut out).unwrap();
        assert_eq!(out.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![102]);
    }

    #[test]
    fn every_truncation_is_incomplete() {
        let frame = encode(0, &sample());
        for cut in 0..frame.len() {
            assert_eq!(check_frame(&frame[..cut]), Err(FrameError::Incomplete), "cut at {cut}");
        }
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let frame = encode(7, &sample()).to_vec();
        for i in 0..frame.len() {
            let mut bad = frame.clone();
            bad[i] ^= 0x40;
            assert!(check_frame(&bad).is_err(), "flip at byte {i} went unnoticed");
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut state = 0x1234_5678u32;
        for len in 0..400 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    state as u8
                })
                .collect();
            let bytes = Bytes::from(bytes);
            if let Ok(header) = check_frame(&bytes) {
                let _ = decode_records(&bytes, &header, 0, &mut Vec::new());
            }
        }
    }
}
