//! Map functions: `ENTRIES`, `MAP_UNION`.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, ListArray, MapArray, StructArray, UInt32Array, new_null_array,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::{cast, concat, take};
use datafusion::arrow::datatypes::{DataType, Field, Fields};
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::{ScalarUDF, Signature, Volatility};

use super::{Arrays, KsqlFunction};
use crate::sql::types::ksql_type_name;

pub fn functions() -> Vec<ScalarUDF> {
    vec![
        KsqlFunction::udf("entries", Signature::any(2, Volatility::Immutable), entries_type, entries),
        KsqlFunction::udf("map_union", Signature::any(2, Volatility::Immutable), union_type, map_union),
    ]
}

/// ksqlDB's refusal of a call whose arguments fit no signature.
fn refuse<T>(name: &str, args: &[DataType]) -> Result<T> {
    let shown: Vec<String> = args.iter().map(ksql_type_name).collect();
    plan_err!("Function '{name}' does not accept parameters ({}).", shown.join(", "))
}

/// `ARRAY<STRUCT<K, V>>` for `ENTRIES(MAP<K, V>, BOOLEAN)`.
fn entries_type(args: &[DataType]) -> Result<DataType> {
    let [DataType::Map(entries, _), DataType::Boolean | DataType::Null] = args else { return refuse("ENTRIES", args) };
    let DataType::Struct(kv) = entries.data_type() else { return refuse("ENTRIES", args) };
    let fields = Fields::from(vec![
        Field::new("K", kv[0].data_type().clone(), true),
        Field::new("V", kv[1].data_type().clone(), true),
    ]);
    Ok(DataType::List(Arc::new(Field::new("item", DataType::Struct(fields), true))))
}

/// `ENTRIES(map, sorted)`: the entries as structs `{K, V}`, in the map's order or, when
/// `sorted`, by key (Java's `String.compareTo`, UTF-16 units). NULL for a NULL map; a NULL
/// `sorted` is an error (a Java `boolean`).
fn entries(args: &Arrays, result: &DataType) -> Result<ArrayRef> {
    let DataType::List(item) = result else { return exec_err!("ENTRIES returns a list") };
    let DataType::Struct(fields) = item.data_type() else { return exec_err!("ENTRIES returns structs") };
    let Some(map) = args[0].as_map_opt() else { return exec_err!("ENTRIES needs a MAP") };
    let Some(sorted) = args[1].as_boolean_opt() else { return exec_err!("ENTRIES: the sorted flag cannot be NULL") };
    let keys = map.keys();
    let key_texts = keys.as_string_opt::<i32>();
    let mut order: Vec<u32> = Vec::with_capacity(map.entries().len());
    let mut lengths = Vec::with_capacity(map.len());
    for row in 0..map.len() {
        if sorted.is_null(row) {
            return exec_err!("ENTRIES: the sorted flag cannot be NULL");
        }
        let (start, end) = (map.value_offsets()[row] as u32, map.value_offsets()[row + 1] as u32);
        let mut rows: Vec<u32> = (start..end).collect();
        if map.is_valid(row) && sorted.value(row) {
            match key_texts {
                Some(texts) => rows.sort_by(|&a, &b| {
                    texts.value(a as usize).encode_utf16().cmp(texts.value(b as usize).encode_utf16())
                }),
                None => {
                    let comparator = datafusion::arrow::array::make_comparator(
                        keys.as_ref(),
                        keys.as_ref(),
                        datafusion::arrow::compute::SortOptions::default(),
                    )?;
                    rows.sort_by(|&a, &b| comparator(a as usize, b as usize));
                }
            }
        }
        lengths.push(rows.len());
        order.extend(rows);
    }
    let indices = UInt32Array::from(order);
    let keys = take(keys, &indices, None)?;
    let values = take(map.values(), &indices, None)?;
    let structs = StructArray::try_new(fields.clone(), vec![keys, values], None)?;
    Ok(Arc::new(ListArray::try_new(
        item.clone(),
        OffsetBuffer::from_lengths(lengths),
        Arc::new(structs),
        map.nulls().cloned(),
    )?))
}

/// `MAP_UNION(a, b)`: the type of the first map (NULL literals stand for either).
fn union_type(args: &[DataType]) -> Result<DataType> {
    match args {
        [DataType::Map(..), DataType::Map(..) | DataType::Null] => Ok(args[0].clone()),
        [DataType::Null, DataType::Map(..)] => Ok(args[1].clone()),
        [DataType::Null, DataType::Null] => Ok(DataType::Null),
        _ => refuse("MAP_UNION", args),
    }
}

