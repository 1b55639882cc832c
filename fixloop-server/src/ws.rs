//! The WebSocket hub: every client gets every event, through its own bounded queue.
//!
//! The driver is the only publisher and owns the [`Hub`]: subscribing (snapshot + registration) and broadcasting
//! happen on the driver's task, so a client never misses an event between its snapshot and its first live event.
//! Broadcasting uses `try_send`: a client whose queue is full is dropped (its queue closes, and its connection
//! closes with code 1008) without delaying anyone else. [`run_connection`] is the per-connection loop, generic over
//! `Sink`/`Stream` so it can be tested with channels.
//!
//! An event is serialized once per broadcast and its bytes are shared ([`Utf8Bytes`] clones are reference counts), so
//! fan-out copies no payload per client. A connection's own memory is kept small by [`SOCKET_LIMITS`]: tungstenite's
//! default 128 KiB read buffer is zero-filled on the first read, which alone cost about 130 KB per idle client.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocketUpgrade};
use fixloop_contract::WsEnvelope;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

/// Default capacity of a client's queue.
pub const DEFAULT_QUEUE_CAPACITY: usize = 256;

/// Close code sent to a client dropped for being too slow (policy violation).
pub const CLOSE_TOO_SLOW: u16 = 1008;
/// Close code sent when the server shuts down (going away).
pub const CLOSE_GOING_AWAY: u16 = 1001;

/// Buffer sizes and incoming-message limits of one WebSocket connection (tungstenite's `WebSocketConfig`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketLimits {
    /// Capacity of the read buffer, in bytes; tungstenite allocates and zero-fills it for every connection.
    pub read_buffer_size: usize,
    /// Bytes buffered before a write reaches the socket; `0` writes every message at once (each send flushes
    /// anyway).
    pub write_buffer_size: usize,
    /// Largest write buffer, in bytes, when writes are failing; past it a send fails and the connection ends.
    pub max_write_buffer_size: usize,
    /// Largest incoming message, in bytes; a client only ever sends pings, pongs and a close.
    pub max_message_size: usize,
    /// Largest incoming frame payload, in bytes.
    pub max_frame_size: usize,
}

/// The limits every `/ws` connection gets: 4 KiB read buffer, eager writes, 1 MiB write-buffer cap, 64 KiB
/// incoming messages.
pub const SOCKET_LIMITS: SocketLimits = SocketLimits {
    read_buffer_size: 4 * 1024,
    write_buffer_size: 0,
    max_write_buffer_size: 1024 * 1024,
    max_message_size: 64 * 1024,
    max_frame_size: 64 * 1024,
};

impl SocketLimits {
    /// Applies these limits to an upgrade.
    pub fn apply(self, upgrade: WebSocketUpgrade) -> WebSocketUpgrade {
        upgrade
            .read_buffer_size(self.read_buffer_size)
            .write_buffer_size(self.write_buffer_size)
            .max_write_buffer_size(self.max_write_buffer_size)
            .max_message_size(self.max_message_size)
            .max_frame_size(self.max_frame_size)
    }
}

/// What the hub sends down a client's queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    /// One serialized `WsEnvelope`.
    Event(Utf8Bytes),
    /// Close the connection with this code and reason.
    Close(u16, &'static str),
}

/// The registry of connected clients.
#[derive(Debug)]
pub struct Hub {
    capacity: usize,
    clients: Vec<mpsc::Sender<Outgoing>>,
}

impl Hub {
    /// An empty hub whose clients get queues of `capacity` messages.
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            clients: Vec::new(),
        }
    }

    /// Registers a client whose queue starts with `snapshot`; returns the receiving end of its queue.
    pub fn subscribe(&mut self, snapshot: &[WsEnvelope]) -> mpsc::Receiver<Outgoing> {
        let (sender, receiver) = mpsc::channel(self.capacity.max(snapshot.len() + 1));
        for envelope in snapshot {
            // The queue is larger than the snapshot, so this cannot be full; a failure would only mean the
            // receiver is gone, and then registering is moot anyway.
            let _ = sender.try_send(Outgoing::Event(serialize(envelope)));
        }
        self.clients.push(sender);
        receiver
    }

    /// Sends `envelope` to every client without waiting; drops the clients whose queue is full or closed.
    /// Returns how many clients were dropped.
    pub fn broadcast(&mut self, envelope: &WsEnvelope) -> usize {
        let text = serialize(envelope);
        let before = self.clients.len();
        self.clients.retain(
            |client| match client.try_send(Outgoing::Event(text.clone())) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    tracing::warn!("dropping a websocket client whose queue is full");
                    false
                }
                Err(TrySendError::Closed(_)) => false,
            },
        );
        before - self.clients.len()
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
        for client in self.clients.drain(..) {
            let _ = client.try_send(Outgoing::Close(CLOSE_GOING_AWAY, "server shutting down"));
        }
    }
}

