//! The dashboard as HTTP sees it: `GET /` and its assets with the right content types, revalidated caching
//! (`no-cache` plus an `ETag`, 304 on a match), `nosniff`, and a Content-Security-Policy that forbids inline
//! script; the page loads only its own modules, which never turn text into markup; and the recovery blocker the
//! page polls in `GET /api/services`. The browser test (`fixloop-server/dashboard/test/browser.mjs`, run by
//! `.ci/run`) checks the rendered page itself.

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use tower::ServiceExt;

use crate::support::{TestApp, WAIT, error_code};

const ASSETS: [(&str, &str); 6] = [
    ("/", "text/html; charset=utf-8"),
    ("/dashboard/style.css", "text/css; charset=utf-8"),
    ("/dashboard/app.js", "text/javascript; charset=utf-8"),
    ("/dashboard/model.js", "text/javascript; charset=utf-8"),
    ("/dashboard/view.js", "text/javascript; charset=utf-8"),
    ("/dashboard/icon.svg", "image/svg+xml"),
];

async fn fetch(app: &TestApp, request: Request<Body>) -> (StatusCode, HeaderMap, String) {
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
    (
        status,
        headers,
        String::from_utf8(bytes.to_vec()).expect("utf-8"),
    )
}

async fn get(app: &TestApp, path: &str) -> (StatusCode, HeaderMap, String) {
    fetch(app, Request::get(path).body(Body::empty()).unwrap()).await
}

fn header(headers: &HeaderMap, name: header::HeaderName) -> &str {
    headers
        .get(&name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

#[tokio::test]
async fn page_and_assets_have_their_content_type_revalidated_caching_nosniff_and_a_strict_csp() {
    let app = TestApp::start("http://127.0.0.1:9");
    for (path, content_type) in ASSETS {
        let (status, headers, body) = get(&app, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(!body.is_empty(), "{path} has a body");
        assert_eq!(
            header(&headers, header::CONTENT_TYPE),
            content_type,
            "{path}"
        );
        assert_eq!(
            header(&headers, header::CACHE_CONTROL),
            "no-cache",
            "{path}"
        );
        assert!(
            header(&headers, header::ETAG).starts_with('"'),
            "{path} has a strong ETag"
        );
        assert_eq!(
            header(&headers, header::X_CONTENT_TYPE_OPTIONS),
            "nosniff",
            "{path}"
        );
        let policy = header(&headers, header::CONTENT_SECURITY_POLICY);
        let directives: Vec<&str> = policy.split(';').map(str::trim).collect();
        assert!(directives.contains(&"default-src 'none'"), "{policy}");
        assert!(
            directives.contains(&"script-src 'self'"),
            "scripts from this origin only, no inline script or eval: {policy}"
        );
        assert!(!policy.contains("unsafe-inline") && !policy.contains("unsafe-eval"));
        assert!(directives.contains(&"frame-ancestors 'none'"), "{policy}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_matching_etag_is_answered_304_and_another_gets_the_file() {
    let app = TestApp::start("http://127.0.0.1:9");
    for (path, _) in ASSETS {
        let (_, headers, body) = get(&app, path).await;
        let etag = header(&headers, header::ETAG).to_owned();
        let revalidate = |tag: &str| {
            Request::get(path)
                .header(header::IF_NONE_MATCH, tag)
                .body(Body::empty())
                .unwrap()
        };
        let (status, headers, empty) = fetch(&app, revalidate(&etag)).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED, "{path}");
        assert!(empty.is_empty(), "{path}: a 304 has no body");
        assert_eq!(header(&headers, header::ETAG), etag);
        assert_eq!(header(&headers, header::CACHE_CONTROL), "no-cache");
        let (status, _, again) = fetch(&app, revalidate("\"0000000000000000\"")).await;
        assert_eq!(status, StatusCode::OK, "{path}: a stale tag gets the file");
        assert_eq!(again, body);
    }
    app.stop().await;
}

#[tokio::test]
async fn unknown_dashboard_files_are_the_contracts_404() {
    let app = TestApp::start("http://127.0.0.1:9");
    for path in [
        "/dashboard/missing.js",
        "/dashboard/index.html",
        "/dashboard/..%2Fapi.rs",
    ] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(error_code(&body), "route_not_found", "{path}");
    }
    app.stop().await;
}

#[tokio::test]
async fn the_page_runs_only_its_own_modules_which_never_turn_text_into_markup() {
    let app = TestApp::start("http://127.0.0.1:9");
    let (_, _, page) = get(&app, "/").await;
    let scripts: Vec<&str> = page
        .match_indices("<script")
        .map(|(at, _)| &page[at..])
        .collect();
    assert_eq!(scripts.len(), 1, "one script tag");
    assert!(
        scripts[0].starts_with(r#"<script type="module" src="/dashboard/app.js"></script>"#),
        "the script is the app module, not inline code"
    );
    for (path, _) in &ASSETS[2..5] {
        let (_, _, code) = get(&app, path).await;
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
        ] {
            assert!(!code.contains(sink), "{path} uses {sink}");
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn service_state_carries_the_recovery_blocker_while_an_incident_is_open() {
    let app = TestApp::start("http://127.0.0.1:9");
    let (status, healthy) = app.get("/api/services/demo-checkout").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        healthy.get("recovery_blocker").is_none(),
        "absent when HEALTHY: {healthy}"
    );
    let incident = app.open_incident_with_plan().await;
    let (status, open) = app.get("/api/services/demo-checkout").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(open["current_incident"]["incident_id"], incident.as_str());
    let blocker = open["recovery_blocker"]
        .as_str()
        .unwrap_or_else(|| panic!("a blocker while the incident is open: {open}"));
    // The engine's words depend on how far the fake run got (in progress, failed, passed): any of them names it.
    assert!(
        blocker.contains("run") || blocker.contains("plan"),
        "it names what holds the incident: {blocker}"
    );
    let (_, list) = app.get("/api/services").await;
    let listed = list[0]["recovery_blocker"].as_str().unwrap_or_default();
    assert!(!listed.is_empty(), "the list carries it too: {list}");
    app.stop().await;
}
