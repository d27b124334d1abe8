//! Reading a source: topic records decoded into Arrow batches of the source's row schema.

use std::sync::Arc;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Int32Array, Int64Array, ListArray, RecordBatch, StringArray,
    StructArray,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::catalog::{ColumnRole, Source};
use crate::format::{Decoded, FormatError};
use crate::log::Record;

/// The pseudo columns every row carries, after the source's columns.
pub const PSEUDO_COLUMNS: [(&str, DataType); 3] =
    [("ROWTIME", DataType::Int64), ("ROWPARTITION", DataType::Int32), ("ROWOFFSET", DataType::Int64)];

/// The pseudo columns a windowed source's rows carry after the others: their window.
pub const WINDOW_COLUMNS: [&str; 2] = ["WINDOWSTART", "WINDOWEND"];

/// The source's columns, then the pseudo columns (a windowed source's window last).
pub fn row_schema(source: &Source) -> SchemaRef {
    let mut fields: Vec<Field> = source.schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.extend(PSEUDO_COLUMNS.iter().map(|(name, data_type)| Field::new(*name, data_type.clone(), false)));
    if source.window_key_bytes() > 0 {
        fields.extend(WINDOW_COLUMNS.iter().map(|name| Field::new(*name, DataType::Int64, true)));
    }
    Arc::new(Schema::new(fields))
}

/// Each record's window from the end of its windowed key: `[key][start]` for time windows
/// (the end is the start plus the size), `[key][end][start]` for session windows. Null
/// where the key is too short or absent.
fn windows_of(source: &Source, records: &[&Record]) -> (Int64Array, Int64Array) {
    let size = source.window().and_then(|(_, size)| size);
    let session = source.window_key_bytes() == 16;
    let long_at = |key: &[u8], from_end: usize| -> Option<i64> {
        let at = key.len().checked_sub(from_end)?;
        key.get(at..at + 8)?.try_into().ok().map(i64::from_be_bytes)
    };
    let (starts, ends): (Vec<Option<i64>>, Vec<Option<i64>>) = records
        .iter()
        .map(|r| {
            let key = r.key.as_deref().unwrap_or_default();
            if session {
                (long_at(key, 8), long_at(key, 16))
            } else {
                let start = long_at(key, 8);
                (start, start.zip(size).map(|(s, size)| s.saturating_add(size)))
            }
        })
        .unzip();
    (Int64Array::from(starts), Int64Array::from(ends))
}

/// Rows decoded from one partition's records, and the records that did not decode.
pub struct DecodedRows {
    pub batch: RecordBatch,
    /// Which rows came from records without a value (tombstones): their value columns are
    /// null. `None` when there are none.
    pub tombstones: Option<BooleanArray>,
    /// Offsets of records skipped, with why (for the processing log).
    pub errors: Vec<(u64, String)>,
}

/// How the error of a table's record without a key starts.
pub const MISSING_KEY: &str = "missing key";

/// Fetches ahead what decoding `records` will need from outside the process (a remote
/// registry's schemas for ids not met before), so that [`decode`], which is synchronous,
/// finds it cached instead of blocking its thread on a request.
pub async fn prefetch(source: &Source, records: &[Record]) {
    source.value_codec.prefetch(&mut records.iter().filter_map(|r| r.value.as_deref())).await;
    source.key_codec.prefetch(&mut records.iter().filter_map(|r| r.key.as_deref())).await;
}

