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

use crate::ports::{CopilotReply, CopilotState};

/// What a model says its answer claims about recovery (the `claim` field of its structured reply).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Claim {
    /// The answer says the service recovered or that it is safe to resume (`"recovered"`).
    Recovered,
    /// The answer says it has not recovered (`"not_recovered"`).
    NotRecovered,
    /// The answer makes no claim about recovery (`"none"`, and anything absent or unknown).
    #[default]
    None,
}

impl Claim {
    /// Reads the model's `claim` field, leniently: unknown or absent values are [`Claim::None`] (the detector still
    /// reads the answer).
    #[must_use]
    pub fn parse(value: Option<&str>) -> Self {
        let Some(value) = value else {
            return Self::None;
        };
        match value
            .trim()
            .to_ascii_lowercase()
            .replace(['-', ' '], "_")
            .as_str()
        {
            "recovered" | "safe" | "resolved" => Self::Recovered,
            "not_recovered" | "unsafe" | "not_safe" => Self::NotRecovered,
            _ => Self::None,
        }
    }
}

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

/// Whether `text` claims that the service is safe, recovered, resolved or all clear, or that traffic (or deploys)
/// may resume. Negated, conditional and questioning sentences do not count. See the module docs for the method.
#[must_use]
pub fn claims_safety(text: &str) -> bool {
    let tokens = tokenize(text);
    sentences(&tokens).any(|(sentence, question)| !question && clauses(sentence).any(clause_claims))
}

// ---------------------------------------------------------------------------------------------------------------
// The lexicon.

/// Resolution predicates said of a global subject.
const PREDICATES: &[&str] = &[
    "safe",
    "recovered",
    "resolved",
    "fixed",
    "healthy",
    "stable",
    "stabilized",
    "stabilised",
    "mitigated",
    "over",
    "done",
    "clear",
    "cleared",
    "sorted",
    "restored",
    "reopened",
    "resumed",
    "operational",
    "solved",
    "complete",
    "fine",
    "ok",
    "okay",
    "back",
    "green",
    "nominal",
];

/// Predicates that may also grant permission when followed by `to` and a resumption verb (`good to reopen`).
const PERMISSION_PREDICATES: &[&str] = &[
    "safe", "fine", "ok", "okay", "good", "clear", "cleared", "free", "ready", "allowed", "able",
];

/// Subjects whose health is the service's health.
const GLOBAL_SUBJECTS: &[&str] = &[
    "it",
    "everything",
    "everythings",
    "all",
    "things",
    "we",
    "service",
    "system",
    "site",
    "app",
    "application",
    "incident",
    "outage",
    "issue",
    "problem",
    "bug",
    "checkout",
    "production",
    "prod",
    "traffic",
    "recovery",
    "status",
];

/// Verbs of resumption, in every form.
const ACTIONS: &[&str] = &[
    "resume",
    "resumes",
    "resuming",
    "reopen",
    "reopens",
    "reopening",
    "restore",
    "restores",
    "restoring",
    "reenable",
    "reenables",
    "reenabling",
    "enable",
    "enables",
    "enabling",
    "unpause",
    "unpausing",
    "unfreeze",
    "unfreezing",
    "ship",
    "shipping",
    "deploy",
    "deploying",
    "release",
    "releasing",
    "flip",
    "flipping",
    "turn",
    "turning",
    "switch",
    "switching",
    "open",
    "opening",
    "route",
    "routing",
    "reroute",
    "send",
    "sending",
    "bring",
    "bringing",
    "lift",
    "lifting",
    "undrain",
    "unblock",
    "roll",
    "rolling",
    "let",
    "close",
    "closing",
    "end",
    "put",
    "start",
    "failback",
    "go",
    "proceed",
    "closed",
    "reopened",
    "restored",
    "resumed",
    "reenabled",
];

/// Verbs that mean resumption on their own, without an object (`Reopen when ready`).
const RESUMPTION_ONLY: &[&str] = &[
    "resume",
    "resuming",
    "reopen",
    "reopening",
    "restore",
    "restoring",
    "reenable",
    "unpause",
    "unfreeze",
    "ship",
    "undrain",
    "failback",
    "proceed",
];

