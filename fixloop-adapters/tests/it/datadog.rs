//! Datadog signal source, metrics submitter and webhook parser against wiremock stubs of the documented API:
//! requests (paths, `from`/`to` in seconds, queries, `DD-API-KEY`/`DD-APPLICATION-KEY`, logs search body) and
//! answers (recorded shapes, nulls in pointlists, errors 401/403/429/500, timeout, malformed and empty bodies).

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fixloop_adapters::datadog::{
    AlertTransition, DatadogConfig, DatadogMetricsSubmitter, DatadogQueries, DatadogSignalSource,
    DatadogSite, ServiceSample, WEBHOOK_TEMPLATE, parse_webhook,
};
use fixloop_adapters::{ErrorKind, SignalSource};
use fixloop_contract::chrono::{TimeZone, Utc};
use fixloop_core::engine::Input;
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::contract::signal_source::{self, SignalScenario, Traffic};

const API_KEY: &str = "dd-api-key-secret-1";
const APP_KEY: &str = "dd-app-key-secret-2";
const WINDOW: Duration = Duration::from_secs(300);

fn config(server: &MockServer) -> DatadogConfig {
    DatadogConfig {
        site: DatadogSite::Eu1,
        env: Some("prod".to_owned()),
        timeout: Duration::from_millis(500),
        base_url_override: Some(server.uri()),
        ..DatadogConfig::new(API_KEY, APP_KEY, "checkout")
    }
}

fn source(server: &MockServer) -> DatadogSignalSource {
    DatadogSignalSource::new(config(server), fixloop_adapters::default_client())
}

/// A recorded-shape `/api/v1/query` answer with the given points (ms timestamps).
fn query_answer(query: &str, points: Value) -> Value {
    json!({
        "status": "ok", "resp_version": 1, "res_type": "time_series", "query": query, "message": "",
        "from_date": 1_641_343_852_000_i64, "to_date": 1_641_430_252_000_i64, "group_by": [], "times": [], "values": [],
        "series": [{"end": 1_641_430_499_000_i64, "attributes": {}, "metric": "m", "interval": 60, "tag_set": [],
                    "start": 1_641_344_100_000_i64, "length": 3, "query_index": 0, "aggr": "sum",
                    "scope": "service:checkout,env:prod", "pointlist": points, "expression": query,
                    "unit": [null, null], "display_name": "m"}]
    })
}

const HITS: &str = "sum:trace.http.request.hits{service:checkout,env:prod}.as_count()";
const ERRORS: &str = "sum:trace.http.request.errors{service:checkout,env:prod}.as_count()";
const P95: &str = "p95:trace.http.request{service:checkout,env:prod}";

fn unix_now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// `from`/`to` are epoch SECONDS (10 digits, near now) spanning the window.
fn seconds_window(request: &Request) -> bool {
    let get = |name: &str| {
        request
            .url
            .query_pairs()
            .find(|(key, _)| key == name)
            .and_then(|(_, value)| value.parse::<i64>().ok())
    };
    let (Some(from), Some(to)) = (get("from"), get("to")) else {
        return false;
    };
    (to - unix_now()).abs() < 120 && to - from == 300
}

async fn mount_query(server: &MockServer, query: &str, points: Value) {
    Mock::given(method("GET"))
        .and(path("/api/v1/query"))
        .and(query_param("query", query))
        .and(seconds_window)
        .and(header("DD-API-KEY", API_KEY))
        .and(header("DD-APPLICATION-KEY", APP_KEY))
        .respond_with(ResponseTemplate::new(200).set_body_json(query_answer(query, points)))
        .expect(1)
        .mount(server)
        .await;
}

fn log(message: &str) -> Value {
    json!({"id": "AQAAAYAZdbh47dGwNwAAAABBWUFaZGJyMUFBQ0s4OEN3YmZ1UDJRQUI", "type": "log",
           "attributes": {"status": "error", "timestamp": "2022-04-11T16:29:47.000Z", "service": "checkout",
                          "message": message, "tags": ["env:prod"], "attributes": {}}})
}

