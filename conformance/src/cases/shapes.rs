//! Seed §5.3 (REST endpoints): every operation called with a valid request, the status and the body validated
//! against the spec's response schema. The cases that need an open incident or a run (`*/2`, `runTests`,
//! `getTestRun/1`) run inside the flow and are code; the others run first, against a quiet server, and are data:
//! the entries of `conformance/cases/shapes.json` (see [`super::data`]), plus a generic case for each operation the
//! runner does not know.
//!
//! Request bodies come from the spec's examples, except where the example would change the server's state
//! (`setDemoBug` sends `{"enabled": false}`, `simulateIncident` sends `INCIDENT_OFF`): the flow exercises the
//! state-changing requests and validates their responses itself.

use serde_json::{Value, json};

use super::check::{check_reply, operation};
use super::context::{Ctx, info};
use super::data::{self, DataBody, DataCase};
use crate::case::{CaseInfo, Outcome, Phase, Profile};
use crate::client::Body;
use crate::spec::Spec;

/// The operations this module knows how to call validly; any other operation of the spec gets a generic case.
const KNOWN: [&str; 15] = [
    "getStatus",
    "setDemoBug",
    "getCurrentIncident",
    "simulateIncident",
    "runTests",
    "getTestRun",
    "askCopilot",
    "connectWebSocket",
    "getService",
    "getIncident",
    "reloadProfile",
    "submitCiLogs",
    "approveRemediation",
    "rejectRemediation",
    "setRemediationKillSwitch",
];

/// The proposal id the remediation decision cases name: no server has it.
const UNKNOWN_PROPOSAL: &str = "rem-conformance-none";

/// The id of the case that reports a broken data file (only present when the embedded data file is broken).
const DATA_FILE_CASE: &str = "shapes/data.file/1";

