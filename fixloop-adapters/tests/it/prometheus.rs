//! Prometheus signal source against a wiremock stub of `GET /api/v1/query` (the PromQL it sends, vector, scalar,
//! empty and `"NaN"` answers, `status: "error"` bodies, HTTP 401/403/429/500, timeout, malformed and empty bodies),
//! and the Alertmanager webhook (version "4") parser.

use std::sync::Arc;
use std::time::Duration;

use fixloop_adapters::prometheus::{
    PromQlTemplates, PrometheusConfig, PrometheusSignalSource, parse_alertmanager, parse_template,
    queries,
};
use fixloop_adapters::{ErrorKind, Finding, Secret, SignalKind, SignalSource};
use fixloop_core::engine::Input;
use serde_json::{Value, json};
use wiremock::matchers::{any, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::contract::signal_source::{self, SignalScenario, Traffic};

const WINDOW: Duration = Duration::from_secs(300);
const TOKEN: &str = "prom-bearer-secret";

fn config(server: &MockServer) -> PrometheusConfig {
    PrometheusConfig {
        timeout: Duration::from_millis(500),
        selector: "job=\"demo\"".to_owned(),
        bearer: Some(Secret::new(TOKEN)),
        // The windows these tests read over are sent as they are (the minimum range has its own test).
        min_range: Duration::from_secs(1),
        ..PrometheusConfig::new(server.uri())
    }
}

fn vector(samples: Value) -> Value {
    json!({"status": "success", "data": {"resultType": "vector", "result": samples}})
}

fn scalar_sample(value: &str) -> Value {
    json!([{"metric": {}, "value": [1_435_781_451.781, value]}])
}

async fn mount(server: &MockServer, query: &str, body: Value) {
    Mock::given(method("GET"))
        .and(path("/api/v1/query"))
        .and(query_param("query", query))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .expect(1)
        .mount(server)
        .await;
}

#[tokio::test]
async fn reads_the_demo_service_signals_with_promql() {
    let server = MockServer::start().await;
    let q = queries("job=\"demo\"", WINDOW);
    assert_eq!(
        q.error_ratio,
        "(sum(rate(demo_http_requests_total{source=\"user\",status=~\"5..\",job=\"demo\"}[5m])) or vector(0)) / sum(rate(demo_http_requests_total{source=\"user\",job=\"demo\"}[5m]))"
    );
    assert_eq!(
        q.top_error,
        "topk(1, sum by (route,method,status,error) (increase(demo_http_errors_total{job=\"demo\"}[5m])))"
    );
    mount(&server, &q.error_ratio, vector(scalar_sample("0.05"))).await;
    mount(&server, &q.p95_ms, vector(scalar_sample("812.5"))).await;
    mount(&server, &q.requests, vector(scalar_sample("120.0000001"))).await;
    mount(
        &server,
        &q.top_error,
        vector(json!([{"metric": {"route": "/checkout", "method": "POST", "status": "500", "error": "payment provider timeout"},
                       "value": [1_435_781_451.781, "6"]}])),
    )
    .await;
    let reading = PrometheusSignalSource::new(config(&server), fixloop_adapters::default_client())
        .read(WINDOW)
        .await
        .unwrap();
    assert_eq!(reading.requests, 120);
    assert_eq!(reading.error_rate, Some(0.05));
    assert_eq!(reading.p95_latency_ms, Some(812.5));
    assert_eq!(
        reading.top_error.as_deref(),
        Some("POST /checkout -> 500 payment provider timeout")
    );
    assert_eq!(reading.evidence_links.len(), 2);
    let graph = &reading.evidence_links[0].url;
    assert!(
        graph.starts_with(&format!("{}/graph?g0.expr=", server.uri())),
        "{graph}"
    );
    assert!(graph.contains("g0.range_input=5m"), "{graph}");
}

#[test]
fn demo_shop_templates_render_the_queries_of_the_default_config() {
    let templates = PromQlTemplates::demo_shop();
    assert_eq!(PrometheusConfig::new("http://p:9090").templates, templates);
    assert_eq!(
        templates.render("job=\"demo\"", WINDOW),
        queries("job=\"demo\"", WINDOW)
    );
    let bare = templates.render("", Duration::from_secs(10));
    assert_eq!(
        bare.requests,
        "sum(increase(demo_http_requests_total{source=\"user\"}[10s]))"
    );
    assert!(
        bare.top_error.contains("demo_http_errors_total{}[10s]"),
        "{}",
        bare.top_error
    );
}

#[tokio::test]
async fn configured_templates_are_rendered_and_sent() {
    let server = MockServer::start().await;
    let templates = PromQlTemplates {
        error_ratio: "sum(rate(http_requests_total{code=~\"5..\"{and_selector}}{range})) / sum(rate(http_requests_total{{selector}}{range}))".to_owned(),
        p95_ms: "histogram_quantile(0.95, sum by (le) (rate(latency_seconds_bucket{{selector}}{range}))) * 1000".to_owned(),
        requests: "sum(increase(http_requests_total{{selector}}{range}))".to_owned(),
        top_error: "topk(1, sum by (route,method,status,error) (label_replace(increase(http_requests_total{code=~\"5..\"{and_selector}}{range}), \"status\", \"$1\", \"code\", \"(.*)\")))".to_owned(),
    };
    let q = templates.render("job=\"orders\"", Duration::from_secs(120));
    assert_eq!(
        q.error_ratio,
        "sum(rate(http_requests_total{code=~\"5..\",job=\"orders\"}[2m])) / sum(rate(http_requests_total{job=\"orders\"}[2m]))"
    );
    assert_eq!(
        q.requests,
        "sum(increase(http_requests_total{job=\"orders\"}[2m]))"
    );
    mount(&server, &q.error_ratio, vector(scalar_sample("0.5"))).await;
    mount(&server, &q.p95_ms, vector(scalar_sample("40"))).await;
    mount(&server, &q.requests, vector(scalar_sample("80"))).await;
    mount(
        &server,
        &q.top_error,
        vector(json!([{"metric": {"method": "GET", "status": "503"}, "value": [1_435_781_451.781, "40"]}])),
    )
    .await;
    let config = PrometheusConfig {
        selector: "job=\"orders\"".to_owned(),
        templates,
        ..config(&server)
    };
    let reading = PrometheusSignalSource::new(config, fixloop_adapters::default_client())
        .read(Duration::from_secs(120))
        .await
        .unwrap();
    assert_eq!(reading.requests, 80);
    assert_eq!(reading.error_rate, Some(0.5));
    assert_eq!(reading.p95_latency_ms, Some(40.0));
    assert_eq!(reading.top_error.as_deref(), Some("GET -> 503"));
}

#[tokio::test]
async fn a_window_shorter_than_the_minimum_range_is_widened_to_it() {
    // The engine asks for the few seconds since its previous measurement; `rate` over a range shorter than two
    // scrape intervals has no series, so the query asks for at least `min_range`.
    assert_eq!(
        PrometheusConfig::new("http://p:9090").min_range,
        fixloop_adapters::prometheus::DEFAULT_MIN_RANGE
    );
    let server = MockServer::start().await;
    let q = queries("job=\"demo\"", Duration::from_secs(20));
    assert!(q.requests.contains("[20s]"), "{}", q.requests);
    mount(&server, &q.error_ratio, vector(scalar_sample("0"))).await;
    mount(&server, &q.p95_ms, vector(scalar_sample("10"))).await;
    mount(&server, &q.requests, vector(scalar_sample("42"))).await;
    mount(&server, &q.top_error, vector(json!([]))).await;
    let widened = PrometheusConfig {
        min_range: Duration::from_secs(20),
        ..config(&server)
    };
    let reading = PrometheusSignalSource::new(widened, fixloop_adapters::default_client())
        .read(Duration::from_millis(3500))
        .await
        .unwrap();
    assert_eq!(reading.requests, 42);
    // A longer window is kept as asked.
    let server = MockServer::start().await;
    let q = queries("job=\"demo\"", WINDOW);
    mount(&server, &q.error_ratio, vector(scalar_sample("0"))).await;
    mount(&server, &q.p95_ms, vector(scalar_sample("10"))).await;
    mount(&server, &q.requests, vector(scalar_sample("7"))).await;
    mount(&server, &q.top_error, vector(json!([]))).await;
    let kept = PrometheusConfig {
        min_range: Duration::from_secs(20),
        ..config(&server)
    };
    let reading = PrometheusSignalSource::new(kept, fixloop_adapters::default_client())
        .read(WINDOW)
        .await
        .unwrap();
    assert_eq!(reading.requests, 7);
}

#[tokio::test]
async fn zero_requests_and_nan_mean_no_data() {
    let server = MockServer::start().await;
    let q = queries("job=\"demo\"", Duration::from_secs(10));
    assert!(q.requests.ends_with("[10s]))"), "{}", q.requests);
    mount(&server, &q.error_ratio, vector(scalar_sample("NaN"))).await;
    mount(&server, &q.p95_ms, vector(scalar_sample("NaN"))).await;
    mount(&server, &q.requests, vector(scalar_sample("0"))).await;
    mount(&server, &q.top_error, vector(json!([]))).await;
    let reading = PrometheusSignalSource::new(config(&server), fixloop_adapters::default_client())
        .read(Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(reading.requests, 0);
    assert_eq!(reading.error_rate, None);
    assert_eq!(reading.p95_latency_ms, None);
    assert_eq!(reading.top_error, None);
}

/// Answers every query with `body` unless a more specific mock matches first.
async fn mount_fallback(server: &MockServer, body: Value) {
    Mock::given(method("GET"))
        .and(path("/api/v1/query"))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .with_priority(10)
        .mount(server)
        .await;
}

#[tokio::test]
async fn an_empty_requests_or_error_ratio_result_is_a_failed_read_naming_the_query() {
    let q = queries("job=\"demo\"", WINDOW);
    for (empty, name) in [(&q.requests, "requests"), (&q.error_ratio, "error-ratio")] {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/api/v1/query"))
            .and(query_param("query", empty.as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(vector(json!([]))))
            .with_priority(1)
            .mount(&server)
            .await;
        mount_fallback(&server, vector(scalar_sample("12"))).await;
        let error = tokio::time::timeout(
            Duration::from_secs(10),
            PrometheusSignalSource::new(config(&server), fixloop_adapters::default_client())
                .read(WINDOW),
        )
        .await
        .expect("in time")
        .expect_err("no series is no data, never 0");
        assert_eq!(error.kind(), ErrorKind::InvalidResponse);
        assert_eq!(
            error.detail(),
            format!(
                "prometheus: the {name} query returns no series (its selectors match nothing): {empty}"
            )
        );
    }
}

/// A stub Prometheus that knows `http_requests_total{code,handler,method}` only: the labels API answers for it,
/// every query whose selectors use another label or metric answers an empty vector, the others one sample.
async fn go_client_prometheus() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/labels"))
        .and(query_param("match[]", "http_requests_total"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"status": "success", "data": ["__name__", "code", "handler", "instance", "job", "method"]}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/labels"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"status": "success", "data": []})),
        )
        .with_priority(10)
        .mount(&server)
        .await;
    server
}

fn go_client_templates(status_label: &str) -> PromQlTemplates {
    PromQlTemplates {
        error_ratio: format!(
            "sum(rate(http_requests_total{{{status_label}=~\"5..\"}}{{range}})) / sum(rate(http_requests_total{{range}}))"
        ),
        p95_ms: "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{range}))) * 1000".to_owned(),
        requests: "sum(increase(http_requests_total{range}))".to_owned(),
        top_error: "vector(0)".to_owned(),
    }
}

#[tokio::test]
async fn check_reports_each_query_and_the_labels_its_selectors_use() {
    let server = go_client_prometheus().await;
    mount_fallback(&server, vector(scalar_sample("3"))).await;
    let mut settings = config(&server);
    settings.selector = String::new();
    settings.templates = go_client_templates("code");
    let source = PrometheusSignalSource::new(settings.clone(), fixloop_adapters::default_client());
    let report = tokio::time::timeout(Duration::from_secs(10), source.check(WINDOW))
        .await
        .expect("in time")
        .expect("a check");
    let findings: Vec<(SignalKind, bool)> = report
        .signals
        .iter()
        .map(|check| (check.signal, check.is_blind()))
        .collect();
    assert_eq!(
        findings,
        [
            (SignalKind::Requests, false),
            (SignalKind::ErrorRate, false),
            (SignalKind::Latency, true),
            (SignalKind::TopError, false),
        ],
        "{report:?}"
    );
    let latency = report.signal(SignalKind::Latency).expect("checked");
    assert_eq!(
        latency.finding,
        Finding::Blind(
            "metric `http_request_duration_seconds_bucket` has no series in Prometheus".to_owned()
        )
    );

    // The guessed label `status`: the error ratio is blind, naming the labels the metric has.
    settings.templates = go_client_templates("status");
    let source = PrometheusSignalSource::new(settings, fixloop_adapters::default_client());
    let report = tokio::time::timeout(Duration::from_secs(10), source.check(WINDOW))
        .await
        .expect("in time")
        .expect("a check");
    let error_ratio = report.signal(SignalKind::ErrorRate).expect("checked");
    assert_eq!(
        error_ratio.finding,
        Finding::Blind(
            "label `status` is on no series of `http_requests_total`; its labels are code, handler, instance, job, method"
                .to_owned()
        ),
        "{report:?}"
    );
    assert!(
        error_ratio
            .labels
            .iter()
            .any(|label| label.name == "status" && !label.present)
    );
}

#[tokio::test]
async fn check_reports_a_query_prometheus_refuses_and_an_empty_result() {
    let server = go_client_prometheus().await;
    let mut settings = config(&server);
    settings.selector = String::new();
    settings.templates = go_client_templates("code");
    Mock::given(method("GET"))
        .and(path("/api/v1/query"))
        .and(query_param(
            "query",
            "sum(increase(http_requests_total[5m]))",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(vector(json!([]))))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/query"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "status": "error", "errorType": "bad_data", "error": "1:5: parse error: unexpected end of input"
        })))
        .with_priority(10)
        .mount(&server)
        .await;
    let source = PrometheusSignalSource::new(settings, fixloop_adapters::default_client());
    let report = tokio::time::timeout(Duration::from_secs(10), source.check(WINDOW))
        .await
        .expect("in time")
        .expect("a check");
    let requests = report.signal(SignalKind::Requests).expect("checked");
    assert_eq!(
        requests.finding,
        Finding::Blind("the query returns no series".to_owned())
    );
    let Some(Finding::Blind(why)) = report
        .signal(SignalKind::ErrorRate)
        .map(|check| &check.finding)
    else {
        panic!("the refused error ratio is blind: {report:?}");
    };
    assert!(why.starts_with("Prometheus refuses the query: "), "{why}");
    assert!(why.contains("parse error"), "{why}");
}

