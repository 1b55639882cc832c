//! The services-per-replica harness (issue 24): how many services one replica leads with the loop latency still
//! within the demo's figures. For each count N (default 10, 50, 100, 200) it starts one `fixloop serve` watching N
//! services, all of them the one `fixloop demo-app` on loopback with the demo's tuning (1 s polling, 10 s
//! window), sends the shop 15 requests a second of user traffic, and measures, per service, the demo's two loop
//! latencies on a WebSocket client: bug on (`POST /admin/bug` on the shop; FixLoop is not told) →
//! `incident.created`, then bug off → `system.status` `RECOVERED`. It prints one Markdown table: median and p99 per
//! N, the server's CPU over the healthy warm-up and its RSS.
//!
//! With `FIXLOOP_BENCH_DATABASE_URL` (for example `postgres://postgres@127.0.0.1:5432/test`) the server is a replica
//! on PostgreSQL (a schema of its own per run, dropped at the end); without it, the embedded store in memory.
//! `FIXLOOP_BENCH_SERVICES=10,50` picks other counts (each at most 500).
//!
//! Run it with `cargo bench -p fixloop-server --bench services` (see `BENCHMARKS.md`); it is never run by CI.
//! Everything is bounded: loopback only, every wait has a timeout, the whole run stops after ten minutes, and every
//! process it started is killed before it exits.

use std::collections::HashMap;
use std::fmt::Write as _;
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
/// Longest one start or one request may take.
const WAIT: Duration = Duration::from_secs(90);
/// Longest the N incidents (or the N recoveries) of one count may take to arrive.
const VERDICTS: Duration = Duration::from_secs(60);
/// Healthy traffic before the bug: the first measurements are judged and the window holds no error.
const WARM_UP: Duration = Duration::from_secs(10);
/// User traffic sent to the shop.
const REQUESTS_PER_SECOND: u64 = 15;
/// Most services in one count.
const MAX_SERVICES: usize = 500;

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
            eprintln!("services: {error:#}");
            std::process::exit(1);
        }
    }
}

fn counts() -> anyhow::Result<Vec<usize>> {
    let Ok(text) = std::env::var("FIXLOOP_BENCH_SERVICES") else {
        return Ok(vec![10, 50, 100, 200]);
    };
    text.split(',')
        .map(|count| {
            let count: usize = count.trim().parse().context("FIXLOOP_BENCH_SERVICES")?;
            if count == 0 || count > MAX_SERVICES {
                bail!("each count is 1 to {MAX_SERVICES}, not {count}");
            }
            Ok(count)
        })
        .collect()
}

async fn run() -> anyhow::Result<String> {
    let counts = counts()?;
    let http = fixloop_adapters::client_builder()
        .timeout(Duration::from_secs(10))
        .build()
        .context("building the HTTP client")?;
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
    wait_healthy(&http, &format!("{app_url}/health")).await?;
    let traffic = tokio::spawn(user_traffic(app_url.clone()));
    let database = std::env::var("FIXLOOP_BENCH_DATABASE_URL").ok();
    let store = if database.is_some() {
        "PostgreSQL (a replica)"
    } else {
        "in memory"
    };
    let mut table = format!(
        "store: {store}\n\n| services | bug on → `incident.created` median | p99 | bug off → `RECOVERED` median | p99 | CPU while healthy | RSS after |\n| --- | --- | --- | --- | --- | --- | --- |\n"
    );
    let dir = tempfile::tempdir().context("a temporary directory")?;
    for count in counts {
        let schema = match &database {
            Some(url) => Some(Schema::create(url, count).await?),
            None => None,
        };
        let result = one_count(&http, &app_url, dir.path(), count, schema.as_ref()).await;
        if let Some(schema) = schema {
            schema.drop().await;
        }
        // A count that fails is a finding too: its row says why, and the next count runs.
        let line =
            result.unwrap_or_else(|error| format!("| {count} | failed: {error:#} | | | | | |\n"));
        eprint!("{line}");
        table.push_str(&line);
        post(
            &http,
            &format!("{app_url}/admin/bug"),
            &json!({"enabled": false}),
        )
        .await?;
    }
    traffic.abort();
    app.stop().await;
    Ok(table)
}

