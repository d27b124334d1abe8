//! ksqlDB's statistical aggregates, each able to take a row out again (so they run over
//! tables): `AVG` (a DOUBLE; a DECIMAL is averaged as a DOUBLE), `STDDEV_SAMPLE` (the sample
//! standard deviation), `STDDEV_SAMP` (ksqlDB's code returns the sample *variance* under this
//! name, and so does Eddy), `CORRELATION` (Pearson's r) and `ATTR` (the one distinct value of
//! a group, or null).
//!
//! They compute as ksqlDB's Java does, so that the last digits agree: the sum of an INT (a
//! BIGINT) column is an int (a long) that wraps, the deviations follow Youngs and Cramer's
//! updates on the typed sum. ksqlDB's answers for small groups are kept: no values give 0.0
//! for AVG, fewer than two 0.0 for the deviations and NaN for the correlation, never null.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, ListArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type, Int64Type};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDF, AggregateUDFImpl, GroupsAccumulator, Signature, Volatility};

use super::math::widening;

pub fn functions() -> Vec<AggregateUDF> {
    let numbers = || widening(&[&[DataType::Int32], &[DataType::Int64], &[DataType::Float64]]);
    vec![
        AggregateUDF::from(Average { signature: numbers() }),
        AggregateUDF::from(Deviation { variance: false, signature: numbers() }),
        AggregateUDF::from(Deviation { variance: true, signature: numbers() }),
        AggregateUDF::from(Correlation { signature: widening(&[&[DataType::Float64, DataType::Float64]]) }),
        AggregateUDF::from(Attr { signature: Signature::any(1, Volatility::Immutable) }),
    ]
}

fn state_field(args: &StateFieldsArgs, part: &str, data_type: DataType) -> FieldRef {
    Arc::new(Field::new(format!("{}[{part}]", args.name), data_type, true))
}

/// The values of a column as doubles.
fn doubles(values: &ArrayRef) -> Result<ArrayRef> {
    Ok(cast(values, &DataType::Float64)?)
}

/// A running sum as ksqlDB's Java keeps it: an INT column's in an int and a BIGINT's in a
/// long (both wrapping), any other's in a double.
#[derive(Debug, Clone, Copy, PartialEq)]
enum JavaSum {
    Int(i32),
    Long(i64),
    Double(f64),
}

impl JavaSum {
    /// Zero, for values of `data_type`.
    fn zero(data_type: &DataType) -> JavaSum {
        match data_type {
            DataType::Int32 => JavaSum::Int(0),
            DataType::Int64 => JavaSum::Long(0),
            _ => JavaSum::Double(0.0),
        }
    }

    fn data_type(&self) -> DataType {
        match self {
            JavaSum::Int(_) => DataType::Int32,
            JavaSum::Long(_) => DataType::Int64,
            JavaSum::Double(_) => DataType::Float64,
        }
    }

    /// `self + value` (`sign` 1) or `self - value` (`sign` -1), with the value of the sum's kind.
    fn add(self, value: JavaSum, sign: i8) -> JavaSum {
        match (self, value) {
            (JavaSum::Int(s), JavaSum::Int(v)) => {
                JavaSum::Int(if sign > 0 { s.wrapping_add(v) } else { s.wrapping_sub(v) })
            }
            (JavaSum::Long(s), JavaSum::Long(v)) => {
                JavaSum::Long(if sign > 0 { s.wrapping_add(v) } else { s.wrapping_sub(v) })
            }
            (s, v) => JavaSum::Double(if sign > 0 { s.as_f64() + v.as_f64() } else { s.as_f64() - v.as_f64() }),
        }
    }

    fn as_f64(self) -> f64 {
        match self {
            JavaSum::Int(v) => f64::from(v),
            JavaSum::Long(v) => v as f64,
            JavaSum::Double(v) => v,
        }
    }

    fn scalar(self) -> ScalarValue {
        match self {
            JavaSum::Int(v) => ScalarValue::Int32(Some(v)),
            JavaSum::Long(v) => ScalarValue::Int64(Some(v)),
            JavaSum::Double(v) => ScalarValue::Float64(Some(v)),
        }
    }

