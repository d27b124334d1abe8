//! `eddy` / `eddy repl`: the interactive shell, on the same `Session::execute` path as
//! `eddy run`.
//!
//! A statement may span lines; it runs once the input ends with `;` outside quotes and
//! parentheses. Ctrl-C clears the statement being typed, or stops the one running (a `PRINT`
//! that follows its topic) rather than the REPL; Ctrl-D or `exit` leaves. History is kept in
//! `~/.eddy_history`; Tab completes keywords and the names of streams, tables and topics.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, Helper};

use datafusion::sql::sqlparser::tokenizer::Token;
use futures::FutureExt;

use super::CliError;
use crate::log::Log;
use crate::session::{Session, SessionError};
use crate::sql::lexer::{split_statements, tokenize};

const PROMPT: &str = "eddy> ";
const CONTINUATION: &str = "   -> ";

const KEYWORDS: &[&str] = &[
    "ADVANCE",
    "ALL",
    "AND",
    "AS",
    "BEGINNING",
    "BETWEEN",
    "BY",
    "CASE",
    "CAST",
    "CHANGES",
    "CREATE",
    "DEFINE",
    "DELETE",
    "DESCRIBE",
    "DROP",
    "ELSE",
    "EMIT",
    "END",
    "EXISTS",
    "EXPLAIN",
    "EXTENDED",
    "FINAL",
    "FROM",
    "FUNCTION",
    "FUNCTIONS",
    "GRACE",
    "GROUP",
    "HAVING",
    "HEADER",
    "HEADERS",
    "HOPPING",
    "IF",
    "IN",
    "INSERT",
    "INTO",
    "JOIN",
    "KEY",
    "LEFT",
    "LIKE",
    "LIMIT",
    "LIST",
    "NOT",
    "NULL",
    "ON",
    "OR",
    "PARTITION",
    "PERIOD",
    "PRIMARY",
    "PRINT",
    "PROPERTIES",
    "QUERIES",
    "REPLACE",
    "RETENTION",
    "RUN",
    "SCRIPT",
    "SELECT",
    "SESSION",
    "SET",
    "SHOW",
    "SIZE",
    "SOURCE",
    "STREAM",
    "STREAMS",
    "STRUCT",
    "TABLE",
    "TABLES",
    "TERMINATE",
    "THEN",
    "TOPIC",
    "TOPICS",
    "TUMBLING",
    "TYPE",
    "TYPES",
    "UNDEFINE",
    "UNSET",
    "VALUES",
    "VARIABLES",
    "WHEN",
    "WHERE",
    "WINDOW",
    "WITH",
    "WITHIN",
];

const HELP: &str = "\
Statements end with ';' and may span lines. For example:
  CREATE STREAM pageviews (user_id STRING KEY, page STRING)
    WITH (KAFKA_TOPIC='pageviews', VALUE_FORMAT='JSON', PARTITIONS=3);
  SHOW STREAMS;   DESCRIBE pageviews;   SHOW TOPICS;   SET 'auto.offset.reset'='earliest';
Queries:
  SELECT … FROM s [JOIN …] [WHERE …] [GROUP BY …] EMIT CHANGES [LIMIT n];   (push: rows as they come)
  SELECT … FROM table [WHERE …];                                       (pull: the table now)
  CREATE STREAM|TABLE x AS SELECT …;   INSERT INTO x SELECT …;           (persistent, in the background)
  SHOW QUERIES;   EXPLAIN <query id>;   TERMINATE <query id>;
Also: CREATE|DROP TYPE, DROP, SHOW|LIST, DESCRIBE [FUNCTION], SET|UNSET, DEFINE|UNDEFINE,
RUN SCRIPT, INSERT INTO … VALUES, PRINT topic [FROM BEGINNING] [LIMIT n]; windows (TUMBLING,
HOPPING, SESSION), joins of streams and tables, OVER windows.
Keys: Tab completes, Ctrl-C clears the statement being typed or stops the one running,
Ctrl-D or 'exit' leaves. 'eddy --server URL' runs this shell against a server.
The SQL reference is docs/sql-reference.md.";

