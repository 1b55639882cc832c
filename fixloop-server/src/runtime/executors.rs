//! The remediation executor of a service, built from its profile's checked `[[service.remediation.actions]]`:
//! - `http` actions become one [`HttpActionExecutor`] whose allowlist is the service's own base URLs (settings `url`,
//!   `method` (default `POST`), `body`: a JSON text sent as the body);
//! - `command` actions one [`CommandExecutor`] whose program allowlist is exactly the programs the actions name
//!   (settings `argv`, a list starting with an absolute program; no shell; `timeout_secs`);
//! - `docker-restart` actions one [`DockerRestartExecutor`] whose container allowlist is exactly the containers the
//!   actions name (settings `container`, `socket` (default `/var/run/docker.sock`), `wait_until_healthy`).
//!
//! A private router sends each action id to the executor that declared it. `kubernetes-rollout` actions are checked by
//! `profile check` but not wired yet (they need an API server and a token the profile does not carry): the driver
//! answers them with a refusal ("unknown action"), never by acting.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fixloop_adapters::{
    ActionDescription, ActionOutcome, ActionRequest, AdapterError, CommandAction, CommandExecutor,
    CommandExecutorConfig, DockerRestartAction, DockerRestartExecutor, DockerRestartExecutorConfig,
    Executor, HttpAction, HttpActionExecutor, HttpActionExecutorConfig,
};
use serde_json::Value;

use crate::profile::ServiceProfile;
use crate::profile::remediation::ActionFile;

/// The executor for `service`'s declared actions, or `None` when it declares no action FixLoop can carry out.
#[must_use]
pub fn build_executor(
    service: &ServiceProfile,
    http: &reqwest::Client,
) -> Option<Arc<dyn Executor>> {
    let mut web = BTreeMap::new();
    let mut commands = BTreeMap::new();
    let mut containers = BTreeMap::new();
    let mut command_timeout = None;
    for action in &service.actions {
        match action.executor.as_str() {
            "http" => {
                if let Some(http_action) = http_action(action) {
                    web.insert(action.id.clone(), http_action);
                }
            }
            "command" => {
                if let Some(command) = command_action(action) {
                    commands.insert(action.id.clone(), command);
                }
                if let Some(seconds) = action.settings.get("timeout_secs").and_then(Value::as_f64) {
                    let timeout = Duration::from_secs_f64(seconds.clamp(1.0, 3600.0));
                    command_timeout =
                        Some(command_timeout.map_or(timeout, |t: Duration| t.max(timeout)));
                }
            }
            "docker-restart" => {
                if let Some(container) = action.settings.get("container").and_then(Value::as_str) {
                    let socket = action.settings.get("socket").and_then(Value::as_str);
                    containers.insert(
                        action.id.clone(),
                        (
                            socket.map(PathBuf::from),
                            DockerRestartAction {
                                container: container.to_owned(),
                                stop_timeout: Duration::from_secs(10),
                                wait_until_healthy: action
                                    .settings
                                    .get("wait_until_healthy")
                                    .and_then(Value::as_bool)
                                    .unwrap_or(false),
                            },
                        ),
                    );
                }
            }
            _ => tracing::warn!(
                service = %service.spec.name,
                action_id = %action.id,
                executor = %action.executor,
                "this executor kind is not wired yet: the action will be refused"
            ),
        }
    }
    let mut routes: BTreeMap<String, Arc<dyn Executor>> = BTreeMap::new();
    if !web.is_empty() {
        let config = HttpActionExecutorConfig {
            allowed_origins: service.spec.policy.allowed_base_urls.clone(),
            actions: web,
            ..HttpActionExecutorConfig::default()
        };
        route(
            &mut routes,
            Arc::new(HttpActionExecutor::new(config, http.clone())),
        );
    }
    if !commands.is_empty() {
        let mut allowed_programs: Vec<PathBuf> = commands
            .values()
            .map(|command| command.program.clone())
            .collect();
        allowed_programs.sort();
        allowed_programs.dedup();
        let mut config = CommandExecutorConfig {
            allowed_programs,
            actions: commands,
            ..CommandExecutorConfig::default()
        };
        if let Some(timeout) = command_timeout {
            config.timeout = timeout;
        }
        route(&mut routes, Arc::new(CommandExecutor::new(config)));
    }
    // One Docker executor per socket.
    let mut by_socket: BTreeMap<Option<PathBuf>, BTreeMap<String, DockerRestartAction>> =
        BTreeMap::new();
    for (id, (socket, action)) in containers {
        by_socket.entry(socket).or_default().insert(id, action);
    }
    for (socket, actions) in by_socket {
        let mut allowed_containers: Vec<String> = actions
            .values()
            .map(|action| action.container.clone())
            .collect();
        allowed_containers.sort();
        allowed_containers.dedup();
        let mut config = DockerRestartExecutorConfig {
            allowed_containers,
            actions,
            ..DockerRestartExecutorConfig::default()
        };
        if let Some(socket) = socket {
            config.socket = socket;
        }
        route(&mut routes, Arc::new(DockerRestartExecutor::new(config)));
    }
    (!routes.is_empty()).then(|| Arc::new(Routed { routes }) as Arc<dyn Executor>)
}

