//! The one place where configuration reaches the engine's `Config`: the mode's defaults (the core's `Config`
//! constructors), then the environment's tunables, then the profile's thresholds ([`engine_config`]), and the run
//! deadline fitted to the test runner ([`follow_runner`], [`check_run_deadline`]).

use std::time::Duration;

use chrono::Utc;
use fixloop_adapters::RunnerExpectations;
use fixloop_core::engine::Config as EngineConfig;
use fixloop_core::remediation::Chooser;

use crate::config::Config;
use crate::profile::ServiceProfile;

/// The timing profile of the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `fixloop demo`: 1 s polling and a 10 s detection window, so the loop completes in seconds.
    Demo,
    /// `fixloop serve`: the seed's 3 s polling and 5 minute window.
    Serve,
}

/// A run deadline the test runner cannot work with (shorter than its longest run).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DeadlineError(String);

/// The engine configuration of a mode for `service`: the mode's defaults (the core's `Config` constructors), the
/// environment's tunables, then the profile's thresholds (a profile's own setting wins).
#[must_use]
pub fn engine_config(mode: Mode, config: &Config, service: &ServiceProfile) -> EngineConfig {
    let id_prefix = format!("{:x}", Utc::now().timestamp() & 0xff_ffff);
    let spec = service.spec.clone();
    let mut engine = match mode {
        Mode::Demo => EngineConfig::short_windows(spec, &id_prefix),
        Mode::Serve => EngineConfig::seed(spec, &id_prefix),
    };
    engine.remediation = service.remediation.clone();
    let tuning = &config.tuning;
    if let Some(mode) = tuning.remediation_mode {
        engine.remediation.mode = mode;
    }
    if let Some(chooser) = tuning.remediation_chooser {
        engine.remediation.chooser = chooser;
    }
    engine.remediation.chooser =
        effective_chooser(&service.spec.name, config, engine.remediation.chooser);
    if let Some(rate) = tuning.trigger_error_rate {
        engine.trigger_error_rate = rate;
    }
    if let Some(rate) = tuning.recovery_error_rate {
        engine.recovery_error_rate = rate;
    }
    if let Some(window) = tuning.detection_window {
        engine.detection_window = window;
    }
    if let Some(interval) = tuning.rerun_interval {
        engine.rerun_interval = interval;
    }
    if let Some(deadline) = tuning.run_deadline {
        engine.run_deadline = deadline;
    }
    if let Some(budget) = tuning.plan_budget {
        engine.plan_budget = budget;
    }
    if let Some(interval) = tuning.poll_interval {
        // The settings that follow the interval (confirmation delay, sample freshness) are the core's to derive.
        engine = engine.with_poll_interval(interval);
    }
    if let Some(delay) = tuning.confirm_delay {
        engine.confirm_delay = delay;
    }
    if let Some(limit) = tuning.inconclusive_limit {
        engine.inconclusive_limit = limit;
    }
    service.apply_thresholds(&mut engine);
    engine
}

/// Who picks `service`'s remediation steps: the model only when a MiniMax key is configured (else the rules, and a
/// warning says so).
fn effective_chooser(service: &str, config: &Config, chooser: Chooser) -> Chooser {
    if chooser == Chooser::Model && config.minimax.is_none() {
        tracing::warn!(
            %service,
            "remediation chooser is `model` but MINIMAX_API_KEY is not set: the rules pick every step"
        );
        return Chooser::Rules;
    }
    chooser
}

/// The run deadline a runner needs: its longest run plus a margin of 10%, at least 5 s (the runner's own timeouts end
/// its run first; the engine's deadline only catches a runner that hangs beyond them).
fn needed_run_deadline(runner: RunnerExpectations) -> Duration {
    runner.max_run_duration + (runner.max_run_duration / 10).max(Duration::from_secs(5))
}

/// The runner owns how long its runs take: unless the run deadline was set explicitly (`explicit`), it becomes at
/// least the runner's longest run plus a margin (never shorter than the mode's default).
pub fn follow_runner(engine: &mut EngineConfig, explicit: bool, runner: RunnerExpectations) {
    if !explicit {
        engine.run_deadline = engine.run_deadline.max(needed_run_deadline(runner));
    }
}

