//! Recovery: when an open incident is RECOVERED, and what ends it. RECOVERED needs, at the same moment, the latest
//! run passed (every test PASS) and the signal gate (the last `recovery_samples` measurements healthy and fresh);
//! while VALIDATING the reason it is not ([`blocker`]) is logged on change and exposed. Measurements that cannot be
//! judged (no traffic, too few requests, a failed read) are *inconclusive*, never healthy: the first of a run of
//! them is written to the timeline, and after `inconclusive_limit` in a row the incident needs a human (a
//! `NEEDS_HUMAN` entry, [`Engine::needs_human`](super::Engine::needs_human)); no data is never recovery. A relapse
//! within the soak window reopens the incident ([`reopen`]); the soak's end or the operator closes it ([`close`],
//! then a cooldown). A change meant to repair the service validates at once ([`on_service_changed`]). This module
//! owns [`GateNotes`] and the RECOVERED phase.

use fixloop_contract::chrono::{DateTime, Utc};
use fixloop_contract::{IncidentState, RunStatus, TimelineKind};
use tracing::{debug, info, warn};

use super::phase::{Healthy, OpenIncident, Phase, Recovered, Validating};
use super::runs::{self, RunSlot};
use super::shared::{HISTORY, Shared};
use super::{Effect, after};

/// What the recovery gate of a VALIDATING incident has noted: part of [`Validating`], owned by this module.
#[derive(Debug, Default)]
pub(super) struct GateNotes {
    /// The last blocker written to the log, to log only changes.
    pub(super) logged_blocker: Option<String>,
    /// `inconclusive_limit` inconclusive measurements in a row: the incident needs a human.
    pub(super) needs_human: bool,
    /// The current run of inconclusive measurements is in the timeline.
    pub(super) inconclusive_noted: bool,
}

/// Called after every measurement (ended, inconclusive or failed) while VALIDATING.
pub(super) fn after_measurement(
    validating: &mut Validating,
    shared: &mut Shared,
    now: DateTime<Utc>,
) {
    let count = shared.signals.inconclusive;
    let incident_id = validating.incident.id.clone();
    if count == 0 {
        validating.gate.inconclusive_noted = false;
        if validating.gate.needs_human {
            validating.gate.needs_human = false;
            info!(%incident_id, "the signals can be judged again");
            shared.history.note(
                &incident_id,
                now,
                TimelineKind::RecoveryInconclusive,
                "signals conclusive again: the recovery gate judges them".to_owned(),
            );
        }
        return;
    }
    let reason = shared
        .signals
        .inconclusive_reason
        .clone()
        .unwrap_or_default();
    if !validating.gate.inconclusive_noted {
        validating.gate.inconclusive_noted = true;
        info!(%incident_id, %reason, "recovery gate inconclusive");
        shared.history.note(
            &incident_id,
            now,
            TimelineKind::RecoveryInconclusive,
            format!("recovery gate inconclusive: {reason} (no data is never recovery)"),
        );
    }
    let limit = shared.config.inconclusive_limit.max(1);
    if count >= limit && !validating.gate.needs_human {
        validating.gate.needs_human = true;
        warn!(%incident_id, count, %reason, "the recovery gate cannot judge the signals; the incident needs a human");
        shared.history.note(
            &incident_id,
            now,
            TimelineKind::NeedsHuman,
            format!(
                "needs a human: {count} inconclusive checks in a row (last: {reason}); FixLoop will not declare \
                 RECOVERED without data"
            ),
        );
    }
}

/// Moves to RECOVERED when both gates hold; otherwise logs why not.
pub(super) fn try_recover(
    mut validating: Validating,
    shared: &mut Shared,
    now: DateTime<Utc>,
) -> Phase {
    if let RunSlot::Idle(run) = &validating.run
        && run.passed
        && shared.signals.gate(now, &shared.config).is_ok()
    {
        return recover(validating, shared, now);
    }
    let reason = blocker(&validating, shared, now);
    if validating.gate.logged_blocker.as_deref() != Some(reason.as_str()) {
        info!(incident_id = %validating.incident.id, blocker = %reason, "not recovered yet");
        validating.gate.logged_blocker = Some(reason);
    }
    Phase::Validating(validating)
}

