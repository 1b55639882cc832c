//! Events across replicas: every replica of one database runs one [`Feed`], which reads the shared event log
//! ([`EventLog`]) in `seq` order into one hub every `/ws` client of the replica subscribes to, whichever replica
//! leads the services.
//!
//! - **Writing**: each leader's driver queues its published events to the log under its lease
//!   ([`super::writer::EventWriter`]); the log numbers them, and its `seq` order is its commit order.
//! - **Reading**: the feed task waits for the log's wake-up (`LISTEN`/`NOTIFY`) or [`POLL_INTERVAL`], whichever
//!   comes first, then reads every event after the last one it delivered and broadcasts it with the log's `seq`
//!   ([`Hub::broadcast_at`]). Local drivers' events come back through the same feed, so every client of every
//!   replica sees one order and the same `seq`s.
//! - **Join snapshot**: built under the hub's lock (so nothing falls between it and the live events) from the latest
//!   `system.status` of each watched service, its `incident.created` when that incident is the status's open one
//!   (with the plan of that incident's latest `plan.generated`, as the engine's card has it), and its latest
//!   `tests.updated` of that incident: the shape a driver's snapshot has.
//! - **Resume**: the hub keeps as many events as the log keeps whole ([`EVENTS_KEPT`]), loaded from the log at
//!   start, so `?since=` replays on any replica; a `since` beyond what this replica has read makes it read the log
//!   first (a client moving from a replica slightly ahead), and one older than the log keeps gets `stream.reset`.
//! - **Retention**: the feed prunes the log every [`PRUNE_INTERVAL`] ([`EventLog::prune`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use fixloop_adapters::{EVENTS_KEPT, EventLog, LoggedEvent, StoreError};
use fixloop_contract::{StreamReset, WsEnvelope, WsMessage};
use tokio::sync::watch;

use super::merge::Subscription;
use super::{DEFAULT_QUEUE_CAPACITY, EventGroups, Hub, Sequence, SharedText};
use crate::runtime::metrics::ServerMetrics;

/// How often the feed reads the log without a wake-up (a notification lost while its connection was re-made).
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// How often the feed prunes the log.
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(30);

/// How many events one read of the log asks for.
const PAGE: usize = 1000;

/// The replica's one reader of the event log, and the hub its WebSocket clients subscribe to. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Feed {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    log: Arc<dyn EventLog>,
    metrics: Arc<ServerMetrics>,
    state: Mutex<State>,
    /// Held while reading the log and delivering what was read, so two readings never deliver the same events.
    reading: tokio::sync::Mutex<()>,
}

#[derive(Debug)]
struct State {
    hub: Hub,
    /// The `seq` of the last event read from the log (delivered, or skipped as unreadable).
    last: u64,
    /// What each service's join snapshot is built from.
    latest: HashMap<String, Latest>,
}

/// The latest events of one service that a join snapshot shows.
#[derive(Debug, Default)]
struct Latest {
    status: Option<WsEnvelope>,
    incident: Option<WsEnvelope>,
    /// The latest `plan.generated`: the engine's card carries its incident's plan once made.
    plan: Option<WsEnvelope>,
    run: Option<WsEnvelope>,
}

