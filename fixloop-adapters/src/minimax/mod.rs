//! The MiniMax adapter: a [`Planner`](crate::ports::Planner) ([`MiniMaxPlanner`]), a
//! [`Copilot`](crate::ports::Copilot) ([`MiniMaxCopilot`]), a [`CiRefiner`](crate::CiRefiner)
//! ([`MiniMaxCiRefiner`]) and a [`RemediationChooser`](crate::RemediationChooser) ([`MiniMaxRemediationChooser`])
//! over MiniMax's OpenAI-compatible chat endpoint `POST {base_url}/v1/chat/completions`
//! (Bearer auth).
//!
//! One attempt per call. Errors: HTTP 401/403 → unauthorized, 429 → rate limited, 5xx/connect → unavailable,
//! timeout → timeout; MiniMax codes (in `base_resp.status_code` on an HTTP 200, or as the `(NNNN)` suffix of an
//! HTTP error's message) are classified too: 1004/2049 → unauthorized, 1002/1039/1041/2045/2056 → rate limited,
//! 1001 → timeout, 1000/1008/1013/1024/1028/1030/1033 → unavailable, others → invalid response. A truncated answer
//! (`finish_reason: "length"`), no choices, malformed JSON and empty content are invalid responses.
//!
//! The model's answer is parsed leniently ([`strip_reasoning`], [`json_candidates`]) but never trusted: the plan's
//! id and time come from the request and its items go to the core's validator; the copilot's citations are filtered
//! against the state and its claim field is kept; the server's safety rule ([`crate::copilot_safety::guard`], once
//! for every copilot) writes the opening sentence from the state and, unless the status is RECOVERED, leaves out the
//! model's sentences about the service's health, recovery, safety or traffic ([`claims_safety`] among them).
//! Text from the monitored service is fenced as untrusted data in every prompt ([`fence_untrusted`]). The copilot
//! can read live data through tools ([`crate::ports::CopilotLookup`]) in a bounded loop
//! ([`MiniMaxCopilot::with_tool_steps`]); tool results are fenced and size-bounded too.

mod chooser;
mod ci;
mod copilot;
mod extract;
mod planner;
mod prompt;
mod wire;

use std::time::Duration;

pub use crate::copilot_safety::claims_safety;
pub use chooser::{MiniMaxRemediationChooser, parse_choice};
pub use ci::{MiniMaxCiRefiner, parse_proposal};
pub use copilot::{
    DEFAULT_LOOKUP_TIMEOUT, DEFAULT_TOOL_STEPS, MAX_TOOL_CALLS_PER_STEP, MAX_TOOL_RESULT_CHARS,
    MiniMaxCopilot, parse_reply,
};
pub use extract::{MAX_CANDIDATES, MAX_SCAN_BYTES, extract_json, json_candidates, strip_reasoning};
pub use planner::{MiniMaxPlanner, parse_plan_items};
pub use prompt::{UNTRUSTED_CLOSE, UNTRUSTED_OPEN, fence_untrusted};

use crate::error::{AdapterError, parse_retry_after};
use crate::secret::Secret;

/// The default model (`MINIMAX_MODEL`).
pub const DEFAULT_MODEL: &str = "MiniMax-M2.5";
/// The default base URL, international host (`MINIMAX_BASE_URL`); the China host is `https://api.minimaxi.com`.
pub const DEFAULT_BASE_URL: &str = "https://api.minimax.io";
/// The default completion budget. M2.x always reasons and the reasoning counts against it, so it is generous.
pub const DEFAULT_MAX_TOKENS: u32 = 8192;
/// The default per-call timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Configuration of the MiniMax adapters.
#[derive(Debug, Clone, PartialEq)]
pub struct MiniMaxConfig {
    /// The API key (`MINIMAX_API_KEY`), sent as `Authorization: Bearer`.
    pub api_key: Secret,
    /// Model id (`MINIMAX_MODEL`), default [`DEFAULT_MODEL`].
    pub model: String,
    /// Base URL without `/v1` (`MINIMAX_BASE_URL`), default [`DEFAULT_BASE_URL`]; tests point it at a stub.
    pub base_url: String,
    /// Timeout of one chat call.
    pub timeout: Duration,
    /// `max_completion_tokens` of each call (reasoning included).
    pub max_tokens: u32,
}

impl MiniMaxConfig {
    /// The defaults with `api_key`.
    #[must_use]
    pub fn new(api_key: impl Into<Secret>) -> Self {
        Self {
            api_key: api_key.into(),
            model: DEFAULT_MODEL.to_owned(),
            base_url: DEFAULT_BASE_URL.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            max_tokens: DEFAULT_MAX_TOKENS,
        }
    }
}

/// The chat client shared by the planner and the copilot.
#[derive(Debug, Clone)]
pub struct MiniMaxClient {
    config: MiniMaxConfig,
    http: reqwest::Client,
}

impl MiniMaxClient {
    /// A client over the shared `http` client.
    #[must_use]
    pub fn new(config: MiniMaxConfig, http: reqwest::Client) -> Self {
        Self { config, http }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &MiniMaxConfig {
        &self.config
    }

    /// Sends one chat completion and returns the visible answer (reasoning removed, trimmed, non-empty).
    pub(crate) async fn chat(&self, messages: &[wire::Message]) -> Result<String, AdapterError> {
        let (status, retry_after, bytes) = self.send(messages, None, None).await?;
        wire::interpret(status, retry_after, &bytes)
    }

    /// Sends one chat completion offering `tools`, and returns the answer or the tool calls.
    pub(crate) async fn chat_turn(
        &self,
        messages: &[wire::Message],
        tools: &serde_json::Value,
        tool_choice: &'static str,
    ) -> Result<wire::Turn, AdapterError> {
        let (status, retry_after, bytes) =
            self.send(messages, Some(tools), Some(tool_choice)).await?;
        wire::interpret_turn(status, retry_after, &bytes)
    }

    async fn send(
        &self,
        messages: &[wire::Message],
        tools: Option<&serde_json::Value>,
        tool_choice: Option<&'static str>,
    ) -> Result<(reqwest::StatusCode, Option<Duration>, Vec<u8>), AdapterError> {
        let url = format!(
            "{}/v1/chat/completions",
            self.config.base_url.trim_end_matches('/')
        );
        let body = wire::ChatRequest {
            model: &self.config.model,
            messages,
            temperature: 1.0,
            max_completion_tokens: self.config.max_tokens,
            reasoning_split: true,
            tools,
            tool_choice,
        };
        let response = self
            .http
            .post(url)
            .bearer_auth(self.config.api_key.expose())
            .timeout(self.config.timeout)
            .json(&body)
            .send()
            .await
            .map_err(AdapterError::from_reqwest)?;
        let status = response.status();
        let retry_after = parse_retry_after(response.headers());
        let bytes = response.bytes().await.map_err(AdapterError::from_reqwest)?;
        Ok((status, retry_after, bytes.to_vec()))
    }
}
