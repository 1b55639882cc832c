//! `openapi.yaml` is the generated document, and it carries every key, enum value and endpoint of the seed's §5.

use serde_json::{Value, json};

use crate::support::{committed_spec, schema_errors, spec_path};

const UPDATE_HINT: &str = "UPDATE_OPENAPI=1 cargo test -p fixloop-contract --test it openapi";

#[test]
fn committed_openapi_yaml_matches_the_generated_one() {
    let generated = fixloop_contract::openapi::openapi_yaml();
    let path = spec_path();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).expect("openapi.yaml is writable");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != generated {
        let first_difference = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .map_or(
                committed.lines().count().min(generated.lines().count()),
                |n| n,
            )
            + 1;
        panic!(
            "openapi.yaml is stale (first difference at line {first_difference}); regenerate it with:\n    {UPDATE_HINT}"
        );
    }
}

#[test]
fn json_rendering_is_the_same_document() {
    let from_json: Value =
        serde_json::from_str(&fixloop_contract::openapi::openapi_json()).unwrap();
    assert!(
        from_json == committed_spec(),
        "openapi_json() and openapi.yaml describe different documents; regenerate with:\n    {UPDATE_HINT}"
    );
}

fn schema<'a>(spec: &'a Value, name: &str) -> &'a Value {
    spec["components"]["schemas"]
        .get(name)
        .unwrap_or_else(|| panic!("openapi.yaml has no schema {name}"))
}

fn assert_required_keys(spec: &Value, name: &str, keys: &[&str]) {
    let schema = schema(spec, name);
    let required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap_or_else(|| panic!("{name} has no required list"))
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for key in keys {
        assert!(
            schema["properties"].get(*key).is_some(),
            "{name} lacks property {key}"
        );
        assert!(required.contains(key), "{name}.{key} is not required");
    }
}

fn assert_enum(spec: &Value, name: &str, values: &[&str]) {
    let found: Vec<&str> = schema(spec, name)["enum"]
        .as_array()
        .unwrap_or_else(|| panic!("{name} is not an enum"))
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(found, values, "{name} enum values");
}

/// A nullable property is a type list containing "null" or a oneOf with a null branch.
fn is_nullable(property: &Value) -> bool {
    let types_null = property["type"]
        .as_array()
        .is_some_and(|t| t.iter().any(|v| v == "null"));
    let one_of_null = property["oneOf"]
        .as_array()
        .is_some_and(|o| o.iter().any(|v| v["type"] == "null"));
    types_null || one_of_null
}

#[test]
fn every_seed_key_and_enum_value_is_in_the_spec() {
    let spec = committed_spec();
    assert_enum(
        &spec,
        "IncidentState",
        &["HEALTHY", "INCIDENT_ACTIVE", "VALIDATING", "RECOVERED"],
    );
    assert_enum(
        &spec,
        "RunStatus",
        &["QUEUED", "RUNNING", "COMPLETED", "FAILED"],
    );
    assert_enum(&spec, "TestStatus", &["PENDING", "RUNNING", "PASS", "FAIL"]);
    assert_enum(&spec, "PlanItemType", &["API", "UI", "SYNTHETIC"]);
    assert_enum(&spec, "HttpMethod", &["GET", "POST", "PUT", "DELETE"]);
    assert_enum(&spec, "SimulateMode", &["INCIDENT_ON", "INCIDENT_OFF"]);

    assert_required_keys(
        &spec,
        "SystemStatus",
        &[
            "status",
            "error_rate_5m",
            "p95_latency_ms_5m",
            "active_incident_id",
            "updated_at",
        ],
    );
    assert_required_keys(
        &spec,
        "IncidentCard",
        &[
            "incident_id",
            "title",
            "detected_at",
            "datadog_summary",
            "plan",
        ],
    );
    assert_required_keys(
        &spec,
        "DatadogSummary",
        &["monitor_id", "service", "signal", "evidence_links"],
    );
    assert_required_keys(
        &spec,
        "Signal",
        &["error_rate_5m", "p95_latency_ms_5m", "top_error"],
    );
    assert_required_keys(&spec, "Link", &["label", "url"]);
    assert_required_keys(&spec, "Plan", &["plan_id", "generated_at", "items"]);
    assert_required_keys(
        &spec,
        "PlanItem",
        &[
            "test_id",
            "name",
            "type",
            "priority",
            "what_it_checks",
            "target",
            "pass_criteria",
        ],
    );
    assert_required_keys(&spec, "Target", &["method", "url"]);
    for key in ["headers", "body_json"] {
        assert_eq!(
            schema(&spec, "Target")["properties"][key]["type"],
            "object",
            "Target.{key} is an object"
        );
    }
    assert_required_keys(
        &spec,
        "TestRun",
        &["run_id", "incident_id", "started_at", "status", "tests"],
    );
    assert_required_keys(
        &spec,
        "TestResult",
        &["test_id", "name", "status", "last_update_at", "details"],
    );
    assert_required_keys(
        &spec,
        "CopilotAnswer",
        &[
            "incident_id",
            "question",
            "answer",
            "citations",
            "created_at",
        ],
    );
    assert_required_keys(&spec, "PlanGenerated", &["incident_id", "plan"]);
    assert_required_keys(&spec, "SetBugRequest", &["enabled"]);
    assert_required_keys(&spec, "SimulateRequest", &["mode"]);
    assert_required_keys(&spec, "RunTestsRequest", &["incident_id"]);
    assert_required_keys(&spec, "CopilotAskRequest", &["question"]);
    assert!(
        schema(&spec, "CopilotAskRequest")["properties"]
            .get("incident_id")
            .is_some()
    );
    assert_required_keys(&spec, "ErrorBody", &["code", "message"]);

    for (name, key) in [
        ("SystemStatus", "active_incident_id"),
        ("DatadogSummary", "monitor_id"),
        ("Signal", "top_error"),
        ("TestResult", "details"),
        ("CopilotAnswer", "incident_id"),
        ("CopilotAskRequest", "incident_id"),
    ] {
        assert!(
            is_nullable(&schema(&spec, name)["properties"][key]),
            "{name}.{key} is nullable"
        );
    }
    for (name, key) in [
        ("SystemStatus", "updated_at"),
        ("IncidentCard", "detected_at"),
        ("Plan", "generated_at"),
        ("TestRun", "started_at"),
        ("TestResult", "last_update_at"),
        ("CopilotAnswer", "created_at"),
    ] {
        assert_eq!(
            schema(&spec, name)["properties"][key]["format"],
            "date-time",
            "{name}.{key}"
        );
    }
}

