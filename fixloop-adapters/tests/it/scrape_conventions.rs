//! The scrape source against the metrics conventions of common instrumentation libraries (expositions written for
//! these tests after each library's documentation): the Prometheus Go client, prometheus-fastapi-instrumentator,
//! Micrometer/Spring and OpenTelemetry's Prometheus exporter each read truthfully with their own names as data;
//! and every way of being blind (no series, a configured label on no series) fails the read with the reason,
//! while `check` reports the same per signal.

use std::time::Duration;

use fixloop_adapters::{
    ErrorKind, Finding, ScrapeConfig, ScrapeMetrics, ScrapeSignalSource, SignalKind, SignalReading,
    SignalSource, http_client,
};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::contract::bounded;

const WINDOW: Duration = Duration::from_secs(300);

/// The families and labels of a convention; no errors family, nothing excluded.
fn metrics(
    requests: &str,
    buckets: &str,
    status: &str,
    route: &str,
    method: &str,
) -> ScrapeMetrics {
    ScrapeMetrics {
        requests: requests.to_owned(),
        latency_buckets: buckets.to_owned(),
        errors: None,
        status_label: status.to_owned(),
        route_label: route.to_owned(),
        method_label: method.to_owned(),
        error_label: "error".to_owned(),
        exclude: None,
    }
}

fn go_client() -> ScrapeMetrics {
    metrics(
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "code",
        "handler",
        "method",
    )
}

/// The Prometheus Go client (`promhttp.InstrumentHandlerCounter` and `...Duration`, `handler` curried by the app):
/// `ok` 200s and `failed` 503s on `GET /api/items`, and 3 200s on `POST /api/orders`.
fn go_exposition(ok: u64, failed: u64) -> String {
    let total = ok + failed + 3;
    format!(
        "# HELP http_requests_total Total number of HTTP requests by status code, handler and method.\n\
         # TYPE http_requests_total counter\n\
         http_requests_total{{code=\"200\",handler=\"/api/items\",method=\"get\"}} {ok}\n\
         http_requests_total{{code=\"503\",handler=\"/api/items\",method=\"get\"}} {failed}\n\
         http_requests_total{{code=\"200\",handler=\"/api/orders\",method=\"post\"}} 3\n\
         # HELP http_request_duration_seconds A histogram of latencies for requests.\n\
         # TYPE http_request_duration_seconds histogram\n\
         http_request_duration_seconds_bucket{{handler=\"/api/items\",le=\"0.05\"}} {fast}\n\
         http_request_duration_seconds_bucket{{handler=\"/api/items\",le=\"0.25\"}} {total}\n\
         http_request_duration_seconds_bucket{{handler=\"/api/items\",le=\"+Inf\"}} {total}\n\
         http_request_duration_seconds_sum{{handler=\"/api/items\"}} 1.5\n\
         http_request_duration_seconds_count{{handler=\"/api/items\"}} {total}\n\
         # HELP go_goroutines Number of goroutines that currently exist.\n\
         # TYPE go_goroutines gauge\n\
         go_goroutines 8\n",
        fast = ok + 3,
    )
}

/// prometheus-fastapi-instrumentator: status grouped in classes (`2xx`, `5xx`), `handler`, `method`.
fn fastapi_exposition(ok: u64, failed: u64) -> String {
    let total = ok + failed;
    format!(
        "# HELP http_requests_total Total number of requests by method, status and handler.\n\
         # TYPE http_requests_total counter\n\
         http_requests_total{{handler=\"/items/{{item_id}}\",method=\"GET\",status=\"2xx\"}} {ok}.0\n\
         http_requests_total{{handler=\"/items/{{item_id}}\",method=\"GET\",status=\"5xx\"}} {failed}.0\n\
         http_requests_total{{handler=\"none\",method=\"GET\",status=\"4xx\"}} 2.0\n\
         # HELP http_request_duration_seconds Latency with only few buckets by handler.\n\
         # TYPE http_request_duration_seconds histogram\n\
         http_request_duration_seconds_bucket{{handler=\"/items/{{item_id}}\",le=\"0.1\",method=\"GET\"}} {total}.0\n\
         http_request_duration_seconds_bucket{{handler=\"/items/{{item_id}}\",le=\"0.5\",method=\"GET\"}} {total}.0\n\
         http_request_duration_seconds_bucket{{handler=\"/items/{{item_id}}\",le=\"1.0\",method=\"GET\"}} {total}.0\n\
         http_request_duration_seconds_bucket{{handler=\"/items/{{item_id}}\",le=\"+Inf\",method=\"GET\"}} {total}.0\n\
         http_request_duration_seconds_count{{handler=\"/items/{{item_id}}\",method=\"GET\"}} {total}.0\n\
         http_request_duration_seconds_sum{{handler=\"/items/{{item_id}}\",method=\"GET\"}} 0.8\n\
         # HELP http_request_duration_highr_seconds Latency with many buckets but no API specific labels.\n\
         # TYPE http_request_duration_highr_seconds histogram\n\
         http_request_duration_highr_seconds_count {total}.0\n"
    )
}

