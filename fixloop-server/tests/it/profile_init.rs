//! `fixloop profile init` against a local stub service that counts every call: the real binary reads the document
//! from the service's URL (FastAPI-like, no `servers`), discovers its Go-client metrics, tries each safe read
//! journey once and writes the ones that did not answer as expected commented out; it never calls a `GET` that
//! names a side effect nor a stream; `--offline` calls nothing but the document; `-o` refuses an existing file
//! without `--force`; `--metrics-path` is tried first. Plus the library's fetch and metrics-read bounds.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fixloop_server::profile::file::{ProfileFile, SignalsFile};
use fixloop_server::profile::init::discover::discover;
use fixloop_server::profile::init::live::read_metrics;
use fixloop_server::profile::init::{
    Findings, InitError, InitOptions, MAX_DOCUMENT_BYTES, MetricsFinding, Observed, draft,
    fetch_document, finish,
};
use fixloop_server::profile::{Profile, Secrets};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const SHOP: &str = include_str!("../fixtures/openapi/stub-shop.json");
const GO_CLIENT: &str = include_str!("../fixtures/metrics/go-client.txt");
const WAIT: Duration = Duration::from_secs(60);

/// Calls as `METHOD /path`, and the validation header each carried.
#[derive(Debug, Default, Clone)]
struct Calls(Arc<Mutex<Vec<Call>>>);

/// One call: `METHOD /path` and its validation header.
type Call = (String, Option<String>);

impl Calls {
    /// Calls of `path`, whatever the method.
    fn count(&self, path: &str) -> usize {
        self.snapshot()
            .iter()
            .filter(|(called, _)| called.split_once(' ').map(|(_, called)| called) == Some(path))
            .count()
    }

    fn snapshot(&self) -> Vec<Call> {
        self.0.lock().map(|calls| calls.clone()).unwrap_or_default()
    }
}

/// The stub service: every path answered by [`answer`], every call recorded.
struct Stub {
    url: String,
    calls: Calls,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

/// The token `/account` accepts.
const TOKEN: &str = "tok-1";

/// What the stub answers: the document, Go-client metrics (at `/metrics`, or only at `/internal/prom` when
/// `metrics_elsewhere`), 401 for `/private` and for `/account` without `Bearer tok-1`, 500 for `/broken`, 200
/// and a small JSON body for anything else.
fn answer(path: &str, authorization: Option<&str>, metrics_elsewhere: bool) -> Response {
    match path {
        "/account" if authorization != Some(&format!("Bearer {TOKEN}")) => {
            StatusCode::UNAUTHORIZED.into_response()
        }
        "/openapi.json" => ([("content-type", "application/json")], SHOP).into_response(),
        "/metrics" if !metrics_elsewhere => GO_CLIENT.into_response(),
        "/internal/prom" if metrics_elsewhere => GO_CLIENT.into_response(),
        "/metrics" | "/actuator/prometheus" | "/prometheus" | "/internal/prom" => {
            StatusCode::NOT_FOUND.into_response()
        }
        "/private" => StatusCode::UNAUTHORIZED.into_response(),
        "/broken" => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        "/orders" => (StatusCode::CREATED, "{}").into_response(),
        _ => ([("content-type", "application/json")], "{\"ok\":true}").into_response(),
    }
}

impl Stub {
    async fn start(metrics_elsewhere: bool) -> Self {
        let calls = Calls::default();
        let app = Router::new()
            .fallback(
                move |State(calls): State<Calls>, request: Request| async move {
                    let path = request.uri().path().to_owned();
                    let call = format!("{} {path}", request.method());
                    let tag = request
                        .headers()
                        .get("x-fixloop-validation")
                        .and_then(|value| value.to_str().ok())
                        .map(str::to_owned);
                    if let Ok(mut calls) = calls.0.lock() {
                        calls.push((call, tag));
                    }
                    let authorization = request
                        .headers()
                        .get("authorization")
                        .and_then(|value| value.to_str().ok());
                    answer(&path, authorization, metrics_elsewhere)
                },
            )
            .with_state(calls.clone());
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
        Self {
            url,
            calls,
            stop,
            task,
        }
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

/// What one run of the binary did.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `fixloop ARGS` in the crate's directory with only `PATH` in its environment.
async fn fixloop(args: &[&str]) -> Run {
    fixloop_with(args, &[]).await
}

/// [`fixloop`] with `env` added to the environment.
async fn fixloop_with(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_fixloop"));
    command
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_clear()
        .envs(std::env::var_os("PATH").map(|path| ("PATH", path)))
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command.spawn().expect("start the fixloop binary");
    let output = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("fixloop {args:?} did not finish within {WAIT:?}"))
        .expect("wait for the fixloop binary");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A path under the temporary directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn path_for(name: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("fixloop-init-{}-{name}.toml", std::process::id()));
        let _ = std::fs::remove_file(&path);
        Self(path)
    }

