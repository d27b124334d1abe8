//! `JdbcSinkConnector`: keeps PostgreSQL tables in step with topics, as Kafka Connect's JDBC
//! sink does, over `tokio-postgres`.
//!
//! Each topic is read through the stream or table the catalog has over it, so its records
//! become typed rows (key columns and value columns) whatever their format. Options, with
//! the JDBC sink's names:
//! - `connection.url`: `jdbc:postgresql://host:port/db` (or `postgresql://…`), with
//!   `connection.user` and `connection.password` (or `?user=…&password=…`);
//! - `topics`: a comma-separated list;
//! - `table.name.format` (default `${topic}`): the table, `${topic}` replaced;
//! - `insert.mode`: `insert` (binary `COPY`) or `upsert` (`INSERT … ON CONFLICT DO UPDATE`,
//!   one statement a batch over `UNNEST`ed arrays, the last update of a key winning);
//! - `pk.mode`: `none`, `record_key` (the key columns, written too) or `record_value`
//!   (value columns named by `pk.fields`); `pk.fields` picks among the key columns too;
//! - `auto.create`: `CREATE TABLE` when it is missing, with the primary key; `auto.evolve`:
//!   `ALTER TABLE … ADD COLUMN` for columns it lacks;
//! - `delete.enabled`: a tombstone deletes its key's row (needs `pk.mode=record_key`).
//!   Without it, tombstones are skipped.
//!
//! Names are quoted as they are (`"ITEMID"`), as the JDBC sink quotes identifiers. Types:
//! BOOLEAN, INTEGER, BIGINT, DOUBLE PRECISION, NUMERIC(p, s), TEXT, BYTEA, TIMESTAMP, DATE, TIME,
//! and JSONB for ARRAY, MAP and STRUCT.
//!
//! Writes go into one transaction from the first `put` after a commit until `flush`, which
//! commits it: the framework commits the topics' positions only then. A crash in between rolls
//! the transaction back and the records are read again: upserts make that effectively once.
//! A lost connection (the database restarting) is a transient error: the connector is
//! retried from its last commit, reconnecting.

use std::collections::{BTreeMap, HashMap};
use std::error::Error as _;
use std::sync::Arc;

use bytes::BufMut;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Float64Type, Int32Type, Int64Type, Time32MillisecondType, TimeUnit, TimestampMillisecondType,
};
use futures::future::BoxFuture;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use super::{Connector, ConnectorClass, ConnectorConfig, ConnectorError, SinkConnector};
use crate::catalog::{ColumnRole, Source};
use crate::log::Record;

const NAMES: [&str; 2] = ["JdbcSinkConnector", "io.confluent.connect.jdbc.JdbcSinkConnector"];

/// Makes JDBC sinks.
pub struct Jdbc;

impl ConnectorClass for Jdbc {
    fn names(&self) -> &[&'static str] {
        &NAMES
    }

    fn create(&self, config: &ConnectorConfig) -> Result<Connector, ConnectorError> {
        self.create_with(config, &[])
    }

