//! The built-in HTTP test runner against wiremock: the test-runner contract, redirects not followed, the
//! response-size cap, the per-test timeout, the validation header, and the request it sends.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fixloop_adapters::{
    HttpTestRunner, HttpTestRunnerConfig, Secret, TestRunner, VALIDATION_HEADER, http_client,
};
use fixloop_contract::serde_json::{Map, Value, json};
use fixloop_contract::{HttpMethod, TestStatus};
use fixloop_core::{RunId, ValidatedPlan, validate};
use tokio::sync::Mutex;
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::contract::test_runner::{
    self, RunnerScenario, ServiceBehaviour, run_and_collect, validated_rule_plan,
};

fn runner(config: HttpTestRunnerConfig) -> HttpTestRunner {
    HttpTestRunner::new(
        config,
        http_client(Duration::from_secs(10)).expect("a client"),
    )
}

/// A base URL where nothing listens (a port bound, then released).
pub(crate) async fn closed_base_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    drop(listener);
    format!("http://{address}")
}

/// Mounts the demo service's endpoints as the rule plan expects them; checkout answers 500 when `broken`.
pub(crate) async fn mount_demo(server: &MockServer, broken: bool) {
    let json_response =
        |status: u16, body: Value| ResponseTemplate::new(status).set_body_json(body);
    Mock::given(method("GET"))
        .and(path("/health"))
        .respond_with(json_response(200, json!({"status": "ok"})))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/catalog"))
        .respond_with(json_response(
            200,
            json!({"products": [{"sku": "sku-1", "name": "Espresso beans"}]}),
        ))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/auth/me"))
        .and(header("authorization", "Bearer demo-token"))
        .respond_with(json_response(200, json!({"user": "demo"})))
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/checkout"))
        .and(body_partial_json(json!({"quantity": 0})))
        .respond_with(json_response(400, json!({"error": "invalid_order"})))
        .mount(server)
        .await;
    let checkout = if broken {
        json_response(500, json!({"error": "payment provider timeout"}))
    } else {
        json_response(200, json!({"status": "confirmed", "order_id": "ord-1"}))
    };
    Mock::given(method("POST"))
        .and(path("/checkout"))
        .and(body_partial_json(json!({"quantity": 1})))
        .respond_with(checkout)
        .mount(server)
        .await;
}

struct StubScenario {
    server: Mutex<Option<MockServer>>,
}

#[async_trait]
impl RunnerScenario for StubScenario {
    async fn arrange(&self, behaviour: ServiceBehaviour) -> String {
        if behaviour == ServiceBehaviour::Unreachable {
            return closed_base_url().await;
        }
        let server = MockServer::start().await;
        mount_demo(&server, behaviour == ServiceBehaviour::CheckoutBroken).await;
        let base_url = server.uri();
        *self.server.lock().await = Some(server);
        base_url
    }
}

#[tokio::test]
async fn http_runner_meets_the_test_runner_contract() {
    test_runner::check_all(|| async {
        let runner: Arc<dyn TestRunner> = Arc::new(runner(HttpTestRunnerConfig::default()));
        let scenario: Box<dyn RunnerScenario> = Box::new(StubScenario {
            server: Mutex::new(None),
        });
        (runner, scenario)
    })
    .await;
}

