//! `fixloop replay`: feeds a service's journal through a restored engine offline and explains every decision.
//!
//! The journal (the [`Store`]) holds the fresh engine's first snapshot and every input and timer call the driver
//! made, in order. A replay restores the first snapshot with the configuration the server ran with and calls
//! `handle_input(at, input)` / `handle_timeout(at)` exactly as the driver did, draining the effects after each call.
//! The engine is deterministic, so the effects are the ones the live server produced: the replay reads them as
//! decisions (a status change, an incident opened, a plan rejected with its violations, a run finished with its
//! failing tests, RECOVERED with the gates that held) and, after every call while an incident is open, the
//! engine's [`recovery_blocker`](fixloop_core::engine::Engine::recovery_blocker) when it changed: the answer to
//! "why was it not RECOVERED yet". Nothing is carried out: no port is called, no client is told.
//!
//! The configuration matters (thresholds, the policy's allowed URLs): the replay checks itself against the latest
//! snapshot the server saved, and reports a divergence when the replayed state differs from the recorded one.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use fixloop_adapters::store::FILE_NAME;
use fixloop_adapters::{JournalEntry, SqliteStore, Store, StoreError};
use fixloop_contract::{IncidentState, RunStatus, TestStatus, WsEnvelope, WsMessage};
use fixloop_core::engine::{Config as EngineConfig, Effect, Engine, Input, PlannerChoice};
use serde::Serialize;

/// Entries read from the store per query (a long journal is read in pages, never all at once by SQLite).
const PAGE: usize = 10_000;

/// Why a replay could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The data directory holds no journal file.
    #[error("there is no journal at {0} (is --data the directory FixLoop ran with?)")]
    NoStore(PathBuf),
    /// A running FixLoop holds the store.
    #[error(
        "the journal at {0} is in use by a running FixLoop: stop it (or replay a copy of the directory), a replay reads the journal offline"
    )]
    Locked(PathBuf),
    /// The store has nothing for the service.
    #[error("the journal holds nothing for service {0:?}")]
    NoJournal(String),
    /// The first snapshot cannot be restored with this configuration.
    #[error("cannot restore the first snapshot of {service:?}: {why}")]
    Restore {
        /// The service.
        service: String,
        /// Why.
        why: String,
    },
    /// The store failed.
    #[error("reading the journal")]
    Store(#[source] StoreError),
}

/// One decision of the engine, read from its effects (or its recovery blocker) after one call.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Decision {
    /// The published status moved.
    Status {
        /// The status before.
        from: IncidentState,
        /// The status after.
        to: IncidentState,
        /// The incident it is about, if any.
        incident_id: Option<String>,
    },
    /// The signal source became blind, or sees again (`reason` is `None`).
    SignalsDegraded {
        /// Why the signals are degraded, or `None` when they are no longer.
        reason: Option<String>,
    },
    /// An incident opened.
    IncidentOpened {
        /// Its id.
        incident_id: String,
        /// Its title (why it opened).
        title: String,
    },
    /// The previous plan failed validation (the re-request carries its violations).
    PlanRejected {
        /// How many violations.
        violations: usize,
        /// The first one.
        first: String,
    },
    /// A plan was requested from a planner.
    PlanRequested {
        /// 1 for the first attempt.
        attempt: u32,
        /// `configured` or `rules` (the fallback).
        planner: String,
    },
    /// A plan passed validation.
    PlanValidated {
        /// The incident.
        incident_id: String,
        /// The plan.
        plan_id: String,
        /// How many tests it has.
        tests: usize,
    },
    /// A validation run started.
    RunStarted {
        /// The run.
        run_id: String,
        /// How many tests it runs.
        tests: usize,
    },
    /// A validation run ended.
    RunFinished {
        /// The run.
        run_id: String,
        /// COMPLETED or FAILED.
        status: RunStatus,
        /// The tests that did not pass, each with its details.
        failing: Vec<FailingTest>,
    },
    /// Why the open incident is not RECOVERED yet changed.
    NotRecoveredYet {
        /// The incident.
        incident_id: String,
        /// The engine's reason, in one line.
        blocker: String,
    },
    /// RECOVERED was declared.
    Recovered {
        /// The incident.
        incident_id: String,
        /// The run whose verdict held.
        run_id: Option<String>,
        /// The gates that held, and the one this call closed.
        reason: String,
    },
    /// The incident closed (the status went back to HEALTHY).
    IncidentClosed {
        /// The incident.
        incident_id: String,
    },
}

