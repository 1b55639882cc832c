//! The REST API in-process (`router(..)` + `oneshot`) over fake ports: every endpoint and every error case.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use fixloop_adapters::AdapterError;
use fixloop_contract::{CopilotAnswer, IncidentCard, IncidentState, SystemStatus, TestRun, codes};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{TestApp, error_code};

const NO_DEMO: &str = "http://127.0.0.1:9";

#[tokio::test]
async fn status_is_healthy_at_start() {
    let app = TestApp::start(NO_DEMO);
    let (status, body) = app.get("/api/status").await;
    assert_eq!(status, StatusCode::OK);
    let system: SystemStatus = serde_json::from_value(body).unwrap();
    assert_eq!(system.status, IncidentState::Healthy);
    assert_eq!(system.active_incident_id, None);
    app.stop().await;
}

#[tokio::test]
async fn current_incident_is_null_when_healthy() {
    let app = TestApp::start(NO_DEMO);
    let (status, body) = app.get("/api/incidents/current").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, Value::Null);
    app.stop().await;
}

#[tokio::test]
async fn simulate_on_opens_an_incident_and_off_closes_it() {
    let app = TestApp::start(NO_DEMO);
    let mut events = app.events().await;
    assert_eq!(
        events.next().await["type"],
        "system.status",
        "join snapshot"
    );
    let (status, body) = app
        .post_json("/api/incidents/simulate", &json!({"mode": "INCIDENT_ON"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let created = events.next_of("incident.created").await;
    let incident_id = created["payload"]["incident_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let plan = events.next_of("plan.generated").await;
    assert_eq!(
        plan["payload"]["plan"]["items"].as_array().unwrap().len(),
        5
    );
    let (status, body) = app.get("/api/incidents/current").await;
    assert_eq!(status, StatusCode::OK);
    let card: IncidentCard = serde_json::from_value(body).unwrap();
    assert_eq!(card.incident_id, incident_id);
    let (status, body) = app
        .post_json("/api/incidents/simulate", &json!({"mode": "INCIDENT_OFF"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, Value::Null);
    let (_, body) = app.get("/api/status").await;
    assert_eq!(body["status"], "HEALTHY");
    app.stop().await;
}

#[tokio::test]
async fn run_tests_returns_the_run_at_once_and_it_can_be_fetched() {
    let app = TestApp::start(NO_DEMO);
    let incident_id = app.open_incident_with_plan().await;
    app.runner.hold();
    let (status, body) = app
        .post_json("/api/tests/run", &json!({"incident_id": incident_id}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let run: TestRun = serde_json::from_value(body).unwrap();
    assert_eq!(run.incident_id, incident_id);
    assert_eq!(run.tests.len(), 5);
    let (status, body) = app.get(&format!("/api/tests/runs/{}", run.run_id)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["run_id"], run.run_id.as_str());
    app.runner.release();
    app.stop().await;
}

/// A storm of `POST /api/tests/run` while a run is in flight starts nothing: every request answers the run in
/// progress (the engine's single-flight rule for `OperatorRequestedRun`).
#[tokio::test]
async fn concurrent_run_requests_during_a_run_all_answer_that_run() {
    let app = TestApp::start_with(NO_DEMO, |settings| {
        settings.auth.operate_limit = fixloop_server::http::auth::RateLimit {
            per_minute: 100_000,
            burst: 10_000,
        };
    });
    let incident_id = app.open_incident_with_plan().await;
    app.runner.hold();
    let (status, body) = app
        .post_json("/api/tests/run", &json!({"incident_id": incident_id}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let first: TestRun = serde_json::from_value(body).unwrap();
    let request = json!({"incident_id": incident_id});
    let storm = (0..100).map(|_| app.post_json("/api/tests/run", &request));
    let answers = futures_util::future::join_all(storm).await;
    for (status, body) in answers {
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["run_id"], first.run_id.as_str(), "{body}");
        assert_eq!(body["status"], "RUNNING", "{body}");
    }
    app.runner.release();
    app.stop().await;
}

#[tokio::test]
async fn run_tests_for_an_unknown_incident_is_404() {
    let app = TestApp::start(NO_DEMO);
    let (status, body) = app
        .post_json("/api/tests/run", &json!({"incident_id": "inc-nope"}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), codes::INCIDENT_NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn run_tests_without_a_plan_is_409_plan_not_ready() {
    let app = TestApp::start(NO_DEMO);
    app.planner.set_delay(Duration::from_secs(600));
    let mut events = app.events().await;
    app.post_json("/api/incidents/simulate", &json!({"mode": "INCIDENT_ON"}))
        .await;
    let created = events.next_of("incident.created").await;
    let incident_id = created["payload"]["incident_id"].as_str().unwrap();
    let (status, body) = app
        .post_json("/api/tests/run", &json!({"incident_id": incident_id}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(error_code(&body), codes::PLAN_NOT_READY);
    app.stop().await;
}

#[tokio::test]
async fn run_tests_for_a_closed_incident_is_409_incident_closed() {
    let app = TestApp::start(NO_DEMO);
    let incident_id = app.open_incident_with_plan().await;
    app.post_json("/api/incidents/simulate", &json!({"mode": "INCIDENT_OFF"}))
        .await;
    let (status, body) = app
        .post_json("/api/tests/run", &json!({"incident_id": incident_id}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(error_code(&body), codes::INCIDENT_CLOSED);
    app.stop().await;
}

#[tokio::test]
async fn unknown_run_is_404() {
    let app = TestApp::start(NO_DEMO);
    let (status, body) = app.get("/api/tests/runs/run-nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), codes::RUN_NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn copilot_answers_and_broadcasts_the_answer() {
    let app = TestApp::start(NO_DEMO);
    let incident_id = app.open_incident_with_plan().await;
    let mut events = app.events().await;
    let (status, body) = app
        .post_json(
            "/api/copilot/ask",
            &json!({"incident_id": incident_id, "question": "What is failing?"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let answer: CopilotAnswer = serde_json::from_value(body).unwrap();
    assert_eq!(answer.incident_id.as_deref(), Some(incident_id.as_str()));
    assert_eq!(answer.question, "What is failing?");
    let event = events.next_of("copilot.answer").await;
    assert_eq!(event["payload"]["answer"], answer.answer.as_str());
    let calls = app.copilot.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0]
            .1
            .incident
            .as_ref()
            .map(|card| card.incident_id.as_str()),
        Some(incident_id.as_str())
    );
    if let Some(run) = &calls[0].1.run {
        assert_eq!(
            calls[0].1.run_url.as_deref(),
            Some(format!("http://orchestrator.test/api/tests/runs/{}", run.run_id).as_str())
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn a_copilot_claiming_all_clear_before_recovered_is_replaced_by_the_server() {
    let app = TestApp::start(NO_DEMO);
    let incident_id = app.open_incident_with_plan().await;
    app.copilot.push_reply(fixloop_adapters::CopilotReply {
        answer: "Green across the board, flip it back on 🚀".to_owned(),
        citations: Vec::new(),
        claim: fixloop_adapters::copilot_safety::Claim::None,
    });
    let (status, body) = app
        .post_json(
            "/api/copilot/ask",
            &json!({"incident_id": incident_id, "question": "What now?"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let answer = body["answer"].as_str().unwrap();
    assert!(!answer.contains("flip it back on"), "{answer}");
    assert!(answer.contains("Not yet: do not resume"), "{answer}");
    assert_eq!(body["redacted"], true);
    app.stop().await;
}

/// Issue 22: while the incident is open, a lying model's "all clear" after a true sentence is left out, the server's
/// own status sentence speaks, and the answer is marked `redacted` (still `answered_by: MODEL`).
#[tokio::test]
async fn a_model_s_health_sentences_are_left_out_before_recovered_and_the_answer_is_marked() {
    let app = TestApp::start(NO_DEMO);
    let incident_id = app.open_incident_with_plan().await;
    app.copilot.set_answers_with_model(true);
    app.copilot.push_reply(fixloop_adapters::CopilotReply {
        answer: "The checkout test fails with a 500. No further action is needed, the service is healthy again."
            .to_owned(),
        citations: Vec::new(),
        claim: fixloop_adapters::copilot_safety::Claim::None,
    });
    let (status, body) = app
        .post_json(
            "/api/copilot/ask",
            &json!({"incident_id": incident_id, "question": "What now?"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let answer = body["answer"].as_str().unwrap();
    assert!(answer.starts_with("Status "), "{answer}");
    assert!(!answer.contains("healthy again"), "{answer}");
    assert!(!answer.contains("No further action"), "{answer}");
    assert!(
        answer.contains("The checkout test fails with a 500."),
        "{answer}"
    );
    assert!(
        answer.contains("FixLoop withheld 1 of the model's sentences"),
        "{answer}"
    );
    assert_eq!(body["answered_by"], "MODEL");
    assert_eq!(body["redacted"], true);

    // A harmless answer passes as written, unmarked.
    app.copilot.push_reply(fixloop_adapters::CopilotReply {
        answer: "The checkout test fails with a 500.".to_owned(),
        citations: Vec::new(),
        claim: fixloop_adapters::copilot_safety::Claim::None,
    });
    let (status, body) = app
        .post_json(
            "/api/copilot/ask",
            &json!({"incident_id": incident_id, "question": "What now?"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["answer"]
            .as_str()
            .unwrap()
            .ends_with(" The checkout test fails with a 500."),
        "{body}"
    );
    assert!(body.get("redacted").is_none(), "{body}");
    app.stop().await;
}

#[tokio::test]
async fn copilot_for_an_unknown_incident_is_404() {
    let app = TestApp::start(NO_DEMO);
    let (status, body) = app
        .post_json(
            "/api/copilot/ask",
            &json!({"incident_id": "inc-nope", "question": "why?"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), codes::INCIDENT_NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn copilot_question_bounds_are_422() {
    let app = TestApp::start(NO_DEMO);
    for question in [String::new(), "q".repeat(4001)] {
        let (status, body) = app
            .post_json(
                "/api/copilot/ask",
                &json!({"incident_id": null, "question": question}),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(error_code(&body), codes::INVALID_VALUE);
        assert_eq!(body["details"][0]["path"], "/question");
    }
    let (status, _) = app
        .post_json("/api/copilot/ask", &json!({"question": "q".repeat(4000)}))
        .await;
    assert_eq!(status, StatusCode::OK, "4,000 characters is allowed");
    let (status, body) = app
        .post_json("/api/copilot/ask", &json!({"incident_id": null}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(&body), codes::INVALID_BODY);
    assert_eq!(body["details"][0]["path"], "/question");
    app.stop().await;
}

/// The spec's `NON_BLANK_PATTERN` and the server agree where regex dialects' `\s` do not: U+0085 is blank (Rust's
/// `White_Space`, not ECMA's `\s`), U+FEFF is not (ECMA's `\s`, not Rust's). A fuzzer found `"\r"` rejected while
/// the spec allowed it; now the spec forbids it too.
#[tokio::test]
async fn copilot_question_of_only_whitespace_is_422_as_the_spec_pattern_says() {
    let app = TestApp::start(NO_DEMO);
    for question in ["\r", " \t\n", "\u{85}", "\u{3000}"] {
        let (status, body) = app
            .post_json("/api/copilot/ask", &json!({"question": question}))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{question:?}");
        assert_eq!(error_code(&body), codes::INVALID_VALUE);
        assert_eq!(body["details"][0]["path"], "/question");
    }
    for question in ["\u{feff}", " why? "] {
        let (status, body) = app
            .post_json("/api/copilot/ask", &json!({"question": question}))
            .await;
        assert_eq!(status, StatusCode::OK, "{question:?}: {body}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_failing_or_slow_copilot_is_answered_for_by_the_grounded_fallback() {
    let app = TestApp::start(NO_DEMO);
    let mut events = app.events().await;
    app.copilot
        .push_error(AdapterError::unavailable("model down at 10.1.2.3"));
    let (status, body) = app
        .post_json("/api/copilot/ask", &json!({"question": "why?"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["answered_by"], "GROUNDED_FALLBACK");
    assert_eq!(body["fallback_reason"], "the model is unavailable");
    assert!(
        !body.to_string().contains("10.1.2.3"),
        "no internal detail in the answer"
    );
    let event = events.next_of("copilot.answer").await;
    assert_eq!(event["payload"]["answered_by"], "GROUNDED_FALLBACK");
    // Past the budget (500 ms in the test app), the grounded copilot answers too.
    app.copilot.set_delay(Duration::from_secs(3600));
    let (status, body) = app
        .post_json("/api/copilot/ask", &json!({"question": "why?"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["answered_by"], "GROUNDED_FALLBACK");
    assert_eq!(
        body["fallback_reason"],
        "the model did not answer within 0.5 s"
    );
    assert!(
        body["answer"]
            .as_str()
            .unwrap()
            .starts_with("No incident is open"),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_answering_copilot_is_marked_and_has_no_fallback_reason() {
    let app = TestApp::start(NO_DEMO);
    let (status, body) = app
        .post_json("/api/copilot/ask", &json!({"question": "status?"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["answered_by"], "GROUNDED", "the fake is not a model");
    assert!(body.get("fallback_reason").is_none(), "{body}");
    app.stop().await;
}

/// A "model" that accepts TCP connections and never answers: every accepted socket is held open until the test
/// ends.
async fn silent_llm() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (url, task)
}

#[tokio::test]
async fn a_model_that_never_answers_gets_the_grounded_fallback_within_the_budget() {
    let (url, llm) = silent_llm().await;
    let mut config = fixloop_adapters::minimax::MiniMaxConfig::new("mm-test-key");
    config.base_url = url;
    let copilot =
        fixloop_adapters::minimax::MiniMaxCopilot::new(config, fixloop_adapters::default_client())
            .with_tool_steps(4);
    let app =
        TestApp::start_with_copilot(NO_DEMO, Some(std::sync::Arc::new(copilot)), |settings| {
            settings.copilot_timeout = Duration::from_millis(300);
        });
    let incident_id = app.open_incident_with_plan().await;
    let (status, body) = app
        .post_json(
            "/api/copilot/ask",
            &json!({"incident_id": incident_id, "question": "Is it safe to resume traffic?"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let answer: CopilotAnswer = serde_json::from_value(body.clone()).unwrap();
    assert_eq!(
        answer.answered_by,
        Some(fixloop_contract::AnsweredBy::GroundedFallback)
    );
    assert_eq!(
        answer.fallback_reason.as_deref(),
        Some("the model did not answer within 0.3 s")
    );
    assert!(
        answer.answer.starts_with("No, not yet"),
        "{}",
        answer.answer
    );
    // An operator can watch the fallback rate.
    let page = app.text("/metrics").await;
    assert!(
        page.contains("fixloop_copilot_answers_total{answered_by=\"GROUNDED_FALLBACK\"} 1")
            && page.contains("fixloop_copilot_answers_total{answered_by=\"MODEL\"} 0"),
        "{page}"
    );
    app.stop().await;
    llm.abort();
}

#[tokio::test]
async fn demo_bug_calls_the_demo_service_and_returns_the_status() {
    let demo = tokio::time::timeout(crate::support::WAIT, MockServer::start())
        .await
        .unwrap();
    Mock::given(method("POST"))
        .and(path("/admin/bug"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"enabled": true})))
        .expect(1)
        .mount(&demo)
        .await;
    let app = TestApp::start(&demo.uri());
    let mut events = app.events().await;
    events.next_of("system.status").await;
    let (status, body) = app
        .post_json("/api/demo/bug", &json!({"enabled": true}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_value::<SystemStatus>(body).unwrap();
    events.next_of("system.status").await;
    let requests = tokio::time::timeout(crate::support::WAIT, demo.received_requests())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&requests[0].body).unwrap(),
        json!({"enabled": true})
    );
    app.stop().await;
}

#[tokio::test]
async fn demo_bug_upstream_error_is_502_and_slow_upstream_is_504() {
    let demo = tokio::time::timeout(crate::support::WAIT, MockServer::start())
        .await
        .unwrap();
    Mock::given(method("POST"))
        .and(path("/admin/bug"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .mount(&demo)
        .await;
    Mock::given(method("POST"))
        .and(path("/admin/bug"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .mount(&demo)
        .await;
    let app = TestApp::start(&demo.uri());
    let (status, body) = app
        .post_json("/api/demo/bug", &json!({"enabled": true}))
        .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(error_code(&body), codes::UPSTREAM_ERROR);
    let (status, body) = app
        .post_json("/api/demo/bug", &json!({"enabled": true}))
        .await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(error_code(&body), codes::UPSTREAM_TIMEOUT);
    app.stop().await;
    let unreachable = TestApp::start(NO_DEMO);
    let (status, body) = unreachable
        .post_json("/api/demo/bug", &json!({"enabled": false}))
        .await;
    assert!(
        status == StatusCode::BAD_GATEWAY || status == StatusCode::GATEWAY_TIMEOUT,
        "{status}"
    );
    error_code(&body);
    unreachable.stop().await;
}

fn raw_post(path: &str, content_type: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut request = Request::post(path);
    if let Some(content_type) = content_type {
        request = request.header(header::CONTENT_TYPE, content_type);
    }
    request.body(body.into()).unwrap()
}

#[tokio::test]
async fn malformed_json_is_400_invalid_json_on_every_post() {
    let app = TestApp::start(NO_DEMO);
    for path in [
        "/api/demo/bug",
        "/api/incidents/simulate",
        "/api/tests/run",
        "/api/copilot/ask",
    ] {
        for body in ["{\"enabled\":", "", "not json", "{\"a\":1}}"] {
            let (status, response) = app
                .send(raw_post(path, Some("application/json"), body))
                .await;
            assert_eq!(
                status,
                StatusCode::BAD_REQUEST,
                "{path} {body:?}: {response}"
            );
            assert_eq!(error_code(&response), codes::INVALID_JSON);
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn schema_mismatch_is_422_invalid_body_with_paths() {
    let app = TestApp::start(NO_DEMO);
    let cases = [
        ("/api/demo/bug", json!({"enabled": "yes"}), "/enabled"),
        ("/api/demo/bug", json!({}), "/enabled"),
        ("/api/demo/bug", json!([true]), ""),
        ("/api/incidents/simulate", json!({"mode": "ON"}), "/mode"),
        ("/api/incidents/simulate", json!({"mode": 1}), "/mode"),
        ("/api/tests/run", json!({"incident_id": 7}), "/incident_id"),
        ("/api/tests/run", json!({}), "/incident_id"),
        (
            "/api/copilot/ask",
            json!({"incident_id": 3, "question": "q"}),
            "/incident_id",
        ),
        ("/api/copilot/ask", json!({"question": ["q"]}), "/question"),
    ];
    for (path, body, pointer) in cases {
        let (status, response) = app.post_json(path, &body).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path} {body}: {response}"
        );
        assert_eq!(error_code(&response), codes::INVALID_BODY, "{path} {body}");
        assert_eq!(response["details"][0]["path"], pointer, "{path} {body}");
    }
    app.stop().await;
}

#[tokio::test]
async fn wrong_or_missing_content_type_is_415() {
    let app = TestApp::start(NO_DEMO);
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let (status, body) = app
            .send(raw_post(
                "/api/incidents/simulate",
                content_type,
                r#"{"mode":"INCIDENT_ON"}"#,
            ))
            .await;
        assert_eq!(
            status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}"
        );
        assert_eq!(error_code(&body), codes::UNSUPPORTED_MEDIA_TYPE);
    }
    let (status, _) = app
        .send(raw_post(
            "/api/incidents/simulate",
            Some("application/json; charset=utf-8"),
            r#"{"mode":"INCIDENT_OFF"}"#,
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn oversized_body_is_413() {
    let app = TestApp::start_with(NO_DEMO, |settings| settings.max_body_bytes = 2048);
    let question = "q".repeat(3000);
    let (status, body) = app
        .post_json("/api/copilot/ask", &json!({"question": question}))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(&body), codes::PAYLOAD_TOO_LARGE);
    assert!(body["message"].as_str().unwrap().contains("2048"));
    app.stop().await;
    let app = TestApp::start(NO_DEMO);
    let padding = "x".repeat(70 * 1024);
    let (status, body) = app
        .post_json(
            "/api/demo/bug",
            &json!({"enabled": true, "padding": padding}),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "64 KiB default");
    assert_eq!(error_code(&body), codes::PAYLOAD_TOO_LARGE);
    app.stop().await;
}

#[tokio::test]
async fn unknown_route_is_404_and_wrong_method_is_405() {
    let app = TestApp::start(NO_DEMO);
    let (status, body) = app.get("/api/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), codes::ROUTE_NOT_FOUND);
    for (method, path) in [
        ("POST", "/api/status"),
        ("GET", "/api/demo/bug"),
        ("DELETE", "/api/incidents/current"),
        ("GET", "/api/tests/run"),
        ("PUT", "/api/copilot/ask"),
    ] {
        let (status, body) = app
            .send(
                Request::builder()
                    .method(method)
                    .uri(path)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_eq!(error_code(&body), codes::METHOD_NOT_ALLOWED);
    }
    app.stop().await;
}

#[tokio::test]
async fn websocket_route_without_upgrade_is_400() {
    let app = TestApp::start(NO_DEMO);
    let (status, body) = app.get("/ws").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), codes::WEBSOCKET_UPGRADE_REQUIRED);
    app.stop().await;
}

#[tokio::test]
async fn openapi_healthz_and_metrics_are_served() {
    let app = TestApp::start(NO_DEMO);
    let (status, body) = app.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let expected: Value = serde_json::from_str(&fixloop_contract::openapi::openapi_json()).unwrap();
    assert_eq!(body, expected);
    let (status, body) = app.get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
    app.open_incident_with_plan().await;
    let (status, body) = app.get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let text = body.as_str().unwrap();
    assert!(text.contains("fixloop_incidents_opened_total 1"), "{text}");
    assert!(text.contains("fixloop_websocket_clients 1"), "{text}");
    assert!(
        text.contains("fixloop_run_duration_seconds_bucket{le=\"+Inf\"}"),
        "{text}"
    );
    app.stop().await;
}

#[tokio::test]
async fn cors_allows_the_dashboard_origin_only() {
    let app = TestApp::start(NO_DEMO);
    let preflight = |origin: &str| {
        Request::builder()
            .method("OPTIONS")
            .uri("/api/demo/bug")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type")
            .body(Body::empty())
            .unwrap()
    };
    let response = tokio::time::timeout(
        crate::support::WAIT,
        tower::ServiceExt::oneshot(app.router.clone(), preflight("http://localhost:3000")),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        response
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .unwrap(),
        "http://localhost:3000"
    );
    let response = tokio::time::timeout(
        crate::support::WAIT,
        tower::ServiceExt::oneshot(app.router.clone(), preflight("http://evil.example")),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(
        response
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );
    app.stop().await;
}

#[tokio::test]
async fn no_client_mistake_gives_a_5xx() {
    let app = TestApp::start(NO_DEMO);
    let bodies: [&[u8]; 8] = [
        b"",
        b"null",
        b"[]",
        b"\"text\"",
        b"{\"incident_id\": null, \"question\": null}",
        b"\xff\xfe\xfd",
        b"{\"mode\": \"INCIDENT_ON\", \"mode\": 5}",
        b"{\"enabled\": 1, \"incident_id\": \"\", \"question\": \"\\ud800\"}",
    ];
    for path in [
        "/api/demo/bug",
        "/api/incidents/simulate",
        "/api/tests/run",
        "/api/copilot/ask",
    ] {
        for body in bodies {
            let (status, response) = app
                .send(raw_post(path, Some("application/json"), body.to_vec()))
                .await;
            assert!(
                status.is_client_error(),
                "{path} {body:?}: {status} {response}"
            );
            error_code(&response);
        }
    }
    for path in [
        "/api/tests/runs/%ff%fe",
        "/api/tests/runs/..%2F..",
        "/%00",
        "/api/tests/runs/",
    ] {
        let (status, _) = app.get(path).await;
        assert!(status.is_client_error(), "{path}: {status}");
    }
    app.stop().await;
}

#[tokio::test]
async fn copilot_about_a_closed_incident_sees_that_incident() {
    let app = TestApp::start(NO_DEMO);
    let incident_id = app.open_incident_with_plan().await;
    app.post_json("/api/incidents/simulate", &json!({"mode": "INCIDENT_OFF"}))
        .await;
    let (status, body) = app
        .post_json(
            "/api/copilot/ask",
            &json!({"incident_id": incident_id, "question": "What happened?"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["incident_id"], incident_id.as_str());
    let calls = app.copilot.calls();
    let state = &calls[0].1;
    assert_eq!(
        state
            .incident
            .as_ref()
            .map(|card| card.incident_id.as_str()),
        Some(incident_id.as_str())
    );
    assert_eq!(state.run, None, "no current run of a closed incident");
    assert_eq!(state.status.status, IncidentState::Healthy);
    app.stop().await;
}

/// Regression: the driver used to keep the last fetched context, so when the context fetch of a second incident
/// failed, its planner was handed the first incident's top error and evidence.
#[tokio::test]
async fn a_failed_context_fetch_never_hands_the_planner_a_previous_incidents_evidence() {
    let app = TestApp::start(NO_DEMO);
    app.signals
        .set_reading(fixloop_adapters::fake::erroring_reading());
    app.open_incident_with_plan().await;
    let first = app.planner.calls();
    let first = first.last().expect("the first incident was planned");
    assert_eq!(
        first.context.signal.top_error.as_deref(),
        Some("POST /checkout -> 500 payment provider timeout")
    );
    assert_eq!(first.context.evidence_links.len(), 1);

    let (status, _) = app
        .post_json("/api/incidents/simulate", &json!({"mode": "INCIDENT_OFF"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    app.signals
        .set_failure(Some(fixloop_adapters::ErrorKind::Unavailable));
    app.open_incident_with_plan().await;
    let calls = app.planner.calls();
    let second = calls.last().expect("the second incident was planned");
    assert_ne!(second.context.incident_id, first.context.incident_id);
    // The evidence comes only from a context fetch, and this incident's failed: none, not the first incident's.
    assert!(
        second.context.evidence_links.is_empty(),
        "{:?}",
        second.context
    );
    app.stop().await;
}
