//! What the driver tells people: the engine's own publications turned into [`Notification`]s (an incident opened,
//! the service recovered) and the engine's "needs a human" turning on (an escalation, also published on the
//! WebSocket as `incident.escalated`), queued in the outbox after the engine call that caused them. The driver only enqueues; delivery is the outbox's workers'
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

    /// Notes an escalation when the open incident needs a human after the engine call and did not before it: an
    /// `incident.escalated` on the WebSocket (once per incident, see
    /// [`Driver::publish_escalation`]) and an "escalated" notification.
    pub(super) fn notice_escalation(&mut self, needed_before: bool) {
        if needed_before || !self.engine.needs_human() {
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
        self.publish_escalation(&incident_id, &why);
        if self.outbox.is_none() {
            return;
        }
        self.queue(
            NotificationKind::Escalated,
            &incident_id,
            format!("{service}: incident {incident_id} needs a human: {why}"),
            Vec::new(),
        );
    }

    /// Notes a remediation notification of the engine ([`Effect::Notify`](fixloop_core::engine::Effect::Notify)):
    /// a proposal (approval requested, or left to a human) is "action proposed", a judged action "action taken", an
    /// escalation "escalated" (one message per incident, whether the engine or the needs-human rule noticed it).
    pub(super) fn notice_remediation(&mut self, notification: &fixloop_core::engine::Notification) {
        if self.outbox.is_none() {
            return;
        }
        let service = self.config.engine.service.name.clone();
        let proposal = notification
            .proposal
            .as_ref()
            .map(fixloop_core::ProposalId::as_str);
        self.queue_with(
            told_kind(notification.kind),
            notification.incident_id.as_str(),
            proposal,
            format!("{service}: {}", notification.summary),
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
        self.queue_with(kind, incident_id, None, summary, links);
    }

    /// Queues one notification; its id is `<service>:<incident>:<kind>`, with `:<proposal>` when it is about one
    /// proposal (so each proposal is told once, and an incident's escalation once).
    fn queue_with(
        &mut self,
        kind: NotificationKind,
        incident_id: &str,
        proposal: Option<&str>,
        summary: String,
        links: Vec<fixloop_contract::Link>,
    ) {
        let service = &self.config.engine.service.name;
        self.notifications.push(Notification {
            id: notification_id(service, incident_id, kind, proposal),
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

/// What people are told for a remediation notification of the engine.
fn told_kind(kind: fixloop_core::engine::NotificationKind) -> NotificationKind {
    use fixloop_core::engine::NotificationKind as Engine;
    match kind {
        Engine::ApprovalRequested | Engine::ManualActionProposed => {
            NotificationKind::ActionProposed
        }
        Engine::ActionJudged => NotificationKind::ActionTaken,
        Engine::Escalated => NotificationKind::Escalated,
    }
}

/// A notification's id: `<service>:<incident>:<kind>`, with `:<proposal>` for a message about one proposal, so a
/// fact noticed twice is one message; an escalation is once per incident, whoever noticed it.
fn notification_id(
    service: &str,
    incident_id: &str,
    kind: NotificationKind,
    proposal: Option<&str>,
) -> String {
    match proposal {
        Some(proposal) if kind != NotificationKind::Escalated => {
            format!("{service}:{incident_id}:{}:{proposal}", kind.as_str())
        }
        _ => format!("{service}:{incident_id}:{}", kind.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use fixloop_core::engine::NotificationKind as Engine;

    use super::*;

    #[test]
    fn remediation_notifications_are_told_as_proposed_taken_or_escalated() {
        assert_eq!(
            told_kind(Engine::ApprovalRequested),
            NotificationKind::ActionProposed
        );
        assert_eq!(
            told_kind(Engine::ManualActionProposed),
            NotificationKind::ActionProposed
        );
        assert_eq!(
            told_kind(Engine::ActionJudged),
            NotificationKind::ActionTaken
        );
        assert_eq!(told_kind(Engine::Escalated), NotificationKind::Escalated);
    }

    #[test]
    fn each_proposal_is_told_once_and_an_escalation_once_per_incident() {
        let proposed = |proposal| {
            notification_id(
                "shop",
                "inc-1",
                NotificationKind::ActionProposed,
                Some(proposal),
            )
        };
        assert_ne!(
            proposed("p-1"),
            proposed("p-2"),
            "two proposals, two messages"
        );
        assert_eq!(
            proposed("p-1"),
            proposed("p-1"),
            "one proposal noticed twice, one message"
        );
        assert_eq!(
            notification_id("shop", "inc-1", NotificationKind::Escalated, Some("p-1")),
            notification_id("shop", "inc-1", NotificationKind::Escalated, None),
            "the engine's escalation and the needs-human rule's are one message"
        );
        assert_eq!(
            notification_id("shop", "inc-1", NotificationKind::IncidentOpened, None),
            "shop:inc-1:incident.opened"
        );
    }
}
