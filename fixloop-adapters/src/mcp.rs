//! A thin wrapper over the official Rust MCP SDK (`rmcp`) shared by the MCP adapters (TestSprite, Datadog): connect
//! over stdio ([`McpEndpoint::Stdio`], a spawned server) or Streamable HTTP ([`McpEndpoint::Http`]), list tools,
//! call a tool with a timeout, receive progress notifications, and close. rmcp speaks the protocol (handshake,
//! JSON-RPC, SSE, sessions, cancellation); this module only bounds every call in time, classifies failures as
//! [`AdapterError`]s, and keeps credentials in [`Secret`]s.
//!
//! Guarantees: every await is bounded (the handshake by the connect timeout, each call by its own); a spawned server
//! is killed on every path (its command has `kill_on_drop`, and dropping a session drops the child); no credential
//! reaches a log line or a `Debug` output.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig,
    ClientRequest, Implementation, ProgressNotificationParam, ProgressToken, ServerResult,
};
use rmcp::service::{
    ClientInitializeError, NotificationContext, PeerRequestOptions, RunningService, ServiceError,
};
use rmcp::transport::common::client_side_sse::NeverRetry;
use rmcp::transport::streamable_http_client::{
    AuthRequiredError, HttpStatusError, InsufficientScopeError, StreamableHttpClientTransportConfig,
};
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::error::{AdapterError, ErrorKind};
use crate::secret::Secret;

/// Longest text kept from a server's error message or failed tool result, in characters.
pub const MAX_ERROR_TEXT: usize = 300;

/// How long closing a session may take before the session is dropped (which kills a spawned server).
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Where an MCP server is and how to authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum McpEndpoint {
    /// A server spawned as a child process, speaking newline-delimited JSON-RPC on stdin/stdout.
    Stdio {
        /// The program.
        command: String,
        /// Its arguments.
        args: Vec<String>,
        /// Extra environment variables (credentials: never logged).
        env: Vec<(String, Secret)>,
    },
    /// A remote server speaking Streamable HTTP.
    Http {
        /// The MCP endpoint URL.
        url: String,
        /// `Authorization: Bearer <token>`, when given.
        bearer: Option<Secret>,
        /// Other credential headers (name, value), for example Datadog's `DD_API_KEY`.
        headers: Vec<(String, Secret)>,
    },
}

/// The result of `tools/call` (the parts FixLoop reads).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ToolResult {
    /// The `text` of every `text` content item, in order.
    pub texts: Vec<String>,
    /// `structuredContent`, if any.
    pub structured: Option<Value>,
    /// `isError`: the tool ran and failed.
    pub is_error: bool,
}

impl ToolResult {
    /// The texts joined by a space and cut to [`MAX_ERROR_TEXT`] characters, for error messages.
    #[must_use]
    pub fn excerpt(&self) -> String {
        bounded(&self.texts.join(" "), MAX_ERROR_TEXT)
    }
}

/// A handle on a tool call in flight: its progress token, to match its progress notifications.
#[derive(Debug)]
pub struct PendingCall {
    handle: rmcp::service::RequestHandle<RoleClient>,
    tool: String,
}

impl PendingCall {
    /// The progress token FixLoop sent with the call; its `notifications/progress` carry it.
    #[must_use]
    pub fn progress_token(&self) -> &ProgressToken {
        &self.handle.progress_token
    }

    /// Waits for the answer (bounded by the timeout the call was started with).
    ///
    /// # Errors
    ///
    /// See [`McpSession::call_tool`].
    pub async fn answer(self) -> Result<ToolResult, AdapterError> {
        let tool = self.tool;
        let result = self
            .handle
            .await_response()
            .await
            .map_err(|error| classify_service_error(&tool, error))?;
        match result {
            ServerResult::CallToolResult(result) => Ok(tool_result(result)),
            _ => Err(AdapterError::invalid_response(format!(
                "mcp tool {tool}: the answer is not a tool result"
            ))),
        }
    }
}

/// One connected MCP session.
pub struct McpSession {
    service: RunningService<RoleClient, Handler>,
}

impl fmt::Debug for McpSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McpSession").finish_non_exhaustive()
    }
}

