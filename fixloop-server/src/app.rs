//! Starting and stopping the servers in-process: [`start_demo`] (demo service + orchestrator + traffic),
//! [`start_serve`] (orchestrator alone) and [`start_demo_app`] (demo service alone).
//!
//! Each binds its listeners first (port 0 picks an ephemeral port), so the returned URLs are real, then spawns its
//! tasks and returns a handle whose `shutdown` stops every task it started and waits for them. The `fixloop` binary
//! and the tests use exactly these functions.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt as _;
use chrono::Utc;
use fixloop_adapters::{AdapterError, RunnerExpectations, Secret, SqliteStore, Store, StoreError};
use fixloop_core::engine::Config as EngineConfig;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{Config, ConfigError, StoreLocation};
use crate::copilot::tools::CopilotSources;
use crate::demo_app::{self, DemoState, traffic};
use crate::http::auth::{
    ApiToken, ApiTokens, AuthSettings, Exposure, ExposureError, Role, check_exposure,
};
use crate::http::listener::{ConnectionLimits, ConnectionStats, GuardedListener};
use crate::http::{ApiSettings, AppState, router};
use crate::profile::live::check_at_start;
use crate::profile::{Profile, ServiceProfile, demo_profile};
use crate::runtime::driver::{Driver, DriverConfig, Ports};
use crate::runtime::metrics::ServerMetrics;
use crate::runtime::ports::{build_ports, datadog_config};
use crate::runtime::services::{Services, WatchedService};
use crate::runtime::stream::{DEFAULT_QUEUE_CAPACITY, Sequence};

/// How long `shutdown` waits for the tasks before aborting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The timing profile of the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `fixloop demo`: 1 s polling and a 10 s detection window, so the loop completes in seconds.
    Demo,
    /// `fixloop serve`: the seed's 3 s polling and 5 minute window.
    Serve,
}

/// Options of [`start_demo`].
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Address both servers bind to (default 127.0.0.1).
    pub bind: IpAddr,
    /// Orchestrator port; 0 picks an ephemeral port (default 8000).
    pub port: u16,
    /// Demo service port; 0 picks an ephemeral port (default 8001).
    pub demo_port: u16,
    /// Vendor keys and tunables (default: none, i.e. the embedded defaults).
    pub config: Config,
    /// Whether to run the built-in traffic generator (default true).
    pub traffic: bool,
    /// Ports to use instead of the ones built from `config` (tests inject fakes); built for the demo URL if `None`.
    pub ports: Option<Ports>,
    /// `--insecure-no-auth`: start without `FIXLOOP_API_TOKENS` even when `bind` is not loopback (default false).
    pub insecure_no_auth: bool,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: crate::config::DEFAULT_ORCH_PORT,
            demo_port: crate::config::DEFAULT_DEMO_PORT,
            config: default_config(),
            traffic: true,
            ports: None,
            insecure_no_auth: false,
        }
    }
}

impl DemoOptions {
    /// The defaults on ephemeral ports (for tests).
    #[must_use]
    pub fn ephemeral() -> Self {
        Self {
            port: 0,
            demo_port: 0,
            ..Self::default()
        }
    }
}

/// Options of [`start_serve`].
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Address to bind (default 127.0.0.1).
    pub bind: IpAddr,
    /// Orchestrator port; 0 picks an ephemeral port (default 8000).
    pub port: u16,
    /// The configuration; `config.demo_app_url` is the watched service.
    pub config: Config,
    /// The engine's timing profile (default [`Mode::Serve`]).
    pub mode: Mode,
    /// Ports to use instead of the ones built from `config`.
    pub ports: Option<Ports>,
    /// The services to watch; `None` watches the demo shop at `config.demo_app_url` (the built-in demo profile).
    pub profile: Option<Profile>,
    /// `--insecure-no-auth`: start without `FIXLOOP_API_TOKENS` even when `bind` is not loopback (default false).
    pub insecure_no_auth: bool,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: crate::config::DEFAULT_ORCH_PORT,
            config: default_config(),
            mode: Mode::Serve,
            ports: None,
            profile: None,
            insecure_no_auth: false,
        }
    }
}

/// A running demo (orchestrator, demo service, traffic generator).
#[derive(Debug)]
pub struct RunningDemo {
    /// The orchestrator's base URL, for example `http://127.0.0.1:8000`.
    pub orchestrator_url: String,
    /// The demo service's base URL, for example `http://127.0.0.1:8001`.
    pub demo_url: String,
    tasks: Tasks,
}

