//! The real observability stack: Debian's Prometheus and Alertmanager (installed by `.ci/run`) watching the
//! inventory service of [`crate::inventory`], with FixLoop reading its signals from Prometheus over PromQL and
//! receiving Alertmanager's webhooks.
//!
//! Both run on free loopback ports with generated configuration: Prometheus scrapes the inventory every second and
//! evaluates a 5xx-ratio alert rule every second with a short `for`; Alertmanager routes to FixLoop's webhook with a
//! bearer secret and `send_resolved: true`. The story: break the service → the alert opens the incident (the
//! profile's polling cannot: its trigger is 100%) → PromQL signals → a plan of
//! the service's journeys and a failing run → Prometheus is killed mid-incident (FixLoop says its signals are
//! degraded and keeps the incident) → Prometheus comes back (the marker clears) → fix → the alert resolves →
//! RECOVERED. Every wait polls with a deadline; the whole story is bounded.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use fixloop_contract::{IncidentState, RunStatus, TestStatus, WsMessage};
use fixloop_server::config::Config;
use fixloop_server::profile::{Profile, Secrets};
use fixloop_server::{Mode, RunningServer, ServeOptions, start_serve};
use tokio::process::{Child, Command};
use tokio_tungstenite::connect_async;

use crate::e2e::{STEP, Socket, wait_for};
use crate::inventory::{self, Inventory, TOKEN};

/// The whole story ends within this.
const STORY: Duration = Duration::from_secs(150);
/// How long Prometheus or Alertmanager may take to become ready.
const READY: Duration = Duration::from_secs(30);
/// The secret Alertmanager sends as `Authorization: Bearer`.
const WEBHOOK_SECRET: &str = "observability-webhook-secret";
/// User requests of the inventory (its own validation traffic is `origin="fixloop"`).
const USER: &str = "origin!=\"fixloop\"";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_and_alertmanager_drive_an_incident_to_recovered_and_an_outage_of_prometheus_degrades_it()
 {
    tokio::time::timeout(STORY, story())
        .await
        .expect("the story completes in time");
}

async fn story() {
    let dir = Scratch::new("story");
    let inventory = Inventory::start().await;
    let traffic = inventory.traffic();
    let prometheus_port = free_port();
    let alertmanager_port = free_port();
    let prometheus_url = format!("http://127.0.0.1:{prometheus_port}");
    let alertmanager_url = format!("http://127.0.0.1:{alertmanager_port}");
    write_prometheus_config(&dir.0, &inventory.url, alertmanager_port);
    let mut prometheus = start_prometheus(&dir.0, prometheus_port);
    ready(&mut prometheus, &prometheus_url).await;

    let server = serve(&inventory.url, &prometheus_url).await;
    write_alertmanager_config(
        &dir.0,
        &format!("{}/internal/alertmanager/webhook", server.orchestrator_url),
    );
    let mut alertmanager = start_alertmanager(&dir.0, alertmanager_port);
    ready(&mut alertmanager, &alertmanager_url).await;
    let mut socket = connect(&server).await;
    let mut log = Vec::new();

    // Healthy first, read from PromQL: until Prometheus has scraped the service, its queries return no series and
    // the reads fail (blind, not quiet); wait for good reads.
    good_reads(&server.orchestrator_url, 3).await;
    wait_for(&mut socket, &mut log, |message| {
        matches!(message, WsMessage::SystemStatus(status)
            if status.status == IncidentState::Healthy
                && status.signals_degraded.is_none())
    })
    .await;

    // Broken: the alert rule fires, Alertmanager delivers it, and the alert opens the incident.
    inventory.set_failing(true);
    let created = wait_for(&mut socket, &mut log, |message| {
        matches!(message, WsMessage::IncidentCreated(_))
    })
    .await;
    let WsMessage::IncidentCreated(card) = created else {
        unreachable!()
    };
    let detail = get_text(format!(
        "{}/api/incidents/{}",
        server.orchestrator_url, card.incident_id
    ))
    .await;
    assert!(
        detail.contains("opened by an alert from"),
        "the alert opened the incident: {detail}"
    );
    let generated = wait_for(&mut socket, &mut log, |message| {
        matches!(message, WsMessage::PlanGenerated(plan) if plan.incident_id == card.incident_id)
    })
    .await;
    let WsMessage::PlanGenerated(generated) = generated else {
        unreachable!()
    };
    assert_eq!(generated.plan.items.len(), 5);
    assert!(
        generated
            .plan
            .items
            .iter()
            .all(|item| item.target.url.starts_with(&inventory.url)),
        "{generated:?}"
    );
    wait_for(&mut socket, &mut log, |message| {
        matches!(message, WsMessage::TestsUpdated(run)
            if run.incident_id == card.incident_id
                && run.status != RunStatus::Running
                && run.tests.iter().any(|test| test.status == TestStatus::Fail))
    })
    .await;
    // The PromQL signals saw the errors, with the top error from its query.
    let status = wait_for(
        &mut socket,
        &mut log,
        |message| matches!(message, WsMessage::SystemStatus(status) if status.error_rate_5m > 5.0),
    )
    .await;
    assert!(matches!(status, WsMessage::SystemStatus(ref status)
        if status.status != IncidentState::Healthy));

    // Prometheus dies mid-incident: FixLoop says its signals are degraded, probes the service itself, and keeps
    // the incident open.
    stop(&mut prometheus).await;
    let degraded = wait_for(&mut socket, &mut log, |message| {
        matches!(message, WsMessage::SystemStatus(status) if status.signals_degraded.is_some())
    })
    .await;
    let WsMessage::SystemStatus(degraded) = degraded else {
        unreachable!()
    };
    assert_ne!(degraded.status, IncidentState::Healthy, "{degraded:?}");
    assert_eq!(
        degraded.active_incident_id.as_deref(),
        Some(card.incident_id.as_str()),
        "the same incident stays open: {degraded:?}"
    );

    // Prometheus comes back (same data, same port): the marker clears, the incident is still the same.
    let mut prometheus = start_prometheus(&dir.0, prometheus_port);
    ready(&mut prometheus, &prometheus_url).await;
    let back = wait_for(&mut socket, &mut log, |message| {
        matches!(message, WsMessage::SystemStatus(status) if status.signals_degraded.is_none())
    })
    .await;
    let WsMessage::SystemStatus(back) = back else {
        unreachable!()
    };
    assert_eq!(
        back.active_incident_id.as_deref(),
        Some(card.incident_id.as_str())
    );

    // Fixed: the PromQL signals turn healthy, the alert resolves, and the incident is RECOVERED.
    inventory.set_failing(false);
    wait_for(&mut socket, &mut log, |message| {
        matches!(message, WsMessage::SystemStatus(status)
            if status.status == IncidentState::Recovered
                && status.active_incident_id.as_deref() == Some(card.incident_id.as_str()))
    })
    .await;
    assert!(
        !log.iter().any(|message| matches!(message,
            WsMessage::IncidentCreated(other) if other.incident_id != card.incident_id)),
        "one incident for the whole story"
    );
    // Alertmanager resolved the alert too (it no longer lists it as active).
    let deadline = tokio::time::Instant::now() + STEP;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        let active = get_text(format!("{alertmanager_url}/api/v2/alerts?active=true")).await;
        if !active.contains("InventoryErrors") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the alert never resolved: {active}"
        );
    }

    traffic.abort();
    server.shutdown().await;
    stop(&mut alertmanager).await;
    stop(&mut prometheus).await;
    inventory.kill().await;
}

