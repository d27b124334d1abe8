//! ksqlDB's aggregates that DataFusion has no equivalent of: `COLLECT_SET` (distinct values
//! in the order they first arrived), `TOPK` and `TOPKDISTINCT` (the k largest values, largest
//! first), `HISTOGRAM` (a count per distinct string, at most 1000 strings); and those whose
//! DataFusion versions differ: `SUM` (an INT's is an INT and a BIGINT's a BIGINT, wrapping as
//! Java's do; a DECIMAL's keeps its precision and fails past it; 0 before any value) and
//! `MIN`/`MAX` (of ksqlDB's types only, in Java's order: strings by UTF-16 code unit, bytes
//! as signed, NaN above every number).

use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDF, AggregateUDFImpl, GroupsAccumulator, Signature, Volatility};
use datafusion::physical_expr::GroupsAccumulatorAdapter;

pub fn functions() -> Vec<AggregateUDF> {
    vec![
        AggregateUDF::from(Sum { signature: Signature::any(1, Volatility::Immutable) }),
        AggregateUDF::from(Extreme { max: true, signature: Signature::any(1, Volatility::Immutable) }),
        AggregateUDF::from(Extreme { max: false, signature: Signature::any(1, Volatility::Immutable) }),
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

    /// One value per group (not `n` of them): many groups at once.
    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        !args.exprs.get(1).and_then(|e| e.data_type(args.schema).ok()).is_some_and(|t| t.is_integer())
    }

    fn create_groups_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        let item = args.return_field.data_type().clone();
        Ok(Box::new(GroupArrivals {
            latest: self.latest,
            empty: datafusion::arrow::array::new_null_array(&item, 1),
            item,
            ignore_nulls: None,
            sources: Vec::new(),
            chosen: Vec::new(),
        }))
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

/// `LATEST_BY_OFFSET(x)` / `EARLIEST_BY_OFFSET(x)`'s groups accumulator: per group, where
/// its value is among the arrays it was given (a value, or a null not ignored), in
/// [`Arrivals`]' state form (a list of at most one value).
#[derive(Debug)]
struct GroupArrivals {
    latest: bool,
    item: DataType,
    ignore_nulls: Option<bool>,
    /// The arrays values were taken from, the first an array of one null (a group without a
    /// value yet).
    sources: Vec<ArrayRef>,
    empty: ArrayRef,
    chosen: Vec<Option<(usize, usize)>>,
}

impl GroupArrivals {
    /// Offers row `row` of source `source` to `group`: the latest replaces, the earliest stays.
    fn offer(&mut self, group: usize, at: (usize, usize)) {
        if self.latest || self.chosen[group].is_none() {
            self.chosen[group] = Some(at);
        }
    }

    /// Once every group is taken, no source is needed any more.
    fn release(&mut self) {
        if self.chosen.is_empty() {
            self.sources.clear();
        }
    }

    /// The values at `at` (a null where there is none) as one array.
    fn gather(&self, at: &[Option<(usize, usize)>]) -> Result<ArrayRef> {
        let mut sources: Vec<&dyn datafusion::arrow::array::Array> = vec![self.empty.as_ref()];
        sources.extend(self.sources.iter().map(|s| s.as_ref()));
        let indices: Vec<(usize, usize)> = at.iter().map(|a| a.map_or((0, 0), |(s, r)| (s + 1, r))).collect();
        Ok(datafusion::arrow::compute::interleave(&sources, &indices)?)
    }

    /// Keeps the sources few: once there are many, the chosen values become the only one.
    fn compact(&mut self) -> Result<()> {
        if self.sources.len() < 16 {
            return Ok(());
        }
        let gathered = self.gather(&self.chosen)?;
        self.sources = vec![gathered];
        for (row, chosen) in self.chosen.iter_mut().enumerate() {
            if let Some(at) = chosen {
                *at = (0, row);
            }
        }
        Ok(())
    }
}

impl GroupsAccumulator for GroupArrivals {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        groups: &[usize],
        filter: Option<&datafusion::arrow::array::BooleanArray>,
        total: usize,
    ) -> Result<()> {
        use datafusion::arrow::array::Array;
        let Some(array) = values.first() else { return Ok(()) };
        if self.ignore_nulls.is_none() && !array.is_empty() {
            // The option is a constant: read it once, from the first row.
            for option in &values[1..] {
                if let ScalarValue::Boolean(b) = ScalarValue::try_from_array(option, 0)? {
                    self.ignore_nulls = Some(b.unwrap_or(true));
                }
            }
            self.ignore_nulls.get_or_insert(true);
        }
        self.chosen.resize(total, None);
        let source = self.sources.len();
        self.sources.push(Arc::clone(array));
        let ignore_nulls = self.ignore_nulls.unwrap_or(true);
        for (row, group) in groups.iter().enumerate() {
            let passes = filter.is_none_or(|f| f.is_valid(row) && f.value(row));
            if passes && !(ignore_nulls && array.is_null(row)) {
                self.offer(*group, (source, row));
            }
        }
        self.compact()
    }

    /// Folds in other groups' states, earlier ones first, as [`Arrivals::merge_batch`] does.
    fn merge_batch(&mut self, states: &[ArrayRef], groups: &[usize], total: usize) -> Result<()> {
        use datafusion::arrow::array::{Array, AsArray};
        let [values, _, ignore_nulls] = states else { return Ok(()) };
        let lists = values.as_list::<i32>();
        let ignore_nulls = ignore_nulls.as_boolean();
        self.chosen.resize(total, None);
        let source = self.sources.len();
        self.sources.push(Arc::clone(lists.values()));
        let offsets = lists.value_offsets();
        for (row, group) in groups.iter().enumerate() {
            if self.ignore_nulls.is_none() && ignore_nulls.is_valid(row) {
                self.ignore_nulls = Some(ignore_nulls.value(row));
            }
            let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
            if lists.is_valid(row) && end > start {
                self.offer(*group, (source, if self.latest { end - 1 } else { start }));
            }
        }
        self.compact()
    }

    fn evaluate(&mut self, emit_to: datafusion::logical_expr::EmitTo) -> Result<ArrayRef> {
        let taken = emit_to.take_needed(&mut self.chosen);
        let values = self.gather(&taken);
        self.release();
        values
    }

    fn state(&mut self, emit_to: datafusion::logical_expr::EmitTo) -> Result<Vec<ArrayRef>> {
        use datafusion::arrow::array::{BooleanArray, Int64Array, ListArray};
        use datafusion::arrow::buffer::OffsetBuffer;
        let taken = emit_to.take_needed(&mut self.chosen);
        let present: Vec<Option<(usize, usize)>> = taken.iter().copied().filter(Option::is_some).collect();
        let items = self.gather(&present);
        self.release();
        let items = items?;
        let offsets = OffsetBuffer::from_lengths(taken.iter().map(|t| usize::from(t.is_some())));
        let field = Arc::new(Field::new("item", self.item.clone(), true));
        let lists = ListArray::try_new(field, offsets, items, None)?;
        Ok(vec![
            Arc::new(lists),
            Arc::new(Int64Array::new_null(taken.len())),
            Arc::new(BooleanArray::from(vec![self.ignore_nulls; taken.len()])),
        ])
    }

    /// Each row as a group of its own: its value, or none when it is a null ignored.
    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        filter: Option<&datafusion::arrow::array::BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let mut alone = GroupArrivals {
            latest: self.latest,
            item: self.item.clone(),
            ignore_nulls: self.ignore_nulls,
            sources: Vec::new(),
            empty: Arc::clone(&self.empty),
            chosen: Vec::new(),
        };
        each_row_alone(&mut alone, values, filter)
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self.sources.iter().map(|s| s.get_array_memory_size()).sum::<usize>()
            + self.chosen.capacity() * std::mem::size_of::<Option<(usize, usize)>>()
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
        let at = self.entries.partition_point(|e| java_order(&e[0], value).is_ge());
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

/// Counts per string, in order of first arrival; a string that comes when 1000 others are
/// counted is not (ksqlDB's limit).
#[derive(Debug)]
struct Counts(Vec<(String, i64)>);

const HISTOGRAM_LIMIT: usize = 1000;

impl Counts {
    fn add(&mut self, key: &str, count: i64) {
        let full = self.0.len() >= HISTOGRAM_LIMIT;
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some((_, n)) => *n += count,
            None if !full => self.0.push((key.to_owned(), count)),
            None => {}
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
        Ok(Box::new(DistinctInOrder::new(item)))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(format!("{}[set]", args.name), args.return_field.data_type().clone(), true))])
    }
}