impl McpSession {
    /// Connects (spawn or HTTP) and runs the `initialize` handshake within `handshake_timeout`. Progress
    /// notifications of every call are forwarded to `progress` when given. `http` is the client for Streamable
    /// HTTP (see [`mcp_http_client`]).
    ///
    /// # Errors
    ///
    /// [`Unavailable`](ErrorKind::Unavailable) when the server cannot be spawned or reached or hangs up,
    /// [`Timeout`](ErrorKind::Timeout) when the handshake takes longer than `handshake_timeout`,
    /// [`Unauthorized`](ErrorKind::Unauthorized) when the credentials are refused, and
    /// [`InvalidResponse`](ErrorKind::InvalidResponse) when the server answers the handshake with an error.
    pub async fn connect(
        endpoint: &McpEndpoint,
        http: &reqwest::Client,
        handshake_timeout: Duration,
        progress: Option<mpsc::UnboundedSender<ProgressNotificationParam>>,
    ) -> Result<Self, AdapterError> {
        let handler = Handler {
            info: ClientConfig::new(
                ClientCapabilities::default(),
                Implementation::new("fixloop", env!("CARGO_PKG_VERSION")),
            ),
            progress,
        };
        // Dropping the handshake future on timeout drops the transport: the child is killed, the HTTP worker ends.
        let connecting = async {
            match endpoint {
                McpEndpoint::Stdio { command, args, env } => {
                    let mut builder = tokio::process::Command::new(command);
                    builder.args(args).kill_on_drop(true);
                    for (name, value) in env {
                        builder.env(name, value.expose());
                    }
                    let (transport, _) = TokioChildProcess::builder(builder)
                        // stderr is logging only (MCP stdio transport); FixLoop does not read it.
                        .stderr(std::process::Stdio::null())
                        .spawn()
                        .map_err(|error| {
                            AdapterError::unavailable(format!(
                                "could not start the mcp server {command:?}"
                            ))
                            .with_source(error)
                        })?;
                    handler
                        .serve(transport)
                        .await
                        .map_err(classify_initialize_error)
                }
                McpEndpoint::Http {
                    url,
                    bearer,
                    headers,
                } => {
                    let mut config = StreamableHttpClientTransportConfig::with_uri(url.as_str());
                    // One attempt: a lost event stream fails the calls waiting on it instead of being resumed
                    // (retries are the core's policy).
                    config.retry_config = Arc::new(NeverRetry::default());
                    if let Some(token) = bearer {
                        // rmcp sends it with reqwest's `bearer_auth`: the bare token.
                        config = config.auth_header(token.expose());
                    }
                    let mut custom = HashMap::new();
                    for (name, value) in headers {
                        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                            .map_err(|error| {
                                AdapterError::invalid_response(format!(
                                    "invalid mcp header name {name:?}"
                                ))
                                .with_source(error)
                            })?;
                        let mut value = reqwest::header::HeaderValue::from_str(value.expose())
                            .map_err(|_| {
                                AdapterError::invalid_response(format!(
                                    "the value of mcp header {name} is not a valid header value"
                                ))
                            })?;
                        value.set_sensitive(true);
                        custom.insert(name, value);
                    }
                    config = config.custom_headers(custom);
                    let transport =
                        StreamableHttpClientTransport::with_client(http.clone(), config);
                    handler
                        .serve(transport)
                        .await
                        .map_err(classify_initialize_error)
                }
            }
        };
        let service = tokio::time::timeout(handshake_timeout, connecting)
            .await
            .map_err(|_| {
                AdapterError::timeout(handshake_timeout)
                    .with_source(std::io::Error::other("mcp handshake"))
            })??;
        Ok(Self { service })
    }

    /// The names of the server's tools (every page), within `timeout`.
    ///
    /// # Errors
    ///
    /// As [`call_tool`](Self::call_tool).
    pub async fn list_tools(&self, timeout: Duration) -> Result<Vec<String>, AdapterError> {
        let tools = tokio::time::timeout(timeout, self.service.list_all_tools())
            .await
            .map_err(|_| AdapterError::timeout(timeout))?
            .map_err(|error| classify_service_error("tools/list", error))?;
        Ok(tools
            .into_iter()
            .map(|tool| tool.name.into_owned())
            .collect())
    }