    /// The non-null values of a column of the sum's kind (others as doubles), in order.
    fn values(kind: JavaSum, values: &ArrayRef) -> Result<Vec<JavaSum>> {
        Ok(match kind {
            JavaSum::Int(_) => cast(values, &DataType::Int32)?
                .as_primitive::<datafusion::arrow::datatypes::Int32Type>()
                .iter()
                .flatten()
                .map(JavaSum::Int)
                .collect(),
            JavaSum::Long(_) => cast(values, &DataType::Int64)?
                .as_primitive::<Int64Type>()
                .iter()
                .flatten()
                .map(JavaSum::Long)
                .collect(),
            JavaSum::Double(_) => {
                doubles(values)?.as_primitive::<Float64Type>().iter().flatten().map(JavaSum::Double).collect()
            }
        })
    }

    /// The sum in row `row` of a state column of the sum's kind.
    fn at(kind: JavaSum, sums: &ArrayRef, row: usize) -> Result<JavaSum> {
        Ok(match (kind, ScalarValue::try_from_array(sums, row)?) {
            (JavaSum::Int(_), ScalarValue::Int32(Some(v))) => JavaSum::Int(v),
            (JavaSum::Long(_), ScalarValue::Int64(Some(v))) => JavaSum::Long(v),
            (_, ScalarValue::Float64(Some(v))) => JavaSum::Double(v),
            (kind, _) => kind,
        })
    }
}

/// The type of the values an aggregate's first argument gives it.
fn input_type(fields: &[FieldRef]) -> DataType {
    fields.first().map_or(DataType::Float64, |f| f.data_type().clone())
}

/// `AVG(x)`: the sum (as ksqlDB keeps it) over the count, 0.0 for no values.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct Average {
    signature: Signature,
}

impl AggregateUDFImpl for Average {
    fn name(&self) -> &str {
        "avg"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(Mean { sum: JavaSum::zero(&input_type(args.expr_fields)), count: 0 }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            state_field(&args, "sum", JavaSum::zero(&input_type(args.input_fields)).data_type()),
            state_field(&args, "count", DataType::Int64),
        ])
    }

    fn groups_accumulator_supported(&self, _: AccumulatorArgs) -> bool {
        true
    }

    /// Many groups at once: each group's sum and count, in two vectors.
    fn create_groups_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        let zero = JavaSum::zero(&input_type(args.expr_fields));
        Ok(Box::new(GroupMeans { zero, sums: Vec::new(), counts: Vec::new() }))
    }
}

/// AVG's groups accumulator: each group's sum and count as [`Mean`] keeps them.
#[derive(Debug)]
struct GroupMeans {
    zero: JavaSum,
    sums: Vec<JavaSum>,
    counts: Vec<i64>,
}

impl GroupMeans {
    /// A column's values as sums of this accumulator's kind, null where it is null.
    fn column(&self, values: &ArrayRef) -> Result<Vec<Option<JavaSum>>> {
        let values = cast(values, &self.zero.data_type())?;
        Ok(match self.zero {
            JavaSum::Int(_) => values
                .as_primitive::<datafusion::arrow::datatypes::Int32Type>()
                .iter()
                .map(|v| v.map(JavaSum::Int))
                .collect(),
            JavaSum::Long(_) => values.as_primitive::<Int64Type>().iter().map(|v| v.map(JavaSum::Long)).collect(),
            JavaSum::Double(_) => values.as_primitive::<Float64Type>().iter().map(|v| v.map(JavaSum::Double)).collect(),
        })
    }

    /// Adds `sums[row]` and `counts[row]` to group `groups[row]`, for the rows `filter` passes.
    fn add(
        &mut self,
        sums: &[Option<JavaSum>],
        counts: impl Iterator<Item = Option<i64>>,
        groups: &[usize],
        filter: Option<&datafusion::arrow::array::BooleanArray>,
        total: usize,
    ) {
        self.sums.resize(total, self.zero);
        self.counts.resize(total, 0);
        for (row, ((group, sum), count)) in groups.iter().zip(sums).zip(counts).enumerate() {
            let passes = filter.is_none_or(|f| f.is_valid(row) && f.value(row));
            if let (true, Some(sum), Some(count)) = (passes, sum, count) {
                self.sums[*group] = self.sums[*group].add(*sum, 1);
                self.counts[*group] += count;
            }
        }
    }
}

