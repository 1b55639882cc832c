//! Incident history: the timeline the engine records as it publishes, the figures computed from its own times,
//! the newest-first list with its cursor, and the history's survival across a snapshot and restore.

use fixloop_contract::chrono::TimeDelta;
use fixloop_contract::{CopilotAnswer, IncidentState, RunStatus, TimelineKind};
use fixloop_core::IncidentId;
use fixloop_core::engine::{Engine, Input, Snapshot};

use crate::engine_harness::{Harness, demo_config, start_time, valid_plan};

fn kinds(h: &Harness, incident: &str) -> Vec<TimelineKind> {
    h.engine
        .incident_history(&IncidentId::new(incident))
        .expect("the incident has a history")
        .timeline
        .iter()
        .map(|entry| entry.kind)
        .collect()
}

#[test]
fn a_polled_incident_records_its_timeline_and_figures_through_to_its_close() {
    let mut h = Harness::demo();
    // Demo config: two hot samples within the window open the incident, one second apart.
    h.hot(2);
    assert_eq!(h.status(), IncidentState::IncidentActive);
    let detected_at = h.now;
    h.advance(1);
    h.context_ok();
    h.advance(1);
    h.propose(valid_plan());
    h.advance(2);
    h.verdicts(&["t1-checkout-valid"]);
    h.ok(Input::CopilotAnswered(CopilotAnswer {
        incident_id: Some("inc-t-1".to_owned()),
        question: "Why is checkout failing?".to_owned(),
        answer: "The payment call returns 500.".to_owned(),
        citations: Vec::new(),
        created_at: h.now,
        answered_by: None,
        fallback_reason: None,
        redacted: None,
    }));
    h.advance(1);
    // The first healthy sample after unhealthy ones starts a rerun; the second completes the signal gate.
    h.healthy(2);
    h.pass_all();
    assert_eq!(h.status(), IncidentState::Recovered);
    let recovered_at = h.now;

    let open = h
        .engine
        .incident_history(&IncidentId::new("inc-t-1"))
        .expect("open incident");
    assert_eq!(open.incident_end, None);
    assert_eq!(open.status, Some(IncidentState::Recovered));
    assert_eq!(open.figures.time_to_detect_seconds, Some(1.0));
    assert_eq!(open.figures.time_to_first_run_seconds, Some(2.0));
    assert_eq!(
        open.figures.time_to_recover_seconds,
        Some((recovered_at - detected_at).num_milliseconds() as f64 / 1000.0)
    );
    assert_eq!(
        open.figures.first_hot_sample_at,
        Some(detected_at - TimeDelta::seconds(1))
    );

    // The soak window (15 s in the demo config) elapses: the incident closes.
    h.advance(20);
    assert_eq!(h.status(), IncidentState::Healthy);
    let closed = h
        .engine
        .incident_history(&IncidentId::new("inc-t-1"))
        .expect("closed incident");
    assert_eq!(
        closed.incident_end,
        Some(recovered_at + TimeDelta::seconds(15))
    );
    assert_eq!(closed.status, None);
    assert_eq!(
        closed.resolution.as_deref(),
        Some("soak window elapsed without relapse")
    );
    assert_eq!(closed.figures, open.figures, "closing changes no figure");
    assert_eq!(
        kinds(&h, "inc-t-1"),
        vec![
            TimelineKind::Detected,
            TimelineKind::StatusChanged,
            TimelineKind::Announced,
            TimelineKind::PlanValidated,
            // The status is published before the run's first `tests.updated`.
            TimelineKind::StatusChanged,
            TimelineKind::RunStarted,
            TimelineKind::RunFinished,
            TimelineKind::StatusChanged,
            // Each run's verdict, with its reason.
            TimelineKind::RecoveryChecked,
            TimelineKind::CopilotAnswered,
            TimelineKind::StatusChanged,
            TimelineKind::RunStarted,
            TimelineKind::RunFinished,
            TimelineKind::StatusChanged,
            TimelineKind::RecoveryChecked,
            TimelineKind::Resolved,
        ]
    );
    let timeline = &closed.timeline;
    assert!(timeline[0].summary.starts_with("opened by polling"));
    assert_eq!(timeline[3].plan_id.as_deref(), Some("plan-t-1"));
    assert_eq!(timeline[6].run_status, Some(RunStatus::Failed));
    assert!(
        timeline[6].summary.contains("1 of 5 tests failed"),
        "{}",
        timeline[6].summary
    );
    assert!(
        timeline[8]
            .summary
            .starts_with("not RECOVERED: latest run run-t-1: 1 of 5 tests failed"),
        "why the failing run did not recover: {}",
        timeline[8].summary
    );
    assert_eq!(timeline[9].summary, "Why is checkout failing?");
    assert_eq!(timeline[12].run_status, Some(RunStatus::Completed));
    assert_eq!(timeline[13].status, Some(IncidentState::Recovered));
    assert_eq!(
        timeline[14].summary,
        "RECOVERED: every test of run run-t-2 passed and the signal gate holds"
    );
    assert!(
        timeline.windows(2).all(|pair| pair[0].at <= pair[1].at),
        "oldest first: {timeline:?}"
    );
}