    /// Starts `tools/call` of `tool` with `arguments` (a JSON object; anything else is sent as no arguments); the
    /// answer is awaited with [`PendingCall::answer`] and bounded by `timeout` (on expiry the call is cancelled with
    /// `notifications/cancelled`).
    ///
    /// # Errors
    ///
    /// [`Unavailable`](ErrorKind::Unavailable) when the session is closed.
    pub async fn start_call(
        &self,
        tool: &str,
        arguments: Value,
        timeout: Duration,
    ) -> Result<PendingCall, AdapterError> {
        let mut params = CallToolRequestParams::new(tool.to_owned());
        if let Value::Object(arguments) = arguments {
            params = params.with_arguments(arguments);
        }
        let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
        let handle = self
            .service
            .peer()
            .send_cancellable_request(request, PeerRequestOptions::with_timeout(timeout))
            .await
            .map_err(|error| classify_service_error(tool, error))?;
        Ok(PendingCall {
            handle,
            tool: tool.to_owned(),
        })
    }

    /// Calls `tool` with `arguments` and waits at most `timeout` for the answer. A result with `isError: true` is
    /// returned as `Ok` (the caller decides what a failed tool means).
    ///
    /// # Errors
    ///
    /// [`Timeout`](ErrorKind::Timeout) when no answer comes in `timeout`, [`InvalidResponse`](ErrorKind::InvalidResponse)
    /// for a JSON-RPC error (unknown tool, bad arguments) or an answer that is not a tool result,
    /// [`Unavailable`](ErrorKind::Unavailable) when the server hangs up or fails (5xx),
    /// [`Unauthorized`](ErrorKind::Unauthorized) for refused credentials and
    /// [`RateLimited`](ErrorKind::RateLimited) for HTTP 429.
    pub async fn call_tool(
        &self,
        tool: &str,
        arguments: Value,
        timeout: Duration,
    ) -> Result<ToolResult, AdapterError> {
        self.start_call(tool, arguments, timeout)
            .await?
            .answer()
            .await
    }

    /// Ends the session (stdio: closes the server's stdin, then terminates it), waiting at most [`CLOSE_TIMEOUT`];
    /// if that is not enough, the session is dropped, which kills a spawned server.
    pub async fn close(mut self) {
        let _ = self.service.close_with_timeout(CLOSE_TIMEOUT).await;
    }
}

/// Builds the HTTP client rmcp's Streamable HTTP transport uses: rustls on the ring provider with the webpki root
/// certificates (no ALPN offered), no redirects, and `connect_timeout` for connecting.
///
/// # Errors
///
/// [`Unavailable`](ErrorKind::Unavailable) when the client cannot be built.
#[expect(
    clippy::disallowed_methods,
    reason = "the builder is given its TLS configuration at once"
)]
pub fn mcp_http_client(connect_timeout: Duration) -> Result<reqwest::Client, AdapterError> {
    reqwest::Client::builder()
        .tls_backend_preconfigured(crate::tls_config())
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(connect_timeout)
        .user_agent(concat!("fixloop/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| {
            AdapterError::unavailable("could not build the mcp http client").with_source(error)
        })
}

/// The client side of a session: names FixLoop and forwards progress notifications.
struct Handler {
    info: ClientConfig,
    progress: Option<mpsc::UnboundedSender<ProgressNotificationParam>>,
}

impl ClientHandler for Handler {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        if let Some(progress) = &self.progress {
            // The receiver is gone once the run is over: late notifications are dropped.
            let _ = progress.send(params);
        }
    }

    fn get_info(&self) -> ClientConfig {
        self.info.clone()
    }
}

fn tool_result(result: CallToolResult) -> ToolResult {
    ToolResult {
        texts: result
            .content
            .iter()
            .filter_map(|content| content.as_text())
            .map(|text| text.text.clone())
            .collect(),
        structured: result.structured_content,
        is_error: result.is_error == Some(true),
    }
}

/// `text` cut to `max` characters, on one line.
pub(crate) fn bounded(text: &str, max: usize) -> String {
    let mut out: String = text
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect();
    if text.trim().chars().count() > max {
        out.push('…');
    }
    out
}

fn classify_initialize_error(error: ClientInitializeError) -> AdapterError {
    let kind = match &error {
        ClientInitializeError::TransportError { error, .. } => transport_kind(error.error.as_ref()),
        ClientInitializeError::JsonRpcError(data) => {
            return AdapterError::invalid_response(format!(
                "mcp initialize failed with json-rpc error {}: {}",
                data.code.0,
                bounded(&data.message, MAX_ERROR_TEXT)
            ));
        }
        ClientInitializeError::ConnectionClosed(_) => ErrorKind::Unavailable,
        _ => ErrorKind::InvalidResponse,
    };
    with_kind(kind, "mcp initialize failed", error)
}

