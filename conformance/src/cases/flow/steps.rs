//! The flow's named steps (each a case id) and what every stage shares: the main WebSocket log, the HTTP client,
//! and the helpers that switch the bug, skip steps and describe what was received.

use std::time::Duration;

use serde_json::{Value, json};

use crate::case::Outcome;
use crate::cases::context::Ctx;
use crate::cases::messages::run_state;
use crate::cases::shapes;
use crate::client::{Body, Http, Recorder};

/// `POST /api/demo/bug {"enabled":true}` answers 200.
pub(super) const BUG_ON: &str = "flow/setDemoBug/1";
/// The server detects the incident by itself: `incident.created`.
pub(super) const INCIDENT_CREATED: &str = "flow/incident.created/1";
/// `plan.generated` arrives for the incident.
pub(super) const PLAN_GENERATED: &str = "flow/plan.generated/1";
/// The plan has exactly five items.
pub(super) const PLAN_SIZE: &str = "flow/plan.generated/2";
/// The plan covers what the seed requires.
pub(super) const PLAN_COVERAGE: &str = "flow/plan.generated/3";
/// A validation run starts by itself: `tests.updated`.
pub(super) const RUN_STARTED: &str = "flow/tests.updated/1";
/// While the bug is on, a `tests.updated` shows a FAIL.
pub(super) const RUN_FAILING: &str = "flow/tests.updated/2";
/// `POST /api/demo/bug {"enabled":false}` answers 200.
pub(super) const BUG_OFF: &str = "flow/setDemoBug/2";
/// After bug off, `system.status` RECOVERED arrives.
pub(super) const RECOVERED: &str = "flow/system.status/1";
/// `POST /checkout` of the demo app answers 500 while the bug is on.
pub(super) const CHECKOUT: &str = "flow/checkout/1";
/// `POST /api/copilot/ask` is announced as `copilot.answer` on the WebSocket.
pub(super) const COPILOT: &str = "flow/copilot.answer/1";
/// After the fix, a run shows every test passing.
pub(super) const PASSING_AFTER_FIX: &str = "flow/tests.updated/3";

/// Every step, in catalog order.
pub(super) const STEPS: [&str; 12] = [
    BUG_ON,
    INCIDENT_CREATED,
    PLAN_GENERATED,
    PLAN_SIZE,
    PLAN_COVERAGE,
    RUN_STARTED,
    RUN_FAILING,
    BUG_OFF,
    RECOVERED,
    CHECKOUT,
    COPILOT,
    PASSING_AFTER_FIX,
];

/// The `shapes` cases judged on the flow's state (they need an open incident or a run).
pub(super) const IN_FLOW_SHAPES: [&str; 4] = [
    "shapes/getStatus/2",
    "shapes/getCurrentIncident/2",
    RUN_TESTS_SHAPE,
    TEST_RUN_SHAPE,
];

/// `POST /api/tests/run` answers a TestRun for the incident.
pub(super) const RUN_TESTS_SHAPE: &str = "shapes/runTests/1";
/// `GET /api/tests/runs/{run_id}` answers the run.
pub(super) const TEST_RUN_SHAPE: &str = "shapes/getTestRun/1";

/// What every stage reads.
pub(super) struct Flow<'r> {
    /// The main WebSocket log.
    pub(super) recorder: &'r Recorder,
    /// The HTTP client, bounded by the budget for judging.
    pub(super) http: &'r Http,
    /// Index in the main log of the first message after the flow began.
    pub(super) start: usize,
    /// The flow timeout, as the failures name it.
    pub(super) timeout: Duration,
}

/// Whether a message's payload is about the incident `incident_id`.
pub(super) fn for_incident(incident_id: &str) -> impl Fn(&Value) -> bool + Copy + '_ {
    move |payload: &Value| payload["incident_id"].as_str() == Some(incident_id)
}

/// The message types received from `from` on, and how the connection closed if it did.
pub(super) fn types_after(recorder: &Recorder, from: usize) -> String {
    let log = recorder.snapshot();
    let kinds: Vec<&str> = log
        .frames
        .iter()
        .skip(from)
        .map(|frame| frame.kind().unwrap_or("(no type)"))
        .collect();
    let closed = log
        .closed
        .map(|how| format!(" (connection closed: {how})"))
        .unwrap_or_default();
    format!("[{}]{closed}", kinds.join(", "))
}

/// `POST /api/demo/bug {"enabled": enabled}`, judged as a 200 with the spec's response schema.
pub(super) async fn set_bug(ctx: &mut Ctx<'_>, enabled: bool) -> Outcome {
    shapes::request(
        ctx,
        "setDemoBug",
        "POST",
        "/api/demo/bug",
        Body::Json(json!({"enabled": enabled})),
        200,
    )
    .await
    .map_or_else(|outcome| outcome, |_| Outcome::Pass)
}

/// A run in a failure text: its id and state.
pub(super) fn run_summary(run: &Value) -> String {
    format!(
        "run {} {}",
        run["run_id"].as_str().unwrap_or("?"),
        run_state(run)
    )
}

/// Records a skip with `reason` for each of `ids`.
pub(super) fn skip_all(ctx: &mut Ctx<'_>, ids: &[&str], reason: &str) {
    for id in ids {
        ctx.record(id, Outcome::skip(reason));
    }
}
