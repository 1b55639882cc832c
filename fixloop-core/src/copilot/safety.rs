//! The copilot's safety rule (issues 14 and 22): what may be said about the service's health while the status is
//! not RECOVERED is decided by code, not by the model and not by a list of phrases.
//!
//! [`guard`] is the rule, pure, and the server applies it once to every answer, whichever copilot wrote it:
//! - a model's answer ([`Author::Model`]) opens with the server's own status sentence ([`opening`]); while the
//!   status is not RECOVERED, a `recovered` claim field or a yes to a safety question withholds the whole answer,
//!   and every sentence whose TOPIC is the service's health, recovery, safety, traffic, resolution, an all-clear or
//!   next actions being unnecessary ([`is_status_topic`]) is left out, whatever it claims (a model's "not healthy
//!   yet" is left out too: the status sentence says it), as is every sentence [`claims_safety`] stops;
//! - an answer written by the server from the state ([`Author::Server`], the grounded copilot) is checked with
//!   [`check`] (the claim detector below) and replaced by a grounded "not yet" if it ever claimed safety;
//! - an answer the rule changed is marked ([`Guarded::redacted`], the wire's `redacted: true`).
//!
//! The topic classifier ([`is_status_topic`]) looks for the words of the topic, not for claims: health and
//! recovery words (`healthy`, `recovered`, `stable`, `normal`, `operational`, `mitigated`, `resolved`, `fixed`,
//! `safe`, …), traffic and resumption words (`traffic`, `resume`, `reopen`, `restore`, `re-enable`, …), the
//! all-clear idioms, phrases saying no more action is needed (`no further`, `nothing else`, `stand down`, closing
//! the incident), and generic judgements (`fine`, `ok`, `good`, `working`, `back`, `up`, `over`, …) when the
//! sentence names a subject whose state is the service's (`the service`, `checkout`, `the API`, `error rates`,
//! `users`, `it`, …). Facts about tests, evidence, metrics and next checks carry none of these and pass.
//!
//! The claim detector [`claims_safety`] splits the text into sentences (questions are skipped), clauses (at `;`,
//! `:`, dashes, brackets, and at `but`, `however`, `so`, …) and comma segments, and looks for these claims:
//! - a resolution predicate (`safe`, `recovered`, `resolved`, `fixed`, `healthy`, `stable`, `mitigated`, `over`, …)
//!   said of a global subject (`it`, `everything`, `we`, `the service`, `the incident`, `checkout`, `traffic`, …)
//!   or standing alone as a fragment (`Resolved.`, `Fixed!`), or followed by `to` and a resumption verb
//!   (`safe to reopen`, `good to resume`);
//! - a resumption verb (`resume`, `reopen`, `restore`, `re-enable`, `flip`, `turn`, `lift`, `ship`, …) on a traffic
//!   object (`traffic`, `it`, `checkout`, `users`, `deploys`, `the freeze`, …), given permission (`can`, `may`,
//!   `should`, `feel free`, `go ahead`, `cleared`, `let's`, …) or in imperative position (first in its segment);
//! - an all-clear idiom (`all clear`, `out of the woods`, `green across the board`, `good to go`, `lgtm`, …);
//! - a negated negative that lifts a restriction (`no reason to keep traffic drained`, `no need to leave checkout
//!   disabled`).
//!
//! A claim does not count when it is negated (`not`, `never`, `no`, `don't`, `too early`, `hold off`, `far from`,
//! … anywhere before it in its clause, the scope ending at a comma once the negation has found its predicate) or
//! conditional (`once`, `until`, `if`, `after`, `before`, `whether`, `requires`, `as soon as` in its clause, or
//! `then`, `will be`, `would be` before it).

use std::fmt::Write as _;

use fixloop_contract::{IncidentState, TestStatus};

pub use super::claims::claims_safety;
use super::claims::opens_with_yes;
pub use super::text::{cut_on_word, split_sentences};
pub use super::topics::is_status_topic;
pub use super::{Claim, CopilotReply, CopilotState};

/// Why an answer was withheld.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Withheld {
    /// The model's claim field said `recovered` while the status is not RECOVERED.
    ClaimField,
    /// The answer's text claims safety, recovery or resumption (see [`claims_safety`]).
    Text,
    /// The answer opens with a yes to a safety question.
    AffirmedSafetyQuestion,
}

