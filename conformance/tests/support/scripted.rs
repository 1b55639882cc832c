//! A scripted, test-only implementation of the FixLoop contract: it walks the seed's demo flow deterministically
//! (bug on → `incident.created` → `plan.generated` with five items → `tests.updated` with a FAIL → bug off → a
//! passing rerun → `RECOVERED`), emitting every event synchronously inside the request that causes it. It proves
//! the runner and the mutants independently of the real server.
//!
//! Two switches reproduce servers that need the seed's fallbacks: one that never detects an incident by itself
//! (only through `/api/incidents/simulate`), and one that never starts a run by itself (only through
//! `/api/tests/run`).
//!
//! [`Script::seed_backend`] is shaped like the seed's own backend: `seed_only` and no run starting by itself.
//!
//! `seed_only` turns it into a backend written from the seed alone, the way a FastAPI implementation behaves:
//! errors are `{"detail": …}` (422 for every invalid body, malformed JSON included), no body-size or length
//! limits, no join snapshot on the WebSocket, timestamps without a UTC offset (`datetime.isoformat()` of a naive
//! time), error rates in percent, and none of FixLoop's additive endpoints or webhooks. The server plays the demo
//! app too: `POST /checkout` answers 500 while the bug is on, and the plan's targets point at it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Body;
use axum::extract::ws::{
    Message, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection,
};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use fixloop_contract::{
    CopilotAnswer, CopilotAskRequest, DatadogSummary, ErrorBody, HttpMethod, IncidentCard,
    IncidentState, Link, Plan, PlanGenerated, PlanItem, PlanItemType, RunStatus, RunTestsRequest,
    SetBugRequest, Signal, SimulateMode, SimulateRequest, SystemStatus, Target, TestResult,
    TestRun, TestStatus, WsMessage,
};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::broadcast;

/// How the scripted server behaves.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Script {
    /// Whether bug on opens an incident by itself (else only `/api/incidents/simulate` does).
    pub(crate) detects_by_itself: bool,
    /// Whether a plan starts a run by itself, and bug off reruns by itself (else only `/api/tests/run` does).
    pub(crate) runs_by_itself: bool,
    /// Whether a new WebSocket client first gets the current state (status, incident, run).
    pub(crate) sends_state_on_connect: bool,
    /// Whether `plan.generated` is (wrongly) sent before `incident.created`.
    pub(crate) plan_before_incident: bool,
    /// Whether the server implements only the seed (FastAPI style; see the module documentation).
    pub(crate) seed_only: bool,
    /// A seed violation: the checkout test passes while the bug is on.
    pub(crate) tests_pass_while_bug_on: bool,
    /// The webhook secret of the FixLoop webhooks (ignored when `seed_only`); `None` answers 401 to every delivery.
    pub(crate) webhook_secret: Option<&'static str>,
}

/// The webhook secret the tests give the scripted server and the runner.
pub(crate) const WEBHOOK_SECRET: &str = "scripted-webhook-secret-0123456789";

impl Default for Script {
    fn default() -> Self {
        Self {
            detects_by_itself: true,
            runs_by_itself: true,
            sends_state_on_connect: true,
            plan_before_incident: false,
            seed_only: false,
            tests_pass_while_bug_on: false,
            webhook_secret: Some(WEBHOOK_SECRET),
        }
    }
}

impl Script {
    /// A backend that implements only the seed, correctly.
    pub(crate) fn seed_only() -> Self {
        Self {
            seed_only: true,
            sends_state_on_connect: false,
            webhook_secret: None,
            ..Self::default()
        }
    }

    /// A backend shaped like the seed's own (a FastAPI one): seed only, `{"detail": …}` errors, and no run that
    /// starts by itself (only `POST /api/tests/run` starts one, also after the fix).
    pub(crate) fn seed_backend() -> Self {
        Self {
            runs_by_itself: false,
            ..Self::seed_only()
        }
    }
}

/// A running scripted server; stops when dropped.
pub(crate) type ScriptedServer = super::LoopbackServer;

