//! Eddy's statements: ksqlDB's own beside `Sql(Box<sqlparser::ast::Statement>)` for the rest.
//! Every node prints back to SQL (`Display`) that parses to the same node.

use std::fmt;

use datafusion::sql::sqlparser::ast::{Expr, Ident, ObjectName, Query, Statement as SqlStatement, Value};
use datafusion::sql::sqlparser::tokenizer::Token;

use super::lexer::{Offsets, is_word, tokenize};

/// One statement of the ksqlDB dialect.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    /// `CREATE [OR REPLACE] [SOURCE] STREAM|TABLE [IF NOT EXISTS] name (columns) WITH (…)`
    CreateSource(CreateSource),
    /// `CREATE [OR REPLACE] STREAM|TABLE [IF NOT EXISTS] name [WITH (…)] AS SELECT …`
    CreateAsSelect(CreateAsSelect),
    /// `INSERT INTO name [WITH (…)] SELECT …`
    InsertInto(InsertInto),
    /// `INSERT INTO name [(columns)] VALUES (…)`
    InsertValues(InsertValues),
    /// A push or pull query: `SELECT … [EMIT CHANGES|FINAL] [LIMIT n]`
    Select(Box<StreamingQuery>),
    /// `DROP STREAM|TABLE [IF EXISTS] name [DELETE TOPIC]`
    Drop(DropSource),
    /// `TERMINATE query_id` or `TERMINATE ALL`
    Terminate(Terminate),
    /// `SHOW|LIST …`
    Show(Show),
    Describe(Describe),
    /// `EXPLAIN query_id` or `EXPLAIN statement`
    Explain(Explain),
    /// `PRINT topic [FROM BEGINNING] [INTERVAL n] [LIMIT n]`
    Print(Print),
    /// `SET 'name' = 'value'`
    Set {
        name: String,
        value: String,
    },
    /// `UNSET 'name'`
    Unset {
        name: String,
    },
    /// `DEFINE name = 'value'`
    Define {
        name: Ident,
        value: String,
    },
    /// `UNDEFINE name`
    Undefine {
        name: Ident,
    },
    /// `RUN SCRIPT 'path'`
    RunScript {
        path: String,
    },
    /// `CREATE TYPE [IF NOT EXISTS] name AS type`
    CreateType {
        if_not_exists: bool,
        name: Ident,
        data_type: SqlType,
    },
    /// `DROP TYPE [IF EXISTS] name`
    DropType {
        if_exists: bool,
        name: Ident,
    },
    /// `CREATE SOURCE|SINK CONNECTOR [IF NOT EXISTS] name WITH (…)`
    CreateConnector(CreateConnector),
    /// `DROP CONNECTOR [IF EXISTS] name`
    DropConnector {
        if_exists: bool,
        name: Ident,
    },
    /// Anything else sqlparser understands.
    Sql(Box<SqlStatement>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Stream,
    Table,
}

