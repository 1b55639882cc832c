//! Durability through the real binary: `fixloop serve` is killed with SIGKILL in the middle of a validation run,
//! restarted on the same data directory, and must come back with the same incident, the old run readable by id and
//! marked as interrupted, and the loop going on to RECOVERED; then a clean SIGTERM and a second restart keep it all.

use std::path::{Path, PathBuf};
use std::time::Duration;

use fixloop_contract::{IncidentCard, IncidentState, RunStatus, SystemStatus, TestRun, WsMessage};
use futures_util::StreamExt as _;
use tokio::process::{Child, Command};
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;

use crate::inventory::{self, Inventory, TOKEN};

/// Bound of the whole story.
const STORY: Duration = Duration::from_secs(120);
/// Bound of one step (a request, a start, an expected event).
const STEP: Duration = Duration::from_secs(30);

pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One `fixloop serve` process.
pub(crate) struct Fixloop {
    pub(crate) child: Child,
    pub(crate) url: String,
    log: PathBuf,
}

impl Fixloop {
    /// Starts `fixloop serve --profile <profile>` on a free loopback port with `data` as its data directory, and
    /// waits until it answers `/healthz`.
    pub(crate) async fn start(profile: &Path, data: &Path, log: PathBuf) -> Self {
        Self::start_with(profile, ("FIXLOOP_DATA_DIR", data.as_os_str()), log).await
    }

    /// [`Fixloop::start`] with the journal where `store` (a variable and its value) says: `FIXLOOP_DATA_DIR` or
    /// `FIXLOOP_DATABASE_URL`.
    pub(crate) async fn start_with(
        profile: &Path,
        store: (&str, &std::ffi::OsStr),
        log: PathBuf,
    ) -> Self {
        Self::start_env(profile, &[store], log).await
    }

