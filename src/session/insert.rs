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
        let source = self.catalog.source(&name).cloned().ok_or_else(|| {
            refusal(format!(
                "Cannot insert values into an unknown stream/table: `{name}`{}",
                self.catalog.alternatives(&name, None)
            ))
        })?;
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
        if let Some(pseudo) = targets.iter().find(|t| matches!(t.as_str(), "ROWPARTITION" | "ROWOFFSET")) {
            return Err(refusal(format!("Inserting into column `{pseudo}` is not allowed.")));
        }
        if !insert.columns.is_empty() && targets.len() != insert.values.len() {
            return Err(refusal(format!(
                "Failed to prepare statement: Expected number columns and values to match: {}, {}",
                targets.len(),
                insert.values.len()
            )));
        }
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
            crate::planner::query::normalise_expression(value);
            crate::planner::rewrite::rewrite_constructors(value).map_err(SessionError::from)?;
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
            let typed = insert_cast(given, &column.data_type, &strict).map_err(|_| {
                refusal(format!("Expected type {} for field {target} but got {}", column.sql_type, insert.values[i]))
            })?;
            if values.insert(target.clone(), typed).is_some() {
                return Err(refusal(format!("Column {target} is given more than once")));
            }
        }
        let one_row = |codec: &dyn crate::format::Codec| -> Result<RecordBatch, SessionError> {
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
        let encode = |codec: &dyn crate::format::Codec| -> Result<Option<Bytes>, SessionError> {
            let mut encoded = codec.encode(&one_row(codec)?).map_err(|e| refusal(e.0))?;
            Ok(encoded.pop().flatten())
        };
        let key = encode(source.key_codec.as_ref())?;
        let value = encode(source.value_codec.as_ref())?;
        let mut producer = crate::log::Producer::new(Arc::clone(&self.log), &source.topic).await?;
        producer.send(NewRecord::new(timestamp_ms, key, value), None)?;
        producer.flush().await?;
        Ok(())
    }
}

