//! The phases of the engine and the transitions between them (see the parent module for the diagram).
//!
//! Every transition is a function that takes the old phase by value and returns the new one; the state shared
//! by all phases (status, effect queue, counters, run history, signals) lives in [`Shared`].

use std::collections::{BTreeSet, VecDeque};

use fixloop_contract::chrono::{DateTime, Utc};
use fixloop_contract::{
    DatadogSummary, IncidentCard, IncidentState, Plan, PlanGenerated, RunStatus, Signal,
    SystemStatus, TestResult, TestRun, TestStatus, TimelineKind, WsMessage,
};
use tracing::{Span, debug, info, info_span, warn};

use super::history::History;
use super::polling::{Cadence, Polling};
use super::recovery;
use super::signals::{CleanSample, Signals, percent};
use super::{
    Alert, Config, Effect, IncidentContext, Input, PlannerChoice, PortFailure, Rejected, after,
};
use crate::ids::{EffectId, IncidentId, PlanId, RunId};
use crate::rule_planner::{PlanContext, rule_plan};
use crate::validate::{ValidatedPlan, Violation, validate};

/// How many finished runs and closed incidents stay queryable.
pub(super) const HISTORY: usize = 100;
/// How many firing alert keys are remembered.
const MAX_FIRING_ALERTS: usize = 256;
/// Smallest move of the error rate that republishes `system.status`: one percentage point (the status is in
/// percent).
const STATUS_ERROR_RATE_STEP: f64 = 1.0;
/// Smallest relative move of p95 that republishes `system.status`.
const STATUS_P95_STEP_RATIO: f64 = 0.2;
/// Smallest absolute move of p95 (ms) that republishes `system.status`.
const STATUS_P95_STEP_MIN_MS: f64 = 10.0;

/// The engine's phase; the variant is the reported `SystemStatus.status`.
#[derive(Debug)]
pub(super) enum Phase {
    Healthy(Healthy),
    IncidentActive(IncidentActive),
    Validating(Validating),
    Recovered(Recovered),
}

/// No incident is open.
#[derive(Debug, Default)]
pub(super) struct Healthy {
    /// Until when polling opens no incident (after a close).
    pub(super) cooldown_until: Option<DateTime<Utc>>,
}

/// An incident was detected; its plan is not validated yet.
#[derive(Debug)]
pub(super) struct IncidentActive {
    pub(super) incident: OpenIncident,
    pub(super) planning: Planning,
}

/// Where planning stands.
#[derive(Debug)]
pub(super) enum Planning {
    /// Waiting for [`Effect::FetchContext`].
    FetchingContext {
        effect: EffectId,
        deadline: DateTime<Utc>,
    },
    /// Waiting for [`Effect::RequestPlan`].
    Requesting {
        effect: EffectId,
        /// The id the candidate will carry.
        plan_id: PlanId,
        attempt: u32,
        planner: PlannerChoice,
        deadline: DateTime<Utc>,
        /// When the configured planner's total budget for this planning round is spent.
        budget_ends_at: DateTime<Utc>,
    },
    /// Every planner failed; planning starts over at `retry_at`.
    Waiting { retry_at: DateTime<Utc> },
}

/// The plan is validated; runs validate the recovery.
#[derive(Debug)]
pub(super) struct Validating {
    pub(super) incident: OpenIncident,
    pub(super) plan: ValidatedPlan,
    pub(super) run: RunSlot,
    /// A rerun trigger arrived during a run.
    pub(super) rerun_pending: bool,
    /// The last blocker written to the log, to log only changes.
    pub(super) logged_blocker: Option<String>,
    /// `inconclusive_limit` inconclusive measurements in a row: the incident needs a human.
    pub(super) needs_human: bool,
    /// The current run of inconclusive measurements is in the timeline.
    pub(super) inconclusive_noted: bool,
}

/// The run of a VALIDATING incident.
#[derive(Debug)]
pub(super) enum RunSlot {
    Running(ActiveRun),
    Idle(FinishedRun),
}

/// A run in progress.
#[derive(Debug)]
pub(super) struct ActiveRun {
    pub(super) effect: EffectId,
    pub(super) run_id: RunId,
    pub(super) deadline: DateTime<Utc>,
}

/// The latest finished run.
#[derive(Debug)]
pub(super) struct FinishedRun {
    pub(super) run_id: RunId,
    /// COMPLETED with every test PASS.
    pub(super) passed: bool,
    /// One line about the outcome.
    pub(super) summary: String,
    pub(super) next_rerun_at: DateTime<Utc>,
}

/// Every test passed and the signals are healthy; the incident closes when the soak window ends.
#[derive(Debug)]
pub(super) struct Recovered {
    pub(super) incident: OpenIncident,
    pub(super) plan: ValidatedPlan,
    pub(super) latest_run: RunId,
    pub(super) soak_until: DateTime<Utc>,
}

/// The open incident, common to the open phases.
#[derive(Debug)]
pub(super) struct OpenIncident {
    pub(super) id: IncidentId,
    pub(super) card: IncidentCard,
    pub(super) span: Span,
    /// Opened by polling: its title states the error rate, which the context's figure then replaces, so the title
    /// and the card always show the same number.
    pub(super) titled_by_rate: bool,
}

impl Default for Phase {
    fn default() -> Self {
        Self::Healthy(Healthy::default())
    }
}

impl Phase {
    /// The status this phase reports.
    pub(super) fn state(&self) -> IncidentState {
        match self {
            Self::Healthy(_) => IncidentState::Healthy,
            Self::IncidentActive(_) => IncidentState::IncidentActive,
            // VALIDATING means a run is in flight, or the latest run passed and the signal gate is pending; after a
            // failed run, with nothing in flight, the incident is simply active.
            Self::Validating(validating) => match &validating.run {
                RunSlot::Idle(run) if !run.passed => IncidentState::IncidentActive,
                _ => IncidentState::Validating,
            },
            Self::Recovered(_) => IncidentState::Recovered,
        }
    }

    /// The open incident.
    pub(super) fn incident(&self) -> Option<&OpenIncident> {
        match self {
            Self::Healthy(_) => None,
            Self::IncidentActive(active) => Some(&active.incident),
            Self::Validating(validating) => Some(&validating.incident),
            Self::Recovered(recovered) => Some(&recovered.incident),
        }
    }

    /// The tracing span of the open incident (disabled when none is open).
    pub(super) fn span(&self) -> Span {
        self.incident()
            .map_or_else(Span::none, |incident| incident.span.clone())
    }

    /// The latest run of the open incident.
    pub(super) fn latest_run_id(&self) -> Option<&RunId> {
        match self {
            Self::Healthy(_) | Self::IncidentActive(_) => None,
            Self::Validating(validating) => Some(validating.run.run_id()),
            Self::Recovered(recovered) => Some(&recovered.latest_run),
        }
    }

