//! Persistence of the engine: [`Snapshot`], an image of the whole state (with the configuration it ran with). With
//! the journal's images ([`RecordedInput`](super::RecordedInput) in `recorded.rs`,
//! [`RecordedConfig`](super::RecordedConfig) in `config_image.rs`) these are the only places in the core that derive
//! `Serialize` and `Deserialize`.
//!
//! Both are explicit, versioned formats, separate from the in-memory types on purpose: the engine's phases can
//! change shape without breaking a journal written by an older build, and a newer format is refused with a clear
//! error instead of being misread ([`SNAPSHOT_FORMAT`], [`RestoreError::UnsupportedFormat`]).
//! The core stays sans-IO: it turns state into values a store can serialize (with any serde format) and back; the
//! store, the files and the clock belong to the driver.
//!
//! The guarantee, checked by a property test: for any input sequence, restoring a snapshot taken between two
//! inputs and feeding both engines the same remaining inputs gives the same effects; and replaying the
//! [`RecordedInput`]s of a journal into a fresh engine gives the same effects as the original run.
//!
//! After a restart, the driver restores the engine (from a snapshot, then the journal's tail) and feeds
//! [`Input::Restarted`](super::Input::Restarted): the effects that were in flight died with the old process, and the engine re-issues or
//! closes each one with a reason.

use fixloop_contract::chrono::{DateTime, Utc};
use fixloop_contract::{IncidentCard, IncidentState, Plan, SystemStatus, TestRun, TimelineEntry};
use serde::{Deserialize, Serialize};
use tracing::info_span;

use super::blindness::Blindness;
use super::config_image::RecordedConfig;
use super::detection::FiringAlerts;
use super::history::{History, IncidentRecord};
use super::phase::{Healthy, IncidentActive, OpenIncident, Phase, Recovered, Validating};
use super::planning::{self, Planning};
use super::polling::Polling;
use super::recovery::GateNotes;
use super::remediation::RemediationImage;
use super::runs::{ActiveRun, FinishedRun, RunLog, RunSlot};
use super::shared::Shared;
use super::signals::{SampleClass, Signals};
use super::{Config, Engine, PlannerChoice, after};
use crate::ids::{EffectId, IncidentId, PlanId, RunId};

/// The snapshot format this build writes and reads.
pub const SNAPSHOT_FORMAT: u32 = 1;

/// An image of an engine's whole state at one moment, taken by [`Engine::snapshot`] and turned back into an engine
/// by [`Engine::restore`]. Serialize it with any serde format; its fields are private so that only an engine makes
/// one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    format: u32,
    service: String,
    id_prefix: String,
    now: DateTime<Utc>,
    status: SystemStatus,
    published_numbers: (f64, f64),
    next_incident: u64,
    next_run: u64,
    next_plan: u64,
    next_effect: u64,
    runs: Vec<TestRun>,
    closed: Vec<IncidentCard>,
    signals: SignalsImage,
    firing_alerts: Vec<String>,
    blindness: BlindnessImage,
    phase: PhaseImage,
    /// Added within format 1: a snapshot written before incident history existed restores with none.
    #[serde(default)]
    history: Vec<IncidentRecordImage>,
    /// Added within format 1: a snapshot written before the engine polled by itself restores with a read due at
    /// once.
    #[serde(default)]
    polling: Option<PollingImage>,
    /// Added within format 1: the configuration the engine had (a snapshot written before it was recorded has
    /// none, and a replay of it needs the configuration from its caller).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    config: Option<Box<RecordedConfig>>,
    /// Added within format 1: a snapshot written before remediation existed restores with none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    remediation: Option<RemediationImage>,
}

/// The engine's polling timer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct PollingImage {
    next_read_at: Option<DateTime<Utc>>,
    in_flight: Option<DateTime<Utc>>,
    measurement_start: Option<DateTime<Utc>>,
}

impl Snapshot {
    /// The format of this snapshot ([`SNAPSHOT_FORMAT`] when this build wrote it).
    #[must_use]
    pub fn format(&self) -> u32 {
        self.format
    }

    /// The engine's clock when the snapshot was taken (the latest `now` it had seen).
    #[must_use]
    pub fn taken_at(&self) -> DateTime<Utc> {
        self.now
    }

    /// The name of the watched service.
    #[must_use]
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The prefix of the engine's ids; a restored engine keeps it, so its ids continue the same series.
    #[must_use]
    pub fn id_prefix(&self) -> &str {
        &self.id_prefix
    }

