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
//! Series carrying the excluded label value (`source="fixloop"` for the demo shop) are FixLoop's own validation
//! traffic (the test runner tags it with [`VALIDATION_HEADER`](crate::VALIDATION_HEADER)) and are left out, so our
//! tests never pollute the signal they judge. Every read scrapes once and keeps the scrape (with its
//! `tokio::time::Instant`) in a bounded ring; the signals are the increase between the baseline and the new
//! scrape, where the baseline is the oldest kept scrape within the window, or the newest earlier one when none is
//! that recent. A counter that went down was reset: its increase is its new value, as in Prometheus. The first
//! read has no baseline: no error rate, no p95, 0 requests.
//!
//! A scrape that succeeds but does not mention the requests family at all (no sample, no `# TYPE` or `# HELP`
//! line) fails the read with [`ErrorKind::InvalidResponse`](crate::ErrorKind::InvalidResponse) ("metrics at URL
//! lack family X") and is not kept: a misnamed family must be visible, not read as a quiet service with 0
//! requests. A family that is declared but has no series yet (a labelled counter before its first increment)
//! counts as present. [`ScrapeSignalSource::check`] reports every configured family that is missing, for a
//! start-up diagnostic.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use fixloop_contract::Link;
use tokio::time::Instant;

use crate::error::AdapterError;
use crate::ports::{SignalReading, SignalSource};

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

/// One sample of a text exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name, with its `_bucket`/`_sum`/`_count` suffix if any.
    pub name: String,
    /// Labels in the order they appeared, values unescaped.
    pub labels: Vec<(String, String)>,
    /// The value (`+Inf`, `-Inf` and `NaN` included).
    pub value: f64,
}

impl Sample {
    /// The value of label `name`, if present.
    #[must_use]
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(label, _)| label == name)
            .map(|(_, value)| value.as_str())
    }
}

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
    /// `http_request_duration_seconds_bucket`. Without it the p95 is `None`.
    pub latency_buckets: String,
    /// Error counter family by signature, if the service has one; it gives the top error.
    pub errors: Option<String>,
    /// Label of the HTTP status on the requests and errors families; a value starting with `5` is an error.
    pub status_label: String,
    /// Label of the route on the errors family.
    pub route_label: String,
    /// Label of the HTTP method on the errors family.
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
    /// Path of the metrics endpoint. Default `/metrics`.
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
        let path = self.metrics_path.trim_start_matches('/');
        format!("{}/{path}", self.base_url.trim_end_matches('/'))
    }
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
}