/// What a resumption verb acts on.
const OBJECTS: &[&str] = &[
    "traffic",
    "it",
    "everything",
    "service",
    "services",
    "checkout",
    "orders",
    "payments",
    "users",
    "customers",
    "requests",
    "deploys",
    "deployments",
    "deploy",
    "freeze",
    "incident",
    "flag",
    "feature",
    "load",
    "production",
    "prod",
    "floodgates",
    "operations",
    "maintenance",
    "site",
    "app",
    "them",
    "back",
    "live",
];

/// Words granting permission before a resumption verb.
const PERMISSIONS: &[&str] = &[
    "can",
    "may",
    "could",
    "should",
    "free",
    "ok",
    "okay",
    "fine",
    "safe",
    "good",
    "ready",
    "cleared",
    "clear",
    "allowed",
    "permitted",
    "time",
    "recommend",
    "recommendation",
    "suggest",
    "ahead",
    "proceed",
    "start",
    "us",
    "verdict",
    "happy",
];

/// Words granting permission after a resumption verb and its object (`restoring traffic seems reasonable`).
const POST_PERMISSIONS: &[&str] = &[
    "fine",
    "ok",
    "okay",
    "safe",
    "good",
    "reasonable",
    "allowed",
    "approved",
    "recommended",
];

/// Words that, after a resumption verb, judge it a bad idea (`resuming now would be premature`).
const POST_NEGATORS: &[&str] = &[
    "premature",
    "unsafe",
    "risky",
    "dangerous",
    "reckless",
    "early",
    "soon",
];

/// Negators (contractions are expanded before matching).
const NEGATORS: &[&str] = &[
    "not",
    "no",
    "never",
    "none",
    "neither",
    "nor",
    "without",
    "nothing",
    "dont",
    "isnt",
    "arent",
    "cant",
    "wont",
    "shouldnt",
    "avoid",
    "refrain",
    "wait",
    "premature",
    "prematurely",
];

/// Two-word negators.
const NEGATOR_PAIRS: &[(&str, &str)] = &[
    ("too", "early"),
    ("too", "soon"),
    ("hold", "off"),
    ("far", "from"),
    ("holding", "off"),
];

/// Words of a bad state: a negation attached to one (`no longer failing`) has found its predicate.
const BAD_STATES: &[&str] = &[
    "failing", "fails", "failed", "fail", "broken", "down", "erroring", "errors", "error",
    "failures", "failure", "issues", "problems", "wrong", "red", "degraded", "elevated", "active",
    "ongoing", "blocked", "blocking", "timing", "worse", "open",
];

/// Words making their whole clause conditional or definitional.
const CONDITIONALS: &[&str] = &[
    "if", "once", "until", "till", "unless", "after", "before", "whether", "requires", "require",
    "needs", "need", "means", "mean", "provided",
];

/// Words that may precede a fragment predicate or an imperative verb in their segment.
const FILLERS: &[&str] = &[
    "please",
    "just",
    "now",
    "so",
    "yes",
    "yeah",
    "yep",
    "yup",
    "sure",
    "alright",
    "and",
    "fully",
    "all",
    "totally",
    "completely",
    "officially",
    "finally",
    "probably",
    "basically",
    "looks",
    "seems",
    "kindly",
    "simply",
    "also",
    "1",
    "ok",
    "okay",
];

/// All-clear idioms, as word sequences (after contraction expansion).
const IDIOMS: &[&[&str]] = &[
    &["all", "clear"],
    &["all", "good"],
    &["all", "green"],
    &["all", "set"],
    &["good", "to", "go"],
    &["good", "to", "ship"],
    &["out", "of", "the", "woods"],
    &["in", "the", "clear"],
    &["green", "across", "the", "board"],
    &["green", "light"],
    &["ship", "it"],
    &["lgtm"],
    &["allclear"],
    &["looks", "good", "to", "me"],
    &["we", "are", "good"],
    &["we", "are", "fine"],
    &["we", "are", "ok"],
    &["we", "are", "okay"],
    &["you", "are", "good"],
    &["nothing", "to", "worry", "about"],
    &["no", "longer", "an", "issue"],
    &["no", "longer", "a", "problem"],
    &["crisis", "averted"],
    &["back", "in", "business"],
    &["back", "to", "normal"],
    &["back", "online"],
    &["up", "and", "running"],
    &["all", "systems", "go"],
    &["operating", "normally"],
    &["performing", "as", "expected"],
    &["working", "as", "expected"],
    &["working", "normally"],
    &["safe", "and", "sound"],
    &["thumbs", "up"],
];

