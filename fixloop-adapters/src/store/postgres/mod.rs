//! [`PostgresStore`]: the journal in a PostgreSQL database several replicas share (`FIXLOOP_DATABASE_URL=postgres://…`).
//!
//! The driver is `tokio-postgres` (no TLS yet: the server is expected on the machine or a trusted network) behind a
//! bounded pool of [`POOL_SIZE`] connections (`deadpool-postgres`). Every call is bounded by [`CALL_TIMEOUT`]: the
//! pool's wait, connect and recycle, a `statement_timeout` set on every connection, and the call as a whole. The
//! tables live in the schema the URL's `search_path` selects (`?options=-csearch_path%3Dteam`, default `public`),
//! so one database can hold several independent stores. The URL's password never shows: the store names itself
//! by [`redacted_url`].
//!
//! The schema is versioned (`migrations`): missing migrations are applied at start, one replica at a time, and a
//! database of a newer version is refused with [`StoreError::NewerVersion`], never downgraded. A committed append
//! is durable (PostgreSQL's `synchronous_commit`). Appends are ordered without gaps *in the database*: the row is
//! inserted only when its seq is the next one (a conditional insert on the `(service, seq)` primary key), so two
//! writers can never both append one position. Retention is the SQLite store's (`store::retention`), in the
//! snapshot's transaction; `Retention::max_bytes` is not enforced here (cap the database in PostgreSQL).
//!
//! Fencing groundwork for replicas (`lease`): a lease per service (holder, epoch, expiry on the database's clock)
//! and [`PostgresStore::append_fenced`], which the database refuses when the lease it carries is no longer held.

mod ci;
mod claims;
mod compaction;
mod errors;
mod events;
mod lease;
mod migrations;
mod outbox;
mod replicas;

use std::future::Future;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use fixloop_contract::chrono::{DateTime, Utc};
use fixloop_core::engine::{RecordedInput, Snapshot};
use tokio_postgres::NoTls;

use self::compaction::{compact, measure, thin};
pub use self::errors::redacted_url;
use self::errors::{classify, closed, corrupt, pool_failed, redacted};
pub use self::lease::Lease;
pub use self::migrations::SCHEMA_VERSION;
use super::retention::{Marks, SnapshotMark};
use super::{
    ActionClaim, CiIntakeRecord, Claimed, JournalEntry, OutboxFailure, OutboxMessage, Retention,
    Store, StoreError, StoreStats, Stored, decode,
};
use crate::notifier::Notification;

/// How long any one call may take (waiting for a connection included) before it fails.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The most connections one store opens.
pub const POOL_SIZE: usize = 8;

/// The connections kept apart for the leases and heartbeats (see [`PostgresStore`]'s `lease_pool`).
const LEASE_POOL_SIZE: usize = 2;

/// The conditional insert of an append: the row goes in only when its seq follows the service's last one (its
/// latest entry, or its latest snapshot when compaction left no entry behind it), so a gap or a repeat inserts
/// nothing, whoever else writes.
const APPEND: &str = "INSERT INTO journal (service, seq, at, input)
     SELECT $1::text, $2::bigint, $3::text, $4::text
     WHERE $2::bigint = 1 + GREATEST(
         (SELECT max(seq) FROM journal WHERE service = $1::text),
         (SELECT max(seq) FROM snapshots WHERE service = $1::text),
         0)
     ON CONFLICT DO NOTHING";

/// The last seq of a service, as [`APPEND`] reads it.
const LAST_SEQ: &str = "SELECT GREATEST(
         (SELECT max(seq) FROM journal WHERE service = $1::text),
         (SELECT max(seq) FROM snapshots WHERE service = $1::text),
         0)::bigint";

