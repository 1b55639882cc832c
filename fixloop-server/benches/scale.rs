//! The scale harness: starts the release `fixloop demo` on loopback and measures, in one run, REST throughput and
//! latency, WebSocket fan-out at 1k and 10k clients with the server's RSS, webhook → `incident.created`, bug on →
//! incident, run request → five verdicts, bug off → `RECOVERED`, and idle RSS; it prints one Markdown table.
//!
//! Run it with `cargo bench -p fixloop-server --bench scale` (see `BENCHMARKS.md`); it is never run by CI.
//! It raises its own `RLIMIT_NOFILE` soft limit to the hard limit, which the server it spawns inherits.
//! Everything is bounded: loopback only, at most `FIXLOOP_SCALE_CLIENTS` clients (default `1000,10000`), every wait has
//! a timeout, the whole run stops after ten minutes, and every server it started is killed before it exits.
//! Each fan-out phase gets a fresh server, so that its RSS figures start from an idle process.

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::process::Stdio;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// The webhook secret the spawned server is given.
const SECRET: &str = "scale-harness-webhook-secret";
/// Longest the whole run may take.
const RUN_LIMIT: Duration = Duration::from_secs(600);
/// Longest one wait for the server (start, a response, an event) may take.
const WAIT: Duration = Duration::from_secs(60);
/// How long each REST case runs.
const REST_DURATION: Duration = Duration::from_secs(3);
/// Keep-alive connections of each REST case.
const REST_CONNECTIONS: usize = 32;
/// WebSocket handshakes in flight at once while connecting many clients.
const CONNECTS_IN_FLIGHT: usize = 200;

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
    if let Err(error) = outcome {
        eprintln!("scale: {error:#}");
        std::process::exit(1);
    }
}

async fn run() -> anyhow::Result<()> {
    let (soft, hard) = rlimit::Resource::NOFILE
        .get()
        .context("reading RLIMIT_NOFILE")?;
    rlimit::Resource::NOFILE
        .set(hard, hard)
        .context("raising RLIMIT_NOFILE")?;
    let counts = client_counts()?;
    let needed = counts.iter().max().copied().unwrap_or(0) + 256;
    if hard < needed as u64 {
        bail!("RLIMIT_NOFILE hard limit {hard} is below the {needed} descriptors this run needs");
    }
    let mut table = Table::default();
    table.note(format!(
        "machine: {} cpus, {} MiB memory, kernel {}; RLIMIT_NOFILE soft {soft} raised to {hard} (inherited by the server); ephemeral ports {}",
        std::thread::available_parallelism().map_or(0, usize::from),
        proc_field("/proc/meminfo", "MemTotal:").map_or(0, |kib| kib / 1024),
        std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join("-"),
    ));

    // Server A: idle RSS, REST, webhook → incident.created.
    let server = Server::start().await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    table.row(
        "idle RSS (fresh server)",
        format!("{:.1} MiB", mib(server.rss_kib())),
    );
    for path in ["/api/status", "/api/incidents/current"] {
        let load = rest_load(server.address, path).await?;
        table.row(
            format!("GET {path} ({REST_CONNECTIONS} keep-alive connections, {REST_DURATION:?})"),
            format!(
                "{:.0} req/s; p50 {} p99 {} max {}; statuses {}",
                load.per_second,
                ms(load.latencies.percentile(50.0)),
                ms(load.latencies.percentile(99.0)),
                ms(load.latencies.max()),
                load.statuses
            ),
        );
    }
    let mut observer = Observer::connect(&server.ws_url()).await?;
    let started = Instant::now();
    let response = server
        .http
        .post(server.url("/internal/datadog/webhook"))
        .header("x-fixloop-webhook-secret", SECRET)
        .json(&datadog_alert())
        .send()
        .await
        .context("posting the webhook")?;
    if !response.status().is_success() {
        bail!("the webhook answered {}", response.status());
    }
    observer.next_of("incident.created", |_| true).await?;
    table.row("webhook → incident.created", ms(started.elapsed()));
    drop(observer);
    server.stop().await;

    // One fresh server per fan-out; the first also measures the incident flow.
    for (index, &clients) in counts.iter().enumerate() {
        let server = Server::start().await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let idle = server.rss_kib();
        let mut observer = Observer::connect(&server.ws_url()).await?;
        let fanout = fan_out(&server, clients).await?;
        table.row(
            format!(
                "WebSocket fan-out, {clients} clients: first system.status after POST /api/demo/bug"
            ),
            format!(
                "min {} p50 {} p99 {} max {}; {} of {clients} received; connecting took {}",
                ms(fanout.latencies.percentile(0.0)),
                ms(fanout.latencies.percentile(50.0)),
                ms(fanout.latencies.percentile(99.0)),
                ms(fanout.latencies.max()),
                fanout.latencies.len(),
                ms(fanout.connect_time),
            ),
        );
        table.row(
            format!("RSS, {clients} clients: idle → connected → after fan-out"),
            format!(
                "{:.1} → {:.1} → {:.1} MiB ({:.1} KiB per client)",
                mib(idle),
                mib(fanout.rss_connected_kib),
                mib(fanout.rss_after_kib),
                (fanout.rss_connected_kib.saturating_sub(idle)) as f64 / clients as f64,
            ),
        );
        if index == 0 {
            incident_flow(&server, &mut observer, fanout.toggled_at, &mut table).await?;
        }
        drop(observer);
        server.stop().await;
    }
    println!("{}", table.render());
    Ok(())
}