/// Words ending a clause (and so every negation and condition in it).
const CLAUSE_WORDS: &[&str] = &[
    "but",
    "however",
    "though",
    "although",
    "so",
    "therefore",
    "thus",
    "hence",
];

// ---------------------------------------------------------------------------------------------------------------
// Tokens, sentences, clauses.

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    /// A comma, or a symbol such as an emoji: ends a segment.
    Comma,
    /// `;`, `:`, a dash, a bracket: ends a clause.
    Clause,
    /// `.`, `!`, a newline: ends a sentence.
    Stop,
    /// `?`: ends a question.
    Question,
}

fn tokenize(text: &str) -> Vec<Token> {
    let text = text.replace(['\u{2019}', '\u{2018}', '`'], "'");
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut word = String::new();
    let flush = |word: &mut String, tokens: &mut Vec<Token>| {
        if !word.is_empty() {
            // The status names HEALTHY and VALIDATING are the state's own words, not a model's judgement;
            // RECOVERED stays a predicate, so "the status is RECOVERED" is still a claim.
            if matches!(word.as_str(), "HEALTHY" | "VALIDATING") {
                tokens.push(Token::Word("status_name".to_owned()));
            } else {
                expand(&word.to_lowercase(), tokens);
            }
            word.clear();
        }
    };
    for (index, &c) in chars.iter().enumerate() {
        let next = chars.get(index + 1).copied();
        let previous = index.checked_sub(1).and_then(|at| chars.get(at)).copied();
        let inside = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
        if c.is_alphanumeric() {
            word.push(c);
            continue;
        }
        // Apostrophes, hyphens and dots inside a word stay in it (`it's`, `re-enable`, `0.4`, `app.example.com`).
        if (c == '\'' || c == '-' || c == '.') && inside(previous) && inside(next) {
            if c != '-' {
                word.push(c);
            }
            continue;
        }
        flush(&mut word, &mut tokens);
        let token = match c {
            '.' | '!' | '\n' | '\r' => Token::Stop,
            '?' => Token::Question,
            ';' | ':' | '(' | ')' | '[' | ']' | '\u{2014}' | '\u{2013}' | '-' => Token::Clause,
            ',' => Token::Comma,
            c if c.is_whitespace() || c == '\'' || c == '"' => continue,
            // Emoji and other symbols separate like commas (`we're back 🙌 traffic can go back on`).
            _ => Token::Comma,
        };
        tokens.push(token);
    }
    flush(&mut word, &mut tokens);
    tokens
}

/// Pushes `word`'s tokens, contractions expanded (`isn't` → `is not`, `we're` → `we are`, `let's` → `let us`).
fn expand(word: &str, tokens: &mut Vec<Token>) {
    let push = |tokens: &mut Vec<Token>, word: &str| tokens.push(Token::Word(word.to_owned()));
    let special = match word {
        "can't" | "cannot" | "cant" => Some(("can", "not")),
        "won't" | "wont" => Some(("will", "not")),
        "let's" | "lets" => Some(("let", "us")),
        "ain't" => Some(("is", "not")),
        _ => None,
    };
    if let Some((first, second)) = special {
        push(tokens, first);
        push(tokens, second);
        return;
    }
    if let Some(stem) = word.strip_suffix("n't") {
        push(tokens, stem);
        push(tokens, "not");
        return;
    }
    for (suffix, full) in [
        ("'s", "is"),
        ("'re", "are"),
        ("'ll", "will"),
        ("'ve", "have"),
        ("'d", "would"),
        ("'m", "am"),
    ] {
        if let Some(stem) = word.strip_suffix(suffix)
            && !stem.is_empty()
        {
            push(tokens, stem);
            push(tokens, full);
            return;
        }
    }
    push(tokens, &word.replace('\'', ""));
}