    /// The earliest armed timer.
    pub(super) fn next_deadline(&self) -> Option<DateTime<Utc>> {
        match self {
            Self::Healthy(_) => None,
            Self::IncidentActive(active) => Some(match active.planning {
                Planning::FetchingContext { deadline, .. }
                | Planning::Requesting { deadline, .. } => deadline,
                Planning::Waiting { retry_at } => retry_at,
            }),
            Self::Validating(validating) => Some(match &validating.run {
                RunSlot::Running(run) => run.deadline,
                RunSlot::Idle(run) => run.next_rerun_at,
            }),
            Self::Recovered(recovered) => Some(recovered.soak_until),
        }
    }
}

impl RunSlot {
    fn run_id(&self) -> &RunId {
        match self {
            Self::Running(run) => &run.run_id,
            Self::Idle(run) => &run.run_id,
        }
    }
}

/// State shared by every phase.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) config: Config,
    pub(super) status: SystemStatus,
    pub(super) effects: VecDeque<Effect>,
    /// The numbers of the last published `system.status`.
    pub(super) published_numbers: (f64, f64),
    /// The latest `now` seen.
    pub(super) now: DateTime<Utc>,
    pub(super) next_incident: u64,
    pub(super) next_run: u64,
    pub(super) next_plan: u64,
    pub(super) next_effect: u64,
    pub(super) runs: VecDeque<TestRun>,
    pub(super) closed: VecDeque<IncidentCard>,
    pub(super) signals: Signals,
    pub(super) firing_alerts: BTreeSet<String>,
    pub(super) blindness: Blindness,
    /// The polling timer: when the next read of the signals is due, and the current measurement.
    pub(super) polling: Polling,
    /// The timelines and times of the open incident and of the last [`HISTORY`] closed ones.
    pub(super) history: History,
}

/// What the engine knows about its signal source's failures.
#[derive(Debug, Default)]
pub(super) struct Blindness {
    /// Failed reads in a row.
    pub(super) failures: u32,
    /// Why the latest read failed.
    pub(super) reason: Option<String>,
    /// The probe in flight.
    pub(super) probe: Option<EffectId>,
    /// No new probe before this moment.
    pub(super) next_probe_at: Option<DateTime<Utc>>,
    /// The latest probes failed: probes that pass next mean the service answers again.
    pub(super) probes_failing: bool,
}

impl Shared {
    pub(super) fn new(config: Config, now: DateTime<Utc>) -> Self {
        let service = Some(config.service.name.clone());
        Self {
            config,
            status: SystemStatus {
                status: IncidentState::Healthy,
                error_rate_5m: 0.0,
                p95_latency_ms_5m: 0.0,
                active_incident_id: None,
                updated_at: now,
                service,
                signals_degraded: None,
            },
            effects: VecDeque::new(),
            published_numbers: (0.0, 0.0),
            now,
            next_incident: 1,
            next_run: 1,
            next_plan: 1,
            next_effect: 1,
            runs: VecDeque::new(),
            blindness: Blindness::default(),
            polling: Polling::new(now),
            closed: VecDeque::new(),
            signals: Signals::default(),
            firing_alerts: BTreeSet::new(),
            history: History::default(),
        }
    }

    /// Moves the clock to `now`, never backwards; returns the time to use.
    pub(super) fn tick(&mut self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.now = self.now.max(now);
        self.now
    }

    pub(super) fn run(&self, run_id: &RunId) -> Option<&TestRun> {
        self.runs
            .iter()
            .rev()
            .find(|run| run.run_id == run_id.as_str())
    }

    pub(super) fn closed_incident(&self, incident_id: &IncidentId) -> Option<&IncidentCard> {
        self.closed
            .iter()
            .rev()
            .find(|card| card.incident_id == incident_id.as_str())
    }

    /// Publishes `system.status` when the numbers moved materially since the last publication.
    pub(super) fn publish_status_if_moved(&mut self, now: DateTime<Utc>) {
        let (error_rate, p95) = self.published_numbers;
        let p95_step = (p95 * STATUS_P95_STEP_RATIO).max(STATUS_P95_STEP_MIN_MS);
        if (self.status.error_rate_5m - error_rate).abs() >= STATUS_ERROR_RATE_STEP
            || (self.status.p95_latency_ms_5m - p95).abs() >= p95_step
        {
            self.publish_status(now);
        }
    }

    pub(super) fn publish_status(&mut self, now: DateTime<Utc>) {
        self.status.updated_at = now;
        self.published_numbers = (self.status.error_rate_5m, self.status.p95_latency_ms_5m);
        self.publish(now, WsMessage::SystemStatus(self.status.clone()));
    }

    /// Sets the status and publishes it.
    pub(super) fn set_status(
        &mut self,
        now: DateTime<Utc>,
        state: IncidentState,
        incident: Option<&IncidentId>,
    ) {
        self.status.status = state;
        self.status.active_incident_id = incident.map(|id| id.as_str().to_owned());
        self.publish_status(now);
    }

    pub(super) fn publish(&mut self, now: DateTime<Utc>, message: WsMessage) {
        // The history is written from what the engine publishes, so the timeline and the stream agree.
        self.history.observe(now, &message);
        self.effects.push_back(Effect::Publish(message.at(now)));
    }

    fn effect_id(&mut self) -> EffectId {
        let id = EffectId(self.next_effect);
        self.next_effect = self.next_effect.saturating_add(1);
        id
    }

    fn prefixed(&self, kind: &str, n: u64) -> String {
        if self.config.id_prefix.is_empty() {
            format!("{kind}-{n}")
        } else {
            format!("{kind}-{}-{n}", self.config.id_prefix)
        }
    }

    fn incident_id(&mut self) -> IncidentId {
        let id = IncidentId::new(self.prefixed("inc", self.next_incident));
        self.next_incident = self.next_incident.saturating_add(1);
        id
    }

    fn run_id(&mut self) -> RunId {
        let id = RunId::new(self.prefixed("run", self.next_run));
        self.next_run = self.next_run.saturating_add(1);
        id
    }

    pub(super) fn plan_id(&mut self) -> PlanId {
        let id = PlanId::new(self.prefixed("plan", self.next_plan));
        self.next_plan = self.next_plan.saturating_add(1);
        id
    }

    pub(super) fn run_mut(&mut self, run_id: &RunId) -> Option<&mut TestRun> {
        self.runs
            .iter_mut()
            .rev()
            .find(|run| run.run_id == run_id.as_str())
    }

    fn publish_run(&mut self, now: DateTime<Utc>, run_id: &RunId) {
        if let Some(run) = self.run(run_id).cloned() {
            self.publish(now, WsMessage::TestsUpdated(run));
        }
    }

    fn archive(&mut self, card: IncidentCard) {
        self.closed.push_back(card);
        while self.closed.len() > HISTORY {
            self.closed.pop_front();
        }
    }

    fn plan_context(&self, incident: &OpenIncident) -> PlanContext {
        PlanContext {
            incident_id: incident.id.clone(),
            service: self.config.service.name.clone(),
            description: self.config.service.description.clone(),
            base_url: self
                .config
                .service
                .base_url
                .trim_end_matches('/')
                .to_owned(),
            signal: incident.card.datadog_summary.signal.clone(),
            title: incident.card.title.clone(),
            evidence_links: incident.card.datadog_summary.evidence_links.clone(),
            journeys: self.config.service.journeys.clone(),
            coverage: self.config.service.policy.coverage.clone(),
        }
    }

