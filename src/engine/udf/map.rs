//! Map functions: `ENTRIES`, `MAP_UNION`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, ListArray, MapArray, StructArray, UInt32Array};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::{concat, take};
use datafusion::arrow::datatypes::{DataType, Field, Fields};
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::{ScalarUDF, Signature, Volatility};

use super::{Arrays, KsqlFunction, same_as_first};

pub fn functions() -> Vec<ScalarUDF> {
    vec![
        KsqlFunction::udf("entries", Signature::any(2, Volatility::Immutable), entries_type, entries),
        KsqlFunction::udf("map_union", Signature::any(2, Volatility::Immutable), same_as_first, map_union),
    ]
}

fn entry_fields(map: &DataType) -> Result<Fields> {
    let DataType::Map(entries, _) = map else { return plan_err!("ENTRIES needs a MAP, not {map}") };
    let DataType::Struct(kv) = entries.data_type() else { return plan_err!("a map's entries are a struct") };
    Ok(Fields::from(vec![
        Field::new("K", kv[0].data_type().clone(), true),
        Field::new("V", kv[1].data_type().clone(), true),
    ]))
}

/// `ARRAY<STRUCT<K, V>>`.
fn entries_type(args: &[DataType]) -> Result<DataType> {
    let fields = entry_fields(args.first().unwrap_or(&DataType::Null))?;
    Ok(DataType::List(Arc::new(Field::new("item", DataType::Struct(fields), true))))
}

/// `ENTRIES(map, sorted)`: the entries as structs `{K, V}`, by key when `sorted`.
fn entries(args: &Arrays, result: &DataType) -> Result<ArrayRef> {
    let DataType::List(item) = result else { return exec_err!("ENTRIES returns a list") };
    let DataType::Struct(fields) = item.data_type() else { return exec_err!("ENTRIES returns structs") };
    let map = args[0].as_map();
    let sorted = args[1].as_boolean_opt().cloned().unwrap_or_else(|| BooleanArray::from(vec![false; map.len()]));
    let mut order: Vec<u32> = Vec::with_capacity(map.entries().len());
    let mut lengths = Vec::with_capacity(map.len());
    for row in 0..map.len() {
        let (start, end) = (map.value_offsets()[row] as usize, map.value_offsets()[row + 1] as usize);
        let mut rows: Vec<u32> = (start as u32..end as u32).collect();
        if !map.is_null(row) && sorted.is_valid(row) && sorted.value(row) {
            let keys = map.keys();
            let texts: Vec<String> = rows
                .iter()
                .map(|i| datafusion::arrow::util::display::array_value_to_string(keys, *i as usize).unwrap_or_default())
                .collect();
            let mut paired: Vec<(String, u32)> = texts.into_iter().zip(rows).collect();
            paired.sort();
            rows = paired.into_iter().map(|(_, i)| i).collect();
        }
        lengths.push(rows.len());
        order.extend(rows);
    }
    let indices = UInt32Array::from(order);
    let keys = take(map.keys(), &indices, None)?;
    let values = take(map.values(), &indices, None)?;
    let structs = StructArray::try_new(fields.clone(), vec![keys, values], None)?;
    Ok(Arc::new(ListArray::try_new(
        item.clone(),
        OffsetBuffer::from_lengths(lengths),
        Arc::new(structs),
        map.nulls().cloned(),
    )?))
}

/// `MAP_UNION(a, b)`: the entries of both, `b`'s winning where keys collide; null maps are
/// empty, and the result is null only when both are.
fn map_union(args: &Arrays, _: &DataType) -> Result<ArrayRef> {
    let (a, b) = (args[0].as_map(), args[1].as_map());
    let DataType::Map(entries_field, sorted) = args[0].data_type() else { return exec_err!("MAP_UNION needs maps") };
    let all_keys = concat(&[a.keys().as_ref(), b.keys().as_ref()])?;
    let all_values = concat(&[a.values().as_ref(), b.values().as_ref()])?;
    let offset_b = a.keys().len() as u32;
    let mut order: Vec<u32> = Vec::new();
    let mut lengths = Vec::with_capacity(a.len());
    let mut nulls = Vec::with_capacity(a.len());
    for row in 0..a.len() {
        let mut chosen: Vec<(String, u32)> = Vec::new();
        let mut add = |map: &MapArray, base: u32| {
            if map.is_null(row) {
                return;
            }
            let (start, end) = (map.value_offsets()[row] as u32, map.value_offsets()[row + 1] as u32);
            for i in start..end {
                let key =
                    datafusion::arrow::util::display::array_value_to_string(map.keys(), i as usize).unwrap_or_default();
                match chosen.iter_mut().find(|(k, _)| *k == key) {
                    Some(existing) => existing.1 = base + i,
                    None => chosen.push((key, base + i)),
                }
            }
        };
        add(a, 0);
        add(b, offset_b);
        nulls.push(!(a.is_null(row) && b.is_null(row)));
        lengths.push(chosen.len());
        order.extend(chosen.into_iter().map(|(_, i)| i));
    }
    let indices = UInt32Array::from(order);
    let DataType::Struct(kv) = entries_field.data_type() else { return exec_err!("a map's entries are a struct") };
    let entries = StructArray::try_new(
        kv.clone(),
        vec![take(&all_keys, &indices, None)?, take(&all_values, &indices, None)?],
        None,
    )?;
    Ok(Arc::new(MapArray::try_new(
        entries_field.clone(),
        OffsetBuffer::from_lengths(lengths),
        entries,
        Some(nulls.into()),
        *sorted,
    )?))
}
