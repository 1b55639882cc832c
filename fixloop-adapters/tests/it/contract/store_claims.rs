//! The `Store::claim_action` contract (fenced remediation actions, issue 24), for every store: an action is claimed
//! once per (service, proposal, version), and a claim under a stale epoch is refused with nothing written. On
//! PostgreSQL the epochs are real leases taken over in the database; on the stores no other process shares
//! (SQLite, the fake) a stale epoch is one older than the newest the service's claims carry.
//!
//! Beyond the contract, on PostgreSQL: two replicas (two store handles, the second taking the lease over while the
//! first still claims) can never both claim one action.

use std::sync::Arc;
use std::time::Duration;

use fixloop_adapters::fake::FakeStore;
use fixloop_adapters::{
    ActionClaim, Claimed, Lease, PostgresStore, SoleLeases, SqliteStore, Store, StoreError,
};
use fixloop_contract::chrono::DateTime;
use tokio::sync::Mutex;

use super::{bounded, fixed_now};
use crate::pg::TestSchema;

const SERVICE: &str = "shop";

/// Who leads `SERVICE`, as each kind of store knows it.
enum Leasing {
    /// PostgreSQL's leases: each takeover releases the service's previous lease and takes a new one (a new
    /// epoch).
    Postgres {
        store: PostgresStore,
        live: Mutex<std::collections::HashMap<String, Lease>>,
    },
    /// A store no other process shares: each takeover is the next epoch.
    Sole { next: Mutex<u64> },
}

impl Leasing {
    /// `holder` takes `service`'s lease over: a newer epoch than every lease before.
    async fn take_over(&self, service: &str, holder: &str) -> Lease {
        match self {
            Self::Postgres { store, live } => {
                let mut live = live.lock().await;
                if let Some(lease) = live.remove(service) {
                    bounded("release", store.release_lease(&lease))
                        .await
                        .expect("release");
                }
                let lease = bounded(
                    "acquire",
                    store.acquire_lease(service, holder, Duration::from_secs(60)),
                )
                .await
                .expect("acquire")
                .expect("a released lease is free");
                live.insert(service.to_owned(), lease.clone());
                lease
            }
            Self::Sole { next } => {
                let mut next = next.lock().await;
                *next += 1;
                Lease {
                    service: service.to_owned(),
                    holder: holder.to_owned(),
                    epoch: *next,
                    expires_at: DateTime::<fixloop_contract::chrono::Utc>::MAX_UTC,
                }
            }
        }
    }
}

fn claim(proposal: &str, version: u64) -> ActionClaim {
    ActionClaim {
        proposal: proposal.to_owned(),
        version,
        action_id: "flag-off".to_owned(),
        at: fixed_now(),
    }
}

async fn claim_as(
    store: &dyn Store,
    lease: &Lease,
    proposal: &str,
    version: u64,
) -> Result<Claimed, StoreError> {
    bounded(
        "claim",
        store.claim_action(lease, &claim(proposal, version)),
    )
    .await
}

async fn an_action_is_claimed_once(store: Arc<dyn Store>, leasing: Leasing) {
    let lease = leasing.take_over(SERVICE, "replica-a").await;
    assert_eq!(
        claim_as(&*store, &lease, "prop-1", 3).await.expect("claim"),
        Claimed::Claimed
    );
    let taken = Claimed::Taken {
        holder: "replica-a".to_owned(),
        epoch: lease.epoch,
    };
    assert_eq!(
        claim_as(&*store, &lease, "prop-1", 3).await.expect("claim"),
        taken,
        "the same action again is taken, even by its own holder"
    );
    for (proposal, version) in [("prop-1", 4), ("prop-2", 3)] {
        assert_eq!(
            claim_as(&*store, &lease, proposal, version)
                .await
                .expect("claim"),
            Claimed::Claimed,
            "{proposal} v{version} is another action"
        );
    }
}

async fn a_stale_epoch_is_refused_and_writes_nothing(store: Arc<dyn Store>, leasing: Leasing) {
    let old = leasing.take_over(SERVICE, "replica-a").await;
    assert_eq!(
        claim_as(&*store, &old, "prop-1", 2).await.expect("claim"),
        Claimed::Claimed
    );
    let new = leasing.take_over(SERVICE, "replica-b").await;
    assert!(new.epoch > old.epoch);
    assert_eq!(
        claim_as(&*store, &new, "prop-2", 2).await.expect("claim"),
        Claimed::Claimed
    );
    for proposal in ["prop-3", "prop-1"] {
        let error = claim_as(&*store, &old, proposal, 2)
            .await
            .expect_err("a stale epoch is refused");
        assert!(
            matches!(&error, StoreError::Fenced { service, epoch } if service == SERVICE && *epoch == old.epoch),
            "{error}"
        );
    }
    // Nothing was written by the refused claims: the new leader claims prop-3 itself; prop-1 stays the old one's.
    assert_eq!(
        claim_as(&*store, &new, "prop-3", 2).await.expect("claim"),
        Claimed::Claimed
    );
    assert_eq!(
        claim_as(&*store, &new, "prop-1", 2).await.expect("claim"),
        Claimed::Taken {
            holder: "replica-a".to_owned(),
            epoch: old.epoch
        }
    );
}

async fn services_claim_separately(store: Arc<dyn Store>, leasing: Leasing) {
    let shop = leasing.take_over(SERVICE, "replica-a").await;
    let cart = leasing.take_over("cart", "replica-b").await;
    for lease in [&shop, &cart] {
        assert_eq!(
            claim_as(&*store, lease, "prop-1", 1).await.expect("claim"),
            Claimed::Claimed,
            "{}",
            lease.service
        );
    }
}

