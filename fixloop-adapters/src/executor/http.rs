//! [`HttpActionExecutor`]: an action that is one HTTP request to an admin endpoint of the service (a feature-flag
//! switch, a cache flush), on an allowlist of origins.
//!
//! The URL, method, JSON body and headers come from the action's configuration; the request's arguments fill the
//! `{name}` placeholders of the URL (percent-encoded, so an argument stays inside its URL component) and of the
//! body's strings. The filled URL's origin (scheme, host, port) must be on the allowlist, checked before any I/O.
//! Secret headers are [`Secret`]s: `Debug` and dry-run descriptions never show them, and their values are redacted
//! from the captured response.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Method, Url};
use tokio::time::Instant;

use super::capture::{Captured, DEFAULT_OUTPUT_LIMIT};
use super::template::{check_arguments, fill, fill_json, json_strings, percent_encode};
use super::{
    ActionDescription, ActionOutcome, ActionRequest, ActionStatus, Executor, effective_deadline,
    find_action,
};
use crate::error::{AdapterError, parse_retry_after};
use crate::secret::Secret;

/// One HTTP action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAction {
    /// The HTTP method, for example `"POST"`.
    pub method: String,
    /// Absolute URL template, for example `"http://127.0.0.1:8080/admin/flags/{flag}?enabled=false"`.
    pub url: String,
    /// JSON body template (placeholders are filled in its strings); `None` sends no body.
    pub body: Option<serde_json::Value>,
    /// Plain headers.
    pub headers: Vec<(String, String)>,
    /// Headers whose values are secrets (an admin token); never shown.
    pub secret_headers: Vec<(String, Secret)>,
}

/// Configuration of an [`HttpActionExecutor`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpActionExecutorConfig {
    /// Origins an action may reach, as `scheme://host[:port]` (for example `"http://127.0.0.1:8080"`); a URL whose
    /// origin is not one of them is refused.
    pub allowed_origins: Vec<String>,
    /// The actions by id.
    pub actions: BTreeMap<String, HttpAction>,
    /// Longest one action may take (a request's shorter deadline wins). Default 10 s.
    pub timeout: Duration,
    /// Largest response body kept, in bytes. Default [`DEFAULT_OUTPUT_LIMIT`].
    pub output_limit: usize,
}

impl Default for HttpActionExecutorConfig {
    fn default() -> Self {
        Self {
            allowed_origins: Vec::new(),
            actions: BTreeMap::new(),
            timeout: Duration::from_secs(10),
            output_limit: DEFAULT_OUTPUT_LIMIT,
        }
    }
}

/// Carries out [`HttpAction`]s (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct HttpActionExecutor {
    config: HttpActionExecutorConfig,
    client: reqwest::Client,
}

/// A request checked against the configuration, ready to send.
struct Prepared<'a> {
    action: &'a HttpAction,
    method: Method,
    url: Url,
    body: Option<serde_json::Value>,
}

impl HttpActionExecutor {
    /// An executor using the shared client (build it with [`crate::http_client`], which follows no redirect).
    #[must_use]
    pub fn new(config: HttpActionExecutorConfig, client: reqwest::Client) -> Self {
        Self { config, client }
    }

