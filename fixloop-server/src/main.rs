//! The `fixloop` binary: parses the command line and the environment, builds the adapters, and runs the library.
//!
//! `fixloop demo` (demo service + orchestrator + traffic, no keys needed), `fixloop serve` (orchestrator watching
//! the services of `--profile`, else the demo shop at `DEMO_APP_URL`), `fixloop demo-app` (demo service alone),
//! `fixloop profile check|init`, `fixloop plan` and `fixloop replay` (a journal fed through the engine offline, every
//! decision printed with its reason); `fixloop demo --scenario NAME|FILE [--speed X]` plays a scripted
//! incident over fake ports. Servers stop gracefully on Ctrl-C and SIGTERM.

use std::collections::HashMap;
use std::io::IsTerminal as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use fixloop_server::config::{DEFAULT_DATA_DIR, StoreLocation};
use fixloop_server::profile::{Profile, Secrets};
use fixloop_server::{Config, DemoOptions, Mode, Scenario, ScenarioOptions, ServeOptions, Speed};

/// FixLoop: detect an incident, plan its validation, run it, and declare RECOVERED only with proof.
#[derive(Debug, Parser)]
#[command(name = "fixloop", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Demo service and orchestrator in one process, with the embedded defaults and a traffic generator; or, with
    /// --scenario, a scripted incident timeline played over fake ports.
    Demo(DemoArgs),
    /// The orchestrator alone, watching the services of a profile (else the demo shop at DEMO_APP_URL).
    Serve {
        /// Addresses.
        #[command(flatten)]
        ports: Ports,
        /// Where the journal lives.
        #[command(flatten)]
        journal: Journal,
        /// The service profile (TOML) listing the services to watch (default FIXLOOP_PROFILE).
        #[arg(long)]
        profile: Option<PathBuf>,
        /// Authentication.
        #[command(flatten)]
        auth: AuthArgs,
    },
    /// The demo service alone.
    DemoApp(Ports),
    /// Service profiles: check one, or write a starter one.
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Prints the rule plan of a profile's service as JSON (deterministic, for golden snapshots in CI).
    Plan {
        /// The service profile.
        #[arg(long)]
        profile: PathBuf,
        /// The service to plan for (required when the profile has several).
        #[arg(long)]
        service: Option<String>,
        /// The incident's top error, for example "POST /orders -> 500" (its route's journeys come first).
        #[arg(long)]
        top_error: Option<String>,
    },
    /// Feeds a journal through the engine offline and prints every decision with its reason (stop the server first).
    Replay(ReplayArgs),
}

