//! Every example document deserializes, re-serializes to the same JSON, and validates against `openapi.yaml`.

use fixloop_contract::{
    CiIncidentList, CiIntake, CiIntakeList, CiLogRequest, CopilotAnswer, CopilotAskRequest,
    ErrorBody, IncidentCard, IncidentDetail, IncidentFigures, IncidentPage, IncidentSummary,
    PlanGenerated, ReloadReport, RunTestsRequest, ServiceState, SetBugRequest, SimulateRequest,
    StreamReset, SystemStatus, TestRun, TimelineEntry, WsEnvelope,
};
use fixloop_contract::{
    IncidentEscalated, KillSwitchRequest, KillSwitchState, RemediationDecisionRequest,
    RemediationList, RemediationProposal, RemediationStats, ReplicaList,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::support::{committed_spec, examples, schema_errors};

/// Deserializes `value` as `T` and serializes it back.
fn round_trip<T: DeserializeOwned + Serialize>(value: &Value) -> Result<Value, String> {
    let typed: T = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
    serde_json::to_value(&typed).map_err(|e| e.to_string())
}

/// Round-trips `value` through the Rust type named `schema`.
pub(crate) fn round_trip_by_name(schema: &str, value: &Value) -> Result<Value, String> {
    match schema {
        "SystemStatus" => round_trip::<SystemStatus>(value),
        "ServiceState" => round_trip::<ServiceState>(value),
        "IncidentCard" => round_trip::<IncidentCard>(value),
        "TestRun" => round_trip::<TestRun>(value),
        "CopilotAnswer" => round_trip::<CopilotAnswer>(value),
        "PlanGenerated" => round_trip::<PlanGenerated>(value),
        "SetBugRequest" => round_trip::<SetBugRequest>(value),
        "SimulateRequest" => round_trip::<SimulateRequest>(value),
        "RunTestsRequest" => round_trip::<RunTestsRequest>(value),
        "CopilotAskRequest" => round_trip::<CopilotAskRequest>(value),
        "ErrorBody" => round_trip::<ErrorBody>(value),
        "WsEnvelope" => round_trip::<WsEnvelope>(value),
        "StreamReset" => round_trip::<StreamReset>(value),
        "IncidentEscalated" => round_trip::<IncidentEscalated>(value),
        "IncidentPage" => round_trip::<IncidentPage>(value),
        "IncidentSummary" => round_trip::<IncidentSummary>(value),
        "IncidentDetail" => round_trip::<IncidentDetail>(value),
        "IncidentFigures" => round_trip::<IncidentFigures>(value),
        "TimelineEntry" => round_trip::<TimelineEntry>(value),
        "ReloadReport" => round_trip::<ReloadReport>(value),
        "CiLogRequest" => round_trip::<CiLogRequest>(value),
        "CiIntake" => round_trip::<CiIntake>(value),
        "CiIntakeList" => round_trip::<CiIntakeList>(value),
        "CiIncidentList" => round_trip::<CiIncidentList>(value),
        "RemediationProposal" => round_trip::<RemediationProposal>(value),
        "RemediationList" => round_trip::<RemediationList>(value),
        "RemediationDecisionRequest" => round_trip::<RemediationDecisionRequest>(value),
        "KillSwitchRequest" => round_trip::<KillSwitchRequest>(value),
        "KillSwitchState" => round_trip::<KillSwitchState>(value),
        "RemediationStats" => round_trip::<RemediationStats>(value),
        "ReplicaList" => round_trip::<ReplicaList>(value),
        other => Err(format!("no Rust type is mapped to schema {other}")),
    }
}

/// Normalizes timestamps so `+00:00` and `Z` compare equal: the writer always emits `Z`.
fn normalize(value: &Value) -> Value {
    match value {
        Value::String(s) => match chrono::DateTime::parse_from_rfc3339(s) {
            Ok(t) => Value::String(t.with_timezone(&chrono::Utc).to_rfc3339()),
            Err(_) => value.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(normalize).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), normalize(v))).collect())
        }
        other => other.clone(),
    }
}

