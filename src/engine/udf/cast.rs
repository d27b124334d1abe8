//! `CAST(x AS ARRAY<…> | MAP<…> | STRUCT<…>)`: ksqlDB's casts to its complex types, which
//! DataFusion's SQL planner has no syntax for. The rewrite turns such a cast into
//! `ksql_cast(x, 'TYPE')`; the type is read from the literal when the query is planned.
//!
//! Arrays and maps cast element by element; structs field by field by name (a field the
//! source lacks is null), as ksqlDB casts them.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, ListArray, MapArray, StructArray, new_null_array};
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::sql::types::ksql_type_name;

/// `ksql_cast(value, 'type')`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct KsqlCast {
    signature: Signature,
}

impl KsqlCast {
    pub fn new() -> Self {
        KsqlCast { signature: Signature::any(2, Volatility::Immutable) }
    }
}

impl Default for KsqlCast {
    fn default() -> Self {
        Self::new()
    }
}

/// The Arrow type of a ksqlDB type's text (`ARRAY<INT>`).
pub fn arrow_type_of(text: &str) -> Result<DataType> {
    let dialect = crate::sql::dialect::EddyDialect::default();
    let mut parser = datafusion::sql::sqlparser::parser::Parser::new(&dialect)
        // `>>` would tokenize as a shift.
        .try_with_sql(&text.replace('>', " > "))
        .map_err(|e| datafusion::error::DataFusionError::Plan(e.to_string()))?;
    let sql_type = crate::sql::types::parse_type(&mut parser)
        .map_err(|e| datafusion::error::DataFusionError::Plan(e.to_string()))?;
    sql_type.to_arrow(&|_| None).map_err(|e| datafusion::error::DataFusionError::Plan(e.to_string()))
}

