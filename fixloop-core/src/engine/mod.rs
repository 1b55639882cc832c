//! The system-level incident state machine: facts and time in, effects out, no I/O.
//!
//! # Phases
//!
//! ```text
//!                 SignalSampled (trigger held, not in cooldown; confirmed by a read confirm_delay after the first)
//!                 AlertFired | SimulateOn | ServiceProbed (blind or timed-out source, probes failing)
//!   +---------+  -----------------------------------------> +-----------------+
//!   | HEALTHY |                                             | INCIDENT_ACTIVE |  FetchContext, then
//!   +---------+  <--- SimulateOff --------------------------+-----------------+  incident.created + RequestPlan
//!     ^    ^                                                   |  PlanProposed (valid), or the rule plan
//!     |    |                                                   |  after max_plan_attempts invalid/failed ones
//!     |    |                                                   v
//!     |    |     SimulateOff                              +------------+  StartRun; reruns at once on ServiceChanged(repair),
//!     |    +--------------------------------------------- | VALIDATING |  improving signals, probes passing again,
//!     |                                                   +------------+  AlertResolved, OperatorRequestedRun; and
//!     |                                                     |       ^     every rerun_interval. inconclusive_limit
//!     |                     latest run all PASS             |       |     inconclusive checks: NEEDS_HUMAN (stays)
//!     |                     AND signal gate holds           v       |  relapse within soak_window
//!     |                     (N healthy measurements                 |  (trigger held, new alert, SimulateOn),
//!     |                      taken after the change)                |
//!     |   soak_window elapsed | SimulateOff           +-----------+ |  or OperatorRequestedRun
//!     +-------------------------------------------------| RECOVERED |-+
//!                                                      +-----------+
//! ```
//!
//! # What a driver does with each effect
//!
//! | effect | carry it out by | answer with |
//! | --- | --- | --- |
//! | [`Effect::Publish`] | sending the envelope to every WebSocket client (`ts` is already set) | nothing |
//! | [`Effect::SampleSignals`] | reading the signal source over the effect's `window` (bounded by a timeout) | [`Input::SignalSampled`] or [`Input::SignalSourceFailed`] |
//! | [`Effect::FetchContext`] | asking the metrics source for the incident's window | [`Input::ContextFetched`] |
//! | [`Effect::RequestPlan`] | `Configured`: the LLM planner with the context and previous violations; `Rules`: [`crate::rule_plan`] (with the effect's `plan_id`; the engine stamps it anyway) | [`Input::PlanProposed`] or [`Input::PlanGenerationFailed`] |
//! | [`Effect::StartRun`] | running the validated plan's tests | [`Input::TestProgressed`] per change, then [`Input::RunFinished`] |
//! | [`Effect::CancelRun`] | aborting that run (its later answers are ignored anyway) | nothing |
//! | [`Effect::ProbeService`] | probing the service with its journeys (synthetic probes) | [`Input::ServiceProbed`] |
//! | [`Effect::ExecuteAction`] | carrying out the declared action with its executor (`dry_run`: logging the exact request instead) | [`Input::ActionFinished`] |
//! | [`Effect::CancelAction`] | aborting that action (its late answer is ignored anyway) | nothing |
//! | [`Effect::ChooseAction`] | asking the configured model to pick one of the candidates by id (bounded by a timeout) | [`Input::ActionChosen`] (`action: None` when it failed or said nothing usable) |
//! | [`Effect::Notify`] | queueing the notification for the notifiers | nothing |
//!
//! In every phase the engine's own polling timer issues [`Effect::SampleSignals`] (one read at a time) every
//! `poll_interval`, or `confirm_delay` after a hot measurement that has not opened (or reopened) an incident yet.
//!
//! Retries and deadlines are the engine's policy (plan re-requests, `plan_deadline`, `run_deadline`, all
//! reported through [`Engine::poll_timeout`]); adapters make one attempt per effect.
//!
//! Remediation (proposals after a failed run, approvals, execution, suppression, verdict, strikes, escalation, the
//! kill switch) is state shared by every phase, with its own timers and its own diagram in the `remediation`
//! module; it is inert without a strategy in [`Config::remediation`]. Operators answer it with
//! [`Input::ApprovalGiven`], [`Input::ApprovalRejected`] and [`Input::KillSwitchSet`].
//!
//! Each phase is a struct holding only what is valid in it; a transition consumes the old phase by value.
//! Inside, one private module per concept owns the part of the state it changes and the transitions that change it
//! (`detection`, `blindness`, `planning`, `runs`, `recovery`); `machine` only dispatches each input and each
//! phase's timers to its concept.
//! The phase gives the `SystemStatus.status` the engine reports, with one refinement inside the validating phase:
//!
//! | phase | run | status |
//! | --- | --- | --- |
//! | HEALTHY | | `HEALTHY` |
//! | INCIDENT_ACTIVE (planning) | | `INCIDENT_ACTIVE` |
//! | VALIDATING | a run in flight | `VALIDATING` |
//! | VALIDATING | the latest run passed, the signal gate pending | `VALIDATING` |
//! | VALIDATING | the latest run failed, none in flight | `INCIDENT_ACTIVE` |
//! | RECOVERED | | `RECOVERED` |
//!
//! Every change is published as `system.status`, in order (a rerun that starts and fails at once publishes both).
//! At most one incident is open at a time (open = INCIDENT_ACTIVE, VALIDATING or RECOVERED).
//!
//! # Driving contract
//!
//! After every [`Engine::handle_input`] or [`Engine::handle_timeout`], drain [`Engine::poll_effect`] until
//! `None`, then read [`Engine::poll_timeout`] and wait until it (or the next input), then call
//! [`Engine::handle_timeout`]. Never apply two inputs without draining in between. `now` must not go backwards;
//! an earlier `now` than the engine has seen is treated as the latest one seen.
//!
//! # Semantics, in detail
//!
//! - **Measurements.** The engine reads the signals itself ([`Effect::SampleSignals`]), one read at a time, over
//!   the time since the current measurement began (plus a slack of half the confirmation delay, so the source's
//!   sample taken just after that moment is inside the window): each measurement covers only time after the previous
//!   one, counter deltas between consecutive reads for a scraping source. A read with fewer than `min_requests`
//!   requests (or none) and not hot does not end its measurement: the next read reaches back to the same start
//!   (the measurement *extends*), up to `max_measurement`; then the measurement ends *inconclusive*. A failed read
//!   is an inconclusive measurement too. A sample nobody asked for is taken as a measurement of its own. The next
//!   read is due `poll_interval` after the previous one was issued, `confirm_delay` after a hot measurement in
//!   HEALTHY or RECOVERED that did not open (or reopen) the incident, and exactly `confirm_delay` after `ServiceChanged`
//!   (sooner would see nothing of the change yet); a read
//!   unanswered for twice `signal_max_age` is taken as lost and issued again.
//! - **Detection.** A measurement is *hot* when its error rate stays above `trigger_error_rate` even if every
//!   request missing up to `min_requests` had passed (`errors / max(requests, min_requests) > trigger`): 3 failures
//!   out of 3 are hot under `min_requests = 20`, 1 out of 1 is not. An incident opens from polling when the current
//!   measurement is hot and at least `min_samples` hot measurements were received within `detection_window`
//!   (counting the current one), unless a cooldown after the previous incident is running. Measurements are windowed
//!   by the `now` they were received at. `AlertFired` and `SimulateOn` open an incident at once, cooldown or not.
//!   HEALTHY and RECOVERED never show an error rate above the trigger: a hot measurement moves the published numbers
//!   only when it opens (or reopens) the incident.
//! - **One incident.** While an incident is open, alerts and `SimulateOn` do not open another (they are
//!   ignored, `Ok`), except in RECOVERED where a newly firing alert (a dedupe key not already firing) or
//!   `SimulateOn` is a relapse.
//! - **Status publication.** `system.status` is published on every change of status or active incident, on
//!   every `ServiceChanged`, and after a sample when the numbers moved materially since the last published status:
//!   the error rate by at least one percentage point, or p95 by at least 20% and 10 ms. The numbers are
//!   those of the latest ended measurement that had data (recent: a measurement covers the seconds since the
//!   previous one, never the detection window); `updated_at` is the `now` of the latest change.
//! - **Planning.** On detection the engine publishes `system.status` (INCIDENT_ACTIVE) and emits
//!   [`Effect::FetchContext`]. When the context arrives, fails, or `context_deadline` passes, it publishes
//!   `incident.created` (plan `<incident>-plan-pending`, no items, `generated_at` = detection time) and emits
//!   [`Effect::RequestPlan`] (attempt 1, [`PlannerChoice::Configured`]). Every request carries the `plan_id` its
//!   candidate will have (`plan-<prefix>-<n>`, a new number for every request, rejected candidates included); the
//!   engine stamps that id and `generated_at` (= `now`) on the candidate, whatever the planner put there, then
//!   validates it against `config.service.policy`. An invalid candidate, a [`Input::PlanGenerationFailed`] and a
//!   missed deadline are failed attempts: attempts 1..=`max_plan_attempts` use the configured planner (each
//!   re-request carries the previous violations), the next one [`PlannerChoice::Rules`]. The configured planner's
//!   attempts share one `plan_budget`, counted from the first request: an attempt's deadline is `plan_deadline`
//!   or the end of the budget, whichever comes first, and a failed attempt once the budget is spent goes straight to
//!   the rule plan, built by the engine at once, with a `PLAN_REJECTED` timeline entry saying the budget was spent.
//!   If the rule planner's answer fails too, the engine runs the rule planner itself; if its plan is invalid too (a
//!   policy the rule planner cannot satisfy), planning starts over after `rerun_interval` with a new budget.
//! - **Runs.** A validated plan is published (`plan.generated`), then [`Effect::StartRun`] (run id
//!   `run-<prefix>-<n>`), `system.status` (VALIDATING) and `tests.updated` (run RUNNING, all tests PENDING).
//!   Every [`Input::TestProgressed`] that changes a test's status or details publishes `tests.updated`.
//!   [`Input::RunFinished`] ends the run: COMPLETED when it finished (`Ok`) and every test passed, else FAILED
//!   (a failing test, or `Err`); tests without a verdict become FAIL with the reason in `details`. After `run_deadline` the engine emits [`Effect::CancelRun`] and ends the run
//!   FAILED. Answers naming an effect id the engine no longer waits for are ignored.
//! - **Reruns.** While VALIDATING and no run is in progress, a run starts at once on `ServiceChanged { repair: true }`,
//!   on the first healthy measurement after unhealthy or inconclusive ones, on probes that pass after failing ones
//!   (the service answers again), on `AlertResolved`, on `OperatorRequestedRun`, and `rerun_interval` after the
//!   previous run finished. A trigger during a run is remembered and starts one rerun
//!   when the run ends (coalesced), unless that run recovers the incident. An operator request during a run
//!   starts nothing: the run in progress is the answer.
//! - **Recovery.** RECOVERED needs, at the same moment, the latest run COMPLETED with every test PASS, and the
//!   signal gate: the last `recovery_samples` measurements each had an error rate below `recovery_error_rate` with
//!   at least `min_requests` requests, and the latest is at most `signal_max_age` old (Argo-style: N consecutive
//!   healthy measurements, each covering only time after the previous one, so the gate judges what happened after
//!   the change, never an average that still holds the outage). An unhealthy or inconclusive measurement resets the
//!   streak, and so does a gap longer than `signal_max_age` between two reads; a measurement still extending holds
//!   the gate. While the tests pass but the gate does not hold, the engine
//!   stays VALIDATING, logs the reason and exposes it in [`Engine::recovery_blocker`]. When the gate starts to
//!   hold later while the latest run passed, the engine recovers without another run: that run is at most
//!   `rerun_interval` old, since a periodic rerun starts then (and while a rerun is in progress the engine
//!   waits for its verdict). Entering RECOVERED publishes `system.status` and `tests.updated`.
//! - **Inconclusive.** No traffic, too few requests over `max_measurement` or a failed read make the gate
//!   *inconclusive*, with the reason in [`Engine::recovery_blocker`]. While VALIDATING, the first of a run of
//!   inconclusive measurements adds a `RECOVERY_INCONCLUSIVE` timeline entry; after `inconclusive_limit` in a row
//!   the incident *needs a human* ([`Engine::needs_human`], a `NEEDS_HUMAN` entry, a blocker starting with "needs a
//!   human"). It stays VALIDATING: no data is never recovery. A conclusive measurement clears the mark (with a
//!   `RECOVERY_INCONCLUSIVE` entry saying so).
//! - **Soak and cooldown.** A relapse in RECOVERED within `soak_window` (the trigger condition counted from the
//!   moment of recovery, a newly firing alert, or `SimulateOn`) reopens the same incident: VALIDATING and a
//!   rerun. When `soak_window` elapses the incident closes (HEALTHY); `SimulateOff` closes it in any open phase
//!   (cancelling a run in progress). For `cooldown` after a close, polling opens no incident.
//! - **Rejections.** Only [`Input::OperatorRequestedRun`] is ever rejected ([`Rejected`]). Every other input
//!   that does not apply to the current phase is ignored with a `debug` event and returns `Ok`.
//! - **Blindness.** A failed read ([`Input::SignalSourceFailed`]) is no data: an inconclusive measurement. After
//!   `blind_after` failures in a row the engine emits [`Effect::ProbeService`] (again at most every `blind_after`
//!   polling intervals while the source keeps failing); a read that times out while HEALTHY probes at once (a hung
//!   service answers neither reads nor probes, so it opens an incident within one interval and two timeouts).
//!   Probes whose error rate is above the trigger, or that time out, open an incident while HEALTHY ("signals
//!   unavailable and probes failing"); probes that pass leave
//!   the status as it is but set `SystemStatus.signals_degraded` to the reason, published with `system.status`.
//!   The next successful read clears it. A silent HEALTHY never hides a blind source.
//! - **Signals.** A sample's `error_rate` and `p95_latency_ms` that are `NaN`, infinite or negative count as no
//!   data; an error rate above 1 is clamped to 1.
//! - **Restarts.** [`Engine::snapshot`] and [`Engine::restore`] carry the whole state across a process restart, and
//!   [`RecordedInput`] is an input as a journal stores it (see [`Snapshot`]). After restoring, the driver feeds
//!   [`Input::Restarted`]: a run in flight ends FAILED ("run failed: interrupted by restart") and a rerun starts at
//!   once; a context fetch or a plan request in flight is issued again (same attempt, new effect id and deadline);
//!   a probe in flight is forgotten, so the next failed read may probe again; a read in flight is forgotten and the
//!   next one is issued at once. Timers keep their absolute times: one
//!   that came due while the process was down fires at the first call.
//! - **Ids.** `inc-<prefix>-<n>`, `run-<prefix>-<n>`, `plan-<prefix>-<n>` from counters starting at 1 (the
//!   prefix and its dash are left out when `id_prefix` is empty); effect ids count from 1. The last 100 runs and
//!   the last 100 closed incidents stay queryable.

