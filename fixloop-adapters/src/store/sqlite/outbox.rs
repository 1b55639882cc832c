//! The notifications outbox in SQLite (see `store::outbox`): one `outbox` table, every sink's messages in the
//! order of their `id`.

use fixloop_contract::chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::super::outbox::{KEEP_SETTLED, decode, format_time, parse_time};
use super::super::{OutboxFailure, OutboxMessage, StoreError};
use super::checks::classify;

/// Adds the message unless `(sink, key)` is there already; whether it was added.
pub(super) fn enqueue(
    connection: &Connection,
    location: &str,
    sink: &str,
    key: &str,
    text: &str,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let at = format_time(at);
    let added = connection
        .execute(
            "INSERT INTO outbox (sink, key, notification, enqueued_at, attempts, next_attempt_at) \
             VALUES (?1, ?2, ?3, ?4, 0, ?4) ON CONFLICT (sink, key) DO NOTHING",
            params![sink, key, text, at],
        )
        .map_err(|error| classify(location, &error))?;
    Ok(added == 1)
}

/// The oldest unsettled message of `sink`.
pub(super) fn next(
    connection: &Connection,
    location: &str,
    sink: &str,
) -> Result<Option<OutboxMessage>, StoreError> {
    let row: Option<(u64, String, u32, String, Option<String>)> = connection
        .prepare_cached(
            "SELECT id, notification, attempts, next_attempt_at, last_error FROM outbox \
             WHERE sink = ?1 AND outcome IS NULL ORDER BY id LIMIT 1",
        )
        .and_then(|mut statement| {
            statement
                .query_row(params![sink], |row| {
                    Ok((
                        row.get(0)?,
                        row.get(1)?,
                        row.get(2)?,
                        row.get(3)?,
                        row.get(4)?,
                    ))
                })
                .optional()
        })
        .map_err(|error| classify(location, &error))?;
    row.map(|(id, text, attempts, next_attempt_at, last_error)| {
        Ok(OutboxMessage {
            id,
            sink: sink.to_owned(),
            notification: decode(location, &text)?,
            attempts,
            next_attempt_at: parse_time(location, &next_attempt_at)?,
            last_error,
        })
    })
    .transpose()
}

/// Settles the message `id` with `outcome`, then forgets the sink's settled messages beyond the last
/// [`KEEP_SETTLED`].
pub(super) fn settle(
    connection: &mut Connection,
    location: &str,
    id: u64,
    outcome: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let fail = |error: rusqlite::Error| classify(location, &error);
    let transaction = connection.transaction().map_err(fail)?;
    transaction
        .execute(
            "UPDATE outbox SET outcome = ?2, settled_at = ?3 WHERE id = ?1",
            params![id, outcome, format_time(at)],
        )
        .map_err(fail)?;
    transaction
        .execute(
            "DELETE FROM outbox WHERE outcome IS NOT NULL AND sink = (SELECT sink FROM outbox WHERE id = ?1) \
             AND id <= (SELECT id FROM outbox WHERE outcome IS NOT NULL \
                        AND sink = (SELECT sink FROM outbox WHERE id = ?1) \
                        ORDER BY id DESC LIMIT 1 OFFSET ?2)",
            params![id, KEEP_SETTLED],
        )
        .map_err(fail)?;
    transaction.commit().map_err(fail)
}

/// Records a failed attempt (and gives the message up when it has no retry time).
pub(super) fn failed(
    connection: &mut Connection,
    location: &str,
    id: u64,
    failure: &OutboxFailure,
) -> Result<(), StoreError> {
    connection
        .execute(
            "UPDATE outbox SET attempts = ?2, last_error = ?3, next_attempt_at = ?4 WHERE id = ?1",
            params![
                id,
                failure.attempts,
                failure.error,
                format_time(failure.retry_at.unwrap_or(failure.at))
            ],
        )
        .map_err(|error| classify(location, &error))?;
    if failure.retry_at.is_none() {
        settle(connection, location, id, "given_up", failure.at)?;
    }
    Ok(())
}
