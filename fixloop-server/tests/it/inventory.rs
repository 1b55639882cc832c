//! A second, different HTTP service written for the tests: FixLoop must watch it from a profile alone.
//!
//! Nothing in it resembles the demo shop: other routes (`/healthz`, `/v2/items`, `/v2/reservations`, `/v2/me`),
//! bearer auth with a token the test hands in (a profile secret), other metric names
//! (`inventory_http_requests_total{method,path,code,origin}`, `inventory_request_seconds` histogram,
//! `inventory_errors_total{method,path,code,reason}`), and its own failure switch. Requests carrying FixLoop's
//! `x-fixloop-validation` header are counted under `origin="fixloop"`, which the profile excludes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The bearer token the service accepts (the profile reads it from `INVENTORY_TOKEN`).
pub(crate) const TOKEN: &str = "inv-secret-7f3a";

/// A running inventory service.
pub(crate) struct Inventory {
    /// Its base URL.
    pub(crate) url: String,
    state: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct Shared {
    failing: AtomicBool,
    metrics_off: AtomicBool,
    /// While true, `GET /v2/me` holds every request until released (a run that stays in flight).
    hold: Hold,
    /// (method, path, code, origin) → count.
    requests: Mutex<BTreeMap<(String, String, u16, String), u64>>,
    /// (method, path, code, reason) → count.
    errors: Mutex<BTreeMap<(String, String, u16, String), u64>>,
}

impl Inventory {
    /// Starts the service on an ephemeral loopback port.
    pub(crate) async fn start() -> Self {
        let state = Arc::new(Shared::default());
        let app = Router::new()
            .route(
                "/healthz",
                get(|| async { axum::Json(json!({"ok": true})) }),
            )
            .route("/v2/items", get(items))
            .route("/v2/items/a-1", get(item))
            .route("/v2/reservations", post(reserve))
            .route("/v2/me", get(me))
            .route("/admin/fail", post(set_failing))
            .route_layer(middleware::from_fn_with_state(state.clone(), count))
            .route("/metrics", get(metrics))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                })
                .await;
        });
        Self {
            url,
            state,
            stop,
            task,
        }
    }

    /// Breaks (or fixes) the items and reservations routes: they answer 503.
    pub(crate) fn set_failing(&self, failing: bool) {
        self.state.failing.store(failing, Ordering::SeqCst);
    }

    /// Holds (or releases) every `GET /v2/me`: while held, a validation run that reaches it stays in flight.
    pub(crate) fn set_hold(&self, hold: bool) {
        self.state.hold.set(hold);
    }

    /// Waits until a request is being held by [`Inventory::set_hold`].
    pub(crate) async fn held(&self) {
        let mut arrived = self.state.hold.arrived.subscribe();
        let _ = arrived.wait_for(|count| *count > 0).await;
    }

    /// Makes `/metrics` answer 404 (the exporter vanished) while the service keeps serving.
    pub(crate) fn set_metrics_off(&self, off: bool) {
        self.state.metrics_off.store(off, Ordering::SeqCst);
    }

    /// Stops the service: its port refuses connections from now on.
    pub(crate) async fn kill(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }

    /// User traffic (no validation header) against the items and reservations routes, until the task is
    /// aborted: about 40 requests a second.
    pub(crate) fn traffic(&self) -> JoinHandle<()> {
        let url = self.url.clone();
        tokio::spawn(async move {
            let client = fixloop_adapters::client_builder()
                .timeout(Duration::from_secs(2))
                .build()
                .expect("client");
            let mut tick = tokio::time::interval(Duration::from_millis(25));
            let mut n: u64 = 0;
            loop {
                tick.tick().await;
                n += 1;
                let request = if n.is_multiple_of(2) {
                    client.get(format!("{url}/v2/items"))
                } else {
                    client
                        .post(format!("{url}/v2/reservations"))
                        .json(&json!({"item": "a-1", "count": 1}))
                };
                let _ = request.bearer_auth(TOKEN).send().await;
            }
        })
    }
}