/// The sentences of `tokens`, each with whether it is a question.
fn sentences(tokens: &[Token]) -> impl Iterator<Item = (&[Token], bool)> {
    tokens
        .split_inclusive(|token| matches!(token, Token::Stop | Token::Question))
        .map(|sentence| match sentence.split_last() {
            Some((Token::Question, rest)) => (rest, true),
            Some((Token::Stop, rest)) => (rest, false),
            _ => (sentence, false),
        })
}

/// The clauses of a sentence: split at [`Token::Clause`] and at [`CLAUSE_WORDS`].
fn clauses(sentence: &[Token]) -> impl Iterator<Item = &[Token]> {
    sentence.split(|token| match token {
        Token::Clause => true,
        Token::Word(word) => CLAUSE_WORDS.contains(&word.as_str()),
        _ => false,
    })
}

fn word(tokens: &[Token], index: usize) -> Option<&str> {
    match tokens.get(index) {
        Some(Token::Word(word)) => Some(word.as_str()),
        _ => None,
    }
}

fn is(list: &[&str], word: Option<&str>) -> bool {
    word.is_some_and(|word| list.contains(&word))
}

// ---------------------------------------------------------------------------------------------------------------
// The clause check.

/// Whether one clause claims safety.
fn clause_claims(clause: &[Token]) -> bool {
    if clause_is_conditional(clause) {
        return false;
    }
    let mut negated = false;
    // Whether the pending negation has met a predicate (then a comma ends its scope).
    let mut negation_used = false;
    let mut conditional = false;
    let mut segment_start = 0;
    let mut index = 0;
    while index < clause.len() {
        let Some(current) = word(clause, index) else {
            if clause[index] == Token::Comma {
                if negated && negation_used {
                    negated = false;
                }
                segment_start = index + 1;
            }
            index += 1;
            continue;
        };
        if let Some(length) =
            idiom_at(clause, index).or_else(|| needless_restriction(clause, index))
        {
            if !negated && !conditional {
                return true;
            }
            negation_used = true;
            index += length;
            continue;
        }
        let next = word(clause, index + 1);
        if NEGATORS.contains(&current)
            || NEGATOR_PAIRS
                .iter()
                .any(|(first, second)| current == *first && next == Some(*second))
        {
            negated = true;
            negation_used = false;
            index += 1;
            continue;
        }
        if current == "then"
            || (matches!(current, "will" | "would") && matches!(next, Some("be" | "become")))
        {
            conditional = true;
        }
        if BAD_STATES.contains(&current) {
            negation_used = true;
            index += 1;
            continue;
        }
        let claim = predicate_claims(clause, index, segment_start)
            || action_claims(clause, index, segment_start);
        if claim {
            if !negated && !conditional {
                return true;
            }
            negation_used = true;
        } else if PREDICATES.contains(&current) {
            negation_used = true;
        }
        index += 1;
    }
    false
}

/// A clause containing a condition or a definition claims nothing (`once RECOVERED, it will be safe`).
fn clause_is_conditional(clause: &[Token]) -> bool {
    (0..clause.len()).any(|index| {
        let current = word(clause, index);
        let next = word(clause, index + 1);
        if current == Some("when") {
            // `when ready`, `when you like` grant permission; `when the run passes` is a condition.
            return !matches!(next, Some("ready" | "you" | "convenient"));
        }
        if current == Some("as") && next == Some("soon") && word(clause, index + 2) == Some("as") {
            return true;
        }
        // `no need to keep traffic drained` states no requirement: it lifts one (see `needless_restriction`).
        if current == Some("need") && index > 0 && word(clause, index - 1) == Some("no") {
            return false;
        }
        is(CONDITIONALS, current)
    })
}

