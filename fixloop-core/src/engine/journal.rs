//! The journal's side of persistence: an [`Input`] turned into the [`RecordedInput`] a journal stores, and back
//! ([`RecordedInput::into_input`]), with its samples, contexts and failures. The formats themselves live in the
//! snapshot module; this one only converts, so a replay feeds the engine exactly the inputs it was fed.
//!
//! Non-finite numbers (which the engine treats as no data) are stored as `null` and come back as `NaN`, so a
//! replay makes the same decisions. A journal written before [`Input::ServiceChanged`] was generic names it
//! `bug_toggled` with the demo bug's `enabled`; `enabled: false` reads as a repair.

use std::time::Duration;

use super::config_image::{Recorded, RecordedConfig};
use super::recorded::{RecordedContext, RecordedFailure, RecordedInput, RecordedSample};
use super::{Alert, Config, IncidentContext, Input, PortFailure, SignalSample};
use crate::ids::{EffectId, IncidentId, ProposalId};

impl From<&Input> for RecordedInput {
    fn from(input: &Input) -> Self {
        match input {
            Input::SignalSampled(sample) => Self::SignalSampled {
                sample: sample.into(),
            },
            Input::SignalSourceFailed { failure } => Self::SignalSourceFailed {
                failure: failure.into(),
            },
            Input::ServiceProbed { effect, result } => Self::ServiceProbed {
                effect: effect.0,
                result: result.as_ref().map(Into::into).map_err(Into::into),
            },
            Input::AlertFired(alert) => Self::AlertFired {
                source: alert.source.clone(),
                dedupe_key: alert.dedupe_key.clone(),
                monitor_id: alert.monitor_id.clone(),
                title: alert.title.clone(),
            },
            Input::AlertResolved { dedupe_key } => Self::AlertResolved {
                dedupe_key: dedupe_key.clone(),
            },
            Input::SimulateOn => Self::SimulateOn,
            Input::SimulateOff => Self::SimulateOff,
            Input::ServiceChanged { repair } => Self::ServiceChanged {
                repair: *repair,
                enabled: None,
            },
            Input::ContextFetched { effect, result } => Self::ContextFetched {
                effect: effect.0,
                result: result
                    .as_ref()
                    .map(|context| RecordedContext {
                        error_rate: finite(context.error_rate),
                        p95_latency_ms: finite(context.p95_latency_ms),
                        top_error: context.top_error.clone(),
                        evidence_links: context.evidence_links.clone(),
                    })
                    .map_err(Into::into),
            },
            Input::PlanProposed { effect, plan } => Self::PlanProposed {
                effect: effect.0,
                plan: plan.clone(),
            },
            Input::PlanGenerationFailed { effect, failure } => Self::PlanGenerationFailed {
                effect: effect.0,
                failure: failure.into(),
            },
            Input::TestProgressed {
                effect,
                test_id,
                status,
                details,
            } => Self::TestProgressed {
                effect: effect.0,
                test_id: test_id.clone(),
                status: *status,
                details: details.clone(),
            },
            Input::RunFinished { effect, result } => Self::RunFinished {
                effect: effect.0,
                result: result.clone().map_err(|failure| (&failure).into()),
            },
            Input::OperatorRequestedRun { incident_id } => Self::OperatorRequestedRun {
                incident_id: incident_id.as_str().to_owned(),
            },
            Input::CopilotAnswered(answer) => Self::CopilotAnswered {
                answer: answer.clone(),
            },
            Input::Restarted => Self::Restarted,
            Input::ApprovalGiven {
                proposal,
                version,
                by,
            } => Self::ApprovalGiven {
                proposal: proposal.as_str().to_owned(),
                version: *version,
                by: by.clone(),
            },
            Input::ApprovalRejected {
                proposal,
                version,
                by,
            } => Self::ApprovalRejected {
                proposal: proposal.as_str().to_owned(),
                version: *version,
                by: by.clone(),
            },
            Input::ActionFinished { effect, result } => Self::ActionFinished {
                effect: effect.0,
                result: result.clone().map_err(|failure| (&failure).into()),
            },
            Input::KillSwitchSet { engaged, by } => Self::KillSwitchSet {
                engaged: *engaged,
                by: by.clone(),
            },
            Input::ActionChosen {
                effect,
                action,
                reason,
            } => Self::ActionChosen {
                effect: effect.0,
                action: action.clone(),
                reason: reason.clone(),
            },
        }
    }
}

impl RecordedInput {
    /// The configuration in force from this entry on, with where it came from.
    #[must_use]
    pub fn configured(config: &Config, origin: Option<String>) -> Self {
        Self::Configured {
            config: Box::new(RecordedConfig::from(config)),
            origin,
        }
    }

