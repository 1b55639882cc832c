//! The driver: the one task that owns the core's [`Engine`] and carries out its effects (STYLE.md §5).
//!
//! It `select!`s over handler commands (each with a oneshot reply), test progress, port completions (a
//! [`JoinSet`] it owns) and the engine's next timeout (the engine's own polling timer included: the engine decides
//! when the signals are read, and over which window). After every `handle_*` call it drains
//! `poll_effect` until `None`. Port calls run as tasks in the `JoinSet`, each bounded by a timeout, and their results
//! come back as engine inputs; shutting the driver down aborts them all. Nothing is detached. It is also the only
//! publisher of WebSocket events, so it owns the [`Hub`] and a client's join snapshot is taken atomically.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use fixloop_adapters::{
    AdapterError, ContextQuery, ContextSource, Copilot, CopilotState, JournalEntry, PlanRequest,
    Planner, SignalReading, SignalSource, Store, StoreError, TestProgress, TestRunner,
};
use fixloop_contract::{
    CopilotAnswer, IncidentCard, IncidentDetail, IncidentSummary, Plan, RunStatus, SimulateMode,
    SystemStatus, TestRun, WsEnvelope, WsMessage,
};
use fixloop_core::engine::{
    Effect, Engine, IncidentContext, Input, PlannerChoice, PortFailure, RecordedInput, Rejected,
};
use fixloop_core::{EffectId, IncidentId, RunId};
use tokio::sync::{mpsc, oneshot};
use tokio::task::{AbortHandle, JoinSet};
use tracing::Instrument;

use crate::http::error::ApiError;
use crate::runtime::metrics::ServerMetrics;
use crate::runtime::stream::{DEFAULT_REPLAY_CAPACITY, Hub, Outgoing, Sequence, Subscribed};
use crate::runtime::wire;

/// How long a handler waits for the driver to take and answer a command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// Journal entries between two snapshots of the engine (a restart replays at most this many).
const SNAPSHOT_EVERY: u64 = 256;

/// The ports the driver calls.
#[derive(Debug, Clone)]
pub struct Ports {
    /// Where signals come from.
    pub signals: Arc<dyn SignalSource>,
    /// The configured planner (MiniMax when keys are set, else the rule planner).
    pub planner: Arc<dyn Planner>,
    /// The rule planner, the fallback the engine asks for with [`PlannerChoice::Rules`].
    pub rule_planner: Arc<dyn Planner>,
    /// The test runner.
    pub runner: Arc<dyn TestRunner>,
    /// The copilot (called by the copilot handler, not by the driver).
    pub copilot: Arc<dyn Copilot>,
    /// FixLoop's own probes of the service (synthetic probes of its journeys), used when the signal source is
    /// blind ([`Effect::ProbeService`]).
    pub prober: Arc<dyn SignalSource>,
    /// Extra incident context (metrics, logs, monitors) beyond the signals, when one is configured.
    pub context: Option<Arc<dyn ContextSource>>,
}

/// The driver's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct DriverConfig {
    /// The engine's configuration; its polling timer decides when the signal source is read, and over which window
    /// ([`Effect::SampleSignals`]).
    pub engine: fixloop_core::engine::Config,
    /// Timeout of one signal read.
    pub signal_timeout: Duration,
    /// Capacity of each WebSocket client's queue.
    pub websocket_queue: usize,
}

/// A handle on the driver for the HTTP handlers: cheap to clone.
#[derive(Debug, Clone)]
pub struct DriverHandle {
    commands: mpsc::Sender<Command>,
}

/// The driver. Build with [`Driver::new`], run with [`Driver::run`].
#[derive(Debug)]
pub struct Driver {
    engine: Engine,
    ports: Ports,
    config: DriverConfig,
    metrics: Arc<ServerMetrics>,
    hub: Hub,
    commands: mpsc::Receiver<Command>,
    tasks: JoinSet<Completion>,
    /// The runs this process is carrying out (its own tasks), by their `StartRun` effect.
    runs: HashMap<EffectId, (RunId, AbortHandle)>,
    progress_sender: mpsc::Sender<(EffectId, TestProgress)>,
    progress: mpsc::Receiver<(EffectId, TestProgress)>,
    last_now: DateTime<Utc>,
    /// Where the engine's inputs are journaled; `None` keeps nothing.
    journal: Option<Journal>,
}