    /// Starts a run of `plan` for `incident`: emits [`Effect::StartRun`] and records the run (not published).
    fn start_run(
        &mut self,
        now: DateTime<Utc>,
        incident: &OpenIncident,
        plan: &ValidatedPlan,
        why: &str,
    ) -> ActiveRun {
        let run_id = self.run_id();
        let effect = self.effect_id();
        info!(incident_id = %incident.id, run_id = %run_id, why, "starting validation run");
        let tests = plan
            .plan()
            .items
            .iter()
            .map(|item| TestResult {
                test_id: item.test_id.clone(),
                name: item.name.clone(),
                status: TestStatus::Pending,
                last_update_at: now,
                details: None,
            })
            .collect();
        self.runs.push_back(TestRun {
            run_id: run_id.as_str().to_owned(),
            incident_id: incident.id.as_str().to_owned(),
            started_at: now,
            status: RunStatus::Running,
            tests,
        });
        while self.runs.len() > HISTORY {
            self.runs.pop_front();
        }
        self.effects.push_back(Effect::StartRun {
            effect,
            run_id: run_id.clone(),
            plan: plan.clone(),
        });
        ActiveRun {
            effect,
            run_id,
            deadline: after(now, self.config.run_deadline),
        }
    }
}

/// Applies one input.
pub(super) fn handle_input(
    phase: Phase,
    shared: &mut Shared,
    now: DateTime<Utc>,
    input: Input,
) -> (Phase, Result<(), Rejected>) {
    let phase = match input {
        Input::SignalSampled(sample) => {
            signals_back(shared, now);
            on_sample(phase, shared, now, CleanSample::new(sample))
        }
        Input::SignalSourceFailed { failure } => on_source_failed(phase, shared, now, &failure),
        Input::ServiceProbed { effect, result } => on_probed(phase, shared, now, effect, result),
        Input::AlertFired(alert) => on_alert(phase, shared, now, alert),
        Input::AlertResolved { dedupe_key } => {
            shared.firing_alerts.remove(&dedupe_key);
            match phase {
                Phase::Validating(validating) => {
                    Phase::Validating(trigger_rerun(validating, shared, now, "alert resolved"))
                }
                other => other,
            }
        }
        Input::SimulateOn => match phase {
            Phase::Healthy(_) => open_incident(shared, now, Opening::Simulated),
            Phase::Recovered(recovered) => {
                reopen(recovered, shared, now, "simulated incident during soak")
            }
            other => {
                debug!("simulate on while an incident is open: nothing to do");
                other
            }
        },
        Input::SimulateOff => close_any(phase, shared, now, "closed by operator"),
        Input::ServiceChanged { repair } => {
            shared.publish_status(now);
            // The service changed: read its signals soon rather than a full interval later.
            shared.polling.hurry(now, &shared.config);
            match phase {
                Phase::Validating(validating) if repair => Phase::Validating(trigger_rerun(
                    validating,
                    shared,
                    now,
                    "the service was changed to repair it",
                )),
                other => other,
            }
        }
        Input::ContextFetched { effect, result } => on_context(phase, shared, now, effect, result),
        Input::PlanProposed { effect, plan } => on_plan(phase, shared, now, effect, Ok(plan)),
        Input::PlanGenerationFailed { effect, failure } => {
            on_plan(phase, shared, now, effect, Err(failure))
        }
        Input::TestProgressed {
            effect,
            test_id,
            status,
            details,
        } => {
            if let Phase::Validating(validating) = &phase {
                on_test_progress(validating, shared, now, effect, &test_id, status, details);
            } else {
                debug!(%effect, "test progress outside validation ignored");
            }
            phase
        }
        Input::RunFinished { effect, result } => match phase {
            Phase::Validating(validating) => {
                on_run_finished(validating, shared, now, effect, result)
            }
            other => {
                debug!(%effect, "run finished outside validation ignored");
                other
            }
        },
        Input::OperatorRequestedRun { incident_id } => {
            return on_operator_run(phase, shared, now, &incident_id);
        }
        Input::CopilotAnswered(answer) => {
            shared.publish(now, WsMessage::CopilotAnswer(answer));
            phase
        }
        Input::Restarted => on_restarted(phase, shared, now),
    };
    (phase, Ok(()))
}

/// Fires the due timers of the phase.
pub(super) fn handle_timeout(phase: Phase, shared: &mut Shared, now: DateTime<Utc>) -> Phase {
    match phase {
        Phase::Healthy(healthy) => Phase::Healthy(healthy),
        Phase::IncidentActive(active) => match active.planning {
            Planning::FetchingContext { deadline, .. } if deadline <= now => {
                warn!(incident_id = %active.incident.id, "context fetch missed its deadline; using what is known");
                announce_and_plan(active.incident, shared, now)
            }
            Planning::Requesting {
                deadline,
                attempt,
                planner,
                budget_ends_at,
                ..
            } if deadline <= now => {
                warn!(incident_id = %active.incident.id, attempt, "plan request missed its deadline");
                shared.history.note(
                    &active.incident.id,
                    now,
                    TimelineKind::PlanRejected,
                    format!("attempt {attempt} ({planner:?} planner): no answer before the plan deadline"),
                );
                let failed = FailedAttempt {
                    attempt,
                    planner,
                    budget_ends_at,
                    why: "no answer",
                };
                plan_failed(active.incident, shared, now, failed, Vec::new())
            }
            Planning::Waiting { retry_at } if retry_at <= now => {
                request_plan(active.incident, shared, now, 1, Vec::new(), None)
            }
            _ => Phase::IncidentActive(active),
        },
        Phase::Validating(validating) => match &validating.run {
            RunSlot::Running(run) if run.deadline <= now => {
                shared
                    .effects
                    .push_back(Effect::CancelRun { effect: run.effect });
                // Fractional seconds, so a scaled-down deadline (a `--speed` scenario) reads as 0.8 s, not 0 s.
                let seconds = shared.config.run_deadline.as_secs_f64();
                let reason = format!("run exceeded its deadline of {seconds} s");
                warn!(incident_id = %validating.incident.id, run_id = %run.run_id, "{reason}");
                finish_run(validating, shared, now, Err(reason))
            }
            RunSlot::Idle(run) if run.next_rerun_at <= now => {
                Phase::Validating(trigger_rerun(validating, shared, now, "periodic rerun"))
            }
            _ => Phase::Validating(validating),
        },
        Phase::Recovered(recovered) if recovered.soak_until <= now => close(
            recovered.incident,
            shared,
            now,
            "soak window elapsed without relapse",
        ),
        Phase::Recovered(recovered) => Phase::Recovered(recovered),
    }
}

/// The reason the open incident is not RECOVERED.
pub(super) fn recovery_blocker(phase: &Phase, shared: &Shared) -> Option<String> {
    match phase {
        Phase::Healthy(_) | Phase::Recovered(_) => None,
        Phase::IncidentActive(_) => Some("the plan is not validated yet".to_owned()),
        Phase::Validating(validating) => Some(blocker(validating, shared, shared.now)),
    }
}

