//! The runner's self-check: the whole suite passes against a correct (scripted) server, each deliberately broken
//! server (a mutating proxy in front of it) is caught by a named case, the seed's fallbacks are reported as skips
//! (failures under `--strict`), and the reports are valid against `report.schema.json`.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use fixloop_conformance::{Outcome, Profile, Report, Selection, Spec, Target};
use serde_json::Value;
use support::mutant::{self, Mutation};
use support::scripted::{self, Script};
use support::{expect_fail, failures, run, run_with_secret};

const FLOW_TIMEOUT: Duration = Duration::from_secs(10);
/// For cases that must wait out a missing event.
const SHORT_TIMEOUT: Duration = Duration::from_secs(1);

fn validate_report(report: &Report) {
    let schema: Value =
        serde_json::from_str(include_str!("../report.schema.json")).expect("schema is JSON");
    let validator = jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("report schema compiles");
    let instance: Value = serde_json::from_str(&report.to_json()).expect("report is JSON");
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|error| format!("{}: {error}", error.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "report does not match report.schema.json: {errors:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_server_passes_every_case() {
    let server = scripted::start(Script::default()).await;
    let report = run_with_secret(
        &server.base_url,
        Selection::all(),
        FLOW_TIMEOUT,
        Some(scripted::WEBHOOK_SECRET),
    )
    .await;
    assert_eq!(
        report.summary.fail + report.summary.skip,
        0,
        "{}",
        failures(&report)
    );

    // Every listed case ran exactly once, in the listed order.
    let listed: Vec<String> = fixloop_conformance::list(&Spec::embedded().expect("spec"))
        .into_iter()
        .map(|case| case.id)
        .collect();
    let ran: Vec<String> = report.cases.iter().map(|case| case.id.clone()).collect();
    assert_eq!(
        listed.iter().collect::<BTreeSet<_>>(),
        ran.iter().collect::<BTreeSet<_>>()
    );
    assert_eq!(listed.len(), ran.len());
    validate_report(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_proxy_passes_every_case() {
    // Control for the mutants: the proxy itself breaks nothing.
    let server = scripted::start(Script::default()).await;
    let proxy = mutant::start(&server.base_url, Mutation::DropWsType("no.such.type")).await;
    let report = run(&proxy.base_url, Selection::all(), FLOW_TIMEOUT).await;
    assert_eq!(
        report.summary.fail + report.summary.skip,
        0,
        "{}",
        failures(&report)
    );
}

// The mutant checks, each written once and run in front of both correct servers.

async fn check_renamed_error_rate_key(upstream: &str) {
    let proxy = mutant::start(
        upstream,
        Mutation::RenameKey {
            from: "error_rate_5m",
            to: "error_rate",
        },
    )
    .await;
    let report = run(
        &proxy.base_url,
        Selection::prefixes(["shapes/getStatus/1"]),
        FLOW_TIMEOUT,
    )
    .await;
    let (expected, actual, path) = expect_fail(&report, "shapes/getStatus/1");
    assert_eq!(path, "/error_rate_5m");
    assert!(
        expected.contains("required key `error_rate_5m`"),
        "{expected}"
    );
    assert!(
        actual.contains("error_rate_5m") && actual.contains("error_rate"),
        "{actual}"
    );
    validate_report(&report);
}

async fn check_changed_enum_value(upstream: &str) {
    let proxy = mutant::start(
        upstream,
        Mutation::EnumValue {
            from: "HEALTHY",
            to: "OK",
        },
    )
    .await;
    let selection = Selection::prefixes([
        "shapes/getStatus/1",
        "ws/connectWebSocket/1",
        "ws/WsEnvelope/1",
    ]);
    let report = run(&proxy.base_url, selection, FLOW_TIMEOUT).await;
    let (expected, actual, path) = expect_fail(&report, "shapes/getStatus/1");
    assert_eq!(path, "/status");
    assert!(expected.contains("HEALTHY"), "{expected}");
    assert_eq!(actual, "\"OK\"");
    // The initial system.status on the WebSocket carries it too.
    let (_, _, path) = expect_fail(&report, "ws/WsEnvelope/1");
    assert_eq!(path, "/payload/status");
}

async fn check_missing_plan_generated(upstream: &str, timeout: Duration) {
    let proxy = mutant::start(upstream, Mutation::DropWsType("plan.generated")).await;
    let report = run(&proxy.base_url, Selection::prefixes(["flow/"]), timeout).await;
    let (expected, _, _) = expect_fail(&report, "flow/plan.generated/1");
    assert!(expected.contains("plan.generated"), "{expected}");
    // Only the missing event fails: the plan itself is judged through REST and the flow goes on.
    assert_eq!(report.summary.fail, 1, "{}", failures(&report));
    assert_eq!(
        report.outcome("flow/plan.generated/2"),
        Some(&Outcome::Pass)
    );
    assert_eq!(report.outcome("flow/system.status/1"), Some(&Outcome::Pass));
}

async fn check_server_error_on_malformed_json(upstream: &str) {
    let proxy = mutant::start(upstream, Mutation::MalformedJson500).await;
    let report = run(
        &proxy.base_url,
        Selection::prefixes(["bad_input/"]),
        FLOW_TIMEOUT,
    )
    .await;
    let operations = [
        "setDemoBug",
        "simulateIncident",
        "runTests",
        "askCopilot",
        "submitCiLogs",
        "setRemediationKillSwitch",
        "approveRemediation",
        "rejectRemediation",
    ];
    for operation in operations {
        let (expected, actual, path) = expect_fail(&report, &format!("bad_input/{operation}/1"));
        assert_eq!(path, "status");
        assert!(expected.contains("4xx"), "{expected}");
        assert!(actual.starts_with("status 500"), "{actual}");
    }
    assert_eq!(
        report.summary.fail,
        operations.len(),
        "{}",
        failures(&report)
    );
}

async fn check_timestamp_without_timezone(upstream: &str) {
    let proxy = mutant::start(upstream, Mutation::NaiveTimestamps).await;
    let report = run(
        &proxy.base_url,
        Selection::prefixes(["shapes/getStatus/1"]),
        FLOW_TIMEOUT,
    )
    .await;
    let (expected, actual, path) = expect_fail(&report, "shapes/getStatus/1");
    assert_eq!(path, "/updated_at");
    assert!(expected.contains("date-time"), "{expected}");
    assert!(!actual.contains('Z'), "{actual}");
}

async fn check_plan_with_four_items(upstream: &str, timeout: Duration) {
    let proxy = mutant::start(upstream, Mutation::FourItemPlan).await;
    let report = run(
        &proxy.base_url,
        Selection::prefixes(["flow/plan.generated/"]),
        timeout,
    )
    .await;
    let (expected, actual, path) = expect_fail(&report, "flow/plan.generated/2");
    assert_eq!(
        (expected, actual, path),
        ("exactly 5 plan items", "4 items", "/payload/plan/items")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_renamed_error_rate_key_is_caught_by_name() {
    let server = scripted::start(Script::default()).await;
    check_renamed_error_rate_key(&server.base_url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_changed_enum_value_is_caught() {
    let server = scripted::start(Script::default()).await;
    check_changed_enum_value(&server.base_url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_missing_plan_generated_event_is_caught() {
    let server = scripted::start(Script::default()).await;
    check_missing_plan_generated(&server.base_url, SHORT_TIMEOUT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_server_error_on_malformed_json_is_caught() {
    let server = scripted::start(Script::default()).await;
    check_server_error_on_malformed_json(&server.base_url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_timestamp_without_timezone_is_caught() {
    let server = scripted::start(Script::default()).await;
    check_timestamp_without_timezone(&server.base_url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_plan_with_four_items_is_caught() {
    let server = scripted::start(Script::default()).await;
    check_plan_with_four_items(&server.base_url, FLOW_TIMEOUT).await;
    // The scripted plan's fifth item is the auth check: dropping it also leaves a coverage gap.
    let proxy = mutant::start(&server.base_url, Mutation::FourItemPlan).await;
    let report = run(
        &proxy.base_url,
        Selection::prefixes(["flow/plan.generated/3"]),
        FLOW_TIMEOUT,
    )
    .await;
    let (_, actual, _) = expect_fail(&report, "flow/plan.generated/3");
    assert!(actual.contains("auth"), "{actual}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_status_and_test_events_fail_the_websocket_cases() {
    let server = scripted::start(Script::default()).await;
    let proxy = mutant::start(&server.base_url, Mutation::DropWsType("system.status")).await;
    let report = run(
        &proxy.base_url,
        Selection::prefixes(["ws/", "flow/system.status/1"]),
        SHORT_TIMEOUT,
    )
    .await;
    for id in [
        "ws/connectWebSocket/1",
        "ws/system.status/1",
        "ws/system.status/2",
        "flow/system.status/1",
    ] {
        expect_fail(&report, id);
    }

    let server = scripted::start(Script::default()).await;
    let proxy = mutant::start(&server.base_url, Mutation::DropWsType("tests.updated")).await;
    let report = run(
        &proxy.base_url,
        Selection::prefixes(["ws/tests.updated/1", "flow/tests.updated/"]),
        SHORT_TIMEOUT,
    )
    .await;
    let (_, actual, _) = expect_fail(&report, "ws/tests.updated/1");
    assert!(actual.contains("no tests.updated for this run"), "{actual}");
    expect_fail(&report, "flow/tests.updated/1");
    // Its precondition failed, so the failing-test step is not waited for but skipped, naming the failed case.
    for id in ["flow/tests.updated/2", "flow/tests.updated/3"] {
        assert_eq!(
            report.outcome(id),
            Some(&Outcome::skip(
                "precondition failed: no tests.updated for the incident arrived (flow/tests.updated/1)"
            )),
            "{id}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_the_join_snapshot_fails_the_late_client_cases() {
    let server = scripted::start(Script {
        sends_state_on_connect: false,
        ..Script::default()
    })
    .await;
    let report = run(
        &server.base_url,
        Selection::prefixes(["ws/connectWebSocket/"]),
        SHORT_TIMEOUT,
    )
    .await;
    for id in [
        "ws/connectWebSocket/1",
        "ws/connectWebSocket/2",
        "ws/connectWebSocket/3",
    ] {
        expect_fail(&report, id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_before_incident_fails_the_order_case() {
    let server = scripted::start(Script {
        plan_before_incident: true,
        ..Script::default()
    })
    .await;
    let report = run(
        &server.base_url,
        Selection::prefixes(["ws/incident.created/1"]),
        FLOW_TIMEOUT,
    )
    .await;
    let (expected, _, _) = expect_fail(&report, "ws/incident.created/1");
    assert!(expected.contains("before its plan.generated"), "{expected}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incident_only_through_simulate_is_a_skip_and_a_strict_failure() {
    let script = Script {
        detects_by_itself: false,
        ..Script::default()
    };
    let server = scripted::start(script).await;
    let report = run(
        &server.base_url,
        Selection::prefixes(["flow/"]),
        SHORT_TIMEOUT,
    )
    .await;
    assert_eq!(
        report.outcome("flow/incident.created/1"),
        Some(&Outcome::skip(
            "server only reaches an incident through /api/incidents/simulate"
        ))
    );
    assert_eq!(report.summary.fail, 0, "{}", failures(&report));

    let server = scripted::start(script).await;
    let mut strict = Selection::prefixes(["flow/incident.created/1"]);
    strict.strict = true;
    let report = run(&server.base_url, strict, SHORT_TIMEOUT).await;
    let (_, actual, _) = expect_fail(&report, "flow/incident.created/1");
    assert!(actual.contains("/api/incidents/simulate"), "{actual}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_test_runs_are_a_skip_and_a_strict_failure() {
    let script = Script {
        runs_by_itself: false,
        ..Script::default()
    };
    let server = scripted::start(script).await;
    let report = run(
        &server.base_url,
        Selection::prefixes(["flow/"]),
        SHORT_TIMEOUT,
    )
    .await;
    let manual = Some(Outcome::skip("needs a manual /api/tests/run"));
    assert_eq!(report.outcome("flow/tests.updated/1"), manual.as_ref());
    assert_eq!(report.outcome("flow/system.status/1"), manual.as_ref());
    assert_eq!(report.summary.fail, 0, "{}", failures(&report));

    let server = scripted::start(script).await;
    let mut strict = Selection::prefixes(["flow/tests.updated/1"]);
    strict.strict = true;
    let report = run(&server.base_url, strict, SHORT_TIMEOUT).await;
    let (_, actual, _) = expect_fail(&report, "flow/tests.updated/1");
    assert!(actual.contains("needs a manual /api/tests/run"), "{actual}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_server_fails_every_case_without_panicking() {
    // Bind and drop a listener to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("ephemeral port")
        .port();
    let report = run(
        &format!("http://127.0.0.1:{port}"),
        Selection::all(),
        SHORT_TIMEOUT,
    )
    .await;
    let (_, actual, _) = expect_fail(&report, "shapes/getStatus/1");
    assert!(actual.starts_with("no response"), "{actual}");
    expect_fail(&report, "ws/connectWebSocket/4");
    assert_eq!(report.summary.pass, 0, "{}", failures(&report));
    validate_report(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_exit_status_and_report_files_follow_the_outcomes() {
    let server = scripted::start(Script::default()).await;
    let proxy = mutant::start(
        &server.base_url,
        Mutation::EnumValue {
            from: "HEALTHY",
            to: "OK",
        },
    )
    .await;
    let dir = std::env::temp_dir().join(format!("fixloop-conformance-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let json = dir.join("report.json");
    let junit = dir.join("junit.xml");

    let cli = |base_url: String, extra: Vec<String>| {
        let json = json.clone();
        let junit = junit.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_fixloop-conformance"))
                .args([
                    "--base-url",
                    &base_url,
                    "--select",
                    "shapes/",
                    "--timeout",
                    "5",
                ])
                .arg("--json")
                .arg(&json)
                .arg("--junit")
                .arg(&junit)
                .args(extra)
                .output()
                .expect("the CLI runs")
        })
    };
    let bound = Duration::from_secs(60);

    let good = tokio::time::timeout(bound, cli(server.base_url.clone(), Vec::new()))
        .await
        .expect("bounded")
        .expect("joined");
    let stdout = String::from_utf8_lossy(&good.stdout);
    assert_eq!(good.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("PASS shapes/getStatus/1"), "{stdout}");
    assert!(
        std::fs::read_to_string(&junit)
            .expect("junit written")
            .contains("failures=\"0\"")
    );

    let bad = tokio::time::timeout(bound, cli(proxy.base_url.clone(), Vec::new()))
        .await
        .expect("bounded")
        .expect("joined");
    let stdout = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL shapes/getStatus/1  at /status"),
        "{stdout}"
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json written")).expect("JSON");
    assert!(
        report["summary"]["fail"]
            .as_u64()
            .is_some_and(|fail| fail > 0)
    );
    let junit_text = std::fs::read_to_string(&junit).expect("junit written");
    assert!(
        junit_text.contains("<failure message=\"at /status: expected one of"),
        "{junit_text}"
    );

    let list = std::process::Command::new(env!("CARGO_BIN_EXE_fixloop-conformance"))
        .args(["--list", "--select", "flow/"])
        .output()
        .expect("the CLI runs");
    let stdout = String::from_utf8_lossy(&list.stdout);
    assert_eq!(list.status.code(), Some(0));
    assert!(
        stdout.contains("flow/plan.generated/2") && stdout.contains("seed §8.2"),
        "{stdout}"
    );
    assert!(!stdout.contains("shapes/"), "{stdout}");

    // --spec reads another document; an unreadable one is a usage error (2), not a failed suite (1).
    let spec_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi.yaml");
    let listed = std::process::Command::new(env!("CARGO_BIN_EXE_fixloop-conformance"))
        .arg("--spec")
        .arg(&spec_path)
        .args(["--list", "--select", "bad_input/setDemoBug/1"])
        .output()
        .expect("the CLI runs");
    assert_eq!(listed.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&listed.stdout).contains("malformed JSON"));
    let missing = std::process::Command::new(env!("CARGO_BIN_EXE_fixloop-conformance"))
        .args([
            "--spec",
            "/nonexistent/openapi.yaml",
            "--base-url",
            "http://127.0.0.1:1",
        ])
        .output()
        .expect("the CLI runs");
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read the spec file"));
    let _ = std::fs::remove_dir_all(&dir);
}

// The real FixLoop server (`fixloop_server::start_demo`), in-process on ephemeral ports.

/// The committed expected outcomes of the whole suite against `fixloop demo` (STYLE.md §6): one `LABEL id` line
/// per case. Known failures would be listed here with a reason and an issue number; there are none.
/// `UPDATE_BASELINE=1 cargo test -p fixloop-conformance --test conformance real_server` rewrites it; review the diff.
const REAL_BASELINE: &str = include_str!("baseline/fixloop-demo.txt");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_server_matches_the_committed_baseline() {
    let demo = support::start_real().await;
    let report = run_with_secret(
        &demo.orchestrator_url,
        Selection::all(),
        support::REAL_FLOW_TIMEOUT,
        Some(support::REAL_WEBHOOK_SECRET),
    )
    .await;
    let demo_total = report.timings.total_ms;
    support::stop_real(demo).await;
    let actual: String = report
        .cases
        .iter()
        .map(|case| format!("{} {}\n", case.outcome.label(), case.id))
        .collect();
    if std::env::var_os("UPDATE_BASELINE").is_some() {
        let header: String = REAL_BASELINE
            .lines()
            .take_while(|line| line.starts_with('#'))
            .map(|line| format!("{line}\n"))
            .collect();
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/baseline/fixloop-demo.txt");
        std::fs::write(path, format!("{header}{actual}")).expect("baseline written");
        return;
    }
    let expected: String = REAL_BASELINE
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| format!("{line}\n"))
        .collect();
    assert_eq!(
        actual,
        expected,
        "baseline differs; failures:\n{}",
        failures(&report)
    );
    assert!(
        demo_total < 60_000,
        "the suite took {demo_total} ms against the real server"
    );
    validate_report(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_renamed_error_rate_key_is_caught_by_name() {
    let demo = support::start_real().await;
    check_renamed_error_rate_key(&demo.orchestrator_url).await;
    support::stop_real(demo).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_changed_enum_value_is_caught() {
    let demo = support::start_real().await;
    check_changed_enum_value(&demo.orchestrator_url).await;
    support::stop_real(demo).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_missing_plan_generated_event_is_caught() {
    let demo = support::start_real().await;
    check_missing_plan_generated(&demo.orchestrator_url, support::REAL_FLOW_TIMEOUT).await;
    support::stop_real(demo).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_server_error_on_malformed_json_is_caught() {
    let demo = support::start_real().await;
    check_server_error_on_malformed_json(&demo.orchestrator_url).await;
    support::stop_real(demo).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_timestamp_without_timezone_is_caught() {
    let demo = support::start_real().await;
    check_timestamp_without_timezone(&demo.orchestrator_url).await;
    support::stop_real(demo).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_plan_with_four_items_is_caught() {
    let demo = support::start_real().await;
    check_plan_with_four_items(&demo.orchestrator_url, support::REAL_FLOW_TIMEOUT).await;
    support::stop_real(demo).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_missing_copilot_answer_is_caught() {
    let demo = support::start_real().await;
    // One profile here (each run is a whole real flow); the scripted check runs both.
    check_missing_copilot_answer(
        &demo.orchestrator_url,
        support::REAL_FLOW_TIMEOUT,
        &[Profile::Seed],
    )
    .await;
    support::stop_real(demo).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_server_passes_the_seed_profile() {
    // FixLoop implements the seed, so everything the seed requires passes, with no fallback.
    let demo = support::start_real().await;
    let report = run(
        &demo.orchestrator_url,
        Selection::all().with_profile(Profile::Seed),
        support::REAL_FLOW_TIMEOUT,
    )
    .await;
    support::stop_real(demo).await;
    assert_eq!(
        report.summary.fail + report.summary.skip,
        0,
        "{}",
        failures(&report)
    );
    assert!(
        report
            .cases
            .iter()
            .all(|case| case.profile == Profile::Seed)
    );
    validate_report(&report);
}

// Profiles.

/// The `copilot.answer` a question causes is dropped: only the case that requires it fails, under each profile.
async fn check_missing_copilot_answer(upstream: &str, timeout: Duration, profiles: &[Profile]) {
    let proxy = mutant::start(upstream, Mutation::DropWsType("copilot.answer")).await;
    for &profile in profiles {
        let report = run(
            &proxy.base_url,
            Selection::prefixes(["flow/"]).with_profile(profile),
            timeout,
        )
        .await;
        let (expected, actual, path) = expect_fail(&report, "flow/copilot.answer/1");
        assert!(expected.contains("copilot.answer"), "{expected}");
        assert!(actual.starts_with("none; types received"), "{actual}");
        assert_eq!(path, "/type");
        assert_eq!(report.summary.fail, 1, "{profile}: {}", failures(&report));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_missing_copilot_answer_is_caught() {
    let server = scripted::start(Script::default()).await;
    check_missing_copilot_answer(
        &server.base_url,
        FLOW_TIMEOUT,
        &[Profile::Seed, Profile::Fixloop],
    )
    .await;
}

fn listed(profile: Profile) -> BTreeSet<String> {
    fixloop_conformance::list(&Spec::embedded().expect("spec"))
        .into_iter()
        .filter(|case| profile.includes(case.profile))
        .map(|case| case.id)
        .collect()
}

#[test]
fn every_case_has_a_profile_and_the_seed_profile_is_the_seed_contract() {
    let all = fixloop_conformance::list(&Spec::embedded().expect("spec"));
    let profile_of = |id: &str| {
        all.iter()
            .find(|case| case.id == id)
            .map(|case| case.profile)
            .unwrap_or_else(|| panic!("{id} is listed"))
    };
    // The seed's own requirements.
    for id in [
        "shapes/getStatus/1",
        "bad_input/setDemoBug/1",
        "flow/checkout/1",
        "flow/plan.generated/2",
        "flow/tests.updated/2",
        "flow/tests.updated/3",
        "flow/system.status/1",
        "flow/copilot.answer/1",
        "ws/connectWebSocket/4",
        "ws/WsEnvelope/1",
    ] {
        assert_eq!(profile_of(id), Profile::Seed, "{id}");
    }
    // FixLoop's additions: the error body, the join snapshot, bounds, the additive endpoints, the webhooks.
    for id in [
        "shapes/getTestRun/2",
        "shapes/connectWebSocket/1",
        "shapes/listServices/1",
        "bad_input/setDemoBug/2",
        "bad_input/setDemoBug/3",
        "bad_input/askCopilot/8",
        "ws/connectWebSocket/1",
        "ws/connectWebSocket/2",
        "webhook/datadog/1",
    ] {
        assert_eq!(profile_of(id), Profile::Fixloop, "{id}");
    }
    let seed = listed(Profile::Seed);
    let fixloop = listed(Profile::Fixloop);
    assert!(seed.is_subset(&fixloop));
    assert_eq!(fixloop.len(), all.len());
    assert!(seed.len() < fixloop.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_only_server_passes_the_seed_profile() {
    // FastAPI-style errors, no join snapshot, naive timestamps, percent rates, no additive endpoints.
    let server = scripted::start(Script::seed_only()).await;
    let report = run(
        &server.base_url,
        Selection::all().with_profile(Profile::Seed),
        FLOW_TIMEOUT,
    )
    .await;
    assert_eq!(
        report.summary.fail + report.summary.skip,
        0,
        "{}",
        failures(&report)
    );
    // Exactly the seed cases ran; FixLoop's additions were not applicable.
    let ran: BTreeSet<String> = report.cases.iter().map(|case| case.id.clone()).collect();
    assert_eq!(ran, listed(Profile::Seed));
    assert_eq!(report.profile, Profile::Seed);
    validate_report(&report);
    let json: Value = serde_json::from_str(&report.to_json()).expect("JSON");
    assert_eq!(json["profile"], "seed");
    assert_eq!(json["cases"][0]["profile"], "seed");

    // Under the fixloop profile the same server fails, but only on FixLoop's additions.
    let server = scripted::start(Script::seed_only()).await;
    let report = run(&server.base_url, Selection::all(), FLOW_TIMEOUT).await;
    for id in [
        "shapes/getTestRun/2",
        "bad_input/setDemoBug/1",
        "ws/connectWebSocket/1",
        "shapes/getStatus/1",
    ] {
        expect_fail(&report, id);
    }
    // Where a seed case fails there, it is on what the fixloop profile adds to it: the ErrorBody of a refused
    // request, or timestamps with an RFC 3339 UTC offset (the seed's "ISO-8601 string" does not require one).
    let seed = listed(Profile::Seed);
    for case in &report.cases {
        if let Outcome::Fail { expected, .. } = &case.outcome
            && seed.contains(&case.id)
        {
            assert!(
                expected.contains("date-time") || expected.contains("ErrorBody"),
                "{}: {expected}",
                case.id
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_violation_fails_the_seed_profile_on_a_named_case() {
    let server = scripted::start(Script {
        tests_pass_while_bug_on: true,
        ..Script::seed_only()
    })
    .await;
    let report = run(
        &server.base_url,
        Selection::all().with_profile(Profile::Seed),
        SHORT_TIMEOUT,
    )
    .await;
    let (expected, actual, path) = expect_fail(&report, "flow/tests.updated/2");
    assert!(expected.contains("FAIL test"), "{expected}");
    assert!(actual.contains("t1-checkout-valid=PASS"), "{actual}");
    assert_eq!(path, "/payload/tests");
    assert_eq!(report.summary.fail, 1, "{}", failures(&report));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_cases_run_only_with_the_secret_and_catch_a_wrong_one() {
    let server = scripted::start(Script::default()).await;
    let without = run(
        &server.base_url,
        Selection::prefixes(["webhook/"]),
        SHORT_TIMEOUT,
    )
    .await;
    assert!(without.cases.is_empty(), "{}", failures(&without));
    let with = run_with_secret(
        &server.base_url,
        Selection::prefixes(["webhook/"]),
        SHORT_TIMEOUT,
        Some(scripted::WEBHOOK_SECRET),
    )
    .await;
    assert_eq!(with.cases.len(), 8);
    assert_eq!(with.summary.pass, 8, "{}", failures(&with));
    // A runner holding another secret than the server's: the authorised deliveries are refused.
    let wrong = run_with_secret(
        &server.base_url,
        Selection::prefixes(["webhook/"]),
        SHORT_TIMEOUT,
        Some("not-the-server-secret"),
    )
    .await;
    for id in [
        "webhook/datadog/3",
        "webhook/datadog/4",
        "webhook/alertmanager/4",
    ] {
        let (_, actual, path) = expect_fail(&wrong, id);
        assert_eq!(path, "status");
        assert!(actual.starts_with("status 401"), "{actual}");
    }
    // The seed profile has no webhook cases, secret or not.
    let seed = run_with_secret(
        &server.base_url,
        Selection::prefixes(["webhook/"]).with_profile(Profile::Seed),
        SHORT_TIMEOUT,
        Some(scripted::WEBHOOK_SECRET),
    )
    .await;
    assert!(seed.cases.is_empty());
}

#[test]
fn cli_lists_each_case_with_its_profile() {
    let list = |extra: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_fixloop-conformance"))
            .arg("--list")
            .args(extra)
            .output()
            .expect("the CLI runs");
        assert_eq!(output.status.code(), Some(0));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let all = list(&[]);
    assert!(all.contains("flow/copilot.answer/1"), "{all}");
    assert!(
        all.lines()
            .any(|line| line.starts_with("shapes/getStatus/1") && line.contains("[seed]")),
        "{all}"
    );
    assert!(
        all.lines()
            .any(|line| line.starts_with("shapes/getTestRun/2") && line.contains("[fixloop]")),
        "{all}"
    );
    assert!(
        all.lines().any(|line| line.starts_with("webhook/datadog/1")
            && line.contains("[fixloop, needs --webhook-secret]")),
        "{all}"
    );
    let seed = list(&["--profile", "seed"]);
    assert!(seed.contains("shapes/getStatus/1"), "{seed}");
    assert!(!seed.contains("[fixloop"), "{seed}");
    assert!(!seed.contains("webhook/"), "{seed}");
    let unknown = std::process::Command::new(env!("CARGO_BIN_EXE_fixloop-conformance"))
        .args(["--list", "--profile", "strictest"])
        .output()
        .expect("the CLI runs");
    assert_eq!(unknown.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_seed_profile_passes_a_seed_only_server_and_reports_the_profile() {
    let server = scripted::start(Script::seed_only()).await;
    let dir = std::env::temp_dir().join(format!("fixloop-conformance-seed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let json = dir.join("report.json");
    let base_url = server.base_url.clone();
    let json_path = json.clone();
    let output = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_fixloop-conformance"))
                .args([
                    "--base-url",
                    &base_url,
                    "--profile",
                    "seed",
                    "--timeout",
                    "10",
                ])
                .arg("--json")
                .arg(&json_path)
                .env_remove("FIXLOOP_WEBHOOK_SECRET")
                .output()
                .expect("the CLI runs")
        }),
    )
    .await
    .expect("bounded")
    .expect("joined");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("profile seed"), "{stdout}");
    assert!(
        stdout.contains("of profile fixloop not applicable"),
        "{stdout}"
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json written")).expect("JSON");
    assert_eq!(report["profile"], "seed");
    assert_eq!(report["summary"]["fail"], 0);
    let _ = std::fs::remove_dir_all(&dir);
}

// The bound on a whole run against a slow or broken server.

/// A server that accepts connections and never answers (it reads and keeps every connection open).
async fn silent_server() -> (String, tokio::task::JoinHandle<()>) {
    let (listener, base_url) = support::bind_loopback().await;
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    (base_url, task)
}

/// Runs every case of `profile` with the CLI's default timeouts and budget, guarded against a hang.
async fn default_run(base_url: &str, profile: Profile) -> Report {
    let target = Target::new(base_url, Spec::embedded().expect("spec")).expect("target");
    assert_eq!(target.budget, Duration::from_secs(90));
    let selection = Selection::all().with_profile(profile);
    // A hang guard, not a timing assertion: the run itself is bounded by its budget.
    tokio::time::timeout(
        Duration::from_secs(120),
        fixloop_conformance::run(&target, &selection),
    )
    .await
    .expect("the run ends (its budget bounds it)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_ends_the_run_with_named_preconditions() {
    let (base_url, task) = silent_server().await;
    let (seed, fixloop) = tokio::join!(
        default_run(&base_url, Profile::Seed),
        default_run(&base_url, Profile::Fixloop)
    );
    task.abort();
    for report in [&seed, &fixloop] {
        let (_, actual, _) = expect_fail(report, "shapes/getStatus/1");
        assert!(actual.starts_with("no response"), "{actual}");
        expect_fail(report, "ws/connectWebSocket/4");
        for id in [
            "flow/setDemoBug/1",
            "flow/copilot.answer/1",
            "bad_input/setDemoBug/1",
        ] {
            match report.outcome(id) {
                Some(Outcome::Skip { reason }) => assert!(
                    reason.starts_with(
                        "precondition failed: the server did not answer GET /api/status"
                    ),
                    "{id}: {reason}"
                ),
                other => panic!("{id} should be skipped, got {other:?}"),
            }
        }
        assert_eq!(report.summary.fail, 2, "{}", failures(report));
        validate_report(report);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_answers_500_to_everything_ends_the_run_with_named_preconditions() {
    let router = axum::Router::new().fallback(|| async {
        (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "internal server error",
        )
    });
    let server = support::serve_on_loopback(router).await;
    let (seed, fixloop) = tokio::join!(
        default_run(&server.base_url, Profile::Seed),
        default_run(&server.base_url, Profile::Fixloop)
    );
    for report in [&seed, &fixloop] {
        let (_, actual, _) = expect_fail(report, "shapes/getStatus/1");
        assert!(actual.starts_with("status 500"), "{actual}");
        let (_, actual, _) = expect_fail(report, "bad_input/setDemoBug/1");
        assert!(actual.starts_with("status 500"), "{actual}");
        expect_fail(report, "ws/connectWebSocket/4");
        for id in [
            "flow/setDemoBug/1",
            "flow/tests.updated/2",
            "ws/WsEnvelope/1",
        ] {
            match report.outcome(id) {
                Some(Outcome::Skip { reason }) => assert!(
                    reason.starts_with("precondition failed: no WebSocket connection")
                        && reason.contains("ws/connectWebSocket/4"),
                    "{id}: {reason}"
                ),
                other => panic!("{id} should be skipped, got {other:?}"),
            }
        }
        assert_eq!(report.summary.pass, 0, "{}", failures(report));
        validate_report(report);
    }
}

/// Issue 22: against a backend shaped like the seed's (seed only, `{"detail"}` errors, no run starting by itself),
/// the seed profile at the CLI's default timeouts and budget finishes within 60 s with every case judged: the flow
/// waits only briefly for a run the seed does not promise, then starts one through `POST /api/tests/run`, so no
/// case is skipped because an earlier one used the budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_profile_judges_a_seed_shaped_backend_within_60_s() {
    let server = scripted::start(Script::seed_backend()).await;
    let started = std::time::Instant::now();
    let report = default_run(&server.base_url, Profile::Seed).await;
    let elapsed = started.elapsed();
    eprintln!(
        "seed profile against the seed-shaped backend: {} cases, {} passed, {} failed, {} skipped in {:.1} s",
        report.cases.len(),
        report.summary.pass,
        report.summary.fail,
        report.summary.skip,
        elapsed.as_secs_f64()
    );
    assert!(elapsed <= Duration::from_secs(60), "took {elapsed:?}");
    let unjudged: Vec<String> = report
        .cases
        .iter()
        .filter_map(|case| match &case.outcome {
            Outcome::Skip { reason } if !reason.contains("needs a manual /api/tests/run") => {
                Some(format!("{}: {reason}", case.id))
            }
            _ => None,
        })
        .collect();
    assert!(unjudged.is_empty(), "{unjudged:#?}");
    assert_eq!(report.summary.fail, 0, "{}", failures(&report));
    let manual = Some(Outcome::skip("needs a manual /api/tests/run"));
    assert_eq!(report.outcome("flow/tests.updated/1"), manual.as_ref());
    // Under --strict the same run does not pass: a skip is not a pass.
    let strict = Report {
        strict: true,
        ..report
    };
    assert!(!strict.passed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_past_its_budget_skips_what_it_did_not_judge() {
    // A server that never opens an incident: every flow wait would take the whole flow timeout.
    let server = scripted::start(Script {
        detects_by_itself: false,
        ..Script::default()
    })
    .await;
    let mut target =
        Target::new(&server.base_url, Spec::embedded().expect("spec")).expect("target");
    target.flow_timeout = Duration::from_secs(30);
    target.budget = Duration::from_secs(4);
    let report = tokio::time::timeout(
        Duration::from_secs(60),
        fixloop_conformance::run(&target, &Selection::prefixes(["flow/"])),
    )
    .await
    .expect("the budget bounds the run");
    match report.outcome("flow/incident.created/1") {
        Some(Outcome::Skip { reason }) => {
            assert!(reason.contains("budget of 4 s ran out"), "{reason}");
        }
        other => panic!("flow/incident.created/1 should be skipped, got {other:?}"),
    }
    assert_eq!(report.summary.fail, 0, "{}", failures(&report));
}

/// The reference server's body check and the spec's request schema draw the same line on every one-character
/// text: what the spec allows the server accepts, and what the server rejects the spec forbids. A fuzzer found
/// them apart once (a question of only `"\r"` was schema-valid and got 422).
#[test]
fn reference_server_and_spec_agree_on_which_texts_are_blank() {
    use fixloop_contract::{CopilotAskRequest, RunTestsRequest};
    use fixloop_server::error::parse_body;

    let spec = Spec::embedded().expect("spec");
    // Every whitespace character is at or below U+3000: all of those, and a sample beyond (the contract's own
    // test checks the pattern on the whole Basic Multilingual Plane).
    let texts = (0..=0x3000_u32)
        .chain((0x3001..=u32::from(char::MAX)).step_by(97))
        .filter_map(char::from_u32)
        .map(String::from)
        .chain(["".into(), " \r\n\t".into(), " why? ".into()]);
    let mut disagreements = Vec::new();
    for text in texts {
        for (schema, key) in [
            ("CopilotAskRequest", "question"),
            ("RunTestsRequest", "incident_id"),
        ] {
            let body = serde_json::json!({ key: text });
            let spec_allows = spec.check_component(schema, &body).is_empty();
            let bytes = body.to_string();
            let server_accepts = match schema {
                "CopilotAskRequest" => parse_body::<CopilotAskRequest>(bytes.as_bytes()).is_ok(),
                _ => parse_body::<RunTestsRequest>(bytes.as_bytes()).is_ok(),
            };
            if spec_allows != server_accepts {
                disagreements.push(format!(
                    "{schema}.{key} = {text:?}: spec allows {spec_allows}, server accepts {server_accepts}"
                ));
            }
        }
    }
    assert!(disagreements.is_empty(), "{disagreements:#?}");
}
