//! Carrying out the engine's effects: every port call goes through [`call_port`] (one timeout, one
//! classification of failures as the core's [`PortFailure`]), runs as a task in the driver's `JoinSet`, and comes
//! back as a [`Completion`] the driver feeds to the engine as an input.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use fixloop_adapters::{
    ActionClaim, ActionRequest, ActionStatus, AdapterError, ChoiceRequest, Claimed, ContextQuery,
    PlanRequest, SignalReading, StoreError, TestProgress,
};
use fixloop_contract::Plan;
use fixloop_core::engine::{
    Effect, IncidentContext, Input, PlannerChoice, PortFailure, SignalSample,
};
use fixloop_core::{EffectId, IncidentId, RunId};
use tokio::sync::mpsc;
use tracing::Instrument;

use super::Driver;
use super::journal::Fence;
use crate::runtime::wire;

/// A finished port call.
#[derive(Debug)]
pub(super) enum Completion {
    Signal(DateTime<Utc>, Result<SignalReading, PortFailure>),
    Context(EffectId, Result<IncidentContext, PortFailure>),
    Plan(EffectId, Result<Plan, PortFailure>),
    Run(EffectId, Result<(), PortFailure>),
    Probe(EffectId, Result<SignalSample, PortFailure>),
    Action(EffectId, Result<(), PortFailure>),
    /// A model's pick: the action id, or none, and its reason (or why there is none).
    Choice(EffectId, Option<String>, String),
    /// The store refused the action's claim: the lease is lost, the action was not carried out.
    ActionFenced(EffectId, StoreError),
}

/// How long the driver waits for a model's pick at most (the engine's choice deadline may be shorter).
const DEFAULT_CHOICE_TIMEOUT: Duration = Duration::from_secs(20);

impl Driver {
    /// Carries out every effect the engine has queued.
    pub(super) fn drain(&mut self) {
        while let Some(effect) = self.engine.poll_effect() {
            match effect {
                Effect::Publish(envelope) => self.publish(&envelope),
                Effect::FetchContext {
                    effect,
                    incident_id,
                } => self.fetch_context(effect, &incident_id),
                Effect::RequestPlan {
                    effect,
                    plan_id,
                    context,
                    attempt,
                    previous_violations,
                    planner,
                } => {
                    let request = PlanRequest {
                        // The id the engine will stamp on the candidate: the driver makes none of its own.
                        plan_id,
                        // The incident's own context, as the engine holds it: never another incident's.
                        context,
                        attempt,
                        previous_violations,
                        now: self.now(),
                    };
                    self.request_plan(effect, request, planner);
                }
                Effect::StartRun {
                    effect,
                    run_id,
                    plan,
                } => self.start_run(effect, run_id, plan),
                Effect::CancelRun { effect } => {
                    if let Some((run_id, handle)) = self.runs.remove(&effect) {
                        handle.abort();
                        self.observe_run_end(&run_id);
                    }
                }
                Effect::ProbeService { effect } => self.probe_service(effect),
                Effect::SampleSignals { window } => self.start_signal_read(window),
                Effect::ExecuteAction {
                    effect,
                    proposal,
                    incident_id,
                    action_id,
                    dry_run,
                } => self.execute_action(effect, &proposal, &incident_id, action_id, dry_run),
                Effect::ChooseAction {
                    effect,
                    incident_id,
                    kind,
                    title,
                    top_error,
                    error_rate,
                    candidates,
                } => {
                    let request = ChoiceRequest {
                        incident_id: incident_id.as_str().to_owned(),
                        kind,
                        title,
                        top_error,
                        error_rate,
                        candidates,
                    };
                    self.choose_action(effect, request);
                }
                Effect::CancelAction { effect } => {
                    if let Some(handle) = self.actions.remove(&effect) {
                        handle.abort();
                        tracing::warn!(%effect, "remediation action cancelled");
                    }
                }
                // Logged always, and queued in the outbox when sinks are configured.
                Effect::Notify(notification) => {
                    tracing::info!(
                        kind = ?notification.kind,
                        incident_id = %notification.incident_id,
                        proposal = ?notification.proposal.as_ref().map(fixloop_core::ProposalId::as_str),
                        summary = %notification.summary,
                        "notification"
                    );
                    if notification.kind == fixloop_core::engine::NotificationKind::Escalated {
                        self.publish_escalation(
                            notification.incident_id.as_str(),
                            &notification.summary,
                        );
                    }
                    self.notice_remediation(&notification);
                }
            }
        }
    }