/// Starts a scripted server on an ephemeral loopback port.
pub(crate) async fn start(script: Script) -> ScriptedServer {
    let (events, _) = broadcast::channel(256);
    let (listener, base_url) = super::bind_loopback().await;
    let app = App(Arc::new(Shared {
        script,
        base_url,
        state: Mutex::new(World::default()),
        events,
    }));
    let mut router = Router::new()
        .route("/api/status", get(get_status))
        .route("/api/demo/bug", post(set_bug))
        .route("/api/incidents/current", get(current_incident))
        .route("/api/incidents/simulate", post(simulate))
        .route("/api/tests/run", post(run_tests))
        .route("/api/tests/runs/{run_id}", get(get_run))
        .route("/api/copilot/ask", post(ask))
        .route("/ws", get(ws))
        .route("/checkout", post(checkout));
    if !script.seed_only {
        router = router
            .route("/api/services", get(list_services))
            .route("/api/services/{name}", get(get_service))
            .route("/api/admin/reload", post(reload_profile))
            .route("/api/ci/logs", post(submit_ci_logs).get(list_ci_logs))
            .route("/api/ci/incidents", get(list_ci_incidents))
            .route("/api/remediations", get(list_remediations))
            .route("/api/remediations/stats", get(remediation_stats))
            .route(
                "/api/remediations/{proposal_id}/approve",
                post(decide_remediation),
            )
            .route(
                "/api/remediations/{proposal_id}/reject",
                post(decide_remediation),
            )
            .route("/api/remediation/kill-switch", post(set_kill_switch))
            .route("/api/replicas", get(list_replicas))
            .route("/api/incidents", get(list_incidents))
            .route("/api/incidents/{incident_id}", get(get_incident))
            .route("/internal/datadog/webhook", post(datadog_webhook))
            .route("/internal/alertmanager/webhook", post(alertmanager_webhook));
    }
    let router = router
        .fallback(|State(app): State<App>| async move {
            app.error(StatusCode::NOT_FOUND, "route_not_found", "Not Found")
        })
        .with_state(app);
    super::serve_listener(listener, router)
}

#[derive(Clone)]
struct App(Arc<Shared>);

struct Shared {
    script: Script,
    /// The server's own URL: the plan's targets point here, where `/checkout` is served.
    base_url: String,
    state: Mutex<World>,
    events: broadcast::Sender<String>,
}

#[derive(Default)]
struct World {
    status: Option<IncidentState>,
    bug: bool,
    incident: Option<IncidentCard>,
    runs: BTreeMap<String, TestRun>,
    current_run: Option<String>,
    incidents_opened: u32,
}

impl World {
    fn status(&self) -> IncidentState {
        self.status.unwrap_or(IncidentState::Healthy)
    }
}

impl App {
    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.0.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn emit(&self, message: WsMessage) {
        let _ = self.0.events.send(self.wire_text(&message.at(Utc::now())));
    }

    /// A document as this server puts it on the wire: a seed-only server writes naive timestamps.
    fn wire(&self, value: &impl serde::Serialize) -> Value {
        let mut value = serde_json::to_value(value).expect("serializes");
        if self.0.script.seed_only {
            strip_offsets(&mut value);
        }
        value
    }

    fn wire_text(&self, value: &impl serde::Serialize) -> String {
        self.wire(value).to_string()
    }

    /// A 200 with `value` as JSON.
    fn json(&self, value: &impl serde::Serialize) -> Response {
        axum::Json(self.wire(value)).into_response()
    }

    /// An error: FixLoop's `ErrorBody`, or a seed-only server's FastAPI `{"detail": …}` (422 for every invalid
    /// request).
    fn error(&self, status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        if self.0.script.seed_only {
            let status = match status.as_u16() {
                400 | 413 | 415 | 422 => StatusCode::UNPROCESSABLE_ENTITY,
                _ => status,
            };
            let detail = if status == StatusCode::UNPROCESSABLE_ENTITY {
                serde_json::json!([{"type": code, "loc": ["body"], "msg": message.into()}])
            } else {
                Value::String(message.into())
            };
            ApiError(status, serde_json::json!({ "detail": detail }))
        } else {
            ApiError::new(status, code, message)
        }
    }

    fn system_status(world: &World) -> SystemStatus {
        let (error_rate, latency) = if world.bug {
            (40.0, 180.0)
        } else {
            (0.0, 12.0)
        };
        SystemStatus {
            status: world.status(),
            error_rate_5m: error_rate,
            p95_latency_ms_5m: latency,
            active_incident_id: world.incident.as_ref().map(|card| card.incident_id.clone()),
            updated_at: Utc::now(),
            service: None,
            signals_degraded: None,
        }
    }

    fn set_status(&self, world: &mut World, status: IncidentState) {
        if world.status() != status || world.status.is_none() {
            world.status = Some(status);
            self.emit(WsMessage::SystemStatus(Self::system_status(world)));
        }
    }

