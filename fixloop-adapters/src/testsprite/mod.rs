//! The TestSprite adapter: a [`TestRunner`] over TestSprite's MCP server ([`TestSpriteRunner`]), spoken with the
//! official Rust MCP SDK through [`crate::mcp`].
//!
//! Per run: connect ([`TestSpriteTransport::Stdio`] spawning `npx -y @testsprite/testsprite-mcp@latest` with
//! `API_KEY`, or [`TestSpriteTransport::Http`], Streamable HTTP with a Bearer key) and run the `initialize`
//! handshake, list the tools, report every test RUNNING, start [`assumed::RUN_TOOL`] with the plan, and then report
//! each test's verdict as soon as it is known:
//!
//! - from the run call's MCP progress notifications, when their message carries per-test results
//!   ([`assumed::parse_progress`]);
//! - from polling [`assumed::STATUS_TOOL`] with bounded back-off ([`PollBackoff`]), when the server lists that tool;
//! - and, for the tests still without a verdict, from the run call's result. A test nobody reported FAILS.
//!
//! Every step has a timeout (the handshake, the tool list and each poll: `request_timeout`; the run:
//! `run_timeout`), and the session is closed on every path (a spawned server is killed).
//!
//! Verified against documentation (vendor reference §3): the npm package, stdio, the `API_KEY` variable, the tool
//! name `testsprite_generate_code_and_execute` and its `testIds` argument. Assumed, and confined to [`assumed`]: the
//! other arguments, the result and progress shapes, the status tool, and the HTTP endpoint's Bearer key.

pub mod assumed;

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use fixloop_contract::TestStatus;
use fixloop_core::{RunId, ValidatedPlan};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::error::AdapterError;
use crate::mcp::{self, McpEndpoint, McpSession};
use crate::ports::{ProgressModel, ProgressSink, RunnerExpectations, TestProgress, TestRunner};
use crate::secret::Secret;
use assumed::Outcome;

/// The npm package of TestSprite's MCP server (verified).
pub const MCP_PACKAGE: &str = "@testsprite/testsprite-mcp@latest";

/// How to reach the MCP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestSpriteTransport {
    /// Spawn the server and speak over its stdin/stdout (the documented way).
    Stdio {
        /// The program, `npx` by default.
        command: String,
        /// Its arguments, `["-y", MCP_PACKAGE]` by default.
        args: Vec<String>,
    },
    /// Streamable HTTP to an MCP endpoint URL (assumed: a hosted or proxied server taking a Bearer key).
    Http {
        /// The MCP endpoint, for example `https://mcp.example/mcp`.
        url: String,
    },
}

/// How often the status tool is polled: `initial`, then each interval `factor` times the previous, at most `cap`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PollBackoff {
    /// The first interval.
    pub initial: Duration,
    /// The growth factor (values below 1 are read as 1).
    pub factor: f64,
    /// The longest interval.
    pub cap: Duration,
}

impl PollBackoff {
    /// The interval after `interval`.
    #[must_use]
    pub fn next(&self, interval: Duration) -> Duration {
        interval.mul_f64(self.factor.max(1.0)).min(self.cap)
    }
}

impl Default for PollBackoff {
    /// 5 s, doubling, at most 60 s: TestSprite documents 10–20 minute cycles.
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(5),
            factor: 2.0,
            cap: Duration::from_secs(60),
        }
    }
}

/// Configuration of the TestSprite runner.
#[derive(Debug, Clone, PartialEq)]
pub struct TestSpriteConfig {
    /// The TestSprite API key: `API_KEY` of the stdio server, or the Bearer token over HTTP.
    pub api_key: Secret,
    /// How to reach the server.
    pub transport: TestSpriteTransport,
    /// `projectName` argument: the root directory name of the project under test.
    pub project_name: String,
    /// `projectPath` argument: the absolute path of the project under test.
    pub project_path: String,
    /// Timeout of the handshake, of the tool list and of each status poll.
    pub request_timeout: Duration,
    /// Timeout of the run (TestSprite documents 10–20 minute cycles).
    pub run_timeout: Duration,
    /// Back-off of the status polls.
    pub poll: PollBackoff,
}

