//! The Prometheus adapter: a [`SignalSource`] over PromQL instant queries
//! (`GET {base_url}/api/v1/query`) rendered from configurable templates ([`PromQlTemplates`];
//! [`PromQlTemplates::demo_shop`] reads the demo service's metrics) ([`PrometheusSignalSource`]), and the parser
//! of Alertmanager's webhook payload version "4" ([`parse_alertmanager`]).
//!
//! The demo shop's queries only count user traffic (`source="user"`): FixLoop's validation requests carry the
//! validation header and the demo service counts them under `source="fixloop"`. One attempt per query, bounded by the configured
//! timeout. Errors: 401/403 (from an auth proxy) → unauthorized, 429 → rate limited, a `status: "error"` body is
//! classified by its `errorType` (`timeout` → timeout, `canceled`/`internal`/`unavailable` → unavailable,
//! `bad_data`/`execution`/others → invalid response), 5xx/connect → unavailable, malformed or empty body →
//! invalid response.
//!
//! **Never silently blind.** A requests or error-ratio query whose result has no series (its selectors match
//! nothing: a wrong metric or label) fails the read as an invalid response naming the query, never 0 requests;
//! a label that a requests, error-ratio or top-error selector matches on and that is on no series of its metric
//! (Prometheus's `/api/v1/labels?match[]=<metric>`, asked again at most once a minute) fails the read too, since
//! `(… or vector(0)) / …` would read 0 errors; an empty latency or top-error result is no p95 and no top error. [`parse_template`] parses a template at
//! profile check time, and [`PrometheusSignalSource::check`] checks each query and the labels its selectors use
//! against a live Prometheus.

mod alertmanager;
mod check;
mod wire;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use fixloop_contract::Link;
use reqwest::Url;

pub use alertmanager::{AlertmanagerAlert, MAX_ALERTMANAGER_BYTES, parse_alertmanager};
pub use check::parse_template;

use crate::error::{AdapterError, ErrorKind, parse_retry_after};
use crate::ports::{SignalReading, SignalSource};
use crate::secret::Secret;
use wire::{Envelope, VectorSample};

/// The default timeout of one query.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The shortest range a query is asked over, by default: four scrape intervals of a Prometheus scraping every 15 s
/// (as Grafana's `$__rate_interval` does), since `rate`/`increase` need two samples in the range and a shorter one
/// returns no series, which reads as blind.
pub const DEFAULT_MIN_RANGE: Duration = Duration::from_secs(60);

/// Configuration of the Prometheus signal source.
#[derive(Debug, Clone, PartialEq)]
pub struct PrometheusConfig {
    /// Base URL of the Prometheus server (`http://prometheus:9090`), without `/api/v1`.
    pub base_url: String,
    /// Timeout of one query.
    pub timeout: Duration,
    /// Extra label matchers selecting the service's series, for example `job="demo"` (empty: none).
    pub selector: String,
    /// Bearer token for a Prometheus behind an auth proxy, if any.
    pub bearer: Option<Secret>,
    /// The PromQL templates of a read.
    pub templates: PromQlTemplates,
    /// The shortest range a read asks for: a shorter window (the engine asks for the time since its previous
    /// measurement, a few seconds) is widened to it. Set it to about four scrape intervals of the Prometheus that
    /// is read (default [`DEFAULT_MIN_RANGE`]).
    pub min_range: Duration,
}

impl PrometheusConfig {
    /// A configuration with the demo shop's queries ([`PromQlTemplates::demo_shop`]), no selector, no token and
    /// [`DEFAULT_TIMEOUT`].
    #[must_use]
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            timeout: DEFAULT_TIMEOUT,
            selector: String::new(),
            bearer: None,
            templates: PromQlTemplates::demo_shop(),
            min_range: DEFAULT_MIN_RANGE,
        }
    }
}

