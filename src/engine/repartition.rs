//! Repartitioning a join's side through an internal topic, as ksqlDB does.
//!
//! A stream joined on something other than its key is first written again, keyed by its join
//! expression, to an internal topic (`_eddy_query_<id>-Join-left-repartition`, after ksqlDB's
//! `…-repartition` topics), and the join reads that topic instead of the stream. The topic is
//! written by a query of its own, [`Rekey`] between the stream and the topic, which
//! checkpoints, recovers and is read exactly once like any query writing a topic; the join's
//! query owns it (it starts, stops and is terminated with the join).
//!
//! The topic's records are the stream's rows: every column in the value (its key columns and
//! header columns too, as JSON), the join key as the record key (in the join's key format),
//! the row's event time as the record timestamp. The join takes the key from the record key
//! ([`KEY_COLUMN`]) rather than computing it again.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch};
use datafusion::arrow::compute::{cast, filter_record_batch, not};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::physical_plan::PhysicalExpr;

use super::operator::{Operator, TimedBatch};
use super::plan::{PlanError, RowError, evaluate_isolating};
use crate::catalog::{Column, ColumnRole, Source};
use crate::format::{FormatError, FormatOptions, FormatRef, JSON, KAFKA, NONE};
use crate::sql::ast::SqlType;

/// The column of a repartitioned row that holds its join key (the record key).
pub const KEY_COLUMN: &str = "__EDDY_REPARTITION_KEY";

/// The name of the internal topic that repartitions a side of query `query_id`'s join, in
/// `context` (`Join-left`, `L_Join-right`, `Join` for a stream-table join's stream). A query
/// id from a quoted name may hold characters a topic name cannot: they become `_`.
pub fn topic_name(query_id: &str, context: &str) -> String {
    let id: String =
        query_id.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
    let name = format!("_eddy_query_{id}-{context}-repartition");
    // Kafka's limit, keeping the end that tells the topics of one query apart.
    match name.len().checked_sub(249) {
        Some(over) if over > 0 => name[over..].to_owned(),
        _ => name,
    }
}

/// The repartition topic of `original`, as a source: `original`'s columns, all in the value
/// (JSON), and the join key ([`KEY_COLUMN`], of `key_type`) as the key, in `key_format` where
/// that format can hold it (else JSON). Both what [`Rekey`]'s query writes and what the join
/// reads.
pub fn internal_source(
    original: &Source,
    topic: &str,
    key_type: &DataType,
    key_format: FormatRef,
) -> Result<Source, FormatError> {
    let sql_type = SqlType::from_arrow(key_type)
        .ok_or_else(|| FormatError(format!("a join key of type {key_type} cannot be repartitioned")))?;
    let mut columns: Vec<Column> =
        original.columns.iter().map(|c| Column { role: ColumnRole::Value, ..c.clone() }).collect();
    columns.push(Column { name: KEY_COLUMN.into(), sql_type, data_type: key_type.clone(), role: ColumnRole::Key });
    let fields = |role: &dyn Fn(&ColumnRole) -> bool| -> SchemaRef {
        let fields: Vec<Field> =
            columns.iter().filter(|c| role(&c.role)).map(|c| Field::new(&c.name, c.data_type.clone(), true)).collect();
        Arc::new(Schema::new(fields))
    };
    let key_schema = fields(&|r| *r == ColumnRole::Key);
    let bare = FormatOptions { wrap_single_value: false, ..FormatOptions::default() };
    let json = crate::format::builtin(JSON);
    let (key_format, key_codec) = match key_format.codec(key_schema.clone(), bare.clone()) {
        Ok(codec) if !key_format.is(NONE) => (key_format, codec),
        _ => (Arc::clone(&json), json.codec(key_schema, bare)?),
    };
    let value_codec = json.codec(
        fields(&|r| *r == ColumnRole::Value),
        FormatOptions { wrap_single_value: true, ..FormatOptions::default() },
    )?;
    Ok(Source {
        name: original.name.clone(),
        kind: original.kind,
        read_only: true,
        topic: topic.to_owned(),
        key_format,
        value_format: json,
        schema: fields(&|_| true),
        columns,
        timestamp_column: None,
        timestamp_format: None,
        properties: Default::default(),
        key_codec,
        value_codec,
        statement: String::new(),
    })
}