impl SourceKind {
    /// `STREAM` or `TABLE`, as statements spell it.
    pub fn keyword(self) -> &'static str {
        match self {
            SourceKind::Stream => "STREAM",
            SourceKind::Table => "TABLE",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CreateSource {
    pub or_replace: bool,
    /// `CREATE SOURCE TABLE`: read-only, materialised for pull queries.
    pub source: bool,
    pub kind: SourceKind,
    pub if_not_exists: bool,
    pub name: ObjectName,
    pub columns: Vec<ColumnDef>,
    pub properties: Properties,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CreateAsSelect {
    pub or_replace: bool,
    pub kind: SourceKind,
    pub if_not_exists: bool,
    pub name: ObjectName,
    pub properties: Properties,
    pub query: Box<StreamingQuery>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InsertInto {
    pub target: ObjectName,
    pub properties: Properties,
    pub query: Box<StreamingQuery>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InsertValues {
    pub target: ObjectName,
    pub columns: Vec<Ident>,
    pub values: Vec<Expr>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ColumnDef {
    pub name: Ident,
    pub data_type: SqlType,
    pub constraint: ColumnConstraint,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnConstraint {
    None,
    /// `KEY` (streams)
    Key,
    /// `PRIMARY KEY` (tables)
    PrimaryKey,
    /// `HEADERS`: all headers, as `ARRAY<STRUCT<KEY STRING, VALUE BYTES>>`
    Headers,
    /// `HEADER('k')`: the last header with key `k`, as `BYTES`
    Header(String),
}

/// ksqlDB's column types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlType {
    Boolean,
    Int,
    Bigint,
    Double,
    Decimal {
        precision: u64,
        scale: u64,
    },
    String,
    Bytes,
    Timestamp,
    Date,
    Time,
    Array(Box<SqlType>),
    Map(Box<SqlType>, Box<SqlType>),
    Struct(Vec<(Ident, SqlType)>),
    /// A type declared with `CREATE TYPE`.
    Custom(Ident),
}

/// `WITH (NAME = value, …)`; names are kept as written and compared case-insensitively.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Properties(pub Vec<(Ident, Value)>);

impl Properties {
    /// The value of property `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k.value.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A query with ksqlDB's clauses beside the standard part sqlparser parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamingQuery {
    pub query: Box<Query>,
    pub window: Option<WindowSpec>,
    pub partition_by: Vec<Expr>,
    pub emit: Option<Emit>,
    /// `WITHIN` of the joins, by join number (0 = the first JOIN).
    pub within: Vec<(usize, Within)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emit {
    Changes,
    Final,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowSpec {
    pub kind: WindowKind,
    pub retention: Option<TimeSpan>,
    pub grace_period: Option<TimeSpan>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WindowKind {
    Tumbling { size: TimeSpan },
    Hopping { size: TimeSpan, advance_by: TimeSpan },
    Session { gap: TimeSpan },
}

/// `WITHIN n unit` (before = after) or `WITHIN (before, after)`, optional grace period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Within {
    pub before: TimeSpan,
    pub after: Option<TimeSpan>,
    pub grace_period: Option<TimeSpan>,
}

/// A duration as written: `10 SECONDS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeSpan {
    pub amount: u64,
    pub unit: TimeUnit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    Millisecond,
    Second,
    Minute,
    Hour,
    Day,
}

impl TimeUnit {
    /// Parses `MILLISECOND(S)`, `SECOND(S)`, `MINUTE(S)`, `HOUR(S)`, `DAY(S)`.
    pub fn parse(word: &str) -> Option<TimeUnit> {
        let upper = word.to_ascii_uppercase();
        let singular = upper.strip_suffix('S').unwrap_or(&upper);
        Some(match singular {
            "MILLISECOND" => TimeUnit::Millisecond,
            "SECOND" => TimeUnit::Second,
            "MINUTE" => TimeUnit::Minute,
            "HOUR" => TimeUnit::Hour,
            "DAY" => TimeUnit::Day,
            _ => return None,
        })
    }

    pub fn millis(self) -> u64 {
        match self {
            TimeUnit::Millisecond => 1,
            TimeUnit::Second => 1000,
            TimeUnit::Minute => 60_000,
            TimeUnit::Hour => 3_600_000,
            TimeUnit::Day => 86_400_000,
        }
    }
}

impl TimeSpan {
    pub fn millis(self) -> u64 {
        self.amount.saturating_mul(self.unit.millis())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DropSource {
    pub kind: SourceKind,
    pub if_exists: bool,
    pub name: ObjectName,
    pub delete_topic: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Terminate {
    Query(String),
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShowTarget {
    Streams,
    Tables,
    Topics,
    AllTopics,
    Queries,
    Properties,
    Functions,
    Types,
    Variables,
    Connectors(ConnectorScope),
}

/// Which connectors `SHOW CONNECTORS` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectorScope {
    All,
    Source,
    Sink,
}

/// A connector's direction: into topics (a source) or out of them (a sink).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConnectorKind {
    Source,
    Sink,
}

impl ConnectorKind {
    pub fn keyword(self) -> &'static str {
        match self {
            ConnectorKind::Source => "SOURCE",
            ConnectorKind::Sink => "SINK",
        }
    }
}

/// `CREATE SOURCE|SINK CONNECTOR [IF NOT EXISTS] name WITH (…)`
#[derive(Debug, Clone, PartialEq)]
pub struct CreateConnector {
    pub kind: ConnectorKind,
    pub if_not_exists: bool,
    pub name: Ident,
    pub properties: Properties,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Show {
    pub target: ShowTarget,
    pub extended: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Describe {
    Source { name: ObjectName, extended: bool },
    Function { name: Ident },
    Streams { extended: bool },
    Tables { extended: bool },
    Connector { name: Ident },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Explain {
    Query(String),
    Statement(Box<Statement>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Print {
    pub topic: String,
    pub from_beginning: bool,
    pub interval: Option<u64>,
    pub limit: Option<u64>,
}

// ---- printing ----------------------------------------------------------------------------

/// A string literal in single quotes, quotes doubled.
pub struct Quoted<'a>(pub &'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}'", self.0.replace('\'', "''"))
    }
}

fn comma_list<T: fmt::Display>(f: &mut fmt::Formatter<'_>, items: &[T]) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{item}")?;
    }
    Ok(())
}

impl fmt::Display for Properties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WITH (")?;
        for (i, (name, value)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{name}={value}")?;
        }
        f.write_str(")")
    }
}

impl fmt::Display for SqlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SqlType::Boolean => f.write_str("BOOLEAN"),
            SqlType::Int => f.write_str("INTEGER"),
            SqlType::Bigint => f.write_str("BIGINT"),
            SqlType::Double => f.write_str("DOUBLE"),
            SqlType::Decimal { precision, scale } => write!(f, "DECIMAL({precision}, {scale})"),
            SqlType::String => f.write_str("STRING"),
            SqlType::Bytes => f.write_str("BYTES"),
            SqlType::Timestamp => f.write_str("TIMESTAMP"),
            SqlType::Date => f.write_str("DATE"),
            SqlType::Time => f.write_str("TIME"),
            SqlType::Array(item) => write!(f, "ARRAY<{item}>"),
            SqlType::Map(key, value) => write!(f, "MAP<{key}, {value}>"),
            SqlType::Struct(fields) => {
                f.write_str("STRUCT<")?;
                for (i, (name, t)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{name} {t}")?;
                }
                f.write_str(">")
            }
            SqlType::Custom(name) => write!(f, "{name}"),
        }
    }
}

impl fmt::Display for ColumnDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name, self.data_type)?;
        match &self.constraint {
            ColumnConstraint::None => Ok(()),
            ColumnConstraint::Key => f.write_str(" KEY"),
            ColumnConstraint::PrimaryKey => f.write_str(" PRIMARY KEY"),
            ColumnConstraint::Headers => f.write_str(" HEADERS"),
            ColumnConstraint::Header(key) => write!(f, " HEADER({})", Quoted(key)),
        }
    }
}

