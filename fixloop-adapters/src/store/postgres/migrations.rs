//! The versioned schema: migrations applied in order at start, each once, recorded in `schema_migrations`; a
//! database of a newer version is refused (never downgraded), and replicas starting together migrate one at a
//! time (a transaction-scoped advisory lock).

use super::super::StoreError;
use super::errors::classify;

/// The schema version this build reads and writes: the last migration.
pub const SCHEMA_VERSION: i64 = 10;

/// The first key of the advisory lock migrations take (any constant: "FL" in ASCII); the second is the schema's
/// hash, so stores in different schemas migrate independently.
const MIGRATION_LOCK: i32 = 0x464c;

/// Every migration, by version. Never edit one that shipped: add the next.
const MIGRATIONS: [(i64, &str); 10] = [
    (
        1,
        // The journal and the snapshots, as JSON text (the core's versioned formats, floats round-trip exactly)
        // and times as RFC 3339 text (nanoseconds kept), like the SQLite store.
        "CREATE TABLE journal (
             service TEXT NOT NULL,
             seq BIGINT NOT NULL CHECK (seq > 0),
             at TEXT NOT NULL,
             input TEXT,
             PRIMARY KEY (service, seq)
         );
         CREATE TABLE snapshots (
             service TEXT NOT NULL,
             seq BIGINT NOT NULL CHECK (seq >= 0),
             snapshot TEXT NOT NULL,
             PRIMARY KEY (service, seq)
         );",
    ),
    (
        2,
        // Fencing: a lease per service (its holder, an epoch raised at every takeover, an expiry on the
        // database's clock), and the epoch a fenced append was made under.
        "CREATE TABLE leases (
             service TEXT PRIMARY KEY,
             holder TEXT NOT NULL,
             epoch BIGINT NOT NULL CHECK (epoch > 0),
             expires_at TIMESTAMPTZ NOT NULL
         );
         ALTER TABLE journal ADD COLUMN epoch BIGINT;",
    ),
    (
        3,
        // CI intakes (`POST /api/ci/logs`), as the SQLite store keeps them: the whole intake as JSON text, the
        // fields a list filters or orders by beside it, and the order they were recorded in.
        "CREATE TABLE ci_intakes (
             id TEXT PRIMARY KEY,
             received_at TEXT NOT NULL,
             recorded BIGSERIAL NOT NULL,
             repository TEXT NOT NULL,
             run_id TEXT NOT NULL,
             job TEXT NOT NULL,
             class TEXT NOT NULL,
             document TEXT NOT NULL
         );
         CREATE INDEX ci_intakes_by_time ON ci_intakes (received_at, recorded);",
    ),
    (
        4,
        // The notifications outbox (`store::outbox`), as the SQLite store keeps it: one row per (sink,
        // notification id), in the order enqueued; `outcome` is NULL while the message waits.
        "CREATE TABLE outbox (
             id BIGSERIAL PRIMARY KEY,
             sink TEXT NOT NULL,
             key TEXT NOT NULL,
             notification TEXT NOT NULL,
             enqueued_at TEXT NOT NULL,
             attempts BIGINT NOT NULL,
             next_attempt_at TEXT NOT NULL,
             last_error TEXT,
             outcome TEXT,
             settled_at TEXT,
             UNIQUE (sink, key)
         );
         CREATE INDEX outbox_waiting ON outbox (sink, id) WHERE outcome IS NULL;",
    ),
    (
        5,
        // Server-wide settings (the remediation kill switch), one JSON text per key, shared by every replica.
        "CREATE TABLE settings (
             key TEXT PRIMARY KEY,
             value TEXT NOT NULL
         );",
    ),
    (
        6,
        // Replica heartbeats: each replica's advertised URL, start and latest heartbeat (the database's clock).
        "CREATE TABLE replicas (
             replica_id TEXT PRIMARY KEY,
             url TEXT NOT NULL,
             started_at TIMESTAMPTZ NOT NULL,
             last_seen TIMESTAMPTZ NOT NULL
         );",
    ),
    (
        7,
        // A run's intakes (the self-heal's count of reruns, `GET /api/ci/incidents`).
        "CREATE INDEX ci_intakes_by_run ON ci_intakes (repository, run_id);",
    ),
    (
        8,
        // The WebSocket events of every service in one order (`store::events`): the leader's fenced inserts,
        // serialized so that `seq` order is commit order; every replica reads `seq > last`.
        "CREATE TABLE events (
             seq BIGSERIAL PRIMARY KEY,
             service TEXT NOT NULL,
             at TIMESTAMPTZ NOT NULL,
             kind TEXT NOT NULL,
             payload TEXT NOT NULL,
             epoch BIGINT NOT NULL
         );
         CREATE INDEX events_latest ON events (service, kind, seq);",
    ),
    (
        9,
        // The claims of remediation actions (`store::claims`): one row per (service, proposal, version), the
        // lease holder and epoch that claimed it, inserted only under the service's live lease.
        "CREATE TABLE action_claims (
             service TEXT NOT NULL,
             proposal TEXT NOT NULL,
             version BIGINT NOT NULL,
             action_id TEXT NOT NULL,
             holder TEXT NOT NULL,
             epoch BIGINT NOT NULL CHECK (epoch > 0),
             claimed_at TEXT NOT NULL,
             PRIMARY KEY (service, proposal, version)
         );",
    ),
    (
        10,
        // The outbox's claim per sink (`postgres::outbox`): which store handle (courier) delivers the sink's
        // messages, until when (the database's clock).
        "CREATE TABLE outbox_claims (
             sink TEXT PRIMARY KEY,
             courier TEXT NOT NULL,
             expires_at TIMESTAMPTZ NOT NULL
         );",
    ),
];