fn route(routes: &mut BTreeMap<String, Arc<dyn Executor>>, executor: Arc<dyn Executor>) {
    for id in executor.action_ids() {
        routes.insert(id, Arc::clone(&executor));
    }
}

fn http_action(action: &ActionFile) -> Option<HttpAction> {
    let url = action.settings.get("url").and_then(Value::as_str)?;
    let method = action
        .settings
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or("POST");
    let body = match action.settings.get("body").and_then(Value::as_str) {
        None => None,
        Some(text) => match serde_json::from_str(text) {
            Ok(body) => Some(body),
            Err(error) => {
                tracing::warn!(action_id = %action.id, %error, "the action's `body` is not JSON: the action will be refused");
                return None;
            }
        },
    };
    Some(HttpAction {
        method: method.to_owned(),
        url: url.to_owned(),
        body,
        headers: Vec::new(),
        secret_headers: Vec::new(),
    })
}

fn command_action(action: &ActionFile) -> Option<CommandAction> {
    let argv: Vec<String> = action
        .settings
        .get("argv")?
        .as_array()?
        .iter()
        .map(|item| item.as_str().map(str::to_owned))
        .collect::<Option<_>>()?;
    let (program, args) = argv.split_first()?;
    Some(CommandAction {
        program: PathBuf::from(program),
        args: args.to_vec(),
    })
}

/// Sends each action to the executor that declared it; an undeclared action is refused by the first executor
/// (with its own "unknown action" error), so nothing is ever carried out for it.
#[derive(Debug)]
struct Routed {
    routes: BTreeMap<String, Arc<dyn Executor>>,
}

impl Routed {
    fn executor(&self, action_id: &str) -> &Arc<dyn Executor> {
        self.routes.get(action_id).unwrap_or_else(|| {
            self.routes
                .values()
                .next()
                .unwrap_or_else(|| unreachable!("a Routed executor has at least one route"))
        })
    }
}

#[async_trait]
impl Executor for Routed {
    fn action_ids(&self) -> Vec<String> {
        self.routes.keys().cloned().collect()
    }

    fn describe(&self, request: &ActionRequest) -> Result<ActionDescription, AdapterError> {
        self.executor(&request.action_id).describe(request)
    }

