//! `POST /api/copilot/ask`: the handler; the asking itself is [`crate::copilot`]'s.

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use fixloop_contract::{CopilotAnswer, CopilotAskRequest};
use fixloop_core::IncidentId;

use crate::copilot::Asker;
use crate::copilot::tools::ServiceLookup;
use crate::http::AppState;
use crate::http::error::{ApiError, ApiJson};
use crate::http::routes::incidents::incident_owner;

/// The routes of this file, with their handlers.
pub(in crate::http) fn routes() -> Router<AppState> {
    Router::new().route("/api/copilot/ask", post(ask_copilot))
}

async fn ask_copilot(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<CopilotAskRequest>,
) -> Result<axum::Json<CopilotAnswer>, ApiError> {
    let incident_id = request.incident_id.clone().map(IncidentId::new);
    let services = state.services.snapshot();
    let service = match &incident_id {
        Some(incident_id) => incident_owner(&services, incident_id).await?,
        None => services.worst().await?.0,
    };
    let mut copilot_state = service.driver.copilot_state(incident_id).await?;
    copilot_state.run_url = copilot_state.run.as_ref().map(|run| {
        format!(
            "{}/api/tests/runs/{}",
            state.settings.public_url, run.run_id
        )
    });
    let lookup = ServiceLookup::new(
        service.driver.clone(),
        service.copilot_sources.clone(),
        service.name.clone(),
        copilot_state
            .incident
            .as_ref()
            .map(|incident| incident.incident_id.clone()),
    );
    let asker = Asker {
        copilot: state.copilot.as_ref(),
        budget: state.settings.copilot_timeout,
        metrics: &state.metrics,
    };
    let answer = asker.ask(request, &copilot_state, &lookup).await;
    service.driver.copilot_answered(answer.clone()).await?;
    Ok(axum::Json(answer))
}