    /// The configuration the engine had when the snapshot was taken (`None` for a snapshot written before
    /// configurations were recorded): what a replay restores it with.
    #[must_use]
    pub fn config(&self) -> Option<Config> {
        self.config
            .as_deref()
            .map(|image| image.clone().into_config())
    }

    /// Whether both snapshots describe the same state; their configurations are compared only when both record
    /// one (a snapshot an older build wrote records none).
    #[must_use]
    pub fn same_state_as(&self, other: &Self) -> bool {
        if self.config.is_some() && other.config.is_some() {
            return self == other;
        }
        let strip = |snapshot: &Self| Self {
            config: None,
            ..snapshot.clone()
        };
        strip(self) == strip(other)
    }
}

/// Why [`Engine::snapshot`] could not take a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// Effects are waiting in the queue; a snapshot is taken after draining [`Engine::poll_effect`].
    #[error("{0} effects are not drained yet; drain poll_effect before taking a snapshot")]
    EffectsPending(usize),
}

/// Why [`Engine::restore`] refused a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// The snapshot was written in a format this build does not know (a newer FixLoop wrote it).
    #[error("snapshot format {found} is not supported (this build reads format {supported})")]
    UnsupportedFormat {
        /// The snapshot's format.
        found: u32,
        /// The format this build reads.
        supported: u32,
    },
    /// The snapshot belongs to another service than the configuration's.
    #[error("the snapshot is of service {found:?}, the configuration watches {expected:?}")]
    OtherService {
        /// The configuration's service.
        expected: String,
        /// The snapshot's service.
        found: String,
    },
}

impl Engine {
    /// An image of the whole state, for a store. Take it after draining [`Engine::poll_effect`].
    ///
    /// # Errors
    ///
    /// [`SnapshotError::EffectsPending`] when effects wait in the queue (they are not part of a snapshot).
    pub fn snapshot(&self) -> Result<Snapshot, SnapshotError> {
        let shared = &self.shared;
        if !shared.effects.is_empty() {
            return Err(SnapshotError::EffectsPending(shared.effects.len()));
        }
        Ok(Snapshot {
            format: SNAPSHOT_FORMAT,
            service: shared.config.service.name.clone(),
            id_prefix: shared.config.id_prefix.clone(),
            now: shared.now,
            status: shared.status.clone(),
            published_numbers: shared.published_numbers,
            next_incident: shared.next_incident,
            next_run: shared.next_run,
            next_plan: shared.next_plan,
            next_effect: shared.next_effect,
            runs: shared.runs.iter().cloned().collect(),
            closed: shared.closed.iter().cloned().collect(),
            signals: SignalsImage::of(&shared.signals),
            firing_alerts: shared.firing_alerts.keys().cloned().collect(),
            blindness: BlindnessImage::of(&shared.blindness),
            phase: PhaseImage::of(&self.phase),
            history: shared
                .history
                .records
                .iter()
                .map(IncidentRecordImage::of)
                .collect(),
            polling: Some(PollingImage {
                next_read_at: shared.polling.next_read_at,
                in_flight: shared.polling.in_flight,
                measurement_start: shared.polling.measurement_start,
            }),
            config: Some(Box::new(RecordedConfig::from(&shared.config))),
            remediation: Some(RemediationImage::of(&shared.remediation)),
        })
    }