/// The rule plan against `base_url` with each item's request and criteria replaced (test ids kept), validated
/// with the seed policy's URL rules and no coverage rules.
fn custom_plan(
    base_url: &str,
    items: [(HttpMethod, &'static str, Map<String, Value>, &str); 5],
) -> ValidatedPlan {
    let mut plan = validated_rule_plan(base_url).into_plan();
    for (item, (method, path, body, criteria)) in plan.items.iter_mut().zip(items) {
        item.target.method = method;
        item.target.url = format!("{base_url}{path}");
        item.target.headers.clear();
        item.target.body_json = body;
        item.pass_criteria = criteria.to_owned();
    }
    let mut policy = crate::shop::shop_spec(base_url).policy;
    policy.coverage.clear();
    policy.secrets = referenced_secrets(&plan);
    validate(plan, &policy).unwrap_or_else(|violations| panic!("{violations:?}"))
}

/// Every secret name the plan's headers and bodies reference: the service declares them all (the validator
/// rejects undeclared ones); whether the runner was given each value is what the tests vary.
fn referenced_secrets(plan: &fixloop_contract::Plan) -> Vec<String> {
    let texts: Vec<String> = plan
        .items
        .iter()
        .flat_map(|item| {
            item.target.headers.values().cloned().chain(std::iter::once(
                Value::Object(item.target.body_json.clone()).to_string(),
            ))
        })
        .collect();
    let mut names: Vec<String> = texts
        .iter()
        .flat_map(|text| fixloop_core::service::secret_references(text))
        .map(str::to_owned)
        .collect();
    names.sort();
    names.dedup();
    names
}

fn get(
    path: &'static str,
    criteria: &'static str,
) -> (HttpMethod, &'static str, Map<String, Value>, &'static str) {
    (HttpMethod::Get, path, Map::new(), criteria)
}

fn verdict(
    reports: &BTreeMap<String, Vec<fixloop_adapters::TestProgress>>,
    test_id: &str,
) -> (TestStatus, String) {
    let last = reports[test_id].last().expect("a verdict");
    (last.status, last.details.clone().unwrap_or_default())
}

#[tokio::test]
async fn redirect_is_observed_not_followed() {
    let server = MockServer::start().await;
    Mock::given(path("/old"))
        .respond_with(ResponseTemplate::new(302).insert_header("location", "/new"))
        .mount(&server)
        .await;
    Mock::given(path("/new"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let base = server.uri();
    let plan = custom_plan(
        &base,
        [
            get("/old", "status == 302"),
            get("/old", "status == 200"),
            get("/old", "header.location == \"/new\""),
            get("/old", "status == 302"),
            get("/old", "status == 302"),
        ],
    );
    let reports = run_and_collect(
        &runner(HttpTestRunnerConfig::default()),
        &RunId::new("run-1"),
        &plan,
    )
    .await;
    let ids: Vec<String> = plan.tests().map(|(item, _)| item.test_id.clone()).collect();
    assert_eq!(verdict(&reports, &ids[0]).0, TestStatus::Pass);
    let (status, details) = verdict(&reports, &ids[1]);
    assert_eq!(status, TestStatus::Fail);
    assert!(details.contains("302"), "{details}");
    assert_eq!(
        verdict(&reports, &ids[2]).0,
        TestStatus::Pass,
        "{reports:?}"
    );
    server.verify().await;
}

#[tokio::test]
async fn oversized_body_is_truncated_and_noted() {
    let server = MockServer::start().await;
    let body = format!("{}END", "A".repeat(200 * 1024));
    Mock::given(path("/big"))
        .respond_with(ResponseTemplate::new(200).set_body_string(body))
        .mount(&server)
        .await;
    let base = server.uri();
    let plan = custom_plan(
        &base,
        [
            get("/big", "status == 200"),
            get("/big", "body contains \"END\""),
            get("/big", "body contains \"AAAA\""),
            get("/big", "status == 200"),
            get("/big", "status == 200"),
        ],
    );
    let config = HttpTestRunnerConfig {
        max_body_bytes: 1024,
        ..HttpTestRunnerConfig::default()
    };
    let reports = run_and_collect(&runner(config), &RunId::new("run-2"), &plan).await;
    let ids: Vec<String> = plan.tests().map(|(item, _)| item.test_id.clone()).collect();
    let (status, details) = verdict(&reports, &ids[0]);
    assert_eq!(status, TestStatus::Pass);
    assert!(details.contains("truncated to 1024 bytes"), "{details}");
    assert_eq!(
        verdict(&reports, &ids[1]).0,
        TestStatus::Fail,
        "the end of the body was not read"
    );
    assert_eq!(verdict(&reports, &ids[2]).0, TestStatus::Pass);
}

#[tokio::test]
async fn slow_response_fails_with_a_timeout_detail() {
    let server = MockServer::start().await;
    Mock::given(path("/slow"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    Mock::given(path("/fast"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let base = server.uri();
    let plan = custom_plan(
        &base,
        [
            get("/slow", "status == 200"),
            get("/fast", "status == 200"),
            get("/fast", "status == 200"),
            get("/fast", "status == 200"),
            get("/fast", "status == 200"),
        ],
    );
    let config = HttpTestRunnerConfig {
        test_timeout: Duration::from_millis(300),
        ..HttpTestRunnerConfig::default()
    };
    let started = std::time::Instant::now();
    let reports = run_and_collect(&runner(config), &RunId::new("run-3"), &plan).await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the run did not wait for the slow response"
    );
    let ids: Vec<String> = plan.tests().map(|(item, _)| item.test_id.clone()).collect();
    assert_eq!(
        verdict(&reports, &ids[0]),
        (TestStatus::Fail, "timed out after 300ms".to_owned())
    );
    assert_eq!(verdict(&reports, &ids[1]).0, TestStatus::Pass);
}

#[tokio::test]
async fn every_request_carries_the_validation_header_with_the_run_id() {
    let server = MockServer::start().await;
    // The service can exclude FixLoop's traffic by any of the three marks.
    Mock::given(header(VALIDATION_HEADER, "run-42"))
        .and(header(
            fixloop_adapters::TRAFFIC_HEADER,
            fixloop_adapters::TRAFFIC_VALIDATION,
        ))
        .and(wiremock::matchers::header_regex("user-agent", "^fixloop/"))
        .respond_with(ResponseTemplate::new(200))
        .expect(5)
        .mount(&server)
        .await;
    let base = server.uri();
    let plan = custom_plan(
        &base,
        [
            get("/health", "status == 200"),
            get("/catalog", "status == 200"),
            (HttpMethod::Post, "/checkout", Map::new(), "status == 200"),
            (HttpMethod::Delete, "/orders/1", Map::new(), "status == 200"),
            (HttpMethod::Put, "/orders/1", Map::new(), "status == 200"),
        ],
    );
    let reports = run_and_collect(
        &runner(HttpTestRunnerConfig::default()),
        &RunId::new("run-42"),
        &plan,
    )
    .await;
    for (test_id, progress) in &reports {
        assert_eq!(
            progress.last().map(|p| p.status),
            Some(TestStatus::Pass),
            "{test_id}: {progress:?}"
        );
    }
    server.verify().await;
}

#[tokio::test]
async fn method_headers_and_json_body_are_sent_and_get_has_no_body() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/checkout"))
        .and(header("content-type", "application/json"))
        .and(header("x-tenant", "acme"))
        .and(body_partial_json(json!({"sku": "sku-1", "quantity": 2})))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let base = server.uri();
    let mut plan = custom_plan(
        &base,
        [
            get("/health", "status == 200"),
            get("/catalog", "status == 200"),
            get("/auth/me", "status == 200"),
            get("/health", "status == 200"),
            get("/health", "status == 200"),
        ],
    )
    .into_plan();
    let item = &mut plan.items[0];
    item.target.method = HttpMethod::Post;
    item.target.url = format!("{base}/checkout");
    item.target
        .headers
        .insert("x-tenant".to_owned(), "acme".to_owned());
    item.target.body_json = json!({"sku": "sku-1", "quantity": 2})
        .as_object()
        .cloned()
        .expect("an object");
    let mut policy = crate::shop::shop_spec(&base).policy;
    policy.coverage.clear();
    let plan = validate(plan, &policy).expect("valid");
    let reports = run_and_collect(
        &runner(HttpTestRunnerConfig::default()),
        &RunId::new("run-5"),
        &plan,
    )
    .await;
    for (test_id, progress) in &reports {
        assert_eq!(
            progress.last().map(|p| p.status),
            Some(TestStatus::Pass),
            "{test_id}: {progress:?}"
        );
    }
    let requests = server.received_requests().await.expect("recording is on");
    for request in requests
        .iter()
        .filter(|request| request.method.as_str() == "GET")
    {
        assert!(request.body.is_empty(), "GET sent a body: {request:?}");
        assert!(request.headers.get("content-type").is_none(), "{request:?}");
    }
    server.verify().await;
}

#[tokio::test]
async fn connection_refused_fails_with_a_clear_detail() {
    let base = closed_base_url().await;
    let plan = validated_rule_plan(&base);
    let reports = run_and_collect(
        &runner(HttpTestRunnerConfig::default()),
        &RunId::new("run-6"),
        &plan,
    )
    .await;
    for (test_id, progress) in &reports {
        let last = progress.last().expect("a verdict");
        assert_eq!(
            (last.status, last.details.as_deref()),
            (TestStatus::Fail, Some("request failed: connection refused")),
            "{test_id}"
        );
    }
}

const SECRET_VALUE: &str = "s3cret-token-value";

fn runner_with_secret() -> HttpTestRunner {
    runner(HttpTestRunnerConfig {
        secrets: BTreeMap::from([("API_TOKEN".to_owned(), Secret::new(SECRET_VALUE))]),
        ..HttpTestRunnerConfig::default()
    })
}

/// [`custom_plan`] with `headers` and `body` set on the first item (a `POST`).
fn plan_with_placeholders(
    base_url: &str,
    first_path: &'static str,
    headers: &[(&str, &str)],
    body: Value,
    criteria: &'static str,
) -> ValidatedPlan {
    let Value::Object(body) = body else {
        panic!("a JSON object body")
    };
    let mut plan = custom_plan(
        base_url,
        [
            (HttpMethod::Post, first_path, body, criteria),
            get("/health", "status == 200"),
            get("/health", "status == 200"),
            get("/health", "status == 200"),
            get("/health", "status == 200"),
        ],
    )
    .into_plan();
    plan.items[0].target.headers = headers
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect();
    let mut policy = crate::shop::shop_spec(base_url).policy;
    policy.coverage.clear();
    policy.secrets = referenced_secrets(&plan);
    validate(plan, &policy).unwrap_or_else(|violations| panic!("{violations:?}"))
}

#[tokio::test]
async fn secret_placeholders_are_substituted_at_send_time_only() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/orders"))
        .and(header("authorization", "Bearer s3cret-token-value"))
        .and(body_partial_json(json!({
            "token": SECRET_VALUE,
            "nested": {"list": ["x-s3cret-token-value", 1]},
            "literal": "${env:lower}"
        })))
        .respond_with(ResponseTemplate::new(201))
        .expect(1)
        .mount(&server)
        .await;
    mount_demo(&server, false).await;
    let plan = plan_with_placeholders(
        &server.uri(),
        "/orders",
        &[("Authorization", "Bearer ${env:API_TOKEN}")],
        json!({
            "token": "${env:API_TOKEN}",
            "nested": {"list": ["x-${env:API_TOKEN}", 1]},
            "literal": "${env:lower}"
        }),
        "status == 201",
    );
    let reports = run_and_collect(&runner_with_secret(), &RunId::new("run-s"), &plan).await;
    let first = plan.tests().next().expect("a test").0;
    let (status, details) = verdict(&reports, &first.test_id);
    assert_eq!(status, TestStatus::Pass, "{details}");
    assert_eq!(
        first.target.headers["Authorization"], "Bearer ${env:API_TOKEN}",
        "the plan keeps the placeholder"
    );
    server.verify().await;
}

#[tokio::test]
async fn placeholder_of_an_unconfigured_secret_fails_without_sending() {
    let server = MockServer::start().await;
    Mock::given(path("/orders"))
        .respond_with(ResponseTemplate::new(201))
        .expect(0)
        .mount(&server)
        .await;
    mount_demo(&server, false).await;
    let plan = plan_with_placeholders(
        &server.uri(),
        "/orders",
        &[("Authorization", "Bearer ${env:OTHER_TOKEN}")],
        json!({}),
        "status == 201",
    );
    let reports = run_and_collect(&runner_with_secret(), &RunId::new("run-m"), &plan).await;
    let first = plan.tests().next().expect("a test").0;
    assert_eq!(
        verdict(&reports, &first.test_id),
        (
            TestStatus::Fail,
            "secret OTHER_TOKEN is not configured".to_owned()
        )
    );
    server.verify().await;
}

/// Answers with the request's `Authorization` header in a plain-text body.
struct EchoAuthorization;

impl Respond for EchoAuthorization {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let authorization = request
            .headers
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .unwrap_or("none");
        ResponseTemplate::new(200).set_body_string(format!("auth={authorization}"))
    }
}

#[tokio::test]
async fn resolved_secret_never_appears_in_the_details() {
    let server = MockServer::start().await;
    Mock::given(path("/echo"))
        .respond_with(EchoAuthorization)
        .expect(1)
        .mount(&server)
        .await;
    mount_demo(&server, false).await;
    let plan = plan_with_placeholders(
        &server.uri(),
        "/echo",
        &[("Authorization", "Bearer ${env:API_TOKEN}")],
        json!({}),
        "json.ok == true",
    );
    let reports = run_and_collect(&runner_with_secret(), &RunId::new("run-e"), &plan).await;
    let first = plan.tests().next().expect("a test").0;
    let (status, details) = verdict(&reports, &first.test_id);
    assert_eq!(status, TestStatus::Fail);
    assert!(!details.contains(SECRET_VALUE), "{details}");
    assert!(
        details.contains("auth=Bearer [redacted]"),
        "the body is quoted, the secret redacted: {details}"
    );
    server.verify().await;
}
