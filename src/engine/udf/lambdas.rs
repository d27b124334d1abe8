//! ksqlDB's lambda functions, `TRANSFORM`, `FILTER` and `REDUCE`, over arrays and maps, as
//! DataFusion higher-order functions (DataFusion plans `x => body` and `(k, v) => body` into
//! them and resolves the lambdas' parameters from [`HigherOrderUDFImpl::lambda_parameters`]).
//!
//! A lambda is never called row by row. Its collection is flattened first (see [`Flat`]): the
//! elements of every row of the batch (an array's items, or a map's keys and values) in one
//! run, and the lambda is evaluated once over that run, its captured columns repeated to line
//! up with the elements. `REDUCE` folds position by position: step `i` evaluates the lambda
//! once over the states of the rows that have an `i`-th element and those elements.
//!
//! ksqlDB's rules (Java's `Collectors.toMap`, unboxing of a `Boolean`): a NULL from a
//! `FILTER` lambda, a `FILTER` of a map that keeps a NULL value, and a `TRANSFORM` of a map
//! that makes a NULL value or the same key twice are errors (so the row is null, with a
//! processing-log entry). A map key cannot be NULL in Arrow, so a NULL new key is an error
//! too. Collections are lists with 32-bit offsets (other list types are cast to them) or maps.

use std::collections::HashSet;
use std::ops::RangeInclusive;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, ListArray, MapArray, StructArray, UInt32Array, new_empty_array, new_null_array,
};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::compute::{CastOptions, cast, cast_with_options, filter, interleave, take, take_arrays};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::common::{Result, exec_datafusion_err, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, HigherOrderFunctionArgs, HigherOrderReturnFieldArgs, HigherOrderSignature, HigherOrderUDF,
    HigherOrderUDFImpl, LambdaArgument, LambdaParametersProgress, ValueOrLambda, Volatility,
};

/// `TRANSFORM`, `FILTER` and `REDUCE`, as DataFusion registers them.
pub fn functions() -> Vec<Arc<HigherOrderUDF>> {
    vec![
        Arc::new(HigherOrderUDF::from(Transform::default())),
        Arc::new(HigherOrderUDF::from(Filter::default())),
        Arc::new(HigherOrderUDF::from(Reduce::default())),
    ]
}

/// `TRANSFORM(array, x => R) -> ARRAY<R>`, `TRANSFORM(map, (k, v) => K2, (k, v) => V2) ->
/// MAP<K2, V2>`. A NULL collection gives NULL.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Transform {
    signature: HigherOrderSignature,
}

/// `FILTER(array, x => BOOLEAN)`, `FILTER(map, (k, v) => BOOLEAN)`: the elements or entries the
/// lambda is TRUE for, in order. A NULL collection gives NULL.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Filter {
    signature: HigherOrderSignature,
}

/// `REDUCE(array, s, (s, x) => S)`, `REDUCE(map, s, (s, k, v) => S)`: the left fold from `s`.
/// The state's type is the initial value's; the lambda's result is cast to it (numbers to
/// numbers, text to text, …; anything else is refused when the query is planned). A NULL
/// initial state gives NULL, a NULL collection the initial state.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Reduce {
    signature: HigherOrderSignature,
}

impl Default for Transform {
    fn default() -> Self {
        Transform { signature: HigherOrderSignature::user_defined(Volatility::Immutable) }
    }
}

impl Default for Filter {
    fn default() -> Self {
        Filter { signature: HigherOrderSignature::user_defined(Volatility::Immutable) }
    }
}

impl Default for Reduce {
    fn default() -> Self {
        Reduce { signature: HigherOrderSignature::user_defined(Volatility::Immutable) }
    }
}

const TRANSFORM_USAGE: &str =
    "TRANSFORM takes an ARRAY and a lambda `x => …`, or a MAP and two lambdas `(k, v) => key`, `(k, v) => value`";
const FILTER_USAGE: &str = "FILTER takes an ARRAY and a lambda `x => …`, or a MAP and a lambda `(k, v) => …`";
const REDUCE_USAGE: &str = "REDUCE takes an ARRAY, an initial state and a lambda `(s, x) => …`, \
     or a MAP, an initial state and a lambda `(s, k, v) => …`";

impl HigherOrderUDFImpl for Transform {
    fn name(&self) -> &str {
        "transform"
    }

    fn signature(&self) -> &HigherOrderSignature {
        &self.signature
    }