/// The PromQL of a read, as templates with placeholders replaced at each read:
///
/// - `{range}`: the window as a PromQL range, for example `[5m]` (see [`format_range`]);
/// - `{selector}`: the configured extra matchers ([`PrometheusConfig::selector`]), for example `job="demo"`, or
///   nothing; for a selector with no other matcher: `errors_total{{selector}}`;
/// - `{and_selector}`: the same preceded by a comma, or nothing; to append after other matchers:
///   `requests_total{code=~"5.."{and_selector}}`.
///
/// Any other text, braces included, is kept as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromQlTemplates {
    /// Error ratio in `[0, 1]` (first sample; `NaN` or no sample: no rate).
    pub error_ratio: String,
    /// p95 latency in milliseconds (first sample).
    pub p95_ms: String,
    /// Requests in the window (first sample).
    pub requests: String,
    /// Errors by signature: the sample with the largest positive value is the top error, named from its
    /// `method`, `route`, `status` and `error` labels (`"POST /checkout -> 500 payment provider timeout"`); rename
    /// other labels with `label_replace`.
    pub top_error: String,
}

impl PromQlTemplates {
    /// The demo shop's queries on `demo_http_requests_total`, `demo_http_request_duration_seconds_bucket` and
    /// `demo_http_errors_total`, user traffic only (`source="user"`).
    #[must_use]
    pub fn demo_shop() -> Self {
        Self {
            error_ratio: "(sum(rate(demo_http_requests_total{source=\"user\",status=~\"5..\"{and_selector}}{range})) or vector(0)) / sum(rate(demo_http_requests_total{source=\"user\"{and_selector}}{range}))".to_owned(),
            p95_ms: "histogram_quantile(0.95, sum by (le) (rate(demo_http_request_duration_seconds_bucket{source=\"user\"{and_selector}}{range}))) * 1000".to_owned(),
            requests: "sum(increase(demo_http_requests_total{source=\"user\"{and_selector}}{range}))".to_owned(),
            top_error: "topk(1, sum by (route,method,status,error) (increase(demo_http_errors_total{{selector}}{range})))".to_owned(),
        }
    }

    /// The queries of a read over `window` with the extra `selector` matchers (placeholders replaced).
    #[must_use]
    pub fn render(&self, selector: &str, window: Duration) -> Queries {
        let range = format_range(window);
        let bare = selector.trim().trim_start_matches(',').trim();
        let and_selector = if bare.is_empty() {
            String::new()
        } else {
            format!(",{bare}")
        };
        let render = |template: &str| {
            template
                .replace("{range}", &range)
                .replace("{and_selector}", &and_selector)
                .replace("{selector}", bare)
        };
        Queries {
            error_ratio: render(&self.error_ratio),
            p95_ms: render(&self.p95_ms),
            requests: render(&self.requests),
            top_error: render(&self.top_error),
        }
    }
}

/// The PromQL of a read, rendered from [`PromQlTemplates`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queries {
    /// 5xx ratio of user requests.
    pub error_ratio: String,
    /// p95 latency of user requests, in ms.
    pub p95_ms: String,
    /// User requests in the window.
    pub requests: String,
    /// The most frequent error signature.
    pub top_error: String,
}

/// Formats a window as a PromQL range: `[10s]`, `[5m]`, `[1h]` (sub-second windows round up to `1s`).
#[must_use]
pub fn format_range(window: Duration) -> String {
    let mut seconds = window.as_secs();
    if window.subsec_nanos() > 0 || seconds == 0 {
        seconds += 1;
    }
    if seconds.is_multiple_of(3600) {
        format!("[{}h]", seconds / 3600)
    } else if seconds.is_multiple_of(60) {
        format!("[{}m]", seconds / 60)
    } else {
        format!("[{seconds}s]")
    }
}

/// The demo shop's queries of a read over `window`, with the extra `selector` matchers
/// ([`PromQlTemplates::demo_shop`] rendered).
#[must_use]
pub fn queries(selector: &str, window: Duration) -> Queries {
    PromQlTemplates::demo_shop().render(selector, window)
}

/// The Prometheus signal source.
#[derive(Debug, Clone)]
pub struct PrometheusSignalSource {
    config: PrometheusConfig,
    http: reqwest::Client,
    /// The latest verdict on the labels the queries' selectors use (see [`check::LABEL_RECHECK`]).
    labels_verdict: Arc<Mutex<Option<check::LabelVerdict>>>,
}

