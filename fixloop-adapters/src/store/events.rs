//! The [`EventLog`] port: the WebSocket events of every service, in one order every replica reads.
//!
//! Replicas sharing a database each lead some services; the leader of a service writes each event its engine
//! publishes to the log under the service's lease ([`EventLog::append_events`], refused with
//! [`StoreError::Fenced`] once the lease is no longer the live one), and every replica reads the log in `seq` order
//! ([`EventLog::read_after`]) into the hub its WebSocket clients subscribe to, so a client of any replica sees every
//! service's events, numbered by the log's `seq`, and resumes with `?since=` on any replica.
//!
//! The contract an implementation keeps: **`seq` order is commit order**. An event with a smaller `seq` is readable
//! before (or together with) any event with a larger one, so a reader that asks for `seq > last` never skips an
//! event that commits later ([`PostgresStore`](super::PostgresStore) serializes its inserts to keep it).
//!
//! Implementations: [`PostgresStore`](super::PostgresStore) (table `events`, migration 8, `LISTEN`/`NOTIFY` for
//! [`EventLog::wakeups`]) and [`MemoryEventLog`] (one process; the tests' fake).

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use tokio::sync::Notify;

use super::{Lease, StoreError};

/// How many `seq` numbers back from the latest event the log keeps whole: [`EventLog::prune`] drops older events,
/// except the latest of each type of each service (what a join snapshot is built from).
pub const EVENTS_KEPT: u64 = 10_000;

/// One event as the log keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedEvent {
    /// Its place in the log: increasing, with gaps allowed (never reused).
    pub seq: u64,
    /// The service whose engine published it.
    pub service: String,
    /// Its WebSocket type (`system.status`, `incident.created`, …).
    pub kind: String,
    /// The serialized envelope (`type`, `payload`, `ts`) without its `seq`.
    pub payload: String,
}

/// An event to append: its type and the serialized envelope without its `seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// Its WebSocket type.
    pub kind: String,
    /// The serialized envelope without its `seq`.
    pub payload: String,
}

/// The shared log of WebSocket events (held as `Arc<dyn EventLog>`).
#[async_trait]
pub trait EventLog: Send + Sync + fmt::Debug {
    /// Appends `events` of `lease.service`, in order, in one transaction, only while `lease` is the service's live
    /// lease; returns their `seq`s (increasing).
    ///
    /// # Errors
    ///
    /// [`StoreError::Fenced`] (nothing written) when the lease lapsed or another holder took it, [`StoreError`]
    /// when the write fails.
    async fn append_events(
        &self,
        lease: &Lease,
        events: &[NewEvent],
    ) -> Result<Vec<u64>, StoreError>;

    /// Up to `limit` events with a `seq` above `after`, oldest first.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the log cannot be read.
    async fn read_after(&self, after: u64, limit: usize) -> Result<Vec<LoggedEvent>, StoreError>;

    /// The latest event of each type of each service (a join snapshot's material), by `seq`.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the log cannot be read.
    async fn latest_of_each(&self) -> Result<Vec<LoggedEvent>, StoreError>;

    /// The `seq` of the latest event (0 when the log is empty).
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the log cannot be read.
    async fn latest_seq(&self) -> Result<u64, StoreError>;

    /// Drops the events at least `keep` `seq` numbers older than the latest, except the latest of each type of
    /// each service; returns how many were dropped. Every event with a `seq` above `latest - keep` stays.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the log cannot be written.
    async fn prune(&self, keep: u64) -> Result<u64, StoreError>;

    /// Notified (a permit is stored: `notify_one`) after events are appended, by any process: the process's one
    /// reader waits on it between reads, with a periodic read as well (a notification can be lost while the
    /// listening connection is re-made). Every call answers the same notifier.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the listening cannot start.
    async fn wakeups(&self) -> Result<Arc<Notify>, StoreError>;
}

/// An [`EventLog`] in memory: one process's, with no fencing beyond the lease's holder (every lease is live).
#[derive(Debug, Default, Clone)]
pub struct MemoryEventLog {
    inner: Arc<Mutex<Vec<LoggedEvent>>>,
    next: Arc<Mutex<u64>>,
    wake: Arc<Notify>,
}

impl MemoryEventLog {
    /// An empty log.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn events(&self) -> std::sync::MutexGuard<'_, Vec<LoggedEvent>> {
        // Appends push whole events, so the list is consistent even if a holder panicked.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl EventLog for MemoryEventLog {
    async fn append_events(
        &self,
        lease: &Lease,
        events: &[NewEvent],
    ) -> Result<Vec<u64>, StoreError> {
        let mut kept = self.events();
        let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
        let seqs = events
            .iter()
            .map(|event| {
                *next += 1;
                kept.push(LoggedEvent {
                    seq: *next,
                    service: lease.service.clone(),
                    kind: event.kind.clone(),
                    payload: event.payload.clone(),
                });
                *next
            })
            .collect();
        drop((kept, next));
        self.wake.notify_one();
        Ok(seqs)
    }

    async fn read_after(&self, after: u64, limit: usize) -> Result<Vec<LoggedEvent>, StoreError> {
        Ok(self
            .events()
            .iter()
            .filter(|event| event.seq > after)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn latest_of_each(&self) -> Result<Vec<LoggedEvent>, StoreError> {
        let events = self.events();
        let mut latest: Vec<LoggedEvent> = Vec::new();
        for event in events.iter().rev() {
            if !latest
                .iter()
                .any(|seen| seen.service == event.service && seen.kind == event.kind)
            {
                latest.push(event.clone());
            }
        }
        latest.reverse();
        Ok(latest)
    }

    async fn latest_seq(&self) -> Result<u64, StoreError> {
        Ok(*self.next.lock().unwrap_or_else(PoisonError::into_inner))
    }

    async fn prune(&self, keep: u64) -> Result<u64, StoreError> {
        let floor = self.latest_seq().await?.saturating_sub(keep);
        let latest = self.latest_of_each().await?;
        let mut events = self.events();
        let before = events.len();
        events.retain(|event| event.seq > floor || latest.iter().any(|one| one.seq == event.seq));
        Ok((before - events.len()) as u64)
    }

    async fn wakeups(&self) -> Result<Arc<Notify>, StoreError> {
        Ok(Arc::clone(&self.wake))
    }
}