async fn check_all(make: impl AsyncFn() -> (Arc<dyn Store>, Leasing)) {
    let (store, leasing) = make().await;
    an_action_is_claimed_once(store, leasing).await;
    let (store, leasing) = make().await;
    a_stale_epoch_is_refused_and_writes_nothing(store, leasing).await;
    let (store, leasing) = make().await;
    services_claim_separately(store, leasing).await;
}

fn sole() -> Leasing {
    Leasing::Sole {
        next: Mutex::new(0),
    }
}

#[tokio::test]
async fn the_fake_store_claims_actions_by_the_contract() {
    check_all(async || (Arc::new(FakeStore::new()) as Arc<dyn Store>, sole())).await;
}

#[tokio::test]
async fn sqlite_claims_actions_by_the_contract() {
    check_all(async || {
        let store = SqliteStore::in_memory().expect("memory store");
        (Arc::new(store) as Arc<dyn Store>, sole())
    })
    .await;
}

#[tokio::test]
async fn a_sqlite_file_keeps_its_claims_across_a_reopen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path()).expect("open");
    let lease = sole().take_over(SERVICE, "this-process").await;
    assert_eq!(
        claim_as(&store, &lease, "prop-1", 1).await.expect("claim"),
        Claimed::Claimed
    );
    bounded("close", store.close()).await.expect("close");
    let reopened = SqliteStore::open(dir.path()).expect("reopen");
    assert_eq!(
        claim_as(&reopened, &lease, "prop-1", 1)
            .await
            .expect("claim"),
        Claimed::Taken {
            holder: "this-process".to_owned(),
            epoch: SoleLeases::EPOCH
        },
        "a restarted process does not run the action again"
    );
}

#[tokio::test]
async fn postgres_claims_actions_by_the_contract() {
    let schemas = std::sync::Mutex::new(Vec::new());
    check_all(async || {
        let schema = TestSchema::create("claims").await;
        let store = bounded("connect", PostgresStore::connect(schema.url()))
            .await
            .expect("connect");
        let leasing = Leasing::Postgres {
            store: store.clone(),
            live: Mutex::default(),
        };
        schemas.lock().expect("not poisoned").push(schema);
        (Arc::new(store) as Arc<dyn Store>, leasing)
    })
    .await;
}

#[tokio::test]
async fn postgres_refuses_a_claim_under_a_lapsed_lease_even_before_a_takeover() {
    let schema = TestSchema::create("claimlapsed").await;
    let store = bounded("connect", PostgresStore::connect(schema.url()))
        .await
        .expect("connect");
    let lease = bounded(
        "acquire",
        store.acquire_lease(SERVICE, "replica-a", Duration::from_secs(60)),
    )
    .await
    .expect("acquire")
    .expect("free");
    schema
        .execute("UPDATE leases SET expires_at = clock_timestamp() - interval '1 second'")
        .await;
    let error = claim_as(&store, &lease, "prop-1", 1)
        .await
        .expect_err("a lapsed lease claims nothing");
    assert!(matches!(error, StoreError::Fenced { .. }), "{error}");
}

/// Two replicas on two store handles: replica A claims actions under a lease that lapses at some point of each
/// round, while replica B waits for it to lapse, takes the service over and claims the same actions. Whatever the
/// interleaving, each action is claimed by exactly one of them; A's refusals are fenced, B's are taken.
#[tokio::test]
async fn two_replicas_never_both_claim_one_action() {
    let schema = TestSchema::create("claimrace").await;
    let replica_a = bounded("connect", PostgresStore::connect(schema.url()))
        .await
        .expect("connect");
    let replica_b = bounded("connect", PostgresStore::connect(schema.url()))
        .await
        .expect("connect");
    for round in 0..12_u64 {
        let service = format!("shop-{round}");
        // A lease that lapses after 0 to 55 ms: A's claims land before, during or after B's takeover.
        let ttl = Duration::from_millis(round * 5);
        let lease_a = bounded("acquire", replica_a.acquire_lease(&service, "a", ttl))
            .await
            .expect("acquire")
            .expect("free");
        let a = async {
            let mut answers = Vec::new();
            for version in 1..=4 {
                let claim = claim("prop-1", version);
                answers.push(
                    bounded("claim", replica_a.claim_action(&lease_a, &claim))
                        .await
                        .map_err(|error| error.to_string()),
                );
            }
            answers
        };
        let b = async {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            let mut tick = tokio::time::interval(Duration::from_millis(2));
            let lease_b = loop {
                tick.tick().await;
                let taken = bounded(
                    "acquire",
                    replica_b.acquire_lease(&service, "b", Duration::from_secs(60)),
                )
                .await
                .expect("acquire");
                if let Some(lease) = taken {
                    break lease;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "A's lease never lapsed"
                );
            };
            let mut answers = Vec::new();
            for version in 1..=4 {
                let claim = claim("prop-1", version);
                answers.push(
                    bounded("claim", replica_b.claim_action(&lease_b, &claim))
                        .await
                        .map_err(|error| error.to_string()),
                );
            }
            answers
        };
        let (by_a, by_b) = tokio::join!(a, b);
        for (index, (a, b)) in by_a.iter().zip(&by_b).enumerate() {
            let claimed = [a, b]
                .iter()
                .filter(|answer| matches!(answer, Ok(Claimed::Claimed)))
                .count();
            assert_eq!(
                claimed,
                1,
                "round {round}, version {}: A {a:?}, B {b:?}",
                index + 1
            );
            if let Err(error) = a {
                assert!(error.contains("no longer held"), "{error}");
            }
            assert!(b.is_ok(), "B leads: never fenced ({b:?})");
        }
    }
}