/// Whether the open incident needs a human (see [`super::Engine::needs_human`]).
pub(super) fn needs_human(phase: &Phase) -> bool {
    matches!(phase, Phase::Validating(validating) if validating.needs_human)
}

/// The reason a run in flight at a restart ends with.
const INTERRUPTED: &str = "interrupted by restart";

/// The driver restarted: the effects it had in flight are gone; re-issue or close each one.
fn on_restarted(phase: Phase, shared: &mut Shared, now: DateTime<Utc>) -> Phase {
    shared.polling.restarted(now);
    if shared.blindness.probe.take().is_some() {
        // The probe died with the old process: the next failed read may probe again at once.
        shared.blindness.next_probe_at = None;
    }
    match phase {
        Phase::IncidentActive(IncidentActive {
            incident,
            planning: Planning::FetchingContext { .. },
        }) => {
            warn!(incident_id = %incident.id, "context fetch interrupted by restart; fetching again");
            let effect = shared.effect_id();
            shared.effects.push_back(Effect::FetchContext {
                effect,
                incident_id: incident.id.clone(),
            });
            Phase::IncidentActive(IncidentActive {
                incident,
                planning: Planning::FetchingContext {
                    effect,
                    deadline: after(now, shared.config.context_deadline),
                },
            })
        }
        Phase::IncidentActive(IncidentActive {
            incident,
            planning:
                Planning::Requesting {
                    attempt,
                    budget_ends_at,
                    ..
                },
        }) => {
            warn!(incident_id = %incident.id, attempt, "plan request interrupted by restart; asking again");
            // The budget keeps its absolute end: time spent down counts, as for every timer.
            request_plan(
                incident,
                shared,
                now,
                attempt,
                Vec::new(),
                Some(budget_ends_at),
            )
        }
        Phase::Validating(mut validating) if matches!(validating.run, RunSlot::Running(_)) => {
            warn!(incident_id = %validating.incident.id, "validation run interrupted by restart; a rerun follows");
            validating.rerun_pending = true;
            finish_run(validating, shared, now, Err(INTERRUPTED.to_owned()))
        }
        other => other,
    }
}

/// How an incident was opened.
#[derive(Debug)]
enum Opening {
    Polling,
    Alert(Alert),
    Simulated,
    /// The signal source is blind and FixLoop's own probes fail.
    Unreachable {
        reason: String,
    },
}

/// The title of an incident opened by polling: `checkout: error rate 12.5% over the window (trigger 5.0%)`, from
/// the error rate in percent (the wire's unit) and the trigger as a ratio (the engine's).
fn rate_title(service: &str, error_rate_percent: f64, trigger_ratio: f64) -> String {
    format!(
        "{service}: error rate {error_rate_percent:.1}% over the window (trigger {})",
        percent(trigger_ratio)
    )
}

/// A read succeeded: the source sees again.
fn signals_back(shared: &mut Shared, now: DateTime<Utc>) {
    let blindness = &mut shared.blindness;
    blindness.failures = 0;
    blindness.reason = None;
    blindness.next_probe_at = None;
    blindness.probes_failing = false;
    if shared.status.signals_degraded.take().is_some() {
        info!("the signal source answers again; signals are no longer degraded");
        shared.publish_status(now);
    }
}

fn on_source_failed(
    phase: Phase,
    shared: &mut Shared,
    now: DateTime<Utc>,
    failure: &PortFailure,
) -> Phase {
    let issued = shared.polling.answered(now);
    let reason = format!(
        "the signal source fails: {}",
        describe_source_failure(failure)
    );
    let blindness = &mut shared.blindness;
    blindness.failures = blindness.failures.saturating_add(1);
    blindness.reason = Some(reason.clone());
    // A read that times out while all looks healthy is how a hung service shows: probe at once (the probes time out
    // too when it is hung) instead of waiting for `blind_after` failures.
    let hung = matches!(failure, PortFailure::Timeout)
        && blindness.failures == 1
        && matches!(phase, Phase::Healthy(_));
    let due = (blindness.failures >= shared.config.blind_after.max(1) || hung)
        && blindness.probe.is_none()
        && blindness.next_probe_at.is_none_or(|at| at <= now || hung);
    if due {
        let effect = shared.effect_id();
        let spacing = shared.config.poll_interval * shared.config.blind_after.max(1);
        shared.blindness.probe = Some(effect);
        shared.blindness.next_probe_at = Some(after(now, spacing));
        warn!(failures = shared.blindness.failures, %reason, "signals unavailable; probing the service");
        shared.effects.push_back(Effect::ProbeService { effect });
    } else {
        debug!(failures = shared.blindness.failures, %reason, "signal read failed");
    }
    // No data: the measurement is inconclusive and the recovery streak starts over.
    shared.signals.record_failure(now, reason);
    shared
        .polling
        .schedule(issued, now, Cadence::Normal, &shared.config);
    match phase {
        Phase::Validating(mut validating) => {
            recovery::after_measurement(&mut validating, shared, now);
            Phase::Validating(validating)
        }
        other => other,
    }
}

fn on_probed(
    phase: Phase,
    shared: &mut Shared,
    now: DateTime<Utc>,
    effect: EffectId,
    result: Result<super::SignalSample, PortFailure>,
) -> Phase {
    if shared.blindness.probe != Some(effect) {
        debug!(%effect, "answer to a probe the engine no longer waits for; ignored");
        return phase;
    }
    shared.blindness.probe = None;
    let Some(reason) = shared.blindness.reason.clone() else {
        // The source answered again while the probes ran: nothing is degraded any more.
        shared.blindness.probes_failing = false;
        return phase;
    };
    let sample = match result {
        Ok(sample) => CleanSample::new(sample),
        // Probes that do not answer in time fail: a hung service answers neither reads nor probes.
        Err(PortFailure::Timeout) => CleanSample {
            error_rate: Some(1.0),
            p95_latency_ms: None,
            top_error: Some("probes: no answer in time".to_owned()),
            requests: 1,
        },
        Err(failure) => {
            let degraded = format!(
                "{reason}; no probe could run: {}",
                describe_source_failure(&failure)
            );
            set_degraded(shared, now, degraded);
            return phase;
        }
    };
    let failing = sample
        .error_rate
        .is_some_and(|rate| rate > shared.config.trigger_error_rate)
        && sample.requests > 0;
    if !failing {
        let degraded = format!(
            "{reason}; FixLoop's own probes of the service pass ({} requests)",
            sample.requests
        );
        set_degraded(shared, now, degraded);
        let answers_again = std::mem::take(&mut shared.blindness.probes_failing);
        return match phase {
            // The service answers again: validate at once rather than on the rerun timer.
            Phase::Validating(validating) if answers_again => Phase::Validating(trigger_rerun(
                validating,
                shared,
                now,
                "the service answers FixLoop's probes again",
            )),
            other => other,
        };
    }
    shared.blindness.probes_failing = true;
    let rate = sample.error_rate.unwrap_or(1.0);
    let top = sample.top_error.clone();
    let degraded = format!(
        "{reason}; FixLoop's own probes fail ({} of them)",
        percent(rate)
    );
    match phase {
        Phase::Healthy(_) => {
            // Opening the incident publishes the status, marker included: one message, not two.
            warn!(%degraded, "signals degraded");
            shared.status.signals_degraded = Some(degraded);
            shared.status.error_rate_5m = rate * 100.0;
            if let Some(p95) = sample.p95_latency_ms {
                shared.status.p95_latency_ms_5m = p95;
            }
            let why = match top {
                Some(top) => format!("{reason}; probes failing ({}), e.g. {top}", percent(rate)),
                None => format!("{reason}; probes failing ({})", percent(rate)),
            };
            open_incident(shared, now, Opening::Unreachable { reason: why })
        }
        Phase::Recovered(recovered) => {
            warn!(%degraded, "signals degraded");
            shared.status.signals_degraded = Some(degraded);
            reopen(
                recovered,
                shared,
                now,
                "signals unavailable and probes failing during soak",
            )
        }
        other => {
            set_degraded(shared, now, degraded);
            other
        }
    }
}

