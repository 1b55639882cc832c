//! Remediation scenarios: each rule of the engine's remediation (approval, expiry, compare-and-set, strikes, time
//! budget and exhausted strategy → escalation, kill switch, suppression window, shadow, dry-run, monitor-only) as
//! an insta trace of inputs and effects, followed by the proposals as the engine keeps them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use fixloop_contract::{IncidentState, TimelineKind};
use fixloop_core::ProposalId;
use fixloop_core::engine::{
    ChosenBy, Config, Effect, Engine, Input, Outcome, PortFailure, ProposalState, RecordedInput,
    Rejected, Snapshot,
};
use fixloop_core::remediation::{
    ActionSpec, IncidentMatch, RemediationMode, RemediationSpec, RiskTier, Strategy, StrategyStep,
};

use crate::engine_harness::{Harness, demo_config};

pub(crate) fn step(action: &str, tier: RiskTier, max_per_incident: u32) -> StrategyStep {
    StrategyStep {
        action: action.to_owned(),
        tier,
        tiers_by_environment: BTreeMap::new(),
        cooldown: Duration::ZERO,
        max_per_incident,
        rank: 0,
    }
}

pub(crate) fn action(id: &str, executor: &str) -> ActionSpec {
    ActionSpec {
        id: id.to_owned(),
        executor: executor.to_owned(),
        description: String::new(),
    }
}

/// A checkout strategy: the feature flag off (safe), then a restart (risky).
pub(crate) fn spec(mode: RemediationMode, steps: Vec<StrategyStep>) -> RemediationSpec {
    RemediationSpec {
        mode,
        actions: vec![
            action("flag-off", "http"),
            action("restart", "docker-restart"),
            action("failover", "command"),
        ],
        strategies: vec![Strategy {
            kind: "checkout-errors".to_owned(),
            matches: IncidentMatch {
                top_error: Some("/checkout".to_owned()),
                ..IncidentMatch::default()
            },
            steps,
        }],
        time_budget: Duration::from_secs(600),
        approval_expiry: Duration::from_secs(30),
        suppress_window: Duration::from_secs(2),
        judge_window: Duration::from_secs(20),
        action_deadline: Duration::from_secs(10),
        ..RemediationSpec::default()
    }
}

/// The steps in declared order (each ranked by its position, as a profile does by default).
pub(crate) fn ranked(mut steps: Vec<StrategyStep>) -> Vec<StrategyStep> {
    for (rank, step) in (0..).zip(steps.iter_mut()) {
        step.rank = rank;
    }
    steps
}

pub(crate) fn default_steps() -> Vec<StrategyStep> {
    ranked(vec![
        step("flag-off", RiskTier::Safe, 1),
        step("restart", RiskTier::Risky, 1),
    ])
}

pub(crate) fn harness(remediation: RemediationSpec) -> Harness {
    Harness::new(Config {
        // No periodic rerun in the way: the scenarios start every run themselves.
        rerun_interval: Duration::from_secs(3600),
        remediation,
        ..demo_config()
    })
}

/// Opens the incident and fails its first run.
pub(crate) fn open_and_fail(h: &mut Harness) {
    h.open_and_plan();
    h.verdicts(&["t1-checkout-valid"]);
}

/// Asks for a rerun and fails it.
pub(crate) fn rerun_and_fail(h: &mut Harness) {
    let incident_id = fixloop_core::IncidentId::new(
        h.engine
            .current_incident()
            .expect("an incident is open")
            .incident_id
            .clone(),
    );
    h.ok(Input::OperatorRequestedRun { incident_id });
    h.verdicts(&["t1-checkout-valid"]);
}

pub(crate) fn latest(h: &Harness) -> (ProposalId, u64, ProposalState) {
    let proposal = h.engine.proposals().last().expect("a proposal");
    (proposal.id.clone(), proposal.version, proposal.state)
}

pub(crate) fn executes(h: &Harness) -> usize {
    h.effects
        .iter()
        .filter(|effect| matches!(effect, Effect::ExecuteAction { .. }))
        .count()
}

