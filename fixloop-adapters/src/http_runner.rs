//! [`HttpTestRunner`]: the built-in test runner (the embedded default). It sends each test's request with reqwest,
//! all tests concurrently, and judges the response with the core's criteria evaluator.
//!
//! Each request carries the plan item's method, URL, headers and JSON body (no body for a `GET` or `DELETE` whose
//! `body_json` is empty) plus [`VALIDATION_HEADER`] with the run id, so the service can count validation traffic
//! apart. Redirects are never followed (build the client with [`crate::http_client`]): a 302 is observed as a 302.
//! The response body is read by chunks up to [`HttpTestRunnerConfig::max_body_bytes`]; the rest is dropped and the
//! truncation noted in the details. A transport error or a timeout is a FAIL whose details say what happened
//! (`request failed: connection refused`, `timed out after 5s`), never an error of the run.

use std::time::Duration;

use async_trait::async_trait;
use fixloop_contract::{HttpMethod, PlanItem, TestStatus};
use fixloop_core::{Criteria, Observation, RunId, ValidatedPlan};
use futures_util::future::join_all;
use reqwest::header::CONTENT_TYPE;
use tokio::time::Instant;

use crate::VALIDATION_HEADER;
use crate::error::{AdapterError, format_duration};
use crate::ports::{ProgressSink, TestProgress, TestRunner};

/// Settings of [`HttpTestRunner`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTestRunnerConfig {
    /// Timeout of one test: connecting, sending and reading the (capped) body. Default 5 s.
    pub test_timeout: Duration,
    /// Largest response body read, in bytes; the rest is dropped and the truncation noted. Default 64 KiB.
    pub max_body_bytes: usize,
}

impl Default for HttpTestRunnerConfig {
    fn default() -> Self {
        Self {
            test_timeout: Duration::from_secs(5),
            max_body_bytes: 64 * 1024,
        }
    }
}

/// Runs a validated plan's tests over HTTP (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct HttpTestRunner {
    config: HttpTestRunnerConfig,
    client: reqwest::Client,
}

impl HttpTestRunner {
    /// A runner using the shared client (build it with [`crate::http_client`], which disables redirects).
    #[must_use]
    pub fn new(config: HttpTestRunnerConfig, client: reqwest::Client) -> Self {
        Self { config, client }
    }

    /// Runs one test and reports RUNNING then its verdict.
    async fn run_test(
        &self,
        run_id: &RunId,
        item: &PlanItem,
        criteria: &Criteria,
        progress: &ProgressSink,
    ) {
        report(progress, &item.test_id, TestStatus::Running, None).await;
        let (status, details) = match self.observe(run_id, item).await {
            Ok((observation, truncated)) => {
                let verdict = criteria.evaluate(&observation);
                let mut details = verdict.explanation;
                if truncated {
                    details.push_str(&format!(
                        " (response body truncated to {} bytes)",
                        self.config.max_body_bytes
                    ));
                }
                let status = if verdict.passed {
                    TestStatus::Pass
                } else {
                    TestStatus::Fail
                };
                (status, details)
            }
            Err(failure) => (TestStatus::Fail, failure),
        };
        tracing::debug!(run_id = %run_id, test_id = %item.test_id, ?status, %details, "test finished");
        report(progress, &item.test_id, status, Some(details)).await;
    }