fn set_degraded(shared: &mut Shared, now: DateTime<Utc>, degraded: String) {
    if shared.status.signals_degraded.as_deref() != Some(degraded.as_str()) {
        warn!(%degraded, "signals degraded");
        shared.status.signals_degraded = Some(degraded);
        shared.publish_status(now);
    }
}

fn describe_source_failure(failure: &PortFailure) -> String {
    match failure {
        PortFailure::Timeout => "no answer in time".to_owned(),
        PortFailure::RateLimited { .. } => "rate limited".to_owned(),
        PortFailure::Unauthorized => "credentials rejected".to_owned(),
        PortFailure::InvalidResponse(why) | PortFailure::Unavailable(why) => why.clone(),
    }
}

fn on_sample(phase: Phase, shared: &mut Shared, now: DateTime<Utc>, sample: CleanSample) -> Phase {
    let issued = shared.polling.answered(now);
    let age = shared.polling.measurement_age(now);
    let observed = shared.signals.record(now, &sample, &shared.config, age);
    debug!(
        requests = sample.requests,
        error_rate = ?sample.error_rate,
        ?observed,
        "signals read"
    );
    if observed.judged || observed.inconclusive {
        shared.polling.measurement_ended(issued);
    }
    // HEALTHY (and RECOVERED) never show an error rate above the trigger: a hot measurement is shown once it opens
    // (or reopens) the incident; until then it waits for its confirmation read.
    let calm = matches!(phase, Phase::Healthy(_) | Phase::Recovered(_));
    let confirming = calm && observed.hot;
    let opens = match &phase {
        Phase::Healthy(healthy) => {
            observed.triggered && healthy.cooldown_until.is_none_or(|until| now >= until)
        }
        Phase::Recovered(_) => observed.triggered,
        _ => false,
    };
    if observed.judged && (!confirming || opens) {
        if let Some(rate) = sample.error_rate {
            // The engine reasons in ratios; the wire says percent (what a dashboard prints followed by `%`).
            shared.status.error_rate_5m = rate * 100.0;
        }
        if let Some(p95) = sample.p95_latency_ms {
            shared.status.p95_latency_ms_5m = p95;
        }
        shared.status.updated_at = now;
    }
    let cadence = if confirming && !opens {
        Cadence::Confirm
    } else {
        Cadence::Normal
    };
    shared
        .polling
        .schedule(issued, now, cadence, &shared.config);
    match phase {
        Phase::Healthy(healthy) if observed.triggered => match healthy.cooldown_until {
            Some(until) if now < until => {
                debug!("error rate above the trigger during cooldown: no new incident");
                Phase::Healthy(healthy)
            }
            _ => open_incident(shared, now, Opening::Polling),
        },
        Phase::Validating(mut validating) => {
            if observed.judged || observed.inconclusive {
                recovery::after_measurement(&mut validating, shared, now);
            }
            match try_recover(validating, shared, now) {
                Phase::Validating(validating) if observed.improved => {
                    Phase::Validating(trigger_rerun(validating, shared, now, "signals improved"))
                }
                other => other,
            }
        }
        Phase::Recovered(recovered) if observed.triggered => reopen(
            recovered,
            shared,
            now,
            "error rate back above the trigger during soak",
        ),
        other => other,
    }
}

fn on_alert(phase: Phase, shared: &mut Shared, now: DateTime<Utc>, alert: Alert) -> Phase {
    let newly_firing = if shared.firing_alerts.len() < MAX_FIRING_ALERTS {
        shared.firing_alerts.insert(alert.dedupe_key.clone())
    } else {
        !shared.firing_alerts.contains(&alert.dedupe_key)
    };
    match phase {
        Phase::Healthy(_) => open_incident(shared, now, Opening::Alert(alert)),
        Phase::Recovered(recovered) if newly_firing => {
            reopen(recovered, shared, now, "a new alert fired during soak")
        }
        other => {
            debug!(dedupe_key = %alert.dedupe_key, "alert for the open incident: no new incident");
            other
        }
    }
}

fn open_incident(shared: &mut Shared, now: DateTime<Utc>, opening: Opening) -> Phase {
    let id = shared.incident_id();
    let service = shared.config.service.name.clone();
    let titled_by_rate = matches!(opening, Opening::Polling);
    // Time to detect is measured only when polling opened the incident: from the first hot sample of the window
    // that tripped the trigger. An alert, a simulation or failing probes carry no such moment.
    let first_hot_sample_at = if titled_by_rate {
        shared
            .signals
            .window
            .iter()
            .find(|(_, hot)| *hot)
            .map(|(at, _)| *at)
    } else {
        None
    };
    let why = match &opening {
        Opening::Polling => "opened by polling: the error rate stayed above the trigger".to_owned(),
        Opening::Alert(alert) => format!("opened by an alert from {}", alert.source),
        Opening::Simulated => "opened by an operator's simulation".to_owned(),
        Opening::Unreachable { .. } => {
            "opened by FixLoop's probes: signals unavailable and probes failing".to_owned()
        }
    };
    let (title, monitor_id) = match opening {
        Opening::Polling => (
            rate_title(
                &service,
                shared.status.error_rate_5m,
                shared.config.trigger_error_rate,
            ),
            None,
        ),
        Opening::Alert(alert) => (alert.title, alert.monitor_id),
        Opening::Simulated => (format!("{service}: simulated incident"), None),
        Opening::Unreachable { reason } => (format!("{service}: {reason}"), None),
    };
    let span = info_span!("incident", incident_id = %id);
    info!(parent: &span, incident_id = %id, %title, "incident opened");
    let card = IncidentCard {
        incident_id: id.as_str().to_owned(),
        title,
        detected_at: now,
        datadog_summary: DatadogSummary {
            monitor_id,
            service,
            signal: Signal {
                error_rate_5m: shared.status.error_rate_5m,
                p95_latency_ms_5m: shared.status.p95_latency_ms_5m,
                top_error: shared.signals.top_error().map(str::to_owned),
            },
            evidence_links: Vec::new(),
        },
        plan: Plan {
            plan_id: format!("{id}-plan-pending"),
            generated_at: now,
            items: Vec::new(),
        },
    };
    shared.signals.clear_window();
    shared.history.open(
        &id,
        now,
        first_hot_sample_at,
        format!("{why}: {}", card.title),
    );
    shared.set_status(now, IncidentState::IncidentActive, Some(&id));
    let effect = shared.effect_id();
    shared.effects.push_back(Effect::FetchContext {
        effect,
        incident_id: id.clone(),
    });
    Phase::IncidentActive(IncidentActive {
        incident: OpenIncident {
            id,
            card,
            span,
            titled_by_rate,
        },
        planning: Planning::FetchingContext {
            effect,
            deadline: after(now, shared.config.context_deadline),
        },
    })
}

