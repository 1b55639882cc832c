//! The I/O of a verification: the plan (the configured planner's, validated, else the rule plan), one run of it
//! through the test runner port, and the signal hold through the signal source port, judged by the core's
//! [`SignalGate`]. No environment, no files: the caller builds the ports and writes the reports.

use std::sync::Arc;
use std::time::Duration;

use fixloop_adapters::{PlanRequest, Planner, SignalSource, TestProgress, TestRunner};
use fixloop_contract::TestStatus;
use fixloop_contract::chrono::{DateTime, Utc};
use fixloop_core::engine::{Config as EngineConfig, GateVerdict, SignalGate, SignalSample};
use fixloop_core::{IncidentId, PlanId, RunId, ValidatedPlan, validate};

use super::{
    GateResult, GateStatus, MAX_READS, REPORT_VERSION, SignalHold, SignalRead, TestResult,
    VerifyReport,
};
use crate::profile::ServiceProfile;

/// The runner's own verdict text for a request that got no answer (see `fixloop_adapters::http_runner`).
const NO_ANSWER: &str = "request failed:";

/// What a verification needs: the service, its ports and the engine thresholds the signal gate judges with.
#[derive(Debug, Clone)]
pub struct VerifyInput {
    /// The profile it came from, as given (`demo` or a path), for the report.
    pub profile: String,
    /// The service, at the base URL to verify.
    pub service: ServiceProfile,
    /// The configured planner, when it is not the rule planner (a model's plan is validated like any other).
    pub planner: Option<(Arc<dyn Planner>, String)>,
    /// The test runner.
    pub runner: Arc<dyn TestRunner>,
    /// The signal source, and its name.
    pub signals: (Arc<dyn SignalSource>, String),
    /// The engine configuration (the profile's thresholds applied): the signal gate's rules.
    pub engine: EngineConfig,
    /// How long to hold the signal gate.
    pub signals_for: Duration,
}

/// Runs the verification and returns its report, concluded.
pub async fn verify(input: VerifyInput) -> VerifyReport {
    let started_at = Utc::now();
    let service = &input.service;
    let mut report = VerifyReport {
        report_version: REPORT_VERSION,
        outcome: super::Outcome::Inconclusive,
        exit_code: super::Outcome::Inconclusive.exit_code(),
        summary: String::new(),
        profile: input.profile.clone(),
        service: Some(service.spec.name.clone()),
        base_url: Some(service.spec.base_url.clone()),
        planner: None,
        started_at,
        finished_at: started_at,
        test_gate: GateResult::not_run("not run"),
        signal_gate: GateResult::not_run("not run"),
        tests: Vec::new(),
        signals: None,
    };
    let plan = match plan(&input).await {
        Ok((plan, planner)) => {
            report.planner = Some(planner);
            plan
        }
        Err(error) => {
            let mut failed = VerifyReport::configuration_error(&input.profile, &error, started_at);
            failed.service = report.service;
            failed.base_url = report.base_url;
            failed.finished_at = Utc::now();
            return failed;
        }
    };
    let (tests, test_gate) = run_tests(&input, &plan).await;
    report.tests = tests;
    report.test_gate = test_gate;
    if report.test_gate.status == GateStatus::Unreachable {
        report.signal_gate = GateResult::not_run("not held: the service is unreachable");
    } else {
        let (hold, gate) = hold_signals(&input).await;
        report.signals = Some(hold);
        report.signal_gate = gate;
    }
    report.finished_at = Utc::now();
    report.conclude();
    report
}

