//! The `Store` contract: what every store (the SQLite file, SQLite in memory, PostgreSQL, the fake) must do, and
//! the SQLite file's and the PostgreSQL schema's own guarantees (reopening, refusing corrupt, newer or locked
//! stores, racing writers).

use std::sync::Arc;

use fixloop_adapters::fake::FakeStore;
use fixloop_adapters::notifier::{Notification, NotificationKind};
use fixloop_adapters::{
    CiIntakeRecord, JournalEntry, OutboxFailure, OutboxMessage, PostgresStore, SqliteStore, Store,
    StoreError,
};
use fixloop_contract::chrono::{DateTime, TimeDelta, Utc};
use fixloop_core::ServiceSpec;
use fixloop_core::engine::{Config, Engine, Input, RecordedInput, Snapshot};

use super::{bounded, fixed_now};
use crate::pg::TestSchema;

pub(crate) fn snapshot_after(inputs: &[Input]) -> Snapshot {
    let config = Config::short_windows(ServiceSpec::new("shop", "http://127.0.0.1:8001"), "s");
    let mut engine = Engine::new(config, fixed_now());
    for input in inputs {
        engine
            .handle_input(fixed_now(), input.clone())
            .expect("accepted");
        while engine.poll_effect().is_some() {}
    }
    engine.snapshot().expect("drained")
}

pub(crate) fn entry(seq: u64, input: Option<Input>) -> JournalEntry {
    JournalEntry {
        seq,
        at: fixed_now() + TimeDelta::milliseconds(i64::try_from(seq).unwrap_or(0) * 250),
        input: input.as_ref().map(RecordedInput::from),
    }
}

/// Every case, on a fresh store from `make`.
/// Journals `shop`'s entry 1, a snapshot after it and entry 2, then closes the store; returns the snapshot (what a
/// reopened store must load back: the snapshot at 1 and the tail `[2]`).
pub(crate) async fn write_a_short_journal_and_close(store: &dyn Store) -> Snapshot {
    let snapshot = snapshot_after(&[Input::SimulateOn]);
    bounded(
        "append",
        store.append("shop", entry(1, Some(Input::SimulateOn))),
    )
    .await
    .expect("append");
    bounded("snapshot", store.save_snapshot("shop", 1, snapshot.clone()))
        .await
        .expect("save");
    bounded("append", store.append("shop", entry(2, None)))
        .await
        .expect("append");
    bounded("close", store.close()).await.expect("close");
    snapshot
}

async fn check_all(make: impl AsyncFn() -> Arc<dyn Store>) {
    an_unknown_service_loads_empty(make().await).await;
    appended_entries_load_back_in_order(make().await).await;
    an_append_out_of_order_is_refused(make().await).await;
    a_snapshot_covers_the_entries_before_it(make().await).await;
    the_first_and_the_latest_snapshots_are_kept(make().await).await;
    services_have_separate_journals(make().await).await;
    ci_intakes_list_newest_first_up_to_the_limit(make().await).await;
    a_ci_intake_id_is_recorded_once(make().await).await;
    a_setting_is_saved_replaced_and_read_back(make().await).await;
    a_runs_ci_intakes_list_oldest_first_and_only_that_run(make().await).await;
    each_sinks_outbox_hands_out_its_messages_in_order_once(make().await).await;
    a_failed_attempt_keeps_the_message_first_with_its_retry_time(make().await).await;
    a_given_up_message_lets_the_next_one_go(make().await).await;
    a_notification_enqueued_twice_is_kept_once(make().await).await;
}

pub(crate) fn notification(id: &str, kind: NotificationKind, seconds: i64) -> Notification {
    Notification {
        id: id.to_owned(),
        kind,
        service: "shop".to_owned(),
        incident_id: "inc-1".to_owned(),
        summary: format!("message {id}"),
        action_id: (kind == NotificationKind::ActionTaken).then(|| "flag-off".to_owned()),
        links: vec![fixloop_contract::Link {
            label: "incident".to_owned(),
            url: "http://127.0.0.1:8000/incidents/inc-1".to_owned(),
        }],
        at: fixed_now() + TimeDelta::seconds(seconds),
    }
}

