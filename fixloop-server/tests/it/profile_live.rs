//! `fixloop profile check --live` through the real binary, against a local stub serving the Prometheus Go client's
//! exposition (`http_requests_total{code,handler,method}`): a profile with the service's own labels reads every
//! signal and exits 0; one with guessed labels (`status`, `route`) exits 1 naming each blind signal and the labels
//! the family does carry; a metrics endpoint that does not answer is blind too; PromQL against a stub Prometheus
//! whose metric lacks the label the error ratio matches on is blind, naming it. And `serve` with guessed labels
//! logs one WARN line per blind signal and starts anyway.

use std::process::Stdio;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use tokio::task::JoinHandle;

/// The longest one run of the binary may take.
const WAIT: Duration = Duration::from_secs(30);

/// The Go client's exposition, with a few 503s.
const EXPOSITION: &str = "# HELP http_requests_total Total number of HTTP requests.\n\
# TYPE http_requests_total counter\n\
http_requests_total{code=\"200\",handler=\"/api/items\",method=\"get\"} 120\n\
http_requests_total{code=\"503\",handler=\"/api/items\",method=\"get\"} 7\n\
# TYPE http_request_duration_seconds histogram\n\
http_request_duration_seconds_bucket{handler=\"/api/items\",le=\"0.1\"} 127\n\
http_request_duration_seconds_bucket{handler=\"/api/items\",le=\"+Inf\"} 127\n\
http_request_duration_seconds_sum{handler=\"/api/items\"} 3.2\n\
http_request_duration_seconds_count{handler=\"/api/items\"} 127\n";

