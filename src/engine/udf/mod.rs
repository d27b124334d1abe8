//! ksqlDB's functions on top of DataFusion's registry: aliases where DataFusion has the same
//! function under another name, and UDFs where ksqlDB's semantics differ or DataFusion has
//! none. One file per family; each UDF is a [`KsqlFunction`]: a name, a signature, how its
//! return type follows from its arguments, and a function over whole arrays (batch at a
//! time, never row by row through DataFusion).

pub mod aggregates;
pub mod arrays;
pub mod bytes;
pub mod cast;
pub mod catalogue;
pub mod dates;
pub mod json;
pub mod json_text;
pub mod lambdas;
pub mod map;
pub mod mask;
pub mod math;
pub mod patterns;
pub mod statistics;
pub mod string;
pub mod text;
pub mod time;
pub mod words;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature};
use datafusion::prelude::SessionContext;

/// ksqlDB names for DataFusion functions with the same semantics.
const ALIASES: [(&str, &str); 3] = [
    ("ucase", "upper"),
    ("lcase", "lower"),
    // DataFusion's IFNULL (`nvl`) takes primitive types only; ksqlDB's takes any.
    ("ifnull", "coalesce"),
];

/// ksqlDB names for DataFusion aggregates with the same semantics (arrival order is the
/// order a query's accumulators see).
const AGGREGATE_ALIASES: [(&str, &str); 1] = [("collect_list", "array_agg")];

/// A ksqlDB function over arrays. Functions are one per name, so the name is their identity.
#[derive(Debug)]
pub struct KsqlFunction {
    name: &'static str,
    signature: Signature,
    /// The result type for the argument types (after the signature's coercions).
    return_type: fn(&[DataType]) -> Result<DataType>,
    /// The function over the arguments as arrays of the batch's length, and the result type.
    invoke: Invoke,
}

impl KsqlFunction {
    /// The function as DataFusion registers it.
    pub fn udf(
        name: &'static str,
        signature: Signature,
        return_type: fn(&[DataType]) -> Result<DataType>,
        invoke: fn(&[ArrayRef], &DataType) -> Result<ArrayRef>,
    ) -> ScalarUDF {
        ScalarUDF::from(KsqlFunction { name, signature, return_type, invoke })
    }
}

impl PartialEq for KsqlFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.signature == other.signature
    }
}

impl Eq for KsqlFunction {}

impl std::hash::Hash for KsqlFunction {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.signature.hash(state);
    }
}

impl ScalarUDFImpl for KsqlFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        (self.return_type)(arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        // A call on literals only still answers for every row.
        let arrays: Vec<ArrayRef> = arrays
            .into_iter()
            .map(|a| if a.len() == args.number_rows { Ok(a) } else { expand(&a, args.number_rows) })
            .collect::<Result<_>>()?;
        let result = args.return_field.data_type();
        match (self.invoke)(&arrays, result) {
            Ok(array) => Ok(ColumnarValue::Array(array)),
            Err(_) => Ok(ColumnarValue::Array(self.invoke_row_by_row(&arrays, result, args.number_rows)?)),
        }
    }
}

impl KsqlFunction {
    /// The call made again one row at a time, after it failed on the whole batch: as ksqlDB
    /// does with a function that throws, a row it fails on gets NULL from this call (not from
    /// the whole expression: `COALESCE(PARSE_DATE(s, 'yyyy'), …)` goes on to its next
    /// argument), and the failure is noted for the processing log ([`take_call_errors`]).
    fn invoke_row_by_row(&self, arrays: &[ArrayRef], result: &DataType, rows: usize) -> Result<ArrayRef> {
        let mut parts: Vec<ArrayRef> = Vec::with_capacity(rows);
        for row in 0..rows {
            let one: Vec<ArrayRef> = arrays.iter().map(|a| a.slice(row, 1)).collect();
            match (self.invoke)(&one, result) {
                Ok(value) => parts.push(value),
                Err(e) => {
                    note_call_error(row, format!("{}: {}", self.name.to_uppercase(), strip_prefixes(&e.to_string())));
                    parts.push(datafusion::arrow::array::new_null_array(result, 1));
                }
            }
        }
        let parts: Vec<&dyn datafusion::arrow::array::Array> = parts.iter().map(|p| p.as_ref()).collect();
        Ok(datafusion::arrow::compute::concat(&parts)?)
    }
}

