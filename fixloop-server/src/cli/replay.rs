//! `fixloop replay`: feeds a journal through the engine offline and prints every decision with its reason.

use std::path::PathBuf;

use anyhow::Context as _;
use fixloop_server::profile::{Profile, Secrets};
use fixloop_server::{Config, Mode};

#[derive(Debug, clap::Args)]
pub(crate) struct ReplayArgs {
    /// The data directory the server journaled into.
    #[arg(long, value_name = "DIR")]
    pub(crate) data: PathBuf,
    /// The service profile the server ran with (default FIXLOOP_PROFILE; without one, the built-in demo shop).
    #[arg(long)]
    pub(crate) profile: Option<PathBuf>,
    /// The service to replay (required when the profile has several).
    #[arg(long)]
    pub(crate) service: Option<String>,
    /// Print only the span of this incident, from its opening to its close (everything before is still replayed).
    #[arg(long)]
    pub(crate) incident: Option<String>,
    /// One JSON object per line, for tools.
    #[arg(long)]
    pub(crate) json: bool,
    /// The engine's timings the server ran with: `fixloop demo`'s or `fixloop serve`'s (default: serve with a
    /// profile, demo without).
    #[arg(long, value_enum)]
    pub(crate) mode: Option<ReplayMode>,
    /// The demo shop's URL the server watched, without a profile (default: http://127.0.0.1:DEMO_PORT in demo
    /// mode, DEMO_APP_URL in serve mode).
    #[arg(long)]
    pub(crate) demo_url: Option<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum ReplayMode {
    /// `fixloop demo`.
    Demo,
    /// `fixloop serve`.
    Serve,
}

/// `fixloop replay`: the configuration the server ran with, the journal, the printout.
pub(crate) async fn run(args: ReplayArgs, config: &Config) -> anyhow::Result<()> {
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
        &fixloop_adapters::default_client(),
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
