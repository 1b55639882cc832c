//! The shared event log on PostgreSQL (migration 8): fenced appends, reads in `seq` order that never skip an event
//! committed late, pruning, and `LISTEN`/`NOTIFY` wake-ups across connections.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use fixloop_adapters::{
    EventLog, Lease, MemoryEventLog, NewEvent, PostgresStore, Store as _, StoreError,
};

use crate::contract::bounded;
use crate::pg::TestSchema;

const MINUTE: Duration = Duration::from_secs(60);

async fn connect(schema: &TestSchema) -> PostgresStore {
    bounded("connect", PostgresStore::connect(schema.url()))
        .await
        .expect("connect")
}

fn event(kind: &str, number: usize) -> NewEvent {
    NewEvent {
        kind: kind.to_owned(),
        payload: format!("{{\"type\":\"{kind}\",\"payload\":{{\"n\":{number}}}}}"),
    }
}

async fn lease(store: &PostgresStore, service: &str, holder: &str) -> Lease {
    bounded("acquire", store.acquire_lease(service, holder, MINUTE))
        .await
        .expect("acquire")
        .expect("free")
}

#[tokio::test]
async fn events_are_appended_under_the_live_lease_only_and_read_in_seq_order() {
    let schema = TestSchema::create("events").await;
    let store = connect(&schema).await;
    let first = lease(&store, "shop", "replica-a").await;
    let seqs = bounded(
        "append",
        store.append_events(
            &first,
            &[event("system.status", 1), event("incident.created", 2)],
        ),
    )
    .await
    .expect("append");
    assert_eq!(seqs.len(), 2);
    assert!(seqs[0] < seqs[1]);
    let read = bounded("read", store.read_after(0, 10))
        .await
        .expect("read");
    assert_eq!(
        read.iter()
            .map(|one| (one.seq, one.service.as_str(), one.kind.as_str()))
            .collect::<Vec<_>>(),
        [
            (seqs[0], "shop", "system.status"),
            (seqs[1], "shop", "incident.created")
        ]
    );
    assert!(read[1].payload.contains("\"n\":2"));
    assert_eq!(
        bounded("latest", store.latest_seq()).await.expect("latest"),
        seqs[1]
    );
    // A takeover: the old leader's events are refused whole, the new leader's go in after.
    assert!(
        bounded("release", store.release_lease(&first))
            .await
            .unwrap()
    );
    let second = lease(&store, "shop", "replica-b").await;
    let refused = bounded(
        "stale append",
        store.append_events(&first, &[event("system.status", 3)]),
    )
    .await;
    assert!(
        matches!(refused, Err(StoreError::Fenced { epoch: 1, .. })),
        "{refused:?}"
    );
    let after = bounded(
        "append",
        store.append_events(&second, &[event("system.status", 4)]),
    )
    .await
    .expect("append");
    let read = bounded("read", store.read_after(seqs[1], 10))
        .await
        .unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].seq, after[0]);
    assert!(read[0].payload.contains("\"n\":4"));
    assert!(
        bounded("read", store.read_after(after[0], 10))
            .await
            .unwrap()
            .is_empty()
    );
    // The store's journal tables are untouched by events.
    assert!(store.load("shop").await.unwrap().tail.is_empty());
}

/// Many writers on separate connections append at once while a reader asks for `seq > last` over and over: the
/// reader must see every event, each once, in increasing `seq` (a `BIGSERIAL` taken before a slower commit would
/// be skipped forever without the appends' lock).
#[tokio::test]
async fn a_reader_after_last_never_skips_an_event_committed_late() {
    const WRITERS: usize = 6;
    const EACH: usize = 40;
    let schema = TestSchema::create("eventorder").await;
    let store = connect(&schema).await;
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..WRITERS {
        let own = bounded("connect", PostgresStore::connect(schema.url()))
            .await
            .unwrap();
        let lease = lease(&own, &format!("service-{writer}"), "replica-a").await;
        writers.spawn(async move {
            for number in 0..EACH {
                own.append_events(&lease, &[event("tests.updated", number)])
                    .await
                    .expect("append");
            }
        });
    }
    let total = WRITERS * EACH;
    let mut last = 0;
    let mut seen = Vec::new();
    let reading = async {
        loop {
            // Whether every writer had finished before this read: then the read sees everything committed.
            let finished = writers.is_empty();
            let page = store.read_after(last, 1000).await.expect("read");
            if page.is_empty() && finished {
                return;
            }
            for one in page {
                assert!(one.seq > last, "read in seq order");
                last = one.seq;
                seen.push(one.seq);
            }
            while let Some(done) = writers.try_join_next() {
                done.expect("writer");
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), reading)
        .await
        .expect("the writers and the reader finish in time");
    let everything: Vec<u64> = store
        .read_after(0, 10_000)
        .await
        .unwrap()
        .iter()
        .map(|one| one.seq)
        .collect();
    assert_eq!(everything.len(), total);
    assert_eq!(
        seen.len(),
        total,
        "the reader asking for seq > last missed {} events committed after a larger seq",
        total - seen.len()
    );
    assert_eq!(seen, everything);
    assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), total);
}

