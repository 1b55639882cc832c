//! The SQLite store's handling of files it must not trust: every file refused at open (not SQLite, another
//! database, damaged pages, a newer schema, held by another process, empty) is left byte-identical, with the file
//! beside it untouched too; a read-only open reads without writing; and SQLite's full-disk error is reported as
//! such (a tiny `PRAGMA max_page_count` makes the next write fail with `SQLITE_FULL`, as a full disk does).

use std::collections::BTreeMap;
use std::path::Path;

use fixloop_adapters::store::FILE_NAME;
use fixloop_adapters::{JournalEntry, SqliteStore, Store, StoreError};
use fixloop_contract::chrono::TimeDelta;
use fixloop_core::engine::{Input, RecordedInput, SignalSample};

use crate::contract::{bounded, fixed_now};

/// Every file in `dir` with its bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .map(|entry| {
            let entry = entry.expect("dir entry");
            (
                entry.file_name().to_string_lossy().into_owned(),
                std::fs::read(entry.path()).expect("read file"),
            )
        })
        .collect()
}

pub(crate) fn sample_entry(seq: u64) -> JournalEntry {
    let input = Input::SignalSampled(SignalSample {
        at: fixed_now(),
        error_rate: Some(0.25),
        p95_latency_ms: Some(412.0),
        top_error: Some(format!(
            "HTTP 500 POST /checkout: payment provider timeout after 3000 ms (attempt {seq})"
        )),
        requests: 42,
    });
    JournalEntry {
        seq,
        at: fixed_now() + TimeDelta::seconds(i64::try_from(seq).unwrap_or(0)),
        input: Some(RecordedInput::from(&input)),
    }
}

/// A real store of `entries` samples, closed cleanly.
async fn real_store(dir: &Path, entries: u64) {
    let store = SqliteStore::open(dir).expect("open");
    for seq in 1..=entries {
        bounded("append", store.append("shop", sample_entry(seq)))
            .await
            .expect("append");
    }
    bounded("close", store.close()).await.expect("close");
}

/// Opens `dir`, expects a refusal, and checks that nothing in `dir` changed.
fn refused(dir: &Path) -> StoreError {
    let before = files(dir);
    let error = SqliteStore::open(dir).expect_err("refused");
    assert_eq!(
        files(dir),
        before,
        "a refused store is left byte-identical: {error}"
    );
    assert!(
        error.to_string().contains(FILE_NAME),
        "the error names the file: {error}"
    );
    error
}

/// Deterministic pseudo-random bytes (xorshift).
fn noise(len: usize, mut state: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

#[test]
fn a_file_that_is_not_sqlite_is_refused_untouched() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join(FILE_NAME), noise(10_000, 7)).expect("write");
    let error = refused(dir.path());
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error}");
    assert!(
        error.to_string().contains("not an SQLite database"),
        "{error}"
    );
}

#[test]
fn another_sqlite_database_is_refused_untouched() {
    let dir = tempfile::tempdir().expect("temp dir");
    let other = rusqlite::Connection::open(dir.path().join(FILE_NAME)).expect("create");
    other
        .execute_batch(
            "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT); \
             INSERT INTO customers (name) VALUES ('ada'), ('grace');",
        )
        .expect("fill");
    drop(other);
    let error = refused(dir.path());
    assert!(error.to_string().contains("not a FixLoop store"), "{error}");
}

#[test]
fn a_store_of_a_newer_schema_is_refused_untouched() {
    let dir = tempfile::tempdir().expect("temp dir");
    let newer = rusqlite::Connection::open(dir.path().join(FILE_NAME)).expect("create");
    newer
        .execute_batch("PRAGMA user_version = 99; CREATE TABLE journal (x);")
        .expect("set version");
    drop(newer);
    let error = refused(dir.path());
    assert!(
        matches!(error, StoreError::NewerVersion { found: 99, .. }),
        "{error}"
    );
}

#[tokio::test]
async fn a_store_with_damaged_pages_is_refused_untouched() {
    let dir = tempfile::tempdir().expect("temp dir");
    real_store(dir.path(), 4_000).await;
    let path = dir.path().join(FILE_NAME);
    let mut bytes = std::fs::read(&path).expect("read");
    assert!(
        bytes.len() > 256 * 1024,
        "a store of some size: {}",
        bytes.len()
    );
    let middle = bytes.len() / 2;
    bytes[middle..middle + 64 * 1024].copy_from_slice(&noise(64 * 1024, 0x5eed));
    std::fs::write(&path, &bytes).expect("damage");
    let error = refused(dir.path());
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error}");
    let text = error.to_string();
    assert!(text.contains("damaged"), "{text}");
    assert!(text.contains("quick_check"), "{text}");
    assert!(text.contains("backup"), "says what to do: {text}");
}

