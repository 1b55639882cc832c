//! The CI failure intake: `POST /api/ci/logs` (its own bearer token, `FIXLOOP_CI_TOKEN`), `GET /api/ci/logs` and
//! `GET /api/ci/incidents` (`read`, as every read; `incidents.rs` sums a run's intakes up).
//!
//! An intake is checked in this order, each step with the contract's `ErrorBody`: the intake is on (a server
//! without `FIXLOOP_CI_TOKEN` has no intake: 404 `ci_intake_disabled` to a request with a bearer token, so the
//! answer says why, and 401 `unauthorized` to one without credentials, as on every secured route), the token
//! (401 `unauthorized`, compared in constant time), the body (415, 413 over the route's limit, 400 malformed JSON,
//! 422 `invalid_body` for a wrong shape), the excerpt's size (413 `payload_too_large` over
//! `MAX_CI_LOG_BYTES`) and the values (422 `invalid_value`: blank or long names, too many links, a link that is
//! not an http(s) URL). Then the excerpt is classified (`fixloop_core::ci::classify`, pure), refined by the LLM
//! when one is configured (`refine.rs`: under a timeout, its proposal checked by `fixloop_core::ci::refine`; the
//! classification says who decided, `refined_by`), forwarded when
//! forwarding is configured (`forward.rs`: the one configured URL, a timeout, the answer capped; a failure becomes
//! `upstream.error` and never loses the intake), recorded in the store, and answered.
//!
//! With the profile's `[ci]` section, an intake is also healed before it is forwarded (`heal.rs`): the decision of
//! `fixloop_core::ci::heal` on the run's recorded intakes, a rerun asked of the CI provider when that is the
//! decision, and the whole recorded as the intake's `heal`.

mod forward;
mod heal;
mod incidents;
mod intake;
mod refine;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post};
use fixloop_adapters::{Secret, Store};
use fixloop_contract::{
    CiIncidentList, CiIntake, CiIntakeList, DEFAULT_CI_PAGE, ErrorDetail, MAX_CI_LOG_BYTES,
    MAX_CI_PAGE,
};
use serde::Deserialize;

pub use self::forward::{CiForward, DEFAULT_FORWARD_TIMEOUT, MAX_UPSTREAM_BODY_BYTES};
pub use self::heal::CiHealer;
pub use self::refine::{CiRefine, DEFAULT_REFINE_TIMEOUT};
use crate::http::AppState;
use crate::http::auth::constant_time_equal;
use crate::http::error::ApiError;

/// The body limit of `POST /api/ci/logs`: room for a [`MAX_CI_LOG_BYTES`] excerpt escaped in JSON (a newline or a
/// quote takes two bytes, a control character six), and the other fields. The excerpt itself is checked after
/// parsing.
pub const CI_BODY_LIMIT_BYTES: usize = 4 * MAX_CI_LOG_BYTES + 16 * 1024;

/// What the CI intake needs: the store it records into, its token and the optional forwarding.
#[derive(Debug, Clone)]
pub struct CiIntakeState {
    /// Where intakes are recorded (the server's one store).
    pub store: Arc<dyn Store>,
    /// `FIXLOOP_CI_TOKEN`; `None` turns the intake off (404 `ci_intake_disabled`).
    pub token: Option<Secret>,
    /// `FIXLOOP_CI_FORWARD_URL` and `FIXLOOP_CI_FORWARD_TOKEN`.
    pub forward: Option<CiForward>,
    /// The profile's `[ci]` self-heal; `None`: intakes are only classified and recorded.
    pub heal: Option<Arc<CiHealer>>,
    /// The LLM that may refine a classification (`MINIMAX_API_KEY`); `None`: the classifier decides alone.
    pub refine: Option<CiRefine>,
}

impl CiIntakeState {
    /// An intake that is off (no token), recording into `store` (the list route still reads it).
    #[must_use]
    pub fn off(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            token: None,
            forward: None,
            heal: None,
            refine: None,
        }
    }
}

/// The routes of this file, with their handlers.
pub(in crate::http) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/ci/logs",
            post(submit)
                .layer(DefaultBodyLimit::max(CI_BODY_LIMIT_BYTES))
                .get(list),
        )
        .route("/api/ci/incidents", get(list_incidents))
}

