//! Remediation: the engine decides, the driver acts. After a failed validation run of an open incident, the
//! engine proposes the next step of the strategy that matches the incident ([`crate::remediation`]), waits for an
//! approval when the step's tier asks for one, requests the execution ([`Effect::ExecuteAction`]), ignores the
//! action's own side effects for a window, reruns the plan and judges the action by the two gates on what comes
//! after it: effective (RECOVERED), ineffective (a later run failed) or inconclusive (no verdict in time).
//!
//! ```text
//!   failed run ──► choose a step (rank, then success rate, then order; skipping struck-out, rejected, exhausted
//!                  and cooling-down steps; chooser = model and several ready: ChooseAction, and the model's pick
//!                  once it passes the gate, else the rules' on a refusal, no answer or the choice deadline)
//!      │  none left ─────────────────────────────────────────────────────────────► escalate (Notify)
//!      ├─ monitor-only: Recorded          shadow: WouldRun ──(next run's verdict)──► Finished(outcome)
//!      ├─ never-auto: Manual (a human's job)
//!      ├─ risky: AwaitingApproval ──ApprovalGiven(version)──┐  ApprovalRejected: Rejected   expiry: Expired
//!      └─ safe ─────────────────────────────────────────────┴► Executing ──ActionFinished Ok──► Suppressing
//!                                      ActionFinished Err / deadline / kill switch: Finished(Failed|Cancelled)
//!   Suppressing ──window ends: drop the signals, rerun──► Judging ──RECOVERED──► Finished(Effective)
//!                                                          ├─ a run started after the window failed: Ineffective
//!                                                          └─ judge window ends: Inconclusive
//!   time budget since detection spent, not RECOVERED ──► escalate (once per incident)
//! ```
//!
//! At most one proposal is *active* (awaiting approval, executing, suppressing or judging) at a time, so at most
//! one action per service runs. Three ineffective, inconclusive or failed outcomes of an action for one incident
//! fingerprint (the strategy's kind and the top error) strike the action out for that fingerprint. The success
//! rate per (incident kind, action) counts executed actions only (not dry runs, not shadow verdicts). The kill
//! switch cancels the action in flight, withdraws a proposal waiting for approval, and refuses approvals until it
//! is released. Every proposal change bumps its version: an approval names the version it saw
//! (compare-and-set).

mod choice;
mod image;
mod operator;
mod proposal;

pub use choice::ChoiceCandidate;
pub(super) use choice::on_action_chosen;
use choice::on_choice;
use choice::{Choice, ModelAnswer, PendingChoice, ask, candidates, choose, decide};
pub(super) use image::{RemediationImage, SpecImage};
pub(super) use operator::{on_decision, on_kill_switch};
use proposal::describe;
pub use proposal::{
    ActionStats, ChosenBy, Notification, NotificationKind, Outcome, Proposal, ProposalState,
};

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use fixloop_contract::TimelineKind;
use fixloop_contract::chrono::{DateTime, Utc};
use tracing::{debug, info, warn};

use super::phase::{OpenIncident, Phase};
use super::runs::{self, RunSlot};
use super::shared::Shared;
use super::{Effect, PortFailure, after};
use crate::ids::{EffectId, IncidentId, ProposalId, RunId};
use crate::remediation::{Chooser, RemediationMode, RiskTier};

/// How many proposals stay queryable.
const KEPT_PROPOSALS: usize = 200;

/// The remediation state of an engine (kept in snapshots).
#[derive(Debug, Default)]
pub(super) struct Remediation {
    pub(super) kill_switch: bool,
    pub(super) proposals: VecDeque<Proposal>,
    /// Strikes per (fingerprint, action).
    pub(super) strikes: BTreeMap<(String, String), u32>,
    /// (attempts, effective) per (kind, action).
    pub(super) stats: BTreeMap<(String, String), (u32, u32)>,
    pub(super) incident: Option<IncidentRemediation>,
    pub(super) next_proposal: u64,
    /// The model's pick the engine waits for, if any.
    pub(super) pending: Option<PendingChoice>,
}