/// The trace, then every proposal and the success figures.
pub(crate) fn report(h: &Harness) -> String {
    let mut out = h.trace().to_owned();
    out.push_str("-- proposals\n");
    for p in h.engine.proposals() {
        let _ = writeln!(
            out,
            "{} {} {} tier={} mode={} v{} {} by={}{} ({})",
            p.id,
            p.incident_id,
            p.action_id,
            p.tier,
            p.mode,
            p.version,
            p.state.name(),
            p.decided_by.as_deref().unwrap_or("-"),
            match (&p.choice, p.chosen_by) {
                (Some(choice), ChosenBy::Model) => format!(" chosen=model [{choice}]"),
                (Some(choice), ChosenBy::Rules) => format!(" chosen=rules [{choice}]"),
                (None, _) => String::new(),
            },
            p.note
        );
    }
    out.push_str("-- stats\n");
    for stats in h.engine.action_stats() {
        let _ = writeln!(
            out,
            "{} {} attempts={} effective={}",
            stats.kind, stats.action_id, stats.attempts, stats.effective
        );
    }
    out
}

#[test]
fn a_safe_action_runs_at_once_and_is_judged_effective_on_what_follows_it() {
    let mut h = harness(spec(RemediationMode::Auto, default_steps()));
    open_and_fail(&mut h);
    assert_eq!(executes(&h), 1, "the safe step runs without approval");
    h.action_done(Ok(()));
    // The suppression window ends: the signals are dropped and the plan reruns.
    h.advance(2);
    h.pass_all();
    h.healthy(2);
    assert_eq!(h.status(), IncidentState::Recovered);
    assert_eq!(latest(&h).2, ProposalState::Finished(Outcome::Effective));
    insta::assert_snapshot!(report(&h));
}

#[test]
fn a_risky_action_waits_for_approval_and_two_operators_cannot_both_approve() {
    let mut h = harness(spec(
        RemediationMode::Auto,
        vec![step("restart", RiskTier::Risky, 1)],
    ));
    open_and_fail(&mut h);
    let (id, version, state) = latest(&h);
    assert_eq!(state, ProposalState::AwaitingApproval);
    assert_eq!(executes(&h), 0, "nothing runs before an approval");
    // A stale version is refused (compare-and-set).
    let stale = h.input(Input::ApprovalGiven {
        proposal: id.clone(),
        version: version + 7,
        by: "bob".to_owned(),
    });
    assert_eq!(
        stale,
        Err(Rejected::VersionConflict {
            proposal: id.clone(),
            current: version
        })
    );
    h.ok(Input::ApprovalGiven {
        proposal: id.clone(),
        version,
        by: "alice".to_owned(),
    });
    assert_eq!(executes(&h), 1);
    // The second operator saw the same version: refused, the action runs once.
    let second = h.input(Input::ApprovalGiven {
        proposal: id.clone(),
        version,
        by: "bob".to_owned(),
    });
    assert!(matches!(second, Err(Rejected::VersionConflict { .. })));
    assert_eq!(
        h.input(Input::ApprovalGiven {
            proposal: ProposalId::new("rem-nope"),
            version: 1,
            by: "bob".to_owned(),
        }),
        Err(Rejected::UnknownProposal(ProposalId::new("rem-nope")))
    );
    assert_eq!(executes(&h), 1);
    insta::assert_snapshot!(report(&h));
}

#[test]
fn a_rejected_step_is_not_proposed_again_in_the_incident() {
    let mut h = harness(spec(
        RemediationMode::Auto,
        ranked(vec![
            step("restart", RiskTier::Risky, 3),
            step("failover", RiskTier::Risky, 1),
        ]),
    ));
    open_and_fail(&mut h);
    let (id, version, _) = latest(&h);
    h.ok(Input::ApprovalRejected {
        proposal: id,
        version,
        by: "alice".to_owned(),
    });
    rerun_and_fail(&mut h);
    let proposal = h.engine.proposals().last().expect("a proposal");
    assert_eq!(proposal.action_id, "failover");
    insta::assert_snapshot!(report(&h));
}