async fn mount_logs(server: &MockServer, data: Value) {
    Mock::given(method("POST"))
        .and(path("/api/v2/logs/events/search"))
        .and(header("DD-API-KEY", API_KEY))
        .and(header("DD-APPLICATION-KEY", APP_KEY))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": data, "meta": {"status": "done"}})),
        )
        .expect(1)
        .mount(server)
        .await;
}

#[tokio::test]
async fn reads_error_rate_p95_requests_and_top_error() {
    let server = MockServer::start().await;
    mount_query(
        &server,
        HITS,
        json!([
            [1_700_000_000_000_i64, 60.0],
            [1_700_000_060_000.0, 40.0],
            [1_700_000_120_000_i64, null]
        ]),
    )
    .await;
    mount_query(
        &server,
        ERRORS,
        json!([
            [1_700_000_000_000_i64, 2.0],
            [1_700_000_060_000_i64, 3.0],
            [1_700_000_120_000_i64, null]
        ]),
    )
    .await;
    mount_query(
        &server,
        P95,
        json!([
            [1_700_000_000_000_i64, 0.25],
            [1_700_000_060_000_i64, 0.3],
            [1_700_000_120_000_i64, null]
        ]),
    )
    .await;
    mount_logs(
        &server,
        json!([
            log("payment provider timeout\n  at charge()"),
            log("db pool exhausted"),
            log("payment provider timeout\n  at charge()"),
        ]),
    )
    .await;

    let reading = source(&server).read(WINDOW).await.unwrap();
    assert_eq!(reading.requests, 100);
    assert_eq!(reading.error_rate, Some(0.05));
    assert_eq!(
        reading.p95_latency_ms,
        Some(300.0),
        "last non-null point, seconds to ms"
    );
    assert_eq!(
        reading.top_error.as_deref(),
        Some("payment provider timeout")
    );

    // The logs search asks for the service's newest error logs over the window.
    let requests = server.received_requests().await.unwrap();
    let logs = requests
        .iter()
        .find(|r| r.url.path() == "/api/v2/logs/events/search")
        .unwrap();
    let body: Value = serde_json::from_slice(&logs.body).unwrap();
    assert_eq!(
        body["filter"]["query"],
        "service:checkout env:prod status:error"
    );
    assert_eq!(body["filter"]["from"], "now-300s");
    assert_eq!(body["filter"]["to"], "now");
    assert_eq!(body["sort"], "-timestamp");
    assert!(body["page"]["limit"].as_u64().unwrap() <= 100);

    // Evidence links deep-link into the EU site's app host, with millisecond times.
    assert!(!reading.evidence_links.is_empty());
    for link in &reading.evidence_links {
        assert!(
            link.url.starts_with("https://app.datadoghq.eu/"),
            "{}",
            link.url
        );
    }
    let explorer = &reading.evidence_links[0].url;
    assert!(explorer.contains("/metric/explorer?from_ts="), "{explorer}");
    let from_ts: String = explorer
        .split("from_ts=")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    assert_eq!(from_ts.len(), 13, "milliseconds in UI links: {explorer}");
    assert!(
        explorer.contains("exp_metric=trace.http.request.errors"),
        "{explorer}"
    );
    assert!(reading.evidence_links.iter().any(|l| {
        l.url
            .starts_with("https://app.datadoghq.eu/logs?query=service%3Acheckout")
    }));
}

