//! Planning: from an opened incident to a validated plan. The context is fetched (bounded by
//! `context_deadline`), `incident.created` is published, and plans are requested: the configured planner's attempts
//! share one `plan_budget`, each re-request carries the previous violations, then the rule planner is asked, and
//! if its answer fails too the engine builds the rule plan itself. Every candidate gets the engine's plan id and is
//! validated; the first valid one starts validation ([`start_validating`]). This module owns [`Planning`].

use fixloop_contract::chrono::{DateTime, Utc};
use fixloop_contract::{IncidentState, Plan, PlanGenerated, RunStatus, TimelineKind, WsMessage};
use tracing::{debug, info, warn};

use super::blindness::describe_source_failure;
use super::detection::rate_title;
use super::phase::{IncidentActive, OpenIncident, Phase, Validating};
use super::recovery::GateNotes;
use super::runs::{self, RunSlot};
use super::shared::Shared;
use super::{Effect, IncidentContext, PlannerChoice, PortFailure, after};
use crate::ids::{EffectId, PlanId, RunId};
use crate::rule_planner::{PlanContext, rule_plan};
use crate::validate::{ValidatedPlan, Violation, validate};

/// Where planning stands.
#[derive(Debug)]
pub(super) enum Planning {
    /// Waiting for [`Effect::FetchContext`].
    FetchingContext {
        effect: EffectId,
        deadline: DateTime<Utc>,
    },
    /// Waiting for [`Effect::RequestPlan`].
    Requesting {
        effect: EffectId,
        /// The id the candidate will carry.
        plan_id: PlanId,
        attempt: u32,
        planner: PlannerChoice,
        deadline: DateTime<Utc>,
        /// When the configured planner's total budget for this planning round is spent.
        budget_ends_at: DateTime<Utc>,
    },
    /// Every planner failed; planning starts over at `retry_at`.
    Waiting { retry_at: DateTime<Utc> },
}

pub(super) fn on_context(
    phase: Phase,
    shared: &mut Shared,
    now: DateTime<Utc>,
    effect: EffectId,
    result: Result<IncidentContext, PortFailure>,
) -> Phase {
    match phase {
        Phase::IncidentActive(IncidentActive {
            mut incident,
            planning: Planning::FetchingContext {
                effect: expected, ..
            },
        }) if expected == effect => {
            match result {
                Ok(context) => {
                    let summary = &mut incident.card.datadog_summary;
                    if context.error_rate.is_finite() && context.error_rate >= 0.0 {
                        summary.signal.error_rate_5m = context.error_rate.min(1.0) * 100.0;
                        if incident.titled_by_rate {
                            incident.card.title = rate_title(
                                &summary.service,
                                summary.signal.error_rate_5m,
                                shared.config.trigger_error_rate,
                            );
                        }
                    }
                    if context.p95_latency_ms.is_finite() && context.p95_latency_ms >= 0.0 {
                        summary.signal.p95_latency_ms_5m = context.p95_latency_ms;
                    }
                    if context.top_error.is_some() {
                        summary.signal.top_error = context.top_error;
                    }
                    summary.evidence_links = context.evidence_links;
                }
                Err(failure) => {
                    warn!(incident_id = %incident.id, ?failure, "context fetch failed; using what is known");
                }
            }
            announce_and_plan(incident, shared, now)
        }
        other => {
            debug!(%effect, "stale context answer ignored");
            other
        }
    }
}

/// Publishes `incident.created` (empty plan) and requests the first plan.
pub(super) fn announce_and_plan(
    incident: OpenIncident,
    shared: &mut Shared,
    now: DateTime<Utc>,
) -> Phase {
    shared.publish(now, WsMessage::IncidentCreated(incident.card.clone()));
    request_plan(incident, shared, now, 1, Vec::new(), None)
}

