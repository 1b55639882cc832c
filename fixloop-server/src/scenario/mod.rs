//! Scenarios: deterministic, scripted incident timelines that `fixloop demo --scenario NAME|FILE [--speed X]`
//! plays through the real server, driver and engine, so a frontend can be built and screenshotted in every state
//! without waiting for real detection.
//!
//! Only the ports are fakes ([`fixloop_adapters::fake`]), scripted by the scenario: the signal readings over
//! time, the configured planner's answers, and the test runner's verdicts, delays and hangs. The driver and the
//! engine run unchanged, with the `fixloop demo` timing (or the scenario's own) divided by the speed, so a
//! two-minute story plays in seconds at `--speed 10`. The demo shop still runs (its bug switch works), but no
//! traffic is generated and its metrics are not read: the incident comes from the script.
//!
//! A scenario is a JSON file (`scenarios/*.json`, format in `scenarios/scenario.schema.json`). JSON rather than
//! TOML because the schema is JSON Schema: the document is validated exactly as written, with no TOML-to-JSON
//! conversion in between, and an editor that reads the `$schema` key completes and checks it while it is typed;
//! it is also what a frontend team writes every day. Loading validates the document against the committed schema
//! (every problem, with its JSON pointer), reads it with serde (`deny_unknown_fields`), then checks what a schema
//! cannot say (steps in time order, test ids that exist). [`BUILTINS`] are embedded in the binary.

pub mod file;
mod player;

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::OnceLock;
use std::time::Duration;

use fixloop_core::engine::Config as EngineConfig;
use serde_json::Value;

pub use player::{RunningScenario, ScenarioFakes, ScenarioOptions, start_scenario};

use crate::profile::demo_profile;
use crate::runtime::driver::DriverConfig;
use file::{ScenarioFile, SignalsFile};

/// The committed JSON schema of scenario files.
pub const SCHEMA: &str = include_str!("../../scenarios/scenario.schema.json");

/// The built-in scenarios: name and embedded file.
pub const BUILTINS: [(&str, &str); 6] = [
    (
        "outage-recovery",
        include_str!("../../scenarios/outage-recovery.json"),
    ),
    ("flapping", include_str!("../../scenarios/flapping.json")),
    ("relapse", include_str!("../../scenarios/relapse.json")),
    (
        "plan-rejected-twice",
        include_str!("../../scenarios/plan-rejected-twice.json"),
    ),
    (
        "run-timeout",
        include_str!("../../scenarios/run-timeout.json"),
    ),
    (
        "signals-degraded",
        include_str!("../../scenarios/signals-degraded.json"),
    ),
];

/// The fastest a scenario may play: beyond it the scaled polling interval (10 ms at the default 1 s) is shorter
/// than the scheduling noise of a busy machine, and the story stops being the one written.
pub const MAX_SPEED: f64 = 100.0;
/// The slowest speed: a hundredth of real time (a one-day step then takes 100 days, still a valid duration; a
/// slower factor such as `1e-20` would overflow every timing).
pub const MIN_SPEED: f64 = 0.01;

/// A loaded, checked scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Where it came from: `built-in NAME` or the file's path.
    pub origin: String,
    /// The document.
    pub file: ScenarioFile,
}

/// How much faster than written a scenario plays: every scripted time and every engine timing is divided by it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Speed(f64);

/// Why a scenario or a speed was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// Neither a built-in name nor an existing file.
    #[error(
        "unknown scenario {name:?}: the built-ins are {}; or give the path of a .json scenario file",
        builtin_names().collect::<Vec<_>>().join(", ")
    )]
    UnknownName {
        /// What was asked for.
        name: String,
    },
    /// The file could not be read.
    #[error("cannot read the scenario {path}")]
    Read {
        /// The path.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The document is not a valid scenario.
    #[error("{}", Problems { origin, problems })]
    Invalid {
        /// Where it came from.
        origin: String,
        /// Every problem found, each `pointer: message`.
        problems: Vec<String>,
    },
    /// The speed is not a number in `[MIN_SPEED, MAX_SPEED]`.
    #[error("--speed must be a number from {MIN_SPEED} to {MAX_SPEED}, got {0}")]
    Speed(String),
}

impl Scenario {
    /// A built-in scenario by name.
    #[must_use]
    pub fn builtin(name: &str) -> Option<Self> {
        let (_, text) = BUILTINS.iter().find(|(builtin, _)| *builtin == name)?;
        // The built-ins are checked by a unit test; a broken one is a build defect, not an input error.
        Some(
            Self::parse(&format!("built-in {name}"), text)
                .unwrap_or_else(|error| unreachable!("the built-in scenarios are valid: {error}")),
        )
    }

