//! The one error type of every port call, [`AdapterError`], and its classification [`ErrorKind`].
//!
//! The driver maps the kind to the core's [`PortFailure`]; the core decides whether to retry.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use fixloop_core::engine::PortFailure;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// Longest body excerpt kept in an error message, in bytes.
const SNIPPET_LEN: usize = 200;

/// How a port call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No answer in time.
    Timeout,
    /// The vendor asked us to slow down.
    RateLimited {
        /// How long the vendor asked us to wait, if it said.
        retry_after: Option<Duration>,
    },
    /// The credentials were rejected (401 or 403).
    Unauthorized,
    /// The answer could not be understood (malformed JSON, unexpected shape, empty content, 4xx for our request).
    InvalidResponse,
    /// The vendor could not be reached or failed (connection error, 5xx).
    Unavailable,
    /// The vendor has no such resource, or the credentials may not see it (404 where an adapter says so).
    NotFound,
    /// The request was refused before any I/O: an action that is not declared, an argument that does not fit, a
    /// target that is not on the allowlist. Retrying cannot help.
    Refused,
}

/// A failed port call: a [`kind`](Self::kind), a lowercase one-line message, and the cause as
/// [`source`](StdError::source).
#[derive(Debug)]
pub struct AdapterError {
    kind: ErrorKind,
    message: String,
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

impl AdapterError {
    /// An error of any kind with a message.
    #[must_use]
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// No answer within `after`.
    #[must_use]
    pub fn timeout(after: Duration) -> Self {
        Self::new(
            ErrorKind::Timeout,
            format!("timed out after {}", format_duration(after)),
        )
    }

    /// Rate limited, with the vendor's retry-after if it gave one.
    #[must_use]
    pub fn rate_limited(retry_after: Option<Duration>) -> Self {
        let message = match retry_after {
            Some(after) => format!("rate limited, retry after {}", format_duration(after)),
            None => "rate limited".to_owned(),
        };
        Self::new(ErrorKind::RateLimited { retry_after }, message)
    }

    /// Credentials rejected.
    #[must_use]
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthorized, message)
    }

    /// The answer could not be understood.
    #[must_use]
    pub fn invalid_response(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidResponse, message)
    }

    /// The vendor could not be reached or failed.
    #[must_use]
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }

    /// Refused before any I/O (not declared, not on an allowlist, arguments that do not fit).
    #[must_use]
    pub fn refused(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Refused, message)
    }

    /// Attaches the underlying cause (returned by [`source`](StdError::source)).
    #[must_use]
    pub fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Classifies a transport error of reqwest. The URL is stripped from the cause, so query strings never reach
    /// logs.
    #[must_use]
    pub fn from_reqwest(error: reqwest::Error) -> Self {
        let error = error.without_url();
        let (kind, message) = if error.is_timeout() {
            (ErrorKind::Timeout, "request timed out")
        } else if let Some(status) = error.status() {
            return Self::from_status(status, None, "");
        } else if error.is_connect() {
            (ErrorKind::Unavailable, "connection failed")
        } else if error.is_decode() {
            (ErrorKind::InvalidResponse, "could not decode the response")
        } else if error.is_body() {
            (ErrorKind::Unavailable, "could not read the response body")
        } else if error.is_builder() {
            (ErrorKind::InvalidResponse, "could not build the request")
        } else {
            (ErrorKind::Unavailable, "request failed")
        };
        Self::new(kind, message).with_source(error)
    }

    /// Classifies a non-success HTTP status: 401/403 → unauthorized, 429 → rate limited, 408/504 → timeout,
    /// other 5xx → unavailable, other statuses → invalid response. `body_snippet` is shortened to a few hundred
    /// bytes.
    #[must_use]
    pub fn from_status(
        status: StatusCode,
        retry_after: Option<Duration>,
        body_snippet: &str,
    ) -> Self {
        let snippet = snippet(body_snippet);
        let described = if snippet.is_empty() {
            format!("http status {}", status.as_u16())
        } else {
            format!("http status {}: {snippet}", status.as_u16())
        };
        match status.as_u16() {
            401 | 403 => Self::unauthorized(described),
            429 => {
                let mut error = Self::rate_limited(retry_after);
                error.message = format!("{}: {described}", error.message);
                error
            }
            408 | 504 => Self::new(ErrorKind::Timeout, described),
            500..=599 => Self::unavailable(described),
            _ => Self::invalid_response(described),
        }
    }

    /// Turns a non-success response into an error (reading a bounded snippet of its body and its `Retry-After`),
    /// and gives a success response back.
    ///
    /// # Errors
    ///
    /// The classified [`AdapterError`] when the status is not 2xx.
    pub async fn check_status(response: reqwest::Response) -> Result<reqwest::Response, Self> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let retry_after = parse_retry_after(response.headers());
        let body = read_prefix(response, 4 * SNIPPET_LEN).await;
        Err(Self::from_status(status, retry_after, &body))
    }

    /// The classification.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message followed by the chain of causes, for example `"connection failed: tcp connect error:
    /// connection refused"`.
    #[must_use]
    pub fn detail(&self) -> String {
        let mut out = self.message.clone();
        let mut cause: Option<&(dyn StdError + 'static)> = self.source();
        while let Some(error) = cause {
            let text = error.to_string();
            if !text.is_empty() && !out.ends_with(&text) {
                out.push_str(": ");
                out.push_str(&text);
            }
            cause = error.source();
        }
        out
    }

    /// The core's classification of this failure.
    #[must_use]
    pub fn to_port_failure(&self) -> PortFailure {
        match self.kind {
            ErrorKind::Timeout => PortFailure::Timeout,
            ErrorKind::RateLimited { retry_after } => PortFailure::RateLimited { retry_after },
            ErrorKind::Unauthorized => PortFailure::Unauthorized,
            ErrorKind::InvalidResponse | ErrorKind::Refused | ErrorKind::NotFound => {
                PortFailure::InvalidResponse(self.detail())
            }
            ErrorKind::Unavailable => PortFailure::Unavailable(self.detail()),
        }
    }
}