/// Polls FixLoop's `/metrics` until `count` signal reads succeeded.
async fn good_reads(url: &str, count: u64) {
    let deadline = tokio::time::Instant::now() + READY;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tick.tick().await;
        let metrics = get_text(format!("{url}/metrics")).await;
        let ok = metrics
            .lines()
            .find_map(|line| line.strip_prefix("fixloop_signal_reads_total{result=\"ok\"} "))
            .and_then(|value| value.trim().parse::<u64>().ok())
            .unwrap_or(0);
        if ok >= count {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "fewer than {count} good signal reads within {READY:?}:\n{metrics}"
        );
    }
}

/// FixLoop watching the inventory through Prometheus, with the webhook secret Alertmanager sends.
async fn serve(inventory_url: &str, prometheus_url: &str) -> RunningServer {
    let ratio = format!(
        "(sum(rate(inventory_http_requests_total{{{USER},code=~\"5..\"}}{{range}})) or vector(0)) / \
         sum(rate(inventory_http_requests_total{{{USER}}}{{range}}))"
    );
    let requests = format!("sum(increase(inventory_http_requests_total{{{USER}}}{{range}}))");
    let p95 = "histogram_quantile(0.95, sum by (le) (rate(inventory_request_seconds_bucket{range}))) * 1000";
    // The adapter names the top error from `method`, `route`, `status` and `error` labels.
    let top_error = "topk(1, label_replace(label_replace(label_replace(sum by (method, path, code, reason) \
         (increase(inventory_errors_total{range})), \"route\", \"$1\", \"path\", \"(.*)\"), \"status\", \"$1\", \
         \"code\", \"(.*)\"), \"error\", \"$1\", \"reason\", \"(.*)\"))";
    // Prometheus scrapes every second here: a 4 s range always holds the two samples `rate` needs.
    let signals = format!(
        "source = \"prometheus\"\nurl = \"{prometheus_url}\"\nerror_ratio_query = '{ratio}'\n\
         p95_ms_query = '{p95}'\nrequests_query = '{requests}'\ntop_error_query = '{top_error}'\n\
         min_range_secs = 4"
    );
    let text = inventory::profile("inventory", inventory_url, &signals);
    // Polling alone cannot open this incident: its trigger is 100% and an error rate is never above it. The alert
    // does.
    assert_eq!(text.matches("trigger_error_percent = 5").count(), 1);
    let text = text.replacen(
        "trigger_error_percent = 5",
        "trigger_error_percent = 100",
        1,
    );
    let env: HashMap<String, String> = [("INVENTORY_TOKEN".to_owned(), TOKEN.to_owned())].into();
    let profile =
        Profile::parse(&text, "inventory.toml", Secrets::From(&env)).expect("a valid profile");
    let config = Config::from_env_map(&HashMap::from([(
        "FIXLOOP_WEBHOOK_SECRET".to_owned(),
        WEBHOOK_SECRET.to_owned(),
    )]))
    .expect("a valid configuration");
    start_serve(ServeOptions {
        port: 0,
        mode: Mode::Demo,
        config,
        profile: Some(profile),
        ..ServeOptions::default()
    })
    .await
    .expect("the orchestrator starts")
}

