//! The whole seed flow over real sockets: `fixloop demo` started in-process on ephemeral ports with the embedded
//! defaults and the traffic generator, watched by a WebSocket client (tokio-tungstenite).
//!
//! bug on → `incident.created` → `plan.generated` (5 items) → `tests.updated` with a FAIL → copilot names the
//! failing endpoint → a late client gets the join snapshot → bug off → rerun → `system.status` RECOVERED.

use std::time::{Duration, Instant};

use fixloop_contract::{IncidentState, RunStatus, TestStatus, WsEnvelope, WsMessage};
use fixloop_server::{DemoOptions, start_demo};
use futures_util::StreamExt;
use serde_json::json;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

const TOTAL: Duration = Duration::from_secs(60);
pub(crate) const STEP: Duration = Duration::from_secs(30);

pub(crate) async fn next_message(socket: &mut Socket) -> WsMessage {
    loop {
        let frame = tokio::time::timeout(STEP, socket.next())
            .await
            .expect("an event in time")
            .expect("the socket stays open")
            .expect("no socket error");
        if let Message::Text(text) = frame {
            let envelope: WsEnvelope = serde_json::from_str(text.as_str()).expect("a WsEnvelope");
            return envelope.message;
        }
    }
}

/// Reads events into `log` until one satisfies `predicate`, which is returned.
pub(crate) async fn wait_for(
    socket: &mut Socket,
    log: &mut Vec<WsMessage>,
    predicate: impl Fn(&WsMessage) -> bool,
) -> WsMessage {
    loop {
        let message = next_message(socket).await;
        log.push(message.clone());
        if predicate(&message) {
            return message;
        }
    }
}

fn position(log: &[WsMessage], predicate: impl Fn(&WsMessage) -> bool) -> usize {
    log.iter()
        .position(predicate)
        .expect("the event is in the log")
}