/// Queues `message` in `sink`'s outbox; returns whether it was new there.
async fn enqueue(store: &dyn Store, sink: &str, message: &Notification) -> bool {
    bounded("enqueue", store.outbox_enqueue(sink, message))
        .await
        .expect("enqueue")
}

/// The head of `sink`'s outbox (left in place).
async fn next(store: &dyn Store, sink: &str) -> Option<OutboxMessage> {
    bounded("next", store.outbox_next(sink))
        .await
        .expect("next")
}

/// Records a failed first attempt at the message `id`, with `error`: retried at `retry_at`, or given up without.
async fn fail_first_attempt(
    store: &dyn Store,
    id: u64,
    error: &str,
    retry_at: Option<DateTime<Utc>>,
) {
    let failure = OutboxFailure {
        attempts: 1,
        error: error.to_owned(),
        retry_at,
        at: fixed_now(),
    };
    bounded("failed", store.outbox_failed(id, failure))
        .await
        .expect("failed");
}

/// Takes the head of `sink`'s outbox and settles it as delivered; returns its notification's id.
async fn deliver_next(store: &dyn Store, sink: &str) -> Option<String> {
    let message = next(store, sink).await?;
    assert_eq!(message.sink, sink);
    bounded("delivered", store.outbox_delivered(message.id, fixed_now()))
        .await
        .expect("delivered");
    Some(message.notification.id)
}

async fn each_sinks_outbox_hands_out_its_messages_in_order_once(store: Arc<dyn Store>) {
    assert_eq!(next(&*store, "ops").await, None);
    let first = notification("n1", NotificationKind::IncidentOpened, 0);
    for (sink, message) in [
        ("ops", first.clone()),
        ("pager", notification("p1", NotificationKind::Escalated, 1)),
        ("ops", notification("n2", NotificationKind::ActionTaken, 2)),
        ("ops", notification("n3", NotificationKind::Recovered, 3)),
    ] {
        assert!(
            enqueue(&*store, sink, &message).await,
            "{} is new",
            message.id
        );
    }
    let head = next(&*store, "ops").await.expect("a message");
    assert_eq!(
        head.notification, first,
        "the notification reads back whole"
    );
    assert_eq!(
        (head.attempts, head.next_attempt_at),
        (0, first.at),
        "due at once"
    );
    assert_eq!(head.last_error, None);
    assert_eq!(
        next(&*store, "ops").await.map(|m| m.id),
        Some(head.id),
        "reading does not take the message away"
    );
    let mut ops = Vec::new();
    while let Some(id) = deliver_next(&*store, "ops").await {
        ops.push(id);
    }
    assert_eq!(ops, ["n1", "n2", "n3"]);
    assert_eq!(deliver_next(&*store, "pager").await.as_deref(), Some("p1"));
    assert_eq!(deliver_next(&*store, "pager").await, None);
}

async fn a_failed_attempt_keeps_the_message_first_with_its_retry_time(store: Arc<dyn Store>) {
    for message in [
        notification("a", NotificationKind::IncidentOpened, 0),
        notification("b", NotificationKind::Recovered, 1),
    ] {
        enqueue(&*store, "ops", &message).await;
    }
    let head = next(&*store, "ops").await.expect("a message");
    let retry_at = fixed_now() + TimeDelta::seconds(30);
    fail_first_attempt(
        &*store,
        head.id,
        "the sink is unavailable (503)",
        Some(retry_at),
    )
    .await;
    let again = next(&*store, "ops").await.expect("still there");
    assert_eq!(
        again.notification.id, "a",
        "a later message waits behind it"
    );
    assert_eq!(again.attempts, 1);
    assert_eq!(again.next_attempt_at, retry_at);
    assert_eq!(
        again.last_error.as_deref(),
        Some("the sink is unavailable (503)")
    );
}

async fn a_given_up_message_lets_the_next_one_go(store: Arc<dyn Store>) {
    for message in [
        notification("poison", NotificationKind::IncidentOpened, 0),
        notification("next", NotificationKind::Recovered, 1),
    ] {
        enqueue(&*store, "ops", &message).await;
    }
    let head = next(&*store, "ops").await.expect("a message");
    fail_first_attempt(&*store, head.id, "the sink refused the message (400)", None).await;
    assert_eq!(deliver_next(&*store, "ops").await.as_deref(), Some("next"));
    assert_eq!(deliver_next(&*store, "ops").await, None);
}

