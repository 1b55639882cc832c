//! Action claims: a remediation action is carried out only after the store recorded that this lease holder, in
//! this epoch, carries it out, so no action runs twice (two replicas, or a replica and its successor after a
//! failover) and a replica that lost its lease cannot act.
//!
//! A claim is keyed by (service, proposal, version): the proposal's version when its execution was requested.
//! [`Store::claim_action`](super::Store::claim_action) inserts it only when
//!
//! - the lease it carries is current: on PostgreSQL the lease row (service, holder, epoch) is live and unexpired,
//!   checked by the database in the insert itself (the row locked for share, so a takeover waits for the claim to
//!   commit); on a store no other process shares (SQLite, the fake), no claim of the service carries a newer
//!   epoch (the fencing-token rule). Otherwise it fails with [`StoreError::Fenced`](super::StoreError::Fenced),
//!   and nothing is written;
//! - no claim with the same key exists (a unique key, not a read before the write): otherwise it answers
//!   [`Claimed::Taken`] with who claimed it first.

use fixloop_contract::chrono::{DateTime, Utc};

/// One action a lease holder is about to carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionClaim {
    /// The proposal the action carries out.
    pub proposal: String,
    /// The proposal's version when its execution was requested (a later execution of the same proposal, if the
    /// engine ever asked for one, would be a new version).
    pub version: u64,
    /// The declared action's id (kept for the record).
    pub action_id: String,
    /// When the claim was made (the claimant's clock).
    pub at: DateTime<Utc>,
}

/// What [`Store::claim_action`](super::Store::claim_action) answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// The claim is recorded: the caller carries the action out.
    Claimed,
    /// The action was claimed before (by this holder or another): the caller must not carry it out again.
    Taken {
        /// Who claimed it.
        holder: String,
        /// Under which epoch.
        epoch: u64,
    },
}

/// The SQLite table of claims (schema version 5); PostgreSQL's is migration 9.
pub(super) const SQLITE_TABLE: &str = "
CREATE TABLE IF NOT EXISTS action_claims (
    service TEXT NOT NULL,
    proposal TEXT NOT NULL,
    version INTEGER NOT NULL,
    action_id TEXT NOT NULL,
    holder TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    claimed_at TEXT NOT NULL,
    PRIMARY KEY (service, proposal, version)
);
";