impl GroupsAccumulator for GroupMeans {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        groups: &[usize],
        filter: Option<&datafusion::arrow::array::BooleanArray>,
        total: usize,
    ) -> Result<()> {
        let Some(values) = values.first() else { return Ok(()) };
        let sums = self.column(values)?;
        self.add(&sums, std::iter::repeat(Some(1)), groups, filter, total);
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef], groups: &[usize], total: usize) -> Result<()> {
        let [sums, counts] = states else { return plan_err!("AVG state has two parts") };
        let sums = self.column(sums)?;
        self.add(&sums, counts.as_primitive::<Int64Type>().iter(), groups, None, total);
        Ok(())
    }

    fn evaluate(&mut self, emit_to: datafusion::logical_expr::EmitTo) -> Result<ArrayRef> {
        let sums = emit_to.take_needed(&mut self.sums);
        let counts = emit_to.take_needed(&mut self.counts);
        let means =
            sums.iter().zip(&counts).map(|(sum, count)| if *count == 0 { 0.0 } else { sum.as_f64() / *count as f64 });
        Ok(Arc::new(datafusion::arrow::array::Float64Array::from_iter_values(means)))
    }

    fn state(&mut self, emit_to: datafusion::logical_expr::EmitTo) -> Result<Vec<ArrayRef>> {
        let sums = emit_to.take_needed(&mut self.sums);
        let counts = emit_to.take_needed(&mut self.counts);
        use datafusion::arrow::array::{Float64Array, Int32Array, Int64Array};
        // The sums are all of the kind of `zero` (the values are cast to it).
        let sums: ArrayRef = match self.zero {
            JavaSum::Int(_) => Arc::new(Int32Array::from_iter_values(sums.iter().map(|s| match s {
                JavaSum::Int(v) => *v,
                other => other.as_f64() as i32,
            }))),
            JavaSum::Long(_) => Arc::new(Int64Array::from_iter_values(sums.iter().map(|s| match s {
                JavaSum::Long(v) => *v,
                other => other.as_f64() as i64,
            }))),
            JavaSum::Double(_) => Arc::new(Float64Array::from_iter_values(sums.iter().map(|s| s.as_f64()))),
        };
        Ok(vec![sums, Arc::new(Int64Array::from(counts))])
    }

    /// Each row as a group of its own: its value and a count of 1, or zero and 0 when null or
    /// filtered out.
    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        filter: Option<&datafusion::arrow::array::BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let mut alone = GroupMeans { zero: self.zero, sums: Vec::new(), counts: Vec::new() };
        super::aggregates::each_row_alone(&mut alone, values, filter)
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.sums.capacity() * std::mem::size_of::<JavaSum>() + self.counts.capacity() * 8
    }
}

#[derive(Debug)]
struct Mean {
    sum: JavaSum,
    count: i64,
}

impl Mean {
    fn apply(&mut self, values: &[ArrayRef], sign: i8) -> Result<()> {
        let Some(values) = values.first() else { return Ok(()) };
        for value in JavaSum::values(self.sum, values)? {
            self.sum = self.sum.add(value, sign);
            self.count += i64::from(sign);
        }
        Ok(())
    }
}

impl Accumulator for Mean {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.apply(values, 1)
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.apply(values, -1)
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        if self.count == 0 {
            return Ok(ScalarValue::Float64(Some(0.0)));
        }
        Ok(ScalarValue::Float64(Some(self.sum.as_f64() / self.count as f64)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.sum.scalar(), self.count.into()])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [sums, counts] = states else { return plan_err!("AVG state has two parts") };
        let counts = counts.as_primitive::<Int64Type>();
        for row in 0..counts.len() {
            if counts.is_valid(row) {
                self.sum = self.sum.add(JavaSum::at(self.sum, sums, row)?, 1);
                self.count += counts.value(row);
            }
        }
        Ok(())
    }
}