/// What remediation knows of the open incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct IncidentRemediation {
    pub(super) incident_id: IncidentId,
    /// When the time budget is spent; `None` once that was handled.
    pub(super) budget_until: Option<DateTime<Utc>>,
    pub(super) escalated: bool,
    /// The latest finished run already considered.
    pub(super) last_run_seen: Option<RunId>,
    /// Proposals per action in this incident: how many, and the latest.
    pub(super) proposed: BTreeMap<String, (u32, DateTime<Utc>)>,
    /// Actions an operator rejected in this incident.
    pub(super) rejected: BTreeSet<String>,
}

impl Remediation {
    /// The proposal holding the slot.
    pub(super) fn active(&self) -> Option<&Proposal> {
        self.proposals.iter().rev().find(|p| p.state.is_active())
    }

    fn active_index(&self) -> Option<usize> {
        self.proposals.iter().rposition(|p| p.state.is_active())
    }

    fn index_of(&self, id: &ProposalId) -> Option<usize> {
        self.proposals.iter().rposition(|p| p.id == *id)
    }

    /// The earliest remediation timer.
    pub(super) fn next_deadline(&self) -> Option<DateTime<Utc>> {
        let slot = self.active().and_then(|proposal| match proposal.state {
            ProposalState::AwaitingApproval => proposal.expires_at,
            ProposalState::Executing { deadline, .. } => Some(deadline),
            ProposalState::Suppressing { until } | ProposalState::Judging { until, .. } => {
                Some(until)
            }
            _ => None,
        });
        let budget = self
            .incident
            .as_ref()
            .filter(|incident| !incident.escalated)
            .and_then(|incident| incident.budget_until);
        let choice = self.pending.as_ref().map(|pending| pending.deadline);
        [slot, budget, choice].into_iter().flatten().min()
    }

    /// Whether an action's side effects are being ignored at `now`.
    pub(super) fn suppressing(&self, now: DateTime<Utc>) -> bool {
        matches!(
            self.active().map(|p| p.state),
            Some(ProposalState::Suppressing { until }) if now < until
        )
    }

    fn push(&mut self, proposal: Proposal) {
        self.proposals.push_back(proposal);
        while self.proposals.len() > KEPT_PROPOSALS {
            self.proposals.pop_front();
        }
    }

    /// The success figures, by kind and action.
    pub(super) fn action_stats(&self) -> Vec<ActionStats> {
        self.stats
            .iter()
            .map(|((kind, action), (attempts, effective))| ActionStats {
                kind: kind.clone(),
                action_id: action.clone(),
                attempts: *attempts,
                effective: *effective,
            })
            .collect()
    }

    /// Success rate in per mille; an action never tried counts as an even chance.
    fn rate(&self, kind: &str, action: &str) -> u32 {
        match self.stats.get(&(kind.to_owned(), action.to_owned())) {
            Some((attempts, effective)) if *attempts > 0 => {
                let rate = u64::from(*effective) * 1000 / u64::from(*attempts);
                u32::try_from(rate).unwrap_or(1000)
            }
            _ => 500,
        }
    }
}

/// Looks at the engine after every step: a new incident starts its budget, a closed one ends what was pending, a
/// failed run judges the action and proposes the next one, RECOVERED judges it effective.
pub(super) fn observe(phase: &Phase, shared: &mut Shared, now: DateTime<Utc>) {
    if !shared.config.remediation.is_enabled() {
        return;
    }
    let open = phase.incident();
    let same = match (&shared.remediation.incident, open) {
        (Some(state), Some(open)) => state.incident_id == open.id,
        (None, None) => true,
        _ => false,
    };
    if !same {
        if shared.remediation.incident.is_some() {
            end_incident(shared, now);
        }
        if let Some(open) = open {
            let budget = shared.config.remediation.time_budget;
            shared.remediation.incident = Some(IncidentRemediation {
                incident_id: open.id.clone(),
                budget_until: Some(after(open.card.detected_at, budget)),
                escalated: false,
                last_run_seen: None,
                proposed: BTreeMap::new(),
                rejected: BTreeSet::new(),
            });
        }
    }
    match phase {
        Phase::Recovered(_) => settle(shared, now, Outcome::Effective, None),
        Phase::Validating(validating) => {
            let RunSlot::Idle(run) = &validating.run else {
                return;
            };
            let Some(state) = shared.remediation.incident.as_mut() else {
                return;
            };
            if state.last_run_seen.as_ref() == Some(&run.run_id) {
                return;
            }
            state.last_run_seen = Some(run.run_id.clone());
            if run.passed {
                return;
            }
            let started_at = shared.runs.get(&run.run_id).map(|run| run.started_at);
            settle(shared, now, Outcome::Ineffective, started_at);
            propose(&validating.incident, shared, now, None);
        }
        Phase::Healthy(_) | Phase::IncidentActive(_) => {}
    }
}

