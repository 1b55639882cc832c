//! [`DockerRestartExecutor`] against a stub Docker daemon on a Unix socket in a temporary directory, speaking the
//! documented endpoints (wave2-apis §4): `GET /_ping` with `Api-Version`, `POST /v{N}/containers/{id}/restart?t=`
//! answering 204, 404 `{"message":"No such container: …"}` and 500 `{"message":…}`, and 400 for an API version it
//! does not serve.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use fixloop_adapters::{
    ActionRequest, ActionStatus, DockerRestartAction, DockerRestartExecutor,
    DockerRestartExecutorConfig, ErrorKind, Executor,
};
use serde_json::json;

use crate::contract::{bounded, fixed_now};
use crate::executors::{DEADLINE, ExecutorScenario, LIMIT, Target, chatty_text, executor};

/// The API version the stub daemon serves (its ping offers a newer one; the executor must pick 1.41).
const SERVED_VERSION: &str = "v1.41";

/// The stub daemon's state.
#[derive(Debug)]
struct Daemon {
    target: Mutex<Target>,
    restarts: AtomicUsize,
    last_query: Mutex<Option<BTreeMap<String, String>>>,
    /// The `State` of each inspect answer in turn (the last one repeats).
    states: Mutex<Vec<serde_json::Value>>,
    inspections: AtomicUsize,
}

/// A stub daemon serving on `<tempdir>/docker.sock` until dropped.
struct DockerStub {
    directory: tempfile::TempDir,
    daemon: Arc<Daemon>,
    server: tokio::task::JoinHandle<()>,
}

impl DockerStub {
    async fn start() -> Self {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let listener = tokio::net::UnixListener::bind(directory.path().join("docker.sock"))
            .expect("bind the stub socket");
        let daemon = Arc::new(Daemon {
            target: Mutex::new(Target::Completes),
            restarts: AtomicUsize::new(0),
            last_query: Mutex::new(None),
            states: Mutex::new(vec![json!({"Status": "running", "Running": true})]),
            inspections: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/_ping", get(ping))
            .route("/{version}/containers/{id}/restart", post(restart))
            .route("/{version}/containers/{id}/json", get(inspect))
            .with_state(daemon.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            directory,
            daemon,
            server,
        }
    }

    fn socket(&self) -> PathBuf {
        self.directory.path().join("docker.sock")
    }
}

impl Drop for DockerStub {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn ping() -> Response {
    (
        [("api-version", "1.45"), ("server", "Docker/27.0.0 (linux)")],
        "OK",
    )
        .into_response()
}

async fn restart(
    State(daemon): State<Arc<Daemon>>,
    Path((version, id)): Path<(String, String)>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    daemon.restarts.fetch_add(1, Ordering::SeqCst);
    *daemon.last_query.lock().unwrap() = Some(query);
    if version != SERVED_VERSION {
        let message = format!(
            "client version {} is too new. Maximum supported API version is 1.41",
            version.trim_start_matches('v')
        );
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"message": message})),
        )
            .into_response();
    }
    let target = *daemon.target.lock().unwrap();
    match target {
        Target::Completes | Target::Unreachable => StatusCode::NO_CONTENT.into_response(),
        Target::Fails => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"message": format!("No such container: {id}")})),
        )
            .into_response(),
        Target::Slow => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            StatusCode::NO_CONTENT.into_response()
        }
        Target::Chatty => (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(json!({"message": chatty_text()})),
        )
            .into_response(),
    }
}

async fn inspect(
    State(daemon): State<Arc<Daemon>>,
    Path((_, id)): Path<(String, String)>,
) -> Response {
    let turn = daemon.inspections.fetch_add(1, Ordering::SeqCst);
    let states = daemon.states.lock().unwrap();
    let state = states[turn.min(states.len() - 1)].clone();
    axum::Json(
        json!({"Id": "4fa6e0f0c678", "Name": format!("/{id}"), "RestartCount": 1, "State": state}),
    )
    .into_response()
}

struct DockerScenario(DockerStub);

#[async_trait]
impl ExecutorScenario for DockerScenario {
    async fn arrange(&self, target: Target) {
        *self.0.daemon.target.lock().unwrap() = target;
        if target == Target::Unreachable {
            // Nothing listens at a socket path that no longer exists.
            std::fs::remove_file(self.0.socket()).expect("remove the stub socket");
        }
    }

    fn request(&self) -> ActionRequest {
        ActionRequest::new("restart-container", DEADLINE, fixed_now())
            .with_argument("container", "web")
    }

    async fn attempts(&self) -> usize {
        self.0.daemon.restarts.load(Ordering::SeqCst)
    }

    fn output_limit(&self) -> usize {
        LIMIT
    }

    fn secret(&self) -> Option<String> {
        None
    }
}

fn config(socket: PathBuf) -> DockerRestartExecutorConfig {
    DockerRestartExecutorConfig {
        socket,
        allowed_containers: vec!["web".to_owned()],
        actions: BTreeMap::from([(
            "restart-container".to_owned(),
            DockerRestartAction {
                container: "{container}".to_owned(),
                stop_timeout: Duration::from_secs(3),
                wait_until_healthy: false,
            },
        )]),
        output_limit: LIMIT,
        ..DockerRestartExecutorConfig::default()
    }
}

#[tokio::test]
async fn docker_restart_executor_meets_the_executor_contract() {
    executor::check_all(|| async {
        let stub = DockerStub::start().await;
        let executor: Arc<dyn Executor> =
            Arc::new(DockerRestartExecutor::new(config(stub.socket())));
        (
            executor,
            Box::new(DockerScenario(stub)) as Box<dyn ExecutorScenario>,
        )
    })
    .await;
}

