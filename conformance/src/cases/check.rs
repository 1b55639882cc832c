//! The checks the sections share: a reply's status and body against the spec, and how violations and schemas are
//! named in a failure.

use serde_json::Value;

use crate::case::Outcome;
use crate::client::Reply;
use crate::spec::{Operation, Spec, Violation, truncate};

/// Checks a reply to `operation`: transport success, the expected status, a status the spec documents, and a
/// body valid against the spec's schema for that status. Returns the JSON body, or the failure.
pub(crate) fn check_reply(
    spec: &Spec,
    operation: &Operation,
    reply: &Result<Reply, String>,
    expected_status: u16,
) -> Result<Value, Outcome> {
    let reply = match reply {
        Ok(reply) => reply,
        Err(error) => {
            return Err(Outcome::fail(
                format!("an HTTP response with status {expected_status}"),
                format!("no response: {error}"),
                "status",
            ));
        }
    };
    if reply.status != expected_status {
        return Err(Outcome::fail(
            format!("status {expected_status}"),
            format!(
                "status {} with body {}",
                reply.status,
                truncate(&reply.text, 300)
            ),
            "status",
        ));
    }
    check_body(spec, operation, reply)
}

/// Checks the body of a reply against the schema the spec documents for its status.
pub(crate) fn check_body(
    spec: &Spec,
    operation: &Operation,
    reply: &Reply,
) -> Result<Value, Outcome> {
    let status = reply.status.to_string();
    let Some(schema) = operation.responses.get(&status) else {
        let documented: Vec<&str> = operation.responses.keys().map(String::as_str).collect();
        return Err(Outcome::fail(
            format!(
                "a status documented for {} ({})",
                operation.id,
                documented.join(", ")
            ),
            format!("status {status}"),
            "status",
        ));
    };
    let json = reply.json.clone().map_err(|error| {
        Outcome::fail(
            "a JSON body",
            format!("{error}: {}", truncate(&reply.text, 200)),
            "",
        )
    })?;
    if let Some(schema) = schema {
        let schema_name = schema_name(schema);
        violations_outcome(&spec.check(schema, &json), &schema_name)?;
    }
    Ok(json)
}

/// The failure for a list of violations (the first, with a count of the rest), or `Ok` when there are none.
pub(crate) fn violations_outcome(
    violations: &[Violation],
    schema_name: &str,
) -> Result<(), Outcome> {
    let Some(first) = violations.first() else {
        return Ok(());
    };
    let mut actual = first.actual.clone();
    if violations.len() > 1 {
        let others: Vec<String> = violations[1..]
            .iter()
            .take(5)
            .map(|v| {
                format!(
                    "{} ({})",
                    if v.path.is_empty() { "/" } else { &v.path },
                    v.expected
                )
            })
            .collect();
        actual.push_str(&format!(
            " [and {} more violation(s): {}]",
            violations.len() - 1,
            others.join("; ")
        ));
    }
    Err(Outcome::fail(
        format!("{} per {schema_name}", first.expected),
        actual,
        first.path.clone(),
    ))
}

/// A readable name for a schema: its `$ref`, or `inline schema`.
pub(crate) fn schema_name(schema: &Value) -> String {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        return reference.to_owned();
    }
    if let Some(branches) = schema.get("oneOf").and_then(Value::as_array) {
        let names: Vec<String> = branches
            .iter()
            .map(|branch| {
                branch
                    .get("$ref")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .or_else(|| branch.get("type").map(Value::to_string))
                    .unwrap_or_else(|| "inline".to_owned())
            })
            .collect();
        return format!("oneOf[{}]", names.join(", "));
    }
    "an inline schema".to_owned()
}

/// The operation, or a skip naming what the spec lacks.
pub(crate) fn operation<'s>(spec: &'s Spec, id: &str) -> Result<&'s Operation, Outcome> {
    spec.operation(id)
        .ok_or_else(|| Outcome::skip(format!("the spec has no operation {id}")))
}

/// Whether a status is a client error.
pub(crate) fn is_client_error(status: u16) -> bool {
    (400..500).contains(&status)
}