/// A verdict arrived: the shadow proposal waiting for one takes it, and so does the action being judged when the
/// run (started at `run_started`) began after its suppression window (`None`: RECOVERED, always a verdict).
fn settle(
    shared: &mut Shared,
    now: DateTime<Utc>,
    outcome: Outcome,
    run_started: Option<DateTime<Utc>>,
) {
    let Some(incident_id) = shared
        .remediation
        .incident
        .as_ref()
        .map(|state| state.incident_id.clone())
    else {
        return;
    };
    let shadow: Vec<usize> = (0..shared.remediation.proposals.len())
        .filter(|&i| {
            let p = &shared.remediation.proposals[i];
            p.state == ProposalState::WouldRun && p.incident_id == incident_id
        })
        .collect();
    let verdict = match outcome {
        Outcome::Effective => "RECOVERED after it",
        _ => "the next run failed",
    };
    for index in shadow {
        let note = format!("shadow verdict: {verdict}");
        finish(shared, now, index, outcome, note);
    }
    let Some(index) = shared.remediation.active_index() else {
        return;
    };
    let judged = match shared.remediation.proposals[index].state {
        ProposalState::Judging { from, .. } => run_started.is_none_or(|started| started >= from),
        // RECOVERED during the suppression window: the action's side effects did not stop it.
        ProposalState::Suppressing { .. } => run_started.is_none(),
        _ => false,
    };
    if judged {
        let note = match outcome {
            Outcome::Effective => {
                "effective: RECOVERED after the action (tests and signals)".to_owned()
            }
            _ => "ineffective: a run started after the action failed".to_owned(),
        };
        finish(shared, now, index, outcome, note);
    }
}

/// The open incident closed (or another opened): what waited for it ends.
fn end_incident(shared: &mut Shared, now: DateTime<Utc>) {
    let Some(state) = shared.remediation.incident.take() else {
        return;
    };
    if shared
        .remediation
        .pending
        .as_ref()
        .is_some_and(|pending| pending.incident_id == state.incident_id)
    {
        debug!(incident_id = %state.incident_id, "the incident closed: the model's pick is no longer awaited");
        shared.remediation.pending = None;
    }
    for index in 0..shared.remediation.proposals.len() {
        let proposal = &shared.remediation.proposals[index];
        if proposal.incident_id != state.incident_id {
            continue;
        }
        match proposal.state {
            ProposalState::AwaitingApproval => {
                change(
                    shared,
                    now,
                    index,
                    ProposalState::Withdrawn,
                    "withdrawn: the incident closed".to_owned(),
                );
            }
            ProposalState::WouldRun
            | ProposalState::Suppressing { .. }
            | ProposalState::Judging { .. } => {
                let note = "inconclusive: the incident closed before a verdict".to_owned();
                finish(shared, now, index, Outcome::Inconclusive, note);
            }
            // An action in flight ends when its answer comes (then inconclusive).
            _ => {}
        }
    }
}

/// Sets a proposal's state, bumping its version.
fn change(
    shared: &mut Shared,
    now: DateTime<Utc>,
    index: usize,
    state: ProposalState,
    note: String,
) {
    let proposal = &mut shared.remediation.proposals[index];
    info!(proposal = %proposal.id, action = %proposal.action_id, from = proposal.state.name(), to = state.name(), %note, "remediation");
    proposal.state = state;
    proposal.version = proposal.version.saturating_add(1);
    proposal.updated_at = now;
    proposal.note = note;
}