/// Whether `answer` may be shown while in `state`: `Ok(())`, or why it is withheld. When the status is RECOVERED
/// everything passes.
///
/// # Errors
///
/// [`Withheld`] says which check stopped the answer.
pub fn check(
    question: &str,
    answer: &str,
    claim: Claim,
    state: &CopilotState,
) -> Result<(), Withheld> {
    if state.status.status == IncidentState::Recovered {
        return Ok(());
    }
    if claim == Claim::Recovered {
        return Err(Withheld::ClaimField);
    }
    if claims_safety(answer) {
        return Err(Withheld::Text);
    }
    if asks_about_safety(question) && opens_with_yes(answer) {
        return Err(Withheld::AffirmedSafetyQuestion);
    }
    Ok(())
}

/// Who wrote an answer's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Author {
    /// A language model: its sentences about the service's health are left out before RECOVERED.
    Model,
    /// The server, from the state alone (the grounded copilot, also as a fallback).
    Server,
}

/// An answer after the safety rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Guarded {
    /// The answer the operator sees.
    pub reply: CopilotReply,
    /// Whether the rule changed the answer (sentences left out, or the whole answer withheld).
    pub redacted: bool,
    /// How many of the author's sentences were left out (all of them when the answer was withheld).
    pub left_out: usize,
}

/// The safety rule, applied once to every answer before anyone sees it (pure). See the module docs.
///
/// A model's answer always opens with [`opening`]. Unless the status is RECOVERED: a `recovered` claim field
/// ([`CopilotReply::claim`]) or a yes to a safety question withholds it whole; otherwise every sentence about the
/// service's health, recovery, safety or traffic ([`is_status_topic`], [`claims_safety`]) is left out, and a note
/// says how many. An answer written by the server from the state passes [`check`] or is replaced by
/// [`withheld_answer`]. The citations are kept (they were already filtered against the state).
#[must_use]
pub fn guard(question: &str, reply: CopilotReply, author: Author, state: &CopilotState) -> Guarded {
    let withheld = |reply: CopilotReply, left_out: usize| Guarded {
        reply: CopilotReply {
            answer: format!("{} {}", opening(state), withheld_answer(state)),
            citations: reply.citations,
            claim: Claim::None,
        },
        redacted: true,
        left_out,
    };
    match author {
        Author::Server => match check(question, &reply.answer, reply.claim, state) {
            Ok(()) => Guarded {
                reply,
                redacted: false,
                left_out: 0,
            },
            Err(_) => {
                let left_out = split_sentences(&reply.answer).len();
                withheld(reply, left_out)
            }
        },
        Author::Model => {
            if state.status.status == IncidentState::Recovered {
                let answer = join(opening(state), reply.answer.trim());
                return Guarded {
                    reply: CopilotReply { answer, ..reply },
                    redacted: false,
                    left_out: 0,
                };
            }
            if reply.claim == Claim::Recovered
                || (asks_about_safety(question) && opens_with_yes(&reply.answer))
            {
                let left_out = split_sentences(&reply.answer).len();
                return withheld(reply, left_out);
            }
            let sentences = split_sentences(&reply.answer);
            let kept: Vec<&str> = sentences
                .iter()
                .copied()
                .filter(|sentence| !is_status_topic(sentence) && !claims_safety(sentence))
                .collect();
            let left_out = sentences.len() - kept.len();
            let kept = kept.join(" ");
            if kept.is_empty() && left_out > 0 {
                return withheld(reply, left_out);
            }
            let mut answer = join(opening(state), &kept);
            if left_out > 0 {
                let _ = write!(
                    answer,
                    " (FixLoop withheld {left_out} of the model's sentences: before RECOVERED only the status sentence above, written by FixLoop, speaks about the service's health, recovery, safety or traffic.)"
                );
            }
            Guarded {
                reply: CopilotReply { answer, ..reply },
                redacted: left_out > 0,
                left_out,
            }
        }
    }
}

/// `opening`, then `body` (if any) after a space.
fn join(opening: String, body: &str) -> String {
    if body.is_empty() {
        opening
    } else {
        format!("{opening} {body}")
    }
}

/// What replaces a withheld answer: a plain "not yet" with what recovery needs, from the state alone.
#[must_use]
pub fn withheld_answer(state: &CopilotState) -> String {
    format!(
        "Not yet: do not resume while the status is {}, not RECOVERED. Recovery needs every validation test to pass and the signals to be back within their thresholds. (FixLoop withheld the model's answer: before RECOVERED only the status sentence above, written by FixLoop, speaks about the service's health, recovery, safety or traffic.)",
        state.status.status.as_str()
    )
}