impl TestSpriteConfig {
    /// The documented setup: `npx -y @testsprite/testsprite-mcp@latest` over stdio.
    #[must_use]
    pub fn stdio(api_key: impl Into<Secret>, project_path: impl Into<String>) -> Self {
        let project_path = project_path.into();
        let project_name = project_path
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or("")
            .to_owned();
        Self {
            api_key: api_key.into(),
            transport: TestSpriteTransport::Stdio {
                command: "npx".to_owned(),
                args: vec!["-y".to_owned(), MCP_PACKAGE.to_owned()],
            },
            project_name,
            project_path,
            request_timeout: Duration::from_secs(60),
            run_timeout: Duration::from_secs(20 * 60),
            poll: PollBackoff::default(),
        }
    }

    /// Streamable HTTP to `url`.
    #[must_use]
    pub fn http(
        api_key: impl Into<Secret>,
        url: impl Into<String>,
        project_path: impl Into<String>,
    ) -> Self {
        Self {
            transport: TestSpriteTransport::Http { url: url.into() },
            ..Self::stdio(api_key, project_path)
        }
    }

    fn endpoint(&self) -> McpEndpoint {
        match &self.transport {
            TestSpriteTransport::Stdio { command, args } => McpEndpoint::Stdio {
                command: command.clone(),
                args: args.clone(),
                env: vec![(assumed::API_KEY_ENV.to_owned(), self.api_key.clone())],
            },
            TestSpriteTransport::Http { url } => McpEndpoint::Http {
                url: url.clone(),
                // No key (a proxy authenticates): no `Authorization` header rather than an empty Bearer.
                bearer: (!self.api_key.is_empty()).then(|| self.api_key.clone()),
                headers: Vec::new(),
            },
        }
    }
}

/// The TestSprite test runner.
#[derive(Debug, Clone)]
pub struct TestSpriteRunner {
    config: TestSpriteConfig,
    http: reqwest::Client,
}

impl TestSpriteRunner {
    /// A runner.
    ///
    /// # Errors
    ///
    /// [`Unavailable`](crate::ErrorKind::Unavailable) when the HTTP client of the MCP transport cannot be built.
    pub fn new(config: TestSpriteConfig) -> Result<Self, AdapterError> {
        let http = mcp::mcp_http_client(config.request_timeout)?;
        Ok(Self { config, http })
    }

    async fn session(
        &self,
        session: &McpSession,
        notes: &mut mpsc::UnboundedReceiver<rmcp::model::ProgressNotificationParam>,
        run_id: &RunId,
        plan: &ValidatedPlan,
        progress: &ProgressSink,
    ) -> Result<(), AdapterError> {
        let config = &self.config;
        let tools = session.list_tools(config.request_timeout).await?;
        if !tools.iter().any(|tool| tool == assumed::RUN_TOOL) {
            return Err(AdapterError::invalid_response(format!(
                "the testsprite mcp server has no tool {}",
                assumed::RUN_TOOL
            )));
        }
        let polls = tools.iter().any(|tool| tool == assumed::STATUS_TOOL);
        let mut reporter = Reporter::new(plan, progress);
        reporter.all_running().await;

        let call = session
            .start_call(
                assumed::RUN_TOOL,
                assumed::run_arguments(config, run_id, plan),
                config.run_timeout,
            )
            .await?;
        let token = call.progress_token().clone();
        let answer = call.answer();
        tokio::pin!(answer);
        let status_arguments = assumed::status_arguments(config, run_id, plan);
        let mut interval = config.poll.initial;
        let mut next_poll = Instant::now() + interval;
        loop {
            tokio::select! {
                result = &mut answer => {
                    let result = result?;
                    if result.is_error {
                        return Err(AdapterError::unavailable(format!(
                            "testsprite tool failed: {}",
                            result.excerpt()
                        )));
                    }
                    reporter.outcomes(assumed::parse_outcomes(&result, &reporter.ids)).await;
                    reporter.rest_without_result().await;
                    return Ok(());
                }
                Some(note) = notes.recv() => {
                    if note.progress_token == token
                        && let Some(message) = &note.message
                    {
                        reporter.outcomes(assumed::parse_progress(message, &reporter.ids)).await;
                    }
                }
                () = tokio::time::sleep_until(next_poll), if polls && !reporter.is_complete() => {
                    match session
                        .call_tool(assumed::STATUS_TOOL, status_arguments.clone(), config.request_timeout)
                        .await
                    {
                        Ok(result) if !result.is_error => {
                            reporter.outcomes(assumed::parse_outcomes(&result, &reporter.ids)).await;
                        }
                        // A failed poll is not a failed run: the run call's result still comes.
                        Ok(result) => tracing::debug!(text = %result.excerpt(), "testsprite status poll failed"),
                        Err(error) => tracing::debug!(%error, "testsprite status poll failed"),
                    }
                    interval = config.poll.next(interval);
                    next_poll = Instant::now() + interval;
                }
            }
        }
    }
}

