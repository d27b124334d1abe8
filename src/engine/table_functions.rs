//! Table functions: `EXPLODE(array)` (a row per element) and `CUBE_EXPLODE(array)` (a row
//! per combination of the elements and nulls).
//!
//! They run between the filter and the projection, as in ksqlDB: each call in the
//! projection is replaced by a column `__TF_n`, the calls' arguments are evaluated on the
//! filtered rows, and every row is repeated once per element of its longest result (shorter
//! results are padded with null; a row whose results are all null or empty disappears). The
//! projection then reads `__TF_n` like any column.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, ListArray, RecordBatch, UInt32Array, new_null_array};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::sql::sqlparser::ast::Expr;

use super::plan::PlanError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Explode,
    CubeExplode,
}

/// One table function call found in the projection.
#[derive(Debug, Clone)]
pub struct Call {
    pub kind: Kind,
    /// The column that stands for the call's results.
    pub column: String,
    pub argument: Expr,
    /// The type of one result.
    pub data_type: DataType,
}

/// The input schema with a column per call.
pub fn extended_schema(input: &SchemaRef, calls: &[Call]) -> SchemaRef {
    let mut fields: Vec<Field> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.extend(calls.iter().map(|c| Field::new(&c.column, c.data_type.clone(), true)));
    Arc::new(Schema::new(fields))
}

/// The calls, planned: arguments as physical expressions.
#[derive(Debug)]
pub struct Unnest {
    pub kinds: Vec<Kind>,
    pub arguments: Vec<Arc<dyn PhysicalExpr>>,
    pub schema: SchemaRef,
}

impl Unnest {
    /// Every row of `batch` repeated once per result, with the results as the last columns;
    /// and which input row each output row came from.
    pub fn apply(&self, batch: &RecordBatch) -> Result<(RecordBatch, UInt32Array), PlanError> {
        let lists: Vec<ListArray> = self
            .arguments
            .iter()
            .zip(&self.kinds)
            .map(|(argument, kind)| {
                let array = argument.evaluate(batch)?.into_array(batch.num_rows())?;
                let list = array
                    .as_list_opt::<i32>()
                    .cloned()
                    .ok_or_else(|| PlanError::user("a table function's argument is not an ARRAY"))?;
                match kind {
                    Kind::Explode => Ok(list),
                    Kind::CubeExplode => cube(&list),
                }
            })
            .collect::<Result<_, PlanError>>()?;
        // Per input row: as many output rows as its longest result.
        let mut sources: Vec<u32> = Vec::new();
        let mut positions: Vec<u32> = Vec::new();
        for row in 0..batch.num_rows() {
            let count = lists.iter().map(|l| if l.is_null(row) { 0 } else { l.value_length(row) as usize }).max();
            for i in 0..count.unwrap_or(0) {
                sources.push(row as u32);
                positions.push(i as u32);
            }
        }
        let sources = UInt32Array::from(sources);
        let mut columns: Vec<ArrayRef> =
            batch.columns().iter().map(|c| take(c.as_ref(), &sources, None)).collect::<Result<_, _>>()?;
        for list in &lists {
            // The element of each output row, or null past the end of this row's result.
            let indices: UInt32Array = sources
                .values()
                .iter()
                .zip(&positions)
                .map(|(&row, &i)| {
                    let row = row as usize;
                    let valid = !list.is_null(row) && (i as usize) < list.value_length(row) as usize;
                    valid.then(|| list.value_offsets()[row] as u32 + i)
                })
                .collect();
            let values = list.values();
            columns.push(if values.is_empty() {
                new_null_array(values.data_type(), indices.len())
            } else {
                take(values.as_ref(), &indices, None)?
            });
        }
        Ok((RecordBatch::try_new(self.schema.clone(), columns)?, sources))
    }
}

/// `CUBE_EXPLODE`: per row, every combination of its elements and nulls, nulls first
/// (`[a, b]` gives `[null, null]`, `[null, b]`, `[a, null]`, `[a, b]`), as a list of lists. A
/// null element has one possibility, not two: `[a, null]` gives `[null, null]` and `[a, null]`
/// once each. More than 20 elements is ksqlDB's error; the row gives no rows (ksqlDB also
/// notes it in the processing log).
fn cube(list: &ListArray) -> Result<ListArray, PlanError> {
    const MAX_ELEMENTS: usize = 20;
    let values = list.values();
    let mut inner_indices: Vec<Option<u32>> = Vec::new();
    let mut inner_lengths: Vec<usize> = Vec::new();
    let mut outer_lengths: Vec<usize> = Vec::new();
    for row in 0..list.len() {
        let n = list.value_length(row) as usize;
        if list.is_null(row) || n > MAX_ELEMENTS {
            outer_lengths.push(0);
            continue;
        }
        let start = list.value_offsets()[row] as u32;
        // A bit per element that is not null, the first element's the highest.
        let present =
            (0..n).filter(|j| values.is_valid(start as usize + j)).fold(0usize, |mask, j| mask | 1 << (n - 1 - j));
        let mut combinations = 0;
        for mask in (0..1usize << n).filter(|mask| mask & present == *mask) {
            for j in 0..n {
                let kept = mask & (1 << (n - 1 - j)) != 0;
                inner_indices.push(kept.then_some(start + j as u32));
            }
            inner_lengths.push(n);
            combinations += 1;
        }
        outer_lengths.push(combinations);
    }
    let items = take(values.as_ref(), &UInt32Array::from(inner_indices), None)?;
    let DataType::List(item) = list.data_type() else { return Err(PlanError::user("not a list")) };
    let inner = ListArray::try_new(item.clone(), OffsetBuffer::from_lengths(inner_lengths), items, None)?;
    let inner_field = Arc::new(Field::new("item", inner.data_type().clone(), true));
    Ok(ListArray::try_new(inner_field, OffsetBuffer::from_lengths(outer_lengths), Arc::new(inner), None)?)
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::Int32Type;

    use super::*;

    fn combinations(elements: Vec<Option<i32>>) -> Vec<Vec<Option<i32>>> {
        let list = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![Some(elements)]);
        let cubes = cube(&list).unwrap();
        let rows = cubes.value(0);
        let rows = rows.as_list::<i32>();
        (0..rows.len()).map(|i| rows.value(i).as_primitive::<Int32Type>().iter().collect()).collect()
    }

    #[test]
    fn cube_explode_skips_the_duplicates_of_null_elements() {
        assert_eq!(combinations(vec![Some(1), Some(2)]).len(), 4);
        assert_eq!(combinations(vec![Some(1), None]), [vec![None, None], vec![Some(1), None]]);
        assert_eq!(combinations(vec![None, Some(2)]), [vec![None, None], vec![None, Some(2)]]);
        assert_eq!(combinations(vec![None, None]), [vec![None, None]]);
        assert_eq!(combinations((0..21).map(Some).collect()).len(), 0, "more than 20 elements");
    }
}
