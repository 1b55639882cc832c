//! The runner's only view of a server: an HTTP client with a timeout on every request, and a WebSocket recorder
//! that keeps every frame a connection receives so cases can wait for, and later judge, the message sequence.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// A request body.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    /// No body.
    None,
    /// A JSON document sent as `application/json`.
    Json(Value),
    /// Raw bytes with an explicit content type.
    Raw {
        /// The `Content-Type` header.
        content_type: &'static str,
        /// The bytes.
        bytes: Vec<u8>,
    },
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    /// The status code.
    pub(crate) status: u16,
    /// The body as text (lossy UTF-8).
    pub(crate) text: String,
    /// The body parsed as JSON, or the parse error.
    pub(crate) json: Result<Value, String>,
}

/// HTTP access to the server under test.
#[derive(Debug, Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
    base_url: String,
    timeout: Duration,
    /// No request outlives this instant (the run's budget).
    deadline: Option<Instant>,
}

/// Bodies at least this large go through [`Http::send_large`], which sees a server's early answer.
const LARGE_BODY_BYTES: usize = 256 * 1024;

impl Http {
    /// A client for `base_url` (no trailing slash) whose every request times out after `timeout`.
    #[expect(
        clippy::disallowed_methods,
        reason = "the builder is given its TLS configuration at once"
    )]
    pub(crate) fn new(base_url: &str, timeout: Duration) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config()?)
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|error| error_chain(&error))?;
        Ok(Self {
            client,
            base_url: base_url.to_owned(),
            timeout,
            deadline: None,
        })
    }

    /// The same client, with every request cut at `deadline` (a request started after it fails at once).
    pub(crate) fn with_deadline(&self, deadline: Instant) -> Self {
        Self {
            deadline: Some(deadline),
            ..self.clone()
        }
    }

    /// Runs `exchange` within the deadline, if any.
    async fn bounded(
        &self,
        exchange: impl Future<Output = Result<Reply, String>>,
    ) -> Result<Reply, String> {
        let out_of_budget = || "no answer before the run's budget ran out (--budget)".to_owned();
        match self.deadline {
            None => exchange.await,
            // Checked first: a timer whose deadline has passed fires only at the timer driver's next turn, and a
            // fast server could answer before that.
            Some(deadline) if Instant::now() >= deadline => Err(out_of_budget()),
            Some(deadline) => tokio::time::timeout_at(deadline, exchange)
                .await
                .map_err(|_| out_of_budget())?,
        }
    }

    /// `GET path`.
    pub(crate) async fn get(&self, path: &str) -> Result<Reply, String> {
        self.send("GET", path, Body::None).await
    }

    /// `POST path` with a JSON body.
    pub(crate) async fn post_json(&self, path: &str, body: Value) -> Result<Reply, String> {
        self.send("POST", path, Body::Json(body)).await
    }

    /// Sends one request; a transport failure (refused, reset, timeout) is an `Err` with the whole cause chain.
    pub(crate) async fn send(&self, method: &str, path: &str, body: Body) -> Result<Reply, String> {
        self.bounded(self.send_unbounded(method, path, body)).await
    }

    /// Sends one request to an absolute `url` (another server, such as the demo app a plan targets) with extra
    /// headers.
    pub(crate) async fn send_to(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: Body,
    ) -> Result<Reply, String> {
        self.bounded(self.send_url(method, url, headers, body))
            .await
    }

    async fn send_unbounded(&self, method: &str, path: &str, body: Body) -> Result<Reply, String> {
        if self.base_url.starts_with("http://") {
            let large = match &body {
                Body::Raw {
                    content_type,
                    bytes,
                } if bytes.len() >= LARGE_BODY_BYTES => Some((*content_type, bytes.clone())),
                Body::Json(value) => Some(value.to_string().into_bytes())
                    .filter(|bytes| bytes.len() >= LARGE_BODY_BYTES)
                    .map(|bytes| ("application/json", bytes)),
                _ => None,
            };
            if let Some((content_type, bytes)) = large {
                return self.send_large(method, path, content_type, &bytes).await;
            }
        }
        self.send_url(method, &format!("{}{path}", self.base_url), &[], body)
            .await
    }

    async fn send_url(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: Body,
    ) -> Result<Reply, String> {
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|_| format!("invalid HTTP method {method}"))?;
        let mut request = self.client.request(method, url);
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_str());
        }
        match body {
            Body::None => {}
            Body::Json(value) => {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(value.to_string());
            }
            Body::Raw {
                content_type,
                bytes,
            } => {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, content_type)
                    .body(bytes);
            }
        }
        let response = request.send().await.map_err(|error| error_chain(&error))?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|error| error_chain(&error))?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let json = serde_json::from_slice(&bytes).map_err(|error| error.to_string());
        Ok(Reply { status, text, json })
    }
}

