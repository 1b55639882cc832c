//! The WebSocket hub: every client gets every event, through its own bounded queue.
//!
//! The driver is the only publisher and owns the [`Hub`]: subscribing (snapshot + registration) and broadcasting
//! happen on the driver's task, so a client never misses an event between its snapshot and its first live event.
//! Broadcasting uses `try_send`: a client whose queue is full is dropped (its queue closes, and its connection
//! closes with code 1008) without delaying anyone else. The socket itself is the HTTP layer's
//! (`crate::http::routes::ws`).
//!
//! Resume: every broadcast event gets the next `seq` of a [`Sequence`] shared by every hub of the process, and
//! each hub keeps its latest [`DEFAULT_REPLAY_CAPACITY`] events (the same shared bytes) in a ring, so
//! [`Hub::resume`] can replay what a reconnecting client missed instead of the join snapshot. A join snapshot is
//! state, not history: its messages carry the `seq` of the latest event they reflect, so a client that resumes from
//! the largest `seq` it saw gets each later event exactly once. The sequence's lock is held while an event is
//! numbered and queued to every client, so an event with a smaller `seq` is always queued (in whichever hub) before
//! one with a larger `seq`: the merge of several hubs' queues relies on it to keep `seq` order
//! ([`merge::merge_queues`]).
//!
//! An event is serialized once per broadcast, straight into its WebSocket text frame, and its bytes are shared
//! ([`SharedText`] clones are reference counts), so fan-out copies, encodes and frames nothing per client.
//!
//! Event groups: a message of an optional group ([`WsMessage::event_group`], e.g. `remediation.proposed`) goes only
//! to the clients that asked for its group ([`EventGroups`], from `GET /ws?events=`), live and replayed alike. The
//! hub checks each client's groups against the event's before queueing the same shared frame, so filtering encodes
//! nothing per client either. A client that skips an event sees a gap in `seq`, which the resume rules allow.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use fixloop_contract::{StreamResetReason, WsEnvelope, WsMessage};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

pub mod feed;
pub mod frame;
pub mod merge;
pub mod writer;

/// The optional event groups a client receives besides the events every client gets (`GET /ws?events=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct EventGroups(u8);

impl EventGroups {
    /// No optional group: the seed's five types only (and `stream.reset` when resuming).
    pub const NONE: Self = Self(0);
    /// The `remediation` group: `remediation.proposed`, `remediation.updated`, `incident.escalated`.
    pub const REMEDIATION: Self = Self(1);

    /// Parses the value of `GET /ws?events=`: a comma-separated list of known group names
    /// ([`WsMessage::EVENT_GROUPS`]), each item non-empty (a name may repeat).
    ///
    /// # Errors
    ///
    /// The offending item (empty, or an unknown name) when the list is malformed.
    pub fn parse(value: &str) -> Result<Self, String> {
        let mut groups = Self::NONE;
        for item in value.split(',') {
            groups = groups.with(Self::named(item).ok_or_else(|| item.to_owned())?);
        }
        Ok(groups)
    }

    /// The group a `GET /ws?events=` item names, if it is a known one.
    #[must_use]
    pub fn named(name: &str) -> Option<Self> {
        (name == WsMessage::REMEDIATION_GROUP).then_some(Self::REMEDIATION)
    }

    /// The groups a client must have asked for to receive `message` ([`EventGroups::NONE`] when every client
    /// receives it).
    #[must_use]
    pub fn of(message: &WsMessage) -> Self {
        message
            .event_group()
            .and_then(Self::named)
            .unwrap_or(Self::NONE)
    }

