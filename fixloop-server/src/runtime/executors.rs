//! The remediation executor of a service, built from its profile's checked `[[service.remediation.actions]]`:
//! - `http` actions become one [`HttpActionExecutor`] whose allowlist is the service's own base URLs (settings `url`,
//!   `method` (default `POST`), `body`: a JSON text sent as the body, `headers`: a table of header values whose
//!   `${env:NAME}` references are replaced with the service's action secrets; a header that references a secret is
//!   a [`Secret`] as a whole, shown `[redacted]`);
//! - `command` actions one [`CommandExecutor`] whose program allowlist is exactly the programs the actions name
//!   (settings `argv`, a list starting with an absolute program; no shell; `timeout_secs`);
//! - `docker-restart` actions one [`DockerRestartExecutor`] whose container allowlist is exactly the containers the
//!   actions name (settings `container`, `socket` (default `/var/run/docker.sock`), `wait_until_healthy`);
//! - `kubernetes-rollout` actions one [`KubernetesRolloutExecutor`] per (API server, token, CA file), whose
//!   deployment allowlist is exactly the `namespace/deployment`s its actions name (settings `api_server`, `token`:
//!   a `${env:NAME}` reference, `ca_file`: extra CA certificates (PEM) to trust besides the webpki roots,
//!   `timeout_secs`, default 10).
//!
//! A private router sends each action id to the executor that declared it. An action whose settings cannot be built
//! (a body that is not JSON, a secret the environment did not give, an unreadable CA file) is left out with a
//! warning: the driver answers it with a refusal ("unknown action"), never by acting.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fixloop_adapters::{
    ActionDescription, ActionOutcome, ActionRequest, AdapterError, CommandAction, CommandExecutor,
    CommandExecutorConfig, DockerRestartAction, DockerRestartExecutor, DockerRestartExecutorConfig,
    Executor, HttpAction, HttpActionExecutor, HttpActionExecutorConfig, KubernetesRolloutAction,
    KubernetesRolloutExecutor, KubernetesRolloutExecutorConfig, Secret,
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
    let mut rollouts: BTreeMap<RolloutTarget, BTreeMap<String, KubernetesRolloutAction>> =
        BTreeMap::new();
    for action in &service.actions {
        match action.executor.as_str() {
            "http" => {
                if let Some(http_action) = http_action(action, &service.action_secrets) {
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
            "kubernetes-rollout" => {
                if let Some((target, rollout)) = rollout_action(action, &service.action_secrets) {
                    rollouts
                        .entry(target)
                        .or_default()
                        .insert(action.id.clone(), rollout);
                }
            }
            _ => tracing::warn!(
                service = %service.spec.name,
                action_id = %action.id,
                executor = %action.executor,
                "this executor kind is not wired: the action will be refused"
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
    for (target, actions) in rollouts {
        if let Some(executor) = rollout_executor(target, actions, &service.action_secrets, http) {
            route(&mut routes, Arc::new(executor));
        }
    }
    (!routes.is_empty()).then(|| Arc::new(Routed { routes }) as Arc<dyn Executor>)
}

fn route(routes: &mut BTreeMap<String, Arc<dyn Executor>>, executor: Arc<dyn Executor>) {
    for id in executor.action_ids() {
        routes.insert(id, Arc::clone(&executor));
    }
}

fn http_action(action: &ActionFile, secrets: &BTreeMap<String, Secret>) -> Option<HttpAction> {
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
    let mut headers = Vec::new();
    let mut secret_headers = Vec::new();
    let table = action.settings.get("headers").and_then(Value::as_object);
    for (name, value) in table.into_iter().flatten() {
        let text = value.as_str()?;
        if fixloop_adapters::secrets::placeholders(text)
            .next()
            .is_none()
        {
            headers.push((name.clone(), text.to_owned()));
            continue;
        }
        match fixloop_adapters::secrets::substitute(text, secrets) {
            Ok(value) => secret_headers.push((name.clone(), Secret::new(value.into_owned()))),
            Err(missing) => {
                tracing::warn!(action_id = %action.id, header = %name, secret = %missing, "the secret of this header was not given: the action will be refused");
                return None;
            }
        }
    }
    Some(HttpAction {
        method: method.to_owned(),
        url: url.to_owned(),
        body,
        headers,
        secret_headers,
    })
}

/// What one kubernetes executor is for: an API server, the name of its token's secret, a CA file.
type RolloutTarget = (String, String, Option<PathBuf>, Duration);

fn rollout_action(
    action: &ActionFile,
    secrets: &BTreeMap<String, Secret>,
) -> Option<(RolloutTarget, KubernetesRolloutAction)> {
    let setting = |key: &str| action.settings.get(key).and_then(Value::as_str);
    // `profile check` made the token exactly one `${env:NAME}` reference.
    let token = setting("token")
        .and_then(|text| text.strip_prefix("${env:"))
        .and_then(|rest| rest.strip_suffix('}'))?;
    if !secrets.contains_key(token) {
        tracing::warn!(action_id = %action.id, secret = %token, "the token of this action was not given: the action will be refused");
        return None;
    }
    let timeout = action
        .settings
        .get("timeout_secs")
        .and_then(Value::as_f64)
        .map_or(Duration::from_secs(10), |seconds| {
            Duration::from_secs_f64(seconds.clamp(1.0, 300.0))
        });
    let target = (
        setting("api_server")?.trim_end_matches('/').to_owned(),
        token.to_owned(),
        setting("ca_file").map(PathBuf::from),
        timeout,
    );
    let rollout = KubernetesRolloutAction {
        namespace: setting("namespace")?.to_owned(),
        deployment: setting("deployment")?.to_owned(),
    };
    Some((target, rollout))
}

fn rollout_executor(
    (api_server, token, ca_file, timeout): RolloutTarget,
    actions: BTreeMap<String, KubernetesRolloutAction>,
    secrets: &BTreeMap<String, Secret>,
    http: &reqwest::Client,
) -> Option<KubernetesRolloutExecutor> {
    let client = match &ca_file {
        None => http.clone(),
        Some(path) => {
            let built = std::fs::read(path)
                .map_err(|error| error.to_string())
                .and_then(|pem| {
                    fixloop_adapters::http_client_with_ca(timeout, &pem)
                        .map_err(|error| error.to_string())
                });
            match built {
                Ok(client) => client,
                Err(error) => {
                    tracing::warn!(ca_file = %path.display(), %error, "the CA file cannot be used: the API server's actions will be refused");
                    return None;
                }
            }
        }
    };
    let mut allowed_deployments: Vec<String> = actions
        .values()
        .map(|action| format!("{}/{}", action.namespace, action.deployment))
        .collect();
    allowed_deployments.sort();
    allowed_deployments.dedup();
    let config = KubernetesRolloutExecutorConfig {
        api_server,
        token: secrets.get(&token)?.clone(),
        allowed_deployments,
        actions,
        timeout,
        ..KubernetesRolloutExecutorConfig::default()
    };
    Some(KubernetesRolloutExecutor::new(config, client))
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
                    ("api_server", Value::from("https://k8s.example.com:6443")),
                    ("token", Value::from("${env:K8S_TOKEN}")),
                    ("namespace", Value::from("prod")),
                    ("deployment", Value::from("shop")),
                ],
            ),
            with_settings(
                "rollout-without-token",
                "kubernetes-rollout",
                &[
                    ("api_server", Value::from("https://k8s.example.com:6443")),
                    ("token", Value::from("${env:UNSET_TOKEN}")),
                    ("namespace", Value::from("prod")),
                    ("deployment", Value::from("shop")),
                ],
            ),
            with_settings("ssh", "ssh", &[("host", Value::from("shop"))]),
        ];
        service.action_secrets =
            BTreeMap::from([("K8S_TOKEN".to_owned(), Secret::new("k8s-token-value"))]);
        let executor =
            build_executor(&service, &fixloop_adapters::default_client()).expect("built");
        assert_eq!(
            executor.action_ids(),
            ["flag-off", "restart-shop", "rollout", "say-healed"],
            "a body that is not JSON, a token not given and an unknown kind are not declared"
        );
        let rollout = executor.describe(&request("rollout")).expect("declared");
        assert!(
            rollout.summary.starts_with(
                "PATCH https://k8s.example.com:6443/apis/apps/v1/namespaces/prod/deployments/shop"
            ),
            "{}",
            rollout.summary
        );
        assert!(
            !rollout.summary.contains("k8s-token-value"),
            "{}",
            rollout.summary
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
        for refused in ["bad-body", "rollout-without-token", "ssh", "never-declared"] {
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

    /// A wiremock server whose only route is `route`, answering 200 with `body` when the request carries `header`.
    async fn stub(
        verb: &str,
        route: &str,
        header: (&str, &str),
        body: Value,
    ) -> wiremock::MockServer {
        use wiremock::matchers::{header as has_header, method, path};
        let server = wiremock::MockServer::start().await;
        wiremock::Mock::given(method(verb))
            .and(path(route))
            .and(has_header(header.0, header.1))
            .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(body))
            .expect(1)
            .mount(&server)
            .await;
        server
    }

    #[tokio::test]
    async fn an_http_actions_secret_header_is_sent_and_never_shown() {
        const TOKEN: &str = "shop-admin-s3cr3t";
        let server = stub(
            "POST",
            "/admin/restart",
            ("authorization", &format!("Bearer {TOKEN}")),
            serde_json::json!({"restarted": true}),
        )
        .await;
        let mut service = demo_profile(&server.uri());
        service.actions = vec![with_settings(
            "restart",
            "http",
            &[
                (
                    "url",
                    Value::from(format!("{}/admin/restart", server.uri())),
                ),
                (
                    "headers",
                    serde_json::json!({"Authorization": "Bearer ${env:SHOP_TOKEN}", "X-Reason": "fixloop"}),
                ),
            ],
        )];
        service.action_secrets = BTreeMap::from([("SHOP_TOKEN".to_owned(), Secret::new(TOKEN))]);
        let executor =
            build_executor(&service, &fixloop_adapters::default_client()).expect("built");
        let described = executor.describe(&request("restart")).expect("declared");
        assert!(
            described.summary.contains("-H 'Authorization: [redacted]'")
                && described.summary.contains("-H 'X-Reason: fixloop'"),
            "{}",
            described.summary
        );
        for shown in [
            described.summary.clone(),
            format!("{executor:?}"),
            format!("{service:?}"),
        ] {
            assert!(!shown.contains(TOKEN), "{shown}");
        }
        let outcome = executor.execute(&request("restart")).await.expect("sent");
        assert_eq!(
            outcome.status,
            fixloop_adapters::ActionStatus::Completed,
            "{outcome:?}"
        );
        server.verify().await;
    }

    #[tokio::test]
    async fn a_rollout_action_patches_the_deployment_on_its_api_server_with_its_token() {
        const TOKEN: &str = "k8s-sa-s3cr3t";
        let server = stub(
            "PATCH",
            "/apis/apps/v1/namespaces/shop/deployments/web",
            ("authorization", &format!("Bearer {TOKEN}")),
            serde_json::json!({"kind": "Deployment", "metadata": {"name": "web", "generation": 7}}),
        )
        .await;
        let mut service = demo_profile("http://127.0.0.1:8001");
        service.actions = vec![with_settings(
            "restart-web",
            "kubernetes-rollout",
            &[
                ("api_server", Value::from(server.uri())),
                ("token", Value::from("${env:K8S_TOKEN}")),
                ("namespace", Value::from("shop")),
                ("deployment", Value::from("web")),
                ("timeout_secs", Value::from(5)),
            ],
        )];
        service.action_secrets = BTreeMap::from([("K8S_TOKEN".to_owned(), Secret::new(TOKEN))]);
        let executor =
            build_executor(&service, &fixloop_adapters::default_client()).expect("built");
        let described = executor
            .describe(&request("restart-web"))
            .expect("declared");
        assert!(!described.summary.contains(TOKEN), "{}", described.summary);
        assert!(!format!("{executor:?}").contains(TOKEN));
        let outcome = executor
            .execute(&request("restart-web"))
            .await
            .expect("patched");
        assert_eq!(
            outcome.status,
            fixloop_adapters::ActionStatus::Completed,
            "{outcome:?}"
        );
        assert_eq!(
            outcome.detail,
            "deployment shop/web restarted (generation 7)"
        );
        server.verify().await;
        let patch = &server.received_requests().await.expect("recorded")[0];
        let body: Value = serde_json::from_slice(&patch.body).expect("JSON");
        assert!(
            body["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
                .is_string(),
            "{body}"
        );
        assert_eq!(
            patch
                .headers
                .get("content-type")
                .and_then(|value| value.to_str().ok()),
            Some("application/strategic-merge-patch+json")
        );
    }

    #[test]
    fn a_rollout_trusts_its_ca_file_and_one_that_cannot_be_used_is_refused() {
        let mut service = demo_profile("http://127.0.0.1:8001");
        service.actions = vec![with_settings(
            "restart-web",
            "kubernetes-rollout",
            &[
                ("api_server", Value::from("https://k8s.example.com")),
                ("token", Value::from("${env:K8S_TOKEN}")),
                ("ca_file", Value::from("/nonexistent/ca.pem")),
                ("namespace", Value::from("shop")),
                ("deployment", Value::from("web")),
            ],
        )];
        service.action_secrets = BTreeMap::from([("K8S_TOKEN".to_owned(), Secret::new("t"))]);
        assert!(build_executor(&service, &fixloop_adapters::default_client()).is_none());
        let ca = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/kubernetes-ca.pem"
        );
        service.actions[0]
            .settings
            .insert("ca_file".to_owned(), Value::from(ca));
        let executor =
            build_executor(&service, &fixloop_adapters::default_client()).expect("a usable CA");
        assert_eq!(executor.action_ids(), ["restart-web"]);
    }
}
