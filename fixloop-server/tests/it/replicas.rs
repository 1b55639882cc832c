//! Replicas through the real binary: two `fixloop serve` processes on one PostgreSQL schema share the watched
//! service by lease. The leader is SIGKILLed in the middle of a validation run and the other replica takes the lease
//! over, restores the engine from the journal and carries the incident on to RECOVERED; a restarted old leader stands
//! by (and forwards what it cannot answer to B). A leader that loses the database (its role may no longer log in and its backends are terminated with
//! `pg_terminate_backend`) stops leading, and the other replica takes over.

use std::ffi::OsStr;
use std::time::{Duration, Instant};

use fixloop_adapters::{PostgresStore, Store};
use fixloop_contract::{IncidentCard, IncidentState, RunStatus, TestRun, WsMessage};

use crate::binary::{Fixloop, wait_for};
use crate::inventory::{self, Inventory};
use crate::pg::TestSchema;

/// Bound of a whole story.
const STORY: Duration = Duration::from_secs(180);
/// Bound of one wait for a replica's state.
const STEP: Duration = Duration::from_secs(30);
/// The lease time of the replicas under test, in seconds.
const LEASE_SECONDS: &str = "3";
/// The watched service.
const SERVICE: &str = "inventory";

/// Starts a replica called `id` on the database at `url`.
pub(crate) async fn replica(
    profile: &std::path::Path,
    url: &str,
    id: &str,
    log: std::path::PathBuf,
) -> Fixloop {
    Fixloop::start_env(
        profile,
        &[
            ("FIXLOOP_DATABASE_URL", OsStr::new(url)),
            ("FIXLOOP_REPLICA_ID", OsStr::new(id)),
            ("FIXLOOP_LEASE_SECONDS", OsStr::new(LEASE_SECONDS)),
        ],
        log,
    )
    .await
}

/// The services `server` leads, as its `/healthz` says (`None` when it does not answer).
pub(crate) async fn leads(server: &Fixloop) -> Option<Vec<String>> {
    let response = tokio::time::timeout(
        Duration::from_secs(5),
        fixloop_adapters::default_client()
            .get(format!("{}/healthz", server.url))
            .send(),
    )
    .await
    .ok()?
    .ok()?;
    let body: serde_json::Value = response.json().await.ok()?;
    serde_json::from_value(body.get("leads")?.clone()).ok()
}

/// Polls until `server` leads (`true`) or does not lead (`false`) the service, within [`STEP`]; returns how long
/// it took.
pub(crate) async fn wait_leading(server: &Fixloop, leading: bool) -> Duration {
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(25));
    loop {
        tick.tick().await;
        let now = leads(server).await;
        if now
            .as_ref()
            .is_some_and(|leads| leads.iter().any(|name| name == SERVICE) == leading)
        {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < STEP,
            "the replica at {} never {} the service; /healthz leads {now:?}; log:\n{}",
            server.url,
            if leading { "led" } else { "stopped leading" },
            server.log()
        );
    }
}

/// The HTTP status of `GET path` on `server`.
pub(crate) async fn status_of(server: &Fixloop, path: &str) -> u16 {
    tokio::time::timeout(
        STEP,
        fixloop_adapters::default_client()
            .get(format!("{}{path}", server.url))
            .send(),
    )
    .await
    .expect("answer in time")
    .expect("request sent")
    .status()
    .as_u16()
}

