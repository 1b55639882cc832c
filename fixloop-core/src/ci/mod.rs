//! Classification of a failed CI job from its log excerpt: pure, deterministic, no I/O and no service knowledge.
//!
//! [`classify`] reads a log line by line and scores every [`FailureClass`] from the evidence lines that match its
//! rules (`rules.rs`). The class with the highest score wins when it reaches [`MIN_SCORE`]; otherwise the answer is
//! [`FailureClass::Unknown`].
//!
//! # Scores
//!
//! Each rule has a weight: strong evidence ([`STRONG`], a line that names the cause, such as
//! `The runner has received a shutdown signal`), medium ([`MEDIUM`], a line typical of the cause but not proof of
//! it) or weak ([`WEAK`], a hint, such as a test summary saying that some test failed). A line adds, for each class,
//! the weight of the strongest rule of that class it matches. One rule adds at most [`MAX_HITS_PER_RULE`] lines, so a
//! log that repeats one line a hundred times is not a hundred times surer.
//!
//! Misleading lines are handled by the rules themselves: words are matched as whole tokens (an identifier such as
//! `test_timeout_handling` is one token, so it is not a timeout), counts must be positive (`0 errors` is not a lint
//! failure), and a network error announcing a retry is weak evidence; when a later line says the retry succeeded,
//! the network evidence before it is dropped.
//!
//! # Confidence
//!
//! With `best` the winner's score and `runner_up` the second-highest class score:
//!
//! ```text
//! strength   = best / (best + 1)                 // one strong line: 0.8; strong + medium: 0.86
//! margin     = (best - runner_up) / best         // 1 when no other class has evidence
//! confidence = strength * (0.5 + 0.5 * margin)   // rounded to two decimals, in 0..=1
//! ```
//!
//! So evidence for one class only and in quantity gives a confidence near 1, and a close contest halves it.
//! [`FailureClass::Unknown`] always has confidence 0: the classifier claims nothing; its evidence lists the weak
//! hints it saw, if any.
//!
//! # Refinement
//!
//! An LLM may refine the answer; [`refine::refine`] is the rule its proposal must pass (a known class, a confidence
//! in 0..=1, quoted lines that occur in the excerpt, never surer than the classifier without such a line).

pub mod heal;
pub mod refine;
mod rules;

use std::fmt;
use std::str::FromStr;

/// Weight of a line that names the cause.
pub const STRONG: u32 = 4;
/// Weight of a line typical of the cause.
pub const MEDIUM: u32 = 2;
/// Weight of a hint.
pub const WEAK: u32 = 1;
/// The score a class needs to be the answer (one medium line, or two weak ones).
pub const MIN_SCORE: u32 = 2;
/// The most lines one rule adds to a score.
pub const MAX_HITS_PER_RULE: usize = 2;
/// The most evidence lines a [`Classification`] carries.
pub const MAX_EVIDENCE: usize = 10;
/// The longest evidence line text, in characters (longer lines are cut and end with `…`).
pub const MAX_EVIDENCE_CHARS: usize = 240;

/// Why a CI job failed. The names of [`FailureClass::as_str`] are stable (a self-heal policy names classes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailureClass {
    /// A test ran and its assertion failed (`test_assertion`).
    TestAssertion,
    /// A test, step or job ran out of time (`timeout`).
    Timeout,
    /// A network or DNS failure: connection refused or reset, a name that did not resolve (`network`).
    Network,
    /// Dependencies could not be resolved, downloaded or built (`dependency_install`).
    DependencyInstall,
    /// A database migration failed (`migration`).
    Migration,
    /// A process ran out of memory or was killed for it, exit code 137 (`out_of_memory`).
    OutOfMemory,
    /// A linter or formatter check failed (`lint_format`).
    LintFormat,
    /// The runner or its infrastructure was lost: shutdown signal, lost communication, full disk (`infrastructure`).
    Infrastructure,
    /// Nothing in the log says why (`unknown`).
    Unknown,
}

impl FailureClass {
    /// Every class, in the order ties are broken (earlier wins), [`FailureClass::Unknown`] last.
    pub const ALL: [Self; 9] = [
        Self::Infrastructure,
        Self::OutOfMemory,
        Self::Timeout,
        Self::Migration,
        Self::DependencyInstall,
        Self::LintFormat,
        Self::Network,
        Self::TestAssertion,
        Self::Unknown,
    ];

    /// The class's stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TestAssertion => "test_assertion",
            Self::Timeout => "timeout",
            Self::Network => "network",
            Self::DependencyInstall => "dependency_install",
            Self::Migration => "migration",
            Self::OutOfMemory => "out_of_memory",
            Self::LintFormat => "lint_format",
            Self::Infrastructure => "infrastructure",
            Self::Unknown => "unknown",
        }
    }

    fn index(self) -> usize {
        Self::ALL
            .iter()
            .position(|class| *class == self)
            .unwrap_or(Self::ALL.len() - 1)
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not one of [`FailureClass::as_str`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown failure class {0:?}")]
pub struct UnknownClass(pub String);

impl FromStr for FailureClass {
    type Err = UnknownClass;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|class| class.as_str() == name)
            .ok_or_else(|| UnknownClass(name.to_owned()))
    }
}

/// One line of the log that supports the classification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// The line's number in the excerpt, from 1.
    pub line: usize,
    /// The line, trimmed, cut to [`MAX_EVIDENCE_CHARS`].
    pub text: String,
}

/// The classifier's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Classification {
    /// The class.
    pub class: FailureClass,
    /// How sure, in 0..=1 (the module doc says how it is computed); 0 for [`FailureClass::Unknown`].
    pub confidence: f64,
    /// The lines that matched the class's rules, in log order, at most [`MAX_EVIDENCE`].
    pub evidence: Vec<Evidence>,
}

