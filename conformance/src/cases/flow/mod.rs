//! Seed §5–§8 (the demo flow) over REST and WebSocket: bug on → `incident.created` → `plan.generated` with five
//! items of the required coverage → a run (`tests.updated`) with a failing test → bug off → `system.status`
//! `RECOVERED`. Every wait is bounded by the flow timeout.
//!
//! Along the way: `POST /checkout` of the demo app (the plan's checkout target) answers 500 while the bug is on,
//! `POST /api/copilot/ask` is answered and announced as `copilot.answer` on the WebSocket, and after the fix a
//! run shows every test passing. Every case here is the seed's (section 5, 6, 8.3 and 11).
//!
//! Fallbacks the seed allows are taken but reported: a server that only opens an incident through
//! `POST /api/incidents/simulate`, or only runs tests after a manual `POST /api/tests/run`, gets `Skip` with that
//! reason (`Fail` under `--strict`). A step whose precondition failed (no WebSocket, no incident, no plan, no run)
//! is not waited for: it is skipped with a reason naming the failed case. The flow ends by switching the bug off
//! and closing the incident.
//!
//! The flow is a sequence of stages, one module each, whose steps are the named case ids of [`steps`]:
//! [`incident`] (bug on, detection), [`plan`] (the plan, the demo app's checkout), [`clients`] (the copilot, a late
//! dashboard), [`run`] (a run starts, a test fails) and [`recovery`] (bug off, RECOVERED, tests passing).

mod clients;
mod incident;
mod plan;
mod recovery;
mod run;
mod steps;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::json;
use tokio::task::JoinHandle;

use self::steps::{
    BUG_OFF, BUG_ON, CHECKOUT, COPILOT, Flow, IN_FLOW_SHAPES, INCIDENT_CREATED, PASSING_AFTER_FIX,
    PLAN_COVERAGE, PLAN_GENERATED, PLAN_SIZE, RECOVERED, RUN_FAILING, RUN_STARTED, RUN_TESTS_SHAPE,
    STEPS, TEST_RUN_SHAPE, set_bug, skip_all,
};
use crate::case::{CaseInfo, Phase, Profile};
use crate::cases::context::{Ctx, MainRecorder, info};
use crate::cases::shapes;
use crate::client::{Http, Recorder, WsLog};
use crate::spec::truncate;

/// What the flow leaves for the WebSocket judgements.
#[derive(Debug, Default)]
pub(super) struct FlowResult {
    /// Index in the main log of the first message after the bug was switched on.
    pub(super) start_index: usize,
    /// The incident the flow followed.
    pub(super) incident_id: Option<String>,
    /// The distinct `status` values seen by polling `GET /api/status` during the flow, in order.
    pub(super) rest_statuses: Vec<String>,
    /// Run ids the server returned over REST.
    pub(super) rest_run_ids: Vec<String>,
    /// What a client connecting during the incident received promptly, or why it could not connect.
    pub(super) late: Option<Result<WsLog, String>>,
    /// Whether a run with a failing test was seen (so a late client must get a `tests.updated`).
    pub(super) run_seen: bool,
}

