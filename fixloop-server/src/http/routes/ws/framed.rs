//! A `/ws` connection that writes the hub's pre-built frames to its socket as they are ([`run_framed_connection`]):
//! no per-client encoding, buffering or framing of events. What the client sends (pings, pongs, a close) is read by
//! tungstenite's protocol state machine ([`WebSocketContext`]) with the same [`SOCKET_LIMITS`]; its automatic
//! replies (a pong, the close reply) are written by this connection in order with the events, so nothing is ever
//! interleaved inside a frame.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::mpsc;
use tungstenite::protocol::{Role, WebSocketConfig, WebSocketContext};
use tungstenite::{Error as WsError, Message as WsMessage};

use super::{CLOSE_TOO_SLOW, ConnectionConfig, ConnectionEnd, SOCKET_LIMITS};
use crate::runtime::stream::{Outgoing, frame};

/// The ping frame the server sends an idle client.
const PING: &[u8] = b"\x89\x07fixloop";

/// Runs one WebSocket connection over `io` (an upgraded HTTP/1.1 connection): writes `marker` (when given), then the
/// queue's frames to the client, answers pings, pings an idle client, and ends on a close from either side. The same
/// contract as [`super::run_connection`], which serves connections this one cannot (HTTP/2).
pub async fn run_framed_connection<Io>(
    mut io: Io,
    marker: Option<Bytes>,
    mut queue: mpsc::Receiver<Outgoing>,
    config: ConnectionConfig,
) -> ConnectionEnd
where
    Io: AsyncRead + AsyncWrite + Unpin,
{
    if let Some(marker) = marker
        && write(&mut io, &marker, config).await.is_err()
    {
        return ConnectionEnd::Broken;
    }
    let mut reader = WebSocketContext::new(Role::Server, Some(reader_config()));
    // What the reader asked to write (a pong, the close reply), written before the next frame.
    let mut replies = Vec::new();
    let mut ping = tokio::time::interval_at(
        tokio::time::Instant::now() + config.ping_interval,
        config.ping_interval,
    );
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let outgoing: Bytes = tokio::select! {
            queued = queue.recv() => match queued {
                Some(Outgoing::Event { text, .. }) => text.frame().clone(),
                Some(Outgoing::Close(code, reason)) => {
                    let _ = write(&mut io, &frame::close(code, reason), config).await;
                    return ConnectionEnd::ServerClosed;
                }
                None => {
                    let _ = write(&mut io, &frame::close(CLOSE_TOO_SLOW, "client too slow"), config).await;
                    return ConnectionEnd::ServerClosed;
                }
            },
            incoming = std::future::poll_fn(|context| poll_incoming(&mut reader, &mut io, context, &mut replies)) => {
                let end = match incoming {
                    Ok(WsMessage::Close(_)) => Some(ConnectionEnd::ClientClosed),
                    Ok(_) => None,
                    Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => Some(ConnectionEnd::ClientClosed),
                    Err(_) => return ConnectionEnd::Broken,
                };
                // A ping's pong, or the reply to a close: tungstenite queued it; have it written now.
                let _ = reader.flush(&mut Adapter::new(&mut io, None, &mut replies));
                let answered = if replies.is_empty() {
                    Ok(())
                } else {
                    let result = write(&mut io, &replies, config).await;
                    replies.clear();
                    result
                };
                match (end, answered) {
                    (Some(end), _) => return end,
                    (None, Err(_)) => return ConnectionEnd::Broken,
                    (None, Ok(())) => continue,
                }
            }
            _ = ping.tick() => Bytes::from_static(PING),
        };
        if write(&mut io, &outgoing, config).await.is_err() {
            return ConnectionEnd::Broken;
        }
    }
}

/// tungstenite's settings for reading what a client sends: the limits of [`SOCKET_LIMITS`].
fn reader_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(SOCKET_LIMITS.read_buffer_size)
        .write_buffer_size(SOCKET_LIMITS.write_buffer_size)
        .max_write_buffer_size(SOCKET_LIMITS.max_write_buffer_size)
        .max_message_size(Some(SOCKET_LIMITS.max_message_size))
        .max_frame_size(Some(SOCKET_LIMITS.max_frame_size))
}

/// Writes `bytes` whole within the write timeout.
async fn write<Io: AsyncWrite + Unpin>(
    io: &mut Io,
    bytes: &[u8],
    config: ConnectionConfig,
) -> io::Result<()> {
    match tokio::time::timeout(config.write_timeout, io.write_all(bytes)).await {
        Ok(result) => result,
        Err(_) => Err(io::ErrorKind::TimedOut.into()),
    }
}

/// The next message the client sent, or `Pending` when none is complete yet (the socket's waker is registered).
fn poll_incoming<Io: AsyncRead + Unpin>(
    reader: &mut WebSocketContext,
    io: &mut Io,
    context: &mut Context<'_>,
    replies: &mut Vec<u8>,
) -> Poll<Result<WsMessage, WsError>> {
    match reader.read(&mut Adapter::new(io, Some(context), replies)) {
        Err(WsError::Io(error)) if error.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
        other => Poll::Ready(other),
    }
}

/// tungstenite's blocking `Read + Write` over the connection: reads poll the socket (`WouldBlock` when it has
/// nothing, with the task's waker registered), writes go to `replies`, for the connection to write in order.
struct Adapter<'a, 'b, Io> {
    io: &'a mut Io,
    context: Option<&'a mut Context<'b>>,
    replies: &'a mut Vec<u8>,
}

impl<'a, 'b, Io> Adapter<'a, 'b, Io> {
    fn new(io: &'a mut Io, context: Option<&'a mut Context<'b>>, replies: &'a mut Vec<u8>) -> Self {
        Self {
            io,
            context,
            replies,
        }
    }
}

impl<Io: AsyncRead + Unpin> io::Read for Adapter<'_, '_, Io> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let Some(context) = self.context.as_deref_mut() else {
            return Err(io::ErrorKind::WouldBlock.into());
        };
        let mut buffer = ReadBuf::new(buffer);
        match Pin::new(&mut *self.io).poll_read(context, &mut buffer) {
            Poll::Ready(Ok(())) => Ok(buffer.filled().len()),
            Poll::Ready(Err(error)) => Err(error),
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl<Io> io::Write for Adapter<'_, '_, Io> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        // Bounded by tungstenite: it queues at most one pong and one close reply at a time.
        self.replies.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
