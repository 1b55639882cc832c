//! `POST /api/admin/reload` (`operate`): the profile read again and the running services brought in line with it,
//! as SIGHUP does (`crate::runtime::reload`).

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use fixloop_contract::{ErrorDetail, ReloadReport};

use crate::http::AppState;
use crate::http::error::ApiError;
use crate::runtime::reload::ReloadError;

/// The routes of this file, with their handlers.
pub(in crate::http) fn routes() -> Router<AppState> {
    Router::new().route("/api/admin/reload", post(reload))
}

async fn reload(State(state): State<AppState>) -> Result<axum::Json<ReloadReport>, ApiError> {
    match state.reloader.reload().await {
        Ok(report) => Ok(axum::Json(report)),
        Err(ReloadError::NoProfile) => Err(ApiError::NoProfile),
        Err(ReloadError::Invalid(error)) => Err(ApiError::InvalidProfile(
            error
                .problems
                .iter()
                .map(|problem| ErrorDetail {
                    path: problem.path.clone(),
                    message: problem.message.clone(),
                })
                .collect(),
        )),
        Err(_) => Err(ApiError::Unavailable),
    }
}