/// Micrometer through Spring Boot Actuator: a summary `http_server_requests_seconds` (`_count`, `_sum`, `_max`),
/// no `*_total` counter, labels `exception,method,outcome,status,uri`; with `p95` set, a `quantile="0.95"` series
/// (percentiles published), else no quantile at all (the default).
fn micrometer_exposition(ok: u64, failed: u64, p95: Option<f64>) -> String {
    let mut text = format!(
        "# HELP http_server_requests_seconds  \n\
         # TYPE http_server_requests_seconds summary\n\
         http_server_requests_seconds_count{{application=\"shop\",error=\"none\",exception=\"none\",method=\"GET\",outcome=\"SUCCESS\",status=\"200\",uri=\"/api/items\",}} {ok}.0\n\
         http_server_requests_seconds_sum{{application=\"shop\",error=\"none\",exception=\"none\",method=\"GET\",outcome=\"SUCCESS\",status=\"200\",uri=\"/api/items\",}} 1.25\n\
         http_server_requests_seconds_count{{application=\"shop\",error=\"IllegalStateException\",exception=\"IllegalStateException\",method=\"GET\",outcome=\"SERVER_ERROR\",status=\"500\",uri=\"/api/items\",}} {failed}.0\n\
         http_server_requests_seconds_sum{{application=\"shop\",error=\"IllegalStateException\",exception=\"IllegalStateException\",method=\"GET\",outcome=\"SERVER_ERROR\",status=\"500\",uri=\"/api/items\",}} 0.5\n\
         # HELP http_server_requests_seconds_max  \n\
         # TYPE http_server_requests_seconds_max gauge\n\
         http_server_requests_seconds_max{{application=\"shop\",error=\"none\",exception=\"none\",method=\"GET\",outcome=\"SUCCESS\",status=\"200\",uri=\"/api/items\",}} 0.2\n"
    );
    if let Some(p95) = p95 {
        text.push_str(&format!(
            "http_server_requests_seconds{{application=\"shop\",error=\"none\",exception=\"none\",method=\"GET\",outcome=\"SUCCESS\",status=\"200\",uri=\"/api/items\",quantile=\"0.5\",}} 0.01\n\
             http_server_requests_seconds{{application=\"shop\",error=\"none\",exception=\"none\",method=\"GET\",outcome=\"SUCCESS\",status=\"200\",uri=\"/api/items\",quantile=\"0.95\",}} {p95}\n"
        ));
    }
    text.push_str(
        "# HELP jvm_threads_live_threads The current number of live threads\n\
         # TYPE jvm_threads_live_threads gauge\n\
         jvm_threads_live_threads{application=\"shop\",} 31.0\n",
    );
    text
}

fn micrometer() -> ScrapeMetrics {
    metrics(
        "http_server_requests_seconds_count",
        "http_server_requests_seconds_bucket",
        "status",
        "uri",
        "method",
    )
}