    fn create_with(&self, config: &ConnectorConfig, sources: &[Arc<Source>]) -> Result<Connector, ConnectorError> {
        Ok(Connector::Sink(Box::new(JdbcSink::new(config, sources)?)))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InsertMode {
    Insert,
    Upsert,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PkMode {
    None,
    RecordKey,
    RecordValue,
}

/// A column of a table: its name, its type in Arrow, and where it comes from.
#[derive(Debug, Clone)]
struct TableColumn {
    name: String,
    data_type: DataType,
    /// Its index in the source's rows.
    row_index: usize,
    primary_key: bool,
}

/// One topic's table.
#[derive(Debug)]
struct Target {
    source: Arc<Source>,
    table: String,
    columns: Vec<TableColumn>,
    /// Whether the table has been checked (made, evolved) on this connection.
    ready: bool,
}

/// The JDBC sink (see the module's documentation).
pub struct JdbcSink {
    config: tokio_postgres::Config,
    url: String,
    targets: BTreeMap<String, Target>,
    insert_mode: InsertMode,
    pk_mode: PkMode,
    auto_create: bool,
    auto_evolve: bool,
    delete_enabled: bool,
    client: Option<tokio_postgres::Client>,
    /// A transaction is open on `client`.
    in_transaction: bool,
    /// The records of the last `put` that did not decode.
    rejected: Vec<(u64, String)>,
}

/// A connection error (the database went away or is not there): transient; anything else
/// the database refused is not.
fn database_error(what: &str, e: tokio_postgres::Error) -> ConnectorError {
    let reason = match e.source() {
        Some(source) => format!("{what}: {e}: {source}"),
        None => format!("{what}: {e}"),
    };
    if e.is_closed() || e.code().is_none() { ConnectorError::transient(reason) } else { ConnectorError::new(reason) }
}

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl JdbcSink {
    fn new(config: &ConnectorConfig, sources: &[Arc<Source>]) -> Result<JdbcSink, ConnectorError> {
        let property = |name: &str| config.properties.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
        let choice = |name: &str, default: &str| property(name).unwrap_or(default).to_lowercase();
        let url = config.required("connection.url")?.trim().to_owned();
        let mut pg = postgres_config(&url)?;
        if let Some(user) = property("connection.user") {
            pg.user(user);
        }
        if let Some(password) = config.properties.get("connection.password") {
            pg.password(password);
        }
        let insert_mode = match choice("insert.mode", "insert").as_str() {
            "insert" => InsertMode::Insert,
            "upsert" => InsertMode::Upsert,
            other => return Err(ConnectorError::new(format!("insert.mode must be insert or upsert, not {other}"))),
        };
        let pk_mode = match choice("pk.mode", "none").as_str() {
            "none" => PkMode::None,
            "record_key" => PkMode::RecordKey,
            "record_value" => PkMode::RecordValue,
            other => {
                return Err(ConnectorError::new(format!(
                    "pk.mode must be none, record_key or record_value (kafka is not supported), not {other}"
                )));
            }
        };
        let flag = |name: &str| -> Result<bool, ConnectorError> {
            match choice(name, "false").as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                other => Err(ConnectorError::new(format!("{name} must be true or false, not {other}"))),
            }
        };
        let (auto_create, auto_evolve, delete_enabled) =
            (flag("auto.create")?, flag("auto.evolve")?, flag("delete.enabled")?);
        if insert_mode == InsertMode::Upsert && pk_mode == PkMode::None {
            return Err(ConnectorError::new("insert.mode=upsert needs a primary key: set pk.mode"));
        }
        if delete_enabled && pk_mode != PkMode::RecordKey {
            return Err(ConnectorError::new("delete.enabled=true needs pk.mode=record_key"));
        }
        let pk_fields: Vec<String> = property("pk.fields")
            .map(|f| f.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        if pk_mode == PkMode::RecordValue && pk_fields.is_empty() {
            return Err(ConnectorError::new("pk.mode=record_value needs pk.fields"));
        }
        let topics: Vec<&str> =
            config.required("topics")?.split(',').map(str::trim).filter(|t| !t.is_empty()).collect();
        if topics.is_empty() {
            return Err(ConnectorError::new("topics names no topic"));
        }
        let format = property("table.name.format").unwrap_or("${topic}");
        let mut targets = BTreeMap::new();
        for topic in topics {
            let source = sources.iter().find(|s| s.topic == topic).ok_or_else(|| {
                ConnectorError::new(format!(
                    "no stream or table reads topic {topic}: create one over it, so that the sink knows its columns"
                ))
            })?;
            let columns = table_columns(source, pk_mode, &pk_fields)?;
            let table = format.replace("${topic}", topic);
            targets.insert(topic.to_owned(), Target { source: Arc::clone(source), table, columns, ready: false });
        }
        Ok(JdbcSink {
            config: pg,
            url,
            targets,
            insert_mode,
            pk_mode,
            auto_create,
            auto_evolve,
            delete_enabled,
            client: None,
            in_transaction: false,
            rejected: Vec::new(),
        })
    }

    /// The connection, made if there is none.
    async fn client(&mut self) -> Result<&tokio_postgres::Client, ConnectorError> {
        if self.client.as_ref().is_none_or(tokio_postgres::Client::is_closed) {
            self.in_transaction = false;
            for target in self.targets.values_mut() {
                target.ready = false;
            }
            let (client, connection) = self
                .config
                .connect(tokio_postgres::NoTls)
                .await
                .map_err(|e| ConnectorError::transient(format!("cannot connect to {}: {e}", self.url)))?;
            // The connection's task ends with the client (or the server going away).
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "a PostgreSQL connection ended");
                }
            });
            self.client = Some(client);
        }
        self.client.as_ref().ok_or_else(|| ConnectorError::transient("no connection"))
    }

    /// Makes the table (`auto.create`), adds what it lacks (`auto.evolve`), or checks it has
    /// the columns written.
    async fn prepare(&mut self, topic: &str) -> Result<(), ConnectorError> {
        let (auto_create, auto_evolve, pk_mode) = (self.auto_create, self.auto_evolve, self.pk_mode);
        self.client().await?;
        let client = self.client.as_ref().ok_or_else(|| ConnectorError::transient("no connection"))?;
        let Some(target) = self.targets.get(topic) else { return Ok(()) };
        if target.ready {
            return Ok(());
        }
        let existing: Vec<String> = client
            .query(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND \
                 table_name = $1",
                &[&target.table],
            )
            .await
            .map_err(|e| database_error("cannot read the table's columns", e))?
            .iter()
            .map(|row| row.get(0))
            .collect();
        if existing.is_empty() {
            if !auto_create {
                return Err(ConnectorError::new(format!(
                    "table {} does not exist: create it, or set auto.create=true",
                    quoted(&target.table)
                )));
            }
            let mut parts: Vec<String> =
                target.columns.iter().map(|c| format!("{} {}", quoted(&c.name), postgres_type(&c.data_type))).collect();
            let keys: Vec<String> = target.columns.iter().filter(|c| c.primary_key).map(|c| quoted(&c.name)).collect();
            if pk_mode != PkMode::None && !keys.is_empty() {
                parts.push(format!("PRIMARY KEY ({})", keys.join(", ")));
            }
            let create = format!("CREATE TABLE IF NOT EXISTS {} ({})", quoted(&target.table), parts.join(", "));
            client.batch_execute(&create).await.map_err(|e| database_error("cannot create the table", e))?;
        } else {
            let missing: Vec<&TableColumn> = target.columns.iter().filter(|c| !existing.contains(&c.name)).collect();
            if !missing.is_empty() {
                if !auto_evolve {
                    let names: Vec<&str> = missing.iter().map(|c| c.name.as_str()).collect();
                    return Err(ConnectorError::new(format!(
                        "table {} lacks the columns {}: add them, or set auto.evolve=true",
                        quoted(&target.table),
                        names.join(", ")
                    )));
                }
                for column in missing {
                    let alter = format!(
                        "ALTER TABLE {} ADD COLUMN {} {}",
                        quoted(&target.table),
                        quoted(&column.name),
                        postgres_type(&column.data_type)
                    );
                    client.batch_execute(&alter).await.map_err(|e| database_error("cannot add a column", e))?;
                }
            }
        }
        if let Some(target) = self.targets.get_mut(topic) {
            target.ready = true;
        }
        Ok(())
    }

    async fn begin(&mut self) -> Result<(), ConnectorError> {
        if !self.in_transaction {
            let client = self.client().await?;
            client.batch_execute("BEGIN").await.map_err(|e| database_error("cannot begin", e))?;
            self.in_transaction = true;
        }
        Ok(())
    }

    /// Writes rows of `topic`'s table: upserts (or inserts) and deletes, in order.
    async fn write(&mut self, topic: &str, batch: &RecordBatch, deleted: &[bool]) -> Result<(), ConnectorError> {
        let Some(target) = self.targets.get(topic) else { return Ok(()) };
        // Runs of writes and of deletes, in the order they came; in upsert mode, the last
        // change of a key within a run of writes wins (one statement cannot touch a row twice).
        let mut start = 0;
        let rows = batch.num_rows();
        let statements = {
            let mut statements = Vec::new();
            while start < rows {
                let delete = deleted[start];
                let mut end = start + 1;
                while end < rows && deleted[end] == delete {
                    end += 1;
                }
                statements.push((delete, start, end));
                start = end;
            }
            statements
        };
        let (columns, table) = (target.columns.clone(), target.table.clone());
        let upsert = self.insert_mode == InsertMode::Upsert;
        let client = self.client().await?;
        for (delete, start, end) in statements {
            let slice = batch.slice(start, end - start);
            let kept = if upsert || delete { last_per_key(&slice, &columns) } else { (0..slice.num_rows()).collect() };
            if delete {
                delete_rows(client, &table, &columns, &slice, &kept).await?;
            } else if upsert {
                upsert_rows(client, &table, &columns, &slice, &kept).await?;
            } else {
                copy_rows(client, &table, &columns, &slice).await?;
            }
        }
        Ok(())
    }
}

