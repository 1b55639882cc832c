//! Runs: validation runs of the incident's plan. A run is started ([`start_run`], [`Effect::StartRun`]), followed
//! test by test, and ended by its answer, its deadline (with [`Effect::CancelRun`]) or a restart; tests without a
//! verdict become FAIL with the reason. Reruns start on triggers (coalesced into one while a run is in flight) and
//! every `rerun_interval`. This module owns the run of a VALIDATING incident ([`RunSlot`]) and the runs kept for
//! queries ([`RunLog`], the last [`HISTORY`]).

use std::collections::VecDeque;

use fixloop_contract::chrono::{DateTime, Utc};
use fixloop_contract::{
    IncidentState, RunStatus, TestResult, TestRun, TestStatus, TimelineKind, WsMessage,
};
use tracing::{debug, info, warn};

use super::phase::{OpenIncident, Phase, Validating};
use super::recovery;
use super::shared::{HISTORY, Shared};
use super::{Effect, PortFailure, Rejected, after};
use crate::ids::{EffectId, IncidentId, RunId};
use crate::validate::ValidatedPlan;

/// The run of a VALIDATING incident.
#[derive(Debug)]
pub(super) enum RunSlot {
    Running(ActiveRun),
    Idle(FinishedRun),
}

impl RunSlot {
    pub(super) fn run_id(&self) -> &RunId {
        match self {
            Self::Running(run) => &run.run_id,
            Self::Idle(run) => &run.run_id,
        }
    }
}

/// A run in progress.
#[derive(Debug)]
pub(super) struct ActiveRun {
    pub(super) effect: EffectId,
    pub(super) run_id: RunId,
    pub(super) deadline: DateTime<Utc>,
}

/// The latest finished run.
#[derive(Debug)]
pub(super) struct FinishedRun {
    pub(super) run_id: RunId,
    /// COMPLETED with every test PASS.
    pub(super) passed: bool,
    /// One line about the outcome.
    pub(super) summary: String,
    pub(super) next_rerun_at: DateTime<Utc>,
}

/// The runs kept for queries: the current one and the last [`HISTORY`], oldest first.
#[derive(Debug, Default)]
pub(super) struct RunLog {
    runs: VecDeque<TestRun>,
}

impl RunLog {
    /// The runs of a snapshot.
    pub(super) fn from_runs(runs: Vec<TestRun>) -> Self {
        Self { runs: runs.into() }
    }

    /// A run by id.
    pub(super) fn get(&self, run_id: &RunId) -> Option<&TestRun> {
        self.runs
            .iter()
            .rev()
            .find(|run| run.run_id == run_id.as_str())
    }

    /// A run by id, to change it.
    pub(super) fn get_mut(&mut self, run_id: &RunId) -> Option<&mut TestRun> {
        self.runs
            .iter_mut()
            .rev()
            .find(|run| run.run_id == run_id.as_str())
    }

    /// Every run kept, oldest first.
    pub(super) fn iter(&self) -> impl Iterator<Item = &TestRun> {
        self.runs.iter()
    }

    /// Records a new run, forgetting the oldest beyond [`HISTORY`].
    fn push(&mut self, run: TestRun) {
        self.runs.push_back(run);
        while self.runs.len() > HISTORY {
            self.runs.pop_front();
        }
    }
}

/// Marks every test of `run` without a verdict FAIL, with `reason` in its details.
pub(super) fn fail_unfinished(run: &mut TestRun, now: DateTime<Utc>, reason: &str) {
    for test in &mut run.tests {
        if !matches!(test.status, TestStatus::Pass | TestStatus::Fail) {
            test.status = TestStatus::Fail;
            test.details = Some(reason.to_owned());
            test.last_update_at = now;
        }
    }
}

/// Starts a run of `plan` for `incident`: emits [`Effect::StartRun`] and records the run (not published).
pub(super) fn start_run(
    shared: &mut Shared,
    now: DateTime<Utc>,
    incident: &OpenIncident,
    plan: &ValidatedPlan,
    why: &str,
) -> ActiveRun {
    let run_id = shared.run_id();
    let effect = shared.effect_id();
    info!(incident_id = %incident.id, run_id = %run_id, why, "starting validation run");
    let tests = plan
        .plan()
        .items
        .iter()
        .map(|item| TestResult {
            test_id: item.test_id.clone(),
            name: item.name.clone(),
            status: TestStatus::Pending,
            last_update_at: now,
            details: None,
        })
        .collect();
    shared.runs.push(TestRun {
        run_id: run_id.as_str().to_owned(),
        incident_id: incident.id.as_str().to_owned(),
        started_at: now,
        status: RunStatus::Running,
        tests,
    });
    shared.effects.push_back(Effect::StartRun {
        effect,
        run_id: run_id.clone(),
        plan: plan.clone(),
    });
    ActiveRun {
        effect,
        run_id,
        deadline: after(now, shared.config.run_deadline),
    }
}

