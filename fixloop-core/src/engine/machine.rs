//! The dispatcher: every input and every due timer goes to the concept that owns it (`detection`, `blindness`,
//! `planning`, `runs`, `recovery`), with the phase taken by value and the new phase given back. No rule lives
//! here; see the parent module for the diagram and the semantics.

use fixloop_contract::WsMessage;
use fixloop_contract::chrono::{DateTime, Utc};
use tracing::debug;

use super::phase::Phase;
use super::shared::Shared;
use super::signals::CleanSample;
use super::{Input, Rejected, blindness, detection, planning, recovery, remediation, runs};

/// Applies one input.
pub(super) fn handle_input(
    phase: Phase,
    shared: &mut Shared,
    now: DateTime<Utc>,
    input: Input,
) -> (Phase, Result<(), Rejected>) {
    let phase = match input {
        Input::SignalSampled(sample) => {
            blindness::signals_back(shared, now);
            detection::on_sample(phase, shared, now, CleanSample::new(sample))
        }
        Input::SignalSourceFailed { failure } => {
            blindness::on_source_failed(phase, shared, now, &failure)
        }
        Input::ServiceProbed { effect, result } => {
            blindness::on_probed(phase, shared, now, effect, result)
        }
        Input::AlertFired(alert) if shared.remediation.suppressing(now) => {
            debug!(dedupe_key = %alert.dedupe_key, "alert during a remediation action's suppression window ignored");
            phase
        }
        Input::AlertFired(alert) => detection::on_alert(phase, shared, now, alert),
        Input::AlertResolved { dedupe_key } => {
            detection::on_alert_resolved(phase, shared, now, &dedupe_key)
        }
        Input::SimulateOn => detection::on_simulate_on(phase, shared, now),
        Input::SimulateOff => recovery::close_any(phase, shared, now, "closed by operator"),
        Input::ServiceChanged { repair } => {
            recovery::on_service_changed(phase, shared, now, repair)
        }
        Input::ContextFetched { effect, result } => {
            planning::on_context(phase, shared, now, effect, result)
        }
        Input::PlanProposed { effect, plan } => {
            planning::on_plan(phase, shared, now, effect, Ok(plan))
        }
        Input::PlanGenerationFailed { effect, failure } => {
            planning::on_plan(phase, shared, now, effect, Err(failure))
        }
        Input::TestProgressed {
            effect,
            test_id,
            status,
            details,
        } => {
            if let Phase::Validating(validating) = &phase {
                runs::on_test_progress(validating, shared, now, effect, &test_id, status, details);
            } else {
                debug!(%effect, "test progress outside validation ignored");
            }
            phase
        }
        Input::RunFinished { effect, result } => match phase {
            Phase::Validating(validating) => {
                runs::on_run_finished(validating, shared, now, effect, result)
            }
            other => {
                debug!(%effect, "run finished outside validation ignored");
                other
            }
        },
        Input::OperatorRequestedRun { incident_id } => {
            return runs::on_operator_run(phase, shared, now, &incident_id);
        }
        Input::CopilotAnswered(answer) => {
            shared.publish(now, WsMessage::CopilotAnswer(answer));
            phase
        }
        Input::Restarted => on_restarted(phase, shared, now),
        Input::ApprovalGiven {
            proposal,
            version,
            by,
        } => {
            let result = remediation::on_decision(shared, now, &proposal, version, by, true);
            return (phase, result);
        }
        Input::ApprovalRejected {
            proposal,
            version,
            by,
        } => {
            let result = remediation::on_decision(shared, now, &proposal, version, by, false);
            return (phase, result);
        }
        Input::ActionFinished { effect, result } => {
            remediation::on_action_finished(shared, now, effect, result);
            phase
        }
        Input::KillSwitchSet { engaged, by } => {
            remediation::on_kill_switch(shared, now, engaged, &by);
            phase
        }
        Input::ActionChosen {
            effect,
            action,
            reason,
        } => {
            remediation::on_action_chosen(&phase, shared, now, effect, action, reason);
            phase
        }
    };
    (phase, Ok(()))
}

/// Fires the due timers of the phase: each phase's timers belong to one concept.
pub(super) fn handle_timeout(phase: Phase, shared: &mut Shared, now: DateTime<Utc>) -> Phase {
    match phase {
        Phase::Healthy(healthy) => Phase::Healthy(healthy),
        Phase::IncidentActive(active) => planning::on_timeout(active, shared, now),
        Phase::Validating(validating) => runs::on_timeout(validating, shared, now),
        Phase::Recovered(recovered) => recovery::on_timeout(recovered, shared, now),
    }
}

/// The driver restarted: the effects it had in flight are gone; each concept re-issues or closes its own.
fn on_restarted(phase: Phase, shared: &mut Shared, now: DateTime<Utc>) -> Phase {
    shared.polling.restarted(now);
    blindness::restarted(shared);
    remediation::restarted(&phase, shared, now);
    match phase {
        Phase::IncidentActive(active) => planning::restarted(active, shared, now),
        Phase::Validating(validating) => runs::restarted(validating, shared, now),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use fixloop_contract::IncidentState;

    use super::super::phase::Healthy;
    use super::super::test_support::{at, drain, shared, validating};
    use super::super::{Effect, PortFailure};
    use super::*;
    use crate::ids::{EffectId, IncidentId};

    #[test]
    fn answers_nobody_waits_for_are_ignored_in_every_phase() {
        let mut shared = shared();
        let stale = [
            Input::RunFinished {
                effect: EffectId(99),
                result: Ok(()),
            },
            Input::PlanGenerationFailed {
                effect: EffectId(99),
                failure: PortFailure::Timeout,
            },
            Input::ContextFetched {
                effect: EffectId(99),
                result: Err(PortFailure::Timeout),
            },
        ];
        let mut phase = Phase::Healthy(Healthy::default());
        for input in stale.clone() {
            let (next, result) = handle_input(phase, &mut shared, at(1), input);
            assert_eq!(result, Ok(()));
            phase = next;
        }
        assert_eq!(phase.state(), IncidentState::Healthy);
        let mut phase = Phase::Validating(validating(&mut shared, at(2)));
        for input in stale {
            let (next, result) = handle_input(phase, &mut shared, at(3), input);
            assert_eq!(result, Ok(()));
            phase = next;
        }
        assert_eq!(phase.state(), IncidentState::Validating);
        assert!(drain(&mut shared).is_empty());
    }

    #[test]
    fn only_an_operator_run_is_ever_rejected() {
        let mut shared = shared();
        let (phase, result) = handle_input(
            Phase::Healthy(Healthy::default()),
            &mut shared,
            at(1),
            Input::OperatorRequestedRun {
                incident_id: IncidentId::new("inc-t-1"),
            },
        );
        assert_eq!(
            result,
            Err(Rejected::UnknownIncident(IncidentId::new("inc-t-1")))
        );
        assert_eq!(phase.state(), IncidentState::Healthy);
    }

    #[test]
    fn a_restart_fails_the_run_in_flight_and_starts_a_rerun() {
        let mut shared = shared();
        let phase = Phase::Validating(validating(&mut shared, at(1)));
        let (phase, _) = handle_input(phase, &mut shared, at(2), Input::Restarted);
        assert_eq!(phase.state(), IncidentState::Validating);
        let started: Vec<_> = drain(&mut shared)
            .into_iter()
            .filter_map(|effect| match effect {
                Effect::StartRun { run_id, .. } => Some(run_id),
                _ => None,
            })
            .collect();
        assert_eq!(started.len(), 1);
        assert_eq!(started[0].as_str(), "run-t-2");
    }
}