/// A stub service answering `/metrics` with [`EXPOSITION`] on an ephemeral loopback port.
async fn stub() -> (String, JoinHandle<()>) {
    let app = Router::new().route("/metrics", get(|| async { EXPOSITION }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, task)
}

/// A one-service profile for a service at `url` whose scrape reads `signals` (TOML lines).
fn profile(url: &str, signals: &str) -> String {
    let mut text = format!(
        "[[service]]\nname = \"items\"\nbase_url = \"{url}\"\n\n[service.signals]\nsource = \"scrape\"\n\
         requests_metric = \"http_requests_total\"\nduration_metric = \"http_request_duration_seconds\"\n{signals}\n"
    );
    for id in ["a", "b", "c", "d", "e"] {
        text.push_str(&format!(
            "\n[[service.journeys]]\nid = \"{id}\"\nname = \"Items {id}\"\npath = \"/api/items\"\npass_criteria = \"status == 200\"\n"
        ));
    }
    text
}

/// What one run of the binary did.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `fixloop profile check --live` on `text` (in a temporary file) with an empty environment.
async fn check_live(name: &str, text: &str) -> Run {
    let path =
        std::env::temp_dir().join(format!("fixloop-live-{}-{name}.toml", std::process::id()));
    std::fs::write(&path, text).expect("write the profile");
    let file = path.to_str().expect("a utf-8 path").to_owned();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_fixloop"));
    command
        .args(["profile", "check", "--live", &file])
        .env_clear()
        .envs(std::env::var_os("PATH").map(|path| ("PATH", path)))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command.spawn().expect("start the fixloop binary");
    let output = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .expect("the check finishes in time")
        .expect("wait for the fixloop binary");
    let _ = std::fs::remove_file(&path);
    Run {
        code: output.status.code(),
        stdout: String::from_utf8(output.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(output.stderr).expect("utf-8 stderr"),
    }
}

#[tokio::test]
async fn live_check_of_a_profile_with_the_services_own_labels_exits_0() {
    let (url, task) = stub().await;
    let run = check_live(
        "healthy",
        &profile(
            &url,
            "status_label = \"code\"\nroute_label = \"handler\"\nmethod_label = \"method\"",
        ),
    )
    .await;
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert!(
        run.stdout
            .contains(&format!("items: scrape of {url}/metrics")),
        "{run:#?}"
    );
    assert!(
        run.stdout
            .contains("error rate: 2 series of http_requests_total; labels: code present -> ok"),
        "{run:#?}"
    );
    assert!(run.stdout.contains("every signal reads series"), "{run:#?}");
    assert!(!run.stdout.contains("BLIND"), "{run:#?}");
    task.abort();
}

#[tokio::test]
async fn live_check_of_guessed_labels_exits_1_naming_each_blind_signal_and_the_labels_present() {
    let (url, task) = stub().await;
    // The defaults: status_label = "status", route_label = "route".
    let run = check_live("guessed", &profile(&url, "")).await;
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(
        run.stderr.contains(
            "items: error rate: label `status` is on no series of `http_requests_total`; its labels are code, handler, method"
        ),
        "{run:#?}"
    );
    assert!(
        run.stderr
            .contains("items: top error: label `route` is on no series of `http_requests_total`"),
        "{run:#?}"
    );
    assert!(run.stderr.contains("2 blind signals"), "{run:#?}");
    assert!(
        run.stdout.contains("labels: status ABSENT -> BLIND"),
        "{run:#?}"
    );
    task.abort();
}

#[tokio::test]
async fn live_check_of_a_metrics_endpoint_that_does_not_answer_exits_1() {
    let (url, task) = stub().await;
    let run = check_live(
        "unreachable",
        &profile(
            &url,
            "metrics_path = \"/nowhere\"\nstatus_label = \"code\"\nroute_label = \"handler\"",
        ),
    )
    .await;
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(
        run.stderr
            .contains("items: every signal: the source does not answer"),
        "{run:#?}"
    );
    task.abort();
}

#[tokio::test]
async fn serve_logs_one_warn_line_per_blind_signal_and_starts_anyway() {
    use tokio::io::{AsyncBufReadExt, BufReader};

    let (url, task) = stub().await;
    let data = tempfile::tempdir().expect("a data directory");
    let path = data.path().join("guessed.toml");
    std::fs::write(&path, profile(&url, "")).expect("write the profile");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fixloop"))
        .args(["serve", "--port", "0", "--profile"])
        .arg(&path)
        .env_clear()
        .envs(std::env::var_os("PATH").map(|path| ("PATH", path)))
        .env("FIXLOOP_DATA_DIR", data.path())
        .env("RUST_LOG", "warn")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the fixloop binary");
    // The log is on standard error.
    let stderr = child.stderr.take().expect("piped stderr");
    let mut lines = BufReader::new(stderr).lines();
    let mut blind = Vec::new();
    while blind.len() < 2 {
        let line = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .expect("a log line in time")
            .expect("read the log")
            .unwrap_or_else(|| panic!("serve stopped; blind lines so far: {blind:#?}"));
        if line.contains("BLIND signal") {
            assert!(line.contains("WARN"), "{line}");
            blind.push(line);
        }
    }
    assert!(
        blind[0].contains(
            "items: error rate: label `status` is on no series of `http_requests_total`; its labels are code, handler, method"
        ),
        "{blind:#?}"
    );
    assert!(
        blind[1].contains("items: top error: label `route` is on no series"),
        "{blind:#?}"
    );
    // It started anyway: still running.
    assert!(
        child.try_wait().expect("poll the child").is_none(),
        "serve keeps running"
    );
    let _ = child.kill().await;
    task.abort();
}

/// A stub Prometheus that knows `http_requests_total{code,handler,method}` only: `/api/v1/labels` lists its labels,
/// a query answers one sample unless it matches on `status` (no such label: an empty vector).
async fn stub_prometheus() -> (String, JoinHandle<()>) {
    use axum::extract::RawQuery;
    use axum::response::Json;
    use serde_json::{Value, json};

    async fn query(RawQuery(raw): RawQuery) -> Json<Value> {
        let raw = raw.unwrap_or_default();
        let result = if raw.contains("status") {
            json!([])
        } else {
            json!([{"metric": {}, "value": [1_700_000_000.0, "7"]}])
        };
        Json(json!({"status": "success", "data": {"resultType": "vector", "result": result}}))
    }
    async fn labels(RawQuery(raw): RawQuery) -> Json<Value> {
        let data = if raw.unwrap_or_default().ends_with("=http_requests_total") {
            json!(["__name__", "code", "handler", "method"])
        } else {
            json!([])
        };
        Json(json!({"status": "success", "data": data}))
    }
    let app = Router::new()
        .route("/api/v1/query", get(query))
        .route("/api/v1/labels", get(labels));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, task)
}

/// A one-service profile reading Prometheus at `url`, the 5xx matched on `status_label`.
fn prometheus_profile(url: &str, status_label: &str) -> String {
    let signals = format!(
        "[service.signals]\nsource = \"prometheus\"\nurl = \"{url}\"\n\
         error_ratio_query = 'sum(rate(http_requests_total{{{status_label}=~\"5..\"}}{{range}})) / sum(rate(http_requests_total{{range}}))'\n\
         p95_ms_query = 'histogram_quantile(0.95, sum by (le) (rate(http_requests_total{{range}}))) * 1000'\n\
         requests_query = 'sum(increase(http_requests_total{{range}}))'\n"
    );
    let scrape = profile("http://127.0.0.1:9", "");
    let start = scrape.find("[service.signals]").expect("signals");
    let end = scrape.find("\n[[service.journeys]]").expect("journeys");
    format!("{}{signals}{}", &scrape[..start], &scrape[end..])
}

#[tokio::test]
async fn live_check_of_prometheus_queries_names_a_label_the_metric_lacks() {
    let (url, task) = stub_prometheus().await;
    let run = check_live("prometheus-ok", &prometheus_profile(&url, "code")).await;
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert!(
        run.stdout.contains(&format!("items: Prometheus at {url}")),
        "{run:#?}"
    );

    let run = check_live("prometheus-guessed", &prometheus_profile(&url, "status")).await;
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(
        run.stderr.contains(
            "items: error rate: label `status` is on no series of `http_requests_total`; its labels are code, handler, method; the query returns no series"
        ),
        "{run:#?}"
    );
    assert!(run.stderr.contains("1 blind signal:"), "{run:#?}");
    task.abort();
}
