//! The driver's answers about remediation: the engine's proposals and figures as the wire shows them (read from
//! the engine when asked, never copied), an operator's decision fed as [`Input::ApprovalGiven`] or
//! [`Input::ApprovalRejected`], and the kill switch fed as [`Input::KillSwitchSet`].

use fixloop_contract::{RemediationActionStats, RemediationProposal};
use fixloop_core::IncidentId;
use fixloop_core::engine::{Input, Rejected};

use super::Driver;
use crate::runtime::Error;
use crate::runtime::handle::Decision;
use crate::runtime::wire;

impl Driver {
    /// The kept proposals (of `incident_id` only, when given), newest first.
    pub(super) fn proposals(&self, incident_id: Option<&IncidentId>) -> Vec<RemediationProposal> {
        let service = &self.config.engine.service.name;
        self.engine
            .proposals()
            .rev()
            .filter(|proposal| incident_id.is_none_or(|id| proposal.incident_id == *id))
            .map(|proposal| wire::remediation_proposal(service, proposal))
            .collect()
    }

    /// Feeds an operator's decision and answers the proposal after it.
    pub(super) async fn decide(
        &mut self,
        decision: Decision,
    ) -> Result<RemediationProposal, Error> {
        let Decision {
            proposal,
            version,
            by,
            approve,
        } = decision;
        if self.engine.proposal(&proposal).is_none() {
            // Not journaled: another service may own it.
            return Err(Error::ProposalNotFound(proposal.as_str().to_owned()));
        }
        let input = if approve {
            Input::ApprovalGiven {
                proposal: proposal.clone(),
                version,
                by,
            }
        } else {
            Input::ApprovalRejected {
                proposal: proposal.clone(),
                version,
                by,
            }
        };
        match self.feed(input).await {
            Ok(()) if self.fenced => Err(Error::Unavailable),
            Ok(()) => self
                .engine
                .proposal(&proposal)
                .map(|found| wire::remediation_proposal(&self.config.engine.service.name, found))
                .ok_or_else(|| Error::ProposalNotFound(proposal.as_str().to_owned())),
            Err(Rejected::UnknownProposal(id)) => {
                Err(Error::ProposalNotFound(id.as_str().to_owned()))
            }
            Err(Rejected::VersionConflict { proposal, current }) => Err(Error::VersionConflict {
                proposal: proposal.as_str().to_owned(),
                current,
                given: version,
            }),
            Err(Rejected::NotAwaitingApproval(id)) => {
                Err(Error::NotAwaitingApproval(id.as_str().to_owned()))
            }
            Err(Rejected::KillSwitchEngaged) => Err(Error::KillSwitchEngaged),
            Err(other) => Err(Error::Internal(other.to_string())),
        }
    }

    /// Engages or releases the engine's kill switch (journaled; nothing changes when it already stands so).
    pub(crate) async fn set_kill_switch(&mut self, engaged: bool, by: String) {
        if self.engine.kill_switch_engaged() == engaged {
            return;
        }
        let _ = self.feed(Input::KillSwitchSet { engaged, by }).await;
    }

    /// The engine's success figures per (incident kind, action).
    pub(super) fn remediation_stats(&self) -> Vec<RemediationActionStats> {
        let service = &self.config.engine.service.name;
        self.engine
            .action_stats()
            .into_iter()
            .map(|stats| RemediationActionStats {
                service: service.clone(),
                kind: stats.kind,
                action_id: stats.action_id,
                attempts: stats.attempts,
                effective: stats.effective,
                success_rate: (stats.attempts > 0)
                    .then(|| f64::from(stats.effective) / f64::from(stats.attempts)),
            })
            .collect()
    }
}