    /// What this record stands for: an input, or the configuration in force from here on.
    #[must_use]
    pub fn into_recorded(self) -> Recorded {
        let input = match self {
            Self::Configured { config, origin } => {
                return Recorded::Configured {
                    config: Box::new(config.into_config()),
                    origin,
                };
            }
            Self::SignalSampled { sample } => Input::SignalSampled(sample.into()),
            Self::SignalSourceFailed { failure } => Input::SignalSourceFailed {
                failure: failure.into(),
            },
            Self::ServiceProbed { effect, result } => Input::ServiceProbed {
                effect: EffectId(effect),
                result: result.map(Into::into).map_err(Into::into),
            },
            Self::AlertFired {
                source,
                dedupe_key,
                monitor_id,
                title,
            } => Input::AlertFired(Alert {
                source,
                dedupe_key,
                monitor_id,
                title,
            }),
            Self::AlertResolved { dedupe_key } => Input::AlertResolved { dedupe_key },
            Self::SimulateOn => Input::SimulateOn,
            Self::SimulateOff => Input::SimulateOff,
            Self::ServiceChanged { repair, enabled } => Input::ServiceChanged {
                // An old journal's `enabled: false` switched the demo's bug off: a repair.
                repair: repair || enabled == Some(false),
            },
            Self::ContextFetched { effect, result } => Input::ContextFetched {
                effect: EffectId(effect),
                result: result
                    .map(|context| IncidentContext {
                        error_rate: context.error_rate.unwrap_or(f64::NAN),
                        p95_latency_ms: context.p95_latency_ms.unwrap_or(f64::NAN),
                        top_error: context.top_error,
                        evidence_links: context.evidence_links,
                    })
                    .map_err(Into::into),
            },
            Self::PlanProposed { effect, plan } => Input::PlanProposed {
                effect: EffectId(effect),
                plan,
            },
            Self::PlanGenerationFailed { effect, failure } => Input::PlanGenerationFailed {
                effect: EffectId(effect),
                failure: failure.into(),
            },
            Self::TestProgressed {
                effect,
                test_id,
                status,
                details,
            } => Input::TestProgressed {
                effect: EffectId(effect),
                test_id,
                status,
                details,
            },
            Self::RunFinished { effect, result } => Input::RunFinished {
                effect: EffectId(effect),
                result: result.map_err(Into::into),
            },
            Self::OperatorRequestedRun { incident_id } => Input::OperatorRequestedRun {
                incident_id: IncidentId::new(incident_id),
            },
            Self::CopilotAnswered { answer } => Input::CopilotAnswered(answer),
            Self::Restarted => Input::Restarted,
            Self::ApprovalGiven {
                proposal,
                version,
                by,
            } => Input::ApprovalGiven {
                proposal: ProposalId::new(proposal),
                version,
                by,
            },
            Self::ApprovalRejected {
                proposal,
                version,
                by,
            } => Input::ApprovalRejected {
                proposal: ProposalId::new(proposal),
                version,
                by,
            },
            Self::ActionFinished { effect, result } => Input::ActionFinished {
                effect: EffectId(effect),
                result: result.map_err(Into::into),
            },
            Self::KillSwitchSet { engaged, by } => Input::KillSwitchSet { engaged, by },
            Self::ActionChosen {
                effect,
                action,
                reason,
            } => Input::ActionChosen {
                effect: EffectId(effect),
                action,
                reason,
            },
        };
        Recorded::Input(input)
    }
}

impl From<&SignalSample> for RecordedSample {
    fn from(sample: &SignalSample) -> Self {
        Self {
            at: sample.at,
            error_rate: sample.error_rate.and_then(finite),
            p95_latency_ms: sample.p95_latency_ms.and_then(finite),
            top_error: sample.top_error.clone(),
            requests: sample.requests,
        }
    }
}

impl From<RecordedSample> for SignalSample {
    fn from(sample: RecordedSample) -> Self {
        Self {
            at: sample.at,
            error_rate: sample.error_rate,
            p95_latency_ms: sample.p95_latency_ms,
            top_error: sample.top_error,
            requests: sample.requests,
        }
    }
}

impl From<&PortFailure> for RecordedFailure {
    fn from(failure: &PortFailure) -> Self {
        match failure {
            PortFailure::Timeout => Self::Timeout,
            PortFailure::RateLimited { retry_after } => Self::RateLimited {
                retry_after_ms: retry_after
                    .map(|wait| u64::try_from(wait.as_millis()).unwrap_or(u64::MAX)),
            },
            PortFailure::Unauthorized => Self::Unauthorized,
            PortFailure::InvalidResponse(why) => Self::InvalidResponse { why: why.clone() },
            PortFailure::Unavailable(why) => Self::Unavailable { why: why.clone() },
        }
    }
}

impl From<RecordedFailure> for PortFailure {
    fn from(failure: RecordedFailure) -> Self {
        match failure {
            RecordedFailure::Timeout => Self::Timeout,
            RecordedFailure::RateLimited { retry_after_ms } => Self::RateLimited {
                retry_after: retry_after_ms.map(Duration::from_millis),
            },
            RecordedFailure::Unauthorized => Self::Unauthorized,
            RecordedFailure::InvalidResponse { why } => Self::InvalidResponse(why),
            RecordedFailure::Unavailable { why } => Self::Unavailable(why),
        }
    }
}

/// `Some` for a finite number; a non-finite one is no data to the engine, stored as `null`.
fn finite(value: f64) -> Option<f64> {
    value.is_finite().then_some(value)
}