/// Parses `jdbc:postgresql://host:port/db?user=…&password=…` (or without `jdbc:`).
fn postgres_config(url: &str) -> Result<tokio_postgres::Config, ConnectorError> {
    let bad = |why: &str| ConnectorError::new(format!("connection.url {url}: {why}"));
    let plain = url.strip_prefix("jdbc:").unwrap_or(url);
    let parsed = url::Url::parse(plain).map_err(|e| bad(&e.to_string()))?;
    if !matches!(parsed.scheme(), "postgresql" | "postgres") {
        return Err(bad("only PostgreSQL is supported (jdbc:postgresql://host:port/database)"));
    }
    let mut config = tokio_postgres::Config::new();
    config.host(parsed.host_str().ok_or_else(|| bad("no host"))?);
    config.port(parsed.port().unwrap_or(5432));
    let database = parsed.path().trim_start_matches('/');
    if !database.is_empty() {
        config.dbname(database);
    }
    if !parsed.username().is_empty() {
        config.user(parsed.username());
    }
    if let Some(password) = parsed.password() {
        config.password(password);
    }
    for (key, value) in parsed.query_pairs() {
        match key.as_ref() {
            "user" => {
                config.user(value.as_ref());
            }
            "password" => {
                config.password(value.as_ref());
            }
            _ => {}
        }
    }
    config.application_name("eddy-jdbc-sink");
    config.connect_timeout(std::time::Duration::from_secs(10));
    Ok(config)
}

