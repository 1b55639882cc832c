//! Fencing on PostgreSQL (the groundwork of replicas): a lease per service with an epoch raised at every takeover,
//! and appends the database refuses once the lease they carry is no longer the live one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fixloop_adapters::{
    Leases, PostgresStore, ReplicaBeat, SoleLeases, SqliteStore, Store, StoreError,
};
use fixloop_contract::chrono::Utc;

use crate::contract::bounded;
use crate::contract::store::{entry, snapshot_after};
use crate::pg::TestSchema;

const MINUTE: Duration = Duration::from_secs(60);

async fn connect(schema: &TestSchema) -> PostgresStore {
    bounded("connect", PostgresStore::connect(schema.url()))
        .await
        .expect("connect")
}

#[tokio::test]
async fn a_live_lease_is_exclusive_and_a_takeover_raises_the_epoch() {
    let schema = TestSchema::create("lease").await;
    let store = connect(&schema).await;
    let first = bounded("acquire", store.acquire_lease("shop", "replica-a", MINUTE))
        .await
        .expect("acquire")
        .expect("free");
    assert_eq!((first.holder.as_str(), first.epoch), ("replica-a", 1));
    for holder in ["replica-b", "replica-a"] {
        assert_eq!(
            bounded("acquire", store.acquire_lease("shop", holder, MINUTE))
                .await
                .expect("acquire"),
            None,
            "{holder} cannot take a live lease"
        );
    }
    let renewed = bounded("renew", store.renew_lease(&first, MINUTE))
        .await
        .expect("renew")
        .expect("still held");
    assert_eq!(renewed.epoch, 1, "a renewal keeps the epoch");
    assert!(
        bounded("release", store.release_lease(&renewed))
            .await
            .expect("release")
    );
    let second = bounded("acquire", store.acquire_lease("shop", "replica-b", MINUTE))
        .await
        .expect("acquire")
        .expect("released");
    assert_eq!((second.holder.as_str(), second.epoch), ("replica-b", 2));
    assert_eq!(
        bounded("renew", store.renew_lease(&first, MINUTE))
            .await
            .expect("renew"),
        None,
        "the old holder cannot renew"
    );
    // Another service's lease is its own.
    let other = bounded("acquire", store.acquire_lease("east", "replica-a", MINUTE))
        .await
        .expect("acquire")
        .expect("free");
    assert_eq!(other.epoch, 1);
}

#[tokio::test]
async fn one_renewal_round_renews_every_lease_still_held_and_says_which_are_lost() {
    let schema = TestSchema::create("renewall").await;
    let store = connect(&schema).await;
    let mut held = Vec::new();
    for service in ["east", "west", "north", "south"] {
        held.push(
            bounded("acquire", store.acquire_lease(service, "replica-a", MINUTE))
                .await
                .expect("acquire")
                .expect("free"),
        );
    }
    // West is taken over (released, then won by B in epoch 2); north lapses by itself.
    assert!(
        bounded("release", store.release_lease(&held[1]))
            .await
            .expect("release")
    );
    let west = bounded("acquire", store.acquire_lease("west", "replica-b", MINUTE))
        .await
        .expect("acquire")
        .expect("released");
    assert_eq!(west.epoch, 2);
    let short = bounded(
        "renew",
        store.renew_lease(&held[2], Duration::from_millis(1)),
    )
    .await
    .expect("renew")
    .expect("held");
    held[2] = short;
    let started = Instant::now();
    while bounded(
        "held",
        store.renew_lease(&held[2], Duration::from_millis(1)),
    )
    .await
    .expect("renew")
    .is_some()
    {
        assert!(started.elapsed() < MINUTE, "a 1 ms lease lapses");
    }
    let renewed = bounded("renew all", Leases::renew_all(&store, &held, MINUTE))
        .await
        .expect("renewed");
    let answers: Vec<Option<(&str, u64)>> = renewed
        .iter()
        .map(|lease| {
            lease
                .as_ref()
                .map(|lease| (lease.service.as_str(), lease.epoch))
        })
        .collect();
    assert_eq!(
        answers,
        [Some(("east", 1)), None, None, Some(("south", 1))],
        "in the order asked: the held ones renewed in their epoch, the taken and the lapsed ones lost"
    );
    assert!(
        renewed[0].as_ref().expect("east").expires_at > held[0].expires_at,
        "the renewal moved the expiry"
    );
    assert_eq!(
        bounded("renew all", Leases::renew_all(&store, &[], MINUTE))
            .await
            .expect("nothing to renew"),
        Vec::new()
    );
    // B's lease is untouched by A's round: still B's, epoch 2.
    let again = bounded("renew", store.renew_lease(&west, MINUTE))
        .await
        .expect("renew");
    assert_eq!(again.map(|lease| lease.epoch), Some(2));
}

