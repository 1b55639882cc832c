//! The SQLite store's own unit tests.

use std::time::Duration;

use fixloop_contract::chrono::Utc;

use super::*;

#[test]
fn calls_run_on_the_stores_thread_and_leave_the_async_thread_free() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let bounded = Duration::from_secs(10);
        let store = SqliteStore::in_memory().expect("memory");
        let name = store
            .with(|_, _| Ok(std::thread::current().name().map(str::to_owned)))
            .await
            .expect("runs");
        assert_eq!(name.as_deref(), Some(THREAD_NAME));

        // A call holds the store's thread until the async thread releases it (a watchdog releases it after
        // a while, so a store that blocked its caller fails the assertions below instead of hanging).
        let (release, held) = std::sync::mpsc::channel::<()>();
        let watchdog_release = release.clone();
        let (done, finished) = std::sync::mpsc::channel::<()>();
        let watchdog = std::thread::spawn(move || {
            if finished.recv_timeout(bounded).is_err() {
                let _ = watchdog_release.send(());
            }
        });
        let (started, running) = tokio::sync::oneshot::channel::<()>();
        let holder = store.clone();
        let busy = tokio::spawn(async move {
            holder
                .with(move |_, _| {
                    let _ = started.send(());
                    let _ = held.recv();
                    Ok(())
                })
                .await
        });
        tokio::time::timeout(bounded, running)
            .await
            .expect("the call starts in time")
            .expect("started");
        // The append waits behind the held call; meanwhile this thread runs other work.
        let appender = store.clone();
        let append = tokio::spawn(async move {
            appender
                .append(
                    "shop",
                    JournalEntry {
                        seq: 1,
                        at: Utc::now(),
                        input: None,
                    },
                )
                .await
        });
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(
            !append.is_finished() && !busy.is_finished(),
            "the append waits on the store's thread, not on this one"
        );
        release.send(()).expect("release");
        tokio::time::timeout(bounded, busy)
            .await
            .expect("released in time")
            .expect("joined")
            .expect("the held call");
        tokio::time::timeout(bounded, append)
            .await
            .expect("the append ends in time")
            .expect("joined")
            .expect("appended");
        drop(done);
        watchdog.join().expect("watchdog");
    });
}
