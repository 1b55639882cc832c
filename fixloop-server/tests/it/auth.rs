//! Authentication and limits: every route with every kind of caller (no token, a wrong one, `read`, `operate`, a
//! query token), the open routes, the open mode of a loopback demo, the copilot's rate limit per token and per client
//! address, the redaction of `access_token` from the logs (a captured subscriber and a real process), a real
//! WebSocket opened with a query token, and the rule that refuses an open server beyond loopback (through the
//! binary).

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use fixloop_adapters::Secret;
use fixloop_contract::codes;
use fixloop_server::http::auth::{
    Access, ApiToken, ApiTokens, AuthSettings, RateLimit, Role, required_access,
};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tower::ServiceExt;

use crate::support::{TestApp, WAIT, error_code};

const READ_TOKEN: &str = "read-token-7f3a9c0e5b1d";
const OPERATE_TOKEN: &str = "operate-token-c41e8b2f90a6";
const OTHER_OPERATE_TOKEN: &str = "operate-token-2-d5e6f7a8b9c0";
const APPROVE_TOKEN: &str = "approve-token-9a8b7c6d5e4f";
const WEBHOOK_SECRET: &str = "0123456789abcdef-webhook";
/// A demo service address that refuses connections at once (the bug switch answers 502).
const NO_DEMO: &str = "http://127.0.0.1:9";

fn tokens() -> ApiTokens {
    ApiTokens::new(vec![
        ApiToken {
            name: "dashboard".to_owned(),
            role: Role::Read,
            token: Secret::from(READ_TOKEN),
        },
        ApiToken {
            name: "oncall".to_owned(),
            role: Role::Operate,
            token: Secret::from(OPERATE_TOKEN),
        },
        ApiToken {
            name: "ci".to_owned(),
            role: Role::Operate,
            token: Secret::from(OTHER_OPERATE_TOKEN),
        },
        ApiToken {
            name: "lead".to_owned(),
            role: Role::Approve,
            token: Secret::from(APPROVE_TOKEN),
        },
    ])
}

fn secured(limit: RateLimit) -> TestApp {
    TestApp::start_with(NO_DEMO, |settings| {
        settings.auth = AuthSettings {
            tokens: tokens(),
            copilot_limit: limit,
            operate_limit: GENEROUS,
        };
        settings.webhook_secret = Some(Secret::from(WEBHOOK_SECRET));
    })
}

/// A limit no test reaches.
const GENEROUS: RateLimit = RateLimit {
    per_minute: 10_000,
    burst: 1_000,
};

/// One route: how to call it, the role it needs, and what an authorized call answers.
struct Route {
    method: Method,
    path: &'static str,
    /// The route template (what `MatchedPath` holds).
    template: &'static str,
    body: Option<Value>,
    role: Role,
    allowed: StatusCode,
}

