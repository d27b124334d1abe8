//! Materialized tables: a table's changelog folded into its current rows, the latest record
//! per key, kept up to date incrementally (each catch-up reads only what was appended since
//! the last). Pull queries answer from it.
//!
//! Rows are ordered by their key's bytes, as a ksqlDB state store (RocksDB) orders them; a
//! windowed key's bytes end with its window, so a key's windows follow each other. The view
//! counts the bytes it holds.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::log::{Log, LogError, Record};

/// Bytes asked of the log per read while catching up.
const FETCH_BYTES: usize = 1024 * 1024;

/// One table's current rows.
#[derive(Debug, Default)]
pub struct MaterializedTable {
    topic: String,
    /// Per partition, the next offset to fold in.
    next: Vec<u64>,
    /// The latest record of each key (deleted keys are absent), with its partition.
    rows: BTreeMap<Bytes, (u32, Record)>,
    /// Keys, values and headers held, in bytes.
    bytes: usize,
}

impl MaterializedTable {
    pub fn new(topic: &str) -> Self {
        MaterializedTable { topic: topic.to_owned(), ..Default::default() }
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Folds in the records appended since the last catch-up. A topic that went back (it
    /// was deleted and created again) is read again from its start.
    pub async fn catch_up(&mut self, log: &dyn Log) -> Result<(), LogError> {
        let partitions = log.partition_count(&self.topic).await?;
        if self.next.len() != partitions as usize {
            self.reset(partitions);
        }
        for partition in 0..partitions {
            let end = log.latest_offset(&self.topic, partition).await?;
            let earliest = log.earliest_offset(&self.topic, partition).await?;
            if end < self.next[partition as usize] {
                self.reset(partitions);
                return Box::pin(self.catch_up(log)).await;
            }
            let mut offset = self.next[partition as usize].max(earliest);
            while offset < end {
                let fetch = log.read(&self.topic, partition, offset, FETCH_BYTES).await?;
                let Some(last) = fetch.records.last() else { break };
                offset = last.offset + 1;
                for record in fetch.records {
                    self.apply(partition, record);
                }
            }
            self.next[partition as usize] = offset;
        }
        Ok(())
    }

    fn reset(&mut self, partitions: u32) {
        self.next = vec![0; partitions as usize];
        self.rows.clear();
        self.bytes = 0;
    }

    /// One change: a record replaces its key's row; a tombstone deletes it. A record without
    /// a key is no row of a table.
    fn apply(&mut self, partition: u32, record: Record) {
        let Some(key) = record.key.clone() else { return };
        let size = |r: &Record| {
            r.key.as_ref().map_or(0, |k| k.len())
                + r.value.as_ref().map_or(0, |v| v.len())
                + r.headers.iter().map(|h| h.key.len() + h.value.as_ref().map_or(0, |v| v.len())).sum::<usize>()
        };
        let previous = if record.value.is_none() {
            self.rows.remove(&key)
        } else {
            self.bytes += size(&record);
            self.rows.insert(key, (partition, record))
        };
        if let Some((_, previous)) = previous {
            self.bytes -= size(&previous);
        }
    }

    /// The current rows in key order, each with its partition.
    pub fn rows(&self) -> impl Iterator<Item = (u32, &Record)> {
        self.rows.values().map(|(partition, record)| (*partition, record))
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Bytes of the keys, values and headers held.
    pub fn size_bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(offset: u64, key: &str, value: Option<&str>) -> Record {
        Record {
            offset,
            timestamp_ms: offset as i64,
            key: Some(Bytes::from(key.to_owned())),
            value: value.map(|v| Bytes::from(v.to_owned())),
            headers: Vec::new(),
        }
    }

    #[test]
    fn the_latest_record_per_key_stays_and_tombstones_delete() {
        let mut table = MaterializedTable::new("t");
        table.reset(1);
        table.apply(0, record(0, "b", Some("1")));
        table.apply(0, record(1, "a", Some("22")));
        table.apply(0, record(2, "b", Some("333")));
        let rows: Vec<(&[u8], &[u8])> =
            table.rows().map(|(_, r)| (r.key.as_deref().unwrap(), r.value.as_deref().unwrap())).collect();
        assert_eq!(rows, [(&b"a"[..], &b"22"[..]), (&b"b"[..], &b"333"[..])]);
        assert_eq!(table.size_bytes(), 1 + 2 + 1 + 3);
        table.apply(0, record(3, "a", None));
        assert_eq!(table.len(), 1);
        assert_eq!(table.size_bytes(), 1 + 3);
    }
}