/// Bug on → incident.created, run request → five verdicts, bug off → RECOVERED, on a server whose bug was just
/// switched on at `toggled_at`.
async fn incident_flow(
    server: &Server,
    observer: &mut Observer,
    toggled_at: Instant,
    table: &mut Table,
) -> anyhow::Result<()> {
    let created = observer.next_of("incident.created", |_| true).await?;
    table.row(
        "bug on → incident.created (detection by polling)",
        ms(created.0.duration_since(toggled_at)),
    );
    let incident_id = created.1["payload"]["incident_id"]
        .as_str()
        .context("incident.created without an incident_id")?
        .to_owned();
    // Let the automatic first run finish, so that the measured run is not queued behind it.
    observer.next_of("tests.updated", run_finished).await?;
    let started = Instant::now();
    let response = server
        .http
        .post(server.url("/api/tests/run"))
        .json(&json!({ "incident_id": incident_id }))
        .send()
        .await
        .context("requesting a run")?;
    if !response.status().is_success() {
        bail!("POST /api/tests/run answered {}", response.status());
    }
    let run: Value = response.json().await.context("the run request's body")?;
    let run_id = run["run_id"].as_str().unwrap_or_default().to_owned();
    let finished = observer
        .next_of("tests.updated", |payload| {
            payload["run_id"] == run_id.as_str() && run_finished(payload)
        })
        .await?;
    table.row(
        "POST /api/tests/run → five verdicts",
        ms(finished.0.duration_since(started)),
    );
    let started = Instant::now();
    server.set_bug(false).await?;
    let recovered = observer
        .next_of("system.status", |payload| payload["status"] == "RECOVERED")
        .await?;
    table.row(
        "bug off → system.status RECOVERED",
        ms(recovered.0.duration_since(started)),
    );
    Ok(())
}

fn run_finished(payload: &Value) -> bool {
    payload["tests"].as_array().is_some_and(|tests| {
        tests.len() == 5
            && tests
                .iter()
                .all(|test| test["status"] == "PASS" || test["status"] == "FAIL")
    })
}

/// The result of one fan-out.
struct FanOut {
    latencies: Latencies,
    connect_time: Duration,
    rss_connected_kib: u64,
    rss_after_kib: u64,
    toggled_at: Instant,
}

