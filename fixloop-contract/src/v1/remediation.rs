//! Remediation (additive): the proposals FixLoop made for an incident and where they stand
//! (`GET /api/remediations?incident_id=`), an operator's approval or rejection of one
//! (`POST /api/remediations/{proposal_id}/approve` and `/reject`, compare-and-set on `version`), the global kill
//! switch (`POST /api/remediation/kill-switch`), the success figures per (incident kind, action)
//! (`GET /api/remediations/stats`), and the WebSocket types `remediation.proposed`, `remediation.updated` and
//! `incident.escalated`, which only a client that connected with `GET /ws?events=remediation` receives.
//!
//! The engine decides; these types only show its decisions. A proposal's `mode` and `tier` use the spellings of the
//! service profile (`monitor-only`, `never-auto`), its `state` and `outcome` the contract's upper-case style.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How a service's remediation runs (`[service.remediation] mode`, or `FIXLOOP_REMEDIATION_MODE` for every service).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RemediationMode {
    /// Propose and record; never act (the default).
    MonitorOnly,
    /// Decide and record what would have run, and what the verdict then was; never act.
    Shadow,
    /// Go through every step, but carry out nothing: the exact request or argv is logged.
    DryRun,
    /// Safe steps run; risky ones wait for an approval; never-auto ones are left to a human.
    Auto,
}

/// A strategy step's risk tier, for the service's environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RiskTier {
    /// May run without asking (in mode `auto`).
    Safe,
    /// Needs an operator's approval (the `approve` role).
    Risky,
    /// Never carried out by FixLoop: proposed to a human.
    NeverAuto,
}

/// Who picked a proposal's action (`RemediationProposal.chosen_by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RemediationChooser {
    /// The strategy's rules: rank, success rate, declared order.
    Rules,
    /// The configured model, among the steps ready at that moment; its pick passed FixLoop's checks.
    Model,
}

/// Where a proposal stands (`RemediationProposal.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RemediationState {
    /// `monitor-only`: proposed and recorded, never carried out.
    Recorded,
    /// `shadow`: FixLoop would have acted (or asked).
    WouldRun,
    /// Waiting for an operator's approval (`expires_at` says until when).
    AwaitingApproval,
    /// An operator rejected it (`decided_by`).
    Rejected,
    /// Nobody approved it before `expires_at`.
    Expired,
    /// Withdrawn before it ran: the kill switch, or the incident closed.
    Withdrawn,
    /// `never-auto`: left to a human.
    Manual,
    /// Being carried out.
    Executing,
    /// Carried out; alerts caused by the action itself are ignored for a while.
    Suppressing,
    /// Carried out; waiting for the verdict of the runs that follow it.
    Judging,
    /// Ended: `outcome` says how.
    Finished,
}

/// The verdict on a carried-out action (`RemediationProposal.outcome`, set when `state` is `FINISHED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RemediationOutcome {
    /// The incident was RECOVERED (both gates) after it.
    Effective,
    /// A run started after it failed.
    Ineffective,
    /// No verdict in time, or the incident closed first.
    Inconclusive,
    /// The executor failed or missed its deadline.
    Failed,
    /// The kill switch stopped it.
    Cancelled,
}

/// One remediation proposal: an action of the service's profile, chosen for an incident, and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RemediationProposal {
    /// Its id (unique within the server).
    pub proposal_id: String,
    /// The incident it is for.
    pub incident_id: String,
    /// The watched service.
    pub service: String,
    /// The strategy's incident kind (from the profile).
    pub kind: String,
    /// The declared action's id (from the profile).
    pub action_id: String,
    /// The tier that applied, for the service's environment.
    pub tier: RiskTier,
    /// The mode it was proposed in.
    pub mode: RemediationMode,
    /// Bumped at every change; an approval or rejection names the version it saw (compare-and-set).
    pub version: u64,
    /// Where it stands.
    pub state: RemediationState,
    /// The verdict, once `state` is `FINISHED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<RemediationOutcome>,
    /// When it was proposed.
    pub proposed_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When an approval request lapses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// Who approved or rejected it: an API token's name, or the client's address when the API is open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// Who picked the action (absent from servers that predate the model's choice: the rules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chosen_by: Option<RemediationChooser>,
    /// When a model was asked to pick: what it picked and what FixLoop made of it (`model chose restart (reason)`,
    /// or `model chose "x": refused: ...; rule-based choice y`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choice: Option<String>,
    /// One line about its latest change, for people.
    pub note: String,
}

/// Body of `GET /api/remediations`: the proposals, newest first, and the kill switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RemediationList {
    /// The proposals (of the incident asked for, or of every service's recent incidents), newest first.
    pub proposals: Vec<RemediationProposal>,
    /// The global kill switch.
    pub kill_switch: KillSwitchState,
}

/// Body of `POST /api/remediations/{proposal_id}/approve` and `/reject`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RemediationDecisionRequest {
    /// The proposal's `version` the operator saw; another version is refused with 409 `version_conflict`.
    pub version: u64,
}

/// Body of `POST /api/remediation/kill-switch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KillSwitchRequest {
    /// `true` stops every action at once (the one in flight is cancelled, approvals are refused); `false` releases.
    pub engaged: bool,
}

/// The global kill switch, as it stands (it survives restarts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KillSwitchState {
    /// Whether every remediation action is stopped.
    pub engaged: bool,
    /// Who last switched it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_by: Option<String>,
    /// When it was last switched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_at: Option<DateTime<Utc>>,
}

/// Success figures of one action for one incident kind of one service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RemediationActionStats {
    /// The watched service.
    pub service: String,
    /// The incident kind.
    pub kind: String,
    /// The action.
    pub action_id: String,
    /// Times it was carried out and judged (kill-switch cancellations excluded).
    pub attempts: u32,
    /// Times it was judged effective.
    pub effective: u32,
    /// `effective / attempts`, from 0 to 1; `null` before any attempt.
    pub success_rate: Option<f64>,
}

/// Body of `GET /api/remediations/stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RemediationStats {
    /// One row per (service, incident kind, action) that was ever attempted.
    pub actions: Vec<RemediationActionStats>,
}

/// Payload of the WebSocket type `incident.escalated`: the incident needs a human.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IncidentEscalated {
    /// The incident.
    pub incident_id: String,
    /// The watched service.
    pub service: String,
    /// Why: the strategy is exhausted, the incident's time budget is spent, or the recovery gate cannot judge the
    /// signals (`needs a human: …`).
    pub reason: String,
    /// When it was escalated.
    pub escalated_at: DateTime<Utc>,
}
