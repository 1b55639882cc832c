//! Ports and adapters of FixLoop.
//!
//! The [`ports`] module defines the traits the server's driver calls: a [`SignalSource`] (error rate, p95,
//! top error, request count and evidence of the watched service), a [`Planner`] (incident → candidate Recovery
//! Validation Plan), a [`TestRunner`] (validated plan → per-test progress) and a [`Copilot`] (question + state, plus
//! live read-only look-ups through a [`CopilotLookup`] → answer with citations; [`copilot_safety`] decides what it
//! may say about safety). Every port call fails with one [`AdapterError`] whose [`ErrorKind`] the driver maps to
//! the core's `PortFailure`.
//!
//! Implementations:
//! - embedded defaults that need no key: [`HttpTestRunner`] (the built-in HTTP test runner),
//!   [`ScrapeSignalSource`] (scrapes the service's Prometheus `/metrics`, families and labels configurable),
//!   [`SyntheticSignalSource`] (probes a service that has no metrics), [`RulePlanner`] (the core's rule
//!   planner) and [`GroundedCopilot`] (answers from the state alone);
//! - vendor adapters: [`datadog`] (including [`DatadogMcpContext`], a [`ContextSource`] over Datadog's MCP server),
//!   [`prometheus`], [`minimax`] and [`testsprite`]; the MCP ones speak through [`mcp`], a thin wrapper over the
//!   official Rust MCP SDK (`rmcp`);
//! - the remediation ports: an [`Executor`] carries out one declared action ([`HttpActionExecutor`],
//!   [`CommandExecutor`], [`DockerRestartExecutor`], [`KubernetesRolloutExecutor`]) and a [`Notifier`] tells
//!   people what happened ([`WebhookNotifier`], [`SlackNotifier`], [`PagerDutyNotifier`]); a
//!   [`RemediationChooser`] lets a model pick among the ready steps (the engine checks its pick);
//! - the [`Store`] port (the durable journal of the engines' inputs, and their snapshots) with [`SqliteStore`], the
//!   embedded default (one SQLite file compiled in, or memory only);
//! - deterministic, scriptable fakes in [`fake`], for the server tests and the conformance self-check.
//!
//! What this crate deliberately does not do: it holds no state machine and no retry policy (adapters make one
//! attempt per call; the core decides), reads no environment variable (the binary builds the config structs) and
//! never logs or prints a [`Secret`]. Test requests and probes reference secrets as `${env:NAME}` placeholders
//! ([`secrets`]), substituted at send time only.
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use fixloop_adapters::{HttpTestRunner, HttpTestRunnerConfig, TestRunner, http_client};
//!
//! # fn main() -> Result<(), fixloop_adapters::AdapterError> {
//! let client = http_client(Duration::from_secs(10))?;
//! let runner: Arc<dyn TestRunner> = Arc::new(HttpTestRunner::new(HttpTestRunnerConfig::default(), client));
//! # let _ = runner;
//! # Ok(())
//! # }
//! ```

use std::time::Duration;

pub mod chooser;
pub mod ci_provider;
pub mod ci_refiner;
pub mod datadog;
pub mod embedded;
pub mod error;
pub mod executor;
pub mod fake;
pub mod http_runner;
pub mod mcp;
pub mod minimax;
pub mod notifier;
pub mod ports;
pub mod prometheus;
pub mod scrape;
pub mod secret;
pub mod secrets;
pub mod signal_check;
pub mod store;
pub mod synthetic;
pub mod testsprite;

