//! ksqlDB's statistical aggregates, each able to take a row out again (so they run over
//! tables): `STDDEV_SAMPLE` (the sample standard deviation), `STDDEV_SAMP` (ksqlDB's code
//! returns the sample *variance* under this name, and so does Eddy), `CORRELATION` (Pearson's
//! r) and `ATTR` (the one distinct value of a group, or null).
//!
//! ksqlDB's answers for small groups are kept: fewer than two values give 0.0 for the
//! deviations and NaN for the correlation, never null.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, ListArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type, Int64Type};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility};

use super::math::widening;

pub fn functions() -> Vec<AggregateUDF> {
    let doubles = || widening(&[&[DataType::Float64]]);
    vec![
        AggregateUDF::from(Deviation { variance: false, signature: doubles() }),
        AggregateUDF::from(Deviation { variance: true, signature: doubles() }),
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

    fn accumulator(&self, _: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(Moments { variance: self.variance, ..Moments::default() }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            state_field(&args, "count", DataType::Int64),
            state_field(&args, "mean", DataType::Float64),
            state_field(&args, "m2", DataType::Float64),
        ])
    }
}

/// Welford's running count, mean and sum of squared deviations; a value taken out reverses
/// its update.
#[derive(Debug, Default)]
struct Moments {
    variance: bool,
    count: i64,
    mean: f64,
    m2: f64,
}

impl Moments {
    fn add(&mut self, x: f64) {
        self.count += 1;
        let delta = x - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (x - self.mean);
    }

    fn remove(&mut self, x: f64) {
        if self.count <= 1 {
            *self = Moments { variance: self.variance, ..Moments::default() };
            return;
        }
        let mean_without = (self.mean * self.count as f64 - x) / (self.count - 1) as f64;
        self.m2 -= (x - mean_without) * (x - self.mean);
        self.mean = mean_without;
        self.count -= 1;
    }

    /// Another group's moments folded in (Chan's parallel formula).
    fn merge(&mut self, count: i64, mean: f64, m2: f64) {
        if count == 0 {
            return;
        }
        let total = self.count + count;
        let delta = mean - self.mean;
        self.m2 += m2 + delta * delta * (self.count as f64) * (count as f64) / total as f64;
        self.mean += delta * count as f64 / total as f64;
        self.count = total;
    }

    fn each(values: &[ArrayRef], mut f: impl FnMut(f64)) -> Result<()> {
        let Some(values) = values.first() else { return Ok(()) };
        doubles(values)?.as_primitive::<Float64Type>().iter().flatten().for_each(&mut f);
        Ok(())
    }
}

impl Accumulator for Moments {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        Moments::each(values, |x| self.add(x))
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        Moments::each(values, |x| self.remove(x))
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        if self.count < 2 {
            return Ok(ScalarValue::Float64(Some(0.0)));
        }
        let variance = (self.m2 / (self.count - 1) as f64).max(0.0);
        Ok(ScalarValue::Float64(Some(if self.variance { variance } else { variance.sqrt() })))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.count.into(), self.mean.into(), self.m2.into()])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [counts, means, m2s] = states else { return plan_err!("STDDEV state has three parts") };
        let (counts, means, m2s) = (
            counts.as_primitive::<Int64Type>(),
            means.as_primitive::<Float64Type>(),
            m2s.as_primitive::<Float64Type>(),
        );
        for row in 0..counts.len() {
            if counts.is_valid(row) {
                self.merge(counts.value(row), means.value(row), m2s.value(row));
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

    fn value(accumulator: &mut dyn Accumulator) -> f64 {
        match accumulator.evaluate().unwrap() {
            ScalarValue::Float64(Some(v)) => v,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn deviations_follow_ksqldb_and_take_values_out() {
        let mut sd = Moments::default();
        sd.update_batch(&[column(&[Some(1.0), Some(2.0), Some(4.0), None])]).unwrap();
        assert!((value(&mut sd) - 1.5275252316519468).abs() < 1e-12);
        let mut variance = Moments { variance: true, ..Moments::default() };
        variance.update_batch(&[column(&[Some(1.0), Some(2.0), Some(4.0)])]).unwrap();
        assert!((value(&mut variance) - 2.3333333333333335).abs() < 1e-12);
        variance.retract_batch(&[column(&[Some(4.0)])]).unwrap();
        assert!((value(&mut variance) - 0.5).abs() < 1e-12);
        variance.retract_batch(&[column(&[Some(1.0)])]).unwrap();
        assert_eq!(value(&mut variance), 0.0, "one value left");
        let mut merged = Moments { variance: true, ..Moments::default() };
        merged.update_batch(&[column(&[Some(1.0)])]).unwrap();
        let mut other = Moments { variance: true, ..Moments::default() };
        other.update_batch(&[column(&[Some(2.0), Some(4.0)])]).unwrap();
        let state: Vec<ArrayRef> = other.state().unwrap().iter().map(|s| s.to_array().unwrap()).collect();
        merged.merge_batch(&state).unwrap();
        assert!((value(&mut merged) - 2.3333333333333335).abs() < 1e-12);
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