#[derive(Debug)]
struct DistinctInOrder {
    item: DataType,
    values: Vec<ScalarValue>,
    /// For MAP items, each value's entries sorted by key: maps are equal whatever the order
    /// of their entries (Java's `Map.equals`), so they are compared so.
    sorted: Vec<ScalarValue>,
}

impl DistinctInOrder {
    fn new(item: DataType) -> DistinctInOrder {
        DistinctInOrder { item, values: Vec::new(), sorted: Vec::new() }
    }

    fn add(&mut self, array: &ArrayRef) -> Result<()> {
        let maps = matches!(self.item, DataType::Map(..));
        for row in 0..array.len() {
            let value = ScalarValue::try_from_array(array, row)?;
            if maps {
                let sorted = entries_sorted(&value)?;
                if !self.sorted.contains(&sorted) {
                    self.sorted.push(sorted);
                    self.values.push(value);
                }
            } else if !self.values.contains(&value) {
                self.values.push(value);
            }
        }
        Ok(())
    }
}

/// A MAP value with its entries in key order (anything else as it is).
fn entries_sorted(value: &ScalarValue) -> Result<ScalarValue> {
    use datafusion::arrow::array::{Array, AsArray, MapArray};
    let ScalarValue::Map(map) = value else { return Ok(value.clone()) };
    if map.is_null(0) {
        return Ok(value.clone());
    }
    let entries = map.value(0);
    let order = datafusion::arrow::compute::sort_to_indices(entries.column(0), None, None)?;
    let sorted = datafusion::arrow::compute::take(&entries, &order, None)?;
    let offsets = datafusion::arrow::buffer::OffsetBuffer::from_lengths([sorted.len()]);
    let DataType::Map(field, ordered) = map.data_type() else { return Ok(value.clone()) };
    let map = MapArray::try_new(field.clone(), offsets, sorted.as_struct().clone(), None, *ordered)?;
    Ok(ScalarValue::Map(Arc::new(map)))
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

/// Java's order of two values of one of ksqlDB's types (`compareTo`): numbers and times by
/// value (`Double.compareTo`: -0.0 below 0.0, NaN above all), strings by UTF-16 code unit,
/// bytes as signed. A null is below every value.
pub(crate) fn java_order(a: &ScalarValue, b: &ScalarValue) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (a, b) if a.is_null() || b.is_null() => b.is_null().cmp(&a.is_null()),
        (ScalarValue::Float64(Some(a)), ScalarValue::Float64(Some(b))) => match (a.is_nan(), b.is_nan()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => a.total_cmp(b),
        },
        (ScalarValue::Utf8(Some(a)), ScalarValue::Utf8(Some(b))) => a.encode_utf16().cmp(b.encode_utf16()),
        (ScalarValue::Binary(Some(a)), ScalarValue::Binary(Some(b))) => {
            a.iter().map(|x| *x as i8).cmp(b.iter().map(|x| *x as i8))
        }
        (a, b) => a.partial_cmp(b).unwrap_or(Ordering::Equal),
    }
}

