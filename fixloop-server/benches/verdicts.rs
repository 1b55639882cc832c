//! The verdict-latency harness: how soon FixLoop sees the truth, measured in one run on loopback with the release
//! binary. It prints one Markdown table:
//!
//! - `fixloop demo` (1 s polling, its traffic generator): bug on → `incident.created`, over several trials (median and
//!   spread), and bug off → `system.status` `RECOVERED`;
//! - `fixloop serve` with its defaults (3 s polling, a 5-minute detection window, 3 healthy measurements of 20
//!   requests) watching `fixloop demo-app` under 10 requests a second of user traffic sent by this harness: bug on →
//!   incident, the fix (bug off, outside FixLoop) → `RECOVERED`;
//! - the same service hung (`SIGSTOP`): → `system.status` `INCIDENT_ACTIVE` and → `incident.created`, then `SIGCONT`.
//!
//! Run it with `cargo bench -p fixloop-server --bench verdicts` (see `BENCHMARKS.md`); it is never run by CI.
//! Everything is bounded: loopback only, every wait has a timeout, the whole run stops after ten minutes, and every
//! process it started is killed (and continued, if stopped) before it exits.

use std::net::TcpListener;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// Longest the whole run may take.
const RUN_LIMIT: Duration = Duration::from_secs(600);
/// Longest one wait (a start, a response, an event) may take.
const WAIT: Duration = Duration::from_secs(90);
/// Bug-on trials in the demo.
const DEMO_TRIALS: usize = 9;
/// The demo's cooldown after an incident closes (polling opens no incident during it), plus a margin.
const DEMO_COOLDOWN: Duration = Duration::from_secs(11);
/// User traffic sent to the served demo service.
const SERVE_REQUESTS_PER_SECOND: u64 = 10;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let outcome = runtime.block_on(async {
        tokio::time::timeout(RUN_LIMIT, run())
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the run took longer than {RUN_LIMIT:?}")))
    });
    runtime.shutdown_timeout(Duration::from_secs(5));
    match outcome {
        Ok(table) => println!("{table}"),
        Err(error) => {
            eprintln!("verdicts: {error:#}");
            std::process::exit(1);
        }
    }
}

async fn run() -> anyhow::Result<String> {
    let mut table = String::from("| measurement | figure |\n| --- | --- |\n");
    let http = fixloop_adapters::client_builder()
        .timeout(Duration::from_secs(10))
        .build()
        .context("building the HTTP client")?;
    demo(&http, &mut table).await?;
    serve(&http, &mut table).await?;
    Ok(table)
}

/// `fixloop demo`: bug on → incident.created (several trials), bug off → RECOVERED.
async fn demo(http: &reqwest::Client, table: &mut String) -> anyhow::Result<()> {
    let port = free_port()?;
    let demo_port = free_port()?;
    let server = Process::spawn(
        &[
            "demo",
            "--bind",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--demo-port",
            &demo_port.to_string(),
            "--ephemeral",
        ],
        &[],
    )?;
    let base = format!("http://127.0.0.1:{port}");
    wait_healthy(http, &format!("{base}/healthz")).await?;
    let mut events = Events::connect(&format!("ws://127.0.0.1:{port}/ws")).await?;
    let mut detections = Vec::new();
    let mut recoveries = Vec::new();
    // The traffic generator needs a moment to fill the first measurements.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for _ in 0..DEMO_TRIALS {
        events.drain();
        let toggled = Instant::now();
        post(
            http,
            &format!("{base}/api/demo/bug"),
            &json!({"enabled": true}),
        )
        .await?;
        let created = events.next_of("incident.created", |_| true).await?;
        detections.push(created.duration_since(toggled));
        let toggled = Instant::now();
        post(
            http,
            &format!("{base}/api/demo/bug"),
            &json!({"enabled": false}),
        )
        .await?;
        let recovered = events
            .next_of("system.status", |payload| payload["status"] == "RECOVERED")
            .await?;
        recoveries.push(recovered.duration_since(toggled));
        post(
            http,
            &format!("{base}/api/incidents/simulate"),
            &json!({"mode": "INCIDENT_OFF"}),
        )
        .await?;
        tokio::time::sleep(DEMO_COOLDOWN).await;
    }
    server.stop().await;
    row(
        table,
        &format!("demo: bug on → `incident.created` ({DEMO_TRIALS} trials)"),
        &spread(&mut detections),
    );
    row(
        table,
        &format!("demo: bug off → `RECOVERED` ({DEMO_TRIALS} trials)"),
        &spread(&mut recoveries),
    );
    Ok(())
}

