//! Leases and fenced appends: the groundwork of replicas (one replica leads a service at a time).
//!
//! A service's lease row names its holder, an epoch raised at every takeover, and an expiry on the database's
//! clock (so the replicas' clocks do not matter). [`PostgresStore::append_fenced`] appends only while the lease it
//! carries is the service's current, unexpired lease, checked *by the database* in the insert itself, with the
//! lease row locked (`FOR SHARE`) so a takeover waits for the append to commit and an append after a takeover
//! inserts nothing: a replica that lost its lease cannot record.

use std::time::Duration;

use async_trait::async_trait;
use fixloop_contract::chrono::{DateTime, Utc};
use fixloop_core::engine::Snapshot;

use super::super::{
    ActionClaim, Claimed, JournalEntry, Leases, ReplicaBeat, ReplicaRecord, StoreError,
};
use super::{PostgresStore, seq_in};

/// A lease a holder won (see [`PostgresStore::acquire_lease`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The service led.
    pub service: String,
    /// Who holds it (a replica's id).
    pub holder: String,
    /// Raised at every takeover: an append carrying an older one is refused.
    pub epoch: u64,
    /// When it lapses unless renewed (the database's clock).
    pub expires_at: DateTime<Utc>,
}

/// Takes the lease when nobody holds it or it lapsed (a new epoch); a live lease, even the caller's, is left.
const ACQUIRE: &str = "INSERT INTO leases (service, holder, epoch, expires_at)
     VALUES ($1, $2, 1, clock_timestamp() + $3::bigint * interval '1 millisecond')
     ON CONFLICT (service) DO UPDATE
         SET holder = EXCLUDED.holder, epoch = leases.epoch + 1, expires_at = EXCLUDED.expires_at
         WHERE leases.expires_at <= clock_timestamp()
     RETURNING epoch, (extract(epoch FROM expires_at) * 1000000)::bigint";

/// Extends a live lease the caller holds, in its epoch.
const RENEW: &str =
    "UPDATE leases SET expires_at = clock_timestamp() + $4::bigint * interval '1 millisecond'
     WHERE service = $1 AND holder = $2 AND epoch = $3 AND expires_at > clock_timestamp()
     RETURNING epoch, (extract(epoch FROM expires_at) * 1000000)::bigint";

/// Extends every live lease of the arrays (service, holder, epoch) the caller holds, in one statement.
const RENEW_ALL: &str =
    "UPDATE leases SET expires_at = clock_timestamp() + $4::bigint * interval '1 millisecond'
     FROM unnest($1::text[], $2::text[], $3::bigint[]) AS held (service, holder, epoch)
     WHERE leases.service = held.service AND leases.holder = held.holder AND leases.epoch = held.epoch
       AND leases.expires_at > clock_timestamp()
     RETURNING leases.service, leases.epoch, (extract(epoch FROM leases.expires_at) * 1000000)::bigint";

/// Lets a live lease the caller holds lapse now.
const RELEASE: &str = "UPDATE leases SET expires_at = clock_timestamp()
     WHERE service = $1 AND holder = $2 AND epoch = $3 AND expires_at > clock_timestamp()";

/// An append under a lease: inserted only when the seq is the next one *and* the lease row still holds this
/// holder and epoch, unexpired (locked for share, so a concurrent takeover waits, then the check sees it).
const APPEND_FENCED: &str = "INSERT INTO journal (service, seq, at, input, epoch)
     SELECT $1::text, $2::bigint, $3::text, $4::text, l.epoch
     FROM leases l
     WHERE l.service = $1::text AND l.holder = $5::text AND l.epoch = $6::bigint
       AND l.expires_at > clock_timestamp()
       AND $2::bigint = 1 + GREATEST(
           (SELECT max(seq) FROM journal WHERE service = $1::text),
           (SELECT max(seq) FROM snapshots WHERE service = $1::text),
           0)
     FOR SHARE OF l
     ON CONFLICT DO NOTHING";

/// Whether a lease is still the service's live lease.
const HELD: &str =
    "SELECT EXISTS (SELECT 1 FROM leases WHERE service = $1 AND holder = $2 AND epoch = $3
     AND expires_at > clock_timestamp())";

/// The live lease row of a holder and epoch, locked for share until the transaction ends (a fenced snapshot).
const HOLD: &str = "SELECT 1 FROM leases WHERE service = $1 AND holder = $2 AND epoch = $3
     AND expires_at > clock_timestamp() FOR SHARE";

