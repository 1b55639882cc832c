//! Action claims in SQLite (see `store::claims`): one `action_claims` row per (service, proposal, version). The
//! store is one process's, so a stale claimant is one whose epoch is older than the newest its service's claims
//! carry (the fencing-token rule), checked in the transaction that inserts.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::super::outbox::format_time;
use super::super::{ActionClaim, Claimed, Lease, StoreError};
use super::checks::classify;

/// Claims `claim` under `lease` (see [`Store::claim_action`](super::super::Store::claim_action)).
pub(super) fn claim(
    connection: &mut Connection,
    location: &str,
    lease: &Lease,
    claim: &ActionClaim,
) -> Result<Claimed, StoreError> {
    let fail = |error: rusqlite::Error| classify(location, &error);
    let epoch = i64::try_from(lease.epoch).unwrap_or(i64::MAX);
    let version = i64::try_from(claim.version).unwrap_or(i64::MAX);
    let transaction = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(fail)?;
    let newest: Option<i64> = transaction
        .query_row(
            "SELECT max(epoch) FROM action_claims WHERE service = ?1",
            params![lease.service],
            |row| row.get(0),
        )
        .map_err(fail)?;
    if newest.is_some_and(|newest| newest > epoch) {
        return Err(StoreError::Fenced {
            service: lease.service.clone(),
            epoch: lease.epoch,
        });
    }
    let taken: Option<(String, i64)> = transaction
        .query_row(
            "SELECT holder, epoch FROM action_claims WHERE service = ?1 AND proposal = ?2 AND version = ?3",
            params![lease.service, claim.proposal, version],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .map_err(fail)?;
    if let Some((holder, epoch)) = taken {
        return Ok(Claimed::Taken {
            holder,
            epoch: u64::try_from(epoch).unwrap_or(0),
        });
    }
    // The primary key refuses a second row for the same action, whatever was read above.
    transaction
        .execute(
            "INSERT INTO action_claims (service, proposal, version, action_id, holder, epoch, claimed_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                lease.service,
                claim.proposal,
                version,
                claim.action_id,
                lease.holder,
                epoch,
                format_time(claim.at)
            ],
        )
        .map_err(fail)?;
    transaction.commit().map_err(fail)?;
    Ok(Claimed::Claimed)
}
