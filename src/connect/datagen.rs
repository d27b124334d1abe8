//! `DatagenSource`: fills a topic with the records of one of Kafka Connect Datagen's
//! quickstart templates, as `io.confluent.kafka.connect.datagen.DatagenConnector` does (its
//! class name is accepted too).
//!
//! Options, with the Datagen connector's names and defaults:
//! - `kafka.topic` (required): where the records go;
//! - `quickstart`: `orders`, `pageviews` or `users`: the templates' fields, key field and
//!   value rules (below);
//! - `max.interval` (ms, default 500): before each record, a pause drawn uniformly from
//!   `[0, max.interval)`. At 0 there is none and records come in batches;
//! - `iterations` (default -1): how many records, then the connector stops; below 1, no end;
//! - `random.seed`: the same seed gives the same records. Record `n` is a function of the seed
//!   and `n` alone, so a connector that resumes after a restart goes on with the records it
//!   would have made;
//! - `schema.keyfield`: the field whose value is the key, instead of the template's;
//! - the value's format: `value.format` (`JSON`, `AVRO`, `PROTOBUF`, `JSON_SR`), or Kafka
//!   Connect's `value.converter` naming the same (`JsonConverter` with `schemas.enable`
//!   false, `AvroConverter`, `ProtobufConverter`, `JsonSchemaConverter`). JSON by default.
//!   The registry formats register the template's schema under `<topic>-value`;
//! - the key: the key field's value as text (Connect's `StringConverter`, the default), or
//!   4 or 8 bytes big-endian with `key.converter` `IntegerConverter`/`LongConverter`, as
//!   ksqlDB's `KAFKA` format reads an INT or BIGINT key.
//!
//! The templates are those of kafka-connect-datagen's `orders_schema.avro`,
//! `pageviews_schema.avro` and `users_schema.avro`: `iteration` fields count from `start` by
//! `step`, `range` values fall in `[min, max)`, `regex` strings match their pattern (by
//! `rand_regex`), and `options` are picked uniformly.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use datafusion::arrow::array::{
    ArrayRef, Float64Builder, Int32Builder, Int64Builder, RecordBatch, StringBuilder, StructArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use futures::future::BoxFuture;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::{Connector, ConnectorClass, ConnectorConfig, ConnectorError, SourceConnector};
use crate::format::{Codec, FormatOptions, Formats, Registration, Subject};
use crate::log::NewRecord;

/// The class names `connector.class` may give.
const NAMES: [&str; 2] = ["DatagenSource", "io.confluent.kafka.connect.datagen.DatagenConnector"];

/// How many records a poll makes at most when `max.interval` is 0.
const BATCH: usize = 1024;

/// Makes datagen connectors; their values are written in one of `formats`.
pub struct Datagen {
    formats: Formats,
}

impl Datagen {
    pub fn new(formats: Formats) -> Datagen {
        Datagen { formats }
    }
}

impl ConnectorClass for Datagen {
    fn names(&self) -> &[&'static str] {
        &NAMES
    }

    fn create(&self, config: &ConnectorConfig) -> Result<Connector, ConnectorError> {
        Ok(Connector::Source(Box::new(DatagenConnector::new(config, &self.formats)?)))
    }
}

/// A value a field holds.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Int(i32),
    Long(i64),
    Double(f64),
    Text(String),
    Record(Vec<Value>),
}

impl Value {
    /// The value as Connect's `StringConverter` writes it.
    fn text(&self) -> String {
        match self {
            Value::Int(v) => v.to_string(),
            Value::Long(v) => v.to_string(),
            Value::Double(v) => crate::format::java_double(*v),
            Value::Text(v) => v.clone(),
            Value::Record(_) => String::new(),
        }
    }
}

/// How a field's values are made.
#[derive(Debug)]
enum Rule {
    /// `start`, `start + step`, … (by the record's number).
    Iteration {
        start: i64,
        step: i64,
    },
    /// Uniform in `[min, max)`.
    LongRange(i64, i64),
    DoubleRange(f64, f64),
    /// A string matching the pattern.
    Regex(Box<rand_regex::Regex>),
    /// One of these, uniformly.
    Options(&'static [&'static str]),
    /// A nested record of these fields.
    Record(Vec<Spec>),
}

/// A template's field: its name, Arrow type, and rule.
#[derive(Debug)]
struct Spec {
    name: &'static str,
    data_type: DataType,
    rule: Rule,
}

impl Spec {
    fn new(name: &'static str, data_type: DataType, rule: Rule) -> Spec {
        Spec { name, data_type, rule }
    }

    fn field(&self) -> Field {
        Field::new(self.name, self.data_type.clone(), true)
    }

