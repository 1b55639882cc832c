//! The signal gate on its own, for a one-shot verification with no incident (`fixloop verify`): the engine's own
//! signal bookkeeping (the private `Signals` of the signals module) and its gate rule, fed measurements by a caller;
//! never a second copy of the rules.
//! Measurements are judged exactly as while VALIDATING: no traffic or too few requests extend a measurement up to
//! `max_measurement`, then end it *inconclusive*; the gate holds only after `recovery_samples` consecutive healthy,
//! fresh measurements. [`SignalGate::verdict`] then says *holds*, *unhealthy* (the gate does not hold and a judged
//! measurement was unhealthy) or *inconclusive* (it does not hold and nothing was judged unhealthy: no data is never
//! health).

use fixloop_contract::chrono::{DateTime, Utc};

use super::signals::{CleanSample, Signals};
use super::{Config, SignalSample};

/// What the gate concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateVerdict {
    /// The last `recovery_samples` measurements were healthy and are fresh.
    Holds,
    /// The gate does not hold and at least one measurement was judged unhealthy; the gate's reason.
    Unhealthy(String),
    /// The gate does not hold and nothing was judged unhealthy (no traffic, too few requests, failed reads, too
    /// short a hold); the gate's reason.
    Inconclusive(String),
}

/// How the measurements of a hold ended, counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GateCounts {
    /// Measurements judged healthy.
    pub healthy: u32,
    /// Measurements judged unhealthy.
    pub unhealthy: u32,
    /// Measurements that ended inconclusive, failed reads included.
    pub inconclusive: u32,
}

/// The engine's signal gate fed by a caller with no incident (`fixloop verify`): measurements are judged exactly as
/// while VALIDATING (no traffic or too few requests are inconclusive, never healthy); see [`SignalGate::verdict`].
#[derive(Debug, Clone)]
pub struct SignalGate {
    config: Config,
    signals: Signals,
    measurement_start: DateTime<Utc>,
    counts: GateCounts,
}

impl SignalGate {
    /// A gate with `config`'s thresholds whose first measurement starts at `now`.
    #[must_use]
    pub fn new(config: Config, now: DateTime<Utc>) -> Self {
        Self {
            config,
            signals: Signals::default(),
            measurement_start: now,
            counts: GateCounts::default(),
        }
    }

    /// How long the current measurement has lasted at `now`: the window the next read should cover.
    #[must_use]
    pub fn measurement_age(&self, now: DateTime<Utc>) -> std::time::Duration {
        (now - self.measurement_start).to_std().unwrap_or_default()
    }

    /// A read answered at `now`.
    pub fn handle_sample(&mut self, now: DateTime<Utc>, sample: SignalSample) {
        let age = self.measurement_age(now);
        let observed = self
            .signals
            .record(now, &CleanSample::new(sample), &self.config, Some(age));
        if observed.inconclusive {
            self.counts.inconclusive = self.counts.inconclusive.saturating_add(1);
        } else if observed.judged {
            if self.signals.streak > 0 {
                self.counts.healthy = self.counts.healthy.saturating_add(1);
            } else {
                self.counts.unhealthy = self.counts.unhealthy.saturating_add(1);
            }
        }
        if observed.judged || observed.inconclusive {
            self.measurement_start = now;
        }
    }

    /// A read failed at `now` because of `reason`: the measurement is inconclusive.
    pub fn handle_failure(&mut self, now: DateTime<Utc>, reason: String) {
        self.signals.record_failure(now, reason);
        self.counts.inconclusive = self.counts.inconclusive.saturating_add(1);
        self.measurement_start = now;
    }

    /// The measurements so far, counted by how they ended.
    #[must_use]
    pub fn counts(&self) -> GateCounts {
        self.counts
    }

    /// The configuration the gate judges with.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether the gate holds at `now`, and if not whether the signals were unhealthy or could not be judged.
    #[must_use]
    pub fn verdict(&self, now: DateTime<Utc>) -> GateVerdict {
        match self.signals.gate(now, &self.config) {
            Ok(()) => GateVerdict::Holds,
            Err(reason) if self.counts.unhealthy > 0 => GateVerdict::Unhealthy(reason),
            Err(reason) => GateVerdict::Inconclusive(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use fixloop_contract::chrono::TimeDelta;

    use super::*;
    use crate::service::ServiceSpec;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + TimeDelta::seconds(seconds)
    }

    fn sample(error_rate: Option<f64>, requests: u64) -> SignalSample {
        SignalSample {
            at: DateTime::UNIX_EPOCH,
            error_rate,
            p95_latency_ms: Some(50.0),
            top_error: None,
            requests,
        }
    }

    fn gate() -> SignalGate {
        let config = Config::short_windows(ServiceSpec::new("s", "http://127.0.0.1:1"), "t");
        SignalGate::new(config, at(0))
    }

    #[test]
    fn consecutive_healthy_measurements_hold_the_gate() {
        let mut gate = gate();
        gate.handle_sample(at(1), sample(Some(0.0), 50));
        assert!(matches!(gate.verdict(at(1)), GateVerdict::Inconclusive(_)));
        gate.handle_sample(at(2), sample(Some(0.0), 50));
        assert_eq!(gate.verdict(at(2)), GateVerdict::Holds);
        assert_eq!(gate.counts().healthy, 2);
    }

    #[test]
    fn no_traffic_is_inconclusive_never_healthy() {
        let mut gate = gate();
        for second in 1..=12 {
            gate.handle_sample(at(second), sample(None, 0));
        }
        let GateVerdict::Inconclusive(reason) = gate.verdict(at(12)) else {
            panic!("no data is never health");
        };
        assert!(reason.contains("no traffic"), "{reason}");
        assert!(gate.counts().inconclusive >= 2, "{:?}", gate.counts());
        gate.handle_failure(at(13), "connection refused".to_owned());
        assert!(matches!(gate.verdict(at(13)), GateVerdict::Inconclusive(_)));
    }

    #[test]
    fn an_unhealthy_measurement_makes_a_failed_gate_unhealthy_until_a_healthy_streak() {
        let mut gate = gate();
        gate.handle_sample(at(1), sample(Some(0.5), 50));
        let GateVerdict::Unhealthy(reason) = gate.verdict(at(1)) else {
            panic!("unhealthy");
        };
        assert!(reason.contains("50.0%"), "{reason}");
        gate.handle_sample(at(2), sample(Some(0.0), 50));
        assert!(matches!(gate.verdict(at(2)), GateVerdict::Unhealthy(_)));
        gate.handle_sample(at(3), sample(Some(0.0), 50));
        assert_eq!(gate.verdict(at(3)), GateVerdict::Holds);
        assert_eq!(
            gate.counts(),
            GateCounts {
                healthy: 2,
                unhealthy: 1,
                inconclusive: 0
            }
        );
        // Stale: the last measurement is older than `signal_max_age`.
        assert!(matches!(gate.verdict(at(60)), GateVerdict::Unhealthy(_)));
    }
}