async fn a_notification_enqueued_twice_is_kept_once(store: Arc<dyn Store>) {
    let message = notification("once", NotificationKind::IncidentOpened, 0);
    assert!(enqueue(&*store, "ops", &message).await);
    assert!(
        !enqueue(&*store, "ops", &message).await,
        "a waiting duplicate is not added"
    );
    assert!(
        enqueue(&*store, "pager", &message).await,
        "another sink gets its own copy"
    );
    assert_eq!(deliver_next(&*store, "ops").await.as_deref(), Some("once"));
    assert!(
        !enqueue(&*store, "ops", &message).await,
        "a delivered duplicate is not added either"
    );
    assert_eq!(deliver_next(&*store, "ops").await, None);
}

fn intake(id: &str, seconds: i64) -> CiIntakeRecord {
    CiIntakeRecord {
        id: id.to_owned(),
        received_at: fixed_now() + TimeDelta::seconds(seconds),
        repository: "acme/shop".to_owned(),
        run_id: format!("run-{id}"),
        job: "test".to_owned(),
        class: "timeout".to_owned(),
        document: format!("{{\"id\":\"{id}\"}}"),
    }
}

async fn ci_intakes_list_newest_first_up_to_the_limit(store: Arc<dyn Store>) {
    assert!(
        bounded("list", store.ci_intakes(10))
            .await
            .expect("list")
            .is_empty()
    );
    for (id, seconds) in [("a", 1), ("b", 3), ("c", 2), ("d", 3)] {
        bounded("record", store.record_ci_intake(intake(id, seconds)))
            .await
            .expect("record");
    }
    let listed = bounded("list", store.ci_intakes(10)).await.expect("list");
    let ids: Vec<&str> = listed.iter().map(|kept| kept.id.as_str()).collect();
    assert_eq!(
        ids,
        ["d", "b", "c", "a"],
        "newest first; a tie: the later recorded first"
    );
    assert_eq!(listed[3], intake("a", 1), "kept whole");
    let two = bounded("list", store.ci_intakes(2)).await.expect("list");
    assert_eq!(two.len(), 2);
}

async fn a_runs_ci_intakes_list_oldest_first_and_only_that_run(store: Arc<dyn Store>) {
    let of_run = |id: &str, seconds: i64, repository: &str, run_id: &str| CiIntakeRecord {
        repository: repository.to_owned(),
        run_id: run_id.to_owned(),
        ..intake(id, seconds)
    };
    for record in [
        of_run("a", 3, "acme/shop", "77"),
        of_run("b", 1, "acme/shop", "77"),
        of_run("other-run", 2, "acme/shop", "78"),
        of_run("other-repository", 2, "acme/api", "77"),
        of_run("c", 3, "acme/shop", "77"),
    ] {
        bounded("record", store.record_ci_intake(record))
            .await
            .expect("record");
    }
    let run = bounded("run", store.ci_run_intakes("acme/shop", "77"))
        .await
        .expect("run");
    let ids: Vec<&str> = run.iter().map(|kept| kept.id.as_str()).collect();
    assert_eq!(
        ids,
        ["b", "a", "c"],
        "oldest first; a tie: the earlier recorded first"
    );
    assert_eq!(run[0], of_run("b", 1, "acme/shop", "77"), "kept whole");
    assert!(
        bounded("run", store.ci_run_intakes("acme/shop", "79"))
            .await
            .expect("run")
            .is_empty()
    );
}

async fn a_ci_intake_id_is_recorded_once(store: Arc<dyn Store>) {
    bounded("record", store.record_ci_intake(intake("x", 0)))
        .await
        .expect("record");
    assert!(
        bounded("record", store.record_ci_intake(intake("x", 5)))
            .await
            .is_err()
    );
    assert_eq!(
        bounded("list", store.ci_intakes(10)).await.expect("list"),
        vec![intake("x", 0)]
    );
}