/// The PostgreSQL store. Cheap to clone.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    /// The URL without its password (see [`redacted_url`]).
    location: Arc<str>,
    /// The connection settings, for the one connection outside the pool that listens for events.
    config: Arc<tokio_postgres::Config>,
    /// The notifier of [`EventLog::wakeups`](super::EventLog::wakeups) while its listening connection runs (weak:
    /// the listener stops once nobody holds the notifier).
    wakeups: Arc<Mutex<std::sync::Weak<tokio::sync::Notify>>>,
    timeout: Duration,
    /// What compaction keeps.
    retention: Arc<Mutex<Retention>>,
    /// The size its latest compaction measured.
    stats: Arc<Mutex<Option<StoreStats>>>,
    /// What compaction reads of each stored snapshot, by service and seq.
    marks: Arc<Mutex<Marks>>,
    /// This handle's id in the outbox's sink claims (unique per handle: see `outbox`).
    courier: Arc<str>,
    /// The connections of the leases and heartbeats ([`LEASE_POOL_SIZE`]), apart from `pool`, so a burst of
    /// appends can never keep a replica from renewing its leases.
    lease_pool: Pool,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user[:password]@host[:port]/database[?options=...]`) and
    /// brings its schema to [`SCHEMA_VERSION`].
    ///
    /// # Errors
    ///
    /// [`StoreError::Failed`] when the URL does not parse, the server cannot be reached within [`CALL_TIMEOUT`],
    /// or the `search_path` names no existing schema; [`StoreError::NewerVersion`] for a schema a newer build
    /// wrote.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, CALL_TIMEOUT, POOL_SIZE).await
    }

    /// [`PostgresStore::connect`] with another bound on every call and another pool size (at least 1).
    ///
    /// # Errors
    ///
    /// As [`PostgresStore::connect`].
    pub async fn connect_with(
        url: &str,
        timeout: Duration,
        pool_size: usize,
    ) -> Result<Self, StoreError> {
        let mut config =
            tokio_postgres::Config::from_str(url).map_err(|error| StoreError::Failed {
                location: redacted_url(url),
                why: format!("not a PostgreSQL URL: {error}"),
            })?;
        let location: Arc<str> = redacted(&config).into();
        let statement_timeout = format!(
            "-c statement_timeout={}",
            timeout.as_millis().clamp(1, i32::MAX.unsigned_abs().into())
        );
        let options = match config.get_options() {
            Some(options) if !options.trim().is_empty() => format!("{options} {statement_timeout}"),
            _ => statement_timeout,
        };
        config
            .options(options)
            .connect_timeout(timeout)
            .application_name("fixloop");
        let listen_config = Arc::new(config.clone());
        let lease_manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = build_pool(manager, pool_size, timeout, &location)?;
        let lease_pool = build_pool(lease_manager, LEASE_POOL_SIZE, timeout, &location)?;
        let store = Self {
            pool,
            location,
            timeout,
            retention: Arc::default(),
            stats: Arc::default(),
            marks: Arc::default(),
            config: listen_config,
            wakeups: Arc::default(),
            courier: courier_id().into(),
            lease_pool,
        };
        store
            .bounded("the migration", async {
                let mut client = store.client().await?;
                migrations::migrate(&mut client, &store.location).await
            })
            .await?;
        Ok(store)
    }

    /// The URL without its password.
    #[must_use]
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Sets what compaction keeps (`max_bytes` aside: cap the database in PostgreSQL).
    pub fn set_retention(&self, retention: Retention) {
        *self
            .retention
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = retention;
    }

    /// Runs `work`, failing it when it takes longer than the store's bound.
    async fn bounded<T>(
        &self,
        what: &str,
        work: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(self.timeout, work)
            .await
            .unwrap_or_else(|_| {
                Err(StoreError::Failed {
                    location: self.location.to_string(),
                    why: format!("{what} took longer than {:?}", self.timeout),
                })
            })
    }

    /// A read-only transaction that sees one snapshot of the database (`REPEATABLE READ`).
    async fn read_transaction<'a>(
        &self,
        client: &'a mut deadpool_postgres::Client,
    ) -> Result<deadpool_postgres::Transaction<'a>, StoreError> {
        client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(self.fail())
    }

    /// A connection of the leases and heartbeats.
    async fn lease_client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        if self.lease_pool.is_closed() {
            return Err(closed(&self.location));
        }
        self.lease_pool
            .get()
            .await
            .map_err(|error| pool_failed(&self.location, &error))
    }

    /// A connection from the pool.
    async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        if self.pool.is_closed() {
            return Err(closed(&self.location));
        }
        self.pool
            .get()
            .await
            .map_err(|error| pool_failed(&self.location, &error))
    }

    fn fail(&self) -> impl Fn(tokio_postgres::Error) -> StoreError + '_ {
        |error| classify(&self.location, &error)
    }

    /// The last seq of `service` (its latest entry, or its latest snapshot).
    async fn last_seq(
        &self,
        client: &tokio_postgres::Client,
        service: &str,
    ) -> Result<u64, StoreError> {
        let row = client
            .query_one(LAST_SEQ, &[&service])
            .await
            .map_err(self.fail())?;
        seq_out(&self.location, row.get(0))
    }

    /// Up to `limit` entries of `service` after `after`, oldest first.
    async fn entries(
        &self,
        client: &impl tokio_postgres::GenericClient,
        service: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = client
            .query(
                "SELECT seq, at, input FROM journal WHERE service = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                &[&service, &seq_in(after), &limit],
            )
            .await
            .map_err(self.fail())?;
        rows.iter()
            .map(|row| {
                let seq = seq_out(&self.location, row.get(0))?;
                let at: &str = row.get(1);
                let at = DateTime::parse_from_rfc3339(at)
                    .map(|at| at.with_timezone(&Utc))
                    .map_err(|error| {
                        corrupt(
                            &self.location,
                            format!("entry {seq} of {service}: bad time {at:?}: {error}"),
                        )
                    })?;
                let input = row
                    .get::<_, Option<&str>>(2)
                    .map(|text| decode::<RecordedInput>(&self.location, text, "input"))
                    .transpose()?;
                Ok(JournalEntry { seq, at, input })
            })
            .collect()
    }

    /// The first (`ascending`) or the latest snapshot of `service`.
    async fn snapshot(
        &self,
        client: &impl tokio_postgres::GenericClient,
        service: &str,
        ascending: bool,
    ) -> Result<Option<(u64, Snapshot)>, StoreError> {
        let query = if ascending {
            "SELECT seq, snapshot FROM snapshots WHERE service = $1 ORDER BY seq ASC LIMIT 1"
        } else {
            "SELECT seq, snapshot FROM snapshots WHERE service = $1 ORDER BY seq DESC LIMIT 1"
        };
        let row = client
            .query_opt(query, &[&service])
            .await
            .map_err(self.fail())?;
        row.map(|row| {
            Ok((
                seq_out(&self.location, row.get(0))?,
                decode::<Snapshot>(&self.location, row.get(1), "snapshot")?,
            ))
        })
        .transpose()
    }

    /// Encodes an entry's input as the journal stores it.
    fn encode_input(&self, entry: &JournalEntry) -> Result<Option<String>, StoreError> {
        entry
            .input
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|error| StoreError::Failed {
                location: self.location.to_string(),
                why: format!("cannot encode the input: {error}"),
            })
    }

    /// Stores a snapshot (see [`Store::save_snapshot`]); under `lease`, only while it is the live lease, checked in
    /// the snapshot's transaction with the lease row locked for share (a takeover waits for it to commit).
    async fn save_snapshot_under(
        &self,
        service: &str,
        seq: u64,
        snapshot: Snapshot,
        lease: Option<&Lease>,
    ) -> Result<(), StoreError> {
        let text = serde_json::to_string(&snapshot).map_err(|error| StoreError::Failed {
            location: self.location.to_string(),
            why: format!("cannot encode the snapshot: {error}"),
        })?;
        let retention = *self
            .retention
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mark = decode::<SnapshotMark>(&self.location, &text, "snapshot")?;
        // This service's cached marks, taken out while the transaction runs (never a lock held across an await).
        let mut marks = self
            .marks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take(service);
        let location = &*self.location;
        let result = self
            .bounded("a snapshot", async {
                let mut client = self.client().await?;
                let transaction = client.transaction().await.map_err(self.fail())?;
                if let Some(lease) = lease {
                    lease::check_held(&transaction, self, lease).await?;
                }
                transaction
                    .execute(
                        "INSERT INTO snapshots (service, seq, snapshot) VALUES ($1, $2, $3)
                         ON CONFLICT (service, seq) DO UPDATE SET snapshot = EXCLUDED.snapshot",
                        &[&service, &seq_in(seq), &text],
                    )
                    .await
                    .map_err(self.fail())?;
                // Snapshots are thinned out, then compaction moves the replay window's start forward.
                thin(&transaction, location, service, seq, retention.spacing()).await?;
                marks.insert(service, seq, mark);
                compact(&transaction, location, service, &retention, &mut marks).await?;
                transaction.commit().await.map_err(self.fail())?;
                measure(&client, location).await
            })
            .await;
        self.marks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .put_back(marks);
        let measured = result?;
        *self.stats.lock().unwrap_or_else(PoisonError::into_inner) = Some(measured);
        Ok(())
    }
}

/// A pool of at most `size` (at least 1) connections of `manager`, every wait bounded by `timeout`.
fn build_pool(
    manager: Manager,
    size: usize,
    timeout: Duration,
    location: &str,
) -> Result<Pool, StoreError> {
    Pool::builder(manager)
        .max_size(size.max(1))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(timeout))
        .create_timeout(Some(timeout))
        .recycle_timeout(Some(timeout))
        .build()
        .map_err(|error| StoreError::Failed {
            location: location.to_owned(),
            why: format!("cannot build the connection pool: {error}"),
        })
}

/// A courier id no other store handle has: the process, the time and a counter.
fn courier_id() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    let count = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{nanos}-{count}", std::process::id())
}

/// A seq as PostgreSQL's `BIGINT`.
fn seq_in(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

/// A stored `BIGINT` seq back (never negative: the tables' checks).
fn seq_out(location: &str, seq: i64) -> Result<u64, StoreError> {
    u64::try_from(seq).map_err(|_| corrupt(location, format!("a negative seq {seq}")))
}

#[async_trait]
impl Store for PostgresStore {
    fn stats(&self) -> Option<StoreStats> {
        *self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn load(&self, service: &str) -> Result<Stored, StoreError> {
        self.bounded("a load", async {
            let mut client = self.client().await?;
            // One snapshot of the database for both reads, so a compaction committed between them cannot split
            // the snapshot from its tail.
            let transaction = self.read_transaction(&mut client).await?;
            let snapshot = self.snapshot(&*transaction, service, false).await?;
            let after = snapshot.as_ref().map_or(0, |(seq, _)| *seq);
            let tail = self
                .entries(&*transaction, service, after, usize::MAX)
                .await?;
            transaction.commit().await.map_err(self.fail())?;
            Ok(Stored { snapshot, tail })
        })
        .await
    }

    async fn append(&self, service: &str, entry: JournalEntry) -> Result<(), StoreError> {
        let input = self.encode_input(&entry)?;
        self.bounded("an append", async {
            let client = self.client().await?;
            let statement = client.prepare_cached(APPEND).await.map_err(self.fail())?;
            let inserted = client
                .execute(
                    &statement,
                    &[&service, &seq_in(entry.seq), &entry.at.to_rfc3339(), &input],
                )
                .await
                .map_err(self.fail())?;
            if inserted == 1 {
                return Ok(());
            }
            Err(StoreError::OutOfOrder {
                service: service.to_owned(),
                last: self.last_seq(&client, service).await?,
                got: entry.seq,
            })
        })
        .await
    }

    async fn save_snapshot(
        &self,
        service: &str,
        seq: u64,
        snapshot: Snapshot,
    ) -> Result<(), StoreError> {
        self.save_snapshot_under(service, seq, snapshot, None).await
    }

    async fn history(
        &self,
        service: &str,
        after: u64,
        limit: usize,
    ) -> Result<(Option<(u64, Snapshot)>, Vec<JournalEntry>), StoreError> {
        self.bounded("a history read", async {
            let mut client = self.client().await?;
            let transaction = self.read_transaction(&mut client).await?;
            let first = self.snapshot(&*transaction, service, true).await?;
            let entries = self.entries(&*transaction, service, after, limit).await?;
            transaction.commit().await.map_err(self.fail())?;
            Ok((first, entries))
        })
        .await
    }

    async fn record_ci_intake(&self, intake: CiIntakeRecord) -> Result<(), StoreError> {
        self.bounded("recording a CI intake", async {
            let client = self.client().await?;
            ci::record(&client, &self.location, &intake).await
        })
        .await
    }

    async fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.bounded("a setting read", async {
            let client = self.client().await?;
            let row = client
                .query_opt("SELECT value FROM settings WHERE key = $1", &[&key])
                .await
                .map_err(|error| classify(&self.location, &error))?;
            Ok(row.map(|row| row.get(0)))
        })
        .await
    }

    async fn save_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.bounded("saving a setting", async {
            let client = self.client().await?;
            client
                .execute(
                    "INSERT INTO settings (key, value) VALUES ($1, $2) \
                     ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                    &[&key, &value],
                )
                .await
                .map_err(|error| classify(&self.location, &error))?;
            Ok(())
        })
        .await
    }

    async fn ci_intakes(&self, limit: usize) -> Result<Vec<CiIntakeRecord>, StoreError> {
        self.bounded("a CI intake read", async {
            let client = self.client().await?;
            ci::list(&client, &self.location, limit).await
        })
        .await
    }

    async fn ci_run_intakes(
        &self,
        repository: &str,
        run_id: &str,
    ) -> Result<Vec<CiIntakeRecord>, StoreError> {
        self.bounded("a CI run read", async {
            let client = self.client().await?;
            ci::run(&client, &self.location, repository, run_id).await
        })
        .await
    }

    async fn ci_runs(&self, limit: usize) -> Result<Vec<(String, String)>, StoreError> {
        self.bounded("a CI runs read", async {
            let client = self.client().await?;
            ci::runs(&client, &self.location, limit).await
        })
        .await
    }

    async fn outbox_enqueue(
        &self,
        sink: &str,
        notification: &Notification,
    ) -> Result<bool, StoreError> {
        let text = super::outbox::encode(&self.location, notification)?;
        self.bounded("an outbox enqueue", async {
            let client = self.client().await?;
            outbox::enqueue(
                &client,
                &self.location,
                sink,
                &notification.id,
                &text,
                notification.at,
            )
            .await
        })
        .await
    }

    async fn outbox_next(&self, sink: &str) -> Result<Option<OutboxMessage>, StoreError> {
        self.bounded("an outbox read", async {
            let client = self.client().await?;
            outbox::next_claimed(&client, &self.location, sink, &self.courier).await
        })
        .await
    }

    async fn outbox_delivered(&self, id: u64, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.bounded("an outbox delivery", async {
            let mut client = self.client().await?;
            outbox::settle(&mut client, &self.location, id, "delivered", at).await
        })
        .await
    }

    async fn outbox_failed(&self, id: u64, failure: OutboxFailure) -> Result<(), StoreError> {
        self.bounded("an outbox failure", async {
            let mut client = self.client().await?;
            outbox::failed(&mut client, &self.location, id, &failure).await
        })
        .await
    }

    async fn claim_action(
        &self,
        lease: &Lease,
        claim: &ActionClaim,
    ) -> Result<Claimed, StoreError> {
        self.claim_under(lease, claim).await
    }

    async fn close(&self) -> Result<(), StoreError> {
        // Every committed append is in the database already; closing only ends the connections.
        self.pool.close();
        self.lease_pool.close();
        Ok(())
    }
}
