//! The orchestrator's HTTP API: [`router`] with the seven REST operations and `GET /ws` of `openapi.yaml`, the
//! alert webhooks, `GET /openapi.json`, `GET /healthz`, `GET /metrics`, and the dashboard at `GET /`
//! ([`crate::http::dashboard`]).
//!
//! Handlers are thin: extract (with [`ApiJson`], whose rejections follow the contract), ask the driver, convert
//! back. Every outbound call is bounded by a timeout: the demo service's bug switch maps to 502/504 on failure; a
//! copilot that fails or misses its budget is answered for by the embedded grounded copilot (`answered_by:
//! GROUNDED_FALLBACK`), so a question never fails on the model. A client mistake never gives a 5xx.

pub mod auth;
pub mod dashboard;
pub mod error;
pub mod guard;
pub mod listener;
pub mod routes;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use fixloop_adapters::{Copilot, ErrorKind, GroundedCopilot, Secret};
use fixloop_contract::{
    AnsweredBy, CopilotAnswer, CopilotAskRequest, DEFAULT_INCIDENT_PAGE, ErrorDetail, IncidentCard,
    IncidentDetail, IncidentPage, MAX_INCIDENT_PAGE, RunTestsRequest, ServiceState, SetBugRequest,
    SimulateRequest, SystemStatus, TestRun,
};
use fixloop_core::{IncidentId, RunId};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::trace::TraceLayer;

use crate::copilot::tools::ServiceLookup;
use crate::runtime::metrics::ServerMetrics;
use crate::runtime::services::{Services, WatchedService};
use crate::runtime::stream::merge::merge_queues;
use auth::{AuthSettings, Gate};
use error::{ApiError, ApiJson, BodyLimit, MAX_ID_CHARS};
use guard::{DrainLimit, HostPolicy, Refusals, origin_allowed};
use listener::ConnectionStats;
use routes::ws::{ConnectionConfig, SOCKET_LIMITS, run_connection};

/// The header carrying the webhook secret (alternatively `Authorization: Bearer <secret>`, as Alertmanager's
/// `http_config.authorization` sends it, or the `secret` query parameter).
pub const WEBHOOK_SECRET_HEADER: &str = "x-fixloop-webhook-secret";

/// The default budget of an LLM copilot answer (`FIXLOOP_COPILOT_BUDGET_SECS`), tool steps included: past it, the
/// grounded copilot answers instead.
pub const DEFAULT_COPILOT_BUDGET: Duration = Duration::from_secs(8);

/// Everything the handlers need. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The watched services, each with its driver.
    pub services: Services,
    /// The copilot port.
    pub copilot: Arc<dyn Copilot>,
    /// The orchestrator's metrics.
    pub metrics: Arc<ServerMetrics>,
    /// Settings of the API.
    pub settings: Arc<ApiSettings>,
    /// The HTTP client of outbound calls (the demo service's bug switch).
    pub http: reqwest::Client,
}

/// Settings of the API.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiSettings {
    /// The orchestrator's public base URL (`ORCH_BASE_URL`, else the bound address), without a trailing slash.
    pub public_url: String,
    /// The demo service's base URL (its `POST /admin/bug` is called by `POST /api/demo/bug`).
    pub demo_url: String,
    /// The webhook secret; `None` disables the webhooks.
    pub webhook_secret: Option<Secret>,
    /// The request body limit, in bytes.
    pub max_body_bytes: usize,
    /// Origins allowed by CORS (`*` allows any).
    pub cors_origins: Vec<String>,
    /// Timeout of the call to the demo service.
    pub upstream_timeout: Duration,
    /// Budget of a copilot answer ([`DEFAULT_COPILOT_BUDGET`]): past it, or when the copilot fails, the embedded
    /// grounded copilot answers instead (`answered_by: GROUNDED_FALLBACK`).
    pub copilot_timeout: Duration,
    /// WebSocket connection timing.
    pub websocket: ConnectionConfig,
    /// Bearer tokens and the rate limits (default: no token, so the API is open).
    pub auth: AuthSettings,
    /// The address the server is bound to, an accepted `Host` ([`guard::HostPolicy`]); `None` in-process.
    pub bind: Option<IpAddr>,
    /// `FIXLOOP_ALLOWED_HOSTS`: more host names the server answers to, lowercase, without port. Set, the `Host`
    /// check also runs on a server with tokens.
    pub allowed_hosts: Vec<String>,
    /// The bearer token sent to the demo service's `POST /admin/bug` (which needs one when API tokens are set).
    pub demo_admin_token: Option<Secret>,
    /// The listener's connection counters, shown by `/metrics`; `None` in-process.
    pub connections: Option<Arc<ConnectionStats>>,
    /// Requests refused before any work (401, 403, 421, 429), by reason, shown by `/metrics`.
    pub refusals: Arc<Refusals>,
}

