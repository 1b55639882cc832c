//! Budgets and engine facts through the real driver (issue 14): a run deadline that follows a slow runner, the
//! context source's findings in the plan request, the engine's plan ids, and run metrics read from the engine.

use std::sync::Arc;
use std::time::Duration;

use fixloop_adapters::{ContextFindings, fake};
use fixloop_contract::Link;
use fixloop_server::runtime::tuning::{check_run_deadline, follow_runner};
use serde_json::Value;

use crate::support::{TestApp, WAIT};

/// No demo service: the fake runner simulates the one the plan targets.
const NO_DEMO: &str = "http://127.0.0.1:9";

/// How many tests of a `tests.updated` event have passed.
fn passes(event: &Value) -> usize {
    event["payload"]["tests"]
        .as_array()
        .expect("tests")
        .iter()
        .filter(|test| test["status"] == "PASS")
        .count()
}

/// Regression: the engine's run deadline was fixed by the mode (30 s in the demo) whatever the runner, so a runner
/// slower than that (TestSprite's 10-20 minute cycles) had every run cancelled. Here the mode's deadline (1 s) is
/// shorter than the runner's run (five verdicts 300 ms apart); following the runner, the run finishes and each
/// verdict reaches `tests.updated` as it arrives.
#[tokio::test]
async fn a_slow_runner_finishes_under_a_deadline_that_follows_it_and_reports_each_test() {
    let app = TestApp::start_tuned(
        NO_DEMO,
        |_| {},
        |driver, ports| {
            driver.engine.run_deadline = Duration::from_secs(1);
            let runner = ports.runner.expectations();
            follow_runner(&mut driver.engine, false, runner);
            check_run_deadline(&driver.engine, runner, "fake").expect("the deadline fits");
        },
    );
    app.runner.set_delay(Duration::from_millis(300));
    let mut events = app.events().await;
    app.open_incident_with_plan().await;
    let mut seen = Vec::new();
    let finished = loop {
        let event = events.next_of("tests.updated").await;
        seen.push(passes(&event));
        if event["payload"]["status"] != "RUNNING" {
            break event;
        }
    };
    assert_eq!(finished["payload"]["status"], "COMPLETED", "{finished}");
    for count in 1..=5 {
        assert!(
            seen.contains(&count),
            "a tests.updated with {count} PASS (per-test progress): {seen:?}"
        );
    }
    app.stop().await;
}

/// What the context source knows: a top error and a log link.
fn log_findings() -> ContextFindings {
    ContextFindings {
        top_error: Some("demo-checkout: payment provider timeout".to_owned()),
        evidence_links: vec![Link {
            label: "Logs".to_owned(),
            url: "https://logs.example/checkout".to_owned(),
        }],
        notes: vec!["ERROR payment provider timeout".to_owned()],
    }
}

#[tokio::test]
async fn the_context_sources_findings_reach_the_planner_with_the_signals() {
    let app = TestApp::start_tuned(
        NO_DEMO,
        |_| {},
        |_, ports| {
            ports.context = Some(Arc::new(fake::FakeContextSource::with_findings(
                log_findings(),
            )));
        },
    );
    // The signals have no top error and no links: the context source's are used.
    app.signals.set_reading(fixloop_adapters::SignalReading {
        error_rate: Some(0.3),
        p95_latency_ms: Some(900.0),
        requests: 100,
        top_error: None,
        evidence_links: Vec::new(),
    });
    app.open_incident_with_plan().await;
    let calls = app.planner.calls();
    let request = calls.last().expect("planned");
    assert_eq!(
        request.context.signal.top_error.as_deref(),
        Some("demo-checkout: payment provider timeout")
    );
    assert_eq!(
        request
            .context
            .evidence_links
            .iter()
            .map(|link| link.url.as_str())
            .collect::<Vec<_>>(),
        ["https://logs.example/checkout"]
    );
    app.stop().await;
}

/// A hung context source holds the plan for the engine's context deadline at most, and the signals' context is used.
#[tokio::test]
async fn a_hung_context_source_costs_at_most_the_context_deadline() {
    let app = TestApp::start_tuned(
        NO_DEMO,
        |_| {},
        |driver, ports| {
            // Far longer than the context deadline: the source never answers in time.
            let hung = fake::FakeContextSource::with_findings(log_findings());
            hung.set_delay(Duration::from_secs(3600));
            ports.context = Some(Arc::new(hung));
            driver.engine.context_deadline = Duration::from_millis(200);
        },
    );
    app.signals.set_reading(fake::erroring_reading());
    app.open_incident_with_plan().await;
    let calls = app.planner.calls();
    let request = calls.last().expect("planned despite the hung source");
    assert_eq!(
        request.context.signal.top_error.as_deref(),
        Some("POST /checkout -> 500 payment provider timeout"),
        "the signals' context"
    );
    app.stop().await;
}

/// Regression: the driver numbered plan requests itself (`plan-<prefix>-<n>`), an id the engine then overwrote; the
/// id a planner is asked for is now the engine's, and it is the id the plan is published with.
#[tokio::test]
async fn the_planner_is_asked_for_the_id_the_engine_publishes() {
    let app = TestApp::start(NO_DEMO);
    let mut events = app.events().await;
    app.open_incident_with_plan().await;
    let generated = events.next_of("plan.generated").await;
    let calls = app.planner.calls();
    assert_eq!(
        calls.last().expect("planned").plan_id.as_str(),
        generated["payload"]["plan"]["plan_id"]
    );
    app.stop().await;
}

