//! The checks of a file before it is trusted (SQLite's header, the schema version, the tables, a bounded
//! `PRAGMA quick_check`), the connections that cannot write, and SQLite's and the system's errors in plain words.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::super::StoreError;
use super::{SCHEMA_NAMES, SCHEMA_VERSION};

/// The first 16 bytes of every SQLite database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Checks an existing file through `connection` without writing anything: the header, the schema version, the
/// tables, and `PRAGMA quick_check` within `budget`.
pub(super) fn validate(
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

pub(super) fn damaged(location: &str, found: &str) -> StoreError {
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
pub(super) fn check_header(path: &Path, location: &str) -> Result<(), StoreError> {
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
pub(super) fn wal_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// Exclusive locking, failing at once when another process holds the file (its first read takes the lock).
pub(super) fn exclusive(connection: &Connection, location: &str) -> Result<(), StoreError> {
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
pub(super) fn read_only_connection(path: &Path, location: &str) -> Result<Connection, StoreError> {
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
pub(super) fn uri_path(path: &Path) -> String {
    path.display()
        .to_string()
        .replace('%', "%25")
        .replace('?', "%3f")
        .replace('#', "%23")
}

/// Refuses a newer schema, and an SQLite database that is not a FixLoop store.
pub(super) fn check_schema(connection: &Connection, location: &str) -> Result<(), StoreError> {
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
            &format!(
                "SELECT count(*) FROM sqlite_master WHERE name NOT IN ({}) AND name NOT LIKE 'sqlite_%'",
                SCHEMA_NAMES.map(|name| format!("'{name}'")).join(", ")
            ),
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
pub(super) fn io_reason(error: &std::io::Error) -> String {
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
pub(super) fn classify(location: &str, error: &rusqlite::Error) -> StoreError {
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
    use super::super::FILE_NAME;
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
