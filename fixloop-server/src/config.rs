//! The server's configuration, read from environment variables by a pure function ([`Config::from_env_map`]).
//!
//! Every variable is optional; an empty value counts as unset (as `.env` files often write `DD_API_KEY=`). A value
//! that is set but wrong stops start-up with a [`ConfigError`] naming the variable. Engine tunables left unset take
//! the defaults of the mode (`demo`: short windows; `serve`: the seed's 5 minute window and 3 s polling).

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use fixloop_adapters::Secret;
use fixloop_adapters::datadog::DatadogSite;

use crate::http::auth::{ApiTokens, RateLimit};

/// Default orchestrator port (`ORCH_PORT`).
pub const DEFAULT_ORCH_PORT: u16 = 8000;
/// Default demo service port (`DEMO_PORT`).
pub const DEFAULT_DEMO_PORT: u16 = 8001;
/// Default watched service (`DEMO_APP_URL`).
pub const DEFAULT_DEMO_APP_URL: &str = "http://localhost:8001";
/// Default dashboard origin allowed by CORS (`FIXLOOP_CORS_ORIGINS`).
pub const DEFAULT_CORS_ORIGIN: &str = "http://localhost:3000";
/// Default request body limit (`FIXLOOP_MAX_BODY_BYTES`): 64 KiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
/// Default monitored service name (`DD_SERVICE`).
pub const DEFAULT_SERVICE: &str = "demo-checkout";
/// The engine's default trigger error rate (`FIXLOOP_TRIGGER_ERROR_RATE`).
pub const DEFAULT_TRIGGER_ERROR_RATE: f64 = fixloop_core::engine::DEFAULT_TRIGGER_ERROR_RATIO;
/// The engine's default recovery error rate (`FIXLOOP_RECOVERY_ERROR_RATE`).
pub const DEFAULT_RECOVERY_ERROR_RATE: f64 = fixloop_core::engine::DEFAULT_RECOVERY_ERROR_RATIO;
/// The `fixloop` binary's data directory when none is configured (`FIXLOOP_DATA_DIR`), relative to the working
/// directory.
pub const DEFAULT_DATA_DIR: &str = "fixloop-data";
/// Shortest accepted webhook secret, in bytes.
pub const MIN_WEBHOOK_SECRET_LEN: usize = 16;

mod replicas;

pub use self::replicas::{DEFAULT_LEASE_SECONDS, ReplicaSettings};

/// Every environment variable the server reads, in `.env.example` order.
pub const VARIABLES: [&str; 56] = [
    "ORCH_PORT",
    "DEMO_PORT",
    "DEMO_APP_URL",
    "FIXLOOP_PROFILE",
    "ORCH_BASE_URL",
    "MINIMAX_API_KEY",
    "MINIMAX_MODEL",
    "MINIMAX_BASE_URL",
    "DD_API_KEY",
    "DD_APP_KEY",
    "DD_SITE",
    "DD_SERVICE",
    "DD_ENV",
    "DATADOG_MCP_URL",
    "DATADOG_MCP_AUTH",
    "TESTSPRITE_MCP_URL",
    "TESTSPRITE_MCP_AUTH",
    "TESTSPRITE_API_KEY",
    "TESTSPRITE_BASE_URL",
    "FIXLOOP_POLL_INTERVAL_SECS",
    "FIXLOOP_TRIGGER_ERROR_RATE",
    "FIXLOOP_RECOVERY_ERROR_RATE",
    "FIXLOOP_DETECTION_WINDOW_SECS",
    "FIXLOOP_CONFIRM_DELAY_SECS",
    "FIXLOOP_INCONCLUSIVE_LIMIT",
    "FIXLOOP_RERUN_INTERVAL_SECS",
    "FIXLOOP_RUN_DEADLINE_SECS",
    "FIXLOOP_PLAN_BUDGET_SECS",
    "FIXLOOP_WEBHOOK_SECRET",
    "FIXLOOP_CI_TOKEN",
    "FIXLOOP_CI_FORWARD_URL",
    "FIXLOOP_CI_FORWARD_TOKEN",
    "FIXLOOP_CORS_ORIGINS",
    "FIXLOOP_ALLOWED_HOSTS",
    "FIXLOOP_PROMETHEUS_URL",
    "FIXLOOP_MAX_BODY_BYTES",
    "FIXLOOP_DATA_DIR",
    "FIXLOOP_DATABASE_URL",
    "FIXLOOP_JOURNAL_KEEP_ENTRIES",
    "FIXLOOP_JOURNAL_KEEP_INCIDENTS",
    "FIXLOOP_JOURNAL_KEEP_DAYS",
    "FIXLOOP_STORE_MAX_KIB",
    "FIXLOOP_REPLICA_ID",
    "FIXLOOP_LEASE_SECONDS",
    "FIXLOOP_MAX_LEADS",
    "FIXLOOP_REMEDIATION_MODE",
    "FIXLOOP_REMEDIATION_CHOOSER",
    "FIXLOOP_API_TOKENS",
    "FIXLOOP_COPILOT_RATE_PER_MINUTE",
    "FIXLOOP_COPILOT_BURST",
    "FIXLOOP_COPILOT_BUDGET_SECS",
    "FIXLOOP_OPERATE_RATE_PER_MINUTE",
    "FIXLOOP_OPERATE_BURST",
    "FIXLOOP_MAX_CONNECTIONS",
    "FIXLOOP_MAX_CONNECTIONS_PER_ADDRESS",
    "FIXLOOP_IDLE_TIMEOUT_SECS",
];

