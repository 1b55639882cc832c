//! Retention: the thinning of snapshots and the compaction of the journal behind them (see [`Retention`]; what to
//! keep is decided in `store::retention`, shared with the PostgreSQL store), and the measure of the file's size.

use rusqlite::{Connection, params};

use super::super::retention::{Marks, thinned};
use super::super::{Retention, StoreError, StoreStats};
use super::checks::classify;

/// Deletes the snapshot before the latest (`latest`) when it is closer than `spacing` entries to the one before it:
/// the kept snapshots are the places a compacted journal can start from, `spacing` apart.
pub(super) fn thin(
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
    if let Some(previous) = thinned(&below, spacing) {
        transaction.execute(
            "DELETE FROM snapshots WHERE service = ?1 AND seq = ?2",
            params![service, previous],
        )?;
    }
    Ok(())
}

/// Moves the start of `service`'s replay window forward (see `store::retention::window_start`): the entries up to
/// the start and the snapshots before it are deleted. `cache` holds what was read of each snapshot already.
pub(super) fn compact(
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
    for seq in cache.unread(service, &seqs) {
        let text: String = transaction
            .query_row(
                "SELECT snapshot FROM snapshots WHERE service = ?1 AND seq = ?2",
                params![service, seq],
                |row| row.get(0),
            )
            .map_err(fail)?;
        cache.read(location, service, seq, &text)?;
    }
    let Some(start) = cache.window_start(service, &seqs, retention) else {
        return Ok(());
    };
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
pub(super) fn measure(connection: &Connection) -> Result<StoreStats, rusqlite::Error> {
    let pages: u64 = connection.query_row("PRAGMA page_count", [], |row| row.get(0))?;
    let page_size: u64 = connection.query_row("PRAGMA page_size", [], |row| row.get(0))?;
    Ok(StoreStats {
        bytes: pages * page_size,
        journal_rows: connection.query_row("SELECT count(*) FROM journal", [], |row| row.get(0))?,
        snapshot_rows: connection
            .query_row("SELECT count(*) FROM snapshots", [], |row| row.get(0))?,
    })
}
