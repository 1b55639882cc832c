//! The CI providers: the shared [`CiProvider`] contract suite against [`FakeCiProvider`] and against
//! [`GitHubActions`] and [`GitLabCi`] on local wiremock stubs of the documented endpoints (GitHub's
//! `rerun-failed-jobs` with its headers, GitLab's job `retry` with `PRIVATE-TOKEN` and its new-job answer), plus
//! what each sends exactly and what it refuses before any I/O.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use fixloop_adapters::fake::FakeCiProvider;
use fixloop_adapters::{
    AdapterError, CiProvider, ErrorKind, GitHubActions, GitHubActionsConfig, GitLabCi,
    GitLabCiConfig, RerunRequest, Secret, http_client,
};
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::contract::bounded;
use crate::contract::ci_provider::{
    self, ProviderScenario, RETRY_AFTER_SECS, Situation, rerun_request,
};

/// The timeout every real provider of these tests is configured with.
const TIMEOUT: Duration = Duration::from_millis(500);

/// The token of these tests.
const TOKEN: &str = "ghp_cihealtesttoken0123456789abcdef";

// ---- the fake ----

struct FakeScenario(Arc<FakeCiProvider>);

#[async_trait]
impl ProviderScenario for FakeScenario {
    async fn arrange(&self, situation: Situation) {
        let kind = match situation {
            Situation::Accepts => return,
            Situation::RateLimits => {
                self.0
                    .push_error(AdapterError::rate_limited(Some(Duration::from_secs(
                        RETRY_AFTER_SECS,
                    ))));
                return;
            }
            Situation::RejectsToken => ErrorKind::Unauthorized,
            Situation::NotFound => ErrorKind::NotFound,
            Situation::Fails | Situation::Unreachable => ErrorKind::Unavailable,
            Situation::Slow => ErrorKind::Timeout,
        };
        self.0.set_failure(Some(kind));
    }

    async fn received(&self) -> usize {
        self.0.calls().len()
    }

    fn secret(&self) -> Option<String> {
        None
    }
}

#[tokio::test]
async fn fake_ci_provider_meets_the_ci_provider_contract() {
    ci_provider::check_all(|| async {
        let fake = Arc::new(FakeCiProvider::new());
        let port: Arc<dyn CiProvider> = fake.clone();
        (
            port,
            Box::new(FakeScenario(fake)) as Box<dyn ProviderScenario>,
        )
    })
    .await;
}

#[tokio::test]
async fn fake_ci_provider_records_every_call_and_names_the_new_job() {
    let fake = FakeCiProvider::new();
    fake.push_error(AdapterError::unavailable("down"));
    assert!(fake.rerun_failed(&rerun_request()).await.is_err());
    let receipt = fake.rerun_failed(&rerun_request()).await.expect("accepted");
    assert_eq!(receipt.status, 201);
    assert_eq!(receipt.new_job_id.as_deref(), Some("26042851364-rerun-2"));
    assert_eq!(fake.calls(), vec![rerun_request(), rerun_request()]);
}

// ---- the stubs ----

/// A wiremock provider that can be stopped (the unreachable case).
struct StubScenario {
    server: Mutex<Option<MockServer>>,
    path: String,
    accept: ResponseTemplate,
}

impl StubScenario {
    async fn start(path: &str, accept: ResponseTemplate) -> (Self, String) {
        // A server of its own (not from wiremock's pool): dropping it closes its port, for the unreachable case.
        let server = MockServer::builder().start().await;
        let uri = server.uri();
        (
            Self {
                server: Mutex::new(Some(server)),
                path: path.to_owned(),
                accept,
            },
            uri,
        )
    }
}

#[async_trait]
impl ProviderScenario for StubScenario {
    async fn arrange(&self, situation: Situation) {
        let response = match situation {
            Situation::Accepts => self.accept.clone(),
            Situation::RejectsToken => {
                ResponseTemplate::new(401).set_body_json(json!({"message": "Bad credentials"}))
            }
            Situation::NotFound => {
                ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"}))
            }
            Situation::RateLimits => ResponseTemplate::new(429)
                .insert_header("retry-after", RETRY_AFTER_SECS.to_string().as_str()),
            Situation::Fails => ResponseTemplate::new(500),
            Situation::Slow => self.accept.clone().set_delay(Duration::from_secs(30)),
            Situation::Unreachable => {
                drop(self.server.lock().unwrap().take());
                return;
            }
        };
        let server = self.server.lock().unwrap().take().expect("a running stub");
        Mock::given(method("POST"))
            .and(path(self.path.as_str()))
            .respond_with(response)
            .mount(&server)
            .await;
        *self.server.lock().unwrap() = Some(server);
    }

    async fn received(&self) -> usize {
        let server = self.server.lock().unwrap().take().expect("a running stub");
        let count = server.received_requests().await.unwrap_or_default().len();
        *self.server.lock().unwrap() = Some(server);
        count
    }

    fn secret(&self) -> Option<String> {
        Some(TOKEN.to_owned())
    }
}

const GITHUB_PATH: &str = "/repos/acme/shop-api/actions/runs/9454698428/rerun-failed-jobs";
const GITLAB_PATH: &str = "/api/v4/projects/acme%2Fshop-api/jobs/26042851364/retry";

