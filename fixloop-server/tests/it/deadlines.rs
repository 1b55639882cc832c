//! Budgets and engine facts through the real driver (issue 14): a run deadline that follows a slow runner, the
//! context source's findings in the plan request, the engine's plan ids, and run metrics read from the engine.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fixloop_adapters::{AdapterError, ContextFindings, ContextQuery, ContextSource, fake};
use fixloop_contract::Link;
use fixloop_server::app::{check_run_deadline, follow_runner};
use serde_json::Value;

use crate::support::TestApp;

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

/// A context source that knows a top error and a log link, and says so in a note.
#[derive(Debug)]
struct LogsSource;

#[async_trait]
impl ContextSource for LogsSource {
    async fn gather(&self, query: &ContextQuery) -> Result<ContextFindings, AdapterError> {
        Ok(ContextFindings {
            top_error: Some(format!("{}: payment provider timeout", query.service)),
            evidence_links: vec![Link {
                label: "Logs".to_owned(),
                url: "https://logs.example/checkout".to_owned(),
            }],
            notes: vec!["ERROR payment provider timeout".to_owned()],
        })
    }
}

/// A context source that never answers.
#[derive(Debug)]
struct HungSource;

#[async_trait]
impl ContextSource for HungSource {
    async fn gather(&self, _query: &ContextQuery) -> Result<ContextFindings, AdapterError> {
        std::future::pending().await
    }
}

#[tokio::test]
async fn the_context_sources_findings_reach_the_planner_with_the_signals() {
    let app = TestApp::start_tuned(
        NO_DEMO,
        |_| {},
        |_, ports| ports.context = Some(Arc::new(LogsSource)),
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
        request.incident.top_error.as_deref(),
        Some("demo-checkout: payment provider timeout")
    );
    assert_eq!(
        request
            .incident
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
            ports.context = Some(Arc::new(HungSource));
            driver.engine.context_deadline = Duration::from_millis(200);
        },
    );
    app.signals.set_reading(fake::erroring_reading());
    app.open_incident_with_plan().await;
    let calls = app.planner.calls();
    let request = calls.last().expect("planned despite the hung source");
    assert_eq!(
        request.incident.top_error.as_deref(),
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
