//! Every built-in scenario played through the real server and engine (`start_scenario`, ephemeral ports, speed
//! 10), watched by a WebSocket client on a real loopback socket: each must produce its story's events in order.
//! And the `fixloop demo --scenario` command line: unknown names, broken files and nonsense speeds are refused
//! with a message naming the problem, before anything starts.
//!
//! The stories are timed in seconds of the story, so the assertions are ordered subsequences of milestones (a
//! status, a run's end, a plan) rather than exact traces: extra `tests.updated` and `system.status` events between
//! milestones are expected and ignored.

use std::process::Stdio;
use std::time::Duration;

use fixloop_server::{Scenario, ScenarioOptions, Speed, start_scenario};
use futures_util::StreamExt;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The speed the stories are played at: the longest (relapse, 60 s) takes about 6 s.
const SPEED: f64 = 10.0;
/// The longest a whole story may take to show its milestones.
const STORY: Duration = Duration::from_secs(40);
/// The longest one run of the binary may take.
const CLI: Duration = Duration::from_secs(30);

/// One expected event: a description (for failure messages) and a predicate on the envelope.
struct Milestone {
    what: &'static str,
    matches: Box<dyn Fn(&Value) -> bool + Send>,
}

fn milestone(what: &'static str, matches: impl Fn(&Value) -> bool + Send + 'static) -> Milestone {
    Milestone {
        what,
        matches: Box::new(matches),
    }
}

/// A `system.status` with this status.
fn status(what: &'static str) -> Milestone {
    milestone(what, move |event| {
        event["type"] == "system.status" && event["payload"]["status"] == what
    })
}

/// An event of this type.
fn event(kind: &'static str) -> Milestone {
    milestone(kind, move |event| event["type"] == kind)
}

/// A `tests.updated` whose run has this status.
fn run(what: &'static str, status: &'static str) -> Milestone {
    milestone(what, move |event| {
        event["type"] == "tests.updated" && event["payload"]["status"] == status
    })
}

/// Starts the built-in `name` at [`SPEED`], connects a WebSocket client, and reads events until `expected` has
/// been seen in order (failing with what was seen if the story does not get there within [`STORY`]). Returns every
/// event read and the running scenario.
async fn play(
    name: &str,
    expected: Vec<Milestone>,
) -> (Vec<Value>, fixloop_server::RunningScenario) {
    play_scenario(
        &Scenario::builtin(name).expect("a built-in scenario"),
        expected,
    )
    .await
}

/// As [`play`], for any scenario.
async fn play_scenario(
    scenario: &Scenario,
    expected: Vec<Milestone>,
) -> (Vec<Value>, fixloop_server::RunningScenario) {
    let name = &scenario.file.name;
    let speed = Speed::new(SPEED).expect("a valid speed");
    let running = tokio::time::timeout(
        STORY,
        start_scenario(scenario, ScenarioOptions::ephemeral(speed)),
    )
    .await
    .expect("the scenario starts in time")
    .expect("the scenario starts");
    let ws_url = format!(
        "{}/ws",
        running.orchestrator_url.replacen("http://", "ws://", 1)
    );
    let (mut socket, _) = tokio::time::timeout(STORY, connect_async(ws_url))
        .await
        .expect("the WebSocket connects in time")
        .expect("the WebSocket connects");
    let mut log = Vec::new();
    let reading = read_milestones(&mut socket, &mut log, &expected);
    if tokio::time::timeout(STORY, reading).await.is_err() {
        let seen: Vec<String> = log.iter().map(label).collect();
        panic!(
            "{name}: the story did not reach every milestone within {STORY:?}; expected {:?}; seen {seen:#?}",
            expected.iter().map(|m| m.what).collect::<Vec<_>>()
        );
    }
    (log, running)
}

/// Shuts the scenario down, within a bound.
async fn stop(running: fixloop_server::RunningScenario) {
    tokio::time::timeout(STORY, running.shutdown())
        .await
        .expect("the scenario stops in time");
}

/// Reads events into `log` until every milestone has matched, in order.
async fn read_milestones(socket: &mut Socket, log: &mut Vec<Value>, expected: &[Milestone]) {
    let mut next = 0;
    while next < expected.len() {
        let frame = socket
            .next()
            .await
            .expect("the socket stays open")
            .expect("no socket error");
        let Message::Text(text) = frame else {
            continue;
        };
        let envelope: Value = serde_json::from_str(text.as_str()).expect("events are JSON");
        serde_json::from_value::<fixloop_contract::WsEnvelope>(envelope.clone())
            .expect("events are WsEnvelopes");
        if (expected[next].matches)(&envelope) {
            next += 1;
        }
        log.push(envelope);
    }
}

