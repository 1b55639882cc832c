//! [`WebhookNotifier`]: a generic JSON webhook in the Standard Webhooks shape: `POST` of
//! `{"type":"fixloop.<kind>","timestamp":"<RFC 3339>","data":{…}}` with `webhook-id` (the notification's stable id,
//! the receiver's idempotency key) and `webhook-timestamp` (the notification's time, unix seconds). Any 2xx is a
//! delivery; a redirect is a failure (the shared client follows none).

use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use super::{Delivery, Notification, Notifier, send_once};
use crate::error::AdapterError;
use crate::secret::Secret;

/// Configuration of a [`WebhookNotifier`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookNotifierConfig {
    /// The receiver's URL; a secret, since such URLs often carry a token.
    pub url: Secret,
    /// Extra headers, every value a secret (an `Authorization` header, for example).
    pub headers: Vec<(String, Secret)>,
    /// Longest one attempt may take. Default 15 s (Standard Webhooks recommends 15 to 30 s).
    pub timeout: Duration,
}

impl Default for WebhookNotifierConfig {
    fn default() -> Self {
        Self {
            url: Secret::default(),
            headers: Vec::new(),
            timeout: Duration::from_secs(15),
        }
    }
}

/// Posts notifications as generic JSON (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct WebhookNotifier {
    config: WebhookNotifierConfig,
    client: reqwest::Client,
}

impl WebhookNotifier {
    /// A notifier using the shared client (build it with [`crate::http_client`]).
    #[must_use]
    pub fn new(config: WebhookNotifierConfig, client: reqwest::Client) -> Self {
        Self { config, client }
    }
}

#[async_trait]
impl Notifier for WebhookNotifier {
    fn sink(&self) -> &'static str {
        "webhook"
    }

    async fn notify(&self, notification: &Notification) -> Result<Delivery, AdapterError> {
        let mut builder = self
            .client
            .post(self.config.url.expose())
            .timeout(self.config.timeout)
            .header("webhook-id", notification.id.as_str())
            .header("webhook-timestamp", notification.at.timestamp().to_string())
            .json(&wire::Envelope::new(notification));
        for (name, value) in &self.config.headers {
            builder = builder.header(name.as_str(), value.expose());
        }
        send_once(builder).await?;
        Ok(Delivery::Delivered)
    }
}

/// The JSON a receiver gets.
mod wire {
    use super::{Notification, Serialize};
    use fixloop_contract::Link;

    /// `{"type", "timestamp", "data"}`.
    #[derive(Serialize)]
    pub(super) struct Envelope<'a> {
        #[serde(rename = "type")]
        kind: String,
        timestamp: String,
        data: Data<'a>,
    }

    #[derive(Serialize)]
    struct Data<'a> {
        id: &'a str,
        service: &'a str,
        incident_id: &'a str,
        summary: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        action_id: Option<&'a str>,
        links: &'a [Link],
    }

    impl<'a> Envelope<'a> {
        pub(super) fn new(notification: &'a Notification) -> Self {
            Self {
                kind: format!("fixloop.{}", notification.kind.as_str()),
                timestamp: notification
                    .at
                    .to_rfc3339_opts(fixloop_contract::chrono::SecondsFormat::Secs, true),
                data: Data {
                    id: &notification.id,
                    service: &notification.service,
                    incident_id: &notification.incident_id,
                    summary: &notification.summary,
                    action_id: notification.action_id.as_deref(),
                    links: &notification.links,
                },
            }
        }
    }
}
