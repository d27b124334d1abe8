//! The catalog: streams, tables and types, validated from their statements.
//!
//! It sits between the SQL front end and execution: a `CREATE STREAM|TABLE` is checked here
//! (columns, keys, formats, properties) and becomes a [`Source`] with its Arrow schema. The
//! catalog itself does no I/O; the session creates topics and makes the catalog
//! durable by logging each accepted statement to the command topic.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::sql::sqlparser::ast::{ObjectName, Value};

use crate::format::{Codec, DELIMITED, FormatOptions, Formats, JSON, KAFKA, NONE};
pub use crate::format::{Format, FormatRef};
use crate::sql::ast::{ColumnConstraint, CreateSource, Properties, SourceKind, SqlType};
use crate::sql::types::{TypeError, resolved_name};

/// A statement the catalog refuses, with ksqlDB's wording where it has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CatalogError(pub String);

impl From<crate::format::FormatError> for CatalogError {
    fn from(e: crate::format::FormatError) -> Self {
        CatalogError(e.0)
    }
}

impl From<TypeError> for CatalogError {
    fn from(e: TypeError) -> Self {
        CatalogError(e.to_string())
    }
}

/// What a column holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnRole {
    /// Part of the record key (`KEY` on streams, `PRIMARY KEY` on tables).
    Key,
    Value,
    /// All headers.
    Headers,
    /// The last header with this key.
    Header(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub sql_type: SqlType,
    pub data_type: DataType,
    pub role: ColumnRole,
}

/// A stream or table.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub kind: SourceKind,
    /// `CREATE SOURCE STREAM|TABLE`: read-only (no inserts, no DELETE TOPIC, no replace).
    pub read_only: bool,
    pub topic: String,
    pub key_format: FormatRef,
    pub value_format: FormatRef,
    pub columns: Vec<Column>,
    /// The Arrow schema of the columns, in order.
    pub schema: SchemaRef,
    /// The column that gives the event time (`TIMESTAMP`), if not the record timestamp.
    pub timestamp_column: Option<String>,
    pub timestamp_format: Option<String>,
    /// Properties as given, for `DESCRIBE EXTENDED` and the formats.
    pub properties: BTreeMap<String, String>,
    /// Serialises the key columns (a single key column is written bare, as ksqlDB does).
    pub key_codec: Arc<dyn Codec>,
    /// Serialises the value columns.
    pub value_codec: Arc<dyn Codec>,
    /// The statement that created it, as it prints.
    pub statement: String,
}

impl Source {
    /// For a windowed source (`WINDOW_TYPE`): its kind, upper-cased, and its window size in
    /// milliseconds where it has one (`WINDOW_SIZE`, as `30 SECONDS`).
    pub fn window(&self) -> Option<(String, Option<i64>)> {
        let kind = self.properties.get("WINDOW_TYPE")?.to_uppercase();
        let size = self.properties.get("WINDOW_SIZE").and_then(|text| duration_ms(text).ok());
        Some((kind, size))
    }

    /// The source as a query that reads only some of its columns sees it (`used`, one mark
    /// per column, in order, and any after them): its values decoded only as far as those
    /// need, the others null, where the value format can skip ([`Codec::reading_only`]).
    /// The `TIMESTAMP` column is always read. `None` when nothing would be skipped.
    pub fn reading_only(&self, used: &[bool]) -> Option<Source> {
        let used_by_name = |name: &str| {
            self.timestamp_column.as_deref().is_some_and(|t| t.eq_ignore_ascii_case(name))
                || self.columns.iter().zip(used).any(|(c, used)| *used && c.role == ColumnRole::Value && c.name == name)
        };
        let value_used: Vec<bool> = self.value_codec.schema().fields().iter().map(|f| used_by_name(f.name())).collect();
        let value_codec = self.value_codec.reading_only(&value_used)?;
        Some(Source { value_codec, ..self.clone() })
    }

