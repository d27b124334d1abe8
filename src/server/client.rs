//! A small HTTP/1.1 client for Eddy's own use of its API (the remote REPL, the REST
//! conformance runner): one request per connection, responses read as they arrive, line by
//! line, chunked or not.

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

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
            format!("Basic {}", crate::format::base64_encode(credentials.as_bytes()))
        });
        Ok(Client { address, authorization })
    }

    /// Sends a request; the response's body is read as the caller asks for it.
    pub async fn request(&self, method: &str, path: &str, body: &str, accept: &str) -> Result<Response, String> {
        let mut stream =
            TcpStream::connect(&self.address).await.map_err(|e| format!("cannot reach {}: {e}", self.address))?;
        let authorization = self.authorization.as_ref().map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAccept: {accept}\r\n\
             {authorization}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.address,
            body.len()
        );
        stream.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
        let mut reader = BufReader::new(stream);
        let mut status_line = String::new();
        reader.read_line(&mut status_line).await.map_err(|e| e.to_string())?;
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("not an HTTP response: {status_line:?}"))?;
        let mut chunked = false;
        let mut length = None;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).await.map_err(|e| e.to_string())? == 0 {
                break;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
                if name == "transfer-encoding" && value.eq_ignore_ascii_case("chunked") {
                    chunked = true;
                } else if name == "content-length" {
                    length = value.parse::<usize>().ok();
                }
            }
        }
        Ok(Response { status, reader, chunked, remaining: length, data: Vec::new(), done: false })
    }
}

/// A response whose body is read as it arrives.
pub struct Response {
    pub status: u16,
    reader: BufReader<TcpStream>,
    chunked: bool,
    /// Bytes of the body left to read, when its length was given.
    remaining: Option<usize>,
    /// Body bytes read and not yet handed out.
    data: Vec<u8>,
    done: bool,
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
        if self.chunked {
            let mut size = String::new();
            if self.reader.read_line(&mut size).await.map_err(|e| e.to_string())? == 0 {
                self.done = true;
                return Ok(());
            }
            let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or_default(), 16)
                .map_err(|e| format!("a chunk's size {size:?}: {e}"))?;
            if size == 0 {
                self.done = true;
                return Ok(());
            }
            let start = self.data.len();
            self.data.resize(start + size, 0);
            self.reader.read_exact(&mut self.data[start..]).await.map_err(|e| e.to_string())?;
            let mut end = [0u8; 2];
            self.reader.read_exact(&mut end).await.map_err(|e| e.to_string())?;
            return Ok(());
        }
        let mut piece = vec![0u8; self.remaining.unwrap_or(64 * 1024).min(64 * 1024)];
        let read = if piece.is_empty() { 0 } else { self.reader.read(&mut piece).await.map_err(|e| e.to_string())? };
        self.data.extend_from_slice(&piece[..read]);
        if let Some(remaining) = self.remaining.as_mut() {
            *remaining -= read.min(*remaining);
        }
        if read == 0 || self.remaining == Some(0) {
            self.done = true;
        }
        Ok(())
    }
}
