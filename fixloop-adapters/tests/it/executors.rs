//! The executors: the shared [`Executor`] contract suite against [`FakeExecutor`], [`HttpActionExecutor`] and
//! [`KubernetesRolloutExecutor`] on wiremock stubs, [`CommandExecutor`] on `/bin/sh` scripts and
//! [`DockerRestartExecutor`] on a stub Docker daemon listening on a Unix socket in a temporary directory; plus
//! what is particular to each (allowlists, the exact request sent, the process group killed at the deadline).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use fixloop_adapters::fake::FakeExecutor;
use fixloop_adapters::{
    ActionRequest, ActionStatus, AdapterError, Captured, CommandAction, CommandExecutor,
    CommandExecutorConfig, ErrorKind, Executor, HttpAction, HttpActionExecutor,
    HttpActionExecutorConfig, KubernetesRolloutAction, KubernetesRolloutExecutor,
    KubernetesRolloutExecutorConfig, Secret,
};
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub(crate) use crate::contract::executor::{self, DEADLINE, ExecutorScenario, Target};
use crate::contract::{bounded, fixed_now};

/// The output limit every real executor of these tests is configured with.
pub(crate) const LIMIT: usize = 1024;

/// The secret every real executor of these tests holds.
pub(crate) const SECRET: &str = "s3cret-admin-token-42";

/// Output far longer than [`LIMIT`], the secret first.
pub(crate) fn chatty_text() -> String {
    format!("token={SECRET} {}", "x".repeat(20 * LIMIT))
}

// ---- the fake ----

struct FakeScenario(Arc<FakeExecutor>);

#[async_trait]
impl ExecutorScenario for FakeScenario {
    async fn arrange(&self, target: Target) {
        match target {
            Target::Completes => {}
            Target::Fails => self
                .0
                .push_outcome(fixloop_adapters::fake::failed_outcome("exit status 3")),
            Target::Slow => self.0.set_delay(Duration::from_secs(60)),
            Target::Chatty => {
                let text = chatty_text();
                self.0.push_outcome(fixloop_adapters::ActionOutcome {
                    output: Captured::from_bytes(
                        text.as_bytes(),
                        text.len() as u64,
                        LIMIT,
                        &[&Secret::new(SECRET)],
                    ),
                    ..fixloop_adapters::fake::completed_outcome("", Duration::ZERO)
                });
            }
            Target::Unreachable => self.0.set_failure(Some(ErrorKind::Unavailable)),
        }
    }

    fn request(&self) -> ActionRequest {
        ActionRequest::new("flush-cache", DEADLINE, fixed_now()).with_argument("region", "eu")
    }

    async fn attempts(&self) -> usize {
        self.0.calls().len()
    }

    fn output_limit(&self) -> usize {
        LIMIT
    }

    fn secret(&self) -> Option<String> {
        None
    }
}

