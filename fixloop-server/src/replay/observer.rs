//! Reading decisions out of the engine's effects, one journaled call at a time.

use std::collections::HashMap;

use fixloop_adapters::JournalEntry;
use fixloop_contract::{IncidentState, RunStatus, TestStatus, WsEnvelope, WsMessage};
use fixloop_core::engine::{
    Config as EngineConfig, Effect, Engine, PlannerChoice, Recorded, RecordedConfig, RecordedInput,
};

use super::render::short_input;
use super::{Decision, FailingTest, Step};

/// What the replay remembers between calls to tell decisions from repeats.
#[derive(Debug)]
pub(super) struct Observer {
    status: IncidentState,
    degraded: Option<String>,
    incident: Option<String>,
    blocker: Option<String>,
    runs: HashMap<String, RunStatus>,
}

impl Observer {
    pub(super) fn new(engine: &Engine) -> Self {
        let status = engine.status();
        Self {
            status: status.status,
            degraded: status.signals_degraded.clone(),
            incident: status.active_incident_id.clone(),
            blocker: engine.recovery_blocker(),
            runs: HashMap::new(),
        }
    }

    /// Makes the entry's call on `engine` as the driver did, drains the effects, and reads the decisions; a
    /// recorded configuration restores the engine's state under it, as the driver's start did.
    pub(super) fn step(
        &mut self,
        engine: &mut Engine,
        entry: JournalEntry,
        published: &mut Vec<WsEnvelope>,
        warnings: &mut Vec<String>,
    ) -> Step {
        let incident_before = engine
            .current_incident()
            .map(|card| card.incident_id.clone());
        let mut decisions = Vec::new();
        let input = match entry.input.map(RecordedInput::into_recorded) {
            Some(Recorded::Input(input)) => {
                let short = short_input(&input);
                // A rejected operator request changes nothing, as it did live.
                let _ = engine.handle_input(entry.at, input);
                short
            }
            Some(Recorded::Configured { config, origin }) => {
                let changes = config_changes(engine.config(), &config);
                match engine
                    .snapshot()
                    .map_err(|error| error.to_string())
                    .and_then(|now| Engine::restore(*config, now).map_err(|e| e.to_string()))
                {
                    Ok(restored) => *engine = restored,
                    Err(why) => warnings.push(format!(
                        "entry {}: cannot switch to the recorded configuration ({why}); the replay goes on with \
                         the one before",
                        entry.seq
                    )),
                }
                let short = format!(
                    "configuration in force: {}",
                    origin.as_deref().unwrap_or("(origin not recorded)")
                );
                decisions.push(Decision::Configured { origin, changes });
                short
            }
            None => {
                engine.handle_timeout(entry.at);
                "timer".to_owned()
            }
        };
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
                | Effect::SampleSignals { .. }
                | Effect::ExecuteAction { .. }
                | Effect::CancelAction { .. }
                | Effect::ChooseAction { .. }
                | Effect::Notify(_) => {}
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
            // Remediation events are the driver's, read from the engine's proposals, never published by it.
            WsMessage::CopilotAnswer(_)
            | WsMessage::StreamReset(_)
            | WsMessage::RemediationProposed(_)
            | WsMessage::RemediationUpdated(_)
            | WsMessage::IncidentEscalated(_) => {}
        }
    }
}

/// Compares the replayed engine with the latest snapshot the server saved, once the replay reaches its seq.
pub(super) fn check_snapshot(
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
        Ok(replayed) if replayed.same_state_as(recorded) => {}
        Ok(_) => warnings.push(format!(
            "after entry {snapshot_seq} the replayed engine differs from the snapshot the server saved: replay with \
             the configuration it ran with (--profile, --mode, --demo-url and the same environment)"
        )),
        Err(error) => warnings.push(format!("cannot compare with the saved snapshot: {error}")),
    }
}

/// What differs between two configurations, one setting per line (`trigger_error_rate: 0.05 -> 0.1`; durations
/// as durations; the service's spec as one line naming what changed in it).
fn config_changes(before: &EngineConfig, after: &EngineConfig) -> Vec<String> {
    let image = |config: &EngineConfig| {
        serde_json::to_value(RecordedConfig::from(config)).unwrap_or(serde_json::Value::Null)
    };
    let (serde_json::Value::Object(before), serde_json::Value::Object(after)) =
        (image(before), image(after))
    else {
        return Vec::new();
    };
    let mut changes = Vec::new();
    for (key, new) in &after {
        let old = before.get(key).unwrap_or(&serde_json::Value::Null);
        if old == new {
            continue;
        }
        match (key.strip_suffix("_ns"), old.as_u64(), new.as_u64()) {
            (Some(name), Some(old), Some(new)) => changes.push(format!(
                "{name}: {:?} -> {:?}",
                std::time::Duration::from_nanos(old),
                std::time::Duration::from_nanos(new)
            )),
            _ if key == "service" => {
                let parts: Vec<&str> = ["base_url", "description", "policy", "journeys"]
                    .into_iter()
                    .filter(|part| old.get(part) != new.get(part))
                    .collect();
                changes.push(format!("service: {} changed", parts.join(", ")));
            }
            _ => changes.push(format!("{key}: {old} -> {new}")),
        }
    }
    changes.sort();
    changes
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn config_changes_name_each_setting_that_differs() {
        let spec = crate::profile::demo_profile("http://127.0.0.1:1").spec;
        let before = EngineConfig::seed(spec, "p");
        assert!(config_changes(&before, &before).is_empty());
        let mut after = before.clone();
        after.trigger_error_rate = 0.1;
        after.poll_interval = Duration::from_secs(6);
        after.service.base_url = "http://127.0.0.1:2".to_owned();
        assert_eq!(
            config_changes(&before, &after),
            [
                "poll_interval: 3s -> 6s",
                "service: base_url changed",
                "trigger_error_rate: 0.05 -> 0.1",
            ]
        );
    }
}
