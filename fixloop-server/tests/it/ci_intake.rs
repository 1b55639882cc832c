//! `POST /api/ci/logs` and `GET /api/ci/logs`: the intake's own token, every bad-input class with its code,
//! classification, forwarding to a local stub (up, down, slow), and intakes that survive a restart.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::routing::post;
use fixloop_adapters::fake::FakeStore;
use fixloop_adapters::{Secret, SqliteStore, Store};
use fixloop_contract::MAX_CI_LOG_BYTES;
use fixloop_server::http::auth::{ApiToken, ApiTokens, AuthSettings, Role};
use fixloop_server::http::routes::ci::{CiForward, CiIntakeState};
use serde_json::{Value, json};

use crate::support::{TestApp, WAIT, error_code};

const NO_DEMO: &str = "http://127.0.0.1:9";
const CI_TOKEN: &str = "ci-intake-token-0123456789";
const FORWARD_TOKEN: &str = "forward-token-abcdefghij";

fn intake_on(store: Arc<dyn Store>, forward: Option<CiForward>) -> CiIntakeState {
    CiIntakeState {
        store,
        token: Some(Secret::from(CI_TOKEN)),
        forward,
        heal: None,
        refine: None,
    }
}

fn failed_job(log: &str) -> Value {
    json!({
        "repository": "acme/shop",
        "run_id": "8123456789",
        "job": "test (ubuntu-latest)",
        "status": "FAILED",
        "log_excerpt": log,
        "artifact_links": ["https://ci.example/acme/shop/runs/8123456789/artifacts/1"]
    })
}

const RUNNER_LOST: &str = "Run cargo test\n##[error]The runner has received a shutdown signal. This can happen when the runner service is stopped.\n##[error]The operation was canceled.";

fn submit(token: Option<&str>, content_type: &str, body: impl Into<Body>) -> Request<Body> {
    let mut builder = Request::post("/api/ci/logs").header(header::CONTENT_TYPE, content_type);
    if let Some(token) = token {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    builder.body(body.into()).unwrap()
}

fn submit_json(token: Option<&str>, body: &Value) -> Request<Body> {
    submit(token, "application/json", body.to_string())
}

#[tokio::test]
async fn without_a_ci_token_the_intake_is_off_and_says_so() {
    let app = TestApp::start(NO_DEMO);
    let (status, body) = app
        .send(submit_json(Some(CI_TOKEN), &failed_job(RUNNER_LOST)))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(error_code(&body), "ci_intake_disabled");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("FIXLOOP_CI_TOKEN")
    );
    // Without credentials, 401 as on every secured route (the fuzzer's "missing header" rule).
    let (status, body) = app.send(submit_json(None, &failed_job(RUNNER_LOST))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(error_code(&body), "unauthorized");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("FIXLOOP_CI_TOKEN")
    );
    let (status, body) = app.get("/api/ci/logs").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"intakes": []}));
    app.stop().await;
}

#[tokio::test]
async fn the_intake_needs_its_own_token_and_no_api_token_opens_it() {
    let store = Arc::new(FakeStore::new());
    let app = TestApp::start_with_ci(NO_DEMO, intake_on(store.clone(), None));
    let job = failed_job(RUNNER_LOST);
    for (token, why) in [
        (None, "no token"),
        (Some("not-the-ci-token-at-all"), "a wrong token"),
        (
            Some(&CI_TOKEN[..CI_TOKEN.len() - 1]),
            "a prefix of the token",
        ),
    ] {
        let (status, body) = app.send(submit_json(token, &job)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{why}: {body}");
        assert_eq!(error_code(&body), "unauthorized", "{why}");
    }
    // Two Authorization headers are refused, whatever they hold.
    let request = Request::post("/api/ci/logs")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {CI_TOKEN}"))
        .header(header::AUTHORIZATION, format!("Bearer {CI_TOKEN}"))
        .body(Body::from(job.to_string()))
        .unwrap();
    assert_eq!(app.send(request).await.0, StatusCode::UNAUTHORIZED);
    assert!(
        store.ci_intakes(10).await.unwrap().is_empty(),
        "nothing refused is recorded"
    );
    let (status, body) = app.send(submit_json(Some(CI_TOKEN), &job)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.stop().await;
}

#[tokio::test]
async fn with_api_tokens_the_intake_takes_the_ci_token_and_the_list_a_read_token() {
    let store: Arc<dyn Store> = Arc::new(FakeStore::new());
    let app = TestApp::start_tuned_with_ci(
        NO_DEMO,
        |settings| {
            settings.auth = AuthSettings {
                tokens: ApiTokens::new(vec![ApiToken {
                    name: "dash".to_owned(),
                    role: Role::Read,
                    token: Secret::from("read-token-0123456789"),
                }]),
                ..AuthSettings::default()
            };
        },
        intake_on(store, None),
    );
    let (status, body) = app
        .send(submit_json(Some(CI_TOKEN), &failed_job(RUNNER_LOST)))
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the CI token alone suffices: {body}"
    );
    let (status, _) = app
        .send(submit_json(
            Some("read-token-0123456789"),
            &failed_job(RUNNER_LOST),
        ))
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "an API token is not the CI token"
    );
    let (status, _) = app.get("/api/ci/logs").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the list is a read");
    let list = Request::get("/api/ci/logs")
        .header(header::AUTHORIZATION, "Bearer read-token-0123456789")
        .body(Body::empty())
        .unwrap();
    let (status, body) = app.send(list).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["intakes"].as_array().unwrap().len(), 1);
    app.stop().await;
}