#[tokio::test]
async fn fake_executor_meets_the_executor_contract() {
    executor::check_all(|| async {
        let fake = Arc::new(FakeExecutor::new().with_action("flush-cache", &["region"]));
        let executor: Arc<dyn Executor> = fake.clone();
        (
            executor,
            Box::new(FakeScenario(fake)) as Box<dyn ExecutorScenario>,
        )
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn fake_executor_plays_its_queue_then_its_sticky_failure() {
    let fake = FakeExecutor::new().with_action("restart", &[]);
    let request = ActionRequest::new("restart", DEADLINE, fixed_now());
    fake.push_error(AdapterError::unauthorized("no"));
    fake.set_failure(Some(ErrorKind::Unavailable));
    let first = fake.execute(&request).await.unwrap_err();
    assert_eq!(first.kind(), ErrorKind::Unauthorized);
    let second = fake.execute(&request).await.unwrap_err();
    assert_eq!(second.kind(), ErrorKind::Unavailable);
    fake.set_failure(None);
    let third = fake.execute(&request).await.unwrap();
    assert_eq!(third.status, ActionStatus::Completed);
    assert_eq!(third.output.text, "fake: restart done");
    assert_eq!(fake.calls().len(), 3);
}

// ---- the HTTP action executor ----

/// A wiremock stub that can be stopped (the unreachable case), behind an HTTP executor.
struct HttpScenario {
    server: Mutex<Option<MockServer>>,
}

#[async_trait]
impl ExecutorScenario for HttpScenario {
    async fn arrange(&self, target: Target) {
        let response = match target {
            Target::Completes => ResponseTemplate::new(200)
                .set_body_json(json!({"flag": "payment", "enabled": false})),
            Target::Fails => ResponseTemplate::new(500).set_body_string("flag store down"),
            Target::Slow => ResponseTemplate::new(200).set_delay(Duration::from_secs(30)),
            Target::Chatty => ResponseTemplate::new(200).set_body_string(chatty_text()),
            Target::Unreachable => {
                // Dropping the stub closes its port: nothing answers there any more.
                drop(self.server.lock().unwrap().take());
                return;
            }
        };
        let server = self.server.lock().unwrap().take().expect("a running stub");
        Mock::given(method("POST"))
            .and(path("/admin/flags/payment"))
            .and(query_param("enabled", "false"))
            .and(header("x-admin-token", SECRET))
            .respond_with(response)
            .mount(&server)
            .await;
        *self.server.lock().unwrap() = Some(server);
    }

    fn request(&self) -> ActionRequest {
        ActionRequest::new("disable-feature", DEADLINE, fixed_now())
            .with_argument("flag", "payment")
    }

    async fn attempts(&self) -> usize {
        let server = self.server.lock().unwrap().take();
        let Some(server) = server else { return 0 };
        let count = server
            .received_requests()
            .await
            .map_or(0, |requests| requests.len());
        *self.server.lock().unwrap() = Some(server);
        count
    }

    fn output_limit(&self) -> usize {
        LIMIT
    }

    fn secret(&self) -> Option<String> {
        Some(SECRET.to_owned())
    }
}

fn http_config(origin: &str) -> HttpActionExecutorConfig {
    let action = HttpAction {
        method: "POST".to_owned(),
        url: format!("{origin}/admin/flags/{{flag}}?enabled=false"),
        body: Some(json!({"flag": "{flag}", "enabled": false})),
        headers: vec![("x-requested-by".to_owned(), "fixloop".to_owned())],
        secret_headers: vec![("x-admin-token".to_owned(), Secret::new(SECRET))],
    };
    HttpActionExecutorConfig {
        allowed_origins: vec![origin.to_owned()],
        actions: BTreeMap::from([("disable-feature".to_owned(), action)]),
        output_limit: LIMIT,
        ..HttpActionExecutorConfig::default()
    }
}

fn client() -> reqwest::Client {
    fixloop_adapters::http_client(Duration::from_secs(30)).expect("a client")
}

#[tokio::test]
async fn http_action_executor_meets_the_executor_contract() {
    executor::check_all(|| async {
        // A server of its own (not from wiremock's pool): dropping it closes its port, for the unreachable case.
        let server = MockServer::builder().start().await;
        let executor: Arc<dyn Executor> = Arc::new(HttpActionExecutor::new(
            http_config(&server.uri()),
            client(),
        ));
        let scenario = HttpScenario {
            server: Mutex::new(Some(server)),
        };
        (executor, Box::new(scenario) as Box<dyn ExecutorScenario>)
    })
    .await;
}

#[tokio::test]
async fn http_action_sends_the_filled_body_and_headers() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/admin/flags/payment"))
        .and(header("x-requested-by", "fixloop"))
        .and(header("x-admin-token", SECRET))
        // Tagged, so the service can exclude FixLoop's own remediation traffic.
        .and(header(
            fixloop_adapters::TRAFFIC_HEADER,
            fixloop_adapters::TRAFFIC_REMEDIATION,
        ))
        .and(wiremock::matchers::header_regex("user-agent", "^fixloop/"))
        .and(body_json(json!({"flag": "payment", "enabled": false})))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let executor = HttpActionExecutor::new(http_config(&server.uri()), client());
    let request = ActionRequest::new("disable-feature", DEADLINE, fixed_now())
        .with_argument("flag", "payment");
    let outcome = bounded("execute", executor.execute(&request))
        .await
        .unwrap();
    assert_eq!(outcome.status, ActionStatus::Completed, "{outcome:?}");
    assert_eq!(outcome.detail, "http status 204");
    let description = executor.describe(&request).unwrap();
    assert!(
        description.summary.starts_with("POST http://127.0.0.1:"),
        "{description:?}"
    );
    assert!(
        description.summary.contains("x-admin-token: [redacted]"),
        "{description:?}"
    );
}

#[tokio::test]
async fn http_action_outside_the_allowlist_or_escaping_its_segment_is_refused() {
    let server = MockServer::start().await;
    let mut config = http_config(&server.uri());
    // The same action aimed at another origin: the allowlist still names the stub only.
    config.allowed_origins = vec!["http://127.0.0.1:1".to_owned()];
    let executor = HttpActionExecutor::new(config, client());
    let request = ActionRequest::new("disable-feature", DEADLINE, fixed_now())
        .with_argument("flag", "payment");
    let error = bounded("execute", executor.execute(&request))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Refused, "{}", error.detail());
    assert!(
        error.to_string().contains("not on the allowlist"),
        "{error}"
    );

    // An argument cannot add a path segment, a query or a host: it is percent-encoded inside its segment.
    let executor = HttpActionExecutor::new(http_config(&server.uri()), client());
    let sneaky = ActionRequest::new("disable-feature", DEADLINE, fixed_now())
        .with_argument("flag", "../../x?enabled=true#@evil.example");
    let description = executor.describe(&sneaky).unwrap();
    assert!(
        description
            .summary
            .contains("/admin/flags/..%2F..%2Fx%3Fenabled%3Dtrue%23%40evil.example?enabled=false"),
        "{description:?}"
    );
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn http_action_rejected_credentials_are_unauthorized() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(403))
        .mount(&server)
        .await;
    let executor = HttpActionExecutor::new(http_config(&server.uri()), client());
    let request = ActionRequest::new("disable-feature", DEADLINE, fixed_now())
        .with_argument("flag", "payment");
    let error = bounded("execute", executor.execute(&request))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unauthorized, "{}", error.detail());
}