pub use chooser::{ChoiceAnswer, ChoiceCandidate, ChoiceRequest, RemediationChooser};
pub use ci_provider::{
    CiProvider, GitHubActions, GitHubActionsConfig, GitLabCi, GitLabCiConfig, RerunReceipt,
    RerunRequest,
};
pub use ci_refiner::{CiRefiner, Proposal, RefineRequest};
pub use datadog::{DatadogMcpAuth, DatadogMcpConfig, DatadogMcpContext};
pub use embedded::{GroundedCopilot, RulePlanner};
pub use error::{AdapterError, ErrorKind, parse_retry_after};
pub use executor::{
    CommandAction, CommandExecutor, CommandExecutorConfig, DockerRestartAction,
    DockerRestartExecutor, DockerRestartExecutorConfig, HttpAction, HttpActionExecutor,
    HttpActionExecutorConfig, KubernetesRolloutAction, KubernetesRolloutExecutor,
    KubernetesRolloutExecutorConfig,
};
/// The copilot's safety rule: pure code of the core ([`fixloop_core::copilot::safety`]), re-exported here for the
/// copilots and the server that apply it.
pub use fixloop_core::copilot::safety as copilot_safety;
pub use http_runner::{HttpTestRunner, HttpTestRunnerConfig};
pub use notifier::{
    PagerDutyNotifier, PagerDutyNotifierConfig, SlackNotifier, SlackNotifierConfig,
    WebhookNotifier, WebhookNotifierConfig,
};
pub use ports::{
    ActionDescription, ActionOutcome, ActionRequest, ActionStatus, Captured, ContextFindings,
    ContextQuery, ContextSource, Copilot, CopilotLookup, CopilotReply, CopilotState, Delivery,
    Executor, Lookup, NoLookup, Notification, NotificationKind, Notifier, PlanRequest, Planner,
    ProgressModel, ProgressSink, RunnerExpectations, SignalReading, SignalSource, TestProgress,
    TestRunner,
};
pub use scrape::{
    LabelMatch, Sample, ScrapeCheck, ScrapeConfig, ScrapeMetrics, ScrapeSignalSource,
    parse_exposition,
};
pub use secret::Secret;
pub use signal_check::{Finding, LabelCheck, SignalCheck, SignalKind, SourceCheck};
pub use store::{
    ActionClaim, CiIntakeRecord, Claimed, EVENTS_KEPT, EventLog, JournalEntry, Lease, Leases,
    LoggedEvent, MAX_CI_RUN_INTAKES, MemoryEventLog, NewEvent, OutboxFailure, OutboxMessage,
    PostgresStore, ReplicaBeat, ReplicaRecord, Retention, SoleLeases, SqliteStore, Store,
    StoreError, StoreStats, Stored,
};
pub use synthetic::{SyntheticConfig, SyntheticProbe, SyntheticSignalSource};

/// The header the HTTP test runner sends on every validation request, with the run id as value; the demo service
/// counts such requests under `source="fixloop"`, so validation traffic never pollutes the signals it judges.
pub const VALIDATION_HEADER: &str = "x-fixloop-validation";

/// The header every request FixLoop sends to a watched service carries, saying what kind of traffic it is, so a
/// service (its metrics, its alert rules, its rate limits) can tell FixLoop's own requests apart and exclude them:
/// [`TRAFFIC_VALIDATION`] (a validation run's tests), [`TRAFFIC_SYNTHETIC`] (a synthetic probe), or
/// [`TRAFFIC_REMEDIATION`] (a remediation action). Every request also carries the `User-Agent` `fixloop/<version>`
/// of [`http_client`].
pub const TRAFFIC_HEADER: &str = "x-fixloop-traffic";
/// [`TRAFFIC_HEADER`] of a validation run's requests.
pub const TRAFFIC_VALIDATION: &str = "validation";
/// [`TRAFFIC_HEADER`] of a synthetic probe's requests.
pub const TRAFFIC_SYNTHETIC: &str = "synthetic";
/// [`TRAFFIC_HEADER`] of a remediation action's requests.
pub const TRAFFIC_REMEDIATION: &str = "remediation";

/// Builds the shared HTTP client of the adapters: rustls, no redirects followed (a test observes a 302 as a 302),
/// a connect timeout of at most `timeout` (capped at 5 s) and `timeout` as the default total timeout of a request
/// (adapters set tighter per-request timeouts).
///
/// # Errors
///
/// [`ErrorKind::Unavailable`] when the TLS backend cannot be initialised.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, AdapterError> {
    client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .timeout(timeout)
        .user_agent(concat!("fixloop/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| {
            AdapterError::unavailable("could not build the http client").with_source(error)
        })
}

/// A reqwest client builder with FixLoop's TLS: rustls on the ring provider with the webpki root certificates,
/// offering HTTP/2 and HTTP/1.1 (what reqwest's own rustls backend offers). Every reqwest client of FixLoop starts
/// here: the workspace builds reqwest without a crypto provider of its own (`rustls-no-provider`, so that no second
/// provider is compiled in), and `reqwest::Client::new()` or a builder given no TLS configuration panics.
#[expect(
    clippy::disallowed_methods,
    reason = "the one place a builder is made, and it is given its TLS configuration at once"
)]
pub fn client_builder() -> reqwest::ClientBuilder {
    let mut tls = tls_config();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    reqwest::Client::builder().tls_backend_preconfigured(tls)
}

