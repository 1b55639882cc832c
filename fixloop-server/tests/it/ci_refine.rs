//! The LLM's refinement of a CI classification through the real HTTP API, with a fake model: a refinement with
//! evidence that occurs is kept (`refined_by: "llm"`, the classifier's class beside it), one that would be surer
//! without evidence is refused, and a model that times out or fails leaves the classifier's answer
//! (`refined_by: "rules"`); and `GET /api/ci/incidents` sums a run up: an eligible failure, FixLoop's rerun and
//! a pass are one RECOVERED incident.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use fixloop_adapters::fake::{FakeCiProvider, FakeCiRefiner, FakeStore};
use fixloop_adapters::{AdapterError, Proposal, Secret, Store};
use fixloop_core::ci::FailureClass;
use fixloop_core::ci::heal::HealPolicy;
use fixloop_server::http::routes::ci::{CiHealer, CiIntakeState, CiRefine};
use serde_json::{Value, json};

use crate::support::{TestApp, error_code};

const NO_DEMO: &str = "http://127.0.0.1:9";
const CI_TOKEN: &str = "ci-intake-token-0123456789";
const NPM: &str = "Run npm ci\nnpm ERR! network request to https://registry.npmjs.org/left-pad failed\n\
                   Error: connect ETIMEDOUT 104.16.0.35:443";
const RUNNER_LOST: &str = "Run cargo test\n##[error]The runner has received a shutdown signal. This can happen when the runner service is stopped.";

fn intake(refiner: Option<Arc<FakeCiRefiner>>, timeout: Duration) -> CiIntakeState {
    CiIntakeState {
        refine: refiner.map(|refiner| CiRefine::new(refiner, timeout)),
        token: Some(Secret::from(CI_TOKEN)),
        ..CiIntakeState::off(Arc::new(FakeStore::new()))
    }
}

fn job(run_id: &str, status: &str, log: &str) -> Value {
    json!({"repository": "acme/shop", "run_id": run_id, "job": "build", "status": status, "log_excerpt": log})
}

async fn submit(app: &TestApp, body: &Value) -> Value {
    let request = Request::post("/api/ci/logs")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {CI_TOKEN}"))
        .body(Body::from(body.to_string()))
        .unwrap();
    let (status, answer) = app.send(request).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer
}

#[tokio::test]
async fn a_refinement_with_evidence_that_occurs_is_kept_and_says_so() {
    let refiner = Arc::new(FakeCiRefiner::new());
    refiner.push_proposal(Proposal {
        class: "dependency_install".to_owned(),
        confidence: 0.9,
        evidence: vec![
            "npm ERR! network request to https://registry.npmjs.org/left-pad failed".to_owned(),
            "npm ERR! invented line".to_owned(),
        ],
    });
    let app = TestApp::start_with_ci(
        NO_DEMO,
        intake(Some(refiner.clone()), Duration::from_secs(5)),
    );
    let answer = submit(&app, &job("1", "FAILED", NPM)).await;
    let classification = &answer["classification"];
    assert_eq!(classification["refined_by"], "llm", "{answer}");
    assert_eq!(classification["class"], "dependency_install");
    assert_eq!(classification["rules_class"], "network");
    assert_eq!(classification["confidence"], 0.9);
    assert_eq!(
        classification["evidence"],
        json!([{"line": 2, "text": "npm ERR! network request to https://registry.npmjs.org/left-pad failed"}])
    );
    // The model saw the excerpt and the classifier's answer, nothing else.
    let calls = refiner.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].log_excerpt, NPM);
    assert_eq!(calls[0].rules.class, FailureClass::Network);
    // The history keeps the refined classification.
    let (_, list) = app.get("/api/ci/logs").await;
    assert_eq!(list["intakes"][0]["classification"]["refined_by"], "llm");
    app.stop().await;
}

#[tokio::test]
async fn a_refinement_that_raises_confidence_without_evidence_is_refused() {
    let refiner = Arc::new(FakeCiRefiner::new());
    refiner.push_proposal(Proposal {
        class: "network".to_owned(),
        confidence: 0.99,
        evidence: vec!["curl: (6) Could not resolve host: made.up".to_owned()],
    });
    let app = TestApp::start_with_ci(NO_DEMO, intake(Some(refiner), Duration::from_secs(5)));
    let rules = fixloop_core::ci::classify(NPM);
    let answer = submit(&app, &job("2", "FAILED", NPM)).await;
    let classification = &answer["classification"];
    assert_eq!(classification["refined_by"], "rules", "{answer}");
    assert_eq!(classification["class"], "network");
    assert_eq!(classification["confidence"], rules.confidence);
    assert!(classification.get("rules_class").is_none());
    app.stop().await;
}