/// Fails with [`StoreError::Fenced`] unless `lease` is the live lease, keeping its row locked for share until
/// `transaction` ends, so no takeover commits before the transaction's writes.
pub(super) async fn check_held(
    transaction: &deadpool_postgres::Transaction<'_>,
    store: &PostgresStore,
    lease: &Lease,
) -> Result<(), StoreError> {
    let held = transaction
        .query_opt(HOLD, &[&lease.service, &lease.holder, &seq_in(lease.epoch)])
        .await
        .map_err(store.fail())?;
    match held {
        Some(_) => Ok(()),
        None => Err(StoreError::Fenced {
            service: lease.service.clone(),
            epoch: lease.epoch,
        }),
    }
}

fn ttl_millis(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)
}

impl PostgresStore {
    /// Takes `service`'s lease for `holder` for `ttl` when nobody holds it or the holder's lease lapsed: `None`
    /// while another live lease exists (the caller's own included: renew it instead).
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the database cannot be reached.
    pub async fn acquire_lease(
        &self,
        service: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        self.bounded("a lease", async {
            let client = self.lease_client().await?;
            let row = client
                .query_opt(ACQUIRE, &[&service, &holder, &ttl_millis(ttl)])
                .await
                .map_err(self.fail())?;
            row.map(|row| self.lease(service, holder, row.get(0), row.get(1)))
                .transpose()
        })
        .await
    }

    /// Extends `lease` by `ttl` from now, while it is still held: `None` once it lapsed or was taken over.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the database cannot be reached.
    pub async fn renew_lease(
        &self,
        lease: &Lease,
        ttl: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        self.bounded("a lease renewal", async {
            let client = self.lease_client().await?;
            let row = client
                .query_opt(
                    RENEW,
                    &[
                        &lease.service,
                        &lease.holder,
                        &seq_in(lease.epoch),
                        &ttl_millis(ttl),
                    ],
                )
                .await
                .map_err(self.fail())?;
            row.map(|row| self.lease(&lease.service, &lease.holder, row.get(0), row.get(1)))
                .transpose()
        })
        .await
    }

