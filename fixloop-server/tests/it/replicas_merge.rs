//! Whole-system reads on replicas: `GET /api/status`, `/api/incidents`, `/api/incidents/current` and `/api/services`
//! answer for every watched service whichever replica is asked. Three real `fixloop serve` processes on one
//! PostgreSQL schema watch three services: A and B lead one each (`FIXLOOP_MAX_LEADS=1`), C leads none (a standby),
//! and the third service's lease is held by a "silent" replica of the test's own that heartbeats but never answers
//! HTTP. Every replica gives the same bodies, and each names the silent leader's service in `x-fixloop-partial`
//! instead of hanging or failing.

use std::ffi::OsStr;
use std::time::{Duration, Instant};

use chrono::Utc;
use fixloop_adapters::{Leases, PostgresStore, ReplicaBeat};
use fixloop_contract::{IncidentPage, IncidentState, ServiceState, SystemStatus};
use serde_json::Value;

use crate::binary::Fixloop;
use crate::inventory::{self, Inventory};
use crate::pg::TestSchema;
use crate::replicas::leads;

/// Bound of the whole story.
const STORY: Duration = Duration::from_secs(180);
/// Bound of one wait for the replicas to agree.
const SETTLE: Duration = Duration::from_secs(60);
/// The lease time of the replicas, in seconds.
const LEASE_SECONDS: u64 = 3;
/// The header naming the services a merged read could not include.
const PARTIAL: &str = "x-fixloop-partial";

/// `GET path` on `server` (extra `header` when given): the status, the partial header and the JSON body.
async fn read(
    server: &Fixloop,
    path: &str,
    header: Option<(&str, &str)>,
) -> (u16, Option<String>, Value) {
    let mut request = fixloop_adapters::default_client().get(format!("{}{path}", server.url));
    if let Some((name, value)) = header {
        request = request.header(name, value);
    }
    let response = tokio::time::timeout(Duration::from_secs(30), request.send())
        .await
        .expect("answer in time (never a hang)")
        .expect("request sent");
    let status = response.status().as_u16();
    let partial = response
        .headers()
        .get(PARTIAL)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    (
        status,
        partial,
        response.json().await.unwrap_or(Value::Null),
    )
}

/// The status without its figures and time (they move with every reading).
fn essential(status: &SystemStatus) -> (IncidentState, Option<String>, Option<String>) {
    (
        status.status,
        status.service.clone(),
        status.active_incident_id.clone(),
    )
}

/// A replica `id` of the database at `url` on `profile`, leading at most one service.
pub(crate) async fn replica(
    profile: &std::path::Path,
    url: &str,
    id: &str,
    dir: &std::path::Path,
) -> Fixloop {
    Fixloop::start_env(
        profile,
        &[
            ("FIXLOOP_DATABASE_URL", OsStr::new(url)),
            ("FIXLOOP_REPLICA_ID", OsStr::new(id)),
            (
                "FIXLOOP_LEASE_SECONDS",
                OsStr::new(&LEASE_SECONDS.to_string()),
            ),
            ("FIXLOOP_MAX_LEADS", OsStr::new("1")),
        ],
        dir.join(format!("{id}.log")),
    )
    .await
}

/// Polls until replicas `a` and `b` lead one service each, within [`SETTLE`].
pub(crate) async fn each_leads_one(a: &Fixloop, b: &Fixloop) {
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        let (at_a, at_b) = (leads(a).await, leads(b).await);
        if at_a.as_ref().is_some_and(|one| one.len() == 1)
            && at_b.as_ref().is_some_and(|one| one.len() == 1)
        {
            return;
        }
        assert!(
            started.elapsed() < SETTLE,
            "A leads {at_a:?}, B {at_b:?}; logs:\n{}\n----\n{}",
            a.log(),
            b.log()
        );
    }
}