impl fmt::Display for TimeSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.unit {
            TimeUnit::Millisecond => "MILLISECOND",
            TimeUnit::Second => "SECOND",
            TimeUnit::Minute => "MINUTE",
            TimeUnit::Hour => "HOUR",
            TimeUnit::Day => "DAY",
        };
        write!(f, "{} {unit}{}", self.amount, if self.amount == 1 { "" } else { "S" })
    }
}

impl fmt::Display for WindowSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            WindowKind::Tumbling { size } => write!(f, "TUMBLING (SIZE {size}")?,
            WindowKind::Hopping { size, advance_by } => write!(f, "HOPPING (SIZE {size}, ADVANCE BY {advance_by}")?,
            WindowKind::Session { gap } => write!(f, "SESSION ({gap}")?,
        }
        if let Some(retention) = &self.retention {
            write!(f, ", RETENTION {retention}")?;
        }
        if let Some(grace) = &self.grace_period {
            write!(f, ", GRACE PERIOD {grace}")?;
        }
        f.write_str(")")
    }
}

impl fmt::Display for Within {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.after {
            None => write!(f, "WITHIN {}", self.before)?,
            Some(after) => write!(f, "WITHIN ({}, {after})", self.before)?,
        }
        if let Some(grace) = &self.grace_period {
            write!(f, " GRACE PERIOD {grace}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Emit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Emit::Changes => "EMIT CHANGES",
            Emit::Final => "EMIT FINAL",
        })
    }
}

