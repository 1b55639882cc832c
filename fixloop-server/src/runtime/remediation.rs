//! Remediation across the watched services: the proposals of every service merged newest first, a decision routed
//! to the service whose engine holds the proposal, the figures of every service, and the global kill switch.
//!
//! The kill switch is one server-wide setting kept in the store ([`KILL_SWITCH_SETTING`], a
//! [`KillSwitchState`] as JSON): it is saved before any engine is told, every running engine is then fed
//! [`fixloop_core::engine::Input::KillSwitchSet`], and a driver started later (a restart, a service added by a
//! reload, a replica taking a service over) gets the saved state before it runs ([`kill_switch_at_start`]).

use chrono::{DateTime, Utc};
use fixloop_adapters::{Store, StoreError};
use fixloop_contract::{KillSwitchState, RemediationActionStats, RemediationProposal};
use fixloop_core::{IncidentId, ProposalId};

use super::Error;
use super::services::ServiceSet;

/// The store key of the kill switch.
pub const KILL_SWITCH_SETTING: &str = "remediation.kill_switch";

/// The saved kill switch; released (and never switched) when nothing was saved.
///
/// # Errors
///
/// [`StoreError`] when the store cannot be read or holds a value this build cannot read.
pub async fn kill_switch(store: &dyn Store) -> Result<KillSwitchState, StoreError> {
    let Some(text) = store.setting(KILL_SWITCH_SETTING).await? else {
        return Ok(KillSwitchState {
            engaged: false,
            changed_by: None,
            changed_at: None,
        });
    };
    serde_json::from_str(&text).map_err(|error| StoreError::Corrupt {
        location: format!("the setting {KILL_SWITCH_SETTING}"),
        why: error.to_string(),
    })
}

/// What a driver starting now must be told: `Some((engaged, by))` when the kill switch was ever switched.
///
/// # Errors
///
/// As [`kill_switch`].
pub async fn kill_switch_at_start(store: &dyn Store) -> Result<Option<(bool, String)>, StoreError> {
    let state = kill_switch(store).await?;
    Ok(state.changed_by.map(|by| (state.engaged, by)))
}

/// Switches the kill switch: saved first (so it holds across restarts and for services started later), then fed
/// to every running service's engine.
///
/// # Errors
///
/// [`Error::Internal`] when the store refuses the write (no engine was told), [`Error::Unavailable`] when a
/// driver does not answer (the setting is saved; that service's next start applies it).
pub async fn set_kill_switch(
    store: &dyn Store,
    services: &ServiceSet,
    engaged: bool,
    by: &str,
    now: DateTime<Utc>,
) -> Result<KillSwitchState, Error> {
    let state = KillSwitchState {
        engaged,
        changed_by: Some(by.to_owned()),
        changed_at: Some(now),
    };
    let text = serde_json::to_string(&state).map_err(|error| Error::Internal(error.to_string()))?;
    store
        .save_setting(KILL_SWITCH_SETTING, &text)
        .await
        .map_err(|error| Error::Internal(format!("saving the kill switch: {error}")))?;
    tracing::warn!(engaged, %by, "remediation kill switch set for every service");
    for service in services.iter() {
        service
            .driver
            .set_kill_switch(engaged, by.to_owned())
            .await?;
    }
    Ok(state)
}

/// The kept proposals of every service (of `incident_id` only, when given), newest first.
///
/// # Errors
///
/// [`Error::IncidentNotFound`] when `incident_id` names no incident any service knows, or [`Error::Unavailable`]
/// when a driver does not answer.
pub async fn proposals(
    services: &ServiceSet,
    incident_id: Option<&IncidentId>,
) -> Result<Vec<RemediationProposal>, Error> {
    if let Some(incident_id) = incident_id {
        let mut known = false;
        for service in services.iter() {
            if service.driver.has_incident(incident_id.clone()).await? {
                known = true;
                break;
            }
        }
        if !known {
            return Err(Error::IncidentNotFound(incident_id.clone()));
        }
    }
    let mut proposals = Vec::new();
    for service in services.iter() {
        proposals.extend(service.driver.proposals(incident_id.cloned()).await?);
    }
    // Stable: within one service, the engine's order (newest first) breaks ties.
    proposals.sort_by_key(|proposal| std::cmp::Reverse(proposal.proposed_at));
    Ok(proposals)
}

/// An operator's decision, fed to the service whose engine holds the proposal.
///
/// # Errors
///
/// [`Error::ProposalNotFound`] when no service holds it; otherwise as [`super::ServiceHandle::decide`].
pub async fn decide(
    services: &ServiceSet,
    proposal: &ProposalId,
    version: u64,
    by: &str,
    approve: bool,
) -> Result<RemediationProposal, Error> {
    for service in services.iter() {
        match service
            .driver
            .decide(proposal.clone(), version, by.to_owned(), approve)
            .await
        {
            Err(Error::ProposalNotFound(_)) => {}
            answer => return answer,
        }
    }
    Err(Error::ProposalNotFound(proposal.as_str().to_owned()))
}

/// The figures of every service, by service, then incident kind and action.
///
/// # Errors
///
/// [`Error::Unavailable`] when a driver does not answer.
pub async fn stats(services: &ServiceSet) -> Result<Vec<RemediationActionStats>, Error> {
    let mut actions = Vec::new();
    for service in services.iter() {
        actions.extend(service.driver.remediation_stats().await?);
    }
    Ok(actions)
}
