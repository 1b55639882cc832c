//! `GET /api/ci/incidents`: one CI incident per (repository, run id), summed up from the run's recorded intakes
//! with the same rule the self-heal uses (`fixloop_core::ci::heal::incident_state`: `RECOVERED` only when a rerun
//! FixLoop requested passed).

use fixloop_contract::{CiHealDecision, CiIncident, CiIntake, CiJobStatus};
use fixloop_core::ci::heal::incident_state;

use super::heal::{event_of, wire_state};

/// The incident of one run from its intakes, oldest first; `None` when none of them failed (a run that only
/// passed is no incident).
pub(super) fn summarize(intakes: &[CiIntake]) -> Option<CiIncident> {
    let (first, last) = (intakes.first()?, intakes.last()?);
    let events: Vec<_> = intakes.iter().map(event_of).collect();
    let state = wire_state(incident_state(&events));
    let last_failure = intakes
        .iter()
        .rev()
        .find(|intake| intake.job_status != CiJobStatus::Passed)?;
    let attempts = intakes
        .iter()
        .filter(|intake| {
            intake
                .heal
                .as_ref()
                .is_some_and(|heal| heal.decision == CiHealDecision::Rerun)
        })
        .count();
    let escalated = last.job_status != CiJobStatus::Passed
        && last.heal.as_ref().is_some_and(|heal| heal.escalated);
    Some(CiIncident {
        repository: last.repository.clone(),
        run_id: last.run_id.clone(),
        state,
        class: last_failure.classification.class,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        escalated,
        intakes: u32::try_from(intakes.len()).unwrap_or(u32::MAX),
        job: last.job.clone(),
        latest_job_status: last.job_status,
        first_intake_at: first.received_at,
        last_intake_at: last.received_at,
    })
}
