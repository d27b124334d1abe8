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
    /// Address of the embedded schema registry (Confluent's REST API, kept in the `_schemas`
    /// topic), or `off`.
    #[arg(long, default_value = "127.0.0.1:8081")]
    schema_registry_listen: String,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM); needs --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

pub async fn run(data_dir: &super::LogPlace, args: ServerArgs) -> Result<(), CliError> {
    let log: Arc<dyn Log> = data_dir.open().await?;
    // One embedded registry, served over HTTP and used by the session's formats (unless the
    // session is pointed at another with ksql.schema.registry.url).
    let embedded = crate::registry::client::Embedded::open(Arc::clone(&log))
        .await
        .map_err(|e| CliError::Internal(format!("cannot open the schema registry: {e}")))?;
    let mut session = data_dir.session_with(Arc::clone(&log), Some(embedded.clone())).await?;
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
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(crate::server::tls::server_config(cert, key).map_err(CliError::User)?),
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let config = crate::server::Config {
        listen: args.listen,
        auth: args.auth,
        max_push_queries: args.max_push_queries,
        tls,
        ..Default::default()
    };
    let mut interrupt = super::interrupt_signal()?;
    let registry = match args.schema_registry_listen.as_str() {
        "off" => None,
        address => Some(serve_registry(address, embedded.registry()).await?),
    };
    let server = crate::server::start(session, config)
        .await
        .map_err(|e| CliError::User(format!("cannot listen on {}: {e}", args.listen)))?;
    eprintln!("Eddy serves ksqlDB's REST API on {scheme}://{} (Ctrl-C stops)", server.addr);
    let _ = interrupt.recv().await;
    if let Some((stop, task)) = registry {
        let _ = stop.send(());
        let _ = task.await;
    }
    server.stop().await.map_err(|e| CliError::Internal(e.to_string()))
}

/// Serves the embedded schema registry on `address` until told to stop.
async fn serve_registry(
    address: &str,
    registry: Arc<tokio::sync::Mutex<crate::registry::Registry>>,
) -> Result<(tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>), CliError> {
    let address: SocketAddr = address
        .parse()
        .map_err(|_| CliError::User(format!("--schema-registry-listen takes host:port or off, not {address}")))?;
    let router = crate::registry::rest::router(registry);
    let listener = tokio::net::TcpListener::bind(address).await.map_err(|e| {
        CliError::User(format!(
            "cannot serve the schema registry on {address}: {e} (choose another with --schema-registry-listen, or off)"
        ))
    })?;
    let bound = listener.local_addr().map_err(|e| CliError::Internal(e.to_string()))?;
    eprintln!("Eddy serves a schema registry (Confluent's API) on http://{bound}");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let serving = axum::serve(listener, router).with_graceful_shutdown(async {
            let _ = stopped.await;
        });
        if let Err(e) = serving.await {
            tracing::error!(%e, "the schema registry stopped");
        }
    });
    Ok((stop, task))
}
