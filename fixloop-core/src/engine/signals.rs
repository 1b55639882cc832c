//! Signal bookkeeping of the engine: the detection window, the recovery streak, and sample sanitizing.
//!
//! Samples are windowed by the time the engine was told about them (`now`), not by `SignalSample::at`, so a
//! skewed clock at the signal source cannot break the window.

use std::collections::VecDeque;

use fixloop_contract::chrono::{DateTime, Utc};

use super::{Config, SignalSample, after};

/// A sample with impossible values removed: `NaN`, infinities and negative numbers become "no data", and error
/// ratios above 1 are clamped to 1.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct CleanSample {
    pub(super) error_rate: Option<f64>,
    pub(super) p95_latency_ms: Option<f64>,
    pub(super) top_error: Option<String>,
    pub(super) requests: u64,
}

impl CleanSample {
    pub(super) fn new(sample: SignalSample) -> Self {
        let finite = |x: Option<f64>| x.filter(|v| v.is_finite() && *v >= 0.0);
        Self {
            error_rate: finite(sample.error_rate).map(|v| v.min(1.0)),
            p95_latency_ms: finite(sample.p95_latency_ms),
            top_error: sample.top_error,
            requests: sample.requests,
        }
    }
}

/// How one measurement counts for detection and for the recovery gate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum SampleClass {
    /// No traffic: the error rate is unknown.
    NoData,
    /// Fewer requests than `min_requests`.
    TooFewRequests(u64),
    /// Error rate not below the recovery threshold.
    Unhealthy(f64),
    /// Error rate below the recovery threshold with enough requests.
    Healthy(f64),
}

/// What recording a read found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Observed {
    /// The read ended a measurement that could be judged (healthy or unhealthy).
    pub(super) judged: bool,
    /// The read ended a measurement as inconclusive (no traffic or too few requests over `max_measurement`).
    pub(super) inconclusive: bool,
    /// The measurement was hot: above the trigger even if every missing request up to `min_requests` had passed.
    pub(super) hot: bool,
    /// The trigger condition holds: this measurement is hot and enough hot ones are in the detection window.
    pub(super) triggered: bool,
    /// This measurement is healthy and the previous one was not: the signals improved.
    pub(super) improved: bool,
}

/// The signal state the engine keeps across phases.
#[derive(Debug, Clone, Default)]
pub(super) struct Signals {
    /// Receive time of each judged measurement in the detection window, and whether it was hot.
    pub(super) window: VecDeque<(DateTime<Utc>, bool)>,
    /// Consecutive healthy measurements, most recent last.
    pub(super) streak: u32,
    /// The latest ended measurement's receive time and class (inconclusive ones included).
    pub(super) last: Option<(DateTime<Utc>, SampleClass)>,
    /// The latest sample's top error.
    pub(super) top_error: Option<String>,
    /// The receive time of the latest read (any: extending, failed), for gaps.
    pub(super) last_read_at: Option<DateTime<Utc>>,
    /// The measurement being extended: the latest read's requests and error rate (too few to judge yet).
    pub(super) extending: Option<(u64, Option<f64>)>,
    /// Consecutive inconclusive measurements (no traffic, too few requests, failed reads), and the latest reason.
    pub(super) inconclusive: u32,
    /// Why the latest measurement was inconclusive.
    pub(super) inconclusive_reason: Option<String>,
}

/// Most samples the window keeps, whatever the window's duration (bounds memory under a flood of samples).
const MAX_WINDOW_SAMPLES: usize = 4096;