/// `SUM(x)` as ksqlDB sums: from 0, nulls skipped, in the column's type.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Sum {
    signature: Signature,
}

impl AggregateUDFImpl for Sum {
    fn name(&self) -> &str {
        "sum"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args {
            [t @ (DataType::Int32 | DataType::Int64 | DataType::Float64 | DataType::Decimal128(..))] => Ok(t.clone()),
            [DataType::Null] => Ok(DataType::Int32),
            _ => not_accepted("sum", args),
        }
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(Total { sum: ScalarValue::new_zero(args.return_field.data_type())? }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(format!("{}[sum]", args.name), args.return_field.data_type().clone(), true))])
    }

    fn groups_accumulator_supported(&self, _: AccumulatorArgs) -> bool {
        true
    }

    /// Many groups at once: a sum per group, in a vector of the sum's type.
    fn create_groups_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        let sums = match args.return_field.data_type() {
            DataType::Int32 => Sums::Int32(Vec::new()),
            DataType::Int64 => Sums::Int64(Vec::new()),
            DataType::Float64 => Sums::Float64(Vec::new()),
            DataType::Decimal128(precision, scale) => Sums::Decimal(Vec::new(), *precision, *scale),
            other => return not_accepted("sum", std::slice::from_ref(other)),
        };
        Ok(Box::new(GroupTotals { sum_type: args.return_field.data_type().clone(), sums }))
    }
}

/// `convert_to_state` for a groups accumulator: each of `values`' rows as a group of its own
/// in `alone` (an empty accumulator of the same function), its state taken.
pub(super) fn each_row_alone(
    alone: &mut dyn GroupsAccumulator,
    values: &[ArrayRef],
    filter: Option<&datafusion::arrow::array::BooleanArray>,
) -> Result<Vec<ArrayRef>> {
    let rows = values.first().map_or(0, |v| v.len());
    alone.update_batch(values, &(0..rows).collect::<Vec<_>>(), filter, rows)?;
    alone.state(datafusion::logical_expr::EmitTo::All)
}

