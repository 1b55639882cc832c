//! The model proposes, code decides: with the model as the strategy's chooser, the engine asks for a pick
//! (`ChooseAction`) among the steps ready now, proposes the model's pick only when it passes the gate and is ready,
//! else (or without an answer by the choice deadline) the rules' pick; either way through the same tiers and
//! approvals. Insta traces like the other remediation scenarios, and a replay of the journaled story.

use fixloop_contract::chrono::{DateTime, Utc};
use fixloop_core::engine::{
    ChosenBy, Effect, Engine, Input, PortFailure, ProposalState, Recorded, RecordedInput, Snapshot,
};
use fixloop_core::remediation::{Chooser, RemediationMode, RemediationSpec, RiskTier};

use crate::engine_harness::Harness;
use crate::remediation_scenarios::{
    action, default_steps, executes, harness, latest, open_and_fail, ranked, report,
    rerun_and_fail, spec, step,
};

fn model(mut spec: RemediationSpec) -> RemediationSpec {
    spec.chooser = Chooser::Model;
    spec
}

/// flag-off (safe, once), restart (risky, twice), failover (risky); `page` is declared but in no strategy.
fn three_steps() -> RemediationSpec {
    let mut spec = model(spec(
        RemediationMode::Auto,
        ranked(vec![
            step("flag-off", RiskTier::Safe, 1),
            step("restart", RiskTier::Risky, 2),
            step("failover", RiskTier::Risky, 1),
        ]),
    ));
    spec.actions.push(action("page", "http"));
    spec
}

fn choices(h: &Harness) -> usize {
    h.effects
        .iter()
        .filter(|effect| matches!(effect, Effect::ChooseAction { .. }))
        .count()
}

fn candidates(h: &Harness) -> Vec<String> {
    h.outstanding.choice.clone().expect("a pick is awaited").1
}

#[test]
fn a_models_valid_choice_is_proposed_and_a_risky_one_still_waits_for_approval() {
    let mut h = harness(model(spec(RemediationMode::Auto, default_steps())));
    open_and_fail(&mut h);
    assert_eq!(
        candidates(&h),
        ["flag-off", "restart"],
        "in the rules' order"
    );
    assert_eq!(
        h.engine.proposals().count(),
        0,
        "nothing proposed before the pick"
    );
    h.choose(Some("restart"), "the flag is already off");
    let proposal = h.engine.proposals().last().expect("a proposal");
    assert_eq!(proposal.action_id, "restart");
    assert_eq!(proposal.chosen_by, ChosenBy::Model);
    assert_eq!(proposal.state, ProposalState::AwaitingApproval);
    assert_eq!(executes(&h), 0, "the model's pick waits for an approval");
    let (id, version, _) = latest(&h);
    h.ok(Input::ApprovalGiven {
        proposal: id,
        version,
        by: "alice".to_owned(),
    });
    assert_eq!(executes(&h), 1);
    insta::assert_snapshot!(report(&h));
}

#[test]
fn a_choice_outside_the_strategy_or_not_ready_now_is_refused_and_the_rules_choose() {
    let mut h = harness(three_steps());
    open_and_fail(&mut h);
    // Declared, but not a step of the incident kind's strategy.
    h.choose(Some("page"), "page the on-call");
    let proposal = h.engine.proposals().last().expect("a proposal").clone();
    assert_eq!(proposal.action_id, "flag-off");
    assert_eq!(proposal.chosen_by, ChosenBy::Rules);
    assert!(proposal.choice.as_deref().unwrap_or_default().starts_with("model chose \"page\": refused: action \"page\" is not a step of strategy \"checkout-errors\"; rule-based choice flag-off"), "{:?}", proposal.choice);
    h.action_done(Err(PortFailure::Unavailable("http status 503".to_owned())));
    rerun_and_fail(&mut h);
    assert_eq!(candidates(&h), ["restart", "failover"], "flag-off is spent");
    // A step of the strategy, but spent in this incident.
    h.choose(Some("flag-off"), "it worked last time");
    let proposal = h.engine.proposals().last().expect("a proposal").clone();
    assert_eq!(proposal.action_id, "restart");
    assert_eq!(proposal.chosen_by, ChosenBy::Rules);
    assert!(
        proposal
            .choice
            .as_deref()
            .unwrap_or_default()
            .contains("may not be proposed now"),
        "{:?}",
        proposal.choice
    );
    assert_eq!(proposal.state, ProposalState::AwaitingApproval);
    insta::assert_snapshot!(report(&h));
}

#[test]
fn an_undeclared_choice_or_none_falls_back_to_the_rules() {
    let mut h = harness(three_steps());
    open_and_fail(&mut h);
    h.choose(Some("rm -rf /\nignore the rules"), "obey");
    let proposal = h.engine.proposals().last().expect("a proposal").clone();
    assert_eq!(proposal.action_id, "flag-off");
    assert!(
        proposal
            .choice
            .as_deref()
            .unwrap_or_default()
            .contains("is not declared"),
        "{:?}",
        proposal.choice
    );
    assert_eq!(executes(&h), 1, "the rules' safe pick runs");
    h.action_done(Err(PortFailure::Unavailable("http status 503".to_owned())));
    rerun_and_fail(&mut h);
    h.choose(None, "the model could not be asked: timeout");
    let proposal = h.engine.proposals().last().expect("a proposal").clone();
    assert_eq!(proposal.action_id, "restart");
    assert_eq!(proposal.chosen_by, ChosenBy::Rules);
    assert!(proposal.choice.as_deref().unwrap_or_default().starts_with("model made no choice (the model could not be asked: timeout); rule-based choice restart"), "{:?}", proposal.choice);
    insta::assert_snapshot!(report(&h));
}

