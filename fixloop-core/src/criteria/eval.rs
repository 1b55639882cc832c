//! The evaluator of the criteria language: pass or fail with a one-line explanation, and the status analysis
//! behind [`Criteria::expects_client_error`](super::Criteria::expects_client_error).

use std::ops::RangeInclusive;

use fixloop_contract::serde_json::{self, Value as Json};

use super::{CompareOp, Expr, Literal, Observation, PathSegment, Predicate, Subject, Verdict};

/// Longest explanation the evaluator returns, in characters.
pub const EXPLANATION_MAX_CHARS: usize = 400;

/// Longest rendering of one observed value inside an explanation, in characters.
const VALUE_MAX_CHARS: usize = 60;

pub(super) fn evaluate(expr: &Expr, observation: &Observation) -> Verdict {
    let mut context = Context {
        observation,
        json: None,
    };
    let mut outcome = context.expr(expr);
    if outcome.text.is_empty() {
        // Only a hand-built `And`/`Or` without operands explains nothing.
        outcome.text = "no conditions to check".to_owned();
    }
    Verdict {
        passed: outcome.passed,
        explanation: one_line(&outcome.text, EXPLANATION_MAX_CHARS),
    }
}

/// Whether the expression can hold for some status in `range` and for no status in `100..=599` outside it,
/// whatever the rest of the response is.
pub(super) fn admits_only(expr: &Expr, range: RangeInclusive<u16>) -> bool {
    let mut admits_inside = false;
    for status in sample_statuses(expr, &range) {
        if status_may_hold(expr, status) != Tri::False {
            if !range.contains(&status) {
                return false;
            }
            admits_inside = true;
        }
    }
    admits_inside
}

/// Statuses in `100..=599` that stand for all of them: every predicate on `status` and the range membership only
/// change value next to a literal or a range bound, so the statuses around those points, plus one status inside each
/// gap between them, take every combination of values that any status takes.
fn sample_statuses(expr: &Expr, range: &RangeInclusive<u16>) -> Vec<u16> {
    let mut points: Vec<i64> = Vec::with_capacity(16);
    points.extend([100, 599, i64::from(*range.start()), i64::from(*range.end())]);
    collect_status_literals(expr, &mut points);
    // Three samples per point, plus at most one per gap between them: one allocation.
    let mut samples: Vec<u16> = Vec::with_capacity(points.len() * 6);
    samples.extend(
        points
            .iter()
            .flat_map(|&point| [point - 1, point, point + 1])
            .filter_map(|status| u16::try_from(status.clamp(100, 599)).ok()),
    );
    samples.sort_unstable();
    samples.dedup();
    for index in 1..samples.len() {
        let (low, high) = (samples[index - 1], samples[index]);
        if high > low + 1 {
            samples.push(low + 1);
        }
    }
    samples
}

/// Collects the (integer parts of the) numbers that predicates on `status` compare with.
fn collect_status_literals(expr: &Expr, points: &mut Vec<i64>) {
    match expr {
        Expr::And(operands) | Expr::Or(operands) => {
            for operand in operands {
                collect_status_literals(operand, points);
            }
        }
        Expr::Not(inner) => collect_status_literals(inner, points),
        Expr::Predicate(predicate) => {
            if *subject_of(predicate) != Subject::Status {
                return;
            }
            let literals: &[Literal] = match predicate {
                Predicate::Compare { value, .. } => std::slice::from_ref(value),
                Predicate::In { values, .. } => values,
                Predicate::Contains { needle, .. } => std::slice::from_ref(needle),
                Predicate::Exists { .. } => &[],
            };
            for literal in literals {
                if let Literal::Number(number) = literal {
                    // Clamped first, so the casts cannot overflow; statuses are whole numbers, so the floor and
                    // the ceiling are where a comparison can change.
                    let clamped = number.clamp(0.0, 1000.0);
                    #[allow(clippy::cast_possible_truncation)]
                    points.extend([clamped.floor() as i64, clamped.ceil() as i64]);
                }
            }
        }
    }
}

struct Outcome {
    passed: bool,
    text: String,
}

/// A value resolved from the observation.
enum Value<'a> {
    Number(f64),
    Text(&'a str),
    Owned(String),
    Json(&'a Json),
}

struct Context<'a> {
    observation: &'a Observation,
    /// The body parsed as JSON, parsed at most once, or why it could not be.
    json: Option<Result<Json, String>>,
}

