//! Invalid requests, generated from each operation's request body schema (in the manner of schemathesis): every
//! one must get a 4xx whose body is the spec's `ErrorBody`; a 2xx or 5xx fails.
//!
//! Under `--profile seed` only the requests that break the seed's own request types run (malformed JSON, a
//! required field missing, a property of the wrong type, an unknown enum value, on the seed's operations), and
//! any 4xx passes: the seed names no error body (a FastAPI backend answers 422 `{"detail": …}`), no content-type
//! rule, no size limit and no length bounds, so those cases belong to the `fixloop` profile.
//!
//! Per operation with a JSON body, the case numbers are stable: `1` malformed JSON, `2` a valid body sent as
//! `text/plain`, `3` an oversized (1 MiB) body, then one case per required field left out, per property of the
//! wrong type, per enum property with an unknown value, and per string property outside its length bounds, in
//! the schema's property order.
//!
//! Every invalid body starts from a harmless valid one (one that would not change the server's state if it were
//! wrongly accepted, where the contract allows that).

use serde_json::{Map, Value, json};

use super::check::{check_body, is_client_error, violations_outcome};
use super::context::{Ctx, info};
use crate::case::{CaseInfo, Outcome, Phase, Profile};
use crate::client::Body;
use crate::spec::{Operation, Spec, json_type, truncate};

/// The operations the seed's section 5.3 defines with a request body.
const SEED_OPERATIONS: [&str; 4] = ["setDemoBug", "simulateIncident", "runTests", "askCopilot"];

/// Size of the oversized body: far above any sane request limit (FixLoop's is 64 KiB).
const OVERSIZED_BYTES: usize = 1024 * 1024;

/// One generated invalid request.
#[derive(Debug, Clone)]
struct BadRequest {
    id: String,
    description: String,
    clause: String,
    profile: Profile,
    operation: String,
    method: String,
    path: String,
    body: Body,
}

/// The catalog entries.
pub(super) fn cases(spec: &Spec) -> Vec<CaseInfo> {
    generate(spec)
        .into_iter()
        .map(|request| {
            info(
                request.profile,
                &request.id,
                &request.description,
                &request.clause,
                Phase::BadInput,
            )
        })
        .collect()
}

/// Sends every generated request and judges the reply.
pub(super) async fn run(ctx: &mut Ctx<'_>) {
    // Generated from the spec as given, so the ids are the same under every profile.
    for request in generate(&ctx.target.spec) {
        if !ctx.wants(&request.id) {
            continue;
        }
        if !ctx.budget_left() {
            return;
        }
        let outcome = match ctx.profile() {
            Profile::Seed => judge_seed(ctx, &request).await,
            Profile::Fixloop => judge(ctx, &request).await,
        };
        ctx.record(&request.id, outcome);
    }
}

/// The seed's rule: the invalid request is refused with a 4xx, whatever the body says.
async fn judge_seed(ctx: &Ctx<'_>, request: &BadRequest) -> Outcome {
    match ctx
        .http()
        .send(&request.method, &request.path, request.body.clone())
        .await
    {
        Err(error) => Outcome::fail("a 4xx response", format!("no response: {error}"), "status"),
        Ok(reply) if is_client_error(reply.status) => Outcome::Pass,
        Ok(reply) => Outcome::fail(
            "a 4xx status (the request breaks the seed's request type)",
            format!(
                "status {} with body {}",
                reply.status,
                truncate(&reply.text, 300)
            ),
            "status",
        ),
    }
}

async fn judge(ctx: &Ctx<'_>, request: &BadRequest) -> Outcome {
    let Some(operation) = ctx.spec.operation(&request.operation) else {
        return Outcome::skip(format!("the spec has no operation {}", request.operation));
    };
    let reply = match ctx
        .http()
        .send(&request.method, &request.path, request.body.clone())
        .await
    {
        Ok(reply) => reply,
        Err(error) => {
            return Outcome::fail(
                "a 4xx response with an ErrorBody",
                format!("no response: {error}"),
                "status",
            );
        }
    };
    if !is_client_error(reply.status) {
        return Outcome::fail(
            "a 4xx status with an ErrorBody",
            format!(
                "status {} with body {}",
                reply.status,
                truncate(&reply.text, 300)
            ),
            "status",
        );
    }
    let json = match &reply.json {
        Ok(json) => json,
        Err(error) => {
            return Outcome::fail(
                "an ErrorBody JSON document",
                format!(
                    "status {}, body is not JSON ({error}): {}",
                    reply.status,
                    truncate(&reply.text, 200)
                ),
                "",
            );
        }
    };
    // The body must be an ErrorBody whatever the 4xx; when the spec documents this status, its schema applies too.
    if let Err(outcome) = violations_outcome(
        &ctx.spec.check_component("ErrorBody", json),
        "#/components/schemas/ErrorBody",
    ) {
        return outcome;
    }
    if operation.responses.contains_key(&reply.status.to_string())
        && let Err(outcome) = check_body(ctx.spec, operation, &reply)
    {
        return outcome;
    }
    Outcome::Pass
}

