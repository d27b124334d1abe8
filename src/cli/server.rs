//! `eddy server`: ksqlDB's REST API over the embedded log, until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use super::CliError;
use crate::log::Log;

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Address to listen on (HTTP/1.1 and HTTP/2 cleartext on the same port).
    #[arg(long, default_value = "127.0.0.1:8088")]
    listen: SocketAddr,
    /// Statements to run before serving (streams, tables, persistent queries).
    #[arg(long)]
    queries_file: Option<PathBuf>,
    /// `user:password`: require HTTP Basic auth on every endpoint.
    #[arg(long)]
    auth: Option<String>,
    /// Push queries that may run at once.
    #[arg(long, default_value_t = 100)]
    max_push_queries: usize,
}

pub async fn run(data_dir: &super::LogPlace, args: ServerArgs) -> Result<(), CliError> {
    let log: Arc<dyn Log> = data_dir.open().await?;
    let mut session = data_dir.session(log).await?;
    if let Some(file) = &args.queries_file {
        let script = std::fs::read_to_string(file)
            .map_err(|e| CliError::User(format!("cannot read {}: {e}", file.display())))?;
        session
            .execute(&script, &mut |_| {})
            .await
            .map_err(|e| CliError::of_kind(e.kind(), format!("{}: {e}", file.display())))?;
    }
    if args.auth.as_ref().is_some_and(|a| !a.contains(':')) {
        return Err(CliError::User("--auth takes user:password".into()));
    }
    let config = crate::server::Config {
        listen: args.listen,
        auth: args.auth,
        max_push_queries: args.max_push_queries,
        ..Default::default()
    };
    let mut interrupt = super::interrupt_signal()?;
    let server = crate::server::start(session, config)
        .await
        .map_err(|e| CliError::User(format!("cannot listen on {}: {e}", args.listen)))?;
    eprintln!("Eddy serves ksqlDB's REST API on http://{} (Ctrl-C stops)", server.addr);
    let _ = interrupt.recv().await;
    server.stop().await.map_err(|e| CliError::Internal(e.to_string()))
}
