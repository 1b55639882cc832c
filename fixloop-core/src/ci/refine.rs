//! The rule an LLM's refinement of a CI classification must pass: pure, deterministic, no I/O.
//!
//! The deterministic classifier ([`classify`](super::classify)) always answers first. A model may then propose a
//! [`Proposal`] (a class name, a confidence and the log lines it quotes as evidence); [`refine`] checks it against
//! the same schema as the classifier's answer and against the excerpt, and says what is kept:
//!
//! 1. the class must be one of [`FailureClass`]'s names, else the proposal is refused ([`Refusal::UnknownClass`]);
//! 2. the confidence must be a number in 0..=1, else it is refused ([`Refusal::BadConfidence`]);
//! 3. every quoted line is looked up in the excerpt (a whole line, or a part of one line of at least
//!    [`MIN_QUOTE_CHARS`] characters, compared trimmed); a line that does not occur is dropped, never kept;
//! 4. a class other than the classifier's needs at least one quoted line that occurs, else it is refused
//!    ([`Refusal::ChangeWithoutEvidence`]);
//! 5. without a quoted line that occurs, the confidence is never above the classifier's: a higher one is refused
//!    ([`Refusal::RaiseWithoutEvidence`]), a lower or equal one is kept (being less sure is always allowed);
//! 6. [`FailureClass::Unknown`] claims nothing: its confidence is 0, as the classifier's.
//!
//! A refused proposal leaves the classifier's answer as it was ([`Refined::by`] is [`Decider::Rules`]); so does
//! a model that refused, timed out or answered garbage (the caller does not call [`refine`] then).

use super::{Classification, Evidence, FailureClass, MAX_EVIDENCE, cut};

/// The shortest part of a line a quote may be (a shorter one, `error`, would occur in most logs).
pub const MIN_QUOTE_CHARS: usize = 12;

/// What a model proposes, as it said it (nothing checked yet).
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    /// The class's name, as the model wrote it.
    pub class: String,
    /// The confidence, as the model wrote it.
    pub confidence: f64,
    /// The log lines the model quotes as evidence.
    pub evidence: Vec<String>,
}

/// Who made the classification that stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decider {
    /// The deterministic classifier (no model, or its proposal was refused).
    Rules,
    /// The model's proposal, as [`refine`] kept it.
    Llm,
}

/// Why a proposal was refused whole.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// The class is not one of [`FailureClass`]'s names.
    UnknownClass(String),
    /// The confidence is not a number in 0..=1.
    BadConfidence(f64),
    /// The class differs from the classifier's and no quoted line occurs in the excerpt.
    ChangeWithoutEvidence(FailureClass),
    /// The confidence is above the classifier's and no quoted line occurs in the excerpt.
    RaiseWithoutEvidence(f64),
}

/// The classification that stands after a proposal.
#[derive(Debug, Clone, PartialEq)]
pub struct Refined {
    /// The classification.
    pub classification: Classification,
    /// Who made it.
    pub by: Decider,
    /// The classifier's class, when the model's differs from it.
    pub rules_class: Option<FailureClass>,
    /// Quoted lines dropped because they do not occur in the excerpt.
    pub dropped_quotes: usize,
    /// Why the proposal was refused, when it was.
    pub refusal: Option<Refusal>,
}

impl Refined {
    /// The classifier's answer standing alone (no model, or a model that did not answer).
    #[must_use]
    pub fn rules(classification: Classification) -> Self {
        Self {
            classification,
            by: Decider::Rules,
            rules_class: None,
            dropped_quotes: 0,
            refusal: None,
        }
    }

    fn refused(classification: Classification, refusal: Refusal) -> Self {
        Self {
            refusal: Some(refusal),
            ..Self::rules(classification)
        }
    }
}

