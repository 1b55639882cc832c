//! Builds the ports from the configuration: a vendor adapter when its keys are set, else the embedded default.
//!
//! | port | vendor (when set) | embedded default |
//! | --- | --- | --- |
//! | signals | the profile's `[service.signals]`: scrape, Prometheus, Datadog or synthetic probes; for the built-in demo profile, `FIXLOOP_PROMETHEUS_URL` → Prometheus and `DD_API_KEY` + `DD_APP_KEY` → Datadog | scrape of the demo shop's `/metrics` |
//! | planner | `MINIMAX_API_KEY` → MiniMax (the rule planner stays the fallback) | rule planner |
//! | runner | `TESTSPRITE_MCP_URL` or `TESTSPRITE_API_KEY` → TestSprite MCP | built-in HTTP runner |
//! | copilot | `MINIMAX_API_KEY` → MiniMax | grounded copilot (answers from the state alone) |
//! | remediation chooser | `MINIMAX_API_KEY` and the service's `chooser = "model"` (or `FIXLOOP_REMEDIATION_CHOOSER=model`) → MiniMax picks among the ready steps, the engine checks its pick | the rules pick |
//! | context | `DATADOG_MCP_URL` → Datadog's MCP server (credential: `DATADOG_MCP_AUTH` as a Bearer token, else `DD_API_KEY` + `DD_APP_KEY` as its `DD_API_KEY`/`DD_APPLICATION_KEY` headers) | none |
//!
//! The TestSprite runner speaks Streamable HTTP to `TESTSPRITE_MCP_URL` when it is set (key: `TESTSPRITE_MCP_AUTH`,
//! else `TESTSPRITE_API_KEY`), else it spawns TestSprite's MCP server over stdio (`npx`, key `TESTSPRITE_API_KEY`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use fixloop_adapters::datadog::{
    DatadogConfig, DatadogMcpAuth, DatadogMcpConfig, DatadogMcpContext, DatadogQueries,
    DatadogSignalSource,
};
use fixloop_adapters::minimax::{
    DEFAULT_TOOL_STEPS, MiniMaxConfig, MiniMaxCopilot, MiniMaxPlanner, MiniMaxRemediationChooser,
};
use fixloop_adapters::prometheus::PromQlTemplates;
use fixloop_adapters::prometheus::{PrometheusConfig, PrometheusSignalSource};
use fixloop_adapters::testsprite::{TestSpriteConfig, TestSpriteRunner};
use fixloop_adapters::{
    ContextSource, GroundedCopilot, HttpTestRunner, HttpTestRunnerConfig, LabelMatch, RulePlanner,
    ScrapeConfig, ScrapeMetrics, ScrapeSignalSource, SignalSource, SyntheticConfig, SyntheticProbe,
    SyntheticSignalSource,
};
use fixloop_contract::{HttpMethod, Target};
use fixloop_core::Criteria;

use crate::config::Config;
use crate::profile::ServiceProfile;
use crate::profile::file::{PrometheusFile, ScrapeFile, SignalsFile};
use crate::runtime::driver::Ports;

/// Which implementation each port got, for the start-up log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortChoice {
    /// The signal source.
    pub signals: String,
    /// The planner.
    pub planner: String,
    /// The test runner.
    pub runner: String,
    /// The copilot.
    pub copilot: String,
    /// The context source beyond the signals.
    pub context: String,
    /// Settings that were given but do not select an adapter, explained.
    pub notes: Vec<String>,
}

impl fmt::Display for PortChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "signals: {}; planner: {}; runner: {}; copilot: {}; context: {}",
            self.signals, self.planner, self.runner, self.copilot, self.context
        )?;
        for note in &self.notes {
            write!(f, "; note: {note}")?;
        }
        Ok(())
    }
}

/// The Datadog adapter configuration of the settings, if an API key is set. The reader queries what the demo
/// service submits with the same configuration ([`DatadogQueries::demo_shop`]), so the demo detects incidents.
#[must_use]
pub fn datadog_config(config: &Config) -> Option<DatadogConfig> {
    let settings = config.datadog.as_ref()?;
    let mut datadog = DatadogConfig::new(
        settings.api_key.clone(),
        settings.app_key.clone().unwrap_or_default(),
        config.service.clone(),
    );
    datadog.site = settings.site;
    datadog.env.clone_from(&config.env);
    datadog.queries = DatadogQueries::demo_shop();
    Some(datadog)
}