    async fn execute(&self, request: &ActionRequest) -> Result<ActionOutcome, AdapterError> {
        self.executor(&request.action_id).execute(request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::demo_profile;
    use crate::profile::remediation::ActionFile;

    fn action(id: &str, executor: &str, url: &str) -> ActionFile {
        ActionFile {
            id: id.to_owned(),
            executor: executor.to_owned(),
            description: String::new(),
            settings: BTreeMap::from([("url".to_owned(), Value::String(url.to_owned()))]),
        }
    }

    #[test]
    fn http_actions_become_an_executor_limited_to_the_services_own_urls() {
        let mut service = demo_profile("http://127.0.0.1:8001");
        assert!(build_executor(&service, &fixloop_adapters::default_client()).is_none());
        service.actions = vec![
            action(
                "flag-off",
                "http",
                "http://127.0.0.1:8001/admin/flags/payment?enabled=false",
            ),
            action("elsewhere", "http", "http://10.0.0.9/admin"),
            action("restart", "docker-restart", ""),
        ];
        let executor =
            build_executor(&service, &fixloop_adapters::default_client()).expect("built");
        assert_eq!(executor.action_ids(), ["elsewhere", "flag-off"]);
        let request =
            |id: &str| ActionRequest::new(id, Duration::from_secs(1), chrono::DateTime::UNIX_EPOCH);
        let described = executor.describe(&request("flag-off")).expect("allowed");
        assert!(
            described.summary.contains("/admin/flags/payment"),
            "{}",
            described.summary
        );
        assert!(
            executor.describe(&request("elsewhere")).is_err(),
            "not the service's origin"
        );
        assert!(
            executor.describe(&request("restart")).is_err(),
            "not wired: refused"
        );
    }

    fn with_settings(id: &str, executor: &str, settings: &[(&str, Value)]) -> ActionFile {
        ActionFile {
            id: id.to_owned(),
            executor: executor.to_owned(),
            description: String::new(),
            settings: settings
                .iter()
                .map(|(key, value)| ((*key).to_owned(), value.clone()))
                .collect(),
        }
    }

    fn request(id: &str) -> ActionRequest {
        ActionRequest::new(id, Duration::from_secs(5), chrono::DateTime::UNIX_EPOCH)
    }

    #[tokio::test]
    async fn each_action_goes_to_the_executor_of_its_kind_and_an_undeclared_one_is_refused() {
        let mut service = demo_profile("http://127.0.0.1:8001");
        service.actions = vec![
            with_settings(
                "flag-off",
                "http",
                &[
                    (
                        "url",
                        Value::from("http://127.0.0.1:8001/admin/flags/payment_provider"),
                    ),
                    ("body", Value::from(r#"{"enabled": false}"#)),
                ],
            ),
            with_settings(
                "bad-body",
                "http",
                &[
                    ("url", Value::from("http://127.0.0.1:8001/admin/x")),
                    ("body", Value::from("{not json")),
                ],
            ),
            with_settings(
                "say-healed",
                "command",
                &[("argv", serde_json::json!(["/bin/echo", "healed"]))],
            ),
            with_settings(
                "restart-shop",
                "docker-restart",
                &[
                    ("container", Value::from("shop")),
                    ("socket", Value::from("/nonexistent/docker.sock")),
                ],
            ),
            with_settings(
                "rollout",
                "kubernetes-rollout",
                &[
                    ("namespace", Value::from("prod")),
                    ("deployment", Value::from("shop")),
                ],
            ),
        ];
        let executor =
            build_executor(&service, &fixloop_adapters::default_client()).expect("built");
        assert_eq!(
            executor.action_ids(),
            ["flag-off", "restart-shop", "say-healed"],
            "a body that is not JSON and an unwired kind are not declared"
        );
        let flag = executor.describe(&request("flag-off")).expect("declared");
        assert!(flag.summary.contains("POST"), "{}", flag.summary);
        let restart = executor
            .describe(&request("restart-shop"))
            .expect("declared");
        assert!(restart.summary.contains("shop"), "{}", restart.summary);
        let outcome = executor
            .execute(&request("say-healed"))
            .await
            .expect("the command ran");
        assert_eq!(
            outcome.status,
            fixloop_adapters::ActionStatus::Completed,
            "{outcome:?}"
        );
        assert!(outcome.output.text.contains("healed"), "{outcome:?}");
        for refused in ["bad-body", "rollout", "never-declared"] {
            assert!(
                executor.describe(&request(refused)).is_err(),
                "{refused} is refused before any I/O"
            );
            assert!(
                executor.execute(&request(refused)).await.is_err(),
                "{refused} is never carried out"
            );
        }
    }
}