#[tokio::test]
async fn no_traffic_gives_no_rate_and_no_latency() {
    let server = MockServer::start().await;
    mount_query(&server, HITS, json!([[1_700_000_000_000_i64, null]])).await;
    mount_query(&server, ERRORS, json!([])).await;
    mount_query(&server, P95, json!([[1_700_000_000_000_i64, 0.4]])).await;
    Mock::given(method("POST"))
        .and(path("/api/v2/logs/events/search"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": []})))
        .mount(&server)
        .await;
    let reading = source(&server).read(WINDOW).await.unwrap();
    assert_eq!(reading.requests, 0);
    assert_eq!(reading.error_rate, None);
    assert_eq!(reading.p95_latency_ms, None);
    assert_eq!(reading.top_error, None);
}

#[tokio::test]
async fn submitted_metric_set_queries_the_submitted_metrics() {
    let server = MockServer::start().await;
    mount_query(
        &server,
        "sum:fixloop.demo.requests{service:checkout,env:prod}.as_count()",
        json!([[1.0, 10.0]]),
    )
    .await;
    mount_query(
        &server,
        "sum:fixloop.demo.errors{service:checkout,env:prod}.as_count()",
        json!([[1.0, 5.0]]),
    )
    .await;
    mount_query(
        &server,
        "max:fixloop.demo.latency.p95_ms{service:checkout,env:prod}",
        json!([[1.0, 120.0]]),
    )
    .await;
    mount_logs(&server, json!([])).await;
    let mut config = config(&server);
    config.queries = DatadogQueries::demo_shop();
    let reading = DatadogSignalSource::new(config, fixloop_adapters::default_client())
        .read(WINDOW)
        .await
        .unwrap();
    assert_eq!(reading.error_rate, Some(0.5));
    assert_eq!(
        reading.p95_latency_ms,
        Some(120.0),
        "submitted p95 is already in ms"
    );
}

#[tokio::test]
async fn configured_queries_and_no_logs_query_are_honoured() {
    let server = MockServer::start().await;
    mount_query(
        &server,
        "sum:http.requests{service:checkout,env:prod}.as_count()",
        json!([[1.0, 40.0]]),
    )
    .await;
    mount_query(
        &server,
        "sum:http.requests{service:checkout,env:prod,status_class:5xx}.as_count()",
        json!([[1.0, 10.0]]),
    )
    .await;
    mount_query(
        &server,
        "p95:http.latency{service:checkout,env:prod}",
        json!([[1.0, 0.5]]),
    )
    .await;
    let mut config = config(&server);
    config.queries = DatadogQueries {
        requests: "sum:http.requests{{scope}}.as_count()".to_owned(),
        errors: "sum:http.requests{{scope},status_class:5xx}.as_count()".to_owned(),
        p95: "p95:http.latency{{scope}}".to_owned(),
        p95_to_ms: 1000.0,
        logs: None,
        apm_service_link: false,
    };
    let reading = DatadogSignalSource::new(config, fixloop_adapters::default_client())
        .read(WINDOW)
        .await
        .unwrap();
    assert_eq!(reading.requests, 40);
    assert_eq!(reading.error_rate, Some(0.25));
    assert_eq!(reading.p95_latency_ms, Some(500.0));
    assert_eq!(reading.top_error, None, "no logs query, no top error");
    assert_eq!(
        reading.evidence_links.len(),
        1,
        "{:?}",
        reading.evidence_links
    );
    assert!(
        reading.evidence_links[0]
            .url
            .contains("exp_metric=http.requests"),
        "{:?}",
        reading.evidence_links
    );
    let requests = server.received_requests().await.unwrap();
    assert!(
        requests.iter().all(|r| r.url.path() == "/api/v1/query"),
        "no logs search without a logs query"
    );
}

/// A stub of Datadog's series intake and metrics query: it keeps the points `POST /api/v2/series` submits and
/// answers `GET /api/v1/query` (a simple `agg:metric{tag,…}` query) with the kept points of that metric carrying
/// every tag of the scope, as one series in the recorded shape.
#[derive(Clone, Default)]
struct FakeDatadogStore {
    points: Arc<Mutex<Vec<StoredPoint>>>,
}

/// `(metric, tags, timestamp in seconds, value)`.
type StoredPoint = (String, Vec<String>, i64, f64);

impl FakeDatadogStore {
    fn clear(&self) {
        self.points.lock().unwrap().clear();
    }
}

impl Respond for FakeDatadogStore {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if request.url.path() == "/api/v2/series" {
            let body: Value = serde_json::from_slice(&request.body).unwrap();
            let mut points = self.points.lock().unwrap();
            for series in body["series"].as_array().unwrap() {
                let tags: Vec<String> = serde_json::from_value(series["tags"].clone()).unwrap();
                for point in series["points"].as_array().unwrap() {
                    points.push((
                        series["metric"].as_str().unwrap().to_owned(),
                        tags.clone(),
                        point["timestamp"].as_i64().unwrap(),
                        point["value"].as_f64().unwrap(),
                    ));
                }
            }
            return ResponseTemplate::new(202).set_body_json(json!({"errors": []}));
        }
        let query = request
            .url
            .query_pairs()
            .find(|(key, _)| key == "query")
            .map(|(_, value)| value.into_owned())
            .unwrap();
        let (_, rest) = query.split_once(':').unwrap();
        let (metric, rest) = rest.split_once('{').unwrap();
        let (scope, _) = rest.split_once('}').unwrap();
        let pointlist: Vec<Value> = self
            .points
            .lock()
            .unwrap()
            .iter()
            .filter(|(name, tags, _, _)| {
                name == metric && scope.split(',').all(|tag| tags.iter().any(|t| t == tag))
            })
            .map(|(_, _, timestamp, value)| json!([timestamp * 1000, value]))
            .collect();
        ResponseTemplate::new(200).set_body_json(query_answer(&query, json!(pointlist)))
    }
}

#[tokio::test]
async fn demo_shop_queries_read_what_the_submitter_submits() {
    let server = MockServer::start().await;
    let store = FakeDatadogStore::default();
    Mock::given(method("POST"))
        .and(path("/api/v2/series"))
        .respond_with(store.clone())
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/query"))
        .respond_with(store.clone())
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v2/logs/events/search"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": []})))
        .mount(&server)
        .await;
    let config = DatadogConfig {
        queries: DatadogQueries::demo_shop(),
        ..config(&server)
    };
    let submitter =
        DatadogMetricsSubmitter::new(config.clone(), fixloop_adapters::default_client());
    let source = DatadogSignalSource::new(config, fixloop_adapters::default_client());
    let sample = |requests, errors, p95| ServiceSample {
        at: Utc.timestamp_opt(unix_now(), 0).unwrap(),
        interval: Duration::from_secs(10),
        requests,
        errors,
        p95_latency_ms: Some(p95),
    };

    submitter.submit(&sample(100, 40, 900.0)).await.unwrap();
    let hot = source.read(WINDOW).await.unwrap();
    assert_eq!(hot.requests, 100, "{hot:?}");
    assert_eq!(hot.error_rate, Some(0.4), "{hot:?}");
    assert_eq!(hot.p95_latency_ms, Some(900.0), "{hot:?}");

    // The hot interval left the window; the service recovered.
    store.clear();
    submitter.submit(&sample(120, 0, 20.0)).await.unwrap();
    let healthy = source.read(WINDOW).await.unwrap();
    assert_eq!(healthy.requests, 120, "{healthy:?}");
    assert_eq!(healthy.error_rate, Some(0.0), "{healthy:?}");
    assert_eq!(healthy.p95_latency_ms, Some(20.0), "{healthy:?}");
}

