//! `fixloop demo --remediate` through the real binary: the bug is turned on once and never touched again; FixLoop
//! opens an incident, its run fails, it proposes and carries out the safe step (the shop's `payment_provider` flag
//! off), a rerun passes and the status is RECOVERED, all seen on a `GET /ws?events=remediation` socket, while a
//! socket without `events` never receives a remediation type.

use std::time::Duration;

use fixloop_contract::{IncidentState, RemediationState, RiskTier, TestStatus, WsMessage};
use serde_json::{Value, json};
use tokio_tungstenite::connect_async;

use crate::binary::{Demo, STEP};
use crate::e2e::{Socket, next_message, wait_for};

/// The whole story's bound: detection, a failing run, the action, its suppression window, a rerun, recovery.
const TOTAL: Duration = Duration::from_secs(150);

async fn connect(ws_url: &str) -> Socket {
    tokio::time::timeout(STEP, connect_async(ws_url))
        .await
        .expect("connects in time")
        .expect("the websocket handshake succeeds")
        .0
}

async fn get_json(client: &reqwest::Client, url: String) -> Value {
    let response = tokio::time::timeout(STEP, client.get(url).send())
        .await
        .expect("answers in time")
        .expect("answers");
    assert!(response.status().is_success(), "{}", response.status());
    response.json().await.expect("a JSON body")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_remediate_turns_the_flag_off_and_the_incident_recovers_without_touching_the_bug() {
    let dir = tempfile::tempdir().expect("temp dir");
    let demo = Demo::start_with(
        &["--remediate", "--ephemeral"],
        &[],
        &dir.path().join("fixloop.log"),
    )
    .await;
    let outcome = tokio::time::timeout(TOTAL, story(&demo)).await;
    if outcome.is_err() {
        panic!(
            "the remediation story did not complete within {TOTAL:?}; the log:\n{}",
            demo.log()
        );
    }
    demo.terminate().await;
}

async fn story(demo: &Demo) {
    let api = &demo.url;
    let base = api.replacen("http://", "ws://", 1);
    let client = fixloop_adapters::default_client();
    let mut watching = connect(&format!("{base}/ws?events=remediation")).await;
    let mut plain = connect(&format!("{base}/ws")).await;
    let mut log = Vec::new();
    match next_message(&mut watching).await {
        WsMessage::SystemStatus(status) => assert_eq!(status.status, IncidentState::Healthy),
        other => panic!("system.status first, got {}", other.kind()),
    }

    // Break the shop, once.
    let response = tokio::time::timeout(
        STEP,
        client
            .post(format!("{api}/api/demo/bug"))
            .json(&json!({"enabled": true}))
            .send(),
    )
    .await
    .expect("answers in time")
    .expect("answers");
    assert!(response.status().is_success(), "{}", response.status());

    let WsMessage::IncidentCreated(card) = wait_for(&mut watching, &mut log, |message| {
        matches!(message, WsMessage::IncidentCreated(_))
    })
    .await
    else {
        unreachable!()
    };
    wait_for(&mut watching, &mut log, |message| {
        matches!(message, WsMessage::TestsUpdated(run) if run.tests.iter().any(|test| test.status == TestStatus::Fail))
    })
    .await;
    let WsMessage::RemediationProposed(proposal) = wait_for(&mut watching, &mut log, |message| {
        matches!(message, WsMessage::RemediationProposed(_))
    })
    .await
    else {
        unreachable!()
    };
    assert_eq!(proposal.incident_id, card.incident_id);
    assert_eq!(proposal.action_id, "payment-provider-off");
    assert_eq!(proposal.tier, RiskTier::Safe);
    assert_eq!(proposal.service, "demo-checkout");
    let proposal_id = proposal.proposal_id.clone();
    // Carried out, then the incident recovers.
    wait_for(&mut watching, &mut log, |message| {
        matches!(message, WsMessage::SystemStatus(status) if status.status == IncidentState::Recovered)
    })
    .await;
    let updates: Vec<(u64, RemediationState)> = log
        .iter()
        .filter_map(|message| match message {
            WsMessage::RemediationUpdated(update) if update.proposal_id == proposal_id => {
                Some((update.version, update.state))
            }
            _ => None,
        })
        .collect();
    assert!(
        updates.windows(2).all(|pair| pair[0].0 < pair[1].0),
        "each update has a larger version: {updates:?}"
    );
    assert!(
        !updates.iter().any(|(_, state)| matches!(
            state,
            RemediationState::Rejected | RemediationState::Withdrawn | RemediationState::Expired
        )),
        "{updates:?}"
    );
    let ran = std::iter::once(proposal.state)
        .chain(updates.iter().map(|(_, state)| *state))
        .any(|state| {
            matches!(
                state,
                RemediationState::Executing
                    | RemediationState::Suppressing
                    | RemediationState::Judging
                    | RemediationState::Finished
            )
        });
    assert!(ran, "the safe action was carried out: {updates:?}");
    let passing_rerun = log.iter().any(|message| {
        matches!(message, WsMessage::TestsUpdated(run)
            if run.incident_id == card.incident_id
                && !run.tests.is_empty()
                && run.tests.iter().all(|test| test.status == TestStatus::Pass))
    });
    assert!(passing_rerun, "a rerun passed before RECOVERED");

    // The shop's flag is off and its bug is still on: the remediation healed it, not the switch.
    let flags = get_json(&client, format!("{}/admin/flags", demo.shop_url)).await;
    assert_eq!(flags["flags"][0]["name"], "payment_provider");
    assert_eq!(flags["flags"][0]["enabled"], false, "{flags}");
    let bug = get_json(&client, format!("{}/admin/bug", demo.shop_url)).await;
    assert_eq!(bug["enabled"], true, "nobody touched the bug switch: {bug}");

    // The client without `events` saw the same story without a single remediation type.
    let mut plain_log = Vec::new();
    wait_for(&mut plain, &mut plain_log, |message| {
        matches!(message, WsMessage::SystemStatus(status) if status.status == IncidentState::Recovered)
    })
    .await;
    assert!(
        plain_log
            .iter()
            .all(|message| WsMessage::TYPES.contains(&message.kind())),
        "a v1 client gets only the seed's types: {:?}",
        plain_log.iter().map(WsMessage::kind).collect::<Vec<_>>()
    );
}

/// `fixloop demo --remediate --environment production`: in production even the flag step is risky, so FixLoop
/// proposes it and waits; an operator approves it over the API at the version they saw (a stale version is refused),
/// the approver is recorded, the action runs and the incident recovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_production_the_flag_step_waits_for_an_approval_and_the_approved_action_heals_the_shop()
{
    let dir = tempfile::tempdir().expect("temp dir");
    let demo = Demo::start_with(
        &["--remediate", "--environment", "production", "--ephemeral"],
        &[],
        &dir.path().join("fixloop.log"),
    )
    .await;
    let outcome = tokio::time::timeout(TOTAL, approval_story(&demo)).await;
    if outcome.is_err() {
        panic!(
            "the approval story did not complete within {TOTAL:?}; the log:\n{}",
            demo.log()
        );
    }
    demo.terminate().await;
}

async fn post_json(client: &reqwest::Client, url: String, body: Value) -> (u16, Value) {
    let response = tokio::time::timeout(STEP, client.post(url).json(&body).send())
        .await
        .expect("answers in time")
        .expect("answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

async fn approval_story(demo: &Demo) {
    let api = &demo.url;
    let client = fixloop_adapters::default_client();
    let mut watching = connect(&format!(
        "{}/ws?events=remediation",
        api.replacen("http://", "ws://", 1)
    ))
    .await;
    let mut log = Vec::new();
    let (status, _) = post_json(
        &client,
        format!("{api}/api/demo/bug"),
        json!({"enabled": true}),
    )
    .await;
    assert_eq!(status, 200);

    let WsMessage::RemediationProposed(proposal) = wait_for(&mut watching, &mut log, |message| {
        matches!(message, WsMessage::RemediationProposed(_))
    })
    .await
    else {
        unreachable!()
    };
    assert_eq!(proposal.action_id, "payment-provider-off");
    assert_eq!(
        proposal.tier,
        RiskTier::Risky,
        "production makes the flag step risky"
    );
    assert_eq!(proposal.state, RemediationState::AwaitingApproval);
    let listed = get_json(
        &client,
        format!(
            "{api}/api/remediations?incident_id={}",
            proposal.incident_id
        ),
    )
    .await;
    assert_eq!(
        listed["proposals"][0]["proposal_id"],
        proposal.proposal_id.as_str()
    );
    assert_eq!(listed["proposals"][0]["state"], "AWAITING_APPROVAL");
    let flags = get_json(&client, format!("{}/admin/flags", demo.shop_url)).await;
    assert_eq!(
        flags["flags"][0]["enabled"], true,
        "nothing runs before the approval: {flags}"
    );

    let approve = format!("{api}/api/remediations/{}/approve", proposal.proposal_id);
    let (status, body) = post_json(
        &client,
        approve.clone(),
        json!({"version": proposal.version + 1}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("version_conflict")),
        "{body}"
    );
    let (status, body) = post_json(&client, approve, json!({"version": proposal.version})).await;
    assert_eq!(status, 200, "{body}");
    let approver = body["decided_by"]
        .as_str()
        .expect("the approver is recorded");
    assert!(
        approver.starts_with("127.0.0.1"),
        "open loopback mode records the client's address: {approver}"
    );

    wait_for(&mut watching, &mut log, |message| {
        matches!(message, WsMessage::SystemStatus(status) if status.status == IncidentState::Recovered)
    })
    .await;
    let flags = get_json(&client, format!("{}/admin/flags", demo.shop_url)).await;
    assert_eq!(
        flags["flags"][0]["enabled"], false,
        "the approved action ran: {flags}"
    );
    let detail = get_json(
        &client,
        format!("{api}/api/incidents/{}", proposal.incident_id),
    )
    .await;
    let timeline = detail["timeline"].as_array().expect("a timeline");
    assert!(
        timeline.iter().any(|entry| entry["kind"] == "REMEDIATION"
            && entry["summary"]
                .as_str()
                .is_some_and(|summary| summary.contains("approved"))),
        "the approval is in the incident's timeline: {timeline:?}"
    );
}

/// `fixloop demo --remediate` with `FIXLOOP_API_TOKENS` set: the shop's admin endpoints take an operate token, and
/// the demo's actions send the shop's own admin token (a header whose value is a secret), so the flag step is not
/// refused with 401 and the incident recovers; the token never shows in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_api_tokens_set_the_demos_actions_authenticate_to_the_shop_and_it_heals() {
    const READ: &str = "read-token-0123456789abcdef";
    const OPERATE: &str = "operate-token-0123456789abcdef";
    let dir = tempfile::tempdir().expect("temp dir");
    let tokens = format!("dash:read:{READ},oncall:operate:{OPERATE}");
    let demo = Demo::start_with(
        &["--remediate", "--ephemeral"],
        &[("FIXLOOP_API_TOKENS", std::ffi::OsStr::new(&tokens))],
        &dir.path().join("fixloop.log"),
    )
    .await;
    let outcome = tokio::time::timeout(TOTAL, guarded_story(&demo, READ, OPERATE)).await;
    if outcome.is_err() {
        panic!(
            "the guarded remediation story did not complete within {TOTAL:?}; the log:\n{}",
            demo.log()
        );
    }
    let log = demo.log();
    assert!(!log.contains(OPERATE) && !log.contains(READ), "{log}");
    demo.terminate().await;
}

async fn guarded_story(demo: &Demo, read: &str, operate: &str) {
    let api = &demo.url;
    let client = fixloop_adapters::default_client();
    let mut watching = connect(&format!(
        "{}/ws?events=remediation&access_token={read}",
        api.replacen("http://", "ws://", 1)
    ))
    .await;
    let mut log = Vec::new();
    // The shop refuses an admin call without an operate token: the header is what lets the action through.
    let refused = tokio::time::timeout(
        STEP,
        client
            .post(format!("{}/admin/flags/payment_provider", demo.shop_url))
            .json(&json!({"enabled": false}))
            .send(),
    )
    .await
    .expect("answers in time")
    .expect("answers");
    assert_eq!(refused.status().as_u16(), 401);
    let response = tokio::time::timeout(
        STEP,
        client
            .post(format!("{api}/api/demo/bug"))
            .bearer_auth(operate)
            .json(&json!({"enabled": true}))
            .send(),
    )
    .await
    .expect("answers in time")
    .expect("answers");
    assert!(response.status().is_success(), "{}", response.status());
    let WsMessage::RemediationProposed(proposal) = wait_for(&mut watching, &mut log, |message| {
        matches!(message, WsMessage::RemediationProposed(_))
    })
    .await
    else {
        unreachable!()
    };
    assert_eq!(proposal.action_id, "payment-provider-off");
    wait_for(&mut watching, &mut log, |message| {
        matches!(message, WsMessage::SystemStatus(status) if status.status == IncidentState::Recovered)
    })
    .await;
    let failed = log.iter().any(|message| {
        matches!(message, WsMessage::RemediationUpdated(update)
            if update.proposal_id == proposal.proposal_id
                && update.outcome == Some(fixloop_contract::RemediationOutcome::Failed))
    });
    assert!(!failed, "the action was not refused by the shop");
    let flags = get_json(&client, format!("{}/admin/flags", demo.shop_url)).await;
    assert_eq!(
        flags["flags"][0]["enabled"], false,
        "the action ran: {flags}"
    );
    let bug = get_json(&client, format!("{}/admin/bug", demo.shop_url)).await;
    assert_eq!(bug["enabled"], true, "nobody touched the bug switch: {bug}");
}
