//! [`DatadogMetricsSubmitter`]: `POST /api/v2/series` of the demo service's request count, error count and p95
//! latency (API key only), so a [`DatadogSignalSource`](super::DatadogSignalSource) configured with
//! [`DatadogQueries::demo_shop`](super::DatadogQueries::demo_shop) (the queries of the demo configuration) reads
//! them back: those queries name exactly the metrics submitted here.

use std::time::Duration;

use fixloop_contract::chrono::{DateTime, Utc};

use super::wire::{MetricPoint, MetricSeries, SeriesPayload, SubmitResponse};
use super::{DatadogConfig, parse_json, secret_header, send};
use crate::error::AdapterError;

/// Count of user requests (excluding FixLoop validation traffic) per interval.
pub const SUBMITTED_REQUESTS: &str = "fixloop.demo.requests";
/// Count of user requests answered with a 5xx per interval.
pub const SUBMITTED_ERRORS: &str = "fixloop.demo.errors";
/// p95 latency of user requests over the interval, in milliseconds (gauge).
pub const SUBMITTED_P95_MS: &str = "fixloop.demo.latency.p95_ms";

/// What the demo service observed over one interval (user traffic only).
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSample {
    /// End of the interval.
    pub at: DateTime<Utc>,
    /// Length of the interval (the counts' `interval`, at least one second).
    pub interval: Duration,
    /// Requests in the interval.
    pub requests: u64,
    /// 5xx answers in the interval.
    pub errors: u64,
    /// p95 latency in ms, `None` without requests.
    pub p95_latency_ms: Option<f64>,
}

/// Submits the demo service's metrics to Datadog.
#[derive(Debug, Clone)]
pub struct DatadogMetricsSubmitter {
    config: DatadogConfig,
    http: reqwest::Client,
}

impl DatadogMetricsSubmitter {
    /// A submitter over the shared `http` client (only `api_key`, `site`, `service`, `env`, `timeout` and
    /// `base_url_override` of the config are used).
    #[must_use]
    pub fn new(config: DatadogConfig, http: reqwest::Client) -> Self {
        Self { config, http }
    }

    /// Submits one sample: two counts and, when known, the p95 gauge, tagged with the service and env.
    ///
    /// # Errors
    ///
    /// The classified [`AdapterError`]; a 2xx answer listing errors is an invalid response.
    pub async fn submit(&self, sample: &ServiceSample) -> Result<(), AdapterError> {
        let timestamp = sample.at.timestamp();
        let interval = sample.interval.as_secs().max(1);
        let tags = self.config.tags();
        #[allow(clippy::cast_precision_loss)]
        let count = |metric, value: u64| MetricSeries {
            metric,
            kind: 1,
            points: vec![MetricPoint {
                timestamp,
                value: value as f64,
            }],
            tags: tags.clone(),
            interval: Some(interval),
            unit: Some("request"),
        };
        let mut series = vec![
            count(SUBMITTED_REQUESTS, sample.requests),
            count(SUBMITTED_ERRORS, sample.errors),
        ];
        if let Some(p95) = sample.p95_latency_ms.filter(|value| value.is_finite()) {
            series.push(MetricSeries {
                metric: SUBMITTED_P95_MS,
                kind: 3,
                points: vec![MetricPoint {
                    timestamp,
                    value: p95,
                }],
                tags: tags.clone(),
                interval: None,
                unit: Some("millisecond"),
            });
        }
        let request = self
            .http
            .post(format!("{}/api/v2/series", self.config.api_base()))
            .header("DD-API-KEY", secret_header(&self.config.api_key)?)
            .header(reqwest::header::ACCEPT, "application/json")
            .json(&SeriesPayload { series })
            .timeout(self.config.timeout);
        let body = send(request).await?;
        let response: SubmitResponse = parse_json(&body, "series submission")?;
        if response.errors.is_empty() {
            Ok(())
        } else {
            Err(AdapterError::invalid_response(format!(
                "datadog: series submission reported errors: {}",
                serde_json::Value::Array(response.errors)
            )))
        }
    }
}
