//! The ports of FixLoop: the traits the server's driver calls to read signals, get a plan, run tests and answer
//! copilot questions, with the small request and response structs next to them; and, re-exported from their own
//! modules, the remediation ports that carry out an action ([`Executor`]) and tell people ([`Notifier`]).
//!
//! Ports are held as `Arc<dyn Port>`: they are written with `#[async_trait]` (boxed `Send` futures), take `&self`,
//! and have `Send + Sync + fmt::Debug` as supertraits. Every implementation makes one attempt per call; retries,
//! backoff and deadlines are the core's policy.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use fixloop_contract::chrono::{DateTime, Utc};
use fixloop_contract::{Link, Plan, TestStatus};
use fixloop_core::validate::Violation;
use fixloop_core::{PlanContext, PlanId, RunId, ValidatedPlan};

use crate::error::AdapterError;

/// The remediation ports, whose request and response types sit beside each trait in their own modules.
pub use crate::executor::{
    ActionDescription, ActionOutcome, ActionRequest, ActionStatus, Captured, Executor,
};
pub use crate::notifier::{Delivery, Notification, NotificationKind, Notifier};

/// What the copilot may know, and its answer: pure types of the core, beside the safety rule that reads them.
pub use fixloop_core::copilot::{Claim, CopilotReply, CopilotState};

/// Signals of the watched service over a window.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SignalReading {
    /// Error ratio in `[0, 1]`; `None` when there were no requests in the window.
    pub error_rate: Option<f64>,
    /// 95th percentile latency in milliseconds; `None` when there were no requests in the window.
    pub p95_latency_ms: Option<f64>,
    /// Requests observed in the window, excluding FixLoop's own validation traffic.
    pub requests: u64,
    /// The most frequent error signature, for example `"POST /checkout -> 500 payment provider timeout"`.
    pub top_error: Option<String>,
    /// Links to the telemetry the reading came from.
    pub evidence_links: Vec<Link>,
}

/// Reads the error rate, latency, top error and evidence of the watched service.
#[async_trait]
pub trait SignalSource: Send + Sync + fmt::Debug {
    /// Reads the service's signals over the trailing `window` (one attempt, bounded by the adapter's timeout).
    ///
    /// # Errors
    ///
    /// An [`AdapterError`] whose [`kind`](AdapterError::kind) says how the read failed.
    async fn read(&self, window: Duration) -> Result<SignalReading, AdapterError>;
}

/// What a planner is asked.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanRequest {
    /// The incident as the engine holds it: id, service, base URL, journeys, coverage, title, the card's signal (its
    /// error rate in percent, the wire's unit, and its top error) and the evidence links gathered for it. The one
    /// shape a planner is told an incident in.
    pub context: PlanContext,
    /// 1-based attempt number.
    pub attempt: u32,
    /// The validator's violations of the previous attempt; empty on attempt 1.
    pub previous_violations: Vec<Violation>,
    /// Id the plan must carry.
    pub plan_id: PlanId,
    /// Time of the request, used as the plan's `generated_at`.
    pub now: DateTime<Utc>,
}

/// Proposes a Recovery Validation Plan for an incident.
#[async_trait]
pub trait Planner: Send + Sync + fmt::Debug {
    /// Proposes a CANDIDATE plan (the core validates it; never trust it).
    ///
    /// # Errors
    ///
    /// An [`AdapterError`] when no candidate could be produced.
    async fn propose(&self, request: &PlanRequest) -> Result<Plan, AdapterError>;
}

/// One status change of one test of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestProgress {
    /// The plan item's `test_id`.
    pub test_id: String,
    /// The new status.
    pub status: TestStatus,
    /// One line explaining a verdict (the evaluator's explanation), `None` while running.
    pub details: Option<String>,
}

/// Where a runner reports progress; the driver turns each into an engine input.
pub type ProgressSink = tokio::sync::mpsc::Sender<TestProgress>;

/// How a runner reports its tests' progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressModel {
    /// Each test's verdict is reported as soon as it is known (dashboards see the run fill in).
    PerTest,
    /// Every verdict arrives together when the run ends (all tests stay RUNNING until then).
    Batched,
}

/// What a runner declares about its runs. The engine's run deadline is derived from it at start-up (the runner
/// owns how long its runs take), and a configured deadline shorter than the runner needs is refused there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunnerExpectations {
    /// The longest one run of a whole plan takes before the runner itself gives up (its own timeouts).
    pub max_run_duration: Duration,
    /// How its progress arrives.
    pub progress: ProgressModel,
}

/// Runs the tests of a validated plan.
#[async_trait]
pub trait TestRunner: Send + Sync + fmt::Debug {
    /// How long a run may take and how its progress arrives (read once, at start-up).
    fn expectations(&self) -> RunnerExpectations;