/// The server's configuration. `Debug` never prints a secret.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `ORCH_PORT`: the orchestrator's port (the `--port` flag wins).
    pub orch_port: u16,
    /// `DEMO_PORT`: the demo service's port (the `--demo-port` flag wins).
    pub demo_port: u16,
    /// `DEMO_APP_URL`: the watched service in `serve` mode without a profile.
    pub demo_app_url: String,
    /// `FIXLOOP_PROFILE`: the service profile `serve` watches (the `--profile` flag wins).
    pub profile: Option<std::path::PathBuf>,
    /// `ORCH_BASE_URL`: the orchestrator's public URL, for citations; `None` means the bound address.
    pub orch_base_url: Option<String>,
    /// `MINIMAX_*`: the LLM planner and copilot, when a key is set.
    pub minimax: Option<MiniMaxSettings>,
    /// `DD_API_KEY`, `DD_APP_KEY`, `DD_SITE`: Datadog, when an API key is set.
    pub datadog: Option<DatadogSettings>,
    /// `DD_SERVICE`: the monitored service's name.
    pub service: String,
    /// `DD_ENV`: the environment tag, if any.
    pub env: Option<String>,
    /// `DATADOG_MCP_URL`, `DATADOG_MCP_AUTH`.
    pub datadog_mcp: Option<McpSettings>,
    /// `TESTSPRITE_MCP_URL`, `TESTSPRITE_MCP_AUTH`.
    pub testsprite_mcp: Option<McpSettings>,
    /// `TESTSPRITE_API_KEY`, `TESTSPRITE_BASE_URL`.
    pub testsprite_api: Option<TestSpriteApiSettings>,
    /// Engine tunables set in the environment (unset ones take the mode's defaults).
    pub tuning: Tuning,
    /// `FIXLOOP_WEBHOOK_SECRET`: the shared secret of the alert webhooks; `None` disables them.
    pub webhook_secret: Option<Secret>,
    /// `FIXLOOP_CORS_ORIGINS`: comma-separated origins allowed by CORS (`*` allows any).
    pub cors_origins: Vec<String>,
    /// `FIXLOOP_ALLOWED_HOSTS`: comma-separated host names or addresses (lowercase, no port) the API answers to
    /// besides loopback and the bound address; set, the `Host` check also runs when tokens are configured.
    pub allowed_hosts: Vec<String>,
    /// `FIXLOOP_PROMETHEUS_URL`: a Prometheus server to read the signals from, instead of scraping the service.
    pub prometheus_url: Option<String>,
    /// `FIXLOOP_MAX_BODY_BYTES`: the request body limit.
    pub max_body_bytes: usize,
    /// `FIXLOOP_API_TOKENS`: the API's bearer tokens (`name:role:token`, comma-separated); empty means open.
    pub api_tokens: ApiTokens,
    /// `FIXLOOP_COPILOT_RATE_PER_MINUTE`, `FIXLOOP_COPILOT_BURST`: the copilot's rate limit per caller.
    pub copilot_rate_limit: RateLimit,
    /// `FIXLOOP_OPERATE_RATE_PER_MINUTE`, `FIXLOOP_OPERATE_BURST`: the rate limit per caller of the operate routes
    /// that start work (`POST /api/tests/run`, `/api/incidents/simulate`, `/api/demo/bug`).
    pub operate_rate_limit: RateLimit,
    /// `FIXLOOP_MAX_CONNECTIONS`: most open connections (over it, a new one is closed at once).
    pub max_connections: usize,
    /// `FIXLOOP_MAX_CONNECTIONS_PER_ADDRESS`: most open connections from one client address, on a server without
    /// tokens.
    pub max_connections_per_address: usize,
    /// `FIXLOOP_IDLE_TIMEOUT_SECS`: a connection that sends nothing, or a request without end, for this long is
    /// closed (idle keep-alive, half-sent headers, a WebSocket peer that stopped answering pings).
    pub idle_timeout: Duration,
    /// `FIXLOOP_COPILOT_BUDGET_SECS`: how long the LLM copilot may take (tool steps included) before the grounded
    /// copilot answers instead; `None` keeps the API's default ([`crate::http::DEFAULT_COPILOT_BUDGET`]).
    pub copilot_budget: Option<Duration>,
    /// `FIXLOOP_DATA_DIR` or `FIXLOOP_DATABASE_URL` (`memory:` or `postgres://…`): where the journal lives; `None`
    /// when neither is set
    /// (the `fixloop` binary then keeps it in [`DEFAULT_DATA_DIR`], the library in memory only).
    pub store: Option<StoreLocation>,
    /// `FIXLOOP_JOURNAL_KEEP_ENTRIES`, `FIXLOOP_JOURNAL_KEEP_INCIDENTS`, `FIXLOOP_JOURNAL_KEEP_DAYS`,
    /// `FIXLOOP_STORE_MAX_KIB`: how much journal the store keeps, and a hard cap on its file.
    pub retention: fixloop_adapters::Retention,
    /// `FIXLOOP_CI_TOKEN`: the CI intake's bearer token (at least 16 bytes); `None` turns the intake off.
    pub ci_token: Option<Secret>,
    /// `FIXLOOP_REPLICA_ID`, `FIXLOOP_LEASE_SECONDS`, `FIXLOOP_MAX_LEADS`: how this process shares the services
    /// with other replicas of one PostgreSQL database (unused with an SQLite or memory journal).
    pub replicas: ReplicaSettings,
    /// `FIXLOOP_CI_FORWARD_URL` and `FIXLOOP_CI_FORWARD_TOKEN`: the one downstream each CI intake is forwarded to.
    pub ci_forward: Option<(String, Option<Secret>)>,
}

/// Where the journal of the engines' inputs is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// In memory only: nothing survives the process (`--ephemeral`, `FIXLOOP_DATABASE_URL=memory:`).
    Memory,
    /// An SQLite file in this directory (`FIXLOOP_DATA_DIR`).
    Directory(std::path::PathBuf),
    /// A PostgreSQL database (`FIXLOOP_DATABASE_URL=postgres://user[:password]@host[:port]/database`; the schema is
    /// the URL's `search_path`, e.g. `?options=-csearch_path%3Dteam`). The URL is a secret: it may hold a password.
    Postgres(Secret),
}

impl fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory => f.write_str("memory"),
            Self::Directory(dir) => write!(f, "{}", dir.display()),
            Self::Postgres(url) => {
                f.write_str(&fixloop_adapters::store::redacted_url(url.expose()))
            }
        }
    }
}

/// MiniMax settings.
#[derive(Debug, Clone, PartialEq)]
pub struct MiniMaxSettings {
    /// `MINIMAX_API_KEY`.
    pub api_key: Secret,
    /// `MINIMAX_MODEL`, if set (else the adapter's default).
    pub model: Option<String>,
    /// `MINIMAX_BASE_URL`, if set (else the adapter's default).
    pub base_url: Option<String>,
}

/// Datadog settings.
#[derive(Debug, Clone, PartialEq)]
pub struct DatadogSettings {
    /// `DD_API_KEY`: enough to submit the demo service's metrics.
    pub api_key: Secret,
    /// `DD_APP_KEY`: needed to read metrics (the Datadog signal source).
    pub app_key: Option<Secret>,
    /// `DD_SITE`.
    pub site: DatadogSite,
}

