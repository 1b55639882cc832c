//! REST response bodies and the payloads the WebSocket messages carry (seed contract section 5.2).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use super::enums::{
    AnsweredBy, HttpMethod, IncidentState, PlanItemType, RunStatus, StreamResetReason, TestStatus,
};

/// A JSON object, the type of `target.body_json`.
pub type JsonObject = serde_json::Map<String, serde_json::Value>;

/// The system's current state (`GET /api/status`, WebSocket `system.status`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SystemStatus {
    /// The system-level incident state.
    pub status: IncidentState,
    /// Percentage of requests that failed with a 5xx over the latest measurement, from 0 to 100 (`5.0` is 5%; a
    /// dashboard prints it followed by `%`). FixLoop measures the seconds since its previous measurement (extended
    /// while too few requests arrived), so the figure is recent, never a window that still holds a past outage.
    #[schema(minimum = 0.0, maximum = 100.0)]
    pub error_rate_5m: f64,
    /// 95th percentile latency over the detection window, in milliseconds.
    #[schema(minimum = 0.0)]
    pub p95_latency_ms_5m: f64,
    /// The open incident's id, or `null` when none is open.
    #[schema(required = true)]
    pub active_incident_id: Option<String>,
    /// When this status was computed (RFC 3339, UTC).
    pub updated_at: DateTime<Utc>,
    /// Additive (optional): the watched service this status describes; with several services, `GET /api/status`
    /// answers the one whose status matters most. `null` or absent from servers that watch one unnamed service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Additive (optional): why the signals cannot be trusted right now (the source fails or has no data for the
    /// service, and FixLoop's own probes are what keeps the status honest), or `null` when they are fine. A
    /// HEALTHY status with this set means "the service answers our probes, but its metrics are missing".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signals_degraded: Option<String>,
}

/// What a profile reload changed (`POST /api/admin/reload`). Additive. Services are matched by name; each list is
/// in the profile's order (`removed` in the former running order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReloadReport {
    /// Services new in the profile: started.
    pub added: Vec<String>,
    /// Services no longer in the profile: stopped (their journal is kept, so re-adding one restores it).
    pub removed: Vec<String>,
    /// Services whose profile changed: restarted, with their open incident restored from the journal.
    pub restarted: Vec<String>,
    /// Services whose profile did not change: left running untouched.
    pub unchanged: Vec<String>,
}

/// One watched service and its state (`GET /api/services`, `GET /api/services/{name}`). Additive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServiceState {
    /// The service's name, unique within the server.
    pub name: String,
    /// The service's base URL (tests target it).
    pub base_url: String,
    /// Where its signals come from, in words (for example `scrape of http://shop:8001/metrics`).
    pub signals: String,
    /// Its status: the same document `GET /api/status` answers for a single service.
    pub status: SystemStatus,
    /// Its open incident, or `null`.
    #[schema(required = true)]
    pub current_incident: Option<IncidentCard>,
    /// Additive (optional): why its open incident is not RECOVERED yet, in one line (for example `"latest run
    /// run-2: 1 of 5 tests failed; signals not healthy yet: 1 of 3 consecutive healthy samples"`: tests failing
    /// or in progress, signals not healthy for enough samples, or no data); absent when HEALTHY or RECOVERED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_blocker: Option<String>,
}

/// An incident as the dashboard shows it (`GET /api/incidents/current`, WebSocket `incident.created`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IncidentCard {
    /// Stable id of the incident.
    pub incident_id: String,
    /// One-line human title.
    pub title: String,
    /// When the incident was detected (RFC 3339, UTC).
    pub detected_at: DateTime<Utc>,
    /// The signals that justified the incident.
    pub datadog_summary: DatadogSummary,
    /// The Recovery Validation Plan; `items` is empty until the plan is generated.
    pub plan: Plan,
}

/// The observability summary of an incident (the key keeps the seed's name whatever the signal source).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DatadogSummary {
    /// The id of the monitor that alerted, or `null` when detection came from polling or simulation.
    #[schema(required = true)]
    pub monitor_id: Option<String>,
    /// The monitored service's name.
    pub service: String,
    /// The signal values at detection.
    pub signal: Signal,
    /// Links to the raw telemetry behind the detection.
    pub evidence_links: Vec<Link>,
}

/// Signal values of a service over the detection window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Signal {
    /// Percentage of requests that failed with a 5xx over the window, from 0 to 100 (`5.0` is 5%).
    #[schema(minimum = 0.0, maximum = 100.0)]
    pub error_rate_5m: f64,
    /// 95th percentile latency in milliseconds.
    #[schema(minimum = 0.0)]
    pub p95_latency_ms_5m: f64,
    /// The most frequent error signature, or `null` when none was observed.
    #[schema(required = true)]
    pub top_error: Option<String>,
}

