//! The store findings of the outside attack (issue 22), replayed against the real `fixloop` binary on loopback:
//! each damaged store (an empty file, random bytes inside a real store, a store of a newer schema, a file that is
//! not SQLite, a read-only file and directory, a read-only filesystem) is refused at start with a message that
//! names the file and says what to do, a non-zero exit, and the file left byte-identical; a full disk (a real
//! small tmpfs where this machine lets the test mount one, else SQLite's `SQLITE_FULL` from a file capped with
//! `FIXLOOP_STORE_MAX_KIB`) loses appends, each counted, while `/healthz` says "degraded" and the loop goes on;
//! and an alert storm of 30,000 distinct alerts through the webhook, then SIGTERM, leaves a store of at most
//! 16 MiB that `fixloop replay` still explains.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use fixloop_adapters::store::FILE_NAME;
use fixloop_adapters::{JournalEntry, SqliteStore, Store};
use fixloop_contract::chrono::{TimeDelta, TimeZone, Utc};
use fixloop_core::engine::{Input, RecordedInput, SignalSample};
use futures_util::StreamExt as _;
use serde_json::{Value, json};

use crate::binary::{self, Demo, STEP};
use crate::store_hardening::{SECRET, alerts, get_text, lost_appends, post_alerts};

/// Every file in `dir` with its bytes and modification time.
fn files(dir: &Path) -> BTreeMap<String, (Vec<u8>, SystemTime)> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .map(|entry| {
            let entry = entry.expect("dir entry");
            let modified = entry
                .metadata()
                .and_then(|metadata| metadata.modified())
                .expect("mtime");
            (
                entry.file_name().to_string_lossy().into_owned(),
                (std::fs::read(entry.path()).expect("read file"), modified),
            )
        })
        .collect()
}

/// Starts `fixloop demo` on `data` (through `wrapper`, a command and its arguments, when given), expects it to
/// refuse to start, and checks that nothing in `data` changed. Returns what it printed on standard error.
async fn refused_at_start(data: &Path, wrapper: &[&str]) -> String {
    let before = files(data);
    assert!(before.contains_key(FILE_NAME), "a store to refuse");
    let args = ["demo", "--port", "0", "--demo-port", "0"];
    let mut command = binary::command_through(wrapper, &args);
    command.env("FIXLOOP_DATA_DIR", data);
    let run = binary::run(command).await;
    assert!(
        !run.status.success(),
        "the binary refuses to start: {run:?}"
    );
    let file = data.join(FILE_NAME);
    assert!(
        run.stderr.contains(&file.display().to_string()),
        "the message names the file {}: {}",
        file.display(),
        run.stderr
    );
    assert_eq!(
        files(data),
        before,
        "a refused store is left byte-identical (and its mtime too): {}",
        run.stderr
    );
    run.stderr
}

/// Deterministic pseudo-random bytes (xorshift).
fn noise(len: usize, mut state: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

/// A real store of `entries` samples in `dir`, closed cleanly.
async fn real_store(dir: &Path, entries: u64) {
    let store = SqliteStore::open(dir).expect("open");
    let start = Utc
        .with_ymd_and_hms(2026, 3, 14, 9, 30, 0)
        .single()
        .expect("a date");
    for seq in 1..=entries {
        let input = Input::SignalSampled(SignalSample {
            at: start,
            error_rate: Some(0.25),
            p95_latency_ms: Some(412.0),
            top_error: Some(format!("HTTP 500 POST /checkout: timeout (attempt {seq})")),
            requests: 42,
        });
        let entry = JournalEntry {
            seq,
            at: start + TimeDelta::seconds(i64::try_from(seq).unwrap_or(0)),
            input: Some(RecordedInput::from(&input)),
        };
        tokio::time::timeout(STEP, store.append("demo-checkout", entry))
            .await
            .expect("append in time")
            .expect("append");
    }
    tokio::time::timeout(STEP, store.close())
        .await
        .expect("close in time")
        .expect("close");
}

#[tokio::test]
async fn red_team_an_empty_store_file_is_refused_untouched() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join(FILE_NAME), b"").expect("write");
    let said = refused_at_start(dir.path(), &[]).await;
    assert!(said.contains("empty (0 bytes)"), "{said}");
    assert!(said.contains("Move it away"), "says what to do: {said}");
}

