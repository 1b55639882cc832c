//! Scenario tests of the engine with a fake clock: each drives a whole story through the harness, asserts the
//! facts that matter, and snapshots the rendered input/effect trace.

use fixloop_contract::{CopilotAnswer, IncidentState, RunStatus, TestStatus, WsMessage};
use fixloop_core::engine::{Effect, Input, PlannerChoice, PortFailure, Rejected, SignalSample};
use fixloop_core::{EffectId, IncidentId, RunId};

use std::time::Duration;

use fixloop_contract::TimelineKind;
use fixloop_core::engine::Config;

use crate::engine_harness::{Harness, demo_config, invalid_plan, valid_plan};

/// The timeline summaries of `kind` of `incident`.
fn timeline(h: &Harness, incident: &str, kind: TimelineKind) -> Vec<String> {
    h.engine
        .incident_history(&IncidentId::new(incident))
        .expect("history")
        .timeline
        .into_iter()
        .filter(|entry| entry.kind == kind)
        .map(|entry| entry.summary)
        .collect()
}

#[test]
fn a_hung_planner_gets_the_planning_budget_then_the_rule_plan_is_used_at_once() {
    let mut h = Harness::demo();
    h.ok(Input::SimulateOn);
    h.context_ok();
    let Some(Effect::RequestPlan {
        plan_id, planner, ..
    }) = h.effects.last().cloned()
    else {
        panic!("a plan request");
    };
    assert_eq!(planner, PlannerChoice::Configured);
    // The planner never answers. Its attempt ends with the 8 s budget, not the 30 s plan deadline.
    h.advance(7);
    assert_eq!(h.status(), IncidentState::IncidentActive);
    let mark = h.mark();
    h.advance(1);
    assert_eq!(h.status(), IncidentState::Validating);
    // No round trip to another planner: the rule plan is built by the engine at once.
    assert!(
        !h.effects_since(mark)
            .iter()
            .any(|effect| matches!(effect, Effect::RequestPlan { .. })),
        "no further plan request"
    );
    let plan = &h.engine.current_incident().expect("open").plan;
    assert_eq!(plan.items.len(), 5);
    assert_ne!(plan.plan_id, plan_id.as_str(), "a new id for the rule plan");
    let rejected = timeline(&h, "inc-t-1", TimelineKind::PlanRejected);
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    assert!(rejected[0].contains("no answer before the plan deadline"));
    assert!(
        rejected[1].contains("planning budget of 8 s spent after 1 attempt(s)")
            && rejected[1].contains("rule planner's plan"),
        "{}",
        rejected[1]
    );
}

#[test]
fn attempts_share_one_budget_and_a_failure_after_it_goes_straight_to_the_rule_plan() {
    let mut h = Harness::demo();
    h.ok(Input::SimulateOn);
    h.context_ok();
    h.advance(5);
    // Attempt 1 fails at 5 s: attempt 2 is asked, and its deadline is what is left of the budget (3 s).
    h.plan_failed();
    assert_eq!(
        h.outstanding.plan.map(|p| (p.1, p.2)),
        Some((2, PlannerChoice::Configured))
    );
    h.advance(2);
    assert_eq!(h.status(), IncidentState::IncidentActive);
    h.advance(1);
    assert_eq!(h.status(), IncidentState::Validating);
    let rejected = timeline(&h, "inc-t-1", TimelineKind::PlanRejected);
    assert!(
        rejected
            .last()
            .is_some_and(|note| note.contains("after 2 attempt(s)")),
        "{rejected:?}"
    );
}

#[test]
fn the_candidate_carries_the_plan_id_of_its_request() {
    let mut h = Harness::demo();
    h.ok(Input::SimulateOn);
    h.context_ok();
    let Some(Effect::RequestPlan { plan_id, .. }) = h.effects.last().cloned() else {
        panic!("a plan request");
    };
    // The planner put its own id on it; the engine's stands.
    let mut plan = valid_plan();
    plan.plan_id = "made-up-by-the-planner".to_owned();
    h.propose(plan);
    assert_eq!(
        h.engine.current_incident().expect("open").plan.plan_id,
        plan_id.as_str()
    );
}

