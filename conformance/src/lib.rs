//! `fixloop-conformance` checks any server that claims to implement the FixLoop contract against `openapi.yaml` and
//! the WebSocket schemas, in the manner of h2spec and Autobahn: every case has an id (`area/operation/n`), a
//! one-line description and the clause it checks, and ends as `Pass`, `Fail { expected, actual, path }` or
//! `Skip { reason }`.
//!
//! It knows the server only through HTTP and WebSocket, and it knows the contract only through the OpenAPI
//! document (the copy embedded at build time, [`Spec::embedded`], or any file, [`Spec::from_file`]): it never uses
//! FixLoop's Rust types, so a server written in any language can be checked.
//!
//! What it deliberately does not do: it does not start or configure the server, it does not judge performance, and
//! it does not talk to a server over TLS WebSockets with client certificates or authentication.
//!
//! # Areas
//!
//! - `shapes`: every REST operation called with a valid request; status and body validated against the spec's
//!   response schema (JSON Schema draft 2020-12, formats checked).
//! - `bad_input`: invalid requests generated from each request body schema (malformed JSON, wrong content type,
//!   oversized body, each required field missing, each property of the wrong type, unknown enum values, strings
//!   out of their length bounds) must get a 4xx with the spec's `ErrorBody`.
//! - `webhook`: FixLoop's alert webhooks and their secret, only when [`Target::webhook_secret`] is set.
//! - `flow`: the seed's demo flow over REST and WebSocket, each wait bounded by [`Target::flow_timeout`].
//! - `ws`: every WebSocket message validated against `WsEnvelope`, the required orders, and the state a late
//!   client receives.
//!
//! # Profiles
//!
//! Every case belongs to a [`Profile`]. [`Profile::Seed`] checks exactly what the seed's contract requires (and
//! judges bodies by the seed's types only, [`Spec::relaxed_for_seed`]); [`Profile::Fixloop`], the default, adds
//! FixLoop's documented guarantees. A case outside the run's profile is neither run nor reported.
//!
//! # Bounds
//!
//! The whole run is bounded by [`Target::budget`]: waits and requests are cut at it, a step whose precondition
//! failed is skipped with a reason naming the failed case instead of being waited for, and what was not judged in
//! time is skipped with the budget as the reason.
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use fixloop_conformance::{Selection, Spec, Target};
//!
//! let target = Target::new("http://127.0.0.1:8000", Spec::embedded()?)?;
//! let report = fixloop_conformance::run(&target, &Selection::all()).await;
//! println!("{}", report.to_json());
//! assert!(report.passed());
//! # Ok(()) }
//! ```

mod case;
mod cases;
mod client;
mod report;
mod spec;

use std::sync::Arc;
use std::time::Duration;

pub use case::{CaseInfo, CaseResult, Outcome, Phase, Profile};
pub use cases::data::CaseDataError;
pub use report::{REPORT_FORMAT_VERSION, Report, SpecInfo, Summary, Timings, xml_escape};
pub use spec::{EMBEDDED_SPEC, Operation, Spec, SpecError, Violation};

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

/// Loads the embedded data file of stateless cases and validates it against its meta-schema
/// (`conformance/cases/cases.schema.json`). Call it at startup: with a broken data file the suite still runs, but
/// reports a single failing `shapes/data.file/1` in place of the data cases.
///
/// # Errors
/// The [`CaseDataError`] naming the file, the entry and what is wrong.
pub fn check_case_data() -> Result<(), &'static CaseDataError> {
    cases::data::shapes().as_ref().map(|_| ())
}

/// Every case the suite has for `spec`, in execution order (what `--list` prints), each with its profile.
#[must_use]
pub fn list(spec: &Spec) -> Vec<CaseInfo> {
    cases::catalog(spec)
}

/// Runs the selected cases against `target`.
pub async fn run(target: &Target, selection: &Selection) -> Report {
    run_with_progress(target, selection, &mut |_| {}).await
}

/// Runs the selected cases against `target`, calling `on_case` with each outcome as soon as it is known.
pub async fn run_with_progress(
    target: &Target,
    selection: &Selection,
    on_case: &mut (dyn FnMut(&CaseResult) + Send),
) -> Report {
    cases::run(target, selection, on_case).await
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
    fn profiles_are_nested_and_spelled_as_on_the_command_line() {
        assert!(Profile::Fixloop.includes(Profile::Seed));
        assert!(!Profile::Seed.includes(Profile::Fixloop));
        assert_eq!(Selection::all().profile, Profile::Fixloop);
        assert_eq!("seed".parse::<Profile>(), Ok(Profile::Seed));
        assert!("strict".parse::<Profile>().is_err());
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

    #[test]
    fn case_ids_are_unique_and_shaped_area_operation_n() {
        let cases = list(&Spec::embedded().expect("embedded spec"));
        let mut ids = std::collections::BTreeSet::new();
        for case in &cases {
            let parts: Vec<&str> = case.id.split('/').collect();
            assert_eq!(parts.len(), 3, "{}", case.id);
            assert!(
                ["shapes", "bad_input", "webhook", "flow", "ws"].contains(&parts[0]),
                "{}",
                case.id
            );
            assert!(parts[2].parse::<u32>().is_ok_and(|n| n > 0), "{}", case.id);
            assert!(
                !case.description.is_empty() && !case.clause.is_empty(),
                "{}",
                case.id
            );
            assert!(ids.insert(case.id.clone()), "duplicate {}", case.id);
        }
    }
}
