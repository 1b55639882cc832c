//! [`MiniMaxPlanner`]: asks MiniMax for a candidate Recovery Validation Plan and parses the answer leniently.

use async_trait::async_trait;
use fixloop_contract::{Plan, PlanItem};
use serde_json::Value;

use super::extract::json_candidates;
use super::{MiniMaxClient, MiniMaxConfig, prompt};
use crate::error::AdapterError;
use crate::ports::{PlanRequest, Planner};

/// The MiniMax planner. The plan's `plan_id` and `generated_at` come from the request, never from the model; the
/// items are a candidate the core validates.
#[derive(Debug, Clone)]
pub struct MiniMaxPlanner {
    client: MiniMaxClient,
}

impl MiniMaxPlanner {
    /// A planner over the shared `http` client.
    #[must_use]
    pub fn new(config: MiniMaxConfig, http: reqwest::Client) -> Self {
        Self {
            client: MiniMaxClient::new(config, http),
        }
    }

    /// A planner sharing an existing MiniMax client (for example with the copilot).
    #[must_use]
    pub fn from_client(client: MiniMaxClient) -> Self {
        Self { client }
    }
}

#[async_trait]
impl Planner for MiniMaxPlanner {
    async fn propose(&self, request: &PlanRequest) -> Result<Plan, AdapterError> {
        let messages = prompt::planner_messages(request);
        let answer = self.client.chat(&messages).await?;
        let items = parse_plan_items(&answer)?;
        Ok(Plan {
            plan_id: request.plan_id.as_str().to_owned(),
            generated_at: request.now,
            items,
        })
    }
}

/// The plan items of a model answer: the first JSON value in it that is `{"items": [...]}` (a full plan
/// included) or a bare array of items. Enum spellings are normalized (`"get"` → `"GET"`, `"api"` → `"API"`) and a
/// priority written as a string is read as a number; anything else is left to the validator.
///
/// # Errors
///
/// [`InvalidResponse`](crate::ErrorKind::InvalidResponse) when no JSON value in the answer holds plan items.
pub fn parse_plan_items(answer: &str) -> Result<Vec<PlanItem>, AdapterError> {
    let mut first_error = None;
    let mut found_json = false;
    for value in json_candidates(answer) {
        found_json = true;
        let items = match value {
            Value::Array(items) => items,
            Value::Object(mut object) => match object.remove("items") {
                Some(Value::Array(items)) => items,
                _ => continue,
            },
            _ => continue,
        };
        let items: Vec<Value> = items.into_iter().map(normalize_item).collect();
        match serde_json::from_value::<Vec<PlanItem>>(Value::Array(items)) {
            Ok(items) => return Ok(items),
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    Err(match first_error {
        Some(error) => AdapterError::invalid_response(format!(
            "minimax: plan items do not match the contract: {error}"
        ))
        .with_source(error),
        None if found_json => {
            AdapterError::invalid_response("minimax: the answer has JSON but no plan items")
        }
        None => AdapterError::invalid_response("minimax: the answer has no JSON plan"),
    })
}

fn normalize_item(mut item: Value) -> Value {
    if let Some(object) = item.as_object_mut() {
        upper(object.get_mut("type"));
        if let Some(Value::String(priority)) = object.get("priority")
            && let Ok(number) = priority.trim().parse::<u32>()
        {
            object.insert("priority".to_owned(), Value::from(number));
        }
        if let Some(target) = object.get_mut("target").and_then(Value::as_object_mut) {
            upper(target.get_mut("method"));
        }
    }
    item
}

fn upper(value: Option<&mut Value>) {
    if let Some(Value::String(text)) = value {
        *text = text.trim().to_ascii_uppercase();
    }
}

#[cfg(test)]
mod tests {
    use fixloop_contract::{HttpMethod, PlanItemType};

    use super::*;
    use crate::error::ErrorKind;

    const ITEM: &str = r#"{"test_id":"T1","name":"health","type":"api","priority":"1","what_it_checks":"up","target":{"method":"get","url":"http://x/health","headers":{},"body_json":{}},"pass_criteria":"status == 200"}"#;

    #[test]
    fn accepts_items_object_bare_array_and_full_plan() {
        for text in [
            format!("{{\"items\": [{ITEM}]}}"),
            format!("Here you go:\n```json\n[{ITEM}]\n```"),
            format!(
                "{{\"plan_id\":\"evil\",\"generated_at\":\"2020-01-01T00:00:00Z\",\"items\":[{ITEM}]}}"
            ),
        ] {
            let items = parse_plan_items(&text).unwrap();
            assert_eq!(items.len(), 1);
            assert_eq!(items[0].kind, PlanItemType::Api);
            assert_eq!(items[0].priority, 1);
            assert_eq!(items[0].target.method, HttpMethod::Get);
        }
    }

    #[test]
    fn skips_unrelated_json_before_the_plan() {
        let text = format!("Coverage: [1, 2] and {{\"note\": true}} then {{\"items\": [{ITEM}]}}");
        assert_eq!(parse_plan_items(&text).unwrap().len(), 1);
    }

    #[test]
    fn rejects_answers_without_a_plan() {
        let error = parse_plan_items("I cannot help with that.").unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidResponse);
        let error = parse_plan_items(r#"{"items": [{"test_id": 1}]}"#).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidResponse);
        assert!(error.to_string().contains("contract"), "{error}");
    }
}
