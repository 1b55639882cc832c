//! The scenario file format: serde types mirroring `scenarios/scenario.schema.json` one to one.
//!
//! A document is first validated against the committed schema (which gives every problem with its JSON pointer),
//! then read into these types, which deny unknown fields too, so the schema and the reader cannot silently drift:
//! a test checks that every built-in passes both.

use std::collections::BTreeMap;

use serde::Deserialize;

/// A whole scenario file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// Where an editor finds the schema (ignored).
    #[serde(rename = "$schema", default)]
    pub schema: Option<String>,
    /// Short name.
    pub name: String,
    /// What the story shows.
    pub description: String,
    /// The engine's timing and policy overrides.
    #[serde(default)]
    pub engine: EngineFile,
    /// The configured planner's scripted answers.
    #[serde(default)]
    pub planner: PlannerFile,
    /// The timeline, in order of `at_secs`.
    pub steps: Vec<StepFile>,
    /// When the story is over.
    #[serde(default)]
    pub end_secs: Option<f64>,
}

/// `engine`: overrides of the `fixloop demo` engine settings, in story seconds.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineFile {
    /// Signal polling interval.
    pub poll_interval_secs: Option<f64>,
    /// Detection window.
    pub detection_window_secs: Option<f64>,
    /// Periodic rerun interval.
    pub rerun_interval_secs: Option<f64>,
    /// Soak window after RECOVERED.
    pub soak_window_secs: Option<f64>,
    /// Cooldown after a close.
    pub cooldown_secs: Option<f64>,
    /// Deadline of a context fetch or a plan request.
    pub plan_deadline_secs: Option<f64>,
    /// Deadline of a validation run.
    pub run_deadline_secs: Option<f64>,
    /// Planner attempts before the rule planner.
    pub max_plan_attempts: Option<u32>,
    /// Hot samples that open an incident.
    pub min_samples: Option<u32>,
    /// Consecutive healthy samples of the signal gate.
    pub recovery_samples: Option<u32>,
}

/// `planner`: the configured planner's answers, then the rule plan.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannerFile {
    /// The answers, in order.
    #[serde(default)]
    pub answers: Vec<PlannerAnswer>,
    /// How long every answer takes.
    #[serde(default)]
    pub delay_secs: Option<f64>,
}

/// One scripted planner answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlannerAnswer {
    /// The rule plan cut to three tests.
    TooFewTests,
    /// The rule plan with its first test aimed off the allowlist.
    OffAllowlist,
    /// The planner fails (unavailable).
    Unavailable,
}

/// One step of the timeline.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepFile {
    /// When, in story seconds from the start.
    pub at_secs: f64,
    /// What happens, for the log.
    #[serde(default)]
    pub note: Option<String>,
    /// What signal reads return from now on.
    #[serde(default)]
    pub signals: Option<SignalsFile>,
    /// The simulated shop's checkout bug.
    #[serde(default)]
    pub bug: Option<bool>,
    /// The simulated shop refuses connections.
    #[serde(default)]
    pub down: Option<bool>,
    /// Tests forced to FAIL, with their details.
    #[serde(default)]
    pub fail: Option<BTreeMap<String, String>>,
    /// Whether runs that start from now on hang after RUNNING.
    #[serde(default)]
    pub hold_runs: Option<bool>,
    /// How long each test of a run takes.
    #[serde(default)]
    pub verdict_delay_secs: Option<f64>,
}

/// `signals` of a step.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum SignalsFile {
    /// Every read fails.
    Unavailable(Unavailable),
    /// One sample, returned by every read.
    Sample(SampleFile),
    /// Samples returned one per read, in turn, over and over.
    Cycle(Vec<SampleFile>),
}

/// The word `unavailable`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unavailable {
    /// Every read fails.
    Unavailable,
}

/// One sample: a preset or an explicit reading.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum SampleFile {
    /// A named preset.
    Preset(Preset),
    /// An explicit reading.
    Reading(ReadingFile),
}

/// The named samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// 0.2% errors, p95 120 ms, 500 requests.
    Healthy,
    /// 35% errors, p95 1800 ms, 400 requests, a failing checkout as top error.
    Erroring,
}

/// An explicit reading.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadingFile {
    /// Share of failed requests, in percent.
    pub error_rate_percent: f64,
    /// p95 latency in milliseconds, `null` for none.
    #[serde(default)]
    pub p95_latency_ms: Option<f64>,
    /// Requests observed.
    pub requests: u64,
    /// The most frequent error, `null` for none.
    #[serde(default)]
    pub top_error: Option<String>,
}