#[test]
fn seed_flow_end_to_end() {
    let mut h = Harness::demo();
    h.healthy(3);
    assert_eq!(h.status(), IncidentState::Healthy);

    // The bug is switched on: two hot samples within the window open an incident.
    h.ok(Input::ServiceChanged { repair: false });
    h.advance(1);
    let mark = h.mark();
    h.hot(2);
    assert_eq!(h.status(), IncidentState::IncidentActive);
    let incident_id = h
        .engine
        .status()
        .active_incident_id
        .clone()
        .expect("an incident is open");
    assert_eq!(incident_id, "inc-t-1");
    // The first hot sample waits for its confirmation (HEALTHY never shows a rate above the trigger, so nothing is
    // published); the second opened the incident.
    let published = Harness::published(h.effects_since(mark));
    assert_eq!(published.len(), 1);
    assert!(matches!(
        published[0],
        WsMessage::SystemStatus(status) if status.status == IncidentState::IncidentActive
    ));
    assert!(matches!(
        h.effects.last(),
        Some(Effect::FetchContext { .. })
    ));

    // The context arrives: incident.created with an empty plan, then the plan request.
    let mark = h.mark();
    h.context_ok();
    let created = Harness::published(h.effects_since(mark));
    let Some(WsMessage::IncidentCreated(card)) = created.first() else {
        panic!("incident.created first, got {created:?}");
    };
    assert!(card.plan.items.is_empty());
    assert_eq!(card.plan.plan_id, "inc-t-1-plan-pending");
    assert_eq!(card.plan.generated_at, card.detected_at);
    assert_eq!(card.datadog_summary.evidence_links.len(), 1);
    assert_eq!(
        h.outstanding.plan.map(|p| (p.1, p.2)),
        Some((1, PlannerChoice::Configured))
    );

    // A valid plan: plan.generated, the run starts by itself, VALIDATING.
    let mark = h.mark();
    h.propose(valid_plan());
    assert_eq!(
        Harness::kinds(h.effects_since(mark)),
        ["plan.generated", "system.status", "tests.updated"]
    );
    assert_eq!(Harness::runs_started(h.effects_since(mark)), 1);
    assert_eq!(h.status(), IncidentState::Validating);
    let run = h.engine.current_run().expect("a run is in progress");
    assert_eq!(run.run_id, "run-t-1");
    assert_eq!(run.status, RunStatus::Running);
    assert!(
        run.tests
            .iter()
            .all(|test| test.status == TestStatus::Pending)
    );
    assert_eq!(run.tests.len(), 5);
    assert_eq!(
        h.engine
            .current_incident()
            .map(|card| card.plan.plan_id.as_str()),
        Some("plan-t-1")
    );

    // The checkout test fails while the bug is on: the run is over and failed, so the incident is active again.
    h.advance(2);
    h.verdicts(&["t1-checkout-valid"]);
    assert_eq!(h.status(), IncidentState::IncidentActive);
    assert_eq!(
        h.engine.current_run().map(|run| run.status),
        Some(RunStatus::Failed),
        "a run with a failing test is FAILED"
    );

    // The operator fixes the bug: a rerun starts by itself and passes, but errors are still in the window.
    h.hot(1);
    h.advance(1);
    let mark = h.mark();
    h.ok(Input::ServiceChanged { repair: true });
    assert_eq!(Harness::runs_started(h.effects_since(mark)), 1);
    h.advance(1);
    h.pass_all();
    assert_eq!(h.status(), IncidentState::Validating);
    let blocker = h.engine.recovery_blocker().expect("blocked by the signals");
    assert!(blocker.contains("not below"), "{blocker}");

    // The signals recover: RECOVERED, with system.status and tests.updated.
    h.advance(1);
    h.healthy(2);
    h.advance(1);
    if h.status() == IncidentState::Validating {
        // The improvement started a rerun; it passes.
        h.pass_all();
    }
    assert_eq!(h.status(), IncidentState::Recovered);
    assert_eq!(h.engine.recovery_blocker(), None);
    assert_eq!(
        h.engine.status().active_incident_id.as_deref(),
        Some("inc-t-1")
    );

    // The soak window passes without relapse: HEALTHY, the incident is closed.
    h.healthy(1);
    h.advance(20);
    assert_eq!(h.status(), IncidentState::Healthy);
    assert_eq!(h.engine.current_incident(), None);
    assert!(h.engine.has_incident(&IncidentId::new("inc-t-1")));
    assert!(h.engine.run(&RunId::new("run-t-1")).is_some());
    insta::assert_snapshot!(h.trace());
}

#[test]
fn invalid_plan_is_rerequested_twice_with_violations_then_the_rule_planner_is_asked() {
    let mut h = Harness::demo();
    h.ok(Input::SimulateOn);
    h.context_ok();
    assert_eq!(
        h.outstanding.plan.map(|p| (p.1, p.2, p.3)),
        Some((1, PlannerChoice::Configured, 0))
    );
    h.propose(invalid_plan());
    let (_, attempt, planner, violations) = h.outstanding.plan.expect("re-requested");
    assert_eq!((attempt, planner), (2, PlannerChoice::Configured));
    assert!(violations > 0, "the violations go back to the planner");
    h.propose(invalid_plan());
    assert_eq!(
        h.outstanding.plan.map(|p| (p.1, p.2)),
        Some((3, PlannerChoice::Configured))
    );
    h.propose(invalid_plan());
    assert_eq!(
        h.outstanding.plan.map(|p| (p.1, p.2)),
        Some((4, PlannerChoice::Rules))
    );
    assert_eq!(h.status(), IncidentState::IncidentActive);
    h.propose(valid_plan());
    assert_eq!(h.status(), IncidentState::Validating);
    insta::assert_snapshot!(h.trace());
}