/// Restrictions a negated negative lifts (`no reason to keep traffic drained`).
const RESTRICTIONS: &[&str] = &[
    "drained",
    "paused",
    "blocked",
    "frozen",
    "off",
    "down",
    "disabled",
    "halted",
    "closed",
    "offline",
    "suspended",
    "throttled",
    "shed",
    "hold",
    "parked",
    "stopped",
];

/// A negated negative starting at `index`: `no reason|need to keep|leave|hold <object …> <restriction>` (`there is
/// no reason to keep traffic drained anymore`, `no need to leave checkout disabled`) says the restriction may be
/// lifted, a resumption claim. Its length, if one does.
fn needless_restriction(clause: &[Token], index: usize) -> Option<usize> {
    let opens = word(clause, index) == Some("no")
        && matches!(word(clause, index + 1), Some("reason" | "need"))
        && word(clause, index + 2) == Some("to")
        && matches!(word(clause, index + 3), Some("keep" | "leave" | "hold"));
    if !opens {
        return None;
    }
    // The object and its restriction within the next few words (`traffic drained`, `the checkout flag off`).
    let rest = index + 4..(index + 9).min(clause.len());
    let object = rest.clone().find(|&at| is(OBJECTS, word(clause, at)))?;
    let restriction = (object + 1..rest.end).find(|&at| is(RESTRICTIONS, word(clause, at)))?;
    Some(restriction + 1 - index)
}

/// The length of the idiom starting at `index`, if one does.
fn idiom_at(clause: &[Token], index: usize) -> Option<usize> {
    IDIOMS
        .iter()
        .filter(|idiom| {
            idiom
                .iter()
                .enumerate()
                .all(|(offset, expected)| word(clause, index + offset) == Some(*expected))
        })
        .map(|idiom| idiom.len())
        .max()
}

/// Whether the words of the segment before `index` are all fillers (so `index` opens the segment).
fn opens_segment(clause: &[Token], index: usize, segment_start: usize) -> bool {
    (segment_start..index).all(|at| is(FILLERS, word(clause, at)))
}

/// A resolution predicate at `index` said of a global subject, as a fragment, or granting permission.
fn predicate_claims(clause: &[Token], index: usize, segment_start: usize) -> bool {
    let current = word(clause, index).unwrap_or_default();
    let next = word(clause, index + 1);
    let after_next = word(clause, index + 2);
    if PERMISSION_PREDICATES.contains(&current) && next == Some("to") {
        // `safe to say`, `safe to assume` are figures of speech; `safe to reopen` is a permission.
        return is(ACTIONS, after_next) && !matches!(after_next, Some("say" | "assume"));
    }
    if !PREDICATES.contains(&current) {
        return false;
    }
    // `RECOVERED means…`, `clear that…`, `over 5%`, `back above…` are not claims.
    let ends_segment = next.is_none();
    match current {
        "over" | "back" | "done" => {
            if !(ends_segment
                || matches!(
                    next,
                    Some("now" | "again" | "here" | "up" | "on" | "for" | "with")
                ))
            {
                return false;
            }
        }
        _ => {
            if matches!(
                next,
                Some(
                    "that"
                        | "means"
                        | "requires"
                        | "needs"
                        | "status"
                        | "state"
                        | "would"
                        | "will"
                        | "bet"
                        | "only"
                )
            ) {
                return false;
            }
        }
    }
    if opens_segment(clause, index, segment_start) && index - segment_start <= 3 {
        return true;
    }
    let window = index.saturating_sub(6).max(segment_start);
    (window..index).any(|at| is(GLOBAL_SUBJECTS, word(clause, at)))
}