#[tokio::test]
async fn a_stale_epoch_cannot_append() {
    let schema = TestSchema::create("fenced").await;
    let store = connect(&schema).await;
    let old = bounded("acquire", store.acquire_lease("shop", "replica-a", MINUTE))
        .await
        .expect("acquire")
        .expect("free");
    bounded("append", store.append_fenced(&old, entry(1, None)))
        .await
        .expect("the leader appends");
    bounded("release", store.release_lease(&old))
        .await
        .expect("release");
    let new = bounded("acquire", store.acquire_lease("shop", "replica-b", MINUTE))
        .await
        .expect("acquire")
        .expect("released");
    let error = bounded("append", store.append_fenced(&old, entry(2, None)))
        .await
        .expect_err("fenced");
    assert!(
        matches!(error, StoreError::Fenced { epoch: 1, .. }),
        "{error}"
    );
    bounded("append", store.append_fenced(&new, entry(2, None)))
        .await
        .expect("the new leader continues the journal");
    let error = bounded("append", store.append_fenced(&new, entry(4, None)))
        .await
        .expect_err("a gap");
    assert!(
        matches!(
            error,
            StoreError::OutOfOrder {
                last: 2,
                got: 4,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(
        bounded("epochs", store.epochs("shop")).await.expect("read"),
        vec![(1, Some(1)), (2, Some(2))],
        "each entry records the epoch it was appended under"
    );
}

#[tokio::test]
async fn a_lapsed_lease_cannot_append_and_can_be_taken_over() {
    let schema = TestSchema::create("lapsed").await;
    let store = connect(&schema).await;
    let short = Duration::from_millis(200);
    let old = bounded("acquire", store.acquire_lease("shop", "replica-a", short))
        .await
        .expect("acquire")
        .expect("free");
    // Poll until the lease lapses on the database's clock and another holder takes it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let new = loop {
        if let Some(lease) = store
            .acquire_lease("shop", "replica-b", MINUTE)
            .await
            .expect("acquire")
        {
            break lease;
        }
        assert!(Instant::now() < deadline, "the lease never lapsed");
        tokio::task::yield_now().await;
    };
    assert_eq!(new.epoch, old.epoch + 1);
    let error = bounded("append", store.append_fenced(&old, entry(1, None)))
        .await
        .expect_err("lapsed");
    assert!(matches!(error, StoreError::Fenced { .. }), "{error}");
    assert!(
        bounded("load", store.load("shop"))
            .await
            .expect("load")
            .tail
            .is_empty(),
        "nothing written"
    );
}

#[tokio::test]
async fn two_replicas_racing_a_takeover_never_both_append_in_one_epoch() {
    let schema = TestSchema::create("takeover").await;
    let a = Arc::new(connect(&schema).await);
    let b = Arc::new(connect(&schema).await);
    let mut lease = bounded("acquire", a.acquire_lease("shop", "replica-a", MINUTE))
        .await
        .expect("acquire")
        .expect("free");
    let mut stale = lease.clone();
    let mut next = 1;
    // Each round: the leader's append races the old leader's append of the same position and a takeover by the
    // other replica; whatever the interleaving, every stored entry carries the epoch live when it was written.
    for round in 0..20 {
        let (leader, other) = if round % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let holder = if round % 2 == 0 {
            "replica-b"
        } else {
            "replica-a"
        };
        let (current, old) = tokio::join!(
            leader.append_fenced(&lease, entry(next, None)),
            other.append_fenced(&stale, entry(next, None)),
        );
        assert!(current.is_ok() || matches!(current, Err(StoreError::OutOfOrder { .. })));
        if round > 0 {
            assert!(
                matches!(old, Err(StoreError::Fenced { .. })),
                "round {round}: the stale epoch {} wrote",
                stale.epoch
            );
        }
        next = 1 + a.load("shop").await.expect("load").last_seq();
        let released = leader.release_lease(&lease).await.expect("release");
        assert!(released);
        stale = lease;
        lease = other
            .acquire_lease("shop", holder, MINUTE)
            .await
            .expect("acquire")
            .expect("released");
    }
    let epochs = a.epochs("shop").await.expect("epochs");
    let mut seen = std::collections::BTreeMap::new();
    for (seq, epoch) in &epochs {
        let epoch = epoch.expect("every entry fenced");
        assert!(
            seen.insert(*seq, epoch).is_none(),
            "one entry per seq: {epochs:?}"
        );
    }
    let ordered: Vec<u64> = seen.values().copied().collect();
    assert!(
        ordered.windows(2).all(|pair| pair[0] <= pair[1]),
        "epochs never go back: {ordered:?}"
    );
    assert_eq!(seen.len(), 20, "one entry per round");
    let _ = Store::close(&*a).await;
}

#[tokio::test]
async fn a_stale_epoch_cannot_save_a_snapshot_and_the_live_one_can() {
    let schema = TestSchema::create("fencedsnap").await;
    let store = connect(&schema).await;
    let leases: &dyn Leases = &store;
    assert!(
        leases.shared(),
        "PostgreSQL leases are shared by every replica"
    );
    let old = bounded("acquire", leases.acquire("shop", "replica-a", MINUTE))
        .await
        .expect("acquire")
        .expect("free");
    bounded("append", leases.append_fenced(&old, entry(1, None)))
        .await
        .expect("the leader appends");
    bounded("release", leases.release(&old))
        .await
        .expect("release");
    let new = bounded("acquire", leases.acquire("shop", "replica-b", MINUTE))
        .await
        .expect("acquire")
        .expect("released");
    let error = bounded(
        "snapshot",
        leases.save_snapshot_fenced(&old, 1, snapshot_after(&[])),
    )
    .await
    .expect_err("fenced");
    assert!(
        matches!(error, StoreError::Fenced { epoch: 1, .. }),
        "{error}"
    );
    assert_eq!(
        bounded("load", store.load("shop"))
            .await
            .expect("load")
            .snapshot,
        None,
        "the stale leader wrote no snapshot"
    );
    bounded(
        "snapshot",
        leases.save_snapshot_fenced(&new, 1, snapshot_after(&[])),
    )
    .await
    .expect("the live lease saves");
    assert_eq!(
        bounded("load", store.load("shop"))
            .await
            .expect("load")
            .snapshot
            .map(|(seq, _)| seq),
        Some(1)
    );
}

#[tokio::test]
async fn sole_leases_always_lead_in_epoch_one_and_write_the_plain_store() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().expect("memory store"));
    let leases = SoleLeases::new(Arc::clone(&store));
    assert!(!leases.shared());
    let lease = leases
        .acquire("shop", "this-process", MINUTE)
        .await
        .expect("acquire")
        .expect("always the leader");
    assert_eq!(lease.epoch, SoleLeases::EPOCH);
    assert_eq!(
        leases
            .acquire("shop", "another", MINUTE)
            .await
            .expect("acquire")
            .map(|lease| lease.epoch),
        Some(1),
        "nobody else shares the store: every acquire leads"
    );
    assert_eq!(
        leases.renew(&lease, MINUTE).await.expect("renew"),
        Some(lease.clone())
    );
    leases
        .save_snapshot_fenced(&lease, 0, snapshot_after(&[]))
        .await
        .expect("snapshot");
    leases
        .append_fenced(&lease, entry(1, None))
        .await
        .expect("append");
    let error = leases
        .append_fenced(&lease, entry(3, None))
        .await
        .expect_err("a gap");
    assert!(matches!(error, StoreError::OutOfOrder { .. }), "{error}");
    assert_eq!(store.load("shop").await.expect("load").last_seq(), 1);
    assert!(leases.release(&lease).await.expect("release"));
    // Alone: one live replica (itself), and no shared replica list.
    let beat = ReplicaBeat {
        replica: "this-process".to_owned(),
        url: "http://127.0.0.1:8000".to_owned(),
        started_at: Utc::now(),
    };
    assert_eq!(leases.heartbeat(&beat, MINUTE).await.expect("heartbeat"), 1);
    assert_eq!(leases.replicas(MINUTE).await.expect("replicas"), vec![]);
    leases.depart("this-process").await.expect("depart");
}

