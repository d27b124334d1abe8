//! ksqlDB's aggregates that DataFusion has no equivalent of: `COLLECT_SET` (distinct values
//! in the order they first arrived), `TOPK` and `TOPKDISTINCT` (the k largest values, largest
//! first), `HISTOGRAM` (a count per distinct string).

use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility};

pub fn functions() -> Vec<AggregateUDF> {
    vec![
        AggregateUDF::from(CollectSet { signature: Signature::any(1, Volatility::Immutable) }),
        AggregateUDF::from(TopK { distinct: false, signature: Signature::any(2, Volatility::Immutable) }),
        AggregateUDF::from(TopK { distinct: true, signature: Signature::any(2, Volatility::Immutable) }),
        AggregateUDF::from(Histogram { signature: Signature::exact(vec![DataType::Utf8], Volatility::Immutable) }),
        AggregateUDF::from(ByOffset { latest: true, signature: Signature::variadic_any(Volatility::Immutable) }),
        AggregateUDF::from(ByOffset { latest: false, signature: Signature::variadic_any(Volatility::Immutable) }),
    ]
}

/// `LATEST_BY_OFFSET(x [, n] [, ignore_nulls])` / `EARLIEST_BY_OFFSET(…)`: the last (first)
/// value to arrive, or with `n` the last (first) n as an array; nulls are skipped unless
/// `ignore_nulls` is false.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ByOffset {
    latest: bool,
    signature: Signature,
}

impl AggregateUDFImpl for ByOffset {
    fn name(&self) -> &str {
        if self.latest { "latest_by_offset" } else { "earliest_by_offset" }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        let item = args.first().cloned().unwrap_or(DataType::Null);
        Ok(match args.get(1) {
            Some(t) if t.is_integer() => DataType::List(Arc::new(Field::new("item", item, true))),
            _ => item,
        })
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let (item, many) = match args.return_field.data_type() {
            DataType::List(item) => (item.data_type().clone(), true),
            other => (other.clone(), false),
        };
        Ok(Box::new(Arrivals { latest: self.latest, many, item, n: None, ignore_nulls: None, values: Vec::new() }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(format!("{}[values]", args.name), args.return_field.data_type().clone(), true))])
    }
}

#[derive(Debug)]
struct Arrivals {
    latest: bool,
    /// The result is an array of `n` values.
    many: bool,
    item: DataType,
    n: Option<usize>,
    ignore_nulls: Option<bool>,
    values: Vec<ScalarValue>,
}

impl Accumulator for Arrivals {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let Some(array) = values.first() else { return Ok(()) };
        if self.ignore_nulls.is_none() && !array.is_empty() {
            // The options are constants: read them once, from the first row.
            for option in &values[1..] {
                match ScalarValue::try_from_array(option, 0)? {
                    ScalarValue::Boolean(b) => self.ignore_nulls = Some(b.unwrap_or(true)),
                    other => {
                        if let ScalarValue::Int64(Some(n)) = other.cast_to(&DataType::Int64)? {
                            self.n = Some(n.max(1) as usize);
                        }
                    }
                }
            }
            self.ignore_nulls.get_or_insert(true);
        }
        let keep = if self.many { self.n.unwrap_or(1) } else { 1 };
        for row in 0..array.len() {
            let value = ScalarValue::try_from_array(array, row)?;
            if value.is_null() && self.ignore_nulls.unwrap_or(true) {
                continue;
            }
            if self.latest {
                self.values.push(value);
                if self.values.len() > keep {
                    self.values.remove(0);
                }
            } else if self.values.len() < keep {
                self.values.push(value);
            }
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        if self.many {
            return Ok(ScalarValue::List(ScalarValue::new_list(&self.values, &self.item, true)));
        }
        match self.values.last() {
            Some(value) => Ok(value.clone()),
            None => ScalarValue::try_from(&self.item),
        }
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.values.iter().map(|v| v.size()).sum::<usize>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }

    fn merge_batch(&mut self, _states: &[ArrayRef]) -> Result<()> {
        // Eddy's aggregations never merge partial states (one accumulator per group).
        Ok(())
    }
}

/// `TOPK(x, k)` / `TOPKDISTINCT(x, k)`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct TopK {
    distinct: bool,
    signature: Signature,
}