    /// Opens an incident and generates its plan; starts a run when the script says so.
    fn open_incident(&self, world: &mut World) {
        if world.incident.is_some() {
            return;
        }
        world.incidents_opened += 1;
        let incident_id = format!("inc-{:04}", world.incidents_opened);
        let now = Utc::now();
        let card = IncidentCard {
            incident_id: incident_id.clone(),
            title: "High 5xx error rate on demo-checkout".to_owned(),
            detected_at: now,
            datadog_summary: DatadogSummary {
                monitor_id: None,
                service: "demo-checkout".to_owned(),
                signal: Signal {
                    error_rate_5m: 40.0,
                    p95_latency_ms_5m: 180.0,
                    top_error: Some("POST /checkout -> 500".to_owned()),
                },
                evidence_links: vec![Link {
                    label: "metrics".to_owned(),
                    url: "http://127.0.0.1:8001/metrics".to_owned(),
                }],
            },
            plan: Plan {
                plan_id: format!("plan-{:04}", world.incidents_opened),
                generated_at: now,
                items: Vec::new(),
            },
        };
        world.incident = Some(card.clone());
        self.set_status(world, IncidentState::IncidentActive);
        let plan = Plan {
            plan_id: format!("plan-{:04}", world.incidents_opened),
            generated_at: Utc::now(),
            items: seed_plan(&self.0.base_url),
        };
        let generated = WsMessage::PlanGenerated(PlanGenerated {
            incident_id,
            plan: plan.clone(),
        });
        if self.0.script.plan_before_incident {
            self.emit(generated.clone());
            self.emit(WsMessage::IncidentCreated(card));
        } else {
            self.emit(WsMessage::IncidentCreated(card));
            self.emit(generated);
        }
        if let Some(card) = world.incident.as_mut() {
            card.plan = plan;
        }
        if self.0.script.runs_by_itself {
            self.run(world);
        }
    }

    /// Runs the plan synchronously: checkout fails while the bug is on. Returns the run id.
    fn run(&self, world: &mut World) -> Option<String> {
        let card = world.incident.clone()?;
        let run_id = format!("run-{:04}", world.runs.len() + 1);
        let started_at = Utc::now();
        let mut run = TestRun {
            run_id: run_id.clone(),
            incident_id: card.incident_id.clone(),
            started_at,
            status: RunStatus::Running,
            tests: card
                .plan
                .items
                .iter()
                .map(|item| TestResult {
                    test_id: item.test_id.clone(),
                    name: item.name.clone(),
                    status: TestStatus::Pending,
                    last_update_at: started_at,
                    details: None,
                })
                .collect(),
        };
        world.current_run = Some(run_id.clone());
        self.set_status(world, IncidentState::Validating);
        world.runs.insert(run_id.clone(), run.clone());
        self.emit(WsMessage::TestsUpdated(run.clone()));

        let mut all_pass = true;
        for test in &mut run.tests {
            let fails = world.bug
                && test.test_id == "t1-checkout-valid"
                && !self.0.script.tests_pass_while_bug_on;
            all_pass &= !fails;
            test.status = if fails {
                TestStatus::Fail
            } else {
                TestStatus::Pass
            };
            test.details = Some(
                if fails {
                    "expected status == 200, got 500"
                } else {
                    "ok"
                }
                .to_owned(),
            );
            test.last_update_at = Utc::now();
        }
        run.status = RunStatus::Completed;
        world.runs.insert(run_id.clone(), run.clone());
        self.emit(WsMessage::TestsUpdated(run));
        let next = if all_pass && !world.bug {
            IncidentState::Recovered
        } else {
            IncidentState::IncidentActive
        };
        self.set_status(world, next);
        Some(run_id)
    }

    fn close_incident(&self, world: &mut World) {
        if world.incident.take().is_some() {
            world.current_run = None;
            self.set_status(world, IncidentState::Healthy);
        }
    }
}

/// Strips the UTC offset from every RFC 3339 timestamp, as Python's `isoformat()` of a naive time writes them.
fn strip_offsets(value: &mut Value) {
    match value {
        Value::Object(object) => object.values_mut().for_each(strip_offsets),
        Value::Array(items) => items.iter_mut().for_each(strip_offsets),
        Value::String(text) if chrono::DateTime::parse_from_rfc3339(text).is_ok() => {
            let cut = if text.ends_with('Z') || text.ends_with('z') {
                1
            } else {
                6
            };
            text.truncate(text.len() - cut);
        }
        _ => {}
    }
}