/// An MCP server's address and credential.
#[derive(Debug, Clone, PartialEq)]
pub struct McpSettings {
    /// The server's URL.
    pub url: String,
    /// The credential, if the server needs one.
    pub auth: Option<Secret>,
}

/// TestSprite's direct API.
#[derive(Debug, Clone, PartialEq)]
pub struct TestSpriteApiSettings {
    /// `TESTSPRITE_API_KEY`.
    pub api_key: Secret,
    /// `TESTSPRITE_BASE_URL`, if set.
    pub base_url: Option<String>,
}

/// Engine tunables read from the environment; `None` means the mode's default.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Tuning {
    /// `FIXLOOP_POLL_INTERVAL_SECS`.
    pub poll_interval: Option<Duration>,
    /// `FIXLOOP_TRIGGER_ERROR_RATE`, a ratio in (0, 1].
    pub trigger_error_rate: Option<f64>,
    /// `FIXLOOP_RECOVERY_ERROR_RATE`, a ratio in [0, 1), below the trigger.
    pub recovery_error_rate: Option<f64>,
    /// `FIXLOOP_DETECTION_WINDOW_SECS`.
    pub detection_window: Option<Duration>,
    /// `FIXLOOP_RERUN_INTERVAL_SECS`.
    pub rerun_interval: Option<Duration>,
    /// `FIXLOOP_RUN_DEADLINE_SECS`: the engine's run deadline; unset, it follows the runner (see
    /// `app::run_deadline`), and a value shorter than the runner's longest run is refused at start-up.
    pub run_deadline: Option<Duration>,
    /// `FIXLOOP_PLAN_BUDGET_SECS`: the configured planner's total time per incident, across attempts.
    pub plan_budget: Option<Duration>,
    /// `FIXLOOP_CONFIRM_DELAY_SECS`: how soon the engine reads again after a hot measurement (unset: a third of the
    /// polling interval, the core's default).
    pub confirm_delay: Option<Duration>,
    /// `FIXLOOP_INCONCLUSIVE_LIMIT`: inconclusive recovery checks in a row after which an incident needs a human.
    pub inconclusive_limit: Option<u32>,
    /// `FIXLOOP_REMEDIATION_MODE`: every service's remediation mode, over its profile's `mode` (`None`: the
    /// profile's, or `monitor-only`).
    pub remediation_mode: Option<fixloop_core::remediation::RemediationMode>,
    /// `FIXLOOP_REMEDIATION_CHOOSER`: every service's chooser (`rules`, `model`), over its profile's.
    pub remediation_chooser: Option<fixloop_core::remediation::Chooser>,
}

/// A variable is set to a value the server cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {variable}: {message}")]
pub struct ConfigError {
    /// The variable's name.
    pub variable: &'static str,
    /// What is wrong, never including a secret's value.
    pub message: String,
}

