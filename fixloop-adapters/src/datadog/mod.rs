//! The Datadog adapter: a [`SignalSource`](crate::ports::SignalSource) over the metrics query and logs search APIs
//! ([`DatadogSignalSource`]), a metrics submitter for the demo service ([`DatadogMetricsSubmitter`]), the parser of
//! the webhook payload template FixLoop publishes ([`parse_webhook`], [`WEBHOOK_TEMPLATE`]) and deep links into the
//! Datadog UI of the right site; and a [`ContextSource`](crate::ports::ContextSource) over Datadog's remote MCP server
//! ([`DatadogMcpContext`], see [`mcp`]).
//!
//! Every request carries `DD-API-KEY` (and `DD-APPLICATION-KEY` on reads), goes to `https://api.{site}` (or the
//! override), is bounded by the configured timeout and made once. Errors: 401/403 → unauthorized, 429 → rate
//! limited (`Retry-After`, else `X-RateLimit-Reset` seconds), 5xx/connect → unavailable, timeout → timeout,
//! malformed or empty body → invalid response.

mod links;
pub mod mcp;
mod metrics;
mod signal;
mod webhook;
mod wire;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

pub use links::{logs_url, metric_explorer_url, monitor_url, service_url};
pub use mcp::{DatadogMcpAuth, DatadogMcpConfig, DatadogMcpContext};
pub use metrics::{
    DatadogMetricsSubmitter, SUBMITTED_ERRORS, SUBMITTED_P95_MS, SUBMITTED_REQUESTS, ServiceSample,
};
pub use signal::DatadogSignalSource;
pub use webhook::{
    AlertTransition, MAX_WEBHOOK_BYTES, WEBHOOK_TEMPLATE, WebhookEvent, parse_webhook,
};

use crate::error::{AdapterError, parse_retry_after};
use crate::secret::Secret;

/// The default timeout of one Datadog call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A Datadog site (`DD_SITE`), which decides the API host and the UI host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DatadogSite {
    /// `datadoghq.com` (US1).
    #[default]
    Us1,
    /// `us3.datadoghq.com`.
    Us3,
    /// `us5.datadoghq.com`.
    Us5,
    /// `datadoghq.eu` (EU1).
    Eu1,
    /// `ap1.datadoghq.com` (Japan).
    Ap1,
    /// `ap2.datadoghq.com` (Australia).
    Ap2,
    /// `ddog-gov.com` (US1-FED).
    Us1Fed,
}

impl DatadogSite {
    /// Every site.
    pub const ALL: [Self; 7] = [
        Self::Us1,
        Self::Us3,
        Self::Us5,
        Self::Eu1,
        Self::Ap1,
        Self::Ap2,
        Self::Us1Fed,
    ];

    /// The site parameter as Datadog spells it (`datadoghq.eu`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Us1 => "datadoghq.com",
            Self::Us3 => "us3.datadoghq.com",
            Self::Us5 => "us5.datadoghq.com",
            Self::Eu1 => "datadoghq.eu",
            Self::Ap1 => "ap1.datadoghq.com",
            Self::Ap2 => "ap2.datadoghq.com",
            Self::Us1Fed => "ddog-gov.com",
        }
    }

    /// Base URL of the REST API: `https://api.{site}`.
    #[must_use]
    pub fn api_base(self) -> String {
        format!("https://api.{}", self.as_str())
    }

    /// Base URL of the web UI: `https://app.{site}` for the bare sites (`datadoghq.com`, `datadoghq.eu`,
    /// `ddog-gov.com`), `https://{site}` otherwise.
    #[must_use]
    pub fn app_base(self) -> String {
        match self {
            Self::Us1 | Self::Eu1 | Self::Us1Fed => format!("https://app.{}", self.as_str()),
            _ => format!("https://{}", self.as_str()),
        }
    }
}

impl fmt::Display for DatadogSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `DD_SITE` value that names no known site.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown datadog site {0:?} (expected one of datadoghq.com, us3.datadoghq.com, us5.datadoghq.com, datadoghq.eu, ap1.datadoghq.com, ap2.datadoghq.com, ddog-gov.com)"
)]
pub struct UnknownSite(pub String);

impl FromStr for DatadogSite {
    type Err = UnknownSite;

    /// Parses a site parameter; also accepts the UI or API host of the site (`app.datadoghq.eu`,
    /// `https://us5.datadoghq.com/`), case-insensitively.
    fn from_str(text: &str) -> Result<Self, UnknownSite> {
        let lowered = text.trim().to_ascii_lowercase();
        let host = lowered
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/');
        let host = host
            .strip_prefix("app.")
            .or_else(|| host.strip_prefix("api."))
            .unwrap_or(host);
        Self::ALL
            .into_iter()
            .find(|site| site.as_str() == host)
            .ok_or_else(|| UnknownSite(text.to_owned()))
    }
}

