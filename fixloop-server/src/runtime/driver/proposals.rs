//! The remediation events of the WebSocket (`remediation.proposed`, `remediation.updated`, `incident.escalated`),
//! which the engine does not publish (`incident.escalated` comes from the engine's escalation notification or from
//! the needs-human rule turning on, see [`super::notify`]): the driver reads [`Engine::proposals`](fixloop_core::engine::Engine::proposals)
//! after every engine call and publishes a proposal it has not seen as `remediation.proposed`, and one whose
//! `version` changed as `remediation.updated`. It keeps only the last version it published per proposal id (to
//! detect the change), for the proposals the engine still keeps; everything else is read from the engine.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use fixloop_contract::{IncidentEscalated, WsEnvelope, WsMessage};
use fixloop_core::ProposalId;

use super::Driver;
use crate::runtime::wire;

/// The last version the driver published per proposal id.
pub(super) type SeenVersions = HashMap<ProposalId, u64>;

impl Driver {
    /// Marks every proposal the engine holds as published (after a restore: the previous process told its clients).
    pub(super) fn remember_proposals(&mut self) {
        self.proposal_versions = self
            .engine
            .proposals()
            .map(|proposal| (proposal.id.clone(), proposal.version))
            .collect();
    }

    /// Publishes what changed in the engine's proposals since the last engine call.
    pub(super) fn publish_proposal_changes(&mut self) {
        let service = &self.config.engine.service.name;
        let mut changed = Vec::new();
        for proposal in self.engine.proposals() {
            let seen = self.proposal_versions.get(&proposal.id).copied();
            if seen == Some(proposal.version) {
                continue;
            }
            let wire = wire::remediation_proposal(service, proposal);
            changed.push(if seen.is_none() {
                WsMessage::RemediationProposed(wire)
            } else {
                WsMessage::RemediationUpdated(wire)
            });
        }
        if changed.is_empty() {
            return;
        }
        // The proposals the engine dropped are forgotten, so the map never outgrows the engine's list.
        self.remember_proposals();
        let now = self.last_now;
        for message in changed {
            self.publish(&message.at(now));
        }
    }

    /// Publishes `incident.escalated` for `incident_id` (the engine's escalation, or the needs-human rule turning on),
    /// once per incident: the second reason for the same incident is not published.
    pub(super) fn publish_escalation(&mut self, incident_id: &str, reason: &str) {
        if self.escalated.as_deref() == Some(incident_id) {
            return;
        }
        self.escalated = Some(incident_id.to_owned());
        let now = self.last_now;
        let message = WsMessage::IncidentEscalated(IncidentEscalated {
            incident_id: incident_id.to_owned(),
            service: self.config.engine.service.name.clone(),
            reason: reason.to_owned(),
            escalated_at: now,
        });
        self.publish(&message.at(now));
    }

    /// The open incident's proposals as `remediation.updated` messages, oldest first, for the join snapshot of a
    /// client that asked for the `remediation` group.
    pub(super) fn open_proposals(&self, now: DateTime<Utc>) -> Vec<WsEnvelope> {
        let Some(card) = self.engine.current_incident() else {
            return Vec::new();
        };
        let service = &self.config.engine.service.name;
        self.engine
            .proposals()
            .filter(|proposal| proposal.incident_id.as_str() == card.incident_id)
            .map(|proposal| {
                WsMessage::RemediationUpdated(wire::remediation_proposal(service, proposal)).at(now)
            })
            .collect()
    }
}
