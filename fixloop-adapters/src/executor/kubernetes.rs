//! [`KubernetesRolloutExecutor`]: what `kubectl rollout restart deployment/NAME` does, one PATCH of the
//! deployment that sets `spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"]` to the request's
//! time (RFC 3339), as a strategic merge patch, with a bearer token.
//!
//! The deployment (`namespace/name`, after filling placeholders) must be on the allowlist. 200 is a completed
//! restart (the controller rolls the pods out afterwards; the validation run judges the result). 404 (no such
//! deployment), 409 and 422 are failed restarts with the `Status` object's message; 401/403 are unauthorized, 429
//! rate limited, 5xx unavailable.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use fixloop_contract::chrono::SecondsFormat;
use reqwest::Url;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use serde::Deserialize;
use tokio::time::Instant;

use super::capture::{Captured, DEFAULT_OUTPUT_LIMIT};
use super::template::{check_arguments, fill, percent_encode};
use super::{
    ActionDescription, ActionOutcome, ActionRequest, ActionStatus, Executor, effective_deadline,
    find_action,
};
use crate::error::{AdapterError, parse_retry_after};
use crate::secret::Secret;

/// The annotation `kubectl rollout restart` sets.
const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// One rollout-restart action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubernetesRolloutAction {
    /// The deployment's namespace, a template.
    pub namespace: String,
    /// The deployment's name, a template.
    pub deployment: String,
}

/// Configuration of a [`KubernetesRolloutExecutor`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubernetesRolloutExecutorConfig {
    /// The API server's base URL, for example `"https://kubernetes.default.svc"`.
    pub api_server: String,
    /// The service account's bearer token.
    pub token: Secret,
    /// Deployments an action may restart, as `"namespace/name"`.
    pub allowed_deployments: Vec<String>,
    /// The actions by id.
    pub actions: BTreeMap<String, KubernetesRolloutAction>,
    /// Longest one action may take (a request's shorter deadline wins). Default 10 s.
    pub timeout: Duration,
    /// Largest response kept, in bytes. Default [`DEFAULT_OUTPUT_LIMIT`].
    pub output_limit: usize,
}

impl Default for KubernetesRolloutExecutorConfig {
    fn default() -> Self {
        Self {
            api_server: "https://kubernetes.default.svc".to_owned(),
            token: Secret::default(),
            allowed_deployments: Vec::new(),
            actions: BTreeMap::new(),
            timeout: Duration::from_secs(10),
            output_limit: DEFAULT_OUTPUT_LIMIT,
        }
    }
}

/// Restarts deployments (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct KubernetesRolloutExecutor {
    config: KubernetesRolloutExecutorConfig,
    client: reqwest::Client,
}

/// The parts of a `Status` object (error body) and of a Deployment the executor reads.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Answer {
    message: Option<String>,
    metadata: Option<Metadata>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Metadata {
    generation: Option<u64>,
}

impl KubernetesRolloutExecutor {
    /// An executor using the shared client (build it with [`crate::http_client`]).
    #[must_use]
    pub fn new(config: KubernetesRolloutExecutorConfig, client: reqwest::Client) -> Self {
        Self { config, client }
    }

    /// The deployment as `namespace/name`, the PATCH URL and the patch body.
    fn prepare(
        &self,
        request: &ActionRequest,
    ) -> Result<(String, Url, serde_json::Value), AdapterError> {
        let action = find_action(&self.config.actions, request)?;
        check_arguments(
            [action.namespace.as_str(), action.deployment.as_str()],
            &request.arguments,
        )?;
        let namespace = fill(&action.namespace, &request.arguments, str::to_owned)?;
        let name = fill(&action.deployment, &request.arguments, str::to_owned)?;
        let qualified = format!("{namespace}/{name}");
        if !self.config.allowed_deployments.contains(&qualified) {
            return Err(AdapterError::refused(format!(
                "deployment {qualified} is not on the allowlist"
            )));
        }
        let url = Url::parse(&format!(
            "{}/apis/apps/v1/namespaces/{}/deployments/{}?fieldManager=fixloop",
            self.config.api_server.trim_end_matches('/'),
            percent_encode(&namespace),
            percent_encode(&name)
        ))
        .map_err(|error| {
            AdapterError::refused("the api server url is invalid").with_source(error)
        })?;
        let stamp = request
            .requested_at
            .to_rfc3339_opts(SecondsFormat::Secs, true);
        let patch = serde_json::json!({
            "spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}
        });
        Ok((qualified, url, patch))
    }

    async fn patch(
        &self,
        qualified: &str,
        url: Url,
        patch: &serde_json::Value,
        deadline: Duration,
    ) -> Result<ActionOutcome, AdapterError> {
        let started = Instant::now();
        let response = self
            .client
            .patch(url)
            .timeout(deadline)
            .header(
                AUTHORIZATION,
                format!("Bearer {}", self.config.token.expose()),
            )
            .header(CONTENT_TYPE, "application/strategic-merge-patch+json")
            .header(ACCEPT, "application/json")
            .body(patch.to_string())
            .send()
            .await
            .map_err(AdapterError::from_reqwest)?;
        let status = response.status();
        let retry_after = parse_retry_after(response.headers());
        let bytes = response.bytes().await.map_err(AdapterError::from_reqwest)?;
        let answer: Answer = serde_json::from_slice(&bytes).unwrap_or_default();
        let message = answer.message.unwrap_or_default();
        let outcome_status = match status.as_u16() {
            200..=299 => ActionStatus::Completed,
            404 | 409 | 422 => ActionStatus::Failed,
            _ => return Err(AdapterError::from_status(status, retry_after, &message)),
        };
        let detail = match outcome_status {
            ActionStatus::Completed => match answer.metadata.and_then(|meta| meta.generation) {
                Some(generation) => {
                    format!("deployment {qualified} restarted (generation {generation})")
                }
                None => format!("deployment {qualified} restarted"),
            },
            ActionStatus::Failed => format!("http status {}: {message}", status.as_u16()),
        };
        let secrets = [&self.config.token];
        Ok(ActionOutcome {
            status: outcome_status,
            detail,
            output: Captured::from_bytes(
                &bytes,
                bytes.len() as u64,
                self.config.output_limit,
                &secrets,
            ),
            error_output: Captured::empty(),
            duration: started.elapsed(),
        })
    }
}

#[async_trait]
impl Executor for KubernetesRolloutExecutor {
    fn action_ids(&self) -> Vec<String> {
        self.config.actions.keys().cloned().collect()
    }

    fn describe(&self, request: &ActionRequest) -> Result<ActionDescription, AdapterError> {
        let (_, url, patch) = self.prepare(request)?;
        Ok(ActionDescription {
            action_id: request.action_id.clone(),
            summary: format!(
                "PATCH {url} -H 'Authorization: Bearer {}' -H 'Content-Type: \
                 application/strategic-merge-patch+json' -d '{patch}'",
                self.config.token
            ),
        })
    }

    async fn execute(&self, request: &ActionRequest) -> Result<ActionOutcome, AdapterError> {
        let (qualified, url, patch) = self.prepare(request)?;
        let deadline = effective_deadline(request, self.config.timeout);
        match tokio::time::timeout(deadline, self.patch(&qualified, url, &patch, deadline)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(AdapterError::timeout(deadline)),
        }
    }
}