/// What the signal source queries, as data. In every query, `{scope}` is replaced by the config's
/// [`tags`](DatadogConfig::tags): joined by commas in the metric queries (`service:checkout,env:prod`), by spaces
/// in the logs query (`service:checkout env:prod`).
#[derive(Debug, Clone, PartialEq)]
pub struct DatadogQueries {
    /// Metrics query of the request count; the points of every series are summed over the window.
    pub requests: String,
    /// Metrics query of the error count; summed like the requests. Its metric is linked as evidence.
    pub errors: String,
    /// Metrics query of the p95 latency; its last non-null point is the p95.
    pub p95: String,
    /// Multiplier from the p95 query's unit to milliseconds: 1000 for seconds, 1 for milliseconds.
    pub p95_to_ms: f64,
    /// Logs search query whose most frequent message among the newest logs is the top error; `None`: no logs
    /// search and no top error.
    pub logs: Option<String>,
    /// Whether the evidence links include the service's APM page.
    pub apm_service_link: bool,
}

impl DatadogQueries {
    /// APM trace metrics of a span operation (`http.request`, `axum.request`): `trace.{operation}.hits`,
    /// `trace.{operation}.errors` and the `trace.{operation}` latency distribution (seconds, converted to ms); the
    /// top error from the service's error logs; the APM service page as evidence.
    #[must_use]
    pub fn apm(operation: &str) -> Self {
        Self {
            requests: format!("sum:trace.{operation}.hits{{{{scope}}}}.as_count()"),
            errors: format!("sum:trace.{operation}.errors{{{{scope}}}}.as_count()"),
            p95: format!("p95:trace.{operation}{{{{scope}}}}"),
            p95_to_ms: 1000.0,
            logs: Some("{scope} status:error".to_owned()),
            apm_service_link: true,
        }
    }

    /// The metrics the demo shop submits through [`DatadogMetricsSubmitter`]: [`SUBMITTED_REQUESTS`],
    /// [`SUBMITTED_ERRORS`] (counts) and [`SUBMITTED_P95_MS`] (a gauge in ms); the top error from the service's
    /// error logs.
    #[must_use]
    pub fn demo_shop() -> Self {
        Self {
            requests: format!("sum:{SUBMITTED_REQUESTS}{{{{scope}}}}.as_count()"),
            errors: format!("sum:{SUBMITTED_ERRORS}{{{{scope}}}}.as_count()"),
            p95: format!("max:{SUBMITTED_P95_MS}{{{{scope}}}}"),
            p95_to_ms: 1.0,
            logs: Some("{scope} status:error".to_owned()),
            apm_service_link: false,
        }
    }
}

impl Default for DatadogQueries {
    /// [`DatadogQueries::apm`] of `http.request`.
    fn default() -> Self {
        Self::apm("http.request")
    }
}

/// Configuration of the Datadog adapters.
#[derive(Debug, Clone, PartialEq)]
pub struct DatadogConfig {
    /// `DD_API_KEY`, sent as `DD-API-KEY`.
    pub api_key: Secret,
    /// `DD_APP_KEY`, sent as `DD-APPLICATION-KEY` on reads (not needed to submit metrics).
    pub app_key: Secret,
    /// `DD_SITE`.
    pub site: DatadogSite,
    /// `DD_SERVICE`: the service tag the queries filter on.
    pub service: String,
    /// `DD_ENV`: the env tag the queries filter on, if any.
    pub env: Option<String>,
    /// Timeout of one call.
    pub timeout: Duration,
    /// API base URL replacing `https://api.{site}` (tests point it at a stub).
    pub base_url_override: Option<String>,
    /// UI base URL replacing the site's app host in evidence links.
    pub app_url_override: Option<String>,
    /// What the signal source queries.
    pub queries: DatadogQueries,
}

impl DatadogConfig {
    /// A configuration with the defaults: US1 site, no env, APM `http.request` metrics
    /// ([`DatadogQueries::default`]), [`DEFAULT_TIMEOUT`].
    #[must_use]
    pub fn new(
        api_key: impl Into<Secret>,
        app_key: impl Into<Secret>,
        service: impl Into<String>,
    ) -> Self {
        Self {
            api_key: api_key.into(),
            app_key: app_key.into(),
            site: DatadogSite::default(),
            service: service.into(),
            env: None,
            timeout: DEFAULT_TIMEOUT,
            base_url_override: None,
            app_url_override: None,
            queries: DatadogQueries::default(),
        }
    }

    /// The API base URL in use, without a trailing slash.
    #[must_use]
    pub fn api_base(&self) -> String {
        self.base_url_override
            .clone()
            .unwrap_or_else(|| self.site.api_base())
            .trim_end_matches('/')
            .to_owned()
    }

    /// The UI base URL of evidence links, without a trailing slash.
    #[must_use]
    pub fn app_base(&self) -> String {
        self.app_url_override
            .clone()
            .unwrap_or_else(|| self.site.app_base())
            .trim_end_matches('/')
            .to_owned()
    }

