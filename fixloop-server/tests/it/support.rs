//! Shared test support: an orchestrator over fake ports driven in-process, request helpers, and an event reader
//! with a timeout on every wait.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use fixloop_adapters::Copilot;
use fixloop_adapters::fake::{FakeCopilot, FakePlanner, FakeSignalSource, FakeTestRunner};
use fixloop_contract::WsEnvelope;
use fixloop_core::engine::Config as EngineConfig;
use fixloop_server::runtime::ServiceHandle;
use fixloop_server::runtime::driver::{Driver, DriverConfig, Ports};
use fixloop_server::runtime::metrics::ServerMetrics;
use fixloop_server::runtime::stream::Outgoing;
use fixloop_server::{ApiSettings, AppState, router};
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tower::ServiceExt;

/// The longest any single wait in a test may take.
pub(crate) const WAIT: Duration = Duration::from_secs(20);

/// The base URL the fake-backed engine plans against (never contacted: the fake runner simulates it).
pub(crate) const FAKE_SERVICE_URL: &str = "http://demo.invalid:8001";

/// An orchestrator over fakes, with its driver running.
pub(crate) struct TestApp {
    /// The router under test.
    pub(crate) router: Router,
    /// The driver's handle (to subscribe to events).
    pub(crate) driver: ServiceHandle,
    /// The fake signal source.
    pub(crate) signals: Arc<FakeSignalSource>,
    /// The fake planner.
    pub(crate) planner: Arc<FakePlanner>,
    /// The fake runner.
    pub(crate) runner: Arc<FakeTestRunner>,
    /// The fake copilot.
    pub(crate) copilot: Arc<FakeCopilot>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl TestApp {
    /// An app with default settings (no webhooks, demo service at `demo_url`).
    pub(crate) fn start(demo_url: &str) -> Self {
        Self::start_with(demo_url, |_| {})
    }

    /// An app whose settings `tweak` adjusts.
    pub(crate) fn start_with(demo_url: &str, tweak: impl FnOnce(&mut ApiSettings)) -> Self {
        Self::start_with_copilot(demo_url, None, tweak)
    }

    /// An app whose copilot is `copilot` (the fake when `None`) and whose settings `tweak` adjusts.
    pub(crate) fn start_with_copilot(
        demo_url: &str,
        copilot_override: Option<Arc<dyn Copilot>>,
        tweak: impl FnOnce(&mut ApiSettings),
    ) -> Self {
        Self::build(
            demo_url,
            copilot_override,
            tweak,
            |_, _| {},
            None,
            None,
            None,
        )
    }

    /// An app whose settings `tweak` adjusts and whose CI intake is `ci`.
    pub(crate) fn start_tuned_with_ci(
        demo_url: &str,
        tweak: impl FnOnce(&mut ApiSettings),
        ci: fixloop_server::http::routes::ci::CiIntakeState,
    ) -> Self {
        Self::build(demo_url, None, tweak, |_, _| {}, Some(ci), None, None)
    }

    /// An app whose CI intake is `ci` (its token, forwarding and store).
    pub(crate) fn start_with_ci(
        demo_url: &str,
        ci: fixloop_server::http::routes::ci::CiIntakeState,
    ) -> Self {
        Self::build(demo_url, None, |_| {}, |_, _| {}, Some(ci), None, None)
    }

    /// An app whose settings `tweak` adjusts, and whose driver `tune` adjusts (it may add ports, or change the
    /// engine's configuration knowing the ports).
    pub(crate) fn start_tuned(
        demo_url: &str,
        tweak: impl FnOnce(&mut ApiSettings),
        tune: impl FnOnce(&mut DriverConfig, &mut Ports),
    ) -> Self {
        Self::build(demo_url, None, tweak, tune, None, None, None)
    }

    /// [`TestApp::start_tuned`] whose driver carries out remediation actions with `executor`.
    pub(crate) fn start_remediating(
        demo_url: &str,
        tweak: impl FnOnce(&mut ApiSettings),
        tune: impl FnOnce(&mut DriverConfig, &mut Ports),
        executor: Arc<dyn fixloop_adapters::Executor>,
    ) -> Self {
        Self::build(demo_url, None, tweak, tune, None, Some(executor), None)
    }

    /// [`TestApp::start_remediating`] whose driver asks `chooser` when the engine wants a model's pick.
    pub(crate) fn start_choosing(
        demo_url: &str,
        tune: impl FnOnce(&mut DriverConfig, &mut Ports),
        executor: Arc<dyn fixloop_adapters::Executor>,
        chooser: Arc<dyn fixloop_adapters::RemediationChooser>,
    ) -> Self {
        Self::build(
            demo_url,
            None,
            |_| {},
            tune,
            None,
            Some(executor),
            Some(chooser),
        )
    }

    fn build(
        demo_url: &str,
        copilot_override: Option<Arc<dyn Copilot>>,
        tweak: impl FnOnce(&mut ApiSettings),
        tune: impl FnOnce(&mut DriverConfig, &mut Ports),
        ci: Option<fixloop_server::http::routes::ci::CiIntakeState>,
        executor: Option<Arc<dyn fixloop_adapters::Executor>>,
        chooser: Option<Arc<dyn fixloop_adapters::RemediationChooser>>,
    ) -> Self {
        let signals = Arc::new(FakeSignalSource::new());
        let planner = Arc::new(FakePlanner::new());
        let runner = Arc::new(FakeTestRunner::new());
        let copilot = Arc::new(FakeCopilot::new());
        let mut ports = Ports {
            signals: signals.clone(),
            planner: planner.clone(),
            rule_planner: Arc::new(fixloop_adapters::RulePlanner),
            runner: runner.clone(),
            copilot: copilot.clone(),
            prober: Arc::new(FakeSignalSource::new()),
            context: None,
        };
        // The engine reads the signals once at start, then not for an hour: a test feeds what it needs.
        let engine = EngineConfig {
            poll_interval: Duration::from_secs(3600),
            confirm_delay: Duration::from_secs(3600),
            ..EngineConfig::short_windows(
                fixloop_server::profile::demo_profile(FAKE_SERVICE_URL).spec,
                "test",
            )
        };
        let mut config = DriverConfig {
            engine,
            signal_timeout: Duration::from_secs(5),
            websocket_queue: 256,
            origin: None,
        };
        tune(&mut config, &mut ports);
        let metrics = Arc::new(ServerMetrics::default());
        let (driver, handle) = Driver::new(config, ports.clone(), Arc::clone(&metrics));
        let driver = match executor {
            Some(executor) => driver.with_executor(executor),
            None => driver,
        };
        let driver = match chooser {
            Some(chooser) => driver.with_chooser(chooser),
            None => driver,
        };
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(driver.run(async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }));
        let mut settings = ApiSettings::new("http://orchestrator.test", demo_url);
        settings.upstream_timeout = Duration::from_millis(500);
        settings.copilot_timeout = Duration::from_millis(500);
        tweak(&mut settings);
        let state = AppState {
            services: fixloop_server::runtime::services::Services::new(vec![
                fixloop_server::runtime::services::WatchedService {
                    name: "demo-checkout".to_owned(),
                    base_url: FAKE_SERVICE_URL.to_owned(),
                    alert_labels: std::collections::BTreeMap::new(),
                    signals: "injected by the caller".to_owned(),
                    driver: handle.clone(),
                    // The copilot's look-ups read the same fake signal source as the driver.
                    copilot_sources: fixloop_server::copilot::tools::CopilotSources {
                        signals: Some(Arc::clone(&ports.signals)),
                        context: ports.context.clone(),
                    },
                },
            ]),
            copilot: copilot_override.unwrap_or(ports.copilot),
            metrics,
            settings: Arc::new(settings),
            http: fixloop_adapters::default_client(),
            reloader: fixloop_server::runtime::reload::Reloader::without_profile(),
            ci: ci.unwrap_or_else(|| {
                fixloop_server::http::routes::ci::CiIntakeState::off(Arc::new(
                    fixloop_adapters::fake::FakeStore::new(),
                ))
            }),
            replicas: None,
        };
        Self {
            router: router(state),
            driver: handle,
            signals,
            planner,
            runner,
            copilot,
            stop,
            task,
        }
    }

