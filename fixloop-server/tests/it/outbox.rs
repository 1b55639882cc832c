//! The notifications outbox end to end, on the runtime with an SQLite file: a webhook sink (a local axum stub) that
//! is down for a while, then up, receives every message once and in order, also across a restart of the runtime
//! (the worker stopped and the store closed while messages wait, then a new store and worker on the same file).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use fixloop_adapters::notifier::{
    Notification, NotificationKind, WebhookNotifier, WebhookNotifierConfig,
};
use fixloop_adapters::{Secret, SqliteStore, Store};
use fixloop_server::runtime::outbox::{Backoff, DeliveryWorker, Outbox, OutboxConfig, Sink};
use tokio::sync::watch;

/// Every await of these tests is bounded by this.
const BOUND: Duration = Duration::from_secs(20);

/// What the stub sink saw: requests refused while down, and the `webhook-id`s it accepted, in order.
#[derive(Debug, Clone, Default, PartialEq)]
struct Seen {
    refused: usize,
    accepted: Vec<String>,
}

#[derive(Clone)]
struct Stub {
    down: watch::Sender<bool>,
    seen: watch::Sender<Seen>,
}

async fn hook(State(stub): State<Stub>, headers: HeaderMap) -> StatusCode {
    if *stub.down.borrow() {
        stub.seen.send_modify(|seen| seen.refused += 1);
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let id = headers
        .get("webhook-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    stub.seen.send_modify(|seen| seen.accepted.push(id));
    StatusCode::NO_CONTENT
}

/// Starts the stub on loopback; returns its URL and its handle.
async fn start_stub() -> (String, Stub) {
    let stub = Stub {
        down: watch::channel(true).0,
        seen: watch::channel(Seen::default()).0,
    };
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("address"));
    let app = Router::new()
        .route("/hook", post(hook))
        .with_state(stub.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, stub)
}

fn notification(index: u32) -> Notification {
    Notification {
        id: format!("shop:inc-1:{index}"),
        kind: NotificationKind::IncidentOpened,
        service: "shop".to_owned(),
        incident_id: "inc-1".to_owned(),
        summary: format!("message {index}"),
        action_id: None,
        links: Vec::new(),
        at: chrono::Utc::now(),
    }
}

/// Small waits, so a test sees several retries quickly; no jitter, so every wait is known.
fn config() -> OutboxConfig {
    OutboxConfig {
        backoff: Backoff {
            initial: Duration::from_millis(10),
            cap: Duration::from_millis(80),
        },
        attempt_timeout: Duration::from_secs(5),
        give_up_after: 5,
        store_retry: Duration::from_millis(50),
        idle_poll: Duration::from_millis(50),
    }
}

/// The outbox of one webhook sink `ops` in `store`, and its running worker (stopped by the sender).
fn start_outbox(
    store: Arc<dyn Store>,
    url: &str,
) -> (Outbox, watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let notifier = WebhookNotifier::new(
        WebhookNotifierConfig {
            url: Secret::new(url),
            timeout: Duration::from_secs(5),
            ..WebhookNotifierConfig::default()
        },
        fixloop_adapters::default_client(),
    );
    let (outbox, mut workers) = Outbox::new(
        store,
        vec![Sink {
            name: "ops".to_owned(),
            notifier: Arc::new(notifier),
        }],
        config(),
    );
    let worker: DeliveryWorker = workers.pop().expect("one worker");
    assert_eq!(worker.sink(), "ops");
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(worker.run(async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    }));
    (outbox, stop, task)
}

async fn wait_until(stub: &Stub, what: &str, done: impl Fn(&Seen) -> bool) -> Seen {
    let mut seen = stub.seen.subscribe();
    tokio::time::timeout(BOUND, seen.wait_for(|seen| done(seen)))
        .await
        .unwrap_or_else(|_| panic!("{what}: not within {BOUND:?}: {:?}", *stub.seen.borrow()))
        .expect("the stub lives")
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_down_for_a_while_gets_every_message_once_in_order_across_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (url, stub) = start_stub().await;

    // First process: three messages while the sink is down; the first is tried again and again, none is lost.
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).expect("open"));
    let (outbox, stop, worker) = start_outbox(Arc::clone(&store), &url);
    for index in 1..=3 {
        outbox.enqueue(&notification(index)).await;
    }
    let seen = wait_until(&stub, "several refused attempts", |seen| seen.refused >= 4).await;
    assert!(seen.accepted.is_empty());
    let head = store
        .outbox_next("ops")
        .await
        .expect("read")
        .expect("the first message waits");
    assert_eq!(
        head.notification.id, "shop:inc-1:1",
        "the first message stays first"
    );
    assert!(head.attempts >= 1, "its attempts are counted");
    assert!(
        head.last_error
            .as_deref()
            .is_some_and(|error| !error.contains(&url)),
        "the error is recorded without the sink's URL: {:?}",
        head.last_error
    );
    stop.send(true).expect("stop");
    tokio::time::timeout(BOUND, worker)
        .await
        .expect("the worker stops")
        .expect("joined");
    tokio::time::timeout(BOUND, store.close())
        .await
        .expect("closes")
        .expect("closed");
    drop(outbox);

    // Second process on the same file: one more message, one enqueued again (kept once); then the sink comes back.
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).expect("reopen"));
    let (outbox, stop, worker) = start_outbox(Arc::clone(&store), &url);
    outbox.enqueue(&notification(4)).await;
    outbox.enqueue(&notification(2)).await;
    stub.down.send_replace(false);
    let seen = wait_until(&stub, "every message delivered", |seen| {
        seen.accepted.len() >= 4
    })
    .await;
    assert_eq!(
        seen.accepted,
        [
            "shop:inc-1:1",
            "shop:inc-1:2",
            "shop:inc-1:3",
            "shop:inc-1:4"
        ],
        "every message once, in the order enqueued"
    );
    // Every acknowledged message is settled (the worker records it right after the sink's answer), so nothing
    // is ever sent again.
    tokio::time::timeout(BOUND, async {
        while store.outbox_next("ops").await.expect("read").is_some() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("every message settled");
    stop.send(true).expect("stop");
    tokio::time::timeout(BOUND, worker)
        .await
        .expect("the worker stops")
        .expect("joined");
    assert_eq!(stub.seen.borrow().accepted.len(), 4, "no duplicate");
}