async fn a_setting_is_saved_replaced_and_read_back(store: Arc<dyn Store>) {
    let read = |key: &'static str| {
        let store = Arc::clone(&store);
        async move { bounded("read", store.setting(key)).await.expect("read") }
    };
    assert_eq!(read("kill_switch").await, None);
    bounded(
        "save",
        store.save_setting("kill_switch", "{\"engaged\":true}"),
    )
    .await
    .expect("save");
    bounded(
        "save",
        store.save_setting("kill_switch", "{\"engaged\":false}"),
    )
    .await
    .expect("replace");
    assert_eq!(
        read("kill_switch").await.as_deref(),
        Some("{\"engaged\":false}")
    );
    assert_eq!(read("other").await, None);
}

async fn an_unknown_service_loads_empty(store: Arc<dyn Store>) {
    let stored = bounded("load", store.load("nobody")).await.expect("load");
    assert_eq!(stored.snapshot, None);
    assert!(stored.tail.is_empty());
    assert_eq!(stored.last_seq(), 0);
}

async fn appended_entries_load_back_in_order(store: Arc<dyn Store>) {
    let entries = [
        entry(1, Some(Input::SimulateOn)),
        entry(2, None),
        entry(
            3,
            Some(Input::SignalSampled(fixloop_core::engine::SignalSample {
                at: fixed_now(),
                error_rate: Some(0.123_456_789_012_345_6),
                p95_latency_ms: Some(f64::NAN),
                top_error: Some("HTTP 500 POST /checkout".to_owned()),
                requests: 42,
            })),
        ),
    ];
    for entry in &entries {
        bounded("append", store.append("shop", entry.clone()))
            .await
            .expect("append");
    }
    let stored = bounded("load", store.load("shop")).await.expect("load");
    assert_eq!(
        stored.tail, entries,
        "entries come back exactly, floats included"
    );
    assert_eq!(stored.last_seq(), 3);
}

async fn an_append_out_of_order_is_refused(store: Arc<dyn Store>) {
    bounded("append", store.append("shop", entry(1, None)))
        .await
        .expect("append");
    for seq in [1, 3] {
        let error = bounded("append", store.append("shop", entry(seq, None)))
            .await
            .expect_err("out of order");
        assert!(
            matches!(error, StoreError::OutOfOrder { last: 1, got, .. } if got == seq),
            "{error}"
        );
    }
}

async fn a_snapshot_covers_the_entries_before_it(store: Arc<dyn Store>) {
    for seq in 1..=4 {
        bounded("append", store.append("shop", entry(seq, None)))
            .await
            .expect("append");
    }
    let snapshot = snapshot_after(&[Input::SimulateOn]);
    bounded("snapshot", store.save_snapshot("shop", 3, snapshot.clone()))
        .await
        .expect("save");
    let stored = bounded("load", store.load("shop")).await.expect("load");
    assert_eq!(stored.snapshot, Some((3, snapshot)));
    assert_eq!(stored.tail, vec![entry(4, None)]);
    assert_eq!(stored.last_seq(), 4);
}

async fn the_first_and_the_latest_snapshots_are_kept(store: Arc<dyn Store>) {
    let first = snapshot_after(&[]);
    let middle = snapshot_after(&[Input::SimulateOn]);
    let latest = snapshot_after(&[Input::SimulateOn, Input::SimulateOff]);
    for seq in 1..=3 {
        bounded("append", store.append("shop", entry(seq, None)))
            .await
            .expect("append");
    }
    for (seq, snapshot) in [(0, &first), (1, &middle), (3, &latest)] {
        bounded(
            "snapshot",
            store.save_snapshot("shop", seq, snapshot.clone()),
        )
        .await
        .expect("save");
    }
    let stored = bounded("load", store.load("shop")).await.expect("load");
    assert_eq!(stored.snapshot, Some((3, latest)));
    assert!(stored.tail.is_empty());
    let (origin, entries) = bounded("history", store.history("shop", 0, 2))
        .await
        .expect("history");
    assert_eq!(
        origin,
        Some((0, first)),
        "a replay starts from the first snapshot"
    );
    assert_eq!(
        entries,
        vec![entry(1, None), entry(2, None)],
        "at most limit entries"
    );
}