async fn failing_read(response: ResponseTemplate) -> ErrorKind {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(response)
        .mount(&server)
        .await;
    source(&server).read(WINDOW).await.unwrap_err().kind()
}

#[tokio::test]
async fn failures_are_classified() {
    let forbidden = json!({"errors": ["Forbidden"]});
    assert_eq!(
        failing_read(ResponseTemplate::new(401).set_body_json(&forbidden)).await,
        ErrorKind::Unauthorized
    );
    assert_eq!(
        failing_read(ResponseTemplate::new(403).set_body_json(&forbidden)).await,
        ErrorKind::Unauthorized
    );
    let limited = || {
        ResponseTemplate::new(429)
            .insert_header("x-ratelimit-limit", "300")
            .insert_header("x-ratelimit-period", "3600")
            .insert_header("x-ratelimit-remaining", "0")
            .insert_header("x-ratelimit-name", "logs_search")
            .set_body_string("<html>Too many requests</html>")
    };
    assert_eq!(
        failing_read(limited().insert_header("x-ratelimit-reset", "1729")).await,
        ErrorKind::RateLimited {
            retry_after: Some(Duration::from_secs(1729))
        }
    );
    assert_eq!(
        failing_read(limited().insert_header("retry-after", "7")).await,
        ErrorKind::RateLimited {
            retry_after: Some(Duration::from_secs(7))
        }
    );
    assert_eq!(
        failing_read(limited()).await,
        ErrorKind::RateLimited { retry_after: None }
    );
    assert_eq!(
        failing_read(ResponseTemplate::new(500)).await,
        ErrorKind::Unavailable
    );
    assert_eq!(
        failing_read(
            ResponseTemplate::new(400).set_body_json(json!({"errors": ["Error parsing query"]}))
        )
        .await,
        ErrorKind::InvalidResponse
    );
    assert_eq!(
        failing_read(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": []}))
                .set_delay(Duration::from_secs(3))
        )
        .await,
        ErrorKind::Timeout
    );
    assert_eq!(
        failing_read(ResponseTemplate::new(200).set_body_string("{\"series\": [")).await,
        ErrorKind::InvalidResponse
    );
    assert_eq!(
        failing_read(ResponseTemplate::new(200)).await,
        ErrorKind::InvalidResponse
    );
    assert_eq!(
        failing_read(
            ResponseTemplate::new(200)
                .set_body_json(json!({"status": "error", "error": "bad query"}))
        )
        .await,
        ErrorKind::InvalidResponse
    );
}