#[tokio::test]
async fn red_team_random_bytes_inside_a_store_are_refused_untouched() {
    let dir = tempfile::tempdir().expect("temp dir");
    real_store(dir.path(), 4_000).await;
    let path = dir.path().join(FILE_NAME);
    let mut bytes = std::fs::read(&path).expect("read");
    assert!(
        bytes.len() > 256 * 1024,
        "a store of some size: {}",
        bytes.len()
    );
    let middle = bytes.len() / 2;
    bytes[middle..middle + 64 * 1024].copy_from_slice(&noise(64 * 1024, 0x5eed));
    std::fs::write(&path, &bytes).expect("damage");
    let said = refused_at_start(dir.path(), &[]).await;
    assert!(said.contains("damaged"), "{said}");
    assert!(said.contains("quick_check"), "{said}");
    assert!(said.contains("backup"), "says what to do: {said}");
}

#[tokio::test]
async fn red_team_a_store_of_a_newer_schema_is_refused_untouched() {
    let dir = tempfile::tempdir().expect("temp dir");
    real_store(dir.path(), 20).await;
    let newer = rusqlite::Connection::open(dir.path().join(FILE_NAME)).expect("open");
    newer
        .execute_batch("PRAGMA user_version = 99;")
        .expect("set version");
    drop(newer);
    let said = refused_at_start(dir.path(), &[]).await;
    assert!(said.contains("schema version 99"), "{said}");
    assert!(
        said.contains("run the newer FixLoop, or move the data directory away"),
        "says what to do: {said}"
    );
}

#[tokio::test]
async fn red_team_a_file_that_is_not_sqlite_is_refused_untouched() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join(FILE_NAME), noise(10_000, 7)).expect("write");
    let said = refused_at_start(dir.path(), &[]).await;
    assert!(said.contains("not an SQLite database"), "{said}");
    assert!(
        said.contains("FIXLOOP_DATA_DIR elsewhere"),
        "says what to do: {said}"
    );
}

/// A tmpfs mounted on a directory for one test, unmounted when dropped (a panic included).
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `kib` KiB on `dir`; `None` where this machine does not let the test mount one (not root,
    /// no `CAP_SYS_ADMIN`, no `mount`).
    fn mount(dir: &Path, kib: u64) -> Option<Self> {
        let mounted = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={kib}k,mode=0755"),
                "tmpfs",
            ])
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        mounted.then(|| Self {
            dir: dir.to_owned(),
        })
    }

    /// Makes the filesystem read-only.
    fn remount_read_only(&self) {
        let status = std::process::Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.dir)
            .status()
            .expect("mount runs");
        assert!(status.success(), "remounted read-only");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = std::process::Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|status| status.success());
        if !unmounted {
            // Still busy (a process killed on drop may not have exited yet): detach it now, freed once unused.
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.dir)
                .status();
        }
    }
}

/// Whether this process runs as root (file modes do not stop root).
fn root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
}

