//! The service profile file as written on disk (TOML): serde types only, every table closed to unknown keys.
//!
//! [`super::Profile::parse`] turns a [`ProfileFile`] into checked, plain types. The format is documented in the
//! README ("Watch your own service") and by the built-in demo profile, `fixloop-server/profiles/demo.toml`.

use std::collections::BTreeMap;

use fixloop_contract::{HttpMethod, JsonObject, PlanItemType};
use serde::{Deserialize, Serialize};

use super::remediation::RemediationFile;

/// A whole profile file: one or more services.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileFile {
    /// The watched services (`[[service]]` tables), at least one.
    #[serde(default)]
    pub service: Vec<ServiceFile>,
    /// The `[ci]` self-heal section (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci: Option<super::ci::CiFile>,
    /// Where notifications go (`[[notify]]` tables), none by default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<super::notify::NotifyFile>,
}

/// One `[[service]]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceFile {
    /// Unique name (`a-z 0-9 - _ .`), used in titles, logs and `/api/services/{name}`.
    pub name: String,
    /// What the service does, for planners and the copilot.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Base URL the journeys' paths are appended to; tests may target it.
    pub base_url: String,
    /// More base URLs tests may target (the validator's allowlist is `base_url` plus these).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_base_urls: Vec<String>,
    /// Whether the service's URLs may be link-local or cloud metadata addresses (169.254.0.0/16, `fe80::/10`,
    /// `fd00:ec2::254`, `metadata.google.internal`, `metadata`), where cloud credentials live; refused unless true.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_metadata_targets: bool,
    /// Labels an incoming alert must carry (all of them) to be routed to this service.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub alert_labels: BTreeMap<String, String>,
    /// Where the signals come from.
    #[serde(default)]
    pub signals: SignalsFile,
    /// Detection and recovery thresholds; unset keys take the mode's defaults.
    #[serde(default, skip_serializing_if = "ThresholdsFile::is_empty")]
    pub thresholds: ThresholdsFile,
    /// The candidate tests, at least five.
    #[serde(default)]
    pub journeys: Vec<JourneyFile>,
    /// What every plan must cover.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub coverage: Vec<CoverageFile>,
    /// Remediation: actions, strategies, tiers and the mode (none: nothing is ever proposed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<RemediationFile>,
}

/// `[service.signals]`: the signal source, chosen by `source`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "source", rename_all = "snake_case", deny_unknown_fields)]
pub enum SignalsFile {
    /// Scrape the service's own Prometheus text exposition.
    Scrape(ScrapeFile),
    /// Query a Prometheus server with PromQL.
    Prometheus(PrometheusFile),
    /// Query Datadog (needs `DD_API_KEY` and `DD_APP_KEY`).
    Datadog(DatadogFile),
    /// No metrics: FixLoop probes the service's journeys itself.
    Synthetic(SyntheticFile),
}

impl Default for SignalsFile {
    fn default() -> Self {
        Self::Synthetic(SyntheticFile::default())
    }
}

/// `source = "scrape"`: metric family and label names of the service's `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeFile {
    /// Path of the exposition under the base URL (default `/metrics`), or an http(s) URL on the base URL's origin
    /// for an exposition outside the base URL's path (`http://host:9000/metrics` for a base URL
    /// `http://host:9000/api`).
    #[serde(default = "default_metrics_path")]
    pub metrics_path: String,
    /// Request counter family (for example `http_requests_total`).
    pub requests_metric: String,
    /// Latency histogram family in seconds, without `_bucket` (for example `http_request_duration_seconds`).
    pub duration_metric: String,
    /// Error counter by signature, if the service has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors_metric: Option<String>,
    /// Label holding the HTTP status (default `status`).
    #[serde(default = "default_status_label")]
    pub status_label: String,
    /// Label holding the route (default `route`).
    #[serde(default = "default_route_label")]
    pub route_label: String,
    /// Label holding the method (default `method`).
    #[serde(default = "default_method_label")]
    pub method_label: String,
    /// Label of the errors family holding the signature (default `error`).
    #[serde(default = "default_error_label")]
    pub error_label: String,
    /// Series carrying this label with this value are FixLoop's own traffic and left out (e.g. `source = "fixloop"`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub exclude: BTreeMap<String, String>,
}

