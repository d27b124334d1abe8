//! ksqlDB's types: their syntax (`INT`, `DECIMAL(4, 2)`, `ARRAY<T>`, `MAP<K, V>`,
//! `STRUCT<a T, …>`), used for column definitions and, through the dialect, inside
//! `CAST(… AS …)`; and the Arrow type each is held in.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Fields, TimeUnit};
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
    if word.value.eq_ignore_ascii_case("NULL") {
        return Err(error("NULL is not a type; give the column a type", &token));
    }
    let name = word.value.to_ascii_uppercase();
    if !matches!(name.as_str(), "DECIMAL" | "ARRAY" | "MAP" | "STRUCT") && parser.consume_token(&Token::LParen) {
        skip_type_parameters(parser)?;
    }
    Ok(match name.as_str() {
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

/// ksqlDB's grammar lets any type name take parameters, `VARCHAR(10)` or `VARCHAR(STRING)`,
/// which it ignores; so does Eddy. Parses them after the `(`.
fn skip_type_parameters(parser: &mut Parser<'_>) -> Result<(), ParserError> {
    loop {
        let token = parser.next_token();
        match &token.token {
            Token::Number(..) => {}
            Token::Word(w) if w.value.eq_ignore_ascii_case("STRING") => {}
            _ => return Err(error_at("Expecting {'STRING', INTEGER_VALUE}", &token)),
        }
        let token = parser.next_token();
        match &token.token {
            Token::Comma => {}
            Token::RParen => return Ok(()),
            _ => return Err(error_at("Expecting {',', ')'}", &token)),
        }
    }
}

/// An error at a token, said as ksqlDB's grammar says it.
fn error_at(message: &str, at: &TokenWithSpan) -> ParserError {
    ParserError::ParserError(format!("{message}{}", at.span.start))
}

/// An error in sqlparser's form (its message carries the position).
fn error(message: &str, found: &TokenWithSpan) -> ParserError {
    ParserError::ParserError(format!("{message}, found: {}{}", found.token, found.span.start))
}

/// The ksqlDB name of an Arrow type (the inverse of [`SqlType::to_arrow`]), for messages,
/// `DESCRIBE` and `EXPLAIN`; types ksqlDB has no name for show as Arrow names them.
pub fn ksql_type_name(data_type: &DataType) -> String {
    match data_type {
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int32 => "INTEGER".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Decimal128(precision, scale) => format!("DECIMAL({precision}, {scale})"),
        DataType::Utf8 => "STRING".into(),
        DataType::Binary => "BYTES".into(),
        DataType::Timestamp(..) => "TIMESTAMP".into(),
        DataType::Date32 => "DATE".into(),
        DataType::Time32(_) => "TIME".into(),
        DataType::List(item) => format!("ARRAY<{}>", ksql_type_name(item.data_type())),
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => {
                format!("MAP<{}, {}>", ksql_type_name(kv[0].data_type()), ksql_type_name(kv[1].data_type()))
            }
            other => format!("MAP<{other}>"),
        },
        DataType::Struct(fields) => {
            let fields: Vec<String> =
                fields.iter().map(|f| format!("`{}` {}", f.name(), ksql_type_name(f.data_type()))).collect();
            format!("STRUCT<{}>", fields.join(", "))
        }
        other => other.to_string(),
    }
}

/// Why a declared type has no Arrow form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TypeError {
    #[error("unknown type '{0}'; declare it with CREATE TYPE")]
    UnknownType(String),
    #[error("DECIMAL({precision}, {scale}) is out of range: the precision is 1 to 38, the scale 0 to the precision")]
    InvalidDecimal { precision: u64, scale: u64 },
    #[error("types nest more than {MAX_TYPE_DEPTH} levels deep")]
    TooDeep,
}

/// Nesting deeper than this is refused (it also stops a custom type that names itself).
pub const MAX_TYPE_DEPTH: usize = 32;

/// A column or field name as ksqlDB resolves it: unquoted identifiers are upper-cased,
/// quoted ones keep their case.
pub fn resolved_name(ident: &Ident) -> String {
    if ident.quote_style.is_some() { ident.value.clone() } else { ident.value.to_uppercase() }
}