fn generate(spec: &Spec) -> Vec<BadRequest> {
    let mut out = Vec::new();
    for operation in spec.operations() {
        let Some(schema) = &operation.request_schema else {
            continue;
        };
        let schema = spec.resolve(schema);
        let base = harmless_body(spec, operation, schema);
        let mut n = 0;
        let seed_operation = SEED_OPERATIONS.contains(&operation.id.as_str());
        // `seed_kind`: whether this kind of invalid request breaks a request type the seed itself states.
        let mut push = |description: String, seed_kind: bool, body: Body| {
            n += 1;
            let profile = if seed_kind && seed_operation {
                Profile::Seed
            } else {
                Profile::Fixloop
            };
            let (outcome, clause) = match profile {
                Profile::Seed => (
                    "4xx (with an ErrorBody under --profile fixloop)",
                    format!(
                        "seed §5.3 request body of {} {}; openapi.yaml 4xx responses; operationId {}; #/components/schemas/ErrorBody",
                        operation.method, operation.path, operation.id
                    ),
                ),
                Profile::Fixloop => (
                    "4xx with an ErrorBody",
                    format!(
                        "openapi.yaml {} {} 4xx responses; operationId {}; #/components/schemas/ErrorBody",
                        operation.method, operation.path, operation.id
                    ),
                ),
            };
            out.push(BadRequest {
                id: format!("bad_input/{}/{n}", operation.id),
                description: format!(
                    "{} {}: {description} → {outcome}",
                    operation.method, operation.path
                ),
                clause,
                profile,
                operation: operation.id.clone(),
                method: operation.method.clone(),
                path: operation.path.clone(),
                body,
            });
        };

        let text = base.to_string();
        let truncated: String = text
            .chars()
            .take(text.chars().count().saturating_sub(1))
            .collect();
        push(
            "malformed JSON (the last byte cut off)".to_owned(),
            true,
            raw("application/json", truncated),
        );
        push(
            "a valid body sent as text/plain".to_owned(),
            false,
            raw("text/plain", text),
        );
        let mut oversized = base.as_object().cloned().unwrap_or_default();
        oversized.insert(
            "padding".to_owned(),
            Value::String("x".repeat(OVERSIZED_BYTES)),
        );
        push(
            "an oversized (1 MiB) body".to_owned(),
            false,
            Body::Json(Value::Object(oversized)),
        );

        let properties = schema["properties"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for field in schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            let mut body = base.as_object().cloned().unwrap_or_default();
            body.remove(field);
            push(
                format!("required field `{field}` missing"),
                true,
                Body::Json(Value::Object(body)),
            );
        }
        for (name, property) in &properties {
            let property = spec.resolve(property);
            if let Some(wrong) = wrong_type_value(property) {
                push(
                    format!("`{name}` of the wrong type ({})", json_type(&wrong)),
                    true,
                    Body::Json(with(&base, name, wrong)),
                );
            }
        }
        for (name, property) in &properties {
            let property = spec.resolve(property);
            if let Some(options) = property["enum"].as_array() {
                let mut unknown = "NOT_A_KNOWN_VALUE".to_owned();
                while options
                    .iter()
                    .any(|option| option.as_str() == Some(&unknown))
                {
                    unknown.push('_');
                }
                push(
                    format!("`{name}` with an unknown enum value"),
                    true,
                    Body::Json(with(&base, name, Value::String(unknown))),
                );
            }
        }
        for (name, property) in &properties {
            let property = spec.resolve(property);
            if let Some(max) = property["maxLength"]
                .as_u64()
                .and_then(|max| usize::try_from(max).ok())
            {
                push(
                    format!("`{name}` longer than its maxLength {max}"),
                    false,
                    Body::Json(with(
                        &base,
                        name,
                        Value::String("x".repeat(max.saturating_add(1))),
                    )),
                );
            }
            if property["minLength"].as_u64().is_some_and(|min| min > 0) {
                push(
                    format!("`{name}` shorter than its minLength"),
                    false,
                    Body::Json(with(&base, name, Value::String(String::new()))),
                );
            }
        }
    }
    out
}

/// A valid body that would not change state if a broken server accepted it.
fn harmless_body(spec: &Spec, operation: &Operation, schema: &Value) -> Value {
    match operation.id.as_str() {
        "setDemoBug" => json!({"enabled": false}),
        "simulateIncident" => json!({"mode": "INCIDENT_OFF"}),
        "runTests" => json!({"incident_id": "does-not-exist"}),
        _ => operation
            .request_example
            .clone()
            .unwrap_or_else(|| minimal_instance(spec, schema)),
    }
}

