//! [`SlackNotifier`]: a Slack-compatible incoming webhook (`POST` of `{"text", "blocks"}`): the text is the
//! notification fallback, one `mrkdwn` section carries the summary and the links, one context line the service and
//! incident. Success is HTTP 200 with the body `ok`; any other 200 body is an invalid response (as Alertmanager
//! treats it), 429 is rate limited with its `Retry-After`, other statuses are classified as usual. The webhook URL
//! is the credential: a [`Secret`].

use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;

use super::{Delivery, Notification, Notifier, cut, send_once};
use crate::error::AdapterError;
use crate::secret::Secret;

/// Longest text of one Block Kit text object, in characters.
const BLOCK_TEXT_MAX: usize = 3000;

/// Configuration of a [`SlackNotifier`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackNotifierConfig {
    /// The incoming webhook's URL (`https://hooks.slack.com/services/T…/B…/…`), the credential itself.
    pub webhook_url: Secret,
    /// Longest one attempt may take. Default 10 s.
    pub timeout: Duration,
}

impl Default for SlackNotifierConfig {
    fn default() -> Self {
        Self {
            webhook_url: Secret::default(),
            timeout: Duration::from_secs(10),
        }
    }
}

/// Posts notifications to a Slack-compatible incoming webhook (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct SlackNotifier {
    config: SlackNotifierConfig,
    client: reqwest::Client,
}

impl SlackNotifier {
    /// A notifier using the shared client (build it with [`crate::http_client`]).
    #[must_use]
    pub fn new(config: SlackNotifierConfig, client: reqwest::Client) -> Self {
        Self { config, client }
    }
}

#[async_trait]
impl Notifier for SlackNotifier {
    fn sink(&self) -> &'static str {
        "slack"
    }

    async fn notify(&self, notification: &Notification) -> Result<Delivery, AdapterError> {
        let builder = self
            .client
            .post(self.config.webhook_url.expose())
            .timeout(self.config.timeout)
            .json(&message(notification));
        let response = send_once(builder).await?;
        let body = response.text().await.map_err(AdapterError::from_reqwest)?;
        if body.trim() != "ok" {
            return Err(AdapterError::invalid_response(format!(
                "the webhook answered {:?} instead of \"ok\"",
                cut(body.trim(), 80)
            )));
        }
        Ok(Delivery::Delivered)
    }
}

/// The message: fallback text, a section with the summary and the links, a context line.
fn message(notification: &Notification) -> serde_json::Value {
    let title = format!(
        "FixLoop: {} on {}",
        headline(notification),
        notification.service
    );
    let mut section = format!("*{}*\n{}", escape(&title), escape(&notification.summary));
    for link in &notification.links {
        section.push_str(&format!(
            "\n<{}|{}>",
            escape(&link.url),
            escape(&link.label).replace('|', "/")
        ));
    }
    let mut context = format!("incident {}", notification.incident_id);
    if let Some(action) = &notification.action_id {
        context.push_str(&format!(" · action {action}"));
    }
    json!({
        "text": cut(&format!("{title}: {}", notification.summary), BLOCK_TEXT_MAX),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": cut(&section, BLOCK_TEXT_MAX)}},
            {"type": "context", "elements": [{"type": "plain_text", "text": cut(&context, BLOCK_TEXT_MAX)}]}
        ]
    })
}

/// A few words for the kind.
fn headline(notification: &Notification) -> &'static str {
    use super::NotificationKind as Kind;
    match notification.kind {
        Kind::IncidentOpened => "incident opened",
        Kind::ActionProposed => "action proposed",
        Kind::ActionTaken => "action taken",
        Kind::Escalated => "incident escalated",
        Kind::Recovered => "service recovered",
    }
}

/// Escapes the three characters Slack's mrkdwn gives meaning to.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
