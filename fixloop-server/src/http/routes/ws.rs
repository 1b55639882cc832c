//! `GET /ws`'s connections: the socket limits every connection gets, and the per-connection loop ([`run_connection`]),
//! generic over `Sink`/`Stream` so it can be tested with channels. Its events come from the runtime's hub
//! ([`crate::runtime::stream`]). A connection's own memory is kept small by [`SOCKET_LIMITS`]: tungstenite's default
//! 128 KiB read buffer is zero-filled on the first read, which alone cost about 130 KB per idle client.
//!
//! An HTTP/1.1 upgrade (every browser's and every client's) is completed here rather than by axum, so that the
//! connection can write the hub's pre-built frames as they are ([`framed::run_framed_connection`]): fan-out then
//! encodes nothing per client. Other upgrades (HTTP/2's extended CONNECT) go through axum's `WebSocket` and
//! [`run_connection`].

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocketUpgrade};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, Version};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;

pub use crate::runtime::stream::{CLOSE_GOING_AWAY, CLOSE_TOO_SLOW};
use crate::runtime::stream::{EventGroups, Outgoing, SharedText};

use axum::Router;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use axum::routing::get;

use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::guard::origin_allowed;
use crate::runtime::stream::merge::merge_queues;

pub use framed::run_framed_connection;

mod framed;

/// The routes of this file, with their handlers.
pub(in crate::http) fn routes() -> Router<AppState> {
    Router::new().route("/ws", get(websocket))
}

/// The `since` query parameter of `GET /ws`: absent, or a decimal non-negative integer (anything else, a sign,
/// an empty value or a repeated parameter, is 400 `invalid_since`).
fn parse_since(query: &[(String, String)]) -> Result<Option<u64>, ApiError> {
    let mut values = query.iter().filter(|(name, _)| name == "since");
    let Some((_, value)) = values.next() else {
        return Ok(None);
    };
    let shown = || value.chars().take(40).collect::<String>();
    if values.next().is_some() {
        return Err(ApiError::InvalidSince(format!("{} (given twice)", shown())));
    }
    if value.is_empty() || !value.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(ApiError::InvalidSince(shown()));
    }
    value
        .parse()
        .map(Some)
        .map_err(|_| ApiError::InvalidSince(shown()))
}

/// The `events` query parameter of `GET /ws`: absent (no optional group), or a comma-separated list of known event
/// groups given once (an unknown group, an empty item or a repeated parameter is 400 `invalid_events`).
fn parse_events(query: &[(String, String)]) -> Result<EventGroups, ApiError> {
    let mut values = query.iter().filter(|(name, _)| name == "events");
    let Some((_, value)) = values.next() else {
        return Ok(EventGroups::NONE);
    };
    let shown = |text: &str| text.chars().take(40).collect::<String>();
    if values.next().is_some() {
        return Err(ApiError::InvalidEvents(format!(
            "{:?} (given twice)",
            shown(value)
        )));
    }
    EventGroups::parse(value).map_err(|item| {
        ApiError::InvalidEvents(format!("{:?} in {:?}", shown(&item), shown(value)))
    })
}

/// What completing an HTTP/1.1 upgrade here needs, taken before axum's `WebSocketUpgrade` (which removes the
/// connection's `OnUpgrade`) checks the request; `None`s for other requests.
struct Http1Upgrade {
    on_upgrade: Option<OnUpgrade>,
    key: Option<HeaderValue>,
}

impl<S: Send + Sync> FromRequestParts<S> for Http1Upgrade {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        let http1 = parts.version <= Version::HTTP_11;
        Ok(Self {
            on_upgrade: http1
                .then(|| parts.extensions.get::<OnUpgrade>().cloned())
                .flatten(),
            key: http1
                .then(|| parts.headers.get(header::SEC_WEBSOCKET_KEY).cloned())
                .flatten(),
        })
    }
}

