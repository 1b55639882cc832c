//! Incident history: per incident (the open one and the last 100 closed), a bounded timeline of what the engine
//! decided and published, and the engine's own times from which the figures (time to detect, to first run, to
//! recover) are computed.
//!
//! The record is written as the engine publishes (every `Publish` effect passes through [`History::observe`]),
//! plus the two moments no envelope names an incident for: the opening ([`History::open`]) and the close
//! ([`History::close`]). Nothing here reads a clock: every time is the `now` of the call that caused it.

use std::collections::VecDeque;

use fixloop_contract::chrono::{DateTime, Utc};
use fixloop_contract::{
    IncidentFigures, IncidentState, RunStatus, TestRun, TestStatus, TimelineEntry, TimelineKind,
    WsMessage,
};

use crate::ids::IncidentId;

/// Most timeline entries one incident keeps; beyond it the oldest entry after DETECTED is dropped.
pub(super) const MAX_TIMELINE: usize = 200;
/// Most characters of a copilot question the timeline keeps.
const MAX_QUESTION_CHARS: usize = 200;

/// The history of one incident.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct IncidentRecord {
    pub(super) incident_id: IncidentId,
    pub(super) detected_at: DateTime<Utc>,
    /// The first hot sample of the window that opened the incident (polling only).
    pub(super) first_hot_sample_at: Option<DateTime<Utc>>,
    pub(super) first_run_at: Option<DateTime<Utc>>,
    pub(super) recovered_at: Option<DateTime<Utc>>,
    /// When it closed (`incident_end`).
    pub(super) closed_at: Option<DateTime<Utc>>,
    pub(super) resolution: Option<String>,
    /// The last status recorded while open, to record changes only.
    pub(super) last_status: Option<IncidentState>,
    /// The latest run seen, and whether its end is recorded.
    pub(super) last_run: Option<(String, bool)>,
    pub(super) timeline: Vec<TimelineEntry>,
}

/// The records of the open incident (last, while open) and of the last `closed_limit` closed ones, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct History {
    pub(super) records: VecDeque<IncidentRecord>,
}

impl History {
    /// Starts the record of an incident opened at `now`, for the reason `why`.
    pub(super) fn open(
        &mut self,
        incident_id: &IncidentId,
        now: DateTime<Utc>,
        first_hot_sample_at: Option<DateTime<Utc>>,
        why: String,
    ) {
        let mut record = IncidentRecord {
            incident_id: incident_id.clone(),
            detected_at: now,
            first_hot_sample_at,
            first_run_at: None,
            recovered_at: None,
            closed_at: None,
            resolution: None,
            last_status: None,
            last_run: None,
            timeline: Vec::new(),
        };
        record.push(entry(now, TimelineKind::Detected, why));
        self.records.push_back(record);
    }

    /// Ends the record of `incident_id`: RESOLVED at `now` for `why`, and forgets the oldest closed records beyond
    /// `closed_limit`.
    pub(super) fn close(
        &mut self,
        incident_id: &IncidentId,
        now: DateTime<Utc>,
        why: &str,
        closed_limit: usize,
    ) {
        if let Some(record) = self.record_mut(incident_id.as_str()) {
            record.closed_at = Some(now);
            // A relapse (RECOVERED, then open again) is part of how it ended.
            let relapses = record.relapses();
            record.resolution = Some(match relapses {
                0 => why.to_owned(),
                1 => format!("{why}; it had relapsed once after an earlier RECOVERED"),
                n => format!("{why}; it had relapsed {n} times after earlier RECOVERED verdicts"),
            });
            record.last_status = None;
            record.push(entry(now, TimelineKind::Resolved, why.to_owned()));
        }
        while self.records.len() > closed_limit {
            self.records.pop_front();
        }
    }

    /// Records a decision no published message states (a plan rejected, a recovery verdict) for `incident_id`.
    pub(super) fn note(
        &mut self,
        incident_id: &IncidentId,
        now: DateTime<Utc>,
        kind: TimelineKind,
        summary: String,
    ) {
        if let Some(record) = self.record_mut(incident_id.as_str()) {
            record.push(entry(now, kind, summary));
        }
    }

    /// Records what a published message says about an incident.
    pub(super) fn observe(&mut self, now: DateTime<Utc>, message: &WsMessage) {
        match message {
            WsMessage::SystemStatus(status) => {
                let Some(record) = status
                    .active_incident_id
                    .as_deref()
                    .and_then(|id| self.record_mut(id))
                else {
                    return;
                };
                if record.closed_at.is_some() || record.last_status == Some(status.status) {
                    return;
                }
                if status.status == IncidentState::Recovered {
                    record.recovered_at = Some(now);
                } else if record.last_status == Some(IncidentState::Recovered) {
                    // A relapse: the incident is not recovered any more until it recovers again.
                    record.recovered_at = None;
                }
                record.last_status = Some(status.status);
                let mut status_entry = entry(
                    now,
                    TimelineKind::StatusChanged,
                    format!("status {}", status.status.as_str()),
                );
                status_entry.status = Some(status.status);
                record.push(status_entry);
            }
            WsMessage::IncidentCreated(card) => {
                if let Some(record) = self.record_mut(&card.incident_id) {
                    record.push(entry(now, TimelineKind::Announced, card.title.clone()));
                }
            }
            WsMessage::PlanGenerated(generated) => {
                if let Some(record) = self.record_mut(&generated.incident_id) {
                    let mut plan_entry = entry(
                        now,
                        TimelineKind::PlanValidated,
                        format!(
                            "plan {} validated ({} tests)",
                            generated.plan.plan_id,
                            generated.plan.items.len()
                        ),
                    );
                    plan_entry.plan_id = Some(generated.plan.plan_id.clone());
                    record.push(plan_entry);
                }
            }
            WsMessage::TestsUpdated(run) => {
                if let Some(record) = self.record_mut(&run.incident_id) {
                    record.observe_run(now, run);
                }
            }
            WsMessage::CopilotAnswer(answer) => {
                if let Some(record) = answer
                    .incident_id
                    .as_deref()
                    .and_then(|id| self.record_mut(id))
                {
                    let question: String =
                        answer.question.chars().take(MAX_QUESTION_CHARS).collect();
                    record.push(entry(
                        answer.created_at,
                        TimelineKind::CopilotAnswered,
                        question,
                    ));
                }
            }
            // The hub's marker to a resuming client, and the driver's remediation events (read from the engine's
            // proposals); the engine never publishes them.
            WsMessage::StreamReset(_)
            | WsMessage::RemediationProposed(_)
            | WsMessage::RemediationUpdated(_)
            | WsMessage::IncidentEscalated(_) => {}
        }
    }

