//! [`Supervisor`]: owns the drivers of the services a process watches, and starts and stops them one at a time.
//!
//! It is built from a [`SupervisorConfig`] (the configuration, the engine's timing mode, the shared store, metrics
//! and `seq` counter), then [`Supervisor::start`] builds a service's ports from its profile, fits the engine's
//! configuration to them ([`crate::runtime::tuning`]), restores the service's engine from the journal and runs its
//! driver; [`Supervisor::stop`] stops one driver (its last snapshot saved, its journal kept). Every driver also
//! stops when the process stops. [`Supervisor::services`] is the running set as the HTTP layer sees it.
//!
//! Nothing here knows HTTP: a live reload (SIGHUP) is a diff of profiles turned into `stop` and `start` calls.
//!
//! Every driver writes under a lease ([`Fence`]). A single process leads every service through [`SoleLeases`];
//! replicas sharing one PostgreSQL database ([`Leasing`]) each lead the services whose lease they win, up to a
//! bound, and [`Supervisor::keep_leases`] (every third of the lease time) renews them, stops the driver of a lease
//! lost, and takes free or lapsed leases (`leases.rs`).

mod leases;

pub use self::leases::Leasing;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use fixloop_adapters::{Copilot, Lease, Leases, RunnerExpectations, SoleLeases, Store, StoreError};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::Config;
use crate::profile::ServiceProfile;
use crate::profile::live::check_at_start;
use crate::runtime::driver::{Driver, DriverConfig, Fence, Ports};
use crate::runtime::executors::build_executor;
use crate::runtime::metrics::ServerMetrics;
use crate::runtime::outbox::Outbox;
use crate::runtime::ports::{build_chooser, build_ports};
use crate::runtime::services::{CopilotSources, Services, WatchedService};
use crate::runtime::stream::writer::EventWriter;
use crate::runtime::stream::{DEFAULT_QUEUE_CAPACITY, Sequence};
use crate::runtime::tuning::{Mode, check_run_deadline, engine_config, follow_runner};

/// How long [`Supervisor::stop`] waits for a driver before aborting it.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Adjusts a driver's settings (and the engine's in them) once they are built: the scenario player scales every
/// timing by its speed this way.
pub type Tune = Arc<dyn Fn(&mut DriverConfig) + Send + Sync>;

/// What every service's driver shares.
#[derive(Clone)]
pub struct SupervisorConfig {
    /// The configuration (vendor keys, tunables).
    pub config: Config,
    /// The engine's timing profile.
    pub mode: Mode,
    /// The HTTP client the ports use.
    pub http: reqwest::Client,
    /// Where every driver journals.
    pub store: Arc<dyn Store>,
    /// The process's metrics.
    pub metrics: Arc<ServerMetrics>,
    /// The `seq` counter of every driver's WebSocket events.
    pub sequence: Sequence,
    /// Ports to use instead of building them from the profile (tests): the first service started takes them.
    pub injected_ports: Option<Ports>,
    /// Adjusts each driver's settings once built.
    pub tune: Option<Tune>,
    /// Whether the engines' ids carry the service's name (a process watching several services).
    pub name_ids: bool,
    /// Resolves when the process stops: every driver stops then too.
    pub process_stop: watch::Receiver<bool>,
    /// Where drivers queue notifications; `None` tells nobody.
    pub outbox: Option<Outbox>,
    /// How the services are shared with other replicas of one database; `None`: this process leads every service
    /// alone ([`SoleLeases`] over `store`).
    pub leasing: Option<Leasing>,
}

impl std::fmt::Debug for SupervisorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SupervisorConfig")
            .field("mode", &self.mode)
            .field("name_ids", &self.name_ids)
            .finish_non_exhaustive()
    }
}

/// One service to watch, and whether it is the built-in demo profile (which keeps the environment's signal
/// switches).
#[derive(Debug, Clone)]
pub struct ServiceToWatch {
    /// The service's profile.
    pub service: ServiceProfile,
    /// Whether it is the built-in demo shop's profile.
    pub builtin_demo: bool,
    /// The SHA-256 of the profile file it comes from ([`Profile::sha256`](crate::profile::Profile::sha256)), journaled
    /// with its configuration; `None` for the built-in demo shop.
    pub profile_sha256: Option<String>,
}