/// The engine's journal in a [`Store`].
#[derive(Debug)]
struct Journal {
    store: Arc<dyn Store>,
    service: String,
    /// The seq of the last entry appended.
    seq: u64,
    /// The seq the latest snapshot covers.
    snapshot_seq: u64,
    /// An append failed: inputs are not journaled until a snapshot heals the journal.
    broken: bool,
}

/// A command from a handler.
#[derive(Debug)]
enum Command {
    Status(oneshot::Sender<SystemStatus>),
    CurrentIncident(oneshot::Sender<Option<IncidentCard>>),
    BugToggled(bool, oneshot::Sender<SystemStatus>),
    Simulate(SimulateMode, oneshot::Sender<Option<IncidentCard>>),
    RunTests(String, oneshot::Sender<Result<TestRun, ApiError>>),
    Run(String, oneshot::Sender<Option<TestRun>>),
    HasIncident(String, oneshot::Sender<bool>),
    CopilotState(
        Option<String>,
        oneshot::Sender<Result<CopilotState, ApiError>>,
    ),
    CopilotAnswered(CopilotAnswer, oneshot::Sender<()>),
    Alert(Input, oneshot::Sender<()>),
    Subscribe(Option<u64>, oneshot::Sender<Subscribed>),
    Incidents(
        usize,
        Option<(DateTime<Utc>, String)>,
        oneshot::Sender<Vec<IncidentSummary>>,
    ),
    IncidentHistory(String, oneshot::Sender<Option<IncidentDetail>>),
}

/// A finished port call.
#[derive(Debug)]
enum Completion {
    Signal(DateTime<Utc>, Result<SignalReading, AdapterError>),
    Context(EffectId, Result<IncidentContext, PortFailure>),
    Plan(EffectId, Result<Plan, PortFailure>),
    Run(EffectId, Result<(), PortFailure>),
    Probe(
        EffectId,
        Result<fixloop_core::engine::SignalSample, PortFailure>,
    ),
}

impl Driver {
    /// A driver with a healthy engine, and the handle the handlers use; its WebSocket events are numbered by a
    /// [`Sequence`] of its own.
    #[must_use]
    pub fn new(
        config: DriverConfig,
        ports: Ports,
        metrics: Arc<ServerMetrics>,
    ) -> (Self, DriverHandle) {
        Self::sharing(config, ports, metrics, Sequence::new())
    }

    /// [`Driver::new`], numbering its WebSocket events with `sequence`, which every driver of the process shares (so
    /// a client's `seq` order holds across services).
    #[must_use]
    pub fn sharing(
        config: DriverConfig,
        ports: Ports,
        metrics: Arc<ServerMetrics>,
        sequence: Sequence,
    ) -> (Self, DriverHandle) {
        let now = Utc::now();
        let (command_sender, commands) = mpsc::channel(256);
        let (progress_sender, progress) = mpsc::channel(256);
        let driver = Self {
            engine: Engine::new(config.engine.clone(), now),
            hub: Hub::with_sequence(config.websocket_queue, DEFAULT_REPLAY_CAPACITY, sequence),
            ports,
            config,
            metrics,
            commands,
            tasks: JoinSet::new(),
            runs: HashMap::new(),
            progress_sender,
            progress,
            last_now: now,
            journal: None,
        };
        (
            driver,
            DriverHandle {
                commands: command_sender,
            },
        )
    }