    /// Reads the signal source over `window`, as the engine asked (it issues one read at a time).
    fn start_signal_read(&mut self, window: Duration) {
        let signals = Arc::clone(&self.ports.signals);
        let timeout = self.config.signal_timeout;
        self.tasks.spawn(async move {
            let result = call_port("signal source", timeout, signals.read(window)).await;
            Completion::Signal(Utc::now(), result)
        });
    }

    /// Carries out (or, for a dry run, describes and logs) a remediation action within the engine's action
    /// deadline; answers `ActionFinished`. An action the target reports failed is a failure for the engine.
    ///
    /// With a journal, the action is first claimed in the store under the service's lease (see
    /// [`fixloop_adapters::ActionClaim`]): a claim the store refuses as fenced means another replica leads the
    /// service, so nothing is carried out and the driver stops (feeding the engine nothing); an action claimed
    /// before is not carried out again (see [`claimed`]).
    fn execute_action(
        &mut self,
        effect: EffectId,
        proposal: &fixloop_core::ProposalId,
        incident_id: &IncidentId,
        action_id: String,
        dry_run: bool,
    ) {
        let executor = self.executor.clone();
        let deadline = self.config.engine.remediation.action_deadline;
        let now = self.now();
        let fence = self.journal.as_ref().map(|journal| journal.fence.clone());
        let claim = ActionClaim {
            proposal: proposal.as_str().to_owned(),
            // The version the proposal reached when its execution was requested (the engine changed it to
            // Executing before handing out the effect).
            version: self
                .engine
                .proposal(proposal)
                .map_or(0, |found| found.version),
            action_id: action_id.clone(),
            at: now,
        };
        let request = ActionRequest::new(action_id, deadline, now);
        let span =
            tracing::info_span!("incident", incident_id = %incident_id, proposal = %proposal);
        let handle = self.tasks.spawn(
            async move {
                if let Some(fence) = fence
                    && let Err(completion) = claimed(effect, &fence, &claim).await
                {
                    return completion;
                }
                let Some(executor) = executor else {
                    tracing::warn!(action_id = %request.action_id, "no executor is configured: the action fails");
                    let why = format!("no executor is configured for action {}", request.action_id);
                    return Completion::Action(effect, Err(PortFailure::Unavailable(why)));
                };
                if dry_run {
                    let result = match executor.describe(&request) {
                        Ok(description) => {
                            tracing::info!(action_id = %description.action_id, would_run = %description.summary, "dry run: action not carried out");
                            Ok(())
                        }
                        Err(error) => {
                            tracing::warn!(%error, "dry run refused");
                            Err(error.to_port_failure())
                        }
                    };
                    return Completion::Action(effect, result);
                }
                let result = call_port("executor", deadline, executor.execute(&request))
                    .await
                    .and_then(|outcome| match outcome.status {
                        ActionStatus::Completed => {
                            tracing::info!(detail = %outcome.detail, "action carried out");
                            Ok(())
                        }
                        ActionStatus::Failed => Err(PortFailure::Unavailable(outcome.detail)),
                    });
                Completion::Action(effect, result)
            }
            .instrument(span),
        );
        self.actions.insert(effect, handle);
    }

    /// Asks the configured model for its pick of a remediation step, within [`DEFAULT_CHOICE_TIMEOUT`] (or the
    /// engine's shorter choice deadline); answers `ActionChosen`, with no pick when there is no model, it failed,
    /// or it timed out. The engine checks the pick.
    fn choose_action(&mut self, effect: EffectId, request: ChoiceRequest) {
        let chooser = self.chooser.clone();
        let timeout = DEFAULT_CHOICE_TIMEOUT.min(self.config.engine.remediation.choice_deadline);
        let span = tracing::info_span!("incident", incident_id = %request.incident_id);
        self.tasks.spawn(
            async move {
                let Some(chooser) = chooser else {
                    let why = "no model is configured".to_owned();
                    return Completion::Choice(effect, None, why);
                };
                let name = chooser.chooser();
                let result = call_port("remediation chooser", timeout, chooser.choose(&request)).await;
                match result {
                    Ok(answer) => {
                        tracing::info!(chooser = name, action = %answer.action, "the model picked a remediation step");
                        Completion::Choice(effect, Some(answer.action), answer.reason)
                    }
                    Err(failure) => {
                        let why = format!("the model {name} failed: {}", failure_words(&failure));
                        Completion::Choice(effect, None, why)
                    }
                }
            }
            .instrument(span),
        );
    }

