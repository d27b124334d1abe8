//! A session: the one path every way in (the file runner now; the REPL and the HTTP server
//! later) executes statements through.
//!
//! [`Session::execute`] takes a script, splits it into statements, substitutes `${var}`
//! variables per statement (so a `DEFINE` applies to what follows it), parses, and runs each
//! statement against the catalog and the log, reporting each result as it comes. Statements
//! that change the catalog are appended to the command topic `_eddy_commands`, and a new
//! session replays that topic: streams, tables and types survive restarts.
//!
//! What runs today: CREATE STREAM/TABLE over a topic, CREATE/DROP TYPE, DROP, SHOW/LIST,
//! DESCRIBE, SET/UNSET, DEFINE/UNDEFINE, RUN SCRIPT. Queries and inserts parse but are
//! refused with "not supported yet" until the planner lands.

mod result;

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use datafusion::sql::sqlparser::tokenizer::Location;

pub use self::result::StatementResult;
use crate::catalog::{Catalog, ColumnRole, property_map, source_name};
use crate::log::{Log, LogError, NewRecord, TopicSpec, record::now_ms};
use crate::sql::ast::{Describe, DropSource, ShowTarget, SourceKind, Statement};
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
    /// The log failed under the statement.
    #[error("{0}")]
    Log(#[from] LogError),
}

impl SessionError {
    /// Where in the script the failing statement starts (or the parse error is).
    pub fn location(&self) -> Option<Location> {
        match self {
            SessionError::Parse(e) => Some(Location::new(e.line, e.column)),
            SessionError::Statement { at, .. } | SessionError::NotSupported { at, .. } => Some(*at),
            SessionError::Log(_) => None,
        }
    }

    /// True when the statement or its input is at fault (exit code 1), not Eddy or storage.
    pub fn is_user_error(&self) -> bool {
        match self {
            SessionError::Log(e) => e.is_user_error(),
            _ => true,
        }
    }
}

/// Session state: the catalog, properties set with `SET`, variables from `DEFINE`.
pub struct Session {
    log: Arc<dyn Log>,
    catalog: Catalog,
    properties: BTreeMap<String, String>,
    variables: BTreeMap<String, String>,
    /// Streaming statements (`PRINT`) stop at the end of the data present instead of
    /// waiting for more (`eddy run --until-idle`).
    until_idle: bool,
}