#[derive(Debug, clap::Args)]
struct ReplayArgs {
    /// The data directory the server journaled into.
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// The service profile the server ran with (default FIXLOOP_PROFILE; without one, the built-in demo shop).
    #[arg(long)]
    profile: Option<PathBuf>,
    /// The service to replay (required when the profile has several).
    #[arg(long)]
    service: Option<String>,
    /// Print only the span of this incident, from its opening to its close (everything before is still replayed).
    #[arg(long)]
    incident: Option<String>,
    /// One JSON object per line, for tools.
    #[arg(long)]
    json: bool,
    /// The engine's timings the server ran with: `fixloop demo`'s or `fixloop serve`'s (default: serve with a
    /// profile, demo without).
    #[arg(long, value_enum)]
    mode: Option<ReplayMode>,
    /// The demo shop's URL the server watched, without a profile (default: http://127.0.0.1:DEMO_PORT in demo
    /// mode, DEMO_APP_URL in serve mode).
    #[arg(long)]
    demo_url: Option<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ReplayMode {
    /// `fixloop demo`.
    Demo,
    /// `fixloop serve`.
    Serve,
}

#[derive(Debug, Subcommand)]
enum ProfileCommand {
    /// Checks a profile as `serve` would at start-up (secrets included): exit 0, or every problem with its path.
    Check {
        /// The service profile.
        file: PathBuf,
        /// Also connect to each service's signal source and report, per signal, whether it returns series and
        /// whether each configured label exists; exit 1 when a signal would be blind.
        #[arg(long)]
        live: bool,
    },
    /// Writes a starter profile from a service's OpenAPI 3.x or Swagger 2.0 document (JSON or YAML, a file or an
    /// http(s) URL) and what the running service shows: the metrics it exposes and how its read journeys answer.
    Init {
        /// The API description: a path, or an http(s) URL.
        #[arg(long = "from-openapi", value_name = "FILE_OR_URL")]
        from_openapi: String,
        /// The service's base URL (default: the document's first server).
        #[arg(long)]
        base_url: Option<String>,
        /// Where to write the profile (default: standard output); an existing file needs --force.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
        /// Overwrite the --output file if it exists.
        #[arg(long)]
        force: bool,
        /// Read nothing from the service: no metrics discovery (signals are synthetic), no trial calls.
        #[arg(long)]
        offline: bool,
        /// The metrics endpoint's path, tried before the documented ones, /metrics, /actuator/prometheus and
        /// /prometheus.
        #[arg(long, value_name = "PATH")]
        metrics_path: Option<String>,
    },
}

#[derive(Debug, clap::Args)]
struct DemoArgs {
    /// Addresses.
    #[command(flatten)]
    ports: Ports,
    /// Play a scripted incident instead of watching the shop: a built-in name (outage-recovery, flapping, relapse,
    /// plan-rejected-twice, run-timeout, signals-degraded) or the path of a scenario JSON file.
    #[arg(long, value_name = "NAME|FILE")]
    scenario: Option<String>,
    /// How much faster than written the scenario plays (from 0.01 to 100; default 1).
    #[arg(
        long,
        value_name = "X",
        requires = "scenario",
        allow_negative_numbers = true
    )]
    speed: Option<Speed>,
    /// Where the journal lives (a scenario always keeps it in memory).
    #[command(flatten)]
    journal: Journal,
    /// Authentication.
    #[command(flatten)]
    auth: AuthArgs,
}

#[derive(Debug, clap::Args)]
struct Ports {
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Orchestrator port (default ORCH_PORT, else 8000).
    #[arg(long)]
    port: Option<u16>,
    /// Demo service port (default DEMO_PORT, else 8001).
    #[arg(long)]
    demo_port: Option<u16>,
}

#[derive(Debug, clap::Args)]
struct Journal {
    /// Keep the journal in memory only: nothing survives a restart (default: an SQLite file in FIXLOOP_DATA_DIR,
    /// else fixloop-data/).
    #[arg(long)]
    ephemeral: bool,
}

impl Journal {
    /// The flag wins over the environment; with neither, the binary keeps its journal in `fixloop-data/`.
    fn apply(&self, config: &mut Config) {
        config.store = Some(match (self.ephemeral, config.store.take()) {
            (true, _) => StoreLocation::Memory,
            (false, Some(location)) => location,
            (false, None) => StoreLocation::Directory(DEFAULT_DATA_DIR.into()),
        });
    }
}