/// Brings the schema the connection's `search_path` selects to [`SCHEMA_VERSION`].
///
/// # Errors
///
/// [`StoreError::NewerVersion`] for a schema a newer build wrote (left untouched), [`StoreError::Failed`] when
/// the `search_path` names no existing schema or a statement fails.
pub(super) async fn migrate(
    client: &mut deadpool_postgres::Client,
    location: &str,
) -> Result<(), StoreError> {
    let fail = |error: tokio_postgres::Error| classify(location, &error);
    let transaction = client.transaction().await.map_err(fail)?;
    let schema: Option<String> = transaction
        .query_one("SELECT current_schema()", &[])
        .await
        .map_err(fail)?
        .get(0);
    let Some(schema) = schema else {
        return Err(StoreError::Failed {
            location: location.to_owned(),
            why: "the search_path names no existing schema: create it (CREATE SCHEMA ...) or fix the URL's \
                  options=-csearch_path=..."
                .to_owned(),
        });
    };
    transaction
        .execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))",
            &[&MIGRATION_LOCK, &schema],
        )
        .await
        .map_err(fail)?;
    transaction
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version BIGINT PRIMARY KEY,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             );",
        )
        .await
        .map_err(fail)?;
    let applied: Vec<i64> = transaction
        .query("SELECT version FROM schema_migrations", &[])
        .await
        .map_err(fail)?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let found = applied.iter().copied().max().unwrap_or(0);
    if found > SCHEMA_VERSION {
        // Rolled back now (not when the connection next runs), so the lock and the table are free at once.
        transaction.rollback().await.map_err(fail)?;
        return Err(StoreError::NewerVersion {
            location: location.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    // Every migration the database lacks, not only those above its highest: a version skipped by an earlier
    // build (a gap in the numbers) is applied when a later build brings it.
    for (version, statements) in MIGRATIONS
        .iter()
        .filter(|(version, _)| !applied.contains(version))
    {
        transaction.batch_execute(statements).await.map_err(fail)?;
        transaction
            .execute(
                "INSERT INTO schema_migrations (version) VALUES ($1)",
                &[version],
            )
            .await
            .map_err(fail)?;
        tracing::info!(%location, %schema, version, "store schema migrated");
    }
    transaction.commit().await.map_err(fail)
}