impl Config {
    /// Reads the configuration from a map of environment variables (pure: `cli` passes the process's variables).
    ///
    /// # Errors
    ///
    /// The first [`ConfigError`] found, naming the variable.
    pub fn from_env_map(env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let reader = Reader { env };
        let datadog = match (reader.secret("DD_API_KEY"), reader.secret("DD_APP_KEY")) {
            (None, None) => None,
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "DD_API_KEY",
                    "is required when DD_APP_KEY is set",
                ));
            }
            (Some(api_key), app_key) => Some(DatadogSettings {
                api_key,
                app_key,
                site: match reader.get("DD_SITE") {
                    None => DatadogSite::default(),
                    Some(site) => {
                        site.parse()
                            .map_err(|error: fixloop_adapters::datadog::UnknownSite| {
                                ConfigError::new("DD_SITE", error.to_string())
                            })?
                    }
                },
            }),
        };
        let minimax = match reader.secret("MINIMAX_API_KEY") {
            None => None,
            Some(api_key) => Some(MiniMaxSettings {
                api_key,
                model: reader.get("MINIMAX_MODEL").map(str::to_owned),
                base_url: reader.url("MINIMAX_BASE_URL")?,
            }),
        };
        let testsprite_api = match reader.secret("TESTSPRITE_API_KEY") {
            None => {
                reader.url("TESTSPRITE_BASE_URL")?;
                None
            }
            Some(api_key) => Some(TestSpriteApiSettings {
                api_key,
                base_url: reader.url("TESTSPRITE_BASE_URL")?,
            }),
        };
        let tuning = Tuning {
            poll_interval: reader.seconds("FIXLOOP_POLL_INTERVAL_SECS", 0.1, 3600.0)?,
            trigger_error_rate: reader.ratio("FIXLOOP_TRIGGER_ERROR_RATE")?,
            recovery_error_rate: reader.ratio("FIXLOOP_RECOVERY_ERROR_RATE")?,
            detection_window: reader.seconds("FIXLOOP_DETECTION_WINDOW_SECS", 1.0, 86_400.0)?,
            rerun_interval: reader.seconds("FIXLOOP_RERUN_INTERVAL_SECS", 1.0, 86_400.0)?,
            run_deadline: reader.seconds("FIXLOOP_RUN_DEADLINE_SECS", 1.0, 86_400.0)?,
            plan_budget: reader.seconds("FIXLOOP_PLAN_BUDGET_SECS", 1.0, 3600.0)?,
            confirm_delay: reader.seconds("FIXLOOP_CONFIRM_DELAY_SECS", 0.1, 3600.0)?,
            inconclusive_limit: reader.count("FIXLOOP_INCONCLUSIVE_LIMIT", 1, 10_000)?,
            remediation_mode: reader
                .get("FIXLOOP_REMEDIATION_MODE")
                .map(|name| {
                    fixloop_core::remediation::RemediationMode::parse(name).ok_or_else(|| {
                        ConfigError::new(
                            "FIXLOOP_REMEDIATION_MODE",
                            "expected monitor-only, shadow, dry-run or auto",
                        )
                    })
                })
                .transpose()?,
            remediation_chooser: reader
                .get("FIXLOOP_REMEDIATION_CHOOSER")
                .map(|name| fixloop_core::remediation::Chooser::parse(name).ok_or(()))
                .transpose()
                .map_err(|()| {
                    ConfigError::new("FIXLOOP_REMEDIATION_CHOOSER", "expected rules or model")
                })?,
        };
        if tuning.trigger_error_rate == Some(0.0) {
            return Err(ConfigError::new(
                "FIXLOOP_TRIGGER_ERROR_RATE",
                "must be above 0",
            ));
        }
        let trigger = tuning
            .trigger_error_rate
            .unwrap_or(DEFAULT_TRIGGER_ERROR_RATE);
        let recovery = tuning
            .recovery_error_rate
            .unwrap_or(DEFAULT_RECOVERY_ERROR_RATE);
        if recovery >= trigger {
            let variable = if tuning.recovery_error_rate.is_some() {
                "FIXLOOP_RECOVERY_ERROR_RATE"
            } else {
                "FIXLOOP_TRIGGER_ERROR_RATE"
            };
            return Err(ConfigError::new(
                variable,
                format!(
                    "the recovery error rate ({recovery}) must be below the trigger error rate ({trigger})"
                ),
            ));
        }
        let webhook_secret = reader.secret("FIXLOOP_WEBHOOK_SECRET");
        if let Some(secret) = &webhook_secret
            && secret.expose().len() < MIN_WEBHOOK_SECRET_LEN
        {
            return Err(ConfigError::new(
                "FIXLOOP_WEBHOOK_SECRET",
                format!("must be at least {MIN_WEBHOOK_SECRET_LEN} bytes long"),
            ));
        }
        let ci_token = reader.secret("FIXLOOP_CI_TOKEN");
        if ci_token
            .as_ref()
            .is_some_and(|token| token.expose().len() < MIN_WEBHOOK_SECRET_LEN)
        {
            return Err(ConfigError::new(
                "FIXLOOP_CI_TOKEN",
                format!("must be at least {MIN_WEBHOOK_SECRET_LEN} bytes long"),
            ));
        }
        let ci_forward_token = reader.secret("FIXLOOP_CI_FORWARD_TOKEN");
        let ci_forward = match reader.url("FIXLOOP_CI_FORWARD_URL")? {
            Some(url) => Some((url, ci_forward_token)),
            None if ci_forward_token.is_some() => {
                return Err(ConfigError::new(
                    "FIXLOOP_CI_FORWARD_TOKEN",
                    "is set without FIXLOOP_CI_FORWARD_URL".to_owned(),
                ));
            }
            None => None,
        };
        let store = match (
            reader.get("FIXLOOP_DATA_DIR"),
            reader.get("FIXLOOP_DATABASE_URL"),
        ) {
            (None, None) => None,
            (Some(dir), None) => Some(StoreLocation::Directory(dir.into())),
            (None, Some("memory:")) => Some(StoreLocation::Memory),
            (None, Some(url))
                if url.starts_with("postgres://") || url.starts_with("postgresql://") =>
            {
                Some(StoreLocation::Postgres(Secret::from(url)))
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "FIXLOOP_DATABASE_URL",
                    "must be memory: or a postgres:// URL (use FIXLOOP_DATA_DIR for an SQLite file)",
                ));
            }
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "FIXLOOP_DATABASE_URL",
                    "set either FIXLOOP_DATA_DIR or FIXLOOP_DATABASE_URL, not both",
                ));
            }
        };
        let replicas = replicas::parse(&reader)?;
        let api_tokens = match reader.get("FIXLOOP_API_TOKENS") {
            None => ApiTokens::default(),
            Some(text) => ApiTokens::parse(text)
                .map_err(|error| ConfigError::new("FIXLOOP_API_TOKENS", error.to_string()))?,
        };
        let defaults = RateLimit::default();
        let copilot_rate_limit = RateLimit {
            per_minute: reader
                .integer("FIXLOOP_COPILOT_RATE_PER_MINUTE", 1, 100_000)?
                .and_then(|value| u32::try_from(value).ok())
                .unwrap_or(defaults.per_minute),
            burst: reader
                .integer("FIXLOOP_COPILOT_BURST", 1, 10_000)?
                .and_then(|value| u32::try_from(value).ok())
                .unwrap_or(defaults.burst),
        };
        let operate_rate_limit = RateLimit {
            per_minute: reader
                .integer("FIXLOOP_OPERATE_RATE_PER_MINUTE", 1, 100_000)?
                .and_then(|value| u32::try_from(value).ok())
                .unwrap_or(RateLimit::OPERATE.per_minute),
            burst: reader
                .integer("FIXLOOP_OPERATE_BURST", 1, 10_000)?
                .and_then(|value| u32::try_from(value).ok())
                .unwrap_or(RateLimit::OPERATE.burst),
        };
        let kept = fixloop_adapters::Retention::default();
        let retention = fixloop_adapters::Retention {
            keep_entries: reader
                .integer("FIXLOOP_JOURNAL_KEEP_ENTRIES", 256, 100_000_000)?
                .map_or(kept.keep_entries, |value| value as u64),
            keep_incidents: reader
                .integer("FIXLOOP_JOURNAL_KEEP_INCIDENTS", 1, 1_000_000)?
                .map_or(kept.keep_incidents, |value| value as u64),
            keep_age: reader
                .integer("FIXLOOP_JOURNAL_KEEP_DAYS", 1, 3650)?
                .map_or(kept.keep_age, |days| {
                    Duration::from_secs(days as u64 * 86_400)
                }),
            max_bytes: reader
                .integer("FIXLOOP_STORE_MAX_KIB", 64, 1 << 30)?
                .map(|kib| kib as u64 * 1024),
        };
        Ok(Self {
            orch_port: reader.port("ORCH_PORT")?.unwrap_or(DEFAULT_ORCH_PORT),
            demo_port: reader.port("DEMO_PORT")?.unwrap_or(DEFAULT_DEMO_PORT),
            demo_app_url: reader
                .url("DEMO_APP_URL")?
                .map(|url| refuse_metadata_target("DEMO_APP_URL", url))
                .transpose()?
                .unwrap_or_else(|| DEFAULT_DEMO_APP_URL.to_owned()),
            orch_base_url: reader.url("ORCH_BASE_URL")?,
            profile: reader.get("FIXLOOP_PROFILE").map(std::path::PathBuf::from),
            minimax,
            datadog,
            service: reader
                .get("DD_SERVICE")
                .unwrap_or(DEFAULT_SERVICE)
                .to_owned(),
            env: reader.get("DD_ENV").map(str::to_owned),
            datadog_mcp: reader.mcp("DATADOG_MCP_URL", "DATADOG_MCP_AUTH")?,
            testsprite_mcp: reader.mcp("TESTSPRITE_MCP_URL", "TESTSPRITE_MCP_AUTH")?,
            testsprite_api,
            tuning,
            webhook_secret,
            cors_origins: reader.origins("FIXLOOP_CORS_ORIGINS")?,
            allowed_hosts: reader.hosts("FIXLOOP_ALLOWED_HOSTS")?,
            prometheus_url: reader.url("FIXLOOP_PROMETHEUS_URL")?,
            max_body_bytes: reader
                .integer("FIXLOOP_MAX_BODY_BYTES", 1024, 16 * 1024 * 1024)?
                .unwrap_or(DEFAULT_MAX_BODY_BYTES),
            store,
            retention,
            replicas,
            api_tokens,
            copilot_rate_limit,
            operate_rate_limit,
            max_connections: reader
                .integer("FIXLOOP_MAX_CONNECTIONS", 1, 1_000_000)?
                .unwrap_or(crate::http::listener::DEFAULT_MAX_CONNECTIONS),
            max_connections_per_address: reader
                .integer("FIXLOOP_MAX_CONNECTIONS_PER_ADDRESS", 1, 1_000_000)?
                .unwrap_or(crate::http::listener::DEFAULT_MAX_CONNECTIONS_PER_ADDRESS),
            // The WebSocket pings follow it (at most a third of it), so a live peer is never idle that long.
            idle_timeout: reader
                .seconds("FIXLOOP_IDLE_TIMEOUT_SECS", 0.5, 3600.0)?
                .unwrap_or(crate::http::listener::DEFAULT_IDLE_TIMEOUT),
            copilot_budget: reader.seconds("FIXLOOP_COPILOT_BUDGET_SECS", 0.1, 600.0)?,
            ci_token,
            ci_forward,
        })
    }
}