/// Requests attempt `attempt`; `budget_ends_at` is `None` at the start of a planning round (its budget starts now).
pub(super) fn request_plan(
    incident: OpenIncident,
    shared: &mut Shared,
    now: DateTime<Utc>,
    attempt: u32,
    previous_violations: Vec<Violation>,
    budget_ends_at: Option<DateTime<Utc>>,
) -> Phase {
    let planner = if attempt <= shared.config.max_plan_attempts {
        PlannerChoice::Configured
    } else {
        PlannerChoice::Rules
    };
    let budget_ends_at = budget_ends_at.unwrap_or_else(|| after(now, shared.config.plan_budget));
    let deadline = after(now, shared.config.plan_deadline);
    // The configured planner's attempt ends with the budget at the latest; the rule planner is local and quick.
    let deadline = match planner {
        PlannerChoice::Configured => deadline.min(budget_ends_at),
        PlannerChoice::Rules => deadline,
    };
    let effect = shared.effect_id();
    let plan_id = shared.plan_id();
    info!(incident_id = %incident.id, attempt, ?planner, plan_id = %plan_id, "requesting a plan");
    shared.effects.push_back(Effect::RequestPlan {
        effect,
        plan_id: plan_id.clone(),
        context: plan_context(shared, &incident),
        attempt,
        previous_violations,
        planner,
    });
    Phase::IncidentActive(IncidentActive {
        incident,
        planning: Planning::Requesting {
            effect,
            plan_id,
            attempt,
            planner,
            deadline,
            budget_ends_at,
        },
    })
}

/// A plan attempt that failed, and the budget it ran under.
pub(super) struct FailedAttempt {
    attempt: u32,
    planner: PlannerChoice,
    budget_ends_at: DateTime<Utc>,
    /// How it failed, in a few words (for the timeline when the budget is spent).
    why: &'static str,
}

pub(super) fn on_plan(
    phase: Phase,
    shared: &mut Shared,
    now: DateTime<Utc>,
    effect: EffectId,
    result: Result<Plan, PortFailure>,
) -> Phase {
    let (incident, plan_id, attempt, planner, budget_ends_at) = match phase {
        Phase::IncidentActive(IncidentActive {
            incident,
            planning:
                Planning::Requesting {
                    effect: expected,
                    plan_id,
                    attempt,
                    planner,
                    budget_ends_at,
                    ..
                },
        }) if expected == effect => (incident, plan_id, attempt, planner, budget_ends_at),
        other => {
            debug!(%effect, "stale plan answer ignored");
            return other;
        }
    };
    match result {
        Ok(mut plan) => {
            plan.plan_id = plan_id.as_str().to_owned();
            plan.generated_at = now;
            match validate(plan, &shared.config.service.policy) {
                Ok(plan) => start_validating(incident, shared, now, plan),
                Err(violations) => {
                    warn!(incident_id = %incident.id, attempt, violations = violations.len(), "plan rejected by the validator");
                    let first = violations
                        .first()
                        .map(ToString::to_string)
                        .unwrap_or_default();
                    shared.history.note(
                        &incident.id,
                        now,
                        TimelineKind::PlanRejected,
                        format!(
                            "attempt {attempt} ({planner:?} planner): {} violation(s), first: {first}",
                            violations.len()
                        ),
                    );
                    let failed = FailedAttempt {
                        attempt,
                        planner,
                        budget_ends_at,
                        why: "an invalid plan",
                    };
                    plan_failed(incident, shared, now, failed, violations)
                }
            }
        }
        Err(failure) => {
            warn!(incident_id = %incident.id, attempt, ?failure, "plan generation failed");
            shared.history.note(
                &incident.id,
                now,
                TimelineKind::PlanRejected,
                format!(
                    "attempt {attempt} ({planner:?} planner): the planner failed: {}",
                    describe_source_failure(&failure)
                ),
            );
            let failed = FailedAttempt {
                attempt,
                planner,
                budget_ends_at,
                why: "the planner failed",
            };
            plan_failed(incident, shared, now, failed, Vec::new())
        }
    }
}