impl AggregateUDFImpl for TopK {
    fn name(&self) -> &str {
        if self.distinct { "topkdistinct" } else { "topk" }
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
        Ok(Box::new(Largest { item, distinct: self.distinct, k: None, values: Vec::new() }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(format!("{}[top]", args.name), args.return_field.data_type().clone(), true))])
    }
}

#[derive(Debug)]
struct Largest {
    item: DataType,
    distinct: bool,
    /// k, from the call's second argument.
    k: Option<usize>,
    /// At most k values, largest first.
    values: Vec<ScalarValue>,
}

impl Largest {
    fn offer(&mut self, value: ScalarValue) {
        if value.is_null() || (self.distinct && self.values.contains(&value)) {
            return;
        }
        let at = self.values.partition_point(|v| v.partial_cmp(&value).is_some_and(|o| o.is_ge()));
        self.values.insert(at, value);
        self.values.truncate(self.k.unwrap_or(usize::MAX));
    }
}

impl Accumulator for Largest {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let Some(array) = values.first() else { return Ok(()) };
        if self.k.is_none()
            && let Some(k) = values.get(1)
            && !k.is_empty()
            && let ScalarValue::Int64(Some(k)) = ScalarValue::try_from_array(k, 0)?.cast_to(&DataType::Int64)?
        {
            self.k = Some(k.max(0) as usize);
        }
        for row in 0..array.len() {
            self.offer(ScalarValue::try_from_array(array, row)?);
        }
        Ok(())
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
                let values = lists.value(row);
                for i in 0..values.len() {
                    self.offer(ScalarValue::try_from_array(&values, i)?);
                }
            }
        }
        Ok(())
    }
}

/// `HISTOGRAM(s)`: how many times each string came.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Histogram {
    signature: Signature,
}

impl AggregateUDFImpl for Histogram {
    fn name(&self) -> &str {
        "histogram"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(histogram_type())
    }

    fn accumulator(&self, _: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(Counts(Vec::new())))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(format!("{}[counts]", args.name), histogram_type(), true))])
    }
}

fn histogram_type() -> DataType {
    let entries = Field::new(
        "entries",
        DataType::Struct(
            vec![Field::new("keys", DataType::Utf8, false), Field::new("values", DataType::Int64, true)].into(),
        ),
        false,
    );
    DataType::Map(Arc::new(entries), false)
}

/// Counts per string, in order of first arrival.
#[derive(Debug)]
struct Counts(Vec<(String, i64)>);

impl Counts {
    fn add(&mut self, key: &str, count: i64) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some((_, n)) => *n += count,
            None => self.0.push((key.to_owned(), count)),
        }
    }
}

impl Accumulator for Counts {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        use datafusion::arrow::array::AsArray;
        let Some(strings) = values.first().and_then(|v| v.as_string_opt::<i32>()) else { return Ok(()) };
        for value in strings.iter().flatten() {
            self.add(value, 1);
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        use datafusion::arrow::array::{Int64Builder, MapBuilder, MapFieldNames, StringBuilder};
        let names = MapFieldNames { entry: "entries".into(), key: "keys".into(), value: "values".into() };
        let mut builder = MapBuilder::new(Some(names), StringBuilder::new(), Int64Builder::new());
        for (key, count) in &self.0 {
            builder.keys().append_value(key);
            builder.values().append_value(*count);
        }
        builder.append(true)?;
        Ok(ScalarValue::Map(Arc::new(builder.finish())))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.0.iter().map(|(k, _)| k.len() + 16).sum::<usize>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        use datafusion::arrow::array::{Array, AsArray};
        let Some(maps) = states.first().and_then(|s| s.as_map_opt()) else { return Ok(()) };
        for row in 0..maps.len() {
            if maps.is_valid(row) {
                let entries = maps.value(row);
                let (keys, counts) = (
                    entries.column(0).as_string::<i32>(),
                    entries.column(1).as_primitive::<datafusion::arrow::datatypes::Int64Type>(),
                );
                for i in 0..keys.len() {
                    self.add(keys.value(i), counts.value(i));
                }
            }
        }
        Ok(())
    }
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