#[tokio::test]
async fn red_team_a_read_only_store_is_refused_untouched() {
    fn says_read_only(said: &str) {
        assert!(said.contains("read-only"), "{said}");
        assert!(
            said.contains("make it writable or point FIXLOOP_DATA_DIR elsewhere"),
            "says what to do: {said}"
        );
        assert!(!said.contains("disk I/O error"), "said plainly: {said}");
    }
    let mut variants = Vec::new();
    // A read-only file in a read-only directory (file modes; as root, whom modes do not stop, the binary runs as
    // `nobody` through `setpriv`).
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    real_store(&data, 50).await;
    let file = data.join(FILE_NAME);
    let mode = |path: &Path, mode: u32| {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    };
    let as_nobody: &[&str] = &[
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ];
    let wrapper: Option<&[&str]> = if !root() {
        Some(&[])
    } else if std::process::Command::new("setpriv")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success())
    {
        Some(as_nobody)
    } else {
        None
    };
    if let Some(wrapper) = wrapper {
        mode(dir.path(), 0o755);
        mode(&file, 0o444);
        mode(&data, 0o555);
        says_read_only(&refused_at_start(&data, wrapper).await);
        mode(&data, 0o755);
        variants.push("a read-only file in a read-only directory");
    }

    // A read-only filesystem, where this machine lets the test mount one.
    let mount_point = tempfile::tempdir().expect("temp dir");
    if let Some(tmpfs) = Tmpfs::mount(mount_point.path(), 4_096) {
        std::fs::copy(&file, mount_point.path().join(FILE_NAME)).expect("copy the store");
        tmpfs.remount_read_only();
        says_read_only(&refused_at_start(mount_point.path(), &[]).await);
        variants.push("a read-only tmpfs");
    }
    println!("read-only variants run: {variants:?}");
    assert!(
        !variants.is_empty(),
        "root without setpriv and without the right to mount: no way to make a store read-only here"
    );
}

async fn get_json(client: &reqwest::Client, url: String) -> Value {
    serde_json::from_str(&get_text(client, url).await).expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn red_team_a_full_disk_counts_every_lost_append_and_healthz_says_degraded() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("data dir");
    // A real full disk: a tmpfs of 384 KiB holds the new store and its write-ahead log for about a hundred
    // appends. Where mounting is not allowed, SQLite's own SQLITE_FULL from a capped file stands in.
    let tmpfs = Tmpfs::mount(&data, 384);
    let variant = if tmpfs.is_some() {
        "a tmpfs of 384 KiB"
    } else {
        "FIXLOOP_STORE_MAX_KIB=96 (no tmpfs could be mounted here)"
    };
    println!("full disk: {variant}");
    let mut env: Vec<(&str, &OsStr)> = vec![
        ("FIXLOOP_DATA_DIR", data.as_os_str()),
        ("FIXLOOP_WEBHOOK_SECRET", OsStr::new(SECRET)),
    ];
    if tmpfs.is_none() {
        env.push(("FIXLOOP_STORE_MAX_KIB", OsStr::new("96")));
    }
    let demo = Demo::start(&env, &dir.path().join("fixloop.log")).await;
    let client = fixloop_adapters::default_client();
    let url = demo.url.clone();
    let health = get_json(&client, format!("{url}/healthz")).await;
    assert_eq!(health, json!({"status": "ok"}), "{variant}");
    // Alerts until the disk is full.
    let mut degraded = None;
    for batch in 0..400 {
        post_alerts(&client, &url, &alerts(batch * 20, 20)).await;
        let health = get_json(&client, format!("{url}/healthz")).await;
        if health["status"] == "degraded" {
            degraded = Some(health);
            break;
        }
    }
    let health =
        degraded.unwrap_or_else(|| panic!("the journal fails once the disk is full ({variant})"));
    let reason = health["journal"].as_str().expect("a reason");
    assert!(
        reason.contains("demo-checkout"),
        "names the service: {reason}"
    );
    assert!(
        reason.contains("is full"),
        "says the disk is full ({variant}): {reason}"
    );
    assert!(reason.contains(FILE_NAME), "names the file: {reason}");
    // Every input not journaled counts: 20 more alerts lose at least 20 more appends.
    let before = lost_appends(&get_text(&client, format!("{url}/metrics")).await);
    assert!(before >= 1, "{variant}");
    post_alerts(&client, &url, &alerts(100_000, 20)).await;
    let metrics = get_text(&client, format!("{url}/metrics")).await;
    let after = lost_appends(&metrics);
    assert!(
        after >= before + 20,
        "each lost append is counted ({variant}): {before} -> {after}"
    );
    assert!(
        metrics.contains("fixloop_journal_degraded{service=\"demo-checkout\"} 1"),
        "{metrics}"
    );
    // The loop goes on: the incident the alerts opened is served, and the server still answers.
    let status = get_json(&client, format!("{url}/api/status")).await;
    assert!(status["active_incident_id"].is_string(), "{status}");
    let log = demo.log();
    assert!(
        log.contains("is full"),
        "the log says the disk is full ({variant}):\n{log}"
    );
    // A clean stop may fail to fold the log into a full disk; it must still end.
    let _ = demo.terminate().await;
    drop(tmpfs);
}

