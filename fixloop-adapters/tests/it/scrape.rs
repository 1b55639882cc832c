//! The local scrape signal source against wiremock serving scripted `/metrics` texts: the signal-source contract,
//! exclusion of FixLoop's traffic, counter resets, the histogram p95, the top error, windows and failures; and a
//! property test that the exposition parser never panics.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fixloop_adapters::{
    ErrorKind, LabelMatch, ScrapeConfig, ScrapeMetrics, ScrapeSignalSource, SignalReading,
    SignalSource, http_client, parse_exposition,
};
use proptest::prelude::*;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::contract::bounded;
use crate::contract::signal_source::{self, SignalScenario, Traffic};
use crate::http_runner::closed_base_url;

const WINDOW: Duration = Duration::from_secs(300);

/// Cumulative counters of the demo service at one scrape.
#[derive(Debug, Clone, Default)]
struct Counters {
    /// `(route, method, status, source, count)`.
    requests: Vec<(&'static str, &'static str, &'static str, &'static str, u64)>,
    /// `(source, [(le, cumulative count)])`, `le` as written (`"+Inf"` last).
    buckets: Vec<(&'static str, Vec<(&'static str, u64)>)>,
    /// `(route, method, status, error, count)`.
    errors: Vec<(&'static str, &'static str, &'static str, &'static str, u64)>,
}

impl Counters {
    fn render(&self) -> String {
        let mut text = String::from(
            "# HELP demo_http_requests_total Requests served.\n# TYPE demo_http_requests_total counter\n",
        );
        for (route, method, status, source, count) in &self.requests {
            text.push_str(&format!(
                "demo_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\",source=\"{source}\"}} {count}\n"
            ));
        }
        text.push_str("# TYPE demo_http_request_duration_seconds histogram\n");
        for (source, buckets) in &self.buckets {
            for (le, count) in buckets {
                text.push_str(&format!(
                    "demo_http_request_duration_seconds_bucket{{route=\"/checkout\",method=\"POST\",source=\"{source}\",le=\"{le}\"}} {count}\n"
                ));
            }
            let total = buckets.last().map_or(0, |(_, count)| *count);
            text.push_str(&format!(
                "demo_http_request_duration_seconds_count{{route=\"/checkout\",method=\"POST\",source=\"{source}\"}} {total}\n"
            ));
        }
        text.push_str("# TYPE demo_http_errors_total counter\n");
        for (route, method, status, error, count) in &self.errors {
            text.push_str(&format!(
                "demo_http_errors_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\",error=\"{error}\"}} {count}\n"
            ));
        }
        text
    }
}