impl Feed {
    /// Loads what the log keeps (the latest of each type of each service, and every event of the last
    /// [`EVENTS_KEPT`] `seq`s) and starts the task that delivers the new events until `stop` turns true.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the log cannot be read or listened to.
    pub async fn start(
        log: Arc<dyn EventLog>,
        metrics: Arc<ServerMetrics>,
        mut stop: watch::Receiver<bool>,
    ) -> Result<Self, StoreError> {
        let wake = log.wakeups().await?;
        let floor = log.latest_seq().await?.saturating_sub(EVENTS_KEPT);
        let kept = usize::try_from(EVENTS_KEPT).unwrap_or(usize::MAX);
        let mut state = State {
            hub: Hub::with_sequence(DEFAULT_QUEUE_CAPACITY, kept, Sequence::starting_at(floor)),
            last: floor,
            latest: HashMap::new(),
        };
        for event in log.latest_of_each().await? {
            if let Some(envelope) = parse(&event) {
                state.remember(&event.service, envelope);
            }
        }
        let feed = Self {
            inner: Arc::new(Inner {
                log,
                metrics,
                state: Mutex::new(state),
                reading: tokio::sync::Mutex::new(()),
            }),
        };
        feed.catch_up().await?;
        let task = feed.clone();
        tokio::spawn(async move {
            let mut pruned = tokio::time::Instant::now();
            loop {
                tokio::select! {
                    () = wake.notified() => {}
                    () = tokio::time::sleep(POLL_INTERVAL) => {}
                    _ = stop.wait_for(|stopped| *stopped) => break,
                }
                if let Err(error) = task.catch_up().await {
                    tracing::warn!(%error, "the event log cannot be read; trying again");
                }
                if pruned.elapsed() >= PRUNE_INTERVAL {
                    pruned = tokio::time::Instant::now();
                    if let Err(error) = task.inner.log.prune(EVENTS_KEPT).await {
                        tracing::warn!(%error, "the event log cannot be pruned");
                    }
                }
            }
            task.state().hub.close_all();
        });
        Ok(feed)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every change to the state is made whole under the lock (queueing never panics).
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The `seq` of the last event this replica read from the log.
    #[must_use]
    pub fn last(&self) -> u64 {
        self.state().last
    }

    /// Reads every event after the last one delivered and delivers it; how many were read.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the log cannot be read (what was read before is delivered).
    pub async fn catch_up(&self) -> Result<usize, StoreError> {
        let _reading = self.inner.reading.lock().await;
        let mut read = 0;
        loop {
            let after = self.last();
            let page = self.inner.log.read_after(after, PAGE).await?;
            if page.is_empty() {
                return Ok(read);
            }
            read += page.len();
            let mut state = self.state();
            let mut dropped = 0;
            let mut published = None;
            for event in &page {
                if let Some((at, lost)) = state.deliver(event) {
                    published = Some(at);
                    dropped += lost;
                }
            }
            let lag = published.map_or(0, |at| {
                u64::try_from((Utc::now() - at).num_milliseconds()).unwrap_or(0)
            });
            self.inner.metrics.events_fed(page.len(), lag);
            self.inner
                .metrics
                .websocket_clients(state.hub.len(), dropped);
        }
    }

    /// Registers a WebSocket client: with `since`, the kept events after it (reading the log first when `since` is
    /// beyond what this replica read); without, or when `since` cannot be replayed, the join snapshot of `services`
    /// (in that order), after a `stream.reset` marker when a `since` was refused.
    pub async fn subscribe(
        &self,
        since: Option<u64>,
        groups: EventGroups,
        services: &[&str],
    ) -> Subscription {
        if since.is_some_and(|since| since > self.last())
            && let Err(error) = self.catch_up().await
        {
            tracing::warn!(%error, "the event log cannot be read for a resume");
        }
        let mut state = self.state();
        let refused = match since.map(|since| state.hub.resume_to(since, groups)) {
            Some(Ok(queue)) => {
                return Subscription {
                    marker: None,
                    queues: vec![queue],
                };
            }
            Some(Err(reason)) => Some(reason),
            None => None,
        };
        let snapshot = state.snapshot(services);
        let queue = state.hub.subscribe_to(&snapshot, groups);
        self.inner.metrics.websocket_clients(state.hub.len(), 0);
        let marker = since.zip(refused).map(|(since, reason)| {
            reset_marker(StreamReset {
                since,
                oldest_available: state.hub.oldest_available(),
                reason,
            })
        });
        Subscription {
            marker,
            queues: vec![queue],
        }
    }
}

impl State {
    /// Broadcasts `event` with its `seq` and remembers it for the join snapshots: its `ts` and how many clients
    /// were dropped. An event that does not parse is skipped (and logged).
    fn deliver(&mut self, event: &LoggedEvent) -> Option<(DateTime<Utc>, usize)> {
        if event.seq <= self.last {
            return None;
        }
        self.last = event.seq;
        let envelope = parse(event)?;
        let dropped = self.hub.broadcast_at(event.seq, &envelope);
        let at = envelope.ts;
        self.remember(&event.service, envelope);
        Some((at, dropped))
    }

    fn remember(&mut self, service: &str, envelope: WsEnvelope) {
        if !matches!(
            envelope.message,
            WsMessage::SystemStatus(_)
                | WsMessage::IncidentCreated(_)
                | WsMessage::PlanGenerated(_)
                | WsMessage::TestsUpdated(_)
        ) {
            return;
        }
        let latest = self.latest.entry(service.to_owned()).or_default();
        let slot = match &envelope.message {
            WsMessage::SystemStatus(_) => &mut latest.status,
            WsMessage::IncidentCreated(_) => &mut latest.incident,
            WsMessage::PlanGenerated(_) => &mut latest.plan,
            _ => &mut latest.run,
        };
        *slot = Some(envelope);
    }

