//! ksqlDB's array functions: `ARRAY_CONCAT`, `ARRAY_CONTAINS`, `ARRAY_DISTINCT`,
//! `ARRAY_EXCEPT`, `ARRAY_INTERSECT`, `ARRAY_UNION`, `ARRAY_REMOVE`, `ARRAY_JOIN`,
//! `ARRAY_LENGTH`, `ARRAY_MAX`, `ARRAY_MIN`, `ARRAY_SORT`, `SLICE`, and between arrays and maps `AS_MAP`,
//! `MAP_KEYS`, `MAP_VALUES`.
//!
//! Elements of any type are handled alike: equality compares Arrow's row format (deep, as
//! Java's `equals`, with NULLs equal to each other), results are built by picking element
//! indices with `take`, and ordering follows Java's `compareTo` (strings by UTF-16 units,
//! bytes as signed, NaN above every double). Several of these names exist in DataFusion with
//! other semantics; registering them here replaces those.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Decimal128Array, Float64Array, Int32Array, Int64Array, ListArray, MapArray,
    StringArray, StructArray, UInt64Array, make_comparator, new_null_array,
};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer, ScalarBuffer};
use datafusion::arrow::compute::{SortOptions, cast, concat, take};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields, Float64Type, Int64Type};
use datafusion::arrow::row::{RowConverter, Rows, SortField};
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::binary::type_union_resolution;
use datafusion::logical_expr::{ScalarUDF, Signature, TypeSignature, Volatility};

use super::{Arrays, KsqlFunction};
use crate::sql::types::ksql_type_name;

pub fn functions() -> Vec<ScalarUDF> {
    vec![
        KsqlFunction::udf("array_concat", any(2), |a| same_list("ARRAY_CONCAT", a, 2), array_concat),
        // ARRAYCONTAINS is the function's old name.
        KsqlFunction::udf("array_contains", any(2), contains_type, array_contains).with_aliases(["arraycontains"]),
        KsqlFunction::udf("array_distinct", any(1), |a| same_list("ARRAY_DISTINCT", a, 1), array_distinct),
        KsqlFunction::udf("array_except", any(2), |a| same_list("ARRAY_EXCEPT", a, 2), array_except),
        KsqlFunction::udf("array_intersect", any(2), |a| same_list("ARRAY_INTERSECT", a, 2), array_intersect),
        KsqlFunction::udf("array_join", one_or_two(), join_type, array_join),
        // Replaces DataFusion's ARRAY_LENGTH (and its CARDINALITY, which counts nested elements).
        KsqlFunction::udf("array_length", any(1), length_type, array_length),
        KsqlFunction::udf("array_max", any(1), |a| extreme_type("ARRAY_MAX", a), array_max),
        KsqlFunction::udf("array_min", any(1), |a| extreme_type("ARRAY_MIN", a), array_min),
        KsqlFunction::udf("array_remove", any(2), remove_type, array_remove),
        KsqlFunction::udf("array_sort", one_or_two(), sort_type, array_sort),
        KsqlFunction::udf("array_union", any(2), |a| same_list("ARRAY_UNION", a, 2), array_union),
        KsqlFunction::udf("slice", any(3), slice_type, slice),
        KsqlFunction::udf("as_map", any(2), as_map_type, as_map),
        KsqlFunction::udf("map_keys", any(1), |a| map_part_type("MAP_KEYS", a, 0), |a, r| map_part(a, r, 0)),
        KsqlFunction::udf("map_values", any(1), |a| map_part_type("MAP_VALUES", a, 1), |a, r| map_part(a, r, 1)),
    ]
}

// ---- Signatures and result types ----
//
// The signatures take any arguments: the result types check them (refusing with ksqlDB's
// message) and unify the element types of arrays and values, and the functions cast their
// arguments to the unified type. (DataFusion's array signatures would coerce, but their
// errors are not ksqlDB's, and a fallback `Any` beside them stops their coercion.)

/// `n` arguments of any type.
fn any(n: usize) -> Signature {
    Signature::any(n, Volatility::Immutable)
}

/// One or two arguments of any type.
fn one_or_two() -> Signature {
    Signature::one_of(vec![TypeSignature::Any(1), TypeSignature::Any(2)], Volatility::Immutable)
}

/// ksqlDB's refusal of a call whose arguments fit no signature.
fn refuse<T>(name: &str, args: &[DataType]) -> Result<T> {
    let shown: Vec<String> = args.iter().map(ksql_type_name).collect();
    plan_err!("Function '{name}' does not accept parameters ({}).", shown.join(", "))
}

/// The element field of an array type.
fn item_of(data_type: &DataType) -> Option<&FieldRef> {
    match data_type {
        DataType::List(item)
        | DataType::LargeList(item)
        | DataType::FixedSizeList(item, _)
        | DataType::ListView(item)
        | DataType::LargeListView(item) => Some(item),
        _ => None,
    }
}

/// Whether two element types are the same ksqlDB type (the names and nullability of list
/// and map fields aside; struct field names count).
fn same_type(a: &DataType, b: &DataType) -> bool {
    a == b || ksql_type_name(a) == ksql_type_name(b)
}

/// The element type that the first `count` arguments (arrays or NULLs) and, `with_value`,
/// the next argument (a value) unify to, as DataFusion unifies types (`ARRAY<INT>` with a
/// BIGINT gives BIGINT); `None` when all are NULL.
fn unify(name: &str, args: &[DataType], count: usize, with_value: bool) -> Result<Option<DataType>> {
    if args.len() < count + usize::from(with_value) {
        return refuse(name, args);
    }
    let mut types: Vec<DataType> = Vec::new();
    for arg in &args[..count] {
        match item_of(arg) {
            Some(item) => types.push(item.data_type().clone()),
            None if arg.is_null() => {}
            None => return refuse(name, args),
        }
    }
    if with_value && !args[count].is_null() {
        types.push(args[count].clone());
    }
    let Some(first) = types.first() else { return Ok(None) };
    if types.iter().all(|t| same_type(first, t)) {
        return Ok(Some(first.clone()));
    }
    match type_union_resolution(&types).filter(|_| types.iter().all(|t| widens(first, t))) {
        Some(unified) => Ok(Some(unified)),
        None => refuse(name, args),
    }
}

/// Whether two types are the same but for numbers, which widen to each other (ksqlDB's
/// `INT -> BIGINT -> DECIMAL -> DOUBLE`); strings and numbers do not mix.
fn widens(a: &DataType, b: &DataType) -> bool {
    let numeric = |t: &DataType| t.is_numeric();
    match (a, b) {
        _ if same_type(a, b) || (numeric(a) && numeric(b)) => true,
        _ if a.is_null() || b.is_null() => true,
        (DataType::Struct(x), DataType::Struct(y)) => {
            x.len() == y.len()
                && x.iter().zip(y).all(|(x, y)| x.name() == y.name() && widens(x.data_type(), y.data_type()))
        }
        (DataType::Map(x, _), DataType::Map(y, _)) => widens(x.data_type(), y.data_type()),
        _ => match (item_of(a), item_of(b)) {
            (Some(x), Some(y)) => widens(x.data_type(), y.data_type()),
            _ => false,
        },
    }
}