/// Publishes `tests.updated` with the run as it is now.
pub(super) fn publish_run(shared: &mut Shared, now: DateTime<Utc>, run_id: &RunId) {
    if let Some(run) = shared.runs.get(run_id).cloned() {
        shared.publish(now, WsMessage::TestsUpdated(run));
    }
}

/// The reason a run in flight at a restart ends with.
pub(super) const INTERRUPTED: &str = "interrupted by restart";

pub(super) fn on_test_progress(
    validating: &Validating,
    shared: &mut Shared,
    now: DateTime<Utc>,
    effect: EffectId,
    test_id: &str,
    status: TestStatus,
    details: Option<String>,
) {
    let RunSlot::Running(run) = &validating.run else {
        debug!(%effect, "test progress for a finished run ignored");
        return;
    };
    if run.effect != effect {
        debug!(%effect, "stale test progress ignored");
        return;
    }
    let run_id = run.run_id.clone();
    let Some(test) = shared
        .runs
        .get_mut(&run_id)
        .and_then(|run| run.tests.iter_mut().find(|test| test.test_id == test_id))
    else {
        debug!(%effect, test_id, "progress for a test not in the plan ignored");
        return;
    };
    if test.status == status && test.details == details {
        return;
    }
    test.status = status;
    test.details = details;
    test.last_update_at = now;
    publish_run(shared, now, &run_id);
}

pub(super) fn on_run_finished(
    validating: Validating,
    shared: &mut Shared,
    now: DateTime<Utc>,
    effect: EffectId,
    result: Result<(), PortFailure>,
) -> Phase {
    match &validating.run {
        RunSlot::Running(run) if run.effect == effect => {
            let result = result.map_err(|failure| describe_failure(&failure));
            finish_run(validating, shared, now, result)
        }
        _ => {
            debug!(%effect, "stale run answer ignored");
            Phase::Validating(validating)
        }
    }
}

/// Ends `run` (COMPLETED on `Ok`, FAILED with the reason on `Err`), then recovers or starts a pending rerun.
pub(super) fn finish_run(
    mut validating: Validating,
    shared: &mut Shared,
    now: DateTime<Utc>,
    result: Result<(), String>,
) -> Phase {
    let RunSlot::Running(run) = &validating.run else {
        return Phase::Validating(validating);
    };
    let run_id = run.run_id.clone();
    let mut passed = false;
    let mut summary = String::new();
    if let Some(test_run) = shared.runs.get_mut(&run_id) {
        let unfinished = match &result {
            Ok(()) => "no verdict reported before the run finished".to_owned(),
            Err(reason) => format!("run failed: {reason}"),
        };
        fail_unfinished(test_run, now, &unfinished);
        let failed: Vec<&str> = test_run
            .tests
            .iter()
            .filter(|test| test.status != TestStatus::Pass)
            .map(|test| test.name.as_str())
            .collect();
        passed = result.is_ok() && failed.is_empty() && !test_run.tests.is_empty();
        // COMPLETED means every test passed; a run with a failing test, or one that could not finish, is FAILED
        // (the reason is in the tests' details), so a dashboard never paints a failing run green.
        test_run.status = if passed {
            RunStatus::Completed
        } else {
            RunStatus::Failed
        };
        summary = match &result {
            Err(reason) => format!("run failed: {reason}"),
            Ok(()) if passed => format!("all {} tests passed", test_run.tests.len()),
            Ok(()) => format!(
                "{} of {} tests failed ({})",
                failed.len(),
                test_run.tests.len(),
                failed.join(", ")
            ),
        };
    }
    info!(incident_id = %validating.incident.id, run_id = %run_id, passed, %summary, "validation run finished");
    publish_run(shared, now, &run_id);
    if !passed {
        // Nothing is being validated any more until the next run: the incident is active.
        shared.set_status(
            now,
            IncidentState::IncidentActive,
            Some(&validating.incident.id),
        );
    }
    validating.run = RunSlot::Idle(FinishedRun {
        run_id,
        passed,
        summary,
        next_rerun_at: after(now, shared.config.rerun_interval),
    });
    let phase = recovery::try_recover(validating, shared, now);
    if let Phase::Validating(validating) = &phase {
        // The verdict of this run: why it did not recover (RECOVERED notes itself).
        let why = recovery::blocker(validating, shared, now);
        shared.history.note(
            &validating.incident.id,
            now,
            TimelineKind::RecoveryChecked,
            format!("not RECOVERED: {why}"),
        );
    }
    match phase {
        Phase::Validating(mut validating) if validating.rerun_pending => {
            validating.rerun_pending = false;
            Phase::Validating(trigger_rerun(
                validating,
                shared,
                now,
                "trigger during the previous run",
            ))
        }
        other => other,
    }
}

