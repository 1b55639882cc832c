//! The printouts of a replay: one line per call and per decision, or JSON lines for tools.

use std::fmt::Write as _;

use chrono::SecondsFormat;
use fixloop_core::engine::Input;
use serde::Serialize;

use super::{Decision, Replay, Step};

impl Replay {
    /// The steps to print: all of them, or the span of `incident` (from the call that opened it to the one that
    /// closed it), or `None` when no step touches that incident.
    #[must_use]
    pub fn shown(&self, incident: Option<&str>) -> Option<Vec<&Step>> {
        let Some(incident) = incident else {
            return Some(self.steps.iter().collect());
        };
        let steps: Vec<&Step> = self
            .steps
            .iter()
            .filter(|step| {
                step.incident_before.as_deref() == Some(incident)
                    || step.incident_after.as_deref() == Some(incident)
            })
            .collect();
        (!steps.is_empty()).then_some(steps)
    }

    /// The human printout: one line per call and one per decision.
    #[must_use]
    pub fn render_text(steps: &[&Step]) -> String {
        let mut out = String::new();
        for step in steps {
            let at = step.at.to_rfc3339_opts(SecondsFormat::Millis, true);
            let _ = writeln!(out, "{at} #{:<6} {}", step.seq, step.input);
            for decision in &step.decisions {
                let _ = writeln!(out, "{at} #{:<6}   => {}", step.seq, describe(decision));
            }
        }
        out
    }

    /// The printout for tools: one JSON object per line, `{"seq","at","kind":"input","input"}` for a call and
    /// `{"seq","at","kind":<decision>,...}` for each decision (the fields of [`Decision`]).
    #[must_use]
    pub fn render_json(steps: &[&Step]) -> String {
        let mut out = String::new();
        for step in steps {
            let head = serde_json::json!({
                "seq": step.seq,
                "at": step.at.to_rfc3339_opts(SecondsFormat::Millis, true),
            });
            let mut input = head.clone();
            input["kind"] = "input".into();
            input["input"] = step.input.clone().into();
            let _ = writeln!(out, "{input}");
            for decision in &step.decisions {
                let mut line = head.clone();
                if let (Some(line), Ok(serde_json::Value::Object(fields))) =
                    (line.as_object_mut(), serde_json::to_value(decision))
                {
                    line.extend(fields);
                }
                let _ = writeln!(out, "{line}");
            }
        }
        out
    }
}

/// An input in one line.
pub(super) fn short_input(input: &Input) -> String {
    match input {
        Input::SignalSampled(sample) => format!("signal sampled: {}", sample_line(sample)),
        Input::SignalSourceFailed { failure } => format!("signal read failed: {failure:?}"),
        Input::ServiceProbed { result, .. } => match result {
            Ok(sample) => format!("service probed: {}", sample_line(sample)),
            Err(failure) => format!("service probe failed: {failure:?}"),
        },
        Input::AlertFired(alert) => format!(
            "alert fired ({}, key {}): {}",
            alert.source, alert.dedupe_key, alert.title
        ),
        Input::AlertResolved { dedupe_key } => format!("alert resolved (key {dedupe_key})"),
        Input::SimulateOn => "operator: simulate an incident".to_owned(),
        Input::SimulateOff => "operator: close the simulated incident".to_owned(),
        Input::ServiceChanged { repair } => format!("the service was changed (repair: {repair})"),
        Input::ContextFetched { result, .. } => match result {
            Ok(context) => format!(
                "context fetched: error rate {:.1}%, top error {}",
                context.error_rate * 100.0,
                context.top_error.as_deref().unwrap_or("none")
            ),
            Err(failure) => format!("context fetch failed: {failure:?}"),
        },
        Input::PlanProposed { plan, .. } => format!(
            "plan proposed: {} ({} tests)",
            plan.plan_id,
            plan.items.len()
        ),
        Input::PlanGenerationFailed { failure, .. } => {
            format!("plan generation failed: {failure:?}")
        }
        Input::TestProgressed {
            test_id,
            status,
            details,
            ..
        } => {
            let mut line = format!("test {test_id}: {}", wire_name(status));
            if let Some(details) = details {
                let _ = write!(line, " ({details})");
            }
            line
        }
        Input::RunFinished { result, .. } => match result {
            Ok(()) => "run finished".to_owned(),
            Err(failure) => format!("run failed: {failure:?}"),
        },
        Input::OperatorRequestedRun { incident_id } => {
            format!("operator: run the tests of {incident_id}")
        }
        Input::CopilotAnswered(answer) => format!("copilot answered: {:?}", answer.question),
        Input::Restarted => {
            "FixLoop restarted (effects in flight are re-issued or closed)".to_owned()
        }
        Input::ApprovalGiven {
            proposal,
            version,
            by,
        } => format!("operator {by}: approve {proposal} (version {version})"),
        Input::ApprovalRejected {
            proposal,
            version,
            by,
        } => format!("operator {by}: reject {proposal} (version {version})"),
        Input::ActionFinished { result, .. } => match result {
            Ok(()) => "remediation action carried out".to_owned(),
            Err(failure) => format!("remediation action failed: {failure:?}"),
        },
        Input::KillSwitchSet { engaged, by } => format!(
            "operator {by}: remediation kill switch {}",
            if *engaged { "engaged" } else { "released" }
        ),
        Input::ActionChosen { action, reason, .. } => match action {
            Some(action) => format!("the model picked remediation step {action:?} ({reason:?})"),
            None => format!("the model picked no remediation step ({reason:?})"),
        },
    }
}

