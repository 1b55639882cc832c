//! The `fixloop` command line: one file per subcommand. Only this module (and `main`) reads the environment: it
//! reads it once, here, into a [`Config`], and passes values on; the library reads none.

mod demo;
mod demo_app;
mod plan;
mod profile;
mod replay;
mod serve;
mod verify;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use fixloop_server::Config;
use fixloop_server::config::{DEFAULT_DATA_DIR, StoreLocation};
use std::io::IsTerminal as _;

use clap::{Parser, Subcommand};

/// FixLoop: detect an incident, plan its validation, run it, and declare RECOVERED only with proof.
#[derive(Debug, Parser)]
#[command(name = "fixloop", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Demo service and orchestrator in one process, with the embedded defaults and a traffic generator; or, with
    /// --scenario, a scripted incident timeline played over fake ports.
    Demo(demo::DemoArgs),
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
    Profile(profile::ProfileCommand),
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
    Replay(replay::ReplayArgs),
    /// Post-deploy verification gate for CI: runs a profile's plan once against the deployed service, holds the
    /// signal gate, and exits 0 only when both gates hold.
    #[command(after_help = fixloop_server::verify::Outcome::help())]
    Verify(verify::VerifyArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct Ports {
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    pub(crate) bind: IpAddr,
    /// Orchestrator port (default ORCH_PORT, else 8000).
    #[arg(long)]
    pub(crate) port: Option<u16>,
    /// Demo service port (default DEMO_PORT, else 8001).
    #[arg(long)]
    pub(crate) demo_port: Option<u16>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct Journal {
    /// Keep the journal in memory only: nothing survives a restart (default: an SQLite file in FIXLOOP_DATA_DIR,
    /// else fixloop-data/).
    #[arg(long)]
    pub(crate) ephemeral: bool,
}

impl Journal {
    /// The flag wins over the environment; with neither, the binary keeps its journal in `fixloop-data/`.
    pub(crate) fn apply(&self, config: &mut Config) {
        config.store = Some(match (self.ephemeral, config.store.take()) {
            (true, _) => StoreLocation::Memory,
            (false, Some(location)) => location,
            (false, None) => StoreLocation::Directory(DEFAULT_DATA_DIR.into()),
        });
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct AuthArgs {
    /// Start without FIXLOOP_API_TOKENS on a non-loopback address: anyone who can reach the port can operate FixLoop.
    #[arg(long)]
    pub(crate) insecure_no_auth: bool,
}

/// Parses the command line and the environment, then runs the subcommand; returns the exit code (`verify` has
/// several, every other command succeeds or fails).
pub(crate) async fn run() -> anyhow::Result<ExitCode> {
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
    if let Command::Verify(args) = cli.command {
        // Every failure of `verify`, an invalid environment included, is one of its documented exit codes.
        let config = Config::from_env_map(&env).map_err(|error| error.to_string());
        return Ok(verify::run(args, config, &env).await);
    }
    let config = Config::from_env_map(&env).context("configuration")?;
    match cli.command {
        Command::Verify(_) => unreachable!("verify returned above"),
        Command::Profile(command) => profile::run(command, &config, &env).await,
        Command::Plan {
            profile,
            service,
            top_error,
        } => plan::run(&profile, service.as_deref(), top_error.as_deref()),
        Command::Replay(args) => replay::run(args, &config).await,
        Command::Demo(args) => demo::run(args, config).await,
        Command::Serve {
            ports,
            journal,
            profile,
            auth,
        } => {
            let args = serve::ServeArgs {
                ports,
                journal,
                profile,
                auth,
            };
            serve::run(args, config, &env).await
        }
        Command::DemoApp(ports) => demo_app::run(&ports, &config).await,
    }
    .map(|()| ExitCode::SUCCESS)
}

/// Resolves on Ctrl-C or SIGTERM.
/// SIGHUP, listened for from the start (its default action ends the process): each one asks for a profile reload,
/// whose outcome the runtime logs.
pub(crate) struct Hangups {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangups {
    /// Starts listening for SIGHUP.
    pub(crate) fn listen() -> Self {
        #[cfg(unix)]
        {
            let signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
                .map_err(|error| tracing::error!(%error, "cannot listen for SIGHUP: no reload on SIGHUP"))
                .ok();
            Self { signal }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// Reloads through `reloader` on every SIGHUP, until the task is aborted.
    pub(crate) async fn reload_with(self, reloader: fixloop_server::runtime::reload::Reloader) {
        #[cfg(unix)]
        if let Some(mut signal) = self.signal {
            while signal.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading the profile");
                // The outcome (reloaded, refused, nothing to reload) is logged by the runtime.
                let _ = reloader.reload().await;
            }
        }
        #[cfg(not(unix))]
        let _ = reloader;
    }
}

pub(crate) async fn shutdown_signal() {
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