/// A labelled link (evidence links and copilot citations).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Link {
    /// Human label.
    pub label: String,
    /// Absolute URL.
    pub url: String,
}

/// A Recovery Validation Plan: exactly five prioritized tests once generated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Plan {
    /// Stable id of the plan.
    pub plan_id: String,
    /// When the plan was generated (RFC 3339, UTC).
    pub generated_at: DateTime<Utc>,
    /// The tests, ordered by priority; empty while the plan is pending.
    pub items: Vec<PlanItem>,
}

/// One test of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlanItem {
    /// Id of the test, unique within the plan.
    pub test_id: String,
    /// Short human name.
    pub name: String,
    /// Kind of test.
    #[serde(rename = "type")]
    pub kind: PlanItemType,
    /// Priority, 1 is the highest.
    #[schema(minimum = 1, maximum = 5)]
    pub priority: u32,
    /// What the test proves, in one sentence.
    pub what_it_checks: String,
    /// The request the test sends.
    pub target: Target,
    /// The pass criteria, in FixLoop's criteria language (for example `status == 200 && latency_ms < 800`).
    pub pass_criteria: String,
}

/// The HTTP request of a test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Target {
    /// HTTP method.
    pub method: HttpMethod,
    /// Absolute URL.
    pub url: String,
    /// Request headers (name → value); always an object, `{}` when there are none.
    #[serde(default, deserialize_with = "null_as_default")]
    pub headers: BTreeMap<String, String>,
    /// JSON request body; always an object, `{}` when the request has no body.
    #[serde(default, deserialize_with = "null_as_default")]
    #[schema(value_type = Object)]
    pub body_json: JsonObject,
}

/// A validation run (`POST /api/tests/run`, `GET /api/tests/runs/{run_id}`, WebSocket `tests.updated`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TestRun {
    /// Stable id of the run.
    pub run_id: String,
    /// The incident the run validates.
    pub incident_id: String,
    /// When the run started (RFC 3339, UTC).
    pub started_at: DateTime<Utc>,
    /// Status of the whole run.
    pub status: RunStatus,
    /// One entry per plan item, in priority order.
    pub tests: Vec<TestResult>,
}

/// The state of one test inside a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TestResult {
    /// The plan item's `test_id`.
    pub test_id: String,
    /// The plan item's name.
    pub name: String,
    /// Current status.
    pub status: TestStatus,
    /// When the status last changed (RFC 3339, UTC).
    pub last_update_at: DateTime<Utc>,
    /// One-line explanation of the verdict, or `null` while there is none.
    #[schema(required = true)]
    pub details: Option<String>,
}

/// The copilot's answer (`POST /api/copilot/ask`, WebSocket `copilot.answer`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CopilotAnswer {
    /// The incident the question was about, or `null`.
    #[schema(required = true)]
    pub incident_id: Option<String>,
    /// The question as asked.
    pub question: String,
    /// The answer.
    pub answer: String,
    /// Links the answer is grounded in.
    pub citations: Vec<Link>,
    /// When the answer was produced (RFC 3339, UTC).
    pub created_at: DateTime<Utc>,
    /// Additive (optional): who wrote the answer: `MODEL` (the LLM), `GROUNDED` (the embedded copilot, no LLM
    /// configured) or `GROUNDED_FALLBACK` (the LLM missed its budget or failed, and the embedded copilot answered).
    /// Absent from servers that do not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_by: Option<AnsweredBy>,
    /// Additive (optional): with `GROUNDED_FALLBACK`, why the LLM's answer was not used, in a few words (for
    /// example `"the model did not answer within 8 s"`); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
    /// Additive (optional): `true` when the server's safety rule changed the answer (issue 22): while the status
    /// is not `RECOVERED`, the model's sentences about the service's health, recovery, safety or traffic were
    /// left out (or the whole answer withheld) and the server's own status sentence speaks instead. Absent when
    /// the answer is as its author wrote it, and from servers that do not say. `answered_by` still names the
    /// author of what is left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redacted: Option<bool>,
}

/// Payload of the WebSocket `plan.generated` message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlanGenerated {
    /// The incident the plan belongs to.
    pub incident_id: String,
    /// The generated plan.
    pub plan: Plan,
}

/// Payload of the WebSocket `stream.reset` message (additive): why a `GET /ws?since=SEQ` could not be replayed.
///
/// The join snapshot (every service's `system.status`, open incident and current run) follows it, as on a fresh
/// connection, and then the live events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StreamReset {
    /// The `since` the client sent.
    pub since: u64,
    /// The `seq` of the oldest event the server can still replay for every service: a `since` of at least
    /// `oldest_available - 1` resumes without a gap. Larger than the latest `seq` when nothing is kept yet.
    pub oldest_available: u64,
    /// Why the events after `since` cannot be replayed.
    pub reason: StreamResetReason,
}

/// Reads `null` as the type's default, so `headers: null` and `body_json: null` become `{}`.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}