/// A plan attempt failed (invalid, generation failed, or deadline): re-request, fall back, or wait.
pub(super) fn plan_failed(
    incident: OpenIncident,
    shared: &mut Shared,
    now: DateTime<Utc>,
    failed: FailedAttempt,
    violations: Vec<Violation>,
) -> Phase {
    if failed.planner == PlannerChoice::Configured {
        if now < failed.budget_ends_at {
            let next = failed.attempt.saturating_add(1);
            return request_plan(
                incident,
                shared,
                now,
                next,
                violations,
                Some(failed.budget_ends_at),
            );
        }
        // The budget is spent: no more waiting on the configured planner (a hung LLM never holds the loop).
        let budget = shared.config.plan_budget.as_secs_f64();
        let attempts = failed.attempt;
        let reason = format!(
            "planning budget of {budget} s spent after {attempts} attempt(s) of the configured planner (last: {}); \
             using the rule planner's plan",
            failed.why
        );
        warn!(incident_id = %incident.id, attempts, budget_secs = budget, "{reason}");
        shared
            .history
            .note(&incident.id, now, TimelineKind::PlanRejected, reason);
    }
    // The rule planner's answer failed too, or the budget is spent: build the rule plan here, it is pure.
    let plan = rule_plan(&plan_context(shared, &incident), shared.plan_id(), now);
    match validate(plan, &shared.config.service.policy) {
        Ok(plan) => start_validating(incident, shared, now, plan),
        Err(violations) => {
            let retry_at = after(now, shared.config.rerun_interval);
            tracing::error!(
                incident_id = %incident.id,
                first_violation = %violations.first().map(ToString::to_string).unwrap_or_default(),
                "even the rule plan is invalid under the policy; planning starts over later"
            );
            Phase::IncidentActive(IncidentActive {
                incident,
                planning: Planning::Waiting { retry_at },
            })
        }
    }
}

/// The plan is validated: publish it and start the first run.
pub(super) fn start_validating(
    mut incident: OpenIncident,
    shared: &mut Shared,
    now: DateTime<Utc>,
    plan: ValidatedPlan,
) -> Phase {
    incident.card.plan = plan.plan().clone();
    info!(incident_id = %incident.id, plan_id = %plan.plan().plan_id, "plan validated");
    shared.publish(
        now,
        WsMessage::PlanGenerated(PlanGenerated {
            incident_id: incident.id.as_str().to_owned(),
            plan: plan.plan().clone(),
        }),
    );
    let run = runs::start_run(shared, now, &incident, &plan, "plan validated");
    shared.set_status(now, IncidentState::Validating, Some(&incident.id));
    runs::publish_run(shared, now, &run.run_id);
    Phase::Validating(Validating {
        incident,
        plan,
        run: RunSlot::Running(run),
        rerun_pending: false,
        gate: GateNotes::default(),
    })
}

/// What the planner is told about `incident`.
pub(super) fn plan_context(shared: &Shared, incident: &OpenIncident) -> PlanContext {
    let service = &shared.config.service;
    PlanContext {
        incident_id: incident.id.clone(),
        service: service.name.clone(),
        description: service.description.clone(),
        base_url: service.base_url.trim_end_matches('/').to_owned(),
        signal: incident.card.datadog_summary.signal.clone(),
        title: incident.card.title.clone(),
        evidence_links: incident.card.datadog_summary.evidence_links.clone(),
        journeys: service.journeys.clone(),
        coverage: service.policy.coverage.clone(),
    }
}