#[tokio::test]
async fn a_label_the_metric_lacks_fails_every_read_even_when_or_vector_0_hides_it() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/labels"))
        .and(query_param("match[]", "http_requests_total"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"status": "success", "data": ["__name__", "code", "handler", "method"]}),
        ))
        // Once per source: the second read of the first source keeps the verdict (for a minute).
        .expect(2)
        .mount(&server)
        .await;
    // Every query answers a sample: `(… or vector(0)) / …` reads 0 errors although `status` matches nothing.
    mount_fallback(&server, vector(scalar_sample("5"))).await;
    let mut settings = config(&server);
    settings.selector = String::new();
    settings.templates = PromQlTemplates {
        error_ratio: "(sum(rate(http_requests_total{status=~\"5..\"}{range})) or vector(0)) / sum(rate(http_requests_total{range}))".to_owned(),
        ..go_client_templates("code")
    };
    let source = PrometheusSignalSource::new(settings, fixloop_adapters::default_client());
    for _ in 0..2 {
        let error = tokio::time::timeout(Duration::from_secs(10), source.read(WINDOW))
            .await
            .expect("in time")
            .expect_err("a blind error ratio");
        assert_eq!(error.kind(), ErrorKind::InvalidResponse);
        assert_eq!(
            error.detail(),
            "prometheus: the error-ratio query uses label `status` is on no series of `http_requests_total`; its labels are code, handler, method"
        );
    }
    // The right label reads.
    let mut settings = config(&server);
    settings.selector = String::new();
    settings.templates = go_client_templates("code");
    let reading = tokio::time::timeout(
        Duration::from_secs(10),
        PrometheusSignalSource::new(settings, fixloop_adapters::default_client()).read(WINDOW),
    )
    .await
    .expect("in time");
    assert!(reading.is_ok(), "{reading:?}");
}

