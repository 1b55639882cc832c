//! The first stage: the bug is switched on (`flow/setDemoBug/1`) and the server opens an incident by itself
//! (`flow/incident.created/1`), or, as a reported fallback, after `POST /api/incidents/simulate`.

use serde_json::json;

use super::steps::{BUG_ON, Flow, INCIDENT_CREATED, set_bug, types_after};
use crate::case::Outcome;
use crate::cases::context::Ctx;
use crate::cases::messages::find;
use crate::client::WsLog;

/// Switches the bug on and waits for the incident; its id, or `None` when none was opened.
pub(super) async fn open(ctx: &mut Ctx<'_>, flow: &Flow<'_>) -> Option<String> {
    let (recorder, start, timeout) = (flow.recorder, flow.start, flow.timeout);

    let outcome = set_bug(ctx, true).await;
    let bug_on = !outcome.is_fail();
    ctx.record(BUG_ON, outcome);

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
        ctx.record(INCIDENT_CREATED, Outcome::Pass);
    } else {
        let _ = flow
            .http
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
        ctx.record(INCIDENT_CREATED, outcome);
    }
    incident_id
}
