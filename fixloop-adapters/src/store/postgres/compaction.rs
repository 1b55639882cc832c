//! Retention on PostgreSQL: the same thinning and replay window as the SQLite store (decided in
//! `store::retention`), run in the snapshot's transaction, and the measure of the tables' size.

use deadpool_postgres::Transaction;

use super::super::retention::{Marks, thinned};
use super::super::{Retention, StoreError, StoreStats};
use super::errors::classify;
use super::{seq_in, seq_out};

/// Deletes the snapshot before the latest (`latest`) when it is closer than `spacing` entries to the one before it.
pub(super) async fn thin(
    transaction: &Transaction<'_>,
    location: &str,
    service: &str,
    latest: u64,
    spacing: u64,
) -> Result<(), StoreError> {
    let fail = |error: tokio_postgres::Error| classify(location, &error);
    let below = transaction
        .query(
            "SELECT seq FROM snapshots WHERE service = $1 AND seq < $2 ORDER BY seq DESC LIMIT 2",
            &[&service, &seq_in(latest)],
        )
        .await
        .map_err(fail)?
        .iter()
        .map(|row| seq_out(location, row.get(0)))
        .collect::<Result<Vec<u64>, _>>()?;
    if let Some(previous) = thinned(&below, spacing) {
        transaction
            .execute(
                "DELETE FROM snapshots WHERE service = $1 AND seq = $2",
                &[&service, &seq_in(previous)],
            )
            .await
            .map_err(fail)?;
    }
    Ok(())
}

/// Moves the start of `service`'s replay window forward (see `store::retention::window_start`): the entries up to
/// the start and the snapshots before it are deleted. `cache` holds what was read of each snapshot already.
pub(super) async fn compact(
    transaction: &Transaction<'_>,
    location: &str,
    service: &str,
    retention: &Retention,
    cache: &mut Marks,
) -> Result<(), StoreError> {
    let fail = |error: tokio_postgres::Error| classify(location, &error);
    let seqs = transaction
        .query(
            "SELECT seq FROM snapshots WHERE service = $1 ORDER BY seq",
            &[&service],
        )
        .await
        .map_err(fail)?
        .iter()
        .map(|row| seq_out(location, row.get(0)))
        .collect::<Result<Vec<u64>, _>>()?;
    if seqs.len() < 2 {
        return Ok(());
    }
    for seq in cache.unread(service, &seqs) {
        let text: String = transaction
            .query_one(
                "SELECT snapshot FROM snapshots WHERE service = $1 AND seq = $2",
                &[&service, &seq_in(seq)],
            )
            .await
            .map_err(fail)?
            .get(0);
        cache.read(location, service, seq, &text)?;
    }
    let Some(start) = cache.window_start(service, &seqs, retention) else {
        return Ok(());
    };
    transaction
        .execute(
            "DELETE FROM journal WHERE service = $1 AND seq <= $2",
            &[&service, &seq_in(start)],
        )
        .await
        .map_err(fail)?;
    transaction
        .execute(
            "DELETE FROM snapshots WHERE service = $1 AND seq < $2",
            &[&service, &seq_in(start)],
        )
        .await
        .map_err(fail)?;
    Ok(())
}

/// The tables' size (indexes and TOAST included) and rows now.
pub(super) async fn measure(
    client: &deadpool_postgres::Client,
    location: &str,
) -> Result<StoreStats, StoreError> {
    let row = client
        .query_one(
            "SELECT (pg_total_relation_size('journal') + pg_total_relation_size('snapshots'))::bigint,
                    (SELECT count(*) FROM journal)::bigint,
                    (SELECT count(*) FROM snapshots)::bigint",
            &[],
        )
        .await
        .map_err(|error| classify(location, &error))?;
    let count = |index: usize| u64::try_from(row.get::<_, i64>(index)).unwrap_or(0);
    Ok(StoreStats {
        bytes: count(0),
        journal_rows: count(1),
        snapshot_rows: count(2),
    })
}
