//! The Datadog webhook: the payload template FixLoop publishes ([`WEBHOOK_TEMPLATE`], to paste into the Webhooks
//! integration tile) and the parser of what Datadog renders from it ([`parse_webhook`]).
//!
//! Datadog substitutes `$VARIABLES` as plain text, so every value arrives as a string; empty variables render as
//! `""`; a variable Datadog does not know stays literally (`"$ALERT_ID"`) and is read as empty. The parser also
//! accepts Datadog's default payload (`title`, `body`, `id`, ... without the `alert_*` keys): the transition is
//! then read from the title's `[Triggered]` / `[Recovered]` prefix.

use fixloop_contract::chrono::{DateTime, Utc};
use fixloop_core::engine::{Alert, Input};
use serde::Deserialize;
use serde_json::Value;

use crate::error::AdapterError;

/// The custom payload to set in Datadog's Webhooks integration for FixLoop's receiver.
pub const WEBHOOK_TEMPLATE: &str = r#"{
  "id": "$ID",
  "event_type": "$EVENT_TYPE",
  "title": "$EVENT_TITLE",
  "body": "$EVENT_MSG",
  "date": "$DATE",
  "alert_id": "$ALERT_ID",
  "alert_cycle_key": "$ALERT_CYCLE_KEY",
  "alert_transition": "$ALERT_TRANSITION",
  "alert_type": "$ALERT_TYPE",
  "alert_title": "$ALERT_TITLE",
  "alert_priority": "$ALERT_PRIORITY",
  "alert_query": "$ALERT_QUERY",
  "alert_scope": "$ALERT_SCOPE",
  "aggreg_key": "$AGGREG_KEY",
  "tags": "$TAGS",
  "link": "$LINK",
  "org": {"id": "$ORG_ID", "name": "$ORG_NAME"}
}"#;

/// The largest webhook body accepted, in bytes.
pub const MAX_WEBHOOK_BYTES: usize = 256 * 1024;

/// The alert's notification type (`$ALERT_TRANSITION`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertTransition {
    /// `Triggered`, `Re-Triggered` or `Renotify`: the monitor is alerting.
    Triggered,
    /// `Recovered`.
    Recovered,
    /// Anything else (`Warn`, `No Data`, ...), kept verbatim; FixLoop ignores it.
    Other(String),
}

/// A parsed Datadog webhook notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    /// The alert as the core knows it (`source` is `"datadog"`; `dedupe_key` is `$AGGREG_KEY`, else
    /// `$ALERT_CYCLE_KEY`, else the monitor id, else the event id; `monitor_id` is `$ALERT_ID`).
    pub alert: Alert,
    /// What happened.
    pub transition: AlertTransition,
    /// `$EVENT_TYPE`, for example `query_alert_monitor`.
    pub event_type: Option<String>,
    /// `$DATE` (epoch milliseconds).
    pub date: Option<DateTime<Utc>>,
    /// `$LINK`, the event's URL.
    pub link: Option<String>,
    /// `$ALERT_SCOPE`, split on commas.
    pub scope: Vec<String>,
    /// `$EVENT_MSG`, the notification text (untrusted text).
    pub message: Option<String>,
}

impl WebhookEvent {
    /// The engine input this notification stands for: `AlertFired` when triggered, `AlertResolved` when
    /// recovered, `None` otherwise.
    #[must_use]
    pub fn to_input(&self) -> Option<Input> {
        match self.transition {
            AlertTransition::Triggered => Some(Input::AlertFired(self.alert.clone())),
            AlertTransition::Recovered => Some(Input::AlertResolved {
                dedupe_key: self.alert.dedupe_key.clone(),
            }),
            AlertTransition::Other(_) => None,
        }
    }
}

#[derive(Debug, Deserialize)]
struct WirePayload {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    event_type: Option<Value>,
    #[serde(default)]
    title: Option<Value>,
    #[serde(default)]
    body: Option<Value>,
    #[serde(default)]
    date: Option<Value>,
    #[serde(default)]
    alert_id: Option<Value>,
    #[serde(default)]
    alert_cycle_key: Option<Value>,
    #[serde(default)]
    alert_transition: Option<Value>,
    #[serde(default)]
    alert_type: Option<Value>,
    #[serde(default)]
    alert_title: Option<Value>,
    #[serde(default)]
    alert_scope: Option<Value>,
    #[serde(default)]
    aggreg_key: Option<Value>,
    #[serde(default)]
    link: Option<Value>,
}

/// A rendered variable as text: strings and numbers are kept, empty strings and unrendered `$VARIABLES` are
/// `None`.
fn text(value: Option<&Value>) -> Option<String> {
    let text = match value? {
        Value::String(text) => text.trim().to_owned(),
        Value::Number(number) => number.to_string(),
        Value::Bool(flag) => flag.to_string(),
        _ => return None,
    };
    let unrendered = text.starts_with('$')
        && text.len() > 1
        && text[1..]
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b == b'_');
    (!text.is_empty() && !unrendered).then_some(text)
}