/// The smallest instance with every required property (for operations the spec gives no example for).
fn minimal_instance(spec: &Spec, schema: &Value) -> Value {
    let schema = spec.resolve(schema);
    if let Some(first) = schema["enum"]
        .as_array()
        .and_then(|options| options.first())
    {
        return first.clone();
    }
    let types = allowed_types(schema);
    let has = |name: &str| types.iter().any(|t| t == name);
    if has("object") || schema["properties"].is_object() {
        let mut object = Map::new();
        for field in schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            let property = &schema["properties"][field];
            object.insert(field.to_owned(), minimal_instance(spec, property));
        }
        return Value::Object(object);
    }
    if has("string") {
        let min = schema["minLength"]
            .as_u64()
            .and_then(|min| usize::try_from(min).ok())
            .unwrap_or(1);
        return Value::String("x".repeat(min.max(1)));
    }
    if has("integer") || has("number") {
        return schema.get("minimum").cloned().unwrap_or(json!(1));
    }
    if has("boolean") {
        return json!(false);
    }
    if has("array") {
        return json!([]);
    }
    Value::Null
}

/// A value whose JSON type the property does not allow, or `None` when it allows every type.
fn wrong_type_value(property: &Value) -> Option<Value> {
    let types = allowed_types(property);
    if types.is_empty() {
        return None;
    }
    let allowed = |name: &str| {
        types.iter().any(|t| t == name)
            || (name == "integer" && types.iter().any(|t| t == "number"))
    };
    [
        ("object", json!({"unexpected": "object"})),
        ("integer", json!(12345)),
        ("string", json!("not of this type")),
        ("boolean", json!(true)),
        ("array", json!(["unexpected"])),
    ]
    .into_iter()
    .find(|(name, _)| !allowed(name))
    .map(|(_, value)| value)
}

/// The JSON types a schema allows (`type`, or the types of its `enum` values).
fn allowed_types(schema: &Value) -> Vec<String> {
    match &schema["type"] {
        Value::String(single) => vec![single.clone()],
        Value::Array(many) => many
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => schema["enum"]
            .as_array()
            .map(|options| {
                options
                    .iter()
                    .map(|option| json_type(option).to_owned())
                    .collect()
            })
            .unwrap_or_default(),
    }
}

fn with(base: &Value, name: &str, value: Value) -> Value {
    let mut body = base.as_object().cloned().unwrap_or_default();
    body.insert(name.to_owned(), value);
    Value::Object(body)
}

fn raw(content_type: &'static str, text: String) -> Body {
    Body::Raw {
        content_type,
        bytes: text.into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_demo_bug_cases_are_numbered_with_the_fixed_kinds_first() {
        let spec = Spec::embedded().expect("embedded spec");
        let ids: Vec<(String, String)> = generate(&spec)
            .into_iter()
            .filter(|request| request.operation == "setDemoBug")
            .map(|request| (request.id, request.description))
            .collect();
        assert_eq!(ids.len(), 5, "{ids:?}");
        assert_eq!(ids[0].0, "bad_input/setDemoBug/1");
        assert!(ids[0].1.contains("malformed JSON"));
        assert!(ids[3].1.contains("required field `enabled` missing"));
        assert!(ids[4].1.contains("`enabled` of the wrong type (object)"));
    }

    #[test]
    fn enum_and_length_cases_come_from_the_schema() {
        let spec = Spec::embedded().expect("embedded spec");
        let descriptions: Vec<String> = generate(&spec)
            .into_iter()
            .map(|request| request.description)
            .collect();
        assert!(
            descriptions
                .iter()
                .any(|d| d.contains("`mode` with an unknown enum value"))
        );
        assert!(
            descriptions
                .iter()
                .any(|d| d.contains("`question` longer than its maxLength 4000"))
        );
        assert!(
            descriptions
                .iter()
                .any(|d| d.contains("`question` shorter than its minLength"))
        );
        // The nullable `incident_id` of askCopilot allows strings and null: an object is the wrong type.
        assert!(
            descriptions
                .iter()
                .any(|d| d.contains("/api/copilot/ask: `incident_id` of the wrong type (object)"))
        );
    }

    #[test]
    fn wrong_type_value_never_picks_an_allowed_type() {
        assert_eq!(
            wrong_type_value(&json!({"type": "object"})),
            Some(json!(12345))
        );
        assert_eq!(
            wrong_type_value(&json!({"type": ["string", "null"]})),
            Some(json!({"unexpected": "object"}))
        );
        assert_eq!(wrong_type_value(&json!({})), None);
        assert_eq!(
            wrong_type_value(&json!({"enum": ["A"]})),
            Some(json!({"unexpected": "object"}))
        );
    }
}
