//! WebSocket events across replicas through the real binary: two `fixloop serve` processes on one PostgreSQL
//! schema. A client of the standby gets the leader's events, with the same `seq`s as a client of the leader, in
//! `seq` order; a client resuming with `?since=` on the other replica gets exactly the events after it; and when the
//! leader is SIGKILLed, the standby's client, never reconnected, goes on receiving the new leader's events.

use std::time::Duration;

use fixloop_contract::{IncidentState, RunStatus, WsEnvelope, WsMessage};
use futures_util::StreamExt as _;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;

use crate::binary::{Fixloop, STEP};
use crate::inventory::{self, Inventory};
use crate::pg::TestSchema;
use crate::replicas::{leads, replica, wait_leading};

/// Bound of the whole story.
const STORY: Duration = Duration::from_secs(180);

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A client that checks the `seq` order of everything it reads: the join snapshot's messages share one `seq`, and
/// every later message has a larger one.
struct Client {
    socket: Socket,
    last: Option<u64>,
    /// Whether a message with a larger `seq` than the first arrived (the snapshot is over).
    live: bool,
    /// Every envelope read, in order.
    seen: Vec<WsEnvelope>,
}

impl Client {
    async fn connect(server: &Fixloop, query: &str) -> Self {
        let url = format!("{}/ws{query}", server.url.replacen("http://", "ws://", 1));
        let socket = tokio::time::timeout(STEP, connect_async(&url))
            .await
            .expect("connect in time")
            .expect("handshake")
            .0;
        Self {
            socket,
            last: None,
            live: false,
            seen: Vec::new(),
        }
    }

    async fn next(&mut self) -> WsEnvelope {
        loop {
            let frame = self
                .socket
                .next()
                .await
                .expect("the socket stays open")
                .expect("a frame");
            let Message::Text(text) = frame else { continue };
            let envelope: WsEnvelope = serde_json::from_str(&text).expect("an envelope");
            let seq = envelope.seq.expect("every message has a seq");
            if let Some(last) = self.last {
                if self.live || seq > last {
                    assert!(seq > last, "seq {seq} after {last}: {:?}", self.seen);
                    self.live = true;
                } else {
                    assert_eq!(seq, last, "the snapshot shares one seq");
                }
            }
            self.last = Some(seq);
            self.seen.push(envelope.clone());
            return envelope;
        }
    }

    /// Reads until a message `wanted` accepts arrives (within [`STEP`]); returns it.
    async fn wait_for(&mut self, wanted: impl Fn(&WsMessage) -> bool) -> WsEnvelope {
        tokio::time::timeout(STEP, async {
            loop {
                let envelope = self.next().await;
                if wanted(&envelope.message) {
                    return envelope;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("the expected event never came; saw {:?}", self.kinds()))
    }

    fn kinds(&self) -> Vec<(u64, &str)> {
        self.seen
            .iter()
            .map(|envelope| (envelope.seq.unwrap_or(0), envelope.message.kind()))
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_every_replica_in_seq_order_resume_anywhere_and_outlive_the_leader() {
    let schema = TestSchema::create("wsreplicas").await;
    tokio::time::timeout(STORY, async {
        let url = schema.url();
        let inventory = Inventory::start().await;
        let traffic = inventory.traffic();
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

        // The standby's client joins with the leader's status, read from the event log.
        let mut on_b = Client::connect(&b, "").await;
        let joined = on_b.next().await;
        assert!(
            matches!(&joined.message, WsMessage::SystemStatus(status) if status.status == IncidentState::Healthy),
            "{joined:?}; log:\n{}",
            b.log()
        );
        let mut on_a = Client::connect(&a, "").await;

        // An incident at the leader reaches both replicas' clients with one seq.
        inventory.set_hold(true);
        inventory.set_failing(true);
        let is_created = |m: &WsMessage| matches!(m, WsMessage::IncidentCreated(_));
        let created_a = on_a.wait_for(is_created).await;
        let created_b = on_b.wait_for(is_created).await;
        assert_eq!(created_a.seq, created_b.seq);
        assert_eq!(created_a.message, created_b.message);
        let running = |m: &WsMessage| {
            matches!(m, WsMessage::TestsUpdated(run) if run.status == RunStatus::Running)
        };
        let running_a = on_a.wait_for(running).await;
        let running_b = on_b.wait_for(running).await;
        assert_eq!(running_a.seq, running_b.seq);
        tokio::time::timeout(STEP, inventory.held())
            .await
            .expect("the run reaches the held route");

        // Resume on the standby from a seq seen on the leader: exactly the events after it, in the same order.
        let since = created_a.seq.expect("a seq");
        let after_a: Vec<(u64, String)> = on_a
            .seen
            .iter()
            .filter(|envelope| envelope.seq.is_some_and(|seq| seq > since))
            .map(|envelope| (envelope.seq.unwrap_or(0), envelope.message.kind().to_owned()))
            .collect();
        assert!(!after_a.is_empty());
        let mut resumed = Client::connect(&b, &format!("?since={since}")).await;
        let mut replayed = Vec::new();
        while replayed.len() < after_a.len() {
            let envelope = tokio::time::timeout(STEP, resumed.next())
                .await
                .expect("the replay arrives");
            replayed.push((envelope.seq.unwrap_or(0), envelope.message.kind().to_owned()));
        }
        assert_eq!(replayed, after_a, "no stream.reset, no gap, no repeat");
        drop(resumed);

        // The leader dies mid-run; the standby takes over, and its client, never reconnected, sees the rest.
        a.kill().await;
        wait_leading(&b, true).await;
        inventory.set_hold(false);
        inventory.set_failing(false);
        let recovered = on_b
            .wait_for(|m| {
                matches!(m, WsMessage::SystemStatus(status) if status.status == IncidentState::Recovered)
            })
            .await;
        let WsMessage::SystemStatus(status) = &recovered.message else {
            unreachable!()
        };
        let WsMessage::IncidentCreated(card) = &created_b.message else {
            unreachable!()
        };
        assert_eq!(status.active_incident_id.as_deref(), Some(card.incident_id.as_str()));
        // The interrupted run was closed by the new leader, and that reached the same client.
        assert!(
            on_b.seen.iter().any(|envelope| matches!(&envelope.message,
                WsMessage::TestsUpdated(run) if run.status == RunStatus::Failed)),
            "{:?}",
            on_b.kinds()
        );

        // A client joining the new leader now gets the same state as a snapshot.
        let mut late = Client::connect(&b, "").await;
        let first = late.next().await;
        assert!(
            matches!(&first.message, WsMessage::SystemStatus(status) if status.status == IncidentState::Recovered),
            "{first:?}"
        );
        assert!(first.seq >= recovered.seq, "the snapshot carries the latest seq");

        // The standby's feed says what it delivered.
        let metrics = tokio::time::timeout(
            STEP,
            fixloop_adapters::default_client()
                .get(format!("{}/metrics", b.url))
                .send(),
        )
        .await
        .expect("answer in time")
        .expect("request sent")
        .text()
        .await
        .expect("a body");
        let fed = metrics
            .lines()
            .find_map(|line| line.strip_prefix("fixloop_events_fed_total "))
            .and_then(|value| value.parse::<u64>().ok());
        assert!(fed.is_some_and(|fed| fed > 0), "{metrics}");

        b.terminate().await;
        traffic.abort();
        inventory.kill().await;
    })
    .await
    .expect("the story completes in time");
}