/// A resumption verb at `index` on a traffic object, given permission or in imperative position.
fn action_claims(clause: &[Token], index: usize, segment_start: usize) -> bool {
    let current = word(clause, index).unwrap_or_default();
    if !ACTIONS.contains(&current) {
        return false;
    }
    let next = word(clause, index + 1);
    // `go` is only an action as `go back (on)` or `go live`; `go ahead` is a permission.
    if current == "go" && !matches!(next, Some("back" | "live")) {
        return false;
    }
    // `let` is only an action as `let them in`; `let us` is a permission.
    if current == "let" && next == Some("us") {
        return false;
    }
    let object_after = (index + 1..(index + 5).min(clause.len()))
        .take_while(|&at| matches!(clause[at], Token::Word(_)))
        .position(|at| is(OBJECTS, word(clause, at)));
    let object_before = (index.saturating_sub(4).max(segment_start)..index)
        .any(|at| is(OBJECTS, word(clause, at)) || is(GLOBAL_SUBJECTS, word(clause, at)));
    let has_object = object_after.is_some() || object_before || RESUMPTION_ONLY.contains(&current);
    if !has_object {
        return false;
    }
    let permission_before =
        (index.saturating_sub(5)..index).any(|at| is(PERMISSIONS, word(clause, at)));
    let after = index + 1..(index + 7).min(clause.len());
    if after.clone().any(|at| is(POST_NEGATORS, word(clause, at))) {
        return false;
    }
    let permission_after = after
        .into_iter()
        .any(|at| is(POST_PERMISSIONS, word(clause, at)));
    permission_before || permission_after || opens_segment(clause, index, segment_start)
}

/// Whether `answer` opens with a yes.
fn opens_with_yes(answer: &str) -> bool {
    let tokens = tokenize(answer);
    matches!(
        word(&tokens, 0),
        Some(
            "yes"
                | "yep"
                | "yeah"
                | "yup"
                | "sure"
                | "absolutely"
                | "definitely"
                | "affirmative"
                | "correct"
                | "indeed"
        )
    )
}

/// Longest piece of state text (an id, the recovery blocker) quoted in the status sentence, in characters.
const MAX_QUOTED_CHARS: usize = 240;

/// `text` on one line, cut on a word boundary with an ellipsis when longer than [`MAX_QUOTED_CHARS`] (never
/// mid-word: "0 of 2 consecutive he" is what a character cut gave).
fn short(text: &str) -> String {
    let text = text.replace(['\n', '\r'], " ");
    cut_on_word(&text, MAX_QUOTED_CHARS)
}

/// `text` when at most `max` characters, else its longest prefix of whole words (at most `max` characters, the
/// trailing punctuation and spaces dropped) followed by `…`. A single word longer than `max` is cut at `max`.
#[must_use]
pub fn cut_on_word(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let end = text
        .char_indices()
        .nth(max)
        .map_or(text.len(), |(at, _)| at);
    // Cut at the last space at or before `end`; if the character at `end` is a space, the word before is whole.
    let cut = if text[end..].starts_with(char::is_whitespace) {
        end
    } else {
        text[..end].rfind(char::is_whitespace).unwrap_or(end)
    };
    let kept = text[..cut]
        .trim_end_matches(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | ':' | '('));
    format!("{kept}…")
}

// ---------------------------------------------------------------------------------------------------------------
// Sentences of the original text, and their topic.

/// The sentences of `text`, as slices of it (each with its end mark, trimmed): split after `.`, `!`, `?` followed
/// by a space or the end (not inside `0.4` or `app.example.com`), and at line breaks. Empty pieces are dropped.
#[must_use]
pub fn split_sentences(text: &str) -> Vec<&str> {
    let mut sentences = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        let next = chars.peek().map(|&(_, next)| next);
        let ends = match c {
            '\n' | '\r' => true,
            '.' | '!' | '?' | '…' => next.is_none_or(|next| {
                next.is_whitespace() || matches!(next, '"' | '\'' | ')' | '\u{201d}')
            }),
            _ => false,
        };
        if ends {
            let mut end = at + c.len_utf8();
            // A closing quote or bracket right after the mark belongs to the sentence.
            while let Some(&(quote_at, quote)) = chars.peek() {
                if matches!(quote, '"' | '\'' | ')' | '\u{201d}' | '.' | '!' | '?') {
                    end = quote_at + quote.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            sentences.push(&text[start..end]);
            start = end;
        }
    }
    sentences.push(&text[start..]);
    sentences
        .into_iter()
        .map(str::trim)
        .filter(|sentence| sentence.chars().any(char::is_alphanumeric))
        .collect()
}

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

#[cfg(test)]
mod tests {
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
