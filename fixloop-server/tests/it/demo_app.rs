//! The demo service in-process: endpoints, the bug switch, validation, and the metrics exposition (checked with the
//! adapters' own exposition parser, the one the scrape signal source uses).

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use fixloop_adapters::{VALIDATION_HEADER, parse_exposition};
use fixloop_server::demo_app::{self, DemoState};
use serde_json::{Value, json};
use tower::ServiceExt;

async fn call(app: &Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = tokio::time::timeout(Duration::from_secs(10), app.clone().oneshot(request))
        .await
        .expect("in time")
        .expect("infallible");
    let status = response.status();
    let bytes = tokio::time::timeout(
        Duration::from_secs(10),
        axum::body::to_bytes(response.into_body(), usize::MAX),
    )
    .await
    .expect("in time")
    .unwrap();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, value)
}

fn checkout(body: &str) -> Request<Body> {
    Request::post("/checkout")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn health_and_catalog_answer() {
    let app = demo_app::router(DemoState::new());
    assert_eq!(
        call(&app, get("/health")).await,
        (StatusCode::OK, json!({"status": "ok"}))
    );
    let (status, body) = call(&app, get("/catalog")).await;
    assert_eq!(status, StatusCode::OK);
    let products = body["products"].as_array().unwrap();
    assert_eq!(products.len(), 3);
    assert_eq!(products[0]["sku"], "sku-1");
    assert_eq!(products[0]["price_cents"], 1299);
}

#[tokio::test]
async fn valid_checkout_is_confirmed() {
    let app = demo_app::router(DemoState::new());
    let (status, body) = call(&app, checkout(r#"{"sku":"sku-1","quantity":2}"#)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "confirmed");
    assert_eq!(body["sku"], "sku-1");
    assert_eq!(body["quantity"], 2);
    assert_eq!(body["total_cents"], 2598);
    assert!(body["order_id"].as_str().unwrap().starts_with("ord-"));
}

#[tokio::test]
async fn invalid_checkouts_are_client_errors() {
    let app = demo_app::router(DemoState::new());
    let (status, body) = call(&app, checkout("{\"sku\":")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_order");
    for invalid in [
        r#"{"quantity":1}"#,
        r#"{"sku":"sku-1","quantity":0}"#,
        r#"{"sku":"sku-1","quantity":101}"#,
        r#"{"sku":"sku-1","quantity":1.5}"#,
        r#"{"sku":"sku-9","quantity":1}"#,
        r#"{"sku":1,"quantity":1}"#,
        r#"{"sku":"sku-1"}"#,
        "[]",
    ] {
        let (status, body) = call(&app, checkout(invalid)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{invalid}");
        assert_eq!(body["error"], "invalid_order", "{invalid}");
        assert!(body["message"].is_string());
    }
}

#[tokio::test]
async fn bug_on_makes_every_checkout_fail_with_500() {
    let state = DemoState::new();
    let app = demo_app::router(state.clone());
    let (status, body) = call(
        &app,
        Request::post("/admin/bug")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(r#"{"enabled":true}"#))
            .unwrap(),
    )
    .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"enabled": true})));
    for body in [
        r#"{"sku":"sku-1","quantity":1}"#,
        r#"{"sku":"sku-1","quantity":0}"#,
        "garbage",
    ] {
        let (status, response) = call(&app, checkout(body)).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
        assert_eq!(
            response,
            json!({"error": "internal_error", "message": "payment provider timeout"})
        );
    }
    assert_eq!(
        call(&app, get("/health")).await.0,
        StatusCode::OK,
        "health stays up"
    );
    state.set_bug(false);
    assert_eq!(
        call(&app, checkout(r#"{"sku":"sku-1","quantity":1}"#))
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn admin_bug_sets_rather_than_toggles() {
    let app = demo_app::router(DemoState::new());
    let set = |enabled: bool| {
        Request::post("/admin/bug")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(json!({"enabled": enabled}).to_string()))
            .unwrap()
    };
    assert_eq!(
        call(&app, get("/admin/bug")).await.1,
        json!({"enabled": false})
    );
    call(&app, set(true)).await;
    call(&app, set(true)).await;
    assert_eq!(
        call(&app, get("/admin/bug")).await.1,
        json!({"enabled": true})
    );
    call(&app, set(false)).await;
    assert_eq!(
        call(&app, get("/admin/bug")).await.1,
        json!({"enabled": false})
    );
    let (status, _) = call(
        &app,
        Request::post("/admin/bug")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(r#"{"enabled":"yes"}"#))
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn auth_me_needs_the_demo_token() {
    let app = demo_app::router(DemoState::new());
    let with = |value: &str| {
        Request::get("/auth/me")
            .header(header::AUTHORIZATION, value)
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(
        call(&app, with("Bearer demo-token")).await,
        (StatusCode::OK, json!({"user": "demo"}))
    );
    for request in [
        get("/auth/me"),
        with("Bearer nope"),
        with("demo-token"),
        with("Basic ZGVtbzpkZW1v"),
    ] {
        let (status, body) = call(&app, request).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"], "unauthorized");
    }
}

#[tokio::test]
async fn metrics_label_validation_traffic_and_use_route_templates() {
    let state = DemoState::new();
    state.set_bug(true);
    let app = demo_app::router(state);
    call(&app, checkout(r#"{"sku":"sku-1","quantity":1}"#)).await;
    call(
        &app,
        Request::post("/checkout")
            .header(header::CONTENT_TYPE, "application/json")
            .header(VALIDATION_HEADER, "run-1")
            .body(Body::from(r#"{"sku":"sku-1","quantity":1}"#))
            .unwrap(),
    )
    .await;
    call(&app, get("/no/such/path/12345")).await;
    call(&app, get("/health")).await;
    let (status, body) = call(&app, get("/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    let text = body.as_str().unwrap();
    let samples = parse_exposition(text);
    let requests = |source: &str, route: &str, status: &str| {
        samples
            .iter()
            .find(|sample| {
                sample.name == "demo_http_requests_total"
                    && sample.label("source") == Some(source)
                    && sample.label("route") == Some(route)
                    && sample.label("status") == Some(status)
            })
            .map(|sample| sample.value)
    };
    assert_eq!(requests("user", "/checkout", "500"), Some(1.0));
    assert_eq!(requests("fixloop", "/checkout", "500"), Some(1.0));
    assert_eq!(requests("user", "unmatched", "404"), Some(1.0));
    assert_eq!(requests("user", "/health", "200"), Some(1.0));
    assert!(
        !text.contains("/no/such/path"),
        "raw paths never become labels"
    );
    assert!(
        !text.contains("route=\"/metrics\""),
        "scrapes are not counted"
    );
    let errors: Vec<_> = samples
        .iter()
        .filter(|sample| {
            sample.name == "demo_http_errors_total" && sample.label("route") == Some("/checkout")
        })
        .collect();
    assert_eq!(errors.len(), 1, "validation traffic is not in errors_total");
    assert_eq!(errors[0].label("error"), Some("payment provider timeout"));
    assert_eq!(errors[0].value, 1.0);
    let buckets: Vec<_> = samples
        .iter()
        .filter(|sample| {
            sample.name == "demo_http_request_duration_seconds_bucket"
                && sample.label("route") == Some("/checkout")
                && sample.label("source") == Some("user")
        })
        .collect();
    assert_eq!(buckets.len(), 11, "10 bounds and +Inf");
    assert_eq!(buckets.last().unwrap().label("le"), Some("+Inf"));
    assert!(
        buckets
            .windows(2)
            .all(|pair| pair[0].value <= pair[1].value),
        "cumulative"
    );
    assert!(
        samples
            .iter()
            .any(|sample| sample.name == "demo_http_request_duration_seconds_count")
    );
    assert!(
        samples
            .iter()
            .any(|sample| sample.name == "demo_http_request_duration_seconds_sum")
    );
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
        assert!(series.ends_with('}') && series.contains('{'), "{line}");
    }
}

#[tokio::test]
async fn traffic_generator_sends_a_realistic_mix_and_stops() {
    let state = DemoState::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let mut server_stopped = stop.subscribe();
    // Every request the service handles is reported on a channel, so the test waits for requests, not for time.
    let (seen, mut requests) = tokio::sync::mpsc::unbounded_channel::<()>();
    let app = demo_app::router(state.clone()).layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            let _ = seen.send(());
            next.run(request)
        },
    ));
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = server_stopped.wait_for(|stop| *stop).await;
            })
            .await
    });
    let mut config = demo_app::traffic::TrafficConfig::new(url);
    config.requests_per_second = 200;
    let traffic = tokio::spawn(demo_app::traffic::run(
        fixloop_adapters::default_client(),
        config,
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        },
    ));
    // The mix has 20 requests; wait for a full round plus one, so the 20th has been recorded.
    for _ in 0..21 {
        tokio::time::timeout(Duration::from_secs(20), requests.recv())
            .await
            .expect("the generator keeps sending")
            .expect("the server is up");
    }
    let _ = stop.send(true);
    tokio::time::timeout(Duration::from_secs(10), traffic)
        .await
        .unwrap()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let snapshot = state.metrics().snapshot();
    let routes: std::collections::BTreeSet<_> =
        snapshot.requests.keys().map(|key| key.0.clone()).collect();
    for route in ["/health", "/catalog", "/checkout", "/auth/me"] {
        assert!(routes.contains(route), "{route} in {routes:?}");
    }
    assert!(
        snapshot
            .requests
            .keys()
            .any(|key| key.0 == "/checkout" && key.2 == 422),
        "an invalid checkout"
    );
}

fn set_flag(name: &str, body: &str, token: Option<&str>) -> Request<Body> {
    let mut request = Request::post(format!("/admin/flags/{name}"))
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    request.body(Body::from(body.to_owned())).unwrap()
}

#[tokio::test]
async fn the_payment_provider_flag_starts_on_and_is_listed() {
    let app = demo_app::router(DemoState::new());
    let (status, body) = call(&app, get("/admin/flags")).await;
    assert_eq!(status, StatusCode::OK);
    let flags = body["flags"].as_array().unwrap();
    assert_eq!(flags.len(), 1);
    assert_eq!(flags[0]["name"], demo_app::flags::PAYMENT_PROVIDER);
    assert_eq!(flags[0]["enabled"], true);
    assert!(
        flags[0]["description"]
            .as_str()
            .unwrap()
            .contains("payment")
    );
    let (status, body) = call(&app, checkout(r#"{"sku":"sku-1","quantity":1}"#)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["payment"], "charged");
}

#[tokio::test]
async fn turning_the_payment_provider_flag_off_heals_checkout_while_the_bug_is_on() {
    let state = DemoState::new();
    state.set_bug(true);
    let app = demo_app::router(state.clone());
    let (status, _) = call(&app, checkout(r#"{"sku":"sku-1","quantity":1}"#)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "the bug is on");

    let (status, body) = call(
        &app,
        set_flag("payment_provider", r#"{"enabled": false}"#, None),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({"name": "payment_provider", "enabled": false})
        )
    );
    assert_eq!(state.flag_enabled("payment_provider"), Some(false));
    assert!(state.bug_enabled(), "the bug switch is untouched");
    let (status, body) = call(&app, checkout(r#"{"sku":"sku-2","quantity":2}"#)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "checkout is healthy with the bug on"
    );
    assert_eq!(body["status"], "confirmed");
    assert_eq!(body["payment"], "deferred");
    assert_eq!(body["total_cents"], 4900);
    let (_, listed) = call(&app, get("/admin/flags")).await;
    assert_eq!(listed["flags"][0]["enabled"], false);

    // Setting, not toggling: the same request twice leaves it off; on again brings the bug back.
    let (status, _) = call(
        &app,
        set_flag("payment_provider", r#"{"enabled": false}"#, None),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(state.flag_enabled("payment_provider"), Some(false));
    let (status, _) = call(
        &app,
        set_flag("payment_provider", r#"{"enabled": true}"#, None),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = call(&app, checkout(r#"{"sku":"sku-1","quantity":1}"#)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["message"], demo_app::BUG_MESSAGE);
}

#[tokio::test]
async fn a_bad_flag_request_is_a_client_error_and_changes_nothing() {
    let state = DemoState::new();
    let app = demo_app::router(state.clone());
    let (status, body) = call(&app, set_flag("dark_mode", r#"{"enabled": false}"#, None)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "unknown_flag");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("payment_provider")
    );
    let (status, body) = call(&app, set_flag("payment_provider", "{\"enabled\":", None)).await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_request"))
    );
    for invalid in [r#"{"enabled": "no"}"#, r#"{}"#, "[]"] {
        let (status, body) = call(&app, set_flag("payment_provider", invalid, None)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{invalid}");
        assert_eq!(body["error"], "invalid_request");
    }
    assert_eq!(state.flag_enabled("payment_provider"), Some(true));
}

#[tokio::test]
async fn with_api_tokens_a_flag_is_switched_only_with_an_operate_token() {
    use fixloop_adapters::Secret;
    use fixloop_server::http::auth::{ApiToken, ApiTokens, Role};
    let tokens = ApiTokens::new(vec![
        ApiToken {
            name: "dashboard".to_owned(),
            role: Role::Read,
            token: Secret::from("read-token-0123456789abcdef"),
        },
        ApiToken {
            name: "oncall".to_owned(),
            role: Role::Operate,
            token: Secret::from("operate-token-0123456789abcdef"),
        },
    ]);
    let state = DemoState::with_admin_tokens(tokens);
    let app = demo_app::router(state.clone());
    for token in [None, Some("read-token-0123456789abcdef"), Some("wrong")] {
        let (status, body) = call(
            &app,
            set_flag("payment_provider", r#"{"enabled": false}"#, token),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(body["error"], "unauthorized");
    }
    assert_eq!(state.flag_enabled("payment_provider"), Some(true));
    let (status, _) = call(&app, get("/admin/flags")).await;
    assert_eq!(status, StatusCode::OK, "reading the flags needs no token");
    let (status, _) = call(
        &app,
        set_flag(
            "payment_provider",
            r#"{"enabled": false}"#,
            Some("operate-token-0123456789abcdef"),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(state.flag_enabled("payment_provider"), Some(false));
}

#[tokio::test]
async fn restarting_the_shop_clears_the_fault_and_turns_every_flag_on() {
    let state = DemoState::new();
    state.set_bug(true);
    state.set_flag("payment_provider", false);
    let app = demo_app::router(state.clone());
    let restart = || Request::post("/admin/restart").body(Body::empty()).unwrap();
    let (status, body) = call(&app, restart()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!state.bug_enabled(), "the fault is cleared");
    assert_eq!(state.flag_enabled("payment_provider"), Some(true));
    let (status, body) = call(&app, checkout(r#"{"sku":"sku-1","quantity":1}"#)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["payment"], "charged");

    // Guarded like the other admin endpoints.
    use fixloop_server::http::auth::{ApiToken, ApiTokens, Role};
    let tokens = ApiTokens::new(vec![ApiToken {
        name: "oncall".to_owned(),
        role: Role::Operate,
        token: fixloop_adapters::Secret::from("operate-token-0123456789abcdef"),
    }]);
    let guarded = DemoState::with_admin_tokens(tokens);
    guarded.set_bug(true);
    let (status, _) = call(&demo_app::router(guarded.clone()), restart()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(guarded.bug_enabled());
}
