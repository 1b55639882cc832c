//! [`FakeStore`]: a deterministic in-memory [`Store`] that records every call and fails on demand.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use fixloop_core::engine::Snapshot;

use fixloop_contract::chrono::{DateTime, Utc};

use crate::notifier::Notification;
use crate::store::{
    ActionClaim, CiIntakeRecord, Claimed, JournalEntry, Lease, MAX_CI_RUN_INTAKES,
    OUTBOX_KEEP_SETTLED, OutboxFailure, OutboxMessage, Store, StoreError, Stored,
};

/// An in-memory store. Cheap to clone; clones share the data, so a test can "restart" a driver on the same store.
#[derive(Debug, Clone, Default)]
pub struct FakeStore {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    journals: BTreeMap<String, Vec<JournalEntry>>,
    /// Per service: (seq, snapshot), first and latest kept.
    snapshots: BTreeMap<String, Vec<(u64, Snapshot)>>,
    /// Appends fail while this is set (a full disk).
    failing: Option<String>,
    appends: usize,
    closed: bool,
    /// CI intakes in the order recorded.
    ci_intakes: Vec<CiIntakeRecord>,
    /// The outbox in the order enqueued: each message and whether it is settled.
    outbox: Vec<(OutboxMessage, bool)>,
    /// The id the next enqueued message gets, minus one.
    outbox_ids: u64,
    /// Server-wide settings by key.
    settings: BTreeMap<String, String>,
    /// Action claims by (service, proposal, version): (holder, epoch).
    claims: BTreeMap<(String, String, u64), (String, u64)>,
}

impl FakeStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// From now on appends and snapshots fail with `why` (`None` heals the store).
    pub fn fail_writes(&self, why: Option<&str>) {
        self.lock().failing = why.map(str::to_owned);
    }

    /// How many appends succeeded so far.
    #[must_use]
    pub fn appends(&self) -> usize {
        self.lock().appends
    }

    /// The whole journal of `service`.
    #[must_use]
    pub fn journal(&self, service: &str) -> Vec<JournalEntry> {
        self.lock()
            .journals
            .get(service)
            .cloned()
            .unwrap_or_default()
    }

    /// Whether [`Store::close`] was called.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Settles the message `id` and forgets its sink's settled messages beyond the last [`OUTBOX_KEEP_SETTLED`].
    fn settle(inner: &mut Inner, id: u64) {
        let Some(sink) = inner
            .outbox
            .iter_mut()
            .find(|(message, _)| message.id == id)
            .map(|(message, settled)| {
                *settled = true;
                message.sink.clone()
            })
        else {
            return;
        };
        let settled = inner
            .outbox
            .iter()
            .filter(|(message, settled)| *settled && message.sink == sink)
            .count();
        let mut excess =
            settled.saturating_sub(usize::try_from(OUTBOX_KEEP_SETTLED).unwrap_or(usize::MAX));
        inner.outbox.retain(|(message, settled)| {
            if excess > 0 && *settled && message.sink == sink {
                excess -= 1;
                return false;
            }
            true
        });
    }

    fn check_writable(inner: &Inner) -> Result<(), StoreError> {
        match (&inner.failing, inner.closed) {
            (Some(why), _) => Err(StoreError::Failed {
                location: "fake".to_owned(),
                why: why.clone(),
            }),
            (None, true) => Err(StoreError::Failed {
                location: "fake".to_owned(),
                why: "the store is closed".to_owned(),
            }),
            (None, false) => Ok(()),
        }
    }
}