/// A replica that holds `service`'s lease and heartbeats but never answers a request: it accepts connections and
/// keeps them open, silent. Dropping the returned task ends it.
async fn silent_leader(url: &str, service: &str) -> tokio::task::JoinHandle<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let store = PostgresStore::connect(url).await.expect("the store");
    let beat = ReplicaBeat {
        replica: "silent".to_owned(),
        url: format!("http://{address}"),
        started_at: Utc::now(),
    };
    let live = Duration::from_secs(LEASE_SECONDS);
    store.heartbeat(&beat, live).await.expect("a heartbeat");
    store
        .acquire(service, "silent", Duration::from_secs(600))
        .await
        .expect("the store answers")
        .expect("the lease is free");
    tokio::spawn(async move {
        let mut open = Vec::new();
        let mut beats = tokio::time::interval(live / 4);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    if let Ok((socket, _)) = accepted {
                        open.push(socket);
                    }
                }
                _ = beats.tick() => {
                    let _ = store.heartbeat(&beat, live).await;
                }
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replica_answers_whole_system_reads_for_every_service_and_names_a_silent_leaders_service()
 {
    let schema = TestSchema::create("merge").await;
    tokio::time::timeout(STORY, async {
        let url = schema.url();
        let orders = Inventory::start().await;
        let payments = Inventory::start().await;
        // Requests to payments, so that its error rate is measured.
        let traffic = payments.traffic();
        let dir = tempfile::tempdir().expect("temp dir");
        let profile = dir.path().join("three.toml");
        let text = [
            inventory::profile("orders", &orders.url, inventory::SCRAPE),
            inventory::profile("payments", &payments.url, inventory::SCRAPE),
            inventory::profile("ghost", &orders.url, inventory::SCRAPE),
        ]
        .concat();
        std::fs::write(&profile, text).expect("profile");
        let silent = silent_leader(url, "ghost").await;

        let a = replica(&profile, url, "replica-a", dir.path()).await;
        let b = replica(&profile, url, "replica-b", dir.path()).await;
        each_leads_one(&a, &b).await;
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let c = replica(&profile, url, "replica-c", dir.path()).await;
        assert_eq!(
            leads(&c).await,
            Some(vec![]),
            "C stands by; log:\n{}",
            c.log()
        );
        let servers = [&a, &b, &c];

        // Every replica lists every service it can read, in profile order, and names the silent one's.
        for server in servers {
            let (code, partial, body) = read(server, "/api/services", None).await;
            assert_eq!(code, 200, "{body}; log:\n{}", server.log());
            let states: Vec<ServiceState> = serde_json::from_value(body).expect("services");
            let names: Vec<&str> = states.iter().map(|one| one.name.as_str()).collect();
            assert_eq!(names, ["orders", "payments"], "at {}", server.url);
            assert_eq!(partial.as_deref(), Some("ghost"), "at {}", server.url);
        }

        // Payments fails: every replica's status is payments' incident, whichever replica leads it.
        payments.set_failing(true);
        let started = Instant::now();
        let statuses = loop {
            tick.tick().await;
            let mut statuses = Vec::new();
            for server in servers {
                let (code, partial, body) = read(server, "/api/status", None).await;
                assert_eq!(code, 200, "{body}; log:\n{}", server.log());
                assert_eq!(partial.as_deref(), Some("ghost"));
                let status: SystemStatus = serde_json::from_value(body).expect("a status");
                statuses.push(essential(&status));
            }
            let incident = matches!(
                statuses[0].0,
                IncidentState::IncidentActive | IncidentState::Validating
            ) && statuses[0].1.as_deref() == Some("payments");
            if incident && statuses.iter().all(|one| *one == statuses[0]) {
                break statuses;
            }
            assert!(
                started.elapsed() < SETTLE,
                "the replicas never agreed on payments' incident: {statuses:?}"
            );
        };
        let incident_id = statuses[0].2.clone().expect("an open incident");

        // The incident list and the current incident are the same bodies on every replica.
        let started = Instant::now();
        loop {
            tick.tick().await;
            let mut pages = Vec::new();
            let mut currents = Vec::new();
            for server in servers {
                let (code, partial, body) = read(server, "/api/incidents", None).await;
                assert_eq!(code, 200, "{body}");
                assert_eq!(partial.as_deref(), Some("ghost"));
                pages.push(body);
                let (code, _, body) = read(server, "/api/incidents/current", None).await;
                assert_eq!(code, 200, "{body}");
                currents.push(body);
            }
            let page: IncidentPage = serde_json::from_value(pages[0].clone()).expect("a page");
            let listed = page
                .incidents
                .iter()
                .any(|one| one.incident_id == incident_id && one.service == "payments");
            if listed
                && pages.iter().all(|one| *one == pages[0])
                && currents.iter().all(|one| *one == currents[0])
                && currents[0]["incident_id"] == incident_id.as_str()
            {
                break;
            }
            assert!(
                started.elapsed() < SETTLE,
                "the replicas never gave the same incidents: {pages:?} {currents:?}"
            );
        }

        // A paged read from a cursor another replica's service owns: the same page everywhere.
        for server in servers {
            let (code, _, body) = read(
                server,
                &format!("/api/incidents?limit=1&before={incident_id}"),
                None,
            )
            .await;
            assert_eq!(code, 200, "{body}; log:\n{}", server.log());
            let page: IncidentPage = serde_json::from_value(body).expect("a page");
            assert!(
                page.incidents
                    .iter()
                    .all(|one| one.incident_id != incident_id),
                "{page:?}"
            );
        }
        let (code, _, body) = read(&c, "/api/incidents?before=no-such-incident", None).await;
        assert_eq!(
            (code, &body["code"]),
            (404, &Value::from("incident_not_found"))
        );

        // A request that is itself a hop is answered for the answering replica's own services only.
        let (code, _, body) = read(
            &c,
            "/api/status",
            Some(("x-fixloop-forwarded-by", "replica-a")),
        )
        .await;
        assert_eq!(
            (code, &body["code"]),
            (503, &Value::from("unavailable")),
            "{body}"
        );

        silent.abort();
        traffic.abort();
        a.terminate().await;
        b.terminate().await;
        // C led nothing: no driver to stop cleanly.
        c.kill().await;
        orders.kill().await;
        payments.kill().await;
    })
    .await
    .expect("the story completes in time");
}