#[test]
fn every_seed_endpoint_is_in_the_spec() {
    let spec = committed_spec();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));
    for (method, path) in [
        ("get", "/api/status"),
        ("post", "/api/demo/bug"),
        ("get", "/api/incidents/current"),
        ("post", "/api/incidents/simulate"),
        ("post", "/api/tests/run"),
        ("get", "/api/tests/runs/{run_id}"),
        ("post", "/api/copilot/ask"),
        ("get", "/ws"),
    ] {
        let operation = &spec["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is missing");
        assert!(
            operation["operationId"].is_string(),
            "{method} {path} has no operationId"
        );
        for (status, response) in operation["responses"].as_object().unwrap() {
            if status.starts_with('4') || status.starts_with('5') {
                assert_eq!(
                    response["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{method} {path} {status} carries ErrorBody"
                );
            }
        }
    }
    for path in [
        "/api/demo/bug",
        "/api/incidents/simulate",
        "/api/tests/run",
        "/api/copilot/ask",
    ] {
        let responses = &spec["paths"][path]["post"]["responses"];
        for status in ["400", "413", "415", "422"] {
            assert!(
                responses.get(status).is_some(),
                "POST {path} documents {status}"
            );
        }
    }
    assert!(
        spec["paths"]["/api/tests/runs/{run_id}"]["get"]["responses"]
            .get("404")
            .is_some()
    );
}

#[test]
fn websocket_messages_are_a_discriminated_one_of() {
    let spec = committed_spec();
    let envelope = schema(&spec, "WsEnvelope");
    assert_eq!(envelope["discriminator"]["propertyName"], "type");
    let branches = envelope["oneOf"].as_array().unwrap();
    assert_eq!(branches.len(), 9);
    for (kind, payload) in [
        ("stream.reset", "StreamReset"),
        ("remediation.proposed", "RemediationProposal"),
        ("remediation.updated", "RemediationProposal"),
        ("incident.escalated", "IncidentEscalated"),
        ("system.status", "SystemStatus"),
        ("incident.created", "IncidentCard"),
        ("plan.generated", "PlanGenerated"),
        ("tests.updated", "TestRun"),
        ("copilot.answer", "CopilotAnswer"),
    ] {
        let target = envelope["discriminator"]["mapping"][kind].as_str().unwrap();
        let name = target.rsplit('/').next().unwrap();
        let message = schema(&spec, name);
        assert_eq!(message["properties"]["type"]["enum"][0], kind);
        assert_eq!(
            message["properties"]["payload"]["$ref"],
            format!("#/components/schemas/{payload}")
        );
        assert_eq!(message["properties"]["ts"]["format"], "date-time");
        assert_eq!(message["properties"]["seq"]["type"], "integer");
        assert!(
            !message["required"]
                .as_array()
                .unwrap()
                .iter()
                .any(|key| key == "seq"),
            "seq is optional: v1 clients and servers need not know it"
        );
    }
    let since = spec["paths"]["/ws"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|parameter| parameter["name"] == "since")
        .expect("/ws documents ?since");
    assert_eq!(since["in"], "query");
    assert_eq!(since["required"], false);
    assert_eq!(since["schema"]["minimum"], 0);
    assert_eq!(
        spec["paths"]["/ws"]["get"]["x-websocket-messages"]["$ref"],
        "#/components/schemas/WsEnvelope"
    );
}