    /// These groups and `other`.
    #[must_use]
    pub const fn with(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Whether these groups include every group of `required` (so a client with them receives an event that
    /// requires `required`).
    #[must_use]
    pub const fn contains(self, required: Self) -> bool {
        self.0 & required.0 == required.0
    }
}

/// Default capacity of a client's queue.
pub const DEFAULT_QUEUE_CAPACITY: usize = 256;

/// How many broadcast events each hub keeps for clients that resume with `GET /ws?since=`.
pub const DEFAULT_REPLAY_CAPACITY: usize = 1024;

/// The `seq` counter shared by every hub of a process: the `seq` of the latest event broadcast, 0 before the first.
///
/// Cheap to clone (every clone is the same counter). It lives in memory only, so a new process starts at 0.
#[derive(Debug, Clone, Default)]
pub struct Sequence(Arc<Mutex<u64>>);

impl Sequence {
    /// A counter at 0.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A counter at `start`: the server starts its sequence at its start time in microseconds since the Unix epoch,
    /// so a process's `seq` values are above every earlier process's (one event per microsecond is far beyond any
    /// server), and a client resuming with a `since` from before a restart is told `TOO_OLD` and gets the
    /// snapshot, never the new process's events after a number that meant something else. The values stay below
    /// 2^53, exact in a JavaScript number, until the year 2255.
    #[must_use]
    pub fn starting_at(start: u64) -> Self {
        Self(Arc::new(Mutex::new(start)))
    }

    /// The `seq` of the latest event broadcast by any hub sharing this counter.
    #[must_use]
    pub fn latest(&self) -> u64 {
        *self.lock()
    }

    fn lock(&self) -> MutexGuard<'_, u64> {
        // The guarded value is a plain counter, consistent even if a holder panicked.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Close code sent to a client dropped for being too slow (policy violation).
pub const CLOSE_TOO_SLOW: u16 = 1008;
/// Close code sent when the server shuts down (going away).
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// One serialized event: UTF-8 text whose clones share one buffer (a reference count each), so a broadcast copies
/// no payload per client. The buffer is the complete WebSocket text frame of the text ([`SharedText::frame`]), built
/// once, so a connection writes it to its socket without framing it per client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedText {
    /// The text frame: header, then the text.
    frame: Bytes,
    /// The length of the frame's header.
    header: usize,
}

impl SharedText {
    /// The text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Built only from `String`s, `&str`s and serde_json's output, so always UTF-8.
        std::str::from_utf8(&self.frame[self.header..]).unwrap_or_default()
    }

    /// The shared bytes of the text (UTF-8), without the frame header.
    #[must_use]
    pub fn into_bytes(self) -> Bytes {
        self.frame.slice(self.header..)
    }

    /// The complete, unmasked WebSocket text frame carrying the text, as a server sends it.
    #[must_use]
    pub fn frame(&self) -> &Bytes {
        &self.frame
    }

    fn framed(text: &str) -> Self {
        let mut buffer = Vec::with_capacity(frame::MAX_HEADER + text.len());
        buffer.extend_from_slice(&[0; frame::MAX_HEADER]);
        buffer.extend_from_slice(text.as_bytes());
        Self::from_reserved(buffer)
    }

    /// Text written after [`frame::MAX_HEADER`] reserved bytes.
    fn from_reserved(buffer: Vec<u8>) -> Self {
        let (frame, header) = frame::text_in_place(buffer);
        Self { frame, header }
    }
}

impl Default for SharedText {
    fn default() -> Self {
        Self::framed("")
    }
}

impl From<String> for SharedText {
    fn from(text: String) -> Self {
        Self::framed(&text)
    }
}

impl From<&'static str> for SharedText {
    fn from(text: &'static str) -> Self {
        Self::framed(text)
    }
}

/// What the hub sends down a client's queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    /// One serialized `WsEnvelope` and its `seq` (for a join-snapshot message, the `seq` of the latest event it
    /// reflects), by which the queues of several hubs are merged.
    Event {
        /// The envelope's `seq`.
        seq: u64,
        /// The serialized envelope.
        text: SharedText,
    },
    /// Close the connection with this code and reason.
    Close(u16, &'static str),
}

/// A client registered with one hub ([`crate::runtime::ServiceHandle::subscribe_since`]).
#[derive(Debug)]
pub struct Subscribed {
    /// The client's queue: the replay, or the join snapshot, then the live events.
    pub queue: mpsc::Receiver<Outgoing>,
    /// Why the requested `since` could not be replayed (the queue then starts with the join snapshot); `None` when
    /// it was replayed or none was asked.
    pub reset: Option<StreamResetReason>,
    /// The `seq` of the oldest event this hub can still replay ([`Hub::oldest_available`]).
    pub oldest_available: u64,
}

/// The registry of connected clients, and the ring of recent events they may resume from.
#[derive(Debug)]
pub struct Hub {
    capacity: usize,
    /// Each client's queue and the optional groups it asked for.
    clients: Vec<(mpsc::Sender<Outgoing>, EventGroups)>,
    sequence: Sequence,
    /// The latest broadcast events with their `seq` and the groups they require, oldest first; at most
    /// `replay_capacity`.
    ring: VecDeque<(u64, EventGroups, SharedText)>,
    replay_capacity: usize,
    /// The largest `seq` this hub dropped from its ring (0 when none): a resume from an older `seq` would miss it.
    evicted: u64,
}

