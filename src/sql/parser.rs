//! The parser of the ksqlDB dialect: our statements first, through sqlparser's public
//! `Parser` API; everything else falls through to sqlparser's `parse_statement`.

use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Location, Token, TokenWithSpan};

use super::ast::*;
use super::dialect::EddyDialect;
use super::error::ParseError;
use super::lexer::{first_location, is_word, lift_query_clauses, split_statements, tokenize};

static DIALECT: EddyDialect = EddyDialect::new();

/// Parses a script of `;`-separated statements.
pub fn parse_sql(sql: &str) -> Result<Vec<Statement>, ParseError> {
    split_statements(tokenize(sql)?).into_iter().map(parse_statement_tokens).collect()
}

/// Parses exactly one statement (a trailing `;` is allowed).
pub fn parse_one(sql: &str) -> Result<Statement, ParseError> {
    let mut statements = parse_sql(sql)?;
    match statements.len() {
        1 => Ok(statements.remove(0)),
        0 => Err(ParseError::new("expected a statement, found nothing", Location::new(1, 1))),
        n => Err(ParseError::new(format!("expected one statement, found {n}"), Location::new(1, 1))),
    }
}

/// Parses the tokens of one statement.
pub fn parse_statement_tokens(tokens: Vec<TokenWithSpan>) -> Result<Statement, ParseError> {
    StatementParser::new(tokens).parse()
}

struct StatementParser {
    tokens: Vec<TokenWithSpan>,
    parser: Parser<'static>,
    start: Location,
}

impl StatementParser {
    fn new(tokens: Vec<TokenWithSpan>) -> Self {
        let start = first_location(&tokens);
        let parser = Parser::new(&DIALECT).with_tokens_with_locations(tokens.clone());
        StatementParser { tokens, parser, start }
    }

    fn error(&self, e: datafusion::sql::sqlparser::parser::ParserError) -> ParseError {
        ParseError::from_parser(e, self.start)
    }

