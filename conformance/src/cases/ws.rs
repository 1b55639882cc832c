//! Seed §5.4 and §6 (WebSocket): every message received during the suite validated against the spec's
//! `WsEnvelope` (by its `type` discriminator), the required orders, a `system.status` for every status change, a
//! `tests.updated` for every test change, and the state a client connecting late receives.
//!
//! The seed says nothing of what a new client receives before the next event, so the join snapshot
//! (`ws/connectWebSocket/1`-`3`) and the rule that every status seen over REST was announced (`ws/system.status/1`)
//! are FixLoop's (`fixloop` profile); the upgrade itself, the envelopes, the orders and the runs are the seed's.

use tokio::time::Instant;

use super::check::schema_name;
use super::context::{Ctx, MainRecorder, info};
use super::flow::FlowResult;
use super::messages::{find, is_test_run, run_state};
use crate::case::{CaseInfo, Outcome, Phase, Profile};
use crate::client::{Frame, Recorder, WsLog, ws_url};
use crate::spec::{Spec, short_json, truncate};

/// The catalog entries.
pub(super) fn cases() -> Vec<CaseInfo> {
    let phase = Phase::WebSocket;
    let seed = |id: &str, description: &str, clause: &str, phase| {
        info(Profile::Seed, id, description, clause, phase)
    };
    let fixloop = |id: &str, description: &str, clause: &str, phase| {
        info(Profile::Fixloop, id, description, clause, phase)
    };
    vec![
        seed(
            "ws/connectWebSocket/4",
            "GET /ws upgrades to a WebSocket",
            "seed §5.4 (GET /ws); operationId connectWebSocket",
            phase,
        ),
        fixloop(
            "ws/connectWebSocket/1",
            "on connect the server sends the current system.status first, promptly",
            "openapi.yaml GET /ws description; seed §5.4; #/components/schemas/SystemStatusMessage",
            phase,
        ),
        fixloop(
            "ws/connectWebSocket/2",
            "a client connecting during the incident promptly gets system.status first, then incident.created with its plan",
            "openapi.yaml GET /ws description (late client); #/components/schemas/IncidentCreatedMessage",
            phase,
        ),
        fixloop(
            "ws/connectWebSocket/3",
            "a client connecting during a run promptly gets the current run as tests.updated",
            "openapi.yaml GET /ws description (late client); #/components/schemas/TestsUpdatedMessage",
            phase,
        ),
        seed(
            "ws/WsEnvelope/1",
            "every message received during the suite is a text frame valid against WsEnvelope (by its type)",
            "seed §5.4; x-websocket-messages; #/components/schemas/WsEnvelope",
            phase,
        ),
        fixloop(
            "ws/WsEnvelope/2",
            "a client that names no event group in GET /ws?events= receives only the seed's five types (remediation.* and incident.escalated are opt-in)",
            "openapi.yaml GET /ws parameter events; #/components/schemas/WsEnvelope",
            phase,
        ),
        seed(
            "ws/incident.created/1",
            "incident.created comes before plan.generated for the same incident",
            "seed §6 (When incident starts / When plan generated), §8.3 steps 3-5",
            phase,
        ),
        fixloop(
            "ws/system.status/1",
            "every status seen by polling GET /api/status was announced by a system.status, in the same order",
            "seed §5.3 #2, §6 (emit system.status); #/components/schemas/SystemStatusMessage",
            phase,
        ),
        seed(
            "ws/system.status/2",
            "system.status goes through INCIDENT_ACTIVE, VALIDATING and RECOVERED, in that order",
            "seed §6 (IncidentState machine); #/components/schemas/IncidentState",
            phase,
        ),
        seed(
            "ws/tests.updated/1",
            "every run's last tests.updated matches GET /api/tests/runs/{run_id} (every test change was sent)",
            "seed §5.3 #5 (emits tests.updated as statuses change), §6; #/components/schemas/TestsUpdatedMessage",
            phase,
        ),
    ]
}

