//! What the suite is pointed at and what it reports: the server under test with its bounds ([`Target`]), the
//! webhook secret it may send ([`WebhookSecret`]) and the cases selected ([`Selection`]).

use std::sync::Arc;
use std::time::Duration;

use crate::case::Profile;
use crate::spec::Spec;

/// The server under test and how patiently to test it.
#[derive(Clone)]
pub struct Target {
    /// Base URL of the orchestrator API, without a trailing slash (`http://127.0.0.1:8000`). The WebSocket is
    /// `<base_url>/ws` with the scheme changed to `ws`/`wss`.
    pub base_url: String,
    /// The contract to check against.
    pub spec: Arc<Spec>,
    /// The longest the flow waits for any one expected event (`--timeout`).
    pub flow_timeout: Duration,
    /// The timeout of every single HTTP request and WebSocket handshake.
    pub request_timeout: Duration,
    /// The longest the whole run may take (`--budget`): every wait and request is cut at this bound, and the cases
    /// not reached by then are skipped with that reason. A few seconds of it are kept for the flow's clean-up.
    pub budget: Duration,
    /// The alert webhooks' shared secret (`--webhook-secret`); the `webhook/…` cases run only when it is set.
    pub webhook_secret: Option<WebhookSecret>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("base_url", &self.base_url)
            .field("flow_timeout", &self.flow_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("budget", &self.budget)
            .field("webhook_secret", &self.webhook_secret)
            .finish_non_exhaustive()
    }
}

/// The alert webhooks' shared secret. Its `Debug` never shows the value, so it cannot leak into a log.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    /// Wraps a secret.
    #[must_use]
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one header that carries it.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// Why a target could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    /// The base URL is not an `http://` or `https://` URL.
    #[error("the base URL must start with http:// or https://, got {0:?}")]
    BaseUrl(String),
}

impl Target {
    /// Default for [`Target::flow_timeout`].
    pub const DEFAULT_FLOW_TIMEOUT: Duration = Duration::from_secs(60);
    /// Default for [`Target::request_timeout`].
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default for [`Target::budget`]: the whole suite against a slow or broken server ends within it.
    pub const DEFAULT_BUDGET: Duration = Duration::from_secs(90);

    /// A target with the default timeouts.
    ///
    /// # Errors
    /// [`TargetError::BaseUrl`] when `base_url` is not an HTTP(S) URL.
    pub fn new(base_url: &str, spec: Spec) -> Result<Self, TargetError> {
        let trimmed = base_url.trim().trim_end_matches('/');
        let rest = trimmed
            .strip_prefix("http://")
            .or_else(|| trimmed.strip_prefix("https://"));
        if rest.is_none_or(str::is_empty) {
            return Err(TargetError::BaseUrl(base_url.to_owned()));
        }
        Ok(Self {
            base_url: trimmed.to_owned(),
            spec: Arc::new(spec),
            flow_timeout: Self::DEFAULT_FLOW_TIMEOUT,
            request_timeout: Self::DEFAULT_REQUEST_TIMEOUT,
            budget: Self::DEFAULT_BUDGET,
            webhook_secret: None,
        })
    }
}

/// Which cases to report, and under which rules.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Case id prefixes (`shapes/`, `flow/plan.generated`); empty selects every case. A case that is not
    /// selected is not reported, but the phases a selected case depends on still run (selecting a `ws/` case
    /// runs the flow).
    pub prefixes: Vec<String>,
    /// Turns the flow's fallback skips (an incident reached only through `/api/incidents/simulate`, a run that
    /// needed a manual `/api/tests/run`) into failures.
    pub strict: bool,
    /// The profile: which promises are checked. A case outside it is not applicable: it is neither run nor
    /// reported.
    pub profile: Profile,
}

impl Selection {
    /// Every case, not strict.
    #[must_use]
    pub fn all() -> Self {
        Self::default()
    }

    /// The cases whose id starts with one of `prefixes`.
    #[must_use]
    pub fn prefixes<I, S>(prefixes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            prefixes: prefixes.into_iter().map(Into::into).collect(),
            strict: false,
            profile: Profile::default(),
        }
    }

    /// The same selection under `profile`.
    #[must_use]
    pub fn with_profile(mut self, profile: Profile) -> Self {
        self.profile = profile;
        self
    }

    /// Whether the case with this id is selected.
    #[must_use]
    pub fn matches(&self, id: &str) -> bool {
        self.prefixes.is_empty()
            || self
                .prefixes
                .iter()
                .any(|prefix| id.starts_with(prefix.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_accepts_http_urls_and_trims_the_trailing_slash() {
        let spec = || Spec::embedded().expect("embedded spec");
        let target = Target::new(" http://127.0.0.1:8000/ ", spec()).expect("valid");
        assert_eq!(target.base_url, "http://127.0.0.1:8000");
        assert!(Target::new("https://example.test/api", spec()).is_ok());
        for bad in ["127.0.0.1:8000", "ws://127.0.0.1:8000", "http://", ""] {
            assert!(Target::new(bad, spec()).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn the_webhook_secret_never_shows_in_debug() {
        let mut target =
            Target::new("http://127.0.0.1:8000", Spec::embedded().expect("spec")).expect("valid");
        target.webhook_secret = Some(WebhookSecret::new("very-secret-value-123"));
        let shown = format!("{target:?}");
        assert!(!shown.contains("very-secret-value-123"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
    }

    #[test]
    fn selection_matches_by_id_prefix() {
        assert!(Selection::all().matches("ws/WsEnvelope/1"));
        let selection = Selection::prefixes(["flow/plan", "shapes/getStatus/1"]);
        assert!(selection.matches("flow/plan.generated/2"));
        assert!(selection.matches("shapes/getStatus/1"));
        assert!(!selection.matches("shapes/getStatus/2"));
        assert!(!selection.matches("ws/WsEnvelope/1"));
    }
}
