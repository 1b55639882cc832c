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
    ContextSource, Copilot, CopilotState, Executor, Leases, Planner, RemediationChooser,
    SignalSource, SoleLeases, Store, StoreError, TestProgress, TestRunner,
};
use fixloop_contract::{RunStatus, WsEnvelope, WsMessage};
use fixloop_core::engine::{Engine, Input, Recorded, RecordedInput, Rejected};
use fixloop_core::{EffectId, IncidentId, RunId};
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinSet};

mod effects;
mod journal;
mod notify;
mod proposals;
mod remediation;

use self::effects::Completion;
pub use self::journal::Fence;
use self::journal::Journal;
use super::Error;
use super::handle::{Command, ServiceHandle};
use crate::runtime::metrics::ServerMetrics;
use crate::runtime::outbox::Outbox;
use crate::runtime::stream::writer::EventWriter;
use crate::runtime::stream::{DEFAULT_REPLAY_CAPACITY, EventGroups, Hub, Sequence, Subscribed};
use crate::runtime::wire;

/// The ports the driver calls.
#[derive(Debug, Clone)]
pub struct Ports {
    /// Where signals come from.
    pub signals: Arc<dyn SignalSource>,
    /// The configured planner (MiniMax when keys are set, else the rule planner).
    pub planner: Arc<dyn Planner>,
    /// The rule planner, the fallback the engine asks for with [`fixloop_core::engine::PlannerChoice::Rules`].
    pub rule_planner: Arc<dyn Planner>,
    /// The test runner.
    pub runner: Arc<dyn TestRunner>,
    /// The copilot (called by the copilot handler, not by the driver).
    pub copilot: Arc<dyn Copilot>,
    /// FixLoop's own probes of the service (synthetic probes of its journeys), used when the signal source is
    /// blind ([`fixloop_core::engine::Effect::ProbeService`]).
    pub prober: Arc<dyn SignalSource>,
    /// Extra incident context (metrics, logs, monitors) beyond the signals, when one is configured.
    pub context: Option<Arc<dyn ContextSource>>,
}

/// The driver's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct DriverConfig {
    /// The engine's configuration; its polling timer decides when the signal source is read, and over which window
    /// ([`fixloop_core::engine::Effect::SampleSignals`]).
    pub engine: fixloop_core::engine::Config,
    /// Timeout of one signal read.
    pub signal_timeout: Duration,
    /// Capacity of each WebSocket client's queue.
    pub websocket_queue: usize,
    /// Where the engine's configuration came from (for example `profile sha256:…`), journaled with it at every
    /// start ([`RecordedInput::Configured`]); `None` says nothing.
    pub origin: Option<String>,
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
    /// Where notifications are queued; `None` tells nobody.
    outbox: Option<Outbox>,
    /// What the engine call being handled means to people, queued in the outbox once the call is drained.
    notifications: Vec<fixloop_adapters::notifier::Notification>,
    /// The store refused a write under this driver's lease: another replica leads the service, and this driver
    /// stops at once, feeding the engine nothing more.
    fenced: bool,
    /// Carries out the remediation actions the engine asks for; `None` fails every action (and logs it).
    executor: Option<Arc<dyn Executor>>,
    /// The actions this process is carrying out, by their `ExecuteAction` effect.
    actions: HashMap<EffectId, AbortHandle>,
    /// Picks remediation steps when the engine asks (`ChooseAction`); `None` answers "no model" at once, and the
    /// rules pick.
    chooser: Option<Arc<dyn RemediationChooser>>,
    /// The last version published on the WebSocket per remediation proposal the engine keeps.
    proposal_versions: proposals::SeenVersions,
    /// The last incident `incident.escalated` was published for (the engine's escalation or the needs-human rule):
    /// each incident is escalated once on the WebSocket.
    escalated: Option<String>,
    /// With replicas: where every published event also goes (the shared event log, under this driver's lease).
    events: Option<EventWriter>,
}

