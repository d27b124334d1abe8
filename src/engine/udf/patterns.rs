//! ksqlDB's regular-expression functions: `REGEXP_EXTRACT` and `REGEXP_EXTRACT_ALL` (both
//! `(pattern, input[, group])`), `REGEXP_REPLACE(input, regex, replacement)` with Java's
//! replacement syntax (`$1`, `${name}`, `\$`), which replaces DataFusion's (`\1` syntax), and
//! `REGEXP_SPLIT_TO_ARRAY(input, regex)`, split as Java's `Pattern.split` when the pattern
//! matches the empty text and as Guava's `Splitter.on(pattern)` otherwise.
//!
//! ksqlDB's patterns are `java.util.regex`; here they are the `regex` crate's, after
//! [`translate`] has rewritten the Java syntax that means something else (or nothing) to it:
//! `\d`, `\w`, `\s`, `\h`, `\v` and their negations are ASCII classes as in Java, `\Q…\E`
//! quotes, `\p{Alpha}`-style POSIX classes are ASCII, `\p{IsLatin}` drops its `Is`, `\e`,
//! `\0ooo`, `\cX` and `\R` are spelled out, and `[[:x:]]` is a nested set as in Java. What the
//! `regex` crate cannot do is an error (so the row is null with a processing-log entry) where
//! ksqlDB would have matched: back-references (`\1`, `\k<name>`), look-around (`(?=`, `(?!`,
//! `(?<=`, `(?<!`), possessive quantifiers (`a*+`), atomic groups (`(?>`), `\G`, `\Z`, `\X`,
//! Unicode blocks (`\p{InGreek}`) and the flags `(?d)`/`(?U)`/`(?c)` (`U` exists but means
//! "ungreedy" to the crate, not Java's Unicode classes). Differences that remain without an
//! error: `.` excludes only `\n` (Java also excludes `\r`, U+0085, U+2028 and U+2029); `$`
//! without `(?m)` matches only at the very end (Java also before a final line terminator);
//! `(?i)` folds all of Unicode (Java folds ASCII unless `(?u)`); `\b` is Unicode-aware.
//!
//! Matches are found as Java's `Matcher.find` finds them (see [`java_matches`]); the compiled
//! regex is cached per thread, so a literal pattern is compiled once, not per row or batch.

use std::cell::RefCell;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array, ListBuilder, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Int64Type};
use datafusion::common::{DataFusionError, Result, exec_err};
use datafusion::logical_expr::{ScalarUDF, Signature, TypeSignature, Volatility};
use regex::{Captures, Regex};

use super::words::string_array;
use super::{Arrays, KsqlFunction, returns};

pub fn functions() -> Vec<ScalarUDF> {
    vec![
        KsqlFunction::udf("regexp_extract", extract_signature(), returns::<0>, regexp_extract),
        KsqlFunction::udf(
            "regexp_extract_all",
            extract_signature(),
            |_| Ok(DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))),
            regexp_extract_all,
        ),
        KsqlFunction::udf(
            "regexp_replace",
            Signature::exact(vec![DataType::Utf8; 3], Volatility::Immutable),
            returns::<0>,
            regexp_replace,
        ),
        KsqlFunction::udf(
            "regexp_split_to_array",
            Signature::exact(vec![DataType::Utf8; 2], Volatility::Immutable),
            |_| Ok(DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))),
            regexp_split_to_array,
        ),
    ]
}

/// `(pattern, input)` and `(pattern, input, group)`, the group an INT or a BIGINT.
fn extract_signature() -> Signature {
    let strings = vec![DataType::Utf8, DataType::Utf8];
    let mut variants = vec![TypeSignature::Exact(strings.clone())];
    for group in [DataType::Int32, DataType::Int64] {
        let mut types = strings.clone();
        types.push(group);
        variants.push(TypeSignature::Exact(types));
    }
    Signature::one_of(variants, Volatility::Immutable)
}

/// The group argument as BIGINTs (group 0 for every row when there is none).
fn groups(args: &Arrays) -> Result<Int64Array> {
    match args.get(2) {
        Some(group) => Ok(cast(group, &DataType::Int64)?.as_primitive::<Int64Type>().clone()),
        None => Ok(Int64Array::from(vec![0; args[0].len()])),
    }
}

