//! Incident history (additive): the list of recent incidents (`GET /api/incidents`) and one incident with its
//! timeline and figures (`GET /api/incidents/{incident_id}`).
//!
//! Every fact here is the engine's own: the timeline records what the engine decided and published, and the
//! figures are computed from the engine's own times.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::bodies::IncidentCard;
use super::enums::{IncidentState, RunStatus};

/// Most incidents one page of `GET /api/incidents` holds (`limit` is at most this).
pub const MAX_INCIDENT_PAGE: u32 = 100;

/// The page size of `GET /api/incidents` when `limit` is absent.
pub const DEFAULT_INCIDENT_PAGE: u32 = 20;

/// What happened at one moment of an incident (`TimelineEntry.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TimelineKind {
    /// The incident was opened (by polling, an alert, a simulation or failing probes); `summary` says why.
    Detected,
    /// The incident was announced (`incident.created`), with its signals and evidence.
    Announced,
    /// A plan passed validation (`plan.generated`); `plan_id` names it.
    PlanValidated,
    /// A validation run started; `run_id` names it.
    RunStarted,
    /// A validation run ended; `run_status` is COMPLETED or FAILED and `summary` says how.
    RunFinished,
    /// The system status changed while the incident was open; `status` is the new one.
    StatusChanged,
    /// The copilot answered a question about the incident; `summary` is the question.
    CopilotAnswered,
    /// The incident was closed; `summary` is the reason.
    Resolved,
    /// A plan attempt failed: the candidate was rejected by the validator (`summary` gives the attempt, the number
    /// of violations and the first one) or the planner failed or missed its deadline.
    PlanRejected,
    /// The recovery verdict after a run, or when the signal gate came to hold later: `summary` starts with
    /// `RECOVERED:` and the gates that held, or with `not RECOVERED:` and what blocks it (tests, signals, no data).
    RecoveryChecked,
    /// The recovery gate could not judge the signals (no traffic, too few requests, a degraded source): `summary`
    /// gives the reason; written when a run of inconclusive measurements starts, and when they become conclusive
    /// again.
    RecoveryInconclusive,
    /// The recovery gate stayed inconclusive for the configured number of checks in a row: the incident needs a
    /// human (it never turns RECOVERED on missing data); `summary` says why.
    NeedsHuman,
    /// An operator act on remediation (additive): an approval or rejection of a proposal, or the kill switch
    /// engaged or released while the incident was open; `summary` says who did what to which proposal, at which
    /// version.
    Remediation,
}

/// One entry of an incident's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TimelineEntry {
    /// When it happened (RFC 3339, UTC).
    pub at: DateTime<Utc>,
    /// What happened.
    pub kind: TimelineKind,
    /// One line about it, for people.
    pub summary: String,
    /// The run concerned (RUN_STARTED, RUN_FINISHED), else `null`.
    #[schema(required = true)]
    pub run_id: Option<String>,
    /// The run's status (RUN_FINISHED), else `null`.
    #[schema(required = true)]
    pub run_status: Option<RunStatus>,
    /// The new system status (STATUS_CHANGED), else `null`.
    #[schema(required = true)]
    pub status: Option<IncidentState>,
    /// The plan concerned (PLAN_VALIDATED), else `null`.
    #[schema(required = true)]
    pub plan_id: Option<String>,
}

/// The figures of an incident, from the engine's own times. A figure is `null` until its moment has come (or
/// when it does not apply); durations are in seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IncidentFigures {
    /// When the first hot sample (error rate above the trigger) of the detection window that opened the incident
    /// was received; `null` when the incident was not opened by polling (an alert, a simulation, failing probes).
    #[schema(required = true)]
    pub first_hot_sample_at: Option<DateTime<Utc>>,
    /// When the first validation run started, or `null`.
    #[schema(required = true)]
    pub first_run_at: Option<DateTime<Utc>>,
    /// When the incident last became RECOVERED, or `null` (never recovered, or relapsed and not recovered again).
    #[schema(required = true)]
    pub recovered_at: Option<DateTime<Utc>>,
    /// From `first_hot_sample_at` to `detected_at`: how long the trigger took to be sure; `null` when
    /// `first_hot_sample_at` is.
    #[schema(required = true, minimum = 0.0)]
    pub time_to_detect_seconds: Option<f64>,
    /// From `detected_at` to `first_run_at` (context, planning and validation of the plan).
    #[schema(required = true, minimum = 0.0)]
    pub time_to_first_run_seconds: Option<f64>,
    /// From `detected_at` to `recovered_at`.
    #[schema(required = true, minimum = 0.0)]
    pub time_to_recover_seconds: Option<f64>,
}

/// One incident in the list (`GET /api/incidents`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IncidentSummary {
    /// Stable id of the incident.
    pub incident_id: String,
    /// One-line human title.
    pub title: String,
    /// The watched service.
    pub service: String,
    /// When the incident was detected (RFC 3339, UTC).
    pub detected_at: DateTime<Utc>,
    /// When the incident was closed (RFC 3339, UTC), or `null` while it is open.
    #[schema(required = true)]
    pub incident_end: Option<DateTime<Utc>>,
    /// The status while the incident is open (INCIDENT_ACTIVE, VALIDATING, RECOVERED), or `null` once closed.
    #[schema(required = true)]
    pub status: Option<IncidentState>,
    /// Why it closed (for example `soak window elapsed`), or `null` while open.
    #[schema(required = true)]
    pub resolution: Option<String>,
}

/// A page of incidents, newest first (`GET /api/incidents`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IncidentPage {
    /// At most `limit` incidents, newest `detected_at` first (ties by `incident_id`, descending).
    pub incidents: Vec<IncidentSummary>,
    /// The `before` value that fetches the next page (the last incident's id), or `null` when this page is the
    /// last one.
    #[schema(required = true)]
    pub next_before: Option<String>,
}

/// One incident with its timeline and figures (`GET /api/incidents/{incident_id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IncidentDetail {
    /// The incident as the dashboard shows it, with its latest plan.
    pub incident: IncidentCard,
    /// The watched service.
    pub service: String,
    /// When the incident was closed (RFC 3339, UTC), or `null` while it is open.
    #[schema(required = true)]
    pub incident_end: Option<DateTime<Utc>>,
    /// The status while the incident is open, or `null` once closed.
    #[schema(required = true)]
    pub status: Option<IncidentState>,
    /// Why it closed, or `null` while open.
    #[schema(required = true)]
    pub resolution: Option<String>,
    /// What happened, oldest first; at most 200 entries (beyond that the oldest after DETECTED are dropped).
    pub timeline: Vec<TimelineEntry>,
    /// Times to detect, to first run and to recover.
    pub figures: IncidentFigures,
}
