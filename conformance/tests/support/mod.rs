//! Test-only servers for the self-check: a scripted contract server and a mutating reverse proxy, plus helpers
//! to run the suite against them with bounded timeouts.

pub(crate) mod mutant;
pub(crate) mod scripted;

use std::time::Duration;

use fixloop_conformance::{Outcome, Report, Selection, Spec, Target, WebhookSecret};

/// A test server on an ephemeral loopback port; dropping it stops it.
pub(crate) struct LoopbackServer {
    /// `http://127.0.0.1:<port>`: point the runner here.
    pub(crate) base_url: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        self.task.abort();
    }
}

/// Serves `router` on an ephemeral loopback port until the returned server is dropped.
pub(crate) async fn serve_on_loopback(router: axum::Router) -> LoopbackServer {
    let (listener, _) = bind_loopback().await;
    serve_listener(listener, router)
}

/// Binds an ephemeral loopback port; returns the listener and its `http://` URL (for a server that must know its
/// own address before it serves).
pub(crate) async fn bind_loopback() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    (listener, format!("http://{addr}"))
}

/// Serves `router` on `listener` until the returned server is dropped.
pub(crate) fn serve_listener(
    listener: tokio::net::TcpListener,
    router: axum::Router,
) -> LoopbackServer {
    let addr = listener.local_addr().expect("local addr");
    let (shutdown, on_shutdown) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = on_shutdown.await;
            })
            .await;
    });
    LoopbackServer {
        base_url: format!("http://{addr}"),
        shutdown: Some(shutdown),
        task,
    }
}

/// Upper bound on any single suite run in these tests.
pub(crate) const SUITE_BOUND: Duration = Duration::from_secs(60);

/// Runs `selection` against `base_url` with the embedded spec and the given flow timeout, bounded by
/// [`SUITE_BOUND`].
pub(crate) async fn run(base_url: &str, selection: Selection, flow_timeout: Duration) -> Report {
    run_with_secret(base_url, selection, flow_timeout, None).await
}

/// [`run`], giving the runner the webhook secret (so the `webhook/…` cases run).
pub(crate) async fn run_with_secret(
    base_url: &str,
    selection: Selection,
    flow_timeout: Duration,
    webhook_secret: Option<&str>,
) -> Report {
    let mut target =
        Target::new(base_url, Spec::embedded().expect("embedded spec")).expect("target");
    target.flow_timeout = flow_timeout;
    target.request_timeout = Duration::from_secs(10);
    target.webhook_secret = webhook_secret.map(WebhookSecret::new);
    tokio::time::timeout(SUITE_BOUND, fixloop_conformance::run(&target, &selection))
        .await
        .expect("the suite finishes within its bound")
}

/// The failures of a report, one per line, for assertion messages.
pub(crate) fn failures(report: &Report) -> String {
    report
        .cases
        .iter()
        .filter(|case| !matches!(case.outcome, Outcome::Pass))
        .map(|case| {
            format!(
                "{} {}: {}",
                case.outcome.label(),
                case.id,
                case.outcome.short_reason()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The `Fail` of case `id`, panicking with the report's failures when it is anything else.
pub(crate) fn expect_fail<'r>(report: &'r Report, id: &str) -> (&'r str, &'r str, &'r str) {
    match report.outcome(id) {
        Some(Outcome::Fail {
            expected,
            actual,
            path,
        }) => (expected, actual, path),
        other => panic!(
            "{id} should fail, got {other:?}; report:\n{}",
            failures(report)
        ),
    }
}

/// Flow timeout against the real server: its demo profile detects within ~2 s and recovers within ~10 s of bug
/// off (a 10 s detection window), so 20 s leaves room on a loaded machine.
pub(crate) const REAL_FLOW_TIMEOUT: Duration = Duration::from_secs(20);

/// The webhook secret the real demo is started with (`FIXLOOP_WEBHOOK_SECRET`), and the runner given.
pub(crate) const REAL_WEBHOOK_SECRET: &str = "conformance-real-webhook-secret";

/// The real FixLoop demo (orchestrator, demo service, traffic) in-process on ephemeral ports, its webhooks on.
pub(crate) async fn start_real() -> fixloop_server::RunningDemo {
    let mut options = fixloop_server::DemoOptions::ephemeral();
    options.config = fixloop_server::Config::from_env_map(&std::collections::HashMap::from([(
        "FIXLOOP_WEBHOOK_SECRET".to_owned(),
        REAL_WEBHOOK_SECRET.to_owned(),
    )]))
    .expect("a valid configuration");
    tokio::time::timeout(Duration::from_secs(20), fixloop_server::start_demo(options))
        .await
        .expect("the demo starts in time")
        .expect("the demo starts")
}

/// Stops the real demo, bounded.
pub(crate) async fn stop_real(demo: fixloop_server::RunningDemo) {
    let _ = tokio::time::timeout(Duration::from_secs(15), demo.shutdown()).await;
}