/// Counts every request by method, path, code and origin, and every 5xx by its reason header.
async fn count(State(state): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let origin = if request.headers().contains_key("x-fixloop-validation") {
        "fixloop"
    } else {
        "user"
    };
    let response = next.run(request).await;
    let code = response.status().as_u16();
    *state
        .requests
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry((method.clone(), path.clone(), code, origin.to_owned()))
        .or_default() += 1;
    if code >= 500 && origin == "user" {
        *state
            .errors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((method, path, code, "database unavailable".to_owned()))
            .or_default() += 1;
    }
    response
}

/// The hold switch of `GET /v2/me`.
struct Hold {
    /// True while requests are held.
    holding: watch::Sender<bool>,
    /// How many requests were held so far.
    arrived: watch::Sender<u64>,
}

impl Default for Hold {
    fn default() -> Self {
        Self {
            holding: watch::channel(false).0,
            arrived: watch::channel(0).0,
        }
    }
}

impl Hold {
    fn set(&self, hold: bool) {
        self.holding.send_replace(hold);
    }

    /// Returns at once, or when released if holding.
    async fn pass(&self) {
        let mut holding = self.holding.subscribe();
        if *holding.borrow_and_update() {
            self.arrived.send_modify(|count| *count += 1);
            let _ = holding.wait_for(|holding| !*holding).await;
        }
    }
}

fn authorized(headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value == format!("Bearer {TOKEN}"))
}

fn unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(json!({"error": "database unavailable"})),
    )
        .into_response()
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(json!({"error": "missing or wrong token"})),
    )
        .into_response()
}

async fn items(State(state): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if !authorized(&headers) {
        return unauthorized();
    }
    if state.failing.load(Ordering::SeqCst) {
        return unavailable();
    }
    axum::Json(json!({"items": [{"sku": "a-1", "stock": 3}]})).into_response()
}

async fn item(State(state): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if !authorized(&headers) {
        return unauthorized();
    }
    if state.failing.load(Ordering::SeqCst) {
        return unavailable();
    }
    axum::Json(json!({"sku": "a-1", "stock": 3})).into_response()
}

async fn reserve(
    State(state): State<Arc<Shared>>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    if !authorized(&headers) {
        return unauthorized();
    }
    if body["count"].as_i64().unwrap_or(0) <= 0 {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(json!({"error": "invalid_count"})),
        )
            .into_response();
    }
    if state.failing.load(Ordering::SeqCst) {
        return unavailable();
    }
    (
        StatusCode::CREATED,
        axum::Json(json!({"reservation_id": "r-1", "item": body["item"]})),
    )
        .into_response()
}

async fn me(State(state): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if !authorized(&headers) {
        return unauthorized();
    }
    state.hold.pass().await;
    axum::Json(json!({"service_account": "inventory-reader"})).into_response()
}

async fn set_failing(
    State(state): State<Arc<Shared>>,
    axum::Json(body): axum::Json<Value>,
) -> StatusCode {
    state
        .failing
        .store(body["enabled"].as_bool().unwrap_or(false), Ordering::SeqCst);
    StatusCode::NO_CONTENT
}

async fn metrics(State(state): State<Arc<Shared>>) -> Response {
    if state.metrics_off.load(Ordering::SeqCst) {
        return (StatusCode::NOT_FOUND, "no exporter here").into_response();
    }
    let mut text = String::from("# TYPE inventory_http_requests_total counter\n");
    let requests = state
        .requests
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    for ((method, path, code, origin), value) in &requests {
        let _ = writeln!(
            text,
            "inventory_http_requests_total{{method=\"{method}\",path=\"{path}\",code=\"{code}\",origin=\"{origin}\"}} {value}"
        );
    }
    // Every request is fast: all of them fall in the first bucket.
    text.push_str("# TYPE inventory_request_seconds histogram\n");
    let mut by_series: BTreeMap<(String, String), u64> = BTreeMap::new();
    for ((_, path, _, origin), value) in &requests {
        *by_series.entry((path.clone(), origin.clone())).or_default() += value;
    }
    for ((path, origin), value) in &by_series {
        for le in ["0.05", "0.5", "+Inf"] {
            let _ = writeln!(
                text,
                "inventory_request_seconds_bucket{{path=\"{path}\",origin=\"{origin}\",le=\"{le}\"}} {value}"
            );
        }
        let _ = writeln!(
            text,
            "inventory_request_seconds_count{{path=\"{path}\",origin=\"{origin}\"}} {value}"
        );
    }
    text.push_str("# TYPE inventory_errors_total counter\n");
    let errors = state
        .errors
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    for ((method, path, code, reason), value) in &errors {
        let _ = writeln!(
            text,
            "inventory_errors_total{{method=\"{method}\",path=\"{path}\",code=\"{code}\",reason=\"{reason}\"}} {value}"
        );
    }
    text.into_response()
}