/// Connects the main recorder and judges `ws/connectWebSocket/1`.
pub(super) async fn connect_main(ctx: &mut Ctx<'_>) -> MainRecorder {
    let connected = match ws_url(&ctx.target.base_url) {
        Some(url) => {
            Recorder::connect(&url, ctx.bounded_by_budget(ctx.target.request_timeout)).await
        }
        None => Err(format!("no WebSocket URL for {}", ctx.target.base_url)),
    };
    let upgrade = match &connected {
        Err(error) => Outcome::fail("a WebSocket upgrade on GET /ws", error.clone(), ""),
        Ok(_) => Outcome::Pass,
    };
    ctx.record("ws/connectWebSocket/4", upgrade);
    let outcome = match &connected {
        Err(_) => {
            Outcome::skip("precondition failed: no WebSocket connection (ws/connectWebSocket/4)")
        }
        // Not waited for when not reported: a seed server need not send anything on connect.
        Ok(_) if !ctx.wants("ws/connectWebSocket/1") => Outcome::Pass,
        Ok(recorder) => {
            let first = recorder
                .wait_for(ctx.prompt_deadline(), |log| log.frames.first().cloned())
                .await;
            match first {
                Some(frame) if frame.kind() == Some("system.status") => Outcome::Pass,
                Some(frame) => Outcome::fail(
                    "system.status as the first message",
                    truncate(&frame.text, 200),
                    "/type",
                ),
                None => Outcome::fail(
                    "system.status as the first message, promptly",
                    "no message within the prompt bound",
                    "",
                ),
            }
        }
    };
    ctx.record("ws/connectWebSocket/1", outcome);
    connected
}

/// Judges the recorded messages.
pub(super) async fn judge(ctx: &mut Ctx<'_>, main: &MainRecorder, flow: &FlowResult) {
    let Ok(recorder) = main else {
        for id in [
            "ws/connectWebSocket/2",
            "ws/connectWebSocket/3",
            "ws/WsEnvelope/1",
            "ws/WsEnvelope/2",
            "ws/incident.created/1",
            "ws/system.status/1",
            "ws/system.status/2",
            "ws/tests.updated/1",
        ] {
            ctx.record(
                id,
                Outcome::skip(
                    "precondition failed: no WebSocket connection (ws/connectWebSocket/4)",
                ),
            );
        }
        return;
    };
    let grace = ctx.grace_deadline();

    // The late client.
    match (&flow.late, &flow.incident_id) {
        (Some(Ok(late)), Some(incident_id)) => {
            let (two, three) = late_outcomes(late, incident_id, flow.run_seen);
            ctx.record("ws/connectWebSocket/2", two);
            ctx.record("ws/connectWebSocket/3", three);
        }
        (Some(Err(error)), _) => {
            let outcome = Outcome::fail(
                "a second WebSocket connection during the incident",
                error.clone(),
                "",
            );
            ctx.record("ws/connectWebSocket/2", outcome.clone());
            ctx.record("ws/connectWebSocket/3", outcome);
        }
        _ => {
            ctx.record(
                "ws/connectWebSocket/2",
                Outcome::skip("the flow did not reach an incident"),
            );
            ctx.record(
                "ws/connectWebSocket/3",
                Outcome::skip("the flow did not reach an incident"),
            );
        }
    }

    let log = recorder.snapshot();
    let late_frames = match &flow.late {
        Some(Ok(late)) => late.frames.as_slice(),
        _ => &[],
    };
    ctx.record(
        "ws/WsEnvelope/1",
        envelope_outcome(ctx.spec, &log.frames, late_frames),
    );

    ctx.record("ws/WsEnvelope/2", opt_in_outcome(&log.frames, late_frames));

    ctx.record("ws/incident.created/1", order_outcome(&log));

    // Statuses seen over REST must all have been announced, in order.
    let wanted = flow.rest_statuses.clone();
    let announced = recorder
        .wait_for(grace, |log| {
            let ws = ws_statuses(log, 0);
            is_subsequence(&wanted, &ws).then_some(ws)
        })
        .await;
    let outcome = match announced {
        Some(_) if wanted.is_empty() => {
            Outcome::skip("GET /api/status never answered a status during the flow")
        }
        Some(_) => Outcome::Pass,
        None => Outcome::fail(
            format!(
                "system.status messages announcing [{}] in this order (seen via GET /api/status)",
                wanted.join(", ")
            ),
            format!(
                "system.status sequence: [{}]",
                ws_statuses(&recorder.snapshot(), 0).join(", ")
            ),
            "/payload/status",
        ),
    };
    ctx.record("ws/system.status/1", outcome);

    let outcome = if flow.incident_id.is_none() {
        Outcome::skip("the flow did not reach an incident")
    } else {
        let sequence = ws_statuses(&log, flow.start_index);
        let required = ["INCIDENT_ACTIVE", "VALIDATING", "RECOVERED"].map(str::to_owned);
        if is_subsequence(&required, &sequence) {
            Outcome::Pass
        } else {
            Outcome::fail(
                "system.status INCIDENT_ACTIVE, then VALIDATING, then RECOVERED during the flow",
                format!("[{}]", sequence.join(", ")),
                "/payload/status",
            )
        }
    };
    ctx.record("ws/system.status/2", outcome);

    let outcome = runs_outcome(ctx, recorder, flow, grace).await;
    ctx.record("ws/tests.updated/1", outcome);
}