#[tokio::test]
async fn check_of_an_unreachable_prometheus_is_an_error() {
    let base = crate::http_runner::closed_base_url().await;
    let source = PrometheusSignalSource::new(
        PrometheusConfig::new(base),
        fixloop_adapters::default_client(),
    );
    let error = tokio::time::timeout(Duration::from_secs(10), source.check(WINDOW))
        .await
        .expect("in time")
        .expect_err("nothing listens");
    assert_eq!(error.kind(), ErrorKind::Unavailable);
}

#[test]
fn templates_are_parsed_with_their_placeholders_replaced() {
    assert_eq!(
        parse_template("sum(rate(x{a=\"b\"{and_selector}}{range}))"),
        Ok(())
    );
    let error = parse_template("sum(rate(x{range})").expect_err("unbalanced");
    assert!(!error.is_empty());
}

#[tokio::test]
async fn traffic_with_nan_latency_and_a_scalar_result() {
    let server = MockServer::start().await;
    let q = queries("job=\"demo\"", WINDOW);
    mount(
        &server,
        &q.error_ratio,
        json!({"status": "success", "data": {"resultType": "scalar", "result": [1.0, "0"]}}),
    )
    .await;
    mount(&server, &q.p95_ms, vector(scalar_sample("+Inf"))).await;
    mount(&server, &q.requests, vector(scalar_sample("30"))).await;
    mount(
        &server,
        &q.top_error,
        vector(json!([{"metric": {"route": "/x"}, "value": [1.0, "0"]}])),
    )
    .await;
    let reading = PrometheusSignalSource::new(config(&server), fixloop_adapters::default_client())
        .read(WINDOW)
        .await
        .unwrap();
    assert_eq!(reading.requests, 30);
    assert_eq!(reading.error_rate, Some(0.0));
    assert_eq!(reading.p95_latency_ms, None, "+Inf is no latency");
    assert_eq!(reading.top_error, None, "a zero count is no error");
}