impl PrometheusSignalSource {
    /// A signal source over the shared `http` client.
    #[must_use]
    pub fn new(config: PrometheusConfig, http: reqwest::Client) -> Self {
        Self {
            config,
            http,
            labels_verdict: Arc::new(Mutex::new(None)),
        }
    }

    fn base(&self) -> &str {
        self.config.base_url.trim_end_matches('/')
    }

    /// One instant query; a `vector` result's samples (a `scalar` is one sample without labels).
    async fn query(&self, query: &str) -> Result<Vec<VectorSample>, AdapterError> {
        let mut request = self
            .http
            .get(format!("{}/api/v1/query", self.base()))
            .query(&[("query", query)])
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(self.config.timeout);
        if let Some(token) = &self.config.bearer {
            request = request.bearer_auth(token.expose());
        }
        let response = request.send().await.map_err(AdapterError::from_reqwest)?;
        let status = response.status();
        let retry_after = parse_retry_after(response.headers());
        let body = response.bytes().await.map_err(AdapterError::from_reqwest)?;
        interpret(status, retry_after, &body)
    }

    fn graph_link(&self, label: &str, expr: &str, window: Duration) -> Link {
        let range = format_range(window);
        let range = range.trim_start_matches('[').trim_end_matches(']');
        let url = match Url::parse(&format!("{}/graph", self.base())) {
            Ok(mut url) => {
                url.query_pairs_mut()
                    .append_pair("g0.expr", expr)
                    .append_pair("g0.tab", "0")
                    .append_pair("g0.range_input", range);
                url.to_string()
            }
            Err(_) => format!("{}/graph", self.base()),
        };
        Link {
            label: label.to_owned(),
            url,
        }
    }
}

fn interpret(
    status: reqwest::StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Result<Vec<VectorSample>, AdapterError> {
    let text = String::from_utf8_lossy(body);
    if matches!(status.as_u16(), 401 | 403 | 429) {
        return Err(AdapterError::from_status(status, retry_after, &text));
    }
    let envelope = serde_json::from_slice::<Envelope>(body);
    if let Ok(envelope) = &envelope
        && envelope.status == "error"
    {
        let error_type = envelope.error_type.as_deref().unwrap_or("");
        let message = format!(
            "prometheus query error ({error_type}): {}",
            envelope.error.as_deref().unwrap_or("")
        );
        let kind = match error_type {
            "timeout" => ErrorKind::Timeout,
            "canceled" | "internal" | "unavailable" => ErrorKind::Unavailable,
            _ => ErrorKind::InvalidResponse,
        };
        return Err(AdapterError::new(kind, message));
    }
    if !status.is_success() {
        return Err(AdapterError::from_status(status, retry_after, &text));
    }
    if text.trim().is_empty() {
        return Err(AdapterError::invalid_response(
            "prometheus: empty response body",
        ));
    }
    let envelope = envelope.map_err(|error| {
        AdapterError::invalid_response(format!("prometheus: malformed response: {error}"))
            .with_source(error)
    })?;
    if envelope.status != "success" {
        return Err(AdapterError::invalid_response(format!(
            "prometheus: unexpected status {:?}",
            envelope.status
        )));
    }
    let data = envelope
        .data
        .ok_or_else(|| AdapterError::invalid_response("prometheus: response has no data"))?;
    let samples = match data.result_type.as_str() {
        "vector" => serde_json::from_value::<Vec<VectorSample>>(data.result),
        "scalar" => serde_json::from_value::<(f64, String)>(data.result).map(|value| {
            vec![VectorSample {
                metric: Default::default(),
                value,
            }]
        }),
        other => {
            return Err(AdapterError::invalid_response(format!(
                "prometheus: unexpected result type {other:?}"
            )));
        }
    };
    samples.map_err(|error| {
        AdapterError::invalid_response(format!("prometheus: malformed result: {error}"))
            .with_source(error)
    })
}

/// A sample value as a finite number (`"NaN"`, `"+Inf"` and garbage are `None`).
fn finite(sample: &VectorSample) -> Option<f64> {
    sample
        .value
        .1
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|value| value.is_finite())
}