/// A running orchestrator.
#[derive(Debug)]
pub struct RunningServer {
    /// The orchestrator's base URL.
    pub orchestrator_url: String,
    /// The (first) watched service's base URL.
    pub watched_url: String,
    tasks: Tasks,
}

/// A running demo service.
#[derive(Debug)]
pub struct RunningDemoApp {
    /// The demo service's base URL.
    pub demo_url: String,
    /// Its state (bug switch, metrics).
    pub state: DemoState,
    /// The token of this process for its `POST /admin/bug`, besides the configured `operate` tokens; `None` when
    /// no API token is configured (the switch is then open).
    pub admin_token: Option<Secret>,
    tasks: Tasks,
}

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A listener could not be bound.
    #[error("cannot listen on {address}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the http client")]
    Http(#[source] AdapterError),
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The profile asks for something the configuration cannot provide.
    #[error("profile: {0}")]
    Profile(String),
    /// The engine's deadlines cannot work with the chosen ports (a run deadline shorter than the runner's runs).
    #[error("{0}")]
    Deadlines(String),
    /// The journal cannot be opened or restored (corrupt, newer, or in use by another process).
    #[error("journal: {0}")]
    Store(#[from] StoreError),
    /// No `FIXLOOP_API_TOKENS`, a non-loopback address, and no `--insecure-no-auth`.
    #[error(transparent)]
    Exposed(#[from] ExposureError),
}

impl RunningDemo {
    /// Stops every task (servers, driver, traffic) and waits for them.
    pub async fn shutdown(self) {
        self.tasks.shutdown().await;
    }

    /// Waits until `signal` resolves, then shuts down.
    pub async fn run_until(self, signal: impl Future<Output = ()>) {
        signal.await;
        self.shutdown().await;
    }
}

impl RunningServer {
    /// Stops every task and waits for them.
    pub async fn shutdown(self) {
        self.tasks.shutdown().await;
    }

    /// Waits until `signal` resolves, then shuts down.
    pub async fn run_until(self, signal: impl Future<Output = ()>) {
        signal.await;
        self.shutdown().await;
    }
}

impl RunningDemoApp {
    /// Stops the service and waits for it.
    pub async fn shutdown(self) {
        self.tasks.shutdown().await;
    }

    /// Waits until `signal` resolves, then shuts down.
    pub async fn run_until(self, signal: impl Future<Output = ()>) {
        signal.await;
        self.shutdown().await;
    }
}

/// Starts the demo service, the orchestrator watching it (short windows) and the traffic generator.
///
/// # Errors
///
/// [`StartError`] when a port cannot be bound or the HTTP client cannot be built, and
/// [`StartError::Exposed`] (before anything is bound) when the API would be open beyond loopback.
pub async fn start_demo(options: DemoOptions) -> Result<RunningDemo, StartError> {
    start_demo_tuned(options, &|_| {}).await
}

/// [`start_demo`], with `tune` adjusting the driver's settings (and the engine's in them) once they are built: the
/// scenario player scales every timing by its speed this way.
pub(crate) async fn start_demo_tuned(
    options: DemoOptions,
    tune: &(dyn Fn(&mut DriverConfig) + Sync),
) -> Result<RunningDemo, StartError> {
    let exposure = check_exposure(
        options.bind,
        &options.config.api_tokens,
        options.insecure_no_auth,
    )?;
    // The shop listens on loopback only, whatever the orchestrator binds: only this process's orchestrator and
    // traffic generator need it (run `fixloop demo-app --bind` to expose a shop).
    let demo_bind = match options.bind {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
    };
    let app = start_demo_app(demo_bind, options.demo_port, &options.config).await?;
    let RunningDemoApp {
        demo_url,
        admin_token,
        mut tasks,
        ..
    } = app;
    let http = fixloop_adapters::http_client(Duration::from_secs(10)).map_err(StartError::Http)?;
    if options.traffic {
        let shutdown = tasks.signal();
        let config = traffic::TrafficConfig::new(demo_url.clone());
        let client = http.clone();
        tasks.spawn(traffic::run(client, config, shutdown));
    }
    let mut config = options.config.clone();
    config.demo_app_url.clone_from(&demo_url);
    let watches = vec![Watch {
        service: demo_profile(&demo_url),
        builtin_demo: true,
    }];
    let server = start_orchestrator(
        options.bind,
        options.port,
        exposure,
        &config,
        Mode::Demo,
        watches,
        options.ports,
        &mut tasks,
        &http,
        tune,
        admin_token,
    )
    .await?;
    Ok(RunningDemo {
        orchestrator_url: server,
        demo_url,
        tasks,
    })
}

/// Starts the orchestrator alone, watching `options.config.demo_app_url`.
///
/// # Errors
///
/// As [`start_demo`].
pub async fn start_serve(options: ServeOptions) -> Result<RunningServer, StartError> {
    let exposure = check_exposure(
        options.bind,
        &options.config.api_tokens,
        options.insecure_no_auth,
    )?;
    let mut tasks = Tasks::new();
    let http = fixloop_adapters::http_client(Duration::from_secs(10)).map_err(StartError::Http)?;
    let watches: Vec<Watch> = match options.profile {
        Some(profile) => profile
            .services
            .into_iter()
            .map(|service| Watch {
                service,
                builtin_demo: false,
            })
            .collect(),
        None => vec![Watch {
            service: demo_profile(&options.config.demo_app_url),
            builtin_demo: true,
        }],
    };
    let watched_url = watches
        .first()
        .map(|watch| watch.service.spec.base_url.clone())
        .unwrap_or_default();
    // The built-in demo shop (a `fixloop demo-app` with the same tokens) takes an operate token on its bug switch.
    let demo_admin_token = watches
        .first()
        .filter(|watch| watch.builtin_demo)
        .and_then(|_| {
            options
                .config
                .api_tokens
                .iter()
                .find(|token| token.role == Role::Operate)
        })
        .map(|token| token.token.clone());
    let orchestrator_url = start_orchestrator(
        options.bind,
        options.port,
        exposure,
        &options.config,
        options.mode,
        watches,
        options.ports,
        &mut tasks,
        &http,
        &|_| {},
        demo_admin_token,
    )
    .await?;
    Ok(RunningServer {
        orchestrator_url,
        watched_url,
        tasks,
    })
}

/// Starts the demo service alone (and its Datadog submitter when `DD_API_KEY` is set).
///
/// # Errors
///
/// As [`start_demo`].
pub async fn start_demo_app(
    bind: IpAddr,
    port: u16,
    config: &Config,
) -> Result<RunningDemoApp, StartError> {
    let mut tasks = Tasks::new();
    let listener = bind_listener(bind, port).await?;
    let demo_url = url_of(&listener, bind);
    // With API tokens set, the bug switch takes an operate token, or this process's own (for its orchestrator).
    let admin_token = (!config.api_tokens.is_empty()).then(|| Secret::new(random_token()));
    let state = match &admin_token {
        None => DemoState::new(),
        Some(own) => {
            let mut tokens: Vec<ApiToken> = config
                .api_tokens
                .iter()
                .filter(|token| token.role == Role::Operate)
                .cloned()
                .collect();
            tokens.push(ApiToken {
                name: "fixloop-demo".to_owned(),
                role: Role::Operate,
                token: own.clone(),
            });
            DemoState::with_admin_tokens(ApiTokens::new(tokens))
        }
    };
    let shutdown = tasks.signal();
    let app = demo_app::router(state.clone());
    tasks.spawn(async move {
        if let Err(error) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(%error, "demo service stopped with an error");
        }
    });
    if let Some(datadog) = datadog_config(config) {
        let http =
            fixloop_adapters::http_client(Duration::from_secs(10)).map_err(StartError::Http)?;
        let submitter = fixloop_adapters::datadog::DatadogMetricsSubmitter::new(datadog, http);
        tasks.spawn(demo_app::datadog::submit_periodically(
            submitter,
            state.clone(),
            Duration::from_secs(10),
            tasks.signal(),
        ));
        tracing::info!("demo service: submitting its metrics to Datadog every 10 s");
    }
    tracing::info!(url = %demo_url, "demo service listening");
    Ok(RunningDemoApp {
        demo_url,
        state,
        admin_token,
        tasks,
    })
}

/// The engine configuration of a mode for `service`: the mode's defaults (the core's `Config` constructors), the
/// environment's tunables, then the profile's thresholds (a profile's own setting wins).
#[must_use]
pub fn engine_config(mode: Mode, config: &Config, service: &ServiceProfile) -> EngineConfig {
    let id_prefix = format!("{:x}", Utc::now().timestamp() & 0xff_ffff);
    let spec = service.spec.clone();
    let mut engine = match mode {
        Mode::Demo => EngineConfig::demo(spec, &id_prefix),
        Mode::Serve => EngineConfig::seed(spec, &id_prefix),
    };
    let tuning = &config.tuning;
    if let Some(rate) = tuning.trigger_error_rate {
        engine.trigger_error_rate = rate;
    }
    if let Some(rate) = tuning.recovery_error_rate {
        engine.recovery_error_rate = rate;
    }
    if let Some(window) = tuning.detection_window {
        engine.detection_window = window;
    }
    if let Some(interval) = tuning.rerun_interval {
        engine.rerun_interval = interval;
    }
    if let Some(deadline) = tuning.run_deadline {
        engine.run_deadline = deadline;
    }
    if let Some(budget) = tuning.plan_budget {
        engine.plan_budget = budget;
    }
    if let Some(interval) = tuning.poll_interval {
        // The settings that follow the interval (confirmation delay, sample freshness) are the core's to derive.
        engine = engine.with_poll_interval(interval);
    }
    if let Some(delay) = tuning.confirm_delay {
        engine.confirm_delay = delay;
    }
    if let Some(limit) = tuning.inconclusive_limit {
        engine.inconclusive_limit = limit;
    }
    service.apply_thresholds(&mut engine);
    engine
}

/// The run deadline a runner needs: its longest run plus a margin of 10%, at least 5 s (the runner's own timeouts end
/// its run first; the engine's deadline only catches a runner that hangs beyond them).
fn needed_run_deadline(runner: RunnerExpectations) -> Duration {
    runner.max_run_duration + (runner.max_run_duration / 10).max(Duration::from_secs(5))
}

/// The runner owns how long its runs take: unless the run deadline was set explicitly (`explicit`), it becomes at
/// least the runner's longest run plus a margin (never shorter than the mode's default).
pub fn follow_runner(engine: &mut EngineConfig, explicit: bool, runner: RunnerExpectations) {
    if !explicit {
        engine.run_deadline = engine.run_deadline.max(needed_run_deadline(runner));
    }
}

/// Refuses a run deadline shorter than the runner's longest run: every run would be cancelled before it could
/// finish (for example TestSprite's 10-20 minute cycles under a 60 s deadline).
///
/// # Errors
///
/// [`StartError::Deadlines`] naming the runner, both durations and the setting to change.
pub fn check_run_deadline(
    engine: &EngineConfig,
    runner: RunnerExpectations,
    runner_name: &str,
) -> Result<(), StartError> {
    if engine.run_deadline >= runner.max_run_duration {
        return Ok(());
    }
    Err(StartError::Deadlines(format!(
        "service {}: the run deadline of {} s is shorter than the longest run of the test runner ({runner_name}: {} s), \
         so every run would be cancelled before it could finish; set FIXLOOP_RUN_DEADLINE_SECS to at least {} or \
         leave it unset (the deadline then follows the runner)",
        engine.service.name,
        engine.run_deadline.as_secs_f64(),
        runner.max_run_duration.as_secs_f64(),
        needed_run_deadline(runner).as_secs_f64().ceil(),
    )))
}

/// One service to watch, and whether it is the built-in demo profile (which keeps the environment's signal
/// switches).
struct Watch {
    service: ServiceProfile,
    builtin_demo: bool,
}

#[allow(clippy::too_many_arguments)]
async fn start_orchestrator(
    bind: IpAddr,
    port: u16,
    exposure: Exposure,
    config: &Config,
    mode: Mode,
    watches: Vec<Watch>,
    mut ports: Option<Ports>,
    tasks: &mut Tasks,
    http: &reqwest::Client,
    tune: &(dyn Fn(&mut DriverConfig) + Sync),
    demo_admin_token: Option<Secret>,
) -> Result<String, StartError> {
    let listener = bind_listener(bind, port).await?;
    let bound_url = url_of(&listener, bind);
    let metrics = Arc::new(ServerMetrics::default());
    let store: Arc<dyn Store> = match &config.store {
        None | Some(StoreLocation::Memory) => Arc::new(SqliteStore::in_memory()?),
        Some(StoreLocation::Directory(dir)) => {
            let store = SqliteStore::open(dir)?;
            store.set_retention(config.retention).await?;
            Arc::new(store)
        }
    };
    metrics.watch_store(Arc::clone(&store));
    tasks.close_store_on_shutdown(Arc::clone(&store));
    let several = watches.len() > 1;
    // The demo's operations (bug switch, simulation) act on the built-in demo shop, named, when it is watched.
    let demo_service = watches
        .iter()
        .find(|watch| watch.builtin_demo)
        .map(|watch| watch.service.spec.name.clone());
    // One `seq` counter for every driver's WebSocket events, so a client's order holds across services; it starts
    // at the start time in microseconds, so a restarted server never reuses an earlier process's numbers.
    let sequence =
        Sequence::starting_at(u64::try_from(Utc::now().timestamp_micros()).unwrap_or_default());
    let mut watched = Vec::with_capacity(watches.len());
    let mut copilot = None;
    for Watch {
        service,
        builtin_demo,
    } in watches
    {
        let name = service.spec.name.clone();
        let (service_ports, signals, runner_name) = match ports.take() {
            // Injected ports (tests) serve the first service.
            Some(injected) => (
                injected,
                "injected by the caller".to_owned(),
                "injected by the caller".to_owned(),
            ),
            None => {
                let (built, choice) = build_ports(config, &service, builtin_demo, http)
                    .map_err(StartError::Profile)?;
                tracing::info!(service = %name, %choice, "ports");
                // The live check of the profile's source (the built-in demo's may be switched by the environment,
                // then only its scrape is checked): one WARN line per blind signal; it never blocks the start.
                if !builtin_demo || choice.signals.starts_with("scrape") {
                    tasks.spawn(check_at_start(
                        config.clone(),
                        service.clone(),
                        http.clone(),
                    ));
                }
                (built, choice.signals, choice.runner)
            }
        };
        let runner = service_ports.runner.expectations();
        copilot.get_or_insert_with(|| Arc::clone(&service_ports.copilot));
        let copilot_sources = CopilotSources {
            signals: Some(Arc::clone(&service_ports.signals)),
            context: service_ports.context.clone(),
        };
        let mut engine = engine_config(mode, config, &service);
        follow_runner(&mut engine, config.tuning.run_deadline.is_some(), runner);
        if several {
            // Ids stay unique across the services' engines, and say whose they are.
            engine.id_prefix = format!("{}-{name}", engine.id_prefix);
        }
        let mut driver_config = DriverConfig {
            engine,
            signal_timeout: Duration::from_secs(5),
            websocket_queue: DEFAULT_QUEUE_CAPACITY,
        };
        tune(&mut driver_config);
        check_run_deadline(&driver_config.engine, runner, &runner_name)?;
        tracing::info!(
            service = %name,
            run_deadline_ms = driver_config.engine.run_deadline.as_millis() as u64,
            runner_longest_run_ms = runner.max_run_duration.as_millis() as u64,
            progress = ?runner.progress,
            plan_budget_ms = driver_config.engine.plan_budget.as_millis() as u64,
            "deadlines"
        );
        let (driver, handle) = Driver::restore(
            driver_config,
            service_ports,
            Arc::clone(&metrics),
            Arc::clone(&store),
            sequence.clone(),
        )
        .await?;
        tasks.spawn(driver.run(tasks.signal()));
        // `fixloop_signals_degraded` reads 0 (or 1 after a restore) from the start, not only once a status was
        // published.
        if let Ok(Ok(status)) = tokio::time::timeout(Duration::from_secs(5), handle.status()).await
        {
            metrics.signals_degraded_at_start(&name, status.signals_degraded.is_some());
        }
        watched.push(WatchedService {
            name,
            base_url: service.spec.base_url.clone(),
            alert_labels: service.alert_labels.clone(),
            signals,
            driver: handle,
            copilot_sources,
        });
    }
    let Some(copilot) = copilot else {
        return Err(StartError::Profile(
            "there is no service to watch".to_owned(),
        ));
    };
    let mut settings = ApiSettings::new(
        config
            .orch_base_url
            .clone()
            .unwrap_or_else(|| bound_url.clone()),
        config.demo_app_url.clone(),
    );
    settings.webhook_secret.clone_from(&config.webhook_secret);
    settings.max_body_bytes = config.max_body_bytes;
    if let Some(budget) = config.copilot_budget {
        settings.copilot_timeout = budget;
    }
    settings.cors_origins.clone_from(&config.cors_origins);
    // A quiet WebSocket client sends only pongs: ping often enough that a live one is never idle for the timeout.
    settings.websocket.ping_interval = settings
        .websocket
        .ping_interval
        .min(config.idle_timeout / 3);
    settings.auth = AuthSettings {
        tokens: config.api_tokens.clone(),
        copilot_limit: config.copilot_rate_limit,
        operate_limit: config.operate_rate_limit,
    };
    // The services this process watches, for the start-up line (a profile's names, or the demo shop's).
    let service_names = watched
        .iter()
        .map(|service| format!("{} ({})", service.name, service.base_url))
        .collect::<Vec<_>>()
        .join(", ");
    settings.bind = Some(bind);
    let connections = Arc::new(ConnectionStats::default());
    settings.connections = Some(Arc::clone(&connections));
    let limits = ConnectionLimits {
        max_connections: config.max_connections,
        // Without tokens the caller is known only by its address: one address may not take every slot.
        max_per_address: config
            .api_tokens
            .is_empty()
            .then_some(config.max_connections_per_address),
        idle_timeout: config.idle_timeout,
    };
    settings.allowed_hosts.clone_from(&config.allowed_hosts);
    settings.demo_admin_token = demo_admin_token;
    settings.demo_service = demo_service;
    let state = AppState {
        services: Services::new(watched),
        copilot,
        metrics,
        settings: Arc::new(settings),
        http: http.clone(),
    };
    // The peer address keys the rate limits when no token is configured.
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    let listener = GuardedListener::new(listener, limits, connections).tap_io(|_| {});
    let shutdown = tasks.signal();
    tasks.spawn(async move {
        if let Err(error) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(%error, "orchestrator stopped with an error");
        }
    });
    match exposure {
        Exposure::Authenticated => {
            tracing::info!(tokens = config.api_tokens.len(), "bearer tokens required");
        }
        Exposure::OpenOnLoopback => {
            tracing::info!(
                "no FIXLOOP_API_TOKENS: the API is open to this machine only (loopback)"
            );
        }
        Exposure::InsecureOpen => tracing::warn!(
            %bind,
            "--insecure-no-auth: the API is open to anyone who can reach the port"
        ),
    }
    tracing::info!(url = %bound_url, services = %service_names, %config, "orchestrator listening");
    Ok(bound_url)
}