async fn failing_read(response: ResponseTemplate) -> (ErrorKind, String) {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(response)
        .mount(&server)
        .await;
    let error = PrometheusSignalSource::new(config(&server), fixloop_adapters::default_client())
        .read(WINDOW)
        .await
        .unwrap_err();
    (error.kind(), error.to_string())
}

#[tokio::test]
async fn failures_are_classified() {
    let (kind, message) = failing_read(
        ResponseTemplate::new(400)
            .set_body_json(json!({"status": "error", "errorType": "bad_data",
        "error": "invalid parameter \"query\": 1:14: parse error: unexpected \"}\""})),
    )
    .await;
    assert_eq!(kind, ErrorKind::InvalidResponse);
    assert!(
        message.contains("bad_data") && message.contains("parse error"),
        "{message}"
    );
    assert_eq!(
        failing_read(
            ResponseTemplate::new(422)
                .set_body_json(json!({"status": "error", "errorType": "execution", "error": "x"}))
        )
        .await
        .0,
        ErrorKind::InvalidResponse
    );
    assert_eq!(
        failing_read(ResponseTemplate::new(503).set_body_json(
            json!({"status": "error", "errorType": "timeout", "error": "query timed out"})
        ))
        .await
        .0,
        ErrorKind::Timeout
    );
    assert_eq!(
        failing_read(
            ResponseTemplate::new(500)
                .set_body_json(json!({"status": "error", "errorType": "internal", "error": "x"}))
        )
        .await
        .0,
        ErrorKind::Unavailable
    );
    assert_eq!(
        failing_read(ResponseTemplate::new(500)).await.0,
        ErrorKind::Unavailable
    );
    assert_eq!(
        failing_read(ResponseTemplate::new(401)).await.0,
        ErrorKind::Unauthorized
    );
    assert_eq!(
        failing_read(ResponseTemplate::new(403)).await.0,
        ErrorKind::Unauthorized
    );
    assert_eq!(
        failing_read(ResponseTemplate::new(429).insert_header("retry-after", "3"))
            .await
            .0,
        ErrorKind::RateLimited {
            retry_after: Some(Duration::from_secs(3))
        }
    );
    assert_eq!(
        failing_read(ResponseTemplate::new(429)).await.0,
        ErrorKind::RateLimited { retry_after: None }
    );
    assert_eq!(
        failing_read(
            ResponseTemplate::new(200)
                .set_body_json(vector(json!([])))
                .set_delay(Duration::from_secs(3))
        )
        .await
        .0,
        ErrorKind::Timeout
    );
    assert_eq!(
        failing_read(ResponseTemplate::new(200).set_body_string("{\"status\":"))
            .await
            .0,
        ErrorKind::InvalidResponse
    );
    assert_eq!(
        failing_read(ResponseTemplate::new(200)).await.0,
        ErrorKind::InvalidResponse
    );
    assert_eq!(
        failing_read(ResponseTemplate::new(200).set_body_json(
            json!({"status": "success", "data": {"resultType": "matrix", "result": []}})
        ))
        .await
        .0,
        ErrorKind::InvalidResponse
    );
    assert_eq!(
        failing_read(
            ResponseTemplate::new(200)
                .set_body_json(vector(json!([{"metric": {}, "value": "oops"}])))
        )
        .await
        .0,
        ErrorKind::InvalidResponse
    );
}

