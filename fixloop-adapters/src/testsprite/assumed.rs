//! EVERY UNVERIFIED TestSprite shape lives here, and only here.
//!
//! What is verified (vendor reference §3): the npm package `@testsprite/testsprite-mcp` launched with `npx`, the
//! stdio transport, the `API_KEY` environment variable, and the tool name `testsprite_generate_code_and_execute`
//! with a `testIds` string-array argument. Everything below is an ASSUMPTION, written down so it can be checked the
//! day a key is available:
//!
//! 1. **Arguments** of `testsprite_generate_code_and_execute`: `projectName` (root directory name), `projectPath`
//!    (absolute path), `testIds` (FixLoop's `test_id`s; TestSprite's own ids look like `TC001`, so it may ignore
//!    ours), and `additionalInstruction` (free text: FixLoop sends the validated plan as JSON and asks for one
//!    result per test). The exact `inputSchema` is not published.
//! 2. **Result**: MCP `content[].text` (or `structuredContent`) holds JSON somewhere (possibly with prose around
//!    it) containing an array of per-test objects. A test object is recognized by an id key (`testId`, `test_id`,
//!    `testCaseId`, `id`) naming one of the plan's tests, and a status key (`status`, `result`, `testStatus`,
//!    `outcome`) whose value reads as pass (`passed`, `pass`, `success`, `ok`, `true`) or fail (`failed`, `fail`,
//!    `error`, `blocked`, `cancelled`, `false`). Details come from `error`, `message`, `reason` or `details`.
//! 3. A test of the plan that the result does not mention FAILS with a "no result" explanation (never PASS by
//!    default), and `isError: true` fails the run as a whole.
//! 4. The Streamable HTTP endpoint (for a hosted or proxied TestSprite MCP server) takes
//!    `Authorization: Bearer <API key>`; TestSprite documents no such endpoint.
//! 5. **Per-test progress.** TestSprite documents no status tool and no progress notifications. FixLoop reads two
//!    sources if a server offers them: (a) `notifications/progress` of the run call whose `message` holds per-test
//!    results in the shape of assumption 2 ([`parse_progress`]); (b) a status tool, [`STATUS_TOOL`], which is NOT
//!    in TestSprite's documented list and is only polled when the server's `tools/list` names it, called with
//!    [`status_arguments`] and answering in the shape of assumption 2. A server offering neither gives every
//!    verdict with the run's result.

use fixloop_core::{RunId, ValidatedPlan};
use serde_json::{Value, json};

use super::TestSpriteConfig;
use crate::mcp::ToolResult;
use crate::minimax::json_candidates;

/// The tool FixLoop calls to run the plan. (Name verified; semantics for an arbitrary plan assumed.)
pub const RUN_TOOL: &str = "testsprite_generate_code_and_execute";

/// The status tool polled for per-test results while the run goes on (assumption 5b: NOT documented by
/// TestSprite; polled only when `tools/list` names it).
pub const STATUS_TOOL: &str = "testsprite_get_test_results";

/// The environment variable carrying the API key to the stdio server (verified).
pub const API_KEY_ENV: &str = "API_KEY";

/// The arguments of [`RUN_TOOL`] for a plan (assumption 1).
#[must_use]
pub fn run_arguments(config: &TestSpriteConfig, run_id: &RunId, plan: &ValidatedPlan) -> Value {
    let tests: Vec<Value> = plan
        .tests()
        .map(|(item, criteria)| {
            json!({
                "test_id": item.test_id,
                "name": item.name,
                "method": item.target.method.as_str(),
                "url": item.target.url,
                "headers": item.target.headers,
                "body_json": item.target.body_json,
                "pass_criteria": criteria.to_string(),
            })
        })
        .collect();
    let instruction = format!(
        "Run exactly these backend API tests (FixLoop run {run_id}, Recovery Validation Plan {}), one HTTP request \
         each, and report one result per test_id as JSON {{\"results\": [{{\"testId\": ..., \"status\": \"passed\"|\"failed\", \
         \"error\": ...}}]}}. Tests: {}",
        plan.plan().plan_id,
        Value::Array(tests)
    );
    json!({
        "projectName": config.project_name,
        "projectPath": config.project_path,
        "testIds": plan.tests().map(|(item, _)| item.test_id.clone()).collect::<Vec<_>>(),
        "additionalInstruction": instruction,
    })
}

/// The arguments of [`STATUS_TOOL`] (assumption 5b): the project, the tests, and FixLoop's run id.
#[must_use]
pub fn status_arguments(config: &TestSpriteConfig, run_id: &RunId, plan: &ValidatedPlan) -> Value {
    json!({
        "projectPath": config.project_path,
        "testIds": plan.tests().map(|(item, _)| item.test_id.clone()).collect::<Vec<_>>(),
        "runId": run_id.to_string(),
    })
}

