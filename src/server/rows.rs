//! Query rows as ksqlDB's REST API writes them: each row a JSON array of its column values
//! (encoded by the JSON format's Arrow encoder, as a JSON sink would write them), and the
//! columns as ksqlDB's type names.

use serde_json::Value;

use crate::session::{QueryRows, RowsHeader};
use crate::sql::ast::SqlType;

/// A column's type as ksqlDB names it (`BIGINT`, `ARRAY<STRING>`, `DECIMAL(4, 2)`).
pub fn type_name(data_type: &datafusion::arrow::datatypes::DataType) -> String {
    SqlType::from_arrow(data_type).map_or_else(|| data_type.to_string(), |t| t.to_string())
}

/// The header's columns as a ksqlDB schema string: `` `ID` STRING KEY, `COUNT` BIGINT ``
/// (key columns marked for pull queries only, as ksqlDB does).
pub fn schema_text(header: &RowsHeader) -> String {
    header
        .schema
        .fields()
        .iter()
        .zip(&header.keys)
        .map(|(f, key)| {
            let marked = if *key && !header.push { " KEY" } else { "" };
            format!("`{}` {}{marked}", f.name(), type_name(f.data_type()))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Column names and type names, for `/query-stream`'s metadata.
pub fn columns(header: &RowsHeader) -> (Vec<String>, Vec<String>) {
    header.schema.fields().iter().map(|f| (f.name().clone(), type_name(f.data_type()))).unzip()
}

/// Each row's values, in column order (a deletion's value columns null).
pub fn values(rows: &QueryRows) -> Result<Vec<Vec<Value>>, String> {
    let options = crate::format::FormatOptions::default();
    let encoded = crate::format::json::encode(&rows.batch, &options).map_err(|e| e.0)?;
    let names: Vec<&String> = rows.batch.schema_ref().fields().iter().map(|f| f.name()).collect();
    encoded
        .into_iter()
        .enumerate()
        .map(|(i, line)| {
            let mut object: serde_json::Map<String, Value> = match line {
                Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| e.to_string())?,
                None => serde_json::Map::new(),
            };
            let deleted = rows.is_tombstone(i);
            Ok(names
                .iter()
                .enumerate()
                .map(|(c, name)| {
                    let key = rows.header.keys.get(c).copied().unwrap_or(false);
                    if deleted && !key { Value::Null } else { object.remove(*name).unwrap_or(Value::Null) }
                })
                .collect())
        })
        .collect()
}
