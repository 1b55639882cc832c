//! `GET /api/status`, the demo shop's bug switch `POST /api/demo/bug`, and the server's own `GET /openapi.json`,
//! `GET /healthz` and `GET /metrics`.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use fixloop_contract::{SetBugRequest, SystemStatus};
use serde_json::json;

use crate::http::error::{ApiError, ApiJson};
use crate::http::{AppState, demo_target, merge};

/// The routes of this file, with their handlers.
pub(in crate::http) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/status", get(status))
        .route("/api/demo/bug", post(set_bug))
        .route("/openapi.json", get(openapi))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
}

async fn status(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    if let Some(peers) = merge::peers(&state, &headers, &uri).await {
        return peers.status(&state).await;
    }
    Ok(axum::Json(state.services.status().await?).into_response())
}

async fn set_bug(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<SetBugRequest>,
) -> Result<axum::Json<SystemStatus>, ApiError> {
    // The bug switch is the demo shop's: the service it changes is known before the shop is called.
    let services = state.services.snapshot();
    let target = demo_target(&services, &state.settings)?;
    let url = format!("{}/admin/bug", state.settings.demo_url);
    let mut call = state
        .http
        .post(&url)
        .timeout(state.settings.upstream_timeout)
        .json(&json!({"enabled": request.enabled}));
    if let Some(token) = &state.settings.demo_admin_token {
        call = call.bearer_auth(token.expose());
    }
    let call = call.send();
    let response = match tokio::time::timeout(state.settings.upstream_timeout, call).await {
        Err(_) => return Err(ApiError::UpstreamTimeout(format!("POST {url}"))),
        Ok(Err(error)) if error.is_timeout() => {
            return Err(ApiError::UpstreamTimeout(format!("POST {url}: {error}")));
        }
        Ok(Err(error)) => return Err(ApiError::Upstream(format!("POST {url}: {error}"))),
        Ok(Ok(response)) => response,
    };
    if !response.status().is_success() {
        return Err(ApiError::Upstream(format!(
            "POST {url} answered {}",
            response.status()
        )));
    }
    Ok(axum::Json(
        target.driver.service_changed(request.enabled).await?,
    ))
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        fixloop_contract::openapi::openapi_json(),
    )
        .into_response()
}

/// `{"status":"ok"}`; while a journal fails, still 200 (the loop goes on, from memory) but
/// `{"status":"degraded","journal":"<service>: <why>","lost_appends":N}`.
async fn healthz(State(state): State<AppState>) -> Response {
    let health = state.metrics.journal_health();
    let mut body = match health.failing {
        None => json!({"status": "ok"}),
        Some(journal) => json!({
            "status": "degraded",
            "journal": journal,
            "lost_appends": health.lost_appends,
        }),
    };
    // Replicas sharing one database say who they are and which services they lead (optional fields).
    if let Some(leadership) = state.metrics.leadership() {
        body["replica"] = json!(leadership.replica);
        body["leads"] = json!(leadership.leads.keys().collect::<Vec<_>>());
    }
    axum::Json(body).into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    let mut text = state.metrics.render();
    text.push_str(&state.settings.refusals.render());
    if let Some(connections) = &state.settings.connections {
        text.push_str(&connections.render());
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
