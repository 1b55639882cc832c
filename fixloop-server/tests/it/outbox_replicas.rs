//! The notifications outbox with replicas (issue 24): two replicas' delivery workers for the same sink, each on a
//! store handle of its own, drain one outbox in the real PostgreSQL; the sink's claim hands its messages to one
//! worker at a time, so every message is sent exactly once and in the order enqueued, whichever replica enqueued it.

use std::sync::Arc;
use std::time::Duration;

use fixloop_adapters::fake::FakeNotifier;
use fixloop_adapters::notifier::{Notification, NotificationKind};
use fixloop_adapters::{PostgresStore, Store};
use fixloop_server::runtime::outbox::{Backoff, Outbox, OutboxConfig, Sink};
use tokio::sync::watch;

use crate::pg::TestSchema;

/// Every await of this test is bounded by this.
const BOUND: Duration = Duration::from_secs(30);

const MESSAGES: usize = 60;

fn notification(index: usize) -> Notification {
    Notification {
        id: format!("n{index:03}"),
        kind: NotificationKind::IncidentOpened,
        service: "shop".to_owned(),
        incident_id: format!("inc-{index}"),
        summary: format!("message {index}"),
        action_id: None,
        links: Vec::new(),
        at: chrono::Utc::now(),
    }
}

fn config() -> OutboxConfig {
    OutboxConfig {
        backoff: Backoff {
            initial: Duration::from_millis(10),
            cap: Duration::from_millis(80),
        },
        attempt_timeout: Duration::from_secs(5),
        give_up_after: 5,
        store_retry: Duration::from_millis(50),
        idle_poll: Duration::from_millis(20),
    }
}

/// A replica's outbox of the sink `ops` on its own store handle, its worker running until `stop`.
async fn replica(
    schema: &TestSchema,
    notifier: &Arc<FakeNotifier>,
    stop: &watch::Sender<bool>,
) -> (Outbox, tokio::task::JoinHandle<()>) {
    let store = tokio::time::timeout(BOUND, PostgresStore::connect(schema.url()))
        .await
        .expect("connected in time")
        .expect("connect");
    let (outbox, mut workers) = Outbox::new(
        Arc::new(store) as Arc<dyn Store>,
        vec![Sink {
            name: "ops".to_owned(),
            notifier: Arc::clone(notifier) as Arc<dyn fixloop_adapters::notifier::Notifier>,
        }],
        config(),
    );
    let worker = workers.pop().expect("one worker");
    let mut stopped = stop.subscribe();
    let task = tokio::spawn(worker.run(async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    }));
    (outbox, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_drain_one_postgres_outbox_sending_each_message_once_in_order() {
    let schema = TestSchema::create("outboxreplicas").await;
    let notifier = Arc::new(FakeNotifier::new());
    // Each delivery takes a moment, so both workers are busy at once.
    notifier.set_delay(Duration::from_millis(2));
    let (stop, _) = watch::channel(false);
    let (outbox_a, task_a) = replica(&schema, &notifier, &stop).await;
    let (outbox_b, task_b) = replica(&schema, &notifier, &stop).await;

    // Both replicas' drivers enqueue, in turn, while both workers deliver.
    for index in 0..MESSAGES {
        let outbox = if index % 3 == 0 { &outbox_b } else { &outbox_a };
        tokio::time::timeout(BOUND, outbox.enqueue(&notification(index)))
            .await
            .expect("enqueued in time");
    }
    let deadline = tokio::time::Instant::now() + BOUND;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    while notifier.calls().len() < MESSAGES {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {MESSAGES} messages were sent",
            notifier.calls().len()
        );
        tick.tick().await;
    }
    let _ = stop.send(true);
    for task in [task_a, task_b] {
        tokio::time::timeout(BOUND, task)
            .await
            .expect("the worker stops")
            .expect("no panic");
    }
    let sent: Vec<String> = notifier
        .calls()
        .into_iter()
        .map(|notification| notification.id)
        .collect();
    let expected: Vec<String> = (0..MESSAGES).map(|index| notification(index).id).collect();
    assert_eq!(sent, expected, "every message exactly once, in order");
}