/// Every authenticated route of the router.
fn routes() -> Vec<Route> {
    let route = |method: Method,
                 path: &'static str,
                 template: &'static str,
                 body: Option<Value>,
                 role: Role,
                 allowed: StatusCode| Route {
        method,
        path,
        template,
        body,
        role,
        allowed,
    };
    vec![
        route(
            Method::GET,
            "/api/status",
            "/api/status",
            None,
            Role::Read,
            StatusCode::OK,
        ),
        route(
            Method::GET,
            "/api/incidents/current",
            "/api/incidents/current",
            None,
            Role::Read,
            StatusCode::OK,
        ),
        route(
            Method::GET,
            "/api/incidents",
            "/api/incidents",
            None,
            Role::Read,
            StatusCode::OK,
        ),
        route(
            Method::GET,
            "/api/incidents/inc-none",
            "/api/incidents/{incident_id}",
            None,
            Role::Read,
            StatusCode::NOT_FOUND,
        ),
        route(
            Method::GET,
            "/api/tests/runs/run-none",
            "/api/tests/runs/{run_id}",
            None,
            Role::Read,
            StatusCode::NOT_FOUND,
        ),
        route(
            Method::GET,
            "/api/services",
            "/api/services",
            None,
            Role::Read,
            StatusCode::OK,
        ),
        route(
            Method::GET,
            "/api/services/demo-checkout",
            "/api/services/{name}",
            None,
            Role::Read,
            StatusCode::OK,
        ),
        // Without an upgrade, an authorized `GET /ws` reaches the handler, which answers 400.
        route(
            Method::GET,
            "/ws",
            "/ws",
            None,
            Role::Read,
            StatusCode::BAD_REQUEST,
        ),
        route(
            Method::GET,
            "/metrics",
            "/metrics",
            None,
            Role::Read,
            StatusCode::OK,
        ),
        // The demo service is unreachable, so an authorized call gets as far as the upstream and answers 502.
        route(
            Method::POST,
            "/api/demo/bug",
            "/api/demo/bug",
            Some(json!({"enabled": true})),
            Role::Operate,
            StatusCode::BAD_GATEWAY,
        ),
        route(
            Method::GET,
            "/api/ci/logs",
            "/api/ci/logs",
            None,
            Role::Read,
            StatusCode::OK,
        ),
        route(
            Method::GET,
            "/api/ci/incidents",
            "/api/ci/incidents",
            None,
            Role::Read,
            StatusCode::OK,
        ),
        route(
            Method::GET,
            "/api/replicas",
            "/api/replicas",
            None,
            Role::Read,
            StatusCode::OK,
        ),
        // The test's server was not started from a profile file: an authorized reload answers 409 `no_profile`.
        route(
            Method::POST,
            "/api/admin/reload",
            "/api/admin/reload",
            None,
            Role::Operate,
            StatusCode::CONFLICT,
        ),
        route(
            Method::POST,
            "/api/incidents/simulate",
            "/api/incidents/simulate",
            Some(json!({"mode": "INCIDENT_OFF"})),
            Role::Operate,
            StatusCode::OK,
        ),
        route(
            Method::POST,
            "/api/tests/run",
            "/api/tests/run",
            Some(json!({"incident_id": "inc-none"})),
            Role::Operate,
            StatusCode::NOT_FOUND,
        ),
        route(
            Method::POST,
            "/api/copilot/ask",
            "/api/copilot/ask",
            Some(json!({"question": "what is going on?"})),
            Role::Operate,
            StatusCode::OK,
        ),
        route(
            Method::GET,
            "/api/remediations",
            "/api/remediations",
            None,
            Role::Read,
            StatusCode::OK,
        ),
        route(
            Method::GET,
            "/api/remediations/stats",
            "/api/remediations/stats",
            None,
            Role::Read,
            StatusCode::OK,
        ),
        // No proposal has this id: an authorized decision gets as far as the engines and answers 404.
        route(
            Method::POST,
            "/api/remediations/rem-none/approve",
            "/api/remediations/{proposal_id}/approve",
            Some(json!({"version": 1})),
            Role::Approve,
            StatusCode::NOT_FOUND,
        ),
        route(
            Method::POST,
            "/api/remediations/rem-none/reject",
            "/api/remediations/{proposal_id}/reject",
            Some(json!({"version": 1})),
            Role::Approve,
            StatusCode::NOT_FOUND,
        ),
        route(
            Method::POST,
            "/api/remediation/kill-switch",
            "/api/remediation/kill-switch",
            Some(json!({"engaged": false})),
            Role::Approve,
            StatusCode::OK,
        ),
    ]
}

