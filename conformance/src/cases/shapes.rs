//! Seed §5.3 (REST endpoints): every operation called with a valid request, the status and the body validated
//! against the spec's response schema. The cases that need an open incident or a run (`*/2`, `runTests`,
//! `getTestRun/1`) run inside the flow; the others run first, against a quiet server.
//!
//! Request bodies come from the spec's examples, except where the example would change the server's state
//! (`setDemoBug` sends `{"enabled": false}`, `simulateIncident` sends `INCIDENT_OFF`): the flow exercises the
//! state-changing requests and validates their responses itself.

use serde_json::{Value, json};

use super::{Ctx, check_reply, info, operation};
use crate::case::{CaseInfo, Outcome, Phase};
use crate::client::Body;
use crate::spec::Spec;

/// The operations this module knows how to call validly; any other operation of the spec gets a generic case.
const KNOWN: [&str; 8] = [
    "getStatus",
    "setDemoBug",
    "getCurrentIncident",
    "simulateIncident",
    "runTests",
    "getTestRun",
    "askCopilot",
    "connectWebSocket",
];

/// The cases that run before the flow.
pub(super) fn stateless_cases(spec: &Spec) -> Vec<CaseInfo> {
    let phase = Phase::Stateless;
    let mut cases = vec![
        info(
            "shapes/getStatus/1",
            "GET /api/status answers 200 with a SystemStatus",
            "seed §5.3 #1; operationId getStatus; #/components/schemas/SystemStatus",
            phase,
        ),
        info(
            "shapes/setDemoBug/1",
            "POST /api/demo/bug {\"enabled\":false} answers 200 with a SystemStatus",
            "seed §5.3 #2; operationId setDemoBug; #/components/schemas/SystemStatus",
            phase,
        ),
        info(
            "shapes/simulateIncident/1",
            "POST /api/incidents/simulate {\"mode\":\"INCIDENT_OFF\"} answers 200 with null or an IncidentCard",
            "seed §5.3 #4; operationId simulateIncident; #/components/schemas/IncidentCard",
            phase,
        ),
        info(
            "shapes/getCurrentIncident/1",
            "GET /api/incidents/current answers 200 with null or an IncidentCard",
            "seed §5.3 #3; operationId getCurrentIncident; #/components/schemas/IncidentCard",
            phase,
        ),
        info(
            "shapes/getTestRun/2",
            "GET /api/tests/runs/does-not-exist answers 404 with an ErrorBody",
            "seed §5.3 #6; operationId getTestRun; #/components/schemas/ErrorBody",
            phase,
        ),
        info(
            "shapes/askCopilot/1",
            "POST /api/copilot/ask with the spec's request example answers 200 with a CopilotAnswer",
            "seed §5.3 #7; operationId askCopilot; #/components/schemas/CopilotAnswer",
            phase,
        ),
        info(
            "shapes/connectWebSocket/1",
            "GET /ws without an upgrade answers 400 with an ErrorBody",
            "openapi.yaml GET /ws responses; operationId connectWebSocket; #/components/schemas/ErrorBody",
            phase,
        ),
    ];
    for operation in spec.operations() {
        if !KNOWN.contains(&operation.id.as_str()) {
            cases.push(info(
                &format!("shapes/{}/1", operation.id),
                &format!(
                    "{} {} answers 2xx with a body valid against its schema",
                    operation.method, operation.path
                ),
                &format!("openapi.yaml; operationId {}", operation.id),
                phase,
            ));
        }
    }
    cases
}

/// The cases that need the flow's incident or run.
pub(super) fn flow_cases() -> Vec<CaseInfo> {
    let phase = Phase::Flow;
    vec![
        info(
            "shapes/getStatus/2",
            "during the incident GET /api/status answers a SystemStatus naming the open incident",
            "seed §5.3 #1, §6; operationId getStatus; #/components/schemas/SystemStatus",
            phase,
        ),
        info(
            "shapes/getCurrentIncident/2",
            "during the incident GET /api/incidents/current answers the open IncidentCard",
            "seed §5.3 #3; operationId getCurrentIncident; #/components/schemas/IncidentCard",
            phase,
        ),
        info(
            "shapes/runTests/1",
            "POST /api/tests/run for the open incident answers 200 with a TestRun of that incident",
            "seed §5.3 #5; operationId runTests; #/components/schemas/TestRun",
            phase,
        ),
        info(
            "shapes/getTestRun/1",
            "GET /api/tests/runs/{run_id} of a run seen in the flow answers 200 with that TestRun",
            "seed §5.3 #6; operationId getTestRun; #/components/schemas/TestRun",
            phase,
        ),
    ]
}