/// `ARRAY<item>` as Eddy writes it.
fn list_of(item: DataType) -> DataType {
    DataType::List(Arc::new(Field::new("item", item, true)))
}

/// An array of the arguments' element type (NULL when no argument has one).
fn same_list(name: &str, args: &[DataType], count: usize) -> Result<DataType> {
    if args.len() != count {
        return refuse(name, args);
    }
    Ok(unify(name, args, count, false)?.map_or(DataType::Null, list_of))
}

/// The element type of `(ARRAY<T>, T)`.
fn array_and_value(name: &str, args: &[DataType]) -> Result<Option<DataType>> {
    if args.len() != 2 {
        return refuse(name, args);
    }
    unify(name, args, 1, true)
}

fn contains_type(args: &[DataType]) -> Result<DataType> {
    array_and_value("ARRAY_CONTAINS", args)?;
    Ok(DataType::Boolean)
}

fn remove_type(args: &[DataType]) -> Result<DataType> {
    Ok(array_and_value("ARRAY_REMOVE", args)?.map_or(DataType::Null, list_of))
}

/// Whether a type has a natural order in ksqlDB (Java's `Comparable`).
fn comparable(data_type: &DataType) -> bool {
    data_type.is_primitive()
        || matches!(
            data_type,
            DataType::Null
                | DataType::Boolean
                | DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Utf8View
                | DataType::Binary
                | DataType::LargeBinary
                | DataType::BinaryView
                | DataType::FixedSizeBinary(_)
        )
}

/// ARRAY_MAX and ARRAY_MIN: the element type, which must be comparable.
fn extreme_type(name: &str, args: &[DataType]) -> Result<DataType> {
    match same_list(name, args, 1)? {
        DataType::List(item) if comparable(item.data_type()) => Ok(item.data_type().clone()),
        DataType::Null => Ok(DataType::Null),
        _ => refuse(name, args),
    }
}

/// Whether an optional second argument is text.
fn text_or_absent(args: &[DataType]) -> bool {
    matches!(args.get(1), None | Some(DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null))
}

fn sort_type(args: &[DataType]) -> Result<DataType> {
    let element = unify("ARRAY_SORT", args, 1, false)?;
    if args.len() > 2 || !text_or_absent(args) || element.as_ref().is_some_and(|e| !comparable(e)) {
        return refuse("ARRAY_SORT", args);
    }
    Ok(element.map_or(DataType::Null, list_of))
}

/// Whether ARRAY_JOIN can write an element type: ksqlDB's primitives (BOOLEAN, INT,
/// BIGINT, DOUBLE, DECIMAL, STRING).
fn joinable(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Null
            | DataType::Boolean
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::Float64
            | DataType::Decimal128(..)
            | DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
    )
}

/// ARRAY_JOIN takes an array of any element type, as ksqlDB's generic signature does: an
/// element of a type it cannot write fails the call when there is one (see [`array_join`]).
fn join_type(args: &[DataType]) -> Result<DataType> {
    unify("ARRAY_JOIN", args, 1, false)?;
    if args.len() > 2 || !text_or_absent(args) {
        return refuse("ARRAY_JOIN", args);
    }
    Ok(DataType::Utf8)
}

fn length_type(args: &[DataType]) -> Result<DataType> {
    match args {
        [t] if t.is_null() || item_of(t).is_some() => Ok(DataType::Int32),
        _ => refuse("ARRAY_LENGTH", args),
    }
}

fn slice_type(args: &[DataType]) -> Result<DataType> {
    let element = unify("SLICE", args, 1, false)?;
    let index = |t: &DataType| t.is_integer() || t.is_null();
    if args.len() != 3 || !index(&args[1]) || !index(&args[2]) {
        return refuse("SLICE", args);
    }
    Ok(element.map_or(DataType::Null, list_of))
}

/// `MAP<STRING, T>` as Eddy writes it.
fn map_of(value: DataType) -> DataType {
    let entries = Fields::from(vec![Field::new("key", DataType::Utf8, false), Field::new("value", value, true)]);
    DataType::Map(Arc::new(Field::new("entries", DataType::Struct(entries), false)), false)
}

fn as_map_type(args: &[DataType]) -> Result<DataType> {
    let keys_are_text = |t: &DataType| {
        t.is_null()
            || item_of(t).is_some_and(|item| {
                matches!(item.data_type(), DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null)
            })
    };
    let values = args.get(1).filter(|v| v.is_null() || item_of(v).is_some());
    match values {
        Some(values) if args.len() == 2 && keys_are_text(&args[0]) => {
            Ok(map_of(item_of(values).map_or(DataType::Null, |item| item.data_type().clone())))
        }
        _ => refuse("AS_MAP", args),
    }
}

/// MAP_KEYS (`part` 0) and MAP_VALUES (`part` 1): an array of the map's keys or values.
fn map_part_type(name: &str, args: &[DataType], part: usize) -> Result<DataType> {
    match args {
        [DataType::Null] if part == 0 => Ok(list_of(DataType::Utf8)),
        [DataType::Null] => Ok(DataType::Null),
        [DataType::Map(entries, _)] => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => Ok(list_of(kv[part].data_type().clone())),
            _ => refuse(name, args),
        },
        _ => refuse(name, args),
    }
}

// ---- Building blocks ----

/// The rows of the batch.
fn rows(args: &Arrays) -> usize {
    args.first().map_or(0, |a| a.len())
}

/// The element field of a list result type; `None` for the NULL type (element unknown).
fn result_item(result: &DataType) -> Option<FieldRef> {
    match result {
        DataType::List(item) => Some(item.clone()),
        _ => None,
    }
}

/// An argument as an array of `data_type` (a NULL literal as all NULLs).
fn conform(array: &ArrayRef, data_type: &DataType) -> Result<ArrayRef> {
    if array.data_type() == data_type {
        Ok(array.clone())
    } else if array.data_type().is_null() {
        Ok(new_null_array(data_type, array.len()))
    } else {
        Ok(cast(array, data_type)?)
    }
}

/// An array argument as a `ListArray` of `item`s.
fn list_arg(array: &ArrayRef, item: &FieldRef) -> Result<ListArray> {
    let list = conform(array, &DataType::List(item.clone()))?;
    match list.as_list_opt::<i32>() {
        Some(list) => Ok(list.clone()),
        None => exec_err!("expected an array, not {}", array.data_type()),
    }
}

