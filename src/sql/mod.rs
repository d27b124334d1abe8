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

#[cfg(test)]
mod tests;
