//! [`GitLabCi`]: GitLab's job retry, `POST {base}/api/v4/projects/:id/jobs/:job_id/retry` with a `PRIVATE-TOKEN`
//! header. 201 answers the new job as JSON; its `id` and `web_url` are read (a missing body is still an accepted
//! retry). The project is its numeric id or its path (`group/project`), URL-encoded as the API wants. The base
//! URL is `https://gitlab.com`, or a self-hosted instance's.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use super::{
    CiProvider, DEFAULT_RERUN_TIMEOUT, RerunReceipt, RerunRequest, check_base_url, encode_segment,
    is_numeric_id, send_once,
};
use crate::error::AdapterError;
use crate::secret::Secret;

/// Most bytes of a retry's answer read.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Configuration of [`GitLabCi`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitLabCiConfig {
    /// The instance's base URL (without `/api/v4`). Default `https://gitlab.com`.
    pub base_url: String,
    /// A token with the `api` scope (sent as `PRIVATE-TOKEN`).
    pub token: Secret,
    /// Longest one request may take. Default [`DEFAULT_RERUN_TIMEOUT`].
    pub timeout: Duration,
}

impl Default for GitLabCiConfig {
    fn default() -> Self {
        Self {
            base_url: "https://gitlab.com".to_owned(),
            token: Secret::default(),
            timeout: DEFAULT_RERUN_TIMEOUT,
        }
    }
}

/// Retries failed GitLab CI jobs (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct GitLabCi {
    base_url: String,
    token: Secret,
    timeout: Duration,
    client: reqwest::Client,
}

impl GitLabCi {
    /// A provider using the shared client (build it with [`crate::http_client`]).
    ///
    /// # Errors
    ///
    /// [`Refused`](crate::ErrorKind::Refused) when the base URL is not an http(s) URL with a host.
    pub fn new(config: GitLabCiConfig, client: reqwest::Client) -> Result<Self, AdapterError> {
        Ok(Self {
            base_url: check_base_url(&config.base_url)?,
            token: config.token,
            timeout: config.timeout,
            client,
        })
    }
}

/// The fields of the new job this adapter reads.
#[derive(Debug, Deserialize)]
struct NewJob {
    id: Option<u64>,
    web_url: Option<String>,
}

#[async_trait]
impl CiProvider for GitLabCi {
    fn provider(&self) -> &'static str {
        "gitlab"
    }

    async fn rerun_failed(&self, request: &RerunRequest) -> Result<RerunReceipt, AdapterError> {
        let Some(job_id) = request.job_id.as_deref() else {
            return Err(AdapterError::refused(
                "GitLab retries one job: the intake must carry its job_id",
            ));
        };
        if !is_numeric_id(job_id) {
            return Err(AdapterError::refused("the GitLab job id must be a number"));
        }
        if request.project.is_empty() || request.project.len() > 255 {
            return Err(AdapterError::refused(
                "the GitLab project must be its id or its path",
            ));
        }
        let url = format!(
            "{}/api/v4/projects/{}/jobs/{job_id}/retry",
            self.base_url,
            encode_segment(&request.project)
        );
        let builder = self
            .client
            .post(url)
            .timeout(self.timeout)
            .header("PRIVATE-TOKEN", self.token.expose());
        let response = send_once(builder).await?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(AdapterError::from_reqwest)?;
        let job = if body.is_empty() || body.len() > MAX_ANSWER_BYTES {
            None
        } else {
            serde_json::from_slice::<NewJob>(&body).ok()
        };
        Ok(RerunReceipt {
            status,
            new_job_id: job.as_ref().and_then(|job| job.id).map(|id| id.to_string()),
            web_url: job.and_then(|job| job.web_url),
        })
    }
}