/// `REGEXP_EXTRACT(pattern, input[, group])`: the first match, or that group of it; null for
/// no match, a group past the pattern's count, or a group that took no part in the match.
/// A negative group is an error when there is a match (Java's `group(-1)` throws).
fn regexp_extract(args: &Arrays, _: &DataType) -> Result<ArrayRef> {
    let (patterns, inputs, groups) = (args[0].as_string::<i32>(), args[1].as_string::<i32>(), groups(args)?);
    let mut cache = LastRegex::default();
    let mut out = Vec::with_capacity(inputs.len());
    for row in 0..inputs.len() {
        if patterns.is_null(row) || inputs.is_null(row) || groups.is_null(row) {
            out.push(None);
            continue;
        }
        let regex = cache.get(patterns.value(row))?;
        let group = groups.value(row);
        if group > group_count(regex) as i64 {
            out.push(None);
            continue;
        }
        let Some(found) = java_matches(regex, inputs.value(row)).next() else {
            out.push(None);
            continue;
        };
        out.push(group_of(&found, group)?.map(str::to_owned));
    }
    string_array(&out)
}

/// `REGEXP_EXTRACT_ALL(pattern, input[, group])`: every successive match, or that group of
/// each (null elements where the group took no part); an empty array for no match; null for
/// a group past the pattern's count. A negative group is an error when there is a match.
fn regexp_extract_all(args: &Arrays, _: &DataType) -> Result<ArrayRef> {
    let (patterns, inputs, groups) = (args[0].as_string::<i32>(), args[1].as_string::<i32>(), groups(args)?);
    let mut cache = LastRegex::default();
    let mut out = ListBuilder::new(StringBuilder::new());
    // Offsets are i32: stop before the text or the element count could overflow them.
    let (mut bytes, mut elements) = (0usize, 0usize);
    for row in 0..inputs.len() {
        if patterns.is_null(row) || inputs.is_null(row) || groups.is_null(row) {
            out.append_null();
            continue;
        }
        let regex = cache.get(patterns.value(row))?;
        let group = groups.value(row);
        if group > group_count(regex) as i64 {
            out.append_null();
            continue;
        }
        for found in java_matches(regex, inputs.value(row)) {
            let value = group_of(&found, group)?;
            bytes += value.map_or(0, str::len);
            elements += 1;
            if bytes > i32::MAX as usize || elements > i32::MAX as usize {
                return exec_err!("REGEXP_EXTRACT_ALL: the result is too large for one batch");
            }
            out.values().append_option(value);
        }
        out.append(true);
    }
    Ok(Arc::new(out.finish()))
}

/// Group `group` of a match (`None` when it took no part); a negative group is an error.
fn group_of<'t>(found: &Captures<'t>, group: i64) -> Result<Option<&'t str>> {
    let Ok(index) = usize::try_from(group) else { return exec_err!("No group {group}") };
    Ok(found.get(index).map(|m| m.as_str()))
}

/// The number of capturing groups (not counting group 0).
fn group_count(regex: &Regex) -> usize {
    regex.captures_len().saturating_sub(1)
}

/// `REGEXP_REPLACE(input, regex, replacement)`: every match replaced as Java's
/// `String.replaceAll` does. Any null gives null. The replacement is read only when there is
/// a match, as in Java, so a bad group reference is an error only then.
fn regexp_replace(args: &Arrays, _: &DataType) -> Result<ArrayRef> {
    let (inputs, patterns, replacements) =
        (args[0].as_string::<i32>(), args[1].as_string::<i32>(), args[2].as_string::<i32>());
    let mut cache = LastRegex::default();
    let mut out = Vec::with_capacity(inputs.len());
    for row in 0..inputs.len() {
        if inputs.is_null(row) || patterns.is_null(row) || replacements.is_null(row) {
            out.push(None);
            continue;
        }
        let regex = cache.get(patterns.value(row))?;
        out.push(Some(replace_all(regex, inputs.value(row), replacements.value(row))?));
    }
    string_array(&out)
}