impl ConfigError {
    pub(crate) fn new(variable: &'static str, message: impl Into<String>) -> Self {
        Self {
            variable,
            message: message.into(),
        }
    }
}

/// Reads and checks single variables.
struct Reader<'a> {
    env: &'a HashMap<String, String>,
}

impl Reader<'_> {
    /// The trimmed value, `None` when unset or blank.
    fn get(&self, name: &str) -> Option<&str> {
        self.env
            .get(name)
            .map(|value| value.trim())
            .filter(|value| !value.is_empty())
    }

    fn secret(&self, name: &str) -> Option<Secret> {
        self.get(name).map(Secret::from)
    }

    fn port(&self, name: &'static str) -> Result<Option<u16>, ConfigError> {
        self.get(name)
            .map(|value| {
                value.parse::<u16>().map_err(|_| {
                    ConfigError::new(
                        name,
                        format!("expected a port number 0..=65535, got {value:?}"),
                    )
                })
            })
            .transpose()
    }

    fn integer(
        &self,
        name: &'static str,
        min: usize,
        max: usize,
    ) -> Result<Option<usize>, ConfigError> {
        self.get(name)
            .map(|value| {
                value
                    .parse::<usize>()
                    .ok()
                    .filter(|number| (min..=max).contains(number))
                    .ok_or_else(|| {
                        ConfigError::new(
                            name,
                            format!("expected an integer from {min} to {max}, got {value:?}"),
                        )
                    })
            })
            .transpose()
    }

    fn seconds(
        &self,
        name: &'static str,
        min: f64,
        max: f64,
    ) -> Result<Option<Duration>, ConfigError> {
        self.get(name)
            .map(|value| {
                value
                    .parse::<f64>()
                    .ok()
                    .filter(|seconds| seconds.is_finite() && (min..=max).contains(seconds))
                    .map(Duration::from_secs_f64)
                    .ok_or_else(|| {
                        ConfigError::new(
                            name,
                            format!(
                                "expected a number of seconds from {min} to {max}, got {value:?}"
                            ),
                        )
                    })
            })
            .transpose()
    }

    fn count(&self, name: &'static str, min: u32, max: u32) -> Result<Option<u32>, ConfigError> {
        self.get(name)
            .map(|value| {
                value
                    .parse::<u32>()
                    .ok()
                    .filter(|count| (min..=max).contains(count))
                    .ok_or_else(|| {
                        ConfigError::new(
                            name,
                            format!("expected a whole number from {min} to {max}, got {value:?}"),
                        )
                    })
            })
            .transpose()
    }

    fn ratio(&self, name: &'static str) -> Result<Option<f64>, ConfigError> {
        self.get(name)
            .map(|value| {
                value
                    .parse::<f64>()
                    .ok()
                    .filter(|ratio| ratio.is_finite() && (0.0..=1.0).contains(ratio))
                    .ok_or_else(|| {
                        ConfigError::new(
                            name,
                            format!("expected a ratio from 0 to 1 (0.05 is 5%), got {value:?}"),
                        )
                    })
            })
            .transpose()
    }

    fn url(&self, name: &'static str) -> Result<Option<String>, ConfigError> {
        self.get(name)
            .map(|value| check_url(value).map_err(|message| ConfigError::new(name, message)))
            .transpose()
    }

    fn mcp(
        &self,
        url: &'static str,
        auth: &'static str,
    ) -> Result<Option<McpSettings>, ConfigError> {
        let settings = self.url(url)?.map(|url| McpSettings {
            url,
            auth: self.secret(auth),
        });
        if settings.is_none() && self.get(auth).is_some() {
            return Err(ConfigError::new(
                url,
                format!("is required when {auth} is set"),
            ));
        }
        Ok(settings)
    }

    fn hosts(&self, name: &'static str) -> Result<Vec<String>, ConfigError> {
        let Some(value) = self.get(name) else {
            return Ok(Vec::new());
        };
        let mut hosts = Vec::new();
        for entry in value
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
        {
            let host = crate::http::guard::host_part(entry)
                .filter(|host| !host.contains('/'))
                .ok_or_else(|| {
                    ConfigError::new(
                        name,
                        format!(
                            "expected host names or addresses (a port is ignored), got {entry:?}"
                        ),
                    )
                })?;
            hosts.push(host.trim_end_matches('.').to_ascii_lowercase());
        }
        if hosts.is_empty() {
            return Err(ConfigError::new(name, "lists no host"));
        }
        Ok(hosts)
    }

    fn origins(&self, name: &'static str) -> Result<Vec<String>, ConfigError> {
        let Some(value) = self.get(name) else {
            return Ok(vec![DEFAULT_CORS_ORIGIN.to_owned()]);
        };
        let mut origins = Vec::new();
        for origin in value
            .split(',')
            .map(str::trim)
            .filter(|origin| !origin.is_empty())
        {
            if origin == "*" {
                origins.push(origin.to_owned());
                continue;
            }
            let url = check_url(origin).map_err(|message| ConfigError::new(name, message))?;
            let parsed = reqwest::Url::parse(&url)
                .map_err(|error| ConfigError::new(name, error.to_string()))?;
            if parsed.path() != "/" || parsed.query().is_some() {
                return Err(ConfigError::new(
                    name,
                    format!("an origin is scheme://host[:port] without a path, got {origin:?}"),
                ));
            }
            origins.push(origin.trim_end_matches('/').to_owned());
        }
        if origins.is_empty() {
            return Err(ConfigError::new(name, "lists no origin"));
        }
        Ok(origins)
    }
}

