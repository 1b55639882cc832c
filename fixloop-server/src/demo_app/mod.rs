//! The demo service FixLoop watches in `fixloop demo`: a tiny shop with a bug switch and Prometheus metrics.
//!
//! Endpoints: `GET /health`, `GET /catalog`, `POST /checkout` (500 for every checkout while the bug is on),
//! `GET`/`POST /admin/bug`, `GET /admin/flags` and `POST /admin/flags/{name}` (feature flags, see [`flags`]: turning
//! `payment_provider` off makes checkout healthy even with the bug on), `POST /admin/restart` (the shop's state is
//! reset as a restart would: the bug off, every flag on; what `fixloop demo --remediate`'s risky step calls),
//! `GET /auth/me` (needs
//! `Authorization: Bearer demo-token`) and `GET /metrics`.
//! When FixLoop's API tokens are set, `POST /admin/bug`, `POST /admin/flags/{name}` and `POST /admin/restart` need
//! one of them with the
//! `operate` role (or the token the
//! orchestrator of the same `fixloop demo` process was given, [`DemoState::with_admin_tokens`]); otherwise anyone
//! who reaches the shop could break it.
//! A middleware times and logs every request and records it in [`DemoMetrics`], labelled by the matched route
//! template and by who sent it (FixLoop's validation traffic carries the [`VALIDATION_HEADER`]).
//! The rule planner and the local scrape signal source are written against exactly this behaviour.

pub mod datadog;
pub mod flags;
pub mod metrics;
pub mod traffic;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

pub use metrics::{DemoMetrics, MetricsSnapshot, RequestRecord, Source};

use crate::http::auth::{ApiTokens, Role};

/// The header FixLoop's HTTP test runner puts on every validation request (value: the run id).
pub const VALIDATION_HEADER: &str = "x-fixloop-validation";

/// The bearer token `GET /auth/me` accepts.
pub const DEMO_TOKEN: &str = "demo-token";

/// The error message of every checkout while the bug is on.
pub const BUG_MESSAGE: &str = "payment provider timeout";

/// Largest accepted `quantity` of a checkout.
pub const MAX_QUANTITY: u64 = 100;

/// The catalogue: (sku, name, price in cents).
pub const PRODUCTS: [(&str, &str, u64); 3] = [
    ("sku-1", "Espresso beans, 1 kg", 1299),
    ("sku-2", "Ceramic pour-over dripper", 2450),
    ("sku-3", "Paper filters, pack of 100", 599),
];

/// The demo service's shared state: the bug switch, the order counter and the metrics. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct DemoState {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    bug: AtomicBool,
    next_order: AtomicU64,
    metrics: DemoMetrics,
    /// Who may `POST /admin/bug` and `POST /admin/flags/{name}`: tokens whose role is `operate`; empty means
    /// anyone.
    admin: ApiTokens,
    /// The feature flags.
    flags: flags::Flags,
}

impl DemoState {
    /// A healthy service (bug off, no orders, no metrics), whose bug switch is open.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A healthy service whose `POST /admin/bug` needs a bearer token of `tokens` with the `operate` role (none
    /// needed when `tokens` is empty).
    #[must_use]
    pub fn with_admin_tokens(tokens: ApiTokens) -> Self {
        Self {
            inner: Arc::new(Inner {
                admin: tokens,
                ..Inner::default()
            }),
        }
    }

    /// Whether the bug is on.
    #[must_use]
    pub fn bug_enabled(&self) -> bool {
        self.inner.bug.load(Ordering::SeqCst)
    }

    /// Sets the bug.
    pub fn set_bug(&self, enabled: bool) {
        self.inner.bug.store(enabled, Ordering::SeqCst);
    }

    /// The metrics registry.
    #[must_use]
    pub fn metrics(&self) -> &DemoMetrics {
        &self.inner.metrics
    }

    /// Whether the feature flag `name` is on (`None`: no such flag; see [`flags::FLAGS`]).
    #[must_use]
    pub fn flag_enabled(&self, name: &str) -> Option<bool> {
        self.inner.flags.enabled(name)
    }

