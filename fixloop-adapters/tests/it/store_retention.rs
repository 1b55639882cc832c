//! Retention through real engine snapshots: the replay window keeps the last `keep_incidents` closed incidents and
//! every incident closed within `keep_age` (the union of the two), as far as `keep_entries` allows; and an incident
//! open at the latest snapshot is kept whole, its first input included, whatever the limits say. Every case runs on
//! the SQLite file and on PostgreSQL (one retention, shared by both stores).

use std::sync::Arc;
use std::time::Duration;

use fixloop_adapters::{JournalEntry, PostgresStore, Retention, SqliteStore, Store};
use fixloop_contract::chrono::{DateTime, TimeDelta, Utc};
use fixloop_core::ServiceSpec;
use fixloop_core::engine::{Config, Engine, Input, RecordedInput, Snapshot};

use crate::contract::{bounded, fixed_now};
use crate::pg::TestSchema;
use crate::store_files::sample_entry;

/// Snapshots are saved every this many entries (the server's own cadence).
const SNAPSHOT_EVERY: u64 = 256;

/// The time of entry `seq`: one entry a second.
fn at(seq: u64) -> DateTime<Utc> {
    fixed_now() + TimeDelta::seconds(i64::try_from(seq).unwrap_or(i64::MAX))
}

/// An engine driven through a journal: operator commands open and close incidents; every entry is a timer tick
/// or a command, and a snapshot is saved every [`SNAPSHOT_EVERY`] entries.
struct Journaled {
    engine: Engine,
    store: Arc<dyn Store>,
    seq: u64,
    /// Where the store lives (removed when the test ends).
    _place: Place,
}

/// The store a case runs on.
#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

/// What holds a store's data for the length of a test.
enum Place {
    Directory(#[expect(dead_code, reason = "held to be removed on drop")] tempfile::TempDir),
    Schema(#[expect(dead_code, reason = "held to be dropped on drop")] TestSchema),
}

impl Journaled {
    async fn start(backend: Backend, retention: Retention) -> Self {
        let (store, place): (Arc<dyn Store>, Place) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let store = SqliteStore::open(dir.path()).expect("open");
                bounded("retention", store.set_retention(retention))
                    .await
                    .expect("set");
                (Arc::new(store), Place::Directory(dir))
            }
            Backend::Postgres => {
                let schema = TestSchema::create("retention").await;
                let store = bounded(
                    "connect",
                    PostgresStore::connect(&schema.url_without_fsync()),
                )
                .await
                .expect("connect");
                store.set_retention(retention);
                (Arc::new(store), Place::Schema(schema))
            }
        };
        let engine = Engine::new(
            Config::short_windows(ServiceSpec::new("shop", "http://127.0.0.1:8001"), "s"),
            at(0),
        );
        let journaled = Self {
            engine,
            store,
            seq: 0,
            _place: place,
        };
        journaled.save().await;
        journaled
    }

    fn snapshot(&self) -> Snapshot {
        self.engine.snapshot().expect("drained")
    }

    async fn save(&self) {
        bounded(
            "snapshot",
            self.store.save_snapshot("shop", self.seq, self.snapshot()),
        )
        .await
        .expect("save");
    }

    /// One journal entry: `input` (or a timer tick) at the next second.
    async fn step(&mut self, input: Option<Input>) {
        self.seq += 1;
        let now = at(self.seq);
        let entry = match &input {
            Some(input) => JournalEntry {
                seq: self.seq,
                at: now,
                input: Some(RecordedInput::from(input)),
            },
            // A sample's text, as the journal of a watched service holds them.
            None => JournalEntry {
                at: now,
                ..sample_entry(self.seq)
            },
        };
        match input {
            Some(input) => self.engine.handle_input(now, input).expect("accepted"),
            None => self.engine.handle_timeout(now),
        }
        while self.engine.poll_effect().is_some() {}
        bounded("append", self.store.append("shop", entry))
            .await
            .expect("append");
        if self.seq.is_multiple_of(SNAPSHOT_EVERY) {
            self.save().await;
        }
    }

    /// Entries until `seq`.
    async fn run_until(&mut self, seq: u64) {
        while self.seq < seq {
            self.step(None).await;
        }
    }

    /// Opens an incident at the next entry; returns that entry's seq.
    async fn open_incident(&mut self) -> u64 {
        self.step(Some(Input::SimulateOn)).await;
        assert_ne!(phase(&self.snapshot()), "HEALTHY", "the incident opened");
        self.seq
    }

    async fn close_incident(&mut self) {
        self.step(Some(Input::SimulateOff)).await;
        assert_eq!(phase(&self.snapshot()), "HEALTHY", "the incident closed");
    }

    /// The seq of the first snapshot kept (the replay window's start) and the seq of the first entry after it.
    async fn window(&self) -> (u64, Option<u64>) {
        let (first, entries) = bounded("history", self.store.history("shop", 0, 1))
            .await
            .expect("history");
        let (first_seq, _) = first.expect("a first snapshot is kept");
        (first_seq, entries.first().map(|entry| entry.seq))
    }
}

fn phase(snapshot: &Snapshot) -> String {
    serde_json::to_value(snapshot).expect("json")["phase"]["phase"]
        .as_str()
        .expect("a phase tag")
        .to_owned()
}

