//! [`MiniMaxCopilot`]: answers operators' questions from a JSON snapshot of the state; citations are kept only when
//! their URL appears in the state.

use async_trait::async_trait;
use fixloop_contract::{IncidentState, Link};
use serde::Deserialize;

use super::extract::json_candidates;
use super::wire::{Message, Turn};
use super::{MiniMaxClient, MiniMaxConfig, prompt};
use crate::error::AdapterError;
use crate::ports::{Copilot, CopilotReply, CopilotState};

/// Longest answer kept, in characters.
const MAX_ANSWER_CHARS: usize = 4000;

/// The MiniMax copilot.
///
/// By default one call answers from a JSON snapshot of the state in the prompt. With
/// [`with_tool_steps`](Self::with_tool_steps), the model instead reads the state through tools (`get_status`,
/// `get_incident`, `get_run`, `get_signals`) in a bounded loop. Either way the answer is post-processed: citations
/// whose URL is not in the state are dropped, and unless the status is RECOVERED an answer claiming safety is
/// replaced by a grounded "not yet".
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
        Ok(guard_safety(parse_reply(&text, state), state))
    }
}

#[derive(Debug, Deserialize)]
struct WireReply {
    answer: String,
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
/// in prose. Citations whose URL is not in the state are dropped, duplicates too.
#[must_use]
pub fn parse_reply(text: &str, state: &CopilotState) -> CopilotReply {
    let allowed = allowed_links(state);
    let parsed =
        json_candidates(text).find_map(|value| serde_json::from_value::<WireReply>(value).ok());
    let (answer, cited) = match parsed {
        Some(reply) => (reply.answer, reply.citations),
        None => (text.to_owned(), Vec::new()),
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
        answer: answer.trim().chars().take(MAX_ANSWER_CHARS).collect(),
        citations,
    }
}

/// Phrases that claim the service is safe or recovered.
const SAFETY_CLAIMS: [&str; 9] = [
    "it is safe",
    "it's safe",
    "safe to resume",
    "safe to close",
    "you can resume",
    "has recovered",
    "is recovered",
    "have recovered",
    "fully recovered",
];

/// Whether `answer` claims safety or recovery (a leading "yes", or a claim phrase not negated just before it).
#[must_use]
pub fn claims_safety(answer: &str) -> bool {
    let answer = answer.to_lowercase();
    if answer.trim_start().starts_with("yes") {
        return true;
    }
    SAFETY_CLAIMS.iter().any(|phrase| {
        answer.match_indices(phrase).any(|(index, _)| {
            let before: String = answer[..index]
                .chars()
                .rev()
                .take(12)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            !(before.contains("not") || before.contains("n't") || before.contains("no "))
        })
    })
}

/// The model may be wrong or manipulated: unless the status is RECOVERED, an answer that claims safety is replaced
/// by a grounded one (the citations are kept; they were already filtered).
fn guard_safety(reply: CopilotReply, state: &CopilotState) -> CopilotReply {
    if state.status.status == IncidentState::Recovered || !claims_safety(&reply.answer) {
        return reply;
    }
    let status = serde_json::to_value(state.status.status)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default();
    let mut answer = format!(
        "Not yet: the status is {status}, not RECOVERED. Recovery needs every validation test to pass and the signals to be back to normal."
    );
    if let Some(blocker) = state
        .recovery_blocker
        .as_deref()
        .filter(|b| !b.trim().is_empty())
    {
        answer.push_str(" Blocking: ");
        answer.push_str(blocker.trim());
        if !answer.ends_with('.') {
            answer.push('.');
        }
    }
    CopilotReply {
        answer,
        citations: reply.citations,
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
