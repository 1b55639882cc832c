//! MiniMax's JSON shapes on `POST /v1/chat/completions` (OpenAI-compatible path), private to the adapter, and the
//! interpretation of a response: both error envelopes (an HTTP error whose message ends with `(NNNN)`, and HTTP 200
//! with a non-zero `base_resp.status_code`), `finish_reason: "length"`, empty content.

use std::time::Duration;

use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::extract::strip_reasoning;
use crate::error::{AdapterError, ErrorKind};

/// The request body.
#[derive(Debug, Serialize)]
pub(crate) struct ChatRequest<'a> {
    pub(crate) model: &'a str,
    pub(crate) messages: &'a [Message],
    /// Must be in (0, 1]; never 0.
    pub(crate) temperature: f64,
    pub(crate) max_completion_tokens: u32,
    /// Moves the reasoning out of `content` into `reasoning_details` (the parser still tolerates `<think>`).
    pub(crate) reasoning_split: bool,
    /// `[{type: "function", function: {name, description, parameters}}]`, when tools are offered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tools: Option<&'a Value>,
    /// `"auto"` or `"none"` (the only documented values).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tool_choice: Option<&'static str>,
}

/// One chat message.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct Message {
    pub(crate) role: &'static str,
    pub(crate) content: String,
    /// An assistant turn's tool calls, sent back unchanged.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) tool_calls: Vec<Value>,
    /// A tool message's call id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tool_call_id: Option<String>,
    /// An assistant turn's reasoning, sent back unchanged (as the docs require in multi-turn tool use).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reasoning_details: Option<Value>,
}

impl Message {
    fn new(role: &'static str, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
            reasoning_details: None,
        }
    }

    pub(crate) fn system(content: impl Into<String>) -> Self {
        Self::new("system", content)
    }

    pub(crate) fn user(content: impl Into<String>) -> Self {
        Self::new("user", content)
    }

    pub(crate) fn tool(call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            tool_call_id: Some(call_id.into()),
            ..Self::new("tool", content)
        }
    }
}

/// One tool call the model asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ToolCall {
    pub(crate) id: String,
    pub(crate) name: String,
    /// The call's arguments, a JSON object as text (`"{}"` when the model sent none).
    pub(crate) arguments: String,
}

/// What one completion produced.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Turn {
    /// A visible answer (reasoning removed, trimmed, non-empty).
    Answer(String),
    /// Tool calls, with the assistant message to replay before the tool results.
    ToolCalls {
        assistant: Message,
        calls: Vec<ToolCall>,
    },
}

/// The success envelope (also used on the chat path for errors with HTTP 200, with `choices: null`).
#[derive(Debug, Deserialize)]
struct ChatResponse {
    #[serde(default)]
    choices: Option<Vec<Choice>>,
    #[serde(default)]
    base_resp: Option<BaseResp>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    #[serde(default)]
    finish_reason: Option<String>,
    #[serde(default)]
    message: Option<ResponseMessage>,
}

#[derive(Debug, Deserialize)]
struct ResponseMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<Value>>,
    #[serde(default)]
    reasoning_details: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct BaseResp {
    #[serde(default)]
    status_code: i64,
    #[serde(default)]
    status_msg: String,
}

/// The error envelope of real HTTP errors: `{"type":"error","error":{"type","message","http_code"},"request_id"}`.
#[derive(Debug, Deserialize)]
struct ErrorEnvelope {
    #[serde(default)]
    error: Option<ErrorBody>,
    #[serde(default)]
    base_resp: Option<BaseResp>,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    message: String,
}