/// A test of a finished run that did not pass.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailingTest {
    /// The plan item's test id.
    pub test_id: String,
    /// Its status.
    pub status: TestStatus,
    /// The evaluator's explanation.
    pub details: Option<String>,
}

/// One journaled call, replayed.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The entry's position in the journal.
    pub seq: u64,
    /// The `now` of the call.
    pub at: DateTime<Utc>,
    /// The input, in short (`timer` for a `handle_timeout` call).
    pub input: String,
    /// What the engine decided.
    pub decisions: Vec<Decision>,
    /// The open incident before the call.
    pub incident_before: Option<String>,
    /// The open incident after the call.
    pub incident_after: Option<String>,
}

/// A whole replay of one service's journal.
#[derive(Debug, Clone, PartialEq)]
pub struct Replay {
    /// The service.
    pub service: String,
    /// Every call, in order.
    pub steps: Vec<Step>,
    /// Every envelope the engine published during the replay, in order (what WebSocket clients were sent).
    pub published: Vec<WsEnvelope>,
    /// Where the replay does not match the journal (a gap, a state that differs from a saved snapshot): empty when
    /// the replay is exact.
    pub warnings: Vec<String>,
}

/// Opens the journal in `data_dir` for a replay, read-only: nothing in the directory is written, so a journal on a
/// read-only filesystem, or a file without write permission, is replayed as it is (see
/// [`SqliteStore::open_read_only`]).
///
/// # Errors
///
/// [`ReplayError::NoStore`] when the directory holds no journal, [`ReplayError::Locked`] when a running FixLoop
/// holds it, [`ReplayError::Store`] otherwise.
pub fn open_store(data_dir: &Path) -> Result<SqliteStore, ReplayError> {
    let file = data_dir.join(FILE_NAME);
    if !file.is_file() {
        return Err(ReplayError::NoStore(file));
    }
    SqliteStore::open_read_only(data_dir).map_err(|error| match error {
        StoreError::Locked { .. } => ReplayError::Locked(file),
        other => ReplayError::Store(other),
    })
}

/// Replays the whole journal of `config.service` in `store`, from its first snapshot.
///
/// # Errors
///
/// [`ReplayError::NoJournal`] when the store has nothing for the service, [`ReplayError::Restore`] when its first
/// snapshot does not fit `config`, [`ReplayError::Store`] when the store fails.
pub async fn replay(store: &dyn Store, config: EngineConfig) -> Result<Replay, ReplayError> {
    let service = config.service.name.clone();
    let latest = store
        .load(&service)
        .await
        .map_err(ReplayError::Store)?
        .snapshot;
    let (first, mut page) = store
        .history(&service, 0, PAGE)
        .await
        .map_err(ReplayError::Store)?;
    let Some((first_seq, first)) = first else {
        return Err(ReplayError::NoJournal(service));
    };
    let mut engine = Engine::restore(config, first).map_err(|error| ReplayError::Restore {
        service: service.clone(),
        why: error.to_string(),
    })?;
    let mut observer = Observer::new(&engine);
    let mut replay = Replay {
        service: service.clone(),
        steps: Vec::new(),
        published: Vec::new(),
        warnings: Vec::new(),
    };
    // Compaction may have dropped the entries before the first snapshot it kept: the replay starts there.
    let mut last_seq = first_seq;
    check_snapshot(&engine, latest.as_ref(), last_seq, &mut replay.warnings);
    loop {
        let full = page.len() == PAGE;
        for entry in page {
            if entry.seq != last_seq + 1 {
                replay.warnings.push(format!(
                    "entries {} to {} are missing (the journal was broken): the replay after them is not exact",
                    last_seq + 1,
                    entry.seq - 1
                ));
            }
            last_seq = entry.seq;
            let step = observer.step(&mut engine, entry, &mut replay.published);
            replay.steps.push(step);
            check_snapshot(&engine, latest.as_ref(), last_seq, &mut replay.warnings);
        }
        if !full {
            break;
        }
        page = store
            .history(&service, last_seq, PAGE)
            .await
            .map_err(ReplayError::Store)?
            .1;
    }
    Ok(replay)
}

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

