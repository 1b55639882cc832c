//! `fixloop profile init`'s network helpers against a loopback server: fetching the OpenAPI document (size cap,
//! status, schemes), probing `/metrics`, and a fetched document with a relative server URL becoming a profile.

use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use fixloop_server::profile::init::{
    InitError, InitOptions, MAX_DOCUMENT_BYTES, fetch_document, init_from_openapi, probe_metrics,
};
use fixloop_server::profile::{Profile, Secrets};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const CYCLIC: &str = include_str!("../fixtures/openapi/cyclic.yaml");
const WAIT: Duration = Duration::from_secs(20);

/// A loopback server with the routes the tests need, stopped by [`Served::stop`].
struct Served {
    url: String,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Served {
    async fn start() -> Self {
        let document = CYCLIC.replace("http://localhost:9000", "/api");
        let app = Router::new()
            .route("/docs/openapi.yaml", get(move || async move { document }))
            .route(
                "/docs/huge.yaml",
                get(|| async { "#".repeat(MAX_DOCUMENT_BYTES + 1) }),
            )
            .route(
                "/api/metrics",
                get(|| async {
                    "# HELP http_requests_total Requests.\n# TYPE http_requests_total counter\n\
                     http_requests_total{route=\"/trees\",status=\"200\"} 7\n"
                }),
            )
            .route(
                "/html/metrics",
                get(|| async { "<html><body>metrics</body></html>" }),
            )
            .route(
                "/broken/metrics",
                get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "up 1\n") }),
            );
        let listener = tokio::time::timeout(WAIT, tokio::net::TcpListener::bind("127.0.0.1:0"))
            .await
            .expect("bind in time")
            .expect("bind a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("a local address"));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
        });
        Self { url, stop, task }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("the server stops in time")
            .expect("the server task does not panic")
            .expect("the server runs without error");
    }
}

async fn fetch(http: &reqwest::Client, url: &str) -> Result<String, InitError> {
    tokio::time::timeout(WAIT, fetch_document(http, url))
        .await
        .expect("fetch_document ends in time")
}

async fn probe(http: &reqwest::Client, base_url: &str) -> bool {
    tokio::time::timeout(WAIT, probe_metrics(http, base_url))
        .await
        .expect("probe_metrics ends in time")
}

#[tokio::test]
async fn fetched_document_with_relative_server_becomes_a_profile_with_scraped_metrics() {
    let served = Served::start().await;
    let http = reqwest::Client::new();
    let source = format!("{}/docs/openapi.yaml", served.url);
    let document = fetch(&http, &source)
        .await
        .expect("the document is fetched");
    assert!(document.starts_with("# An OpenAPI 3.0 document"));

    let base_url = format!("{}/api", served.url);
    assert!(
        probe(&http, &base_url).await,
        "the exposition is recognised"
    );
    let options = InitOptions {
        base_url: None,
        metrics_available: true,
        source_name: source,
    };
    let output = init_from_openapi(&document, &options).expect("a profile is generated");
    let profile = Profile::parse(&output.toml, "init", Secrets::Unresolved)
        .expect("the generated profile is valid");
    let service = &profile.services[0];
    assert_eq!(service.spec.base_url, base_url);
    assert!(output.toml.contains("source = \"scrape\""));
    served.stop().await;
}

#[tokio::test]
async fn fetch_refuses_large_documents_error_statuses_and_other_schemes() {
    let served = Served::start().await;
    let http = reqwest::Client::new();

    let error = fetch(&http, &format!("{}/docs/huge.yaml", served.url))
        .await
        .unwrap_err();
    assert!(
        matches!(error, InitError::TooLarge { limit, .. } if limit == MAX_DOCUMENT_BYTES),
        "{error:?}"
    );
    let error = fetch(&http, &format!("{}/docs/missing.yaml", served.url))
        .await
        .unwrap_err();
    assert!(
        matches!(error, InitError::FetchStatus { status: 404, .. }),
        "{error:?}"
    );
    for url in [
        "file:///etc/passwd",
        "ftp://example.com/openapi.yaml",
        "openapi.yaml",
    ] {
        let error = fetch(&http, url).await.unwrap_err();
        assert!(
            matches!(error, InitError::UnsupportedUrl { .. }),
            "{url}: {error:?}"
        );
    }
    served.stop().await;
}

#[tokio::test]
async fn probe_rejects_html_error_statuses_and_missing_endpoints() {
    let served = Served::start().await;
    let http = reqwest::Client::new();
    for base in ["html", "broken", "nothing"] {
        let base_url = format!("{}/{base}/", served.url);
        assert!(!probe(&http, &base_url).await, "{base_url}");
    }
    served.stop().await;
}