/// `STDDEV_SAMPLE(x)` or, with `variance`, `STDDEV_SAMP(x)`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Deviation {
    variance: bool,
    signature: Signature,
}

impl AggregateUDFImpl for Deviation {
    fn name(&self) -> &str {
        if self.variance { "stddev_samp" } else { "stddev_sample" }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(Moments::new(self.variance, &input_type(args.expr_fields))))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            state_field(&args, "count", DataType::Int64),
            state_field(&args, "sum", JavaSum::zero(&input_type(args.input_fields)).data_type()),
            state_field(&args, "m2", DataType::Float64),
        ])
    }
}

/// ksqlDB's running count, typed sum and sum of squared deviations (M2), updated as Youngs
/// and Cramer's algorithm does; a value taken out reverses its update.
#[derive(Debug)]
struct Moments {
    variance: bool,
    count: i64,
    sum: JavaSum,
    m2: f64,
}

impl Moments {
    fn new(variance: bool, input: &DataType) -> Moments {
        Moments { variance, count: 0, sum: JavaSum::zero(input), m2: 0.0 }
    }

    /// `x·(n + 1) − (Σ + x)` in the sum's arithmetic (long for INT and BIGINT, as Java
    /// promotes `int × long`), with n and Σ the current count and sum.
    fn delta(&self, x: JavaSum) -> f64 {
        let n = self.count.wrapping_add(1);
        match (self.sum, x) {
            (JavaSum::Int(s), JavaSum::Int(x)) => {
                i64::from(x).wrapping_mul(n).wrapping_sub(i64::from(s.wrapping_add(x))) as f64
            }
            (JavaSum::Long(s), JavaSum::Long(x)) => x.wrapping_mul(n).wrapping_sub(s.wrapping_add(x)) as f64,
            (s, x) => x.as_f64() * n as f64 - (s.as_f64() + x.as_f64()),
        }
    }

    fn add(&mut self, x: JavaSum) {
        let count = self.count + 1;
        let m2 = if count - 1 > 0 {
            let delta = self.delta(x);
            delta * delta / count.wrapping_mul(count - 1) as f64
        } else {
            0.0
        };
        self.count = count;
        self.sum = self.sum.add(x, 1);
        self.m2 += m2;
    }

    fn remove(&mut self, x: JavaSum) {
        let count = self.count - 1;
        let m2 = if count > 0 {
            let delta = self.delta(x);
            delta * delta / count.wrapping_mul(count + 1) as f64
        } else {
            0.0
        };
        self.count = count;
        self.sum = self.sum.add(x, -1);
        self.m2 -= m2;
    }

    /// Another group's moments folded in, as ksqlDB merges (session windows): STDDEV_SAMP
    /// divides an INT or BIGINT sum by the count in integers there, STDDEV_SAMPLE in doubles.
    fn merge(&mut self, count: i64, sum: JavaSum, m2: f64) {
        let total = self.count + count;
        let merged_m2 = if self.count == 0 || count == 0 {
            self.m2 + m2
        } else {
            let inner = match (self.sum, sum) {
                (JavaSum::Int(a), JavaSum::Int(b)) if self.variance => {
                    (i64::from(a) / self.count).wrapping_sub(i64::from(b) / count) as f64
                }
                (JavaSum::Long(a), JavaSum::Long(b)) if self.variance => {
                    (a / self.count).wrapping_sub(b / count) as f64
                }
                (a, b) => a.as_f64() / self.count as f64 - b.as_f64() / count as f64,
            };
            self.m2 + m2 + self.count.wrapping_mul(count) as f64 * inner * inner / total as f64
        };
        self.count = total;
        self.sum = self.sum.add(sum, 1);
        self.m2 = merged_m2;
    }

    fn each(&mut self, values: &[ArrayRef], mut f: impl FnMut(&mut Self, JavaSum)) -> Result<()> {
        let Some(values) = values.first() else { return Ok(()) };
        for value in JavaSum::values(self.sum, values)? {
            f(self, value);
        }
        Ok(())
    }
}

