//! Embedded defaults that need no key: [`RulePlanner`] (the core's deterministic rule planner as a [`Planner`])
//! and [`GroundedCopilot`] (answers from the state alone, no LLM).

use std::fmt::Write as _;

use async_trait::async_trait;
use fixloop_contract::{IncidentState, Link, Plan, RunStatus, TestResult, TestStatus};

use crate::error::AdapterError;
use crate::ports::{Copilot, CopilotLookup, CopilotReply, CopilotState, PlanRequest, Planner};
use crate::url_path;

/// The core's rule planner (`fixloop_core::rule_plan`) as a [`Planner`]: the same five tests for every incident,
/// always accepted by the validator with the seed policy. It never fails.
#[derive(Debug, Clone, Copy, Default)]
pub struct RulePlanner;

#[async_trait]
impl Planner for RulePlanner {
    async fn propose(&self, request: &PlanRequest) -> Result<Plan, AdapterError> {
        Ok(fixloop_core::rule_plan(
            &request.context,
            request.plan_id.clone(),
            request.now,
        ))
    }
}

/// A copilot that answers from the [`CopilotState`] alone, deterministically.
///
/// - Cause questions ("what caused…", "why…", "root cause") name the top error, the failing tests with their
///   endpoints (`POST /checkout`) and details, and the signal values.
/// - Safety questions ("is it safe…", "can we resume…", "recovered?") answer yes only when the status is
///   `RECOVERED`; otherwise they say why not (failing tests, the recovery blocker, a run still running, no
///   incident).
/// - Status questions, and anything else, get a summary.
///
/// Citations are the incident's evidence links and the run's URL, nothing else. It never fails.
#[derive(Debug, Clone, Copy, Default)]
pub struct GroundedCopilot;

/// What a question asks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Topic {
    Safety,
    Cause,
    Summary,
}

impl GroundedCopilot {
    /// The answer to `question` in `state` (what [`Copilot::answer`] returns).
    #[must_use]
    pub fn reply(question: &str, state: &CopilotState) -> CopilotReply {
        let answer = match topic(question) {
            Topic::Safety => safety(state),
            Topic::Cause => cause(state),
            Topic::Summary => summary(state),
        };
        CopilotReply {
            answer,
            citations: citations(state),
            claim: crate::copilot_safety::Claim::None,
        }
    }
}

#[async_trait]
impl Copilot for GroundedCopilot {
    async fn answer(
        &self,
        question: &str,
        state: &CopilotState,
        _lookup: &dyn CopilotLookup,
    ) -> Result<CopilotReply, AdapterError> {
        Ok(Self::reply(question, state))
    }
}

fn topic(question: &str) -> Topic {
    let question = question.to_lowercase();
    let has = |words: &[&str]| words.iter().any(|word| question.contains(word));
    if crate::copilot_safety::asks_about_safety(&question) {
        Topic::Safety
    } else if has(&[
        "cause",
        "why",
        "root",
        "what happened",
        "what broke",
        "what is broken",
        "what's broken",
        "failing",
        "failed",
        "error",
        "wrong",
    ]) {
        Topic::Cause
    } else {
        Topic::Summary
    }
}

fn safety(state: &CopilotState) -> String {
    let status = state.status.status;
    if status == IncidentState::Recovered {
        let mut answer = "Yes: the status is RECOVERED.".to_owned();
        if let Some(run) = &state.run {
            let _ = write!(
                answer,
                " Every test of run {} passed ({} tests)",
                run.run_id,
                run.tests.len()
            );
            answer.push_str(" and the signals are back to normal");
        } else {
            answer.push_str(" The signals are back to normal");
        }
        let _ = write!(answer, " ({}).", current_signals(state));
        return answer;
    }
    let mut reasons = Vec::new();
    if state.incident.is_none() {
        reasons.push("no incident is open, so no validation run has proven anything".to_owned());
    }
    if let Some(run) = &state.run {
        let failing = failing_tests(state);
        if !failing.is_empty() {
            reasons.push(format!(
                "{} of {} tests of run {} failed: {}",
                failing.len(),
                run.tests.len(),
                run.run_id,
                failing.join("; ")
            ));
        }
        if matches!(run.status, RunStatus::Queued | RunStatus::Running) {
            let finished = run
                .tests
                .iter()
                .filter(|test| matches!(test.status, TestStatus::Pass | TestStatus::Fail))
                .count();
            reasons.push(format!(
                "run {} is still running ({finished} of {} tests finished)",
                run.run_id,
                run.tests.len()
            ));
        }
        if run.status == RunStatus::Failed {
            reasons.push(format!("run {} itself failed", run.run_id));
        }
    } else if state.incident.is_some() {
        reasons.push("no validation run has completed yet".to_owned());
    }
    if let Some(blocker) = &state.recovery_blocker {
        reasons.push(blocker.clone());
    }
    if reasons.is_empty() {
        reasons.push("recovery has not been confirmed".to_owned());
    }
    format!(
        "No, not yet: the status is {}, not RECOVERED. {}. Current signals: {}.",
        status.as_str(),
        capitalize(&reasons.join("; ")),
        current_signals(state)
    )
}

