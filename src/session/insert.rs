//! `INSERT INTO … VALUES`.

use super::*;

impl Session {
    /// `INSERT INTO s [(columns)] VALUES (…)`: evaluates the values with DataFusion, casts
    /// them to the columns' types, encodes key and value in the source's formats and appends
    /// the record on the partition Kafka's partitioner picks for the key bytes. `ROWTIME`
    /// among the columns sets the record's timestamp.
    pub(super) async fn insert_values(&self, insert: &crate::sql::ast::InsertValues) -> Result<(), SessionError> {
        use datafusion::arrow::array::{Array, ArrayRef, Int64Array, RecordBatch, RecordBatchOptions, new_null_array};
        use datafusion::arrow::compute::{CastOptions, cast_with_options};
        use datafusion::arrow::datatypes::DataType;

        let name = source_name(&insert.target);
        let source = self
            .catalog
            .source(&name)
            .cloned()
            .ok_or_else(|| refusal(format!("Cannot insert values into an unknown stream/table: {name}")))?;
        if source.read_only {
            return Err(refusal(format!(
                "Cannot insert values into read-only {}: {name}",
                source.kind.keyword().to_lowercase()
            )));
        }
        let targets: Vec<String> = if insert.columns.is_empty() {
            source
                .columns
                .iter()
                .filter(|c| matches!(c.role, ColumnRole::Key | ColumnRole::Value))
                .map(|c| c.name.clone())
                .collect()
        } else {
            insert.columns.iter().map(resolved_name).collect()
        };
        if targets.len() != insert.values.len() {
            let got: Vec<String> = insert.values.iter().map(|v| v.to_string()).collect();
            return Err(refusal(format!(
                "Expected a value for each column. Expected Columns: [{}]. Got [{}]",
                targets.join(", "),
                got.join(", ")
            )));
        }
        // Evaluate every value in one row with DataFusion (literals, arithmetic, functions).
        // ksqlDB's constructors (`STRUCT(a := 1)`, `MAP('k' := v)`) in DataFusion's terms.
        let mut values = insert.values.clone();
        for value in values.iter_mut() {
            crate::engine::plan::normalise_expression(value);
            crate::engine::rewrite::rewrite_constructors(value).map_err(|e| refusal(e.0))?;
        }
        let projection: Vec<String> = values.iter().enumerate().map(|(i, v)| format!("{v} AS v{i}")).collect();
        let select = format!("SELECT {}", projection.join(", "));
        let evaluation = async {
            let context = datafusion::prelude::SessionContext::new();
            crate::engine::udf::register(&context);
            let frame = context.sql(&select).await?;
            frame.collect().await
        };
        let batches = evaluation.await.map_err(|e| refusal(format!("Failed to evaluate the values: {e}")))?;
        let row = batches
            .into_iter()
            .find(|b| b.num_rows() == 1)
            .ok_or_else(|| refusal("Failed to evaluate the values: no row".into()))?;

        let strict = CastOptions { safe: false, ..Default::default() };
        let mut timestamp_ms = crate::log::record::now_ms();
        let mut values: BTreeMap<String, ArrayRef> = BTreeMap::new();
        for (i, target) in targets.iter().enumerate() {
            let given = row.column(i);
            if target == "ROWTIME" {
                let as_millis = cast_with_options(given, &DataType::Int64, &strict)
                    .map_err(|_| refusal(format!("ROWTIME must be a BIGINT, got {}", given.data_type())))?;
                let millis = as_millis.as_any().downcast_ref::<Int64Array>().filter(|a| !a.is_null(0));
                timestamp_ms = millis.map(|a| a.value(0)).ok_or_else(|| refusal("ROWTIME cannot be null".into()))?;
                continue;
            }
            let column = source
                .columns
                .iter()
                .find(|c| c.name == *target)
                .ok_or_else(|| refusal(format!("Column name {target} does not exist.")))?;
            if !matches!(column.role, ColumnRole::Key | ColumnRole::Value) {
                return Err(refusal(format!("Cannot insert into HEADER columns: {target}")));
            }
            let typed = cast_with_options(given, &column.data_type, &strict).map_err(|_| {
                refusal(format!("Expected type {} for field {target} but got {}", column.sql_type, insert.values[i]))
            })?;
            if values.insert(target.clone(), typed).is_some() {
                return Err(refusal(format!("Column {target} is given more than once")));
            }
        }
        let one_row = |codec: &crate::format::Codec| -> Result<RecordBatch, SessionError> {
            let columns: Vec<ArrayRef> = codec
                .schema()
                .fields()
                .iter()
                .map(|f| values.get(f.name()).cloned().unwrap_or_else(|| new_null_array(f.data_type(), 1)))
                .collect();
            RecordBatch::try_new_with_options(
                codec.schema().clone(),
                columns,
                &RecordBatchOptions::new().with_row_count(Some(1)),
            )
            .map_err(|e| refusal(e.to_string()))
        };
        let encode = |codec: &crate::format::Codec| -> Result<Option<Bytes>, SessionError> {
            let mut encoded = codec.encode(&one_row(codec)?).map_err(|e| refusal(e.0))?;
            Ok(encoded.pop().flatten().map(Bytes::from))
        };
        let key = encode(&source.key_codec)?;
        let value = encode(&source.value_codec)?;
        let mut producer = crate::log::Producer::new(Arc::clone(&self.log), &source.topic).await?;
        producer.send(NewRecord::new(timestamp_ms, key, value), None)?;
        producer.flush().await?;
        Ok(())
    }
}