#[derive(Debug, clap::Args)]
struct AuthArgs {
    /// Start without FIXLOOP_API_TOKENS on a non-loopback address: anyone who can reach the port can operate FixLoop.
    #[arg(long)]
    insecure_no_auth: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // `{:#}` prints the whole chain on one line, for example
            // "configuration: invalid ORCH_PORT: expected a port number 0..=65535, got \"abc\"".
            eprintln!("fixloop: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    // Logs go to standard error, so a command's own output on standard output (`replay --json`, `plan`, `profile
    // init`) is exactly that output; colour codes only when standard error is a terminal.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_http=warn,fixloop::demo_app=warn".into()),
        )
        .init();
    let cli = Cli::parse();
    let env: HashMap<String, String> = std::env::vars().collect();
    let config = Config::from_env_map(&env).context("configuration")?;
    match cli.command {
        Command::Profile(ProfileCommand::Check { file, live }) => {
            let profile = Profile::load(&file, Secrets::From(&env))?;
            let names: Vec<&str> = profile
                .services
                .iter()
                .map(|service| service.spec.name.as_str())
                .collect();
            println!(
                "{}: ok ({} service{}: {})",
                file.display(),
                names.len(),
                if names.len() == 1 { "" } else { "s" },
                names.join(", ")
            );
            if live {
                profile_check_live(&profile, &config).await?;
            }
        }
        Command::Profile(ProfileCommand::Init {
            from_openapi,
            base_url,
            output,
            force,
            offline,
            metrics_path,
        }) => {
            let args = InitArgs {
                base_url,
                output,
                force,
                offline,
                metrics_path,
            };
            profile_init(&from_openapi, args).await?;
        }
        Command::Plan {
            profile,
            service,
            top_error,
        } => {
            let loaded = Profile::load(&profile, Secrets::Unresolved)?;
            let chosen = match &service {
                Some(name) => loaded.service(name).with_context(|| {
                    format!("{}: no service is called {name:?}", profile.display())
                })?,
                None if loaded.services.len() == 1 => &loaded.services[0],
                None => anyhow::bail!(
                    "{} has {} services: choose one with --service",
                    profile.display(),
                    loaded.services.len()
                ),
            };
            let plan = chosen.rule_plan(top_error.as_deref());
            println!("{}", serde_json::to_string_pretty(&plan)?);
        }
        Command::Replay(args) => replay(args, &config).await?,
        Command::Demo(DemoArgs {
            ports,
            scenario: Some(scenario),
            speed,
            auth,
            ..
        }) => {
            // A scripted story is the same every time: it never restores a journal, nor leaves one.
            let mut config = config;
            config.store = Some(StoreLocation::Memory);
            demo_scenario(&ports, &scenario, speed.unwrap_or_default(), config, &auth).await?;
        }
        Command::Demo(DemoArgs {
            ports,
            journal,
            auth,
            ..
        }) => {
            let mut config = config;
            journal.apply(&mut config);
            let demo = fixloop_server::start_demo(DemoOptions {
                bind: ports.bind,
                port: ports.port.unwrap_or(config.orch_port),
                demo_port: ports.demo_port.unwrap_or(config.demo_port),
                config,
                traffic: true,
                ports: None,
                insecure_no_auth: auth.insecure_no_auth,
            })
            .await
            .context("starting the demo")?;
            println!("FixLoop demo is running.");
            println!(
                "  orchestrator: {}  (REST /api/*, WebSocket /ws)",
                demo.orchestrator_url
            );
            println!("  demo service: {}", demo.demo_url);
            println!(
                "  break it:     curl -X POST {}/api/demo/bug -H 'content-type: application/json' -d '{{\"enabled\":true}}'",
                demo.orchestrator_url
            );
            println!("Press Ctrl-C to stop.");
            demo.run_until(shutdown_signal()).await;
        }
        Command::Serve {
            ports,
            journal,
            profile,
            auth,
        } => {
            let mut config = config;
            journal.apply(&mut config);
            let profile = profile
                .or_else(|| config.profile.clone())
                .map(|path| Profile::load(&path, Secrets::From(&env)))
                .transpose()?;
            let server = fixloop_server::start_serve(ServeOptions {
                bind: ports.bind,
                port: ports.port.unwrap_or(config.orch_port),
                config,
                mode: Mode::Serve,
                ports: None,
                profile,
                insecure_no_auth: auth.insecure_no_auth,
            })
            .await
            .context("starting the orchestrator")?;
            println!(
                "FixLoop orchestrator: {} (watching {})",
                server.orchestrator_url, server.watched_url
            );
            server.run_until(shutdown_signal()).await;
        }
        Command::DemoApp(ports) => {
            let port = ports.demo_port.or(ports.port).unwrap_or(config.demo_port);
            let app = fixloop_server::start_demo_app(ports.bind, port, &config)
                .await
                .context("starting the demo service")?;
            println!("Demo service: {}", app.demo_url);
            app.run_until(shutdown_signal()).await;
        }
    }
    Ok(())
}

