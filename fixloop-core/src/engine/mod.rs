//! The system-level incident state machine (SKELETON: the public shape is fixed, the behaviour is to be written).
//!
//! Driving contract: after every `handle_*` call, drain [`Engine::poll_effect`] until `None`, then read
//! [`Engine::poll_timeout`] and wait until it (or the next input), then call [`Engine::handle_timeout`].

use std::collections::VecDeque;
use std::time::Duration;

use fixloop_contract::chrono::{DateTime, Utc};
use fixloop_contract::{
    CopilotAnswer, IncidentCard, IncidentState, Link, Plan, SystemStatus, TestRun, TestStatus,
    WsEnvelope,
};

use crate::ids::{EffectId, IncidentId, RunId};
use crate::policy::Policy;
use crate::rule_planner::PlanContext;
use crate::validate::{ValidatedPlan, Violation};

/// Tunables of the engine. Every threshold is a ratio (0.05 is 5%), every duration a `std::time::Duration`.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Name of the monitored service.
    pub service: String,
    /// Base URL of the service under test, used for plan context and the validation policy.
    pub base_url: String,
    /// Prefix of generated ids, so ids differ across processes (for example the start time in hex).
    pub id_prefix: String,
    /// The plan validation policy.
    pub policy: Policy,
    /// Error rate above which an incident opens (default 0.05).
    pub trigger_error_rate: f64,
    /// Error rate below which the signal gate holds (default 0.01, lower than the trigger: hysteresis).
    pub recovery_error_rate: f64,
    /// Detection window; samples older than this are forgotten (default 5 minutes).
    pub detection_window: Duration,
    /// Samples within the window needed before the trigger fires (default 3).
    pub min_samples: u32,
    /// Consecutive healthy samples needed for the signal gate (default 3).
    pub recovery_samples: u32,
    /// Requests a sample must have observed to count as healthy (default 20).
    pub min_requests: u64,
    /// Period of automatic reruns while an incident is open (default 30 s).
    pub rerun_interval: Duration,
    /// After RECOVERED, a relapse within this window reopens the same incident (default 2 minutes).
    pub soak_window: Duration,
    /// After an incident closes, no new incident opens from polling for this long (default 1 minute).
    pub cooldown: Duration,
    /// Deadline of context fetches and plan requests (default 30 s).
    pub plan_deadline: Duration,
    /// Deadline of a validation run (default 60 s).
    pub run_deadline: Duration,
    /// LLM attempts before falling back to the rule planner (default 3: the first try and two re-requests).
    pub max_plan_attempts: u32,
}

/// A fact the engine is told about, in the past tense.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Input {
    /// The signal source produced a sample.
    SignalSampled(SignalSample),
    /// An alerting system fired an alert.
    AlertFired(Alert),
    /// An alerting system resolved an alert.
    AlertResolved {
        /// The alert's dedupe key.
        dedupe_key: String,
    },
    /// An operator asked for a simulated incident.
    SimulateOn,
    /// An operator closed the simulated (or current) incident.
    SimulateOff,
    /// An operator set the demo service's bug.
    BugToggled {
        /// The new state.
        enabled: bool,
    },
    /// The answer to [`Effect::FetchContext`].
    ContextFetched {
        /// The effect answered.
        effect: EffectId,
        /// The context, or why it could not be fetched.
        result: Result<IncidentContext, PortFailure>,
    },
    /// The answer to [`Effect::RequestPlan`]: a candidate plan, not validated yet.
    PlanProposed {
        /// The effect answered.
        effect: EffectId,
        /// The candidate.
        plan: Plan,
    },
    /// The planner failed to produce a candidate.
    PlanGenerationFailed {
        /// The effect answered.
        effect: EffectId,
        /// Why.
        failure: PortFailure,
    },
    /// One test of a run changed status.
    TestProgressed {
        /// The [`Effect::StartRun`] this belongs to.
        effect: EffectId,
        /// The plan item's test id.
        test_id: String,
        /// The new status.
        status: TestStatus,
        /// The evaluator's one-line explanation.
        details: Option<String>,
    },
    /// A run ended.
    RunFinished {
        /// The [`Effect::StartRun`] answered.
        effect: EffectId,
        /// Ok when the runner completed (test verdicts come through [`Input::TestProgressed`]), or why it failed.
        result: Result<(), PortFailure>,
    },
    /// An operator asked for a run of the incident's current plan.
    OperatorRequestedRun {
        /// The incident named in the request.
        incident_id: IncidentId,
    },
    /// The copilot answered a question (published as `copilot.answer`).
    CopilotAnswered(CopilotAnswer),
}