#[tokio::test]
async fn submitter_posts_v2_series_with_only_the_api_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v2/series"))
        .and(header("DD-API-KEY", API_KEY))
        .and(header("content-type", "application/json"))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({"errors": []})))
        .expect(1)
        .mount(&server)
        .await;
    let submitter =
        DatadogMetricsSubmitter::new(config(&server), fixloop_adapters::default_client());
    let at = Utc.with_ymd_and_hms(2026, 11, 21, 10, 0, 0).unwrap();
    submitter
        .submit(&ServiceSample {
            at,
            interval: Duration::from_secs(10),
            requests: 42,
            errors: 3,
            p95_latency_ms: Some(250.0),
        })
        .await
        .unwrap();
    let requests = server.received_requests().await.unwrap();
    assert!(
        requests[0].headers.get("DD-APPLICATION-KEY").is_none(),
        "submission needs the API key only"
    );
    let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
    let series = body["series"].as_array().unwrap();
    assert_eq!(series.len(), 3);
    assert_eq!(series[0]["metric"], "fixloop.demo.requests");
    assert_eq!(series[0]["type"], 1);
    assert_eq!(series[0]["interval"], 10);
    assert_eq!(
        series[0]["points"][0]["timestamp"],
        at.timestamp(),
        "seconds"
    );
    assert_eq!(series[0]["points"][0]["value"], 42.0);
    assert_eq!(series[1]["metric"], "fixloop.demo.errors");
    assert_eq!(series[2]["metric"], "fixloop.demo.latency.p95_ms");
    assert_eq!(series[2]["type"], 3);
    assert_eq!(series[2]["tags"], json!(["service:checkout", "env:prod"]));
}

#[tokio::test]
async fn submitter_errors_are_classified() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v2/series"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({"errors": ["Forbidden"]})))
        .mount(&server)
        .await;
    let submitter =
        DatadogMetricsSubmitter::new(config(&server), fixloop_adapters::default_client());
    let sample = ServiceSample {
        at: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
        interval: Duration::from_secs(10),
        requests: 1,
        errors: 0,
        p95_latency_ms: None,
    };
    assert_eq!(
        submitter.submit(&sample).await.unwrap_err().kind(),
        ErrorKind::Unauthorized
    );
}