impl fmt::Display for StreamingQuery {
    /// Prints the standard query with sqlparser, then splices ksqlDB's clauses in at the
    /// places the grammar puts them: `FROM … [JOIN … WITHIN …] [WINDOW …] [WHERE …]
    /// [GROUP BY …] [PARTITION BY …] [HAVING …] [EMIT …] [LIMIT …]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let standard = self.query.to_string();
        let mut inserts: Vec<(usize, u8, String)> = Vec::new();
        let tokens = tokenize(&standard).unwrap_or_default();
        let offsets = Offsets::new(&standard);
        let offset_of = |i: usize| offsets.byte(tokens[i].span.start);
        // Depth-0 word positions, from the FROM on.
        let mut depth = 0i64;
        let mut words: Vec<(usize, &Token)> = Vec::new();
        for (i, t) in tokens.iter().enumerate() {
            match t.token {
                Token::LParen => depth += 1,
                Token::RParen => depth -= 1,
                Token::Word(_) if depth == 0 => words.push((i, &t.token)),
                _ => {}
            }
        }
        let from = words.iter().position(|(_, t)| is_word(t, "FROM")).unwrap_or(words.len());
        let first_after_from = |stops: &[&str]| -> usize {
            words[from..]
                .iter()
                .find(|(_, t)| stops.iter().any(|s| is_word(t, s)))
                .map_or(standard.len(), |(i, _)| offset_of(*i))
        };
        if let Some(window) = &self.window {
            inserts.push((
                first_after_from(&["WHERE", "GROUP", "HAVING", "LIMIT", "ORDER"]),
                0,
                format!("WINDOW {window} "),
            ));
        }
        if !self.partition_by.is_empty() {
            let exprs: Vec<String> = self.partition_by.iter().map(|e| e.to_string()).collect();
            inserts.push((
                first_after_from(&["HAVING", "LIMIT", "ORDER"]),
                1,
                format!("PARTITION BY {} ", exprs.join(", ")),
            ));
        }
        if let Some(emit) = &self.emit {
            inserts.push((first_after_from(&["LIMIT"]), 2, format!("{emit} ")));
        }
        for (join, within) in &self.within {
            let joins: Vec<usize> =
                words.iter().enumerate().filter(|(_, (_, t))| is_word(t, "JOIN")).map(|(k, _)| k).collect();
            let Some(&k) = joins.get(*join) else { continue };
            let on = words[k..].iter().find(|(_, t)| is_word(t, "ON")).map_or(standard.len(), |(i, _)| offset_of(*i));
            inserts.push((on, 3, format!("{within} ")));
        }
        inserts.sort_by_key(|(at, order, _)| (*at, *order));
        let mut out = String::with_capacity(standard.len() + 64);
        let mut last = 0;
        for (at, _, text) in inserts {
            out.push_str(&standard[last..at]);
            if at == standard.len() && !out.ends_with(' ') {
                out.push(' ');
            }
            out.push_str(&text);
            last = at;
        }
        out.push_str(&standard[last..]);
        f.write_str(out.trim_end())
    }
}