    /// [`Fixloop::start`] with the variables of `env` (the journal's among them).
    pub(crate) async fn start_env(
        profile: &Path,
        env: &[(&str, &std::ffi::OsStr)],
        log: PathBuf,
    ) -> Self {
        let port = free_port();
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_fixloop"))
            .args(["serve", "--port", &port.to_string(), "--profile"])
            .arg(profile)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("INVENTORY_TOKEN", TOKEN)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            // The tracing log goes to standard output, errors to standard error: both into one file.
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .expect("the binary starts");
        let url = format!("http://127.0.0.1:{port}");
        let server = Self { child, url, log };
        tokio::time::timeout(STEP, async {
            let client = fixloop_adapters::default_client();
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            loop {
                tick.tick().await;
                if client
                    .get(format!("{}/healthz", server.url))
                    .send()
                    .await
                    .is_ok_and(|response| response.status().is_success())
                {
                    break;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("fixloop serve answers /healthz; its log:\n{}", server.log()));
        server
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub(crate) async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        let response = tokio::time::timeout(
            STEP,
            fixloop_adapters::default_client()
                .get(format!("{}{path}", self.url))
                .send(),
        )
        .await
        .expect("answer in time")
        .expect("request sent");
        assert!(
            response.status().is_success(),
            "{path}: {}; log:\n{}",
            response.status(),
            self.log()
        );
        response.json().await.expect("a JSON body")
    }

    pub(crate) async fn connect(&self) -> Socket {
        let url = format!("{}/ws", self.url.replacen("http://", "ws://", 1));
        tokio::time::timeout(STEP, connect_async(&url))
            .await
            .expect("connect in time")
            .expect("handshake")
            .0
    }

    /// SIGKILL: no shutdown code runs.
    pub(crate) async fn kill(mut self) {
        self.child.start_kill().expect("kill");
        let _ = tokio::time::timeout(STEP, self.child.wait()).await;
    }

    /// SIGTERM, and the exit status must be success (a graceful shutdown).
    pub(crate) async fn terminate(mut self) {
        let pid = self.child.id().expect("running").to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .expect("kill -TERM runs");
        assert!(status.success());
        let exit = tokio::time::timeout(STEP, self.child.wait())
            .await
            .expect("exits in time")
            .expect("exit status");
        assert!(
            exit.success(),
            "a clean exit on SIGTERM: {exit}; log:\n{}",
            self.log()
        );
        assert!(
            self.log().contains("driver stopped"),
            "the driver stopped cleanly:\n{}",
            self.log()
        );
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

/// The next message on `socket` that `wanted` accepts.
pub(crate) async fn wait_for(
    socket: &mut Socket,
    wanted: impl Fn(&WsMessage) -> bool,
) -> WsMessage {
    tokio::time::timeout(STEP, async {
        loop {
            let frame = socket
                .next()
                .await
                .expect("the socket stays open")
                .expect("a frame");
            if let Message::Text(text) = frame {
                let envelope: fixloop_contract::WsEnvelope =
                    serde_json::from_str(&text).expect("an envelope");
                if wanted(&envelope.message) {
                    return envelope.message;
                }
            }
        }
    })
    .await
    .expect("the expected event arrives in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_comes_back_with_its_incident_and_the_loop_reaches_recovered() {
    tokio::time::timeout(STORY, async {
        let inventory = Inventory::start().await;
        let traffic = inventory.traffic();
        let dir = tempfile::tempdir().expect("temp dir");
        let profile = dir.path().join("inventory.toml");
        std::fs::write(&profile, inventory::profile("inventory", &inventory.url, inventory::SCRAPE))
            .expect("profile");
        let data = dir.path().join("data");

        // An incident, and a run held in flight on GET /v2/me.
        inventory.set_hold(true);
        let first = Fixloop::start(&profile, &data, dir.path().join("first.log")).await;
        let mut socket = first.connect().await;
        inventory.set_failing(true);
        let WsMessage::IncidentCreated(card) =
            wait_for(&mut socket, |m| matches!(m, WsMessage::IncidentCreated(_))).await
        else {
            unreachable!()
        };
        let WsMessage::TestsUpdated(run) = wait_for(&mut socket, |m| {
            matches!(m, WsMessage::TestsUpdated(run) if run.status == RunStatus::Running)
        })
        .await
        else {
            unreachable!()
        };
        tokio::time::timeout(STEP, inventory.held())
            .await
            .expect("the run reaches the held route");
        first.kill().await;

        // Back on the same data directory: the same incident, the old run readable and interrupted.
        let second = Fixloop::start(&profile, &data, dir.path().join("second.log")).await;
        let current: Option<IncidentCard> = second.get("/api/incidents/current").await;
        assert_eq!(
            current.map(|card| card.incident_id),
            Some(card.incident_id.clone()),
            "the open incident survives; log:\n{}",
            second.log()
        );
        let old: TestRun = second.get(&format!("/api/tests/runs/{}", run.run_id)).await;
        assert_eq!(old.status, RunStatus::Failed);
        assert!(
            old.tests
                .iter()
                .any(|test| test.details.as_deref() == Some("run failed: interrupted by restart")),
            "the interrupted run says so: {old:?}"
        );
        assert!(
            second.log().contains("engine restored from the journal"),
            "{}",
            second.log()
        );

        // The fix: the loop goes on to RECOVERED with the same incident.
        let mut socket = second.connect().await;
        inventory.set_hold(false);
        inventory.set_failing(false);
        let recovered = wait_for(&mut socket, |m| {
            matches!(m, WsMessage::SystemStatus(status) if status.status == IncidentState::Recovered)
        })
        .await;
        let WsMessage::SystemStatus(status) = recovered else {
            unreachable!()
        };
        assert_eq!(status.active_incident_id.as_deref(), Some(card.incident_id.as_str()));

        // A clean SIGTERM, and a third start: still RECOVERED, the same incident, both runs readable.
        second.terminate().await;
        let third = Fixloop::start(&profile, &data, dir.path().join("third.log")).await;
        let status: SystemStatus = third.get("/api/status").await;
        assert_eq!(status.status, IncidentState::Recovered, "log:\n{}", third.log());
        assert_eq!(status.active_incident_id.as_deref(), Some(card.incident_id.as_str()));
        let old: TestRun = third.get(&format!("/api/tests/runs/{}", run.run_id)).await;
        assert_eq!(old.status, RunStatus::Failed);
        third.terminate().await;

        traffic.abort();
        inventory.kill().await;
    })
    .await
    .expect("the story completes in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_data_file_stops_the_start_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    std::fs::write(data.join("fixloop.sqlite3"), vec![0x42; 8192]).expect("garbage");
    let output = tokio::time::timeout(
        STEP,
        Command::new(env!("CARGO_BIN_EXE_fixloop"))
            .args(["serve", "--port", &free_port().to_string()])
            .env("FIXLOOP_DATA_DIR", &data)
            .output(),
    )
    .await
    .expect("exits in time")
    .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("journal: the store at") && stderr.contains("is corrupt"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        std::fs::read(data.join("fixloop.sqlite3")).expect("still there"),
        vec![0x42; 8192],
        "never reset"
    );
}