/// Five incidents, each open from `400 k + 50` to `400 k + 250` (k = 0..5), one entry a second, then entries to
/// 2,100: the latest snapshot is at 2,048, and snapshots every 256 entries are kept (`keep_entries` of 1,000 or
/// 2,048 space them 256 apart). Returns the seq of each incident's opening entry.
async fn five_incidents(journaled: &mut Journaled) -> Vec<u64> {
    let mut openings = Vec::new();
    for k in 0..5 {
        journaled.run_until(400 * k + 49).await;
        openings.push(journaled.open_incident().await);
        journaled.run_until(400 * k + 249).await;
        journaled.close_incident().await;
    }
    journaled.run_until(2_100).await;
    openings
}

async fn window_after_five_incidents(
    backend: Backend,
    retention: Retention,
) -> (u64, Option<u64>, Vec<u64>) {
    let mut journaled = Journaled::start(backend, retention).await;
    let openings = five_incidents(&mut journaled).await;
    let (start, first_entry) = journaled.window().await;
    bounded("close", journaled.store.close())
        .await
        .expect("close");
    (start, first_entry, openings)
}

#[tokio::test]
async fn the_window_keeps_the_last_closed_incidents_by_count_or_by_age() {
    the_window_keeps_the_last_closed_incidents(Backend::Sqlite).await;
}

#[tokio::test]
async fn on_postgres_the_window_keeps_the_last_closed_incidents_by_count_or_by_age() {
    the_window_keeps_the_last_closed_incidents(Backend::Postgres).await;
}

async fn the_window_keeps_the_last_closed_incidents(backend: Backend) {
    // By age: 1,300 s before the latest snapshot (2,048) is 748, so the window starts at the snapshot of 768 and
    // keeps incidents 2, 3 and 4 (opened at 850, 1,250, 1,650); by count alone it would keep only the last two.
    let (start, first_entry, openings) = window_after_five_incidents(
        backend,
        Retention {
            keep_entries: 2_048,
            keep_incidents: 2,
            keep_age: Duration::from_secs(1_300),
            max_bytes: None,
        },
    )
    .await;
    assert_eq!(start, 768, "the incidents closed within keep_age are kept");
    assert_eq!(first_entry, Some(769), "no gap after the window's start");
    assert!(openings[1] < start && start < openings[2], "{openings:?}");

    // By count: the last four closed incidents reach back before incident 1 opened (450), though keep_age alone
    // would keep only a minute.
    let (start, _, openings) = window_after_five_incidents(
        backend,
        Retention {
            keep_entries: 2_048,
            keep_incidents: 4,
            keep_age: Duration::from_secs(60),
            max_bytes: None,
        },
    )
    .await;
    assert_eq!(start, 256, "the first snapshot after incident 0 closed");
    assert!(openings[0] < start && start < openings[1], "{openings:?}");

    // Neither rule keeps anything beyond keep_entries.
    let (start, _, _) = window_after_five_incidents(
        backend,
        Retention {
            keep_entries: 1_000,
            keep_incidents: 4,
            keep_age: Duration::from_secs(3_000),
            max_bytes: None,
        },
    )
    .await;
    assert_eq!(start, 1_280, "keep_entries bounds both");
}

#[tokio::test]
async fn an_open_incidents_early_entries_survive_compaction() {
    an_open_incident_survives_compaction(Backend::Sqlite).await;
}

#[tokio::test]
async fn on_postgres_an_open_incidents_early_entries_survive_compaction() {
    an_open_incident_survives_compaction(Backend::Postgres).await;
}

async fn an_open_incident_survives_compaction(backend: Backend) {
    let retention = Retention {
        keep_entries: 2_048,
        keep_incidents: 1,
        keep_age: Duration::from_secs(600),
        max_bytes: None,
    };
    let mut journaled = Journaled::start(backend, retention).await;
    // Two incidents closed, then one opened at 2,301 and left open: beyond every limit but the ceiling.
    journaled.run_until(99).await;
    journaled.open_incident().await;
    journaled.run_until(599).await;
    journaled.close_incident().await;
    journaled.run_until(1_099).await;
    journaled.open_incident().await;
    journaled.run_until(1_599).await;
    journaled.close_incident().await;
    journaled.run_until(2_300).await;
    let opening = journaled.open_incident().await;
    journaled.run_until(5_000).await;
    let (start, first_entry) = journaled.window().await;
    assert_eq!(
        start, 2_048,
        "the window starts at the last snapshot before the open incident's first input ({opening}), though \
         keep_entries alone would start it at 2,816"
    );
    assert_eq!(first_entry, Some(2_049));
    let (_, entries) = bounded("history", journaled.store.history("shop", opening - 1, 1))
        .await
        .expect("history");
    assert_eq!(
        entries.first().and_then(|entry| entry.input.clone()),
        Some(RecordedInput::from(&Input::SimulateOn)),
        "the input that opened it is still in the journal"
    );
    // The older incidents were compacted away, and the window holds nothing from before the snapshot.
    let stats = journaled.store.stats().expect("measured");
    assert_eq!(
        stats.journal_rows,
        4_864 - start,
        "rows behind the latest snapshot (4,864)"
    );

    // Held open beyond twice keep_entries (4,096 entries), it loses its oldest entries: the store stays bounded.
    journaled.run_until(6_700).await;
    let (start, _) = journaled.window().await;
    assert_eq!(
        start, 2_560,
        "at most open_incident_entries behind the latest snapshot (6,656)"
    );

    // Closed, the incident is held by the limits again: the window moves past it within keep_entries.
    journaled.close_incident().await;
    journaled.run_until(9_000).await;
    let (start, _) = journaled.window().await;
    assert!(
        start > opening && 8_960 - start <= 2_048,
        "once closed, keep_entries applies: starts at {start}"
    );
}