    /// Probes the service with its own journeys (the signal source is blind); answers `ServiceProbed`.
    fn probe_service(&mut self, effect: EffectId) {
        let prober = Arc::clone(&self.ports.prober);
        // Only the probes just run fall in this window: probes are spaced by several polling intervals.
        let window = self.config.engine.poll_interval;
        let timeout = self.config.signal_timeout;
        self.tasks.spawn(async move {
            let result = call_port("prober", timeout, prober.read(window))
                .await
                .map(|reading| wire::signal_sample(reading, Utc::now()));
            Completion::Probe(effect, result)
        });
    }

    /// Reads the incident's signals and, when a context source is configured, gathers its findings at the same
    /// time; both within the engine's `context_deadline` (the source within three quarters of it). The findings add to the signals (a failed or slow source
    /// of context leaves the signals' context as it is); a failed signal read fails the fetch.
    fn fetch_context(&mut self, effect: EffectId, incident_id: &IncidentId) {
        let signals = Arc::clone(&self.ports.signals);
        let source = self.ports.context.clone();
        let window = self.config.engine.detection_window;
        let deadline = self.config.engine.context_deadline;
        let timeout = self.config.signal_timeout.min(deadline);
        // The findings are extra: the source gets three quarters of the deadline, so that a slow one still leaves
        // the engine the signals' context before the deadline makes it plan without any.
        let gather_timeout = deadline.mul_f64(0.75);
        let query = ContextQuery {
            service: self.config.engine.service.name.clone(),
            incident_id: Some(incident_id.as_str().to_owned()),
            window,
        };
        let span = tracing::info_span!("incident", incident_id = %incident_id);
        self.tasks.spawn(
            async move {
                let read = async {
                    call_port("signal source", timeout, signals.read(window))
                        .await
                        .map(wire::incident_context)
                };
                let gather = async {
                    let source = source?;
                    // A failed or slow source of context is logged, and planning goes on with the signals' context.
                    call_port("context source", gather_timeout, source.gather(&query))
                        .await
                        .ok()
                };
                let (result, findings) = tokio::join!(read, gather);
                let result = result.map(|context| wire::with_findings(context, findings));
                Completion::Context(effect, result)
            }
            .instrument(span),
        );
    }

    fn request_plan(&mut self, effect: EffectId, request: PlanRequest, choice: PlannerChoice) {
        let planner = match choice {
            PlannerChoice::Configured => Arc::clone(&self.ports.planner),
            PlannerChoice::Rules => Arc::clone(&self.ports.rule_planner),
        };
        let timeout = self.config.engine.plan_deadline;
        let span = tracing::info_span!("incident", incident_id = %request.context.incident_id);
        self.tasks.spawn(
            async move {
                tracing::info!(attempt = request.attempt, planner = ?choice, "requesting a plan");
                let result = call_port("planner", timeout, planner.propose(&request)).await;
                Completion::Plan(effect, result)
            }
            .instrument(span),
        );
    }

    fn start_run(&mut self, effect: EffectId, run_id: RunId, plan: fixloop_core::ValidatedPlan) {
        let runner = Arc::clone(&self.ports.runner);
        let forward_to = self.progress_sender.clone();
        // The engine's own run deadline fires first; this only guarantees the task ends.
        let timeout = self.config.engine.run_deadline + Duration::from_secs(5);
        let span = self.incident_span();
        self.metrics.run_started();
        let task_run_id = run_id.clone();
        let handle = self.tasks.spawn(
            async move {
                let run_id = task_run_id;
                let (sink, mut progress) = mpsc::channel::<TestProgress>(64);
                let run = call_port("test runner", timeout, runner.run(&run_id, &plan, sink));
                let forward = async {
                    while let Some(update) = progress.recv().await {
                        if forward_to.send((effect, update)).await.is_err() {
                            break;
                        }
                    }
                };
                // Every progress message is queued for the driver before the completion is, and the driver reads
                // progress first (biased select), so `RunFinished` always comes after the run's last progress.
                let (result, ()) = tokio::join!(run, forward);
                Completion::Run(effect, result)
            }
            .instrument(span),
        );
        self.runs.insert(effect, (run_id, handle));
    }

