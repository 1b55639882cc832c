//! The store's name in messages (the URL without its password) and the mapping of driver and pool errors onto
//! [`StoreError`].

use std::str::FromStr;

use tokio_postgres::error::SqlState;

use super::super::StoreError;

/// `url` as a store names itself in messages and logs: `postgres://user@host:port/database`, never the password
/// (nor any other parameter). An URL that does not parse is named `postgres://[unparsable URL]`.
#[must_use]
pub fn redacted_url(url: &str) -> String {
    tokio_postgres::Config::from_str(url).map_or_else(
        |_| "postgres://[unparsable URL]".to_owned(),
        |config| redacted(&config),
    )
}

/// See [`redacted_url`].
pub(super) fn redacted(config: &tokio_postgres::Config) -> String {
    let user = config.get_user().unwrap_or("");
    let host = config
        .get_hosts()
        .first()
        .map_or_else(String::new, |host| match host {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        });
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let database = config.get_dbname().unwrap_or(user);
    let at = if user.is_empty() { "" } else { "@" };
    format!("postgres://{user}{at}{host}:{port}/{database}")
}

/// A driver error as a [`StoreError`]: a full disk and a read-only server by name, anything else with the server's
/// message.
pub(super) fn classify(location: &str, error: &tokio_postgres::Error) -> StoreError {
    match error.code() {
        Some(code) if *code == SqlState::DISK_FULL => StoreError::DiskFull {
            location: location.to_owned(),
        },
        Some(code) if *code == SqlState::READ_ONLY_SQL_TRANSACTION => StoreError::ReadOnly {
            location: location.to_owned(),
        },
        _ => StoreError::Failed {
            location: location.to_owned(),
            why: error.as_db_error().map_or_else(
                || error.to_string(),
                |db| format!("{}: {}", db.severity(), db.message()),
            ),
        },
    }
}

/// A pool error (no connection within the time, the pool closed, the server unreachable) as a [`StoreError`].
pub(super) fn pool_failed(location: &str, error: &deadpool_postgres::PoolError) -> StoreError {
    match error {
        deadpool_postgres::PoolError::Backend(error) => classify(location, error),
        deadpool_postgres::PoolError::Closed => closed(location),
        other => StoreError::Failed {
            location: location.to_owned(),
            why: format!("no database connection: {other}"),
        },
    }
}

/// The error of a call on a closed store.
pub(super) fn closed(location: &str) -> StoreError {
    StoreError::Failed {
        location: location.to_owned(),
        why: "the store is closed".to_owned(),
    }
}

/// A stored value this build cannot take back (a negative seq, a bad time).
pub(super) fn corrupt(location: &str, why: String) -> StoreError {
    StoreError::Corrupt {
        location: location.to_owned(),
        why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_never_shows() {
        let url =
            "postgres://fixloop:hunter2@db.internal:6543/journal?options=-csearch_path%3Dteam";
        let named = redacted_url(url);
        assert_eq!(named, "postgres://fixloop@db.internal:6543/journal");
        assert!(!named.contains("hunter2"));
        assert!(!redacted_url("postgres://a:hunter2@/x?port=nope").contains("hunter2"));
    }
}
