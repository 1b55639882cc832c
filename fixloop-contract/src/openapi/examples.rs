//! The example documents: one per schema, set as the `example` of each JSON request and response.

use utoipa::openapi::{OpenApi as Document, RefOr, Schema};

use super::paths::{SCHEMA_PREFIX, operations_mut};
use crate::v1::{ErrorBody, codes};

/// The example document of each schema, keyed by schema name; the same files the round-trip tests read.
pub const EXAMPLES: &[(&str, &str)] = &[
    (
        "SystemStatus",
        include_str!("../../tests/examples/SystemStatus.json"),
    ),
    (
        "IncidentCard",
        include_str!("../../tests/examples/IncidentCard.json"),
    ),
    ("TestRun", include_str!("../../tests/examples/TestRun.json")),
    (
        "ServiceState",
        include_str!("../../tests/examples/ServiceState.json"),
    ),
    (
        "ReloadReport",
        include_str!("../../tests/examples/ReloadReport.json"),
    ),
    (
        "CopilotAnswer",
        include_str!("../../tests/examples/CopilotAnswer.json"),
    ),
    (
        "CiLogRequest",
        include_str!("../../tests/examples/CiLogRequest.json"),
    ),
    (
        "CiIntake",
        include_str!("../../tests/examples/CiIntake.json"),
    ),
    (
        "CiIntakeList",
        include_str!("../../tests/examples/CiIntakeList.json"),
    ),
    (
        "CiIncidentList",
        include_str!("../../tests/examples/CiIncidentList.json"),
    ),
    (
        "ReplicaList",
        include_str!("../../tests/examples/ReplicaList.json"),
    ),
    (
        "SetBugRequest",
        include_str!("../../tests/examples/SetBugRequest.json"),
    ),
    (
        "SimulateRequest",
        include_str!("../../tests/examples/SimulateRequest.json"),
    ),
    (
        "RunTestsRequest",
        include_str!("../../tests/examples/RunTestsRequest.json"),
    ),
    (
        "CopilotAskRequest",
        include_str!("../../tests/examples/CopilotAskRequest.json"),
    ),
    (
        "WsEnvelope",
        include_str!("../../tests/examples/WsEnvelope.system.status.json"),
    ),
    (
        "IncidentPage",
        include_str!("../../tests/examples/IncidentPage.json"),
    ),
    (
        "IncidentDetail",
        include_str!("../../tests/examples/IncidentDetail.json"),
    ),
    (
        "RemediationProposal",
        include_str!("../../tests/examples/RemediationProposal.json"),
    ),
    (
        "RemediationList",
        include_str!("../../tests/examples/RemediationList.json"),
    ),
    (
        "RemediationDecisionRequest",
        include_str!("../../tests/examples/RemediationDecisionRequest.json"),
    ),
    (
        "KillSwitchRequest",
        include_str!("../../tests/examples/KillSwitchRequest.json"),
    ),
    (
        "KillSwitchState",
        include_str!("../../tests/examples/KillSwitchState.json"),
    ),
    (
        "RemediationStats",
        include_str!("../../tests/examples/RemediationStats.json"),
    ),
];