async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<axum::Json<CiIntake>, ApiError> {
    let ci = &state.ci;
    let Some(expected) = &ci.token else {
        // A request without credentials is refused as on any secured route; one with a token learns why it
        // cannot be checked.
        if headers.get(header::AUTHORIZATION).is_none() {
            return Err(ApiError::Unauthorized(
                "this route needs the CI token (and this server has none: FIXLOOP_CI_TOKEN is unset)",
            ));
        }
        return Err(ApiError::CiIntakeDisabled);
    };
    check_token(expected, &headers)?;
    if !is_json(&headers) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(CI_BODY_LIMIT_BYTES)
        } else {
            ApiError::InvalidJson("the body could not be read".to_owned())
        }
    })?;
    let request = intake::parse(&body)?;
    let log_excerpt = request.log_excerpt.clone();
    let job_id = request.job_id.clone();
    let rules = fixloop_core::ci::classify(&log_excerpt);
    let refined = match &ci.refine {
        Some(refine) => refine.apply(&log_excerpt, rules).await,
        None => fixloop_core::ci::refine::Refined::rules(rules),
    };
    let mut intake = intake::receive(request, &refined);
    // Held until the intake is recorded: the next intake of the run counts this one's rerun.
    let _healing = match &ci.heal {
        Some(healer) => {
            let guard = healer.lock().await;
            intake.heal = Some(healer.heal(&*ci.store, &intake, job_id.as_deref()).await);
            Some(guard)
        }
        None => None,
    };
    if let Some(forward) = &ci.forward {
        intake.upstream = Some(forward.send(&intake::document(&intake, &log_excerpt)).await);
    }
    let record = intake::record(&intake, &log_excerpt)
        .map_err(|error| ApiError::Internal(format!("cannot encode the CI intake: {error}")))?;
    ci.store
        .record_ci_intake(record)
        .await
        .map_err(|error| ApiError::Internal(format!("cannot record the CI intake: {error}")))?;
    tracing::info!(
        id = %intake.id,
        repository = %intake::loggable(&intake.repository),
        class = ?intake.classification.class,
        confidence = intake.classification.confidence,
        heal = ?intake.heal.as_ref().map(|heal| heal.decision),
        "CI intake received"
    );
    Ok(axum::Json(intake))
}

/// The query of `GET /api/ci/logs` and `GET /api/ci/incidents`, as a string so that every malformed value gets
/// our own 400.
#[derive(Debug, Deserialize)]
struct ListQuery {
    limit: Option<String>,
}

/// The page size a list query asks for: [`DEFAULT_CI_PAGE`] when absent, 400 `invalid_query` outside 1 to
/// [`MAX_CI_PAGE`].
fn page_limit(query: Result<Query<ListQuery>, QueryRejection>) -> Result<usize, ApiError> {
    let invalid = |message: String| {
        ApiError::InvalidQuery(vec![ErrorDetail {
            path: "limit".to_owned(),
            message,
        }])
    };
    let Query(query) = query.map_err(|rejection| invalid(rejection.body_text()))?;
    let limit = match query.limit.as_deref() {
        None => DEFAULT_CI_PAGE,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|limit| (1..=MAX_CI_PAGE).contains(limit))
            .ok_or_else(|| invalid(format!("limit must be an integer from 1 to {MAX_CI_PAGE}")))?,
    };
    Ok(usize::try_from(limit).unwrap_or(usize::MAX))
}

/// The intakes of `records`, read from their documents.
fn read_intakes(records: &[fixloop_adapters::CiIntakeRecord]) -> Result<Vec<CiIntake>, ApiError> {
    records
        .iter()
        .map(|record| {
            serde_json::from_str::<CiIntake>(&record.document).map_err(|error| {
                ApiError::Internal(format!("CI intake {} cannot be read: {error}", record.id))
            })
        })
        .collect()
}

async fn list_incidents(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<axum::Json<CiIncidentList>, ApiError> {
    let limit = page_limit(query)?;
    let store = &state.ci.store;
    let unreadable = |error: fixloop_adapters::StoreError| {
        ApiError::Internal(format!("cannot read the CI runs: {error}"))
    };
    let runs = store.ci_runs(limit).await.map_err(unreadable)?;
    let mut incidents = Vec::with_capacity(runs.len());
    for (repository, run_id) in runs {
        let records = store
            .ci_run_intakes(&repository, &run_id)
            .await
            .map_err(unreadable)?;
        incidents.extend(incidents::summarize(&read_intakes(&records)?));
    }
    Ok(axum::Json(CiIncidentList { incidents }))
}

async fn list(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<axum::Json<CiIntakeList>, ApiError> {
    let limit = page_limit(query)?;
    let records = state
        .ci
        .store
        .ci_intakes(limit)
        .await
        .map_err(|error| ApiError::Internal(format!("cannot read the CI intakes: {error}")))?;
    Ok(axum::Json(CiIntakeList {
        intakes: read_intakes(&records)?,
    }))
}

/// The bearer token of the request against `FIXLOOP_CI_TOKEN`, in constant time.
fn check_token(expected: &Secret, headers: &HeaderMap) -> Result<(), ApiError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let given = match (values.next(), values.next()) {
        (None, _) => None,
        (Some(_), Some(_)) => return Err(ApiError::Unauthorized("send one Authorization header")),
        (Some(value), None) => value
            .to_str()
            .ok()
            .and_then(|text| text.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim()),
    };
    match given {
        Some(given)
            if bool::from(constant_time_equal(
                expected.expose().as_bytes(),
                given.as_bytes(),
            )) =>
        {
            Ok(())
        }
        Some(_) => Err(ApiError::Unauthorized(
            "the CI token is wrong (FIXLOOP_CI_TOKEN)",
        )),
        None => Err(ApiError::Unauthorized(
            "this route needs the CI token: send Authorization: Bearer <FIXLOOP_CI_TOKEN>",
        )),
    }
}

/// Whether the content type is JSON (`application/json`, `application/*+json`, with any parameters).
fn is_json(headers: &HeaderMap) -> bool {
    let Some(text) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let essence = text
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}
