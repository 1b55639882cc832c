//! [`SyntheticSignalSource`]: signals for a service with no metrics, from synthetic probes. Each read sends every
//! configured probe once (concurrently, each bounded by [`SyntheticConfig::probe_timeout`]), judges it with its
//! pass criteria, records the result in a bounded ring, and computes the signals over the results within the
//! window.
//!
//! A probe is sent like a test of the HTTP runner (the same code): no redirects followed, a capped body,
//! [`VALIDATION_HEADER`](crate::VALIDATION_HEADER) set to `synthetic` so the service can leave FixLoop's traffic
//! out of its own numbers, and `${env:NAME}` placeholders in header values and `body_json` strings substituted from
//! [`SyntheticConfig::secrets`] at send time (see [`crate::secrets`]).
//!
//! Over the window (results recorded at the start of their read; a read's own results are always in its window):
//! - requests = probe results;
//! - error rate = failed / total (a probe whose criteria fail, that times out, cannot connect or names a secret
//!   that is not configured is a failure: data, never an error of the read);
//! - p95 = the nearest-rank 95th percentile of the probes' latencies, in ms;
//! - top error = the most frequent failure signature (`"GET /orders -> 503"`, `"GET /orders -> connection
//!   refused"`), ties going to the most recent;
//! - evidence links = the probed URLs.
//!
//! The read as a whole fails only when no probe is configured.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use fixloop_contract::{HttpMethod, Link, Target};
use fixloop_core::Criteria;
use futures_util::future::join_all;
use tokio::time::Instant;

use crate::error::AdapterError;
use crate::http_runner::{Exchange, execute};
use crate::ports::{SignalReading, SignalSource};
use crate::secret::Secret;
use crate::url_path;

/// The [`VALIDATION_HEADER`](crate::VALIDATION_HEADER) value of a probe.
pub const SYNTHETIC_VALIDATION_TAG: &str = "synthetic";

/// One synthetic probe: a request and what its response must satisfy.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticProbe {
    /// A name for humans, for example `orders list`.
    pub name: String,
    /// The request: method, absolute URL, headers and JSON body (placeholders allowed in headers and body).
    pub target: Target,
    /// The pass criteria, parsed (see `fixloop_core::Criteria::parse`).
    pub criteria: Criteria,
}

/// Settings of [`SyntheticSignalSource`].
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticConfig {
    /// The probes sent on every read.
    pub probes: Vec<SyntheticProbe>,
    /// Timeout of one probe: connecting, sending and reading the (capped) body. Default 5 s.
    pub probe_timeout: Duration,
    /// Largest response body read per probe, in bytes. Default 64 KiB.
    pub max_body_bytes: usize,
    /// Probe results kept for windows; the oldest are dropped. Default 1024.
    pub max_results: usize,
    /// Secrets by name, substituted for `${env:NAME}` at send time. Default none.
    pub secrets: BTreeMap<String, Secret>,
}

impl SyntheticConfig {
    /// The defaults for `probes`.
    #[must_use]
    pub fn new(probes: Vec<SyntheticProbe>) -> Self {
        Self {
            probes,
            probe_timeout: Duration::from_secs(5),
            max_body_bytes: 64 * 1024,
            max_results: 1024,
            secrets: BTreeMap::new(),
        }
    }
}

/// Signals from synthetic probes (see the [module docs](self)).
#[derive(Debug)]
pub struct SyntheticSignalSource {
    config: SyntheticConfig,
    client: reqwest::Client,
    results: Mutex<VecDeque<ProbeResult>>,
}

/// One probe's result.
#[derive(Debug, Clone, PartialEq)]
struct ProbeResult {
    /// Start of the read that sent the probe.
    at: Instant,
    latency_ms: u64,
    /// The failure signature; `None` when the probe passed.
    failure: Option<String>,
}

impl SyntheticSignalSource {
    /// A source using the shared client (build it with [`crate::http_client`], which disables redirects).
    #[must_use]
    pub fn new(config: SyntheticConfig, client: reqwest::Client) -> Self {
        Self {
            config,
            client,
            results: Mutex::new(VecDeque::new()),
        }
    }

    async fn probe(&self, probe: &SyntheticProbe, at: Instant) -> ProbeResult {
        let exchange = Exchange {
            client: &self.client,
            timeout: self.config.probe_timeout,
            max_body_bytes: self.config.max_body_bytes,
            secrets: &self.config.secrets,
            validation_tag: SYNTHETIC_VALIDATION_TAG,
        };
        let execution = execute(&exchange, &probe.target, &probe.criteria).await;
        let failure = (!execution.passed).then(|| {
            let outcome = match &execution.outcome {
                Ok(status) => status.to_string(),
                Err(reason) => reason.clone(),
            };
            format!(
                "{} {} -> {outcome}",
                method_name(probe.target.method),
                url_path(&probe.target.url)
            )
        });
        tracing::debug!(probe = %probe.name, passed = execution.passed, details = %execution.details, "probe finished");
        ProbeResult {
            at,
            latency_ms: execution.latency_ms,
            failure,
        }
    }
}

