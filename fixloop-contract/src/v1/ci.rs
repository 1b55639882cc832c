//! CI failure intake (additive): `POST /api/ci/logs` receives a failed CI job's log excerpt, classifies it and
//! answers what it received; `GET /api/ci/logs` lists the latest intakes.
//!
//! CI self-heal (additive): when the server's profile has a `[ci]` section, a failed job whose class the policy
//! lists is rerun through the CI provider's API (never a code change), and the intake carries the decision and
//! the provider's answer as `heal`. A later intake of the same run with status `PASSED` closes the run's CI
//! incident: `RECOVERED` only when it follows a rerun FixLoop requested.
//!
//! The intake has its own bearer token (not one of the API's tokens): a CI system holds only that one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::bodies::JsonObject;
use super::enums::IncidentState;

/// Most bytes (UTF-8) of `CiLogRequest.log_excerpt`; a longer excerpt is refused with 413 `payload_too_large`.
/// Send the log's tail: the cause of a failure is usually near its end.
pub const MAX_CI_LOG_BYTES: usize = 64 * 1024;
/// Most links in `CiLogRequest.artifact_links`.
pub const MAX_CI_ARTIFACT_LINKS: usize = 20;
/// Longest artifact link, in characters.
pub const MAX_CI_LINK_CHARS: usize = 2048;
/// Longest `repository`, `run_id` or `job`, in characters.
pub const MAX_CI_NAME_CHARS: usize = 200;
/// Most intakes one `GET /api/ci/logs` returns (`limit` is at most this).
pub const MAX_CI_PAGE: u32 = 100;
/// The page size of `GET /api/ci/logs` when `limit` is absent.
pub const DEFAULT_CI_PAGE: u32 = 20;

/// How the CI job ended (`CiLogRequest.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CiJobStatus {
    /// The job failed.
    Failed,
    /// The job was cancelled (by a person, a newer run, or the runner going away).
    Cancelled,
    /// The job ran out of its time limit.
    TimedOut,
    /// The job passed (additive: sent after a rerun, it closes the run's CI incident).
    Passed,
}

/// Body of `POST /api/ci/logs`: one failed CI job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CiLogRequest {
    /// The repository, as the CI system names it (`owner/name`, a GitLab project path): 1 to 200 characters.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub repository: String,
    /// The pipeline or workflow run's id: 1 to 200 characters.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub run_id: String,
    /// The failed job's name: 1 to 200 characters.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub job: String,
    /// How the job ended.
    pub status: CiJobStatus,
    /// The job's log, or its tail: at most 65,536 bytes of UTF-8 (413 `payload_too_large` beyond).
    #[schema(max_length = 65536)]
    pub log_excerpt: String,
    /// Links to the run's artifacts and logs: `http` or `https` URLs of at most 2,048 characters, at most 20.
    #[serde(default)]
    #[schema(max_items = 20)]
    pub artifact_links: Vec<String>,
    /// The job's id at the CI provider (additive, optional): GitLab's job retry needs it; 1 to 20 digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^[0-9]{1,20}$")]
    pub job_id: Option<String>,
}

/// What the intake did (`CiIntake.status`): always `received` (the word of the CI log receiver it replaces).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CiIntakeStatus {
    /// Received, classified and recorded.
    Received,
}

/// Why a CI job failed, as the deterministic classifier read its log (`CiClassification.class`). The names are
/// the classifier's stable snake_case names, as a self-heal policy writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CiFailureClass {
    /// A test's assertion failed.
    TestAssertion,
    /// A test, step or job ran out of time.
    Timeout,
    /// A network or DNS failure.
    Network,
    /// Dependencies could not be resolved, downloaded or built.
    DependencyInstall,
    /// A database migration failed.
    Migration,
    /// A process ran out of memory (exit code 137, OOM kill).
    OutOfMemory,
    /// A linter or formatter check failed.
    LintFormat,
    /// The runner or its infrastructure was lost (shutdown signal, lost communication, full disk).
    Infrastructure,
    /// Nothing in the log says why.
    Unknown,
}

/// One log line that supports a classification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CiEvidence {
    /// The line's number in `log_excerpt`, from 1.
    #[schema(minimum = 1)]
    pub line: u32,
    /// The line, trimmed, at most 240 characters.
    pub text: String,
}

/// The classifier's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CiClassification {
    /// The class.
    pub class: CiFailureClass,
    /// How sure the classifier is, from 0 to 1: the strength of the evidence lines scaled by the margin over the
    /// runner-up class; always 0 for `unknown`.
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub confidence: f64,
    /// The matched lines, in log order, at most 10.
    pub evidence: Vec<CiEvidence>,
    /// Who made this classification (additive): `rules` (the deterministic classifier) or `llm` (a model's
    /// refinement that passed the checks: a known class, a confidence in 0..=1, evidence lines that occur in the
    /// excerpt, never surer than the classifier without such a line). Absent in intakes recorded before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refined_by: Option<CiDecider>,
    /// The deterministic classifier's class when the model's refinement changed it (additive); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules_class: Option<CiFailureClass>,
}

/// Who made a CI classification (`CiClassification.refined_by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CiDecider {
    /// The deterministic classifier (no model configured, or the model's answer was refused, late or garbage).
    Rules,
    /// A model's refinement, checked against the excerpt.
    Llm,
}

