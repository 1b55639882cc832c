//! What a browser page or a careless client must not get from the HTTP API, checked before anything else: the
//! `Host` of every request ([`HostPolicy`], 421 `host_not_allowed`), the `Origin` of a WebSocket upgrade
//! ([`origin_allowed`], 403 `origin_not_allowed`), a connection left usable after an early answer
//! ([`keep_connection_usable`]), and the count and log summary of refused requests ([`Refusals`]).
//!
//! The `Host` check stops DNS rebinding: a page of `evil.example` whose name the attacker re-points at 127.0.0.1
//! talks to the server as its own origin, but its requests still say `Host: evil.example`. Accepted hosts are
//! loopback names and addresses (`localhost`, 127.0.0.0/8, `[::1]`), the bound address (any address literal when
//! the server binds every interface: a literal cannot be rebound), the host of `ORCH_BASE_URL`, and the names of
//! `FIXLOOP_ALLOWED_HOSTS`; the port is never compared. The check always runs on a server without tokens (its API is
//! open to whoever reaches it), and on one with tokens once `FIXLOOP_ALLOWED_HOSTS` is set. A request without a
//! `Host` (HTTP/1.0, in-process callers) is not from a browser and passes.
//!
//! An early answer (401, 403, 404, 415...) leaves the request's body unread; hyper then closes the connection
//! unless the rest of the body has already arrived, without saying so, and a keep-alive client's next request fails.
//! [`keep_connection_usable`] reads what is left of such a body (bounded in bytes and time) after the answer, and
//! when it cannot, answers with `Connection: close` so the client knows to reconnect.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, BodyDataStream, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Version, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use fixloop_contract::codes;
use futures_util::{Stream, StreamExt};
use tokio::time::Instant;

use crate::http::error::ApiError;

/// At most one log line per reason in this interval ([`Refusals`]).
pub const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// The reasons a request is refused before any handler work, by their `ErrorBody` code.
pub const REFUSAL_REASONS: [&str; 5] = [
    codes::UNAUTHORIZED,
    codes::FORBIDDEN,
    codes::ORIGIN_NOT_ALLOWED,
    codes::HOST_NOT_ALLOWED,
    codes::RATE_LIMITED,
];

/// Refused requests (401, 403, 421, 429), counted by reason for `/metrics` and summarised in the log: the first
/// refusal of a reason is logged at once, later ones at most once per [`REFUSAL_LOG_INTERVAL`] as one line with
/// their count, so a flood writes a bounded number of lines whatever its size.
#[derive(Debug, Default)]
pub struct Refusals {
    reasons: [RefusalCount; 5],
}

#[derive(Debug, Default)]
struct RefusalCount {
    total: AtomicU64,
    /// Refusals since the last line, and when that line was written.
    pending: Mutex<(u64, Option<Instant>)>,
}