fn classify_service_error(tool: &str, error: ServiceError) -> AdapterError {
    match error {
        ServiceError::McpError(data) => AdapterError::invalid_response(format!(
            "mcp {tool} failed with json-rpc error {}: {}",
            data.code.0,
            bounded(&data.message, MAX_ERROR_TEXT)
        )),
        ServiceError::Timeout { timeout } => AdapterError::timeout(timeout),
        ServiceError::TransportClosed => {
            AdapterError::unavailable(format!("mcp {tool}: the server closed the connection"))
        }
        ServiceError::TransportSend(ref dynamic) => {
            let kind = transport_kind(dynamic.error.as_ref());
            with_kind(kind, &format!("mcp {tool} could not be sent"), error)
        }
        ServiceError::UnexpectedResponse => {
            AdapterError::invalid_response(format!("mcp {tool}: unexpected response"))
        }
        other => with_kind(ErrorKind::Unavailable, &format!("mcp {tool} failed"), other),
    }
}

fn with_kind(
    kind: ErrorKind,
    message: &str,
    source: impl std::error::Error + Send + Sync + 'static,
) -> AdapterError {
    AdapterError::new(kind, message).with_source(source)
}

/// Classifies a transport error by walking its causes: HTTP status metadata, authentication challenges, reqwest's
/// own classification, and rmcp's `HTTP <status>` messages for statuses it reports as text (a 401/403 without a
/// challenge).
fn transport_kind(error: &(dyn std::error::Error + Send + Sync + 'static)) -> ErrorKind {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if current.downcast_ref::<AuthRequiredError>().is_some()
            || current.downcast_ref::<InsufficientScopeError>().is_some()
        {
            return ErrorKind::Unauthorized;
        }
        if let Some(status) = current.downcast_ref::<HttpStatusError>() {
            let retry_after = status
                .retry_after
                .as_deref()
                .and_then(|value| value.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            return status_kind(status.status, retry_after);
        }
        if let Some(error) = current.downcast_ref::<reqwest::Error>() {
            if error.is_timeout() {
                return ErrorKind::Timeout;
            }
            if let Some(status) = error.status() {
                return status_kind(status.as_u16(), None);
            }
            return ErrorKind::Unavailable;
        }
        if let Some(code) = current
            .to_string()
            .split("HTTP ")
            .nth(1)
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse::<u16>().ok())
        {
            return status_kind(code, None);
        }
        cause = current.source();
    }
    ErrorKind::Unavailable
}

fn status_kind(status: u16, retry_after: Option<Duration>) -> ErrorKind {
    match status {
        401 | 403 => ErrorKind::Unauthorized,
        429 => ErrorKind::RateLimited { retry_after },
        408 | 504 => ErrorKind::Timeout,
        500..=599 => ErrorKind::Unavailable,
        _ => ErrorKind::InvalidResponse,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_in_transport_messages_are_classified() {
        let error = std::io::Error::other("unexpected server response: HTTP 401 Unauthorized: no");
        assert_eq!(transport_kind(&error), ErrorKind::Unauthorized);
        let error = std::io::Error::other("connection reset");
        assert_eq!(transport_kind(&error), ErrorKind::Unavailable);
        assert_eq!(
            transport_kind(&HttpStatusError::new(429, Some("7".to_owned()))),
            ErrorKind::RateLimited {
                retry_after: Some(Duration::from_secs(7))
            }
        );
        assert_eq!(
            transport_kind(&HttpStatusError::new(503, None)),
            ErrorKind::Unavailable
        );
    }

    #[test]
    fn bounded_text_is_one_line_and_cut() {
        assert_eq!(bounded(" a\nb ", 10), "a b");
        assert_eq!(bounded("abcdef", 3), "abc…");
    }

    #[test]
    fn endpoints_never_print_credentials() {
        let endpoint = McpEndpoint::Http {
            url: "https://mcp.example/mcp".to_owned(),
            bearer: Some(Secret::new("bearer-secret")),
            headers: vec![("DD_API_KEY".to_owned(), Secret::new("header-secret"))],
        };
        let printed = format!("{endpoint:?}");
        assert!(!printed.contains("secret"), "{printed}");
    }
}
