//! Properties of remediation over random stories, with the rules or a model (answering candidates, garbage or
//! nothing) as the chooser: `monitor-only` and `shadow` never ask for an execution, no action is requested while
//! another is outstanding (one action per service at a time), and nothing panics or rejects an input other than
//! an operator's.

use std::collections::BTreeMap;
use std::time::Duration;

use fixloop_contract::chrono::TimeDelta;
use fixloop_core::engine::{Config, Effect, Engine, Input, PortFailure, Rejected, Snapshot};
use fixloop_core::remediation::{
    ActionSpec, Chooser, IncidentMatch, RemediationMode, RemediationSpec, RiskTier,
    Strategy as Plan, StrategyStep,
};
use proptest::prelude::*;

use crate::engine_harness::{Harness, demo_config, valid_plan};

#[derive(Debug, Clone)]
enum Step {
    /// Open an incident (simulated) and answer its context and plan.
    Open,
    /// Finish the run in flight, failing or passing.
    Run(bool),
    /// Ask for a rerun.
    Rerun,
    /// Answer the outstanding action, or a random stale one.
    ActionDone(bool),
    StaleAction(u64),
    /// Approve or reject the latest proposal, with its version or a wrong one.
    Decide {
        approve: bool,
        right_version: bool,
    },
    KillSwitch(bool),
    /// Answer the awaited model's pick: a candidate (by index), an undeclared id, or nothing.
    Choose(Option<usize>),
    Healthy,
    Advance(i64),
    Close,
    Restart,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        Just(Step::Open),
        any::<bool>().prop_map(Step::Run),
        Just(Step::Rerun),
        any::<bool>().prop_map(Step::ActionDone),
        (0u64..40).prop_map(Step::StaleAction),
        (any::<bool>(), any::<bool>()).prop_map(|(approve, right_version)| Step::Decide {
            approve,
            right_version
        }),
        any::<bool>().prop_map(Step::KillSwitch),
        proptest::option::of(0usize..4).prop_map(Step::Choose),
        Just(Step::Healthy),
        (1i64..40).prop_map(Step::Advance),
        Just(Step::Close),
        Just(Step::Restart),
    ]
}

fn mode() -> impl Strategy<Value = RemediationMode> {
    prop_oneof![
        Just(RemediationMode::MonitorOnly),
        Just(RemediationMode::Shadow),
        Just(RemediationMode::DryRun),
        Just(RemediationMode::Auto),
    ]
}

fn spec(mode: RemediationMode, chooser: Chooser) -> RemediationSpec {
    let step = |action: &str, tier: RiskTier| StrategyStep {
        action: action.to_owned(),
        tier,
        tiers_by_environment: BTreeMap::new(),
        cooldown: Duration::from_secs(3),
        max_per_incident: 3,
        rank: 0,
    };
    RemediationSpec {
        mode,
        actions: ["flag-off", "restart", "page"]
            .into_iter()
            .map(|id| ActionSpec {
                id: id.to_owned(),
                executor: "http".to_owned(),
                description: String::new(),
            })
            .collect(),
        strategies: vec![Plan {
            kind: "any".to_owned(),
            matches: IncidentMatch::default(),
            steps: vec![
                step("flag-off", RiskTier::Safe),
                step("restart", RiskTier::Risky),
                step("page", RiskTier::NeverAuto),
            ],
        }],
        time_budget: Duration::from_secs(90),
        approval_expiry: Duration::from_secs(20),
        suppress_window: Duration::from_secs(2),
        judge_window: Duration::from_secs(15),
        action_deadline: Duration::from_secs(8),
        chooser,
        ..RemediationSpec::default()
    }
}