/// A rerun trigger: start a run now, or remember it when one is in progress.
pub(super) fn trigger_rerun(
    mut validating: Validating,
    shared: &mut Shared,
    now: DateTime<Utc>,
    why: &str,
) -> Validating {
    match validating.run {
        RunSlot::Running(_) => {
            debug!(incident_id = %validating.incident.id, why, "rerun trigger during a run: coalesced");
            validating.rerun_pending = true;
        }
        RunSlot::Idle(_) => {
            let run = start_run(shared, now, &validating.incident, &validating.plan, why);
            if shared.status.status != IncidentState::Validating {
                shared.set_status(
                    now,
                    IncidentState::Validating,
                    Some(&validating.incident.id),
                );
            }
            publish_run(shared, now, &run.run_id);
            validating.run = RunSlot::Running(run);
        }
    }
    validating
}

pub(super) fn on_operator_run(
    phase: Phase,
    shared: &mut Shared,
    now: DateTime<Utc>,
    incident_id: &IncidentId,
) -> (Phase, Result<(), Rejected>) {
    let open = phase.incident().is_some_and(|open| open.id == *incident_id);
    if !open {
        let rejection = if shared.closed_incident(incident_id).is_some() {
            Rejected::IncidentClosed(incident_id.clone())
        } else {
            Rejected::UnknownIncident(incident_id.clone())
        };
        return (phase, Err(rejection));
    }
    match phase {
        Phase::IncidentActive(active) => (
            Phase::IncidentActive(active),
            Err(Rejected::PlanNotReady(incident_id.clone())),
        ),
        Phase::Validating(validating) => {
            if let RunSlot::Running(_) = validating.run {
                debug!(%incident_id, "operator run during a run: the run in progress answers it");
                return (Phase::Validating(validating), Ok(()));
            }
            let validating = trigger_rerun(validating, shared, now, "operator requested a run");
            (Phase::Validating(validating), Ok(()))
        }
        Phase::Recovered(recovered) => (
            recovery::reopen(recovered, shared, now, "operator requested a run"),
            Ok(()),
        ),
        Phase::Healthy(healthy) => (
            Phase::Healthy(healthy),
            Err(Rejected::UnknownIncident(incident_id.clone())),
        ),
    }
}

pub(super) fn describe_failure(failure: &PortFailure) -> String {
    match failure {
        PortFailure::Timeout => "runner timed out".to_owned(),
        PortFailure::RateLimited { .. } => "runner rate limited".to_owned(),
        PortFailure::Unauthorized => "runner rejected our credentials".to_owned(),
        PortFailure::InvalidResponse(what) => format!("runner answer not understood: {what}"),
        PortFailure::Unavailable(what) => format!("runner unavailable: {what}"),
    }
}

/// The run timers: a run past its deadline is cancelled and ends FAILED; an idle incident reruns every
/// `rerun_interval`.
pub(super) fn on_timeout(validating: Validating, shared: &mut Shared, now: DateTime<Utc>) -> Phase {
    match &validating.run {
        RunSlot::Running(run) if run.deadline <= now => {
            shared
                .effects
                .push_back(Effect::CancelRun { effect: run.effect });
            // Fractional seconds, so a scaled-down deadline (a `--speed` scenario) reads as 0.8 s, not 0 s.
            let seconds = shared.config.run_deadline.as_secs_f64();
            let reason = format!("run exceeded its deadline of {seconds} s");
            warn!(incident_id = %validating.incident.id, run_id = %run.run_id, "{reason}");
            finish_run(validating, shared, now, Err(reason))
        }
        RunSlot::Idle(run) if run.next_rerun_at <= now => {
            Phase::Validating(trigger_rerun(validating, shared, now, "periodic rerun"))
        }
        _ => Phase::Validating(validating),
    }
}