/// `REGEXP_SPLIT_TO_ARRAY(input, regex)`: the pieces of the input between matches. Empty
/// pieces at the ends and between adjacent matches are kept, and no match gives the input
/// alone. A pattern that matches the empty text (`''`, `x*`) splits as Java's
/// `Pattern.split`: no empty piece for an empty match at the start, and trailing empty pieces
/// dropped (so `''` splits into characters). NULL for a NULL argument; an invalid pattern is
/// an error.
fn regexp_split_to_array(args: &Arrays, _: &DataType) -> Result<ArrayRef> {
    let (inputs, patterns) = (args[0].as_string::<i32>(), args[1].as_string::<i32>());
    let mut cache = LastRegex::default();
    let mut out = ListBuilder::new(StringBuilder::new());
    let (mut bytes, mut elements) = (0usize, 0usize);
    for row in 0..inputs.len() {
        if inputs.is_null(row) || patterns.is_null(row) {
            out.append_null();
            continue;
        }
        let regex = cache.get(patterns.value(row))?;
        let input = inputs.value(row);
        let pieces = if regex.is_match("") { java_split(regex, input) } else { guava_split(regex, input) };
        bytes += input.len();
        elements += pieces.len();
        if bytes > i32::MAX as usize || elements > i32::MAX as usize {
            return exec_err!("REGEXP_SPLIT_TO_ARRAY: the result is too large for one batch");
        }
        out.append_value(pieces.into_iter().map(Some));
    }
    Ok(Arc::new(out.finish()))
}

/// Java's `Pattern.split(input)` (limit 0).
fn java_split<'t>(regex: &Regex, input: &'t str) -> Vec<&'t str> {
    let mut pieces = Vec::new();
    let mut index = 0;
    for found in java_matches(regex, input) {
        let Some(whole) = found.get(0) else { continue };
        if index == 0 && whole.start() == 0 && whole.is_empty() {
            continue;
        }
        pieces.push(input.get(index..whole.start()).unwrap_or_default());
        index = whole.end();
    }
    if index == 0 {
        return vec![input];
    }
    pieces.push(input.get(index..).unwrap_or_default());
    while pieces.last().is_some_and(|p| p.is_empty()) {
        pieces.pop();
    }
    pieces
}

/// Guava's `Splitter.on(pattern).splitToList(input)`: each search starts afresh where the
/// last separator ended; an empty separator right at the start of a piece is skipped by
/// searching one character further, and one at the very end ends the list.
fn guava_split<'t>(regex: &Regex, input: &'t str) -> Vec<&'t str> {
    let mut pieces = Vec::new();
    let mut offset = Some(0);
    'pieces: while let Some(piece_start) = offset {
        while let Some(search) = offset {
            let (end, after) = match regex.find_at(input, search) {
                Some(separator) => (separator.start(), Some(separator.end())),
                None => (input.len(), None),
            };
            offset = after;
            if offset == Some(piece_start) {
                let step = input.get(piece_start..).and_then(|rest| rest.chars().next()).map_or(1, char::len_utf8);
                offset = Some(piece_start + step).filter(|&next| next <= input.len());
                continue;
            }
            pieces.push(input.get(piece_start..end).unwrap_or_default());
            continue 'pieces;
        }
        break;
    }
    pieces
}

/// `text` with each match of `regex` replaced by `replacement` (Java syntax).
fn replace_all(regex: &Regex, text: &str, replacement: &str) -> Result<String> {
    let mut pieces: Option<Vec<Piece>> = None;
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for found in java_matches(regex, text) {
        let Some(whole) = found.get(0) else { continue };
        out.push_str(text.get(copied..whole.start()).unwrap_or_default());
        if pieces.is_none() {
            pieces = Some(parse_replacement(replacement, regex)?);
        }
        for piece in pieces.iter().flatten() {
            match piece {
                Piece::Text(s) => out.push_str(s),
                Piece::Group(i) => out.push_str(found.get(*i).map_or("", |m| m.as_str())),
            }
        }
        copied = whole.end();
        if out.len() > i32::MAX as usize {
            return exec_err!("REGEXP_REPLACE: the result is over 2 GiB of text, too large");
        }
    }
    out.push_str(text.get(copied..).unwrap_or_default());
    Ok(out)
}

/// A part of a parsed replacement: literal text, or a group's text.
#[derive(Debug, PartialEq)]
enum Piece {
    Text(String),
    Group(usize),
}

