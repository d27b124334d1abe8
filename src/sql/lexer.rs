//! Token-level work before parsing: tokenizing once (spans kept for error positions),
//! splitting a script into statements at top-level `;`, and lifting the ksqlDB clauses that
//! sqlparser cannot parse out of a query (`WINDOW TUMBLING|HOPPING|SESSION (…)`,
//! `PARTITION BY …`, `EMIT CHANGES|FINAL`, a join's `WITHIN …`), so that the rest parses as
//! standard SQL.

use datafusion::sql::sqlparser::tokenizer::{Location, Span, Token, TokenWithSpan, Tokenizer};

use super::ast::Emit;
use super::dialect::EddyDialect;
use super::error::ParseError;

/// Tokenizes `sql`. `>>` becomes two `>` (ksqlDB has no shift operator, and nested types such
/// as `ARRAY<ARRAY<INT>>` close with it).
pub fn tokenize(sql: &str) -> Result<Vec<TokenWithSpan>, ParseError> {
    let dialect = EddyDialect::default();
    let tokens = Tokenizer::new(&dialect, sql).tokenize_with_location().map_err(ParseError::from_tokenizer)?;
    let mut out = Vec::with_capacity(tokens.len());
    for t in tokens {
        if t.token == Token::ShiftRight {
            let first = Span::new(t.span.start, Location::new(t.span.start.line, t.span.start.column + 1));
            let second = Span::new(first.end, t.span.end);
            out.push(TokenWithSpan::new(Token::Gt, first));
            out.push(TokenWithSpan::new(Token::Gt, second));
        } else {
            out.push(t);
        }
    }
    Ok(out)
}

/// Splits tokens into statements at `;` outside parentheses. Statements of only whitespace
/// and comments are dropped; the `;` itself is not kept.
pub fn split_statements(tokens: Vec<TokenWithSpan>) -> Vec<Vec<TokenWithSpan>> {
    let mut statements = Vec::new();
    let mut current = Vec::new();
    let mut depth = 0i64;
    for t in tokens {
        match t.token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            Token::SemiColon if depth <= 0 => {
                if has_content(&current) {
                    statements.push(std::mem::take(&mut current));
                } else {
                    current.clear();
                }
                continue;
            }
            Token::EOF => continue,
            _ => {}
        }
        current.push(t);
    }
    if has_content(&current) {
        statements.push(current);
    }
    statements
}

fn has_content(tokens: &[TokenWithSpan]) -> bool {
    tokens.iter().any(|t| !matches!(t.token, Token::Whitespace(_) | Token::EOF))
}

/// True if `token` is the unquoted word `word` (case-insensitive).
pub fn is_word(token: &Token, word: &str) -> bool {
    matches!(token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word))
}

fn is_blank(token: &Token) -> bool {
    matches!(token, Token::Whitespace(_))
}

/// The index of the first non-whitespace token at or after `from`.
fn next_solid(tokens: &[TokenWithSpan], from: usize) -> Option<usize> {
    (from..tokens.len()).find(|&i| !is_blank(&tokens[i].token))
}

/// The ksqlDB clauses lifted out of a query, as token runs for their own parsers.
#[derive(Debug, Default)]
pub struct LiftedClauses {
    /// `TUMBLING (…)`, `HOPPING (…)` or `SESSION (…)`, without the `WINDOW` keyword.
    pub window: Option<Vec<TokenWithSpan>>,
    /// The expressions after `PARTITION BY`.
    pub partition_by: Option<Vec<TokenWithSpan>>,
    pub emit: Option<Emit>,
    /// For each `WITHIN`, the number of the join (0-based) it belongs to and its tokens.
    pub within: Vec<(usize, Vec<TokenWithSpan>)>,
}