/// Why a service could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SupervisorError {
    /// The profile asks for something the configuration cannot provide.
    #[error("profile: {0}")]
    Profile(String),
    /// The engine's deadlines cannot work with the service's test runner.
    #[error("{0}")]
    Deadlines(String),
    /// The service's journal cannot be read or restored.
    #[error("journal: {0}")]
    Store(#[from] StoreError),
}

/// The running services' drivers.
#[derive(Debug)]
pub struct Supervisor {
    config: SupervisorConfig,
    /// In start order.
    running: Vec<Running>,
    /// The kill switch's saved text as the last lease round read it (replicas: see `keep_leases`).
    kill_switch_seen: Option<String>,
    /// The first service's copilot: the one the API asks.
    copilot: Option<Arc<dyn Copilot>>,
    /// The running set as handed out by [`Supervisor::services`], kept current by every start and stop.
    published: Option<Services>,
    /// While set (during a reload), starts and stops do not publish: the set changes once, at the end.
    deferred: bool,
    /// Where every driver's lease comes from: the shared leases of [`SupervisorConfig::leasing`], or
    /// [`SoleLeases`].
    leases: Arc<dyn Leases>,
    /// With shared leases: every service this replica watches, led here or elsewhere, in start order.
    wanted: Vec<ServiceToWatch>,
    /// With shared leases: the live replicas at the latest heartbeat (this one included); `None` before it.
    live_replicas: Option<usize>,
}

/// One running service.
#[derive(Debug)]
struct Running {
    watched: WatchedService,
    /// The profile it was started from (a reload compares it with the file's).
    profile: ServiceProfile,
    /// Set to stop this service's driver alone.
    stop: watch::Sender<bool>,
    /// The driver.
    driver: JoinHandle<()>,
    /// The live check of its profile's source, if one runs (it only logs: aborted on stop).
    check: Option<JoinHandle<()>>,
    /// The lease its driver writes under.
    lease: Lease,
    /// When the lease was last confirmed: the moment the request that won or renewed it was sent (it lasts at
    /// least the lease time from then).
    confirmed: Instant,
}

/// The holder of every [`SoleLeases`] lease.
const SOLE_HOLDER: &str = "this-process";

impl Supervisor {
    /// A supervisor running nothing yet.
    #[must_use]
    pub fn new(config: SupervisorConfig) -> Self {
        let leases = match &config.leasing {
            Some(leasing) => Arc::clone(&leasing.leases),
            None => Arc::new(SoleLeases::new(Arc::clone(&config.store))) as Arc<dyn Leases>,
        };
        Self {
            config,
            running: Vec::new(),
            kill_switch_seen: None,
            copilot: None,
            published: None,
            deferred: false,
            leases,
            wanted: Vec::new(),
            live_replicas: None,
        }
    }

    /// Checks that `watch.service` could start (its ports can be built and its run deadline fits its runner)
    /// without starting anything: a reload checks every service it would start before it stops one.
    ///
    /// # Errors
    ///
    /// As [`Supervisor::start`], but never for the journal.
    pub fn check(&self, watch: &ServiceToWatch) -> Result<(), SupervisorError> {
        let config = &self.config.config;
        let (ports, choice) = build_ports(
            config,
            &watch.service,
            watch.builtin_demo,
            &self.config.http,
        )
        .map_err(SupervisorError::Profile)?;
        self.driver_config(&watch.service, ports.runner.expectations(), &choice.runner)
            .map(drop)
    }