/// Checks `proposal` against `log` (the excerpt both read) and `rules` (the classifier's answer on it), and says
/// what stands (module doc).
#[must_use]
pub fn refine(log: &str, rules: &Classification, proposal: &Proposal) -> Refined {
    let Ok(class) = proposal.class.trim().parse::<FailureClass>() else {
        return Refined::refused(
            rules.clone(),
            Refusal::UnknownClass(cut(proposal.class.trim())),
        );
    };
    if !(0.0..=1.0).contains(&proposal.confidence) {
        return Refined::refused(rules.clone(), Refusal::BadConfidence(proposal.confidence));
    }
    let (evidence, dropped_quotes) = occurring(log, &proposal.evidence);
    if class != rules.class && evidence.is_empty() {
        return Refined {
            dropped_quotes,
            ..Refined::refused(rules.clone(), Refusal::ChangeWithoutEvidence(class))
        };
    }
    if evidence.is_empty() && proposal.confidence > rules.confidence {
        return Refined {
            dropped_quotes,
            ..Refined::refused(
                rules.clone(),
                Refusal::RaiseWithoutEvidence(proposal.confidence),
            )
        };
    }
    let mut confidence = proposal.confidence;
    if class == FailureClass::Unknown {
        confidence = 0.0;
    }
    Refined {
        classification: Classification {
            class,
            confidence: (confidence * 100.0).round() / 100.0,
            // Same class, no line of its own: the classifier's lines still support it.
            evidence: if evidence.is_empty() && class == rules.class {
                rules.evidence.clone()
            } else {
                evidence
            },
        },
        by: Decider::Llm,
        rules_class: (class != rules.class).then_some(rules.class),
        dropped_quotes,
        refusal: None,
    }
}