#[async_trait]
impl Store for FakeStore {
    async fn load(&self, service: &str) -> Result<Stored, StoreError> {
        let inner = self.lock();
        let snapshot = inner
            .snapshots
            .get(service)
            .and_then(|snapshots| snapshots.last().cloned());
        let after = snapshot.as_ref().map_or(0, |(seq, _)| *seq);
        let tail = inner
            .journals
            .get(service)
            .map(|journal| {
                journal
                    .iter()
                    .filter(|entry| entry.seq > after)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        Ok(Stored { snapshot, tail })
    }

    async fn append(&self, service: &str, entry: JournalEntry) -> Result<(), StoreError> {
        let mut inner = self.lock();
        Self::check_writable(&inner)?;
        let journal = inner.journals.entry(service.to_owned()).or_default();
        let last = journal.last().map_or(0, |entry| entry.seq);
        if entry.seq != last + 1 {
            return Err(StoreError::OutOfOrder {
                service: service.to_owned(),
                last,
                got: entry.seq,
            });
        }
        journal.push(entry);
        inner.appends += 1;
        Ok(())
    }

    async fn save_snapshot(
        &self,
        service: &str,
        seq: u64,
        snapshot: Snapshot,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        Self::check_writable(&inner)?;
        let snapshots = inner.snapshots.entry(service.to_owned()).or_default();
        snapshots.retain(|(kept, _)| *kept != seq);
        snapshots.push((seq, snapshot));
        snapshots.sort_by_key(|(seq, _)| *seq);
        if snapshots.len() > 2 {
            let last = snapshots.len() - 1;
            snapshots.drain(1..last);
        }
        Ok(())
    }

    async fn history(
        &self,
        service: &str,
        after: u64,
        limit: usize,
    ) -> Result<(Option<(u64, Snapshot)>, Vec<JournalEntry>), StoreError> {
        let inner = self.lock();
        let first = inner
            .snapshots
            .get(service)
            .and_then(|snapshots| snapshots.first())
            .map(|(seq, snapshot)| (*seq, snapshot.clone()));
        let entries = inner
            .journals
            .get(service)
            .map(|journal| {
                journal
                    .iter()
                    .filter(|entry| entry.seq > after)
                    .take(limit)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        Ok((first, entries))
    }

    async fn record_ci_intake(&self, intake: CiIntakeRecord) -> Result<(), StoreError> {
        let mut inner = self.lock();
        Self::check_writable(&inner)?;
        if inner.ci_intakes.iter().any(|kept| kept.id == intake.id) {
            return Err(StoreError::Failed {
                location: "fake".to_owned(),
                why: format!("a CI intake with id {} exists", intake.id),
            });
        }
        inner.ci_intakes.push(intake);
        Ok(())
    }

    async fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self.lock().settings.get(key).cloned())
    }

    async fn save_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let mut inner = self.lock();
        Self::check_writable(&inner)?;
        inner.settings.insert(key.to_owned(), value.to_owned());
        Ok(())
    }

    async fn ci_intakes(&self, limit: usize) -> Result<Vec<CiIntakeRecord>, StoreError> {
        let inner = self.lock();
        let mut newest_first: Vec<_> = inner.ci_intakes.iter().rev().cloned().collect();
        // Stable: equal times keep the newest-recorded first.
        newest_first.sort_by_key(|intake| std::cmp::Reverse(intake.received_at));
        newest_first.truncate(limit);
        Ok(newest_first)
    }

    async fn ci_run_intakes(
        &self,
        repository: &str,
        run_id: &str,
    ) -> Result<Vec<CiIntakeRecord>, StoreError> {
        let inner = self.lock();
        let mut oldest_first: Vec<_> = inner
            .ci_intakes
            .iter()
            .filter(|intake| intake.repository == repository && intake.run_id == run_id)
            .cloned()
            .collect();
        // Stable: equal times keep the order they were recorded in.
        oldest_first.sort_by_key(|intake| intake.received_at);
        let skip = oldest_first.len().saturating_sub(MAX_CI_RUN_INTAKES);
        Ok(oldest_first.split_off(skip))
    }

    async fn ci_runs(&self, limit: usize) -> Result<Vec<(String, String)>, StoreError> {
        let inner = self.lock();
        let mut newest: Vec<_> = inner.ci_intakes.iter().enumerate().collect();
        // Latest time first; equal times, the later-recorded first.
        newest.sort_by_key(|(order, intake)| std::cmp::Reverse((intake.received_at, *order)));
        let mut runs: Vec<(String, String)> = Vec::new();
        for (_, intake) in newest {
            let run = (intake.repository.clone(), intake.run_id.clone());
            if !runs.contains(&run) {
                runs.push(run);
            }
        }
        runs.truncate(limit);
        Ok(runs)
    }

    async fn outbox_enqueue(
        &self,
        sink: &str,
        notification: &Notification,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        Self::check_writable(&inner)?;
        if inner
            .outbox
            .iter()
            .any(|(kept, _)| kept.sink == sink && kept.notification.id == notification.id)
        {
            return Ok(false);
        }
        inner.outbox_ids += 1;
        let id = inner.outbox_ids;
        inner.outbox.push((
            OutboxMessage {
                id,
                sink: sink.to_owned(),
                notification: notification.clone(),
                attempts: 0,
                next_attempt_at: notification.at,
                last_error: None,
            },
            false,
        ));
        Ok(true)
    }

    async fn outbox_next(&self, sink: &str) -> Result<Option<OutboxMessage>, StoreError> {
        Ok(self
            .lock()
            .outbox
            .iter()
            .find(|(message, settled)| !settled && message.sink == sink)
            .map(|(message, _)| message.clone()))
    }

    async fn outbox_delivered(&self, id: u64, _at: DateTime<Utc>) -> Result<(), StoreError> {
        let mut inner = self.lock();
        Self::check_writable(&inner)?;
        Self::settle(&mut inner, id);
        Ok(())
    }

    async fn outbox_failed(&self, id: u64, failure: OutboxFailure) -> Result<(), StoreError> {
        let mut inner = self.lock();
        Self::check_writable(&inner)?;
        if let Some((message, _)) = inner
            .outbox
            .iter_mut()
            .find(|(message, _)| message.id == id)
        {
            message.attempts = failure.attempts;
            message.last_error = Some(failure.error);
            message.next_attempt_at = failure.retry_at.unwrap_or(failure.at);
        }
        if failure.retry_at.is_none() {
            Self::settle(&mut inner, id);
        }
        Ok(())
    }

    async fn claim_action(
        &self,
        lease: &Lease,
        claim: &ActionClaim,
    ) -> Result<Claimed, StoreError> {
        let mut inner = self.lock();
        Self::check_writable(&inner)?;
        let newest = inner
            .claims
            .iter()
            .filter(|((service, _, _), _)| *service == lease.service)
            .map(|(_, (_, epoch))| *epoch)
            .max();
        if newest.is_some_and(|newest| newest > lease.epoch) {
            return Err(StoreError::Fenced {
                service: lease.service.clone(),
                epoch: lease.epoch,
            });
        }
        let key = (lease.service.clone(), claim.proposal.clone(), claim.version);
        if let Some((holder, epoch)) = inner.claims.get(&key) {
            return Ok(Claimed::Taken {
                holder: holder.clone(),
                epoch: *epoch,
            });
        }
        inner
            .claims
            .insert(key, (lease.holder.clone(), lease.epoch));
        Ok(Claimed::Claimed)
    }

    async fn close(&self) -> Result<(), StoreError> {
        self.lock().closed = true;
        Ok(())
    }
}
