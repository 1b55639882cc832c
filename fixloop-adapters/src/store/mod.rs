//! The [`Store`] port: the durable journal of every input each engine accepted, and the engine snapshots that make
//! a restart fast.
//!
//! A driver appends each input (with its time) *before* it carries out the input's effects, and saves a snapshot
//! of its engine now and then; on start it loads the latest snapshot and the entries after it, restores the engine
//! and replays them (see `fixloop_core::engine::Snapshot`). Everything else a journal can answer (history,
//! timelines, replays) is derived from the entries, never inferred elsewhere.
//!
//! Implementations: [`SqliteStore`] (the embedded default: one SQLite file in the data directory, or memory only)
//! and the deterministic [`FakeStore`](crate::fake::FakeStore), and [`PostgresStore`] (one PostgreSQL database several
//! replicas share, `FIXLOOP_DATABASE_URL=postgres://…`), with leases and fenced appends for the replicas. Entries are stored in the core's explicit, versioned formats ([`RecordedInput`], [`Snapshot`]) as
//! JSON, so a journal outlives changes of the engine's in-memory shape.

mod claims;
mod events;
mod leases;
mod outbox;
mod postgres;
mod retention;
mod sqlite;

use std::fmt;

use async_trait::async_trait;
use fixloop_contract::chrono::{DateTime, Utc};
use fixloop_core::engine::{RecordedInput, Snapshot};

use crate::notifier::Notification;

pub use claims::{ActionClaim, Claimed};
pub use outbox::{KEEP_SETTLED as OUTBOX_KEEP_SETTLED, OutboxFailure, OutboxMessage};

pub use events::{EVENTS_KEPT, EventLog, LoggedEvent, MemoryEventLog, NewEvent};
pub use leases::{Leases, ReplicaBeat, ReplicaRecord, SoleLeases};
pub use postgres::{
    CALL_TIMEOUT, Lease, POOL_SIZE, PostgresStore, SCHEMA_VERSION as POSTGRES_SCHEMA_VERSION,
    redacted_url,
};
pub use sqlite::{FILE_NAME, QUICK_CHECK_BUDGET, SqliteStore, THREAD_NAME};

/// A store's size, as its latest compaction measured it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreStats {
    /// The file's size in bytes (its pages in use and free; the write-ahead log aside).
    pub bytes: u64,
    /// Journal rows, every service together.
    pub journal_rows: u64,
    /// Snapshot rows, every service together.
    pub snapshot_rows: u64,
}

/// How much of each service's journal a store keeps (see [`SqliteStore`]'s compaction), and how large its file
/// may grow.
///
/// The replay window keeps the last `keep_incidents` closed incidents and every incident closed within
/// `keep_age`, as far as `keep_entries` allows; the incident open now is kept whole, from its first input, whatever
/// those limits say, up to [`Retention::open_incident_entries`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// At most this many journal entries per service behind its latest snapshot (the replay window), an open
    /// incident's excepted (see [`Retention::open_incident_entries`]).
    pub keep_entries: u64,
    /// The replay window keeps the last this many closed incidents (by count).
    pub keep_incidents: u64,
    /// The replay window keeps the incidents closed within this time before the latest snapshot (by age); beyond
    /// both this and `keep_incidents`, it is compacted away.
    pub keep_age: std::time::Duration,
    /// A hard cap on the file's size: a write beyond it fails as on a full disk (`None`: no cap).
    pub max_bytes: Option<u64>,
}

impl Retention {
    /// How far apart the kept snapshots are (the steps in which the replay window's start moves).
    #[must_use]
    pub fn spacing(&self) -> u64 {
        (self.keep_entries / 8).max(256)
    }

    /// The most entries the replay window holds to keep an open incident whole: twice `keep_entries`. An incident
    /// open longer (held open by an alert storm that reopens it again and again) loses its oldest entries, so the
    /// store stays bounded (30,000 distinct alerts in one incident leave a file well under 16 MB).
    #[must_use]
    pub fn open_incident_entries(&self) -> u64 {
        self.keep_entries.saturating_mul(2)
    }
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            keep_entries: 20_000,
            keep_incidents: 100,
            keep_age: std::time::Duration::from_secs(7 * 24 * 3600),
            max_bytes: None,
        }
    }
}

/// One call made on an engine, as the journal keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalEntry {
    /// Position in the service's journal, from 1, without gaps.
    pub seq: u64,
    /// The `now` the engine was called with.
    pub at: DateTime<Utc>,
    /// The input, or `None` for a `handle_timeout` call (timers fire at the time they were called, so a replay
    /// needs them too).
    pub input: Option<RecordedInput>,
}