/// A short label of an event, for failure messages.
fn label(event: &Value) -> String {
    let payload = &event["payload"];
    match event["type"].as_str() {
        Some("system.status") => format!(
            "status {} {}% {}",
            payload["status"], payload["error_rate_5m"], payload["active_incident_id"]
        ),
        Some("tests.updated") => format!("run {} {}", payload["run_id"], payload["status"]),
        Some(other) => other.to_owned(),
        None => event.to_string(),
    }
}

/// The events of this type.
fn all_of<'a>(log: &'a [Value], kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    log.iter().filter(move |event| event["type"] == kind)
}

/// Every test result of every `tests.updated` in `log`.
fn test_results(log: &[Value]) -> impl Iterator<Item = &Value> + '_ {
    all_of(log, "tests.updated")
        .flat_map(|event| event["payload"]["tests"].as_array().into_iter().flatten())
}

/// The story's opening, shared by the stories that start with checkout failing.
fn opening() -> Vec<Milestone> {
    vec![
        status("HEALTHY"),
        status("INCIDENT_ACTIVE"),
        event("incident.created"),
        milestone("plan.generated with 5 tests", |event| {
            event["type"] == "plan.generated"
                && event["payload"]["plan"]["items"].as_array().map(Vec::len) == Some(5)
        }),
        status("VALIDATING"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_recovery_plays_from_healthy_through_a_failing_run_to_recovered_and_healthy() {
    let mut expected = opening();
    expected.extend([
        run("a failing run", "FAILED"),
        run("a passing run", "COMPLETED"),
        status("RECOVERED"),
        status("HEALTHY"),
    ]);
    let (log, running) = play("outage-recovery", expected).await;
    let incidents: Vec<&Value> = all_of(&log, "incident.created").collect();
    assert_eq!(incidents.len(), 1, "one incident");
    let incident_id = &incidents[0]["payload"]["incident_id"];
    assert!(
        all_of(&log, "tests.updated").all(|event| event["payload"]["incident_id"] == *incident_id),
        "every run validates the one incident"
    );
    // The failing runs fail on checkout (the simulated shop's bug), with the evaluator's explanation.
    assert!(
        test_results(&log).any(|test| test["test_id"] == "t1-checkout-valid"
            && test["status"] == "FAIL"
            && test["details"]
                .as_str()
                .is_some_and(|details| details.contains("500"))),
        "checkout fails with a 500 while the bug is on"
    );
    stop(running).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flapping_keeps_validating_with_passing_runs_until_the_signals_settle() {
    let mut expected = opening();
    expected.extend([
        run("a passing run", "COMPLETED"),
        milestone("a VALIDATING status with hot signals after it", |event| {
            event["type"] == "system.status"
                && event["payload"]["status"] == "VALIDATING"
                && event["payload"]["error_rate_5m"].as_f64() > Some(5.0)
        }),
        run("another passing run", "COMPLETED"),
        status("RECOVERED"),
        status("HEALTHY"),
    ]);
    let (log, running) = play("flapping", expected).await;
    assert!(
        all_of(&log, "tests.updated").all(|event| event["payload"]["status"] != "FAILED"),
        "the shop works: every run passes, only the signals flap"
    );
    // RECOVERED came only once, at the end: never while the service flapped.
    assert_eq!(
        all_of(&log, "system.status")
            .filter(|event| event["payload"]["status"] == "RECOVERED")
            .count(),
        1
    );
    stop(running).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relapse_within_the_soak_window_reopens_the_same_incident() {
    let mut expected = opening();
    expected.extend([
        status("RECOVERED"),
        status("VALIDATING"),
        run("a failing rerun after the relapse", "FAILED"),
        status("RECOVERED"),
        status("HEALTHY"),
    ]);
    let (log, running) = play("relapse", expected).await;
    let incidents: Vec<&Value> = all_of(&log, "incident.created").collect();
    assert_eq!(
        incidents.len(),
        1,
        "the relapse reopens, it does not open another"
    );
    let incident_id = &incidents[0]["payload"]["incident_id"];
    let recovered = log
        .iter()
        .position(|event| event["payload"]["status"] == "RECOVERED")
        .expect("a first recovery");
    let reopened = log[recovered..]
        .iter()
        .find(|event| {
            event["type"] == "system.status" && event["payload"]["status"] == "VALIDATING"
        })
        .expect("VALIDATING after the first recovery");
    assert_eq!(reopened["payload"]["active_incident_id"], *incident_id);
    assert_eq!(
        log[recovered]["payload"]["active_incident_id"],
        *incident_id
    );
    stop(running).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_rejected_twice_falls_back_to_the_rule_planner() {
    let mut expected = opening();
    expected.extend([status("RECOVERED"), status("HEALTHY")]);
    let (log, running) = play("plan-rejected-twice", expected).await;
    let configured = running.fakes.planner.calls();
    let rules = running.fakes.rule_planner.calls();
    assert_eq!(
        configured
            .iter()
            .map(|call| call.attempt)
            .collect::<Vec<_>>(),
        [1, 2],
        "the configured planner is asked twice"
    );
    assert!(
        !configured[1].previous_violations.is_empty(),
        "the second request carries the first candidate's violations"
    );
    assert_eq!(rules.len(), 1, "then the rule planner, once");
    assert_eq!(rules[0].attempt, 3);
    // The plan that was generated is the rule planner's (the engine restamps its id and time, nothing else).
    let plans: Vec<&Value> = all_of(&log, "plan.generated").collect();
    assert_eq!(plans.len(), 1, "rejected candidates are never published");
    let rule_plan =
        fixloop_core::rule_plan(&rules[0].context, rules[0].plan_id.clone(), rules[0].now);
    let published: fixloop_contract::Plan =
        serde_json::from_value(plans[0]["payload"]["plan"].clone()).expect("a plan");
    assert_eq!(published.items, rule_plan.items);
    stop(running).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_run_fails_at_the_engine_deadline_with_the_reason_in_its_details() {
    let mut expected = opening();
    expected.extend([
        milestone("a FAILED run with the deadline in its details", |event| {
            event["type"] == "tests.updated"
                && event["payload"]["status"] == "FAILED"
                && event["payload"]["tests"].as_array().is_some_and(|tests| {
                    tests.iter().all(|test| {
                        test["status"] == "FAIL"
                            && test["details"]
                                .as_str()
                                .is_some_and(|details| details.contains("deadline"))
                    })
                })
        }),
        run("a passing run once the runner answers", "COMPLETED"),
        status("RECOVERED"),
        status("HEALTHY"),
    ]);
    let (log, running) = play("run-timeout", expected).await;
    // The deadline is the scenario's 8 s at speed 10, reported as such.
    assert!(
        test_results(&log).any(|test| test["details"]
            .as_str()
            .is_some_and(|details| details.contains("run exceeded its deadline of 0.8 s"))),
        "{:#?}",
        log.iter().map(label).collect::<Vec<_>>()
    );
    stop(running).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dark_metrics_keep_healthy_with_signals_degraded_until_they_return() {
    let expected = vec![
        status("HEALTHY"),
        milestone("HEALTHY with signals_degraded", |event| {
            event["type"] == "system.status"
                && event["payload"]["status"] == "HEALTHY"
                && event["payload"]["signals_degraded"].is_string()
        }),
        milestone("HEALTHY without signals_degraded", |event| {
            event["type"] == "system.status"
                && event["payload"]["status"] == "HEALTHY"
                && event["payload"]["signals_degraded"].is_null()
        }),
    ];
    let (log, running) = play("signals-degraded", expected).await;
    assert!(
        all_of(&log, "incident.created").next().is_none(),
        "passing probes open no incident"
    );
    assert!(
        !running.fakes.prober.calls().is_empty(),
        "FixLoop probed the shop itself"
    );
    stop(running).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scenario_file_plays_its_own_readings_and_forced_failures() {
    let path =
        std::env::temp_dir().join(format!("fixloop-scenario-{}-own.json", std::process::id()));
    std::fs::write(
        &path,
        r#"{
          "name": "catalog-outage",
          "description": "The catalog answers 503 from 0.5 s, and its test fails with a forced reason.",
          "steps": [
            { "at_secs": 0, "signals": "healthy" },
            { "at_secs": 0.5, "note": "catalog down",
              "signals": { "error_rate_percent": 50, "requests": 100, "top_error": "GET /catalog -> 503" },
              "fail": { "t4-catalog": "catalog answered 503" } }
          ]
        }"#,
    )
    .expect("write a temporary scenario");
    let file = path.to_str().expect("a utf-8 path").to_owned();
    let loaded = Scenario::load(&file);
    let _ = std::fs::remove_file(&path);
    let scenario = loaded.expect("a valid scenario file loads");
    assert_eq!(scenario.origin, file);
    let expected = vec![
        status("HEALTHY"),
        milestone("INCIDENT_ACTIVE at 50%", |event| {
            event["type"] == "system.status"
                && event["payload"]["status"] == "INCIDENT_ACTIVE"
                && event["payload"]["error_rate_5m"].as_f64() == Some(50.0)
        }),
        milestone("a plan with the catalog test first", |event| {
            event["type"] == "plan.generated"
                && event["payload"]["plan"]["items"][0]["test_id"] == "t4-catalog"
        }),
        milestone("a FAILED run with the forced reason", |event| {
            event["type"] == "tests.updated"
                && event["payload"]["status"] == "FAILED"
                && event["payload"]["tests"].as_array().is_some_and(|tests| {
                    tests.iter().any(|test| {
                        test["test_id"] == "t4-catalog" && test["details"] == "catalog answered 503"
                    }) && tests
                        .iter()
                        .filter(|test| test["test_id"] != "t4-catalog")
                        .all(|test| test["status"] == "PASS")
                })
        }),
    ];
    let (_, running) = play_scenario(&scenario, expected).await;
    stop(running).await;
}

/// What one run of the binary did.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `fixloop ARGS` in the crate's directory with only `PATH` in its environment, on ephemeral ports.
async fn fixloop(args: &[&str]) -> Run {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_fixloop"));
    command
        .args(args)
        .args(["--port", "0", "--demo-port", "0"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_clear()
        .envs(std::env::var_os("PATH").map(|path| ("PATH", path)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command.spawn().expect("start the fixloop binary");
    let output = tokio::time::timeout(CLI, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("fixloop {args:?} did not finish within {CLI:?}"))
        .expect("wait for the fixloop binary");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8(output.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(output.stderr).expect("utf-8 stderr"),
    }
}

#[tokio::test]
async fn an_unknown_scenario_name_exits_non_zero_naming_it_and_the_builtins() {
    let run = fixloop(&["demo", "--scenario", "no-such-story"]).await;
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(run.stdout.is_empty(), "nothing started: {run:#?}");
    assert!(
        run.stderr.contains("unknown scenario \"no-such-story\"")
            && run
                .stderr
                .contains("outage-recovery, flapping, relapse, plan-rejected-twice, run-timeout"),
        "{run:#?}"
    );
}

#[tokio::test]
async fn a_scenario_file_that_fails_the_schema_exits_non_zero_with_its_path_and_problems() {
    let path =
        std::env::temp_dir().join(format!("fixloop-scenario-{}-bad.json", std::process::id()));
    std::fs::write(
        &path,
        r#"{"name": "bad", "description": "d", "steps": [{"at_secs": 1, "signals": "sunny", "colour": 1}]}"#,
    )
    .expect("write a temporary scenario");
    let file = path.to_str().expect("a utf-8 path").to_owned();
    let run = fixloop(&["demo", "--scenario", &file]).await;
    let _ = std::fs::remove_file(&path);
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(run.stdout.is_empty(), "nothing started: {run:#?}");
    assert!(
        run.stderr
            .contains(&format!("{file}: not a valid scenario (2 problems)")),
        "{run:#?}"
    );
    assert!(run.stderr.contains("\n  /steps/0/signals: "), "{run:#?}");
    assert!(
        run.stderr.contains("\n  /steps/0: ") && run.stderr.contains("colour"),
        "{run:#?}"
    );
}

#[tokio::test]
async fn a_nonsense_speed_exits_non_zero_naming_the_flag() {
    // Regression: 1e-20 passed the check and then panicked ("cannot convert float seconds to Duration").
    for speed in ["0", "-2", "fast", "1e-20", "NaN", "inf", "1e308"] {
        let run = fixloop(&["demo", "--scenario", "outage-recovery", "--speed", speed]).await;
        assert_eq!(run.code, Some(2), "{speed}: {run:#?}");
        assert!(run.stdout.is_empty(), "nothing started: {run:#?}");
        assert!(
            run.stderr
                .contains("--speed must be a number from 0.01 to 100"),
            "{speed}: {run:#?}"
        );
        assert!(!run.stderr.contains("panicked"), "{speed}: {run:#?}");
    }
    let run = fixloop(&["demo", "--speed", "10"]).await;
    assert_eq!(run.code, Some(2), "--speed without --scenario: {run:#?}");
    assert!(run.stderr.contains("--scenario"), "{run:#?}");
}
