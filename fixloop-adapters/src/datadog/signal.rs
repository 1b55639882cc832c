//! [`DatadogSignalSource`]: error rate, p95 and request count from `GET /api/v1/query`, the most frequent recent
//! error message from `POST /api/v2/logs/events/search`, and evidence links into the site's UI.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use fixloop_contract::Link;

use super::wire::{LogsFilter, LogsPage, LogsSearchRequest, LogsSearchResponse, QueryResponse};
use super::{DatadogConfig, links, parse_json, secret_header, send};
use crate::error::AdapterError;
use crate::ports::{SignalReading, SignalSource};

/// Error logs fetched to find the most frequent message.
const LOGS_LIMIT: u32 = 25;
/// Longest top-error text kept, in characters.
const TOP_ERROR_CHARS: usize = 200;

/// The Datadog signal source. Per read: the three metric queries of [`DatadogQueries`](super::DatadogQueries)
/// (requests, errors, p95) and its logs search when set, sent concurrently; any failure fails the read.
///
/// - requests = sum of the points of the requests query over the window;
/// - error rate = errors / requests (`None` without requests);
/// - p95 = the last non-null point of the p95 query, in ms (`None` without requests);
/// - top error = the most frequent message (first line) among the newest logs of the logs query (`None` without
///   one).
#[derive(Debug, Clone)]
pub struct DatadogSignalSource {
    config: DatadogConfig,
    http: reqwest::Client,
}

/// The three metric queries of a read, scope substituted.
struct Queries {
    requests: String,
    errors: String,
    p95: String,
}

