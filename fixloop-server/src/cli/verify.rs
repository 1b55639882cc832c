//! `fixloop verify`: the post-deploy verification gate for CI (see [`fixloop_server::verify`]). This file reads the
//! environment (`GITHUB_ACTIONS`, the adapters' keys through [`Config`]), resolves the profile, builds the ports,
//! writes the reports and turns the outcome into the exit code.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use fixloop_contract::chrono::Utc;
use fixloop_core::engine::Config as EngineConfig;
use fixloop_server::Config;
use fixloop_server::profile::{DEMO_PROFILE, Profile, Secrets};
use fixloop_server::runtime::ports::build_ports;
use fixloop_server::verify::run::{VerifyInput, verify};
use fixloop_server::verify::{Outcome, VerifyReport, annotations, html, junit};

/// The built-in profile names `--profile` accepts besides a file.
const BUILTIN_PROFILES: [&str; 1] = ["demo"];

/// `fixloop verify`'s flags.
#[derive(Debug, clap::Args)]
pub(crate) struct VerifyArgs {
    /// A service profile file, or a built-in profile's name (`demo`: the demo shop).
    #[arg(long)]
    pub(crate) profile: String,
    /// The service to verify (required when the profile has several).
    #[arg(long)]
    pub(crate) service: Option<String>,
    /// The deployed service's base URL, instead of the profile's.
    #[arg(long)]
    pub(crate) base_url: Option<String>,
    /// How long to hold the signal gate after the tests, for example `30s`, `2m`, `1500ms` (default: the
    /// shortest hold the gate can pass in, its polling interval times its recovery samples plus one). Too short a
    /// hold is inconclusive, never verified. The tests run once, before the hold: a fix made during the hold does
    /// not undo failed tests (exit 3); verify again.
    #[arg(long, value_parser = parse_duration)]
    pub(crate) signals_for: Option<Duration>,
    /// Write a JUnit XML report here (one testcase per test and per gate).
    #[arg(long)]
    pub(crate) junit: Option<PathBuf>,
    /// Write the JSON report here (schema: fixloop-server/schemas/verify-report.schema.json).
    #[arg(long)]
    pub(crate) json: Option<PathBuf>,
    /// Write a self-contained HTML report here (one file, no external assets).
    #[arg(long)]
    pub(crate) html: Option<PathBuf>,
}

/// Runs the verification and returns its exit code; `config` is the environment's configuration, or why it is
/// invalid (a configuration error like any other).
pub(crate) async fn run(
    args: VerifyArgs,
    config: Result<Config, String>,
    env: &HashMap<String, String>,
) -> ExitCode {
    let report = match prepare(&args, config, env) {
        Ok(input) => verify(input).await,
        Err(error) => VerifyReport::configuration_error(&args.profile, &error, Utc::now()),
    };
    print_summary(&report);
    if env
        .get("GITHUB_ACTIONS")
        .is_some_and(|value| value == "true")
    {
        let file = Path::new(&args.profile)
            .is_file()
            .then_some(args.profile.as_str());
        for line in annotations::github(&report, file) {
            println!("{line}");
        }
    }
    let mut code = report.exit_code;
    for (path, text) in [
        (&args.json, report.to_json()),
        (&args.junit, junit::render(&report)),
        (&args.html, html::render(&report)),
    ] {
        if let Some(path) = path
            && let Err(error) = std::fs::write(path, text)
        {
            eprintln!("fixloop verify: cannot write {}: {error}", path.display());
            code = Outcome::ConfigurationError.exit_code();
        }
    }
    ExitCode::from(code)
}

/// Everything before the first request: the profile, the service, the base URL, the ports, the thresholds.
fn prepare(
    args: &VerifyArgs,
    config: Result<Config, String>,
    env: &HashMap<String, String>,
) -> Result<VerifyInput, String> {
    let config = config.map_err(|error| format!("environment: {error}"))?;
    let (profile, builtin) = load_profile(&args.profile, env)?;
    let mut service = super::plan::choose_service(&profile, &args.profile, args.service.as_deref())
        .map_err(|error| format!("{error:#}"))?
        .clone();
    if let Some(base_url) = &args.base_url {
        let parsed = reqwest::Url::parse(base_url)
            .map_err(|error| format!("--base-url {base_url:?} is not a URL: {error}"))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(format!(
                "--base-url {base_url:?} is not an http(s) URL with a host"
            ));
        }
        service = service.with_base_url(base_url);
    }
    let mut engine = EngineConfig::seed(service.spec.clone(), "verify");
    service.apply_thresholds(&mut engine);
    let http = fixloop_adapters::http_client(Duration::from_secs(10))
        .map_err(|error| format!("the HTTP client cannot start: {}", error.detail()))?;
    let (ports, choice) = build_ports(&config, &service, builtin, &http)?;
    let planner = config
        .minimax
        .is_some()
        .then(|| (ports.planner.clone(), choice.planner.clone()));
    let signals_for = args
        .signals_for
        .unwrap_or(engine.poll_interval * (engine.recovery_samples.max(1) + 1));
    Ok(VerifyInput {
        profile: args.profile.clone(),
        service,
        planner,
        runner: ports.runner,
        signals: (ports.signals, choice.signals),
        engine,
        signals_for,
    })
}

/// A profile file, else a built-in profile by name; and whether it is the built-in demo.
fn load_profile(name: &str, env: &HashMap<String, String>) -> Result<(Profile, bool), String> {
    let path = Path::new(name);
    if path.exists() {
        return Profile::load(path, Secrets::From(env))
            .map(|profile| (profile, false))
            .map_err(|error| error.to_string());
    }
    if name == "demo" {
        return Profile::parse(DEMO_PROFILE, "<built-in demo profile>", Secrets::Unresolved)
            .map(|profile| (profile, true))
            .map_err(|error| error.to_string());
    }
    Err(format!(
        "{name}: no such profile file, and no built-in profile has that name (built-in: {})",
        BUILTIN_PROFILES.join(", ")
    ))
}

/// The outcome for humans on standard output.
fn print_summary(report: &VerifyReport) {
    for test in &report.tests {
        let verdict = if test.passed { "PASS" } else { "FAIL" };
        println!(
            "{verdict} {}: {} ({})",
            test.test_id, test.name, test.details
        );
    }
    println!(
        "test gate: {}: {}",
        report.test_gate.status.as_str(),
        report.test_gate.reason
    );
    println!(
        "signal gate: {}: {}",
        report.signal_gate.status.as_str(),
        report.signal_gate.reason
    );
    println!("exit {}: {}", report.exit_code, report.summary);
}

/// A duration written as a number and a unit: `ms`, `s`, `m` or `h` (`30s`, `1.5m`, `500ms`).
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|character: char| !(character.is_ascii_digit() || character == '.'))
        .ok_or_else(|| format!("{text:?}: add a unit (ms, s, m or h), for example 30s"))?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected a number and a unit, for example 30s"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (ms, s, m or h)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|error| format!("{text:?}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["30", "s", "3x", "-1s", "1.2.3s", ""] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
