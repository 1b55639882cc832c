//! The real `fixloop` binary in tests, in one place: a command with a clean environment (only `PATH`, a quiet log
//! level and what the test adds), a finished run with its output, and a running `fixloop demo` that prints its
//! URLs, stopped with SIGTERM (a graceful shutdown) or killed when dropped. Every wait is bounded.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

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