    fn coerce_value_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [collection] => Ok(vec![collection_type("TRANSFORM", collection)?]),
            _ => plan_err!("{TRANSFORM_USAGE}"),
        }
    }

    fn lambda_parameters(
        &self,
        _step: usize,
        fields: &[ValueOrLambda<FieldRef, Option<FieldRef>>],
    ) -> Result<LambdaParametersProgress> {
        let (values, lambdas) = shape(fields, 1, 1..=2, TRANSFORM_USAGE)?;
        Ok(LambdaParametersProgress::Complete(match (kind("TRANSFORM", values[0].data_type())?, lambdas.len()) {
            (Kind::Array(item), 1) => vec![vec![item]],
            (Kind::Map(key, value), 2) => vec![vec![key, value]; 2],
            (Kind::Array(_), _) => return plan_err!("TRANSFORM of an ARRAY takes one lambda, `x => …`"),
            (Kind::Map(..), _) => {
                return plan_err!("TRANSFORM of a MAP takes two lambdas, `(k, v) => key` and `(k, v) => value`");
            }
        }))
    }

    fn return_field_from_args(&self, args: HigherOrderReturnFieldArgs) -> Result<FieldRef> {
        let (values, lambdas) = shape(args.arg_fields, 1, 1..=2, TRANSFORM_USAGE)?;
        let collection = collection_type("TRANSFORM", values[0].data_type())?;
        let data_type = match (&collection, lambdas.as_slice()) {
            (DataType::List(_), [element]) => {
                DataType::List(Arc::new(Field::new_list_field(element.data_type().clone(), true)))
            }
            (DataType::Map(entries, _), [key, value]) => {
                let DataType::Struct(kv) = entries.data_type() else {
                    return plan_err!("a map's entries must be structs, not {}", entries.data_type());
                };
                let name = |i: usize, default: &'static str| kv.get(i).map_or(default, |f| f.name().as_str());
                let kv = Fields::from(vec![
                    Field::new(name(0, "key"), key.data_type().clone(), false),
                    Field::new(name(1, "value"), value.data_type().clone(), true),
                ]);
                DataType::Map(Arc::new(Field::new(entries.name(), DataType::Struct(kv), false)), false)
            }
            _ => return plan_err!("{TRANSFORM_USAGE}"),
        };
        Ok(Arc::new(Field::new("", data_type, true)))
    }

    fn clear_null_values(&self) -> bool {
        // [`Flat`] drops the elements of null rows itself.
        false
    }

    fn invoke_with_args(&self, args: HigherOrderFunctionArgs) -> Result<ColumnarValue> {
        let (values, lambdas) = invocation("TRANSFORM", &args, 1)?;
        let flat = Flat::new("TRANSFORM", &values[0])?;
        let result: ArrayRef = match (lambdas.as_slice(), args.return_type()) {
            ([lambda], DataType::List(item)) => {
                let items = flat.evaluate(lambda, item.data_type())?;
                Arc::new(ListArray::try_new(Arc::clone(item), flat.offsets.clone(), items, flat.nulls.clone())?)
            }
            ([key, value], DataType::Map(entries, _)) => {
                let DataType::Struct(kv) = entries.data_type() else {
                    return exec_err!("TRANSFORM makes a map of structs, not {}", entries.data_type());
                };
                let (Some(key_field), Some(value_field)) = (kv.first(), kv.get(1)) else {
                    return exec_err!("TRANSFORM makes a map of key-value structs, not {}", entries.data_type());
                };
                let keys = flat.evaluate(key, key_field.data_type())?;
                if keys.logical_null_count() > 0 {
                    return exec_err!("TRANSFORM cannot make a NULL map key");
                }
                let values = flat.evaluate(value, value_field.data_type())?;
                if values.logical_null_count() > 0 {
                    return exec_err!("TRANSFORM cannot make a NULL map value");
                }
                check_unique_keys(&keys, &flat.offsets)?;
                let entries_array = StructArray::try_new(kv.clone(), vec![keys, values], None)?;
                Arc::new(MapArray::try_new(
                    Arc::clone(entries),
                    flat.offsets.clone(),
                    entries_array,
                    flat.nulls.clone(),
                    false,
                )?)
            }
            _ => return exec_err!("{TRANSFORM_USAGE}"),
        };
        Ok(ColumnarValue::Array(result))
    }
}

impl HigherOrderUDFImpl for Filter {
    fn name(&self) -> &str {
        "filter"
    }

    fn signature(&self) -> &HigherOrderSignature {
        &self.signature
    }