/// Whether a row can be taken out of a group of `function` by merging its state negated:
/// SUM's and AVG's (ksqlDB's, sums and counts that wrap or are doubles) and COUNT's, whose
/// states are sums. Such aggregates of a table run batch at a time on groups accumulators.
pub fn retracts_by_negation(function: &datafusion::physical_expr::aggregate::AggregateFunctionExpr) -> bool {
    let inner = function.fun().inner();
    !function.is_distinct()
        && (inner.is::<Sum>()
            || inner.is::<super::statistics::Average>()
            || inner.is::<datafusion::functions_aggregate::count::Count>())
}

/// SUM's groups accumulator: each group's sum as [`Total`] keeps one, all in one vector.
#[derive(Debug)]
struct GroupTotals {
    sum_type: DataType,
    sums: Sums,
}

#[derive(Debug)]
enum Sums {
    Int32(Vec<i32>),
    Int64(Vec<i64>),
    Float64(Vec<f64>),
    Decimal(Vec<i128>, u8, i8),
}

impl Sums {
    fn empty(&self) -> Sums {
        match self {
            Sums::Int32(_) => Sums::Int32(Vec::new()),
            Sums::Int64(_) => Sums::Int64(Vec::new()),
            Sums::Float64(_) => Sums::Float64(Vec::new()),
            Sums::Decimal(_, precision, scale) => Sums::Decimal(Vec::new(), *precision, *scale),
        }
    }
}

/// Adds each row's value that passes `filter` and is not null to its group's sum.
fn add_each<T: datafusion::arrow::datatypes::ArrowPrimitiveType>(
    sums: &mut [T::Native],
    values: &ArrayRef,
    groups: &[usize],
    filter: Option<&datafusion::arrow::array::BooleanArray>,
    mut add: impl FnMut(T::Native, T::Native) -> Result<T::Native>,
) -> Result<()> {
    use datafusion::arrow::array::{Array, AsArray};
    let values = values.as_primitive::<T>();
    if values.null_count() == 0 && filter.is_none() {
        for (group, value) in groups.iter().zip(values.values()) {
            sums[*group] = add(sums[*group], *value)?;
        }
        return Ok(());
    }
    for (row, group) in groups.iter().enumerate() {
        let passes = filter.is_none_or(|f| f.is_valid(row) && f.value(row));
        if passes && values.is_valid(row) {
            sums[*group] = add(sums[*group], values.value(row))?;
        }
    }
    Ok(())
}

/// ksqlDB's error for a DECIMAL sum whose integer digits outgrew its precision.
fn decimal_overflow<T>(total: i128, precision: u8, scale: i8) -> Result<T> {
    let digits = i16::from(precision) - i16::from(scale);
    datafusion::common::exec_err!(
        "Numeric field overflow: A field with precision {precision} and scale {scale} must round \
         to an absolute value less than 10^{digits}. Got {}",
        ScalarValue::Decimal128(Some(total), 38, scale)
    )
}

impl GroupTotals {
    /// Adds values (checking a DECIMAL sum's precision, as [`Total::apply`] does when adding
    /// rows; merged sums are not checked).
    fn add(
        &mut self,
        values: &[ArrayRef],
        groups: &[usize],
        filter: Option<&datafusion::arrow::array::BooleanArray>,
        total: usize,
        check: bool,
    ) -> Result<()> {
        use datafusion::arrow::datatypes::{Decimal128Type, Float64Type, Int32Type, Int64Type};
        let Some(values) = values.first() else { return Ok(()) };
        let values = if *values.data_type() == self.sum_type {
            Arc::clone(values)
        } else {
            datafusion::arrow::compute::cast(values, &self.sum_type)?
        };
        match &mut self.sums {
            Sums::Int32(sums) => {
                sums.resize(total, 0);
                add_each::<Int32Type>(sums, &values, groups, filter, |s, v| Ok(s.wrapping_add(v)))
            }
            Sums::Int64(sums) => {
                sums.resize(total, 0);
                add_each::<Int64Type>(sums, &values, groups, filter, |s, v| Ok(s.wrapping_add(v)))
            }
            Sums::Float64(sums) => {
                sums.resize(total, 0.0);
                add_each::<Float64Type>(sums, &values, groups, filter, |s, v| Ok(s + v))
            }
            Sums::Decimal(sums, precision, scale) => {
                let (precision, scale) = (*precision, *scale);
                let limit = 10i128.checked_pow(u32::from(precision)).unwrap_or(i128::MAX);
                sums.resize(total, 0);
                add_each::<Decimal128Type>(sums, &values, groups, filter, |s, v| {
                    let sum = s.saturating_add(v);
                    if check && sum.unsigned_abs() >= limit.unsigned_abs() {
                        return decimal_overflow(sum, precision, scale);
                    }
                    Ok(sum)
                })
            }
        }
    }
}

