//! The state every phase shares: the configuration, the published status and its publication rule, the effect
//! queue, the id counters, and the parts each concept owns ([`Signals`], [`Polling`], [`Blindness`], [`RunLog`],
//! [`FiringAlerts`], [`History`]). Only this module pushes `Publish` effects, and it writes the history from what it
//! publishes, so the timeline and the stream agree.

use std::collections::VecDeque;

use fixloop_contract::chrono::{DateTime, Utc};
use fixloop_contract::{IncidentCard, IncidentState, SystemStatus, WsMessage};

use super::blindness::Blindness;
use super::detection::FiringAlerts;
use super::history::History;
use super::polling::Polling;
use super::remediation::Remediation;
use super::runs::RunLog;
use super::signals::Signals;
use super::{Config, Effect};
use crate::ids::{EffectId, IncidentId, PlanId, ProposalId, RunId};

/// How many finished runs and closed incidents stay queryable.
pub(super) const HISTORY: usize = 100;

/// Smallest move of the error rate that republishes `system.status`: one percentage point (the status is in
/// percent).
pub(super) const STATUS_ERROR_RATE_STEP: f64 = 1.0;

/// Smallest relative move of p95 that republishes `system.status`.
pub(super) const STATUS_P95_STEP_RATIO: f64 = 0.2;

/// Smallest absolute move of p95 (ms) that republishes `system.status`.
pub(super) const STATUS_P95_STEP_MIN_MS: f64 = 10.0;

/// State shared by every phase.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) config: Config,
    pub(super) status: SystemStatus,
    pub(super) effects: VecDeque<Effect>,
    /// The numbers of the last published `system.status`.
    pub(super) published_numbers: (f64, f64),
    /// The latest `now` seen.
    pub(super) now: DateTime<Utc>,
    pub(super) next_incident: u64,
    pub(super) next_run: u64,
    pub(super) next_plan: u64,
    pub(super) next_effect: u64,
    /// The runs kept for queries.
    pub(super) runs: RunLog,
    pub(super) closed: VecDeque<IncidentCard>,
    pub(super) signals: Signals,
    pub(super) firing_alerts: FiringAlerts,
    pub(super) blindness: Blindness,
    /// The polling timer: when the next read of the signals is due, and the current measurement.
    pub(super) polling: Polling,
    /// The timelines and times of the open incident and of the last [`HISTORY`] closed ones.
    pub(super) history: History,
    /// Remediation: proposals, strikes, success rates, the kill switch.
    pub(super) remediation: Remediation,
}

impl Shared {
    pub(super) fn new(config: Config, now: DateTime<Utc>) -> Self {
        let service = Some(config.service.name.clone());
        Self {
            config,
            status: SystemStatus {
                status: IncidentState::Healthy,
                error_rate_5m: 0.0,
                p95_latency_ms_5m: 0.0,
                active_incident_id: None,
                updated_at: now,
                service,
                signals_degraded: None,
            },
            effects: VecDeque::new(),
            published_numbers: (0.0, 0.0),
            now,
            next_incident: 1,
            next_run: 1,
            next_plan: 1,
            next_effect: 1,
            runs: RunLog::default(),
            blindness: Blindness::default(),
            polling: Polling::new(now),
            closed: VecDeque::new(),
            signals: Signals::default(),
            firing_alerts: FiringAlerts::default(),
            history: History::default(),
            remediation: Remediation {
                next_proposal: 1,
                ..Remediation::default()
            },
        }
    }

    /// Moves the clock to `now`, never backwards; returns the time to use.
    pub(super) fn tick(&mut self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.now = self.now.max(now);
        self.now
    }

    pub(super) fn closed_incident(&self, incident_id: &IncidentId) -> Option<&IncidentCard> {
        self.closed
            .iter()
            .rev()
            .find(|card| card.incident_id == incident_id.as_str())
    }

    /// Publishes `system.status` when the numbers moved materially since the last publication.
    pub(super) fn publish_status_if_moved(&mut self, now: DateTime<Utc>) {
        let (error_rate, p95) = self.published_numbers;
        let p95_step = (p95 * STATUS_P95_STEP_RATIO).max(STATUS_P95_STEP_MIN_MS);
        if (self.status.error_rate_5m - error_rate).abs() >= STATUS_ERROR_RATE_STEP
            || (self.status.p95_latency_ms_5m - p95).abs() >= p95_step
        {
            self.publish_status(now);
        }
    }