async fn services_have_separate_journals(store: Arc<dyn Store>) {
    bounded(
        "append",
        store.append("east", entry(1, Some(Input::SimulateOn))),
    )
    .await
    .expect("append");
    bounded("append", store.append("west", entry(1, None)))
        .await
        .expect("append");
    let east = bounded("load", store.load("east")).await.expect("load");
    let west = bounded("load", store.load("west")).await.expect("load");
    assert_eq!(east.tail, vec![entry(1, Some(Input::SimulateOn))]);
    assert_eq!(west.tail, vec![entry(1, None)]);
}

#[tokio::test]
async fn the_fake_store_keeps_the_contract() {
    check_all(async || Arc::new(FakeStore::new()) as Arc<dyn Store>).await;
}

#[tokio::test]
async fn sqlite_in_memory_keeps_the_contract() {
    check_all(async || Arc::new(SqliteStore::in_memory().expect("memory store")) as Arc<dyn Store>)
        .await;
}

#[tokio::test]
async fn a_sqlite_file_keeps_the_contract() {
    let dirs = std::sync::Mutex::new(Vec::new());
    check_all(async || {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(dir.path()).expect("open");
        dirs.lock().expect("not poisoned").push(dir);
        Arc::new(store) as Arc<dyn Store>
    })
    .await;
}

#[tokio::test]
async fn postgres_keeps_the_contract() {
    let schemas = std::sync::Mutex::new(Vec::new());
    check_all(async || {
        let schema = TestSchema::create("contract").await;
        let store = bounded("connect", PostgresStore::connect(schema.url()))
            .await
            .expect("connect");
        schemas.lock().expect("not poisoned").push(schema);
        Arc::new(store) as Arc<dyn Store>
    })
    .await;
}

#[tokio::test]
async fn a_sqlite_file_reopens_with_everything_in_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path()).expect("open");
    let snapshot = write_a_short_journal_and_close(&store).await;
    assert!(
        bounded("append", store.append("shop", entry(3, None)))
            .await
            .is_err(),
        "a closed store refuses writes"
    );

    let reopened = SqliteStore::open(dir.path()).expect("reopen");
    let stored = bounded("load", reopened.load("shop")).await.expect("load");
    assert_eq!(stored.snapshot, Some((1, snapshot)));
    assert_eq!(stored.tail, vec![entry(2, None)]);
}

#[tokio::test]
async fn ci_intakes_survive_a_reopen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path()).expect("open");
    bounded("record", store.record_ci_intake(intake("kept", 0)))
        .await
        .expect("record");
    bounded("close", store.close()).await.expect("close");
    let reopened = SqliteStore::open(dir.path()).expect("reopen");
    assert_eq!(
        bounded("list", reopened.ci_intakes(10))
            .await
            .expect("list"),
        vec![intake("kept", 0)]
    );
}

#[tokio::test]
async fn the_outbox_survives_a_reopen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path()).expect("open");
    for message in [
        notification("a", NotificationKind::IncidentOpened, 0),
        notification("b", NotificationKind::Recovered, 1),
    ] {
        enqueue(&store, "ops", &message).await;
    }
    assert_eq!(deliver_next(&store, "ops").await.as_deref(), Some("a"));
    bounded("close", store.close()).await.expect("close");
    let reopened = SqliteStore::open(dir.path()).expect("reopen");
    let waiting = next(&reopened, "ops").await.expect("b waits");
    assert_eq!(
        waiting.notification,
        notification("b", NotificationKind::Recovered, 1)
    );
}

