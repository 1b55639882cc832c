//! [`Error`], the one error of the runtime's handles: what a request to a service's driver can come back with.
//!
//! It knows no HTTP: the API maps it to its own error type (in `crate::http::error`).

use fixloop_core::IncidentId;

/// Why a request to a service's driver failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The driver is stopped (the service was removed, or the process is stopping) or did not answer in time.
    #[error("the service's driver is stopped or did not answer in time")]
    Unavailable,
    /// No incident of the service (open or remembered) has this id.
    #[error("no incident has id {0}")]
    IncidentNotFound(IncidentId),
    /// The incident is closed: nothing more can be run for it.
    #[error("incident {0} is closed")]
    IncidentClosed(IncidentId),
    /// The incident has no validated plan yet.
    #[error("incident {0} has no validated plan yet")]
    PlanNotReady(IncidentId),
    /// No remediation proposal of the service has this id.
    #[error("no remediation proposal has id {0}")]
    ProposalNotFound(String),
    /// The proposal changed since the version the operator saw.
    #[error(
        "remediation proposal {proposal} is at version {current}, not {given}: read it again, then decide"
    )]
    VersionConflict {
        /// The proposal.
        proposal: String,
        /// Its current version.
        current: u64,
        /// The version the caller named.
        given: u64,
    },
    /// The proposal does not await an approval.
    #[error("remediation proposal {0} does not await an approval")]
    NotAwaitingApproval(String),
    /// The remediation kill switch is engaged.
    #[error("the remediation kill switch is engaged: release it before approving an action")]
    KillSwitchEngaged,
    /// The engine refused the request for a reason no caller can act on; the field is the cause.
    #[error("internal error: {0}")]
    Internal(String),
}
