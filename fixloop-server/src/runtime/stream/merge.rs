//! Merging the queues of several hubs into one client's queue, in `seq` order.

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TryRecvError;

use super::Outgoing;

/// A WebSocket client's registration with every service ([`crate::runtime::services::Services::subscribe`]).
#[derive(Debug)]
pub struct Subscription {
    /// The serialized `stream.reset` message to send before anything else, when the `since` asked for could not
    /// be replayed.
    pub marker: Option<super::SharedText>,
    /// One queue per service, in profile order.
    pub queues: Vec<mpsc::Receiver<Outgoing>>,
}

/// Merges the queues of several services into one, in `seq` order (a tie keeps profile order, so the join
/// snapshots come service by service): forwards until any source closes (its hub dropped this client, or the
/// server is stopping) or the merged queue's receiver is gone. Run it beside the connection, in the same task; with
/// one queue, use that queue directly instead.
///
/// Why the order holds: hubs queue events under the shared sequence's lock, so when an event is in one queue,
/// every event with a smaller `seq` is already in its own queue. The merge holds the head of each queue, and
/// forwards the smallest only after a pass over the empty queues that started after every held head was taken
/// found nothing new.
pub async fn merge_queues(
    mut sources: Vec<mpsc::Receiver<Outgoing>>,
    merged: mpsc::Sender<Outgoing>,
) {
    let mut heads: Vec<Option<Outgoing>> = sources.iter().map(|_| None).collect();
    loop {
        // Fill the empty heads until a whole pass finds nothing new (at most one pass per source, plus one).
        loop {
            let mut found = false;
            for (source, head) in sources.iter_mut().zip(heads.iter_mut()) {
                if head.is_some() {
                    continue;
                }
                match source.try_recv() {
                    Ok(message) => {
                        *head = Some(message);
                        found = true;
                    }
                    Err(TryRecvError::Empty) => {}
                    Err(TryRecvError::Disconnected) => return,
                }
            }
            if !found {
                break;
            }
        }
        let smallest = heads
            .iter()
            .enumerate()
            .filter_map(|(index, head)| head.as_ref().map(|message| (order(message), index)))
            .min();
        if let Some((_, index)) = smallest {
            let Some(message) = heads[index].take() else {
                continue;
            };
            if merged.send(message).await.is_err() {
                return;
            }
            continue;
        }
        // Every queue is empty: wait for the next message from any of them, then look at the others again.
        let next = futures_util::future::select_all(
            sources.iter_mut().map(|source| Box::pin(source.recv())),
        );
        let (message, index, _) = tokio::select! {
            next = next => next,
            () = merged.closed() => return,
        };
        let Some(message) = message else { return };
        heads[index] = Some(message);
    }
}

/// Where a queued message goes in the merge: a close goes first, an event by its `seq`.
fn order(message: &Outgoing) -> u64 {
    match message {
        Outgoing::Event { seq, .. } => *seq,
        Outgoing::Close(..) => 0,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use fixloop_contract::{IncidentState, SystemStatus, WsEnvelope, WsMessage};

    use super::*;
    use crate::runtime::stream::{Hub, Sequence};

    fn envelope() -> WsEnvelope {
        let now = "2026-11-21T10:15:00Z".parse().unwrap();
        WsMessage::SystemStatus(SystemStatus {
            status: IncidentState::Healthy,
            error_rate_5m: 0.0,
            p95_latency_ms_5m: 0.0,
            active_incident_id: None,
            updated_at: now,
            service: None,
            signals_degraded: None,
        })
        .at(now)
    }

    /// Receives `count` messages from the merged queue; their `seq`s.
    async fn merged_seqs(queue: &mut mpsc::Receiver<Outgoing>, count: usize) -> Vec<u64> {
        let mut seqs = Vec::new();
        for _ in 0..count {
            let message = tokio::time::timeout(Duration::from_secs(10), queue.recv())
                .await
                .expect("merged in time")
                .expect("the merge runs");
            let Outgoing::Event { seq, .. } = message else {
                panic!("expected an event, got {message:?}");
            };
            seqs.push(seq);
        }
        seqs
    }

    #[tokio::test]
    async fn merged_queues_keep_seq_order_across_services() {
        let sequence = Sequence::new();
        let mut first = Hub::with_sequence(64, 64, sequence.clone());
        let mut second = Hub::with_sequence(64, 64, sequence.clone());
        // Events queued before the merge starts: a burst in the second service's queue must not overtake the
        // first's earlier ones.
        let sources = vec![
            first.subscribe(&[envelope()]),
            second.subscribe(&[envelope()]),
        ];
        for round in 0..10 {
            if round % 3 == 0 {
                first.broadcast(&envelope());
            }
            second.broadcast(&envelope());
        }
        let (merged, mut queue) = mpsc::channel(128);
        let merge = tokio::spawn(merge_queues(sources, merged));
        // Four events of the first service and ten of the second, numbered 1 to 14.
        let seqs = merged_seqs(&mut queue, 16).await;
        assert_eq!(seqs[..2], [0, 0], "both join snapshots first");
        assert_eq!(seqs[2..], (1..=14).collect::<Vec<_>>());
        // Live events too, while the merge waits.
        for _ in 0..5 {
            second.broadcast(&envelope());
            first.broadcast(&envelope());
        }
        assert_eq!(
            merged_seqs(&mut queue, 10).await,
            (15..=24).collect::<Vec<_>>()
        );
        drop(queue);
        first.broadcast(&envelope());
        tokio::time::timeout(Duration::from_secs(10), merge)
            .await
            .expect("the merge ends when its connection is gone")
            .unwrap();
    }
}