/// The outcomes in the `message` of a progress notification (assumption 5a), read as a text result.
#[must_use]
pub fn parse_progress(message: &str, test_ids: &[String]) -> Vec<(String, Outcome)> {
    let result = ToolResult {
        texts: vec![message.to_owned()],
        ..ToolResult::default()
    };
    parse_outcomes(&result, test_ids)
}

/// One test's outcome as TestSprite reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Whether it passed.
    pub passed: bool,
    /// TestSprite's explanation, if any.
    pub details: Option<String>,
}

const ID_KEYS: [&str; 4] = ["testId", "test_id", "testCaseId", "id"];
const STATUS_KEYS: [&str; 4] = ["status", "result", "testStatus", "outcome"];
const DETAIL_KEYS: [&str; 4] = ["error", "message", "reason", "details"];

/// The outcomes of the plan's tests found in a tool result (assumption 2), in the order found. Objects naming ids
/// not in `test_ids` are ignored; the first report of an id wins.
#[must_use]
pub fn parse_outcomes(result: &ToolResult, test_ids: &[String]) -> Vec<(String, Outcome)> {
    let mut outcomes = Vec::new();
    let mut values: Vec<Value> = result.structured.iter().cloned().collect();
    for text in &result.texts {
        values.extend(json_candidates(text));
    }
    for value in &values {
        collect(value, test_ids, &mut outcomes, 0);
    }
    outcomes
}

fn collect(
    value: &Value,
    test_ids: &[String],
    outcomes: &mut Vec<(String, Outcome)>,
    depth: usize,
) {
    if depth > 16 {
        return;
    }
    match value {
        Value::Array(items) => {
            for item in items {
                collect(item, test_ids, outcomes, depth + 1);
            }
        }
        Value::Object(object) => {
            let id = ID_KEYS
                .iter()
                .find_map(|key| object.get(*key).and_then(Value::as_str))
                .filter(|id| test_ids.iter().any(|known| known == id));
            let passed = STATUS_KEYS
                .iter()
                .find_map(|key| object.get(*key).and_then(read_status));
            if let (Some(id), Some(passed)) = (id, passed) {
                let details = DETAIL_KEYS
                    .iter()
                    .find_map(|key| object.get(*key).and_then(Value::as_str))
                    .filter(|text| !text.trim().is_empty())
                    .map(|text| text.chars().take(300).collect());
                if !outcomes.iter().any(|(known, _)| known == id) {
                    outcomes.push((id.to_owned(), Outcome { passed, details }));
                }
            }
            for child in object.values() {
                collect(child, test_ids, outcomes, depth + 1);
            }
        }
        _ => {}
    }
}

fn read_status(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(flag) => Some(*flag),
        Value::String(text) => match text.trim().to_ascii_lowercase().as_str() {
            "passed" | "pass" | "success" | "succeeded" | "ok" | "true" => Some(true),
            "failed" | "fail" | "failure" | "error" | "blocked" | "cancelled" | "canceled"
            | "false" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> Vec<String> {
        ["T1", "T2", "T3"].map(str::to_owned).to_vec()
    }

    #[test]
    fn outcomes_are_found_in_prose_wrapped_json() {
        let result = ToolResult {
            texts: vec![
                "Done. Report:\n```json\n{\"results\":[{\"testId\":\"T1\",\"status\":\"passed\"},{\"test_id\":\"T2\",\"result\":\"FAILED\",\"error\":\"500 from /checkout\"},{\"testId\":\"TC009\",\"status\":\"passed\"}]}\n```".to_owned(),
            ],
            structured: None,
            is_error: false,
        };
        let outcomes = parse_outcomes(&result, &ids());
        assert_eq!(outcomes.len(), 2);
        assert_eq!(outcomes[0].0, "T1");
        assert!(outcomes[0].1.passed);
        assert_eq!(outcomes[1].0, "T2");
        assert!(!outcomes[1].1.passed);
        assert_eq!(outcomes[1].1.details.as_deref(), Some("500 from /checkout"));
    }

    #[test]
    fn structured_content_is_read_and_unknown_statuses_ignored() {
        let result = ToolResult {
            texts: Vec::new(),
            structured: Some(
                json!({"tests": [{"id": "T3", "outcome": true}, {"id": "T1", "status": "running"}]}),
            ),
            is_error: false,
        };
        let outcomes = parse_outcomes(&result, &ids());
        assert_eq!(outcomes.len(), 1);
        assert_eq!(outcomes[0].0, "T3");
        assert!(outcomes[0].1.passed);
    }

    #[test]
    fn progress_messages_carry_outcomes() {
        let outcomes = parse_progress(
            "T2 done: {\"testId\": \"T2\", \"status\": \"passed\"}",
            &ids(),
        );
        assert_eq!(outcomes.len(), 1);
        assert_eq!(outcomes[0].0, "T2");
        assert!(parse_progress("generating test code", &ids()).is_empty());
    }
}
