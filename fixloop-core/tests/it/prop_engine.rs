//! Properties of the engine over random input sequences: no panics, only operator runs are ever rejected, the
//! status is consistent with the open incident, RECOVERED is never reached without a passing run and healthy
//! signals, at most one incident is open at a time, and answered effects make progress.

use fixloop_contract::{CopilotAnswer, IncidentState, RunStatus, TestStatus, WsMessage};
use fixloop_core::engine::{Config, Effect, Engine, Input, PortFailure, SignalSample};
use fixloop_core::{EffectId, IncidentId, RunId};
use proptest::prelude::*;

use crate::engine_harness::{Harness, demo_config, invalid_plan, valid_plan};

/// One step of a random story.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    Sample {
        error_rate: Option<f64>,
        requests: u64,
    },
    Advance(i64),
    Alert(u8),
    Resolve(u8),
    SimulateOn,
    SimulateOff,
    Bug(bool),
    Context(bool),
    Plan(u8),
    Progress(usize, TestStatus),
    Finish(bool),
    Operator(bool),
    Stale(u8, u64),
    Copilot,
    /// A failed read of the signal source.
    SourceFailed,
    /// An answer to the latest probe request: failing or passing probes.
    Probed(bool),
    /// Answer every outstanding request helpfully (context, a valid plan, all tests PASS).
    Cooperate,
    /// A healthy sample with traffic.
    Healthy,
    /// The process restarts: the engine is snapshotted, serialized, restored and told `Restarted`.
    Restart,
}

pub(crate) fn step() -> impl Strategy<Value = Step> {
    let rate = prop_oneof![
        Just(None),
        Just(Some(0.0)),
        Just(Some(0.005)),
        Just(Some(0.03)),
        Just(Some(0.3)),
        Just(Some(f64::NAN)),
        Just(Some(-1.0)),
        Just(Some(7.5)),
        (0.0..1.0f64).prop_map(Some),
    ];
    let status = prop_oneof![
        Just(TestStatus::Pending),
        Just(TestStatus::Running),
        Just(TestStatus::Pass),
        Just(TestStatus::Fail),
    ];
    prop_oneof![
        4 => (rate, prop_oneof![Just(0u64), Just(3), Just(50), any::<u64>()])
            .prop_map(|(error_rate, requests)| Step::Sample { error_rate, requests }),
        3 => (0i64..40).prop_map(Step::Advance),
        1 => (0u8..3).prop_map(Step::Alert),
        1 => (0u8..3).prop_map(Step::Resolve),
        1 => Just(Step::SimulateOn),
        1 => Just(Step::SimulateOff),
        1 => any::<bool>().prop_map(Step::Bug),
        2 => any::<bool>().prop_map(Step::Context),
        2 => (0u8..3).prop_map(Step::Plan),
        4 => ((0usize..6), status).prop_map(|(index, status)| Step::Progress(index, status)),
        2 => any::<bool>().prop_map(Step::Finish),
        1 => any::<bool>().prop_map(Step::Operator),
        1 => ((0u8..4), (0u64..60)).prop_map(|(kind, id)| Step::Stale(kind, id)),
        1 => Just(Step::Copilot),
        2 => Just(Step::SourceFailed),
        1 => any::<bool>().prop_map(Step::Probed),
        3 => Just(Step::Cooperate),
        4 => Just(Step::Healthy),
        1 => Just(Step::Restart),
    ]
}

/// What the model knows about the samples fed so far: (received at, healthy for the gate).
pub(crate) type SampleLog = Vec<(
    fixloop_contract::chrono::DateTime<fixloop_contract::chrono::Utc>,
    bool,
)>;