/// Turns a response into the visible answer text, or the classified error (tool calls are unexpected here).
pub(crate) fn interpret(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Result<String, AdapterError> {
    match interpret_turn(status, retry_after, body)? {
        Turn::Answer(text) => Ok(text),
        Turn::ToolCalls { .. } => Err(AdapterError::invalid_response(
            "minimax: unexpected tool calls in the answer",
        )),
    }
}

/// Turns a response into an answer or tool calls, or the classified error.
pub(crate) fn interpret_turn(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Result<Turn, AdapterError> {
    let text = String::from_utf8_lossy(body);
    if !status.is_success() {
        return Err(http_error(status, retry_after, &text));
    }
    if text.trim().is_empty() {
        return Err(AdapterError::invalid_response(
            "minimax: empty response body",
        ));
    }
    let response: ChatResponse = serde_json::from_str(&text).map_err(|error| {
        AdapterError::invalid_response("minimax: malformed response json").with_source(error)
    })?;
    if let Some(base) = &response.base_resp
        && base.status_code != 0
    {
        return Err(code_error(base.status_code, &base.status_msg));
    }
    let choice = response
        .choices
        .and_then(|choices| choices.into_iter().next())
        .ok_or_else(|| AdapterError::invalid_response("minimax: response has no choices"))?;
    if choice.finish_reason.as_deref() == Some("length") {
        return Err(AdapterError::invalid_response(
            "minimax: answer truncated (finish_reason length); raise max_tokens",
        ));
    }
    let message = choice.message.unwrap_or(ResponseMessage {
        content: None,
        tool_calls: None,
        reasoning_details: None,
    });
    let content = message.content.unwrap_or_default();
    let raw_calls = message.tool_calls.unwrap_or_default();
    if !raw_calls.is_empty() {
        let calls = raw_calls
            .iter()
            .map(|call| {
                let id = call.get("id").and_then(Value::as_str);
                let name = call.pointer("/function/name").and_then(Value::as_str);
                match (id, name) {
                    (Some(id), Some(name)) => Ok(ToolCall {
                        id: id.to_owned(),
                        name: name.to_owned(),
                        arguments: call
                            .pointer("/function/arguments")
                            .and_then(Value::as_str)
                            .unwrap_or("{}")
                            .to_owned(),
                    }),
                    _ => Err(AdapterError::invalid_response(
                        "minimax: a tool call lacks its id or function name",
                    )),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let assistant = Message {
            role: "assistant",
            content,
            tool_calls: raw_calls,
            tool_call_id: None,
            reasoning_details: message.reasoning_details,
        };
        return Ok(Turn::ToolCalls { assistant, calls });
    }
    let visible = strip_reasoning(&content).trim();
    if visible.is_empty() {
        return Err(AdapterError::invalid_response("minimax: empty content"));
    }
    Ok(Turn::Answer(visible.to_owned()))
}

/// An HTTP error: 401/403/429 keep their HTTP meaning (and the retry-after); otherwise the MiniMax code in the
/// message (`... (1033)`) or `base_resp` decides, then the status.
fn http_error(status: StatusCode, retry_after: Option<Duration>, text: &str) -> AdapterError {
    let envelope = serde_json::from_str::<ErrorEnvelope>(text).ok();
    let described = envelope.as_ref().and_then(|envelope| {
        if let Some(error) = &envelope.error {
            let code = trailing_code(&error.message)
                .or_else(|| (error.kind == "insufficient_balance_error").then_some(1008));
            return Some((code, error.message.clone()));
        }
        envelope
            .base_resp
            .as_ref()
            .map(|base| (Some(base.status_code), base.status_msg.clone()))
    });
    match (status.as_u16(), described) {
        (401 | 403 | 429, _) | (_, None) => AdapterError::from_status(status, retry_after, text),
        (_, Some((Some(code), message))) => code_error(code, &message),
        (_, Some((None, message))) => AdapterError::from_status(status, retry_after, &message),
    }
}

/// The MiniMax code at the end of an error message: `"... (1004)"` → 1004.
pub(crate) fn trailing_code(message: &str) -> Option<i64> {
    let trimmed = message.trim_end();
    let inner = trimmed.strip_suffix(')')?;
    let open = inner.rfind('(')?;
    let digits = &inner[open + 1..];
    if digits.is_empty() || digits.len() > 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Classifies a MiniMax error code (platform.minimax.io error-code table).
pub(crate) fn code_error(code: i64, message: &str) -> AdapterError {
    let message = format!("minimax error {code}: {}", one_line(message));
    match code {
        1004 | 2049 => AdapterError::unauthorized(message),
        1002 | 1039 | 1041 | 2045 | 2056 => {
            AdapterError::new(ErrorKind::RateLimited { retry_after: None }, message)
        }
        1001 => AdapterError::new(ErrorKind::Timeout, message),
        1000 | 1008 | 1013 | 1024 | 1028 | 1030 | 1033 => AdapterError::unavailable(message),
        _ => AdapterError::invalid_response(message),
    }
}

fn one_line(text: &str) -> String {
    let text: String = text.chars().take(200).collect();
    text.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_read_from_message_suffixes() {
        assert_eq!(
            trailing_code("login fail: carry the key (1004)"),
            Some(1004)
        );
        assert_eq!(trailing_code("rate limit exceeded (1002) "), Some(1002));
        assert_eq!(trailing_code("no code here"), None);
        assert_eq!(trailing_code("weird (12a)"), None);
        assert_eq!(trailing_code("()"), None);
    }

    #[test]
    fn codes_are_classified() {
        assert_eq!(code_error(1004, "").kind(), ErrorKind::Unauthorized);
        assert_eq!(
            code_error(1039, "").kind(),
            ErrorKind::RateLimited { retry_after: None }
        );
        assert_eq!(code_error(1008, "").kind(), ErrorKind::Unavailable);
        assert_eq!(code_error(1001, "").kind(), ErrorKind::Timeout);
        assert_eq!(code_error(2013, "").kind(), ErrorKind::InvalidResponse);
    }

    #[test]
    fn an_http_500_with_a_code_uses_the_code() {
        let body =
            r#"{"type":"error","error":{"type":"api_error","message":"system error (1033)"}}"#;
        let error =
            interpret(StatusCode::INTERNAL_SERVER_ERROR, None, body.as_bytes()).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unavailable);
        assert!(error.to_string().contains("1033"), "{error}");
        let body = r#"{"type":"error","error":{"type":"insufficient_balance_error","message":"no money"}}"#;
        let error = interpret(StatusCode::PAYMENT_REQUIRED, None, body.as_bytes()).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unavailable);
    }

    proptest::proptest! {
        #[test]
        fn interpreting_never_panics(
            status in 100u16..600,
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
            message in "\\PC{0,60}",
        ) {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let _ = interpret_turn(status, None, &body);
            let envelope = serde_json::json!({"type": "error", "error": {"type": "x", "message": message}});
            let _ = interpret_turn(status, None, envelope.to_string().as_bytes());
            let _ = trailing_code(&message);
        }
    }
}