    /// Feeds a finished port call to the engine.
    pub(super) async fn complete(&mut self, completion: Completion) {
        match completion {
            Completion::Signal(at, result) => {
                self.metrics.signal_read(result.is_ok());
                let input = match result {
                    Ok(reading) => Input::SignalSampled(wire::signal_sample(reading, at)),
                    Err(failure) => Input::SignalSourceFailed { failure },
                };
                let _ = self.feed(input).await;
            }
            Completion::Context(effect, result) => {
                let _ = self.feed(Input::ContextFetched { effect, result }).await;
            }
            Completion::Plan(effect, Ok(plan)) => {
                let _ = self.feed(Input::PlanProposed { effect, plan }).await;
            }
            Completion::Plan(effect, Err(failure)) => {
                let _ = self
                    .feed(Input::PlanGenerationFailed { effect, failure })
                    .await;
            }
            Completion::Run(effect, result) => {
                let run = self.runs.remove(&effect);
                let _ = self.feed(Input::RunFinished { effect, result }).await;
                if let Some((run_id, _)) = run {
                    self.observe_run_end(&run_id);
                }
            }
            Completion::Probe(effect, result) => {
                let _ = self.feed(Input::ServiceProbed { effect, result }).await;
            }
            Completion::Action(effect, result) => {
                self.actions.remove(&effect);
                let _ = self.feed(Input::ActionFinished { effect, result }).await;
            }
            Completion::Choice(effect, action, reason) => {
                let input = Input::ActionChosen {
                    effect,
                    action,
                    reason,
                };
                let _ = self.feed(input).await;
            }
            Completion::ActionFenced(effect, error) => {
                self.actions.remove(&effect);
                self.fenced = true;
                self.metrics.journal_fenced();
                tracing::error!(%error, %effect, "action claim fenced: another replica leads this service now; the action was not carried out and the driver stops");
            }
        }
    }
}

/// Claims the action of `effect` under `fence` before it is carried out: `Err` with what to answer instead when
/// it must not run.
///
/// - Fenced (the lease is lost): [`Completion::ActionFenced`]; the engine is fed nothing, as for a fenced append
///   (the new leader restores the proposal from the journal and settles it: an action in flight at a restart is
///   inconclusive).
/// - Claimed before (a restored engine asking again for an action that already ran, or may have run):
///   `ActionFinished` with a failure saying so. The engine has no input for "ran somewhere, outcome unknown"; a
///   failure is the honest one it has: this process did not carry it out, it is not judged effective, and the
///   engine moves on (the next step or an escalation) instead of waiting for a deadline. It is never run twice.
/// - The store cannot record the claim: the action is not carried out (a failure saying why), since running it
///   unclaimed could run it twice.
async fn claimed(effect: EffectId, fence: &Fence, claim: &ActionClaim) -> Result<(), Completion> {
    match fence.leases.claim_action(&fence.lease, claim).await {
        Ok(Claimed::Claimed) => Ok(()),
        Ok(Claimed::Taken { holder, epoch }) => {
            tracing::warn!(proposal = %claim.proposal, version = claim.version, %holder, epoch, "action claimed before: not carried out again");
            let why = format!(
                "action {} of proposal {} was claimed before by {holder} (epoch {epoch}): not carried out again, its outcome is unknown here",
                claim.action_id, claim.proposal
            );
            Err(Completion::Action(
                effect,
                Err(PortFailure::Unavailable(why)),
            ))
        }
        Err(error @ StoreError::Fenced { .. }) => Err(Completion::ActionFenced(effect, error)),
        Err(error) => {
            tracing::error!(%error, proposal = %claim.proposal, "the action could not be claimed: not carried out");
            let why =
                format!("the action could not be claimed in the store ({error}): not carried out");
            Err(Completion::Action(
                effect,
                Err(PortFailure::Unavailable(why)),
            ))
        }
    }
}

/// A port failure in a few words, for the proposal's note.
fn failure_words(failure: &PortFailure) -> &'static str {
    match failure {
        PortFailure::Timeout => "timeout",
        PortFailure::RateLimited { .. } => "rate limited",
        PortFailure::Unauthorized => "credentials rejected",
        PortFailure::InvalidResponse(_) => "no usable pick in its answer",
        _ => "unavailable",
    }
}

/// One port call, the only way the driver calls a port: bounded by `timeout`, its failure logged once (with `port`,
/// the role called) and classified as the core's [`PortFailure`]; a call that misses its timeout is
/// [`PortFailure::Timeout`]. Adapters make one attempt: retries are the engine's.
async fn call_port<T>(
    port: &'static str,
    timeout: Duration,
    call: impl Future<Output = Result<T, AdapterError>>,
) -> Result<T, PortFailure> {
    let error = match tokio::time::timeout(timeout, call).await {
        Ok(Ok(value)) => return Ok(value),
        Ok(Err(error)) => error,
        Err(_) => AdapterError::timeout(timeout),
    };
    tracing::warn!(%error, port, "port call failed");
    Err(error.to_port_failure())
}