#[async_trait]
impl SignalSource for SyntheticSignalSource {
    async fn read(&self, window: Duration) -> Result<SignalReading, AdapterError> {
        if self.config.probes.is_empty() {
            return Err(AdapterError::invalid_response(
                "no synthetic probe is configured",
            ));
        }
        let started = Instant::now();
        let fresh = join_all(
            self.config
                .probes
                .iter()
                .map(|probe| self.probe(probe, started)),
        )
        .await;
        let mut results = self.results.lock().unwrap_or_else(PoisonError::into_inner);
        results.extend(fresh);
        while results.len() > self.config.max_results.max(1) {
            results.pop_front();
        }
        let in_window: Vec<ProbeResult> = results
            .iter()
            .filter(|result| started.duration_since(result.at) <= window)
            .cloned()
            .collect();
        drop(results);
        let mut reading = signals(&in_window);
        let mut urls: Vec<&str> = Vec::new();
        for probe in &self.config.probes {
            if !urls.contains(&probe.target.url.as_str()) {
                urls.push(&probe.target.url);
                reading.evidence_links.push(Link {
                    label: format!("Synthetic probe {}", probe.name),
                    url: probe.target.url.clone(),
                });
            }
        }
        Ok(reading)
    }
}

fn method_name(method: HttpMethod) -> &'static str {
    match method {
        HttpMethod::Get => "GET",
        HttpMethod::Post => "POST",
        HttpMethod::Put => "PUT",
        HttpMethod::Delete => "DELETE",
    }
}

/// The signals of `results` (oldest first).
fn signals(results: &[ProbeResult]) -> SignalReading {
    let total = results.len();
    if total == 0 {
        return SignalReading::default();
    }
    let failures: Vec<&str> = results
        .iter()
        .filter_map(|result| result.failure.as_deref())
        .collect();
    #[allow(clippy::cast_precision_loss)]
    let error_rate = failures.len() as f64 / total as f64;
    let mut latencies: Vec<u64> = results.iter().map(|result| result.latency_ms).collect();
    latencies.sort_unstable();
    // Nearest rank: the smallest latency with at least 95% of the results at or below it.
    let rank = (total * 95).div_ceil(100).max(1);
    #[allow(clippy::cast_precision_loss)]
    let p95 = latencies[rank - 1] as f64;
    SignalReading {
        error_rate: Some(error_rate),
        p95_latency_ms: Some(p95),
        requests: total as u64,
        top_error: most_frequent(&failures),
        evidence_links: Vec::new(),
    }
}

/// The most frequent signature; ties go to the most recent (`signatures` are oldest first).
fn most_frequent(signatures: &[&str]) -> Option<String> {
    let mut counts: HashMap<&str, (usize, usize)> = HashMap::new();
    for (index, signature) in signatures.iter().enumerate() {
        let entry = counts.entry(signature).or_insert((0, index));
        entry.0 += 1;
        entry.1 = index;
    }
    counts
        .into_iter()
        .max_by_key(|&(_, (count, last))| (count, last))
        .map(|(signature, _)| signature.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(latency_ms: u64, failure: Option<&str>) -> ProbeResult {
        ProbeResult {
            at: Instant::now(),
            latency_ms,
            failure: failure.map(str::to_owned),
        }
    }

    #[test]
    fn signals_count_failures_rank_latencies_and_pick_the_top_error() {
        let mut results: Vec<ProbeResult> = (1..=19).map(|ms| result(ms, None)).collect();
        results.push(result(500, Some("GET /a -> 503")));
        let reading = signals(&results);
        assert_eq!(reading.requests, 20);
        assert_eq!(reading.error_rate, Some(0.05));
        assert_eq!(reading.p95_latency_ms, Some(19.0), "rank 19 of 20");
        assert_eq!(reading.top_error.as_deref(), Some("GET /a -> 503"));
        assert_eq!(signals(&[]), SignalReading::default());
    }

    #[test]
    fn top_error_ties_go_to_the_most_recent() {
        assert_eq!(most_frequent(&["a", "b", "a", "b"]), Some("b".to_owned()));
        assert_eq!(most_frequent(&["a", "a", "b"]), Some("a".to_owned()));
        assert_eq!(most_frequent(&[]), None);
    }
}