impl Hub {
    /// An empty hub whose clients get queues of `capacity` messages, with its own [`Sequence`] and a ring of
    /// [`DEFAULT_REPLAY_CAPACITY`] events.
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self::with_sequence(capacity, DEFAULT_REPLAY_CAPACITY, Sequence::new())
    }

    /// An empty hub numbering its events with `sequence` (shared with the process's other hubs) and keeping the
    /// latest `replay_capacity` of them.
    #[must_use]
    pub fn with_sequence(capacity: usize, replay_capacity: usize, sequence: Sequence) -> Self {
        // Nothing at or before the sequence's value at creation can be replayed: those numbers belong to earlier
        // processes (the server's sequence starts at its start time), so such a `since` is too old.
        let evicted = sequence.latest();
        Self {
            capacity: capacity.max(1),
            clients: Vec::new(),
            sequence,
            ring: VecDeque::with_capacity(replay_capacity.min(64)),
            replay_capacity,
            evicted,
        }
    }

    /// Registers a client whose queue starts with `snapshot`; returns the receiving end of its queue. Each snapshot
    /// message carries the `seq` of the latest event broadcast so far (by any hub sharing the sequence). The client
    /// gets no event of an optional group ([`Hub::subscribe_to`]).
    pub fn subscribe(&mut self, snapshot: &[WsEnvelope]) -> mpsc::Receiver<Outgoing> {
        self.subscribe_to(snapshot, EventGroups::NONE)
    }

    /// [`Hub::subscribe`] for a client that asked for `groups`: it also gets their events. Snapshot messages are
    /// queued as given (the caller builds the snapshot for the client's groups).
    pub fn subscribe_to(
        &mut self,
        snapshot: &[WsEnvelope],
        groups: EventGroups,
    ) -> mpsc::Receiver<Outgoing> {
        let latest = self.sequence.lock();
        let (sender, receiver) = mpsc::channel(self.capacity.max(snapshot.len() + 1));
        for envelope in snapshot {
            let text = serialize(&envelope.message, envelope.ts, *latest);
            // The queue is larger than the snapshot, so this cannot be full; a failure would only mean the
            // receiver is gone, and then registering is moot anyway.
            let _ = sender.try_send(Outgoing::Event { seq: *latest, text });
        }
        self.clients.push((sender, groups));
        receiver
    }

    /// Registers a client that saw every event up to `since`: its queue starts with every kept event with a larger
    /// `seq`, in order, then gets the live events. The queue holds the replay plus the usual capacity, so a replay
    /// of the whole ring leaves as much room for live events as a fresh client has (the replayed messages are the
    /// ring's shared bytes, a reference count each).
    ///
    /// # Errors
    ///
    /// The reason when this hub cannot give every event after `since`: [`StreamResetReason::TooOld`] when it
    /// dropped one from its ring, [`StreamResetReason::TooNew`] when `since` is beyond the latest `seq` (another
    /// process's). Nothing is registered then.
    pub fn resume(&mut self, since: u64) -> Result<mpsc::Receiver<Outgoing>, StreamResetReason> {
        self.resume_to(since, EventGroups::NONE)
    }

    /// [`Hub::resume`] for a client that asked for `groups`: the replay and the live events skip the events of the
    /// groups it did not ask for.
    ///
    /// # Errors
    ///
    /// As [`Hub::resume`].
    pub fn resume_to(
        &mut self,
        since: u64,
        groups: EventGroups,
    ) -> Result<mpsc::Receiver<Outgoing>, StreamResetReason> {
        let latest = self.sequence.lock();
        if since > *latest {
            return Err(StreamResetReason::TooNew);
        }
        if since < self.evicted {
            return Err(StreamResetReason::TooOld);
        }
        let start = self.ring.partition_point(|(seq, _, _)| *seq <= since);
        let (sender, receiver) = mpsc::channel(self.capacity + (self.ring.len() - start));
        for (seq, required, text) in self.ring.range(start..) {
            if !groups.contains(*required) {
                continue;
            }
            // Sized for the replay, so this cannot be full.
            let _ = sender.try_send(Outgoing::Event {
                seq: *seq,
                text: text.clone(),
            });
        }
        self.clients.push((sender, groups));
        drop(latest);
        Ok(receiver)
    }

    /// The `seq` of the oldest event this hub can still replay: a resume from `oldest_available() - 1` or later
    /// misses nothing of this hub.
    #[must_use]
    pub fn oldest_available(&self) -> u64 {
        self.evicted + 1
    }

    /// Numbers `envelope` with the next `seq`, keeps it in the ring and sends it to every client that asked for its
    /// group ([`EventGroups::of`]) without waiting; drops the clients whose queue is full or closed. Returns how
    /// many clients were dropped.
    pub fn broadcast(&mut self, envelope: &WsEnvelope) -> usize {
        let sequence = self.sequence.clone();
        let mut latest = sequence.lock();
        *latest += 1;
        let seq = *latest;
        let dropped = self.queue(seq, envelope);
        // Queued to every client under the lock, so no hub queues a later `seq` before this one.
        drop(latest);
        dropped
    }

    /// [`Hub::broadcast`] of an event numbered elsewhere (the shared event log's `seq`, `stream::feed`): it becomes
    /// the latest `seq`. An event at or below the latest is ignored (0 dropped): it was delivered already.
    pub fn broadcast_at(&mut self, seq: u64, envelope: &WsEnvelope) -> usize {
        let sequence = self.sequence.clone();
        let mut latest = sequence.lock();
        if seq <= *latest {
            return 0;
        }
        *latest = seq;
        let dropped = self.queue(seq, envelope);
        drop(latest);
        dropped
    }

    /// Keeps `envelope` numbered `seq` in the ring and queues it to the clients that asked for its group (the
    /// caller holds the sequence's lock).
    fn queue(&mut self, seq: u64, envelope: &WsEnvelope) -> usize {
        let text = serialize(&envelope.message, envelope.ts, seq);
        let required = EventGroups::of(&envelope.message);
        if self.replay_capacity > 0 {
            if self.ring.len() == self.replay_capacity
                && let Some((dropped, _, _)) = self.ring.pop_front()
            {
                self.evicted = dropped;
            }
            self.ring.push_back((seq, required, text.clone()));
        } else {
            self.evicted = seq;
        }
        let before = self.clients.len();
        self.clients.retain(|(client, groups)| {
            if !groups.contains(required) {
                // Not for this client; a closed queue is noticed at the next event it receives.
                return !client.is_closed();
            }
            match client.try_send(Outgoing::Event {
                seq,
                text: text.clone(),
            }) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    tracing::warn!("dropping a websocket client whose queue is full");
                    false
                }
                Err(TrySendError::Closed(_)) => false,
            }
        });
        before - self.clients.len()
    }

    /// How many events the ring holds.
    #[must_use]
    pub fn kept(&self) -> usize {
        self.ring.len()
    }

    /// The number of registered clients (closed ones are noticed at the next broadcast).
    #[must_use]
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// Whether no client is registered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// Asks every client to close (server shutdown) and forgets them.
    pub fn close_all(&mut self) {
        for (client, _) in self.clients.drain(..) {
            let _ = client.try_send(Outgoing::Close(CLOSE_GOING_AWAY, "server shutting down"));
        }
    }
}