    /// The driver's settings for `service` under a runner with `runner`'s expectations: the engine's configuration
    /// (mode, tunables, profile), fitted to the runner, ids named when several services run, tuned, and its run
    /// deadline checked against the runner's longest run.
    fn driver_config(
        &self,
        service: &ServiceProfile,
        runner: RunnerExpectations,
        runner_name: &str,
    ) -> Result<DriverConfig, SupervisorError> {
        let config = &self.config.config;
        let mut engine = engine_config(self.config.mode, config, service);
        follow_runner(&mut engine, config.tuning.run_deadline.is_some(), runner);
        if self.config.name_ids {
            // Ids stay unique across the services' engines, and say whose they are.
            engine.id_prefix = format!("{}-{}", engine.id_prefix, service.spec.name);
        }
        let mut driver_config = DriverConfig {
            engine,
            signal_timeout: Duration::from_secs(5),
            websocket_queue: DEFAULT_QUEUE_CAPACITY,
            origin: None,
        };
        if let Some(tune) = &self.config.tune {
            tune(&mut driver_config);
        }
        check_run_deadline(&driver_config.engine, runner, runner_name)
            .map_err(|error| SupervisorError::Deadlines(error.to_string()))?;
        Ok(driver_config)
    }

    /// The profiles of the watched services, in their order: the running ones, or with shared leases every one
    /// this replica would lead (led here or elsewhere).
    #[must_use]
    pub fn profiles(&self) -> Vec<ServiceProfile> {
        if self.shared() {
            return self
                .wanted
                .iter()
                .map(|watch| watch.service.clone())
                .collect();
        }
        self.running
            .iter()
            .map(|running| running.profile.clone())
            .collect()
    }

    /// Whether the engines' ids carry the service's name: set before starting a second service.
    pub fn name_ids(&mut self, on: bool) {
        self.config.name_ids = on;
    }

    /// Holds publishing (`true`) while several starts and stops make one change, then publishes the set in the
    /// order of `order` (names not running are skipped; running services not named keep their place after).
    pub fn defer_publishing(&mut self, deferred: bool, order: &[String]) {
        self.deferred = deferred;
        if !deferred {
            self.running.sort_by_key(|running| {
                order
                    .iter()
                    .position(|name| *name == running.watched.name)
                    .unwrap_or(usize::MAX)
            });
            self.publish();
        }
    }

    /// Starts watching `watch.service`: with shared leases, only when this replica wins its lease (and leads fewer
    /// services than its bound; `Ok(None)` otherwise: [`Supervisor::keep_leases`] tries again later); then builds
    /// its ports, restores its engine from the journal and runs its driver under the lease.
    ///
    /// # Errors
    ///
    /// [`SupervisorError`] when its ports cannot be built, its run deadline cannot fit its runner, or its journal
    /// cannot be restored; nothing is started then.
    pub async fn start(
        &mut self,
        watch: ServiceToWatch,
    ) -> Result<Option<&WatchedService>, SupervisorError> {
        let (lease, confirmed) = if self.shared() {
            match self.want(watch.clone()).await {
                Some(won) => won,
                None => return Ok(None),
            }
        } else {
            let confirmed = Instant::now();
            let lease = self
                .leases
                .acquire(&watch.service.spec.name, SOLE_HOLDER, Duration::MAX)
                .await?
                .ok_or_else(|| StoreError::Failed {
                    location: "the single-process leases".to_owned(),
                    why: "refused a lease".to_owned(),
                })?;
            (lease, confirmed)
        };
        let metrics = Arc::clone(&self.config.metrics);
        let shared = self
            .shared()
            .then(|| (Arc::clone(&self.leases), lease.clone()));
        match self.start_led(watch, lease, confirmed).await {
            Ok(started) => {
                if let Some((_, lease)) = &shared {
                    // Only now: a replica says it leads a service once its driver answers.
                    metrics.lease_acquired(&started.name, lease.epoch);
                }
                Ok(Some(started))
            }
            Err(error) => {
                if let Some((leases, lease)) = shared {
                    let _ = leases.release(&lease).await;
                }
                Err(error)
            }
        }
    }