/// OpenTelemetry's Prometheus exporter (semantic convention `http.server.request.duration`).
fn otel_exposition(ok: u64, failed: u64) -> String {
    let total = ok + failed;
    format!(
        "# HELP http_server_request_duration_seconds Duration of HTTP server requests.\n\
         # TYPE http_server_request_duration_seconds histogram\n\
         http_server_request_duration_seconds_bucket{{http_request_method=\"POST\",http_response_status_code=\"201\",http_route=\"/v1/orders\",otel_scope_name=\"app\",le=\"0.1\"}} {ok}\n\
         http_server_request_duration_seconds_bucket{{http_request_method=\"POST\",http_response_status_code=\"201\",http_route=\"/v1/orders\",otel_scope_name=\"app\",le=\"+Inf\"}} {ok}\n\
         http_server_request_duration_seconds_count{{http_request_method=\"POST\",http_response_status_code=\"201\",http_route=\"/v1/orders\",otel_scope_name=\"app\"}} {ok}\n\
         http_server_request_duration_seconds_sum{{http_request_method=\"POST\",http_response_status_code=\"201\",http_route=\"/v1/orders\",otel_scope_name=\"app\"}} 0.4\n\
         http_server_request_duration_seconds_bucket{{http_request_method=\"POST\",http_response_status_code=\"502\",http_route=\"/v1/orders\",otel_scope_name=\"app\",le=\"0.1\"}} 0\n\
         http_server_request_duration_seconds_bucket{{http_request_method=\"POST\",http_response_status_code=\"502\",http_route=\"/v1/orders\",otel_scope_name=\"app\",le=\"+Inf\"}} {failed}\n\
         http_server_request_duration_seconds_count{{http_request_method=\"POST\",http_response_status_code=\"502\",http_route=\"/v1/orders\",otel_scope_name=\"app\"}} {failed}\n\
         http_server_request_duration_seconds_sum{{http_request_method=\"POST\",http_response_status_code=\"502\",http_route=\"/v1/orders\",otel_scope_name=\"app\"}} {total}\n\
         # HELP target_info Target metadata\n\
         # TYPE target_info gauge\n\
         target_info{{service_name=\"orders\"}} 1\n"
    )
}

fn otel() -> ScrapeMetrics {
    metrics(
        "http_server_request_duration_seconds_count",
        "http_server_request_duration_seconds_bucket",
        "http_response_status_code",
        "http_route",
        "http_request_method",
    )
}

async fn serve_text(server: &MockServer, text: &str) {
    server.reset().await;
    Mock::given(method("GET"))
        .and(path("/metrics"))
        .respond_with(ResponseTemplate::new(200).set_body_string(text))
        .mount(server)
        .await;
}

fn source(server: &MockServer, metrics: ScrapeMetrics) -> ScrapeSignalSource {
    ScrapeSignalSource::new(
        ScrapeConfig::with_metrics(server.uri(), metrics),
        http_client(Duration::from_secs(10)).expect("a client"),
    )
}

/// Reads `before` (the baseline) then `after`, and returns the second reading.
async fn two_reads(metrics: ScrapeMetrics, before: &str, after: &str) -> SignalReading {
    let server = MockServer::start().await;
    let source = source(&server, metrics);
    serve_text(&server, before).await;
    bounded("baseline", source.read(WINDOW))
        .await
        .unwrap_or_else(|error| panic!("baseline read: {error}"));
    serve_text(&server, after).await;
    bounded("read", source.read(WINDOW))
        .await
        .unwrap_or_else(|error| panic!("read: {error}"))
}

/// The error of a read of `text` with `metrics`.
async fn failed_read(metrics: ScrapeMetrics, text: &str) -> String {
    let server = MockServer::start().await;
    let source = source(&server, metrics);
    serve_text(&server, text).await;
    let error = bounded("read", source.read(WINDOW))
        .await
        .expect_err("a blind read fails");
    assert_eq!(error.kind(), ErrorKind::InvalidResponse, "{error}");
    error.to_string()
}

fn assert_close(actual: Option<f64>, expected: f64) {
    let actual = actual.unwrap_or(f64::NAN);
    assert!((actual - expected).abs() < 1e-9, "{actual} != {expected}");
}

#[tokio::test]
async fn go_client_codes_and_handlers_are_read_with_the_top_error_from_the_requests_family() {
    let reading = two_reads(go_client(), &go_exposition(100, 0), &go_exposition(150, 50)).await;
    assert_eq!(reading.requests, 100);
    assert_close(reading.error_rate, 0.5);
    assert_eq!(reading.top_error.as_deref(), Some("get /api/items -> 503"));
    assert!(reading.p95_latency_ms.is_some(), "{reading:?}");
}