    /// Switches the feature flag `name`; `false` when there is no such flag.
    pub fn set_flag(&self, name: &str, enabled: bool) -> bool {
        self.inner.flags.set(name, enabled)
    }

    /// Resets the shop's state as a restart would: the bug off, every flag on (orders and metrics are kept).
    pub fn restart(&self) {
        self.set_bug(false);
        for (name, _) in flags::FLAGS {
            self.set_flag(name, true);
        }
    }
}

/// The demo service's router, with the timing, logging and metrics middleware.
pub fn router(state: DemoState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/catalog", get(catalog))
        .route("/checkout", post(checkout))
        .route("/admin/bug", get(bug_state).post(set_bug))
        .route("/admin/flags", get(flags::list))
        .route("/admin/flags/{name}", post(flags::set))
        .route("/admin/restart", post(restart))
        .route("/auth/me", get(auth_me))
        .route("/metrics", get(render_metrics))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .with_state(state)
}

/// The short label of an error response, read by the metrics middleware (`demo_http_errors_total{error}`).
#[derive(Debug, Clone, Copy)]
struct ErrorLabel(&'static str);

/// A JSON error response `{"error": code, "message": message}` carrying its metrics label.
fn error_response(status: StatusCode, code: &str, message: &str, label: &'static str) -> Response {
    let mut response = (
        status,
        axum::Json(json!({"error": code, "message": message})),
    )
        .into_response();
    response.extensions_mut().insert(ErrorLabel(label));
    response
}

async fn health() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

async fn catalog() -> Response {
    let products: Vec<Value> = PRODUCTS
        .iter()
        .map(|(sku, name, price)| json!({"sku": sku, "name": name, "price_cents": price}))
        .collect();
    axum::Json(json!({"products": products})).into_response()
}

async fn checkout(State(state): State<DemoState>, body: Bytes) -> Response {
    // The bug lives in the external payment provider: with its flag off, payment is deferred and checkout works.
    let charged = state.flag_enabled(flags::PAYMENT_PROVIDER) != Some(false);
    if charged && state.bug_enabled() {
        return error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            BUG_MESSAGE,
            BUG_MESSAGE,
        );
    }
    let order = match parse_order(&body) {
        Ok(order) => order,
        Err(OrderError::Malformed(message)) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "invalid_order",
                &message,
                "malformed json",
            );
        }
        Err(OrderError::Invalid(message)) => {
            return error_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_order",
                &message,
                "invalid order",
            );
        }
    };
    let number = state.inner.next_order.fetch_add(1, Ordering::SeqCst) + 1;
    axum::Json(json!({
        "order_id": format!("ord-{number}"),
        "status": "confirmed",
        "sku": order.sku,
        "quantity": order.quantity,
        "total_cents": order.price_cents * order.quantity,
        "payment": if charged { "charged" } else { "deferred" },
    }))
    .into_response()
}

struct Order {
    sku: &'static str,
    quantity: u64,
    price_cents: u64,
}

enum OrderError {
    Malformed(String),
    Invalid(String),
}

fn parse_order(body: &[u8]) -> Result<Order, OrderError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|error| OrderError::Malformed(format!("the body is not valid JSON: {error}")))?;
    let Some(object) = value.as_object() else {
        return Err(OrderError::Invalid(
            "the body must be a JSON object".to_owned(),
        ));
    };
    let sku = match object.get("sku") {
        Some(Value::String(sku)) => sku,
        Some(_) => return Err(OrderError::Invalid("sku must be a string".to_owned())),
        None => return Err(OrderError::Invalid("sku is required".to_owned())),
    };
    let quantity = match object.get("quantity") {
        Some(Value::Number(number)) => number.as_u64().filter(|q| (1..=MAX_QUANTITY).contains(q)),
        Some(_) => None,
        None => return Err(OrderError::Invalid("quantity is required".to_owned())),
    }
    .ok_or_else(|| {
        OrderError::Invalid(format!(
            "quantity must be an integer from 1 to {MAX_QUANTITY}"
        ))
    })?;
    let Some((sku, _, price_cents)) = PRODUCTS.iter().find(|(known, _, _)| known == sku) else {
        return Err(OrderError::Invalid("unknown sku".to_owned()));
    };
    Ok(Order {
        sku,
        quantity,
        price_cents: *price_cents,
    })
}