#[async_trait]
impl TestRunner for TestSpriteRunner {
    fn expectations(&self) -> RunnerExpectations {
        // The handshake and the tool list (each `request_timeout`), the run (`run_timeout`, polls included), and
        // closing the session.
        RunnerExpectations {
            max_run_duration: 2 * self.config.request_timeout
                + self.config.run_timeout
                + mcp::CLOSE_TIMEOUT,
            progress: ProgressModel::PerTest,
        }
    }

    async fn run(
        &self,
        run_id: &RunId,
        plan: &ValidatedPlan,
        progress: ProgressSink,
    ) -> Result<(), AdapterError> {
        let (sender, mut notes) = mpsc::unbounded_channel();
        let session = McpSession::connect(
            &self.config.endpoint(),
            &self.http,
            self.config.request_timeout,
            Some(sender),
        )
        .await?;
        let run = self.session(&session, &mut notes, run_id, plan, &progress);
        // The whole run, polls included, is bounded by `run_timeout` (the run call has the same timeout of its own).
        let outcome = tokio::time::timeout(self.config.run_timeout, run)
            .await
            .unwrap_or_else(|_| Err(AdapterError::timeout(self.config.run_timeout)));
        session.close().await;
        outcome
    }
}

/// Sends each test's progress once: RUNNING, then one verdict.
struct Reporter<'a> {
    ids: Vec<String>,
    done: HashSet<String>,
    progress: &'a ProgressSink,
}

impl<'a> Reporter<'a> {
    fn new(plan: &ValidatedPlan, progress: &'a ProgressSink) -> Self {
        Self {
            ids: plan.tests().map(|(item, _)| item.test_id.clone()).collect(),
            done: HashSet::new(),
            progress,
        }
    }

    fn is_complete(&self) -> bool {
        self.done.len() == self.ids.len()
    }

    async fn send(&self, test_id: String, status: TestStatus, details: Option<String>) {
        // A closed sink means nobody listens any more; the run goes on to its end regardless.
        let _ = self
            .progress
            .send(TestProgress {
                test_id,
                status,
                details,
            })
            .await;
    }

    async fn all_running(&self) {
        for id in &self.ids {
            self.send(id.clone(), TestStatus::Running, None).await;
        }
    }

    /// Reports the verdicts not reported yet, in the order they were found.
    async fn outcomes(&mut self, outcomes: Vec<(String, Outcome)>) {
        for (id, outcome) in outcomes {
            if !self.ids.contains(&id) || !self.done.insert(id.clone()) {
                continue;
            }
            let (status, fallback) = if outcome.passed {
                (TestStatus::Pass, "passed on TestSprite")
            } else {
                (TestStatus::Fail, "failed on TestSprite")
            };
            let details = outcome.details.or_else(|| Some(fallback.to_owned()));
            self.send(id, status, details).await;
        }
    }

    /// Fails every test that has no verdict yet.
    async fn rest_without_result(&mut self) {
        for id in self.ids.clone() {
            if self.done.insert(id.clone()) {
                self.send(
                    id,
                    TestStatus::Fail,
                    Some("TestSprite reported no result for this test".to_owned()),
                )
                .await;
            }
        }
    }
}