impl ScalarUDFImpl for KsqlCast {
    fn name(&self) -> &str {
        "ksql_cast"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        plan_err!("ksql_cast needs its target type as a literal")
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let Some(Some(ScalarValue::Utf8(Some(text)))) = args.scalar_arguments.get(1) else {
            return plan_err!("ksql_cast needs its target type as a literal");
        };
        let target = arrow_type_of(text)?;
        let source = args.arg_fields[0].data_type();
        if !castable(source, &target) {
            return plan_err!("Cast of {} to {} is not supported", ksql_type_name(source), ksql_type_name(&target));
        }
        Ok(Arc::new(Field::new(self.name(), target, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let target = args.return_field.data_type().clone();
        let value = args.args[0].to_array(args.number_rows)?;
        Ok(ColumnarValue::Array(cast_value(&value, &target)?))
    }
}

/// Whether ksqlDB casts `source` to `target`: like kinds to like kinds, null to anything.
fn castable(source: &DataType, target: &DataType) -> bool {
    matches!(
        (source, target),
        (DataType::Null, _)
            | (DataType::List(_), DataType::List(_) | DataType::Utf8)
            | (DataType::Map(..), DataType::Map(..) | DataType::Utf8)
            | (DataType::Struct(_), DataType::Struct(_) | DataType::Utf8)
    )
}

/// Casts `value` to `target`, nested types part by part (a part that does not convert is
/// null, as ksqlDB's casts give null rather than fail).
pub fn cast_value(value: &ArrayRef, target: &DataType) -> Result<ArrayRef> {
    if value.data_type() == target {
        return Ok(value.clone());
    }
    match (value.data_type(), target) {
        (DataType::Null, _) => Ok(new_null_array(target, value.len())),
        (DataType::List(_), DataType::List(item)) => {
            let list = value.as_list::<i32>();
            let values = cast_value(list.values(), item.data_type())?;
            Ok(Arc::new(ListArray::try_new(item.clone(), list.offsets().clone(), values, list.nulls().cloned())?))
        }
        (DataType::Map(_, _), DataType::Map(entries, sorted)) => {
            let map = value.as_map();
            let DataType::Struct(kv) = entries.data_type() else {
                return exec_err!("a map's entries are a struct");
            };
            let keys = cast_value(map.keys(), kv[0].data_type())?;
            let values = cast_value(map.values(), kv[1].data_type())?;
            let entries_array = StructArray::try_new(kv.clone(), vec![keys, values], None)?;
            Ok(Arc::new(MapArray::try_new(
                entries.clone(),
                map.offsets().clone(),
                entries_array,
                map.nulls().cloned(),
                *sorted,
            )?))
        }
        (DataType::Struct(_), DataType::Struct(fields)) => {
            let source = value.as_struct();
            let columns = fields
                .iter()
                .map(|field| {
                    let found = source.column_by_name(field.name()).or_else(|| {
                        // ksqlDB matches field names as it resolves identifiers.
                        let position =
                            source.fields().iter().position(|f| f.name().eq_ignore_ascii_case(field.name()))?;
                        Some(source.column(position))
                    });
                    match found {
                        Some(column) => cast_value(column, field.data_type()),
                        None => Ok(new_null_array(field.data_type(), source.len())),
                    }
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(Arc::new(StructArray::try_new(fields.clone(), columns, source.nulls().cloned())?))
        }
        (DataType::List(_) | DataType::Map(..) | DataType::Struct(_), DataType::Utf8) => {
            let strings: datafusion::arrow::array::StringArray =
                (0..value.len()).map(|row| (!value.is_null(row)).then(|| java_text(value, row))).collect();
            Ok(Arc::new(strings))
        }
        // Java's narrowing: a BIGINT too large for an INT wraps, as ksqlDB's cast does.
        (DataType::Int64, DataType::Int32) => {
            let wide = value.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
            Ok(Arc::new(datafusion::arrow::compute::unary::<_, _, datafusion::arrow::datatypes::Int32Type>(
                wide,
                |v| v as i32,
            )))
        }
        _ => Ok(cast_with_options(value, target, &CastOptions { safe: true, ..Default::default() })?),
    }
}

/// A value as Java's `toString` writes it, which is ksqlDB's cast to STRING: `[1, 2]`,
/// `{k=1}`, `Struct{F0=1,f1=3}`; inside them a DOUBLE as `Double.toString` (`1.0E10`), a
/// DECIMAL as `BigDecimal.toString` (`1E-7`), a TIME as `java.sql.Time` (`12:30:00`), a
/// TIMESTAMP as `java.sql.Timestamp` in UTC (`2021-03-15 12:30:00.0`), BYTES as a
/// `ByteBuffer` (`java.nio.HeapByteBuffer[pos=0 lim=3 cap=3]`).
fn java_text(array: &ArrayRef, row: usize) -> String {
    use datafusion::arrow::util::display::array_value_to_string;
    if array.is_null(row) {
        return "null".into();
    }
    match array.data_type() {
        DataType::List(_) => {
            let items = array.as_list::<i32>().value(row);
            let parts: Vec<String> = (0..items.len()).map(|i| java_text(&items, i)).collect();
            format!("[{}]", parts.join(", "))
        }
        DataType::Map(..) => {
            let entries = array.as_map().value(row);
            let (keys, values) = (entries.column(0).clone(), entries.column(1).clone());
            let parts: Vec<String> =
                (0..entries.len()).map(|i| format!("{}={}", java_text(&keys, i), java_text(&values, i))).collect();
            format!("{{{}}}", parts.join(", "))
        }
        DataType::Struct(fields) => {
            let columns = array.as_struct().columns();
            let parts: Vec<String> =
                fields.iter().zip(columns).map(|(f, c)| format!("{}={}", f.name(), java_text(c, row))).collect();
            format!("Struct{{{}}}", parts.join(","))
        }
        DataType::Float64 => {
            crate::format::java_double(array.as_primitive::<datafusion::arrow::datatypes::Float64Type>().value(row))
        }
        DataType::Decimal128(_, scale) => {
            java_big_decimal(array.as_primitive::<datafusion::arrow::datatypes::Decimal128Type>().value(row), *scale)
        }
        DataType::Time32(_) | DataType::Timestamp(..) => {
            let millis = match datafusion::arrow::compute::cast(&array.slice(row, 1), &DataType::Int64) {
                Ok(m) => m.as_primitive::<datafusion::arrow::datatypes::Int64Type>().value(0),
                Err(_) => return array_value_to_string(array, row).unwrap_or_default(),
            };
            let Some(at) = chrono::DateTime::from_timestamp_millis(millis) else { return String::new() };
            match array.data_type() {
                DataType::Time32(_) => at.format("%H:%M:%S").to_string(),
                _ => {
                    let nanos = format!("{:09}", at.timestamp_subsec_nanos());
                    let nanos = nanos.trim_end_matches('0');
                    format!("{}.{}", at.format("%Y-%m-%d %H:%M:%S"), if nanos.is_empty() { "0" } else { nanos })
                }
            }
        }
        DataType::Binary => {
            let n = array.as_binary::<i32>().value(row).len();
            format!("java.nio.HeapByteBuffer[pos=0 lim={n} cap={n}]")
        }
        _ => array_value_to_string(array, row).unwrap_or_default(),
    }
}

/// `BigDecimal.toString` of `unscaled` × 10^-`scale`: plain digits unless the scale is
/// negative or the adjusted exponent is below -6, then `d.dddE±n`.
fn java_big_decimal(unscaled: i128, scale: i8) -> String {
    let digits = unscaled.unsigned_abs().to_string();
    let sign = if unscaled < 0 { "-" } else { "" };
    let scale = i64::from(scale);
    let adjusted = digits.len() as i64 - 1 - scale;
    if scale >= 0 && adjusted >= -6 {
        if scale == 0 {
            return format!("{sign}{digits}");
        }
        let padded = format!("{digits:0>width$}", width = scale as usize + 1);
        let (whole, fraction) = padded.split_at(padded.len() - scale as usize);
        return format!("{sign}{whole}.{fraction}");
    }
    let (first, rest) = digits.split_at(1);
    let point = if rest.is_empty() { String::new() } else { format!(".{rest}") };
    let exponent = if adjusted >= 0 { format!("+{adjusted}") } else { adjusted.to_string() };
    format!("{sign}{first}{point}E{exponent}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_javas() {
        assert_eq!(java_big_decimal(123, 2), "1.23");
        assert_eq!(java_big_decimal(-5, 3), "-0.005");
        assert_eq!(java_big_decimal(1, 7), "1E-7");
        assert_eq!(java_big_decimal(12, 8), "1.2E-7");
        assert_eq!(java_big_decimal(0, 2), "0.00");
        let doubles: ArrayRef = Arc::new(datafusion::arrow::array::Float64Array::from(vec![1e10, 2.5]));
        let list = ListArray::new(
            Arc::new(Field::new("item", DataType::Float64, true)),
            datafusion::arrow::buffer::OffsetBuffer::from_lengths([2]),
            doubles,
            None,
        );
        let list: ArrayRef = Arc::new(list);
        assert_eq!(java_text(&list, 0), "[1.0E10, 2.5]");
        let times: ArrayRef =
            Arc::new(datafusion::arrow::array::TimestampMillisecondArray::from(vec![1_615_811_400_120]));
        assert_eq!(java_text(&times, 0), "2021-03-15 12:30:00.12");
    }
}
