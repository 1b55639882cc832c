//! `GET /api/services` and `GET /api/services/{name}`.

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use fixloop_contract::ServiceState;

use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};

use crate::http::error::truncate;
use crate::http::error::{ApiError, MAX_ID_CHARS};
use crate::http::{AppState, merge};
use crate::runtime::services::WatchedService;

/// The routes of this file, with their handlers.
pub(in crate::http) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/services", get(list_services))
        .route("/api/services/{name}", get(get_service))
}

async fn list_services(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    if let Some(peers) = merge::peers(&state, &headers, &uri).await {
        return peers.services(&state).await;
    }
    let watched = state.services.snapshot();
    let mut services = Vec::with_capacity(watched.len());
    for service in watched.iter() {
        services.push(service_state(service).await?);
    }
    Ok(axum::Json(services).into_response())
}

async fn get_service(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<axum::Json<ServiceState>, ApiError> {
    match state.services.snapshot().get(&name) {
        Some(service) => Ok(axum::Json(service_state(service).await?)),
        None => Err(ApiError::ServiceNotFound(truncate(&name, MAX_ID_CHARS))),
    }
}

/// The state of one service this process leads.
pub(in crate::http) async fn service_state(
    service: &WatchedService,
) -> Result<ServiceState, ApiError> {
    // One request to the driver: the status, the incident and the blocker are read at the same instant.
    let state = service.driver.copilot_state(None).await?;
    Ok(ServiceState {
        name: service.name.clone(),
        base_url: service.base_url.clone(),
        signals: service.signals.clone(),
        status: state.status,
        current_incident: state.incident,
        recovery_blocker: state.recovery_blocker,
    })
}