impl fmt::Display for Statement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = StatementText(self).to_string();
        if text.contains("lambda ") { f.write_str(&ksql_lambdas(&text)) } else { f.write_str(&text) }
    }
}

/// Rewrites the lambdas sqlparser prints (`lambda x, y : body`) into ksqlDB's form
/// (`(x, y) => body`; `x => body` for one parameter).
fn ksql_lambdas(text: &str) -> String {
    let Ok(tokens) = tokenize(text) else { return text.to_owned() };
    let offsets = Offsets::new(text);
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < tokens.len() {
        let is_lambda = matches!(&tokens[i].token, Token::Word(w) if w.quote_style.is_none() && w.value == "lambda");
        if !is_lambda {
            i += 1;
            continue;
        }
        let mut params = Vec::new();
        let mut j = i + 1;
        while j < tokens.len() && tokens[j].token != Token::Colon {
            if let Token::Word(_) = &tokens[j].token {
                params.push(tokens[j].token.to_string());
            }
            j += 1;
        }
        if j == tokens.len() {
            break;
        }
        let start = offsets.byte(tokens[i].span.start);
        let end = offsets.byte(tokens[j].span.end);
        out.push_str(&text[copied..start]);
        if params.len() == 1 {
            out.push_str(&format!("{} =>", params[0]));
        } else {
            out.push_str(&format!("({}) =>", params.join(", ")));
        }
        copied = end;
        i = j + 1;
    }
    out.push_str(&text[copied..]);
    out
}

/// A statement printed as sqlparser prints its parts.
struct StatementText<'a>(&'a Statement);