/// The inventory's profile: `signals` is the `[service.signals]` table's body (TOML lines).
pub(crate) fn profile(name: &str, url: &str, signals: &str) -> String {
    format!(
        r#"
[[service]]
name = "{name}"
description = "Stock levels and reservations of the warehouse."
base_url = "{url}"
alert_labels = {{ service = "{name}" }}

[service.signals]
{signals}

[service.thresholds]
trigger_error_percent = 5
recovery_error_percent = 1
window_secs = 4
min_samples = 2
recovery_samples = 2
min_requests = 3
poll_interval_secs = 0.5

[[service.journeys]]
id = "health"
name = "Health answers"
path = "/healthz"
pass_criteria = "status == 200 && json.ok == true"
priority = 5

[[service.journeys]]
id = "items-list"
name = "Items are listed"
path = "/v2/items"
headers = {{ authorization = "Bearer ${{env:INVENTORY_TOKEN}}" }}
pass_criteria = "status == 200 && len(json.items) > 0"
priority = 2

[[service.journeys]]
id = "item-read"
name = "One item is read"
path = "/v2/items/a-1"
route = "/v2/items"
headers = {{ authorization = "Bearer ${{env:INVENTORY_TOKEN}}" }}
pass_criteria = "status == 200 && json.sku == \"a-1\""
priority = 6

[[service.journeys]]
id = "reserve"
name = "A reservation is accepted"
method = "POST"
path = "/v2/reservations"
headers = {{ authorization = "Bearer ${{env:INVENTORY_TOKEN}}", content-type = "application/json" }}
body = {{ item = "a-1", count = 1 }}
pass_criteria = "status == 201 && json.reservation_id exists"
priority = 1

[[service.journeys]]
id = "reserve-invalid"
name = "A reservation of nothing is refused"
method = "POST"
path = "/v2/reservations"
headers = {{ authorization = "Bearer ${{env:INVENTORY_TOKEN}}", content-type = "application/json" }}
body = {{ item = "a-1", count = 0 }}
pass_criteria = "status == 422 && json.error == \"invalid_count\""
priority = 3

[[service.journeys]]
id = "whoami"
name = "The service account is recognised"
path = "/v2/me"
headers = {{ authorization = "Bearer ${{env:INVENTORY_TOKEN}}" }}
pass_criteria = "status == 200 && json.service_account exists"
priority = 4

[[service.journeys]]
id = "anonymous-refused"
name = "A request without a token is refused"
path = "/v2/items"
pass_criteria = "status == 401"
priority = 7

[[service.coverage]]
name = "negative reservation test"
path = "/v2/reservations"
method = "POST"
check = "expects_client_error"

[[service.coverage]]
name = "auth check"
path = "/v2/me"
check = "sends_authorization"
"#
    )
}

/// The `[service.signals]` body of a scrape of the inventory's own metrics.
pub(crate) const SCRAPE: &str = r#"source = "scrape"
requests_metric = "inventory_http_requests_total"
duration_metric = "inventory_request_seconds"
errors_metric = "inventory_errors_total"
route_label = "path"
status_label = "code"
error_label = "reason"
exclude = { origin = "fixloop" }"#;

/// The `[service.signals]` body of FixLoop's own probes (no metrics at all).
pub(crate) const SYNTHETIC: &str = r#"source = "synthetic"
journeys = ["health", "items-list"]"#;
