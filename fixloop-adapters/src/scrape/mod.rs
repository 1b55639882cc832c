//! [`ScrapeSignalSource`]: the embedded default signal source. It scrapes the watched service's metrics endpoint
//! (Prometheus text exposition, [`ScrapeConfig::metrics_path`], `/metrics` by default) and computes the signals
//! over a sliding window from successive scrapes.
//!
//! The metric families and label names it reads are data, [`ScrapeMetrics`]; [`ScrapeMetrics::demo_shop`] gives
//! the demo service's names:
//! - `demo_http_requests_total{route,method,status,source}`: requests; `status` starting with `5` is an error;
//! - `demo_http_request_duration_seconds_bucket{route,method,source,le}`: latency histogram (seconds);
//! - `demo_http_errors_total{route,method,status,error}`: errors by signature (optional family).
//!
//! Every common convention is read the same way, only the names differ (README "Metrics conventions"): the
//! Prometheus Go client (`http_requests_total{code,handler,method}`), prometheus-fastapi-instrumentator
//! (`http_requests_total{status="5xx",handler,method}`: a status *class* starting with `5` is an error too),
//! Micrometer/Spring (`http_server_requests_seconds_count{status,uri,method,outcome}`, no `*_total`; buckets only
//! with percentile histograms on, else a `quantile="0.95"` series of the summary gives the p95, else the p95 is
//! empty while the error rate stays right) and OpenTelemetry
//! (`http_server_request_duration_seconds_count{http_response_status_code,http_route,http_request_method}`).
//! Without an errors family (or while it counts nothing), the top error is the requests family's error series
//! (status starting with `5`) with the largest increase, named `METHOD ROUTE -> STATUS` (`GET /api/items -> 503`).
//!
//! Series carrying the excluded label value (`source="fixloop"` for the demo shop) are FixLoop's own validation
//! traffic (the test runner tags it with [`VALIDATION_HEADER`](crate::VALIDATION_HEADER)) and are left out, so our
//! tests never pollute the signal they judge. Every read scrapes once and keeps the scrape (with its
//! `tokio::time::Instant`) in a bounded ring; the signals are the increase between the baseline and the new
//! scrape, where the baseline is the oldest kept scrape within the window, or the newest earlier one when none is
//! that recent. A counter that went down was reset: its increase is its new value, as in Prometheus. The first
//! read has no baseline: no error rate, no p95, 0 requests.
//!
//! **Never silently blind.** Every read judges the scrape before using it, and fails with
//! [`ErrorKind::InvalidResponse`](crate::ErrorKind::InvalidResponse) and the reason (the engine then marks the
//! service `signals_degraded`), without keeping the scrape, when:
//! - the requests family is not in the exposition at all (no sample, no `# TYPE` or `# HELP` line), or has no
//!   series (its selector matches nothing: 0 requests would be a lie);
//! - the status label is on no series of the requests family ("label `status` is on no series of
//!   `http_requests_total`; its labels are code, handler, method");
//! - a label the top error relies on is on no series of its family: method, route, status and error on the errors
//!   family when it has series, else method and route on the requests family.
//!
//! Latency never fails a read (no buckets: the p95 is empty). [`ScrapeSignalSource::check`] reports the same
//! judgement per signal ([`SourceCheck`]), for `profile check --live` and the start-up diagnostic.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use fixloop_contract::Link;
use tokio::time::Instant;

use crate::error::AdapterError;
use crate::ports::{SignalReading, SignalSource};
use crate::signal_check::{SignalCheck, SourceCheck};

pub use exposition::{Sample, parse_exposition};

mod exposition;
mod judge;

use exposition::{has_content, mentioned_families, not_exposition, parse_value};

/// Request counter of the demo service (the default of [`ScrapeMetrics::demo_shop`]).
pub const REQUESTS_METRIC: &str = "demo_http_requests_total";
/// Latency histogram buckets of the demo service (seconds).
pub const DURATION_BUCKET_METRIC: &str = "demo_http_request_duration_seconds_bucket";
/// Error counter of the demo service, by signature.
pub const ERRORS_METRIC: &str = "demo_http_errors_total";
/// The `source` label value of FixLoop's validation traffic.
pub const VALIDATION_SOURCE: &str = "fixloop";