impl fmt::Display for StatementText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Statement::CreateSource(c) => {
                f.write_str("CREATE ")?;
                if c.or_replace {
                    f.write_str("OR REPLACE ")?;
                }
                if c.source {
                    f.write_str("SOURCE ")?;
                }
                write!(f, "{} ", c.kind.keyword())?;
                if c.if_not_exists {
                    f.write_str("IF NOT EXISTS ")?;
                }
                write!(f, "{}", c.name)?;
                if !c.columns.is_empty() {
                    f.write_str(" (")?;
                    comma_list(f, &c.columns)?;
                    f.write_str(")")?;
                }
                if !c.properties.is_empty() {
                    write!(f, " {}", c.properties)?;
                }
                Ok(())
            }
            Statement::CreateAsSelect(c) => {
                f.write_str("CREATE ")?;
                if c.or_replace {
                    f.write_str("OR REPLACE ")?;
                }
                write!(f, "{} ", c.kind.keyword())?;
                if c.if_not_exists {
                    f.write_str("IF NOT EXISTS ")?;
                }
                write!(f, "{}", c.name)?;
                if !c.properties.is_empty() {
                    write!(f, " {}", c.properties)?;
                }
                write!(f, " AS {}", c.query)
            }
            Statement::InsertInto(i) => {
                write!(f, "INSERT INTO {}", i.target)?;
                if !i.properties.is_empty() {
                    write!(f, " {}", i.properties)?;
                }
                write!(f, " {}", i.query)
            }
            Statement::InsertValues(i) => {
                write!(f, "INSERT INTO {}", i.target)?;
                if !i.columns.is_empty() {
                    f.write_str(" (")?;
                    comma_list(f, &i.columns)?;
                    f.write_str(")")?;
                }
                f.write_str(" VALUES (")?;
                comma_list(f, &i.values)?;
                f.write_str(")")
            }
            Statement::Select(q) => write!(f, "{q}"),
            Statement::Drop(d) => {
                write!(f, "DROP {} ", d.kind.keyword())?;
                if d.if_exists {
                    f.write_str("IF EXISTS ")?;
                }
                write!(f, "{}", d.name)?;
                if d.delete_topic {
                    f.write_str(" DELETE TOPIC")?;
                }
                Ok(())
            }
            Statement::Terminate(Terminate::All) => f.write_str("TERMINATE ALL"),
            Statement::Terminate(Terminate::Query(id)) => write!(f, "TERMINATE {id}"),
            Statement::Show(s) => {
                let target = match s.target {
                    ShowTarget::Streams => "STREAMS",
                    ShowTarget::Tables => "TABLES",
                    ShowTarget::Topics => "TOPICS",
                    ShowTarget::AllTopics => "ALL TOPICS",
                    ShowTarget::Queries => "QUERIES",
                    ShowTarget::Properties => "PROPERTIES",
                    ShowTarget::Functions => "FUNCTIONS",
                    ShowTarget::Types => "TYPES",
                    ShowTarget::Variables => "VARIABLES",
                    ShowTarget::Connectors(ConnectorScope::All) => "CONNECTORS",
                    ShowTarget::Connectors(ConnectorScope::Source) => "SOURCE CONNECTORS",
                    ShowTarget::Connectors(ConnectorScope::Sink) => "SINK CONNECTORS",
                };
                write!(f, "SHOW {target}{}", if s.extended { " EXTENDED" } else { "" })
            }
            Statement::Describe(d) => match d {
                Describe::Source { name, extended } => {
                    write!(f, "DESCRIBE {}{name}", if *extended { "EXTENDED " } else { "" })
                }
                Describe::Function { name } => write!(f, "DESCRIBE FUNCTION {name}"),
                Describe::Streams { extended } => {
                    write!(f, "DESCRIBE STREAMS{}", if *extended { " EXTENDED" } else { "" })
                }
                Describe::Tables { extended } => {
                    write!(f, "DESCRIBE TABLES{}", if *extended { " EXTENDED" } else { "" })
                }
                Describe::Connector { name } => write!(f, "DESCRIBE CONNECTOR {name}"),
            },
            Statement::Explain(Explain::Query(id)) => write!(f, "EXPLAIN {id}"),
            Statement::Explain(Explain::Statement(s)) => write!(f, "EXPLAIN {s}"),
            Statement::Print(p) => {
                write!(f, "PRINT {}", Quoted(&p.topic))?;
                if p.from_beginning {
                    f.write_str(" FROM BEGINNING")?;
                }
                if let Some(n) = p.interval {
                    write!(f, " INTERVAL {n}")?;
                }
                if let Some(n) = p.limit {
                    write!(f, " LIMIT {n}")?;
                }
                Ok(())
            }
            Statement::Set { name, value } => write!(f, "SET {}={}", Quoted(name), Quoted(value)),
            Statement::Unset { name } => write!(f, "UNSET {}", Quoted(name)),
            Statement::Define { name, value } => write!(f, "DEFINE {name}={}", Quoted(value)),
            Statement::Undefine { name } => write!(f, "UNDEFINE {name}"),
            Statement::RunScript { path } => write!(f, "RUN SCRIPT {}", Quoted(path)),
            Statement::CreateType { if_not_exists, name, data_type } => {
                write!(f, "CREATE TYPE {}{name} AS {data_type}", if *if_not_exists { "IF NOT EXISTS " } else { "" })
            }
            Statement::DropType { if_exists, name } => {
                write!(f, "DROP TYPE {}{name}", if *if_exists { "IF EXISTS " } else { "" })
            }
            Statement::CreateConnector(c) => {
                write!(f, "CREATE {} CONNECTOR ", c.kind.keyword())?;
                if c.if_not_exists {
                    f.write_str("IF NOT EXISTS ")?;
                }
                write!(f, "{} {}", c.name, c.properties)
            }
            Statement::DropConnector { if_exists, name } => {
                write!(f, "DROP CONNECTOR {}{name}", if *if_exists { "IF EXISTS " } else { "" })
            }
            Statement::Sql(s) => write!(f, "{s}"),
        }
    }
}