    /// Starts `watch.service`'s driver under `lease`.
    async fn start_led(
        &mut self,
        watch: ServiceToWatch,
        lease: Lease,
        confirmed: Instant,
    ) -> Result<&WatchedService, SupervisorError> {
        let ServiceToWatch {
            service,
            builtin_demo,
            profile_sha256,
        } = watch;
        let config = &self.config.config;
        let name = service.spec.name.clone();
        let mut check = None;
        let (stop, stopped) = watch::channel(false);
        let (ports, signals, runner_name) = match self.config.injected_ports.take() {
            Some(injected) => (
                injected,
                "injected by the caller".to_owned(),
                "injected by the caller".to_owned(),
            ),
            None => {
                let (built, choice) =
                    build_ports(config, &service, builtin_demo, &self.config.http)
                        .map_err(SupervisorError::Profile)?;
                tracing::info!(service = %name, %choice, "ports");
                // The live check of the profile's source (the built-in demo's may be switched by the environment,
                // then only its scrape is checked): one WARN line per blind signal; it never blocks the start.
                if !builtin_demo || choice.signals.starts_with("scrape") {
                    check = Some(tokio::spawn(check_at_start(
                        config.clone(),
                        service.clone(),
                        self.config.http.clone(),
                    )));
                }
                (built, choice.signals, choice.runner)
            }
        };
        let runner = ports.runner.expectations();
        let copilot_sources = CopilotSources {
            signals: Some(Arc::clone(&ports.signals)),
            context: ports.context.clone(),
        };
        let mut driver_config = match self.driver_config(&service, runner, &runner_name) {
            Ok(driver_config) => driver_config,
            Err(error) => {
                abort(check);
                return Err(error);
            }
        };
        driver_config.origin = match (builtin_demo, profile_sha256) {
            (_, Some(sha256)) => Some(format!("profile sha256:{sha256}")),
            (true, None) => Some("the built-in demo profile".to_owned()),
            (false, None) => None,
        };
        tracing::info!(
            service = %name,
            run_deadline_ms = driver_config.engine.run_deadline.as_millis() as u64,
            runner_longest_run_ms = runner.max_run_duration.as_millis() as u64,
            progress = ?runner.progress,
            plan_budget_ms = driver_config.engine.plan_budget.as_millis() as u64,
            "deadlines"
        );
        let copilot = Arc::clone(&ports.copilot);
        let chooser = build_chooser(config, &driver_config.engine, &self.config.http);
        let fence = Fence {
            leases: Arc::clone(&self.leases),
            lease: lease.clone(),
        };
        let restored = Driver::restore_fenced(
            driver_config,
            ports,
            Arc::clone(&self.config.metrics),
            Arc::clone(&self.config.store),
            self.config.sequence.clone(),
            self.config.outbox.clone(),
            fence,
        )
        .await;
        let (driver, handle) = match restored {
            Ok(restored) => restored,
            Err(error) => {
                abort(check);
                return Err(error.into());
            }
        };
        let mut driver = match build_executor(&service, &self.config.http) {
            Some(executor) => driver.with_executor(executor),
            None => driver,
        };
        if let Some(chooser) = chooser {
            tracing::info!(service = %name, chooser = chooser.chooser(), "a model picks the remediation steps (the engine checks its picks)");
            driver = driver.with_chooser(chooser);
        }
        if let Some(log) = self.config.leasing.as_ref().and_then(|l| l.events.clone()) {
            driver = driver.with_event_writer(EventWriter::spawn(log, lease.clone()));
        }
        // The global kill switch holds for a service started after it was switched, before the driver runs.
        match super::remediation::kill_switch_at_start(self.config.store.as_ref()).await {
            Ok(Some((engaged, by))) => driver.set_kill_switch(engaged, by).await,
            Ok(None) => {}
            Err(error) => {
                tracing::error!(service = %name, %error, "the remediation kill switch cannot be read");
            }
        }
        let driver =
            tokio::spawn(driver.run(stop_signal(self.config.process_stop.clone(), stopped)));
        // `fixloop_signals_degraded` reads 0 (or 1 after a restore) from the start, not only once a status was
        // published.
        if let Ok(Ok(status)) = tokio::time::timeout(Duration::from_secs(5), handle.status()).await
        {
            self.config
                .metrics
                .signals_degraded_at_start(&name, status.signals_degraded.is_some());
        }
        self.copilot.get_or_insert(copilot);
        self.running.push(Running {
            profile: service.clone(),
            watched: WatchedService {
                name,
                base_url: service.spec.base_url.clone(),
                alert_labels: service.alert_labels.clone(),
                signals,
                driver: handle,
                copilot_sources,
            },
            stop,
            driver,
            check,
            lease,
            confirmed,
        });
        self.publish();
        let running = self.running.len() - 1;
        Ok(&self.running[running].watched)
    }

