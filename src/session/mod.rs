//! A session: the one path every way in (`eddy run`, the REPL, the HTTP server) executes
//! statements through.
//!
//! [`Session::execute`] takes a script, splits it into statements, substitutes `${var}`
//! variables per statement (so a `DEFINE` applies to what follows it), parses, and runs each
//! statement against the catalog and the log, reporting each result as it comes. Statements
//! that change the catalog are appended to the command topic `_eddy_commands` and applied
//! from there (see `command_log`): streams, tables, types and persistent queries survive
//! restarts, and sessions in other processes see them at their next statement.
//!
//! One file per concern: `command_log` (the command topic), `topics` (sources and their
//! topics, SHOW, DESCRIBE, DROP), `insert` (INSERT … VALUES), `persistent` (CREATE … AS
//! SELECT, INSERT INTO … SELECT, TERMINATE), `repartition`, `push` (push queries), `pull`
//! (pull queries) and `pull_where` (how a pull query's WHERE finds its rows, and ksqlDB's
//! refusals), `print`, `entity` and `result` (what statements return).

mod command_log;
mod connectors;
pub mod entity;
mod insert;
mod persistent;
mod print;
mod pull;
mod pull_where;
mod push;
mod repartition;
mod result;
mod topics;

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use datafusion::sql::sqlparser::tokenizer::Location;

pub use self::connectors::ConnectorMetrics;
pub use self::persistent::QueryMetrics;
pub use self::result::{QueryRows, ResultSink, RowsHeader, StatementResult, push_layout};
use crate::catalog::{Catalog, ColumnRole, source_name};
use crate::log::{Log, LogError, NewRecord, TopicSpec, record::now_ms};
use crate::sql::ast::{CreateSource, Describe, DropSource, Explain, Show, ShowTarget, SourceKind, Statement};
use crate::sql::lexer::{Offsets, first_location, split_statements, tokenize};
use crate::sql::types::resolved_name;
use crate::sql::{ParseError, parse_one};

/// The internal topic holding every statement that changed the catalog, in order.
pub const COMMAND_TOPIC: &str = "_eddy_commands";
/// `RUN SCRIPT` may nest this deep.
const MAX_SCRIPT_DEPTH: usize = 16;

/// Why a statement failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The text does not parse; the position is within the whole script.
    #[error("{0}")]
    Parse(ParseError),
    /// The statement is refused (unknown source, bad property, …).
    #[error("{message}")]
    Statement { message: String, at: Location },
    /// Parsed, but Eddy cannot run it yet.
    #[error("{what} is not supported yet{}", hint.as_ref().map(|h| format!(" ({h})")).unwrap_or_default())]
    NotSupported { what: String, hint: Option<String>, at: Location },
    /// Eddy failed: a bug (a panic caught, a state it never expects). The message begins
    /// "internal error (this is a bug)".
    #[error("{message}")]
    Internal { message: String, at: Location },
    /// The log failed under the statement.
    #[error("{0}")]
    Log(#[from] LogError),
    /// Something outside Eddy failed under planning (the log, as it read partition counts).
    #[error("{message}")]
    External { message: String, at: Location },
}

/// A planning error keeps its kind: a refusal of the statement, or a bug. (Where in the
/// script is not known here: see [`relocate`].)
impl From<crate::engine::plan::PlanError> for SessionError {
    fn from(e: crate::engine::plan::PlanError) -> Self {
        match e.kind {
            crate::error::ErrorKind::Internal => SessionError::Internal { message: e.message, at: Location::new(1, 1) },
            crate::error::ErrorKind::External => SessionError::External { message: e.message, at: Location::new(1, 1) },
            crate::error::ErrorKind::User => refusal(e.message),
        }
    }
}

/// Makes a source's codecs ready (a schema registry's formats register their schemas).
pub(crate) async fn prepare_codecs(
    source: &crate::catalog::Source,
    registration: crate::format::Registration,
) -> Result<(), SessionError> {
    for codec in [&source.key_codec, &source.value_codec] {
        codec.prepare(registration).await.map_err(|e| refusal(e.0))?;
    }
    Ok(())
}

impl SessionError {
    /// A schema registry failed (outside Eddy: worth retrying once it is up).
    pub fn registry(e: crate::registry::RegistryError) -> SessionError {
        SessionError::External { message: format!("schema registry: {e}"), at: Location::new(1, 1) }
    }

