//! Datadog's JSON shapes (private): the v1 metrics query response, the v2 logs search request and response, and
//! the v2 series submission body.

use serde::{Deserialize, Serialize};

/// `GET /api/v1/query` response. `pointlist` timestamps are milliseconds (floats in the docs, integers in
/// recordings); values may be `null`.
#[derive(Debug, Deserialize)]
pub(crate) struct QueryResponse {
    #[serde(default)]
    pub(crate) status: Option<String>,
    #[serde(default)]
    pub(crate) error: Option<String>,
    #[serde(default)]
    pub(crate) series: Option<Vec<Series>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Series {
    #[serde(default)]
    pub(crate) pointlist: Vec<(f64, Option<f64>)>,
}

/// `POST /api/v2/logs/events/search` body.
#[derive(Debug, Serialize)]
pub(crate) struct LogsSearchRequest<'a> {
    pub(crate) filter: LogsFilter<'a>,
    pub(crate) page: LogsPage,
    pub(crate) sort: &'static str,
}

#[derive(Debug, Serialize)]
pub(crate) struct LogsFilter<'a> {
    pub(crate) query: &'a str,
    pub(crate) from: String,
    pub(crate) to: &'static str,
}

#[derive(Debug, Serialize)]
pub(crate) struct LogsPage {
    pub(crate) limit: u32,
}

/// `POST /api/v2/logs/events/search` response (`data` may be empty or missing on the last page).
#[derive(Debug, Deserialize)]
pub(crate) struct LogsSearchResponse {
    #[serde(default)]
    pub(crate) data: Option<Vec<LogEvent>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct LogEvent {
    #[serde(default)]
    pub(crate) attributes: Option<LogAttributes>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct LogAttributes {
    #[serde(default)]
    pub(crate) message: Option<String>,
}

/// `POST /api/v2/series` body.
#[derive(Debug, Serialize)]
pub(crate) struct SeriesPayload {
    pub(crate) series: Vec<MetricSeries>,
}

#[derive(Debug, Serialize)]
pub(crate) struct MetricSeries {
    pub(crate) metric: &'static str,
    /// 1 count, 2 rate, 3 gauge.
    #[serde(rename = "type")]
    pub(crate) kind: u8,
    pub(crate) points: Vec<MetricPoint>,
    pub(crate) tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) interval: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) unit: Option<&'static str>,
}

#[derive(Debug, Serialize)]
pub(crate) struct MetricPoint {
    /// Seconds since the epoch.
    pub(crate) timestamp: i64,
    pub(crate) value: f64,
}

/// `POST /api/v2/series` answer: `{"errors": []}`.
#[derive(Debug, Deserialize)]
pub(crate) struct SubmitResponse {
    #[serde(default)]
    pub(crate) errors: Vec<serde_json::Value>,
}
