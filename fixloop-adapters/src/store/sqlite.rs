//! [`SqliteStore`]: the journal in one SQLite file (`<data dir>/fixloop.sqlite3`), or in memory only.
//!
//! SQLite is compiled into the binary (rusqlite's `bundled` feature), so a fresh machine needs no system library.
//! The file is opened in WAL mode with `synchronous = NORMAL`: a committed append survives a crash or a SIGKILL of
//! the process (the operating system has it), at tens of microseconds per append; `close` checkpoints the WAL into
//! the main file. The connection takes an exclusive lock, so a second FixLoop on the same data directory fails at
//! start instead of interleaving journals. The schema version lives in `PRAGMA user_version`: a file of a newer
//! version, or one that is not a FixLoop store, is refused with an error that names it, never reset.
//!
//! Calls run on tokio's blocking pool, one at a time (a mutex around the connection).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use fixloop_contract::chrono::{DateTime, Utc};
use fixloop_core::engine::{RecordedInput, Snapshot};
use rusqlite::{Connection, ErrorCode, OptionalExtension, params};

use super::{JournalEntry, Store, StoreError, Stored};

/// The schema version this build reads and writes.
const SCHEMA_VERSION: i64 = 1;

/// The file name inside the data directory.
pub const FILE_NAME: &str = "fixloop.sqlite3";

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
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] for a file that is not a FixLoop store, [`StoreError::NewerVersion`] for one of a
    /// newer schema, [`StoreError::Locked`] when another process holds it, [`StoreError::Failed`] when the directory
    /// or the file cannot be created.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let path: PathBuf = data_dir.join(FILE_NAME);
        let location = path.display().to_string();
        std::fs::create_dir_all(data_dir).map_err(|error| StoreError::Failed {
            location: data_dir.display().to_string(),
            why: format!("cannot create the data directory: {error}"),
        })?;
        let connection = Connection::open(&path).map_err(|error| classify(&location, &error))?;
        Self::prepare(connection, location, true)
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
            connection
                .busy_timeout(std::time::Duration::ZERO)
                .map_err(fail)?;
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
        let version: i64 = connection
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(fail)?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerVersion {
                location,
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if version == 0 {
            let foreign: i64 = connection
                .query_row(
                    "SELECT count(*) FROM sqlite_master WHERE name NOT IN ('journal', 'snapshots')",
                    [],
                    |row| row.get(0),
                )
                .map_err(fail)?;
            if foreign > 0 {
                return Err(StoreError::Corrupt {
                    location,
                    why: "an SQLite database that is not a FixLoop store".to_owned(),
                });
            }
        }
        // The write takes the exclusive lock now, so a second process fails here.
        connection
            .execute_batch(&format!(
                "BEGIN IMMEDIATE; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            ))
            .map_err(fail)?;
        Ok(Self {
            connection: Arc::new(Mutex::new(Some(connection))),
            location: location.into(),
        })
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
        self.with(move |connection, location| {
            let fail = |error: rusqlite::Error| classify(location, &error);
            let transaction = connection.transaction().map_err(fail)?;
            transaction
                .execute(
                    "INSERT OR REPLACE INTO snapshots (service, seq, snapshot) VALUES (?1, ?2, ?3)",
                    params![service, seq, text],
                )
                .map_err(fail)?;
            // Keep the first (replays start there) and the latest (restarts start there).
            transaction
                .execute(
                    "DELETE FROM snapshots WHERE service = ?1 AND seq <> ?2 AND seq <> \
                     (SELECT min(seq) FROM snapshots WHERE service = ?1)",
                    params![service, seq],
                )
                .map_err(fail)?;
            transaction.commit().map_err(fail)
        })
        .await
    }

    async fn history(
        &self,
        service: &str,
        after: u64,
        limit: usize,
    ) -> Result<(Option<Snapshot>, Vec<JournalEntry>), StoreError> {
        let service = service.to_owned();
        self.with(move |connection, location| {
            let first: Option<String> = connection
                .query_row(
                    "SELECT snapshot FROM snapshots WHERE service = ?1 ORDER BY seq ASC LIMIT 1",
                    params![service],
                    |row| row.get(0),
                )
                .optional()
                .map_err(|error| classify(location, &error))?;
            let first = first
                .map(|text| decode::<Snapshot>(location, &text, "snapshot"))
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
        tokio::task::spawn_blocking(move || {
            let taken = connection
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            let Some(connection) = taken else {
                return Ok(());
            };
            // Fold the write-ahead log into the main file, so the data directory is one self-contained file.
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

/// Maps SQLite's error codes to the store's classification.
fn classify(location: &str, error: &rusqlite::Error) -> StoreError {
    let code = error.sqlite_error_code();
    match code {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => StoreError::Corrupt {
            location: location.to_owned(),
            why: error.to_string(),
        },
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Locked {
            location: location.to_owned(),
        },
        _ => StoreError::Failed {
            location: location.to_owned(),
            why: error.to_string(),
        },
    }
}