fn late_outcomes(late: &WsLog, incident_id: &str, run_seen: bool) -> (Outcome, Outcome) {
    let kinds: Vec<&str> = late
        .frames
        .iter()
        .map(|f| f.kind().unwrap_or("(no type)"))
        .collect();
    let received = format!("received promptly: [{}]", kinds.join(", "));
    let first_is_status = late
        .frames
        .first()
        .is_some_and(|f| f.kind() == Some("system.status"));
    let incident = find(late, 0, "incident.created", |p| {
        p["incident_id"].as_str() == Some(incident_id)
    });
    let two = if !first_is_status {
        Outcome::fail(
            "system.status as the first message",
            received.clone(),
            "/type",
        )
    } else {
        match incident {
            None => Outcome::fail(
                format!("incident.created for {incident_id}"),
                received.clone(),
                "",
            ),
            Some((_, card)) if card["plan"]["items"].as_array().is_none_or(Vec::is_empty) => {
                Outcome::fail(
                    "incident.created carrying the generated plan",
                    format!("plan: {}", short_json(&card["plan"])),
                    "/payload/plan/items",
                )
            }
            Some(_) => Outcome::Pass,
        }
    };
    let three = if !run_seen {
        Outcome::skip("no run was seen during the flow")
    } else if find(late, 0, "tests.updated", |p| {
        p["incident_id"].as_str() == Some(incident_id)
    })
    .is_some()
    {
        Outcome::Pass
    } else {
        Outcome::fail(
            format!("tests.updated for the current run of {incident_id}"),
            received,
            "",
        )
    };
    (two, three)
}

/// The types a client receives only when it asked for their group with `GET /ws?events=`.
const OPT_IN_TYPES: [&str; 3] = [
    "remediation.proposed",
    "remediation.updated",
    "incident.escalated",
];

/// Neither connection asked for an event group, so neither may see an opt-in type.
fn opt_in_outcome(main: &[Frame], late: &[Frame]) -> Outcome {
    let leaked = main.iter().chain(late).find(|frame| {
        frame
            .kind()
            .is_some_and(|kind| OPT_IN_TYPES.contains(&kind))
    });
    match leaked {
        None => Outcome::Pass,
        Some(frame) => Outcome::fail(
            "no remediation.* or incident.escalated message on a connection without events=",
            truncate(&frame.text, 200),
            "/type",
        ),
    }
}

fn envelope_outcome(spec: &Spec, main: &[Frame], late: &[Frame]) -> Outcome {
    if main.is_empty() {
        return Outcome::fail(
            "at least one message (the initial system.status)",
            "no message at all",
            "",
        );
    }
    let types = spec.ws_message_types();
    let mut problems = Vec::new();
    for (connection, frames) in [("first connection", main), ("late connection", late)] {
        for frame in frames {
            let at = |kind: &str| format!("message #{} ({kind}) on the {connection}", frame.index);
            if frame.binary {
                problems.push((
                    "".to_owned(),
                    "a text frame".to_owned(),
                    format!("a binary frame, {}", at("?")),
                ));
                continue;
            }
            let json = match &frame.json {
                Ok(json) => json,
                Err(error) => {
                    problems.push((
                        String::new(),
                        "a JSON document".to_owned(),
                        format!("{error} in {}: {}", at("?"), truncate(&frame.text, 120)),
                    ));
                    continue;
                }
            };
            let Some(kind) = frame.kind() else {
                problems.push((
                    "/type".to_owned(),
                    "a string `type`".to_owned(),
                    format!("{} in {}", short_json(&json["type"]), at("?")),
                ));
                continue;
            };
            let Some(schema) = spec.ws_message_schema(kind) else {
                problems.push((
                    "/type".to_owned(),
                    format!("one of [{}]", types.join(", ")),
                    format!("{kind:?} in {}", at(kind)),
                ));
                continue;
            };
            for violation in spec.check(&schema, json) {
                problems.push((
                    violation.path,
                    format!("{} per {}", violation.expected, schema_name(&schema)),
                    format!("{} in {}", violation.actual, at(kind)),
                ));
            }
        }
    }
    let Some((path, expected, actual)) = problems.first().cloned() else {
        return Outcome::Pass;
    };
    let actual = if problems.len() > 1 {
        format!("{actual} [and {} more violation(s)]", problems.len() - 1)
    } else {
        actual
    };
    Outcome::fail(expected, actual, path)
}