    /// A built-in by name, else the scenario file at that path.
    ///
    /// # Errors
    ///
    /// [`ScenarioError::UnknownName`] when `name_or_path` is neither a built-in nor an existing file,
    /// [`ScenarioError::Read`] when the file cannot be read, [`ScenarioError::Invalid`] when it is not a valid
    /// scenario.
    pub fn load(name_or_path: &str) -> Result<Self, ScenarioError> {
        if let Some(scenario) = Self::builtin(name_or_path) {
            return Ok(scenario);
        }
        let path = Path::new(name_or_path);
        if !path.exists() {
            return Err(ScenarioError::UnknownName {
                name: name_or_path.to_owned(),
            });
        }
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&path.display().to_string(), &text)
    }

    /// Parses and checks a scenario document; `origin` names it in errors.
    ///
    /// # Errors
    ///
    /// [`ScenarioError::Invalid`] with every problem: JSON syntax, then every schema violation, then (for a
    /// document the schema accepts) steps out of time order, an end before the last step, and test ids the demo
    /// profile does not have.
    pub fn parse(origin: &str, text: &str) -> Result<Self, ScenarioError> {
        let invalid = |problems: Vec<String>| ScenarioError::Invalid {
            origin: origin.to_owned(),
            problems,
        };
        let document: Value = serde_json::from_str(text)
            .map_err(|error| invalid(vec![format!("not JSON: {error}")]))?;
        let problems: Vec<String> = schema_validator()
            .iter_errors(&document)
            .map(|error| {
                let pointer = error.instance_path().to_string();
                let pointer = if pointer.is_empty() { "/" } else { &pointer };
                format!("{pointer}: {error}")
            })
            .collect();
        if !problems.is_empty() {
            return Err(invalid(problems));
        }
        let file: ScenarioFile =
            serde_json::from_value(document).map_err(|error| invalid(vec![error.to_string()]))?;
        let problems = check(&file);
        if !problems.is_empty() {
            return Err(invalid(problems));
        }
        Ok(Self {
            origin: origin.to_owned(),
            file,
        })
    }

    /// The engine and driver settings of this scenario at `speed`: the `fixloop demo` engine settings for the
    /// service and id prefix already in `driver`, the scenario's overrides, then every duration divided by the
    /// speed. The environment's tunables are ignored on purpose: a scenario plays the same everywhere.
    pub fn tune(&self, driver: &mut DriverConfig, speed: Speed) {
        let overrides = &self.file.engine;
        let mut engine =
            EngineConfig::short_windows(driver.engine.service.clone(), &driver.engine.id_prefix);
        let secs = Duration::from_secs_f64;
        if let Some(value) = overrides.poll_interval_secs {
            // The settings that follow the interval (confirmation delay, sample freshness) are the core's to derive.
            engine = engine.with_poll_interval(secs(value));
        }
        let durations = [
            (
                &mut engine.detection_window,
                overrides.detection_window_secs,
            ),
            (&mut engine.rerun_interval, overrides.rerun_interval_secs),
            (&mut engine.soak_window, overrides.soak_window_secs),
            (&mut engine.cooldown, overrides.cooldown_secs),
            (&mut engine.plan_deadline, overrides.plan_deadline_secs),
            (&mut engine.run_deadline, overrides.run_deadline_secs),
        ];
        for (setting, value) in durations {
            if let Some(value) = value {
                *setting = secs(value);
            }
        }
        if let Some(attempts) = overrides.max_plan_attempts {
            engine.max_plan_attempts = attempts;
        }
        if let Some(samples) = overrides.min_samples {
            engine.min_samples = samples;
        }
        if let Some(samples) = overrides.recovery_samples {
            engine.recovery_samples = samples;
        }
        for setting in [
            &mut engine.poll_interval,
            &mut engine.confirm_delay,
            &mut engine.max_measurement,
            &mut engine.signal_max_age,
            &mut engine.detection_window,
            &mut engine.rerun_interval,
            &mut engine.soak_window,
            &mut engine.cooldown,
            &mut engine.plan_deadline,
            &mut engine.run_deadline,
        ] {
            *setting = speed.scale(*setting);
        }
        driver.signal_timeout = speed.scale(driver.signal_timeout);
        driver.engine = engine;
    }
}

impl Speed {
    /// Real time.
    pub const REAL_TIME: Self = Self(1.0);