async fn bind_listener(bind: IpAddr, port: u16) -> Result<TcpListener, StartError> {
    let address = SocketAddr::new(bind, port);
    TcpListener::bind(address)
        .await
        .map_err(|source| StartError::Bind { address, source })
}

/// The base URL of a bound listener; an unspecified bind address (0.0.0.0, ::) is shown as loopback.
fn url_of(listener: &TcpListener, bind: IpAddr) -> String {
    let port = listener.local_addr().map_or(0, |address| address.port());
    let host = if bind.is_unspecified() {
        match bind {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        }
    } else {
        bind
    };
    match host {
        IpAddr::V4(v4) => format!("http://{v4}:{port}"),
        IpAddr::V6(v6) => format!("http://[{v6}]:{port}"),
    }
}

/// 256 bits from the standard library's randomly keyed SipHash, hex-encoded: the demo shop's own bug-switch token
/// (it never leaves the process).
fn random_token() -> String {
    use std::fmt::Write as _;
    use std::hash::{BuildHasher, RandomState};
    let mut token = String::with_capacity(64);
    for part in 0_u64..4 {
        let value =
            RandomState::new().hash_one((part, std::process::id(), std::time::SystemTime::now()));
        let _ = write!(token, "{value:016x}");
    }
    token
}

fn default_config() -> Config {
    // The empty environment is always valid: every variable is optional.
    Config::from_env_map(&std::collections::HashMap::new()).unwrap_or_else(|error| {
        unreachable!("the empty environment is a valid configuration: {error}")
    })
}

