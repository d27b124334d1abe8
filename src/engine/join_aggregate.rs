//! GROUP BY over a join: the join runs as any join does, producing "bridge" rows that hold
//! the columns the aggregation reads (each `alias.col` as the column `ALIAS_COL`, as ksqlDB
//! names a join's columns), the join key, and `ROWTIME`; the aggregation is then planned and
//! run over those rows as over a stream's (or, when every input is a table, a table's: each
//! change of a joined row retracts its previous version, matched by the join key).
//!
//! [`crate::planner::join_aggregate`] cuts the query in two; here are the bridge rows' schema
//! and the operator stamping their `ROWTIME`.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::operator::{Operator, TimedBatch};
use super::plan::PlanError;

/// The schema of the bridge rows: the join's output, then `ROWTIME`.
pub fn bridge_schema(join_output: &SchemaRef) -> SchemaRef {
    let mut fields: Vec<Field> = join_output.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("ROWTIME", DataType::Int64, false));
    Arc::new(Schema::new(fields))
}

/// Adds the rows' times as the column `ROWTIME`: the join's output becomes bridge rows.
pub struct StampRowTime {
    schema: SchemaRef,
}

impl StampRowTime {
    pub fn new(bridge: SchemaRef) -> Self {
        StampRowTime { schema: bridge }
    }
}

impl Operator for StampRowTime {
    fn process(&mut self, mut batch: TimedBatch, out: &mut Vec<TimedBatch>) -> Result<(), PlanError> {
        let mut columns = batch.rows.columns().to_vec();
        columns.push(Arc::clone(&batch.timestamps_ms));
        batch.rows = RecordBatch::try_new(Arc::clone(&self.schema), columns)?;
        out.push(batch);
        Ok(())
    }

    fn describe(&self) -> String {
        "ROWTIME from each joined row's time".into()
    }
}