    /// A speed of `factor`.
    ///
    /// # Errors
    ///
    /// [`ScenarioError::Speed`] unless `factor` is a number from [`MIN_SPEED`] to [`MAX_SPEED`] (NaN and the
    /// infinities are not).
    pub fn new(factor: f64) -> Result<Self, ScenarioError> {
        if factor.is_finite() && (MIN_SPEED..=MAX_SPEED).contains(&factor) {
            Ok(Self(factor))
        } else {
            Err(ScenarioError::Speed(factor.to_string()))
        }
    }

    /// The factor.
    #[must_use]
    pub const fn factor(self) -> f64 {
        self.0
    }

    /// `duration` of the story, in real time (saturating at [`Duration::MAX`], which the bounds of the speed and of
    /// the story's durations never reach).
    #[must_use]
    pub fn scale(self, duration: Duration) -> Duration {
        Duration::try_from_secs_f64(duration.as_secs_f64() / self.0).unwrap_or(Duration::MAX)
    }

    /// `secs` seconds of the story, in real time (the schema bounds every duration to `0..=86400`).
    #[must_use]
    pub fn secs(self, secs: f64) -> Duration {
        self.scale(Duration::from_secs_f64(secs.clamp(0.0, 86_400.0)))
    }
}

impl Default for Speed {
    fn default() -> Self {
        Self::REAL_TIME
    }
}

impl FromStr for Speed {
    type Err = ScenarioError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let factor: f64 = text
            .trim()
            .parse()
            .map_err(|_| ScenarioError::Speed(format!("{text:?}")))?;
        Self::new(factor)
    }
}

impl fmt::Display for Speed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "x{}", self.0)
    }
}

/// The names of the built-in scenarios.
pub fn builtin_names() -> impl Iterator<Item = &'static str> {
    BUILTINS.iter().map(|(name, _)| *name)
}

/// The validator of [`SCHEMA`], built once.
fn schema_validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        // The committed schema is checked by a unit test; a broken one is a build defect, not an input error.
        let schema: Value = serde_json::from_str(SCHEMA)
            .unwrap_or_else(|error| unreachable!("the scenario schema is JSON: {error}"));
        jsonschema::draft202012::options()
            .build(&schema)
            .unwrap_or_else(|error| unreachable!("the scenario schema is a valid schema: {error}"))
    })
}

/// What the schema cannot say: steps in time order, the end after the last step, forced failures of tests that
/// exist (the demo profile's journey ids, which are the rule plan's test ids).
fn check(file: &ScenarioFile) -> Vec<String> {
    let mut problems = Vec::new();
    for (index, pair) in file.steps.windows(2).enumerate() {
        if pair[1].at_secs < pair[0].at_secs {
            problems.push(format!(
                "/steps/{}/at_secs: {} is before the previous step's {}; steps are in time order",
                index + 1,
                pair[1].at_secs,
                pair[0].at_secs
            ));
        }
    }
    let last = file
        .steps
        .iter()
        .map(|step| step.at_secs)
        .fold(0.0, f64::max);
    if let Some(end) = file.end_secs.filter(|end| *end < last) {
        problems.push(format!("/end_secs: {end} is before the last step ({last})"));
    }
    let journeys: Vec<String> = demo_profile("http://localhost")
        .spec
        .journeys
        .into_iter()
        .map(|journey| journey.id)
        .collect();
    for (index, step) in file.steps.iter().enumerate() {
        for test_id in step.fail.iter().flat_map(|fail| fail.keys()) {
            if !journeys.contains(test_id) {
                problems.push(format!(
                    "/steps/{index}/fail/{test_id}: the demo profile has no test with this id (it has {})",
                    journeys.join(", ")
                ));
            }
        }
        if let Some(SignalsFile::Cycle(samples)) = &step.signals
            && samples.is_empty()
        {
            problems.push(format!("/steps/{index}/signals: an empty list"));
        }
    }
    problems
}

