//! [`HttpTestRunner`]: the built-in test runner (the embedded default). It sends each test's request with reqwest,
//! all tests concurrently, and judges the response with the core's criteria evaluator.
//!
//! Each request carries the plan item's method, URL, headers and JSON body (no body for a `GET` or `DELETE` whose
//! `body_json` is empty) plus [`VALIDATION_HEADER`] with the run id, so the service can count validation traffic
//! apart. Redirects are never followed (build the client with [`crate::http_client`]): a 302 is observed as a 302.
//! The response body is read by chunks up to [`HttpTestRunnerConfig::max_body_bytes`]; the rest is dropped and the
//! truncation noted in the details. A transport error or a timeout is a FAIL whose details say what happened
//! (`request failed: connection refused`, `timed out after 5s`), never an error of the run.
//!
//! Header values and string values inside `body_json` may reference secrets as `${env:NAME}` (see
//! [`crate::secrets`]): they are substituted from [`HttpTestRunnerConfig::secrets`] at send time only, and a
//! resolved value is redacted from the details. A placeholder naming a secret that is not configured fails the
//! test (`secret NAME is not configured`) without sending anything.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use fixloop_contract::{HttpMethod, PlanItem, Target, TestStatus};
use fixloop_core::{Criteria, Observation, RunId, ValidatedPlan};
use futures_util::future::join_all;
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use serde_json::{Map, Value};
use tokio::time::Instant;

use crate::error::{AdapterError, format_duration};
use crate::ports::{ProgressModel, ProgressSink, RunnerExpectations, TestProgress, TestRunner};
use crate::secret::Secret;
use crate::secrets;
use crate::{TRAFFIC_HEADER, TRAFFIC_SYNTHETIC, TRAFFIC_VALIDATION, VALIDATION_HEADER};

/// Settings of [`HttpTestRunner`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTestRunnerConfig {
    /// Timeout of one test: connecting, sending and reading the (capped) body. Default 5 s.
    pub test_timeout: Duration,
    /// Largest response body read, in bytes; the rest is dropped and the truncation noted. Default 64 KiB.
    pub max_body_bytes: usize,
    /// Secrets by name, substituted for `${env:NAME}` in header values and `body_json` strings at send time.
    /// Default none.
    pub secrets: BTreeMap<String, Secret>,
}

impl Default for HttpTestRunnerConfig {
    fn default() -> Self {
        Self {
            test_timeout: Duration::from_secs(5),
            max_body_bytes: 64 * 1024,
            secrets: BTreeMap::new(),
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
        let exchange = Exchange {
            client: &self.client,
            timeout: self.config.test_timeout,
            max_body_bytes: self.config.max_body_bytes,
            secrets: &self.config.secrets,
            validation_tag: run_id.as_str(),
        };
        let execution = execute(&exchange, &item.target, criteria).await;
        let status = if execution.passed {
            TestStatus::Pass
        } else {
            TestStatus::Fail
        };
        let details = execution.details;
        tracing::debug!(run_id = %run_id, test_id = %item.test_id, ?status, %details, "test finished");
        report(progress, &item.test_id, status, Some(details)).await;
    }
}

/// How one request is sent: the shared client, its bounds, the secrets and the [`VALIDATION_HEADER`] value.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Exchange<'a> {
    /// The shared client (no redirects).
    pub(crate) client: &'a reqwest::Client,
    /// Bound of the whole exchange.
    pub(crate) timeout: Duration,
    /// Largest body read.
    pub(crate) max_body_bytes: usize,
    /// Secrets substituted for placeholders.
    pub(crate) secrets: &'a BTreeMap<String, Secret>,
    /// Value of the [`VALIDATION_HEADER`].
    pub(crate) validation_tag: &'a str,
}

/// What one request and its evaluation gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Execution {
    /// Whether the criteria passed.
    pub(crate) passed: bool,
    /// One line: the evaluator's explanation or what went wrong; secret values redacted.
    pub(crate) details: String,
    /// The response status, or why there was none (`connection refused`, `timed out after 5s`,
    /// `secret NAME is not configured`).
    pub(crate) outcome: Result<u16, String>,
    /// Time from sending to the end of the (capped) body or the failure, in ms.
    pub(crate) latency_ms: u64,
}

/// Sends `target` once (placeholders substituted, [`VALIDATION_HEADER`] set) within the exchange's timeout and
/// evaluates `criteria` on the response. Never fails: a transport error, a timeout or a missing secret is a failed
/// execution.
pub(crate) async fn execute(
    exchange: &Exchange<'_>,
    target: &Target,
    criteria: &Criteria,
) -> Execution {
    let started = Instant::now();
    let elapsed_ms = || u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let request = match build_request(exchange, target) {
        Ok(request) => request,
        Err(missing) => {
            let reason = format!("secret {missing} is not configured");
            return Execution {
                passed: false,
                details: reason.clone(),
                outcome: Err(reason),
                latency_ms: 0,
            };
        }
    };
    let redact = |text: &str| secrets::redact(text, exchange.secrets.values());
    match observe(exchange, request, started).await {
        Ok((observation, truncated)) => {
            let verdict = criteria.evaluate(&observation);
            let mut details = verdict.explanation;
            if truncated {
                details.push_str(&format!(
                    " (response body truncated to {} bytes)",
                    exchange.max_body_bytes
                ));
            }
            Execution {
                passed: verdict.passed,
                details: redact(&details),
                outcome: Ok(observation.status),
                latency_ms: observation.latency_ms,
            }
        }
        Err(failure) => {
            let details = redact(&failure);
            let reason = details
                .strip_prefix("request failed: ")
                .unwrap_or(&details)
                .to_owned();
            Execution {
                passed: false,
                details,
                outcome: Err(reason),
                latency_ms: elapsed_ms(),
            }
        }
    }
}