    /// The engine a snapshot describes, configured by `config` (the service's profile as it is now). Its ids
    /// continue the snapshot's series (its `id_prefix` is kept); everything else comes from `config`.
    ///
    /// When the open incident's plan no longer passes `config`'s policy (the profile changed), the incident goes
    /// back to planning: a run that was in flight is marked FAILED, the status becomes INCIDENT_ACTIVE (published:
    /// drain [`Engine::poll_effect`]), and a new plan is requested at the next call.
    /// Effects that were in flight when the snapshot was taken are not re-issued by this call: feed
    /// [`Input::Restarted`](super::Input::Restarted) next.
    ///
    /// # Errors
    ///
    /// [`RestoreError::UnsupportedFormat`] for a snapshot of another format, [`RestoreError::OtherService`] for one
    /// of another service.
    pub fn restore(mut config: Config, snapshot: Snapshot) -> Result<Self, RestoreError> {
        if snapshot.format != SNAPSHOT_FORMAT {
            return Err(RestoreError::UnsupportedFormat {
                found: snapshot.format,
                supported: SNAPSHOT_FORMAT,
            });
        }
        if snapshot.service != config.service.name {
            return Err(RestoreError::OtherService {
                expected: config.service.name,
                found: snapshot.service,
            });
        }
        config.id_prefix = snapshot.id_prefix;
        let now = snapshot.now;
        let mut shared = Shared::new(config, now);
        shared.status = snapshot.status;
        shared.published_numbers = snapshot.published_numbers;
        shared.next_incident = snapshot.next_incident;
        shared.next_run = snapshot.next_run;
        shared.next_plan = snapshot.next_plan;
        shared.next_effect = snapshot.next_effect;
        shared.runs = RunLog::from_runs(snapshot.runs);
        shared.closed = snapshot.closed.into();
        shared.signals = snapshot.signals.into_signals();
        shared.firing_alerts = FiringAlerts::from_keys(snapshot.firing_alerts);
        shared.blindness = snapshot.blindness.into_blindness();
        if let Some(polling) = snapshot.polling {
            shared.polling = Polling {
                next_read_at: polling.next_read_at,
                in_flight: polling.in_flight,
                measurement_start: polling.measurement_start,
            };
        }
        // Before the phase: restoring it may publish (a plan that no longer validates), and the history records it.
        shared.history = History {
            records: snapshot
                .history
                .into_iter()
                .map(IncidentRecordImage::into_record)
                .collect(),
        };
        if let Some(remediation) = snapshot.remediation {
            shared.remediation = remediation.into_state();
        }
        let phase = snapshot.phase.into_phase(&mut shared, now);
        Ok(Self { phase, shared })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct IncidentRecordImage {
    incident_id: String,
    detected_at: DateTime<Utc>,
    first_hot_sample_at: Option<DateTime<Utc>>,
    first_run_at: Option<DateTime<Utc>>,
    recovered_at: Option<DateTime<Utc>>,
    closed_at: Option<DateTime<Utc>>,
    resolution: Option<String>,
    last_status: Option<IncidentState>,
    last_run: Option<(String, bool)>,
    timeline: Vec<TimelineEntry>,
}

impl IncidentRecordImage {
    fn of(record: &IncidentRecord) -> Self {
        Self {
            incident_id: record.incident_id.as_str().to_owned(),
            detected_at: record.detected_at,
            first_hot_sample_at: record.first_hot_sample_at,
            first_run_at: record.first_run_at,
            recovered_at: record.recovered_at,
            closed_at: record.closed_at,
            resolution: record.resolution.clone(),
            last_status: record.last_status,
            last_run: record.last_run.clone(),
            timeline: record.timeline.clone(),
        }
    }

    fn into_record(self) -> IncidentRecord {
        IncidentRecord {
            incident_id: IncidentId::new(self.incident_id),
            detected_at: self.detected_at,
            first_hot_sample_at: self.first_hot_sample_at,
            first_run_at: self.first_run_at,
            recovered_at: self.recovered_at,
            closed_at: self.closed_at,
            resolution: self.resolution,
            last_status: self.last_status,
            last_run: self.last_run,
            timeline: self.timeline,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SignalsImage {
    window: Vec<(DateTime<Utc>, bool)>,
    streak: u32,
    last: Option<(DateTime<Utc>, SampleClassImage)>,
    top_error: Option<String>,
    /// Added within format 1 (with the engine's own polling), like the three fields below.
    #[serde(default)]
    last_read_at: Option<DateTime<Utc>>,
    #[serde(default)]
    extending: Option<(u64, Option<f64>)>,
    #[serde(default)]
    inconclusive: u32,
    #[serde(default)]
    inconclusive_reason: Option<String>,
}

impl SignalsImage {
    fn of(signals: &Signals) -> Self {
        Self {
            window: signals.window.iter().copied().collect(),
            streak: signals.streak,
            last: signals
                .last
                .map(|(at, class)| (at, SampleClassImage::of(class))),
            top_error: signals.top_error.clone(),
            last_read_at: signals.last_read_at,
            extending: signals.extending,
            inconclusive: signals.inconclusive,
            inconclusive_reason: signals.inconclusive_reason.clone(),
        }
    }

    fn into_signals(self) -> Signals {
        Signals {
            window: self.window.into(),
            streak: self.streak,
            last: self.last.map(|(at, class)| (at, class.into_class())),
            top_error: self.top_error,
            // A snapshot from before `last_read_at` existed: the latest measurement was the latest read.
            last_read_at: self.last_read_at.or(self.last.map(|(at, _)| at)),
            extending: self.extending,
            inconclusive: self.inconclusive,
            inconclusive_reason: self.inconclusive_reason,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "class", rename_all = "snake_case")]
enum SampleClassImage {
    NoData,
    TooFewRequests { requests: u64 },
    Unhealthy { error_rate: f64 },
    Healthy { error_rate: f64 },
}

impl SampleClassImage {
    fn of(class: SampleClass) -> Self {
        match class {
            SampleClass::NoData => Self::NoData,
            SampleClass::TooFewRequests(requests) => Self::TooFewRequests { requests },
            SampleClass::Unhealthy(error_rate) => Self::Unhealthy { error_rate },
            SampleClass::Healthy(error_rate) => Self::Healthy { error_rate },
        }
    }

    fn into_class(self) -> SampleClass {
        match self {
            Self::NoData => SampleClass::NoData,
            Self::TooFewRequests { requests } => SampleClass::TooFewRequests(requests),
            Self::Unhealthy { error_rate } => SampleClass::Unhealthy(error_rate),
            Self::Healthy { error_rate } => SampleClass::Healthy(error_rate),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct BlindnessImage {
    failures: u32,
    reason: Option<String>,
    probe: Option<u64>,
    next_probe_at: Option<DateTime<Utc>>,
    /// Added within format 1.
    #[serde(default)]
    probes_failing: bool,
}

impl BlindnessImage {
    fn of(blindness: &Blindness) -> Self {
        Self {
            failures: blindness.failures,
            reason: blindness.reason.clone(),
            probe: blindness.probe.map(|effect| effect.0),
            next_probe_at: blindness.next_probe_at,
            probes_failing: blindness.probes_failing,
        }
    }

    fn into_blindness(self) -> Blindness {
        Blindness {
            failures: self.failures,
            reason: self.reason,
            probe: self.probe.map(EffectId),
            next_probe_at: self.next_probe_at,
            probes_failing: self.probes_failing,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "SCREAMING_SNAKE_CASE")]
enum PhaseImage {
    Healthy {
        cooldown_until: Option<DateTime<Utc>>,
    },
    IncidentActive {
        incident: IncidentImage,
        planning: PlanningImage,
    },
    Validating {
        incident: IncidentImage,
        plan: Plan,
        run: RunImage,
        rerun_pending: bool,
        logged_blocker: Option<String>,
        /// Added within format 1 (the inconclusive limit), like `inconclusive_noted`.
        #[serde(default)]
        needs_human: bool,
        #[serde(default)]
        inconclusive_noted: bool,
    },
    Recovered {
        incident: IncidentImage,
        plan: Plan,
        latest_run: String,
        soak_until: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct IncidentImage {
    card: IncidentCard,
    titled_by_rate: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
enum PlanningImage {
    FetchingContext {
        effect: u64,
        deadline: DateTime<Utc>,
    },
    Requesting {
        effect: u64,
        /// Added within format 1: a snapshot written before the engine issued plan ids with its requests restores
        /// with a new one.
        #[serde(default)]
        plan_id: Option<String>,
        attempt: u32,
        rules: bool,
        deadline: DateTime<Utc>,
        /// Added within format 1: a snapshot written before planning budgets restores with a budget from the
        /// restore.
        #[serde(default)]
        budget_ends_at: Option<DateTime<Utc>>,
    },
    Waiting {
        retry_at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "slot", rename_all = "snake_case")]
enum RunImage {
    Running {
        effect: u64,
        run_id: String,
        deadline: DateTime<Utc>,
    },
    Idle {
        run_id: String,
        passed: bool,
        summary: String,
        next_rerun_at: DateTime<Utc>,
    },
}

impl PhaseImage {
    fn of(phase: &Phase) -> Self {
        match phase {
            Phase::Healthy(healthy) => Self::Healthy {
                cooldown_until: healthy.cooldown_until,
            },
            Phase::IncidentActive(active) => Self::IncidentActive {
                incident: IncidentImage::of(&active.incident),
                planning: match &active.planning {
                    Planning::FetchingContext { effect, deadline } => {
                        PlanningImage::FetchingContext {
                            effect: effect.0,
                            deadline: *deadline,
                        }
                    }
                    Planning::Requesting {
                        effect,
                        plan_id,
                        attempt,
                        planner,
                        deadline,
                        budget_ends_at,
                    } => PlanningImage::Requesting {
                        effect: effect.0,
                        plan_id: Some(plan_id.as_str().to_owned()),
                        attempt: *attempt,
                        rules: *planner == PlannerChoice::Rules,
                        deadline: *deadline,
                        budget_ends_at: Some(*budget_ends_at),
                    },
                    Planning::Waiting { retry_at } => PlanningImage::Waiting {
                        retry_at: *retry_at,
                    },
                },
            },
            Phase::Validating(validating) => Self::Validating {
                incident: IncidentImage::of(&validating.incident),
                plan: validating.plan.plan().clone(),
                run: match &validating.run {
                    RunSlot::Running(run) => RunImage::Running {
                        effect: run.effect.0,
                        run_id: run.run_id.as_str().to_owned(),
                        deadline: run.deadline,
                    },
                    RunSlot::Idle(run) => RunImage::Idle {
                        run_id: run.run_id.as_str().to_owned(),
                        passed: run.passed,
                        summary: run.summary.clone(),
                        next_rerun_at: run.next_rerun_at,
                    },
                },
                rerun_pending: validating.rerun_pending,
                logged_blocker: validating.gate.logged_blocker.clone(),
                needs_human: validating.gate.needs_human,
                inconclusive_noted: validating.gate.inconclusive_noted,
            },
            Phase::Recovered(recovered) => Self::Recovered {
                incident: IncidentImage::of(&recovered.incident),
                plan: recovered.plan.plan().clone(),
                latest_run: recovered.latest_run.as_str().to_owned(),
                soak_until: recovered.soak_until,
            },
        }
    }

    fn into_phase(self, shared: &mut Shared, now: DateTime<Utc>) -> Phase {
        match self {
            Self::Healthy { cooldown_until } => Phase::Healthy(Healthy { cooldown_until }),
            Self::IncidentActive { incident, planning } => Phase::IncidentActive(IncidentActive {
                incident: incident.into_incident(),
                planning: match planning {
                    PlanningImage::FetchingContext { effect, deadline } => {
                        Planning::FetchingContext {
                            effect: EffectId(effect),
                            deadline,
                        }
                    }
                    PlanningImage::Requesting {
                        effect,
                        plan_id,
                        attempt,
                        rules,
                        deadline,
                        budget_ends_at,
                    } => Planning::Requesting {
                        effect: EffectId(effect),
                        plan_id: plan_id.map_or_else(|| shared.plan_id(), PlanId::new),
                        budget_ends_at: budget_ends_at
                            .unwrap_or_else(|| after(now, shared.config.plan_budget)),
                        attempt,
                        planner: if rules {
                            PlannerChoice::Rules
                        } else {
                            PlannerChoice::Configured
                        },
                        deadline,
                    },
                    PlanningImage::Waiting { retry_at } => Planning::Waiting { retry_at },
                },
            }),
            Self::Validating {
                incident,
                plan,
                run,
                rerun_pending,
                logged_blocker,
                needs_human,
                inconclusive_noted,
            } => {
                let incident = incident.into_incident();
                let running = match &run {
                    RunImage::Running { run_id, .. } => Some(run_id.clone()),
                    RunImage::Idle { .. } => None,
                };
                let Some(plan) =
                    planning::revalidate(plan, shared, &incident, running.as_deref(), now)
                else {
                    return planning::replan(incident, shared, now);
                };
                Phase::Validating(Validating {
                    incident,
                    plan,
                    run: match run {
                        RunImage::Running {
                            effect,
                            run_id,
                            deadline,
                        } => RunSlot::Running(ActiveRun {
                            effect: EffectId(effect),
                            run_id: RunId::new(run_id),
                            deadline,
                        }),
                        RunImage::Idle {
                            run_id,
                            passed,
                            summary,
                            next_rerun_at,
                        } => RunSlot::Idle(FinishedRun {
                            run_id: RunId::new(run_id),
                            passed,
                            summary,
                            next_rerun_at,
                        }),
                    },
                    rerun_pending,
                    gate: GateNotes {
                        logged_blocker,
                        needs_human,
                        inconclusive_noted,
                    },
                })
            }
            Self::Recovered {
                incident,
                plan,
                latest_run,
                soak_until,
            } => {
                let incident = incident.into_incident();
                let Some(plan) = planning::revalidate(plan, shared, &incident, None, now) else {
                    return planning::replan(incident, shared, now);
                };
                Phase::Recovered(Recovered {
                    incident,
                    plan,
                    latest_run: RunId::new(latest_run),
                    soak_until,
                })
            }
        }
    }
}

impl IncidentImage {
    fn of(incident: &OpenIncident) -> Self {
        Self {
            card: incident.card.clone(),
            titled_by_rate: incident.titled_by_rate,
        }
    }

    fn into_incident(self) -> OpenIncident {
        let id = IncidentId::new(self.card.incident_id.clone());
        OpenIncident {
            span: info_span!("incident", incident_id = %id),
            id,
            card: self.card,
            titled_by_rate: self.titled_by_rate,
        }
    }
}