/// Refuses a run deadline shorter than the runner's longest run: every run would be cancelled before it could
/// finish (for example TestSprite's 10-20 minute cycles under a 60 s deadline).
///
/// # Errors
///
/// [`DeadlineError`] naming the runner, both durations and the setting to change.
pub fn check_run_deadline(
    engine: &EngineConfig,
    runner: RunnerExpectations,
    runner_name: &str,
) -> Result<(), DeadlineError> {
    if engine.run_deadline >= runner.max_run_duration {
        return Ok(());
    }
    Err(DeadlineError(format!(
        "service {}: the run deadline of {} s is shorter than the longest run of the test runner ({runner_name}: {} s), \
         so every run would be cancelled before it could finish; set FIXLOOP_RUN_DEADLINE_SECS to at least {} or \
         leave it unset (the deadline then follows the runner)",
        engine.service.name,
        engine.run_deadline.as_secs_f64(),
        runner.max_run_duration.as_secs_f64(),
        needed_run_deadline(runner).as_secs_f64().ceil(),
    )))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use fixloop_adapters::ProgressModel;

    use super::*;
    use crate::profile::demo_profile;

    /// TestSprite's declared runs: a 60 s handshake and a 20-minute run call.
    const TESTSPRITE: RunnerExpectations = RunnerExpectations {
        max_run_duration: Duration::from_secs(21 * 60),
        progress: ProgressModel::PerTest,
    };

    fn engine(mode: Mode) -> EngineConfig {
        let spec = demo_profile("http://127.0.0.1:8001").spec;
        match mode {
            Mode::Demo => EngineConfig::short_windows(spec, "t"),
            Mode::Serve => EngineConfig::seed(spec, "t"),
        }
    }

    #[test]
    fn the_remediation_mode_of_the_environment_wins_over_the_profiles() {
        use fixloop_core::remediation::RemediationMode;
        let mut service = demo_profile("http://127.0.0.1:8001");
        service.remediation.mode = RemediationMode::Auto;
        let mut config = Config::from_env_map(&HashMap::new()).unwrap();
        let engine = engine_config(Mode::Serve, &config, &service);
        assert_eq!(
            engine.remediation.mode,
            RemediationMode::Auto,
            "the profile's"
        );
        config.tuning.remediation_mode = Some(RemediationMode::MonitorOnly);
        let engine = engine_config(Mode::Serve, &config, &service);
        assert_eq!(
            engine.remediation.mode,
            RemediationMode::MonitorOnly,
            "the environment's, for every service"
        );
    }

    #[test]
    fn the_model_chooses_only_with_a_minimax_key_and_the_environment_wins() {
        let mut service = demo_profile("http://127.0.0.1:8001");
        service.remediation.chooser = Chooser::Model;
        let mut config = Config::from_env_map(&HashMap::new()).unwrap();
        let engine = engine_config(Mode::Serve, &config, &service);
        assert_eq!(
            engine.remediation.chooser,
            Chooser::Rules,
            "no key: the rules"
        );
        config = Config::from_env_map(&HashMap::from([(
            "MINIMAX_API_KEY".to_owned(),
            "mm-key".to_owned(),
        )]))
        .unwrap();
        let engine = engine_config(Mode::Serve, &config, &service);
        assert_eq!(engine.remediation.chooser, Chooser::Model);
        config.tuning.remediation_chooser = Some(Chooser::Rules);
        let engine = engine_config(Mode::Serve, &config, &service);
        assert_eq!(
            engine.remediation.chooser,
            Chooser::Rules,
            "the environment's"
        );
    }

    /// Regression: a 60 s (serve) or 30 s (demo) run deadline cancelled every TestSprite run.
    #[test]
    fn an_unset_run_deadline_follows_the_runner_and_then_fits_it() {
        for mode in [Mode::Demo, Mode::Serve] {
            let mut config = engine(mode);
            follow_runner(&mut config, false, TESTSPRITE);
            assert_eq!(config.run_deadline, Duration::from_secs(21 * 60 + 126));
            check_run_deadline(&config, TESTSPRITE, "TestSprite").expect("it fits");
        }
    }

    #[test]
    fn a_quick_runner_keeps_the_modes_deadline() {
        let quick = RunnerExpectations {
            max_run_duration: Duration::from_secs(6),
            progress: ProgressModel::PerTest,
        };
        let mut config = engine(Mode::Serve);
        follow_runner(&mut config, false, quick);
        assert_eq!(config.run_deadline, Duration::from_secs(60));
    }

    #[test]
    fn an_explicit_run_deadline_shorter_than_the_runner_is_refused_with_what_to_do() {
        let mut config = engine(Mode::Serve);
        config.run_deadline = Duration::from_secs(60);
        follow_runner(&mut config, true, TESTSPRITE);
        assert_eq!(
            config.run_deadline,
            Duration::from_secs(60),
            "explicit wins"
        );
        let error = check_run_deadline(&config, TESTSPRITE, "TestSprite").unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("run deadline of 60 s is shorter than the longest run of the test runner (TestSprite: 1260 s)")
                && message.contains("FIXLOOP_RUN_DEADLINE_SECS to at least 1386"),
            "{message}"
        );
        // Long enough is accepted as it is.
        config.run_deadline = Duration::from_secs(1300);
        check_run_deadline(&config, TESTSPRITE, "TestSprite").expect("it fits");
    }

    #[test]
    fn the_environment_sets_the_run_deadline_and_the_plan_budget() {
        let env = HashMap::from([
            ("FIXLOOP_RUN_DEADLINE_SECS".to_owned(), "1500".to_owned()),
            ("FIXLOOP_PLAN_BUDGET_SECS".to_owned(), "5".to_owned()),
        ]);
        let config = Config::from_env_map(&env).unwrap();
        let service = demo_profile("http://127.0.0.1:8001");
        let engine = engine_config(Mode::Demo, &config, &service);
        assert_eq!(engine.run_deadline, Duration::from_secs(1500));
        assert_eq!(engine.plan_budget, Duration::from_secs(5));
    }
}