pub(super) fn recover(validating: Validating, shared: &mut Shared, now: DateTime<Utc>) -> Phase {
    let run_id = validating.run.run_id().clone();
    info!(incident_id = %validating.incident.id, run_id = %run_id, "recovered: every test passed and signals are healthy");
    shared.signals.clear_window();
    shared.set_status(now, IncidentState::Recovered, Some(&validating.incident.id));
    runs::publish_run(shared, now, &run_id);
    shared.history.note(
        &validating.incident.id,
        now,
        TimelineKind::RecoveryChecked,
        format!("RECOVERED: every test of run {run_id} passed and the signal gate holds"),
    );
    Phase::Recovered(Recovered {
        incident: validating.incident,
        plan: validating.plan,
        latest_run: run_id,
        soak_until: after(now, shared.config.soak_window),
    })
}

/// Why `validating` is not RECOVERED at `now`.
pub(super) fn blocker(validating: &Validating, shared: &Shared, now: DateTime<Utc>) -> String {
    let tests = match &validating.run {
        RunSlot::Running(run) => format!("run {} is in progress", run.run_id),
        RunSlot::Idle(run) => format!("latest run {}: {}", run.run_id, run.summary),
    };
    let signals = match shared.signals.gate(now, &shared.config) {
        Ok(()) => "signals healthy".to_owned(),
        Err(reason) => reason,
    };
    if validating.gate.needs_human {
        format!("needs a human: the signals cannot be judged; {tests}; {signals}")
    } else {
        format!("{tests}; {signals}")
    }
}

/// A relapse (or an operator's request) in RECOVERED: back to VALIDATING with a rerun.
pub(super) fn reopen(
    recovered: Recovered,
    shared: &mut Shared,
    now: DateTime<Utc>,
    why: &str,
) -> Phase {
    warn!(incident_id = %recovered.incident.id, why, "incident reopened");
    let mut recovered = recovered;
    // The card tells what is happening now: the relapse and its top error, not the first breach's.
    let card = &mut recovered.incident.card;
    card.title = format!(
        "{}: relapsed after RECOVERED ({why})",
        shared.config.service.name
    );
    if let Some(top_error) = shared.signals.top_error() {
        card.datadog_summary.signal.top_error = Some(top_error.to_owned());
    }
    recovered.incident.titled_by_rate = false;
    let run = runs::start_run(shared, now, &recovered.incident, &recovered.plan, why);
    shared.set_status(now, IncidentState::Validating, Some(&recovered.incident.id));
    runs::publish_run(shared, now, &run.run_id);
    Phase::Validating(Validating {
        incident: recovered.incident,
        plan: recovered.plan,
        run: RunSlot::Running(run),
        rerun_pending: false,
        gate: GateNotes::default(),
    })
}

/// Closes whatever incident is open (cancelling a run in progress).
pub(super) fn close_any(phase: Phase, shared: &mut Shared, now: DateTime<Utc>, why: &str) -> Phase {
    match phase {
        Phase::Healthy(healthy) => {
            debug!("no incident to close");
            Phase::Healthy(healthy)
        }
        Phase::IncidentActive(active) => close(active.incident, shared, now, why),
        Phase::Validating(validating) => {
            if let RunSlot::Running(run) = &validating.run {
                shared
                    .effects
                    .push_back(Effect::CancelRun { effect: run.effect });
                let reason = format!("run failed: cancelled, incident {why}");
                if let Some(test_run) = shared.runs.get_mut(&run.run_id) {
                    test_run.status = RunStatus::Failed;
                    runs::fail_unfinished(test_run, now, &reason);
                }
                runs::publish_run(shared, now, &run.run_id);
            }
            close(validating.incident, shared, now, why)
        }
        Phase::Recovered(recovered) => close(recovered.incident, shared, now, why),
    }
}