#[test]
fn every_json_response_and_request_has_an_example() {
    let spec = committed_spec();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if let Some(content) =
                operation["requestBody"]["content"]["application/json"].as_object()
            {
                assert!(
                    content.contains_key("example"),
                    "{method} {path} request has no example"
                );
            }
            let ok = &operation["responses"]["200"]["content"]["application/json"];
            if ok.is_object() {
                assert!(
                    ok.get("example").is_some(),
                    "{method} {path} 200 has no example"
                );
            }
        }
    }
}

/// Every character of the Basic Multilingual Plane (where every `White_Space` character is), surrogates excluded
/// (they are not `char`s), and every 251st beyond it (enough to catch a dialect that sees UTF-16 halves).
fn every_char() -> impl Iterator<Item = char> {
    (0..=0xFFFF)
        .chain((0x1_0000..=u32::from(char::MAX)).step_by(251))
        .filter_map(char::from_u32)
}

#[test]
fn non_blank_texts_carry_the_pattern_that_rejects_exactly_rusts_whitespace() {
    let spec = committed_spec();
    for (name, key) in [
        ("CopilotAskRequest", "question"),
        ("RunTestsRequest", "incident_id"),
    ] {
        assert_eq!(
            schema(&spec, name)["properties"][key]["pattern"],
            fixloop_contract::NON_BLANK_PATTERN,
            "{name}.{key} says it must not be blank"
        );
    }
    // The server rejects a required text when `str::trim` leaves nothing, that is when every character is
    // `char::is_whitespace`. The pattern must draw the same line on every character, in the validator's dialect.
    let validator = jsonschema::draft202012::options()
        .build(&json!({"type": "string", "pattern": fixloop_contract::NON_BLANK_PATTERN}))
        .expect("the pattern compiles");
    let disagreements: Vec<String> = every_char()
        .filter(|c| validator.is_valid(&json!(c.to_string())) == c.is_whitespace())
        .map(|c| format!("U+{:04X}", u32::from(c)))
        .collect();
    assert!(
        disagreements.is_empty(),
        "the pattern and char::is_whitespace disagree on {disagreements:?}"
    );
    for (text, valid) in [
        ("\r", false),
        ("  \t\n\u{3000}", false),
        (" why? ", true),
        ("\u{feff}", true),
    ] {
        assert_eq!(validator.is_valid(&json!(text)), valid, "{text:?}");
    }
    let errors = schema_errors(&spec, "CopilotAskRequest", &json!({"question": "\r"}));
    assert!(
        !errors.is_empty(),
        "a question of only whitespace is outside the spec"
    );
}

#[test]
fn every_link_names_an_existing_operation_and_inputs_it_has() {
    let spec = committed_spec();
    let operations: Vec<(&str, &Value)> = spec["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .values()
                .map(move |operation| (path.as_str(), operation))
        })
        .collect();
    let by_id = |id: &str| {
        operations
            .iter()
            .find(|(_, operation)| operation["operationId"] == id)
            .unwrap_or_else(|| panic!("no operation has operationId {id}"))
    };
    let mut count = 0;
    for (path, operation) in &operations {
        for (status, response) in operation["responses"].as_object().unwrap() {
            let Some(links) = response.get("links").and_then(Value::as_object) else {
                continue;
            };
            for (name, link) in links {
                count += 1;
                let label = format!("{path} {status} link {name}");
                let keys: Vec<&str> = link
                    .as_object()
                    .unwrap()
                    .keys()
                    .map(String::as_str)
                    .collect();
                for key in &keys {
                    assert!(
                        ["operationId", "parameters", "requestBody", "description"].contains(key),
                        "{label}: {key} is not a Link Object key"
                    );
                }
                let (_, target) = by_id(link["operationId"].as_str().expect("operationId"));
                for parameter in link["parameters"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, _)| k)
                {
                    assert!(
                        target["parameters"]
                            .as_array()
                            .is_some_and(|list| list.iter().any(|p| p["name"] == **parameter)),
                        "{label}: the target has no parameter {parameter}"
                    );
                }
                if let Some(body) = link["requestBody"].as_object() {
                    let reference = target["requestBody"]["content"]["application/json"]["schema"]
                        ["$ref"]
                        .as_str()
                        .expect("the target takes a JSON body");
                    let body_schema = schema(&spec, reference.rsplit('/').next().unwrap());
                    for field in body.keys() {
                        assert!(
                            body_schema["properties"].get(field).is_some(),
                            "{label}: the target's body has no field {field}"
                        );
                    }
                }
                let expressions = link["parameters"]
                    .as_object()
                    .into_iter()
                    .chain(link["requestBody"].as_object())
                    .flat_map(|map| map.values());
                for expression in expressions {
                    let expression = expression.as_str().unwrap();
                    assert!(
                        expression.starts_with("$response.body#/"),
                        "{label}: {expression} reads the answer's body"
                    );
                }
            }
        }
    }
    assert!(count >= 5, "the spec declares its links ({count} found)");
    let run = &spec["paths"]["/api/tests/run"]["post"]["responses"]["200"]["links"]["GetTestRun"];
    assert_eq!(run["operationId"], "getTestRun");
    assert_eq!(run["parameters"]["run_id"], "$response.body#/run_id");
}