/// The Datadog MCP context source's configuration, if `DATADOG_MCP_URL` is set: the credential is
/// `DATADOG_MCP_AUTH` as a Bearer token when set, else `DD_API_KEY` + `DD_APP_KEY` as the documented headers, else
/// none (a note says so). Returns the configuration and the credential's description.
#[must_use]
pub fn datadog_mcp_config(config: &Config) -> Option<(DatadogMcpConfig, &'static str)> {
    let mcp = config.datadog_mcp.as_ref()?;
    let keys = config.datadog.as_ref().and_then(|settings| {
        Some(DatadogMcpAuth::Keys {
            api_key: settings.api_key.clone(),
            application_key: settings.app_key.clone()?,
        })
    });
    let (auth, described) = match (&mcp.auth, keys) {
        (Some(token), _) => (
            DatadogMcpAuth::Bearer(token.clone()),
            "DATADOG_MCP_AUTH as Bearer",
        ),
        (None, Some(keys)) => (keys, "DD_API_KEY + DD_APP_KEY headers"),
        (None, None) => (DatadogMcpAuth::None, "no credential"),
    };
    let mut datadog = DatadogMcpConfig::new(mcp.url.clone(), auth);
    if let Some(settings) = &config.datadog {
        datadog.site = settings.site;
    }
    datadog.env.clone_from(&config.env);
    Some((datadog, described))
}

/// The remediation chooser of a service whose engine asks a model (`chooser` resolved to `model`, which
/// [`engine_config`](crate::runtime::tuning::engine_config) allows only with a MiniMax key): MiniMax, its call
/// bounded by the driver's choice timeout. `None` for the rules.
#[must_use]
pub fn build_chooser(
    config: &Config,
    engine: &fixloop_core::engine::Config,
    http: &reqwest::Client,
) -> Option<Arc<dyn fixloop_adapters::RemediationChooser>> {
    if engine.remediation.chooser != fixloop_core::remediation::Chooser::Model {
        return None;
    }
    let settings = config.minimax.as_ref()?;
    let mut minimax = MiniMaxConfig::new(settings.api_key.clone());
    if let Some(model) = &settings.model {
        minimax.model.clone_from(model);
    }
    if let Some(base_url) = &settings.base_url {
        minimax.base_url.clone_from(base_url);
    }
    minimax.timeout = engine.remediation.choice_deadline;
    Some(Arc::new(MiniMaxRemediationChooser::new(
        minimax,
        http.clone(),
    )))
}

