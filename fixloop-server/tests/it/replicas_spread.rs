//! Replicas share the watched services fairly: each leads at most `ceil(services / live replicas)`, found from the
//! replicas' heartbeats. Four services and two real `fixloop serve` processes lead two each; a third replica joins
//! and nobody leads more than two; one replica stops and the others take its services over.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::inventory::{self, Inventory};
use crate::pg::TestSchema;
use crate::replicas::{leads, replica};
use crate::restart::Fixloop;

/// Bound of the whole story.
const STORY: Duration = Duration::from_secs(180);
/// Bound of one wait for the replicas to settle.
const SETTLE: Duration = Duration::from_secs(45);
/// The watched services.
const SERVICES: [&str; 4] = ["orders", "payments", "search", "stock"];

/// A profile watching [`SERVICES`], all on the inventory at `url`.
fn write_profile(dir: &std::path::Path, url: &str) -> std::path::PathBuf {
    let profile = dir.join("four.toml");
    let text: String = SERVICES
        .iter()
        .map(|name| inventory::profile(name, url, inventory::SCRAPE))
        .collect();
    std::fs::write(&profile, text).expect("profile");
    profile
}

/// Polls the replicas' `/healthz` until `settled` accepts what each leads (in the order of `servers`), within
/// [`SETTLE`]; returns that.
async fn wait_spread(
    servers: &[&Fixloop],
    what: &str,
    settled: impl Fn(&[Vec<String>]) -> bool,
) -> Vec<Vec<String>> {
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        let mut now = Vec::new();
        for server in servers {
            now.push(leads(server).await.unwrap_or_default());
        }
        if settled(&now) {
            return now;
        }
        assert!(
            started.elapsed() < SETTLE,
            "{what}: the replicas lead {now:?}; logs:\n{}",
            servers
                .iter()
                .map(|server| server.log())
                .collect::<Vec<_>>()
                .join("\n----\n")
        );
    }
}

/// Every service led exactly once, and each replica's count within `counts`.
fn every_service_once(leads: &[Vec<String>], counts: impl Fn(usize) -> bool) -> bool {
    let all: Vec<&String> = leads.iter().flatten().collect();
    let distinct: BTreeSet<&str> = all.iter().map(|name| name.as_str()).collect();
    all.len() == SERVICES.len()
        && distinct == SERVICES.into_iter().collect()
        && leads.iter().all(|one| counts(one.len()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_services_spread_two_and_two_a_third_replica_leads_no_more_and_a_stopped_ones_are_taken_over()
 {
    let schema = TestSchema::create("spread").await;
    tokio::time::timeout(STORY, async {
        let url = schema.url();
        let inventory = Inventory::start().await;
        let dir = tempfile::tempdir().expect("temp dir");
        let profile = write_profile(dir.path(), &inventory.url);

        // Alone, a replica leads every service.
        let a = replica(&profile, url, "replica-a", dir.path().join("a.log")).await;
        wait_spread(&[&a], "one replica leads all four", |leads| {
            every_service_once(leads, |count| count == 4)
        })
        .await;

        // A second replica: the first hands two services over, cleanly (released, not left to lapse).
        let b = replica(&profile, url, "replica-b", dir.path().join("b.log")).await;
        wait_spread(&[&a, &b], "two replicas lead two each", |leads| {
            every_service_once(leads, |count| count == 2)
        })
        .await;
        assert!(a.log().contains("lease handed over"), "{}", a.log());

        // A third: the fair share is ceil(4 / 3) = 2, so nobody leads more than two.
        let c = replica(&profile, url, "replica-c", dir.path().join("c.log")).await;
        let three = wait_spread(&[&a, &b, &c], "three replicas, at most two each", |leads| {
            every_service_once(leads, |count| count <= 2)
        })
        .await;
        eprintln!("three replicas lead {three:?}");

        // The first stops (SIGTERM: its leases released, its heartbeat gone): the other two take its services.
        a.terminate().await;
        wait_spread(&[&b, &c], "two replicas left, two each", |leads| {
            every_service_once(leads, |count| count == 2)
        })
        .await;

        b.terminate().await;
        c.terminate().await;
        inventory.kill().await;
    })
    .await
    .expect("the story completes in time");
}
