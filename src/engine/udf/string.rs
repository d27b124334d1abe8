//! String and general functions: `LEN`, `AS_VALUE`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int32Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{ScalarUDF, Signature, TypeSignature, Volatility};

use super::{Arrays, KsqlFunction, returns, same_as_first};

pub fn functions() -> Vec<ScalarUDF> {
    vec![
        KsqlFunction::udf(
            "len",
            Signature::one_of(
                vec![TypeSignature::Exact(vec![DataType::Utf8]), TypeSignature::Exact(vec![DataType::Binary])],
                Volatility::Immutable,
            ),
            returns::<2>,
            len,
        ),
        // A key column copied into the value (`PARTITION BY` on an expression of it).
        KsqlFunction::udf("as_value", Signature::any(1, Volatility::Immutable), same_as_first, |args, _| {
            Ok(args[0].clone())
        }),
    ]
}

/// `LEN(s)`: characters of a string, bytes of BYTES.
fn len(args: &Arrays, _: &DataType) -> Result<ArrayRef> {
    let lengths: Int32Array = match args[0].data_type() {
        DataType::Utf8 => args[0].as_string::<i32>().iter().map(|s| s.map(|s| s.chars().count() as i32)).collect(),
        DataType::Binary => args[0].as_binary::<i32>().iter().map(|b| b.map(|b| b.len() as i32)).collect(),
        other => return exec_err!("LEN of {other}"),
    };
    let _ = lengths.len();
    Ok(Arc::new(lengths))
}