impl fmt::Display for AdapterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for AdapterError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn StdError + 'static))
    }
}

impl From<&AdapterError> for PortFailure {
    fn from(error: &AdapterError) -> Self {
        error.to_port_failure()
    }
}

impl From<AdapterError> for PortFailure {
    fn from(error: AdapterError) -> Self {
        error.to_port_failure()
    }
}

/// Reads a `Retry-After` header given in seconds (`Retry-After: 7`). HTTP dates are not supported (they need a
/// clock) and give `None`, as does a missing or malformed header.
#[must_use]
pub fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let seconds = value.parse::<f64>().ok()?;
    (0.0..1e9)
        .contains(&seconds)
        .then(|| Duration::from_secs_f64(seconds))
}

/// Formats a duration for messages: `5s`, `250ms`, `1.5s`.
pub(crate) fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis < 1000 {
        format!("{millis}ms")
    } else if millis.is_multiple_of(1000) {
        format!("{}s", millis / 1000)
    } else {
        format!("{:.1}s", duration.as_secs_f64())
    }
}

/// Shortens `text` to at most [`SNIPPET_LEN`] bytes on a character boundary, on one line.
fn snippet(text: &str) -> String {
    let text = text.trim();
    let mut end = text.len().min(SNIPPET_LEN);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut out: String = text[..end]
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if end < text.len() {
        out.push('…');
    }
    out
}

/// Reads at most `limit` bytes of a body (lossily decoded); errors end the read.
async fn read_prefix(mut response: reqwest::Response, limit: usize) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    bytes.truncate(limit);
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified() {
        let kind = |code: u16| {
            AdapterError::from_status(StatusCode::from_u16(code).unwrap(), None, "").kind()
        };
        assert_eq!(kind(401), ErrorKind::Unauthorized);
        assert_eq!(kind(403), ErrorKind::Unauthorized);
        assert_eq!(kind(429), ErrorKind::RateLimited { retry_after: None });
        assert_eq!(kind(500), ErrorKind::Unavailable);
        assert_eq!(kind(503), ErrorKind::Unavailable);
        assert_eq!(kind(504), ErrorKind::Timeout);
        assert_eq!(kind(400), ErrorKind::InvalidResponse);
    }

    #[test]
    fn rate_limit_keeps_retry_after_and_maps_to_port_failure() {
        let error = AdapterError::from_status(
            StatusCode::TOO_MANY_REQUESTS,
            Some(Duration::from_secs(7)),
            "slow down",
        );
        assert_eq!(
            error.kind(),
            ErrorKind::RateLimited {
                retry_after: Some(Duration::from_secs(7))
            }
        );
        assert_eq!(
            PortFailure::from(&error),
            PortFailure::RateLimited {
                retry_after: Some(Duration::from_secs(7))
            }
        );
        assert!(error.to_string().contains("slow down"), "{error}");
    }

    #[test]
    fn snippet_is_bounded_and_char_safe() {
        let long = "é".repeat(500);
        let error = AdapterError::from_status(StatusCode::BAD_GATEWAY, None, &long);
        assert!(error.to_string().len() < SNIPPET_LEN + 40);
        assert!(error.to_string().ends_with('…'));
    }

    #[test]
    fn retry_after_seconds_are_parsed_and_dates_ignored() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "12".parse().unwrap());
        assert_eq!(parse_retry_after(&headers), Some(Duration::from_secs(12)));
        headers.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(parse_retry_after(&headers), None);
        headers.insert(RETRY_AFTER, "-3".parse().unwrap());
        assert_eq!(parse_retry_after(&headers), None);
    }

    #[test]
    fn refusal_is_an_invalid_request_for_the_core() {
        let error = AdapterError::refused("origin http://evil.example is not on the allowlist");
        assert_eq!(error.kind(), ErrorKind::Refused);
        assert_eq!(
            error.to_port_failure(),
            PortFailure::InvalidResponse(
                "origin http://evil.example is not on the allowlist".into()
            )
        );
    }

    #[test]
    fn detail_includes_the_cause_chain() {
        let error = AdapterError::unavailable("request failed")
            .with_source(std::io::Error::other("connection refused"));
        assert_eq!(error.detail(), "request failed: connection refused");
        assert_eq!(
            error.to_port_failure(),
            PortFailure::Unavailable("request failed: connection refused".into())
        );
    }

    #[test]
    fn durations_are_formatted_for_humans() {
        assert_eq!(format_duration(Duration::from_secs(5)), "5s");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
    }
}
