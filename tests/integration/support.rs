//! What the integration tests share: a session over an embedded log in a directory, running
//! scripts, and reading a topic's records back.

use std::sync::Arc;

use eddy::log::{EmbeddedLog, Log, Record};
use eddy::session::{Session, SessionError, StatementResult};

/// A session over the embedded log in `dir`, whose push queries stop once caught up.
pub async fn session(dir: &std::path::Path) -> (Arc<dyn Log>, Session) {
    let log: Arc<dyn Log> = Arc::new(EmbeddedLog::open(dir).unwrap());
    let mut session = Session::open(Arc::clone(&log)).await.unwrap();
    session.set_until_idle(true);
    (log, session)
}

/// Runs a script; returns every result's text, or the error.
pub async fn run(session: &mut Session, script: &str) -> Result<Vec<String>, SessionError> {
    let mut out = Vec::new();
    session.execute(script, &mut |r: StatementResult| out.extend(texts(&r))).await?;
    Ok(out)
}

/// A result as the command line shows it; a push query's header and rows line by line.
pub fn texts(result: &StatementResult) -> Vec<String> {
    match result {
        StatementResult::Header(_) => result.to_string().lines().map(|l| format!("{l}\n")).collect(),
        StatementResult::Rows(rows) if rows.header.push => {
            result.to_string().lines().map(|l| format!("{l}\n")).collect()
        }
        other => vec![other.to_string()],
    }
}

/// Every record of a topic, partition by partition.
pub async fn records(log: &dyn Log, topic: &str) -> Vec<Record> {
    let mut all = Vec::new();
    for partition in 0..log.partition_count(topic).await.unwrap() {
        all.extend(log.read(topic, partition, 0, usize::MAX / 2).await.unwrap().records);
    }
    all
}

/// A key or value as text, `<null>` for none.
pub fn text(bytes: &Option<bytes::Bytes>) -> String {
    bytes.as_deref().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_else(|| "<null>".into())
}

/// A push query's rows in the command line's output: the cells of each `|…|` line after the
/// header.
pub fn push_rows(out: &[String]) -> Vec<Vec<&str>> {
    out.iter()
        .filter(|l| l.starts_with('|'))
        .skip(1)
        .map(|l| l.split('|').map(str::trim).filter(|c| !c.is_empty()).collect())
        .collect()
}
