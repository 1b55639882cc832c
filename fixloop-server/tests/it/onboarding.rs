//! Onboarding the documented way, on services nobody in the project wrote a profile for: a catalog service
//! (`tests/fixtures/services/conventions.py`, Python's standard library) in each metrics convention of
//! `shared/reference/metrics-conventions.md` — the Prometheus Go client, prometheus-fastapi-instrumentator,
//! Micrometer/Spring and OpenTelemetry — each serving a different kind of API document (Swagger 2.0, OpenAPI 3.1
//! without `servers`, OpenAPI 3.0 with an absolute server, OpenAPI 3.0 YAML with a relative server).
//!
//! Each story runs the real binary as a user would, from the document's URL alone: `profile init` → `profile check
//! --live` → `serve` with its defaults. Healthy: no incident. Broken: an incident whose plan tests the service's
//! own routes. Healed: RECOVERED. Hung (SIGSTOP): an incident again; resumed (SIGCONT): RECOVERED. The service
//! counts every call to its side-effecting GETs and its streams: FixLoop makes none.

use std::process::Stdio;
use std::time::Duration;

use fixloop_contract::{IncidentState, WsMessage};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};
use tokio_tungstenite::connect_async;

use crate::e2e::{Socket, next_message};

/// One story ends within this.
const STORY: Duration = Duration::from_secs(300);
/// The catalog's operator token (its secured route answers 401 without it).
const ADMIN_TOKEN: &str = "catalog-admin";
/// One step (a command, a start, a verdict) ends within this.
const STEP: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_go_client_service_with_a_swagger_2_document_is_onboarded_broken_healed_and_hung() {
    story("go").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fastapi_service_whose_document_has_no_servers_is_onboarded_broken_healed_and_hung() {
    story("fastapi").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spring_service_without_a_total_counter_is_onboarded_broken_healed_and_hung() {
    story("spring").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opentelemetry_service_with_a_relative_server_is_onboarded_broken_healed_and_hung() {
    story("otel").await;
}

async fn story(convention: &str) {
    tokio::time::timeout(STORY, async {
        let service = Service::start(convention).await;
        let profile = Scratch::new(convention);

        // `profile init` from the document's URL: a profile of the service's own routes, nothing unsafe active.
        let init = fixloop(&[
            "profile",
            "init",
            "--from-openapi",
            &service.document_url,
            "-o",
            profile.as_str(),
        ])
        .await;
        assert_eq!(init.code, Some(0), "profile init: {init:#?}");
        let text = std::fs::read_to_string(&profile.0).expect("the profile was written");
        for line in text.lines().filter(|line| !line.trim_start().starts_with('#')) {
            for unsafe_part in ["apps.uninstall", "/sessions/logout", "/events", "watch="] {
                assert!(
                    !line.contains(unsafe_part),
                    "{convention}: an active line names {unsafe_part}: {line}\n{text}"
                );
            }
        }

        // `profile check --live`: every signal reads series with the configured labels.
        let check = fixloop(&["profile", "check", "--live", profile.as_str()]).await;
        assert_eq!(check.code, Some(0), "{convention}: check --live: {check:#?}\n{text}");

        // `serve` with its defaults.
        let server = Server::start(profile.as_str()).await;
        let mut socket = server.connect().await;
        let mut seen = Vec::new();

        // Healthy: five good reads of its signals and no incident.
        server.reads_at_least(5).await;
        drain(&mut socket, &mut seen).await;
        assert!(
            !seen
                .iter()
                .any(|message| matches!(message, WsMessage::IncidentCreated(_))),
            "{convention}: a false incident while healthy: {seen:?}\n{text}"
        );

        // Broken: an incident whose plan tests the service's own routes.
        service.set_broken(true).await;
        let created = wait_for(&mut socket, &mut seen, |message| {
            matches!(message, WsMessage::IncidentCreated(_))
        })
        .await;
        let WsMessage::IncidentCreated(card) = created else {
            unreachable!()
        };
        let plan = wait_for(&mut socket, &mut seen, |message| {
            matches!(message, WsMessage::PlanGenerated(plan) if plan.incident_id == card.incident_id)
        })
        .await;
        let WsMessage::PlanGenerated(plan) = plan else {
            unreachable!()
        };
        assert_eq!(plan.plan.items.len(), 5, "{plan:?}");
        assert!(
            plan.plan
                .items
                .iter()
                .all(|item| item.target.url.starts_with(&service.base_url)),
            "{convention}: every test targets the service: {plan:?}"
        );
        assert!(
            plan.plan
                .items
                .iter()
                .any(|item| ["/items", "/orders"].iter().any(|route| item.target.url.contains(route))),
            "{convention}: a broken catalog route is tested: {plan:?}"
        );

        // Healed: RECOVERED.
        service.set_broken(false).await;
        wait_for(&mut socket, &mut seen, |message| {
            is_state(message, IncidentState::Recovered)
        })
        .await;

        // Hung: reads and probes time out, and an incident is open again (the same one, reopened in its soak).
        service.signal("-STOP");
        wait_for(&mut socket, &mut seen, |message| {
            is_state(message, IncidentState::Validating)
                || is_state(message, IncidentState::IncidentActive)
        })
        .await;
        service.signal("-CONT");
        wait_for(&mut socket, &mut seen, |message| {
            is_state(message, IncidentState::Recovered)
        })
        .await;

        // No side effect and no stream was ever called, by init, check, probes, plans or runs.
        let calls = service.calls().await;
        assert_eq!(calls["unsafe"], 0, "{convention}: {calls}");
        assert_eq!(calls["streaming"], 0, "{convention}: {calls}");
        server.stop().await;
    })
    .await
    .unwrap_or_else(|_| panic!("the {convention} story completes within {STORY:?}"));
}

fn is_state(message: &WsMessage, state: IncidentState) -> bool {
    matches!(message, WsMessage::SystemStatus(status) if status.status == state)
}

/// The next message `wanted` accepts, within [`STEP`]; every message is kept in `seen`.
async fn wait_for(
    socket: &mut Socket,
    seen: &mut Vec<WsMessage>,
    wanted: impl Fn(&WsMessage) -> bool,
) -> WsMessage {
    tokio::time::timeout(STEP, async {
        loop {
            let message = next_message(socket).await;
            seen.push(message.clone());
            if wanted(&message) {
                return message;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no wanted message within {STEP:?}; seen: {seen:#?}"))
}

/// Every message already queued on `socket`.
async fn drain(socket: &mut Socket, seen: &mut Vec<WsMessage>) {
    while let Ok(message) =
        tokio::time::timeout(Duration::from_millis(200), next_message(socket)).await
    {
        seen.push(message);
    }
}

/// The catalog service in one convention, as a child process.
struct Service {
    child: Child,
    document_url: String,
    base_url: String,
    http: reqwest::Client,
}

impl Service {
    async fn start(convention: &str) -> Self {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/services/conventions.py"
        );
        let mut child = Command::new("python3")
            .args([script, convention])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start python3");
        let stdout = child.stdout.take().expect("piped stdout");
        let line = tokio::time::timeout(STEP, BufReader::new(stdout).lines().next_line())
            .await
            .expect("the service starts in time")
            .expect("read its stdout")
            .expect("it prints its URL");
        let document_url = line
            .strip_prefix("listening on ")
            .expect("listening on URL")
            .to_owned();
        let base_url = document_url
            .splitn(4, '/')
            .take(3)
            .collect::<Vec<_>>()
            .join("/");
        Self {
            child,
            document_url,
            base_url,
            http: fixloop_adapters::client_builder()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("client"),
        }
    }

    async fn set_broken(&self, broken: bool) {
        let response = self
            .http
            .post(format!("{}/__admin/break", self.base_url))
            .body(if broken { "on" } else { "off" })
            .send()
            .await
            .expect("the break switch answers");
        assert!(response.status().is_success());
    }

    async fn calls(&self) -> serde_json::Value {
        self.http
            .get(format!("{}/__admin/calls", self.base_url))
            .send()
            .await
            .expect("the counters answer")
            .json()
            .await
            .expect("JSON counters")
    }

    /// Sends `signal` (`-STOP`, `-CONT`) to the service's process.
    fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("the service runs").to_string();
        let status = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} {pid}");
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        // A stopped process must be resumed to die promptly from its kill.
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-CONT", &pid.to_string()])
                .status();
        }
    }
}

/// `fixloop serve --profile FILE --port 0`, its journal in memory.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    async fn start(profile: &str) -> Self {
        // Its log goes where the test's own output goes (shown when the test fails).
        let mut child = binary(&["serve", "--port", "0", "--profile", profile])
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start fixloop serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let url = tokio::time::timeout(STEP, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.strip_prefix("FixLoop orchestrator: ") {
                    return rest.split_whitespace().next().expect("a URL").to_owned();
                }
            }
            panic!("fixloop serve ended before printing its URL");
        })
        .await
        .expect("fixloop serve starts in time");
        // The rest of its standard output is read, so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self { child, url }
    }

    async fn connect(&self) -> Socket {
        let url = format!("{}/ws", self.url.replacen("http://", "ws://", 1));
        tokio::time::timeout(STEP, connect_async(&url))
            .await
            .expect("connect in time")
            .expect("handshake")
            .0
    }

    /// Polls `/metrics` until `count` signal reads succeeded.
    async fn reads_at_least(&self, count: u64) {
        let deadline = tokio::time::Instant::now() + STEP;
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tick.tick().await;
            let metrics = fixloop_adapters::default_client()
                .get(format!("{}/metrics", self.url))
                .send()
                .await
                .expect("metrics answer")
                .text()
                .await
                .expect("metrics body");
            let ok: u64 = metrics
                .lines()
                .filter(|line| {
                    line.starts_with("fixloop_signal_reads_total") && line.contains("\"ok\"")
                })
                .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
                .sum();
            if ok >= count {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "fewer than {count} good signal reads within {STEP:?}:\n{metrics}"
            );
        }
    }

    async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(STEP, self.child.wait()).await;
    }
}

/// What one run of the binary did.
#[derive(Debug)]
#[allow(dead_code)] // read by the assertion messages' Debug output
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

async fn fixloop(args: &[&str]) -> Run {
    let child = binary(args).spawn().expect("start the fixloop binary");
    let output = tokio::time::timeout(STEP, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("fixloop {args:?} did not finish within {STEP:?}"))
        .expect("wait for the fixloop binary");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The `fixloop` binary with only `PATH` in its environment and its journal in memory.
fn binary(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_fixloop"));
    command
        .args(args)
        .env_clear()
        .envs(std::env::var_os("PATH").map(|path| ("PATH", path)))
        .env("FIXLOOP_DATABASE_URL", "memory:")
        // The secrets `profile init` asks for (one per security scheme of the document), set as its output says.
        .env("FIXLOOP_BEARERAUTH_TOKEN", ADMIN_TOKEN)
        .env("FIXLOOP_BEARERAUTH_KEY", format!("Bearer {ADMIN_TOKEN}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// A profile path under the temporary directory, removed when dropped.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "fixloop-onboarding-{}-{name}.toml",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&path);
        Self(path)
    }

    fn as_str(&self) -> &str {
        self.0.to_str().expect("a utf-8 temporary path")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