fn cause(state: &CopilotState) -> String {
    let Some(incident) = &state.incident else {
        return format!(
            "No incident is open (status {}), so there is no cause to report. Current signals: {}.",
            state.status.status.as_str(),
            current_signals(state)
        );
    };
    let signal = &incident.datadog_summary.signal;
    let mut answer = format!("Incident {} \"{}\": ", incident.incident_id, incident.title);
    match &signal.top_error {
        Some(top_error) => {
            let _ = write!(answer, "the top error is \"{top_error}\".");
        }
        None => answer.push_str("no top error was recorded."),
    }
    let failing = failing_tests(state);
    if failing.is_empty() {
        match &state.run {
            Some(run) => {
                let _ = write!(answer, " No test of run {} is failing.", run.run_id);
            }
            None => answer.push_str(" No validation run yet."),
        }
    } else {
        let _ = write!(answer, " Failing tests: {}.", failing.join("; "));
    }
    let _ = write!(
        answer,
        " At detection: error rate {}, p95 {}. Now: {}.",
        percent(signal.error_rate_5m),
        millis(signal.p95_latency_ms_5m),
        current_signals(state)
    );
    answer
}

fn summary(state: &CopilotState) -> String {
    let mut answer = format!("Status: {}.", state.status.status.as_str());
    match &state.incident {
        Some(incident) => {
            let _ = write!(
                answer,
                " Incident {} \"{}\" on {}, detected at {}.",
                incident.incident_id,
                incident.title,
                incident.datadog_summary.service,
                incident.detected_at.to_rfc3339()
            );
            if let Some(top_error) = &incident.datadog_summary.signal.top_error {
                let _ = write!(answer, " Top error: \"{top_error}\".");
            }
        }
        None => answer.push_str(" No incident is open."),
    }
    if let Some(run) = &state.run {
        let count = |status| {
            run.tests
                .iter()
                .filter(|test| test.status == status)
                .count()
        };
        let _ = write!(
            answer,
            " Run {} is {}: {} passed, {} failed, {} running, {} pending.",
            run.run_id,
            run.status.as_str(),
            count(TestStatus::Pass),
            count(TestStatus::Fail),
            count(TestStatus::Running),
            count(TestStatus::Pending)
        );
        let failing = failing_tests(state);
        if !failing.is_empty() {
            let _ = write!(answer, " Failing: {}.", failing.join("; "));
        }
    }
    if let Some(blocker) = &state.recovery_blocker {
        let _ = write!(answer, " Not recovered yet because {blocker}.");
    }
    let _ = write!(answer, " Signals: {}.", current_signals(state));
    answer
}

/// `"Checkout accepts a valid order (POST /checkout): status 500, expected 200"` for each failed test.
fn failing_tests(state: &CopilotState) -> Vec<String> {
    let Some(run) = &state.run else {
        return Vec::new();
    };
    run.tests
        .iter()
        .filter(|test| test.status == TestStatus::Fail)
        .map(|test| describe_failure(state, test))
        .collect()
}

fn describe_failure(state: &CopilotState, test: &TestResult) -> String {
    let endpoint = state.incident.as_ref().and_then(|incident| {
        incident
            .plan
            .items
            .iter()
            .find(|item| item.test_id == test.test_id)
            .map(|item| {
                let path = url_path(&item.target.url);
                let path = path.split('?').next().unwrap_or(path);
                format!("{} {path}", item.target.method.as_str())
            })
    });
    let mut text = test.name.clone();
    if let Some(endpoint) = endpoint {
        let _ = write!(text, " ({endpoint})");
    }
    match test
        .details
        .as_deref()
        .filter(|details| !details.is_empty())
    {
        Some(details) => {
            let _ = write!(text, ": {details}");
        }
        None => text.push_str(": failed"),
    }
    text
}

fn current_signals(state: &CopilotState) -> String {
    format!(
        "error rate {}, p95 {}",
        percent(state.status.error_rate_5m),
        millis(state.status.p95_latency_ms_5m)
    )
}

fn citations(state: &CopilotState) -> Vec<Link> {
    let mut links: Vec<Link> = Vec::new();
    if let Some(incident) = &state.incident {
        for link in &incident.datadog_summary.evidence_links {
            if !links.iter().any(|known| known.url == link.url) {
                links.push(link.clone());
            }
        }
    }
    if let Some(url) = &state.run_url
        && !links.iter().any(|known| &known.url == url)
    {
        let label = match &state.run {
            Some(run) => format!("Validation run {}", run.run_id),
            None => "Validation run".to_owned(),
        };
        links.push(Link {
            label,
            url: url.clone(),
        });
    }
    links
}

/// A wire error rate, which is already in percent (`12.5` prints `12.5%`).
fn percent(percent: f64) -> String {
    format!("{percent:.1}%")
}

fn millis(value: f64) -> String {
    format!("{value:.0} ms")
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_are_classified() {
        assert_eq!(topic("Is it safe to resume traffic?"), Topic::Safety);
        assert_eq!(topic("Why is it not recovered yet?"), Topic::Safety);
        assert_eq!(topic("What caused this?"), Topic::Cause);
        assert_eq!(topic("What's the root cause"), Topic::Cause);
        assert_eq!(topic("status?"), Topic::Summary);
        assert_eq!(topic("tell me a joke"), Topic::Summary);
    }
}