/// What the replay remembers between calls to tell decisions from repeats.
#[derive(Debug)]
struct Observer {
    status: IncidentState,
    degraded: Option<String>,
    incident: Option<String>,
    blocker: Option<String>,
    runs: HashMap<String, RunStatus>,
}

impl Observer {
    fn new(engine: &Engine) -> Self {
        let status = engine.status();
        Self {
            status: status.status,
            degraded: status.signals_degraded.clone(),
            incident: status.active_incident_id.clone(),
            blocker: engine.recovery_blocker(),
            runs: HashMap::new(),
        }
    }

    /// Makes the entry's call on `engine` as the driver did, drains the effects, and reads the decisions.
    fn step(
        &mut self,
        engine: &mut Engine,
        entry: JournalEntry,
        published: &mut Vec<WsEnvelope>,
    ) -> Step {
        let incident_before = engine
            .current_incident()
            .map(|card| card.incident_id.clone());
        let input = match entry.input {
            Some(recorded) => {
                let input = recorded.into_input();
                let short = short_input(&input);
                // A rejected operator request changes nothing, as it did live.
                let _ = engine.handle_input(entry.at, input);
                short
            }
            None => {
                engine.handle_timeout(entry.at);
                "timer".to_owned()
            }
        };
        let mut decisions = Vec::new();
        let blocker_before = self.blocker.clone();
        while let Some(effect) = engine.poll_effect() {
            match effect {
                Effect::Publish(envelope) => {
                    self.published(engine, &envelope, blocker_before.as_deref(), &mut decisions);
                    published.push(envelope);
                }
                Effect::RequestPlan {
                    attempt,
                    previous_violations,
                    planner,
                    ..
                } => {
                    if let Some(first) = previous_violations.first() {
                        decisions.push(Decision::PlanRejected {
                            violations: previous_violations.len(),
                            first: first.to_string(),
                        });
                    }
                    decisions.push(Decision::PlanRequested {
                        attempt,
                        planner: match planner {
                            PlannerChoice::Configured => "configured",
                            PlannerChoice::Rules => "rules",
                        }
                        .to_owned(),
                    });
                }
                // Their outcomes come back as inputs and published events; the request itself decides nothing.
                Effect::FetchContext { .. }
                | Effect::StartRun { .. }
                | Effect::CancelRun { .. }
                | Effect::ProbeService { .. }
                | Effect::SampleSignals { .. } => {}
            }
        }
        let incident_after = engine
            .current_incident()
            .map(|card| card.incident_id.clone());
        let blocker = engine.recovery_blocker();
        if blocker != self.blocker {
            if let (Some(incident_id), Some(blocker)) = (&incident_after, &blocker) {
                decisions.push(Decision::NotRecoveredYet {
                    incident_id: incident_id.clone(),
                    blocker: blocker.clone(),
                });
            }
            self.blocker = blocker;
        }
        Step {
            seq: entry.seq,
            at: entry.at,
            input,
            decisions,
            incident_before,
            incident_after,
        }
    }