/// Decodes records of one partition into rows of `row_schema(source)`. A record without a
/// key has null key columns; a record without a value (a tombstone) has null value columns
/// and is marked in [`DecodedRows::tombstones`]. `HEADERS` holds all headers, `HEADER('k')`
/// the value of the last header with key `k`.
pub fn decode(
    source: &Source,
    schema: &SchemaRef,
    partition: u32,
    records: &[Record],
) -> Result<DecodedRows, FormatError> {
    // A table's record without a key updates no row: it is dropped, as ksqlDB drops it.
    let keyed: Vec<Record>;
    let mut keyless: Vec<(u64, String)> = Vec::new();
    let records = if source.kind == crate::sql::ast::SourceKind::Table && records.iter().any(|r| r.key.is_none()) {
        keyless = records
            .iter()
            .filter(|r| r.key.is_none())
            .map(|r| (r.offset, format!("{MISSING_KEY}: a table's record needs a key")))
            .collect();
        keyed = records.iter().filter(|r| r.key.is_some()).cloned().collect();
        &keyed[..]
    } else {
        records
    };
    // Each side decodes only the records that have bytes for it.
    let values: Vec<&[u8]> = records.iter().filter_map(|r| r.value.as_deref()).collect();
    // A windowed key ends with its window: the key proper is what comes before.
    let window_bytes = source.window_key_bytes();
    let keys: Vec<&[u8]> = records
        .iter()
        .filter_map(|r| r.key.as_deref())
        .map(|key| &key[..key.len().saturating_sub(window_bytes)])
        .collect();
    let value_rows = source.value_codec.decode(&values)?;
    let key_rows = source.key_codec.decode(&keys)?;
    let mut errors: Vec<(u64, String)> = keyless;
    // The common case: every record has a value (no tombstone) and became a row, each
    // side's rows those of the records in order (or the key has no columns).
    let whole = |side: &Decoded, bytes: usize| side.errors.is_empty() && bytes == records.len();
    let keys_whole = whole(&key_rows, keys.len()) || (key_rows.errors.is_empty() && key_rows.batch.num_columns() == 0);
    let Matched { kept, value_take, key_take, mut tombstones } = if whole(&value_rows, values.len()) && keys_whole {
        Matched { kept: records.iter().collect(), value_take: None, key_take: None, tombstones: None }
    } else {
        match_rows(records, &value_rows, &key_rows, &mut errors)
    };

    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for column in &source.columns {
        let (rows, take_index) = match &column.role {
            ColumnRole::Key => (&key_rows.batch, &key_take),
            ColumnRole::Value => (&value_rows.batch, &value_take),
            ColumnRole::Headers => {
                columns.push(all_headers(&column.data_type, &kept)?);
                continue;
            }
            ColumnRole::Header(key) => {
                let values: Vec<Option<&[u8]>> = kept
                    .iter()
                    .map(|r| r.headers.iter().rev().find(|h| h.key == *key).and_then(|h| h.value.as_deref()))
                    .collect();
                columns.push(Arc::new(BinaryArray::from(values)));
                continue;
            }
        };
        let array = rows
            .column_by_name(&column.name)
            .ok_or_else(|| FormatError(format!("decoded rows lack column {}", column.name)))?;
        columns.push(match take_index {
            None => Arc::clone(array),
            Some(index) => take(array.as_ref(), index, None)?,
        });
    }
    columns.push(Arc::new(kept.iter().map(|r| r.timestamp_ms).collect::<Int64Array>()));
    columns.push(Arc::new(Int32Array::from(vec![partition as i32; kept.len()])));
    columns.push(Arc::new(kept.iter().map(|r| r.offset as i64).collect::<Int64Array>()));
    if window_bytes > 0 {
        let (starts, ends) = windows_of(source, &kept);
        columns.push(Arc::new(starts));
        columns.push(Arc::new(ends));
    }
    let mut batch = RecordBatch::try_new(schema.clone(), columns)?;
    if source.timestamp_column.is_some() {
        // Event time from the TIMESTAMP column; rows without one are dropped, as ksqlDB does.
        let (times, bad) = event_times(source, &batch)?;
        errors.extend(bad.iter().map(|(row, reason)| (kept[*row].offset, reason.clone())));
        let row_time = schema.index_of("ROWTIME")?;
        let mut columns = batch.columns().to_vec();
        columns[row_time] = times.clone();
        if !bad.is_empty() {
            // Filtered before the batch is made: ROWTIME is never null in a batch.
            let keep = datafusion::arrow::compute::is_not_null(&times)?;
            columns =
                columns.iter().map(|c| datafusion::arrow::compute::filter(c, &keep)).collect::<Result<Vec<_>, _>>()?;
            tombstones = match tombstones {
                Some(t) => datafusion::arrow::compute::filter(&t, &keep)?.as_boolean_opt().cloned(),
                None => None,
            };
        }
        batch = RecordBatch::try_new(schema.clone(), columns)?;
    }
    errors.sort_by_key(|(offset, _)| *offset);
    Ok(DecodedRows { batch, tombstones, errors })
}

/// Which records became rows, and where each row's columns are in each side's batch.
struct Matched<'r> {
    kept: Vec<&'r Record>,
    /// The rows of the value side's batch to take, one per kept record (null: no value);
    /// `None` when they are that batch's rows as they are.
    value_take: Option<Int32Array>,
    /// As `value_take`, for the key side.
    key_take: Option<Int32Array>,
    /// Which kept records are tombstones; `None` when none is.
    tombstones: Option<BooleanArray>,
}

