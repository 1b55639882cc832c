//! The `fixloop` binary: parses the command line and the environment ([`cli`]), builds the adapters, and runs the
//! library.
//!
//! `fixloop demo` (demo service + orchestrator + traffic, no keys needed), `fixloop serve` (orchestrator watching
//! the services of `--profile`, else the demo shop at `DEMO_APP_URL`), `fixloop demo-app` (demo service alone),
//! `fixloop profile check|init`, `fixloop plan`, `fixloop verify` (a post-deploy gate for CI, one exit code per outcome) and `fixloop replay` (a journal fed through the engine offline, every
//! decision printed with its reason); `fixloop demo --scenario NAME|FILE [--speed X]` plays a scripted
//! incident over fake ports. Servers stop gracefully on Ctrl-C and SIGTERM.

use std::process::ExitCode;

mod cli;

#[tokio::main]
async fn main() -> ExitCode {
    match cli::run().await {
        Ok(code) => code,
        Err(error) => {
            // `{:#}` prints the whole chain on one line, for example
            // "configuration: invalid ORCH_PORT: expected a port number 0..=65535, got \"abc\"".
            eprintln!("fixloop: {error:#}");
            ExitCode::FAILURE
        }
    }
}