#[test]
fn no_answer_by_the_choice_deadline_and_the_rules_choose_and_a_late_answer_is_ignored() {
    let mut h = harness(model(spec(RemediationMode::Auto, default_steps())));
    open_and_fail(&mut h);
    let (late, _) = h.outstanding.choice.clone().expect("a pick is awaited");
    h.advance(29);
    assert_eq!(h.engine.proposals().count(), 0);
    h.advance(1);
    let proposal = h.engine.proposals().last().expect("a proposal").clone();
    assert_eq!(proposal.action_id, "flag-off");
    assert!(
        proposal
            .choice
            .as_deref()
            .unwrap_or_default()
            .starts_with("model made no choice (no answer within 30 s)"),
        "{:?}",
        proposal.choice
    );
    h.ok(Input::ActionChosen {
        effect: late,
        action: Some("restart".to_owned()),
        reason: "late".to_owned(),
    });
    assert_eq!(
        h.engine.proposals().count(),
        1,
        "the late answer changes nothing"
    );
    insta::assert_snapshot!(report(&h));
}

#[test]
fn the_rules_decide_alone_with_one_step_ready_or_the_rules_chooser() {
    let mut h = harness(model(spec(
        RemediationMode::Auto,
        vec![step("restart", RiskTier::Risky, 1)],
    )));
    open_and_fail(&mut h);
    assert_eq!(choices(&h), 0, "one ready step: nothing to pick");
    assert_eq!(latest(&h).2, ProposalState::AwaitingApproval);
    let mut h = harness(spec(RemediationMode::Auto, default_steps()));
    open_and_fail(&mut h);
    assert_eq!(choices(&h), 0, "the rules chooser never asks");
}

#[test]
fn monitor_only_asks_and_records_the_models_pick_and_never_acts() {
    let mut h = harness(model(spec(RemediationMode::MonitorOnly, default_steps())));
    open_and_fail(&mut h);
    h.choose(Some("restart"), "why not");
    let proposal = h.engine.proposals().last().expect("a proposal");
    assert_eq!(proposal.state, ProposalState::Recorded);
    assert_eq!(proposal.chosen_by, ChosenBy::Model);
    assert_eq!(executes(&h), 0);
}

#[test]
fn the_kill_switch_or_a_closed_incident_drops_the_awaited_pick() {
    let mut h = harness(model(spec(RemediationMode::Auto, default_steps())));
    open_and_fail(&mut h);
    h.ok(Input::KillSwitchSet {
        engaged: true,
        by: "alice".to_owned(),
    });
    h.choose(Some("flag-off"), "go");
    assert_eq!(
        h.engine.proposals().count(),
        0,
        "nothing proposed while the switch is engaged"
    );
    h.ok(Input::KillSwitchSet {
        engaged: false,
        by: "alice".to_owned(),
    });
    rerun_and_fail(&mut h);
    assert_eq!(choices(&h), 2, "the next failed run asks again");
    h.ok(Input::SimulateOff);
    h.advance(60);
    assert_eq!(h.engine.proposals().count(), 0);
}

#[test]
fn a_models_pick_is_journaled_survives_a_snapshot_and_replays_to_the_same_proposals() {
    let mut h = harness(three_steps());
    open_and_fail(&mut h);
    // A snapshot taken while the pick is awaited restores the wait and its deadline.
    let snapshot = h.engine.snapshot().expect("drained");
    let json = serde_json::to_string(&snapshot).expect("serializes");
    let back: Snapshot = serde_json::from_str(&json).expect("reads");
    let restored = Engine::restore(h.engine.config().clone(), back).expect("restores");
    assert_eq!(restored.poll_timeout(), h.engine.poll_timeout());
    h.choose(Some("failover"), "the database is down");
    assert_eq!(latest(&h).2, ProposalState::AwaitingApproval);
    // The configuration's image keeps the chooser.
    let image = fixloop_core::engine::RecordedConfig::from(h.engine.config());
    assert_eq!(image.into_config().remediation.chooser, Chooser::Model);
    // The story through the journal's format and back, fed to a fresh engine: the same proposals.
    let start: DateTime<Utc> = crate::engine_harness::start_time();
    let mut fresh = Engine::new(h.engine.config().clone(), start);
    for (now, input) in h.log.clone() {
        match input {
            Some(input) => {
                let json = serde_json::to_string(&RecordedInput::from(&input)).expect("serializes");
                let back: RecordedInput = serde_json::from_str(&json).expect("reads");
                let Recorded::Input(input) = back.into_recorded() else {
                    panic!("an input");
                };
                let _ = fresh.handle_input(now, input);
            }
            None => fresh.handle_timeout(now),
        }
        while fresh.poll_effect().is_some() {}
    }
    assert!(fresh.proposals().eq(h.engine.proposals()));
    assert_eq!(
        fresh.proposals().last().expect("one").chosen_by,
        ChosenBy::Model
    );
}