    /// The record of `incident_id`.
    pub(super) fn record(&self, incident_id: &str) -> Option<&IncidentRecord> {
        self.records
            .iter()
            .rev()
            .find(|record| record.incident_id.as_str() == incident_id)
    }

    fn record_mut(&mut self, incident_id: &str) -> Option<&mut IncidentRecord> {
        self.records
            .iter_mut()
            .rev()
            .find(|record| record.incident_id.as_str() == incident_id)
    }
}

impl IncidentRecord {
    /// How often the incident relapsed: status changes from RECOVERED to an open state (the close to HEALTHY is
    /// not one), as the timeline recorded them.
    fn relapses(&self) -> usize {
        let mut recovered = false;
        let mut relapses = 0;
        for status in self.timeline.iter().filter_map(|entry| entry.status) {
            match status {
                IncidentState::Recovered => recovered = true,
                IncidentState::Healthy => recovered = false,
                _ if recovered => {
                    relapses += 1;
                    recovered = false;
                }
                _ => {}
            }
        }
        relapses
    }

    /// The figures, from the record's times.
    pub(super) fn figures(&self) -> IncidentFigures {
        let seconds = |from: DateTime<Utc>, to: DateTime<Utc>| {
            ((to - from).num_milliseconds().max(0) as f64) / 1000.0
        };
        IncidentFigures {
            first_hot_sample_at: self.first_hot_sample_at,
            first_run_at: self.first_run_at,
            recovered_at: self.recovered_at,
            time_to_detect_seconds: self
                .first_hot_sample_at
                .map(|at| seconds(at, self.detected_at)),
            time_to_first_run_seconds: self.first_run_at.map(|at| seconds(self.detected_at, at)),
            time_to_recover_seconds: self.recovered_at.map(|at| seconds(self.detected_at, at)),
        }
    }

    fn observe_run(&mut self, now: DateTime<Utc>, run: &TestRun) {
        let known = self
            .last_run
            .as_ref()
            .is_some_and(|(run_id, _)| *run_id == run.run_id);
        if !known {
            self.last_run = Some((run.run_id.clone(), false));
            self.first_run_at.get_or_insert(run.started_at);
            let mut started = entry(
                run.started_at,
                TimelineKind::RunStarted,
                format!("run {} started ({} tests)", run.run_id, run.tests.len()),
            );
            started.run_id = Some(run.run_id.clone());
            self.push(started);
        }
        let finished = matches!(run.status, RunStatus::Completed | RunStatus::Failed);
        let recorded = self
            .last_run
            .as_ref()
            .is_some_and(|(_, recorded)| *recorded);
        if finished && !recorded {
            self.last_run = Some((run.run_id.clone(), true));
            let mut ended = entry(now, TimelineKind::RunFinished, run_summary(run));
            ended.run_id = Some(run.run_id.clone());
            ended.run_status = Some(run.status);
            self.push(ended);
        }
    }

    fn push(&mut self, entry: TimelineEntry) {
        self.timeline.push(entry);
        if self.timeline.len() > MAX_TIMELINE {
            // Keep DETECTED, the entry that says why the incident exists.
            self.timeline.remove(1);
        }
    }
}

fn entry(at: DateTime<Utc>, kind: TimelineKind, summary: String) -> TimelineEntry {
    TimelineEntry {
        at,
        kind,
        summary,
        run_id: None,
        run_status: None,
        status: None,
        plan_id: None,
    }
}

/// One line about a finished run: `all 5 tests passed` or `2 of 5 tests failed (Checkout, Health)`.
fn run_summary(run: &TestRun) -> String {
    let failed: Vec<&str> = run
        .tests
        .iter()
        .filter(|test| test.status != TestStatus::Pass)
        .map(|test| test.name.as_str())
        .collect();
    if run.status == RunStatus::Completed && failed.is_empty() {
        format!("all {} tests passed", run.tests.len())
    } else {
        let reason = run.tests.iter().find_map(|test| {
            test.details
                .as_deref()
                .filter(|d| d.starts_with("run failed"))
        });
        match reason {
            Some(reason) if failed.len() == run.tests.len() => reason.to_owned(),
            _ => format!(
                "{} of {} tests failed ({})",
                failed.len(),
                run.tests.len(),
                failed.join(", ")
            ),
        }
    }
}
