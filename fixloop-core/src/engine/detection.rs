//! Detection: how an incident opens. A measurement ([`on_sample`]) is hot when its error rate stays above the
//! trigger; enough hot ones within the detection window open an incident from polling (unless a cooldown runs),
//! an alert or an operator's simulation opens one at once, and in RECOVERED each of them is a relapse. This module
//! owns the firing alerts ([`FiringAlerts`]) and the opening of an incident ([`open_incident`]): its id, card,
//! title, span and the first effect ([`Effect::FetchContext`]).

use std::collections::BTreeSet;

use fixloop_contract::chrono::{DateTime, Utc};
use fixloop_contract::{DatadogSummary, IncidentCard, IncidentState, Plan, Signal};
use tracing::{debug, info, info_span};

use super::phase::{IncidentActive, OpenIncident, Phase};
use super::planning::Planning;
use super::polling::Cadence;
use super::recovery;
use super::runs;
use super::shared::Shared;
use super::signals::{CleanSample, percent};
use super::{Alert, Effect, after};

/// How many firing alert keys are remembered.
pub(super) const MAX_FIRING_ALERTS: usize = 256;

/// The alerts firing now, by dedupe key (at most [`MAX_FIRING_ALERTS`] remembered): a key not among them is a
/// newly firing alert, a relapse in RECOVERED.
#[derive(Debug, Default)]
pub(super) struct FiringAlerts {
    keys: BTreeSet<String>,
}

impl FiringAlerts {
    /// The keys of a snapshot.
    pub(super) fn from_keys(keys: Vec<String>) -> Self {
        Self {
            keys: keys.into_iter().collect(),
        }
    }

    /// The keys, in order.
    pub(super) fn keys(&self) -> impl Iterator<Item = &String> {
        self.keys.iter()
    }

    /// An alert fired: whether its key was not firing already.
    pub(super) fn fire(&mut self, key: &str) -> bool {
        if self.keys.len() < MAX_FIRING_ALERTS {
            self.keys.insert(key.to_owned())
        } else {
            !self.keys.contains(key)
        }
    }

    /// An alert resolved.
    pub(super) fn resolve(&mut self, key: &str) {
        self.keys.remove(key);
    }

    /// The incident closed: every alert is forgotten.
    pub(super) fn clear(&mut self) {
        self.keys.clear();
    }
}

/// How an incident was opened.
#[derive(Debug)]
pub(super) enum Opening {
    Polling,
    Alert(Alert),
    Simulated,
    /// The signal source is blind and FixLoop's own probes fail.
    Unreachable {
        reason: String,
    },
}

/// The title of an incident opened by polling: `checkout: error rate 12.5% over the window (trigger 5.0%)`, from
/// the error rate in percent (the wire's unit) and the trigger as a ratio (the engine's).
pub(super) fn rate_title(service: &str, error_rate_percent: f64, trigger_ratio: f64) -> String {
    format!(
        "{service}: error rate {error_rate_percent:.1}% over the window (trigger {})",
        percent(trigger_ratio)
    )
}