/// Connects `clients` WebSocket clients, switches the bug on, and times each client's first `system.status` after
/// the switch.
async fn fan_out(server: &Server, clients: usize) -> anyhow::Result<FanOut> {
    let toggle: Arc<OnceLock<Instant>> = Arc::new(OnceLock::new());
    let (ready_tx, mut ready_rx) = mpsc::channel::<()>(clients);
    let (latency_tx, mut latency_rx) = mpsc::unbounded_channel::<Duration>();
    let (stop_tx, stop_rx) = watch::channel(false);
    let connects = Arc::new(Semaphore::new(CONNECTS_IN_FLIGHT));
    let mut tasks = JoinSet::new();
    let connecting = Instant::now();
    for _ in 0..clients {
        tasks.spawn(client(
            server.ws_url(),
            Arc::clone(&connects),
            Arc::clone(&toggle),
            ready_tx.clone(),
            latency_tx.clone(),
            stop_rx.clone(),
        ));
    }
    drop((ready_tx, latency_tx));
    for connected in 0..clients {
        match tokio::time::timeout(WAIT, ready_rx.recv()).await {
            Ok(Some(())) => {}
            _ => bail!("only {connected} of {clients} clients connected"),
        }
    }
    let connect_time = connecting.elapsed();
    // Let the join snapshots' writes and the handshakes' garbage settle before reading RSS.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_connected_kib = server.rss_kib();
    let toggled_at = *toggle.get_or_init(Instant::now);
    server.set_bug(true).await?;
    let mut latencies = Vec::with_capacity(clients);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while latencies.len() < clients {
        match tokio::time::timeout_at(deadline, latency_rx.recv()).await {
            Ok(Some(latency)) => latencies.push(latency),
            _ => break,
        }
    }
    let rss_after_kib = server.rss_kib();
    let _ = stop_tx.send(true);
    if tokio::time::timeout(WAIT, async { while tasks.join_next().await.is_some() {} })
        .await
        .is_err()
    {
        tasks.abort_all();
    }
    Ok(FanOut {
        latencies: Latencies::new(latencies),
        connect_time,
        rss_connected_kib,
        rss_after_kib,
        toggled_at,
    })
}

/// One cheap fan-out client: small buffers, reads everything, reports its first `system.status` after the toggle.
async fn client(
    url: String,
    connects: Arc<Semaphore>,
    toggle: Arc<OnceLock<Instant>>,
    ready: mpsc::Sender<()>,
    latency: mpsc::UnboundedSender<Duration>,
    mut stop: watch::Receiver<bool>,
) {
    let Ok(permit) = connects.acquire_owned().await else {
        return;
    };
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let Ok(Ok((mut socket, _))) = tokio::time::timeout(
        WAIT,
        tokio_tungstenite::connect_async_with_config(url, Some(config), true),
    )
    .await
    else {
        return;
    };
    drop(permit);
    // The join snapshot starts with a system.status.
    match tokio::time::timeout(WAIT, socket.next()).await {
        Ok(Some(Ok(Message::Text(_)))) => {}
        _ => return,
    }
    if ready.send(()).await.is_err() {
        return;
    }
    let mut reported = false;
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            message = socket.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    if !reported
                        && is_status(text.as_str())
                        && let Some(toggled_at) = toggle.get()
                    {
                        reported = true;
                        let _ = latency.send(toggled_at.elapsed());
                    }
                }
                Some(Ok(_)) => {}
                _ => return,
            },
        }
    }
}

