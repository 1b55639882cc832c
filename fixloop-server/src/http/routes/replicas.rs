//! `GET /api/replicas`: the replicas sharing this server's database and the services each leads; a server with a
//! journal of its own lists itself alone, leading every service.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use chrono::Utc;
use fixloop_contract::{ReplicaInfo, ReplicaLead, ReplicaList};

use crate::http::AppState;
use crate::http::error::ApiError;

/// The id a server with a journal of its own (no replicas) lists itself under.
const SOLE_REPLICA: &str = "this-process";

/// The routes of this file, with their handlers.
pub(in crate::http) fn routes() -> Router<AppState> {
    Router::new().route("/api/replicas", get(list_replicas))
}

async fn list_replicas(State(state): State<AppState>) -> Result<axum::Json<ReplicaList>, ApiError> {
    let Some(directory) = &state.replicas else {
        let services = state.services.snapshot();
        return Ok(axum::Json(ReplicaList {
            replicas: vec![ReplicaInfo {
                replica_id: SOLE_REPLICA.to_owned(),
                url: state.settings.public_url.clone(),
                last_seen: Utc::now(),
                leads: services
                    .iter()
                    .map(|service| ReplicaLead {
                        service: service.name.clone(),
                        epoch: fixloop_adapters::SoleLeases::EPOCH,
                        lease_expires_at: None,
                    })
                    .collect(),
            }],
        }));
    };
    match directory.list().await {
        Ok(list) => Ok(axum::Json(list)),
        Err(error) => {
            tracing::warn!(%error, "the replicas cannot be listed");
            Err(ApiError::Unavailable)
        }
    }
}