/// The value of the sample `name` in a `/metrics` page.
fn sample(page: &str, name: &str) -> f64 {
    page.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} in {page}"))
}

/// Runs are counted from the engine's facts: started when the engine asks for one, finished with the outcome the
/// engine recorded, whether the runner answered or the engine cancelled it (here: the incident is closed while a
/// held run is in flight).
#[tokio::test]
async fn run_metrics_come_from_the_engine_answered_or_cancelled() {
    let app = TestApp::start(NO_DEMO);
    let mut events = app.events().await;
    app.open_incident_with_plan().await;
    let finished = loop {
        let event = events.next_of("tests.updated").await;
        if event["payload"]["status"] != "RUNNING" {
            break event;
        }
    };
    assert_eq!(finished["payload"]["status"], "COMPLETED");
    app.runner.hold();
    let (status, _) = app
        .post_json(
            "/api/tests/run",
            &serde_json::json!({"incident_id": finished["payload"]["incident_id"]}),
        )
        .await;
    assert!(status.is_success(), "{status}");
    let (status, _) = app
        .post_json(
            "/api/incidents/simulate",
            &serde_json::json!({"mode": "INCIDENT_OFF"}),
        )
        .await;
    assert!(status.is_success(), "{status}");
    let page = app.text("/metrics").await;
    assert_eq!(sample(&page, "fixloop_runs_started_total"), 2.0, "{page}");
    assert_eq!(
        sample(&page, "fixloop_runs_finished_total{status=\"COMPLETED\"}"),
        1.0
    );
    assert_eq!(
        sample(&page, "fixloop_runs_finished_total{status=\"FAILED\"}"),
        1.0
    );
    app.stop().await;
}

/// Sends `request` and reads its JSON answer, in time.
async fn json(request: reqwest::RequestBuilder) -> Value {
    tokio::time::timeout(WAIT, async { request.send().await?.json().await })
        .await
        .expect("answer in time")
        .expect("a JSON answer")
}

/// The measurement, as a test: with `MINIMAX_BASE_URL` at a server that accepts connections and never
/// answers, `fixloop demo` used to publish no plan for 90 s (three attempts of 30 s). Now the LLM's attempts share
/// the planning budget (1 s here), the rule planner's plan is published once it is spent, and the incident's
/// timeline says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_llm_costs_the_demo_its_planning_budget_then_the_rule_plan_is_published() {
    let hung = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hung_url = format!("http://{}", hung.local_addr().unwrap());
    // Accepts every connection and keeps it open, answering nothing.
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = hung.accept().await {
            held.push(socket);
        }
    });
    let env = std::collections::HashMap::from([
        ("MINIMAX_API_KEY".to_owned(), "mm-test-key".to_owned()),
        ("MINIMAX_BASE_URL".to_owned(), hung_url),
        ("FIXLOOP_PLAN_BUDGET_SECS".to_owned(), "1".to_owned()),
    ]);
    let config = fixloop_server::Config::from_env_map(&env).unwrap();
    let demo = fixloop_server::start_demo(fixloop_server::DemoOptions {
        config,
        traffic: false,
        ..fixloop_server::DemoOptions::ephemeral()
    })
    .await
    .expect("the demo starts");
    let api = demo.orchestrator_url.clone();
    let client = fixloop_adapters::default_client();
    let ws_url = format!("{}/ws", api.replacen("http://", "ws://", 1));
    let (mut socket, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(&ws_url))
        .await
        .expect("connect in time")
        .expect("the websocket handshake succeeds");
    let card = json(
        client
            .post(format!("{api}/api/incidents/simulate"))
            .json(&serde_json::json!({"mode": "INCIDENT_ON"})),
    )
    .await;
    let incident_id = card["incident_id"]
        .as_str()
        .expect("an incident")
        .to_owned();
    let plan = tokio::time::timeout(WAIT, async {
        use futures_util::StreamExt;
        while let Some(message) = socket.next().await {
            let Ok(tokio_tungstenite::tungstenite::Message::Text(text)) = message else {
                continue;
            };
            let event: Value = serde_json::from_str(&text).expect("JSON events");
            if event["type"] == "plan.generated" {
                return event;
            }
        }
        panic!("the stream ended before plan.generated");
    })
    .await
    .expect("a plan within the budget, not after three LLM deadlines");
    assert_eq!(plan["payload"]["incident_id"], incident_id.as_str());
    assert_eq!(
        plan["payload"]["plan"]["items"].as_array().map(Vec::len),
        Some(5)
    );
    let detail = json(client.get(format!("{api}/api/incidents/{incident_id}"))).await;
    let notes: Vec<&str> = detail["timeline"]
        .as_array()
        .expect("a timeline")
        .iter()
        .filter(|entry| entry["kind"] == "PLAN_REJECTED")
        .filter_map(|entry| entry["summary"].as_str())
        .collect();
    assert!(
        notes
            .iter()
            .any(|note| note.contains("planning budget of 1 s spent")),
        "{notes:?}"
    );
    demo.shutdown().await;
    holder.abort();
}