mod blindness;
mod config;
mod config_image;
mod detection;
mod gate;
mod history;
mod journal;
mod machine;
mod phase;
mod planning;
mod polling;
mod recorded;
mod recovery;
mod rejected;
mod remediation;
mod runs;
mod shared;
mod signals;
mod snapshot;
#[cfg(test)]
mod test_support;

use std::time::Duration;

use fixloop_contract::chrono::{DateTime, TimeDelta, Utc};
use fixloop_contract::{
    CopilotAnswer, IncidentCard, IncidentDetail, IncidentFigures, IncidentSummary, Link, Plan,
    SystemStatus, TestRun, TestStatus, WsEnvelope,
};

use crate::ids::{EffectId, IncidentId, PlanId, ProposalId, RunId};
use crate::rule_planner::PlanContext;
use crate::validate::{ValidatedPlan, Violation};

use phase::Phase;
use shared::Shared;

pub use config::{
    CONFIRM_DELAY_POLL_INTERVAL_DIVISOR, Config, DEFAULT_POLL_INTERVAL,
    DEFAULT_RECOVERY_ERROR_RATIO, DEFAULT_TRIGGER_ERROR_RATIO, SHORT_POLL_INTERVAL,
    SIGNAL_MAX_AGE_POLL_INTERVALS, confirm_delay_for, signal_max_age_for,
};
pub use config_image::{Recorded, RecordedConfig};
pub use gate::{GateCounts, GateVerdict, SignalGate};
pub use recorded::{RecordedContext, RecordedFailure, RecordedInput, RecordedSample};
pub use rejected::Rejected;
pub use remediation::{
    ActionStats, ChoiceCandidate, ChosenBy, Notification, NotificationKind, Outcome, Proposal,
    ProposalState,
};
pub use snapshot::{RestoreError, SNAPSHOT_FORMAT, Snapshot, SnapshotError};