#[test]
fn failed_and_late_plan_attempts_count_and_the_engine_falls_back_to_its_own_rule_plan() {
    // A budget larger than every attempt's deadline: here the attempts run out, not the budget.
    let mut h = Harness::new(Config {
        plan_budget: Duration::from_secs(600),
        ..demo_config()
    });
    h.ok(Input::SimulateOn);
    h.context_ok();
    h.plan_failed();
    assert_eq!(h.outstanding.plan.map(|p| p.1), Some(2));
    // The second attempt never answers: its deadline counts as a failure.
    h.advance(31);
    assert_eq!(h.outstanding.plan.map(|p| p.1), Some(3));
    h.plan_failed();
    assert_eq!(
        h.outstanding.plan.map(|p| (p.1, p.2)),
        Some((4, PlannerChoice::Rules))
    );
    // Even the rules answer is unusable: the engine builds the rule plan itself, and the demo completes.
    h.propose(invalid_plan());
    assert_eq!(h.status(), IncidentState::Validating);
    let plan = &h.engine.current_incident().expect("open").plan;
    assert_eq!(plan.items.len(), 5);
    // A late answer to the request that missed its deadline changes nothing.
    let mark = h.mark();
    h.ok(Input::PlanProposed {
        effect: EffectId(3),
        plan: valid_plan(),
    });
    assert!(h.effects_since(mark).is_empty());
    insta::assert_snapshot!(h.trace());
}

#[test]
fn context_failure_or_deadline_never_hangs_the_incident() {
    let mut h = Harness::demo();
    h.ok(Input::SimulateOn);
    let effect = h.outstanding.fetch.expect("fetch");
    h.ok(Input::ContextFetched {
        effect,
        result: Err(PortFailure::Timeout),
    });
    assert_eq!(
        Harness::kinds(&h.effects[h.effects.len() - 2..]),
        ["incident.created"]
    );
    assert!(matches!(h.effects.last(), Some(Effect::RequestPlan { .. })));

    // A hung metrics source holds the plan for `context_deadline` (3 s in the demo), no longer.
    let mut h = Harness::demo();
    h.alert("dd-1");
    h.advance(2);
    assert!(!matches!(
        h.effects.last(),
        Some(Effect::RequestPlan { .. })
    ));
    h.advance(1);
    assert!(matches!(h.effects.last(), Some(Effect::RequestPlan { .. })));
    let card = h.engine.current_incident().expect("open");
    assert_eq!(card.datadog_summary.monitor_id.as_deref(), Some("mon-42"));
    insta::assert_snapshot!(h.trace());
}

#[test]
fn no_traffic_never_reaches_recovered() {
    let mut h = Harness::demo();
    h.open_and_plan();
    h.pass_all();
    assert_eq!(h.status(), IncidentState::Validating);
    let blocker = h.engine.recovery_blocker().expect("blocked");
    assert!(blocker.contains("no sample received"), "{blocker}");

    // Minutes of samples without traffic, with periodic reruns passing all along.
    for _ in 0..60 {
        h.advance(1);
        h.sample(None, 0);
        if h.engine.current_run().map(|run| run.status) == Some(RunStatus::Running) {
            h.pass_all();
        }
        assert_eq!(h.status(), IncidentState::Validating);
    }
    let blocker = h.engine.recovery_blocker().expect("blocked");
    assert!(blocker.contains("no traffic"), "{blocker}");
    assert!(
        Harness::runs_started(&h.effects) > 5,
        "periodic reruns kept going"
    );

    // A trickle of traffic below min_requests is not recovery either.
    for _ in 0..10 {
        h.advance(1);
        h.sample(Some(0.0), 2);
        if h.engine.current_run().map(|run| run.status) == Some(RunStatus::Running) {
            h.pass_all();
        }
        assert_eq!(h.status(), IncidentState::Validating);
    }
    // Each measurement extends up to `max_measurement`, then ends inconclusive.
    let blocker = h.engine.recovery_blocker().expect("blocked");
    assert!(
        blocker.contains("too few requests: 2 in") || blocker.contains("2 of at least 5"),
        "{blocker}"
    );
}

#[test]
fn all_tests_pass_while_errors_persist_stays_validating() {
    let mut h = Harness::demo();
    h.open_and_plan();
    h.hot(3);
    h.pass_all();
    for _ in 0..20 {
        h.advance(1);
        h.sample(Some(0.03), 80);
        if h.engine.current_run().map(|run| run.status) == Some(RunStatus::Running) {
            h.pass_all();
        }
        assert_eq!(h.status(), IncidentState::Validating);
    }
    let blocker = h.engine.recovery_blocker().expect("blocked");
    assert!(
        blocker.contains("error rate 3.0% is not below 1.0%"),
        "{blocker}"
    );
    assert!(blocker.contains("tests passed"), "{blocker}");
}

#[test]
fn stale_signals_are_not_recovery() {
    let mut h = Harness::demo();
    h.healthy(3);
    h.advance(10);
    h.open_and_plan();
    h.pass_all();
    assert_eq!(h.status(), IncidentState::Validating);
    let blocker = h.engine.recovery_blocker().expect("blocked");
    assert!(blocker.contains("stale"), "{blocker}");
    // Fresh healthy samples complete the gate while the passing run is recent.
    h.healthy(2);
    assert_eq!(h.status(), IncidentState::Recovered);
}

#[test]
fn healthy_signals_and_a_passing_run_recover_at_once() {
    let mut h = Harness::demo();
    h.healthy(2);
    h.open_and_plan();
    let mark = h.mark();
    h.pass_all();
    assert_eq!(h.status(), IncidentState::Recovered);
    let kinds = Harness::kinds(h.effects_since(mark));
    assert_eq!(
        &kinds[kinds.len() - 3..],
        ["tests.updated", "system.status", "tests.updated"]
    );
}

