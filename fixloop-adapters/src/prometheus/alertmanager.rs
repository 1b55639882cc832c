//! The Alertmanager webhook receiver payload (version "4") → one [`AlertmanagerAlert`] per alert.

use std::collections::BTreeMap;

use fixloop_contract::chrono::{DateTime, Utc};
use fixloop_core::engine::{Alert, Input};

use super::wire::WebhookMessage;
use crate::error::AdapterError;

/// The largest webhook body accepted, in bytes.
pub const MAX_ALERTMANAGER_BYTES: usize = 1024 * 1024;

/// One alert of an Alertmanager notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertmanagerAlert {
    /// The alert as the core knows it: `source` `"alertmanager"`, `dedupe_key` the alert's `fingerprint` (else
    /// the `groupKey` plus the alert name), `monitor_id` the `alertname` label, `title` the `summary` annotation
    /// (alert's, else common), else the alert name.
    pub alert: Alert,
    /// `true` when `firing`, `false` when `resolved`.
    pub firing: bool,
    /// `startsAt`.
    pub starts_at: Option<DateTime<Utc>>,
    /// `generatorURL`, the Prometheus graph of the rule's expression.
    pub generator_url: Option<String>,
    /// The notification's `commonLabels` overlaid with the alert's own `labels` (used to route the alert to the
    /// watched service it is about).
    pub labels: BTreeMap<String, String>,
}

impl AlertmanagerAlert {
    /// The engine input this alert stands for: `AlertFired` when firing, `AlertResolved` when resolved.
    #[must_use]
    pub fn to_input(&self) -> Input {
        if self.firing {
            Input::AlertFired(self.alert.clone())
        } else {
            Input::AlertResolved {
                dedupe_key: self.alert.dedupe_key.clone(),
            }
        }
    }
}

/// Parses an Alertmanager webhook body.
///
/// # Errors
///
/// [`InvalidResponse`](crate::ErrorKind::InvalidResponse) when the body is too large, not JSON of the webhook
/// shape, of a version other than `"4"`, or an alert's status is neither `firing` nor `resolved`.
pub fn parse_alertmanager(body: &[u8]) -> Result<Vec<AlertmanagerAlert>, AdapterError> {
    if body.len() > MAX_ALERTMANAGER_BYTES {
        return Err(AdapterError::invalid_response(
            "alertmanager webhook: body too large",
        ));
    }
    let message: WebhookMessage = serde_json::from_slice(body).map_err(|error| {
        AdapterError::invalid_response(format!("alertmanager webhook: malformed json: {error}"))
            .with_source(error)
    })?;
    if message.version != "4" {
        return Err(AdapterError::invalid_response(format!(
            "alertmanager webhook: unsupported version {:?} (expected \"4\")",
            message.version
        )));
    }
    let _ = (&message.status, &message.external_url);
    message
        .alerts
        .into_iter()
        .map(|alert| {
            let firing = match alert.status.as_str() {
                "firing" => true,
                "resolved" => false,
                other => {
                    return Err(AdapterError::invalid_response(format!(
                        "alertmanager webhook: unknown alert status {other:?}"
                    )));
                }
            };
            let name = alert
                .labels
                .get("alertname")
                .cloned()
                .filter(|n| !n.is_empty());
            let dedupe_key = if alert.fingerprint.trim().is_empty() {
                format!("{}:{}", message.group_key, name.as_deref().unwrap_or(""))
            } else {
                alert.fingerprint.trim().to_owned()
            };
            let title = alert
                .annotations
                .get("summary")
                .or_else(|| message.common_annotations.get("summary"))
                .filter(|summary| !summary.trim().is_empty())
                .cloned()
                .or_else(|| name.clone())
                .unwrap_or_else(|| "Alertmanager alert".to_owned());
            Ok(AlertmanagerAlert {
                alert: Alert {
                    source: "alertmanager".to_owned(),
                    dedupe_key,
                    monitor_id: name,
                    title,
                },
                firing,
                starts_at: alert
                    .starts_at
                    .as_deref()
                    .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
                    .map(|at| at.with_timezone(&Utc)),
                generator_url: Some(alert.generator_url).filter(|url| !url.is_empty()),
                labels: message
                    .common_labels
                    .iter()
                    .chain(&alert.labels)
                    .map(|(name, value)| (name.clone(), value.clone()))
                    .collect(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = parse_alertmanager(&body);
        }

        #[test]
        fn parsing_v4_messages_never_panics(status in "\\PC{0,10}", fingerprint in "\\PC{0,20}", at in "\\PC{0,30}") {
            let body = serde_json::json!({"version": "4", "groupKey": "{}", "alerts": [
                {"status": status, "fingerprint": fingerprint, "startsAt": at, "labels": {"alertname": at}}]});
            let _ = parse_alertmanager(body.to_string().as_bytes());
        }
    }
}