    /// Bytes after the key proper in a windowed key: 8 (the start) for time windows, 16 (end
    /// and start) for session windows, none otherwise.
    pub fn window_key_bytes(&self) -> usize {
        match self.window() {
            Some((kind, _)) if kind == "SESSION" => 16,
            Some(_) => 8,
            None => 0,
        }
    }
}

/// The WITH properties a CREATE accepts.
const KNOWN_PROPERTIES: &[&str] = &[
    "KAFKA_TOPIC",
    "KEY_FORMAT",
    "VALUE_FORMAT",
    "FORMAT",
    "PARTITIONS",
    "REPLICAS",
    "TIMESTAMP",
    "TIMESTAMP_FORMAT",
    "VALUE_DELIMITER",
    "KEY_DELIMITER",
    "WRAP_SINGLE_VALUE",
    "KEY_SCHEMA_ID",
    "VALUE_SCHEMA_ID",
    "KEY_SCHEMA_FULL_NAME",
    "VALUE_SCHEMA_FULL_NAME",
    "VALUE_AVRO_SCHEMA_FULL_NAME",
    "KEY_PROTOBUF_NULLABLE_REPRESENTATION",
    "VALUE_PROTOBUF_NULLABLE_REPRESENTATION",
    "WINDOW_TYPE",
    "WINDOW_SIZE",
    "RETENTION_MS",
];

/// Properties by upper-cased name, values as plain strings (quotes removed).
pub fn property_map(properties: &Properties) -> Result<BTreeMap<String, String>, CatalogError> {
    let mut map = BTreeMap::new();
    for (name, value) in &properties.0 {
        let key = name.value.to_ascii_uppercase();
        if !KNOWN_PROPERTIES.contains(&key.as_str()) {
            return Err(CatalogError(format!(
                "Invalid config variable(s) in the WITH clause: {key}; known: {}",
                KNOWN_PROPERTIES.join(", ")
            )));
        }
        let text = match value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
            Value::Number(n, _) => n.clone(),
            Value::Boolean(b) => b.to_string(),
            other => other.to_string(),
        };
        if map.insert(key.clone(), text).is_some() {
            return Err(CatalogError(format!("Duplicate property in the WITH clause: {key}")));
        }
    }
    Ok(map)
}

/// A persistent query the catalog knows of (running or not, in this process or another).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryInfo {
    /// `CSAS_<SINK>_<n>`, `CTAS_<SINK>_<n>` or `INSERTQUERY_<n>`, n the command's offset.
    pub id: String,
    /// The statement that started it, as it prints.
    pub statement: String,
    /// The stream or table it writes.
    pub sink: String,
    /// The streams and tables it reads.
    pub inputs: Vec<String>,
    /// Session properties when it was created (`auto.offset.reset`), which decide where it
    /// starts when it has no committed offsets.
    pub properties: BTreeMap<String, String>,
}

/// Streams, tables, types and persistent queries by upper-cased (or quoted) name.
#[derive(Debug, Default, Clone)]
pub struct Catalog {
    /// The formats sources may name.
    formats: Formats,
    sources: BTreeMap<String, Arc<Source>>,
    types: BTreeMap<String, SqlType>,
    queries: BTreeMap<String, QueryInfo>,
}

impl Catalog {
    pub fn source(&self, name: &str) -> Option<&Arc<Source>> {
        self.sources.get(name)
    }

    pub fn sources(&self) -> impl Iterator<Item = &Arc<Source>> {
        self.sources.values()
    }

    pub fn types(&self) -> impl Iterator<Item = (&String, &SqlType)> {
        self.types.iter()
    }

    pub fn queries(&self) -> impl Iterator<Item = &QueryInfo> {
        self.queries.values()
    }

    pub fn query(&self, id: &str) -> Option<&QueryInfo> {
        self.queries.get(id)
    }

