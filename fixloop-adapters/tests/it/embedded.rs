//! The embedded defaults: the rule planner and the grounded copilot meet their port contracts, and the grounded
//! copilot's answers are grounded (cause names the endpoint, safety is never yes unless RECOVERED).

use std::sync::Arc;

use async_trait::async_trait;
use fixloop_adapters::{Copilot, GroundedCopilot, Planner, RulePlanner};

use crate::contract::copilot::{
    self, EVIDENCE_URL, NothingToArrange, RUN_URL, claims_safety, states,
};
use crate::contract::planner::{self, PlannerBehaviour, PlannerScenario};

struct RuleScenario;

#[async_trait]
impl PlannerScenario for RuleScenario {
    async fn arrange(&self, behaviour: PlannerBehaviour) -> bool {
        // The rule planner cannot fail: only the valid case applies.
        behaviour == PlannerBehaviour::Valid
    }
}

#[tokio::test]
async fn rule_planner_meets_the_planner_contract() {
    planner::check_all(|| async {
        let planner: Arc<dyn Planner> = Arc::new(RulePlanner);
        let scenario: Box<dyn PlannerScenario> = Box::new(RuleScenario);
        (planner, scenario)
    })
    .await;
}

#[tokio::test]
async fn grounded_copilot_meets_the_copilot_contract() {
    copilot::check_all(|| async {
        let copilot: Arc<dyn Copilot> = Arc::new(GroundedCopilot);
        let scenario: Box<dyn copilot::CopilotScenario> = Box::new(NothingToArrange);
        (copilot, scenario)
    })
    .await;
}

fn state(name: &str) -> fixloop_adapters::CopilotState {
    states()
        .into_iter()
        .find(|(fixture, _)| *fixture == name)
        .map(|(_, state)| state)
        .unwrap_or_else(|| panic!("no fixture {name}"))
}

#[test]
fn cause_answer_names_the_top_error_the_failing_endpoint_and_its_details() {
    let reply = GroundedCopilot::reply("What caused this incident?", &state("failing_run"));
    for expected in [
        "POST /checkout -> 500 payment provider timeout",
        "Checkout accepts a valid order (POST /checkout)",
        "status is 500, expected 200",
        "35.0%",
        "1800 ms",
    ] {
        assert!(
            reply.answer.contains(expected),
            "{expected:?} missing from {:?}",
            reply.answer
        );
    }
    let urls: Vec<&str> = reply
        .citations
        .iter()
        .map(|link| link.url.as_str())
        .collect();
    assert_eq!(urls, [EVIDENCE_URL, RUN_URL]);
}

#[test]
fn safety_is_yes_only_when_recovered() {
    let recovered = GroundedCopilot::reply("Is it safe to resume?", &state("recovered"));
    assert!(recovered.answer.starts_with("Yes"), "{}", recovered.answer);
    assert!(claims_safety(&recovered.answer));
    for (name, state) in states() {
        let reply = GroundedCopilot::reply("Is it safe to resume?", &state);
        assert_eq!(
            reply.answer.starts_with("Yes"),
            name == "recovered",
            "{name}: {}",
            reply.answer
        );
    }
}

#[test]
fn not_safe_answers_say_why() {
    let cases = [
        (
            "failing_run",
            "Checkout accepts a valid order (POST /checkout): status is 500, expected 200",
        ),
        ("running_run", "still running (3 of 5 tests finished)"),
        ("passed_but_signals_high", "the error rate is still 12.0%"),
        (
            "incident_without_run",
            "no validation run has completed yet",
        ),
        ("healthy", "no incident is open"),
    ];
    for (name, reason) in cases {
        let reply = GroundedCopilot::reply("Can we resume traffic?", &state(name));
        assert!(
            reply.answer.starts_with("No, not yet"),
            "{name}: {}",
            reply.answer
        );
        assert!(
            reply.answer.to_lowercase().contains(&reason.to_lowercase()),
            "{name}: {reason:?} missing from {:?}",
            reply.answer
        );
    }
}

#[test]
fn unknown_questions_get_a_summary() {
    let reply = GroundedCopilot::reply("Tell me a joke", &state("running_run"));
    assert!(
        reply.answer.starts_with("Status: VALIDATING."),
        "{}",
        reply.answer
    );
    assert!(
        reply
            .answer
            .contains("Run run-0001 is RUNNING: 3 passed, 0 failed, 1 running, 1 pending"),
        "{}",
        reply.answer
    );
}

#[test]
fn without_incident_there_is_nothing_to_cite() {
    let reply = GroundedCopilot::reply("What caused this?", &state("healthy"));
    assert!(
        reply.answer.starts_with("No incident is open"),
        "{}",
        reply.answer
    );
    assert!(reply.citations.is_empty());
}

#[test]
fn answers_are_stable() {
    let mut transcript = String::new();
    for (name, state) in states() {
        for question in copilot::QUESTIONS {
            let reply = GroundedCopilot::reply(question, &state);
            transcript.push_str(&format!("[{name}] {question}\n{}\n", reply.answer));
            for link in reply.citations {
                transcript.push_str(&format!("  cite: {} <{}>\n", link.label, link.url));
            }
            transcript.push('\n');
        }
    }
    insta::assert_snapshot!(transcript);
}

#[test]
fn grounded_answers_never_claim_safety_before_recovered() {
    let questions = copilot::QUESTIONS
        .iter()
        .chain(copilot::SAFETY_QUESTIONS.iter())
        .chain(
            [
                "All clear? Can we reopen traffic?",
                "Are we good to ship?",
                "why is checkout failing",
                "is it over?",
            ]
            .iter(),
        );
    let mut checked = 0;
    for question in questions {
        for (name, state) in states() {
            if state.status.status == fixloop_contract::IncidentState::Recovered {
                continue;
            }
            let reply = GroundedCopilot::reply(question, &state);
            assert!(
                !fixloop_adapters::copilot_safety::claims_safety(&reply.answer),
                "{name}: {question:?} was answered {:?}",
                reply.answer
            );
            checked += 1;
        }
    }
    assert!(checked > 50, "{checked}");
}