/// Completion of keywords and catalog names.
struct EddyHelper {
    names: Arc<Mutex<Vec<String>>>,
}

impl Completer for EddyHelper {
    type Candidate = Pair;

    fn complete(&self, line: &str, pos: usize, _: &Context<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        let start = line[..pos].rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-')).map_or(0, |i| i + 1);
        let word = &line[start..pos];
        if word.is_empty() {
            return Ok((pos, Vec::new()));
        }
        let upper = word.to_uppercase();
        let names = self.names.lock().map(|n| n.clone()).unwrap_or_default();
        // Names first: after DESCRIBE or FROM a name is the likelier word.
        let mut candidates: Vec<Pair> = names
            .into_iter()
            .chain(KEYWORDS.iter().map(|k| (*k).to_owned()))
            .filter(|candidate| candidate.to_uppercase().starts_with(&upper))
            .map(|candidate| Pair { display: candidate.clone(), replacement: candidate })
            .collect();
        candidates.dedup_by(|a, b| a.replacement == b.replacement);
        Ok((start, candidates))
    }
}

impl Hinter for EddyHelper {
    type Hint = String;
}

impl Highlighter for EddyHelper {
    fn highlight_prompt<'b, 's: 'b, 'p: 'b>(&'s self, prompt: &'p str, _default: bool) -> Cow<'b, str> {
        Cow::Borrowed(prompt)
    }
}

impl Validator for EddyHelper {}

impl Helper for EddyHelper {}

/// Where the REPL's statements run: a session here, or a server (`--server URL`).
enum Backend {
    Local { session: Box<Session>, log: Arc<dyn Log> },
    Remote(super::remote::RemoteSession),
}

impl Backend {
    async fn execute(&mut self, statements: &str) -> Result<(), String> {
        let mut print = |result: crate::session::StatementResult| print!("{result}");
        match self {
            Backend::Local { session, .. } => {
                session.execute(statements, &mut print).await.map_err(|e| describe_error(&e))
            }
            Backend::Remote(remote) => remote.execute(statements, &mut print).await.map_err(|e| format!("error: {e}")),
        }
    }

    async fn refresh_names(&self, names: &Mutex<Vec<String>>) {
        let all = match self {
            Backend::Local { session, log } => {
                let mut all: Vec<String> = session.catalog().sources().map(|s| s.name.clone()).collect();
                all.extend(session.catalog().queries().map(|q| q.id.clone()));
                all.extend(log.list_topics().await.unwrap_or_default());
                all
            }
            Backend::Remote(remote) => remote.names().await,
        };
        if let Ok(mut names) = names.lock() {
            *names = all;
        }
    }
}