/// One server watching `count` copies of the shop: its row of the table.
async fn one_count(
    http: &reqwest::Client,
    app_url: &str,
    dir: &std::path::Path,
    count: usize,
    schema: Option<&Schema>,
) -> anyhow::Result<String> {
    let profile = dir.join(format!("services-{count}.toml"));
    std::fs::write(&profile, profile_text(app_url, count)).context("writing the profile")?;
    let port = free_port()?;
    let profile = profile.to_string_lossy().into_owned();
    let port_text = port.to_string();
    let mut args = vec![
        "serve",
        "--bind",
        "127.0.0.1",
        "--port",
        &port_text,
        "--insecure-no-auth",
        "--profile",
        &profile,
    ];
    let mut env = Vec::new();
    match schema {
        Some(schema) => {
            env.push(("FIXLOOP_DATABASE_URL", schema.url.as_str()));
            env.push(("FIXLOOP_REPLICA_ID", "bench"));
        }
        None => args.push("--ephemeral"),
    }
    let server = Process::spawn(&args, &env)?;
    let base = format!("http://127.0.0.1:{port}");
    wait_healthy(http, &format!("{base}/healthz")).await?;
    wait_leading(http, &base, count).await?;
    let mut events = Events::connect(&format!("ws://127.0.0.1:{port}/ws")).await?;
    let cpu_before = cpu_ticks(server.pid)?;
    let warm = Instant::now();
    tokio::time::sleep(WARM_UP).await;
    let cpu = cpu_ticks(server.pid)?.saturating_sub(cpu_before);
    let cpu_percent = cpu_share(cpu, warm.elapsed());

    events.drain();
    let broken = Instant::now();
    post(
        http,
        &format!("{app_url}/admin/bug"),
        &json!({"enabled": true}),
    )
    .await?;
    let created = events
        .per_incident(count, "incident.created", |_| true)
        .await;
    post(
        http,
        &format!("{app_url}/admin/bug"),
        &json!({"enabled": false}),
    )
    .await?;
    let fixed = Instant::now();
    let created = created?;
    let recovered = events
        .count_of(count, "system.status", |payload| {
            payload["status"] == "RECOVERED"
        })
        .await?;
    let rss = rss_kib(server.pid)?;
    server.stop().await;
    let mut to_incident: Vec<Duration> =
        created.iter().map(|at| at.duration_since(broken)).collect();
    let mut to_recovered: Vec<Duration> = recovered
        .iter()
        .map(|at| at.duration_since(fixed))
        .collect();
    let (incident_median, incident_p99) = median_p99(&mut to_incident);
    let (recovered_median, recovered_p99) = median_p99(&mut to_recovered);
    Ok(format!(
        "| {count} | {incident_median} | {incident_p99} | {recovered_median} | {recovered_p99} | {cpu_percent:.0} % of one core | {} MiB |\n",
        rss / 1024
    ))
}

/// `count` services, each the demo shop at `app_url` under its own name, with the demo's tuning.
fn profile_text(app_url: &str, count: usize) -> String {
    let demo = include_str!("../profiles/demo.toml");
    let service = demo
        .find("[[service]]")
        .map_or(demo, |start| &demo[start..]);
    let mut text = String::new();
    for index in 0..count {
        let name = format!("shop-{index:03}");
        let block = service
            .replacen("name = \"demo-checkout\"", &format!("name = \"{name}\""), 1)
            .replacen(
                "service = \"demo-checkout\"",
                &format!("service = \"{name}\""),
                1,
            )
            .replacen("http://localhost:8001", app_url, 1);
        let (head, journeys) = block
            .find("[[service.journeys]]")
            .map_or((block.as_str(), ""), |at| block.split_at(at));
        let _ = write!(
            text,
            "{head}\n[service.thresholds]\nwindow_secs = 10\nmin_samples = 2\nrecovery_samples = 2\nmin_requests = 5\npoll_interval_secs = 1\n\n{journeys}\n"
        );
    }
    text
}

/// User traffic against the shop: catalog reads and checkouts, until aborted.
async fn user_traffic(url: String) {
    let Ok(client) = fixloop_adapters::client_builder()
        .timeout(Duration::from_secs(2))
        .build()
    else {
        return;
    };
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / REQUESTS_PER_SECOND));
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
        tokio::spawn(async move {
            let _ = request.send().await;
        });
    }
}

/// A PostgreSQL schema of the run's own.
struct Schema {
    admin: String,
    name: String,
    url: String,
}

impl Schema {
    async fn create(admin: &str, count: usize) -> anyhow::Result<Self> {
        let name = format!("fixloop_bench_services_{}_{count}", std::process::id());
        execute(
            admin,
            &format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE; CREATE SCHEMA \"{name}\""),
        )
        .await?;
        let separator = if admin.contains('?') { '&' } else { '?' };
        Ok(Self {
            admin: admin.to_owned(),
            url: format!("{admin}{separator}options=-csearch_path%3D{name}"),
            name,
        })
    }

    async fn drop(self) {
        if let Err(error) = execute(
            &self.admin,
            &format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name),
        )
        .await
        {
            eprintln!(
                "services: the schema {} was not dropped: {error:#}",
                self.name
            );
        }
    }
}