/// Removes the ksqlDB clauses from a query's tokens (only at parenthesis depth 0, so
/// `OVER (PARTITION BY …)` stays) and returns them separately.
pub fn lift_query_clauses(tokens: Vec<TokenWithSpan>) -> Result<(Vec<TokenWithSpan>, LiftedClauses), ParseError> {
    let mut lifted = LiftedClauses::default();
    let mut out = Vec::with_capacity(tokens.len());
    let mut depth = 0i64;
    let mut joins = 0usize;
    let mut i = 0;
    while i < tokens.len() {
        let token = &tokens[i].token;
        match token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            _ => {}
        }
        if depth != 0 || !matches!(token, Token::Word(_)) {
            out.push(tokens[i].clone());
            i += 1;
            continue;
        }
        let next = next_solid(&tokens, i + 1);
        let next_is = |word: &str| next.is_some_and(|n| is_word(&tokens[n].token, word));
        let at = tokens[i].span.start;
        if is_word(token, "JOIN") {
            joins += 1;
        } else if is_word(token, "WINDOW") && (next_is("TUMBLING") || next_is("HOPPING") || next_is("SESSION")) {
            let start = next.unwrap_or(i + 1);
            let end = balanced_end(&tokens, start)?;
            if lifted.window.replace(tokens[start..end].to_vec()).is_some() {
                return Err(ParseError::new("a query has at most one WINDOW clause", at));
            }
            i = end;
            continue;
        } else if is_word(token, "EMIT") && (next_is("CHANGES") || next_is("FINAL")) {
            let n = next.unwrap_or(i + 1);
            let emit = if is_word(&tokens[n].token, "CHANGES") { Emit::Changes } else { Emit::Final };
            if lifted.emit.replace(emit).is_some() {
                return Err(ParseError::new("a query has at most one EMIT clause", at));
            }
            i = n + 1;
            continue;
        } else if is_word(token, "PARTITION") && next_is("BY") {
            let start = next.unwrap_or(i + 1) + 1;
            let end = run_until(&tokens, start, &["HAVING", "EMIT", "LIMIT", "WINDOW", "ORDER"]);
            if lifted.partition_by.replace(tokens[start..end].to_vec()).is_some() {
                return Err(ParseError::new("a query has at most one PARTITION BY clause", at));
            }
            i = end;
            continue;
        } else if is_word(token, "WITHIN") {
            if joins == 0 {
                return Err(ParseError::new("WITHIN belongs to a JOIN", at)
                    .with_hint("write `FROM a JOIN b WITHIN 1 HOUR ON a.id = b.id`"));
            }
            let end = run_until(&tokens, i + 1, &["ON"]);
            lifted.within.push((joins - 1, tokens[i + 1..end].to_vec()));
            i = end;
            continue;
        }
        out.push(tokens[i].clone());
        i += 1;
    }
    Ok((out, lifted))
}

/// From the word at `start` (e.g. `TUMBLING`), the index just past its parenthesised body.
fn balanced_end(tokens: &[TokenWithSpan], start: usize) -> Result<usize, ParseError> {
    let open = next_solid(tokens, start + 1).filter(|&n| tokens[n].token == Token::LParen).ok_or_else(|| {
        ParseError::new("expected ( after the window type", tokens[start].span.end)
            .with_hint("write e.g. WINDOW TUMBLING (SIZE 1 MINUTE)")
    })?;
    let mut depth = 0i64;
    for (i, t) in tokens.iter().enumerate().skip(open) {
        match t.token {
            Token::LParen => depth += 1,
            Token::RParen => {
                depth -= 1;
                if depth == 0 {
                    return Ok(i + 1);
                }
            }
            _ => {}
        }
    }
    Err(ParseError::new("the window's ( is never closed", tokens[open].span.start))
}

/// The index of the first depth-0 word among `stops` at or after `start`, else the end.
fn run_until(tokens: &[TokenWithSpan], start: usize, stops: &[&str]) -> usize {
    let mut depth = 0i64;
    for (i, t) in tokens.iter().enumerate().skip(start) {
        match t.token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            _ if depth == 0 && stops.iter().any(|s| is_word(&t.token, s)) => return i,
            _ => {}
        }
    }
    tokens.len()
}

/// The position of the first non-blank token, for errors about a whole statement.
pub fn first_location(tokens: &[TokenWithSpan]) -> Location {
    tokens.iter().find(|t| !is_blank(&t.token)).map_or(Location::new(1, 1), |t| t.span.start)
}

/// Byte offsets of `text` for sqlparser's 1-based line/column locations.
pub struct Offsets<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> Offsets<'a> {
    pub fn new(text: &'a str) -> Self {
        let line_starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        Offsets { text, line_starts }
    }

    /// The byte offset of `location` (the end of the text if it lies beyond).
    pub fn byte(&self, location: Location) -> usize {
        let Some(&start) = self.line_starts.get(location.line.saturating_sub(1) as usize) else {
            return self.text.len();
        };
        self.text[start..]
            .char_indices()
            .nth(location.column.saturating_sub(1) as usize)
            .map_or(self.text.len(), |(b, _)| start + b)
    }
}