/// The tasks of a running server, the signal that stops them, and the journal closed once they stopped.
#[derive(Debug)]
struct Tasks {
    stop: watch::Sender<bool>,
    handles: Vec<JoinHandle<()>>,
    store: Option<Arc<dyn Store>>,
}

impl Tasks {
    fn new() -> Self {
        Self {
            stop: watch::channel(false).0,
            handles: Vec::new(),
            store: None,
        }
    }

    /// Closes `store` after every task stopped (the drivers save their last snapshots first).
    fn close_store_on_shutdown(&mut self, store: Arc<dyn Store>) {
        self.store = Some(store);
    }

    /// A future that resolves when shutdown is requested.
    fn signal(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut receiver = self.stop.subscribe();
        async move {
            // An error means the sender is gone, which also means shutdown.
            let _ = receiver.wait_for(|stop| *stop).await;
        }
    }

    fn spawn(&mut self, task: impl Future<Output = ()> + Send + 'static) {
        self.handles.push(tokio::spawn(task));
    }

    async fn shutdown(self) {
        let _ = self.stop.send(true);
        for mut handle in self.handles {
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut handle)
                .await
                .is_err()
            {
                tracing::warn!("a task did not stop in time; aborting it");
                handle.abort();
            }
        }
        if let Some(store) = self.store
            && let Err(error) = store.close().await
        {
            tracing::error!(%error, "the journal did not close cleanly");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use fixloop_adapters::ProgressModel;

    use super::*;

    /// TestSprite's declared runs: a 60 s handshake and a 20-minute run call.
    const TESTSPRITE: RunnerExpectations = RunnerExpectations {
        max_run_duration: Duration::from_secs(21 * 60),
        progress: ProgressModel::PerTest,
    };

    fn engine(mode: Mode) -> EngineConfig {
        let spec = demo_profile("http://127.0.0.1:8001").spec;
        match mode {
            Mode::Demo => EngineConfig::demo(spec, "t"),
            Mode::Serve => EngineConfig::seed(spec, "t"),
        }
    }

    /// Regression: a 60 s (serve) or 30 s (demo) run deadline cancelled every TestSprite run.
    #[test]
    fn an_unset_run_deadline_follows_the_runner_and_then_fits_it() {
        for mode in [Mode::Demo, Mode::Serve] {
            let mut config = engine(mode);
            follow_runner(&mut config, false, TESTSPRITE);
            assert_eq!(config.run_deadline, Duration::from_secs(21 * 60 + 126));
            check_run_deadline(&config, TESTSPRITE, "TestSprite").expect("it fits");
        }
    }

    #[test]
    fn a_quick_runner_keeps_the_modes_deadline() {
        let quick = RunnerExpectations {
            max_run_duration: Duration::from_secs(6),
            progress: ProgressModel::PerTest,
        };
        let mut config = engine(Mode::Serve);
        follow_runner(&mut config, false, quick);
        assert_eq!(config.run_deadline, Duration::from_secs(60));
    }

    #[test]
    fn an_explicit_run_deadline_shorter_than_the_runner_is_refused_with_what_to_do() {
        let mut config = engine(Mode::Serve);
        config.run_deadline = Duration::from_secs(60);
        follow_runner(&mut config, true, TESTSPRITE);
        assert_eq!(
            config.run_deadline,
            Duration::from_secs(60),
            "explicit wins"
        );
        let error = check_run_deadline(&config, TESTSPRITE, "TestSprite").unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, StartError::Deadlines(_)));
        assert!(
            message.contains("run deadline of 60 s is shorter than the longest run of the test runner (TestSprite: 1260 s)")
                && message.contains("FIXLOOP_RUN_DEADLINE_SECS to at least 1386"),
            "{message}"
        );
        // Long enough is accepted as it is.
        config.run_deadline = Duration::from_secs(1300);
        check_run_deadline(&config, TESTSPRITE, "TestSprite").expect("it fits");
    }

    #[test]
    fn the_environment_sets_the_run_deadline_and_the_plan_budget() {
        let env = HashMap::from([
            ("FIXLOOP_RUN_DEADLINE_SECS".to_owned(), "1500".to_owned()),
            ("FIXLOOP_PLAN_BUDGET_SECS".to_owned(), "5".to_owned()),
        ]);
        let config = Config::from_env_map(&env).unwrap();
        let service = demo_profile("http://127.0.0.1:8001");
        let engine = engine_config(Mode::Demo, &config, &service);
        assert_eq!(engine.run_deadline, Duration::from_secs(1500));
        assert_eq!(engine.plan_budget, Duration::from_secs(5));
    }
}
