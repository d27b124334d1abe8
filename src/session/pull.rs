//! Pull queries: `SELECT … FROM t [WHERE …] [LIMIT n]` without `EMIT CHANGES`, answered at
//! once from the source's current state and ended.
//!
//! A table's state is its changelog topic read to the end, the latest row per key (a
//! tombstone deletes the key); a stream's is every row. The query is then the same filter
//! and projection a push query runs, over that state as one batch; so any WHERE works (ksqlDB
//! allows key lookups only, without `ksql.query.pull.table.scan.enabled`). The state is read
//! from the topic at each query: a store kept by the running queries is issue 4's to come.

use datafusion::arrow::array::{RecordBatch, UInt32Array};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

use super::push::take_limit;
use super::*;
use crate::engine::plan::StatelessPlan;
use crate::engine::source::{decode, row_schema};
use crate::sql::ast::StreamingQuery;

/// Bytes asked of the log per read while materializing.
const FETCH_BYTES: usize = 1024 * 1024;

impl Session {
    pub(super) async fn pull_query(&self, query: &StreamingQuery) -> Result<StatementResult, SessionError> {
        if query.window.is_some() || !query.partition_by.is_empty() {
            return Err(refusal("A pull query has no WINDOW or PARTITION BY clause".into()));
        }
        let mut query = query.clone();
        let limit = take_limit(&mut query)?;
        let source = self.query_source(&query)?;
        let schema = row_schema(&source);
        let star: Vec<String> = source.columns.iter().map(|c| c.name.clone()).collect();
        let plan =
            StatelessPlan::try_new(&query, &source.name, schema.clone(), &star).await.map_err(|e| refusal(e.0))?;
        if self.until_idle {
            // What the persistent queries will write from the input present is part of it.
            self.wait_until_idle().await?;
        }
        let state = self.current_rows(&source, &schema).await?;
        let rows = plan.apply(&state).map_err(|e| refusal(e.0))?;
        let shown = limit.map_or(rows.num_rows(), |n| rows.num_rows().min(n as usize));
        let options = FormatOptions::default().with_null("null");
        let formatters = rows
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| refusal(e.to_string()))?;
        let table = (0..shown).map(|row| formatters.iter().map(|f| f.value(row).to_string()).collect()).collect();
        Ok(StatementResult::Table {
            title: None,
            columns: rows.schema().fields().iter().map(|f| f.name().clone()).collect(),
            rows: table,
        })
    }

    /// The source's rows now: a table's latest row per key, a stream's every row.
    async fn current_rows(
        &self,
        source: &crate::catalog::Source,
        schema: &datafusion::arrow::datatypes::SchemaRef,
    ) -> Result<RecordBatch, SessionError> {
        let mut pieces: Vec<RecordBatch> = Vec::new();
        let mut tombstones: Vec<bool> = Vec::new();
        // Each row's record key as written (a windowed key includes its window), by
        // partition and offset: what identifies a table's row.
        let mut keys: std::collections::HashMap<(i32, i64), Option<bytes::Bytes>> = std::collections::HashMap::new();
        for partition in 0..self.log.partition_count(&source.topic).await? {
            let end = self.log.latest_offset(&source.topic, partition).await?;
            let mut offset = self.log.earliest_offset(&source.topic, partition).await?;
            while offset < end {
                let fetch = self.log.read(&source.topic, partition, offset, FETCH_BYTES).await?;
                let Some(last) = fetch.records.last() else { break };
                offset = last.offset + 1;
                if source.kind == SourceKind::Table {
                    keys.extend(fetch.records.iter().map(|r| ((partition as i32, r.offset as i64), r.key.clone())));
                }
                let rows = decode(source, schema, partition, &fetch.records).map_err(|e| refusal(e.0))?;
                let marks = rows.tombstones.as_ref();
                tombstones.extend((0..rows.batch.num_rows()).map(|i| marks.is_some_and(|t| t.value(i))));
                pieces.push(rows.batch);
            }
        }
        let all = datafusion::arrow::compute::concat_batches(schema, &pieces).map_err(|e| refusal(e.to_string()))?;
        let keep: Vec<u32> = match source.kind {
            SourceKind::Stream => (0..all.num_rows() as u32).filter(|i| !tombstones[*i as usize]).collect(),
            SourceKind::Table => latest_per_key(&all, &tombstones, &keys)?,
        };
        datafusion::arrow::compute::take_record_batch(&all, &UInt32Array::from(keep))
            .map_err(|e| refusal(e.to_string()))
    }
}

/// The row numbers of each key's latest row (none for a key whose latest is a tombstone),
/// in the order keys first appeared; a row's key is its record's key bytes.
fn latest_per_key(
    rows: &RecordBatch,
    tombstones: &[bool],
    keys: &std::collections::HashMap<(i32, i64), Option<bytes::Bytes>>,
) -> Result<Vec<u32>, SessionError> {
    use datafusion::arrow::array::AsArray;
    let column = |name: &str| rows.column_by_name(name).cloned().ok_or_else(|| refusal(format!("no {name} column")));
    let (partitions, offsets) = (column("ROWPARTITION")?, column("ROWOFFSET")?);
    let partitions = partitions.as_primitive::<datafusion::arrow::datatypes::Int32Type>();
    let offsets = offsets.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
    let mut order: Vec<Option<bytes::Bytes>> = Vec::new();
    let mut latest: std::collections::HashMap<Option<bytes::Bytes>, Option<u32>> = std::collections::HashMap::new();
    for (i, deleted) in tombstones.iter().enumerate().take(rows.num_rows()) {
        let key = keys.get(&(partitions.value(i), offsets.value(i))).cloned().flatten();
        let value = (!deleted).then_some(i as u32);
        if latest.insert(key.clone(), value).is_none() {
            order.push(key);
        }
    }
    Ok(order.iter().filter_map(|k| latest.get(k).copied().flatten()).collect())
}
