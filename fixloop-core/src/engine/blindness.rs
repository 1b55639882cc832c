//! Blindness: what the engine knows about its signal source's failures, and FixLoop's own probes of the service.
//! A failed read is no data (an inconclusive measurement), never health; after `blind_after` failures in a row (or
//! one timeout while HEALTHY, how a hung service shows) the engine probes the service; failing probes open an
//! incident while HEALTHY and are a relapse in RECOVERED, passing ones mark the signals degraded, and the next
//! successful read clears the mark. This module owns [`Blindness`] and `SystemStatus.signals_degraded`.

use fixloop_contract::chrono::{DateTime, Utc};
use tracing::{debug, info, warn};

use super::detection::{self, Opening};
use super::phase::Phase;
use super::polling::Cadence;
use super::recovery;
use super::runs;
use super::shared::Shared;
use super::signals::{CleanSample, percent};
use super::{Effect, PortFailure, SignalSample, after};
use crate::ids::EffectId;

/// What the engine knows about its signal source's failures.
#[derive(Debug, Default)]
pub(super) struct Blindness {
    /// Failed reads in a row.
    pub(super) failures: u32,
    /// Why the latest read failed.
    pub(super) reason: Option<String>,
    /// The probe in flight.
    pub(super) probe: Option<EffectId>,
    /// No new probe before this moment.
    pub(super) next_probe_at: Option<DateTime<Utc>>,
    /// The latest probes failed: probes that pass next mean the service answers again.
    pub(super) probes_failing: bool,
}

/// A read succeeded: the source sees again.
pub(super) fn signals_back(shared: &mut Shared, now: DateTime<Utc>) {
    let blindness = &mut shared.blindness;
    blindness.failures = 0;
    blindness.reason = None;
    blindness.next_probe_at = None;
    blindness.probes_failing = false;
    if shared.status.signals_degraded.take().is_some() {
        info!("the signal source answers again; signals are no longer degraded");
        shared.publish_status(now);
    }
}

pub(super) fn on_source_failed(
    phase: Phase,
    shared: &mut Shared,
    now: DateTime<Utc>,
    failure: &PortFailure,
) -> Phase {
    let issued = shared.polling.answered(now);
    let reason = format!(
        "the signal source fails: {}",
        describe_source_failure(failure)
    );
    let blindness = &mut shared.blindness;
    blindness.failures = blindness.failures.saturating_add(1);
    blindness.reason = Some(reason.clone());
    // A read that times out while all looks healthy is how a hung service shows: probe at once (the probes time out
    // too when it is hung) instead of waiting for `blind_after` failures.
    let hung = matches!(failure, PortFailure::Timeout)
        && blindness.failures == 1
        && matches!(phase, Phase::Healthy(_));
    let due = (blindness.failures >= shared.config.blind_after.max(1) || hung)
        && blindness.probe.is_none()
        && blindness.next_probe_at.is_none_or(|at| at <= now || hung);
    if due {
        let effect = shared.effect_id();
        let spacing = shared.config.poll_interval * shared.config.blind_after.max(1);
        shared.blindness.probe = Some(effect);
        shared.blindness.next_probe_at = Some(after(now, spacing));
        warn!(failures = shared.blindness.failures, %reason, "signals unavailable; probing the service");
        shared.effects.push_back(Effect::ProbeService { effect });
    } else {
        debug!(failures = shared.blindness.failures, %reason, "signal read failed");
    }
    // No data: the measurement is inconclusive and the recovery streak starts over.
    shared.signals.record_failure(now, reason);
    shared
        .polling
        .schedule(issued, now, Cadence::Normal, &shared.config);
    match phase {
        Phase::Validating(mut validating) => {
            recovery::after_measurement(&mut validating, shared, now);
            Phase::Validating(validating)
        }
        other => other,
    }
}

pub(super) fn on_probed(
    phase: Phase,
    shared: &mut Shared,
    now: DateTime<Utc>,
    effect: EffectId,
    result: Result<SignalSample, PortFailure>,
) -> Phase {
    if shared.blindness.probe != Some(effect) {
        debug!(%effect, "answer to a probe the engine no longer waits for; ignored");
        return phase;
    }
    shared.blindness.probe = None;
    let Some(reason) = shared.blindness.reason.clone() else {
        // The source answered again while the probes ran: nothing is degraded any more.
        shared.blindness.probes_failing = false;
        return phase;
    };
    let sample = match result {
        Ok(sample) => CleanSample::new(sample),
        // Probes that do not answer in time fail: a hung service answers neither reads nor probes.
        Err(PortFailure::Timeout) => CleanSample {
            error_rate: Some(1.0),
            p95_latency_ms: None,
            top_error: Some("probes: no answer in time".to_owned()),
            requests: 1,
        },
        Err(failure) => {
            let degraded = format!(
                "{reason}; no probe could run: {}",
                describe_source_failure(&failure)
            );
            set_degraded(shared, now, degraded);
            return phase;
        }
    };
    let failing = sample
        .error_rate
        .is_some_and(|rate| rate > shared.config.trigger_error_rate)
        && sample.requests > 0;
    if !failing {
        let degraded = format!(
            "{reason}; FixLoop's own probes of the service pass ({} requests)",
            sample.requests
        );
        set_degraded(shared, now, degraded);
        let answers_again = std::mem::take(&mut shared.blindness.probes_failing);
        return match phase {
            // The service answers again: validate at once rather than on the rerun timer.
            Phase::Validating(validating) if answers_again => {
                Phase::Validating(runs::trigger_rerun(
                    validating,
                    shared,
                    now,
                    "the service answers FixLoop's probes again",
                ))
            }
            other => other,
        };
    }
    shared.blindness.probes_failing = true;
    let rate = sample.error_rate.unwrap_or(1.0);
    let top = sample.top_error.clone();
    let degraded = format!(
        "{reason}; FixLoop's own probes fail ({} of them)",
        percent(rate)
    );
    match phase {
        Phase::Healthy(_) => {
            // Opening the incident publishes the status, marker included: one message, not two.
            warn!(%degraded, "signals degraded");
            shared.status.signals_degraded = Some(degraded);
            shared.status.error_rate_5m = rate * 100.0;
            if let Some(p95) = sample.p95_latency_ms {
                shared.status.p95_latency_ms_5m = p95;
            }
            let why = match top {
                Some(top) => format!("{reason}; probes failing ({}), e.g. {top}", percent(rate)),
                None => format!("{reason}; probes failing ({})", percent(rate)),
            };
            detection::open_incident(shared, now, Opening::Unreachable { reason: why })
        }
        Phase::Recovered(recovered) => {
            warn!(%degraded, "signals degraded");
            shared.status.signals_degraded = Some(degraded);
            recovery::reopen(
                recovered,
                shared,
                now,
                "signals unavailable and probes failing during soak",
            )
        }
        other => {
            set_degraded(shared, now, degraded);
            other
        }
    }
}

