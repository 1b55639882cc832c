//! The recovery stage: the bug is switched off (`flow/setDemoBug/2`), `system.status` RECOVERED follows
//! (`flow/system.status/1`; a rerun started by the contract's own operation is a reported fallback), and a run
//! announced after the fix shows every test passing (`flow/tests.updated/3`).

use std::time::Duration;

use serde_json::Value;

use super::steps::{
    BUG_OFF, Flow, PASSING_AFTER_FIX, RECOVERED, for_incident, run_summary, set_bug,
};
use crate::case::Outcome;
use crate::cases::context::Ctx;
use crate::cases::messages::find;
use crate::client::{Recorder, WsLog};

/// Where the fix began in the main log, and whether the server recovered.
pub(super) struct Fixed {
    /// Index in the main log of the first message after the bug was switched off.
    index: usize,
    /// Whether `flow/system.status/1` did not fail.
    recovered: bool,
}

/// Switches the bug off and waits for RECOVERED, starting a rerun through `POST /api/tests/run` (with
/// `run_body`) when none starts by itself.
pub(super) async fn fix(
    ctx: &mut Ctx<'_>,
    flow: &Flow<'_>,
    incident_id: &str,
    run_body: Value,
) -> Fixed {
    let (recorder, timeout) = (flow.recorder, flow.timeout);
    let fixed = recorder.len();
    let outcome = set_bug(ctx, false).await;
    ctx.record(BUG_OFF, outcome);
    let recovered = |log: &WsLog| {
        find(log, fixed, "system.status", |payload| {
            payload["status"] == "RECOVERED"
        })
    };
    // A rerun starting by itself is not promised by the seed either: when none starts (nor RECOVERED comes)
    // within the short wait, the contract's own operation starts one; otherwise RECOVERED gets the whole wait.
    let rerun_or_recovered = |log: &WsLog| {
        find(log, fixed, "tests.updated", for_incident(incident_id))
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
        let _ = flow.http.post_json("/api/tests/run", run_body).await;
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
    ctx.record(RECOVERED, outcome);
    Fixed {
        index: fixed,
        recovered,
    }
}

/// Tests passing after the fix (seed §11): a run of the incident, announced after bug off, all PASS. Skipped when
/// no run was ever announced (`any_update`).
pub(super) async fn passing_after_fix(
    ctx: &mut Ctx<'_>,
    flow: &Flow<'_>,
    incident_id: &str,
    fixed: &Fixed,
    any_update: bool,
) {
    let recorder = flow.recorder;
    let outcome = if any_update {
        let for_incident = for_incident(incident_id);
        let all_pass = |payload: &Value| {
            for_incident(payload)
                && payload["tests"].as_array().is_some_and(|tests| {
                    !tests.is_empty() && tests.iter().all(|test| test["status"] == "PASS")
                })
        };
        // After RECOVERED the passing run is due at once; otherwise the recovery wait already took its time.
        let deadline = if fixed.recovered {
            ctx.prompt_deadline()
        } else {
            ctx.grace_deadline()
        };
        match recorder
            .wait_for(deadline, |log| {
                find(log, fixed.index, "tests.updated", all_pass)
            })
            .await
        {
            Some(_) => Outcome::Pass,
            None => {
                let last = recorder
                    .snapshot()
                    .frames
                    .iter()
                    .skip(fixed.index)
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