    /// Sends a request through the router.
    pub(crate) async fn send(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = tokio::time::timeout(WAIT, self.router.clone().oneshot(request))
            .await
            .expect("the router answers in time")
            .expect("the router is infallible");
        let status = response.status();
        let bytes =
            tokio::time::timeout(WAIT, axum::body::to_bytes(response.into_body(), usize::MAX))
                .await
                .expect("the body arrives in time")
                .expect("the body is readable");
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        (status, value)
    }

    /// `GET path`.
    pub(crate) async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(Request::get(path).body(Body::empty()).unwrap())
            .await
    }

    /// `GET path` as text (for example `/metrics`).
    pub(crate) async fn text(&self, path: &str) -> String {
        let request = Request::get(path).body(Body::empty()).unwrap();
        let response = tokio::time::timeout(WAIT, self.router.clone().oneshot(request))
            .await
            .expect("the router answers in time")
            .expect("the router is infallible");
        assert_eq!(response.status(), StatusCode::OK);
        let bytes =
            tokio::time::timeout(WAIT, axum::body::to_bytes(response.into_body(), usize::MAX))
                .await
                .expect("the body arrives in time")
                .expect("the body is readable");
        String::from_utf8(bytes.to_vec()).expect("text")
    }

    /// `POST path` with a JSON body.
    pub(crate) async fn post_json(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.send(
            Request::post(path)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
    }

    /// Subscribes to the event stream (the join snapshot comes first).
    pub(crate) async fn events(&self) -> Events {
        Events {
            queue: tokio::time::timeout(WAIT, self.driver.subscribe())
                .await
                .expect("subscribe in time")
                .expect("the driver is running"),
        }
    }

    /// Subscribes to the event stream with the optional event `groups` (the join snapshot comes first).
    pub(crate) async fn events_of(
        &self,
        groups: fixloop_server::runtime::stream::EventGroups,
    ) -> Events {
        Events {
            queue: tokio::time::timeout(WAIT, self.driver.subscribe_to(None, groups))
                .await
                .expect("subscribe in time")
                .expect("the driver is running")
                .queue,
        }
    }

    /// Opens a simulated incident and waits until its plan is generated; returns the incident id.
    pub(crate) async fn open_incident_with_plan(&self) -> String {
        self.open_incident_with_plan_as_token(None).await
    }

    /// [`TestApp::open_incident_with_plan`] sending `token` as the bearer token.
    pub(crate) async fn open_incident_with_plan_as(&self, token: &str) -> String {
        self.open_incident_with_plan_as_token(Some(token)).await
    }

    async fn open_incident_with_plan_as_token(&self, token: Option<&str>) -> String {
        let mut events = self.events().await;
        let mut request = Request::post("/api/incidents/simulate")
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = serde_json::json!({"mode": "INCIDENT_ON"}).to_string();
        let (status, card) = self.send(request.body(Body::from(body)).unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{card}");
        let plan = events.next_of("plan.generated").await;
        plan["payload"]["incident_id"].as_str().unwrap().to_owned()
    }

    /// Stops the driver and waits for it.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(true);
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("the driver stops in time")
            .expect("the driver does not panic");
    }
}