/// Refuses a watched URL at a link-local or cloud metadata address (only a profile can allow one, with
/// `allow_metadata_targets = true`).
fn refuse_metadata_target(variable: &'static str, url: String) -> Result<String, ConfigError> {
    let metadata =
        reqwest::Url::parse(&url).is_ok_and(|parsed| crate::profile::is_metadata_target(&parsed));
    if metadata {
        return Err(ConfigError::new(
            variable,
            format!(
                "{url:?} is a link-local or cloud metadata address; watch it from a profile with allow_metadata_targets = true"
            ),
        ));
    }
    Ok(url)
}

/// Checks that `value` is an absolute http(s) URL with a host; returns it without a trailing slash.
fn check_url(value: &str) -> Result<String, String> {
    let url =
        reqwest::Url::parse(value).map_err(|error| format!("{value:?} is not a URL: {error}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!(
            "expected an http:// or https:// URL with a host, got {value:?}"
        ));
    }
    Ok(value.trim_end_matches('/').to_owned())
}

impl fmt::Display for Config {
    /// A one-line summary for the start-up log (no secret values). The watched services are not part of it: they
    /// come from the profile (or the demo shop at `DEMO_APP_URL`), and the start-up line names them itself.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.datadog.is_some() {
            write!(f, "dd_service={} ", self.service)?;
        }
        write!(
            f,
            "minimax={} datadog={} prometheus={} webhooks={} ci_intake={} cors={:?} allowed_hosts={:?} max_body_bytes={} journal={} api_tokens={} copilot_limit={} operate_limit={}",
            self.minimax.is_some(),
            self.datadog.is_some(),
            self.prometheus_url.is_some(),
            if self.webhook_secret.is_some() {
                "enabled"
            } else {
                "disabled"
            },
            match (&self.ci_token, &self.ci_forward) {
                (None, _) => "disabled",
                (Some(_), None) => "enabled",
                (Some(_), Some(_)) => "enabled+forward",
            },
            self.cors_origins,
            self.allowed_hosts,
            self.max_body_bytes,
            self.store
                .as_ref()
                .map_or_else(|| "memory".to_owned(), ToString::to_string),
            self.api_tokens.len(),
            self.copilot_rate_limit,
            self.operate_rate_limit,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    fn error_of(pairs: &[(&str, &str)]) -> ConfigError {
        match Config::from_env_map(&env(pairs)) {
            Ok(config) => panic!("expected an error, got {config:?}"),
            Err(error) => error,
        }
    }

    #[test]
    fn the_remediation_mode_is_one_of_the_four_and_nothing_else() {
        use fixloop_core::remediation::RemediationMode;
        for mode in RemediationMode::ALL {
            let config =
                Config::from_env_map(&env(&[("FIXLOOP_REMEDIATION_MODE", mode.as_str())])).unwrap();
            assert_eq!(config.tuning.remediation_mode, Some(mode));
        }
        let error = error_of(&[("FIXLOOP_REMEDIATION_MODE", "yolo")]);
        assert_eq!(error.variable, "FIXLOOP_REMEDIATION_MODE");
        let chooser =
            Config::from_env_map(&env(&[("FIXLOOP_REMEDIATION_CHOOSER", "model")])).unwrap();
        assert_eq!(
            chooser.tuning.remediation_chooser,
            Some(fixloop_core::remediation::Chooser::Model)
        );
        assert!(error.message.contains("monitor-only"), "{error}");
        let error = error_of(&[("FIXLOOP_REMEDIATION_CHOOSER", "oracle")]);
        assert_eq!(error.variable, "FIXLOOP_REMEDIATION_CHOOSER");
        assert!(error.message.contains("rules or model"), "{error}");
        let unset = Config::from_env_map(&env(&[("FIXLOOP_REMEDIATION_MODE", "")])).unwrap();
        assert_eq!(unset.tuning.remediation_mode, None, "empty is unset");
    }

    #[test]
    fn empty_environment_gives_the_defaults() {
        let config = Config::from_env_map(&HashMap::new()).unwrap();
        assert_eq!(config.orch_port, 8000);
        assert_eq!(config.demo_port, 8001);
        assert_eq!(config.demo_app_url, "http://localhost:8001");
        assert_eq!(
            config.cors_origins,
            vec!["http://localhost:3000".to_owned()]
        );
        assert_eq!(config.max_body_bytes, 65536);
        assert_eq!(config.service, "demo-checkout");
        assert!(
            config.minimax.is_none() && config.datadog.is_none() && config.webhook_secret.is_none()
        );
        assert!(config.api_tokens.is_empty(), "no token: the API is open");
        assert_eq!(config.copilot_rate_limit, RateLimit::default());
        assert_eq!(config.operate_rate_limit, RateLimit::OPERATE);
        assert!(config.allowed_hosts.is_empty());
        assert_eq!(config.copilot_budget, None);
        assert_eq!(config.tuning, Tuning::default());
    }

    #[test]
    fn a_postgres_url_selects_postgres_and_its_password_never_shows() {
        let url =
            "postgres://fixloop:pg-secret@db.internal:5433/journal?options=-csearch_path%3Dteam";
        let config = Config::from_env_map(&env(&[("FIXLOOP_DATABASE_URL", url)])).unwrap();
        assert_eq!(
            config.store,
            Some(StoreLocation::Postgres(Secret::from(url)))
        );
        let shown = format!("{config} {config:?}");
        assert!(!shown.contains("pg-secret"), "{shown}");
        assert!(
            shown.contains("journal=postgres://fixloop@db.internal:5433/journal"),
            "{shown}"
        );
        let error =
            Config::from_env_map(&env(&[("FIXLOOP_DATABASE_URL", "mysql://x")])).unwrap_err();
        assert!(error.to_string().contains("postgres:// URL"), "{error}");
    }

    #[test]
    fn blank_values_count_as_unset() {
        let config =
            Config::from_env_map(&env(&[("DD_API_KEY", ""), ("ORCH_PORT", "  ")])).unwrap();
        assert!(config.datadog.is_none());
        assert_eq!(config.orch_port, 8000);
    }

    #[test]
    fn every_variable_is_read() {
        let config = Config::from_env_map(&env(&[
            ("ORCH_PORT", "9000"),
            ("DEMO_PORT", "9001"),
            ("DEMO_APP_URL", "http://shop.internal:8080/"),
            ("FIXLOOP_PROFILE", "/etc/fixloop/services.toml"),
            ("ORCH_BASE_URL", "https://fixloop.example.com"),
            ("MINIMAX_API_KEY", "mm-key"),
            ("MINIMAX_MODEL", "MiniMax-M2.5"),
            ("MINIMAX_BASE_URL", "https://api.minimaxi.com"),
            ("DD_API_KEY", "dd-key"),
            ("DD_APP_KEY", "dd-app"),
            ("DD_SITE", "datadoghq.eu"),
            ("DD_SERVICE", "shop"),
            ("DD_ENV", "prod"),
            ("DATADOG_MCP_URL", "http://127.0.0.1:9100/mcp"),
            ("DATADOG_MCP_AUTH", "token"),
            ("TESTSPRITE_MCP_URL", "http://127.0.0.1:9200/mcp"),
            ("TESTSPRITE_API_KEY", "ts-key"),
            ("TESTSPRITE_BASE_URL", "https://api.testsprite.com"),
            ("FIXLOOP_POLL_INTERVAL_SECS", "2"),
            ("FIXLOOP_TRIGGER_ERROR_RATE", "0.1"),
            ("FIXLOOP_RECOVERY_ERROR_RATE", "0.02"),
            ("FIXLOOP_DETECTION_WINDOW_SECS", "60"),
            ("FIXLOOP_RERUN_INTERVAL_SECS", "15"),
            ("FIXLOOP_RUN_DEADLINE_SECS", "1500"),
            ("FIXLOOP_PLAN_BUDGET_SECS", "12"),
            ("FIXLOOP_CONFIRM_DELAY_SECS", "0.5"),
            ("FIXLOOP_INCONCLUSIVE_LIMIT", "4"),
            ("FIXLOOP_WEBHOOK_SECRET", "0123456789abcdef"),
            (
                "FIXLOOP_CORS_ORIGINS",
                "http://localhost:3000, https://dash.example.com/",
            ),
            ("FIXLOOP_PROMETHEUS_URL", "http://127.0.0.1:9090"),
            ("FIXLOOP_MAX_BODY_BYTES", "131072"),
            (
                "FIXLOOP_API_TOKENS",
                "dash:read:0123456789abcdef,ci:operate:fedcba9876543210",
            ),
            ("FIXLOOP_COPILOT_RATE_PER_MINUTE", "30"),
            ("FIXLOOP_COPILOT_BURST", "3"),
            ("FIXLOOP_COPILOT_BUDGET_SECS", "2.5"),
            (
                "FIXLOOP_ALLOWED_HOSTS",
                "FixLoop.Example.com, 10.0.0.5:8000, [::2]",
            ),
            ("FIXLOOP_OPERATE_RATE_PER_MINUTE", "12"),
            ("FIXLOOP_OPERATE_BURST", "4"),
        ]))
        .unwrap();
        assert_eq!(config.orch_port, 9000);
        assert_eq!(config.demo_port, 9001);
        assert_eq!(config.demo_app_url, "http://shop.internal:8080");
        assert_eq!(
            config.profile.as_deref(),
            Some(std::path::Path::new("/etc/fixloop/services.toml"))
        );
        assert_eq!(
            config.orch_base_url.as_deref(),
            Some("https://fixloop.example.com")
        );
        let minimax = config.minimax.as_ref().unwrap();
        assert_eq!(minimax.api_key.expose(), "mm-key");
        assert_eq!(
            minimax.base_url.as_deref(),
            Some("https://api.minimaxi.com")
        );
        let datadog = config.datadog.as_ref().unwrap();
        assert_eq!(datadog.site, DatadogSite::Eu1);
        assert!(datadog.app_key.is_some());
        assert_eq!(config.service, "shop");
        assert_eq!(config.env.as_deref(), Some("prod"));
        assert!(config.datadog_mcp.as_ref().unwrap().auth.is_some());
        assert!(config.testsprite_mcp.as_ref().unwrap().auth.is_none());
        assert!(config.testsprite_api.is_some());
        assert_eq!(config.tuning.poll_interval, Some(Duration::from_secs(2)));
        assert_eq!(config.tuning.trigger_error_rate, Some(0.1));
        assert_eq!(config.tuning.recovery_error_rate, Some(0.02));
        assert_eq!(
            config.tuning.detection_window,
            Some(Duration::from_secs(60))
        );
        assert_eq!(config.tuning.rerun_interval, Some(Duration::from_secs(15)));
        assert_eq!(config.tuning.run_deadline, Some(Duration::from_secs(1500)));
        assert_eq!(config.tuning.plan_budget, Some(Duration::from_secs(12)));
        assert_eq!(
            config.tuning.confirm_delay,
            Some(Duration::from_millis(500))
        );
        assert_eq!(config.tuning.inconclusive_limit, Some(4));
        assert!(config.webhook_secret.is_some());
        assert_eq!(
            config.cors_origins,
            vec![
                "http://localhost:3000".to_owned(),
                "https://dash.example.com".to_owned()
            ]
        );
        assert_eq!(
            config.prometheus_url.as_deref(),
            Some("http://127.0.0.1:9090")
        );
        assert_eq!(config.max_body_bytes, 131_072);
        assert_eq!(config.api_tokens.len(), 2);
        assert_eq!(
            config.copilot_rate_limit,
            RateLimit {
                per_minute: 30,
                burst: 3
            }
        );
        assert_eq!(config.copilot_budget, Some(Duration::from_millis(2500)));
        assert_eq!(
            config.allowed_hosts,
            vec![
                "fixloop.example.com".to_owned(),
                "10.0.0.5".to_owned(),
                "::2".to_owned()
            ]
        );
        assert_eq!(
            config.operate_rate_limit,
            RateLimit {
                per_minute: 12,
                burst: 4
            }
        );
    }

    #[test]
    fn bad_values_name_the_variable() {
        let cases: [(&str, &str); 26] = [
            ("DEMO_APP_URL", "http://169.254.169.254"),
            ("DEMO_APP_URL", "http://metadata.google.internal/"),
            ("FIXLOOP_ALLOWED_HOSTS", "http://evil.example/"),
            ("FIXLOOP_OPERATE_RATE_PER_MINUTE", "0"),
            ("FIXLOOP_OPERATE_BURST", "-1"),
            ("ORCH_PORT", "80000"),
            ("DEMO_PORT", "http"),
            ("DEMO_APP_URL", "localhost:8001"),
            ("ORCH_BASE_URL", "ftp://example.com"),
            ("FIXLOOP_POLL_INTERVAL_SECS", "0"),
            ("FIXLOOP_POLL_INTERVAL_SECS", "NaN"),
            ("FIXLOOP_TRIGGER_ERROR_RATE", "5"),
            ("FIXLOOP_TRIGGER_ERROR_RATE", "0"),
            ("FIXLOOP_RECOVERY_ERROR_RATE", "-0.1"),
            ("FIXLOOP_DETECTION_WINDOW_SECS", "-3"),
            ("FIXLOOP_RERUN_INTERVAL_SECS", "soon"),
            ("FIXLOOP_CORS_ORIGINS", "http://localhost:3000/app"),
            ("FIXLOOP_PROMETHEUS_URL", "not a url"),
            ("FIXLOOP_MAX_BODY_BYTES", "12"),
            ("FIXLOOP_API_TOKENS", "dash:read:short"),
            ("FIXLOOP_API_TOKENS", "dash:admin:0123456789abcdef"),
            ("FIXLOOP_COPILOT_RATE_PER_MINUTE", "0"),
            ("FIXLOOP_COPILOT_BURST", "many"),
            ("FIXLOOP_COPILOT_BUDGET_SECS", "0"),
            ("FIXLOOP_CONFIRM_DELAY_SECS", "0"),
            ("FIXLOOP_INCONCLUSIVE_LIMIT", "0"),
        ];
        for (variable, value) in cases {
            let error = error_of(&[(variable, value)]);
            assert_eq!(error.variable, variable, "{variable}={value}: {error}");
            assert!(
                error
                    .to_string()
                    .starts_with(&format!("invalid {variable}: "))
            );
        }
    }

    #[test]
    fn inconsistent_combinations_are_rejected() {
        assert_eq!(error_of(&[("DD_APP_KEY", "x")]).variable, "DD_API_KEY");
        assert_eq!(
            error_of(&[("DD_API_KEY", "x"), ("DD_SITE", "datadoghq.moon")]).variable,
            "DD_SITE"
        );
        assert_eq!(
            error_of(&[
                ("FIXLOOP_TRIGGER_ERROR_RATE", "0.05"),
                ("FIXLOOP_RECOVERY_ERROR_RATE", "0.05")
            ])
            .variable,
            "FIXLOOP_RECOVERY_ERROR_RATE"
        );
        assert_eq!(
            error_of(&[("FIXLOOP_TRIGGER_ERROR_RATE", "0.005")]).variable,
            "FIXLOOP_TRIGGER_ERROR_RATE",
            "below the default recovery rate"
        );
        assert_eq!(
            error_of(&[("FIXLOOP_RECOVERY_ERROR_RATE", "0.2")]).variable,
            "FIXLOOP_RECOVERY_ERROR_RATE",
            "above the default trigger rate"
        );
        assert_eq!(
            error_of(&[("DATADOG_MCP_AUTH", "t")]).variable,
            "DATADOG_MCP_URL"
        );
        assert_eq!(
            error_of(&[("FIXLOOP_WEBHOOK_SECRET", "short")]).variable,
            "FIXLOOP_WEBHOOK_SECRET"
        );
    }

    #[test]
    fn ci_intake_settings_are_checked() {
        let error = Config::from_env_map(&env(&[("FIXLOOP_CI_TOKEN", "short")])).unwrap_err();
        assert!(error.to_string().contains("FIXLOOP_CI_TOKEN"), "{error}");
        let error = Config::from_env_map(&env(&[(
            "FIXLOOP_CI_FORWARD_TOKEN",
            "forward-secret-value",
        )]))
        .unwrap_err();
        assert!(
            error.to_string().contains("FIXLOOP_CI_FORWARD_URL"),
            "{error}"
        );
        let error =
            Config::from_env_map(&env(&[("FIXLOOP_CI_FORWARD_URL", "ftp://agent.example/x")]))
                .unwrap_err();
        assert!(
            error.to_string().contains("FIXLOOP_CI_FORWARD_URL"),
            "{error}"
        );
        let config = Config::from_env_map(&env(&[
            ("FIXLOOP_CI_TOKEN", "ci-token-0123456789"),
            (
                "FIXLOOP_CI_FORWARD_URL",
                "https://agent.example/process-logs",
            ),
            ("FIXLOOP_CI_FORWARD_TOKEN", "forward-secret-value"),
        ]))
        .unwrap();
        assert_eq!(config.ci_token, Some(Secret::from("ci-token-0123456789")));
        assert_eq!(
            config.ci_forward,
            Some((
                "https://agent.example/process-logs".to_owned(),
                Some(Secret::from("forward-secret-value"))
            ))
        );
        assert!(config.to_string().contains("ci_intake=enabled+forward"));
        let off = Config::from_env_map(&env(&[])).unwrap();
        assert_eq!((off.ci_token, off.ci_forward), (None, None));
    }

    #[test]
    fn secrets_never_show_in_debug_or_display() {
        let config = Config::from_env_map(&env(&[
            ("MINIMAX_API_KEY", "mm-secret-value"),
            ("DD_API_KEY", "dd-secret-value"),
            ("FIXLOOP_WEBHOOK_SECRET", "hook-secret-value-123"),
            ("DATADOG_MCP_URL", "http://127.0.0.1:1/mcp"),
            ("DATADOG_MCP_AUTH", "mcp-secret-value"),
            ("FIXLOOP_API_TOKENS", "ci:operate:api-secret-value-123"),
            ("FIXLOOP_CI_TOKEN", "ci-token-secret-value"),
            ("FIXLOOP_CI_FORWARD_URL", "http://127.0.0.1:9/agent"),
            ("FIXLOOP_CI_FORWARD_TOKEN", "forward-secret-value"),
        ]))
        .unwrap();
        let printed = format!("{config:?} {config}");
        assert!(!printed.contains("secret-value"), "{printed}");
    }
}