impl ApiSettings {
    /// Defaults for a server at `public_url` watching `demo_url`: 64 KiB bodies, CORS for
    /// `http://localhost:3000`, 5 s upstream timeout, an 8 s copilot budget, no webhooks.
    #[must_use]
    pub fn new(public_url: impl Into<String>, demo_url: impl Into<String>) -> Self {
        Self {
            public_url: public_url.into().trim_end_matches('/').to_owned(),
            demo_url: demo_url.into().trim_end_matches('/').to_owned(),
            webhook_secret: None,
            max_body_bytes: crate::config::DEFAULT_MAX_BODY_BYTES,
            cors_origins: vec![crate::config::DEFAULT_CORS_ORIGIN.to_owned()],
            upstream_timeout: Duration::from_secs(5),
            copilot_timeout: DEFAULT_COPILOT_BUDGET,
            websocket: ConnectionConfig::default(),
            auth: AuthSettings::default(),
            bind: None,
            allowed_hosts: Vec::new(),
            demo_admin_token: None,
            connections: None,
            refusals: Arc::default(),
        }
    }

    /// Which `Host` headers the router answers to: checked always when no token is configured, and with tokens
    /// once `allowed_hosts` is set; the host of [`ApiSettings::public_url`] is accepted too.
    #[must_use]
    pub fn host_policy(&self) -> HostPolicy {
        let mut allowed = self.allowed_hosts.clone();
        if let Some(host) = reqwest::Url::parse(&self.public_url).ok().and_then(|url| {
            url.host_str()
                .map(|host| host.trim_matches(['[', ']']).to_ascii_lowercase())
        }) {
            allowed.push(host);
        }
        HostPolicy {
            enforce: self.auth.tokens.is_empty() || !self.allowed_hosts.is_empty(),
            bind: self.bind,
            allowed,
        }
    }
}

/// The orchestrator's router. Every request passes, outermost first: the request log (URI with `access_token`
/// redacted), [`guard::keep_connection_usable`], the `Host` check ([`guard::check_host`]), CORS, then
/// [`auth::authorize`] (which route needs which role is [`auth::required_access`]).
pub fn router(state: AppState) -> Router {
    let limit = state.settings.max_body_bytes;
    let cors = cors_layer(&state.settings.cors_origins);
    let refusals = Arc::clone(&state.settings.refusals);
    let gate = Arc::new(Gate::new(&state.settings.auth, Arc::clone(&refusals)));
    let hosts = (Arc::new(state.settings.host_policy()), refusals);
    let drain = DrainLimit {
        bytes: limit,
        time: guard::DRAIN_TIMEOUT,
    };
    Router::new()
        .route("/api/status", get(status))
        .route("/api/demo/bug", post(set_bug))
        .route("/api/incidents/current", get(current_incident))
        .route("/api/incidents/simulate", post(simulate))
        .route("/api/incidents", get(list_incidents))
        .route("/api/incidents/{incident_id}", get(get_incident))
        .route("/api/tests/run", post(run_tests))
        .route("/api/tests/runs/{run_id}", get(test_run))
        .route("/api/copilot/ask", post(ask_copilot))
        .route("/api/services", get(list_services))
        .route("/api/services/{name}", get(get_service))
        .route("/ws", get(websocket))
        .route("/internal/datadog/webhook", post(datadog_webhook))
        .route("/internal/alertmanager/webhook", post(alertmanager_webhook))
        .route("/openapi.json", get(openapi))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .merge(dashboard::routes())
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Innermost, so CORS (outside it) answers preflights and puts its headers on a 401 too.
        .layer(axum::middleware::from_fn_with_state(gate, auth::authorize))
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::Extension(BodyLimit(limit)))
        .layer(cors)
        .layer(axum::middleware::from_fn_with_state(
            hosts,
            guard::check_host,
        ))
        .layer(axum::middleware::from_fn_with_state(
            drain,
            guard::keep_connection_usable,
        ))
        .layer(TraceLayer::new_for_http().make_span_with(auth::request_span))
        .with_state(state)
}

