//! The alert webhooks: the shared secret (header or query, constant-time), disabled without a secret, and repeats
//! deduplicated through the engine; alerts about FixLoop itself ignored and counted.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use fixloop_adapters::Secret;
use fixloop_contract::codes;
use serde_json::{Value, json};

use crate::support::{TestApp, error_code};

const SECRET: &str = "0123456789abcdef-webhook";

fn datadog_payload(key: &str, transition: &str) -> Value {
    json!({
        "id": "evt-1",
        "event_type": "query_alert_monitor",
        "title": "[Triggered] High 5xx error rate on demo-checkout",
        "body": "error rate above 5%",
        "date": "1763720100000",
        "alert_id": "12345678",
        "alert_cycle_key": "",
        "alert_transition": transition,
        "alert_type": "error",
        "alert_title": "High 5xx error rate on demo-checkout",
        "alert_priority": "P2",
        "alert_query": "",
        "alert_scope": "service:demo-checkout",
        "aggreg_key": key,
        "tags": "service:demo-checkout",
        "link": "https://app.datadoghq.com/event/event?id=1",
        "org": {"id": "1", "name": "demo"}
    })
}

fn webhook(path: &str, secret: Option<&str>, body: &Value) -> Request<Body> {
    let mut request = Request::post(path).header(header::CONTENT_TYPE, "application/json");
    if let Some(secret) = secret {
        request = request.header("x-fixloop-webhook-secret", secret);
    }
    request.body(Body::from(body.to_string())).unwrap()
}

fn with_secret() -> TestApp {
    TestApp::start_with("http://127.0.0.1:9", |settings| {
        settings.webhook_secret = Some(Secret::from(SECRET));
    })
}

#[tokio::test]
async fn webhooks_are_disabled_without_a_configured_secret() {
    let app = TestApp::start("http://127.0.0.1:9");
    for path in [
        "/internal/datadog/webhook",
        "/internal/alertmanager/webhook",
    ] {
        let (status, body) = app
            .send(webhook(
                path,
                Some(SECRET),
                &datadog_payload("k", "Triggered"),
            ))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(error_code(&body), codes::UNAUTHORIZED);
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("FIXLOOP_WEBHOOK_SECRET")
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn missing_or_wrong_secret_is_401() {
    let app = with_secret();
    for secret in [None, Some("wrong"), Some("0123456789abcdef-webhooK")] {
        for path in [
            "/internal/datadog/webhook",
            "/internal/alertmanager/webhook",
        ] {
            let (status, body) = app
                .send(webhook(path, secret, &datadog_payload("k", "Triggered")))
                .await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} {secret:?}");
            assert_eq!(error_code(&body), codes::UNAUTHORIZED);
        }
    }
    let (_, status) = app.get("/api/status").await;
    assert_eq!(
        status["status"], "HEALTHY",
        "a rejected webhook changes nothing"
    );
    app.stop().await;
}

#[tokio::test]
async fn datadog_alert_opens_one_incident_and_repeats_are_deduplicated() {
    let app = with_secret();
    let mut events = app.events().await;
    let (status, body) = app
        .send(webhook(
            "/internal/datadog/webhook",
            Some(SECRET),
            &datadog_payload("monitor-1", "Triggered"),
        ))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let created = events.next_of("incident.created").await;
    assert_eq!(
        created["payload"]["datadog_summary"]["monitor_id"],
        "12345678"
    );
    let incident_id = created["payload"]["incident_id"].clone();
    events.next_of("plan.generated").await;
    // The same alert again, through the query-parameter form of the secret.
    let (status, _) = app
        .send(webhook(
            &format!("/internal/datadog/webhook?secret={SECRET}"),
            None,
            &datadog_payload("monitor-1", "Triggered"),
        ))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (_, current) = app.get("/api/incidents/current").await;
    assert_eq!(current["incident_id"], incident_id, "no second incident");
    let (_, metrics) = app.get("/metrics").await;
    assert!(
        metrics
            .as_str()
            .unwrap()
            .contains("fixloop_incidents_opened_total 1"),
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test]
async fn alertmanager_alert_opens_an_incident() {
    let app = with_secret();
    let mut events = app.events().await;
    let payload = json!({
        "version": "4",
        "groupKey": "{}:{alertname=\"HighErrorRate\"}",
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "fixloop",
        "groupLabels": {"alertname": "HighErrorRate"},
        "commonLabels": {"alertname": "HighErrorRate"},
        "commonAnnotations": {"summary": "High 5xx error rate on demo-checkout"},
        "externalURL": "http://alertmanager:9093",
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": "HighErrorRate", "service": "demo-checkout"},
            "annotations": {"summary": "High 5xx error rate on demo-checkout"},
            "startsAt": "2026-11-21T10:15:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph",
            "fingerprint": "abc123"
        }]
    });
    // Alertmanager's `http_config.authorization` sends the secret as a bearer token.
    let request = Request::post("/internal/alertmanager/webhook")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {SECRET}"))
        .body(Body::from(payload.to_string()))
        .unwrap();
    let (status, body) = app.send(request).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    events.next_of("incident.created").await;
    app.stop().await;
}