// ---- the command executor ----

/// `/bin/sh` scripts behind a command executor; each run appends a line to a counter file first.
struct CommandScenario {
    directory: tempfile::TempDir,
    action: Mutex<&'static str>,
}

impl CommandScenario {
    fn counter(&self) -> PathBuf {
        self.directory.path().join("runs")
    }
}

#[async_trait]
impl ExecutorScenario for CommandScenario {
    async fn arrange(&self, target: Target) {
        *self.action.lock().unwrap() = match target {
            Target::Completes => "complete",
            Target::Fails => "fail",
            Target::Slow => "slow",
            Target::Chatty => "chatty",
            Target::Unreachable => "missing",
        };
    }

    fn request(&self) -> ActionRequest {
        let action = *self.action.lock().unwrap();
        let request = ActionRequest::new(action, DEADLINE, fixed_now());
        if action == "missing" {
            request
        } else {
            request.with_argument("unit", "shop; rm -rf /")
        }
    }

    async fn attempts(&self) -> usize {
        std::fs::read_to_string(self.counter()).map_or(0, |text| text.lines().count())
    }

    fn output_limit(&self) -> usize {
        LIMIT
    }

    fn secret(&self) -> Option<String> {
        Some(SECRET.to_owned())
    }
}

/// A `/bin/sh -c SCRIPT sh {unit}` action: the argument arrives as `$1`, never as shell code.
fn sh_action(script: &str) -> CommandAction {
    CommandAction {
        program: PathBuf::from("/bin/sh"),
        args: vec![
            "-c".to_owned(),
            format!("echo run >> \"$COUNTER\"; {script}"),
            "sh".to_owned(),
            "{unit}".to_owned(),
        ],
    }
}