    pub fn add_query(&mut self, query: QueryInfo) {
        self.queries.insert(query.id.clone(), query);
    }

    pub fn remove_query(&mut self, id: &str) -> Option<QueryInfo> {
        self.queries.remove(id)
    }

    /// Ids of the queries that read `source`, and of those that write it.
    /// ksqlDB's hint after "… does not exist": the sources whose names differ from `name`
    /// only in case (of `kind`, when given), as a "Did you mean …?" and what to do.
    pub fn alternatives(&self, name: &str, kind: Option<SourceKind>) -> String {
        let matched: Vec<&Arc<Source>> = self
            .sources
            .values()
            .filter(|s| s.name.eq_ignore_ascii_case(name) && kind.is_none_or(|k| s.kind == k))
            .collect();
        match matched.as_slice() {
            [] => String::new(),
            [only] if only.name.chars().any(char::is_lowercase) => format!(
                "\nDid you mean \"{}\"? Hint: wrap the source name in double quotes to make it case-sensitive.",
                only.name
            ),
            [only] => format!("\nDid you mean {}? Hint: try removing double quotes from the source name.", only.name),
            many => {
                let count = many.len();
                let listed: String = many
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        let punctuation = match i {
                            _ if i + 2 < count => ", ",
                            0 if count == 2 => " or ",
                            _ if i + 2 == count => ", or ",
                            _ => "? ",
                        };
                        format!("\"{}\" ({}){punctuation}", s.name, s.kind.keyword())
                    })
                    .collect();
                format!("\nDid you mean {listed}Hint: wrap the source name in double quotes to make it case-sensitive.")
            }
        }
    }

    pub fn queries_using(&self, source: &str) -> (Vec<String>, Vec<String>) {
        let reading = self.queries.values().filter(|q| q.inputs.iter().any(|i| i == source)).map(|q| q.id.clone());
        let writing = self.queries.values().filter(|q| q.sink == source).map(|q| q.id.clone());
        (reading.collect(), writing.collect())
    }

    /// The formats sources may name.
    pub fn formats(&self) -> &Formats {
        &self.formats
    }

    /// An empty catalog whose sources may name `formats`.
    pub fn with_formats(formats: Formats) -> Catalog {
        Catalog { formats, ..Catalog::default() }
    }

    /// The key and value formats a `CREATE` names (or their defaults).
    pub fn formats_of(&self, create: &CreateSource) -> Result<(FormatRef, FormatRef), CatalogError> {
        formats(&self.formats, &property_map(&create.properties)?)
    }

    /// Validates a `CREATE STREAM|TABLE` with columns into a source (not yet added).
    pub fn plan_source(&self, create: &CreateSource, statement: String) -> Result<Source, CatalogError> {
        let name = source_name(&create.name);
        if let Some(existing) = self.sources.get(&name)
            && create.or_replace
            && (existing.read_only || create.source)
        {
            return Err(CatalogError(format!(
                "Cannot add {} '{name}': CREATE OR REPLACE is not supported on source {}s.",
                create.kind.keyword().to_lowercase(),
                create.kind.keyword().to_lowercase()
            )));
        }
        if create.or_replace && create.source {
            return Err(CatalogError(format!(
                "Cannot add {} '{name}': CREATE OR REPLACE is not supported on source {}s.",
                create.kind.keyword().to_lowercase(),
                create.kind.keyword().to_lowercase()
            )));
        }
        if let Some(existing) = self.sources.get(&name)
            && !create.or_replace
        {
            return Err(CatalogError(format!(
                "Cannot add {} '{name}': A {} with the same name already exists",
                create.kind.keyword().to_lowercase(),
                existing.kind.keyword().to_lowercase()
            )));
        }
        let properties = property_map(&create.properties)?;
        let topic = properties.get("KAFKA_TOPIC").cloned().ok_or_else(|| {
            CatalogError("Missing required property \"KAFKA_TOPIC\" which has no default value.".into())
        })?;
        let (key_format, value_format) = formats(&self.formats, &properties)?;
        let columns = self.plan_columns(create)?;
        let keys = columns.iter().filter(|c| c.role == ColumnRole::Key).count();
        if create.kind == SourceKind::Table && keys == 0 {
            return Err(CatalogError("Tables require a PRIMARY KEY. Please define the PRIMARY KEY.".into()));
        }
        if let Some(size) = properties.get("WINDOW_SIZE") {
            duration_ms(size).map_err(|why| CatalogError(format!("Configuration WINDOW_SIZE is invalid: {why}")))?;
        }
        if keys == 0 && properties.contains_key("WINDOW_TYPE") {
            return Err(CatalogError("Windowed sources require a key column.".into()));
        }
        let described = |role: &dyn Fn(&ColumnRole) -> bool| -> String {
            let listed: Vec<String> = columns
                .iter()
                .filter(|c| role(&c.role))
                .map(|c| {
                    let key = if c.role == ColumnRole::Key { " KEY" } else { "" };
                    format!("`{}` {}{key}", c.name, crate::sql::types::ksql_type_name(&c.data_type))
                })
                .collect();
            format!("[{}]", listed.join(", "))
        };
        if keys > 0 && key_format.is(NONE) {
            return Err(CatalogError(format!(
                "The 'NONE' format can only be used when no columns are defined. Got: {}",
                described(&|r| *r == ColumnRole::Key)
            )));
        }
        if value_format.is(NONE) && columns.iter().any(|c| c.role == ColumnRole::Value) {
            return Err(CatalogError(format!(
                "The 'NONE' format can only be used when no columns are defined. Got: {}",
                described(&|r| *r == ColumnRole::Value)
            )));
        }
        if value_format.is(KAFKA) && columns.iter().filter(|c| c.role == ColumnRole::Value).count() > 1 {
            return Err(CatalogError(format!(
                "The 'KAFKA' format only supports a single field. Got: {}",
                described(&|r| *r == ColumnRole::Value)
            )));
        }
        let timestamp_column = match properties.get("TIMESTAMP") {
            Some(column) => {
                let wanted = column.to_uppercase();
                let found = columns.iter().find(|c| c.name == *column || c.name == wanted).ok_or_else(|| {
                    CatalogError(format!(
                        "The TIMESTAMP column set in the WITH clause does not exist in the schema: '{wanted}'"
                    ))
                })?;
                if !matches!(found.sql_type, SqlType::Bigint | SqlType::Timestamp | SqlType::String) {
                    return Err(CatalogError(format!(
                        "Timestamp column, `{}`, should be LONG(INT64), TIMESTAMP, or a String with a timestamp_format specified.",
                        found.name
                    )));
                }
                Some(found.name.clone())
            }
            None => None,
        };
        let schema = Arc::new(Schema::new(
            columns.iter().map(|c| Field::new(&c.name, c.data_type.clone(), true)).collect::<Vec<_>>(),
        ));
        let side = |role: &dyn Fn(&ColumnRole) -> bool| {
            Arc::new(Schema::new(
                columns
                    .iter()
                    .filter(|c| role(&c.role))
                    .map(|c| Field::new(&c.name, c.data_type.clone(), true))
                    .collect::<Vec<_>>(),
            ))
        };
        for (property, format) in [("KEY_DELIMITER", &key_format), ("VALUE_DELIMITER", &value_format)] {
            if properties.contains_key(property) && !format.is(DELIMITED) {
                return Err(CatalogError(format!(
                    "{} does not support the following configs: [delimiter]",
                    format.name()
                )));
            }
        }
        let delimiter = |name: &str| -> Result<u8, CatalogError> {
            properties.get(name).map_or(Ok(b','), |d| FormatOptions::parse_delimiter(d).map_err(|e| CatalogError(e.0)))
        };
        let wrap_single_value = match properties.get("WRAP_SINGLE_VALUE").map(|v| v.to_ascii_lowercase()) {
            None => true,
            Some(v) if v == "true" || v == "false" => {
                // Formats of one bare value cannot wrap it (they are unwrapped already).
                if v == "true" && [KAFKA, DELIMITED, NONE].iter().any(|f| value_format.is(f)) {
                    return Err(CatalogError(format!(
                        "Format '{}' does not support 'WRAP_SINGLE_VALUE' set to '{v}'.",
                        value_format.name()
                    )));
                }
                v == "true"
            }
            Some(v) => return Err(CatalogError(format!("WRAP_SINGLE_VALUE must be true or false, not '{v}'"))),
        };
        let value_columns = columns.iter().filter(|c| c.role == ColumnRole::Value).count();
        if properties.contains_key("WRAP_SINGLE_VALUE") && value_columns != 1 {
            return Err(CatalogError("'WRAP_SINGLE_VALUE' is only valid for single-field value schemas".into()));
        }
        let key_schema = side(&|r| *r == ColumnRole::Key);
        if key_format.is(KAFKA) && key_schema.fields().len() > 1 {
            let persisted: Vec<String> = columns
                .iter()
                .filter(|c| c.role == ColumnRole::Key)
                .map(|c| format!("`{}` {} KEY", c.name, crate::sql::types::ksql_type_name(&c.data_type)))
                .collect();
            let persisted = persisted.join(", ");
            return Err(CatalogError(format!(
                "Key format does not support schema.\nformat: KAFKA\nschema: Persistence{{columns=[{persisted}], \
                 features=[]}}\nreason: The 'KAFKA' format only supports a single field. Got: [{persisted}]"
            )));
        }
        for (format, role) in [(&key_format, ColumnRole::Key), (&value_format, ColumnRole::Value)] {
            if (format.is(JSON) || format.is(crate::format::JSON_SR))
                && columns.iter().any(|c| c.role == role && has_non_string_map_key(&c.data_type))
            {
                return Err(CatalogError("JSON only supports MAP types with STRING keys".into()));
            }
        }
        // What a schema registry's formats take: the subject, a schema id, a schema's name.
        let registry_options = |key: bool| -> Result<FormatOptions, CatalogError> {
            let side = if key { "KEY" } else { "VALUE" };
            let format = if key { &key_format } else { &value_format };
            let schema_id = match properties.get(&format!("{side}_SCHEMA_ID")) {
                Some(id) => Some(id.parse::<u32>().map_err(|_| {
                    CatalogError(format!("Invalid value for {side}_SCHEMA_ID: '{id}' is not a schema id"))
                })?),
                None => None,
            };
            let full_name = properties
                .get(&format!("{side}_SCHEMA_FULL_NAME"))
                .or_else(|| if key { None } else { properties.get("VALUE_AVRO_SCHEMA_FULL_NAME") })
                .cloned();
            let uses_registry = crate::format::uses_registry(format.name());
            if (schema_id.is_some() || full_name.is_some()) && !uses_registry {
                let config = if schema_id.is_some() { "schemaId" } else { "fullSchemaName" };
                return Err(CatalogError(format!(
                    "{} does not support the following configs: [{config}]",
                    format.name()
                )));
            }
            let protobuf = format.is(crate::format::PROTOBUF) || format.is(crate::format::PROTOBUF_NOSR);
            let nullable = match properties.get(&format!("{side}_PROTOBUF_NULLABLE_REPRESENTATION")) {
                Some(_) if !protobuf => {
                    return Err(CatalogError(format!(
                        "{} does not support the following configs: [nullableRepresentation]",
                        format.name()
                    )));
                }
                Some(text) => Some(crate::format::protobuf::Nullable::parse(text).map_err(|e| CatalogError(e.0))?),
                None => None,
            };
            Ok(FormatOptions {
                subject: Some(crate::format::Subject {
                    topic: topic.clone(),
                    key,
                    schema_id,
                    unwrapped: false,
                    full_name: full_name.clone(),
                }),
                schema_id,
                full_name,
                nullable,
                ..FormatOptions::default()
            })
        };
        let key_codec = key_format.codec(
            key_schema.clone(),
            // A single key column is written bare; several make an object.
            FormatOptions {
                wrap_single_value: key_schema.fields().len() != 1,
                delimiter: delimiter("KEY_DELIMITER")?,
                ..registry_options(true)?
            },
        )
        .map_err(|e| {
            CatalogError(format!(
                "Key format does not support schema.\nformat: {}\nschema: Persistence{{columns={}, features=[]}}\nreason: {}",
                key_format.name(),
                described(&|r| *r == ColumnRole::Key),
                e.0
            ))
        })?;
        let value_codec = value_format
            .codec(
                side(&|r| *r == ColumnRole::Value),
                FormatOptions {
                    wrap_single_value,
                    delimiter: delimiter("VALUE_DELIMITER")?,
                    ..registry_options(false)?
                },
            )
            .map_err(|e| CatalogError(e.0))?;
        Ok(Source {
            name,
            kind: create.kind,
            read_only: create.source,
            topic,
            key_format,
            value_format,
            columns,
            schema,
            timestamp_column,
            timestamp_format: properties.get("TIMESTAMP_FORMAT").cloned(),
            properties,
            key_codec,
            value_codec,
            statement,
        })
    }

    fn plan_columns(&self, create: &CreateSource) -> Result<Vec<Column>, CatalogError> {
        let resolve = |name: &str| self.types.get(name).cloned();
        let mut columns: Vec<Column> = Vec::with_capacity(create.columns.len());
        for def in &create.columns {
            let name = resolved_name(&def.name);
            // (A key may carry such a name: `PARTITION BY ROWTIME` names its key ROWTIME.)
            if ["ROWTIME", "ROWPARTITION", "ROWOFFSET", "WINDOWSTART", "WINDOWEND"]
                .contains(&name.to_uppercase().as_str())
                && !matches!(def.constraint, ColumnConstraint::Key | ColumnConstraint::PrimaryKey)
            {
                return Err(CatalogError(format!(
                    "'{name}' is a reserved column name. You cannot use it as a name for a column."
                )));
            }
            if columns.iter().any(|c| c.name == name) {
                return Err(CatalogError(format!("Duplicate column names: `{name}`")));
            }
            let role = match (&def.constraint, create.kind) {
                (ColumnConstraint::None, _) => ColumnRole::Value,
                (ColumnConstraint::Key, SourceKind::Stream) | (ColumnConstraint::PrimaryKey, SourceKind::Table) => {
                    ColumnRole::Key
                }
                (ColumnConstraint::PrimaryKey, SourceKind::Stream) => {
                    return Err(CatalogError(format!(
                        "{}Column `{name}` is a 'PRIMARY KEY' column: please use 'KEY' for streams.\n\
                         Tables have PRIMARY KEYs, which are unique and NON NULL.\n\
                         Streams have KEYs, which have no uniqueness or NON NULL constraints.",
                        crate::sql::position_prefix(def.name.span.start)
                    )));
                }
                (ColumnConstraint::Key, SourceKind::Table) => {
                    return Err(CatalogError(format!(
                        "{}Column `{name}` is a 'KEY' column: please use 'PRIMARY KEY' for tables.\n\
                         Tables have PRIMARY KEYs, which are unique and NON NULL.\n\
                         Streams have KEYs, which have no uniqueness or NON NULL constraints.",
                        crate::sql::position_prefix(def.name.span.start)
                    )));
                }
                (ColumnConstraint::Headers, _) => ColumnRole::Headers,
                (ColumnConstraint::Header(key), _) => ColumnRole::Header(key.clone()),
            };
            let sql_type = match &def.data_type {
                SqlType::Custom(type_name) => resolve(&resolved_name(type_name))
                    .ok_or_else(|| TypeError::UnknownType(resolved_name(type_name)))?,
                other => other.clone(),
            };
            if role == ColumnRole::Key && contains_map(&sql_type, &resolve) {
                return Err(CatalogError(format!(
                    "Map keys, including types that contain maps, are not supported as they may lead to \
                     unexpected behavior due to inconsistent serialization. Key column name: `{name}`. \
                     Column type: {sql_type}. See https://github.com/confluentinc/ksql/issues/6621 for more."
                )));
            }
            let expected_header_type = match &role {
                ColumnRole::Headers => Some("ARRAY<STRUCT<KEY STRING, VALUE BYTES>>"),
                ColumnRole::Header(_) => Some("BYTES"),
                _ => None,
            };
            if let Some(expected) = expected_header_type
                && !header_type_matches(&sql_type, &role)
            {
                return Err(CatalogError(format!("Invalid type for HEADER column `{name}`: expected {expected}.")));
            }
            let data_type = sql_type.to_arrow(&resolve)?;
            columns.push(Column { name, sql_type, data_type, role });
        }
        if columns.iter().filter(|c| c.role == ColumnRole::Headers).count() > 1 {
            return Err(CatalogError("A schema has at most one HEADERS column".into()));
        }
        Ok(columns)
    }

    /// Adds (or replaces) a planned source.
    pub fn add_source(&mut self, source: Source) -> Arc<Source> {
        let source = Arc::new(source);
        self.sources.insert(source.name.clone(), Arc::clone(&source));
        source
    }

    pub fn remove_source(&mut self, name: &str) -> Option<Arc<Source>> {
        self.sources.remove(name)
    }

    /// Checks that a type could be declared: not declared yet, and of a valid type.
    pub fn check_type(&self, name: &str, sql_type: &SqlType) -> Result<(), CatalogError> {
        let resolve = |n: &str| self.types.get(n).cloned();
        sql_type.to_arrow(&resolve)?;
        if self.types.contains_key(name) {
            return Err(CatalogError(format!("Cannot register custom type '{name}' since it is already registered")));
        }
        Ok(())
    }

    /// Declares a type (`CREATE TYPE`); fails if it exists.
    pub fn add_type(&mut self, name: String, sql_type: SqlType) -> Result<(), CatalogError> {
        self.check_type(&name, &sql_type)?;
        self.types.insert(name, sql_type);
        Ok(())
    }

    pub fn remove_type(&mut self, name: &str) -> Option<SqlType> {
        self.types.remove(name)
    }

    pub fn has_type(&self, name: &str) -> bool {
        self.types.contains_key(name)
    }
}

