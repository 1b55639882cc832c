//! The engine's tunables ([`Config`]) and the defaults they start from, each defined once: the thresholds (ratios,
//! as the engine reasons; the wire says percent), the polling interval and the settings that follow it (a
//! confirmation read a third of an interval after a hot measurement, samples fresh for five intervals). Servers
//! take their defaults from here and never repeat the numbers.

use std::time::Duration;

use crate::remediation::RemediationSpec;
use crate::service::ServiceSpec;

/// The default trigger: an error ratio above this opens an incident (0.05 is 5%).
pub const DEFAULT_TRIGGER_ERROR_RATIO: f64 = 0.05;
/// The default recovery threshold: the signal gate holds below this error ratio (0.01 is 1%; lower than the
/// trigger: hysteresis).
pub const DEFAULT_RECOVERY_ERROR_RATIO: f64 = 0.01;
/// How often the engine reads the signals by default (the seed polls every 3 s).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(3);
/// How often the [`Config::short_windows`] preset reads the signals.
pub const SHORT_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// A sample stays fresh for the signal gate for this many polling intervals (at least): the one place the "five
/// polling intervals" rule is written.
pub const SIGNAL_MAX_AGE_POLL_INTERVALS: u32 = 5;
/// The confirmation read after a hot measurement comes this fraction of a polling interval later: a third.
pub const CONFIRM_DELAY_POLL_INTERVAL_DIVISOR: u32 = 3;

/// The confirmation delay that follows `poll_interval` (a third of it).
#[must_use]
pub fn confirm_delay_for(poll_interval: Duration) -> Duration {
    poll_interval / CONFIRM_DELAY_POLL_INTERVAL_DIVISOR
}

/// The sample freshness that follows `poll_interval` ([`SIGNAL_MAX_AGE_POLL_INTERVALS`] intervals).
#[must_use]
pub fn signal_max_age_for(poll_interval: Duration) -> Duration {
    poll_interval * SIGNAL_MAX_AGE_POLL_INTERVALS
}

/// Tunables of the engine. Every threshold is a ratio (0.05 is 5%), every duration a `std::time::Duration`; the
/// error rates the engine publishes (`SystemStatus.error_rate_5m`, the incident's signal) are in percent, the wire's
/// unit.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The watched service: its name, base URL, validation policy and journeys.
    pub service: ServiceSpec,
    /// Prefix of generated ids, so ids differ across processes (for example the start time in hex).
    pub id_prefix: String,
    /// Error rate above which an incident opens (default 0.05).
    pub trigger_error_rate: f64,
    /// Error rate below which the signal gate holds (default 0.01, lower than the trigger: hysteresis).
    pub recovery_error_rate: f64,
    /// Detection window; samples older than this are forgotten (default 5 minutes).
    pub detection_window: Duration,
    /// Samples within the window needed before the trigger fires (default 3).
    pub min_samples: u32,
    /// Consecutive healthy samples needed for the signal gate (default 3).
    pub recovery_samples: u32,
    /// Requests a sample must have observed to count as healthy (default 20).
    pub min_requests: u64,
    /// Period of automatic reruns while an incident is open (default 30 s).
    pub rerun_interval: Duration,
    /// After RECOVERED, a relapse within this window reopens the same incident (default 2 minutes).
    pub soak_window: Duration,
    /// After an incident closes, no new incident opens from polling for this long (default 1 minute).
    pub cooldown: Duration,
    /// Deadline of one context fetch (default 10 s; short windows: 3 s): a hung metrics source delays the plan by
    /// at most this much, after which the plan is made from what is known.
    pub context_deadline: Duration,
    /// Deadline of one plan request (default 30 s).
    pub plan_deadline: Duration,
    /// Total time the configured planner gets for an incident, across all its attempts, counted from the first
    /// request (default 60 s; short windows: 8 s). When it is spent the engine uses the rule planner's plan at once and
    /// notes why in the incident's timeline: a hung LLM never holds the loop.
    pub plan_budget: Duration,
    /// Deadline of a validation run (default 60 s).
    pub run_deadline: Duration,
    /// LLM attempts before falling back to the rule planner (default 3: the first try and two re-requests).
    pub max_plan_attempts: u32,
    /// How often the engine reads the signals ([`Effect::SampleSignals`](super::Effect::SampleSignals)) while nothing is suspicious (the seed polls
    /// every 3 s); while an incident is open it reads at least this often.
    pub poll_interval: Duration,
    /// After a hot measurement that does not open an incident yet (fewer than `min_samples` hot ones), the next
    /// read comes this soon instead of a full `poll_interval` later: adaptive polling confirms a breach early
    /// (default a third of the polling interval: 1 s; short windows: 333 ms).
    pub confirm_delay: Duration,
    /// Longest measurement: a read with too few requests (or none) extends the measurement (the next read covers
    /// it from its start) until it has `min_requests`, up to this long; then it ends *inconclusive* (default 30 s;
    /// short windows: 5 s). A low-traffic service is judged over a longer measurement rather than starved.
    pub max_measurement: Duration,
    /// Consecutive inconclusive measurements (no traffic, too few requests, a failed read) after which an open
    /// incident records that it needs a human (default 10). It never turns RECOVERED on missing data either way.
    pub inconclusive_limit: u32,
    /// A sample older than this no longer counts for the signal gate (default [`SIGNAL_MAX_AGE_POLL_INTERVALS`] polling intervals: 15 s).
    pub signal_max_age: Duration,
    /// Consecutive failed signal reads after which the engine probes the service itself (default 3): blindness
    /// is never health.
    pub blind_after: u32,
    /// The service's remediation: actions, strategies, mode and limits (default: no strategy, nothing proposed).
    pub remediation: RemediationSpec,
}

