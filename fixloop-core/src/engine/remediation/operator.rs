//! The operators' inputs to remediation: an approval or a rejection of a proposal awaiting one (compare-and-set on
//! its version), and the kill switch.

use fixloop_contract::TimelineKind;
use fixloop_contract::chrono::{DateTime, Utc};
use tracing::{info, warn};

use super::{Outcome, ProposalState, change, execute, finish};
use crate::engine::shared::Shared;
use crate::engine::{Effect, Rejected};
use crate::ids::ProposalId;

/// An operator approved (`approve`) or rejected a proposal, naming the version they saw.
pub(in crate::engine) fn on_decision(
    shared: &mut Shared,
    now: DateTime<Utc>,
    proposal: &ProposalId,
    version: u64,
    by: String,
    approve: bool,
) -> Result<(), Rejected> {
    let Some(index) = shared.remediation.index_of(proposal) else {
        return Err(Rejected::UnknownProposal(proposal.clone()));
    };
    let current = &shared.remediation.proposals[index];
    if current.version != version {
        return Err(Rejected::VersionConflict {
            proposal: proposal.clone(),
            current: current.version,
        });
    }
    if current.state != ProposalState::AwaitingApproval {
        return Err(Rejected::NotAwaitingApproval(proposal.clone()));
    }
    if approve && shared.remediation.kill_switch {
        return Err(Rejected::KillSwitchEngaged);
    }
    shared.remediation.proposals[index].decided_by = Some(by.clone());
    let act = if approve { "approved" } else { "rejected" };
    let summary = format!(
        "{by} {act} {proposal} ({}) at version {version}",
        shared.remediation.proposals[index].action_id
    );
    let incident_id = shared.remediation.proposals[index].incident_id.clone();
    shared
        .history
        .note(&incident_id, now, TimelineKind::Remediation, summary);
    if approve {
        info!(%proposal, %by, "remediation approved");
        execute(shared, now, index);
    } else {
        let action = shared.remediation.proposals[index].action_id.clone();
        if let Some(state) = shared.remediation.incident.as_mut() {
            state.rejected.insert(action);
        }
        change(
            shared,
            now,
            index,
            ProposalState::Rejected,
            format!("rejected by {by}"),
        );
    }
    Ok(())
}

/// The kill switch: engaged, it cancels the action in flight and withdraws a proposal awaiting approval.
pub(in crate::engine) fn on_kill_switch(
    shared: &mut Shared,
    now: DateTime<Utc>,
    engaged: bool,
    by: &str,
) {
    if shared.remediation.kill_switch == engaged {
        return;
    }
    shared.remediation.kill_switch = engaged;
    warn!(engaged, %by, "remediation kill switch");
    if let Some(incident_id) = shared
        .remediation
        .incident
        .as_ref()
        .map(|state| state.incident_id.clone())
    {
        let act = if engaged { "engaged" } else { "released" };
        let summary = format!("{by} {act} the remediation kill switch");
        shared
            .history
            .note(&incident_id, now, TimelineKind::Remediation, summary);
    }
    if !engaged {
        return;
    }
    let Some(index) = shared.remediation.active_index() else {
        return;
    };
    match shared.remediation.proposals[index].state {
        ProposalState::Executing { effect, .. } => {
            shared.effects.push_back(Effect::CancelAction { effect });
            let note = format!("cancelled: kill switch engaged by {by}");
            finish(shared, now, index, Outcome::Cancelled, note);
        }
        ProposalState::AwaitingApproval => {
            let note = format!("withdrawn: kill switch engaged by {by}");
            change(shared, now, index, ProposalState::Withdrawn, note);
        }
        _ => {}
    }
}
