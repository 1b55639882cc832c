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

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::task::JoinHandle;

use super::{Ctx, MainRecorder, info, shapes};
use crate::case::{CaseInfo, Outcome, Phase, Profile};
use crate::client::{Body, Http, Recorder, WsLog};
use crate::spec::short_json;

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

const STEPS: [&str; 12] = [
    "flow/setDemoBug/1",
    "flow/incident.created/1",
    "flow/plan.generated/1",
    "flow/plan.generated/2",
    "flow/plan.generated/3",
    "flow/tests.updated/1",
    "flow/tests.updated/2",
    "flow/setDemoBug/2",
    "flow/system.status/1",
    CHECKOUT,
    COPILOT,
    PASSING_AFTER_FIX,
];

/// `POST /checkout` of the demo app answers 500 while the bug is on.
const CHECKOUT: &str = "flow/checkout/1";
/// `POST /api/copilot/ask` is announced as `copilot.answer` on the WebSocket.
const COPILOT: &str = "flow/copilot.answer/1";
/// After the fix, a run shows every test passing.
const PASSING_AFTER_FIX: &str = "flow/tests.updated/3";

/// The question the copilot case asks: recognisable in the `copilot.answer` it must cause.
const COPILOT_QUESTION: &str = "fixloop-conformance: which test fails while the bug is on?";

const IN_FLOW_SHAPES: [&str; 4] = [
    "shapes/getStatus/2",
    "shapes/getCurrentIncident/2",
    "shapes/runTests/1",
    "shapes/getTestRun/1",
];