    /// Runs one of sqlparser's parsing steps, with its error as ours.
    fn with<T>(
        &mut self,
        step: impl FnOnce(&mut Parser<'static>) -> Result<T, datafusion::sql::sqlparser::parser::ParserError>,
    ) -> Result<T, ParseError> {
        step(&mut self.parser).map_err(|e| self.error(e))
    }

    /// Consumes the unquoted word `word` if it comes next.
    fn word(&mut self, word: &str) -> bool {
        if is_word(&self.parser.peek_token_ref().token, word) {
            self.parser.next_token();
            true
        } else {
            false
        }
    }

    fn peek_word(&self, word: &str) -> bool {
        is_word(&self.parser.peek_token_ref().token, word)
    }

    fn expect_word(&mut self, word: &str, hint: Option<&str>) -> Result<(), ParseError> {
        if self.word(word) {
            return Ok(());
        }
        let found = self.parser.peek_token();
        let error = ParseError::new(format!("expected {word}, found {}", describe(&found.token)), found.span.start);
        Err(match hint {
            Some(h) => error.with_hint(h),
            None => error,
        })
    }

    fn expect_token(&mut self, token: Token) -> Result<(), ParseError> {
        self.with(|p| p.expect_token(&token).map(|_| ()))
    }

    /// Fails unless every token was consumed.
    fn expect_end(&mut self) -> Result<(), ParseError> {
        let next = self.parser.peek_token();
        if next.token == Token::EOF {
            Ok(())
        } else {
            Err(ParseError::new(
                format!("unexpected {} after the end of the statement", describe(&next.token)),
                next.span.start,
            )
            .with_hint("is a `;` missing between two statements?"))
        }
    }

    fn parse(mut self) -> Result<Statement, ParseError> {
        let statement = if self.peek_word("CREATE") {
            self.parse_create()?
        } else if self.peek_word("INSERT") {
            self.parse_insert()?
        } else if self.peek_word("SELECT") {
            let query = self.parse_query_from(self.parser.index())?;
            return Ok(Statement::Select(Box::new(query)));
        } else if self.peek_word("DROP") && self.is_drop_source() {
            self.parse_drop()?
        } else if self.peek_word("DROP") && is_word(&self.parser.peek_nth_token_ref(1).token, "CONNECTOR") {
            self.parser.next_token();
            self.parser.next_token();
            let if_exists = self.parser.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
            Statement::DropConnector { if_exists, name: self.with(|p| p.parse_identifier())? }
        } else if self.peek_word("DROP") && is_word(&self.parser.peek_nth_token_ref(1).token, "TYPE") {
            self.parser.next_token();
            self.parser.next_token();
            let if_exists = self.parser.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
            Statement::DropType { if_exists, name: self.with(|p| p.parse_identifier())? }
        } else if self.word("TERMINATE") {
            if self.word("ALL") {
                Statement::Terminate(Terminate::All)
            } else {
                Statement::Terminate(Terminate::Query(self.parse_name_or_string()?))
            }
        } else if self.word("SHOW") || self.word("LIST") {
            self.parse_show()?
        } else if self.word("DESCRIBE") {
            self.parse_describe()?
        } else if self.word("EXPLAIN") {
            self.parse_explain()?
        } else if self.word("PRINT") {
            self.parse_print()?
        } else if self.word("SET") {
            let name = self.with(|p| p.parse_literal_string())?;
            self.expect_token(Token::Eq)?;
            let value = self.with(|p| p.parse_literal_string())?;
            Statement::Set { name, value }
        } else if self.word("UNSET") {
            Statement::Unset { name: self.with(|p| p.parse_literal_string())? }
        } else if self.word("DEFINE") {
            let name = self.with(|p| p.parse_identifier())?;
            self.expect_token(Token::Eq)?;
            let value = self.with(|p| p.parse_literal_string())?;
            Statement::Define { name, value }
        } else if self.word("UNDEFINE") {
            Statement::Undefine { name: self.with(|p| p.parse_identifier())? }
        } else if self.word("RUN") {
            self.expect_word("SCRIPT", Some("write RUN SCRIPT '/path/to/file.sql'"))?;
            Statement::RunScript { path: self.with(|p| p.parse_literal_string())? }
        } else {
            let statement = self.with(|p| p.parse_statement())?;
            Statement::Sql(Box::new(statement))
        };
        self.expect_end()?;
        Ok(statement)
    }

    fn parse_kind(&mut self) -> Option<SourceKind> {
        if self.word("STREAM") {
            Some(SourceKind::Stream)
        } else if self.word("TABLE") {
            Some(SourceKind::Table)
        } else {
            None
        }
    }

    fn expect_kind(&mut self) -> Result<SourceKind, ParseError> {
        self.parse_kind().map_or_else(
            || {
                let found = self.parser.peek_token();
                Err(ParseError::new(
                    format!("expected STREAM or TABLE, found {}", describe(&found.token)),
                    found.span.start,
                ))
            },
            Ok,
        )
    }

    fn parse_create(&mut self) -> Result<Statement, ParseError> {
        let checkpoint = self.parser.index();
        self.expect_word("CREATE", None)?;
        let or_replace = self.parser.parse_keywords(&[Keyword::OR, Keyword::REPLACE]);
        let connector =
            |p: &Self, kind: &str| p.peek_word(kind) && is_word(&p.parser.peek_nth_token_ref(1).token, "CONNECTOR");
        if !or_replace && (connector(self, "SOURCE") || connector(self, "SINK")) {
            let kind = if self.word("SOURCE") {
                ConnectorKind::Source
            } else {
                self.word("SINK");
                ConnectorKind::Sink
            };
            self.expect_word("CONNECTOR", None)?;
            let if_not_exists = self.parser.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
            let name = self.with(|p| p.parse_identifier())?;
            let properties = self.parse_properties()?;
            if properties.is_empty() {
                let found = self.parser.peek_token();
                return Err(ParseError::new("expected WITH (…) after the connector's name", found.span.start)
                    .with_hint("write CREATE SOURCE CONNECTOR name WITH ('connector.class'='…', …)"));
            }
            return Ok(Statement::CreateConnector(CreateConnector { kind, if_not_exists, name, properties }));
        }
        let source = self.word("SOURCE");
        if !or_replace && !source && self.word("TYPE") {
            let if_not_exists = self.parser.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
            let name = self.with(|p| p.parse_identifier())?;
            self.with(|p| p.expect_keyword_is(Keyword::AS))?;
            let data_type = self.parse_type()?;
            return Ok(Statement::CreateType { if_not_exists, name, data_type });
        }
        let Some(kind) = self.parse_kind() else {
            // CREATE INDEX and the like: sqlparser's.
            return self.fall_through(checkpoint);
        };
        let if_not_exists = self.parser.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
        let name = self.with(|p| p.parse_object_name(false))?;
        let columns =
            if self.parser.peek_token_ref().token == Token::LParen { self.parse_columns()? } else { Vec::new() };
        let properties = self.parse_properties()?;
        if self.parser.parse_keyword(Keyword::AS) {
            if !columns.is_empty() || source {
                return Err(ParseError::new(
                    "CREATE … AS SELECT takes its columns from the query",
                    self.parser.peek_token().span.start,
                )
                .with_hint("remove the column list, or the AS SELECT"));
            }
            let query = self.parse_query_from(self.parser.index())?;
            return Ok(Statement::CreateAsSelect(CreateAsSelect {
                or_replace,
                kind,
                if_not_exists,
                name,
                properties,
                query: Box::new(query),
            }));
        }
        Ok(Statement::CreateSource(CreateSource { or_replace, source, kind, if_not_exists, name, columns, properties }))
    }

    /// Re-parses from `checkpoint` with sqlparser.
    fn fall_through(&mut self, checkpoint: usize) -> Result<Statement, ParseError> {
        let mut parser = Parser::new(&DIALECT).with_tokens_with_locations(self.tokens[checkpoint..].to_vec());
        let statement = parser.parse_statement().map_err(|e| self.error(e))?;
        self.parser = parser;
        Ok(Statement::Sql(Box::new(statement)))
    }

    fn parse_columns(&mut self) -> Result<Vec<ColumnDef>, ParseError> {
        self.expect_token(Token::LParen)?;
        let mut columns = Vec::new();
        if self.parser.consume_token(&Token::RParen) {
            return Ok(columns);
        }
        loop {
            let name = self.with(|p| p.parse_identifier())?;
            let data_type = self.parse_type()?;
            let constraint = if self.parser.parse_keywords(&[Keyword::PRIMARY, Keyword::KEY]) {
                ColumnConstraint::PrimaryKey
            } else if self.word("KEY") {
                ColumnConstraint::Key
            } else if self.word("HEADERS") {
                ColumnConstraint::Headers
            } else if self.word("HEADER") {
                self.expect_token(Token::LParen)?;
                let key = self.with(|p| p.parse_literal_string())?;
                self.expect_token(Token::RParen)?;
                ColumnConstraint::Header(key)
            } else {
                ColumnConstraint::None
            };
            columns.push(ColumnDef { name, data_type, constraint });
            if self.parser.consume_token(&Token::Comma) {
                continue;
            }
            self.expect_token(Token::RParen)?;
            return Ok(columns);
        }
    }

    fn parse_type(&mut self) -> Result<SqlType, ParseError> {
        self.with(super::types::parse_type)
    }

    /// An optional `WITH (NAME = value, …)`.
    fn parse_properties(&mut self) -> Result<Properties, ParseError> {
        if !self.parser.parse_keyword(Keyword::WITH) {
            return Ok(Properties::default());
        }
        self.expect_token(Token::LParen)?;
        let mut properties = Vec::new();
        loop {
            let name = self.with(|p| p.parse_identifier())?;
            self.expect_token(Token::Eq)?;
            let value = self.with(|p| p.parse_value())?.value;
            properties.push((name, value));
            if !self.parser.consume_token(&Token::Comma) {
                break;
            }
        }
        self.expect_token(Token::RParen)?;
        Ok(Properties(properties))
    }

    fn parse_insert(&mut self) -> Result<Statement, ParseError> {
        self.expect_word("INSERT", None)?;
        self.expect_word("INTO", Some("write INSERT INTO name …"))?;
        let target = self.with(|p| p.parse_object_name(false))?;
        let mut columns = Vec::new();
        if self.parser.peek_token_ref().token == Token::LParen {
            self.parser.next_token();
            columns = self.with(|p| p.parse_comma_separated(Parser::parse_identifier))?;
            self.expect_token(Token::RParen)?;
        }
        if self.word("VALUES") {
            self.expect_token(Token::LParen)?;
            let values = self.with(|p| p.parse_comma_separated(Parser::parse_expr))?;
            self.expect_token(Token::RParen)?;
            return Ok(Statement::InsertValues(InsertValues { target, columns, values }));
        }
        if !columns.is_empty() {
            let at = self.parser.peek_token().span.start;
            return Err(ParseError::new("expected VALUES after the column list", at));
        }
        let properties = self.parse_properties()?;
        if !self.peek_word("SELECT") {
            let found = self.parser.peek_token();
            return Err(ParseError::new(
                format!("expected VALUES or SELECT, found {}", describe(&found.token)),
                found.span.start,
            ));
        }
        let query = self.parse_query_from(self.parser.index())?;
        Ok(Statement::InsertInto(InsertInto { target, properties, query: Box::new(query) }))
    }

    /// Parses the rest of the statement, from token `from`, as a query with ksqlDB's
    /// clauses, and consumes it.
    fn parse_query_from(&mut self, from: usize) -> Result<StreamingQuery, ParseError> {
        let (standard, lifted) = lift_query_clauses(self.tokens[from..].to_vec())?;
        let mut parser = Parser::new(&DIALECT).with_tokens_with_locations(standard);
        let query = parser.parse_query().map_err(|e| self.error(e))?;
        let next = parser.peek_token();
        if next.token != Token::EOF {
            return Err(ParseError::new(format!("unexpected {} in the query", describe(&next.token)), next.span.start)
                .with_hint("clauses go in the order WINDOW, WHERE, GROUP BY, PARTITION BY, HAVING, EMIT, LIMIT"));
        }
        let window = lifted.window.map(|tokens| clause_parser(tokens).parse_window()).transpose()?;
        let partition_by = match lifted.partition_by {
            Some(tokens) => {
                let solid: Vec<&Token> =
                    tokens.iter().map(|t| &t.token).filter(|t| !matches!(t, Token::Whitespace(_))).collect();
                if matches!(solid.as_slice(), [] | [Token::LParen, Token::RParen]) {
                    let at = tokens.first().map_or(next.span.start, |t| t.span.start);
                    return Err(ParseError::new("PARTITION BY requires at least one expression", at));
                }
                let mut p = clause_parser(tokens);
                let exprs = p.with(|p| p.parse_comma_separated(Parser::parse_expr))?;
                p.expect_end()?;
                exprs
            }
            None => Vec::new(),
        };
        let within = lifted
            .within
            .into_iter()
            .map(|(join, tokens)| Ok((join, clause_parser(tokens).parse_within()?)))
            .collect::<Result<Vec<_>, ParseError>>()?;
        // Everything is consumed: point our parser at the end.
        self.parser = Parser::new(&DIALECT).with_tokens_with_locations(Vec::new());
        Ok(StreamingQuery { query, window, partition_by, emit: lifted.emit, within })
    }

    fn parse_span(&mut self) -> Result<TimeSpan, ParseError> {
        let amount = self.with(|p| p.parse_literal_uint())?;
        let token = self.parser.next_token();
        let unit = match &token.token {
            Token::Word(w) => TimeUnit::parse(&w.value),
            _ => None,
        };
        unit.map(|unit| TimeSpan { amount, unit }).ok_or_else(|| {
            ParseError::new(format!("expected a time unit, found {}", describe(&token.token)), token.span.start)
                .with_hint("use MILLISECONDS, SECONDS, MINUTES, HOURS or DAYS")
        })
    }

    /// `TUMBLING (SIZE …)`, `HOPPING (SIZE …, ADVANCE BY …)`, `SESSION (…)`, each with
    /// optional `, RETENTION …` and `, GRACE PERIOD …`.
    fn parse_window(mut self) -> Result<WindowSpec, ParseError> {
        let hint = "write e.g. WINDOW HOPPING (SIZE 1 MINUTE, ADVANCE BY 10 SECONDS, GRACE PERIOD 5 SECONDS)";
        let kind = if self.word("TUMBLING") {
            self.expect_token(Token::LParen)?;
            self.expect_word("SIZE", Some(hint))?;
            WindowKind::Tumbling { size: self.parse_span()? }
        } else if self.word("HOPPING") {
            self.expect_token(Token::LParen)?;
            self.expect_word("SIZE", Some(hint))?;
            let size = self.parse_span()?;
            self.expect_token(Token::Comma)?;
            self.expect_word("ADVANCE", Some(hint))?;
            self.expect_word("BY", Some(hint))?;
            WindowKind::Hopping { size, advance_by: self.parse_span()? }
        } else {
            self.expect_word("SESSION", Some(hint))?;
            self.expect_token(Token::LParen)?;
            WindowKind::Session { gap: self.parse_span()? }
        };
        let mut window = WindowSpec { kind, retention: None, grace_period: None };
        while self.parser.consume_token(&Token::Comma) {
            if self.word("RETENTION") {
                window.retention = Some(self.parse_span()?);
            } else {
                self.expect_word("GRACE", Some(hint))?;
                self.expect_word("PERIOD", Some(hint))?;
                window.grace_period = Some(self.parse_span()?);
            }
        }
        self.expect_token(Token::RParen)?;
        self.expect_end()?;
        Ok(window)
    }

    /// `n unit` or `(before, after)`, then an optional `GRACE PERIOD n unit`.
    fn parse_within(mut self) -> Result<Within, ParseError> {
        let (before, after) = if self.parser.consume_token(&Token::LParen) {
            let before = self.parse_span()?;
            self.expect_token(Token::Comma)?;
            let after = self.parse_span()?;
            self.expect_token(Token::RParen)?;
            (before, Some(after))
        } else {
            (self.parse_span()?, None)
        };
        let grace_period = if self.word("GRACE") {
            self.expect_word("PERIOD", None)?;
            Some(self.parse_span()?)
        } else {
            None
        };
        self.expect_end()?;
        Ok(Within { before, after, grace_period })
    }

    fn is_drop_source(&self) -> bool {
        let next = self.parser.peek_nth_token_ref(1);
        is_word(&next.token, "STREAM") || is_word(&next.token, "TABLE")
    }

    fn parse_drop(&mut self) -> Result<Statement, ParseError> {
        self.expect_word("DROP", None)?;
        let kind = self.expect_kind()?;
        let if_exists = self.parser.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
        let name = self.with(|p| p.parse_object_name(false))?;
        let delete_topic = if self.word("DELETE") {
            self.expect_word("TOPIC", None)?;
            true
        } else {
            false
        };
        Ok(Statement::Drop(DropSource { kind, if_exists, name, delete_topic }))
    }

    fn parse_show(&mut self) -> Result<Statement, ParseError> {
        let target = if self.word("STREAMS") {
            ShowTarget::Streams
        } else if self.word("TABLES") {
            ShowTarget::Tables
        } else if self.word("TOPICS") {
            ShowTarget::Topics
        } else if self.word("ALL") {
            self.expect_word("TOPICS", None)?;
            ShowTarget::AllTopics
        } else if self.word("QUERIES") {
            ShowTarget::Queries
        } else if self.word("PROPERTIES") {
            ShowTarget::Properties
        } else if self.word("FUNCTIONS") {
            ShowTarget::Functions
        } else if self.word("TYPES") {
            ShowTarget::Types
        } else if self.word("VARIABLES") {
            ShowTarget::Variables
        } else if self.word("CONNECTORS") {
            ShowTarget::Connectors(ConnectorScope::All)
        } else if self.peek_word("SOURCE") || self.peek_word("SINK") {
            let scope = if self.word("SOURCE") {
                ConnectorScope::Source
            } else {
                self.word("SINK");
                ConnectorScope::Sink
            };
            self.expect_word("CONNECTORS", Some("write SHOW SOURCE CONNECTORS or SHOW SINK CONNECTORS"))?;
            ShowTarget::Connectors(scope)
        } else {
            let found = self.parser.peek_token();
            return Err(ParseError::new(format!("cannot list {}", describe(&found.token)), found.span.start)
                .with_hint(
                    "SHOW STREAMS, TABLES, TOPICS, QUERIES, PROPERTIES, FUNCTIONS, TYPES, VARIABLES or CONNECTORS",
                ));
        };
        let extended = self.word("EXTENDED");
        Ok(Statement::Show(Show { target, extended }))
    }

    fn parse_describe(&mut self) -> Result<Statement, ParseError> {
        if self.word("FUNCTION") {
            let name = self.with(|p| p.parse_identifier())?;
            return Ok(Statement::Describe(Describe::Function { name }));
        }
        if self.peek_word("CONNECTOR") && self.parser.peek_nth_token_ref(1).token != Token::EOF {
            self.parser.next_token();
            let name = self.with(|p| p.parse_identifier())?;
            return Ok(Statement::Describe(Describe::Connector { name }));
        }
        // `DESCRIBE STREAMS` lists; `DESCRIBE EXTENDED x` describes x.
        if self.word("STREAMS") {
            return Ok(Statement::Describe(Describe::Streams { extended: self.word("EXTENDED") }));
        }
        if self.word("TABLES") {
            return Ok(Statement::Describe(Describe::Tables { extended: self.word("EXTENDED") }));
        }
        let extended = self.peek_word("EXTENDED")
            && self.parser.peek_nth_token_ref(1).token != Token::EOF
            && self.word("EXTENDED");
        let name = self.with(|p| p.parse_object_name(false))?;
        Ok(Statement::Describe(Describe::Source { name, extended }))
    }

    fn parse_explain(&mut self) -> Result<Statement, ParseError> {
        let rest_is_one_word = matches!(self.parser.peek_token_ref().token, Token::Word(_))
            && self.parser.peek_nth_token_ref(1).token == Token::EOF;
        if rest_is_one_word {
            return Ok(Statement::Explain(Explain::Query(self.parse_name_or_string()?)));
        }
        let inner = StatementParser::new(self.tokens[self.parser.index()..].to_vec()).parse()?;
        self.parser = Parser::new(&DIALECT).with_tokens_with_locations(Vec::new());
        Ok(Statement::Explain(Explain::Statement(Box::new(inner))))
    }

    fn parse_print(&mut self) -> Result<Statement, ParseError> {
        let topic = self.parse_name_or_string()?;
        let mut print = Print { topic, from_beginning: false, interval: None, limit: None };
        loop {
            if self.peek_word("FROM") && is_word(&self.parser.peek_nth_token_ref(1).token, "BEGINNING") {
                self.parser.next_token();
                self.parser.next_token();
                print.from_beginning = true;
            } else if self.word("INTERVAL") || self.word("SAMPLE") {
                print.interval = Some(self.with(|p| p.parse_literal_uint())?);
            } else if self.parser.parse_keyword(Keyword::LIMIT) {
                print.limit = Some(self.with(|p| p.parse_literal_uint())?);
            } else {
                return Ok(Statement::Print(print));
            }
        }
    }

    /// A bare or quoted name (`PRINT orders`, `PRINT 'orders'`, `TERMINATE CSAS_X_1`).
    fn parse_name_or_string(&mut self) -> Result<String, ParseError> {
        let token = self.parser.next_token();
        match token.token {
            Token::Word(w) => Ok(w.value),
            Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => Ok(s),
            other => Err(ParseError::new(format!("expected a name, found {}", describe(&other)), token.span.start)),
        }
    }
}

fn clause_parser(tokens: Vec<TokenWithSpan>) -> StatementParser {
    StatementParser::new(tokens)
}

/// A token as an error message shows it.
fn describe(token: &Token) -> String {
    match token {
        Token::EOF => "the end of the statement".to_owned(),
        other => format!("'{other}'"),
    }
}