    /// Sends the item's request and reads the response within the test timeout; the error is the FAIL details.
    async fn observe(
        &self,
        run_id: &RunId,
        item: &PlanItem,
    ) -> Result<(Observation, bool), String> {
        let timeout = self.config.test_timeout;
        let request = self.request(run_id, item);
        let started = Instant::now();
        let exchange = async {
            let mut response = request.send().await.map_err(describe_transport_error)?;
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .map(|(name, value)| {
                    (
                        name.as_str().to_owned(),
                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let mut body = Vec::new();
            let mut truncated = false;
            while let Some(chunk) = response.chunk().await.map_err(describe_transport_error)? {
                let room = self.config.max_body_bytes - body.len();
                if chunk.len() > room {
                    body.extend_from_slice(&chunk[..room]);
                    truncated = true;
                    break;
                }
                body.extend_from_slice(&chunk);
            }
            let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            Ok((
                Observation {
                    status,
                    headers,
                    body: String::from_utf8_lossy(&body).into_owned(),
                    latency_ms,
                },
                truncated,
            ))
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(format!("timed out after {}", format_duration(timeout))),
        }
    }

    fn request(&self, run_id: &RunId, item: &PlanItem) -> reqwest::RequestBuilder {
        let target = &item.target;
        let method = match target.method {
            HttpMethod::Get => reqwest::Method::GET,
            HttpMethod::Post => reqwest::Method::POST,
            HttpMethod::Put => reqwest::Method::PUT,
            HttpMethod::Delete => reqwest::Method::DELETE,
        };
        let mut request = self
            .client
            .request(method, &target.url)
            // A backstop above the test timeout, so the runner's own timeout (with its clearer message) fires first.
            .timeout(self.config.test_timeout + Duration::from_secs(1));
        let mut has_content_type = false;
        for (name, value) in &target.headers {
            if name.eq_ignore_ascii_case(VALIDATION_HEADER) {
                continue;
            }
            has_content_type |= name.eq_ignore_ascii_case(CONTENT_TYPE.as_str());
            request = request.header(name, value);
        }
        let sends_body = !target.body_json.is_empty()
            || matches!(target.method, HttpMethod::Post | HttpMethod::Put);
        if sends_body {
            if !has_content_type {
                request = request.header(CONTENT_TYPE, "application/json");
            }
            let body = serde_json::Value::Object(target.body_json.clone());
            request = request.body(body.to_string());
        }
        request.header(VALIDATION_HEADER, run_id.as_str())
    }
}

#[async_trait]
impl TestRunner for HttpTestRunner {
    async fn run(
        &self,
        run_id: &RunId,
        plan: &ValidatedPlan,
        progress: ProgressSink,
    ) -> Result<(), AdapterError> {
        join_all(
            plan.tests()
                .map(|(item, criteria)| self.run_test(run_id, item, criteria, &progress)),
        )
        .await;
        if progress.is_closed() {
            return Err(AdapterError::unavailable("progress receiver closed"));
        }
        Ok(())
    }
}

/// Sends a progress report; a closed receiver (the run was cancelled) is noticed at the end of the run.
async fn report(
    progress: &ProgressSink,
    test_id: &str,
    status: TestStatus,
    details: Option<String>,
) {
    let _closed = progress
        .send(TestProgress {
            test_id: test_id.to_owned(),
            status,
            details,
        })
        .await;
}

/// One line for a transport error: `request failed: connection refused`, `request failed: invalid url`.
fn describe_transport_error(error: reqwest::Error) -> String {
    let error = error.without_url();
    if error.is_timeout() {
        return "request failed: timed out".to_owned();
    }
    if error.is_builder() {
        return "request failed: invalid request (url or header)".to_owned();
    }
    let mut cause: &(dyn std::error::Error + 'static) = &error;
    let mut innermost = error.to_string();
    while let Some(next) = cause.source() {
        if let Some(io) = next.downcast_ref::<std::io::Error>() {
            let reason = match io.kind() {
                std::io::ErrorKind::ConnectionRefused => Some("connection refused"),
                std::io::ErrorKind::ConnectionReset => Some("connection reset"),
                std::io::ErrorKind::ConnectionAborted => Some("connection aborted"),
                std::io::ErrorKind::TimedOut => Some("timed out"),
                std::io::ErrorKind::UnexpectedEof => Some("connection closed early"),
                _ => None,
            };
            if let Some(reason) = reason {
                return format!("request failed: {reason}");
            }
        }
        innermost = next.to_string();
        cause = next;
    }
    format!("request failed: {}", innermost.to_lowercase())
}
