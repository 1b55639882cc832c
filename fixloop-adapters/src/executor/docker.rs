//! [`DockerRestartExecutor`]: restarts a container through the Docker Engine API over its Unix socket
//! (`POST /v{version}/containers/{id}/restart?t={seconds}`).
//!
//! The API version is either configured or negotiated: `GET /_ping` gives the daemon's highest version in its
//! `Api-Version` header, and the executor uses the lower of that and 1.41 (the highest of Debian bookworm's Docker
//! 20.10; every daemon since serves it, except 29.0 to 29.2, whose minimum is 1.44: configure the version there).
//! The container must be on the allowlist. 204 is a completed restart; 404 (no such container) and other daemon
//! errors are failed restarts, with the daemon's `message` as detail; 400 (an API version the daemon refuses) is an
//! invalid response, 401/403 (an authorization plugin) unauthorized. An action may wait until the restarted
//! container is healthy (`GET /v{version}/containers/{id}/json`, `State.Health.Status`), so that "completed" means
//! the container came back, not only that the daemon accepted the restart.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use hyper::Method;
use serde::Deserialize;
use tokio::time::Instant;

use super::capture::{Captured, DEFAULT_OUTPUT_LIMIT};
use super::template::{check_arguments, fill, percent_encode};
use super::unix_http::exchange;
use super::{
    ActionDescription, ActionOutcome, ActionRequest, ActionStatus, Executor, effective_deadline,
    find_action,
};
use crate::error::AdapterError;

/// The highest API version the executor asks for when it negotiates.
const DOCKER_MAX_API_VERSION: (u32, u32) = (1, 41);

/// Largest body read from the daemon, in bytes (its answers here are short JSON messages).
const BODY_LIMIT: usize = 64 * 1024;

/// One restart action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerRestartAction {
    /// The container's name or id, a template (`"{container}"` is filled with the `container` argument).
    pub container: String,
    /// Seconds the daemon waits for the container to stop before killing it (the `t` parameter).
    pub stop_timeout: Duration,
    /// After the restart, poll `GET /v{N}/containers/{id}/json` until the container is healthy (or running, when
    /// its image has no healthcheck): the action completes only then, fails when the container turns unhealthy,
    /// exits or dies, and times out at the deadline.
    pub wait_until_healthy: bool,
}

/// Configuration of a [`DockerRestartExecutor`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerRestartExecutorConfig {
    /// The daemon's socket. Default `/var/run/docker.sock`.
    pub socket: PathBuf,
    /// The API version as `"1.41"`; `None` negotiates it with `GET /_ping`. Default `None`.
    pub api_version: Option<String>,
    /// Containers (names or ids, compared exactly after filling) an action may restart.
    pub allowed_containers: Vec<String>,
    /// The actions by id.
    pub actions: BTreeMap<String, DockerRestartAction>,
    /// Longest one action may take, ping included (a request's shorter deadline wins); keep it above the
    /// actions' stop timeouts plus start time. Default 60 s.
    pub timeout: Duration,
    /// Largest daemon message kept, in bytes. Default [`DEFAULT_OUTPUT_LIMIT`].
    pub output_limit: usize,
    /// Pause between two inspections of an action that waits until healthy. Default 1 s.
    pub health_poll_interval: Duration,
}

impl Default for DockerRestartExecutorConfig {
    fn default() -> Self {
        Self {
            socket: PathBuf::from("/var/run/docker.sock"),
            api_version: None,
            allowed_containers: Vec::new(),
            actions: BTreeMap::new(),
            timeout: Duration::from_secs(60),
            output_limit: DEFAULT_OUTPUT_LIMIT,
            health_poll_interval: Duration::from_secs(1),
        }
    }
}

/// Restarts containers (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct DockerRestartExecutor {
    config: DockerRestartExecutorConfig,
}

/// The daemon's error body.
#[derive(Deserialize)]
struct DaemonMessage {
    message: String,
}