/// The catalog entries.
pub(super) fn cases() -> Vec<CaseInfo> {
    let phase = Phase::Flow;
    let info = |id: &str, description: &str, clause: &str, phase| {
        info(Profile::Seed, id, description, clause, phase)
    };
    vec![
        info(
            BUG_ON,
            "POST /api/demo/bug {\"enabled\":true} answers 200 with a SystemStatus",
            "seed §5.3 #2; operationId setDemoBug; #/components/schemas/SystemStatus",
            phase,
        ),
        info(
            INCIDENT_CREATED,
            "after bug on, the server detects the incident by itself: incident.created arrives within the timeout",
            "seed §7, §8.3 steps 1-3; WebSocket incident.created; #/components/schemas/IncidentCreatedMessage",
            phase,
        ),
        info(
            PLAN_GENERATED,
            "plan.generated arrives for the incident within the timeout",
            "seed §6 (When plan generated), §8.3 step 5; #/components/schemas/PlanGeneratedMessage",
            phase,
        ),
        info(
            PLAN_SIZE,
            "the plan has exactly 5 items",
            "seed §8.2 (Exactly 5 items), §11; #/components/schemas/Plan",
            phase,
        ),
        info(
            PLAN_COVERAGE,
            "the plan covers /health, /checkout, /catalog, a negative checkout test expecting a 4xx, and an auth check",
            "seed §8.2 (include at least); #/components/schemas/PlanItem",
            phase,
        ),
        info(
            RUN_STARTED,
            "a validation run starts by itself: tests.updated for the incident arrives within the timeout",
            "seed §6 (When tests start), §8.3 steps 6-7; #/components/schemas/TestsUpdatedMessage",
            phase,
        ),
        info(
            RUN_FAILING,
            "while the bug is on, a tests.updated shows a FAIL",
            "seed §11 (tests failing when bug is on); #/components/schemas/TestRun",
            phase,
        ),
        info(
            BUG_OFF,
            "POST /api/demo/bug {\"enabled\":false} answers 200 with a SystemStatus",
            "seed §5.3 #2, §8.3 (On Fix Bug); operationId setDemoBug; #/components/schemas/SystemStatus",
            phase,
        ),
        info(
            RECOVERED,
            "after bug off, system.status RECOVERED arrives within the timeout",
            "seed §6 (When all tests pass after a fix), §8.3 step 9; #/components/schemas/SystemStatusMessage",
            phase,
        ),
        info(
            CHECKOUT,
            "while the bug is on, POST /checkout of the demo app (the plan's checkout target) answers 500",
            "seed §11 (POST /api/demo/bug enabled=true makes POST /checkout return 500), §5.3 #2",
            phase,
        ),
        info(
            COPILOT,
            "POST /api/copilot/ask about the open incident answers a CopilotAnswer, and copilot.answer with that question arrives on the WebSocket",
            "seed §5.3 #7, §5.4 (copilot.answer -> CopilotAnswer), §11; operationId askCopilot; #/components/schemas/CopilotAnswerMessage",
            phase,
        ),
        info(
            PASSING_AFTER_FIX,
            "after bug off, a tests.updated for the incident shows every test PASS",
            "seed §11 (TestRun shows tests passing when bug is off), §6 (When all tests pass after a fix); #/components/schemas/TestsUpdatedMessage",
            phase,
        ),
    ]
}

/// Runs the flow; records the `flow/*` cases and the shapes that need the flow's state.
pub(super) async fn run(ctx: &mut Ctx<'_>, main: &MainRecorder) -> FlowResult {
    let mut result = FlowResult::default();
    let recorder = match main {
        Ok(recorder) => recorder,
        Err(error) => {
            let reason = format!(
                "precondition failed: no WebSocket connection to /ws to follow the flow (ws/connectWebSocket/4: {})",
                truncate(error, 200)
            );
            skip_all(ctx, &STEPS, &reason);
            skip_all(ctx, &IN_FLOW_SHAPES, &reason);
            return result;
        }
    };
    let http = ctx.http().clone();
    if !ctx.budget_left() {
        return result;
    }
    // A quiet start: the bug is off and no incident is open.
    let _ = http
        .post_json("/api/demo/bug", json!({"enabled": false}))
        .await;
    let _ = http
        .post_json("/api/incidents/simulate", json!({"mode": "INCIDENT_OFF"}))
        .await;

    let poller = StatusPoller::start(http.clone());
    stages(ctx, recorder, &http, &mut result).await;
    result.rest_statuses = poller.stop();

    // Clean up whatever happened, within the part of the budget kept for it.
    let http = ctx.cleanup_http().clone();
    let _ = http
        .post_json("/api/demo/bug", json!({"enabled": false}))
        .await;
    let _ = http
        .post_json("/api/incidents/simulate", json!({"mode": "INCIDENT_OFF"}))
        .await;
    result
}