/// Largest `/metrics` body accepted, in bytes.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// A label name and value; a series carrying it is left out of the signals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelMatch {
    /// The label name, for example `source`.
    pub name: String,
    /// The label value, for example `fixloop`.
    pub value: String,
}

/// Which metric families and labels of the exposition the signals come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrapeMetrics {
    /// Request counter family (sample name), for example `http_requests_total`. Required: a scrape without it
    /// fails the read.
    pub requests: String,
    /// Latency histogram bucket family in seconds (sample name with its `_bucket` suffix), for example
    /// `http_request_duration_seconds_bucket`. Without buckets, the summary of the same name without `_bucket`
    /// gives the p95 from its `quantile="0.95"` series ([`latency_summary`](Self::latency_summary)); without
    /// either the p95 is `None`.
    pub latency_buckets: String,
    /// Error counter family by signature, if the service has one; it gives the top error.
    pub errors: Option<String>,
    /// Label of the HTTP status on the requests and errors families; a value starting with `5` is an error.
    pub status_label: String,
    /// Label of the route on the errors family (and on the requests family, whose error series give the top error
    /// when there is no errors family).
    pub route_label: String,
    /// Label of the HTTP method on the errors family (and on the requests family, as for the route). An empty
    /// route, method or error label name says the service has no such label: it is neither read nor checked.
    pub method_label: String,
    /// Label of the error message on the errors family.
    pub error_label: String,
    /// Series carrying this label value are FixLoop's own validation traffic and are left out; `None`: keep all.
    pub exclude: Option<LabelMatch>,
}

impl ScrapeMetrics {
    /// The demo shop's families and labels: [`REQUESTS_METRIC`], [`DURATION_BUCKET_METRIC`], [`ERRORS_METRIC`];
    /// labels `status`, `route`, `method`, `error`; validation traffic under `source=`[`VALIDATION_SOURCE`].
    #[must_use]
    pub fn demo_shop() -> Self {
        Self {
            requests: REQUESTS_METRIC.to_owned(),
            latency_buckets: DURATION_BUCKET_METRIC.to_owned(),
            errors: Some(ERRORS_METRIC.to_owned()),
            status_label: "status".to_owned(),
            route_label: "route".to_owned(),
            method_label: "method".to_owned(),
            error_label: "error".to_owned(),
            exclude: Some(LabelMatch {
                name: "source".to_owned(),
                value: VALIDATION_SOURCE.to_owned(),
            }),
        }
    }

    /// The summary family whose `quantile="0.95"` series give the p95 when there are no buckets: the bucket
    /// family without its `_bucket` suffix (`http_server_requests_seconds`).
    #[must_use]
    pub fn latency_summary(&self) -> &str {
        self.latency_buckets
            .strip_suffix("_bucket")
            .unwrap_or(&self.latency_buckets)
    }

    /// The configured families: requests, latency buckets, then errors if set.
    fn families(&self) -> impl Iterator<Item = &str> {
        [
            Some(self.requests.as_str()),
            Some(self.latency_buckets.as_str()),
            self.errors.as_deref(),
        ]
        .into_iter()
        .flatten()
    }
}

/// Settings of [`ScrapeSignalSource`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrapeConfig {
    /// Base URL of the watched service; [`metrics_path`](Self::metrics_path) is appended.
    pub base_url: String,
    /// Path of the metrics endpoint, appended to the base URL (default `/metrics`); or an absolute http(s) URL, for
    /// an exposition served outside the base URL's path (a service at `http://host/api` whose metrics are at
    /// `http://host/metrics`). Which URLs are acceptable is the caller's policy (the server's profile check allows
    /// only the base URL's origin).
    pub metrics_path: String,
    /// Timeout of one scrape. Default 5 s.
    pub timeout: Duration,
    /// Scrapes kept for windows; the oldest are dropped. Default 128.
    pub max_scrapes: usize,
    /// The families and labels read.
    pub metrics: ScrapeMetrics,
}