    fn coerce_value_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [collection] => Ok(vec![collection_type("FILTER", collection)?]),
            _ => plan_err!("{FILTER_USAGE}"),
        }
    }

    fn lambda_parameters(
        &self,
        _step: usize,
        fields: &[ValueOrLambda<FieldRef, Option<FieldRef>>],
    ) -> Result<LambdaParametersProgress> {
        let (values, _) = shape(fields, 1, 1..=1, FILTER_USAGE)?;
        Ok(LambdaParametersProgress::Complete(match kind("FILTER", values[0].data_type())? {
            Kind::Array(item) => vec![vec![item]],
            Kind::Map(key, value) => vec![vec![key, value]],
        }))
    }

    fn return_field_from_args(&self, args: HigherOrderReturnFieldArgs) -> Result<FieldRef> {
        let (values, lambdas) = shape(args.arg_fields, 1, 1..=1, FILTER_USAGE)?;
        let predicate = lambdas[0].data_type();
        if !matches!(predicate, DataType::Boolean | DataType::Null) {
            return plan_err!("FILTER's lambda must return a BOOLEAN, not {predicate}");
        }
        Ok(Arc::new(Field::new("", collection_type("FILTER", values[0].data_type())?, true)))
    }

    fn clear_null_values(&self) -> bool {
        false
    }

    fn invoke_with_args(&self, args: HigherOrderFunctionArgs) -> Result<ColumnarValue> {
        let (values, lambdas) = invocation("FILTER", &args, 1)?;
        let [lambda] = lambdas.as_slice() else { return exec_err!("{FILTER_USAGE}") };
        let flat = Flat::new("FILTER", &values[0])?;
        let keep = flat.evaluate(lambda, &DataType::Boolean)?;
        let Some(keep) = keep.as_boolean_opt() else { return exec_err!("FILTER's lambda must return a BOOLEAN") };
        if keep.null_count() > 0 {
            return exec_err!("FILTER's lambda returned NULL");
        }
        let kept = keep.values();
        let offsets = OffsetBuffer::<i32>::from_lengths(flat.offsets.windows(2).map(|w| {
            let (start, end) = (w[0] as usize, w[1] as usize);
            kept.slice(start, end - start).count_set_bits()
        }));
        let columns: Vec<ArrayRef> =
            flat.columns.iter().map(|c| Ok(filter(c.as_ref(), keep)?)).collect::<Result<_>>()?;
        let result: ArrayRef = match (&flat.data_type, columns.as_slice()) {
            (DataType::List(item), [items]) => {
                Arc::new(ListArray::try_new(Arc::clone(item), offsets, Arc::clone(items), flat.nulls.clone())?)
            }
            (DataType::Map(entries, sorted), [keys, values]) => {
                if values.logical_null_count() > 0 {
                    return exec_err!("FILTER cannot keep a map entry whose value is NULL");
                }
                let DataType::Struct(kv) = entries.data_type() else {
                    return exec_err!("a map's entries must be structs, not {}", entries.data_type());
                };
                let entries_array = StructArray::try_new(kv.clone(), vec![Arc::clone(keys), Arc::clone(values)], None)?;
                Arc::new(MapArray::try_new(Arc::clone(entries), offsets, entries_array, flat.nulls.clone(), *sorted)?)
            }
            (other, _) => return exec_err!("FILTER needs an ARRAY or a MAP, not {other}"),
        };
        Ok(ColumnarValue::Array(result))
    }
}

impl HigherOrderUDFImpl for Reduce {
    fn name(&self) -> &str {
        "reduce"
    }

    fn signature(&self) -> &HigherOrderSignature {
        &self.signature
    }

    fn coerce_value_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [collection, initial] => Ok(vec![collection_type("REDUCE", collection)?, initial.clone()]),
            _ => plan_err!("{REDUCE_USAGE}"),
        }
    }

    fn lambda_parameters(
        &self,
        _step: usize,
        fields: &[ValueOrLambda<FieldRef, Option<FieldRef>>],
    ) -> Result<LambdaParametersProgress> {
        let (values, _) = shape(fields, 2, 1..=1, REDUCE_USAGE)?;
        // The state may become NULL along the way, whatever the initial value.
        let state = Arc::new(Field::new("state", values[1].data_type().clone(), true));
        Ok(LambdaParametersProgress::Complete(match kind("REDUCE", values[0].data_type())? {
            Kind::Array(item) => vec![vec![state, item]],
            Kind::Map(key, value) => vec![vec![state, key, value]],
        }))
    }

    fn return_field_from_args(&self, args: HigherOrderReturnFieldArgs) -> Result<FieldRef> {
        let (values, lambdas) = shape(args.arg_fields, 2, 1..=1, REDUCE_USAGE)?;
        let (state, result) = (values[1].data_type(), lambdas[0].data_type());
        if !state.is_null() && !becomes(result, state) {
            return plan_err!(
                "REDUCE's lambda returns {result}, which cannot be the state's type, {state} (the initial value's)"
            );
        }
        Ok(Arc::new(Field::new("", state.clone(), true)))
    }

    fn clear_null_values(&self) -> bool {
        false
    }

    fn invoke_with_args(&self, args: HigherOrderFunctionArgs) -> Result<ColumnarValue> {
        let (values, lambdas) = invocation("REDUCE", &args, 2)?;
        let [lambda] = lambdas.as_slice() else { return exec_err!("{REDUCE_USAGE}") };
        let state_type = args.return_type();
        let rows = args.number_rows;
        if state_type.is_null() {
            return Ok(ColumnarValue::Array(new_null_array(state_type, rows)));
        }
        let flat = Flat::new("REDUCE", &values[0])?;
        let mut state = conform(Arc::clone(&values[1]), state_type)?;
        if flat.rows() != rows || state.len() != rows {
            return exec_err!("REDUCE's arguments have different lengths");
        }
        // The rows still folding: a NULL initial state stays NULL, a NULL or empty collection
        // leaves the initial state.
        let initial = state.logical_nulls();
        let started = |r: usize| initial.as_ref().is_none_or(|n| n.is_valid(r)) && flat.len(r) > 0;
        let mut active: Vec<u32> = (0..rows).filter(|&r| started(r)).map(|r| r as u32).collect();
        let mut step = 0;
        while !active.is_empty() {
            let whole = active.len() == rows;
            let at = UInt32Array::from(active.clone());
            let elements =
                UInt32Array::from_iter_values(active.iter().map(|&r| (flat.start(r as usize) + step) as u32));
            let current = if whole { Arc::clone(&state) } else { take(state.as_ref(), &at, None)? };
            let state_param = || Ok(Arc::clone(&current));
            let element = |c: usize| -> Result<ArrayRef> {
                let column = flat.columns.get(c).ok_or_else(|| exec_datafusion_err!("{REDUCE_USAGE}"))?;
                Ok(take(column.as_ref(), &elements, None)?)
            };
            let (first, second) = (|| element(0), || element(1));
            let params: [&dyn Fn() -> Result<ArrayRef>; 3] = [&state_param, &first, &second];
            let result = lambda
                .evaluate(&params[..1 + flat.columns.len()], |captures| {
                    if whole { Ok(captures.to_vec()) } else { Ok(take_arrays(captures, &at, None)?) }
                })?
                .into_array(active.len())?;
            if result.len() != active.len() {
                return exec_err!("REDUCE's lambda gave {} values for {} states", result.len(), active.len());
            }
            let result = conform(result, state_type)?;
            state = if whole { result } else { scatter(&state, &result, &active)? };
            step += 1;
            active.retain(|&r| flat.len(r as usize) > step);
        }
        Ok(ColumnarValue::Array(state))
    }
}