/// `fixloop replay`: the configuration the server ran with, the journal, the printout.
async fn replay(args: ReplayArgs, config: &Config) -> anyhow::Result<()> {
    use fixloop_adapters::Store as _;
    use fixloop_server::replay::{self, Replay};
    let profile_path = args.profile.or_else(|| config.profile.clone());
    let mode = match (args.mode, &profile_path) {
        (Some(ReplayMode::Demo), _) | (None, None) => Mode::Demo,
        (Some(ReplayMode::Serve), _) | (None, Some(_)) => Mode::Serve,
    };
    let services = match &profile_path {
        Some(path) => Profile::load(path, Secrets::Unresolved)?.services,
        None => {
            let url = args.demo_url.unwrap_or_else(|| match mode {
                Mode::Demo => format!("http://127.0.0.1:{}", config.demo_port),
                Mode::Serve => config.demo_app_url.clone(),
            });
            vec![fixloop_server::profile::demo_profile(&url)]
        }
    };
    let service = match &args.service {
        Some(name) => services
            .iter()
            .find(|service| service.spec.name == *name)
            .with_context(|| format!("the profile has no service called {name:?}"))?,
        None if services.len() == 1 => &services[0],
        None => anyhow::bail!(
            "the profile has {} services ({}): choose one with --service",
            services.len(),
            services
                .iter()
                .map(|service| service.spec.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut engine = fixloop_server::runtime::tuning::engine_config(mode, config, service);
    // The run deadline the server ran with followed its runner: build the same ports (nothing is called) to know it.
    match fixloop_server::runtime::ports::build_ports(
        config,
        service,
        profile_path.is_none(),
        &reqwest::Client::new(),
    ) {
        Ok((ports, _)) => fixloop_server::runtime::tuning::follow_runner(
            &mut engine,
            config.tuning.run_deadline.is_some(),
            fixloop_adapters::TestRunner::expectations(ports.runner.as_ref()),
        ),
        Err(why) => eprintln!(
            "fixloop replay: warning: the ports cannot be built here ({why}); the run deadline is the mode's"
        ),
    }
    let store = replay::open_store(&args.data)?;
    let result = replay::replay(&store, engine).await;
    store.close().await.context("closing the journal")?;
    let replayed = result?;
    let Some(steps) = replayed.shown(args.incident.as_deref()) else {
        anyhow::bail!(
            "no incident {:?} in the journal of {}",
            args.incident.unwrap_or_default(),
            replayed.service
        );
    };
    let out = if args.json {
        Replay::render_json(&steps)
    } else {
        Replay::render_text(&steps)
    };
    print!("{out}");
    for warning in &replayed.warnings {
        eprintln!("fixloop replay: warning: {warning}");
    }
    Ok(())
}

/// The options of `fixloop profile init` besides the document.
#[derive(Debug)]
struct InitArgs {
    base_url: Option<String>,
    output: Option<PathBuf>,
    force: bool,
    offline: bool,
    metrics_path: Option<String>,
}

/// `fixloop profile init`: fetch or read the document, read the live service (unless offline), write the profile.
async fn profile_init(source: &str, args: InitArgs) -> anyhow::Result<()> {
    use fixloop_server::profile::init::{
        Findings, InitError, InitOptions, draft, fetch_document, finish, read_live,
    };
    if let Some(path) = &args.output
        && !args.force
        && path.exists()
    {
        anyhow::bail!(
            "{} exists: pass --force to overwrite it, or choose another --output",
            path.display()
        );
    }
    let http = fixloop_adapters::http_client(std::time::Duration::from_secs(10))
        .context("building the http client")?;
    let text = if source.starts_with("http://") || source.starts_with("https://") {
        fetch_document(&http, source).await?
    } else {
        std::fs::read_to_string(source).with_context(|| format!("reading {source}"))?
    };
    let options = InitOptions {
        base_url: args.base_url,
        source_name: source.to_owned(),
        metrics_path: args.metrics_path,
    };
    let draft = draft(&text, &options)?;
    let findings = if args.offline {
        Findings::offline()
    } else {
        // The credentials the journeys name, when set here, let init try the secured journeys as serve will.
        let secrets = draft
            .secrets()
            .iter()
            .filter_map(|name| {
                let value = std::env::var(name).ok()?;
                (!value.trim().is_empty())
                    .then(|| (name.clone(), fixloop_adapters::Secret::new(value.trim())))
            })
            .collect();
        eprintln!(
            "reading {} (metrics and one call per read journey)",
            draft.base_url()
        );
        read_live(&http, &draft, &secrets).await
    };
    let generated = finish(draft, &findings).map_err(|error| {
        let hint = if args.offline || !matches!(error, InitError::TooFewJourneys { .. }) {
            ""
        } else {
            "\n(fix what the reasons say and run init again, or pass --offline to write the journeys without trying them)"
        };
        anyhow::anyhow!("{error}{hint}")
    })?;
    match &args.output {
        Some(path) => {
            let mut open = std::fs::OpenOptions::new();
            open.write(true);
            if args.force {
                open.create(true).truncate(true);
            } else {
                // Refuse a file that appeared since the check above, too.
                open.create_new(true);
            }
            let mut file = open
                .open(path)
                .with_context(|| format!("writing {}", path.display()))?;
            std::io::Write::write_all(&mut file, generated.toml.as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{}", generated.toml),
    }
    for note in &generated.notes {
        eprintln!("{note}");
    }
    if !generated.secrets.is_empty() {
        eprintln!(
            "set these environment variables before `fixloop serve` (their values never go in the profile): {}",
            generated.secrets.join(", ")
        );
    }
    for skipped in &generated.skipped {
        eprintln!("skipped {skipped}");
    }
    eprintln!("review the journeys and thresholds, then run `fixloop profile check` on the file");
    Ok(())
}

/// `fixloop profile check --live`: every service's signal source checked once, the report on stdout; an error
/// (exit 1) naming every blind signal.
async fn profile_check_live(profile: &Profile, config: &Config) -> anyhow::Result<()> {
    let http = fixloop_adapters::http_client(std::time::Duration::from_secs(10))
        .context("the HTTP client cannot start")?;
    let mut blind = Vec::new();
    for service in &profile.services {
        let report = fixloop_server::profile::live::check_service(config, service, &http).await;
        print!("{}", report.render());
        blind.extend(report.blind_signals());
    }
    if blind.is_empty() {
        println!("every signal reads series");
        return Ok(());
    }
    anyhow::bail!(
        "{} blind signal{}:\n  {}",
        blind.len(),
        if blind.len() == 1 { "" } else { "s" },
        blind.join("\n  ")
    )
}

/// `fixloop demo --scenario`: load and check the scenario (before anything starts), play it until Ctrl-C.
async fn demo_scenario(
    ports: &Ports,
    name_or_path: &str,
    speed: Speed,
    config: Config,
    auth: &AuthArgs,
) -> anyhow::Result<()> {
    let scenario = Scenario::load(name_or_path)?;
    let running = fixloop_server::start_scenario(
        &scenario,
        ScenarioOptions {
            bind: ports.bind,
            port: ports.port.unwrap_or(config.orch_port),
            demo_port: ports.demo_port.unwrap_or(config.demo_port),
            speed,
            config,
            insecure_no_auth: auth.insecure_no_auth,
        },
    )
    .await
    .context("starting the scenario")?;
    let factor = speed.factor();
    println!(
        "FixLoop scenario {} ({}) at {speed}: {}",
        scenario.file.name, scenario.origin, scenario.file.description
    );
    println!(
        "  orchestrator: {}  (REST /api/*, WebSocket /ws)",
        running.orchestrator_url
    );
    for step in &scenario.file.steps {
        if let Some(note) = &step.note {
            println!("  at {:>6.1} s: {note}", step.at_secs / factor);
        }
    }
    if let Some(end) = scenario.file.end_secs {
        println!(
            "  at {:>6.1} s: the story ends; the servers keep running",
            end / factor
        );
    }
    println!("Press Ctrl-C to stop.");
    running.run_until(shutdown_signal()).await;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
