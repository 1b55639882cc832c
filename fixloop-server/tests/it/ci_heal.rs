//! CI self-heal through the real HTTP API (`POST /api/ci/logs`, `GET /api/ci/logs`): an eligible failure is rerun
//! until the policy's attempts per (run, class) are spent and then escalated; a pass after FixLoop's rerun is
//! RECOVERED, a pass without one is not; ineligible failures, cancelled jobs and unknown repositories are never
//! rerun; a provider that fails is reported and escalated without losing the intake; and the real GitHub and
//! GitLab adapters are driven against local stubs of their documented endpoints.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use fixloop_adapters::fake::{FakeCiProvider, FakeStore};
use fixloop_adapters::{
    AdapterError, CiProvider, GitHubActions, GitHubActionsConfig, GitLabCi, GitLabCiConfig, Secret,
    Store, http_client,
};
use fixloop_core::ci::FailureClass;
use fixloop_core::ci::heal::HealPolicy;
use fixloop_server::http::routes::ci::{CiHealer, CiIntakeState};
use serde_json::{Value, json};
use wiremock::matchers::{header as has_header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{TestApp, error_code};

const NO_DEMO: &str = "http://127.0.0.1:9";
const CI_TOKEN: &str = "ci-intake-token-0123456789";
const PROVIDER_TOKEN: &str = "provider-token-abcdef0123456789";

const RUNNER_LOST: &str = "Run cargo test\n##[error]The runner has received a shutdown signal. This can happen when the runner service is stopped.";
const ASSERTION: &str = "FAILED tests/test_orders.py::test_order_total - assert 20.0 == 21.6\nE       assert 20.0 == 21.6\n1 failed, 41 passed";

fn healing(store: Arc<dyn Store>, provider: Arc<dyn CiProvider>) -> CiIntakeState {
    let policy = HealPolicy::new([
        FailureClass::Infrastructure,
        FailureClass::Network,
        FailureClass::Timeout,
    ]);
    CiIntakeState {
        store,
        token: Some(Secret::from(CI_TOKEN)),
        forward: None,
        heal: Some(Arc::new(CiHealer::new(
            provider,
            BTreeMap::from([
                ("acme/shop".to_owned(), "acme/shop".to_owned()),
                ("acme/api".to_owned(), "acme/api".to_owned()),
            ]),
            policy,
            Duration::from_secs(2),
        ))),
        refine: None,
    }
}

fn job(run_id: &str, status: &str, log: &str) -> Value {
    json!({
        "repository": "acme/shop",
        "run_id": run_id,
        "job": "e2e (ubuntu-latest)",
        "status": status,
        "log_excerpt": log,
        "job_id": "26042851364"
    })
}

/// Posts `body` to the intake with the CI token: the one place an intake request is built.
async fn post(app: &TestApp, body: &Value) -> (StatusCode, Value) {
    let request = Request::post("/api/ci/logs")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {CI_TOKEN}"))
        .body(Body::from(body.to_string()))
        .unwrap();
    app.send(request).await
}

/// Posts `body` and expects it received.
async fn submit(app: &TestApp, body: &Value) -> Value {
    let (status, answer) = post(app, body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer
}

#[tokio::test]
async fn an_eligible_failure_is_rerun_up_to_max_attempts_then_escalated() {
    let store: Arc<dyn Store> = Arc::new(FakeStore::new());
    let provider = Arc::new(FakeCiProvider::new());
    let app = TestApp::start_with_ci(NO_DEMO, healing(store.clone(), provider.clone()));

    let first = submit(&app, &job("100", "FAILED", RUNNER_LOST)).await;
    assert_eq!(first["classification"]["class"], "infrastructure");
    let heal = &first["heal"];
    assert_eq!(heal["decision"], "RERUN", "{heal}");
    assert_eq!(heal["attempts"], 1);
    assert_eq!(heal["max_attempts"], 2);
    assert_eq!(heal["incident_status"], "VALIDATING");
    assert_eq!(heal["escalated"], false);
    assert_eq!(heal["context"]["class"], "infrastructure");
    assert_eq!(heal["context"]["project"], "acme/shop");
    assert_eq!(heal["report"]["provider"], "fake");
    assert_eq!(heal["report"]["status"], 201);

    let second = submit(&app, &job("100", "FAILED", RUNNER_LOST)).await;
    assert_eq!(second["heal"]["decision"], "RERUN");
    assert_eq!(second["heal"]["attempts"], 2);

    let third = submit(&app, &job("100", "FAILED", RUNNER_LOST)).await;
    let heal = &third["heal"];
    assert_eq!(heal["decision"], "ATTEMPTS_EXHAUSTED", "{heal}");
    assert_eq!(heal["attempts"], 2);
    assert_eq!(heal["escalated"], true);
    assert_eq!(heal["incident_status"], "INCIDENT_ACTIVE");
    assert_eq!(heal["report"], Value::Null);
    assert_eq!(provider.calls().len(), 2, "no third rerun");
    let call = &provider.calls()[0];
    assert_eq!(
        (
            call.project.as_str(),
            call.run_id.as_str(),
            call.job_id.as_deref()
        ),
        ("acme/shop", "100", Some("26042851364"))
    );

    // Another run has its own attempts; another class of the same run too.
    let other_run = submit(&app, &job("101", "FAILED", RUNNER_LOST)).await;
    assert_eq!(other_run["heal"]["attempts"], 1);
    let network = submit(
        &app,
        &job("100", "FAILED", "curl: (6) Could not resolve host: registry.example\nError: getaddrinfo ENOTFOUND registry.example"),
    )
    .await;
    assert_eq!(network["classification"]["class"], "network");
    assert_eq!(network["heal"]["decision"], "RERUN");
    assert_eq!(network["heal"]["attempts"], 1);

    // The history keeps every decision, newest first.
    let (status, list) = app.get("/api/ci/logs").await;
    assert_eq!(status, StatusCode::OK);
    let decisions: Vec<&str> = list["intakes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|intake| intake["heal"]["decision"].as_str().unwrap())
        .collect();
    assert_eq!(
        decisions,
        ["RERUN", "RERUN", "ATTEMPTS_EXHAUSTED", "RERUN", "RERUN"]
    );
    app.stop().await;
}

#[tokio::test]
async fn a_pass_is_recovered_only_after_fixloops_rerun() {
    let store: Arc<dyn Store> = Arc::new(FakeStore::new());
    let provider = Arc::new(FakeCiProvider::new());
    let app = TestApp::start_with_ci(NO_DEMO, healing(store, provider.clone()));

    submit(&app, &job("200", "FAILED", RUNNER_LOST)).await;
    let passed = submit(&app, &job("200", "PASSED", "All 42 tests passed")).await;
    assert_eq!(passed["job_status"], "PASSED");
    assert_eq!(passed["heal"]["decision"], "NOT_NEEDED");
    assert_eq!(passed["heal"]["incident_status"], "RECOVERED");

    // A test that really fails is not rerun; a person's fix that passes is not FixLoop's recovery.
    let failed = submit(&app, &job("201", "FAILED", ASSERTION)).await;
    assert_eq!(failed["classification"]["class"], "test_assertion");
    assert_eq!(failed["heal"]["decision"], "NOT_ELIGIBLE");
    assert_eq!(failed["heal"]["incident_status"], "INCIDENT_ACTIVE");
    assert!(
        failed["heal"]["reason"]
            .as_str()
            .unwrap()
            .contains("test_assertion")
    );
    let passed = submit(&app, &job("201", "PASSED", "ok")).await;
    assert_eq!(passed["heal"]["incident_status"], "HEALTHY");

    // A cancelled job and a repository outside the profile are never rerun.
    let cancelled = submit(&app, &job("202", "CANCELLED", RUNNER_LOST)).await;
    assert_eq!(cancelled["heal"]["decision"], "NOT_ELIGIBLE");
    let mut elsewhere = job("203", "FAILED", RUNNER_LOST);
    elsewhere["repository"] = json!("someone/else");
    let elsewhere = submit(&app, &elsewhere).await;
    assert_eq!(elsewhere["heal"]["decision"], "NOT_ELIGIBLE");
    assert!(
        elsewhere["heal"]["reason"]
            .as_str()
            .unwrap()
            .contains("[ci.repositories]")
    );
    assert_eq!(provider.calls().len(), 1, "only run 200 was rerun");
    app.stop().await;
}

#[tokio::test]
async fn a_failing_provider_is_reported_and_escalated_and_the_intake_is_kept() {
    let store: Arc<dyn Store> = Arc::new(FakeStore::new());
    let provider = Arc::new(FakeCiProvider::new());
    provider.push_error(AdapterError::rate_limited(Some(Duration::from_secs(7))));
    let app = TestApp::start_with_ci(NO_DEMO, healing(store.clone(), provider.clone()));
    let answer = submit(&app, &job("300", "FAILED", RUNNER_LOST)).await;
    let heal = &answer["heal"];
    assert_eq!(heal["decision"], "RERUN");
    assert_eq!(heal["escalated"], true);
    assert_eq!(heal["incident_status"], "INCIDENT_ACTIVE");
    assert_eq!(heal["report"]["error_kind"], "rate_limited");
    assert_eq!(heal["report"]["retry_after_secs"], 7);
    assert_eq!(store.ci_intakes(10).await.unwrap().len(), 1);
    // The failed request counts as an attempt: one more is left.
    let again = submit(&app, &job("300", "FAILED", RUNNER_LOST)).await;
    assert_eq!(again["heal"]["attempts"], 2);
    assert_eq!(again["heal"]["escalated"], false);
    app.stop().await;
}

#[tokio::test]
async fn a_malformed_job_id_is_refused() {
    let store: Arc<dyn Store> = Arc::new(FakeStore::new());
    let app = TestApp::start_with_ci(NO_DEMO, healing(store, Arc::new(FakeCiProvider::new())));
    let mut body = job("400", "FAILED", RUNNER_LOST);
    body["job_id"] = json!("12/../retry");
    let (status, answer) = post(&app, &body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(error_code(&answer), "invalid_value");
    app.stop().await;
}

#[tokio::test]
async fn the_github_adapter_reruns_through_a_local_stub_until_the_attempts_are_spent() {
    let github = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/repos/acme/shop/actions/runs/500/rerun-failed-jobs"))
        .and(has_header(
            "authorization",
            format!("Bearer {PROVIDER_TOKEN}").as_str(),
        ))
        .and(has_header("x-github-api-version", "2022-11-28"))
        .respond_with(ResponseTemplate::new(201))
        .expect(2)
        .mount(&github)
        .await;
    let provider = GitHubActions::new(
        GitHubActionsConfig {
            base_url: github.uri(),
            token: Secret::new(PROVIDER_TOKEN),
            timeout: Duration::from_secs(2),
        },
        http_client(Duration::from_secs(5)).unwrap(),
    )
    .unwrap();
    let store: Arc<dyn Store> = Arc::new(FakeStore::new());
    let app = TestApp::start_with_ci(NO_DEMO, healing(store, Arc::new(provider)));
    for expected in ["RERUN", "RERUN", "ATTEMPTS_EXHAUSTED"] {
        let answer = submit(&app, &job("500", "FAILED", RUNNER_LOST)).await;
        assert_eq!(answer["heal"]["decision"], expected, "{answer}");
        assert!(!answer.to_string().contains(PROVIDER_TOKEN));
    }
    let passed = submit(&app, &job("500", "PASSED", "ok")).await;
    // The last word was an escalation, not a rerun: a later pass is not FixLoop's recovery.
    assert_eq!(passed["heal"]["incident_status"], "HEALTHY");
    app.stop().await;
    github.verify().await;
}

#[tokio::test]
async fn the_gitlab_adapter_retries_the_job_through_a_local_stub_and_recovers() {
    let gitlab = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v4/projects/acme%2Fapi/jobs/26042851364/retry"))
        .and(has_header("private-token", PROVIDER_TOKEN))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "id": 26042851399u64, "status": "pending",
            "web_url": "https://gitlab.example/acme/api/-/jobs/26042851399"
        })))
        .expect(1)
        .mount(&gitlab)
        .await;
    let provider = GitLabCi::new(
        GitLabCiConfig {
            base_url: gitlab.uri(),
            token: Secret::new(PROVIDER_TOKEN),
            timeout: Duration::from_secs(2),
        },
        http_client(Duration::from_secs(5)).unwrap(),
    )
    .unwrap();
    let store: Arc<dyn Store> = Arc::new(FakeStore::new());
    let app = TestApp::start_with_ci(NO_DEMO, healing(store, Arc::new(provider)));
    let mut failed = job("600", "FAILED", RUNNER_LOST);
    failed["repository"] = json!("acme/api");
    let answer = submit(&app, &failed).await;
    assert_eq!(
        answer["heal"]["report"]["new_job_id"], "26042851399",
        "{answer}"
    );
    let mut passed = job("600", "PASSED", "ok");
    passed["repository"] = json!("acme/api");
    passed["job_id"] = json!("26042851399");
    let answer = submit(&app, &passed).await;
    assert_eq!(answer["heal"]["incident_status"], "RECOVERED");
    app.stop().await;
    gitlab.verify().await;
}