impl GroupsAccumulator for GroupTotals {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        groups: &[usize],
        filter: Option<&datafusion::arrow::array::BooleanArray>,
        total: usize,
    ) -> Result<()> {
        self.add(values, groups, filter, total, true)
    }

    fn merge_batch(&mut self, states: &[ArrayRef], groups: &[usize], total: usize) -> Result<()> {
        self.add(states, groups, None, total, false)
    }

    fn evaluate(&mut self, emit_to: datafusion::logical_expr::EmitTo) -> Result<ArrayRef> {
        use datafusion::arrow::array::{Decimal128Array, Float64Array, Int32Array, Int64Array};
        Ok(match &mut self.sums {
            Sums::Int32(sums) => Arc::new(Int32Array::from(emit_to.take_needed(sums))),
            Sums::Int64(sums) => Arc::new(Int64Array::from(emit_to.take_needed(sums))),
            Sums::Float64(sums) => Arc::new(Float64Array::from(emit_to.take_needed(sums))),
            Sums::Decimal(sums, precision, scale) => {
                Arc::new(Decimal128Array::from(emit_to.take_needed(sums)).with_precision_and_scale(*precision, *scale)?)
            }
        })
    }

    fn state(&mut self, emit_to: datafusion::logical_expr::EmitTo) -> Result<Vec<ArrayRef>> {
        Ok(vec![self.evaluate(emit_to)?])
    }

    /// Each row as a group's sum of its own: its value, or 0 when null or filtered out.
    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        filter: Option<&datafusion::arrow::array::BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let mut alone = GroupTotals { sum_type: self.sum_type.clone(), sums: self.sums.empty() };
        each_row_alone(&mut alone, values, filter)
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + match &self.sums {
                Sums::Int32(sums) => sums.capacity() * 4,
                Sums::Int64(sums) => sums.capacity() * 8,
                Sums::Float64(sums) => sums.capacity() * 8,
                Sums::Decimal(sums, ..) => sums.capacity() * 16,
            }
    }
}

/// Refused as ksqlDB refuses an aggregate of types it has no variant for.
fn not_accepted<T>(name: &str, args: &[DataType]) -> Result<T> {
    let shown: Vec<String> =
        args.iter().map(|t| if t.is_null() { "null".into() } else { crate::sql::types::ksql_type_name(t) }).collect();
    datafusion::common::plan_err!("Function '{name}' does not accept parameters ({}).", shown.join(", "))
}

#[derive(Debug)]
struct Total {
    sum: ScalarValue,
}

impl Total {
    /// Adds (or, with `sign` -1, takes out) the non-null values; a DECIMAL sum whose integer
    /// digits no longer fit its precision fails when adding, as ksqlDB's does.
    fn apply(&mut self, values: &ArrayRef, sign: i64, check: bool) -> Result<()> {
        use datafusion::arrow::array::AsArray;
        use datafusion::arrow::datatypes::{Decimal128Type, Float64Type, Int32Type, Int64Type};
        // Called per group and batch: the values are cast only when they need it.
        let sum_type = self.sum.data_type();
        let values = if *values.data_type() == sum_type {
            Arc::clone(values)
        } else {
            datafusion::arrow::compute::cast(values, &sum_type)?
        };
        self.sum = match &self.sum {
            ScalarValue::Int32(Some(sum)) => {
                let add = |s: i32, v: i32| if sign > 0 { s.wrapping_add(v) } else { s.wrapping_sub(v) };
                ScalarValue::Int32(Some(values.as_primitive::<Int32Type>().iter().flatten().fold(*sum, add)))
            }
            ScalarValue::Int64(Some(sum)) => {
                let add = |s: i64, v: i64| if sign > 0 { s.wrapping_add(v) } else { s.wrapping_sub(v) };
                ScalarValue::Int64(Some(values.as_primitive::<Int64Type>().iter().flatten().fold(*sum, add)))
            }
            ScalarValue::Float64(Some(sum)) => {
                let add = |s: f64, v: f64| if sign > 0 { s + v } else { s - v };
                ScalarValue::Float64(Some(values.as_primitive::<Float64Type>().iter().flatten().fold(*sum, add)))
            }
            ScalarValue::Decimal128(Some(sum), precision, scale) => {
                let limit = 10i128.checked_pow(u32::from(*precision)).unwrap_or(i128::MAX);
                let mut total = *sum;
                for value in values.as_primitive::<Decimal128Type>().iter().flatten() {
                    total = if sign > 0 { total.saturating_add(value) } else { total.saturating_sub(value) };
                    if check && sign > 0 && total.unsigned_abs() >= limit.unsigned_abs() {
                        return decimal_overflow(total, *precision, *scale);
                    }
                }
                ScalarValue::Decimal128(Some(total), *precision, *scale)
            }
            other => other.clone(),
        };
        Ok(())
    }
}

