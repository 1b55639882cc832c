//! [`Rejected`]: why the engine refused an input (an operator's, always); the state is unchanged.

use crate::ids::{IncidentId, ProposalId};

/// An input that does not apply in the current phase; the state is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejected {
    /// The named incident does not exist.
    #[error("no incident has id {0}")]
    UnknownIncident(IncidentId),
    /// The named incident is closed.
    #[error("incident {0} is closed")]
    IncidentClosed(IncidentId),
    /// The incident has no validated plan yet.
    #[error("incident {0} has no validated plan yet")]
    PlanNotReady(IncidentId),
    /// No remediation proposal has this id.
    #[error("no remediation proposal has id {0}")]
    UnknownProposal(ProposalId),
    /// The proposal changed since the version the operator saw (compare-and-set).
    #[error("remediation proposal {proposal} is at version {current}")]
    VersionConflict {
        /// The proposal.
        proposal: ProposalId,
        /// Its current version.
        current: u64,
    },
    /// The proposal does not await an approval (it ran, lapsed, was rejected or withdrawn).
    #[error("remediation proposal {0} does not await an approval")]
    NotAwaitingApproval(ProposalId),
    /// The kill switch is engaged: nothing may run.
    #[error("the remediation kill switch is engaged")]
    KillSwitchEngaged,
}
