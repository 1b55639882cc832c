//! The persistence images of remediation: [`RemediationImage`] (the state, in a snapshot) and [`SpecImage`] (the
//! service's remediation spec, in a recorded configuration). Both are added within format 1 with
//! `#[serde(default)]` at their use, so journals written before remediation existed still read.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use fixloop_contract::chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    ChosenBy, IncidentRemediation, Outcome, PendingChoice, Proposal, ProposalState, Remediation,
};
use crate::ids::{EffectId, IncidentId, ProposalId, RunId};
use crate::remediation::{
    ActionSpec, Chooser, DEFAULT_CHOICE_DEADLINE, IncidentMatch, RemediationMode, RemediationSpec,
    RiskTier, Strategy, StrategyStep,
};

/// The remediation state in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(in crate::engine) struct RemediationImage {
    kill_switch: bool,
    proposals: Vec<ProposalImage>,
    strikes: Vec<(String, String, u32)>,
    stats: Vec<(String, String, u32, u32)>,
    incident: Option<IncidentImage>,
    next_proposal: u64,
    /// Added within format 1: the model's pick awaited, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pending_choice: Option<PendingImage>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct PendingImage {
    effect: u64,
    incident_id: String,
    deadline: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ProposalImage {
    id: String,
    incident_id: String,
    kind: String,
    fingerprint: String,
    action_id: String,
    tier: String,
    mode: String,
    version: u64,
    state: StateImage,
    proposed_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    decided_by: Option<String>,
    /// Added within format 1: `model` when the model picked the action; absent for the rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    chosen_by: Option<String>,
    /// Added within format 1: what the model picked and what code made of it, when it was asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    choice: Option<String>,
    note: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum StateImage {
    Recorded,
    WouldRun,
    AwaitingApproval,
    Rejected,
    Expired,
    Withdrawn,
    Manual,
    Executing {
        effect: u64,
        deadline: DateTime<Utc>,
    },
    Suppressing {
        until: DateTime<Utc>,
    },
    Judging {
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    },
    Effective,
    Ineffective,
    Inconclusive,
    Failed,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct IncidentImage {
    incident_id: String,
    budget_until: Option<DateTime<Utc>>,
    escalated: bool,
    last_run_seen: Option<String>,
    proposed: Vec<(String, u32, DateTime<Utc>)>,
    rejected: Vec<String>,
}

impl RemediationImage {
    pub(in crate::engine) fn of(state: &Remediation) -> Self {
        Self {
            kill_switch: state.kill_switch,
            proposals: state.proposals.iter().map(ProposalImage::of).collect(),
            strikes: state
                .strikes
                .iter()
                .map(|((fingerprint, action), n)| (fingerprint.clone(), action.clone(), *n))
                .collect(),
            stats: state
                .stats
                .iter()
                .map(|((kind, action), (attempts, effective))| {
                    (kind.clone(), action.clone(), *attempts, *effective)
                })
                .collect(),
            incident: state.incident.as_ref().map(|incident| IncidentImage {
                incident_id: incident.incident_id.as_str().to_owned(),
                budget_until: incident.budget_until,
                escalated: incident.escalated,
                last_run_seen: incident
                    .last_run_seen
                    .as_ref()
                    .map(|id| id.as_str().to_owned()),
                proposed: incident
                    .proposed
                    .iter()
                    .map(|(action, (count, last))| (action.clone(), *count, *last))
                    .collect(),
                rejected: incident.rejected.iter().cloned().collect(),
            }),
            next_proposal: state.next_proposal,
            pending_choice: state.pending.as_ref().map(|pending| PendingImage {
                effect: pending.effect.0,
                incident_id: pending.incident_id.as_str().to_owned(),
                deadline: pending.deadline,
            }),
        }
    }

    pub(in crate::engine) fn into_state(self) -> Remediation {
        Remediation {
            kill_switch: self.kill_switch,
            proposals: self
                .proposals
                .into_iter()
                .map(ProposalImage::into_proposal)
                .collect(),
            strikes: self
                .strikes
                .into_iter()
                .map(|(fingerprint, action, n)| ((fingerprint, action), n))
                .collect(),
            stats: self
                .stats
                .into_iter()
                .map(|(kind, action, attempts, effective)| ((kind, action), (attempts, effective)))
                .collect(),
            incident: self.incident.map(|incident| IncidentRemediation {
                incident_id: IncidentId::new(incident.incident_id),
                budget_until: incident.budget_until,
                escalated: incident.escalated,
                last_run_seen: incident.last_run_seen.map(RunId::new),
                proposed: incident
                    .proposed
                    .into_iter()
                    .map(|(action, count, last)| (action, (count, last)))
                    .collect::<BTreeMap<_, _>>(),
                rejected: incident.rejected.into_iter().collect::<BTreeSet<_>>(),
            }),
            next_proposal: self.next_proposal,
            pending: self.pending_choice.map(|pending| PendingChoice {
                effect: EffectId(pending.effect),
                incident_id: IncidentId::new(pending.incident_id),
                deadline: pending.deadline,
            }),
        }
    }
}

impl ProposalImage {
    fn of(proposal: &Proposal) -> Self {
        Self {
            id: proposal.id.as_str().to_owned(),
            incident_id: proposal.incident_id.as_str().to_owned(),
            kind: proposal.kind.clone(),
            fingerprint: proposal.fingerprint.clone(),
            action_id: proposal.action_id.clone(),
            tier: proposal.tier.as_str().to_owned(),
            mode: proposal.mode.as_str().to_owned(),
            version: proposal.version,
            state: match proposal.state {
                ProposalState::Recorded => StateImage::Recorded,
                ProposalState::WouldRun => StateImage::WouldRun,
                ProposalState::AwaitingApproval => StateImage::AwaitingApproval,
                ProposalState::Rejected => StateImage::Rejected,
                ProposalState::Expired => StateImage::Expired,
                ProposalState::Withdrawn => StateImage::Withdrawn,
                ProposalState::Manual => StateImage::Manual,
                ProposalState::Executing { effect, deadline } => StateImage::Executing {
                    effect: effect.0,
                    deadline,
                },
                ProposalState::Suppressing { until } => StateImage::Suppressing { until },
                ProposalState::Judging { from, until } => StateImage::Judging { from, until },
                ProposalState::Finished(Outcome::Effective) => StateImage::Effective,
                ProposalState::Finished(Outcome::Ineffective) => StateImage::Ineffective,
                ProposalState::Finished(Outcome::Inconclusive) => StateImage::Inconclusive,
                ProposalState::Finished(Outcome::Failed) => StateImage::Failed,
                ProposalState::Finished(Outcome::Cancelled) => StateImage::Cancelled,
            },
            proposed_at: proposal.proposed_at,
            updated_at: proposal.updated_at,
            expires_at: proposal.expires_at,
            decided_by: proposal.decided_by.clone(),
            chosen_by: (proposal.chosen_by == ChosenBy::Model).then(|| "model".to_owned()),
            choice: proposal.choice.clone(),
            note: proposal.note.clone(),
        }
    }

    fn into_proposal(self) -> Proposal {
        Proposal {
            id: ProposalId::new(self.id),
            incident_id: IncidentId::new(self.incident_id),
            kind: self.kind,
            fingerprint: self.fingerprint,
            action_id: self.action_id,
            // An unknown name (a newer build's) reads as the most careful one.
            tier: RiskTier::parse(&self.tier).unwrap_or(RiskTier::NeverAuto),
            mode: RemediationMode::parse(&self.mode).unwrap_or_default(),
            version: self.version,
            state: match self.state {
                StateImage::Recorded => ProposalState::Recorded,
                StateImage::WouldRun => ProposalState::WouldRun,
                StateImage::AwaitingApproval => ProposalState::AwaitingApproval,
                StateImage::Rejected => ProposalState::Rejected,
                StateImage::Expired => ProposalState::Expired,
                StateImage::Withdrawn => ProposalState::Withdrawn,
                StateImage::Manual => ProposalState::Manual,
                StateImage::Executing { effect, deadline } => ProposalState::Executing {
                    effect: EffectId(effect),
                    deadline,
                },
                StateImage::Suppressing { until } => ProposalState::Suppressing { until },
                StateImage::Judging { from, until } => ProposalState::Judging { from, until },
                StateImage::Effective => ProposalState::Finished(Outcome::Effective),
                StateImage::Ineffective => ProposalState::Finished(Outcome::Ineffective),
                StateImage::Inconclusive => ProposalState::Finished(Outcome::Inconclusive),
                StateImage::Failed => ProposalState::Finished(Outcome::Failed),
                StateImage::Cancelled => ProposalState::Finished(Outcome::Cancelled),
            },
            proposed_at: self.proposed_at,
            updated_at: self.updated_at,
            expires_at: self.expires_at,
            decided_by: self.decided_by,
            chosen_by: match self.chosen_by.as_deref() {
                Some("model") => ChosenBy::Model,
                _ => ChosenBy::Rules,
            },
            choice: self.choice,
            note: self.note,
        }
    }
}

/// A [`RemediationSpec`] in a recorded configuration (durations in whole nanoseconds, names as in profiles).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(in crate::engine) struct SpecImage {
    mode: String,
    labels: BTreeMap<String, String>,
    actions: Vec<(String, String, String)>,
    strategies: Vec<StrategyImage>,
    time_budget_ns: u64,
    approval_expiry_ns: u64,
    suppress_window_ns: u64,
    judge_window_ns: u64,
    action_deadline_ns: u64,
    max_strikes: u32,
    /// Added within format 1: `model` when a model picks the steps; absent for the rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    chooser: Option<String>,
    /// Added within format 1: absent for the default (30 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    choice_deadline_ns: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StrategyImage {
    kind: String,
    top_error: Option<String>,
    alert: Option<String>,
    labels: BTreeMap<String, String>,
    steps: Vec<StepImage>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StepImage {
    action: String,
    tier: String,
    tiers_by_environment: BTreeMap<String, String>,
    cooldown_ns: u64,
    max_per_incident: u32,
    rank: u32,
}

fn ns(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

fn tier(name: &str) -> RiskTier {
    RiskTier::parse(name).unwrap_or(RiskTier::NeverAuto)
}

impl SpecImage {
    pub(in crate::engine) fn of(spec: &RemediationSpec) -> Self {
        Self {
            mode: spec.mode.as_str().to_owned(),
            labels: spec.labels.clone(),
            actions: spec
                .actions
                .iter()
                .map(|a| (a.id.clone(), a.executor.clone(), a.description.clone()))
                .collect(),
            strategies: spec
                .strategies
                .iter()
                .map(|strategy| StrategyImage {
                    kind: strategy.kind.clone(),
                    top_error: strategy.matches.top_error.clone(),
                    alert: strategy.matches.alert.clone(),
                    labels: strategy.matches.labels.clone(),
                    steps: strategy
                        .steps
                        .iter()
                        .map(|step| StepImage {
                            action: step.action.clone(),
                            tier: step.tier.as_str().to_owned(),
                            tiers_by_environment: step
                                .tiers_by_environment
                                .iter()
                                .map(|(env, tier)| (env.clone(), tier.as_str().to_owned()))
                                .collect(),
                            cooldown_ns: ns(step.cooldown),
                            max_per_incident: step.max_per_incident,
                            rank: step.rank,
                        })
                        .collect(),
                })
                .collect(),
            time_budget_ns: ns(spec.time_budget),
            approval_expiry_ns: ns(spec.approval_expiry),
            suppress_window_ns: ns(spec.suppress_window),
            judge_window_ns: ns(spec.judge_window),
            action_deadline_ns: ns(spec.action_deadline),
            max_strikes: spec.max_strikes,
            chooser: (spec.chooser != Chooser::Rules).then(|| spec.chooser.as_str().to_owned()),
            choice_deadline_ns: (spec.choice_deadline != DEFAULT_CHOICE_DEADLINE)
                .then(|| ns(spec.choice_deadline)),
        }
    }

    pub(in crate::engine) fn into_spec(self) -> RemediationSpec {
        RemediationSpec {
            mode: RemediationMode::parse(&self.mode).unwrap_or_default(),
            labels: self.labels,
            actions: self
                .actions
                .into_iter()
                .map(|(id, executor, description)| ActionSpec {
                    id,
                    executor,
                    description,
                })
                .collect(),
            strategies: self
                .strategies
                .into_iter()
                .map(|strategy| Strategy {
                    kind: strategy.kind,
                    matches: IncidentMatch {
                        top_error: strategy.top_error,
                        alert: strategy.alert,
                        labels: strategy.labels,
                    },
                    steps: strategy
                        .steps
                        .into_iter()
                        .map(|step| StrategyStep {
                            action: step.action,
                            tier: tier(&step.tier),
                            tiers_by_environment: step
                                .tiers_by_environment
                                .into_iter()
                                .map(|(env, name)| (env, tier(&name)))
                                .collect(),
                            cooldown: Duration::from_nanos(step.cooldown_ns),
                            max_per_incident: step.max_per_incident,
                            rank: step.rank,
                        })
                        .collect(),
                })
                .collect(),
            time_budget: Duration::from_nanos(self.time_budget_ns),
            approval_expiry: Duration::from_nanos(self.approval_expiry_ns),
            suppress_window: Duration::from_nanos(self.suppress_window_ns),
            judge_window: Duration::from_nanos(self.judge_window_ns),
            action_deadline: Duration::from_nanos(self.action_deadline_ns),
            max_strikes: self.max_strikes,
            // An unknown name (a newer build's) reads as the rules.
            chooser: self
                .chooser
                .as_deref()
                .and_then(Chooser::parse)
                .unwrap_or_default(),
            choice_deadline: self
                .choice_deadline_ns
                .map_or(DEFAULT_CHOICE_DEADLINE, Duration::from_nanos),
        }
    }
}