/// The catalog name of a source: one identifier, upper-cased unless quoted.
/// A duration as ksqlDB's WITH clause takes it (`30 SECONDS`: a whole number and a unit of
/// Java's `TimeUnit`, the plural's S optional), in milliseconds; else ksqlDB's reason.
pub fn duration_ms(text: &str) -> Result<i64, String> {
    let invalid = |why: String| format!("Invalid duration: '{text}'. {why}");
    let parts: Vec<&str> = text.split(char::is_whitespace).collect();
    let [amount, unit] = parts.as_slice() else {
        return Err(invalid(format!("Expected 2 tokens, got: {}", parts.len())));
    };
    let amount: i64 = amount.parse().map_err(|_| invalid(format!("Not numeric: '{amount}'")))?;
    let unit = unit.to_uppercase();
    let nanos: i128 = match unit.trim_end_matches('S') {
        "NANOSECOND" => 1,
        "MICROSECOND" => 1_000,
        "MILLISECOND" => 1_000_000,
        "SECOND" => 1_000_000_000,
        "MINUTE" => 60_000_000_000,
        "HOUR" => 3_600_000_000_000,
        "DAY" => 86_400_000_000_000,
        _ => {
            return Err(invalid(format!(
                "Unknown time unit: '{unit}'\nSupported time units are: NANOSECONDS, MICROSECONDS, MILLISECONDS, \
                 SECONDS, MINUTES, HOURS, DAYS"
            )));
        }
    };
    i64::try_from(i128::from(amount) * nanos / 1_000_000).map_err(|_| invalid("Overflow".into()))
}