/// Runs the stateless cases.
pub(super) async fn run_stateless(ctx: &mut Ctx<'_>) {
    let spec = ctx.spec;

    let outcome = simple(ctx, "getStatus", "GET", "/api/status", Body::None, 200).await;
    ctx.record("shapes/getStatus/1", outcome);

    let outcome = simple(
        ctx,
        "setDemoBug",
        "POST",
        "/api/demo/bug",
        Body::Json(json!({"enabled": false})),
        200,
    )
    .await;
    ctx.record("shapes/setDemoBug/1", outcome);

    let outcome = simple(
        ctx,
        "simulateIncident",
        "POST",
        "/api/incidents/simulate",
        Body::Json(json!({"mode": "INCIDENT_OFF"})),
        200,
    )
    .await;
    ctx.record("shapes/simulateIncident/1", outcome);

    let outcome = simple(
        ctx,
        "getCurrentIncident",
        "GET",
        "/api/incidents/current",
        Body::None,
        200,
    )
    .await;
    ctx.record("shapes/getCurrentIncident/1", outcome);

    let outcome = simple(
        ctx,
        "getTestRun",
        "GET",
        "/api/tests/runs/does-not-exist",
        Body::None,
        404,
    )
    .await;
    ctx.record("shapes/getTestRun/2", outcome);

    let body = spec
        .operation("askCopilot")
        .and_then(|op| op.request_example.clone())
        .unwrap_or_else(
            || json!({"incident_id": null, "question": "Is it safe to resume traffic?"}),
        );
    let outcome = simple(
        ctx,
        "askCopilot",
        "POST",
        "/api/copilot/ask",
        Body::Json(body),
        200,
    )
    .await;
    ctx.record("shapes/askCopilot/1", outcome);

    let outcome = simple(ctx, "connectWebSocket", "GET", "/ws", Body::None, 400).await;
    ctx.record("shapes/connectWebSocket/1", outcome);

    for operation in spec.operations() {
        if KNOWN.contains(&operation.id.as_str()) {
            continue;
        }
        let id = format!("shapes/{}/1", operation.id);
        let outcome = if operation.method == "GET" && !operation.path.contains('{') {
            let status = operation
                .responses
                .keys()
                .find(|status| status.starts_with('2'))
                .and_then(|status| status.parse().ok())
                .unwrap_or(200);
            let path = operation.path.clone();
            simple(ctx, &operation.id, "GET", &path, Body::None, status).await
        } else {
            Outcome::skip(format!(
                "the runner knows no valid request for {} {} (a new operation of the spec)",
                operation.method, operation.path
            ))
        };
        ctx.record(&id, outcome);
    }
}

/// Calls `path` and checks the reply against `operation_id`'s documented response for `status`.
pub(super) async fn simple(
    ctx: &Ctx<'_>,
    operation_id: &str,
    method: &str,
    path: &str,
    body: Body,
    status: u16,
) -> Outcome {
    match request(ctx, operation_id, method, path, body, status).await {
        Ok(_) => Outcome::Pass,
        Err(outcome) => outcome,
    }
}

/// Calls `path` and checks the reply; returns the JSON body when it is valid.
pub(super) async fn request(
    ctx: &Ctx<'_>,
    operation_id: &str,
    method: &str,
    path: &str,
    body: Body,
    status: u16,
) -> Result<Value, Outcome> {
    let operation = operation(ctx.spec, operation_id)?;
    let reply = ctx.http().send(method, path, body).await;
    check_reply(ctx.spec, operation, &reply, status)
}

/// `shapes/getStatus/2`: the status names the open incident.
pub(super) async fn status_during_incident(ctx: &mut Ctx<'_>, incident_id: &str) {
    let outcome = match request(ctx, "getStatus", "GET", "/api/status", Body::None, 200).await {
        Err(outcome) => outcome,
        Ok(body) => {
            if body["active_incident_id"].as_str() == Some(incident_id) {
                Outcome::Pass
            } else {
                Outcome::fail(
                    format!("active_incident_id {incident_id:?} while the incident is open"),
                    body["active_incident_id"].to_string(),
                    "/active_incident_id",
                )
            }
        }
    };
    ctx.record("shapes/getStatus/2", outcome);
}

/// `shapes/getCurrentIncident/2`: the current incident is the open one. Returns its card when valid.
pub(super) async fn incident_during_incident(ctx: &mut Ctx<'_>, incident_id: &str) {
    let outcome = match request(
        ctx,
        "getCurrentIncident",
        "GET",
        "/api/incidents/current",
        Body::None,
        200,
    )
    .await
    {
        Err(outcome) => outcome,
        Ok(body) => {
            if body["incident_id"].as_str() == Some(incident_id) {
                Outcome::Pass
            } else {
                Outcome::fail(
                    format!("the open incident {incident_id:?}"),
                    crate::spec::short_json(&body),
                    "/incident_id",
                )
            }
        }
    };
    ctx.record("shapes/getCurrentIncident/2", outcome);
}

/// `shapes/getTestRun/1`: the run is served with its own id.
pub(super) async fn run_by_id(ctx: &mut Ctx<'_>, run_id: &str) {
    let path = format!("/api/tests/runs/{}", percent_encode(run_id));
    let outcome = match request(ctx, "getTestRun", "GET", &path, Body::None, 200).await {
        Err(outcome) => outcome,
        Ok(body) if body["run_id"].as_str() == Some(run_id) => Outcome::Pass,
        Ok(body) => Outcome::fail(
            format!("run_id {run_id:?}"),
            body["run_id"].to_string(),
            "/run_id",
        ),
    };
    ctx.record("shapes/getTestRun/1", outcome);
}

/// Percent-encodes a path segment.
fn percent_encode(segment: &str) -> String {
    let mut out = String::new();
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(percent_encode("run-0001"), "run-0001");
        assert_eq!(percent_encode("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn an_unknown_operation_gets_a_generic_case() {
        let mut document = Spec::embedded().expect("embedded spec").document().clone();
        document["paths"]["/api/extra"] = json!({"get": {"operationId": "getExtra", "responses": {"200": {"description": "ok"}}}});
        let spec = Spec::from_value(document).expect("spec");
        let ids: Vec<String> = stateless_cases(&spec)
            .into_iter()
            .map(|case| case.id)
            .collect();
        assert!(ids.contains(&"shapes/getExtra/1".to_owned()), "{ids:?}");
    }
}
