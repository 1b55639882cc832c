//! The CI self-heal decision: pure, deterministic, no I/O. Given how a CI job ended, how its log was classified,
//! the self-heal policy and the reruns already requested for the same (pipeline, class), [`decide`] says whether to
//! ask the CI provider for a rerun, and [`incident_state`] says where the pipeline's CI incident stands.
//!
//! Self-heal never edits code: the only action it knows is a rerun of the failed job (or of the run's failed
//! jobs). A rerun is decided only when every rule holds, checked in this order:
//!
//! 1. the job failed or timed out (a cancelled job was stopped on purpose: not rerun);
//! 2. the class is one of the policy's eligible classes ([`FailureClass::Unknown`] never is: nothing says the
//!    failure is transient, and a rerun would hide it);
//! 3. the classifier's confidence reaches the policy's minimum (a close contest between classes is not enough);
//! 4. fewer than `max_attempts` reruns were already requested for this (pipeline, class); past it the incident is
//!    escalated to a human.
//!
//! ```text
//!   failed ──decide──► Rerun ──(rerun passed)──► RECOVERED
//!      │                 │
//!      │                 └──(failed again)──► decide again (attempts + 1) ──► … ──► AttemptsExhausted: escalate
//!      └──► NotEligible: the incident stays open for a human
//! ```

use std::collections::BTreeSet;
use std::fmt;

use super::FailureClass;

/// The number of reruns per (pipeline, class) when the policy does not say.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 2;
/// The most reruns per (pipeline, class) a policy may allow.
pub const MAX_MAX_ATTEMPTS: u32 = 10;
/// The classifier's confidence a rerun needs when the policy does not say.
pub const DEFAULT_MIN_CONFIDENCE: f64 = 0.5;

/// How a CI job ended, as the core needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobEnd {
    /// The job failed.
    Failed,
    /// The job ran out of time.
    TimedOut,
    /// The job was cancelled.
    Cancelled,
    /// The job passed.
    Passed,
}

/// Which failures may be rerun, and how often.
#[derive(Debug, Clone, PartialEq)]
pub struct HealPolicy {
    /// The classes a rerun may fix (transient ones: `infrastructure`, `network`, `timeout`…).
    pub eligible: BTreeSet<FailureClass>,
    /// Most reruns per (pipeline, class), from 1 to [`MAX_MAX_ATTEMPTS`].
    pub max_attempts: u32,
    /// The classifier's confidence a rerun needs, in 0..=1.
    pub min_confidence: f64,
}

impl HealPolicy {
    /// A policy for `eligible` classes with the default attempts and confidence.
    #[must_use]
    pub fn new(eligible: impl IntoIterator<Item = FailureClass>) -> Self {
        Self {
            eligible: eligible.into_iter().collect(),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            min_confidence: DEFAULT_MIN_CONFIDENCE,
        }
    }
}

/// Why a failure is not rerun (and stays for a human).
#[derive(Debug, Clone, PartialEq)]
pub enum NotEligible {
    /// The job did not fail: it passed or was cancelled.
    NotAFailure(JobEnd),
    /// The policy does not list the class.
    ClassNotEligible(FailureClass),
    /// The classifier is not sure enough.
    LowConfidence {
        /// The classifier's confidence.
        confidence: f64,
        /// The policy's minimum.
        minimum: f64,
    },
}

impl fmt::Display for NotEligible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAFailure(JobEnd::Cancelled) => {
                f.write_str("the job was cancelled, not failed")
            }
            Self::NotAFailure(end) => write!(f, "the job did not fail ({end:?})"),
            Self::ClassNotEligible(FailureClass::Unknown) => f.write_str(
                "the log does not say why the job failed: a rerun could hide a real failure",
            ),
            Self::ClassNotEligible(class) => {
                write!(
                    f,
                    "class {class} is not eligible for self-heal in the policy"
                )
            }
            Self::LowConfidence {
                confidence,
                minimum,
            } => write!(
                f,
                "the classification's confidence {confidence:.2} is below the policy's {minimum:.2}"
            ),
        }
    }
}

/// What to do about one failed job.
#[derive(Debug, Clone, PartialEq)]
pub enum HealDecision {
    /// Ask the CI provider to rerun the failed job; this is rerun number `attempt` (from 1) of `max_attempts`.
    Rerun {
        /// The rerun's number for this (pipeline, class), from 1.
        attempt: u32,
        /// The policy's most.
        max_attempts: u32,
    },
    /// Not a failure a rerun may fix: a human looks at it.
    NotEligible(NotEligible),
    /// `attempts` reruns were already requested for this (pipeline, class): escalate to a human.
    AttemptsExhausted {
        /// The reruns already requested.
        attempts: u32,
    },
}