/// A collection's elements: an array's items, or a map's keys and values.
enum Kind {
    Array(FieldRef),
    Map(FieldRef, FieldRef),
}

fn kind(name: &str, data_type: &DataType) -> Result<Kind> {
    match data_type {
        DataType::List(item)
        | DataType::LargeList(item)
        | DataType::FixedSizeList(item, _)
        | DataType::ListView(item)
        | DataType::LargeListView(item) => Ok(Kind::Array(Arc::clone(item))),
        DataType::Null => Ok(Kind::Array(Arc::new(Field::new_list_field(DataType::Null, true)))),
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => Ok(Kind::Map(Arc::clone(&kv[0]), Arc::clone(&kv[1]))),
            other => plan_err!("{name}: a map's entries must be key-value structs, not {other}"),
        },
        other => plan_err!("{name} needs an ARRAY or a MAP, not {other}"),
    }
}

/// The type a collection argument is cast to: a list with 32-bit offsets, or a map.
fn collection_type(name: &str, data_type: &DataType) -> Result<DataType> {
    Ok(match kind(name, data_type)? {
        Kind::Array(item) => DataType::List(item),
        Kind::Map(..) => data_type.clone(),
    })
}

/// A call's arguments as `values` values followed by lambdas (as many as `lambdas` allows).
fn shape<'a, V, L>(
    args: &'a [ValueOrLambda<V, L>],
    values: usize,
    lambdas: RangeInclusive<usize>,
    usage: &str,
) -> Result<(Vec<&'a V>, Vec<&'a L>)> {
    let (mut vs, mut ls) = (Vec::new(), Vec::new());
    for arg in args {
        match arg {
            ValueOrLambda::Value(v) if ls.is_empty() => vs.push(v),
            ValueOrLambda::Value(_) => return plan_err!("{usage} (lambdas come after all other arguments)"),
            ValueOrLambda::Lambda(l) => ls.push(l),
        }
    }
    if vs.len() != values || !lambdas.contains(&ls.len()) {
        return plan_err!("{usage}");
    }
    Ok((vs, ls))
}

/// A call's `values` values, as arrays of the batch's length, and its lambdas.
fn invocation<'a>(
    name: &str,
    args: &'a HigherOrderFunctionArgs,
    values: usize,
) -> Result<(Vec<ArrayRef>, Vec<&'a LambdaArgument>)> {
    let (mut arrays, mut lambdas) = (Vec::new(), Vec::new());
    for arg in &args.args {
        match arg {
            ValueOrLambda::Value(v) => arrays.push(v.to_array(args.number_rows)?),
            ValueOrLambda::Lambda(l) => lambdas.push(l),
        }
    }
    if arrays.len() != values || lambdas.is_empty() {
        return exec_err!("{name} was called with {} values and {} lambdas", arrays.len(), lambdas.len());
    }
    Ok((arrays, lambdas))
}

/// Whether REDUCE may cast its lambda's result (`from`) to its state's type (`to`).
fn becomes(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    let text = |t: &DataType| matches!(t, Utf8 | LargeUtf8 | Utf8View);
    let bytes = |t: &DataType| matches!(t, Binary | LargeBinary | BinaryView | FixedSizeBinary(_));
    from == to
        || from.is_null()
        || (from.equals_datatype(to) && datafusion::arrow::compute::can_cast_types(from, to))
        || (from.is_numeric() && to.is_numeric())
        || (text(from) && text(to))
        || (bytes(from) && bytes(to))
}

/// `array` as `data_type`, cast when it is another type (an out-of-range number is an error,
/// not a NULL).
fn conform(array: ArrayRef, data_type: &DataType) -> Result<ArrayRef> {
    if array.data_type() == data_type {
        return Ok(array);
    }
    let options = CastOptions { safe: false, ..Default::default() };
    Ok(cast_with_options(array.as_ref(), data_type, &options)?)
}

/// `state` with the rows `active` (ascending) replaced by `result`'s values, in order.
fn scatter(state: &ArrayRef, result: &ArrayRef, active: &[u32]) -> Result<ArrayRef> {
    let mut next = active.iter().copied().enumerate().peekable();
    let indices: Vec<(usize, usize)> = (0..state.len())
        .map(|r| match next.peek() {
            Some(&(k, row)) if row as usize == r => {
                next.next();
                (1, k)
            }
            _ => (0, r),
        })
        .collect();
    Ok(interleave(&[state.as_ref(), result.as_ref()], &indices)?)
}