pub(super) fn close(
    incident: OpenIncident,
    shared: &mut Shared,
    now: DateTime<Utc>,
    why: &str,
) -> Phase {
    info!(incident_id = %incident.id, why, "incident closed");
    shared.signals.clear_window();
    shared.firing_alerts.clear();
    shared.set_status(now, IncidentState::Healthy, None);
    shared.history.close(&incident.id, now, why, HISTORY);
    shared.archive(incident.card);
    Phase::Healthy(Healthy {
        cooldown_until: Some(after(now, shared.config.cooldown)),
    })
}

/// The reason the open incident is not RECOVERED.
pub(super) fn recovery_blocker(phase: &Phase, shared: &Shared) -> Option<String> {
    match phase {
        Phase::Healthy(_) | Phase::Recovered(_) => None,
        Phase::IncidentActive(_) => Some("the plan is not validated yet".to_owned()),
        Phase::Validating(validating) => Some(blocker(validating, shared, shared.now)),
    }
}

/// Whether the open incident needs a human (see [`super::Engine::needs_human`]).
pub(super) fn needs_human(phase: &Phase) -> bool {
    matches!(phase, Phase::Validating(validating) if validating.gate.needs_human)
}

/// The watched service was changed: publish the status, read the signals soon, and validate at once when the
/// change is meant to repair it.
pub(super) fn on_service_changed(
    phase: Phase,
    shared: &mut Shared,
    now: DateTime<Utc>,
    repair: bool,
) -> Phase {
    shared.publish_status(now);
    // The service changed: read its signals soon rather than a full interval later.
    shared.polling.hurry(now, &shared.config);
    match phase {
        Phase::Validating(validating) if repair => Phase::Validating(runs::trigger_rerun(
            validating,
            shared,
            now,
            "the service was changed to repair it",
        )),
        other => other,
    }
}

/// The soak timer: a RECOVERED incident closes when its soak window ends without a relapse.
pub(super) fn on_timeout(recovered: Recovered, shared: &mut Shared, now: DateTime<Utc>) -> Phase {
    if recovered.soak_until <= now {
        close(
            recovered.incident,
            shared,
            now,
            "soak window elapsed without relapse",
        )
    } else {
        Phase::Recovered(recovered)
    }
}

#[cfg(test)]
mod tests {
    use fixloop_contract::TestStatus;

    use super::super::signals::CleanSample;
    use super::super::test_support::{at, drain, published, shared, validating};
    use super::*;

    /// Ends the run in flight with every test passing.
    fn pass_run(validating: Validating, shared: &mut Shared, now: DateTime<Utc>) -> Phase {
        let RunSlot::Running(run) = &validating.run else {
            panic!("a run is in flight");
        };
        let effect = run.effect;
        for item in &validating.plan.plan().items {
            runs::on_test_progress(
                &validating,
                shared,
                now,
                effect,
                &item.test_id,
                TestStatus::Pass,
                None,
            );
        }
        runs::on_run_finished(validating, shared, now, effect, Ok(()))
    }

    fn healthy_measurement(shared: &mut Shared, now: DateTime<Utc>) {
        let sample = CleanSample {
            error_rate: Some(0.0),
            p95_latency_ms: Some(80.0),
            top_error: None,
            requests: 100,
        };
        let _ = shared.signals.record(now, &sample, &shared.config, None);
    }

    #[test]
    fn passing_tests_alone_do_not_recover_the_signal_gate_decides() {
        let mut shared = shared();
        let validating = validating(&mut shared, at(1));
        let phase = pass_run(validating, &mut shared, at(2));
        let Phase::Validating(validating) = phase else {
            panic!("no healthy measurement yet: still validating");
        };
        let why = blocker(&validating, &shared, at(2));
        assert!(
            why.starts_with("latest run run-t-1: all 5 tests passed; "),
            "{why}"
        );
        for second in 3..=4 {
            healthy_measurement(&mut shared, at(second));
        }
        let phase = try_recover(validating, &mut shared, at(4));
        assert_eq!(phase.state(), IncidentState::Recovered);
        assert_eq!(recovery_blocker(&phase, &shared), None);
    }