async fn websocket(
    State(state): State<AppState>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    http1: Http1Upgrade,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    if !origin_allowed(&headers, &state.settings.cors_origins) {
        let origin: String = headers
            .get(header::ORIGIN)
            .map(|origin| {
                String::from_utf8_lossy(origin.as_bytes())
                    .chars()
                    .take(100)
                    .collect()
            })
            .unwrap_or_default();
        state.settings.refusals.record(
            fixloop_contract::codes::ORIGIN_NOT_ALLOWED,
            &format_args!("GET /ws (Origin {origin})"),
        );
        return Err(ApiError::OriginNotAllowed(origin));
    }
    let since = parse_since(&query)?;
    let groups = parse_events(&query)?;
    // axum checks the handshake (method, headers, version) for every kind of upgrade.
    let upgrade = upgrade.map_err(|_| ApiError::NotWebSocket)?;
    // Subscribing before the upgrade completes takes the join snapshots (or the replay) now; events published in
    // between queue up.
    let subscription = state.services.subscribe(since, groups).await?;
    let marker = subscription.marker;
    let queues = subscription.queues;
    let config = state.settings.websocket;
    if let Http1Upgrade {
        on_upgrade: Some(on_upgrade),
        key: Some(key),
    } = http1
    {
        drop(upgrade);
        // As axum does: the connection's task runs once hyper hands over the socket, after the 101 is written.
        tokio::spawn(async move {
            let upgraded = match on_upgrade.await {
                Ok(upgraded) => upgraded,
                Err(error) => {
                    tracing::debug!(%error, "websocket upgrade failed");
                    return;
                }
            };
            let io = TokioIo::new(upgraded);
            let marker = marker.map(|marker| marker.frame().clone());
            let end = with_one_queue(queues, |queue| {
                run_framed_connection(io, marker, queue, config)
            })
            .await;
            tracing::debug!(?end, "websocket connection ended");
        });
        return Ok(switching_protocols(&key));
    }
    Ok(SOCKET_LIMITS
        .apply(upgrade)
        .on_upgrade(move |socket| async move {
            let (mut sink, stream) = socket.split();
            if let Some(marker) = marker {
                // The marker comes before the snapshots; a client that cannot take it is gone.
                let sent = tokio::time::timeout(
                    config.write_timeout,
                    SinkExt::send(&mut sink, Message::Text(to_utf8(marker))),
                )
                .await;
                if !matches!(sent, Ok(Ok(()))) {
                    tracing::debug!("websocket client gone before its stream.reset");
                    return;
                }
            }
            let end =
                with_one_queue(queues, |queue| run_connection(sink, stream, queue, config)).await;
            tracing::debug!(?end, "websocket connection ended");
        }))
}

/// The `101 Switching Protocols` answer to an HTTP/1.1 upgrade with `key` (the headers axum writes).
fn switching_protocols(key: &HeaderValue) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) =
        HeaderValue::from_str(&tungstenite::handshake::derive_accept_key(key.as_bytes()))
    {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}

/// Runs `connection` on the client's one queue: the service's own queue, or, with several services, one queue fed
/// from every service's queue in this task.
async fn with_one_queue<F, Fut>(
    mut queues: Vec<mpsc::Receiver<Outgoing>>,
    connection: F,
) -> ConnectionEnd
where
    F: FnOnce(mpsc::Receiver<Outgoing>) -> Fut,
    Fut: Future<Output = ConnectionEnd>,
{
    if queues.len() == 1 {
        return connection(queues.remove(0)).await;
    }
    let capacity = queues
        .iter()
        .map(mpsc::Receiver::max_capacity)
        .sum::<usize>()
        .max(1);
    let (merged, queue) = mpsc::channel(capacity);
    let (end, ()) = tokio::join!(connection(queue), merge_queues(queues, merged));
    end
}

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
                Some(Outgoing::Event { text, .. }) => Message::Text(to_utf8(text)),
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

/// The hub's shared text as the socket's text, without copying it.
pub(crate) fn to_utf8(text: SharedText) -> Utf8Bytes {
    // `SharedText` is always UTF-8, so the check passes; it reads the bytes once and copies none.
    Utf8Bytes::try_from(text.into_bytes()).unwrap_or_default()
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
    use super::*;

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
}