    /// Where in the script the failing statement starts (or the parse error is).
    pub fn location(&self) -> Option<Location> {
        match self {
            SessionError::Parse(e) => Some(Location::new(e.line, e.column)),
            SessionError::Statement { at, .. }
            | SessionError::NotSupported { at, .. }
            | SessionError::Internal { at, .. }
            | SessionError::External { at, .. } => Some(*at),
            SessionError::Log(_) => None,
        }
    }

    /// Whose fault it is.
    pub fn kind(&self) -> crate::error::ErrorKind {
        use crate::error::ErrorKind;
        match self {
            SessionError::Log(e) if e.is_user_error() => ErrorKind::User,
            SessionError::Log(_) => ErrorKind::External,
            SessionError::Internal { .. } => ErrorKind::Internal,
            SessionError::External { .. } => ErrorKind::External,
            SessionError::Parse(_) | SessionError::Statement { .. } | SessionError::NotSupported { .. } => {
                ErrorKind::User
            }
        }
    }

    /// True when the statement or its input is at fault (exit code 1), not Eddy or storage.
    pub fn is_user_error(&self) -> bool {
        self.kind() == crate::error::ErrorKind::User
    }
}

/// Session state: the catalog, properties set with `SET`, variables from `DEFINE`.
pub struct Session {
    log: Arc<dyn Log>,
    catalog: Catalog,
    properties: BTreeMap<String, String>,
    /// The properties every session of this process starts under (the command line's
    /// `--property`), beneath `properties` and beneath what a query kept at its creation.
    defaults: Arc<BTreeMap<String, String>>,
    variables: BTreeMap<String, String>,
    /// Streaming statements (`PRINT`) stop at the end of the data present instead of
    /// waiting for more (`eddy run --until-idle`).
    until_idle: bool,
    /// The next offset of the command topic to apply to the catalog.
    commands_applied: u64,
    /// The catalog's persistent queries running in this process, by id.
    running: BTreeMap<String, crate::engine::query::RunningQuery>,
    /// Tables materialized for pull queries, by name: each kept up to date from its
    /// changelog at every pull (shared with forks).
    materialized: Arc<tokio::sync::Mutex<BTreeMap<String, crate::engine::store::MaterializedTable>>>,
    /// Whether this session runs the catalog's persistent queries (a fork does not).
    runs_queries: bool,
    /// How far readers see the output of queries writing exactly once (shared by forks).
    fences: Arc<crate::engine::checkpoint::Fences>,
    /// The connectors created, by name (the catalog's, kept here: they are no SQL sources).
    connectors: BTreeMap<String, connectors::ConnectorDefinition>,
    /// The connector classes `CREATE … CONNECTOR` may name.
    connector_classes: crate::connect::Connectors,
    /// The connectors running in this process, by name.
    connectors_running: BTreeMap<String, connectors::Running>,
}

impl Session {
    /// Opens a session over `log`, replaying the command topic into the catalog.
    /// Its formats use the embedded schema registry kept in `log`.
    pub async fn open(log: Arc<dyn Log>) -> Result<Session, SessionError> {
        let registry =
            crate::registry::client::Embedded::open(Arc::clone(&log)).await.map_err(SessionError::registry)?;
        Session::open_with(log, BTreeMap::new(), crate::format::Formats::with_registry(Arc::new(registry))).await
    }