/// The planning timers: a context fetch or a plan request that missed its deadline, or the retry after every
/// planner failed.
pub(super) fn on_timeout(active: IncidentActive, shared: &mut Shared, now: DateTime<Utc>) -> Phase {
    match active.planning {
        Planning::FetchingContext { deadline, .. } if deadline <= now => {
            warn!(incident_id = %active.incident.id, "context fetch missed its deadline; using what is known");
            announce_and_plan(active.incident, shared, now)
        }
        Planning::Requesting {
            deadline,
            attempt,
            planner,
            budget_ends_at,
            ..
        } if deadline <= now => {
            warn!(incident_id = %active.incident.id, attempt, "plan request missed its deadline");
            shared.history.note(
                &active.incident.id,
                now,
                TimelineKind::PlanRejected,
                format!(
                    "attempt {attempt} ({planner:?} planner): no answer before the plan deadline"
                ),
            );
            let failed = FailedAttempt {
                attempt,
                planner,
                budget_ends_at,
                why: "no answer",
            };
            plan_failed(active.incident, shared, now, failed, Vec::new())
        }
        Planning::Waiting { retry_at } if retry_at <= now => {
            request_plan(active.incident, shared, now, 1, Vec::new(), None)
        }
        _ => Phase::IncidentActive(active),
    }
}

/// The driver restarted: a context fetch or a plan request in flight is issued again (same attempt, new effect
/// id and deadline; the planning budget keeps its absolute end).
pub(super) fn restarted(active: IncidentActive, shared: &mut Shared, now: DateTime<Utc>) -> Phase {
    match active {
        IncidentActive {
            incident,
            planning: Planning::FetchingContext { .. },
        } => {
            warn!(incident_id = %incident.id, "context fetch interrupted by restart; fetching again");
            let effect = shared.effect_id();
            shared.effects.push_back(Effect::FetchContext {
                effect,
                incident_id: incident.id.clone(),
            });
            Phase::IncidentActive(IncidentActive {
                incident,
                planning: Planning::FetchingContext {
                    effect,
                    deadline: after(now, shared.config.context_deadline),
                },
            })
        }
        IncidentActive {
            incident,
            planning:
                Planning::Requesting {
                    attempt,
                    budget_ends_at,
                    ..
                },
        } => {
            warn!(incident_id = %incident.id, attempt, "plan request interrupted by restart; asking again");
            // The budget keeps its absolute end: time spent down counts, as for every timer.
            request_plan(
                incident,
                shared,
                now,
                attempt,
                Vec::new(),
                Some(budget_ends_at),
            )
        }
        waiting => Phase::IncidentActive(waiting),
    }
}

// Restoring a snapshot under a changed policy.

/// The plan validated again under the configuration's policy; `None` (and a run in flight marked FAILED) when the
/// policy no longer accepts it.
pub(super) fn revalidate(
    plan: Plan,
    shared: &mut Shared,
    incident: &OpenIncident,
    running: Option<&str>,
    now: DateTime<Utc>,
) -> Option<ValidatedPlan> {
    match validate(plan, &shared.config.service.policy) {
        Ok(plan) => Some(plan),
        Err(violations) => {
            warn!(
                incident_id = %incident.id,
                first_violation = %violations.first().map(ToString::to_string).unwrap_or_default(),
                "the restored plan no longer passes the service's policy; planning again"
            );
            let reason = "run failed: the plan no longer passes the service's policy".to_owned();
            if let Some(run) = running.and_then(|run_id| shared.runs.get_mut(&RunId::new(run_id))) {
                run.status = RunStatus::Failed;
                runs::fail_unfinished(run, now, &reason);
            }
            None
        }
    }
}