/// A fact the engine is told about, in the past tense. Closed on purpose: a new input breaks every driver's
/// `match` at compile time.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The signal source produced a sample.
    SignalSampled(SignalSample),
    /// A read of the signal source failed (unreachable, metrics missing, timeout): no data, which is never health.
    /// The failed answer to [`Effect::SampleSignals`].
    SignalSourceFailed {
        /// How it failed.
        failure: PortFailure,
    },
    /// The answer to [`Effect::ProbeService`]: the signals of FixLoop's own probes of the service.
    ServiceProbed {
        /// The effect answered.
        effect: EffectId,
        /// The probes' sample (error rate = failed probes), or why no probe could run.
        result: Result<SignalSample, PortFailure>,
    },
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
    /// The watched service was changed: a deploy, a configuration change, a remediation action, an operator's
    /// switch (the demo's bug switch is one). The engine publishes `system.status`, reads the signals
    /// `confirm_delay` later (sooner would see nothing of the change yet), and, for a change meant to repair the
    /// service, validates an open incident at once (a rerun, coalesced with one in progress).
    ServiceChanged {
        /// Whether the change is meant to repair the service (a fix, a rollback, a remediation action; the demo's
        /// bug switched off). A change that is not (a deploy, the demo's bug switched on) is only watched closely.
        repair: bool,
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
    /// The driver restarted (a deploy, a crash) and restored this engine: every effect issued before is gone. A run
    /// in flight ends FAILED "interrupted by restart" and a rerun starts; a context fetch or plan request in flight
    /// is issued again; a probe in flight is forgotten. Feed it once, right after [`Engine::restore`] or after
    /// replaying a journal.
    Restarted,
    /// An operator approved a remediation proposal awaiting approval, naming the version they saw
    /// (compare-and-set: another version is [`Rejected::VersionConflict`]).
    ApprovalGiven {
        /// The proposal.
        proposal: ProposalId,
        /// The version the operator saw.
        version: u64,
        /// Who approved (an API token's name, or the client's address in open loopback mode).
        by: String,
    },
    /// An operator rejected a remediation proposal awaiting approval (same compare-and-set as an approval).
    ApprovalRejected {
        /// The proposal.
        proposal: ProposalId,
        /// The version the operator saw.
        version: u64,
        /// Who rejected.
        by: String,
    },
    /// The answer to [`Effect::ExecuteAction`].
    ActionFinished {
        /// The effect answered.
        effect: EffectId,
        /// Ok when the executor carried the action out (or logged it, for a dry run), or why it failed.
        result: Result<(), PortFailure>,
    },
    /// The remediation kill switch was engaged (every action stops: the one in flight is cancelled, approvals are
    /// refused) or released.
    KillSwitchSet {
        /// Engaged or released.
        engaged: bool,
        /// Who switched it.
        by: String,
    },
    /// The answer to [`Effect::ChooseAction`]: the model's pick, untrusted. The engine proposes it only when it
    /// passes [`crate::remediation::validate_choice`] and is one of the steps that may be proposed at that moment;
    /// otherwise the rules pick, and the proposal's note says why.
    ActionChosen {
        /// The effect answered.
        effect: EffectId,
        /// The action id the model picked; `None` when it could not be asked, failed, or said nothing usable.
        action: Option<String>,
        /// The model's reason, or why there is no pick (kept short in the proposal's note).
        reason: String,
    },
}