/// How many distinct alerts the storm sends.
const STORM_ALERTS: usize = 30_000;
/// Alerts per webhook post.
const STORM_BATCH: usize = 100;
/// Posts in flight at once.
const STORM_CONCURRENCY: usize = 4;
/// How long the storm may take (about 80 s on a loaded two-core machine).
const STORM_BUDGET: Duration = Duration::from_secs(200);
/// The file size the storm must stay under after a clean stop.
const STORM_MAX_BYTES: u64 = 16 * 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn red_team_an_alert_storm_leaves_a_bounded_store_that_replays() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let demo = Demo::start(
        &[
            ("FIXLOOP_DATA_DIR", data.as_os_str()),
            ("FIXLOOP_WEBHOOK_SECRET", OsStr::new(SECRET)),
        ],
        &dir.path().join("fixloop.log"),
    )
    .await;
    let client = fixloop_adapters::default_client();
    let url = demo.url.clone();
    let started = Instant::now();
    let storm = futures_util::stream::iter(0..STORM_ALERTS / STORM_BATCH)
        .map(|batch| {
            let client = client.clone();
            let url = url.clone();
            async move {
                post_alerts(&client, &url, &alerts(batch * STORM_BATCH, STORM_BATCH)).await;
            }
        })
        .buffer_unordered(STORM_CONCURRENCY)
        .collect::<Vec<()>>();
    tokio::time::timeout(STORM_BUDGET, storm)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the storm is taken within {STORM_BUDGET:?}; the log:\n{}",
                demo.log()
            )
        });
    let posted = started.elapsed();
    let metrics = get_text(&client, format!("{url}/metrics")).await;
    assert!(
        metrics.contains("fixloop_journal_appends_total{result=\"error\"} 0"),
        "every alert is journaled: {metrics}"
    );
    let status = demo.terminate().await;
    assert!(status.success(), "a graceful shutdown: {status}");
    let file = data.join(FILE_NAME);
    let bytes = std::fs::metadata(&file).expect("the store file").len();
    let journal_rows: u64 =
        rusqlite::Connection::open_with_flags(&file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .and_then(|connection| {
                connection.query_row("SELECT count(*) FROM journal", [], |row| row.get(0))
            })
            .expect("count");
    println!(
        "store after {STORM_ALERTS} alerts through the binary's webhook ({STORM_CONCURRENCY} posts of {STORM_BATCH} in \
         flight) and SIGTERM: {bytes} bytes ({:.1} MiB), {journal_rows} journal rows; posted in {:.1} s, {:.1} s in all",
        bytes as f64 / 1_048_576.0,
        posted.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        bytes <= STORM_MAX_BYTES,
        "the store is bounded: {bytes} bytes"
    );
    // The storm holds one incident open (reopened by each new alert during its soak), which compaction keeps
    // whole up to `open_incident_entries`; the tail after the last snapshot comes on top.
    let retention = fixloop_adapters::Retention::default();
    assert!(
        journal_rows <= retention.open_incident_entries() + retention.spacing(),
        "{journal_rows} rows"
    );
    // The compacted journal still replays, from the first snapshot compaction kept.
    let mut replay = binary::command(&["replay", "--data"]);
    replay.arg(&data);
    let run = binary::run(replay).await;
    assert!(run.status.success(), "{}", run.stderr);
    assert!(
        !run.stdout.is_empty(),
        "the replay explains something: {}",
        run.stderr
    );
    assert!(
        !run.stdout.contains("are missing") && !run.stderr.contains("are missing"),
        "no gap is reported after the first kept snapshot: {}",
        run.stderr
    );
}