/// Adds each row's join key as [`KEY_COLUMN`]: the operator of a repartitioning query (its
/// sink, an [`internal_source`], writes the key as the record key). A stream's rows without
/// a value are dropped (they join nothing); a table's are its deletions, and are kept.
pub struct Rekey {
    /// The rows are a table's changelog.
    table: bool,
    key: Arc<dyn PhysicalExpr>,
    /// The schema `key` was planned over: the source's rows, maybe with more columns after
    /// them (a join's first side carries `ROWKEY`), which are null here.
    key_schema: SchemaRef,
    key_type: DataType,
    description: String,
    errors: Vec<RowError>,
}

impl Rekey {
    pub fn try_new(
        key: Arc<dyn PhysicalExpr>,
        key_schema: SchemaRef,
        table: bool,
        description: String,
    ) -> Result<Self, PlanError> {
        let key_type = key.data_type(&key_schema)?;
        Ok(Rekey { table, key, key_schema, key_type, description, errors: Vec::new() })
    }
}

impl Operator for Rekey {
    fn process(&mut self, batch: TimedBatch, out: &mut Vec<TimedBatch>) -> Result<(), PlanError> {
        let batch = match &batch.tombstones {
            Some(tombstones) if !self.table => {
                let keep = not(tombstones)?;
                TimedBatch {
                    rows: filter_record_batch(&batch.rows, &keep)?,
                    timestamps_ms: datafusion::arrow::compute::filter(&batch.timestamps_ms, &keep)?,
                    tombstones: None,
                    ..batch
                }
            }
            _ => batch,
        };
        let rows = &batch.rows;
        if rows.num_rows() == 0 {
            return Ok(());
        }
        let extra = self.key_schema.fields().len().saturating_sub(rows.num_columns());
        let mut columns: Vec<ArrayRef> = rows.columns().to_vec();
        columns.extend(
            self.key_schema.fields()[rows.num_columns()..]
                .iter()
                .take(extra)
                .map(|f| datafusion::arrow::array::new_null_array(f.data_type(), rows.num_rows())),
        );
        let keyed = RecordBatch::try_new(Arc::clone(&self.key_schema), columns)?;
        let key = evaluate_isolating(&self.key, &keyed, &mut self.errors)?;
        let key = if key.data_type() == &self.key_type { key } else { cast(&key, &self.key_type)? };
        let mut fields: Vec<Field> = rows.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new(KEY_COLUMN, self.key_type.clone(), true));
        let mut columns = rows.columns().to_vec();
        columns.push(key);
        let rows = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
        out.push(TimedBatch { rows, ..batch });
        Ok(())
    }

    fn describe(&self) -> String {
        self.description.clone()
    }

    fn take_errors(&mut self) -> Vec<RowError> {
        std::mem::take(&mut self.errors)
    }
}

/// Takes a repartitioned side's join key out of its rows: the rows as the side's source has
/// them, and the key; `None` for rows that were not repartitioned.
pub fn take_key(rows: &RecordBatch) -> Result<Option<(RecordBatch, ArrayRef)>, PlanError> {
    let Ok(at) = rows.schema().index_of(KEY_COLUMN) else { return Ok(None) };
    let mut columns = rows.columns().to_vec();
    let key = columns.remove(at);
    let mut fields: Vec<Field> = rows.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.remove(at);
    Ok(Some((RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?, key)))
}