fn is_status(text: &str) -> bool {
    text.starts_with(r#"{"type":"system.status""#)
}

/// A WebSocket client that waits for a given event.
struct Observer {
    socket: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
}

impl Observer {
    async fn connect(url: &str) -> anyhow::Result<Self> {
        let (socket, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .context("connecting the observer timed out")?
            .context("connecting the observer")?;
        Ok(Self { socket })
    }

    /// The next event of `kind` whose payload satisfies `accept`, and when it arrived.
    async fn next_of(
        &mut self,
        kind: &str,
        accept: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<(Instant, Value)> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let message = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .with_context(|| format!("waiting for {kind} timed out"))?
                .with_context(|| format!("the connection closed while waiting for {kind}"))?
                .context("reading an event")?;
            let arrived = Instant::now();
            if let Message::Text(text) = message {
                let event: Value = serde_json::from_str(text.as_str())?;
                if event["type"] == kind && accept(&event["payload"]) {
                    return Ok((arrived, event));
                }
            }
        }
    }
}

/// A `fixloop demo` process on loopback ports.
struct Server {
    child: Child,
    pid: u32,
    address: SocketAddr,
    http: reqwest::Client,
    /// The server's own data directory, removed with it: a measured build never reads another's journal (an older
    /// build refuses a newer schema) and nothing is left in the working directory.
    _data: tempfile::TempDir,
}

impl Server {
    async fn start() -> anyhow::Result<Self> {
        let port = free_port()?;
        let demo_port = free_port()?;
        // FIXLOOP_SCALE_SERVER measures another build (an older one, for a before/after comparison).
        let program = std::env::var_os("FIXLOOP_SCALE_SERVER")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_fixloop").into());
        let data = tempfile::tempdir().context("creating the server's data directory")?;
        let mut child = Command::new(program)
            .args(["demo", "--bind", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .arg("--demo-port")
            .arg(demo_port.to_string())
            .env("FIXLOOP_WEBHOOK_SECRET", SECRET)
            .env("FIXLOOP_DATA_DIR", data.path())
            // Every client of the harness is 127.0.0.1: lift the connection caps out of the way of the 10,000.
            .env("FIXLOOP_MAX_CONNECTIONS", "100000")
            .env("FIXLOOP_MAX_CONNECTIONS_PER_ADDRESS", "100000")
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("spawning fixloop demo")?;
        let pid = child.id().context("the server has no pid")?;
        let http = fixloop_adapters::client_builder()
            .timeout(WAIT)
            .build()
            .context("building the HTTP client")?;
        let server = Self {
            address: SocketAddr::from(([127, 0, 0, 1], port)),
            child: {
                if let Ok(Some(status)) = child.try_wait() {
                    bail!("the server exited at once: {status}");
                }
                child
            },
            pid,
            http,
            _data: data,
        };
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(response) = server.http.get(server.url("/healthz")).send().await
                && response.status().is_success()
            {
                return Ok(server);
            }
            if Instant::now() > deadline {
                bail!("the server did not answer /healthz within {WAIT:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.address)
    }

    fn rss_kib(&self) -> u64 {
        proc_field(&format!("/proc/{}/status", self.pid), "VmRSS:").unwrap_or(0)
    }

    async fn set_bug(&self, enabled: bool) -> anyhow::Result<()> {
        let response = self
            .http
            .post(self.url("/api/demo/bug"))
            .json(&json!({ "enabled": enabled }))
            .send()
            .await
            .context("POST /api/demo/bug")?;
        if !response.status().is_success() {
            bail!("POST /api/demo/bug answered {}", response.status());
        }
        Ok(())
    }

    async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(WAIT, self.child.wait()).await;
    }
}

/// The result of one REST case.
struct RestLoad {
    per_second: f64,
    latencies: Latencies,
    statuses: String,
}

/// Runs `REST_CONNECTIONS` keep-alive connections sending `GET path` back to back for `REST_DURATION`.
async fn rest_load(address: SocketAddr, path: &'static str) -> anyhow::Result<RestLoad> {
    let started = Instant::now();
    let until = started + REST_DURATION;
    let mut tasks = JoinSet::new();
    for _ in 0..REST_CONNECTIONS {
        tasks.spawn(keep_alive_get(address, path, until));
    }
    let mut latencies = Vec::new();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    while let Some(joined) = tasks.join_next().await {
        let (mut connection_latencies, connection_statuses) = joined??;
        latencies.append(&mut connection_latencies);
        for status in connection_statuses {
            *statuses.entry(status).or_default() += 1;
        }
    }
    let elapsed = started.elapsed();
    Ok(RestLoad {
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        latencies: Latencies::new(latencies),
        statuses: statuses
            .iter()
            .map(|(status, count)| format!("{status}×{count}"))
            .collect::<Vec<_>>()
            .join(" "),
    })
}

/// A minimal HTTP/1.1 keep-alive client: cheap enough that the server, not the client, is what is measured.
async fn keep_alive_get(
    address: SocketAddr,
    path: &str,
    until: Instant,
) -> anyhow::Result<(Vec<Duration>, Vec<u16>)> {
    let stream = tokio::time::timeout(WAIT, TcpStream::connect(address)).await??;
    stream.set_nodelay(true)?;
    let mut stream = BufReader::new(stream);
    let request = format!("GET {path} HTTP/1.1\r\nhost: {address}\r\n\r\n");
    let mut latencies = Vec::new();
    let mut statuses = Vec::new();
    let mut line = String::new();
    let mut body = Vec::new();
    while Instant::now() < until {
        let sent = Instant::now();
        let status = tokio::time::timeout(WAIT, async {
            stream.get_mut().write_all(request.as_bytes()).await?;
            line.clear();
            stream.read_line(&mut line).await?;
            let status: u16 = line
                .split_whitespace()
                .nth(1)
                .and_then(|code| code.parse().ok())
                .context("a status line")?;
            let mut length = 0;
            loop {
                line.clear();
                stream.read_line(&mut line).await?;
                let header = line.trim_end();
                if header.is_empty() {
                    break;
                }
                if let Some((name, value)) = header.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().context("a content-length")?;
                }
            }
            body.resize(length, 0);
            stream.read_exact(&mut body).await?;
            anyhow::Ok(status)
        })
        .await??;
        latencies.push(sent.elapsed());
        statuses.push(status);
    }
    Ok((latencies, statuses))
}

/// Sorted latencies.
struct Latencies(Vec<Duration>);

impl Latencies {
    fn new(mut values: Vec<Duration>) -> Self {
        values.sort_unstable();
        Self(values)
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn percentile(&self, percent: f64) -> Option<Duration> {
        if self.0.is_empty() {
            return None;
        }
        let rank = ((percent / 100.0) * self.0.len() as f64).ceil() as usize;
        Some(self.0[rank.clamp(1, self.0.len()) - 1])
    }

    fn max(&self) -> Option<Duration> {
        self.0.last().copied()
    }
}

/// The printed result: notes, then a two-column Markdown table.
#[derive(Default)]
struct Table {
    notes: Vec<String>,
    rows: Vec<(String, String)>,
}

impl Table {
    fn note(&mut self, note: String) {
        println!("{note}");
        self.notes.push(note);
    }

    fn row(&mut self, what: impl Into<String>, figure: impl Into<String>) {
        let (what, figure) = (what.into(), figure.into());
        println!("{what}: {figure}");
        self.rows.push((what, figure));
    }

    fn render(&self) -> String {
        let mut out = String::from("\n");
        for note in &self.notes {
            let _ = writeln!(out, "{note}\n");
        }
        out.push_str("| measurement | result |\n| --- | --- |\n");
        for (what, figure) in &self.rows {
            let _ = writeln!(out, "| {what} | {figure} |");
        }
        out
    }
}

fn client_counts() -> anyhow::Result<Vec<usize>> {
    let text = std::env::var("FIXLOOP_SCALE_CLIENTS").unwrap_or_else(|_| "1000,10000".to_owned());
    let counts = text
        .split(',')
        .map(|count| count.trim().parse::<usize>())
        .collect::<Result<Vec<_>, _>>()
        .context("FIXLOOP_SCALE_CLIENTS: expected comma-separated client counts")?;
    if counts.is_empty() || counts.iter().any(|&count| count == 0 || count > 20_000) {
        bail!("FIXLOOP_SCALE_CLIENTS: each count must be between 1 and 20000");
    }
    Ok(counts)
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// A `kB` field of a `/proc` file (`VmRSS:`, `MemTotal:`), in KiB.
fn proc_field(path: &str, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(field))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn datadog_alert() -> Value {
    json!({
        "id": "evt-scale",
        "event_type": "query_alert_monitor",
        "title": "[Triggered] High 5xx error rate on demo-checkout",
        "body": "error rate above 5%",
        "date": "1763720100000",
        "alert_id": "12345678",
        "alert_cycle_key": "",
        "alert_transition": "Triggered",
        "alert_type": "error",
        "alert_title": "High 5xx error rate on demo-checkout",
        "alert_priority": "P2",
        "alert_query": "",
        "alert_scope": "service:demo-checkout",
        "aggreg_key": "scale",
        "tags": "service:demo-checkout",
        "link": "https://app.datadoghq.com/event/event?id=1",
        "org": {"id": "1", "name": "demo"}
    })
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn ms(duration: impl Into<Option<Duration>>) -> String {
    match duration.into() {
        Some(duration) => format!("{:.1} ms", duration.as_secs_f64() * 1000.0),
        None => "n/a".to_owned(),
    }
}
