//! The `fixloop` binary: parses the command line and the environment, builds the adapters, and runs the library.
//!
//! `fixloop demo` (demo service + orchestrator + traffic, no keys needed), `fixloop serve` (orchestrator watching
//! `DEMO_APP_URL`) and `fixloop demo-app` (demo service alone). Stops gracefully on Ctrl-C and SIGTERM.

use std::collections::HashMap;
use std::net::IpAddr;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use fixloop_server::{Config, DemoOptions, Mode, ServeOptions};

/// FixLoop: detect an incident, plan its validation, run it, and declare RECOVERED only with proof.
#[derive(Debug, Parser)]
#[command(name = "fixloop", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Demo service and orchestrator in one process, with the embedded defaults and a traffic generator.
    Demo(Ports),
    /// The orchestrator alone, watching DEMO_APP_URL.
    Serve(Ports),
    /// The demo service alone.
    DemoApp(Ports),
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
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_http=warn,fixloop::demo_app=warn".into()),
        )
        .init();
    let cli = Cli::parse();
    let env: HashMap<String, String> = std::env::vars().collect();
    let config = Config::from_env_map(&env).context("configuration")?;
    match cli.command {
        Command::Demo(ports) => {
            let demo = fixloop_server::start_demo(DemoOptions {
                bind: ports.bind,
                port: ports.port.unwrap_or(config.orch_port),
                demo_port: ports.demo_port.unwrap_or(config.demo_port),
                config,
                traffic: true,
                ports: None,
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
        Command::Serve(ports) => {
            let server = fixloop_server::start_serve(ServeOptions {
                bind: ports.bind,
                port: ports.port.unwrap_or(config.orch_port),
                config,
                mode: Mode::Serve,
                ports: None,
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