fn sample_line(sample: &fixloop_core::engine::SignalSample) -> String {
    let mut line = match sample.error_rate {
        Some(rate) => format!(
            "error rate {:.1}% over {} requests",
            rate * 100.0,
            sample.requests
        ),
        None => "no traffic".to_owned(),
    };
    if let Some(top) = &sample.top_error {
        let _ = write!(line, ", top error {top}");
    }
    line
}

/// A decision in one line.
fn describe(decision: &Decision) -> String {
    match decision {
        Decision::Status {
            from,
            to,
            incident_id,
        } => format!(
            "status {} -> {}{}",
            wire_name(from),
            wire_name(to),
            incident_id
                .as_deref()
                .map(|id| format!(" ({id})"))
                .unwrap_or_default()
        ),
        Decision::SignalsDegraded { reason: Some(why) } => format!("signals degraded: {why}"),
        Decision::SignalsDegraded { reason: None } => "signals no longer degraded".to_owned(),
        Decision::IncidentOpened { incident_id, title } => {
            format!("incident opened {incident_id}: {title}")
        }
        Decision::PlanRejected { violations, first } => {
            format!("plan rejected: {violations} violation(s), first: {first}")
        }
        Decision::PlanRequested { attempt, planner } => {
            format!("plan requested: attempt {attempt}, {planner} planner")
        }
        Decision::PlanValidated {
            incident_id,
            plan_id,
            tests,
        } => format!("plan validated {plan_id} for {incident_id}: {tests} tests"),
        Decision::RunStarted { run_id, tests } => format!("run started {run_id}: {tests} tests"),
        Decision::RunFinished {
            run_id,
            status,
            failing,
        } => {
            let mut line = format!("run finished {run_id}: {}", wire_name(status));
            for test in failing {
                let _ = write!(
                    line,
                    "; {} {}{}",
                    test.test_id,
                    wire_name(&test.status),
                    test.details
                        .as_deref()
                        .map(|details| format!(" ({details})"))
                        .unwrap_or_default()
                );
            }
            line
        }
        Decision::NotRecoveredYet {
            incident_id,
            blocker,
        } => format!("not RECOVERED yet ({incident_id}): {blocker}"),
        Decision::Recovered {
            incident_id,
            run_id,
            reason,
        } => format!(
            "RECOVERED {incident_id} by run {}: {reason}",
            run_id.as_deref().unwrap_or("?")
        ),
        Decision::IncidentClosed { incident_id } => format!("incident closed {incident_id}"),
        Decision::Configured { origin, changes } => {
            let origin = origin.as_deref().unwrap_or("origin not recorded");
            if changes.is_empty() {
                format!("configuration ({origin}): unchanged")
            } else {
                format!("configuration ({origin}): {}", changes.join("; "))
            }
        }
    }
}

/// The wire spelling of an enum value (`INCIDENT_ACTIVE`, `FAIL`).
fn wire_name(value: &impl Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => "?".to_owned(),
    }
}
