//! Datadog as the signal source, end to end: the inventory service of [`crate::inventory`] watched from a profile
//! with `source = "datadog"`, its signals read by the real Datadog adapter from a wiremock stub of the documented
//! API (`GET /api/v1/query`, `POST /api/v2/logs/events/search`) whose answers the test switches from hot to
//! healthy.
//!
//! hot → `incident.created` (numbers, top error and evidence links from Datadog) → `plan.generated` (5 items) → a
//! failing run → healthy → `system.status` RECOVERED; the stub saw the profile's queries with both keys.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fixloop_adapters::datadog::{DatadogQueries, DatadogSignalSource};
use fixloop_contract::{IncidentState, RunStatus, TestStatus, WsMessage};
use fixloop_server::profile::file::SignalsFile;
use fixloop_server::profile::{Profile, Secrets};
use fixloop_server::runtime::ports::{build_ports, datadog_config};
use fixloop_server::{Config, Mode, ServeOptions, start_serve};
use serde_json::{Value, json};
use tokio_tungstenite::connect_async;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::e2e::{STEP, next_message, wait_for};
use crate::inventory::{self, Inventory, TOKEN};

/// The story ends within this.
const STORY: Duration = Duration::from_secs(90);

const API_KEY: &str = "dd-fake-api-key-1";
const APP_KEY: &str = "dd-fake-app-key-2";

const REQUESTS: &str = "sum:inventory.requests{service:inventory}.as_count()";
const ERRORS: &str = "sum:inventory.errors{service:inventory}.as_count()";
const P95: &str = "max:inventory.latency.p95_ms{service:inventory}";
/// The logs search the profile gets when it names none: the service's error logs.
const LOGS: &str = "service:inventory status:error";
/// The message of the error log the stub serves while hot (its first line is the top error).
const LOG_MESSAGE: &str =
    "OperationalError: database unavailable\n  at inventory.db.reserve (db.py:41)";

/// The `[service.signals]` body: Datadog with explicit metric queries, no logs query (the default applies).
fn signals() -> String {
    format!(
        "source = \"datadog\"\nrequests_query = \"{REQUESTS}\"\nerrors_query = \"{ERRORS}\"\np95_query = \"{P95}\"\np95_to_ms = 1"
    )
}

/// Datadog, switchable: while `hot`, 200 requests with 80 errors, p95 350 ms and one error log; after, 200
/// requests, no errors, p95 40 ms, no error logs. An unknown path or query is answered 400, so a wrong request
/// fails the reads (and the story).
#[derive(Debug, Clone)]
struct DatadogStub {
    hot: Arc<AtomicBool>,
}

impl DatadogStub {
    /// A v1 query answer in the recorded shape: one series whose pointlist (ms timestamps, the last minute)
    /// holds `values`.
    fn series(query: &str, values: &[f64]) -> Value {
        let now_ms = i64::try_from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis(),
        )
        .unwrap_or(i64::MAX);
        let step = 15_000;
        let start = now_ms - step * i64::try_from(values.len()).unwrap_or(0);
        let pointlist: Vec<Value> = values
            .iter()
            .enumerate()
            .map(|(index, value)| json!([start + step * i64::try_from(index).unwrap_or(0), value]))
            .collect();
        let metric = query
            .split_once(':')
            .and_then(|(_, rest)| rest.split_once('{'))
            .map_or("", |(metric, _)| metric);
        json!({
            "status": "ok", "res_type": "time_series", "resp_version": 1, "query": query, "message": "",
            "from_date": start, "to_date": now_ms, "group_by": [], "times": [], "values": [],
            "series": [{
                "metric": metric, "display_name": metric, "expression": query, "scope": "service:inventory",
                "tag_set": [], "aggr": query.split(':').next(), "interval": 15, "length": values.len(),
                "start": start, "end": now_ms, "query_index": 0, "attributes": {}, "unit": [null, null],
                "pointlist": pointlist
            }]
        })
    }

    fn query(&self, query: &str) -> ResponseTemplate {
        let hot = self.hot.load(Ordering::SeqCst);
        let values: &[f64] = match (query, hot) {
            (REQUESTS, _) => &[50.0, 50.0, 50.0, 50.0],
            (ERRORS, true) => &[20.0, 20.0, 20.0, 20.0],
            (ERRORS, false) => &[0.0, 0.0, 0.0, 0.0],
            (P95, true) => &[340.0, 345.0, 350.0],
            (P95, false) => &[45.0, 42.0, 40.0],
            _ => {
                return ResponseTemplate::new(400).set_body_json(
                    json!({"errors": [format!("the stub knows no query {query:?}")]}),
                );
            }
        };
        ResponseTemplate::new(200).set_body_json(Self::series(query, values))
    }

    fn logs(&self) -> ResponseTemplate {
        let data = if self.hot.load(Ordering::SeqCst) {
            json!([{
                "id": "AQAAAYAZdbh47dGwNwAAAABBWUFaZGJyMUFBQ0s4OEN3YmZ1UDJRQUI", "type": "log",
                "attributes": {"status": "error", "timestamp": "2026-11-30T10:15:00.000Z", "service": "inventory",
                               "message": LOG_MESSAGE, "tags": ["service:inventory"], "attributes": {}}
            }])
        } else {
            json!([])
        };
        ResponseTemplate::new(200).set_body_json(json!({
            "data": data,
            "meta": {"status": "done", "elapsed": 12, "request_id": "stub", "page": {}}
        }))
    }
}

