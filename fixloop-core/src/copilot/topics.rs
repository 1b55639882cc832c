//! The topic classifier of the copilot's safety rule ([`is_status_topic`]): whether a sentence speaks about the
//! service's health, recovery, safety, traffic or resolution, whatever it claims.

use super::claims::{IDIOMS, Token, tokenize};

/// Words whose presence makes a sentence's topic the service's health, recovery, safety, traffic or resolution.
const TOPIC_WORDS: &[&str] = &[
    "healthy",
    "unhealthy",
    "healthier",
    "health",
    "recovered",
    "recover",
    "recovers",
    "recovering",
    "recovery",
    "resolved",
    "resolve",
    "resolves",
    "resolving",
    "resolution",
    "mitigated",
    "mitigation",
    "stable",
    "unstable",
    "stabilized",
    "stabilised",
    "stabilizing",
    "stabilising",
    "stability",
    "normal",
    "normally",
    "nominal",
    "operational",
    "safe",
    "safely",
    "safety",
    "unsafe",
    "traffic",
    "resume",
    "resumed",
    "resumes",
    "resuming",
    "reopen",
    "reopened",
    "reopens",
    "reopening",
    "restore",
    "restored",
    "restores",
    "restoring",
    "reenable",
    "reenabled",
    "reenables",
    "reenabling",
    "failback",
    "undrain",
    "unpause",
    "unfreeze",
    "fixed",
    "green",
    "allclear",
    "lgtm",
    "outage",
    // HEALTHY and VALIDATING as written by a model (the tokenizer marks them): the status is the server's to say.
    "status_name",
];

/// Judgements that are about the service's state only when the sentence names such a subject.
const JUDGEMENTS: &[&str] = &[
    "fine",
    "ok",
    "okay",
    "good",
    "great",
    "alright",
    "working",
    "works",
    "better",
    "improved",
    "improving",
    "settled",
    "calm",
    "quiet",
    "clean",
    "solid",
    "sorted",
    "solved",
    "handled",
    "cleared",
    "well",
    "done",
    "over",
    "back",
    "up",
    "clear",
    "gone",
];

/// Subjects whose state is the service's state.
const STATUS_SUBJECTS: &[&str] = &[
    "service",
    "services",
    "system",
    "systems",
    "site",
    "app",
    "application",
    "api",
    "apis",
    "checkout",
    "payments",
    "payment",
    "orders",
    "production",
    "prod",
    "everything",
    "everythings",
    "things",
    "it",
    "we",
    "users",
    "customers",
    "requests",
    "errors",
    "error",
    "rates",
    "rate",
    "latency",
    "p95",
    "signals",
    "metrics",
    "incident",
    "issue",
    "problem",
    "status",
    "endpoint",
    "endpoints",
    "platform",
    "backend",
    "frontend",
    "store",
    "shop",
];

/// Words that, within two words before a judgement, make it about something else (`roll back`, `well above`).
const NOT_JUDGEMENTS: &[(&str, &str)] = &[
    ("roll", "back"),
    ("rolling", "back"),
    ("rolled", "back"),
    ("call", "back"),
    ("come", "back"),
    ("look", "back"),
    ("go", "over"),
    ("as", "well"),
];

/// Phrases saying that no more action is needed, or closing the incident, as word sequences.
const NO_ACTION: &[&[&str]] = &[
    &["no", "further"],
    &["no", "more"],
    &["no", "other"],
    &["no", "action"],
    &["no", "need"],
    &["no", "needed"],
    &["nothing", "further"],
    &["nothing", "more"],
    &["nothing", "else"],
    &["nothing", "left"],
    &["nothing", "to", "do"],
    &["not", "needed"],
    &["not", "necessary"],
    &["unnecessary"],
    &["stand", "down"],
    &["standing", "down"],
    &["close", "out"],
    &["close", "this"],
    &["close", "it"],
    &["close", "the", "incident"],
    &["closed"],
    &["can", "relax"],
    &["move", "on"],
];

/// Whether `sentence`'s topic is the service's health, recovery, safety, traffic, resolution, an all-clear, or
/// next actions being unnecessary, whatever it claims (negated and hedged sentences included). See the module docs.
#[must_use]
pub fn is_status_topic(sentence: &str) -> bool {
    let tokens = tokenize(sentence);
    let words: Vec<&str> = tokens
        .iter()
        .filter_map(|token| match token {
            Token::Word(word) => Some(word.as_str()),
            _ => None,
        })
        .collect();
    let has_sequence = |sequence: &[&str]| {
        words
            .windows(sequence.len())
            .any(|window| window == sequence)
    };
    if IDIOMS.iter().any(|idiom| has_sequence(idiom))
        || NO_ACTION.iter().any(|phrase| has_sequence(phrase))
    {
        return true;
    }
    let topic_word = words.iter().enumerate().any(|(at, word)| {
        // A health probe or health check is a test, not the service's health.
        TOPIC_WORDS.contains(word)
            && !(*word == "health"
                && matches!(
                    words.get(at + 1),
                    Some(&("probe" | "probes" | "check" | "checks" | "endpoint"))
                ))
    });
    if topic_word {
        return true;
    }
    let has_subject = words.iter().any(|word| STATUS_SUBJECTS.contains(word));
    has_subject
        && words.iter().enumerate().any(|(at, word)| {
            if !JUDGEMENTS.contains(word) {
                return false;
            }
            let previous = at.checked_sub(1).and_then(|before| words.get(before));
            if previous.is_some_and(|previous| NOT_JUDGEMENTS.contains(&(*previous, *word))) {
                return false;
            }
            let next = words.get(at + 1).copied();
            match *word {
                // `over 5%`, `up from 120 ms`, `done by the validator` are not judgements; `it is over`,
                // `back up`, `up again`, `all done` are.
                "over" | "up" | "done" | "clear" | "gone" => {
                    next.is_none()
                        || matches!(
                            next,
                            Some("now" | "again" | "here" | "and" | "for" | "already")
                        )
                        || matches!(previous, Some(&("back" | "is" | "are" | "all")))
                }
                "well" => matches!(
                    previous,
                    Some(&("working" | "doing" | "going" | "looks" | "look" | "performing"))
                ),
                _ => true,
            }
        })
}