#[tokio::test]
async fn fastapi_status_classes_count_5xx_as_errors() {
    let reading = two_reads(
        metrics(
            "http_requests_total",
            "http_request_duration_seconds_bucket",
            "status",
            "handler",
            "method",
        ),
        &fastapi_exposition(10, 0),
        &fastapi_exposition(40, 10),
    )
    .await;
    assert_eq!(reading.requests, 40);
    assert_close(reading.error_rate, 0.25);
    assert_eq!(
        reading.top_error.as_deref(),
        Some("GET /items/{item_id} -> 5xx")
    );
    assert!(reading.p95_latency_ms.is_some(), "{reading:?}");
}

#[tokio::test]
async fn micrometer_without_buckets_reads_the_error_rate_and_no_p95() {
    let reading = two_reads(
        micrometer(),
        &micrometer_exposition(100, 0, None),
        &micrometer_exposition(190, 10, None),
    )
    .await;
    assert_eq!(reading.requests, 100);
    assert_close(reading.error_rate, 0.1);
    assert_eq!(reading.p95_latency_ms, None, "no buckets, no quantile");
    assert_eq!(reading.top_error.as_deref(), Some("GET /api/items -> 500"));
}

#[tokio::test]
async fn micrometer_summary_quantile_gives_the_p95() {
    let reading = two_reads(
        micrometer(),
        &micrometer_exposition(100, 0, Some(0.3)),
        &micrometer_exposition(200, 0, Some(0.25)),
    )
    .await;
    assert_eq!(reading.requests, 100);
    assert_close(reading.error_rate, 0.0);
    assert_close(reading.p95_latency_ms, 250.0);
}

#[tokio::test]
async fn opentelemetry_status_code_and_route_are_read() {
    let reading = two_reads(otel(), &otel_exposition(10, 0), &otel_exposition(30, 20)).await;
    assert_eq!(reading.requests, 40);
    assert_close(reading.error_rate, 0.5);
    assert_eq!(reading.top_error.as_deref(), Some("POST /v1/orders -> 502"));
    assert!(reading.p95_latency_ms.is_some(), "{reading:?}");
}

#[tokio::test]
async fn guessed_labels_on_a_go_client_service_fail_every_read_naming_the_labels_present() {
    // The case: a profile guessed `status`/`route` for a service that exports `code`/`handler`.
    let guessed = metrics(
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "status",
        "route",
        "method",
    );
    let error = failed_read(guessed, &go_exposition(100, 50)).await;
    assert!(
        error.contains(
            "label `status` is on no series of `http_requests_total`; its labels are code, handler, method"
        ),
        "{error}"
    );
    assert!(
        error.contains("label `route` is on no series of `http_requests_total`"),
        "{error}"
    );
}

#[tokio::test]
async fn a_route_label_the_top_error_relies_on_is_checked_on_the_requests_family() {
    let wrong_route = metrics(
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "code",
        "path",
        "method",
    );
    let error = failed_read(wrong_route, &go_exposition(1, 1)).await;
    assert!(
        error.ends_with(
            "label `path` is on no series of `http_requests_total`; its labels are code, handler, method"
        ),
        "{error}"
    );
}

#[tokio::test]
async fn labels_of_an_errors_family_with_series_are_checked() {
    let mut with_errors = go_client();
    with_errors.errors = Some("app_errors_total".to_owned());
    let text = format!(
        "{}app_errors_total{{handler=\"/api/items\",method=\"get\",code=\"503\",kind=\"db\"}} 4\n",
        go_exposition(1, 1)
    );
    let error = failed_read(with_errors.clone(), &text).await;
    assert!(
        error.ends_with(
            "label `error` is on no series of `app_errors_total`; its labels are code, handler, kind, method"
        ),
        "{error}"
    );
    // An errors family with no series yet (no error so far) is no blindness.
    with_errors.error_label = "kind".to_owned();
    let reading = two_reads(with_errors, &go_exposition(10, 0), &go_exposition(20, 0)).await;
    assert_close(reading.error_rate, 0.0);
}