pub fn source_name(name: &ObjectName) -> String {
    match name.0.as_slice() {
        [part] => part.as_ident().map_or_else(|| part.to_string(), resolved_name),
        _ => name.to_string(),
    }
}

/// Key and value formats from `FORMAT`, `KEY_FORMAT`, `VALUE_FORMAT` (key defaults to KAFKA).
fn formats(formats: &Formats, properties: &BTreeMap<String, String>) -> Result<(FormatRef, FormatRef), CatalogError> {
    let both = properties.get("FORMAT");
    if both.is_some() && (properties.contains_key("KEY_FORMAT") || properties.contains_key("VALUE_FORMAT")) {
        return Err(CatalogError(
            "Cannot supply both 'FORMAT' and 'KEY_FORMAT' or 'VALUE_FORMAT' properties, as 'FORMAT' sets both.".into(),
        ));
    }
    let value = both.or(properties.get("VALUE_FORMAT")).ok_or_else(|| {
        CatalogError(
            "Statement is missing the 'VALUE_FORMAT' property from the WITH clause. \
             Either provide one or set a default via the 'ksql.persistence.default.format.value' config."
                .into(),
        )
    })?;
    let key = formats.get(both.or(properties.get("KEY_FORMAT")).map_or(KAFKA, |k| k.as_str()))?;
    Ok((key, formats.get(value)?))
}

