//! The [`Leases`] port: which replica leads a service, and the fenced writes of its leader.
//!
//! A replica drives a service's engine only while it holds the service's lease; every write of that engine (a
//! journal append, a snapshot, the claim of a remediation action before it runs) carries the lease, and the store
//! refuses it with [`StoreError::Fenced`] once the lease is no longer the live one, so a replica that lost its lease
//! can neither record nor act.
//!
//! Implementations: [`PostgresStore`](super::PostgresStore) (leases shared by every replica of one database, epochs
//! raised at each takeover, checked by the database in the write itself) and [`SoleLeases`], the single-process
//! leases of a store no other process shares (SQLite, memory, the fake): always the leader, epoch 1, its writes the
//! plain ones.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fixloop_contract::chrono::{DateTime, Utc};
use fixloop_core::engine::Snapshot;

use super::{ActionClaim, Claimed, JournalEntry, Lease, Store, StoreError};

/// Leases per service and the writes made under one (held as `Arc<dyn Leases>`).
#[async_trait]
pub trait Leases: Send + Sync + fmt::Debug {
    /// Whether other processes share these leases (`false`: this process always leads every service).
    fn shared(&self) -> bool;

    /// Takes `service`'s lease for `holder` for `ttl` when nobody holds it or its lease lapsed (a new epoch);
    /// `None` while a live lease exists (the caller's own included).
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot be reached.
    async fn acquire(
        &self,
        service: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, StoreError>;

    /// Extends `lease` by `ttl` from now while it is still the live lease; `None` once it lapsed or was taken.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot be reached.
    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<Option<Lease>, StoreError>;

    /// [`Leases::renew`] for every lease of `leases` at once (a replica's renewal round), in their order: each
    /// answer is the renewed lease, or `None` once it lapsed or was taken. The default renews one by one; a store
    /// shared by replicas renews them in one statement, so a replica leading many services renews them all with one
    /// round trip.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot be reached (no lease is known to be renewed then).
    async fn renew_all(
        &self,
        leases: &[Lease],
        ttl: Duration,
    ) -> Result<Vec<Option<Lease>>, StoreError> {
        let mut renewed = Vec::with_capacity(leases.len());
        for lease in leases {
            renewed.push(self.renew(lease, ttl).await?);
        }
        Ok(renewed)
    }

    /// Lets `lease` lapse now (a replica stepping down); `false` when it was no longer held.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot be reached.
    async fn release(&self, lease: &Lease) -> Result<bool, StoreError>;

    /// [`Store::append`] to `lease.service`'s journal, refused while `lease` is not the live lease.
    ///
    /// # Errors
    ///
    /// [`StoreError::Fenced`] (nothing written) when the lease lapsed or another holder took it, otherwise as
    /// [`Store::append`].
    async fn append_fenced(&self, lease: &Lease, entry: JournalEntry) -> Result<(), StoreError>;

    /// [`Store::save_snapshot`] of `lease.service`, refused while `lease` is not the live lease.
    ///
    /// # Errors
    ///
    /// [`StoreError::Fenced`] (nothing written) when the lease lapsed or another holder took it, otherwise as
    /// [`Store::save_snapshot`].
    async fn save_snapshot_fenced(
        &self,
        lease: &Lease,
        seq: u64,
        snapshot: Snapshot,
    ) -> Result<(), StoreError>;

    /// [`Store::claim_action`] under `lease`: the claim a driver makes before it carries out a remediation action.
    ///
    /// # Errors
    ///
    /// [`StoreError::Fenced`] (nothing written) when `lease` is no longer current, otherwise as
    /// [`Store::claim_action`].
    async fn claim_action(&self, lease: &Lease, claim: &ActionClaim)
    -> Result<Claimed, StoreError>;

    /// Records that `beat.replica` is alive now (its advertised URL and start time kept beside it) and answers
    /// how many replicas were seen within `live_within` (this one included): the fair share of a replica is the
    /// services divided by that number.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot be reached.
    async fn heartbeat(
        &self,
        beat: &ReplicaBeat,
        live_within: Duration,
    ) -> Result<usize, StoreError>;

    /// Forgets `replica` (a clean shutdown): the others need not wait for its heartbeat to age out.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot be reached.
    async fn depart(&self, replica: &str) -> Result<(), StoreError>;

    /// The replicas seen within `live_within`, by id, each with the live leases it holds (by service). Empty for
    /// leases no other process shares.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot be reached.
    async fn replicas(&self, live_within: Duration) -> Result<Vec<ReplicaRecord>, StoreError>;
}

/// What a replica says of itself at each heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaBeat {
    /// The replica's id (the holder of its leases).
    pub replica: String,
    /// The URL other replicas reach its API at (requests for the services it leads are forwarded there).
    pub url: String,
    /// When the replica process started.
    pub started_at: DateTime<Utc>,
}

/// A live replica as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaRecord {
    /// The replica's id.
    pub replica: String,
    /// Its advertised URL.
    pub url: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Its latest heartbeat (the store's clock).
    pub last_seen: DateTime<Utc>,
    /// The live leases it holds, by service.
    pub leads: Vec<Lease>,
}

/// The leases of a store only this process writes: every service is led by this process, in epoch 1, forever;
/// fenced writes are the store's plain writes. Single-node behaviour through the same code path as replicas.
#[derive(Debug, Clone)]
pub struct SoleLeases {
    store: Arc<dyn Store>,
}

impl SoleLeases {
    /// The epoch of every sole lease.
    pub const EPOCH: u64 = 1;

    /// Sole leases over `store`.
    #[must_use]
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }
}

#[async_trait]
impl Leases for SoleLeases {
    fn shared(&self) -> bool {
        false
    }

    async fn acquire(
        &self,
        service: &str,
        holder: &str,
        _ttl: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        Ok(Some(Lease {
            service: service.to_owned(),
            holder: holder.to_owned(),
            epoch: Self::EPOCH,
            expires_at: DateTime::<Utc>::MAX_UTC,
        }))
    }

    async fn renew(&self, lease: &Lease, _ttl: Duration) -> Result<Option<Lease>, StoreError> {
        Ok(Some(lease.clone()))
    }

    async fn release(&self, _lease: &Lease) -> Result<bool, StoreError> {
        Ok(true)
    }

    async fn append_fenced(&self, lease: &Lease, entry: JournalEntry) -> Result<(), StoreError> {
        self.store.append(&lease.service, entry).await
    }

    async fn save_snapshot_fenced(
        &self,
        lease: &Lease,
        seq: u64,
        snapshot: Snapshot,
    ) -> Result<(), StoreError> {
        self.store
            .save_snapshot(&lease.service, seq, snapshot)
            .await
    }

    async fn claim_action(
        &self,
        lease: &Lease,
        claim: &ActionClaim,
    ) -> Result<Claimed, StoreError> {
        self.store.claim_action(lease, claim).await
    }

    async fn heartbeat(
        &self,
        _beat: &ReplicaBeat,
        _live_within: Duration,
    ) -> Result<usize, StoreError> {
        Ok(1)
    }

    async fn depart(&self, _replica: &str) -> Result<(), StoreError> {
        Ok(())
    }

    async fn replicas(&self, _live_within: Duration) -> Result<Vec<ReplicaRecord>, StoreError> {
        Ok(Vec::new())
    }
}