fn beat(replica: &str) -> ReplicaBeat {
    ReplicaBeat {
        replica: replica.to_owned(),
        url: format!("http://{replica}.test:8000"),
        started_at: Utc::now(),
    }
}

#[tokio::test]
async fn heartbeats_count_the_live_replicas_and_list_each_with_its_live_leases() {
    let schema = TestSchema::create("beats").await;
    let store = connect(&schema).await;
    assert_eq!(
        bounded("heartbeat", store.heartbeat(&beat("replica-a"), MINUTE))
            .await
            .expect("heartbeat"),
        1
    );
    assert_eq!(
        bounded("heartbeat", store.heartbeat(&beat("replica-b"), MINUTE))
            .await
            .expect("heartbeat"),
        2
    );
    // A heartbeat again is an update, not another replica.
    let again = ReplicaBeat {
        url: "http://moved.test:9000".to_owned(),
        ..beat("replica-a")
    };
    assert_eq!(
        bounded("heartbeat", store.heartbeat(&again, MINUTE))
            .await
            .expect("heartbeat"),
        2
    );
    let lease = bounded("acquire", store.acquire_lease("shop", "replica-a", MINUTE))
        .await
        .expect("acquire")
        .expect("free");
    let released = bounded("acquire", store.acquire_lease("east", "replica-b", MINUTE))
        .await
        .expect("acquire")
        .expect("free");
    bounded("release", store.release_lease(&released))
        .await
        .expect("release");
    let replicas = bounded("replicas", Leases::replicas(&store, MINUTE))
        .await
        .expect("replicas");
    let summary: Vec<(&str, &str, Vec<&str>)> = replicas
        .iter()
        .map(|record| {
            (
                record.replica.as_str(),
                record.url.as_str(),
                record
                    .leads
                    .iter()
                    .map(|lease| lease.service.as_str())
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("replica-a", "http://moved.test:9000", vec!["shop"]),
            ("replica-b", "http://replica-b.test:8000", vec![]),
        ],
        "a released lease is not led"
    );
    assert_eq!(replicas[0].leads, vec![lease]);

    // A departed replica is gone at once; one not seen within the window is not live.
    bounded("depart", store.depart("replica-b"))
        .await
        .expect("depart");
    schema
        .execute("UPDATE replicas SET last_seen = last_seen - interval '2 minutes' WHERE replica_id = 'replica-a'")
        .await;
    assert_eq!(
        bounded("heartbeat", store.heartbeat(&beat("replica-c"), MINUTE))
            .await
            .expect("heartbeat"),
        1,
        "only replica-c is live"
    );
    let live = bounded("replicas", Leases::replicas(&store, MINUTE))
        .await
        .expect("replicas");
    assert_eq!(
        live.iter()
            .map(|record| record.replica.as_str())
            .collect::<Vec<_>>(),
        vec!["replica-c"]
    );
}
