//! Prometheus and Alertmanager JSON shapes (private): the HTTP API envelope of `/api/v1/query` and the
//! Alertmanager webhook message (version "4").

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// `{"status":"success"|"error","data":...,"errorType":...,"error":...,"warnings":[...]}`.
#[derive(Debug, Deserialize)]
pub(crate) struct Envelope {
    pub(crate) status: String,
    #[serde(default)]
    pub(crate) data: Option<QueryData>,
    #[serde(default, rename = "errorType")]
    pub(crate) error_type: Option<String>,
    #[serde(default)]
    pub(crate) error: Option<String>,
}

/// `data` of an instant query.
#[derive(Debug, Deserialize)]
pub(crate) struct QueryData {
    #[serde(rename = "resultType")]
    pub(crate) result_type: String,
    #[serde(default)]
    pub(crate) result: Value,
}

/// One element of a `vector` result.
#[derive(Debug, Deserialize)]
pub(crate) struct VectorSample {
    #[serde(default)]
    pub(crate) metric: BTreeMap<String, String>,
    /// `[<unix seconds>, "<value>"]`; the value is a string (`"NaN"`, `"+Inf"` possible).
    pub(crate) value: (f64, String),
}

/// The Alertmanager webhook message.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WebhookMessage {
    #[serde(default)]
    pub(crate) version: String,
    #[serde(default)]
    pub(crate) group_key: String,
    #[serde(default)]
    pub(crate) status: String,
    #[serde(default)]
    pub(crate) common_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) common_annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) external_url: String,
    #[serde(default)]
    pub(crate) alerts: Vec<WebhookAlert>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WebhookAlert {
    #[serde(default)]
    pub(crate) status: String,
    #[serde(default)]
    pub(crate) labels: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) starts_at: Option<String>,
    #[serde(default, rename = "generatorURL")]
    pub(crate) generator_url: String,
    #[serde(default)]
    pub(crate) fingerprint: String,
}

/// `{"status":"success","data":["__name__","code",...]}` of `GET /api/v1/labels`.
#[derive(Debug, Deserialize)]
pub(crate) struct LabelsEnvelope {
    pub(crate) status: String,
    #[serde(default)]
    pub(crate) data: Vec<String>,
}
