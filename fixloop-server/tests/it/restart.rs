//! Durability through the real binary: `fixloop serve` is killed with SIGKILL in the middle of a validation run,
//! restarted on the same data directory, and must come back with the same incident, the old run readable by id and
//! marked as interrupted, and the loop going on to RECOVERED; then a clean SIGTERM and a second restart keep it all.

use std::time::Duration;

use fixloop_contract::{IncidentCard, IncidentState, RunStatus, SystemStatus, TestRun, WsMessage};

use crate::binary::{Fixloop, command, free_port, wait_for};
use crate::inventory::{self, Inventory};

/// Bound of the whole story.
const STORY: Duration = Duration::from_secs(120);
/// Bound of one step (a request, a start, an expected event).
const STEP: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_comes_back_with_its_incident_and_the_loop_reaches_recovered() {
    tokio::time::timeout(STORY, async {
        let inventory = Inventory::start().await;
        let traffic = inventory.traffic();
        let dir = tempfile::tempdir().expect("temp dir");
        let profile = dir.path().join("inventory.toml");
        std::fs::write(&profile, inventory::profile("inventory", &inventory.url, inventory::SCRAPE))
            .expect("profile");
        let data = dir.path().join("data");

        // An incident, and a run held in flight on GET /v2/me.
        inventory.set_hold(true);
        let first = Fixloop::start(&profile, &data, dir.path().join("first.log")).await;
        let mut socket = first.connect().await;
        inventory.set_failing(true);
        let WsMessage::IncidentCreated(card) =
            wait_for(&mut socket, |m| matches!(m, WsMessage::IncidentCreated(_))).await
        else {
            unreachable!()
        };
        let WsMessage::TestsUpdated(run) = wait_for(&mut socket, |m| {
            matches!(m, WsMessage::TestsUpdated(run) if run.status == RunStatus::Running)
        })
        .await
        else {
            unreachable!()
        };
        tokio::time::timeout(STEP, inventory.held())
            .await
            .expect("the run reaches the held route");
        first.kill().await;

        // Back on the same data directory: the same incident, the old run readable and interrupted.
        let second = Fixloop::start(&profile, &data, dir.path().join("second.log")).await;
        let current: Option<IncidentCard> = second.get("/api/incidents/current").await;
        assert_eq!(
            current.map(|card| card.incident_id),
            Some(card.incident_id.clone()),
            "the open incident survives; log:\n{}",
            second.log()
        );
        let old: TestRun = second.get(&format!("/api/tests/runs/{}", run.run_id)).await;
        assert_eq!(old.status, RunStatus::Failed);
        assert!(
            old.tests
                .iter()
                .any(|test| test.details.as_deref() == Some("run failed: interrupted by restart")),
            "the interrupted run says so: {old:?}"
        );
        assert!(
            second.log().contains("engine restored from the journal"),
            "{}",
            second.log()
        );

        // The fix: the loop goes on to RECOVERED with the same incident.
        let mut socket = second.connect().await;
        inventory.set_hold(false);
        inventory.set_failing(false);
        let recovered = wait_for(&mut socket, |m| {
            matches!(m, WsMessage::SystemStatus(status) if status.status == IncidentState::Recovered)
        })
        .await;
        let WsMessage::SystemStatus(status) = recovered else {
            unreachable!()
        };
        assert_eq!(status.active_incident_id.as_deref(), Some(card.incident_id.as_str()));

        // A clean SIGTERM, and a third start: still RECOVERED, the same incident, both runs readable.
        second.terminate().await;
        let third = Fixloop::start(&profile, &data, dir.path().join("third.log")).await;
        let status: SystemStatus = third.get("/api/status").await;
        assert_eq!(status.status, IncidentState::Recovered, "log:\n{}", third.log());
        assert_eq!(status.active_incident_id.as_deref(), Some(card.incident_id.as_str()));
        let old: TestRun = third.get(&format!("/api/tests/runs/{}", run.run_id)).await;
        assert_eq!(old.status, RunStatus::Failed);
        third.terminate().await;

        traffic.abort();
        inventory.kill().await;
    })
    .await
    .expect("the story completes in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_data_file_stops_the_start_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    std::fs::write(data.join("fixloop.sqlite3"), vec![0x42; 8192]).expect("garbage");
    let output = tokio::time::timeout(
        STEP,
        command(&["serve", "--port", &free_port().to_string()])
            .env("FIXLOOP_DATA_DIR", &data)
            .output(),
    )
    .await
    .expect("exits in time")
    .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("journal: the store at") && stderr.contains("is corrupt"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        std::fs::read(data.join("fixloop.sqlite3")).expect("still there"),
        vec![0x42; 8192],
        "never reset"
    );
}