/// Builds the ports for one watched service.
///
/// The signal source is the profile's (`[service.signals]`). The built-in demo profile (`builtin_demo`) keeps the
/// environment's switches: `FIXLOOP_PROMETHEUS_URL` reads the demo shop's metrics from Prometheus, `DD_API_KEY` +
/// `DD_APP_KEY` from Datadog. The test runner gets the service's secrets.
///
/// # Errors
///
/// A message when the profile asks for a source the configuration cannot provide (Datadog without keys,
/// Prometheus without a URL).
pub fn build_ports(
    config: &Config,
    service: &ServiceProfile,
    builtin_demo: bool,
    http: &reqwest::Client,
) -> Result<(Ports, PortChoice), String> {
    let (signals, signals_name) = signal_source(config, service, builtin_demo, http)?;
    let minimax = config.minimax.as_ref().map(|settings| {
        let mut minimax = MiniMaxConfig::new(settings.api_key.clone());
        if let Some(model) = &settings.model {
            minimax.model.clone_from(model);
        }
        if let Some(base_url) = &settings.base_url {
            minimax.base_url.clone_from(base_url);
        }
        minimax
    });
    let rule_planner: Arc<dyn fixloop_adapters::Planner> = Arc::new(RulePlanner);
    let (planner, planner_name, copilot, copilot_name): (
        Arc<dyn fixloop_adapters::Planner>,
        String,
        Arc<dyn fixloop_adapters::Copilot>,
        String,
    ) = match minimax {
        Some(minimax) => (
            Arc::new(MiniMaxPlanner::new(minimax.clone(), http.clone())),
            format!("MiniMax {} (rule planner as fallback)", minimax.model),
            // The tool loop reads live data (status, signals, runs, timeline, context) in at most
            // DEFAULT_TOOL_STEPS model calls; the API bounds the whole answer by the copilot budget.
            Arc::new(
                MiniMaxCopilot::new(minimax.clone(), http.clone())
                    .with_tool_steps(DEFAULT_TOOL_STEPS),
            ),
            format!(
                "MiniMax {} (tool loop, {DEFAULT_TOOL_STEPS} steps)",
                minimax.model
            ),
        ),
        None => (
            Arc::clone(&rule_planner),
            "rule planner (embedded default)".to_owned(),
            Arc::new(GroundedCopilot),
            "grounded copilot (embedded default)".to_owned(),
        ),
    };
    let project_path = std::env::current_dir()
        .map(|path| path.display().to_string())
        .unwrap_or_else(|_| ".".to_owned());
    let testsprite = match (&config.testsprite_mcp, &config.testsprite_api) {
        (Some(mcp), api) => {
            let key = mcp
                .auth
                .clone()
                .or_else(|| api.as_ref().map(|api| api.api_key.clone()))
                .unwrap_or_default();
            Some((
                TestSpriteConfig::http(key, mcp.url.clone(), project_path),
                format!("TestSprite MCP at {}", mcp.url),
            ))
        }
        (None, Some(api)) => Some((
            TestSpriteConfig::stdio(api.api_key.clone(), project_path),
            "TestSprite MCP over stdio (npx)".to_owned(),
        )),
        (None, None) => None,
    };
    let testsprite_runner = testsprite.is_some();
    let mut notes = Vec::new();
    let (context, context_name): (Option<Arc<dyn ContextSource>>, String) = match datadog_mcp_config(
        config,
    ) {
        Some((datadog, credential)) => {
            if matches!(datadog.auth, DatadogMcpAuth::None) {
                notes.push(format!(
                        "DATADOG_MCP_URL ({}) without DATADOG_MCP_AUTH or DD_API_KEY + DD_APP_KEY: the Datadog MCP server gets no credential",
                        datadog.url
                    ));
            }
            let name = format!("Datadog MCP at {} ({credential})", datadog.url);
            let source = DatadogMcpContext::new(datadog).map_err(|error| {
                format!(
                    "the Datadog MCP context source cannot start: {}",
                    error.detail()
                )
            })?;
            (Some(Arc::new(source)), name)
        }
        None => (None, "none".to_owned()),
    };
    let (runner, runner_name): (Arc<dyn fixloop_adapters::TestRunner>, String) = match testsprite {
        Some((testsprite, name)) => (
            Arc::new(TestSpriteRunner::new(testsprite).map_err(|error| {
                format!("the TestSprite runner cannot start: {}", error.detail())
            })?),
            name,
        ),
        None => {
            let runner = HttpTestRunnerConfig {
                secrets: service.secrets.clone(),
                ..HttpTestRunnerConfig::default()
            };
            (
                Arc::new(HttpTestRunner::new(runner, http.clone())),
                "built-in HTTP runner (embedded default)".to_owned(),
            )
        }
    };
    let probed = match &service.signals {
        SignalsFile::Synthetic(synthetic) => synthetic.journeys.clone(),
        _ => Vec::new(),
    };
    let mut prober = SyntheticConfig::new(synthetic_probes(service, &probed));
    prober.secrets = service.secrets.clone();
    let prober: Arc<dyn SignalSource> = Arc::new(SyntheticSignalSource::new(prober, http.clone()));
    let ports = Ports {
        signals,
        planner,
        rule_planner,
        runner,
        copilot,
        prober,
        context,
    };
    if config.datadog.is_some()
        && signals_name.starts_with("scrape")
        && config.prometheus_url.is_none()
    {
        notes.push(
            "DD_API_KEY without DD_APP_KEY: the demo service submits metrics to Datadog, signals come from the scrape"
                .to_owned(),
        );
    }
    if testsprite_runner && !service.secrets.is_empty() {
        notes.push(format!(
            "service {} references secrets, which the TestSprite runner does not substitute: its tests send the ${{env:NAME}} placeholders",
            service.spec.name
        ));
    }
    let choice = PortChoice {
        signals: signals_name,
        planner: planner_name,
        runner: runner_name,
        copilot: copilot_name,
        context: context_name,
        notes,
    };
    Ok((ports, choice))
}

