//! The remediation operator API (issue 23): a risky proposal of an `auto` profile listed AWAITING_APPROVAL after a
//! failing run, an approval at a stale version refused (409 `version_conflict`), two concurrent approvals at the
//! right version (exactly one wins), an `operate` token refused (403) where an `approve` token is not, the action
//! carried out and the proposal FINISHED; a rejection; the kill switch refusing approvals, and still engaged after
//! a restart of the real binary on the same data directory; the figures in `GET /api/remediations/stats`, in
//! `/metrics` and the operator's acts in the incident's timeline.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use fixloop_adapters::Secret;
use fixloop_adapters::fake::FakeExecutor;
use fixloop_contract::{
    IncidentDetail, RemediationList, RemediationProposal, RemediationState, RemediationStats,
    TimelineKind, codes,
};
use fixloop_core::remediation::{
    ActionSpec, IncidentMatch, RemediationMode, RemediationSpec, RiskTier, Strategy, StrategyStep,
};
use fixloop_server::http::auth::{ApiToken, ApiTokens, AuthSettings, Role};
use serde_json::{Value, json};

use crate::support::{TestApp, WAIT, error_code};

const OPERATE_TOKEN: &str = "operate-token-1a2b3c4d5e6f";
const APPROVE_TOKEN: &str = "approve-token-6f5e4d3c2b1a";
const NO_DEMO: &str = "http://127.0.0.1:9";

/// An `auto` remediation whose one strategy (every incident) has risky steps, each proposed once per incident.
fn spec(actions: &[&str]) -> RemediationSpec {
    RemediationSpec {
        mode: RemediationMode::Auto,
        actions: actions
            .iter()
            .map(|id| ActionSpec {
                id: (*id).to_owned(),
                executor: "http".to_owned(),
                description: format!("{id} (test)"),
            })
            .collect(),
        strategies: vec![Strategy {
            kind: "payment-errors".to_owned(),
            matches: IncidentMatch::default(),
            steps: actions
                .iter()
                .enumerate()
                .map(|(rank, id)| StrategyStep {
                    action: (*id).to_owned(),
                    tier: RiskTier::Risky,
                    tiers_by_environment: std::collections::BTreeMap::new(),
                    cooldown: Duration::ZERO,
                    max_per_incident: 1,
                    rank: u32::try_from(rank).unwrap_or(0),
                })
                .collect(),
        }],
        suppress_window: Duration::from_millis(200),
        judge_window: Duration::from_secs(10),
        ..RemediationSpec::default()
    }
}

fn app(actions: &[&str], tokens: bool, executor: Arc<FakeExecutor>) -> TestApp {
    let spec = spec(actions);
    let app = TestApp::start_remediating(
        NO_DEMO,
        |settings| {
            if tokens {
                settings.auth = AuthSettings {
                    tokens: ApiTokens::new(vec![
                        ApiToken {
                            name: "oncall".to_owned(),
                            role: Role::Operate,
                            token: Secret::from(OPERATE_TOKEN),
                        },
                        ApiToken {
                            name: "lead".to_owned(),
                            role: Role::Approve,
                            token: Secret::from(APPROVE_TOKEN),
                        },
                    ]),
                    ..AuthSettings::default()
                };
            }
        },
        |config, _| config.engine.remediation = spec,
        executor,
    );
    // Every run fails: checkout is broken until the test says otherwise.
    app.runner.model().set_bug(true);
    app
}

/// A request with an optional bearer token and JSON body.
async fn send(
    app: &TestApp,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = match body {
        Some(body) => builder
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string())),
        None => builder.body(Body::empty()),
    };
    app.send(request.expect("a request")).await
}

/// Polls `GET /api/remediations?incident_id=` until `wanted` holds for the list (bounded by [`WAIT`]).
async fn list_until(
    app: &TestApp,
    incident_id: &str,
    token: Option<&str>,
    wanted: impl Fn(&RemediationList) -> bool,
) -> RemediationList {
    let path = format!("/api/remediations?incident_id={incident_id}");
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        tick.tick().await;
        let (status, body) = send(app, "GET", &path, token, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let list: RemediationList = serde_json::from_value(body).expect("a RemediationList");
        if wanted(&list) {
            return list;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the proposals never reached the expected state: {list:?}"
        );
    }
}

