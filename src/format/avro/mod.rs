//! `AVRO`: records in Confluent's wire format (a zero magic byte, the writer schema's id in a
//! schema registry as 4 bytes big-endian, then the Avro binary datum), read and written a
//! batch at a time with `arrow-avro`.
//!
//! Reading: payloads are taken in runs of one schema id. Each id has a decoder built from its
//! writer schema (fetched from the registry once), which decodes the run into Arrow in the
//! writer's own shape; the result is then fitted to the source's columns, by name, ignoring
//! case, as ksqlDB matches Avro fields to columns. Fields the writer did not have are null, and
//! types are cast where ksqlDB coerces them (an Avro `int` read as a STRING column is `"10"`).
//! So a record written under an older or newer schema reads into the same columns.
//!
//! Writing: the side's Avro schema is ksqlDB's for its columns (a record named
//! `io.confluent.ksql.avro_schemas.KsqlDataSourceSchema`, every field an optional union with
//! null), or the registered schema `KEY_SCHEMA_ID`/`VALUE_SCHEMA_ID` names. Its id is
//! registered under `<topic>-key`/`<topic>-value` when a statement creates the source
//! ([`Codec::prepare`]), and looked up without waiting when a restarted query writes.
//!
//! `arrow-avro` reads and writes records only; a single unwrapped value (a key of one column,
//! `WRAP_SINGLE_VALUE=false`) is a bare datum, which is byte for byte a record of one field of
//! its type: such schemas are wrapped in such a record on the way in and out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arrow_avro::reader::{Decoder, ReaderBuilder};
use arrow_avro::schema::{AvroSchema, Fingerprint, FingerprintAlgorithm, FingerprintStrategy, SchemaStore};
use arrow_avro::writer::WriterBuilder;
use arrow_avro::writer::format::AvroSoeFormat;
use bytes::Bytes;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, ListArray, MapArray, RecordBatch, StructArray, new_null_array,
};
use datafusion::arrow::compute::{cast, concat_batches};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::confluent::{Writer, schema_to_infer, unframe};
use super::{Codec, Decoded, Format, FormatError, FormatOptions, Registration, Subject};
use crate::registry::avro::self_contained;
use crate::registry::client::RegistryRef;
use crate::registry::{Schema as RegisteredSchema, SchemaType};

/// ksqlDB's default full name for the schemas it generates.
pub const DEFAULT_FULL_NAME: &str = "io.confluent.ksql.avro_schemas.KsqlDataSourceSchema";

/// The field a bare datum is wrapped in (see the module's documentation).
const BARE: &str = "EDDY_BARE_VALUE";

/// The `AVRO` format, over a schema registry.
#[derive(Debug, Clone)]
pub struct Avro {
    registry: RegistryRef,
}

impl Avro {
    pub fn new(registry: RegistryRef) -> Avro {
        Avro { registry }
    }
}