impl SqlType {
    /// The ksqlDB type closest to an Arrow type (what a query's output column is declared
    /// as): narrower integers widen to INT or BIGINT, floats to DOUBLE, string and binary
    /// variants to STRING and BYTES. `None` for types ksqlDB cannot hold (a union, say).
    pub fn from_arrow(data_type: &DataType) -> Option<SqlType> {
        Some(match data_type {
            DataType::Boolean => SqlType::Boolean,
            DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::UInt8 | DataType::UInt16 => SqlType::Int,
            DataType::Int64 | DataType::UInt32 | DataType::UInt64 => SqlType::Bigint,
            DataType::Float16 | DataType::Float32 | DataType::Float64 => SqlType::Double,
            DataType::Decimal32(p, s)
            | DataType::Decimal64(p, s)
            | DataType::Decimal128(p, s)
            | DataType::Decimal256(p, s) => {
                SqlType::Decimal { precision: u64::from(*p), scale: u64::try_from(*s).unwrap_or(0) }
            }
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => SqlType::String,
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => {
                SqlType::Bytes
            }
            DataType::Timestamp(..) | DataType::Date64 => SqlType::Timestamp,
            DataType::Date32 => SqlType::Date,
            DataType::Time32(_) | DataType::Time64(_) => SqlType::Time,
            DataType::List(item)
            | DataType::LargeList(item)
            | DataType::FixedSizeList(item, _)
            | DataType::ListView(item) => SqlType::Array(Box::new(SqlType::from_arrow(item.data_type())?)),
            DataType::Map(entries, _) => match entries.data_type() {
                DataType::Struct(kv) if kv.len() == 2 => SqlType::Map(
                    Box::new(SqlType::from_arrow(kv[0].data_type())?),
                    Box::new(SqlType::from_arrow(kv[1].data_type())?),
                ),
                _ => return None,
            },
            DataType::Struct(fields) => SqlType::Struct(
                fields
                    .iter()
                    .map(|f| Some((Ident::with_quote('`', f.name().clone()), SqlType::from_arrow(f.data_type())?)))
                    .collect::<Option<Vec<_>>>()?,
            ),
            DataType::Dictionary(_, value) => SqlType::from_arrow(value)?,
            _ => return None,
        })
    }

    /// The Arrow type that holds values of this type. Types declared with `CREATE TYPE` are
    /// looked up with `resolve` (by resolved name).
    pub fn to_arrow(&self, resolve: &dyn Fn(&str) -> Option<SqlType>) -> Result<DataType, TypeError> {
        self.to_arrow_at(resolve, 0)
    }