fn seed_plan(base: &str) -> Vec<PlanItem> {
    let item =
        |n: u32, id: &str, name: &str, method, path: &str, criteria: &str, auth: bool| PlanItem {
            test_id: id.to_owned(),
            name: name.to_owned(),
            kind: PlanItemType::Api,
            priority: n,
            what_it_checks: format!("{name} behaves"),
            target: Target {
                method,
                url: format!("{base}{path}"),
                headers: if auth {
                    BTreeMap::from([("Authorization".to_owned(), "Bearer demo-token".to_owned())])
                } else {
                    BTreeMap::new()
                },
                body_json: serde_json::Map::new(),
            },
            pass_criteria: criteria.to_owned(),
        };
    vec![
        item(
            1,
            "t1-checkout-valid",
            "Checkout succeeds",
            HttpMethod::Post,
            "/checkout",
            "status == 200",
            false,
        ),
        item(
            2,
            "t2-health",
            "Health endpoint",
            HttpMethod::Get,
            "/health",
            "status == 200",
            false,
        ),
        item(
            3,
            "t3-catalog",
            "Catalog lists products",
            HttpMethod::Get,
            "/catalog",
            "status == 200",
            false,
        ),
        item(
            4,
            "t4-checkout-invalid",
            "Invalid checkout is rejected",
            HttpMethod::Post,
            "/checkout",
            "status == 422",
            false,
        ),
        item(
            5,
            "t5-auth",
            "Auth accepts the demo token",
            HttpMethod::Get,
            "/auth/me",
            "status == 200",
            true,
        ),
    ]
}

async fn get_status(State(app): State<App>) -> Response {
    let world = app.world();
    app.json(&App::system_status(&world))
}

async fn set_bug(
    State(app): State<App>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let request: SetBugRequest = json_body(&app, &headers, body).await?;
    let mut world = app.world();
    if world.status.is_none() {
        world.status = Some(IncidentState::Healthy);
    }
    world.bug = request.enabled;
    if request.enabled {
        if app.0.script.detects_by_itself {
            app.open_incident(&mut world);
        }
    } else if world.incident.is_some()
        && app.0.script.runs_by_itself
        && world.status() != IncidentState::Recovered
    {
        app.run(&mut world);
    }
    Ok(app.json(&App::system_status(&world)))
}

/// The one service this scripted server plays, as `GET /api/services` lists it.
fn service_state(world: &World) -> Value {
    serde_json::json!({
        "name": "demo-checkout",
        "base_url": "http://127.0.0.1:8001",
        "signals": "scripted",
        "status": App::system_status(world),
        "current_incident": world.incident,
    })
}

async fn list_services(State(app): State<App>) -> Response {
    let world = app.world();
    app.json(&vec![service_state(&world)])
}

async fn get_service(State(app): State<App>, Path(name): Path<String>) -> Response {
    let world = app.world();
    if name == "demo-checkout" {
        app.json(&service_state(&world))
    } else {
        (
            StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({
                "code": "service_not_found",
                "message": "no such service",
                "details": []
            })),
        )
            .into_response()
    }
}

/// The scripted server plays a server started without a profile file: nothing to reload.
async fn reload_profile() -> Response {
    (
        StatusCode::CONFLICT,
        axum::Json(serde_json::json!({
            "code": "no_profile",
            "message": "no profile file",
            "details": []
        })),
    )
        .into_response()
}

/// The scripted server plays a server without a CI token: the intake is off.
async fn submit_ci_logs() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({
            "code": "ci_intake_disabled",
            "message": "the CI intake is off",
            "details": []
        })),
    )
        .into_response()
}

/// The scripted server keeps no CI intakes.
async fn list_ci_logs(State(app): State<App>) -> Response {
    app.json(&serde_json::json!({"intakes": []}))
}

/// The scripted server keeps no CI history: no CI incidents.
async fn list_ci_incidents(State(app): State<App>) -> Response {
    app.json(&serde_json::json!({"incidents": []}))
}

/// The scripted server proposes no remediation; its kill switch was never switched.
async fn list_remediations(State(app): State<App>) -> Response {
    app.json(&serde_json::json!({"proposals": [], "kill_switch": {"engaged": false}}))
}

/// The scripted server has no remediation figures.
async fn remediation_stats(State(app): State<App>) -> Response {
    app.json(&serde_json::json!({"actions": []}))
}