async fn execute(url: &str, sql: &str) -> anyhow::Result<()> {
    let (client, connection) =
        tokio::time::timeout(WAIT, tokio_postgres::connect(url, tokio_postgres::NoTls))
            .await
            .context("connecting to PostgreSQL timed out")?
            .context("connecting to PostgreSQL")?;
    let driver = tokio::spawn(connection);
    tokio::time::timeout(WAIT, client.batch_execute(sql))
        .await
        .context("PostgreSQL timed out")?
        .with_context(|| format!("{sql:?}"))?;
    drop(client);
    let _ = tokio::time::timeout(WAIT, driver).await;
    Ok(())
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

    /// When the first event of `kind` of each of `count` distinct incidents arrived.
    async fn per_incident(
        &mut self,
        count: usize,
        kind: &str,
        accept: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Vec<Instant>> {
        let deadline = tokio::time::Instant::now() + VERDICTS;
        let mut seen: HashMap<String, Instant> = HashMap::new();
        while seen.len() < count {
            let (arrived, event) = tokio::time::timeout_at(deadline, self.queue.recv())
                .await
                .with_context(|| {
                    format!("only {} of {count} {kind} within {VERDICTS:?}", seen.len())
                })?
                .with_context(|| format!("the connection closed while waiting for {kind}"))?;
            if event["type"] == kind && accept(&event["payload"]) {
                let incident = event["payload"]["incident_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                seen.entry(incident).or_insert(arrived);
            }
        }
        Ok(seen.into_values().collect())
    }

    /// When each of the first `count` events of `kind` whose payload satisfies `accept` arrived.
    async fn count_of(
        &mut self,
        count: usize,
        kind: &str,
        accept: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Vec<Instant>> {
        let deadline = tokio::time::Instant::now() + VERDICTS;
        let mut seen = Vec::with_capacity(count);
        while seen.len() < count {
            let (arrived, event) = tokio::time::timeout_at(deadline, self.queue.recv())
                .await
                .with_context(|| {
                    format!("only {} of {count} {kind} within {VERDICTS:?}", seen.len())
                })?
                .with_context(|| format!("the connection closed while waiting for {kind}"))?;
            if event["type"] == kind && accept(&event["payload"]) {
                seen.push(arrived);
            }
        }
        Ok(seen)
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// A `fixloop` process of the bench's build.
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

/// Waits until the server leads all `count` services (a replica takes its leases in its first renewal rounds).
async fn wait_leading(http: &reqwest::Client, base: &str, count: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + WAIT;
    loop {
        let list: Option<Value> = match http.get(format!("{base}/api/replicas")).send().await {
            Ok(response) => response.json().await.ok(),
            Err(_) => None,
        };
        let leads = list.as_ref().map_or(0, |list| {
            list["replicas"].as_array().map_or(0, |replicas| {
                replicas
                    .iter()
                    .map(|replica| replica["leads"].as_array().map_or(0, Vec::len))
                    .sum()
            })
        });
        if leads >= count {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the server led {leads} of {count} services after {WAIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
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

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// The process's user and system time so far, in clock ticks (`/proc/<pid>/stat` fields 14 and 15).
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).context("reading /proc/<pid>/stat")?;
    let after_name = stat
        .rsplit_once(')')
        .map_or(stat.as_str(), |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |index: usize| -> anyhow::Result<u64> {
        fields
            .get(index)
            .context("a short /proc/<pid>/stat")?
            .parse()
            .context("a /proc/<pid>/stat field")
    };
    // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    Ok(field(11)? + field(12)?)
}

/// `ticks` of CPU over `elapsed`, as a percentage of one core (100 ticks a second, Linux's `USER_HZ`).
fn cpu_share(ticks: u64, elapsed: Duration) -> f64 {
    let seconds = Duration::from_millis(ticks.saturating_mul(10)).as_secs_f64();
    100.0 * seconds / elapsed.as_secs_f64().max(f64::EPSILON)
}

/// `VmRSS` of the process, in KiB.
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .context("reading /proc/<pid>/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .context("no VmRSS")
}

/// The median and the 99th percentile (nearest rank), formatted.
fn median_p99(durations: &mut [Duration]) -> (String, String) {
    durations.sort();
    if durations.is_empty() {
        return ("no sample".to_owned(), "no sample".to_owned());
    }
    let rank = (durations.len() * 99).div_ceil(100).max(1) - 1;
    (
        seconds(durations[durations.len() / 2]),
        seconds(durations[rank]),
    )
}

fn seconds(duration: Duration) -> String {
    format!("{:.2} s", duration.as_secs_f64())
}