#[tokio::test]
async fn a_requests_family_with_series_only_of_other_names_is_blind() {
    // The family is declared, every series lives under another name: the selector matches nothing.
    let error = failed_read(
        otel(),
        "# TYPE http_server_request_duration_seconds histogram\n\
         http_server_duration_milliseconds_count{http_status_code=\"200\"} 5\n",
    )
    .await;
    assert!(
        error.ends_with(
            "family `http_server_request_duration_seconds_count` has no series: its selector matches nothing"
        ),
        "{error}"
    );
}

#[tokio::test]
async fn check_reports_each_signal_with_its_series_and_labels() {
    let server = MockServer::start().await;
    serve_text(&server, &go_exposition(100, 50)).await;

    // Right names: every signal reads series.
    let check = bounded("check", source(&server, go_client()).check())
        .await
        .expect("a check");
    let report = check.report();
    assert!(!report.is_blind(), "{report:?}");
    let error_rate = report.signal(SignalKind::ErrorRate).expect("checked");
    assert_eq!(error_rate.series, 3);
    assert_eq!(error_rate.labels.len(), 1);
    assert!(error_rate.labels[0].present);
    assert_eq!(
        report.signal(SignalKind::Latency).map(|check| check.series),
        Some(3)
    );

    // Guessed names: error rate and top error are blind, each naming the label.
    let guessed = metrics(
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "status",
        "route",
        "method",
    );
    let report = bounded("check", source(&server, guessed).check())
        .await
        .expect("a check")
        .report();
    let blind: Vec<SignalKind> = report.blind().map(|check| check.signal).collect();
    assert_eq!(blind, [SignalKind::ErrorRate, SignalKind::TopError]);
    let printed = report
        .signal(SignalKind::ErrorRate)
        .expect("checked")
        .to_string();
    assert_eq!(
        printed,
        "error rate: 3 series of http_requests_total; labels: status ABSENT -> BLIND: label `status` is on no series of `http_requests_total`; its labels are code, handler, method"
    );
    assert_eq!(
        report
            .signal(SignalKind::Requests)
            .map(|check| &check.finding),
        Some(&Finding::Ok)
    );
}

#[tokio::test]
async fn check_warns_about_a_summary_without_quantiles_and_flags_a_latency_family_that_is_nowhere()
{
    let server = MockServer::start().await;
    serve_text(&server, &micrometer_exposition(1, 0, None)).await;
    let report = bounded("check", source(&server, micrometer()).check())
        .await
        .expect("a check")
        .report();
    assert!(!report.is_blind(), "{report:?}");
    assert!(
        matches!(
            report
                .signal(SignalKind::Latency)
                .map(|check| &check.finding),
            Some(Finding::Warning(_))
        ),
        "{report:?}"
    );

    let mut misnamed = go_client();
    misnamed.latency_buckets = "http_latency_seconds_bucket".to_owned();
    serve_text(&server, &go_exposition(1, 0)).await;
    let source = source(&server, misnamed);
    let report = bounded("check", source.check())
        .await
        .expect("a check")
        .report();
    let blind: Vec<SignalKind> = report.blind().map(|check| check.signal).collect();
    assert_eq!(blind, [SignalKind::Latency]);
    // A read still succeeds: the error rate is right, the p95 stays empty.
    let reading = bounded("read", source.read(WINDOW))
        .await
        .expect("latency never fails a read");
    assert_eq!(reading.p95_latency_ms, None);
}

#[tokio::test]
async fn an_empty_route_or_method_label_says_the_service_has_none() {
    // express-prom-bundle's default: only `status_code` on the requests family.
    let text = |ok: u64, failed: u64| {
        format!(
            "# TYPE http_request_duration_seconds histogram\n\
             http_request_duration_seconds_bucket{{status_code=\"200\",le=\"+Inf\"}} {ok}\n\
             http_request_duration_seconds_count{{status_code=\"200\"}} {ok}\n\
             http_request_duration_seconds_bucket{{status_code=\"500\",le=\"+Inf\"}} {failed}\n\
             http_request_duration_seconds_count{{status_code=\"500\"}} {failed}\n"
        )
    };
    let bare = metrics(
        "http_request_duration_seconds_count",
        "http_request_duration_seconds_bucket",
        "status_code",
        "",
        "",
    );
    let reading = two_reads(bare, &text(10, 0), &text(16, 4)).await;
    assert_close(reading.error_rate, 0.4);
    assert_eq!(reading.top_error.as_deref(), Some("500"));
}
