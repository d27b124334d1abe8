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
        AggregateUDF::from(TopK { distinct: false, signature: Signature::variadic_any(Volatility::Immutable) }),
        AggregateUDF::from(TopK { distinct: true, signature: Signature::variadic_any(Volatility::Immutable) }),
        AggregateUDF::from(SumList { signature: Signature::any(1, Volatility::Immutable) }),
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
        // With a count (an integer second argument) it returns a list of the values; the
        // value itself may be a list too.
        let many = args.exprs.get(1).and_then(|e| e.data_type(args.schema).ok()).is_some_and(|t| t.is_integer());
        let (item, many) = match args.return_field.data_type() {
            DataType::List(item) if many => (item.data_type().clone(), true),
            other => (other.clone(), false),
        };
        Ok(Box::new(Arrivals { latest: self.latest, many, item, n: None, ignore_nulls: None, values: Vec::new() }))
    }

    /// The values kept (a list), the count asked for, and whether nulls are ignored.
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let item = match (args.return_field.data_type(), args.input_fields.get(1)) {
            (DataType::List(item), Some(n)) if n.data_type().is_integer() => item.data_type().clone(),
            (other, _) => other.clone(),
        };
        let list = DataType::List(Arc::new(Field::new("item", item, true)));
        Ok(vec![
            Arc::new(Field::new(format!("{}[values]", args.name), list, true)),
            Arc::new(Field::new(format!("{}[n]", args.name), DataType::Int64, true)),
            Arc::new(Field::new(format!("{}[ignore_nulls]", args.name), DataType::Boolean, true)),
        ])
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

impl Arrivals {
    /// A value that arrived after those kept.
    fn offer(&mut self, value: ScalarValue) {
        let keep = if self.many { self.n.unwrap_or(1) } else { 1 };
        if self.latest {
            self.values.push(value);
            if self.values.len() > keep {
                self.values.remove(0);
            }
        } else if self.values.len() < keep {
            self.values.push(value);
        }
    }
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
        for row in 0..array.len() {
            let value = ScalarValue::try_from_array(array, row)?;
            if value.is_null() && self.ignore_nulls.unwrap_or(true) {
                continue;
            }
            self.offer(value);
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
        Ok(vec![
            ScalarValue::List(ScalarValue::new_list(&self.values, &self.item, true)),
            ScalarValue::Int64(self.n.map(|n| n as i64)),
            ScalarValue::Boolean(self.ignore_nulls),
        ])
    }

    /// Folds in other accumulators' states (session windows merging), earlier ones first.
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        use datafusion::arrow::array::{Array, AsArray};
        let [values, n, ignore_nulls] = states else { return Ok(()) };
        let lists = values.as_list::<i32>();
        let n = n.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
        let ignore_nulls = ignore_nulls.as_boolean();
        for row in 0..lists.len() {
            if self.n.is_none() && n.is_valid(row) {
                self.n = Some(n.value(row).max(1) as usize);
            }
            if self.ignore_nulls.is_none() && ignore_nulls.is_valid(row) {
                self.ignore_nulls = Some(ignore_nulls.value(row));
            }
            if lists.is_valid(row) {
                let kept = lists.value(row);
                for i in 0..kept.len() {
                    self.offer(ScalarValue::try_from_array(&kept, i)?);
                }
            }
        }
        Ok(())
    }
}

/// `TOPK(x, k)` / `TOPKDISTINCT(x, k)`: the k largest values, largest first. `TOPK(x, y, …,
/// k)` keeps other columns with each value: a list of `STRUCT<sort_col, col0, col1, …>`,
/// ordered by `sort_col` (ties in arrival order).
#[derive(Debug, PartialEq, Eq, Hash)]
struct TopK {
    distinct: bool,
    signature: Signature,
}

/// The struct `TOPK(x, y, …, k)` returns an item of, given the argument types.
fn topk_struct(args: &[DataType]) -> Option<DataType> {
    if args.len() <= 2 {
        return None;
    }
    let mut fields = vec![Field::new("sort_col", args[0].clone(), true)];
    for (i, t) in args[1..args.len() - 1].iter().enumerate() {
        fields.push(Field::new(format!("col{i}"), t.clone(), true));
    }
    Some(DataType::Struct(fields.into()))
}

impl AggregateUDFImpl for TopK {
    fn name(&self) -> &str {
        if self.distinct { "topkdistinct" } else { "topk" }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        if args.len() < 2 || (self.distinct && args.len() != 2) {
            return datafusion::common::plan_err!(
                "{} takes a value and k{}",
                self.name().to_uppercase(),
                if self.distinct { "" } else { " (and other columns between them)" }
            );
        }
        let item = topk_struct(args).unwrap_or_else(|| args[0].clone());
        Ok(DataType::List(Arc::new(Field::new("item", item, true))))
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let item = match args.return_field.data_type() {
            DataType::List(item) => item.data_type().clone(),
            other => other.clone(),
        };
        Ok(Box::new(Largest { item, distinct: self.distinct, k: None, entries: Vec::new() }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new(format!("{}[top]", args.name), args.return_field.data_type().clone(), true)),
            Arc::new(Field::new(format!("{}[k]", args.name), DataType::Int64, true)),
        ])
    }
}

#[derive(Debug)]
struct Largest {
    /// A plain value, or the struct of a value and its other columns.
    item: DataType,
    distinct: bool,
    /// k, from the call's last argument.
    k: Option<usize>,
    /// At most k entries, largest first: the value, then any other columns.
    entries: Vec<Vec<ScalarValue>>,
}