/// What [`send_once`] observed: whether the criteria passed, the response status (or why there was none) and a
/// one-line explanation with secret values redacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneRequest {
    /// Whether the criteria passed.
    pub passed: bool,
    /// The response status, or why there was none (`connection refused`, `timed out after 5s`,
    /// `secret NAME is not configured`).
    pub outcome: Result<u16, String>,
    /// The evaluator's explanation or what went wrong; secret values redacted.
    pub details: String,
}

/// Sends `target` once exactly as a validation run would (placeholders substituted from `secrets`,
/// [`VALIDATION_HEADER`] set to `validation_tag`, at most `timeout`, the body capped at 64 KiB) and evaluates
/// `criteria` on the answer. Never fails: a transport error, a timeout or a missing secret is a failed request.
/// `fixloop profile init` uses it to try each candidate journey once.
pub async fn send_once(
    client: &reqwest::Client,
    target: &Target,
    criteria: &Criteria,
    timeout: Duration,
    secrets: &BTreeMap<String, Secret>,
    validation_tag: &str,
) -> OneRequest {
    let exchange = Exchange {
        client,
        timeout,
        max_body_bytes: HttpTestRunnerConfig::default().max_body_bytes,
        secrets,
        validation_tag,
    };
    let execution = execute(&exchange, target, criteria).await;
    OneRequest {
        passed: execution.passed,
        outcome: execution.outcome,
        details: execution.details,
    }
}

/// Sends the request and reads the response within the timeout; the error is the FAIL details.
async fn observe(
    exchange: &Exchange<'_>,
    request: reqwest::RequestBuilder,
    started: Instant,
) -> Result<(Observation, bool), String> {
    let timeout = exchange.timeout;
    let max_body_bytes = exchange.max_body_bytes;
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
            let room = max_body_bytes - body.len();
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

/// The target's request with placeholders substituted; the error is the first secret name not configured.
fn build_request(
    exchange: &Exchange<'_>,
    target: &Target,
) -> Result<reqwest::RequestBuilder, String> {
    let method = match target.method {
        HttpMethod::Get => reqwest::Method::GET,
        HttpMethod::Post => reqwest::Method::POST,
        HttpMethod::Put => reqwest::Method::PUT,
        HttpMethod::Delete => reqwest::Method::DELETE,
    };
    let mut request = exchange
        .client
        .request(method, &target.url)
        // A backstop above the test timeout, so the runner's own timeout (with its clearer message) fires first.
        .timeout(exchange.timeout + Duration::from_secs(1));
    let mut has_content_type = false;
    for (name, value) in &target.headers {
        if name.eq_ignore_ascii_case(VALIDATION_HEADER) || name.eq_ignore_ascii_case(TRAFFIC_HEADER)
        {
            continue;
        }
        has_content_type |= name.eq_ignore_ascii_case(CONTENT_TYPE.as_str());
        let resolved = secrets::substitute(value, exchange.secrets)?;
        if resolved == value.as_str() {
            request = request.header(name, value);
        } else {
            // Marked sensitive, so HTTP-level debugging never prints the secret; an invalid value is reported by
            // reqwest at send time, as for any header.
            match HeaderValue::from_str(&resolved) {
                Ok(mut header_value) => {
                    header_value.set_sensitive(true);
                    request = request.header(name, header_value);
                }
                Err(_) => request = request.header(name, resolved.into_owned()),
            }
        }
    }
    let sends_body =
        !target.body_json.is_empty() || matches!(target.method, HttpMethod::Post | HttpMethod::Put);
    if sends_body {
        if !has_content_type {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        let body = Value::Object(substitute_object(&target.body_json, exchange.secrets)?);
        request = request.body(body.to_string());
    }
    // A synthetic probe's exchange is tagged `synthetic`; every other one is a validation run's.
    let traffic = if exchange.validation_tag == crate::synthetic::SYNTHETIC_VALIDATION_TAG {
        TRAFFIC_SYNTHETIC
    } else {
        TRAFFIC_VALIDATION
    };
    Ok(request
        .header(VALIDATION_HEADER, exchange.validation_tag)
        .header(TRAFFIC_HEADER, traffic))
}

/// `object` with placeholders substituted in every string value, at any depth (keys are kept as written).
fn substitute_object(
    object: &Map<String, Value>,
    secrets: &BTreeMap<String, Secret>,
) -> Result<Map<String, Value>, String> {
    object
        .iter()
        .map(|(key, value)| Ok((key.clone(), substitute_value(value, secrets)?)))
        .collect()
}

fn substitute_value(value: &Value, secrets: &BTreeMap<String, Secret>) -> Result<Value, String> {
    Ok(match value {
        Value::String(text) => Value::String(secrets::substitute(text, secrets)?.into_owned()),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| substitute_value(item, secrets))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(object) => Value::Object(substitute_object(object, secrets)?),
        other => other.clone(),
    })
}

#[async_trait]
impl TestRunner for HttpTestRunner {
    fn expectations(&self) -> RunnerExpectations {
        // The tests run concurrently, each bounded by `test_timeout`; a second covers reporting.
        RunnerExpectations {
            max_run_duration: self.config.test_timeout + Duration::from_secs(1),
            progress: ProgressModel::PerTest,
        }
    }

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
