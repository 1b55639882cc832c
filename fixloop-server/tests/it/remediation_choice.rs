//! The model proposes, code decides (issue 23, point 4), through the driver and the API: a service whose
//! remediation says `chooser = "model"`; the model (a fake, or MiniMax's wire against a stub) picks a declared
//! step and the proposal says `chosen_by: model` and still waits for its approval; a garbage pick is refused and
//! the rules' step is proposed, saying why. The request sent to the model holds the ids, kinds and tiers, never an
//! action's settings (its secret token) nor the model's key.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use fixloop_adapters::fake::{FakeExecutor, FakeRemediationChooser};
use fixloop_adapters::minimax::{MiniMaxConfig, MiniMaxRemediationChooser};
use fixloop_adapters::{Executor, RemediationChooser};
use fixloop_contract::{RemediationChooser as ChosenBy, RemediationList, RemediationProposal};
use fixloop_core::remediation::Chooser;
use fixloop_server::profile::{DEMO_PROFILE, Profile, Secrets, ServiceProfile};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{TestApp, WAIT};

const NO_DEMO: &str = "http://127.0.0.1:9";
const SECRET: &str = "sk-live-flag-secret-7731";
const MODEL_KEY: &str = "mm-chooser-key-0042";

/// The demo shop with two steps (a safe flag, a risky restart), the model as chooser, and a secret token in the
/// flag action's settings.
fn service() -> ServiceProfile {
    let remediation = format!(
        r#"
[service.remediation]
mode = "auto"
chooser = "model"
suppress_window_secs = 1

[[service.remediation.actions]]
id = "flag-off"
executor = "http"
description = "Turn the payment flag off."
settings = {{ method = "POST", url = "http://127.0.0.1:9/admin/flags/payment", body = '{{"enabled": false, "token": "{SECRET}"}}' }}

[[service.remediation.actions]]
id = "restart-shop"
executor = "http"
description = "Restart the shop."
settings = {{ method = "POST", url = "http://127.0.0.1:9/admin/restart" }}

[[service.remediation.strategies]]
kind = "checkout-errors"
steps = [
  {{ action = "flag-off", tier = "safe" }},
  {{ action = "restart-shop", tier = "risky" }},
]
"#
    );
    let text = format!("{DEMO_PROFILE}\n{remediation}");
    let profile = Profile::parse(&text, "test", Secrets::Unresolved).expect("a valid profile");
    let service = profile.services.into_iter().next().expect("one service");
    assert_eq!(service.remediation.chooser, Chooser::Model);
    service
}

fn app(chooser: Arc<dyn RemediationChooser>) -> TestApp {
    let service = service();
    let executor: Arc<dyn Executor> = Arc::new(
        FakeExecutor::new()
            .with_action("flag-off", &[])
            .with_action("restart-shop", &[]),
    );
    let spec = service.remediation.clone();
    let app = TestApp::start_choosing(
        NO_DEMO,
        |config, _| config.engine.remediation = spec,
        executor,
        chooser,
    );
    // Every run fails: checkout is broken.
    app.runner.model().set_bug(true);
    app
}

/// Runs the (failing) tests of the incident and waits for its first proposal.
async fn first_proposal(app: &TestApp) -> RemediationProposal {
    let incident_id = app.open_incident_with_plan().await;
    let run = Request::post("/api/tests/run")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({"incident_id": incident_id}).to_string()))
        .expect("a request");
    let (status, body) = app.send(run).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let path = format!("/api/remediations?incident_id={incident_id}");
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        tick.tick().await;
        let request = Request::get(&path).body(Body::empty()).expect("a request");
        let (status, body) = app.send(request).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let list: RemediationList = serde_json::from_value(body).expect("a RemediationList");
        if let Some(proposal) = list.proposals.into_iter().last() {
            return proposal;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no proposal in time"
        );
    }
}

#[tokio::test]
async fn the_models_declared_pick_is_proposed_chosen_by_model_and_waits_for_its_approval() {
    let chooser = Arc::new(FakeRemediationChooser::new());
    chooser.push_choice("restart-shop", "the flag did not help last time");
    let app = app(chooser.clone());
    let proposal = first_proposal(&app).await;
    assert_eq!(proposal.action_id, "restart-shop");
    assert_eq!(proposal.chosen_by, Some(ChosenBy::Model));
    assert_eq!(
        proposal.choice.as_deref(),
        Some("model chose restart-shop (the flag did not help last time)")
    );
    assert_eq!(
        proposal.state,
        fixloop_contract::RemediationState::AwaitingApproval,
        "the model's pick goes through the same tiers"
    );
    let calls = chooser.calls();
    assert_eq!(calls.len(), 1);
    let ids: Vec<&str> = calls[0]
        .candidates
        .iter()
        .map(|c| c.action_id.as_str())
        .collect();
    assert_eq!(ids, ["flag-off", "restart-shop"]);
}

#[tokio::test]
async fn a_garbage_pick_is_refused_and_the_rules_step_is_proposed() {
    let chooser = Arc::new(FakeRemediationChooser::new());
    chooser.push_choice("rm -rf /", "trust me");
    let app = app(chooser);
    let proposal = first_proposal(&app).await;
    assert_eq!(proposal.action_id, "flag-off");
    assert_eq!(proposal.chosen_by, Some(ChosenBy::Rules));
    let choice = proposal.choice.expect("the refusal is said");
    assert!(
        choice.starts_with("model chose \"rm -rf /\": refused: action \"rm -rf /\" is not declared; rule-based choice flag-off"),
        "{choice}"
    );
}

#[tokio::test]
async fn minimax_picks_through_the_driver_and_never_sees_an_actions_settings_or_its_key() {
    let server = MockServer::start().await;
    let content = "<think>restart</think>{\"action\": \"restart-shop\", \"reason\": \"a restart resets the fault\"}";
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "0640", "object": "chat.completion", "created": 1_777_421_217, "model": "MiniMax-M2.5",
            "choices": [{"finish_reason": "stop", "index": 0,
                         "message": {"content": content, "role": "assistant"}}],
            "usage": {"total_tokens": 10},
            "base_resp": {"status_code": 0, "status_msg": ""}
        })))
        .mount(&server)
        .await;
    let config = MiniMaxConfig {
        base_url: server.uri(),
        timeout: Duration::from_secs(5),
        ..MiniMaxConfig::new(MODEL_KEY)
    };
    let chooser = Arc::new(MiniMaxRemediationChooser::new(
        config,
        fixloop_adapters::default_client(),
    ));
    let app = app(chooser);
    let proposal = first_proposal(&app).await;
    assert_eq!(proposal.action_id, "restart-shop");
    assert_eq!(proposal.chosen_by, Some(ChosenBy::Model));

    let requests = server.received_requests().await.expect("recorded");
    assert_eq!(requests.len(), 1);
    let body = String::from_utf8_lossy(&requests[0].body).into_owned();
    assert!(
        body.contains("restart-shop") && body.contains("flag-off"),
        "{body}"
    );
    for secret in [SECRET, MODEL_KEY, "/admin/flags/payment", "127.0.0.1:9"] {
        assert!(!body.contains(secret), "{secret} leaked into {body}");
    }
    let parsed: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(parsed["messages"].as_array().map(Vec::len), Some(2));
}
