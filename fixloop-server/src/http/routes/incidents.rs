//! `GET /api/incidents/current`, `GET /api/incidents`, `GET /api/incidents/{incident_id}` and
//! `POST /api/incidents/simulate`.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use fixloop_contract::{
    DEFAULT_INCIDENT_PAGE, ErrorDetail, IncidentCard, IncidentDetail, IncidentPage,
    MAX_INCIDENT_PAGE, SimulateRequest,
};
use fixloop_core::IncidentId;
use serde::Deserialize;

use crate::http::error::truncate;
use crate::http::error::{ApiError, ApiJson, MAX_ID_CHARS};
use crate::http::{AppState, demo_target, merge};
use crate::runtime::services::{ServiceSet, WatchedService};

/// The routes of this file, with their handlers.
pub(in crate::http) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/incidents/current", get(current_incident))
        .route("/api/incidents/simulate", post(simulate))
        .route("/api/incidents", get(list_incidents))
        .route("/api/incidents/{incident_id}", get(get_incident))
}

async fn current_incident(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    if let Some(peers) = merge::peers(&state, &headers, &uri).await {
        return peers.current_incident(&state).await;
    }
    Ok(axum::Json(state.services.current_incident().await?).into_response())
}

/// The query of `GET /api/incidents`, as strings so that every malformed value gets our own 400.
#[derive(Debug, Deserialize)]
struct IncidentsQuery {
    limit: Option<String>,
    before: Option<String>,
}

async fn list_incidents(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    query: Result<Query<IncidentsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let invalid = |path: &str, message: String| {
        ApiError::InvalidQuery(vec![ErrorDetail {
            path: path.to_owned(),
            message,
        }])
    };
    let Query(query) = query.map_err(|rejection| invalid("", rejection.body_text()))?;
    let limit = match query.limit.as_deref() {
        None => DEFAULT_INCIDENT_PAGE,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|limit| (1..=MAX_INCIDENT_PAGE).contains(limit))
            .ok_or_else(|| {
                invalid(
                    "limit",
                    format!("limit must be an integer from 1 to {MAX_INCIDENT_PAGE}"),
                )
            })?,
    };
    if query.before.as_deref().is_some_and(str::is_empty) {
        return Err(invalid(
            "before",
            "before must be an incident id".to_owned(),
        ));
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if let Some(peers) = merge::peers(&state, &headers, &uri).await {
        return peers
            .incidents(&state, limit, query.before.as_deref())
            .await;
    }
    // A replica asked for its part of a merged page gets the cursor's key: the incident may be another's.
    if let Some(key) = merge::hop_before_key(&headers, query.before.as_deref()) {
        let page: IncidentPage = state
            .services
            .snapshot()
            .incidents_before(limit, Some(key))
            .await?;
        return Ok(axum::Json(page).into_response());
    }
    Ok(axum::Json(
        state
            .services
            .incidents(limit, query.before.map(IncidentId::new).as_ref())
            .await?,
    )
    .into_response())
}

async fn get_incident(
    State(state): State<AppState>,
    Path(incident_id): Path<String>,
) -> Result<axum::Json<IncidentDetail>, ApiError> {
    match state
        .services
        .incident_history(&IncidentId::new(incident_id.as_str()))
        .await?
    {
        Some(detail) => Ok(axum::Json(detail)),
        None => Err(ApiError::IncidentNotFound(truncate(
            &incident_id,
            MAX_ID_CHARS,
        ))),
    }
}

async fn simulate(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<SimulateRequest>,
) -> Result<axum::Json<Option<IncidentCard>>, ApiError> {
    // Simulation is the demo shop's (or the only service's).
    Ok(axum::Json(
        demo_target(&state.services.snapshot(), &state.settings)?
            .driver
            .simulate(request.mode)
            .await?,
    ))
}

/// The service that owns `incident_id`; 404 when none does.
pub(super) async fn incident_owner<'a>(
    services: &'a ServiceSet,
    incident_id: &IncidentId,
) -> Result<&'a WatchedService, ApiError> {
    services
        .owner_of_incident(incident_id)
        .await?
        .ok_or_else(|| ApiError::IncidentNotFound(truncate(incident_id.as_str(), MAX_ID_CHARS)))
}