/// `fixloop serve` with its defaults over `fixloop demo-app`: detection, the fix → RECOVERED, hung → incident.
async fn serve(http: &reqwest::Client, table: &mut String) -> anyhow::Result<()> {
    let port = free_port()?;
    let app_port = free_port()?;
    let app = Process::spawn(
        &[
            "demo-app",
            "--bind",
            "127.0.0.1",
            "--port",
            &app_port.to_string(),
        ],
        &[],
    )?;
    let app_url = format!("http://127.0.0.1:{app_port}");
    wait_healthy(http, &format!("{app_url}/health")).await?;
    let server = Process::spawn(
        &[
            "serve",
            "--bind",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--ephemeral",
            "--insecure-no-auth",
        ],
        &[("DEMO_APP_URL", app_url.as_str())],
    )?;
    let base = format!("http://127.0.0.1:{port}");
    wait_healthy(http, &format!("{base}/healthz")).await?;
    let mut events = Events::connect(&format!("ws://127.0.0.1:{port}/ws")).await?;
    let traffic = tokio::spawn(user_traffic(app_url.clone()));
    // Healthy traffic for a while: the 5-minute window holds no outage yet, and the first measurements are judged.
    tokio::time::sleep(Duration::from_secs(10)).await;

    events.drain();
    let broken = Instant::now();
    post(
        http,
        &format!("{app_url}/admin/bug"),
        &json!({"enabled": true}),
    )
    .await?;
    let active = events
        .next_of("system.status", |payload| {
            payload["status"] == "INCIDENT_ACTIVE"
        })
        .await?;
    row(
        table,
        "serve defaults: bug on → `INCIDENT_ACTIVE`",
        &seconds(active.duration_since(broken)),
    );
    // The first run fails (the bug is still on); then the fix, made outside FixLoop.
    events
        .next_of("tests.updated", |payload| payload["status"] == "FAILED")
        .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let fixed = Instant::now();
    post(
        http,
        &format!("{app_url}/admin/bug"),
        &json!({"enabled": false}),
    )
    .await?;
    let rerun = events
        .next_of("tests.updated", |payload| payload["status"] == "RUNNING")
        .await?;
    let recovered = events
        .next_of("system.status", |payload| payload["status"] == "RECOVERED")
        .await?;
    row(
        table,
        "serve defaults: the fix → first rerun starts",
        &seconds(rerun.duration_since(fixed)),
    );
    row(
        table,
        "serve defaults: the fix → `RECOVERED`",
        &seconds(recovered.duration_since(fixed)),
    );
    post(
        http,
        &format!("{base}/api/incidents/simulate"),
        &json!({"mode": "INCIDENT_OFF"}),
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(5)).await;

    // Hung: the service stops answering anything (SIGSTOP).
    events.drain();
    signal(app.pid, "-STOP").await?;
    let hung = Instant::now();
    let outcome = async {
        let active = events
            .next_of("system.status", |payload| {
                payload["status"] == "INCIDENT_ACTIVE"
            })
            .await?;
        let created = events.next_of("incident.created", |_| true).await?;
        anyhow::Ok((active, created))
    }
    .await;
    signal(app.pid, "-CONT").await?;
    let (active, created) = outcome?;
    row(
        table,
        "serve defaults: hung (SIGSTOP) → `INCIDENT_ACTIVE` (target ≤ 3 polls + timeout = 14 s)",
        &seconds(active.duration_since(hung)),
    );
    row(
        table,
        "serve defaults: hung (SIGSTOP) → `incident.created` (after the context fetch times out)",
        &seconds(created.duration_since(hung)),
    );
    traffic.abort();
    server.stop().await;
    app.stop().await;
    Ok(())
}