    fn value(&self, number: u64, rng: &mut SmallRng) -> Value {
        let long = |v: i64| if self.data_type == DataType::Int32 { Value::Int(v as i32) } else { Value::Long(v) };
        match &self.rule {
            Rule::Iteration { start, step } => long(start.wrapping_add(step.wrapping_mul(number as i64))),
            Rule::LongRange(min, max) => long(rng.random_range(*min..*max)),
            Rule::DoubleRange(min, max) => Value::Double(rng.random_range(*min..*max)),
            Rule::Regex(regex) => Value::Text(rng.sample::<String, _>(regex.as_ref())),
            Rule::Options(options) => Value::Text(options[rng.random_range(0..options.len())].to_owned()),
            Rule::Record(fields) => Value::Record(fields.iter().map(|f| f.value(number, rng)).collect()),
        }
    }
}

/// A quickstart template: its fields and key field.
#[derive(Debug)]
struct Template {
    /// Its schema's full name (`ksql.orders`), for the formats that name schemas.
    full_name: &'static str,
    fields: Vec<Spec>,
    key_field: &'static str,
}

/// The quickstart templates, by name.
const QUICKSTARTS: [&str; 3] = ["orders", "pageviews", "users"];

/// The earliest and latest timestamps the templates' time fields fall between.
const TIMES: (i64, i64) = (1_487_715_775_521, 1_519_273_364_600);

fn regex(pattern: &str) -> Result<Rule, ConnectorError> {
    let compiled = rand_regex::Regex::compile(pattern, 3)
        .map_err(|e| ConnectorError::new(format!("cannot generate strings matching {pattern}: {e}")))?;
    Ok(Rule::Regex(Box::new(compiled)))
}

fn template(quickstart: &str) -> Result<Template, ConnectorError> {
    use DataType::{Float64, Int32, Int64, Utf8};
    Ok(match quickstart.to_lowercase().as_str() {
        "orders" => Template {
            full_name: "ksql.orders",
            fields: vec![
                Spec::new("ordertime", Int64, Rule::LongRange(TIMES.0, TIMES.1)),
                Spec::new("orderid", Int32, Rule::Iteration { start: 0, step: 1 }),
                Spec::new("itemid", Utf8, regex("Item_[1-9][0-9]{0,2}")?),
                Spec::new("orderunits", Float64, Rule::DoubleRange(0.1, 10.0)),
                {
                    let address = vec![
                        Spec::new("city", Utf8, regex("City_[1-9]{0,2}")?),
                        Spec::new("state", Utf8, regex("State_[1-9]{0,2}")?),
                        Spec::new("zipcode", Int64, Rule::LongRange(10_000, 99_999)),
                    ];
                    let fields: Fields = address.iter().map(Spec::field).collect();
                    Spec::new("address", DataType::Struct(fields), Rule::Record(address))
                },
            ],
            key_field: "orderid",
        },
        "pageviews" => Template {
            full_name: "ksql.pageviews",
            fields: vec![
                Spec::new("viewtime", Int64, Rule::Iteration { start: 1, step: 10 }),
                Spec::new("userid", Utf8, regex("User_[1-9]")?),
                Spec::new("pageid", Utf8, regex("Page_[1-9][0-9]")?),
            ],
            key_field: "viewtime",
        },
        "users" => Template {
            full_name: "ksql.users",
            fields: vec![
                Spec::new("registertime", Int64, Rule::LongRange(TIMES.0, TIMES.1)),
                Spec::new("userid", Utf8, regex("User_[1-9]")?),
                Spec::new("regionid", Utf8, regex("Region_[1-9]")?),
                Spec::new("gender", Utf8, Rule::Options(&["MALE", "FEMALE", "OTHER"])),
            ],
            key_field: "userid",
        },
        _ => return Err(ConnectorError::new(format!("quickstart must be one out of {}", QUICKSTARTS.join(",")))),
    })
}

/// How the key is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyBytes {
    Text,
    /// Big-endian, 4 or 8 bytes.
    Integer,
    Long,
}

/// A running datagen: its template, how far it has come, and its codec.
pub struct DatagenConnector {
    topic: String,
    template: Template,
    schema: SchemaRef,
    key_index: usize,
    key_bytes: KeyBytes,
    max_interval_ms: u64,
    /// How many records to make; `None`: no end.
    iterations: Option<u64>,
    seed: u64,
    /// The number of the next record.
    next: u64,
    codec: Arc<dyn Codec>,
    prepared: bool,
}

