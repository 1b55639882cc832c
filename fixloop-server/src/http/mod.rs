//! The orchestrator's HTTP API: [`router`] with the seven REST operations and `GET /ws` of `openapi.yaml`, the
//! alert webhooks, `GET /openapi.json`, `GET /healthz`, `GET /metrics`, and the dashboard at `GET /`
//! ([`crate::http::dashboard`]).
//!
//! Handlers are thin: extract (with [`error::ApiJson`], whose rejections follow the contract), ask the driver, convert
//! back. Every outbound call is bounded by a timeout: the demo service's bug switch maps to 502/504 on failure; a
//! copilot that fails or misses its budget is answered for by the embedded grounded copilot (`answered_by:
//! GROUNDED_FALLBACK`), so a question never fails on the model. A client mistake never gives a 5xx.

pub mod auth;
pub mod dashboard;
pub mod error;
pub mod forward;
pub mod guard;
pub mod listener;
pub mod merge;
pub mod routes;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method, Uri, header};
use fixloop_adapters::{Copilot, Secret};
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::trace::TraceLayer;

use crate::runtime::metrics::ServerMetrics;
use crate::runtime::reload::Reloader;
use crate::runtime::services::{ServiceSet, Services, WatchedService};
use auth::{AuthSettings, Gate};
use error::{ApiError, BodyLimit, truncate};
use guard::{DrainLimit, HostPolicy, Refusals};
use listener::ConnectionStats;
use routes::ws::ConnectionConfig;

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
    /// Asks the supervisor for a profile reload (`POST /api/admin/reload`).
    pub reloader: Reloader,
    /// The CI failure intake (`POST /api/ci/logs`, `GET /api/ci/logs`).
    pub ci: routes::ci::CiIntakeState,
    /// The replicas sharing this server's database (`GET /api/replicas`, forwarding to a service's leader);
    /// `None` for a server with a journal of its own.
    pub replicas: Option<crate::runtime::replicas::ReplicaDirectory>,
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
    /// The watched service the demo's operations (`POST /api/demo/bug`, `POST /api/incidents/simulate`) act on:
    /// the built-in demo shop's name when it is watched; `None` means the only watched service.
    pub demo_service: Option<String>,
    /// The bearer token sent to the demo service's `POST /admin/bug` (which needs one when API tokens are set).
    pub demo_admin_token: Option<Secret>,
    /// The listener's connection counters, shown by `/metrics`; `None` in-process.
    pub connections: Option<Arc<ConnectionStats>>,
    /// Requests refused before any work (401, 403, 421, 429), by reason, shown by `/metrics`.
    pub refusals: Arc<Refusals>,
}

/// The service the demo's operations act on ([`ServiceSet::demo_target`]); 404 `service_not_found` when there is
/// none (several services, no demo shop among them).
pub(crate) fn demo_target<'a>(
    services: &'a ServiceSet,
    settings: &ApiSettings,
) -> Result<&'a WatchedService, ApiError> {
    services
        .demo_target(settings.demo_service.as_deref())
        .ok_or_else(|| {
            ApiError::ServiceNotFound(
                settings
                    .demo_service
                    .clone()
                    .unwrap_or_else(|| "(the demo shop: none is watched)".to_owned()),
            )
        })
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
            demo_service: None,
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
    let forwarding = state.clone();
    let drain = DrainLimit {
        bytes: limit,
        time: guard::DRAIN_TIMEOUT,
    };
    Router::new()
        .merge(routes::status::routes())
        .merge(routes::incidents::routes())
        .merge(routes::runs::routes())
        .merge(routes::remediation::routes())
        .merge(routes::copilot::routes())
        .merge(routes::services::routes())
        .merge(routes::admin::routes())
        .merge(routes::ci::routes())
        .merge(routes::replicas::routes())
        .merge(routes::ws::routes())
        .merge(routes::webhooks::routes())
        .merge(dashboard::routes())
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Inside the auth check: only an authorized request is answered here or forwarded to a service's leader.
        .layer(axum::middleware::from_fn_with_state(
            forwarding,
            forward::forward_to_leader,
        ))
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

async fn route_not_found(uri: Uri) -> ApiError {
    ApiError::RouteNotFound(truncate(uri.path(), 200))
}

async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::MethodNotAllowed(truncate(method.as_str(), 20))
}