/// The opening sentence of a model's answer, written from the state: the status, the incident, the latest run's
/// verdicts and the recovery blocker. It holds no text from the model and none from the monitored service.
#[must_use]
pub fn opening(state: &CopilotState) -> String {
    let status = state.status.status.as_str();
    let mut text = format!("Status {status}");
    match &state.incident {
        Some(incident) => {
            let _ = write!(text, ", incident {}", short(&incident.incident_id));
        }
        None => text.push_str(", no incident open"),
    }
    if let Some(run) = &state.run {
        let count = |wanted: TestStatus| run.tests.iter().filter(|t| t.status == wanted).count();
        let _ = write!(
            text,
            "; latest run {} {}: {} passed, {} failed, {} running, {} pending",
            short(&run.run_id),
            run.status.as_str(),
            count(TestStatus::Pass),
            count(TestStatus::Fail),
            count(TestStatus::Running),
            count(TestStatus::Pending)
        );
    } else if state.incident.is_some() {
        text.push_str("; no validation run yet");
    }
    if state.status.status != IncidentState::Recovered
        && let Some(blocker) = state
            .recovery_blocker
            .as_deref()
            .map(str::trim)
            .filter(|b| !b.is_empty())
    {
        let _ = write!(text, "; not RECOVERED yet ({})", short(blocker));
    }
    text.push('.');
    text
}

/// Whether `question` asks whether it is safe, recovered, fixed or over (the grounded copilot's safety topic).
#[must_use]
pub fn asks_about_safety(question: &str) -> bool {
    let question = question.to_lowercase();
    SAFETY_QUESTION_WORDS
        .iter()
        .any(|word| question.contains(word))
}

/// Words that make a question a safety question.
pub const SAFETY_QUESTION_WORDS: [&str; 14] = [
    "safe",
    "resume",
    "recovered",
    "recover",
    "all clear",
    "good to go",
    "is it fixed",
    "fixed?",
    "resolved",
    "over?",
    "done?",
    "ship",
    "reopen",
    "green",
];

/// Longest piece of state text (an id, the recovery blocker) quoted in the status sentence, in characters.
const MAX_QUOTED_CHARS: usize = 240;

/// `text` on one line, cut on a word boundary with an ellipsis when longer than [`MAX_QUOTED_CHARS`] (never
/// mid-word: "0 of 2 consecutive he" is what a character cut gave).
fn short(text: &str) -> String {
    let text = text.replace(['\n', '\r'], " ");
    cut_on_word(&text, MAX_QUOTED_CHARS)
}

#[cfg(test)]
mod tests {
    use super::super::claims::{Token, tokenize};
    use super::*;

    #[test]
    fn contractions_are_expanded() {
        let words: Vec<Token> = tokenize("It isn't safe; we're good, let's go");
        let expected = [
            "it", "is", "not", "safe", ";", "we", "are", "good", ",", "let", "us", "go",
        ];
        let shown: Vec<String> = words
            .iter()
            .map(|token| match token {
                Token::Word(word) => word.clone(),
                Token::Comma => ",".to_owned(),
                Token::Clause => ";".to_owned(),
                Token::Stop => ".".to_owned(),
                Token::Question => "?".to_owned(),
            })
            .collect();
        assert_eq!(shown, expected);
    }

    #[test]
    fn the_issue_examples_are_claims() {
        for text in [
            "all clear, go ahead and reopen traffic",
            "the incident is resolved, you may restore traffic",
            "we're good to ship",
            "green across the board, flip it back on",
        ] {
            assert!(claims_safety(text), "{text}");
        }
    }

    #[test]
    fn negation_and_conditions_are_respected() {
        for text in [
            "it is not safe to resume yet",
            "do not reopen traffic until every test passes",
            "Is it safe to resume?",
            "Once the status is RECOVERED, it will be safe to resume traffic.",
            "It's safe to say checkout still fails.",
        ] {
            assert!(!claims_safety(text), "{text}");
        }
    }

    #[test]
    fn the_negation_scope_ends_at_a_contrast() {
        assert!(claims_safety(
            "It wasn't safe earlier, but now it is safe to resume."
        ));
        assert!(!claims_safety(
            "I would not, under any circumstances, reopen traffic."
        ));
    }

    #[test]
    fn the_claim_field_is_read_leniently() {
        assert_eq!(Claim::parse(Some("recovered")), Claim::Recovered);
        assert_eq!(Claim::parse(Some(" NOT_RECOVERED")), Claim::NotRecovered);
        assert_eq!(Claim::parse(Some("not-recovered")), Claim::NotRecovered);
        assert_eq!(Claim::parse(Some("maybe")), Claim::None);
        assert_eq!(Claim::parse(None), Claim::None);
    }

