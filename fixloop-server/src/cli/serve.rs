//! `fixloop serve`: the orchestrator alone, watching the services of a profile (else the demo shop at
//! `DEMO_APP_URL`).

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context as _;
use fixloop_server::profile::{Profile, Secrets};
use fixloop_server::{Config, Mode, ServeOptions};

use super::{AuthArgs, Journal, Ports, shutdown_signal};

/// The options of `fixloop serve`.
#[derive(Debug)]
pub(crate) struct ServeArgs {
    pub(crate) ports: Ports,
    pub(crate) journal: Journal,
    pub(crate) profile: Option<PathBuf>,
    pub(crate) auth: AuthArgs,
}

/// Serves until Ctrl-C or SIGTERM; `env` resolves the profile's secrets.
pub(crate) async fn run(
    args: ServeArgs,
    config: Config,
    env: &HashMap<String, String>,
) -> anyhow::Result<()> {
    let ServeArgs {
        ports,
        journal,
        profile,
        auth,
    } = args;
    let mut config = config;
    journal.apply(&mut config);
    let profile = profile
        .or_else(|| config.profile.clone())
        .map(|path| Profile::load(&path, Secrets::From(env)))
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
    Ok(())
}