impl Signals {
    /// Records a read received at `now`; `age` is how long the measurement it belongs to has lasted (`None` when
    /// unknown: the read ends its measurement whatever it holds).
    pub(super) fn record(
        &mut self,
        now: DateTime<Utc>,
        sample: &CleanSample,
        config: &Config,
        age: Option<std::time::Duration>,
    ) -> Observed {
        // A gap longer than `signal_max_age` between two reads breaks the streak: the measurements around it are
        // not consecutive.
        let gap = self
            .last_read_at
            .is_some_and(|received_at| after(received_at, config.signal_max_age) < now);
        self.last_read_at = Some(now);
        if gap {
            self.streak = 0;
        }
        self.top_error.clone_from(&sample.top_error);
        let hot = is_hot(sample, config);
        let class = classify(sample, config);
        let too_small = matches!(class, SampleClass::NoData | SampleClass::TooFewRequests(_));
        if too_small && !hot {
            let bound_reached = age.is_none_or(|age| age >= config.max_measurement);
            if !bound_reached {
                self.extending = Some((sample.requests, sample.error_rate));
                return Observed::default();
            }
            self.extending = None;
            let reason = match class {
                SampleClass::TooFewRequests(requests) => format!(
                    "too few requests: {requests} in {}, at least {} needed",
                    seconds(age),
                    config.min_requests
                ),
                _ => format!("no traffic in {}", seconds(age)),
            };
            self.end_inconclusive(now, class, reason);
            return Observed {
                inconclusive: true,
                ..Observed::default()
            };
        }
        self.extending = None;
        self.window
            .retain(|(at, _)| after(*at, config.detection_window) >= now);
        self.window.push_back((now, hot));
        while self.window.len() > MAX_WINDOW_SAMPLES {
            self.window.pop_front();
        }
        let hot_in_window = self.window.iter().filter(|(_, hot)| *hot).count();
        let needed = usize::try_from(config.min_samples.max(1)).unwrap_or(usize::MAX);
        // A hot measurement with too few requests is judged unhealthy: more requests could not have saved it.
        let class = if hot && too_small {
            SampleClass::Unhealthy(sample.error_rate.unwrap_or(1.0))
        } else {
            class
        };
        let healthy = matches!(class, SampleClass::Healthy(_));
        let was_healthy = self
            .last
            .map(|(_, previous)| matches!(previous, SampleClass::Healthy(_)));
        self.streak = if healthy {
            self.streak.saturating_add(1)
        } else {
            0
        };
        self.last = Some((now, class));
        self.inconclusive = 0;
        self.inconclusive_reason = None;
        Observed {
            judged: true,
            inconclusive: false,
            hot,
            triggered: hot && hot_in_window >= needed,
            improved: healthy && was_healthy == Some(false),
        }
    }

    /// A read failed at `now`: the measurement is inconclusive (a degraded source is no data).
    pub(super) fn record_failure(&mut self, now: DateTime<Utc>, reason: String) {
        self.last_read_at = Some(now);
        self.extending = None;
        self.end_inconclusive(now, SampleClass::NoData, reason);
    }

    fn end_inconclusive(&mut self, now: DateTime<Utc>, class: SampleClass, reason: String) {
        self.streak = 0;
        self.last = Some((now, class));
        self.inconclusive = self.inconclusive.saturating_add(1);
        self.inconclusive_reason = Some(reason);
    }

    /// Forgets the detection window, so the next trigger needs `min_samples` fresh samples above the threshold.
    pub(super) fn clear_window(&mut self) {
        self.window.clear();
    }

    /// Forgets the detection window and the signal gate's healthy streak, so that the gate holds only on
    /// measurements taken from now on (after a remediation action's side effects).
    pub(super) fn restart_gate(&mut self) {
        self.window.clear();
        self.streak = 0;
        self.last = None;
    }

    /// The latest sample's top error signature.
    pub(super) fn top_error(&self) -> Option<&str> {
        self.top_error.as_deref()
    }

