//! The orchestrator's TCP listener with limits: a cap on open connections (and, on a server without tokens, per
//! client address), and two timeouts on every connection, so idle, slow and dead clients cannot hold descriptors.
//!
//! - **Idle**: a connection that sends nothing for [`ConnectionLimits::idle_timeout`] is closed: an idle keep-alive
//!   connection, a socket that never sent a byte, a WebSocket peer that stopped answering the server's pings (sent
//!   every 20 s, or a third of a shorter timeout, so a live peer's pongs always arrive in time).
//! - **Unanswered**: a connection that has been sending a request for the same time without getting a byte back is
//!   closed: half-sent headers dribbled a byte at a time (slowloris). Every handler answers far sooner.
//!
//! Over a cap, a new connection is accepted and closed at once; [`ConnectionStats`] counts it (shown by `/metrics`)
//! and logs at most one line a minute. The limits live below HTTP (in the socket wrapper), so they hold for HTTP/1,
//! HTTP/2 and upgraded WebSocket connections alike.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};

/// Default cap on open connections (`FIXLOOP_MAX_CONNECTIONS`).
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// Default cap per client address on a server without tokens (`FIXLOOP_MAX_CONNECTIONS_PER_ADDRESS`).
pub const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS: usize = 512;
/// Default idle timeout (`FIXLOOP_IDLE_TIMEOUT_SECS`).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// At most one log line per this interval when a cap bites.
const LOG_INTERVAL: Duration = Duration::from_secs(60);

/// The limits of [`GuardedListener`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Most open connections.
    pub max_connections: usize,
    /// Most open connections from one client address; `None` for no per-address cap (a server with tokens).
    pub max_per_address: Option<usize>,
    /// How long a connection may send nothing, or send a request without an answer, before it is closed.
    pub idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_per_address: Some(DEFAULT_MAX_CONNECTIONS_PER_ADDRESS),
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }
}

/// Counters of the listener, rendered by `/metrics` ([`ConnectionStats::render`]).
#[derive(Debug, Default)]
pub struct ConnectionStats {
    open: AtomicUsize,
    refused_total: AtomicU64,
    refused_per_address: AtomicU64,
    timed_out: AtomicU64,
    by_address: Mutex<HashMap<IpAddr, usize>>,
    last_log: Mutex<Option<Instant>>,
}

impl PartialEq for ConnectionStats {
    /// The same counters (identity: two listeners never share stats by accident).
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl ConnectionStats {
    /// Open connections now.
    #[must_use]
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// The Prometheus text of the counters.
    #[must_use]
    pub fn render(&self) -> String {
        format!(
            "# HELP fixloop_connections_open Open HTTP and WebSocket connections.\n\
             # TYPE fixloop_connections_open gauge\n\
             fixloop_connections_open {}\n\
             # HELP fixloop_connections_refused_total Connections closed at once because a cap was reached.\n\
             # TYPE fixloop_connections_refused_total counter\n\
             fixloop_connections_refused_total{{limit=\"max_connections\"}} {}\n\
             fixloop_connections_refused_total{{limit=\"max_per_address\"}} {}\n\
             # HELP fixloop_connections_timed_out_total Connections closed for sending nothing, or a request without end, for the idle timeout.\n\
             # TYPE fixloop_connections_timed_out_total counter\n\
             fixloop_connections_timed_out_total {}\n",
            self.open(),
            self.refused_total.load(Ordering::Relaxed),
            self.refused_per_address.load(Ordering::Relaxed),
            self.timed_out.load(Ordering::Relaxed),
        )
    }

    /// Takes a slot for `address`; `Err` names the cap that is full.
    fn admit(
        self: &Arc<Self>,
        address: IpAddr,
        limits: ConnectionLimits,
    ) -> Result<Permit, &'static str> {
        let mut by_address = self
            .by_address
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if self.open.load(Ordering::Relaxed) >= limits.max_connections {
            self.refused_total.fetch_add(1, Ordering::Relaxed);
            return Err("FIXLOOP_MAX_CONNECTIONS");
        }
        let count = by_address.entry(address).or_insert(0);
        if limits.max_per_address.is_some_and(|max| *count >= max) {
            self.refused_per_address.fetch_add(1, Ordering::Relaxed);
            return Err("FIXLOOP_MAX_CONNECTIONS_PER_ADDRESS");
        }
        *count += 1;
        self.open.fetch_add(1, Ordering::Relaxed);
        Ok(Permit {
            stats: Arc::clone(self),
            address,
        })
    }