async fn bug_state(State(state): State<DemoState>) -> Response {
    axum::Json(json!({"enabled": state.bug_enabled()})).into_response()
}

/// The refusal of an admin request without an `operate` token, when the shop's admin endpoints are guarded.
fn unauthorized(state: &DemoState, headers: &HeaderMap, what: &str) -> Option<Response> {
    if state.inner.admin.is_empty() {
        return None;
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .and_then(|(_, token)| state.inner.admin.authenticate(token.trim().as_bytes()));
    if token.is_some_and(|token| token.role.allows(Role::Operate)) {
        return None;
    }
    Some(error_response(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        &format!(
            "{what} needs Authorization: Bearer <token>, a FIXLOOP_API_TOKENS token with the operate role"
        ),
        "unauthorized",
    ))
}

/// The `enabled` boolean of a switch's body (`{"enabled": bool}`), or the client error to answer.
fn enabled_in(body: &[u8]) -> Result<bool, Box<Response>> {
    let value = serde_json::from_slice::<Value>(body).map_err(|error| {
        Box::new(error_response(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!("the body is not valid JSON: {error}"),
            "malformed json",
        ))
    })?;
    match value.get("enabled") {
        Some(Value::Bool(enabled)) => Ok(*enabled),
        _ => Err(Box::new(error_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            "expected {\"enabled\": boolean}",
            "invalid request",
        ))),
    }
}

async fn set_bug(State(state): State<DemoState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refused) = unauthorized(&state, &headers, "the bug switch") {
        return refused;
    }
    let enabled = match enabled_in(&body) {
        Ok(enabled) => enabled,
        Err(refused) => return *refused,
    };
    state.set_bug(enabled);
    tracing::info!(enabled, "demo bug set");
    axum::Json(json!({"enabled": enabled})).into_response()
}

/// `POST /admin/restart`: the shop's state is reset (the bug off, every flag on).
async fn restart(State(state): State<DemoState>, headers: HeaderMap) -> Response {
    if let Some(refused) = unauthorized(&state, &headers, "restarting the shop") {
        return refused;
    }
    state.restart();
    tracing::info!("demo shop restarted: bug off, every flag on");
    axum::Json(json!({"restarted": true, "bug": false})).into_response()
}

async fn auth_me(headers: HeaderMap) -> Response {
    let authorized = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .is_some_and(|token| token.trim() == DEMO_TOKEN);
    if authorized {
        axum::Json(json!({"user": "demo"})).into_response()
    } else {
        error_response(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid bearer token is required",
            "unauthorized",
        )
    }
}

async fn render_metrics(State(state): State<DemoState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics().render(),
    )
        .into_response()
}

async fn not_found() -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such route",
        "not found",
    )
}

/// Times, logs and counts every request (except scrapes of `/metrics`, which would dilute the signal).
async fn track(State(state): State<DemoState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let method = method_label(request.method());
    // Validation runs carry both headers, synthetic probes and remediation actions the traffic header.
    let source = if request.headers().contains_key(VALIDATION_HEADER)
        || request
            .headers()
            .contains_key(fixloop_adapters::TRAFFIC_HEADER)
    {
        Source::Fixloop
    } else {
        Source::User
    };
    let started = Instant::now();
    let response = next.run(request).await;
    let duration = started.elapsed();
    let status = response.status().as_u16();
    let error = response
        .extensions()
        .get::<ErrorLabel>()
        .map(|label| label.0);
    tracing::info!(
        target: "fixloop::demo_app",
        %method,
        %route,
        status,
        source = source.as_str(),
        latency_ms = duration_ms(duration),
        error,
        "request"
    );
    if route != "/metrics" {
        state.metrics().record(RequestRecord {
            route,
            method: method.to_owned(),
            status,
            source,
            duration,
            error: error.map(str::to_owned),
        });
    }
    response
}

/// The method as a bounded label value: extension methods collapse to `OTHER`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "OTHER",
    }
}

fn duration_ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