impl Format for Avro {
    fn name(&self) -> &'static str {
        super::AVRO
    }

    fn codec(&self, schema: SchemaRef, options: FormatOptions) -> Result<Arc<dyn Codec>, FormatError> {
        let bare = !options.wrap_single_value && schema.fields().len() == 1;
        let writer = match options.schema_id {
            Some(id) => {
                let registered = self.registry.schema_by_id(id).map_err(|e| FormatError(e.to_string()))?;
                self_contained(&registered, |r| self.registry.referenced(r))
                    .map_err(|e| FormatError(format!("schema {id}: {e}")))?
            }
            None => {
                let full_name = options.full_name.clone().unwrap_or_else(|| DEFAULT_FULL_NAME.to_owned());
                if full_name.trim().is_empty() {
                    return Err(FormatError(format!(
                        "fullSchemaName cannot be empty. Format configuration: {{fullSchemaName={}}}",
                        full_name.trim()
                    )));
                }
                schema_of(&schema, full_name.trim(), bare)?
            }
        };
        let (writer_arrow, writer_record) = arrow_of(&writer)?;
        let registered =
            RegisteredSchema { schema: writer.to_string(), schema_type: SchemaType::Avro, references: Vec::new() };
        Ok(Arc::new(AvroCodec {
            schema,
            bare,
            written: Writer::new(self.registry.clone(), options.subject.clone(), registered, options.schema_id),
            writer,
            writer_record,
            writer_arrow,
            used: None,
            idle_decoders: Mutex::default(),
            encoder: Mutex::default(),
        }))
    }

    fn infer_columns<'a>(&'a self, subject: &'a Subject) -> BoxFuture<'a, Result<Option<SchemaRef>, FormatError>> {
        Box::pin(async move {
            let Some(schema) = schema_to_infer(&self.registry, subject, SchemaType::Avro).await? else {
                return Ok(None);
            };
            let writer = self_contained(&schema, |r| self.registry.referenced(r))
                .map_err(|e| FormatError(format!("the schema of {}: {e}", subject.name())))?;
            let (arrow, record) = arrow_of(&writer)?;
            // A record's fields are the columns, unless the side holds one value unwrapped;
            // anything else is one column, ROWKEY or ROWVAL as ksqlDB names it.
            // Names are the schema's, in capitals when the latest schema was taken; as they
            // are when the statement named the schema's id.
            let named = |field: &Field| match subject.schema_id {
                Some(_) => Field::new(field.name(), field.data_type().clone(), true),
                None => upper_cased(field),
            };
            let fields: Vec<Field> = if record && !subject.unwrapped {
                arrow.fields().iter().map(|f| named(f)).collect()
            } else {
                let single =
                    if record { DataType::Struct(arrow.fields().clone()) } else { arrow.field(0).data_type().clone() };
                let name = if subject.key { "ROWKEY" } else { "ROWVAL" };
                vec![Field::new(name, named(&Field::new(name, single, true)).data_type().clone(), true)]
            };
            Ok(Some(Arc::new(Schema::new(fields))))
        })
    }
}

/// A field with its name, and its nested fields' names, in capitals (ksqlDB's inferred columns).
fn upper_cased(field: &Field) -> Field {
    let data_type = match field.data_type() {
        DataType::Struct(fields) => DataType::Struct(fields.iter().map(|f| upper_cased(f)).collect()),
        DataType::List(item) => DataType::List(Arc::new(upper_cased(item))),
        other => other.clone(),
    };
    Field::new(field.name().to_uppercase(), data_type, true)
}

/// The Arrow shape `arrow-avro` reads a writer schema into, and whether the schema is a record
/// (else it is wrapped, and the shape has the one field [`BARE`]).
fn arrow_of(writer: &Value) -> Result<(SchemaRef, bool), FormatError> {
    let record = writer["type"] == "record";
    let wrapped = if record { writer.clone() } else { wrap(writer) };
    // (A registered schema is outside Eddy's control: one arrow-avro cannot take fails here.)
    let decoder = std::panic::catch_unwind(|| decoder_for(0, &wrapped, None)).unwrap_or_else(|panic| {
        Err(FormatError(format!(
            "arrow-avro cannot read this schema ({})",
            crate::error::panic_message(panic.as_ref())
        )))
    })?;
    Ok((decoder.schema(), record))
}

/// A bare schema as a record of one field.
fn wrap(schema: &Value) -> Value {
    json!({"type": "record", "name": "EddyBareValue", "namespace": "eddy.internal", "fields": [{"name": BARE, "type": schema}]})
}

