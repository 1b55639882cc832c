//! The SQLite store works on its own thread: appends made together keep the order they were made in, a close
//! flushes every call made before it, and an error on the store's thread still reaches the caller.

use fixloop_adapters::{SqliteStore, Store, StoreError};

use crate::contract::bounded;
use crate::store_files::sample_entry;

#[test]
fn appends_made_together_on_one_async_thread_keep_their_order_and_close_flushes_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let store = SqliteStore::open(dir.path()).expect("open");
        // 500 appends in flight at once, none awaited before the next is made: each must find the one before it
        // already stored (an append out of order is refused), so they ran in the order they were made.
        let appends: Vec<_> = (1..=500)
            .map(|seq| {
                let store = store.clone();
                async move { store.append("shop", sample_entry(seq)).await }
            })
            .collect();
        let results = bounded("appends", futures_util::future::join_all(appends)).await;
        for (index, result) in results.into_iter().enumerate() {
            result.unwrap_or_else(|error| panic!("append {}: {error}", index + 1));
        }
        // A close made right after more appends, none awaited: it runs after them.
        let more: Vec<_> = (501..=600)
            .map(|seq| {
                let store = store.clone();
                async move { store.append("shop", sample_entry(seq)).await }
            })
            .collect();
        let closing = store.clone();
        let (appended, closed) = bounded(
            "appends and close",
            futures_util::future::join(futures_util::future::join_all(more), async move {
                closing.close().await
            }),
        )
        .await;
        assert!(appended.iter().all(Result::is_ok), "{appended:?}");
        closed.expect("close");
        let error = bounded(
            "append after close",
            store.append("shop", sample_entry(601)),
        )
        .await
        .expect_err("closed");
        assert!(matches!(error, StoreError::Failed { .. }), "{error}");
        assert!(error.to_string().contains("closed"), "{error}");
    });
    let reopened = SqliteStore::open(dir.path()).expect("reopen");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let stored = runtime
        .block_on(bounded("load", reopened.load("shop")))
        .expect("load");
    assert_eq!(
        stored.last_seq(),
        600,
        "every append made before the close is in the file"
    );
    let seqs: Vec<u64> = stored.tail.iter().map(|entry| entry.seq).collect();
    assert_eq!(seqs, (1..=600).collect::<Vec<_>>());
}

#[tokio::test(flavor = "current_thread")]
async fn an_out_of_order_append_is_refused_on_the_stores_thread() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path()).expect("open");
    let error = bounded("append", store.append("shop", sample_entry(2)))
        .await
        .expect_err("seq 2 before 1");
    assert!(
        matches!(
            error,
            StoreError::OutOfOrder {
                last: 0,
                got: 2,
                ..
            }
        ),
        "{error}"
    );
    bounded("close", store.close()).await.expect("close");
}