/// The driver restarted: a run in flight ends FAILED "interrupted by restart" and a rerun follows.
pub(super) fn restarted(
    mut validating: Validating,
    shared: &mut Shared,
    now: DateTime<Utc>,
) -> Phase {
    if !matches!(validating.run, RunSlot::Running(_)) {
        return Phase::Validating(validating);
    }
    warn!(incident_id = %validating.incident.id, "validation run interrupted by restart; a rerun follows");
    validating.rerun_pending = true;
    finish_run(validating, shared, now, Err(INTERRUPTED.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{at, drain, shared, validating};
    use super::*;

    fn running(validating: &Validating) -> &ActiveRun {
        match &validating.run {
            RunSlot::Running(run) => run,
            RunSlot::Idle(_) => panic!("a run is in flight"),
        }
    }

    #[test]
    fn a_run_without_every_verdict_fails_and_says_why() {
        let mut shared = shared();
        let validating = validating(&mut shared, at(1));
        let run = running(&validating);
        let (effect, run_id) = (run.effect, run.run_id.clone());
        on_test_progress(
            &validating,
            &mut shared,
            at(2),
            effect,
            "j1",
            TestStatus::Pass,
            None,
        );
        let phase = on_run_finished(validating, &mut shared, at(3), effect, Ok(()));
        let run = shared.runs.get(&run_id).expect("kept");
        assert_eq!(run.status, RunStatus::Failed);
        assert_eq!(run.tests[0].status, TestStatus::Pass);
        assert!(
            run.tests[1..]
                .iter()
                .all(|test| test.status == TestStatus::Fail
                    && test.details.as_deref()
                        == Some("no verdict reported before the run finished"))
        );
        assert_eq!(phase.state(), IncidentState::IncidentActive);
    }

    #[test]
    fn a_trigger_during_a_run_is_coalesced_into_one_rerun() {
        let mut shared = shared();
        let validating = validating(&mut shared, at(1));
        let validating = trigger_rerun(validating, &mut shared, at(2), "test");
        let validating = trigger_rerun(validating, &mut shared, at(2), "test again");
        assert!(validating.rerun_pending);
        assert!(
            drain(&mut shared).is_empty(),
            "no second run while one is in flight"
        );
        let effect = running(&validating).effect;
        let phase = on_run_finished(
            validating,
            &mut shared,
            at(3),
            effect,
            Err(PortFailure::Timeout),
        );
        let Phase::Validating(validating) = phase else {
            panic!("still validating");
        };
        assert!(!validating.rerun_pending);
        assert_eq!(running(&validating).run_id.as_str(), "run-t-2");
    }

    #[test]
    fn a_run_past_its_deadline_is_cancelled_and_fails() {
        let mut shared = shared();
        let validating = validating(&mut shared, at(1));
        let run = running(&validating);
        let (effect, deadline) = (run.effect, run.deadline);
        let phase = on_timeout(validating, &mut shared, deadline);
        assert!(drain(&mut shared).contains(&Effect::CancelRun { effect }));
        let run = shared.runs.get(&RunId::new("run-t-1")).expect("kept");
        assert_eq!(run.status, RunStatus::Failed);
        assert_eq!(phase.state(), IncidentState::IncidentActive);
    }

    #[test]
    fn the_run_log_keeps_the_last_hundred_runs() {
        let mut log = RunLog::default();
        for n in 1..=HISTORY + 1 {
            log.push(TestRun {
                run_id: format!("run-{n}"),
                incident_id: "inc-1".to_owned(),
                started_at: at(0),
                status: RunStatus::Completed,
                tests: Vec::new(),
            });
        }
        assert_eq!(log.iter().count(), HISTORY);
        assert!(log.get(&RunId::new("run-1")).is_none());
        assert!(log.get(&RunId::new("run-101")).is_some());
    }

    #[test]
    fn an_operator_run_names_the_open_incident_or_is_rejected() {
        let mut shared = shared();
        let validating = validating(&mut shared, at(1));
        let (phase, result) = on_operator_run(
            Phase::Validating(validating),
            &mut shared,
            at(2),
            &IncidentId::new("inc-t-9"),
        );
        assert_eq!(
            result,
            Err(Rejected::UnknownIncident(IncidentId::new("inc-t-9")))
        );
        let (_, result) = on_operator_run(phase, &mut shared, at(2), &IncidentId::new("inc-t-1"));
        assert_eq!(result, Ok(()), "the run in progress answers it");
    }
}
