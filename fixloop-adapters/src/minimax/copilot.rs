//! [`MiniMaxCopilot`]: answers operators' questions from a JSON snapshot of the state; citations are kept only when
//! their URL appears in the state, and the safety rule ([`crate::copilot_safety`]) decides what may be said.

use async_trait::async_trait;
use fixloop_contract::Link;
use serde::Deserialize;

use super::extract::json_candidates;
use super::wire::{Message, Turn};
use super::{MiniMaxClient, MiniMaxConfig, prompt};
use crate::copilot_safety::{self, Claim};
use crate::error::AdapterError;
use crate::ports::{Copilot, CopilotReply, CopilotState};

/// Longest answer kept, in characters.
const MAX_ANSWER_CHARS: usize = 4000;

/// The MiniMax copilot.
///
/// By default one call answers from a JSON snapshot of the state in the prompt. With
/// [`with_tool_steps`](Self::with_tool_steps), the model instead reads the state through tools (`get_status`,
/// `get_incident`, `get_run`, `get_signals`) in a bounded loop. Either way the answer is post-processed: citations
/// whose URL is not in the state are dropped, the opening sentence is written from the state
/// ([`copilot_safety::opening`]), and unless the status is RECOVERED an answer whose claim field or text claims
/// recovery ([`copilot_safety::check`]) is replaced by a grounded "not yet".
#[derive(Debug, Clone)]
pub struct MiniMaxCopilot {
    client: MiniMaxClient,
    tool_steps: u32,
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
        }
    }

    /// Enables the tool-calling loop with at most `steps` model calls per answer (0 disables it). Every step but
    /// the last offers the tools with `tool_choice: "auto"`; the last sends `"none"`, and a model that still asks
    /// for tools then is an invalid response.
    #[must_use]
    pub fn with_tool_steps(mut self, steps: u32) -> Self {
        self.tool_steps = steps;
        self
    }

    async fn answer_with_tools(
        &self,
        question: &str,
        state: &CopilotState,
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
                    for call in calls {
                        let result = prompt::copilot_tool_result(&call.name, state);
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
    ) -> Result<CopilotReply, AdapterError> {
        let text = if self.tool_steps == 0 {
            let messages = prompt::copilot_messages(question, state);
            self.client.chat(&messages).await?
        } else {
            self.answer_with_tools(question, state).await?
        };
        Ok(finish(question, &text, state))
    }
}

/// The final reply: the opening sentence written from the state, then the model's answer, or, when the safety rule
/// withholds it ([`copilot_safety::check`]: its claim field or its text claims recovery before RECOVERED), a
/// grounded "not yet".
fn finish(question: &str, text: &str, state: &CopilotState) -> CopilotReply {
    let (reply, claim) = parse_structured(text, state);
    let body = match copilot_safety::check(question, &reply.answer, claim, state) {
        Ok(()) => reply.answer,
        Err(_) => copilot_safety::withheld_answer(state),
    };
    CopilotReply {
        answer: format!("{} {body}", copilot_safety::opening(state)),
        citations: reply.citations,
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
/// in prose. Citations whose URL is not in the state are dropped, duplicates too. (The safety rule and the opening
/// sentence are applied by the copilot, not here.)
#[must_use]
pub fn parse_reply(text: &str, state: &CopilotState) -> CopilotReply {
    parse_structured(text, state).0
}

/// [`parse_reply`], with the model's claim field ([`Claim::None`] for a prose answer).
fn parse_structured(text: &str, state: &CopilotState) -> (CopilotReply, Claim) {
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
    let reply = CopilotReply {
        answer: answer.trim().chars().take(MAX_ANSWER_CHARS).collect(),
        citations,
    };
    (reply, claim)
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