impl Largest {
    fn offer(&mut self, entry: Vec<ScalarValue>) {
        let Some(value) = entry.first() else { return };
        if value.is_null() || (self.distinct && self.entries.iter().any(|e| e[0] == *value)) {
            return;
        }
        let at = self.entries.partition_point(|e| e[0].partial_cmp(value).is_some_and(|o| o.is_ge()));
        self.entries.insert(at, entry);
        self.entries.truncate(self.k.unwrap_or(usize::MAX));
    }
}

impl Accumulator for Largest {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let Some((k, columns)) = values.split_last() else { return Ok(()) };
        if self.k.is_none()
            && !k.is_empty()
            && let ScalarValue::Int64(Some(k)) = ScalarValue::try_from_array(k, 0)?.cast_to(&DataType::Int64)?
        {
            self.k = Some(k.max(0) as usize);
        }
        let rows = columns.first().map_or(0, |c| c.len());
        for row in 0..rows {
            let entry = columns.iter().map(|c| ScalarValue::try_from_array(c, row)).collect::<Result<Vec<_>>>()?;
            self.offer(entry);
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let values: Vec<ScalarValue> = match &self.item {
            DataType::Struct(fields) if self.entries.first().is_none_or(|e| e.len() == fields.len()) => {
                let columns = (0..fields.len())
                    .map(|i| match self.entries.is_empty() {
                        true => Ok(datafusion::arrow::array::new_empty_array(fields[i].data_type())),
                        false => ScalarValue::iter_to_array(self.entries.iter().map(|e| e[i].clone())),
                    })
                    .collect::<Result<Vec<_>>>()?;
                let structs: ArrayRef =
                    Arc::new(datafusion::arrow::array::StructArray::try_new(fields.clone(), columns, None)?);
                (0..structs.len()).map(|i| ScalarValue::try_from_array(&structs, i)).collect::<Result<_>>()?
            }
            _ => self.entries.iter().map(|e| e[0].clone()).collect(),
        };
        Ok(ScalarValue::List(ScalarValue::new_list(&values, &self.item, true)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.entries.iter().flatten().map(|v| v.size()).sum::<usize>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?, ScalarValue::Int64(self.k.map(|k| k as i64))])
    }

    /// Folds in other accumulators' states (session windows merging).
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        use datafusion::arrow::array::{Array, AsArray};
        let [tops, k] = states else { return Ok(()) };
        let (lists, k) = (tops.as_list::<i32>(), k.as_primitive::<datafusion::arrow::datatypes::Int64Type>());
        for row in 0..lists.len() {
            if self.k.is_none() && k.is_valid(row) {
                self.k = Some(k.value(row).max(0) as usize);
            }
            if !lists.is_valid(row) {
                continue;
            }
            let items = lists.value(row);
            for i in 0..items.len() {
                let entry = match ScalarValue::try_from_array(&items, i)? {
                    // A struct item is the value and its other columns.
                    ScalarValue::Struct(fields) => (0..fields.num_columns())
                        .map(|c| ScalarValue::try_from_array(fields.column(c), 0))
                        .collect::<Result<Vec<_>>>()?,
                    value => vec![value],
                };
                self.offer(entry);
            }
        }
        Ok(())
    }
}

/// `SUM_LIST(xs)`: the sum of every element of every list in the group (null elements
/// skipped), in the elements' type.
#[derive(Debug, PartialEq, Eq, Hash)]
struct SumList {
    signature: Signature,
}

impl AggregateUDFImpl for SumList {
    fn name(&self) -> &str {
        "sum_list"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args.first() {
            Some(DataType::List(item)) if item.data_type().is_numeric() => Ok(item.data_type().clone()),
            other => datafusion::common::plan_err!("SUM_LIST takes a list of numbers, not {other:?}"),
        }
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let sum = ScalarValue::new_zero(args.return_field.data_type())?;
        Ok(Box::new(ListSum { sum }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(format!("{}[sum]", args.name), args.return_field.data_type().clone(), true))])
    }
}

#[derive(Debug)]
struct ListSum {
    sum: ScalarValue,
}

impl ListSum {
    fn add(&mut self, lists: &ArrayRef, negate: bool) -> Result<()> {
        use datafusion::arrow::array::{Array, AsArray};
        let lists = lists.as_list::<i32>();
        for row in 0..lists.len() {
            if lists.is_null(row) {
                continue;
            }
            let items = lists.value(row);
            for i in 0..items.len() {
                if items.is_valid(i) {
                    let item = ScalarValue::try_from_array(&items, i)?;
                    self.sum = if negate { self.sum.sub(item)? } else { self.sum.add(item)? };
                }
            }
        }
        Ok(())
    }
}

impl Accumulator for ListSum {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        match values.first() {
            Some(lists) => self.add(lists, false),
            None => Ok(()),
        }
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        match values.first() {
            Some(lists) => self.add(lists, true),
            None => Ok(()),
        }
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(self.sum.clone())
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.sum.clone()])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let Some(sums) = states.first() else { return Ok(()) };
        for row in 0..sums.len() {
            let sum = ScalarValue::try_from_array(sums, row)?;
            if !sum.is_null() {
                self.sum = self.sum.add(sum)?;
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

    /// A table row taken out: its string counts one less, and goes when it counts none.
    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        use datafusion::arrow::array::AsArray;
        let Some(strings) = values.first().and_then(|v| v.as_string_opt::<i32>()) else { return Ok(()) };
        for value in strings.iter().flatten() {
            self.add(value, -1);
        }
        self.0.retain(|(_, n)| *n > 0);
        Ok(())
    }

    fn supports_retract_batch(&self) -> bool {
        true
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
