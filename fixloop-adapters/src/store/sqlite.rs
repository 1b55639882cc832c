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
//! Calls run on tokio's blocking pool, one at a time (a mutex around the connection).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use fixloop_contract::chrono::{DateTime, Utc};
use fixloop_core::engine::{RecordedInput, Snapshot};
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params};

use super::{JournalEntry, Retention, Store, StoreError, StoreStats, Stored};

/// The schema version this build reads and writes.
const SCHEMA_VERSION: i64 = 1;

/// The file name inside the data directory.
pub const FILE_NAME: &str = "fixloop.sqlite3";

/// How long the read-only `PRAGMA quick_check` of an existing file may take at open before the file is refused
/// (a check that long means a store far larger than retention keeps, or a disk too slow to run on).
pub const QUICK_CHECK_BUDGET: Duration = Duration::from_secs(30);

/// The first 16 bytes of every SQLite database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

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

/// The SQLite store. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    connection: Arc<Mutex<Option<Connection>>>,
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

/// [`SnapshotMark`]s by service and seq.
type Marks = std::collections::HashMap<(String, u64), SnapshotMark>;

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
            connection: Arc::new(Mutex::new(Some(connection))),
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
        // The write takes the exclusive lock now, so a second process fails here.
        connection
            .execute_batch(&format!(
                "BEGIN IMMEDIATE; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            ))
            .map_err(fail)?;
        Ok(Self {
            connection: Arc::new(Mutex::new(Some(connection))),
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

    /// Runs `job` on the connection, on the blocking pool.
    async fn with<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Connection, &str) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let connection = Arc::clone(&self.connection);
        let location = Arc::clone(&self.location);
        tokio::task::spawn_blocking(move || {
            let mut guard = connection.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(connection) = guard.as_mut() else {
                return Err(StoreError::Failed {
                    location: location.to_string(),
                    why: "the store is closed".to_owned(),
                });
            };
            job(connection, &location)
        })
        .await
        .map_err(|error| StoreError::Failed {
            location: self.location.to_string(),
            why: format!("the store task failed: {error}"),
        })?
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
                    "SELECT max(seq) FROM journal WHERE service = ?1",
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
            marks.insert(
                (service.clone(), seq),
                decode::<SnapshotMark>(location, &text, "snapshot")?,
            );
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

    async fn close(&self) -> Result<(), StoreError> {
        let connection = Arc::clone(&self.connection);
        let location = self.location.to_string();
        let read_only = self.read_only;
        tokio::task::spawn_blocking(move || {
            let taken = connection
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            let Some(connection) = taken else {
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
        .map_err(|error| StoreError::Failed {
            location: self.location.to_string(),
            why: format!("the store task failed: {error}"),
        })?
    }
}

/// Deletes the snapshot before the latest (`latest`) when it is closer than `spacing` entries to the one before it:
/// the kept snapshots are the places a compacted journal can start from, `spacing` apart.
fn thin(
    transaction: &rusqlite::Transaction<'_>,
    service: &str,
    latest: u64,
    spacing: u64,
) -> Result<(), rusqlite::Error> {
    let below: Vec<u64> = transaction
        .prepare_cached(
            "SELECT seq FROM snapshots WHERE service = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT 2",
        )?
        .query_map(params![service, latest], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    if let [previous, before] = below[..]
        && previous - before < spacing
    {
        transaction.execute(
            "DELETE FROM snapshots WHERE service = ?1 AND seq = ?2",
            params![service, previous],
        )?;
    }
    Ok(())
}

/// What compaction reads of a stored snapshot: its time and how many incidents the engine had opened (the
/// snapshot format's own `now` and `next_incident` fields; the rest of the text is skipped).
#[derive(Debug, Clone, Copy, serde::Deserialize)]
struct SnapshotMark {
    now: DateTime<Utc>,
    #[serde(default)]
    next_incident: u64,
}

/// Moves the start of `service`'s replay window forward: the window is the journal from the oldest kept snapshot
/// to the latest; it starts at the oldest snapshot from which it holds at most `keep_entries` entries, reaches
/// back at most `keep_age` before the latest snapshot, and spans at most `keep_incidents` incidents opened. The
/// entries up to that snapshot and the snapshots before it are deleted. The entries after the latest snapshot (a
/// restart's tail) are never touched.
fn compact(
    transaction: &rusqlite::Transaction<'_>,
    location: &str,
    service: &str,
    retention: &Retention,
    cache: &mut Marks,
) -> Result<(), StoreError> {
    let fail = |error: rusqlite::Error| classify(location, &error);
    let seqs: Vec<u64> = transaction
        .prepare_cached("SELECT seq FROM snapshots WHERE service = ?1 ORDER BY seq")
        .map_err(fail)?
        .query_map(params![service], |row| row.get(0))
        .map_err(fail)?
        .collect::<Result<_, _>>()
        .map_err(fail)?;
    if seqs.len() < 2 {
        return Ok(());
    }
    cache.retain(|(other, seq), _| other != service || seqs.binary_search(seq).is_ok());
    let mut marks = Vec::with_capacity(seqs.len());
    for seq in &seqs {
        let key = (service.to_owned(), *seq);
        let mark = match cache.get(&key) {
            Some(mark) => *mark,
            None => {
                let text: String = transaction
                    .query_row(
                        "SELECT snapshot FROM snapshots WHERE service = ?1 AND seq = ?2",
                        params![service, seq],
                        |row| row.get(0),
                    )
                    .map_err(fail)?;
                let mark = decode::<SnapshotMark>(location, &text, "snapshot")?;
                cache.insert(key, mark);
                mark
            }
        };
        marks.push((*seq, mark));
    }
    let Some((latest_seq, latest)) = marks.last().copied() else {
        return Ok(());
    };
    let oldest_time = latest.now
        - fixloop_contract::chrono::TimeDelta::from_std(retention.keep_age)
            .unwrap_or(fixloop_contract::chrono::TimeDelta::MAX);
    let mut start = latest_seq;
    for (seq, candidate) in &marks {
        if latest_seq - seq <= retention.keep_entries
            && latest.next_incident.saturating_sub(candidate.next_incident)
                <= retention.keep_incidents
            && candidate.now >= oldest_time
        {
            start = *seq;
            break;
        }
    }
    if start == marks[0].0 {
        return Ok(());
    }
    transaction
        .execute(
            "DELETE FROM journal WHERE service = ?1 AND seq <= ?2",
            params![service, start],
        )
        .map_err(fail)?;
    transaction
        .execute(
            "DELETE FROM snapshots WHERE service = ?1 AND seq < ?2",
            params![service, start],
        )
        .map_err(fail)?;
    Ok(())
}

/// The file's size and rows now.
fn measure(connection: &Connection) -> Result<StoreStats, rusqlite::Error> {
    let pages: u64 = connection.query_row("PRAGMA page_count", [], |row| row.get(0))?;
    let page_size: u64 = connection.query_row("PRAGMA page_size", [], |row| row.get(0))?;
    Ok(StoreStats {
        bytes: pages * page_size,
        journal_rows: connection.query_row("SELECT count(*) FROM journal", [], |row| row.get(0))?,
        snapshot_rows: connection
            .query_row("SELECT count(*) FROM snapshots", [], |row| row.get(0))?,
    })
}

fn latest_snapshot(
    connection: &Connection,
    location: &str,
    service: &str,
) -> Result<Option<(u64, Snapshot)>, StoreError> {
    let row: Option<(u64, String)> = connection
        .query_row(
            "SELECT seq, snapshot FROM snapshots WHERE service = ?1 ORDER BY seq DESC LIMIT 1",
            params![service],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .map_err(|error| classify(location, &error))?;
    row.map(|(seq, text)| Ok((seq, decode(location, &text, "snapshot")?)))
        .transpose()
}

fn entries(
    connection: &Connection,
    location: &str,
    service: &str,
    after: u64,
    limit: usize,
) -> Result<Vec<JournalEntry>, StoreError> {
    let fail = |error: rusqlite::Error| classify(location, &error);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut statement = connection
        .prepare_cached(
            "SELECT seq, at, input FROM journal WHERE service = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        )
        .map_err(fail)?;
    let rows = statement
        .query_map(params![service, after, limit], |row| {
            Ok((
                row.get::<_, u64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, Option<String>>(2)?,
            ))
        })
        .map_err(fail)?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, at, input) = row.map_err(fail)?;
        let at = DateTime::parse_from_rfc3339(&at)
            .map(|at| at.with_timezone(&Utc))
            .map_err(|error| StoreError::Corrupt {
                location: location.to_owned(),
                why: format!("entry {seq} of {service}: bad time {at:?}: {error}"),
            })?;
        let input = input
            .map(|text| decode::<RecordedInput>(location, &text, "input"))
            .transpose()?;
        out.push(JournalEntry { seq, at, input });
    }
    Ok(out)
}

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

/// Checks an existing file through `connection` without writing anything: the header, the schema version, the
/// tables, and `PRAGMA quick_check` within `budget`.
fn validate(
    connection: &Connection,
    path: &Path,
    location: &str,
    budget: Duration,
) -> Result<(), StoreError> {
    check_header(path, location)?;
    check_schema(connection, location)?;
    // A watchdog interrupts the check when it outlives its budget; finishing first (or failing) stops it.
    let interrupt = connection.get_interrupt_handle();
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::Builder::new()
        .name("fixloop-store-check".to_owned())
        .spawn(move || {
            let mut wait = budget;
            // An interrupt only stops a statement that is running: repeat it until the check gives up.
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = finished.recv_timeout(wait)
            {
                interrupt.interrupt();
                wait = Duration::from_millis(10);
            }
        })
        .map_err(|error| StoreError::Failed {
            location: location.to_owned(),
            why: format!("cannot start the integrity check: {error}"),
        })?;
    let found = connection
        .prepare("PRAGMA quick_check(5)")
        .and_then(|mut statement| {
            statement
                .query_map([], |row| row.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()
        });
    drop(done);
    let _ = watchdog.join();
    let found = match found {
        Ok(found) => found,
        Err(error) if error.sqlite_error_code() == Some(ErrorCode::OperationInterrupted) => {
            return Err(StoreError::Failed {
                location: location.to_owned(),
                why: format!(
                    "its integrity check (PRAGMA quick_check) did not finish within {} s: the disk is too slow or \
                     the file far larger than retention keeps; check it offline (sqlite3 {location} 'PRAGMA \
                     quick_check') or move it away",
                    budget.as_secs_f64()
                ),
            });
        }
        Err(error) => return Err(damaged(location, &error.to_string())),
    };
    if found.len() == 1 && found[0] == "ok" {
        return Ok(());
    }
    Err(damaged(location, &found.join("; ")))
}

fn damaged(location: &str, found: &str) -> StoreError {
    StoreError::Corrupt {
        location: location.to_owned(),
        why: format!(
            "the file is damaged (PRAGMA quick_check: {found}). FixLoop does not start on it and has not changed \
             it: restore it from a backup, or move it away (mv {location} {location}.damaged) to start a new \
             journal; `sqlite3 {location} .recover` may save what is left"
        ),
    }
}

/// Refuses a file whose first bytes are not SQLite's header.
fn check_header(path: &Path, location: &str) -> Result<(), StoreError> {
    use std::io::Read as _;
    let mut header = [0_u8; 16];
    let read = std::fs::File::open(path)
        .and_then(|mut file| {
            let mut read = 0;
            while read < header.len() {
                match file.read(&mut header[read..])? {
                    0 => break,
                    n => read += n,
                }
            }
            Ok(read)
        })
        .map_err(|error| StoreError::Failed {
            location: location.to_owned(),
            why: format!("cannot read the file: {}", io_reason(&error)),
        })?;
    if read == header.len() && &header == SQLITE_HEADER {
        return Ok(());
    }
    Err(StoreError::Corrupt {
        location: location.to_owned(),
        why: format!(
            "not an SQLite database (its first bytes are not SQLite's header), so not a FixLoop store. FixLoop has \
             not changed it: point FIXLOOP_DATA_DIR elsewhere, or move the file away (mv {location} \
             {location}.foreign) to start a new journal"
        ),
    })
}

/// The write-ahead log beside `path`.
fn wal_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// Exclusive locking, failing at once when another process holds the file (its first read takes the lock).
fn exclusive(connection: &Connection, location: &str) -> Result<(), StoreError> {
    let fail = |error: rusqlite::Error| classify(location, &error);
    connection.busy_timeout(Duration::ZERO).map_err(fail)?;
    connection
        .pragma_update(None, "locking_mode", "EXCLUSIVE")
        .map_err(fail)?;
    connection
        .query_row("PRAGMA user_version", [], |row| row.get::<_, i64>(0))
        .map_err(fail)?;
    Ok(())
}

/// A connection that cannot write anything, to the file or beside it.
///
/// Without a write-ahead log beside it (a store closed cleanly), the file is the whole store: it is opened as
/// immutable (read-only, no lock, no `-shm` or `-wal` file created), which also reads it on a read-only
/// filesystem. With a log (a crash, or a running FixLoop), SQLite's read-only open reads the log too and fails
/// at once when a running FixLoop holds the file; when it cannot (a read-only directory), the file alone is read
/// as immutable, without the log's latest entries.
fn read_only_connection(path: &Path, location: &str) -> Result<Connection, StoreError> {
    let fail = |error: rusqlite::Error| classify(location, &error);
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let immutable = || {
        let uri = format!("file:{}?immutable=1", uri_path(path));
        let connection =
            Connection::open_with_flags(uri, flags | OpenFlags::SQLITE_OPEN_URI).map_err(fail)?;
        connection
            .query_row("PRAGMA user_version", [], |row| row.get::<_, i64>(0))
            .map_err(fail)?;
        Ok(connection)
    };
    if !wal_path(path).exists() {
        return immutable();
    }
    let connection = Connection::open_with_flags(path, flags).map_err(fail)?;
    connection.busy_timeout(Duration::ZERO).map_err(fail)?;
    match connection.query_row("PRAGMA user_version", [], |row| row.get::<_, i64>(0)) {
        Ok(_) => Ok(connection),
        Err(error)
            if matches!(
                error.sqlite_error_code(),
                Some(ErrorCode::CannotOpen | ErrorCode::ReadOnly | ErrorCode::SystemIoFailure)
            ) =>
        {
            drop(connection);
            tracing::warn!(%location, "the journal's write-ahead log cannot be read here (read-only directory?): reading the main file alone");
            immutable()
        }
        Err(error) => Err(fail(error)),
    }
}

/// `path` for an SQLite URI (`?`, `#` and `%` escaped).
fn uri_path(path: &Path) -> String {
    path.display()
        .to_string()
        .replace('%', "%25")
        .replace('?', "%3f")
        .replace('#', "%23")
}

/// Refuses a newer schema, and an SQLite database that is not a FixLoop store.
fn check_schema(connection: &Connection, location: &str) -> Result<(), StoreError> {
    let fail = |error: rusqlite::Error| classify(location, &error);
    let version: i64 = connection
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(fail)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::NewerVersion {
            location: location.to_owned(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    let foreign: i64 = connection
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name NOT IN ('journal', 'snapshots') \
             AND name NOT LIKE 'sqlite_%'",
            [],
            |row| row.get(0),
        )
        .map_err(fail)?;
    if foreign > 0 {
        return Err(StoreError::Corrupt {
            location: location.to_owned(),
            why: format!(
                "an SQLite database that is not a FixLoop store. FixLoop has not changed it: point \
                 FIXLOOP_DATA_DIR elsewhere, or move the file away (mv {location} {location}.foreign)"
            ),
        });
    }
    Ok(())
}

/// An I/O error in plain words.
fn io_reason(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::PermissionDenied => {
            format!(
                "permission denied ({error}): check the owner and mode of the file and its directory"
            )
        }
        std::io::ErrorKind::ReadOnlyFilesystem => {
            format!("the filesystem is read-only ({error})")
        }
        std::io::ErrorKind::StorageFull => format!("the disk is full ({error})"),
        _ => error.to_string(),
    }
}

/// Maps SQLite's error codes to the store's classification, in plain words.
fn classify(location: &str, error: &rusqlite::Error) -> StoreError {
    let code = error.sqlite_error_code();
    let failed = |why: String| StoreError::Failed {
        location: location.to_owned(),
        why,
    };
    match code {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
            damaged(location, &error.to_string())
        }
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Locked {
            location: location.to_owned(),
        },
        Some(ErrorCode::ReadOnly) => StoreError::ReadOnly {
            location: location.to_owned(),
        },
        Some(ErrorCode::DiskFull) => StoreError::DiskFull {
            location: location.to_owned(),
        },
        Some(ErrorCode::PermissionDenied | ErrorCode::AuthorizationForStatementDenied) => {
            failed(format!(
                "permission denied ({error}): check the owner and mode of the file and its directory"
            ))
        }
        Some(ErrorCode::CannotOpen) => failed(format!(
            "cannot open the file ({error}): its directory may be missing, not writable (SQLite writes a \
             write-ahead log beside the file) or not readable"
        )),
        Some(ErrorCode::SystemIoFailure) => failed(format!(
            "disk I/O error ({error}): a read-only filesystem, a full or failing disk, or a removed mount"
        )),
        _ => failed(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_errors_are_said_plainly() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(FILE_NAME);
        let writer = Connection::open(&path).expect("create");
        writer.execute_batch("CREATE TABLE t (x);").expect("create");
        drop(writer);
        let reader =
            Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open");
        let error = reader
            .execute("INSERT INTO t VALUES (1)", [])
            .expect_err("read-only");
        let said = classify("/data/fixloop.sqlite3", &error);
        assert!(matches!(said, StoreError::ReadOnly { .. }), "{said}");
        let text = said.to_string();
        assert!(text.contains("/data/fixloop.sqlite3"), "{text}");
        assert!(text.contains("read-only"), "{text}");
        assert!(!text.contains("disk I/O error"), "{text}");
    }
}