/// Ends a proposal with `outcome`: counts it (executed actions only), strikes it, tells people.
fn finish(shared: &mut Shared, now: DateTime<Utc>, index: usize, outcome: Outcome, note: String) {
    change(
        shared,
        now,
        index,
        ProposalState::Finished(outcome),
        note.clone(),
    );
    let proposal = shared.remediation.proposals[index].clone();
    if proposal.mode != RemediationMode::Auto || outcome == Outcome::Cancelled {
        // Dry runs and shadow verdicts say nothing about the action itself; a cancellation is nobody's verdict.
        return;
    }
    let key = (proposal.kind.clone(), proposal.action_id.clone());
    let stats = shared.remediation.stats.entry(key).or_insert((0, 0));
    stats.0 = stats.0.saturating_add(1);
    if outcome == Outcome::Effective {
        stats.1 = stats.1.saturating_add(1);
    } else {
        let strikes = shared
            .remediation
            .strikes
            .entry((proposal.fingerprint.clone(), proposal.action_id.clone()))
            .or_insert(0);
        *strikes = strikes.saturating_add(1);
    }
    notify(
        shared,
        NotificationKind::ActionJudged,
        &proposal,
        format!("{}: {note}", proposal.action_id),
    );
}

fn notify(shared: &mut Shared, kind: NotificationKind, proposal: &Proposal, summary: String) {
    shared.effects.push_back(Effect::Notify(Notification {
        kind,
        incident_id: proposal.incident_id.clone(),
        proposal: Some(proposal.id.clone()),
        summary,
    }));
}

/// After a failed run: propose the strategy's next step, or escalate when none is left. With the model as chooser
/// and several steps ready, ask it first (`answer` is `None`) and propose once it answered (`answer` is what it
/// said, or why it said nothing).
fn propose(
    incident: &OpenIncident,
    shared: &mut Shared,
    now: DateTime<Utc>,
    answer: Option<ModelAnswer>,
) {
    let escalated = shared
        .remediation
        .incident
        .as_ref()
        .is_none_or(|state| state.escalated);
    let busy = shared.remediation.active().is_some() || shared.remediation.pending.is_some();
    if escalated || busy {
        return;
    }
    let spec = &shared.config.remediation;
    let mode = spec.mode;
    if mode.executes() && shared.remediation.kill_switch {
        debug!(incident_id = %incident.id, "kill switch engaged: no remediation proposed");
        return;
    }
    let top_error = incident.card.datadog_summary.signal.top_error.as_deref();
    let Some(strategy) = spec.strategy_for(top_error, &incident.card.title) else {
        debug!(incident_id = %incident.id, "no remediation strategy matches the incident");
        return;
    };
    let fingerprint = format!(
        "{}|{}",
        strategy.kind,
        top_error.unwrap_or(&incident.card.title)
    );
    let ready = match choose(spec, &shared.remediation, strategy, &fingerprint, now) {
        Choice::Ready(ready) => ready,
        Choice::CoolingDown => return,
        Choice::Exhausted => {
            let reason = format!("strategy {} is exhausted", strategy.kind);
            escalate(shared, now, &incident.id, reason);
            return;
        }
    };
    if answer.is_none() && spec.chooser == Chooser::Model && ready.len() > 1 {
        let candidates = candidates(spec, &shared.remediation, &strategy.kind, &ready);
        let kind = strategy.kind.clone();
        ask(incident, shared, now, kind, candidates);
        return;
    }
    let (step, chosen_by, choice_note) = decide(spec, &strategy.kind, &ready, answer.as_ref());
    let step = step.clone();
    let kind = strategy.kind.clone();
    let tier = step.tier_in(spec.environment());
    let approval_expiry = spec.approval_expiry;
    if let Some(state) = shared.remediation.incident.as_mut() {
        let entry = state
            .proposed
            .entry(step.action.clone())
            .or_insert((0, now));
        *entry = (entry.0.saturating_add(1), now);
    }
    let id = shared.proposal_id();
    let action = step.action.clone();
    let (state, note, expires_at) = match (mode, tier) {
        (RemediationMode::MonitorOnly, _) => (
            ProposalState::Recorded,
            format!("monitor-only: proposed {action} ({tier}), not carried out"),
            None,
        ),
        (RemediationMode::Shadow, _) => (
            ProposalState::WouldRun,
            match tier {
                RiskTier::Safe => format!("shadow: would have run {action}"),
                RiskTier::Risky => format!("shadow: would have asked approval to run {action}"),
                RiskTier::NeverAuto => format!("shadow: would have asked a human to run {action}"),
            },
            None,
        ),
        (_, RiskTier::NeverAuto) => (
            ProposalState::Manual,
            format!("{action} is never-auto: a human must carry it out"),
            None,
        ),
        (_, RiskTier::Risky) => (
            ProposalState::AwaitingApproval,
            format!("{action} is risky: awaiting approval"),
            Some(after(now, approval_expiry)),
        ),
        (_, RiskTier::Safe) => (
            ProposalState::Recorded,
            format!("{action} is safe: running it"),
            None,
        ),
    };
    let note = match &choice_note {
        Some(choice) => {
            shared
                .history
                .note(&incident.id, now, TimelineKind::Remediation, choice.clone());
            format!("{choice}; {note}")
        }
        None => note,
    };
    info!(incident_id = %incident.id, proposal = %id, %action, %tier, %mode, chosen_by = chosen_by.as_str(), "remediation proposed");
    let proposal = Proposal {
        id,
        incident_id: incident.id.clone(),
        kind,
        fingerprint,
        action_id: action,
        tier,
        mode,
        version: 1,
        state,
        proposed_at: now,
        updated_at: now,
        expires_at,
        decided_by: None,
        chosen_by,
        choice: choice_note,
        note: note.clone(),
    };
    shared.remediation.push(proposal.clone());
    match (mode.executes(), tier) {
        (true, RiskTier::Safe) => {
            let index = shared.remediation.proposals.len() - 1;
            execute(shared, now, index);
        }
        (true, RiskTier::Risky) => {
            notify(shared, NotificationKind::ApprovalRequested, &proposal, note)
        }
        (true, RiskTier::NeverAuto) => {
            notify(
                shared,
                NotificationKind::ManualActionProposed,
                &proposal,
                note,
            );
        }
        (false, _) => {}
    }
}

