//! Which step to propose: the rules' order over the steps that may be proposed now ([`choose`]), and, when the
//! spec's chooser is the model, the model's pick checked by code ([`decide`]): the model proposes, code decides.
//! Its pick must pass [`validate_choice`] (a declared action, a step of the incident kind's strategy) and be one of
//! the steps ready at that moment (not struck out, spent, rejected or cooling down); otherwise, or without an
//! answer, the rules' pick stands and the proposal's note says why. Either way the pick then goes through the same
//! tiers and approvals.

use fixloop_contract::chrono::{DateTime, Utc};
use tracing::{debug, info};

use super::{ChosenBy, Remediation, propose};
use crate::engine::phase::{OpenIncident, Phase};
use crate::engine::shared::Shared;
use crate::engine::{Effect, after};
use crate::ids::{EffectId, IncidentId};
use crate::remediation::{RemediationSpec, RiskTier, Strategy, StrategyStep, validate_choice};

/// The most characters of a model's words (its pick, its reason) kept in a proposal's note.
const MAX_QUOTED: usize = 160;

/// A step the model may pick ([`Effect::ChooseAction`](crate::engine::Effect::ChooseAction)): what a person would
/// see of it, nothing of its executor's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChoiceCandidate {
    /// The declared action's id, the only thing the model may name.
    pub action_id: String,
    /// Its executor kind (`http`, `command`, `docker-restart`, `kubernetes-rollout`).
    pub executor: String,
    /// The profile's one-sentence description of the action (may be empty).
    pub description: String,
    /// The tier that applies (the service's environment considered).
    pub tier: RiskTier,
    /// Executed and judged attempts for this incident kind.
    pub attempts: u32,
    /// Of which effective.
    pub effective: u32,
}

/// A model's pick the engine waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::engine) struct PendingChoice {
    /// The [`Effect::ChooseAction`](crate::engine::Effect::ChooseAction) to answer.
    pub(in crate::engine) effect: EffectId,
    /// The incident it is for.
    pub(in crate::engine) incident_id: IncidentId,
    /// Without an answer by then, the rules pick.
    pub(in crate::engine) deadline: DateTime<Utc>,
}

/// What the model said (untrusted), or why it said nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ModelAnswer {
    pub(super) action: Option<String>,
    pub(super) reason: String,
}

/// What the strategy offers now.
pub(super) enum Choice<'a> {
    /// The steps that may be proposed now, in the rules' order (the first is the rules' pick); never empty.
    Ready(Vec<&'a StrategyStep>),
    /// Some steps are left, all cooling down.
    CoolingDown,
    /// No step is left.
    Exhausted,
}

/// The steps of `strategy` that may be proposed now, skipping struck-out, rejected, spent and cooling-down ones,
/// ordered by rank, then success rate, then declared order.
pub(super) fn choose<'a>(
    spec: &RemediationSpec,
    remediation: &Remediation,
    strategy: &'a Strategy,
    fingerprint: &str,
    now: DateTime<Utc>,
) -> Choice<'a> {
    let Some(incident) = remediation.incident.as_ref() else {
        return Choice::Exhausted;
    };
    let max_strikes = spec.max_strikes.max(1);
    let eligible: Vec<(usize, &StrategyStep)> = strategy
        .steps
        .iter()
        .enumerate()
        .filter(|(_, step)| {
            let struck = remediation
                .strikes
                .get(&(fingerprint.to_owned(), step.action.clone()))
                .is_some_and(|strikes| *strikes >= max_strikes);
            let spent = incident
                .proposed
                .get(&step.action)
                .is_some_and(|(count, _)| *count >= step.max_per_incident);
            !struck && !spent && !incident.rejected.contains(&step.action)
        })
        .collect();
    if eligible.is_empty() {
        return Choice::Exhausted;
    }
    let mut ready: Vec<(usize, &StrategyStep)> = eligible
        .into_iter()
        .filter(|(_, step)| {
            incident
                .proposed
                .get(&step.action)
                .is_none_or(|(_, last)| after(*last, step.cooldown) <= now)
        })
        .collect();
    if ready.is_empty() {
        return Choice::CoolingDown;
    }
    ready.sort_by_key(|(position, step)| {
        let rate = remediation.rate(&strategy.kind, &step.action);
        (step.rank, std::cmp::Reverse(rate), *position)
    });
    Choice::Ready(ready.into_iter().map(|(_, step)| step).collect())
}

/// The candidates of an [`Effect::ChooseAction`](crate::engine::Effect::ChooseAction) for the `ready` steps.
pub(super) fn candidates(
    spec: &RemediationSpec,
    remediation: &Remediation,
    kind: &str,
    ready: &[&StrategyStep],
) -> Vec<ChoiceCandidate> {
    ready
        .iter()
        .map(|step| {
            let action = spec.action(&step.action);
            let (attempts, effective) = remediation
                .stats
                .get(&(kind.to_owned(), step.action.clone()))
                .copied()
                .unwrap_or((0, 0));
            ChoiceCandidate {
                action_id: step.action.clone(),
                executor: action.map(|a| a.executor.clone()).unwrap_or_default(),
                description: action.map(|a| a.description.clone()).unwrap_or_default(),
                tier: step.tier_in(spec.environment()),
                attempts,
                effective,
            }
        })
        .collect()
}

