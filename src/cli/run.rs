//! `eddy run FILE.sql`: executes a file's statements through a session on the embedded log.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;

use super::CliError;
use crate::log::{EmbeddedLog, Log};
use crate::session::{Session, SessionError};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The statements to run, separated by `;`.
    file: PathBuf,
    /// Exit once everything has caught up with the input present at start: a PRINT stops at
    /// the end of its topic instead of following it (no persistent query can run yet).
    #[arg(long)]
    until_idle: bool,
}

pub async fn run(data_dir: &Path, args: RunArgs) -> Result<(), CliError> {
    let script = std::fs::read_to_string(&args.file)
        .map_err(|e| CliError::User(format!("cannot read {}: {e}", args.file.display())))?;
    let log: Arc<dyn Log> = Arc::new(EmbeddedLog::open(data_dir)?);
    let mut session = Session::open(log).await.map_err(|e| located(&args.file, e))?;
    session.set_until_idle(args.until_idle);
    let mut out = std::io::stdout();
    let mut print = |result: crate::session::StatementResult| {
        // A closed stdout must not stop the statements from running.
        let _ = write!(out, "{result}").and_then(|()| out.flush());
    };
    // Ctrl-C stops gracefully: the statement running is cancelled, the rest not started.
    // The handler is installed before anything runs, so no SIGINT can take the default path.
    let mut interrupt = super::interrupt_signal()?;
    tokio::select! {
        outcome = session.execute(&script, &mut print) => outcome.map_err(|e| located(&args.file, e)),
        _ = interrupt.recv() => Ok(()),
    }
}

/// `FILE:LINE:COLUMN: message`, with the hint of a syntax error on the next line.
fn located(file: &Path, error: SessionError) -> CliError {
    let user = error.is_user_error();
    let message = match (&error, error.location()) {
        (SessionError::Parse(e), _) => {
            let hint = e.hint.as_ref().map(|h| format!("\nhint: {h}")).unwrap_or_default();
            format!("{}:{}:{}: {}{hint}", file.display(), e.line, e.column, e.message)
        }
        (_, Some(at)) => format!("{}:{}:{}: {error}", file.display(), at.line, at.column),
        (_, None) => format!("{}: {error}", file.display()),
    };
    if user { CliError::User(message) } else { CliError::Internal(message) }
}