/// The stages in order. A stage whose precondition failed (no incident, no plan) skips the steps that needed it,
/// naming the failed case, and ends the flow early.
async fn stages(ctx: &mut Ctx<'_>, recorder: &Recorder, http: &Http, result: &mut FlowResult) {
    let flow = Flow {
        recorder,
        http,
        start: recorder.len(),
        timeout: ctx.target.flow_timeout,
    };
    result.start_index = flow.start;

    let Some(incident_id) = incident::open(ctx, &flow).await else {
        let reason = "precondition failed: no incident was opened (flow/incident.created/1)";
        skip_all(ctx, &STEPS[2..], reason);
        skip_all(ctx, &IN_FLOW_SHAPES, reason);
        return;
    };
    result.incident_id = Some(incident_id.clone());
    shapes::status_during_incident(ctx, &incident_id).await;
    shapes::incident_during_incident(ctx, &incident_id).await;

    let items = plan::judge(ctx, &flow, &incident_id).await;
    // The copilot needs only the incident.
    clients::copilot(ctx, recorder, &incident_id).await;
    if items.is_empty() {
        let reason =
            "precondition failed: no plan items were generated (flow/plan.generated/1, /2)";
        skip_all(
            ctx,
            &[
                RUN_STARTED,
                RUN_FAILING,
                RECOVERED,
                CHECKOUT,
                PASSING_AFTER_FIX,
                RUN_TESTS_SHAPE,
                TEST_RUN_SHAPE,
            ],
            reason,
        );
        if clients::wants_late(ctx) {
            result.late = Some(clients::late_client(ctx, &incident_id, false).await);
        }
        let outcome = set_bug(ctx, false).await;
        ctx.record(BUG_OFF, outcome);
        return;
    }
    // The bug's effect on the demo app, through the plan's own checkout target.
    let outcome = plan::checkout_breaks(ctx, &items).await;
    ctx.record(CHECKOUT, outcome);

    let run_body = json!({"incident_id": incident_id});
    if let Some(run_id) = run::start(ctx, &flow, &incident_id, &run_body).await {
        result.rest_run_ids.push(run_id);
    }
    let runs = run::failing(ctx, &flow, &incident_id, result.rest_run_ids.first()).await;
    result.run_seen = runs.failing_seen;

    // A dashboard opened late (the join snapshot is FixLoop's: not looked for under the seed profile).
    if clients::wants_late(ctx) {
        result.late = Some(clients::late_client(ctx, &incident_id, result.run_seen).await);
    }

    let fixed = recovery::fix(ctx, &flow, &incident_id, run_body).await;
    recovery::passing_after_fix(ctx, &flow, &incident_id, &fixed, runs.any_update).await;
}

/// Polls `GET /api/status` during the flow and keeps the distinct statuses in order.
struct StatusPoller {
    task: JoinHandle<()>,
    statuses: Arc<Mutex<Vec<String>>>,
}

impl StatusPoller {
    const INTERVAL: Duration = Duration::from_millis(200);

    fn start(http: Http) -> Self {
        let statuses = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&statuses);
        let task = tokio::spawn(async move {
            let mut interval = tokio::time::interval(Self::INTERVAL);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let Ok(reply) = http.get("/api/status").await else {
                    continue;
                };
                let Some(status) = reply
                    .json
                    .ok()
                    .and_then(|body| body["status"].as_str().map(str::to_owned))
                else {
                    continue;
                };
                let mut seen = sink.lock().unwrap_or_else(PoisonError::into_inner);
                if seen.last() != Some(&status) {
                    seen.push(status);
                }
            }
        });
        Self { task, statuses }
    }

    fn stop(self) -> Vec<String> {
        self.task.abort();
        std::mem::take(&mut *self.statuses.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Drop for StatusPoller {
    fn drop(&mut self) {
        self.task.abort();
    }
}