/// Asks the driver to carry out the proposal at `index`.
fn execute(shared: &mut Shared, now: DateTime<Utc>, index: usize) {
    let effect = shared.effect_id();
    let deadline = after(now, shared.config.remediation.action_deadline);
    let dry_run = shared.remediation.proposals[index].mode != RemediationMode::Auto;
    let note = if dry_run {
        "dry run requested"
    } else {
        "execution requested"
    };
    change(
        shared,
        now,
        index,
        ProposalState::Executing { effect, deadline },
        note.to_owned(),
    );
    let proposal = &shared.remediation.proposals[index];
    shared.effects.push_back(Effect::ExecuteAction {
        effect,
        proposal: proposal.id.clone(),
        incident_id: proposal.incident_id.clone(),
        action_id: proposal.action_id.clone(),
        dry_run,
    });
}

/// The incident needs a human: noted in its timeline and notified, once.
fn escalate(shared: &mut Shared, now: DateTime<Utc>, incident_id: &IncidentId, reason: String) {
    let Some(state) = shared.remediation.incident.as_mut() else {
        return;
    };
    if state.escalated {
        return;
    }
    state.escalated = true;
    warn!(%incident_id, %reason, "incident escalated");
    shared.history.note(
        incident_id,
        now,
        TimelineKind::NeedsHuman,
        format!("escalated: {reason}"),
    );
    shared.effects.push_back(Effect::Notify(Notification {
        kind: NotificationKind::Escalated,
        incident_id: incident_id.clone(),
        proposal: None,
        summary: format!("escalated: {reason}"),
    }));
}