fn on_context(
    phase: Phase,
    shared: &mut Shared,
    now: DateTime<Utc>,
    effect: EffectId,
    result: Result<IncidentContext, PortFailure>,
) -> Phase {
    match phase {
        Phase::IncidentActive(IncidentActive {
            mut incident,
            planning: Planning::FetchingContext {
                effect: expected, ..
            },
        }) if expected == effect => {
            match result {
                Ok(context) => {
                    let summary = &mut incident.card.datadog_summary;
                    if context.error_rate.is_finite() && context.error_rate >= 0.0 {
                        summary.signal.error_rate_5m = context.error_rate.min(1.0) * 100.0;
                        if incident.titled_by_rate {
                            incident.card.title = rate_title(
                                &summary.service,
                                summary.signal.error_rate_5m,
                                shared.config.trigger_error_rate,
                            );
                        }
                    }
                    if context.p95_latency_ms.is_finite() && context.p95_latency_ms >= 0.0 {
                        summary.signal.p95_latency_ms_5m = context.p95_latency_ms;
                    }
                    if context.top_error.is_some() {
                        summary.signal.top_error = context.top_error;
                    }
                    summary.evidence_links = context.evidence_links;
                }
                Err(failure) => {
                    warn!(incident_id = %incident.id, ?failure, "context fetch failed; using what is known");
                }
            }
            announce_and_plan(incident, shared, now)
        }
        other => {
            debug!(%effect, "stale context answer ignored");
            other
        }
    }
}

/// Publishes `incident.created` (empty plan) and requests the first plan.
fn announce_and_plan(incident: OpenIncident, shared: &mut Shared, now: DateTime<Utc>) -> Phase {
    shared.publish(now, WsMessage::IncidentCreated(incident.card.clone()));
    request_plan(incident, shared, now, 1, Vec::new(), None)
}

/// Requests attempt `attempt`; `budget_ends_at` is `None` at the start of a planning round (its budget starts now).
fn request_plan(
    incident: OpenIncident,
    shared: &mut Shared,
    now: DateTime<Utc>,
    attempt: u32,
    previous_violations: Vec<Violation>,
    budget_ends_at: Option<DateTime<Utc>>,
) -> Phase {
    let planner = if attempt <= shared.config.max_plan_attempts {
        PlannerChoice::Configured
    } else {
        PlannerChoice::Rules
    };
    let budget_ends_at = budget_ends_at.unwrap_or_else(|| after(now, shared.config.plan_budget));
    let deadline = after(now, shared.config.plan_deadline);
    // The configured planner's attempt ends with the budget at the latest; the rule planner is local and quick.
    let deadline = match planner {
        PlannerChoice::Configured => deadline.min(budget_ends_at),
        PlannerChoice::Rules => deadline,
    };
    let effect = shared.effect_id();
    let plan_id = shared.plan_id();
    info!(incident_id = %incident.id, attempt, ?planner, plan_id = %plan_id, "requesting a plan");
    shared.effects.push_back(Effect::RequestPlan {
        effect,
        plan_id: plan_id.clone(),
        context: shared.plan_context(&incident),
        attempt,
        previous_violations,
        planner,
    });
    Phase::IncidentActive(IncidentActive {
        incident,
        planning: Planning::Requesting {
            effect,
            plan_id,
            attempt,
            planner,
            deadline,
            budget_ends_at,
        },
    })
}

/// A plan attempt that failed, and the budget it ran under.
struct FailedAttempt {
    attempt: u32,
    planner: PlannerChoice,
    budget_ends_at: DateTime<Utc>,
    /// How it failed, in a few words (for the timeline when the budget is spent).
    why: &'static str,
}

fn on_plan(
    phase: Phase,
    shared: &mut Shared,
    now: DateTime<Utc>,
    effect: EffectId,
    result: Result<Plan, PortFailure>,
) -> Phase {
    let (incident, plan_id, attempt, planner, budget_ends_at) = match phase {
        Phase::IncidentActive(IncidentActive {
            incident,
            planning:
                Planning::Requesting {
                    effect: expected,
                    plan_id,
                    attempt,
                    planner,
                    budget_ends_at,
                    ..
                },
        }) if expected == effect => (incident, plan_id, attempt, planner, budget_ends_at),
        other => {
            debug!(%effect, "stale plan answer ignored");
            return other;
        }
    };
    match result {
        Ok(mut plan) => {
            plan.plan_id = plan_id.as_str().to_owned();
            plan.generated_at = now;
            match validate(plan, &shared.config.service.policy) {
                Ok(plan) => start_validating(incident, shared, now, plan),
                Err(violations) => {
                    warn!(incident_id = %incident.id, attempt, violations = violations.len(), "plan rejected by the validator");
                    let first = violations
                        .first()
                        .map(ToString::to_string)
                        .unwrap_or_default();
                    shared.history.note(
                        &incident.id,
                        now,
                        TimelineKind::PlanRejected,
                        format!(
                            "attempt {attempt} ({planner:?} planner): {} violation(s), first: {first}",
                            violations.len()
                        ),
                    );
                    let failed = FailedAttempt {
                        attempt,
                        planner,
                        budget_ends_at,
                        why: "an invalid plan",
                    };
                    plan_failed(incident, shared, now, failed, violations)
                }
            }
        }
        Err(failure) => {
            warn!(incident_id = %incident.id, attempt, ?failure, "plan generation failed");
            shared.history.note(
                &incident.id,
                now,
                TimelineKind::PlanRejected,
                format!(
                    "attempt {attempt} ({planner:?} planner): the planner failed: {}",
                    describe_source_failure(&failure)
                ),
            );
            let failed = FailedAttempt {
                attempt,
                planner,
                budget_ends_at,
                why: "the planner failed",
            };
            plan_failed(incident, shared, now, failed, Vec::new())
        }
    }
}

