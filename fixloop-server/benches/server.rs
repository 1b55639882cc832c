//! Criterion benchmarks of the reference server, in-process and on loopback only: REST latency and concurrent
//! throughput through [`fixloop_server::router`] over the fake ports (a driver round trip, and the 400 path that
//! never reaches the driver), the WebSocket [`Hub`]'s cost per published event for 1, 10 and 100 subscribers, and
//! the publish→receive latency of one event over a real loopback WebSocket.
//!
//! Run with `cargo bench -p fixloop-server --bench server`; the whole run takes about a minute. Every batch of
//! iterations is bounded by [`BATCH_LIMIT`], so a hang fails the run instead of stalling it.

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_main};
use fixloop_adapters::fake::{FakeCopilot, FakePlanner, FakeSignalSource, FakeTestRunner};
use fixloop_contract::chrono::{DateTime, Utc};
use fixloop_contract::{CopilotAnswer, IncidentState, Link, SystemStatus, WsEnvelope, WsMessage};
use fixloop_core::engine::Config as EngineConfig;
use fixloop_server::runtime::ServiceHandle;
use fixloop_server::runtime::driver::{Driver, DriverConfig, Ports};
use fixloop_server::runtime::metrics::ServerMetrics;
use fixloop_server::runtime::stream::{DEFAULT_QUEUE_CAPACITY, Hub, Outgoing};
use fixloop_server::{ApiSettings, AppState, router};
use futures_util::StreamExt;
use tokio::runtime::Runtime;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tower::ServiceExt;

/// The longest one batch of iterations (or one setup step) may take before the run fails.
const BATCH_LIMIT: Duration = Duration::from_secs(60);

/// The base URL the engine plans against; never contacted (the fake runner simulates it).
const FAKE_SERVICE_URL: &str = "http://demo.invalid:8001";

/// How many requests are in flight at once in the concurrent REST benchmarks.
const CONCURRENCY: u64 = 16;

/// The subscriber counts of the fan-out benchmarks.
const SUBSCRIBERS: [usize; 3] = [1, 10, 100];

/// A multi-thread runtime like the server's (two workers: the machine the demo runs on).
fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Runs `future` on `runtime`, failing the benchmark if it takes longer than [`BATCH_LIMIT`].
fn bounded<T>(runtime: &Runtime, what: &str, future: impl Future<Output = T>) -> T {
    runtime.block_on(async {
        tokio::time::timeout(BATCH_LIMIT, future)
            .await
            .unwrap_or_else(|_| panic!("{what} did not finish within {BATCH_LIMIT:?}"))
    })
}

/// Runs `future` as a task on a worker thread (where handlers and the driver run, so wake-ups between tasks are
/// what they are in the server, not a park of the `block_on` thread), bounded like [`bounded`].
fn on_worker<T: Send + 'static>(
    runtime: &Runtime,
    what: &str,
    future: impl Future<Output = T> + Send + 'static,
) -> T {
    let task = runtime.spawn(future);
    bounded(runtime, what, task).expect("the measured task does not panic")
}

/// An orchestrator over fake ports with its driver running, built the way the integration tests build it.
struct App {
    router: Router,
    driver: ServiceHandle,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl App {
    /// Starts the driver on the current runtime.
    fn start() -> Self {
        let copilot = Arc::new(FakeCopilot::new());
        let ports = Ports {
            signals: Arc::new(FakeSignalSource::new()),
            planner: Arc::new(FakePlanner::new()),
            rule_planner: Arc::new(fixloop_adapters::RulePlanner),
            runner: Arc::new(FakeTestRunner::new()),
            copilot: copilot.clone(),
            prober: Arc::new(FakeSignalSource::new()),
            context: None,
        };
        let config = DriverConfig {
            // One read at start, then none for an hour: the bench measures the API, not polling.
            engine: EngineConfig {
                poll_interval: Duration::from_secs(3600),
                confirm_delay: Duration::from_secs(3600),
                ..EngineConfig::short_windows(
                    fixloop_server::profile::demo_profile(FAKE_SERVICE_URL).spec,
                    "bench",
                )
            },
            signal_timeout: Duration::from_secs(5),
            websocket_queue: DEFAULT_QUEUE_CAPACITY,
            origin: None,
        };
        let metrics = Arc::new(ServerMetrics::default());
        let (driver, handle) = Driver::new(config, ports, Arc::clone(&metrics));
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(driver.run(async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }));
        let state = AppState {
            services: fixloop_server::runtime::services::Services::single(
                "demo-checkout",
                FAKE_SERVICE_URL,
                handle.clone(),
            ),
            copilot,
            metrics,
            settings: Arc::new(ApiSettings::new(
                "http://orchestrator.bench",
                "http://demo.invalid:8001",
            )),
            http: fixloop_adapters::default_client(),
            reloader: fixloop_server::runtime::reload::Reloader::without_profile(),
            ci: fixloop_server::http::routes::ci::CiIntakeState::off(Arc::new(
                fixloop_adapters::fake::FakeStore::new(),
            )),
            replicas: None,
        };
        Self {
            router: router(state),
            driver: handle,
            stop,
            task,
        }
    }