fn order_outcome(log: &WsLog) -> Outcome {
    let mut plans = 0;
    for frame in &log.frames {
        if frame.kind() != Some("plan.generated") {
            continue;
        }
        plans += 1;
        let Some(incident_id) = frame.payload().and_then(|p| p["incident_id"].as_str()) else {
            continue;
        };
        let created_before = log.frames[..frame.index].iter().any(|earlier| {
            earlier.kind() == Some("incident.created")
                && earlier.payload().and_then(|p| p["incident_id"].as_str()) == Some(incident_id)
        });
        if !created_before {
            return Outcome::fail(
                format!("incident.created for {incident_id} before its plan.generated"),
                format!(
                    "plan.generated (message #{}) with no earlier incident.created for it",
                    frame.index
                ),
                "/type",
            );
        }
    }
    if plans == 0 {
        Outcome::skip("no plan.generated was received (see flow/plan.generated/1)")
    } else {
        Outcome::Pass
    }
}

async fn runs_outcome(
    ctx: &Ctx<'_>,
    recorder: &Recorder,
    flow: &FlowResult,
    grace: Instant,
) -> Outcome {
    if flow.incident_id.is_none() {
        return Outcome::skip("the flow did not reach an incident");
    }
    let log = recorder.snapshot();
    let mut run_ids: Vec<String> = log
        .frames
        .iter()
        .filter(|frame| frame.kind() == Some("tests.updated"))
        .filter_map(|frame| {
            frame
                .payload()
                .and_then(|p| p["run_id"].as_str())
                .map(str::to_owned)
        })
        .collect();
    run_ids.extend(flow.rest_run_ids.iter().cloned());
    run_ids.sort();
    run_ids.dedup();
    if run_ids.is_empty() {
        return Outcome::fail(
            "tests.updated messages for the flow's runs",
            "no run at all",
            "",
        );
    }
    for run_id in run_ids {
        let path = format!("/api/tests/runs/{run_id}");
        let rest = match ctx.http().get(&path).await {
            Ok(reply) if reply.status == 200 => reply.json.ok(),
            _ => None,
        };
        // A `200 null` (or any non-object) is no run to compare with.
        if let Some(answer) = rest.as_ref().filter(|rest| !is_test_run(rest)) {
            return Outcome::fail(
                format!("GET {path} answering the run (a TestRun)"),
                format!("not a TestRun: {}", short_json(answer)),
                "",
            );
        }
        let Some(rest) = rest else {
            return Outcome::fail(
                format!("GET {path} answering the run"),
                "no 200 JSON answer",
                "",
            );
        };
        let expected = run_state(&rest);
        let matched = recorder
            .wait_for(grace, |log| {
                let last = last_run_state(log, &run_id);
                (last.as_ref() == Some(&expected)).then_some(())
            })
            .await;
        if matched.is_none() {
            let last = last_run_state(&recorder.snapshot(), &run_id);
            return Outcome::fail(
                format!(
                    "the last tests.updated for {run_id} to show what GET {path} shows: {expected}"
                ),
                last.map_or_else(
                    || "no tests.updated for this run".to_owned(),
                    |last| format!("last tests.updated: {last}"),
                ),
                "/payload",
            );
        }
    }
    Outcome::Pass
}

fn last_run_state(log: &WsLog, run_id: &str) -> Option<String> {
    log.frames
        .iter()
        .rev()
        .filter(|frame| frame.kind() == Some("tests.updated"))
        .filter_map(Frame::payload)
        .find(|payload| payload["run_id"].as_str() == Some(run_id))
        .map(run_state)
}

/// The `system.status` statuses from `from` on, consecutive repeats collapsed.
fn ws_statuses(log: &WsLog, from: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for frame in log.frames.iter().skip(from) {
        if frame.kind() != Some("system.status") {
            continue;
        }
        if let Some(status) = frame.payload().and_then(|p| p["status"].as_str())
            && out.last().map(String::as_str) != Some(status)
        {
            out.push(status.to_owned());
        }
    }
    out
}

/// Whether `needle` appears in `haystack` in order (not necessarily contiguously).
fn is_subsequence(needle: &[String], haystack: &[String]) -> bool {
    let mut rest = haystack.iter();
    needle.iter().all(|wanted| rest.any(|item| item == wanted))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn subsequence_respects_order() {
        let hay = strings(&["HEALTHY", "INCIDENT_ACTIVE", "VALIDATING", "RECOVERED"]);
        assert!(is_subsequence(&strings(&["HEALTHY", "RECOVERED"]), &hay));
        assert!(!is_subsequence(&strings(&["RECOVERED", "HEALTHY"]), &hay));
        assert!(is_subsequence(&[], &hay));
    }
}
