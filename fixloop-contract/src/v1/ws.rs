//! The WebSocket envelope `{type, payload, ts}` and its five message types (seed contract section 5.4).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::bodies::{CopilotAnswer, IncidentCard, PlanGenerated, SystemStatus, TestRun};

/// One WebSocket message as sent on `GET /ws`: `{"type": ..., "payload": ..., "ts": ...}`.
///
/// The envelope is defined once: [`WsMessage`] carries `type` and `payload`, the envelope adds `ts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WsEnvelope {
    /// The message type and its payload.
    #[serde(flatten)]
    pub message: WsMessage,
    /// When the message was emitted (RFC 3339, UTC).
    pub ts: DateTime<Utc>,
}

/// The five WebSocket message types, tagged by `type` with the body under `payload`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload")]
pub enum WsMessage {
    /// `system.status`: sent on every status change.
    #[serde(rename = "system.status")]
    SystemStatus(SystemStatus),
    /// `incident.created`: sent once per incident, with an empty plan.
    #[serde(rename = "incident.created")]
    IncidentCreated(IncidentCard),
    /// `plan.generated`: sent when the plan is validated.
    #[serde(rename = "plan.generated")]
    PlanGenerated(PlanGenerated),
    /// `tests.updated`: sent on every test status change.
    #[serde(rename = "tests.updated")]
    TestsUpdated(TestRun),
    /// `copilot.answer`: sent when the copilot answers.
    #[serde(rename = "copilot.answer")]
    CopilotAnswer(CopilotAnswer),
}

impl WsMessage {
    /// The five `type` values, in the order the seed lists them.
    pub const TYPES: [&'static str; 5] = [
        "system.status",
        "incident.created",
        "plan.generated",
        "tests.updated",
        "copilot.answer",
    ];

    /// The message's `type` string.
    #[must_use]
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::SystemStatus(_) => Self::TYPES[0],
            Self::IncidentCreated(_) => Self::TYPES[1],
            Self::PlanGenerated(_) => Self::TYPES[2],
            Self::TestsUpdated(_) => Self::TYPES[3],
            Self::CopilotAnswer(_) => Self::TYPES[4],
        }
    }

    /// Wraps the message in an envelope stamped `ts`.
    #[must_use]
    pub const fn at(self, ts: DateTime<Utc>) -> WsEnvelope {
        WsEnvelope { message: self, ts }
    }
}