/// Java's replacement syntax (`Matcher.appendReplacement`): `\c` is `c`; `$n` is group n,
/// taking further digits while the number stays a group (`$12` with one group is group 1
/// then `2`); `${name}` a named group. Errors as Java's: a trailing `\` or `$`, `$` followed
/// by neither a digit nor `{`, a bad or unknown name, a group number past the count.
fn parse_replacement(replacement: &str, regex: &Regex) -> Result<Vec<Piece>> {
    let fail = |message: String| Err(DataFusionError::Execution(format!("REGEXP_REPLACE: {message}")));
    let count = group_count(regex);
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = replacement.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(escaped) => text.push(escaped),
                None => return fail("character to be escaped is missing".into()),
            },
            '$' => {
                let group = match chars.next() {
                    None => return fail("Illegal group reference: group index is missing".into()),
                    Some('{') => {
                        let mut name = String::new();
                        while let Some(&n) = chars.peek().filter(|n| n.is_ascii_alphanumeric()) {
                            name.push(n);
                            chars.next();
                        }
                        if name.is_empty() {
                            return fail("named capturing group has 0 length name".into());
                        }
                        if chars.next() != Some('}') {
                            return fail("named capturing group is missing trailing '}'".into());
                        }
                        if name.starts_with(|n: char| n.is_ascii_digit()) {
                            return fail(format!("capturing group name {{{name}}} starts with digit character"));
                        }
                        match regex.capture_names().position(|n| n == Some(name.as_str())) {
                            Some(index) => index,
                            None => return fail(format!("No group with name {{{name}}}")),
                        }
                    }
                    Some(digit) => {
                        let Some(first) = digit.to_digit(10) else {
                            return fail("Illegal group reference".into());
                        };
                        let mut group = first as usize;
                        while let Some(next) = chars.peek().and_then(|d| d.to_digit(10)) {
                            match group.checked_mul(10).and_then(|g| g.checked_add(next as usize)) {
                                Some(longer) if longer <= count => {
                                    group = longer;
                                    chars.next();
                                }
                                _ => break,
                            }
                        }
                        if group > count {
                            return fail(format!("No group {group}"));
                        }
                        group
                    }
                };
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Group(group));
            }
            other => text.push(other),
        }
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

/// The successive matches of `regex` in `text` as Java's `Matcher.find` finds them: the next
/// search starts where the last match ended, one character further after an empty match; so
/// an empty match may directly follow a non-empty one (`b*` in `abc` matches at 0, 1, 2 and
/// 3), which the `regex` crate's own iterators skip.
pub(crate) fn java_matches<'r, 't>(regex: &'r Regex, text: &'t str) -> impl Iterator<Item = Captures<'t>> + 'r
where
    't: 'r,
{
    let mut from = Some(0);
    std::iter::from_fn(move || {
        let start = from.filter(|s| *s <= text.len())?;
        let found = regex.captures_at(text, start)?;
        let whole = found.get(0)?;
        from = if whole.is_empty() {
            text.get(whole.end()..).and_then(|rest| rest.chars().next()).map(|c| whole.end() + c.len_utf8())
        } else {
            Some(whole.end())
        };
        Some(found)
    })
}

/// The regex of the previous row, kept while rows share their pattern.
#[derive(Default)]
struct LastRegex {
    last: Option<(String, Arc<Regex>)>,
}

impl LastRegex {
    fn get(&mut self, pattern: &str) -> Result<&Regex> {
        if self.last.as_ref().is_none_or(|(p, _)| p != pattern) {
            self.last = Some((pattern.to_owned(), compile(pattern)?));
        }
        match &self.last {
            Some((_, regex)) => Ok(regex),
            None => exec_err!("no regular expression"),
        }
    }
}

/// How many patterns each thread keeps compiled (invalid ones too, with their error).
const CACHED: usize = 32;

/// A pattern as written, and its regex or why it has none.
type Compiled = (String, std::result::Result<Arc<Regex>, String>);

thread_local! {
    static COMPILED: RefCell<Vec<Compiled>> = const { RefCell::new(Vec::new()) };
}