    /// A labelled link to monitor `monitor_id` in the site's UI (for an incident opened by a webhook).
    #[must_use]
    pub fn monitor_link(&self, monitor_id: &str) -> fixloop_contract::Link {
        fixloop_contract::Link {
            label: format!("Datadog monitor {monitor_id}"),
            url: monitor_url(&self.app_base(), monitor_id),
        }
    }

    /// The tags every query filters on: `service:X` and `env:Y` when an env is set.
    #[must_use]
    pub fn tags(&self) -> Vec<String> {
        let mut tags = vec![format!("service:{}", self.service)];
        if let Some(env) = self.env.as_deref().filter(|env| !env.is_empty()) {
            tags.push(format!("env:{env}"));
        }
        tags
    }
}

/// Sends a request once and gives back the body of a 2xx answer, or the classified error.
pub(crate) async fn send(request: reqwest::RequestBuilder) -> Result<Vec<u8>, AdapterError> {
    let response = request.send().await.map_err(AdapterError::from_reqwest)?;
    let status = response.status();
    if !status.is_success() {
        let retry_after = parse_retry_after(response.headers()).or_else(|| {
            if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                rate_limit_reset(response.headers())
            } else {
                None
            }
        });
        let body = response.bytes().await.unwrap_or_default();
        let text = String::from_utf8_lossy(&body);
        let error = AdapterError::from_status(status, retry_after, &text);
        let message = format!("datadog: {error}");
        return Err(AdapterError::new(error.kind(), message));
    }
    let body = response.bytes().await.map_err(AdapterError::from_reqwest)?;
    Ok(body.to_vec())
}

/// A header value carrying a key, marked sensitive (so HTTP-level debugging never prints it).
pub(crate) fn secret_header(secret: &Secret) -> Result<reqwest::header::HeaderValue, AdapterError> {
    let mut value = reqwest::header::HeaderValue::from_str(secret.expose()).map_err(|_| {
        AdapterError::unauthorized("datadog: a key contains characters not allowed in a header")
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// `X-RateLimit-Reset`: seconds until the rate-limit period resets.
fn rate_limit_reset(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers
        .get("x-ratelimit-reset")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds))
}

/// Parses a JSON body, mapping an empty or malformed body to an invalid response.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    body: &[u8],
    what: &str,
) -> Result<T, AdapterError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(AdapterError::invalid_response(format!(
            "datadog: empty {what} response"
        )));
    }
    serde_json::from_slice(body).map_err(|error| {
        AdapterError::invalid_response(format!("datadog: malformed {what} response: {error}"))
            .with_source(error)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sites_parse_and_map_to_hosts() {
        let cases = [
            (
                "datadoghq.com",
                "https://api.datadoghq.com",
                "https://app.datadoghq.com",
            ),
            (
                "us3.datadoghq.com",
                "https://api.us3.datadoghq.com",
                "https://us3.datadoghq.com",
            ),
            (
                "us5.datadoghq.com",
                "https://api.us5.datadoghq.com",
                "https://us5.datadoghq.com",
            ),
            (
                "datadoghq.eu",
                "https://api.datadoghq.eu",
                "https://app.datadoghq.eu",
            ),
            (
                "ap1.datadoghq.com",
                "https://api.ap1.datadoghq.com",
                "https://ap1.datadoghq.com",
            ),
            (
                "ddog-gov.com",
                "https://api.ddog-gov.com",
                "https://app.ddog-gov.com",
            ),
        ];
        for (text, api, app) in cases {
            let site: DatadogSite = text.parse().unwrap();
            assert_eq!(site.api_base(), api);
            assert_eq!(site.app_base(), app);
            assert_eq!(site.to_string(), text);
        }
        assert_eq!("https://app.datadoghq.eu/".parse(), Ok(DatadogSite::Eu1));
        assert_eq!(" US5.DATADOGHQ.COM ".parse(), Ok(DatadogSite::Us5));
        assert!("datadoghq.org".parse::<DatadogSite>().is_err());
        assert!("".parse::<DatadogSite>().is_err());
    }

    #[test]
    fn config_debug_hides_keys() {
        let config = DatadogConfig::new("api-secret-1", "app-secret-2", "checkout");
        let debug = format!("{config:?}");
        assert!(
            !debug.contains("api-secret-1") && !debug.contains("app-secret-2"),
            "{debug}"
        );
        assert!(debug.contains("[redacted]"));
    }

    #[test]
    fn monitor_links_use_the_sites_app_host() {
        let mut config = DatadogConfig::new("a", "b", "checkout");
        config.site = DatadogSite::Us5;
        assert_eq!(
            config.monitor_link("148826901").url,
            "https://us5.datadoghq.com/monitors/148826901"
        );
        config.app_url_override = Some("http://127.0.0.1:1/".to_owned());
        assert_eq!(
            config.monitor_link("1").url,
            "http://127.0.0.1:1/monitors/1"
        );
    }
}