fn command_executor(directory: &tempfile::TempDir) -> CommandExecutor {
    let counter = directory.path().join("runs");
    let missing = directory.path().join("no-such-program");
    let actions = BTreeMap::from([
        ("complete".to_owned(), sh_action("echo \"restarted $1\"")),
        (
            "fail".to_owned(),
            sh_action("echo \"cannot restart $1\" >&2; exit 3"),
        ),
        ("slow".to_owned(), sh_action("sleep 30")),
        (
            "chatty".to_owned(),
            sh_action(
                "echo \"token=$ADMIN_TOKEN\"; echo \"token=$ADMIN_TOKEN\" >&2; head -c 100000 /dev/zero | tr '\\0' x",
            ),
        ),
        (
            "missing".to_owned(),
            CommandAction {
                program: missing.clone(),
                args: Vec::new(),
            },
        ),
    ]);
    CommandExecutor::new(CommandExecutorConfig {
        allowed_programs: vec![PathBuf::from("/bin/sh"), missing],
        actions,
        environment: BTreeMap::from([
            ("PATH".to_owned(), "/usr/bin:/bin".to_owned()),
            ("COUNTER".to_owned(), counter.display().to_string()),
        ]),
        secret_environment: BTreeMap::from([("ADMIN_TOKEN".to_owned(), Secret::new(SECRET))]),
        working_directory: Some(directory.path().to_owned()),
        output_limit: LIMIT,
        ..CommandExecutorConfig::default()
    })
}

#[tokio::test]
async fn command_executor_meets_the_executor_contract() {
    executor::check_all(|| async {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let executor: Arc<dyn Executor> = Arc::new(command_executor(&directory));
        let scenario = CommandScenario {
            directory,
            action: Mutex::new("complete"),
        };
        (executor, Box::new(scenario) as Box<dyn ExecutorScenario>)
    })
    .await;
}

#[tokio::test]
async fn command_argument_is_one_argv_element_and_the_environment_is_cleared() {
    let directory = tempfile::tempdir().unwrap();
    let executor = command_executor(&directory);
    let request = ActionRequest::new("complete", DEADLINE, fixed_now())
        .with_argument("unit", "shop; echo injected $HOME");
    let outcome = bounded("execute", executor.execute(&request))
        .await
        .unwrap();
    assert_eq!(outcome.status, ActionStatus::Completed, "{outcome:?}");
    assert_eq!(outcome.output.text, "restarted shop; echo injected $HOME\n");
    assert_eq!(outcome.detail, "exit status 0");

    let env = CommandExecutor::new(CommandExecutorConfig {
        allowed_programs: vec![PathBuf::from("/usr/bin/env")],
        actions: BTreeMap::from([(
            "env".to_owned(),
            CommandAction {
                program: PathBuf::from("/usr/bin/env"),
                args: Vec::new(),
            },
        )]),
        environment: BTreeMap::from([("LANG".to_owned(), "C".to_owned())]),
        secret_environment: BTreeMap::from([("TOKEN".to_owned(), Secret::new("t0ken-value"))]),
        ..CommandExecutorConfig::default()
    });
    let outcome = bounded(
        "execute",
        env.execute(&ActionRequest::new("env", DEADLINE, fixed_now())),
    )
    .await
    .unwrap();
    assert_eq!(
        outcome.output.text, "LANG=C\nTOKEN=[redacted]\n",
        "only the configured variables, the secret redacted"
    );
}