/// The plan to run: the configured planner's when it answers in time with a plan the validator accepts, else the
/// rule plan; and which one it is.
async fn plan(input: &VerifyInput) -> Result<(ValidatedPlan, String), String> {
    let service = &input.service;
    let policy = &service.spec.policy;
    let mut note = String::new();
    if let Some((planner, name)) = &input.planner {
        let request = PlanRequest {
            context: service.plan_context(IncidentId::new("inc-verify"), None),
            attempt: 1,
            previous_violations: Vec::new(),
            plan_id: PlanId::new("plan-verify"),
            now: Utc::now(),
        };
        let proposed =
            tokio::time::timeout(input.engine.plan_deadline, planner.propose(&request)).await;
        match proposed {
            Ok(Ok(plan)) => match validate(plan, policy) {
                Ok(plan) => return Ok((plan, format!("{name} (validated)"))),
                Err(violations) => {
                    note = format!(
                        "{name}'s plan was refused by the validator ({} violation(s)); rule planner used",
                        violations.len()
                    );
                }
            },
            Ok(Err(error)) => {
                note = format!("{name} failed ({}); rule planner used", error.detail());
            }
            Err(_) => {
                note = format!(
                    "{name} did not answer within {} s; rule planner used",
                    input.engine.plan_deadline.as_secs()
                );
            }
        }
    }
    let rule = service.rule_plan(None);
    let plan = validate(rule, policy).map_err(|violations| {
        let listed: Vec<String> = violations
            .iter()
            .map(|violation| format!("{}: {}", violation.path, violation.message))
            .collect();
        format!(
            "the profile's rule plan is refused by the validator: {}",
            listed.join("; ")
        )
    })?;
    let planner = if note.is_empty() {
        "rule planner".to_owned()
    } else {
        note
    };
    Ok((plan, planner))
}

/// Runs the plan once and judges the test gate.
async fn run_tests(input: &VerifyInput, plan: &ValidatedPlan) -> (Vec<TestResult>, GateResult) {
    let run_id = RunId::new("run-verify");
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<TestProgress>(64);
    let deadline = input.runner.expectations().max_run_duration + Duration::from_secs(5);
    let mut verdicts: std::collections::HashMap<String, (TestStatus, Option<String>)> =
        std::collections::HashMap::new();
    let collect = async {
        while let Some(progress) = receiver.recv().await {
            verdicts.insert(progress.test_id, (progress.status, progress.details));
        }
    };
    let run = async {
        let result = tokio::time::timeout(deadline, input.runner.run(&run_id, plan, sender)).await;
        match result {
            Ok(Ok(())) => None,
            Ok(Err(error)) => Some(format!(
                "the run could not be carried out: {}",
                error.detail()
            )),
            Err(_) => Some(format!(
                "the run did not end within {} s",
                deadline.as_secs()
            )),
        }
    };
    let (run_error, ()) = tokio::join!(run, collect);
    let tests: Vec<TestResult> = plan
        .tests()
        .map(|(item, _)| {
            let (passed, details) = match verdicts.get(&item.test_id) {
                Some((TestStatus::Pass, details)) => (true, details.clone().unwrap_or_default()),
                Some((TestStatus::Fail, details)) => (
                    false,
                    details.clone().unwrap_or_else(|| "failed".to_owned()),
                ),
                _ => (
                    false,
                    run_error
                        .clone()
                        .unwrap_or_else(|| "no verdict was reported".to_owned()),
                ),
            };
            TestResult {
                test_id: item.test_id.clone(),
                name: item.name.clone(),
                method: item.target.method.as_str().to_owned(),
                url: item.target.url.clone(),
                pass_criteria: item.pass_criteria.clone(),
                passed,
                details,
            }
        })
        .collect();
    let gate = test_gate(&tests, run_error.as_deref());
    (tests, gate)
}

/// The test gate of finished tests: passed when every test passed; unreachable when every test failed without an
/// answer; else failed.
fn test_gate(tests: &[TestResult], run_error: Option<&str>) -> GateResult {
    let failed: Vec<&TestResult> = tests.iter().filter(|test| !test.passed).collect();
    if let Some(error) = run_error
        && !failed.is_empty()
    {
        return GateResult {
            status: GateStatus::Failed,
            reason: format!("{} of {} tests failed: {error}", failed.len(), tests.len()),
        };
    }
    if tests.is_empty() {
        return GateResult {
            status: GateStatus::Failed,
            reason: "the plan has no tests".to_owned(),
        };
    }
    if failed.is_empty() {
        return GateResult {
            status: GateStatus::Passed,
            reason: format!("all {} tests passed", tests.len()),
        };
    }
    if failed.len() == tests.len()
        && failed
            .iter()
            .all(|test| test.details.starts_with(NO_ANSWER))
    {
        return GateResult {
            status: GateStatus::Unreachable,
            reason: format!(
                "no test got an answer from the service ({})",
                failed[0].details
            ),
        };
    }
    let names: Vec<String> = failed
        .iter()
        .map(|test| format!("{} ({})", test.test_id, test.details))
        .collect();
    GateResult {
        status: GateStatus::Failed,
        reason: format!(
            "{} of {} tests failed: {}",
            failed.len(),
            tests.len(),
            names.join("; ")
        ),
    }
}

