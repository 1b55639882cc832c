//! The engine's phases, each a struct holding only what is valid in it (in the manner of rustls's per-state
//! structs): [`Healthy`], [`IncidentActive`] (with its [`Planning`]), [`Validating`] (with its [`RunSlot`]) and
//! [`Recovered`]. A transition consumes the old phase by value and returns the new one; the concept modules
//! (`detection`, `planning`, `runs`, `recovery`) own the transitions, `machine` dispatches between them.

use fixloop_contract::IncidentCard;
use fixloop_contract::IncidentState;
use fixloop_contract::chrono::{DateTime, Utc};
use tracing::Span;

use super::planning::Planning;
use super::recovery::GateNotes;
use super::runs::RunSlot;
use crate::ids::{IncidentId, RunId};
use crate::validate::ValidatedPlan;

/// The engine's phase; the variant is the reported `SystemStatus.status`.
#[derive(Debug)]
pub(super) enum Phase {
    Healthy(Healthy),
    IncidentActive(IncidentActive),
    Validating(Validating),
    Recovered(Recovered),
}

/// No incident is open.
#[derive(Debug, Default)]
pub(super) struct Healthy {
    /// Until when polling opens no incident (after a close).
    pub(super) cooldown_until: Option<DateTime<Utc>>,
}

/// An incident was detected; its plan is not validated yet.
#[derive(Debug)]
pub(super) struct IncidentActive {
    pub(super) incident: OpenIncident,
    pub(super) planning: Planning,
}

/// The plan is validated; runs validate the recovery.
#[derive(Debug)]
pub(super) struct Validating {
    pub(super) incident: OpenIncident,
    pub(super) plan: ValidatedPlan,
    pub(super) run: RunSlot,
    /// A rerun trigger arrived during a run.
    pub(super) rerun_pending: bool,
    /// What the recovery gate has noted so far (logged blocker, inconclusive streak, needs a human).
    pub(super) gate: GateNotes,
}

/// Every test passed and the signals are healthy; the incident closes when the soak window ends.
#[derive(Debug)]
pub(super) struct Recovered {
    pub(super) incident: OpenIncident,
    pub(super) plan: ValidatedPlan,
    pub(super) latest_run: RunId,
    pub(super) soak_until: DateTime<Utc>,
}

/// The open incident, common to the open phases.
#[derive(Debug)]
pub(super) struct OpenIncident {
    pub(super) id: IncidentId,
    pub(super) card: IncidentCard,
    pub(super) span: Span,
    /// Opened by polling: its title states the error rate, which the context's figure then replaces, so the title
    /// and the card always show the same number.
    pub(super) titled_by_rate: bool,
}

impl Default for Phase {
    fn default() -> Self {
        Self::Healthy(Healthy::default())
    }
}

impl Phase {
    /// The status this phase reports.
    pub(super) fn state(&self) -> IncidentState {
        match self {
            Self::Healthy(_) => IncidentState::Healthy,
            Self::IncidentActive(_) => IncidentState::IncidentActive,
            // VALIDATING means a run is in flight, or the latest run passed and the signal gate is pending; after a
            // failed run, with nothing in flight, the incident is simply active.
            Self::Validating(validating) => match &validating.run {
                RunSlot::Idle(run) if !run.passed => IncidentState::IncidentActive,
                _ => IncidentState::Validating,
            },
            Self::Recovered(_) => IncidentState::Recovered,
        }
    }

    /// The open incident.
    pub(super) fn incident(&self) -> Option<&OpenIncident> {
        match self {
            Self::Healthy(_) => None,
            Self::IncidentActive(active) => Some(&active.incident),
            Self::Validating(validating) => Some(&validating.incident),
            Self::Recovered(recovered) => Some(&recovered.incident),
        }
    }

    /// The tracing span of the open incident (disabled when none is open).
    pub(super) fn span(&self) -> Span {
        self.incident()
            .map_or_else(Span::none, |incident| incident.span.clone())
    }

    /// The latest run of the open incident.
    pub(super) fn latest_run_id(&self) -> Option<&RunId> {
        match self {
            Self::Healthy(_) | Self::IncidentActive(_) => None,
            Self::Validating(validating) => Some(validating.run.run_id()),
            Self::Recovered(recovered) => Some(&recovered.latest_run),
        }
    }

    /// The earliest armed timer.
    pub(super) fn next_deadline(&self) -> Option<DateTime<Utc>> {
        match self {
            Self::Healthy(_) => None,
            Self::IncidentActive(active) => Some(match active.planning {
                Planning::FetchingContext { deadline, .. }
                | Planning::Requesting { deadline, .. } => deadline,
                Planning::Waiting { retry_at } => retry_at,
            }),
            Self::Validating(validating) => Some(match &validating.run {
                RunSlot::Running(run) => run.deadline,
                RunSlot::Idle(run) => run.next_rerun_at,
            }),
            Self::Recovered(recovered) => Some(recovered.soak_until),
        }
    }
}