/// The key format of a join of `left` (the first source) with `right`, which its repartition
/// topics are written in, as ksqlDB picks it: the left's, unless it has none (`NONE`): then
/// the right's, or KAFKA.
pub fn key_format(left: &Source, right: &Source) -> FormatRef {
    [&left.key_format, &right.key_format]
        .into_iter()
        .find(|f| !f.is(NONE))
        .map_or_else(|| crate::format::builtin(KAFKA), Arc::clone)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{AsArray, Int32Array, Int64Array, StringArray};
    use datafusion::arrow::datatypes::Int64Type;
    use datafusion::physical_expr::expressions::Column as ColumnExpr;

    fn source() -> Source {
        let sql = "CREATE STREAM views (user_id STRING KEY, page STRING, region_id INT) WITH (kafka_topic='views', \
                   value_format='JSON', partitions=1)";
        let crate::sql::Statement::CreateSource(create) = crate::sql::parse_one(sql).unwrap() else { panic!("{sql}") };
        crate::catalog::Catalog::default().plan_source(&create, sql.to_owned()).unwrap()
    }

    #[test]
    fn topic_names_are_valid_kafka_topic_names() {
        assert_eq!(topic_name("CSAS_OUT_2", "Join-left"), "_eddy_query_CSAS_OUT_2-Join-left-repartition");
        assert_eq!(topic_name("CSAS_my out_2", "Join"), "_eddy_query_CSAS_my_out_2-Join-repartition");
        let long = topic_name(&format!("CSAS_{}_2", "X".repeat(300)), "Join-right");
        assert_eq!(long.len(), 249);
        assert!(long.ends_with("X_2-Join-right-repartition"));
        assert!(crate::log::validate_topic_name(&long).is_ok());
    }

    #[test]
    fn the_topic_holds_every_column_in_the_value_and_the_join_key_as_the_key() {
        let views = source();
        let internal = internal_source(&views, "t", &DataType::Int32, key_format(&views, &views)).unwrap();
        assert_eq!(internal.key_format.name(), KAFKA);
        assert_eq!(internal.value_format.name(), JSON);
        let value: Vec<&str> = internal.value_codec.schema().fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(value, ["USER_ID", "PAGE", "REGION_ID"]);
        let key: Vec<&str> = internal.key_codec.schema().fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(key, [KEY_COLUMN]);
        // A key KAFKA cannot hold goes as JSON.
        let list = DataType::new_list(DataType::Int32, true);
        let json_key = internal_source(&views, "t", &list, crate::format::builtin(KAFKA)).unwrap().key_format;
        assert_eq!(json_key.name(), JSON);
    }

    #[test]
    fn rekey_adds_the_key_and_drops_rows_without_a_value() {
        let views = source();
        let schema = super::super::source::row_schema(&views);
        let rows = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(StringArray::from(vec!["a", "b", "c"])),
                Arc::new(StringArray::from(vec![Some("/x"), None, Some("/z")])),
                Arc::new(Int32Array::from(vec![Some(7), None, Some(9)])),
                Arc::new(Int64Array::from(vec![1, 2, 3])),
                Arc::new(Int32Array::from(vec![0, 0, 0])),
                Arc::new(Int64Array::from(vec![10, 11, 12])),
            ],
        )
        .unwrap();
        let batch = TimedBatch {
            timestamps_ms: Arc::clone(rows.column(3)),
            rows,
            tombstones: Some(vec![false, true, false].into()),
            windows: None,
            replay: false,
            input: 0,
        };
        let key: Arc<dyn PhysicalExpr> = Arc::new(ColumnExpr::new("REGION_ID", 2));
        // A table's rows without a value are its deletions: kept, still marked.
        let mut table = Rekey::try_new(Arc::clone(&key), Arc::clone(&schema), true, "rekey".into()).unwrap();
        let mut out = Vec::new();
        table.process(batch.clone(), &mut out).unwrap();
        assert_eq!(out[0].rows.num_rows(), 3);
        assert_eq!(out[0].tombstones, Some(vec![false, true, false].into()));
        let mut rekey = Rekey::try_new(key, schema, false, "rekey".into()).unwrap();
        let mut out = Vec::new();
        rekey.process(batch, &mut out).unwrap();
        let [batch] = out.as_slice() else { panic!("one batch") };
        assert_eq!(batch.rows.num_rows(), 2);
        assert!(batch.tombstones.is_none());
        assert_eq!(batch.timestamps_ms.as_primitive::<Int64Type>().values(), &[1, 3]);
        let (rows, key) = take_key(&batch.rows).unwrap().unwrap();
        assert_eq!(key.as_primitive::<datafusion::arrow::datatypes::Int32Type>().values(), &[7, 9]);
        assert_eq!(rows.schema().fields().len(), 6);
        assert!(take_key(&rows).unwrap().is_none());
    }
}