pub(super) fn on_sample(
    phase: Phase,
    shared: &mut Shared,
    now: DateTime<Utc>,
    sample: CleanSample,
) -> Phase {
    let issued = shared.polling.answered(now);
    let age = shared.polling.measurement_age(now);
    let observed = shared.signals.record(now, &sample, &shared.config, age);
    debug!(
        requests = sample.requests,
        error_rate = ?sample.error_rate,
        ?observed,
        "signals read"
    );
    if observed.judged || observed.inconclusive {
        shared.polling.measurement_ended(issued);
    }
    // HEALTHY (and RECOVERED) never show an error rate above the trigger: a hot measurement is shown once it opens
    // (or reopens) the incident; until then it waits for its confirmation read.
    let calm = matches!(phase, Phase::Healthy(_) | Phase::Recovered(_));
    let confirming = calm && observed.hot;
    let opens = match &phase {
        Phase::Healthy(healthy) => {
            observed.triggered && healthy.cooldown_until.is_none_or(|until| now >= until)
        }
        Phase::Recovered(_) => observed.triggered,
        _ => false,
    };
    if observed.judged && (!confirming || opens) {
        if let Some(rate) = sample.error_rate {
            // The engine reasons in ratios; the wire says percent (what a dashboard prints followed by `%`).
            shared.status.error_rate_5m = rate * 100.0;
        }
        if let Some(p95) = sample.p95_latency_ms {
            shared.status.p95_latency_ms_5m = p95;
        }
        shared.status.updated_at = now;
    }
    let cadence = if confirming && !opens {
        Cadence::Confirm
    } else {
        Cadence::Normal
    };
    shared
        .polling
        .schedule(issued, now, cadence, &shared.config);
    match phase {
        Phase::Healthy(healthy) if observed.triggered => match healthy.cooldown_until {
            Some(until) if now < until => {
                debug!("error rate above the trigger during cooldown: no new incident");
                Phase::Healthy(healthy)
            }
            _ => open_incident(shared, now, Opening::Polling),
        },
        Phase::Validating(mut validating) => {
            if observed.judged || observed.inconclusive {
                recovery::after_measurement(&mut validating, shared, now);
            }
            match recovery::try_recover(validating, shared, now) {
                Phase::Validating(validating) if observed.improved => Phase::Validating(
                    runs::trigger_rerun(validating, shared, now, "signals improved"),
                ),
                other => other,
            }
        }
        Phase::Recovered(recovered) if observed.triggered => recovery::reopen(
            recovered,
            shared,
            now,
            "error rate back above the trigger during soak",
        ),
        other => other,
    }
}

pub(super) fn on_alert(
    phase: Phase,
    shared: &mut Shared,
    now: DateTime<Utc>,
    alert: Alert,
) -> Phase {
    let newly_firing = shared.firing_alerts.fire(&alert.dedupe_key);
    match phase {
        Phase::Healthy(_) => open_incident(shared, now, Opening::Alert(alert)),
        Phase::Recovered(recovered) if newly_firing => {
            recovery::reopen(recovered, shared, now, "a new alert fired during soak")
        }
        other => {
            debug!(dedupe_key = %alert.dedupe_key, "alert for the open incident: no new incident");
            other
        }
    }
}

pub(super) fn open_incident(shared: &mut Shared, now: DateTime<Utc>, opening: Opening) -> Phase {
    let id = shared.incident_id();
    let service = shared.config.service.name.clone();
    let titled_by_rate = matches!(opening, Opening::Polling);
    // Time to detect is measured only when polling opened the incident: from the first hot sample of the window
    // that tripped the trigger. An alert, a simulation or failing probes carry no such moment.
    let first_hot_sample_at = if titled_by_rate {
        shared
            .signals
            .window
            .iter()
            .find(|(_, hot)| *hot)
            .map(|(at, _)| *at)
    } else {
        None
    };
    let why = match &opening {
        Opening::Polling => "opened by polling: the error rate stayed above the trigger".to_owned(),
        Opening::Alert(alert) => format!("opened by an alert from {}", alert.source),
        Opening::Simulated => "opened by an operator's simulation".to_owned(),
        Opening::Unreachable { .. } => {
            "opened by FixLoop's probes: signals unavailable and probes failing".to_owned()
        }
    };
    let (title, monitor_id) = match opening {
        Opening::Polling => (
            rate_title(
                &service,
                shared.status.error_rate_5m,
                shared.config.trigger_error_rate,
            ),
            None,
        ),
        Opening::Alert(alert) => (alert.title, alert.monitor_id),
        Opening::Simulated => (format!("{service}: simulated incident"), None),
        Opening::Unreachable { reason } => (format!("{service}: {reason}"), None),
    };
    let span = info_span!("incident", incident_id = %id);
    info!(parent: &span, incident_id = %id, %title, "incident opened");
    let card = IncidentCard {
        incident_id: id.as_str().to_owned(),
        title,
        detected_at: now,
        datadog_summary: DatadogSummary {
            monitor_id,
            service,
            signal: Signal {
                error_rate_5m: shared.status.error_rate_5m,
                p95_latency_ms_5m: shared.status.p95_latency_ms_5m,
                top_error: shared.signals.top_error().map(str::to_owned),
            },
            evidence_links: Vec::new(),
        },
        plan: Plan {
            plan_id: format!("{id}-plan-pending"),
            generated_at: now,
            items: Vec::new(),
        },
    };
    shared.signals.clear_window();
    shared.history.open(
        &id,
        now,
        first_hot_sample_at,
        format!("{why}: {}", card.title),
    );
    shared.set_status(now, IncidentState::IncidentActive, Some(&id));
    let effect = shared.effect_id();
    shared.effects.push_back(Effect::FetchContext {
        effect,
        incident_id: id.clone(),
    });
    Phase::IncidentActive(IncidentActive {
        incident: OpenIncident {
            id,
            card,
            span,
            titled_by_rate,
        },
        planning: Planning::FetchingContext {
            effect,
            deadline: after(now, shared.config.context_deadline),
        },
    })
}