/// The quoted lines that occur in `log`, as evidence (the whole line, its number), in log order, without
/// repeats, at most [`MAX_EVIDENCE`]; and how many quotes did not occur.
fn occurring(log: &str, quotes: &[String]) -> (Vec<Evidence>, usize) {
    let lines: Vec<&str> = log.lines().map(str::trim).collect();
    let mut found: Vec<usize> = Vec::new();
    let mut dropped = 0;
    for quote in quotes {
        // A quote cut with an ellipsis (as evidence lines are) is looked up without it.
        let quote = quote.trim().trim_end_matches('…').trim_end();
        let position = if quote.is_empty() {
            None
        } else {
            lines.iter().position(|line| *line == quote).or_else(|| {
                (quote.chars().count() >= MIN_QUOTE_CHARS)
                    .then(|| lines.iter().position(|line| line.contains(quote)))
                    .flatten()
            })
        };
        match position {
            Some(index) => found.push(index),
            None => dropped += 1,
        }
    }
    found.sort_unstable();
    found.dedup();
    let evidence = found
        .into_iter()
        .take(MAX_EVIDENCE)
        .map(|index| Evidence {
            line: index + 1,
            text: cut(lines[index]),
        })
        .collect();
    (evidence, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::classify;

    const LOG: &str = "Run npm ci\nnpm ERR! network request to https://registry.npmjs.org/left-pad failed\n\
                       Error: connect ETIMEDOUT 104.16.0.35:443\nProcess completed with exit code 1.";

    fn proposal(class: &str, confidence: f64, evidence: &[&str]) -> Proposal {
        Proposal {
            class: class.to_owned(),
            confidence,
            evidence: evidence.iter().map(|line| (*line).to_owned()).collect(),
        }
    }

    #[test]
    fn an_unknown_class_is_refused_and_the_rules_stand() {
        let rules = classify(LOG);
        let refined = refine(LOG, &rules, &proposal("flaky_network", 0.9, &[]));
        assert_eq!(refined.by, Decider::Rules);
        assert_eq!(refined.classification, rules);
        assert_eq!(
            refined.refusal,
            Some(Refusal::UnknownClass("flaky_network".to_owned()))
        );
    }

    #[test]
    fn a_confidence_outside_zero_to_one_is_refused() {
        let rules = classify(LOG);
        for bad in [1.5, -0.1, f64::NAN, f64::INFINITY] {
            let refined = refine(LOG, &rules, &proposal(rules.class.as_str(), bad, &[]));
            assert_eq!(refined.by, Decider::Rules, "{bad}");
            assert!(
                matches!(refined.refusal, Some(Refusal::BadConfidence(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn invented_lines_are_dropped_and_real_ones_kept_with_their_numbers() {
        let rules = classify(LOG);
        let refined = refine(
            LOG,
            &rules,
            &proposal(
                "dependency_install",
                0.9,
                &[
                    "npm ERR! 404 Not Found: left-pad@9.9.9",
                    "  Error: connect ETIMEDOUT 104.16.0.35:443  ",
                    "network request to https://registry.npmjs.org/left-pad failed",
                ],
            ),
        );
        assert_eq!(refined.by, Decider::Llm);
        assert_eq!(refined.dropped_quotes, 1);
        let lines: Vec<usize> = refined
            .classification
            .evidence
            .iter()
            .map(|evidence| evidence.line)
            .collect();
        assert_eq!(lines, [2, 3]);
        assert_eq!(
            refined.classification.evidence[0].text,
            "npm ERR! network request to https://registry.npmjs.org/left-pad failed"
        );
    }

    #[test]
    fn a_short_fragment_is_not_evidence() {
        let rules = classify(LOG);
        let refined = refine(
            LOG,
            &rules,
            &proposal("dependency_install", 0.9, &["Error"]),
        );
        assert_eq!(refined.dropped_quotes, 1);
        assert_eq!(
            refined.refusal,
            Some(Refusal::ChangeWithoutEvidence(
                FailureClass::DependencyInstall
            ))
        );
    }

    #[test]
    fn a_changed_class_without_evidence_that_occurs_is_refused() {
        let rules = classify(LOG);
        let refined = refine(
            LOG,
            &rules,
            &proposal(
                "infrastructure",
                0.99,
                &["The runner has received a shutdown signal."],
            ),
        );
        assert_eq!(refined.by, Decider::Rules);
        assert_eq!(refined.classification, rules);
        assert_eq!(refined.dropped_quotes, 1);
    }

    #[test]
    fn confidence_is_never_raised_without_evidence() {
        let rules = classify(LOG);
        assert_eq!(rules.class, FailureClass::Network);
        let refined = refine(
            LOG,
            &rules,
            &proposal("network", 1.0, &["made up line here"]),
        );
        assert_eq!(refined.by, Decider::Rules);
        assert_eq!(refined.classification, rules);
        assert_eq!(refined.refusal, Some(Refusal::RaiseWithoutEvidence(1.0)));
        // The same confidence without a line of its own keeps the classifier's lines.
        let refined = refine(LOG, &rules, &proposal("network", rules.confidence, &[]));
        assert_eq!(refined.by, Decider::Llm);
        assert_eq!(refined.classification.evidence, rules.evidence);
        // With a line that occurs, the model may be surer than the rules.
        let refined = refine(
            LOG,
            &rules,
            &proposal(
                "network",
                0.97,
                &["Error: connect ETIMEDOUT 104.16.0.35:443"],
            ),
        );
        assert_eq!(refined.refusal, None);
        assert_eq!(refined.classification.confidence, 0.97);
    }

    #[test]
    fn a_lower_confidence_is_always_accepted() {
        let rules = classify(LOG);
        let refined = refine(LOG, &rules, &proposal("network", 0.2, &[]));
        assert_eq!(refined.by, Decider::Llm);
        assert_eq!(refined.classification.confidence, 0.2);
        assert_eq!(refined.rules_class, None);
    }

    #[test]
    fn a_changed_class_with_evidence_records_the_rules_class() {
        let rules = classify(LOG);
        let refined = refine(
            LOG,
            &rules,
            &proposal(
                " dependency_install ",
                0.7,
                &["npm ERR! network request to https://registry.npmjs.org/left-pad failed"],
            ),
        );
        assert_eq!(
            refined.classification.class,
            FailureClass::DependencyInstall
        );
        assert_eq!(refined.rules_class, Some(FailureClass::Network));
        assert_eq!(refined.classification.confidence, 0.7);
    }

    #[test]
    fn unknown_claims_nothing() {
        let rules = classify(LOG);
        let refined = refine(
            LOG,
            &rules,
            &proposal("unknown", 0.8, &["Process completed with exit code 1."]),
        );
        assert_eq!(refined.classification.class, FailureClass::Unknown);
        assert_eq!(refined.classification.confidence, 0.0);
    }

    #[test]
    fn evidence_is_capped_and_repeats_count_once() {
        let log = (1..=30)
            .map(|n| format!("FAILED tests/test_{n}.py::test_total - assert 1 == 2"))
            .collect::<Vec<_>>()
            .join("\n");
        let rules = classify(&log);
        let mut quotes: Vec<String> = log.lines().map(str::to_owned).collect();
        quotes.push(quotes[0].clone());
        let refined = refine(
            &log,
            &rules,
            &Proposal {
                class: "test_assertion".to_owned(),
                confidence: 0.95,
                evidence: quotes,
            },
        );
        assert_eq!(refined.classification.evidence.len(), MAX_EVIDENCE);
        assert_eq!(refined.classification.evidence[0].line, 1);
        assert_eq!(refined.dropped_quotes, 0);
    }
}
