//! The MiniMax CI refiner against a wiremock stub of `POST /v1/chat/completions` speaking MiniMax's real shape:
//! the request it sends (Bearer key, model, the fenced log and the classifier's answer, no secret), a proposal
//! read from a `<think>`-wrapped answer, and the failures the caller falls back on (an answer with no proposal,
//! MiniMax's error envelope, a timeout); and the fake's default and script.

use std::time::Duration;

use fixloop_adapters::fake::FakeCiRefiner;
use fixloop_adapters::minimax::{MiniMaxCiRefiner, MiniMaxConfig, UNTRUSTED_OPEN};
use fixloop_adapters::{AdapterError, CiRefiner, ErrorKind, Proposal, RefineRequest};
use fixloop_core::ci::classify;
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "sk-api-ci-refiner-key-0001";
const LOG: &str = "Run npm ci\nnpm ERR! network request to https://registry.npmjs.org/left-pad failed\n\
                   Error: connect ETIMEDOUT 104.16.0.35:443";

/// The MiniMax settings of a test against `server` with API key `key` (short timeout, the real token budget).
pub(crate) fn config_with_key(server: &MockServer, key: &str) -> MiniMaxConfig {
    MiniMaxConfig {
        base_url: server.uri(),
        timeout: Duration::from_millis(500),
        max_tokens: 2000,
        ..MiniMaxConfig::new(key)
    }
}

fn config(server: &MockServer) -> MiniMaxConfig {
    config_with_key(server, KEY)
}

/// MiniMax's chat completion answer (its documented shape) carrying `content`.
pub(crate) fn completion(content: &str) -> Value {
    json!({
        "id": "06407ea121ddc267a22ca62c3e0a6997",
        "choices": [{"finish_reason": "stop", "index": 0,
                     "message": {"content": content, "role": "assistant", "name": "MiniMax AI", "audio_content": ""}}],
        "created": 1_777_421_217,
        "model": "MiniMax-M2.5",
        "object": "chat.completion",
        "usage": {"total_tokens": 116, "prompt_tokens": 55, "completion_tokens": 61},
        "input_sensitive": false, "output_sensitive": false,
        "base_resp": {"status_code": 0, "status_msg": ""}
    })
}

fn request() -> RefineRequest {
    RefineRequest {
        log_excerpt: LOG.to_owned(),
        rules: classify(LOG),
    }
}

async fn refine_with(response: ResponseTemplate) -> (Result<Proposal, AdapterError>, MockServer) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .respond_with(response)
        .mount(&server)
        .await;
    let refiner = MiniMaxCiRefiner::new(config(&server), fixloop_adapters::default_client());
    let answer = tokio::time::timeout(Duration::from_secs(10), refiner.refine(&request()))
        .await
        .expect("the refiner answers within its timeout");
    (answer, server)
}

#[tokio::test]
async fn minimax_refiner_sends_the_fenced_log_and_reads_a_think_wrapped_proposal() {
    let content = "<think>the registry timed out, but npm failed to install</think>\n\
                   {\"class\": \"dependency_install\", \"confidence\": 0.72, \"evidence\": \
                   [\"npm ERR! network request to https://registry.npmjs.org/left-pad failed\"]}";
    let (answer, server) =
        refine_with(ResponseTemplate::new(200).set_body_json(completion(content))).await;
    let proposal = answer.expect("a proposal");
    assert_eq!(proposal.class, "dependency_install");
    assert_eq!(proposal.confidence, 0.72);
    assert_eq!(proposal.evidence.len(), 1);

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1, "one attempt");
    let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(body["model"], "MiniMax-M2.5");
    let user = body["messages"][1]["content"].as_str().unwrap();
    assert!(user.contains(UNTRUSTED_OPEN), "{user}");
    assert!(user.contains("Error: connect ETIMEDOUT 104.16.0.35:443"));
    assert!(user.contains("\"class\":\"network\""), "{user}");
    assert!(!String::from_utf8_lossy(&requests[0].body).contains(KEY));
}

#[tokio::test]
async fn minimax_refiner_failures_are_errors_the_caller_falls_back_on() {
    let (answer, _server) = refine_with(
        ResponseTemplate::new(200).set_body_json(completion("I cannot help with that.")),
    )
    .await;
    assert_eq!(answer.unwrap_err().kind(), ErrorKind::InvalidResponse);

    let (answer, _server) = refine_with(ResponseTemplate::new(200).set_body_json(json!({
        "id": "", "choices": null, "usage": {"total_tokens": 0},
        "base_resp": {"status_code": 1004, "status_msg": "login fail: Please carry the API secret key"}
    })))
    .await;
    assert_eq!(answer.unwrap_err().kind(), ErrorKind::Unauthorized);

    let (answer, _server) = refine_with(
        ResponseTemplate::new(200)
            .set_body_json(completion("{}"))
            .set_delay(Duration::from_secs(3)),
    )
    .await;
    assert_eq!(answer.unwrap_err().kind(), ErrorKind::Timeout);
}

#[tokio::test]
async fn the_fake_refiner_agrees_by_default_and_plays_its_script() {
    let fake = FakeCiRefiner::new();
    let agreed = fake.refine(&request()).await.expect("agrees");
    assert_eq!(agreed.class, "network");
    assert_eq!(agreed.confidence, classify(LOG).confidence);
    fake.push_error(AdapterError::timeout(Duration::from_secs(1)));
    assert_eq!(
        fake.refine(&request()).await.unwrap_err().kind(),
        ErrorKind::Timeout
    );
    assert_eq!(fake.calls().len(), 2);
    assert_eq!(fake.refiner(), "fake");
}