/// Fails when a row of a new map has the same key twice.
fn check_unique_keys(keys: &ArrayRef, offsets: &OffsetBuffer<i32>) -> Result<()> {
    if offsets.windows(2).all(|w| w[1] - w[0] < 2) {
        return Ok(());
    }
    let converter = RowConverter::new(vec![SortField::new(keys.data_type().clone())])?;
    let rows = converter.convert_columns(&[Arc::clone(keys)])?;
    let mut seen = HashSet::new();
    for w in offsets.windows(2) {
        let (start, end) = (w[0] as usize, w[1] as usize);
        seen.clear();
        for i in start..end {
            if !seen.insert(rows.row(i)) {
                let key = array_value_to_string(keys.as_ref(), i).unwrap_or_default();
                return exec_err!("TRANSFORM made the map key {key} twice");
            }
        }
    }
    Ok(())
}

/// A collection argument flattened: the elements of all its rows in one run (an array's items,
/// or a map's keys and values, as parallel columns), row `r`'s being
/// `offsets[r]..offsets[r + 1]`. A null row has no elements, whatever its array held under it.
struct Flat {
    /// The collection's type (a list with 32-bit offsets, or a map).
    data_type: DataType,
    nulls: Option<NullBuffer>,
    /// Start at 0.
    offsets: OffsetBuffer<i32>,
    /// `[items]` for an array, `[keys, values]` for a map.
    columns: Vec<ArrayRef>,
}

impl Flat {
    fn new(name: &str, collection: &ArrayRef) -> Result<Flat> {
        let collection = match collection.data_type() {
            DataType::List(_) | DataType::Map(..) => Arc::clone(collection),
            other => cast(collection.as_ref(), &collection_type(name, other)?)?,
        };
        let (offsets, nulls, columns) = if let Some(list) = collection.as_list_opt::<i32>() {
            (list.offsets().clone(), list.nulls().cloned(), vec![Arc::clone(list.values())])
        } else if let Some(map) = collection.as_map_opt() {
            (map.offsets().clone(), map.nulls().cloned(), vec![Arc::clone(map.keys()), Arc::clone(map.values())])
        } else {
            return exec_err!("{name} needs an ARRAY or a MAP, not {}", collection.data_type());
        };
        let rows = offsets.len().saturating_sub(1);
        let valid = |r: usize| nulls.as_ref().is_none_or(|n| n.is_valid(r));
        let (first, last) = (offsets[0] as usize, offsets[rows] as usize);
        if columns.iter().any(|c| c.len() < last) || first > last {
            return exec_err!("{name}: the collection's offsets are out of range");
        }
        let hidden = (0..rows).any(|r| !valid(r) && offsets[r + 1] > offsets[r]);
        let columns = if hidden {
            let kept = (0..rows).filter(|&r| valid(r)).flat_map(|r| offsets[r] as u32..offsets[r + 1] as u32);
            let indices = UInt32Array::from_iter_values(kept);
            columns.iter().map(|c| Ok(take(c.as_ref(), &indices, None)?)).collect::<Result<_>>()?
        } else {
            columns.iter().map(|c| c.slice(first, last - first)).collect()
        };
        let offsets = OffsetBuffer::from_lengths(
            (0..rows).map(|r| if valid(r) { (offsets[r + 1] - offsets[r]) as usize } else { 0 }),
        );
        Ok(Flat { data_type: collection.data_type().clone(), nulls, offsets, columns })
    }

    fn rows(&self) -> usize {
        self.offsets.len() - 1
    }

    fn start(&self, row: usize) -> usize {
        self.offsets[row] as usize
    }

    fn len(&self, row: usize) -> usize {
        (self.offsets[row + 1] - self.offsets[row]) as usize
    }

    fn elements(&self) -> usize {
        self.offsets[self.rows()] as usize
    }