/// A `WsEnvelope` with its `seq`, serialized without cloning the payload (the same keys, in the same order).
#[derive(Serialize)]
struct Numbered<'a> {
    #[serde(flatten)]
    message: &'a WsMessage,
    ts: DateTime<Utc>,
    seq: u64,
}

/// Serializes an envelope with its `seq` into its WebSocket text frame, once for every client.
fn serialize(message: &WsMessage, ts: DateTime<Utc>, seq: u64) -> SharedText {
    let numbered = Numbered { message, ts, seq };
    let mut buffer = Vec::with_capacity(512);
    buffer.extend_from_slice(&[0; frame::MAX_HEADER]);
    // Serializing the contract's plain data types cannot fail (no maps with non-string keys, no custom
    // serializers that error); fall back to an empty object rather than panic.
    if serde_json::to_writer(&mut buffer, &numbered).is_err() {
        buffer.truncate(frame::MAX_HEADER);
        buffer.extend_from_slice(b"{}");
    }
    SharedText::from_reserved(buffer)
}

#[cfg(test)]
mod tests {
    use fixloop_contract::{IncidentState, SystemStatus, WsMessage};

    use super::*;

    fn envelope(error_rate: f64) -> WsEnvelope {
        let now = "2026-11-21T10:15:00Z".parse().unwrap();
        WsMessage::SystemStatus(SystemStatus {
            status: IncidentState::Healthy,
            error_rate_5m: error_rate,
            p95_latency_ms_5m: 0.0,
            active_incident_id: None,
            updated_at: now,
            service: None,
            signals_degraded: None,
        })
        .at(now)
    }

