//! [`WebhookNotifier`]: a generic JSON webhook in the Standard Webhooks shape: `POST` of
//! `{"type":"fixloop.<kind>","timestamp":"<RFC 3339>","data":{…}}` with `webhook-id` (the notification's stable id,
//! the receiver's idempotency key) and `webhook-timestamp` (the notification's time, unix seconds). With a signing
//! secret (`whsec_<base64 key>`), `webhook-signature` carries `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.
//! Any 2xx is a delivery; a redirect is a failure (the shared client follows none).
//!
//! The timestamp is the notification's, not the attempt's: the adapter reads no clock, and an outbox that delivers
//! late resends the same signed message. A receiver that rejects old timestamps (replay protection) should allow
//! for the outbox's delays.

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use reqwest::header::CONTENT_TYPE;
use ring::hmac;
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
    /// The Standard Webhooks signing secret, `whsec_` followed by the base64 key; `None` sends no signature.
    pub signing_secret: Option<Secret>,
    /// Longest one attempt may take. Default 15 s (Standard Webhooks recommends 15 to 30 s).
    pub timeout: Duration,
}

impl Default for WebhookNotifierConfig {
    fn default() -> Self {
        Self {
            url: Secret::default(),
            headers: Vec::new(),
            signing_secret: None,
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
        let body = serde_json::to_vec(&wire::Envelope::new(notification)).map_err(|error| {
            AdapterError::invalid_response("could not encode the message").with_source(error)
        })?;
        let timestamp = notification.at.timestamp();
        let mut builder = self
            .client
            .post(self.config.url.expose())
            .timeout(self.config.timeout)
            .header(CONTENT_TYPE, "application/json")
            .header("webhook-id", notification.id.as_str())
            .header("webhook-timestamp", timestamp.to_string());
        if let Some(secret) = &self.config.signing_secret {
            let signature = sign(secret, &notification.id, timestamp, &body)?;
            builder = builder.header("webhook-signature", signature);
        }
        for (name, value) in &self.config.headers {
            builder = builder.header(name.as_str(), value.expose());
        }
        send_once(builder.body(body)).await?;
        Ok(Delivery::Delivered)
    }
}

/// The Standard Webhooks signature `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` with the key of a
/// `whsec_<base64>` secret.
///
/// # Errors
///
/// [`Refused`](crate::ErrorKind::Refused) when the secret is not `whsec_` followed by base64.
pub fn sign(
    secret: &Secret,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, AdapterError> {
    let encoded = secret.expose().trim();
    let encoded = encoded.strip_prefix("whsec_").unwrap_or(encoded);
    let key = BASE64.decode(encoded).map_err(|_| {
        AdapterError::refused("the signing secret is not whsec_ followed by base64")
    })?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, &key);
    let mut context = hmac::Context::with_key(&key);
    context.update(format!("{id}.{timestamp}.").as_bytes());
    context.update(body);
    Ok(format!("v1,{}", BASE64.encode(context.sign().as_ref())))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_standard_webhooks_reference() {
        // The reference libraries' test vector.
        let secret = Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let signature = sign(
            &secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        )
        .unwrap();
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let bad = sign(&Secret::new("whsec_not base64!"), "id", 1, b"{}").unwrap_err();
        assert_eq!(bad.kind(), crate::ErrorKind::Refused);
    }
}