/// A decoder of Confluent-framed records written with `schema` (a record) under `id`,
/// reading only the record's fields at `projection` when given.
fn decoder_for(id: u32, schema: &Value, projection: Option<Vec<usize>>) -> Result<Decoder, FormatError> {
    let mut store = SchemaStore::new_with_type(FingerprintAlgorithm::Id);
    store.set(Fingerprint::Id(id), AvroSchema::new(schema.to_string()))?;
    let builder = ReaderBuilder::new()
        .with_writer_schema_store(store)
        .with_active_fingerprint(Fingerprint::Id(id))
        .with_batch_size(usize::MAX / 2);
    let builder = match projection {
        Some(projection) => builder.with_projection(projection),
        None => builder,
    };
    Ok(builder.build_decoder()?)
}

/// A decoder of one writer schema, and whether that schema was wrapped in a record.
#[derive(Debug)]
struct IdDecoder {
    decoder: Decoder,
    wrapped: bool,
}

/// ksqlDB's Avro schema for columns: a record of optional fields named `full_name`, or with
/// `bare`, the one column's type itself.
pub fn schema_of(columns: &Schema, full_name: &str, bare: bool) -> Result<Value, FormatError> {
    if bare {
        return avro_type(columns.field(0).data_type(), full_name);
    }
    let (namespace, name) = match full_name.rsplit_once('.') {
        Some((namespace, name)) => (Some(namespace), name),
        None => (None, full_name),
    };
    let mut fields = Vec::with_capacity(columns.fields().len());
    for field in columns.fields() {
        avro_name(field.name())?;
        let nested = format!("{full_name}_{}", field.name());
        fields.push(
            json!({"name": field.name(), "type": ["null", avro_type(field.data_type(), &nested)?], "default": null}),
        );
    }
    let mut record = json!({"type": "record", "name": name, "fields": fields});
    if let Some(namespace) = namespace {
        record["namespace"] = json!(namespace);
    }
    Ok(record)
}

/// Checks that a column's name can be an Avro field's, with Avro's messages.
fn avro_name(name: &str) -> Result<(), FormatError> {
    let refuse = |why: &str| Err(FormatError(format!("Schema is not compatible with Avro: {why}: {name}")));
    let mut chars = name.chars();
    match chars.next() {
        None => refuse("Empty name"),
        Some(c) if !(c.is_ascii_alphabetic() || c == '_') => refuse("Illegal initial character"),
        _ if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') => refuse("Illegal character in"),
        _ => Ok(()),
    }
}

