//! A minimal Model Context Protocol client (JSON-RPC 2.0): `initialize` → `notifications/initialized` →
//! `tools/call`, over a [`Transport`]: [`StdioTransport`] (a spawned server speaking newline-delimited JSON on
//! stdin/stdout) or [`HttpTransport`] (Streamable HTTP: one `POST` per message, answered with JSON or an SSE
//! stream, `Mcp-Session-Id` echoed, `MCP-Protocol-Version` sent after initialization).
//!
//! These shapes follow the MCP specification (verified in the vendor reference, §5); what TestSprite's tools take
//! and return is not, and lives in [`super::assumed`].

use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::error::AdapterError;
use crate::secret::Secret;

/// The protocol version FixLoop asks for.
pub const PROTOCOL_VERSION: &str = "2025-06-18";

/// Longest line or body accepted from a server, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 8 * 1024 * 1024;

/// How JSON-RPC messages reach an MCP server.
#[async_trait]
pub trait Transport: Send {
    /// Sends a request and returns the response carrying the same `id` (`result` or `error` unparsed), skipping
    /// notifications and unrelated messages.
    async fn request(&mut self, message: &Value, timeout: Duration) -> Result<Value, AdapterError>;
    /// Sends a notification (no answer expected).
    async fn notify(&mut self, message: &Value, timeout: Duration) -> Result<(), AdapterError>;
    /// Records the negotiated protocol version (HTTP sends it on later requests).
    fn set_protocol_version(&mut self, _version: &str) {}
    /// Ends the session (stdio: close stdin, wait briefly, then kill).
    async fn close(&mut self);
}

/// The result of `tools/call`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ToolResult {
    /// The `text` of every `text` content item, in order.
    pub texts: Vec<String>,
    /// `structuredContent`, if any.
    pub structured: Option<Value>,
    /// `isError`: the tool ran and failed.
    pub is_error: bool,
}

/// An MCP client session over a transport.
pub struct McpClient<T: Transport> {
    transport: T,
    next_id: u64,
    timeout: Duration,
}

impl<T: Transport> McpClient<T> {
    /// A client; `timeout` bounds each request unless a call says otherwise.
    pub fn new(transport: T, timeout: Duration) -> Self {
        Self {
            transport,
            next_id: 1,
            timeout,
        }
    }

    async fn call(
        &mut self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, AdapterError> {
        let id = self.next_id;
        self.next_id += 1;
        let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let response = self.transport.request(&message, timeout).await?;
        if let Some(error) = response.get("error") {
            let code = error.get("code").and_then(Value::as_i64).unwrap_or(0);
            let text = error.get("message").and_then(Value::as_str).unwrap_or("");
            return Err(AdapterError::invalid_response(format!(
                "mcp {method} failed with json-rpc error {code}: {text}"
            )));
        }
        response.get("result").cloned().ok_or_else(|| {
            AdapterError::invalid_response(format!("mcp {method}: response has no result"))
        })
    }

    /// `initialize` then `notifications/initialized`; returns the server's `serverInfo.name`, if any.
    ///
    /// # Errors
    ///
    /// The transport's error, or an invalid response when the server answers with an error or no result.
    pub async fn initialize(&mut self) -> Result<Option<String>, AdapterError> {
        let result = self
            .call(
                "initialize",
                json!({
                    "protocolVersion": PROTOCOL_VERSION,
                    "capabilities": {},
                    "clientInfo": {"name": "fixloop", "version": env!("CARGO_PKG_VERSION")},
                }),
                self.timeout,
            )
            .await?;
        let version = result
            .get("protocolVersion")
            .and_then(Value::as_str)
            .unwrap_or(PROTOCOL_VERSION)
            .to_owned();
        self.transport.set_protocol_version(&version);
        self.transport
            .notify(
                &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
                self.timeout,
            )
            .await?;
        Ok(result
            .pointer("/serverInfo/name")
            .and_then(Value::as_str)
            .map(str::to_owned))
    }

    /// `tools/call` of `name` with `arguments`, bounded by `timeout`.
    ///
    /// # Errors
    ///
    /// The transport's error, or an invalid response for a JSON-RPC error or a malformed result.
    pub async fn call_tool(
        &mut self,
        name: &str,
        arguments: Value,
        timeout: Duration,
    ) -> Result<ToolResult, AdapterError> {
        let result = self
            .call(
                "tools/call",
                json!({"name": name, "arguments": arguments}),
                timeout,
            )
            .await?;
        let content = result
            .get("content")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                AdapterError::invalid_response("mcp tools/call: result has no content array")
            })?;
        let texts = content
            .iter()
            .filter(|item| item.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|item| item.get("text").and_then(Value::as_str))
            .map(str::to_owned)
            .collect();
        Ok(ToolResult {
            texts,
            structured: result.get("structuredContent").cloned(),
            is_error: result
                .get("isError")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }

    /// Ends the session.
    pub async fn close(mut self) {
        self.transport.close().await;
    }
}

/// Whether `message` is the response to request `id`.
fn answers(message: &Value, id: &Value) -> bool {
    message.get("id") == Some(id)
        && message.get("method").is_none()
        && (message.get("result").is_some() || message.get("error").is_some())
}

/// The stdio transport: a spawned MCP server, one JSON message per line.
#[derive(Debug)]
pub struct StdioTransport {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl StdioTransport {
    /// Spawns `command args…` with the extra environment `env` (values are secrets: never logged); stderr is
    /// discarded (it is logging only, per the spec). The child is killed if the transport is dropped.
    ///
    /// # Errors
    ///
    /// [`Unavailable`](crate::ErrorKind::Unavailable) when the command cannot be spawned.
    pub fn spawn(
        command: &str,
        args: &[String],
        env: &[(String, Secret)],
    ) -> Result<Self, AdapterError> {
        let mut builder = Command::new(command);
        builder
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        for (name, value) in env {
            builder.env(name, value.expose());
        }
        let mut child = builder.spawn().map_err(|error| {
            AdapterError::unavailable(format!("could not start the mcp server {command:?}"))
                .with_source(error)
        })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(AdapterError::unavailable(
                "the mcp server has no stdio pipes",
            ));
        };
        Ok(Self {
            child,
            stdin: Some(stdin),
            stdout: BufReader::new(stdout),
        })
    }

