//! The orchestrator's store, opened once per process: SQLite (a data directory, or memory) or PostgreSQL, whose
//! replicas share the watched services by lease.

use std::sync::Arc;

use fixloop_adapters::{EventLog, Leases, PostgresStore, SqliteStore, Store};
use fixloop_contract::chrono::Utc;

use super::StartError;
use crate::config::{Config, StoreLocation};
use crate::runtime::metrics::ServerMetrics;
use crate::runtime::replicas::ReplicaDirectory;
use crate::runtime::supervisor::Leasing;

/// Opens the store `config` names, with its retention; on PostgreSQL, also this replica's [`Leasing`].
pub(super) async fn open(
    config: &Config,
    metrics: &ServerMetrics,
    bound_url: &str,
) -> Result<(Arc<dyn Store>, Option<Leasing>), StartError> {
    let mut leasing = None;
    let store: Arc<dyn Store> = match &config.store {
        None | Some(StoreLocation::Memory) => Arc::new(SqliteStore::in_memory()?),
        Some(StoreLocation::Directory(dir)) => {
            let store = SqliteStore::open(dir)?;
            store.set_retention(config.retention).await?;
            Arc::new(store)
        }
        Some(StoreLocation::Postgres(url)) => {
            let store = Arc::new(PostgresStore::connect(url.expose()).await?);
            store.set_retention(config.retention);
            // Replicas of one database share the services by lease.
            let replica = config.replicas.id.clone().unwrap_or_else(replica_id);
            tracing::info!(location = %store.location(), %replica, lease_seconds = config.replicas.lease.as_secs(), max_leads = ?config.replicas.max_leads, "journal in PostgreSQL; services led by lease");
            metrics.replica(&replica);
            leasing = Some(Leasing {
                leases: Arc::clone(&store) as Arc<dyn Leases>,
                replica,
                ttl: config.replicas.lease,
                max_leads: config.replicas.max_leads,
                url: config
                    .replicas
                    .advertise_url
                    .clone()
                    .unwrap_or_else(|| bound_url.to_owned()),
                started_at: Utc::now(),
                events: Some(Arc::clone(&store) as Arc<dyn EventLog>),
            });
            store
        }
    };
    Ok((store, leasing))
}

/// The directory of the replicas sharing `leasing`'s database (`None` for a process with a journal of its own).
pub(super) fn directory(leasing: Option<&Leasing>) -> Option<ReplicaDirectory> {
    leasing.map(|leasing| {
        ReplicaDirectory::new(
            Arc::clone(&leasing.leases),
            leasing.replica.clone(),
            leasing.ttl,
        )
    })
}

/// A replica id when `FIXLOOP_REPLICA_ID` is unset: the host's name, the process id and a random part.
fn replica_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "host".to_owned());
    let random = super::random_token();
    format!("{host}-{}-{}", std::process::id(), &random[..8])
}
