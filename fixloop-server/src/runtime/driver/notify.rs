//! What the driver tells people: the engine's own publications turned into [`Notification`]s (an incident opened,
//! the service recovered) and the engine's "needs a human" turning on (an escalation), queued in the outbox after
//! the engine call that caused them. The driver only enqueues; delivery is the outbox's workers'
//! ([`crate::runtime::outbox`]).
//!
//! A notification's id is `<service>:<incident>:<kind>`: the same fact noticed twice (a status published again,
//! a restart) is one message, which the outbox keeps once.

use fixloop_adapters::notifier::{Notification, NotificationKind};
use fixloop_contract::{IncidentState, WsEnvelope, WsMessage};

use super::Driver;

impl Driver {
    /// Notes what `envelope` means to people (called for every publication, in order).
    pub(super) fn notice(&mut self, envelope: &WsEnvelope) {
        if self.outbox.is_none() {
            return;
        }
        let service = self.config.engine.service.name.clone();
        match &envelope.message {
            WsMessage::IncidentCreated(card) => self.queue(
                NotificationKind::IncidentOpened,
                &card.incident_id,
                format!(
                    "{service}: incident {} opened: {}",
                    card.incident_id, card.title
                ),
                card.datadog_summary.evidence_links.clone(),
            ),
            WsMessage::SystemStatus(status) if status.status == IncidentState::Recovered => {
                if let Some(incident_id) = &status.active_incident_id {
                    self.queue(
                        NotificationKind::Recovered,
                        incident_id,
                        format!(
                            "{service}: incident {incident_id} RECOVERED: the validation tests passed and the signals are healthy"
                        ),
                        Vec::new(),
                    );
                }
            }
            _ => {}
        }
    }

    /// Notes an escalation when the open incident needs a human after the engine call and did not before it.
    pub(super) fn notice_escalation(&mut self, needed_before: bool) {
        if self.outbox.is_none() || needed_before || !self.engine.needs_human() {
            return;
        }
        let Some(incident_id) = self
            .engine
            .current_incident()
            .map(|card| card.incident_id.clone())
        else {
            return;
        };
        let service = self.config.engine.service.name.clone();
        let why = self
            .engine
            .recovery_blocker()
            .unwrap_or_else(|| "FixLoop cannot decide alone".to_owned());
        self.queue(
            NotificationKind::Escalated,
            &incident_id,
            format!("{service}: incident {incident_id} needs a human: {why}"),
            Vec::new(),
        );
    }

    /// Enqueues what the last engine call noted, in order.
    pub(super) async fn send_notifications(&mut self) {
        if self.notifications.is_empty() {
            return;
        }
        let Some(outbox) = self.outbox.clone() else {
            self.notifications.clear();
            return;
        };
        for notification in std::mem::take(&mut self.notifications) {
            outbox.enqueue(&notification).await;
        }
    }

    fn queue(
        &mut self,
        kind: NotificationKind,
        incident_id: &str,
        summary: String,
        links: Vec<fixloop_contract::Link>,
    ) {
        let service = &self.config.engine.service.name;
        self.notifications.push(Notification {
            id: format!("{service}:{incident_id}:{}", kind.as_str()),
            kind,
            service: service.clone(),
            incident_id: incident_id.to_owned(),
            summary,
            action_id: None,
            links,
            at: self.last_now,
        });
    }
}