#[tokio::test]
async fn docker_restart_negotiates_1_41_and_passes_the_stop_timeout() {
    let stub = DockerStub::start().await;
    let executor = DockerRestartExecutor::new(config(stub.socket()));
    let request = ActionRequest::new("restart-container", DEADLINE, fixed_now())
        .with_argument("container", "web");
    let outcome = bounded("execute", executor.execute(&request))
        .await
        .unwrap();
    assert_eq!(outcome.status, ActionStatus::Completed, "{outcome:?}");
    assert_eq!(outcome.detail, "container web restarted");
    let query = stub.daemon.last_query.lock().unwrap().clone().unwrap();
    assert_eq!(query.get("t").map(String::as_str), Some("3"));
    let description = executor.describe(&request).unwrap();
    assert!(
        description
            .summary
            .starts_with("POST /v{negotiated}/containers/web/restart?t=3 on "),
        "{description:?}"
    );
}

#[tokio::test]
async fn docker_no_such_container_is_a_failed_restart_with_the_daemons_message() {
    let stub = DockerStub::start().await;
    *stub.daemon.target.lock().unwrap() = Target::Fails;
    let executor = DockerRestartExecutor::new(config(stub.socket()));
    let request = ActionRequest::new("restart-container", DEADLINE, fixed_now())
        .with_argument("container", "web");
    let outcome = bounded("execute", executor.execute(&request))
        .await
        .unwrap();
    assert_eq!(outcome.status, ActionStatus::Failed);
    assert_eq!(outcome.detail, "No such container: web");
}

#[tokio::test]
async fn docker_version_the_daemon_refuses_is_an_invalid_response() {
    let stub = DockerStub::start().await;
    let executor = DockerRestartExecutor::new(DockerRestartExecutorConfig {
        api_version: Some("1.44".to_owned()),
        ..config(stub.socket())
    });
    let request = ActionRequest::new("restart-container", DEADLINE, fixed_now())
        .with_argument("container", "web");
    let error = bounded("execute", executor.execute(&request))
        .await
        .unwrap_err();
    assert_eq!(
        error.kind(),
        ErrorKind::InvalidResponse,
        "{}",
        error.detail()
    );
    assert!(
        error
            .to_string()
            .contains("Maximum supported API version is 1.41"),
        "{error}"
    );
}

#[tokio::test]
async fn docker_container_outside_the_allowlist_is_refused() {
    let stub = DockerStub::start().await;
    let executor = DockerRestartExecutor::new(config(stub.socket()));
    let request = ActionRequest::new("restart-container", DEADLINE, fixed_now())
        .with_argument("container", "database");
    let error = bounded("execute", executor.execute(&request))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Refused, "{}", error.detail());
    assert_eq!(stub.daemon.restarts.load(Ordering::SeqCst), 0);
}

/// An executor whose action waits until the container is healthy, polling every 10 ms.
fn waiting_executor(stub: &DockerStub) -> DockerRestartExecutor {
    let mut config = config(stub.socket());
    for action in config.actions.values_mut() {
        action.wait_until_healthy = true;
    }
    config.health_poll_interval = Duration::from_millis(10);
    DockerRestartExecutor::new(config)
}

fn health(status: &str) -> serde_json::Value {
    json!({"Status": "running", "Running": true, "Health": {"Status": status, "FailingStreak": 0, "Log": []}})
}

#[tokio::test]
async fn docker_restart_waits_until_the_container_is_healthy() {
    let stub = DockerStub::start().await;
    *stub.daemon.states.lock().unwrap() =
        vec![health("starting"), health("starting"), health("healthy")];
    let request = ActionRequest::new("restart-container", DEADLINE, fixed_now())
        .with_argument("container", "web");
    let outcome = bounded("execute", waiting_executor(&stub).execute(&request))
        .await
        .unwrap();
    assert_eq!(outcome.status, ActionStatus::Completed, "{outcome:?}");
    assert_eq!(outcome.detail, "container web restarted and healthy");
    assert_eq!(stub.daemon.inspections.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn docker_restart_without_healthcheck_completes_once_running() {
    let stub = DockerStub::start().await;
    *stub.daemon.states.lock().unwrap() = vec![
        json!({"Status": "restarting", "Running": true, "Restarting": true}),
        json!({"Status": "running", "Running": true}),
    ];
    let request = ActionRequest::new("restart-container", DEADLINE, fixed_now())
        .with_argument("container", "web");
    let outcome = bounded("execute", waiting_executor(&stub).execute(&request))
        .await
        .unwrap();
    assert_eq!(outcome.status, ActionStatus::Completed, "{outcome:?}");
    assert_eq!(
        outcome.detail,
        "container web restarted and running (no healthcheck)"
    );
}

#[tokio::test]
async fn docker_restart_that_turns_unhealthy_or_never_settles_is_not_completed() {
    let stub = DockerStub::start().await;
    *stub.daemon.states.lock().unwrap() = vec![health("starting"), health("unhealthy")];
    let request = ActionRequest::new("restart-container", DEADLINE, fixed_now())
        .with_argument("container", "web");
    let executor = waiting_executor(&stub);
    let outcome = bounded("execute", executor.execute(&request))
        .await
        .unwrap();
    assert_eq!(outcome.status, ActionStatus::Failed, "{outcome:?}");
    assert_eq!(outcome.detail, "container web restarted but unhealthy");

    *stub.daemon.states.lock().unwrap() = vec![health("starting")];
    let short = ActionRequest {
        deadline: Duration::from_millis(300),
        ..request
    };
    let error = bounded("execute", executor.execute(&short))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Timeout, "{}", error.detail());
}