    /// The join snapshot of `services`: each one's status, its open incident and that incident's latest run.
    fn snapshot(&self, services: &[&str]) -> Vec<WsEnvelope> {
        let now = Utc::now();
        let mut snapshot = Vec::new();
        for service in services {
            let Some(latest) = self.latest.get(*service) else {
                continue;
            };
            let Some(WsMessage::SystemStatus(status)) =
                latest.status.as_ref().map(|envelope| &envelope.message)
            else {
                continue;
            };
            snapshot.push(WsMessage::SystemStatus(status.clone()).at(now));
            let Some(open) = status.active_incident_id.as_deref() else {
                continue;
            };
            if let Some(WsMessage::IncidentCreated(card)) =
                latest.incident.as_ref().map(|envelope| &envelope.message)
                && card.incident_id == open
            {
                let mut card = card.clone();
                if let Some(WsMessage::PlanGenerated(plan)) =
                    latest.plan.as_ref().map(|envelope| &envelope.message)
                    && plan.incident_id == open
                {
                    card.plan = plan.plan.clone();
                }
                snapshot.push(WsMessage::IncidentCreated(card).at(now));
            }
            if let Some(WsMessage::TestsUpdated(run)) =
                latest.run.as_ref().map(|envelope| &envelope.message)
                && run.incident_id == open
            {
                snapshot.push(WsMessage::TestsUpdated(run.clone()).at(now));
            }
        }
        snapshot
    }
}

/// The envelope a logged event carries; `None` (logged) when it does not parse (a newer build's type).
fn parse(event: &LoggedEvent) -> Option<WsEnvelope> {
    match serde_json::from_str(&event.payload) {
        Ok(envelope) => Some(envelope),
        Err(error) => {
            tracing::warn!(seq = event.seq, kind = %event.kind, %error, "an event of the log is skipped");
            None
        }
    }
}

/// The serialized `stream.reset` message sent before the join snapshot when a `since` cannot be replayed.
#[must_use]
pub fn reset_marker(reset: StreamReset) -> SharedText {
    let marker = serde_json::to_string(&WsMessage::StreamReset(reset).at(Utc::now()))
        .unwrap_or_else(|_| "{}".to_owned());
    SharedText::from(marker)
}

#[cfg(test)]
mod tests {
    use fixloop_adapters::{Lease, MemoryEventLog, NewEvent};
    use fixloop_contract::{IncidentState, SystemStatus};

    use fixloop_contract::StreamResetReason;

    use super::*;
    use crate::runtime::stream::Outgoing;

    fn status(active: Option<&str>, error_rate: f64) -> NewEvent {
        let now = "2026-11-21T10:15:00Z".parse().unwrap();
        let envelope = WsMessage::SystemStatus(SystemStatus {
            status: if active.is_some() {
                IncidentState::IncidentActive
            } else {
                IncidentState::Healthy
            },
            error_rate_5m: error_rate,
            p95_latency_ms_5m: 0.0,
            active_incident_id: active.map(str::to_owned),
            updated_at: now,
            service: None,
            signals_degraded: None,
        })
        .at(now);
        NewEvent {
            kind: envelope.message.kind().to_owned(),
            payload: serde_json::to_string(&envelope).unwrap(),
        }
    }

    fn lease(service: &str) -> Lease {
        Lease {
            service: service.to_owned(),
            holder: "replica-a".to_owned(),
            epoch: 1,
            expires_at: Utc::now(),
        }
    }

    /// The `seq` and `seq` field of every message queued so far, and their error rates.
    fn drain(queue: &mut tokio::sync::mpsc::Receiver<Outgoing>) -> Vec<(u64, Option<u64>, f64)> {
        let mut seen = Vec::new();
        while let Ok(Outgoing::Event { seq, text }) = queue.try_recv() {
            let envelope: WsEnvelope = serde_json::from_str(text.as_str()).unwrap();
            let WsMessage::SystemStatus(status) = envelope.message else {
                panic!("only statuses here");
            };
            seen.push((seq, envelope.seq, status.error_rate_5m));
        }
        seen
    }

    #[tokio::test]
    async fn the_feed_delivers_the_log_in_seq_order_and_resumes_from_it() {
        let log = MemoryEventLog::new();
        let (east, west) = (lease("east"), lease("west"));
        log.append_events(&east, &[status(None, 0.1)])
            .await
            .unwrap();
        let (_stop, stop) = watch::channel(false);
        let feed = Feed::start(Arc::new(log.clone()), Arc::default(), stop)
            .await
            .unwrap();
        assert_eq!(feed.last(), 1, "what the log kept is loaded at start");
        let mut joined = feed
            .subscribe(None, EventGroups::NONE, &["east", "west"])
            .await;
        assert!(joined.marker.is_none());
        assert_eq!(drain(&mut joined.queues[0]), [(1, Some(1), 0.1)]);
        log.append_events(&west, &[status(None, 0.2)])
            .await
            .unwrap();
        log.append_events(&east, &[status(None, 0.3)])
            .await
            .unwrap();
        // Read as the task would on the wake-up (the test reads itself to stay deterministic).
        feed.catch_up().await.unwrap();
        assert_eq!(
            drain(&mut joined.queues[0]),
            [(2, Some(2), 0.2), (3, Some(3), 0.3)]
        );
        let mut resumed = feed.subscribe(Some(1), EventGroups::NONE, &["east"]).await;
        assert!(resumed.marker.is_none());
        assert_eq!(
            drain(&mut resumed.queues[0]),
            [(2, Some(2), 0.2), (3, Some(3), 0.3)]
        );
        // A `since` beyond what the feed read: the feed reads the log first, then replays.
        // (The test's runtime runs the feed task only when the test waits, so the feed has not read them.)
        log.append_events(&west, &[status(None, 0.4), status(None, 0.5)])
            .await
            .unwrap();
        let mut ahead = feed.subscribe(Some(4), EventGroups::NONE, &["east"]).await;
        assert!(ahead.marker.is_none());
        assert_eq!(drain(&mut ahead.queues[0]), [(5, Some(5), 0.5)]);
        let mut too_new = feed
            .subscribe(Some(9), EventGroups::NONE, &["west", "east"])
            .await;
        let marker: WsEnvelope =
            serde_json::from_str(too_new.marker.expect("a marker").as_str()).unwrap();
        assert!(matches!(
            marker.message,
            WsMessage::StreamReset(StreamReset {
                reason: StreamResetReason::TooNew,
                since: 9,
                ..
            })
        ));
        assert_eq!(
            drain(&mut too_new.queues[0]),
            [(5, Some(5), 0.5), (5, Some(5), 0.3)],
            "the snapshot: each service's latest status, in the order asked, at the latest seq"
        );
    }