/// A value given to `INSERT … VALUES` as a column's type. A STRUCT takes the fields it has by
/// name (ignoring case), its missing fields null and its unknown ones ignored, as ksqlDB
/// inserts a struct literal; anything else is cast.
fn insert_cast(
    given: &datafusion::arrow::array::ArrayRef,
    target: &datafusion::arrow::datatypes::DataType,
    options: &datafusion::arrow::compute::CastOptions,
) -> Result<datafusion::arrow::array::ArrayRef, datafusion::arrow::error::ArrowError> {
    use datafusion::arrow::array::{Array, new_null_array};
    use datafusion::arrow::compute::cast_with_options;
    use datafusion::arrow::datatypes::DataType;
    let (DataType::Struct(_), DataType::Struct(fields)) = (given.data_type(), target) else {
        return cast_with_options(given, target, options);
    };
    let given = given
        .as_any()
        .downcast_ref::<datafusion::arrow::array::StructArray>()
        .ok_or_else(|| datafusion::arrow::error::ArrowError::CastError("not a struct".into()))?;
    let names = given.fields();
    let children = fields
        .iter()
        .map(|field| {
            let found = names
                .iter()
                .position(|f| f.name() == field.name())
                .or_else(|| names.iter().position(|f| f.name().eq_ignore_ascii_case(field.name())));
            match found {
                Some(i) => insert_cast(given.column(i), field.data_type(), options),
                None => Ok(new_null_array(field.data_type(), given.len())),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Arc::new(datafusion::arrow::array::StructArray::try_new(fields.clone(), children, given.nulls().cloned())?))
}

impl Session {
    /// The stream `/inserts-stream` names (case-insensitive unless back-quoted): it must
    /// exist and be writable.
    pub fn insert_target(&self, target: &str) -> Result<Arc<crate::catalog::Source>, SessionError> {
        let name = match target.strip_prefix('`').and_then(|t| t.strip_suffix('`')) {
            Some(quoted) => quoted.to_string(),
            None => target.to_uppercase(),
        };
        let source = self
            .catalog
            .source(&name)
            .cloned()
            .ok_or_else(|| refusal(format!("Cannot insert values into an unknown stream: {name}")))?;
        if source.kind != SourceKind::Stream || source.read_only {
            return Err(refusal(format!("Cannot insert into {name}: rows can be streamed into streams only")));
        }
        Ok(source)
    }

    /// Inserts rows given as JSON objects (`/inserts-stream`) into the stream `target`:
    /// each decoded by arrow-json into the stream's key and value columns (names matched
    /// exactly, else upper-cased; `ROWTIME` sets the timestamp), encoded in the stream's
    /// formats and appended. Returns, per row, whether it was inserted; the whole call fails
    /// only when the stream cannot be written at all.
    pub async fn insert_json_rows(
        &self,
        target: &str,
        rows: &[serde_json::Map<String, serde_json::Value>],
    ) -> Result<Vec<Result<(), String>>, SessionError> {
        use datafusion::arrow::array::{Array, ArrayRef, Int64Array, RecordBatch, RecordBatchOptions, new_null_array};
        use datafusion::arrow::datatypes::{DataType, Field, Schema};

        let source = self.insert_target(target)?;
        let name = &source.name;
        let mut fields: Vec<Field> = source
            .columns
            .iter()
            .filter(|c| matches!(c.role, ColumnRole::Key | ColumnRole::Value))
            .map(|c| Field::new(&c.name, c.data_type.clone(), true))
            .collect();
        fields.push(Field::new("ROWTIME", DataType::Int64, true));
        let schema = Arc::new(Schema::new(fields));
        let mut decoder = datafusion::arrow::json::ReaderBuilder::new(Arc::clone(&schema))
            .with_strict_mode(true)
            .build_decoder()
            .map_err(|e| refusal(e.to_string()))?;
        let mut outcomes = Vec::with_capacity(rows.len());
        let mut producer = crate::log::Producer::new(Arc::clone(&self.log), &source.topic).await?;
        for row in rows {
            // Names as written, else upper-cased (`{"pageid": …}` is PAGEID).
            let named: serde_json::Map<String, serde_json::Value> = row
                .iter()
                .map(|(k, v)| {
                    let k = if schema.index_of(k).is_ok() { k.clone() } else { k.to_uppercase() };
                    (k, v.clone())
                })
                .collect();
            let decoded = decoder.serialize(std::slice::from_ref(&named)).and_then(|()| decoder.flush());
            let batch = match decoded {
                Ok(Some(batch)) if batch.num_rows() == 1 => batch,
                Ok(_) => {
                    outcomes.push(Err("the row is not a JSON object".to_string()));
                    continue;
                }
                Err(e) => {
                    outcomes.push(Err(format!("Failed to insert values into '{name}'. {e}")));
                    // A decoder that failed may hold part of the row: the next row starts afresh.
                    decoder = datafusion::arrow::json::ReaderBuilder::new(Arc::clone(&schema))
                        .with_strict_mode(true)
                        .build_decoder()
                        .map_err(|e| refusal(e.to_string()))?;
                    continue;
                }
            };
            let timestamp_ms = batch
                .column(schema.fields().len() - 1)
                .as_any()
                .downcast_ref::<Int64Array>()
                .filter(|a| !a.is_null(0))
                .map_or_else(crate::log::record::now_ms, |a| a.value(0));
            let encode = |codec: &dyn crate::format::Codec| -> Result<Option<Bytes>, String> {
                let columns: Vec<ArrayRef> = codec
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| match batch.column_by_name(f.name()) {
                        Some(column) => column.clone(),
                        None => new_null_array(f.data_type(), 1),
                    })
                    .collect();
                let one = RecordBatch::try_new_with_options(
                    codec.schema().clone(),
                    columns,
                    &RecordBatchOptions::new().with_row_count(Some(1)),
                )
                .map_err(|e| e.to_string())?;
                let mut encoded = codec.encode(&one).map_err(|e| e.0)?;
                Ok(encoded.pop().flatten())
            };
            match encode(source.key_codec.as_ref()).and_then(|key| Ok((key, encode(source.value_codec.as_ref())?))) {
                Ok((key, value)) => {
                    producer.send(NewRecord::new(timestamp_ms, key, value), None)?;
                    outcomes.push(Ok(()));
                }
                Err(e) => outcomes.push(Err(e)),
            }
        }
        producer.flush().await?;
        Ok(outcomes)
    }
}
