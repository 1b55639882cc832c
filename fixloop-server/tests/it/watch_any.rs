//! FixLoop watches a service it has never heard of, from a profile alone: the inventory service of
//! [`crate::inventory`] (other routes, other metric names, bearer auth from a profile secret, its own failure
//! switch), over real sockets, with the real scrape source, synthetic probes, HTTP runner and rule planner.
//!
//! Each story: break it → an incident on that service with a plan of five of *its* journeys → fix it →
//! RECOVERED; the same with synthetic probes and no `/metrics`; two services in one process break independently;
//! a service that dies opens an incident; a service whose metrics vanish is HEALTHY but says its signals are
//! degraded.

use std::collections::HashMap;
use std::time::Duration;

use fixloop_contract::{
    IncidentState, RunStatus, ServiceState, SystemStatus, TestStatus, WsMessage,
};
use fixloop_server::profile::{Profile, Secrets};
use fixloop_server::{Mode, RunningServer, ServeOptions, start_serve};
use tokio_tungstenite::connect_async;

use crate::e2e::{STEP, Socket, next_message, wait_for};
use crate::inventory::{self, Inventory, TOKEN};

/// Every story ends within this.
const STORY: Duration = Duration::from_secs(90);

/// The inventory journeys' ids.
const JOURNEYS: [&str; 7] = [
    "health",
    "items-list",
    "item-read",
    "reserve",
    "reserve-invalid",
    "whoami",
    "anonymous-refused",
];

/// Starts `fixloop serve` on an ephemeral port with `profile_text`, its secret taken from a test environment.
async fn serve(profile_text: &str) -> RunningServer {
    let env: HashMap<String, String> = [("INVENTORY_TOKEN".to_owned(), TOKEN.to_owned())].into();
    let profile = Profile::parse(profile_text, "inventory.toml", Secrets::From(&env))
        .expect("a valid profile");
    start_serve(ServeOptions {
        port: 0,
        mode: Mode::Demo,
        profile: Some(profile),
        ..ServeOptions::default()
    })
    .await
    .expect("the orchestrator starts")
}

async fn connect(server: &RunningServer) -> Socket {
    let url = format!(
        "{}/ws",
        server.orchestrator_url.replacen("http://", "ws://", 1)
    );
    tokio::time::timeout(STEP, connect_async(&url))
        .await
        .expect("connect in time")
        .expect("handshake")
        .0
}

async fn get_json<T: serde::de::DeserializeOwned>(url: String) -> T {
    let response = tokio::time::timeout(STEP, fixloop_adapters::default_client().get(url).send())
        .await
        .expect("answer in time")
        .expect("request sent");
    assert!(response.status().is_success(), "{}", response.status());
    tokio::time::timeout(STEP, response.json())
        .await
        .expect("body in time")
        .expect("JSON")
}

fn is_status(message: &WsMessage, service: &str, state: IncidentState) -> bool {
    matches!(message, WsMessage::SystemStatus(status)
        if status.status == state && status.service.as_deref() == Some(service))
}

/// The inventory with user traffic, watched through a scrape of its own metrics, and a WebSocket on the orchestrator.
async fn scraped_inventory() -> (
    Inventory,
    tokio::task::JoinHandle<()>,
    RunningServer,
    Socket,
) {
    let inventory = Inventory::start().await;
    let traffic = inventory.traffic();
    let server = serve(&inventory::profile(
        "inventory",
        &inventory.url,
        inventory::SCRAPE,
    ))
    .await;
    let socket = connect(&server).await;
    (inventory, traffic, server, socket)
}