/// An origin and its problems, one per line, as `fixloop profile check` prints them.
struct Problems<'a> {
    origin: &'a str,
    problems: &'a [String],
}

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.problems.len();
        write!(
            f,
            "{}: not a valid scenario ({count} problem{})",
            self.origin,
            if count == 1 { "" } else { "s" }
        )?;
        for problem in self.problems {
            write!(f, "\n  {problem}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_is_a_valid_draft_2020_12_schema() {
        let schema: Value = serde_json::from_str(SCHEMA).expect("the schema is JSON");
        assert!(jsonschema::meta::is_valid(&schema));
    }

    #[test]
    fn every_builtin_passes_the_schema_and_the_reader() {
        for (name, text) in BUILTINS {
            let document: Value = serde_json::from_str(text).expect("a built-in is JSON");
            let errors: Vec<String> = schema_validator()
                .iter_errors(&document)
                .map(|error| error.to_string())
                .collect();
            assert!(errors.is_empty(), "{name}: {errors:?}");
            let scenario = Scenario::parse(name, text).unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(scenario.file.name, name, "a built-in is named as its file");
            assert!(Scenario::builtin(name).is_some());
        }
    }

    fn problems_of(text: &str) -> Vec<String> {
        match Scenario::parse("broken.json", text) {
            Err(ScenarioError::Invalid { origin, problems }) => {
                assert_eq!(origin, "broken.json");
                problems
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn schema_violations_are_all_reported_with_their_pointer() {
        let problems = problems_of(
            r#"{"name": "x", "description": "d", "colour": 1,
                "steps": [{"at_secs": -1}, {"at_secs": 2, "signals": "sunny"}]}"#,
        );
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("/: ") && p.contains("colour")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.starts_with("/steps/0/at_secs: ")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.starts_with("/steps/1/signals: ")),
            "{problems:?}"
        );
    }

    #[test]
    fn steps_out_of_order_and_unknown_test_ids_are_refused() {
        let problems = problems_of(
            r#"{"name": "x", "description": "d", "end_secs": 1,
                "steps": [{"at_secs": 5}, {"at_secs": 2, "fail": {"t9-nope": "boom"}}]}"#,
        );
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(
            problems[0].starts_with("/steps/1/at_secs: 2 is before"),
            "{problems:?}"
        );
        assert!(problems[1].starts_with("/end_secs: "), "{problems:?}");
        assert!(
            problems[2].starts_with("/steps/1/fail/t9-nope: "),
            "{problems:?}"
        );
        assert!(problems[2].contains("t1-checkout-valid"), "{problems:?}");
    }

    #[test]
    fn not_json_is_refused_with_the_origin() {
        let error = Scenario::parse("broken.json", "{").unwrap_err().to_string();
        assert!(
            error.starts_with("broken.json: not a valid scenario (1 problem)"),
            "{error}"
        );
        assert!(error.contains("not JSON"), "{error}");
    }

    #[test]
    fn unknown_names_list_the_builtins() {
        let error = Scenario::load("no-such-scenario").unwrap_err().to_string();
        assert!(
            error.contains("unknown scenario \"no-such-scenario\""),
            "{error}"
        );
        assert!(
            error.contains("outage-recovery, flapping, relapse"),
            "{error}"
        );
    }

    #[test]
    fn nonsense_speeds_are_refused() {
        for text in [
            "0", "-1", "NaN", "inf", "-inf", "101", "fast", "", "1e-20", "0.001", "1e308", "-0",
        ] {
            let error = text.parse::<Speed>().expect_err(text).to_string();
            assert!(
                error.starts_with("--speed must be a number from 0.01 to 100"),
                "{text}: {error}"
            );
        }
        assert_eq!("0.01".parse::<Speed>().unwrap().factor(), 0.01);
        assert_eq!("100".parse::<Speed>().unwrap().factor(), 100.0);
        assert_eq!("10".parse::<Speed>().unwrap().factor(), 10.0);
        assert_eq!("0.5".parse::<Speed>().unwrap().factor(), 0.5);
    }

    #[test]
    fn tune_scales_every_timing_by_the_speed() {
        let scenario = Scenario::builtin("run-timeout").expect("a built-in");
        let spec = demo_profile("http://localhost:1").spec;
        let mut driver = DriverConfig {
            engine: EngineConfig::seed(spec.clone(), "p"),
            signal_timeout: Duration::from_secs(5),
            websocket_queue: 8,
            origin: None,
        };
        scenario.tune(&mut driver, Speed::new(10.0).unwrap());
        let demo = EngineConfig::short_windows(spec, "p");
        let run_deadline = scenario
            .file
            .engine
            .run_deadline_secs
            .expect("run-timeout sets it");
        assert_eq!(
            driver.engine.run_deadline,
            Duration::from_secs_f64(run_deadline / 10.0)
        );
        assert_eq!(driver.engine.poll_interval, demo.poll_interval / 10);
        assert_eq!(driver.engine.confirm_delay, demo.confirm_delay / 10);
        assert_eq!(driver.engine.max_measurement, demo.max_measurement / 10);
        assert_eq!(driver.engine.detection_window, demo.detection_window / 10);
        assert_eq!(driver.engine.soak_window, demo.soak_window / 10);
        assert_eq!(driver.engine.signal_max_age, demo.signal_max_age / 10);
        assert_eq!(driver.signal_timeout, Duration::from_millis(500));
        assert_eq!(driver.engine.id_prefix, "p");
        assert_eq!(driver.engine.trigger_error_rate, demo.trigger_error_rate);
    }
}
