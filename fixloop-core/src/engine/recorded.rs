//! The journal's images of the engine's inputs: [`RecordedInput`] and its parts, explicit and versioned like the
//! snapshot (see [`Snapshot`](super::Snapshot)), so a journal outlives changes of the in-memory types. The
//! conversions live in the journal module; the configuration's image in `config_image`.

use fixloop_contract::chrono::{DateTime, Utc};
use fixloop_contract::{CopilotAnswer, Link, Plan, TestStatus};
use serde::{Deserialize, Serialize};

use super::config_image::RecordedConfig;

/// An [`Input`](super::Input) as a journal stores it: every input the engine accepted, serializable with any serde format and
/// turned back into the same input by [`RecordedInput::into_recorded`]; and the configuration in force whenever a
/// driver (re)starts an engine ([`RecordedInput::Configured`], see [`RecordedConfig`]).
///
/// Non-finite numbers (which the engine treats as no data) are stored as `null` and come back as `NaN`, so a
/// replay makes the same decisions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "input", rename_all = "snake_case")]
#[allow(missing_docs)] // Each variant mirrors the `Input` variant of the same name.
pub enum RecordedInput {
    SignalSampled {
        sample: RecordedSample,
    },
    SignalSourceFailed {
        failure: RecordedFailure,
    },
    ServiceProbed {
        effect: u64,
        result: Result<RecordedSample, RecordedFailure>,
    },
    AlertFired {
        source: String,
        dedupe_key: String,
        monitor_id: Option<String>,
        title: String,
    },
    AlertResolved {
        dedupe_key: String,
    },
    SimulateOn,
    SimulateOff,
    /// Journals written before this input was generic name it `bug_toggled`, with the demo bug's new state in
    /// `enabled` (`false` was the repair): both read as this variant, and `enabled` is never written.
    #[serde(alias = "bug_toggled")]
    ServiceChanged {
        #[serde(default)]
        repair: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        enabled: Option<bool>,
    },
    ContextFetched {
        effect: u64,
        result: Result<RecordedContext, RecordedFailure>,
    },
    PlanProposed {
        effect: u64,
        plan: Plan,
    },
    PlanGenerationFailed {
        effect: u64,
        failure: RecordedFailure,
    },
    TestProgressed {
        effect: u64,
        test_id: String,
        status: TestStatus,
        details: Option<String>,
    },
    RunFinished {
        effect: u64,
        result: Result<(), RecordedFailure>,
    },
    OperatorRequestedRun {
        incident_id: String,
    },
    CopilotAnswered {
        answer: CopilotAnswer,
    },
    Restarted,
    ApprovalGiven {
        proposal: String,
        version: u64,
        by: String,
    },
    ApprovalRejected {
        proposal: String,
        version: u64,
        by: String,
    },
    ActionFinished {
        effect: u64,
        result: Result<(), RecordedFailure>,
    },
    KillSwitchSet {
        engaged: bool,
        by: String,
    },
    ActionChosen {
        effect: u64,
        action: Option<String>,
        reason: String,
    },
    /// Not an input: the configuration the driver runs the engine with from this entry on (journaled at every
    /// start of a driver; a replay switches to it). `origin` says where it came from (for example the profile
    /// file's SHA-256).
    Configured {
        config: Box<RecordedConfig>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        origin: Option<String>,
    },
}

/// A [`SignalSample`](super::SignalSample) as a journal stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)] // The fields mirror `SignalSample`'s.
pub struct RecordedSample {
    pub at: DateTime<Utc>,
    pub error_rate: Option<f64>,
    pub p95_latency_ms: Option<f64>,
    pub top_error: Option<String>,
    pub requests: u64,
}

/// An [`IncidentContext`](super::IncidentContext) as a journal stores it (`None` for a non-finite number).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)] // The fields mirror `IncidentContext`'s.
pub struct RecordedContext {
    pub error_rate: Option<f64>,
    pub p95_latency_ms: Option<f64>,
    pub top_error: Option<String>,
    pub evidence_links: Vec<Link>,
}

/// A [`PortFailure`](super::PortFailure) as a journal stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "failure", rename_all = "snake_case")]
#[allow(missing_docs)] // The variants mirror `PortFailure`'s.
pub enum RecordedFailure {
    Timeout,
    RateLimited { retry_after_ms: Option<u64> },
    Unauthorized,
    InvalidResponse { why: String },
    Unavailable { why: String },
}

#[cfg(test)]
mod tests {
    use super::super::{Input, Recorded};
    use super::*;

    #[test]
    fn an_old_journals_bug_toggled_reads_as_service_changed() {
        let off: RecordedInput =
            serde_json::from_str(r#"{"input":"bug_toggled","enabled":false}"#).expect("old format");
        assert_eq!(
            off.into_recorded(),
            Recorded::Input(Input::ServiceChanged { repair: true })
        );
        let on: RecordedInput =
            serde_json::from_str(r#"{"input":"bug_toggled","enabled":true}"#).expect("old format");
        assert_eq!(
            on.into_recorded(),
            Recorded::Input(Input::ServiceChanged { repair: false })
        );
    }

    #[test]
    fn service_changed_is_written_by_its_new_name_only() {
        let recorded = RecordedInput::from(&Input::ServiceChanged { repair: true });
        let json = serde_json::to_string(&recorded).expect("serializes");
        assert_eq!(json, r#"{"input":"service_changed","repair":true}"#);
        let back: RecordedInput = serde_json::from_str(&json).expect("reads back");
        assert_eq!(
            back.into_recorded(),
            Recorded::Input(Input::ServiceChanged { repair: true })
        );
    }
}
