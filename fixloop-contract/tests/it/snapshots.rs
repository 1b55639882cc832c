//! insta snapshots of each wire type's JSON, so a renamed key or enum value fails a test.

use serde_json::Value;

use crate::examples::round_trip_by_name;
use crate::support::examples;

#[test]
fn wire_json_snapshots() {
    for (file, schema, original) in examples() {
        let written: Value = round_trip_by_name(&schema, &original).expect("example round-trips");
        insta::assert_json_snapshot!(file.trim_end_matches(".json"), written);
    }
}

#[test]
fn enum_spellings_snapshot() {
    use fixloop_contract::{
        HttpMethod, IncidentState, PlanItemType, RunStatus, SimulateMode, TestStatus,
    };
    let all = serde_json::json!({
        "IncidentState": [IncidentState::Healthy, IncidentState::IncidentActive, IncidentState::Validating, IncidentState::Recovered],
        "RunStatus": [RunStatus::Queued, RunStatus::Running, RunStatus::Completed, RunStatus::Failed],
        "TestStatus": [TestStatus::Pending, TestStatus::Running, TestStatus::Pass, TestStatus::Fail],
        "PlanItemType": [PlanItemType::Api, PlanItemType::Ui, PlanItemType::Synthetic],
        "HttpMethod": [HttpMethod::Get, HttpMethod::Post, HttpMethod::Put, HttpMethod::Delete],
        "SimulateMode": [SimulateMode::IncidentOn, SimulateMode::IncidentOff],
        "WsMessage.type": fixloop_contract::WsMessage::TYPES,
    });
    insta::assert_json_snapshot!("enum_spellings", all);
}

#[test]
fn history_enum_spellings_snapshot() {
    use fixloop_contract::TimelineKind;
    let all = serde_json::json!({
        "TimelineKind": [
            TimelineKind::Detected,
            TimelineKind::Announced,
            TimelineKind::PlanValidated,
            TimelineKind::RunStarted,
            TimelineKind::RunFinished,
            TimelineKind::StatusChanged,
            TimelineKind::CopilotAnswered,
            TimelineKind::Resolved,
            TimelineKind::PlanRejected,
            TimelineKind::RecoveryChecked,
        ],
    });
    insta::assert_json_snapshot!("history_enum_spellings", all);
}