    #[test]
    fn broadcast_shares_one_serialized_payload() {
        let mut hub = Hub::new(4);
        let mut first = hub.subscribe(&[]);
        let mut second = hub.subscribe(&[]);
        hub.broadcast(&envelope(0.5));
        let (Ok(Outgoing::Event { text: a, .. }), Ok(Outgoing::Event { text: b, .. })) =
            (first.try_recv(), second.try_recv())
        else {
            panic!("both clients get the event");
        };
        assert_eq!(
            a.as_str().as_ptr(),
            b.as_str().as_ptr(),
            "one buffer, no per-client copy"
        );
    }

    #[test]
    fn full_queue_drops_only_that_client() {
        let mut hub = Hub::new(4);
        let mut stalled = hub.subscribe(&[]);
        let mut reader = hub.subscribe(&[envelope(0.0)]);
        let mut received = 0;
        let mut dropped = 0;
        for index in 0..10 {
            dropped += hub.broadcast(&envelope(f64::from(index) / 100.0));
            while let Ok(message) = reader.try_recv() {
                assert!(matches!(message, Outgoing::Event { .. }));
                received += 1;
            }
        }
        assert_eq!(dropped, 1);
        assert_eq!(hub.len(), 1);
        assert_eq!(received, 11, "snapshot + 10 events");
        // The stalled client keeps what was queued, then sees its queue closed.
        let mut queued = 0;
        while let Ok(Outgoing::Event { .. }) = stalled.try_recv() {
            queued += 1;
        }
        assert_eq!(queued, 4);
        assert!(matches!(
            stalled.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
    }

    /// The `seq`s and `seq` fields of every message queued so far.
    fn drain(queue: &mut mpsc::Receiver<Outgoing>) -> Vec<(u64, Option<u64>)> {
        let mut seen = Vec::new();
        while let Ok(Outgoing::Event { seq, text }) = queue.try_recv() {
            let envelope: WsEnvelope = serde_json::from_str(text.as_str()).unwrap();
            seen.push((seq, envelope.seq));
        }
        seen
    }

    #[test]
    fn events_are_numbered_by_the_shared_sequence() {
        let sequence = Sequence::new();
        let mut first = Hub::with_sequence(8, 8, sequence.clone());
        let mut second = Hub::with_sequence(8, 8, sequence.clone());
        let mut a = first.subscribe(&[]);
        let mut b = second.subscribe(&[]);
        first.broadcast(&envelope(0.1));
        second.broadcast(&envelope(0.2));
        first.broadcast(&envelope(0.3));
        assert_eq!(drain(&mut a), [(1, Some(1)), (3, Some(3))]);
        assert_eq!(drain(&mut b), [(2, Some(2))]);
        assert_eq!(sequence.latest(), 3);
    }

    #[test]
    fn snapshot_messages_carry_the_latest_seq() {
        let mut hub = Hub::new(8);
        let mut early = hub.subscribe(&[envelope(0.0)]);
        hub.broadcast(&envelope(0.1));
        hub.broadcast(&envelope(0.2));
        let mut late = hub.subscribe(&[envelope(0.2), envelope(0.2)]);
        assert_eq!(
            drain(&mut early),
            [(0, Some(0)), (1, Some(1)), (2, Some(2))]
        );
        assert_eq!(drain(&mut late), [(2, Some(2)), (2, Some(2))]);
    }

    #[test]
    fn resume_replays_the_kept_events_after_since_then_live_ones() {
        let mut hub = Hub::with_sequence(4, 16, Sequence::new());
        for index in 0..5 {
            hub.broadcast(&envelope(f64::from(index)));
        }
        let mut resumed = hub.resume(2).expect("everything after 2 is kept");
        hub.broadcast(&envelope(9.0));
        assert_eq!(
            drain(&mut resumed),
            [(3, Some(3)), (4, Some(4)), (5, Some(5)), (6, Some(6))]
        );
        let mut current = hub.resume(6).expect("nothing missed");
        assert!(drain(&mut current).is_empty());
        assert_eq!(hub.resume(7).unwrap_err(), StreamResetReason::TooNew);
    }

    #[test]
    fn the_ring_is_bounded_and_says_what_it_dropped() {
        let mut hub = Hub::with_sequence(4, 3, Sequence::new());
        assert_eq!(hub.oldest_available(), 1);
        assert!(
            hub.resume(0).is_ok(),
            "nothing dropped yet: a resume from 0 is whole"
        );
        for index in 0..10 {
            hub.broadcast(&envelope(f64::from(index)));
            assert!(hub.kept() <= 3);
        }
        assert_eq!(hub.kept(), 3);
        assert_eq!(hub.oldest_available(), 8, "events 8, 9 and 10 are kept");
        assert_eq!(hub.resume(6).unwrap_err(), StreamResetReason::TooOld);
        let mut resumed = hub
            .resume(7)
            .expect("7 is the last dropped: nothing after it is missing");
        assert_eq!(
            drain(&mut resumed),
            [(8, Some(8)), (9, Some(9)), (10, Some(10))]
        );
        let mut unkept = Hub::with_sequence(4, 0, Sequence::new());
        unkept.broadcast(&envelope(0.0));
        assert_eq!(unkept.kept(), 0);
        assert_eq!(unkept.resume(0).unwrap_err(), StreamResetReason::TooOld);
    }

    fn escalated() -> WsEnvelope {
        let now = "2026-11-21T10:15:00Z".parse().unwrap();
        WsMessage::IncidentEscalated(fixloop_contract::IncidentEscalated {
            incident_id: "inc-1".to_owned(),
            service: "shop".to_owned(),
            reason: "strategy checkout is exhausted".to_owned(),
            escalated_at: now,
        })
        .at(now)
    }

    #[test]
    fn events_groups_parse_known_names_and_refuse_the_rest() {
        assert_eq!(
            EventGroups::parse("remediation"),
            Ok(EventGroups::REMEDIATION)
        );
        assert_eq!(
            EventGroups::parse("remediation,remediation"),
            Ok(EventGroups::REMEDIATION)
        );
        for bad in [
            "",
            "remediation,",
            ",remediation",
            "Remediation",
            "audit",
            " remediation",
        ] {
            assert!(EventGroups::parse(bad).is_err(), "{bad:?}");
        }
        assert!(EventGroups::NONE.contains(EventGroups::of(&envelope(0.0).message)));
        assert!(!EventGroups::NONE.contains(EventGroups::of(&escalated().message)));
        assert!(EventGroups::REMEDIATION.contains(EventGroups::of(&escalated().message)));
    }

    #[test]
    fn a_group_event_reaches_only_the_clients_that_asked_for_its_group() {
        let mut hub = Hub::new(8);
        let mut plain = hub.subscribe(&[]);
        let mut remediation = hub.subscribe_to(&[], EventGroups::REMEDIATION);
        hub.broadcast(&envelope(0.1));
        hub.broadcast(&escalated());
        hub.broadcast(&envelope(0.2));
        assert_eq!(drain(&mut plain), [(1, Some(1)), (3, Some(3))]);
        assert_eq!(
            drain(&mut remediation),
            [(1, Some(1)), (2, Some(2)), (3, Some(3))]
        );
        assert_eq!(hub.len(), 2, "a skipped client stays registered");
    }

    #[test]
    fn a_replay_skips_the_groups_the_client_did_not_ask_for() {
        let mut hub = Hub::new(8);
        hub.broadcast(&envelope(0.1));
        hub.broadcast(&escalated());
        hub.broadcast(&envelope(0.2));
        let mut plain = hub.resume(0).unwrap();
        let mut remediation = hub.resume_to(1, EventGroups::REMEDIATION).unwrap();
        assert_eq!(drain(&mut plain), [(1, Some(1)), (3, Some(3))]);
        assert_eq!(drain(&mut remediation), [(2, Some(2)), (3, Some(3))]);
    }

    #[test]
    fn a_replay_shares_the_broadcast_bytes() {
        let mut hub = Hub::new(4);
        let mut live = hub.subscribe(&[]);
        hub.broadcast(&envelope(0.5));
        let mut resumed = hub.resume(0).unwrap();
        let (Ok(Outgoing::Event { text: a, .. }), Ok(Outgoing::Event { text: b, .. })) =
            (live.try_recv(), resumed.try_recv())
        else {
            panic!("both clients get the event");
        };
        assert_eq!(a.as_str().as_ptr(), b.as_str().as_ptr());
    }
}