#[tokio::test]
async fn pruning_keeps_the_recent_events_and_the_latest_of_each_type() {
    let schema = TestSchema::create("eventprune").await;
    let store = connect(&schema).await;
    let shop = lease(&store, "shop", "replica-a").await;
    let cart = lease(&store, "cart", "replica-a").await;
    let status = store
        .append_events(&cart, &[event("system.status", 0)])
        .await
        .unwrap()[0];
    let mut last = 0;
    for number in 0..20 {
        last = store
            .append_events(&shop, &[event("tests.updated", number)])
            .await
            .unwrap()[0];
    }
    let dropped = store.prune(5).await.unwrap();
    let kept: Vec<u64> = store
        .read_after(0, 100)
        .await
        .unwrap()
        .iter()
        .map(|one| one.seq)
        .collect();
    assert_eq!(dropped, 15, "{kept:?}");
    let mut expected = vec![status];
    expected.extend(last - 4..=last);
    assert_eq!(
        kept, expected,
        "cart's only status stays though it is old; the last 5 seqs stay"
    );
    let latest = store.latest_of_each().await.unwrap();
    assert_eq!(
        latest
            .iter()
            .map(|one| (one.service.as_str(), one.kind.as_str(), one.seq))
            .collect::<Vec<_>>(),
        [
            ("cart", "system.status", status),
            ("shop", "tests.updated", last)
        ]
    );
}

#[tokio::test]
async fn an_append_wakes_the_listener_of_another_connection() {
    let schema = TestSchema::create("eventnotify").await;
    let writer = connect(&schema).await;
    let reader = connect(&schema).await;
    let wake = reader.wakeups().await.expect("listen");
    assert!(Arc::ptr_eq(&wake, &reader.wakeups().await.unwrap()));
    // The first permit comes once LISTEN took effect.
    tokio::time::timeout(Duration::from_secs(15), wake.notified())
        .await
        .expect("listening");
    let lease = lease(&writer, "shop", "replica-a").await;
    writer
        .append_events(&lease, &[event("system.status", 1)])
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(15), wake.notified())
        .await
        .expect("the append's NOTIFY arrives");
}

#[tokio::test]
async fn the_memory_log_keeps_the_same_rules() {
    let log = MemoryEventLog::new();
    let lease = Lease {
        service: "shop".to_owned(),
        holder: "this-process".to_owned(),
        epoch: 1,
        expires_at: fixloop_contract::chrono::Utc::now(),
    };
    let wake = log.wakeups().await.unwrap();
    for number in 0..10 {
        log.append_events(&lease, &[event("tests.updated", number)])
            .await
            .unwrap();
    }
    log.append_events(&lease, &[event("system.status", 0)])
        .await
        .unwrap();
    wake.notified().await;
    assert_eq!(log.latest_seq().await.unwrap(), 11);
    assert_eq!(log.read_after(9, 10).await.unwrap().len(), 2);
    assert_eq!(log.prune(3).await.unwrap(), 8);
    let kept: Vec<u64> = log
        .read_after(0, 100)
        .await
        .unwrap()
        .iter()
        .map(|one| one.seq)
        .collect();
    assert_eq!(kept, [9, 10, 11]);
    assert_eq!(log.latest_of_each().await.unwrap().len(), 2);
}