impl Respond for DatadogStub {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        match (request.method.as_str(), request.url.path()) {
            ("GET", "/api/v1/query") => {
                let query = request
                    .url
                    .query_pairs()
                    .find(|(name, _)| name == "query")
                    .map(|(_, value)| value.into_owned())
                    .unwrap_or_default();
                self.query(&query)
            }
            ("POST", "/api/v2/logs/events/search") => self.logs(),
            (method, path) => ResponseTemplate::new(400)
                .set_body_json(json!({"errors": [format!("the stub serves no {method} {path}")]})),
        }
    }
}

fn header(request: &Request, name: &str) -> Option<String> {
    request
        .headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datadog_mode_detects_an_incident_and_declares_recovered() {
    tokio::time::timeout(STORY, async {
        let inventory = Inventory::start().await;
        let hot = Arc::new(AtomicBool::new(false));
        let stub = MockServer::start().await;
        Mock::given(any())
            .respond_with(DatadogStub { hot: Arc::clone(&hot) })
            .mount(&stub)
            .await;

        let env: HashMap<String, String> = [
            ("DD_API_KEY", API_KEY),
            ("DD_APP_KEY", APP_KEY),
            ("INVENTORY_TOKEN", TOKEN),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
        let config = Config::from_env_map(&env).expect("config");
        let profile = Profile::parse(
            &inventory::profile("inventory", &inventory.url, &signals()),
            "inventory.toml",
            Secrets::From(&env),
        )
        .expect("a valid profile");
        let service = profile.services[0].clone();
        let SignalsFile::Datadog(file) = &service.signals else {
            panic!("a datadog profile: {:?}", service.signals)
        };

        // The service's real ports: the profile's Datadog queries, the default logs search.
        let http = fixloop_adapters::default_client();
        let (mut ports, choice) =
            build_ports(&config, &service, false, &http).expect("ports for a datadog profile");
        assert!(
            choice.signals.starts_with("Datadog (datadoghq.com, service inventory)"),
            "{choice}"
        );
        let mut datadog = datadog_config(&config).expect("datadog settings");
        datadog.service = "inventory".to_owned();
        datadog.queries = DatadogQueries {
            requests: file.requests_query.clone(),
            errors: file.errors_query.clone(),
            p95: file.p95_query.clone(),
            p95_to_ms: file.p95_to_ms,
            logs: Some("{scope} status:error".to_owned()),
            apm_service_link: false,
        };
        assert_eq!(
            format!("{:?}", ports.signals),
            format!("{:?}", DatadogSignalSource::new(datadog.clone(), http.clone())),
            "build_ports reads Datadog with the profile's queries and the default logs search"
        );
        // The same reader, pointed at the stub.
        datadog.base_url_override = Some(stub.uri());
        ports.signals = Arc::new(DatadogSignalSource::new(datadog, http.clone()));

        let server = start_serve(ServeOptions {
            port: 0,
            mode: Mode::Demo,
            profile: Some(profile),
            ports: Some(ports),
            config,
            ..ServeOptions::default()
        })
        .await
        .expect("the orchestrator starts");
        let ws_url = format!("{}/ws", server.orchestrator_url.replacen("http://", "ws://", 1));
        let mut socket = tokio::time::timeout(STEP, connect_async(&ws_url))
            .await
            .expect("connect in time")
            .expect("handshake")
            .0;
        match next_message(&mut socket).await {
            WsMessage::SystemStatus(status) => {
                assert_eq!(status.status, IncidentState::Healthy);
                assert_eq!(status.service.as_deref(), Some("inventory"));
            }
            other => panic!("system.status first, got {}", other.kind()),
        }
        let mut log = Vec::new();

        // Datadog runs hot, and the service really is broken (the plan's tests run against it).
        hot.store(true, Ordering::SeqCst);
        inventory.set_failing(true);
        let created = wait_for(&mut socket, &mut log, |message| {
            matches!(message, WsMessage::IncidentCreated(card) if card.datadog_summary.service == "inventory")
        })
        .await;
        let WsMessage::IncidentCreated(card) = created else {
            unreachable!()
        };
        let signal = &card.datadog_summary.signal;
        assert!(
            (signal.error_rate_5m - 40.0).abs() < 1e-9,
            "80 errors of 200 requests are 40 percent: {signal:?}"
        );
        assert!(
            (signal.p95_latency_ms_5m - 350.0).abs() < 1e-9,
            "the last p95 point: {signal:?}"
        );
        assert_eq!(
            signal.top_error.as_deref(),
            Some("OperationalError: database unavailable"),
            "the top error is the first line of the error log"
        );
        let labels: Vec<&str> = card
            .datadog_summary
            .evidence_links
            .iter()
            .map(|link| link.label.as_str())
            .collect();
        assert!(
            labels.contains(&"Datadog metric inventory.errors")
                && labels.contains(&"Datadog error logs of inventory"),
            "{labels:?}"
        );
        assert!(
            card.datadog_summary
                .evidence_links
                .iter()
                .all(|link| link.url.starts_with("https://app.datadoghq.com/")),
            "{:?}",
            card.datadog_summary.evidence_links
        );
        let generated = wait_for(&mut socket, &mut log, |message| {
            matches!(message, WsMessage::PlanGenerated(plan) if plan.incident_id == card.incident_id)
        })
        .await;
        let WsMessage::PlanGenerated(generated) = generated else {
            unreachable!()
        };
        assert_eq!(generated.plan.items.len(), 5, "{:?}", generated.plan.items);
        assert!(
            generated
                .plan
                .items
                .iter()
                .all(|item| item.target.url.starts_with(&inventory.url)),
            "{:?}",
            generated.plan.items
        );
        wait_for(&mut socket, &mut log, |message| {
            matches!(message, WsMessage::TestsUpdated(run)
                if run.incident_id == card.incident_id
                    && run.status == RunStatus::Failed
                    && run.tests.iter().any(|test| test.status == TestStatus::Fail))
        })
        .await;

        // Fixed: Datadog cools down and the service answers again.
        hot.store(false, Ordering::SeqCst);
        inventory.set_failing(false);
        wait_for(&mut socket, &mut log, |message| {
            matches!(message, WsMessage::SystemStatus(status)
                if status.status == IncidentState::Recovered
                    && status.service.as_deref() == Some("inventory"))
        })
        .await;

        // Every request the stub saw: the profile's queries and the default logs search, with both keys.
        let requests = tokio::time::timeout(STEP, stub.received_requests())
            .await
            .expect("requests in time")
            .expect("recording is on");
        assert!(!requests.is_empty());
        let mut queries = BTreeSet::new();
        let mut searches = BTreeSet::new();
        for request in &requests {
            assert_eq!(header(request, "DD-API-KEY").as_deref(), Some(API_KEY));
            assert_eq!(
                header(request, "DD-APPLICATION-KEY").as_deref(),
                Some(APP_KEY)
            );
            match request.url.path() {
                "/api/v1/query" => {
                    let param = |name: &str| {
                        request
                            .url
                            .query_pairs()
                            .find(|(key, _)| key == name)
                            .map(|(_, value)| value.into_owned())
                    };
                    let from: i64 = param("from").and_then(|v| v.parse().ok()).expect("from");
                    let to: i64 = param("to").and_then(|v| v.parse().ok()).expect("to");
                    assert!(from < to, "{}", request.url);
                    queries.insert(param("query").expect("a query"));
                }
                "/api/v2/logs/events/search" => {
                    let body: Value = serde_json::from_slice(&request.body).expect("a JSON body");
                    searches.insert(body["filter"]["query"].as_str().unwrap_or("").to_owned());
                }
                other => panic!("unexpected request to {other}"),
            }
        }
        assert_eq!(
            queries,
            BTreeSet::from([REQUESTS, ERRORS, P95].map(str::to_owned))
        );
        assert_eq!(searches, BTreeSet::from([LOGS.to_owned()]));

        server.shutdown().await;
        inventory.kill().await;
    })
    .await
    .expect("the story completes in time");
}
