//! The journal's costs: appends per second to [`SqliteStore`] (a file in a temp dir, and memory), what an append
//! adds to one engine input (the input alone vs journal-then-input, as the driver does), and the restart time with
//! 1,000 closed incidents in the store (load + restore + replay of the tail after a crash, the latest snapshot alone
//! after a clean shutdown, and a whole replay from the first snapshot as `fixloop replay` does).
//!
//! Run with `cargo bench -p fixloop-adapters --bench journal` (add `-- --quick` for a short run); never run by CI.
//! Building the 1,000-incident journal takes a few seconds before the restart cases start.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_main};
use fixloop_adapters::{JournalEntry, SqliteStore, Store};
use fixloop_contract::TestStatus;
use fixloop_contract::chrono::{DateTime, TimeDelta, Utc};
use fixloop_core::engine::{
    Config, Effect, Engine, IncidentContext, Input, Recorded, RecordedInput, SignalSample,
};
use fixloop_core::{PlanId, rule_plan};
use tokio::runtime::Runtime;

#[path = "../../fixloop-core/tests/fixtures/shop.rs"]
mod shop;

/// Closed incidents in the restart cases' store.
const INCIDENTS: u64 = 1_000;
/// Entries between two snapshots, as the driver saves them (`SNAPSHOT_EVERY` in the server's driver).
const SNAPSHOT_EVERY: u64 = 256;

fn config() -> Config {
    Config::short_windows(shop::shop_spec("http://127.0.0.1:8001"), "bench")
}

fn sample(at: DateTime<Utc>, error_rate: f64) -> Input {
    Input::SignalSampled(SignalSample {
        at,
        error_rate: Some(error_rate),
        p95_latency_ms: Some(120.0),
        top_error: Some("POST /checkout -> 500 payment provider timeout".to_owned()),
        requests: 100,
    })
}

fn drain(engine: &mut Engine) {
    while let Some(effect) = engine.poll_effect() {
        black_box(effect);
    }
}

/// An engine and its journal in a store, fed as the driver feeds them: journal the call, then make it.
struct Journaled<'a> {
    runtime: &'a Runtime,
    store: &'a SqliteStore,
    engine: Engine,
    seq: u64,
    snapshot_seq: u64,
}

impl<'a> Journaled<'a> {
    fn new(runtime: &'a Runtime, store: &'a SqliteStore, now: DateTime<Utc>) -> Self {
        let engine = Engine::new(config(), now);
        let snapshot = engine.snapshot().expect("a fresh engine has no effect");
        runtime
            .block_on(store.save_snapshot("demo-checkout", 0, snapshot))
            .expect("first snapshot");
        Self {
            runtime,
            store,
            engine,
            seq: 0,
            snapshot_seq: 0,
        }
    }

    fn append(&mut self, at: DateTime<Utc>, input: Option<&Input>) {
        self.seq += 1;
        let entry = JournalEntry {
            seq: self.seq,
            at,
            input: input.map(RecordedInput::from),
        };
        self.runtime
            .block_on(self.store.append("demo-checkout", entry))
            .expect("append");
    }

    fn snapshot_now_and_then(&mut self) {
        if self.seq >= self.snapshot_seq + SNAPSHOT_EVERY {
            self.snapshot();
        }
    }

    fn snapshot(&mut self) {
        let snapshot = self.engine.snapshot().expect("drained");
        self.runtime
            .block_on(
                self.store
                    .save_snapshot("demo-checkout", self.seq, snapshot),
            )
            .expect("snapshot");
        self.snapshot_seq = self.seq;
    }

    /// Drives one incident from detection to closed, answering every effect; returns the effects' inputs fed.
    fn incident_cycle(&mut self, now: &mut DateTime<Utc>) {
        let mut pending = vec![sample(*now, 0.3), sample(*now, 0.3)];
        while let Some(input) = pending.pop() {
            *now += TimeDelta::milliseconds(10);
            self.append(*now, Some(&input));
            let _ = self.engine.handle_input(*now, input);
            while let Some(effect) = self.engine.poll_effect() {
                match effect {
                    Effect::FetchContext { effect, .. } => pending.push(Input::ContextFetched {
                        effect,
                        result: Ok(IncidentContext::default()),
                    }),
                    Effect::RequestPlan {
                        effect, context, ..
                    } => pending.push(Input::PlanProposed {
                        effect,
                        plan: rule_plan(&context, PlanId::new("bench"), *now),
                    }),
                    Effect::StartRun { effect, plan, .. } => {
                        pending.push(sample(*now, 0.0));
                        pending.push(sample(*now, 0.0));
                        pending.push(Input::RunFinished {
                            effect,
                            result: Ok(()),
                        });
                        for (item, _) in plan.tests() {
                            pending.push(Input::TestProgressed {
                                effect,
                                test_id: item.test_id.clone(),
                                status: TestStatus::Pass,
                                details: None,
                            });
                        }
                    }
                    other => {
                        black_box(other);
                    }
                }
            }
            self.snapshot_now_and_then();
        }
        // The soak window passes (the incident closes), then the cooldown.
        *now += TimeDelta::seconds(60);
        self.append(*now, None);
        self.engine.handle_timeout(*now);
        drain(&mut self.engine);
        self.snapshot_now_and_then();
        *now += TimeDelta::seconds(60);
    }
}

