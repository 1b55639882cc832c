//! The index of CI intakes by (repository, run id), in both stores: SQLite creates it at every open for writing
//! (an older file gains it without a schema version), PostgreSQL in migration 7; and PostgreSQL's migration runner
//! applies every migration a database lacks, so a gap in the numbers (5 and 6 shipping after 7) is harmless; and
//! every store lists its CI runs newest first (`Store::ci_runs`).

use fixloop_adapters::fake::FakeStore;
use fixloop_adapters::{CiIntakeRecord, PostgresStore, SqliteStore, Store};
use fixloop_contract::chrono::TimeDelta;

use crate::contract::bounded;
use crate::pg::TestSchema;

#[tokio::test]
async fn sqlite_creates_the_run_index_at_open_and_a_run_query_uses_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path()).expect("open");
    bounded("close", store.close()).await.expect("close");
    // A file of this schema version without the index (as an earlier build left it) gains it at the next open.
    let path = dir.path().join(fixloop_adapters::store::FILE_NAME);
    {
        let connection = rusqlite::Connection::open(&path).expect("open the file");
        connection
            .execute_batch("DROP INDEX ci_intakes_by_run;")
            .expect("drop the index");
    }
    let store = SqliteStore::open(dir.path()).expect("reopen");
    bounded("close", store.close()).await.expect("close");
    let connection = rusqlite::Connection::open(&path).expect("open the file");
    let plan: String = connection
        .query_row(
            "EXPLAIN QUERY PLAN SELECT id FROM ci_intakes WHERE repository = 'a/b' AND run_id = '1'",
            [],
            |row| row.get(3),
        )
        .expect("query plan");
    assert!(plan.contains("ci_intakes_by_run"), "{plan}");
}

#[tokio::test]
async fn postgres_migration_7_adds_the_run_index() {
    let schema = TestSchema::create("ciindex").await;
    let store = bounded("connect", PostgresStore::connect(schema.url()))
        .await
        .expect("connect");
    bounded("close", store.close()).await.expect("close");
    schema
        .execute(
            "DO $$ BEGIN
                 IF NOT EXISTS (SELECT 1 FROM pg_indexes
                                WHERE schemaname = current_schema() AND indexname = 'ci_intakes_by_run') THEN
                     RAISE EXCEPTION 'ci_intakes_by_run is missing';
                 END IF;
                 IF NOT EXISTS (SELECT 1 FROM schema_migrations WHERE version = 7) THEN
                     RAISE EXCEPTION 'migration 7 is not recorded';
                 END IF;
             END $$;",
        )
        .await;
}

#[tokio::test]
async fn postgres_applies_a_migration_below_the_highest_applied_one() {
    let schema = TestSchema::create("migrationgap").await;
    let store = bounded("connect", PostgresStore::connect(schema.url()))
        .await
        .expect("connect");
    bounded("close", store.close()).await.expect("close");
    // As a database migrated by a build that knew 7 but not 4 would be: 4's table absent, its row too.
    schema
        .execute("DROP TABLE outbox; DELETE FROM schema_migrations WHERE version = 4;")
        .await;
    let store = bounded("reconnect", PostgresStore::connect(schema.url()))
        .await
        .expect("reconnect applies the missing migration");
    bounded("close", store.close()).await.expect("close");
    schema
        .execute(
            "DO $$ BEGIN
                 IF to_regclass('outbox') IS NULL THEN RAISE EXCEPTION 'outbox is missing'; END IF;
                 IF NOT EXISTS (SELECT 1 FROM schema_migrations WHERE version = 4) THEN
                     RAISE EXCEPTION 'migration 4 is not recorded';
                 END IF;
             END $$;",
        )
        .await;
}

/// Intakes of runs 1, 2, then 1 again: run 1 is the newest, then run 2; a limit keeps the newest.
async fn runs_are_listed_newest_first(store: &dyn Store) {
    let at = crate::contract::fixed_now();
    for (n, run_id) in ["1", "2", "1"].into_iter().enumerate() {
        let record = CiIntakeRecord {
            id: format!("ci-{n}"),
            received_at: at + TimeDelta::seconds(i64::try_from(n).unwrap()),
            repository: "acme/shop".to_owned(),
            run_id: run_id.to_owned(),
            job: "test".to_owned(),
            class: "network".to_owned(),
            document: "{}".to_owned(),
        };
        bounded("record", store.record_ci_intake(record))
            .await
            .expect("record");
    }
    let run = |id: &str| ("acme/shop".to_owned(), id.to_owned());
    let runs = bounded("runs", store.ci_runs(10)).await.expect("runs");
    assert_eq!(runs, [run("1"), run("2")]);
    let runs = bounded("runs", store.ci_runs(1)).await.expect("runs");
    assert_eq!(runs, [run("1")]);
}

#[tokio::test]
async fn every_store_lists_its_ci_runs_newest_first() {
    runs_are_listed_newest_first(&FakeStore::new()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = SqliteStore::open(dir.path()).expect("open");
    runs_are_listed_newest_first(&sqlite).await;
    let schema = TestSchema::create("ciruns").await;
    let postgres = bounded("connect", PostgresStore::connect(schema.url()))
        .await
        .expect("connect");
    runs_are_listed_newest_first(&postgres).await;
}