#[test]
fn websocket_upgrade_headers_are_required_parameters() {
    let spec = committed_spec();
    let parameters = spec["paths"]["/ws"]["get"]["parameters"]
        .as_array()
        .expect("/ws has parameters");
    let names: Vec<&str> = parameters
        .iter()
        .filter(|parameter| parameter["in"] == "header")
        .inspect(|parameter| {
            assert_eq!(parameter["in"], "header");
            assert_eq!(parameter["required"], true);
            assert!(parameter["example"].is_string());
        })
        .map(|parameter| parameter["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Connection",
            "Upgrade",
            "Sec-WebSocket-Version",
            "Sec-WebSocket-Key"
        ]
    );
    assert!(
        spec["paths"]["/ws"]["get"]["responses"]
            .get("400")
            .is_some()
    );
}

#[test]
fn every_operation_needs_a_token_of_its_role_and_documents_401_403_429() {
    let spec = committed_spec();
    let schemes = &spec["components"]["securitySchemes"];
    assert_eq!(schemes["bearerAuth"]["type"], "http");
    assert_eq!(schemes["bearerAuth"]["scheme"], "bearer");
    assert_eq!(schemes["accessToken"]["type"], "apiKey");
    assert_eq!(schemes["accessToken"]["in"], "query");
    assert_eq!(schemes["accessToken"]["name"], "access_token");
    let mut operations = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            operations += 1;
            if operation["operationId"] == fixloop_contract::openapi::CI_INTAKE_OPERATION {
                // The CI intake takes its own token (FIXLOOP_CI_TOKEN), no API token: 401, never 403.
                assert_eq!(
                    operation["security"],
                    serde_json::json!([{"ciToken": []}]),
                    "{method} {path}"
                );
                assert_eq!(schemes["ciToken"]["scheme"], "bearer");
                let example =
                    &operation["responses"]["401"]["content"]["application/json"]["example"];
                assert_eq!(example["code"], "unauthorized", "{method} {path}");
                assert!(operation["responses"].get("403").is_none());
                continue;
            }
            let operation_id = operation["operationId"].as_str().unwrap_or_default();
            let role = if method == "get" {
                "read"
            } else if fixloop_contract::openapi::APPROVE_OPERATIONS.contains(&operation_id) {
                "approve"
            } else {
                "operate"
            };
            assert_eq!(
                operation["security"],
                serde_json::json!([{"bearerAuth": [role]}, {"accessToken": [role]}]),
                "{method} {path}"
            );
            let responses = &operation["responses"];
            let error_code = |status: &str| {
                responses[status]["content"]["application/json"]["example"]["code"].clone()
            };
            assert_eq!(error_code("401"), "unauthorized", "{method} {path}");
            assert!(
                responses["401"]["headers"]
                    .get("www-authenticate")
                    .is_some(),
                "{method} {path}"
            );
            if role == "operate" || role == "approve" {
                assert_eq!(error_code("403"), "forbidden", "{method} {path}");
            } else if path == "/ws" {
                // Any token may read; a browser page of a foreign origin may not open the stream.
                assert_eq!(error_code("403"), "origin_not_allowed", "{method} {path}");
            } else {
                assert!(
                    responses.get("403").is_none(),
                    "{method} {path}: any token may read"
                );
            }
            if operation_id == "askCopilot"
                || fixloop_contract::openapi::OPERATE_RATE_LIMITED_OPERATIONS
                    .contains(&operation_id)
            {
                assert_eq!(error_code("429"), "rate_limited");
                assert_eq!(
                    responses["429"]["headers"]["retry-after"]["schema"]["type"],
                    "integer"
                );
            } else {
                assert!(responses.get("429").is_none(), "{method} {path}");
            }
        }
    }
    assert!(operations >= 10, "{operations} operations");
}