#[test]
fn a_proposal_nobody_approves_lapses_and_a_late_approval_is_refused() {
    let mut h = harness(spec(
        RemediationMode::Auto,
        vec![step("restart", RiskTier::Risky, 2)],
    ));
    open_and_fail(&mut h);
    let (id, version, _) = latest(&h);
    h.advance(31);
    let (_, expired_version, state) = latest(&h);
    assert_eq!(state, ProposalState::Expired);
    let late = h.input(Input::ApprovalGiven {
        proposal: id.clone(),
        version,
        by: "alice".to_owned(),
    });
    assert!(matches!(late, Err(Rejected::VersionConflict { .. })));
    let current = h.input(Input::ApprovalGiven {
        proposal: id.clone(),
        version: expired_version,
        by: "alice".to_owned(),
    });
    assert_eq!(current, Err(Rejected::NotAwaitingApproval(id)));
    // The next failed run asks again (the step allows two proposals per incident).
    rerun_and_fail(&mut h);
    assert_eq!(latest(&h).2, ProposalState::AwaitingApproval);
    assert_eq!(executes(&h), 0);
    insta::assert_snapshot!(report(&h));
}

#[test]
fn three_strikes_and_the_action_is_not_tried_again_for_the_fingerprint() {
    let mut h = harness(spec(
        RemediationMode::Auto,
        ranked(vec![
            step("flag-off", RiskTier::Safe, 10),
            step("restart", RiskTier::Risky, 1),
        ]),
    ));
    open_and_fail(&mut h);
    for _ in 0..3 {
        h.action_done(Ok(()));
        h.advance(2);
        // The rerun after the action fails: ineffective, a strike.
        h.verdicts(&["t1-checkout-valid"]);
    }
    assert_eq!(executes(&h), 3);
    let proposal = h.engine.proposals().last().expect("a proposal");
    assert_eq!(proposal.action_id, "restart", "flag-off is struck out");
    assert_eq!(proposal.state, ProposalState::AwaitingApproval);
    let stats = h.engine.action_stats();
    assert_eq!((stats[0].attempts, stats[0].effective), (3, 0));
    insta::assert_snapshot!(report(&h));
}

#[test]
fn an_exhausted_strategy_escalates_the_incident_once() {
    let mut h = harness(spec(
        RemediationMode::Auto,
        vec![step("flag-off", RiskTier::Safe, 1)],
    ));
    open_and_fail(&mut h);
    h.action_done(Err(PortFailure::Unavailable("http status 503".to_owned())));
    rerun_and_fail(&mut h);
    rerun_and_fail(&mut h);
    let escalations = h
        .effects
        .iter()
        .filter(|effect| matches!(effect, Effect::Notify(n) if n.kind == fixloop_core::engine::NotificationKind::Escalated))
        .count();
    assert_eq!(escalations, 1);
    insta::assert_snapshot!(report(&h));
}

#[test]
fn the_time_budget_escalates_an_incident_that_has_not_recovered() {
    let mut remediation = spec(
        RemediationMode::Auto,
        vec![step("restart", RiskTier::Risky, 1)],
    );
    remediation.time_budget = Duration::from_secs(20);
    remediation.approval_expiry = Duration::from_secs(600);
    let mut h = harness(remediation);
    open_and_fail(&mut h);
    h.advance(25);
    let incident_id = fixloop_core::IncidentId::new(
        h.engine
            .current_incident()
            .expect("open")
            .incident_id
            .clone(),
    );
    let detail = h.engine.incident_history(&incident_id).expect("kept");
    assert!(
        detail
            .timeline
            .iter()
            .any(|entry| entry.kind == TimelineKind::NeedsHuman
                && entry.summary == "escalated: time budget of 20 s spent without recovery"),
        "{:?}",
        detail.timeline
    );
    insta::assert_snapshot!(report(&h));
}

#[test]
fn the_kill_switch_stops_the_action_in_flight_and_refuses_approvals() {
    let mut h = harness(spec(
        RemediationMode::Auto,
        ranked(vec![
            step("flag-off", RiskTier::Safe, 2),
            step("restart", RiskTier::Risky, 1),
        ]),
    ));
    open_and_fail(&mut h);
    let effect = h.outstanding.action.expect("executing");
    h.ok(Input::KillSwitchSet {
        engaged: true,
        by: "alice".to_owned(),
    });
    assert!(
        h.effects.iter().any(
            |e| matches!(e, Effect::CancelAction { effect: cancelled } if *cancelled == effect)
        )
    );
    // The late answer of the cancelled action changes nothing.
    h.ok(Input::ActionFinished {
        effect,
        result: Ok(()),
    });
    rerun_and_fail(&mut h);
    assert_eq!(executes(&h), 1, "nothing runs while the switch is engaged");
    h.ok(Input::KillSwitchSet {
        engaged: false,
        by: "alice".to_owned(),
    });
    rerun_and_fail(&mut h);
    assert_eq!(executes(&h), 2);
    assert!(
        h.engine.action_stats().is_empty(),
        "a cancellation is nobody's verdict"
    );
    insta::assert_snapshot!(report(&h));
}

