//! `GET /api/remediations`, `GET /api/remediations/stats`, `POST /api/remediations/{proposal_id}/approve` and
//! `/reject`, and `POST /api/remediation/kill-switch`: the operator's side of remediation. The decisions need the
//! `approve` role ([`crate::http::auth::required_access`]); who decided is the token's name, or the client's address
//! when the API is open.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::routing::{get, post};
use axum::{Extension, Router};
use chrono::Utc;
use fixloop_contract::{
    ErrorDetail, KillSwitchRequest, KillSwitchState, RemediationDecisionRequest, RemediationList,
    RemediationProposal, RemediationStats,
};
use fixloop_core::{IncidentId, ProposalId};
use serde::Deserialize;

use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};

use crate::http::auth::Caller;
use crate::http::error::{ApiError, ApiJson, MAX_ID_CHARS, truncate};
use crate::http::{AppState, merge};
use crate::runtime::remediation;

/// The routes of this file, with their handlers.
pub(in crate::http) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/remediations", get(list))
        .route("/api/remediations/stats", get(stats))
        .route("/api/remediations/{proposal_id}/approve", post(approve))
        .route("/api/remediations/{proposal_id}/reject", post(reject))
        .route("/api/remediation/kill-switch", post(kill_switch))
}

/// The query of `GET /api/remediations`, as strings so that every malformed value gets our own 400.
#[derive(Debug, Deserialize)]
struct ListQuery {
    incident_id: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let invalid = |message: String| {
        ApiError::InvalidQuery(vec![ErrorDetail {
            path: "incident_id".to_owned(),
            message,
        }])
    };
    let Query(query) = query.map_err(|rejection| invalid(rejection.body_text()))?;
    let incident_id = match query.incident_id {
        Some(id) if id.is_empty() || id.chars().count() > MAX_ID_CHARS => {
            return Err(invalid(format!(
                "incident_id must be 1 to {MAX_ID_CHARS} characters"
            )));
        }
        id => id.map(IncidentId::new),
    };
    if let Some(peers) = merge::peers(&state, &headers, &uri).await {
        let kill_switch = kill_switch_state(&state).await?;
        return peers
            .remediations(&state, incident_id.as_ref(), kill_switch)
            .await;
    }
    let services = state.services.snapshot();
    let proposals = remediation::proposals(&services, incident_id.as_ref())
        .await
        .map_err(|error| match error {
            crate::runtime::Error::IncidentNotFound(id) => {
                ApiError::IncidentNotFound(truncate(id.as_str(), MAX_ID_CHARS))
            }
            other => other.into(),
        })?;
    Ok(axum::Json(RemediationList {
        proposals,
        kill_switch: kill_switch_state(&state).await?,
    })
    .into_response())
}

async fn stats(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    if let Some(peers) = merge::peers(&state, &headers, &uri).await {
        return peers.remediation_stats(&state).await;
    }
    let actions = remediation::stats(&state.services.snapshot()).await?;
    Ok(axum::Json(RemediationStats { actions }).into_response())
}

async fn approve(
    State(state): State<AppState>,
    Path(proposal_id): Path<String>,
    caller: Option<Extension<Caller>>,
    address: Option<Extension<ConnectInfo<SocketAddr>>>,
    ApiJson(request): ApiJson<RemediationDecisionRequest>,
) -> Result<axum::Json<RemediationProposal>, ApiError> {
    let by = who(caller, address);
    decide(&state, &proposal_id, request.version, &by, true).await
}

async fn reject(
    State(state): State<AppState>,
    Path(proposal_id): Path<String>,
    caller: Option<Extension<Caller>>,
    address: Option<Extension<ConnectInfo<SocketAddr>>>,
    ApiJson(request): ApiJson<RemediationDecisionRequest>,
) -> Result<axum::Json<RemediationProposal>, ApiError> {
    let by = who(caller, address);
    decide(&state, &proposal_id, request.version, &by, false).await
}

async fn decide(
    state: &AppState,
    proposal_id: &str,
    version: u64,
    by: &str,
    approve: bool,
) -> Result<axum::Json<RemediationProposal>, ApiError> {
    if proposal_id.chars().count() > MAX_ID_CHARS {
        return Err(ApiError::ProposalNotFound(truncate(
            proposal_id,
            MAX_ID_CHARS,
        )));
    }
    let proposal = ProposalId::new(proposal_id);
    let services = state.services.snapshot();
    let decided = remediation::decide(&services, &proposal, version, by, approve).await?;
    tracing::info!(proposal = %proposal, version, %by, approve, "remediation decision");
    Ok(axum::Json(decided))
}

async fn kill_switch(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    address: Option<Extension<ConnectInfo<SocketAddr>>>,
    ApiJson(request): ApiJson<KillSwitchRequest>,
) -> Result<axum::Json<KillSwitchState>, ApiError> {
    let by = who(caller, address);
    let services = state.services.snapshot();
    let switched = remediation::set_kill_switch(
        state.ci.store.as_ref(),
        &services,
        request.engaged,
        &by,
        Utc::now(),
    )
    .await?;
    Ok(axum::Json(switched))
}

/// The saved kill switch.
async fn kill_switch_state(state: &AppState) -> Result<KillSwitchState, ApiError> {
    remediation::kill_switch(state.ci.store.as_ref())
        .await
        .map_err(|error| ApiError::Internal(format!("reading the kill switch: {error}")))
}

/// Who acts: the token's name, else (the API is open) the client's address.
fn who(
    caller: Option<Extension<Caller>>,
    address: Option<Extension<ConnectInfo<SocketAddr>>>,
) -> String {
    match (caller, address) {
        (Some(Extension(Caller(name))), _) => name,
        (None, Some(Extension(ConnectInfo(address)))) => address.ip().to_string(),
        (None, None) => "an open-mode client".to_owned(),
    }
}