    /// Whether the signal gate holds at `now`, or why not.
    pub(super) fn gate(&self, now: DateTime<Utc>, config: &Config) -> Result<(), String> {
        let needed = config.recovery_samples.max(1);
        if let Some(reason) = &self.inconclusive_reason {
            return Err(format!(
                "signals inconclusive ({} check(s) in a row; a human is needed after {}): {reason} \
                 (no data is never recovery)",
                self.inconclusive,
                config.inconclusive_limit.max(1)
            ));
        }
        let Some((received_at, class)) = self.last else {
            return Err(match self.extending {
                Some((requests, _)) => format!(
                    "signals unknown: measuring, {requests} of at least {} requests so far",
                    config.min_requests
                ),
                None => "signals unknown: no sample received yet".to_owned(),
            });
        };
        if self.streak >= needed && self.extending.is_none() {
            if after(received_at, config.signal_max_age) < now {
                let age = (now - received_at).num_seconds();
                return Err(format!("signals stale: last measurement is {age} s old"));
            }
            return Ok(());
        }
        let last = match (self.extending, class) {
            (Some((requests, _)), _) => format!(
                "measuring: {requests} of at least {} requests so far",
                config.min_requests
            ),
            (None, SampleClass::NoData) => "no traffic (no data is never recovery)".to_owned(),
            (None, SampleClass::TooFewRequests(requests)) => format!(
                "only {requests} requests, at least {} needed",
                config.min_requests
            ),
            (None, SampleClass::Unhealthy(rate)) => format!(
                "error rate {} is not below {}",
                percent(rate),
                percent(config.recovery_error_rate)
            ),
            (None, SampleClass::Healthy(rate)) => format!("error rate {}", percent(rate)),
        };
        Err(format!(
            "signals not healthy yet: {} of {needed} consecutive healthy measurements since the change (last: {last})",
            self.streak.min(needed)
        ))
    }
}

/// Whether a measurement is hot: its error rate stays above the trigger even if every request missing up to
/// `min_requests` had passed (so 3 failures out of 3 are hot under `min_requests = 20`, 1 out of 1 is not).
pub(super) fn is_hot(sample: &CleanSample, config: &Config) -> bool {
    let Some(rate) = sample.error_rate else {
        return false;
    };
    if sample.requests == 0 {
        return false;
    }
    let counted = sample.requests.max(config.min_requests) as f64;
    rate * sample.requests as f64 / counted > config.trigger_error_rate
}

/// Classifies a sample against the recovery thresholds.
pub(super) fn classify(sample: &CleanSample, config: &Config) -> SampleClass {
    match sample.error_rate {
        None => SampleClass::NoData,
        Some(_) if sample.requests < config.min_requests.max(1) => {
            SampleClass::TooFewRequests(sample.requests)
        }
        Some(rate) if rate < config.recovery_error_rate => SampleClass::Healthy(rate),
        Some(rate) => SampleClass::Unhealthy(rate),
    }
}

/// A ratio as a percentage with one decimal (`0.123` → `12.3%`).
pub(super) fn percent(ratio: f64) -> String {
    format!("{:.1}%", ratio * 100.0)
}