    fn as_str(&self) -> &str {
        self.0.to_str().expect("a utf-8 temporary path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The paths of the stub document that must never be called: side effects and streams.
const NEVER_CALLED: &[&str] = &[
    "/apps.uninstall",
    "/auth.revoke",
    "/logout",
    "/users.setPresence",
    "/events",
    "/api/v1/watch/pods",
    "/pods",
    "/feed",
];

fn assert_never_called(calls: &Calls) {
    for path in NEVER_CALLED {
        assert_eq!(
            calls.count(path),
            0,
            "{path} was called: {:?}",
            calls.snapshot()
        );
    }
}

#[tokio::test]
async fn init_reads_the_live_service_and_never_calls_an_unsafe_or_streaming_endpoint() {
    let stub = Stub::start(false).await;
    let output = TempFile::path_for("live");
    let document = format!("{}/openapi.json", stub.url);
    let run = fixloop(&[
        "profile",
        "init",
        "--from-openapi",
        &document,
        "-o",
        output.as_str(),
    ])
    .await;
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert!(run.stdout.is_empty(), "{run:#?}");
    let written = std::fs::read_to_string(&output.0).expect("init wrote the file");

    // No `servers`: the base URL is the document's origin.
    let file: ProfileFile = toml::from_str(&written).expect("TOML");
    let service = &file.service[0];
    assert_eq!(service.base_url, stub.url);

    // The Go client's conventions, read from the exposition.
    let SignalsFile::Scrape(scrape) = &service.signals else {
        panic!("scrape expected:\n{written}");
    };
    assert_eq!(
        (
            scrape.metrics_path.as_str(),
            scrape.requests_metric.as_str(),
            scrape.status_label.as_str(),
            scrape.route_label.as_str()
        ),
        ("/metrics", "http_requests_total", "code", "handler")
    );
    assert!(written.contains("# Read from "), "{written}");

    // Journeys that did not answer as expected are written commented out with the observed answer.
    let active: Vec<&str> = service.journeys.iter().map(|j| j.path.as_str()).collect();
    assert!(
        !active.contains(&"/private") && !active.contains(&"/broken"),
        "{active:?}"
    );
    assert!(
        written.contains("# Inactive: answered 401 without credentials; set a token"),
        "{written}"
    );
    assert!(written.contains("# Inactive: answered 500."), "{written}");
    assert!(
        written.contains("# Inactive: its operation id names a side effect (`uninstall`)"),
        "{written}"
    );
    assert!(
        written.contains("# Tried by init: answered 200, as expected."),
        "{written}"
    );
    assert!(
        run.stderr.contains("is commented out: answered 500"),
        "{run:#?}"
    );

    // Each safe GET was tried once, with the validation header; nothing unsafe or streaming was called.
    assert_eq!(stub.calls.count("/health"), 1);
    assert_eq!(stub.calls.count("/private"), 1);
    assert!(
        stub.calls
            .snapshot()
            .iter()
            .filter(|(call, _)| call == "GET /health")
            .all(|(_, tag)| tag.as_deref() == Some("profile-init")),
        "{:?}",
        stub.calls.snapshot()
    );
    assert!(
        stub.calls
            .snapshot()
            .iter()
            .all(|(call, _)| call.starts_with("GET ")),
        "only GETs are tried: {:?}",
        stub.calls.snapshot()
    );
    assert_never_called(&stub.calls);

    // The written profile passes the check as it is, once its secret is set.
    let check = fixloop_with(
        &["profile", "check", output.as_str()],
        &[("FIXLOOP_BEARER_TOKEN", TOKEN)],
    )
    .await;
    assert_eq!(check.code, Some(0), "{check:#?}\n{written}");
    stub.stop().await;
}

#[tokio::test]
async fn secured_journeys_are_tried_with_the_credentials_set_and_not_tried_without() {
    let stub = Stub::start(false).await;
    let document = format!("{}/openapi.json", stub.url);
    let args = ["profile", "init", "--from-openapi", document.as_str()];

    let unset = fixloop(&args).await;
    assert_eq!(unset.code, Some(0), "{unset:#?}");
    assert!(
        unset
            .stdout
            .contains("# Not tried by init: FIXLOOP_BEARER_TOKEN is not set.\n[[service.journeys]]\nid = \"account-get\""),
        "{}",
        unset.stdout
    );
    let calls_without_token = stub.calls.count("/account");
    assert_eq!(
        calls_without_token, 1,
        "only the refusal without credentials was tried"
    );

    let set = fixloop_with(&args, &[("FIXLOOP_BEARER_TOKEN", TOKEN)]).await;
    assert_eq!(set.code, Some(0), "{set:#?}");
    assert!(
        set.stdout
            .contains("# Tried by init: answered 200, as expected.\n[[service.journeys]]\nid = \"account-get\""),
        "{}",
        set.stdout
    );
    assert!(!set.stdout.contains(TOKEN) && !set.stderr.contains(TOKEN));

    let wrong = fixloop_with(&args, &[("FIXLOOP_BEARER_TOKEN", "expired")]).await;
    assert_eq!(wrong.code, Some(0), "{wrong:#?}");
    assert!(
        wrong.stdout.contains(
            "# Inactive: answered 401 with the credentials set at init: check the token."
        ),
        "{}",
        wrong.stdout
    );
    assert_never_called(&stub.calls);
    stub.stop().await;
}

#[tokio::test]
async fn offline_init_calls_nothing_but_the_document_and_writes_synthetic_signals() {
    let stub = Stub::start(false).await;
    let document = format!("{}/openapi.json", stub.url);
    let run = fixloop(&["profile", "init", "--from-openapi", &document, "--offline"]).await;
    assert_eq!(run.code, Some(0), "{run:#?}");
    let profile = Profile::parse(&run.stdout, "stdout", Secrets::Unresolved)
        .unwrap_or_else(|error| panic!("{error}\n{run:#?}"));
    assert_eq!(profile.services.len(), 1);
    assert!(
        run.stdout.contains("source = \"synthetic\""),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("--offline"), "{}", run.stdout);
    let paths: Vec<String> = stub
        .calls
        .snapshot()
        .into_iter()
        .map(|(path, _)| path)
        .collect();
    assert_eq!(paths, ["GET /openapi.json"]);
    stub.stop().await;
}

#[tokio::test]
async fn a_service_that_does_not_answer_keeps_its_journeys_not_tried_and_synthetic_signals() {
    let base_url = stub_closed_url();
    let run = fixloop(&[
        "profile",
        "init",
        "--from-openapi",
        "tests/fixtures/openapi/stub-shop.json",
        "--base-url",
        &base_url,
    ])
    .await;
    assert_eq!(run.code, Some(0), "{run:#?}");
    let profile = Profile::parse(&run.stdout, "stdout", Secrets::Unresolved)
        .unwrap_or_else(|error| panic!("{error}\n{run:#?}"));
    assert_eq!(
        profile.services[0].spec.journeys.len(),
        10,
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("# Not tried by init: the service answered no trial call ("),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("because no usable metrics endpoint was found (/metrics: no answer"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains("signals: synthetic probes, because no usable metrics endpoint"),
        "{run:#?}"
    );
}

#[tokio::test]
async fn metrics_path_option_is_tried_first() {
    let stub = Stub::start(true).await;
    let document = format!("{}/openapi.json", stub.url);
    let run = fixloop(&[
        "profile",
        "init",
        "--from-openapi",
        &document,
        "--metrics-path",
        "internal/prom",
    ])
    .await;
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert!(
        run.stdout.contains("metrics_path = \"/internal/prom\""),
        "{}",
        run.stdout
    );
    assert_eq!(
        stub.calls.count("/metrics"),
        0,
        "the option's path answered first"
    );
    assert_never_called(&stub.calls);
    stub.stop().await;
}

#[tokio::test]
async fn output_is_never_overwritten_without_force() {
    let output = TempFile::path_for("exists");
    std::fs::write(&output.0, "# mine\n").expect("write a file");
    let args = [
        "profile",
        "init",
        "--from-openapi",
        "tests/fixtures/openapi/petstore.yaml",
        "--offline",
        "-o",
        output.as_str(),
    ];
    let refused = fixloop(&args).await;
    assert_eq!(refused.code, Some(1), "{refused:#?}");
    assert!(
        refused
            .stderr
            .contains("exists: pass --force to overwrite it"),
        "{refused:#?}"
    );
    assert_eq!(
        std::fs::read_to_string(&output.0).expect("still there"),
        "# mine\n"
    );

    let mut forced = args.to_vec();
    forced.push("--force");
    let run = fixloop(&forced).await;
    assert_eq!(run.code, Some(0), "{run:#?}");
    let written = std::fs::read_to_string(&output.0).expect("overwritten");
    assert!(
        written.starts_with("# Generated by `fixloop profile init`"),
        "{written}"
    );
}

#[tokio::test]
async fn fetch_refuses_large_documents_error_statuses_and_other_schemes() {
    let huge = Router::new().route(
        "/docs/huge.yaml",
        axum::routing::get(|| async { "#".repeat(MAX_DOCUMENT_BYTES + 1) }),
    );
    let listener = tokio::time::timeout(WAIT, tokio::net::TcpListener::bind("127.0.0.1:0"))
        .await
        .expect("bind in time")
        .expect("bind a loopback port");
    let url = format!("http://{}", listener.local_addr().expect("a local address"));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, huge)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    let http = fixloop_adapters::default_client();
    let fetch = |url: String| {
        let http = http.clone();
        async move {
            tokio::time::timeout(WAIT, fetch_document(&http, &url))
                .await
                .expect("fetch_document ends in time")
        }
    };
    let error = fetch(format!("{url}/docs/huge.yaml")).await.unwrap_err();
    assert!(
        matches!(error, InitError::TooLarge { limit, .. } if limit == MAX_DOCUMENT_BYTES),
        "{error:?}"
    );
    let error = fetch(format!("{url}/docs/missing.yaml")).await.unwrap_err();
    assert!(
        matches!(error, InitError::FetchStatus { status: 404, .. }),
        "{error:?}"
    );
    for other in [
        "file:///etc/passwd",
        "ftp://example.com/openapi.yaml",
        "openapi.yaml",
    ] {
        let error = fetch(other.to_owned()).await.unwrap_err();
        assert!(
            matches!(error, InitError::UnsupportedUrl { .. }),
            "{other}: {error:?}"
        );
    }
    let _ = stop.send(());
    let _ = tokio::time::timeout(WAIT, task).await;
}

#[tokio::test]
async fn metrics_read_says_why_each_path_failed() {
    let stub = Stub::start(true).await;
    let http = fixloop_adapters::default_client();
    let paths = vec!["/openapi.json".to_owned(), "/metrics".to_owned()];
    let finding = tokio::time::timeout(WAIT, read_metrics(&http, &stub.url, &paths))
        .await
        .expect("read in time");
    let MetricsFinding::NotFound { reason } = finding else {
        panic!("nothing usable expected, got {finding:?}");
    };
    assert!(
        reason.contains("/openapi.json: not a Prometheus text exposition"),
        "{reason}"
    );
    assert!(reason.contains("/metrics: answered 404"), "{reason}");
    stub.stop().await;
    let closed = tokio::time::timeout(WAIT, read_metrics(&http, &stub_closed_url(), &paths))
        .await
        .expect("read in time");
    assert!(
        matches!(&closed, MetricsFinding::NotFound { reason } if reason.contains("no answer")),
        "{closed:?}"
    );
}

/// A loopback URL nothing listens on.
fn stub_closed_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let port = listener.local_addr().expect("a local address").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// One corpus document: its file, where it is said to come from, and the `--base-url` given, if any.
struct Corpus {
    file: &'static str,
    source: &'static str,
    base_url: Option<&'static str>,
    /// The exposition the live service is said to serve, and at which path, for a live golden profile.
    live: Option<(&'static str, &'static str)>,
}

const fn offline(file: &'static str, source: &'static str) -> Corpus {
    Corpus {
        file,
        source,
        base_url: None,
        live: None,
    }
}

/// The corpus: each document written for these tests, one case of what `init` must read.
const CORPUS: &[Corpus] = &[
    offline("petstore.yaml", "petstore.yaml"),
    offline("inventory.json", "inventory.json"),
    offline("cyclic.yaml", "cyclic.yaml"),
    offline("stub-shop.json", "http://shop.example.test/openapi.json"),
    offline(
        "swagger2-alertmanager.yaml",
        "http://alertmanager.example.test:9093/api/v2/swagger.yaml",
    ),
    offline("swagger2-kinto.yaml", "swagger2-kinto.yaml"),
    offline("swagger2-kubernetes.json", "swagger2-kubernetes.json"),
    offline("swagger2-slack.json", "swagger2-slack.json"),
    offline("swagger2-postgrest.json", "http://0.0.0.0:3000/"),
    offline(
        "openapi30-fastapi-no-servers.json",
        "http://notes.example.test:8000/openapi.json",
    ),
    Corpus {
        file: "openapi30-fastapi-no-servers.json",
        source: "openapi30-fastapi-no-servers.json",
        base_url: Some("http://127.0.0.1:8000"),
        live: Some(("/metrics", include_str!("../fixtures/metrics/fastapi.txt"))),
    },
    offline(
        "openapi31-fastapi.json",
        "https://library.example.test/openapi.json",
    ),
    offline(
        "openapi30-relative-server.yaml",
        "https://shop.example.test/docs/openapi.yaml",
    ),
    offline(
        "openapi30-relative-server.yaml",
        "openapi30-relative-server.yaml",
    ),
    offline(
        "openapi30-server-variables.yaml",
        "openapi30-server-variables.yaml",
    ),
    offline("openapi30-path-servers.yaml", "openapi30-path-servers.yaml"),
    offline("openapi30-big-integers.yaml", "openapi30-big-integers.yaml"),
    offline("openapi30-unsafe-gets.yaml", "openapi30-unsafe-gets.yaml"),
    offline("openapi30-streams.yaml", "openapi30-streams.yaml"),
    offline("openapi30-secured.yaml", "openapi30-secured.yaml"),
    Corpus {
        file: "openapi30-go-service.yaml",
        source: "openapi30-go-service.yaml",
        base_url: None,
        live: Some(("/metrics", GO_CLIENT)),
    },
    Corpus {
        file: "openapi30-spring.yaml",
        source: "openapi30-spring.yaml",
        base_url: None,
        live: Some((
            "/actuator/prometheus",
            include_str!("../fixtures/metrics/micrometer.txt"),
        )),
    },
    Corpus {
        file: "openapi31-otel-service.yaml",
        source: "openapi31-otel-service.yaml",
        base_url: None,
        live: Some(("/metrics", include_str!("../fixtures/metrics/otel.txt"))),
    },
    offline("openapi30-yaml-anchors.yaml", "openapi30-yaml-anchors.yaml"),
    offline("openapi30-too-few.yaml", "openapi30-too-few.yaml"),
];

/// The profile `init` writes for a corpus document (or the error it gives), as the golden text. A live case
/// reads its exposition with the discovery `init` runs, and its trial calls all pass but the last read journey's,
/// which answers 500.
fn corpus_profile(case: &Corpus) -> String {
    let path = format!(
        "{}/tests/fixtures/openapi/{}",
        env!("CARGO_MANIFEST_DIR"),
        case.file
    );
    let text = std::fs::read_to_string(&path).expect("read a corpus document");
    let options = InitOptions {
        base_url: case.base_url.map(str::to_owned),
        source_name: case.source.to_owned(),
        metrics_path: None,
    };
    let result = draft(&text, &options).and_then(|draft| {
        let findings = match case.live {
            None => Findings::offline(),
            Some((metrics_path, exposition)) => {
                let probes = draft.probes();
                let last = probes.len().saturating_sub(1);
                Findings {
                    metrics: MetricsFinding::Found {
                        path: metrics_path.to_owned(),
                        discovery: discover(exposition)
                            .expect("the exposition has a request counter"),
                    },
                    probes: probes
                        .into_iter()
                        .enumerate()
                        .map(|(index, probe)| {
                            let observed = if index == last {
                                Observed::Failed { status: 500 }
                            } else {
                                Observed::Passed { status: 200 }
                            };
                            (probe.journey, observed)
                        })
                        .collect(),
                }
            }
        };
        finish(draft, &findings)
    });
    match result {
        Ok(output) => {
            let checked = Profile::parse(&output.toml, case.file, Secrets::Unresolved);
            assert!(checked.is_ok(), "{checked:?}\n{}", output.toml);
            output.toml
        }
        Err(error) => format!("ERROR: {error}\n"),
    }
}

#[test]
fn corpus_documents_make_the_golden_profiles() {
    assert!(CORPUS.len() >= 20, "a corpus of at least 20 documents");
    let mut names = std::collections::BTreeSet::new();
    for case in CORPUS {
        let stem = case
            .file
            .rsplit_once('.')
            .map_or(case.file, |(stem, _)| stem);
        let mut name = format!("init_corpus__{stem}");
        if case.source.contains("://") {
            name.push_str("__fetched");
        }
        if case.live.is_some() {
            name.push_str("__live");
        }
        assert!(names.insert(name.clone()), "{name} twice");
        insta::assert_snapshot!(name, corpus_profile(case));
    }
}