    async fn write(&mut self, message: &Value) -> Result<(), AdapterError> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| AdapterError::unavailable("mcp stdio: stdin is closed"))?;
        // serde_json never emits raw newlines, so one message is one line.
        let mut line = message.to_string();
        line.push('\n');
        stdin.write_all(line.as_bytes()).await.map_err(|error| {
            AdapterError::unavailable("mcp stdio: could not write to the server").with_source(error)
        })?;
        stdin.flush().await.map_err(|error| {
            AdapterError::unavailable("mcp stdio: could not write to the server").with_source(error)
        })
    }

    async fn read_response(&mut self, id: &Value) -> Result<Value, AdapterError> {
        let mut line = String::new();
        loop {
            line.clear();
            let read = (&mut self.stdout)
                .take(MAX_MESSAGE_BYTES as u64)
                .read_line(&mut line)
                .await
                .map_err(|error| {
                    AdapterError::unavailable("mcp stdio: could not read from the server")
                        .with_source(error)
                })?;
            if read == 0 {
                return Err(AdapterError::unavailable(
                    "mcp stdio: the server closed its output",
                ));
            }
            if read >= MAX_MESSAGE_BYTES && !line.ends_with('\n') {
                return Err(AdapterError::invalid_response(
                    "mcp stdio: message too large",
                ));
            }
            let Ok(message) = serde_json::from_str::<Value>(line.trim()) else {
                continue; // not a JSON-RPC line (stray output); skip it
            };
            if answers(&message, id) {
                return Ok(message);
            }
            if let (Some(method), Some(request_id)) = (message.get("method"), message.get("id")) {
                // A server-to-client request: answer `ping`, refuse the rest.
                let reply = if method == "ping" {
                    json!({"jsonrpc": "2.0", "id": request_id, "result": {}})
                } else {
                    json!({"jsonrpc": "2.0", "id": request_id,
                           "error": {"code": -32601, "message": "method not supported by fixloop"}})
                };
                self.write(&reply).await?;
            }
        }
    }
}

#[async_trait]
impl Transport for StdioTransport {
    async fn request(&mut self, message: &Value, timeout: Duration) -> Result<Value, AdapterError> {
        let id = message.get("id").cloned().unwrap_or(Value::Null);
        let exchange = async {
            self.write(message).await?;
            self.read_response(&id).await
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| AdapterError::timeout(timeout))?
    }

    async fn notify(&mut self, message: &Value, timeout: Duration) -> Result<(), AdapterError> {
        tokio::time::timeout(timeout, self.write(message))
            .await
            .map_err(|_| AdapterError::timeout(timeout))?
    }

    async fn close(&mut self) {
        drop(self.stdin.take());
        if tokio::time::timeout(Duration::from_secs(2), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await;
        }
    }
}