    /// A driver whose engine is restored from `store` (the latest snapshot, then the journal's tail replayed),
    /// or a fresh one recorded there when the store has nothing for this service; every input is journaled from
    /// now on. After a restore the engine is told [`Input::Restarted`], so the effects that died with the previous
    /// process are re-issued or closed (a run in flight ends FAILED "interrupted by restart" and a rerun starts).
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot be read, or holds a snapshot this build cannot restore.
    ///
    /// Its WebSocket events are numbered by `sequence` (see [`Driver::sharing`]); the journal does not keep them,
    /// so a restarted process starts a new sequence.
    pub async fn restore(
        config: DriverConfig,
        ports: Ports,
        metrics: Arc<ServerMetrics>,
        store: Arc<dyn Store>,
        sequence: Sequence,
    ) -> Result<(Self, DriverHandle), StoreError> {
        let service = config.engine.service.name.clone();
        let stored = store.load(&service).await?;
        let last_seq = stored.last_seq();
        let (mut driver, handle) = Self::sharing(config, ports, metrics, sequence);
        let restored = match stored.snapshot {
            Some((snapshot_seq, snapshot)) => {
                let engine =
                    Engine::restore(driver.config.engine.clone(), snapshot).map_err(|error| {
                        StoreError::Corrupt {
                            location: format!("the journal of {service}"),
                            why: error.to_string(),
                        }
                    })?;
                let replayed = stored.tail.len();
                driver.engine = engine;
                for entry in stored.tail {
                    // These effects were carried out (or lost) by the previous process; only the state matters.
                    match entry.input {
                        Some(input) => {
                            let _ = driver.engine.handle_input(entry.at, input.into_input());
                        }
                        None => driver.engine.handle_timeout(entry.at),
                    }
                    while driver.engine.poll_effect().is_some() {}
                    driver.last_now = driver.last_now.max(entry.at);
                }
                tracing::info!(
                    %service,
                    snapshot_seq,
                    replayed,
                    status = ?driver.engine.status().status,
                    incident_id = ?driver.engine.status().active_incident_id,
                    "engine restored from the journal"
                );
                Some(snapshot_seq)
            }
            None if stored.tail.is_empty() => None,
            None => {
                return Err(StoreError::Corrupt {
                    location: format!("the journal of {service}"),
                    why: "entries without a first snapshot".to_owned(),
                });
            }
        };
        let journal = Journal {
            store,
            service,
            seq: last_seq,
            snapshot_seq: restored.unwrap_or(0),
            broken: false,
        };
        if restored.is_none() {
            // The first snapshot is the fresh engine: a replay of the whole journal starts from it.
            let snapshot = driver
                .engine
                .snapshot()
                .map_err(|error| StoreError::Failed {
                    location: format!("the journal of {}", journal.service),
                    why: error.to_string(),
                })?;
            journal
                .store
                .save_snapshot(&journal.service, 0, snapshot)
                .await?;
        }
        driver.journal = Some(journal);
        if restored.is_some() {
            let _ = driver.feed(Input::Restarted).await;
        }
        Ok((driver, handle))
    }

