//! The [`CiProvider`] port: asks a CI system to rerun a failed job, and nothing else. FixLoop's CI self-heal never
//! edits code, pushes, or changes a pipeline's definition; a rerun is the whole of what it may do.
//!
//! A provider makes one attempt per call and classifies its failure: [`Unauthorized`](crate::ErrorKind::Unauthorized)
//! (401, 403 without an exhausted rate limit), [`NotFound`](crate::ErrorKind::NotFound) (404: no such repository,
//! run or job, or a token that may not see it), [`RateLimited`](crate::ErrorKind::RateLimited) with `Retry-After`
//! (429, or GitHub's 403 with `x-ratelimit-remaining: 0`), [`Timeout`](crate::ErrorKind::Timeout),
//! [`Unavailable`](crate::ErrorKind::Unavailable) (5xx, connection errors) and
//! [`InvalidResponse`](crate::ErrorKind::InvalidResponse) (another answer: the job cannot be retried now).
//! How often to rerun is the caller's policy (`fixloop_core::ci::heal`). The token is a [`Secret`](crate::Secret):
//! it never appears in `Debug`, messages or errors, and it is sent only to the configured base URL.
//!
//! Real providers: [`GitHubActions`] (`POST /repos/{owner}/{repo}/actions/runs/{run_id}/rerun-failed-jobs`) and
//! [`GitLabCi`] (`POST /api/v4/projects/:id/jobs/:job_id/retry`). The fake is
//! [`FakeCiProvider`](crate::fake::FakeCiProvider).

pub mod github;
pub mod gitlab;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::{AdapterError, ErrorKind, parse_retry_after};

pub use github::{GitHubActions, GitHubActionsConfig};
pub use gitlab::{GitLabCi, GitLabCiConfig};

/// The timeout of one rerun request when the configuration does not say.
pub const DEFAULT_RERUN_TIMEOUT: Duration = Duration::from_secs(10);

/// One rerun to ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RerunRequest {
    /// The project as the provider names it: `owner/repo` on GitHub, the numeric id or the URL-encoded path
    /// (`group/project`) on GitLab.
    pub project: String,
    /// The workflow run (GitHub) or pipeline (GitLab) id.
    pub run_id: String,
    /// The failed job's id: GitLab retries one job and needs it; GitHub reruns every failed job of the run and
    /// ignores it.
    pub job_id: Option<String>,
}

/// What the provider answered to an accepted rerun.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RerunReceipt {
    /// The provider's HTTP status (GitHub 201 or 204, GitLab 201).
    pub status: u16,
    /// The new job's id, when the provider creates one (GitLab).
    pub new_job_id: Option<String>,
    /// The new job's web page, when the provider says (GitLab).
    pub web_url: Option<String>,
}

/// Asks one CI system for reruns, one attempt per call.
#[async_trait]
pub trait CiProvider: Send + Sync + fmt::Debug {
    /// A short name of the provider for logs and reports (`"github"`, `"gitlab"`, `"fake"`).
    fn provider(&self) -> &'static str;

    /// Asks for a rerun of the failed job(s) of `request`, once, within the provider's timeout.
    ///
    /// # Errors
    ///
    /// An [`AdapterError`] classified as in the [module docs](self); [`Refused`](crate::ErrorKind::Refused) before
    /// any I/O when the request cannot be sent (GitLab without a job id, an id that is not a number).
    async fn rerun_failed(&self, request: &RerunRequest) -> Result<RerunReceipt, AdapterError>;
}

/// Sends a built request once and classifies a failure: 404 as not found, a 403 whose rate limit is exhausted as
/// rate limited, anything else as [`AdapterError::from_status`] does. The URL is kept out of every message.
pub(crate) async fn send_once(
    builder: reqwest::RequestBuilder,
) -> Result<reqwest::Response, AdapterError> {
    let response = builder.send().await.map_err(AdapterError::from_reqwest)?;
    let status = response.status().as_u16();
    let exhausted = response
        .headers()
        .get("x-ratelimit-remaining")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim() == "0");
    match status {
        404 => Err(AdapterError::new(
            ErrorKind::NotFound,
            "http status 404: no such project, run or job (or the token may not see it)",
        )),
        403 if exhausted => Err(AdapterError::rate_limited(parse_retry_after(
            response.headers(),
        ))),
        _ => AdapterError::check_status(response).await,
    }
}

/// Whether `id` is a provider id: 1 to 20 ASCII digits (both providers number runs, pipelines and jobs).
pub(crate) fn is_numeric_id(id: &str) -> bool {
    (1..=20).contains(&id.len()) && id.bytes().all(|byte| byte.is_ascii_digit())
}

/// `text` with every byte outside `A-Z a-z 0-9 - . _ ~` percent-encoded (a URL path segment).
pub(crate) fn encode_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A base URL checked: `http` or `https`, a host, no query or fragment; kept without its trailing `/`.
pub(crate) fn check_base_url(base_url: &str) -> Result<String, AdapterError> {
    let url = reqwest::Url::parse(base_url)
        .map_err(|error| AdapterError::refused(format!("the base URL is not a URL: {error}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(AdapterError::refused(
            "the base URL must be an http or https URL with a host",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(AdapterError::refused(
            "the base URL must not have a query or a fragment",
        ));
    }
    Ok(base_url.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_digits_only() {
        assert!(is_numeric_id("9454698428"));
        for bad in ["", "12a", "../1", "1/retry", "-1", &"9".repeat(21)] {
            assert!(!is_numeric_id(bad), "{bad}");
        }
    }

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(encode_segment("group/sub project"), "group%2Fsub%20project");
        assert_eq!(encode_segment("a-b.c_d~e"), "a-b.c_d~e");
    }

    #[test]
    fn base_urls_are_http_with_a_host() {
        assert_eq!(
            check_base_url("https://ghe.example/api/v3/").unwrap(),
            "https://ghe.example/api/v3"
        );
        for bad in ["ftp://x", "https://", "https://x/?a=1", "not a url"] {
            assert!(check_base_url(bad).is_err(), "{bad}");
        }
    }
}