#[tokio::test]
async fn a_version_1_store_is_migrated_with_its_journal_kept() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(fixloop_adapters::store::FILE_NAME);
    // The schema of version 1, exactly as that build wrote it, with one entry.
    let old = rusqlite::Connection::open(&path).expect("create");
    old.execute_batch(
        "CREATE TABLE journal (service TEXT NOT NULL, seq INTEGER NOT NULL, at TEXT NOT NULL, input TEXT, \
         PRIMARY KEY (service, seq)) WITHOUT ROWID;
         CREATE TABLE snapshots (service TEXT NOT NULL, seq INTEGER NOT NULL, snapshot TEXT NOT NULL, \
         PRIMARY KEY (service, seq)) WITHOUT ROWID;
         INSERT INTO journal (service, seq, at, input) VALUES ('shop', 1, '2026-03-14T09:30:00+00:00', NULL);
         PRAGMA user_version = 1;",
    )
    .expect("version 1 file");
    drop(old);
    let store = SqliteStore::open(dir.path()).expect("opens and migrates");
    let stored = bounded("load", store.load("shop")).await.expect("load");
    assert_eq!(stored.last_seq(), 1, "the journal is kept");
    bounded("record", store.record_ci_intake(intake("new", 0)))
        .await
        .expect("the new table exists");
    bounded(
        "enqueue",
        store.outbox_enqueue(
            "ops",
            &notification("new", NotificationKind::IncidentOpened, 0),
        ),
    )
    .await
    .expect("the outbox exists");
    bounded("setting", store.save_setting("kill_switch", "{}"))
        .await
        .expect("the settings exist");
    let lease = fixloop_adapters::Lease {
        service: "shop".to_owned(),
        holder: "this-process".to_owned(),
        epoch: 1,
        expires_at: DateTime::<Utc>::MAX_UTC,
    };
    let claim = fixloop_adapters::ActionClaim {
        proposal: "prop-1".to_owned(),
        version: 1,
        action_id: "flag-off".to_owned(),
        at: fixed_now(),
    };
    bounded("claim", store.claim_action(&lease, &claim))
        .await
        .expect("the action claims exist");
    bounded("close", store.close()).await.expect("close");
    let check = rusqlite::Connection::open(&path).expect("open");
    let version: i64 = check
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .expect("version");
    assert_eq!(version, 5);
}

#[tokio::test]
async fn a_second_process_on_the_same_data_directory_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let _first = SqliteStore::open(dir.path()).expect("open");
    let error = SqliteStore::open(dir.path()).expect_err("the file is held");
    assert!(matches!(error, StoreError::Locked { .. }), "{error}");
    assert!(
        error.to_string().contains("in use by another process"),
        "{error}"
    );
}

#[tokio::test]
async fn a_file_that_is_not_a_store_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(fixloop_adapters::store::FILE_NAME);
    std::fs::write(
        &path,
        b"this is not a database, it is a text file of some length",
    )
    .expect("write");
    let error = SqliteStore::open(dir.path()).expect_err("refused");
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error}");
    assert!(
        error.to_string().contains("fixloop.sqlite3"),
        "names the file: {error}"
    );
    assert_eq!(
        std::fs::read(&path).expect("read"),
        b"this is not a database, it is a text file of some length",
        "never reset"
    );
}

#[tokio::test]
async fn another_sqlite_database_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(fixloop_adapters::store::FILE_NAME);
    let other = rusqlite::Connection::open(&path).expect("create");
    other
        .execute_batch("CREATE TABLE customers (id INTEGER PRIMARY KEY);")
        .expect("create table");
    drop(other);
    let error = SqliteStore::open(dir.path()).expect_err("refused");
    assert!(error.to_string().contains("not a FixLoop store"), "{error}");
}

#[tokio::test]
async fn a_store_of_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(fixloop_adapters::store::FILE_NAME);
    let newer = rusqlite::Connection::open(&path).expect("create");
    newer
        .execute_batch("PRAGMA user_version = 99;")
        .expect("set version");
    drop(newer);
    let error = SqliteStore::open(dir.path()).expect_err("refused");
    assert!(
        matches!(
            error,
            StoreError::NewerVersion {
                found: 99,
                supported: 5,
                ..
            }
        ),
        "{error}"
    );
}

#[tokio::test]
async fn a_stored_row_this_build_cannot_read_is_reported_as_corrupt() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path()).expect("open");
    bounded("append", store.append("shop", entry(1, None)))
        .await
        .expect("append");
    bounded("close", store.close()).await.expect("close");
    let tamper = rusqlite::Connection::open(dir.path().join(fixloop_adapters::store::FILE_NAME))
        .expect("open");
    tamper
        .execute(
            "INSERT INTO journal (service, seq, at, input) VALUES ('shop', 2, '2026-03-14T09:30:00Z', '{\"input\":\"from_the_future\"}')",
            [],
        )
        .expect("insert");
    drop(tamper);
    let store = SqliteStore::open(dir.path()).expect("open");
    let error = bounded("load", store.load("shop"))
        .await
        .expect_err("refused");
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error}");
}
