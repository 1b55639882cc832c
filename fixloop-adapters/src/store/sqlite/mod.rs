//! [`SqliteStore`]: the journal in one SQLite file (`<data dir>/fixloop.sqlite3`), or in memory only.
//!
//! SQLite is compiled into the binary (rusqlite's `bundled` feature), so a fresh machine needs no system library.
//! The file is opened in WAL mode with `synchronous = NORMAL`: a committed append survives a crash or a SIGKILL of
//! the process (the operating system has it), at tens of microseconds per append; `close` checkpoints the WAL into
//! the main file. The connection takes an exclusive lock, so a second FixLoop on the same data directory fails at
//! start instead of interleaving journals. The schema version lives in `PRAGMA user_version`: a file of a newer
//! version, or one that is not a FixLoop store, is refused with an error that names it, never reset.
//!
//! An existing file is validated before anything writes to it: SQLite's header, `user_version`, the tables and a
//! `PRAGMA quick_check` bounded by [`QUICK_CHECK_BUDGET`], on an immutable read-only connection (a file closed
//! cleanly), or on the writable connection before its first write and without a checkpoint on close (a file with
//! a write-ahead log left by a crash). A refused file (empty, damaged, foreign, newer, locked) is left
//! byte-identical. [`SqliteStore::open_read_only`] is `fixloop replay`'s open: it never writes.
//!
//! Retention ([`Retention`]): every snapshot saved thins the older snapshots to [`Retention::spacing`] apart and
//! compacts the journal behind them (see `compact`), then returns the freed pages (incremental vacuum); `close`
//! runs `VACUUM` before folding the write-ahead log into the file.
//!
//! Every call runs on the store's own thread (see `worker`), one at a time and in the order made, never on an
//! async worker thread. Opening a store (with its bounded check) is synchronous and runs on the caller's
//! thread: the server opens it once, before it serves. The file is split by concern: the checks of a file before it is trusted (`checks`), the
//! retention (`compaction`), the reading of rows (`rows`) and the thread (`worker`).

mod checks;
mod claims;
mod compaction;
mod outbox;
mod rows;
mod worker;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use fixloop_contract::chrono::SecondsFormat;
use fixloop_core::engine::Snapshot;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use self::checks::{
    check_header, check_schema, classify, exclusive, io_reason, read_only_connection, validate,
    wal_path,
};
use self::compaction::{compact, measure, thin};
use self::rows::{ci_intakes, ci_run_intakes, ci_runs, decode, entries, latest_snapshot};
pub use self::worker::THREAD_NAME;
use self::worker::Worker;
use super::retention::Marks;
use super::{
    ActionClaim, CiIntakeRecord, Claimed, JournalEntry, Lease, OutboxFailure, OutboxMessage,
    Retention, Store, StoreError, StoreStats, Stored,
};
use crate::notifier::Notification;

/// The schema version this build reads and writes (1: journal and snapshots; 2: and `ci_intakes`; 3: and the
/// notifications `outbox`; 4: and the server-wide `settings`; 5: and the `action_claims`).
const SCHEMA_VERSION: i64 = 5;

/// The file name inside the data directory.
pub const FILE_NAME: &str = "fixloop.sqlite3";

