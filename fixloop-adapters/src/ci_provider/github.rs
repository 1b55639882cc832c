//! [`GitHubActions`]: GitHub Actions' "re-run failed jobs from a workflow run",
//! `POST {base}/repos/{owner}/{repo}/actions/runs/{run_id}/rerun-failed-jobs`, with
//! `Authorization: Bearer <token>`, `Accept: application/vnd.github+json` and `X-GitHub-Api-Version: 2022-11-28`.
//! Any 2xx is an accepted rerun (the API answers 201 or 204 with no body); the rerun gets a new attempt of the
//! same run id. The base URL is `https://api.github.com`, or `https://<host>/api/v3` for GitHub Enterprise Server.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;

use super::{
    CiProvider, DEFAULT_RERUN_TIMEOUT, RerunReceipt, RerunRequest, check_base_url, is_numeric_id,
    send_once,
};
use crate::error::AdapterError;
use crate::secret::Secret;

/// The REST API version this adapter speaks.
pub const API_VERSION: &str = "2022-11-28";

/// Configuration of [`GitHubActions`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubActionsConfig {
    /// The API's base URL. Default `https://api.github.com`.
    pub base_url: String,
    /// A token that may write Actions (`actions: write`).
    pub token: Secret,
    /// Longest one request may take. Default [`DEFAULT_RERUN_TIMEOUT`].
    pub timeout: Duration,
}

impl Default for GitHubActionsConfig {
    fn default() -> Self {
        Self {
            base_url: "https://api.github.com".to_owned(),
            token: Secret::default(),
            timeout: DEFAULT_RERUN_TIMEOUT,
        }
    }
}

/// Reruns failed GitHub Actions jobs (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct GitHubActions {
    base_url: String,
    token: Secret,
    timeout: Duration,
    client: reqwest::Client,
}

impl GitHubActions {
    /// A provider using the shared client (build it with [`crate::http_client`]).
    ///
    /// # Errors
    ///
    /// [`Refused`](crate::ErrorKind::Refused) when the base URL is not an http(s) URL with a host.
    pub fn new(config: GitHubActionsConfig, client: reqwest::Client) -> Result<Self, AdapterError> {
        Ok(Self {
            base_url: check_base_url(&config.base_url)?,
            token: config.token,
            timeout: config.timeout,
            client,
        })
    }
}

/// Whether `project` is `owner/repo`, each part made of `A-Z a-z 0-9 - . _` (and neither `.` nor `..`).
fn is_repository(project: &str) -> bool {
    let mut parts = project.split('/');
    let valid = |part: &str| {
        !part.is_empty()
            && part.len() <= 100
            && part != "."
            && part != ".."
            && part
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_'))
    };
    matches!((parts.next(), parts.next(), parts.next()), (Some(owner), Some(repo), None) if valid(owner) && valid(repo))
}

#[async_trait]
impl CiProvider for GitHubActions {
    fn provider(&self) -> &'static str {
        "github"
    }

    async fn rerun_failed(&self, request: &RerunRequest) -> Result<RerunReceipt, AdapterError> {
        if !is_repository(&request.project) {
            return Err(AdapterError::refused(
                "the GitHub repository must be owner/repo",
            ));
        }
        if !is_numeric_id(&request.run_id) {
            return Err(AdapterError::refused(
                "the GitHub workflow run id must be a number",
            ));
        }
        let url = format!(
            "{}/repos/{}/actions/runs/{}/rerun-failed-jobs",
            self.base_url, request.project, request.run_id
        );
        let builder = self
            .client
            .post(url)
            .timeout(self.timeout)
            .bearer_auth(self.token.expose())
            .header(reqwest::header::ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", API_VERSION)
            .json(&json!({ "enable_debug_logging": false }));
        let response = send_once(builder).await?;
        Ok(RerunReceipt {
            status: response.status().as_u16(),
            new_job_id: None,
            web_url: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_are_owner_slash_name() {
        assert!(is_repository("acme/shop-api"));
        assert!(is_repository("acme/shop.api_2"));
        for bad in [
            "acme",
            "acme/",
            "/shop",
            "acme/shop/x",
            "acme/..",
            "ac me/shop",
            "acme/shop?x",
        ] {
            assert!(!is_repository(bad), "{bad}");
        }
    }
}