/// An alert resolved: forgotten, and while VALIDATING a rerun (the alerting system saw the service recover).
pub(super) fn on_alert_resolved(
    phase: Phase,
    shared: &mut Shared,
    now: DateTime<Utc>,
    dedupe_key: &str,
) -> Phase {
    shared.firing_alerts.resolve(dedupe_key);
    match phase {
        Phase::Validating(validating) => Phase::Validating(runs::trigger_rerun(
            validating,
            shared,
            now,
            "alert resolved",
        )),
        other => other,
    }
}

/// An operator asked for a simulated incident: one opens at once, or, in RECOVERED, the incident relapses.
pub(super) fn on_simulate_on(phase: Phase, shared: &mut Shared, now: DateTime<Utc>) -> Phase {
    match phase {
        Phase::Healthy(_) => open_incident(shared, now, Opening::Simulated),
        Phase::Recovered(recovered) => {
            recovery::reopen(recovered, shared, now, "simulated incident during soak")
        }
        other => {
            debug!("simulate on while an incident is open: nothing to do");
            other
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::phase::Healthy;
    use super::super::test_support::{at, drain, published, shared};
    use super::*;

    #[test]
    fn a_simulation_opens_an_incident_that_fetches_its_context() {
        let mut shared = shared();
        let phase = on_simulate_on(Phase::Healthy(Healthy::default()), &mut shared, at(1));
        let Phase::IncidentActive(active) = phase else {
            panic!("an incident is open");
        };
        assert_eq!(active.incident.id.as_str(), "inc-t-1");
        assert!(matches!(active.planning, Planning::FetchingContext { .. }));
        assert_eq!(shared.status.status, IncidentState::IncidentActive);
        let effects = drain(&mut shared);
        assert_eq!(published(&effects), ["system.status"]);
        assert!(matches!(effects.last(), Some(Effect::FetchContext { .. })));
    }

    #[test]
    fn only_a_newly_firing_alert_counts_as_new() {
        let mut alerts = FiringAlerts::default();
        assert!(alerts.fire("db-down"));
        assert!(!alerts.fire("db-down"), "a repeat of a firing alert");
        alerts.resolve("db-down");
        assert!(alerts.fire("db-down"), "firing again after it resolved");
        alerts.clear();
        assert_eq!(alerts.keys().count(), 0);
    }

    #[test]
    fn hot_measurements_open_an_incident_only_outside_the_cooldown() {
        let hot = || CleanSample {
            error_rate: Some(0.5),
            p95_latency_ms: Some(300.0),
            top_error: Some("boom".to_owned()),
            requests: 50,
        };
        let mut shared = shared();
        let cooling = Healthy {
            cooldown_until: Some(at(100)),
        };
        let mut phase = Phase::Healthy(cooling);
        for second in 1..=3 {
            phase = on_sample(phase, &mut shared, at(second), hot());
        }
        assert!(matches!(phase, Phase::Healthy(_)), "cooldown: no incident");
        let mut phase = Phase::Healthy(Healthy::default());
        for second in 101..=103 {
            phase = on_sample(phase, &mut shared, at(second), hot());
        }
        assert!(matches!(phase, Phase::IncidentActive(_)));
        let title = &phase.incident().expect("open").card.title;
        assert!(title.contains("error rate 50.0%"), "{title}");
        assert!(title.ends_with("(trigger 5.0%)"), "{title}");
    }
}