fn seconds(age: Option<std::time::Duration>) -> String {
    match age {
        Some(age) => format!("{:.1} s", age.as_secs_f64()),
        None => "one read".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::ServiceSpec;

    fn sample(error_rate: Option<f64>, requests: u64) -> CleanSample {
        CleanSample::new(SignalSample {
            at: DateTime::UNIX_EPOCH,
            error_rate,
            p95_latency_ms: Some(100.0),
            top_error: None,
            requests,
        })
    }

    #[test]
    fn impossible_values_are_no_data() {
        assert_eq!(sample(Some(f64::NAN), 50).error_rate, None);
        assert_eq!(sample(Some(-0.1), 50).error_rate, None);
        assert_eq!(sample(Some(f64::INFINITY), 50).error_rate, None);
        assert_eq!(sample(Some(7.0), 50).error_rate, Some(1.0));
    }

    #[test]
    fn no_data_and_low_traffic_are_never_healthy() {
        let config = Config::seed(ServiceSpec::new("s", "http://127.0.0.1:8001"), "t");
        assert_eq!(classify(&sample(None, 500), &config), SampleClass::NoData);
        assert_eq!(
            classify(&sample(Some(0.0), 3), &config),
            SampleClass::TooFewRequests(3)
        );
        assert_eq!(
            classify(&sample(Some(0.0), 50), &config),
            SampleClass::Healthy(0.0)
        );
        assert_eq!(
            classify(&sample(Some(0.01), 50), &config),
            SampleClass::Unhealthy(0.01)
        );
    }

    #[test]
    fn a_gap_in_the_samples_breaks_the_recovery_streak() {
        let config = Config::short_windows(ServiceSpec::new("s", "http://127.0.0.1:8001"), "t");
        let mut signals = Signals::default();
        let healthy = sample(Some(0.0), 50);
        let at = |s: i64| DateTime::UNIX_EPOCH + fixloop_contract::chrono::TimeDelta::seconds(s);
        let second = Some(std::time::Duration::from_secs(1));
        signals.record(at(0), &healthy, &config, second);
        signals.record(at(1), &healthy, &config, second);
        assert_eq!(signals.gate(at(1), &config), Ok(()));
        assert!(signals.gate(at(7), &config).is_err(), "stale after 5 s");
        signals.record(at(60), &healthy, &config, second);
        let blocked = signals
            .gate(at(60), &config)
            .expect_err("one sample after a gap");
        assert!(blocked.contains("1 of 2"), "{blocked}");
        signals.record(at(61), &healthy, &config, second);
        assert_eq!(signals.gate(at(61), &config), Ok(()));
    }

    #[test]
    fn a_small_measurement_extends_then_ends_inconclusive() {
        let config = Config::short_windows(ServiceSpec::new("s", "http://127.0.0.1:8001"), "t");
        let mut signals = Signals::default();
        let at = |s: i64| DateTime::UNIX_EPOCH + fixloop_contract::chrono::TimeDelta::seconds(s);
        let age = |s: u64| Some(std::time::Duration::from_secs(s));
        let small = sample(Some(0.0), 2);
        let observed = signals.record(at(1), &small, &config, age(1));
        assert!(!observed.judged && !observed.inconclusive, "extends");
        assert_eq!(signals.inconclusive, 0);
        let observed = signals.record(at(5), &small, &config, age(5));
        assert!(observed.inconclusive, "the bound ends it");
        let blocked = signals.gate(at(5), &config).expect_err("never healthy");
        assert!(blocked.contains("inconclusive"), "{blocked}");
        assert!(blocked.contains("too few requests"), "{blocked}");
    }

    #[test]
    fn a_hot_measurement_needs_no_more_requests() {
        let config = Config::seed(ServiceSpec::new("s", "http://127.0.0.1:8001"), "t");
        // 3 failures of 3: even 17 more passing requests would leave 15%, above the 5% trigger.
        assert!(is_hot(&sample(Some(1.0), 3), &config));
        // 1 failure of 1: 5% of 20, not above the trigger.
        assert!(!is_hot(&sample(Some(1.0), 1), &config));
        assert!(is_hot(&sample(Some(0.2), 50), &config));
        assert!(!is_hot(&sample(None, 50), &config));
    }

    #[test]
    fn trigger_needs_min_samples_above_threshold_within_window() {
        let config = Config::seed(ServiceSpec::new("s", "http://127.0.0.1:8001"), "t");
        let mut signals = Signals::default();
        let t0 = DateTime::UNIX_EPOCH;
        let hot = sample(Some(0.2), 50);
        let at = |s: i64| t0 + fixloop_contract::chrono::TimeDelta::seconds(s);
        let age = Some(std::time::Duration::from_secs(3));
        assert!(!signals.record(at(0), &hot, &config, age).triggered);
        assert!(!signals.record(at(3), &hot, &config, age).triggered);
        assert!(signals.record(at(6), &hot, &config, age).triggered);
        // Ten minutes later the old samples left the 5-minute window.
        assert!(!signals.record(at(600), &hot, &config, age).triggered);
    }
}