fn cors_layer(origins: &[String]) -> CorsLayer {
    let layer = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION]);
    if origins.iter().any(|origin| origin == "*") {
        return layer.allow_origin(Any);
    }
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|origin| HeaderValue::from_str(origin).ok())
        .collect();
    layer.allow_origin(AllowOrigin::list(origins))
}

async fn status(State(state): State<AppState>) -> Result<axum::Json<SystemStatus>, ApiError> {
    Ok(axum::Json(state.services.status().await?))
}

async fn set_bug(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<SetBugRequest>,
) -> Result<axum::Json<SystemStatus>, ApiError> {
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
    // The bug switch is the demo shop's, the first service of `fixloop demo`.
    Ok(axum::Json(
        state
            .services
            .first()
            .driver
            .service_changed(request.enabled)
            .await?,
    ))
}

async fn current_incident(
    State(state): State<AppState>,
) -> Result<axum::Json<Option<IncidentCard>>, ApiError> {
    Ok(axum::Json(state.services.current_incident().await?))
}

/// The query of `GET /api/incidents`, as strings so that every malformed value gets our own 400.
#[derive(Debug, Deserialize)]
struct IncidentsQuery {
    limit: Option<String>,
    before: Option<String>,
}

async fn list_incidents(
    State(state): State<AppState>,
    query: Result<Query<IncidentsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<IncidentPage>, ApiError> {
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
    Ok(axum::Json(
        state
            .services
            .incidents(limit, query.before.map(IncidentId::new).as_ref())
            .await?,
    ))
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
    // Simulation is for the first service (the demo shop in `fixloop demo`).
    Ok(axum::Json(
        state.services.first().driver.simulate(request.mode).await?,
    ))
}

async fn run_tests(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<RunTestsRequest>,
) -> Result<axum::Json<TestRun>, ApiError> {
    let incident_id = IncidentId::new(request.incident_id);
    let owner = incident_owner(&state.services, &incident_id).await?;
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

async fn ask_copilot(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<CopilotAskRequest>,
) -> Result<axum::Json<CopilotAnswer>, ApiError> {
    let incident_id = request.incident_id.clone().map(IncidentId::new);
    let service = match &incident_id {
        Some(incident_id) => incident_owner(&state.services, incident_id).await?,
        None => state.services.worst().await?.0,
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
    let budget = state.settings.copilot_timeout;
    let answered = tokio::time::timeout(
        budget,
        state
            .copilot
            .answer(&request.question, &copilot_state, &lookup),
    )
    .await;
    // A miss of the copilot never fails the question: the grounded copilot answers from the same state.
    let (reply, answered_by, fallback_reason) = match answered {
        Ok(Ok(reply)) => {
            let by = if state.copilot.answers_with_model() {
                AnsweredBy::Model
            } else {
                AnsweredBy::Grounded
            };
            (reply, by, None)
        }
        missed => {
            let kind = match missed {
                Ok(Err(error)) => {
                    tracing::warn!(kind = ?error.kind(), %error, "copilot failed; the grounded copilot answers");
                    error.kind()
                }
                _ => {
                    tracing::warn!(
                        ?budget,
                        "copilot missed its budget; the grounded copilot answers"
                    );
                    ErrorKind::Timeout
                }
            };
            let reply = GroundedCopilot::reply(&request.question, &copilot_state);
            (
                reply,
                AnsweredBy::GroundedFallback,
                Some(fallback_reason(kind, budget)),
            )
        }
    };
    state.metrics.copilot_answered(answered_by);
    // Whatever the copilot, its answer passes the safety rule, once, before anyone sees it: a model's sentences
    // about the service's health are left out before RECOVERED, and the answer is marked `redacted`.
    let author = if answered_by == AnsweredBy::Model {
        fixloop_adapters::copilot_safety::Author::Model
    } else {
        fixloop_adapters::copilot_safety::Author::Server
    };
    let guarded =
        fixloop_adapters::copilot_safety::guard(&request.question, reply, author, &copilot_state);
    if guarded.redacted {
        tracing::info!(
            left_out = guarded.left_out,
            "copilot answer redacted by the safety rule"
        );
    }
    let reply = guarded.reply;
    let answer = CopilotAnswer {
        incident_id: request.incident_id.or_else(|| {
            copilot_state
                .incident
                .as_ref()
                .map(|incident| incident.incident_id.clone())
        }),
        question: request.question,
        answer: reply.answer,
        citations: reply.citations,
        created_at: Utc::now(),
        answered_by: Some(answered_by),
        fallback_reason,
        redacted: guarded.redacted.then_some(true),
    };
    service.driver.copilot_answered(answer.clone()).await?;
    Ok(axum::Json(answer))
}

/// Why the grounded copilot answered instead of the configured one, in words fit for a 200 body (no internal
/// detail: the cause is logged).
fn fallback_reason(kind: ErrorKind, budget: Duration) -> String {
    match kind {
        ErrorKind::Timeout => format!("the model did not answer within {} s", budget.as_secs_f64()),
        ErrorKind::RateLimited { .. } => "the model is rate limited".to_owned(),
        ErrorKind::Unauthorized => "the model refused the credentials".to_owned(),
        ErrorKind::InvalidResponse => "the model's answer was unusable".to_owned(),
        ErrorKind::Unavailable => "the model is unavailable".to_owned(),
        _ => "the model failed".to_owned(),
    }
}

/// The `since` query parameter of `GET /ws`: absent, or a decimal non-negative integer (anything else, a sign,
/// an empty value or a repeated parameter, is 400 `invalid_since`).
fn parse_since(query: &[(String, String)]) -> Result<Option<u64>, ApiError> {
    let mut values = query.iter().filter(|(name, _)| name == "since");
    let Some((_, value)) = values.next() else {
        return Ok(None);
    };
    let shown = || value.chars().take(40).collect::<String>();
    if values.next().is_some() {
        return Err(ApiError::InvalidSince(format!("{} (given twice)", shown())));
    }
    if value.is_empty() || !value.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(ApiError::InvalidSince(shown()));
    }
    value
        .parse()
        .map(Some)
        .map_err(|_| ApiError::InvalidSince(shown()))
}

async fn websocket(
    State(state): State<AppState>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    if !origin_allowed(&headers, &state.settings.cors_origins) {
        let origin: String = headers
            .get(header::ORIGIN)
            .map(|origin| {
                String::from_utf8_lossy(origin.as_bytes())
                    .chars()
                    .take(100)
                    .collect()
            })
            .unwrap_or_default();
        state.settings.refusals.record(
            fixloop_contract::codes::ORIGIN_NOT_ALLOWED,
            &format_args!("GET /ws (Origin {origin})"),
        );
        return Err(ApiError::OriginNotAllowed(origin));
    }
    let since = parse_since(&query)?;
    let upgrade = upgrade.map_err(|_| ApiError::NotWebSocket)?;
    // Subscribing before the upgrade completes takes the join snapshots (or the replay) now; events published in
    // between queue up.
    let subscription = state.services.subscribe(since).await?;
    let marker = subscription.marker;
    let mut queues = subscription.queues;
    let config = state.settings.websocket;
    Ok(SOCKET_LIMITS
        .apply(upgrade)
        .on_upgrade(move |socket| async move {
            let (mut sink, stream) = socket.split();
            if let Some(marker) = marker {
                // The marker comes before the snapshots; a client that cannot take it is gone.
                let sent = tokio::time::timeout(
                    config.write_timeout,
                    futures_util::SinkExt::send(
                        &mut sink,
                        Message::Text(routes::ws::to_utf8(marker)),
                    ),
                )
                .await;
                if !matches!(sent, Ok(Ok(()))) {
                    tracing::debug!("websocket client gone before its stream.reset");
                    return;
                }
            }
            let end = if queues.len() == 1 {
                let queue = queues.remove(0);
                run_connection(sink, stream, queue, config).await
            } else {
                // Several services: one queue for the connection, fed from every service's queue in this task.
                let capacity = queues
                    .iter()
                    .map(mpsc::Receiver::max_capacity)
                    .sum::<usize>()
                    .max(1);
                let (merged, queue) = mpsc::channel(capacity);
                let (end, ()) = tokio::join!(
                    run_connection(sink, stream, queue, config),
                    merge_queues(queues, merged)
                );
                end
            };
            tracing::debug!(?end, "websocket connection ended");
        }))
}

/// The `?secret=` query parameter of the webhooks.
#[derive(Debug, Deserialize)]
struct SecretQuery {
    secret: Option<String>,
}

fn check_webhook_secret(
    state: &AppState,
    headers: &HeaderMap,
    query: &SecretQuery,
) -> Result<(), ApiError> {
    let Some(expected) = &state.settings.webhook_secret else {
        return Err(ApiError::Unauthorized(
            "webhooks are disabled: set FIXLOOP_WEBHOOK_SECRET to enable them",
        ));
    };
    // The scheme is case-insensitive (RFC 9110 §11.1): `bearer`, `BEARER` and `Bearer` are the same.
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, secret)| secret.trim());
    let given = headers
        .get(WEBHOOK_SECRET_HEADER)
        .and_then(|value| value.to_str().ok())
        .or(bearer)
        .or(query.secret.as_deref());
    match given {
        Some(given) if constant_time_eq(given.as_bytes(), expected.expose().as_bytes()) => Ok(()),
        Some(_) => Err(ApiError::Unauthorized("the webhook secret is wrong")),
        None => Err(ApiError::Unauthorized(
            "the webhook secret is missing (X-FixLoop-Webhook-Secret header, bearer token or ?secret=)",
        )),
    }
}