/// The cases that run before the flow: the entries of `cases/shapes.json`, then a generic case for each operation
/// of the spec the runner does not know.
pub(super) fn stateless_cases(spec: &Spec) -> Vec<CaseInfo> {
    let phase = Phase::Stateless;
    let mut cases = match data::shapes() {
        Ok(entries) => entries
            .iter()
            .map(|entry| {
                info(
                    entry.profile,
                    &entry.id,
                    &entry.description,
                    &entry.clause,
                    phase,
                )
            })
            .collect(),
        Err(_) => vec![info(
            Profile::Seed,
            DATA_FILE_CASE,
            "the embedded data file of stateless cases satisfies its meta-schema",
            "STYLE §6; conformance/cases/cases.schema.json",
            phase,
        )],
    };
    if spec.operation("getService").is_some() {
        cases.push(info(
            Profile::Fixloop,
            "shapes/getService/1",
            "GET /api/services/{name} of a service listed by GET /api/services answers 200 with that ServiceState",
            "openapi.yaml (additive); operationId getService; #/components/schemas/ServiceState",
            phase,
        ));
        cases.push(info(
            Profile::Fixloop,
            "shapes/getService/2",
            "GET /api/services/{name} of an unknown name answers 404 with an ErrorBody",
            "openapi.yaml (additive); operationId getService; #/components/schemas/ErrorBody",
            phase,
        ));
    }
    if spec.operation("reloadProfile").is_some() {
        cases.push(info(
            Profile::Fixloop,
            "shapes/reloadProfile/1",
            "POST /api/admin/reload answers 200 with a ReloadReport (a server started from a profile file; reloading it unchanged changes nothing) or 409 `no_profile` with an ErrorBody",
            "openapi.yaml (additive); operationId reloadProfile; #/components/schemas/ReloadReport",
            phase,
        ));
    }
    if spec.operation("submitCiLogs").is_some() {
        cases.push(info(
            Profile::Fixloop,
            "shapes/submitCiLogs/1",
            "POST /api/ci/logs with the spec's example and no CI token (the runner holds none) answers 401 `unauthorized`, or 404 `ci_intake_disabled` when the runner sends an API token to a server whose intake is off, with an ErrorBody",
            "openapi.yaml (additive); operationId submitCiLogs; security ciToken; #/components/schemas/ErrorBody",
            phase,
        ));
    }
    for (operation, verb) in [
        ("approveRemediation", "approve"),
        ("rejectRemediation", "reject"),
    ] {
        if spec.operation(operation).is_some() {
            cases.push(info(
                Profile::Fixloop,
                &format!("shapes/{operation}/1"),
                &format!(
                    "POST /api/remediations/{{proposal_id}}/{verb} naming a proposal no server has answers 404 `proposal_not_found` with an ErrorBody"
                ),
                &format!("openapi.yaml (additive); operationId {operation}; #/components/schemas/ErrorBody"),
                phase,
            ));
        }
    }
    if spec.operation("setRemediationKillSwitch").is_some() {
        cases.push(info(
            Profile::Fixloop,
            "shapes/setRemediationKillSwitch/1",
            "POST /api/remediation/kill-switch releasing the switch answers 200 with a KillSwitchState that is not engaged",
            "openapi.yaml (additive); operationId setRemediationKillSwitch; #/components/schemas/KillSwitchState",
            phase,
        ));
    }
    for operation in spec.operations() {
        if !KNOWN.contains(&operation.id.as_str()) {
            // An operation the seed does not have is one of FixLoop's additive endpoints.
            cases.push(info(
                Profile::Fixloop,
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
            Profile::Seed,
            "shapes/getStatus/2",
            "during the incident GET /api/status answers a SystemStatus naming the open incident",
            "seed §5.3 #1, §6; operationId getStatus; #/components/schemas/SystemStatus",
            phase,
        ),
        info(
            Profile::Seed,
            "shapes/getCurrentIncident/2",
            "during the incident GET /api/incidents/current answers the open IncidentCard",
            "seed §5.3 #3; operationId getCurrentIncident; #/components/schemas/IncidentCard",
            phase,
        ),
        info(
            Profile::Seed,
            "shapes/runTests/1",
            "POST /api/tests/run for the open incident answers 200 with a TestRun of that incident",
            "seed §5.3 #5; operationId runTests; #/components/schemas/TestRun",
            phase,
        ),
        info(
            Profile::Seed,
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

    match data::shapes() {
        Ok(entries) => {
            for entry in entries {
                if !ctx.wants(&entry.id) {
                    continue;
                }
                if !ctx.budget_left() {
                    return;
                }
                let outcome = run_data_case(ctx, entry).await;
                ctx.record(&entry.id, outcome);
            }
        }
        Err(error) => ctx.record(
            DATA_FILE_CASE,
            Outcome::fail(
                "a data file valid against its meta-schema",
                error.to_string(),
                "",
            ),
        ),
    }

    if spec.operation("getService").is_some()
        && (ctx.wants("shapes/getService/1") || ctx.wants("shapes/getService/2"))
    {
        service_by_name(ctx).await;
    }
    if spec.operation("reloadProfile").is_some()
        && ctx.wants("shapes/reloadProfile/1")
        && ctx.budget_left()
    {
        let outcome = reload_profile(ctx).await;
        ctx.record("shapes/reloadProfile/1", outcome);
    }
    if spec.operation("submitCiLogs").is_some()
        && ctx.wants("shapes/submitCiLogs/1")
        && ctx.budget_left()
    {
        let outcome = submit_ci_logs(ctx).await;
        ctx.record("shapes/submitCiLogs/1", outcome);
    }
    remediation_cases(ctx).await;
    for operation in spec.operations() {
        if KNOWN.contains(&operation.id.as_str()) {
            continue;
        }
        let id = format!("shapes/{}/1", operation.id);
        if !ctx.wants(&id) {
            continue;
        }
        if !ctx.budget_left() {
            return;
        }
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

/// Runs one data case: its request, then the status and the body against its schema.
async fn run_data_case(ctx: &Ctx<'_>, entry: &DataCase) -> Outcome {
    let body = match &entry.body {
        None => Body::None,
        Some(DataBody::Json { json }) => Body::Json(json.clone()),
        Some(DataBody::SpecExample { fallback, .. }) => Body::Json(
            ctx.spec
                .operation(&entry.operation_id)
                .and_then(|op| op.request_example.clone())
                .unwrap_or_else(|| fallback.clone()),
        ),
    };
    let operation = match operation(ctx.spec, &entry.operation_id) {
        Ok(operation) => operation,
        Err(outcome) => return outcome,
    };
    let reply = ctx.http().send(&entry.method, &entry.path, body).await;
    let status = entry.expected_status.to_string();
    let result = match entry.schema_ref() {
        // The status must still be one the spec documents; the body is checked against the named component.
        Some(reference) if operation.responses.contains_key(&status) => {
            let mut operation = operation.clone();
            operation
                .responses
                .insert(status, Some(json!({ "$ref": reference })));
            check_reply(ctx.spec, &operation, &reply, entry.expected_status)
        }
        _ => check_reply(ctx.spec, operation, &reply, entry.expected_status),
    };
    match result {
        Ok(_) => Outcome::Pass,
        Err(outcome) => outcome,
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

/// `shapes/getService/1` and `/2`: a listed service is served by name; an unknown name is a 404.
async fn service_by_name(ctx: &mut Ctx<'_>) {
    let listed = ctx.http().send("GET", "/api/services", Body::None).await;
    let first = listed.ok().and_then(|reply| {
        let body = reply.json.ok()?;
        body.get(0)?.get("name")?.as_str().map(str::to_owned)
    });
    let outcome = match first {
        None => Outcome::skip("GET /api/services lists no service to ask for by name"),
        Some(name) => {
            let path = format!("/api/services/{}", percent_encode(&name));
            match request(ctx, "getService", "GET", &path, Body::None, 200).await {
                Err(outcome) => outcome,
                Ok(body) if body["name"].as_str() == Some(name.as_str()) => Outcome::Pass,
                Ok(body) => {
                    Outcome::fail(format!("name {name:?}"), body["name"].to_string(), "/name")
                }
            }
        }
    };
    ctx.record("shapes/getService/1", outcome);
    let outcome = simple(
        ctx,
        "getService",
        "GET",
        "/api/services/fixloop-conformance-no-such-service",
        Body::None,
        404,
    )
    .await;
    ctx.record("shapes/getService/2", outcome);
}

/// `shapes/reloadProfile/1`: a reload answers what it changed, or that the server has no profile file to reload.
async fn reload_profile(ctx: &Ctx<'_>) -> Outcome {
    let operation = match operation(ctx.spec, "reloadProfile") {
        Ok(operation) => operation,
        Err(outcome) => return outcome,
    };
    let reply = ctx
        .http()
        .send("POST", "/api/admin/reload", Body::None)
        .await;
    let no_profile = reply.as_ref().is_ok_and(|reply| reply.status == 409);
    match check_reply(
        ctx.spec,
        operation,
        &reply,
        if no_profile { 409 } else { 200 },
    ) {
        Err(outcome) => outcome,
        Ok(body) if no_profile && body["code"] != "no_profile" => Outcome::fail(
            "code \"no_profile\" with a 409",
            body["code"].to_string(),
            "/code",
        ),
        Ok(_) => Outcome::Pass,
    }
}

/// `shapes/submitCiLogs/1`: without the intake's own token, the intake is refused with the reason in its code.
async fn submit_ci_logs(ctx: &Ctx<'_>) -> Outcome {
    let operation = match operation(ctx.spec, "submitCiLogs") {
        Ok(operation) => operation,
        Err(outcome) => return outcome,
    };
    let Some(example) = operation.request_example.clone() else {
        return Outcome::fail("an example request body", "none", "/requestBody");
    };
    let reply = ctx
        .http()
        .send("POST", "/api/ci/logs", Body::Json(example))
        .await;
    let off = reply.as_ref().is_ok_and(|reply| reply.status == 404);
    let (status, code) = if off {
        (404, "ci_intake_disabled")
    } else {
        (401, "unauthorized")
    };
    match check_reply(ctx.spec, operation, &reply, status) {
        Err(outcome) => outcome,
        Ok(body) if body["code"] != code => Outcome::fail(
            format!("code \"{code}\" with a {status}"),
            body["code"].to_string(),
            "/code",
        ),
        Ok(_) => Outcome::Pass,
    }
}

/// `shapes/approveRemediation/1`, `shapes/rejectRemediation/1` (404 `proposal_not_found` for a proposal no server
/// has) and `shapes/setRemediationKillSwitch/1` (releasing the switch: 200, not engaged).
async fn remediation_cases(ctx: &mut Ctx<'_>) {
    for (operation_id, verb) in [
        ("approveRemediation", "approve"),
        ("rejectRemediation", "reject"),
    ] {
        let id = format!("shapes/{operation_id}/1");
        if ctx.spec.operation(operation_id).is_none() || !ctx.wants(&id) || !ctx.budget_left() {
            continue;
        }
        let outcome = match operation(ctx.spec, operation_id) {
            Err(outcome) => outcome,
            Ok(operation) => {
                let path = format!("/api/remediations/{UNKNOWN_PROPOSAL}/{verb}");
                let reply = ctx
                    .http()
                    .send("POST", &path, Body::Json(json!({"version": 1})))
                    .await;
                match check_reply(ctx.spec, operation, &reply, 404) {
                    Err(outcome) => outcome,
                    Ok(body) if body["code"] != "proposal_not_found" => Outcome::fail(
                        "code \"proposal_not_found\"",
                        body["code"].to_string(),
                        "/code",
                    ),
                    Ok(_) => Outcome::Pass,
                }
            }
        };
        ctx.record(&id, outcome);
    }
    let id = "shapes/setRemediationKillSwitch/1";
    if ctx.spec.operation("setRemediationKillSwitch").is_none()
        || !ctx.wants(id)
        || !ctx.budget_left()
    {
        return;
    }
    let outcome = match operation(ctx.spec, "setRemediationKillSwitch") {
        Err(outcome) => outcome,
        Ok(operation) => {
            let reply = ctx
                .http()
                .send(
                    "POST",
                    "/api/remediation/kill-switch",
                    Body::Json(json!({"engaged": false})),
                )
                .await;
            match check_reply(ctx.spec, operation, &reply, 200) {
                Err(outcome) => outcome,
                Ok(body) if body["engaged"] != false => {
                    Outcome::fail("engaged false", body["engaged"].to_string(), "/engaged")
                }
                Ok(_) => Outcome::Pass,
            }
        }
    };
    ctx.record(id, outcome);
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
