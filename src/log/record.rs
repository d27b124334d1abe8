//! Records as the log stores and serves them.
//!
//! A *topic* has *partitions* of *records* at *offsets*. Keys, values and header values are
//! [`Bytes`]: a record read from the log is a view into the buffer it was read into, so
//! serving a batch of records allocates once, not once per record.

use bytes::Bytes;

/// A record header: a UTF-8 key (as in Kafka) and an optional value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub key: String,
    pub value: Option<Bytes>,
}

/// A record to append; the log assigns its offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecord {
    /// Milliseconds since the Unix epoch (Kafka's CreateTime).
    pub timestamp_ms: i64,
    pub key: Option<Bytes>,
    /// `None` is a tombstone.
    pub value: Option<Bytes>,
    pub headers: Vec<Header>,
}

impl NewRecord {
    /// Its key's and value's bytes, as throughput metrics and the producer's batching count them.
    pub fn payload_bytes(&self) -> usize {
        self.key.as_ref().map_or(0, |k| k.len()) + self.value.as_ref().map_or(0, |v| v.len())
    }

    pub fn new(timestamp_ms: i64, key: Option<Bytes>, value: Option<Bytes>) -> Self {
        NewRecord { timestamp_ms, key, value, headers: Vec::new() }
    }
}

/// A record read from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub offset: u64,
    pub timestamp_ms: i64,
    pub key: Option<Bytes>,
    /// `None` is a tombstone.
    pub value: Option<Bytes>,
    pub headers: Vec<Header>,
}

impl Record {
    /// Its key's and value's bytes, as throughput metrics count them.
    pub fn payload_bytes(&self) -> usize {
        self.key.as_ref().map_or(0, |k| k.len()) + self.value.as_ref().map_or(0, |v| v.len())
    }
}

/// Key and value bytes of records (see [`Record::payload_bytes`]).
pub fn payload_bytes(records: &[Record]) -> u64 {
    records.iter().map(Record::payload_bytes).sum::<usize>() as u64
}

/// The answer to a read: records from one partition, in offset order.
#[derive(Debug, Clone, Default)]
pub struct Fetch {
    pub records: Vec<Record>,
    /// The partition's log end offset when the read was served (the next offset to be
    /// written), as Kafka's fetch responses carry it: `high_watermark - last offset - 1`
    /// is the reader's lag.
    pub high_watermark: u64,
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