fn apply(h: &mut Harness, step: &Step) {
    match step {
        Step::Open => {
            if h.engine.current_incident().is_none() {
                h.ok(Input::SimulateOn);
            }
            if let Some(effect) = h.outstanding.fetch.take() {
                h.ok(Input::ContextFetched {
                    effect,
                    result: Err(PortFailure::Timeout),
                });
            }
            if let Some((effect, ..)) = h.outstanding.plan.take() {
                h.ok(Input::PlanProposed {
                    effect,
                    plan: valid_plan(),
                });
            }
        }
        Step::Run(pass) => {
            if h.outstanding.run.is_some() {
                if *pass {
                    h.pass_all();
                } else {
                    h.verdicts(&["t1-checkout-valid"]);
                }
            }
        }
        Step::Rerun => {
            if let Some(card) = h.engine.current_incident() {
                let incident_id = fixloop_core::IncidentId::new(card.incident_id.clone());
                let _ = h.input(Input::OperatorRequestedRun { incident_id });
            }
        }
        Step::ActionDone(ok) => {
            if h.outstanding.action.is_some() {
                let result = if *ok {
                    Ok(())
                } else {
                    Err(PortFailure::Unavailable("exit status 1".to_owned()))
                };
                h.action_done(result);
            }
        }
        Step::StaleAction(effect) => {
            if h.outstanding.action != Some(fixloop_core::EffectId(*effect)) {
                h.ok(Input::ActionFinished {
                    effect: fixloop_core::EffectId(*effect),
                    result: Ok(()),
                });
            }
        }
        Step::Decide {
            approve,
            right_version,
        } => {
            if let Some(proposal) = h.engine.proposals().last().cloned() {
                let version = if *right_version {
                    proposal.version
                } else {
                    proposal.version + 1
                };
                let input = if *approve {
                    Input::ApprovalGiven {
                        proposal: proposal.id,
                        version,
                        by: "op".to_owned(),
                    }
                } else {
                    Input::ApprovalRejected {
                        proposal: proposal.id,
                        version,
                        by: "op".to_owned(),
                    }
                };
                match h.input(input) {
                    Ok(())
                    | Err(
                        Rejected::VersionConflict { .. }
                        | Rejected::NotAwaitingApproval(_)
                        | Rejected::KillSwitchEngaged,
                    ) => {}
                    Err(other) => panic!("unexpected rejection {other}"),
                }
            }
        }
        Step::KillSwitch(engaged) => h.ok(Input::KillSwitchSet {
            engaged: *engaged,
            by: "op".to_owned(),
        }),
        Step::Choose(pick) => {
            if let Some((_, candidates)) = h.outstanding.choice.clone() {
                let action = pick.map(|index| {
                    candidates
                        .get(index)
                        .cloned()
                        .unwrap_or_else(|| "rm-rf".to_owned())
                });
                h.choose(action.as_deref(), "proptest");
            }
        }
        Step::Healthy => h.healthy(1),
        Step::Advance(seconds) => h.advance(*seconds),
        Step::Close => h.ok(Input::SimulateOff),
        Step::Restart => {
            // Whatever was in flight died with the process.
            h.outstanding.action = None;
            h.outstanding.run = None;
            h.outstanding.choice = None;
            h.ok(Input::Restarted);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn monitor_only_and_shadow_never_execute_one_action_at_a_time_and_snapshots_restore(
        mode in mode(),
        model in any::<bool>(),
        steps in prop::collection::vec(step(), 1..60),
    ) {
        let chooser = if model { Chooser::Model } else { Chooser::Rules };
        let mut h = Harness::new(Config {
            remediation: spec(mode, chooser),
            ..demo_config()
        });
        for step in &steps {
            // The harness asserts that no ExecuteAction comes while another is outstanding.
            apply(&mut h, step);
        }
        let executes = h
            .effects
            .iter()
            .filter(|effect| matches!(effect, Effect::ExecuteAction { .. }))
            .count();
        if !mode.executes() {
            prop_assert_eq!(executes, 0);
        }
        let active = h.engine.proposals().filter(|p| p.state.is_active()).count();
        prop_assert!(active <= 1, "{} active proposals", active);
        // A snapshot taken now (through JSON) and restored behaves as the original: same effects from the same
        // remaining inputs, remediation timers included.
        let snapshot = h.engine.snapshot().expect("drained");
        let json = serde_json::to_string(&snapshot).expect("serializes");
        let snapshot: Snapshot = serde_json::from_str(&json).expect("reads");
        let mut restored = Engine::restore(h.engine.config().clone(), snapshot).expect("restores");
        let mut original = h.engine;
        let mut now = h.now;
        for second in 0..40 {
            now += TimeDelta::seconds(1);
            let effects = |engine: &mut Engine| -> Vec<Effect> {
                if second == 20 {
                    let _ = engine.handle_input(now, Input::KillSwitchSet { engaged: true, by: "op".to_owned() });
                } else {
                    engine.handle_timeout(now);
                }
                std::iter::from_fn(|| engine.poll_effect()).collect()
            };
            prop_assert_eq!(effects(&mut original), effects(&mut restored));
        }
        prop_assert!(original.proposals().eq(restored.proposals()));
    }
}
