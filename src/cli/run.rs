//! `eddy run FILE.sql`: executes a file's statements through a session on the embedded log.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;

use super::CliError;
use crate::log::Log;
use crate::session::SessionError;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The statements to run, separated by `;`. Without one, the persistent queries the data
    /// directory holds resume (each from its last checkpoint) and run.
    file: Option<PathBuf>,
    /// Exit once every persistent query has consumed all input present at start and flushed
    /// its output; a PRINT or push query stops at the end of its topic instead of following it.
    #[arg(long)]
    until_idle: bool,
}

pub async fn run(data_dir: &super::LogPlace, args: RunArgs) -> Result<(), CliError> {
    let (file, script) = match &args.file {
        Some(file) => {
            let script = std::fs::read_to_string(file)
                .map_err(|e| CliError::User(format!("cannot read {}: {e}", file.display())))?;
            (file.clone(), script)
        }
        None => (PathBuf::from(data_dir.display()), String::new()),
    };
    let args = RunArgs { file: Some(file.clone()), ..args };
    let log: Arc<dyn Log> = data_dir.open().await?;
    let mut session = data_dir.session(log).await.map_err(|e| located(&file, e))?;
    session.set_until_idle(args.until_idle);
    let mut out = std::io::stdout();
    let mut print = |result: crate::session::StatementResult| {
        // A closed stdout must not stop the statements from running.
        let _ = write!(out, "{result}").and_then(|()| out.flush());
    };
    // Ctrl-C stops gracefully: the statement running is cancelled, the rest not started.
    // The handler is installed before anything runs, so no SIGINT can take the default path.
    let mut interrupt = super::interrupt_signal()?;
    let outcome = tokio::select! {
        outcome = session.execute(&script, &mut print) => outcome.map_err(|e| located(&file, e)),
        _ = interrupt.recv() => {
            session.shutdown().await;
            return Ok(());
        }
    };
    if outcome.is_ok() {
        // The persistent queries keep running: until they are idle, or until Ctrl-C.
        if args.until_idle {
            tokio::select! {
                idle = session.wait_until_idle() => idle.map_err(|e| located(&file, e))?,
                _ = interrupt.recv() => {}
            }
            // What each query did in this run (a resumed one: what it read since its checkpoint).
            for query in session.query_metrics().await {
                tracing::info!(
                    query = %query.id,
                    records_in = query.records_in,
                    records_out = query.records_out,
                    checkpoints = query.checkpoints,
                    "idle"
                );
            }
        } else if session.has_running_queries() {
            eprintln!("Persistent queries are running; Ctrl-C stops them.");
            let _ = interrupt.recv().await;
        }
    }
    session.shutdown().await;
    outcome
}

/// `FILE:LINE:COLUMN: message`, with the hint of a syntax error on the next line.
fn located(file: &Path, error: SessionError) -> CliError {
    let kind = error.kind();
    let message = match (&error, error.location()) {
        (SessionError::Parse(e), _) => {
            let hint = e.hint.as_ref().map(|h| format!("\nhint: {h}")).unwrap_or_default();
            format!("{}:{}:{}: {}{hint}", file.display(), e.line, e.column, e.message)
        }
        (_, Some(at)) => format!("{}:{}:{}: {error}", file.display(), at.line, at.column),
        (_, None) => format!("{}: {error}", file.display()),
    };
    CliError::of_kind(kind, message)
}