const RENDERED: &str = r#"{"id":"7391946028192837465","event_type":"query_alert_monitor",
 "title":"[Triggered] Checkout p95 latency high",
 "body":"p95 latency > 1s on service:checkout @webhook-fixloop",
 "date":"1716220800000","alert_id":"148826901","alert_cycle_key":"7391946028192837465",
 "alert_transition":"Triggered","alert_type":"error","alert_title":"Checkout p95 latency high","alert_priority":"P2",
 "alert_query":"avg(last_5m):p95:trace.http.request.duration{service:checkout} > 1",
 "alert_scope":"service:checkout, env:prod","aggreg_key":"9bd4ac313a4d1e8fae2482df7b77628",
 "tags":"monitor, service:checkout, env:prod",
 "link":"https://app.datadoghq.com/event/jump_to?event_id=7391946028192837465",
 "org":{"id":"11023","name":"Acme"}}"#;

#[test]
fn webhook_triggered_and_recovered_share_the_dedupe_key() {
    let fired = parse_webhook(RENDERED.as_bytes()).unwrap();
    assert_eq!(fired.transition, AlertTransition::Triggered);
    assert_eq!(fired.alert.source, "datadog");
    assert_eq!(fired.alert.dedupe_key, "9bd4ac313a4d1e8fae2482df7b77628");
    assert_eq!(fired.alert.monitor_id.as_deref(), Some("148826901"));
    assert_eq!(fired.alert.title, "Checkout p95 latency high");
    assert_eq!(fired.scope, vec!["service:checkout", "env:prod"]);
    assert_eq!(
        fired.date,
        Some(Utc.timestamp_millis_opt(1_716_220_800_000).unwrap())
    );
    assert_eq!(
        fired.to_input(),
        Some(Input::AlertFired(fired.alert.clone()))
    );

    let recovered = RENDERED
        .replace("\"Triggered\"", "\"Recovered\"")
        .replace("[Triggered]", "[Recovered]");
    let recovered = parse_webhook(recovered.as_bytes()).unwrap();
    assert_eq!(recovered.transition, AlertTransition::Recovered);
    assert_eq!(
        recovered.to_input(),
        Some(Input::AlertResolved {
            dedupe_key: "9bd4ac313a4d1e8fae2482df7b77628".to_owned()
        })
    );

    let warn = parse_webhook(RENDERED.replace("\"Triggered\"", "\"Warn\"").as_bytes()).unwrap();
    assert_eq!(warn.transition, AlertTransition::Other("Warn".to_owned()));
    assert_eq!(warn.to_input(), None);
}

#[test]
fn webhook_template_renders_into_what_the_parser_reads() {
    // Render the published template the way Datadog does: plain text substitution of every variable.
    let vars = [
        ("$ID", "1234567"),
        ("$EVENT_TYPE", "query_alert_monitor"),
        ("$EVENT_TITLE", "[Re-Triggered] High 5xx"),
        ("$EVENT_MSG", "5xx above 5% @webhook-fixloop"),
        ("$DATE", "1406662672000"),
        ("$ALERT_ID", "1234"),
        ("$ALERT_CYCLE_KEY", "cycle-1"),
        ("$ALERT_TRANSITION", "Re-Triggered"),
        ("$ALERT_TYPE", "error"),
        ("$ALERT_TITLE", "High 5xx"),
        ("$ALERT_PRIORITY", "P1"),
        ("$ALERT_QUERY", "q"),
        ("$ALERT_SCOPE", ""),
        ("$AGGREG_KEY", ""),
        ("$TAGS", "monitor"),
        (
            "$LINK",
            "https://app.datadoghq.com/event/jump_to?event_id=1234567",
        ),
        ("$ORG_ID", "11023"),
        ("$ORG_NAME", "Datadog"),
    ];
    let mut rendered = WEBHOOK_TEMPLATE.to_owned();
    // Longest names first, so `$ALERT_ID` does not eat into `$ALERT_IDX`-like names.
    let mut sorted = vars.to_vec();
    sorted.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
    for (name, value) in sorted {
        rendered = rendered.replace(name, value);
    }
    assert!(
        !rendered.contains('$'),
        "every variable of the template is known: {rendered}"
    );
    let event = parse_webhook(rendered.as_bytes()).unwrap();
    assert_eq!(event.transition, AlertTransition::Triggered);
    assert_eq!(
        event.alert.dedupe_key, "cycle-1",
        "empty aggregation key falls back to the cycle key"
    );
    assert_eq!(event.alert.monitor_id.as_deref(), Some("1234"));
    assert!(event.scope.is_empty());
}

