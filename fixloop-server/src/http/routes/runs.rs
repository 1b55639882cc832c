//! `POST /api/tests/run` and `GET /api/tests/runs/{run_id}`.

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use fixloop_contract::{RunTestsRequest, TestRun};
use fixloop_core::{IncidentId, RunId};

use crate::http::AppState;
use crate::http::error::truncate;
use crate::http::error::{ApiError, ApiJson, MAX_ID_CHARS};
use crate::http::routes::incidents::incident_owner;

/// The routes of this file, with their handlers.
pub(in crate::http) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/tests/run", post(run_tests))
        .route("/api/tests/runs/{run_id}", get(test_run))
}

async fn run_tests(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<RunTestsRequest>,
) -> Result<axum::Json<TestRun>, ApiError> {
    let incident_id = IncidentId::new(request.incident_id);
    let services = state.services.snapshot();
    let owner = incident_owner(&services, &incident_id).await?;
    Ok(axum::Json(owner.driver.run_tests(incident_id).await?))
}

async fn test_run(
    State(state): State<AppState>,
    Path(run_id): Path<String>,
) -> Result<axum::Json<TestRun>, ApiError> {
    match state.services.run(&RunId::new(run_id.as_str())).await? {
        Some(run) => Ok(axum::Json(run)),
        None => Err(ApiError::RunNotFound(truncate(&run_id, MAX_ID_CHARS))),
    }
}