    fn prepare(&self, request: &ActionRequest) -> Result<Prepared<'_>, AdapterError> {
        let action = find_action(&self.config.actions, request)?;
        let body_strings = action.body.as_ref().map(json_strings).unwrap_or_default();
        check_arguments(
            std::iter::once(action.url.as_str()).chain(body_strings),
            &request.arguments,
        )?;
        let method = Method::from_bytes(action.method.as_bytes()).map_err(|_| {
            AdapterError::refused(format!("{:?} is not an http method", action.method))
        })?;
        let filled = fill(&action.url, &request.arguments, percent_encode)?;
        let url = Url::parse(&filled).map_err(|error| {
            AdapterError::refused("the action's url is not absolute").with_source(error)
        })?;
        if !matches!(url.scheme(), "http" | "https")
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return Err(AdapterError::refused(
                "the action's url must be http(s) without user info",
            ));
        }
        let allowed =
            self.config.allowed_origins.iter().any(|origin| {
                Url::parse(origin).is_ok_and(|origin| origin.origin() == url.origin())
            });
        if !allowed {
            return Err(AdapterError::refused(format!(
                "origin {} is not on the allowlist",
                url.origin().ascii_serialization()
            )));
        }
        let body = action
            .body
            .as_ref()
            .map(|template| fill_json(template, &request.arguments))
            .transpose()?;
        Ok(Prepared {
            action,
            method,
            url,
            body,
        })
    }

    async fn send(
        &self,
        prepared: Prepared<'_>,
        deadline: Duration,
    ) -> Result<ActionOutcome, AdapterError> {
        let started = Instant::now();
        let mut builder = self
            .client
            .request(prepared.method, prepared.url)
            .timeout(deadline);
        for (name, value) in &prepared.action.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        for (name, value) in &prepared.action.secret_headers {
            builder = builder.header(name.as_str(), value.expose());
        }
        // Set last, so an action's own headers cannot hide that this request is FixLoop's remediation.
        builder = builder.header(crate::TRAFFIC_HEADER, crate::TRAFFIC_REMEDIATION);
        if let Some(body) = &prepared.body {
            builder = builder.json(body);
        }
        let response = builder.send().await.map_err(AdapterError::from_reqwest)?;
        let status = response.status();
        if matches!(status.as_u16(), 401 | 403 | 408 | 429 | 504) {
            let retry_after = parse_retry_after(response.headers());
            return Err(AdapterError::from_status(status, retry_after, ""));
        }
        let secrets: Vec<&Secret> = prepared
            .action
            .secret_headers
            .iter()
            .map(|(_, value)| value)
            .collect();
        let output = read_body(response, self.config.output_limit, &secrets).await?;
        Ok(ActionOutcome {
            status: if status.is_success() {
                ActionStatus::Completed
            } else {
                ActionStatus::Failed
            },
            detail: format!("http status {}", status.as_u16()),
            output,
            error_output: Captured::empty(),
            duration: started.elapsed(),
        })
    }
}

#[async_trait]
impl Executor for HttpActionExecutor {
    fn action_ids(&self) -> Vec<String> {
        self.config.actions.keys().cloned().collect()
    }

    fn describe(&self, request: &ActionRequest) -> Result<ActionDescription, AdapterError> {
        let prepared = self.prepare(request)?;
        let mut summary = format!("{} {}", prepared.method, prepared.url);
        for (name, value) in &prepared.action.headers {
            summary.push_str(&format!(" -H '{name}: {value}'"));
        }
        for (name, value) in &prepared.action.secret_headers {
            summary.push_str(&format!(" -H '{name}: {value}'"));
        }
        if let Some(body) = &prepared.body {
            summary.push_str(&format!(" -d '{body}'"));
        }
        Ok(ActionDescription {
            action_id: request.action_id.clone(),
            summary,
        })
    }

    async fn execute(&self, request: &ActionRequest) -> Result<ActionOutcome, AdapterError> {
        let prepared = self.prepare(request)?;
        let deadline = effective_deadline(request, self.config.timeout);
        match tokio::time::timeout(deadline, self.send(prepared, deadline)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(AdapterError::timeout(deadline)),
        }
    }
}

/// Reads at most `limit` bytes (plus a margin for redaction) of a response body; the rest is not read.
async fn read_body(
    mut response: reqwest::Response,
    limit: usize,
    secrets: &[&Secret],
) -> Result<Captured, AdapterError> {
    let keep = limit.saturating_add(256);
    let mut bytes = Vec::new();
    let mut total = 0u64;
    while bytes.len() < keep {
        match response.chunk().await.map_err(AdapterError::from_reqwest)? {
            Some(chunk) => {
                total += chunk.len() as u64;
                let room = keep - bytes.len();
                bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            None => break,
        }
    }
    Ok(Captured::from_bytes(&bytes, total, limit, secrets))
}