fn transition_of(
    raw: Option<&str>,
    title: Option<&str>,
    alert_type: Option<&str>,
) -> AlertTransition {
    let from_word = |word: &str| match word.trim().to_ascii_lowercase().as_str() {
        "triggered" | "re-triggered" | "retriggered" | "renotify" => {
            Some(AlertTransition::Triggered)
        }
        "recovered" => Some(AlertTransition::Recovered),
        _ => None,
    };
    if let Some(raw) = raw {
        return from_word(raw).unwrap_or_else(|| AlertTransition::Other(raw.to_owned()));
    }
    if let Some(title) = title
        && let Some(rest) = title.trim_start().strip_prefix('[')
        && let Some((word, _)) = rest.split_once(']')
        && let Some(transition) = from_word(word)
    {
        return transition;
    }
    match alert_type {
        Some("error") => AlertTransition::Triggered,
        Some("success") => AlertTransition::Recovered,
        Some(other) => AlertTransition::Other(other.to_owned()),
        None => AlertTransition::Other(String::new()),
    }
}

/// Parses a webhook body rendered from [`WEBHOOK_TEMPLATE`] (or Datadog's default payload).
///
/// # Errors
///
/// [`InvalidResponse`](crate::ErrorKind::InvalidResponse) when the body is too large, not a JSON object, or has no
/// key to identify the alert (no aggregation key, cycle key, monitor id or event id).
pub fn parse_webhook(body: &[u8]) -> Result<WebhookEvent, AdapterError> {
    if body.len() > MAX_WEBHOOK_BYTES {
        return Err(AdapterError::invalid_response(
            "datadog webhook: body too large",
        ));
    }
    let payload: WirePayload = serde_json::from_slice(body).map_err(|error| {
        AdapterError::invalid_response(format!(
            "datadog webhook: not the expected json object: {error}"
        ))
        .with_source(error)
    })?;
    let monitor_id = text(payload.alert_id.as_ref());
    let event_title = text(payload.title.as_ref());
    let dedupe_key = text(payload.aggreg_key.as_ref())
        .or_else(|| text(payload.alert_cycle_key.as_ref()))
        .or_else(|| monitor_id.clone())
        .or_else(|| text(payload.id.as_ref()))
        .ok_or_else(|| {
            AdapterError::invalid_response("datadog webhook: no key identifies the alert")
        })?;
    let transition = transition_of(
        text(payload.alert_transition.as_ref()).as_deref(),
        event_title.as_deref(),
        text(payload.alert_type.as_ref()).as_deref(),
    );
    let title = text(payload.alert_title.as_ref())
        .or(event_title)
        .unwrap_or_else(|| "Datadog alert".to_owned());
    let date = text(payload.date.as_ref())
        .and_then(|date| date.parse::<i64>().ok())
        .and_then(DateTime::<Utc>::from_timestamp_millis);
    let scope = text(payload.alert_scope.as_ref())
        .map(|scope| {
            scope
                .split(',')
                .map(str::trim)
                .filter(|tag| !tag.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    Ok(WebhookEvent {
        alert: Alert {
            source: "datadog".to_owned(),
            dedupe_key,
            monitor_id,
            title,
        },
        transition,
        event_type: text(payload.event_type.as_ref()),
        date,
        link: text(payload.link.as_ref()),
        scope,
        message: text(payload.body.as_ref()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_is_json_with_string_variables() {
        let value: Value = serde_json::from_str(WEBHOOK_TEMPLATE).unwrap();
        for key in [
            "id",
            "alert_id",
            "alert_title",
            "alert_transition",
            "aggreg_key",
            "date",
            "body",
        ] {
            assert!(
                value[key].as_str().is_some_and(|v| v.starts_with('$')),
                "{key}"
            );
        }
        // The unrendered template parses as an alert without any identifying key.
        assert!(parse_webhook(WEBHOOK_TEMPLATE.as_bytes()).is_err());
    }

    #[test]
    fn unrendered_variables_are_empty() {
        assert_eq!(text(Some(&Value::from("$ALERT_ID"))), None);
        assert_eq!(text(Some(&Value::from(""))), None);
        assert_eq!(
            text(Some(&Value::from("$5 off"))),
            Some("$5 off".to_owned())
        );
        assert_eq!(text(Some(&Value::from(42))), Some("42".to_owned()));
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = parse_webhook(&body);
        }

        #[test]
        fn parsing_json_objects_never_panics(
            transition in "[A-Za-z$ -]{0,12}",
            title in "\\PC{0,40}",
            key in "[a-z0-9$]{0,8}",
        ) {
            let body = serde_json::json!({"alert_transition": transition, "title": title, "aggreg_key": key, "date": title});
            let _ = parse_webhook(body.to_string().as_bytes());
        }
    }
}