pub(crate) fn apply(h: &mut Harness, step: &Step, samples: &mut SampleLog) {
    let config = demo_config();
    match step {
        Step::Sample {
            error_rate,
            requests,
        } => {
            let clean = error_rate
                .filter(|rate| rate.is_finite() && *rate >= 0.0)
                .map(|rate| rate.min(1.0));
            let healthy = *requests >= config.min_requests
                && clean.is_some_and(|rate| rate < config.recovery_error_rate);
            // Hot even if every request missing up to `min_requests` had passed.
            let hot = *requests > 0
                && clean.is_some_and(|rate| {
                    rate * *requests as f64 / (*requests).max(config.min_requests) as f64
                        > config.trigger_error_rate
                });
            h.sample(*error_rate, *requests);
            // A measurement too small to judge extends (or ends inconclusive, which only makes the gate stricter):
            // the model counts only the judged ones, a necessary condition for the gate.
            if hot || (clean.is_some() && *requests >= config.min_requests) {
                samples.push((h.now, healthy));
            }
        }
        Step::Advance(seconds) => h.advance(*seconds),
        Step::Alert(key) => h.alert(&format!("dd-{key}")),
        Step::Resolve(key) => h.ok(Input::AlertResolved {
            dedupe_key: format!("dd-{key}"),
        }),
        Step::SimulateOn => h.ok(Input::SimulateOn),
        Step::SimulateOff => h.ok(Input::SimulateOff),
        Step::Bug(enabled) => h.ok(Input::ServiceChanged { repair: !*enabled }),
        Step::Context(ok) => {
            if let Some(effect) = h.outstanding.fetch {
                if *ok {
                    h.context_ok();
                } else {
                    h.ok(Input::ContextFetched {
                        effect,
                        result: Err(PortFailure::Timeout),
                    });
                }
            }
        }
        Step::Plan(kind) => {
            if h.outstanding.plan.is_some() {
                match kind {
                    0 => h.propose(valid_plan()),
                    1 => h.propose(invalid_plan()),
                    _ => h.plan_failed(),
                }
            }
        }
        Step::Progress(index, status) => {
            if let Some((_, _, tests)) = h.outstanding.run.clone() {
                let test_id = tests
                    .get(*index)
                    .cloned()
                    .unwrap_or_else(|| "ghost".to_owned());
                h.progress(&test_id, *status, Some("observed"));
            }
        }
        Step::Finish(ok) => {
            if h.outstanding.run.is_some() {
                h.finish(if *ok {
                    Ok(())
                } else {
                    Err(PortFailure::Unavailable("down".to_owned()))
                });
            }
        }
        Step::Operator(current) => {
            let incident_id = match (current, h.engine.current_incident()) {
                (true, Some(card)) => IncidentId::new(card.incident_id.clone()),
                _ => IncidentId::new("inc-t-999"),
            };
            let _ = h.input(Input::OperatorRequestedRun { incident_id });
        }
        Step::Stale(kind, id) => {
            let effect = EffectId(*id);
            let input = match kind {
                0 => Input::ContextFetched {
                    effect,
                    result: Err(PortFailure::Unauthorized),
                },
                1 => Input::PlanProposed {
                    effect,
                    plan: valid_plan(),
                },
                2 => Input::TestProgressed {
                    effect,
                    test_id: "t3-health".to_owned(),
                    status: TestStatus::Pass,
                    details: None,
                },
                _ => Input::RunFinished {
                    effect,
                    result: Ok(()),
                },
            };
            h.ok(input);
        }
        Step::Healthy => {
            h.sample(Some(0.0), 50);
            samples.push((h.now, true));
        }
        Step::SourceFailed => {
            h.ok(Input::SignalSourceFailed {
                failure: PortFailure::Timeout,
            });
            samples.push((h.now, false));
        }
        Step::Probed(failing) => {
            let probe = h.effects.iter().rev().find_map(|effect| match effect {
                Effect::ProbeService { effect } => Some(*effect),
                _ => None,
            });
            if let Some(effect) = probe {
                let sample = SignalSample {
                    at: h.now,
                    error_rate: Some(if *failing { 1.0 } else { 0.0 }),
                    p95_latency_ms: Some(3.0),
                    top_error: None,
                    requests: 3,
                };
                h.ok(Input::ServiceProbed {
                    effect,
                    result: Ok(sample),
                });
            }
        }
        Step::Cooperate => match h.status() {
            IncidentState::IncidentActive => {
                if h.outstanding.fetch.is_some() {
                    h.context_ok();
                }
                if h.status() == IncidentState::IncidentActive && h.outstanding.plan.is_some() {
                    h.propose(valid_plan());
                }
            }
            IncidentState::Validating
                if h.engine
                    .current_run()
                    .is_some_and(|run| run.status == RunStatus::Running) =>
            {
                h.pass_all();
            }
            _ => {}
        },
        Step::Restart => {
            let snapshot = h
                .engine
                .snapshot()
                .expect("the harness drains after every call");
            let json = serde_json::to_string(&snapshot).expect("a snapshot serializes");
            let snapshot = serde_json::from_str(&json).expect("and reads back");
            h.engine = Engine::restore(config, snapshot).expect("same format and service");
            h.ok(Input::Restarted);
        }
        Step::Copilot => {
            let now = h.now;
            h.ok(Input::CopilotAnswered(CopilotAnswer {
                incident_id: None,
                question: "why?".to_owned(),
                answer: "because".to_owned(),
                citations: Vec::new(),
                created_at: now,
                answered_by: None,
                fallback_reason: None,
                redacted: None,
            }));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_stories_keep_every_invariant(steps in prop::collection::vec(step(), 1..80)) {
        let config = demo_config();
        let mut h = Harness::demo();
        let mut samples = SampleLog::new();
        let mut open: Option<String> = None;
        let mut run_ids: Vec<RunId> = Vec::new();
        for step in &steps {
            let before = h.status();
            let mark = h.mark();
            apply(&mut h, step, &mut samples);
            let after = h.status();

            // The status is consistent with the open incident (the harness checks it after every drain too).
            prop_assert_eq!(
                h.engine.status().active_incident_id.is_some(),
                after != IncidentState::Healthy
            );

            // RECOVERED is entered only with the signal gate holding: the last `recovery_samples` samples were
            // healthy, and the latest is fresh. The passing run is checked by the harness on every drain.
            if after == IncidentState::Recovered && before != IncidentState::Recovered {
                let needed = usize::try_from(config.recovery_samples).unwrap_or(usize::MAX);
                prop_assert!(samples.len() >= needed, "recovered without samples");
                prop_assert!(samples[samples.len() - needed..].iter().all(|(_, healthy)| *healthy));
                let (received, _) = samples[samples.len() - 1];
                let age = (h.now - received).to_std().unwrap_or_default();
                prop_assert!(age <= config.signal_max_age, "recovered on stale signals");
            }

            // At most one incident: no incident.created while one is open, and the active id never changes
            // without passing through HEALTHY.
            for message in Harness::published(h.effects_since(mark)) {
                match message {
                    WsMessage::IncidentCreated(card) => {
                        prop_assert_eq!(open.as_deref(), Some(card.incident_id.as_str()));
                    }
                    WsMessage::SystemStatus(status) => match (&open, &status.active_incident_id) {
                        (Some(current), Some(active)) => prop_assert_eq!(current, active),
                        (_, active) => open.clone_from(active),
                    },
                    _ => {}
                }
            }
            // Never two runs at once.
            for effect in h.effects_since(mark) {
                if let Effect::StartRun { run_id, .. } = effect {
                    run_ids.push(run_id.clone());
                }
            }
            let running = run_ids
                .iter()
                .filter(|run_id| h.engine.run(run_id).is_some_and(|run| run.status == RunStatus::Running))
                .count();
            prop_assert!(running <= 1, "two runs in progress");
        }
    }

}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn odd_configurations_never_panic(
        steps in prop::collection::vec(step(), 1..40),
        durations in prop::collection::vec(0u64..3, 8),
        trigger in 0.0..1.0f64,
        recovery in 0.0..1.0f64,
        counts in (0u32..4, 0u32..4, 0u64..60, 0u32..4),
    ) {
        let second = |index: usize| std::time::Duration::from_secs(durations[index]);
        let config = Config {
            trigger_error_rate: trigger,
            recovery_error_rate: recovery,
            detection_window: second(0),
            min_samples: counts.0,
            recovery_samples: counts.1,
            min_requests: counts.2,
            rerun_interval: second(1),
            soak_window: second(2),
            cooldown: second(3),
            plan_deadline: second(4),
            run_deadline: second(5),
            max_plan_attempts: counts.3,
            poll_interval: second(6),
            signal_max_age: second(7),
            ..demo_config()
        };
        let mut h = Harness::new(config);
        let mut samples = SampleLog::new();
        for step in &steps {
            apply(&mut h, step, &mut samples);
            h.advance(0);
        }
    }

    #[test]
    fn answered_effects_make_progress_to_recovered(extra_hot in 2usize..5, failing_first in any::<bool>()) {
        let mut h = Harness::demo();
        h.hot(extra_hot);
        prop_assert_eq!(h.status(), IncidentState::IncidentActive);
        h.context_ok();
        h.propose(valid_plan());
        if failing_first {
            h.verdicts(&["t1-checkout-valid"]);
            h.ok(Input::ServiceChanged { repair: true });
        }
        h.pass_all();
        h.advance(1);
        h.healthy(3);
        if h.status() == IncidentState::Validating {
            h.pass_all();
        }
        prop_assert_eq!(h.status(), IncidentState::Recovered);
        h.advance(16);
        prop_assert_eq!(h.status(), IncidentState::Healthy);
    }
}
