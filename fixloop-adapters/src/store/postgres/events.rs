//! The shared event log on PostgreSQL (table `events`, migration 8): see [`EventLog`].
//!
//! **Commit order is `seq` order.** A `BIGSERIAL` value is taken when a row is inserted, not when it commits, so two
//! concurrent inserts could commit in the other order, and a reader that saw the larger `seq` and then asks for
//! `seq > last` would never see the smaller one. Every append therefore takes one transaction-scoped advisory lock
//! ([`EVENTS_LOCK`], per schema) *before* it inserts: the next append's `seq`s are taken only after the previous
//! append committed (or rolled back), so whatever a reader sees is a prefix of the log, with gaps only where an
//! append rolled back. Appends are few (one per published event, batched per service) and short, so serializing
//! them costs little.
//!
//! Wake-ups: the append's transaction sends `NOTIFY fixloop_events` (delivered at commit), and
//! [`EventLog::wakeups`] keeps one connection outside the pool that `LISTEN`s and re-connects when it breaks.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use tokio::sync::{Notify, mpsc};
use tokio_postgres::{AsyncMessage, NoTls};

use super::super::{EventLog, Lease, LoggedEvent, NewEvent, StoreError};
use super::{PostgresStore, seq_in, seq_out};

/// The first key of the appends' advisory lock ("FM"); the second is the schema's hash.
const EVENTS_LOCK: i32 = 0x464d;

/// The channel appends notify and readers listen on.
const EVENTS_CHANNEL: &str = "fixloop_events";

/// An event inserted only while the lease row holds this holder and epoch, unexpired (locked for share, so a
/// takeover waits for the append to commit).
const APPEND: &str = "INSERT INTO events (service, at, kind, payload, epoch)
     SELECT $1::text, clock_timestamp(), $2::text, $3::text, l.epoch
     FROM leases l
     WHERE l.service = $1::text AND l.holder = $4::text AND l.epoch = $5::bigint
       AND l.expires_at > clock_timestamp()
     FOR SHARE OF l
     RETURNING seq";

/// The latest event of each type of each service.
const LATEST_OF_EACH: &str = "SELECT DISTINCT ON (service, kind) seq, service, kind, payload
     FROM events ORDER BY service, kind, seq DESC";

/// Drops the events at or below `$1`, except the latest of each type of each service.
const PRUNE: &str = "DELETE FROM events e WHERE e.seq <= $1
     AND EXISTS (SELECT 1 FROM events n WHERE n.service = e.service AND n.kind = e.kind AND n.seq > e.seq)";

/// How long the listening connection waits before it is made again after it broke.
const RELISTEN_DELAY: Duration = Duration::from_secs(1);

impl PostgresStore {
    fn logged(&self, row: &tokio_postgres::Row) -> Result<LoggedEvent, StoreError> {
        Ok(LoggedEvent {
            seq: seq_out(&self.location, row.get(0))?,
            service: row.get(1),
            kind: row.get(2),
            payload: row.get(3),
        })
    }

    /// Listens on [`EVENTS_CHANNEL`] until `wake` has no other holder, notifying it at every notification and after
    /// every (re)connection; a broken connection is made again after [`RELISTEN_DELAY`].
    async fn listen(self, wake: Arc<Notify>) {
        loop {
            match self.listen_once(&wake).await {
                Ok(()) => return,
                Err(why) => {
                    tracing::warn!(location = %self.location, %why, "event listener broke; reconnecting")
                }
            }
            wake.notify_one();
            tokio::time::sleep(RELISTEN_DELAY).await;
            if Arc::strong_count(&wake) == 1 {
                return;
            }
        }
    }

