//! Starting and stopping the servers in-process: [`start_demo`] (demo service + orchestrator + traffic),
//! [`start_serve`] (orchestrator alone) and [`start_demo_app`] (demo service alone).
//!
//! Each binds its listeners first (port 0 picks an ephemeral port), so the returned URLs are real, then spawns its
//! tasks and returns a handle whose `shutdown` stops every task it started and waits for them. The `fixloop` binary
//! and the tests use exactly these functions.

mod ci;
mod store;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt as _;
use chrono::Utc;
use fixloop_adapters::{AdapterError, Secret, Store, StoreError};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{Config, ConfigError};
use crate::demo_app::{self, DemoState, traffic};
use crate::http::auth::{
    ApiToken, ApiTokens, AuthSettings, Exposure, ExposureError, Role, check_exposure,
};
use crate::http::listener::{ConnectionLimits, ConnectionStats, GuardedListener};
use crate::http::{ApiSettings, AppState, router};
use crate::profile::ci::CiProfile;
use crate::profile::notify::NotifySink;
use crate::profile::{Profile, demo_profile};
use crate::runtime::driver::Ports;
use crate::runtime::metrics::ServerMetrics;
use crate::runtime::outbox::{Outbox, OutboxConfig, notifiers};
use crate::runtime::ports::datadog_config;
use crate::runtime::reload::{self, ProfileSource, Reloader};
use crate::runtime::stream::Sequence;
use crate::runtime::stream::feed::Feed;
use crate::runtime::supervisor::{
    ServiceToWatch, Supervisor, SupervisorConfig, SupervisorError, Tune,
};
pub use crate::runtime::tuning::Mode;

/// How long `shutdown` waits for the tasks before aborting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

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
    /// `--remediate`: the shop's profile gets its remediation ([`crate::profile::DEMO_REMEDIATION`]; default false).
    pub remediate: bool,
    /// `--environment`: the remediating demo's environment label, which selects its steps' tiers (`production`
    /// makes the flag step wait for an approval; default: the profile's `demo`).
    pub environment: Option<String>,
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
            remediate: false,
            environment: None,
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
    /// Reads the profile again on a reload (SIGHUP, `POST /api/admin/reload`); `None` (the default): a reload answers
    /// that there is nothing to reload.
    pub profile_source: Option<ProfileSource>,
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
            profile_source: None,
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
    /// Asks for a reload (the demo has no profile file: it answers that there is nothing to reload).
    pub reloader: Reloader,
    tasks: Tasks,
}