#[test]
fn gate_holding_later_recovers_without_another_run() {
    let mut h = Harness::demo();
    h.open_and_plan();
    h.pass_all();
    assert_eq!(h.status(), IncidentState::Validating);
    let mark = h.mark();
    h.advance(1);
    h.healthy(1);
    assert_eq!(h.status(), IncidentState::Validating);
    h.advance(1);
    h.sample(Some(0.0), 50);
    assert_eq!(h.status(), IncidentState::Recovered);
    assert_eq!(Harness::runs_started(h.effects_since(mark)), 0);
    assert_eq!(
        h.engine.current_run().map(|run| run.run_id.as_str()),
        Some("run-t-1")
    );
}

#[test]
fn a_late_driver_still_gets_due_timers_fired_before_the_next_input() {
    let mut h = Harness::demo();
    h.open_and_plan();
    let effect = h.run_effect();
    // The driver never called handle_timeout; the next input comes after the run deadline.
    h.now += fixloop_contract::chrono::TimeDelta::seconds(31);
    let mark = h.mark();
    h.ok(Input::ServiceChanged { repair: true });
    let effects = h.effects_since(mark);
    assert_eq!(effects.first(), Some(&Effect::CancelRun { effect }));
    assert_eq!(
        Harness::runs_started(effects),
        1,
        "and the bug fix starts a rerun"
    );
}

#[test]
fn relapse_within_soak_reopens_the_same_incident() {
    let mut h = Harness::demo();
    h.healthy(2);
    h.open_and_plan();
    h.pass_all();
    assert_eq!(h.status(), IncidentState::Recovered);
    h.advance(3);
    // One sample a little above recovery but below the trigger is hysteresis, not relapse.
    h.sample(Some(0.03), 50);
    assert_eq!(h.status(), IncidentState::Recovered);
    let mark = h.mark();
    h.advance(1);
    h.hot(2);
    assert_eq!(h.status(), IncidentState::Validating);
    assert_eq!(
        h.engine.status().active_incident_id.as_deref(),
        Some("inc-t-1")
    );
    let kinds = Harness::kinds(h.effects_since(mark));
    assert!(!kinds.contains(&"incident.created"));
    assert!(kinds.contains(&"system.status"));
    assert_eq!(Harness::runs_started(h.effects_since(mark)), 1);
    // Back to health, and the same incident recovers again.
    h.advance(1);
    h.healthy(2);
    if h.status() == IncidentState::Validating {
        h.pass_all();
    }
    assert_eq!(h.status(), IncidentState::Recovered);
    assert_eq!(
        h.engine.status().active_incident_id.as_deref(),
        Some("inc-t-1")
    );
    insta::assert_snapshot!(h.trace());
}

#[test]
fn a_reopened_incident_shows_its_relapse_and_its_resolution_tells_it() {
    let mut h = Harness::demo();
    h.healthy(2);
    h.open_and_plan();
    h.pass_all();
    assert_eq!(h.status(), IncidentState::Recovered);
    let first_title = h.engine.current_incident().expect("open").title.clone();
    // A relapse with another top error: the card shows the relapse and the current top error.
    h.advance(3);
    h.ok(Input::SignalSampled(SignalSample {
        at: h.now,
        error_rate: Some(0.4),
        p95_latency_ms: Some(90.0),
        top_error: Some("GET /catalog -> 503 upstream down".to_owned()),
        requests: 50,
    }));
    h.advance(1);
    h.ok(Input::SignalSampled(SignalSample {
        at: h.now,
        error_rate: Some(0.4),
        p95_latency_ms: Some(90.0),
        top_error: Some("GET /catalog -> 503 upstream down".to_owned()),
        requests: 50,
    }));
    assert_eq!(h.status(), IncidentState::Validating);
    let card = h.engine.current_incident().expect("reopened").clone();
    assert_eq!(card.incident_id, "inc-t-1", "the same incident");
    assert_ne!(card.title, first_title);
    assert!(
        card.title.contains("relapsed after RECOVERED"),
        "{}",
        card.title
    );
    assert_eq!(
        card.datadog_summary.signal.top_error.as_deref(),
        Some("GET /catalog -> 503 upstream down")
    );
    // Healthy again, RECOVERED again, and the soak closes it: the resolution tells the relapse.
    h.advance(1);
    h.healthy(2);
    if h.status() == IncidentState::Validating {
        h.pass_all();
    }
    assert_eq!(h.status(), IncidentState::Recovered);
    h.advance(20);
    assert_eq!(h.status(), IncidentState::Healthy);
    let closed = h
        .engine
        .incident_history(&IncidentId::new("inc-t-1"))
        .expect("closed incident");
    let resolution = closed.resolution.unwrap_or_default();
    assert!(
        resolution.contains("relapsed once after an earlier RECOVERED"),
        "{resolution}"
    );
    assert!(
        closed.incident.title.contains("relapsed"),
        "{}",
        closed.incident.title
    );
}