/// Planning again from attempt 1, at once (the `Waiting` timer is due now); the status follows (published).
pub(super) fn replan(incident: OpenIncident, shared: &mut Shared, now: DateTime<Utc>) -> Phase {
    shared.set_status(now, IncidentState::IncidentActive, Some(&incident.id));
    Phase::IncidentActive(IncidentActive {
        incident,
        planning: Planning::Waiting { retry_at: now },
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{active, at, drain, incident, published, shared};
    use super::*;

    fn requesting(phase: &Phase) -> (EffectId, PlanId, u32, PlannerChoice) {
        match phase {
            Phase::IncidentActive(IncidentActive {
                planning:
                    Planning::Requesting {
                        effect,
                        plan_id,
                        attempt,
                        planner,
                        ..
                    },
                ..
            }) => (*effect, plan_id.clone(), *attempt, *planner),
            other => panic!("expected a plan request, got {other:?}"),
        }
    }

    #[test]
    fn the_context_answer_announces_the_incident_and_asks_for_a_plan() {
        let mut shared = shared();
        let active = active(&mut shared, at(1));
        let Planning::FetchingContext { effect, .. } = active.planning else {
            panic!("fetching the context first");
        };
        let phase = on_context(
            Phase::IncidentActive(active),
            &mut shared,
            at(2),
            effect,
            Err(PortFailure::Timeout),
        );
        let (_, plan_id, attempt, planner) = requesting(&phase);
        assert_eq!((attempt, planner), (1, PlannerChoice::Configured));
        assert_eq!(plan_id.as_str(), "plan-t-1");
        assert_eq!(published(&drain(&mut shared)), ["incident.created"]);
    }

    #[test]
    fn the_configured_planner_gets_max_plan_attempts_then_the_rule_planner() {
        let mut shared = shared();
        let last = shared.config.max_plan_attempts;
        let phase = request_plan(
            incident(&mut shared, at(1)),
            &mut shared,
            at(1),
            last,
            Vec::new(),
            None,
        );
        assert_eq!(requesting(&phase).3, PlannerChoice::Configured);
        let phase = request_plan(
            incident(&mut shared, at(1)),
            &mut shared,
            at(1),
            last + 1,
            Vec::new(),
            None,
        );
        assert_eq!(requesting(&phase).3, PlannerChoice::Rules);
    }

    #[test]
    fn a_candidate_carries_the_engines_plan_id_whatever_the_planner_wrote() {
        let mut shared = shared();
        let phase = request_plan(
            incident(&mut shared, at(1)),
            &mut shared,
            at(1),
            1,
            Vec::new(),
            None,
        );
        let (effect, plan_id, ..) = requesting(&phase);
        let Phase::IncidentActive(active) = &phase else {
            unreachable!("requesting")
        };
        let mut candidate = rule_plan(
            &plan_context(&shared, &active.incident),
            PlanId::new("x"),
            at(0),
        );
        candidate.plan_id = "made-up".to_owned();
        let phase = on_plan(phase, &mut shared, at(2), effect, Ok(candidate));
        let Phase::Validating(validating) = phase else {
            panic!("a valid candidate starts validation");
        };
        assert_eq!(validating.plan.plan().plan_id, plan_id.as_str());
        assert_eq!(validating.plan.plan().generated_at, at(2));
    }

    #[test]
    fn a_failed_attempt_once_the_budget_is_spent_goes_straight_to_the_rule_plan() {
        let mut shared = shared();
        let failed = FailedAttempt {
            attempt: 1,
            planner: PlannerChoice::Configured,
            budget_ends_at: at(5),
            why: "the planner failed",
        };
        let phase = plan_failed(
            incident(&mut shared, at(1)),
            &mut shared,
            at(5),
            failed,
            Vec::new(),
        );
        assert!(matches!(phase, Phase::Validating(_)), "{phase:?}");
        assert!(
            drain(&mut shared)
                .iter()
                .any(|effect| matches!(effect, Effect::StartRun { .. }))
        );
    }

    #[test]
    fn a_missed_plan_deadline_within_the_budget_asks_again() {
        let mut shared = shared();
        // A budget longer than one attempt's deadline, so the missed deadline leaves budget for a re-request.
        shared.config.plan_budget = std::time::Duration::from_secs(120);
        let phase = request_plan(
            incident(&mut shared, at(1)),
            &mut shared,
            at(1),
            1,
            Vec::new(),
            None,
        );
        let Phase::IncidentActive(active) = phase else {
            unreachable!("requesting")
        };
        let Planning::Requesting { deadline, .. } = active.planning else {
            unreachable!("requesting")
        };
        let phase = on_timeout(active, &mut shared, deadline);
        let (_, _, attempt, planner) = requesting(&phase);
        assert_eq!((attempt, planner), (2, PlannerChoice::Configured));
    }
}