impl Accumulator for Moments {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.each(values, |m, x| m.add(x))
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.each(values, |m, x| m.remove(x))
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        if self.count < 2 {
            return Ok(ScalarValue::Float64(Some(0.0)));
        }
        let variance = self.m2 / (self.count - 1) as f64;
        Ok(ScalarValue::Float64(Some(if self.variance { variance } else { variance.sqrt() })))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.count.into(), self.sum.scalar(), self.m2.into()])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [counts, sums, m2s] = states else { return plan_err!("STDDEV state has three parts") };
        let (counts, m2s) = (counts.as_primitive::<Int64Type>(), m2s.as_primitive::<Float64Type>());
        for row in 0..counts.len() {
            if counts.is_valid(row) {
                self.merge(counts.value(row), JavaSum::at(self.sum, sums, row)?, m2s.value(row));
            }
        }
        Ok(())
    }
}

/// `CORRELATION(x, y)`: Pearson's r over the rows where both are not null, from running sums.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Correlation {
    signature: Signature,
}

impl AggregateUDFImpl for Correlation {
    fn name(&self) -> &str {
        "correlation"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn accumulator(&self, _: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(Sums::default()))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(["n", "x", "y", "xx", "yy", "xy"].iter().map(|part| state_field(&args, part, DataType::Float64)).collect())
    }
}

/// n, Σx, Σy, Σx², Σy², Σxy.
#[derive(Debug, Default)]
struct Sums([f64; 6]);

impl Sums {
    fn apply(&mut self, values: &[ArrayRef], sign: f64) -> Result<()> {
        let [x, y] = values else { return plan_err!("CORRELATION takes two columns") };
        let (x, y) = (doubles(x)?, doubles(y)?);
        for (x, y) in x.as_primitive::<Float64Type>().iter().zip(y.as_primitive::<Float64Type>().iter()) {
            if let (Some(x), Some(y)) = (x, y) {
                for (sum, term) in self.0.iter_mut().zip([1.0, x, y, x * x, y * y, x * y]) {
                    *sum += sign * term;
                }
            }
        }
        Ok(())
    }
}

impl Accumulator for Sums {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.apply(values, 1.0)
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.apply(values, -1.0)
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let [n, x, y, xx, yy, xy] = self.0;
        if n < 2.0 {
            return Ok(ScalarValue::Float64(Some(f64::NAN)));
        }
        let covariance = n * xy - x * y;
        let spread = ((n * xx - x * x) * (n * yy - y * y)).sqrt();
        Ok(ScalarValue::Float64(Some(covariance / spread)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(self.0.iter().map(|v| ScalarValue::from(*v)).collect())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        for (sum, column) in self.0.iter_mut().zip(states) {
            *sum += column.as_primitive::<Float64Type>().iter().flatten().sum::<f64>();
        }
        Ok(())
    }
}

/// `ATTR(x)`: the group's value when all its rows have the same one (null included), else null.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Attr {
    signature: Signature,
}