/// The element indexes of one row of a list.
fn range(list: &ListArray, row: usize) -> Range<usize> {
    let offsets = list.value_offsets();
    offsets[row] as usize..offsets[row + 1] as usize
}

/// Row-format keys of elements: equal exactly when the elements are equal (deeply).
fn keys(converter: &RowConverter, values: &ArrayRef) -> Result<Rows> {
    Ok(converter.convert_columns(std::slice::from_ref(values))?)
}

fn converter(data_type: &DataType) -> Result<RowConverter> {
    Ok(RowConverter::new(vec![SortField::new(data_type.clone())])?)
}

/// Lists built row by row by picking elements (indexes into one values array).
struct Picks {
    indexes: Vec<u64>,
    offsets: Vec<i32>,
    valid: Vec<bool>,
}

impl Picks {
    fn new(rows: usize) -> Picks {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        Picks { indexes: Vec::new(), offsets, valid: Vec::with_capacity(rows) }
    }

    /// A row of the picked elements, in order.
    fn push(&mut self, picked: impl IntoIterator<Item = usize>) -> Result<()> {
        self.indexes.extend(picked.into_iter().map(|i| i as u64));
        self.close(true)
    }

    /// A NULL row.
    fn push_null(&mut self) -> Result<()> {
        self.close(false)
    }

    fn close(&mut self, valid: bool) -> Result<()> {
        let Ok(end) = i32::try_from(self.indexes.len()) else {
            return exec_err!("the arrays of one batch hold more than {} elements", i32::MAX);
        };
        self.offsets.push(end);
        self.valid.push(valid);
        Ok(())
    }

    fn finish(self, item: &FieldRef, values: &ArrayRef) -> Result<ArrayRef> {
        let picked = conform(&take(values.as_ref(), &UInt64Array::from(self.indexes), None)?, item.data_type())?;
        Ok(Arc::new(ListArray::try_new(
            item.clone(),
            OffsetBuffer::new(ScalarBuffer::from(self.offsets)),
            picked,
            Some(NullBuffer::from(self.valid)),
        )?))
    }
}

// ---- The functions ----

/// `ARRAY_CONCAT(a, b)`: `a`'s elements then `b`'s; a NULL array counts as empty unless both
/// are NULL.
fn array_concat(args: &Arrays, result: &DataType) -> Result<ArrayRef> {
    let Some(item) = result_item(result) else { return Ok(new_null_array(result, rows(args))) };
    let (a, b) = (list_arg(&args[0], &item)?, list_arg(&args[1], &item)?);
    let values = concat(&[a.values().as_ref(), b.values().as_ref()])?;
    let shift = a.values().len();
    let mut picks = Picks::new(a.len());
    for row in 0..a.len() {
        if a.is_null(row) && b.is_null(row) {
            picks.push_null()?;
            continue;
        }
        let left = if a.is_valid(row) { range(&a, row) } else { 0..0 };
        let right = if b.is_valid(row) { range(&b, row) } else { 0..0 };
        picks.push(left.chain(right.map(|i| i + shift)))?;
    }
    picks.finish(&item, &values)
}

/// The set functions, which keep distinct elements in encounter order.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SetOperation {
    /// `a`'s elements.
    Distinct,
    /// `a`'s elements absent from `b`.
    Except,
    /// `a`'s elements present in `b`.
    Intersect,
    /// `a`'s elements, then `b`'s.
    Union,
}

/// `ARRAY_DISTINCT(a)`: the distinct elements in first-occurrence order (one NULL kept).
fn array_distinct(args: &Arrays, result: &DataType) -> Result<ArrayRef> {
    set_operation(args, result, SetOperation::Distinct)
}

/// `ARRAY_EXCEPT(a, b)`: distinct elements of `a` that are not in `b`, in `a`'s order.
fn array_except(args: &Arrays, result: &DataType) -> Result<ArrayRef> {
    set_operation(args, result, SetOperation::Except)
}

/// `ARRAY_INTERSECT(a, b)`: distinct elements of `a` that are also in `b`, in `a`'s order.
fn array_intersect(args: &Arrays, result: &DataType) -> Result<ArrayRef> {
    set_operation(args, result, SetOperation::Intersect)
}

/// `ARRAY_UNION(a, b)`: distinct elements of `a`, then those of `b` not yet seen.
fn array_union(args: &Arrays, result: &DataType) -> Result<ArrayRef> {
    set_operation(args, result, SetOperation::Union)
}

/// A set function; a NULL array gives NULL.
fn set_operation(args: &Arrays, result: &DataType, operation: SetOperation) -> Result<ArrayRef> {
    let Some(item) = result_item(result) else { return Ok(new_null_array(result, rows(args))) };
    let a = list_arg(&args[0], &item)?;
    let b = match args.get(1) {
        Some(b) if operation != SetOperation::Distinct => Some(list_arg(b, &item)?),
        _ => None,
    };
    let values = match &b {
        Some(b) => concat(&[a.values().as_ref(), b.values().as_ref()])?,
        None => a.values().clone(),
    };
    let shift = a.values().len();
    let keys = keys(&converter(item.data_type())?, &values)?;
    let mut picks = Picks::new(a.len());
    for row in 0..a.len() {
        let b_range = match &b {
            Some(b) if b.is_null(row) => None,
            Some(b) => Some(range(b, row)),
            None => Some(0..0),
        };
        let Some(b_range) = b_range.filter(|_| a.is_valid(row)) else {
            picks.push_null()?;
            continue;
        };
        let others: HashSet<_> = match operation {
            SetOperation::Except | SetOperation::Intersect => b_range.clone().map(|i| keys.row(i + shift)).collect(),
            _ => HashSet::new(),
        };
        let mut seen = HashSet::new();
        let mut picked = Vec::new();
        for i in range(&a, row) {
            let key = keys.row(i);
            let wanted = match operation {
                SetOperation::Except => !others.contains(&key),
                SetOperation::Intersect => others.contains(&key),
                _ => true,
            };
            if seen.insert(key) && wanted {
                picked.push(i);
            }
        }
        if operation == SetOperation::Union {
            picked.extend(b_range.map(|i| i + shift).filter(|&i| seen.insert(keys.row(i))));
        }
        picks.push(picked)?;
    }
    picks.finish(&item, &values)
}