pub async fn run(data_dir: &super::LogPlace, server: Option<&str>) -> Result<(), CliError> {
    let (mut backend, place) = match server {
        Some(url) => {
            let remote = super::remote::RemoteSession::connect(url).await.map_err(CliError::User)?;
            (Backend::Remote(remote), url.to_string())
        }
        None => {
            let log: Arc<dyn Log> = data_dir.open().await?;
            let session = data_dir.session(Arc::clone(&log)).await?;
            (Backend::Local { session: Box::new(session), log }, data_dir.display().to_string())
        }
    };
    let names = Arc::new(Mutex::new(Vec::new()));
    backend.refresh_names(&names).await;

    let mut editor: Editor<EddyHelper, rustyline::history::DefaultHistory> =
        Editor::new().map_err(|e| CliError::Internal(format!("cannot start the terminal: {e}")))?;
    editor.set_helper(Some(EddyHelper { names: Arc::clone(&names) }));
    let history = history_path();
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    println!("Eddy {} on {place} — type 'help' for help, Ctrl-D to leave.", env!("CARGO_PKG_VERSION"));

    let mut interrupt = super::interrupt_signal()?;
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() { PROMPT } else { CONTINUATION };
        let line = match tokio::task::block_in_place(|| editor.readline(prompt)) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => {
                buffer.clear(); // Ctrl-C: drop the statement being typed
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(CliError::Internal(format!("reading the terminal: {e}"))),
        };
        if buffer.is_empty() {
            match line.trim().trim_end_matches(';').to_lowercase().as_str() {
                "" => continue,
                "exit" | "quit" => break,
                "help" => {
                    println!("{HELP}");
                    continue;
                }
                _ => {}
            }
        }
        if !buffer.is_empty() {
            buffer.push('\n');
        }
        buffer.push_str(&line);
        if !is_complete(&buffer) {
            continue;
        }
        let _ = editor.add_history_entry(buffer.as_str());
        let statements = std::mem::take(&mut buffer);
        // An interrupt that arrived while nothing ran must not cancel this statement.
        while let Some(Some(())) = interrupt.recv().now_or_never() {}
        // Ctrl-C while a statement runs stops that statement (a PRINT that follows its
        // topic, say), not the REPL; on a server, closing the request stops its query.
        tokio::select! {
            outcome = backend.execute(&statements) => {
                if let Err(e) = outcome {
                    eprintln!("{e}");
                }
            }
            _ = interrupt.recv() => println!("Statement cancelled."),
        }
        backend.refresh_names(&names).await;
    }
    if let Some(path) = &history {
        let _ = editor.save_history(path);
    }
    if let Backend::Local { mut session, .. } = backend {
        if session.has_running_queries() {
            // The persistent queries stop with the REPL (flushed and committed), and resume
            // wherever the data directory is opened next.
            println!("Stopping the persistent queries running here.");
        }
        session.shutdown().await;
    }
    Ok(())
}

/// Whether the text typed so far ends a statement: its last token, outside quotes and
/// parentheses, is `;`. Text that does not tokenize (an open quote) is not complete.
fn is_complete(text: &str) -> bool {
    let Ok(tokens) = tokenize(text) else { return false };
    let solid: Vec<_> = tokens.iter().filter(|t| !matches!(t.token, Token::Whitespace(_))).collect();
    let ends_with_semicolon = solid.last().is_some_and(|t| t.token == Token::SemiColon);
    let mut depth = 0i64;
    for t in &solid {
        match t.token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            _ => {}
        }
    }
    ends_with_semicolon && depth <= 0 && !split_statements(tokens).is_empty()
}

fn describe_error(error: &SessionError) -> String {
    match (error, error.location()) {
        (SessionError::Parse(e), _) => format!("error: {e}"),
        (_, Some(at)) => format!("error: line {}:{}: {error}", at.line, at.column),
        (_, None) => format!("error: {error}"),
    }
}

fn history_path() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".eddy_history"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_end_at_a_semicolon_outside_quotes_and_parentheses() {
        assert!(is_complete("SHOW STREAMS;"));
        assert!(is_complete("CREATE STREAM s (a INT)\n WITH (KAFKA_TOPIC='t;', VALUE_FORMAT='JSON');"));
        assert!(!is_complete("CREATE STREAM s (a INT"));
        assert!(!is_complete("SELECT 'unterminated;"));
        assert!(!is_complete("SHOW STREAMS"));
        assert!(!is_complete("CREATE STREAM s (a INT;"));
        assert!(!is_complete(";"));
    }

    #[test]
    fn completion_offers_keywords_and_names() {
        let helper = EddyHelper { names: Arc::new(Mutex::new(vec!["PAGEVIEWS".into(), "pageviews".into()])) };
        let history = rustyline::history::DefaultHistory::new();
        let context = Context::new(&history);
        let (start, found) = helper.complete("describe pag", 12, &context).unwrap();
        assert_eq!(start, 9);
        let words: Vec<&str> = found.iter().map(|p| p.replacement.as_str()).collect();
        assert_eq!(words, ["PAGEVIEWS", "pageviews"]);
        let (_, found) = helper.complete("sho", 3, &context).unwrap();
        assert_eq!(found.iter().map(|p| p.replacement.as_str()).collect::<Vec<_>>(), ["SHOW"]);
    }
}