impl AggregateUDFImpl for Attr {
    fn name(&self) -> &str {
        "attr"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(args.first().cloned().unwrap_or(DataType::Null))
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(Distinct { data_type: args.return_field.data_type().clone(), counts: HashMap::new() }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let values = DataType::List(Arc::new(Field::new("item", args.return_field.data_type().clone(), true)));
        let counts = DataType::List(Arc::new(Field::new("item", DataType::Int64, true)));
        Ok(vec![state_field(&args, "values", values), state_field(&args, "counts", counts)])
    }
}

/// How many rows hold each distinct value.
#[derive(Debug)]
struct Distinct {
    data_type: DataType,
    counts: HashMap<ScalarValue, i64>,
}

impl Distinct {
    fn count(&mut self, values: &ArrayRef, by: i64) -> Result<()> {
        for row in 0..values.len() {
            let value = ScalarValue::try_from_array(values, row)?;
            let count = self.counts.entry(value.clone()).or_default();
            *count += by;
            if *count <= 0 {
                self.counts.remove(&value);
            }
        }
        Ok(())
    }
}

impl Accumulator for Distinct {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        values.first().map_or(Ok(()), |v| self.count(v, 1))
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        values.first().map_or(Ok(()), |v| self.count(v, -1))
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        match self.counts.keys().collect::<Vec<_>>().as_slice() {
            [only] => Ok((*only).clone()),
            _ => ScalarValue::try_from(&self.data_type),
        }
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.counts.keys().map(ScalarValue::size).sum::<usize>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let (values, counts): (Vec<ScalarValue>, Vec<ScalarValue>) =
            self.counts.iter().map(|(v, c)| (v.clone(), ScalarValue::Int64(Some(*c)))).unzip();
        Ok(vec![
            ScalarValue::List(ScalarValue::new_list_nullable(&values, &self.data_type)),
            ScalarValue::List(ScalarValue::new_list_nullable(&counts, &DataType::Int64)),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [values, counts] = states else { return plan_err!("ATTR state has two parts") };
        let (values, counts): (&ListArray, &ListArray) = (values.as_list::<i32>(), counts.as_list::<i32>());
        for row in 0..values.len() {
            if values.is_null(row) {
                continue;
            }
            let (row_values, row_counts) = (values.value(row), counts.value(row));
            let row_counts = row_counts.as_primitive::<Int64Type>();
            for i in 0..row_values.len() {
                let value = ScalarValue::try_from_array(&row_values, i)?;
                *self.counts.entry(value).or_default() += row_counts.value(i);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Float64Array, StringArray};

    use super::*;

    fn column(values: &[Option<f64>]) -> ArrayRef {
        Arc::new(Float64Array::from(values.to_vec()))
    }

    /// Many groups' averages at once are each one [`Mean`] would give, merged states too.
    #[test]
    fn group_means_average_as_one_mean_per_group() {
        use datafusion::arrow::array::Int32Array;
        use datafusion::logical_expr::EmitTo;
        let values: ArrayRef = Arc::new(Int32Array::from(vec![Some(i32::MAX), Some(1), None, Some(4), Some(6)]));
        let groups = [0, 0, 1, 1, 2];
        let mut means = GroupMeans { zero: JavaSum::Int(0), sums: Vec::new(), counts: Vec::new() };
        means.update_batch(std::slice::from_ref(&values), &groups, None, 4).unwrap();
        let state = means.state(EmitTo::All).unwrap();
        let mut merged = GroupMeans { zero: JavaSum::Int(0), sums: Vec::new(), counts: Vec::new() };
        merged.merge_batch(&state, &[0, 1, 2, 3], 4).unwrap();
        let evaluated = merged.evaluate(EmitTo::All).unwrap();
        let got: Vec<f64> = evaluated.as_primitive::<Float64Type>().values().to_vec();
        for (group, rows) in [(0, 0..2), (1, 2..4), (2, 4..5)] {
            let mut mean = Mean { sum: JavaSum::Int(0), count: 0 };
            mean.update_batch(&[values.slice(rows.start, rows.len())]).unwrap();
            assert_eq!(got[group], value(&mut mean), "group {group}");
        }
        // The int sum wraps, as ksqlDB's; a group without values averages 0.0.
        assert_eq!(got[0], f64::from(i32::MIN) / 2.0);
        assert_eq!(got[3], 0.0);
        let alone = means.convert_to_state(&[values], None).unwrap();
        assert_eq!(alone[1].as_primitive::<Int64Type>().values(), &[1, 1, 0, 1, 1]);
    }

    fn value(accumulator: &mut dyn Accumulator) -> f64 {
        match accumulator.evaluate().unwrap() {
            ScalarValue::Float64(Some(v)) => v,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn deviations_follow_ksqldb_and_take_values_out() {
        let mut sd = Moments::new(false, &DataType::Float64);
        sd.update_batch(&[column(&[Some(1.0), Some(2.0), Some(4.0), None])]).unwrap();
        assert_eq!(value(&mut sd), 1.5275252316519468);
        let mut variance = Moments::new(true, &DataType::Float64);
        variance.update_batch(&[column(&[Some(1.0), Some(2.0), Some(4.0)])]).unwrap();
        assert_eq!(value(&mut variance), 2.3333333333333335);
        variance.retract_batch(&[column(&[Some(4.0)])]).unwrap();
        assert_eq!(value(&mut variance), 0.5);
        variance.retract_batch(&[column(&[Some(1.0)])]).unwrap();
        assert_eq!(value(&mut variance), 0.0, "one value left");
        let ints: ArrayRef = Arc::new(datafusion::arrow::array::Int32Array::from(vec![i32::MAX, 1]));
        let mut wrapping = Moments::new(true, &DataType::Int32);
        wrapping.update_batch(&[ints]).unwrap();
        // Σ wraps: the delta is 1·2 − (2147483647 + 1 as an int), not 1·2 − 2147483648.
        assert_eq!(wrapping.sum, JavaSum::Int(i32::MIN));
        assert_eq!(value(&mut wrapping), (2.0f64 + 2147483648.0).powi(2) / 2.0);
        let mut merged = Moments::new(true, &DataType::Float64);
        merged.update_batch(&[column(&[Some(1.0)])]).unwrap();
        let mut other = Moments::new(true, &DataType::Float64);
        other.update_batch(&[column(&[Some(2.0), Some(4.0)])]).unwrap();
        let state: Vec<ArrayRef> = other.state().unwrap().iter().map(|s| s.to_array().unwrap()).collect();
        merged.merge_batch(&state).unwrap();
        assert!((value(&mut merged) - 2.3333333333333335).abs() < 1e-12);
    }

    #[test]
    fn averages_are_ksqldbs() {
        let ints: ArrayRef = Arc::new(datafusion::arrow::array::Int32Array::from(vec![Some(i32::MAX), Some(1), None]));
        let mut mean = Mean { sum: JavaSum::zero(&DataType::Int32), count: 0 };
        assert_eq!(value(&mut mean), 0.0);
        mean.update_batch(std::slice::from_ref(&ints)).unwrap();
        // An int sum wraps, as ksqlDB's does.
        assert_eq!(value(&mut mean), f64::from(i32::MIN) / 2.0);
        mean.retract_batch(&[ints]).unwrap();
        assert_eq!((mean.sum, mean.count), (JavaSum::Int(0), 0));
    }

    #[test]
    fn correlation_is_nan_below_two_rows_and_follows_retractions() {
        let mut r = Sums::default();
        r.update_batch(&[column(&[Some(1.0)]), column(&[Some(2.0)])]).unwrap();
        assert!(value(&mut r).is_nan());
        r.update_batch(&[column(&[Some(2.0), Some(3.0), None]), column(&[Some(4.0), Some(6.5), Some(1.0)])]).unwrap();
        let three = value(&mut r);
        assert!(three > 0.99 && three < 1.0, "{three}");
        r.retract_batch(&[column(&[Some(3.0)]), column(&[Some(6.5)])]).unwrap();
        assert!((value(&mut r) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn attr_is_the_only_value_or_null() {
        let strings = |v: &[Option<&str>]| -> ArrayRef { Arc::new(StringArray::from(v.to_vec())) };
        let mut attr = Distinct { data_type: DataType::Utf8, counts: HashMap::new() };
        attr.update_batch(&[strings(&[Some("x"), Some("x")])]).unwrap();
        assert_eq!(attr.evaluate().unwrap(), ScalarValue::from("x"));
        attr.update_batch(&[strings(&[None])]).unwrap();
        assert_eq!(attr.evaluate().unwrap(), ScalarValue::Utf8(None));
        attr.retract_batch(&[strings(&[None])]).unwrap();
        assert_eq!(attr.evaluate().unwrap(), ScalarValue::from("x"));
        let state: Vec<ArrayRef> = attr.state().unwrap().iter().map(|s| s.to_array().unwrap()).collect();
        let mut copy = Distinct { data_type: DataType::Utf8, counts: HashMap::new() };
        copy.merge_batch(&state).unwrap();
        assert_eq!(copy.evaluate().unwrap(), ScalarValue::from("x"));
    }
}
