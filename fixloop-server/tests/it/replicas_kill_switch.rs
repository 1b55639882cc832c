//! The kill switch holds for every replica: switched on one, it reaches the engines another replica leads within a
//! lease round (each replica reads the saved switch every round), and released on that other one it is released
//! everywhere. Two real `fixloop serve` processes on one PostgreSQL schema lead one service each
//! (`FIXLOOP_MAX_LEADS=1`); each engine's state shows in its replica's `/metrics`.

use std::time::{Duration, Instant};

use crate::binary::Fixloop;
use crate::inventory::{self, Inventory};
use crate::pg::TestSchema;
use crate::replicas_merge::{each_leads_one, replica};

/// Bound of the whole story.
const STORY: Duration = Duration::from_secs(120);
/// Bound of one wait.
const SETTLE: Duration = Duration::from_secs(30);

/// `server`'s `fixloop_remediation_kill_switch` gauge (what its engines hold), if it answers.
async fn gauge(server: &Fixloop) -> Option<String> {
    let response = fixloop_adapters::default_client()
        .get(format!("{}/metrics", server.url))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    let text = response.text().await.ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("fixloop_remediation_kill_switch "))
        .map(str::to_owned)
}

/// Polls until `server`'s gauge reads `value`, within [`SETTLE`].
async fn wait_gauge(server: &Fixloop, value: &str, what: &str) {
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        let seen = gauge(server).await;
        if seen.as_deref() == Some(value) {
            return;
        }
        assert!(
            started.elapsed() < SETTLE,
            "{what}: the kill switch gauge reads {seen:?}; log:\n{}",
            server.log()
        );
    }
}

/// Switches the kill switch through `server`; answers the status.
async fn switch(server: &Fixloop, engaged: bool) -> u16 {
    fixloop_adapters::default_client()
        .post(format!("{}/api/remediation/kill-switch", server.url))
        .json(&serde_json::json!({ "engaged": engaged }))
        .timeout(Duration::from_secs(15))
        .send()
        .await
        .expect("an answer")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kill_switch_switched_on_one_replica_reaches_the_engines_another_leads() {
    let schema = TestSchema::create("killswitch").await;
    tokio::time::timeout(STORY, async {
        let url = schema.url();
        let orders = Inventory::start().await;
        let payments = Inventory::start().await;
        let dir = tempfile::tempdir().expect("temp dir");
        let profile = dir.path().join("two.toml");
        let text = [
            inventory::profile("orders", &orders.url, inventory::SCRAPE),
            inventory::profile("payments", &payments.url, inventory::SCRAPE),
        ]
        .concat();
        std::fs::write(&profile, text).expect("profile");
        let a = replica(&profile, url, "replica-a", dir.path()).await;
        let b = replica(&profile, url, "replica-b", dir.path()).await;
        each_leads_one(&a, &b).await;
        wait_gauge(&a, "0", "A before").await;
        wait_gauge(&b, "0", "B before").await;

        assert_eq!(switch(&a, true).await, 200, "log:\n{}", a.log());
        wait_gauge(&a, "1", "A, where it was engaged").await;
        wait_gauge(&b, "1", "B, which only reads it from the store").await;

        assert_eq!(switch(&b, false).await, 200, "log:\n{}", b.log());
        wait_gauge(&b, "0", "B, where it was released").await;
        wait_gauge(&a, "0", "A, which only reads it from the store").await;

        a.terminate().await;
        b.terminate().await;
    })
    .await
    .expect("the story completes in time");
}