/// How a request carries its token.
#[derive(Debug, Clone, Copy)]
enum Credential<'a> {
    None,
    Header(&'a str),
    Query(&'a str),
}

fn request(route: &Route, credential: Credential<'_>) -> Request<Body> {
    let uri = match credential {
        Credential::Query(token) => format!("{}?access_token={token}", route.path),
        _ => route.path.to_owned(),
    };
    let mut builder = Request::builder().method(route.method.clone()).uri(uri);
    if let Credential::Header(token) = credential {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    match &route.body {
        Some(body) => builder
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap(),
        None => builder.body(Body::empty()).unwrap(),
    }
}

/// Sends a request through the router; returns status, headers and body.
async fn send(app: &TestApp, request: Request<Body>) -> (StatusCode, HeaderMap, Value) {
    let response = tokio::time::timeout(WAIT, app.router.clone().oneshot(request))
        .await
        .expect("the router answers in time")
        .expect("the router is infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = tokio::time::timeout(WAIT, axum::body::to_bytes(response.into_body(), usize::MAX))
        .await
        .expect("the body arrives in time")
        .expect("the body is readable");
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, headers, body)
}

fn challenge(headers: &HeaderMap) -> &str {
    headers
        .get(header::WWW_AUTHENTICATE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
}

/// Sends one request of `route` with `credential`; returns what differs from `expected` (status, code, challenge).
async fn check(
    app: &TestApp,
    route: &Route,
    case: &str,
    credential: Credential<'_>,
    expected: StatusCode,
) -> Vec<String> {
    let name = format!("{} {} {case}", route.method, route.path);
    let (status, headers, body) = send(app, request(route, credential)).await;
    let mut problems = Vec::new();
    if status != expected {
        problems.push(format!("{name}: expected {expected}, got {status} {body}"));
    }
    let wrong_error = match status {
        StatusCode::UNAUTHORIZED => {
            error_code(&body) != codes::UNAUTHORIZED
                || !challenge(&headers).starts_with("Bearer realm=\"fixloop\"")
        }
        StatusCode::FORBIDDEN => {
            error_code(&body) != codes::FORBIDDEN
                || !challenge(&headers).contains("error=\"insufficient_scope\"")
        }
        _ => false,
    };
    if wrong_error {
        problems.push(format!("{name}: {headers:?} {body}"));
    }
    problems
}

#[tokio::test]
async fn every_route_checks_every_kind_of_caller() {
    let app = secured(GENEROUS);
    let mut failures = Vec::new();
    for route in routes() {
        let name = format!("{} {}", route.method, route.path);
        let read_expected = if route.role == Role::Read {
            route.allowed
        } else {
            StatusCode::FORBIDDEN
        };
        // An operate token does not approve: approve is granted only explicitly.
        let operate_expected = if route.role == Role::Approve {
            StatusCode::FORBIDDEN
        } else {
            route.allowed
        };
        let cases = [
            (
                "without a token",
                Credential::None,
                StatusCode::UNAUTHORIZED,
            ),
            (
                "with a wrong token",
                Credential::Header("not-a-configured-token-0000"),
                StatusCode::UNAUTHORIZED,
            ),
            (
                "with a prefix of a token",
                Credential::Header(&OPERATE_TOKEN[..OPERATE_TOKEN.len() - 1]),
                StatusCode::UNAUTHORIZED,
            ),
            (
                "with a wrong query token",
                Credential::Query("not-a-configured-token-0000"),
                StatusCode::UNAUTHORIZED,
            ),
            (
                "with a read token",
                Credential::Header(READ_TOKEN),
                read_expected,
            ),
            (
                "with a read query token",
                Credential::Query(READ_TOKEN),
                read_expected,
            ),
            (
                "with an operate token",
                Credential::Header(OPERATE_TOKEN),
                operate_expected,
            ),
            (
                "with an operate query token",
                Credential::Query(OPERATE_TOKEN),
                operate_expected,
            ),
            (
                "with an approve token",
                Credential::Header(APPROVE_TOKEN),
                route.allowed,
            ),
        ];
        for (case, credential, expected) in cases {
            failures.extend(check(&app, &route, case, credential, expected).await);
        }
        assert_eq!(
            required_access(&route.method, Some(route.template)),
            Access::Role(route.role),
            "{name}: the table of this test and required_access agree"
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    app.stop().await;
}

#[tokio::test]
async fn the_routes_of_this_test_are_every_operation_of_the_contract_with_its_role() {
    let document = fixloop_contract::openapi::openapi();
    let routes = routes();
    let mut operations = 0;
    for (path, item) in &document.paths.paths {
        for (method, operation) in [
            (Method::GET, &item.get),
            (Method::POST, &item.post),
            (Method::PUT, &item.put),
            (Method::DELETE, &item.delete),
        ] {
            let Some(operation) = operation else {
                continue;
            };
            if operation.operation_id.as_deref()
                == Some(fixloop_contract::openapi::CI_INTAKE_OPERATION)
            {
                // Its own token (FIXLOOP_CI_TOKEN), checked by its handler: tests/it/ci_intake.rs.
                continue;
            }
            operations += 1;
            let route = routes
                .iter()
                .find(|route| route.method == method && route.template == path)
                .unwrap_or_else(|| panic!("{method} {path} of openapi.yaml is not tested here"));
            let security = serde_json::to_value(&operation.security).unwrap();
            let role = route.role.to_string();
            assert_eq!(
                security,
                json!([{"bearerAuth": [role]}, {"accessToken": [role]}]),
                "{method} {path}: openapi.yaml documents the role the server enforces"
            );
        }
    }
    assert_eq!(
        operations,
        routes
            .iter()
            .filter(|route| route.path != "/metrics")
            .count(),
        "every route here but /metrics is an operation of the contract"
    );
}

#[tokio::test]
async fn open_routes_need_no_token_and_webhooks_keep_their_own_secret() {
    let app = secured(GENEROUS);
    for path in ["/healthz", "/openapi.json"] {
        let (status, _, body) = send(&app, Request::get(path).body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    // No route matched: a 404 without asking for a token (it reveals nothing).
    let (status, _, body) = send(
        &app,
        Request::get("/no/such/route").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // The dashboard page and its assets are open: the page must load before it can ask for a token.
    let (status, _, body) = send(&app, Request::get("/").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, body) = send(
        &app,
        Request::get("/dashboard/app.js")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The webhooks answer to their secret, not to a bearer token.
    let alert = json!({"version": "4", "status": "firing", "alerts": []});
    let webhook = |secret: Option<&str>, bearer: Option<&str>| {
        let mut request = Request::post("/internal/alertmanager/webhook")
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(secret) = secret {
            request = request.header("x-fixloop-webhook-secret", secret);
        }
        if let Some(bearer) = bearer {
            request = request.header(header::AUTHORIZATION, format!("Bearer {bearer}"));
        }
        request.body(Body::from(alert.to_string())).unwrap()
    };
    let (status, _, body) = send(&app, webhook(Some(WEBHOOK_SECRET), None)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (status, _, body) = send(&app, webhook(None, Some(OPERATE_TOKEN))).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "an API token is not the webhook secret: {body}"
    );
    app.stop().await;
}

#[tokio::test]
async fn header_forms_the_middleware_accepts_and_refuses() {
    let app = secured(GENEROUS);
    let status_with = |value: &str| {
        Request::get("/api/status")
            .header(header::AUTHORIZATION, value)
            .body(Body::empty())
            .unwrap()
    };
    let (status, _, _) = send(&app, status_with(&format!("bearer {READ_TOKEN}"))).await;
    assert_eq!(status, StatusCode::OK, "the scheme is case-insensitive");
    for value in [
        format!("Basic {READ_TOKEN}"),
        READ_TOKEN.to_owned(),
        "Bearer ".to_owned(),
    ] {
        let (status, headers, body) = send(&app, status_with(&value)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{value}: {body}");
        assert!(challenge(&headers).starts_with("Bearer"), "{value}");
    }
    // A token in the header and another in the query is ambiguous (RFC 6750 allows one method per request).
    let (status, headers, body) = send(
        &app,
        Request::get(format!("/api/status?access_token={READ_TOKEN}"))
            .header(header::AUTHORIZATION, format!("Bearer {READ_TOKEN}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(challenge(&headers).contains("invalid_request"));
    app.stop().await;
}

#[tokio::test]
async fn without_tokens_every_route_is_open_as_before() {
    let app = TestApp::start(NO_DEMO);
    for route in routes() {
        let (status, _, body) = send(&app, request(&route, Credential::None)).await;
        assert_eq!(
            status, route.allowed,
            "{} {}: {body}",
            route.method, route.path
        );
    }
    app.stop().await;
}

fn copilot_question(token: Option<&str>, peer: Option<IpAddr>) -> Request<Body> {
    let mut request =
        Request::post("/api/copilot/ask").header(header::CONTENT_TYPE, "application/json");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let mut request = request
        .body(Body::from(json!({"question": "why?"}).to_string()))
        .unwrap();
    if let Some(peer) = peer {
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(peer, 40_000)));
    }
    request
}

#[tokio::test]
async fn the_copilot_is_rate_limited_per_token_with_retry_after() {
    let app = secured(RateLimit {
        per_minute: 2,
        burst: 3,
    });
    for attempt in 0..3 {
        let (status, _, body) = send(&app, copilot_question(Some(OPERATE_TOKEN), None)).await;
        assert_eq!(status, StatusCode::OK, "attempt {attempt}: {body}");
    }
    let (status, headers, body) = send(&app, copilot_question(Some(OPERATE_TOKEN), None)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(error_code(&body), codes::RATE_LIMITED);
    // Two a minute: the next request is allowed 30 s after the burst.
    assert_eq!(
        headers.get(header::RETRY_AFTER).unwrap(),
        "30",
        "retry-after in whole seconds"
    );
    // Another token has a bucket of its own.
    let (status, _, body) = send(&app, copilot_question(Some(OTHER_OPERATE_TOKEN), None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Other routes are not limited.
    let (status, _, _) = send(
        &app,
        Request::get("/api/status")
            .header(header::AUTHORIZATION, format!("Bearer {OPERATE_TOKEN}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn refused_bodies_do_not_count_against_the_copilot_limit() {
    let app = secured(RateLimit {
        per_minute: 1,
        burst: 1,
    });
    for _ in 0..5 {
        let (status, _, body) = send(
            &app,
            Request::post("/api/copilot/ask")
                .header(header::AUTHORIZATION, format!("Bearer {OPERATE_TOKEN}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(r#"{"question": ""}"#))
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
    let (status, _, body) = send(&app, copilot_question(Some(OPERATE_TOKEN), None)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the one allowed call is still there: {body}"
    );
    let (status, _, _) = send(&app, copilot_question(Some(OPERATE_TOKEN), None)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    app.stop().await;
}

#[tokio::test]
async fn without_tokens_the_copilot_is_rate_limited_per_client_address() {
    let app = TestApp::start_with(NO_DEMO, |settings| {
        settings.auth.copilot_limit = RateLimit {
            per_minute: 1,
            burst: 2,
        };
    });
    let first = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
    let second = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 11));
    for _ in 0..2 {
        let (status, _, body) = send(&app, copilot_question(None, Some(first))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, headers, body) = send(&app, copilot_question(None, Some(first))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(headers.get(header::RETRY_AFTER).unwrap(), "60");
    let (status, _, body) = send(&app, copilot_question(None, Some(second))).await;
    assert_eq!(status, StatusCode::OK, "another address: {body}");
    app.stop().await;
}

/// A `MakeWriter` that appends every log line to a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Self;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn query_tokens_and_webhook_secrets_never_reach_the_log() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(captured.clone())
        .finish();
    // The test runs on one thread (tokio's current-thread runtime), so the driver and the router log here too.
    let _guard = tracing::subscriber::set_default(subscriber);
    let app = secured(GENEROUS);
    let wrong = "wrong-token-0f9e8d7c6b5a";
    for uri in [
        format!("/api/status?access_token={READ_TOKEN}"),
        format!("/ws?x=1&access_token={READ_TOKEN}"),
        format!("/api/status?access_token={wrong}"),
        format!("/no/such/route?access_token={READ_TOKEN}"),
    ] {
        send(&app, Request::get(uri).body(Body::empty()).unwrap()).await;
    }
    let (status, _, body) = send(
        &app,
        Request::post(format!(
            "/api/incidents/simulate?access_token={OPERATE_TOKEN}"
        ))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({"mode": "INCIDENT_OFF"}).to_string()))
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    send(
        &app,
        Request::post(format!(
            "/internal/alertmanager/webhook?secret={WEBHOOK_SECRET}"
        ))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"alerts": []}"#))
        .unwrap(),
    )
    .await;
    app.stop().await;
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        log.contains("access_token=[redacted]") && log.contains("secret=[redacted]"),
        "the request log shows the redacted URIs:\n{log}"
    );
    assert!(
        log.contains("caller=\"oncall\"") || log.contains("caller=oncall"),
        "the log names the caller:\n{log}"
    );
    for secret in [READ_TOKEN, OPERATE_TOKEN, wrong, WEBHOOK_SECRET] {
        assert!(!log.contains(secret), "{secret} is in the log:\n{log}");
    }
}

/// The `fixloop` binary with only `PATH` and `env` in its environment, output piped; its journal in memory, so no
/// test leaves a data directory behind or restores another's.
fn fixloop(args: &[&str], env: &[(&str, &str)]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_fixloop"));
    command
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_clear()
        .envs(std::env::var_os("PATH").map(|path| ("PATH", path)))
        .env("FIXLOOP_DATABASE_URL", "memory:")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

#[tokio::test]
async fn an_open_server_beyond_loopback_refuses_to_start() {
    let cases: [&[&str]; 3] = [
        &["serve", "--bind", "0.0.0.0", "--port", "0"],
        &["serve", "--bind", "::", "--port", "0"],
        &[
            "demo",
            "--bind",
            "0.0.0.0",
            "--port",
            "0",
            "--demo-port",
            "0",
        ],
    ];
    for args in cases {
        let output = tokio::time::timeout(WAIT, fixloop(args, &[]).output())
            .await
            .expect("the binary exits in time")
            .expect("the binary runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("FIXLOOP_API_TOKENS") && stderr.contains("--insecure-no-auth"),
            "{args:?}: {stderr}"
        );
        assert!(
            !String::from_utf8_lossy(&output.stdout).contains("listening"),
            "{args:?}: nothing was started"
        );
    }
}

#[tokio::test]
async fn malformed_tokens_stop_the_start_naming_the_variable_and_not_the_token() {
    for value in [
        "oncall:operate:too-short-123",
        "oncall:root:0123456789abcdef0123",
        "0123456789abcdef0123",
    ] {
        let output = tokio::time::timeout(
            WAIT,
            fixloop(&["serve", "--port", "0"], &[("FIXLOOP_API_TOKENS", value)]).output(),
        )
        .await
        .expect("the binary exits in time")
        .expect("the binary runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{value}: {stderr}");
        assert!(
            stderr.contains("invalid FIXLOOP_API_TOKENS"),
            "{value}: {stderr}"
        );
        let secret = value.rsplit(':').next().unwrap();
        assert!(!stderr.contains(secret), "{value}: {stderr}");
    }
}

#[tokio::test]
async fn a_real_process_logs_the_request_without_its_query_token() {
    let tokens = format!("dashboard:read:{READ_TOKEN}");
    let mut child = fixloop(
        &["demo", "--port", "0", "--demo-port", "0"],
        &[
            ("FIXLOOP_API_TOKENS", tokens.as_str()),
            ("RUST_LOG", "debug,hyper=info,reqwest=info"),
        ],
    )
    .spawn()
    .expect("start the fixloop binary");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut log = String::new();
    let url = tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            log.push_str(&line);
            log.push('\n');
            if let Some(rest) = line.trim_start().strip_prefix("orchestrator: ") {
                return rest.split_whitespace().next().unwrap().to_owned();
            }
        }
        panic!("fixloop demo ended before printing its URL:\n{log}");
    })
    .await
    .expect("fixloop demo starts in time");
    let client = fixloop_adapters::default_client();
    let answer = |request: reqwest::RequestBuilder| async move {
        tokio::time::timeout(WAIT, request.send())
            .await
            .expect("an answer in time")
            .expect("an answer")
            .status()
    };
    assert_eq!(
        answer(client.get(format!("{url}/api/status"))).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        answer(client.get(format!("{url}/api/status?access_token={READ_TOKEN}"))).await,
        StatusCode::OK
    );
    assert_eq!(
        answer(
            client
                .post(format!(
                    "{url}/api/incidents/simulate?access_token={READ_TOKEN}"
                ))
                .json(&json!({"mode": "INCIDENT_ON"}))
        )
        .await,
        StatusCode::FORBIDDEN
    );
    child.start_kill().expect("stop fixloop demo");
    tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.unwrap_or(None) {
            log.push_str(&line);
            log.push('\n');
        }
    })
    .await
    .expect("the output ends in time");
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        use tokio::io::AsyncReadExt;
        let _ = tokio::time::timeout(WAIT, pipe.read_to_string(&mut stderr)).await;
    }
    let _ = tokio::time::timeout(WAIT, child.wait()).await;
    log.push_str(&stderr);
    assert!(
        log.contains("/api/status?access_token=[redacted]"),
        "the request is logged, redacted:\n{log}"
    );
    assert!(!log.contains(READ_TOKEN), "the token is in the log:\n{log}");
}

#[tokio::test]
async fn a_websocket_opens_with_a_query_token_and_not_without() {
    use futures_util::StreamExt;

    let (server, address) = start_secured_server().await;
    let connect = |query: String| async move {
        let stream = tokio::time::timeout(WAIT, tokio::net::TcpStream::connect(address))
            .await
            .unwrap()
            .unwrap();
        tokio::time::timeout(
            WAIT,
            tokio_tungstenite::client_async(format!("ws://{address}/ws{query}"), stream),
        )
        .await
        .expect("the handshake ends in time")
    };
    match connect(String::new()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
        other => panic!("expected a 401 handshake, got {:?}", other.map(|_| ())),
    }
    let (mut client, _) = connect(format!("?access_token={READ_TOKEN}"))
        .await
        .expect("the handshake succeeds");
    let first = tokio::time::timeout(WAIT, client.next())
        .await
        .expect("a first message in time")
        .expect("the connection is open")
        .expect("a frame");
    let text = first.into_text().expect("a text frame");
    let envelope: Value = serde_json::from_str(text.as_str()).unwrap();
    assert_eq!(envelope["type"], "system.status");
    drop(client);
    tokio::time::timeout(WAIT, server.shutdown())
        .await
        .expect("stops in time");
}

#[tokio::test]
async fn start_refuses_an_open_non_loopback_bind_before_binding() {
    let options = fixloop_server::ServeOptions {
        bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        port: 0,
        ..fixloop_server::ServeOptions::default()
    };
    match fixloop_server::start_serve(options).await {
        Err(fixloop_server::StartError::Exposed(error)) => {
            assert_eq!(error.bind, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        }
        Err(other) => panic!("expected Exposed, got {other}"),
        Ok(_) => panic!("an open server started on 0.0.0.0"),
    }
    let options = fixloop_server::DemoOptions {
        bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        ..fixloop_server::DemoOptions::ephemeral()
    };
    assert!(matches!(
        fixloop_server::start_demo(options).await,
        Err(fixloop_server::StartError::Exposed(_))
    ));
}

/// An orchestrator with fake ports and the test tokens on an ephemeral loopback port, and its address.
async fn start_secured_server() -> (fixloop_server::RunningServer, SocketAddr) {
    use fixloop_adapters::fake::{FakeCopilot, FakePlanner, FakeSignalSource, FakeTestRunner};
    use fixloop_server::{Config, Mode, Ports, ServeOptions, start_serve};

    let ports = Ports {
        signals: Arc::new(FakeSignalSource::new()),
        planner: Arc::new(FakePlanner::new()),
        rule_planner: Arc::new(fixloop_adapters::RulePlanner),
        runner: Arc::new(FakeTestRunner::new()),
        copilot: Arc::new(FakeCopilot::new()),
        prober: Arc::new(FakeSignalSource::new()),
        context: None,
    };
    let mut config = Config::from_env_map(&std::collections::HashMap::new()).unwrap();
    config.api_tokens = tokens();
    let server = tokio::time::timeout(
        WAIT,
        start_serve(ServeOptions {
            port: 0,
            mode: Mode::Demo,
            ports: Some(ports),
            config,
            ..ServeOptions::default()
        }),
    )
    .await
    .expect("starts in time")
    .expect("the orchestrator starts");
    let address = server
        .orchestrator_url
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    (server, address)
}

fn simulate_off(token: Option<&str>, peer: Option<IpAddr>) -> Request<Body> {
    let mut request =
        Request::post("/api/incidents/simulate").header(header::CONTENT_TYPE, "application/json");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let mut request = request
        .body(Body::from(json!({"mode": "INCIDENT_OFF"}).to_string()))
        .unwrap();
    if let Some(peer) = peer {
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(peer, 40_000)));
    }
    request
}

/// A storm of operate requests (300 runs in 0.6 s once started about 200 runs) meets a token bucket per caller,
/// shared by the three routes that start work; the copilot keeps its own bucket.
#[tokio::test]
async fn operate_posts_are_rate_limited_per_caller_with_retry_after() {
    let app = TestApp::start_with(NO_DEMO, |settings| {
        settings.auth = AuthSettings {
            tokens: tokens(),
            copilot_limit: GENEROUS,
            operate_limit: RateLimit {
                per_minute: 2,
                burst: 3,
            },
        };
    });
    for attempt in 0..3 {
        let (status, _, body) = send(&app, simulate_off(Some(OPERATE_TOKEN), None)).await;
        assert_eq!(status, StatusCode::OK, "attempt {attempt}: {body}");
    }
    let run = Request::post("/api/tests/run")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {OPERATE_TOKEN}"))
        .body(Body::from(json!({"incident_id": "inc-none"}).to_string()))
        .unwrap();
    for request in [simulate_off(Some(OPERATE_TOKEN), None), run] {
        let (status, headers, body) = send(&app, request).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert_eq!(error_code(&body), codes::RATE_LIMITED);
        assert_eq!(headers.get(header::RETRY_AFTER).unwrap(), "30");
    }
    // Another token has its own bucket; the copilot and the reads are not in this one.
    let (status, _, body) = send(&app, simulate_off(Some(OTHER_OPERATE_TOKEN), None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, body) = send(&app, copilot_question(Some(OPERATE_TOKEN), None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.stop().await;
}

#[tokio::test]
async fn without_tokens_operate_posts_are_limited_per_client_address_and_refusals_are_refunded() {
    let app = TestApp::start_with(NO_DEMO, |settings| {
        settings.auth.operate_limit = RateLimit {
            per_minute: 1,
            burst: 1,
        };
    });
    let first = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
    let second = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 11));
    // A refused request started nothing, so it does not count.
    for _ in 0..3 {
        let mut request = Request::post("/api/tests/run")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(json!({"incident_id": "inc-none"}).to_string()))
            .unwrap();
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(first, 40_000)));
        let (status, _, body) = send(&app, request).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    }
    let (status, _, body) = send(&app, simulate_off(None, Some(first))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, headers, body) = send(&app, simulate_off(None, Some(first))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(headers.get(header::RETRY_AFTER).unwrap(), "60");
    let (status, _, body) = send(&app, simulate_off(None, Some(second))).await;
    assert_eq!(status, StatusCode::OK, "another address: {body}");
    app.stop().await;
}

fn with_host(mut request: Request<Body>, host: &str) -> Request<Body> {
    request
        .headers_mut()
        .insert(header::HOST, host.parse().unwrap());
    request
}

/// DNS rebinding: a page of `evil.example` re-pointed at 127.0.0.1 sends `Host: evil.example`. Regression: an open
/// server answered its `POST /api/incidents/simulate` with 200.
#[tokio::test]
async fn an_open_server_answers_only_loopback_hosts() {
    let app = TestApp::start(NO_DEMO);
    for host in [
        "evil.example",
        "evil.example:8000",
        "127.0.0.1.evil.example",
        "10.0.0.1:8000",
    ] {
        for request in [
            simulate_off(None, None),
            Request::get("/api/status").body(Body::empty()).unwrap(),
            Request::get("/healthz").body(Body::empty()).unwrap(),
        ] {
            let (status, _, body) = send(&app, with_host(request, host)).await;
            assert_eq!(status, StatusCode::MISDIRECTED_REQUEST, "{host}: {body}");
            assert_eq!(error_code(&body), codes::HOST_NOT_ALLOWED, "{host}");
        }
    }
    for host in [
        "127.0.0.1:8000",
        "127.0.0.1",
        "localhost:8000",
        "LocalHost",
        "[::1]:8000",
        "127.9.9.9:1",
        // The host of ORCH_BASE_URL (the test app's public URL).
        "orchestrator.test",
    ] {
        let (status, _, body) = send(&app, with_host(simulate_off(None, None), host)).await;
        assert_eq!(status, StatusCode::OK, "{host}: {body}");
    }
    // No Host at all (HTTP/1.0, in-process callers) is not a browser.
    let (status, _, body) = send(&app, simulate_off(None, None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.stop().await;
}

#[tokio::test]
async fn with_tokens_hosts_are_checked_once_allowed_hosts_is_set() {
    let app = secured(GENEROUS);
    let (status, _, body) = send(
        &app,
        with_host(
            simulate_off(Some(OPERATE_TOKEN), None),
            "fixloop.example.com",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "not set: any host ({body})");
    app.stop().await;
    let app = TestApp::start_with(NO_DEMO, |settings| {
        settings.auth = AuthSettings {
            tokens: tokens(),
            copilot_limit: GENEROUS,
            operate_limit: GENEROUS,
        };
        settings.allowed_hosts = vec!["fixloop.example.com".to_owned()];
    });
    for (host, expected) in [
        ("fixloop.example.com", StatusCode::OK),
        ("FIXLOOP.example.com:443", StatusCode::OK),
        ("127.0.0.1:8000", StatusCode::OK),
        ("evil.example", StatusCode::MISDIRECTED_REQUEST),
    ] {
        let (status, _, body) = send(
            &app,
            with_host(simulate_off(Some(OPERATE_TOKEN), None), host),
        )
        .await;
        assert_eq!(status, expected, "{host}: {body}");
    }
    // The host is checked before the token: a rebinding page learns nothing about the auth.
    let (status, _, body) = send(&app, with_host(simulate_off(None, None), "evil.example")).await;
    assert_eq!(status, StatusCode::MISDIRECTED_REQUEST, "{body}");
    app.stop().await;
}

/// Regression: every refused request was logged at INFO, one line each (a 10 s flood without a token wrote 343,647
/// lines). Now a bounded flood of refusals of each kind writes one line per reason, and `/metrics` counts them all.
#[tokio::test]
async fn a_flood_of_refused_requests_writes_a_line_per_reason_and_is_counted() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(captured.clone())
        .finish();
    // The test runs on one thread (tokio's current-thread runtime), so the router logs here.
    let _guard = tracing::subscriber::set_default(subscriber);
    let app = TestApp::start_with(NO_DEMO, |settings| {
        settings.auth = AuthSettings {
            tokens: tokens(),
            copilot_limit: GENEROUS,
            operate_limit: RateLimit {
                per_minute: 1,
                burst: 1,
            },
        };
        settings.allowed_hosts = vec!["fixloop.example.com".to_owned()];
    });
    const FLOOD: usize = 500;
    for _ in 0..FLOOD {
        let (status, _, _) = send(
            &app,
            Request::get("/api/status").body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _, _) = send(&app, simulate_off(Some(READ_TOKEN), None)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _, _) = send(
            &app,
            with_host(
                Request::get("/api/status").body(Body::empty()).unwrap(),
                "evil.example",
            ),
        )
        .await;
        assert_eq!(status, StatusCode::MISDIRECTED_REQUEST);
    }
    for _ in 0..FLOOD {
        send(&app, simulate_off(Some(OPERATE_TOKEN), None)).await;
    }
    let (status, _, metrics) = send(
        &app,
        Request::get("/metrics")
            .header(header::AUTHORIZATION, format!("Bearer {READ_TOKEN}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    app.stop().await;
    let metrics = metrics.as_str().unwrap_or_default().to_owned();
    for (reason, count) in [
        ("unauthorized", FLOOD),
        ("forbidden", FLOOD),
        ("host_not_allowed", FLOOD),
        ("rate_limited", FLOOD - 1),
    ] {
        let line = format!("fixloop_requests_refused_total{{reason=\"{reason}\"}} {count}\n");
        assert!(metrics.contains(&line), "{line} in:\n{metrics}");
    }
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let refused_lines = log
        .lines()
        .filter(|line| line.contains("requests refused"))
        .count();
    assert_eq!(
        refused_lines,
        4,
        "one line per reason for {} refusals:\n{log}",
        4 * FLOOD - 1
    );
    assert!(
        log.lines().count() < 50,
        "the whole log stays small:\n{log}"
    );
}