/// A request the driver must carry out, in the imperative.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Effect {
    /// Send this message to every WebSocket client.
    Publish(WsEnvelope),
    /// Fetch the incident's context (signals, top error, evidence links); answer with [`Input::ContextFetched`].
    FetchContext {
        /// Id to answer with.
        effect: EffectId,
        /// The incident.
        incident_id: IncidentId,
    },
    /// Ask a planner for a candidate plan; answer with [`Input::PlanProposed`] or [`Input::PlanGenerationFailed`].
    RequestPlan {
        /// Id to answer with.
        effect: EffectId,
        /// What the planner knows.
        context: PlanContext,
        /// 1 for the first attempt.
        attempt: u32,
        /// The previous attempt's violations, empty on the first attempt.
        previous_violations: Vec<Violation>,
        /// Which planner to use.
        planner: PlannerChoice,
    },
    /// Run a validated plan; report with [`Input::TestProgressed`] and [`Input::RunFinished`].
    StartRun {
        /// Id to answer with.
        effect: EffectId,
        /// The run's id (as in `TestRun.run_id`).
        run_id: RunId,
        /// The plan to run.
        plan: ValidatedPlan,
    },
    /// Stop a run; its late answers will be ignored.
    CancelRun {
        /// The [`Effect::StartRun`] to cancel.
        effect: EffectId,
    },
}

/// Which planner a [`Effect::RequestPlan`] is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlannerChoice {
    /// The configured planner (the LLM when keys are set).
    Configured,
    /// The deterministic rule planner (fallback after repeated invalid plans).
    Rules,
}

/// A sample from the signal source.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalSample {
    /// When the sample was taken.
    pub at: DateTime<Utc>,
    /// Error ratio over the source's window, `None` when there was no traffic.
    pub error_rate: Option<f64>,
    /// p95 latency in ms, `None` when there was no traffic.
    pub p95_latency_ms: Option<f64>,
    /// Most frequent error signature.
    pub top_error: Option<String>,
    /// Requests observed over the window.
    pub requests: u64,
}

/// An alert from Datadog, Alertmanager or another source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// Where it came from (`"datadog"`, `"alertmanager"`).
    pub source: String,
    /// Key that identifies repeats of the same alert.
    pub dedupe_key: String,
    /// The monitor's id, if the source has one.
    pub monitor_id: Option<String>,
    /// Alert title.
    pub title: String,
}

/// What the context fetch found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IncidentContext {
    /// Error ratio over the window.
    pub error_rate: f64,
    /// p95 latency in ms.
    pub p95_latency_ms: f64,
    /// Most frequent error signature.
    pub top_error: Option<String>,
    /// Links to the telemetry.
    pub evidence_links: Vec<Link>,
}

/// How a port call failed, as the core classifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PortFailure {
    /// No answer in time.
    Timeout,
    /// The vendor asked us to slow down.
    RateLimited {
        /// How long to wait, if it said.
        retry_after: Option<Duration>,
    },
    /// Credentials rejected.
    Unauthorized,
    /// The answer could not be understood.
    InvalidResponse(String),
    /// The vendor could not be reached or failed.
    Unavailable(String),
}

/// An input that does not apply in the current phase; the state is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejected {
    /// The named incident does not exist.
    #[error("no incident has id {0}")]
    UnknownIncident(IncidentId),
    /// The named incident is closed.
    #[error("incident {0} is closed")]
    IncidentClosed(IncidentId),
    /// The incident has no validated plan yet.
    #[error("incident {0} has no validated plan yet")]
    PlanNotReady(IncidentId),
}

/// The system-level engine.
#[derive(Debug)]
pub struct Engine {
    config: Config,
    status: SystemStatus,
    effects: VecDeque<Effect>,
}

impl Engine {
    /// A healthy engine.
    #[must_use]
    pub fn new(config: Config, now: DateTime<Utc>) -> Self {
        Self {
            config,
            status: SystemStatus {
                status: IncidentState::Healthy,
                error_rate_5m: 0.0,
                p95_latency_ms_5m: 0.0,
                active_incident_id: None,
                updated_at: now,
            },
            effects: VecDeque::new(),
        }
    }

    /// Feeds a fact.
    ///
    /// # Errors
    ///
    /// [`Rejected`] when the input does not apply now; nothing changed.
    pub fn handle_input(&mut self, now: DateTime<Utc>, input: Input) -> Result<(), Rejected> {
        let _ = (now, input, &self.config);
        Ok(())
    }

    /// Tells the engine that time `now` has come (call when [`Engine::poll_timeout`] is due).
    pub fn handle_timeout(&mut self, now: DateTime<Utc>) {
        let _ = now;
    }

    /// The next effect to carry out.
    #[must_use]
    pub fn poll_effect(&mut self) -> Option<Effect> {
        self.effects.pop_front()
    }

    /// When [`Engine::handle_timeout`] must next be called, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<DateTime<Utc>> {
        None
    }

    /// The current status (`GET /api/status`).
    #[must_use]
    pub fn status(&self) -> &SystemStatus {
        &self.status
    }

    /// The open incident, if any (`GET /api/incidents/current`).
    #[must_use]
    pub fn current_incident(&self) -> Option<&IncidentCard> {
        None
    }

    /// Whether an incident with this id exists (open or closed).
    #[must_use]
    pub fn has_incident(&self, incident_id: &IncidentId) -> bool {
        let _ = incident_id;
        false
    }

    /// The latest run of the open incident, if any.
    #[must_use]
    pub fn current_run(&self) -> Option<&TestRun> {
        None
    }

    /// A run of this engine's lifetime, current or past (`GET /api/tests/runs/{run_id}`).
    #[must_use]
    pub fn run(&self, run_id: &RunId) -> Option<&TestRun> {
        let _ = run_id;
        None
    }
}
