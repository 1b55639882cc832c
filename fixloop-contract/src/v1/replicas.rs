//! `GET /api/replicas` (additive): the replicas of one database and the services each leads.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The live replicas (`GET /api/replicas`). Additive. A server with a journal of its own (SQLite, memory) is one
/// replica leading every service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReplicaList {
    /// The replicas whose latest heartbeat is within the lease time, by id.
    pub replicas: Vec<ReplicaInfo>,
}

/// One replica and the services it leads. Additive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReplicaInfo {
    /// The replica's id (`FIXLOOP_REPLICA_ID`, or generated at start).
    pub replica_id: String,
    /// The URL the other replicas reach its API at (`FIXLOOP_ADVERTISE_URL`, or its own listener).
    pub url: String,
    /// Its latest heartbeat (RFC 3339, UTC; the database's clock).
    pub last_seen: DateTime<Utc>,
    /// The services it leads, by name.
    pub leads: Vec<ReplicaLead>,
}

/// One service a replica leads, and its lease. Additive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReplicaLead {
    /// The service's name.
    pub service: String,
    /// The lease's epoch: raised at every takeover (a write of an older epoch is refused).
    #[schema(minimum = 1)]
    pub epoch: u64,
    /// When the lease lapses unless renewed (RFC 3339, UTC; renewed every third of the lease time), or `null` for
    /// a server with a journal of its own, whose leads never lapse.
    #[schema(required = true)]
    pub lease_expires_at: Option<DateTime<Utc>>,
}