/// Compares two byte strings in time that depends only on their lengths.
fn constant_time_eq(left: &[u8], right: &[u8]) -> bool {
    let mut difference = u8::from(left.len() != right.len());
    for index in 0..left.len().max(right.len()) {
        let a = left.get(index).copied().unwrap_or(0);
        let b = right.get(index).copied().unwrap_or(0);
        difference |= a ^ b;
    }
    difference == 0
}

fn webhook_json(body: &[u8]) -> Result<(), ApiError> {
    serde_json::from_slice::<serde_json::Value>(body)
        .map(|_| ())
        .map_err(|error| ApiError::InvalidJson(error.to_string()))
}

/// Admits one webhook delivery: checks the secret, checks that the body is JSON, then reads it with the vendor's
/// `parse`, whose error becomes a 400 `invalid_body`.
fn admit_webhook<T, E: std::fmt::Display>(
    state: &AppState,
    headers: &HeaderMap,
    query: &SecretQuery,
    body: &[u8],
    parse: impl FnOnce(&[u8]) -> Result<T, E>,
) -> Result<T, ApiError> {
    check_webhook_secret(state, headers, query)?;
    webhook_json(body)?;
    parse(body).map_err(|error| {
        ApiError::InvalidBody(vec![ErrorDetail {
            path: String::new(),
            message: error.to_string(),
        }])
    })
}

