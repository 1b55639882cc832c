//! [`ReplicaDirectory`]: the replicas sharing this server's database as the HTTP layer reads them (`GET
//! /api/replicas`), and the leader of a service a request is forwarded to.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use fixloop_adapters::{Leases, StoreError};
use fixloop_contract::{ReplicaInfo, ReplicaLead, ReplicaList};

/// The replicas of one database, read from its heartbeats and leases. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ReplicaDirectory {
    leases: Arc<dyn Leases>,
    /// This replica's id.
    replica: String,
    /// A replica whose latest heartbeat is older than this is not live (the lease time).
    live_within: Duration,
    /// The watched services' names in profile order, the same on every replica: the order a whole-system read
    /// merges the replicas' answers in ([`crate::http::merge`]).
    services: Arc<RwLock<Vec<String>>>,
}

/// Another live replica that leads at least one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leader {
    /// Its id.
    pub replica: String,
    /// Its advertised URL (from the replicas table).
    pub url: String,
    /// The services it leads.
    pub leads: Vec<String>,
}

impl ReplicaDirectory {
    /// The directory of the replicas sharing `leases`, seen from `replica`, live within `live_within`.
    #[must_use]
    pub fn new(leases: Arc<dyn Leases>, replica: String, live_within: Duration) -> Self {
        Self {
            leases,
            replica,
            live_within,
            services: Arc::default(),
        }
    }

    /// Records the watched services' names, in profile order (at start, and after a reload).
    pub fn set_services(&self, names: Vec<String>) {
        *self
            .services
            .write()
            .unwrap_or_else(PoisonError::into_inner) = names;
    }

    /// The watched services' names, in profile order.
    #[must_use]
    pub fn services(&self) -> Vec<String> {
        self.services
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// This replica's id.
    #[must_use]
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// The live replicas, by id, each with the services it leads (`GET /api/replicas`).
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the database cannot be read.
    pub async fn list(&self) -> Result<ReplicaList, StoreError> {
        let records = self.leases.replicas(self.live_within).await?;
        Ok(ReplicaList {
            replicas: records
                .into_iter()
                .map(|record| ReplicaInfo {
                    replica_id: record.replica,
                    url: record.url,
                    last_seen: record.last_seen,
                    leads: record
                        .leads
                        .into_iter()
                        .map(|lease| ReplicaLead {
                            service: lease.service,
                            epoch: lease.epoch,
                            lease_expires_at: Some(lease.expires_at),
                        })
                        .collect(),
                })
                .collect(),
        })
    }

    /// The other live replicas that lead at least one service, by id, with their advertised URLs: where a request
    /// this replica cannot answer is forwarded, and whom a whole-system read asks. Only URLs of the replicas table are ever answered.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the database cannot be read.
    pub async fn leaders_elsewhere(&self) -> Result<Vec<Leader>, StoreError> {
        let records = self.leases.replicas(self.live_within).await?;
        Ok(records
            .into_iter()
            .filter(|record| record.replica != self.replica && !record.leads.is_empty())
            .map(|record| Leader {
                replica: record.replica,
                url: record.url,
                leads: record
                    .leads
                    .into_iter()
                    .map(|lease| lease.service)
                    .collect(),
            })
            .collect())
    }
}
