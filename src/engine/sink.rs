//! Writing a query's rows to its sink: each row's key and value encoded in the sink's
//! formats, its timestamp the row's event time (or the sink's `TIMESTAMP` column), the
//! partition Kafka's partitioner picks for the key bytes.

use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch, RecordBatchOptions, new_null_array};
use datafusion::arrow::compute::cast;

use super::operator::TimedBatch;
use super::source::event_times;
use crate::catalog::Source;
use crate::format::{Codec, FormatError};
use crate::log::{NewRecord, Producer};

/// Encodes rows for one sink.
pub struct SinkEncoder {
    sink: Arc<Source>,
    /// The key is the input's, unchanged: several key columns all null were no key at all.
    keeps_key: bool,
}

impl SinkEncoder {
    pub fn new(sink: Arc<Source>, keeps_key: bool) -> Self {
        SinkEncoder { sink, keeps_key }
    }

    pub fn sink(&self) -> &Arc<Source> {
        &self.sink
    }

    /// Encodes every row of `batch` (columns named as the sink's) and hands the records to
    /// `producer`. Rows whose timestamp cannot be had are skipped and returned as errors.
    pub fn write(&self, batch: &TimedBatch, producer: &mut Producer) -> Result<Vec<String>, FormatError> {
        let rows = &batch.rows;
        let key_columns = self.columns_for(self.sink.key_codec.as_ref(), rows)?;
        let mut keys = self.sink.key_codec.encode(&key_columns)?;
        // A passed-through key of several columns, all null, was no key (null in, null out).
        if self.keeps_key && key_columns.num_columns() > 1 {
            for (row, key) in keys.iter_mut().enumerate() {
                if key_columns.columns().iter().all(|c| c.is_null(row)) {
                    *key = None;
                }
            }
        }
        let values = self.sink.value_codec.encode(&self.columns_for(self.sink.value_codec.as_ref(), rows)?)?;
        let (timestamps, mut errors) = match &self.sink.timestamp_column {
            Some(_) => {
                let (times, bad) = event_times(&self.sink, rows)?;
                (times, bad.into_iter().map(|(_, reason)| reason).collect())
            }
            None => (batch.timestamps_ms.clone(), Vec::new()),
        };
        let timestamps = timestamps
            .as_any()
            .downcast_ref::<Int64Array>()
            .ok_or_else(|| FormatError("event times are not BIGINT".into()))?;
        for (row, (key, mut value)) in keys.into_iter().zip(values).enumerate() {
            if timestamps.is_null(row) {
                continue;
            }
            if timestamps.value(row) < 0 {
                // Kafka takes no negative timestamps: the row is dropped, as ksqlDB drops it.
                errors.push(format!("the timestamp {} is negative", timestamps.value(row)));
                continue;
            }
            if batch.tombstones.as_ref().is_some_and(|t| t.value(row)) {
                value = None;
            }
            // A windowed sink's key ends with the window start, big-endian, as ksqlDB's
            // time-windowed keys do.
            // A session window's key carries its end, then its start.
            let key = match (&batch.windows, self.sink.window_key_bytes()) {
                (Some((starts, ends)), bytes @ (8 | 16)) => {
                    let long = |a: &ArrayRef| a.as_primitive::<datafusion::arrow::datatypes::Int64Type>().value(row);
                    let mut key = key.map(Vec::from).unwrap_or_default();
                    if bytes == 16 {
                        key.extend_from_slice(&long(ends).to_be_bytes());
                    }
                    key.extend_from_slice(&long(starts).to_be_bytes());
                    Some(Bytes::from(key))
                }
                _ => key,
            };
            let record = NewRecord::new(timestamps.value(row), key, value);
            if let Err(e) = producer.send(record, None) {
                errors.push(e.to_string());
            }
        }
        Ok(errors)
    }

    /// The columns of `codec`'s schema taken from `rows` by name (cast where the types
    /// differ, null where missing).
    fn columns_for(&self, codec: &dyn Codec, rows: &RecordBatch) -> Result<RecordBatch, FormatError> {
        let columns = codec
            .schema()
            .fields()
            .iter()
            .map(|field| match rows.column_by_name(field.name()) {
                Some(column) if column.data_type() == field.data_type() => Ok(column.clone()),
                Some(column) => cast(column, field.data_type()).map_err(FormatError::from),
                None => Ok(new_null_array(field.data_type(), rows.num_rows())),
            })
            .collect::<Result<Vec<ArrayRef>, FormatError>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(rows.num_rows()));
        Ok(RecordBatch::try_new_with_options(codec.schema().clone(), columns, &options)?)
    }
}