    /// Stops the driver of the service called `name` (it saves its last snapshot; its journal is kept, so a later
    /// [`Supervisor::start`] of the same service restores it). Returns whether such a service was running.
    pub async fn stop(&mut self, name: &str) -> bool {
        self.wanted.retain(|watch| watch.service.spec.name != name);
        let Some(running) = self.stop_driver(name).await else {
            return false;
        };
        if self.shared() {
            // Stepping down: the next leader need not wait for the lease to lapse.
            match self.leases.release(&running.lease).await {
                Ok(_) => self.config.metrics.lease_ended(name, false),
                Err(error) => {
                    tracing::warn!(service = %name, %error, "lease not released; it lapses by itself")
                }
            }
        }
        tracing::info!(service = %name, "service stopped");
        true
    }

    /// Stops the driver of the service called `name` and takes it out of the running set.
    async fn stop_driver(&mut self, name: &str) -> Option<Running> {
        let index = self
            .running
            .iter()
            .position(|running| running.watched.name == name)?;
        let mut running = self.running.remove(index);
        self.publish();
        let _ = running.stop.send(true);
        abort(running.check.take());
        join(&mut running.driver).await;
        Some(running)
    }

    /// The running services as the HTTP layer sees them, in start order: a live set, which every later
    /// [`Supervisor::start`] and [`Supervisor::stop`] updates (requests under way keep their snapshot).
    ///
    /// # Panics
    ///
    /// When no service runs (start one first).
    pub fn services(&mut self) -> Services {
        let current = if self.running.is_empty() {
            // A replica that leads nothing yet: every watched service answers that it is unavailable here.
            leases::standby(&self.wanted)
        } else {
            watched(&self.running)
        };
        let services = self.published.get_or_insert_with(|| Services::new(current));
        services.clone()
    }

    /// Brings the handed-out set up to date. Stopping the last service leaves it as it was: a server watches at
    /// least one service, and that one's requests then answer that it is unavailable.
    fn publish(&self) {
        if let Some(services) = &self.published
            && !self.deferred
            && !self.running.is_empty()
        {
            services.replace(watched(&self.running));
        }
    }

    /// The names of the running services, in start order.
    #[must_use]
    pub fn names(&self) -> Vec<String> {
        self.running
            .iter()
            .map(|running| running.watched.name.clone())
            .collect()
    }

    /// The copilot the API asks (the first service's).
    #[must_use]
    pub fn copilot(&self) -> Option<Arc<dyn Copilot>> {
        self.copilot.clone()
    }

    /// The labels an alert must carry for each running service, by name.
    #[must_use]
    pub fn alert_labels(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        self.running
            .iter()
            .map(|running| {
                (
                    running.watched.name.clone(),
                    running.watched.alert_labels.clone(),
                )
            })
            .collect()
    }

    /// Stops every driver and waits for them (each saves its last snapshot).
    pub async fn shutdown(self) {
        for running in &self.running {
            let _ = running.stop.send(true);
        }
        for mut running in self.running {
            abort(running.check.take());
            join(&mut running.driver).await;
            if self.config.leasing.is_some() {
                let _ = self.leases.release(&running.lease).await;
            }
        }
        if let Some(leasing) = &self.config.leasing {
            // Gone at once from the others' count: they take the released services without waiting.
            let _ = leasing.leases.depart(&leasing.replica).await;
        }
    }
}

fn watched(running: &[Running]) -> Vec<WatchedService> {
    running
        .iter()
        .map(|running| running.watched.clone())
        .collect()
}

