//! `WebSocketSource`: a websocket feed into a topic, each text message a record as it arrives.
//!
//! Options:
//! - `url` (required): `ws://…` or `wss://…` (TLS by rustls, with the Mozilla roots);
//! - `kafka.topic` (required);
//! - `key.field`: a field of each message (a JSON object) whose value becomes the record's
//!   key, as text. A message that is no JSON object, or lacks the field, gets no key. It is
//!   still a record: a stream over the topic decides what it makes of it, and its processing
//!   log reports what it cannot read.
//!
//! The connection is made at the first poll. When it fails or is lost, the poll fails
//! transiently and the connector is retried with a growing pause (see
//! [`super::ConnectorState::Retrying`]). What the server sent while nobody was connected is
//! gone: a feed cannot be replayed, so the connector has no position. Binary messages are not
//! text and are dropped, counted in [`WebSocketConnector::dropped`].
//!
//! A poll waits for one message, then takes the messages already arrived behind it (up to
//! [`BATCH`]) without waiting further: a quiet feed gets a record at a time, with no linger,
//! and a busy one gets batches.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::{Connector, ConnectorClass, ConnectorConfig, ConnectorError, SourceConnector};
use crate::log::NewRecord;

const NAMES: [&str; 1] = ["WebSocketSource"];

/// The most messages a poll takes.
pub const BATCH: usize = 1024;

/// Makes websocket sources.
pub struct WebSocket;

impl ConnectorClass for WebSocket {
    fn names(&self) -> &[&'static str] {
        &NAMES
    }

    fn create(&self, config: &ConnectorConfig) -> Result<Connector, ConnectorError> {
        Ok(Connector::Source(Box::new(WebSocketConnector::new(config)?)))
    }
}

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// A websocket source, connected or about to be.
pub struct WebSocketConnector {
    url: String,
    topic: String,
    key_field: Option<String>,
    socket: Option<Socket>,
    /// Binary messages dropped.
    pub dropped: Arc<AtomicU64>,
}

impl WebSocketConnector {
    pub fn new(config: &ConnectorConfig) -> Result<WebSocketConnector, ConnectorError> {
        let property = |name: &str| config.properties.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
        let url = config.required("url")?.trim().to_owned();
        match url::Url::parse(&url) {
            Ok(parsed) if matches!(parsed.scheme(), "ws" | "wss") && parsed.host().is_some() => {}
            Ok(_) => return Err(ConnectorError::new(format!("url must be ws://host… or wss://host…, not {url}"))),
            Err(e) => return Err(ConnectorError::new(format!("url {url} is no URL: {e}"))),
        }
        let topic = property("kafka.topic")
            .ok_or_else(|| {
                ConnectorError::new(r#"Missing required configuration "kafka.topic" which has no default value."#)
            })?
            .to_owned();
        Ok(WebSocketConnector {
            url,
            topic,
            key_field: property("key.field").map(str::to_owned),
            socket: None,
            dropped: Arc::default(),
        })
    }

    /// A message as a record: text as it is, keyed by [`WebSocketConnector::key_field`].
    fn record(&self, text: &str) -> NewRecord {
        let key = self.key_field.as_deref().and_then(|field| key_of(text, field));
        NewRecord::new(crate::log::record::now_ms(), key, Some(Bytes::copy_from_slice(text.as_bytes())))
    }

    /// Handles one message: a record for text; pings are answered by the library, a close
    /// ends the connection (`Err`).
    fn take(&mut self, message: Message, records: &mut Vec<NewRecord>) -> Result<(), ConnectorError> {
        match message {
            Message::Text(text) => records.push(self.record(text.as_str())),
            Message::Binary(_) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Message::Close(frame) => {
                self.socket = None;
                let why = frame.map(|f| format!(" ({} {})", f.code, f.reason)).unwrap_or_default();
                return Err(ConnectorError::transient(format!("{} closed the connection{why}", self.url)));
            }
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
        }
        Ok(())
    }
}

/// The value of field `field` of the JSON object `text`, as key text (a string as it is,
/// anything else as JSON); `None` when there is none.
fn key_of(text: &str, field: &str) -> Option<Bytes> {
    let serde_json::Value::Object(object) = serde_json::from_str::<serde_json::Value>(text).ok()? else {
        return None;
    };
    match object.get(field)? {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(Bytes::from(s.clone())),
        other => Some(Bytes::from(other.to_string())),
    }
}

impl SourceConnector for WebSocketConnector {
    fn topic(&self) -> &str {
        &self.topic
    }

    fn poll(&mut self) -> BoxFuture<'_, Result<Option<Vec<NewRecord>>, ConnectorError>> {
        Box::pin(async move {
            if self.socket.is_none() {
                let (socket, _) = tokio_tungstenite::connect_async(self.url.as_str())
                    .await
                    .map_err(|e| ConnectorError::transient(format!("cannot connect to {}: {e}", self.url)))?;
                tracing::info!(url = %self.url, "websocket connected");
                self.socket = Some(socket);
            }
            let lost = |url: &str, e: Option<tokio_tungstenite::tungstenite::Error>| {
                let why = e.map(|e| format!(": {e}")).unwrap_or_default();
                ConnectorError::transient(format!("lost the connection to {url}{why}"))
            };
            let mut records = Vec::new();
            // Wait for one message (cancel-safe: a message is taken only when returned) …
            let first = match self.socket.as_mut() {
                Some(socket) => socket.next().await,
                None => None,
            };
            match first {
                Some(Ok(message)) => self.take(message, &mut records)?,
                Some(Err(e)) => {
                    self.socket = None;
                    return Err(lost(&self.url, Some(e)));
                }
                None => {
                    self.socket = None;
                    return Err(lost(&self.url, None));
                }
            }
            // … then take those already there, without waiting.
            while records.len() < BATCH {
                let Some(socket) = self.socket.as_mut() else { break };
                match socket.next().now_or_never() {
                    Some(Some(Ok(message))) => match self.take(message, &mut records) {
                        Ok(()) => {}
                        // Closed behind what came before it: those go first.
                        Err(e) if records.is_empty() => return Err(e),
                        Err(_) => break,
                    },
                    Some(Some(Err(e))) => {
                        self.socket = None;
                        if records.is_empty() {
                            return Err(lost(&self.url, Some(e)));
                        }
                        break;
                    }
                    Some(None) => {
                        self.socket = None;
                        break;
                    }
                    None => break,
                }
            }
            Ok(Some(records))
        })
    }
}

impl Drop for WebSocketConnector {
    fn drop(&mut self) {
        // Say goodbye if we can without waiting; the server sees the TCP close otherwise.
        if let Some(mut socket) = self.socket.take() {
            let _ = socket.close(None).now_or_never();
            let _ = socket.flush().now_or_never();
        }
    }
}

#[cfg(test)]
mod tests;