#[tokio::test]
async fn a_store_held_by_another_process_is_refused_untouched() {
    let dir = tempfile::tempdir().expect("temp dir");
    real_store(dir.path(), 10).await;
    let holder = SqliteStore::open(dir.path()).expect("open");
    bounded("append", holder.append("shop", sample_entry(11)))
        .await
        .expect("append");
    let error = refused(dir.path());
    assert!(matches!(error, StoreError::Locked { .. }), "{error}");
    bounded("close", holder.close()).await.expect("close");
}

#[test]
fn an_empty_file_is_refused_not_made_a_new_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join(FILE_NAME), b"").expect("write");
    let error = refused(dir.path());
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error}");
    let text = error.to_string();
    assert!(text.contains("empty (0 bytes)"), "{text}");
    assert!(text.contains("Move it away"), "says what to do: {text}");
}

#[tokio::test]
async fn a_missing_file_becomes_a_new_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("nested").join("data");
    let store = SqliteStore::open(&data).expect("open");
    bounded("append", store.append("shop", sample_entry(1)))
        .await
        .expect("append");
    bounded("close", store.close()).await.expect("close");
    assert!(data.join(FILE_NAME).exists());
}

#[tokio::test]
async fn a_good_store_passes_the_check_and_reopens() {
    let dir = tempfile::tempdir().expect("temp dir");
    real_store(dir.path(), 300).await;
    let store = SqliteStore::open(dir.path()).expect("reopen");
    let stored = bounded("load", store.load("shop")).await.expect("load");
    assert_eq!(stored.last_seq(), 300);
}

#[tokio::test]
async fn a_read_only_open_reads_a_file_with_its_write_ahead_log_and_changes_neither() {
    let dir = tempfile::tempdir().expect("temp dir");
    real_store(dir.path(), 50).await;
    // Copy of a store as a crash leaves it: the main file and the write-ahead log beside it.
    let live = tempfile::tempdir().expect("temp dir");
    real_store(live.path(), 0).await;
    {
        let store = SqliteStore::open(live.path()).expect("open");
        for seq in 1..=60 {
            bounded("append", store.append("shop", sample_entry(seq)))
                .await
                .expect("append");
        }
        let copy = tempfile::tempdir().expect("temp dir");
        for (name, bytes) in files(live.path()) {
            std::fs::write(copy.path().join(name), bytes).expect("copy");
        }
        let before = files(copy.path());
        assert!(
            before.len() >= 2,
            "a write-ahead log beside the file: {:?}",
            before.keys()
        );
        let reader = SqliteStore::open_read_only(copy.path()).expect("read-only open");
        let stored = bounded("load", reader.load("shop")).await.expect("load");
        assert_eq!(
            stored.last_seq(),
            60,
            "the entries in the write-ahead log are read"
        );
        assert!(
            bounded("append", reader.append("shop", sample_entry(61)))
                .await
                .is_err(),
            "a read-only store refuses writes"
        );
        bounded("close", reader.close()).await.expect("close");
        let after = files(copy.path());
        for (name, bytes) in &before {
            assert_eq!(
                after.get(name),
                Some(bytes),
                "{name} is left byte-identical"
            );
        }
        bounded("close", store.close()).await.expect("close");
    }
}

#[tokio::test]
async fn a_full_disk_is_reported_as_such() {
    let dir = tempfile::tempdir().expect("temp dir");
    real_store(dir.path(), 20).await;
    let store = SqliteStore::open(dir.path()).expect("open");
    // SQLite answers SQLITE_FULL, as on a full disk, once the file may not grow.
    bounded("limit", store.limit_size(64 * 1024))
        .await
        .expect("limit");
    let mut error = None;
    for seq in 21..=2_000 {
        if let Err(failed) = bounded("append", store.append("shop", sample_entry(seq))).await {
            error = Some(failed);
            break;
        }
    }
    let error = error.expect("an append fails once the file is full");
    assert!(matches!(error, StoreError::DiskFull { .. }), "{error}");
    assert!(error.to_string().contains("is full"), "{error}");
}