impl HealDecision {
    /// The decision's stable SCREAMING_SNAKE_CASE name (`RERUN`, `NOT_ELIGIBLE`, `ATTEMPTS_EXHAUSTED`).
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Rerun { .. } => "RERUN",
            Self::NotEligible(_) => "NOT_ELIGIBLE",
            Self::AttemptsExhausted { .. } => "ATTEMPTS_EXHAUSTED",
        }
    }

    /// One sentence for people.
    #[must_use]
    pub fn reason(&self) -> String {
        match self {
            Self::Rerun {
                attempt,
                max_attempts,
            } => format!("rerun of the failed job, attempt {attempt} of {max_attempts}"),
            Self::NotEligible(why) => why.to_string(),
            Self::AttemptsExhausted { attempts } => format!(
                "{attempts} rerun{} already requested for this pipeline and class: escalated to a human",
                if *attempts == 1 { "" } else { "s" }
            ),
        }
    }
}

/// Decides about a job that ended as `end`, classified as `class` with `confidence`, when `attempts_made` reruns
/// were already requested for the same (pipeline, class). The rules are in the module doc.
#[must_use]
pub fn decide(
    end: JobEnd,
    class: FailureClass,
    confidence: f64,
    policy: &HealPolicy,
    attempts_made: u32,
) -> HealDecision {
    if !matches!(end, JobEnd::Failed | JobEnd::TimedOut) {
        return HealDecision::NotEligible(NotEligible::NotAFailure(end));
    }
    if class == FailureClass::Unknown || !policy.eligible.contains(&class) {
        return HealDecision::NotEligible(NotEligible::ClassNotEligible(class));
    }
    if confidence.is_nan() || confidence < policy.min_confidence {
        return HealDecision::NotEligible(NotEligible::LowConfidence {
            confidence,
            minimum: policy.min_confidence,
        });
    }
    if attempts_made >= policy.max_attempts {
        return HealDecision::AttemptsExhausted {
            attempts: attempts_made,
        };
    }
    HealDecision::Rerun {
        attempt: attempts_made + 1,
        max_attempts: policy.max_attempts,
    }
}

/// Where a pipeline's CI incident stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CiIncidentState {
    /// A job failed and no rerun is under way: a human looks at it (not eligible, escalated, or the rerun could
    /// not be requested).
    Open,
    /// A rerun was requested and its result has not arrived.
    Rerunning,
    /// A rerun FixLoop requested passed.
    Recovered,
    /// The pipeline passed without a rerun of FixLoop's: nothing to claim.
    Passed,
}

/// One event of a pipeline, oldest first, for [`incident_state`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipelineEvent {
    /// A job failed (or timed out, or was cancelled) and nothing was rerun.
    FailedNotRerun,
    /// A job failed and the provider accepted a rerun.
    RerunRequested,
    /// A job passed.
    Passed,
}