/// A plan attempt failed (invalid, generation failed, or deadline): re-request, fall back, or wait.
fn plan_failed(
    incident: OpenIncident,
    shared: &mut Shared,
    now: DateTime<Utc>,
    failed: FailedAttempt,
    violations: Vec<Violation>,
) -> Phase {
    if failed.planner == PlannerChoice::Configured {
        if now < failed.budget_ends_at {
            let next = failed.attempt.saturating_add(1);
            return request_plan(
                incident,
                shared,
                now,
                next,
                violations,
                Some(failed.budget_ends_at),
            );
        }
        // The budget is spent: no more waiting on the configured planner (a hung LLM never holds the loop).
        let budget = shared.config.plan_budget.as_secs_f64();
        let attempts = failed.attempt;
        let reason = format!(
            "planning budget of {budget} s spent after {attempts} attempt(s) of the configured planner (last: {}); \
             using the rule planner's plan",
            failed.why
        );
        warn!(incident_id = %incident.id, attempts, budget_secs = budget, "{reason}");
        shared
            .history
            .note(&incident.id, now, TimelineKind::PlanRejected, reason);
    }
    // The rule planner's answer failed too, or the budget is spent: build the rule plan here, it is pure.
    let plan = rule_plan(&shared.plan_context(&incident), shared.plan_id(), now);
    match validate(plan, &shared.config.service.policy) {
        Ok(plan) => start_validating(incident, shared, now, plan),
        Err(violations) => {
            let retry_at = after(now, shared.config.rerun_interval);
            tracing::error!(
                incident_id = %incident.id,
                first_violation = %violations.first().map(ToString::to_string).unwrap_or_default(),
                "even the rule plan is invalid under the policy; planning starts over later"
            );
            Phase::IncidentActive(IncidentActive {
                incident,
                planning: Planning::Waiting { retry_at },
            })
        }
    }
}

/// The plan is validated: publish it and start the first run.
fn start_validating(
    mut incident: OpenIncident,
    shared: &mut Shared,
    now: DateTime<Utc>,
    plan: ValidatedPlan,
) -> Phase {
    incident.card.plan = plan.plan().clone();
    info!(incident_id = %incident.id, plan_id = %plan.plan().plan_id, "plan validated");
    shared.publish(
        now,
        WsMessage::PlanGenerated(PlanGenerated {
            incident_id: incident.id.as_str().to_owned(),
            plan: plan.plan().clone(),
        }),
    );
    let run = shared.start_run(now, &incident, &plan, "plan validated");
    shared.set_status(now, IncidentState::Validating, Some(&incident.id));
    shared.publish_run(now, &run.run_id);
    Phase::Validating(Validating {
        incident,
        plan,
        run: RunSlot::Running(run),
        rerun_pending: false,
        logged_blocker: None,
        needs_human: false,
        inconclusive_noted: false,
    })
}

fn on_test_progress(
    validating: &Validating,
    shared: &mut Shared,
    now: DateTime<Utc>,
    effect: EffectId,
    test_id: &str,
    status: TestStatus,
    details: Option<String>,
) {
    let RunSlot::Running(run) = &validating.run else {
        debug!(%effect, "test progress for a finished run ignored");
        return;
    };
    if run.effect != effect {
        debug!(%effect, "stale test progress ignored");
        return;
    }
    let run_id = run.run_id.clone();
    let Some(test) = shared
        .run_mut(&run_id)
        .and_then(|run| run.tests.iter_mut().find(|test| test.test_id == test_id))
    else {
        debug!(%effect, test_id, "progress for a test not in the plan ignored");
        return;
    };
    if test.status == status && test.details == details {
        return;
    }
    test.status = status;
    test.details = details;
    test.last_update_at = now;
    shared.publish_run(now, &run_id);
}

fn on_run_finished(
    validating: Validating,
    shared: &mut Shared,
    now: DateTime<Utc>,
    effect: EffectId,
    result: Result<(), PortFailure>,
) -> Phase {
    match &validating.run {
        RunSlot::Running(run) if run.effect == effect => {
            let result = result.map_err(|failure| describe_failure(&failure));
            finish_run(validating, shared, now, result)
        }
        _ => {
            debug!(%effect, "stale run answer ignored");
            Phase::Validating(validating)
        }
    }
}

/// Ends `run` (COMPLETED on `Ok`, FAILED with the reason on `Err`), then recovers or starts a pending rerun.
fn finish_run(
    mut validating: Validating,
    shared: &mut Shared,
    now: DateTime<Utc>,
    result: Result<(), String>,
) -> Phase {
    let RunSlot::Running(run) = &validating.run else {
        return Phase::Validating(validating);
    };
    let run_id = run.run_id.clone();
    let mut passed = false;
    let mut summary = String::new();
    if let Some(test_run) = shared.run_mut(&run_id) {
        let unfinished = match &result {
            Ok(()) => "no verdict reported before the run finished".to_owned(),
            Err(reason) => format!("run failed: {reason}"),
        };
        for test in &mut test_run.tests {
            if !matches!(test.status, TestStatus::Pass | TestStatus::Fail) {
                test.status = TestStatus::Fail;
                test.details = Some(unfinished.clone());
                test.last_update_at = now;
            }
        }
        let failed: Vec<&str> = test_run
            .tests
            .iter()
            .filter(|test| test.status != TestStatus::Pass)
            .map(|test| test.name.as_str())
            .collect();
        passed = result.is_ok() && failed.is_empty() && !test_run.tests.is_empty();
        // COMPLETED means every test passed; a run with a failing test, or one that could not finish, is FAILED
        // (the reason is in the tests' details), so a dashboard never paints a failing run green.
        test_run.status = if passed {
            RunStatus::Completed
        } else {
            RunStatus::Failed
        };
        summary = match &result {
            Err(reason) => format!("run failed: {reason}"),
            Ok(()) if passed => format!("all {} tests passed", test_run.tests.len()),
            Ok(()) => format!(
                "{} of {} tests failed ({})",
                failed.len(),
                test_run.tests.len(),
                failed.join(", ")
            ),
        };
    }
    info!(incident_id = %validating.incident.id, run_id = %run_id, passed, %summary, "validation run finished");
    shared.publish_run(now, &run_id);
    if !passed {
        // Nothing is being validated any more until the next run: the incident is active.
        shared.set_status(
            now,
            IncidentState::IncidentActive,
            Some(&validating.incident.id),
        );
    }
    validating.run = RunSlot::Idle(FinishedRun {
        run_id,
        passed,
        summary,
        next_rerun_at: after(now, shared.config.rerun_interval),
    });
    let phase = try_recover(validating, shared, now);
    if let Phase::Validating(validating) = &phase {
        // The verdict of this run: why it did not recover (RECOVERED notes itself).
        let why = blocker(validating, shared, now);
        shared.history.note(
            &validating.incident.id,
            now,
            TimelineKind::RecoveryChecked,
            format!("not RECOVERED: {why}"),
        );
    }
    match phase {
        Phase::Validating(mut validating) if validating.rerun_pending => {
            validating.rerun_pending = false;
            Phase::Validating(trigger_rerun(
                validating,
                shared,
                now,
                "trigger during the previous run",
            ))
        }
        other => other,
    }
}

/// Moves to RECOVERED when both gates hold; otherwise logs why not.
fn try_recover(mut validating: Validating, shared: &mut Shared, now: DateTime<Utc>) -> Phase {
    if let RunSlot::Idle(run) = &validating.run
        && run.passed
        && shared.signals.gate(now, &shared.config).is_ok()
    {
        return recover(validating, shared, now);
    }
    let reason = blocker(&validating, shared, now);
    if validating.logged_blocker.as_deref() != Some(reason.as_str()) {
        info!(incident_id = %validating.incident.id, blocker = %reason, "not recovered yet");
        validating.logged_blocker = Some(reason);
    }
    Phase::Validating(validating)
}

