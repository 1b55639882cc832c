//! Restarts: what the engine does with the effects that were in flight when the process died, and which
//! snapshots it refuses.

use fixloop_contract::{IncidentState, RunStatus, TestStatus, WsMessage};
use fixloop_core::engine::{
    Effect, Engine, Input, PlannerChoice, RestoreError, SNAPSHOT_FORMAT, Snapshot, SnapshotError,
};
use fixloop_core::{IncidentId, RunId};

use crate::engine_harness::{Harness, demo_config, valid_plan};

/// The harness's engine replaced by its snapshot, serialized and restored, as after a process restart.
fn restart(h: &mut Harness) {
    let snapshot = h.engine.snapshot().expect("drained");
    let json = serde_json::to_string(&snapshot).expect("serialize");
    let snapshot: Snapshot = serde_json::from_str(&json).expect("deserialize");
    h.engine = Engine::restore(demo_config(), snapshot).expect("restore");
    h.ok(Input::Restarted);
}

#[test]
fn a_run_in_flight_at_a_restart_ends_failed_as_interrupted_and_a_rerun_follows() {
    let mut h = Harness::demo();
    h.open_and_plan();
    let first_run = h.outstanding.run.clone().expect("a run").1;
    h.progress(
        "t1-checkout-valid",
        TestStatus::Fail,
        Some("status was 500"),
    );
    let mark = h.mark();
    restart(&mut h);

    let run = h
        .engine
        .run(&first_run)
        .expect("the old run is still readable");
    assert_eq!(run.status, RunStatus::Failed);
    let interrupted: Vec<_> = run
        .tests
        .iter()
        .filter(|test| test.details.as_deref() == Some("run failed: interrupted by restart"))
        .collect();
    assert_eq!(
        interrupted.len(),
        4,
        "every test without a verdict says why: {run:?}"
    );
    assert_eq!(
        run.tests[0].details.as_deref(),
        Some("status was 500"),
        "a verdict given before the restart stays"
    );
    let effects = h.effects_since(mark);
    let new_runs: Vec<&RunId> = effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::StartRun { run_id, .. } => Some(run_id),
            _ => None,
        })
        .collect();
    assert_eq!(new_runs.len(), 1, "exactly one rerun: {effects:?}");
    assert_ne!(new_runs[0], &first_run);
    assert_eq!(h.status(), IncidentState::Validating);
    // Nothing is cancelled: the old runner died with the old process.
    assert!(
        !effects
            .iter()
            .any(|effect| matches!(effect, Effect::CancelRun { .. }))
    );

    // The loop goes on to RECOVERED with the same incident.
    h.healthy(2);
    h.pass_all();
    assert_eq!(h.status(), IncidentState::Recovered);
    assert_eq!(
        h.engine.status().active_incident_id.as_deref(),
        Some("inc-t-1")
    );
}

#[test]
fn a_plan_request_in_flight_at_a_restart_is_asked_again() {
    let mut h = Harness::demo();
    h.ok(Input::SimulateOn);
    h.context_ok();
    let (before, attempt, planner, _) = h.outstanding.plan.expect("a plan request");
    restart(&mut h);
    let (after, again, planner_again, _) = h.outstanding.plan.expect("a new plan request");
    assert_ne!(before, after, "a new effect id");
    assert_eq!((again, planner_again), (attempt, planner));
    assert_eq!(planner, PlannerChoice::Configured);
    // An answer to the dead request is ignored; the new one is taken.
    h.ok(Input::PlanProposed {
        effect: before,
        plan: valid_plan(),
    });
    assert_eq!(h.status(), IncidentState::IncidentActive);
    h.propose(valid_plan());
    assert_eq!(h.status(), IncidentState::Validating);
}

#[test]
fn a_context_fetch_in_flight_at_a_restart_is_fetched_again() {
    let mut h = Harness::demo();
    h.ok(Input::SimulateOn);
    let before = h.outstanding.fetch.expect("a fetch");
    let mark = h.mark();
    restart(&mut h);
    let after = h.outstanding.fetch.expect("a new fetch");
    assert_ne!(before, after);
    assert!(
        Harness::kinds(h.effects_since(mark)).is_empty(),
        "nothing is published until the context arrives"
    );
    h.context_ok();
    assert!(h.outstanding.plan.is_some());
}

#[test]
fn a_restart_while_healthy_or_recovered_changes_nothing() {
    let mut h = Harness::demo();
    h.healthy(2);
    let mark = h.mark();
    restart(&mut h);
    assert!(h.effects_since(mark).is_empty());

    h.open_and_plan();
    h.healthy(2);
    h.pass_all();
    assert_eq!(h.status(), IncidentState::Recovered);
    let mark = h.mark();
    restart(&mut h);
    assert!(h.effects_since(mark).is_empty());
    assert_eq!(h.status(), IncidentState::Recovered);
}

#[test]
fn ids_continue_the_series_of_the_snapshot() {
    let mut h = Harness::demo();
    h.open_and_plan();
    h.ok(Input::SimulateOff);
    let snapshot = h.engine.snapshot().expect("drained");
    assert_eq!(snapshot.id_prefix(), "t");
    let mut config = demo_config();
    config.id_prefix = "another-process".to_owned();
    h.engine = Engine::restore(config, snapshot).expect("restore");
    h.ok(Input::Restarted);
    h.advance(30);
    h.ok(Input::SimulateOn);
    assert_eq!(
        h.engine.status().active_incident_id.as_deref(),
        Some("inc-t-2")
    );
    assert!(h.engine.incident(&IncidentId::new("inc-t-1")).is_some());
}

