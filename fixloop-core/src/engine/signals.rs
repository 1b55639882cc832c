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

/// How one sample counts for detection and for the recovery gate.
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

/// What recording a sample found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Observed {
    /// The trigger condition holds: this sample is above the trigger and enough such samples are in the window.
    pub(super) triggered: bool,
    /// This sample is healthy and the previous one was not: the signals improved.
    pub(super) improved: bool,
}

/// The signal state the engine keeps across phases.
#[derive(Debug, Clone, Default)]
pub(super) struct Signals {
    /// Receive time of each sample in the detection window, and whether it was above the trigger.
    pub(super) window: VecDeque<(DateTime<Utc>, bool)>,
    /// Consecutive healthy samples, most recent last.
    pub(super) streak: u32,
    /// The latest sample's receive time and class.
    pub(super) last: Option<(DateTime<Utc>, SampleClass)>,
    /// The latest sample's top error.
    pub(super) top_error: Option<String>,
}

/// Most samples the window keeps, whatever the window's duration (bounds memory under a flood of samples).
const MAX_WINDOW_SAMPLES: usize = 4096;

impl Signals {
    /// Records a sample received at `now`.
    pub(super) fn record(
        &mut self,
        now: DateTime<Utc>,
        sample: &CleanSample,
        config: &Config,
    ) -> Observed {
        let class = classify(sample, config);
        let hot = sample.requests >= config.min_requests
            && sample
                .error_rate
                .is_some_and(|rate| rate > config.trigger_error_rate);
        self.window
            .retain(|(at, _)| after(*at, config.detection_window) >= now);
        self.window.push_back((now, hot));
        while self.window.len() > MAX_WINDOW_SAMPLES {
            self.window.pop_front();
        }
        let hot_in_window = self.window.iter().filter(|(_, hot)| *hot).count();
        let needed = usize::try_from(config.min_samples.max(1)).unwrap_or(usize::MAX);
        let healthy = matches!(class, SampleClass::Healthy(_));
        let was_healthy = self
            .last
            .map(|(_, previous)| matches!(previous, SampleClass::Healthy(_)));
        // A gap longer than `signal_max_age` breaks the streak: the samples around it are not consecutive.
        let gap = self
            .last
            .is_some_and(|(received_at, _)| after(received_at, config.signal_max_age) < now);
        self.streak = match (healthy, gap) {
            (true, false) => self.streak.saturating_add(1),
            (true, true) => 1,
            (false, _) => 0,
        };
        self.last = Some((now, class));
        self.top_error.clone_from(&sample.top_error);
        Observed {
            triggered: hot && hot_in_window >= needed,
            improved: healthy && was_healthy == Some(false),
        }
    }

    /// Forgets the detection window, so the next trigger needs `min_samples` fresh samples above the threshold.
    pub(super) fn clear_window(&mut self) {
        self.window.clear();
    }

    /// The latest sample's top error signature.
    pub(super) fn top_error(&self) -> Option<&str> {
        self.top_error.as_deref()
    }

    /// Whether the signal gate holds at `now`, or why not.
    pub(super) fn gate(&self, now: DateTime<Utc>, config: &Config) -> Result<(), String> {
        let Some((received_at, class)) = self.last else {
            return Err("signals unknown: no sample received yet".to_owned());
        };
        if after(received_at, config.signal_max_age) < now {
            let age = (now - received_at).num_seconds();
            return Err(format!("signals stale: last sample is {age} s old"));
        }
        let needed = config.recovery_samples.max(1);
        if self.streak >= needed {
            return Ok(());
        }
        let last = match class {
            SampleClass::NoData => "no traffic (no data is never recovery)".to_owned(),
            SampleClass::TooFewRequests(requests) => format!(
                "only {requests} requests, at least {} needed",
                config.min_requests
            ),
            SampleClass::Unhealthy(rate) => format!(
                "error rate {} is not below {}",
                percent(rate),
                percent(config.recovery_error_rate)
            ),
            SampleClass::Healthy(rate) => format!("error rate {}", percent(rate)),
        };
        Err(format!(
            "signals not healthy yet: {} of {needed} consecutive healthy samples (last sample: {last})",
            self.streak
        ))
    }
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
        let config = Config::demo(ServiceSpec::new("s", "http://127.0.0.1:8001"), "t");
        let mut signals = Signals::default();
        let healthy = sample(Some(0.0), 50);
        let at = |s: i64| DateTime::UNIX_EPOCH + fixloop_contract::chrono::TimeDelta::seconds(s);
        signals.record(at(0), &healthy, &config);
        signals.record(at(1), &healthy, &config);
        assert_eq!(signals.gate(at(1), &config), Ok(()));
        assert!(signals.gate(at(7), &config).is_err(), "stale after 5 s");
        signals.record(at(60), &healthy, &config);
        let blocked = signals
            .gate(at(60), &config)
            .expect_err("one sample after a gap");
        assert!(blocked.contains("1 of 2"), "{blocked}");
        signals.record(at(61), &healthy, &config);
        assert_eq!(signals.gate(at(61), &config), Ok(()));
    }

    #[test]
    fn trigger_needs_min_samples_above_threshold_within_window() {
        let config = Config::seed(ServiceSpec::new("s", "http://127.0.0.1:8001"), "t");
        let mut signals = Signals::default();
        let t0 = DateTime::UNIX_EPOCH;
        let hot = sample(Some(0.2), 50);
        let at = |s: i64| t0 + fixloop_contract::chrono::TimeDelta::seconds(s);
        assert!(!signals.record(at(0), &hot, &config).triggered);
        assert!(!signals.record(at(3), &hot, &config).triggered);
        assert!(signals.record(at(6), &hot, &config).triggered);
        // Ten minutes later the old samples left the 5-minute window.
        assert!(!signals.record(at(600), &hot, &config).triggered);
    }
}