/// Breaks the inventory, waits for its incident and plan, checks them, fixes it and waits for RECOVERED.
async fn break_and_recover(inventory: &Inventory, socket: &mut Socket, service: &str) {
    let mut log = Vec::new();
    inventory.set_failing(true);
    let created = wait_for(socket, &mut log, |message| {
        matches!(message, WsMessage::IncidentCreated(card) if card.datadog_summary.service == service)
    })
    .await;
    let WsMessage::IncidentCreated(card) = created else {
        unreachable!()
    };
    let generated = wait_for(socket, &mut log, |message| {
        matches!(message, WsMessage::PlanGenerated(plan) if plan.incident_id == card.incident_id)
    })
    .await;
    let WsMessage::PlanGenerated(generated) = generated else {
        unreachable!()
    };
    let ids: Vec<&str> = generated
        .plan
        .items
        .iter()
        .map(|item| item.test_id.as_str())
        .collect();
    assert_eq!(ids.len(), 5, "a plan of exactly five tests: {ids:?}");
    assert!(
        ids.iter().all(|id| JOURNEYS.contains(id)),
        "every test is one of the inventory's journeys: {ids:?}"
    );
    assert!(
        ids.contains(&"reserve-invalid") && ids.contains(&"whoami"),
        "coverage: {ids:?}"
    );
    for item in &generated.plan.items {
        assert!(
            item.target.url.starts_with(&inventory.url),
            "{}",
            item.target.url
        );
        for value in item.target.headers.values() {
            assert!(
                !value.contains(TOKEN),
                "the plan carries the placeholder, never the secret"
            );
        }
    }
    // While it is broken, a run fails on the broken routes, and the authenticated read passes: the secret was
    // substituted at send time.
    let failing = wait_for(socket, &mut log, |message| {
        matches!(message, WsMessage::TestsUpdated(run)
            if run.incident_id == card.incident_id && run.status != RunStatus::Running)
    })
    .await;
    let WsMessage::TestsUpdated(run) = failing else {
        unreachable!()
    };
    let verdict = |id: &str| {
        run.tests
            .iter()
            .find(|test| test.test_id == id)
            .map(|test| test.status)
    };
    assert_eq!(verdict("whoami"), Some(TestStatus::Pass), "{run:?}");
    assert!(
        run.tests.iter().any(|test| test.status == TestStatus::Fail),
        "a broken route fails its test: {run:?}"
    );
    for test in &run.tests {
        assert!(!test.details.as_deref().unwrap_or("").contains(TOKEN));
    }

    inventory.set_failing(false);
    wait_for(socket, &mut log, |message| {
        is_status(message, service, IncidentState::Recovered)
    })
    .await;
    assert!(
        log.iter()
            .any(|message| matches!(message, WsMessage::TestsUpdated(run)
            if run.incident_id == card.incident_id
                && run.status == RunStatus::Completed
                && run.tests.iter().all(|test| test.status == TestStatus::Pass))),
        "a passing run before RECOVERED"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_with_its_own_metrics_is_watched_from_its_profile_to_recovered() {
    tokio::time::timeout(STORY, async {
        let (inventory, traffic, server, mut socket) = scraped_inventory().await;
        match next_message(&mut socket).await {
            WsMessage::SystemStatus(status) => {
                assert_eq!(status.status, IncidentState::Healthy);
                assert_eq!(status.service.as_deref(), Some("inventory"));
            }
            other => panic!("system.status first, got {}", other.kind()),
        }
        break_and_recover(&inventory, &mut socket, "inventory").await;
        let services: Vec<ServiceState> =
            get_json(format!("{}/api/services", server.orchestrator_url)).await;
        assert_eq!(services.len(), 1);
        assert_eq!(services[0].name, "inventory");
        assert!(
            services[0].signals.starts_with("scrape of"),
            "{}",
            services[0].signals
        );
        traffic.abort();
        server.shutdown().await;
        inventory.kill().await;
    })
    .await
    .expect("the story completes in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_without_metrics_is_watched_by_synthetic_probes() {
    tokio::time::timeout(STORY, async {
        let inventory = Inventory::start().await;
        inventory.set_metrics_off(true);
        let server = serve(&inventory::profile(
            "inventory",
            &inventory.url,
            inventory::SYNTHETIC,
        ))
        .await;
        let mut socket = connect(&server).await;
        break_and_recover(&inventory, &mut socket, "inventory").await;
        server.shutdown().await;
        inventory.kill().await;
    })
    .await
    .expect("the story completes in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_services_in_one_process_break_independently() {
    tokio::time::timeout(STORY, async {
        let east = Inventory::start().await;
        let west = Inventory::start().await;
        let traffic = (east.traffic(), west.traffic());
        let profile = format!(
            "{}\n{}",
            inventory::profile("east", &east.url, inventory::SCRAPE),
            inventory::profile("west", &west.url, inventory::SCRAPE)
        );
        let server = serve(&profile).await;
        let api = server.orchestrator_url.clone();
        let mut socket = connect(&server).await;
        let mut log = Vec::new();
        east.set_failing(true);
        let created = wait_for(&mut socket, &mut log, |message| {
            matches!(message, WsMessage::IncidentCreated(_))
        })
        .await;
        let WsMessage::IncidentCreated(card) = created else {
            unreachable!()
        };
        assert_eq!(card.datadog_summary.service, "east");
        assert!(card.incident_id.contains("east"), "{}", card.incident_id);
        // The worst status is east's, and names it; west stays healthy with no incident.
        let status: SystemStatus = get_json(format!("{api}/api/status")).await;
        assert_ne!(status.status, IncidentState::Healthy);
        assert_eq!(status.service.as_deref(), Some("east"));
        let current: Option<fixloop_contract::IncidentCard> =
            get_json(format!("{api}/api/incidents/current")).await;
        assert_eq!(current.map(|card| card.incident_id), Some(card.incident_id.clone()));
        let west_state: ServiceState = get_json(format!("{api}/api/services/west")).await;
        assert_eq!(west_state.status.status, IncidentState::Healthy);
        assert!(west_state.current_incident.is_none());
        assert!(
            !log.iter().any(|message| matches!(message, WsMessage::IncidentCreated(card) if card.datadog_summary.service == "west")),
            "no incident on the healthy service"
        );
        let missing = tokio::time::timeout(STEP, fixloop_adapters::default_client().get(format!("{api}/api/services/north")).send())
            .await
            .expect("answer")
            .expect("sent");
        assert_eq!(missing.status(), 404);
        traffic.0.abort();
        traffic.1.abort();
        server.shutdown().await;
        east.kill().await;
        west.kill().await;
    })
    .await
    .expect("the story completes in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watched_service_that_dies_opens_an_incident_within_a_few_polls() {
    tokio::time::timeout(STORY, async {
        let (inventory, traffic, server, mut socket) = scraped_inventory().await;
        let mut log = Vec::new();
        // The process dies: every scrape is refused, and so is every probe.
        traffic.abort();
        inventory.kill().await;
        let created = wait_for(&mut socket, &mut log, |message| {
            matches!(message, WsMessage::IncidentCreated(_))
        })
        .await;
        let WsMessage::IncidentCreated(card) = created else {
            unreachable!()
        };
        assert!(
            card.title.contains("the signal source fails") && card.title.contains("probes failing"),
            "{}",
            card.title
        );
        let status: SystemStatus =
            get_json(format!("{}/api/status", server.orchestrator_url)).await;
        assert_ne!(status.status, IncidentState::Healthy, "{status:?}");
        assert_eq!(
            status.active_incident_id.as_deref(),
            Some(card.incident_id.as_str())
        );
        assert!(status.signals_degraded.is_some(), "{status:?}");
        server.shutdown().await;
    })
    .await
    .expect("the story completes in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_whose_metrics_vanish_is_degraded_not_silently_healthy() {
    tokio::time::timeout(STORY, async {
        let (inventory, traffic, server, mut socket) = scraped_inventory().await;
        let mut log = Vec::new();
        inventory.set_metrics_off(true);
        let degraded = wait_for(&mut socket, &mut log, |message| {
            matches!(message, WsMessage::SystemStatus(status) if status.signals_degraded.is_some())
        })
        .await;
        let WsMessage::SystemStatus(status) = degraded else {
            unreachable!()
        };
        assert_eq!(status.status, IncidentState::Healthy, "the service answers");
        let why = status.signals_degraded.unwrap_or_default();
        assert!(why.contains("probes of the service pass"), "{why}");
        let metrics = tokio::time::timeout(STEP, async {
            fixloop_adapters::default_client()
                .get(format!("{}/metrics", server.orchestrator_url))
                .send()
                .await?
                .text()
                .await
        })
        .await
        .expect("metrics in time")
        .expect("metrics");
        assert!(
            metrics.contains("fixloop_signals_degraded{service=\"inventory\"} 1"),
            "{metrics}"
        );
        // The exporter comes back: the marker is cleared.
        inventory.set_metrics_off(false);
        wait_for(&mut socket, &mut log, |message| {
            matches!(message, WsMessage::SystemStatus(status) if status.signals_degraded.is_none())
        })
        .await;
        assert!(
            !log.iter()
                .any(|message| matches!(message, WsMessage::IncidentCreated(_))),
            "no incident while the service answers"
        );
        traffic.abort();
        server.shutdown().await;
        inventory.kill().await;
    })
    .await
    .expect("the story completes in time");
}

/// The orchestrator's `/metrics` text.
async fn orchestrator_metrics(server: &RunningServer) -> String {
    tokio::time::timeout(STEP, async {
        fixloop_adapters::default_client()
            .get(format!("{}/metrics", server.orchestrator_url))
            .send()
            .await?
            .text()
            .await
    })
    .await
    .expect("metrics in time")
    .expect("metrics")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guessed_status_label_makes_the_service_degraded_never_healthy_at_zero() {
    tokio::time::timeout(STORY, async {
        let inventory = Inventory::start().await;
        let traffic = inventory.traffic();
        // The case: the profile guessed `status`, the service exports `code`; half the requests fail.
        assert_eq!(inventory::SCRAPE.matches("status_label = \"code\"").count(), 1);
        let guessed = inventory::SCRAPE.replacen("status_label = \"code\"", "status_label = \"status\"", 1);
        let server = serve(&inventory::profile("inventory", &inventory.url, &guessed)).await;
        let mut socket = connect(&server).await;
        let mut log = Vec::new();
        inventory.set_failing(true);
        let degraded = wait_for(&mut socket, &mut log, |message| {
            matches!(message, WsMessage::SystemStatus(status) if status.signals_degraded.is_some())
        })
        .await;
        let WsMessage::SystemStatus(status) = degraded else {
            unreachable!()
        };
        let why = status.signals_degraded.unwrap_or_default();
        assert!(
            why.contains(
                "label `status` is on no series of `inventory_http_requests_total`; its labels are code, method, origin, path"
            ),
            "{why}"
        );
        let status: SystemStatus =
            get_json(format!("{}/api/status", server.orchestrator_url)).await;
        assert!(status.signals_degraded.is_some(), "{status:?}");
        assert!(
            !(status.status == IncidentState::Healthy && status.error_rate_5m == 0.0 && status.signals_degraded.is_none()),
            "never a silent HEALTHY 0.0%: {status:?}"
        );
        let metrics = orchestrator_metrics(&server).await;
        assert!(
            metrics.contains("fixloop_signals_degraded{service=\"inventory\"} 1"),
            "{metrics}"
        );
        traffic.abort();
        server.shutdown().await;
        inventory.kill().await;
    })
    .await
    .expect("the story completes in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_degraded_reads_0_in_metrics_while_the_signals_read() {
    tokio::time::timeout(STORY, async {
        let (inventory, traffic, server, mut socket) = scraped_inventory().await;
        // The join snapshot: HEALTHY, nothing degraded.
        match next_message(&mut socket).await {
            WsMessage::SystemStatus(status) => {
                assert!(status.signals_degraded.is_none(), "{status:?}")
            }
            other => panic!("system.status first, got {}", other.kind()),
        }
        let metrics = orchestrator_metrics(&server).await;
        assert!(
            metrics.contains("fixloop_signals_degraded{service=\"inventory\"} 0"),
            "{metrics}"
        );
        traffic.abort();
        server.shutdown().await;
        inventory.kill().await;
    })
    .await
    .expect("the story completes in time");
}

/// Posts `body` to a webhook of the orchestrator with the shared secret; returns the status and JSON body.
async fn post_webhook(api: &str, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let response = tokio::time::timeout(
        STEP,
        fixloop_adapters::default_client()
            .post(format!("{api}{path}"))
            .header("x-fixloop-webhook-secret", WEBHOOK_SECRET)
            .json(&body)
            .send(),
    )
    .await
    .expect("answer in time")
    .expect("sent");
    let status = response.status().as_u16();
    let body = tokio::time::timeout(STEP, response.json())
        .await
        .expect("body in time")
        .expect("JSON");
    (status, body)
}

const WEBHOOK_SECRET: &str = "watch-any-webhook-secret";

fn alertmanager(service: &str, fingerprint: &str) -> serde_json::Value {
    serde_json::json!({
        "version": "4",
        "groupKey": "{}:{alertname=\"HighErrorRate\"}",
        "status": "firing",
        "receiver": "fixloop",
        "commonLabels": {"alertname": "HighErrorRate"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": "HighErrorRate", "service": service},
            "annotations": {"summary": format!("High 5xx error rate on {service}")},
            "startsAt": "2026-11-21T10:15:00Z",
            "generatorURL": "http://prometheus:9090/graph",
            "fingerprint": fingerprint
        }]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_go_to_the_service_whose_labels_they_carry_and_others_are_ignored() {
    tokio::time::timeout(STORY, async {
        let east = Inventory::start().await;
        let west = Inventory::start().await;
        let profile_text = format!(
            "{}\n{}",
            inventory::profile("east", &east.url, inventory::SCRAPE),
            inventory::profile("west", &west.url, inventory::SCRAPE)
        );
        let env: HashMap<String, String> = [
            ("INVENTORY_TOKEN".to_owned(), TOKEN.to_owned()),
            (
                "FIXLOOP_WEBHOOK_SECRET".to_owned(),
                WEBHOOK_SECRET.to_owned(),
            ),
        ]
        .into();
        let profile =
            Profile::parse(&profile_text, "two.toml", Secrets::From(&env)).expect("valid profile");
        let server = start_serve(ServeOptions {
            port: 0,
            mode: Mode::Demo,
            profile: Some(profile),
            config: fixloop_server::Config::from_env_map(&env).expect("config"),
            ..ServeOptions::default()
        })
        .await
        .expect("starts");
        let api = server.orchestrator_url.clone();

        // An alert about no watched service is accepted and ignored: no incident anywhere.
        let (status, body) = post_webhook(
            &api,
            "/internal/alertmanager/webhook",
            alertmanager("north", "f-1"),
        )
        .await;
        assert_eq!(
            (status, body["accepted"].as_u64()),
            (202, Some(0)),
            "{body}"
        );
        let services: Vec<ServiceState> = get_json(format!("{api}/api/services")).await;
        assert!(
            services
                .iter()
                .all(|service| service.current_incident.is_none())
        );

        // An alert labelled for west opens an incident on west only.
        let (status, body) = post_webhook(
            &api,
            "/internal/alertmanager/webhook",
            alertmanager("west", "f-2"),
        )
        .await;
        assert_eq!(
            (status, body["accepted"].as_u64()),
            (202, Some(1)),
            "{body}"
        );
        let west_state: ServiceState = get_json(format!("{api}/api/services/west")).await;
        assert!(west_state.current_incident.is_some(), "{west_state:?}");
        let east_state: ServiceState = get_json(format!("{api}/api/services/east")).await;
        assert!(east_state.current_incident.is_none(), "{east_state:?}");

        // A Datadog alert scoped to east goes to east.
        let (status, body) = post_webhook(
            &api,
            "/internal/datadog/webhook",
            serde_json::json!({
                "id": "evt-9",
                "alert_id": "42",
                "alert_transition": "Triggered",
                "alert_title": "High error rate on east",
                "alert_scope": "service:east,env:test",
                "aggreg_key": "dd-east",
                "date": "1763720100000"
            }),
        )
        .await;
        assert_eq!(
            (status, body["accepted"].as_bool()),
            (202, Some(true)),
            "{body}"
        );
        let east_state: ServiceState = get_json(format!("{api}/api/services/east")).await;
        assert!(east_state.current_incident.is_some(), "{east_state:?}");
        server.shutdown().await;
        east.kill().await;
        west.kill().await;
    })
    .await
    .expect("the story completes in time");
}