/// `source = "prometheus"`: PromQL templates; `{range}` becomes the window (`[5m]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusFile {
    /// The Prometheus server's base URL (default `FIXLOOP_PROMETHEUS_URL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Error ratio over the window, 0 to 1.
    pub error_ratio_query: String,
    /// p95 latency over the window, in milliseconds.
    pub p95_ms_query: String,
    /// Requests over the window.
    pub requests_query: String,
    /// The most frequent error over the window (a vector whose labels name it), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_error_query: Option<String>,
    /// The shortest `{range}` a query is asked over, in seconds (default 60: four scrape intervals of 15 s). The
    /// engine asks for the time since its previous measurement, a few seconds, which a Prometheus that scrapes less
    /// often cannot answer (`rate` needs two samples); set it to about four of your scrape intervals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_range_secs: Option<u64>,
}

/// `source = "datadog"`: metric queries and the log query.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatadogFile {
    /// Requests (a count query).
    pub requests_query: String,
    /// Errors (a count query).
    pub errors_query: String,
    /// p95 latency.
    pub p95_query: String,
    /// Multiplier from the p95 query's unit to milliseconds (1000 for seconds; default 1).
    #[serde(default = "default_p95_to_ms")]
    pub p95_to_ms: f64,
    /// Log search for the top error (default `service:<name> status:error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs_query: Option<String>,
}

/// `source = "synthetic"`: which journeys FixLoop probes (default: every `GET` journey).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SyntheticFile {
    /// Journey ids to probe; empty means every `GET` journey.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub journeys: Vec<String>,
}

/// `[service.thresholds]`. Error rates are in percent: `5` means 5%.
#[derive(Debug, Clone, Copy, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdsFile {
    /// An incident opens above this error rate, in percent (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_error_percent: Option<f64>,
    /// The signal gate holds below this error rate, in percent (default 1); below the trigger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_error_percent: Option<f64>,
    /// Detection window, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_secs: Option<u64>,
    /// Hot samples within the window before an incident opens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_samples: Option<u32>,
    /// Consecutive healthy samples the signal gate needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_samples: Option<u32>,
    /// Requests a sample needs to count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_requests: Option<u64>,
    /// How often the signals are read, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_interval_secs: Option<f64>,
}

impl ThresholdsFile {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// One `[[service.journeys]]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JourneyFile {
    /// Unique id, the plan item's `test_id`.
    pub id: String,
    /// One-line name.
    pub name: String,
    /// `API` (default), `UI` or `SYNTHETIC`.
    #[serde(default = "default_kind", rename = "type")]
    pub kind: PlanItemType,
    /// HTTP method (default `GET`).
    #[serde(default = "default_method")]
    pub method: HttpMethod,
    /// Path and optional query, starting with `/`.
    pub path: String,
    /// Request headers; values may reference secrets as `${env:NAME}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// JSON body (a table); string values may reference secrets as `${env:NAME}`.
    #[serde(default, skip_serializing_if = "JsonObject::is_empty")]
    pub body: JsonObject,
    /// Pass criteria in FixLoop's criteria language.
    pub pass_criteria: String,
    /// Priority hint, lower first (default 100).
    #[serde(default = "default_priority")]
    pub priority: u32,
    /// What the test proves (default: the name).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub what_it_checks: String,
    /// Route tag matched against the top error (default: the path without its query).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Whether calling this `GET` is known to change nothing, although its id, path or name names a side effect
    /// (`uninstall`, `delete`, `reset`, …). The profile check refuses such a `GET` journey unless this is `true`;
    /// `profile init` writes them commented out.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub safe: bool,
}

/// One `[[service.coverage]]` rule.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CoverageFile {
    /// Human name, used in violations.
    pub name: String,
    /// Path a test must target (relative to the base URL; the query is ignored).
    pub path: String,
    /// Method it must use, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<HttpMethod>,
    /// `any` (default), `expects_success`, `expects_client_error` or `sends_authorization`.
    #[serde(default)]
    pub check: CheckFile,
}

/// The kind of check of a coverage rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckFile {
    /// Any test of the path.
    #[default]
    Any,
    /// A test whose criteria only pass on a 2xx.
    ExpectsSuccess,
    /// A test whose criteria only pass on a 4xx.
    ExpectsClientError,
    /// A test sending `Authorization`.
    SendsAuthorization,
}

fn default_metrics_path() -> String {
    "/metrics".to_owned()
}

fn default_status_label() -> String {
    "status".to_owned()
}

fn default_route_label() -> String {
    "route".to_owned()
}

fn default_method_label() -> String {
    "method".to_owned()
}

fn default_error_label() -> String {
    "error".to_owned()
}

fn default_p95_to_ms() -> f64 {
    1.0
}

fn default_kind() -> PlanItemType {
    PlanItemType::Api
}

fn default_method() -> HttpMethod {
    HttpMethod::Get
}

fn default_priority() -> u32 {
    100
}
