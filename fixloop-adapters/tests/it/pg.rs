//! A PostgreSQL schema of its own for each test, so tests run in parallel against the machine's PostgreSQL:
//! [`TestSchema::create`] makes a uniquely named schema and an URL whose connections use it (`search_path`), and
//! dropping the guard drops the schema, also when the test panics.
//!
//! The server comes from `FIXLOOP_TEST_DATABASE_URL` (default [`DEFAULT_URL`]). When it cannot be reached the test
//! fails, saying what to start: these tests are never skipped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The test database when `FIXLOOP_TEST_DATABASE_URL` is unset (trust authentication, on every machine of the
/// project and in CI).
pub(crate) const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// How long creating or dropping a schema may take.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(15);

/// The test database's URL.
pub(crate) fn database_url() -> String {
    std::env::var("FIXLOOP_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// A schema that lives as long as the guard.
pub(crate) struct TestSchema {
    name: String,
    admin_url: String,
    url: String,
}

impl TestSchema {
    /// Creates a fresh schema named after `tag` (and the process, a counter and the time).
    pub(crate) async fn create(tag: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let admin_url = database_url();
        let tag: String = tag
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(24)
            .collect::<String>()
            .to_ascii_lowercase();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.subsec_nanos());
        let name = format!(
            "fixloop_t_{tag}_{}_{}_{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        execute(&admin_url, &format!("CREATE SCHEMA \"{name}\"")).await;
        let separator = if admin_url.contains('?') { '&' } else { '?' };
        let url = format!("{admin_url}{separator}options=-csearch_path%3D{name}");
        Self {
            name,
            admin_url,
            url,
        }
    }

    /// An URL whose connections use the schema.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// [`TestSchema::url`] with commits that do not wait for the disk (`synchronous_commit=off`): for tests that
    /// append thousands of entries and check what is kept, not what survives a crash.
    pub(crate) fn url_without_fsync(&self) -> String {
        format!("{}%20-csynchronous_commit%3Doff", self.url)
    }

    /// The schema's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Runs `sql` on the database in this schema (to set a test up, or to tamper with a store).
    pub(crate) async fn execute(&self, sql: &str) {
        execute(&self.url, sql).await;
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        // The test's runtime may be gone or busy: drop the schema from a thread of its own, on a runtime of its own.
        let admin_url = self.admin_url.clone();
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name);
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map(|runtime| runtime.block_on(execute(&admin_url, &sql)))
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("the test schema {} could not be dropped", self.name);
        }
    }
}

/// Runs `sql` on the database at `url`, failing the test with what to start when PostgreSQL is not reachable.
async fn execute(url: &str, sql: &str) {
    let connected = tokio::time::timeout(
        ADMIN_TIMEOUT,
        tokio_postgres::connect(url, tokio_postgres::NoTls),
    )
    .await;
    let (client, connection) = match connected {
        Ok(Ok(pair)) => pair,
        Ok(Err(error)) => unreachable_database(url, &error.to_string()),
        Err(_) => unreachable_database(url, "no answer within 15 s"),
    };
    let driver = tokio::spawn(connection);
    tokio::time::timeout(ADMIN_TIMEOUT, client.batch_execute(sql))
        .await
        .unwrap_or_else(|_| panic!("{sql:?} took longer than {ADMIN_TIMEOUT:?}"))
        .unwrap_or_else(|error| panic!("{sql:?} failed: {error:?}"));
    drop(client);
    let _ = tokio::time::timeout(ADMIN_TIMEOUT, driver).await;
}

fn unreachable_database(url: &str, why: &str) -> ! {
    panic!(
        "PostgreSQL is not reachable at {} ({why}). These tests need it: start it (`sudo service postgresql start`, \
         or `pg_ctlcluster 15 main start`), or point FIXLOOP_TEST_DATABASE_URL at a server where the role may \
         create schemas",
        fixloop_adapters::store::redacted_url(url)
    )
}