    /// Runs every test of the plan; reports RUNNING then PASS/FAIL per test through `progress`; returns when all
    /// are done.
    ///
    /// # Errors
    ///
    /// An [`AdapterError`] when the run as a whole could not be carried out (a test that fails is not an error).
    async fn run(
        &self,
        run_id: &RunId,
        plan: &ValidatedPlan,
        progress: ProgressSink,
    ) -> Result<(), AdapterError>;
}

/// What a [`ContextSource`] is asked about an incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextQuery {
    /// The watched service's name (as in its profile).
    pub service: String,
    /// The incident, when there is one.
    pub incident_id: Option<String>,
    /// The trailing window to look at.
    pub window: Duration,
}

/// What a [`ContextSource`] found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContextFindings {
    /// The most frequent error signature it saw, if any.
    pub top_error: Option<String>,
    /// Links to what it looked at (dashboards, log queries, monitors).
    pub evidence_links: Vec<Link>,
    /// Short lines of vendor text (log lines, monitor states, metric summaries). Untrusted: whoever shows them to
    /// a model fences them as data.
    pub notes: Vec<String>,
}

/// An optional source of incident context beyond the signals: metrics, logs and monitors (for example Datadog's MCP
/// server). The planner's evidence and the copilot's look-ups use it when one is configured.
#[async_trait]
pub trait ContextSource: Send + Sync + fmt::Debug {
    /// Gathers what the source knows about `query` (one attempt, bounded by the adapter's timeout).
    ///
    /// # Errors
    ///
    /// An [`AdapterError`] whose [`kind`](AdapterError::kind) says how the call failed.
    async fn gather(&self, query: &ContextQuery) -> Result<ContextFindings, AdapterError>;
}

/// Answers operators' questions about the incident.
#[async_trait]
pub trait Copilot: Send + Sync + fmt::Debug {
    /// Whether the answers come from a language model (`MODEL`) rather than from the state alone (`GROUNDED`);
    /// the server marks each answer with it. The default is `false`.
    fn answers_with_model(&self) -> bool {
        false
    }

    /// Answers `question` from `state`; a copilot that reads more than the snapshot does so through `lookup`
    /// (read-only, live data). Citations still come from `state` only.
    ///
    /// # Errors
    ///
    /// An [`AdapterError`] when no answer could be produced.
    async fn answer(
        &self,
        question: &str,
        state: &CopilotState,
        lookup: &dyn CopilotLookup,
    ) -> Result<CopilotReply, AdapterError>;
}

/// One read-only look-up a copilot may make while answering (a tool of the LLM copilot's tool loop).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The system status, the open incident's id and why recovery is blocked.
    Status,
    /// A fresh reading of the service's signals (error rate, p95, requests, top error, evidence).
    Signals,
    /// The incident's recent validation runs, newest first, each with its test counts.
    RecentRuns,
    /// One run with every test's status and details.
    Run {
        /// The run's id.
        run_id: String,
    },
    /// The incident's timeline (detection, plans, runs, status changes, recovery checks) and figures.
    Timeline,
    /// Logs, metrics and monitors from the configured [`ContextSource`], if any.
    Context,
}

impl Lookup {
    /// The look-up's name as a tool (`get_status`, `get_signals`, `get_recent_runs`, `get_run`, `get_timeline`,
    /// `get_context`).
    #[must_use]
    pub fn tool_name(&self) -> &'static str {
        match self {
            Self::Status => "get_status",
            Self::Signals => "get_signals",
            Self::RecentRuns => "get_recent_runs",
            Self::Run { .. } => "get_run",
            Self::Timeline => "get_timeline",
            Self::Context => "get_context",
        }
    }
}

/// Live, read-only data about the incident a copilot is asked about: what its tools read.
///
/// Implementations bound every look-up by a timeout. What they return is untrusted (it holds text from the
/// monitored service): a copilot that shows it to a model fences it as data and bounds its size.
#[async_trait]
pub trait CopilotLookup: Send + Sync + fmt::Debug {
    /// Carries out `lookup`, answering a JSON document.
    ///
    /// # Errors
    ///
    /// An [`AdapterError`] when the data could not be read (a timeout, an unknown run, a failing source).
    async fn look_up(&self, lookup: &Lookup) -> Result<serde_json::Value, AdapterError>;
}

/// A [`CopilotLookup`] with no live data: every look-up fails as unavailable, so a copilot answers from its
/// snapshot alone (tests, and callers that have nothing live to offer).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLookup;

#[async_trait]
impl CopilotLookup for NoLookup {
    async fn look_up(&self, lookup: &Lookup) -> Result<serde_json::Value, AdapterError> {
        Err(AdapterError::unavailable(format!(
            "no live data for {}",
            lookup.tool_name()
        )))
    }
}