/// `ARRAY_CONTAINS(a, value)`: whether some element equals the value (a NULL value finds a
/// NULL element); FALSE for a NULL array, never NULL.
fn array_contains(args: &Arrays, _: &DataType) -> Result<ArrayRef> {
    let types: Vec<DataType> = args.iter().map(|a| a.data_type().clone()).collect();
    let Some(element) = array_and_value("ARRAY_CONTAINS", &types)?.filter(|_| !types[0].is_null()) else {
        return Ok(Arc::new(BooleanArray::from(vec![false; rows(args)])));
    };
    let item = Arc::new(Field::new("item", element, true));
    let list = list_arg(&args[0], &item)?;
    let needles = conform(&args[1], item.data_type())?;
    let converter = converter(item.data_type())?;
    let (keys, needles) = (keys(&converter, list.values())?, keys(&converter, &needles)?);
    let out: BooleanArray = (0..list.len())
        .map(|row| Some(list.is_valid(row) && range(&list, row).any(|i| keys.row(i) == needles.row(row))))
        .collect();
    Ok(Arc::new(out))
}

/// `ARRAY_REMOVE(a, value)`: `a` without the elements equal to the value (a NULL value
/// removes the NULLs); NULL for a NULL array.
fn array_remove(args: &Arrays, result: &DataType) -> Result<ArrayRef> {
    let Some(item) = result_item(result) else { return Ok(new_null_array(result, rows(args))) };
    let list = list_arg(&args[0], &item)?;
    let needles = conform(&args[1], item.data_type())?;
    let converter = converter(item.data_type())?;
    let (keys, needles) = (keys(&converter, list.values())?, keys(&converter, &needles)?);
    let mut picks = Picks::new(list.len());
    for row in 0..list.len() {
        if list.is_null(row) {
            picks.push_null()?;
        } else {
            picks.push(range(&list, row).filter(|&i| keys.row(i) != needles.row(row)))?;
        }
    }
    picks.finish(&item, list.values())
}

/// Java's `compareTo` between two non-NULL elements of one array, by index.
type NaturalOrder = Box<dyn Fn(usize, usize) -> Ordering + Send + Sync>;

/// The natural order of an array's elements: strings by UTF-16 units, bytes as signed
/// bytes, doubles as `Double.compare` (-0.0 before 0.0, NaN last), other types by value.
fn natural_order(values: &ArrayRef) -> Result<NaturalOrder> {
    Ok(match values.data_type() {
        DataType::Null => Box::new(|_, _| Ordering::Equal),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let strings = cast(values, &DataType::Utf8)?.as_string::<i32>().clone();
            Box::new(move |i, j| strings.value(i).encode_utf16().cmp(strings.value(j).encode_utf16()))
        }
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => {
            let bytes = cast(values, &DataType::Binary)?.as_binary::<i32>().clone();
            let signed = |b: &[u8]| b.iter().map(|&x| x as i8).collect::<Vec<_>>();
            Box::new(move |i, j| signed(bytes.value(i)).cmp(&signed(bytes.value(j))))
        }
        DataType::Float16 | DataType::Float32 | DataType::Float64 => {
            let doubles = cast(values, &DataType::Float64)?.as_primitive::<Float64Type>().clone();
            Box::new(move |i, j| java_double_compare(doubles.value(i), doubles.value(j)))
        }
        _ => make_comparator(values.as_ref(), values.as_ref(), SortOptions::default())?,
    })
}

/// Java's `Double.compare`.
fn java_double_compare(a: f64, b: f64) -> Ordering {
    let bits = |x: f64| if x.is_nan() { 0x7ff8_0000_0000_0000_i64 } else { x.to_bits() as i64 };
    a.partial_cmp(&b).filter(|o| o.is_ne()).unwrap_or_else(|| bits(a).cmp(&bits(b)))
}

/// `ARRAY_MAX(a)`: the largest non-NULL element (the first of equals); NULL for a NULL,
/// empty or all-NULL array.
fn array_max(args: &Arrays, result: &DataType) -> Result<ArrayRef> {
    extreme(args, result, Ordering::Greater)
}

/// `ARRAY_MIN(a)`: the smallest non-NULL element, as ARRAY_MAX.
fn array_min(args: &Arrays, result: &DataType) -> Result<ArrayRef> {
    extreme(args, result, Ordering::Less)
}

fn extreme(args: &Arrays, result: &DataType, wanted: Ordering) -> Result<ArrayRef> {
    if result.is_null() {
        return Ok(new_null_array(result, rows(args)));
    }
    let list = list_arg(&args[0], &Arc::new(Field::new("item", result.clone(), true)))?;
    let values = list.values();
    let order = natural_order(values)?;
    let picks: UInt64Array = (0..list.len())
        .map(|row| {
            let mut best: Option<usize> = None;
            for i in range(&list, row).filter(|&i| list.is_valid(row) && values.is_valid(i)) {
                if best.is_none_or(|b| order(i, b) == wanted) {
                    best = Some(i);
                }
            }
            best.map(|i| i as u64)
        })
        .collect();
    Ok(take(values.as_ref(), &picks, None)?)
}

/// `ARRAY_SORT(a[, direction])`: the elements in natural order, ascending unless the
/// direction is `DESC`/`DESCENDING` (`ASC`/`ASCENDING` otherwise, any case); NULLs last
/// either way. NULL for a NULL array or a NULL or unknown direction.
fn array_sort(args: &Arrays, result: &DataType) -> Result<ArrayRef> {
    let Some(item) = result_item(result) else { return Ok(new_null_array(result, rows(args))) };
    let list = list_arg(&args[0], &item)?;
    let directions = args.get(1).map(|d| conform(d, &DataType::Utf8)).transpose()?;
    let directions = directions.as_ref().map(|d| d.as_string::<i32>());
    let values = list.values();
    let order = natural_order(values)?;
    let mut picks = Picks::new(list.len());
    for row in 0..list.len() {
        let descending = match directions {
            None => Some(false),
            Some(d) if d.is_null(row) => None,
            Some(d) => match d.value(row).to_uppercase().as_str() {
                "ASC" | "ASCENDING" => Some(false),
                "DESC" | "DESCENDING" => Some(true),
                _ => None,
            },
        };
        let Some(descending) = descending.filter(|_| list.is_valid(row)) else {
            picks.push_null()?;
            continue;
        };
        let (mut present, absent): (Vec<usize>, Vec<usize>) = range(&list, row).partition(|&i| values.is_valid(i));
        if descending {
            present.sort_by(|&i, &j| order(j, i));
        } else {
            present.sort_by(|&i, &j| order(i, j));
        }
        picks.push(present.into_iter().chain(absent))?;
    }
    picks.finish(&item, values)
}

/// `ARRAY_LENGTH(a)`: the number of elements (NULL ones included, nested ones not); NULL
/// for a NULL array.
fn array_length(args: &Arrays, _: &DataType) -> Result<ArrayRef> {
    let Some(item) = item_of(args[0].data_type()).cloned() else {
        return Ok(new_null_array(&DataType::Int32, rows(args)));
    };
    let list = list_arg(&args[0], &item)?;
    let lengths: Int32Array =
        (0..list.len()).map(|row| list.is_valid(row).then(|| range(&list, row).len() as i32)).collect();
    Ok(Arc::new(lengths))
}