    /// [`PostgresStore::renew_lease`] for every lease of `leases` in one statement, on the leases' own
    /// connections: in their order, the renewed lease or `None` once it lapsed or was taken.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the database cannot be reached.
    pub async fn renew_leases(
        &self,
        leases: &[Lease],
        ttl: Duration,
    ) -> Result<Vec<Option<Lease>>, StoreError> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        let services: Vec<&str> = leases.iter().map(|lease| lease.service.as_str()).collect();
        let holders: Vec<&str> = leases.iter().map(|lease| lease.holder.as_str()).collect();
        let epochs: Vec<i64> = leases.iter().map(|lease| seq_in(lease.epoch)).collect();
        self.bounded("a lease renewal", async {
            let client = self.lease_client().await?;
            let rows = client
                .query(RENEW_ALL, &[&services, &holders, &epochs, &ttl_millis(ttl)])
                .await
                .map_err(self.fail())?;
            let mut renewed: Vec<Option<Lease>> = vec![None; leases.len()];
            for row in rows {
                let service: String = row.get(0);
                let epoch: i64 = row.get(1);
                let Some(index) = leases
                    .iter()
                    .position(|lease| lease.service == service && seq_in(lease.epoch) == epoch)
                else {
                    continue;
                };
                let holder = &leases[index].holder;
                renewed[index] = Some(self.lease(&service, holder, epoch, row.get(2))?);
            }
            Ok(renewed)
        })
        .await
    }

    /// Lets `lease` lapse now (a replica stepping down); `false` when it was no longer held.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the database cannot be reached.
    pub async fn release_lease(&self, lease: &Lease) -> Result<bool, StoreError> {
        self.bounded("a lease release", async {
            let client = self.lease_client().await?;
            let released = client
                .execute(
                    RELEASE,
                    &[&lease.service, &lease.holder, &seq_in(lease.epoch)],
                )
                .await
                .map_err(self.fail())?;
            Ok(released == 1)
        })
        .await
    }

    /// Appends `entry` to the journal of `lease.service` under `lease`, recording its epoch: the database inserts
    /// the row only while the lease is the service's live lease and `entry.seq` is the next one.
    ///
    /// # Errors
    ///
    /// [`StoreError::Fenced`] when the lease lapsed or another holder took it (nothing written),
    /// [`StoreError::OutOfOrder`] when `entry.seq` is not the next one, [`StoreError`] when the write fails.
    pub async fn append_fenced(
        &self,
        lease: &Lease,
        entry: JournalEntry,
    ) -> Result<(), StoreError> {
        let input = self.encode_input(&entry)?;
        let service = lease.service.as_str();
        let epoch = seq_in(lease.epoch);
        self.bounded("a fenced append", async {
            let client = self.client().await?;
            let statement = client
                .prepare_cached(APPEND_FENCED)
                .await
                .map_err(self.fail())?;
            let inserted = client
                .execute(
                    &statement,
                    &[
                        &service,
                        &seq_in(entry.seq),
                        &entry.at.to_rfc3339(),
                        &input,
                        &lease.holder,
                        &epoch,
                    ],
                )
                .await
                .map_err(self.fail())?;
            if inserted == 1 {
                return Ok(());
            }
            let held: bool = client
                .query_one(HELD, &[&service, &lease.holder, &epoch])
                .await
                .map_err(self.fail())?
                .get(0);
            if !held {
                return Err(StoreError::Fenced {
                    service: service.to_owned(),
                    epoch: lease.epoch,
                });
            }
            Err(StoreError::OutOfOrder {
                service: service.to_owned(),
                last: self.last_seq(&client, service).await?,
                got: entry.seq,
            })
        })
        .await
    }

    /// Stores a snapshot of `lease.service` (as [`Store::save_snapshot`](super::super::Store::save_snapshot))
    /// only while `lease` is its live lease: a replica that lost the lease cannot overwrite what the new leader
    /// restores from.
    ///
    /// # Errors
    ///
    /// [`StoreError::Fenced`] when the lease lapsed or another holder took it (nothing written), [`StoreError`]
    /// when the write fails.
    pub async fn save_snapshot_fenced(
        &self,
        lease: &Lease,
        seq: u64,
        snapshot: Snapshot,
    ) -> Result<(), StoreError> {
        self.save_snapshot_under(&lease.service, seq, snapshot, Some(lease))
            .await
    }

    /// The epoch each stored entry of `service` was appended under (`None`: an unfenced append), by seq.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the database cannot be read.
    pub async fn epochs(&self, service: &str) -> Result<Vec<(u64, Option<u64>)>, StoreError> {
        self.bounded("an epoch read", async {
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT seq, epoch FROM journal WHERE service = $1 ORDER BY seq",
                    &[&service],
                )
                .await
                .map_err(self.fail())?;
            rows.iter()
                .map(|row| {
                    let epoch = row
                        .get::<_, Option<i64>>(1)
                        .map(|epoch| super::seq_out(&self.location, epoch))
                        .transpose()?;
                    Ok((super::seq_out(&self.location, row.get(0))?, epoch))
                })
                .collect()
        })
        .await
    }

    pub(super) fn lease(
        &self,
        service: &str,
        holder: &str,
        epoch: i64,
        expires_micros: i64,
    ) -> Result<Lease, StoreError> {
        Ok(Lease {
            service: service.to_owned(),
            holder: holder.to_owned(),
            epoch: super::seq_out(&self.location, epoch)?,
            expires_at: DateTime::from_timestamp_micros(expires_micros).ok_or_else(|| {
                super::corrupt(
                    &self.location,
                    format!("a lease expiring at {expires_micros} µs"),
                )
            })?,
        })
    }
}

#[async_trait]
impl Leases for PostgresStore {
    fn shared(&self) -> bool {
        true
    }

    async fn acquire(
        &self,
        service: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        self.acquire_lease(service, holder, ttl).await
    }

    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<Option<Lease>, StoreError> {
        self.renew_lease(lease, ttl).await
    }

    async fn renew_all(
        &self,
        leases: &[Lease],
        ttl: Duration,
    ) -> Result<Vec<Option<Lease>>, StoreError> {
        self.renew_leases(leases, ttl).await
    }

    async fn release(&self, lease: &Lease) -> Result<bool, StoreError> {
        self.release_lease(lease).await
    }

    async fn append_fenced(&self, lease: &Lease, entry: JournalEntry) -> Result<(), StoreError> {
        Self::append_fenced(self, lease, entry).await
    }

    async fn save_snapshot_fenced(
        &self,
        lease: &Lease,
        seq: u64,
        snapshot: Snapshot,
    ) -> Result<(), StoreError> {
        Self::save_snapshot_fenced(self, lease, seq, snapshot).await
    }

    async fn claim_action(
        &self,
        lease: &Lease,
        claim: &ActionClaim,
    ) -> Result<Claimed, StoreError> {
        self.claim_under(lease, claim).await
    }

    async fn heartbeat(
        &self,
        beat: &ReplicaBeat,
        live_within: Duration,
    ) -> Result<usize, StoreError> {
        self.heartbeat_replica(beat, live_within).await
    }

    async fn depart(&self, replica: &str) -> Result<(), StoreError> {
        self.depart_replica(replica).await
    }

    async fn replicas(&self, live_within: Duration) -> Result<Vec<ReplicaRecord>, StoreError> {
        self.live_replicas(live_within).await
    }
}