#[tokio::test]
async fn a_store_left_by_a_crash_opens_with_its_write_ahead_log() {
    let live = tempfile::tempdir().expect("temp dir");
    let copy = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(live.path()).expect("open");
    for seq in 1..=40 {
        bounded("append", store.append("shop", sample_entry(seq)))
            .await
            .expect("append");
    }
    // What a kill -9 leaves: the file and its write-ahead log, never checkpointed.
    for (name, bytes) in files(live.path()) {
        std::fs::write(copy.path().join(name), bytes).expect("copy");
    }
    bounded("close", store.close()).await.expect("close");
    let reopened = SqliteStore::open(copy.path()).expect("reopen after a crash");
    let stored = bounded("load", reopened.load("shop")).await.expect("load");
    assert_eq!(stored.last_seq(), 40);
    bounded("close", reopened.close()).await.expect("close");
}

#[tokio::test]
async fn compaction_keeps_a_bounded_replay_window_behind_the_snapshots() {
    use fixloop_adapters::Retention;
    use fixloop_core::ServiceSpec;
    use fixloop_core::engine::{Config, Engine};

    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path()).expect("open");
    let retention = Retention {
        keep_entries: 1_000,
        ..Retention::default()
    };
    bounded("retention", store.set_retention(retention))
        .await
        .expect("set");
    let engine = Engine::new(
        Config::short_windows(ServiceSpec::new("shop", "http://127.0.0.1:8001"), "s"),
        fixed_now(),
    );
    let snapshot = engine.snapshot().expect("drained");
    bounded("snapshot", store.save_snapshot("shop", 0, snapshot.clone()))
        .await
        .expect("save");
    for seq in 1..=4_000 {
        bounded("append", store.append("shop", sample_entry(seq)))
            .await
            .expect("append");
        if seq % 256 == 0 {
            bounded(
                "snapshot",
                store.save_snapshot("shop", seq, snapshot.clone()),
            )
            .await
            .expect("save");
        }
    }
    let (first, entries) = bounded("history", store.history("shop", 0, usize::MAX))
        .await
        .expect("history");
    let (first_seq, _) = first.expect("a first snapshot is kept");
    assert!(first_seq > 0, "the window moved forward");
    assert_eq!(
        entries.first().map(|entry| entry.seq),
        Some(first_seq + 1),
        "no gap after it"
    );
    assert_eq!(entries.last().map(|entry| entry.seq), Some(4_000));
    assert!(
        4_000 - first_seq <= retention.keep_entries + 256,
        "at most keep_entries behind the latest snapshot, plus the tail: starts at {first_seq}"
    );
    let stored = bounded("load", store.load("shop")).await.expect("load");
    assert_eq!(stored.snapshot.as_ref().map(|(seq, _)| *seq), Some(3_840));
    assert_eq!(stored.last_seq(), 4_000);
    let stats = Store::stats(&store).expect("measured at the latest snapshot");
    assert_eq!(stats.journal_rows, 3_840 - first_seq);
    bounded("close", store.close()).await.expect("close");
}

/// Compaction may delete every journal row up to the latest snapshot (a `keep_entries` below the snapshot spacing,
/// `FIXLOOP_JOURNAL_KEEP_ENTRIES=100` for one): the next append still follows the snapshot, as a restart's
/// `Stored::last_seq` says it must, and an append behind it is refused.
#[tokio::test]
async fn an_append_after_compaction_emptied_the_journal_follows_the_snapshot() {
    let store = SqliteStore::in_memory().expect("store");
    store
        .set_retention(fixloop_adapters::Retention {
            keep_entries: 0,
            ..fixloop_adapters::Retention::default()
        })
        .await
        .expect("retention");
    for seq in 1..=300 {
        bounded("append", store.append("shop", sample_entry(seq)))
            .await
            .expect("append");
    }
    let spec = fixloop_core::ServiceSpec::new("shop", "http://127.0.0.1:8001");
    let fresh = fixloop_core::engine::Engine::new(
        fixloop_core::engine::Config::short_windows(spec, "s"),
        fixed_now(),
    )
    .snapshot()
    .expect("a fresh engine snapshots");
    for seq in [0, 300] {
        bounded("snapshot", store.save_snapshot("shop", seq, fresh.clone()))
            .await
            .expect("save");
    }
    let stats = Store::stats(&store).expect("measured");
    assert_eq!(
        (stats.journal_rows, stats.snapshot_rows),
        (0, 1),
        "compacted to the latest snapshot"
    );
    assert_eq!(
        bounded("load", store.load("shop"))
            .await
            .expect("load")
            .last_seq(),
        300
    );
    let error = bounded("append", store.append("shop", sample_entry(1)))
        .await
        .expect_err("behind the snapshot");
    assert!(
        matches!(error, StoreError::OutOfOrder { last: 300, .. }),
        "{error}"
    );
    bounded("append", store.append("shop", sample_entry(301)))
        .await
        .expect("the entry after the snapshot");
}