#[test]
fn after_soak_the_incident_closes_and_a_cooldown_prevents_flapping() {
    let mut h = Harness::demo();
    h.healthy(2);
    h.open_and_plan();
    h.pass_all();
    assert_eq!(h.status(), IncidentState::Recovered);
    h.advance(15);
    assert_eq!(h.status(), IncidentState::Healthy);
    assert_eq!(
        h.input(Input::OperatorRequestedRun {
            incident_id: IncidentId::new("inc-t-1")
        }),
        Err(Rejected::IncidentClosed(IncidentId::new("inc-t-1")))
    );

    // Errors within the 10 s cooldown open nothing from polling.
    h.hot(4);
    assert_eq!(h.status(), IncidentState::Healthy);
    // After the cooldown they do: a new incident.
    h.advance(7);
    h.hot(2);
    assert_eq!(h.status(), IncidentState::IncidentActive);
    assert_eq!(
        h.engine.status().active_incident_id.as_deref(),
        Some("inc-t-2")
    );
    insta::assert_snapshot!(h.trace());
}

#[test]
fn an_alert_opens_an_incident_even_during_cooldown() {
    let mut h = Harness::demo();
    h.ok(Input::SimulateOn);
    h.ok(Input::SimulateOff);
    assert_eq!(h.status(), IncidentState::Healthy);
    h.alert("dd-1");
    assert_eq!(h.status(), IncidentState::IncidentActive);
    assert_eq!(
        h.engine.status().active_incident_id.as_deref(),
        Some("inc-t-2")
    );
}

#[test]
fn duplicate_alerts_do_not_open_a_second_incident() {
    let mut h = Harness::demo();
    h.alert("dd-1");
    h.alert("dd-1");
    h.alert("dd-2");
    h.ok(Input::SimulateOn);
    h.hot(3);
    h.context_ok();
    h.alert("dd-2");
    let created = Harness::kinds(&h.effects)
        .into_iter()
        .filter(|kind| *kind == "incident.created")
        .count();
    assert_eq!(created, 1, "no second incident");
    let fetches = h
        .effects
        .iter()
        .filter(|effect| matches!(effect, Effect::FetchContext { .. }))
        .count();
    assert_eq!(fetches, 1);
    assert_eq!(
        h.engine.status().active_incident_id.as_deref(),
        Some("inc-t-1")
    );
    insta::assert_snapshot!(h.trace());
}

#[test]
fn run_deadline_fails_the_run_with_a_reason_and_cancels_it() {
    let mut h = Harness::demo();
    h.open_and_plan();
    let effect = h.run_effect();
    h.progress("t3-health", TestStatus::Pass, Some("status 200"));
    let mark = h.mark();
    h.advance(30);
    let effects = h.effects_since(mark);
    assert!(effects.contains(&Effect::CancelRun { effect }));
    let run = h.engine.run(&RunId::new("run-t-1")).expect("kept");
    assert_eq!(run.status, RunStatus::Failed);
    let health = run
        .tests
        .iter()
        .find(|test| test.test_id == "t3-health")
        .expect("test");
    assert_eq!(health.status, TestStatus::Pass);
    let other = run
        .tests
        .iter()
        .find(|test| test.test_id == "t1-checkout-valid")
        .expect("test");
    assert_eq!(other.status, TestStatus::Fail);
    assert_eq!(
        other.details.as_deref(),
        Some("run failed: run exceeded its deadline of 30 s")
    );
    assert_eq!(
        h.status(),
        IncidentState::IncidentActive,
        "no run in flight after a failed one"
    );

    // The cancelled run's late answers are ignored.
    let mark = h.mark();
    h.ok(Input::TestProgressed {
        effect,
        test_id: "t1-checkout-valid".to_owned(),
        status: TestStatus::Pass,
        details: None,
    });
    h.ok(Input::RunFinished {
        effect,
        result: Ok(()),
    });
    assert!(h.effects_since(mark).is_empty());
    assert_eq!(
        h.engine.run(&RunId::new("run-t-1")).map(|run| run.status),
        Some(RunStatus::Failed)
    );
    insta::assert_snapshot!(h.trace());
}

#[test]
fn a_runner_failure_ends_the_run_failed_with_the_reason_in_the_details() {
    let mut h = Harness::demo();
    h.open_and_plan();
    h.finish(Err(PortFailure::Unavailable(
        "connection refused".to_owned(),
    )));
    let run = h.engine.current_run().expect("run");
    assert_eq!(run.status, RunStatus::Failed);
    assert!(run.tests.iter().all(|test| test.status == TestStatus::Fail
        && test.details.as_deref() == Some("run failed: runner unavailable: connection refused")));
}

