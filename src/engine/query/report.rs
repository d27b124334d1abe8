//! Reporting bad records: counted in the query's metrics and written to the processing log.

use std::sync::Mutex;
use std::sync::atomic::Ordering;

use super::QueryState;
use crate::engine::plan::RowError;
use crate::engine::processing_log::{Entry, Kind, ProcessingLog, push_merged};
use crate::log::{LogError, Record};

/// Bad records a query met: counted, and written to the processing log.
pub(super) struct Reporter {
    pub(super) query_id: String,
    /// The query's (first) input topic, for entries about rows.
    pub(super) input_topic: String,
    pub(super) log: ProcessingLog,
    /// Entries noted and not yet written.
    pub(super) pending: Mutex<Vec<Entry>>,
}

impl Reporter {
    /// Notes the records of `records` (a fetch of `topic`'s `partition`, in offset order)
    /// that `errors` name (sorted by offset; a record may be named twice, key and value):
    /// one entry each.
    pub(super) fn note(
        &self,
        state: &QueryState,
        topic: &str,
        partition: u32,
        records: &[Record],
        errors: &[(u64, String)],
    ) {
        let mut entries: Vec<Entry> = Vec::new();
        for (offset, reason) in errors {
            let Ok(i) = records.binary_search_by_key(offset, |r| r.offset) else { continue };
            push_merged(&mut entries, Entry::for_record(&self.query_id, topic, partition, &records[i], reason.clone()));
        }
        let Some(first) = entries.first() else { return };
        state.records_skipped.fetch_add(entries.len() as u64, Ordering::Relaxed);
        tracing::warn!(query = %self.query_id, topic, partition, records = entries.len(), first = %first.error, "skipping records that cannot be processed (see PROCESSING_LOG)");
        if let Ok(mut pending) = self.pending.lock() {
            pending.extend(entries);
        }
    }

    /// Writes what was noted.
    pub(super) async fn flush(&self) -> Result<(), LogError> {
        let entries = self.pending.lock().map(|mut p| std::mem::take(&mut *p)).unwrap_or_default();
        self.log.write(&entries).await
    }

    /// Writes the rows expressions failed on (one entry per row) at once.
    pub(super) async fn report_rows(&self, state: &QueryState, mut errors: Vec<RowError>) -> Result<(), LogError> {
        // In record order, a row's errors (its WHERE's, its columns') together.
        errors.sort_by_key(|e| (e.partition, e.offset));
        let mut entries: Vec<Entry> = Vec::with_capacity(errors.len());
        for error in errors {
            let entry = Entry {
                query_id: self.query_id.clone(),
                kind: Kind::Expression,
                source_topic: self.input_topic.clone(),
                source_partition: error.partition,
                source_offset: error.offset,
                error: error.message,
                record_key: None,
                record_value: None,
            };
            push_merged(&mut entries, entry);
        }
        let Some(first) = entries.first() else { return Ok(()) };
        state.expression_errors.fetch_add(entries.len() as u64, Ordering::Relaxed);
        tracing::warn!(query = %self.query_id, rows = entries.len(), first = %first.error, "expressions failed on rows; their columns are null (see PROCESSING_LOG)");
        self.log.write(&entries).await
    }
}
