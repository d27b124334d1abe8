//! `eddy server`: ksqlDB's REST API, so that ksqlDB's clients work with Eddy unchanged.
//!
//! One port serves HTTP/1.1 (chunked responses) and HTTP/2 cleartext with prior knowledge
//! (axum's server detects the HTTP/2 preface), as ksqlDB's does. Statements run through the
//! same [`Session::execute`] as the REPL's:
//! - `POST /ksql` on the server's session, one request at a time (it runs the persistent
//!   queries; a request's `streamsProperties`, `SET` and `DEFINE` last for that request);
//! - `POST /query` and `POST /query-stream` on a fork of it per query (see
//!   [`Session::fork`]), so that a push query never holds the session;
//! - `POST /inserts-stream` and `POST /close-query`; `GET /info`, `/healthcheck`, `/status`;
//! - `GET /metrics` (Prometheus);
//! - `GET /`: the web console (`console.html`).
//!
//! The modules: `ksql` (statements and their entities), `query` (streamed results in
//! ksqlDB's three formats, closing queries), `inserts`, `rows` (rows as JSON).

mod inserts;
mod ksql;
mod metrics;
mod query;
mod rows;
pub mod tls;
mod wire;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::sync::{Mutex, Notify, Semaphore, watch};

use crate::session::Session;

/// The version `/info` reports: the ksqlDB release whose API Eddy speaks.
pub const KSQL_VERSION: &str = "0.29.0";

/// The web console (`GET /`): one page, its script and styles inline, nothing downloaded.
const CONSOLE: &str = include_str!("console.html");

/// How the server is set up.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// `user:password`: every request must carry it as HTTP Basic auth.
    pub auth: Option<String>,
    /// Push queries running at once; more are refused (ksqlDB's error 40003).
    pub max_push_queries: usize,
    /// The largest request body accepted (an `/inserts-stream` body is read as it comes,
    /// line by line, each line at most this long).
    pub max_body_bytes: usize,
    /// Serve HTTPS with this identity (see [`tls::server_config`]) instead of HTTP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8088)),
            auth: None,
            max_push_queries: 100,
            max_body_bytes: 4 * 1024 * 1024,
            tls: None,
        }
    }
}

/// What the handlers share.
struct Shared {
    /// The server's session: runs `/ksql` statements and the persistent queries.
    session: Mutex<Session>,
    /// Push queries running, by query id: notified to stop (`/close-query`).
    queries: std::sync::Mutex<HashMap<String, Arc<Notify>>>,
    push_permits: Arc<Semaphore>,
    /// Becomes true when the server stops: streaming responses end.
    stopping: watch::Receiver<bool>,
    /// The `Authorization` header every request must carry, if any.
    authorization: Option<String>,
    config: Config,
}

/// A server running in the background.
pub struct Running {
    /// Where it listens (the port chosen, when asked for port 0).
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    shared: Arc<Shared>,
}

/// Starts serving `session` on `config.listen`.
pub async fn start(session: Session, config: Config) -> std::io::Result<Running> {
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let (stop, stopping) = watch::channel(false);
    let shared = Arc::new(Shared {
        session: Mutex::new(session),
        queries: std::sync::Mutex::new(HashMap::new()),
        push_permits: Arc::new(Semaphore::new(config.max_push_queries)),
        stopping: stopping.clone(),
        authorization: config
            .auth
            .as_ref()
            .map(|credentials| format!("Basic {}", crate::format::base64_encode(credentials.as_bytes()))),
        config,
    });
    let app = router(Arc::clone(&shared));
    let task = match shared.config.tls.clone() {
        Some(identity) => tokio::spawn(serve(tls::TlsListener::new(listener, identity)?, app, stopping)),
        None => tokio::spawn(serve(listener, app, stopping)),
    };
    tracing::info!(%addr, "serving ksqlDB's REST API");
    Ok(Running { addr, stop, task, shared })
}

/// Serves `app` on `listener` until told to stop.
async fn serve<L>(listener: L, app: Router, mut stopping: watch::Receiver<bool>) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stopping.wait_for(|stopping| *stopping).await;
        })
        .await
}

impl Running {
    /// Stops serving: streaming responses end, connections close; then the session's
    /// persistent queries stop and flush.
    pub async fn stop(self) -> std::io::Result<()> {
        let _ = self.stop.send(true);
        let served = self.task.await.map_err(std::io::Error::other)?;
        self.shared.session.lock().await.shutdown().await;
        served
    }

    /// How many push queries are running (each until its client closes it or goes away).
    pub fn push_queries(&self) -> usize {
        self.shared.config.max_push_queries - self.shared.push_permits.available_permits()
    }

    /// Runs `f` on the server's session (for tests and `--queries-file`).
    pub async fn with_session<T>(&self, f: impl AsyncFnOnce(&mut Session) -> T) -> T {
        let mut session = self.shared.session.lock().await;
        f(&mut session).await
    }
}