/// A Java pattern compiled (see [`translate`]), from this thread's cache when it was seen
/// lately. An invalid pattern is an error naming it.
pub(crate) fn compile(pattern: &str) -> Result<Arc<Regex>> {
    let compiled = COMPILED.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some((_, compiled)) = cache.iter().find(|(p, _)| p == pattern) {
            return compiled.clone();
        }
        let compiled = translate(pattern)
            .and_then(|rust| Regex::new(&rust).map_err(|e| short_error(&e.to_string())))
            .map(Arc::new);
        if cache.len() >= CACHED {
            cache.drain(..1);
        }
        cache.push((pattern.to_owned(), compiled.clone()));
        compiled
    });
    compiled.map_err(|why| DataFusionError::Execution(format!("Invalid regular expression pattern: {pattern} ({why})")))
}

/// The `error: …` line of the `regex` crate's multi-line message.
fn short_error(message: &str) -> String {
    message
        .lines()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .unwrap_or_else(|| message.lines().last().unwrap_or(message))
        .to_owned()
}

/// Java's pattern syntax in the `regex` crate's, where the two differ and the crate can say
/// it (see the module's comment). Everything else is copied as written.
fn translate(java: &str) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(java.len() + 16);
    let mut chars = java.chars().peekable();
    // Nesting of `[…]` sets; inside one, `]` straight after `[` or `[^` is literal.
    let mut depth = 0usize;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(escaped) = chars.next() else { return Err("unexpected end of pattern after '\\'".into()) };
                match escaped {
                    'd' => out.push_str("[0-9]"),
                    'D' => out.push_str("[^0-9]"),
                    'w' => out.push_str("[0-9A-Za-z_]"),
                    'W' => out.push_str("[^0-9A-Za-z_]"),
                    's' => out.push_str(r"[\t\n\x0B\x0C\r\x20]"),
                    'S' => out.push_str(r"[^\t\n\x0B\x0C\r\x20]"),
                    'h' => out.push_str(HORIZONTAL_SPACE),
                    'H' => out.push_str(&HORIZONTAL_SPACE.replacen('[', "[^", 1)),
                    'v' => out.push_str(VERTICAL_SPACE),
                    'V' => out.push_str(&VERTICAL_SPACE.replacen('[', "[^", 1)),
                    'e' => out.push_str(r"\x1B"),
                    'R' if depth == 0 => out.push_str(&format!(r"(?:\r\n|{VERTICAL_SPACE})")),
                    'c' => match chars.next() {
                        Some(control) => out.push_str(&format!(r"\x{{{:X}}}", (control as u32) ^ 0x40)),
                        None => return Err("illegal control escape sequence".into()),
                    },
                    '0' => {
                        // Java's octal: `\0` then one to three octal digits, at most 0377.
                        let mut value = 0u32;
                        let mut digits = 0;
                        while let Some(d) = chars.peek().and_then(|d| d.to_digit(8)) {
                            if digits == 3 || (digits == 2 && value > 0o37) {
                                break;
                            }
                            value = value * 8 + d;
                            digits += 1;
                            chars.next();
                        }
                        if digits == 0 {
                            return Err("illegal octal escape sequence".into());
                        }
                        out.push_str(&format!(r"\x{{{value:X}}}"));
                    }
                    'Q' => {
                        // Quoted up to `\E` (or the end): every character literal.
                        while let Some(q) = chars.next() {
                            if q == '\\' && chars.peek() == Some(&'E') {
                                chars.next();
                                break;
                            }
                            push_literal(&mut out, q);
                        }
                    }
                    'p' | 'P' => {
                        let name: String = if chars.peek() == Some(&'{') {
                            chars.next();
                            let mut name = String::new();
                            loop {
                                match chars.next() {
                                    Some('}') => break name,
                                    Some(n) => name.push(n),
                                    None => return Err("unclosed character family".into()),
                                }
                            }
                        } else {
                            chars.next().map(String::from).unwrap_or_default()
                        };
                        out.push_str(&property(&name, escaped == 'P'));
                    }
                    other => {
                        out.push('\\');
                        out.push(other);
                    }
                }
            }
            '[' => {
                depth += 1;
                out.push('[');
                if chars.peek() == Some(&'^') {
                    chars.next();
                    out.push('^');
                }
                match chars.peek() {
                    // Literal at the start of a set, in both syntaxes.
                    Some(']') => {
                        chars.next();
                        out.push_str(r"\]");
                    }
                    // `[:alpha:]` is a set of five characters to Java, a POSIX class to the crate.
                    Some(':') => {
                        chars.next();
                        out.push_str(r"\:");
                    }
                    _ => {}
                }
            }
            ']' if depth > 0 => {
                depth -= 1;
                out.push(']');
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

/// Java's `\h`.
const HORIZONTAL_SPACE: &str = r"[\t\x20\xA0\x{1680}\x{180E}\x{2000}-\x{200A}\x{202F}\x{205F}\x{3000}]";

/// Java's `\v`.
const VERTICAL_SPACE: &str = r"[\n\x0B\x0C\r\x{85}\x{2028}\x{2029}]";

/// `c` matching itself, inside a set or out, whatever the flags (`(?x)` ignores spaces).
fn push_literal(out: &mut String, c: char) {
    if c.is_alphanumeric() || c == '_' {
        out.push(c);
    } else {
        out.push_str(&format!(r"\x{{{:X}}}", c as u32));
    }
}

/// `\p{name}` (or `\P{name}` when `negated`): Java's POSIX names are ASCII classes, `Is…` and
/// `java…` names become the crate's; the rest is passed on as written.
fn property(name: &str, negated: bool) -> String {
    let ascii = match name {
        "Lower" => Some(r"a-z"),
        "Upper" => Some(r"A-Z"),
        "ASCII" => Some(r"\x00-\x7F"),
        "Alpha" => Some(r"a-zA-Z"),
        "Digit" => Some(r"0-9"),
        "Alnum" => Some(r"a-zA-Z0-9"),
        "Punct" => Some(r"[:punct:]"),
        "Graph" => Some(r"[:graph:]"),
        "Print" => Some(r"[:print:]"),
        "Blank" => Some(r"\x20\t"),
        "Cntrl" => Some(r"[:cntrl:]"),
        "XDigit" => Some(r"0-9a-fA-F"),
        "Space" => Some(r"\t\n\x0B\x0C\r\x20"),
        _ => None,
    };
    if let Some(set) = ascii {
        return format!("[{}{set}]", if negated { "^" } else { "" });
    }
    let rust = match name {
        "javaLowerCase" => "Lowercase",
        "javaUpperCase" => "Uppercase",
        "javaWhitespace" | "IsWhite_Space" | "IsWhiteSpace" => "White_Space",
        "javaAlphabetic" => "Alphabetic",
        _ => name.strip_prefix("Is").filter(|rest| !rest.is_empty()).unwrap_or(name),
    };
    format!(r"\{}{{{rust}}}", if negated { 'P' } else { 'p' })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::engine::udf::test_arrays::{strings, texts};

    fn extract(pattern: &str, input: Option<&str>, group: Option<i64>) -> Result<Option<String>> {
        let args = [strings(&[Some(pattern)]), strings(&[input]), Arc::new(Int64Array::from(vec![group])) as ArrayRef];
        Ok(texts(&regexp_extract(&args, &DataType::Utf8)?).remove(0))
    }

    fn extract_all(pattern: &str, input: &str, group: i64) -> Result<Option<Vec<Option<String>>>> {
        let args = [strings(&[Some(pattern)]), strings(&[Some(input)]), Arc::new(Int64Array::from(vec![group])) as _];
        let list = regexp_extract_all(&args, &DataType::Null)?;
        let list = list.as_list::<i32>();
        Ok((!list.is_null(0)).then(|| texts(&list.value(0))))
    }

    fn replace(input: &str, pattern: &str, replacement: &str) -> Result<Option<String>> {
        let args = [strings(&[Some(input)]), strings(&[Some(pattern)]), strings(&[Some(replacement)])];
        Ok(texts(&regexp_replace(&args, &DataType::Utf8)?).remove(0))
    }

    fn owned(values: &[Option<&str>]) -> Vec<Option<String>> {
        values.iter().map(|v| v.map(str::to_owned)).collect()
    }

    #[test]
    fn extract_takes_the_first_match_or_a_group_of_it() {
        assert_eq!(extract("a(b+)", Some("xabbby"), Some(0)).unwrap().as_deref(), Some("abbb"));
        assert_eq!(extract("a(b+)", Some("xabbby"), Some(1)).unwrap().as_deref(), Some("bbb"));
        // Past the group count, no match, a group that took no part, a null: null.
        assert_eq!(extract("a(b+)", Some("xabbby"), Some(2)).unwrap(), None);
        assert_eq!(extract("z", Some("text"), Some(0)).unwrap(), None);
        assert_eq!(extract("a|(b)", Some("a"), Some(1)).unwrap(), None);
        assert_eq!(extract("a", None, Some(0)).unwrap(), None);
        assert_eq!(extract("a", Some("a"), None).unwrap(), None);
        // The two-argument form is group 0.
        let args = [strings(&[Some(r"\d+")]), strings(&[Some("ab12c")])];
        assert_eq!(texts(&regexp_extract(&args, &DataType::Utf8).unwrap()), owned(&[Some("12")]));
    }

    #[test]
    fn extract_errors_are_ksqldbs() {
        assert!(extract("(", Some("text"), Some(0)).is_err());
        assert!(extract("a", Some("a"), Some(-1)).is_err());
        // A negative group without a match is not looked at.
        assert_eq!(extract("z", Some("a"), Some(-1)).unwrap(), None);
        // A null input is null before the pattern is compiled.
        assert_eq!(extract("(", None, Some(0)).unwrap(), None);
    }

    #[test]
    fn extract_all_lists_every_match() {
        assert_eq!(extract_all(r"\d+", "a1b22c333", 0).unwrap(), Some(owned(&[Some("1"), Some("22"), Some("333")])));
        assert_eq!(extract_all(r"(\w)(\d)", "a1 b2 c", 2).unwrap(), Some(owned(&[Some("1"), Some("2")])));
        assert_eq!(extract_all("z", "text", 0).unwrap(), Some(vec![]));
        assert_eq!(extract_all("(a)|b", "ab", 1).unwrap(), Some(owned(&[Some("a"), None])));
        assert_eq!(extract_all("(a)", "ab", 2).unwrap(), None);
        assert!(extract_all("a", "a", -1).is_err());
        assert!(extract_all("[", "a", 0).is_err());
        // Empty matches as Java finds them, one after a non-empty match included.
        assert_eq!(extract_all("b*", "abc", 0).unwrap(), Some(owned(&[Some(""), Some("b"), Some(""), Some("")])));
    }

    #[test]
    fn replace_uses_javas_replacement_syntax() {
        assert_eq!(replace("foobar", "o+", "x").unwrap().as_deref(), Some("fxbar"));
        assert_eq!(replace("john smith", r"(\w+) (\w+)", "$2, $1").unwrap().as_deref(), Some("smith, john"));
        assert_eq!(replace("ab", "(?<x>a)", "[${x}]").unwrap().as_deref(), Some("[a]b"));
        assert_eq!(replace("ab", "a", r"\$1\\").unwrap().as_deref(), Some(r"$1\b"));
        // `$12` with one group is group 1 then "2"; an unmatched group is empty.
        assert_eq!(replace("ab", "(a)", "$12").unwrap().as_deref(), Some("a2b"));
        assert_eq!(replace("b", "(a)?b", "<$1>").unwrap().as_deref(), Some("<>"));
        // Java's empty matches: one right after a non-empty match counts.
        assert_eq!(replace("abc", "b*", "-").unwrap().as_deref(), Some("-a--c-"));
        assert_eq!(replace("", "x*", "-").unwrap().as_deref(), Some("-"));
        assert_eq!(replace("héé", "", "-").unwrap().as_deref(), Some("-h-é-é-"));
    }

    #[test]
    fn replace_errors_and_nulls() {
        for bad in ["$2", "$", "$x", r"a\", "${}", "${x", "${nope}", "${1a}"] {
            assert!(replace("ab", "(a)", bad).is_err(), "{bad}");
        }
        // No match: the replacement is never read, as in Java.
        assert_eq!(replace("ab", "z", "$9").unwrap().as_deref(), Some("ab"));
        assert!(replace("ab", "(", "x").is_err());
        let args = [strings(&[None, Some("a")]), strings(&[Some("a"), None]), strings(&[Some("b"), Some("b")])];
        assert_eq!(texts(&regexp_replace(&args, &DataType::Utf8).unwrap()), vec![None, None]);
    }

    #[test]
    fn java_syntax_is_translated() {
        // Java's \d, \w and \s are ASCII.
        assert_eq!(extract(r"\d+", Some("٣3"), Some(0)).unwrap().as_deref(), Some("3"));
        assert_eq!(extract(r"\w+", Some("éa_1"), Some(0)).unwrap().as_deref(), Some("a_1"));
        assert_eq!(extract(r"[\s]+", Some("a\u{2003} \tb"), Some(0)).unwrap().as_deref(), Some(" \t"));
        assert_eq!(extract(r"\Qa.b\E+", Some("a.bb"), Some(0)).unwrap().as_deref(), Some("a.bb"));
        assert_eq!(extract(r"\p{Alpha}+", Some("éab"), Some(0)).unwrap().as_deref(), Some("ab"));
        assert_eq!(extract(r"\p{IsLatin}+", Some("1ab"), Some(0)).unwrap().as_deref(), Some("ab"));
        assert_eq!(extract(r"[[:a]]+", Some("x:a:"), Some(0)).unwrap().as_deref(), Some(":a:"));
        assert_eq!(extract(r"[]a]+", Some("x]a"), Some(0)).unwrap().as_deref(), Some("]a"));
        assert_eq!(extract(r"\0101\e", Some("A\u{1b}"), Some(0)).unwrap().as_deref(), Some("A\u{1b}"));
        assert_eq!(extract(r"(?x) \Q a\E", Some(" a"), Some(0)).unwrap().as_deref(), Some(" a"));
        // What the crate cannot do is an error, not a wrong answer.
        assert!(extract(r"(a)\1", Some("aa"), Some(0)).is_err());
        assert!(extract(r"a(?=b)", Some("ab"), Some(0)).is_err());
    }

    fn split(input: &str, pattern: &str) -> Result<Vec<Option<String>>> {
        let list = regexp_split_to_array(&[strings(&[Some(input)]), strings(&[Some(pattern)])], &DataType::Null)?;
        Ok(texts(&list.as_list::<i32>().value(0)))
    }

    #[test]
    fn split_keeps_empty_pieces_between_matches() {
        assert_eq!(split("a-b--c", "-").unwrap(), owned(&[Some("a"), Some("b"), Some(""), Some("c")]));
        assert_eq!(split("-a-", "-").unwrap(), owned(&[Some(""), Some("a"), Some("")]));
        assert_eq!(split("abc", "x").unwrap(), owned(&[Some("abc")]));
        assert_eq!(split("", "x").unwrap(), owned(&[Some("")]));
        // Java's classes: \d is ASCII.
        assert_eq!(split("a1b٣c", r"\d").unwrap(), owned(&[Some("a"), Some("b٣c")]));
        // Empty separators that the pattern finds although it does not match '' (Guava).
        assert_eq!(split("ab cd", r"\b").unwrap(), owned(&[Some("ab"), Some(" "), Some("cd")]));
        assert!(split("a", "(").is_err());
    }

    #[test]
    fn split_by_a_pattern_matching_nothing_is_javas() {
        // Characters, without the empty pieces at the ends.
        assert_eq!(split("abc", "").unwrap(), owned(&[Some("a"), Some("b"), Some("c")]));
        assert_eq!(split("héé", "").unwrap(), owned(&[Some("h"), Some("é"), Some("é")]));
        assert_eq!(split("", "").unwrap(), owned(&[Some("")]));
        // Trailing empty pieces are dropped, a leading one (a non-empty match at 0) kept, and
        // an empty match right after a non-empty one makes an empty piece (`Matcher.find`).
        assert_eq!(split("xaxbxx", "x*").unwrap(), owned(&[Some(""), Some(""), Some("a"), Some(""), Some("b")]));
        assert_eq!(split("aaa", "a*").unwrap(), owned(&[]));
    }

    #[test]
    fn rows_with_different_patterns() {
        let args = [strings(&[Some("a+"), Some("b+"), Some("b+")]), strings(&[Some("aab"), Some("abb"), Some("b")])];
        assert_eq!(
            texts(&regexp_extract(&args, &DataType::Utf8).unwrap()),
            owned(&[Some("aa"), Some("bb"), Some("b")])
        );
    }
}