/// Matches the records with the rows each side decoded from them, when some had no bytes
/// for a side or did not decode (those are noted in `errors` and dropped).
fn match_rows<'r>(
    records: &'r [Record],
    value_rows: &Decoded,
    key_rows: &Decoded,
    errors: &mut Vec<(u64, String)>,
) -> Matched<'r> {
    let with_value: Vec<usize> = (0..records.len()).filter(|i| records[*i].value.is_some()).collect();
    let with_key: Vec<usize> = (0..records.len()).filter(|i| records[*i].key.is_some()).collect();
    // Errors name the record by offset; a record either side failed on is dropped.
    errors.extend(value_rows.errors.iter().map(|(i, e)| (records[with_value[*i]].offset, format!("value: {e}"))));
    errors.extend(key_rows.errors.iter().map(|(i, e)| (records[with_key[*i]].offset, format!("key: {e}"))));
    // Per record: the row of each side's batch it became (None: no bytes, so nulls).
    let side_rows = |present: &[usize], good: Vec<usize>| -> Vec<Option<Option<i32>>> {
        let mut rows = vec![Some(None); records.len()];
        let mut next_row = 0i32;
        let mut good = good.into_iter().peekable();
        for (position, record) in present.iter().enumerate() {
            if good.peek() == Some(&position) {
                good.next();
                rows[*record] = Some(Some(next_row));
                next_row += 1;
            } else {
                rows[*record] = None; // did not decode
            }
        }
        rows
    };
    let value_at = side_rows(&with_value, value_rows.rows(with_value.len()));
    let key_at = side_rows(&with_key, key_rows.rows(with_key.len()));
    let both: Vec<usize> = (0..records.len()).filter(|i| value_at[*i].is_some() && key_at[*i].is_some()).collect();
    // None when each row is its side's row of the same number: no copy is needed.
    let take_of = |at: &[Option<Option<i32>>], rows: &RecordBatch| {
        let take = Int32Array::from(both.iter().map(|i| at[*i].flatten()).collect::<Vec<_>>());
        let same = take.len() == rows.num_rows()
            && take.null_count() == 0
            && take.values().iter().enumerate().all(|(i, r)| *r as usize == i);
        (!same).then_some(take)
    };
    let (value_take, key_take) = (take_of(&value_at, &value_rows.batch), take_of(&key_at, &key_rows.batch));
    let tombstones = both
        .iter()
        .any(|i| records[*i].value.is_none())
        .then(|| BooleanArray::from(both.iter().map(|i| records[*i].value.is_none()).collect::<Vec<_>>()));
    Matched { kept: both.iter().map(|i| &records[*i]).collect(), value_take, key_take, tombstones }
}

/// The event time of each row from `source`'s `TIMESTAMP` column (BIGINT milliseconds, a
/// TIMESTAMP, or a string in `TIMESTAMP_FORMAT`): an Int64 array, null where the row has
/// none, and those rows with why.
pub fn event_times(source: &Source, rows: &RecordBatch) -> Result<(ArrayRef, Vec<(usize, String)>), FormatError> {
    use datafusion::arrow::array::Array;
    use datafusion::arrow::compute::cast;
    let name = source.timestamp_column.as_deref().unwrap_or("ROWTIME");
    let column = rows.column_by_name(name).ok_or_else(|| FormatError(format!("no column {name}")))?;
    // A negative event time is invalid too (Kafka Streams skips such records).
    let valid = |t: &i64| *t >= 0;
    let times: Int64Array = match column.data_type() {
        DataType::Utf8 => {
            let pattern = source.timestamp_format.as_deref().unwrap_or("yyyy-MM-dd'T'HH:mm:ss.SSS");
            let format = super::time_format::TimeFormat::try_new(pattern).map_err(FormatError)?;
            let strings =
                column.as_any().downcast_ref::<StringArray>().ok_or_else(|| FormatError("not a string".into()))?;
            strings.iter().map(|s| s.and_then(|s| format.parse_millis(s)).filter(valid)).collect()
        }
        data_type => {
            let millis = match data_type {
                DataType::Timestamp(..) => cast(
                    &cast(column, &DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Millisecond, None))?,
                    &DataType::Int64,
                )?,
                _ => cast(column, &DataType::Int64)?,
            };
            let millis = millis.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
            match millis.values().iter().all(valid) {
                true => millis.clone(),
                false => millis.iter().map(|t| t.filter(valid)).collect(),
            }
        }
    };
    if times.null_count() == 0 {
        return Ok((Arc::new(times), Vec::new()));
    }
    let errors = (0..times.len())
        .filter(|row| times.is_null(*row))
        .map(|row| {
            let reason = if column.is_null(row) {
                format!("the timestamp column {name} is null")
            } else {
                format!("the timestamp column {name} is not a time (or is negative)")
            };
            (row, reason)
        })
        .collect();
    Ok((Arc::new(times), errors))
}

/// A `HEADERS` column: every header of each record, in order, as
/// `ARRAY<STRUCT<KEY STRING, VALUE BYTES>>` (an empty array when there are none, never null).
fn all_headers(data_type: &DataType, rows: &[&Record]) -> Result<ArrayRef, FormatError> {
    let DataType::List(item) = data_type else {
        return Err(FormatError(format!("a HEADERS column is an ARRAY, not {data_type}")));
    };
    let DataType::Struct(fields) = item.data_type() else {
        return Err(FormatError(format!("a HEADERS column holds STRUCTs, not {}", item.data_type())));
    };
    // Collected first: arrow's builders from iterators need exact sizes, which flat_map lacks.
    let headers: Vec<&crate::log::Header> = rows.iter().flat_map(|r| r.headers.iter()).collect();
    let keys: ArrayRef = Arc::new(StringArray::from(headers.iter().map(|h| h.key.as_str()).collect::<Vec<_>>()));
    let values: ArrayRef = Arc::new(BinaryArray::from(headers.iter().map(|h| h.value.as_deref()).collect::<Vec<_>>()));
    let entries = StructArray::try_new(fields.clone(), vec![keys, values], None)?;
    let offsets = OffsetBuffer::from_lengths(rows.iter().map(|r| r.headers.len()));
    Ok(Arc::new(ListArray::try_new(item.clone(), offsets, Arc::new(entries), None)?))
}
