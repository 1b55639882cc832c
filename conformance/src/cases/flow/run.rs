//! The run stage: a validation run for the incident starts (`flow/tests.updated/1`; by itself, or as a reported
//! fallback after `POST /api/tests/run`), `POST /api/tests/run` answers a TestRun (`shapes/runTests/1`), and while
//! the bug is on a run shows a failing test (`flow/tests.updated/2`), whose run is then read back
//! (`shapes/getTestRun/1`).

use serde_json::Value;

use super::steps::{
    Flow, RUN_FAILING, RUN_STARTED, RUN_TESTS_SHAPE, TEST_RUN_SHAPE, for_incident, run_summary,
    types_after,
};
use crate::case::Outcome;
use crate::cases::context::Ctx;
use crate::cases::messages::{find, is_test_run};
use crate::cases::shapes;
use crate::client::Body;
use crate::spec::short_json;

/// What the run stage saw of the incident's runs.
pub(super) struct Runs {
    /// Whether any `tests.updated` for the incident arrived.
    pub(super) any_update: bool,
    /// Whether a run with a failing test was seen.
    pub(super) failing_seen: bool,
}

/// Waits for a run to start (starting one through the contract's operation when none starts by itself) and
/// judges `POST /api/tests/run`; the run id the server answered over REST, if any.
pub(super) async fn start(
    ctx: &mut Ctx<'_>,
    flow: &Flow<'_>,
    incident_id: &str,
    run_body: &Value,
) -> Option<String> {
    let (recorder, start) = (flow.recorder, flow.start);
    let for_incident = for_incident(incident_id);
    // The seed does not promise that a run starts by itself: wait a short while, then use the contract's own
    // operation (`POST /api/tests/run`).
    let first_update = recorder
        .wait_for(ctx.auto_run_deadline(), |log| {
            find(log, start, "tests.updated", for_incident)
        })
        .await;
    let mut manual_run = None;
    if first_update.is_some() {
        ctx.record(RUN_STARTED, Outcome::Pass);
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
        ctx.record(RUN_STARTED, outcome);
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
        Ok(run) if !is_test_run(run) => Outcome::fail(
            "a TestRun for the incident",
            format!("not a TestRun: {}", short_json(run)),
            "",
        ),
        Ok(run) if run["incident_id"].as_str() == Some(incident_id) => Outcome::Pass,
        Ok(run) => Outcome::fail(
            format!("incident_id {incident_id:?}"),
            run["incident_id"].to_string(),
            "/incident_id",
        ),
    };
    ctx.record(RUN_TESTS_SHAPE, outcome);
    run_reply
        .as_ref()
        .ok()
        .and_then(|run| run["run_id"].as_str())
        .map(str::to_owned)
}

/// Waits for a failing test while the bug is on (not when no run was ever announced) and reads that run, or
/// `rest_run_id`, back over REST.
pub(super) async fn failing(
    ctx: &mut Ctx<'_>,
    flow: &Flow<'_>,
    incident_id: &str,
    rest_run_id: Option<&String>,
) -> Runs {
    let (recorder, start, timeout) = (flow.recorder, flow.start, flow.timeout);
    let for_incident = for_incident(incident_id);
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
            ctx.record(RUN_FAILING, Outcome::Pass);
            payload["run_id"].as_str().map(str::to_owned)
        }
        None if !any_update => {
            ctx.record(
                RUN_FAILING,
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
                RUN_FAILING,
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
    .or_else(|| rest_run_id.cloned());
    match &run_id {
        Some(run_id) => shapes::run_by_id(ctx, run_id).await,
        None => ctx.record(TEST_RUN_SHAPE, Outcome::skip("no run id was seen")),
    }
    Runs {
        any_update,
        failing_seen: failing.is_some(),
    }
}