impl DatagenConnector {
    fn new(config: &ConnectorConfig, formats: &Formats) -> Result<DatagenConnector, ConnectorError> {
        let property = |name: &str| config.properties.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
        let topic = property("kafka.topic")
            .ok_or_else(|| {
                ConnectorError::new(r#"Missing required configuration "kafka.topic" which has no default value."#)
            })?
            .to_owned();
        if property("schema.string").is_some() || property("schema.filename").is_some() {
            return Err(ConnectorError::new(
                "Eddy's datagen makes the quickstart templates (orders, pageviews, users); \
                 schema.string and schema.filename are not supported",
            ));
        }
        let quickstart = property("quickstart").ok_or_else(|| {
            ConnectorError::new("quickstart - Must set exactly one of schema.string, schema.filename, quickstart")
        })?;
        let template = template(quickstart)?;
        let number = |name: &str, default: i64| -> Result<i64, ConnectorError> {
            match property(name) {
                None => Ok(default),
                Some(text) => text.parse::<i64>().map_err(|_| {
                    ConnectorError::new(format!(
                        "Invalid value {text} for configuration {name}: Not a number of type LONG"
                    ))
                }),
            }
        };
        let max_interval_ms = u64::try_from(number("max.interval", 500)?)
            .map_err(|_| ConnectorError::new("Invalid value for configuration max.interval: it cannot be negative"))?;
        let iterations = u64::try_from(number("iterations", -1)?).ok().filter(|n| *n > 0);
        let seed = match property("random.seed") {
            Some(_) => number("random.seed", 0)? as u64,
            // Unseeded: different records each time it is made.
            None => {
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
                now.as_nanos() as u64 ^ u64::from(std::process::id()).rotate_left(32)
            }
        };
        let key_field = property("schema.keyfield").unwrap_or(template.key_field);
        let key_index = template.fields.iter().position(|f| f.name == key_field).ok_or_else(|| {
            ConnectorError::new("The schema does not contain the field provided in 'schema.keyfield'")
        })?;
        let key_bytes = match property("key.converter").map(|c| c.rsplit('.').next().unwrap_or(c)) {
            None | Some("StringConverter") => KeyBytes::Text,
            Some("IntegerConverter") => KeyBytes::Integer,
            Some("LongConverter") => KeyBytes::Long,
            Some(other) => {
                return Err(ConnectorError::new(format!(
                    "key.converter {other} is not supported: StringConverter, IntegerConverter or LongConverter"
                )));
            }
        };
        if key_bytes != KeyBytes::Text {
            let wanted = if key_bytes == KeyBytes::Integer { DataType::Int32 } else { DataType::Int64 };
            if template.fields[key_index].data_type != wanted {
                return Err(ConnectorError::new(format!(
                    "key.converter {} needs a key field of type {wanted}; {key_field} is {}",
                    property("key.converter").unwrap_or_default(),
                    template.fields[key_index].data_type
                )));
            }
        }
        let format = value_format(config)?;
        let schema: SchemaRef = Arc::new(Schema::new(template.fields.iter().map(Spec::field).collect::<Vec<_>>()));
        let options = FormatOptions {
            subject: Some(Subject::new(&topic, false)),
            full_name: Some(template.full_name.to_owned()),
            ..FormatOptions::default()
        };
        let codec = formats
            .get(&format)
            .and_then(|f| f.codec(schema.clone(), options))
            .map_err(|e| ConnectorError::new(format!("value format {format}: {e}")))?;
        Ok(DatagenConnector {
            topic,
            template,
            schema,
            key_index,
            key_bytes,
            max_interval_ms,
            iterations,
            seed,
            next: 0,
            codec,
            prepared: false,
        })
    }

    /// Records `from..to`, encoded.
    fn make(&self, from: u64, to: u64) -> Result<Vec<NewRecord>, ConnectorError> {
        let mut columns: Vec<Column> = self.template.fields.iter().map(Column::for_spec).collect();
        let mut keys = Vec::with_capacity((to - from) as usize);
        for number in from..to {
            let mut rng = SmallRng::seed_from_u64(self.seed ^ number.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            for (i, (spec, column)) in self.template.fields.iter().zip(&mut columns).enumerate() {
                let value = spec.value(number, &mut rng);
                if i == self.key_index {
                    keys.push(self.key(&value));
                }
                column.push(Some(&value));
            }
        }
        let columns: Vec<ArrayRef> = columns.into_iter().map(Column::finish).collect();
        let batch =
            RecordBatch::try_new(self.schema.clone(), columns).map_err(|e| ConnectorError::new(e.to_string()))?;
        let values =
            self.codec.encode(&batch).map_err(|e| ConnectorError::new(format!("cannot write a record: {e}")))?;
        let now = crate::log::record::now_ms();
        Ok(keys.into_iter().zip(values).map(|(key, value)| NewRecord::new(now, Some(key), value)).collect())
    }

    fn key(&self, value: &Value) -> Bytes {
        match (self.key_bytes, value) {
            (KeyBytes::Integer, Value::Int(v)) => Bytes::copy_from_slice(&v.to_be_bytes()),
            (KeyBytes::Long, Value::Long(v)) => Bytes::copy_from_slice(&v.to_be_bytes()),
            _ => Bytes::from(value.text()),
        }
    }
}

/// The format the values are written in: `value.format`, or the one `value.converter` names.
fn value_format(config: &ConnectorConfig) -> Result<String, ConnectorError> {
    let property = |name: &str| config.properties.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    if let Some(format) = property("value.format") {
        return Ok(format.to_uppercase());
    }
    let Some(converter) = property("value.converter") else { return Ok(crate::format::JSON.to_owned()) };
    Ok(match converter.rsplit('.').next().unwrap_or(converter) {
        "JsonConverter" => {
            if property("value.converter.schemas.enable").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
                return Err(ConnectorError::new(
                    "value.converter.schemas.enable=true (a schema in every record) is not supported: \
                     set it to false, or use JsonSchemaConverter",
                ));
            }
            crate::format::JSON
        }
        "AvroConverter" => crate::format::AVRO,
        "ProtobufConverter" => crate::format::PROTOBUF,
        "JsonSchemaConverter" => crate::format::JSON_SR,
        other => {
            return Err(ConnectorError::new(format!(
                "value.converter {other} is not supported: JsonConverter, AvroConverter, ProtobufConverter or \
                 JsonSchemaConverter"
            )));
        }
    }
    .to_owned())
}

/// A column being built from values.
enum Column {
    Int(Int32Builder),
    Long(Int64Builder),
    Double(Float64Builder),
    Text(StringBuilder),
    Record(Fields, Vec<Column>),
}

impl Column {
    fn for_spec(spec: &Spec) -> Column {
        match &spec.rule {
            Rule::Record(fields) => {
                Column::Record(fields.iter().map(Spec::field).collect(), fields.iter().map(Column::for_spec).collect())
            }
            _ => match spec.data_type {
                DataType::Int32 => Column::Int(Int32Builder::new()),
                DataType::Int64 => Column::Long(Int64Builder::new()),
                DataType::Float64 => Column::Double(Float64Builder::new()),
                _ => Column::Text(StringBuilder::new()),
            },
        }
    }