    pub(super) fn publish_status(&mut self, now: DateTime<Utc>) {
        self.status.updated_at = now;
        self.published_numbers = (self.status.error_rate_5m, self.status.p95_latency_ms_5m);
        self.publish(now, WsMessage::SystemStatus(self.status.clone()));
    }

    /// Sets the status and publishes it.
    pub(super) fn set_status(
        &mut self,
        now: DateTime<Utc>,
        state: IncidentState,
        incident: Option<&IncidentId>,
    ) {
        self.status.status = state;
        self.status.active_incident_id = incident.map(|id| id.as_str().to_owned());
        self.publish_status(now);
    }

    pub(super) fn publish(&mut self, now: DateTime<Utc>, message: WsMessage) {
        // The history is written from what the engine publishes, so the timeline and the stream agree.
        self.history.observe(now, &message);
        self.effects.push_back(Effect::Publish(message.at(now)));
    }

    pub(super) fn effect_id(&mut self) -> EffectId {
        let id = EffectId(self.next_effect);
        self.next_effect = self.next_effect.saturating_add(1);
        id
    }

    fn prefixed(&self, kind: &str, n: u64) -> String {
        if self.config.id_prefix.is_empty() {
            format!("{kind}-{n}")
        } else {
            format!("{kind}-{}-{n}", self.config.id_prefix)
        }
    }

    pub(super) fn incident_id(&mut self) -> IncidentId {
        let id = IncidentId::new(self.prefixed("inc", self.next_incident));
        self.next_incident = self.next_incident.saturating_add(1);
        id
    }

    pub(super) fn run_id(&mut self) -> RunId {
        let id = RunId::new(self.prefixed("run", self.next_run));
        self.next_run = self.next_run.saturating_add(1);
        id
    }

    pub(super) fn plan_id(&mut self) -> PlanId {
        let id = PlanId::new(self.prefixed("plan", self.next_plan));
        self.next_plan = self.next_plan.saturating_add(1);
        id
    }

    pub(super) fn proposal_id(&mut self) -> ProposalId {
        let n = self.remediation.next_proposal;
        let id = ProposalId::new(self.prefixed("rem", n));
        self.remediation.next_proposal = n.saturating_add(1);
        id
    }

    pub(super) fn archive(&mut self, card: IncidentCard) {
        self.closed.push_back(card);
        while self.closed.len() > HISTORY {
            self.closed.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{at, drain, published, shared};
    use super::*;

    #[test]
    fn ids_carry_the_prefix_and_count_from_one() {
        let mut shared = shared();
        assert_eq!(shared.incident_id().as_str(), "inc-t-1");
        assert_eq!(shared.run_id().as_str(), "run-t-1");
        assert_eq!(shared.plan_id().as_str(), "plan-t-1");
        assert_eq!(shared.plan_id().as_str(), "plan-t-2");
        assert_eq!(shared.effect_id(), EffectId(1));
        shared.config.id_prefix.clear();
        assert_eq!(shared.incident_id().as_str(), "inc-2");
    }

    #[test]
    fn the_status_is_republished_only_when_the_numbers_move_materially() {
        let mut shared = shared();
        shared.status.error_rate_5m = 0.9;
        shared.status.p95_latency_ms_5m = 9.0;
        shared.publish_status_if_moved(at(1));
        assert!(drain(&mut shared).is_empty(), "below one point and 10 ms");
        shared.status.error_rate_5m = 1.0;
        shared.publish_status_if_moved(at(2));
        assert_eq!(published(&drain(&mut shared)), ["system.status"]);
        assert_eq!(shared.status.updated_at, at(2));
        assert_eq!(shared.published_numbers, (1.0, 9.0));
    }

    #[test]
    fn the_clock_never_goes_backwards() {
        let mut shared = shared();
        assert_eq!(shared.tick(at(5)), at(5));
        assert_eq!(shared.tick(at(3)), at(5));
    }
}
