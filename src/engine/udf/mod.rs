//! ksqlDB's functions on top of DataFusion's registry: aliases where DataFusion has the same
//! function under another name, and UDFs where ksqlDB's semantics differ or DataFusion has
//! none. One file per family.

pub mod cast;

use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::SessionContext;

/// ksqlDB names for DataFusion functions with the same semantics.
const ALIASES: [(&str, &str); 2] = [("ucase", "upper"), ("lcase", "lower")];

/// Registers ksqlDB's functions on a planning context.
pub fn register(context: &SessionContext) {
    for (ksql, datafusion_name) in ALIASES {
        if let Ok(udf) = context.udf(datafusion_name) {
            context.register_udf(udf.as_ref().clone().with_aliases([ksql]));
        }
    }
    context.register_udf(ScalarUDF::from(cast::KsqlCast::new()));
}