impl ScrapeConfig {
    /// The defaults for the demo shop at `base_url`: [`ScrapeMetrics::demo_shop`] at `/metrics`.
    #[must_use]
    pub fn new(base_url: impl Into<String>) -> Self {
        Self::with_metrics(base_url, ScrapeMetrics::demo_shop())
    }

    /// The defaults (`/metrics`, 5 s, 128 scrapes) for a service at `base_url` exposing `metrics`.
    #[must_use]
    pub fn with_metrics(base_url: impl Into<String>, metrics: ScrapeMetrics) -> Self {
        Self {
            base_url: base_url.into(),
            metrics_path: "/metrics".to_owned(),
            timeout: Duration::from_secs(5),
            max_scrapes: 128,
            metrics,
        }
    }

    /// The scraped URL.
    #[must_use]
    pub fn metrics_url(&self) -> String {
        if is_absolute_url(&self.metrics_path) {
            return self.metrics_path.clone();
        }
        let path = self.metrics_path.trim_start_matches('/');
        format!("{}/{path}", self.base_url.trim_end_matches('/'))
    }
}

/// Whether `path` is an absolute http(s) URL rather than a path (compared case-insensitively, as schemes are).
#[must_use]
pub fn is_absolute_url(path: &str) -> bool {
    let lower = path.get(..8).unwrap_or(path).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// What one scrape found, from [`ScrapeSignalSource::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrapeCheck {
    /// The scraped URL.
    pub url: String,
    /// Configured families the exposition mentions (a sample, or a `# TYPE`/`# HELP` line), in configured order.
    pub present: Vec<String>,
    /// Configured families the exposition does not mention, in configured order.
    pub missing: Vec<String>,
    /// Per signal, whether the families have series and the configured labels exist (the judgement every read
    /// makes).
    pub signals: Vec<SignalCheck>,
}

impl ScrapeCheck {
    /// Whether every configured family is present.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty()
    }

    /// The per-signal report.
    #[must_use]
    pub fn report(&self) -> SourceCheck {
        SourceCheck {
            url: self.url.clone(),
            signals: self.signals.clone(),
        }
    }
}

/// Signals from successive scrapes of the service's `/metrics` (see the [module docs](self)).
#[derive(Debug)]
pub struct ScrapeSignalSource {
    config: ScrapeConfig,
    client: reqwest::Client,
    scrapes: Mutex<VecDeque<Scrape>>,
}

/// The counters of one scrape that the signals need, user traffic only.
#[derive(Debug, Clone, Default, PartialEq)]
struct Scrape {
    at: Option<Instant>,
    /// Request counter by series key, with the signature of an error series (`GET /items -> 503`), `None` for
    /// the others.
    requests: BTreeMap<String, (f64, Option<String>)>,
    /// Histogram buckets by series key, with their upper bound in seconds.
    buckets: BTreeMap<String, (f64, f64)>,
    /// The summary's `quantile="0.95"` values in seconds, one per series (used when there are no buckets).
    quantiles: Vec<f64>,
    /// Error counter by series key, with its signature.
    errors: BTreeMap<String, (f64, String)>,
}

impl ScrapeSignalSource {
    /// A source using the shared client.
    #[must_use]
    pub fn new(config: ScrapeConfig, client: reqwest::Client) -> Self {
        Self {
            config,
            client,
            scrapes: Mutex::new(VecDeque::new()),
        }
    }