#[test]
fn every_example_round_trips_and_matches_the_spec() {
    let spec = committed_spec();
    let all = examples();
    assert!(
        all.len() >= 15,
        "expected the full example set, found {}",
        all.len()
    );
    let mut failures = Vec::new();
    for (file, schema, original) in &all {
        let written = match round_trip_by_name(schema, original) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{file}: does not deserialize: {e}"));
                continue;
            }
        };
        if normalize(&written) != normalize(original) {
            failures.push(format!(
                "{file}: re-serialized JSON differs\n  original: {original}\n  written:  {written}"
            ));
        }
        for (which, doc) in [("original", original), ("re-serialized", &written)] {
            for error in schema_errors(&spec, schema, doc) {
                failures.push(format!("{file} ({which}) violates {schema}: {error}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_websocket_type_has_an_example() {
    let types: Vec<String> = examples()
        .iter()
        .filter(|(_, schema, _)| schema == "WsEnvelope")
        .map(|(_, _, v)| v["type"].as_str().unwrap().to_owned())
        .collect();
    for kind in fixloop_contract::WsMessage::ALL_TYPES {
        assert!(
            types.iter().any(|t| t == kind),
            "no WsEnvelope example of type {kind}"
        );
    }
}

#[test]
fn seq_is_optional_and_omitted_when_absent() {
    let without: WsEnvelope =
        serde_json::from_str(include_str!("../examples/WsEnvelope.copilot.answer.json")).unwrap();
    assert_eq!(without.seq, None);
    let written = serde_json::to_value(&without).unwrap();
    assert!(
        written.get("seq").is_none(),
        "a v1 envelope stays as it was"
    );
    let with: WsEnvelope = serde_json::from_str(include_str!(
        "../examples/WsEnvelope.copilot.answer.seq.json"
    ))
    .unwrap();
    assert_eq!(with.seq, Some(57));
    assert_eq!(with.message, without.message);
    let spec = committed_spec();
    let mut negative = serde_json::to_value(&with).unwrap();
    negative["seq"] = Value::from(-1);
    assert!(serde_json::from_value::<WsEnvelope>(negative.clone()).is_err());
    assert!(!schema_errors(&spec, "WsEnvelope", &negative).is_empty());
}

#[test]
fn timestamp_without_timezone_is_rejected_by_type_and_schema() {
    let spec = committed_spec();
    let mut doc: Value =
        serde_json::from_str(include_str!("../examples/SystemStatus.json")).unwrap();
    doc["updated_at"] = Value::String("2026-11-21T10:15:03".into());
    assert!(serde_json::from_value::<SystemStatus>(doc.clone()).is_err());
    let errors = schema_errors(&spec, "SystemStatus", &doc);
    assert!(
        errors.iter().any(|e| e.starts_with("/updated_at")),
        "schema accepted a naive timestamp: {errors:?}"
    );
}

#[test]
fn renamed_key_is_rejected_by_type_and_schema() {
    let spec = committed_spec();
    let mut doc: Value =
        serde_json::from_str(include_str!("../examples/SystemStatus.json")).unwrap();
    let rate = doc
        .as_object_mut()
        .unwrap()
        .remove("error_rate_5m")
        .unwrap();
    doc["error_rate"] = rate;
    assert!(serde_json::from_value::<SystemStatus>(doc.clone()).is_err());
    let errors = schema_errors(&spec, "SystemStatus", &doc);
    assert!(
        errors.iter().any(|e| e.contains("error_rate_5m")),
        "schema did not name the missing key: {errors:?}"
    );
}

#[test]
fn unknown_enum_value_is_rejected_by_type_and_schema() {
    let spec = committed_spec();
    let mut doc: Value =
        serde_json::from_str(include_str!("../examples/SystemStatus.json")).unwrap();
    doc["status"] = Value::String("OK".into());
    assert!(serde_json::from_value::<SystemStatus>(doc.clone()).is_err());
    assert!(!schema_errors(&spec, "SystemStatus", &doc).is_empty());
}

#[test]
fn unknown_fields_are_ignored_by_readers() {
    let mut doc: Value =
        serde_json::from_str(include_str!("../examples/IncidentCard.json")).unwrap();
    doc["added_in_a_later_version"] = Value::Bool(true);
    doc["plan"]["items"][0]["target"]["extra"] = Value::from(1);
    let card: IncidentCard = serde_json::from_value(doc).expect("unknown fields are ignored");
    assert_eq!(card.incident_id, "inc-0001");
}

#[test]
fn null_or_missing_headers_and_body_read_as_empty_objects_and_write_as_objects() {
    let doc = serde_json::json!({
        "test_id": "t", "name": "n", "type": "API", "priority": 1, "what_it_checks": "w",
        "target": { "method": "GET", "url": "http://127.0.0.1:8001/health", "headers": null },
        "pass_criteria": "status == 200"
    });
    let item: fixloop_contract::PlanItem = serde_json::from_value(doc).unwrap();
    let written = serde_json::to_value(&item).unwrap();
    assert_eq!(written["target"]["headers"], serde_json::json!({}));
    assert_eq!(written["target"]["body_json"], serde_json::json!({}));
}

#[test]
fn nullable_fields_serialize_as_null_not_omitted() {
    let doc: Value =
        serde_json::from_str(include_str!("../examples/IncidentCard.pending-plan.json")).unwrap();
    let card: IncidentCard = serde_json::from_value(doc).unwrap();
    let written = serde_json::to_value(&card).unwrap();
    assert_eq!(written["datadog_summary"]["monitor_id"], Value::Null);
    assert!(
        written["datadog_summary"]
            .as_object()
            .unwrap()
            .contains_key("monitor_id")
    );
    assert!(
        written["datadog_summary"]["signal"]
            .as_object()
            .unwrap()
            .contains_key("top_error")
    );
}