async fn post(client: &reqwest::Client, url: String, body: serde_json::Value) -> serde_json::Value {
    let response = tokio::time::timeout(STEP, client.post(url).json(&body).send())
        .await
        .expect("answer in time")
        .expect("request sent");
    assert!(response.status().is_success(), "{}", response.status());
    tokio::time::timeout(STEP, response.json())
        .await
        .expect("the body in time")
        .expect("a JSON body")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_the_whole_seed_flow_over_a_real_socket() {
    tokio::time::timeout(TOTAL, seed_flow())
        .await
        .expect("the whole flow completes within 60 s");
}

async fn seed_flow() {
    let demo = start_demo(DemoOptions::ephemeral())
        .await
        .expect("the demo starts");
    let api = demo.orchestrator_url.clone();
    let ws_url = format!("{}/ws", api.replacen("http://", "ws://", 1));
    let client = fixloop_adapters::default_client();
    let (mut socket, _) = tokio::time::timeout(STEP, connect_async(&ws_url))
        .await
        .expect("connect in time")
        .expect("the websocket handshake succeeds");
    match next_message(&mut socket).await {
        WsMessage::SystemStatus(status) => assert_eq!(status.status, IncidentState::Healthy),
        other => panic!(
            "the join snapshot starts with system.status, got {}",
            other.kind()
        ),
    }
    let mut log = Vec::new();

    // Break the service.
    let bug_on = Instant::now();
    post(
        &client,
        format!("{api}/api/demo/bug"),
        json!({"enabled": true}),
    )
    .await;
    let created = wait_for(&mut socket, &mut log, |message| {
        matches!(message, WsMessage::IncidentCreated(_))
    })
    .await;
    let to_incident = bug_on.elapsed();
    let WsMessage::IncidentCreated(card) = created else {
        unreachable!()
    };
    assert!(
        card.plan.items.is_empty(),
        "incident.created carries the pending plan"
    );
    let incident_id = card.incident_id.clone();
    let plan = wait_for(&mut socket, &mut log, |message| {
        matches!(message, WsMessage::PlanGenerated(_))
    })
    .await;
    let WsMessage::PlanGenerated(plan) = plan else {
        unreachable!()
    };
    assert_eq!(plan.incident_id, incident_id);
    assert_eq!(plan.plan.items.len(), 5, "a plan of exactly five tests");
    let failing = wait_for(&mut socket, &mut log, |message| {
        matches!(message, WsMessage::TestsUpdated(run) if run.tests.iter().any(|test| test.status == TestStatus::Fail))
    })
    .await;
    let WsMessage::TestsUpdated(failing_run) = failing else {
        unreachable!()
    };
    assert_eq!(failing_run.incident_id, incident_id);
    let failed: Vec<_> = failing_run
        .tests
        .iter()
        .filter(|test| test.status == TestStatus::Fail)
        .map(|test| test.test_id.as_str())
        .collect();
    assert!(
        failed.iter().any(|id| id.contains("checkout")),
        "the checkout test fails: {failed:?}"
    );

    // Ask the copilot while the checkout test fails.
    let answer = post(
        &client,
        format!("{api}/api/copilot/ask"),
        json!({"incident_id": incident_id, "question": "Which endpoint is failing?"}),
    )
    .await;
    let text = answer["answer"].as_str().expect("an answer");
    assert!(
        text.contains("/checkout"),
        "the answer names the failing endpoint: {text}"
    );
    wait_for(&mut socket, &mut log, |message| {
        matches!(message, WsMessage::CopilotAnswer(_))
    })
    .await;

    // A dashboard opened late gets the whole picture at once.
    let (mut late, _) = tokio::time::timeout(STEP, connect_async(&ws_url))
        .await
        .expect("connect in time")
        .expect("handshake");
    match next_message(&mut late).await {
        WsMessage::SystemStatus(status) => {
            assert_ne!(status.status, IncidentState::Healthy);
            assert_eq!(
                status.active_incident_id.as_deref(),
                Some(incident_id.as_str())
            );
        }
        other => panic!("expected system.status first, got {}", other.kind()),
    }
    match next_message(&mut late).await {
        WsMessage::IncidentCreated(card) => {
            assert_eq!(card.incident_id, incident_id);
            assert_eq!(
                card.plan.items.len(),
                5,
                "the snapshot's incident carries its plan"
            );
        }
        other => panic!("expected incident.created second, got {}", other.kind()),
    }
    match next_message(&mut late).await {
        WsMessage::TestsUpdated(run) => assert_eq!(run.incident_id, incident_id),
        other => panic!("expected tests.updated third, got {}", other.kind()),
    }
    drop(late);

    // Fix the service: a rerun passes, the signals recover, the verdict is RECOVERED.
    let bug_off = Instant::now();
    post(
        &client,
        format!("{api}/api/demo/bug"),
        json!({"enabled": false}),
    )
    .await;
    let fix_index = log.len();
    wait_for(&mut socket, &mut log, |message| {
        matches!(message, WsMessage::SystemStatus(status) if status.status == IncidentState::Recovered)
    })
    .await;
    let to_recovered = bug_off.elapsed();

    // Order: incident.created < plan.generated < first tests.updated < a passing run after the fix < RECOVERED.
    let created_at = position(&log, |message| {
        matches!(message, WsMessage::IncidentCreated(_))
    });
    let plan_at = position(&log, |message| {
        matches!(message, WsMessage::PlanGenerated(_))
    });
    let first_run_at = position(&log, |message| {
        matches!(message, WsMessage::TestsUpdated(_))
    });
    assert!(
        created_at < plan_at && plan_at < first_run_at,
        "incident, plan, then runs"
    );
    let passing_after_fix = log[fix_index..].iter().any(|message| {
        matches!(message, WsMessage::TestsUpdated(run)
            if run.status == RunStatus::Completed && run.tests.iter().all(|test| test.status == TestStatus::Pass))
    });
    assert!(
        passing_after_fix,
        "a rerun after the fix passed every test before RECOVERED"
    );
    assert!(
        log[..created_at]
            .iter()
            .any(|message| matches!(message, WsMessage::SystemStatus(status) if status.status == IncidentState::IncidentActive)),
        "system.status INCIDENT_ACTIVE precedes incident.created"
    );
    // The orchestrator's own metrics saw the same story.
    let metrics = tokio::time::timeout(STEP, async {
        client
            .get(format!("{api}/metrics"))
            .send()
            .await?
            .text()
            .await
    })
    .await
    .expect("metrics in time")
    .expect("metrics");
    let value = |series: &str| -> f64 {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{series} in {metrics}"))
    };
    assert_eq!(value("fixloop_incidents_opened_total "), 1.0);
    assert!(value("fixloop_runs_started_total ") >= 2.0, "{metrics}");
    assert!(
        value("fixloop_runs_finished_total{status=\"COMPLETED\"} ") >= 2.0,
        "{metrics}"
    );
    assert!(
        value("fixloop_run_duration_seconds_count ") >= 2.0,
        "{metrics}"
    );
    assert!(
        value("fixloop_signal_reads_total{result=\"ok\"} ") >= 5.0,
        "{metrics}"
    );
    eprintln!(
        "e2e timings: bug on -> incident.created {:.2} s; bug off -> RECOVERED {:.2} s",
        to_incident.as_secs_f64(),
        to_recovered.as_secs_f64()
    );
    tokio::time::timeout(STEP, demo.shutdown())
        .await
        .expect("the demo shuts down in time");
}