/// The most failed calls kept for the processing log between two evaluations.
const MAX_CALL_ERRORS: usize = 1024;

thread_local! {
    /// Calls that failed on a row (its index in the batch the call saw) since the last
    /// [`take_call_errors`]; evaluation is synchronous, so they are the current evaluation's.
    static CALL_ERRORS: std::cell::RefCell<Vec<(usize, String)>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn note_call_error(row: usize, message: String) {
    CALL_ERRORS.with(|errors| {
        let mut errors = errors.borrow_mut();
        if errors.len() < MAX_CALL_ERRORS {
            errors.push((row, message));
        }
    });
}

/// The calls that failed on a row since the last time this was asked (on this thread), each
/// with the row's index in the batch the call saw, and why.
pub fn take_call_errors() -> Vec<(usize, String)> {
    CALL_ERRORS.with(|errors| std::mem::take(&mut *errors.borrow_mut()))
}

/// An error's message without DataFusion's "Execution error: " and the like.
fn strip_prefixes(message: &str) -> &str {
    let mut message = message;
    for prefix in ["Execution error: ", "Error during planning: ", "Arrow error: "] {
        message = message.strip_prefix(prefix).unwrap_or(message);
    }
    message
}

/// A one-row array repeated `rows` times.
fn expand(array: &ArrayRef, rows: usize) -> Result<ArrayRef> {
    let scalar = datafusion::common::ScalarValue::try_from_array(array, 0)?;
    scalar.to_array_of_size(rows)
}

/// A fixed return type.
pub(crate) fn returns<const N: usize>(_: &[DataType]) -> Result<DataType> {
    Ok(match N {
        0 => DataType::Utf8,
        1 => DataType::Int64,
        2 => DataType::Int32,
        3 => DataType::Date32,
        4 => DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Millisecond, None),
        5 => DataType::Time32(datafusion::arrow::datatypes::TimeUnit::Millisecond),
        _ => DataType::Boolean,
    })
}

/// The type of the first argument.
pub(crate) fn same_as_first(args: &[DataType]) -> Result<DataType> {
    Ok(args.first().cloned().unwrap_or(DataType::Null))
}

/// Registers ksqlDB's functions on a planning context.
pub fn register(context: &SessionContext) {
    for (ksql, datafusion_name) in ALIASES {
        if let Ok(udf) = context.udf(datafusion_name) {
            context.register_udf(udf.as_ref().clone().with_aliases([ksql]));
        }
    }
    context.register_udf(ScalarUDF::from(cast::KsqlCast::new()));
    for udaf in aggregates::functions().into_iter().chain(statistics::functions()) {
        context.register_udaf(udaf);
    }
    // Aggregates under ksqlDB's names where DataFusion's behave the same.
    for (ksql, datafusion_name) in AGGREGATE_ALIASES {
        if let Ok(udaf) = context.udaf(datafusion_name) {
            context.register_udaf(udaf.as_ref().clone().with_aliases([ksql]));
        }
    }
    // Lambdas: TRANSFORM, FILTER and REDUCE over arrays and maps.
    for function in lambdas::functions() {
        context.register_higher_order_function(function);
    }
    for udf in json::functions()
        .into_iter()
        .chain(string::functions())
        .chain(text::functions())
        .chain(dates::functions())
        .chain(math::functions())
        .chain(time::functions())
        .chain(map::functions())
        .chain(patterns::functions())
        .chain(mask::functions())
        .chain(words::functions())
        .chain(arrays::functions())
        .chain(bytes::functions())
        .chain(json_text::functions())
    {
        context.register_udf(udf);
    }
}

/// A function over its arguments (as arrays) and its result type.
pub(crate) type Invoke = fn(&Arrays, &DataType) -> Result<ArrayRef>;

/// The arguments of a call, as arrays of the batch's length.
pub(crate) type Arrays = [ArrayRef];

/// Arrays of strings for the UDFs' unit tests.
#[cfg(test)]
pub(crate) mod test_arrays {
    use std::sync::Arc;

    use datafusion::arrow::array::{ArrayRef, AsArray, StringArray};

    pub fn strings(values: &[Option<&str>]) -> ArrayRef {
        Arc::new(StringArray::from(values.to_vec()))
    }

    pub fn texts(array: &ArrayRef) -> Vec<Option<String>> {
        array.as_string::<i32>().iter().map(|s| s.map(str::to_owned)).collect()
    }
}
