//! `fixloop serve`: the orchestrator alone, watching the services of a profile (else the demo shop at
//! `DEMO_APP_URL`); SIGHUP reloads the profile.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context as _;
use fixloop_server::profile::{Profile, Secrets};
use fixloop_server::{Config, Mode, ServeOptions};

use fixloop_server::runtime::reload::ProfileSource;

use super::{AuthArgs, Hangups, Journal, Ports, shutdown_signal};

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
    // Listening for SIGHUP before anything starts: its default action would end the process.
    let hangups = Hangups::listen();
    let path = profile.or_else(|| config.profile.clone());
    let profile = path
        .as_ref()
        .map(|path| Profile::load(path, Secrets::From(env)))
        .transpose()?;
    // A reload reads the same file with the same environment (the process's environment cannot change).
    let profile_source = path.map(|path| {
        let env = env.clone();
        ProfileSource::new(move || Profile::load(&path, Secrets::From(&env)))
    });
    let server = fixloop_server::start_serve(ServeOptions {
        bind: ports.bind,
        port: ports.port.unwrap_or(config.orch_port),
        config,
        mode: Mode::Serve,
        ports: None,
        profile,
        profile_source,
        insecure_no_auth: auth.insecure_no_auth,
    })
    .await
    .context("starting the orchestrator")?;
    println!(
        "FixLoop orchestrator: {} (watching {})",
        server.orchestrator_url, server.watched_url
    );
    let reloads = tokio::spawn(hangups.reload_with(server.reloader.clone()));
    server.run_until(shutdown_signal()).await;
    reloads.abort();
    Ok(())
}
