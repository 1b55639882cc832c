//! The PostgreSQL store's own guarantees, beyond the shared contract: it reconnects to everything it holds,
//! refuses a schema of a newer version and rows it cannot read, orders racing writers in the database, never
//! shows its password, and fences appends by lease.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fixloop_adapters::{PostgresStore, Store, StoreError};
use fixloop_core::engine::Input;

use crate::contract::bounded;
use crate::contract::store::{entry, snapshot_after, write_a_short_journal_and_close};
use crate::pg::TestSchema;

async fn connect(schema: &TestSchema) -> PostgresStore {
    bounded("connect", PostgresStore::connect(schema.url()))
        .await
        .expect("connect")
}

#[tokio::test]
async fn a_postgres_store_reconnects_to_everything_in_it() {
    let schema = TestSchema::create("reconnect").await;
    let store = connect(&schema).await;
    let snapshot = write_a_short_journal_and_close(&store).await;
    let error = bounded("append", store.append("shop", entry(3, None)))
        .await
        .expect_err("a closed store refuses writes");
    assert!(error.to_string().contains("closed"), "{error}");

    // A second start migrates nothing and finds everything.
    let reconnected = connect(&schema).await;
    let stored = bounded("load", reconnected.load("shop"))
        .await
        .expect("load");
    assert_eq!(stored.snapshot, Some((1, snapshot)));
    assert_eq!(stored.tail, vec![entry(2, None)]);
    assert!(
        Store::stats(&reconnected).is_none(),
        "measured at compaction only"
    );
}

#[tokio::test]
async fn a_postgres_schema_of_a_newer_version_is_refused_and_left_alone() {
    let schema = TestSchema::create("newer").await;
    let store = connect(&schema).await;
    bounded("append", store.append("shop", entry(1, None)))
        .await
        .expect("append");
    bounded("close", store.close()).await.expect("close");
    schema
        .execute("INSERT INTO schema_migrations (version) VALUES (99)")
        .await;
    let error = bounded("connect", PostgresStore::connect(schema.url()))
        .await
        .expect_err("refused");
    assert!(
        matches!(
            error,
            StoreError::NewerVersion {
                found: 99,
                supported: fixloop_adapters::store::POSTGRES_SCHEMA_VERSION,
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("postgres://"), "{error}");
}

#[tokio::test]
async fn a_search_path_without_a_schema_is_refused_with_what_to_do() {
    let schema = TestSchema::create("missing").await;
    let url = schema
        .url()
        .replace(schema.name(), &format!("{}_absent", schema.name()));
    let error = bounded("connect", PostgresStore::connect(&url))
        .await
        .expect_err("refused");
    assert!(
        error.to_string().contains("names no existing schema"),
        "{error}"
    );
}

#[tokio::test]
async fn a_postgres_row_this_build_cannot_read_is_reported_as_corrupt() {
    let schema = TestSchema::create("corrupt").await;
    let store = connect(&schema).await;
    bounded("append", store.append("shop", entry(1, None)))
        .await
        .expect("append");
    schema
        .execute(
            "INSERT INTO journal (service, seq, at, input) VALUES ('shop', 2, '2026-03-14T09:30:00Z', '{\"input\":\"from_the_future\"}')",
        )
        .await;
    let error = bounded("load", store.load("shop"))
        .await
        .expect_err("refused");
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error}");
}

#[tokio::test]
async fn the_password_never_shows_and_an_unreachable_server_fails_in_time() {
    // Port 1 on the loopback refuses at once; the URL carries a password that must not show anywhere.
    let url = "postgres://fixloop:hunter2-secret@127.0.0.1:1/test";
    let started = Instant::now();
    let error = PostgresStore::connect_with(url, Duration::from_secs(2), 2)
        .await
        .expect_err("nothing listens there");
    assert!(started.elapsed() < Duration::from_secs(10), "bounded");
    let text = format!("{error} {error:?}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(
        text.contains("postgres://fixloop@127.0.0.1:1/test"),
        "{text}"
    );
}

#[tokio::test]
async fn racing_writers_never_both_append_one_position() {
    let schema = TestSchema::create("race").await;
    // Two stores (two pools, as two replicas would have) append the same positions at once.
    let first = Arc::new(connect(&schema).await);
    let second = Arc::new(connect(&schema).await);
    let mut won = 0;
    for seq in 1..=40 {
        let (a, b) = tokio::join!(
            first.append("shop", entry(seq, None)),
            second.append("shop", entry(seq, Some(Input::SimulateOn)))
        );
        for result in [&a, &b] {
            if let Err(error) = result {
                assert!(
                    matches!(error, StoreError::OutOfOrder { got, .. } if *got == seq),
                    "{error}"
                );
            }
        }
        assert!(a.is_ok() != b.is_ok(), "exactly one append of {seq} wins");
        won += 1;
    }
    let stored = bounded("load", first.load("shop")).await.expect("load");
    assert_eq!(won, 40);
    assert_eq!(
        stored
            .tail
            .iter()
            .map(|entry| entry.seq)
            .collect::<Vec<_>>(),
        (1..=40).collect::<Vec<_>>(),
        "no gap, no repeat"
    );
}

#[tokio::test]
async fn an_append_after_compaction_emptied_the_journal_still_follows_the_snapshot() {
    let schema = TestSchema::create("emptied").await;
    let store = connect(&schema).await;
    store.set_retention(fixloop_adapters::Retention {
        keep_entries: 0,
        ..fixloop_adapters::Retention::default()
    });
    for seq in 1..=300 {
        bounded("append", store.append("shop", entry(seq, None)))
            .await
            .expect("append");
    }
    for seq in [0, 300] {
        bounded(
            "snapshot",
            store.save_snapshot("shop", seq, snapshot_after(&[])),
        )
        .await
        .expect("save");
    }
    let stats = Store::stats(&store).expect("measured");
    assert_eq!(
        (stats.journal_rows, stats.snapshot_rows),
        (0, 1),
        "compacted to the latest snapshot"
    );
    let error = bounded("append", store.append("shop", entry(1, None)))
        .await
        .expect_err("behind the snapshot");
    assert!(
        matches!(error, StoreError::OutOfOrder { last: 300, .. }),
        "{error}"
    );
    bounded("append", store.append("shop", entry(301, None)))
        .await
        .expect("the entry after the snapshot");
}
