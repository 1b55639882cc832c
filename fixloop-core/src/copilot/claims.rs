//! The claim detector of the copilot's safety rule ([`claims_safety`]): a small lexicon and a tokenizer that read
//! sentences, clauses and comma segments and find resolution predicates on global subjects, resumption verbs on
//! traffic objects, all-clear idioms and lifted restrictions, unless negated or conditional (the method is
//! described in [`super::safety`]).

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
pub(super) const IDIOMS: &[&[&str]] = &[
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
pub(super) enum Token {
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

pub(super) fn tokenize(text: &str) -> Vec<Token> {
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
pub(super) fn opens_with_yes(answer: &str) -> bool {
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