/// A store in `dir` holding [`INCIDENTS`] closed incidents; with `clean`, a snapshot after the last entry (as a
/// clean shutdown leaves it), else the tail since the last periodic snapshot (as a crash leaves it).
fn build_store(runtime: &Runtime, dir: &Path, clean: bool) -> (u64, u64) {
    let store = SqliteStore::open(dir).expect("store");
    let mut now = DateTime::UNIX_EPOCH;
    let mut journaled = Journaled::new(runtime, &store, now);
    for _ in 0..INCIDENTS {
        journaled.incident_cycle(&mut now);
    }
    // A few healthy samples, so that a crash leaves a tail to replay.
    for _ in 0..100 {
        now += TimeDelta::seconds(1);
        let input = sample(now, 0.0);
        journaled.append(now, Some(&input));
        let _ = journaled.engine.handle_input(now, input);
        drain(&mut journaled.engine);
    }
    if clean {
        journaled.snapshot();
    }
    let (seq, snapshot_seq) = (journaled.seq, journaled.snapshot_seq);
    assert!(
        journaled
            .engine
            .has_incident(&fixloop_core::IncidentId::new(format!(
                "inc-bench-{INCIDENTS}"
            ))),
        "the journal holds {INCIDENTS} incidents"
    );
    runtime.block_on(store.close()).expect("close");
    (seq, seq - snapshot_seq)
}

/// What a restart does: load the latest snapshot and the tail, restore, replay the tail.
fn restart(runtime: &Runtime, store: &SqliteStore) -> Engine {
    let stored = runtime.block_on(store.load("demo-checkout")).expect("load");
    let (_, snapshot) = stored.snapshot.expect("a snapshot");
    let mut engine = Engine::restore(config(), snapshot).expect("restore");
    for entry in stored.tail {
        match entry.input.map(RecordedInput::into_recorded) {
            Some(Recorded::Input(input)) => {
                let _ = engine.handle_input(entry.at, input);
            }
            Some(Recorded::Configured { .. }) => {}
            None => engine.handle_timeout(entry.at),
        }
        drain(&mut engine);
    }
    engine
}

/// What `fixloop replay` does: the first snapshot and every entry, fed through a restored engine.
fn whole_replay(runtime: &Runtime, store: &SqliteStore) -> Engine {
    let (first, entries) = runtime
        .block_on(store.history("demo-checkout", 0, usize::MAX))
        .expect("history");
    let mut engine = Engine::restore(config(), first.expect("first snapshot").1).expect("restore");
    for entry in entries {
        match entry.input.map(RecordedInput::into_recorded) {
            Some(Recorded::Input(input)) => {
                let _ = engine.handle_input(entry.at, input);
            }
            Some(Recorded::Configured { .. }) => {}
            None => engine.handle_timeout(entry.at),
        }
        drain(&mut engine);
    }
    engine
}

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");

    let mut group = c.benchmark_group("journal");
    group.throughput(Throughput::Elements(1));
    for (name, on_disk) in [("append_file", true), ("append_memory", false)] {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = if on_disk {
            SqliteStore::open(dir.path()).expect("store")
        } else {
            SqliteStore::in_memory().expect("store")
        };
        let mut seq = 0;
        let mut now = DateTime::UNIX_EPOCH;
        group.bench_function(name, |b| {
            b.iter(|| {
                seq += 1;
                now += TimeDelta::seconds(1);
                let entry = JournalEntry {
                    seq,
                    at: now,
                    input: Some(RecordedInput::from(&sample(now, 0.0))),
                };
                runtime
                    .block_on(store.append("demo-checkout", entry))
                    .expect("append");
            });
        });
        runtime.block_on(store.close()).expect("close");
    }

    // One healthy sample: the engine alone, then journaled first (to a file) as the driver does.
    group.bench_function("input_alone", |b| {
        let mut now = DateTime::UNIX_EPOCH;
        let mut engine = Engine::new(config(), now);
        b.iter(|| {
            now += TimeDelta::seconds(1);
            let _ = engine.handle_input(now, sample(now, 0.0));
            drain(&mut engine);
        });
    });
    {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(dir.path()).expect("store");
        let mut now = DateTime::UNIX_EPOCH;
        let mut journaled = Journaled::new(&runtime, &store, now);
        group.bench_function("input_with_append", |b| {
            b.iter(|| {
                now += TimeDelta::seconds(1);
                let input = sample(now, 0.0);
                journaled.append(now, Some(&input));
                let _ = journaled.engine.handle_input(now, input);
                drain(&mut journaled.engine);
            });
        });
        runtime.block_on(store.close()).expect("close");
    }
    group.finish();

    let crashed = tempfile::tempdir().expect("temp dir");
    let clean = tempfile::tempdir().expect("temp dir");
    let (entries, tail) = build_store(&runtime, crashed.path(), false);
    let (_, clean_tail) = build_store(&runtime, clean.path(), true);
    assert_eq!(clean_tail, 0);
    eprintln!(
        "restart store: {INCIDENTS} closed incidents, {entries} entries, a tail of {tail} after a crash"
    );
    let mut group = c.benchmark_group("restart_1000_incidents");
    group.sample_size(10);
    let crashed_store = SqliteStore::open(crashed.path()).expect("store");
    group.bench_function("load_restore_replay_tail", |b| {
        b.iter(|| black_box(restart(&runtime, &crashed_store)));
    });
    let clean_store = SqliteStore::open(clean.path()).expect("store");
    group.bench_function("load_restore_snapshot_only", |b| {
        b.iter(|| black_box(restart(&runtime, &clean_store)));
    });
    group.throughput(Throughput::Elements(entries));
    group.bench_function("whole_replay_from_first_snapshot", |b| {
        b.iter(|| black_box(whole_replay(&runtime, &clean_store)));
    });
    group.finish();
    runtime.block_on(crashed_store.close()).expect("close");
    runtime.block_on(clean_store.close()).expect("close");
}

mod group {
    //! The criterion group, in a module of its own because the macro's function has no doc comment.
    #![allow(missing_docs, unreachable_pub)]
    criterion::criterion_group!(journal, super::benches);
}

criterion_main!(group::journal);
