//! The real `fixloop` binary in tests, in one place: a command with a clean environment (only `PATH`, a quiet log
//! level and what the test adds), a finished run with its output, and a running `fixloop demo` that prints its
//! URLs, stopped with SIGTERM (a graceful shutdown) or killed when dropped, and a running `fixloop serve` on a
//! profile ([`Fixloop`], the restart and replica stories' process) with its log file. Every wait is bounded.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use fixloop_contract::WsMessage;
use futures_util::StreamExt as _;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;

use crate::inventory::TOKEN;

/// The longest a start, a request or a stop may take.
pub(crate) const STEP: Duration = Duration::from_secs(30);

/// `fixloop <args>` with only `PATH`, `RUST_LOG=warn` and `NO_COLOR` in its environment, run from the crate's
/// directory and killed when dropped; add variables with `.env(..)`.
pub(crate) fn command(args: &[&str]) -> Command {
    command_through(&[], args)
}

/// [`command`] run through `wrapper` (a program and its arguments, the binary's path appended: `setpriv …`),
/// or directly when `wrapper` is empty.
pub(crate) fn command_through(wrapper: &[&str], args: &[&str]) -> Command {
    let mut command = match wrapper.split_first() {
        None => Command::new(env!("CARGO_BIN_EXE_fixloop")),
        Some((program, rest)) => {
            let mut command = Command::new(program);
            command.args(rest).arg(env!("CARGO_BIN_EXE_fixloop"));
            command
        }
    };
    command
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_clear()
        .envs(std::env::var_os("PATH").map(|path| ("PATH", path)))
        .env("RUST_LOG", "warn")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

/// A finished run of the binary.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Runs `command` to its end (within [`STEP`]).
pub(crate) async fn run(mut command: Command) -> Run {
    let output = tokio::time::timeout(
        STEP,
        command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output(),
    )
    .await
    .expect("the fixloop binary ends in time")
    .expect("the fixloop binary runs");
    Run {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A running `fixloop demo` on ephemeral loopback ports, its log (standard error) in a file. Killed when dropped.
pub(crate) struct Demo {
    child: Child,
    /// `http://127.0.0.1:PORT` of the orchestrator.
    pub(crate) url: String,
    /// `http://127.0.0.1:PORT` of the demo shop.
    pub(crate) shop_url: String,
    log: PathBuf,
}

impl Demo {
    /// Starts `fixloop demo --port 0 --demo-port 0` with `env` added to [`command`]'s, its log in `log`, and reads
    /// the URLs it prints.
    pub(crate) async fn start(env: &[(&str, &OsStr)], log: &Path) -> Self {
        Self::start_with(&[], env, log).await
    }

    /// [`Demo::start`] with `args` added after `demo --port 0 --demo-port 0` (for example `--remediate`).
    pub(crate) async fn start_with(args: &[&str], env: &[(&str, &OsStr)], log: &Path) -> Self {
        let file = std::fs::File::create(log).expect("log file");
        let mut all = vec!["demo", "--port", "0", "--demo-port", "0"];
        all.extend_from_slice(args);
        let mut command = command(&all);
        command
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(file);
        let mut child = command.spawn().expect("start the fixloop binary");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        // The orchestrator's line comes first, then the shop's.
        let urls = tokio::time::timeout(STEP, async {
            let mut orchestrator = None;
            while let Ok(Some(line)) = lines.next_line().await {
                let line = line.trim_start();
                let url = |prefix: &str| {
                    line.strip_prefix(prefix)
                        .and_then(|rest| rest.split_whitespace().next())
                        .map(str::to_owned)
                };
                if let Some(url) = url("orchestrator: ") {
                    orchestrator = Some(url);
                } else if let (Some(orchestrator), Some(shop)) =
                    (orchestrator.clone(), url("demo service: "))
                {
                    return Some((orchestrator, shop));
                }
            }
            None
        })
        .await
        .expect("fixloop demo starts in time");
        let Some((url, shop_url)) = urls else {
            panic!(
                "fixloop demo ended before printing its URL; its log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        };
        // Keep reading standard output so the process never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            child,
            url,
            shop_url,
            log: log.to_owned(),
        }
    }

    /// What the process logged so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM (a graceful shutdown), then its exit status.
    pub(crate) async fn terminate(mut self) -> ExitStatus {
        let pid = self.child.id().expect("running").to_string();
        let sent = tokio::time::timeout(STEP, Command::new("kill").args(["-TERM", &pid]).status())
            .await
            .expect("kill ends in time")
            .expect("kill runs");
        assert!(sent.success(), "SIGTERM sent");
        tokio::time::timeout(STEP, self.child.wait())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "fixloop exits in time after SIGTERM; its log:\n{}",
                    self.log()
                )
            })
            .expect("exit status")
    }
}

/// A running `fixloop demo-app --demo-port 0` (the demo shop alone, a real process on a free port), killed when
/// dropped.
pub(crate) struct DemoApp {
    _child: Child,
    /// `http://127.0.0.1:PORT` of the shop.
    pub(crate) url: String,
}

impl DemoApp {
    /// Starts the shop and reads the URL it prints.
    pub(crate) async fn start() -> Self {
        let mut command = command(&["demo-app", "--demo-port", "0"]);
        command.stdout(Stdio::piped()).stderr(Stdio::null());
        let mut child = command.spawn().expect("start the fixloop binary");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let url = tokio::time::timeout(STEP, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.trim().strip_prefix("Demo service: ") {
                    return Some(url.to_owned());
                }
            }
            None
        })
        .await
        .expect("fixloop demo-app starts in time")
        .expect("fixloop demo-app prints its URL");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self { _child: child, url }
    }
}

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
    pub(crate) async fn start_with(profile: &Path, store: (&str, &OsStr), log: PathBuf) -> Self {
        Self::start_env(profile, &[store], log).await
    }

    /// [`Fixloop::start`] with the variables of `env` (the journal's among them).
    pub(crate) async fn start_env(profile: &Path, env: &[(&str, &OsStr)], log: PathBuf) -> Self {
        let port = free_port();
        let file = std::fs::File::create(&log).expect("log file");
        let child = command(&["serve", "--port", &port.to_string(), "--profile"])
            .arg(profile)
            .env("INVENTORY_TOKEN", TOKEN)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            // The tracing log goes to standard output, errors to standard error: both into one file.
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
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

pub(crate) fn free_port() -> u16 {
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