#[test]
fn an_approval_is_refused_while_the_kill_switch_is_engaged() {
    let mut h = harness(spec(
        RemediationMode::Auto,
        vec![step("restart", RiskTier::Risky, 1)],
    ));
    open_and_fail(&mut h);
    let (id, version, _) = latest(&h);
    h.ok(Input::KillSwitchSet {
        engaged: true,
        by: "alice".to_owned(),
    });
    // Engaging withdrew the proposal: its version moved on.
    let (_, withdrawn, state) = latest(&h);
    assert_eq!(state, ProposalState::Withdrawn);
    assert!(withdrawn > version);
    assert!(
        h.input(Input::ApprovalGiven {
            proposal: id,
            version: withdrawn,
            by: "bob".to_owned(),
        })
        .is_err()
    );
    assert_eq!(executes(&h), 0);
}

#[test]
fn the_suppression_window_ignores_alerts_and_the_verdict_uses_only_later_samples() {
    let mut h = harness(spec(RemediationMode::Auto, default_steps()));
    open_and_fail(&mut h);
    h.action_done(Ok(()));
    // Inside the window: an alert (the action's own side effect) is ignored, and healthy samples do not count.
    let mark = h.mark();
    h.alert("restart-blip");
    assert_eq!(
        Harness::runs_started(h.effects_since(mark)),
        0,
        "the alert is ignored (outside the window it starts a rerun)"
    );
    h.healthy(2);
    h.advance(1);
    // The window ends: the signals are dropped, the plan reruns and passes, but the gate wants samples from now on.
    h.pass_all();
    assert_eq!(h.status(), IncidentState::Validating);
    h.healthy(2);
    assert_eq!(h.status(), IncidentState::Recovered);
    insta::assert_snapshot!(report(&h));
}

#[test]
fn shadow_mode_records_what_it_would_have_run_and_the_verdict_then() {
    let mut h = harness(spec(RemediationMode::Shadow, default_steps()));
    open_and_fail(&mut h);
    rerun_and_fail(&mut h);
    h.ok(Input::ServiceChanged { repair: true });
    h.pass_all();
    h.healthy(2);
    assert_eq!(h.status(), IncidentState::Recovered);
    assert_eq!(executes(&h), 0, "shadow never acts");
    let states: Vec<_> = h.engine.proposals().map(|p| p.state).collect();
    assert_eq!(
        states,
        [
            ProposalState::Finished(Outcome::Ineffective),
            ProposalState::Finished(Outcome::Effective)
        ]
    );
    assert!(h.engine.action_stats().is_empty());
    insta::assert_snapshot!(report(&h));
}

#[test]
fn dry_run_goes_through_every_rule_but_asks_the_driver_only_to_log() {
    let mut h = harness(spec(RemediationMode::DryRun, default_steps()));
    open_and_fail(&mut h);
    assert!(
        h.effects
            .iter()
            .any(|e| matches!(e, Effect::ExecuteAction { dry_run: true, .. }))
    );
    h.action_done(Ok(()));
    h.advance(2);
    h.verdicts(&["t1-checkout-valid"]);
    // The risky step still waits for an approval.
    assert_eq!(latest(&h).2, ProposalState::AwaitingApproval);
    assert!(
        h.engine.action_stats().is_empty(),
        "a dry run teaches nothing"
    );
    insta::assert_snapshot!(report(&h));
}

#[test]
fn monitor_only_proposes_and_records_and_never_acts() {
    let mut h = harness(spec(RemediationMode::MonitorOnly, default_steps()));
    open_and_fail(&mut h);
    rerun_and_fail(&mut h);
    rerun_and_fail(&mut h);
    assert_eq!(executes(&h), 0);
    insta::assert_snapshot!(report(&h));
}