/// The signal source of `service`, and its name for the start-up log and `/api/services`.
fn signal_source(
    config: &Config,
    service: &ServiceProfile,
    builtin_demo: bool,
    http: &reqwest::Client,
) -> Result<(Arc<dyn SignalSource>, String), String> {
    let name = &service.spec.name;
    if builtin_demo {
        if let Some(url) = &config.prometheus_url {
            return Ok((
                Arc::new(PrometheusSignalSource::new(
                    PrometheusConfig::new(url.clone()),
                    http.clone(),
                )),
                format!("Prometheus at {url}"),
            ));
        }
        if let Some(datadog) = datadog_reader(config) {
            let label = format!("Datadog ({}, service {})", datadog.site, datadog.service);
            return Ok((
                Arc::new(DatadogSignalSource::new(datadog, http.clone())),
                label,
            ));
        }
    }
    let source = SourceContext {
        config,
        service,
        http,
    };
    let kind = signal_kind(&service.signals);
    let Some((_, build)) = SIGNAL_SOURCES.iter().find(|(entry, _)| *entry == kind) else {
        return Err(format!(
            "service {name}: no signal source of kind {kind:?} is registered"
        ));
    };
    build(&source)
}

/// The kind of signal source a profile names (`[service.signals] kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalKind {
    /// The service's own Prometheus text exposition.
    Scrape,
    /// A Prometheus server, with PromQL.
    Prometheus,
    /// Datadog.
    Datadog,
    /// FixLoop's own probes of the service's journeys.
    Synthetic,
}

/// The kind of `signals`.
#[must_use]
pub fn signal_kind(signals: &SignalsFile) -> SignalKind {
    match signals {
        SignalsFile::Scrape(_) => SignalKind::Scrape,
        SignalsFile::Prometheus(_) => SignalKind::Prometheus,
        SignalsFile::Datadog(_) => SignalKind::Datadog,
        SignalsFile::Synthetic(_) => SignalKind::Synthetic,
    }
}

/// What a signal source is built from.
struct SourceContext<'a> {
    config: &'a Config,
    service: &'a ServiceProfile,
    http: &'a reqwest::Client,
}

/// A signal source and its name for the start-up log and `/api/services`, or why it cannot be built.
type BuiltSource = Result<(Arc<dyn SignalSource>, String), String>;

