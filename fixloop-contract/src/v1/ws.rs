//! The WebSocket envelope `{type, payload, ts}` (plus the additive `seq`), its five message types (seed contract
//! section 5.4), the additive `stream.reset` marker, which only a client resuming with `GET /ws?since=` receives, and
//! the additive event groups a client opts into with `GET /ws?events=` (`remediation`: `remediation.proposed`,
//! `remediation.updated`, `incident.escalated`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::bodies::{
    CopilotAnswer, IncidentCard, PlanGenerated, StreamReset, SystemStatus, TestRun,
};
use super::remediation::{IncidentEscalated, RemediationProposal};

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
    /// Position in the server's event stream (additive, omitted when absent; v1 clients ignore it).
    ///
    /// Every event a server broadcasts gets the next number of one counter shared by all its watched services, so
    /// `seq` increases strictly along a connection's events; a client must not assume where it starts (the
    /// reference server starts at its start time in microseconds, so a restarted server's numbers are above the
    /// previous process's). A join-snapshot message is state, not an event: it carries the `seq` of the latest event
    /// it already reflects, so several messages may share a value. A client remembers the largest `seq` it saw and
    /// reconnects with `GET /ws?since=<that>` to get exactly the events it missed; a `since` the server cannot
    /// replay from (too old, from another process, or beyond its current value) gets `stream.reset` and the
    /// snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

/// The WebSocket message types, tagged by `type` with the body under `payload`: the seed's five, the additive
/// `stream.reset`, and the additive types of the `remediation` event group.
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
    /// `stream.reset` (additive): sent first, and only, to a client that asked `GET /ws?since=SEQ` when the
    /// server cannot replay what followed `SEQ`; the join snapshot follows it. A client that never sends `since`
    /// never receives it.
    #[serde(rename = "stream.reset")]
    StreamReset(StreamReset),
    /// `remediation.proposed` (additive, event group `remediation`): FixLoop chose an action of the service's
    /// strategy for the open incident. Only a client that connected with `GET /ws?events=remediation` receives it.
    #[serde(rename = "remediation.proposed")]
    RemediationProposed(RemediationProposal),
    /// `remediation.updated` (additive, event group `remediation`): a proposal changed (its `version` grew): it
    /// awaits an approval, runs, was judged, was rejected... Only a client that connected with
    /// `GET /ws?events=remediation` receives it; its join snapshot carries the open incident's proposals as
    /// `remediation.updated` messages.
    #[serde(rename = "remediation.updated")]
    RemediationUpdated(RemediationProposal),
    /// `incident.escalated` (additive, event group `remediation`): the incident needs a human (the strategy is
    /// exhausted, its time budget is spent, or its signals cannot be judged); sent once per incident. Only a client that connected with `GET /ws?events=remediation`
    /// receives it.
    #[serde(rename = "incident.escalated")]
    IncidentEscalated(IncidentEscalated),
}

impl WsMessage {
    /// The seed's five `type` values, in the order the seed lists them.
    pub const TYPES: [&'static str; 5] = [
        "system.status",
        "incident.created",
        "plan.generated",
        "tests.updated",
        "copilot.answer",
    ];

    /// The `type` of the resume marker [`WsMessage::StreamReset`].
    pub const STREAM_RESET: &'static str = "stream.reset";

    /// The event group a client opts into with `GET /ws?events=remediation`.
    pub const REMEDIATION_GROUP: &'static str = "remediation";

    /// The `type`s of the `remediation` event group.
    pub const REMEDIATION_TYPES: [&'static str; 3] = [
        "remediation.proposed",
        "remediation.updated",
        "incident.escalated",
    ];

    /// Every event group a client may name in `GET /ws?events=` (a comma-separated list of them).
    pub const EVENT_GROUPS: [&'static str; 1] = [Self::REMEDIATION_GROUP];

    /// Every `type` value: the seed's five, then the additive ones.
    pub const ALL_TYPES: [&'static str; 9] = [
        Self::TYPES[0],
        Self::TYPES[1],
        Self::TYPES[2],
        Self::TYPES[3],
        Self::TYPES[4],
        Self::STREAM_RESET,
        Self::REMEDIATION_TYPES[0],
        Self::REMEDIATION_TYPES[1],
        Self::REMEDIATION_TYPES[2],
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
            Self::StreamReset(_) => Self::STREAM_RESET,
            Self::RemediationProposed(_) => Self::REMEDIATION_TYPES[0],
            Self::RemediationUpdated(_) => Self::REMEDIATION_TYPES[1],
            Self::IncidentEscalated(_) => Self::REMEDIATION_TYPES[2],
        }
    }

    /// The event group a client must name in `GET /ws?events=` to receive this message; `None` when every client
    /// receives it (the seed's five; `stream.reset` goes only to a client that asked `since`).
    #[must_use]
    pub const fn event_group(&self) -> Option<&'static str> {
        match self {
            Self::SystemStatus(_)
            | Self::IncidentCreated(_)
            | Self::PlanGenerated(_)
            | Self::TestsUpdated(_)
            | Self::CopilotAnswer(_)
            | Self::StreamReset(_) => None,
            Self::RemediationProposed(_)
            | Self::RemediationUpdated(_)
            | Self::IncidentEscalated(_) => Some(Self::REMEDIATION_GROUP),
        }
    }

    /// Wraps the message in an envelope stamped `ts`, without `seq`.
    #[must_use]
    pub const fn at(self, ts: DateTime<Utc>) -> WsEnvelope {
        WsEnvelope {
            message: self,
            ts,
            seq: None,
        }
    }
}