/// User traffic against the demo service: catalog reads and checkouts, until aborted.
async fn user_traffic(url: String) {
    let Ok(client) = fixloop_adapters::client_builder()
        .timeout(Duration::from_secs(2))
        .build()
    else {
        return;
    };
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / SERVE_REQUESTS_PER_SECOND));
    let mut n: u64 = 0;
    loop {
        tick.tick().await;
        n += 1;
        let request = if n.is_multiple_of(2) {
            client.get(format!("{url}/catalog"))
        } else {
            client
                .post(format!("{url}/checkout"))
                .json(&json!({"sku": "sku-1", "quantity": 1}))
        };
        // A hung service would hold the tick: each request runs on its own.
        tokio::spawn(async move {
            let _ = request.send().await;
        });
    }
}

/// The events of one WebSocket client, each stamped when it arrived (a reader task reads all the time).
struct Events {
    queue: mpsc::UnboundedReceiver<(Instant, Value)>,
    reader: tokio::task::JoinHandle<()>,
}

impl Events {
    async fn connect(url: &str) -> anyhow::Result<Self> {
        let (mut socket, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .context("connecting the observer timed out")?
            .context("connecting the observer")?;
        let (sender, queue) = mpsc::unbounded_channel();
        let reader = tokio::spawn(async move {
            while let Some(Ok(message)) = socket.next().await {
                let arrived = Instant::now();
                if let Message::Text(text) = message
                    && let Ok(event) = serde_json::from_str::<Value>(text.as_str())
                    && sender.send((arrived, event)).is_err()
                {
                    break;
                }
            }
        });
        Ok(Self { queue, reader })
    }

    /// Forgets the events received so far.
    fn drain(&mut self) {
        while self.queue.try_recv().is_ok() {}
    }

    /// When the next event of `kind` whose payload satisfies `accept` arrived.
    async fn next_of(
        &mut self,
        kind: &str,
        accept: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Instant> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let (arrived, event) = tokio::time::timeout_at(deadline, self.queue.recv())
                .await
                .with_context(|| format!("waiting for {kind} timed out"))?
                .with_context(|| format!("the connection closed while waiting for {kind}"))?;
            if event["type"] == kind && accept(&event["payload"]) {
                return Ok(arrived);
            }
        }
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// A `fixloop` process of the release build.
struct Process {
    child: Child,
    pid: u32,
}

impl Process {
    fn spawn(args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let mut command = Command::new(env!("CARGO_BIN_EXE_fixloop"));
        command
            .args(args)
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true);
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command.spawn().context("spawning fixloop")?;
        let pid = child.id().context("the process has no pid")?;
        Ok(Self { child, pid })
    }

    async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(WAIT, self.child.wait()).await;
    }
}

async fn wait_healthy(http: &reqwest::Client, url: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(response) = http.get(url).send().await
            && response.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{url} did not answer within {WAIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn post(http: &reqwest::Client, url: &str, body: &Value) -> anyhow::Result<()> {
    let response = http
        .post(url)
        .json(body)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    if !response.status().is_success() {
        bail!("POST {url} answered {}", response.status());
    }
    Ok(())
}

async fn signal(pid: u32, which: &str) -> anyhow::Result<()> {
    let status = tokio::time::timeout(
        WAIT,
        Command::new("kill")
            .arg(which)
            .arg(pid.to_string())
            .status(),
    )
    .await
    .context("kill timed out")?
    .context("running kill")?;
    if !status.success() {
        bail!("kill {which} {pid} failed: {status}");
    }
    Ok(())
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a free port")?;
    Ok(listener.local_addr()?.port())
}

fn row(table: &mut String, measurement: &str, figure: &str) {
    table.push_str(&format!("| {measurement} | {figure} |\n"));
}

fn seconds(duration: Duration) -> String {
    format!("{:.2} s", duration.as_secs_f64())
}

/// `median m s (min a s, max b s)`.
fn spread(durations: &mut [Duration]) -> String {
    durations.sort();
    let (Some(first), Some(last)) = (durations.first(), durations.last()) else {
        return "no sample".to_owned();
    };
    format!(
        "median {} (min {}, max {})",
        seconds(durations[durations.len() / 2]),
        seconds(*first),
        seconds(*last)
    )
}
