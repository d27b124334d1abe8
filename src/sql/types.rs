//! ksqlDB's type syntax: `INT`, `DECIMAL(4, 2)`, `ARRAY<T>`, `MAP<K, V>`, `STRUCT<a T, …>`.
//! Used for column definitions and, through the dialect, inside `CAST(… AS …)`.

use datafusion::sql::sqlparser::ast::Ident;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use super::ast::SqlType;

/// Parses a type at the parser's position.
pub fn parse_type(parser: &mut Parser<'_>) -> Result<SqlType, ParserError> {
    let token = parser.next_token();
    let Token::Word(word) = &token.token else {
        return Err(error("expected a type", &token));
    };
    if word.quote_style.is_some() {
        return Ok(SqlType::Custom(Ident::with_quote('`', word.value.clone())));
    }
    Ok(match word.value.to_ascii_uppercase().as_str() {
        "BOOLEAN" => SqlType::Boolean,
        "INT" | "INTEGER" => SqlType::Int,
        "BIGINT" => SqlType::Bigint,
        "DOUBLE" => SqlType::Double,
        "STRING" | "VARCHAR" => SqlType::String,
        "BYTES" => SqlType::Bytes,
        "TIMESTAMP" => SqlType::Timestamp,
        "DATE" => SqlType::Date,
        "TIME" => SqlType::Time,
        "DECIMAL" => {
            parser.expect_token(&Token::LParen)?;
            let precision = parser.parse_literal_uint()?;
            parser.expect_token(&Token::Comma)?;
            let scale = parser.parse_literal_uint()?;
            parser.expect_token(&Token::RParen)?;
            SqlType::Decimal { precision, scale }
        }
        "ARRAY" => {
            parser.expect_token(&Token::Lt)?;
            let item = parse_type(parser)?;
            parser.expect_token(&Token::Gt)?;
            SqlType::Array(Box::new(item))
        }
        "MAP" => {
            parser.expect_token(&Token::Lt)?;
            let key = parse_type(parser)?;
            parser.expect_token(&Token::Comma)?;
            let value = parse_type(parser)?;
            parser.expect_token(&Token::Gt)?;
            SqlType::Map(Box::new(key), Box::new(value))
        }
        "STRUCT" => {
            parser.expect_token(&Token::Lt)?;
            let mut fields = Vec::new();
            if !parser.consume_token(&Token::Gt) {
                loop {
                    let name = parser.parse_identifier()?;
                    fields.push((name, parse_type(parser)?));
                    if !parser.consume_token(&Token::Comma) {
                        break;
                    }
                }
                parser.expect_token(&Token::Gt)?;
            }
            SqlType::Struct(fields)
        }
        _ => SqlType::Custom(Ident::new(word.value.clone())),
    })
}

/// An error in sqlparser's form (its message carries the position).
fn error(message: &str, found: &TokenWithSpan) -> ParserError {
    ParserError::ParserError(format!("{message}, found: {}{}", found.token, found.span.start))
}
