//! Replicas share the watched services fairly: each leads at most `ceil(services / live replicas)`, found from the
//! replicas' heartbeats. Four services and two real `fixloop serve` processes lead two each; a third replica joins
//! and nobody leads more than two; one replica stops and the others take its services over.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use fixloop_contract::ReplicaList;

use crate::binary::Fixloop;
use crate::inventory::{self, Inventory};
use crate::pg::TestSchema;
use crate::replicas::{leads, replica};
use crate::support::TestApp;

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

        // Either replica lists both, with their advertised URLs and the services each leads.
        let list: ReplicaList = b.get("/api/replicas").await;
        let seen: Vec<(&str, &str, usize)> = list
            .replicas
            .iter()
            .map(|replica| {
                (
                    replica.replica_id.as_str(),
                    replica.url.as_str(),
                    replica.leads.len(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                ("replica-a", a.url.as_str(), 2),
                ("replica-b", b.url.as_str(), 2)
            ]
        );
        assert!(
            list.replicas
                .iter()
                .flat_map(|replica| &replica.leads)
                .all(|lead| lead.epoch >= 1 && lead.lease_expires_at.is_some()),
            "{list:?}"
        );

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

#[tokio::test]
async fn a_server_with_a_journal_of_its_own_lists_itself_leading_every_service() {
    let app = TestApp::start("http://127.0.0.1:9");
    let (status, body) = app.get("/api/replicas").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let list: ReplicaList = serde_json::from_value(body).expect("a replica list");
    assert_eq!(list.replicas.len(), 1);
    let replica = &list.replicas[0];
    assert_eq!(replica.replica_id, "this-process");
    assert_eq!(replica.url, "http://orchestrator.test");
    let leads: Vec<(&str, u64, bool)> = replica
        .leads
        .iter()
        .map(|lead| {
            (
                lead.service.as_str(),
                lead.epoch,
                lead.lease_expires_at.is_none(),
            )
        })
        .collect();
    assert_eq!(leads, vec![("demo-checkout", 1, true)]);
    app.stop().await;
}