/// Classifies a log excerpt. Deterministic: the same text always gives the same answer.
pub fn classify(log: &str) -> Classification {
    let lines: Vec<rules::Line<'_>> = log.lines().map(rules::Line::new).collect();
    let rule_set = rules::rules();
    // hits[class] = (line index, weight) of every counted line, in log order.
    let mut hits: Vec<Vec<(usize, u32)>> = vec![Vec::new(); FailureClass::ALL.len()];
    let mut rule_hits = vec![0usize; rule_set.len()];
    for (index, line) in lines.iter().enumerate() {
        let mut best_per_class = [0u32; FailureClass::ALL.len()];
        let mut matched_rules = Vec::new();
        for (rule_index, rule) in rule_set.iter().enumerate() {
            if rule_hits[rule_index] < MAX_HITS_PER_RULE && (rule.matches)(line) {
                let slot = &mut best_per_class[rule.class.index()];
                if rule.weight > *slot {
                    *slot = rule.weight;
                }
                matched_rules.push(rule_index);
            }
        }
        for rule_index in matched_rules {
            rule_hits[rule_index] += 1;
        }
        for (class_index, weight) in best_per_class.into_iter().enumerate() {
            if weight > 0 {
                hits[class_index].push((index, weight));
            }
        }
        if rules::says_retry_succeeded(line) {
            hits[FailureClass::Network.index()].clear();
        }
    }
    let scores: Vec<u32> = hits
        .iter()
        .map(|class_hits| class_hits.iter().map(|(_, weight)| weight).sum())
        .collect();
    // The first class in `ALL` order wins a tie (`max_by_key` would keep the last).
    let mut best = FailureClass::Unknown;
    let mut best_score = 0;
    for class in FailureClass::ALL {
        if scores[class.index()] > best_score {
            best = class;
            best_score = scores[class.index()];
        }
    }
    if best_score < MIN_SCORE {
        let mut weak: Vec<usize> = hits.iter().flatten().map(|(index, _)| *index).collect();
        weak.sort_unstable();
        weak.dedup();
        return Classification {
            class: FailureClass::Unknown,
            confidence: 0.0,
            evidence: evidence_of(&lines, weak),
        };
    }
    let runner_up = FailureClass::ALL
        .iter()
        .filter(|class| **class != best)
        .map(|class| scores[class.index()])
        .max()
        .unwrap_or(0);
    Classification {
        class: best,
        confidence: confidence(best_score, runner_up),
        evidence: evidence_of(
            &lines,
            hits[best.index()].iter().map(|(index, _)| *index).collect(),
        ),
    }
}

/// The confidence of a winner scoring `best` over a runner-up scoring `runner_up` (module doc).
pub fn confidence(best: u32, runner_up: u32) -> f64 {
    if best == 0 {
        return 0.0;
    }
    let best_f = f64::from(best);
    let strength = best_f / (best_f + 1.0);
    let margin = f64::from(best.saturating_sub(runner_up)) / best_f;
    let value = strength * (0.5 + 0.5 * margin);
    (value * 100.0).round() / 100.0
}

fn evidence_of(lines: &[rules::Line<'_>], indices: Vec<usize>) -> Vec<Evidence> {
    indices
        .into_iter()
        .take(MAX_EVIDENCE)
        .map(|index| Evidence {
            line: index + 1,
            text: cut(lines[index].raw.trim()),
        })
        .collect()
}

fn cut(text: &str) -> String {
    if text.chars().count() <= MAX_EVIDENCE_CHARS {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(MAX_EVIDENCE_CHARS - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_names_round_trip() {
        for class in FailureClass::ALL {
            assert_eq!(class.as_str().parse::<FailureClass>(), Ok(class));
        }
        assert!("flaky".parse::<FailureClass>().is_err());
    }

    #[test]
    fn confidence_grows_with_evidence_and_shrinks_with_a_rival() {
        assert_eq!(confidence(STRONG, 0), 0.8);
        assert!(confidence(STRONG + MEDIUM, 0) > confidence(STRONG, 0));
        assert!(confidence(STRONG, MEDIUM) < confidence(STRONG, 0));
        assert_eq!(confidence(STRONG, STRONG), 0.4);
        assert_eq!(confidence(0, 0), 0.0);
        assert!(confidence(1000, 0) <= 1.0);
    }

    #[test]
    fn an_empty_log_is_unknown_with_no_confidence() {
        let answer = classify("");
        assert_eq!(answer.class, FailureClass::Unknown);
        assert_eq!(answer.confidence, 0.0);
        assert!(answer.evidence.is_empty());
    }

    #[test]
    fn evidence_is_capped_and_lines_are_cut() {
        let long = format!("AssertionError: {}", "x".repeat(500));
        let log = vec![long.as_str(); 40].join("\n");
        let answer = classify(&log);
        assert_eq!(answer.class, FailureClass::TestAssertion);
        assert!(answer.evidence.len() <= MAX_EVIDENCE);
        assert!(
            answer
                .evidence
                .iter()
                .all(|evidence| evidence.text.chars().count() <= MAX_EVIDENCE_CHARS)
        );
        assert_eq!(answer.evidence[0].line, 1);
    }

    #[test]
    fn a_retry_that_succeeded_is_not_a_network_failure() {
        let log = "Error: connect ECONNREFUSED 10.0.0.5:5432\nAttempt 2 succeeded\nall good";
        assert_eq!(classify(log).class, FailureClass::Unknown);
        assert_eq!(
            classify("Error: connect ECONNREFUSED 10.0.0.5:5432").class,
            FailureClass::Network
        );
    }
}