/// A webhook's body; a body over the limit is 413 `payload_too_large` with the contract's `ErrorBody`, as everywhere.
fn webhook_body(state: &AppState, body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(state.settings.max_body_bytes)
        } else {
            ApiError::InvalidJson("the body could not be read".to_owned())
        }
    })
}

async fn datadog_webhook(
    State(state): State<AppState>,
    Query(query): Query<SecretQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = webhook_body(&state, body)?;
    let event = admit_webhook(
        &state,
        &headers,
        &query,
        &body,
        fixloop_adapters::datadog::parse_webhook,
    )?;
    // `$ALERT_SCOPE` is `service:checkout,env:prod`: its `key:value` tags are the alert's labels.
    let labels: BTreeMap<String, String> = event
        .scope
        .iter()
        .filter_map(|tag| tag.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect();
    let accepted = match (event.to_input(), state.services.route_alert(&labels)) {
        (Some(input), Some(service)) => {
            tracing::info!(dedupe_key = %event.alert.dedupe_key, transition = ?event.transition, service = %service.name, "datadog webhook");
            service.driver.alert(input).await?;
            true
        }
        (Some(_), None) => {
            tracing::warn!(dedupe_key = %event.alert.dedupe_key, scope = ?event.scope, "datadog webhook matches no watched service's alert_labels; ignored");
            false
        }
        (None, _) => false,
    };
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({"accepted": accepted})),
    )
        .into_response())
}

