//! The [`Notifier`] port: tells people what FixLoop saw and did (an incident opened, an action proposed or taken,
//! an escalation, a recovery), through one sink per implementation.
//!
//! A notifier makes one attempt per call and classifies its failure ([`RateLimited`](crate::ErrorKind::RateLimited)
//! with the sink's `Retry-After`, [`Timeout`](crate::ErrorKind::Timeout), [`Unavailable`](crate::ErrorKind::Unavailable)
//! for 5xx and connection errors, [`InvalidResponse`](crate::ErrorKind::InvalidResponse) for an answer that will not
//! get better by retrying); retry and ordering belong to the caller (an outbox in the store). A sink's URL and keys
//! are [`Secret`](crate::Secret)s: they never appear in `Debug`, messages or errors.
//!
//! Real sinks: [`WebhookNotifier`] (generic JSON, Standard Webhooks shape), [`SlackNotifier`] (Slack-compatible
//! incoming webhook, text and blocks) and [`PagerDutyNotifier`] (Events API v2, trigger and resolve with a dedup
//! key derived from the incident). The fake is [`FakeNotifier`](crate::fake::FakeNotifier).

pub mod pagerduty;
pub mod slack;
pub mod webhook;

use std::fmt;

use async_trait::async_trait;
use fixloop_contract::Link;
use fixloop_contract::chrono::{DateTime, Utc};

use crate::error::AdapterError;

pub use pagerduty::{PagerDutyNotifier, PagerDutyNotifierConfig};
pub use slack::{SlackNotifier, SlackNotifierConfig};
pub use webhook::{WebhookNotifier, WebhookNotifierConfig, sign as sign_webhook};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NotificationKind {
    /// An incident was opened.
    IncidentOpened,
    /// A remediation action was proposed (and may wait for approval).
    ActionProposed,
    /// A remediation action was carried out.
    ActionTaken,
    /// The incident was escalated to a human (strategy exhausted or time budget spent).
    Escalated,
    /// The service recovered; the incident is closed.
    Recovered,
}

impl NotificationKind {
    /// Every kind, in the order an incident meets them.
    pub const ALL: [Self; 5] = [
        Self::IncidentOpened,
        Self::ActionProposed,
        Self::ActionTaken,
        Self::Escalated,
        Self::Recovered,
    ];

    /// The dotted event name: `incident.opened`, `action.proposed`, `action.taken`, `incident.escalated`,
    /// `incident.recovered`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::IncidentOpened => "incident.opened",
            Self::ActionProposed => "action.proposed",
            Self::ActionTaken => "action.taken",
            Self::Escalated => "incident.escalated",
            Self::Recovered => "incident.recovered",
        }
    }

    /// The kind named by its dotted event name ([`NotificationKind::as_str`]).
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

impl fmt::Display for NotificationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One message to people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Stable id of this message, the same on every attempt (sinks that dedupe use it as idempotency key).
    pub id: String,
    /// What happened.
    pub kind: NotificationKind,
    /// The watched service's name.
    pub service: String,
    /// The incident it is about.
    pub incident_id: String,
    /// One or two sentences written by the server (never by a model).
    pub summary: String,
    /// The remediation action it is about, for [`ActionProposed`](NotificationKind::ActionProposed) and
    /// [`ActionTaken`](NotificationKind::ActionTaken).
    pub action_id: Option<String>,
    /// Links to the incident, its evidence and its dashboard.
    pub links: Vec<Link>,
    /// When it happened.
    pub at: DateTime<Utc>,
}

/// What a notifier did with a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The sink accepted it.
    Delivered,
    /// The sink is not told about this kind (a PagerDuty integration configured to page only on escalation); nothing
    /// was sent, and nothing needs to be retried.
    Skipped,
}

/// Sends notifications to one sink, one attempt per call.
#[async_trait]
pub trait Notifier: Send + Sync + fmt::Debug {
    /// A short name of the sink for logs and the outbox (`"webhook"`, `"slack"`, `"pagerduty"`).
    fn sink(&self) -> &'static str;

    /// Sends `notification` once, within the notifier's timeout.
    ///
    /// # Errors
    ///
    /// An [`AdapterError`] whose [`kind`](AdapterError::kind) says whether a later attempt may succeed
    /// ([`Timeout`](crate::ErrorKind::Timeout), [`RateLimited`](crate::ErrorKind::RateLimited),
    /// [`Unavailable`](crate::ErrorKind::Unavailable)) or not ([`InvalidResponse`](crate::ErrorKind::InvalidResponse),
    /// [`Unauthorized`](crate::ErrorKind::Unauthorized)).
    async fn notify(&self, notification: &Notification) -> Result<Delivery, AdapterError>;
}

/// Sends a built request once: transport errors and non-2xx statuses classified (the body snippet and
/// `Retry-After` read), the URL kept out of every message.
pub(crate) async fn send_once(
    builder: reqwest::RequestBuilder,
) -> Result<reqwest::Response, AdapterError> {
    let response = builder.send().await.map_err(AdapterError::from_reqwest)?;
    AdapterError::check_status(response).await
}

/// `text` cut to at most `max` characters, with `…` marking a cut.
pub(crate) fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}