#[tokio::test]
async fn a_model_that_fails_or_times_out_leaves_the_rules() {
    let refiner = Arc::new(FakeCiRefiner::new());
    refiner.push_error(AdapterError::invalid_response("no JSON"));
    let app = TestApp::start_with_ci(
        NO_DEMO,
        intake(Some(refiner.clone()), Duration::from_millis(300)),
    );
    let answer = submit(&app, &job("3", "FAILED", NPM)).await;
    assert_eq!(answer["classification"]["refined_by"], "rules");
    // Slower than the intake waits: the intake answers after the timeout, with the rules.
    refiner.set_delay(Duration::from_secs(30));
    let answer = tokio::time::timeout(
        Duration::from_secs(10),
        submit(&app, &job("3", "FAILED", NPM)),
    )
    .await
    .expect("the intake does not wait for a slow model beyond its timeout");
    assert_eq!(answer["classification"]["refined_by"], "rules");
    assert_eq!(answer["classification"]["class"], "network");
    app.stop().await;
}

#[tokio::test]
async fn without_a_model_the_rules_decide() {
    let app = TestApp::start_with_ci(NO_DEMO, intake(None, Duration::from_secs(1)));
    let answer = submit(&app, &job("4", "FAILED", NPM)).await;
    assert_eq!(answer["classification"]["refined_by"], "rules");
    app.stop().await;
}

#[tokio::test]
async fn ci_incidents_show_a_rerun_that_passed_as_recovered() {
    let store: Arc<dyn Store> = Arc::new(FakeStore::new());
    let state = CiIntakeState {
        heal: Some(Arc::new(CiHealer::new(
            Arc::new(FakeCiProvider::new()),
            BTreeMap::from([("acme/shop".to_owned(), "acme/shop".to_owned())]),
            HealPolicy::new([FailureClass::Infrastructure]),
            Duration::from_secs(2),
        ))),
        token: Some(Secret::from(CI_TOKEN)),
        ..CiIntakeState::off(store)
    };
    let app = TestApp::start_with_ci(NO_DEMO, state);
    submit(&app, &job("10", "FAILED", RUNNER_LOST)).await;
    submit(
        &app,
        &job(
            "11",
            "FAILED",
            "assert 1 == 2\nAssertionError: totals differ",
        ),
    )
    .await;
    let (status, list) = app.get("/api/ci/incidents").await;
    assert_eq!(status, StatusCode::OK);
    let incidents = list["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 2);
    assert_eq!(incidents[0]["run_id"], "11", "newest first");
    assert_eq!(incidents[0]["state"], "INCIDENT_ACTIVE");
    assert_eq!(incidents[0]["attempts"], 0);
    assert_eq!(incidents[1]["state"], "VALIDATING");
    assert_eq!(incidents[1]["attempts"], 1);

    submit(&app, &job("10", "PASSED", "All 42 tests passed")).await;
    // A run that only passed is no incident.
    submit(&app, &job("12", "PASSED", "ok")).await;
    let (_, list) = app.get("/api/ci/incidents").await;
    assert!(
        list["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .all(|incident| incident["run_id"] != "12"),
        "{list}"
    );
    let (_, list) = app.get("/api/ci/incidents?limit=2").await;
    let incidents = list["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 1);
    let recovered = &incidents[0];
    assert_eq!(recovered["run_id"], "10");
    assert_eq!(recovered["state"], "RECOVERED", "{recovered}");
    assert_eq!(recovered["class"], "infrastructure");
    assert_eq!(recovered["attempts"], 1);
    assert_eq!(recovered["intakes"], 2);
    assert_eq!(recovered["latest_job_status"], "PASSED");
    assert_eq!(recovered["escalated"], false);
    assert_ne!(recovered["first_intake_at"], recovered["last_intake_at"]);

    let (status, answer) = app.get("/api/ci/incidents?limit=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&answer), "invalid_query");
    app.stop().await;
}