/// `ARRAY_JOIN(a[, delimiter])`: the elements' text joined by the delimiter (`,` by
/// default, nothing for a NULL one), NULL elements as `null`; NULL for a NULL array. An
/// element that is not a BOOLEAN, INT, BIGINT, DOUBLE, DECIMAL or STRING is an error (NULL
/// ones and empty arrays of any type are fine).
fn array_join(args: &Arrays, _: &DataType) -> Result<ArrayRef> {
    let delimiters = args.get(1).map(|d| conform(d, &DataType::Utf8)).transpose()?;
    let delimiters = delimiters.as_ref().map(|d| d.as_string::<i32>());
    let Some(item) = item_of(args[0].data_type()).cloned() else {
        return Ok(new_null_array(&DataType::Utf8, rows(args)));
    };
    let list = list_arg(&args[0], &item)?;
    let texts = ElementTexts::new(list.values())?;
    let mut out = Vec::with_capacity(list.len());
    for row in 0..list.len() {
        if list.is_null(row) {
            out.push(None);
            continue;
        }
        let delimiter = match delimiters {
            None => ",",
            Some(d) if d.is_null(row) => "",
            Some(d) => d.value(row),
        };
        let parts = range(&list, row).map(|i| texts.text(i)).collect::<Result<Vec<String>>>()?;
        out.push(Some(parts.join(delimiter)));
    }
    super::words::string_array(&out)
}

/// Elements as Java's `toString` writes them.
enum ElementTexts {
    Nulls,
    Booleans(BooleanArray),
    Integers(Int64Array),
    Doubles(Float64Array),
    Decimals(Decimal128Array, i8),
    Strings(StringArray),
    /// Elements of a type ARRAY_JOIN cannot write.
    Unsupported(ArrayRef),
}

impl ElementTexts {
    fn new(values: &ArrayRef) -> Result<ElementTexts> {
        Ok(match values.data_type() {
            DataType::Null => ElementTexts::Nulls,
            DataType::Boolean => ElementTexts::Booleans(values.as_boolean().clone()),
            DataType::Float64 => ElementTexts::Doubles(values.as_primitive::<Float64Type>().clone()),
            DataType::Decimal128(_, scale) => ElementTexts::Decimals(values.as_primitive().clone(), *scale),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                ElementTexts::Strings(cast(values, &DataType::Utf8)?.as_string::<i32>().clone())
            }
            t if joinable(t) => {
                ElementTexts::Integers(cast(values, &DataType::Int64)?.as_primitive::<Int64Type>().clone())
            }
            _ => ElementTexts::Unsupported(values.clone()),
        })
    }

    fn text(&self, i: usize) -> Result<String> {
        let absent = match self {
            ElementTexts::Nulls => true,
            ElementTexts::Booleans(a) => a.is_null(i),
            ElementTexts::Integers(a) => a.is_null(i),
            ElementTexts::Doubles(a) => a.is_null(i),
            ElementTexts::Decimals(a, _) => a.is_null(i),
            ElementTexts::Strings(a) => a.is_null(i),
            ElementTexts::Unsupported(a) => a.is_null(i),
        };
        if absent {
            return Ok("null".into());
        }
        Ok(match self {
            ElementTexts::Nulls => "null".into(),
            ElementTexts::Booleans(a) => a.value(i).to_string(),
            ElementTexts::Integers(a) => a.value(i).to_string(),
            ElementTexts::Doubles(a) => crate::format::java_double(a.value(i)),
            ElementTexts::Decimals(a, scale) => {
                let unscaled = a.value(i);
                let digits = unscaled.unsigned_abs().to_string();
                super::json_text::big_decimal_text(unscaled < 0, &digits, i64::from(*scale), false)
            }
            ElementTexts::Strings(a) => a.value(i).to_owned(),
            ElementTexts::Unsupported(a) => {
                return exec_err!(
                    "error: hit element of type {} which is currently not supported",
                    ksql_type_name(a.data_type())
                );
            }
        })
    }
}

/// `SLICE(a, from, to)`: elements `from` to `to`, 1-based and inclusive (a NULL `from` is
/// 1, a NULL `to` the end). NULL for a NULL array, `from` < 1 or `to` past the end; an
/// error when `from` is more than one past `to` (Java's `subList`).
fn slice(args: &Arrays, result: &DataType) -> Result<ArrayRef> {
    let Some(item) = result_item(result) else { return Ok(new_null_array(result, rows(args))) };
    let list = list_arg(&args[0], &item)?;
    let from = conform(&args[1], &DataType::Int64)?;
    let to = conform(&args[2], &DataType::Int64)?;
    let (from, to) = (from.as_primitive::<Int64Type>(), to.as_primitive::<Int64Type>());
    let mut picks = Picks::new(list.len());
    for row in 0..list.len() {
        if list.is_null(row) {
            picks.push_null()?;
            continue;
        }
        let elements = range(&list, row);
        let length = elements.len() as i64;
        // `from - 1` with Java's int arithmetic.
        let start = from.is_valid(row).then(|| from.value(row)).map_or(0, |f| match i32::try_from(f) {
            Ok(f) => i64::from(f.wrapping_sub(1)),
            Err(_) => f.saturating_sub(1),
        });
        let end = if to.is_valid(row) { to.value(row) } else { length };
        if start < 0 || end > length {
            picks.push_null()?;
        } else if start > end {
            return exec_err!("SLICE: fromIndex({start}) > toIndex({end}): 'from' is more than one past 'to'");
        } else {
            picks.push(elements.start + start as usize..elements.start + end as usize)?;
        }
    }
    picks.finish(&item, list.values())
}