/// An argument as a map of the result's type (a NULL literal as NULL maps).
fn map_arg(array: &ArrayRef, result: &DataType) -> Result<ArrayRef> {
    if array.data_type().is_null() {
        return Ok(new_null_array(result, array.len()));
    }
    if array.data_type() == result {
        return Ok(array.clone());
    }
    Ok(cast(array, result)?)
}

/// `MAP_UNION(a, b)`: the entries of both, `b`'s winning where keys collide; null maps are
/// empty, and the result is null only when both are.
fn map_union(args: &Arrays, result: &DataType) -> Result<ArrayRef> {
    if result.is_null() {
        return Ok(new_null_array(result, args[0].len()));
    }
    let DataType::Map(entries_field, sorted) = result else { return exec_err!("MAP_UNION needs maps") };
    let (a, b) = (map_arg(&args[0], result)?, map_arg(&args[1], result)?);
    let (Some(a), Some(b)) = (a.as_map_opt(), b.as_map_opt()) else { return exec_err!("MAP_UNION needs maps") };
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

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{BooleanArray, Int32Builder, MapBuilder, NullArray, StringBuilder};

    use super::*;

    fn map(rows: &[Option<&[(&str, i32)]>]) -> ArrayRef {
        let mut builder = MapBuilder::new(None, StringBuilder::new(), Int32Builder::new());
        for row in rows {
            match row {
                Some(entries) => {
                    for (k, v) in *entries {
                        builder.keys().append_value(k);
                        builder.values().append_value(*v);
                    }
                    builder.append(true).unwrap();
                }
                None => builder.append(false).unwrap(),
            }
        }
        Arc::new(builder.finish())
    }

    fn keys(out: &ArrayRef) -> Vec<Option<Vec<String>>> {
        let list = out.as_list::<i32>();
        (0..list.len())
            .map(|row| {
                list.is_valid(row).then(|| {
                    let structs = list.value(row);
                    let keys = structs.as_struct().column(0).as_string::<i32>().clone();
                    keys.iter().map(|k| k.unwrap_or_default().to_owned()).collect()
                })
            })
            .collect()
    }

    #[test]
    fn entries_sort_by_utf16_units_and_need_a_flag() {
        let m = map(&[Some(&[("\u{FF61}", 1), ("😀", 2), ("b", 3)]), None]);
        let result = entries_type(&[m.data_type().clone(), DataType::Boolean]).unwrap();
        let sorted: ArrayRef = Arc::new(BooleanArray::from(vec![true, true]));
        let out = entries(&[m.clone(), sorted], &result).unwrap();
        assert_eq!(keys(&out), [Some(vec!["b".to_owned(), "😀".to_owned(), "\u{FF61}".to_owned()]), None]);
        let unsorted: ArrayRef = Arc::new(BooleanArray::from(vec![false, false]));
        let out = entries(&[m.clone(), unsorted], &result).unwrap();
        assert_eq!(keys(&out)[0], Some(vec!["\u{FF61}".to_owned(), "😀".to_owned(), "b".to_owned()]));
        // A NULL flag is an error (a Java boolean), even for a NULL map.
        assert!(entries(&[m.clone(), Arc::new(BooleanArray::from(vec![Some(true), None]))], &result).is_err());
        assert!(entries(&[m.clone(), Arc::new(NullArray::new(2))], &result).is_err());
        assert!(entries_type(&[m.data_type().clone(), DataType::Int32]).is_err());
    }

    #[test]
    fn union_takes_null_literals() {
        let m = map(&[Some(&[("a", 1)])]);
        let result = union_type(&[DataType::Null, m.data_type().clone()]).unwrap();
        let out = map_union(&[Arc::new(NullArray::new(1)), m.clone()], &result).unwrap();
        assert_eq!(out.as_map().value(0).len(), 1);
        assert_eq!(union_type(&[DataType::Null, DataType::Null]).unwrap(), DataType::Null);
        assert!(union_type(&[DataType::Int32, m.data_type().clone()]).is_err());
        let out = map_union(&[Arc::new(NullArray::new(1)), Arc::new(NullArray::new(1))], &DataType::Null).unwrap();
        assert!(out.is_null(0) || out.data_type().is_null());
    }
}