/// `reqwest::Client::new()` with FixLoop's TLS ([`client_builder`]): no timeouts, redirects followed.
///
/// # Panics
///
/// When the client cannot be built (the system's DNS or proxy configuration cannot be read), as
/// `reqwest::Client::new()` does.
#[must_use]
pub fn default_client() -> reqwest::Client {
    client_builder()
        .build()
        .expect("a reqwest client with a preconfigured rustls backend builds")
}

/// [`http_client`] that also trusts the CA certificates of `ca_pem` (a PEM file's contents, for example a Kubernetes
/// cluster's CA), besides the webpki roots.
///
/// # Errors
///
/// [`ErrorKind::Refused`] when `ca_pem` holds no usable certificate (see [`check_ca_pem`]),
/// [`ErrorKind::Unavailable`] when the client cannot be built.
#[expect(
    clippy::disallowed_methods,
    reason = "the builder is given its TLS configuration at once, as in client_builder"
)]
pub fn http_client_with_ca(
    timeout: Duration,
    ca_pem: &[u8],
) -> Result<reqwest::Client, AdapterError> {
    let certificates = ca_certificates(ca_pem).map_err(AdapterError::refused)?;
    let mut tls = tls_config_with(certificates).map_err(AdapterError::refused)?;
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .timeout(timeout)
        .user_agent(concat!("fixloop/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| {
            AdapterError::unavailable("could not build the http client").with_source(error)
        })
}

/// Checks that `ca_pem` (a PEM file's contents) holds at least one CA certificate rustls accepts as a root; returns
/// how many it holds.
///
/// # Errors
///
/// What is wrong, in one sentence.
pub fn check_ca_pem(ca_pem: &[u8]) -> Result<usize, String> {
    let certificates = ca_certificates(ca_pem)?;
    let count = certificates.len();
    tls_config_with(certificates)?;
    Ok(count)
}

fn ca_certificates(
    ca_pem: &[u8],
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject as _;
    let certificates = rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("not a PEM file of certificates: {error}"))?;
    if certificates.is_empty() {
        return Err("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".to_owned());
    }
    Ok(certificates)
}

/// [`tls_config`] trusting `extra` roots too.
fn tls_config_with(
    extra: Vec<rustls::pki_types::CertificateDer<'static>>,
) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for certificate in extra {
        roots
            .add(certificate)
            .map_err(|error| format!("a certificate is not a usable CA: {error}"))?;
    }
    Ok(
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

/// rustls on the ring provider with the webpki root certificates, no ALPN.
pub(crate) fn tls_config() -> rustls::ClientConfig {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    // The ring provider implements both versions rustls uses by default (TLS 1.2 and 1.3): this cannot fail.
    .with_safe_default_protocol_versions()
    .expect("the ring provider supports TLS 1.2 and 1.3")
    .with_root_certificates(roots)
    .with_no_client_auth()
}

/// The path (with query) of an absolute URL: `http://host:8080/checkout?x=1` → `/checkout?x=1`; `/` when the URL
/// has none. Never fails; a string without a scheme is returned as is.
pub(crate) fn url_path(url: &str) -> &str {
    let Some(scheme_end) = url.find("://") else {
        return url;
    };
    let rest = &url[scheme_end + 3..];
    match rest.find(['/', '?']) {
        Some(start) if rest[start..].starts_with('/') => &rest[start..],
        _ => "/",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_pem_is_checked_and_trusted_besides_the_webpki_roots() {
        let pem = include_bytes!("../tests/data/test-ca.pem");
        assert_eq!(check_ca_pem(pem), Ok(1));
        assert!(http_client_with_ca(Duration::from_secs(5), pem).is_ok());
        let empty = check_ca_pem(b"no certificate here").expect_err("no PEM block");
        assert!(empty.contains("no PEM certificate"), "{empty}");
        let broken = b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n";
        assert!(check_ca_pem(broken).is_err());
        let error = http_client_with_ca(Duration::from_secs(5), b"").expect_err("refused");
        assert_eq!(error.kind(), ErrorKind::Refused);
    }

    #[test]
    fn url_path_keeps_path_and_query_only() {
        assert_eq!(url_path("http://host:8080/checkout?x=1"), "/checkout?x=1");
        assert_eq!(url_path("https://host"), "/");
        assert_eq!(url_path("https://host?x=1"), "/");
        assert_eq!(url_path("/already/a/path"), "/already/a/path");
        assert_eq!(url_path("http://é/ü"), "/ü");
    }
}
