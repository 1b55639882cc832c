//! The notifications outbox: what a store keeps so that every [`Notification`] reaches every sink once, in order,
//! however long the sink is down and across restarts.
//!
//! The driver only enqueues ([`Store::outbox_enqueue`](super::Store::outbox_enqueue)); a delivery worker per sink
//! takes the oldest unsettled message ([`Store::outbox_next`](super::Store::outbox_next)), waits until it is due,
//! makes one attempt, and settles it ([`Store::outbox_delivered`](super::Store::outbox_delivered)) or records the
//! failure with the next attempt's time ([`Store::outbox_failed`](super::Store::outbox_failed)). A later message
//! waits behind an earlier one of the same sink (head of line), so a sink sees them in the order they were
//! enqueued. A notification's id is its idempotency key: enqueuing the same id for the same sink again adds nothing.
//!
//! Settled messages are kept for a while (the last [`KEEP_SETTLED`] per sink) so that a late duplicate is still
//! recognised, then deleted.

use fixloop_contract::Link;
use fixloop_contract::chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::notifier::{Notification, NotificationKind};

/// How many settled messages a store keeps per sink (to recognise a notification enqueued again).
pub const KEEP_SETTLED: u64 = 1000;

/// One message waiting in a sink's outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// Its position in the store's outbox, increasing in the order messages were enqueued.
    pub id: u64,
    /// The sink it is for.
    pub sink: String,
    /// What to send.
    pub notification: Notification,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due (the notification's time before the first).
    pub next_attempt_at: DateTime<Utc>,
    /// Why the latest attempt failed.
    pub last_error: Option<String>,
}

/// A failed attempt, as [`Store::outbox_failed`](super::Store::outbox_failed) records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxFailure {
    /// Attempts made so far, this one included.
    pub attempts: u32,
    /// Why it failed (no secret: the adapters keep URLs and keys out of their errors).
    pub error: String,
    /// When to try again; `None` gives the message up (settled without delivery, so the next one can go).
    pub retry_at: Option<DateTime<Utc>>,
    /// When the attempt failed.
    pub at: DateTime<Utc>,
}

/// The stored image of a [`Notification`] (JSON text in the `outbox` table).
#[derive(Serialize, Deserialize)]
struct NotificationImage {
    id: String,
    kind: String,
    service: String,
    incident_id: String,
    summary: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    action_id: Option<String>,
    #[serde(default)]
    links: Vec<Link>,
    at: DateTime<Utc>,
}

/// `notification` as the outbox stores it.
pub(super) fn encode(location: &str, notification: &Notification) -> Result<String, StoreError> {
    serde_json::to_string(&NotificationImage {
        id: notification.id.clone(),
        kind: notification.kind.as_str().to_owned(),
        service: notification.service.clone(),
        incident_id: notification.incident_id.clone(),
        summary: notification.summary.clone(),
        action_id: notification.action_id.clone(),
        links: notification.links.clone(),
        at: notification.at,
    })
    .map_err(|error| StoreError::Failed {
        location: location.to_owned(),
        why: format!("cannot encode the notification: {error}"),
    })
}

/// A stored notification back.
pub(super) fn decode(location: &str, text: &str) -> Result<Notification, StoreError> {
    let image: NotificationImage = super::decode(location, text, "notification")?;
    let kind = NotificationKind::parse(&image.kind).ok_or_else(|| StoreError::Corrupt {
        location: location.to_owned(),
        why: format!(
            "a stored notification of kind {:?} cannot be read by this build",
            image.kind
        ),
    })?;
    Ok(Notification {
        id: image.id,
        kind,
        service: image.service,
        incident_id: image.incident_id,
        summary: image.summary,
        action_id: image.action_id,
        links: image.links,
        at: image.at,
    })
}

/// A stored RFC 3339 time back.
pub(super) fn parse_time(location: &str, text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|error| StoreError::Corrupt {
            location: location.to_owned(),
            why: format!("an outbox message has a bad time {text:?}: {error}"),
        })
}

/// A time as the outbox stores it.
pub(super) fn format_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(fixloop_contract::chrono::SecondsFormat::Micros, true)
}