/// The scripted server knows no proposal.
async fn decide_remediation() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({
            "code": "proposal_not_found",
            "message": "no remediation proposal has this id",
            "details": []
        })),
    )
        .into_response()
}

/// The scripted server's kill switch: a JSON body (at most 64 KiB) `{"engaged": bool}` is answered with the state,
/// anything else 4xx.
async fn set_kill_switch(
    State(app): State<App>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    let engaged = serde_json::from_slice::<Value>(&body)
        .ok()
        .filter(|_| json && body.len() <= 65_536)
        .and_then(|value| value.get("engaged").and_then(Value::as_bool));
    match engaged {
        Some(engaged) => {
            app.json(&serde_json::json!({"engaged": engaged, "changed_by": "scripted"}))
        }
        None => (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(serde_json::json!({
                "code": "invalid_body",
                "message": "the request body does not match the schema",
                "details": []
            })),
        )
            .into_response(),
    }
}

/// The scripted server is one replica with a journal of its own, leading its one service.
async fn list_replicas(State(app): State<App>) -> Response {
    app.json(&serde_json::json!({"replicas": [{
        "replica_id": "this-process",
        "url": "http://127.0.0.1:8000",
        "last_seen": "2026-12-07T21:30:00Z",
        "leads": [{"service": "demo-checkout", "epoch": 1, "lease_expires_at": null}],
    }]}))
}

/// The scripted server keeps no history: an empty last page.
async fn list_incidents(State(app): State<App>) -> Response {
    app.json(&serde_json::json!({"incidents": [], "next_before": null}))
}

async fn get_incident(State(app): State<App>) -> Response {
    app.error(
        StatusCode::NOT_FOUND,
        "incident_not_found",
        "the scripted server keeps no incident history",
    )
    .into_response()
}

async fn current_incident(State(app): State<App>) -> Response {
    let world = app.world();
    app.json(&world.incident)
}

async fn simulate(
    State(app): State<App>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let request: SimulateRequest = json_body(&app, &headers, body).await?;
    let mut world = app.world();
    match request.mode {
        SimulateMode::IncidentOn => app.open_incident(&mut world),
        SimulateMode::IncidentOff => app.close_incident(&mut world),
    }
    Ok(app.json(&world.incident))
}

async fn run_tests(
    State(app): State<App>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let request: RunTestsRequest = json_body(&app, &headers, body).await?;
    // A seed-only server has no length bounds.
    if !app.0.script.seed_only
        && (request.incident_id.is_empty() || request.incident_id.chars().count() > 128)
    {
        return Err(app.error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "incident_id must be 1 to 128 characters",
        ));
    }
    let mut world = app.world();
    let open = world.incident.as_ref().map(|card| card.incident_id.clone());
    if open.as_deref() != Some(request.incident_id.as_str()) {
        return Err(app.error(
            StatusCode::NOT_FOUND,
            "incident_not_found",
            format!("no incident has id {}", request.incident_id),
        ));
    }
    let run_id = app
        .run(&mut world)
        .ok_or_else(|| app.error(StatusCode::CONFLICT, "plan_not_ready", "no plan yet"))?;
    Ok(app.json(&world.runs[&run_id]))
}

async fn get_run(State(app): State<App>, Path(run_id): Path<String>) -> Result<Response, ApiError> {
    let world = app.world();
    world
        .runs
        .get(&run_id)
        .map(|run| app.json(run))
        .ok_or_else(|| {
            app.error(
                StatusCode::NOT_FOUND,
                "run_not_found",
                format!("no run has id {run_id}"),
            )
        })
}

async fn ask(State(app): State<App>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let request: CopilotAskRequest = json_body(&app, &headers, body).await?;
    let length = request.question.chars().count();
    if !app.0.script.seed_only
        && (length == 0
            || length > 4000
            || request
                .incident_id
                .as_ref()
                .is_some_and(|id| id.chars().count() > 128))
    {
        return Err(app.error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "question must be 1 to 4000 characters",
        ));
    }
    let world = app.world();
    if let Some(id) = &request.incident_id
        && world.incident.as_ref().map(|card| &card.incident_id) != Some(id)
    {
        return Err(app.error(
            StatusCode::NOT_FOUND,
            "incident_not_found",
            format!("no incident has id {id}"),
        ));
    }
    let answer = CopilotAnswer {
        incident_id: request.incident_id,
        question: request.question,
        answer: "Everything is fine.".to_owned(),
        citations: Vec::new(),
        created_at: Utc::now(),
        answered_by: None,
        fallback_reason: None,
        redacted: None,
    };
    app.emit(WsMessage::CopilotAnswer(answer.clone()));
    Ok(app.json(&answer))
}