/// The events of one subscriber.
pub(crate) struct Events {
    queue: mpsc::Receiver<Outgoing>,
}

impl Events {
    /// The next event as JSON (validated as a `WsEnvelope`).
    pub(crate) async fn next(&mut self) -> Value {
        match tokio::time::timeout(WAIT, self.queue.recv()).await {
            Ok(Some(Outgoing::Event { text, .. })) => {
                let value: Value = serde_json::from_str(text.as_str()).expect("events are JSON");
                serde_json::from_value::<WsEnvelope>(value.clone())
                    .expect("events are WsEnvelopes");
                value
            }
            Ok(other) => panic!("expected an event, got {other:?}"),
            Err(_) => panic!("no event within {WAIT:?}"),
        }
    }

    /// The events already queued, without waiting (each validated as a `WsEnvelope`).
    pub(crate) fn queued(&mut self) -> Vec<Value> {
        let mut events = Vec::new();
        while let Ok(outgoing) = self.queue.try_recv() {
            if let Outgoing::Event { text, .. } = outgoing {
                let value: Value = serde_json::from_str(text.as_str()).expect("events are JSON");
                serde_json::from_value::<WsEnvelope>(value.clone())
                    .expect("events are WsEnvelopes");
                events.push(value);
            }
        }
        events
    }

    /// Skips events until one of type `kind`.
    pub(crate) async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let event = self.next().await;
            if event["type"] == kind {
                return event;
            }
        }
    }
}

/// The `code` of an error body, checking the body has the contract's shape.
pub(crate) fn error_code(body: &Value) -> &str {
    serde_json::from_value::<fixloop_contract::ErrorBody>(body.clone())
        .unwrap_or_else(|error| panic!("not an ErrorBody ({error}): {body}"));
    body["code"].as_str().unwrap()
}