const ALERTMANAGER: &str = r#"{
  "version": "4",
  "groupKey": "{}:{alertname=\"HighErrorRate\"}",
  "truncatedAlerts": 0,
  "status": "firing",
  "receiver": "fixloop",
  "groupLabels": {"alertname": "HighErrorRate"},
  "commonLabels": {"alertname": "HighErrorRate", "service": "checkout", "severity": "critical"},
  "commonAnnotations": {"summary": "5xx ratio above 5% on checkout"},
  "externalURL": "http://alertmanager.example:9093",
  "alerts": [{
    "status": "firing",
    "labels": {"alertname": "HighErrorRate", "service": "checkout", "severity": "critical", "instance": "api-1:9090"},
    "annotations": {"summary": "5xx ratio above 5% on checkout", "runbook_url": "https://runbooks.example/high-error-rate"},
    "startsAt": "2024-05-20T10:15:30.123Z",
    "endsAt": "0001-01-01T00:00:00Z",
    "generatorURL": "http://prometheus.example:9090/graph?g0.expr=...&g0.tab=1",
    "fingerprint": "b3c1e0a6f5d4c2a1"
  }, {
    "status": "resolved",
    "labels": {"alertname": "SlowCheckout"},
    "annotations": {},
    "startsAt": "2024-05-20T10:00:00Z",
    "endsAt": "2024-05-20T10:14:00Z",
    "generatorURL": "",
    "fingerprint": "00000000000000aa"
  }]
}"#;

