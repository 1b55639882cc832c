//! CI intakes (`POST /api/ci/logs`) in PostgreSQL: recorded once by id, listed newest first.

use fixloop_contract::chrono::{DateTime, SecondsFormat, Utc};

use super::super::{CiIntakeRecord, MAX_CI_RUN_INTAKES, StoreError};
use super::errors::classify;

/// Records `intake`; an id already recorded fails (the primary key), and the first one is kept.
pub(super) async fn record(
    client: &tokio_postgres::Client,
    location: &str,
    intake: &CiIntakeRecord,
) -> Result<(), StoreError> {
    client
        .execute(
            "INSERT INTO ci_intakes (id, received_at, repository, run_id, job, class, document) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &intake.id,
                &intake
                    .received_at
                    .to_rfc3339_opts(SecondsFormat::Micros, true),
                &intake.repository,
                &intake.run_id,
                &intake.job,
                &intake.class,
                &intake.document,
            ],
        )
        .await
        .map_err(|error| classify(location, &error))?;
    Ok(())
}

/// The `limit` most recent intakes, newest first (a tie: the later recorded first).
pub(super) async fn list(
    client: &tokio_postgres::Client,
    location: &str,
    limit: usize,
) -> Result<Vec<CiIntakeRecord>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = client
        .query(
            "SELECT id, received_at, repository, run_id, job, class, document FROM ci_intakes \
             ORDER BY received_at DESC, recorded DESC LIMIT $1",
            &[&limit],
        )
        .await
        .map_err(|error| classify(location, &error))?;
    to_records(location, rows)
}

/// The latest [`MAX_CI_RUN_INTAKES`] intakes of one run, oldest first (a tie: the earlier recorded first).
pub(super) async fn run(
    client: &tokio_postgres::Client,
    location: &str,
    repository: &str,
    run_id: &str,
) -> Result<Vec<CiIntakeRecord>, StoreError> {
    let limit = i64::try_from(MAX_CI_RUN_INTAKES).unwrap_or(i64::MAX);
    let rows = client
        .query(
            "SELECT id, received_at, repository, run_id, job, class, document FROM ci_intakes \
             WHERE repository = $1 AND run_id = $2 ORDER BY received_at DESC, recorded DESC LIMIT $3",
            &[&repository, &run_id, &limit],
        )
        .await
        .map_err(|error| classify(location, &error))?;
    let mut records = to_records(location, rows)?;
    records.reverse();
    Ok(records)
}

/// The `limit` runs with the most recent intakes, newest first (a tie: the later recorded first).
pub(super) async fn runs(
    client: &tokio_postgres::Client,
    location: &str,
    limit: usize,
) -> Result<Vec<(String, String)>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = client
        .query(
            "SELECT repository, run_id FROM ci_intakes GROUP BY repository, run_id \
             ORDER BY max(received_at) DESC, max(recorded) DESC LIMIT $1",
            &[&limit],
        )
        .await
        .map_err(|error| classify(location, &error))?;
    Ok(rows
        .iter()
        .map(|row| (row.get::<_, String>(0), row.get::<_, String>(1)))
        .collect())
}

/// The records of `rows` (`id, received_at, repository, run_id, job, class, document`), in their order.
fn to_records(
    location: &str,
    rows: Vec<tokio_postgres::Row>,
) -> Result<Vec<CiIntakeRecord>, StoreError> {
    rows.into_iter()
        .map(|row| {
            let id: String = row.get(0);
            let received_at: String = row.get(1);
            let received_at = DateTime::parse_from_rfc3339(&received_at)
                .map(|at| at.with_timezone(&Utc))
                .map_err(|error| StoreError::Corrupt {
                    location: location.to_owned(),
                    why: format!("CI intake {id}: bad time {received_at:?}: {error}"),
                })?;
            Ok(CiIntakeRecord {
                id,
                received_at,
                repository: row.get(2),
                run_id: row.get(3),
                job: row.get(4),
                class: row.get(5),
                document: row.get(6),
            })
        })
        .collect()
}