/// A profile file for the inventory service in `dir`.
fn write_profile(dir: &std::path::Path, inventory: &Inventory) -> std::path::PathBuf {
    let profile = dir.join("inventory.toml");
    std::fs::write(
        &profile,
        inventory::profile(SERVICE, &inventory.url, inventory::SCRAPE),
    )
    .expect("profile");
    profile
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_leader_is_replaced_within_the_lease_and_the_incident_goes_on_from_the_journal() {
    let schema = TestSchema::create("replicas").await;
    tokio::time::timeout(STORY, async {
        let url = schema.url();
        let inventory = Inventory::start().await;
        let traffic = inventory.traffic();
        let dir = tempfile::tempdir().expect("temp dir");
        let profile = write_profile(dir.path(), &inventory);

        // A leads; B, started after it, stands by and forwards what it cannot answer to A.
        let a = replica(&profile, url, "replica-a", dir.path().join("a.log")).await;
        wait_leading(&a, true).await;
        let b = replica(&profile, url, "replica-b", dir.path().join("b.log")).await;
        assert_eq!(leads(&b).await, Some(vec![]), "log:\n{}", b.log());
        // It answers from the leader: the request is forwarded.
        assert_eq!(status_of(&b, "/api/status").await, 200, "log:\n{}", b.log());

        // An incident on A, and a run held in flight on GET /v2/me.
        inventory.set_hold(true);
        let mut socket = a.connect().await;
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
        a.kill().await;

        // B takes the lease over once A's lapses, and restores the incident from the journal.
        let takeover = wait_leading(&b, true).await;
        eprintln!("takeover {takeover:?} after the leader was killed (lease {LEASE_SECONDS} s)");
        let current: Option<IncidentCard> = b.get("/api/incidents/current").await;
        assert_eq!(
            current.map(|card| card.incident_id),
            Some(card.incident_id.clone()),
            "the open incident goes on at the new leader; log:\n{}",
            b.log()
        );
        let old: TestRun = b.get(&format!("/api/tests/runs/{}", run.run_id)).await;
        assert_eq!(old.status, RunStatus::Failed, "the interrupted run is closed once");
        let b_log = b.log();
        assert!(b_log.contains("engine restored from the journal"), "{b_log}");
        assert!(b_log.contains("takeover=true"), "{b_log}");

        // The loop goes on at B: the fix is validated and the same incident recovers.
        let mut socket = b.connect().await;
        inventory.set_hold(false);
        inventory.set_failing(false);
        let WsMessage::SystemStatus(status) = wait_for(&mut socket, |m| {
            matches!(m, WsMessage::SystemStatus(status) if status.status == IncidentState::Recovered)
        })
        .await
        else {
            unreachable!()
        };
        assert_eq!(status.active_incident_id.as_deref(), Some(card.incident_id.as_str()));

        // The old leader, restarted, stands by: B holds the lease.
        let again = replica(&profile, url, "replica-a", dir.path().join("a2.log")).await;
        assert_eq!(leads(&again).await, Some(vec![]), "log:\n{}", again.log());
        let forwarded: fixloop_contract::SystemStatus = again.get("/api/status").await;
        assert_eq!(forwarded.status, IncidentState::Recovered, "B's answer, through A");

        // Every entry was written under a lease, epochs never go back, and both leaders wrote.
        let store = PostgresStore::connect(url).await.expect("connect");
        let epochs = store.epochs(SERVICE).await.expect("epochs");
        let epochs: Vec<u64> = epochs
            .iter()
            .map(|(seq, epoch)| epoch.unwrap_or_else(|| panic!("entry {seq} was not fenced")))
            .collect();
        assert!(epochs.windows(2).all(|pair| pair[0] <= pair[1]), "{epochs:?}");
        assert_eq!(epochs.first(), Some(&1), "{epochs:?}");
        assert!(epochs.last().is_some_and(|last| *last > 1), "{epochs:?}");
        let _ = Store::close(&store).await;

        again.kill().await;
        b.terminate().await;
        traffic.abort();
        inventory.kill().await;
    })
    .await
    .expect("the story completes in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_from_the_database_stops_leading_and_the_other_replica_takes_over() {
    let schema = TestSchema::create("cut").await;
    // A role of its own for the leader, so its connections can be cut (and kept out) alone.
    let role = schema.name().replace("fixloop_t_", "fl_cut_");
    schema
        .execute(&format!("CREATE ROLE \"{role}\" LOGIN SUPERUSER"))
        .await;
    let outcome = tokio::time::timeout(STORY, async {
        // The schema is migrated by the test's own role, so the leader's role owns nothing.
        let store = PostgresStore::connect(schema.url()).await.expect("connect");
        let _ = Store::close(&store).await;
        let leader_url =
            schema
                .url()
                .replacen("postgres://postgres@", &format!("postgres://{role}@"), 1);
        assert_ne!(
            leader_url,
            schema.url(),
            "the test database URL names the postgres role"
        );
        let inventory = Inventory::start().await;
        let traffic = inventory.traffic();
        let dir = tempfile::tempdir().expect("temp dir");
        let profile = write_profile(dir.path(), &inventory);

        let a = replica(&profile, &leader_url, "replica-a", dir.path().join("a.log")).await;
        wait_leading(&a, true).await;
        let b = replica(
            &profile,
            schema.url(),
            "replica-b",
            dir.path().join("b.log"),
        )
        .await;
        assert_eq!(leads(&b).await, Some(vec![]));

        // The leader loses the database: it may not log in again, and its sessions are terminated.
        schema
            .execute(&format!(
                "ALTER ROLE \"{role}\" NOLOGIN;
                 SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'"
            ))
            .await;
        wait_leading(&a, false).await;
        wait_leading(&b, true).await;
        let a_log = a.log();
        assert!(a_log.contains("lease lost"), "{a_log}");
        assert_eq!(
            status_of(&a, "/api/status").await,
            503,
            "the cut replica serves no state it cannot record"
        );

        // Back on the database, the old leader stands by: B holds the lease.
        schema
            .execute(&format!("ALTER ROLE \"{role}\" LOGIN"))
            .await;
        let current: Option<IncidentCard> = b.get("/api/incidents/current").await;
        assert_eq!(current, None);
        assert_eq!(leads(&a).await, Some(vec![]));

        a.kill().await;
        b.terminate().await;
        traffic.abort();
        inventory.kill().await;
    })
    .await;
    schema
        .execute(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'; DROP ROLE IF EXISTS \"{role}\""
        ))
        .await;
    outcome.expect("the story completes in time");
}
