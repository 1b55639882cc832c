//! Incident history over HTTP in-process: `GET /api/incidents` (newest first, `limit`, `before`, `next_before`),
//! `GET /api/incidents/{incident_id}` with its timeline and figures, their 400 and 404 answers, and the incident
//! time histograms of `/metrics`.

use axum::http::StatusCode;
use fixloop_contract::{IncidentDetail, IncidentPage, TimelineKind, codes};
use serde_json::json;

use crate::support::{TestApp, error_code};

const NO_DEMO: &str = "http://127.0.0.1:9";

/// Opens a simulated incident, waits for its plan, closes it; returns its id.
async fn incident_opened_and_closed(app: &TestApp) -> String {
    let incident_id = app.open_incident_with_plan().await;
    let (status, body) = app
        .post_json("/api/incidents/simulate", &json!({"mode": "INCIDENT_OFF"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    incident_id
}

fn page(body: serde_json::Value) -> IncidentPage {
    serde_json::from_value(body).expect("an IncidentPage")
}

#[tokio::test]
async fn incidents_are_paginated_newest_first_with_limit_and_before() {
    let app = TestApp::start(NO_DEMO);
    let (status, body) = app.get("/api/incidents").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        page(body),
        IncidentPage {
            incidents: Vec::new(),
            next_before: None
        }
    );

    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(incident_opened_and_closed(&app).await);
    }
    let (status, body) = app.get("/api/incidents?limit=2").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let first = page(body);
    let first_ids: Vec<&str> = first
        .incidents
        .iter()
        .map(|s| s.incident_id.as_str())
        .collect();
    assert_eq!(first_ids, [ids[2].as_str(), ids[1].as_str()]);
    assert_eq!(first.next_before.as_deref(), Some(ids[1].as_str()));
    assert!(
        first
            .incidents
            .iter()
            .all(|s| s.incident_end.is_some() && s.status.is_none())
    );
    assert_eq!(
        first.incidents[0].resolution.as_deref(),
        Some("closed by operator")
    );

    let (status, body) = app
        .get(&format!("/api/incidents?limit=2&before={}", ids[1]))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let second = page(body);
    let second_ids: Vec<&str> = second
        .incidents
        .iter()
        .map(|s| s.incident_id.as_str())
        .collect();
    assert_eq!(second_ids, [ids[0].as_str()]);
    assert_eq!(second.next_before, None, "the last page has no cursor");

    // The default limit (20) holds all three, and an open incident is listed first with its status.
    let open = app.open_incident_with_plan().await;
    let (_, body) = app.get("/api/incidents").await;
    let all = page(body);
    assert_eq!(all.incidents.len(), 4);
    assert_eq!(all.incidents[0].incident_id, open);
    assert!(all.incidents[0].status.is_some());
    assert_eq!(all.incidents[0].incident_end, None);
    assert_eq!(all.next_before, None);
    app.stop().await;
}

#[tokio::test]
async fn bad_limit_or_before_is_400_invalid_query() {
    let app = TestApp::start(NO_DEMO);
    for query in [
        "limit=0",
        "limit=101",
        "limit=-1",
        "limit=ten",
        "limit=",
        "before=",
    ] {
        let (status, body) = app.get(&format!("/api/incidents?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(error_code(&body), codes::INVALID_QUERY, "{query}: {body}");
        let path = body["details"][0]["path"].as_str().unwrap_or_default();
        assert!(
            query.starts_with(path),
            "{query}: the detail names the parameter: {body}"
        );
    }
    let (status, _) = app.get("/api/incidents?limit=100").await;
    assert_eq!(status, StatusCode::OK);
    // A well-formed cursor naming no incident is a missing resource (a fuzzer found the 400 it used to be, for a
    // request the spec allows).
    let (status, body) = app.get("/api/incidents?before=inc-unknown").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(error_code(&body), codes::INCIDENT_NOT_FOUND, "{body}");
    app.stop().await;
}

#[tokio::test]
async fn incident_detail_has_its_timeline_and_figures_and_unknown_is_404() {
    let app = TestApp::start(NO_DEMO);
    let incident_id = app.open_incident_with_plan().await;
    let (status, body) = app.get(&format!("/api/incidents/{incident_id}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let open: IncidentDetail = serde_json::from_value(body).expect("an IncidentDetail");
    assert_eq!(open.incident.incident_id, incident_id);
    assert_eq!(open.incident_end, None);
    assert!(open.status.is_some());
    assert_eq!(open.service, "demo-checkout");

    let (status, _) = app
        .post_json("/api/incidents/simulate", &json!({"mode": "INCIDENT_OFF"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app.get(&format!("/api/incidents/{incident_id}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let closed: IncidentDetail = serde_json::from_value(body).expect("an IncidentDetail");
    let kinds: Vec<TimelineKind> = closed.timeline.iter().map(|entry| entry.kind).collect();
    assert_eq!(kinds.first(), Some(&TimelineKind::Detected), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&TimelineKind::Resolved), "{kinds:?}");
    for kind in [
        TimelineKind::Announced,
        TimelineKind::PlanValidated,
        TimelineKind::RunStarted,
    ] {
        assert!(kinds.contains(&kind), "{kind:?} in {kinds:?}");
    }
    assert!(closed.incident_end.is_some());
    assert_eq!(closed.resolution.as_deref(), Some("closed by operator"));
    // A simulation is not a detection by polling: no time to detect; its plan led to a run.
    assert_eq!(closed.figures.time_to_detect_seconds, None);
    assert!(
        closed
            .figures
            .time_to_first_run_seconds
            .is_some_and(|s| s >= 0.0)
    );

    let (status, body) = app.get("/api/incidents/inc-unknown").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(error_code(&body), codes::INCIDENT_NOT_FOUND);
    // The fixed routes keep their meaning next to the parameter.
    let (status, _) = app.get("/api/incidents/current").await;
    assert_eq!(status, StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn a_closed_incident_is_observed_in_the_incident_time_histograms() {
    let app = TestApp::start(NO_DEMO);
    let (_, body) = app.get("/metrics").await;
    let text = body.as_str().expect("text");
    assert!(
        text.contains("fixloop_incident_time_to_first_run_seconds_count 0"),
        "{text}"
    );
    assert!(
        text.contains("fixloop_incident_time_to_recover_seconds_count 0"),
        "{text}"
    );
    assert!(
        text.contains("fixloop_incident_time_to_detect_seconds_count 0"),
        "{text}"
    );

    let incident_id = incident_opened_and_closed(&app).await;
    let (_, body) = app.get(&format!("/api/incidents/{incident_id}")).await;
    let detail: IncidentDetail = serde_json::from_value(body).expect("an IncidentDetail");
    let (_, body) = app.get("/metrics").await;
    let text = body.as_str().expect("text");
    let first_run = detail
        .figures
        .time_to_first_run_seconds
        .expect("a run started");
    assert!(
        text.contains("fixloop_incident_time_to_first_run_seconds_count 1"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "fixloop_incident_time_to_first_run_seconds_sum {first_run}"
        )),
        "the histogram holds the engine's figure {first_run}: {text}"
    );
    // Closed by the operator before recovering, opened by simulation: neither time exists.
    assert!(
        text.contains("fixloop_incident_time_to_recover_seconds_count 0"),
        "{text}"
    );
    assert!(
        text.contains("fixloop_incident_time_to_detect_seconds_count 0"),
        "{text}"
    );
    app.stop().await;
}
