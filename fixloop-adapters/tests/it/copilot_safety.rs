//! The copilot's safety rule against the hand-written corpus `tests/data/copilot_safety_corpus.txt`: every
//! paraphrased claim is stopped before RECOVERED, every harmless answer passes, and claims pass once RECOVERED.

use fixloop_adapters::CopilotReply;
use fixloop_adapters::copilot_safety::{Author, Claim, check, claims_safety, guard};
use fixloop_contract::IncidentState;

use crate::contract::copilot::states;

const CORPUS: &str = include_str!("../data/copilot_safety_corpus.txt");

/// The corpus's `(is_claim, text)` lines.
fn corpus() -> Vec<(bool, &'static str)> {
    lines()
        .map(|(kind, text)| (kind == "CLAIM", text))
        .collect()
}

/// The corpus's `(kind, text)` lines.
fn lines() -> impl Iterator<Item = (&'static str, &'static str)> {
    CORPUS
        .lines()
        .map(str::trim_end)
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (kind, text) = line
                .split_once('\t')
                .unwrap_or_else(|| panic!("no tab in corpus line {line:?}"));
            assert!(
                matches!(kind, "CLAIM" | "HARMLESS"),
                "unknown corpus kind {kind:?} in {line:?}"
            );
            (kind, text)
        })
}

#[test]
fn every_claim_of_the_corpus_is_stopped_and_every_harmless_answer_passes() {
    let corpus = corpus();
    let claims: Vec<&str> = corpus.iter().filter(|(c, _)| *c).map(|(_, t)| *t).collect();
    let harmless: Vec<&str> = corpus
        .iter()
        .filter(|(c, _)| !*c)
        .map(|(_, t)| *t)
        .collect();
    assert!(claims.len() >= 50, "the corpus has {} claims", claims.len());
    assert!(
        harmless.len() >= 50,
        "the corpus has {} harmless answers",
        harmless.len()
    );
    let missed: Vec<&str> = claims
        .iter()
        .copied()
        .filter(|text| !claims_safety(text))
        .collect();
    let flagged: Vec<&str> = harmless
        .iter()
        .copied()
        .filter(|text| claims_safety(text))
        .collect();
    println!(
        "claims stopped {}/{}, harmless passed {}/{}",
        claims.len() - missed.len(),
        claims.len(),
        harmless.len() - flagged.len(),
        harmless.len()
    );
    assert!(missed.is_empty(), "claims that got through: {missed:#?}");
    assert!(flagged.is_empty(), "harmless answers stopped: {flagged:#?}");
}

#[test]
fn corpus_claims_are_withheld_in_every_state_but_recovered_whatever_the_claim_field_says() {
    for (name, state) in states() {
        let recovered = state.status.status == IncidentState::Recovered;
        for (is_claim, text) in corpus() {
            for claim in [Claim::None, Claim::NotRecovered] {
                let verdict = check("What now?", text, claim, &state);
                if recovered || !is_claim {
                    assert_eq!(verdict, Ok(()), "{name}: {text:?} ({claim:?})");
                } else {
                    assert!(verdict.is_err(), "{name}: {text:?} got through ({claim:?})");
                }
            }
            let claimed = check("What now?", text, Claim::Recovered, &state);
            assert_eq!(
                claimed.is_ok(),
                recovered,
                "{name}: claim field on {text:?}"
            );
        }
    }
}

#[test]
fn a_yes_to_a_safety_question_is_withheld_before_recovered() {
    for (name, state) in states() {
        let verdict = check("Is it safe to resume?", "Yes.", Claim::None, &state);
        assert_eq!(
            verdict.is_ok(),
            state.status.status == IncidentState::Recovered,
            "{name}"
        );
        assert_eq!(
            check(
                "Is checkout still failing?",
                "Yes, it returns 500.",
                Claim::None,
                &state
            ),
            Ok(()),
            "{name}: a yes to another question is fine"
        );
    }
}

/// The rule the server applies ([`guard`], a model's answer) leaves out every claim of the corpus before RECOVERED,
/// as a whole answer and after a harmless sentence.
#[test]
fn the_served_rule_leaves_out_every_corpus_claim_before_recovered() {
    let claims: Vec<&str> = corpus()
        .into_iter()
        .filter(|(is_claim, _)| *is_claim)
        .map(|(_, text)| text)
        .collect();
    for (name, state) in states() {
        if state.status.status == IncidentState::Recovered {
            continue;
        }
        let through: Vec<&str> = claims
            .iter()
            .copied()
            .filter(|text| {
                let reply = CopilotReply {
                    answer: format!("The checkout test fails with a 500. {text}"),
                    citations: Vec::new(),
                    claim: Claim::None,
                };
                let guarded = guard("What now?", reply, Author::Model, &state);
                !guarded.redacted || guarded.reply.answer.contains(text)
            })
            .collect();
        eprintln!(
            "corpus claims left out ({name}): {}/{}",
            claims.len() - through.len(),
            claims.len()
        );
        assert!(through.is_empty(), "{name}: {through:#?}");
    }
}