impl<'a> Context<'a> {
    fn expr(&mut self, expr: &Expr) -> Outcome {
        match expr {
            Expr::And(operands) => {
                let mut held = Vec::new();
                for operand in operands {
                    let outcome = self.expr(operand);
                    if !outcome.passed {
                        return outcome;
                    }
                    held.push(outcome.text);
                }
                Outcome {
                    passed: true,
                    text: held.join("; "),
                }
            }
            Expr::Or(operands) => {
                let mut failed = Vec::new();
                for operand in operands {
                    let outcome = self.expr(operand);
                    if outcome.passed {
                        return outcome;
                    }
                    failed.push(outcome.text);
                }
                Outcome {
                    passed: false,
                    text: format!("no alternative held: {}", failed.join("; ")),
                }
            }
            Expr::Not(inner) => {
                let outcome = self.expr(inner);
                if outcome.passed {
                    Outcome {
                        passed: false,
                        text: format!("expected !({inner}), but {}", outcome.text),
                    }
                } else {
                    Outcome {
                        passed: true,
                        text: format!("!({inner}) held ({})", outcome.text),
                    }
                }
            }
            Expr::Predicate(predicate) => self.predicate(predicate),
        }
    }

    fn predicate(&mut self, predicate: &Predicate) -> Outcome {
        match self.check(predicate) {
            Err(reason) => Outcome {
                passed: false,
                text: format!("expected {predicate}, but {reason}"),
            },
            Ok((true, shown)) => Outcome {
                passed: true,
                text: format!("{predicate} held ({shown})"),
            },
            Ok((false, shown)) => Outcome {
                passed: false,
                text: format!("expected {predicate}, got {shown}"),
            },
        }
    }

    /// Whether the predicate holds, with the observed value rendered, or why its subject cannot be resolved.
    fn check(&mut self, predicate: &Predicate) -> Result<(bool, String), String> {
        let passed = self.holds(predicate)?;
        let value = self.resolve(subject_of(predicate))?;
        Ok((passed, describe(&value)))
    }

    /// Whether the predicate holds, or why its subject cannot be resolved; formats nothing on success.
    fn holds(&mut self, predicate: &Predicate) -> Result<bool, String> {
        let value = self.resolve(subject_of(predicate))?;
        Ok(value_holds(&value, predicate))
    }

    fn resolve(&mut self, subject: &Subject) -> Result<Value<'_>, String> {
        let observation: &'a Observation = self.observation;
        match subject {
            Subject::Status => Ok(Value::Number(f64::from(observation.status))),
            // Latencies beyond 2^53 ms lose precision, which no comparison can notice.
            #[allow(clippy::cast_precision_loss)]
            Subject::LatencyMs => Ok(Value::Number(observation.latency_ms as f64)),
            Subject::Body => Ok(Value::Text(&observation.body)),
            Subject::Header(name) => {
                let values: Vec<&str> = observation
                    .headers
                    .iter()
                    .filter(|(key, _)| key.eq_ignore_ascii_case(name))
                    .map(|(_, value)| value.as_str())
                    .collect();
                match values.as_slice() {
                    [] => Err(format!("the response has no `{name}` header")),
                    [one] => Ok(Value::Text(one)),
                    many => Ok(Value::Owned(many.join(", "))),
                }
            }
            Subject::Json(path) => {
                let document = self.json()?;
                walk(document, path).map(Value::Json)
            }
            Subject::Len(inner) => {
                let length = match self.resolve(inner)? {
                    Value::Text(text) => text.chars().count(),
                    Value::Owned(text) => text.chars().count(),
                    Value::Json(Json::String(text)) => text.chars().count(),
                    Value::Json(Json::Array(items)) => items.len(),
                    Value::Json(Json::Object(map)) => map.len(),
                    other => {
                        return Err(format!("{inner} is {} and has no length", describe(&other)));
                    }
                };
                // Lengths of in-memory values are far below 2^53.
                #[allow(clippy::cast_precision_loss)]
                Ok(Value::Number(length as f64))
            }
        }
    }

    fn json(&mut self) -> Result<&Json, String> {
        let body = &self.observation.body;
        let parsed = self.json.get_or_insert_with(|| {
            serde_json::from_str::<Json>(body)
                .map_err(|_| format!("the body is not JSON ({})", quote(body)))
        });
        parsed.as_ref().map_err(Clone::clone)
    }
}