    /// A VALIDATING state with no incident or run, whose recovery blocker is `blocker`.
    fn validating_with_blocker(blocker: &str) -> CopilotState {
        CopilotState {
            status: fixloop_contract::SystemStatus {
                status: IncidentState::Validating,
                error_rate_5m: 1.0,
                p95_latency_ms_5m: 100.0,
                active_incident_id: None,
                updated_at: fixloop_contract::chrono::DateTime::UNIX_EPOCH,
                service: None,
                signals_degraded: None,
            },
            incident: None,
            run: None,
            recovery_blocker: Some(blocker.to_owned()),
            run_url: None,
        }
    }

    #[test]
    fn the_withheld_answer_passes_its_own_detector() {
        let state = validating_with_blocker("latest run run-1: 4 of 5 passed; signals healthy");
        assert!(!claims_safety(&withheld_answer(&state)));
        assert!(!claims_safety(&opening(&state)), "{}", opening(&state));
    }

    #[test]
    fn a_cut_never_falls_mid_word() {
        assert_eq!(cut_on_word("short enough", 40), "short enough");
        assert_eq!(
            cut_on_word("signals healthy: 0 of 2 consecutive healthy reads", 40),
            "signals healthy: 0 of 2 consecutive…"
        );
        assert_eq!(cut_on_word("abcdefghij", 4), "abcd…");
        assert_eq!(cut_on_word("one two three", 7), "one two…");
    }

    #[test]
    fn the_status_sentence_quotes_a_long_blocker_on_a_word_boundary() {
        let blocker = format!(
            "latest run run-1: 4 of 5 passed; {} 0 of 2 consecutive healthy reads",
            "the error rate is above its threshold; ".repeat(8)
        );
        let state = validating_with_blocker(&blocker);
        let opening = opening(&state);
        assert!(opening.ends_with("…)."), "{opening}");
        let quoted = opening
            .split_once("not RECOVERED yet (")
            .map(|(_, rest)| rest.trim_end_matches("…)."))
            .unwrap_or_default();
        let blocker = state.recovery_blocker.as_deref().unwrap_or_default();
        assert!(blocker.starts_with(quoted), "{quoted}");
        assert!(
            blocker[quoted.len()..].starts_with(' '),
            "cut mid-word: {quoted}"
        );
        assert!(quoted.chars().count() <= MAX_QUOTED_CHARS, "{quoted}");
    }

    #[test]
    fn sentences_split_at_end_marks_not_inside_numbers_or_hosts() {
        assert_eq!(
            split_sentences("Error rate 0.4 on app.example.com. Check it! Why? Done\nnext line"),
            vec![
                "Error rate 0.4 on app.example.com.",
                "Check it!",
                "Why?",
                "Done",
                "next line"
            ]
        );
        assert_eq!(split_sentences("  "), Vec::<&str>::new());
        assert_eq!(
            split_sentences("He said \"ok.\" Then left."),
            vec!["He said \"ok.\"", "Then left."]
        );
    }

    #[test]
    fn topic_not_claim() {
        for sentence in [
            "The service is not healthy yet.",
            "Checkout has not recovered.",
            "No further action is needed.",
            "Traffic is still drained.",
            "The status is VALIDATING.",
        ] {
            assert!(is_status_topic(sentence), "{sentence}");
        }
        for sentence in [
            "The checkout test fails with a 500.",
            "The error rate is 35%, over the 5% trigger.",
            "Latency rose from 120 ms to 1800 ms.",
            "The plan includes a health probe.",
        ] {
            assert!(!is_status_topic(sentence), "{sentence}");
        }
    }

    proptest::proptest! {
        #[test]
        fn the_detector_never_panics(text in "\\PC{0,200}") {
            let _ = claims_safety(&text);
            let _ = opens_with_yes(&text);
            let _ = is_status_topic(&text);
            let _ = split_sentences(&text);
        }

        #[test]
        fn a_cut_is_a_prefix_of_whole_words(text in "[a-z ]{0,80}", max in 1usize..60) {
            let cut = cut_on_word(&text, max);
            let kept = cut.trim_end_matches('…');
            proptest::prop_assert!(text.starts_with(kept));
            proptest::prop_assert!(kept.chars().count() <= max);
            if kept.len() < text.len() && kept.contains(' ') {
                let next = text[kept.len()..].chars().next();
                proptest::prop_assert!(next.is_none_or(char::is_whitespace), "{text:?} cut to {cut:?}");
            }
        }
    }
}