    /// Opens a session whose properties default to `defaults` (checked with
    /// [`crate::config::check`] by whoever read them) and whose sources may name `formats`
    /// (given here, before the command topic is replayed: a source in a format registered
    /// later would not be restored).
    pub async fn open_with(
        log: Arc<dyn Log>,
        defaults: BTreeMap<String, String>,
        formats: crate::format::Formats,
    ) -> Result<Session, SessionError> {
        let connector_classes = crate::connect::Connectors::builtin(&formats);
        let mut session = Session {
            log,
            catalog: Catalog::with_formats(formats),
            properties: BTreeMap::new(),
            defaults: Arc::new(defaults),
            variables: BTreeMap::new(),
            until_idle: false,
            commands_applied: 0,
            running: BTreeMap::new(),
            materialized: Arc::new(tokio::sync::Mutex::new(BTreeMap::new())),
            runs_queries: true,
            fences: Arc::default(),
            connectors: BTreeMap::new(),
            connector_classes,
            connectors_running: BTreeMap::new(),
        };
        session.catch_up().await?;
        Ok(session)
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// A session for one request's statements (the HTTP server's queries): this one's
    /// catalog, properties and variables, and its materialized tables, but running none of
    /// the persistent queries (this session runs them). It catches up with the catalog at
    /// each statement, as any session does.
    pub fn fork(&self) -> Session {
        Session {
            log: Arc::clone(&self.log),
            catalog: self.catalog.clone(),
            properties: self.properties.clone(),
            defaults: Arc::clone(&self.defaults),
            variables: self.variables.clone(),
            until_idle: self.until_idle,
            commands_applied: self.commands_applied,
            running: BTreeMap::new(),
            materialized: Arc::clone(&self.materialized),
            fences: Arc::clone(&self.fences),
            runs_queries: false,
            connectors: self.connectors.clone(),
            connector_classes: self.connector_classes.clone(),
            connectors_running: BTreeMap::new(),
        }
    }

    /// The properties `SET` (`auto.offset.reset`, …).
    pub fn properties(&self) -> &BTreeMap<String, String> {
        &self.properties
    }

    /// Replaces the properties (a request's own, then the session's again).
    pub fn set_properties(&mut self, properties: BTreeMap<String, String>) {
        self.properties = properties;
    }

    /// The variables `DEFINE` (names lower-cased).
    pub fn variables(&self) -> &BTreeMap<String, String> {
        &self.variables
    }

    /// Replaces the variables (a request's own, then the session's again).
    pub fn set_variables(&mut self, variables: BTreeMap<String, String>) {
        self.variables = variables.into_iter().map(|(k, v)| (k.to_lowercase(), v)).collect();
    }

    /// How many commands of the command topic this session has applied (ksqlDB's
    /// `commandSequenceNumber`).
    pub fn commands_applied(&self) -> u64 {
        self.commands_applied
    }

    /// The source `sql` would create, when it is a `CREATE STREAM|TABLE` that declares its
    /// columns (not `AS SELECT`), planned against the catalog as it is, with the session's
    /// default formats: its topic and codecs, without creating anything. ksqlDB's test harness
    /// derives such a statement's topic and schemas before running the case.
    pub fn declared_source(&self, sql: &str) -> Option<crate::catalog::Source> {
        let Ok(Statement::CreateSource(create)) = parse_one(sql) else { return None };
        if create.columns.is_empty() {
            return None;
        }
        let create = self.with_default_formats(&create);
        let text = Statement::CreateSource(create.clone()).to_string();
        self.catalog.plan_source(&create, text).ok()
    }

    /// The statements of a script, as text (each without its `;`).
    pub fn statements(script: &str) -> Result<Vec<String>, SessionError> {
        let parsed = Script::new(script.to_owned())?;
        Ok(parsed.statements.map(|(_, range)| parsed.text[range].to_owned()).collect())
    }

    /// The log under the session.
    pub fn log(&self) -> &Arc<dyn Log> {
        &self.log
    }

    /// A side declared without columns gets those its format infers (see
    /// [`crate::format::Format::infer_columns`]), so that the statement logged holds them and
    /// replaying it needs no lookup.
    async fn with_inferred_columns(&self, mut create: CreateSource) -> Result<CreateSource, SessionError> {
        use crate::sql::ast::{ColumnConstraint, ColumnDef, SqlType};
        // A statement whose formats are wrong is refused by the catalog, with its message.
        let Ok((key_format, value_format)) = self.catalog.formats_of(&create) else { return Ok(create) };
        let properties = crate::catalog::property_map(&create.properties).map_err(|e| refusal(e.0))?;
        let topic = properties.get("KAFKA_TOPIC").cloned().unwrap_or_else(|| source_name(&create.name));
        let key_constraint = match create.kind {
            SourceKind::Stream => ColumnConstraint::Key,
            SourceKind::Table => ColumnConstraint::PrimaryKey,
        };
        for (format, key) in [(key_format, true), (value_format, false)] {
            let is_side = |c: &ColumnDef| match &c.constraint {
                ColumnConstraint::Key | ColumnConstraint::PrimaryKey => key,
                ColumnConstraint::None => !key,
                ColumnConstraint::Headers | ColumnConstraint::Header(_) => false,
            };
            let id_property = if key { "KEY_SCHEMA_ID" } else { "VALUE_SCHEMA_ID" };
            if properties.contains_key(id_property) {
                // A schema id names the columns: the format must take them from the registry,
                // and the statement must not declare them too.
                let side = if key { "KEY" } else { "VALUE" };
                if !crate::format::uses_registry(format.name()) {
                    return Err(refusal(format!(
                        "{side}_FORMAT should support schema inference when {id_property} is provided. \
                         Current format is {}.",
                        format.name()
                    )));
                }
                if create.columns.iter().any(is_side) {
                    return Err(refusal(format!(
                        "Table elements and {id_property} cannot both exist for create statement."
                    )));
                }
            }
            if create.columns.iter().any(is_side) {
                continue;
            }
            let schema_id = match properties.get(id_property) {
                Some(id) => Some(
                    id.parse::<u32>().map_err(|_| refusal(format!("{id_property} must be a number, not '{id}'")))?,
                ),
                None => None,
            };
            // A key is one value (ROWKEY, a STRUCT for a record), as ksqlDB's keys are unwrapped.
            let unwrapped = key || properties.get("WRAP_SINGLE_VALUE").is_some_and(|w| w.eq_ignore_ascii_case("false"));
            let full_name =
                properties.get(if key { "KEY_SCHEMA_FULL_NAME" } else { "VALUE_SCHEMA_FULL_NAME" }).cloned();
            let subject = crate::format::Subject { topic: topic.clone(), key, schema_id, unwrapped, full_name };
            // Columns taken from the subject's latest schema are written with that schema, as
            // ksqlDB does: the statement keeps its id (as if given, `*_SCHEMA_ID`).
            let latest_id = match (schema_id, self.catalog.formats().registry()) {
                (None, Some(registry)) if crate::format::uses_registry(format.name()) => {
                    registry.latest(&subject.name()).await.map_err(SessionError::registry)?.map(|latest| latest.id)
                }
                _ => None,
            };
            // (What infers columns is outside Eddy: a registry that fails is not the user's.)
            let inferred = format.infer_columns(&subject).await.map_err(|e| SessionError::External {
                message: format!("cannot find the columns of {} in format {}: {e}", topic, format.name()),
                at: Location::new(1, 1),
            })?;
            let Some(schema) = inferred else {
                // A value with no columns and none in the registry cannot be read.
                if !key && crate::format::uses_registry(format.name()) {
                    return Err(refusal(format!(
                        "Schema for message values on topic '{topic}' does not exist in the Schema Registry."
                    )));
                }
                continue;
            };
            for field in schema.fields() {
                let data_type = SqlType::from_arrow(field.data_type()).ok_or_else(|| {
                    refusal(format!(
                        "{} of {}: type {} has no SQL type",
                        field.name(),
                        format.name(),
                        field.data_type()
                    ))
                })?;
                let constraint = if key { key_constraint.clone() } else { ColumnConstraint::None };
                create.columns.push(ColumnDef {
                    name: datafusion::sql::sqlparser::ast::Ident::with_quote('`', field.name().clone()),
                    data_type,
                    constraint,
                });
            }
            if let Some(id) = latest_id {
                let value = datafusion::sql::sqlparser::ast::Value::Number(id.to_string(), false);
                create.properties.0.push((datafusion::sql::sqlparser::ast::Ident::new(id_property), value));
            }
        }
        if create.columns.is_empty() {
            return Err(refusal("No columns supplied.".into()));
        }
        Ok(create)
    }

    /// A `CREATE STREAM|TABLE` with the session's default formats
    /// (`ksql.persistence.default.format.key|value`) where its WITH clause names none, so that
    /// the command log records the formats it was created with.
    fn with_default_formats(&self, create: &CreateSource) -> CreateSource {
        let mut create = create.clone();
        self.default_value_wrapping(&mut create);
        if create.properties.get("FORMAT").is_some() {
            return create;
        }
        for (property, default) in [
            ("KEY_FORMAT", "ksql.persistence.default.format.key"),
            ("VALUE_FORMAT", "ksql.persistence.default.format.value"),
        ] {
            if create.properties.get(property).is_none()
                && let Some(format) = self.properties.get(default)
            {
                let value = datafusion::sql::sqlparser::ast::Value::SingleQuotedString(format.to_uppercase());
                create.properties.0.push((datafusion::sql::sqlparser::ast::Ident::new(property), value));
            }
        }
        create
    }

    /// `WRAP_SINGLE_VALUE` from `ksql.persistence.wrap.single.values` where a statement with one
    /// value column in a format that can wrap it (JSON) does not say.
    fn default_value_wrapping(&self, create: &mut CreateSource) {
        let Some(wrap) = self.properties.get("ksql.persistence.wrap.single.values") else { return };
        let format = create.properties.get("VALUE_FORMAT").or(create.properties.get("FORMAT")).map(|v| v.to_string());
        let format = format.or_else(|| self.properties.get("ksql.persistence.default.format.value").cloned());
        let wraps = format.is_some_and(|f| f.trim_matches('\'').eq_ignore_ascii_case("JSON"));
        let values = create.columns.iter().filter(|c| c.constraint == crate::sql::ast::ColumnConstraint::None).count();
        if wraps && values == 1 && create.properties.get("WRAP_SINGLE_VALUE").is_none() {
            let value = datafusion::sql::sqlparser::ast::Value::Boolean(wrap.eq_ignore_ascii_case("true"));
            create.properties.0.push((datafusion::sql::sqlparser::ast::Ident::new("WRAP_SINGLE_VALUE"), value));
        }
    }

    /// Makes streaming statements stop once they have caught up with the data present.
    pub fn set_until_idle(&mut self, until_idle: bool) {
        self.until_idle = until_idle;
    }

    /// Executes every statement of `script` in order, handing each result to `on_result`
    /// as it comes; stops at the first failure. Dropping the future cancels the statement
    /// running (a `PRINT` that follows its topic, say) without harm: catalog changes are
    /// made only after their command is logged.
    pub async fn execute(&mut self, script: &str, on_result: &mut dyn ResultSink) -> Result<(), SessionError> {
        // The scripts being run, innermost (the latest RUN SCRIPT) last. Kept as a stack
        // rather than by recursion, so nesting costs no stack.
        let mut scripts = vec![Script::new(script.to_owned())?];
        while let Some(current) = scripts.last_mut() {
            let Some((start, range)) = current.statements.next() else {
                scripts.pop();
                continue;
            };
            let text = self.substitute(&current.text[range], start)?;
            let mut statement = parse_one(&text).map_err(|mut e| {
                e.statement = Some(format!("{};", text.trim().trim_end_matches(';')));
                SessionError::Parse(shift(e, start))
            })?;
            shift_spans(&mut statement, start);
            check_numeric_literals(&statement, start)?;
            // A statement over the processing log finds it even before anything went wrong.
            if text.to_ascii_lowercase().contains("processing_log") {
                crate::engine::processing_log::ProcessingLog::new(Arc::clone(&self.log)).ensure_topic().await?;
            }
            // What other processes changed in the catalog meanwhile applies first.
            self.catch_up().await?;
            if let Statement::RunScript { path } = &statement {
                if scripts.len() > MAX_SCRIPT_DEPTH {
                    return Err(SessionError::Statement {
                        message: format!("RUN SCRIPT nests more than {MAX_SCRIPT_DEPTH} deep"),
                        at: start,
                    });
                }
                let text = std::fs::read_to_string(path).map_err(|e| SessionError::Statement {
                    message: format!("Cannot read script '{path}': {e}"),
                    at: start,
                })?;
                scripts.push(Script::new(text)?);
                continue;
            }
            // A panic that input reached in Eddy, DataFusion or Arrow is reported as the bug
            // it is, and the session goes on (the next statement, the next request).
            let running = std::panic::AssertUnwindSafe(Box::pin(self.run(statement, start, on_result)));
            let result =
                futures::FutureExt::catch_unwind(running).await.map_err(|panic| SessionError::Internal {
                    message: crate::error::bug_message(&crate::error::panic_message(panic.as_ref())),
                    at: start,
                })??;
            if let Some(result) = result {
                on_result.send(result);
            }
        }
        Ok(())
    }

    /// Replaces `${name}` with defined variables, as ksqlDB's substitution (Apache's
    /// `StringSubstitutor`) does: a variable not defined stays as written (`${topic}` in a
    /// JDBC sink's `table.name.format` reaches the connector), and `$${name}` is the text
    /// `${name}`.
    fn substitute(&self, text: &str, _at: Location) -> Result<String, SessionError> {
        if !text.contains("${") {
            return Ok(text.to_owned());
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(open) = rest.find("${") {
            if open > 0 && rest.as_bytes()[open - 1] == b'$' {
                // Escaped: `$${` is `${`, taken as it is.
                out.push_str(&rest[..open - 1]);
                out.push_str("${");
                rest = &rest[open + 2..];
                continue;
            }
            out.push_str(&rest[..open]);
            let after = &rest[open + 2..];
            let Some(close) = after.find('}') else {
                out.push_str(&rest[open..]);
                return Ok(out);
            };
            let name = &after[..close];
            match self.variables.get(&name.to_lowercase()) {
                Some(value) => out.push_str(value),
                None => out.push_str(&rest[open..open + 2 + close + 1]),
            }
            rest = &after[close + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    async fn run(
        &mut self,
        statement: Statement,
        at: Location,
        on_result: &mut dyn ResultSink,
    ) -> Result<Option<StatementResult>, SessionError> {
        let refused = |message: String| SessionError::Statement { message, at };
        let not_yet = |what: &str| SessionError::NotSupported {
            what: what.to_owned(),
            hint: Some("queries and inserts arrive with the planner; see the README".into()),
            at,
        };
        let result = match statement {
            Statement::CreateSource(ref create) => {
                if create.if_not_exists && self.catalog.source(&source_name(&create.name)).is_some() {
                    return Ok(Some(StatementResult::status(format!(
                        "{} {} already exists",
                        kind_title(create.kind),
                        source_name(&create.name)
                    ))));
                }
                let create = self.with_default_formats(create);
                let create = self.with_inferred_columns(create).await.map_err(|e| relocate(e, at))?;
                let text = Statement::CreateSource(create.clone()).to_string();
                let source = self.catalog.plan_source(&create, text.clone()).map_err(|e| refused(e.0))?;
                prepare_codecs(&source, crate::format::Registration::Source).await.map_err(|e| relocate(e, at))?;
                self.ensure_topic(&source).await.map_err(|e| relocate(e, at))?;
                self.log_command(&text).await?;
                StatementResult::status(format!("{} created", kind_title(source.kind)))
            }
            Statement::Drop(ref drop) => {
                self.drop_source(drop, &statement.to_string()).await.map_err(|e| relocate(e, at))?
            }
            Statement::CreateType { if_not_exists, ref name, ref data_type } => {
                let name = resolved_name(name);
                if if_not_exists && self.catalog.has_type(&name) {
                    return Ok(Some(StatementResult::status(format!("Type {name} already exists"))));
                }
                self.catalog.check_type(&name, data_type).map_err(|e| refused(e.0))?;
                self.log_command(&statement.to_string()).await?;
                StatementResult::status(format!("Registered custom type with name '{name}' and SQL type {data_type}"))
            }
            Statement::DropType { if_exists, ref name } => {
                let name = resolved_name(name);
                if !self.catalog.has_type(&name) {
                    if if_exists {
                        return Ok(Some(StatementResult::status(format!("Type {name} does not exist"))));
                    }
                    return Err(refused(format!("Type {name} does not exist.")));
                }
                self.log_command(&statement.to_string()).await?;
                StatementResult::status(format!("Dropped type '{name}'"))
            }
            Statement::Show(Show { target: ShowTarget::Connectors(scope), .. }) => {
                self.show_connectors(scope, &statement.to_string())
            }
            Statement::Show(show) => self.show(show.target).await.map_err(|e| relocate(e, at))?,
            Statement::CreateConnector(ref create) => {
                self.create_connector(create, &statement.to_string()).await.map_err(|e| relocate(e, at))?
            }
            Statement::DropConnector { if_exists, ref name } => {
                self.drop_connector(if_exists, name, &statement.to_string()).await.map_err(|e| relocate(e, at))?
            }
            Statement::Describe(Describe::Connector { ref name }) => {
                self.describe_connector(name, &statement.to_string()).map_err(|e| relocate(e, at))?
            }
            Statement::Describe(Describe::Source { name, extended }) => {
                let name = source_name(&name);
                let source = self
                    .catalog
                    .source(&name)
                    .cloned()
                    .ok_or_else(|| refused(format!("Could not find STREAM/TABLE '{name}' in the Metastore")))?;
                self.describe(&source, extended).await?
            }
            Statement::Describe(Describe::Streams { .. }) => self.show(ShowTarget::Streams).await?,
            Statement::Describe(Describe::Tables { .. }) => self.show(ShowTarget::Tables).await?,
            Statement::Describe(Describe::Function { name }) => {
                let function = crate::engine::functions::describe(&name.value)
                    .ok_or_else(|| refused(format!("Can't find any functions with the name '{}'", name.value)))?;
                StatementResult::Table {
                    title: Some(crate::engine::functions::overview(function)),
                    columns: vec!["Variation".into(), "Returns".into()],
                    rows: crate::engine::functions::variations(function)
                        .into_iter()
                        .map(|(call, returns)| vec![call, returns])
                        .collect(),
                }
            }
            Statement::Set { name, value } => {
                if name == "auto.offset.reset" && !matches!(value.as_str(), "earliest" | "latest") {
                    return Err(refused(format!(
                        "Invalid value {value} for configuration auto.offset.reset: String must be one of: latest, earliest"
                    )));
                }
                crate::config::check(&name, &value).map_err(|e| refused(e.0))?;
                let message = format!(
                    "Successfully changed local property '{name}' to '{value}'. Use the UNSET command to revert your change."
                );
                self.properties.insert(name, value);
                StatementResult::status(message)
            }
            Statement::Unset { name } => match self.properties.remove(&name) {
                Some(_) => StatementResult::status(format!("Successfully unset local property '{name}'.")),
                None => return Err(refused(format!("Property '{name}' is not set"))),
            },
            Statement::Define { name, value } => {
                self.variables.insert(name.value.to_lowercase(), value);
                return Ok(None);
            }
            Statement::Undefine { name } => {
                if self.variables.remove(&name.value.to_lowercase()).is_none() {
                    return Err(refused(format!("Variable '{}' is undefined", name.value)));
                }
                return Ok(None);
            }
            Statement::RunScript { .. } => return Err(refused("RUN SCRIPT runs only within a script".into())),
            Statement::CreateAsSelect(ref create) => {
                let text = statement.to_string();
                Box::pin(self.create_as_select(create, &text)).await.map_err(|e| relocate(e, at))?
            }
            Statement::InsertInto(ref insert) => {
                let text = statement.to_string();
                Box::pin(self.insert_select(insert, &text)).await.map_err(|e| relocate(e, at))?
            }
            Statement::InsertValues(insert) => {
                self.insert_values(&insert).await.map_err(|e| relocate(e, at))?;
                return Ok(None);
            }
            // Without EMIT, a pull query: answered at once from the current state.
            Statement::Select(query) if query.emit.is_none() => {
                Box::pin(self.pull_query(&query)).await.map_err(|e| relocate(e, at))?
            }
            Statement::Select(query) => {
                self.push_query(&query, on_result).await.map_err(|e| relocate(e, at))?;
                return Ok(None);
            }
            Statement::Terminate(ref terminate) => {
                let text = statement.to_string();
                Box::pin(self.terminate(terminate, &text)).await.map_err(|e| relocate(e, at))?
            }
            Statement::Explain(Explain::Statement(inner)) => match *inner {
                Statement::Select(query) => self.explain_push_query(&query).await.map_err(|e| relocate(e, at))?,
                _ => return Err(not_yet("EXPLAIN of anything but a push query")),
            },
            Statement::Explain(Explain::Query(id)) => {
                Box::pin(self.explain_query(&id)).await.map_err(|e| relocate(e, at))?
            }
            Statement::Print(print) => {
                self.print(&print, on_result).await.map_err(|e| relocate(e, at))?;
                return Ok(None);
            }
            Statement::Sql(other) => {
                let text = other.to_string();
                let head = text.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
                return Err(SessionError::NotSupported {
                    what: format!("'{head} …'"),
                    hint: Some("it is not part of ksqlDB's dialect".into()),
                    at,
                });
            }
        };
        Ok(Some(result))
    }
}

fn kind_title(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::Stream => "Stream",
        SourceKind::Table => "Table",
    }
}

/// A refusal from a helper that does not know where its statement is; [`relocate`] places it.
fn refusal(message: String) -> SessionError {
    SessionError::Statement { message, at: Location::new(1, 1) }
}

/// Places a refusal at its statement.
fn relocate(error: SessionError, statement_at: Location) -> SessionError {
    match error {
        SessionError::Statement { message, .. } => SessionError::Statement { message, at: statement_at },
        SessionError::NotSupported { what, hint, .. } => SessionError::NotSupported { what, hint, at: statement_at },
        SessionError::Internal { message, .. } => SessionError::Internal { message, at: statement_at },
        SessionError::External { message, .. } => SessionError::External { message, at: statement_at },
        other => other,
    }
}

/// A script split into statements: where each starts, and its bytes.
struct Script {
    text: String,
    statements: std::vec::IntoIter<(Location, std::ops::Range<usize>)>,
}

impl Script {
    fn new(text: String) -> Result<Script, SessionError> {
        let tokens = tokenize(&text).map_err(SessionError::Parse)?;
        let offsets = Offsets::new(&text);
        let statements: Vec<(Location, std::ops::Range<usize>)> = split_statements(tokens)
            .into_iter()
            .map(|tokens| {
                let start = first_location(&tokens);
                let end = tokens.last().map_or(start, |t| t.span.end);
                (start, offsets.byte(start)..offsets.byte(end))
            })
            .collect();
        Ok(Script { text, statements: statements.into_iter() })
    }
}

/// Moves a position within a statement to its position within the script.
/// Moves the positions of a statement's query's names from the statement's text to the
/// script's, so that planning errors say where in the script they are.
/// ksqlDB's refusal of a number literal that no type holds: an integer beyond BIGINT, a
/// DOUBLE beyond its range (`-9223372036854775808` is a BIGINT: the sign is the literal's).
fn check_numeric_literals(statement: &Statement, start: Location) -> Result<(), SessionError> {
    use datafusion::sql::sqlparser::ast::{Expr, UnaryOperator, Value, visit_expressions};
    let query = match statement {
        Statement::Select(query) => query,
        Statement::CreateAsSelect(create) => &create.query,
        Statement::InsertInto(insert) => &insert.query,
        _ => return Ok(()),
    };
    let refusal = |text: &str, at: datafusion::sql::sqlparser::tokenizer::Location| -> Option<String> {
        let message = if text.contains(['e', 'E']) {
            text.parse::<f64>().is_ok_and(f64::is_infinite).then(|| format!("Number overflows DOUBLE: {text}"))?
        } else if !text.contains('.') && text.parse::<i64>().is_err() {
            format!("Invalid numeric literal: {text}")
        } else {
            return None;
        };
        // ksqlDB's column for a literal is one past where it starts.
        let (line, column) = if at.line == 1 {
            (start.line, at.column + start.column)
        } else {
            (at.line + start.line - 1, at.column + 1)
        };
        Some(format!("Failed to prepare statement: line {line}:{column}: {message}"))
    };
    let mut negated = Vec::new();
    let outcome = visit_expressions(&query.query, |expr: &Expr| {
        let found =
            match expr {
                Expr::UnaryOp { op: UnaryOperator::Minus, expr: inner } => match inner.as_ref() {
                    Expr::Value(v) if let Value::Number(text, _) = &v.value => {
                        negated.push(std::ptr::from_ref(inner.as_ref()));
                        refusal(&format!("-{text}"), v.span.start)
                    }
                    _ => None,
                },
                Expr::Value(v) if let Value::Number(text, _) = &v.value => {
                    if negated.contains(&std::ptr::from_ref(expr)) { None } else { refusal(text, v.span.start) }
                }
                _ => None,
            };
        match found {
            Some(message) => std::ops::ControlFlow::Break(message),
            None => std::ops::ControlFlow::Continue(()),
        }
    });
    match outcome {
        std::ops::ControlFlow::Break(message) => Err(SessionError::Statement { message, at: start }),
        std::ops::ControlFlow::Continue(()) => Ok(()),
    }
}

fn shift_spans(statement: &mut Statement, start: Location) {
    use datafusion::sql::sqlparser::ast::{Expr, Ident, visit_expressions_mut};
    let shift = |ident: &mut Ident| {
        for location in [&mut ident.span.start, &mut ident.span.end] {
            if location.line == 0 {
                continue; // no position
            }
            if location.line == 1 {
                location.column += start.column.saturating_sub(1);
            }
            location.line += start.line.saturating_sub(1);
        }
    };
    let query = match statement {
        Statement::Select(query) => query,
        Statement::CreateAsSelect(create) => &mut create.query,
        Statement::InsertInto(insert) => {
            for part in insert.target.0.iter_mut() {
                if let datafusion::sql::sqlparser::ast::ObjectNamePart::Identifier(ident) = part {
                    shift(ident);
                }
            }
            &mut insert.query
        }
        Statement::CreateSource(create) => {
            create.columns.iter_mut().for_each(|column| shift(&mut column.name));
            return;
        }
        _ => return,
    };
    let _ = visit_expressions_mut(&mut query.query, |expr: &mut Expr| {
        match expr {
            Expr::Identifier(ident) => shift(ident),
            Expr::CompoundIdentifier(parts) => parts.iter_mut().for_each(shift),
            _ => {}
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
}

fn shift(mut error: ParseError, start: Location) -> ParseError {
    if error.line == 1 {
        error.column += start.column - 1;
    }
    error.line += start.line - 1;
    error
}