fn recover(validating: Validating, shared: &mut Shared, now: DateTime<Utc>) -> Phase {
    let run_id = validating.run.run_id().clone();
    info!(incident_id = %validating.incident.id, run_id = %run_id, "recovered: every test passed and signals are healthy");
    shared.signals.clear_window();
    shared.set_status(now, IncidentState::Recovered, Some(&validating.incident.id));
    shared.publish_run(now, &run_id);
    shared.history.note(
        &validating.incident.id,
        now,
        TimelineKind::RecoveryChecked,
        format!("RECOVERED: every test of run {run_id} passed and the signal gate holds"),
    );
    Phase::Recovered(Recovered {
        incident: validating.incident,
        plan: validating.plan,
        latest_run: run_id,
        soak_until: after(now, shared.config.soak_window),
    })
}

/// Why `validating` is not RECOVERED at `now`.
pub(super) fn blocker(validating: &Validating, shared: &Shared, now: DateTime<Utc>) -> String {
    let tests = match &validating.run {
        RunSlot::Running(run) => format!("run {} is in progress", run.run_id),
        RunSlot::Idle(run) => format!("latest run {}: {}", run.run_id, run.summary),
    };
    let signals = match shared.signals.gate(now, &shared.config) {
        Ok(()) => "signals healthy".to_owned(),
        Err(reason) => reason,
    };
    if validating.needs_human {
        format!("needs a human: the signals cannot be judged; {tests}; {signals}")
    } else {
        format!("{tests}; {signals}")
    }
}

/// A rerun trigger: start a run now, or remember it when one is in progress.
fn trigger_rerun(
    mut validating: Validating,
    shared: &mut Shared,
    now: DateTime<Utc>,
    why: &str,
) -> Validating {
    match validating.run {
        RunSlot::Running(_) => {
            debug!(incident_id = %validating.incident.id, why, "rerun trigger during a run: coalesced");
            validating.rerun_pending = true;
        }
        RunSlot::Idle(_) => {
            let run = shared.start_run(now, &validating.incident, &validating.plan, why);
            if shared.status.status != IncidentState::Validating {
                shared.set_status(
                    now,
                    IncidentState::Validating,
                    Some(&validating.incident.id),
                );
            }
            shared.publish_run(now, &run.run_id);
            validating.run = RunSlot::Running(run);
        }
    }
    validating
}

/// A relapse (or an operator's request) in RECOVERED: back to VALIDATING with a rerun.
fn reopen(recovered: Recovered, shared: &mut Shared, now: DateTime<Utc>, why: &str) -> Phase {
    warn!(incident_id = %recovered.incident.id, why, "incident reopened");
    let mut recovered = recovered;
    // The card tells what is happening now: the relapse and its top error, not the first breach's.
    let card = &mut recovered.incident.card;
    card.title = format!(
        "{}: relapsed after RECOVERED ({why})",
        shared.config.service.name
    );
    if let Some(top_error) = shared.signals.top_error() {
        card.datadog_summary.signal.top_error = Some(top_error.to_owned());
    }
    recovered.incident.titled_by_rate = false;
    let run = shared.start_run(now, &recovered.incident, &recovered.plan, why);
    shared.set_status(now, IncidentState::Validating, Some(&recovered.incident.id));
    shared.publish_run(now, &run.run_id);
    Phase::Validating(Validating {
        incident: recovered.incident,
        plan: recovered.plan,
        run: RunSlot::Running(run),
        rerun_pending: false,
        logged_blocker: None,
        needs_human: false,
        inconclusive_noted: false,
    })
}

/// Closes whatever incident is open (cancelling a run in progress).
fn close_any(phase: Phase, shared: &mut Shared, now: DateTime<Utc>, why: &str) -> Phase {
    match phase {
        Phase::Healthy(healthy) => {
            debug!("no incident to close");
            Phase::Healthy(healthy)
        }
        Phase::IncidentActive(active) => close(active.incident, shared, now, why),
        Phase::Validating(validating) => {
            if let RunSlot::Running(run) = &validating.run {
                shared
                    .effects
                    .push_back(Effect::CancelRun { effect: run.effect });
                let reason = format!("run failed: cancelled, incident {why}");
                if let Some(test_run) = shared.run_mut(&run.run_id) {
                    test_run.status = RunStatus::Failed;
                    for test in &mut test_run.tests {
                        if !matches!(test.status, TestStatus::Pass | TestStatus::Fail) {
                            test.status = TestStatus::Fail;
                            test.details = Some(reason.clone());
                            test.last_update_at = now;
                        }
                    }
                }
                shared.publish_run(now, &run.run_id);
            }
            close(validating.incident, shared, now, why)
        }
        Phase::Recovered(recovered) => close(recovered.incident, shared, now, why),
    }
}

fn close(incident: OpenIncident, shared: &mut Shared, now: DateTime<Utc>, why: &str) -> Phase {
    info!(incident_id = %incident.id, why, "incident closed");
    shared.signals.clear_window();
    shared.firing_alerts.clear();
    shared.set_status(now, IncidentState::Healthy, None);
    shared.history.close(&incident.id, now, why, HISTORY);
    shared.archive(incident.card);
    Phase::Healthy(Healthy {
        cooldown_until: Some(after(now, shared.config.cooldown)),
    })
}

fn on_operator_run(
    phase: Phase,
    shared: &mut Shared,
    now: DateTime<Utc>,
    incident_id: &IncidentId,
) -> (Phase, Result<(), Rejected>) {
    let open = phase.incident().is_some_and(|open| open.id == *incident_id);
    if !open {
        let rejection = if shared.closed_incident(incident_id).is_some() {
            Rejected::IncidentClosed(incident_id.clone())
        } else {
            Rejected::UnknownIncident(incident_id.clone())
        };
        return (phase, Err(rejection));
    }
    match phase {
        Phase::IncidentActive(active) => (
            Phase::IncidentActive(active),
            Err(Rejected::PlanNotReady(incident_id.clone())),
        ),
        Phase::Validating(validating) => {
            if let RunSlot::Running(_) = validating.run {
                debug!(%incident_id, "operator run during a run: the run in progress answers it");
                return (Phase::Validating(validating), Ok(()));
            }
            let validating = trigger_rerun(validating, shared, now, "operator requested a run");
            (Phase::Validating(validating), Ok(()))
        }
        Phase::Recovered(recovered) => (
            reopen(recovered, shared, now, "operator requested a run"),
            Ok(()),
        ),
        Phase::Healthy(healthy) => (
            Phase::Healthy(healthy),
            Err(Rejected::UnknownIncident(incident_id.clone())),
        ),
    }
}

fn describe_failure(failure: &PortFailure) -> String {
    match failure {
        PortFailure::Timeout => "runner timed out".to_owned(),
        PortFailure::RateLimited { .. } => "runner rate limited".to_owned(),
        PortFailure::Unauthorized => "runner rejected our credentials".to_owned(),
        PortFailure::InvalidResponse(what) => format!("runner answer not understood: {what}"),
        PortFailure::Unavailable(what) => format!("runner unavailable: {what}"),
    }
}