#[test]
fn stale_answers_are_ignored() {
    let mut h = Harness::demo();
    // Answers while healthy.
    for input in [
        Input::ContextFetched {
            effect: EffectId(99),
            result: Err(PortFailure::Timeout),
        },
        Input::PlanProposed {
            effect: EffectId(99),
            plan: valid_plan(),
        },
        Input::RunFinished {
            effect: EffectId(99),
            result: Ok(()),
        },
    ] {
        h.ok(input);
    }
    // Only the engine's own first read of the signals.
    assert!(
        h.effects
            .iter()
            .all(|effect| matches!(effect, Effect::SampleSignals { .. })),
        "{:?}",
        h.effects
    );
    h.ok(Input::SimulateOn);
    let fetch = h.outstanding.fetch.expect("fetch");
    h.context_ok();
    let mark = h.mark();
    // The context again, a plan for an unknown id, progress for an unknown run.
    h.ok(Input::ContextFetched {
        effect: fetch,
        result: Err(PortFailure::Timeout),
    });
    h.ok(Input::PlanProposed {
        effect: EffectId(77),
        plan: valid_plan(),
    });
    h.ok(Input::TestProgressed {
        effect: EffectId(77),
        test_id: "t1".to_owned(),
        status: TestStatus::Pass,
        details: None,
    });
    assert!(h.effects_since(mark).is_empty());
    assert_eq!(h.status(), IncidentState::IncidentActive);
    // Progress for a test the plan does not have is ignored too.
    h.propose(valid_plan());
    let mark = h.mark();
    h.progress("no-such-test", TestStatus::Pass, None);
    // A repeated status is no change.
    h.progress("t3-health", TestStatus::Running, None);
    h.progress("t3-health", TestStatus::Running, None);
    assert_eq!(Harness::kinds(h.effects_since(mark)), ["tests.updated"]);
}

#[test]
fn operator_run_during_a_run_does_not_start_a_second_one() {
    let mut h = Harness::demo();
    h.ok(Input::SimulateOn);
    let incident_id = IncidentId::new("inc-t-1");
    assert_eq!(
        h.input(Input::OperatorRequestedRun {
            incident_id: incident_id.clone()
        }),
        Err(Rejected::PlanNotReady(incident_id.clone()))
    );
    assert_eq!(
        h.input(Input::OperatorRequestedRun {
            incident_id: IncidentId::new("inc-nope")
        }),
        Err(Rejected::UnknownIncident(IncidentId::new("inc-nope")))
    );
    h.context_ok();
    h.propose(valid_plan());
    let mark = h.mark();
    h.ok(Input::OperatorRequestedRun {
        incident_id: incident_id.clone(),
    });
    assert_eq!(Harness::runs_started(h.effects_since(mark)), 0);
    assert_eq!(
        h.engine.current_run().map(|run| run.run_id.as_str()),
        Some("run-t-1")
    );
    assert_eq!(
        h.engine.current_run().map(|run| run.status),
        Some(RunStatus::Running)
    );
    // It is not queued either: the run in progress answered it.
    h.verdicts(&["t1-checkout-valid"]);
    assert_eq!(Harness::runs_started(h.effects_since(mark)), 0);
    // Once idle, an operator request starts a run.
    h.ok(Input::OperatorRequestedRun { incident_id });
    assert_eq!(Harness::runs_started(h.effects_since(mark)), 1);
    assert_eq!(
        h.engine.current_run().map(|run| run.run_id.as_str()),
        Some("run-t-2")
    );
    insta::assert_snapshot!(h.trace());
}

#[test]
fn rerun_triggers_during_a_run_coalesce_into_one_rerun() {
    let mut h = Harness::demo();
    h.open_and_plan();
    h.hot(1);
    let mark = h.mark();
    h.ok(Input::ServiceChanged { repair: true });
    h.ok(Input::AlertResolved {
        dedupe_key: "dd-1".to_owned(),
    });
    h.healthy(1);
    assert_eq!(
        Harness::runs_started(h.effects_since(mark)),
        0,
        "never two runs at once"
    );
    h.verdicts(&["t1-checkout-valid"]);
    assert_eq!(
        Harness::runs_started(h.effects_since(mark)),
        1,
        "one coalesced rerun"
    );
    assert_eq!(
        h.engine.current_run().map(|run| run.run_id.as_str()),
        Some("run-t-2")
    );
}

#[test]
fn reruns_start_by_themselves_periodically_and_on_bug_fix() {
    let mut h = Harness::demo();
    h.open_and_plan();
    h.verdicts(&["t1-checkout-valid"]);
    let mark = h.mark();
    h.advance(4);
    assert_eq!(Harness::runs_started(h.effects_since(mark)), 0);
    h.advance(1);
    assert_eq!(
        Harness::runs_started(h.effects_since(mark)),
        1,
        "rerun_interval elapsed"
    );
    h.verdicts(&["t1-checkout-valid"]);
    let mark = h.mark();
    h.ok(Input::ServiceChanged { repair: true });
    // The bug toggle's status (INCIDENT_ACTIVE: the failed run is over), then VALIDATING as the rerun starts.
    assert_eq!(
        Harness::kinds(h.effects_since(mark)),
        ["system.status", "system.status", "tests.updated"]
    );
    assert_eq!(Harness::runs_started(h.effects_since(mark)), 1);
    // Signals improving after bad ones start a rerun too.
    h.verdicts(&[]);
    h.hot(1);
    let mark = h.mark();
    h.advance(1);
    h.healthy(1);
    assert_eq!(Harness::runs_started(h.effects_since(mark)), 1);
}