/// Whether the predicate holds for its subject's resolved value.
fn value_holds(value: &Value<'_>, predicate: &Predicate) -> bool {
    match predicate {
        Predicate::Compare { op, value: lit, .. } => compare(value, *op, lit),
        Predicate::In { values, .. } => values.iter().any(|lit| equals(value, lit)),
        Predicate::Contains { needle, .. } => contains(value, needle),
        Predicate::Exists { .. } => true,
    }
}

fn subject_of(predicate: &Predicate) -> &Subject {
    match predicate {
        Predicate::Compare { subject, .. }
        | Predicate::In { subject, .. }
        | Predicate::Contains { subject, .. }
        | Predicate::Exists { subject } => subject,
    }
}

fn walk<'j>(document: &'j Json, path: &[PathSegment]) -> Result<&'j Json, String> {
    let mut current = document;
    for (depth, segment) in path.iter().enumerate() {
        let walked = || Subject::Json(path[..depth].to_vec()).to_string();
        current = match (segment, current) {
            (PathSegment::Key(key), Json::Object(map)) => match map.get(key) {
                Some(next) => next,
                None => return Err(format!("{} has no key {}", walked(), quote(key))),
            },
            (PathSegment::Index(index), Json::Array(items)) => match items.get(*index) {
                Some(next) => next,
                None => {
                    return Err(format!(
                        "{} has {} element(s), no index {index}",
                        walked(),
                        items.len()
                    ));
                }
            },
            (PathSegment::Key(key), other) => {
                return Err(format!(
                    "{} is {}, not an object with key {}",
                    walked(),
                    kind(other),
                    quote(key)
                ));
            }
            (PathSegment::Index(index), other) => {
                return Err(format!(
                    "{} is {}, not an array with index {index}",
                    walked(),
                    kind(other)
                ));
            }
        };
    }
    Ok(current)
}

fn as_number(value: &Value<'_>) -> Option<f64> {
    match value {
        Value::Number(number) => Some(*number),
        Value::Json(Json::Number(number)) => number.as_f64(),
        _ => None,
    }
}

fn as_text<'v>(value: &'v Value<'_>) -> Option<&'v str> {
    match value {
        Value::Text(text) => Some(text),
        Value::Owned(text) => Some(text),
        Value::Json(Json::String(text)) => Some(text),
        _ => None,
    }
}

fn equals(value: &Value<'_>, literal: &Literal) -> bool {
    match literal {
        Literal::Number(expected) => as_number(value).is_some_and(|actual| actual == *expected),
        Literal::String(expected) => as_text(value).is_some_and(|actual| actual == expected),
        Literal::Bool(expected) => {
            matches!(value, Value::Json(Json::Bool(actual)) if actual == expected)
        }
        Literal::Null => matches!(value, Value::Json(Json::Null)),
    }
}

fn json_equals(json: &Json, literal: &Literal) -> bool {
    equals(&Value::Json(json), literal)
}

fn compare(value: &Value<'_>, op: CompareOp, literal: &Literal) -> bool {
    match op {
        CompareOp::Eq => equals(value, literal),
        CompareOp::Ne => !equals(value, literal),
        CompareOp::Lt | CompareOp::Le | CompareOp::Gt | CompareOp::Ge => {
            let (Some(actual), Literal::Number(expected)) = (as_number(value), literal) else {
                return false;
            };
            match op {
                CompareOp::Lt => actual < *expected,
                CompareOp::Le => actual <= *expected,
                CompareOp::Gt => actual > *expected,
                _ => actual >= *expected,
            }
        }
    }
}

fn contains(value: &Value<'_>, needle: &Literal) -> bool {
    match (value, needle) {
        (Value::Json(Json::Array(items)), needle) => {
            items.iter().any(|item| json_equals(item, needle))
        }
        (Value::Json(Json::Object(map)), Literal::String(key)) => map.contains_key(key),
        (value, Literal::String(needle)) => {
            as_text(value).is_some_and(|text| text.contains(needle.as_str()))
        }
        _ => false,
    }
}

fn kind(json: &Json) -> &'static str {
    match json {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

fn describe(value: &Value<'_>) -> String {
    match value {
        Value::Number(number) => format!("{number}"),
        Value::Text(text) => quote(text),
        Value::Owned(text) => quote(text),
        Value::Json(json) => one_line(&json.to_string(), VALUE_MAX_CHARS),
    }
}

/// A string literal-like rendering, truncated.
fn quote(text: &str) -> String {
    let shown: String = text.chars().take(VALUE_MAX_CHARS).collect();
    let ellipsis = if text.chars().count() > VALUE_MAX_CHARS {
        "…"
    } else {
        ""
    };
    one_line(&format!("{shown:?}{ellipsis}"), VALUE_MAX_CHARS + 40)
}

/// Replaces control characters by spaces and truncates to `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let mut line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect();
    if text.chars().count() > max {
        line.pop();
        line.push('…');
    }
    line
}