impl Http {
    /// Sends a large body over a plain HTTP/1.1 connection, writing and reading at the same time.
    ///
    /// A server that refuses an oversized body answers (413) before reading it all and then closes the
    /// connection; an ordinary client still writing the body fails with a broken pipe and never shows the
    /// answer. Here the answer is read while the body is written, and a write error after the answer arrived is
    /// ignored, so the case judges what the server said.
    async fn send_large(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<Reply, String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let rest = self
            .base_url
            .strip_prefix("http://")
            .ok_or_else(|| format!("not an http:// base URL: {}", self.base_url))?;
        let (authority, base_path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let has_port = match authority.strip_prefix('[') {
            Some(ipv6) => ipv6.contains("]:"),
            None => authority.contains(':'),
        };
        let address = if has_port {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        let head = format!(
            "{method} {base_path}{path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: {content_type}\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let exchange = async {
            let stream = tokio::net::TcpStream::connect(&address)
                .await
                .map_err(|error| format!("connecting to {address}: {error}"))?;
            let (mut reader, mut writer) = stream.into_split();
            let write = async {
                // A write error is expected when the server answers early and closes; the answer decides.
                if writer.write_all(head.as_bytes()).await.is_ok() {
                    let _ = writer.write_all(body).await;
                }
            };
            let read = async {
                let mut received = Vec::new();
                let mut chunk = [0_u8; 8192];
                loop {
                    match reader.read(&mut chunk).await {
                        Ok(0) => break Ok(received),
                        Ok(n) => received.extend_from_slice(&chunk[..n]),
                        // A reset after the answer arrived still leaves the answer.
                        Err(_) if !received.is_empty() => break Ok(received),
                        Err(error) => break Err(format!("reading the answer: {error}")),
                    }
                }
            };
            let ((), received) = tokio::join!(write, read);
            parse_http1_response(&received?)
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| format!("no answer within {:?}", self.timeout))?
    }
}

/// The TLS of the HTTP client: rustls on the ring provider with the webpki root certificates, offering HTTP/2 and
/// HTTP/1.1. (The workspace builds reqwest without a crypto provider of its own, so that no second one is compiled
/// in: every client is handed its TLS configuration.)
fn tls_config() -> Result<rustls::ClientConfig, String> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let mut tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|error| error_chain(&error))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tls)
}

/// Parses a whole HTTP/1.1 response (status line, headers, body by `Content-Length`, chunked, or to the end).
fn parse_http1_response(bytes: &[u8]) -> Result<Reply, String> {
    let head_end = bytes
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .ok_or_else(|| format!("incomplete HTTP answer ({} bytes)", bytes.len()))?;
    let head = String::from_utf8_lossy(&bytes[..head_end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| format!("malformed status line {status_line:?}"))?;
    let mut content_length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        if name == "content-length" {
            content_length = value.parse::<usize>().ok();
        } else if name == "transfer-encoding" && value.eq_ignore_ascii_case("chunked") {
            chunked = true;
        }
    }
    let rest = &bytes[head_end + 4..];
    let body = if chunked {
        decode_chunked(rest)
    } else {
        match content_length {
            Some(length) => rest[..length.min(rest.len())].to_vec(),
            None => rest.to_vec(),
        }
    };
    let text = String::from_utf8_lossy(&body).into_owned();
    let json = serde_json::from_slice(&body).map_err(|error| error.to_string());
    Ok(Reply { status, text, json })
}