/// `AS_MAP(keys, values)`: `keys[i]` to `values[i]`; missing values are NULL, extra values
/// ignored, and a repeated key keeps its first place and its last value. NULL when either
/// array is NULL; a NULL key is an error (an Arrow map cannot hold one).
fn as_map(args: &Arrays, result: &DataType) -> Result<ArrayRef> {
    let DataType::Map(entries_field, sorted) = result else { return exec_err!("AS_MAP returns a MAP") };
    let DataType::Struct(kv) = entries_field.data_type() else { return exec_err!("a map's entries are a struct") };
    let keys = list_arg(&args[0], &Arc::new(Field::new("item", DataType::Utf8, true)))?;
    let values = list_arg(&args[1], &Arc::new(Field::new("item", kv[1].data_type().clone(), true)))?;
    let key_texts = keys.values().as_string::<i32>();
    let (mut key_picks, mut value_picks) = (Vec::<u64>::new(), Vec::<Option<u64>>::new());
    let mut offsets = vec![0i32];
    let mut valid = Vec::with_capacity(keys.len());
    for row in 0..keys.len() {
        let present = keys.is_valid(row) && values.is_valid(row);
        if present {
            let row_start = key_picks.len();
            let value_range = range(&values, row);
            let mut places: HashMap<&str, usize> = HashMap::new();
            for (n, k) in range(&keys, row).enumerate() {
                if key_texts.is_null(k) {
                    return exec_err!("AS_MAP: key {} is NULL, and a map key cannot be NULL", n + 1);
                }
                let value = (n < value_range.len()).then(|| (value_range.start + n) as u64);
                match places.get(key_texts.value(k)) {
                    Some(&place) => value_picks[row_start + place] = value,
                    None => {
                        places.insert(key_texts.value(k), key_picks.len() - row_start);
                        key_picks.push(k as u64);
                        value_picks.push(value);
                    }
                }
            }
        }
        let Ok(end) = i32::try_from(key_picks.len()) else {
            return exec_err!("AS_MAP: the maps of one batch hold more than {} entries", i32::MAX);
        };
        offsets.push(end);
        valid.push(present);
    }
    let picked_keys = take(keys.values().as_ref(), &UInt64Array::from(key_picks), None)?;
    let picked_values = take(values.values().as_ref(), &UInt64Array::from(value_picks), None)?;
    let entries = StructArray::try_new(kv.clone(), vec![picked_keys, picked_values], None)?;
    Ok(Arc::new(MapArray::try_new(
        entries_field.clone(),
        OffsetBuffer::new(ScalarBuffer::from(offsets)),
        entries,
        Some(NullBuffer::from(valid)),
        *sorted,
    )?))
}