    fn published(
        &mut self,
        engine: &Engine,
        envelope: &WsEnvelope,
        blocker_before: Option<&str>,
        decisions: &mut Vec<Decision>,
    ) {
        match &envelope.message {
            WsMessage::SystemStatus(status) => {
                if status.signals_degraded != self.degraded {
                    self.degraded.clone_from(&status.signals_degraded);
                    decisions.push(Decision::SignalsDegraded {
                        reason: status.signals_degraded.clone(),
                    });
                }
                if status.status == self.status {
                    return;
                }
                let incident_id = status
                    .active_incident_id
                    .clone()
                    .or_else(|| self.incident.clone());
                decisions.push(Decision::Status {
                    from: self.status,
                    to: status.status,
                    incident_id: incident_id.clone(),
                });
                match (status.status, incident_id) {
                    (IncidentState::Recovered, Some(incident_id)) => {
                        let run = engine.current_run();
                        let tests = run.map_or(0, |run| run.tests.len());
                        let closed = match blocker_before {
                            Some(blocker) => format!("; before this call: {blocker}"),
                            None => String::new(),
                        };
                        decisions.push(Decision::Recovered {
                            incident_id,
                            run_id: run.map(|run| run.run_id.clone()),
                            reason: format!(
                                "all {tests} tests of the run passed and the signals are healthy{closed}"
                            ),
                        });
                    }
                    (IncidentState::Healthy, Some(incident_id)) => {
                        decisions.push(Decision::IncidentClosed { incident_id });
                    }
                    _ => {}
                }
                self.status = status.status;
                self.incident.clone_from(&status.active_incident_id);
            }
            WsMessage::IncidentCreated(card) => decisions.push(Decision::IncidentOpened {
                incident_id: card.incident_id.clone(),
                title: card.title.clone(),
            }),
            WsMessage::PlanGenerated(generated) => decisions.push(Decision::PlanValidated {
                incident_id: generated.incident_id.clone(),
                plan_id: generated.plan.plan_id.clone(),
                tests: generated.plan.items.len(),
            }),
            WsMessage::TestsUpdated(run) => {
                let before = self.runs.insert(run.run_id.clone(), run.status);
                if before.is_none() {
                    decisions.push(Decision::RunStarted {
                        run_id: run.run_id.clone(),
                        tests: run.tests.len(),
                    });
                }
                let finished = matches!(run.status, RunStatus::Completed | RunStatus::Failed);
                if finished && before != Some(run.status) {
                    decisions.push(Decision::RunFinished {
                        run_id: run.run_id.clone(),
                        status: run.status,
                        failing: run
                            .tests
                            .iter()
                            .filter(|test| test.status != TestStatus::Pass)
                            .map(|test| FailingTest {
                                test_id: test.test_id.clone(),
                                status: test.status,
                                details: test.details.clone(),
                            })
                            .collect(),
                    });
                }
            }
            // An answer is no decision; a stream reset is the hub's, never the engine's.
            WsMessage::CopilotAnswer(_) | WsMessage::StreamReset(_) => {}
        }
    }
}

/// Compares the replayed engine with the latest snapshot the server saved, once the replay reaches its seq.
fn check_snapshot(
    engine: &Engine,
    latest: Option<&(u64, fixloop_core::engine::Snapshot)>,
    seq: u64,
    warnings: &mut Vec<String>,
) {
    let Some((snapshot_seq, recorded)) = latest.filter(|(snapshot_seq, _)| *snapshot_seq == seq)
    else {
        return;
    };
    match engine.snapshot() {
        Ok(replayed) if replayed == *recorded => {}
        Ok(_) => warnings.push(format!(
            "after entry {snapshot_seq} the replayed engine differs from the snapshot the server saved: replay with \
             the configuration it ran with (--profile, --mode, --demo-url and the same environment)"
        )),
        Err(error) => warnings.push(format!("cannot compare with the saved snapshot: {error}")),
    }
}

/// An input in one line.
fn short_input(input: &Input) -> String {
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
    }
}

/// The wire spelling of an enum value (`INCIDENT_ACTIVE`, `FAIL`).
fn wire_name(value: &impl Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => "?".to_owned(),
    }
}