/// Sets each JSON response's and request's `example` from the example documents.
pub(super) fn add_examples(doc: &mut Document) {
    let example_for = |schema: &Option<RefOr<Schema>>| -> Option<serde_json::Value> {
        let reference = match schema.as_ref()? {
            RefOr::Ref(reference) => reference,
            // `Option<T>` renders as `oneOf: [null, $ref]`: use the referenced schema's example.
            RefOr::T(Schema::OneOf(one_of)) => one_of.items.iter().find_map(|item| match item {
                RefOr::Ref(reference) => Some(reference),
                RefOr::T(_) => None,
            })?,
            // `Vec<T>` renders as an array of `$ref`: a list of the referenced schema's example.
            RefOr::T(Schema::Array(array)) => {
                let utoipa::openapi::schema::ArrayItems::RefOrSchema(items) = &array.items else {
                    return None;
                };
                let RefOr::Ref(reference) = items.as_ref() else {
                    return None;
                };
                let name = reference.ref_location.strip_prefix(SCHEMA_PREFIX)?;
                let (_, text) = EXAMPLES.iter().find(|(schema, _)| *schema == name)?;
                return serde_json::from_str(text)
                    .ok()
                    .map(|example| serde_json::Value::Array(vec![example]));
            }
            RefOr::T(_) => return None,
        };
        let name = reference.ref_location.strip_prefix(SCHEMA_PREFIX)?;
        let (_, text) = EXAMPLES.iter().find(|(schema, _)| *schema == name)?;
        serde_json::from_str(text).ok()
    };
    let error_example = |status: &str, path: &str| -> serde_json::Value {
        let (code, message) = match status {
            "400" if path == "/ws" => (
                codes::WEBSOCKET_UPGRADE_REQUIRED,
                "expected a WebSocket upgrade request",
            ),
            "400" if path == "/api/ci/logs" || path == "/api/ci/incidents" => (
                codes::INVALID_QUERY,
                "limit must be an integer from 1 to 100",
            ),
            "404" if path == "/api/ci/logs" => (
                codes::CI_INTAKE_DISABLED,
                "the CI intake is off: set FIXLOOP_CI_TOKEN to enable POST /api/ci/logs",
            ),
            "400" if path == "/api/remediations" => (
                codes::INVALID_QUERY,
                "incident_id must be 1 to 128 characters",
            ),
            "404" if path == "/api/remediations" => {
                (codes::INCIDENT_NOT_FOUND, "no incident has id inc-9999")
            }
            "404" if path.starts_with("/api/remediations/") => (
                codes::PROPOSAL_NOT_FOUND,
                "no remediation proposal has id rem-9999",
            ),
            "409" if path.starts_with("/api/remediations/") => (
                codes::VERSION_CONFLICT,
                "remediation proposal rem-7f3a-1 is at version 3, not 2: read it again, then decide",
            ),
            "403" if path.contains("remediation") => (
                codes::FORBIDDEN,
                "this route needs a token with the approve role",
            ),
            "400" if path == "/api/incidents" => (
                codes::INVALID_QUERY,
                "limit must be an integer from 1 to 100",
            ),
            "400" => (
                codes::INVALID_JSON,
                "the request body is not valid JSON: expected value at line 1 column 1",
            ),
            "404" if path.contains("runs") => (codes::RUN_NOT_FOUND, "no run has id run-9999"),
            "404" if path.contains("services") => (
                codes::SERVICE_NOT_FOUND,
                "no watched service is called billing",
            ),
            "404" => (codes::INCIDENT_NOT_FOUND, "no incident has id inc-9999"),
            "409" => (
                codes::PLAN_NOT_READY,
                "incident inc-0001 has no validated plan yet",
            ),
            "401" => (
                codes::UNAUTHORIZED,
                "this route needs a bearer token: send Authorization: Bearer <token>, or ?access_token=<token> where headers cannot be set",
            ),
            "403" if path == "/ws" => (
                codes::ORIGIN_NOT_ALLOWED,
                "origin http://evil.example may not open /ws: only the server's own pages and FIXLOOP_CORS_ORIGINS may (clients that send no Origin are not affected)",
            ),
            "403" => (
                codes::FORBIDDEN,
                "this route needs a token with the operate role",
            ),
            "429" => (
                codes::RATE_LIMITED,
                "too many copilot requests: try again in 6 s",
            ),
            "413" => (
                codes::PAYLOAD_TOO_LARGE,
                "the request body is larger than 65536 bytes",
            ),
            "415" => (
                codes::UNSUPPORTED_MEDIA_TYPE,
                "expected Content-Type: application/json",
            ),
            "422" => (
                codes::INVALID_BODY,
                "the request body does not match the schema",
            ),
            "502" => (
                codes::UPSTREAM_ERROR,
                "the upstream service answered with an error",
            ),
            "504" => (
                codes::UPSTREAM_TIMEOUT,
                "the upstream service did not answer in time",
            ),
            _ => (codes::INTERNAL, "internal error; see the server log"),
        };
        serde_json::to_value(ErrorBody::new(code, message)).unwrap_or_default()
    };
    for (path, item) in &mut doc.paths.paths {
        for operation in operations_mut(item) {
            if let Some(body) = operation.request_body.as_mut() {
                for content in body.content.values_mut() {
                    content.example = example_for(&content.schema);
                }
            }
            for (status, response) in &mut operation.responses.responses {
                let RefOr::T(response) = response else {
                    continue;
                };
                for content in response.content.values_mut() {
                    content.example = if status.starts_with(['4', '5']) {
                        Some(error_example(status, path))
                    } else {
                        example_for(&content.schema)
                    };
                }
            }
        }
    }
}
