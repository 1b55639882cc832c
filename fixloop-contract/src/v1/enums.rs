//! The contract's enumerations, spelled exactly as section 5.1 of the seed contract spells them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The system-level incident state (`SystemStatus.status`).
///
/// `HEALTHY` → `INCIDENT_ACTIVE` → `VALIDATING` → `RECOVERED`, and back to `HEALTHY` once the incident is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IncidentState {
    /// No incident is active.
    Healthy,
    /// An incident was detected; its plan is pending or being generated.
    IncidentActive,
    /// Validation tests are running or being rerun.
    Validating,
    /// Every test of the latest run passed and the signals are back to normal.
    Recovered,
}

impl IncidentState {
    /// The state as the wire spells it (`"INCIDENT_ACTIVE"`), for messages and logs.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "HEALTHY",
            Self::IncidentActive => "INCIDENT_ACTIVE",
            Self::Validating => "VALIDATING",
            Self::Recovered => "RECOVERED",
        }
    }
}

/// The status of a whole validation run (`TestRun.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    /// Accepted, not started yet.
    Queued,
    /// At least one test is still pending or running.
    Running,
    /// The run finished and every test passed.
    Completed,
    /// The run finished with at least one failing test, or could not finish (runner unavailable, deadline
    /// exceeded, cancelled); the reason is in the failing tests' `details`.
    Failed,
}

impl RunStatus {
    /// The status as the wire spells it (`"COMPLETED"`), for messages and logs.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "QUEUED",
            Self::Running => "RUNNING",
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
        }
    }
}

/// The status of one test inside a run (`TestRun.tests[].status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TestStatus {
    /// Not started yet.
    Pending,
    /// Request in flight.
    Running,
    /// The pass criteria held.
    Pass,
    /// The pass criteria did not hold, or the test could not be executed.
    Fail,
}

/// The kind of a plan item (`PlanItem.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PlanItemType {
    /// A direct call to an HTTP API.
    Api,
    /// A user-interface check.
    Ui,
    /// A synthetic (scripted, multi-step or monitoring-style) check.
    Synthetic,
}

/// The HTTP method of a test target (`PlanItem.target.method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HttpMethod {
    /// `GET`
    Get,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `DELETE`
    Delete,
}

impl HttpMethod {
    /// The method as it appears on the wire and in an HTTP request line.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Delete => "DELETE",
        }
    }
}

/// The mode of `POST /api/incidents/simulate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SimulateMode {
    /// Open an incident now, through the same pipeline as a real detection.
    IncidentOn,
    /// Close the simulated incident.
    IncidentOff,
}

/// Why a `GET /ws?since=SEQ` gets `stream.reset` instead of a replay (`StreamReset.reason`, additive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StreamResetReason {
    /// Some events after `since` are no longer kept (the server keeps a bounded number per service).
    TooOld,
    /// `since` is beyond the latest `seq` this server issued: it comes from another process (the server
    /// restarted, and a restart starts a new sequence).
    TooNew,
}

/// Who wrote a copilot answer (`CopilotAnswer.answered_by`, additive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AnsweredBy {
    /// The configured LLM, its answer checked by FixLoop's safety rule (and replaced when it claimed recovery
    /// before RECOVERED).
    Model,
    /// The embedded grounded copilot, because no LLM is configured: an answer from the state alone.
    Grounded,
    /// The embedded grounded copilot, because the LLM missed its time budget or failed (`fallback_reason` says
    /// which).
    GroundedFallback,
}

impl AnsweredBy {
    /// The value as the wire spells it (`"GROUNDED_FALLBACK"`), for metrics and logs.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Model => "MODEL",
            Self::Grounded => "GROUNDED",
            Self::GroundedFallback => "GROUNDED_FALLBACK",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `as_str` is the serde spelling, so a message never names a state the wire does not.
    #[test]
    fn as_str_is_the_wire_spelling() {
        for state in [
            IncidentState::Healthy,
            IncidentState::IncidentActive,
            IncidentState::Validating,
            IncidentState::Recovered,
        ] {
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
        }
        for status in [
            RunStatus::Queued,
            RunStatus::Running,
            RunStatus::Completed,
            RunStatus::Failed,
        ] {
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
        for by in [
            AnsweredBy::Model,
            AnsweredBy::Grounded,
            AnsweredBy::GroundedFallback,
        ] {
            assert_eq!(serde_json::to_value(by).unwrap(), by.as_str());
        }
        for method in [
            HttpMethod::Get,
            HttpMethod::Post,
            HttpMethod::Put,
            HttpMethod::Delete,
        ] {
            assert_eq!(serde_json::to_value(method).unwrap(), method.as_str());
        }
    }
}