/// A MAP whose keys are not strings, anywhere in the type.
fn has_non_string_map_key(data_type: &DataType) -> bool {
    match data_type {
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => {
                kv[0].data_type() != &DataType::Utf8 || has_non_string_map_key(kv[1].data_type())
            }
            _ => false,
        },
        DataType::List(item) => has_non_string_map_key(item.data_type()),
        DataType::Struct(fields) => fields.iter().any(|f| has_non_string_map_key(f.data_type())),
        _ => false,
    }
}

fn contains_map(sql_type: &SqlType, resolve: &dyn Fn(&str) -> Option<SqlType>) -> bool {
    fn walk(t: &SqlType, resolve: &dyn Fn(&str) -> Option<SqlType>, depth: usize) -> bool {
        if depth > crate::sql::types::MAX_TYPE_DEPTH {
            return false;
        }
        match t {
            SqlType::Map(..) => true,
            SqlType::Array(item) => walk(item, resolve, depth + 1),
            SqlType::Struct(fields) => fields.iter().any(|(_, f)| walk(f, resolve, depth + 1)),
            SqlType::Custom(name) => resolve(&resolved_name(name)).is_some_and(|t| walk(&t, resolve, depth + 1)),
            _ => false,
        }
    }
    walk(sql_type, resolve, 0)
}

fn header_type_matches(sql_type: &SqlType, role: &ColumnRole) -> bool {
    match role {
        ColumnRole::Header(_) => *sql_type == SqlType::Bytes,
        ColumnRole::Headers => match sql_type {
            SqlType::Array(item) => match item.as_ref() {
                SqlType::Struct(fields) => {
                    fields.len() == 2
                        && resolved_name(&fields[0].0) == "KEY"
                        && fields[0].1 == SqlType::String
                        && resolved_name(&fields[1].0) == "VALUE"
                        && fields[1].1 == SqlType::Bytes
                }
                _ => false,
            },
            _ => false,
        },
        _ => true,
    }
}

#[cfg(test)]
mod tests;