impl Accumulator for Total {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        values.first().map_or(Ok(()), |v| self.apply(v, 1, true))
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        values.first().map_or(Ok(()), |v| self.apply(v, -1, false))
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

    /// Folds in other sums (session windows merging), without the overflow check, as ksqlDB.
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        states.first().map_or(Ok(()), |v| self.apply(v, 1, false))
    }
}

/// `MAX(x)` or `MIN(x)` of an INT, BIGINT, DOUBLE, DECIMAL, DATE, TIME, TIMESTAMP, STRING or
/// BYTES column (ksqlDB's variants), null before any value. ksqlDB cannot take a value out
/// of them, so they do not aggregate tables.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Extreme {
    max: bool,
    signature: Signature,
}

impl AggregateUDFImpl for Extreme {
    fn name(&self) -> &str {
        if self.max { "max" } else { "min" }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args {
            [
                t @ (DataType::Int32
                | DataType::Int64
                | DataType::Float64
                | DataType::Decimal128(..)
                | DataType::Date32
                | DataType::Time32(_)
                | DataType::Timestamp(..)
                | DataType::Utf8
                | DataType::Binary
                | DataType::Null),
            ] => Ok(t.clone()),
            _ => not_accepted(self.name(), args),
        }
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        if datafusion_orders(args.return_field.data_type()) {
            return self.datafusion().accumulator(args);
        }
        Ok(Box::new(Best { max: self.max, best: ScalarValue::try_from(args.return_field.data_type())? }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        if datafusion_orders(args.return_field.data_type()) {
            return self.datafusion().state_fields(args);
        }
        Ok(vec![Arc::new(Field::new(format!("{}[best]", args.name), args.return_field.data_type().clone(), true))])
    }

    /// For frames of `OVER` windows, which take rows out again: the frame's values are kept.
    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        if datafusion_orders(args.return_field.data_type()) {
            return self.datafusion().create_sliding_accumulator(args);
        }
        let best = Best { max: self.max, best: ScalarValue::try_from(args.return_field.data_type())? };
        Ok(Box::new(SlidingBest { best, values: Vec::new() }))
    }

    fn groups_accumulator_supported(&self, _: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        if datafusion_orders(args.return_field.data_type()) {
            return self.datafusion().create_groups_accumulator(args);
        }
        let (max, none) = (self.max, ScalarValue::try_from(args.return_field.data_type())?);
        Ok(Box::new(GroupsAccumulatorAdapter::new(move || Ok(Box::new(Best { max, best: none.clone() }) as _))))
    }
}

impl Extreme {
    /// DataFusion's MAX or MIN, for the types it orders as Java does.
    fn datafusion(&self) -> Box<dyn AggregateUDFImpl> {
        use datafusion::functions_aggregate::min_max::{Max, Min};
        if self.max { Box::new(Max::new()) } else { Box::new(Min::new()) }
    }
}

/// Whether DataFusion's MIN and MAX order values of `data_type` as Java does: numbers (NaN
/// above all, -0.0 below 0.0) and times; not strings (by UTF-8 byte) nor bytes (unsigned).
fn datafusion_orders(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Int32
            | DataType::Int64
            | DataType::Float64
            | DataType::Decimal128(..)
            | DataType::Date32
            | DataType::Time32(_)
            | DataType::Timestamp(..)
    )
}

/// [`Best`] over a frame that values leave: the values in it, in arrival order.
#[derive(Debug)]
struct SlidingBest {
    best: Best,
    values: Vec<ScalarValue>,
}

impl Accumulator for SlidingBest {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        use datafusion::arrow::array::Array;
        let Some(array) = values.first() else { return Ok(()) };
        for row in 0..array.len() {
            if array.is_valid(row) {
                self.values.push(ScalarValue::try_from_array(array, row)?);
            }
        }
        Ok(())
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        use datafusion::arrow::array::Array;
        let Some(array) = values.first() else { return Ok(()) };
        for row in 0..array.len() {
            if array.is_valid(row) {
                let gone = ScalarValue::try_from_array(array, row)?;
                if let Some(at) = self.values.iter().position(|v| java_order(v, &gone).is_eq()) {
                    self.values.remove(at);
                }
            }
        }
        Ok(())
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let mut best = Best { max: self.best.max, best: self.best.best.clone() };
        for value in &self.values {
            best.consider(value.clone());
        }
        Ok(best.best)
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.values.iter().map(ScalarValue::size).sum::<usize>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.update_batch(states)
    }
}