/// One CI failure received by `POST /api/ci/logs`, as the store keeps it.
///
/// The columns a later query may filter on (repository, run, job, class) are plain fields; `document` is the whole
/// intake as the API answered it (the contract's `CiIntake` JSON, log excerpt and classification included), which
/// the store keeps as opaque text and hands back unchanged.
#[derive(Debug, Clone, PartialEq)]
pub struct CiIntakeRecord {
    /// The intake's id, unique in the store.
    pub id: String,
    /// When the server received it.
    pub received_at: DateTime<Utc>,
    /// The repository (`owner/name`).
    pub repository: String,
    /// The pipeline or workflow run.
    pub run_id: String,
    /// The job of the run.
    pub job: String,
    /// The classifier's class (a stable `fixloop_core::ci::FailureClass` name).
    pub class: String,
    /// The whole intake as JSON.
    pub document: String,
}

/// Most intakes [`Store::ci_run_intakes`] returns for one run (the latest ones).
pub const MAX_CI_RUN_INTAKES: usize = 200;

/// What a store holds for one service.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Stored {
    /// The latest snapshot and the seq of the last entry it includes (0: taken before any entry).
    pub snapshot: Option<(u64, Snapshot)>,
    /// Every entry after the snapshot's seq, oldest first.
    pub tail: Vec<JournalEntry>,
}

impl Stored {
    /// The seq of the last entry the store holds (0 when it holds none).
    #[must_use]
    pub fn last_seq(&self) -> u64 {
        self.tail
            .last()
            .map(|entry| entry.seq)
            .or_else(|| self.snapshot.as_ref().map(|(seq, _)| *seq))
            .unwrap_or(0)
    }
}