impl PartialEq for Refusals {
    /// The same counters (identity).
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Refusals {
    /// Counts one refusal with `code` (one of [`REFUSAL_REASONS`]; others are ignored), logging a summary line when
    /// the interval allows; `detail` (method and route, never a token) goes into that line.
    pub fn record(&self, code: &str, detail: &dyn std::fmt::Display) {
        let Some(index) = REFUSAL_REASONS.iter().position(|reason| *reason == code) else {
            return;
        };
        let count = &self.reasons[index];
        count.total.fetch_add(1, Ordering::Relaxed);
        let mut pending = count.pending.lock().unwrap_or_else(PoisonError::into_inner);
        pending.0 += 1;
        let now = Instant::now();
        if pending
            .1
            .is_none_or(|at| now.duration_since(at) >= REFUSAL_LOG_INTERVAL)
        {
            tracing::info!(
                reason = code,
                refused = pending.0,
                latest = %detail,
                "requests refused since the last line of this reason (at most one line a minute per reason; fixloop_requests_refused_total counts them all)"
            );
            *pending = (0, Some(now));
        }
    }

    /// The Prometheus text of the counters.
    #[must_use]
    pub fn render(&self) -> String {
        let mut text = String::from(
            "# HELP fixloop_requests_refused_total Requests refused before any work, by the code of their answer.\n\
             # TYPE fixloop_requests_refused_total counter\n",
        );
        for (reason, count) in REFUSAL_REASONS.iter().zip(&self.reasons) {
            let _ = writeln!(
                text,
                "fixloop_requests_refused_total{{reason=\"{reason}\"}} {}",
                count.total.load(Ordering::Relaxed)
            );
        }
        text
    }
}

/// How long [`keep_connection_usable`] waits for the rest of an unread body.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// Longest host shown back in an error message, in characters.
const SHOWN_HOST_CHARS: usize = 100;

/// Which `Host` headers the server answers to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostPolicy {
    /// Whether the check runs at all (open servers, or `FIXLOOP_ALLOWED_HOSTS` set).
    pub enforce: bool,
    /// The address the server is bound to; `None` when unknown (in-process routers).
    pub bind: Option<IpAddr>,
    /// Extra host names or addresses, lowercase, without port (`FIXLOOP_ALLOWED_HOSTS`, the `ORCH_BASE_URL` host).
    pub allowed: Vec<String>,
}

impl HostPolicy {
    /// Whether a request whose `Host` header is `host` (with or without a port) may be answered.
    #[must_use]
    pub fn allows(&self, host: &str) -> bool {
        if !self.enforce {
            return true;
        }
        let Some(name) = host_part(host) else {
            return false;
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if name == "localhost" || self.allowed.contains(&name) {
            return true;
        }
        let Some(address) = parse_address(&name) else {
            return false;
        };
        let address = address.to_canonical();
        address.is_loopback()
            || self.bind.is_some_and(|bind| {
                // Every interface: an address literal names this machine, and cannot be rebound to another.
                bind.is_unspecified() || bind.to_canonical() == address
            })
    }
}

/// The host of a `Host` header value without its port: `[::1]:8000` gives `::1`, `example.com:80` gives
/// `example.com`. `None` when the value is not a host (empty, an unclosed bracket, spaces).
#[must_use]
pub fn host_part(value: &str) -> Option<&str> {
    let value = value.trim();
    let host = if let Some(rest) = value.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        inside
    } else {
        match value.rsplit_once(':') {
            Some((host, port)) if is_port(port) => host,
            _ => value,
        }
    };
    let valid = !host.is_empty()
        && host
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b".-_:%".contains(&byte));
    valid.then_some(host)
}

fn is_port(text: &str) -> bool {
    !text.is_empty() && text.len() <= 5 && text.bytes().all(|byte| byte.is_ascii_digit())
}

fn parse_address(name: &str) -> Option<IpAddr> {
    name.parse::<IpAddr>().ok()
}

/// Whether a WebSocket upgrade with these headers may go on: no `Origin` (not a browser), an `Origin` that is the
/// page's own (its host and port are the request's `Host`), or one of `cors_origins` (`*` allows any).
#[must_use]
pub fn origin_allowed(headers: &HeaderMap, cors_origins: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = origin.trim().trim_end_matches('/');
    if cors_origins
        .iter()
        .any(|allowed| allowed == "*" || allowed.eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => "80",
        "https" => "443",
        _ => return false,
    };
    let Some(host) = headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
    else {
        return false;
    };
    normalized_authority(authority, default_port) == normalized_authority(host, default_port)
}

/// `host:port` in lowercase, with the scheme's default port written out.
fn normalized_authority(authority: &str, default_port: &str) -> Option<String> {
    let host = host_part(authority)?.to_ascii_lowercase();
    let port = authority
        .trim()
        .rsplit_once(':')
        .map(|(_, port)| port)
        .filter(|port| is_port(port) && !authority.trim().ends_with(']'))
        .unwrap_or(default_port);
    Some(format!("{host}:{port}"))
}