#[test]
fn a_snapshot_is_refused_while_effects_are_pending() {
    let mut engine = Engine::new(demo_config(), crate::engine_harness::start_time());
    engine
        .handle_input(crate::engine_harness::start_time(), Input::SimulateOn)
        .expect("accepted");
    assert!(matches!(
        engine.snapshot(),
        Err(SnapshotError::EffectsPending(n)) if n > 0
    ));
    while engine.poll_effect().is_some() {}
    assert!(engine.snapshot().is_ok());
}

#[test]
fn a_snapshot_of_a_newer_format_or_another_service_is_refused() {
    let h = Harness::demo();
    let snapshot = h.engine.snapshot().expect("drained");
    assert_eq!(snapshot.format(), SNAPSHOT_FORMAT);

    let mut json = serde_json::to_value(&snapshot).expect("serialize");
    json["format"] = serde_json::json!(SNAPSHOT_FORMAT + 1);
    let newer: Snapshot = serde_json::from_value(json).expect("the shape still reads");
    assert_eq!(
        Engine::restore(demo_config(), newer).err(),
        Some(RestoreError::UnsupportedFormat {
            found: SNAPSHOT_FORMAT + 1,
            supported: SNAPSHOT_FORMAT
        })
    );

    let mut config = demo_config();
    config.service.name = "payments".to_owned();
    let error = Engine::restore(config, snapshot).expect_err("refused");
    assert_eq!(
        error.to_string(),
        "the snapshot is of service \"demo-checkout\", the configuration watches \"payments\""
    );
}

#[test]
fn a_plan_the_changed_profile_no_longer_allows_is_made_again() {
    let mut h = Harness::demo();
    h.open_and_plan();
    let run_id = h.outstanding.run.clone().expect("a run").1;
    let snapshot = h.engine.snapshot().expect("drained");
    // The profile now allows only another host: the old plan's targets are off the allowlist.
    let mut config = demo_config();
    config.service.policy.allowed_base_urls = vec!["http://127.0.0.1:9999".to_owned()];
    let mut engine = Engine::restore(config, snapshot).expect("restore");
    assert_eq!(engine.status().status, IncidentState::IncidentActive);
    assert!(
        matches!(
            engine.poll_effect(),
            Some(Effect::Publish(envelope))
                if matches!(&envelope.message, WsMessage::SystemStatus(status) if status.status == IncidentState::IncidentActive)
        ),
        "the status change is published"
    );
    let run = engine.run(&run_id).expect("still readable");
    assert_eq!(run.status, RunStatus::Failed);
    assert!(
        run.tests.iter().all(|test| test.status == TestStatus::Fail),
        "{run:?}"
    );
    let now = h.now;
    engine
        .handle_input(now, Input::Restarted)
        .expect("accepted");
    let mut effects = Vec::new();
    while let Some(effect) = engine.poll_effect() {
        effects.push(effect);
    }
    assert!(
        effects
            .iter()
            .any(|effect| matches!(effect, Effect::RequestPlan { attempt: 1, .. })),
        "a new plan is requested at once: {effects:?}"
    );
}

#[test]
fn an_alert_resolved_after_a_restart_finds_its_incident_and_starts_a_rerun() {
    let mut h = Harness::demo();
    h.alert("dd-7");
    h.context_ok();
    h.propose(valid_plan());
    h.verdicts(&["t1-checkout-valid"]);
    assert_eq!(h.status(), IncidentState::IncidentActive);
    restart(&mut h);
    let mark = h.mark();
    h.ok(Input::AlertResolved {
        dedupe_key: "dd-7".to_owned(),
    });
    assert_eq!(Harness::runs_started(h.effects_since(mark)), 1);
    assert_eq!(h.status(), IncidentState::Validating);
}

#[test]
fn a_snapshot_from_before_the_engine_polled_by_itself_restores_and_reads_at_once() {
    let mut h = Harness::demo();
    h.open_and_plan();
    h.pass_all();
    let snapshot = h.engine.snapshot().expect("drained");
    let mut json = serde_json::to_value(&snapshot).expect("serialize");
    // Format 1 as written before the polling timer, the inconclusive gate and the probes' verdict existed.
    let object = json.as_object_mut().expect("an object");
    object.remove("polling");
    for field in [
        "last_read_at",
        "extending",
        "inconclusive",
        "inconclusive_reason",
    ] {
        object["signals"]
            .as_object_mut()
            .expect("signals")
            .remove(field);
    }
    object["blindness"]
        .as_object_mut()
        .expect("blindness")
        .remove("probes_failing");
    let phase = object["phase"].as_object_mut().expect("phase");
    phase.remove("needs_human");
    phase.remove("inconclusive_noted");
    let older: Snapshot = serde_json::from_value(json).expect("an older snapshot reads");
    h.engine = Engine::restore(demo_config(), older).expect("restores");
    let mark = h.mark();
    h.ok(Input::Restarted);
    assert_eq!(h.status(), IncidentState::Validating);
    assert!(!h.engine.needs_human());
    assert!(
        h.effects_since(mark)
            .iter()
            .any(|effect| matches!(effect, Effect::SampleSignals { .. })),
        "the first read is due at once: {:?}",
        h.effects_since(mark)
    );
}