fn github(base_url: &str) -> GitHubActions {
    GitHubActions::new(
        GitHubActionsConfig {
            base_url: base_url.to_owned(),
            token: Secret::new(TOKEN),
            timeout: TIMEOUT,
        },
        http_client(Duration::from_secs(5)).expect("client"),
    )
    .expect("a valid base URL")
}

fn gitlab(base_url: &str) -> GitLabCi {
    GitLabCi::new(
        GitLabCiConfig {
            base_url: base_url.to_owned(),
            token: Secret::new(TOKEN),
            timeout: TIMEOUT,
        },
        http_client(Duration::from_secs(5)).expect("client"),
    )
    .expect("a valid base URL")
}

fn gitlab_new_job() -> serde_json::Value {
    json!({
        "id": 26042851399u64, "name": "e2e", "status": "pending", "stage": "test",
        "web_url": "https://gitlab.example/acme/shop-api/-/jobs/26042851399"
    })
}

#[tokio::test]
async fn github_actions_meets_the_ci_provider_contract() {
    ci_provider::check_all(|| async {
        let (scenario, uri) = StubScenario::start(GITHUB_PATH, ResponseTemplate::new(201)).await;
        let port: Arc<dyn CiProvider> = Arc::new(github(&uri));
        (port, Box::new(scenario) as Box<dyn ProviderScenario>)
    })
    .await;
}

#[tokio::test]
async fn gitlab_ci_meets_the_ci_provider_contract() {
    ci_provider::check_all(|| async {
        let (scenario, uri) = StubScenario::start(
            GITLAB_PATH,
            ResponseTemplate::new(201).set_body_json(gitlab_new_job()),
        )
        .await;
        let port: Arc<dyn CiProvider> = Arc::new(gitlab(&uri));
        (port, Box::new(scenario) as Box<dyn ProviderScenario>)
    })
    .await;
}

#[tokio::test]
async fn github_sends_the_documented_headers_under_an_enterprise_base_path() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/api/v3{GITHUB_PATH}")))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("accept", "application/vnd.github+json"))
        .and(header("x-github-api-version", "2022-11-28"))
        .and(body_json(json!({"enable_debug_logging": false})))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let provider = github(&format!("{}/api/v3/", server.uri()));
    let receipt = bounded("rerun", provider.rerun_failed(&rerun_request()))
        .await
        .expect("accepted");
    assert_eq!(receipt.status, 204);
    assert_eq!(receipt.new_job_id, None);
}

#[tokio::test]
async fn github_exhausted_rate_limit_on_403_is_rate_limited_not_unauthorized() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("retry-after", "60")
                .set_body_json(json!({"message": "API rate limit exceeded"})),
        )
        .mount(&server)
        .await;
    let error = bounded(
        "rerun",
        github(&server.uri()).rerun_failed(&rerun_request()),
    )
    .await
    .expect_err("rate limited");
    assert_eq!(
        error.kind(),
        ErrorKind::RateLimited {
            retry_after: Some(Duration::from_secs(60))
        }
    );
}

#[tokio::test]
async fn gitlab_sends_its_private_token_and_reads_the_new_job() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(GITLAB_PATH))
        .and(header("private-token", TOKEN))
        .respond_with(ResponseTemplate::new(201).set_body_json(gitlab_new_job()))
        .expect(1)
        .mount(&server)
        .await;
    let receipt = bounded(
        "retry",
        gitlab(&server.uri()).rerun_failed(&rerun_request()),
    )
    .await
    .expect("accepted");
    assert_eq!(receipt.status, 201);
    assert_eq!(receipt.new_job_id.as_deref(), Some("26042851399"));
    assert_eq!(
        receipt.web_url.as_deref(),
        Some("https://gitlab.example/acme/shop-api/-/jobs/26042851399")
    );
}

#[tokio::test]
async fn malformed_requests_are_refused_before_any_request() {
    let server = MockServer::start().await;
    let github = github(&server.uri());
    let gitlab = gitlab(&server.uri());
    let bad = |project: &str, run_id: &str, job_id: Option<&str>| RerunRequest {
        project: project.to_owned(),
        run_id: run_id.to_owned(),
        job_id: job_id.map(str::to_owned),
    };
    for request in [
        bad("acme/shop-api/../x", "1", None),
        bad("acme/shop-api", "1/../../admin", None),
        bad("acme", "1", None),
    ] {
        let error = github.rerun_failed(&request).await.expect_err("refused");
        assert_eq!(error.kind(), ErrorKind::Refused, "{request:?}");
    }
    for request in [
        bad("acme/shop-api", "1", None),
        bad("acme/shop-api", "1", Some("12/../13")),
        bad("", "1", Some("12")),
    ] {
        let error = gitlab.rerun_failed(&request).await.expect_err("refused");
        assert_eq!(error.kind(), ErrorKind::Refused, "{request:?}");
    }
    assert!(
        server
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty()
    );
    for bad_base in ["ftp://ci.example", "https://ci.example/?token=x"] {
        let error = GitHubActions::new(
            GitHubActionsConfig {
                base_url: bad_base.to_owned(),
                ..GitHubActionsConfig::default()
            },
            http_client(Duration::from_secs(5)).expect("client"),
        )
        .expect_err("refused");
        assert_eq!(error.kind(), ErrorKind::Refused);
    }
}