/// The remediation timers: approval expiry, action deadline, end of suppression (drop the signals, rerun), end of
/// the judge window, and the incident's time budget.
pub(super) fn fire(phase: Phase, shared: &mut Shared, now: DateTime<Utc>) -> Phase {
    let mut phase = phase;
    if shared
        .remediation
        .pending
        .as_ref()
        .is_some_and(|pending| pending.deadline <= now)
    {
        let seconds = shared.config.remediation.choice_deadline.as_secs_f64();
        let reason = format!("no answer within {seconds} s");
        on_choice(
            &phase,
            shared,
            now,
            None,
            ModelAnswer {
                action: None,
                reason,
            },
        );
    }
    if let Some(index) = shared.remediation.active_index() {
        let proposal = &shared.remediation.proposals[index];
        match proposal.state {
            ProposalState::AwaitingApproval if proposal.expires_at.is_some_and(|at| at <= now) => {
                change(
                    shared,
                    now,
                    index,
                    ProposalState::Expired,
                    "lapsed: nobody approved it in time".to_owned(),
                );
            }
            ProposalState::Executing { effect, deadline } if deadline <= now => {
                shared.effects.push_back(Effect::CancelAction { effect });
                finish(
                    shared,
                    now,
                    index,
                    Outcome::Failed,
                    "failed: the action exceeded its deadline".to_owned(),
                );
            }
            ProposalState::Suppressing { until } if until <= now => {
                let action = proposal.action_id.clone();
                let judge_until = after(now, shared.config.remediation.judge_window);
                // The gate judges the action on samples taken after its side effects only.
                shared.signals.restart_gate();
                change(
                    shared,
                    now,
                    index,
                    ProposalState::Judging {
                        from: now,
                        until: judge_until,
                    },
                    "judging: rerunning the plan".to_owned(),
                );
                if let Phase::Validating(validating) = phase {
                    let why = format!("remediation action {action} taken");
                    phase = Phase::Validating(runs::trigger_rerun(validating, shared, now, &why));
                }
            }
            ProposalState::Judging { until, .. } if until <= now => {
                finish(
                    shared,
                    now,
                    index,
                    Outcome::Inconclusive,
                    "inconclusive: no verdict within the judge window".to_owned(),
                );
            }
            _ => {}
        }
    }
    let due = shared.remediation.incident.as_ref().and_then(|state| {
        state
            .budget_until
            .filter(|at| *at <= now && !state.escalated)
            .map(|_| state.incident_id.clone())
    });
    if let Some(incident_id) = due {
        if let Some(state) = shared.remediation.incident.as_mut() {
            state.budget_until = None;
        }
        if matches!(phase, Phase::IncidentActive(_) | Phase::Validating(_)) {
            let seconds = shared.config.remediation.time_budget.as_secs_f64();
            escalate(
                shared,
                now,
                &incident_id,
                format!("time budget of {seconds} s spent without recovery"),
            );
        }
    }
    phase
}

/// The driver carried out (or failed to carry out) an action.
pub(super) fn on_action_finished(
    shared: &mut Shared,
    now: DateTime<Utc>,
    effect: EffectId,
    result: Result<(), PortFailure>,
) {
    let found = shared.remediation.active_index().filter(|&index| {
        matches!(shared.remediation.proposals[index].state, ProposalState::Executing { effect: e, .. } if e == effect)
    });
    let Some(index) = found else {
        debug!(%effect, "answer for an action nobody waits for ignored");
        return;
    };
    let open =
        shared.remediation.incident.as_ref().is_some_and(|state| {
            state.incident_id == shared.remediation.proposals[index].incident_id
        });
    match result {
        Err(failure) => {
            let note = format!("failed: {}", describe(&failure));
            finish(shared, now, index, Outcome::Failed, note);
        }
        Ok(()) if !open => {
            let note = "inconclusive: the incident closed while the action ran".to_owned();
            finish(shared, now, index, Outcome::Inconclusive, note);
        }
        Ok(()) => {
            let until = after(now, shared.config.remediation.suppress_window);
            change(
                shared,
                now,
                index,
                ProposalState::Suppressing { until },
                "done: ignoring its side effects".to_owned(),
            );
        }
    }
}

/// The driver restarted: an action in flight died with it; whether it ran is unknown. A model's pick in flight
/// died too: the rules pick.
pub(super) fn restarted(phase: &Phase, shared: &mut Shared, now: DateTime<Utc>) {
    let reason = "the request was lost in a restart".to_owned();
    on_choice(
        phase,
        shared,
        now,
        None,
        ModelAnswer {
            action: None,
            reason,
        },
    );
    let Some(index) = shared.remediation.active_index() else {
        return;
    };
    if let ProposalState::Executing { .. } = shared.remediation.proposals[index].state {
        let note = "inconclusive: interrupted by a restart".to_owned();
        finish(shared, now, index, Outcome::Inconclusive, note);
    }
}