/// The part of the inspect answer the health wait reads.
#[derive(Deserialize)]
struct Inspect {
    #[serde(rename = "State")]
    state: InspectState,
}

#[derive(Deserialize)]
struct InspectState {
    #[serde(rename = "Status", default)]
    status: String,
    #[serde(rename = "Health", default)]
    health: Option<InspectHealth>,
}

#[derive(Deserialize)]
struct InspectHealth {
    #[serde(rename = "Status", default)]
    status: String,
}

/// A restart as prepared: the container, the restart path's tail, whether to wait until healthy.
struct Prepared {
    container: String,
    tail: String,
    wait_until_healthy: bool,
}

impl DockerRestartExecutor {
    /// An executor with `config`.
    #[must_use]
    pub fn new(config: DockerRestartExecutorConfig) -> Self {
        Self { config }
    }

    /// The container and the restart path's tail (`containers/{id}/restart?t=N`), checked.
    fn prepare(&self, request: &ActionRequest) -> Result<Prepared, AdapterError> {
        let action = find_action(&self.config.actions, request)?;
        check_arguments([action.container.as_str()], &request.arguments)?;
        let container = fill(&action.container, &request.arguments, str::to_owned)?;
        if !self.config.allowed_containers.contains(&container) {
            return Err(AdapterError::refused(format!(
                "container {container:?} is not on the allowlist"
            )));
        }
        if let Some(version) = &self.config.api_version {
            parse_version(version).ok_or_else(|| {
                AdapterError::refused(format!("{version:?} is not an api version"))
            })?;
        }
        let tail = format!(
            "containers/{}/restart?t={}",
            percent_encode(&container),
            action.stop_timeout.as_secs()
        );
        Ok(Prepared {
            container,
            tail,
            wait_until_healthy: action.wait_until_healthy,
        })
    }

    /// The configured API version, else the negotiated one.
    async fn version(&self) -> Result<String, AdapterError> {
        if let Some(version) = &self.config.api_version {
            return Ok(version.clone());
        }
        let ping = exchange(&self.config.socket, Method::GET, "/_ping", BODY_LIMIT).await?;
        if !ping.status.is_success() {
            return Err(AdapterError::from_status(
                ping.status,
                None,
                &String::from_utf8_lossy(&ping.body),
            ));
        }
        let offered = ping
            .headers
            .get("api-version")
            .and_then(|value| value.to_str().ok())
            .and_then(parse_version)
            .ok_or_else(|| {
                AdapterError::invalid_response("the daemon's ping has no Api-Version")
            })?;
        let (major, minor) = offered.min(DOCKER_MAX_API_VERSION);
        Ok(format!("{major}.{minor}"))
    }

    async fn restart(&self, prepared: &Prepared) -> Result<ActionOutcome, AdapterError> {
        let container = prepared.container.as_str();
        let started = Instant::now();
        let version = self.version().await?;
        let path = format!("/v{version}/{}", prepared.tail);
        let answer = exchange(&self.config.socket, Method::POST, &path, BODY_LIMIT).await?;
        let text = String::from_utf8_lossy(&answer.body);
        let message = serde_json::from_str::<DaemonMessage>(&text)
            .map(|body| body.message)
            .unwrap_or_else(|_| text.trim().to_owned());
        let status = match answer.status.as_u16() {
            200..=299 => ActionStatus::Completed,
            400 | 401 | 403 | 429 => {
                return Err(AdapterError::from_status(answer.status, None, &message));
            }
            _ => ActionStatus::Failed,
        };
        let (status, detail) = match status {
            ActionStatus::Completed if prepared.wait_until_healthy => {
                self.wait_until_healthy(&version, container).await?
            }
            ActionStatus::Completed => (status, format!("container {container} restarted")),
            ActionStatus::Failed if message.is_empty() => {
                (status, format!("http status {}", answer.status.as_u16()))
            }
            ActionStatus::Failed => (status, first_line(&message)),
        };
        let duration = started.elapsed();
        Ok(ActionOutcome {
            status,
            detail,
            output: Captured::from_bytes(
                message.as_bytes(),
                message.len() as u64,
                self.config.output_limit,
                &[],
            ),
            error_output: Captured::empty(),
            duration,
        })
    }
}

