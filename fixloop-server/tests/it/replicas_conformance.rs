//! The conformance suite (profile `fixloop`, the library `.ci/run` runs as a binary) against a set of three replicas:
//! three real `fixloop demo` processes (the server `.ci/run` checks) on one PostgreSQL schema. Each has its own shop
//! and traffic; the service is one (`demo-checkout`), led by one replica at a time, which watches its own shop (a
//! standby's bug switch reaches the leader's shop through forwarding). The whole suite, strict, against the leader
//! and against each standby: a standby's REST answers come from the leader (forwarded or merged) and its `/ws`
//! carries the leader's events (through the shared event log). Then the leader is SIGKILLed, and once a survivor
//! holds the lease the whole suite runs against both survivors. Nothing may be skipped.
//!
//! The webhook cases are not selected (no secret is given): an alert is answered where it arrives.

use std::ffi::OsStr;
use std::time::{Duration, Instant};

use fixloop_conformance::{Outcome, Profile, Report, Selection, Spec, Target};

use crate::binary::Demo;
use crate::pg::TestSchema;

/// Bound of the whole story.
const STORY: Duration = Duration::from_secs(420);
/// Bound of one wait for a leader.
const SETTLE: Duration = Duration::from_secs(45);
/// The lease time of the replicas, in seconds.
const LEASE_SECONDS: &str = "3";
/// Bound of one run of the suite (its own budget is 90 s; this is the test's guard around it).
const SUITE_BOUND: Duration = Duration::from_secs(150);

/// The services `server` leads, as its `/healthz` says (`None` when it does not answer).
async fn leads(server: &Demo) -> Option<Vec<String>> {
    let response = tokio::time::timeout(
        Duration::from_secs(5),
        fixloop_adapters::default_client()
            .get(format!("{}/healthz", server.url))
            .send(),
    )
    .await
    .ok()?
    .ok()?;
    let body: serde_json::Value = response.json().await.ok()?;
    serde_json::from_value(body.get("leads")?.clone()).ok()
}

/// Runs the cases `selection` picks (strict) against `server`.
async fn suite(server: &Demo, selection: Selection) -> Report {
    let mut target =
        Target::new(&server.url, Spec::embedded().expect("the embedded spec")).expect("target");
    // As the conformance crate's own runs against the real demo: detection in seconds, recovery within ~10 s.
    target.flow_timeout = Duration::from_secs(20);
    target.request_timeout = Duration::from_secs(10);
    let mut selection = selection.with_profile(Profile::Fixloop);
    selection.strict = true;
    tokio::time::timeout(SUITE_BOUND, fixloop_conformance::run(&target, &selection))
        .await
        .expect("the suite finishes within its bound")
}

/// Asserts that `report` has no failure and no skip, else panics with them and `server`'s log.
fn assert_passed(report: &Report, server: &Demo, what: &str) {
    let bad: Vec<String> = report
        .cases
        .iter()
        .filter(|case| !matches!(case.outcome, Outcome::Pass))
        .map(|case| {
            format!(
                "{} {}: {}",
                case.outcome.label(),
                case.id,
                case.outcome.short_reason()
            )
        })
        .collect();
    assert!(
        bad.is_empty() && report.summary.pass > 0,
        "{what}: {} passed, and:\n{}\nlog:\n{}",
        report.summary.pass,
        bad.join("\n"),
        server.log()
    );
}

/// Polls until exactly one of `servers` leads a service; returns its index.
async fn leader(servers: &[&Demo]) -> usize {
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        let mut leading = Vec::new();
        for (index, server) in servers.iter().enumerate() {
            if leads(server).await.is_some_and(|leads| !leads.is_empty()) {
                leading.push(index);
            }
        }
        if let [one] = leading[..] {
            return one;
        }
        assert!(
            started.elapsed() < SETTLE,
            "no single leader: {leading:?}; logs:\n{}",
            servers
                .iter()
                .map(|server| server.log())
                .collect::<Vec<_>>()
                .join("\n----\n")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conformance_suite_passes_against_each_of_three_replicas_and_after_the_leader_is_killed()
 {
    let schema = TestSchema::create("conformance").await;
    tokio::time::timeout(STORY, async {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut servers = Vec::new();
        for id in ["replica-a", "replica-b", "replica-c"] {
            servers.push(
                Demo::start(
                    &[
                        ("FIXLOOP_DATABASE_URL", OsStr::new(schema.url())),
                        ("FIXLOOP_REPLICA_ID", OsStr::new(id)),
                        ("FIXLOOP_LEASE_SECONDS", OsStr::new(LEASE_SECONDS)),
                        ("RUST_LOG", OsStr::new("info")),
                    ],
                    &dir.path().join(format!("{id}.log")),
                )
                .await,
            );
        }
        let first = leader(&servers.iter().collect::<Vec<_>>()).await;

        let report = suite(&servers[first], Selection::all()).await;
        assert_passed(
            &report,
            &servers[first],
            "the whole suite against the leader",
        );
        for (index, server) in servers.iter().enumerate() {
            if index != first {
                let report = suite(server, Selection::all()).await;
                assert_passed(&report, server, "the whole suite against a standby");
            }
        }

        // The leader dies without a word; a survivor takes its lease over and answers the whole suite.
        // Dropping the process kills it (SIGKILL).
        drop(servers.remove(first));
        let next = leader(&servers.iter().collect::<Vec<_>>()).await;
        let report = suite(&servers[next], Selection::all()).await;
        assert_passed(
            &report,
            &servers[next],
            "the whole suite against the new leader",
        );
        let other = 1 - next;
        let report = suite(&servers[other], Selection::all()).await;
        assert_passed(
            &report,
            &servers[other],
            "the whole suite against the last standby",
        );

        for server in servers {
            let exit = server.terminate().await;
            assert!(exit.success(), "a clean exit on SIGTERM: {exit}");
        }
    })
    .await
    .expect("the story completes in time");
}
