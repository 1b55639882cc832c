//! The notifications outbox in PostgreSQL (see `store::outbox`), as the SQLite store keeps it, plus a claim per
//! sink, because every replica runs a delivery worker for every sink on the same outbox.
//!
//! A worker is handed a sink's head message only while its store handle (its `courier` id) holds the sink's claim
//! (`outbox_claims`: holder and expiry, on the database's clock): taken when free or lapsed, renewed at every
//! [`next`], so the one courier that delivers a sink keeps it while it works, and another takes it over
//! [`CLAIM_TTL`] after the courier stops. Only one courier sends a sink's messages, in order; each attempt starts
//! right after a renewal, so a claim outlives an attempt as long as the attempt (bounded by the worker's
//! `attempt_timeout`, 30 s by default) is shorter than [`CLAIM_TTL`].

use fixloop_contract::chrono::{DateTime, Utc};

use super::super::outbox::{KEEP_SETTLED, decode, format_time, parse_time};
use super::super::{OutboxFailure, OutboxMessage, StoreError};
use super::errors::{classify, corrupt};

/// Adds the message unless `(sink, key)` is there already; whether it was added.
pub(super) async fn enqueue(
    client: &tokio_postgres::Client,
    location: &str,
    sink: &str,
    key: &str,
    text: &str,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let at = format_time(at);
    let added = client
        .execute(
            "INSERT INTO outbox (sink, key, notification, enqueued_at, attempts, next_attempt_at) \
             VALUES ($1, $2, $3, $4, 0, $4) ON CONFLICT (sink, key) DO NOTHING",
            &[&sink, &key, &text, &at],
        )
        .await
        .map_err(|error| classify(location, &error))?;
    Ok(added == 1)
}

/// How long a sink's claim lasts after its courier's latest [`next`].
pub(super) const CLAIM_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// Takes (free or lapsed) or renews (already this courier's) a sink's claim; no row while another courier holds it.
const CLAIM_SINK: &str = "INSERT INTO outbox_claims (sink, courier, expires_at)
     VALUES ($1, $2, clock_timestamp() + $3::bigint * interval '1 millisecond')
     ON CONFLICT (sink) DO UPDATE SET courier = EXCLUDED.courier, expires_at = EXCLUDED.expires_at
         WHERE outbox_claims.courier = EXCLUDED.courier OR outbox_claims.expires_at <= clock_timestamp()
     RETURNING courier";

/// Whether `sink` has a message waiting.
const WAITING: &str = "SELECT EXISTS (SELECT 1 FROM outbox WHERE sink = $1 AND outcome IS NULL)";

/// The oldest unsettled message of `sink`, when `courier` holds (or takes) the sink's claim: `None` while nothing
/// waits (no claim taken) or another courier holds it (that one delivers).
pub(super) async fn next_claimed(
    client: &tokio_postgres::Client,
    location: &str,
    sink: &str,
    courier: &str,
) -> Result<Option<OutboxMessage>, StoreError> {
    let fail = |error: tokio_postgres::Error| classify(location, &error);
    let waiting: bool = client
        .query_one(WAITING, &[&sink])
        .await
        .map_err(fail)?
        .get(0);
    if !waiting {
        return Ok(None);
    }
    let ttl = i64::try_from(CLAIM_TTL.as_millis()).unwrap_or(i64::MAX);
    let claimed = client
        .query_opt(CLAIM_SINK, &[&sink, &courier, &ttl])
        .await
        .map_err(fail)?;
    if claimed.is_none() {
        return Ok(None);
    }
    // Read after the claim: a previous courier may have settled the head in between.
    next(client, location, sink).await
}

/// The oldest unsettled message of `sink`.
async fn next(
    client: &tokio_postgres::Client,
    location: &str,
    sink: &str,
) -> Result<Option<OutboxMessage>, StoreError> {
    let row = client
        .query_opt(
            "SELECT id, notification, attempts, next_attempt_at, last_error FROM outbox \
             WHERE sink = $1 AND outcome IS NULL ORDER BY id LIMIT 1",
            &[&sink],
        )
        .await
        .map_err(|error| classify(location, &error))?;
    row.map(|row| {
        let id: i64 = row.get(0);
        let attempts: i64 = row.get(2);
        Ok(OutboxMessage {
            id: u64::try_from(id)
                .map_err(|_| corrupt(location, format!("an outbox message with id {id}")))?,
            sink: sink.to_owned(),
            notification: decode(location, row.get(1))?,
            attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            next_attempt_at: parse_time(location, row.get(3))?,
            last_error: row.get(4),
        })
    })
    .transpose()
}

/// Settles the message `id` with `outcome`, then forgets the sink's settled messages beyond the last
/// [`KEEP_SETTLED`].
pub(super) async fn settle(
    client: &mut deadpool_postgres::Client,
    location: &str,
    id: u64,
    outcome: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let fail = |error: tokio_postgres::Error| classify(location, &error);
    let id = i64::try_from(id).unwrap_or(i64::MAX);
    let keep = i64::try_from(KEEP_SETTLED).unwrap_or(i64::MAX);
    let transaction = client.transaction().await.map_err(fail)?;
    transaction
        .execute(
            "UPDATE outbox SET outcome = $2, settled_at = $3 WHERE id = $1 AND outcome IS NULL",
            &[&id, &outcome, &format_time(at)],
        )
        .await
        .map_err(fail)?;
    transaction
        .execute(
            "DELETE FROM outbox WHERE outcome IS NOT NULL AND sink = (SELECT sink FROM outbox WHERE id = $1) \
             AND id <= (SELECT id FROM outbox WHERE outcome IS NOT NULL \
                        AND sink = (SELECT sink FROM outbox WHERE id = $1) \
                        ORDER BY id DESC LIMIT 1 OFFSET $2)",
            &[&id, &keep],
        )
        .await
        .map_err(fail)?;
    transaction.commit().await.map_err(fail)
}

/// Records a failed attempt (and gives the message up when it has no retry time).
pub(super) async fn failed(
    client: &mut deadpool_postgres::Client,
    location: &str,
    id: u64,
    failure: &OutboxFailure,
) -> Result<(), StoreError> {
    let row_id = i64::try_from(id).unwrap_or(i64::MAX);
    client
        .execute(
            "UPDATE outbox SET attempts = $2, last_error = $3, next_attempt_at = $4 WHERE id = $1",
            &[
                &row_id,
                &i64::from(failure.attempts),
                &failure.error,
                &format_time(failure.retry_at.unwrap_or(failure.at)),
            ],
        )
        .await
        .map_err(|error| classify(location, &error))?;
    if failure.retry_at.is_none() {
        settle(client, location, id, "given_up", failure.at).await?;
    }
    Ok(())
}
