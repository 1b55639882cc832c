//! The `fixloop-conformance` command: runs the suite against a server and prints one line per case as it goes.
//! Exit status: 0 when no case failed (and, under `--strict`, none was skipped), 1 when some case failed (or was
//! skipped under `--strict`), 2 when the run could not start (bad arguments,
//! unreadable spec, a broken embedded data file of cases, unwritable report).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use fixloop_conformance::{CaseResult, Outcome, Profile, Selection, Spec, Target, WebhookSecret};

/// Checks a FixLoop-compatible server against openapi.yaml and the WebSocket schemas.
#[derive(Debug, Parser)]
#[command(name = "fixloop-conformance", version)]
struct Args {
    /// Base URL of the server's REST API (the WebSocket is <base-url>/ws).
    #[arg(long, value_name = "URL", required_unless_present = "list")]
    base_url: Option<String>,
    /// OpenAPI document to check against (default: the openapi.yaml embedded at build time).
    #[arg(long, value_name = "FILE")]
    spec: Option<PathBuf>,
    /// Run only the cases whose id starts with PREFIX (repeatable).
    #[arg(long = "select", value_name = "PREFIX")]
    select: Vec<String>,
    /// Print the cases (id, profile, description, clause) and exit without contacting a server.
    #[arg(long)]
    list: bool,
    /// Which promises to check: `seed` (only what the seed's contract requires) or `fixloop` (the seed's
    /// contract and FixLoop's documented additions).
    #[arg(long, value_name = "PROFILE", default_value = "fixloop")]
    profile: Profile,
    /// The alert webhooks' shared secret; the webhook/ cases (profile fixloop) run only when it is given.
    /// Also read from FIXLOOP_WEBHOOK_SECRET.
    #[arg(
        long,
        value_name = "SECRET",
        env = "FIXLOOP_WEBHOOK_SECRET",
        hide_env_values = true
    )]
    webhook_secret: Option<String>,
    /// Fail, instead of skip, when the server needs the simulate or manual-run fallbacks; and count any other
    /// skipped case as not passed (exit status 1).
    #[arg(long)]
    strict: bool,
    /// Longest wait, in seconds, for each expected event of the flow.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    timeout: u64,
    /// Timeout, in seconds, of every single HTTP request and WebSocket handshake (raise it for a backend whose
    /// copilot calls a slow language model).
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    request_timeout: u64,
    /// The longest the whole run may take, in seconds: waits and requests are cut at it and the cases not judged
    /// by then are skipped with that reason.
    #[arg(long, value_name = "SECONDS", default_value_t = 90)]
    budget: u64,
    /// Write a JUnit XML report to FILE.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write the JSON report (schema: conformance/report.schema.json) to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(error) = fixloop_conformance::check_case_data() {
        return usage_error(error);
    }
    let spec = match &args.spec {
        Some(path) => Spec::from_file(path),
        None => Spec::embedded(),
    };
    let spec = match spec {
        Ok(spec) => spec,
        Err(error) => return usage_error(&error),
    };
    let selection = Selection {
        prefixes: args.select.clone(),
        strict: args.strict,
        profile: args.profile,
    };

    if args.list {
        let mut out = std::io::stdout().lock();
        for case in fixloop_conformance::list(&spec) {
            if selection.matches(&case.id) && selection.profile.includes(case.profile) {
                let needs = if case.needs_webhook_secret {
                    ", needs --webhook-secret"
                } else {
                    ""
                };
                let _ = writeln!(
                    out,
                    "{:<34} [{}{needs}] {}\n{:<34} [{}]",
                    case.id, case.profile, case.description, "", case.clause
                );
            }
        }
        return ExitCode::SUCCESS;
    }

    let Some(base_url) = args.base_url.as_deref() else {
        eprintln!("error: --base-url is required");
        return ExitCode::from(2);
    };
    let mut target = match Target::new(base_url, spec) {
        Ok(target) => target,
        Err(error) => return usage_error(&error),
    };
    target.flow_timeout = Duration::from_secs(args.timeout.max(1));
    target.request_timeout = Duration::from_secs(args.request_timeout.max(1));
    target.budget = Duration::from_secs(args.budget.max(1));
    target.webhook_secret = args
        .webhook_secret
        .as_deref()
        .filter(|secret| !secret.is_empty())
        .map(WebhookSecret::new);

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return usage_error(&error),
    };
    println!(
        "fixloop-conformance {} against {} (spec {} {}, profile {}, flow timeout {} s, budget {} s{}{})",
        env!("CARGO_PKG_VERSION"),
        target.base_url,
        target.spec.title(),
        target.spec.version(),
        selection.profile,
        args.timeout,
        args.budget,
        if args.strict { ", strict" } else { "" },
        if target.webhook_secret.is_some() {
            ", webhook cases on"
        } else {
            ""
        }
    );
    let report = runtime.block_on(fixloop_conformance::run_with_progress(
        &target,
        &selection,
        &mut |case: &CaseResult| print_case(case),
    ));
    let not_applicable = fixloop_conformance::list(&target.spec)
        .iter()
        .filter(|case| selection.matches(&case.id) && !selection.profile.includes(case.profile))
        .count();
    let not_applicable = if not_applicable > 0 {
        format!(", {not_applicable} of profile fixloop not applicable")
    } else {
        String::new()
    };
    println!(
        "\n{} cases of profile {}: {} passed, {} failed, {} skipped{not_applicable} ({:.1} s)",
        report.cases.len(),
        selection.profile,
        report.summary.pass,
        report.summary.fail,
        report.summary.skip,
        report.timings.total_ms as f64 / 1000.0
    );

    for (path, text) in [
        (&args.json, report.to_json()),
        (&args.junit, report.to_junit()),
    ] {
        if let Some(path) = path
            && let Err(error) = std::fs::write(path, text)
        {
            eprintln!("error: cannot write {}: {error}", path.display());
            return ExitCode::from(2);
        }
    }
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn print_case(case: &CaseResult) {
    let reason = case.outcome.short_reason_at_most(240);
    match &case.outcome {
        Outcome::Pass => println!("PASS {}", case.id),
        _ => println!("{} {}  {reason}", case.outcome.label(), case.id),
    }
    let _ = std::io::stdout().flush();
}

fn usage_error(error: &dyn std::error::Error) -> ExitCode {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    eprintln!("error: {text}");
    ExitCode::from(2)
}