    fn to_arrow_at(&self, resolve: &dyn Fn(&str) -> Option<SqlType>, depth: usize) -> Result<DataType, TypeError> {
        if depth > MAX_TYPE_DEPTH {
            return Err(TypeError::TooDeep);
        }
        let inner = |t: &SqlType| t.to_arrow_at(resolve, depth + 1);
        Ok(match self {
            SqlType::Boolean => DataType::Boolean,
            SqlType::Int => DataType::Int32,
            SqlType::Bigint => DataType::Int64,
            SqlType::Double => DataType::Float64,
            SqlType::Decimal { precision, scale } => {
                if *precision == 0 || *precision > 38 || scale > precision {
                    return Err(TypeError::InvalidDecimal { precision: *precision, scale: *scale });
                }
                DataType::Decimal128(*precision as u8, *scale as i8)
            }
            SqlType::String => DataType::Utf8,
            SqlType::Bytes => DataType::Binary,
            SqlType::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, None),
            SqlType::Date => DataType::Date32,
            SqlType::Time => DataType::Time32(TimeUnit::Millisecond),
            SqlType::Array(item) => DataType::List(Arc::new(Field::new("item", inner(item)?, true))),
            SqlType::Map(key, value) => {
                let entries =
                    Fields::from(vec![Field::new("key", inner(key)?, false), Field::new("value", inner(value)?, true)]);
                DataType::Map(Arc::new(Field::new("entries", DataType::Struct(entries), false)), false)
            }
            SqlType::Struct(fields) => DataType::Struct(
                fields.iter().map(|(name, t)| Ok(Field::new(resolved_name(name), inner(t)?, true))).collect::<Result<
                    Fields,
                    TypeError,
                >>(
                )?,
            ),
            SqlType::Custom(name) => {
                let resolved = resolved_name(name);
                resolve(&resolved).ok_or(TypeError::UnknownType(resolved))?.to_arrow_at(resolve, depth + 1)?
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::dialect::EddyDialect;
    use crate::sql::lexer::tokenize;

    fn parsed(text: &str) -> SqlType {
        let dialect = EddyDialect::new();
        let tokens = tokenize(text).unwrap();
        parse_type(&mut Parser::new(&dialect).with_tokens_with_locations(tokens)).unwrap()
    }

    fn arrow(text: &str) -> Result<DataType, TypeError> {
        parsed(text).to_arrow(&|name| (name == "ADDRESS").then(|| parsed("STRUCT<street STRING, zip INT>")))
    }

    #[test]
    fn scalar_types_map_to_arrow() {
        for (text, want) in [
            ("BOOLEAN", DataType::Boolean),
            ("INT", DataType::Int32),
            ("INTEGER", DataType::Int32),
            ("BIGINT", DataType::Int64),
            ("DOUBLE", DataType::Float64),
            ("DECIMAL(10, 2)", DataType::Decimal128(10, 2)),
            ("VARCHAR", DataType::Utf8),
            ("STRING", DataType::Utf8),
            ("BYTES", DataType::Binary),
            ("TIMESTAMP", DataType::Timestamp(TimeUnit::Millisecond, None)),
            ("DATE", DataType::Date32),
            ("TIME", DataType::Time32(TimeUnit::Millisecond)),
        ] {
            assert_eq!(arrow(text).unwrap(), want, "{text}");
        }
    }

    #[test]
    fn nested_types_map_to_arrow_with_ksql_names() {
        let DataType::Struct(fields) = arrow("STRUCT<street STRING, `zipCode` INT, tags ARRAY<STRING>>").unwrap()
        else {
            panic!()
        };
        let names: Vec<&str> = fields.iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["STREET", "zipCode", "TAGS"]);
        assert!(matches!(fields[2].data_type(), DataType::List(item) if item.data_type() == &DataType::Utf8));
        let DataType::Map(entries, false) = arrow("MAP<STRING, ARRAY<ARRAY<INT>>>").unwrap() else { panic!() };
        let DataType::Struct(kv) = entries.data_type() else { panic!() };
        assert_eq!(kv[0].data_type(), &DataType::Utf8);
        assert!(!kv[0].is_nullable(), "map keys are never null");
        assert!(arrow("ADDRESS").unwrap().to_string().contains("STREET"));
        assert!(arrow("address").is_ok(), "type names resolve case-insensitively unless quoted");
    }

    #[test]
    fn arrow_types_name_back_to_ksql() {
        for text in
            ["BOOLEAN", "INTEGER", "BIGINT", "DOUBLE", "DECIMAL(10, 2)", "STRING", "BYTES", "TIMESTAMP", "DATE", "TIME"]
        {
            assert_eq!(ksql_type_name(&arrow(text).unwrap()), text);
        }
        let nested = arrow("STRUCT<a ARRAY<MAP<STRING, INT>>, `b` BIGINT>").unwrap();
        assert_eq!(ksql_type_name(&nested), "STRUCT<`A` ARRAY<MAP<STRING, INTEGER>>, `b` BIGINT>");
    }

    #[test]
    fn bad_types_are_reported() {
        assert_eq!(arrow("NOPE"), Err(TypeError::UnknownType("NOPE".into())));
        assert!(matches!(arrow("DECIMAL(40, 2)"), Err(TypeError::InvalidDecimal { .. })));
        assert!(matches!(arrow("DECIMAL(4, 5)"), Err(TypeError::InvalidDecimal { .. })));
        assert!(matches!(arrow("DECIMAL(0, 0)"), Err(TypeError::InvalidDecimal { .. })));
        // A type that names itself is stopped, not followed forever.
        let looping = parsed("LOOP").to_arrow(&|_| Some(parsed("ARRAY<LOOP>")));
        assert_eq!(looping, Err(TypeError::TooDeep));
    }
}