/// `MAP_KEYS(map)` (`part` 0) and `MAP_VALUES(map)` (`part` 1): the keys or values in the
/// map's order (values with duplicates); NULL for a NULL map.
fn map_part(args: &Arrays, result: &DataType, part: usize) -> Result<ArrayRef> {
    let Some(item) = result_item(result) else { return Ok(new_null_array(result, rows(args))) };
    if args[0].data_type().is_null() {
        return Ok(new_null_array(result, rows(args)));
    }
    let Some(map) = args[0].as_map_opt() else { return exec_err!("expected a MAP, not {}", args[0].data_type()) };
    let column = if part == 0 { map.keys() } else { map.values() };
    let column = conform(column, item.data_type())?;
    Ok(Arc::new(ListArray::try_new(item, map.offsets().clone(), column, map.nulls().cloned())?))
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{
        BinaryArray, Float64Builder, Int32Array, Int32Builder, ListBuilder, StringBuilder, StructArray,
    };
    use datafusion::arrow::datatypes::Int32Type;

    use super::*;

    fn ints(rows: &[Option<Vec<Option<i32>>>]) -> ArrayRef {
        let mut builder = ListBuilder::new(Int32Builder::new());
        for row in rows {
            match row {
                Some(items) => {
                    builder.values().extend(items.iter().copied());
                    builder.append(true);
                }
                None => builder.append(false),
            }
        }
        Arc::new(builder.finish())
    }

    fn strs(rows: &[Option<Vec<Option<&str>>>]) -> ArrayRef {
        let mut builder = ListBuilder::new(StringBuilder::new());
        for row in rows {
            match row {
                Some(items) => {
                    for item in items {
                        builder.values().append_option(*item);
                    }
                    builder.append(true);
                }
                None => builder.append(false),
            }
        }
        Arc::new(builder.finish())
    }

    fn int_rows(array: &ArrayRef) -> Vec<Option<Vec<Option<i32>>>> {
        let list = array.as_list::<i32>();
        (0..list.len())
            .map(|row| list.is_valid(row).then(|| list.value(row).as_primitive::<Int32Type>().iter().collect()))
            .collect()
    }

    fn str_rows(array: &ArrayRef) -> Vec<Option<Vec<Option<String>>>> {
        let list = array.as_list::<i32>();
        (0..list.len())
            .map(|row| {
                list.is_valid(row)
                    .then(|| list.value(row).as_string::<i32>().iter().map(|s| s.map(str::to_owned)).collect())
            })
            .collect()
    }

    fn texts(values: &[Option<&str>]) -> ArrayRef {
        Arc::new(StringArray::from(values.to_vec()))
    }

    fn int_list() -> DataType {
        list_of(DataType::Int32)
    }

    #[test]
    fn concat_keeps_duplicates_and_treats_one_null_as_empty() {
        let a = ints(&[Some(vec![Some(1), Some(2)]), None, None, Some(vec![])]);
        let b = ints(&[Some(vec![Some(2), None]), Some(vec![Some(3)]), None, Some(vec![])]);
        let out = array_concat(&[a, b], &int_list()).unwrap();
        assert_eq!(
            int_rows(&out),
            vec![Some(vec![Some(1), Some(2), Some(2), None]), Some(vec![Some(3)]), None, Some(vec![])]
        );
        let null: ArrayRef = Arc::new(datafusion::arrow::array::NullArray::new(1));
        let out = array_concat(&[null, ints(&[Some(vec![Some(7)])])], &int_list()).unwrap();
        assert_eq!(int_rows(&out), vec![Some(vec![Some(7)])]);
    }

    #[test]
    fn distinct_keeps_first_occurrences_and_one_null() {
        let a = strs(&[Some(vec![Some("b"), None, Some("a"), Some("b"), None]), None, Some(vec![])]);
        let out = array_distinct(&[a], &list_of(DataType::Utf8)).unwrap();
        let expected = |v: &[Option<&str>]| Some(v.iter().map(|s| s.map(str::to_owned)).collect::<Vec<_>>());
        assert_eq!(str_rows(&out), vec![expected(&[Some("b"), None, Some("a")]), None, expected(&[])]);
    }

    #[test]
    fn except_intersect_and_union_are_ordered_sets() {
        let a = || ints(&[Some(vec![Some(1), Some(2), Some(2), None, Some(3)]), Some(vec![Some(1)]), None]);
        let b = || ints(&[Some(vec![Some(3), None, Some(4), Some(4)]), None, Some(vec![Some(1)])]);
        let except = array_except(&[a(), b()], &int_list()).unwrap();
        assert_eq!(int_rows(&except), vec![Some(vec![Some(1), Some(2)]), None, None]);
        let intersect = array_intersect(&[a(), b()], &int_list()).unwrap();
        assert_eq!(int_rows(&intersect), vec![Some(vec![None, Some(3)]), None, None]);
        let union = array_union(&[a(), b()], &int_list()).unwrap();
        assert_eq!(int_rows(&union), vec![Some(vec![Some(1), Some(2), None, Some(3), Some(4)]), None, None]);
    }

    #[test]
    fn equality_is_deep_for_nested_elements() {
        let mut builder = ListBuilder::new(ListBuilder::new(Int32Builder::new()));
        for inner in [vec![1, 2], vec![1], vec![1, 2]] {
            builder.values().values().append_slice(&inner);
            builder.values().append(true);
        }
        builder.append(true);
        let nested: ArrayRef = Arc::new(builder.finish());
        let out = array_distinct(std::slice::from_ref(&nested), nested.data_type()).unwrap();
        assert_eq!(out.as_list::<i32>().value(0).len(), 2);
        let needle = nested.as_list::<i32>().value(0).slice(1, 1);
        let out = array_contains(&[nested, needle], &DataType::Boolean).unwrap();
        assert!(out.as_boolean().value(0));
    }

    #[test]
    fn contains_finds_null_and_is_false_for_null_arrays() {
        let a = ints(&[Some(vec![Some(1), None]), Some(vec![Some(1)]), None, Some(vec![Some(5)])]);
        let value: ArrayRef = Arc::new(Int32Array::from(vec![None, None, Some(1), Some(5)]));
        let out = array_contains(&[a, value], &DataType::Boolean).unwrap();
        assert_eq!(out.as_boolean(), &BooleanArray::from(vec![true, false, false, true]));
        let null: ArrayRef = Arc::new(datafusion::arrow::array::NullArray::new(2));
        let out = array_contains(&[null.clone(), null], &DataType::Boolean).unwrap();
        assert_eq!(out.as_boolean(), &BooleanArray::from(vec![false, false]));
    }

    #[test]
    fn remove_drops_every_equal_element() {
        let a = ints(&[Some(vec![Some(1), Some(2), Some(1), None]), Some(vec![Some(1), None]), None]);
        let value: ArrayRef = Arc::new(Int32Array::from(vec![Some(1), None, Some(1)]));
        let out = array_remove(&[a, value], &int_list()).unwrap();
        assert_eq!(int_rows(&out), vec![Some(vec![Some(2), None]), Some(vec![Some(1)]), None]);
    }

    #[test]
    fn join_writes_java_text() {
        let a = strs(&[Some(vec![Some("a"), None, Some("c")]), None, Some(vec![])]);
        let out = array_join(std::slice::from_ref(&a), &DataType::Utf8).unwrap();
        assert_eq!(out.as_string::<i32>(), &StringArray::from(vec![Some("a,null,c"), None, Some("")]));
        let out = array_join(&[a, texts(&[None, Some("-"), Some("-")])], &DataType::Utf8).unwrap();
        assert_eq!(out.as_string::<i32>(), &StringArray::from(vec![Some("anullc"), None, Some("")]));
        let mut doubles = ListBuilder::new(Float64Builder::new());
        doubles.values().append_slice(&[1.0, 1e7, 0.001, -2.5e-5, 123.456]);
        doubles.append(true);
        let out = array_join(&[Arc::new(doubles.finish()), texts(&[Some(" ")])], &DataType::Utf8).unwrap();
        assert_eq!(out.as_string::<i32>().value(0), "1.0 1.0E7 0.001 -2.5E-5 123.456");
        assert!(join_type(&[DataType::Utf8]).is_err());
        // Elements ksqlDB cannot write fail the call only when there is one.
        let dates = ListArray::new(
            Arc::new(Field::new("item", DataType::Date32, true)),
            OffsetBuffer::from_lengths([0, 1, 1]),
            Arc::new(datafusion::arrow::array::Date32Array::from(vec![None, Some(1)])),
            None,
        );
        assert_eq!(join_type(&[dates.data_type().clone()]).unwrap(), DataType::Utf8);
        let dates: ArrayRef = Arc::new(dates);
        assert!(array_join(std::slice::from_ref(&dates), &DataType::Utf8).is_err());
        let out = array_join(&[dates.slice(0, 2)], &DataType::Utf8).unwrap();
        assert_eq!(out.as_string::<i32>(), &StringArray::from(vec!["", "null"]));
    }

    #[test]
    fn join_writes_decimals_like_big_decimal() {
        let decimals =
            Decimal128Array::from(vec![Some(150), Some(-5), None, Some(0)]).with_precision_and_scale(10, 2).unwrap();
        let list = ListArray::new(
            Arc::new(Field::new("item", DataType::Decimal128(10, 2), true)),
            OffsetBuffer::from_lengths([4]),
            Arc::new(decimals),
            None,
        );
        let out = array_join(&[Arc::new(list)], &DataType::Utf8).unwrap();
        assert_eq!(out.as_string::<i32>().value(0), "1.50,-0.05,null,0.00");
    }

    #[test]
    fn max_and_min_skip_nulls() {
        let a = ints(&[Some(vec![Some(3), None, Some(7), Some(-1)]), Some(vec![None]), Some(vec![]), None]);
        let max = array_max(std::slice::from_ref(&a), &DataType::Int32).unwrap();
        assert_eq!(max.as_primitive::<Int32Type>(), &Int32Array::from(vec![Some(7), None, None, None]));
        let min = array_min(&[a], &DataType::Int32).unwrap();
        assert_eq!(min.as_primitive::<Int32Type>(), &Int32Array::from(vec![Some(-1), None, None, None]));
        // Strings compare by UTF-16 units: U+FFFD sorts after U+1F600 (a surrogate pair).
        let s = strs(&[Some(vec![Some("\u{1F600}"), Some("\u{FFFD}"), Some("A")])]);
        let max = array_max(&[s], &DataType::Utf8).unwrap();
        assert_eq!(max.as_string::<i32>().value(0), "\u{FFFD}");
        assert!(extreme_type("ARRAY_MAX", &[list_of(int_list())]).is_err());
    }

    #[test]
    fn sort_puts_nulls_last_both_ways() {
        let a = || {
            ints(&[
                Some(vec![Some(3), None, Some(1), Some(2)]),
                None,
                Some(vec![Some(1)]),
                Some(vec![Some(2), Some(1)]),
            ])
        };
        let out = array_sort(&[a()], &int_list()).unwrap();
        assert_eq!(int_rows(&out)[0], Some(vec![Some(1), Some(2), Some(3), None]));
        let directions = texts(&[Some("descending"), Some("asc"), Some("sideways"), None]);
        let out = array_sort(&[a(), directions], &int_list()).unwrap();
        assert_eq!(int_rows(&out), vec![Some(vec![Some(3), Some(2), Some(1), None]), None, None, None]);
        let doubles: ArrayRef = {
            let mut b = ListBuilder::new(Float64Builder::new());
            b.values().append_slice(&[f64::NAN, 0.0, -0.0, -1.0]);
            b.append(true);
            Arc::new(b.finish())
        };
        let out = array_sort(&[doubles], &list_of(DataType::Float64)).unwrap();
        let sorted: Vec<f64> = out.as_list::<i32>().value(0).as_primitive::<Float64Type>().values().to_vec();
        assert_eq!(sorted[..3], [-1.0, -0.0, 0.0]);
        assert!(sorted[1].is_sign_negative() && sorted[3].is_nan());
    }

    #[test]
    fn sort_orders_bytes_as_signed() {
        let bytes = BinaryArray::from(vec![Some(&[0x80u8][..]), Some(&[0x01u8][..])]);
        let list = ListArray::new(
            Arc::new(Field::new("item", DataType::Binary, true)),
            OffsetBuffer::from_lengths([2]),
            Arc::new(bytes),
            None,
        );
        let out = array_sort(&[Arc::new(list)], &list_of(DataType::Binary)).unwrap();
        let sorted = out.as_list::<i32>().value(0);
        assert_eq!(sorted.as_binary::<i32>().value(0), &[0x80]);
    }

    #[test]
    fn slice_is_one_based_and_inclusive() {
        let a = || ints(&vec![Some(vec![Some(1), Some(2), Some(3)]); 7]);
        let from: ArrayRef =
            Arc::new(Int64Array::from(vec![Some(2), None, Some(0), Some(1), Some(4), Some(2), Some(1)]));
        let to: ArrayRef = Arc::new(Int64Array::from(vec![Some(3), Some(2), Some(2), Some(4), Some(3), None, Some(0)]));
        let out = slice(&[a(), from, to], &int_list()).unwrap();
        assert_eq!(
            int_rows(&out),
            vec![
                Some(vec![Some(2), Some(3)]),
                Some(vec![Some(1), Some(2)]),
                None,
                None,
                Some(vec![]),
                Some(vec![Some(2), Some(3)]),
                Some(vec![]),
            ]
        );
        let from: ArrayRef = Arc::new(Int64Array::from(vec![3]));
        let to: ArrayRef = Arc::new(Int64Array::from(vec![1]));
        assert!(slice(&[ints(&[Some(vec![Some(1), Some(2), Some(3)])]), from, to], &int_list()).is_err());
        assert!(slice_type(&[int_list(), DataType::Utf8, DataType::Int64]).is_err());
    }

    #[test]
    fn as_map_pairs_keys_with_values() {
        let keys = strs(&[Some(vec![Some("a"), Some("b"), Some("a"), Some("c")]), Some(vec![Some("x")]), None]);
        let values = ints(&[Some(vec![Some(1), Some(2), Some(3)]), None, Some(vec![Some(1)])]);
        let result = as_map_type(&[keys.data_type().clone(), values.data_type().clone()]).unwrap();
        let out = as_map(&[keys, values], &result).unwrap();
        let map = out.as_map();
        assert!(map.is_valid(0) && map.is_null(1) && map.is_null(2));
        let entries: &StructArray = &map.value(0);
        let keys: Vec<_> = entries.column(0).as_string::<i32>().iter().collect();
        let values: Vec<_> = entries.column(1).as_primitive::<Int32Type>().iter().collect();
        assert_eq!(keys, [Some("a"), Some("b"), Some("c")]);
        assert_eq!(values, [Some(3), Some(2), None]);
        let null_key = strs(&[Some(vec![None])]);
        assert!(as_map(&[null_key, ints(&[Some(vec![Some(1)])])], &result).is_err());
        assert!(as_map_type(&[int_list(), int_list()]).is_err());
    }

    #[test]
    fn map_keys_and_values_keep_map_order() {
        let keys = strs(&[Some(vec![Some("z"), Some("a")]), None]);
        let values = ints(&[Some(vec![Some(1), Some(1)]), None]);
        let map_type = as_map_type(&[keys.data_type().clone(), values.data_type().clone()]).unwrap();
        let map = as_map(&[keys, values], &map_type).unwrap();
        let key_type = map_part_type("MAP_KEYS", std::slice::from_ref(&map_type), 0).unwrap();
        let out = map_part(std::slice::from_ref(&map), &key_type, 0).unwrap();
        assert_eq!(str_rows(&out), vec![Some(vec![Some("z".to_owned()), Some("a".to_owned())]), None]);
        let value_type = map_part_type("MAP_VALUES", &[map_type], 1).unwrap();
        let out = map_part(&[map], &value_type, 1).unwrap();
        assert_eq!(int_rows(&out), vec![Some(vec![Some(1), Some(1)]), None]);
        assert!(map_part_type("MAP_KEYS", &[int_list()], 0).is_err());
    }

    #[test]
    fn java_doubles() {
        use crate::format::java_double;
        assert_eq!(java_double(100.0), "100.0");
        assert_eq!(java_double(1234567.0), "1234567.0");
        assert_eq!(java_double(0.1), "0.1");
        assert_eq!(java_double(1e-4), "1.0E-4");
        assert_eq!(java_double(-0.0), "-0.0");
        assert_eq!(java_double(f64::NAN), "NaN");
        assert_eq!(java_double(1.0e21), "1.0E21");
    }
}

