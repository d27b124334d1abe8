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
    /// Exit once every persistent query has consumed the input present at start (no
    /// persistent query can run yet, so today `eddy run` always exits after the last statement).
    #[arg(long)]
    until_idle: bool,
}

pub async fn run(data_dir: &Path, args: RunArgs) -> Result<(), CliError> {
    let script = std::fs::read_to_string(&args.file)
        .map_err(|e| CliError::User(format!("cannot read {}: {e}", args.file.display())))?;
    let log: Arc<dyn Log> = Arc::new(EmbeddedLog::open(data_dir)?);
    let mut session = Session::open(log).await.map_err(|e| located(&args.file, e))?;
    let mut out = std::io::stdout();
    let mut print = |result: crate::session::StatementResult| {
        // A closed stdout must not stop the statements from running.
        let _ = write!(out, "{result}").and_then(|()| out.flush());
    };
    session.execute(&script, &mut print).await.map_err(|e| located(&args.file, e))
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