/// Decodes a chunked body as far as it is complete.
fn decode_chunked(mut rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    while let Some(line_end) = rest.windows(2).position(|window| window == b"\r\n") {
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let Ok(size) = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
        else {
            break;
        };
        let start = line_end + 2;
        if size == 0 || rest.len() < start + size {
            break;
        }
        body.extend_from_slice(&rest[start..start + size]);
        rest = rest.get(start + size + 2..).unwrap_or_default();
    }
    body
}

/// One frame received on a WebSocket connection.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    /// Position in its connection's log.
    pub(crate) index: usize,
    /// The text (a binary frame is recorded as its lossy UTF-8 text).
    pub(crate) text: String,
    /// The text parsed as JSON, or the parse error.
    pub(crate) json: Result<Value, String>,
    /// Whether the frame was binary.
    pub(crate) binary: bool,
}

impl Frame {
    /// The envelope's `type`, when the frame is a JSON object with a string `type`.
    pub(crate) fn kind(&self) -> Option<&str> {
        self.json.as_ref().ok()?.get("type")?.as_str()
    }

    /// The envelope's `payload`.
    pub(crate) fn payload(&self) -> Option<&Value> {
        self.json.as_ref().ok()?.get("payload")
    }
}

/// Everything a connection received so far.
#[derive(Debug, Clone, Default)]
pub(crate) struct WsLog {
    /// The frames, in order.
    pub(crate) frames: Vec<Frame>,
    /// Set when the connection ended: how.
    pub(crate) closed: Option<String>,
}

/// A WebSocket connection that records every frame in the background.
#[derive(Debug)]
pub(crate) struct Recorder {
    log: watch::Receiver<WsLog>,
    task: JoinHandle<()>,
}

impl Recorder {
    /// Connects to `url` (a `ws://` URL), failing after `timeout`.
    pub(crate) async fn connect(url: &str, timeout: Duration) -> Result<Self, String> {
        let (stream, _response) =
            tokio::time::timeout(timeout, tokio_tungstenite::connect_async(url))
                .await
                .map_err(|_| format!("no WebSocket handshake from {url} within {timeout:?}"))?
                .map_err(|error| {
                    format!(
                        "WebSocket handshake with {url} failed: {}",
                        error_chain(&error)
                    )
                })?;
        let (sender, log) = watch::channel(WsLog::default());
        let task = tokio::spawn(async move {
            // The write half is kept (inside `stream`) so tungstenite can answer pings while we read.
            let mut stream = stream;
            loop {
                let Some(next) = stream.next().await else {
                    sender.send_modify(|log| log.closed = Some("stream ended".to_owned()));
                    break;
                };
                let (text, binary) = match next {
                    Ok(Message::Text(text)) => (text.as_str().to_owned(), false),
                    Ok(Message::Binary(bytes)) => {
                        (String::from_utf8_lossy(&bytes).into_owned(), true)
                    }
                    Ok(Message::Close(frame)) => {
                        let how = frame.map_or_else(
                            || "close frame".to_owned(),
                            |f| format!("close frame {f}"),
                        );
                        sender.send_modify(|log| log.closed = Some(how));
                        break;
                    }
                    Ok(_) => continue,
                    Err(error) => {
                        let how = format!("error: {}", error_chain(&error));
                        sender.send_modify(|log| log.closed = Some(how));
                        break;
                    }
                };
                let json = serde_json::from_str(&text)
                    .map_err(|error: serde_json::Error| error.to_string());
                sender.send_modify(|log| {
                    let index = log.frames.len();
                    log.frames.push(Frame {
                        index,
                        text,
                        json,
                        binary,
                    });
                });
            }
        });
        Ok(Self { log, task })
    }

    /// The number of frames received so far.
    pub(crate) fn len(&self) -> usize {
        self.log.borrow().frames.len()
    }

    /// A copy of the log.
    pub(crate) fn snapshot(&self) -> WsLog {
        self.log.borrow().clone()
    }