/// Opens an incident, starts a (failing) run, and waits for the proposal of `action` awaiting approval.
async fn awaiting(
    app: &TestApp,
    incident_id: &str,
    action: &str,
    token: Option<&str>,
) -> RemediationProposal {
    let (status, body) = send(
        app,
        "POST",
        "/api/tests/run",
        token,
        Some(json!({"incident_id": incident_id})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let list = list_until(app, incident_id, token, |list| {
        list.proposals.iter().any(|proposal| {
            proposal.action_id == action && proposal.state == RemediationState::AwaitingApproval
        })
    })
    .await;
    list.proposals
        .into_iter()
        .find(|proposal| proposal.action_id == action)
        .expect("the proposal")
}

fn decision(proposal: &RemediationProposal, verb: &str) -> String {
    format!("/api/remediations/{}/{verb}", proposal.proposal_id)
}

/// `POST /api/remediations/{id}/{verb}` (approve or reject) with `body`, as `token`.
async fn decide(
    app: &TestApp,
    proposal: &RemediationProposal,
    verb: &str,
    token: Option<&str>,
    body: Value,
) -> (StatusCode, Value) {
    send(app, "POST", &decision(proposal, verb), token, Some(body)).await
}

#[tokio::test]
async fn an_approval_at_the_right_version_wins_once_runs_the_action_and_is_judged() {
    let executor = Arc::new(FakeExecutor::new().with_action("payment-flag-off", &[]));
    let app = app(&["payment-flag-off"], true, Arc::clone(&executor));
    let incident_id = app.open_incident_with_plan_as(APPROVE_TOKEN).await;
    let proposal = awaiting(&app, &incident_id, "payment-flag-off", Some(APPROVE_TOKEN)).await;
    assert_eq!(proposal.service, "demo-checkout");
    assert_eq!(proposal.kind, "payment-errors");
    let version = proposal.version;

    // A stale version is refused, and the message says the current one.
    let stale = json!({"version": version + 7});
    let (status, body) = decide(&app, &proposal, "approve", Some(APPROVE_TOKEN), stale).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(error_code(&body), codes::VERSION_CONFLICT);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains(&format!("version {version}")),
        "{body}"
    );

    // An operate token does not approve.
    let right = json!({"version": version});
    let (status, body) = decide(
        &app,
        &proposal,
        "approve",
        Some(OPERATE_TOKEN),
        right.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(error_code(&body), codes::FORBIDDEN);

    // Two approvals at the same version: exactly one wins.
    let path = decision(&proposal, "approve");
    let (first, second) = tokio::join!(
        send(
            &app,
            "POST",
            &path,
            Some(APPROVE_TOKEN),
            Some(right.clone())
        ),
        send(
            &app,
            "POST",
            &path,
            Some(APPROVE_TOKEN),
            Some(right.clone())
        ),
    );
    let mut statuses = [first.0, second.0];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::CONFLICT],
        "{first:?} {second:?}"
    );
    let approved = if first.0 == StatusCode::OK {
        first.1
    } else {
        second.1
    };
    let approved: RemediationProposal = serde_json::from_value(approved).expect("a proposal");
    assert_eq!(approved.decided_by.as_deref(), Some("lead"));
    assert!(approved.version > version);

    // The action runs once, and the proposal ends FINISHED (the runs after it still fail: ineffective).
    let list = list_until(&app, &incident_id, Some(APPROVE_TOKEN), |list| {
        list.proposals
            .iter()
            .any(|p| p.proposal_id == proposal.proposal_id && p.state == RemediationState::Finished)
    })
    .await;
    assert!(list.proposals[0].outcome.is_some(), "{list:?}");
    let calls = executor.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].action_id, "payment-flag-off");

    // The figures, in the API and in /metrics.
    let (status, body) = send(
        &app,
        "GET",
        "/api/remediations/stats",
        Some(OPERATE_TOKEN),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let stats: RemediationStats = serde_json::from_value(body).expect("stats");
    let row = &stats.actions[0];
    assert_eq!(
        (
            row.service.as_str(),
            row.kind.as_str(),
            row.action_id.as_str()
        ),
        ("demo-checkout", "payment-errors", "payment-flag-off")
    );
    assert_eq!(row.attempts, 1);
    assert_eq!(row.success_rate, Some(f64::from(row.effective)));
    let (status, metrics) = send(&app, "GET", "/metrics", Some(OPERATE_TOKEN), None).await;
    assert_eq!(status, StatusCode::OK);
    let metrics = metrics.as_str().expect("text").to_owned();
    assert!(
        metrics.contains("fixloop_remediation_attempts{service=\"demo-checkout\",kind=\"payment-errors\",action=\"payment-flag-off\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("fixloop_remediation_kill_switch 0"),
        "{metrics}"
    );

    // The approval is in the incident's timeline, saying who, what and at which version.
    let (status, body) = send(
        &app,
        "GET",
        &format!("/api/incidents/{incident_id}"),
        Some(OPERATE_TOKEN),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let detail: IncidentDetail = serde_json::from_value(body).expect("a detail");
    let acts: Vec<&str> = detail
        .timeline
        .iter()
        .filter(|entry| entry.kind == TimelineKind::Remediation)
        .map(|entry| entry.summary.as_str())
        .collect();
    assert_eq!(
        acts,
        [format!(
            "lead approved {} (payment-flag-off) at version {version}",
            proposal.proposal_id
        )],
        "{:?}",
        detail.timeline
    );
    app.stop().await;
}

#[tokio::test]
async fn a_rejection_runs_nothing_and_the_kill_switch_refuses_approvals() {
    let executor = Arc::new(
        FakeExecutor::new()
            .with_action("payment-flag-off", &[])
            .with_action("restart-payments", &[]),
    );
    let app = app(
        &["payment-flag-off", "restart-payments"],
        false,
        Arc::clone(&executor),
    );
    let incident_id = app.open_incident_with_plan().await;
    let (status, body) = send(
        &app,
        "GET",
        "/api/remediations?incident_id=inc-unknown",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(error_code(&body), codes::INCIDENT_NOT_FOUND);
    let (status, body) = send(
        &app,
        "POST",
        "/api/remediations/rem-unknown/approve",
        None,
        Some(json!({"version": 1})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(error_code(&body), codes::PROPOSAL_NOT_FOUND);
    let first = awaiting(&app, &incident_id, "payment-flag-off", None).await;
    let (status, body) = decide(&app, &first, "reject", None, json!({"version": "one"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(error_code(&body), codes::INVALID_BODY);
    let (status, body) = decide(
        &app,
        &first,
        "reject",
        None,
        json!({"version": first.version}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rejected: RemediationProposal = serde_json::from_value(body).expect("a proposal");
    assert_eq!(rejected.state, RemediationState::Rejected);
    assert!(rejected.decided_by.is_some());
    // A decided proposal does not await an approval any more.
    let (status, body) = decide(
        &app,
        &first,
        "approve",
        None,
        json!({"version": rejected.version}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(error_code(&body), codes::NOT_AWAITING_APPROVAL);

    // The next failing run proposes the next step; the kill switch withdraws it and refuses its approval.
    let second = awaiting(&app, &incident_id, "restart-payments", None).await;
    let (status, body) = send(
        &app,
        "POST",
        "/api/remediation/kill-switch",
        None,
        Some(json!({"engaged": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["engaged"], true);
    let list = list_until(&app, &incident_id, None, |list| list.kill_switch.engaged).await;
    let withdrawn = list
        .proposals
        .iter()
        .find(|p| p.proposal_id == second.proposal_id)
        .expect("listed");
    assert_eq!(withdrawn.state, RemediationState::Withdrawn);
    let (status, body) = decide(
        &app,
        &second,
        "approve",
        None,
        json!({"version": withdrawn.version}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(error_code(&body), codes::NOT_AWAITING_APPROVAL);
    assert!(
        executor.calls().is_empty(),
        "nothing ran: {:?}",
        executor.calls()
    );
    let metrics = app.text("/metrics").await;
    assert!(
        metrics.contains("fixloop_remediation_kill_switch 1"),
        "{metrics}"
    );
    // Newest first, and both in the list without an incident filter.
    let (status, body) = send(&app, "GET", "/api/remediations", None, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let all: RemediationList = serde_json::from_value(body).expect("a list");
    let ids: Vec<&str> = all
        .proposals
        .iter()
        .map(|p| p.proposal_id.as_str())
        .collect();
    assert_eq!(
        ids,
        [second.proposal_id.as_str(), first.proposal_id.as_str()]
    );
    app.stop().await;
}

/// The kill switch is saved in the store: engaged through the API of `fixloop serve`, it is still engaged after a
/// clean restart on the same data directory, in the API and in the engines (`/metrics`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kill_switch_survives_a_restart_of_the_server() {
    use crate::binary::Fixloop;
    use crate::inventory::{self, Inventory};
    tokio::time::timeout(Duration::from_secs(120), async {
        let inventory = Inventory::start().await;
        let dir = tempfile::tempdir().expect("temp dir");
        let profile = dir.path().join("inventory.toml");
        std::fs::write(
            &profile,
            inventory::profile("inventory", &inventory.url, inventory::SCRAPE),
        )
        .expect("profile");
        let data = dir.path().join("data");
        let client = fixloop_adapters::default_client();

        let first = Fixloop::start(&profile, &data, dir.path().join("first.log")).await;
        let switched: Value = client
            .post(format!("{}/api/remediation/kill-switch", first.url))
            .json(&json!({"engaged": true}))
            .send()
            .await
            .expect("the kill switch answers")
            .json()
            .await
            .expect("a KillSwitchState");
        assert_eq!(switched["engaged"], true, "{switched}");
        assert_eq!(switched["changed_by"], "127.0.0.1", "{switched}");
        first.terminate().await;

        let second = Fixloop::start(&profile, &data, dir.path().join("second.log")).await;
        let list: RemediationList = second.get("/api/remediations").await;
        assert!(list.kill_switch.engaged, "{list:?}");
        assert_eq!(list.kill_switch.changed_by.as_deref(), Some("127.0.0.1"));
        let metrics = client
            .get(format!("{}/metrics", second.url))
            .send()
            .await
            .expect("/metrics answers")
            .text()
            .await
            .expect("text");
        assert!(
            metrics.contains("fixloop_remediation_kill_switch 1"),
            "{metrics}"
        );
        second.terminate().await;
    })
    .await
    .expect("the story ends in time");
}