#[tokio::test]
async fn command_outside_the_allowlist_is_refused() {
    let executor = CommandExecutor::new(CommandExecutorConfig {
        allowed_programs: vec![PathBuf::from("/bin/true")],
        actions: BTreeMap::from([(
            "wipe".to_owned(),
            CommandAction {
                program: PathBuf::from("/bin/rm"),
                args: vec!["-rf".to_owned(), "/tmp/x".to_owned()],
            },
        )]),
        ..CommandExecutorConfig::default()
    });
    let request = ActionRequest::new("wipe", DEADLINE, fixed_now());
    let error = bounded("execute", executor.execute(&request))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Refused);
    assert!(
        error
            .to_string()
            .contains("/bin/rm is not on the allowlist"),
        "{error}"
    );
}

/// A command executor whose `spawn` action starts a background worker in the child's group, writes the worker's
/// pid to `pid_file`, then waits for it: killing the shell alone would leave the worker running.
fn spawning_executor(pid_file: &std::path::Path) -> CommandExecutor {
    CommandExecutor::new(CommandExecutorConfig {
        allowed_programs: vec![PathBuf::from("/bin/sh")],
        actions: BTreeMap::from([(
            "spawn".to_owned(),
            CommandAction {
                program: PathBuf::from("/bin/sh"),
                args: vec![
                    "-c".to_owned(),
                    format!("sleep 60 & echo $! > {}; wait", pid_file.display()),
                ],
            },
        )]),
        environment: BTreeMap::from([("PATH".to_owned(), "/usr/bin:/bin".to_owned())]),
        ..CommandExecutorConfig::default()
    })
}