/// The columns a source's rows give a table: the key columns (with `record_key`), then the
/// value columns; marked as the primary key by `pk.mode` and `pk.fields`.
fn table_columns(source: &Source, pk_mode: PkMode, pk_fields: &[String]) -> Result<Vec<TableColumn>, ConnectorError> {
    let mut columns = Vec::new();
    for (row_index, column) in source.columns.iter().enumerate() {
        let is_key = column.role == ColumnRole::Key;
        let written = match column.role {
            ColumnRole::Key => pk_mode == PkMode::RecordKey,
            ColumnRole::Value => true,
            ColumnRole::Headers | ColumnRole::Header(_) => false,
        };
        if !written {
            continue;
        }
        let named = pk_fields.iter().any(|f| f.eq_ignore_ascii_case(&column.name));
        let primary_key = match pk_mode {
            PkMode::None => false,
            PkMode::RecordKey => is_key && (pk_fields.is_empty() || named),
            PkMode::RecordValue => !is_key && named,
        };
        columns.push(TableColumn {
            name: column.name.clone(),
            data_type: column.data_type.clone(),
            row_index,
            primary_key,
        });
    }
    if pk_mode == PkMode::RecordKey && !columns.iter().any(|c| c.primary_key) {
        return Err(ConnectorError::new(format!(
            "pk.mode=record_key, but {} has no key column{}",
            source.name,
            if pk_fields.is_empty() { "" } else { " among pk.fields" }
        )));
    }
    if pk_mode == PkMode::RecordValue {
        for field in pk_fields {
            if !columns.iter().any(|c| c.primary_key && c.name.eq_ignore_ascii_case(field)) {
                return Err(ConnectorError::new(format!(
                    "pk.fields names {field}, which is no value column of {}",
                    source.name
                )));
            }
        }
    }
    Ok(columns)
}