    /// One listening connection: `Ok` when nobody needs the wake-ups any more, `Err` when the connection broke.
    async fn listen_once(&self, wake: &Arc<Notify>) -> Result<(), String> {
        let (client, mut connection) =
            tokio::time::timeout(self.timeout, self.config.connect(NoTls))
                .await
                .map_err(|_| "connecting timed out".to_owned())?
                .map_err(|error| error.to_string())?;
        let (sender, mut notifications) = mpsc::unbounded_channel();
        let pump = tokio::spawn(async move {
            let mut messages =
                futures_util::stream::poll_fn(move |context| connection.poll_message(context));
            while let Some(message) = messages.next().await {
                let item = match message {
                    Ok(AsyncMessage::Notification(_)) => Ok(()),
                    Ok(_) => continue,
                    Err(error) => Err(error.to_string()),
                };
                let broken = item.is_err();
                if sender.send(item).is_err() || broken {
                    return;
                }
            }
            let _ = sender.send(Err("the connection closed".to_owned()));
        });
        let listening = tokio::time::timeout(
            self.timeout,
            client.batch_execute(&format!("LISTEN {EVENTS_CHANNEL}")),
        )
        .await;
        if !matches!(listening, Ok(Ok(()))) {
            pump.abort();
            return Err("LISTEN failed".to_owned());
        }
        // Events appended before LISTEN took effect are found by the reader's first read after this.
        wake.notify_one();
        let mut check = tokio::time::interval(Duration::from_secs(5));
        let result = loop {
            tokio::select! {
                item = notifications.recv() => match item {
                    Some(Ok(())) => wake.notify_one(),
                    Some(Err(why)) => break Err(why),
                    None => break Err("the connection closed".to_owned()),
                },
                _ = check.tick() => if Arc::strong_count(wake) == 1 { break Ok(()) },
            }
        };
        pump.abort();
        drop(client);
        result
    }
}

#[async_trait]
impl EventLog for PostgresStore {
    async fn append_events(
        &self,
        lease: &Lease,
        events: &[NewEvent],
    ) -> Result<Vec<u64>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        self.bounded("an event append", async {
            let mut client = self.client().await?;
            let transaction = client.transaction().await.map_err(self.fail())?;
            transaction
                .execute(
                    "SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))",
                    &[&EVENTS_LOCK],
                )
                .await
                .map_err(self.fail())?;
            let statement = transaction
                .prepare_cached(APPEND)
                .await
                .map_err(self.fail())?;
            let epoch = seq_in(lease.epoch);
            let mut seqs = Vec::with_capacity(events.len());
            for event in events {
                let row = transaction
                    .query_opt(
                        &statement,
                        &[
                            &lease.service,
                            &event.kind,
                            &event.payload,
                            &lease.holder,
                            &epoch,
                        ],
                    )
                    .await
                    .map_err(self.fail())?;
                let Some(row) = row else {
                    // Rolled back when dropped: nothing of this batch is kept.
                    return Err(StoreError::Fenced {
                        service: lease.service.clone(),
                        epoch: lease.epoch,
                    });
                };
                seqs.push(seq_out(&self.location, row.get(0))?);
            }
            transaction
                .execute("SELECT pg_notify($1, '')", &[&EVENTS_CHANNEL])
                .await
                .map_err(self.fail())?;
            transaction.commit().await.map_err(self.fail())?;
            Ok(seqs)
        })
        .await
    }

    async fn read_after(&self, after: u64, limit: usize) -> Result<Vec<LoggedEvent>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.bounded("an event read", async {
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT seq, service, kind, payload FROM events WHERE seq > $1 ORDER BY seq LIMIT $2",
                    &[&seq_in(after), &limit],
                )
                .await
                .map_err(self.fail())?;
            rows.iter().map(|row| self.logged(row)).collect()
        })
        .await
    }

    async fn latest_of_each(&self) -> Result<Vec<LoggedEvent>, StoreError> {
        self.bounded("an event read", async {
            let client = self.client().await?;
            let rows = client
                .query(LATEST_OF_EACH, &[])
                .await
                .map_err(self.fail())?;
            let mut events = rows
                .iter()
                .map(|row| self.logged(row))
                .collect::<Result<Vec<_>, _>>()?;
            events.sort_by_key(|event| event.seq);
            Ok(events)
        })
        .await
    }

    async fn latest_seq(&self) -> Result<u64, StoreError> {
        self.bounded("an event read", async {
            let client = self.client().await?;
            let row = client
                .query_one("SELECT COALESCE(max(seq), 0)::bigint FROM events", &[])
                .await
                .map_err(self.fail())?;
            seq_out(&self.location, row.get(0))
        })
        .await
    }

    async fn prune(&self, keep: u64) -> Result<u64, StoreError> {
        let latest = self.latest_seq().await?;
        let floor = latest.saturating_sub(keep);
        if floor == 0 {
            return Ok(0);
        }
        self.bounded("an event prune", async {
            let client = self.client().await?;
            client
                .execute(PRUNE, &[&seq_in(floor)])
                .await
                .map_err(self.fail())
        })
        .await
    }

    async fn wakeups(&self) -> Result<Arc<Notify>, StoreError> {
        let mut started = self
            .wakeups
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(wake) = started.upgrade() {
            return Ok(wake);
        }
        let wake = Arc::new(Notify::new());
        tokio::spawn(self.clone().listen(Arc::clone(&wake)));
        *started = Arc::downgrade(&wake);
        Ok(wake)
    }
}