/// Traffic with `ok` successes and `failed` 500s of user traffic, and latency buckets `(le, count)` for users.
fn user_traffic(ok: u64, failed: u64, buckets: Vec<(&'static str, u64)>) -> Counters {
    Counters {
        requests: vec![
            ("/checkout", "POST", "200", "user", ok),
            ("/checkout", "POST", "500", "user", failed),
        ],
        buckets: vec![("user", buckets)],
        errors: vec![(
            "/checkout",
            "POST",
            "500",
            "payment provider timeout",
            failed,
        )],
    }
}

fn buckets(fast: u64, medium: u64, slow: u64) -> Vec<(&'static str, u64)> {
    vec![
        ("0.1", fast),
        ("0.5", fast + medium),
        ("1", fast + medium + slow),
        ("+Inf", fast + medium + slow),
    ]
}

async fn serve(server: &MockServer, counters: &Counters) {
    server.reset().await;
    Mock::given(method("GET"))
        .and(path("/metrics"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/plain; version=0.0.4")
                .set_body_string(counters.render()),
        )
        .mount(server)
        .await;
}

fn source(base_url: &str, timeout: Duration) -> Arc<ScrapeSignalSource> {
    let config = ScrapeConfig {
        timeout,
        ..ScrapeConfig::new(base_url)
    };
    Arc::new(ScrapeSignalSource::new(
        config,
        http_client(Duration::from_secs(10)).expect("a client"),
    ))
}

/// Serves `before`, reads (the baseline), serves `after`, reads again and returns the second reading.
async fn delta(server: &MockServer, before: &Counters, after: &Counters) -> SignalReading {
    let source = source(&server.uri(), Duration::from_secs(5));
    serve(server, before).await;
    bounded("baseline", source.read(WINDOW))
        .await
        .expect("baseline read");
    serve(server, after).await;
    bounded("read", source.read(WINDOW))
        .await
        .expect("second read")
}

struct StubScenario {
    server: MockServer,
    source: Arc<ScrapeSignalSource>,
}

#[async_trait]
impl SignalScenario for StubScenario {
    async fn arrange(&self, traffic: Traffic) {
        let (before, after) = match traffic {
            Traffic::Healthy => (
                user_traffic(1000, 2, buckets(900, 100, 2)),
                user_traffic(1500, 3, buckets(1350, 150, 3)),
            ),
            Traffic::Erroring => (
                user_traffic(1000, 2, buckets(900, 100, 2)),
                user_traffic(1300, 202, buckets(1000, 200, 302)),
            ),
            Traffic::Slow => {
                self.server.reset().await;
                Mock::given(path("/metrics"))
                    .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
                    .mount(&self.server)
                    .await;
                return;
            }
            Traffic::Down => {
                self.server.reset().await;
                Mock::given(path("/metrics"))
                    .respond_with(
                        ResponseTemplate::new(503).set_body_string("down for maintenance"),
                    )
                    .mount(&self.server)
                    .await;
                return;
            }
        };
        serve(&self.server, &before).await;
        bounded("priming read", self.source.read(WINDOW))
            .await
            .expect("priming read");
        serve(&self.server, &after).await;
    }
}

#[tokio::test]
async fn scrape_source_meets_the_signal_source_contract() {
    signal_source::check_all(|| async {
        let server = MockServer::start().await;
        let scraper = source(&server.uri(), Duration::from_millis(300));
        let source: Arc<dyn SignalSource> = scraper.clone();
        let scenario: Box<dyn SignalScenario> = Box::new(StubScenario {
            server,
            source: scraper,
        });
        (source, scenario)
    })
    .await;
}

#[tokio::test]
async fn first_scrape_has_no_rate_and_links_the_scrape_url() {
    let server = MockServer::start().await;
    serve(&server, &user_traffic(1000, 500, buckets(1000, 400, 100))).await;
    let reading = source(&server.uri(), Duration::from_secs(5))
        .read(WINDOW)
        .await
        .expect("a reading");
    assert_eq!(reading.error_rate, None);
    assert_eq!(reading.p95_latency_ms, None);
    assert_eq!(reading.requests, 0);
    assert_eq!(reading.evidence_links.len(), 1);
    assert_eq!(
        reading.evidence_links[0].url,
        format!("{}/metrics", server.uri())
    );
}

#[tokio::test]
async fn fixloop_validation_traffic_is_excluded() {
    let server = MockServer::start().await;
    let mut before = user_traffic(1000, 0, buckets(1000, 0, 0));
    let mut after = user_traffic(1100, 0, buckets(1100, 0, 0));
    before
        .requests
        .push(("/checkout", "POST", "500", "fixloop", 10));
    after
        .requests
        .push(("/checkout", "POST", "500", "fixloop", 510));
    before.buckets.push(("fixloop", buckets(0, 0, 10)));
    after.buckets.push(("fixloop", buckets(0, 0, 510)));
    let reading = delta(&server, &before, &after).await;
    assert_eq!(reading.requests, 100, "{reading:?}");
    assert_eq!(reading.error_rate, Some(0.0), "{reading:?}");
    let p95 = reading.p95_latency_ms.expect("a p95");
    assert!(
        p95 <= 100.0,
        "the slow fixloop requests are not counted: {p95}"
    );
}

#[tokio::test]
async fn decreasing_counter_is_a_reset() {
    let server = MockServer::start().await;
    let before = user_traffic(1000, 100, buckets(1100, 0, 0));
    // The service restarted: its counters start again from zero.
    let after = user_traffic(40, 10, buckets(50, 0, 0));
    let reading = delta(&server, &before, &after).await;
    assert_eq!(reading.requests, 50, "{reading:?}");
    assert_eq!(reading.error_rate, Some(0.2), "{reading:?}");
}

#[tokio::test]
async fn p95_is_interpolated_from_bucket_increases() {
    let server = MockServer::start().await;
    // Baseline: 1000 fast requests. Window: 50 fast, 40 medium, 10 slow.
    let before = user_traffic(1000, 0, buckets(1000, 0, 0));
    let after = user_traffic(1100, 0, buckets(1050, 40, 10));
    let reading = delta(&server, &before, &after).await;
    // Rank 95 of 100 falls in (0.5, 1]: 0.5 + 0.5 * (95 - 90) / 10 = 0.75 s.
    let p95 = reading.p95_latency_ms.expect("a p95");
    assert!((p95 - 750.0).abs() < 1e-6, "{p95}");
}

#[tokio::test]
async fn top_error_is_the_signature_with_the_largest_increase() {
    let server = MockServer::start().await;
    let mut before = user_traffic(1000, 10, buckets(1010, 0, 0));
    let mut after = user_traffic(1100, 40, buckets(1140, 0, 0));
    // Larger total, smaller increase: not the top error.
    before
        .errors
        .push(("/catalog", "GET", "503", "cache \"cold\"", 900));
    after
        .errors
        .push(("/catalog", "GET", "503", "cache \"cold\"", 905));
    before
        .requests
        .push(("/catalog", "GET", "503", "user", 900));
    after.requests.push(("/catalog", "GET", "503", "user", 905));
    let reading = delta(&server, &before, &after).await;
    assert_eq!(
        reading.top_error.as_deref(),
        Some("POST /checkout -> 500 payment provider timeout")
    );
    assert_eq!(reading.requests, 135);
    let rate = reading.error_rate.expect("a rate");
    assert!((rate - 35.0 / 135.0).abs() < 1e-9, "{rate}");
}

#[tokio::test]
async fn no_error_increase_means_no_top_error() {
    let server = MockServer::start().await;
    let before = user_traffic(1000, 10, buckets(1010, 0, 0));
    let after = user_traffic(1100, 10, buckets(1110, 0, 0));
    let reading = delta(&server, &before, &after).await;
    assert_eq!(reading.top_error, None);
    assert_eq!(reading.error_rate, Some(0.0));
}

#[tokio::test]
async fn window_baseline_is_the_oldest_scrape_within_it() {
    let server = MockServer::start().await;
    let source = source(&server.uri(), Duration::from_secs(5));
    for ok in [1000, 1100, 1150] {
        serve(&server, &user_traffic(ok, 0, buckets(ok, 0, 0))).await;
        bounded("read", source.read(WINDOW)).await.expect("a read");
    }
    serve(&server, &user_traffic(1160, 0, buckets(1160, 0, 0))).await;
    let wide = bounded("read", source.read(WINDOW)).await.expect("a read");
    assert_eq!(wide.requests, 160, "against the first scrape");
    serve(&server, &user_traffic(1165, 0, buckets(1165, 0, 0))).await;
    // No scrape is within a zero window: the newest earlier one is the baseline.
    let narrow = bounded("read", source.read(Duration::ZERO))
        .await
        .expect("a read");
    assert_eq!(narrow.requests, 5, "against the previous scrape");
}

#[tokio::test]
async fn html_instead_of_metrics_is_an_invalid_response() {
    let server = MockServer::start().await;
    Mock::given(path("/metrics"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html><body>login</body></html>"))
        .mount(&server)
        .await;
    let error = source(&server.uri(), Duration::from_secs(5))
        .read(WINDOW)
        .await
        .expect_err("not metrics");
    assert_eq!(error.kind(), ErrorKind::InvalidResponse);
}

#[tokio::test]
async fn unreachable_service_is_unavailable() {
    let base = closed_base_url().await;
    let error = bounded("read", source(&base, Duration::from_secs(5)).read(WINDOW))
        .await
        .expect_err("nothing listens");
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{}", error.detail());
}

async fn serve_text(server: &MockServer, route: &str, text: &str) {
    server.reset().await;
    Mock::given(method("GET"))
        .and(path(route))
        .respond_with(ResponseTemplate::new(200).set_body_string(text))
        .mount(server)
        .await;
}

#[tokio::test]
async fn scrape_without_the_requests_family_is_an_invalid_response_naming_it() {
    let server = MockServer::start().await;
    serve_text(
        &server,
        "/metrics",
        "# TYPE http_requests_total counter\nhttp_requests_total{code=\"200\"} 5\n",
    )
    .await;
    let source = source(&server.uri(), Duration::from_secs(5));
    let error = bounded("read", source.read(WINDOW))
        .await
        .expect_err("the requests family is missing");
    assert_eq!(error.kind(), ErrorKind::InvalidResponse);
    assert_eq!(
        error.to_string(),
        format!(
            "metrics at {}/metrics: family `demo_http_requests_total` is not in the exposition",
            server.uri()
        )
    );
    // The failed scrape is not kept: the next good scrape is still a first read.
    serve(&server, &user_traffic(1000, 500, buckets(1000, 400, 100))).await;
    let reading = bounded("read", source.read(WINDOW)).await.expect("a read");
    assert_eq!((reading.requests, reading.error_rate), (0, None));
}

#[tokio::test]
async fn declared_requests_family_without_series_is_blind_not_a_quiet_service() {
    let server = MockServer::start().await;
    let text =
        "# HELP demo_http_requests_total Requests.\n# TYPE demo_http_requests_total counter\n";
    serve_text(&server, "/metrics", text).await;
    let source = source(&server.uri(), Duration::from_secs(5));
    for _ in 0..2 {
        let error = bounded("read", source.read(WINDOW))
            .await
            .expect_err("no series is no data, not 0 requests");
        assert_eq!(error.kind(), ErrorKind::InvalidResponse);
        assert!(
            error.to_string().ends_with(
                "family `demo_http_requests_total` has no series: its selector matches nothing"
            ),
            "{error}"
        );
    }
}

#[tokio::test]
async fn check_lists_present_and_missing_families() {
    let server = MockServer::start().await;
    let text = "# TYPE demo_http_request_duration_seconds histogram\n\
                demo_http_requests_total{status=\"200\"} 3\n";
    serve_text(&server, "/metrics", text).await;
    let check = bounded(
        "check",
        source(&server.uri(), Duration::from_secs(5)).check(),
    )
    .await
    .expect("a check");
    assert_eq!(check.url, format!("{}/metrics", server.uri()));
    assert_eq!(
        check.present,
        [
            "demo_http_requests_total",
            "demo_http_request_duration_seconds_bucket"
        ]
    );
    assert_eq!(check.missing, ["demo_http_errors_total"]);
    assert!(!check.is_complete());

    serve(&server, &user_traffic(1, 0, buckets(1, 0, 0))).await;
    let check = bounded(
        "check",
        source(&server.uri(), Duration::from_secs(5)).check(),
    )
    .await
    .expect("a check");
    assert!(check.is_complete(), "{check:?}");
}

#[tokio::test]
async fn check_of_a_body_that_is_not_metrics_is_an_invalid_response() {
    let server = MockServer::start().await;
    serve_text(&server, "/metrics", "<html>login</html>").await;
    let error = bounded(
        "check",
        source(&server.uri(), Duration::from_secs(5)).check(),
    )
    .await
    .expect_err("not metrics");
    assert_eq!(error.kind(), ErrorKind::InvalidResponse);
}

/// A generic service: `http_requests_total{code,handler,verb,origin}`, `http_request_seconds_bucket` and
/// `http_failures_total{code,handler,verb,reason}` at `/internal/metrics`, validation traffic under
/// `origin="probe"`.
fn generic_exposition(ok: u64, failed: u64, probe_failures: u64) -> String {
    format!(
        "http_requests_total{{handler=\"/orders\",verb=\"GET\",code=\"200\",origin=\"web\"}} {ok}\n\
         http_requests_total{{handler=\"/orders\",verb=\"GET\",code=\"503\",origin=\"web\"}} {failed}\n\
         http_requests_total{{handler=\"/orders\",verb=\"GET\",code=\"503\",origin=\"probe\"}} {probe_failures}\n\
         http_request_seconds_bucket{{le=\"0.1\"}} {total}\n\
         http_request_seconds_bucket{{le=\"+Inf\"}} {total}\n\
         http_failures_total{{handler=\"/orders\",verb=\"GET\",code=\"503\",reason=\"db down\"}} {failed}\n",
        total = ok + failed
    )
}

#[tokio::test]
async fn configured_families_labels_path_and_exclusion_are_read() {
    let server = MockServer::start().await;
    let metrics = ScrapeMetrics {
        requests: "http_requests_total".to_owned(),
        latency_buckets: "http_request_seconds_bucket".to_owned(),
        errors: Some("http_failures_total".to_owned()),
        status_label: "code".to_owned(),
        route_label: "handler".to_owned(),
        method_label: "verb".to_owned(),
        error_label: "reason".to_owned(),
        exclude: Some(LabelMatch {
            name: "origin".to_owned(),
            value: "probe".to_owned(),
        }),
    };
    let config = ScrapeConfig {
        metrics_path: "/internal/metrics".to_owned(),
        ..ScrapeConfig::with_metrics(server.uri(), metrics)
    };
    assert_eq!(
        config.metrics_url(),
        format!("{}/internal/metrics", server.uri())
    );
    let source = ScrapeSignalSource::new(
        config,
        http_client(Duration::from_secs(10)).expect("a client"),
    );
    serve_text(&server, "/internal/metrics", &generic_exposition(100, 0, 0)).await;
    bounded("baseline", source.read(WINDOW))
        .await
        .expect("a read");
    serve_text(
        &server,
        "/internal/metrics",
        &generic_exposition(175, 25, 400),
    )
    .await;
    let reading = bounded("read", source.read(WINDOW)).await.expect("a read");
    assert_eq!(
        reading.requests, 100,
        "probe traffic is excluded: {reading:?}"
    );
    assert_eq!(reading.error_rate, Some(0.25));
    assert_eq!(
        reading.top_error.as_deref(),
        Some("GET /orders -> 503 db down")
    );
    assert!(reading.p95_latency_ms.is_some(), "{reading:?}");
    let check = bounded("check", source.check()).await.expect("a check");
    assert!(check.is_complete(), "{check:?}");
}

proptest! {
    #[test]
    fn parser_never_panics_on_arbitrary_text(text in any::<String>()) {
        let _ = parse_exposition(&text);
    }

    #[test]
    fn parser_never_panics_on_exposition_like_text(
        text in r#"([a-z_]{1,8}(\{([a-z]{1,3}="([^"\\]|\\.){0,6}"?,?){0,3}\}?)? ?(-?[0-9.eE+]{1,6}|\+Inf|NaN|x)?( [0-9]{1,4})?( # \{.{0,5}\})?\n?){0,6}"#
    ) {
        let _ = parse_exposition(&text);
    }
}
