//! Discovery on expositions written after each library's documented output (see
//! `tests/fixtures/metrics/`): the Prometheus Go client, prometheus-fastapi-instrumentator, Micrometer/Spring,
//! OpenTelemetry, express-prom-bundle's defaults, and an exposition without HTTP metrics.

use super::*;

const GO_CLIENT: &str = include_str!("../../../../tests/fixtures/metrics/go-client.txt");
const FASTAPI: &str = include_str!("../../../../tests/fixtures/metrics/fastapi.txt");
const MICROMETER: &str = include_str!("../../../../tests/fixtures/metrics/micrometer.txt");
const OTEL: &str = include_str!("../../../../tests/fixtures/metrics/otel.txt");
const EXPRESS: &str = include_str!("../../../../tests/fixtures/metrics/express.txt");
const NO_HTTP: &str = include_str!("../../../../tests/fixtures/metrics/no-http.txt");

/// (requests, duration, has buckets, status, route, method).
fn summary(discovery: &Discovery) -> (&str, &str, bool, &str, Option<&str>, Option<&str>) {
    (
        discovery.requests_metric.as_str(),
        discovery.duration_metric.as_str(),
        discovery.duration_has_buckets,
        discovery.status_label.as_str(),
        discovery.route_label.as_deref(),
        discovery.method_label.as_deref(),
    )
}

#[test]
fn go_client_uses_code_and_handler_not_the_scrape_handler_counter() {
    let found = discover(GO_CLIENT).expect("found");
    assert_eq!(
        summary(&found),
        (
            "http_requests_total",
            "http_request_duration_seconds",
            true,
            "code",
            Some("handler"),
            Some("method")
        )
    );
    assert!(found.notes[0].contains("\"200\""), "{:?}", found.notes);
}

#[test]
fn fastapi_instrumentator_status_classes_and_the_labelled_histogram() {
    let found = discover(FASTAPI).expect("found");
    assert_eq!(
        summary(&found),
        (
            "http_requests_total",
            "http_request_duration_seconds",
            true,
            "status",
            Some("handler"),
            Some("method")
        )
    );
}

#[test]
fn micrometer_counts_from_the_server_summary_without_buckets() {
    let found = discover(MICROMETER).expect("found");
    assert_eq!(
        summary(&found),
        (
            "http_server_requests_seconds_count",
            "http_server_requests_seconds",
            false,
            "status",
            Some("uri"),
            Some("method")
        )
    );
    assert!(
        found
            .notes
            .iter()
            .any(|note| note.contains("summary without buckets")),
        "{:?}",
        found.notes
    );
}

#[test]
fn opentelemetry_semantic_conventions() {
    let found = discover(OTEL).expect("found");
    assert_eq!(
        summary(&found),
        (
            "http_server_request_duration_seconds_count",
            "http_server_request_duration_seconds",
            true,
            "http_response_status_code",
            Some("http_route"),
            Some("http_request_method")
        )
    );
}

#[test]
fn express_defaults_have_a_status_but_no_route_and_say_so() {
    let found = discover(EXPRESS).expect("found");
    assert_eq!(
        summary(&found),
        (
            "http_request_duration_seconds_count",
            "http_request_duration_seconds",
            true,
            "status_code",
            None,
            None
        )
    );
    assert!(
        found
            .notes
            .iter()
            .any(|note| note.starts_with("route_label: none of")),
        "{:?}",
        found.notes
    );
}

#[test]
fn no_http_metrics_is_an_error_naming_what_is_exposed() {
    let error = discover(NO_HTTP).unwrap_err();
    assert!(
        error.contains("no counter or histogram/summary `_count` has a status label"),
        "{error}"
    );
    assert!(error.contains("jobs_processed_total"), "{error}");
    assert_eq!(discover("").unwrap_err(), "the exposition has no samples");
}

#[test]
fn openmetrics_counter_declared_without_total_and_untyped_expositions() {
    let openmetrics =
        "# TYPE requests counter\nrequests_total{status=\"500\",path=\"/a\"} 4\n# EOF\n";
    let found = discover(openmetrics).expect("found");
    assert_eq!(found.requests_metric, "requests_total");
    assert_eq!(found.route_label.as_deref(), Some("path"));
    let untyped = "http_requests_total{code=\"200\"} 1\nhttp_request_duration_seconds_bucket{le=\"+Inf\"} 1\n";
    let found = discover(untyped).expect("found");
    assert_eq!(found.requests_metric, "http_requests_total");
    assert_eq!(found.duration_metric, "http_request_duration_seconds");
}

#[test]
fn status_values_that_look_like_codes_win_over_other_status_labels() {
    let text = "# TYPE jobs_total counter\njobs_total{status=\"done\"} 5\n\
                # TYPE api_calls_total counter\napi_calls_total{status=\"200\",route=\"/x\"} 5\n";
    assert_eq!(
        discover(text).expect("found").requests_metric,
        "api_calls_total"
    );
}

#[test]
fn django_prometheus_view_labels_are_taken_when_no_label_holds_paths() {
    let found = discover(include_str!(
        "../../../../tests/fixtures/metrics/django.txt"
    ))
    .expect("found");
    assert_eq!(
        summary(&found),
        (
            "django_http_responses_total_by_status_view_method_total",
            "django_http_requests_latency_seconds_by_view_method",
            true,
            "status",
            Some("view"),
            Some("method")
        )
    );
}
