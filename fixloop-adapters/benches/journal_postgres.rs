//! Journal appends on PostgreSQL against SQLite: one writer appending to one service (what one driver does: each
//! append waits for its commit), on the SQLite file, on PostgreSQL, and on PostgreSQL with 8 services appended
//! to at once (what a replica leading several services does; the throughput counts every service's appends).
//!
//! Needs the PostgreSQL of the tests (`FIXLOOP_TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/test`);
//! the bench works in a schema of its own, dropped at the end. Run with
//! `cargo bench -p fixloop-adapters --bench journal_postgres` (add `-- --quick` for a short run); never run by CI.

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_main};
use fixloop_adapters::{JournalEntry, PostgresStore, SqliteStore, Store};
use fixloop_contract::chrono::{DateTime, TimeDelta, Utc};
use fixloop_core::engine::{Input, RecordedInput, SignalSample};
use tokio::runtime::Runtime;

/// Services appended to at once in the concurrent case.
const SERVICES: u64 = 8;

fn entry(seq: u64) -> JournalEntry {
    let at = DateTime::<Utc>::UNIX_EPOCH + TimeDelta::seconds(i64::try_from(seq).unwrap_or(0));
    JournalEntry {
        seq,
        at,
        input: Some(RecordedInput::from(&Input::SignalSampled(SignalSample {
            at,
            error_rate: Some(0.0),
            p95_latency_ms: Some(120.0),
            top_error: Some("POST /checkout -> 500 payment provider timeout".to_owned()),
            requests: 100,
        }))),
    }
}

/// Runs `sql` on the database at `url` (panics with what to start when it is not reachable).
fn admin(runtime: &Runtime, url: &str, sql: &str) {
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "PostgreSQL is not reachable ({error}): start it (`sudo service postgresql start`) or set \
                     FIXLOOP_TEST_DATABASE_URL"
                )
            });
        let driver = tokio::spawn(connection);
        client.batch_execute(sql).await.expect(sql);
        drop(client);
        let _ = driver.await;
    });
}

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let database = std::env::var("FIXLOOP_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let schema = format!("fixloop_bench_{}", std::process::id());
    admin(&runtime, &database, &format!("CREATE SCHEMA \"{schema}\""));
    let separator = if database.contains('?') { '&' } else { '?' };
    let url = format!("{database}{separator}options=-csearch_path%3D{schema}");

    let mut group = c.benchmark_group("journal_backends");
    group.throughput(Throughput::Elements(1));
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).expect("sqlite"));
    let postgres: Arc<dyn Store> = Arc::new(
        runtime
            .block_on(PostgresStore::connect(&url))
            .expect("postgres"),
    );
    for (name, store) in [
        ("append_sqlite_file", &sqlite),
        ("append_postgres", &postgres),
    ] {
        let mut seq = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                seq += 1;
                runtime
                    .block_on(store.append("demo-checkout", entry(seq)))
                    .expect("append");
            });
        });
    }

    group.throughput(Throughput::Elements(SERVICES));
    let mut seq = 0;
    group.bench_function("append_postgres_8_services_at_once", |b| {
        b.iter(|| {
            seq += 1;
            runtime.block_on(async {
                let appends = (0..SERVICES).map(|service| {
                    let store = Arc::clone(&postgres);
                    tokio::spawn(async move {
                        store
                            .append(&format!("service-{service}"), entry(seq))
                            .await
                    })
                });
                for append in futures_util::future::join_all(appends).await {
                    append.expect("joined").expect("append");
                }
            });
        });
    });
    group.finish();
    runtime.block_on(sqlite.close()).expect("close");
    runtime.block_on(postgres.close()).expect("close");
    admin(
        &runtime,
        &database,
        &format!("DROP SCHEMA \"{schema}\" CASCADE"),
    );
}

mod group {
    //! The criterion group, in a module of its own because the macro's function has no doc comment.
    #![allow(missing_docs, unreachable_pub)]
    criterion::criterion_group!(journal_postgres, super::benches);
}

criterion_main!(group::journal_postgres);