/// Kleene three-valued truth, for the status analysis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tri {
    True,
    False,
    Unknown,
}

fn status_may_hold(expr: &Expr, status: u16) -> Tri {
    match expr {
        Expr::And(operands) => {
            let mut result = Tri::True;
            for operand in operands {
                match status_may_hold(operand, status) {
                    Tri::False => return Tri::False,
                    Tri::Unknown => result = Tri::Unknown,
                    Tri::True => {}
                }
            }
            result
        }
        Expr::Or(operands) => {
            let mut result = Tri::False;
            for operand in operands {
                match status_may_hold(operand, status) {
                    Tri::True => return Tri::True,
                    Tri::Unknown => result = Tri::Unknown,
                    Tri::False => {}
                }
            }
            result
        }
        Expr::Not(inner) => match status_may_hold(inner, status) {
            Tri::True => Tri::False,
            Tri::False => Tri::True,
            Tri::Unknown => Tri::Unknown,
        },
        // Only predicates on `status` (or `len(status)`, which never resolves) are decided by the status.
        Expr::Predicate(predicate) => match subject_of(predicate) {
            Subject::Status => {
                if value_holds(&Value::Number(f64::from(status)), predicate) {
                    Tri::True
                } else {
                    Tri::False
                }
            }
            // A number has no length, so `len(status)` never resolves and never holds.
            Subject::Len(inner) if **inner == Subject::Status => Tri::False,
            _ => Tri::Unknown,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::criteria::Criteria;

    fn expects_client_error(source: &str) -> bool {
        Criteria::parse(source).unwrap().expects_client_error()
    }

    #[test]
    fn status_analysis_accepts_4xx_only_criteria() {
        assert!(expects_client_error("status == 422"));
        assert!(expects_client_error("status in [400, 422]"));
        assert!(expects_client_error(
            "status >= 400 && status < 500 && json.error exists"
        ));
        assert!(expects_client_error(
            "(status == 400 || status == 422) && body contains \"invalid\""
        ));
    }

    #[test]
    fn status_analysis_rejects_criteria_that_admit_other_statuses() {
        assert!(!expects_client_error("status != 200"));
        assert!(!expects_client_error("body contains \"invalid\""));
        assert!(!expects_client_error("status == 422 || json.error exists"));
        assert!(!expects_client_error("status >= 400"));
        assert!(!expects_client_error("!(status == 422)"));
        assert!(!expects_client_error("status == 700"));
    }

    /// The definition of [`admits_only`], by brute force over every status.
    fn admits_only_exhaustive(expr: &Expr, range: RangeInclusive<u16>) -> bool {
        let possible: Vec<u16> = (100..=599)
            .filter(|&status| status_may_hold(expr, status) != Tri::False)
            .collect();
        !possible.is_empty() && possible.iter().all(|status| range.contains(status))
    }

    #[test]
    fn sampled_status_analysis_agrees_with_brute_force() {
        for source in [
            "status == 422",
            "status in [400, 422]",
            "status >= 400 && status < 500",
            "status > 399 && status <= 499",
            "status > 399.5 && status < 499.5",
            "status >= 400 && status < 500.1",
            "status > 398.9 && status < 450",
            "status != 200",
            "!(status < 400) && !(status >= 500)",
            "status >= -5 && status < 1e9",
            "status == 200 || status == 204",
            "status >= 200 && status < 300",
            "status > 199 && status < 301",
            "(status == 400 || status == 422) && body contains \"x\"",
            "status contains 4",
            "status exists",
            "len(status) == 3",
            "json.status == 422",
        ] {
            let expr = Criteria::parse(source).unwrap().expr().clone();
            for range in [400..=499, 200..=299] {
                assert_eq!(
                    admits_only(&expr, range.clone()),
                    admits_only_exhaustive(&expr, range.clone()),
                    "{source} in {range:?}"
                );
            }
        }
    }

    #[test]
    fn one_line_strips_control_characters_and_truncates() {
        assert_eq!(one_line("a\nb", 10), "a b");
        assert_eq!(one_line("abcdef", 4), "abc…");
    }
}
