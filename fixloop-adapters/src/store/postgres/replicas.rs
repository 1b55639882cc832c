//! Replica heartbeats: each replica of one database upserts its row (id, advertised URL, start, last seen) at
//! every lease renewal; the live ones (seen within the lease time) share the services fairly, and a request for a
//! service led elsewhere is forwarded to the leader's advertised URL, read from here.

use std::time::Duration;

use fixloop_contract::chrono::{DateTime, Utc};

use super::super::{Lease, ReplicaBeat, ReplicaRecord, StoreError};
use super::PostgresStore;

/// Upserts a replica's row, its `last_seen` on the database's clock.
const HEARTBEAT: &str = "INSERT INTO replicas (replica_id, url, started_at, last_seen)
     VALUES ($1, $2, $3::text::timestamptz, clock_timestamp())
     ON CONFLICT (replica_id) DO UPDATE
         SET url = EXCLUDED.url, started_at = EXCLUDED.started_at, last_seen = EXCLUDED.last_seen";

/// How many replicas were seen within the window (milliseconds).
const LIVE_COUNT: &str = "SELECT count(*) FROM replicas
     WHERE last_seen > clock_timestamp() - $1::bigint * interval '1 millisecond'";

/// Rows of replicas gone for a long while (a hundred windows) are dropped at each heartbeat.
const PRUNE: &str = "DELETE FROM replicas
     WHERE last_seen < clock_timestamp() - $1::bigint * interval '1 millisecond' * 100";

/// The live replicas, by id.
const LIVE: &str = "SELECT replica_id, url, (extract(epoch FROM started_at) * 1000000)::bigint,
         (extract(epoch FROM last_seen) * 1000000)::bigint
     FROM replicas
     WHERE last_seen > clock_timestamp() - $1::bigint * interval '1 millisecond'
     ORDER BY replica_id";

/// The live leases, by service.
const LIVE_LEASES: &str =
    "SELECT service, holder, epoch, (extract(epoch FROM expires_at) * 1000000)::bigint
     FROM leases WHERE expires_at > clock_timestamp() ORDER BY service";

fn millis(window: Duration) -> i64 {
    i64::try_from(window.as_millis()).unwrap_or(i64::MAX)
}

impl PostgresStore {
    /// Records `beat` (see [`Leases::heartbeat`](super::super::Leases::heartbeat)) and counts the replicas seen
    /// within `live_within`.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the database cannot be reached.
    pub async fn heartbeat_replica(
        &self,
        beat: &ReplicaBeat,
        live_within: Duration,
    ) -> Result<usize, StoreError> {
        self.bounded("a heartbeat", async {
            let client = self.lease_client().await?;
            client
                .execute(
                    HEARTBEAT,
                    &[&beat.replica, &beat.url, &beat.started_at.to_rfc3339()],
                )
                .await
                .map_err(self.fail())?;
            client
                .execute(PRUNE, &[&millis(live_within)])
                .await
                .map_err(self.fail())?;
            let live: i64 = client
                .query_one(LIVE_COUNT, &[&millis(live_within)])
                .await
                .map_err(self.fail())?
                .get(0);
            Ok(usize::try_from(live).unwrap_or(0))
        })
        .await
    }

    /// Deletes `replica`'s row.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the database cannot be reached.
    pub async fn depart_replica(&self, replica: &str) -> Result<(), StoreError> {
        self.bounded("a departure", async {
            let client = self.client().await?;
            client
                .execute("DELETE FROM replicas WHERE replica_id = $1", &[&replica])
                .await
                .map_err(self.fail())?;
            Ok(())
        })
        .await
    }

    /// The replicas seen within `live_within`, each with its live leases.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the database cannot be read.
    pub async fn live_replicas(
        &self,
        live_within: Duration,
    ) -> Result<Vec<ReplicaRecord>, StoreError> {
        self.bounded("a replica list", async {
            let mut client = self.client().await?;
            let transaction = self.read_transaction(&mut client).await?;
            let rows = transaction
                .query(LIVE, &[&millis(live_within)])
                .await
                .map_err(self.fail())?;
            let leases = transaction
                .query(LIVE_LEASES, &[])
                .await
                .map_err(self.fail())?;
            transaction.commit().await.map_err(self.fail())?;
            let leases: Vec<Lease> = leases
                .iter()
                .map(|row| {
                    let service: String = row.get(0);
                    let holder: String = row.get(1);
                    self.lease(&service, &holder, row.get(2), row.get(3))
                })
                .collect::<Result<_, _>>()?;
            rows.iter()
                .map(|row| {
                    let replica: String = row.get(0);
                    Ok(ReplicaRecord {
                        leads: leases
                            .iter()
                            .filter(|lease| lease.holder == replica)
                            .cloned()
                            .collect(),
                        url: row.get(1),
                        started_at: self.instant(row.get(2))?,
                        last_seen: self.instant(row.get(3))?,
                        replica,
                    })
                })
                .collect()
        })
        .await
    }

    fn instant(&self, micros: i64) -> Result<DateTime<Utc>, StoreError> {
        DateTime::from_timestamp_micros(micros)
            .ok_or_else(|| super::corrupt(&self.location, format!("a replica time of {micros} µs")))
    }
}