/// A bad request: why it is bad, the request, the status and code it gets, and the path of its first detail.
type BadInput = (
    &'static str,
    Request<Body>,
    StatusCode,
    &'static str,
    Option<&'static str>,
);

#[tokio::test]
async fn every_bad_input_gets_its_status_and_code() {
    let store = Arc::new(FakeStore::new());
    let app = TestApp::start_with_ci(NO_DEMO, intake_on(store.clone(), None));
    let with = |key: &str, value: Value| {
        let mut job = failed_job("x");
        job[key] = value;
        job
    };
    let without = |key: &str| {
        let mut job = failed_job("x");
        job.as_object_mut().unwrap().remove(key);
        job
    };
    let too_many_links: Vec<String> = (0..21)
        .map(|n| format!("https://ci.example/a/{n}"))
        .collect();
    let cases: Vec<BadInput> = vec![
        (
            "malformed JSON",
            submit(Some(CI_TOKEN), "application/json", "{\"repository\":"),
            StatusCode::BAD_REQUEST,
            "invalid_json",
            None,
        ),
        (
            "not JSON",
            submit(Some(CI_TOKEN), "text/plain", "log"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            None,
        ),
        (
            "an array",
            submit_json(Some(CI_TOKEN), &json!([1])),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            Some(""),
        ),
        (
            "no repository",
            submit_json(Some(CI_TOKEN), &without("repository")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            Some("/repository"),
        ),
        (
            "no log",
            submit_json(Some(CI_TOKEN), &without("log_excerpt")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            Some("/log_excerpt"),
        ),
        (
            "a number as job",
            submit_json(Some(CI_TOKEN), &with("job", json!(7))),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            Some("/job"),
        ),
        (
            "an unknown status",
            submit_json(Some(CI_TOKEN), &with("status", json!("SUCCEEDED"))),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            Some("/status"),
        ),
        (
            "links not a list",
            submit_json(
                Some(CI_TOKEN),
                &with("artifact_links", json!("https://ci.example")),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            Some(""),
        ),
        (
            "a blank repository",
            submit_json(Some(CI_TOKEN), &with("repository", json!("   "))),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
            Some("/repository"),
        ),
        (
            "a long run id",
            submit_json(Some(CI_TOKEN), &with("run_id", json!("r".repeat(201)))),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
            Some("/run_id"),
        ),
        (
            "an ftp link",
            submit_json(
                Some(CI_TOKEN),
                &with("artifact_links", json!(["ftp://ci.example/a"])),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
            Some("/artifact_links/0"),
        ),
        (
            "a relative link",
            submit_json(
                Some(CI_TOKEN),
                &with(
                    "artifact_links",
                    json!(["https://ci.example/ok", "/runs/1"]),
                ),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
            Some("/artifact_links/1"),
        ),
        (
            "21 links",
            submit_json(
                Some(CI_TOKEN),
                &with("artifact_links", json!(too_many_links)),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
            Some("/artifact_links"),
        ),
        (
            "a log over 64 KiB",
            submit_json(
                Some(CI_TOKEN),
                &failed_job(&"a".repeat(MAX_CI_LOG_BYTES + 1)),
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            None,
        ),
        (
            "a body over the route's limit",
            submit_json(
                Some(CI_TOKEN),
                &failed_job(&"\n".repeat(MAX_CI_LOG_BYTES * 3)),
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            None,
        ),
    ];
    for (why, request, expected, code, path) in cases {
        let (status, body) = app.send(request).await;
        assert_eq!(status, expected, "{why}: {body}");
        assert_eq!(error_code(&body), code, "{why}: {body}");
        assert!(
            body["message"].is_string() && body["details"].is_array(),
            "{why}: an ErrorBody"
        );
        if let Some(path) = path {
            assert_eq!(body["details"][0]["path"], path, "{why}: {body}");
        }
    }
    assert!(
        store.ci_intakes(10).await.unwrap().is_empty(),
        "nothing refused is recorded"
    );
    // Exactly at the limit is accepted (a log of multi-byte characters counts in bytes).
    let (status, body) = app
        .send(submit_json(
            Some(CI_TOKEN),
            &failed_job(&"é".repeat(MAX_CI_LOG_BYTES / 2)),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["log_bytes"], MAX_CI_LOG_BYTES);
    app.stop().await;
}

#[tokio::test]
async fn an_intake_is_classified_recorded_and_listed_newest_first() {
    let store = Arc::new(FakeStore::new());
    let app = TestApp::start_with_ci(NO_DEMO, intake_on(store.clone(), None));
    let (status, first) = app
        .send(submit_json(Some(CI_TOKEN), &failed_job(RUNNER_LOST)))
        .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["status"], "received");
    assert_eq!(first["upstream"], Value::Null, "no forwarding configured");
    assert_eq!(first["job_status"], "FAILED");
    assert_eq!(first["classification"]["class"], "infrastructure");
    let confidence = first["classification"]["confidence"].as_f64().unwrap();
    assert!(confidence > 0.5 && confidence <= 1.0, "{confidence}");
    assert_eq!(first["classification"]["evidence"][0]["line"], 2);
    let timeout_log = "E       Failed: Timeout >120.0s\nFAILED tests/test_sync.py::test_full_sync - Failed: Timeout >120.0s";
    let (_, second) = app
        .send(submit_json(Some(CI_TOKEN), &failed_job(timeout_log)))
        .await;
    assert_eq!(second["classification"]["class"], "timeout");
    assert_ne!(first["id"], second["id"]);
    let (status, list) = app.get("/api/ci/logs").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        list["intakes"],
        json!([second, first]),
        "the answers, newest first"
    );
    let (_, one) = app.get("/api/ci/logs?limit=1").await;
    assert_eq!(one["intakes"], json!([second]));
    for bad in ["0", "101", "x", "-1"] {
        let (status, body) = app.get(&format!("/api/ci/logs?limit={bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(error_code(&body), "invalid_query");
    }
    // The store keeps the log excerpt with the answer.
    let records = store.ci_intakes(10).await.unwrap();
    assert_eq!(records[1].class, "infrastructure");
    let document: Value = serde_json::from_str(&records[1].document).unwrap();
    assert_eq!(document["log_excerpt"], RUNNER_LOST);
    app.stop().await;
}

/// A downstream stub: `/up` answers 202 with what it saw, `/slow` never answers, `/big` answers too much.
struct Downstream {
    base: String,
    seen: Arc<Mutex<Vec<(HeaderMap, Value)>>>,
    task: tokio::task::JoinHandle<()>,
}

async fn downstream() -> Downstream {
    let seen: Arc<Mutex<Vec<(HeaderMap, Value)>>> = Arc::default();
    let record = Arc::clone(&seen);
    let app = axum::Router::new()
        .route(
            "/up",
            post(
                move |headers: HeaderMap, axum::Json(body): axum::Json<Value>| {
                    let record = Arc::clone(&record);
                    async move {
                        let class = body["classification"]["class"].clone();
                        record.lock().unwrap().push((headers, body));
                        (
                            StatusCode::ACCEPTED,
                            axum::Json(json!({"accepted": true, "class": class})),
                        )
                    }
                },
            ),
        )
        .route("/slow", post(std::future::pending::<StatusCode>))
        .route("/big", post(|| async { "x".repeat(64 * 1024) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Downstream { base, seen, task }
}

/// A URL on which nothing listens (a port that was just free).
async fn closed_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{address}/agent")
}

async fn forwarded(url: &str, timeout: Duration) -> (TestApp, Arc<FakeStore>) {
    let store = Arc::new(FakeStore::new());
    let forward = CiForward::new(url, Some(Secret::from(FORWARD_TOKEN)), timeout).unwrap();
    let app = TestApp::start_with_ci(NO_DEMO, intake_on(store.clone(), Some(forward)));
    (app, store)
}

#[tokio::test]
async fn a_forwarded_intake_returns_the_downstreams_answer() {
    let stub = downstream().await;
    let (app, store) = forwarded(&format!("{}/up", stub.base), Duration::from_secs(5)).await;
    let (status, body) = app
        .send(submit_json(Some(CI_TOKEN), &failed_job(RUNNER_LOST)))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["upstream"],
        json!({"status": 202, "body": {"accepted": true, "class": "infrastructure"}, "error": null})
    );
    let seen = stub.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let (headers, forwarded) = &seen[0];
    assert_eq!(
        headers[header::AUTHORIZATION],
        format!("Bearer {FORWARD_TOKEN}"),
        "the downstream's own token, never the CI token"
    );
    assert_eq!(forwarded["id"], body["id"]);
    assert_eq!(forwarded["log_excerpt"], RUNNER_LOST);
    let recorded: Value =
        serde_json::from_str(&store.ci_intakes(1).await.unwrap()[0].document).unwrap();
    assert_eq!(
        recorded["upstream"], body["upstream"],
        "recorded with the downstream's answer"
    );
    app.stop().await;
    stub.task.abort();
}

#[tokio::test]
async fn a_downstream_that_is_down_slow_or_too_talkative_never_loses_the_intake() {
    let stub = downstream().await;
    let cases = [
        (closed_url().await, "cannot connect"),
        (format!("{}/slow", stub.base), "did not answer"),
        (format!("{}/big", stub.base), "larger than"),
    ];
    for (url, error) in cases {
        let (app, store) = forwarded(&url, Duration::from_millis(300)).await;
        let started = std::time::Instant::now();
        let (status, body) = app
            .send(submit_json(Some(CI_TOKEN), &failed_job(RUNNER_LOST)))
            .await;
        assert_eq!(status, StatusCode::OK, "{url}: {body}");
        assert!(started.elapsed() < WAIT, "bounded by the forward timeout");
        let upstream = &body["upstream"];
        assert!(
            upstream["error"].as_str().unwrap().contains(error),
            "{url}: {upstream}"
        );
        assert_eq!(upstream["body"], Value::Null);
        assert_eq!(body["classification"]["class"], "infrastructure");
        assert_eq!(
            store.ci_intakes(10).await.unwrap().len(),
            1,
            "{url}: recorded"
        );
        app.stop().await;
    }
    stub.task.abort();
}

#[test]
fn only_a_plain_http_url_may_be_the_downstream() {
    for bad in [
        "ftp://agent.example/x",
        "not a url",
        "https://user:pass@agent.example/x",
        "file:///tmp/x",
    ] {
        assert!(
            CiForward::new(bad, None, Duration::from_secs(1)).is_err(),
            "{bad}"
        );
    }
    assert!(
        CiForward::new(
            "https://agent.example/process-logs",
            None,
            Duration::from_secs(1)
        )
        .is_ok()
    );
}

#[tokio::test]
async fn intakes_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let app = TestApp::start_with_ci(NO_DEMO, intake_on(store.clone(), None));
    let (status, answered) = app
        .send(submit_json(Some(CI_TOKEN), &failed_job(RUNNER_LOST)))
        .await;
    assert_eq!(status, StatusCode::OK, "{answered}");
    app.stop().await;
    tokio::time::timeout(WAIT, store.close())
        .await
        .unwrap()
        .unwrap();
    drop(store);

    let reopened = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let app = TestApp::start_with_ci(NO_DEMO, intake_on(reopened.clone(), None));
    let (status, list) = app.get("/api/ci/logs").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["intakes"], json!([answered]));
    app.stop().await;
    tokio::time::timeout(WAIT, reopened.close())
        .await
        .unwrap()
        .unwrap();
}
