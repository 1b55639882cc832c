//! The TestSprite adapter: a [`TestRunner`] over TestSprite's MCP server
//! ([`TestSpriteRunner`]).
//!
//! Per run: start a session ([`mcp::StdioTransport`] spawning `npx -y @testsprite/testsprite-mcp@latest` with
//! `API_KEY`, or [`mcp::HttpTransport`] to an MCP URL with a Bearer key), `initialize`, report every test RUNNING,
//! call [`assumed::RUN_TOOL`] once with the plan, then report PASS/FAIL per test from the result. The session is
//! closed on every path. The MCP protocol shapes are verified; TestSprite's tool arguments and result shapes are
//! not, and are confined to [`assumed`].

pub mod assumed;
pub mod mcp;

use std::time::Duration;

use async_trait::async_trait;
use fixloop_contract::TestStatus;
use fixloop_core::{RunId, ValidatedPlan};

use crate::error::AdapterError;
use crate::ports::{ProgressModel, ProgressSink, RunnerExpectations, TestProgress, TestRunner};
use crate::secret::Secret;
use mcp::{HttpTransport, McpClient, StdioTransport, ToolResult, Transport};

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
    /// Timeout of the handshake messages.
    pub request_timeout: Duration,
    /// Timeout of the run tool call (TestSprite documents 10–20 minute cycles).
    pub run_timeout: Duration,
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
}

/// The TestSprite test runner.
#[derive(Debug, Clone)]
pub struct TestSpriteRunner {
    config: TestSpriteConfig,
    http: reqwest::Client,
}

impl TestSpriteRunner {
    /// A runner; `http` is used by the HTTP transport only.
    #[must_use]
    pub fn new(config: TestSpriteConfig, http: reqwest::Client) -> Self {
        Self { config, http }
    }

    async fn run_with<T: Transport>(
        &self,
        transport: T,
        run_id: &RunId,
        plan: &ValidatedPlan,
        progress: &ProgressSink,
    ) -> Result<(), AdapterError> {
        let mut client = McpClient::new(transport, self.config.request_timeout);
        let outcome = self.session(&mut client, run_id, plan, progress).await;
        client.close().await;
        let result = outcome?;
        report(&result, plan, progress).await
    }

    async fn session<T: Transport>(
        &self,
        client: &mut McpClient<T>,
        run_id: &RunId,
        plan: &ValidatedPlan,
        progress: &ProgressSink,
    ) -> Result<ToolResult, AdapterError> {
        client.initialize().await?;
        for (item, _) in plan.tests() {
            let _ = progress
                .send(TestProgress {
                    test_id: item.test_id.clone(),
                    status: TestStatus::Running,
                    details: None,
                })
                .await;
        }
        let arguments = assumed::run_arguments(&self.config, run_id, plan);
        let result = client
            .call_tool(assumed::RUN_TOOL, arguments, self.config.run_timeout)
            .await?;
        if result.is_error {
            let text = result.texts.join(" ");
            let text: String = text.chars().take(300).collect();
            return Err(AdapterError::unavailable(format!(
                "testsprite tool failed: {text}"
            )));
        }
        Ok(result)
    }
}

/// Reports PASS/FAIL for every test of the plan from the tool result.
async fn report(
    result: &ToolResult,
    plan: &ValidatedPlan,
    progress: &ProgressSink,
) -> Result<(), AdapterError> {
    let ids: Vec<String> = plan.tests().map(|(item, _)| item.test_id.clone()).collect();
    let outcomes = assumed::parse_outcomes(result, &ids);
    for id in ids {
        let (status, details) = match outcomes.get(&id) {
            Some(outcome) if outcome.passed => (
                TestStatus::Pass,
                outcome
                    .details
                    .clone()
                    .or_else(|| Some("passed on TestSprite".to_owned())),
            ),
            Some(outcome) => (
                TestStatus::Fail,
                outcome
                    .details
                    .clone()
                    .or_else(|| Some("failed on TestSprite".to_owned())),
            ),
            None => (
                TestStatus::Fail,
                Some("TestSprite reported no result for this test".to_owned()),
            ),
        };
        let _ = progress
            .send(TestProgress {
                test_id: id,
                status,
                details,
            })
            .await;
    }
    Ok(())
}

#[async_trait]
impl TestRunner for TestSpriteRunner {
    fn expectations(&self) -> RunnerExpectations {
        // The handshake, then one run call bounded by `run_timeout`; the verdicts come with its result.
        RunnerExpectations {
            max_run_duration: self.config.request_timeout + self.config.run_timeout,
            progress: ProgressModel::Batched,
        }
    }

    async fn run(
        &self,
        run_id: &RunId,
        plan: &ValidatedPlan,
        progress: ProgressSink,
    ) -> Result<(), AdapterError> {
        match &self.config.transport {
            TestSpriteTransport::Stdio { command, args } => {
                let env = [(assumed::API_KEY_ENV.to_owned(), self.config.api_key.clone())];
                let transport = StdioTransport::spawn(command, args, &env)?;
                self.run_with(transport, run_id, plan, &progress).await
            }
            TestSpriteTransport::Http { url } => {
                let transport = HttpTransport::new(
                    self.http.clone(),
                    url.clone(),
                    Some(self.config.api_key.clone()),
                );
                self.run_with(transport, run_id, plan, &progress).await
            }
        }
    }
}
