//! `fixloop verify`: a post-deploy verification gate for CI. It runs a profile's plan once against a deployed service
//! (the test gate), holds the signal gate for a while (the core's [`fixloop_core::engine::SignalGate`], the same
//! rules as RECOVERED), and ends with one [`Outcome`], whose exit code CI reads. Only *both* gates holding is
//! [`Outcome::Verified`]; missing data is [`Outcome::Inconclusive`], never success.
//!
//! The I/O ([`run::verify`]: the planner, the test runner and the signal source, all ports) is kept apart from the
//! pure renderings of its [`VerifyReport`]: JSON (schema `fixloop-server/schemas/verify-report.schema.json`),
//! [`junit::render`], [`html::render`] (one self-contained file) and [`annotations::github`] (GitHub Actions workflow
//! commands). The binary's `cli/verify.rs` reads the environment, writes the files and exits.

pub mod annotations;
pub mod html;
pub mod junit;
pub mod run;

use fixloop_contract::chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The JSON Schema of [`VerifyReport`] (draft 2020-12), committed in the repository.
pub const REPORT_SCHEMA: &str = include_str!("../../schemas/verify-report.schema.json");

/// The version of the report's JSON shape.
pub const REPORT_VERSION: u32 = 1;

/// How a verification ended: one exit code each, the one list of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every test passed and the signal gate held.
    Verified,
    /// The profile, the flags or the environment cannot be used (bad profile, unknown service, bad duration).
    ConfigurationError,
    /// At least one test failed.
    TestsFailed,
    /// The tests passed but the signals were unhealthy at the end of the hold.
    SignalsUnhealthy,
    /// The signals could not be judged: no data, too little traffic, failed reads or too short a hold.
    Inconclusive,
    /// The service did not answer any test (connection refused, timed out, name not resolved).
    Unreachable,
}

impl Outcome {
    /// Every outcome, in exit-code order.
    pub const ALL: [Self; 6] = [
        Self::Verified,
        Self::ConfigurationError,
        Self::TestsFailed,
        Self::SignalsUnhealthy,
        Self::Inconclusive,
        Self::Unreachable,
    ];

    /// The process exit code.
    #[must_use]
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Verified => 0,
            // 2 is also what the argument parser exits with on a bad flag: both are configuration errors.
            Self::ConfigurationError => 2,
            Self::TestsFailed => 3,
            Self::SignalsUnhealthy => 4,
            Self::Inconclusive => 5,
            Self::Unreachable => 6,
        }
    }

    /// The outcome as the JSON report spells it (`verified`, `tests_failed`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Verified => "verified",
            Self::ConfigurationError => "configuration_error",
            Self::TestsFailed => "tests_failed",
            Self::SignalsUnhealthy => "signals_unhealthy",
            Self::Inconclusive => "inconclusive",
            Self::Unreachable => "unreachable",
        }
    }

    /// One line for humans.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            Self::Verified => "verified: every test passed and the signal gate held",
            Self::ConfigurationError => {
                "configuration error: the profile, a flag or the environment is invalid"
            }
            Self::TestsFailed => "tests failed: at least one test of the plan failed",
            Self::SignalsUnhealthy => "signals unhealthy: the signal gate did not hold",
            Self::Inconclusive => {
                "inconclusive: the signals could not be judged (no data or too little traffic)"
            }
            Self::Unreachable => "service unreachable",
        }
    }

    /// The exit codes as `--help` prints them: one line per outcome.
    #[must_use]
    pub fn help() -> String {
        let mut text = String::from("Exit codes:\n");
        for outcome in Self::ALL {
            text.push_str(&format!(
                "  {}  {}\n",
                outcome.exit_code(),
                outcome.describe()
            ));
        }
        text.push_str("  1  unexpected failure of the command itself (a bug: please report it)");
        text
    }
}

/// Where a gate ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateStatus {
    /// The gate holds.
    Passed,
    /// The gate does not hold, with evidence.
    Failed,
    /// The gate could not be judged.
    Inconclusive,
    /// The service never answered.
    Unreachable,
    /// The gate was not run (configuration error, or the service is unreachable).
    NotRun,
}

impl GateStatus {
    /// The status as the JSON report spells it (`passed`, `not_run`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Passed => "passed",
            Self::Failed => "failed",
            Self::Inconclusive => "inconclusive",
            Self::Unreachable => "unreachable",
            Self::NotRun => "not_run",
        }
    }
}

/// One gate's status and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateResult {
    /// Where it ended.
    pub status: GateStatus,
    /// Why, in one line.
    pub reason: String,
}

impl GateResult {
    /// A gate that did not run, because of `reason`.
    #[must_use]
    pub fn not_run(reason: impl Into<String>) -> Self {
        Self {
            status: GateStatus::NotRun,
            reason: reason.into(),
        }
    }
}

/// One test of the plan and its verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestResult {
    /// The plan item's test id.
    pub test_id: String,
    /// Its one-line name.
    pub name: String,
    /// HTTP method.
    pub method: String,
    /// The URL it requested.
    pub url: String,
    /// Its pass criteria.
    pub pass_criteria: String,
    /// Whether it passed.
    pub passed: bool,
    /// The runner's one-line explanation.
    pub details: String,
}