impl Driver {
    /// A driver with a healthy engine, and the handle the handlers use; its WebSocket events are numbered by a
    /// [`Sequence`] of its own.
    #[must_use]
    pub fn new(
        config: DriverConfig,
        ports: Ports,
        metrics: Arc<ServerMetrics>,
    ) -> (Self, ServiceHandle) {
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
    ) -> (Self, ServiceHandle) {
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
            outbox: None,
            notifications: Vec::new(),
            fenced: false,
            executor: None,
            actions: HashMap::new(),
            chooser: None,
            proposal_versions: HashMap::new(),
            escalated: None,
            events: None,
        };
        (driver, ServiceHandle::new(command_sender))
    }

    /// This driver, carrying out the engine's remediation actions with `executor` (the service profile's actions);
    /// without one, every action the engine asks for fails with a clear reason.
    #[must_use]
    pub fn with_executor(mut self, executor: Arc<dyn Executor>) -> Self {
        self.executor = Some(executor);
        self
    }

    /// This driver, asking `chooser` when the engine wants a model's pick of a remediation step (the service's
    /// `chooser = "model"`); without one the rules pick.
    #[must_use]
    pub fn with_chooser(mut self, chooser: Arc<dyn RemediationChooser>) -> Self {
        self.chooser = Some(chooser);
        self
    }

    /// This driver, also writing every event it publishes to the shared event log through `writer` (replicas).
    /// Its current status goes first, so the log shows the service's state from the moment this replica leads it
    /// (a client of any replica joining before the engine's next event gets a `system.status` at once).
    #[must_use]
    pub fn with_event_writer(mut self, writer: EventWriter) -> Self {
        writer.send(&WsMessage::SystemStatus(self.engine.status().clone()).at(self.now()));
        self.events = Some(writer);
        self
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
    ///
    /// With an `outbox`, what the engine does from now on that people are told about (an incident opened, an
    /// escalation, a recovery) is queued there; the replayed tail tells nobody again.
    pub async fn restore(
        config: DriverConfig,
        ports: Ports,
        metrics: Arc<ServerMetrics>,
        store: Arc<dyn Store>,
        sequence: Sequence,
        outbox: Option<Outbox>,
    ) -> Result<(Self, ServiceHandle), StoreError> {
        let leases: Arc<dyn Leases> = Arc::new(SoleLeases::new(Arc::clone(&store)));
        let lease = leases
            .acquire(&config.engine.service.name, "this-process", Duration::MAX)
            .await?
            .ok_or_else(|| StoreError::Failed {
                location: "the single-process leases".to_owned(),
                why: "refused a lease".to_owned(),
            })?;
        Self::restore_fenced(
            config,
            ports,
            metrics,
            store,
            sequence,
            outbox,
            Fence { leases, lease },
        )
        .await
    }

    /// [`Driver::restore`] under `fence`: every write of the driver carries its lease, and the driver stops as soon
    /// as the store refuses one ([`StoreError::Fenced`]: another replica leads the service now). The journal is
    /// read after the lease was won, so it holds every entry the previous leader recorded.
    ///
    /// # Errors
    ///
    /// As [`Driver::restore`]; [`StoreError::Fenced`] when the lease was lost before the restore wrote.
    pub async fn restore_fenced(
        config: DriverConfig,
        ports: Ports,
        metrics: Arc<ServerMetrics>,
        store: Arc<dyn Store>,
        sequence: Sequence,
        outbox: Option<Outbox>,
        fence: Fence,
    ) -> Result<(Self, ServiceHandle), StoreError> {
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
                    match entry.input.map(RecordedInput::into_recorded) {
                        Some(Recorded::Input(input)) => {
                            let _ = driver.engine.handle_input(entry.at, input);
                        }
                        // The engine runs with this start's configuration, whatever an earlier start had.
                        Some(Recorded::Configured { .. }) => {}
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
        drop(store);
        let journal = Journal {
            fence,
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
                .fence
                .leases
                .save_snapshot_fenced(&journal.fence.lease, 0, snapshot)
                .await?;
        }
        driver.journal = Some(journal);
        driver.outbox = outbox;
        driver.remember_proposals();
        let now = driver.now();
        driver.record_configuration(now).await;
        if restored.is_some() {
            let _ = driver.feed(Input::Restarted).await;
        }
        if driver.fenced {
            return Err(StoreError::Fenced {
                service: driver.config.engine.service.name.clone(),
                epoch: driver
                    .journal
                    .as_ref()
                    .map_or(0, |journal| journal.fence.lease.epoch),
            });
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
            if self.fenced {
                break;
            }
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
                    if !self.record(now, None).await {
                        continue;
                    }
                    let open_before = self.open_incident_id();
                    let needed_human = self.engine.needs_human();
                    self.engine.handle_timeout(now);
                    self.drain();
                    self.publish_proposal_changes();
                    self.observe_closed(open_before);
                    self.observe_needs_human();
                    self.notice_escalation(needed_human);
                    self.send_notifications().await;
                    self.snapshot_now_and_then().await;
                }
            }
        }
        self.tasks.shutdown().await;
        // A fenced driver saves nothing: the service's new leader owns its journal.
        self.save_snapshot().await;
        self.hub.close_all();
        self.metrics.websocket_clients(0, 0);
        if self.fenced {
            tracing::warn!(service = %self.config.engine.service.name, "driver stopped: its lease was lost");
        } else {
            tracing::info!("driver stopped");
        }
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
        if !self.record(now, Some(&input)).await {
            // Fenced: the input was not recorded, so the engine never sees it and nothing is carried out.
            return Ok(());
        }
        let open_before = self.open_incident_id();
        let needed_human = self.engine.needs_human();
        let result = self.engine.handle_input(now, input);
        self.drain();
        self.publish_proposal_changes();
        self.observe_closed(open_before);
        self.observe_needs_human();
        self.notice_escalation(needed_human);
        self.send_notifications().await;
        self.snapshot_now_and_then().await;
        if let Err(rejected) = &result {
            tracing::debug!(%rejected, "input rejected");
        }
        result
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
        self.notice(envelope);
        let dropped = self.hub.broadcast(envelope);
        match &self.events {
            // With replicas the clients are the feed's, which reports them.
            Some(writer) => writer.send(envelope),
            None => self.metrics.websocket_clients(self.hub.len(), dropped),
        }
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

    /// Whether the open incident needs a human, and the remediation figures and kill switch, as the engine says
    /// after the call just made, for `/metrics`.
    fn observe_needs_human(&self) {
        self.metrics
            .needs_human(&self.config.engine.service.name, self.engine.needs_human());
        self.metrics.remediation(
            &self.config.engine.service.name,
            &self.engine.action_stats(),
            self.engine.kill_switch_engaged(),
        );
    }

    async fn command(&mut self, command: Command) {
        if self.fenced {
            // Dropping the reply tells the caller the service is unavailable here.
            return;
        }
        match command {
            Command::Status(reply) => {
                let _ = reply.send(self.engine.status().clone());
            }
            Command::CurrentIncident(reply) => {
                let _ = reply.send(self.engine.current_incident().cloned());
            }
            Command::ServiceChanged(enabled, reply) => {
                let _ = self.feed(Input::ServiceChanged { repair: !enabled }).await;
                let _ = reply.send(self.engine.status().clone());
            }
            Command::Simulate(mode, reply) => {
                let _ = self.feed(wire::simulate_input(mode)).await;
                let _ = reply.send(self.engine.current_incident().cloned());
            }
            Command::RunTests(incident_id, reply) => {
                let result = match self
                    .feed(Input::OperatorRequestedRun {
                        incident_id: incident_id.clone(),
                    })
                    .await
                {
                    Ok(()) if self.fenced => Err(Error::Unavailable),
                    Ok(()) => self.engine.current_run().cloned().ok_or_else(|| {
                        Error::Internal(
                            "the engine accepted a run but has no current run".to_owned(),
                        )
                    }),
                    Err(rejected) => Err(rejected_error(rejected, incident_id)),
                };
                let _ = reply.send(result);
            }
            Command::Run(run_id, reply) => {
                let _ = reply.send(self.engine.run(&run_id).cloned());
            }
            Command::HasIncident(incident_id, reply) => {
                let _ = reply.send(self.engine.has_incident(&incident_id));
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
                let _ = reply.send(self.engine.incident_history(&incident_id));
            }
            Command::Proposals(incident_id, reply) => {
                let _ = reply.send(self.proposals(incident_id.as_ref()));
            }
            Command::Decide(decision, reply) => {
                let _ = reply.send(self.decide(decision).await);
            }
            Command::KillSwitch(engaged, by, reply) => {
                self.set_kill_switch(engaged, by).await;
                let _ = reply.send(());
            }
            Command::RemediationStats(reply) => {
                let _ = reply.send(self.remediation_stats());
            }
            Command::Subscribe(since, groups, reply) => {
                let resumed = since.map(|since| self.hub.resume_to(since, groups));
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
                        if groups.contains(EventGroups::REMEDIATION) {
                            snapshot.extend(self.open_proposals(now));
                        }
                        (
                            self.hub.subscribe_to(&snapshot, groups),
                            refused.and_then(Result::err),
                        )
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
    fn copilot_state(&self, incident_id: Option<IncidentId>) -> Result<CopilotState, Error> {
        let open = self.engine.current_incident();
        let (incident, is_open) = match incident_id {
            None => (open.cloned(), open.is_some()),
            Some(id) => {
                let card = self
                    .engine
                    .incident(&id)
                    .cloned()
                    .ok_or(Error::IncidentNotFound(id))?;
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

/// What a refused operator run means to the one who asked for it.
fn rejected_error(rejected: Rejected, incident_id: IncidentId) -> Error {
    match rejected {
        Rejected::UnknownIncident(_) => Error::IncidentNotFound(incident_id),
        Rejected::IncidentClosed(_) => Error::IncidentClosed(incident_id),
        Rejected::PlanNotReady(_) => Error::PlanNotReady(incident_id),
        other => Error::Internal(other.to_string()),
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
