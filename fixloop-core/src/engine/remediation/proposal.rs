//! The public face of remediation: a [`Proposal`] and where it stands ([`ProposalState`], [`Outcome`]), the success
//! figures ([`ActionStats`]) and what the engine tells people ([`Notification`]).

use fixloop_contract::chrono::{DateTime, Utc};

use crate::engine::PortFailure;
use crate::ids::{EffectId, IncidentId, ProposalId};
use crate::remediation::{RemediationMode, RiskTier};

/// A remediation proposal and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// Its id.
    pub id: ProposalId,
    /// The incident it is for.
    pub incident_id: IncidentId,
    /// The strategy's incident kind.
    pub kind: String,
    /// The incident fingerprint strikes are counted under (`kind|top error`, or the title without a top error).
    pub fingerprint: String,
    /// The declared action.
    pub action_id: String,
    /// The tier that applied (the service's environment considered).
    pub tier: RiskTier,
    /// The mode it was proposed in.
    pub mode: RemediationMode,
    /// Bumped at every change; an approval names the version it saw.
    pub version: u64,
    /// Where it stands.
    pub state: ProposalState,
    /// When it was proposed.
    pub proposed_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When an approval request lapses.
    pub expires_at: Option<DateTime<Utc>>,
    /// Who approved or rejected it.
    pub decided_by: Option<String>,
    /// Who picked the action: the rules, or the configured model (its pick passed the gate).
    pub chosen_by: ChosenBy,
    /// When a model was asked: what it picked and what code made of it (`model chose restart (reason)`, or
    /// `model chose "x": refused: ...; rule-based choice y`), kept as the state changes.
    pub choice: Option<String>,
    /// One line about its latest change, for people.
    pub note: String,
}

/// Who picked a [`Proposal`]'s action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChosenBy {
    /// The rules: rank, success rate, declared order.
    #[default]
    Rules,
    /// The configured model, among the steps ready at that moment.
    Model,
}

impl ChosenBy {
    /// `rules` or `model`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rules => "rules",
            Self::Model => "model",
        }
    }
}

/// Where a [`Proposal`] stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProposalState {
    /// `monitor-only`: proposed and recorded, never carried out.
    Recorded,
    /// `shadow`: FixLoop would have acted (or asked); the verdict of the next run is pending.
    WouldRun,
    /// Waiting for an operator (risky tier).
    AwaitingApproval,
    /// An operator rejected it.
    Rejected,
    /// Nobody approved it before it lapsed.
    Expired,
    /// Withdrawn before it ran: the kill switch, or the incident closed.
    Withdrawn,
    /// `never-auto`: left to a human.
    Manual,
    /// The driver is carrying it out.
    Executing {
        /// The [`Effect::ExecuteAction`](crate::engine::Effect::ExecuteAction) to answer.
        effect: EffectId,
        /// When it is given up.
        deadline: DateTime<Utc>,
    },
    /// Done; its side effects are ignored until `until`.
    Suppressing {
        /// End of the suppression window.
        until: DateTime<Utc>,
    },
    /// Waiting for a verdict on runs started from `from` on.
    Judging {
        /// Runs started at or after this judge it; signals before it were dropped.
        from: DateTime<Utc>,
        /// Without a verdict by then, it is inconclusive.
        until: DateTime<Utc>,
    },
    /// The end.
    Finished(Outcome),
}

impl ProposalState {
    /// Whether it holds the service's one remediation slot.
    #[must_use]
    pub fn is_active(&self) -> bool {
        matches!(
            self,
            Self::AwaitingApproval
                | Self::Executing { .. }
                | Self::Suppressing { .. }
                | Self::Judging { .. }
        )
    }

    /// A short name (`awaiting_approval`, `executing`, `finished:effective`...).
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Recorded => "recorded",
            Self::WouldRun => "would_run",
            Self::AwaitingApproval => "awaiting_approval",
            Self::Rejected => "rejected",
            Self::Expired => "expired",
            Self::Withdrawn => "withdrawn",
            Self::Manual => "manual",
            Self::Executing { .. } => "executing",
            Self::Suppressing { .. } => "suppressing",
            Self::Judging { .. } => "judging",
            Self::Finished(Outcome::Effective) => "finished:effective",
            Self::Finished(Outcome::Ineffective) => "finished:ineffective",
            Self::Finished(Outcome::Inconclusive) => "finished:inconclusive",
            Self::Finished(Outcome::Failed) => "finished:failed",
            Self::Finished(Outcome::Cancelled) => "finished:cancelled",
        }
    }
}

/// The verdict on an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The incident was RECOVERED (both gates) after it.
    Effective,
    /// A run started after its suppression window failed.
    Ineffective,
    /// No verdict within the judge window, or the incident closed first.
    Inconclusive,
    /// The executor failed, or missed its deadline.
    Failed,
    /// The kill switch stopped it (no strike).
    Cancelled,
}

/// Success figures of an action for an incident kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionStats {
    /// The incident kind.
    pub kind: String,
    /// The action.
    pub action_id: String,
    /// Executed and judged (kill-switch cancellations excluded).
    pub attempts: u32,
    /// Judged effective.
    pub effective: u32,
}

/// Something to tell people ([`Effect::Notify`](crate::engine::Effect::Notify)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// What happened.
    pub kind: NotificationKind,
    /// The incident.
    pub incident_id: IncidentId,
    /// The proposal, when it is about one.
    pub proposal: Option<ProposalId>,
    /// One line, written by the engine.
    pub summary: String,
}

/// What a [`Notification`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationKind {
    /// An action awaits an operator's approval.
    ApprovalRequested,
    /// An action is left to a human (never-auto).
    ManualActionProposed,
    /// An action was judged.
    ActionJudged,
    /// The incident needs a human: the strategy is exhausted or the time budget is spent.
    Escalated,
}

/// An executor's failure, in words, for a proposal's note.
pub(super) fn describe(failure: &PortFailure) -> String {
    match failure {
        PortFailure::Timeout => "the executor timed out".to_owned(),
        PortFailure::RateLimited { .. } => "the executor was rate limited".to_owned(),
        PortFailure::Unauthorized => "the executor's credentials were rejected".to_owned(),
        PortFailure::InvalidResponse(what) => {
            format!("the executor's answer was not understood: {what}")
        }
        PortFailure::Unavailable(what) => format!("the executor failed: {what}"),
    }
}