#[test]
fn webhook_default_payload_and_garbage() {
    let default = r#"{"body":"x","last_updated":"1406662672000","event_type":"query_alert_monitor",
        "title":"[Recovered] Memory Alert","date":"1406662672000","org":{"id":"1","name":"o"},"id":"42"}"#;
    let event = parse_webhook(default.as_bytes()).unwrap();
    assert_eq!(event.transition, AlertTransition::Recovered);
    assert_eq!(event.alert.dedupe_key, "42");
    assert_eq!(event.alert.title, "[Recovered] Memory Alert");
    for garbage in [
        &b""[..],
        b"not json",
        b"[]",
        b"{}",
        br#"{"id": "$ID", "alert_id": ""}"#,
    ] {
        let error = parse_webhook(garbage).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidResponse);
    }
}

#[test]
fn debug_output_never_shows_the_keys() {
    let server_config = DatadogConfig::new(API_KEY, APP_KEY, "checkout");
    let source =
        DatadogSignalSource::new(server_config.clone(), fixloop_adapters::default_client());
    let submitter =
        DatadogMetricsSubmitter::new(server_config.clone(), fixloop_adapters::default_client());
    for debug in [
        format!("{server_config:?}"),
        format!("{source:?}"),
        format!("{submitter:?}"),
    ] {
        assert!(
            !debug.contains(API_KEY) && !debug.contains(APP_KEY),
            "{debug}"
        );
        assert!(debug.contains("[redacted]"));
    }
}

/// The stub Datadog API behind a signal source, arranged per contract case.
struct DatadogScenario {
    server: MockServer,
}

#[async_trait::async_trait]
impl SignalScenario for DatadogScenario {
    async fn arrange(&self, traffic: Traffic) {
        self.server.reset().await;
        let (hits, errors) = match traffic {
            Traffic::Healthy => (200.0, 1.0),
            Traffic::Erroring => (200.0, 60.0),
            Traffic::Slow => {
                Mock::given(wiremock::matchers::any())
                    .respond_with(
                        ResponseTemplate::new(200)
                            .set_body_json(query_answer(HITS, json!([])))
                            .set_delay(Duration::from_secs(3)),
                    )
                    .mount(&self.server)
                    .await;
                return;
            }
            Traffic::Down => {
                Mock::given(wiremock::matchers::any())
                    .respond_with(
                        ResponseTemplate::new(503)
                            .set_body_json(json!({"errors": ["Service unavailable"]})),
                    )
                    .mount(&self.server)
                    .await;
                return;
            }
        };
        for (query, points) in [
            (HITS, json!([[1_700_000_000_000_i64, hits]])),
            (ERRORS, json!([[1_700_000_000_000_i64, errors]])),
            (P95, json!([[1_700_000_000_000_i64, 0.18]])),
        ] {
            Mock::given(method("GET"))
                .and(path("/api/v1/query"))
                .and(query_param("query", query))
                .respond_with(ResponseTemplate::new(200).set_body_json(query_answer(query, points)))
                .mount(&self.server)
                .await;
        }
        Mock::given(method("POST"))
            .and(path("/api/v2/logs/events/search"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"data": [log("payment provider timeout")]})),
            )
            .mount(&self.server)
            .await;
    }
}

#[tokio::test]
async fn datadog_signal_source_meets_the_signal_source_contract() {
    signal_source::check_all(|| async {
        let server = MockServer::start().await;
        let source: Arc<dyn SignalSource> = Arc::new(DatadogSignalSource::new(
            config(&server),
            fixloop_adapters::default_client(),
        ));
        (
            source,
            Box::new(DatadogScenario { server }) as Box<dyn SignalScenario>,
        )
    })
    .await;
}