/// Resolves when the process stops or this service is stopped.
async fn stop_signal(mut process: watch::Receiver<bool>, mut service: watch::Receiver<bool>) {
    // An error means the sender is gone, which also means stop.
    tokio::select! {
        _ = process.wait_for(|stop| *stop) => {}
        _ = service.wait_for(|stop| *stop) => {}
    }
}

/// Waits for a driver, aborting it when it does not stop within [`STOP_GRACE`].
async fn join(driver: &mut JoinHandle<()>) {
    if tokio::time::timeout(STOP_GRACE, &mut *driver)
        .await
        .is_err()
    {
        tracing::warn!("a driver did not stop in time; aborting it");
        driver.abort();
    }
}

fn abort(task: Option<JoinHandle<()>>) {
    if let Some(task) = task {
        task.abort();
    }
}

#[cfg(test)]
mod tests {
    use fixloop_adapters::SqliteStore;
    use fixloop_adapters::fake::{FakeCopilot, FakePlanner, FakeSignalSource, FakeTestRunner};
    use fixloop_contract::{IncidentCard, SimulateMode};

    use super::*;
    use crate::profile::demo_profile;
    use crate::runtime::{Error, ServiceHandle};

    /// How long a test waits for a driver's answer.
    const WAIT: Duration = Duration::from_secs(10);

    fn fake_ports() -> Ports {
        Ports {
            signals: Arc::new(FakeSignalSource::new()),
            planner: Arc::new(FakePlanner::new()),
            rule_planner: Arc::new(fixloop_adapters::RulePlanner),
            runner: Arc::new(FakeTestRunner::new()),
            copilot: Arc::new(FakeCopilot::new()),
            prober: Arc::new(FakeSignalSource::new()),
            context: None,
        }
    }

    fn supervisor(process_stop: watch::Receiver<bool>) -> Supervisor {
        Supervisor::new(SupervisorConfig {
            config: Config::from_env_map(&std::collections::HashMap::new()).unwrap(),
            mode: Mode::Demo,
            http: fixloop_adapters::default_client(),
            store: Arc::new(SqliteStore::in_memory().unwrap()),
            metrics: Arc::new(ServerMetrics::default()),
            sequence: Sequence::new(),
            injected_ports: Some(fake_ports()),
            tune: None,
            name_ids: false,
            process_stop,
            outbox: None,
            leasing: None,
        })
    }

    /// The built-in demo service, its target a port nobody listens on.
    fn demo_watch() -> ServiceToWatch {
        ServiceToWatch {
            service: demo_profile("http://127.0.0.1:9"),
            builtin_demo: true,
            profile_sha256: None,
        }
    }

    /// Starts `watch` (a single process leads every service) and returns its driver.
    async fn start(supervisor: &mut Supervisor, watch: ServiceToWatch) -> ServiceHandle {
        supervisor
            .start(watch)
            .await
            .unwrap()
            .expect("a single process leads every service")
            .driver
            .clone()
    }

    /// Starts the demo service and opens a simulated incident: the watch, its driver and the incident opened.
    async fn start_demo_with_an_incident(
        supervisor: &mut Supervisor,
    ) -> (ServiceToWatch, ServiceHandle, IncidentCard) {
        let watch = demo_watch();
        let handle = start(supervisor, watch.clone()).await;
        let opened = tokio::time::timeout(WAIT, handle.simulate(SimulateMode::IncidentOn))
            .await
            .unwrap()
            .unwrap()
            .expect("a simulated incident opens at once");
        (watch, handle, opened)
    }