#[cfg(test)]
mod planning {
    use datafusion::arrow::util::display::array_value_to_string;
    use datafusion::prelude::SessionContext;

    /// The first value of a query with Eddy's functions registered, or its error.
    async fn value(sql: &str) -> Result<String, String> {
        let context = SessionContext::new();
        super::super::register(&context);
        let frame = context.sql(sql).await.map_err(|e| e.to_string())?;
        let batches = frame.collect().await.map_err(|e| e.to_string())?;
        array_value_to_string(batches[0].column(0), 0).map_err(|e| e.to_string())
    }

    #[tokio::test]
    async fn element_types_widen_or_are_refused() {
        let value_of = |sql| async move { value(sql).await.unwrap() };
        assert_eq!(value_of("SELECT array_contains(make_array(CAST(1 AS INT)), CAST(1 AS BIGINT))").await, "true");
        assert_eq!(value_of("SELECT array_remove(make_array(CAST(1 AS INT), 2), CAST(1 AS BIGINT))").await, "[2]");
        assert_eq!(value_of("SELECT array_concat(NULL, make_array(1))").await, "[1]");
        assert_eq!(value_of("SELECT arraycontains(NULL, 1)").await, "false");
        let refused = value("SELECT array_concat(make_array('a'), make_array(1))").await.unwrap_err();
        assert!(refused.contains("Function 'ARRAY_CONCAT' does not accept parameters (ARRAY<STRING>, ARRAY<BIGINT>)."));
        assert!(value("SELECT array_remove(make_array(1), 'a')").await.is_err());
        assert!(
            value("SELECT array_union(make_array(named_struct('a', 1)), make_array(named_struct('b', 1)))")
                .await
                .is_err()
        );
        assert!(value("SELECT array_join('abc')").await.is_err());
        assert!(value("SELECT array_max(make_array(make_array(1)))").await.is_err());
    }
}
