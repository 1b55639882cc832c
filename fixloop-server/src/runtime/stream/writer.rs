//! The leader's side of events across replicas: each driver's published events go, in order, to the shared event
//! log under the driver's lease ([`EventWriter`]), from where every replica's feed ([`super::feed`]) delivers them.

use std::sync::Arc;
use std::time::Duration;

use fixloop_adapters::{EventLog, Lease, NewEvent, StoreError};
use fixloop_contract::WsEnvelope;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

/// How many published events may wait for the log per driver before new ones are dropped (and logged).
pub const WRITER_QUEUE: usize = 4096;

/// The most events appended in one transaction.
const BATCH: usize = 64;

/// How often a failed append is tried again before its events are dropped (and logged).
const ATTEMPTS: u32 = 3;

/// A driver's queue to the shared event log. Dropping it lets its task append what is queued, then end.
#[derive(Debug)]
pub struct EventWriter {
    queue: mpsc::Sender<NewEvent>,
}

impl EventWriter {
    /// Starts the task that appends `lease.service`'s events to `log` under `lease`, in the order they are sent;
    /// it stops at the first [`StoreError::Fenced`] (another replica leads now: what follows is not this driver's
    /// to publish).
    #[must_use]
    pub fn spawn(log: Arc<dyn EventLog>, lease: Lease) -> Self {
        let (queue, receiver) = mpsc::channel(WRITER_QUEUE);
        tokio::spawn(append_all(log, lease, receiver));
        Self { queue }
    }

    /// Queues `envelope` for the log (serialized without its `seq`: the log numbers it). A full queue drops it
    /// and says so: the driver never waits for the database.
    pub fn send(&self, envelope: &WsEnvelope) {
        let payload = match serde_json::to_string(envelope) {
            Ok(payload) => payload,
            Err(error) => {
                tracing::error!(%error, "an event cannot be serialized for the event log");
                return;
            }
        };
        let event = NewEvent {
            kind: envelope.message.kind().to_owned(),
            payload,
        };
        match self.queue.try_send(event) {
            Ok(()) => {}
            Err(TrySendError::Full(event)) => {
                tracing::error!(kind = %event.kind, "the event log is behind: an event is dropped");
            }
            // The task stopped (fenced): this driver is about to stop too.
            Err(TrySendError::Closed(_)) => {}
        }
    }
}

async fn append_all(log: Arc<dyn EventLog>, lease: Lease, mut queue: mpsc::Receiver<NewEvent>) {
    let mut batch = Vec::with_capacity(BATCH);
    while queue.recv_many(&mut batch, BATCH).await > 0 {
        let mut attempt = 1;
        loop {
            match log.append_events(&lease, &batch).await {
                Ok(_) => break,
                Err(StoreError::Fenced { .. }) => {
                    tracing::warn!(service = %lease.service, epoch = lease.epoch, "events refused: the lease is gone");
                    return;
                }
                Err(error) if attempt < ATTEMPTS => {
                    tracing::warn!(service = %lease.service, %error, attempt, "event append failed; trying again");
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(error) => {
                    tracing::error!(service = %lease.service, %error, dropped = batch.len(), "events dropped: the event log cannot be written");
                    break;
                }
            }
        }
        batch.clear();
    }
}
