//! Conversions between what the ports and the wire speak and what the core's engine takes, kept together.

use chrono::{DateTime, Utc};
use fixloop_adapters::{ContextFindings, SignalReading};
use fixloop_contract::SimulateMode;
use fixloop_core::engine::{IncidentContext, Input, SignalSample};

/// A signal reading taken at `at`, as the engine's sample.
#[must_use]
pub fn signal_sample(reading: SignalReading, at: DateTime<Utc>) -> SignalSample {
    SignalSample {
        at,
        error_rate: reading.error_rate,
        p95_latency_ms: reading.p95_latency_ms,
        top_error: reading.top_error,
        requests: reading.requests,
    }
}

/// A signal reading as an incident's context; a window without traffic reads as zero.
#[must_use]
pub fn incident_context(reading: SignalReading) -> IncidentContext {
    IncidentContext {
        error_rate: reading.error_rate.unwrap_or(0.0),
        p95_latency_ms: reading.p95_latency_ms.unwrap_or(0.0),
        top_error: reading.top_error,
        evidence_links: reading.evidence_links,
    }
}

/// The signals' context with a context source's findings added: its top error when the signals had none, and its
/// evidence links after theirs (no URL twice). Its notes are not part of the engine's context.
#[must_use]
pub fn with_findings(
    mut context: IncidentContext,
    findings: Option<ContextFindings>,
) -> IncidentContext {
    let Some(findings) = findings else {
        return context;
    };
    if context.top_error.is_none() {
        context.top_error = findings.top_error;
    }
    for link in findings.evidence_links {
        if !context
            .evidence_links
            .iter()
            .any(|known| known.url == link.url)
        {
            context.evidence_links.push(link);
        }
    }
    context
}

/// The engine input of `POST /api/incidents/simulate`.
#[must_use]
pub const fn simulate_input(mode: SimulateMode) -> Input {
    match mode {
        SimulateMode::IncidentOn => Input::SimulateOn,
        SimulateMode::IncidentOff => Input::SimulateOff,
    }
}

/// A remediation proposal of `service`'s engine, as the wire shows it.
#[must_use]
pub fn remediation_proposal(
    service: &str,
    proposal: &fixloop_core::engine::Proposal,
) -> fixloop_contract::RemediationProposal {
    use fixloop_contract::{RemediationOutcome, RemediationState};
    use fixloop_core::engine::{Outcome, ProposalState};
    let (state, outcome) = match proposal.state {
        ProposalState::Recorded => (RemediationState::Recorded, None),
        ProposalState::WouldRun => (RemediationState::WouldRun, None),
        ProposalState::AwaitingApproval => (RemediationState::AwaitingApproval, None),
        ProposalState::Rejected => (RemediationState::Rejected, None),
        ProposalState::Expired => (RemediationState::Expired, None),
        ProposalState::Withdrawn => (RemediationState::Withdrawn, None),
        ProposalState::Manual => (RemediationState::Manual, None),
        ProposalState::Executing { .. } => (RemediationState::Executing, None),
        ProposalState::Suppressing { .. } => (RemediationState::Suppressing, None),
        ProposalState::Judging { .. } => (RemediationState::Judging, None),
        ProposalState::Finished(outcome) => (
            RemediationState::Finished,
            Some(match outcome {
                Outcome::Effective => RemediationOutcome::Effective,
                Outcome::Ineffective => RemediationOutcome::Ineffective,
                Outcome::Inconclusive => RemediationOutcome::Inconclusive,
                Outcome::Failed => RemediationOutcome::Failed,
                Outcome::Cancelled => RemediationOutcome::Cancelled,
            }),
        ),
    };
    fixloop_contract::RemediationProposal {
        proposal_id: proposal.id.as_str().to_owned(),
        incident_id: proposal.incident_id.as_str().to_owned(),
        service: service.to_owned(),
        kind: proposal.kind.clone(),
        action_id: proposal.action_id.clone(),
        tier: remediation_tier(proposal.tier),
        mode: remediation_mode(proposal.mode),
        version: proposal.version,
        state,
        outcome,
        proposed_at: proposal.proposed_at,
        updated_at: proposal.updated_at,
        expires_at: proposal.expires_at,
        decided_by: proposal.decided_by.clone(),
        chosen_by: Some(match proposal.chosen_by {
            fixloop_core::engine::ChosenBy::Rules => fixloop_contract::RemediationChooser::Rules,
            fixloop_core::engine::ChosenBy::Model => fixloop_contract::RemediationChooser::Model,
        }),
        choice: proposal.choice.clone(),
        note: proposal.note.clone(),
    }
}

/// A risk tier as the wire spells it.
#[must_use]
pub const fn remediation_tier(
    tier: fixloop_core::remediation::RiskTier,
) -> fixloop_contract::RiskTier {
    use fixloop_core::remediation::RiskTier;
    match tier {
        RiskTier::Safe => fixloop_contract::RiskTier::Safe,
        RiskTier::Risky => fixloop_contract::RiskTier::Risky,
        RiskTier::NeverAuto => fixloop_contract::RiskTier::NeverAuto,
    }
}

/// A remediation mode as the wire spells it.
#[must_use]
pub const fn remediation_mode(
    mode: fixloop_core::remediation::RemediationMode,
) -> fixloop_contract::RemediationMode {
    use fixloop_core::remediation::RemediationMode;
    match mode {
        RemediationMode::MonitorOnly => fixloop_contract::RemediationMode::MonitorOnly,
        RemediationMode::Shadow => fixloop_contract::RemediationMode::Shadow,
        RemediationMode::DryRun => fixloop_contract::RemediationMode::DryRun,
        RemediationMode::Auto => fixloop_contract::RemediationMode::Auto,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_without_traffic_is_a_sample_without_numbers_and_a_zero_context() {
        let reading = SignalReading {
            requests: 0,
            ..SignalReading::default()
        };
        let at = "2026-11-21T10:15:00Z".parse().unwrap();
        let sample = signal_sample(reading.clone(), at);
        assert_eq!(
            (sample.error_rate, sample.p95_latency_ms, sample.at),
            (None, None, at)
        );
        let context = incident_context(reading);
        assert_eq!((context.error_rate, context.p95_latency_ms), (0.0, 0.0));
    }
}