/// The Avro type ksqlDB writes for a column type; records are named after `name`.
fn avro_type(data_type: &DataType, name: &str) -> Result<Value, FormatError> {
    let optional =
        |t: &DataType, name: &str| -> Result<Value, FormatError> { Ok(json!(["null", avro_type(t, name)?])) };
    Ok(match data_type {
        DataType::Boolean => json!("boolean"),
        DataType::Int8 | DataType::Int16 | DataType::Int32 => json!("int"),
        DataType::Int64 => json!("long"),
        DataType::Float32 | DataType::Float64 => json!("double"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => json!("string"),
        DataType::Binary | DataType::LargeBinary => json!("bytes"),
        DataType::Decimal128(precision, scale) => {
            json!({"type": "bytes", "logicalType": "decimal", "precision": precision, "scale": scale})
        }
        DataType::Timestamp(..) => json!({"type": "long", "logicalType": "timestamp-millis"}),
        DataType::Date32 => json!({"type": "int", "logicalType": "date"}),
        DataType::Time32(_) => json!({"type": "int", "logicalType": "time-millis"}),
        DataType::List(item) => json!({"type": "array", "items": optional(item.data_type(), name)?}),
        DataType::Map(entries, _) => {
            let DataType::Struct(kv) = entries.data_type() else {
                return Err(FormatError(format!("unexpected map type {data_type}")));
            };
            if kv[0].data_type() != &DataType::Utf8 {
                return Err(FormatError("Avro only supports MAPs with STRING keys".into()));
            }
            json!({"type": "map", "values": optional(kv[1].data_type(), name)?})
        }
        DataType::Struct(fields) => {
            let (namespace, short) = name.rsplit_once('.').unwrap_or(("", name));
            let fields = fields
                .iter()
                .map(|f| {
                    avro_name(f.name())?;
                    Ok(json!({"name": f.name(), "type": optional(f.data_type(), &format!("{name}_{}", f.name()))?, "default": null}))
                })
                .collect::<Result<Vec<_>, FormatError>>()?;
            json!({"type": "record", "name": short, "namespace": namespace, "fields": fields})
        }
        other => return Err(FormatError(format!("AVRO cannot hold a column of type {other}"))),
    })
}

/// One side's codec.
#[derive(Debug)]
struct AvroCodec {
    schema: SchemaRef,
    /// One column, written as a bare datum.
    bare: bool,
    /// The schema records are written with, registered, and as JSON.
    written: Writer,
    writer: Value,
    /// Whether it is a record (else it is wrapped in one to be written).
    writer_record: bool,
    /// Its shape in Arrow (as arrow-avro reads it; a bare one as the field [`BARE`]).
    writer_arrow: SchemaRef,
    /// Which columns are decoded (the others are null), when not all: see
    /// [`Codec::reading_only`].
    used: Option<Arc<[bool]>>,
    /// Decoders not in use, per writer schema id: a thread decoding takes one (or makes
    /// one) and gives it back after, so that threads decode side by side.
    idle_decoders: Mutex<HashMap<u32, Vec<IdDecoder>>>,
    /// The encoder, once the first batch is written.
    encoder: Mutex<Option<arrow_avro::writer::Encoder>>,
}

impl AvroCodec {
    /// Decodes a run of payloads all written with schema `id`, then fits them to the columns.
    /// Hostile bytes never take a query down: a panic in the decoder fails the run (and
    /// the decoder, which is dropped).
    fn decode_run(&self, id: u32, payloads: &[&[u8]]) -> Result<RecordBatch, String> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.try_decode_run(id, payloads))).unwrap_or_else(
            |panic| Err(format!("the Avro decoder failed on it ({})", crate::error::panic_message(panic.as_ref()))),
        )
    }

    fn try_decode_run(&self, id: u32, payloads: &[&[u8]]) -> Result<RecordBatch, String> {
        let idle = self
            .idle_decoders
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get_mut(&id)
            .and_then(Vec::pop);
        let mut taken = match idle {
            Some(decoder) => decoder,
            None => self.decoder(id)?,
        };
        let decoded = (|| -> Result<Option<RecordBatch>, String> {
            for payload in payloads {
                let read = taken.decoder.decode(payload).map_err(|e| e.to_string())?;
                if read != payload.len() {
                    return Err(format!("malformed Avro record: {} of its {} bytes read", read, payload.len()));
                }
            }
            taken.decoder.flush().map_err(|e| e.to_string())
        })();
        // A decoder that failed may be midway through a record: it is dropped.
        let batch = decoded?;
        let wrapped = taken.wrapped;
        self.idle_decoders.lock().unwrap_or_else(std::sync::PoisonError::into_inner).entry(id).or_default().push(taken);
        let rows = payloads.len();
        let Some(batch) = batch else { return Err("no record decoded".into()) };
        if batch.num_rows() != rows {
            return Err(format!("expected {rows} records, decoded {}", batch.num_rows()));
        }
        self.fit(batch, wrapped).map_err(|e| e.0)
    }

    /// A new decoder of records written with schema `id`. When the codec reads only some
    /// columns, the writer's fields that no used column reads are skipped, unless reading
    /// them into their column could fail (a cast): a record is refused as it would be.
    fn decoder(&self, id: u32) -> Result<IdDecoder, String> {
        let registered = self.written.registry().schema_by_id(id).map_err(|e| e.to_string())?;
        if registered.schema_type != SchemaType::Avro {
            return Err(format!("schema {id} is {:?}, not AVRO", registered.schema_type));
        }
        let registry = self.written.registry();
        let writer = self_contained(&registered, |r| registry.referenced(r))?;
        let record = writer["type"] == "record";
        let writer = if record { writer } else { wrap(&writer) };
        let decoder = decoder_for(id, &writer, None).map_err(|e| e.0)?;
        let projection = match &self.used {
            Some(used) if record && !self.bare => self.projection(&decoder.schema(), used),
            _ => None,
        };
        let decoder = match projection {
            Some(projection) => decoder_for(id, &writer, Some(projection)).map_err(|e| e.0)?,
            None => decoder,
        };
        Ok(IdDecoder { decoder, wrapped: !record })
    }

    /// The writer's fields (`written`, in Arrow) that reading the `used` columns needs, when
    /// that is fewer than all: those of used columns, and those of unused ones whose
    /// values are not the column's type as they are.
    fn projection(&self, written: &Schema, used: &[bool]) -> Option<Vec<usize>> {
        let read: Vec<usize> = written
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, field)| {
                self.schema.fields().iter().zip(used).any(|(column, used)| {
                    column.name().eq_ignore_ascii_case(field.name())
                        && (*used || column.data_type() != field.data_type())
                })
            })
            .map(|(i, _)| i)
            .collect();
        (read.len() < written.fields().len() && !read.is_empty()).then_some(read)
    }

    /// A decoded batch, in its writer's shape, as the columns.
    fn fit(&self, batch: RecordBatch, wrapped: bool) -> Result<RecordBatch, FormatError> {
        let rows = batch.num_rows();
        let columns: Vec<ArrayRef> = if self.bare || (wrapped && self.schema.fields().len() == 1) {
            let value: ArrayRef = if wrapped { batch.column(0).clone() } else { Arc::new(StructArray::from(batch)) };
            vec![fit(&value, self.schema.field(0).data_type())?]
        } else {
            let by_name = StructArray::from(batch);
            self.schema
                .fields()
                .iter()
                .map(|field| match field_of(&by_name, field.name()) {
                    Some(column) => fit(column, field.data_type()),
                    None => Ok(new_null_array(field.data_type(), rows)),
                })
                .collect::<Result<_, _>>()?
        };
        let options = datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(rows));
        Ok(RecordBatch::try_new_with_options(self.schema.clone(), columns, &options)?)
    }
}