/// One read of the signals during the hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalRead {
    /// When it was answered.
    pub at: DateTime<Utc>,
    /// Error rate in percent, when there was traffic.
    pub error_rate_percent: Option<f64>,
    /// p95 latency in milliseconds, when there was traffic.
    pub p95_latency_ms: Option<f64>,
    /// Requests in the read's window (FixLoop's own validation traffic left out).
    pub requests: u64,
    /// The most frequent error, if any.
    pub top_error: Option<String>,
    /// Why the read failed, if it did.
    pub read_error: Option<String>,
}

/// The signal hold: its settings, how its measurements ended, and every read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalHold {
    /// Where the signals came from.
    pub source: String,
    /// How long the hold was asked to last, in seconds.
    pub requested_secs: f64,
    /// How often the signals were read, in seconds.
    pub poll_interval_secs: f64,
    /// Consecutive healthy measurements the gate needs.
    pub recovery_samples: u32,
    /// Requests a measurement needs to be judged.
    pub min_requests: u64,
    /// The gate holds below this error rate, in percent.
    pub recovery_error_percent: f64,
    /// Measurements judged healthy.
    pub healthy: u32,
    /// Measurements judged unhealthy.
    pub unhealthy: u32,
    /// Measurements that ended inconclusive (no traffic, too few requests, failed reads).
    pub inconclusive: u32,
    /// Every read, oldest first (at most [`MAX_READS`]; the latest kept).
    pub reads: Vec<SignalRead>,
}

/// The most reads a report keeps.
pub const MAX_READS: usize = 1000;

/// Everything a verification found: the JSON report, and what the other renderings are made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// [`REPORT_VERSION`].
    pub report_version: u32,
    /// How it ended.
    pub outcome: Outcome,
    /// The process exit code of `outcome`.
    pub exit_code: u8,
    /// One line for humans.
    pub summary: String,
    /// The profile (a file path or `demo`).
    pub profile: String,
    /// The verified service, once known.
    pub service: Option<String>,
    /// Its base URL, once known.
    pub base_url: Option<String>,
    /// Which planner made the plan, and any fallback.
    pub planner: Option<String>,
    /// When the verification started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
    /// The test gate.
    pub test_gate: GateResult,
    /// The signal gate.
    pub signal_gate: GateResult,
    /// Every test of the plan, in plan order.
    pub tests: Vec<TestResult>,
    /// The signal hold, if it ran.
    pub signals: Option<SignalHold>,
}

impl VerifyReport {
    /// A report for a verification that could not start: configuration error, no test run, no hold.
    #[must_use]
    pub fn configuration_error(profile: &str, error: &str, at: DateTime<Utc>) -> Self {
        let mut report = Self {
            report_version: REPORT_VERSION,
            outcome: Outcome::ConfigurationError,
            exit_code: Outcome::ConfigurationError.exit_code(),
            summary: String::new(),
            profile: profile.to_owned(),
            service: None,
            base_url: None,
            planner: None,
            started_at: at,
            finished_at: at,
            test_gate: GateResult::not_run(format!("configuration error: {error}")),
            signal_gate: GateResult::not_run(format!("configuration error: {error}")),
            tests: Vec::new(),
            signals: None,
        };
        report.summary = format!("{}: {error}", Outcome::ConfigurationError.describe());
        report
    }

    /// Sets the outcome from the two gates ([`judge`]) and writes the summary.
    pub fn conclude(&mut self) {
        self.outcome = judge(&self.test_gate, &self.signal_gate);
        self.exit_code = self.outcome.exit_code();
        let why = match self.outcome {
            Outcome::Verified => format!(
                "{} tests passed; {}",
                self.tests.len(),
                self.signal_gate.reason
            ),
            Outcome::TestsFailed | Outcome::Unreachable => self.test_gate.reason.clone(),
            Outcome::SignalsUnhealthy | Outcome::Inconclusive => {
                if self.test_gate.status == GateStatus::Passed {
                    self.signal_gate.reason.clone()
                } else {
                    format!("{}; {}", self.test_gate.reason, self.signal_gate.reason)
                }
            }
            Outcome::ConfigurationError => self.test_gate.reason.clone(),
        };
        self.summary = format!("{}: {why}", self.outcome.describe());
    }

    /// The JSON report (pretty-printed).
    #[must_use]
    pub fn to_json(&self) -> String {
        // A report is plain data (strings, numbers, timestamps, enums): it always serializes.
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|error| unreachable!("a verify report serializes: {error}"))
    }
}

/// The outcome of two gates: an unreachable service first, then failed tests, unhealthy signals, and anything not
/// proven (a gate inconclusive or not run) inconclusive. Only two passed gates are [`Outcome::Verified`].
#[must_use]
pub fn judge(tests: &GateResult, signals: &GateResult) -> Outcome {
    match (tests.status, signals.status) {
        (GateStatus::Unreachable, _) => Outcome::Unreachable,
        (GateStatus::Failed, _) => Outcome::TestsFailed,
        (_, GateStatus::Failed | GateStatus::Unreachable) => Outcome::SignalsUnhealthy,
        (GateStatus::Passed, GateStatus::Passed) => Outcome::Verified,
        _ => Outcome::Inconclusive,
    }
}

#[cfg(test)]
mod tests;