async fn ws(
    State(app): State<App>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    match upgrade {
        Ok(upgrade) => upgrade.on_upgrade(move |socket| session(app, socket)),
        Err(_) => app
            .error(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                "expected a WebSocket upgrade request",
            )
            .into_response(),
    }
}

async fn session(app: App, mut socket: WebSocket) {
    // Snapshot and subscription under one lock, so nothing is missed or sent twice.
    let (snapshot, mut events) = {
        let world = app.world();
        let mut snapshot = vec![WsMessage::SystemStatus(App::system_status(&world))];
        if let Some(card) = &world.incident {
            snapshot.push(WsMessage::IncidentCreated(card.clone()));
        }
        if let Some(run) = world.current_run.as_ref().and_then(|id| world.runs.get(id)) {
            snapshot.push(WsMessage::TestsUpdated(run.clone()));
        }
        if !app.0.script.sends_state_on_connect {
            snapshot.clear();
        }
        (snapshot, app.0.events.subscribe())
    };
    for message in snapshot {
        let text = app.wire_text(&message.at(Utc::now()));
        if socket.send(Message::Text(text.into())).await.is_err() {
            return;
        }
    }
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(text) => {
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(_)) => continue,
                _ => return,
            },
        }
    }
}

/// Reads a JSON body the way the contract asks: 415, 413, 400 and 422 with an `ErrorBody` (a seed-only server:
/// any content type is read as JSON, no size limit, and 422 `{"detail": …}` for every invalid body).
async fn json_body<T: DeserializeOwned>(
    app: &App,
    headers: &HeaderMap,
    body: Body,
) -> Result<T, ApiError> {
    let seed_only = app.0.script.seed_only;
    let json_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if !json_type && !seed_only {
        return Err(app.error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected Content-Type: application/json",
        ));
    }
    let limit = if seed_only {
        4 * 1024 * 1024
    } else {
        64 * 1024
    };
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        app.error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body is larger than {limit} bytes"),
        )
    })?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|error| {
        app.error(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the request body is not valid JSON: {error}"),
        )
    })?;
    serde_json::from_value(value).map_err(|error| {
        app.error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            format!("the request body does not match the schema: {error}"),
        )
    })
}

/// `POST /checkout` of the demo app: 500 while the bug is on.
async fn checkout(State(app): State<App>) -> Response {
    if app.world().bug {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(serde_json::json!({"detail": "checkout is broken (demo bug)"})),
        )
            .into_response();
    }
    axum::Json(serde_json::json!({"order_id": "ord-1", "status": "confirmed"})).into_response()
}

/// Checks a webhook delivery: the secret, then a JSON body.
fn admit_webhook(app: &App, headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    let given = headers
        .get("x-fixloop-webhook-secret")
        .and_then(|value| value.to_str().ok());
    match (app.0.script.webhook_secret, given) {
        (Some(expected), Some(given)) if expected == given => {}
        _ => {
            return Err(app.error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "the webhook secret is missing or wrong",
            ));
        }
    }
    serde_json::from_slice(body).map_err(|error| {
        app.error(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the request body is not valid JSON: {error}"),
        )
    })
}

/// Whether an alert's service label names the one service this server watches.
fn watched(service: Option<&str>) -> bool {
    service == Some("demo-checkout")
}

async fn datadog_webhook(
    State(app): State<App>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let payload = admit_webhook(&app, &headers, &body)?;
    let scope = payload["alert_scope"].as_str().unwrap_or("");
    let service = scope
        .split(',')
        .filter_map(|tag| tag.trim().strip_prefix("service:"))
        .next();
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(serde_json::json!({"accepted": watched(service)})),
    )
        .into_response())
}

async fn alertmanager_webhook(
    State(app): State<App>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let payload = admit_webhook(&app, &headers, &body)?;
    let accepted = payload["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|alert| watched(alert["labels"]["service"].as_str()))
        .count();
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(serde_json::json!({ "accepted": accepted })),
    )
        .into_response())
}

struct ApiError(StatusCode, Value);

impl ApiError {
    fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self(
            status,
            serde_json::to_value(ErrorBody::new(code, message)).expect("serializes"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(self.1)).into_response()
    }
}