/// The Streamable HTTP transport.
#[derive(Debug)]
pub struct HttpTransport {
    http: reqwest::Client,
    url: String,
    bearer: Option<Secret>,
    session: Option<String>,
    protocol_version: Option<String>,
}

impl HttpTransport {
    /// A transport posting to the MCP endpoint `url`, with `Authorization: Bearer <bearer>` when given.
    #[must_use]
    pub fn new(http: reqwest::Client, url: impl Into<String>, bearer: Option<Secret>) -> Self {
        Self {
            http,
            url: url.into(),
            bearer,
            session: None,
            protocol_version: None,
        }
    }

    async fn post(
        &mut self,
        message: &Value,
        timeout: Duration,
    ) -> Result<(String, Vec<u8>), AdapterError> {
        let mut request = self
            .http
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(
                reqwest::header::ACCEPT,
                "application/json, text/event-stream",
            )
            .body(message.to_string())
            .timeout(timeout);
        if let Some(token) = &self.bearer {
            request = request.bearer_auth(token.expose());
        }
        if let Some(session) = &self.session {
            request = request.header("Mcp-Session-Id", session);
        }
        if let Some(version) = &self.protocol_version {
            request = request.header("MCP-Protocol-Version", version);
        }
        let response = request.send().await.map_err(AdapterError::from_reqwest)?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND && self.session.is_some() {
            return Err(AdapterError::unavailable(
                "mcp http: the session expired (404)",
            ));
        }
        let response = AdapterError::check_status(response).await?;
        if let Some(session) = response
            .headers()
            .get("mcp-session-id")
            .and_then(|value| value.to_str().ok())
        {
            self.session = Some(session.to_owned());
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let body = response.bytes().await.map_err(AdapterError::from_reqwest)?;
        if body.len() > MAX_MESSAGE_BYTES {
            return Err(AdapterError::invalid_response(
                "mcp http: response too large",
            ));
        }
        Ok((content_type, body.to_vec()))
    }
}

/// The messages of a response body: one JSON value (object or batch array) or an SSE stream of `data:` events.
fn messages_of(content_type: &str, body: &[u8]) -> Vec<Value> {
    let text = String::from_utf8_lossy(body);
    let json = (!content_type.starts_with("text/event-stream"))
        .then(|| serde_json::from_str::<Value>(&text).ok())
        .flatten();
    match json {
        Some(Value::Array(batch)) => batch,
        Some(value) => vec![value],
        // An SSE stream (or a body that is not JSON: read it as SSE, which finds nothing in garbage).
        None => sse_messages(&text),
    }
}

/// The JSON messages of the `data:` fields of an SSE stream; events whose data is empty or not JSON are skipped.
fn sse_messages(text: &str) -> Vec<Value> {
    let mut messages = Vec::new();
    for event in text.replace("\r\n", "\n").split("\n\n") {
        let data: Vec<&str> = event
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .map(|data| data.strip_prefix(' ').unwrap_or(data))
            .collect();
        if data.is_empty() {
            continue;
        }
        if let Ok(value) = serde_json::from_str::<Value>(&data.join("\n")) {
            messages.push(value);
        }
    }
    messages
}

#[async_trait]
impl Transport for HttpTransport {
    async fn request(&mut self, message: &Value, timeout: Duration) -> Result<Value, AdapterError> {
        let id = message.get("id").cloned().unwrap_or(Value::Null);
        let (content_type, body) = self.post(message, timeout).await?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(AdapterError::invalid_response(
                "mcp http: empty response to a request",
            ));
        }
        messages_of(&content_type, &body)
            .into_iter()
            .find(|message| answers(message, &id))
            .ok_or_else(|| {
                AdapterError::invalid_response("mcp http: no json-rpc response with our id")
            })
    }

    async fn notify(&mut self, message: &Value, timeout: Duration) -> Result<(), AdapterError> {
        self.post(message, timeout).await.map(|_| ())
    }

    fn set_protocol_version(&mut self, version: &str) {
        self.protocol_version = Some(version.to_owned());
    }

    async fn close(&mut self) {
        // DELETE of the session is optional for clients (servers may answer 405); nothing to release here.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_bodies_are_split_into_messages() {
        let body = b"event: message\nid: 1\ndata: \n\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\ndata: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{}}\n\n";
        let messages = messages_of("text/event-stream", body);
        assert_eq!(messages.len(), 2);
        assert!(answers(&messages[1], &json!(3)));
        assert!(!answers(&messages[0], &json!(3)));
        assert_eq!(
            messages_of("application/json", b"[{\"id\":1},{\"id\":2}]").len(),
            2
        );
        assert!(messages_of("application/json", b"not json").is_empty());
    }
}