/// The catalog entries.
pub(super) fn cases() -> Vec<CaseInfo> {
    let phase = Phase::Flow;
    let info = |id: &str, description: &str, clause: &str, phase| {
        info(Profile::Seed, id, description, clause, phase)
    };
    vec![
        info(
            STEPS[0],
            "POST /api/demo/bug {\"enabled\":true} answers 200 with a SystemStatus",
            "seed §5.3 #2; operationId setDemoBug; #/components/schemas/SystemStatus",
            phase,
        ),
        info(
            STEPS[1],
            "after bug on, the server detects the incident by itself: incident.created arrives within the timeout",
            "seed §7, §8.3 steps 1-3; WebSocket incident.created; #/components/schemas/IncidentCreatedMessage",
            phase,
        ),
        info(
            STEPS[2],
            "plan.generated arrives for the incident within the timeout",
            "seed §6 (When plan generated), §8.3 step 5; #/components/schemas/PlanGeneratedMessage",
            phase,
        ),
        info(
            STEPS[3],
            "the plan has exactly 5 items",
            "seed §8.2 (Exactly 5 items), §11; #/components/schemas/Plan",
            phase,
        ),
        info(
            STEPS[4],
            "the plan covers /health, /checkout, /catalog, a negative checkout test expecting a 4xx, and an auth check",
            "seed §8.2 (include at least); #/components/schemas/PlanItem",
            phase,
        ),
        info(
            STEPS[5],
            "a validation run starts by itself: tests.updated for the incident arrives within the timeout",
            "seed §6 (When tests start), §8.3 steps 6-7; #/components/schemas/TestsUpdatedMessage",
            phase,
        ),
        info(
            STEPS[6],
            "while the bug is on, a tests.updated shows a FAIL",
            "seed §11 (tests failing when bug is on); #/components/schemas/TestRun",
            phase,
        ),
        info(
            STEPS[7],
            "POST /api/demo/bug {\"enabled\":false} answers 200 with a SystemStatus",
            "seed §5.3 #2, §8.3 (On Fix Bug); operationId setDemoBug; #/components/schemas/SystemStatus",
            phase,
        ),
        info(
            STEPS[8],
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
                crate::spec::truncate(error, 200)
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
    steps(ctx, recorder, &http, &mut result).await;
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

async fn steps(ctx: &mut Ctx<'_>, recorder: &Recorder, http: &Http, result: &mut FlowResult) {
    let timeout = ctx.target.flow_timeout;
    let start = recorder.len();
    result.start_index = start;

    // Bug on.
    let outcome = set_bug(ctx, true).await;
    let bug_on = !outcome.is_fail();
    ctx.record(STEPS[0], outcome);

    // Detection.
    let created = |log: &WsLog| {
        find(log, start, "incident.created", |_| true)
            .and_then(|(_, payload)| payload["incident_id"].as_str().map(str::to_owned))
    };
    // A server that refused the bug switch has nothing to detect: only the simulate fallback is tried.
    let detection_deadline = if bug_on {
        ctx.flow_deadline()
    } else {
        tokio::time::Instant::now()
    };
    let mut incident_id = recorder.wait_for(detection_deadline, created).await;
    if incident_id.is_some() {
        ctx.record(STEPS[1], Outcome::Pass);
    } else {
        let _ = http
            .post_json("/api/incidents/simulate", json!({"mode": "INCIDENT_ON"}))
            .await;
        incident_id = recorder.wait_for(ctx.flow_deadline(), created).await;
        let outcome = if incident_id.is_some() {
            ctx.fallback(
                &format!("incident.created within {timeout:?} of bug on"),
                "server only reaches an incident through /api/incidents/simulate",
            )
        } else {
            Outcome::fail(
                if bug_on {
                    format!(
                        "incident.created within {timeout:?} of bug on, or after simulate INCIDENT_ON"
                    )
                } else {
                    "incident.created after simulate INCIDENT_ON (the bug switch failed, see flow/setDemoBug/1)".to_owned()
                },
                format!(
                    "no incident.created; types received: {}",
                    types_after(recorder, start)
                ),
                "",
            )
        };
        ctx.record(STEPS[1], outcome);
    }
    let Some(incident_id) = incident_id else {
        let reason = "precondition failed: no incident was opened (flow/incident.created/1)";
        skip_all(ctx, &STEPS[2..], reason);
        skip_all(ctx, &IN_FLOW_SHAPES, reason);
        return;
    };
    result.incident_id = Some(incident_id.clone());
    shapes::status_during_incident(ctx, &incident_id).await;
    shapes::incident_during_incident(ctx, &incident_id).await;

    // The plan.
    let for_incident =
        |payload: &Value| payload["incident_id"].as_str() == Some(incident_id.as_str());
    let generated = recorder
        .wait_for(ctx.flow_deadline(), |log| {
            find(log, start, "plan.generated", for_incident)
        })
        .await;
    let (plan, plan_path) = match generated {
        Some((_, payload)) => {
            ctx.record(STEPS[2], Outcome::Pass);
            (payload["plan"].clone(), "/payload/plan/items")
        }
        None => {
            ctx.record(
                STEPS[2],
                Outcome::fail(
                    format!("plan.generated for incident {incident_id} within {timeout:?}"),
                    format!("none; types received: {}", types_after(recorder, start)),
                    "",
                ),
            );
            // Judge the plan through REST so one missing event fails one case.
            let plan = match http.get("/api/incidents/current").await {
                Ok(reply) => reply
                    .json
                    .map(|card| card["plan"].clone())
                    .unwrap_or(Value::Null),
                Err(_) => Value::Null,
            };
            (plan, "/plan/items (GET /api/incidents/current)")
        }
    };
    let items = plan["items"].as_array().cloned().unwrap_or_default();
    match plan["items"].as_array() {
        Some(items) => {
            let outcome = if items.len() == 5 {
                Outcome::Pass
            } else {
                Outcome::fail(
                    "exactly 5 plan items",
                    format!("{} items", items.len()),
                    plan_path,
                )
            };
            ctx.record(STEPS[3], outcome);
            let gaps = coverage_gaps(items);
            let outcome = if gaps.is_empty() {
                Outcome::Pass
            } else {
                Outcome::fail(
                    "items covering /health, /checkout, /catalog, a negative checkout test expecting a 4xx, and an auth check",
                    format!(
                        "missing: {}; items: {}",
                        gaps.join(", "),
                        describe_items(items)
                    ),
                    plan_path,
                )
            };
            ctx.record(STEPS[4], outcome);
        }
        None => {
            let outcome = Outcome::fail("a plan with an items array", short_json(&plan), plan_path);
            ctx.record(STEPS[3], outcome.clone());
            ctx.record(STEPS[4], outcome);
        }
    }

    // The copilot needs only the incident.
    copilot(ctx, recorder, &incident_id).await;

    if items.is_empty() {
        let reason =
            "precondition failed: no plan items were generated (flow/plan.generated/1, /2)";
        skip_all(
            ctx,
            &[
                STEPS[5],
                STEPS[6],
                STEPS[8],
                CHECKOUT,
                PASSING_AFTER_FIX,
                "shapes/runTests/1",
                "shapes/getTestRun/1",
            ],
            reason,
        );
        if wants_late(ctx) {
            result.late = Some(late_client(ctx, &incident_id, false).await);
        }
        let outcome = set_bug(ctx, false).await;
        ctx.record(STEPS[7], outcome);
        return;
    }

    // The bug's effect on the demo app, through the plan's own checkout target.
    let outcome = checkout_breaks(ctx, &items).await;
    ctx.record(CHECKOUT, outcome);

    // The run.
    let run_body = json!({"incident_id": incident_id});
    // The seed does not promise that a run starts by itself: wait a short while, then use the contract's own
    // operation (`POST /api/tests/run`).
    let first_update = recorder
        .wait_for(ctx.auto_run_deadline(), |log| {
            find(log, start, "tests.updated", for_incident)
        })
        .await;
    let mut manual_run = None;
    if first_update.is_some() {
        ctx.record(STEPS[5], Outcome::Pass);
    } else {
        let reply = shapes::request(
            ctx,
            "runTests",
            "POST",
            "/api/tests/run",
            Body::Json(run_body.clone()),
            200,
        )
        .await;
        let started = recorder
            .wait_for(ctx.flow_deadline(), |log| {
                find(log, start, "tests.updated", for_incident)
            })
            .await;
        let outcome = if started.is_some() {
            ctx.fallback(
                &format!(
                    "tests.updated within {:?} of the plan without a manual run",
                    ctx.auto_run_wait()
                ),
                "needs a manual /api/tests/run",
            )
        } else {
            Outcome::fail(
                format!(
                    "tests.updated for incident {incident_id}, by itself or after POST /api/tests/run"
                ),
                format!("none; types received: {}", types_after(recorder, start)),
                "",
            )
        };
        ctx.record(STEPS[5], outcome);
        manual_run = Some(reply);
    }
    let run_reply = match manual_run {
        Some(reply) => reply,
        None => {
            shapes::request(
                ctx,
                "runTests",
                "POST",
                "/api/tests/run",
                Body::Json(run_body.clone()),
                200,
            )
            .await
        }
    };
    let outcome = match &run_reply {
        Err(outcome) => outcome.clone(),
        Ok(run) if !super::ws::is_test_run(run) => Outcome::fail(
            "a TestRun for the incident",
            format!("not a TestRun: {}", short_json(run)),
            "",
        ),
        Ok(run) if run["incident_id"].as_str() == Some(incident_id.as_str()) => Outcome::Pass,
        Ok(run) => Outcome::fail(
            format!("incident_id {incident_id:?}"),
            run["incident_id"].to_string(),
            "/incident_id",
        ),
    };
    ctx.record("shapes/runTests/1", outcome);
    if let Some(run_id) = run_reply
        .as_ref()
        .ok()
        .and_then(|run| run["run_id"].as_str())
    {
        result.rest_run_ids.push(run_id.to_owned());
    }

    // A failing test while the bug is on; not waited for when no run was ever announced.
    let any_update = find(&recorder.snapshot(), start, "tests.updated", for_incident).is_some();
    let has_fail = |payload: &Value| {
        for_incident(payload)
            && payload["tests"]
                .as_array()
                .is_some_and(|tests| tests.iter().any(|test| test["status"] == "FAIL"))
    };
    let failing = if any_update {
        recorder
            .wait_for(ctx.flow_deadline(), |log| {
                find(log, start, "tests.updated", has_fail)
            })
            .await
    } else {
        None
    };
    let run_id = match &failing {
        Some((_, payload)) => {
            ctx.record(STEPS[6], Outcome::Pass);
            payload["run_id"].as_str().map(str::to_owned)
        }
        None if !any_update => {
            ctx.record(
                STEPS[6],
                Outcome::skip(
                    "precondition failed: no tests.updated for the incident arrived (flow/tests.updated/1)",
                ),
            );
            None
        }
        None => {
            let last = recorder
                .snapshot()
                .frames
                .iter()
                .rev()
                .find(|frame| frame.kind() == Some("tests.updated"))
                .and_then(|frame| frame.payload().map(run_summary));
            ctx.record(
                STEPS[6],
                Outcome::fail(
                    format!(
                        "a tests.updated with a FAIL test within {timeout:?} while the bug is on"
                    ),
                    last.map_or_else(
                        || "no tests.updated".to_owned(),
                        |summary| format!("last tests.updated: {summary}"),
                    ),
                    "/payload/tests",
                ),
            );
            None
        }
    }
    .or_else(|| result.rest_run_ids.first().cloned());
    result.run_seen = failing.is_some();
    match &run_id {
        Some(run_id) => shapes::run_by_id(ctx, run_id).await,
        None => ctx.record("shapes/getTestRun/1", Outcome::skip("no run id was seen")),
    }

    // A dashboard opened late (the join snapshot is FixLoop's: not looked for under the seed profile).
    if wants_late(ctx) {
        result.late = Some(late_client(ctx, &incident_id, result.run_seen).await);
    }

    // Bug off, and recovery.
    let fixed = recorder.len();
    let outcome = set_bug(ctx, false).await;
    ctx.record(STEPS[7], outcome);
    let recovered = |log: &WsLog| {
        find(log, fixed, "system.status", |payload| {
            payload["status"] == "RECOVERED"
        })
    };
    // A rerun starting by itself is not promised by the seed either: when none starts (nor RECOVERED comes)
    // within the short wait, the contract's own operation starts one; otherwise RECOVERED gets the whole wait.
    let rerun_or_recovered = |log: &WsLog| {
        find(log, fixed, "tests.updated", for_incident)
            .map(|_| ())
            .or_else(|| recovered(log).map(|_| ()))
    };
    let reran_by_itself = recorder
        .wait_for(ctx.auto_run_deadline(), rerun_or_recovered)
        .await
        .is_some();
    let outcome = if reran_by_itself
        && recorder
            .wait_for(ctx.flow_deadline(), recovered)
            .await
            .is_some()
    {
        Outcome::Pass
    } else if reran_by_itself {
        fail_recovery(recorder, fixed, timeout, false)
    } else {
        let _ = http.post_json("/api/tests/run", run_body).await;
        if recorder
            .wait_for(ctx.flow_deadline(), recovered)
            .await
            .is_some()
        {
            ctx.fallback(
                &format!(
                    "system.status RECOVERED within {timeout:?} of bug off without a manual run"
                ),
                "needs a manual /api/tests/run",
            )
        } else {
            fail_recovery(recorder, fixed, timeout, true)
        }
    };
    let recovered = !outcome.is_fail();
    ctx.record(STEPS[8], outcome);

    // Tests passing after the fix (seed §11): a run of the incident, announced after bug off, all PASS.
    let outcome = if any_update {
        let all_pass = |payload: &Value| {
            for_incident(payload)
                && payload["tests"].as_array().is_some_and(|tests| {
                    !tests.is_empty() && tests.iter().all(|test| test["status"] == "PASS")
                })
        };
        // After RECOVERED the passing run is due at once; otherwise the recovery wait already took its time.
        let deadline = if recovered {
            ctx.prompt_deadline()
        } else {
            ctx.grace_deadline()
        };
        match recorder
            .wait_for(deadline, |log| find(log, fixed, "tests.updated", all_pass))
            .await
        {
            Some(_) => Outcome::Pass,
            None => {
                let last = recorder
                    .snapshot()
                    .frames
                    .iter()
                    .skip(fixed)
                    .rev()
                    .find(|frame| frame.kind() == Some("tests.updated"))
                    .and_then(|frame| frame.payload().map(run_summary));
                Outcome::fail(
                    "a tests.updated for the incident with every test PASS after bug off",
                    last.map_or_else(
                        || "no tests.updated after bug off".to_owned(),
                        |summary| format!("last tests.updated after bug off: {summary}"),
                    ),
                    "/payload/tests",
                )
            }
        }
    } else {
        Outcome::skip(
            "precondition failed: no tests.updated for the incident arrived (flow/tests.updated/1)",
        )
    };
    ctx.record(PASSING_AFTER_FIX, outcome);
}

/// The failure of `flow/system.status/1`: the statuses seen after bug off.
fn fail_recovery(recorder: &Recorder, fixed: usize, timeout: Duration, tried_run: bool) -> Outcome {
    let statuses: Vec<String> = recorder
        .snapshot()
        .frames
        .iter()
        .skip(fixed)
        .filter(|frame| frame.kind() == Some("system.status"))
        .filter_map(|frame| frame.payload().map(|p| p["status"].to_string()))
        .collect();
    Outcome::fail(
        format!(
            "system.status RECOVERED within {timeout:?} of bug off{}",
            if tried_run {
                " (also tried POST /api/tests/run)"
            } else {
                ""
            }
        ),
        format!(
            "system.status values after bug off: [{}]",
            statuses.join(", ")
        ),
        "/payload/status",
    )
}

/// `flow/copilot.answer/1`: a question about the incident is answered over REST and announced on the WebSocket.
async fn copilot(ctx: &mut Ctx<'_>, recorder: &Recorder, incident_id: &str) {
    if !ctx.wants(COPILOT) {
        return;
    }
    let from = recorder.len();
    let reply = shapes::request(
        ctx,
        "askCopilot",
        "POST",
        "/api/copilot/ask",
        Body::Json(json!({"incident_id": incident_id, "question": COPILOT_QUESTION})),
        200,
    )
    .await;
    let outcome = match reply {
        Err(outcome) => outcome,
        Ok(_) => {
            let announced = recorder
                .wait_for(ctx.prompt_deadline(), |log| {
                    find(log, from, "copilot.answer", |payload| {
                        payload["question"] == COPILOT_QUESTION
                    })
                })
                .await;
            if announced.is_some() {
                Outcome::Pass
            } else {
                Outcome::fail(
                    format!(
                        "a copilot.answer with question {COPILOT_QUESTION:?} on the WebSocket after the 200"
                    ),
                    format!(
                        "none; types received since the question: {}",
                        types_after(recorder, from)
                    ),
                    "/type",
                )
            }
        }
    };
    ctx.record(COPILOT, outcome);
}

/// `flow/checkout/1`: the plan's positive checkout target, called as the plan describes it, answers 500.
async fn checkout_breaks(ctx: &Ctx<'_>, items: &[Value]) -> Outcome {
    if !ctx.wants(CHECKOUT) {
        return Outcome::Pass;
    }
    let is_checkout = |item: &&Value| {
        url_path(item["target"]["url"].as_str().unwrap_or("")).ends_with("/checkout")
    };
    let target = items
        .iter()
        .filter(is_checkout)
        .find(|item| !mentions_client_error(item["pass_criteria"].as_str().unwrap_or("")))
        .or_else(|| items.iter().find(is_checkout));
    let Some(item) = target else {
        return Outcome::skip(
            "precondition failed: the plan names no /checkout target to find the demo app by (flow/plan.generated/3)",
        );
    };
    let url = item["target"]["url"].as_str().unwrap_or("");
    if !url.starts_with("http://") && !url.starts_with("https://") {
        return Outcome::skip(format!(
            "the plan's checkout target {url:?} is not an absolute http(s) URL"
        ));
    }
    let method = item["target"]["method"].as_str().unwrap_or("POST");
    let headers: Vec<(String, String)> = item["target"]["headers"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(name, value)| value.as_str().map(|v| (name.clone(), v.to_owned())))
        .filter(|(name, _)| !name.eq_ignore_ascii_case("content-type"))
        .collect();
    let body = match &item["target"]["body_json"] {
        Value::Null => Body::None,
        body => Body::Json(body.clone()),
    };
    match ctx.http().send_to(method, url, &headers, body).await {
        // The demo app is another server: one the runner cannot reach says nothing about the backend.
        Err(error) => Outcome::skip(format!(
            "the plan's checkout target {method} {url} did not answer: {}",
            crate::spec::truncate(&error, 200)
        )),
        Ok(reply) if reply.status == 500 => Outcome::Pass,
        Ok(reply) => Outcome::fail(
            format!("status 500 from {method} {url} while the bug is on"),
            format!(
                "status {} with body {}",
                reply.status,
                crate::spec::truncate(&reply.text, 200)
            ),
            "status",
        ),
    }
}

/// Whether a case judging the late client is reported.
fn wants_late(ctx: &Ctx<'_>) -> bool {
    ctx.wants("ws/connectWebSocket/2") || ctx.wants("ws/connectWebSocket/3")
}

/// Connects a second client during the incident and keeps what it receives promptly.
async fn late_client(ctx: &Ctx<'_>, incident_id: &str, run_seen: bool) -> Result<WsLog, String> {
    let url =
        crate::client::ws_url(&ctx.target.base_url).ok_or("the base URL has no WebSocket form")?;
    let late = Recorder::connect(&url, ctx.bounded_by_budget(ctx.target.request_timeout)).await?;
    let complete = |log: &WsLog| {
        let status = log
            .frames
            .first()
            .is_some_and(|f| f.kind() == Some("system.status"));
        let incident = find(log, 0, "incident.created", |p| {
            p["incident_id"].as_str() == Some(incident_id)
        })
        .is_some();
        let run = !run_seen || find(log, 0, "tests.updated", |_| true).is_some();
        (status && incident && run).then_some(())
    };
    let _ = late.wait_for(ctx.prompt_deadline(), complete).await;
    Ok(late.snapshot())
}

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

fn types_after(recorder: &Recorder, from: usize) -> String {
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
async fn set_bug(ctx: &mut Ctx<'_>, enabled: bool) -> Outcome {
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

fn run_summary(run: &Value) -> String {
    format!(
        "run {} {}",
        run["run_id"].as_str().unwrap_or("?"),
        super::ws::run_state(run)
    )
}

fn skip_all(ctx: &mut Ctx<'_>, ids: &[&str], reason: &str) {
    for id in ids {
        ctx.record(id, Outcome::skip(reason));
    }
}

/// The seed's coverage requirements a plan's items miss.
pub(super) fn coverage_gaps(items: &[Value]) -> Vec<&'static str> {
    fn path_of(item: &Value) -> &str {
        url_path(item["target"]["url"].as_str().unwrap_or(""))
    }
    let covers = |suffix: &str| items.iter().any(|item| path_of(item).ends_with(suffix));
    let mut gaps = Vec::new();
    if !covers("/health") {
        gaps.push("/health");
    }
    if !covers("/checkout") {
        gaps.push("/checkout");
    }
    if !covers("/catalog") {
        gaps.push("/catalog");
    }
    let negative = items.iter().any(|item| {
        path_of(item).ends_with("/checkout")
            && mentions_client_error(item["pass_criteria"].as_str().unwrap_or(""))
    });
    if !negative {
        gaps.push("a negative checkout test whose pass_criteria expect a 4xx");
    }
    let auth = items.iter().any(|item| {
        let headers = item["target"]["headers"].as_object();
        let sends_authorization =
            headers.is_some_and(|h| h.keys().any(|k| k.eq_ignore_ascii_case("authorization")));
        sends_authorization || path_of(item).to_ascii_lowercase().contains("auth")
    });
    if !auth {
        gaps.push("an auth check (an Authorization header or an auth endpoint)");
    }
    gaps
}

/// The path of a URL (`http://h:1/a/b?q` → `/a/b`); a relative reference is returned as is, minus any query.
fn url_path(url: &str) -> &str {
    let after_scheme = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest.find('/').map_or("", |i| &rest[i..]));
    let end = after_scheme.find(['?', '#']).unwrap_or(after_scheme.len());
    &after_scheme[..end]
}

/// Whether pass criteria name a 4xx status (`status == 422`, `status in [400, 422]`, `4xx`).
fn mentions_client_error(criteria: &str) -> bool {
    if criteria.to_ascii_lowercase().contains("4xx") {
        return true;
    }
    let bytes = criteria.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if criteria[start..i]
                .parse::<u32>()
                .is_ok_and(|n| (400..500).contains(&n))
            {
                return true;
            }
        } else {
            i += 1;
        }
    }
    false
}

fn describe_items(items: &[Value]) -> String {
    let described: Vec<String> = items
        .iter()
        .map(|item| {
            format!(
                "{} {} ({})",
                item["target"]["method"].as_str().unwrap_or("?"),
                url_path(item["target"]["url"].as_str().unwrap_or("")),
                item["pass_criteria"].as_str().unwrap_or("?")
            )
        })
        .collect();
    format!("[{}]", described.join("; "))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn item(method: &str, url: &str, criteria: &str, headers: Value) -> Value {
        json!({"target": {"method": method, "url": url, "headers": headers}, "pass_criteria": criteria})
    }

    #[test]
    fn the_seed_plan_has_no_coverage_gap() {
        let items = [
            item(
                "GET",
                "http://127.0.0.1:8001/health",
                "status == 200",
                json!({}),
            ),
            item(
                "POST",
                "http://127.0.0.1:8001/checkout",
                "status == 200",
                json!({}),
            ),
            item(
                "GET",
                "http://127.0.0.1:8001/catalog?x=1",
                "status == 200",
                json!({}),
            ),
            item(
                "POST",
                "http://127.0.0.1:8001/checkout",
                "status in [400, 422]",
                json!({}),
            ),
            item(
                "GET",
                "http://127.0.0.1:8001/auth/me",
                "status == 200",
                json!({"Authorization": "Bearer demo-token"}),
            ),
        ];
        assert!(
            coverage_gaps(&items).is_empty(),
            "{:?}",
            coverage_gaps(&items)
        );
    }

    #[test]
    fn a_plan_without_negative_or_auth_tests_names_both_gaps() {
        let items = [
            item("GET", "http://h/health", "status == 200", json!({})),
            item("POST", "http://h/checkout", "status == 200", json!({})),
            item(
                "GET",
                "http://h/catalog",
                "status == 200 && latency_ms < 800",
                json!({}),
            ),
        ];
        let gaps = coverage_gaps(&items);
        assert_eq!(gaps.len(), 2, "{gaps:?}");
        assert!(gaps[0].contains("negative checkout"));
        assert!(gaps[1].contains("auth"));
    }

    #[test]
    fn client_error_mentions_need_a_4xx_number() {
        assert!(mentions_client_error("status == 422"));
        assert!(mentions_client_error("status >= 400 && status < 500"));
        assert!(mentions_client_error("a 4xx"));
        assert!(!mentions_client_error("status == 200 && latency_ms < 4000"));
        assert!(!mentions_client_error("status == 500"));
    }
}