/// Builds a signal source of one kind.
type BuildSource = fn(&SourceContext<'_>) -> BuiltSource;

/// The registry of signal sources, keyed by kind: a new source is one entry (and its builder); every kind has
/// one (`every_signal_kind_has_a_source`).
const SIGNAL_SOURCES: [(SignalKind, BuildSource); 4] = [
    (SignalKind::Scrape, scrape_source),
    (SignalKind::Prometheus, prometheus_source),
    (SignalKind::Datadog, datadog_source),
    (SignalKind::Synthetic, synthetic_source),
];

fn scrape_source(source: &SourceContext<'_>) -> BuiltSource {
    let SignalsFile::Scrape(scrape) = &source.service.signals else {
        return Err(wrong_kind(source, SignalKind::Scrape));
    };
    let scrape_config = scrape_config(source.service.spec.base_url.as_str(), scrape);
    let label = format!("scrape of {}", scrape_config.metrics_url());
    Ok((
        Arc::new(ScrapeSignalSource::new(scrape_config, source.http.clone())),
        label,
    ))
}

fn prometheus_source(source: &SourceContext<'_>) -> BuiltSource {
    let SignalsFile::Prometheus(prometheus) = &source.service.signals else {
        return Err(wrong_kind(source, SignalKind::Prometheus));
    };
    let prometheus_config =
        prometheus_config(source.config, &source.service.spec.name, prometheus)?;
    let label = format!("Prometheus at {}", prometheus_config.base_url);
    Ok((
        Arc::new(PrometheusSignalSource::new(
            prometheus_config,
            source.http.clone(),
        )),
        label,
    ))
}

fn datadog_source(source: &SourceContext<'_>) -> BuiltSource {
    let SignalsFile::Datadog(datadog) = &source.service.signals else {
        return Err(wrong_kind(source, SignalKind::Datadog));
    };
    let name = &source.service.spec.name;
    let mut reader = datadog_reader(source.config)
        .ok_or_else(|| format!("service {name} reads Datadog: set DD_API_KEY and DD_APP_KEY"))?;
    reader.service.clone_from(name);
    reader.queries = DatadogQueries {
        requests: datadog.requests_query.clone(),
        errors: datadog.errors_query.clone(),
        p95: datadog.p95_query.clone(),
        p95_to_ms: datadog.p95_to_ms,
        // The documented default: the service's error logs (`{scope}` is `service:<name>`).
        logs: Some(
            datadog
                .logs_query
                .clone()
                .unwrap_or_else(|| "{scope} status:error".to_owned()),
        ),
        apm_service_link: false,
    };
    let label = format!("Datadog ({}, service {name})", reader.site);
    Ok((
        Arc::new(DatadogSignalSource::new(reader, source.http.clone())),
        label,
    ))
}

fn synthetic_source(source: &SourceContext<'_>) -> BuiltSource {
    let SignalsFile::Synthetic(synthetic) = &source.service.signals else {
        return Err(wrong_kind(source, SignalKind::Synthetic));
    };
    let service = source.service;
    let probes = synthetic_probes(service, &synthetic.journeys);
    let count = probes.len();
    let mut synthetic_config = SyntheticConfig::new(probes);
    synthetic_config.secrets = service.secrets.clone();
    Ok((
        Arc::new(SyntheticSignalSource::new(
            synthetic_config,
            source.http.clone(),
        )),
        format!(
            "synthetic probes of {} ({count} journeys)",
            service.spec.base_url
        ),
    ))
}

/// A registry entry was handed a service of another kind (a mistake in [`SIGNAL_SOURCES`]).
fn wrong_kind(source: &SourceContext<'_>, expected: SignalKind) -> String {
    format!(
        "service {}: its signals are not of kind {expected:?}",
        source.service.spec.name
    )
}

/// The Datadog reader of the configuration, when both keys are set.
fn datadog_reader(config: &Config) -> Option<DatadogConfig> {
    datadog_config(config).filter(|_| {
        config
            .datadog
            .as_ref()
            .is_some_and(|settings| settings.app_key.is_some())
    })
}

/// The Prometheus source's settings for service `name` from its profile's `[service.signals]`: the profile's URL,
/// else `FIXLOOP_PROMETHEUS_URL`.
///
/// # Errors
///
/// A message when neither says where Prometheus is.
pub fn prometheus_config(
    config: &Config,
    name: &str,
    prometheus: &PrometheusFile,
) -> Result<PrometheusConfig, String> {
    let url = prometheus
        .url
        .clone()
        .or_else(|| config.prometheus_url.clone())
        .ok_or_else(|| {
            format!(
                "service {name} reads Prometheus, but neither its profile (signals.url) nor FIXLOOP_PROMETHEUS_URL says where"
            )
        })?;
    let mut prometheus_config = PrometheusConfig::new(url);
    prometheus_config.templates = PromQlTemplates {
        error_ratio: prometheus.error_ratio_query.clone(),
        p95_ms: prometheus.p95_ms_query.clone(),
        requests: prometheus.requests_query.clone(),
        // Without a top-error query, a constant zero vector: it names no error.
        top_error: prometheus
            .top_error_query
            .clone()
            .unwrap_or_else(|| "vector(0)".to_owned()),
    };
    if let Some(seconds) = prometheus.min_range_secs {
        prometheus_config.min_range = Duration::from_secs(seconds);
    }
    Ok(prometheus_config)
}

/// The scrape source's settings for a service at `base` from its profile's `[service.signals]`.
#[must_use]
pub fn scrape_config(base: &str, scrape: &ScrapeFile) -> ScrapeConfig {
    let metrics = ScrapeMetrics {
        requests: scrape.requests_metric.clone(),
        latency_buckets: format!("{}_bucket", scrape.duration_metric),
        errors: scrape.errors_metric.clone(),
        status_label: scrape.status_label.clone(),
        route_label: scrape.route_label.clone(),
        method_label: scrape.method_label.clone(),
        error_label: scrape.error_label.clone(),
        exclude: scrape
            .exclude
            .iter()
            .next()
            .map(|(name, value)| LabelMatch {
                name: name.clone(),
                value: value.clone(),
            }),
    };
    let mut config = ScrapeConfig::with_metrics(base, metrics);
    config.metrics_path.clone_from(&scrape.metrics_path);
    config
}

/// The probes of the synthetic source: the journeys named in `ids`, else every `GET` journey.
#[must_use]
pub fn synthetic_probes(service: &ServiceProfile, ids: &[String]) -> Vec<SyntheticProbe> {
    let base = service.spec.base_url.trim_end_matches('/');
    service
        .spec
        .journeys
        .iter()
        .filter(|journey| {
            if ids.is_empty() {
                journey.method == HttpMethod::Get
            } else {
                ids.contains(&journey.id)
            }
        })
        .filter_map(|journey| {
            // Profiles are checked at load: every journey's criteria parse.
            let criteria = Criteria::parse(&journey.pass_criteria).ok()?;
            Some(SyntheticProbe {
                name: journey.id.clone(),
                target: Target {
                    method: journey.method,
                    url: format!("{base}{}", journey.path),
                    headers: journey.headers.clone(),
                    body_json: journey.body.clone(),
                },
                criteria,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn demo() -> ServiceProfile {
        crate::profile::demo_profile("http://127.0.0.1:8001")
    }

    fn config(pairs: &[(&str, &str)]) -> Config {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        Config::from_env_map(&env).unwrap()
    }

    #[test]
    fn no_keys_select_the_embedded_defaults() {
        let (_, choice) = build_ports(
            &config(&[]),
            &demo(),
            true,
            &fixloop_adapters::default_client(),
        )
        .unwrap();
        assert!(
            choice
                .signals
                .starts_with("scrape of http://127.0.0.1:8001/metrics")
        );
        assert!(choice.planner.starts_with("rule planner"));
        assert!(choice.runner.starts_with("built-in HTTP runner"));
        assert!(choice.copilot.starts_with("grounded copilot"));
        assert_eq!(choice.context, "none");
        assert!(choice.notes.is_empty());
    }

    #[test]
    fn vendor_keys_select_the_vendor_adapters_and_never_print_a_key() {
        let config = config(&[
            ("MINIMAX_API_KEY", "mm-secret-key"),
            ("DD_API_KEY", "dd-secret-key"),
            ("DD_APP_KEY", "dd-secret-app"),
            ("TESTSPRITE_MCP_URL", "http://127.0.0.1:9200/mcp"),
            ("TESTSPRITE_MCP_AUTH", "ts-secret-auth"),
            ("DATADOG_MCP_URL", "http://127.0.0.1:9100/mcp"),
        ]);
        let (ports, choice) =
            build_ports(&config, &demo(), true, &fixloop_adapters::default_client()).unwrap();
        assert!(choice.signals.starts_with("Datadog"), "{choice}");
        assert!(choice.planner.starts_with("MiniMax"), "{choice}");
        assert!(choice.copilot.starts_with("MiniMax"), "{choice}");
        assert!(choice.runner.starts_with("TestSprite"), "{choice}");
        assert!(choice.context.starts_with("Datadog MCP"), "{choice}");
        assert!(choice.notes.is_empty(), "{choice}");
        let printed = format!("{choice} {ports:?}");
        for value in [
            "mm-secret-key",
            "dd-secret-key",
            "dd-secret-app",
            "ts-secret-auth",
        ] {
            assert!(!printed.contains(value), "{value} leaked: {printed}");
        }
    }

    #[test]
    fn mcp_urls_switch_on_the_testsprite_http_runner_and_the_datadog_context_source() {
        let settings = config(&[
            ("TESTSPRITE_MCP_URL", "http://127.0.0.1:9200/mcp"),
            ("TESTSPRITE_MCP_AUTH", "ts-secret-auth"),
            ("DATADOG_MCP_URL", "http://127.0.0.1:9100/mcp"),
            ("DATADOG_MCP_AUTH", "dd-mcp-secret"),
            ("DD_ENV", "prod"),
        ]);
        let (ports, choice) = build_ports(
            &settings,
            &demo(),
            true,
            &fixloop_adapters::default_client(),
        )
        .unwrap();
        assert_eq!(choice.runner, "TestSprite MCP at http://127.0.0.1:9200/mcp");
        assert_eq!(
            choice.context,
            "Datadog MCP at http://127.0.0.1:9100/mcp (DATADOG_MCP_AUTH as Bearer)"
        );
        assert!(ports.context.is_some());
        let printed = format!("{choice} {ports:?}");
        assert!(printed.contains("context: Datadog MCP"), "{printed}");
        for value in ["ts-secret-auth", "dd-mcp-secret"] {
            assert!(!printed.contains(value), "{value} leaked: {printed}");
        }
        let (datadog, _) = datadog_mcp_config(&settings).unwrap();
        assert_eq!(
            datadog.auth,
            DatadogMcpAuth::Bearer(fixloop_adapters::Secret::new("dd-mcp-secret"))
        );
        assert_eq!(datadog.env.as_deref(), Some("prod"));

        // Without DATADOG_MCP_AUTH, the REST keys go as the documented headers; without any, a note says so.
        let keys = config(&[
            ("DATADOG_MCP_URL", "http://127.0.0.1:9100/mcp"),
            ("DD_API_KEY", "k"),
            ("DD_APP_KEY", "a"),
        ]);
        let (datadog, credential) = datadog_mcp_config(&keys).unwrap();
        assert!(matches!(datadog.auth, DatadogMcpAuth::Keys { .. }));
        assert_eq!(credential, "DD_API_KEY + DD_APP_KEY headers");
        let bare = config(&[("DATADOG_MCP_URL", "http://127.0.0.1:9100/mcp")]);
        let (ports, choice) =
            build_ports(&bare, &demo(), true, &fixloop_adapters::default_client()).unwrap();
        assert!(ports.context.is_some());
        assert_eq!(choice.notes.len(), 1, "{choice}");
        assert!(choice.notes[0].contains("no credential"), "{choice}");

        // No DATADOG_MCP_URL: no context source.
        let (ports, _) = build_ports(
            &config(&[]),
            &demo(),
            true,
            &fixloop_adapters::default_client(),
        )
        .unwrap();
        assert!(ports.context.is_none());
    }

    #[test]
    fn datadog_reader_queries_what_the_demo_service_submits() {
        let config = config(&[("DD_API_KEY", "k"), ("DD_APP_KEY", "a")]);
        let datadog = datadog_config(&config).expect("a datadog config");
        assert_eq!(datadog.queries, DatadogQueries::demo_shop());
    }

    #[test]
    fn prometheus_url_wins_for_signals() {
        let config = config(&[
            ("FIXLOOP_PROMETHEUS_URL", "http://127.0.0.1:9090"),
            ("DD_API_KEY", "k"),
            ("DD_APP_KEY", "a"),
        ]);
        let (_, choice) =
            build_ports(&config, &demo(), true, &fixloop_adapters::default_client()).unwrap();
        assert!(choice.signals.starts_with("Prometheus"), "{choice}");
    }

    #[test]
    fn every_signal_kind_has_a_source() {
        for kind in [
            SignalKind::Scrape,
            SignalKind::Prometheus,
            SignalKind::Datadog,
            SignalKind::Synthetic,
        ] {
            assert_eq!(
                SIGNAL_SOURCES
                    .iter()
                    .filter(|(entry, _)| *entry == kind)
                    .count(),
                1,
                "{kind:?}"
            );
        }
    }
}