    /// Opens a simulated incident and waits until its plan is generated, so the card is complete.
    async fn open_incident(&self) {
        let mut events = self.driver.subscribe().await.expect("the driver runs");
        let status = send(
            &self.router,
            post_json("/api/incidents/simulate", r#"{"mode":"INCIDENT_ON"}"#),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "the incident opens");
        loop {
            let Some(Outgoing::Event { text, .. }) = events.recv().await else {
                panic!("the driver closed the queue before plan.generated");
            };
            let envelope: WsEnvelope =
                serde_json::from_str(text.as_str()).expect("events are envelopes");
            if matches!(envelope.message, WsMessage::PlanGenerated(_)) {
                break;
            }
        }
    }

    /// Stops the driver and waits for it.
    async fn stop(self) {
        let _ = self.stop.send(true);
        self.task.await.expect("the driver does not panic");
    }
}

fn get(path: &'static str) -> Request<Body> {
    Request::get(path)
        .body(Body::empty())
        .expect("a valid request")
}

fn post_json(path: &'static str, body: &'static str) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .expect("a valid request")
}

/// Sends `request` through the router and reads the whole body; returns the status.
async fn send(router: &Router, request: Request<Body>) -> StatusCode {
    let response = router
        .clone()
        .oneshot(request)
        .await
        .expect("the router is infallible");
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("the body is readable");
    black_box(body);
    status
}

/// One REST case: a request to repeat and the status it must get.
struct Case {
    name: &'static str,
    request: fn() -> Request<Body>,
    expect: StatusCode,
}

static CASES: [Case; 3] = [
    Case {
        name: "get_status",
        request: || get("/api/status"),
        expect: StatusCode::OK,
    },
    Case {
        name: "get_current_incident",
        request: || get("/api/incidents/current"),
        expect: StatusCode::OK,
    },
    Case {
        name: "ask_malformed_json_400",
        request: || post_json("/api/copilot/ask", r#"{"question": "why"#),
        expect: StatusCode::BAD_REQUEST,
    },
];

/// `iters` requests one after the other: the latency of one request.
async fn sequential(router: Router, case: &'static Case, iters: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        let status = send(&router, (case.request)()).await;
        assert_eq!(status, case.expect, "{}", case.name);
    }
    start.elapsed()
}

/// `iters` requests spread over [`CONCURRENCY`] tasks: the time per request under load (1 / throughput).
async fn concurrent(router: Router, case: &'static Case, iters: u64) -> Duration {
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    for worker in 0..CONCURRENCY {
        let share = iters / CONCURRENCY + u64::from(worker < iters % CONCURRENCY);
        let router = router.clone();
        let (request, expect, name) = (case.request, case.expect, case.name);
        tasks.spawn(async move {
            for _ in 0..share {
                let status = send(&router, request()).await;
                assert_eq!(status, expect, "{name}");
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.expect("no request task panics");
    }
    start.elapsed()
}

fn bench_rest(c: &mut Criterion) {
    let runtime = runtime();
    let app = bounded(&runtime, "starting the app", async {
        let app = App::start();
        app.open_incident().await;
        app
    });

    let mut group = c.benchmark_group("rest");
    group.throughput(Throughput::Elements(1));
    for case in &CASES {
        group.bench_function(case.name, |b| {
            b.iter_custom(|iters| {
                on_worker(
                    &runtime,
                    case.name,
                    sequential(app.router.clone(), case, iters),
                )
            });
        });
    }
    group.finish();

    let mut group = c.benchmark_group(format!("rest_concurrent_{CONCURRENCY}"));
    group.throughput(Throughput::Elements(1));
    for case in &CASES {
        group.bench_function(case.name, |b| {
            b.iter_custom(|iters| {
                on_worker(
                    &runtime,
                    case.name,
                    concurrent(app.router.clone(), case, iters),
                )
            });
        });
    }
    group.finish();

    bounded(&runtime, "stopping the app", app.stop());
}

fn timestamp() -> DateTime<Utc> {
    "2026-11-21T10:15:00Z".parse().expect("a valid timestamp")
}

/// The most frequent event: a `system.status` (published whenever the signals move).
fn status_envelope() -> WsEnvelope {
    WsMessage::SystemStatus(SystemStatus {
        status: IncidentState::IncidentActive,
        error_rate_5m: 0.42,
        p95_latency_ms_5m: 1250.0,
        active_incident_id: Some("inc-bench-0001".to_owned()),
        updated_at: timestamp(),
        service: None,
        signals_degraded: None,
    })
    .at(timestamp())
}

/// Driver-side cost of `Hub::broadcast` (serialize once, `try_send` to every queue), with idle receivers that
/// are drained outside the measurement.
fn bench_hub_broadcast(c: &mut Criterion) {
    let envelope = status_envelope();
    let mut group = c.benchmark_group("ws_hub_broadcast");
    for subscribers in SUBSCRIBERS {
        group.throughput(Throughput::Elements(subscribers as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(subscribers),
            &subscribers,
            |b, &subscribers| {
                let mut hub = Hub::new(DEFAULT_QUEUE_CAPACITY);
                let mut queues: Vec<_> = (0..subscribers).map(|_| hub.subscribe(&[])).collect();
                b.iter_custom(|iters| {
                    let mut elapsed = Duration::ZERO;
                    let mut left = iters;
                    while left > 0 {
                        // Never more than a queue holds, so no subscriber is dropped.
                        let chunk = left.min(DEFAULT_QUEUE_CAPACITY as u64);
                        let start = Instant::now();
                        for _ in 0..chunk {
                            let dropped = hub.broadcast(black_box(&envelope));
                            black_box(dropped);
                        }
                        elapsed += start.elapsed();
                        for queue in &mut queues {
                            while queue.try_recv().is_ok() {}
                        }
                        left -= chunk;
                    }
                    assert_eq!(hub.len(), subscribers, "no subscriber was dropped");
                    elapsed
                });
            },
        );
    }
    group.finish();
}

/// Subscribers parked on their queues in tasks (as connections are), counting down one event's deliveries.
struct Fanout {
    hub: Hub,
    remaining: Arc<AtomicUsize>,
    delivered: Arc<Notify>,
    tasks: JoinSet<()>,
}

impl Fanout {
    fn start(subscribers: usize) -> Self {
        let mut hub = Hub::new(DEFAULT_QUEUE_CAPACITY);
        let remaining = Arc::new(AtomicUsize::new(0));
        let delivered = Arc::new(Notify::new());
        let mut tasks = JoinSet::new();
        for _ in 0..subscribers {
            let mut queue: mpsc::Receiver<Outgoing> = hub.subscribe(&[]);
            let remaining = Arc::clone(&remaining);
            let delivered = Arc::clone(&delivered);
            tasks.spawn(async move {
                while let Some(outgoing) = queue.recv().await {
                    black_box(outgoing);
                    if remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                        delivered.notify_one();
                    }
                }
            });
        }
        Self {
            hub,
            remaining,
            delivered,
            tasks,
        }
    }

    /// Publishes `envelope` and waits until every subscriber task has received it.
    async fn publish_and_wait(&mut self, envelope: &WsEnvelope) {
        self.remaining.store(self.hub.len(), Ordering::Release);
        let dropped = self.hub.broadcast(envelope);
        assert_eq!(dropped, 0, "no subscriber is dropped");
        self.delivered.notified().await;
    }

    /// Closes every queue and waits for the subscriber tasks.
    async fn stop(mut self) {
        drop(self.hub);
        while let Some(joined) = self.tasks.join_next().await {
            joined.expect("no subscriber task panics");
        }
    }
}

/// One event from `broadcast` until every one of N parked subscriber tasks has it (the wake-ups included).
fn bench_hub_delivery(c: &mut Criterion) {
    let runtime = runtime();
    let envelope = status_envelope();
    let mut group = c.benchmark_group("ws_hub_deliver_all");
    for subscribers in SUBSCRIBERS {
        group.throughput(Throughput::Elements(subscribers as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(subscribers),
            &subscribers,
            |b, &subscribers| {
                let mut fanout = Some(bounded(&runtime, "spawning subscribers", async {
                    Fanout::start(subscribers)
                }));
                b.iter_custom(|iters| {
                    let mut moved = fanout.take().expect("the fan-out is back");
                    let envelope = envelope.clone();
                    let (moved, elapsed) = on_worker(&runtime, "fan-out", async move {
                        let start = Instant::now();
                        for _ in 0..iters {
                            moved.publish_and_wait(&envelope).await;
                        }
                        (moved, start.elapsed())
                    });
                    fanout = Some(moved);
                    elapsed
                });
                let fanout = fanout.expect("the fan-out is back");
                bounded(&runtime, "stopping subscribers", fanout.stop());
            },
        );
    }
    group.finish();
}

/// The server on a loopback port, and one WebSocket client that has read its join snapshot.
async fn loopback_client() -> (
    App,
    watch::Sender<bool>,
    JoinHandle<()>,
    tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
) {
    let app = App::start();
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .expect("a loopback port");
    let address = listener.local_addr().expect("a bound address");
    let (stop, mut stopped) = watch::channel(false);
    let serve = axum::serve(listener, app.router.clone()).with_graceful_shutdown(async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    });
    let server = tokio::spawn(async move {
        serve.await.expect("the server runs");
    });
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connects on loopback");
    stream.set_nodelay(true).expect("TCP_NODELAY");
    let (mut socket, _) = tokio_tungstenite::client_async(format!("ws://{address}/ws"), stream)
        .await
        .expect("the WebSocket handshake succeeds");
    let snapshot = socket
        .next()
        .await
        .expect("the socket is open")
        .expect("no socket error");
    assert!(snapshot.is_text(), "the join snapshot comes first");
    (app, stop, server, socket)
}

/// From sending the driver the command that publishes one `copilot.answer` to the loopback client reading it:
/// driver round trip, engine, hub, connection task, axum and tungstenite framing, TCP loopback.
fn bench_websocket_loopback(c: &mut Criterion) {
    let runtime = runtime();
    let (app, stop, server, socket) = bounded(&runtime, "connecting", loopback_client());
    let mut socket = Some(socket);
    let answer = CopilotAnswer {
        incident_id: None,
        question: "Is checkout recovered?".to_owned(),
        answer: "Not yet: 2 of 5 validation tests still fail.".to_owned(),
        citations: vec![Link {
            label: "latest run".to_owned(),
            url: "http://orchestrator.bench/api/tests/runs/run-bench-0001".to_owned(),
        }],
        created_at: timestamp(),
        answered_by: None,
        fallback_reason: None,
        redacted: None,
    };

    let mut group = c.benchmark_group("ws_loopback");
    group.throughput(Throughput::Elements(1));
    group.bench_function("publish_to_receive", |b| {
        b.iter_custom(|iters| {
            let mut moved = socket.take().expect("the socket is back");
            let driver = app.driver.clone();
            let answer = answer.clone();
            let (moved, elapsed) = on_worker(&runtime, "publish to receive", async move {
                let start = Instant::now();
                for _ in 0..iters {
                    driver
                        .copilot_answered(answer.clone())
                        .await
                        .expect("the driver runs");
                    // A server ping (every 20 s) may come first; tungstenite answers it while reading.
                    loop {
                        let frame = moved
                            .next()
                            .await
                            .expect("the socket is open")
                            .expect("no socket error");
                        if frame.is_text() {
                            break;
                        }
                    }
                }
                (moved, start.elapsed())
            });
            socket = Some(moved);
            elapsed
        });
    });
    group.finish();

    let mut socket = socket.expect("the socket is back");
    bounded(&runtime, "stopping the server", async {
        let _ = socket.close(None).await;
        drop(socket);
        app.stop().await;
        let _ = stop.send(true);
        server.await.expect("the server task does not panic");
    });
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
}

/// The benchmark group; the macro generates an undocumented public function.
mod groups {
    #![allow(missing_docs, unreachable_pub)]
    criterion::criterion_group! {
        name = benches;
        config = super::config();
        targets = super::bench_rest, super::bench_hub_broadcast, super::bench_hub_delivery,
            super::bench_websocket_loopback
    }
}

criterion_main!(groups::benches);