    /// Scrapes once, without keeping the scrape, and says which configured families are present and which are
    /// missing, and per signal whether it can be read ([`ScrapeCheck::signals`]; for `profile check --live` and
    /// the start-up diagnostic).
    ///
    /// # Errors
    ///
    /// The scrape's failure, as [`SignalSource::read`] reports it; a body that is not a text exposition is an
    /// invalid response. Missing families and blind signals are not an error here: they are in the report.
    pub async fn check(&self) -> Result<ScrapeCheck, AdapterError> {
        let text = self.fetch().await?;
        let samples = parse_exposition(&text);
        if samples.is_empty() && has_content(&text) {
            return Err(not_exposition());
        }
        let mentioned = mentioned_families(&text, &samples);
        let (present, missing) = self
            .config
            .metrics
            .families()
            .map(str::to_owned)
            .partition(|family| mentioned.contains(family));
        Ok(ScrapeCheck {
            url: self.config.metrics_url(),
            present,
            missing,
            signals: judge::judge(&samples, &mentioned, &self.config.metrics),
        })
    }

    async fn fetch(&self) -> Result<String, AdapterError> {
        let timeout = self.config.timeout;
        let exchange = async {
            let response = self
                .client
                .get(self.config.metrics_url())
                .header(reqwest::header::ACCEPT, "text/plain; version=0.0.4")
                .timeout(timeout)
                .send()
                .await
                .map_err(AdapterError::from_reqwest)?;
            let mut response = AdapterError::check_status(response).await?;
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(AdapterError::from_reqwest)? {
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err(AdapterError::invalid_response(format!(
                        "metrics body larger than {MAX_BODY_BYTES} bytes"
                    )));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(String::from_utf8_lossy(&body).into_owned())
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or_else(|_| Err(AdapterError::timeout(timeout)))
    }
}

#[async_trait]
impl SignalSource for ScrapeSignalSource {
    async fn read(&self, window: Duration) -> Result<SignalReading, AdapterError> {
        let text = self.fetch().await?;
        let samples = parse_exposition(&text);
        if samples.is_empty() && has_content(&text) {
            return Err(not_exposition());
        }
        let mentioned = mentioned_families(&text, &samples);
        let checks = judge::judge(&samples, &mentioned, &self.config.metrics);
        if let Some(why) = judge::read_failure(&checks) {
            return Err(AdapterError::invalid_response(format!(
                "metrics at {}: {why}",
                self.config.metrics_url()
            )));
        }
        let mut current = summarize(&samples, &self.config.metrics);
        let now = Instant::now();
        current.at = Some(now);
        let mut scrapes = self.scrapes.lock().unwrap_or_else(PoisonError::into_inner);
        let baseline = scrapes
            .iter()
            .find(|scrape| scrape.at.is_some_and(|at| now.duration_since(at) <= window))
            .or_else(|| scrapes.back())
            .cloned();
        scrapes.push_back(current.clone());
        while scrapes.len() > self.config.max_scrapes.max(2) {
            scrapes.pop_front();
        }
        drop(scrapes);
        let mut reading = match baseline {
            Some(baseline) => signals(&baseline, &current),
            None => SignalReading::default(),
        };
        reading.evidence_links = vec![Link {
            label: "Scraped metrics".to_owned(),
            url: self.config.metrics_url(),
        }];
        Ok(reading)
    }
}

/// Keeps the user-traffic series the signals need.
fn summarize(samples: &[Sample], metrics: &ScrapeMetrics) -> Scrape {
    let mut scrape = Scrape::default();
    let summary = metrics.latency_summary();
    for sample in samples {
        if sample.value.is_nan() {
            continue;
        }
        if let Some(exclude) = &metrics.exclude
            && sample.label(&exclude.name) == Some(exclude.value.as_str())
        {
            continue;
        }
        let key = series_key(sample);
        let name = sample.name.as_str();
        let label = |name: &str| sample.label(name).filter(|value| !value.is_empty());
        if name == metrics.requests {
            let status = label(&metrics.status_label);
            let signature = status
                .filter(|status| is_error_status(status))
                .map(|status| {
                    signature(
                        label(&metrics.method_label),
                        label(&metrics.route_label),
                        &[status],
                    )
                });
            scrape.requests.insert(key, (sample.value, signature));
        } else if name == metrics.latency_buckets {
            if let Some(bound) = sample.label("le").and_then(parse_value)
                && !bound.is_nan()
            {
                scrape.buckets.insert(key, (sample.value, bound));
            }
        } else if name == summary {
            if sample.label("quantile") == Some(judge::P95_QUANTILE) && sample.value.is_finite() {
                scrape.quantiles.push(sample.value);
            }
        } else if metrics.errors.as_deref() == Some(name) {
            let outcome: Vec<&str> = [label(&metrics.status_label), label(&metrics.error_label)]
                .into_iter()
                .flatten()
                .collect();
            let signature = signature(
                label(&metrics.method_label),
                label(&metrics.route_label),
                &outcome,
            );
            scrape.errors.insert(key, (sample.value, signature));
        }
    }
    scrape
}

/// Whether a status label's value is a server error: a code (`503`) or a class (`5xx`) starting with `5`.
fn is_error_status(status: &str) -> bool {
    status.starts_with('5')
}

/// `"POST /checkout -> 500 payment provider timeout"`: method and route, then the outcome, each part left out when
/// the series lacks it.
fn signature(method: Option<&str>, route: Option<&str>, outcome: &[&str]) -> String {
    let subject: Vec<&str> = [method, route].into_iter().flatten().collect();
    let mut text = subject.join(" ");
    if !outcome.is_empty() {
        if !text.is_empty() {
            text.push_str(" -> ");
        }
        text.push_str(&outcome.join(" "));
    }
    if text.is_empty() {
        "?".to_owned()
    } else {
        text
    }
}

fn series_key(sample: &Sample) -> String {
    let mut labels = sample.labels.clone();
    labels.sort();
    let mut key = sample.name.clone();
    for (name, value) in labels {
        key.push('\u{1f}');
        key.push_str(&name);
        key.push('=');
        key.push_str(&value);
    }
    key
}

/// The increase of a counter, treating a decrease as a reset (Prometheus semantics). A series absent from the
/// baseline started at zero.
fn increase(baseline: Option<f64>, current: f64) -> f64 {
    match baseline {
        Some(before) if current >= before => current - before,
        _ => current.max(0.0),
    }
}

fn signals(baseline: &Scrape, current: &Scrape) -> SignalReading {
    let mut requests = 0.0;
    let mut errors = 0.0;
    let mut by_error_series: BTreeMap<&str, f64> = BTreeMap::new();
    for (key, (value, signature)) in &current.requests {
        let delta = increase(baseline.requests.get(key).map(|(v, _)| *v), *value);
        requests += delta;
        if let Some(signature) = signature {
            errors += delta;
            *by_error_series.entry(signature.as_str()).or_default() += delta;
        }
    }
    let error_rate = (requests > 0.0).then(|| (errors / requests).clamp(0.0, 1.0));

    let mut by_bound: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    for (key, &(value, bound)) in &current.buckets {
        let delta = increase(baseline.buckets.get(key).map(|&(v, _)| v), value);
        by_bound.entry(order_key(bound)).or_insert((bound, 0.0)).1 += delta;
    }
    let buckets: Vec<(f64, f64)> = by_bound.into_values().collect();
    let p95_latency_ms = if requests > 0.0 {
        histogram_quantile(0.95, &buckets)
            .or_else(|| {
                // A summary's quantiles cannot be aggregated: the slowest series' p95 stands for the service.
                current.quantiles.iter().copied().reduce(f64::max)
            })
            .map(|seconds| seconds * 1000.0)
    } else {
        None
    };

    let mut by_signature: BTreeMap<&str, f64> = BTreeMap::new();
    for (key, (value, signature)) in &current.errors {
        let delta = increase(baseline.errors.get(key).map(|(v, _)| *v), *value);
        *by_signature.entry(signature.as_str()).or_default() += delta;
    }
    // The errors family names the top error; without one (or while it counts nothing), the requests family's
    // error series with the largest increase does.
    let top_error = largest(by_signature).or_else(|| largest(by_error_series));

    SignalReading {
        error_rate,
        p95_latency_ms,
        // The sum of finite non-negative deltas; the saturating float-to-int cast is the intent.
        requests: requests.round() as u64,
        top_error,
        evidence_links: Vec::new(),
    }
}

/// The signature with the largest positive increase (the first in order on a tie).
fn largest(by_signature: BTreeMap<&str, f64>) -> Option<String> {
    by_signature
        .into_iter()
        .filter(|&(_, delta)| delta > 0.0)
        .fold(None::<(&str, f64)>, |best, (signature, delta)| match best {
            Some((_, best_delta)) if best_delta >= delta => best,
            _ => Some((signature, delta)),
        })
        .map(|(signature, _)| signature.to_owned())
}

/// A total order key of a finite or infinite bucket bound.
fn order_key(bound: f64) -> u64 {
    let bits = bound.to_bits();
    if bound.is_sign_negative() {
        !bits
    } else {
        bits | (1 << 63)
    }
}

/// `histogram_quantile` as Prometheus computes it: `buckets` are `(upper bound, cumulative count)` sorted by bound
/// and must end with `+Inf`; the quantile is interpolated linearly inside the bucket where the rank falls, a rank
/// in the `+Inf` bucket gives the highest finite bound. `None` without observations or without a `+Inf` bucket.
pub(crate) fn histogram_quantile(quantile: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let &(last_bound, _) = buckets.last()?;
    if last_bound != f64::INFINITY || buckets.len() < 2 {
        return None;
    }
    // Deltas of separately reset series can break monotonicity; force it, as Prometheus does.
    let mut monotonic = Vec::with_capacity(buckets.len());
    let mut running = 0.0_f64;
    for &(bound, count) in buckets {
        running = running.max(count);
        monotonic.push((bound, running));
    }
    let total = monotonic.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = quantile * total;
    let index = monotonic.iter().position(|&(_, count)| count >= rank)?;
    if index == monotonic.len() - 1 {
        return Some(monotonic[index - 1].0);
    }
    let (bucket_end, count) = monotonic[index];
    let (bucket_start, previous_count) = if index == 0 {
        (0.0_f64.min(bucket_end), 0.0)
    } else {
        monotonic[index - 1]
    };
    if index == 0 && bucket_end <= 0.0 {
        return Some(bucket_end);
    }
    let in_bucket = count - previous_count;
    if in_bucket <= 0.0 {
        return Some(bucket_end);
    }
    Some(bucket_start + (bucket_end - bucket_start) * (rank - previous_count) / in_bucket)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_interpolates_linearly_like_prometheus() {
        // 100 observations: 50 under 0.1 s, 40 in (0.1, 0.5], 10 in (0.5, 1].
        let buckets = [
            (0.1, 50.0),
            (0.5, 90.0),
            (1.0, 100.0),
            (f64::INFINITY, 100.0),
        ];
        let p95 = histogram_quantile(0.95, &buckets).unwrap();
        assert!((p95 - 0.75).abs() < 1e-9, "{p95}");
        let p50 = histogram_quantile(0.5, &buckets).unwrap();
        assert!((p50 - 0.1).abs() < 1e-9, "{p50}");
    }

    #[test]
    fn quantile_in_the_inf_bucket_is_the_highest_finite_bound() {
        let buckets = [(0.1, 1.0), (0.5, 2.0), (f64::INFINITY, 100.0)];
        assert_eq!(histogram_quantile(0.95, &buckets), Some(0.5));
        assert_eq!(
            histogram_quantile(0.95, &[(0.1, 0.0), (f64::INFINITY, 0.0)]),
            None
        );
        assert_eq!(histogram_quantile(0.95, &[(0.1, 3.0)]), None);
    }

    #[test]
    fn decreasing_counter_is_a_reset() {
        assert_eq!(increase(Some(100.0), 30.0), 30.0);
        assert_eq!(increase(Some(10.0), 30.0), 20.0);
        assert_eq!(increase(None, 7.0), 7.0);
    }
}
