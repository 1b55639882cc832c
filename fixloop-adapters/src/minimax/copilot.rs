//! [`MiniMaxCopilot`]: answers operators' questions from a JSON snapshot of the state; citations are kept only when
//! their URL appears in the state; the safety rule ([`crate::copilot_safety::guard`], applied by the server to every
//! copilot's answer) decides what may be said.

use std::time::Duration;

use async_trait::async_trait;
use fixloop_contract::Link;
use serde::Deserialize;
use serde_json::json;

use super::extract::json_candidates;
use super::wire::{Message, Turn};
use super::{MiniMaxClient, MiniMaxConfig, prompt};
use crate::copilot_safety::{self, Claim};
use crate::error::{AdapterError, ErrorKind};
use crate::ports::{Copilot, CopilotLookup, CopilotReply, CopilotState};

/// Longest answer kept, in characters.
const MAX_ANSWER_CHARS: usize = 4000;

/// The default number of model calls of the tool loop (the last one may not call tools).
pub const DEFAULT_TOOL_STEPS: u32 = 4;
/// The default timeout of one look-up.
pub const DEFAULT_LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest tool result shown to the model, in characters.
pub const MAX_TOOL_RESULT_CHARS: usize = 6000;
/// Most tool calls carried out per model call (the rest are answered with an error).
pub const MAX_TOOL_CALLS_PER_STEP: usize = 6;

/// The MiniMax copilot.
///
/// By default one call answers from a JSON snapshot of the state in the prompt. With
/// [`with_tool_steps`](Self::with_tool_steps), the model instead reads live data through tools (`get_status`,
/// `get_signals`, `get_recent_runs`, `get_run`, `get_timeline`, `get_context`, each a [`Lookup`](crate::ports::Lookup) of the
/// [`CopilotLookup`] it is given) in a bounded loop; every look-up has a timeout, and its result is fenced as
/// untrusted data and cut to [`MAX_TOOL_RESULT_CHARS`]. Either way citations whose URL is not in the state are
/// dropped and the model's claim field is kept in [`CopilotReply::claim`]; the safety rule
/// ([`copilot_safety::guard`]: the opening sentence written from the state, and before RECOVERED the model's
/// sentences about the service's health left out) is the server's, applied once to every copilot's answer. The
/// total time is the caller's to bound (the server gives the whole answer a budget).
#[derive(Debug, Clone)]
pub struct MiniMaxCopilot {
    client: MiniMaxClient,
    tool_steps: u32,
    lookup_timeout: Duration,
}

impl MiniMaxCopilot {
    /// A copilot over the shared `http` client.
    #[must_use]
    pub fn new(config: MiniMaxConfig, http: reqwest::Client) -> Self {
        Self::from_client(MiniMaxClient::new(config, http))
    }

    /// A copilot sharing an existing MiniMax client (for example with the planner).
    #[must_use]
    pub fn from_client(client: MiniMaxClient) -> Self {
        Self {
            client,
            tool_steps: 0,
            lookup_timeout: DEFAULT_LOOKUP_TIMEOUT,
        }
    }

    /// Enables the tool-calling loop with at most `steps` model calls per answer (0 disables it;
    /// [`DEFAULT_TOOL_STEPS`] is the server's choice). Every step but the last offers the tools with
    /// `tool_choice: "auto"`; the last sends `"none"`, and a model that still asks for tools then is an invalid
    /// response.
    #[must_use]
    pub fn with_tool_steps(mut self, steps: u32) -> Self {
        self.tool_steps = steps;
        self
    }

    /// Sets the timeout of one look-up ([`DEFAULT_LOOKUP_TIMEOUT`] by default); a look-up past it answers the
    /// model an error, and the loop goes on.
    #[must_use]
    pub fn with_lookup_timeout(mut self, timeout: Duration) -> Self {
        self.lookup_timeout = timeout;
        self
    }

    async fn answer_with_tools(
        &self,
        question: &str,
        state: &CopilotState,
        lookup: &dyn CopilotLookup,
    ) -> Result<String, AdapterError> {
        let tools = prompt::copilot_tools();
        let mut messages = prompt::copilot_tool_messages(question, state);
        for step in 1..=self.tool_steps {
            let last = step == self.tool_steps;
            let choice = if last { "none" } else { "auto" };
            match self.client.chat_turn(&messages, &tools, choice).await? {
                Turn::Answer(text) => return Ok(text),
                Turn::ToolCalls { .. } if last => break,
                Turn::ToolCalls { assistant, calls } => {
                    messages.push(assistant);
                    for (index, call) in calls.into_iter().enumerate() {
                        let result = if index < MAX_TOOL_CALLS_PER_STEP {
                            self.tool_result(&call.name, &call.arguments, lookup).await
                        } else {
                            prompt::copilot_tool_result(
                                &call.name,
                                &json!({"error": format!("at most {MAX_TOOL_CALLS_PER_STEP} tool calls per turn")}),
                                MAX_TOOL_RESULT_CHARS,
                            )
                        };
                        messages.push(Message::tool(call.id, result));
                    }
                }
            }
        }
        Err(AdapterError::invalid_response(format!(
            "minimax: the copilot still asked for tools after {} steps",
            self.tool_steps
        )))
    }

