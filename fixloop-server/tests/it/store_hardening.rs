//! The store under stress, in process: a full disk (SQLite's own `SQLITE_FULL`, from a file capped with
//! `FIXLOOP_STORE_MAX_KIB`) loses appends, each one counted, while `/healthz` says "degraded" with the reason and
//! the loop goes on. The same through the real binary on a real tmpfs, and the 30,000-alert storm, are in
//! `red_team_store`.

use std::path::Path;
use std::time::Duration;

use fixloop_adapters::Secret;
use fixloop_server::config::StoreLocation;
use fixloop_server::{DemoOptions, RunningDemo, start_demo};
use serde_json::{Value, json};

/// Bound of each story.
const STORY: Duration = Duration::from_secs(120);
/// Bound of one request.
const STEP: Duration = Duration::from_secs(10);
pub(crate) const SECRET: &str = "0123456789abcdef-webhook";

async fn demo(data: &Path, max_bytes: Option<u64>) -> RunningDemo {
    let mut options = DemoOptions::ephemeral();
    options.config.store = Some(StoreLocation::Directory(data.to_owned()));
    options.config.webhook_secret = Some(Secret::from(SECRET));
    options.config.retention.max_bytes = max_bytes;
    tokio::time::timeout(STEP, start_demo(options))
        .await
        .expect("starts in time")
        .expect("the demo starts")
}

/// An Alertmanager webhook with `count` distinct firing alerts, numbered from `first`.
pub(crate) fn alerts(first: usize, count: usize) -> Value {
    let alerts: Vec<Value> = (first..first + count)
        .map(|n| {
            json!({
                "status": "firing",
                "labels": {"alertname": format!("Storm{n}"), "service": "demo-checkout"},
                "annotations": {"summary": format!("storm alert {n}")},
                "startsAt": "2026-11-21T10:15:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph",
                "fingerprint": format!("f{n:08}")
            })
        })
        .collect();
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"Storm{first}\"}}"),
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "fixloop",
        "groupLabels": {},
        "commonLabels": {"service": "demo-checkout"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": alerts
    })
}

pub(crate) async fn post_alerts(client: &reqwest::Client, api: &str, body: &Value) {
    let response = tokio::time::timeout(
        STEP,
        client
            .post(format!("{api}/internal/alertmanager/webhook"))
            .bearer_auth(SECRET)
            .json(body)
            .send(),
    )
    .await
    .expect("answered in time")
    .expect("sent");
    assert!(
        response.status().is_success(),
        "the webhook is taken: {}",
        response.status()
    );
}

pub(crate) async fn get_text(client: &reqwest::Client, url: String) -> String {
    tokio::time::timeout(STEP, async {
        client
            .get(url)
            .send()
            .await
            .expect("sent")
            .text()
            .await
            .expect("body")
    })
    .await
    .expect("answered in time")
}

pub(crate) fn lost_appends(metrics: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("fixloop_journal_appends_total{result=\"error\"} "))
        .and_then(|value| value.parse().ok())
        .expect("the lost appends are exposed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_counts_every_lost_append_and_healthz_says_degraded() {
    tokio::time::timeout(STORY, async {
        let dir = tempfile::tempdir().expect("temp dir");
        let demo = demo(dir.path(), Some(96 * 1024)).await;
        let api = demo.orchestrator_url.clone();
        let client = fixloop_adapters::default_client();
        let health: Value =
            serde_json::from_str(&get_text(&client, format!("{api}/healthz")).await).expect("json");
        assert_eq!(health, json!({"status": "ok"}));
        // Alerts until the capped file is full (SQLite answers SQLITE_FULL, as on a full disk).
        let mut degraded = None;
        for batch in 0..400 {
            post_alerts(&client, &api, &alerts(batch * 20, 20)).await;
            let health: Value =
                serde_json::from_str(&get_text(&client, format!("{api}/healthz")).await)
                    .expect("json");
            if health["status"] == "degraded" {
                degraded = Some(health);
                break;
            }
        }
        let health = degraded.expect("the journal fails once the file is full");
        let reason = health["journal"].as_str().expect("a reason");
        assert!(
            reason.contains("demo-checkout"),
            "names the service: {reason}"
        );
        assert!(reason.contains("is full"), "says why: {reason}");
        // Every input not journaled counts: 20 more alerts lose at least 20 more appends.
        let before = lost_appends(&get_text(&client, format!("{api}/metrics")).await);
        assert!(before >= 1);
        post_alerts(&client, &api, &alerts(100_000, 20)).await;
        let metrics = get_text(&client, format!("{api}/metrics")).await;
        let after = lost_appends(&metrics);
        assert!(
            after >= before + 20,
            "each lost append is counted: {before} -> {after}"
        );
        assert!(
            metrics.contains("fixloop_journal_degraded{service=\"demo-checkout\"} 1"),
            "{metrics}"
        );
        // The loop goes on: the incident the alerts opened is served.
        let status: Value =
            serde_json::from_str(&get_text(&client, format!("{api}/api/status")).await)
                .expect("json");
        assert!(status["active_incident_id"].is_string(), "{status}");
        tokio::time::timeout(STEP, demo.shutdown())
            .await
            .expect("stops in time");
    })
    .await
    .expect("the story ends in time");
}