/// The step to propose among `ready` (never empty), who picked it, and what the note says about the pick: the
/// model's pick when it passes the gate and is ready, else the rules' (the first).
pub(super) fn decide<'a>(
    spec: &RemediationSpec,
    kind: &str,
    ready: &[&'a StrategyStep],
    answer: Option<&ModelAnswer>,
) -> (&'a StrategyStep, ChosenBy, Option<String>) {
    let rules = ready[0];
    let Some(answer) = answer else {
        return (rules, ChosenBy::Rules, None);
    };
    let reason = quoted(&answer.reason);
    let Some(action) = answer.action.as_deref() else {
        let note = format!(
            "model made no choice ({reason}); rule-based choice {}",
            rules.action
        );
        return (rules, ChosenBy::Rules, Some(note));
    };
    // Ids are at most 64 bytes: a longer pick, cut, still matches nothing.
    let action = quoted(action);
    let refusal = match validate_choice(spec, kind, &action) {
        Err(error) => error.to_string(),
        Ok(_) => match ready.iter().find(|step| step.action == action) {
            Some(step) => {
                let note = format!("model chose {action} ({reason})");
                return (step, ChosenBy::Model, Some(note));
            }
            None => format!(
                "{action:?} may not be proposed now (struck out, spent, rejected or cooling down)"
            ),
        },
    };
    let note = format!(
        "model chose {action:?}: refused: {refusal}; rule-based choice {}",
        rules.action
    );
    (rules, ChosenBy::Rules, Some(note))
}

/// Asks the driver for the model's pick among `candidates`, and waits for it until the choice deadline.
pub(super) fn ask(
    incident: &OpenIncident,
    shared: &mut Shared,
    now: DateTime<Utc>,
    kind: String,
    candidates: Vec<ChoiceCandidate>,
) {
    let effect = shared.effect_id();
    let deadline = after(now, shared.config.remediation.choice_deadline);
    info!(incident_id = %incident.id, %kind, candidates = candidates.len(), "asking the model to pick a remediation step");
    shared.remediation.pending = Some(PendingChoice {
        effect,
        incident_id: incident.id.clone(),
        deadline,
    });
    let signal = &incident.card.datadog_summary.signal;
    shared.effects.push_back(Effect::ChooseAction {
        effect,
        incident_id: incident.id.clone(),
        kind,
        title: incident.card.title.clone(),
        top_error: signal.top_error.clone(),
        error_rate: signal.error_rate_5m,
        candidates,
    });
}

/// The model's pick came (or its deadline passed, or a restart lost it): propose, with it if it passes the gate.
/// An answer nobody waits for, or for an incident that is no longer validating, is dropped.
pub(in crate::engine) fn on_choice(
    phase: &Phase,
    shared: &mut Shared,
    now: DateTime<Utc>,
    effect: Option<EffectId>,
    answer: ModelAnswer,
) {
    let awaited = shared
        .remediation
        .pending
        .as_ref()
        .is_some_and(|pending| effect.is_none_or(|effect| pending.effect == effect));
    if !awaited {
        debug!(?effect, "a model's pick nobody waits for ignored");
        return;
    }
    let Some(pending) = shared.remediation.pending.take() else {
        return;
    };
    match phase {
        Phase::Validating(validating) if validating.incident.id == pending.incident_id => {
            propose(&validating.incident, shared, now, Some(answer));
        }
        _ => {
            debug!(incident_id = %pending.incident_id, "the incident is no longer validating: the model's pick is dropped");
        }
    }
}

/// The model's pick as an input.
pub(in crate::engine) fn on_action_chosen(
    phase: &Phase,
    shared: &mut Shared,
    now: DateTime<Utc>,
    effect: EffectId,
    action: Option<String>,
    reason: String,
) {
    on_choice(
        phase,
        shared,
        now,
        Some(effect),
        ModelAnswer { action, reason },
    );
}

/// A model's words for a note: one line, control characters dropped, at most [`MAX_QUOTED`] characters.
fn quoted(text: &str) -> String {
    let line: String = text
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_QUOTED + 1)
        .collect();
    if line.chars().count() > MAX_QUOTED {
        let cut: String = line.chars().take(MAX_QUOTED).collect();
        format!("{cut}…")
    } else {
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_models_words_are_one_short_line() {
        assert_eq!(quoted("  restart\nnow\t "), "restart now");
        let long = "x".repeat(400);
        assert_eq!(quoted(&long).chars().count(), MAX_QUOTED + 1);
    }
}