#[test]
fn simulate_on_is_idempotent_and_simulate_off_closes_and_cancels_the_run() {
    let mut h = Harness::demo();
    h.open_and_plan();
    let mark = h.mark();
    h.ok(Input::SimulateOn);
    assert!(h.effects_since(mark).is_empty());
    let effect = h.run_effect();
    h.ok(Input::SimulateOff);
    let effects = h.effects_since(mark);
    assert!(effects.contains(&Effect::CancelRun { effect }));
    assert_eq!(Harness::kinds(effects), ["tests.updated", "system.status"]);
    assert_eq!(h.status(), IncidentState::Healthy);
    assert_eq!(
        h.engine.run(&RunId::new("run-t-1")).map(|run| run.status),
        Some(RunStatus::Failed)
    );
    // Closing again is a no-op.
    let mark = h.mark();
    h.ok(Input::SimulateOff);
    assert!(h.effects_since(mark).is_empty());
}

#[test]
fn status_is_published_on_material_changes_only() {
    let mut h = Harness::demo();
    h.samples(5, Some(0.001), 50);
    assert_eq!(
        Harness::kinds(&h.effects),
        ["system.status"],
        "the first sample moved p95 from 0 to 120 ms; the same numbers again publish nothing"
    );
    h.advance(1);
    h.sample(Some(0.03), 50);
    assert_eq!(
        Harness::kinds(&h.effects).len(),
        2,
        "two points are material"
    );
    h.advance(1);
    h.sample(Some(0.035), 50);
    assert_eq!(
        Harness::kinds(&h.effects).len(),
        2,
        "half a point is not material"
    );
    assert!(
        (h.engine.status().error_rate_5m - 3.5).abs() < 1e-9,
        "but the status shows it, in percent"
    );
    h.ok(Input::ServiceChanged { repair: false });
    assert_eq!(
        Harness::kinds(&h.effects).len(),
        3,
        "the bug toggle publishes the status"
    );
}

#[test]
fn copilot_answers_are_published() {
    let mut h = Harness::demo();
    let now = h.now;
    h.ok(Input::CopilotAnswered(CopilotAnswer {
        incident_id: None,
        question: "is checkout down?".to_owned(),
        answer: "no".to_owned(),
        citations: Vec::new(),
        created_at: now,
        answered_by: None,
        fallback_reason: None,
        redacted: None,
    }));
    assert_eq!(Harness::kinds(&h.effects), ["copilot.answer"]);
}

#[test]
fn operator_run_in_recovered_revalidates_the_same_incident() {
    let mut h = Harness::demo();
    h.healthy(2);
    h.open_and_plan();
    h.pass_all();
    assert_eq!(h.status(), IncidentState::Recovered);
    h.ok(Input::OperatorRequestedRun {
        incident_id: IncidentId::new("inc-t-1"),
    });
    assert_eq!(h.status(), IncidentState::Validating);
    h.healthy(1);
    h.pass_all();
    assert_eq!(h.status(), IncidentState::Recovered);
}

#[test]
fn a_run_with_a_failing_test_is_failed_and_one_with_all_passing_is_completed() {
    let mut h = Harness::demo();
    h.open_and_plan();
    let (effect, _, tests) = h.outstanding.run.clone().expect("a run started");
    for (index, test_id) in tests.iter().enumerate() {
        let status = if index == 0 {
            TestStatus::Fail
        } else {
            TestStatus::Pass
        };
        h.ok(Input::TestProgressed {
            effect,
            test_id: test_id.clone(),
            status,
            details: Some("status 500".to_owned()),
        });
    }
    h.ok(Input::RunFinished {
        effect,
        result: Ok(()),
    });
    let run = h.engine.current_run().expect("run");
    assert_eq!(run.status, RunStatus::Failed, "{run:?}");
    h.advance(6);
    h.pass_all();
    let run = h.engine.current_run().expect("run");
    assert_eq!(run.status, RunStatus::Completed, "{run:?}");
}

#[test]
fn a_clock_going_backwards_is_treated_as_the_latest_time_seen() {
    let mut h = Harness::demo();
    h.open_and_plan();
    h.advance(10);
    let effect = h.run_effect();
    // An input stamped in the past: the engine keeps its clock and applies the input at the latest time.
    h.now -= fixloop_contract::chrono::TimeDelta::seconds(60);
    let now = h.now;
    assert_eq!(
        h.engine.handle_input(
            now,
            Input::RunFinished {
                effect,
                result: Ok(())
            }
        ),
        Ok(())
    );
    let run = h.engine.current_run().expect("run");
    // No test reported a verdict, so each became FAIL and the run is FAILED (COMPLETED means all passed).
    assert_eq!(run.status, RunStatus::Failed);
    assert!(run.tests.iter().all(|test| test.last_update_at > now));
    while h.engine.poll_effect().is_some() {}
}

fn source_down(h: &mut Harness) {
    h.ok(Input::SignalSourceFailed {
        failure: PortFailure::Unavailable("request failed: connection refused".to_owned()),
    });
}

fn probe_effect(h: &Harness) -> Option<EffectId> {
    h.effects.iter().rev().find_map(|effect| match effect {
        Effect::ProbeService { effect } => Some(*effect),
        _ => None,
    })
}

fn probe_sample(h: &Harness, error_rate: f64, requests: u64) -> SignalSample {
    SignalSample {
        at: h.now,
        error_rate: Some(error_rate),
        p95_latency_ms: Some(5.0),
        top_error: (error_rate > 0.0).then(|| "GET /health -> connection refused".to_owned()),
        requests,
    }
}