/// A running orchestrator.
#[derive(Debug)]
pub struct RunningServer {
    /// The orchestrator's base URL.
    pub orchestrator_url: String,
    /// The (first) watched service's base URL.
    pub watched_url: String,
    /// Asks for a reload of the profile (what SIGHUP does).
    pub reloader: Reloader,
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

impl From<SupervisorError> for StartError {
    fn from(error: SupervisorError) -> Self {
        match error {
            SupervisorError::Profile(why) => Self::Profile(why),
            SupervisorError::Deadlines(why) => Self::Deadlines(why),
            SupervisorError::Store(error) => Self::Store(error),
        }
    }
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
    start_demo_tuned(options, None).await
}

/// [`start_demo`], with `tune` adjusting the driver's settings (and the engine's in them) once they are built: the
/// scenario player scales every timing by its speed this way.
pub(crate) async fn start_demo_tuned(
    options: DemoOptions,
    tune: Option<Tune>,
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
    let orchestrator = Orchestrator {
        bind: options.bind,
        port: options.port,
        exposure,
        config,
        mode: Mode::Demo,
        watches: vec![ServiceToWatch {
            service: if options.remediate {
                crate::profile::demo_profile_remediating(
                    &demo_url,
                    options.environment.as_deref(),
                    admin_token.as_ref(),
                )
            } else {
                demo_profile(&demo_url)
            },
            builtin_demo: true,
            profile_sha256: None,
        }],
        ports: options.ports,
        tune,
        demo_admin_token: admin_token,
        reload: None,
        ci: None,
        notify: Vec::new(),
    };
    let (server, reloader) = start_orchestrator(orchestrator, &mut tasks, &http).await?;
    Ok(RunningDemo {
        orchestrator_url: server,
        demo_url,
        reloader,
        tasks,
    })
}

/// Starts the orchestrator alone, watching `options.config.demo_app_url`.
///
/// # Errors
///
/// As [`start_demo`].
pub async fn start_serve(mut options: ServeOptions) -> Result<RunningServer, StartError> {
    let exposure = check_exposure(
        options.bind,
        &options.config.api_tokens,
        options.insecure_no_auth,
    )?;
    let mut tasks = Tasks::new();
    let http = fixloop_adapters::http_client(Duration::from_secs(10)).map_err(StartError::Http)?;
    let ci = options
        .profile
        .as_mut()
        .and_then(|profile| profile.ci.take());
    let notify = options
        .profile
        .as_ref()
        .map(|profile| profile.notify.clone())
        .unwrap_or_default();
    let watches: Vec<ServiceToWatch> = match options.profile {
        Some(profile) => profile
            .services
            .into_iter()
            .map(|service| ServiceToWatch {
                service,
                builtin_demo: false,
                profile_sha256: Some(profile.sha256.clone()),
            })
            .collect(),
        None => vec![ServiceToWatch {
            service: demo_profile(&options.config.demo_app_url),
            builtin_demo: true,
            profile_sha256: None,
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
                .find(|token| token.role.allows(Role::Operate))
        })
        .map(|token| token.token.clone());
    let orchestrator = Orchestrator {
        bind: options.bind,
        port: options.port,
        exposure,
        config: options.config,
        mode: options.mode,
        watches,
        ports: options.ports,
        tune: None,
        demo_admin_token,
        reload: options.profile_source,
        ci,
        notify,
    };
    let (orchestrator_url, reloader) = start_orchestrator(orchestrator, &mut tasks, &http).await?;
    Ok(RunningServer {
        orchestrator_url,
        watched_url,
        reloader,
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
                .filter(|token| token.role.allows(Role::Operate))
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

/// What the orchestrator is started with.
struct Orchestrator {
    bind: IpAddr,
    port: u16,
    exposure: Exposure,
    config: Config,
    mode: Mode,
    watches: Vec<ServiceToWatch>,
    /// Ports to use instead of the ones built from the profile (tests): the first service takes them.
    ports: Option<Ports>,
    tune: Option<Tune>,
    demo_admin_token: Option<Secret>,
    /// Reads the profile again on a reload.
    reload: Option<ProfileSource>,
    /// The profile's `[ci]` self-heal section.
    ci: Option<CiProfile>,
    /// Where notifications go (the profile's `[[notify]]`).
    notify: Vec<NotifySink>,
}

/// Binds the orchestrator's listener, starts a driver per watched service under a [`Supervisor`], and serves the
/// API; returns the bound URL and what asks the supervisor for a reload.
async fn start_orchestrator(
    orchestrator: Orchestrator,
    tasks: &mut Tasks,
    http: &reqwest::Client,
) -> Result<(String, Reloader), StartError> {
    let Orchestrator {
        bind,
        port,
        exposure,
        config,
        mode,
        watches,
        ports,
        tune,
        demo_admin_token,
        reload,
        ci,
        notify,
    } = orchestrator;
    let config = &config;
    let listener = bind_listener(bind, port).await?;
    let bound_url = url_of(&listener, bind);
    let metrics = Arc::new(ServerMetrics::default());
    let (store, leasing) = store::open(config, &metrics, &bound_url).await?;
    let replicas = store::directory(leasing.as_ref());
    let events = leasing.as_ref().and_then(|leasing| leasing.events.clone());
    metrics.watch_store(Arc::clone(&store));
    tasks.close_store_on_shutdown(Arc::clone(&store));
    let ci = ci::ci_intake(config, Arc::clone(&store), ci.as_ref(), http)?;
    let outbox = (!notify.is_empty()).then(|| {
        let (outbox, workers) = Outbox::new(
            Arc::clone(&store),
            notifiers(&notify, http),
            OutboxConfig::default(),
        );
        for worker in workers {
            let shutdown = tasks.signal();
            tasks.spawn(worker.run(shutdown));
        }
        outbox
    });
    // The demo's operations (bug switch, simulation) act on the built-in demo shop, named, when it is watched.
    let demo_service = watches
        .iter()
        .find(|watch| watch.builtin_demo)
        .map(|watch| watch.service.spec.name.clone());
    let mut supervisor = Supervisor::new(SupervisorConfig {
        config: config.clone(),
        mode,
        http: http.clone(),
        store,
        metrics: Arc::clone(&metrics),
        // One `seq` counter for every driver's WebSocket events, so a client's order holds across services; it
        // starts at the start time in microseconds, so a restarted server never reuses an earlier process's numbers.
        sequence: Sequence::starting_at(
            u64::try_from(Utc::now().timestamp_micros()).unwrap_or_default(),
        ),
        injected_ports: ports,
        tune,
        name_ids: watches.len() > 1,
        process_stop: tasks.stop.subscribe(),
        outbox,
        leasing,
    });
    for watch in watches {
        if let Err(error) = supervisor.start(watch).await {
            supervisor.shutdown().await;
            return Err(error.into());
        }
    }
    let copilot = supervisor.copilot();
    let services = (!supervisor.profiles().is_empty()).then(|| supervisor.services());
    // Replicas: every WebSocket client gets every service's events from the shared event log.
    if let (Some(log), Some(services)) = (events, &services) {
        match Feed::start(log, Arc::clone(&metrics), tasks.stop.subscribe()).await {
            Ok(feed) => services.use_feed(feed),
            Err(error) => {
                supervisor.shutdown().await;
                return Err(error.into());
            }
        }
    }
    if let Some(directory) = &replicas {
        // The order whole-system reads merge every replica's services in.
        directory.set_services(
            supervisor
                .profiles()
                .into_iter()
                .map(|profile| profile.spec.name)
                .collect(),
        );
    }
    let (reloader, supervisor) =
        reload::spawn(supervisor, reload, replicas.clone(), tasks.stop.subscribe());
    tasks.supervise(supervisor);
    let (Some(copilot), Some(services)) = (copilot, services) else {
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
    let service_names = services
        .snapshot()
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
        services,
        copilot,
        metrics,
        settings: Arc::new(settings),
        http: http.clone(),
        reloader: reloader.clone(),
        ci,
        replicas,
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
    Ok((bound_url, reloader))
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
    /// The supervisor's task (the drivers): it stops them on `stop` too, and is waited for after the other tasks.
    supervisor: Option<JoinHandle<()>>,
    store: Option<Arc<dyn Store>>,
}

impl Tasks {
    fn new() -> Self {
        Self {
            stop: watch::channel(false).0,
            handles: Vec::new(),
            supervisor: None,
            store: None,
        }
    }

    /// Closes `store` after every task stopped (the drivers save their last snapshots first).
    fn close_store_on_shutdown(&mut self, store: Arc<dyn Store>) {
        self.store = Some(store);
    }

    /// Keeps the supervisor's task until shutdown.
    fn supervise(&mut self, supervisor: JoinHandle<()>) {
        self.supervisor = Some(supervisor);
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
        // Not aborted: the supervisor bounds each driver's stop itself, and a driver saves its last snapshot then.
        if let Some(supervisor) = self.supervisor
            && let Err(error) = supervisor.await
        {
            tracing::error!(%error, "the supervisor's task failed");
        }
        if let Some(store) = self.store
            && let Err(error) = store.close().await
        {
            tracing::error!(%error, "the journal did not close cleanly");
        }
    }
}
