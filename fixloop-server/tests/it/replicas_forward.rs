//! Every replica answers every REST call: a replica that does not lead the service forwards the request to the
//! leader's advertised URL (from the replicas table), once, and returns the leader's answer as it is. Two real
//! `fixloop serve` processes on one PostgreSQL schema: the same reads and writes on the standby give the leader's
//! answers, and a request that was already forwarded is never forwarded again.

use std::time::Duration;

use fixloop_contract::{IncidentCard, IncidentDetail, SystemStatus, TestRun};
use serde_json::{Value, json};

use crate::binary::Fixloop;
use crate::inventory::{self, Inventory};
use crate::pg::TestSchema;
use crate::replicas::{leads, replica, wait_leading};

/// Bound of the whole story.
const STORY: Duration = Duration::from_secs(120);
/// Bound of one request.
const STEP: Duration = Duration::from_secs(30);

/// `method path` on `server` with an optional JSON body and extra header: the status and the JSON body.
async fn call(
    server: &Fixloop,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
    header: Option<(&str, &str)>,
) -> (u16, Value) {
    let mut request =
        fixloop_adapters::default_client().request(method, format!("{}{path}", server.url));
    if let Some(body) = body {
        request = request.json(&body);
    }
    if let Some((name, value)) = header {
        request = request.header(name, value);
    }
    let response = tokio::time::timeout(STEP, request.send())
        .await
        .expect("answer in time")
        .expect("request sent");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_replica_answers_reads_and_writes_with_the_leaders_answers() {
    let schema = TestSchema::create("forward").await;
    tokio::time::timeout(STORY, async {
        let url = schema.url();
        let inventory = Inventory::start().await;
        let dir = tempfile::tempdir().expect("temp dir");
        let profile = dir.path().join("inventory.toml");
        std::fs::write(
            &profile,
            inventory::profile("inventory", &inventory.url, inventory::SCRAPE),
        )
        .expect("profile");
        let a = replica(&profile, url, "replica-a", dir.path().join("a.log")).await;
        wait_leading(&a, true).await;
        let b = replica(&profile, url, "replica-b", dir.path().join("b.log")).await;
        assert_eq!(leads(&b).await, Some(vec![]), "log:\n{}", b.log());

        // A read on B is A's answer.
        let (code, body) = call(&b, reqwest::Method::GET, "/api/status", None, None).await;
        assert_eq!(code, 200, "{body}; log:\n{}", b.log());
        let through_b: SystemStatus = serde_json::from_value(body).expect("a status");
        let at_a: SystemStatus = a.get("/api/status").await;
        assert_eq!(
            (through_b.status, through_b.service),
            (at_a.status, at_a.service)
        );

        // A write on B acts at A, once: the incident B's caller opened is A's current incident.
        let (code, body) = call(
            &b,
            reqwest::Method::POST,
            "/api/incidents/simulate",
            Some(json!({"mode": "INCIDENT_ON"})),
            None,
        )
        .await;
        assert_eq!(code, 200, "{body}; log:\n{}", b.log());
        let card: IncidentCard = serde_json::from_value(body).expect("an incident card");
        let current: Option<IncidentCard> = a.get("/api/incidents/current").await;
        assert_eq!(
            current.map(|current| current.incident_id),
            Some(card.incident_id.clone())
        );
        let detail: IncidentDetail = b.get(&format!("/api/incidents/{}", card.incident_id)).await;
        assert_eq!(detail.incident.incident_id, card.incident_id);

        // A run started through B is A's, and readable through B by its id (once A's plan is ready: 409 before).
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let (code, body) = loop {
            tick.tick().await;
            let (code, body) = call(
                &b,
                reqwest::Method::POST,
                "/api/tests/run",
                Some(json!({"incident_id": card.incident_id})),
                None,
            )
            .await;
            if code != 409 {
                break (code, body);
            }
        };
        assert_eq!(code, 200, "{body}");
        let run: TestRun = serde_json::from_value(body).expect("a run");
        let again: TestRun = b.get(&format!("/api/tests/runs/{}", run.run_id)).await;
        assert_eq!(again.run_id, run.run_id);
        let at_a: TestRun = a.get(&format!("/api/tests/runs/{}", run.run_id)).await;
        assert_eq!(at_a.run_id, run.run_id);

        // A request that was already forwarded once is answered where it lands: never forwarded twice.
        let (code, body) = call(
            &b,
            reqwest::Method::GET,
            "/api/status",
            None,
            Some(("x-fixloop-forwarded-by", "replica-c")),
        )
        .await;
        assert_eq!(code, 503, "{body}");
        assert_eq!(body["code"], "unavailable");

        // No leader at all (A killed, B not yet leading): a clear 503, or A's lease taken over by B already.
        a.kill().await;
        let (code, body) = call(&b, reqwest::Method::GET, "/api/status", None, None).await;
        assert!(
            code == 200 || (code == 503 && body["code"] == "unavailable"),
            "{code} {body}"
        );
        wait_leading(&b, true).await;
        b.terminate().await;
        inventory.kill().await;
    })
    .await
    .expect("the story completes in time");
}
