//! Live reload through the real binary: `fixloop serve --profile` re-reads its profile on SIGHUP and on
//! `POST /api/admin/reload`. Added services start, removed services stop (their journal kept), a changed service
//! restarts with its open incident restored, and a broken file is refused whole while the running set stays as it was.

use std::path::Path;
use std::time::Duration;

use fixloop_contract::{IncidentCard, IncidentState, ServiceState, WsMessage};
use serde_json::Value;
use tokio::process::Command;

use crate::binary::{Fixloop, wait_for};
use crate::inventory::{self, Inventory};

/// Bound of the whole story.
const STORY: Duration = Duration::from_secs(150);
/// Bound of one step (a request, a reload, an expected state).
const STEP: Duration = Duration::from_secs(30);

impl Fixloop {
    /// Sends SIGHUP: the server reloads its profile.
    async fn hang_up(&self) {
        let pid = self.child.id().expect("running").to_string();
        let status = Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .await
            .expect("kill -HUP runs");
        assert!(status.success());
    }

    /// The names of the services the server watches now, in its order.
    async fn service_names(&self) -> Vec<String> {
        let services: Vec<ServiceState> = self.get("/api/services").await;
        services.into_iter().map(|service| service.name).collect()
    }

    /// Waits until the watched services are exactly `names` (a reload is applied asynchronously after SIGHUP; while
    /// a changed service restarts, for milliseconds, the list answers 503, which is waited out too).
    async fn wait_for_services(&self, names: &[&str]) {
        let wanted: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        tokio::time::timeout(STEP, async {
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            let client = fixloop_adapters::default_client();
            loop {
                tick.tick().await;
                let Ok(response) = client
                    .get(format!("{}/api/services", self.url))
                    .send()
                    .await
                else {
                    continue;
                };
                if response.status().as_u16() == 503 {
                    continue;
                }
                assert!(response.status().is_success(), "{}", response.status());
                let services: Vec<ServiceState> = response.json().await.expect("services");
                let now: Vec<String> = services.into_iter().map(|service| service.name).collect();
                if now == wanted {
                    return;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("the services become {names:?}; log:\n{}", self.log()));
    }

    /// Waits until the log holds `needle` `count` times or more (a reload's outcome is logged once per reload).
    async fn wait_for_log(&self, needle: &str, count: usize) {
        tokio::time::timeout(STEP, async {
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            loop {
                tick.tick().await;
                if self.log().matches(needle).count() >= count {
                    return;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("the log says {needle:?} {count} times:\n{}", self.log()));
    }

    async fn post(&self, path: &str) -> (u16, Value) {
        let response = tokio::time::timeout(
            STEP,
            fixloop_adapters::default_client()
                .post(format!("{}{path}", self.url))
                .send(),
        )
        .await
        .expect("answer in time")
        .expect("request sent");
        let status = response.status().as_u16();
        (status, response.json().await.expect("a JSON body"))
    }
}

/// A profile with the given services: `(name, base URL, extra threshold line)`.
fn profile_of(services: &[(&str, &str)]) -> String {
    services
        .iter()
        .map(|(name, url)| inventory::profile(name, url, inventory::SCRAPE))
        .collect()
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn write(path: &Path, text: &str) {
    // Written to a sibling and renamed, as editors and configuration managers do: the server never reads a half file.
    let partial = path.with_extension("partial");
    std::fs::write(&partial, text).expect("profile");
    std::fs::rename(&partial, path).expect("profile in place");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_adds_removes_and_restarts_services_and_a_broken_profile_changes_nothing() {
    tokio::time::timeout(STORY, async {
        let inventory = Inventory::start().await;
        let warehouse = Inventory::start().await;
        let traffic = inventory.traffic();
        let dir = tempfile::tempdir().expect("temp dir");
        let profile = dir.path().join("services.toml");
        write(&profile, &profile_of(&[("inventory", &inventory.url)]));
        let data = dir.path().join("data");
        let server = Fixloop::start(&profile, &data, dir.path().join("serve.log")).await;
        assert_eq!(server.service_names().await, ["inventory"]);

        // An incident on the inventory.
        let mut socket = server.connect().await;
        inventory.set_failing(true);
        let WsMessage::IncidentCreated(card) =
            wait_for(&mut socket, |m| matches!(m, WsMessage::IncidentCreated(_))).await
        else {
            unreachable!()
        };

        // Add a service and change the inventory's profile (one more journey): SIGHUP.
        let mut changed = profile_of(&[("inventory", &inventory.url), ("warehouse", &warehouse.url)]);
        changed = changed.replacen(
            "[[service.journeys]]",
            "[[service.journeys]]\nid = \"items-again\"\nname = \"Items are listed again\"\npath = \"/v2/items\"\n\
             headers = { authorization = \"Bearer ${env:INVENTORY_TOKEN}\" }\n\
             pass_criteria = \"status == 200\"\npriority = 8\n\n[[service.journeys]]",
            1,
        );
        write(&profile, &changed);
        server.hang_up().await;
        server.wait_for_services(&["inventory", "warehouse"]).await;
        server.wait_for_log("profile reloaded", 1).await;
        let log = server.log();
        assert!(log.contains("added=[\"warehouse\"]") || log.contains("added=warehouse"), "{log}");

        // The inventory's incident survived the restart of its own driver.
        let service: ServiceState = server.get("/api/services/inventory").await;
        assert_eq!(
            service.current_incident.as_ref().map(|card| card.incident_id.as_str()),
            Some(card.incident_id.as_str()),
            "the open incident survives a reload of its service; log:\n{}",
            server.log()
        );
        assert_ne!(service.status.status, IncidentState::Healthy);
        let warehouse_state: ServiceState = server.get("/api/services/warehouse").await;
        assert_eq!(warehouse_state.base_url, warehouse.url);

        // A broken file is refused whole: the running set stays, and the log names the problem.
        write(&profile, "[[service]]\nname = \"inventory\"\nbase_url = 42\n");
        server.hang_up().await;
        server.wait_for_log("profile reload refused", 1).await;
        assert_eq!(server.service_names().await, ["inventory", "warehouse"]);
        // The same through the API: 422 with the file's problems as details.
        let (status, body) = server.post("/api/admin/reload").await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["code"], "invalid_profile", "{body}");
        assert!(
            body["details"].as_array().is_some_and(|details| !details.is_empty()),
            "{body}"
        );
        assert_eq!(server.service_names().await, ["inventory", "warehouse"]);

        // Remove the warehouse through the API: it stops, the inventory is untouched.
        write(&profile, &changed.split("\n[[service]]").take(2).collect::<Vec<_>>().join("\n[[service]]"));
        let (status, body) = server.post("/api/admin/reload").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["removed"], serde_json::json!(["warehouse"]), "{body}");
        assert_eq!(body["unchanged"], serde_json::json!(["inventory"]), "{body}");
        assert_eq!(server.service_names().await, ["inventory"]);
        let current: Option<IncidentCard> = server.get("/api/incidents/current").await;
        assert_eq!(
            current.map(|card| card.incident_id),
            Some(card.incident_id.clone())
        );

        server.terminate().await;

        // The journal recorded each start of the inventory's engine with the profile it came from (the file's
        // SHA-256, as sha256sum prints it) and what changed: `fixloop replay` needs no flag to explain it.
        let output = crate::replay::fixloop_replay(&[
            "--data",
            &data.display().to_string(),
            "--service",
            "inventory",
        ])
        .await;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        assert!(!stderr.contains("warning"), "an exact replay: {stderr}");
        let initial = sha256_hex(&profile_of(&[("inventory", &inventory.url)]));
        assert!(
            stdout.contains(&format!("=> configuration (profile sha256:{initial}): unchanged")),
            "{stdout}"
        );
        assert!(
            stdout.contains(&format!(
                "=> configuration (profile sha256:{}): service: journeys changed",
                sha256_hex(&changed)
            )),
            "{stdout}"
        );
        traffic.abort();
        inventory.kill().await;
        warehouse.kill().await;
    })
    .await
    .expect("the story completes in time");
}