async fn alertmanager_webhook(
    State(state): State<AppState>,
    Query(query): Query<SecretQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = webhook_body(&state, body)?;
    let alerts = admit_webhook(
        &state,
        &headers,
        &query,
        &body,
        fixloop_adapters::prometheus::parse_alertmanager,
    )?;
    let mut count = 0;
    for alert in alerts {
        match state.services.route_alert(&alert.labels) {
            Some(service) => {
                tracing::info!(dedupe_key = %alert.alert.dedupe_key, firing = alert.firing, service = %service.name, "alertmanager webhook");
                service.driver.alert(alert.to_input()).await?;
                count += 1;
            }
            None => {
                tracing::warn!(dedupe_key = %alert.alert.dedupe_key, labels = ?alert.labels, "alertmanager alert matches no watched service's alert_labels; ignored");
            }
        }
    }
    Ok((StatusCode::ACCEPTED, axum::Json(json!({"accepted": count}))).into_response())
}

async fn list_services(
    State(state): State<AppState>,
) -> Result<axum::Json<Vec<ServiceState>>, ApiError> {
    let mut services = Vec::with_capacity(state.services.len());
    for service in state.services.iter() {
        services.push(service_state(service).await?);
    }
    Ok(axum::Json(services))
}

async fn get_service(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<axum::Json<ServiceState>, ApiError> {
    match state.services.get(&name) {
        Some(service) => Ok(axum::Json(service_state(service).await?)),
        None => Err(ApiError::ServiceNotFound(truncate(&name, MAX_ID_CHARS))),
    }
}

async fn service_state(service: &WatchedService) -> Result<ServiceState, ApiError> {
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

/// The service that owns `incident_id`; 404 when none does.
async fn incident_owner<'a>(
    services: &'a Services,
    incident_id: &IncidentId,
) -> Result<&'a WatchedService, ApiError> {
    services
        .owner_of_incident(incident_id)
        .await?
        .ok_or_else(|| ApiError::IncidentNotFound(truncate(incident_id.as_str(), MAX_ID_CHARS)))
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
    match health.failing {
        None => axum::Json(json!({"status": "ok"})).into_response(),
        Some(journal) => axum::Json(json!({
            "status": "degraded",
            "journal": journal,
            "lost_appends": health.lost_appends,
        }))
        .into_response(),
    }
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

async fn route_not_found(uri: Uri) -> ApiError {
    ApiError::RouteNotFound(truncate(uri.path(), 200))
}

async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::MethodNotAllowed(truncate(method.as_str(), 20))
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_content_and_length() {
        assert!(constant_time_eq(b"abcdef", b"abcdef"));
        assert!(!constant_time_eq(b"abcdef", b"abcdeg"));
        assert!(!constant_time_eq(b"abc", b"abcdef"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
    }
}
