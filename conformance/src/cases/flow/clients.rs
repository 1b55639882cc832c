//! The other clients during the incident: a copilot question about it, answered over REST and announced on the
//! WebSocket (`flow/copilot.answer/1`), and a dashboard opened late, whose log the WebSocket judgements check
//! (`ws/connectWebSocket/2`, `/3`).

use serde_json::json;

use super::steps::{COPILOT, types_after};
use crate::case::Outcome;
use crate::cases::context::Ctx;
use crate::cases::messages::find;
use crate::cases::shapes;
use crate::client::{Body, Recorder, WsLog, ws_url};

/// The question the copilot case asks: recognisable in the `copilot.answer` it must cause.
const COPILOT_QUESTION: &str = "fixloop-conformance: which test fails while the bug is on?";

/// `flow/copilot.answer/1`: a question about the incident is answered over REST and announced on the WebSocket.
pub(super) async fn copilot(ctx: &mut Ctx<'_>, recorder: &Recorder, incident_id: &str) {
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

/// Whether a case judging the late client is reported.
pub(super) fn wants_late(ctx: &Ctx<'_>) -> bool {
    ctx.wants("ws/connectWebSocket/2") || ctx.wants("ws/connectWebSocket/3")
}

/// Connects a second client during the incident and keeps what it receives promptly.
pub(super) async fn late_client(
    ctx: &Ctx<'_>,
    incident_id: &str,
    run_seen: bool,
) -> Result<WsLog, String> {
    let url = ws_url(&ctx.target.base_url).ok_or("the base URL has no WebSocket form")?;
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