/// How long the read-only `PRAGMA quick_check` of an existing file may take at open before the file is refused
/// (a check that long means a store far larger than retention keeps, or a disk too slow to run on).
pub const QUICK_CHECK_BUDGET: Duration = Duration::from_secs(30);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS journal (
    service TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at TEXT NOT NULL,
    input TEXT,
    PRIMARY KEY (service, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS snapshots (
    service TEXT NOT NULL,
    seq INTEGER NOT NULL,
    snapshot TEXT NOT NULL,
    PRIMARY KEY (service, seq)
) WITHOUT ROWID;
";

/// The migrations from one schema version to the next: `(version reached, statements)`, in order. A store opened
/// for writing runs every migration above its `user_version` in the transaction that sets the new version, so a
/// file is never left half-migrated. A version-1 file (journal and snapshots) gains the `ci_intakes` table, a
/// version-2 file the `outbox`.
const MIGRATIONS: [(i64, &str); 4] = [
    (
        2,
        "
CREATE TABLE IF NOT EXISTS ci_intakes (
    id TEXT PRIMARY KEY NOT NULL,
    received_at TEXT NOT NULL,
    repository TEXT NOT NULL,
    run_id TEXT NOT NULL,
    job TEXT NOT NULL,
    class TEXT NOT NULL,
    document TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ci_intakes_by_time ON ci_intakes (received_at);
",
    ),
    (
        3,
        // The notifications outbox (`store::outbox`): one row per (sink, notification id), in the order enqueued;
        // `outcome` is NULL while the message waits, then `delivered` or `given_up`.
        "
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sink TEXT NOT NULL,
    key TEXT NOT NULL,
    notification TEXT NOT NULL,
    enqueued_at TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at TEXT NOT NULL,
    last_error TEXT,
    outcome TEXT,
    settled_at TEXT,
    UNIQUE (sink, key)
);
CREATE INDEX IF NOT EXISTS outbox_waiting ON outbox (sink, id) WHERE outcome IS NULL;
",
    ),
    (
        4,
        // Server-wide settings (the remediation kill switch), one JSON text per key.
        "CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);",
    ),
    // The claims of remediation actions (`store::claims`), one per (service, proposal, version).
    (5, super::claims::SQLITE_TABLE),
];

/// Indexes created at every open for writing, without a schema version of their own (an index changes no row,
/// and an older file gains it in the transaction that checks the version): `ci_intakes_by_run` serves a run's
/// intakes (`ci_run_intakes`, the self-heal's count) and the CI incidents (`ci_runs`).
const INDEXES: &str = "
CREATE INDEX IF NOT EXISTS ci_intakes_by_run ON ci_intakes (repository, run_id);
";

/// The tables and indexes a FixLoop store may hold (anything else makes it a foreign database).
pub(super) const SCHEMA_NAMES: [&str; 9] = [
    "journal",
    "snapshots",
    "ci_intakes",
    "ci_intakes_by_time",
    "ci_intakes_by_run",
    "outbox",
    "outbox_waiting",
    "settings",
    "action_claims",
];

/// The SQLite store. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    /// The thread that owns the connection.
    worker: Worker,
    location: Arc<str>,
    /// Opened with [`SqliteStore::open_read_only`]: writes fail, `close` writes nothing.
    read_only: bool,
    /// What compaction keeps.
    retention: Arc<Mutex<Retention>>,
    /// The size its latest compaction measured.
    stats: Arc<Mutex<Option<StoreStats>>>,
    /// What compaction reads of each stored snapshot, by service and seq (read once, not at every compaction).
    marks: Arc<Mutex<Marks>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating it and the directory when missing) the store in `data_dir`.
    ///
    /// An existing file is validated read-only first (SQLite's read-only open, no switch to write-ahead logging):
    /// its header, its schema version and a `PRAGMA quick_check` bounded by [`QUICK_CHECK_BUDGET`]. Only a file
    /// that passes is then opened for writing, so a refused file is left byte-identical. A 0-byte file is refused
    /// (it is not an empty store: something truncated it, or a crash came before the first write).
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] for a file that is empty, damaged or not a FixLoop store, [`StoreError::NewerVersion`]
    /// for one of a newer schema, [`StoreError::Locked`] when another process holds it, [`StoreError::ReadOnly`]
    /// when it cannot be written, [`StoreError::DiskFull`], and [`StoreError::Failed`] when the directory or the
    /// file cannot be created or opened (the reason says which, permissions included).
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        Self::open_checked(data_dir, QUICK_CHECK_BUDGET)
    }

    /// [`SqliteStore::open`] with another budget for the read-only `PRAGMA quick_check` (tests use a tiny one).
    ///
    /// # Errors
    ///
    /// As [`SqliteStore::open`]; a check that does not finish within `budget` refuses the file with
    /// [`StoreError::Failed`] saying so.
    pub fn open_checked(data_dir: &Path, budget: Duration) -> Result<Self, StoreError> {
        let path: PathBuf = data_dir.join(FILE_NAME);
        let location = path.display().to_string();
        std::fs::create_dir_all(data_dir).map_err(|error| StoreError::Failed {
            location: data_dir.display().to_string(),
            why: format!("cannot create the data directory: {}", io_reason(&error)),
        })?;
        let existing = match std::fs::metadata(&path) {
            Ok(metadata) => Some(metadata.len()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
            Err(error) => {
                return Err(StoreError::Failed {
                    location,
                    why: format!("cannot read the file: {}", io_reason(&error)),
                });
            }
        };
        let flags = match existing {
            None => OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
            Some(0) => {
                return Err(StoreError::Corrupt {
                    location: location.clone(),
                    why: format!(
                        "the file is empty (0 bytes), so it holds no journal: it was truncated, or a crash came \
                         before its first write. Move it away (mv {location} {location}.empty) and FixLoop starts \
                         a new journal, or restore it from a backup"
                    ),
                });
            }
            Some(_) => {
                check_header(&path, &location)?;
                if wal_path(&path).exists() {
                    // Left by a crash (or held by a running FixLoop): validated below, before any write.
                    OpenFlags::SQLITE_OPEN_READ_WRITE
                } else {
                    let reader = read_only_connection(&path, &location)?;
                    validate(&reader, &path, &location, budget)?;
                    drop(reader);
                    OpenFlags::SQLITE_OPEN_READ_WRITE
                }
            }
        };
        let connection =
            Connection::open_with_flags(&path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                .map_err(|error| classify(&location, &error))?;
        // SQLite opens a file it cannot write read-only without saying so; say it before the first write fails.
        if connection
            .is_readonly(rusqlite::MAIN_DB)
            .map_err(|error| classify(&location, &error))?
        {
            return Err(StoreError::ReadOnly { location });
        }
        if existing.is_some_and(|len| len > 0) && wal_path(&path).exists() {
            // A write-ahead log needs a connection that can take it in; this one checks before it writes, and a
            // refusal closes it without folding the log into the file, so a refused file stays as it was.
            connection
                .set_db_config(
                    rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
                    true,
                )
                .map_err(|error| classify(&location, &error))?;
            exclusive(&connection, &location)?;
            validate(&connection, &path, &location, budget)?;
            connection
                .set_db_config(
                    rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
                    false,
                )
                .map_err(|error| classify(&location, &error))?;
        }
        Self::prepare(connection, location, true)
    }

    /// Opens an existing store for reading only (`fixloop replay`): SQLite's read-only open, so nothing in the
    /// file or beside it is written, and a file on a read-only filesystem or without write permission is read as
    /// is. When even a read-only open cannot read it (a write-ahead log it cannot take in), it is read as an
    /// immutable file.
    ///
    /// # Errors
    ///
    /// [`StoreError::Failed`] when there is no file, and the errors of [`SqliteStore::open`] for a file that is
    /// empty, damaged, newer, or held by a running FixLoop.
    pub fn open_read_only(data_dir: &Path) -> Result<Self, StoreError> {
        let path: PathBuf = data_dir.join(FILE_NAME);
        let location = path.display().to_string();
        match std::fs::metadata(&path) {
            Ok(metadata) if metadata.len() == 0 => {
                return Err(StoreError::Corrupt {
                    location,
                    why: "the file is empty (0 bytes): it holds no journal".to_owned(),
                });
            }
            Ok(_) => {}
            Err(error) => {
                return Err(StoreError::Failed {
                    location,
                    why: format!("cannot read the file: {}", io_reason(&error)),
                });
            }
        }
        check_header(&path, &location)?;
        let connection = read_only_connection(&path, &location)?;
        check_schema(&connection, &location)?;
        Ok(Self {
            worker: Worker::start(connection, &location)?,
            location: location.into(),
            read_only: true,
            retention: Arc::default(),
            stats: Arc::default(),
            marks: Arc::default(),
        })
    }

    /// A store in memory only (`--ephemeral`): nothing survives the process.
    ///
    /// # Errors
    ///
    /// [`StoreError::Failed`] when SQLite cannot allocate it.
    pub fn in_memory() -> Result<Self, StoreError> {
        let location = "memory".to_owned();
        let connection =
            Connection::open_in_memory().map_err(|error| classify(&location, &error))?;
        Self::prepare(connection, location, false)
    }

    /// Where the store is (a file path, or `memory`).
    #[must_use]
    pub fn location(&self) -> &str {
        &self.location
    }

    fn prepare(connection: Connection, location: String, file: bool) -> Result<Self, StoreError> {
        let fail = |error: rusqlite::Error| classify(&location, &error);
        if file {
            // Fail at once when another process holds the file, instead of waiting.
            connection.busy_timeout(Duration::ZERO).map_err(fail)?;
            connection
                .pragma_update(None, "locking_mode", "EXCLUSIVE")
                .map_err(fail)?;
            let mode: String = connection
                .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
                .map_err(fail)?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StoreError::Failed {
                    location,
                    why: format!("cannot switch to write-ahead logging (journal mode {mode})"),
                });
            }
            connection
                .pragma_update(None, "synchronous", "NORMAL")
                .map_err(fail)?;
        }
        check_schema(&connection, &location)?;
        // Pages freed by compaction go back to the filesystem (takes effect on a new file, or after a VACUUM).
        connection
            .execute_batch("PRAGMA auto_vacuum = INCREMENTAL;")
            .map_err(|error| classify(&location, &error))?;
        let found: i64 = connection
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(fail)?;
        let migrations: String = MIGRATIONS
            .iter()
            .filter(|(version, _)| *version > found)
            .map(|(_, statements)| *statements)
            .collect();
        // The write takes the exclusive lock now, so a second process fails here.
        connection
            .execute_batch(&format!(
                "BEGIN IMMEDIATE; {SCHEMA} {migrations} {INDEXES} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            ))
            .map_err(fail)?;
        Ok(Self {
            worker: Worker::start(connection, &location)?,
            location: location.into(),
            read_only: false,
            retention: Arc::default(),
            stats: Arc::default(),
            marks: Arc::default(),
        })
    }

    /// Sets what compaction keeps, and caps the file at `retention.max_bytes` (see [`SqliteStore::limit_size`]).
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store is closed or SQLite refuses the cap.
    pub async fn set_retention(&self, retention: Retention) -> Result<(), StoreError> {
        *self
            .retention
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = retention;
        match retention.max_bytes {
            Some(bytes) => self.limit_size(bytes).await,
            None => Ok(()),
        }
    }

    /// The services the store holds a journal for, by name.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store is closed or cannot be read.
    pub async fn services(&self) -> Result<Vec<String>, StoreError> {
        self.with(move |connection, location| {
            let fail = |error: rusqlite::Error| classify(location, &error);
            let mut statement = connection
                .prepare("SELECT DISTINCT service FROM snapshots ORDER BY service")
                .map_err(fail)?;
            let names = statement
                .query_map([], |row| row.get::<_, String>(0))
                .map_err(fail)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(fail)?;
            Ok(names)
        })
        .await
    }

    /// Caps the file at about `bytes` (SQLite's `max_page_count`, at least the pages it already has): a write
    /// beyond the cap fails as on a full disk, with [`StoreError::DiskFull`] (`FIXLOOP_STORE_MAX_KIB`; tests use it
    /// to fill the disk without filling one).
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store is closed or SQLite refuses the setting.
    pub async fn limit_size(&self, bytes: u64) -> Result<(), StoreError> {
        self.with(move |connection, location| {
            let fail = |error: rusqlite::Error| classify(location, &error);
            let page_size: u64 = connection
                .query_row("PRAGMA page_size", [], |row| row.get(0))
                .map_err(fail)?;
            let pages = (bytes / page_size.max(1)).max(1);
            connection
                .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |row| {
                    row.get::<_, i64>(0)
                })
                .map_err(fail)?;
            Ok(())
        })
        .await
    }

    /// Runs `job` on the connection, on the store's thread.
    async fn with<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Connection, &str) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let location = Arc::clone(&self.location);
        self.worker
            .run(&self.location, move |connection| {
                let Some(connection) = connection.as_mut() else {
                    return Err(StoreError::Failed {
                        location: location.to_string(),
                        why: "the store is closed".to_owned(),
                    });
                };
                job(connection, &location)
            })
            .await
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn stats(&self) -> Option<StoreStats> {
        *self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn load(&self, service: &str) -> Result<Stored, StoreError> {
        let service = service.to_owned();
        self.with(move |connection, location| {
            let snapshot = latest_snapshot(connection, location, &service)?;
            let after = snapshot.as_ref().map_or(0, |(seq, _)| *seq);
            let tail = entries(connection, location, &service, after, usize::MAX)?;
            Ok(Stored { snapshot, tail })
        })
        .await
    }

    async fn append(&self, service: &str, entry: JournalEntry) -> Result<(), StoreError> {
        let service = service.to_owned();
        let input = entry
            .input
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|error| StoreError::Failed {
                location: self.location.to_string(),
                why: format!("cannot encode the input: {error}"),
            })?;
        self.with(move |connection, location| {
            let last: Option<u64> = connection
                .query_row(
                    // The latest snapshot counts too: compaction may have deleted every row up to it.
                    "SELECT max(seq) FROM (SELECT max(seq) AS seq FROM journal WHERE service = ?1 \
                     UNION ALL SELECT max(seq) FROM snapshots WHERE service = ?1)",
                    params![service],
                    |row| row.get(0),
                )
                .map_err(|error| classify(location, &error))?;
            let last = last.unwrap_or(0);
            if entry.seq != last + 1 {
                return Err(StoreError::OutOfOrder {
                    service,
                    last,
                    got: entry.seq,
                });
            }
            connection
                .execute(
                    "INSERT INTO journal (service, seq, at, input) VALUES (?1, ?2, ?3, ?4)",
                    params![service, entry.seq, entry.at.to_rfc3339(), input],
                )
                .map_err(|error| classify(location, &error))?;
            Ok(())
        })
        .await
    }

    async fn save_snapshot(
        &self,
        service: &str,
        seq: u64,
        snapshot: Snapshot,
    ) -> Result<(), StoreError> {
        let service = service.to_owned();
        let text = serde_json::to_string(&snapshot).map_err(|error| StoreError::Failed {
            location: self.location.to_string(),
            why: format!("cannot encode the snapshot: {error}"),
        })?;
        let retention = *self
            .retention
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let stats = Arc::clone(&self.stats);
        let marks = Arc::clone(&self.marks);
        self.with(move |connection, location| {
            let fail = |error: rusqlite::Error| classify(location, &error);
            let transaction = connection.transaction().map_err(fail)?;
            transaction
                .execute(
                    "INSERT OR REPLACE INTO snapshots (service, seq, snapshot) VALUES (?1, ?2, ?3)",
                    params![service, seq, text],
                )
                .map_err(fail)?;
            // Snapshots are thinned out (at least `spacing` entries apart, the latest excepted), then compaction
            // moves the replay window's start forward (see `compact`).
            thin(&transaction, &service, seq, retention.spacing()).map_err(fail)?;
            let mut marks = marks.lock().unwrap_or_else(PoisonError::into_inner);
            marks.read(location, &service, seq, &text)?;
            compact(&transaction, location, &service, &retention, &mut marks)?;
            drop(marks);
            transaction.commit().map_err(fail)?;
            // Hand the pages compaction freed back to the filesystem (auto_vacuum = INCREMENTAL).
            connection
                .execute_batch("PRAGMA incremental_vacuum;")
                .map_err(fail)?;
            let measured = measure(connection).map_err(fail)?;
            *stats.lock().unwrap_or_else(PoisonError::into_inner) = Some(measured);
            Ok(())
        })
        .await
    }

    async fn history(
        &self,
        service: &str,
        after: u64,
        limit: usize,
    ) -> Result<(Option<(u64, Snapshot)>, Vec<JournalEntry>), StoreError> {
        let service = service.to_owned();
        self.with(move |connection, location| {
            let first: Option<(u64, String)> = connection
                .query_row(
                    "SELECT seq, snapshot FROM snapshots WHERE service = ?1 ORDER BY seq ASC LIMIT 1",
                    params![service],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()
                .map_err(|error| classify(location, &error))?;
            let first = first
                .map(|(seq, text)| Ok((seq, decode::<Snapshot>(location, &text, "snapshot")?)))
                .transpose()?;
            Ok((
                first,
                entries(connection, location, &service, after, limit)?,
            ))
        })
        .await
    }

    async fn record_ci_intake(&self, intake: CiIntakeRecord) -> Result<(), StoreError> {
        self.with(move |connection, location| {
            connection
                .execute(
                    "INSERT INTO ci_intakes (id, received_at, repository, run_id, job, class, document) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        intake.id,
                        intake.received_at.to_rfc3339_opts(SecondsFormat::Micros, true),
                        intake.repository,
                        intake.run_id,
                        intake.job,
                        intake.class,
                        intake.document
                    ],
                )
                .map_err(|error| classify(location, &error))?;
            Ok(())
        })
        .await
    }

    async fn ci_intakes(&self, limit: usize) -> Result<Vec<CiIntakeRecord>, StoreError> {
        self.with(move |connection, location| ci_intakes(connection, location, limit))
            .await
    }

    async fn ci_runs(&self, limit: usize) -> Result<Vec<(String, String)>, StoreError> {
        self.with(move |connection, location| ci_runs(connection, location, limit))
            .await
    }

    async fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = key.to_owned();
        self.with(move |connection, location| rows::setting(connection, location, &key))
            .await
    }

    async fn save_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.with(move |connection, location| {
            rows::save_setting(connection, location, &key, &value)
        })
        .await
    }

    async fn ci_run_intakes(
        &self,
        repository: &str,
        run_id: &str,
    ) -> Result<Vec<CiIntakeRecord>, StoreError> {
        let (repository, run_id) = (repository.to_owned(), run_id.to_owned());
        self.with(move |connection, location| {
            ci_run_intakes(connection, location, &repository, &run_id)
        })
        .await
    }

    async fn outbox_enqueue(
        &self,
        sink: &str,
        notification: &Notification,
    ) -> Result<bool, StoreError> {
        let text = super::outbox::encode(&self.location, notification)?;
        let sink = sink.to_owned();
        let key = notification.id.clone();
        let at = notification.at;
        self.with(move |connection, location| {
            outbox::enqueue(connection, location, &sink, &key, &text, at)
        })
        .await
    }

    async fn outbox_next(&self, sink: &str) -> Result<Option<OutboxMessage>, StoreError> {
        let sink = sink.to_owned();
        self.with(move |connection, location| outbox::next(connection, location, &sink))
            .await
    }

    async fn outbox_delivered(
        &self,
        id: u64,
        at: fixloop_contract::chrono::DateTime<fixloop_contract::chrono::Utc>,
    ) -> Result<(), StoreError> {
        self.with(move |connection, location| {
            outbox::settle(connection, location, id, "delivered", at)
        })
        .await
    }

    async fn outbox_failed(&self, id: u64, failure: OutboxFailure) -> Result<(), StoreError> {
        self.with(move |connection, location| outbox::failed(connection, location, id, &failure))
            .await
    }

    async fn claim_action(
        &self,
        lease: &Lease,
        claim: &ActionClaim,
    ) -> Result<Claimed, StoreError> {
        let (lease, claim) = (lease.clone(), claim.clone());
        self.with(move |connection, location| claims::claim(connection, location, &lease, &claim))
            .await
    }

    async fn close(&self) -> Result<(), StoreError> {
        let read_only = self.read_only;
        let location = self.location.to_string();
        // Runs after every call made before it: the appends awaited or not are in the file when this returns.
        self.worker
            .run(&self.location, move |connection| {
                let Some(connection) = connection.take() else {
                    return Ok(());
                };
                if read_only {
                    return connection
                        .close()
                        .map_err(|(_, error)| classify(&location, &error));
                }
                // Rewrite the file without the pages compaction freed (and switch an older file to incremental
                // vacuum), then fold the write-ahead log into it, so the data directory is one self-contained file.
                if let Err(error) =
                    connection.execute_batch("PRAGMA auto_vacuum = INCREMENTAL; VACUUM;")
                {
                    tracing::warn!(%location, %error, "the store could not be vacuumed at close");
                }
                connection
                    .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
                    .map_err(|error| classify(&location, &error))?;
                connection
                    .close()
                    .map_err(|(_, error)| classify(&location, &error))
            })
            .await
    }
}

#[cfg(test)]
mod tests;