#[test]
fn an_incident_not_opened_by_polling_has_no_time_to_detect_and_one_closed_before_recovery_no_time_to_recover()
 {
    let mut h = Harness::demo();
    h.alert("checkout-5xx");
    h.advance(3);
    h.context_ok();
    h.propose(valid_plan());
    h.advance(5);
    h.ok(Input::SimulateOff);
    let detail = h
        .engine
        .incident_history(&IncidentId::new("inc-t-1"))
        .expect("closed incident");
    assert!(
        detail.timeline[0]
            .summary
            .starts_with("opened by an alert from datadog")
    );
    assert_eq!(detail.figures.time_to_detect_seconds, None);
    assert_eq!(detail.figures.time_to_first_run_seconds, Some(3.0));
    assert_eq!(detail.figures.time_to_recover_seconds, None);
    assert_eq!(detail.resolution.as_deref(), Some("closed by operator"));
    assert_eq!(detail.incident_end, Some(h.now));
    // The run cancelled by the close is in the timeline as FAILED.
    let finished: Vec<_> = detail
        .timeline
        .iter()
        .filter(|entry| entry.kind == TimelineKind::RunFinished)
        .collect();
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0].run_status, Some(RunStatus::Failed));
    assert!(
        finished[0].summary.contains("cancelled"),
        "{}",
        finished[0].summary
    );
}

#[test]
fn incidents_are_listed_newest_first_with_a_limit_and_a_before_cursor() {
    let mut h = Harness::demo();
    for _ in 0..3 {
        h.ok(Input::SimulateOn);
        h.advance(5);
        h.ok(Input::SimulateOff);
        h.advance(5);
    }
    h.ok(Input::SimulateOn);
    let all: Vec<String> = h
        .engine
        .incidents(100, None)
        .into_iter()
        .map(|summary| summary.incident_id)
        .collect();
    assert_eq!(all, ["inc-t-4", "inc-t-3", "inc-t-2", "inc-t-1"]);

    let first = h.engine.incidents(2, None);
    assert_eq!(first.len(), 2);
    assert_eq!(first[0].status, Some(IncidentState::IncidentActive));
    assert_eq!(first[0].incident_end, None);
    assert_eq!(first[1].status, None);
    assert_eq!(
        first[1].incident_end,
        Some(start_time() + TimeDelta::seconds(25))
    );
    let last = &first[1];
    let rest = h
        .engine
        .incidents(2, Some((last.detected_at, &last.incident_id)));
    let rest: Vec<&str> = rest.iter().map(|s| s.incident_id.as_str()).collect();
    assert_eq!(rest, ["inc-t-2", "inc-t-1"]);
    assert!(h.engine.incidents(0, None).is_empty());
    assert!(
        h.engine
            .incident_history(&IncidentId::new("inc-t-9"))
            .is_none()
    );
}

#[test]
fn the_history_survives_a_snapshot_and_restore_and_an_older_snapshot_restores_without_one() {
    let mut h = Harness::demo();
    h.open_and_plan();
    h.pass_all();
    h.ok(Input::SimulateOff);
    h.ok(Input::SimulateOn);
    let before = (
        h.engine.incidents(100, None),
        h.engine.incident_history(&IncidentId::new("inc-t-1")),
        h.engine.incident_history(&IncidentId::new("inc-t-2")),
    );
    let snapshot = h.engine.snapshot().expect("drained");
    let json = serde_json::to_value(&snapshot).expect("serialize");
    let restored = Engine::restore(
        demo_config(),
        serde_json::from_value(json.clone()).expect("deserialize"),
    )
    .expect("restore");
    let after = (
        restored.incidents(100, None),
        restored.incident_history(&IncidentId::new("inc-t-1")),
        restored.incident_history(&IncidentId::new("inc-t-2")),
    );
    assert_eq!(before, after);
    assert!(before.1.is_some() && before.2.is_some());

    // A format-1 snapshot written before the history existed has no `history` key.
    let mut old = json;
    old.as_object_mut().expect("an object").remove("history");
    let old: Snapshot = serde_json::from_value(old).expect("an older snapshot still reads");
    let restored = Engine::restore(demo_config(), old).expect("restore");
    assert!(restored.incidents(100, None).is_empty());
    assert!(restored.current_incident().is_some());
}

#[test]
fn a_rejected_plan_is_on_the_timeline_with_its_first_violation() {
    let mut h = Harness::demo();
    h.ok(Input::SimulateOn);
    h.context_ok();
    h.propose(crate::engine_harness::invalid_plan());
    h.plan_failed();
    h.propose(valid_plan());
    assert_eq!(h.status(), IncidentState::Validating);
    let detail = h
        .engine
        .incident_history(&IncidentId::new("inc-t-1"))
        .expect("open incident");
    let rejected: Vec<&str> = detail
        .timeline
        .iter()
        .filter(|entry| entry.kind == TimelineKind::PlanRejected)
        .map(|entry| entry.summary.as_str())
        .collect();
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    assert!(
        rejected[0].starts_with("attempt 1 (Configured planner): ")
            && rejected[0].contains("first: /items: a plan needs exactly 5 items, found 4"),
        "{}",
        rejected[0]
    );
    assert_eq!(
        rejected[1],
        "attempt 2 (Configured planner): the planner failed: model overloaded"
    );
    assert!(
        detail
            .timeline
            .iter()
            .any(|entry| entry.kind == TimelineKind::PlanValidated),
        "then the third attempt was validated"
    );
}