    /// One tool call's result for the model: the look-up's JSON, or an error it can read; fenced and bounded.
    async fn tool_result(&self, name: &str, arguments: &str, lookup: &dyn CopilotLookup) -> String {
        let value = match prompt::copilot_tool_lookup(name, arguments) {
            Err(message) => json!({"error": message}),
            Ok(wanted) => {
                match tokio::time::timeout(self.lookup_timeout, lookup.look_up(&wanted)).await {
                    Ok(Ok(value)) => value,
                    Ok(Err(error)) => {
                        json!({"error": format!("{} failed: {}", wanted.tool_name(), error_words(error.kind()))})
                    }
                    Err(_) => json!({"error": format!(
                        "{} did not answer within {} s",
                        wanted.tool_name(),
                        self.lookup_timeout.as_secs_f64()
                    )}),
                }
            }
        };
        prompt::copilot_tool_result(name, &value, MAX_TOOL_RESULT_CHARS)
    }
}

#[async_trait]
impl Copilot for MiniMaxCopilot {
    fn answers_with_model(&self) -> bool {
        true
    }

    async fn answer(
        &self,
        question: &str,
        state: &CopilotState,
        lookup: &dyn CopilotLookup,
    ) -> Result<CopilotReply, AdapterError> {
        let text = if self.tool_steps == 0 {
            let messages = prompt::copilot_messages(question, state);
            self.client.chat(&messages).await?
        } else {
            self.answer_with_tools(question, state, lookup).await?
        };
        Ok(parse_reply(&text, state))
    }
}

/// A look-up failure in words for the model (no internal detail).
fn error_words(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Timeout => "timed out",
        ErrorKind::Unavailable => "the source is unavailable",
        ErrorKind::Unauthorized => "the source refused the credentials",
        ErrorKind::RateLimited { .. } => "the source is rate limited",
        ErrorKind::InvalidResponse => "the source answered something unusable",
        ErrorKind::Refused => "the look-up was refused",
        ErrorKind::NotFound => "the source has no such thing",
    }
}

#[derive(Debug, Deserialize)]
struct WireReply {
    answer: String,
    /// `"recovered"`, `"not_recovered"` or `"none"`.
    #[serde(default)]
    claim: Option<String>,
    #[serde(default)]
    citations: Vec<WireCitation>,
}

#[derive(Debug, Deserialize)]
struct WireCitation {
    #[serde(default)]
    label: String,
    url: String,
}

/// The reply in a model answer: the first JSON object with an `answer`, or the whole text when the model answered
/// in prose, with its claim field ([`Claim::None`] for a prose answer). Citations whose URL is not in the state are
/// dropped, duplicates too. An answer longer than 4,000 characters is cut on a word boundary. (The safety rule and
/// the opening sentence are the server's: [`copilot_safety::guard`].)
#[must_use]
pub fn parse_reply(text: &str, state: &CopilotState) -> CopilotReply {
    let allowed = allowed_links(state);
    let parsed =
        json_candidates(text).find_map(|value| serde_json::from_value::<WireReply>(value).ok());
    let (answer, claim, cited) = match parsed {
        Some(reply) => (
            reply.answer,
            Claim::parse(reply.claim.as_deref()),
            reply.citations,
        ),
        None => (text.to_owned(), Claim::None, Vec::new()),
    };
    let mut citations: Vec<Link> = Vec::new();
    for citation in cited {
        let url = citation.url.trim();
        let Some(known) = allowed.iter().find(|link| link.url == url) else {
            continue;
        };
        if citations.iter().any(|link| link.url == url) {
            continue;
        }
        let label = citation.label.trim();
        citations.push(Link {
            label: if label.is_empty() {
                known.label.clone()
            } else {
                label.chars().take(120).collect()
            },
            url: known.url.clone(),
        });
    }
    CopilotReply {
        answer: copilot_safety::cut_on_word(answer.trim(), MAX_ANSWER_CHARS),
        citations,
        claim,
    }
}

/// The links a citation may point to: the incident's evidence links and the run's URL.
fn allowed_links(state: &CopilotState) -> Vec<Link> {
    let mut links: Vec<Link> = state
        .incident
        .iter()
        .flat_map(|incident| incident.datadog_summary.evidence_links.iter().cloned())
        .collect();
    if let Some(url) = &state.run_url {
        links.push(Link {
            label: "Validation run".to_owned(),
            url: url.clone(),
        });
    }
    links
}
