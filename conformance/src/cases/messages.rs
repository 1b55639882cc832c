//! Queries over what a WebSocket client recorded and over run documents, shared by the flow (which waits for
//! them) and the WebSocket judgements (which check them afterwards).

use serde_json::Value;

use crate::client::WsLog;
use crate::spec::short_json;

/// The first frame at or after `from` of type `kind` whose payload satisfies `accept`: its index and payload.
pub(super) fn find(
    log: &WsLog,
    from: usize,
    kind: &str,
    accept: impl Fn(&Value) -> bool,
) -> Option<(usize, Value)> {
    log.frames
        .iter()
        .skip(from)
        .filter(|frame| frame.kind() == Some(kind))
        .find_map(|frame| {
            frame
                .payload()
                .filter(|p| accept(p))
                .map(|p| (frame.index, p.clone()))
        })
}

/// Whether `run` looks like a TestRun: an object with a `run_id` string and a `tests` array.
pub(super) fn is_test_run(run: &Value) -> bool {
    run["run_id"].is_string() && run["tests"].is_array()
}

/// A run's comparable state: its status and each test's status; `not a TestRun` for anything else (`null`).
pub(super) fn run_state(run: &Value) -> String {
    if !is_test_run(run) {
        return format!("not a TestRun ({})", short_json(run));
    }
    let tests: Vec<String> = run["tests"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|test| {
            format!(
                "{}={}",
                test["test_id"].as_str().unwrap_or("?"),
                test["status"].as_str().unwrap_or("?")
            )
        })
        .collect();
    format!(
        "{} [{}]",
        run["status"].as_str().unwrap_or("?"),
        tests.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_null_run_is_not_a_test_run() {
        assert_eq!(run_state(&Value::Null), "not a TestRun (null)");
        assert!(!is_test_run(&serde_json::json!({"run_id": "r"})));
        assert_eq!(
            run_state(&serde_json::json!({"run_id": "r", "status": "RUNNING", "tests": []})),
            "RUNNING []"
        );
    }
}
