//! The sqlparser dialect Eddy parses standard SQL with: `GenericDialect` plus ksqlDB's
//! expression syntax, through sqlparser's dialect hooks (no fork):
//! - `a->b` is struct field access, binding tighter than any operator (`a->b + 1` is
//!   `(a->b) + 1`), and `a->*` all of a struct's fields: a `BinaryOp` with operator `Arrow`;
//! - `x => body` and `(x, y) => body` are lambdas: an `Expr::Lambda` (printed back in ksqlDB's
//!   form by [`super::ast`]); sqlparser's own `->` lambdas and `=>` named arguments are off;
//! - `CAST(e AS ARRAY<…>|MAP<…>|STRUCT<…>)` takes ksqlDB's type syntax; the type is kept as
//!   `DataType::Custom` holding its ksqlDB spelling, so it prints back unchanged.
//!
//! It reports `GenericDialect`'s `TypeId` so sqlparser's internal dialect checks treat it as
//! generic.

use std::any::TypeId;

use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;
use datafusion::sql::sqlparser::ast::{
    AccessExpr, BinaryOperator, CastKind, DataType, Expr, Ident, LambdaFunction, LambdaFunctionParameter, LambdaSyntax,
    ObjectName, OneOrManyWithParens, Subscript,
};
use datafusion::sql::sqlparser::dialect::{Dialect, GenericDialect, Precedence};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Token;

use super::lexer::is_word;
use super::types::parse_type;

#[derive(Debug, Default)]
pub struct EddyDialect {
    generic: GenericDialect,
}

impl EddyDialect {
    pub const fn new() -> Self {
        EddyDialect { generic: GenericDialect {} }
    }
}

impl Dialect for EddyDialect {
    fn dialect(&self) -> TypeId {
        TypeId::of::<GenericDialect>()
    }

    fn is_identifier_start(&self, ch: char) -> bool {
        self.generic.is_identifier_start(ch)
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        self.generic.is_identifier_part(ch)
    }

    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        // ksqlDB quotes identifiers with backticks (and double quotes).
        ch == '`' || ch == '"'
    }

    fn supports_map_literal_with_angle_brackets(&self) -> bool {
        true
    }

    fn supports_named_fn_args_with_rarrow_operator(&self) -> bool {
        false // `=>` introduces a lambda body in ksqlDB
    }

    fn parse_prefix(&self, parser: &mut Parser) -> Option<Result<Expr, ParserError>> {
        if let Some(params) = lambda_parameters(parser) {
            return Some(parse_lambda(parser, params));
        }
        if is_word(&parser.peek_token_ref().token, "CAST") && parser.peek_nth_token_ref(1).token == Token::LParen {
            return parse_ksql_cast(parser).transpose();
        }
        None
    }

    fn get_next_precedence(&self, parser: &Parser) -> Option<Result<u8, ParserError>> {
        matches!(parser.peek_token_ref().token, Token::Arrow | Token::LBracket)
            .then(|| Ok(self.prec_value(Precedence::Period)))
    }

    fn parse_infix(&self, parser: &mut Parser, expr: &Expr, _precedence: u8) -> Option<Result<Expr, ParserError>> {
        if parser.peek_token_ref().token == Token::LBracket {
            // `x->f[1]`: a subscript after a field access (sqlparser only takes them after names).
            parser.next_token();
            let subscript = parser.parse_expr().and_then(|index| {
                parser.expect_token(&Token::RBracket)?;
                Ok(index)
            });
            return Some(subscript.map(|index| Expr::CompoundFieldAccess {
                root: Box::new(expr.clone()),
                access_chain: vec![AccessExpr::Subscript(Subscript::Index { index })],
            }));
        }
        if parser.peek_token_ref().token != Token::Arrow {
            return None;
        }
        parser.next_token();
        let star = parser.peek_token();
        let field = if parser.consume_token(&Token::Mul) {
            Ok(Expr::Wildcard(AttachedToken(star)))
        } else {
            parser.parse_identifier().map(Expr::Identifier)
        };
        Some(field.map(|field| Expr::BinaryOp {
            left: Box::new(expr.clone()),
            op: BinaryOperator::Arrow,
            right: Box::new(field),
        }))
    }
}

/// The parameters of a lambda starting here (`x =>` or `(x, y) =>`), consumed with the
/// arrow; `None`, consuming nothing, if no lambda starts here.
fn lambda_parameters(parser: &mut Parser) -> Option<Vec<Ident>> {
    let word = |t: &Token| matches!(t, Token::Word(_));
    if word(&parser.peek_token_ref().token) && parser.peek_nth_token_ref(1).token == Token::RArrow {
        let name = parser.parse_identifier().ok()?;
        parser.next_token();
        return Some(vec![name]);
    }
    if parser.peek_token_ref().token != Token::LParen {
        return None;
    }
    // `(` word (`,` word)* `)` `=>`
    let mut n = 1;
    loop {
        if !word(&parser.peek_nth_token_ref(n).token) {
            return None;
        }
        match parser.peek_nth_token_ref(n + 1).token {
            Token::Comma => n += 2,
            Token::RParen if parser.peek_nth_token_ref(n + 2).token == Token::RArrow => break,
            _ => return None,
        }
    }
    parser.next_token();
    let names = parser.parse_comma_separated(Parser::parse_identifier).ok()?;
    parser.next_token(); // )
    parser.next_token(); // =>
    Some(names)
}

fn parse_lambda(parser: &mut Parser, params: Vec<Ident>) -> Result<Expr, ParserError> {
    let body = parser.parse_expr()?;
    let params: Vec<LambdaFunctionParameter> =
        params.into_iter().map(|name| LambdaFunctionParameter { name, data_type: None }).collect();
    // Keyword syntax is what sqlparser prints unambiguously; `ast` turns it back into `=>`.
    Ok(Expr::Lambda(LambdaFunction {
        params: OneOrManyWithParens::Many(params),
        body: Box::new(body),
        syntax: LambdaSyntax::LambdaKeyword,
    }))
}

/// `CAST(e AS type)` where the type is ksqlDB's `ARRAY<…>`, `MAP<…>` or `STRUCT<…>`;
/// `Ok(None)` (consuming nothing) for other casts, which sqlparser handles.
fn parse_ksql_cast(parser: &mut Parser) -> Result<Option<Expr>, ParserError> {
    parser.maybe_parse(|parser| {
        parser.next_token(); // CAST
        parser.next_token(); // (
        let expr = parser.parse_expr()?;
        parser.expect_keyword_is(Keyword::AS)?;
        if !["ARRAY", "MAP", "STRUCT"].iter().any(|w| is_word(&parser.peek_token_ref().token, w)) {
            // Not ours: maybe_parse rewinds and sqlparser parses the cast.
            return Err(ParserError::ParserError("a standard cast".into()));
        }
        let data_type = parse_type(parser)?;
        parser.expect_token(&Token::RParen)?;
        Ok(Expr::Cast {
            kind: CastKind::Cast,
            expr: Box::new(expr),
            data_type: DataType::Custom(ObjectName::from(vec![Ident::new(data_type.to_string())]), Vec::new()),
            array: false,
            format: None,
        })
    })
}
