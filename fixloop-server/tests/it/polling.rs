//! The engine's own polling through the driver: the signal source is read when the engine asks and over the window
//! it asks (the time since the previous measurement, not the detection window), a breach opens an incident, and an
//! incident whose signals cannot be judged says it needs a human (`GET
//! /api/services/{name}`'s blocker and `/metrics`, and `incident.escalated`, once, to `events=remediation` clients).

use std::time::Duration;

use axum::http::StatusCode;
use fixloop_adapters::ErrorKind;
use fixloop_adapters::fake::erroring_reading;

use crate::support::{TestApp, WAIT};

/// The demo shop's address in these tests: never contacted (the ports are fakes).
const NO_DEMO: &str = "http://127.0.0.1:9";

#[tokio::test]
async fn the_driver_reads_over_the_window_the_engine_asks_and_the_breach_opens_an_incident() {
    let app = TestApp::start_tuned(
        NO_DEMO,
        |_| {},
        |config, _| {
            config.engine = config
                .engine
                .clone()
                .with_poll_interval(Duration::from_millis(300));
        },
    );
    let mut events = app.events().await;
    app.signals.set_reading(erroring_reading());
    let created = events.next_of("incident.created").await;
    assert!(created["payload"]["incident_id"].is_string(), "{created}");
    let windows = app.signals.calls();
    // Every periodic read covered the time since the previous one (a poll interval plus a slack), never the demo's
    // 10 s detection window; the context fetch alone reads the detection window.
    let short = windows
        .iter()
        .filter(|window| **window < Duration::from_secs(1))
        .count();
    assert!(short >= 2, "{windows:?}");
    assert!(
        windows
            .iter()
            .all(|window| *window < Duration::from_secs(1) || *window == Duration::from_secs(10)),
        "{windows:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_incident_whose_signals_cannot_be_judged_needs_a_human() {
    let app = TestApp::start_tuned(
        NO_DEMO,
        |_| {},
        |config, _| {
            config.engine = config
                .engine
                .clone()
                .with_poll_interval(Duration::from_millis(100));
            config.engine.inconclusive_limit = 3;
        },
    );
    // The metrics are gone: every read fails (the fake prober's probes pass).
    app.signals.set_failure(Some(ErrorKind::Unavailable));
    app.open_incident_with_plan().await;
    let waited = tokio::time::timeout(WAIT, async {
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        loop {
            tick.tick().await;
            let (status, service) = app.get("/api/services/demo-checkout").await;
            assert_eq!(status, StatusCode::OK);
            let page = app.text("/metrics").await;
            let blocker = service["recovery_blocker"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if page.contains("fixloop_incident_needs_human{service=\"demo-checkout\"} 1") {
                return (blocker, page);
            }
        }
    })
    .await;
    let (blocker, page) = waited.expect("the incident needed a human in time");
    assert!(blocker.starts_with("needs a human"), "{blocker}");
    assert!(blocker.contains("inconclusive"), "{blocker}");
    assert!(
        page.contains("fixloop_incidents_needing_human_total 1"),
        "{page}"
    );
    let (_, status) = app.get("/api/status").await;
    assert_ne!(status["status"], "RECOVERED", "no data is never recovery");
    app.stop().await;
}

/// Polls `/metrics` until it contains `needle`.
async fn wait_for_metric(app: &TestApp, needle: &str) {
    let found = tokio::time::timeout(WAIT, async {
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        loop {
            tick.tick().await;
            if app.text("/metrics").await.contains(needle) {
                return;
            }
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("/metrics did not show {needle} in time"));
}

#[tokio::test]
async fn the_needs_human_rule_publishes_incident_escalated_once_per_incident_to_remediation_clients()
 {
    use fixloop_server::runtime::stream::EventGroups;
    let app = TestApp::start_tuned(
        NO_DEMO,
        |_| {},
        |config, _| {
            config.engine = config
                .engine
                .clone()
                .with_poll_interval(Duration::from_millis(100));
            config.engine.inconclusive_limit = 3;
        },
    );
    let mut remediation = app.events_of(EventGroups::REMEDIATION).await;
    let mut plain = app.events().await;
    app.signals.set_failure(Some(ErrorKind::Unavailable));
    let incident_id = app.open_incident_with_plan().await;
    let escalated = remediation.next_of("incident.escalated").await;
    assert_eq!(escalated["payload"]["incident_id"], incident_id.as_str());
    assert_eq!(escalated["payload"]["service"], "demo-checkout");
    let reason = escalated["payload"]["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("needs a human"), "{reason}");
    assert!(reason.contains("cannot be judged"), "{reason}");

    // The signals can be judged again (still breaching, so no recovery), then cannot again: the incident needs a
    // human a second time, and is not escalated twice.
    app.signals.set_reading(erroring_reading());
    app.signals.set_failure(None);
    wait_for_metric(
        &app,
        "fixloop_incident_needs_human{service=\"demo-checkout\"} 0",
    )
    .await;
    app.signals.set_failure(Some(ErrorKind::Unavailable));
    wait_for_metric(&app, "fixloop_incidents_needing_human_total 2").await;
    // A request the driver answers after the step that noticed it: everything that step published is queued.
    let (_, status) = app.get("/api/status").await;
    assert_eq!(status["active_incident_id"], incident_id.as_str());
    let again: Vec<_> = remediation
        .queued()
        .into_iter()
        .filter(|event| event["type"] == "incident.escalated")
        .collect();
    assert!(again.is_empty(), "escalated once per incident: {again:?}");
    let plain_types: Vec<String> = plain
        .queued()
        .iter()
        .map(|event| event["type"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        !plain_types.iter().any(|kind| kind == "incident.escalated"),
        "a client without events=remediation never gets it: {plain_types:?}"
    );
    app.stop().await;
}