impl Session {
    /// Opens a session over `log`, replaying the command topic into the catalog.
    pub async fn open(log: Arc<dyn Log>) -> Result<Session, SessionError> {
        let mut session = Session {
            log,
            catalog: Catalog::default(),
            properties: BTreeMap::new(),
            variables: BTreeMap::new(),
            until_idle: false,
        };
        session.replay().await?;
        Ok(session)
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Makes streaming statements stop once they have caught up with the data present.
    pub fn set_until_idle(&mut self, until_idle: bool) {
        self.until_idle = until_idle;
    }

    /// Executes every statement of `script` in order, handing each result to `on_result`
    /// as it comes; stops at the first failure. Dropping the future cancels the statement
    /// running (a `PRINT` that follows its topic, say) without harm: catalog changes are
    /// made only after their command is logged.
    pub async fn execute(
        &mut self,
        script: &str,
        on_result: &mut (dyn FnMut(StatementResult) + Send),
    ) -> Result<(), SessionError> {
        self.execute_at_depth(script, on_result, 0).await
    }

    async fn execute_at_depth(
        &mut self,
        script: &str,
        on_result: &mut (dyn FnMut(StatementResult) + Send),
        depth: usize,
    ) -> Result<(), SessionError> {
        let tokens = tokenize(script).map_err(SessionError::Parse)?;
        let offsets = Offsets::new(script);
        for statement_tokens in split_statements(tokens) {
            let start = first_location(&statement_tokens);
            let end = statement_tokens.last().map_or(start, |t| t.span.end);
            let text = self.substitute(&script[offsets.byte(start)..offsets.byte(end)], start)?;
            let statement = parse_one(&text).map_err(|e| SessionError::Parse(shift(e, start)))?;
            let result = Box::pin(self.run(statement, start, on_result, depth)).await?;
            if let Some(result) = result {
                on_result(result);
            }
        }
        Ok(())
    }

    /// Replaces `${name}` with defined variables.
    fn substitute(&self, text: &str, at: Location) -> Result<String, SessionError> {
        if !text.contains("${") {
            return Ok(text.to_owned());
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(open) = rest.find("${") {
            out.push_str(&rest[..open]);
            let after = &rest[open + 2..];
            let Some(close) = after.find('}') else {
                out.push_str(&rest[open..]);
                return Ok(out);
            };
            let name = &after[..close];
            let value = self.variables.get(&name.to_lowercase()).ok_or_else(|| SessionError::Statement {
                message: format!("Variable '{name}' is not defined; DEFINE it first"),
                at,
            })?;
            out.push_str(value);
            rest = &after[close + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    async fn run(
        &mut self,
        statement: Statement,
        at: Location,
        on_result: &mut (dyn FnMut(StatementResult) + Send),
        depth: usize,
    ) -> Result<Option<StatementResult>, SessionError> {
        let refused = |message: String| SessionError::Statement { message, at };
        let not_yet = |what: &str| SessionError::NotSupported {
            what: what.to_owned(),
            hint: Some("queries and inserts arrive with the planner; see the README".into()),
            at,
        };
        let result = match statement {
            Statement::CreateSource(ref create) => {
                let text = statement.to_string();
                if create.if_not_exists && self.catalog.source(&source_name(&create.name)).is_some() {
                    return Ok(Some(StatementResult::status(format!(
                        "{} {} already exists",
                        kind_title(create.kind),
                        source_name(&create.name)
                    ))));
                }
                let source = self.catalog.plan_source(create, text.clone()).map_err(|e| refused(e.0))?;
                self.ensure_topic(create, &source.topic).await.map_err(|e| relocate(e, at))?;
                self.log_command(&text).await?;
                let message = format!("{} created", kind_title(source.kind));
                self.catalog.add_source(source);
                StatementResult::status(message)
            }
            Statement::Drop(ref drop) => {
                self.drop_source(drop, &statement.to_string()).await.map_err(|e| relocate(e, at))?
            }
            Statement::CreateType { if_not_exists, ref name, ref data_type } => {
                let name = resolved_name(name);
                if if_not_exists && self.catalog.has_type(&name) {
                    return Ok(Some(StatementResult::status(format!("Type {name} already exists"))));
                }
                self.catalog.add_type(name.clone(), data_type.clone()).map_err(|e| refused(e.0))?;
                self.log_command(&statement.to_string()).await?;
                StatementResult::status(format!("Registered custom type with name '{name}' and SQL type {data_type}"))
            }
            Statement::DropType { if_exists, ref name } => {
                let name = resolved_name(name);
                if self.catalog.remove_type(&name).is_none() {
                    if if_exists {
                        return Ok(Some(StatementResult::status(format!("Type {name} does not exist"))));
                    }
                    return Err(refused(format!("Type {name} does not exist.")));
                }
                self.log_command(&statement.to_string()).await?;
                StatementResult::status(format!("Dropped type '{name}'"))
            }
            Statement::Show(show) => self.show(show.target).await.map_err(|e| relocate(e, at))?,
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
            Statement::Describe(Describe::Function { .. }) => return Err(not_yet("DESCRIBE FUNCTION")),
            Statement::Set { name, value } => {
                if name == "auto.offset.reset" && !matches!(value.as_str(), "earliest" | "latest") {
                    return Err(refused(format!(
                        "Invalid value {value} for configuration auto.offset.reset: String must be one of: latest, earliest"
                    )));
                }
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
            Statement::RunScript { path } => {
                if depth >= MAX_SCRIPT_DEPTH {
                    return Err(refused(format!("RUN SCRIPT nests more than {MAX_SCRIPT_DEPTH} deep")));
                }
                let script =
                    std::fs::read_to_string(&path).map_err(|e| refused(format!("Cannot read script '{path}': {e}")))?;
                Box::pin(self.execute_at_depth(&script, on_result, depth + 1)).await?;
                return Ok(None);
            }
            Statement::CreateAsSelect(_) => return Err(not_yet("CREATE … AS SELECT")),
            Statement::InsertInto(_) => return Err(not_yet("INSERT INTO … SELECT")),
            Statement::InsertValues(insert) => {
                self.insert_values(&insert).await.map_err(|e| relocate(e, at))?;
                return Ok(None);
            }
            Statement::Select(_) => return Err(not_yet("SELECT")),
            Statement::Terminate(_) => return Err(not_yet("TERMINATE")),
            Statement::Explain(_) => return Err(not_yet("EXPLAIN")),
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

    /// Checks the source's topic exists, creating it when `PARTITIONS` is given.
    async fn ensure_topic(&self, create: &crate::sql::ast::CreateSource, topic: &str) -> Result<(), SessionError> {
        let properties = property_map(&create.properties).map_err(|e| refusal(e.0))?;
        let partitions = properties
            .get("PARTITIONS")
            .map(|p| p.parse::<u32>())
            .transpose()
            .map_err(|_| refusal("PARTITIONS must be a positive integer".into()))?;
        match self.log.partition_count(topic).await {
            Ok(existing) => match partitions {
                Some(wanted) if wanted != existing => Err(refusal(format!(
                    "A Kafka topic with the name '{topic}' already exists, with different partition/replica \
                     configuration than required. KSQL expects {wanted} partitions (topic has {existing})."
                ))),
                _ => Ok(()),
            },
            Err(LogError::UnknownTopic(_)) => {
                let Some(partitions) = partitions else {
                    return Err(refusal(format!(
                        "Topic '{topic}' does not exist. If you want to create a new topic for the \
                         stream/table please re-run the statement providing the required 'PARTITIONS' \
                         configuration in the WITH clause (and optionally 'REPLICAS')."
                    )));
                };
                let replicas = properties.get("REPLICAS").and_then(|r| r.parse::<u16>().ok()).unwrap_or(1);
                let mut spec = TopicSpec { partitions, replication_factor: replicas, configs: BTreeMap::new() };
                if let Some(retention) = properties.get("RETENTION_MS") {
                    spec.configs.insert("retention.ms".into(), retention.clone());
                }
                self.log.create_topic(topic, &spec).await.map_err(|e| match e {
                    e if e.is_user_error() => refusal(e.to_string()),
                    e => SessionError::Log(e),
                })
            }
            Err(e) => Err(SessionError::Log(e)),
        }
    }

    /// `INSERT INTO s [(columns)] VALUES (…)`: evaluates the values with DataFusion, casts
    /// them to the columns' types, encodes key and value in the source's formats and appends
    /// the record on the partition Kafka's partitioner picks for the key bytes. `ROWTIME`
    /// among the columns sets the record's timestamp.
    async fn insert_values(&self, insert: &crate::sql::ast::InsertValues) -> Result<(), SessionError> {
        use datafusion::arrow::array::{Array, ArrayRef, Int64Array, RecordBatch, RecordBatchOptions, new_null_array};
        use datafusion::arrow::compute::{CastOptions, cast_with_options};
        use datafusion::arrow::datatypes::DataType;

        let name = source_name(&insert.target);
        let source = self
            .catalog
            .source(&name)
            .cloned()
            .ok_or_else(|| refusal(format!("Cannot insert values into an unknown stream/table: {name}")))?;
        let targets: Vec<String> = if insert.columns.is_empty() {
            source
                .columns
                .iter()
                .filter(|c| matches!(c.role, ColumnRole::Key | ColumnRole::Value))
                .map(|c| c.name.clone())
                .collect()
        } else {
            insert.columns.iter().map(resolved_name).collect()
        };
        if targets.len() != insert.values.len() {
            let got: Vec<String> = insert.values.iter().map(|v| v.to_string()).collect();
            return Err(refusal(format!(
                "Expected a value for each column. Expected Columns: [{}]. Got [{}]",
                targets.join(", "),
                got.join(", ")
            )));
        }
        // Evaluate every value in one row with DataFusion (literals, arithmetic, functions).
        let projection: Vec<String> = insert.values.iter().enumerate().map(|(i, v)| format!("{v} AS v{i}")).collect();
        let select = format!("SELECT {}", projection.join(", "));
        let evaluation = async {
            let frame = datafusion::prelude::SessionContext::new().sql(&select).await?;
            frame.collect().await
        };
        let batches = evaluation.await.map_err(|e| refusal(format!("Failed to evaluate the values: {e}")))?;
        let row = batches
            .into_iter()
            .find(|b| b.num_rows() == 1)
            .ok_or_else(|| refusal("Failed to evaluate the values: no row".into()))?;

        let strict = CastOptions { safe: false, ..Default::default() };
        let mut timestamp_ms = crate::log::record::now_ms();
        let mut values: BTreeMap<String, ArrayRef> = BTreeMap::new();
        for (i, target) in targets.iter().enumerate() {
            let given = row.column(i);
            if target == "ROWTIME" {
                let as_millis = cast_with_options(given, &DataType::Int64, &strict)
                    .map_err(|_| refusal(format!("ROWTIME must be a BIGINT, got {}", given.data_type())))?;
                let millis = as_millis.as_any().downcast_ref::<Int64Array>().filter(|a| !a.is_null(0));
                timestamp_ms = millis.map(|a| a.value(0)).ok_or_else(|| refusal("ROWTIME cannot be null".into()))?;
                continue;
            }
            let column = source
                .columns
                .iter()
                .find(|c| c.name == *target)
                .ok_or_else(|| refusal(format!("Column name {target} does not exist.")))?;
            if !matches!(column.role, ColumnRole::Key | ColumnRole::Value) {
                return Err(refusal(format!("Cannot insert into HEADER columns: {target}")));
            }
            let typed = cast_with_options(given, &column.data_type, &strict).map_err(|_| {
                refusal(format!("Expected type {} for field {target} but got {}", column.sql_type, insert.values[i]))
            })?;
            if values.insert(target.clone(), typed).is_some() {
                return Err(refusal(format!("Column {target} is given more than once")));
            }
        }
        let one_row = |codec: &crate::format::Codec| -> Result<RecordBatch, SessionError> {
            let columns: Vec<ArrayRef> = codec
                .schema()
                .fields()
                .iter()
                .map(|f| values.get(f.name()).cloned().unwrap_or_else(|| new_null_array(f.data_type(), 1)))
                .collect();
            RecordBatch::try_new_with_options(
                codec.schema().clone(),
                columns,
                &RecordBatchOptions::new().with_row_count(Some(1)),
            )
            .map_err(|e| refusal(e.to_string()))
        };
        let encode = |codec: &crate::format::Codec| -> Result<Option<Bytes>, SessionError> {
            let mut encoded = codec.encode(&one_row(codec)?).map_err(|e| refusal(e.0))?;
            Ok(encoded.pop().flatten().map(Bytes::from))
        };
        let key = encode(&source.key_codec)?;
        let value = encode(&source.value_codec)?;
        let mut producer = crate::log::Producer::new(Arc::clone(&self.log), &source.topic).await?;
        producer.send(NewRecord::new(timestamp_ms, key, value), None)?;
        producer.flush().await?;
        Ok(())
    }

    /// `PRINT`: the topic's records as ksqlDB prints them, following new ones until
    /// cancelled (or until caught up, with `until_idle`).
    async fn print(
        &self,
        print: &crate::sql::ast::Print,
        on_result: &mut (dyn FnMut(StatementResult) + Send),
    ) -> Result<(), SessionError> {
        let topic = self.find_topic(&print.topic).await?;
        let partitions = self.log.partition_count(&topic).await?;
        let mut positions = Vec::with_capacity(partitions as usize);
        for partition in 0..partitions {
            let start = if print.from_beginning {
                self.log.earliest_offset(&topic, partition).await?
            } else {
                self.log.latest_offset(&topic, partition).await?
            };
            positions.push((partition, start));
        }
        let interval = print.interval.unwrap_or(1).max(1);
        let (mut seen, mut printed) = (0u64, 0u64);
        loop {
            let mut progressed = false;
            for (partition, position) in positions.iter_mut() {
                let fetch = self.log.read(&topic, *partition, *position, 256 * 1024).await?;
                for record in &fetch.records {
                    *position = record.offset + 1;
                    progressed = true;
                    seen += 1;
                    if (seen - 1) % interval != 0 {
                        continue;
                    }
                    on_result(StatementResult::Line(print_line(record, *partition)));
                    printed += 1;
                    if print.limit.is_some_and(|limit| printed >= limit) {
                        return Ok(());
                    }
                }
            }
            if progressed {
                continue;
            }
            if self.until_idle {
                return Ok(());
            }
            crate::log::wait_for_any(self.log.as_ref(), &topic, &positions, std::time::Duration::from_secs(1)).await?;
        }
    }

    /// A topic by exact name, else by a unique case-insensitive match (`PRINT orders`).
    async fn find_topic(&self, name: &str) -> Result<String, SessionError> {
        let topics = self.log.list_topics().await?;
        if topics.iter().any(|t| t == name) {
            return Ok(name.to_owned());
        }
        let matches: Vec<&String> = topics.iter().filter(|t| t.eq_ignore_ascii_case(name)).collect();
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            _ => Err(refusal(format!(
                "Could not find topic '{name}'. Topic names are case-sensitive; SHOW TOPICS lists them."
            ))),
        }
    }

    async fn drop_source(&mut self, drop: &DropSource, text: &str) -> Result<StatementResult, SessionError> {
        let name = source_name(&drop.name);
        let Some(source) = self.catalog.source(&name).cloned() else {
            if drop.if_exists {
                return Ok(StatementResult::status(format!("Source `{name}` does not exist.")));
            }
            return Err(refusal(format!("Source {name} does not exist.")));
        };
        if source.kind != drop.kind {
            let (is, not) = (source.kind_name(), kind_title(drop.kind).to_uppercase());
            return Err(refusal(format!("Incompatible data source type is {is}, but statement was DROP {not}")));
        }
        self.log_command(text).await?;
        self.catalog.remove_source(&name);
        if drop.delete_topic {
            match self.log.delete_topic(&source.topic).await {
                Ok(()) | Err(LogError::UnknownTopic(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(StatementResult::status(format!("Source `{name}` (topic: {}) was dropped.", source.topic)))
    }

    async fn show(&self, target: ShowTarget) -> Result<StatementResult, SessionError> {
        let sources = |kind: SourceKind| -> Vec<Vec<String>> {
            self.catalog
                .sources()
                .filter(|s| s.kind == kind)
                .map(|s| {
                    vec![
                        s.name.clone(),
                        s.topic.clone(),
                        s.key_format.name().into(),
                        s.value_format.name().into(),
                        "false".into(),
                    ]
                })
                .collect()
        };
        Ok(match target {
            ShowTarget::Streams => StatementResult::table(
                &["Stream Name", "Kafka Topic", "Key Format", "Value Format", "Windowed"],
                sources(SourceKind::Stream),
            ),
            ShowTarget::Tables => StatementResult::table(
                &["Table Name", "Kafka Topic", "Key Format", "Value Format", "Windowed"],
                sources(SourceKind::Table),
            ),
            ShowTarget::Topics | ShowTarget::AllTopics => {
                let mut rows = Vec::new();
                for topic in self.log.list_topics().await? {
                    if target == ShowTarget::Topics && topic.starts_with('_') {
                        continue; // internal topics show with SHOW ALL TOPICS
                    }
                    let partitions = self.log.partition_count(&topic).await?;
                    rows.push(vec![topic, partitions.to_string(), "1".into()]);
                }
                StatementResult::table(&["Kafka Topic", "Partitions", "Partition Replicas"], rows)
            }
            ShowTarget::Properties => {
                let mut properties = BTreeMap::from([("auto.offset.reset".to_string(), "latest".to_string())]);
                properties.extend(self.properties.iter().map(|(k, v)| (k.clone(), v.clone())));
                let rows = properties.into_iter().map(|(k, v)| vec![k, "SESSION".into(), v]).collect();
                StatementResult::table(&["Property", "Scope", "Value"], rows)
            }
            ShowTarget::Variables => StatementResult::table(
                &["Variable Name", "Value"],
                self.variables.iter().map(|(k, v)| vec![k.clone(), v.clone()]).collect(),
            ),
            ShowTarget::Types => StatementResult::table(
                &["Type Name", "Schema"],
                self.catalog.types().map(|(k, v)| vec![k.clone(), v.to_string()]).collect(),
            ),
            // No persistent query can run yet, so there are none to list.
            ShowTarget::Queries => {
                StatementResult::table(&["Query ID", "Query Type", "Status", "Sink Name", "Query String"], Vec::new())
            }
            ShowTarget::Functions => {
                return Err(SessionError::NotSupported {
                    what: "SHOW FUNCTIONS".into(),
                    hint: Some("functions arrive with the planner".into()),
                    at: Location::new(1, 1),
                });
            }
        })
    }

    async fn describe(&self, source: &crate::catalog::Source, extended: bool) -> Result<StatementResult, SessionError> {
        let rows = source
            .columns
            .iter()
            .map(|c| {
                let role = match &c.role {
                    ColumnRole::Key if source.kind == SourceKind::Table => " (primary key)".to_string(),
                    ColumnRole::Key => " (key)".to_string(),
                    ColumnRole::Value => String::new(),
                    ColumnRole::Headers => " (headers)".to_string(),
                    ColumnRole::Header(k) => format!(" (header('{k}'))"),
                };
                vec![c.name.clone(), format!("{}{role}", c.sql_type)]
            })
            .collect();
        let mut title = format!(
            "Name: {}\nType: {}\nKafka topic: {}\nKey format: {}\nValue format: {}",
            source.name,
            source.kind_name(),
            source.topic,
            source.key_format.name(),
            source.value_format.name()
        );
        if let Some(column) = &source.timestamp_column {
            title.push_str(&format!("\nTimestamp field: {column}"));
        }
        if extended {
            let description = self.log.describe_topic(&source.topic).await;
            match description {
                Ok(topic) => {
                    let records: u64 = topic.partitions.iter().map(|p| p.latest_offset - p.earliest_offset).sum();
                    title.push_str(&format!(
                        "\nPartitions: {}\nRecords in topic: {records}\nStatement: {}",
                        topic.partitions.len(),
                        source.statement
                    ));
                }
                Err(e) => title.push_str(&format!("\nTopic: unavailable ({e})")),
            }
        }
        Ok(StatementResult::Table { title: Some(title), columns: vec!["Field".into(), "Type".into()], rows })
    }

    /// Appends a catalog-changing statement to the command topic.
    async fn log_command(&self, statement: &str) -> Result<(), SessionError> {
        match self.log.partition_count(COMMAND_TOPIC).await {
            Ok(_) => {}
            Err(LogError::UnknownTopic(_)) => {
                let spec = TopicSpec::new(1).with_config("retention.ms", "-1");
                match self.log.create_topic(COMMAND_TOPIC, &spec).await {
                    Ok(()) | Err(LogError::TopicExists(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        }
        let value = serde_json::json!({ "statement": statement }).to_string();
        let record = NewRecord::new(now_ms(), None, Some(Bytes::from(value)));
        self.log.append(COMMAND_TOPIC, 0, &[record]).await?;
        Ok(())
    }

    /// Rebuilds the catalog from the command topic. A command that no longer applies is
    /// logged and skipped, never fatal: the rest of the catalog still comes back.
    async fn replay(&mut self) -> Result<(), SessionError> {
        let end = match self.log.latest_offset(COMMAND_TOPIC, 0).await {
            Ok(end) => end,
            Err(LogError::UnknownTopic(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let mut offset = self.log.earliest_offset(COMMAND_TOPIC, 0).await?;
        while offset < end {
            let fetch = self.log.read(COMMAND_TOPIC, 0, offset, 1024 * 1024).await?;
            let Some(last) = fetch.records.last().map(|r| r.offset) else { break };
            for record in &fetch.records {
                if let Err(reason) = self.replay_command(record.value.as_deref().unwrap_or_default()) {
                    tracing::warn!(offset = record.offset, %reason, "skipping a command that no longer applies");
                }
            }
            offset = last + 1;
        }
        Ok(())
    }

    fn replay_command(&mut self, value: &[u8]) -> Result<(), String> {
        let command: serde_json::Value = serde_json::from_slice(value).map_err(|e| e.to_string())?;
        let text = command["statement"].as_str().ok_or("no statement")?;
        match parse_one(text).map_err(|e| e.to_string())? {
            Statement::CreateSource(create) => {
                let source = self.catalog.plan_source(&create, text.to_owned()).map_err(|e| e.0)?;
                self.catalog.add_source(source);
            }
            Statement::Drop(drop) => {
                self.catalog.remove_source(&source_name(&drop.name));
            }
            Statement::CreateType { name, data_type, .. } => {
                self.catalog.add_type(resolved_name(&name), data_type).map_err(|e| e.0)?;
            }
            Statement::DropType { name, .. } => {
                self.catalog.remove_type(&resolved_name(&name));
            }
            other => return Err(format!("not a catalog command: {other}")),
        }
        Ok(())
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
        other => other,
    }
}

/// One record as ksqlDB's PRINT shows it.
fn print_line(record: &crate::log::Record, partition: u32) -> String {
    let time = datafusion::arrow::temporal_conversions::timestamp_ms_to_datetime(record.timestamp_ms)
        .map_or_else(|| record.timestamp_ms.to_string(), |t| t.format("%Y/%m/%d %H:%M:%S%.3f Z").to_string());
    fn text(bytes: &Option<Bytes>) -> std::borrow::Cow<'_, str> {
        bytes.as_deref().map_or("<null>".into(), String::from_utf8_lossy)
    }
    format!("rowtime: {time}, key: {}, value: {}, partition: {partition}", text(&record.key), text(&record.value))
}

/// Moves a position within a statement to its position within the script.
fn shift(mut error: ParseError, start: Location) -> ParseError {
    if error.line == 1 {
        error.column += start.column - 1;
    }
    error.line += start.line - 1;
    error
}