impl Config {
    /// The seed's defaults for `service`: a 5-minute detection window polled every 3 s, trigger above 5% over at
    /// least 3 samples, recovery below 1% for 3 consecutive samples of at least 20 requests, reruns every 30 s, a
    /// 2-minute soak, a 1-minute cooldown, a 10 s context deadline, 30 s plan requests within a 60 s planning budget,
    /// a 60 s run deadline, and 3 LLM attempts.
    #[must_use]
    pub fn seed(service: ServiceSpec, id_prefix: &str) -> Self {
        Self {
            service,
            id_prefix: id_prefix.to_owned(),
            trigger_error_rate: DEFAULT_TRIGGER_ERROR_RATIO,
            recovery_error_rate: DEFAULT_RECOVERY_ERROR_RATIO,
            detection_window: Duration::from_secs(5 * 60),
            min_samples: 3,
            recovery_samples: 3,
            min_requests: 20,
            rerun_interval: Duration::from_secs(30),
            soak_window: Duration::from_secs(2 * 60),
            cooldown: Duration::from_secs(60),
            context_deadline: Duration::from_secs(10),
            plan_deadline: Duration::from_secs(30),
            plan_budget: Duration::from_secs(60),
            run_deadline: Duration::from_secs(60),
            max_plan_attempts: 3,
            poll_interval: DEFAULT_POLL_INTERVAL,
            confirm_delay: confirm_delay_for(DEFAULT_POLL_INTERVAL),
            max_measurement: Duration::from_secs(30),
            inconclusive_limit: 10,
            signal_max_age: signal_max_age_for(DEFAULT_POLL_INTERVAL),
            blind_after: 3,
            remediation: RemediationSpec::default(),
        }
    }

    /// The short-windows preset, for a live demonstration or a quick trial: polling every 1 s over a 10 s
    /// detection window, trigger after 2 hot samples, recovery after 2 healthy samples of at least 5 requests, reruns every 5 s, a 15 s soak, a 10 s
    /// cooldown, a 3 s context deadline, an 8 s planning budget (then the rule plan at once: a demo never waits on a
    /// hung LLM), a 30 s run deadline (servers derive theirs from the runner), signals stale after 5 s.
    /// Thresholds are the seed's (5% trigger, 1% recovery).
    #[must_use]
    pub fn short_windows(service: ServiceSpec, id_prefix: &str) -> Self {
        Self {
            detection_window: Duration::from_secs(10),
            min_samples: 2,
            recovery_samples: 2,
            min_requests: 5,
            rerun_interval: Duration::from_secs(5),
            soak_window: Duration::from_secs(15),
            cooldown: Duration::from_secs(10),
            context_deadline: Duration::from_secs(3),
            plan_deadline: Duration::from_secs(30),
            plan_budget: Duration::from_secs(8),
            run_deadline: Duration::from_secs(30),
            signal_max_age: signal_max_age_for(SHORT_POLL_INTERVAL),
            max_measurement: Duration::from_secs(5),
            ..Self::seed(service, id_prefix)
        }
        .with_poll_interval(SHORT_POLL_INTERVAL)
    }

    /// This configuration polling every `interval`, with the settings that follow it: a confirmation read a third
    /// of an interval after a hot measurement, and samples fresh for at least five intervals. The one owner of
    /// these derived defaults (servers call it for a tuned interval).
    #[must_use]
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self.confirm_delay = confirm_delay_for(interval);
        self.signal_max_age = self.signal_max_age.max(signal_max_age_for(interval));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> ServiceSpec {
        ServiceSpec::new("orders", "http://127.0.0.1:9000")
    }

    #[test]
    fn the_presets_follow_the_polling_rules() {
        let seed = Config::seed(service(), "t");
        assert_eq!(seed.poll_interval, Duration::from_secs(3));
        assert_eq!(seed.confirm_delay, Duration::from_secs(1));
        assert_eq!(seed.signal_max_age, Duration::from_secs(15));
        assert_eq!(seed.trigger_error_rate, 0.05);
        assert_eq!(seed.recovery_error_rate, 0.01);
        let short = Config::short_windows(service(), "t");
        assert_eq!(short.poll_interval, SHORT_POLL_INTERVAL);
        assert_eq!(short.confirm_delay, Duration::from_secs(1) / 3);
        assert_eq!(short.signal_max_age, Duration::from_secs(5));
        assert_eq!(short.trigger_error_rate, seed.trigger_error_rate);
    }

    #[test]
    fn a_tuned_interval_brings_its_confirmation_delay_and_at_least_five_intervals_of_freshness() {
        let slow = Config::seed(service(), "t").with_poll_interval(Duration::from_secs(10));
        assert_eq!(slow.confirm_delay, Duration::from_secs(10) / 3);
        assert_eq!(slow.signal_max_age, Duration::from_secs(50));
        // A faster interval never shortens the freshness below the configuration's own.
        let fast = Config::seed(service(), "t").with_poll_interval(Duration::from_millis(500));
        assert_eq!(fast.signal_max_age, Duration::from_secs(15));
    }
}