    /// Waits until `found` returns something for the log, or until `deadline`. Checks once more at the deadline,
    /// so a frame that arrived just before it counts.
    pub(crate) async fn wait_for<T>(
        &self,
        deadline: Instant,
        mut found: impl FnMut(&WsLog) -> Option<T>,
    ) -> Option<T> {
        let mut log = self.log.clone();
        loop {
            if let Some(value) = found(&log.borrow_and_update()) {
                return Some(value);
            }
            match tokio::time::timeout_at(deadline, log.changed()).await {
                Ok(Ok(())) => continue,
                // The connection ended or the deadline passed: one last look.
                Ok(Err(_)) | Err(_) => return found(&log.borrow()),
            }
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `http://host:port/base` → `ws://host:port/base/ws` (`https` → `wss`).
pub(crate) fn ws_url(base_url: &str) -> Option<String> {
    let rest = base_url
        .strip_prefix("http://")
        .map(|rest| format!("ws://{rest}"))
        .or_else(|| {
            base_url
                .strip_prefix("https://")
                .map(|rest| format!("wss://{rest}"))
        })?;
    Some(format!("{rest}/ws"))
}

/// An error and all its sources, joined with `: `.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http1_answers_are_parsed_by_length_and_by_chunks() {
        let reply = parse_http1_response(
            b"HTTP/1.1 413 Payload Too Large\r\ncontent-type: application/json\r\ncontent-length: 16\r\n\r\n{\"code\":\"large\"}extra",
        )
        .unwrap();
        assert_eq!(reply.status, 413);
        assert_eq!(reply.json.unwrap()["code"], "large");
        let reply = parse_http1_response(
            b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n4\r\n:1}\n\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(reply.status, 400);
        assert_eq!(reply.json.unwrap()["a"], 1);
        assert!(parse_http1_response(b"HTTP/1.1 200 OK\r\n").is_err());
        assert!(parse_http1_response(b"garbage\r\n\r\n").is_err());
    }

    /// A server that answers 413 after the request head and closes without reading the body: the answer is
    /// still seen (an ordinary client fails here with a broken pipe).
    #[tokio::test]
    async fn an_early_answer_to_a_large_body_is_seen() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut byte = [0_u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                socket.read_exact(&mut byte).await.unwrap();
                head.push(byte[0]);
            }
            let body = br#"{"code":"payload_too_large","message":"too large"}"#;
            let answer = format!(
                "HTTP/1.1 413 Payload Too Large\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            socket.write_all(answer.as_bytes()).await.unwrap();
            socket.write_all(body).await.unwrap();
            // Close at once with a reset, as a server does when it drops a connection with unread data.
            socket.set_zero_linger().unwrap();
            drop(socket);
            String::from_utf8_lossy(&head).into_owned()
        });
        let http = Http::new(&format!("http://{address}"), Duration::from_secs(10)).unwrap();
        let reply = http
            .send(
                "POST",
                "/api/demo/bug",
                Body::Raw {
                    content_type: "application/json",
                    bytes: vec![b' '; 8 * 1024 * 1024],
                },
            )
            .await
            .expect("the early answer is read");
        assert_eq!(reply.status, 413);
        assert_eq!(reply.json.unwrap()["code"], "payload_too_large");
        let head = tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .unwrap()
            .unwrap();
        assert!(
            head.starts_with("POST /api/demo/bug HTTP/1.1\r\n"),
            "{head}"
        );
        assert!(
            head.to_ascii_lowercase()
                .contains("content-length: 8388608"),
            "{head}"
        );
    }
    #[test]
    fn ws_url_follows_the_scheme_and_keeps_the_base_path() {
        assert_eq!(
            ws_url("http://127.0.0.1:8000").as_deref(),
            Some("ws://127.0.0.1:8000/ws")
        );
        assert_eq!(
            ws_url("https://x.example/api").as_deref(),
            Some("wss://x.example/api/ws")
        );
        assert_eq!(ws_url("ftp://x"), None);
    }
}