    #[tokio::test]
    async fn the_snapshot_shows_the_open_incident_only() {
        let log = MemoryEventLog::new();
        let shop = lease("shop");
        let now: DateTime<Utc> = "2026-11-21T10:15:00Z".parse().unwrap();
        // The contract's own example of the message, as its snapshot test writes it.
        let example = include_str!(
            "../../../../fixloop-contract/tests/it/snapshots/it__snapshots__WsEnvelope.incident.created.snap"
        );
        let mut created: WsEnvelope =
            serde_json::from_str(example.splitn(3, "---\n").nth(2).unwrap()).unwrap();
        let WsMessage::IncidentCreated(card) = &mut created.message else {
            panic!("the example is an incident.created");
        };
        card.incident_id = "inc-1".to_owned();
        created.ts = now;
        let created = NewEvent {
            kind: created.message.kind().to_owned(),
            payload: serde_json::to_string(&created).unwrap(),
        };
        log.append_events(&shop, &[created, status(Some("inc-1"), 0.5)])
            .await
            .unwrap();
        let (_stop, stop) = watch::channel(false);
        let feed = Feed::start(Arc::new(log.clone()), Arc::default(), stop)
            .await
            .unwrap();
        let kinds = |subscription: &mut Subscription| {
            std::iter::from_fn(|| match subscription.queues[0].try_recv() {
                Ok(Outgoing::Event { text, .. }) => {
                    let envelope: WsEnvelope = serde_json::from_str(text.as_str()).unwrap();
                    Some(envelope.message.kind().to_owned())
                }
                _ => None,
            })
            .collect::<Vec<_>>()
        };
        let mut open = feed.subscribe(None, EventGroups::NONE, &["shop"]).await;
        assert_eq!(kinds(&mut open), ["system.status", "incident.created"]);
        // Its plan, once generated, is in the card of later snapshots.
        let example = include_str!(
            "../../../../fixloop-contract/tests/it/snapshots/it__snapshots__WsEnvelope.plan.generated.snap"
        );
        let mut planned: WsEnvelope =
            serde_json::from_str(example.splitn(3, "---\n").nth(2).unwrap()).unwrap();
        let WsMessage::PlanGenerated(plan) = &mut planned.message else {
            panic!("the example is a plan.generated");
        };
        plan.incident_id = "inc-1".to_owned();
        plan.plan.plan_id = "the-generated-plan".to_owned();
        let planned = NewEvent {
            kind: planned.message.kind().to_owned(),
            payload: serde_json::to_string(&planned).unwrap(),
        };
        log.append_events(&shop, &[planned]).await.unwrap();
        feed.catch_up().await.unwrap();
        let mut later = feed.subscribe(None, EventGroups::NONE, &["shop"]).await;
        let cards: Vec<WsEnvelope> = std::iter::from_fn(|| match later.queues[0].try_recv() {
            Ok(Outgoing::Event { text, .. }) => serde_json::from_str(text.as_str()).ok(),
            _ => None,
        })
        .collect();
        assert!(
            matches!(&cards[1].message, WsMessage::IncidentCreated(card) if card.plan.plan_id == "the-generated-plan"),
            "{cards:?}"
        );
        log.append_events(&shop, &[status(None, 0.0)])
            .await
            .unwrap();
        feed.catch_up().await.unwrap();
        let mut closed = feed.subscribe(None, EventGroups::NONE, &["shop"]).await;
        assert_eq!(kinds(&mut closed), ["system.status"]);
    }
}