#[test]
fn alertmanager_alerts_become_fired_and_resolved_inputs() {
    let alerts = parse_alertmanager(ALERTMANAGER.as_bytes()).unwrap();
    assert_eq!(alerts.len(), 2);
    let fired = &alerts[0];
    assert!(fired.firing);
    assert_eq!(fired.alert.source, "alertmanager");
    assert_eq!(fired.alert.dedupe_key, "b3c1e0a6f5d4c2a1");
    assert_eq!(fired.alert.title, "5xx ratio above 5% on checkout");
    assert_eq!(fired.alert.monitor_id.as_deref(), Some("HighErrorRate"));
    assert_eq!(
        fired.starts_at.map(|at| at.timestamp()),
        Some(1_716_200_130)
    );
    assert_eq!(fired.to_input(), Input::AlertFired(fired.alert.clone()));
    let resolved = &alerts[1];
    assert!(!resolved.firing);
    assert_eq!(
        resolved.alert.title, "5xx ratio above 5% on checkout",
        "falls back to the common summary"
    );
    assert_eq!(resolved.generator_url, None);
    assert_eq!(
        resolved.to_input(),
        Input::AlertResolved {
            dedupe_key: "00000000000000aa".to_owned()
        }
    );
}

#[test]
fn alertmanager_rejects_other_versions_and_garbage() {
    let v3 = ALERTMANAGER.replace("\"version\": \"4\"", "\"version\": \"3\"");
    let bad_status = ALERTMANAGER.replace("\"status\": \"resolved\"", "\"status\": \"pending\"");
    for body in [
        v3.as_bytes(),
        bad_status.as_bytes(),
        b"",
        b"null",
        b"{\"version\": 4}",
    ] {
        let error = parse_alertmanager(body).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidResponse);
    }
    let no_fingerprint = ALERTMANAGER.replace(
        "\"fingerprint\": \"b3c1e0a6f5d4c2a1\"",
        "\"fingerprint\": \"\"",
    );
    let alerts = parse_alertmanager(no_fingerprint.as_bytes()).unwrap();
    assert_eq!(
        alerts[0].alert.dedupe_key,
        "{}:{alertname=\"HighErrorRate\"}:HighErrorRate"
    );
}