/// The state of a pipeline's incident after `events`, oldest first. A pass is a recovery only when it comes right
/// after a rerun FixLoop requested; a failure that is not rerun (escalated) opens the incident again, and a pass
/// after it (a person's fix or rerun) is not FixLoop's recovery.
#[must_use]
pub fn incident_state(events: &[PipelineEvent]) -> CiIncidentState {
    let mut state = CiIncidentState::Passed;
    for event in events {
        state = match event {
            PipelineEvent::FailedNotRerun => CiIncidentState::Open,
            PipelineEvent::RerunRequested => CiIncidentState::Rerunning,
            PipelineEvent::Passed if state == CiIncidentState::Rerunning => {
                CiIncidentState::Recovered
            }
            PipelineEvent::Passed => CiIncidentState::Passed,
        };
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::classify;

    fn policy() -> HealPolicy {
        HealPolicy::new([
            FailureClass::Infrastructure,
            FailureClass::Network,
            FailureClass::Timeout,
        ])
    }

    #[test]
    fn an_eligible_failure_is_rerun_until_the_attempts_are_spent() {
        let policy = policy();
        let decide_after = |made| decide(JobEnd::Failed, FailureClass::Network, 0.8, &policy, made);
        assert_eq!(
            decide_after(0),
            HealDecision::Rerun {
                attempt: 1,
                max_attempts: 2
            }
        );
        assert_eq!(
            decide_after(1),
            HealDecision::Rerun {
                attempt: 2,
                max_attempts: 2
            }
        );
        assert_eq!(
            decide_after(2),
            HealDecision::AttemptsExhausted { attempts: 2 }
        );
        assert_eq!(decide_after(2).as_str(), "ATTEMPTS_EXHAUSTED");
        assert!(decide_after(2).reason().contains("escalated"));
    }

    #[test]
    fn a_timed_out_job_is_a_failure_and_a_cancelled_or_passed_one_is_not() {
        let policy = policy();
        assert!(matches!(
            decide(JobEnd::TimedOut, FailureClass::Timeout, 0.8, &policy, 0),
            HealDecision::Rerun { attempt: 1, .. }
        ));
        for end in [JobEnd::Cancelled, JobEnd::Passed] {
            assert_eq!(
                decide(end, FailureClass::Infrastructure, 0.9, &policy, 0),
                HealDecision::NotEligible(NotEligible::NotAFailure(end))
            );
        }
    }

    #[test]
    fn classes_outside_the_policy_and_unknown_are_never_rerun() {
        let mut policy = policy();
        assert_eq!(
            decide(JobEnd::Failed, FailureClass::TestAssertion, 0.9, &policy, 0),
            HealDecision::NotEligible(NotEligible::ClassNotEligible(FailureClass::TestAssertion))
        );
        // Even a policy that lists `unknown` does not rerun it.
        policy.eligible.insert(FailureClass::Unknown);
        assert!(matches!(
            decide(JobEnd::Failed, FailureClass::Unknown, 1.0, &policy, 0),
            HealDecision::NotEligible(NotEligible::ClassNotEligible(FailureClass::Unknown))
        ));
    }

    #[test]
    fn low_or_nan_confidence_is_not_enough() {
        let policy = policy();
        for confidence in [0.49, f64::NAN] {
            assert!(matches!(
                decide(
                    JobEnd::Failed,
                    FailureClass::Network,
                    confidence,
                    &policy,
                    0
                ),
                HealDecision::NotEligible(NotEligible::LowConfidence { .. })
            ));
        }
    }

    #[test]
    fn misleading_logs_are_not_rerun() {
        let policy = policy();
        // A test named after timeouts failed its assertion: a real failure, not a slow runner.
        let log = "running test_timeout_handling ... FAILED\n\
                   AssertionError: expected 3 retries, got 2\n\
                   test result: FAILED. 41 passed; 1 failed";
        let answer = classify(log);
        assert_eq!(answer.class, FailureClass::TestAssertion);
        assert!(matches!(
            decide(JobEnd::Failed, answer.class, answer.confidence, &policy, 0),
            HealDecision::NotEligible(NotEligible::ClassNotEligible(_))
        ));
        // A network error whose retry succeeded, then a failing assertion: not a network failure.
        let log = "Error: connect ECONNREFUSED 10.0.0.5:5432, retrying\n\
                   Attempt 2 succeeded\n\
                   AssertionError: totals differ";
        let answer = classify(log);
        assert_ne!(answer.class, FailureClass::Network);
        assert!(!matches!(
            decide(JobEnd::Failed, answer.class, answer.confidence, &policy, 0),
            HealDecision::Rerun { .. }
        ));
        // A runner that lost its host is rerun.
        let answer = classify("##[error]The runner has received a shutdown signal.");
        assert_eq!(answer.class, FailureClass::Infrastructure);
        assert!(matches!(
            decide(JobEnd::Failed, answer.class, answer.confidence, &policy, 0),
            HealDecision::Rerun { attempt: 1, .. }
        ));
    }

    #[test]
    fn a_pass_is_a_recovery_only_after_a_rerun() {
        use PipelineEvent::{FailedNotRerun, Passed, RerunRequested};
        assert_eq!(incident_state(&[]), CiIncidentState::Passed);
        assert_eq!(incident_state(&[FailedNotRerun]), CiIncidentState::Open);
        assert_eq!(
            incident_state(&[FailedNotRerun, Passed]),
            CiIncidentState::Passed
        );
        assert_eq!(
            incident_state(&[RerunRequested]),
            CiIncidentState::Rerunning
        );
        assert_eq!(
            incident_state(&[RerunRequested, Passed]),
            CiIncidentState::Recovered
        );
        assert_eq!(
            incident_state(&[RerunRequested, RerunRequested, FailedNotRerun]),
            CiIncidentState::Open
        );
        assert_eq!(
            incident_state(&[RerunRequested, RerunRequested, Passed]),
            CiIncidentState::Recovered
        );
        assert_eq!(
            incident_state(&[RerunRequested, FailedNotRerun, Passed]),
            CiIncidentState::Passed
        );
    }
}