#[derive(Debug)]
struct Best {
    max: bool,
    /// Null until a value comes.
    best: ScalarValue,
}

impl Best {
    fn offer(&mut self, values: &ArrayRef) -> Result<()> {
        use datafusion::arrow::array::Array;
        for row in 0..values.len() {
            if values.is_null(row) {
                continue;
            }
            self.consider(ScalarValue::try_from_array(values, row)?);
        }
        Ok(())
    }

    /// A new value replaces the kept one only when strictly beyond it.
    fn consider(&mut self, value: ScalarValue) {
        let order = java_order(&value, &self.best);
        if self.best.is_null() || (self.max && order.is_gt()) || (!self.max && order.is_lt()) {
            self.best = value;
        }
    }
}

impl Accumulator for Best {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        values.first().map_or(Ok(()), |v| self.offer(v))
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(self.best.clone())
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.best.size()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.best.clone()])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        states.first().map_or(Ok(()), |v| self.offer(v))
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{BinaryArray, Float64Array, Int32Array, StringArray};

    use super::*;

    #[test]
    fn sums_wrap_and_decimals_keep_their_precision() {
        let mut total = Total { sum: ScalarValue::Int32(Some(0)) };
        total.update_batch(&[Arc::new(Int32Array::from(vec![Some(i32::MAX), None, Some(1)]))]).unwrap();
        assert_eq!(total.evaluate().unwrap(), ScalarValue::Int32(Some(i32::MIN)));
        total.retract_batch(&[Arc::new(Int32Array::from(vec![1]))]).unwrap();
        assert_eq!(total.evaluate().unwrap(), ScalarValue::Int32(Some(i32::MAX)));
        let decimals = |v: Vec<i128>| -> ArrayRef {
            Arc::new(datafusion::arrow::array::Decimal128Array::from(v).with_precision_and_scale(3, 1).unwrap())
        };
        let mut total = Total { sum: ScalarValue::new_zero(&DataType::Decimal128(3, 1)).unwrap() };
        total.update_batch(&[decimals(vec![500, 499])]).unwrap();
        assert_eq!(total.evaluate().unwrap(), ScalarValue::Decimal128(Some(999), 3, 1));
        assert!(total.update_batch(&[decimals(vec![1])]).is_err(), "100.0 needs four digits");
    }

    #[test]
    fn group_sums_are_each_a_sum_of_its_own() {
        use datafusion::arrow::array::{AsArray, BooleanArray, Decimal128Array};
        use datafusion::arrow::datatypes::{Decimal128Type, Int32Type};
        use datafusion::logical_expr::EmitTo;
        let mut sums = GroupTotals { sum_type: DataType::Int32, sums: Sums::Int32(Vec::new()) };
        let values: ArrayRef = Arc::new(Int32Array::from(vec![Some(i32::MAX), None, Some(1), Some(5), Some(7)]));
        sums.update_batch(
            std::slice::from_ref(&values),
            &[0, 1, 0, 1, 2],
            Some(&BooleanArray::from(vec![true, true, true, true, false])),
            3,
        )
        .unwrap();
        // A group without values sums to 0; INT sums wrap, as ksqlDB's.
        let state = sums.state(EmitTo::All).unwrap();
        assert_eq!(state[0].as_primitive::<Int32Type>().values(), &[i32::MIN, 5, 0]);
        let mut merged = GroupTotals { sum_type: DataType::Int32, sums: Sums::Int32(Vec::new()) };
        merged.merge_batch(&state, &[1, 1, 0], 2).unwrap();
        assert_eq!(merged.evaluate(EmitTo::All).unwrap().as_primitive::<Int32Type>().values(), &[0, i32::MIN + 5]);
        let alone = sums.convert_to_state(&[values], None).unwrap();
        assert_eq!(alone[0].as_primitive::<Int32Type>().values(), &[i32::MAX, 0, 1, 5, 7]);

        let decimals =
            |v: Vec<i128>| -> ArrayRef { Arc::new(Decimal128Array::from(v).with_precision_and_scale(3, 1).unwrap()) };
        let mut sums = GroupTotals { sum_type: DataType::Decimal128(3, 1), sums: Sums::Decimal(Vec::new(), 3, 1) };
        sums.update_batch(&[decimals(vec![500, 499, 1])], &[0, 0, 1], None, 2).unwrap();
        assert!(sums.update_batch(&[decimals(vec![1])], &[0], None, 2).is_err(), "100.0 needs four digits");
        // Merged sums are not checked, as [`Total`]'s are not.
        sums.merge_batch(&[decimals(vec![999])], &[1], 2).unwrap();
        let evaluated = sums.evaluate(EmitTo::All).unwrap();
        assert_eq!(evaluated.data_type(), &DataType::Decimal128(3, 1));
        assert_eq!(evaluated.as_primitive::<Decimal128Type>().values(), &[999, 1000]);
    }

    /// Many groups' latest and earliest values at once are each one [`Arrivals`] would give,
    /// nulls ignored or not, through states merged as well.
    #[test]
    fn group_arrivals_arrive_as_one_accumulator_per_group() {
        use datafusion::arrow::array::{BooleanArray, Int64Array};
        use datafusion::logical_expr::EmitTo;
        let values: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), None, Some(3), Some(4), None, Some(6)]));
        let groups = [0, 0, 1, 0, 1, 2];
        for latest in [true, false] {
            for ignore_nulls in [true, false] {
                let options: ArrayRef = Arc::new(BooleanArray::from(vec![ignore_nulls; 6]));
                let arguments = [Arc::clone(&values), options];
                let fresh = || GroupArrivals {
                    latest,
                    item: DataType::Int64,
                    ignore_nulls: None,
                    sources: Vec::new(),
                    empty: datafusion::arrow::array::new_null_array(&DataType::Int64, 1),
                    chosen: Vec::new(),
                };
                // In two batches, the second merged from its state into the first's.
                let mut first = fresh();
                first
                    .update_batch(&[arguments[0].slice(0, 3), arguments[1].slice(0, 3)], &groups[..3], None, 4)
                    .unwrap();
                let mut second = fresh();
                second
                    .update_batch(&[arguments[0].slice(3, 3), arguments[1].slice(3, 3)], &groups[3..], None, 3)
                    .unwrap();
                first.merge_batch(&second.state(EmitTo::All).unwrap(), &[0, 1, 2], 4).unwrap();
                let got = first.evaluate(EmitTo::All).unwrap();
                for group in 0..4 {
                    let mut one = Arrivals {
                        latest,
                        many: false,
                        item: DataType::Int64,
                        n: None,
                        ignore_nulls: None,
                        values: Vec::new(),
                    };
                    let rows: Vec<u32> = (0..6u32).filter(|r| groups[*r as usize] == group).collect();
                    let rows = datafusion::arrow::array::UInt32Array::from(rows);
                    let taken: Vec<ArrayRef> = arguments
                        .iter()
                        .map(|a| datafusion::arrow::compute::take(a.as_ref(), &rows, None).unwrap())
                        .collect();
                    if !rows.is_empty() {
                        one.update_batch(&taken).unwrap();
                    }
                    let expected = one.evaluate().unwrap();
                    assert_eq!(
                        ScalarValue::try_from_array(&got, group).unwrap(),
                        expected,
                        "group {group}, latest {latest}, ignoring nulls {ignore_nulls}"
                    );
                }
            }
        }
    }

    #[test]
    fn extremes_are_in_javas_order() {
        let extreme = |max: bool, values: ArrayRef| {
            let mut best = Best { max, best: ScalarValue::try_from(values.data_type()).unwrap() };
            best.update_batch(&[values]).unwrap();
            best.evaluate().unwrap()
        };
        let doubles: ArrayRef =
            Arc::new(Float64Array::from(vec![Some(1.0), Some(f64::NAN), None, Some(-0.0), Some(0.0)]));
        assert!(matches!(extreme(true, doubles.clone()), ScalarValue::Float64(Some(v)) if v.is_nan()));
        assert!(matches!(extreme(false, doubles), ScalarValue::Float64(Some(v)) if v == 0.0 && v.is_sign_negative()));
        let strings: ArrayRef = Arc::new(StringArray::from(vec!["\u{1F600}", "\u{FFFD}"]));
        assert_eq!(extreme(true, strings), ScalarValue::from("\u{FFFD}"));
        let bytes: ArrayRef = Arc::new(BinaryArray::from(vec![&[0x80u8][..], &[0x01u8][..]]));
        assert_eq!(extreme(true, bytes), ScalarValue::Binary(Some(vec![0x01])));
        let none: ArrayRef = Arc::new(Int32Array::from(vec![None::<i32>]));
        assert_eq!(extreme(true, none), ScalarValue::Int32(None));
    }

    #[test]
    fn histograms_count_at_most_a_thousand_strings() {
        let mut counts = Counts(Vec::new());
        for i in 0..1001 {
            counts.add(&i.to_string(), 1);
        }
        counts.add("0", 1);
        assert_eq!(counts.0.len(), 1000);
        assert_eq!(counts.0[0], ("0".to_owned(), 2));
    }
}