impl DatadogSignalSource {
    /// A signal source over the shared `http` client.
    #[must_use]
    pub fn new(config: DatadogConfig, http: reqwest::Client) -> Self {
        Self { config, http }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &DatadogConfig {
        &self.config
    }

    fn queries(&self) -> Queries {
        let scope = self.config.tags().join(",");
        let queries = &self.config.queries;
        Queries {
            requests: queries.requests.replace("{scope}", &scope),
            errors: queries.errors.replace("{scope}", &scope),
            p95: queries.p95.replace("{scope}", &scope),
        }
    }

    fn logs_query(&self) -> Option<String> {
        let scope = self.config.tags().join(" ");
        let query = self.config.queries.logs.as_ref()?;
        Some(query.replace("{scope}", &scope))
    }

    /// `GET /api/v1/query?from=<s>&to=<s>&query=<q>`: the series' points, flattened.
    async fn query(
        &self,
        query: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<(f64, Option<f64>)>, AdapterError> {
        let request = self
            .http
            .get(format!("{}/api/v1/query", self.config.api_base()))
            .query(&[
                ("from", from.to_string()),
                ("to", to.to_string()),
                ("query", query.to_owned()),
            ])
            .header("DD-API-KEY", secret_header(&self.config.api_key)?)
            .header("DD-APPLICATION-KEY", secret_header(&self.config.app_key)?)
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(self.config.timeout);
        let body = send(request).await?;
        let response: QueryResponse = parse_json(&body, "metrics query")?;
        if let Some(status) = response.status.as_deref()
            && status != "ok"
        {
            return Err(AdapterError::invalid_response(format!(
                "datadog: metrics query status {status:?}: {}",
                response.error.unwrap_or_default()
            )));
        }
        let series = response.series.ok_or_else(|| {
            AdapterError::invalid_response("datadog: metrics query response has no series")
        })?;
        let mut points: Vec<(f64, Option<f64>)> = series
            .into_iter()
            .flat_map(|series| series.pointlist)
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        Ok(points)
    }

    /// The most frequent first line among the newest logs of the logs query, or `None` when there are none or
    /// no logs query is configured.
    async fn top_error(&self, window_secs: i64) -> Result<Option<String>, AdapterError> {
        let Some(query) = self.logs_query() else {
            return Ok(None);
        };
        let body = LogsSearchRequest {
            filter: LogsFilter {
                query: &query,
                from: format!("now-{window_secs}s"),
                to: "now",
            },
            page: LogsPage { limit: LOGS_LIMIT },
            sort: "-timestamp",
        };
        let request = self
            .http
            .post(format!(
                "{}/api/v2/logs/events/search",
                self.config.api_base()
            ))
            .header("DD-API-KEY", secret_header(&self.config.api_key)?)
            .header("DD-APPLICATION-KEY", secret_header(&self.config.app_key)?)
            .header(reqwest::header::ACCEPT, "application/json")
            .json(&body)
            .timeout(self.config.timeout);
        let body = send(request).await?;
        let response: LogsSearchResponse = parse_json(&body, "logs search")?;
        let messages: Vec<String> = response
            .data
            .unwrap_or_default()
            .into_iter()
            .filter_map(|event| event.attributes?.message)
            .filter_map(|message| {
                let line = message
                    .lines()
                    .map(str::trim)
                    .find(|line| !line.is_empty())?;
                Some(line.chars().take(TOP_ERROR_CHARS).collect::<String>())
            })
            .collect();
        Ok(most_frequent(messages))
    }
}

/// The most frequent string; ties go to the one seen first (the newest log).
fn most_frequent(messages: Vec<String>) -> Option<String> {
    let mut counts: HashMap<&str, (usize, usize)> = HashMap::new();
    for (index, message) in messages.iter().enumerate() {
        counts.entry(message.as_str()).or_insert((0, index)).0 += 1;
    }
    counts
        .into_iter()
        .max_by(|a, b| a.1.0.cmp(&b.1.0).then(b.1.1.cmp(&a.1.1)))
        .map(|(message, _)| message.to_owned())
}

/// The metric of a simple metrics query: `sum:trace.http.request.errors{service:x}.as_count()` →
/// `trace.http.request.errors` (the first term of a formula); `None` when the query does not start that way.
fn metric_of(query: &str) -> Option<&str> {
    let (aggregator, rest) = query.trim().split_once(':')?;
    if aggregator.is_empty() || !aggregator.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    let metric = &rest[..rest.find(['{', '(', ' ', ','])?];
    let valid = !metric.is_empty()
        && metric
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_');
    valid.then_some(metric)
}

fn sum(points: &[(f64, Option<f64>)]) -> f64 {
    points
        .iter()
        .filter_map(|(_, value)| *value)
        .filter(|value| value.is_finite())
        .sum()
}

fn last_value(points: &[(f64, Option<f64>)]) -> Option<f64> {
    points
        .iter()
        .rev()
        .find_map(|(_, value)| value.filter(|value| value.is_finite()))
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

#[async_trait]
impl SignalSource for DatadogSignalSource {
    async fn read(&self, window: Duration) -> Result<SignalReading, AdapterError> {
        let window_secs = i64::try_from(window.as_secs().max(1)).unwrap_or(i64::MAX / 2);
        let to = unix_now();
        let from = to.saturating_sub(window_secs);
        let queries = self.queries();
        let (requests, errors, p95, top_error) = tokio::try_join!(
            self.query(&queries.requests, from, to),
            self.query(&queries.errors, from, to),
            self.query(&queries.p95, from, to),
            self.top_error(window_secs),
        )?;
        let request_total = sum(&requests).max(0.0);
        let error_total = sum(&errors).max(0.0);
        let has_traffic = request_total >= 0.5;
        let error_rate = has_traffic.then(|| (error_total / request_total).clamp(0.0, 1.0));
        let p95_to_ms = self.config.queries.p95_to_ms;
        let p95_latency_ms = if has_traffic {
            last_value(&p95).map(|value| (value * p95_to_ms).max(0.0))
        } else {
            None
        };
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let requests = request_total.round().min(u64::MAX as f64) as u64;

        let app = self.config.app_base();
        let scope = self.config.tags().join(",");
        let (from_ms, to_ms) = (from.saturating_mul(1000), to.saturating_mul(1000));
        let mut evidence_links = Vec::new();
        if let Some(metric) = metric_of(&self.config.queries.errors) {
            evidence_links.push(Link {
                label: format!("Datadog metric {metric}"),
                url: links::metric_explorer_url(&app, metric, &scope, from_ms, to_ms),
            });
        }
        if let Some(logs_query) = self.logs_query() {
            evidence_links.push(Link {
                label: format!("Datadog error logs of {}", self.config.service),
                url: links::logs_url(&app, &logs_query, from_ms, to_ms),
            });
        }
        if self.config.queries.apm_service_link {
            evidence_links.push(Link {
                label: format!("Datadog APM service {}", self.config.service),
                url: links::service_url(&app, &self.config.service, self.config.env.as_deref()),
            });
        }
        Ok(SignalReading {
            error_rate,
            p95_latency_ms,
            requests,
            top_error,
            evidence_links,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_frequent_prefers_count_then_newest() {
        let messages = ["b", "a", "a", "b", "c"].map(str::to_owned).to_vec();
        assert_eq!(most_frequent(messages), Some("b".to_owned()));
        assert_eq!(
            most_frequent(vec!["x".into(), "y".into()]),
            Some("x".to_owned())
        );
        assert_eq!(most_frequent(Vec::new()), None);
    }

    #[test]
    fn metric_of_a_query_is_between_the_aggregator_and_the_scope() {
        assert_eq!(
            metric_of("sum:trace.http.request.errors{service:x}.as_count()"),
            Some("trace.http.request.errors")
        );
        assert_eq!(
            metric_of("max:fixloop.demo.latency.p95_ms{*}"),
            Some("fixloop.demo.latency.p95_ms")
        );
        assert_eq!(metric_of("errors{*}"), None);
        assert_eq!(metric_of("sum:a{x} / sum:b{x}"), Some("a"));
        assert_eq!(metric_of("(sum:a{x})"), None);
    }

    #[test]
    fn last_value_skips_nulls() {
        let points = [(1.0, Some(2.0)), (2.0, Some(3.0)), (3.0, None)];
        assert_eq!(last_value(&points), Some(3.0));
        assert_eq!(sum(&points), 5.0);
        assert_eq!(last_value(&[(1.0, None)]), None);
    }
}