fn write_prometheus_config(dir: &Path, inventory_url: &str, alertmanager_port: u16) {
    let target = inventory_url.trim_start_matches("http://");
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         rule_files:\n  - rules.yml\n\
         alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{alertmanager_port}']\n\
         scrape_configs:\n  - job_name: inventory\n    static_configs:\n      - targets: ['{target}']\n"
    );
    let rules = format!(
        "groups:\n  - name: fixloop-test\n    rules:\n      - alert: InventoryErrors\n        \
         expr: '(sum(rate(inventory_http_requests_total{{{USER},code=~\"5..\"}}[4s])) or vector(0)) / \
         sum(rate(inventory_http_requests_total{{{USER}}}[4s])) > 0.05'\n        for: 1s\n        \
         labels:\n          service: inventory\n          severity: critical\n        \
         annotations:\n          summary: 5xx ratio above 5% on inventory\n"
    );
    std::fs::write(dir.join("prometheus.yml"), config).expect("write prometheus.yml");
    std::fs::write(dir.join("rules.yml"), rules).expect("write rules.yml");
}

fn write_alertmanager_config(dir: &Path, webhook_url: &str) {
    let config = format!(
        "route:\n  receiver: fixloop\n  group_by: ['alertname']\n  group_wait: 1s\n  group_interval: 1s\n  \
         repeat_interval: 1m\n\
         receivers:\n  - name: fixloop\n    webhook_configs:\n      - url: {webhook_url}\n        \
         send_resolved: true\n        http_config:\n          authorization:\n            type: Bearer\n            \
         credentials: {WEBHOOK_SECRET}\n"
    );
    std::fs::write(dir.join("alertmanager.yml"), config).expect("write alertmanager.yml");
}

/// Debian's `prometheus` on `port`, its data in `dir` (kept across a restart), alerts resent every second.
fn start_prometheus(dir: &Path, port: u16) -> Child {
    spawn(
        "prometheus",
        &[
            format!("--config.file={}", dir.join("prometheus.yml").display()),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--storage.tsdb.retention.time=1h".to_owned(),
            "--rules.alert.resend-delay=1s".to_owned(),
        ],
    )
}

/// Debian's `prometheus-alertmanager` on `port`, clustering off.
fn start_alertmanager(dir: &Path, port: u16) -> Child {
    spawn(
        "prometheus-alertmanager",
        &[
            format!("--config.file={}", dir.join("alertmanager.yml").display()),
            format!("--storage.path={}", dir.join("alertmanager").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--cluster.listen-address=".to_owned(),
        ],
    )
}

fn spawn(program: &str, args: &[String]) -> Child {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|error| {
            panic!(
                "cannot start {program} ({error}): install Debian's prometheus and prometheus-alertmanager \
                 (.ci/run does)"
            )
        })
}

/// Polls `url/-/ready` until it answers 200; fails if the process exits or `READY` passes.
async fn ready(child: &mut Child, url: &str) {
    let client = fixloop_adapters::client_builder()
        .timeout(Duration::from_secs(1))
        .build()
        .expect("client");
    let deadline = tokio::time::Instant::now() + READY;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        if let Ok(response) = client.get(format!("{url}/-/ready")).send().await
            && response.status().is_success()
        {
            return;
        }
        if let Ok(Some(exit)) = child.try_wait() {
            panic!("{url} exited before it was ready: {exit}");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{url} not ready within {READY:?}"
        );
    }
}

async fn stop(child: &mut Child) {
    let _ = child.start_kill();
    let _ = tokio::time::timeout(STEP, child.wait()).await;
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

async fn get_text(url: String) -> String {
    tokio::time::timeout(STEP, async {
        fixloop_adapters::default_client()
            .get(url)
            .send()
            .await?
            .text()
            .await
    })
    .await
    .expect("answer in time")
    .expect("a body")
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

/// A scratch directory under the temporary directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "fixloop-observability-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create a scratch directory");
        Self(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