#[tokio::test]
async fn malformed_webhook_bodies_are_4xx() {
    let app = with_secret();
    let request = Request::post("/internal/datadog/webhook")
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-fixloop-webhook-secret", SECRET)
        .body(Body::from("{not json"))
        .unwrap();
    let (status, body) = app.send(request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), codes::INVALID_JSON);
    let (status, body) = app
        .send(webhook(
            "/internal/alertmanager/webhook",
            Some(SECRET),
            &json!({"version": "3"}),
        ))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(&body), codes::INVALID_BODY);
    app.stop().await;
}

/// RFC 9110 §11.1: the authentication scheme is case-insensitive. Regression: only the exact spelling `Bearer` was
/// accepted.
#[tokio::test]
async fn the_bearer_scheme_of_a_webhook_is_case_insensitive() {
    let app = with_secret();
    let body = json!({"version": "4", "status": "firing", "alerts": []});
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let request = Request::post("/internal/alertmanager/webhook")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, format!("{scheme} {SECRET}"))
            .body(Body::from(body.to_string()))
            .unwrap();
        let (status, answer) = app.send(request).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{scheme}: {answer}");
    }
    for value in [format!("Basic {SECRET}"), format!("Bearer{SECRET}")] {
        let request = Request::post("/internal/alertmanager/webhook")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, value.clone())
            .body(Body::from(body.to_string()))
            .unwrap();
        let (status, answer) = app.send(request).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{value}: {answer}");
    }
    app.stop().await;
}

/// Regression: a webhook body over the limit was answered 413 in plain text; every other 4xx is `ErrorBody` JSON.
#[tokio::test]
async fn an_oversized_webhook_body_is_413_with_the_error_body() {
    let app = TestApp::start_with("http://127.0.0.1:9", |settings| {
        settings.webhook_secret = Some(Secret::from(SECRET));
        settings.max_body_bytes = 1024;
    });
    let big = json!({"alerts": [], "padding": "x".repeat(4096)});
    for path in [
        "/internal/datadog/webhook",
        "/internal/alertmanager/webhook",
    ] {
        let (status, body) = app.send(webhook(path, Some(SECRET), &big)).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{path}: {body}");
        assert_eq!(
            error_code(&body),
            codes::PAYLOAD_TOO_LARGE,
            "{path}: {body}"
        );
        assert!(
            body["message"].as_str().unwrap().contains("1024 bytes"),
            "{body}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn alerts_about_fixloop_itself_are_ignored_and_counted() {
    let app = with_secret();
    // A Datadog monitor on FixLoop's own service, and an Alertmanager alert of its scrape job.
    let mut datadog = datadog_payload("self-1", "Triggered");
    datadog["alert_scope"] = json!("service:fixloop,env:prod");
    let (status, body) = app
        .send(webhook("/internal/datadog/webhook", Some(SECRET), &datadog))
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::ACCEPTED, json!({"accepted": false}))
    );
    let alertmanager = json!({
        "version": "4",
        "groupKey": "{}:{alertname=\"FixLoopDown\"}",
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "fixloop",
        "groupLabels": {"alertname": "FixLoopDown"},
        "commonLabels": {"alertname": "FixLoopDown"},
        "commonAnnotations": {"summary": "FixLoop is down"},
        "externalURL": "http://alertmanager:9093",
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": "FixLoopDown", "job": "fixloop"},
            "annotations": {"summary": "FixLoop is down"},
            "startsAt": "2026-11-21T10:15:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph",
            "fingerprint": "self123"
        }]
    });
    let (status, body) = app
        .send(webhook(
            "/internal/alertmanager/webhook",
            Some(SECRET),
            &alertmanager,
        ))
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::ACCEPTED, json!({"accepted": 0}))
    );
    let (_, status) = app.get("/api/status").await;
    assert_eq!(status["status"], "HEALTHY", "no incident: {status}");
    assert_eq!(status["active_incident_id"], Value::Null);
    let metrics = app.text("/metrics").await;
    assert!(
        metrics
            .lines()
            .any(|line| line == "fixloop_self_alerts_ignored_total 2"),
        "{metrics}"
    );
    app.stop().await;
}