impl DockerRestartExecutor {
    /// Inspects the restarted container until it is healthy (or running without a healthcheck), unhealthy, exited
    /// or dead; the caller bounds the time.
    async fn wait_until_healthy(
        &self,
        version: &str,
        container: &str,
    ) -> Result<(ActionStatus, String), AdapterError> {
        let path = format!("/v{version}/containers/{}/json", percent_encode(container));
        loop {
            let answer = exchange(&self.config.socket, Method::GET, &path, BODY_LIMIT).await?;
            if !answer.status.is_success() {
                let text = String::from_utf8_lossy(&answer.body);
                let message = serde_json::from_str::<DaemonMessage>(&text)
                    .map_or_else(|_| text.trim().to_owned(), |body| body.message);
                return Ok((
                    ActionStatus::Failed,
                    format!(
                        "container {container} restarted but could not be inspected: {}",
                        first_line(&message)
                    ),
                ));
            }
            let inspect: Inspect = serde_json::from_slice(&answer.body).map_err(|error| {
                AdapterError::invalid_response("the daemon's inspect answer has no State")
                    .with_source(error)
            })?;
            let health = inspect.state.health.map(|health| health.status);
            match (health.as_deref(), inspect.state.status.as_str()) {
                (Some("healthy"), _) => {
                    return Ok((
                        ActionStatus::Completed,
                        format!("container {container} restarted and healthy"),
                    ));
                }
                (Some("unhealthy"), _) => {
                    return Ok((
                        ActionStatus::Failed,
                        format!("container {container} restarted but unhealthy"),
                    ));
                }
                (None | Some("none"), "running") => {
                    return Ok((
                        ActionStatus::Completed,
                        format!("container {container} restarted and running (no healthcheck)"),
                    ));
                }
                (_, state @ ("exited" | "dead" | "removing")) => {
                    return Ok((
                        ActionStatus::Failed,
                        format!("container {container} restarted but {state}"),
                    ));
                }
                _ => tokio::time::sleep(self.config.health_poll_interval).await,
            }
        }
    }
}

#[async_trait]
impl Executor for DockerRestartExecutor {
    fn action_ids(&self) -> Vec<String> {
        self.config.actions.keys().cloned().collect()
    }

    fn describe(&self, request: &ActionRequest) -> Result<ActionDescription, AdapterError> {
        let Prepared { tail, .. } = self.prepare(request)?;
        let version = self.config.api_version.as_deref().unwrap_or("{negotiated}");
        Ok(ActionDescription {
            action_id: request.action_id.clone(),
            summary: format!(
                "POST /v{version}/{tail} on {}",
                self.config.socket.display()
            ),
        })
    }

    async fn execute(&self, request: &ActionRequest) -> Result<ActionOutcome, AdapterError> {
        let prepared = self.prepare(request)?;
        let deadline = effective_deadline(request, self.config.timeout);
        match tokio::time::timeout(deadline, self.restart(&prepared)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(AdapterError::timeout(deadline)),
        }
    }
}

/// `"1.41"` → `(1, 41)`.
fn parse_version(text: &str) -> Option<(u32, u32)> {
    let (major, minor) = text.trim().split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// The first line of `text`, at most 200 characters.
fn first_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_compare_numerically() {
        assert_eq!(parse_version("1.41"), Some((1, 41)));
        assert_eq!(parse_version("1.9"), Some((1, 9)));
        assert!(parse_version("1.9").unwrap() < parse_version("1.41").unwrap());
        assert_eq!(parse_version("latest"), None);
    }
}