/// Serializes an envelope once for every client.
fn serialize(envelope: &WsEnvelope) -> Utf8Bytes {
    // Serializing the contract's plain data types cannot fail (no maps with non-string keys, no custom
    // serializers that error); fall back to an empty object rather than panic.
    Utf8Bytes::from(serde_json::to_string(envelope).unwrap_or_else(|_| "{}".to_owned()))
}

/// Timing of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionConfig {
    /// How often the server pings an idle client.
    pub ping_interval: Duration,
    /// How long one write may take before the client is considered stalled and disconnected.
    pub write_timeout: Duration,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_secs(20),
            write_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionEnd {
    /// The client closed it (close frame or end of stream).
    ClientClosed,
    /// The hub dropped the client (queue overflow) or the server is shutting down.
    ServerClosed,
    /// A read or write failed or timed out.
    Broken,
}

/// Runs one WebSocket connection: forwards the queue to the client, answers pings, pings an idle client, and ends
/// on a close from either side.
pub async fn run_connection<Tx, Rx, E>(
    mut sink: Tx,
    mut stream: Rx,
    mut queue: mpsc::Receiver<Outgoing>,
    config: ConnectionConfig,
) -> ConnectionEnd
where
    Tx: Sink<Message> + Unpin,
    Rx: Stream<Item = Result<Message, E>> + Unpin,
{
    let mut ping = tokio::time::interval_at(
        tokio::time::Instant::now() + config.ping_interval,
        config.ping_interval,
    );
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let outgoing = tokio::select! {
            queued = queue.recv() => match queued {
                Some(Outgoing::Event(text)) => Message::Text(text),
                Some(Outgoing::Close(code, reason)) => {
                    close(&mut sink, code, reason, config.write_timeout).await;
                    return ConnectionEnd::ServerClosed;
                }
                None => {
                    close(&mut sink, CLOSE_TOO_SLOW, "client too slow", config.write_timeout).await;
                    return ConnectionEnd::ServerClosed;
                }
            },
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Ping(payload))) => Message::Pong(payload),
                Some(Ok(Message::Close(_))) | None => return ConnectionEnd::ClientClosed,
                Some(Ok(_)) => continue,
                Some(Err(_)) => return ConnectionEnd::Broken,
            },
            _ = ping.tick() => Message::Ping(axum::body::Bytes::from_static(b"fixloop")),
        };
        match tokio::time::timeout(config.write_timeout, sink.send(outgoing)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => return ConnectionEnd::Broken,
        }
    }
}

async fn close<Tx: Sink<Message> + Unpin>(
    sink: &mut Tx,
    code: u16,
    reason: &'static str,
    timeout: Duration,
) {
    let frame = Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }));
    let _ = tokio::time::timeout(timeout, sink.send(frame)).await;
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
    fn socket_limits_keep_an_idle_connection_small() {
        // tungstenite's defaults are 128 KiB buffers, an unbounded write buffer and 64 MiB messages; a regression
        // to them costs about 130 KB per client (1.3 GB at 10,000 clients).
        let limits = SOCKET_LIMITS;
        assert!(limits.read_buffer_size <= 8 * 1024);
        assert_eq!(limits.write_buffer_size, 0);
        assert!(limits.max_write_buffer_size <= 4 * 1024 * 1024);
        assert!(limits.max_write_buffer_size > limits.write_buffer_size + 64 * 1024);
        assert!(limits.max_message_size <= 1024 * 1024);
        assert!(limits.max_frame_size <= limits.max_message_size);
    }

    #[test]
    fn broadcast_shares_one_serialized_payload() {
        let mut hub = Hub::new(4);
        let mut first = hub.subscribe(&[]);
        let mut second = hub.subscribe(&[]);
        hub.broadcast(&envelope(0.5));
        let (Ok(Outgoing::Event(a)), Ok(Outgoing::Event(b))) =
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
                assert!(matches!(message, Outgoing::Event(_)));
                received += 1;
            }
        }
        assert_eq!(dropped, 1);
        assert_eq!(hub.len(), 1);
        assert_eq!(received, 11, "snapshot + 10 events");
        // The stalled client keeps what was queued, then sees its queue closed.
        let mut queued = 0;
        while let Ok(Outgoing::Event(_)) = stalled.try_recv() {
            queued += 1;
        }
        assert_eq!(queued, 4);
        assert!(matches!(
            stalled.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
    }
}