    #[tokio::test]
    async fn a_stopped_service_refuses_requests_and_a_restart_restores_its_open_incident() {
        let (_process, process_stop) = watch::channel(false);
        let mut supervisor = supervisor(process_stop);
        let (watch, handle, opened) = start_demo_with_an_incident(&mut supervisor).await;
        let name = watch.service.spec.name.clone();
        assert_eq!(supervisor.names(), std::slice::from_ref(&name));
        let services = supervisor.services();

        assert!(supervisor.stop(&name).await);
        assert!(!supervisor.stop(&name).await, "stopped already");
        assert!(handle.is_stopped());
        assert_eq!(handle.status().await, Err(Error::Unavailable));
        assert!(supervisor.names().is_empty());

        supervisor.config.injected_ports = Some(fake_ports());
        let restarted = start(&mut supervisor, watch).await;
        // The set handed out before follows: its one service is the restarted driver.
        let current = services.current_incident().await.unwrap();
        assert_eq!(
            current.map(|card| card.incident_id),
            Some(opened.incident_id.clone())
        );
        let restored = tokio::time::timeout(WAIT, restarted.current_incident())
            .await
            .unwrap()
            .unwrap()
            .expect("the open incident survives the restart of its service");
        assert_eq!(restored.incident_id, opened.incident_id);
        supervisor.shutdown().await;
        assert!(restarted.is_stopped());
    }

    #[tokio::test]
    async fn an_opened_incident_is_queued_in_every_sinks_outbox_once() {
        use fixloop_adapters::fake::FakeNotifier;
        use fixloop_adapters::notifier::NotificationKind;

        use crate::runtime::outbox::{OutboxConfig, Sink};

        let (_process, process_stop) = watch::channel(false);
        let mut supervisor = supervisor(process_stop);
        let store = Arc::clone(&supervisor.config.store);
        // The workers are not run: what the driver queued stays in the store to be read.
        let (outbox, _workers) = Outbox::new(
            Arc::clone(&store),
            ["ops", "pager"]
                .into_iter()
                .map(|name| Sink {
                    name: name.to_owned(),
                    notifier: Arc::new(FakeNotifier::new()),
                })
                .collect(),
            OutboxConfig::default(),
        );
        supervisor.config.outbox = Some(outbox);
        let (watch, _handle, opened) = start_demo_with_an_incident(&mut supervisor).await;
        let name = watch.service.spec.name.clone();
        for sink in ["ops", "pager"] {
            // `incident.created` is published once the incident's context is fetched, a port call after the
            // simulation's answer: poll the store until it is queued.
            let queued = tokio::time::timeout(WAIT, async {
                loop {
                    if let Some(queued) = store.outbox_next(sink).await.unwrap() {
                        break queued;
                    }
                    tokio::task::yield_now().await;
                }
            })
            .await
            .expect("the opening is queued");
            assert_eq!(queued.notification.kind, NotificationKind::IncidentOpened);
            assert_eq!(queued.notification.incident_id, opened.incident_id);
            assert_eq!(queued.notification.service, name);
            assert_eq!(
                queued.notification.id,
                format!("{name}:{}:incident.opened", opened.incident_id)
            );
            assert!(queued.notification.summary.contains(&opened.incident_id));
            store
                .outbox_delivered(queued.id, queued.notification.at)
                .await
                .unwrap();
        }
        // A restart replays the journal and does not tell of the opening again.
        assert!(supervisor.stop(&name).await);
        supervisor.config.injected_ports = Some(fake_ports());
        let restarted = start(&mut supervisor, watch).await;
        let restored = tokio::time::timeout(WAIT, restarted.current_incident())
            .await
            .unwrap()
            .unwrap()
            .expect("still open");
        assert_eq!(restored.incident_id, opened.incident_id);
        // Only what happened since may be queued (the fake ports let the incident recover meanwhile).
        while let Some(queued) = store.outbox_next("ops").await.unwrap() {
            assert_ne!(
                queued.notification.kind,
                NotificationKind::IncidentOpened,
                "{queued:?}"
            );
            store
                .outbox_delivered(queued.id, queued.notification.at)
                .await
                .unwrap();
        }
        supervisor.shutdown().await;
    }

    #[tokio::test]
    async fn the_process_stop_stops_every_driver() {
        let (process, process_stop) = watch::channel(false);
        let mut supervisor = supervisor(process_stop);
        let handle = start(&mut supervisor, demo_watch()).await;
        process.send(true).unwrap();
        tokio::time::timeout(WAIT, handle.stopped())
            .await
            .expect("the driver stops with the process, before the supervisor is told");
        supervisor.shutdown().await;
    }
}