#[test]
fn debug_output_never_shows_the_token() {
    let config = PrometheusConfig {
        bearer: Some(Secret::new(TOKEN)),
        ..PrometheusConfig::new("http://p:9090")
    };
    let source = PrometheusSignalSource::new(config.clone(), fixloop_adapters::default_client());
    for debug in [format!("{config:?}"), format!("{source:?}")] {
        assert!(!debug.contains(TOKEN), "{debug}");
    }
}

/// The stub Prometheus behind a signal source, arranged per contract case.
struct PrometheusScenario {
    server: MockServer,
}

#[async_trait::async_trait]
impl SignalScenario for PrometheusScenario {
    async fn arrange(&self, traffic: Traffic) {
        self.server.reset().await;
        let ratio = match traffic {
            Traffic::Healthy => "0.004",
            Traffic::Erroring => "0.3",
            Traffic::Slow => {
                Mock::given(any())
                    .respond_with(
                        ResponseTemplate::new(200)
                            .set_body_json(vector(json!([])))
                            .set_delay(Duration::from_secs(3)),
                    )
                    .mount(&self.server)
                    .await;
                return;
            }
            Traffic::Down => {
                Mock::given(any())
                    .respond_with(ResponseTemplate::new(502))
                    .mount(&self.server)
                    .await;
                return;
            }
        };
        let q = queries("job=\"demo\"", signal_source::WINDOW);
        for (query, body) in [
            (q.error_ratio, vector(scalar_sample(ratio))),
            (q.p95_ms, vector(scalar_sample("95.5"))),
            (q.requests, vector(scalar_sample("250"))),
            (q.top_error, vector(json!([]))),
        ] {
            Mock::given(method("GET"))
                .and(path("/api/v1/query"))
                .and(query_param("query", query.as_str()))
                .respond_with(ResponseTemplate::new(200).set_body_json(body))
                .mount(&self.server)
                .await;
        }
    }
}

#[tokio::test]
async fn prometheus_signal_source_meets_the_signal_source_contract() {
    signal_source::check_all(|| async {
        let server = MockServer::start().await;
        let source: Arc<dyn SignalSource> = Arc::new(PrometheusSignalSource::new(
            config(&server),
            fixloop_adapters::default_client(),
        ));
        (
            source,
            Box::new(PrometheusScenario { server }) as Box<dyn SignalScenario>,
        )
    })
    .await;
}