    /// Appends `value`; null where there is none or it is not the column's type (a record's
    /// missing fields too), so that every column keeps one entry per row.
    fn push(&mut self, value: Option<&Value>) {
        match (self, value) {
            (Column::Int(b), Some(Value::Int(v))) => b.append_value(*v),
            (Column::Long(b), Some(Value::Long(v))) => b.append_value(*v),
            (Column::Double(b), Some(Value::Double(v))) => b.append_value(*v),
            (Column::Text(b), Some(Value::Text(v))) => b.append_value(v),
            (Column::Record(_, children), value) => {
                let values = match value {
                    Some(Value::Record(values)) => values.as_slice(),
                    _ => &[],
                };
                for (i, child) in children.iter_mut().enumerate() {
                    child.push(values.get(i));
                }
            }
            (Column::Int(b), _) => b.append_null(),
            (Column::Long(b), _) => b.append_null(),
            (Column::Double(b), _) => b.append_null(),
            (Column::Text(b), _) => b.append_null(),
        }
    }

    fn finish(self) -> ArrayRef {
        match self {
            Column::Int(mut b) => Arc::new(b.finish()),
            Column::Long(mut b) => Arc::new(b.finish()),
            Column::Double(mut b) => Arc::new(b.finish()),
            Column::Text(mut b) => Arc::new(b.finish()),
            Column::Record(fields, children) => {
                Arc::new(StructArray::new(fields, children.into_iter().map(Column::finish).collect(), None))
            }
        }
    }
}

impl SourceConnector for DatagenConnector {
    fn topic(&self) -> &str {
        &self.topic
    }

    fn poll(&mut self) -> BoxFuture<'_, Result<Option<Vec<NewRecord>>, ConnectorError>> {
        Box::pin(async move {
            if !self.prepared {
                self.codec
                    .prepare(Registration::Sink)
                    .await
                    .map_err(|e| ConnectorError::new(format!("cannot register the value schema: {e}")))?;
                self.prepared = true;
            }
            let left = self.iterations.map_or(u64::MAX, |n| n.saturating_sub(self.next));
            if left == 0 {
                return Ok(None);
            }
            let count = if self.max_interval_ms == 0 {
                left.min(BATCH as u64)
            } else {
                // The pause is the record's own draw: a resumed connector pauses as it would have.
                let mut rng = SmallRng::seed_from_u64(!self.seed ^ self.next);
                let pause = rng.random_range(0..self.max_interval_ms);
                tokio::time::sleep(Duration::from_millis(pause)).await;
                1
            };
            let records = self.make(self.next, self.next + count)?;
            self.next += count;
            Ok(Some(records))
        })
    }

    fn position(&self) -> Option<u64> {
        Some(self.next)
    }

    fn resume(&mut self, position: u64) {
        self.next = position;
    }
}

#[cfg(test)]
mod tests;