/// The durable journal and snapshots of every watched service (held as `Arc<dyn Store>`).
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    /// The latest snapshot of `service` and every entry after it (empty for a service never seen).
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot be read or holds something this build cannot read.
    async fn load(&self, service: &str) -> Result<Stored, StoreError>;

    /// Appends `entry` to `service`'s journal; when this returns `Ok`, the entry survives a crash of the process.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the write fails, or [`StoreError::OutOfOrder`] when `entry.seq` is not the next one.
    async fn append(&self, service: &str, entry: JournalEntry) -> Result<(), StoreError>;

    /// Stores a snapshot of `service`'s engine taken after the entry `seq` (0: before any). The first snapshot
    /// and the latest are kept (a replay starts from the first, a restart from the latest).
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the write fails.
    async fn save_snapshot(
        &self,
        service: &str,
        seq: u64,
        snapshot: Snapshot,
    ) -> Result<(), StoreError>;

    /// The first snapshot `service` keeps, with the seq of the last entry it covers (the fresh engine at 0, or
    /// the oldest snapshot compaction kept), and up to `limit` entries after `after`, oldest first: what an offline
    /// replay feeds through the engine.
    ///
    /// # Errors
    ///
    /// As [`Store::load`].
    async fn history(
        &self,
        service: &str,
        after: u64,
        limit: usize,
    ) -> Result<(Option<(u64, Snapshot)>, Vec<JournalEntry>), StoreError>;

    /// Records a CI intake (`POST /api/ci/logs`); when this returns `Ok`, it survives a crash of the process.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the write fails, or [`StoreError::Failed`] when an intake with the same id exists.
    async fn record_ci_intake(&self, intake: CiIntakeRecord) -> Result<(), StoreError>;

    /// The `limit` most recent CI intakes, newest first (by `received_at`, then by the order they were recorded).
    ///
    /// # Errors
    ///
    /// As [`Store::load`].
    async fn ci_intakes(&self, limit: usize) -> Result<Vec<CiIntakeRecord>, StoreError>;

    /// The server-wide setting `key` (for example the remediation kill switch, as JSON text), if ever saved.
    ///
    /// # Errors
    ///
    /// As [`Store::load`].
    async fn setting(&self, key: &str) -> Result<Option<String>, StoreError>;

    /// Saves the server-wide setting `key` (replacing what was there); when this returns `Ok`, it survives a crash
    /// of the process and every replica of a shared store reads it.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the write fails.
    async fn save_setting(&self, key: &str, value: &str) -> Result<(), StoreError>;

    /// The CI intakes of one run (`repository`, `run_id`), oldest first (by `received_at`, then by the order they
    /// were recorded), at most [`MAX_CI_RUN_INTAKES`] (the latest ones): what the CI self-heal counts its reruns
    /// and its incident's state from.
    ///
    /// # Errors
    ///
    /// As [`Store::load`].
    async fn ci_run_intakes(
        &self,
        repository: &str,
        run_id: &str,
    ) -> Result<Vec<CiIntakeRecord>, StoreError>;

    /// The `limit` runs (`(repository, run_id)`) with the most recent CI intakes, newest first (by their latest
    /// `received_at`, then by the order they were recorded): the CI incidents' list.
    ///
    /// # Errors
    ///
    /// As [`Store::load`].
    async fn ci_runs(&self, limit: usize) -> Result<Vec<(String, String)>, StoreError>;

    /// Puts `notification` at the end of `sink`'s outbox, due at once; when this returns `Ok`, it survives a crash
    /// of the process. A notification whose id `sink`'s outbox holds already (waiting, or among the last
    /// [`OUTBOX_KEEP_SETTLED`] settled) is not added again: `Ok(false)`.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the write fails.
    async fn outbox_enqueue(
        &self,
        sink: &str,
        notification: &Notification,
    ) -> Result<bool, StoreError>;

    /// The oldest message of `sink`'s outbox that is neither delivered nor given up, whatever its due time: a sink
    /// receives its messages in order, so a later one waits behind it.
    ///
    /// # Errors
    ///
    /// As [`Store::load`].
    async fn outbox_next(&self, sink: &str) -> Result<Option<OutboxMessage>, StoreError>;

    /// Settles the message `id` as delivered (the sink acknowledged it, or declined its kind) at `at`.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the write fails.
    async fn outbox_delivered(&self, id: u64, at: DateTime<Utc>) -> Result<(), StoreError>;

    /// Records a failed attempt at the message `id`: its attempt count and error, and when to try again, or, with
    /// no retry time, gives it up (settled undelivered, so the sink's next message can go).
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the write fails.
    async fn outbox_failed(&self, id: u64, failure: OutboxFailure) -> Result<(), StoreError>;

    /// Records that `lease.holder` carries out `claim` for `lease.service` under `lease.epoch`, before it does (see
    /// [`ActionClaim`]): [`Claimed::Taken`] when the action was claimed before, by anyone (it must not run again).
    ///
    /// # Errors
    ///
    /// [`StoreError::Fenced`] (nothing written) when `lease` is not current: on PostgreSQL not the service's live
    /// lease, on a store no other process shares older than the newest epoch the service's claims carry;
    /// [`StoreError`] when the write fails.
    async fn claim_action(&self, lease: &Lease, claim: &ActionClaim)
    -> Result<Claimed, StoreError>;

    /// Flushes everything to durable storage (called on shutdown; later calls may fail).
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the flush fails.
    async fn close(&self) -> Result<(), StoreError>;

    /// The store's size as of its latest compaction (`None` when it does not measure itself).
    fn stats(&self) -> Option<StoreStats> {
        None
    }
}

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The data file is not a FixLoop store, or a row cannot be read.
    #[error("the store at {location} is corrupt: {why}")]
    Corrupt {
        /// The file (or `memory`).
        location: String,
        /// What was found.
        why: String,
    },
    /// The data file was written by a newer FixLoop.
    #[error(
        "the store at {location} has schema version {found}; this build reads version {supported} (run the newer FixLoop, or move the data directory away)"
    )]
    NewerVersion {
        /// The file.
        location: String,
        /// Its schema version.
        found: i64,
        /// The version this build reads and writes.
        supported: i64,
    },
    /// Another process holds the store.
    #[error("the store at {location} is in use by another process")]
    Locked {
        /// The file.
        location: String,
    },
    /// The store cannot be written: the file's permissions, a read-only mount, or a read-only data directory.
    #[error(
        "the store at {location} is read-only (file permissions, a read-only filesystem, or a read-only data directory): FixLoop writes its journal there; make it writable or point FIXLOOP_DATA_DIR elsewhere (`fixloop replay` reads it as it is)"
    )]
    ReadOnly {
        /// The file.
        location: String,
    },
    /// The disk holding the store is full (SQLite's `SQLITE_FULL`).
    #[error(
        "the disk holding the store at {location} is full: free some space (FixLoop keeps watching from memory meanwhile)"
    )]
    DiskFull {
        /// The file.
        location: String,
    },
    /// An append skipped or repeated a position.
    #[error("journal of {service}: entry {got} appended after {last}")]
    OutOfOrder {
        /// The service.
        service: String,
        /// The last stored seq.
        last: u64,
        /// The seq appended.
        got: u64,
    },
    /// A fenced append ([`PostgresStore::append_fenced`]) carried a lease that is no longer held: another replica
    /// took the service's lease (a newer epoch), or the lease expired. Nothing was written.
    #[error(
        "journal of {service}: the lease of epoch {epoch} is no longer held (expired, or another replica leads the service); nothing was written"
    )]
    Fenced {
        /// The service.
        service: String,
        /// The stale epoch.
        epoch: u64,
    },
    /// The store could not be read or written (I/O, full disk, closed).
    #[error("the store at {location} failed: {why}")]
    Failed {
        /// The file (or `memory`).
        location: String,
        /// What failed.
        why: String,
    },
}

/// Reads a stored JSON text (a snapshot or an input) back, or says the store holds something this build cannot read.
fn decode<T: serde::de::DeserializeOwned>(
    location: &str,
    text: &str,
    what: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|error| StoreError::Corrupt {
        location: location.to_owned(),
        why: format!("a stored {what} cannot be read by this build: {error}"),
    })
}