    #[test]
    fn inconclusive_measurements_in_a_row_need_a_human_until_conclusive_again() {
        let mut shared = shared();
        let mut validating = validating(&mut shared, at(1));
        shared.signals.inconclusive = shared.config.inconclusive_limit;
        shared.signals.inconclusive_reason = Some("no traffic".to_owned());
        after_measurement(&mut validating, &mut shared, at(2));
        assert!(validating.gate.needs_human && validating.gate.inconclusive_noted);
        assert!(blocker(&validating, &shared, at(2)).starts_with("needs a human: "));
        shared.signals.inconclusive = 0;
        after_measurement(&mut validating, &mut shared, at(3));
        assert!(!validating.gate.needs_human && !validating.gate.inconclusive_noted);
    }

    #[test]
    fn closing_cancels_a_run_in_flight_and_starts_a_cooldown() {
        let mut shared = shared();
        let validating = validating(&mut shared, at(1));
        let phase = close_any(
            Phase::Validating(validating),
            &mut shared,
            at(2),
            "closed by operator",
        );
        let Phase::Healthy(healthy) = phase else {
            panic!("closed");
        };
        assert_eq!(
            healthy.cooldown_until,
            Some(after(at(2), shared.config.cooldown))
        );
        let effects = drain(&mut shared);
        assert!(matches!(effects[0], Effect::CancelRun { .. }));
        assert_eq!(published(&effects), ["tests.updated", "system.status"]);
        let run = shared
            .runs
            .get(&crate::RunId::new("run-t-1"))
            .expect("kept");
        assert_eq!(run.status, RunStatus::Failed);
        assert_eq!(shared.closed.len(), 1);
    }

    #[test]
    fn a_repair_validates_at_once_and_a_relapse_reopens_the_recovered_incident() {
        let mut shared = shared();
        let validating = validating(&mut shared, at(1));
        let RunSlot::Running(run) = &validating.run else {
            panic!("a run is in flight");
        };
        let effect = run.effect;
        let phase = runs::on_run_finished(
            validating,
            &mut shared,
            at(2),
            effect,
            Err(crate::engine::PortFailure::Timeout),
        );
        drain(&mut shared);
        let phase = on_service_changed(phase, &mut shared, at(3), true);
        assert_eq!(phase.state(), IncidentState::Validating);
        assert!(
            drain(&mut shared)
                .iter()
                .any(|effect| matches!(effect, Effect::StartRun { .. }))
        );
        let Phase::Validating(validating) = phase else {
            panic!("validating");
        };
        for second in 4..=5 {
            healthy_measurement(&mut shared, at(second));
        }
        let Phase::Recovered(recovered) = pass_run(validating, &mut shared, at(5)) else {
            panic!("recovered");
        };
        let phase = reopen(recovered, &mut shared, at(6), "a test relapse");
        assert_eq!(phase.state(), IncidentState::Validating);
        let title = &phase.incident().expect("open").card.title;
        assert!(
            title.ends_with("relapsed after RECOVERED (a test relapse)"),
            "{title}"
        );
    }

    #[test]
    fn the_soak_window_closes_a_recovered_incident_when_it_ends() {
        let mut shared = shared();
        let validating = validating(&mut shared, at(1));
        for second in 2..=3 {
            healthy_measurement(&mut shared, at(second));
        }
        let Phase::Recovered(recovered) = pass_run(validating, &mut shared, at(3)) else {
            panic!("recovered");
        };
        let soak_until = recovered.soak_until;
        let Phase::Recovered(recovered) = on_timeout(recovered, &mut shared, at(4)) else {
            panic!("still soaking");
        };
        assert_eq!(
            on_timeout(recovered, &mut shared, soak_until).state(),
            IncidentState::Healthy
        );
    }
}
