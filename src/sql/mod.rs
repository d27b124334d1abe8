//! The SQL front end: ksqlDB's dialect parsed by wrapping sqlparser.
//!
//! Text → [`lexer`] (tokens with positions, statements split at `;`, ksqlDB's query clauses
//! lifted out) → [`parser`] (our statements first, the rest falls through to sqlparser) →
//! [`ast::Statement`]. Every statement prints back to SQL that parses to the same statement.
//! Nothing here looks at the catalog or plans anything.

pub mod ast;
pub mod dialect;
pub mod error;
pub mod lexer;
pub mod parser;
pub mod types;

pub use ast::Statement;
pub use error::ParseError;
pub use parser::{parse_one, parse_sql};

/// Where something was written, as ksqlDB starts some messages (`Line: 1, Col: 21: `); empty
/// when it was not parsed from text (line 0).
pub fn position_prefix(at: datafusion::sql::sqlparser::tokenizer::Location) -> String {
    if at.line == 0 { String::new() } else { format!("Line: {}, Col: {}: ", at.line, at.column) }
}

#[cfg(test)]
mod tests;