/// Reads the signals every polling interval for `signals_for` (the first read at once, the last at the end) and
/// asks the core's signal gate for its verdict.
async fn hold_signals(input: &VerifyInput) -> (SignalHold, GateResult) {
    let engine = &input.engine;
    let (source, source_name) = &input.signals;
    let started = tokio::time::Instant::now();
    let end = started + input.signals_for;
    let mut gate = SignalGate::new(engine.clone(), Utc::now());
    let mut reads = std::collections::VecDeque::new();
    let interval = engine.poll_interval.max(Duration::from_millis(100));
    let mut next = started;
    loop {
        tokio::time::sleep_until(next).await;
        let window = gate.measurement_age(Utc::now()).max(interval);
        // The adapters bound their own requests; this bound keeps a hung source from holding the hold.
        let read =
            tokio::time::timeout(engine.signal_max_age.max(interval), source.read(window)).await;
        let now = Utc::now();
        let record = match read {
            Ok(Ok(reading)) => {
                let record = read_record(now, &reading, None);
                gate.handle_sample(
                    now,
                    SignalSample {
                        at: now,
                        error_rate: reading.error_rate,
                        p95_latency_ms: reading.p95_latency_ms,
                        top_error: reading.top_error,
                        requests: reading.requests,
                    },
                );
                record
            }
            Ok(Err(error)) => {
                let reason = format!("signal read failed: {}", error.detail());
                gate.handle_failure(now, reason.clone());
                read_record(
                    now,
                    &fixloop_adapters::SignalReading::default(),
                    Some(reason),
                )
            }
            Err(_) => {
                let reason = "signal read timed out".to_owned();
                gate.handle_failure(now, reason.clone());
                read_record(
                    now,
                    &fixloop_adapters::SignalReading::default(),
                    Some(reason),
                )
            }
        };
        reads.push_back(record);
        if reads.len() > MAX_READS {
            reads.pop_front();
        }
        if tokio::time::Instant::now() >= end {
            break;
        }
        next = (next + interval).min(end);
    }
    let verdict = gate.verdict(Utc::now());
    let counts = gate.counts();
    let hold = SignalHold {
        source: source_name.clone(),
        requested_secs: input.signals_for.as_secs_f64(),
        poll_interval_secs: interval.as_secs_f64(),
        recovery_samples: engine.recovery_samples,
        min_requests: engine.min_requests,
        recovery_error_percent: engine.recovery_error_rate * 100.0,
        healthy: counts.healthy,
        unhealthy: counts.unhealthy,
        inconclusive: counts.inconclusive,
        reads: reads.into(),
    };
    let gate = match verdict {
        GateVerdict::Holds => GateResult {
            status: GateStatus::Passed,
            reason: format!(
                "the signal gate held: {} consecutive healthy measurements (error rate below {}%)",
                engine.recovery_samples,
                engine.recovery_error_rate * 100.0
            ),
        },
        GateVerdict::Unhealthy(reason) => GateResult {
            status: GateStatus::Failed,
            reason,
        },
        GateVerdict::Inconclusive(reason) => GateResult {
            status: GateStatus::Inconclusive,
            reason,
        },
    };
    (hold, gate)
}

fn read_record(
    at: DateTime<Utc>,
    reading: &fixloop_adapters::SignalReading,
    read_error: Option<String>,
) -> SignalRead {
    SignalRead {
        at,
        error_rate_percent: reading
            .error_rate
            .filter(|rate| rate.is_finite())
            .map(|rate| rate.clamp(0.0, 1.0) * 100.0),
        p95_latency_ms: reading
            .p95_latency_ms
            .filter(|ms| ms.is_finite() && *ms >= 0.0),
        requests: reading.requests,
        top_error: reading.top_error.clone(),
        read_error,
    }
}
