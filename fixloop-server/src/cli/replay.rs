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
    /// The service profile the server ran with (default FIXLOOP_PROFILE; without one, the built-in demo shop). Only
    /// for a journal that does not record its configuration (an older FixLoop wrote it); otherwise it only picks
    /// the service.
    #[arg(long)]
    pub(crate) profile: Option<PathBuf>,
    /// The service to replay (required when the journal has several).
    #[arg(long)]
    pub(crate) service: Option<String>,
    /// Print only the span of this incident, from its opening to its close (everything before is still replayed).
    #[arg(long)]
    pub(crate) incident: Option<String>,
    /// One JSON object per line, for tools.
    #[arg(long)]
    pub(crate) json: bool,
    /// The engine's timings the server ran with: `fixloop demo`'s or `fixloop serve`'s (default: serve with a
    /// profile, demo without). Only for a journal that does not record its configuration.
    #[arg(long, value_enum)]
    pub(crate) mode: Option<ReplayMode>,
    /// The demo shop's URL the server watched, without a profile (default: http://127.0.0.1:DEMO_PORT in demo
    /// mode, DEMO_APP_URL in serve mode). Only for a journal that does not record its configuration.
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

/// `fixloop replay`: the journal, the service, the configuration it recorded (or, for a journal an older FixLoop
/// wrote, the one the flags describe), the printout.
pub(crate) async fn run(args: ReplayArgs, config: &Config) -> anyhow::Result<()> {
    use fixloop_adapters::Store as _;
    use fixloop_server::replay::{self, Replay};
    let store = replay::open_store(&args.data)?;
    let result = replay_service(&args, config, &store).await;
    store.close().await.context("closing the journal")?;
    let replayed = result?;
    if replayed.config_from_journal
        && (args.profile.is_some() || args.mode.is_some() || args.demo_url.is_some())
    {
        eprintln!(
            "fixloop replay: note: the journal records the configuration it ran with; --profile, --mode and \
             --demo-url are used only for journals that do not"
        );
    }
    let Some(steps) = replayed.shown(args.incident.as_deref()) else {
        anyhow::bail!(
            "no incident {:?} in the journal of {}",
            args.incident.clone().unwrap_or_default(),
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

/// Chooses the service (`--service`, else the only one the journal or the profile has) and replays it.
async fn replay_service(
    args: &ReplayArgs,
    config: &Config,
    store: &fixloop_adapters::SqliteStore,
) -> anyhow::Result<fixloop_server::replay::Replay> {
    let profile_path = args.profile.clone().or_else(|| config.profile.clone());
    let mode = match (args.mode, &profile_path) {
        (Some(ReplayMode::Demo), _) | (None, None) => Mode::Demo,
        (Some(ReplayMode::Serve), _) | (None, Some(_)) => Mode::Serve,
    };
    let services = match &profile_path {
        Some(path) => Some(Profile::load(path, Secrets::Unresolved)?.services),
        None => None,
    };
    let name = match (&args.service, &services) {
        (Some(name), _) => name.clone(),
        (None, Some(services)) => only(
            services.iter().map(|service| service.spec.name.clone()),
            "profile",
        )?,
        (None, None) => only(
            store.services().await.context("reading the journal")?,
            "journal",
        )?,
    };
    // Only for a journal that does not record its configuration: the profile (else the built-in demo shop) and the
    // mode the server ran with.
    let service = match services {
        Some(services) => services
            .into_iter()
            .find(|service| service.spec.name == name),
        None => {
            let url = args.demo_url.clone().unwrap_or_else(|| match mode {
                Mode::Demo => format!("http://127.0.0.1:{}", config.demo_port),
                Mode::Serve => config.demo_app_url.clone(),
            });
            Some(fixloop_server::profile::demo_profile(&url)).filter(|demo| demo.spec.name == name)
        }
    };
    let builtin_demo = profile_path.is_none();
    let fallback = service.map(|service| fallback_config(mode, config, &service, builtin_demo));
    Ok(fixloop_server::replay::replay(store, &name, fallback).await?)
}

/// The one name in `names`, or an error listing them.
fn only(names: impl IntoIterator<Item = String>, place: &str) -> anyhow::Result<String> {
    let names: Vec<String> = names.into_iter().collect();
    match names.as_slice() {
        [one] => Ok(one.clone()),
        [] => anyhow::bail!("the {place} has no service"),
        several => anyhow::bail!(
            "the {place} has {} services ({}): choose one with --service",
            several.len(),
            several.join(", ")
        ),
    }
}

/// The engine's configuration as the server built it for `service` in `mode`.
fn fallback_config(
    mode: Mode,
    config: &Config,
    service: &fixloop_server::profile::ServiceProfile,
    builtin_demo: bool,
) -> fixloop_core::engine::Config {
    let mut engine = fixloop_server::runtime::tuning::engine_config(mode, config, service);
    // The run deadline the server ran with followed its runner: build the same ports (nothing is called) to know it.
    match fixloop_server::runtime::ports::build_ports(
        config,
        service,
        builtin_demo,
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
    engine
}
