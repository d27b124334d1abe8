//! Errors of the SQL front end: always with a position, and a hint where one helps.

use std::fmt;

use datafusion::sql::sqlparser::parser::ParserError;
use datafusion::sql::sqlparser::tokenizer::{Location, TokenizerError};

/// A statement that does not parse: what was wrong, where (1-based line and column of the
/// statement text), and how to fix it if we can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub message: String,
    pub line: u64,
    pub column: u64,
    pub hint: Option<String>,
    /// The statement's text, said after the message as ksqlDB says it.
    pub statement: Option<String>,
}

impl ParseError {
    pub fn new(message: impl Into<String>, at: Location) -> Self {
        ParseError { message: message.into(), line: at.line, column: at.column, hint: None, statement: None }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Converts sqlparser's error, whose position is embedded in its message
    /// ("… at Line: 3, Column: 7").
    pub fn from_parser(error: ParserError, fallback: Location) -> Self {
        let text = match error {
            ParserError::TokenizerError(text) | ParserError::ParserError(text) => text,
            ParserError::RecursionLimitExceeded => "the statement nests too deeply".to_owned(),
        };
        match text.rsplit_once(" at Line: ") {
            Some((message, position)) => {
                let mut numbers = position.split(", Column: ").map(|n| n.trim().parse::<u64>().ok());
                match (numbers.next().flatten(), numbers.next().flatten()) {
                    (Some(line), Some(column)) => {
                        ParseError { message: message.to_owned(), line, column, hint: None, statement: None }
                    }
                    _ => ParseError::new(text.clone(), fallback),
                }
            }
            None => ParseError::new(text, fallback),
        }
    }

    pub fn from_tokenizer(error: TokenizerError) -> Self {
        ParseError::new(error.message, error.location)
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // "Syntax Error" as ksqlDB says it, so tools matching its messages find it.
        write!(f, "line {}:{}: Syntax Error\n{}", self.line, self.column, self.message)?;
        if let Some(statement) = &self.statement {
            write!(f, "\nStatement: {statement}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ParseError {}
