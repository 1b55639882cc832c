//! `FIXLOOP_REPLICA_ID`, `FIXLOOP_LEASE_SECONDS`, `FIXLOOP_MAX_LEADS`, `FIXLOOP_ADVERTISE_URL`: how a replica shares the watched services with
//! the other replicas of one PostgreSQL database.

use std::time::Duration;

use super::{ConfigError, Reader};

/// How a replica shares the watched services with the others of its database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaSettings {
    /// `FIXLOOP_REPLICA_ID`: this replica's id in the leases; `None`: generated at start (host, pid, random).
    pub id: Option<String>,
    /// `FIXLOOP_LEASE_SECONDS`: how long a lease lasts unless renewed (renewed every third of it); a dead leader's
    /// services are taken over within this time. Default [`DEFAULT_LEASE_SECONDS`].
    pub lease: Duration,
    /// `FIXLOOP_MAX_LEADS`: the most services this replica leads at once; `None`: no bound.
    pub max_leads: Option<usize>,
    /// `FIXLOOP_ADVERTISE_URL`: where the other replicas reach this one's API (requests for the services it leads
    /// are forwarded there); `None`: `http://127.0.0.1:<port>`, this process's own listener.
    pub advertise_url: Option<String>,
}

/// The lease time when `FIXLOOP_LEASE_SECONDS` is unset.
pub const DEFAULT_LEASE_SECONDS: u64 = 5;

impl Default for ReplicaSettings {
    fn default() -> Self {
        Self {
            id: None,
            lease: Duration::from_secs(DEFAULT_LEASE_SECONDS),
            max_leads: None,
            advertise_url: None,
        }
    }
}

/// Reads the replica settings from the environment map.
pub(super) fn parse(reader: &Reader<'_>) -> Result<ReplicaSettings, ConfigError> {
    Ok(ReplicaSettings {
        id: reader
            .get("FIXLOOP_REPLICA_ID")
            .map(|id| {
                let valid = id.len() <= 128
                    && id
                        .bytes()
                        .all(|byte| byte.is_ascii_alphanumeric() || b"._:-".contains(&byte));
                valid.then(|| id.to_owned()).ok_or_else(|| {
                    ConfigError::new(
                        "FIXLOOP_REPLICA_ID",
                        "expected 1 to 128 characters of A-Z a-z 0-9 . _ : -",
                    )
                })
            })
            .transpose()?,
        lease: reader
            .integer("FIXLOOP_LEASE_SECONDS", 1, 3600)?
            .map_or(Duration::from_secs(DEFAULT_LEASE_SECONDS), |seconds| {
                Duration::from_secs(seconds as u64)
            }),
        max_leads: reader.integer("FIXLOOP_MAX_LEADS", 1, 1_000_000)?,
        advertise_url: reader
            .get("FIXLOOP_ADVERTISE_URL")
            .map(|url| {
                let parsed = reqwest::Url::parse(url).ok().filter(|parsed| {
                    matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some()
                });
                parsed
                    .map(|_| url.trim_end_matches('/').to_owned())
                    .ok_or_else(|| {
                        ConfigError::new(
                            "FIXLOOP_ADVERTISE_URL",
                            "expected an http:// or https:// URL with a host",
                        )
                    })
            })
            .transpose()?,
    })
}