/// PostgreSQL's type for a column.
fn postgres_type(data_type: &DataType) -> String {
    match data_type {
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 | DataType::Int16 | DataType::Int32 => "INTEGER".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::Float32 | DataType::Float64 => "DOUBLE PRECISION".into(),
        DataType::Decimal128(precision, scale) => format!("NUMERIC({precision}, {scale})"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "TEXT".into(),
        DataType::Binary | DataType::LargeBinary => "BYTEA".into(),
        DataType::Timestamp(..) => "TIMESTAMP".into(),
        DataType::Date32 => "DATE".into(),
        DataType::Time32(_) => "TIME".into(),
        _ => "JSONB".into(),
    }
}

/// A value of a row, as PostgreSQL takes it.
#[derive(Debug)]
enum Cell {
    Null,
    Bool(bool),
    Int(i32),
    Long(i64),
    Double(f64),
    Numeric(i128, i8),
    Text(String),
    Bytes(Vec<u8>),
    Timestamp(chrono::NaiveDateTime),
    Date(chrono::NaiveDate),
    Time(chrono::NaiveTime),
    Json(serde_json::Value),
}

/// Column `index` of `rows` as cells; a value that cannot be taken is an error of the record.
fn cells(array: &ArrayRef, data_type: &DataType) -> Result<Vec<Cell>, ConnectorError> {
    let at = |i: usize| array.is_null(i);
    let n = array.len();
    let mut out = Vec::with_capacity(n);
    match data_type {
        DataType::Boolean => {
            let a = array.as_boolean();
            out.extend((0..n).map(|i| if at(i) { Cell::Null } else { Cell::Bool(a.value(i)) }));
        }
        DataType::Int32 => {
            let a = array.as_primitive::<Int32Type>();
            out.extend((0..n).map(|i| if at(i) { Cell::Null } else { Cell::Int(a.value(i)) }));
        }
        DataType::Int64 => {
            let a = array.as_primitive::<Int64Type>();
            out.extend((0..n).map(|i| if at(i) { Cell::Null } else { Cell::Long(a.value(i)) }));
        }
        DataType::Float64 => {
            let a = array.as_primitive::<Float64Type>();
            out.extend((0..n).map(|i| if at(i) { Cell::Null } else { Cell::Double(a.value(i)) }));
        }
        DataType::Decimal128(_, scale) => {
            let a = array.as_primitive::<datafusion::arrow::datatypes::Decimal128Type>();
            out.extend((0..n).map(|i| if at(i) { Cell::Null } else { Cell::Numeric(a.value(i), *scale) }));
        }
        DataType::Utf8 => {
            let a = array.as_string::<i32>();
            out.extend((0..n).map(|i| if at(i) { Cell::Null } else { Cell::Text(a.value(i).to_owned()) }));
        }
        DataType::Binary => {
            let a = array.as_binary::<i32>();
            out.extend((0..n).map(|i| if at(i) { Cell::Null } else { Cell::Bytes(a.value(i).to_vec()) }));
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            let a = array.as_primitive::<TimestampMillisecondType>();
            for i in 0..n {
                out.push(if at(i) {
                    Cell::Null
                } else {
                    let time = chrono::DateTime::from_timestamp_millis(a.value(i))
                        .ok_or_else(|| ConnectorError::new(format!("timestamp {} is out of range", a.value(i))))?;
                    Cell::Timestamp(time.naive_utc())
                });
            }
        }
        DataType::Date32 => {
            let a = array.as_primitive::<Date32Type>();
            let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
            for i in 0..n {
                out.push(if at(i) {
                    Cell::Null
                } else {
                    let date = epoch
                        .checked_add_signed(chrono::TimeDelta::days(i64::from(a.value(i))))
                        .ok_or_else(|| ConnectorError::new(format!("date {} is out of range", a.value(i))))?;
                    Cell::Date(date)
                });
            }
        }
        DataType::Time32(_) => {
            let a = array.as_primitive::<Time32MillisecondType>();
            for i in 0..n {
                out.push(if at(i) {
                    Cell::Null
                } else {
                    let ms = a.value(i);
                    let time = chrono::NaiveTime::from_num_seconds_from_midnight_opt(
                        (ms / 1000) as u32,
                        (ms % 1000) as u32 * 1_000_000,
                    )
                    .ok_or_else(|| ConnectorError::new(format!("time {ms} is out of range")))?;
                    Cell::Time(time)
                });
            }
        }
        _ => {
            // ARRAY, MAP, STRUCT: as JSON, through the JSON format's writer.
            let schema =
                Arc::new(datafusion::arrow::datatypes::Schema::new(vec![datafusion::arrow::datatypes::Field::new(
                    "v",
                    data_type.clone(),
                    true,
                )]));
            let batch = RecordBatch::try_new(schema.clone(), vec![array.clone()])
                .map_err(|e| ConnectorError::new(e.to_string()))?;
            let codec = crate::format::builtin(crate::format::JSON)
                .codec(schema, crate::format::FormatOptions { wrap_single_value: false, ..Default::default() })
                .map_err(|e| ConnectorError::new(e.0))?;
            let encoded = codec.encode(&batch).map_err(|e| ConnectorError::new(e.0))?;
            for (i, value) in encoded.into_iter().enumerate() {
                out.push(match value {
                    Some(bytes) if !at(i) => {
                        Cell::Json(serde_json::from_slice(&bytes).map_err(|e| ConnectorError::new(e.to_string()))?)
                    }
                    _ => Cell::Null,
                });
            }
        }
    }
    Ok(out)
}

impl ToSql for Cell {
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Cell::Null => Ok(IsNull::Yes),
            Cell::Bool(v) => v.to_sql(ty, out),
            Cell::Int(v) => v.to_sql(ty, out),
            Cell::Long(v) => v.to_sql(ty, out),
            Cell::Double(v) => v.to_sql(ty, out),
            Cell::Numeric(v, scale) => {
                numeric(*v, *scale, out);
                Ok(IsNull::No)
            }
            Cell::Text(v) => v.to_sql(ty, out),
            Cell::Bytes(v) => v.to_sql(ty, out),
            Cell::Timestamp(v) => v.to_sql(ty, out),
            Cell::Date(v) => v.to_sql(ty, out),
            Cell::Time(v) => v.to_sql(ty, out),
            Cell::Json(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// A decimal `value / 10^scale` in PostgreSQL's binary NUMERIC: digit count, weight (of the
/// first base-10000 digit), sign, display scale, then the base-10000 digits.
fn numeric(value: i128, scale: i8, out: &mut bytes::BytesMut) {
    let scale = scale.max(0) as usize;
    let negative = value < 0;
    let text = value.unsigned_abs().to_string();
    let (int_part, frac_part) = if text.len() > scale {
        (text[..text.len() - scale].to_owned(), text[text.len() - scale..].to_owned())
    } else {
        (String::new(), format!("{text:0>scale$}"))
    };
    // Pad to whole groups of four digits around the point.
    let int_padded = format!("{}{int_part}", "0".repeat((4 - int_part.len() % 4) % 4));
    let frac_padded = format!("{frac_part}{}", "0".repeat((4 - frac_part.len() % 4) % 4));
    let group = |s: &str| -> Vec<i16> {
        s.as_bytes().chunks(4).map(|c| std::str::from_utf8(c).ok().and_then(|d| d.parse().ok()).unwrap_or(0)).collect()
    };
    let mut digits: Vec<i16> = group(&int_padded);
    let int_groups = digits.len() as i16;
    digits.extend(group(&frac_padded));
    // Leading and trailing zero groups are left out (the weight says where the rest go).
    let leading = digits.iter().take_while(|d| **d == 0).count();
    let digits: Vec<i16> = digits[leading..].to_vec();
    let trailing = digits.iter().rev().take_while(|d| **d == 0).count();
    let digits = &digits[..digits.len() - trailing];
    let weight = if digits.is_empty() { 0 } else { int_groups - 1 - leading as i16 };
    out.put_i16(digits.len() as i16);
    out.put_i16(weight);
    out.put_u16(if negative && !digits.is_empty() { 0x4000 } else { 0 });
    out.put_u16(scale as u16);
    for digit in digits {
        out.put_i16(*digit);
    }
}

/// The rows of `batch` to write: with a primary key, the last of each key's.
fn last_per_key(batch: &RecordBatch, columns: &[TableColumn]) -> Vec<usize> {
    let keys: Vec<&ArrayRef> = columns.iter().filter(|c| c.primary_key).map(|c| batch.column(c.row_index)).collect();
    if keys.is_empty() {
        return (0..batch.num_rows()).collect();
    }
    let converter = datafusion::arrow::row::RowConverter::new(
        keys.iter().map(|k| datafusion::arrow::row::SortField::new(k.data_type().clone())).collect(),
    );
    let Ok(converter) = converter else { return (0..batch.num_rows()).collect() };
    let Ok(rows) = converter.convert_columns(&keys.iter().map(|k| Arc::clone(k)).collect::<Vec<_>>()) else {
        return (0..batch.num_rows()).collect();
    };
    let mut last: HashMap<datafusion::arrow::row::Row<'_>, usize> = HashMap::with_capacity(batch.num_rows());
    for i in 0..batch.num_rows() {
        last.insert(rows.row(i), i);
    }
    let mut kept: Vec<usize> = last.into_values().collect();
    kept.sort_unstable();
    kept
}

/// Each column's cells, for the rows `kept`.
fn columns_of(batch: &RecordBatch, columns: &[&TableColumn], kept: &[usize]) -> Result<Vec<Vec<Cell>>, ConnectorError> {
    let indices = datafusion::arrow::array::UInt32Array::from(kept.iter().map(|i| *i as u32).collect::<Vec<_>>());
    columns
        .iter()
        .map(|c| {
            let taken = datafusion::arrow::compute::take(batch.column(c.row_index).as_ref(), &indices, None)
                .map_err(|e| ConnectorError::new(e.to_string()))?;
            cells(&taken, &c.data_type)
        })
        .collect()
}

async fn copy_rows(
    client: &tokio_postgres::Client,
    table: &str,
    columns: &[TableColumn],
    batch: &RecordBatch,
) -> Result<(), ConnectorError> {
    let names: Vec<String> = columns.iter().map(|c| quoted(&c.name)).collect();
    let statement = format!("COPY {} ({}) FROM STDIN BINARY", quoted(table), names.join(", "));
    let types: Vec<Type> = columns.iter().map(|c| postgres_type_of(&c.data_type)).collect();
    let all: Vec<&TableColumn> = columns.iter().collect();
    let cells = columns_of(batch, &all, &(0..batch.num_rows()).collect::<Vec<_>>())?;
    let sink = client.copy_in(&statement).await.map_err(|e| database_error("cannot COPY", e))?;
    let writer = tokio_postgres::binary_copy::BinaryCopyInWriter::new(sink, &types);
    futures::pin_mut!(writer);
    for row in 0..batch.num_rows() {
        let values: Vec<&(dyn ToSql + Sync)> = cells.iter().map(|c| &c[row] as &(dyn ToSql + Sync)).collect();
        writer.as_mut().write(&values).await.map_err(|e| database_error("cannot COPY a row", e))?;
    }
    writer.finish().await.map_err(|e| database_error("cannot finish the COPY", e))?;
    Ok(())
}

/// PostgreSQL's type of a column's values, for binary COPY.
fn postgres_type_of(data_type: &DataType) -> Type {
    match data_type {
        DataType::Boolean => Type::BOOL,
        DataType::Int8 | DataType::Int16 | DataType::Int32 => Type::INT4,
        DataType::Int64 => Type::INT8,
        DataType::Float32 | DataType::Float64 => Type::FLOAT8,
        DataType::Decimal128(..) => Type::NUMERIC,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Type::TEXT,
        DataType::Binary | DataType::LargeBinary => Type::BYTEA,
        DataType::Timestamp(..) => Type::TIMESTAMP,
        DataType::Date32 => Type::DATE,
        DataType::Time32(_) => Type::TIME,
        _ => Type::JSONB,
    }
}

/// `INSERT … SELECT FROM UNNEST(arrays) ON CONFLICT (key) DO UPDATE`: one statement.
async fn upsert_rows(
    client: &tokio_postgres::Client,
    table: &str,
    columns: &[TableColumn],
    batch: &RecordBatch,
    kept: &[usize],
) -> Result<(), ConnectorError> {
    let all: Vec<&TableColumn> = columns.iter().collect();
    let cells = columns_of(batch, &all, kept)?;
    let names: Vec<String> = columns.iter().map(|c| quoted(&c.name)).collect();
    let arrays = array_parameters(&all);
    let keys: Vec<String> = columns.iter().filter(|c| c.primary_key).map(|c| quoted(&c.name)).collect();
    let updates: Vec<String> =
        columns.iter().filter(|c| !c.primary_key).map(|c| format!("{0} = EXCLUDED.{0}", quoted(&c.name))).collect();
    let on_conflict =
        if updates.is_empty() { "DO NOTHING".to_owned() } else { format!("DO UPDATE SET {}", updates.join(", ")) };
    let statement = format!(
        "INSERT INTO {} ({}) SELECT * FROM UNNEST({}) ON CONFLICT ({}) {on_conflict}",
        quoted(table),
        names.join(", "),
        arrays.join(", "),
        keys.join(", ")
    );
    execute_with_arrays(client, &statement, cells, "cannot upsert").await
}

/// `DELETE … WHERE (key) IN (SELECT * FROM UNNEST(arrays))`.
async fn delete_rows(
    client: &tokio_postgres::Client,
    table: &str,
    columns: &[TableColumn],
    batch: &RecordBatch,
    kept: &[usize],
) -> Result<(), ConnectorError> {
    let keys: Vec<&TableColumn> = columns.iter().filter(|c| c.primary_key).collect();
    let cells = columns_of(batch, &keys, kept)?;
    let names: Vec<String> = keys.iter().map(|c| quoted(&c.name)).collect();
    let arrays = array_parameters(&keys);
    let statement = format!(
        "DELETE FROM {} WHERE ({}) IN (SELECT * FROM UNNEST({}))",
        quoted(table),
        names.join(", "),
        arrays.join(", ")
    );
    execute_with_arrays(client, &statement, cells, "cannot delete").await
}

/// `$1::type[]`, `$2::type[]`, …: one array parameter per column.
fn array_parameters(columns: &[&TableColumn]) -> Vec<String> {
    columns.iter().enumerate().map(|(i, c)| format!("${}::{}[]", i + 1, array_type(&c.data_type))).collect()
}

/// Runs `statement` with each column's cells as one array parameter.
async fn execute_with_arrays(
    client: &tokio_postgres::Client,
    statement: &str,
    cells: Vec<Vec<Cell>>,
    what: &str,
) -> Result<(), ConnectorError> {
    let params: Vec<CellArray> = cells.into_iter().map(CellArray).collect();
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
    client.execute(statement, &refs).await.map_err(|e| database_error(what, e))?;
    Ok(())
}

/// The element type of a column's array parameter.
fn array_type(data_type: &DataType) -> String {
    match data_type {
        DataType::Decimal128(..) => "numeric".into(),
        other => postgres_type(other).to_lowercase(),
    }
}

/// A column's cells as one array parameter.
#[derive(Debug)]
struct CellArray(Vec<Cell>);

impl ToSql for CellArray {
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        self.0.iter().collect::<Vec<&Cell>>().to_sql(ty, out)
    }

    fn accepts(ty: &Type) -> bool {
        matches!(ty.kind(), tokio_postgres::types::Kind::Array(_))
    }

    to_sql_checked!();
}

impl SinkConnector for JdbcSink {
    fn topics(&self) -> Vec<String> {
        self.targets.keys().cloned().collect()
    }

    fn put<'a>(&'a mut self, topic: &'a str, records: &'a [Record]) -> BoxFuture<'a, Result<(), ConnectorError>> {
        Box::pin(async move {
            let Some(target) = self.targets.get(topic) else { return Ok(()) };
            let source = Arc::clone(&target.source);
            let schema = crate::engine::source::row_schema(&source);
            let partition = 0;
            let decoded = crate::engine::source::decode(&source, &schema, partition, records)
                .map_err(|e| ConnectorError::new(format!("cannot read {topic}: {}", e.0)))?;
            self.rejected = decoded.errors.clone();
            let rows = decoded.batch.num_rows();
            if rows == 0 {
                return Ok(());
            }
            let tombstones: Vec<bool> =
                (0..rows).map(|i| decoded.tombstones.as_ref().is_some_and(|t| t.is_valid(i) && t.value(i))).collect();
            let (batch, deleted) = if tombstones.iter().any(|t| *t) && !self.delete_enabled {
                // Tombstones are skipped without delete.enabled.
                let keep =
                    datafusion::arrow::array::BooleanArray::from(tombstones.iter().map(|t| !t).collect::<Vec<_>>());
                let batch = datafusion::arrow::compute::filter_record_batch(&decoded.batch, &keep)
                    .map_err(|e| ConnectorError::new(e.to_string()))?;
                let n = batch.num_rows();
                (batch, vec![false; n])
            } else {
                (decoded.batch, tombstones)
            };
            if batch.num_rows() == 0 {
                return Ok(());
            }
            self.prepare(topic).await?;
            self.begin().await?;
            self.write(topic, &batch, &deleted).await
        })
    }

    fn flush(&mut self) -> BoxFuture<'_, Result<(), ConnectorError>> {
        Box::pin(async move {
            if self.in_transaction {
                let client = self.client().await?;
                client.batch_execute("COMMIT").await.map_err(|e| database_error("cannot commit", e))?;
                self.in_transaction = false;
            }
            Ok(())
        })
    }

    fn rejected(&mut self) -> Vec<(u64, String)> {
        std::mem::take(&mut self.rejected)
    }

    fn reset(&mut self) {
        // The open transaction, if any, goes with the connection.
        self.client = None;
        self.in_transaction = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(value: i128, scale: i8) -> Vec<i16> {
        let mut out = bytes::BytesMut::new();
        numeric(value, scale, &mut out);
        out.chunks(2).map(|c| i16::from_be_bytes([c[0], c[1]])).collect()
    }

    #[test]
    fn decimals_are_written_in_postgres_binary_numeric() {
        // 12345.6789: digits 1, 2345, 6789; weight 1; scale 4.
        assert_eq!(encoded(123_456_789, 4), vec![3, 1, 0, 4, 1, 2345, 6789]);
        // -0.5 at scale 2: digit 5000 at weight -1, negative.
        assert_eq!(encoded(-50, 2), vec![1, -1, 0x4000, 2, 5000]);
        // 10000: one digit 1 at weight 1.
        assert_eq!(encoded(10_000, 0), vec![1, 1, 0, 0, 1]);
        // Zero: no digits.
        assert_eq!(encoded(0, 2), vec![0, 0, 0, 2]);
        // 0.0001
        assert_eq!(encoded(1, 4), vec![1, -1, 0, 4, 1]);
    }

    #[test]
    fn connection_urls_in_jdbcs_form() {
        let config = postgres_config("jdbc:postgresql://db.example:5433/shop?user=eddy&password=secret").unwrap();
        assert_eq!(config.get_dbname(), Some("shop"));
        assert_eq!(config.get_user(), Some("eddy"));
        assert_eq!(config.get_ports(), &[5433]);
        assert!(postgres_config("jdbc:mysql://db/shop").unwrap_err().message.contains("only PostgreSQL"));
    }
}