/// The downstream's answer to a forwarded intake (`CiIntake.upstream`), or why there is none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CiUpstream {
    /// The downstream's HTTP status; `null` when it did not answer (see `error`).
    pub status: Option<u16>,
    /// The downstream's answer when it is a JSON object (read up to 16 KiB); `null` when it sent none, or anything else.
    #[schema(value_type = Option<Object>)]
    pub body: Option<serde_json::Value>,
    /// Why forwarding failed (timeout, connection refused, an answer too large); `null` when it answered.
    pub error: Option<String>,
}

/// The answer of `POST /api/ci/logs`, and one item of `GET /api/ci/logs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CiIntake {
    /// Always `received`.
    pub status: CiIntakeStatus,
    /// The intake's id.
    pub id: String,
    /// When the server received it (RFC 3339, UTC).
    pub received_at: DateTime<Utc>,
    /// The request's repository.
    pub repository: String,
    /// The request's run id.
    pub run_id: String,
    /// The request's job.
    pub job: String,
    /// The request's status.
    pub job_status: CiJobStatus,
    /// The request's artifact links.
    pub artifact_links: Vec<String>,
    /// The size of the received log excerpt, in bytes.
    pub log_bytes: u64,
    /// The classification of the log excerpt.
    pub classification: CiClassification,
    /// The downstream's answer when forwarding is configured (`FIXLOOP_CI_FORWARD_URL`), else `null`.
    pub upstream: Option<CiUpstream>,
    /// The self-heal decision and report (additive): absent when the server has no `[ci]` self-heal section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heal: Option<CiHeal>,
}

/// What self-heal decided about an intake (`CiHeal.decision`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CiHealDecision {
    /// A rerun of the failed job was asked of the CI provider (`report` says how it answered).
    Rerun,
    /// Not a failure a rerun may fix (class not in the policy, low confidence, a cancelled job): for a human.
    NotEligible,
    /// The policy's reruns for this (run, class) are spent: escalated to a human.
    AttemptsExhausted,
    /// The job passed: nothing to do.
    NotNeeded,
}

/// The self-heal record of one intake (`CiIntake.heal`): what was decided, on what, and what the provider did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CiHeal {
    /// The decision.
    pub decision: CiHealDecision,
    /// One sentence for people: why.
    pub reason: String,
    /// The run's CI incident after this intake, in the incident states' words: `INCIDENT_ACTIVE` (failed, for a
    /// human), `VALIDATING` (a rerun is under way), `RECOVERED` (a rerun FixLoop requested passed), `HEALTHY`
    /// (passed without a rerun of FixLoop's).
    pub incident_status: IncidentState,
    /// Whether the incident was handed to a human because the reruns are spent (or the rerun could not be asked).
    pub escalated: bool,
    /// Reruns requested for this (run, class) so far, this one included.
    #[schema(minimum = 0)]
    pub attempts: u32,
    /// The policy's most reruns per (run, class).
    #[schema(minimum = 1)]
    pub max_attempts: u32,
    /// What the decision was made on: provider, project, run, job, class, confidence, the policy's eligible classes.
    #[schema(value_type = Object)]
    pub context: JsonObject,
    /// What the provider answered to a rerun (`provider`, `status`, `new_job_id`, `web_url`, or `error` and
    /// `error_kind`); `null` when nothing was asked.
    #[schema(value_type = Option<Object>)]
    pub report: Option<JsonObject>,
}

/// The answer of `GET /api/ci/logs`: the latest intakes, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CiIntakeList {
    /// The intakes, newest first.
    pub intakes: Vec<CiIntake>,
}

/// One CI incident: the intakes of one (repository, run id), summed up (`GET /api/ci/incidents`, additive).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CiIncident {
    /// The repository.
    pub repository: String,
    /// The pipeline or workflow run's id.
    pub run_id: String,
    /// Where the incident stands after the run's latest intake, in the incident states' words: `INCIDENT_ACTIVE`
    /// (failed, for a human), `VALIDATING` (a rerun FixLoop requested is under way), `RECOVERED` (a rerun FixLoop
    /// requested passed), `HEALTHY` (passed without a rerun of FixLoop's).
    pub state: IncidentState,
    /// The class of the run's latest failed intake (a run whose intakes all passed is not listed).
    pub class: CiFailureClass,
    /// Reruns FixLoop requested for the run.
    #[schema(minimum = 0)]
    pub attempts: u32,
    /// Whether the run was handed to a human (reruns spent, or a rerun could not be requested).
    pub escalated: bool,
    /// How many intakes the run has (at most the latest 100 are read).
    #[schema(minimum = 1)]
    pub intakes: u32,
    /// The latest intake's job.
    pub job: String,
    /// The latest intake's job status.
    pub latest_job_status: CiJobStatus,
    /// When the run's first intake was received (RFC 3339, UTC).
    pub first_intake_at: DateTime<Utc>,
    /// When its latest intake was received (RFC 3339, UTC).
    pub last_intake_at: DateTime<Utc>,
}

/// The answer of `GET /api/ci/incidents`: one CI incident per (repository, run id), newest last intake first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CiIncidentList {
    /// The incidents, newest first.
    pub incidents: Vec<CiIncident>,
}
