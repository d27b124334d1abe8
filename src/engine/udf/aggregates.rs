//! ksqlDB's aggregates that DataFusion has no equivalent of: `COLLECT_SET` (distinct values
//! in the order they first arrived).

use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility};

pub fn functions() -> Vec<AggregateUDF> {
    vec![AggregateUDF::from(CollectSet { signature: Signature::any(1, Volatility::Immutable) })]
}

/// `COLLECT_SET(x)`: the distinct values of `x` (null counting as one), first arrival first.
#[derive(Debug, PartialEq, Eq, Hash)]
struct CollectSet {
    signature: Signature,
}

impl AggregateUDFImpl for CollectSet {
    fn name(&self) -> &str {
        "collect_set"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        let item = args.first().cloned().unwrap_or(DataType::Null);
        Ok(DataType::List(Arc::new(Field::new("item", item, true))))
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let item = match args.return_field.data_type() {
            DataType::List(item) => item.data_type().clone(),
            other => other.clone(),
        };
        Ok(Box::new(DistinctInOrder { item, values: Vec::new() }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(format!("{}[set]", args.name), args.return_field.data_type().clone(), true))])
    }
}

#[derive(Debug)]
struct DistinctInOrder {
    item: DataType,
    values: Vec<ScalarValue>,
}

impl DistinctInOrder {
    fn add(&mut self, array: &ArrayRef) -> Result<()> {
        for row in 0..array.len() {
            let value = ScalarValue::try_from_array(array, row)?;
            if !self.values.contains(&value) {
                self.values.push(value);
            }
        }
        Ok(())
    }
}

impl Accumulator for DistinctInOrder {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        match values.first() {
            Some(array) => self.add(array),
            None => Ok(()),
        }
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::List(ScalarValue::new_list(&self.values, &self.item, true)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.values.iter().map(|v| v.size()).sum::<usize>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        use datafusion::arrow::array::{Array, AsArray};
        let Some(lists) = states.first() else { return Ok(()) };
        let lists = lists.as_list::<i32>();
        for row in 0..lists.len() {
            if lists.is_valid(row) {
                self.add(&lists.value(row))?;
            }
        }
        Ok(())
    }
}