/// The middleware of [`HostPolicy`]: 421 `host_not_allowed` for a `Host` the server does not answer to.
pub async fn check_host(
    State((policy, refusals)): State<(Arc<HostPolicy>, Arc<Refusals>)>,
    request: Request,
    next: Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .map(|host| String::from_utf8_lossy(host.as_bytes()).into_owned())
        .or_else(|| request.uri().authority().map(ToString::to_string));
    match host {
        Some(host) if !policy.allows(&host) => {
            let shown: String = host.chars().take(SHOWN_HOST_CHARS).collect();
            refusals.record(
                codes::HOST_NOT_ALLOWED,
                &format_args!(
                    "{} {} (Host {shown})",
                    request.method(),
                    request.uri().path()
                ),
            );
            ApiError::HostNotAllowed(shown).into_response()
        }
        _ => next.run(request).await,
    }
}

/// How much of an unread body [`keep_connection_usable`] reads after the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainLimit {
    /// Bytes (the request body limit).
    pub bytes: usize,
    /// Time.
    pub time: Duration,
}

/// The middleware that keeps an HTTP/1 connection usable after an answer that left the request's body unread: it
/// reads the rest (at most `limit.bytes`, within `limit.time`) once the answer is ready, else adds
/// `Connection: close` to the answer.
pub async fn keep_connection_usable(
    State(limit): State<DrainLimit>,
    request: Request,
    next: Next,
) -> Response {
    if !declares_body(request.headers()) || request.version() > Version::HTTP_11 {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let shared = SharedBody::new(body);
    let request = Request::from_parts(parts, Body::from_stream(shared.clone()));
    let mut response = next.run(request).await;
    if !shared.drain(limit).await {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Whether the request says it carries a body (a non-zero `Content-Length`, or any `Transfer-Encoding`).
fn declares_body(headers: &HeaderMap) -> bool {
    let non_zero_length = headers
        .get(header::CONTENT_LENGTH)
        .is_some_and(|length| length.to_str().map_or(true, |text| text.trim() != "0"));
    non_zero_length || headers.contains_key(header::TRANSFER_ENCODING)
}

/// A request body the handler reads through, whose rest the middleware can still read after the handler.
#[derive(Clone)]
struct SharedBody(Arc<Mutex<BodyState>>);

struct BodyState {
    stream: BodyDataStream,
    /// The body ended (`Some(true)`) or failed (`Some(false)`).
    ended: Option<bool>,
}

impl SharedBody {
    fn new(body: Body) -> Self {
        Self(Arc::new(Mutex::new(BodyState {
            stream: body.into_data_stream(),
            ended: None,
        })))
    }

    /// Reads the rest of the body within `limit`; true when it ended cleanly.
    async fn drain(&self, limit: DrainLimit) -> bool {
        let mut read = 0_usize;
        let mut rest = self.clone();
        let drained = tokio::time::timeout(limit.time, async {
            while let Some(chunk) = rest.next().await {
                match chunk {
                    Ok(bytes) => {
                        read = read.saturating_add(bytes.len());
                        if read > limit.bytes {
                            return false;
                        }
                    }
                    Err(_) => return false,
                }
            }
            true
        })
        .await;
        drained.unwrap_or(false) && self.state().ended == Some(true)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, BodyState> {
        // The state is a stream and a flag, consistent even if a reader panicked.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Stream for SharedBody {
    type Item = Result<Bytes, axum::Error>;

    fn poll_next(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut state = self.state();
        if state.ended.is_some() {
            return Poll::Ready(None);
        }
        let polled = state.stream.poll_next_unpin(context);
        match &polled {
            Poll::Ready(None) => state.ended = Some(true),
            Poll::Ready(Some(Err(_))) => state.ended = Some(false),
            _ => {}
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(bind: &str, allowed: &[&str]) -> HostPolicy {
        HostPolicy {
            enforce: true,
            bind: Some(bind.parse().unwrap()),
            allowed: allowed.iter().map(|name| (*name).to_owned()).collect(),
        }
    }

    #[test]
    fn loopback_hosts_pass_with_or_without_a_port() {
        let policy = policy("127.0.0.1", &[]);
        for host in [
            "localhost",
            "LOCALHOST:8000",
            "localhost.",
            "127.0.0.1",
            "127.0.0.1:8000",
            "127.1.2.3:1",
            "[::1]",
            "[::1]:8000",
            "[::ffff:127.0.0.1]:80",
        ] {
            assert!(policy.allows(host), "{host}");
        }
    }

    #[test]
    fn foreign_names_and_addresses_are_refused() {
        let policy = policy("127.0.0.1", &[]);
        for host in [
            "evil.example",
            "evil.example:8000",
            "localhost.evil.example",
            "10.0.0.1:8000",
            "[::2]:8000",
            "",
            "[::1",
            "a b",
            "127.0.0.1:8000:9",
        ] {
            assert!(!policy.allows(host), "{host}");
        }
    }

    #[test]
    fn the_bind_address_and_allowed_names_pass() {
        let policy = policy("10.0.0.5", &["fixloop.internal", "192.168.1.9"]);
        assert!(policy.allows("10.0.0.5:8000"));
        assert!(policy.allows("FixLoop.Internal:443"));
        assert!(policy.allows("192.168.1.9"));
        assert!(!policy.allows("10.0.0.6:8000"));
        // Bound to every interface, any address literal names this machine.
        let any = HostPolicy {
            enforce: true,
            bind: Some("0.0.0.0".parse().unwrap()),
            allowed: Vec::new(),
        };
        assert!(any.allows("10.1.2.3:8000") && any.allows("[2001:db8::1]:8000"));
        assert!(!any.allows("rebound.example:8000"));
        assert!(
            HostPolicy::default().allows("anything.example"),
            "not enforced"
        );
    }

    fn headers(origin: Option<&str>, host: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(origin) = origin {
            headers.insert(header::ORIGIN, origin.parse().unwrap());
        }
        if let Some(host) = host {
            headers.insert(header::HOST, host.parse().unwrap());
        }
        headers
    }

    #[test]
    fn origins_are_the_pages_own_or_configured() {
        let cors = vec!["http://localhost:3000".to_owned()];
        let allowed = |origin: Option<&str>, host: Option<&str>| {
            origin_allowed(&headers(origin, host), &cors)
        };
        assert!(
            allowed(None, Some("127.0.0.1:8000")),
            "no Origin: not a browser"
        );
        assert!(allowed(
            Some("http://127.0.0.1:8000"),
            Some("127.0.0.1:8000")
        ));
        assert!(allowed(
            Some("http://LOCALHOST:8000"),
            Some("localhost:8000")
        ));
        assert!(allowed(Some("http://[::1]:8000"), Some("[::1]:8000")));
        assert!(allowed(Some("http://localhost"), Some("localhost:80")));
        assert!(allowed(
            Some("http://localhost:3000"),
            Some("127.0.0.1:8000")
        ));
        assert!(!allowed(
            Some("http://evil.example"),
            Some("127.0.0.1:8000")
        ));
        assert!(!allowed(
            Some("http://127.0.0.1:9999"),
            Some("127.0.0.1:8000")
        ));
        assert!(!allowed(Some("null"), Some("127.0.0.1:8000")));
        assert!(!allowed(Some("http://127.0.0.1:8000"), None));
        assert!(origin_allowed(
            &headers(Some("http://evil.example"), Some("x")),
            &["*".to_owned()]
        ));
    }

    #[test]
    fn a_body_is_declared_by_its_length_or_encoding() {
        let with = |name: header::HeaderName, value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(name, value.parse().unwrap());
            declares_body(&headers)
        };
        assert!(with(header::CONTENT_LENGTH, "12"));
        assert!(!with(header::CONTENT_LENGTH, "0"));
        assert!(with(header::TRANSFER_ENCODING, "chunked"));
        assert!(!declares_body(&HeaderMap::new()));
    }
}
