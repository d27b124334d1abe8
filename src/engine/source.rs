//! Reading a source: topic records decoded into Arrow batches of the source's row schema.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BinaryArray, BooleanArray, Int32Array, Int64Array, ListArray, RecordBatch, StringArray, StructArray,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::{nullif, take};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::catalog::{ColumnRole, Source};
use crate::format::FormatError;
use crate::log::Record;

/// The pseudo columns every row carries, after the source's columns.
pub const PSEUDO_COLUMNS: [(&str, DataType); 3] =
    [("ROWTIME", DataType::Int64), ("ROWPARTITION", DataType::Int32), ("ROWOFFSET", DataType::Int64)];

/// The source's columns, then the pseudo columns.
pub fn row_schema(source: &Source) -> SchemaRef {
    let mut fields: Vec<Field> = source.schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.extend(PSEUDO_COLUMNS.iter().map(|(name, data_type)| Field::new(*name, data_type.clone(), false)));
    Arc::new(Schema::new(fields))
}

/// Rows decoded from one partition's records, and the records that did not decode.
pub struct DecodedRows {
    pub batch: RecordBatch,
    /// Offsets of records skipped, with why (for the processing log).
    pub errors: Vec<(u64, String)>,
}

/// Decodes records of one partition into rows of `row_schema(source)`. Tombstones (null
/// values) are skipped, as ksqlDB skips them for streams. `HEADERS` holds all headers,
/// `HEADER('k')` the value of the last header with key `k`.
pub fn decode(
    source: &Source,
    schema: &SchemaRef,
    partition: u32,
    records: &[Record],
) -> Result<DecodedRows, FormatError> {
    let live: Vec<&Record> = records.iter().filter(|r| r.value.is_some()).collect();
    let values: Vec<&[u8]> = live.iter().map(|r| r.value.as_deref().unwrap_or_default()).collect();
    let keys: Vec<&[u8]> = live.iter().map(|r| r.key.as_deref().unwrap_or_default()).collect();
    let value_rows = source.value_codec.decode(&values)?;
    let key_rows = source.key_codec.decode(&keys)?;

    // Keep the records both sides decoded; errors name the record by offset.
    let mut errors: Vec<(u64, String)> = Vec::new();
    let value_good = value_rows.rows(live.len());
    let key_good = key_rows.rows(live.len());
    errors.extend(value_rows.errors.iter().map(|(i, e)| (live[*i].offset, format!("value: {e}"))));
    errors.extend(key_rows.errors.iter().map(|(i, e)| (live[*i].offset, format!("key: {e}"))));
    let both: Vec<usize> = value_good.iter().copied().filter(|i| key_good.binary_search(i).is_ok()).collect();
    let position = |good: &[usize], i: usize| good.binary_search(&i).unwrap_or_default() as u32;
    let value_take = Int32Array::from(both.iter().map(|i| position(&value_good, *i) as i32).collect::<Vec<_>>());
    let key_take = Int32Array::from(both.iter().map(|i| position(&key_good, *i) as i32).collect::<Vec<_>>());

    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for column in &source.columns {
        let (rows, take_index) = match &column.role {
            ColumnRole::Key => (&key_rows.batch, &key_take),
            ColumnRole::Value => (&value_rows.batch, &value_take),
            ColumnRole::Headers => {
                let rows: Vec<&Record> = both.iter().map(|i| live[*i]).collect();
                columns.push(all_headers(&column.data_type, &rows)?);
                continue;
            }
            ColumnRole::Header(key) => {
                let values: Vec<Option<&[u8]>> = both
                    .iter()
                    .map(|i| live[*i].headers.iter().rev().find(|h| h.key == *key).and_then(|h| h.value.as_deref()))
                    .collect();
                columns.push(Arc::new(BinaryArray::from(values)));
                continue;
            }
        };
        let array = rows
            .column_by_name(&column.name)
            .ok_or_else(|| FormatError(format!("decoded rows lack column {}", column.name)))?;
        let taken = take(array.as_ref(), take_index, None)?;
        // A record without a key has a null key column (the codec saw empty bytes).
        let taken = if column.role == ColumnRole::Key {
            let keyless = BooleanArray::from(both.iter().map(|i| live[*i].key.is_none()).collect::<Vec<_>>());
            nullif(&taken, &keyless)?
        } else {
            taken
        };
        columns.push(taken);
    }
    columns.push(Arc::new(Int64Array::from(both.iter().map(|i| live[*i].timestamp_ms).collect::<Vec<_>>())));
    columns.push(Arc::new(Int32Array::from(vec![partition as i32; both.len()])));
    columns.push(Arc::new(Int64Array::from(both.iter().map(|i| live[*i].offset as i64).collect::<Vec<_>>())));
    let mut batch = RecordBatch::try_new(schema.clone(), columns)?;
    if source.timestamp_column.is_some() {
        // Event time from the TIMESTAMP column; rows without one are dropped, as ksqlDB does.
        let (times, bad) = event_times(source, &batch)?;
        errors.extend(bad.iter().map(|(row, reason)| (live[both[*row]].offset, reason.clone())));
        let row_time = schema.index_of("ROWTIME")?;
        let mut columns = batch.columns().to_vec();
        columns[row_time] = times.clone();
        batch = RecordBatch::try_new(schema.clone(), columns)?;
        if !bad.is_empty() {
            let keep = datafusion::arrow::compute::is_not_null(&times)?;
            batch = datafusion::arrow::compute::filter_record_batch(&batch, &keep)?;
        }
    }
    errors.sort_by_key(|(offset, _)| *offset);
    Ok(DecodedRows { batch, errors })
}

/// The event time of each row from `source`'s `TIMESTAMP` column (BIGINT milliseconds, a
/// TIMESTAMP, or a string in `TIMESTAMP_FORMAT`): an Int64 array, null where the row has
/// none, and those rows with why.
pub fn event_times(source: &Source, rows: &RecordBatch) -> Result<(ArrayRef, Vec<(usize, String)>), FormatError> {
    use datafusion::arrow::array::Array;
    use datafusion::arrow::compute::cast;
    let name = source.timestamp_column.as_deref().unwrap_or("ROWTIME");
    let column = rows.column_by_name(name).ok_or_else(|| FormatError(format!("no column {name}")))?;
    let times: ArrayRef = match column.data_type() {
        DataType::Utf8 => {
            let pattern = source.timestamp_format.as_deref().unwrap_or("yyyy-MM-dd'T'HH:mm:ss.SSS");
            let format = super::time_format::TimeFormat::try_new(pattern).map_err(FormatError)?;
            let strings =
                column.as_any().downcast_ref::<StringArray>().ok_or_else(|| FormatError("not a string".into()))?;
            Arc::new(strings.iter().map(|s| s.and_then(|s| format.parse_millis(s))).collect::<Int64Array>())
        }
        DataType::Timestamp(..) => cast(
            &cast(column, &DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Millisecond, None))?,
            &DataType::Int64,
        )?,
        _ => cast(column, &DataType::Int64)?,
    };
    let errors = (0..times.len())
        .filter(|row| times.is_null(*row))
        .map(|row| {
            let reason = if column.is_null(row) {
                format!("the timestamp column {name} is null")
            } else {
                format!("the timestamp column {name} does not parse as a time")
            };
            (row, reason)
        })
        .collect();
    Ok((times, errors))
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
