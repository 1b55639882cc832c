//! `fixloop demo-app`: the demo shop alone.

use anyhow::Context as _;
use fixloop_server::Config;

use super::{Ports, shutdown_signal};

/// Runs the demo shop until Ctrl-C or SIGTERM.
pub(crate) async fn run(ports: &Ports, config: &Config) -> anyhow::Result<()> {
    let port = ports.demo_port.or(ports.port).unwrap_or(config.demo_port);
    let app = fixloop_server::start_demo_app(ports.bind, port, config)
        .await
        .context("starting the demo service")?;
    println!("Demo service: {}", app.demo_url);
    app.run_until(shutdown_signal()).await;
    Ok(())
}
