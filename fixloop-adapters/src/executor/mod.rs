//! The [`Executor`] port: carries out one remediation action (a feature-flag switch, a cache flush, a command, a
//! container or deployment restart) that the engine decided on, and reports what happened.
//!
//! The engine (sans-IO) decides *whether* an action runs; an executor only carries it out, once, within a
//! deadline. Every executor checks a request against its own configuration before any I/O (the action id must be
//! declared, the arguments must fill the action's placeholders exactly, the target must be on an allowlist) and
//! refuses anything else with [`ErrorKind::Refused`](crate::ErrorKind::Refused). The same check renders the exact
//! request or argv for a dry run ([`Executor::describe`]), secrets redacted.
//!
//! Real executors: [`HttpActionExecutor`] (an admin endpoint of the service), [`CommandExecutor`] (a program,
//! argv only, no shell), [`DockerRestartExecutor`] (the Docker Engine API over its Unix socket) and
//! [`KubernetesRolloutExecutor`] (a deployment's rollout restart). The fake is
//! [`FakeExecutor`](crate::fake::FakeExecutor).

mod capture;
pub mod command;
pub mod docker;
pub mod http;
pub mod kubernetes;
mod template;
mod unix_http;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use fixloop_contract::chrono::{DateTime, Utc};

use crate::error::AdapterError;

pub use capture::{Captured, DEFAULT_OUTPUT_LIMIT};
pub use command::{CommandAction, CommandExecutor, CommandExecutorConfig};
pub use docker::{DockerRestartAction, DockerRestartExecutor, DockerRestartExecutorConfig};
pub use http::{HttpAction, HttpActionExecutor, HttpActionExecutorConfig};
pub use kubernetes::{
    KubernetesRolloutAction, KubernetesRolloutExecutor, KubernetesRolloutExecutorConfig,
};

/// What an executor is asked to carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionRequest {
    /// The action's id as the service profile declares it (for example `"disable-payment-feature"`).
    pub action_id: String,
    /// The action's arguments, already validated by the caller against the schema the profile declares. Each fills
    /// the `{name}` placeholder of the same name in the action's template (URL, body, argv); an executor refuses an
    /// argument no placeholder names and a placeholder no argument fills.
    pub arguments: BTreeMap<String, String>,
    /// The longest the action may take from the call, the executor's own configured timeout permitting (the
    /// shorter of the two applies).
    pub deadline: Duration,
    /// When the engine asked for the action (time is an argument: a Kubernetes rollout restart stamps it on the
    /// deployment's `restartedAt` annotation).
    pub requested_at: DateTime<Utc>,
}

impl ActionRequest {
    /// A request without arguments.
    #[must_use]
    pub fn new(
        action_id: impl Into<String>,
        deadline: Duration,
        requested_at: DateTime<Utc>,
    ) -> Self {
        Self {
            action_id: action_id.into(),
            arguments: BTreeMap::new(),
            deadline,
            requested_at,
        }
    }

    /// Adds one argument.
    #[must_use]
    pub fn with_argument(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.arguments.insert(name.into(), value.into());
        self
    }
}

/// How an action that was carried out ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionStatus {
    /// The target accepted and performed the action (2xx, exit status 0, 204 from the Docker daemon).
    Completed,
    /// The target answered that the action failed (non-2xx, non-zero exit status, no such container).
    Failed,
}

/// What came of an action that was carried out. Whether it *worked* is for the validation run after it to say:
/// a completed action is not a healed service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionOutcome {
    /// Completed or failed, as the target reported it.
    pub status: ActionStatus,
    /// One line saying what the target answered: `"http status 204"`, `"exit status 3"`, `"no such container: web"`.
    pub detail: String,
    /// The target's answer (response body, standard output), size-capped, secrets redacted.
    pub output: Captured,
    /// Standard error of a command; empty for the other executors.
    pub error_output: Captured,
    /// How long the action took, from the first byte sent (or the spawn) to its end.
    pub duration: Duration,
}

/// What an action would do, rendered without any I/O: the exact request or argv, secrets redacted. A dry run logs
/// it instead of carrying the action out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionDescription {
    /// The action's id.
    pub action_id: String,
    /// One line: `"POST http://127.0.0.1:8080/admin/flags/payment?enabled=false"`, `"/usr/bin/systemctl restart
    /// shop"`, `"docker: POST /v1.41/containers/shop/restart?t=10"`.
    pub summary: String,
}

/// Carries out remediation actions, one attempt per call.
#[async_trait]
pub trait Executor: Send + Sync + fmt::Debug {
    /// The ids of the actions this executor is configured for, in order.
    fn action_ids(&self) -> Vec<String>;

    /// Checks `request` against the executor's configuration and renders what it would do, without any I/O.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Refused`](crate::ErrorKind::Refused) when the action is unknown, an argument is missing or
    /// unexpected, or the target is not on the allowlist.
    fn describe(&self, request: &ActionRequest) -> Result<ActionDescription, AdapterError>;

    /// Carries out the action once, within the shorter of `request.deadline` and the executor's timeout.
    ///
    /// # Errors
    ///
    /// An [`AdapterError`] when the action could not be carried out or its end not observed:
    /// [`Refused`](crate::ErrorKind::Refused) (checked first, before any I/O, as [`describe`](Self::describe)
    /// does), [`Timeout`](crate::ErrorKind::Timeout) (a command is killed with its process group),
    /// [`Unavailable`](crate::ErrorKind::Unavailable) (the target cannot be reached),
    /// [`Unauthorized`](crate::ErrorKind::Unauthorized) (credentials rejected). A target that answers that the
    /// action failed is `Ok` with [`ActionStatus::Failed`].
    async fn execute(&self, request: &ActionRequest) -> Result<ActionOutcome, AdapterError>;
}

/// The deadline of one call: the request's, capped by the executor's configured timeout.
pub(crate) fn effective_deadline(request: &ActionRequest, configured: Duration) -> Duration {
    request.deadline.min(configured)
}

/// The action of `actions` that `request` names, or a refusal.
pub(crate) fn find_action<'a, A>(
    actions: &'a BTreeMap<String, A>,
    request: &ActionRequest,
) -> Result<&'a A, AdapterError> {
    actions.get(&request.action_id).ok_or_else(|| {
        AdapterError::refused(format!(
            "action {:?} is not declared for this executor",
            request.action_id
        ))
    })
}