    /// Whether a log line may be written now (at most one per [`LOG_INTERVAL`]).
    fn may_log(&self) -> bool {
        let mut last = self.last_log.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if last.is_some_and(|at| now.duration_since(at) < LOG_INTERVAL) {
            return false;
        }
        *last = Some(now);
        true
    }
}

/// One admitted connection's slot, given back when the connection ends.
#[derive(Debug)]
struct Permit {
    stats: Arc<ConnectionStats>,
    address: IpAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut by_address = self
            .stats
            .by_address
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = by_address.get_mut(&self.address) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                by_address.remove(&self.address);
            }
        }
        self.stats.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A TCP listener that applies [`ConnectionLimits`] (an `axum::serve::Listener`).
#[derive(Debug)]
pub struct GuardedListener {
    inner: TcpListener,
    limits: ConnectionLimits,
    stats: Arc<ConnectionStats>,
}

impl GuardedListener {
    /// Wraps `inner`; `stats` is where its counters go.
    #[must_use]
    pub fn new(inner: TcpListener, limits: ConnectionLimits, stats: Arc<ConnectionStats>) -> Self {
        Self {
            inner,
            limits,
            stats,
        }
    }
}

impl axum::serve::Listener for GuardedListener {
    type Io = GuardedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, peer) = match self.inner.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    if self.stats.may_log() {
                        tracing::warn!(%error, open = self.stats.open(), "accept failed (out of descriptors?); retrying");
                    }
                    // As axum's own listener does: give the process a moment to free descriptors.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            match self.stats.admit(peer.ip().to_canonical(), self.limits) {
                Ok(permit) => {
                    return (
                        GuardedStream::new(stream, permit, self.limits.idle_timeout),
                        peer,
                    );
                }
                Err(setting) => {
                    if self.stats.may_log() {
                        tracing::warn!(
                            open = self.stats.open(),
                            %peer,
                            "connection refused: {setting} reached (at most one such line a minute; see fixloop_connections_refused_total)"
                        );
                    }
                    drop(stream);
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection with the idle and unanswered-request timeouts of [`ConnectionLimits::idle_timeout`].
#[derive(Debug)]
pub struct GuardedStream {
    inner: TcpStream,
    permit: Permit,
    timeout: Duration,
    last_read: Instant,
    /// When the client started sending what has not been answered by a single byte yet.
    unanswered_since: Option<Instant>,
    timer: Pin<Box<Sleep>>,
}

impl GuardedStream {
    fn new(inner: TcpStream, permit: Permit, timeout: Duration) -> Self {
        let now = Instant::now();
        Self {
            inner,
            permit,
            timeout,
            last_read: now,
            unanswered_since: None,
            timer: Box::pin(tokio::time::sleep_until(now + timeout)),
        }
    }

    fn deadline(&self) -> Instant {
        let idle = self.last_read + self.timeout;
        self.unanswered_since
            .map_or(idle, |since| idle.min(since + self.timeout))
    }
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buffer.filled().len();
        match Pin::new(&mut self.inner).poll_read(context, buffer) {
            Poll::Ready(Ok(())) => {
                if buffer.filled().len() > before {
                    let now = Instant::now();
                    self.last_read = now;
                    self.unanswered_since.get_or_insert(now);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => {
                let deadline = self.deadline();
                if self.timer.deadline() != deadline {
                    self.timer.as_mut().reset(deadline);
                }
                if self.timer.as_mut().poll(context).is_ready() {
                    self.permit.stats.timed_out.fetch_add(1, Ordering::Relaxed);
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client sent nothing, or no complete request, for the idle timeout",
                    )));
                }
                Poll::Pending
            }
        }
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(context, bytes);
        if matches!(written, Poll::Ready(Ok(count)) if count > 0) {
            self.unanswered_since = None;
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(context)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(context)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write_vectored(context, buffers);
        if matches!(written, Poll::Ready(Ok(count)) if count > 0) {
            self.unanswered_since = None;
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