pub(super) fn set_degraded(shared: &mut Shared, now: DateTime<Utc>, degraded: String) {
    if shared.status.signals_degraded.as_deref() != Some(degraded.as_str()) {
        warn!(%degraded, "signals degraded");
        shared.status.signals_degraded = Some(degraded);
        shared.publish_status(now);
    }
}

pub(super) fn describe_source_failure(failure: &PortFailure) -> String {
    match failure {
        PortFailure::Timeout => "no answer in time".to_owned(),
        PortFailure::RateLimited { .. } => "rate limited".to_owned(),
        PortFailure::Unauthorized => "credentials rejected".to_owned(),
        PortFailure::InvalidResponse(why) | PortFailure::Unavailable(why) => why.clone(),
    }
}

/// The driver restarted: a probe in flight died with the old process, so the next failed read may probe again at
/// once.
pub(super) fn restarted(shared: &mut Shared) {
    if shared.blindness.probe.take().is_some() {
        shared.blindness.next_probe_at = None;
    }
}

#[cfg(test)]
mod tests {
    use fixloop_contract::IncidentState;

    use super::super::phase::Healthy;
    use super::super::test_support::{at, drain, shared};
    use super::*;

    fn probes(effects: &[Effect]) -> Vec<EffectId> {
        effects
            .iter()
            .filter_map(|effect| match effect {
                Effect::ProbeService { effect } => Some(*effect),
                _ => None,
            })
            .collect()
    }

    fn healthy() -> Phase {
        Phase::Healthy(Healthy::default())
    }

    #[test]
    fn blind_after_failed_reads_the_service_is_probed_once() {
        let mut shared = shared();
        let failure = PortFailure::Unavailable("connection refused".to_owned());
        let mut phase = healthy();
        let mut effects = Vec::new();
        for second in 1..=4 {
            phase = on_source_failed(phase, &mut shared, at(second), &failure);
            effects.extend(drain(&mut shared));
        }
        assert_eq!(shared.blindness.failures, 4);
        assert_eq!(probes(&effects).len(), 1, "one probe in flight at a time");
        assert!(matches!(phase, Phase::Healthy(_)));
    }

    #[test]
    fn a_timeout_while_healthy_probes_at_once() {
        let mut shared = shared();
        let _ = on_source_failed(healthy(), &mut shared, at(1), &PortFailure::Timeout);
        assert_eq!(probes(&drain(&mut shared)).len(), 1);
    }

    #[test]
    fn failing_probes_open_an_incident_and_passing_ones_mark_the_signals_degraded() {
        let sample = |error_rate| SignalSample {
            at: at(2),
            error_rate: Some(error_rate),
            p95_latency_ms: Some(50.0),
            top_error: None,
            requests: 5,
        };
        // Probes that pass: the status stays, the signals are degraded until a read succeeds.
        let mut shared = shared();
        let _ = on_source_failed(healthy(), &mut shared, at(1), &PortFailure::Timeout);
        let probe = probes(&drain(&mut shared))[0];
        let phase = on_probed(healthy(), &mut shared, at(2), probe, Ok(sample(0.0)));
        assert!(matches!(phase, Phase::Healthy(_)));
        let degraded = shared.status.signals_degraded.clone().expect("degraded");
        assert!(
            degraded.contains("probes of the service pass"),
            "{degraded}"
        );
        signals_back(&mut shared, at(3));
        assert_eq!(shared.status.signals_degraded, None);
        // Probes that fail open an incident.
        let mut shared = super::super::test_support::shared();
        let _ = on_source_failed(healthy(), &mut shared, at(1), &PortFailure::Timeout);
        let probe = probes(&drain(&mut shared))[0];
        let phase = on_probed(healthy(), &mut shared, at(2), probe, Ok(sample(1.0)));
        assert!(matches!(phase, Phase::IncidentActive(_)));
        assert_eq!(shared.status.status, IncidentState::IncidentActive);
    }

    #[test]
    fn an_answer_to_a_probe_nobody_waits_for_is_ignored() {
        let mut shared = shared();
        let phase = on_probed(
            healthy(),
            &mut shared,
            at(1),
            EffectId(99),
            Err(PortFailure::Timeout),
        );
        assert!(matches!(phase, Phase::Healthy(_)));
        assert!(drain(&mut shared).is_empty());
    }
}