#[test]
fn a_blind_source_with_failing_probes_opens_an_incident() {
    let mut h = Harness::demo();
    h.healthy(3);
    source_down(&mut h);
    source_down(&mut h);
    assert_eq!(probe_effect(&h), None, "two failures are not blindness yet");
    source_down(&mut h);
    let effect = probe_effect(&h).expect("the third failure probes the service");
    assert_eq!(h.status(), IncidentState::Healthy);
    let sample = probe_sample(&h, 1.0, 3);
    h.ok(Input::ServiceProbed {
        effect,
        result: Ok(sample),
    });
    assert_eq!(h.status(), IncidentState::IncidentActive);
    let card = h.engine.current_incident().expect("an incident is open");
    assert!(
        card.title
            .contains("the signal source fails: request failed: connection refused")
            && card.title.contains("probes failing (100.0%)"),
        "{}",
        card.title
    );
    assert!(h.engine.status().signals_degraded.is_some());
    insta::assert_snapshot!("blind_source_failing_probes", h.trace());
}

#[test]
fn a_blind_source_with_passing_probes_is_healthy_but_degraded_until_it_reads_again() {
    let mut h = Harness::demo();
    h.healthy(3);
    for _ in 0..3 {
        source_down(&mut h);
    }
    let effect = probe_effect(&h).expect("probe");
    let mark = h.mark();
    let sample = probe_sample(&h, 0.0, 3);
    h.ok(Input::ServiceProbed {
        effect,
        result: Ok(sample),
    });
    assert_eq!(h.status(), IncidentState::Healthy);
    let degraded = h
        .engine
        .status()
        .signals_degraded
        .clone()
        .expect("degraded");
    assert!(
        degraded.contains("probes of the service pass"),
        "{degraded}"
    );
    let published = Harness::published(h.effects_since(mark));
    assert!(
        matches!(published.as_slice(), [WsMessage::SystemStatus(status)] if status.signals_degraded.is_some()),
        "{published:?}"
    );
    // More failures within the spacing probe no more; after it, once more.
    source_down(&mut h);
    assert_eq!(probe_effect(&h), Some(effect));
    h.advance(3);
    source_down(&mut h);
    assert_ne!(probe_effect(&h), Some(effect));
    // The source answers again: the marker is cleared and published.
    let mark = h.mark();
    h.healthy(1);
    assert_eq!(h.engine.status().signals_degraded, None);
    assert!(Harness::published(h.effects_since(mark))
        .iter()
        .any(|message| matches!(message, WsMessage::SystemStatus(status) if status.signals_degraded.is_none())));
}

#[test]
fn a_failed_read_resets_the_recovery_streak_and_stale_probe_answers_are_ignored() {
    let mut h = Harness::demo();
    h.healthy(1);
    for _ in 0..3 {
        source_down(&mut h);
    }
    let effect = probe_effect(&h).expect("probe");
    // The source sees again before the probe answers: the answer changes nothing.
    h.healthy(1);
    let sample = probe_sample(&h, 1.0, 3);
    h.ok(Input::ServiceProbed {
        effect,
        result: Ok(sample),
    });
    assert_eq!(h.status(), IncidentState::Healthy);
    assert_eq!(h.engine.status().signals_degraded, None);
    // An answer to an effect the engine never asked for is ignored too.
    let sample = probe_sample(&h, 1.0, 3);
    h.ok(Input::ServiceProbed {
        effect: EffectId(999),
        result: Ok(sample),
    });
    assert_eq!(h.status(), IncidentState::Healthy);
}

/// A runner of TestSprite's kind: each verdict minutes after the previous one, twenty minutes in all. Under the
/// deadline a server derives from such a runner (about 23 minutes) the run finishes, every verdict is published in
/// `tests.updated` as it arrives, and the incident recovers; under the demo's old fixed 30 s it was cancelled.
#[test]
fn a_twenty_minute_run_finishes_under_a_deadline_that_follows_its_runner_with_every_verdict_published()
 {
    let mut h = Harness::new(Config {
        run_deadline: Duration::from_secs(23 * 60),
        rerun_interval: Duration::from_secs(30 * 60),
        ..demo_config()
    });
    h.open_and_plan();
    let tests = h.outstanding.run.as_ref().expect("a run").2.clone();
    for (index, test_id) in tests.iter().enumerate() {
        h.advance(4 * 60);
        let mark = h.mark();
        h.progress(test_id, TestStatus::Pass, Some("200 OK"));
        let updates: Vec<_> = Harness::published(h.effects_since(mark))
            .into_iter()
            .filter_map(|message| match message {
                WsMessage::TestsUpdated(run) => Some(run.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(updates.len(), 1, "one tests.updated per verdict");
        let passed = updates[0]
            .tests
            .iter()
            .filter(|test| test.status == TestStatus::Pass)
            .count();
        assert_eq!(passed, index + 1);
        assert_eq!(updates[0].status, RunStatus::Running);
    }
    // Twenty minutes in, the runner answers and the signals are healthy.
    h.finish(Ok(()));
    let run = h.engine.current_run().expect("the run");
    assert_eq!(run.status, RunStatus::Completed);
    h.healthy(2);
    assert_eq!(h.status(), IncidentState::Recovered);
}
