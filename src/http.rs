//! The HTTP/1.1 client Eddy uses (the remote REPL, the REST conformance runner, a remote schema
//! registry): hyper's, one request per connection, the response's body read as it arrives,
//! line by line. Connecting and waiting for a response's head time out; reading the body
//! does not (a push query's rows may be a long time coming).

use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// How long connecting to the server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the server may take to answer a request with its status and headers.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);

/// Where a server is, and the credentials to send it.
#[derive(Debug, Clone)]
pub struct Client {
    /// `host:port`.
    address: String,
    /// `Basic …`, from the URL's user and password.
    authorization: Option<String>,
}

impl Client {
    /// A client of `http://[user:password@]host[:port]` (port 8088 by default).
    pub fn new(url: &str) -> Result<Client, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("{url} is not a URL: {e}"))?;
        if parsed.scheme() != "http" {
            return Err(format!("{url}: only http:// servers are supported"));
        }
        let host = parsed.host_str().ok_or_else(|| format!("{url} names no host"))?;
        let address = format!("{host}:{}", parsed.port().unwrap_or(8088));
        let authorization = (!parsed.username().is_empty()).then(|| {
            let credentials = format!("{}:{}", parsed.username(), parsed.password().unwrap_or_default());
            format!(
                "Basic {}",
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, credentials.as_bytes())
            )
        });
        Ok(Client { address, authorization })
    }

    /// Sends a request; the response's body is read as the caller asks for it.
    pub async fn request(&self, method: &str, path: &str, body: &str, accept: &str) -> Result<Response, String> {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&self.address))
            .await
            .map_err(|_| format!("cannot reach {}: no answer in {}s", self.address, CONNECT_TIMEOUT.as_secs()))?
            .map_err(|e| format!("cannot reach {}: {e}", self.address))?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
        // The connection is driven by its own task, which ends with the response (or when
        // the response is dropped).
        let driver = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%e, "the connection to the server ended");
            }
        });
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, &self.address)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(hyper::header::ACCEPT, accept);
        if let Some(authorization) = &self.authorization {
            request = request.header(hyper::header::AUTHORIZATION, authorization);
        }
        let request = request
            .body(http_body_util::Full::new(bytes::Bytes::copy_from_slice(body.as_bytes())))
            .map_err(|e| e.to_string())?;
        let response = tokio::time::timeout(RESPONSE_TIMEOUT, sender.send_request(request))
            .await
            .map_err(|_| format!("{} did not answer in {}s", self.address, RESPONSE_TIMEOUT.as_secs()))?
            .map_err(|e| e.to_string())?;
        Ok(Response {
            status: response.status().as_u16(),
            body: response.into_body(),
            data: Vec::new(),
            done: false,
            _driver: DriverGuard(driver),
        })
    }
}

/// Aborts the connection's task when the response is dropped.
struct DriverGuard(tokio::task::JoinHandle<()>);

impl Drop for DriverGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A response whose body is read as it arrives.
pub struct Response {
    pub status: u16,
    body: Incoming,
    /// Body bytes read and not yet handed out.
    data: Vec<u8>,
    done: bool,
    _driver: DriverGuard,
}

impl Response {
    /// The next line of the body (without its newline), waiting for it; `None` at the end.
    pub async fn next_line(&mut self) -> Result<Option<String>, String> {
        loop {
            if let Some(end) = self.data.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.data.drain(..=end).collect();
                return Ok(Some(String::from_utf8_lossy(&line[..line.len() - 1]).into_owned()));
            }
            if self.done {
                if self.data.is_empty() {
                    return Ok(None);
                }
                let rest = std::mem::take(&mut self.data);
                return Ok(Some(String::from_utf8_lossy(&rest).into_owned()));
            }
            self.read_more().await?;
        }
    }

    /// The whole body.
    pub async fn text(mut self) -> Result<String, String> {
        while !self.done {
            self.read_more().await?;
        }
        Ok(String::from_utf8_lossy(&self.data).into_owned())
    }

    /// Reads the next piece of the body into `data`.
    async fn read_more(&mut self) -> Result<(), String> {
        match self.body.frame().await {
            None => self.done = true,
            Some(frame) => {
                if let Ok(data) = frame.map_err(|e| e.to_string())?.into_data() {
                    self.data.extend_from_slice(&data);
                }
            }
        }
        Ok(())
    }
}