#[test]
fn the_environment_label_selects_the_tier() {
    let mut steps = default_steps();
    steps[0]
        .tiers_by_environment
        .insert("production".to_owned(), RiskTier::Risky);
    let mut remediation = spec(RemediationMode::Auto, steps);
    remediation
        .labels
        .insert("environment".to_owned(), "production".to_owned());
    let mut h = harness(remediation);
    open_and_fail(&mut h);
    let proposal = h.engine.proposals().last().expect("a proposal");
    assert_eq!(proposal.action_id, "flag-off");
    assert_eq!(proposal.state, ProposalState::AwaitingApproval);
}

#[test]
fn success_rates_order_steps_of_the_same_rank() {
    let mut steps = vec![
        step("restart", RiskTier::Safe, 5),
        step("flag-off", RiskTier::Safe, 5),
    ];
    steps[0].rank = 1;
    steps[1].rank = 1;
    let mut h = harness(spec(RemediationMode::Auto, steps));
    // First incident: restart (declared first) is ineffective; flag-off then works.
    open_and_fail(&mut h);
    h.action_done(Ok(()));
    h.advance(2);
    h.verdicts(&["t1-checkout-valid"]);
    assert_eq!(
        h.engine.proposals().last().expect("one").action_id,
        "flag-off"
    );
    h.action_done(Ok(()));
    h.advance(2);
    h.pass_all();
    h.healthy(2);
    assert_eq!(h.status(), IncidentState::Recovered);
    h.ok(Input::SimulateOff);
    h.advance(30);
    // Second incident: flag-off has the better success rate and goes first.
    open_and_fail(&mut h);
    assert_eq!(
        h.engine.proposals().last().expect("one").action_id,
        "flag-off"
    );
}

#[test]
fn remediation_state_survives_a_snapshot_and_the_inputs_a_journal() {
    let mut h = harness(spec(RemediationMode::Auto, default_steps()));
    open_and_fail(&mut h);
    h.action_done(Ok(()));
    h.advance(2);
    h.verdicts(&["t1-checkout-valid"]);
    let snapshot = h.engine.snapshot().expect("drained");
    let json = serde_json::to_string(&snapshot).expect("serializes");
    let back: Snapshot = serde_json::from_str(&json).expect("reads");
    let restored = Engine::restore(h.engine.config().clone(), back).expect("restores");
    assert!(restored.proposals().eq(h.engine.proposals()));
    assert_eq!(restored.action_stats(), h.engine.action_stats());
    assert_eq!(restored.poll_timeout(), h.engine.poll_timeout());
    // A snapshot an older build wrote has no remediation and restores with none.
    let mut old: serde_json::Value = serde_json::to_value(&snapshot).expect("value");
    old.as_object_mut().expect("object").remove("remediation");
    let old: Snapshot = serde_json::from_value(old).expect("old format reads");
    let restored = Engine::restore(h.engine.config().clone(), old).expect("restores");
    assert_eq!(restored.proposals().count(), 0);
    // The configuration's image keeps the spec.
    let image = fixloop_core::engine::RecordedConfig::from(h.engine.config());
    assert_eq!(&image.into_config(), h.engine.config());
    // Every new input goes through the journal and back unchanged.
    for input in [
        Input::ApprovalGiven {
            proposal: ProposalId::new("rem-t-1"),
            version: 2,
            by: "alice".to_owned(),
        },
        Input::ApprovalRejected {
            proposal: ProposalId::new("rem-t-1"),
            version: 3,
            by: "bob".to_owned(),
        },
        Input::ActionFinished {
            effect: fixloop_core::EffectId(9),
            result: Err(PortFailure::Timeout),
        },
        Input::KillSwitchSet {
            engaged: true,
            by: "carol".to_owned(),
        },
    ] {
        let recorded = RecordedInput::from(&input);
        let json = serde_json::to_string(&recorded).expect("serializes");
        let back: RecordedInput = serde_json::from_str(&json).expect("reads");
        assert_eq!(
            back.into_recorded(),
            fixloop_core::engine::Recorded::Input(input)
        );
    }
}