/// A request the driver must carry out, in the imperative. Closed on purpose: a new effect breaks every driver's
/// `match` at compile time, so no driver silently drops one.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Read the signal source over the trailing `window` (the time since the previous measurement began, so each
    /// measurement covers only time after the previous one); answer with [`Input::SignalSampled`] or
    /// [`Input::SignalSourceFailed`]. The engine issues one at a time, from its own polling timer.
    SampleSignals {
        /// How far back the read reaches.
        window: Duration,
    },
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
        /// The id the plan will carry: the engine stamps it on the candidate whatever the planner put there.
        plan_id: PlanId,
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
    /// The signal source has failed `blind_after` times in a row: probe the service with its own journeys
    /// (FixLoop's synthetic probes) and answer with [`Input::ServiceProbed`].
    ProbeService {
        /// Id to answer with.
        effect: EffectId,
    },
    /// Carry out a declared remediation action (or, with `dry_run`, log exactly what would be done and do nothing);
    /// answer with [`Input::ActionFinished`]. At most one is outstanding per engine.
    ExecuteAction {
        /// Id to answer with.
        effect: EffectId,
        /// The proposal it carries out.
        proposal: ProposalId,
        /// The incident it is for.
        incident_id: IncidentId,
        /// The declared action's id (the driver maps it to its executor and settings).
        action_id: String,
        /// Log instead of acting (mode `dry-run`).
        dry_run: bool,
    },
    /// Stop the action in flight (kill switch, deadline); its late answer will be ignored.
    CancelAction {
        /// The [`Effect::ExecuteAction`] to cancel.
        effect: EffectId,
    },
    /// Tell people (an approval needed, an action judged, an escalation); the driver queues it for its notifiers.
    Notify(Notification),
    /// Ask the configured model to pick the next remediation step among `candidates` (the strategy's steps that
    /// may be proposed now, in the rules' order: the first is the rules' pick); answer with
    /// [`Input::ActionChosen`]. Issued only when the spec's chooser is the model and more than one step is ready;
    /// without an answer within the spec's `choice_deadline` the rules pick. At most one is outstanding. Nothing
    /// in it is secret: no executor settings.
    ChooseAction {
        /// Id to answer with.
        effect: EffectId,
        /// The incident.
        incident_id: IncidentId,
        /// The strategy's incident kind.
        kind: String,
        /// The incident's title.
        title: String,
        /// The incident's top error, if any.
        top_error: Option<String>,
        /// The error rate at detection, in percent.
        error_rate: f64,
        /// The steps it may pick from.
        candidates: Vec<ChoiceCandidate>,
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

/// The system-level engine: one per monitored service.
///
/// See the [module documentation](self) for the phases, the driving contract and the exact semantics.
#[derive(Debug)]
pub struct Engine {
    phase: Phase,
    shared: Shared,
}

impl Engine {
    /// A healthy engine whose clock starts at `now`.
    #[must_use]
    pub fn new(config: Config, now: DateTime<Utc>) -> Self {
        Self {
            phase: Phase::default(),
            shared: Shared::new(config, now),
        }
    }

    /// Feeds a fact. Drain [`Engine::poll_effect`] afterwards.
    ///
    /// # Errors
    ///
    /// [`Rejected`] when an [`Input::OperatorRequestedRun`] names an unknown incident, a closed one, or one
    /// without a validated plan; the input changed nothing (timers that were already due still fired). Every
    /// other input returns `Ok`, applied or ignored.
    pub fn handle_input(&mut self, now: DateTime<Utc>, input: Input) -> Result<(), Rejected> {
        let now = self.shared.tick(now);
        // Timers that came due before this input fire first, even if the driver was late calling handle_timeout.
        self.fire_due_timers(now);
        let span = self.phase.span();
        let _entered = span.enter();
        let phase = std::mem::take(&mut self.phase);
        let (phase, result) = machine::handle_input(phase, &mut self.shared, now, input);
        self.phase = phase;
        remediation::observe(&self.phase, &mut self.shared, now);
        self.shared.publish_status_if_moved(now);
        debug_assert_eq!(self.phase.state(), self.shared.status.status);
        result
    }

    /// Tells the engine that time `now` has come; call it when [`Engine::poll_timeout`] is due (calling it
    /// early is harmless). Drain [`Engine::poll_effect`] afterwards.
    pub fn handle_timeout(&mut self, now: DateTime<Utc>) {
        let now = self.shared.tick(now);
        self.fire_due_timers(now);
    }

    fn fire_due_timers(&mut self, now: DateTime<Utc>) {
        let span = self.phase.span();
        let _entered = span.enter();
        // A handful of passes: a timer firing can only arm timers in the future unless a duration is zero.
        for _ in 0..4 {
            match self.phase.next_deadline() {
                Some(deadline) if deadline <= now => {
                    let phase = std::mem::take(&mut self.phase);
                    self.phase = machine::handle_timeout(phase, &mut self.shared, now);
                }
                _ => break,
            }
        }
        if self
            .shared
            .remediation
            .next_deadline()
            .is_some_and(|deadline| deadline <= now)
        {
            let phase = std::mem::take(&mut self.phase);
            self.phase = remediation::fire(phase, &mut self.shared, now);
        }
        remediation::observe(&self.phase, &mut self.shared, now);
        let shared = &mut self.shared;
        if let Some(read) = shared.polling.fire(now, &shared.config) {
            shared.effects.push_back(read);
        }
        debug_assert_eq!(self.phase.state(), self.shared.status.status);
    }

    /// The next effect to carry out, in order.
    #[must_use]
    pub fn poll_effect(&mut self) -> Option<Effect> {
        self.shared.effects.pop_front()
    }

    /// When [`Engine::handle_timeout`] must next be called, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<DateTime<Utc>> {
        let polling = self.shared.polling.next_deadline(&self.shared.config);
        let remediation = self.shared.remediation.next_deadline();
        [self.phase.next_deadline(), polling, remediation]
            .into_iter()
            .flatten()
            .min()
    }

    /// The remediation proposals kept (the last 200), oldest first (`GET /api/remediations`).
    pub fn proposals(&self) -> impl DoubleEndedIterator<Item = &Proposal> {
        self.shared.remediation.proposals.iter()
    }

    /// A remediation proposal by id.
    #[must_use]
    pub fn proposal(&self, proposal: &ProposalId) -> Option<&Proposal> {
        self.proposals().rev().find(|p| p.id == *proposal)
    }

    /// The success figures per (incident kind, action) of executed remediation actions
    /// (`GET /api/remediations/stats`).
    #[must_use]
    pub fn action_stats(&self) -> Vec<ActionStats> {
        self.shared.remediation.action_stats()
    }

    /// Whether the remediation kill switch is engaged.
    #[must_use]
    pub fn kill_switch_engaged(&self) -> bool {
        self.shared.remediation.kill_switch
    }

    /// The current status (`GET /api/status`).
    #[must_use]
    pub fn status(&self) -> &SystemStatus {
        &self.shared.status
    }

    /// The open incident, if any (`GET /api/incidents/current`); it stays open through RECOVERED until it closes.
    #[must_use]
    pub fn current_incident(&self) -> Option<&IncidentCard> {
        self.phase.incident().map(|incident| &incident.card)
    }

    /// Whether an incident with this id exists (open, or among the last 100 closed).
    #[must_use]
    pub fn has_incident(&self, incident_id: &IncidentId) -> bool {
        self.incident(incident_id).is_some()
    }

    /// An incident by id: the open one, or one of the last 100 closed.
    #[must_use]
    pub fn incident(&self, incident_id: &IncidentId) -> Option<&IncidentCard> {
        self.current_incident()
            .filter(|card| card.incident_id == incident_id.as_str())
            .or_else(|| self.shared.closed_incident(incident_id))
    }

    /// The incidents this engine remembers (the open one and the last 100 closed), newest first: ordered by
    /// `detected_at`, then by id, both descending. With `before`, only those strictly older than that
    /// `(detected_at, incident_id)` key; at most `limit` (`GET /api/incidents`).
    #[must_use]
    pub fn incidents(
        &self,
        limit: usize,
        before: Option<(DateTime<Utc>, &str)>,
    ) -> Vec<IncidentSummary> {
        let mut summaries: Vec<IncidentSummary> = self
            .shared
            .history
            .records
            .iter()
            .filter(|record| {
                before.is_none_or(|(at, id)| {
                    (record.detected_at, record.incident_id.as_str()) < (at, id)
                })
            })
            .filter_map(|record| self.summary(record))
            .collect();
        summaries
            .sort_by(|a, b| (b.detected_at, &b.incident_id).cmp(&(a.detected_at, &a.incident_id)));
        summaries.truncate(limit);
        summaries
    }

    /// One incident (open, or among the last 100 closed) with its timeline and figures
    /// (`GET /api/incidents/{incident_id}`).
    #[must_use]
    pub fn incident_history(&self, incident_id: &IncidentId) -> Option<IncidentDetail> {
        let record = self.shared.history.record(incident_id.as_str())?;
        let summary = self.summary(record)?;
        Some(IncidentDetail {
            incident: self.incident(incident_id)?.clone(),
            service: summary.service,
            incident_end: summary.incident_end,
            status: summary.status,
            resolution: summary.resolution,
            timeline: record.timeline.clone(),
            figures: record.figures(),
        })
    }

    /// The figures of an incident (time to detect, to first run, to recover), computed from the engine's own
    /// times; what the server observes in its `/metrics` histograms when the incident closes.
    #[must_use]
    pub fn incident_figures(&self, incident_id: &IncidentId) -> Option<IncidentFigures> {
        self.shared
            .history
            .record(incident_id.as_str())
            .map(history::IncidentRecord::figures)
    }

    fn summary(&self, record: &history::IncidentRecord) -> Option<IncidentSummary> {
        let card = self.incident(&record.incident_id)?;
        let open = record.closed_at.is_none();
        Some(IncidentSummary {
            incident_id: card.incident_id.clone(),
            title: card.title.clone(),
            service: self.shared.config.service.name.clone(),
            detected_at: card.detected_at,
            incident_end: record.closed_at,
            status: open.then_some(self.shared.status.status),
            resolution: record.resolution.clone(),
        })
    }

    /// The latest run of the open incident (in progress or finished), if any.
    #[must_use]
    pub fn current_run(&self) -> Option<&TestRun> {
        self.phase
            .latest_run_id()
            .and_then(|run_id| self.shared.runs.get(run_id))
    }

    /// A run of this engine's lifetime, current or among the last 100 (`GET /api/tests/runs/{run_id}`).
    #[must_use]
    pub fn run(&self, run_id: &RunId) -> Option<&TestRun> {
        self.shared.runs.get(run_id)
    }

    /// Why the open incident is not RECOVERED yet, in one line (for example
    /// `"all 5 tests of run run-x-2 passed; signals not healthy yet: 1 of 3 consecutive healthy samples (last
    /// sample: no traffic (no data is never recovery))"`); `None` when HEALTHY or RECOVERED.
    #[must_use]
    pub fn recovery_blocker(&self) -> Option<String> {
        recovery::recovery_blocker(&self.phase, &self.shared)
    }

    /// Whether the open incident needs a human: the recovery gate stayed inconclusive (no traffic, too few
    /// requests, a degraded source) for `inconclusive_limit` measurements in a row. Cleared when the signals can be
    /// judged again.
    #[must_use]
    pub fn needs_human(&self) -> bool {
        recovery::needs_human(&self.phase)
    }

    /// The engine's configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.shared.config
    }
}

/// `at + duration`, saturating at the end of time instead of overflowing.
pub(crate) fn after(at: DateTime<Utc>, duration: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(duration)
        .ok()
        .and_then(|delta| at.checked_add_signed(delta))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}