    /// Runs until `shutdown` resolves, then aborts every port call and closes every WebSocket client.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        tracing::info!(
            service = %self.config.engine.service.name,
            base_url = %self.config.engine.service.base_url,
            poll_interval_ms = self.config.engine.poll_interval.as_millis() as u64,
            confirm_delay_ms = self.config.engine.confirm_delay.as_millis() as u64,
            "driver started"
        );
        loop {
            let timeout = self.engine.poll_timeout().map(to_instant);
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                Some((effect, progress)) = self.progress.recv() => {
                    let _ = self.feed(Input::TestProgressed {
                        effect,
                        test_id: progress.test_id,
                        status: progress.status,
                        details: progress.details,
                    }).await;
                }
                Some(joined) = self.tasks.join_next(), if !self.tasks.is_empty() => match joined {
                    Ok(completion) => self.complete(completion).await,
                    Err(error) if error.is_cancelled() => {}
                    Err(error) => tracing::error!(%error, "a port task panicked"),
                },
                Some(command) = self.commands.recv() => self.command(command).await,
                () = sleep_until(timeout), if timeout.is_some() => {
                    let now = self.now();
                    self.record(now, None).await;
                    let open_before = self.open_incident_id();
                    self.engine.handle_timeout(now);
                    self.drain();
                    self.observe_closed(open_before);
                    self.observe_needs_human();
                    self.snapshot_now_and_then().await;
                }
            }
        }
        self.tasks.shutdown().await;
        self.save_snapshot().await;
        self.hub.close_all();
        self.metrics.websocket_clients(0, 0);
        tracing::info!("driver stopped");
    }

    /// A non-decreasing `now` (the engine requires it even if the wall clock steps back).
    fn now(&mut self) -> DateTime<Utc> {
        self.last_now = self.last_now.max(Utc::now());
        self.last_now
    }

    /// Journals `input`, feeds it to the engine and carries out its effects (the input is durable before any of
    /// them runs).
    async fn feed(&mut self, input: Input) -> Result<(), Rejected> {
        let now = self.now();
        self.record(now, Some(&input)).await;
        let open_before = self.open_incident_id();
        let result = self.engine.handle_input(now, input);
        self.drain();
        self.observe_closed(open_before);
        self.observe_needs_human();
        self.snapshot_now_and_then().await;
        if let Err(rejected) = &result {
            tracing::debug!(%rejected, "input rejected");
        }
        result
    }

    /// Appends the call about to be made on the engine to the journal (nothing when there is none).
    async fn record(&mut self, now: DateTime<Utc>, input: Option<&Input>) {
        let Some(journal) = self.journal.as_mut() else {
            return;
        };
        if journal.broken {
            // Not journaled: each such input is a lost append, counted one by one.
            self.metrics.journal_append(false);
            return;
        }
        let entry = JournalEntry {
            seq: journal.seq + 1,
            at: now,
            input: input.map(RecordedInput::from),
        };
        match journal.store.append(&journal.service, entry).await {
            Ok(()) => {
                journal.seq += 1;
                self.metrics.journal_append(true);
            }
            Err(error) => {
                // FixLoop keeps watching in memory: an outage of the disk must not stop the loop during an
                // outage of the service. A snapshot heals the journal later.
                journal.broken = true;
                self.metrics.journal_append(false);
                self.metrics
                    .journal_failing(&journal.service, Some(error.to_string()));
                tracing::error!(%error, service = %journal.service, seq = journal.seq + 1, "journal append failed; inputs are not journaled until a snapshot succeeds");
            }
        }
    }

    /// Saves a snapshot every [`SNAPSHOT_EVERY`] entries, and at once while the journal is broken.
    async fn snapshot_now_and_then(&mut self) {
        let due = self.journal.as_ref().is_some_and(|journal| {
            journal.broken || journal.seq >= journal.snapshot_seq + SNAPSHOT_EVERY
        });
        if due {
            self.save_snapshot().await;
        }
    }

    /// Saves a snapshot of the engine as it is now, covering every entry appended so far; a snapshot of a broken
    /// journal heals it (the state is whole again, though a replay of the lost span is not).
    async fn save_snapshot(&mut self) {
        let Some(journal) = self.journal.as_mut() else {
            return;
        };
        let snapshot = match self.engine.snapshot() {
            Ok(snapshot) => snapshot,
            Err(error) => {
                tracing::error!(%error, "cannot snapshot the engine");
                return;
            }
        };
        match journal
            .store
            .save_snapshot(&journal.service, journal.seq, snapshot)
            .await
        {
            Ok(()) => {
                journal.snapshot_seq = journal.seq;
                if journal.broken {
                    journal.broken = false;
                    self.metrics.journal_failing(&journal.service, None);
                    tracing::warn!(service = %journal.service, seq = journal.seq, "journal healed by a snapshot; the inputs while it was broken are not in it");
                }
            }
            Err(error) if !journal.broken => {
                tracing::error!(%error, service = %journal.service, "snapshot failed");
            }
            Err(_) => {}
        }
    }

    fn drain(&mut self) {
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
                        incident: wire::plan_incident_context(&context),
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
            }
        }
    }

    fn publish(&mut self, envelope: &WsEnvelope) {
        match &envelope.message {
            WsMessage::IncidentCreated(card) => {
                self.metrics.incident_opened();
                tracing::info!(incident_id = %card.incident_id, title = %card.title, "incident opened");
            }
            WsMessage::SystemStatus(status) => {
                tracing::info!(status = ?status.status, incident_id = ?status.active_incident_id, signals_degraded = ?status.signals_degraded, "status");
                self.metrics.signals_degraded(
                    &self.config.engine.service.name,
                    status.signals_degraded.is_some(),
                );
            }
            _ => {}
        }
        let dropped = self.hub.broadcast(envelope);
        self.metrics.websocket_clients(self.hub.len(), dropped);
    }

    /// The id of the incident open right now, read before an engine call so that [`Driver::observe_closed`] can
    /// tell whether the call closed it (a value for the length of one call, not a copy kept).
    fn open_incident_id(&self) -> Option<IncidentId> {
        self.engine
            .current_incident()
            .map(|card| IncidentId::new(card.incident_id.clone()))
    }

    /// When the incident open before an engine call is closed after it, observes the engine's figures of it (time
    /// to detect, to first run, to recover) in the `/metrics` histograms: once per incident, at its close.
    fn observe_closed(&self, open_before: Option<IncidentId>) {
        let Some(incident_id) = open_before else {
            return;
        };
        let still_open = self
            .engine
            .current_incident()
            .is_some_and(|card| card.incident_id == incident_id.as_str());
        if still_open {
            return;
        }
        if let Some(figures) = self.engine.incident_figures(&incident_id) {
            self.metrics.incident_closed(&figures);
        }
    }

    /// A run this process carried out has ended (answered, or cancelled by the engine): observes its outcome as the
    /// engine recorded it, and its length up to the engine call that ended it.
    fn observe_run_end(&self, run_id: &RunId) {
        let Some(run) = self.engine.run(run_id) else {
            return;
        };
        if !matches!(run.status, RunStatus::Completed | RunStatus::Failed) {
            return;
        }
        let seconds = (self.last_now - run.started_at).num_milliseconds() as f64 / 1000.0;
        self.metrics
            .run_finished(run.status == RunStatus::Completed, seconds);
        tracing::info!(run_id = %run.run_id, status = ?run.status, seconds, "run finished");
    }

    fn incident_span(&self) -> tracing::Span {
        let incident_id = self
            .engine
            .status()
            .active_incident_id
            .clone()
            .unwrap_or_default();
        tracing::info_span!("incident", incident_id = %incident_id)
    }

    /// Whether the open incident needs a human, as the engine says after the call just made, for `/metrics`.
    fn observe_needs_human(&self) {
        self.metrics
            .needs_human(&self.config.engine.service.name, self.engine.needs_human());
    }

    /// Reads the signal source over `window`, as the engine asked (it issues one read at a time).
    fn start_signal_read(&mut self, window: Duration) {
        let signals = Arc::clone(&self.ports.signals);
        let timeout = self.config.signal_timeout;
        self.tasks.spawn(async move {
            let result = match tokio::time::timeout(timeout, signals.read(window)).await {
                Ok(result) => result,
                Err(_) => Err(AdapterError::timeout(timeout)),
            };
            Completion::Signal(Utc::now(), result)
        });
    }

    /// Probes the service with its own journeys (the signal source is blind); answers `ServiceProbed`.
    fn probe_service(&mut self, effect: EffectId) {
        let prober = Arc::clone(&self.ports.prober);
        // Only the probes just run fall in this window: probes are spaced by several polling intervals.
        let window = self.config.engine.poll_interval;
        let timeout = self.config.signal_timeout;
        self.tasks.spawn(async move {
            let result = match tokio::time::timeout(timeout, prober.read(window)).await {
                Ok(Ok(reading)) => Ok(wire::signal_sample(reading, Utc::now())),
                Ok(Err(error)) => Err(error.to_port_failure()),
                Err(_) => Err(PortFailure::Timeout),
            };
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
                    match tokio::time::timeout(timeout, signals.read(window)).await {
                        Ok(Ok(reading)) => Ok(wire::incident_context(reading)),
                        Ok(Err(error)) => {
                            tracing::warn!(%error, "context fetch failed");
                            Err(error.to_port_failure())
                        }
                        Err(_) => Err(PortFailure::Timeout),
                    }
                };
                let gather = async {
                    let source = source?;
                    match tokio::time::timeout(gather_timeout, source.gather(&query)).await {
                        Ok(Ok(findings)) => Some(findings),
                        Ok(Err(error)) => {
                            tracing::warn!(%error, "context source failed; planning with the signals' context");
                            None
                        }
                        Err(_) => {
                            tracing::warn!(?gather_timeout, "context source did not answer in time; planning with the signals' context");
                            None
                        }
                    }
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
                let result = match tokio::time::timeout(timeout, planner.propose(&request)).await {
                    Ok(Ok(plan)) => Ok(plan),
                    Ok(Err(error)) => {
                        tracing::warn!(%error, "planner failed");
                        Err(error.to_port_failure())
                    }
                    Err(_) => Err(PortFailure::Timeout),
                };
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
                let run = async {
                    match tokio::time::timeout(timeout, runner.run(&run_id, &plan, sink)).await {
                        Ok(Ok(())) => Ok(()),
                        Ok(Err(error)) => {
                            tracing::warn!(%error, run_id = %run_id, "run failed");
                            Err(error.to_port_failure())
                        }
                        Err(_) => Err(PortFailure::Timeout),
                    }
                };
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

    async fn complete(&mut self, completion: Completion) {
        match completion {
            Completion::Signal(at, result) => {
                self.metrics.signal_read(result.is_ok());
                match result {
                    Ok(reading) => {
                        let _ = self
                            .feed(Input::SignalSampled(wire::signal_sample(reading, at)))
                            .await;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "signal read failed");
                        let _ = self
                            .feed(Input::SignalSourceFailed {
                                failure: error.to_port_failure(),
                            })
                            .await;
                    }
                }
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
        }
    }

    async fn command(&mut self, command: Command) {
        match command {
            Command::Status(reply) => {
                let _ = reply.send(self.engine.status().clone());
            }
            Command::CurrentIncident(reply) => {
                let _ = reply.send(self.engine.current_incident().cloned());
            }
            Command::BugToggled(enabled, reply) => {
                let _ = self.feed(Input::BugToggled { enabled }).await;
                let _ = reply.send(self.engine.status().clone());
            }
            Command::Simulate(mode, reply) => {
                let _ = self.feed(wire::simulate_input(mode)).await;
                let _ = reply.send(self.engine.current_incident().cloned());
            }
            Command::RunTests(incident_id, reply) => {
                let id = IncidentId::new(incident_id.clone());
                let result = match self
                    .feed(Input::OperatorRequestedRun { incident_id: id })
                    .await
                {
                    Ok(()) => self.engine.current_run().cloned().ok_or_else(|| {
                        ApiError::Internal(
                            "the engine accepted a run but has no current run".to_owned(),
                        )
                    }),
                    Err(rejected) => Err(rejected_to_api(rejected, incident_id)),
                };
                let _ = reply.send(result);
            }
            Command::Run(run_id, reply) => {
                let _ = reply.send(self.engine.run(&RunId::new(run_id)).cloned());
            }
            Command::HasIncident(incident_id, reply) => {
                let _ = reply.send(self.engine.has_incident(&IncidentId::new(incident_id)));
            }
            Command::CopilotState(incident_id, reply) => {
                let _ = reply.send(self.copilot_state(incident_id));
            }
            Command::CopilotAnswered(answer, reply) => {
                let _ = self.feed(Input::CopilotAnswered(answer)).await;
                let _ = reply.send(());
            }
            Command::Alert(input, reply) => {
                let _ = self.feed(input).await;
                let _ = reply.send(());
            }
            Command::Incidents(limit, before, reply) => {
                let before = before.as_ref().map(|(at, id)| (*at, id.as_str()));
                let _ = reply.send(self.engine.incidents(limit, before));
            }
            Command::IncidentHistory(incident_id, reply) => {
                let _ = reply.send(self.engine.incident_history(&IncidentId::new(incident_id)));
            }
            Command::Subscribe(since, reply) => {
                let resumed = since.map(|since| self.hub.resume(since));
                let (queue, reset) = match resumed {
                    Some(Ok(queue)) => (queue, None),
                    refused => {
                        let now = self.now();
                        let mut snapshot =
                            vec![WsMessage::SystemStatus(self.engine.status().clone()).at(now)];
                        if let Some(card) = self.engine.current_incident() {
                            snapshot.push(WsMessage::IncidentCreated(card.clone()).at(now));
                        }
                        if let Some(run) = self.engine.current_run() {
                            snapshot.push(WsMessage::TestsUpdated(run.clone()).at(now));
                        }
                        (self.hub.subscribe(&snapshot), refused.and_then(Result::err))
                    }
                };
                let _ = reply.send(Subscribed {
                    queue,
                    reset,
                    oldest_available: self.hub.oldest_available(),
                });
                self.metrics.websocket_clients(self.hub.len(), 0);
            }
        }
    }
}

impl Driver {
    /// What the copilot may see about `incident_id` (the open incident when `None`): the incident's card, and the
    /// current run and recovery blocker when it is the open one.
    fn copilot_state(&self, incident_id: Option<String>) -> Result<CopilotState, ApiError> {
        let open = self.engine.current_incident();
        let (incident, is_open) = match incident_id {
            None => (open.cloned(), open.is_some()),
            Some(id) => {
                let card = self
                    .engine
                    .incident(&IncidentId::new(id.clone()))
                    .cloned()
                    .ok_or(ApiError::IncidentNotFound(id))?;
                let is_open = open.is_some_and(|open| open.incident_id == card.incident_id);
                (Some(card), is_open)
            }
        };
        Ok(CopilotState {
            status: self.engine.status().clone(),
            incident,
            run: if is_open {
                self.engine.current_run().cloned()
            } else {
                None
            },
            recovery_blocker: if is_open {
                self.engine.recovery_blocker()
            } else {
                None
            },
            run_url: None,
        })
    }
}

impl DriverHandle {
    /// `GET /api/incidents`: at most `limit` incidents of this service, newest first, older than `before` (a
    /// `(detected_at, incident_id)` key) when given.
    ///
    /// # Errors
    ///
    /// [`ApiError::Unavailable`] when the driver is gone or does not answer in time.
    pub async fn incidents(
        &self,
        limit: usize,
        before: Option<(DateTime<Utc>, String)>,
    ) -> Result<Vec<IncidentSummary>, ApiError> {
        self.request(|reply| Command::Incidents(limit, before, reply))
            .await
    }

    /// `GET /api/incidents/{incident_id}`: the incident with its timeline and figures, if this service has it.
    ///
    /// # Errors
    ///
    /// [`ApiError::Unavailable`] when the driver is gone or does not answer in time.
    pub async fn incident_history(
        &self,
        incident_id: String,
    ) -> Result<Option<IncidentDetail>, ApiError> {
        self.request(|reply| Command::IncidentHistory(incident_id, reply))
            .await
    }

    /// `GET /api/status`.
    ///
    /// # Errors
    ///
    /// [`ApiError::Unavailable`] when the driver is gone or does not answer in time.
    pub async fn status(&self) -> Result<SystemStatus, ApiError> {
        self.request(Command::Status).await
    }

    /// `GET /api/incidents/current`.
    ///
    /// # Errors
    ///
    /// As [`DriverHandle::status`].
    pub async fn current_incident(&self) -> Result<Option<IncidentCard>, ApiError> {
        self.request(Command::CurrentIncident).await
    }

    /// The demo service's bug was set: feeds `BugToggled` and returns the status.
    ///
    /// # Errors
    ///
    /// As [`DriverHandle::status`].
    pub async fn bug_toggled(&self, enabled: bool) -> Result<SystemStatus, ApiError> {
        self.request(|reply| Command::BugToggled(enabled, reply))
            .await
    }

    /// `POST /api/incidents/simulate`: returns the open incident after the change.
    ///
    /// # Errors
    ///
    /// As [`DriverHandle::status`].
    pub async fn simulate(&self, mode: SimulateMode) -> Result<Option<IncidentCard>, ApiError> {
        self.request(|reply| Command::Simulate(mode, reply)).await
    }

    /// `POST /api/tests/run`: the new or in-progress run.
    ///
    /// # Errors
    ///
    /// 404/409 as the engine decides, or as [`DriverHandle::status`].
    pub async fn run_tests(&self, incident_id: String) -> Result<TestRun, ApiError> {
        self.request(|reply| Command::RunTests(incident_id, reply))
            .await?
    }

    /// `GET /api/tests/runs/{run_id}`.
    ///
    /// # Errors
    ///
    /// As [`DriverHandle::status`].
    pub async fn run(&self, run_id: String) -> Result<Option<TestRun>, ApiError> {
        self.request(|reply| Command::Run(run_id, reply)).await
    }

    /// Whether this service's engine knows an incident with this id (open or recently closed).
    ///
    /// # Errors
    ///
    /// As [`DriverHandle::status`].
    pub async fn has_incident(&self, incident_id: String) -> Result<bool, ApiError> {
        self.request(|reply| Command::HasIncident(incident_id, reply))
            .await
    }

    /// The state the copilot may see; 404 when `incident_id` names no incident.
    ///
    /// # Errors
    ///
    /// [`ApiError::IncidentNotFound`], or as [`DriverHandle::status`].
    pub async fn copilot_state(
        &self,
        incident_id: Option<String>,
    ) -> Result<CopilotState, ApiError> {
        self.request(|reply| Command::CopilotState(incident_id, reply))
            .await?
    }

    /// Feeds the copilot's answer (published as `copilot.answer`).
    ///
    /// # Errors
    ///
    /// As [`DriverHandle::status`].
    pub async fn copilot_answered(&self, answer: CopilotAnswer) -> Result<(), ApiError> {
        self.request(|reply| Command::CopilotAnswered(answer, reply))
            .await
    }

    /// Feeds an alert input (`AlertFired` or `AlertResolved`); the engine deduplicates repeats.
    ///
    /// # Errors
    ///
    /// As [`DriverHandle::status`].
    pub async fn alert(&self, input: Input) -> Result<(), ApiError> {
        self.request(|reply| Command::Alert(input, reply)).await
    }

    /// Registers a WebSocket client; its queue starts with the join snapshot.
    ///
    /// # Errors
    ///
    /// As [`DriverHandle::status`].
    pub async fn subscribe(&self) -> Result<mpsc::Receiver<Outgoing>, ApiError> {
        Ok(self.subscribe_since(None).await?.queue)
    }

    /// Registers a WebSocket client that saw every event up to `since`: its queue starts with the kept events after
    /// it, or, when there is no `since` or the hub cannot replay from it ([`Subscribed::reset`]), with the join
    /// snapshot.
    ///
    /// # Errors
    ///
    /// As [`DriverHandle::status`].
    pub async fn subscribe_since(&self, since: Option<u64>) -> Result<Subscribed, ApiError> {
        self.request(|reply| Command::Subscribe(since, reply)).await
    }

    async fn request<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, ApiError> {
        let (reply, answer) = oneshot::channel();
        tokio::time::timeout(COMMAND_TIMEOUT, self.commands.send(command(reply)))
            .await
            .map_err(|_| ApiError::Unavailable)?
            .map_err(|_| ApiError::Unavailable)?;
        tokio::time::timeout(COMMAND_TIMEOUT, answer)
            .await
            .map_err(|_| ApiError::Unavailable)?
            .map_err(|_| ApiError::Unavailable)
    }
}

fn rejected_to_api(rejected: Rejected, incident_id: String) -> ApiError {
    match rejected {
        Rejected::UnknownIncident(_) => ApiError::IncidentNotFound(incident_id),
        Rejected::IncidentClosed(_) => ApiError::IncidentClosed(incident_id),
        Rejected::PlanNotReady(_) => ApiError::PlanNotReady(incident_id),
        other => ApiError::Internal(other.to_string()),
    }
}

/// Converts an engine deadline to a tokio instant.
fn to_instant(deadline: DateTime<Utc>) -> tokio::time::Instant {
    let wait = (deadline - Utc::now()).to_std().unwrap_or(Duration::ZERO);
    tokio::time::Instant::now() + wait
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
