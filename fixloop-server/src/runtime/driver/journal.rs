//! The engine's journal: every input is appended before its effects run, and a snapshot is saved every
//! [`SNAPSHOT_EVERY`] entries; a failed append breaks the journal until a snapshot heals it (the loop goes on in
//! memory meanwhile).
//!
//! Every write carries the service's lease ([`Fence`]): an append or snapshot the store refuses as
//! [`StoreError::Fenced`] means another replica leads the service now, so the driver stops at once, without
//! feeding the engine the input it could not record (it neither records nor acts).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use fixloop_adapters::{JournalEntry, Lease, Leases, StoreError};
use fixloop_core::engine::{Input, RecordedInput};

use super::Driver;

/// The lease a driver writes under, and the leases that check it.
#[derive(Debug, Clone)]
pub struct Fence {
    /// Where the lease lives (and every fenced write goes).
    pub leases: Arc<dyn Leases>,
    /// The lease the driver holds.
    pub lease: Lease,
}

/// Journal entries between two snapshots of the engine (a restart replays at most this many).
const SNAPSHOT_EVERY: u64 = 256;

/// The engine's journal in a [`Store`].
#[derive(Debug)]
pub(super) struct Journal {
    pub(super) fence: Fence,
    pub(super) service: String,
    /// The seq of the last entry appended.
    pub(super) seq: u64,
    /// The seq the latest snapshot covers.
    pub(super) snapshot_seq: u64,
    /// An append failed: inputs are not journaled until a snapshot heals the journal.
    pub(super) broken: bool,
}

impl Driver {
    /// Appends the call about to be made on the engine to the journal (nothing when there is none); `false` when
    /// the lease was lost (the driver is fenced: the call must not be made).
    pub(super) async fn record(&mut self, now: DateTime<Utc>, input: Option<&Input>) -> bool {
        self.append(now, input.map(RecordedInput::from)).await;
        !self.fenced
    }

    /// Appends the configuration the engine runs with from now on, and where it came from: at every start, so a
    /// replay reproduces the decisions without being told the flags or the profile (see
    /// [`RecordedInput::Configured`]).
    pub(super) async fn record_configuration(&mut self, now: DateTime<Utc>) {
        let configured =
            RecordedInput::configured(self.engine.config(), self.config.origin.clone());
        self.append(now, Some(configured)).await;
    }

    async fn append(&mut self, now: DateTime<Utc>, input: Option<RecordedInput>) {
        let Some(journal) = self.journal.as_mut() else {
            return;
        };
        if self.fenced {
            return;
        }
        if journal.broken {
            // Not journaled: each such input is a lost append, counted one by one.
            self.metrics.journal_append(false);
            return;
        }
        let entry = JournalEntry {
            seq: journal.seq + 1,
            at: now,
            input,
        };
        match journal
            .fence
            .leases
            .append_fenced(&journal.fence.lease, entry)
            .await
        {
            Ok(()) => {
                journal.seq += 1;
                self.metrics.journal_append(true);
            }
            Err(StoreError::Fenced { service, epoch }) => {
                self.fenced = true;
                self.metrics.journal_fenced();
                tracing::error!(%service, epoch, "journal append fenced: another replica leads this service now; the driver stops without acting");
            }
            Err(error) => {
                // FixLoop keeps watching in memory: an outage of the disk must not stop the loop during an
                // outage of the service. A snapshot heals the journal later.
                journal.broken = true;
                self.metrics.journal_append(false);
                self.metrics
                    .journal_failing(&journal.service, Some(error.to_string()));
                tracing::error!(%error, service = %journal.service, seq = journal.seq + 1, "journal append failed; inputs are not journaled until a snapshot succeeds");
            }
        }
    }

    /// Saves a snapshot every [`SNAPSHOT_EVERY`] entries, and at once while the journal is broken.
    pub(super) async fn snapshot_now_and_then(&mut self) {
        let due = self.journal.as_ref().is_some_and(|journal| {
            journal.broken || journal.seq >= journal.snapshot_seq + SNAPSHOT_EVERY
        });
        if due {
            self.save_snapshot().await;
        }
    }

    /// Saves a snapshot of the engine as it is now, covering every entry appended so far; a snapshot of a broken
    /// journal heals it (the state is whole again, though a replay of the lost span is not).
    pub(super) async fn save_snapshot(&mut self) {
        let Some(journal) = self.journal.as_mut() else {
            return;
        };
        if self.fenced {
            return;
        }
        let snapshot = match self.engine.snapshot() {
            Ok(snapshot) => snapshot,
            Err(error) => {
                tracing::error!(%error, "cannot snapshot the engine");
                return;
            }
        };
        match journal
            .fence
            .leases
            .save_snapshot_fenced(&journal.fence.lease, journal.seq, snapshot)
            .await
        {
            Ok(()) => {
                journal.snapshot_seq = journal.seq;
                if journal.broken {
                    journal.broken = false;
                    self.metrics.journal_failing(&journal.service, None);
                    tracing::warn!(service = %journal.service, seq = journal.seq, "journal healed by a snapshot; the inputs while it was broken are not in it");
                }
            }
            Err(StoreError::Fenced { service, epoch }) => {
                self.fenced = true;
                self.metrics.journal_fenced();
                tracing::error!(%service, epoch, "snapshot fenced: another replica leads this service now; the driver stops without acting");
            }
            Err(error) if !journal.broken => {
                tracing::error!(%error, service = %journal.service, "snapshot failed");
            }
            Err(_) => {}
        }
    }
}
