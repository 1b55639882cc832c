//! Version 1 of the contract: the seed's section 5, plus the error body.
//!
//! Within `v1` the contract only grows (new optional fields, new endpoints); renaming or removing a key or an enum value means `v2`.

mod bodies;
mod ci;
mod enums;
mod error;
mod history;
mod remediation;
mod replicas;
mod requests;
mod ws;

pub use bodies::{
    CopilotAnswer, DatadogSummary, IncidentCard, JsonObject, Link, Plan, PlanGenerated, PlanItem,
    ReloadReport, ServiceState, Signal, StreamReset, SystemStatus, Target, TestResult, TestRun,
};
pub use ci::{
    CiClassification, CiDecider, CiEvidence, CiFailureClass, CiHeal, CiHealDecision, CiIncident,
    CiIncidentList, CiIntake, CiIntakeList, CiIntakeStatus, CiJobStatus, CiLogRequest, CiUpstream,
    DEFAULT_CI_PAGE, MAX_CI_ARTIFACT_LINKS, MAX_CI_LINK_CHARS, MAX_CI_LOG_BYTES, MAX_CI_NAME_CHARS,
    MAX_CI_PAGE,
};
pub use enums::{
    AnsweredBy, HttpMethod, IncidentState, PlanItemType, RunStatus, SimulateMode,
    StreamResetReason, TestStatus,
};
pub use error::{ErrorBody, ErrorDetail, codes};
pub use history::{
    DEFAULT_INCIDENT_PAGE, IncidentDetail, IncidentFigures, IncidentPage, IncidentSummary,
    MAX_INCIDENT_PAGE, TimelineEntry, TimelineKind,
};
pub use remediation::{
    IncidentEscalated, KillSwitchRequest, KillSwitchState, RemediationActionStats,
    RemediationChooser, RemediationDecisionRequest, RemediationList, RemediationMode,
    RemediationOutcome, RemediationProposal, RemediationState, RemediationStats, RiskTier,
};
pub use replicas::{ReplicaInfo, ReplicaLead, ReplicaList};
pub use requests::{
    CopilotAskRequest, MAX_QUESTION_CHARS, NON_BLANK_PATTERN, RunTestsRequest, SetBugRequest,
    SimulateRequest,
};
pub use ws::{WsEnvelope, WsMessage};