    /// `lambda` over every element at once (as `data_type`), its captured columns repeated
    /// to line up with the elements.
    fn evaluate(&self, lambda: &LambdaArgument, data_type: &DataType) -> Result<ArrayRef> {
        let n = self.elements();
        if n == 0 {
            return Ok(new_empty_array(data_type));
        }
        let column = |c: usize| -> Result<ArrayRef> {
            self.columns.get(c).cloned().ok_or_else(|| exec_datafusion_err!("the lambda has too many parameters"))
        };
        let (first, second) = (|| column(0), || column(1));
        let params: [&dyn Fn() -> Result<ArrayRef>; 2] = [&first, &second];
        let result = lambda
            .evaluate(&params[..self.columns.len()], |captures| {
                let rows = (0..self.rows()).flat_map(|r| std::iter::repeat_n(r as u32, self.len(r)));
                Ok(take_arrays(captures, &UInt32Array::from_iter_values(rows), None)?)
            })?
            .into_array(n)?;
        if result.len() != n {
            return exec_err!("a lambda gave {} values for {n} elements", result.len());
        }
        conform(result, data_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use datafusion::arrow::array::{Int32Array, RecordBatch, StringArray};
    use datafusion::arrow::datatypes::Schema;
    use datafusion::datasource::MemTable;
    use datafusion::prelude::{SessionConfig, SessionContext};

    /// A context with ksqlDB's functions and a table `t`, read by DataFusion's SQL with
    /// DuckDB's syntax for lambdas (`x -> …`, `(k, v) -> …`). Its rows:
    ///
    /// | `a` (ARRAY<INT>) | `m` (MAP<STRING, INT>) | `n` |
    /// |---|---|---|
    /// | [1, 2, 3] | {a: 1, b: 2} | 10 |
    /// | NULL, over [0] | NULL, over {z: 0} | 20 |
    /// | [] | {} | 30 |
    /// | [4, NULL] | {c: 3} | NULL |
    fn context() -> SessionContext {
        let config = SessionConfig::new().set_str("datafusion.sql_parser.dialect", "duckdb");
        let context = SessionContext::new_with_config(config);
        crate::engine::udf::register(&context);
        let item = Arc::new(Field::new_list_field(DataType::Int32, true));
        let arrays = ListArray::new(
            Arc::clone(&item),
            OffsetBuffer::from_lengths([3, 1, 0, 2]),
            Arc::new(Int32Array::from(vec![Some(1), Some(2), Some(3), Some(0), Some(4), None])),
            Some(NullBuffer::from(vec![true, false, true, true])),
        );
        let kv =
            Fields::from(vec![Field::new("key", DataType::Utf8, false), Field::new("value", DataType::Int32, true)]);
        let entries = StructArray::new(
            kv.clone(),
            vec![Arc::new(StringArray::from(vec!["a", "b", "z", "c"])), Arc::new(Int32Array::from(vec![1, 2, 0, 3]))],
            None,
        );
        let entries_field = Arc::new(Field::new("entries", DataType::Struct(kv), false));
        let maps = MapArray::new(
            Arc::clone(&entries_field),
            OffsetBuffer::from_lengths([2, 1, 0, 1]),
            entries,
            Some(NullBuffer::from(vec![true, false, true, true])),
            false,
        );
        let numbers = Int32Array::from(vec![Some(10), Some(20), Some(30), None]);
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::List(item), true),
            Field::new("m", DataType::Map(entries_field, false), true),
            Field::new("n", DataType::Int32, true),
        ]));
        let batch =
            RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(arrays), Arc::new(maps), Arc::new(numbers)])
                .unwrap();
        context.register_table("t", Arc::new(MemTable::try_new(schema, vec![vec![batch]]).unwrap())).unwrap();
        context
    }

    /// The values of `sql`'s first column, as text (`None` for NULL).
    async fn query(sql: &str) -> Result<Vec<Option<String>>> {
        let batches = context().sql(sql).await?.collect().await?;
        let mut values = Vec::new();
        for batch in batches {
            let column = batch.column(0);
            let nulls = column.logical_nulls();
            for row in 0..column.len() {
                let valid = nulls.as_ref().is_none_or(|n| n.is_valid(row));
                values.push(valid.then(|| array_value_to_string(column.as_ref(), row).unwrap()));
            }
        }
        Ok(values)
    }

    async fn one(sql: &str) -> Option<String> {
        let mut values = query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert_eq!(values.len(), 1, "{sql}");
        values.remove(0)
    }

    async fn column(sql: &str) -> Vec<Option<String>> {
        query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    async fn error(sql: &str) -> String {
        match query(sql).await {
            Ok(values) => panic!("{sql} gave {values:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn texts(values: &[Option<&str>]) -> Vec<Option<String>> {
        values.iter().map(|v| v.map(str::to_owned)).collect()
    }

    #[tokio::test]
    async fn transform_of_arrays() {
        assert_eq!(one("SELECT transform([1, 2], x -> x * 2)").await.as_deref(), Some("[2, 4]"));
        assert_eq!(one("SELECT transform(['a', 'b'], x -> upper(x))").await.as_deref(), Some("[A, B]"));
        assert_eq!(one("SELECT transform(CAST([] AS INT[]), x -> x + 1)").await.as_deref(), Some("[]"));
        assert_eq!(one("SELECT transform(CAST(NULL AS INT[]), x -> x + 1)").await, None);
        // Over rows, with a captured column; nothing is evaluated under the NULL row.
        assert_eq!(
            column("SELECT transform(a, x -> 100 / x + n) FROM t").await,
            texts(&[Some("[110, 60, 43]"), None, Some("[]"), Some("[, ]")])
        );
        // Nested lambdas.
        assert_eq!(
            one("SELECT transform([[1, 2], [3]], xs -> transform(xs, x -> x * 10))").await.as_deref(),
            Some("[[10, 20], [30]]")
        );
    }

    #[tokio::test]
    async fn transform_of_maps() {
        assert_eq!(
            one("SELECT transform(map(['a', 'b'], [1, 2]), (k, v) -> upper(k), (k, v) -> v + 1)").await.as_deref(),
            Some("{A: 2, B: 3}")
        );
        // Over rows, with a captured column; the new types are the lambdas'.
        assert_eq!(
            column("SELECT transform(m, (k, v) -> v, (k, v) -> concat(k, CAST(coalesce(n, 0) AS VARCHAR))) FROM t")
                .await,
            texts(&[Some("{1: a10, 2: b10}"), None, Some("{}"), Some("{3: c0}")])
        );
        // Either lambda may ignore its parameters.
        assert_eq!(
            one("SELECT transform(map(['a'], [1]), (k, v) -> 'key', (k, v) -> 0)").await.as_deref(),
            Some("{key: 0}")
        );
    }

    #[tokio::test]
    async fn transform_of_maps_refuses_duplicate_and_null_results() {
        let message = error("SELECT transform(map(['a', 'b'], [1, 2]), (k, v) -> 'x', (k, v) -> v)").await;
        assert!(message.contains("map key x twice"), "{message}");
        let message = error("SELECT transform(map(['a'], [1]), (k, v) -> k, (k, v) -> CAST(NULL AS INT))").await;
        assert!(message.contains("NULL map value"), "{message}");
        let message = error("SELECT transform(m, (k, v) -> k, (k, v) -> v + n) FROM t").await;
        assert!(message.contains("NULL map value"), "{message}");
        let message = error("SELECT transform(map(['a'], [1]), (k, v) -> CAST(NULL AS VARCHAR), (k, v) -> v)").await;
        assert!(message.contains("NULL map key"), "{message}");
        // The same key in different rows is fine.
        assert_eq!(
            column("SELECT transform(m, (k, v) -> 'k', (k, v) -> v) FROM t WHERE n <> 10 OR n IS NULL").await,
            texts(&[None, Some("{}"), Some("{k: 3}")])
        );
    }

    #[tokio::test]
    async fn transform_needs_the_right_lambdas() {
        let message = error("SELECT transform([1], x -> x, x -> x)").await;
        assert!(message.contains("TRANSFORM of an ARRAY takes one lambda"), "{message}");
        let message = error("SELECT transform(map(['a'], [1]), (k, v) -> v)").await;
        assert!(message.contains("TRANSFORM of a MAP takes two lambdas"), "{message}");
        let message = error("SELECT transform(1, x -> x)").await;
        assert!(message.contains("TRANSFORM needs an ARRAY or a MAP"), "{message}");
        let message = error("SELECT transform([1])").await;
        assert!(message.contains("TRANSFORM takes"), "{message}");
    }

    #[tokio::test]
    async fn filter_of_arrays() {
        assert_eq!(one("SELECT filter([1, 2, 3], x -> x > 1)").await.as_deref(), Some("[2, 3]"));
        assert_eq!(one("SELECT filter([1, 2, 3], x -> false)").await.as_deref(), Some("[]"));
        assert_eq!(one("SELECT filter(CAST(NULL AS INT[]), x -> x > 1)").await, None);
        // NULL elements are kept when the lambda says so.
        assert_eq!(one("SELECT cardinality(filter([1, NULL], x -> x IS NULL))").await.as_deref(), Some("1"));
        assert_eq!(
            column("SELECT filter(a, x -> x IS NULL OR x * 10 < coalesce(n, 100)) FROM t").await,
            texts(&[Some("[]"), None, Some("[]"), Some("[4, ]")])
        );
        assert_eq!(
            column("SELECT filter(a, x -> coalesce(x, 0) >= 2) FROM t").await,
            texts(&[Some("[2, 3]"), None, Some("[]"), Some("[4]")])
        );
    }

    #[tokio::test]
    async fn filter_of_maps() {
        assert_eq!(one("SELECT filter(map(['a', 'b'], [1, 2]), (k, v) -> v > 1)").await.as_deref(), Some("{b: 2}"));
        assert_eq!(
            column("SELECT filter(m, (k, v) -> k <> 'a') FROM t").await,
            texts(&[Some("{b: 2}"), None, Some("{}"), Some("{c: 3}")])
        );
        // A dropped NULL value is fine, a kept one is not.
        assert_eq!(
            one("SELECT filter(map(['a', 'b'], [1, NULL]), (k, v) -> k = 'a')").await.as_deref(),
            Some("{a: 1}")
        );
        let message = error("SELECT filter(map(['a', 'b'], [1, NULL]), (k, v) -> true)").await;
        assert!(message.contains("value is NULL"), "{message}");
    }

    #[tokio::test]
    async fn filter_refuses_null_and_non_boolean_lambdas() {
        let message = error("SELECT filter([1, NULL], x -> x > 0)").await;
        assert!(message.contains("FILTER's lambda returned NULL"), "{message}");
        let message = error("SELECT filter(map(['a'], [1]), (k, v) -> CAST(NULL AS BOOLEAN))").await;
        assert!(message.contains("FILTER's lambda returned NULL"), "{message}");
        let message = error("SELECT filter([1], x -> x + 1)").await;
        assert!(message.contains("must return a BOOLEAN"), "{message}");
    }

    #[tokio::test]
    async fn reduce_of_arrays() {
        assert_eq!(one("SELECT reduce([1, 2, 3], 0, (s, x) -> s + x)").await.as_deref(), Some("6"));
        assert_eq!(one("SELECT reduce(['a', 'b'], '', (s, x) -> concat(s, x))").await.as_deref(), Some("ab"));
        // In order: a left fold.
        assert_eq!(
            one("SELECT reduce(['a', 'b', 'c'], 'x', (s, x) -> concat('(', s, x, ')'))").await.as_deref(),
            Some("(((xa)b)c)")
        );
        // A NULL or empty collection gives the initial state; a NULL initial state gives NULL.
        assert_eq!(one("SELECT reduce(CAST(NULL AS INT[]), 7, (s, x) -> s + x)").await.as_deref(), Some("7"));
        assert_eq!(one("SELECT reduce(CAST([] AS INT[]), 7, (s, x) -> s + x)").await.as_deref(), Some("7"));
        assert_eq!(one("SELECT reduce([1, 2], CAST(NULL AS INT), (s, x) -> s + x)").await, None);
        assert_eq!(one("SELECT reduce([1, 2], NULL, (s, x) -> x)").await, None);
        // The state may become NULL along the way.
        assert_eq!(one("SELECT reduce([1, 2], 0, (s, x) -> coalesce(s, 100) + x)").await.as_deref(), Some("3"));
        assert_eq!(
            one("SELECT reduce([1, 2, 3], 0, (s, x) -> CASE WHEN x = 2 THEN NULL ELSE coalesce(s, 100) + x END)")
                .await
                .as_deref(),
            Some("103")
        );
        // Rows of different lengths, with captured columns and NULL initial states.
        assert_eq!(
            column("SELECT reduce(a, n, (s, x) -> s * 2 + coalesce(x, 1) + n) FROM t").await,
            texts(&[Some("161"), Some("20"), Some("30"), None])
        );
        assert_eq!(
            column("SELECT reduce(a, CAST(n AS BIGINT), (s, x) -> s + coalesce(x, 0)) FROM t").await,
            texts(&[Some("16"), Some("20"), Some("30"), None])
        );
    }

    #[tokio::test]
    async fn reduce_of_maps() {
        assert_eq!(one("SELECT reduce(map(['a', 'b'], [1, 2]), 0, (s, k, v) -> s + v)").await.as_deref(), Some("3"));
        assert_eq!(
            one("SELECT reduce(map(['a', 'b'], [1, 2]), '', (s, k, v) -> concat(s, k, CAST(v AS VARCHAR)))")
                .await
                .as_deref(),
            Some("a1b2")
        );
        assert_eq!(
            column("SELECT reduce(m, coalesce(n, 0), (s, k, v) -> s + v) FROM t").await,
            texts(&[Some("13"), Some("20"), Some("30"), Some("3")])
        );
        assert_eq!(
            column("SELECT reduce(m, concat('', CAST(n AS VARCHAR)), (s, k, v) -> concat(s, k)) FROM t").await,
            texts(&[Some("10ab"), Some("20"), Some("30"), Some("c")])
        );
    }

    #[tokio::test]
    async fn reduce_casts_its_lambdas_result_to_the_state() {
        // INT state, BIGINT sums: cast back.
        assert_eq!(
            one("SELECT reduce([CAST(1 AS BIGINT), 2], CAST(0 AS INT), (s, x) -> s + x)").await.as_deref(),
            Some("3")
        );
        let message = error("SELECT reduce([CAST(3000000000 AS BIGINT)], CAST(0 AS INT), (s, x) -> s + x)").await;
        assert!(message.contains("Int32"), "{message}");
        let message = error("SELECT reduce([1, 2], 'text', (s, x) -> x)").await;
        assert!(message.contains("REDUCE's lambda returns Int64, which cannot be the state's type"), "{message}");
        let message = error("SELECT reduce([1, 2], (s, x) -> x)").await;
        assert!(message.contains("REDUCE takes"), "{message}");
    }

    /// Step by step: the lambda is evaluated once per position, over every row that has one.
    #[test]
    fn scatter_puts_results_back_in_their_rows() {
        let state: ArrayRef = Arc::new(Int32Array::from(vec![Some(1), None, Some(3), Some(4)]));
        let result: ArrayRef = Arc::new(Int32Array::from(vec![10, 30]));
        let merged = scatter(&state, &result, &[0, 2]).unwrap();
        assert_eq!(
            merged.as_primitive::<datafusion::arrow::datatypes::Int32Type>().iter().collect::<Vec<_>>(),
            [Some(10), None, Some(30), Some(4)]
        );
    }

    #[test]
    fn flat_drops_elements_under_null_rows_and_slices() {
        let item = Arc::new(Field::new_list_field(DataType::Int32, true));
        let list: ArrayRef = Arc::new(ListArray::new(
            item,
            OffsetBuffer::from_lengths([1, 2, 2, 1]),
            Arc::new(Int32Array::from(vec![1, 2, 3, 4, 5, 6])),
            Some(NullBuffer::from(vec![true, true, false, true])),
        ));
        let flat = Flat::new("TEST", &list.slice(1, 3)).unwrap();
        assert_eq!(flat.offsets.as_ref(), &[0, 2, 2, 3]);
        assert_eq!(
            flat.columns[0].as_primitive::<datafusion::arrow::datatypes::Int32Type>().values().as_ref(),
            &[2, 3, 6]
        );
        assert!(flat.nulls.as_ref().is_some_and(|n| n.is_null(1)));
    }
}
