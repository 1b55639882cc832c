//! `fixloop demo`: the demo shop and the orchestrator watching it in one process, with a traffic generator; or,
//! with `--scenario`, a scripted incident timeline played over fake ports.

use anyhow::Context as _;
use fixloop_server::config::StoreLocation;
use fixloop_server::{Config, DemoOptions, Scenario, ScenarioOptions, Speed};

use super::{AuthArgs, Hangups, Journal, Ports, shutdown_signal};

#[derive(Debug, clap::Args)]
pub(crate) struct DemoArgs {
    /// Addresses.
    #[command(flatten)]
    pub(crate) ports: Ports,
    /// Play a scripted incident instead of watching the shop: a built-in name (outage-recovery, flapping, relapse,
    /// plan-rejected-twice, run-timeout, signals-degraded) or the path of a scenario JSON file.
    #[arg(long, value_name = "NAME|FILE")]
    pub(crate) scenario: Option<String>,
    /// How much faster than written the scenario plays (from 0.01 to 100; default 1).
    #[arg(
        long,
        value_name = "X",
        requires = "scenario",
        allow_negative_numbers = true
    )]
    pub(crate) speed: Option<Speed>,
    /// Let FixLoop remediate the shop (mode `auto` unless FIXLOOP_REMEDIATION_MODE says otherwise): first turn its
    /// payment_provider flag off (safe), then restart it (risky: waits for an approval).
    #[arg(long, conflicts_with = "scenario")]
    pub(crate) remediate: bool,
    /// The remediating demo's environment label, which selects the steps' tiers: `production` makes even the flag
    /// step wait for an approval (default: `demo`, where it runs at once).
    #[arg(long, value_name = "NAME", requires = "remediate")]
    pub(crate) environment: Option<String>,
    /// Where the journal lives (a scenario always keeps it in memory).
    #[command(flatten)]
    pub(crate) journal: Journal,
    /// Authentication.
    #[command(flatten)]
    pub(crate) auth: AuthArgs,
}

/// Runs the demo (or the scenario) until Ctrl-C.
pub(crate) async fn run(args: DemoArgs, config: Config) -> anyhow::Result<()> {
    let DemoArgs {
        ports,
        scenario,
        speed,
        journal,
        auth,
        remediate,
        environment,
    } = args;
    if let Some(scenario) = scenario {
        // A scripted story is the same every time: it never restores a journal, nor leaves one.
        let mut config = config;
        config.store = Some(StoreLocation::Memory);
        return demo_scenario(&ports, &scenario, speed.unwrap_or_default(), config, &auth).await;
    }
    let mut config = config;
    journal.apply(&mut config);
    // A SIGHUP is answered (there is no profile file to reload) rather than ending the demo.
    let hangups = Hangups::listen();
    let demo = fixloop_server::start_demo(DemoOptions {
        bind: ports.bind,
        port: ports.port.unwrap_or(config.orch_port),
        demo_port: ports.demo_port.unwrap_or(config.demo_port),
        config,
        traffic: true,
        ports: None,
        insecure_no_auth: auth.insecure_no_auth,
        remediate,
        environment,
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
    if remediate {
        println!(
            "  remediation:  on; watch it with  websocat '{}/ws?events=remediation'",
            demo.orchestrator_url.replacen("http", "ws", 1)
        );
    }
    println!("Press Ctrl-C to stop.");
    let reloads = tokio::spawn(hangups.reload_with(demo.reloader.clone()));
    demo.run_until(shutdown_signal()).await;
    reloads.abort();
    Ok(())
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