/// The first sample's finite value.
fn first_value(samples: &[VectorSample]) -> Option<f64> {
    samples.first().and_then(finite)
}

/// `"POST /checkout -> 500 payment provider timeout"` from the top sample's labels (only when it counted errors).
fn top_error(samples: &[VectorSample]) -> Option<String> {
    let sample = samples
        .iter()
        .filter(|sample| finite(sample).is_some_and(|count| count > 0.0))
        .max_by(|a, b| {
            finite(a)
                .unwrap_or(0.0)
                .total_cmp(&finite(b).unwrap_or(0.0))
        })?;
    let label = |name: &str| {
        sample
            .metric
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    let mut text = String::new();
    for part in [label("method"), label("route")].into_iter().flatten() {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(part);
    }
    let outcome: Vec<&str> = [label("status"), label("error")]
        .into_iter()
        .flatten()
        .collect();
    if !outcome.is_empty() {
        if !text.is_empty() {
            text.push_str(" -> ");
        }
        text.push_str(&outcome.join(" "));
    }
    (!text.is_empty()).then_some(text)
}

#[async_trait]
impl SignalSource for PrometheusSignalSource {
    async fn read(&self, window: Duration) -> Result<SignalReading, AdapterError> {
        let window = window.max(self.config.min_range);
        let queries = self.config.templates.render(&self.config.selector, window);
        let (ratio, p95, requests, top) = tokio::try_join!(
            self.query(&queries.error_ratio),
            self.query(&queries.p95_ms),
            self.query(&queries.requests),
            self.query(&queries.top_error),
        )?;
        for (name, query, samples) in [
            ("requests", &queries.requests, &requests),
            ("error-ratio", &queries.error_ratio, &ratio),
        ] {
            if samples.is_empty() {
                return Err(AdapterError::invalid_response(format!(
                    "prometheus: the {name} query returns no series (its selectors match nothing): {query}"
                )));
            }
        }
        if let Some(why) = self.label_blindness(&queries).await {
            return Err(AdapterError::invalid_response(format!("prometheus: {why}")));
        }
        let request_count = first_value(&requests).unwrap_or(0.0).max(0.0);
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let request_count = request_count.round().min(u64::MAX as f64) as u64;
        let has_traffic = request_count > 0;
        let error_rate = first_value(&ratio)
            .filter(|_| has_traffic)
            .map(|ratio| ratio.clamp(0.0, 1.0));
        let p95_latency_ms = first_value(&p95)
            .filter(|_| has_traffic)
            .map(|p95| p95.max(0.0));
        Ok(SignalReading {
            error_rate,
            p95_latency_ms,
            requests: request_count,
            top_error: top_error(&top),
            evidence_links: vec![
                self.graph_link("Prometheus 5xx ratio", &queries.error_ratio, window),
                self.graph_link("Prometheus p95 latency (ms)", &queries.p95_ms, window),
            ],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_formatted() {
        assert_eq!(format_range(Duration::from_secs(10)), "[10s]");
        assert_eq!(format_range(Duration::from_secs(300)), "[5m]");
        assert_eq!(format_range(Duration::from_secs(90)), "[90s]");
        assert_eq!(format_range(Duration::from_secs(7200)), "[2h]");
        assert_eq!(format_range(Duration::from_millis(1500)), "[2s]");
        assert_eq!(format_range(Duration::ZERO), "[1s]");
    }

    #[test]
    fn queries_carry_the_selector() {
        let q = queries("job=\"demo\"", Duration::from_secs(300));
        assert_eq!(
            q.requests,
            "sum(increase(demo_http_requests_total{source=\"user\",job=\"demo\"}[5m]))"
        );
        assert!(
            q.top_error
                .contains("demo_http_errors_total{job=\"demo\"}[5m]"),
            "{}",
            q.top_error
        );
        let q = queries("", Duration::from_secs(10));
        assert!(
            q.top_error.contains("demo_http_errors_total{}[10s]"),
            "{}",
            q.top_error
        );
        assert_eq!(
            q.p95_ms,
            "histogram_quantile(0.95, sum by (le) (rate(demo_http_request_duration_seconds_bucket{source=\"user\"}[10s]))) * 1000"
        );
    }
}