impl ScrapeCheck {
    /// Whether every configured family is present.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty()
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
    /// Request counter by series key, with whether the series counts errors.
    requests: BTreeMap<String, (f64, bool)>,
    /// Histogram buckets by series key, with their upper bound in seconds.
    buckets: BTreeMap<String, (f64, f64)>,
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
    /// missing (for a start-up diagnostic).
    ///
    /// # Errors
    ///
    /// The scrape's failure, as [`SignalSource::read`] reports it; a body that is not a text exposition is an
    /// invalid response. Missing families are not an error here.
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
        let requests_family = &self.config.metrics.requests;
        if !mentioned_families(&text, &samples).contains(requests_family) {
            return Err(AdapterError::invalid_response(format!(
                "metrics at {} lack family {requests_family}",
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

/// Parses a Prometheus text exposition, tolerantly: comments and blank lines are skipped, a line that does not
/// parse is skipped, timestamps and exemplars are ignored. Never panics.
#[must_use]
pub fn parse_exposition(text: &str) -> Vec<Sample> {
    text.lines().filter_map(parse_line).collect()
}

fn not_exposition() -> AdapterError {
    AdapterError::invalid_response("metrics body is not prometheus text exposition")
}

/// The sample names of the exposition and the families its `# TYPE` and `# HELP` lines declare (a declared
/// histogram or summary `x` also declares `x_bucket`, `x_sum` and `x_count`).
fn mentioned_families(text: &str, samples: &[Sample]) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = samples.iter().map(|sample| sample.name.clone()).collect();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("#") {
            continue;
        }
        let (Some(keyword @ ("TYPE" | "HELP")), Some(name)) = (words.next(), words.next()) else {
            continue;
        };
        names.insert(name.to_owned());
        if keyword == "TYPE" && matches!(words.next(), Some("histogram" | "summary")) {
            for suffix in ["_bucket", "_sum", "_count"] {
                names.insert(format!("{name}{suffix}"));
            }
        }
    }
    names
}

fn has_content(text: &str) -> bool {
    text.lines().any(|line| {
        let line = line.trim();
        !line.is_empty() && !line.starts_with('#')
    })
}

fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line
        .char_indices()
        .find(|&(index, c)| !is_name_char(c, index == 0))
        .map_or(line.len(), |(index, _)| index);
    if name_end == 0 {
        return None;
    }
    let name = &line[..name_end];
    let mut rest = line[name_end..].trim_start();
    let mut labels = Vec::new();
    if let Some(after_brace) = rest.strip_prefix('{') {
        let (parsed, remainder) = parse_labels(after_brace)?;
        labels = parsed;
        rest = remainder;
    }
    let value_token = rest.split_whitespace().next()?;
    let value = parse_value(value_token)?;
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

fn is_name_char(c: char, first: bool) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':' || (!first && c.is_ascii_digit())
}

/// Parses `name="value",…}` and returns the labels and what follows the closing brace.
fn parse_labels(mut input: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut labels = Vec::new();
    loop {
        input = input.trim_start();
        if let Some(rest) = input.strip_prefix('}') {
            return Some((labels, rest));
        }
        let name_end = input
            .char_indices()
            .find(|&(index, c)| !is_name_char(c, index == 0) || c == ':')
            .map_or(input.len(), |(index, _)| index);
        if name_end == 0 {
            return None;
        }
        let name = input[..name_end].to_owned();
        input = input[name_end..].trim_start().strip_prefix('=')?;
        input = input.trim_start().strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = input.char_indices();
        let end = loop {
            let (index, c) = chars.next()?;
            match c {
                '"' => break index,
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                other => value.push(other),
            }
        };
        labels.push((name, value));
        input = input[end + 1..].trim_start();
        if let Some(rest) = input.strip_prefix(',') {
            input = rest;
        } else if !input.starts_with('}') {
            return None;
        }
    }
}

fn parse_value(token: &str) -> Option<f64> {
    match token {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        _ => token.parse::<f64>().ok(),
    }
}

/// Keeps the user-traffic series the signals need.
fn summarize(samples: &[Sample], metrics: &ScrapeMetrics) -> Scrape {
    let mut scrape = Scrape::default();
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
        if name == metrics.requests {
            let is_error = sample
                .label(&metrics.status_label)
                .is_some_and(|s| s.starts_with('5'));
            scrape.requests.insert(key, (sample.value, is_error));
        } else if name == metrics.latency_buckets {
            if let Some(bound) = sample.label("le").and_then(parse_value)
                && !bound.is_nan()
            {
                scrape.buckets.insert(key, (sample.value, bound));
            }
        } else if metrics.errors.as_deref() == Some(name) {
            let label = |name: &str| sample.label(name).unwrap_or("?");
            let signature = format!(
                "{} {} -> {} {}",
                label(&metrics.method_label),
                label(&metrics.route_label),
                label(&metrics.status_label),
                label(&metrics.error_label)
            );
            scrape.errors.insert(key, (sample.value, signature));
        }
    }
    scrape
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
    for (key, &(value, is_error)) in &current.requests {
        let delta = increase(baseline.requests.get(key).map(|&(v, _)| v), value);
        requests += delta;
        if is_error {
            errors += delta;
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
        histogram_quantile(0.95, &buckets).map(|seconds| seconds * 1000.0)
    } else {
        None
    };

    let mut by_signature: BTreeMap<&str, f64> = BTreeMap::new();
    for (key, (value, signature)) in &current.errors {
        let delta = increase(baseline.errors.get(key).map(|(v, _)| *v), *value);
        *by_signature.entry(signature.as_str()).or_default() += delta;
    }
    let top_error = by_signature
        .into_iter()
        .filter(|&(_, delta)| delta > 0.0)
        .fold(None::<(&str, f64)>, |best, (signature, delta)| match best {
            Some((_, best_delta)) if best_delta >= delta => best,
            _ => Some((signature, delta)),
        })
        .map(|(signature, _)| signature.to_owned());

    SignalReading {
        error_rate,
        p95_latency_ms,
        // The sum of finite non-negative deltas; the saturating float-to-int cast is the intent.
        requests: requests.round() as u64,
        top_error,
        evidence_links: Vec::new(),
    }
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
    fn parser_handles_labels_escapes_specials_timestamps_and_exemplars() {
        let text = r#"
# HELP demo_http_requests_total Requests.
# TYPE demo_http_requests_total counter
demo_http_requests_total{route="/checkout",method="POST",status="500",source="user"} 12 1700000000000
demo_http_errors_total{error="say \"hi\"\\n",route="/a",} 3 # {trace_id="abc"} 1.0
up 1
bucket{le="+Inf"} +Inf
weird NaN
broken{le="1" 4
  spaced_metric   { a = "b" }   7
"#;
        let samples = parse_exposition(text);
        assert_eq!(samples.len(), 6, "{samples:?}");
        assert_eq!(samples[0].label("status"), Some("500"));
        assert_eq!(samples[0].value, 12.0);
        assert_eq!(samples[1].label("error"), Some("say \"hi\"\\n"));
        assert_eq!(samples[1].value, 3.0);
        assert_eq!(samples[2].name, "up");
        assert_eq!(samples[3].label("le"), Some("+Inf"));
        assert_eq!(samples[3].value, f64::INFINITY);
        assert!(samples[4].value.is_nan());
        assert_eq!(samples[5].name, "spaced_metric");
        assert_eq!(samples[5].label("a"), Some("b"));
    }

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