/// The child of `parent` named `name`: the exact name first, else ignoring case.
fn field_of<'a>(parent: &'a StructArray, name: &str) -> Option<&'a ArrayRef> {
    let fields = parent.fields();
    let index = fields
        .iter()
        .position(|f| f.name() == name)
        .or_else(|| fields.iter().position(|f| f.name().eq_ignore_ascii_case(name)))?;
    Some(parent.column(index))
}

/// A column as read, fitted to a column's type: records by field name, lists and maps by
/// their items, anything else cast (ksqlDB's coercions: numbers widen, anything becomes text,
/// enums are strings, fixed is bytes).
fn fit(array: &ArrayRef, target: &DataType) -> Result<ArrayRef, FormatError> {
    if array.data_type() == target {
        return Ok(array.clone());
    }
    Ok(match (array.data_type(), target) {
        (DataType::Struct(_), DataType::Struct(fields)) => {
            let parent = array.as_struct();
            let columns = fields
                .iter()
                .map(|f| match field_of(parent, f.name()) {
                    Some(column) => fit(column, f.data_type()),
                    None => Ok(new_null_array(f.data_type(), parent.len())),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Arc::new(StructArray::try_new(fields.clone(), columns, parent.nulls().cloned())?)
        }
        (DataType::List(_), DataType::List(item)) => {
            let list = array.as_list::<i32>();
            let values = fit(list.values(), item.data_type())?;
            Arc::new(ListArray::try_new(item.clone(), list.offsets().clone(), values, list.nulls().cloned())?)
        }
        (DataType::Map(..), DataType::Map(entries, sorted)) => {
            let map = array.as_map();
            let DataType::Struct(kv) = entries.data_type() else { return Err(FormatError("bad map type".into())) };
            let keys = fit(map.keys(), kv[0].data_type())?;
            let values = fit(map.values(), kv[1].data_type())?;
            let entries_array = StructArray::try_new(kv.clone(), vec![keys, values], None)?;
            Arc::new(MapArray::try_new(
                entries.clone(),
                map.offsets().clone(),
                entries_array,
                map.nulls().cloned(),
                *sorted,
            )?)
        }
        // A map written as Connect writes maps of non-string keys: a list of key/value records.
        (DataType::List(_), DataType::Map(entries, sorted)) => {
            let list = array.as_list::<i32>();
            let DataType::Struct(kv) = entries.data_type() else { return Err(FormatError("bad map type".into())) };
            let pairs = fit(list.values(), &DataType::Struct(kv.clone()))?;
            let pairs = pairs.as_struct();
            let entries_array = StructArray::try_new(kv.clone(), pairs.columns().to_vec(), None)?;
            Arc::new(MapArray::try_new(
                entries.clone(),
                list.offsets().clone(),
                entries_array,
                list.nulls().cloned(),
                *sorted,
            )?)
        }
        // A map to be written as a list of key/value records (a registered schema's choice).
        (DataType::Map(..), DataType::List(item)) => {
            let map = array.as_map();
            let pairs: ArrayRef = Arc::new(map.entries().clone());
            let values = fit(&pairs, item.data_type())?;
            Arc::new(ListArray::try_new(item.clone(), map.offsets().clone(), values, map.nulls().cloned())?)
        }
        (DataType::Timestamp(unit, Some(_)), DataType::Timestamp(..)) => {
            // The instant as it is: Eddy's timestamps are UTC without a zone.
            let naive = cast(array, &DataType::Timestamp(*unit, None))?;
            cast(&naive, target)?
        }
        (DataType::Dictionary(..), _) => cast(&cast(array, &DataType::Utf8)?, target)?,
        (from, to) => cast(array, to).map_err(|e| FormatError(format!("cannot read Avro {from} as {to}: {e}")))?,
    })
}

/// `data_type` with every nested field nullable: the shape rows are fitted to before the
/// writer schema's defaults fill their nulls ([`with_defaults`]).
fn relaxed(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Struct(fields) => {
            DataType::Struct(fields.iter().map(|f| Field::new(f.name(), relaxed(f.data_type()), true)).collect())
        }
        DataType::List(item) => DataType::List(Arc::new(Field::new(item.name(), relaxed(item.data_type()), true))),
        other => other.clone(),
    }
}

/// Rows fitted to the [`relaxed`] writer shape, as the writer shape `target`: with the writer
/// schema's (`avro`) defaults where a field is null and cannot be, as ksqlDB writes with a
/// registered schema (`VALUE_SCHEMA_ID`): a field the columns do not have, or a null written
/// to a field that is no union with null. Nested records and lists likewise. A null left
/// where the writer allows none fails the batch.
fn with_defaults(array: &ArrayRef, avro: &Value, target: &DataType) -> Result<ArrayRef, FormatError> {
    match (target, array.data_type()) {
        (DataType::Struct(fields), DataType::Struct(_)) => {
            let parent = array.as_struct();
            let schemas = avro["fields"].as_array().map(Vec::as_slice).unwrap_or_default();
            let columns = fields
                .iter()
                .zip(parent.columns())
                .map(|(field, column)| {
                    let schema = schemas.iter().find(|f| f["name"] == field.name().as_str()).unwrap_or(&Value::Null);
                    let column = with_defaults(column, &schema["type"], field.data_type())?;
                    Ok(if field.is_nullable() { column } else { or_default(column, &schema["default"]) })
                })
                .collect::<Result<Vec<_>, FormatError>>()?;
            Ok(Arc::new(StructArray::try_new(fields.clone(), columns, parent.nulls().cloned())?))
        }
        (DataType::List(item), DataType::List(_)) => {
            let list = array.as_list::<i32>();
            let values = with_defaults(list.values(), &avro["items"], item.data_type())?;
            Ok(Arc::new(ListArray::try_new(item.clone(), list.offsets().clone(), values, list.nulls().cloned())?))
        }
        _ => Ok(array.clone()),
    }
}

/// `column` with its nulls replaced by `default` (a JSON default of a primitive type), when
/// the default casts to the column's type.
fn or_default(column: ArrayRef, default: &Value) -> ArrayRef {
    let text = match default {
        Value::String(text) => text.clone(),
        number @ (Value::Number(_) | Value::Bool(_)) => number.to_string(),
        _ => return column,
    };
    if column.null_count() == 0 {
        return column;
    }
    let text: ArrayRef = Arc::new(datafusion::arrow::array::StringArray::from(vec![text]));
    let filled = cast(&text, column.data_type()).and_then(|default| {
        let present = datafusion::arrow::compute::is_not_null(&column)?;
        datafusion::arrow::compute::kernels::zip::zip(
            &present,
            &column,
            &datafusion::arrow::array::Scalar::new(default),
        )
    });
    filled.unwrap_or(column)
}

impl Codec for AvroCodec {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn prefetch<'a>(&'a self, payloads: &mut dyn Iterator<Item = &[u8]>) -> futures::future::BoxFuture<'a, ()> {
        super::confluent::prefetch(self.written.registry(), payloads)
    }

    fn decode(&self, payloads: &[&[u8]]) -> Result<Decoded, FormatError> {
        if self.schema.fields().is_empty() {
            // No columns (a keyless stream's key): whatever the bytes, nothing to read.
            return Ok(Decoded::rows_only(super::rows_without_columns(&self.schema, payloads.len())?));
        }
        // Each payload's schema id, or why it has none.
        let ids: Vec<Result<u32, String>> = payloads.iter().map(|p| unframe(p, "AVRO").map(|(id, _)| id)).collect();
        let mut batches = Vec::new();
        let mut errors = Vec::new();
        let mut schema_ids = Vec::with_capacity(payloads.len());
        let mut start = 0;
        while start < payloads.len() {
            let id = ids[start].clone();
            let mut end = start + 1;
            while end < payloads.len() && ids[end] == id {
                end += 1;
            }
            match id {
                Err(reason) => errors.extend((start..end).map(|i| (i, reason.clone()))),
                Ok(id) => {
                    let run = &payloads[start..end];
                    match self.decode_run(id, run) {
                        Ok(batch) => {
                            schema_ids.extend(std::iter::repeat_n(id, run.len()));
                            batches.push(batch);
                        }
                        // One by one, so that a bad record fails alone.
                        Err(_) => {
                            for (i, payload) in run.iter().enumerate() {
                                match self.decode_run(id, std::slice::from_ref(payload)) {
                                    Ok(batch) => {
                                        schema_ids.push(id);
                                        batches.push(batch);
                                    }
                                    Err(reason) => errors.push((start + i, reason)),
                                }
                            }
                        }
                    }
                }
            }
            start = end;
        }
        let batch = concat_batches(&self.schema, &batches)?;
        Ok(Decoded { batch, errors, schema_ids: Some(schema_ids) })
    }

    fn encode(&self, batch: &RecordBatch) -> Result<Vec<Option<Bytes>>, FormatError> {
        let rows = batch.num_rows();
        if self.schema.fields().is_empty() {
            return Ok(vec![None; rows]);
        }
        if rows == 0 {
            return Ok(Vec::new());
        }
        let id = self.written.id()?;
        // The rows in the writer schema's own Arrow shape (as arrow-avro reads it), fields
        // matched by name ignoring case: the encoder takes columns by the writer's names.
        let (written, present): (RecordBatch, Option<Vec<bool>>) = if self.bare {
            // A bare value that is null is no bytes at all (a tombstone, a null key).
            let column = batch.column(0);
            let present: Vec<bool> = (0..rows).map(|i| column.is_valid(i)).collect();
            let kept = datafusion::arrow::compute::filter(
                column,
                &datafusion::arrow::array::BooleanArray::from(present.clone()),
            )?;
            let shaped = if self.writer_record {
                // An unwrapped STRUCT: its fields are the record's.
                let value = fit(&kept, &DataType::Struct(self.writer_arrow.fields().clone()))?;
                RecordBatch::from(value.as_struct().clone())
            } else {
                let value = fit(&kept, self.writer_arrow.field(0).data_type())?;
                RecordBatch::try_new(self.writer_arrow.clone(), vec![value])?
            };
            (shaped, Some(present))
        } else {
            let row = StructArray::from(batch.clone());
            let target = DataType::Struct(self.writer_arrow.fields().clone());
            let value = fit(&(Arc::new(row) as ArrayRef), &relaxed(&target))?;
            let value = with_defaults(&value, &self.writer, &target)?;
            (RecordBatch::from(value.as_struct().clone()), None)
        };
        // One encoder for the codec's life (building one parses the schema), made at the
        // first batch, once the schema's id is known.
        let mut encoder = self.encoder.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if encoder.is_none() {
            let writer_schema = if self.writer_record { self.writer.clone() } else { wrap(&self.writer) };
            let metadata =
                HashMap::from([(arrow_avro::schema::SCHEMA_METADATA_KEY.to_owned(), writer_schema.to_string())]);
            let arrow_schema = Schema::new_with_metadata(written.schema().fields().clone(), metadata);
            *encoder = Some(
                WriterBuilder::new(arrow_schema)
                    .with_fingerprint_strategy(FingerprintStrategy::Id(id))
                    .build_encoder::<AvroSoeFormat>()
                    .map_err(|e| FormatError(format!("cannot write AVRO for {}: {e}", self.written.subject_name())))?,
            );
        }
        let Some(encoder) = encoder.as_mut() else { return Err(FormatError("no encoder".into())) };
        let written = RecordBatch::try_new(encoder.schema(), written.columns().to_vec())?;
        if let Err(e) = encoder.encode(&written) {
            // (What it buffered of the failed batch must not go out with the next.)
            let _ = encoder.flush();
            return Err(FormatError(format!("cannot write AVRO: {e}")));
        }
        let encoded = encoder.flush();
        let mut out = Vec::with_capacity(rows);
        let mut rows_written = encoded.iter();
        match present {
            None => out.extend(rows_written.map(Some)),
            Some(present) => {
                for here in present {
                    out.push(if here { rows_written.next() } else { None });
                }
            }
        }
        Ok(out)
    }

    fn reading_only(&self, used: &[bool]) -> Option<Arc<dyn Codec>> {
        if self.bare || used.len() != self.schema.fields().len() || used.iter().all(|u| *u) {
            return None;
        }
        Some(Arc::new(AvroCodec {
            schema: self.schema.clone(),
            bare: self.bare,
            written: self.written.clone(),
            writer: self.writer.clone(),
            writer_record: self.writer_record,
            writer_arrow: self.writer_arrow.clone(),
            used: Some(used.into()),
            idle_decoders: Mutex::default(),
            encoder: Mutex::default(),
        }))
    }

    fn prepare<'a>(&'a self, registration: Registration) -> BoxFuture<'a, Result<(), FormatError>> {
        if self.schema.fields().is_empty() {
            return Box::pin(std::future::ready(Ok(())));
        }
        Box::pin(self.written.prepare(registration))
    }
}

impl From<arrow_avro::errors::AvroError> for FormatError {
    fn from(e: arrow_avro::errors::AvroError) -> Self {
        FormatError(e.to_string())
    }
}

#[cfg(test)]
mod tests;