fn router(shared: Arc<Shared>) -> Router {
    let limit = shared.config.max_body_bytes;
    Router::new()
        .route("/", get(|| async { ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], CONSOLE) }))
        .route("/info", get(info))
        .route("/healthcheck", get(healthcheck))
        .route("/chc/live", get(|| async { json_response(StatusCode::OK, json!({})) }))
        .route("/chc/ready", get(|| async { json_response(StatusCode::OK, json!({})) }))
        .route("/status", get(|| async { json_response(StatusCode::OK, json!({"commandStatuses": {}})) }))
        .route("/status/{kind}/{entity}/{action}", get(status))
        // ksqlDB's CLI asks before a SET: every property may be set per session here.
        .route("/is_valid_property/{property}", get(|| async { json_response(StatusCode::OK, json!(true)) }))
        .route("/ksql", post(ksql::handle))
        .route("/query", post(query::query))
        .route("/query-stream", post(query::query_stream))
        .route("/close-query", post(query::close_query))
        .route("/inserts-stream", post(inserts::handle))
        .route("/metrics", get(metrics::handle))
        .fallback(|| async { (StatusCode::NOT_FOUND, "Not Found") })
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(Arc::clone(&shared), authorize))
        .with_state(shared)
}

/// With `--auth`, every request carries the credentials (HTTP Basic) or gets 401.
async fn authorize(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    if let Some(expected) = &shared.authorization {
        let given = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        if given != Some(expected.as_str()) {
            let mut response = error(StatusCode::UNAUTHORIZED, 40100, "Unauthorized");
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"eddy\""));
            return response;
        }
    }
    next.run(request).await
}

async fn info() -> Response {
    let server = wire::ServerInfo {
        version: KSQL_VERSION,
        kafka_cluster_id: "eddy",
        ksql_service_id: "default_",
        server_status: "RUNNING",
    };
    typed_response(StatusCode::OK, &wire::Info { server })
}

async fn healthcheck() -> Response {
    typed_response(StatusCode::OK, &wire::Health::ready())
}

/// `/status/stream/NAME/create`: statements run synchronously here, so a command the
/// catalog shows has succeeded.
async fn status(
    State(shared): State<Arc<Shared>>,
    axum::extract::Path((kind, entity, action)): axum::extract::Path<(String, String, String)>,
) -> Response {
    let session = shared.session.lock().await;
    let name = entity.trim_matches('`').to_string();
    let exists = session.catalog().source(&name).is_some() || session.catalog().query(&name).is_some();
    if exists || action != "create" {
        typed_response(
            StatusCode::OK,
            &wire::CommandOutcome { status: "SUCCESS", message: format!("{kind} {action} done") },
        )
    } else {
        error(StatusCode::NOT_FOUND, 40400, &format!("Command not found: {kind}/{entity}/{action}"))
    }
}

/// A JSON body with ksqlDB's old-API content type.
fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// A typed JSON body with ksqlDB's old-API content type.
fn typed_response(status: StatusCode, body: &impl serde::Serialize) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], wire::text(body)).into_response()
}

/// ksqlDB's error entity: `{"@type":"generic_error","error_code":40000,"message":…}`.
fn error(status: StatusCode, code: u32, message: &str) -> Response {
    json_response(status, crate::session::entity::to_value(&crate::session::entity::GenericError::new(code, message)))
}

/// A request body as JSON, or ksqlDB's error: 400 for what is not JSON, 413 for a body over
/// the limit.
#[allow(clippy::result_large_err)]
fn parse_body<T: serde::de::DeserializeOwned>(
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<T, Response> {
    let body = body.map_err(|rejection| {
        let status = rejection.status();
        error(status, u32::from(status.as_u16()) * 100, &rejection.body_text())
    })?;
    serde_json::from_slice(&body)
        .map_err(|e| error(StatusCode::BAD_REQUEST, 40000, &format!("Invalid JSON in request: {e}")))
}

/// Request properties as the session names them: `ksql.streams.auto.offset.reset` is
/// `auto.offset.reset`; values as text.
fn request_properties(given: &serde_json::Map<String, serde_json::Value>) -> Vec<(String, String)> {
    given
        .iter()
        .map(|(name, value)| {
            let name = name.strip_prefix("ksql.streams.").unwrap_or(name).to_string();
            let value = match value {
                serde_json::Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            (name, value)
        })
        .collect()
}

/// A body that is a stream of chunks, each written as its own HTTP chunk or DATA frame.
fn streaming_body(chunks: tokio::sync::mpsc::Receiver<bytes::Bytes>) -> Body {
    let stream = futures::stream::unfold(chunks, |mut chunks| async move {
        chunks.recv().await.map(|chunk| (Ok::<_, std::convert::Infallible>(chunk), chunks))
    });
    Body::from_stream(stream)
}