/// Waits until the process whose pid is in `pid_file` has ended (gone, or a zombie awaiting its reaper).
async fn wait_for_the_worker_to_end(pid_file: &std::path::Path) {
    let pid = bounded("the worker's pid", async {
        loop {
            match std::fs::read_to_string(pid_file) {
                Ok(text) if text.ends_with('\n') => return text.trim().to_owned(),
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    })
    .await;
    let stat = PathBuf::from(format!("/proc/{pid}/stat"));
    bounded("the worker's end", async {
        loop {
            let state = std::fs::read_to_string(&stat).unwrap_or_default();
            if state.is_empty() || state.contains(") Z ") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn command_timeout_kills_the_whole_process_group() {
    let directory = tempfile::tempdir().unwrap();
    let pid_file = directory.path().join("worker.pid");
    let executor = spawning_executor(&pid_file);
    let request = ActionRequest::new("spawn", Duration::from_millis(500), fixed_now());
    let error = bounded("execute", executor.execute(&request))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Timeout, "{}", error.detail());
    wait_for_the_worker_to_end(&pid_file).await;
}

#[tokio::test]
async fn cancelled_command_kills_the_whole_process_group() {
    let directory = tempfile::tempdir().unwrap();
    let pid_file = directory.path().join("worker.pid");
    let executor = spawning_executor(&pid_file);
    let request = ActionRequest::new("spawn", DEADLINE, fixed_now());
    // The caller gives up (drops the future) as soon as the worker is running.
    bounded("the worker's start", async {
        tokio::select! {
            result = executor.execute(&request) => panic!("the action ended by itself: {result:?}"),
            () = async {
                while !std::fs::read_to_string(&pid_file).is_ok_and(|text| text.ends_with('\n')) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            } => {}
        }
    })
    .await;
    wait_for_the_worker_to_end(&pid_file).await;
}

// ---- the Kubernetes rollout executor ----

struct KubernetesScenario(HttpScenario);

#[async_trait]
impl ExecutorScenario for KubernetesScenario {
    async fn arrange(&self, target: Target) {
        let response = match target {
            Target::Completes => ResponseTemplate::new(200).set_body_json(
                json!({"kind": "Deployment", "metadata": {"name": "web", "generation": 4}}),
            ),
            Target::Fails => ResponseTemplate::new(404).set_body_json(json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "deployments.apps \"web\" not found", "reason": "NotFound",
                "details": {"name": "web", "group": "apps", "kind": "deployments"}, "code": 404
            })),
            Target::Slow => ResponseTemplate::new(200).set_delay(Duration::from_secs(30)),
            Target::Chatty => ResponseTemplate::new(200).set_body_string(chatty_text()),
            Target::Unreachable => {
                drop(self.0.server.lock().unwrap().take());
                return;
            }
        };
        let server = self
            .0
            .server
            .lock()
            .unwrap()
            .take()
            .expect("a running stub");
        Mock::given(method("PATCH"))
            .and(path("/apis/apps/v1/namespaces/shop/deployments/web"))
            .and(header("authorization", format!("Bearer {SECRET}").as_str()))
            .and(header(
                "content-type",
                "application/strategic-merge-patch+json",
            ))
            .and(body_json(
                json!({"spec": {"template": {"metadata": {"annotations": {
                    "kubectl.kubernetes.io/restartedAt": "2026-03-14T09:30:00Z"
                }}}}}),
            ))
            .respond_with(response)
            .mount(&server)
            .await;
        *self.0.server.lock().unwrap() = Some(server);
    }

    fn request(&self) -> ActionRequest {
        ActionRequest::new("restart-deployment", DEADLINE, fixed_now())
            .with_argument("deployment", "web")
    }

    async fn attempts(&self) -> usize {
        self.0.attempts().await
    }

    fn output_limit(&self) -> usize {
        LIMIT
    }

    fn secret(&self) -> Option<String> {
        Some(SECRET.to_owned())
    }
}

fn kubernetes_config(api_server: &str) -> KubernetesRolloutExecutorConfig {
    KubernetesRolloutExecutorConfig {
        api_server: api_server.to_owned(),
        token: Secret::new(SECRET),
        allowed_deployments: vec!["shop/web".to_owned()],
        actions: BTreeMap::from([(
            "restart-deployment".to_owned(),
            KubernetesRolloutAction {
                namespace: "shop".to_owned(),
                deployment: "{deployment}".to_owned(),
            },
        )]),
        output_limit: LIMIT,
        ..KubernetesRolloutExecutorConfig::default()
    }
}

#[tokio::test]
async fn kubernetes_rollout_executor_meets_the_executor_contract() {
    executor::check_all(|| async {
        // A server of its own (not from wiremock's pool): dropping it closes its port, for the unreachable case.
        let server = MockServer::builder().start().await;
        let executor: Arc<dyn Executor> = Arc::new(KubernetesRolloutExecutor::new(
            kubernetes_config(&server.uri()),
            client(),
        ));
        let scenario = KubernetesScenario(HttpScenario {
            server: Mutex::new(Some(server)),
        });
        (executor, Box::new(scenario) as Box<dyn ExecutorScenario>)
    })
    .await;
}

#[tokio::test]
async fn kubernetes_deployment_outside_the_allowlist_is_refused_and_rbac_denial_is_unauthorized() {
    let server = MockServer::start().await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({
            "kind": "Status", "status": "Failure", "reason": "Forbidden", "code": 403,
            "message": "deployments.apps \"web\" is forbidden"
        })))
        .mount(&server)
        .await;
    let executor = KubernetesRolloutExecutor::new(kubernetes_config(&server.uri()), client());
    let other = ActionRequest::new("restart-deployment", DEADLINE, fixed_now())
        .with_argument("deployment", "database");
    let error = bounded("execute", executor.execute(&other))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Refused, "{}", error.detail());
    assert!(server.received_requests().await.unwrap().is_empty());
    let web = ActionRequest::new("restart-deployment", DEADLINE, fixed_now())
        .with_argument("deployment", "web");
    let error = bounded("execute", executor.execute(&web))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unauthorized, "{}", error.detail());
}
