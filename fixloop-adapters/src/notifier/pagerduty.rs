//! [`PagerDutyNotifier`]: PagerDuty's Events API v2 (`POST /v2/enqueue`). The kinds in `trigger_on` send a
//! `trigger` (severity `critical` for an escalation, `error` otherwise), a recovery sends a `resolve`, other kinds
//! are [`Skipped`](Delivery::Skipped). Every event of an incident carries the same dedup key,
//! `fixloop/<service>/<incident id>`, so a resolve closes the alert its trigger opened. The routing key (the
//! integration key) is a [`Secret`] sent in the body, as the API wants; it never appears in `Debug` or errors.
//! 202 is a delivery; 400 an invalid event (retrying cannot help), 429 rate limited (`Retry-After` when given),
//! 5xx unavailable.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;

use super::{Delivery, Notification, NotificationKind, Notifier, cut, send_once};
use crate::error::AdapterError;
use crate::secret::Secret;

/// Longest dedup key PagerDuty takes, in characters.
const DEDUP_KEY_MAX: usize = 255;

/// Longest summary PagerDuty takes, in characters.
const SUMMARY_MAX: usize = 1024;

/// Configuration of a [`PagerDutyNotifier`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PagerDutyNotifierConfig {
    /// The enqueue URL. Default `https://events.pagerduty.com/v2/enqueue`.
    pub url: String,
    /// The integration key of an Events API v2 integration.
    pub routing_key: Secret,
    /// The `payload.source` of triggers (the host FixLoop runs on). Default `"fixloop"`.
    pub source: String,
    /// The kinds that trigger (page). Default: incident opened and escalated.
    pub trigger_on: Vec<NotificationKind>,
    /// Longest one attempt may take. Default 10 s.
    pub timeout: Duration,
}

impl Default for PagerDutyNotifierConfig {
    fn default() -> Self {
        Self {
            url: "https://events.pagerduty.com/v2/enqueue".to_owned(),
            routing_key: Secret::default(),
            source: "fixloop".to_owned(),
            trigger_on: vec![
                NotificationKind::IncidentOpened,
                NotificationKind::Escalated,
            ],
            timeout: Duration::from_secs(10),
        }
    }
}

/// Sends notifications as PagerDuty events (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct PagerDutyNotifier {
    config: PagerDutyNotifierConfig,
    client: reqwest::Client,
}

impl PagerDutyNotifier {
    /// A notifier using the shared client (build it with [`crate::http_client`]).
    #[must_use]
    pub fn new(config: PagerDutyNotifierConfig, client: reqwest::Client) -> Self {
        Self { config, client }
    }

    /// The dedup key of every event about `notification`'s incident.
    #[must_use]
    pub fn dedup_key(notification: &Notification) -> String {
        let key = format!(
            "fixloop/{}/{}",
            notification.service, notification.incident_id
        );
        key.chars().take(DEDUP_KEY_MAX).collect()
    }

    /// The event for `notification`, or `None` when this kind is not sent.
    fn event(&self, notification: &Notification) -> Option<serde_json::Value> {
        let dedup_key = Self::dedup_key(notification);
        let routing_key = self.config.routing_key.expose();
        if notification.kind == NotificationKind::Recovered {
            return Some(json!({
                "routing_key": routing_key,
                "event_action": "resolve",
                "dedup_key": dedup_key,
            }));
        }
        if !self.config.trigger_on.contains(&notification.kind) {
            return None;
        }
        let severity = if notification.kind == NotificationKind::Escalated {
            "critical"
        } else {
            "error"
        };
        let links: Vec<serde_json::Value> = notification
            .links
            .iter()
            .map(|link| json!({"href": link.url, "text": link.label}))
            .collect();
        let mut details = json!({
            "incident_id": notification.incident_id,
            "event": notification.kind.as_str(),
            "notification_id": notification.id,
        });
        if let Some(action) = &notification.action_id {
            details["action_id"] = json!(action);
        }
        Some(json!({
            "routing_key": routing_key,
            "event_action": "trigger",
            "dedup_key": dedup_key,
            "payload": {
                "summary": cut(&format!("{}: {}", notification.service, notification.summary), SUMMARY_MAX),
                "source": self.config.source,
                "severity": severity,
                "component": notification.service,
                "class": notification.kind.as_str(),
                "timestamp": notification.at.to_rfc3339_opts(fixloop_contract::chrono::SecondsFormat::Millis, true),
                "custom_details": details,
            },
            "links": links,
            "client": "FixLoop",
        }))
    }
}

#[async_trait]
impl Notifier for PagerDutyNotifier {
    fn sink(&self) -> &'static str {
        "pagerduty"
    }

    async fn notify(&self, notification: &Notification) -> Result<Delivery, AdapterError> {
        let Some(event) = self.event(notification) else {
            return Ok(Delivery::Skipped);
        };
        let builder = self
            .client
            .post(&self.config.url)
            .timeout(self.config.timeout)
            .json(&event);
        send_once(builder).await?;
        Ok(Delivery::Delivered)
    }
}
