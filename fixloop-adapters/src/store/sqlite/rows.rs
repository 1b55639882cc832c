//! Reading rows back: the latest snapshot, the journal's entries, the CI intakes, and the decoding of the stored
//! JSON.

use fixloop_contract::chrono::{DateTime, Utc};
use fixloop_core::engine::{RecordedInput, Snapshot};
use rusqlite::{Connection, OptionalExtension, params};

use super::super::{CiIntakeRecord, JournalEntry, MAX_CI_RUN_INTAKES, StoreError};
use super::checks::classify;

pub(super) fn latest_snapshot(
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

pub(super) fn entries(
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

pub(super) use super::super::decode;

/// The `limit` most recent CI intakes, newest first (ties: the later-recorded first).
pub(super) fn ci_intakes(
    connection: &Connection,
    location: &str,
    limit: usize,
) -> Result<Vec<CiIntakeRecord>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    query_ci_intakes(
        connection,
        location,
        "SELECT id, received_at, repository, run_id, job, class, document FROM ci_intakes \
         ORDER BY received_at DESC, rowid DESC LIMIT ?1",
        params![limit],
    )
}

/// The latest [`MAX_CI_RUN_INTAKES`] CI intakes of one run, oldest first (ties: the earlier-recorded first).
pub(super) fn ci_run_intakes(
    connection: &Connection,
    location: &str,
    repository: &str,
    run_id: &str,
) -> Result<Vec<CiIntakeRecord>, StoreError> {
    let limit = i64::try_from(MAX_CI_RUN_INTAKES).unwrap_or(i64::MAX);
    let mut newest_first = query_ci_intakes(
        connection,
        location,
        "SELECT id, received_at, repository, run_id, job, class, document FROM ci_intakes \
         WHERE repository = ?1 AND run_id = ?2 ORDER BY received_at DESC, rowid DESC LIMIT ?3",
        params![repository, run_id, limit],
    )?;
    newest_first.reverse();
    Ok(newest_first)
}

/// The `limit` runs with the most recent intakes, newest first (ties: the later-recorded first).
pub(super) fn ci_runs(
    connection: &Connection,
    location: &str,
    limit: usize,
) -> Result<Vec<(String, String)>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let fail = |error: rusqlite::Error| classify(location, &error);
    let mut statement = connection
        .prepare_cached(
            "SELECT repository, run_id FROM ci_intakes GROUP BY repository, run_id \
             ORDER BY max(received_at) DESC, max(rowid) DESC LIMIT ?1",
        )
        .map_err(fail)?;
    let rows = statement
        .query_map(params![limit], |row| Ok((row.get(0)?, row.get(1)?)))
        .map_err(fail)?;
    rows.collect::<Result<_, _>>().map_err(fail)
}

/// The CI intakes `sql` selects (`id, received_at, repository, run_id, job, class, document`), in its order.
fn query_ci_intakes(
    connection: &Connection,
    location: &str,
    sql: &str,
    parameters: impl rusqlite::Params,
) -> Result<Vec<CiIntakeRecord>, StoreError> {
    let fail = |error: rusqlite::Error| classify(location, &error);
    let mut statement = connection.prepare_cached(sql).map_err(fail)?;
    let rows = statement
        .query_map(parameters, |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, String>(5)?,
                row.get::<_, String>(6)?,
            ))
        })
        .map_err(fail)?;
    let mut out = Vec::new();
    for row in rows {
        let (id, received_at, repository, run_id, job, class, document) = row.map_err(fail)?;
        let received_at = DateTime::parse_from_rfc3339(&received_at)
            .map(|at| at.with_timezone(&Utc))
            .map_err(|error| StoreError::Corrupt {
                location: location.to_owned(),
                why: format!("CI intake {id}: bad time {received_at:?}: {error}"),
            })?;
        out.push(CiIntakeRecord {
            id,
            received_at,
            repository,
            run_id,
            job,
            class,
            document,
        });
    }
    Ok(out)
}

/// The server-wide setting `key`, if saved.
pub(super) fn setting(
    connection: &Connection,
    location: &str,
    key: &str,
) -> Result<Option<String>, StoreError> {
    connection
        .query_row(
            "SELECT value FROM settings WHERE key = ?1",
            params![key],
            |row| row.get(0),
        )
        .optional()
        .map_err(|error| classify(location, &error))
}

/// Saves the server-wide setting `key`, replacing what was there.
pub(super) fn save_setting(
    connection: &Connection,
    location: &str,
    key: &str,
    value: &str,
) -> Result<(), StoreError> {
    connection
        .execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )
        .map_err(|error| classify(location, &error))?;
    Ok(())
}
