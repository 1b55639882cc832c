//! `fixloop replay` against a real journal: the in-process demo journals a whole story (bug on, incident, a failing
//! run, bug off, RECOVERED) into an SQLite store in a temp dir while a WebSocket client watches; then the replay
//! must publish exactly what the client received (same payloads, same `ts`), and the binary's printout must name
//! the incident, the failing run and the RECOVERED decision with its reason. A journal written by driving the engine
//! directly, with a planner whose first plan is invalid, must replay into a rejected plan with its first violation.

use std::path::Path;
use std::time::Duration;

use fixloop_contract::{IncidentState, RunStatus, WsEnvelope, WsMessage};
use fixloop_server::config::StoreLocation;
use fixloop_server::profile::demo_profile;
use fixloop_server::replay::Decision;
use fixloop_server::runtime::tuning::{Mode, engine_config};
use fixloop_server::{Config, DemoOptions, start_demo};
use futures_util::StreamExt as _;
use serde_json::json;
use tokio::process::Command;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;

use crate::e2e::{STEP, Socket};

/// Bound of the whole story.
const STORY: Duration = Duration::from_secs(90);

/// The next envelope on `socket`, without its `seq` (the hub's numbering of the stream, not an engine decision: a
/// replay publishes the engine's envelopes, which the hub has not numbered).
async fn next_envelope(socket: &mut Socket) -> WsEnvelope {
    loop {
        let frame = tokio::time::timeout(STEP, socket.next())
            .await
            .expect("an event in time")
            .expect("the socket stays open")
            .expect("no socket error");
        if let Message::Text(text) = frame {
            let mut envelope: WsEnvelope =
                serde_json::from_str(text.as_str()).expect("a WsEnvelope");
            assert!(envelope.seq.is_some(), "the live stream numbers its events");
            envelope.seq = None;
            return envelope;
        }
    }
}

/// Reads envelopes into `log` until one satisfies `wanted`.
async fn wait_for(
    socket: &mut Socket,
    log: &mut Vec<WsEnvelope>,
    wanted: impl Fn(&WsMessage) -> bool,
) -> WsMessage {
    loop {
        let envelope = next_envelope(socket).await;
        log.push(envelope.clone());
        if wanted(&envelope.message) {
            return envelope.message;
        }
    }
}

async fn post(client: &reqwest::Client, url: String, body: serde_json::Value) {
    let response = tokio::time::timeout(STEP, client.post(url).json(&body).send())
        .await
        .expect("answer in time")
        .expect("request sent");
    assert!(response.status().is_success(), "{}", response.status());
}

/// What the story left behind.
struct Story {
    demo_url: String,
    incident_id: String,
    failing_run_id: String,
    /// Every event the client received after its join snapshot.
    received: Vec<WsEnvelope>,
    /// `fixloop replay` run while the demo was still up.
    while_running: std::process::Output,
}

pub(crate) async fn fixloop_replay(args: &[&str]) -> std::process::Output {
    tokio::time::timeout(
        STEP,
        Command::new(env!("CARGO_BIN_EXE_fixloop"))
            .arg("replay")
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "warn")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the replay ends in time")
    .expect("the binary runs")
}

/// The whole demo story, journaled in `data`.
async fn story(data: &Path) -> Story {
    let mut options = DemoOptions::ephemeral();
    options.config.store = Some(StoreLocation::Directory(data.to_owned()));
    let demo = start_demo(options).await.expect("the demo starts");
    let api = demo.orchestrator_url.clone();
    let ws_url = format!("{}/ws", api.replacen("http://", "ws://", 1));
    let (mut socket, _) = tokio::time::timeout(STEP, connect_async(&ws_url))
        .await
        .expect("connect in time")
        .expect("handshake");
    // The join snapshot is stamped by the driver, not published by the engine: it is not in a replay.
    let join = next_envelope(&mut socket).await;
    assert!(matches!(join.message, WsMessage::SystemStatus(_)));
    let client = fixloop_adapters::default_client();
    let mut received = Vec::new();
    post(
        &client,
        format!("{api}/api/demo/bug"),
        json!({"enabled": true}),
    )
    .await;
    let WsMessage::IncidentCreated(card) = wait_for(&mut socket, &mut received, |message| {
        matches!(message, WsMessage::IncidentCreated(_))
    })
    .await
    else {
        unreachable!()
    };
    let WsMessage::TestsUpdated(failing) = wait_for(&mut socket, &mut received, |message| {
        matches!(message, WsMessage::TestsUpdated(run) if run.status == RunStatus::Failed)
    })
    .await
    else {
        unreachable!()
    };
    post(
        &client,
        format!("{api}/api/demo/bug"),
        json!({"enabled": false}),
    )
    .await;
    wait_for(&mut socket, &mut received, |message| {
        matches!(message, WsMessage::SystemStatus(status) if status.status == IncidentState::Recovered)
    })
    .await;
    let while_running = fixloop_replay(&["--data", &data.display().to_string()]).await;
    let demo_url = demo.demo_url.clone();
    tokio::time::timeout(STEP, demo.shutdown())
        .await
        .expect("the demo stops in time");
    Story {
        demo_url,
        incident_id: card.incident_id,
        failing_run_id: failing.run_id,
        received,
        while_running,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_of_the_demo_journal_reproduces_what_clients_saw_and_explains_recovered() {
    tokio::time::timeout(STORY, async {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let story = story(&data).await;

        // A running FixLoop holds the store: the replay says so instead of waiting or reading half a journal.
        assert!(!story.while_running.status.success());
        let stderr = String::from_utf8_lossy(&story.while_running.stderr);
        assert!(
            stderr.contains("in use by a running FixLoop"),
            "the lock is named: {stderr}"
        );

        // (b) The library replay publishes exactly what the live client received, told nothing but the service:
        // the journal records the configuration the demo ran with, and where it came from.
        let config = Config::from_env_map(&std::collections::HashMap::new()).expect("config");
        let service = demo_profile(&story.demo_url).spec.name;
        let store = fixloop_server::replay::open_store(&data).expect("the store opens");
        let replayed = fixloop_server::replay::replay(&store, &service, None)
            .await
            .expect("the replay runs");
        assert!(replayed.config_from_journal);
        assert!(
            replayed.warnings.is_empty(),
            "the replay matches the saved snapshot: {:?}",
            replayed.warnings
        );
        assert!(
            replayed
                .steps
                .iter()
                .flat_map(|step| &step.decisions)
                .any(|decision| matches!(
                    decision,
                    Decision::Configured { origin: Some(origin), changes }
                        if origin == "the built-in demo profile" && changes.is_empty()
                )),
            "the start journaled its configuration"
        );
        // Another configuration offered as a fallback (serve's timings) changes nothing: the journal's wins.
        let other = engine_config(Mode::Serve, &config, &demo_profile(&story.demo_url));
        let same = fixloop_server::replay::replay(&store, &service, Some(other))
            .await
            .expect("the replay runs");
        assert!(same.warnings.is_empty(), "{:?}", same.warnings);
        assert_eq!(same.steps, replayed.steps);
        fixloop_adapters::Store::close(&store).await.expect("close");
        let engine_published: Vec<&WsEnvelope> = replayed
            .published
            .iter()
            .filter(|envelope| !matches!(envelope.message, WsMessage::CopilotAnswer(_)))
            .collect();
        let received: Vec<&WsEnvelope> = story.received.iter().collect();
        let start = engine_published
            .iter()
            .position(|envelope| *envelope == received[0])
            .unwrap_or_else(|| {
                panic!(
                    "the first event the client received is replayed: {:?}",
                    received[0]
                )
            });
        let window = &engine_published[start..];
        assert!(
            window.len() >= received.len(),
            "the replay has every event the client received ({} of {})",
            window.len(),
            received.len()
        );
        for (index, (live, replay)) in received.iter().zip(window).enumerate() {
            assert_eq!(
                live, replay,
                "event {index} the client received differs from the replay's"
            );
        }
        assert!(
            received
                .iter()
                .any(|envelope| matches!(envelope.message, WsMessage::PlanGenerated(_)))
        );

        // (a) The binary prints the decisions: the incident, the failing run, RECOVERED with its reason; it needs
        // no flag but the data directory.
        let data_arg = data.display().to_string();
        let output = fixloop_replay(&["--data", &data_arg]).await;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "replay: {stderr}");
        assert!(!stderr.contains("warning"), "an exact replay: {stderr}");
        assert!(
            stdout.contains(&format!(
                "incident opened {}: demo-checkout: error rate",
                story.incident_id
            )),
            "{stdout}"
        );
        assert!(
            stdout.contains(&format!("run finished {}: FAILED", story.failing_run_id)),
            "{stdout}"
        );
        let recovered = stdout
            .lines()
            .find(|line| line.contains(&format!("RECOVERED {} by run", story.incident_id)))
            .unwrap_or_else(|| panic!("a RECOVERED line: {stdout}"));
        assert!(
            recovered.contains(
                "tests of the run passed and the signals are healthy; before this call: "
            ),
            "{recovered}"
        );
        assert!(stdout.contains("not RECOVERED yet"), "{stdout}");

        // --incident limits the printout to the incident's span; --json prints one object per line.
        let output = fixloop_replay(&[
            "--data",
            &data_arg,
            "--incident",
            &story.incident_id,
            "--json",
        ])
        .await;
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
            .collect();
        assert_eq!(lines[0]["kind"], "input");
        assert!(
            lines
                .iter()
                .all(|line| line["seq"].is_u64() && line["at"].is_string())
        );
        let opened = lines
            .iter()
            .position(|line| line["kind"] == "incident_opened")
            .expect("the opening is in the span");
        assert_eq!(lines[opened]["incident_id"], story.incident_id.as_str());
        assert!(
            lines.iter().any(|line| line["kind"] == "recovered"
                && line["incident_id"] == story.incident_id.as_str()),
            "the RECOVERED decision is in the span"
        );
        assert!(
            lines.iter().any(|line| line["kind"] == "run_finished"
                && line["run_id"] == story.failing_run_id.as_str()
                && line["status"] == "FAILED"
                && line["failing"][0]["details"].is_string()),
            "the failing run with its failing tests' details"
        );
        let everything = fixloop_replay(&["--data", &data_arg, "--json"]).await;
        // A flag for old journals is noted as unneeded, and changes nothing.
        let flagged = fixloop_replay(&["--data", &data_arg, "--json", "--mode", "serve"]).await;
        assert!(flagged.status.success());
        assert_eq!(flagged.stdout, everything.stdout);
        assert!(
            String::from_utf8_lossy(&flagged.stderr)
                .contains("records the configuration it ran with"),
            "{}",
            String::from_utf8_lossy(&flagged.stderr)
        );
        let all = String::from_utf8_lossy(&everything.stdout).lines().count();
        assert!(
            all > lines.len(),
            "the span is shorter than the whole journal"
        );

        // An unknown incident, and a directory without a journal, are clear errors.
        let output = fixloop_replay(&["--data", &data_arg, "--incident", "inc-nope"]).await;
        assert!(!output.status.success());
        assert!(String::from_utf8_lossy(&output.stderr).contains("no incident \"inc-nope\""));
        let empty = dir.path().join("empty");
        let output = fixloop_replay(&["--data", &empty.display().to_string()]).await;
        assert!(!output.status.success());
        assert!(String::from_utf8_lossy(&output.stderr).contains("there is no journal at"));
        assert!(!empty.exists(), "a replay never creates a journal");
    })
    .await
    .expect("the story completes in time");
}

#[tokio::test]
async fn a_replay_explains_a_rejected_plan_with_its_first_violation() {
    use fixloop_adapters::{JournalEntry, SqliteStore, Store};
    use fixloop_core::engine::{Effect, Engine, IncidentContext, Input, RecordedInput};
    use fixloop_core::{PlanId, rule_plan};

    let config = Config::from_env_map(&std::collections::HashMap::new()).expect("config");
    let engine_config = engine_config(Mode::Demo, &config, &demo_profile("http://127.0.0.1:8001"));
    let service = engine_config.service.name.clone();
    let store = SqliteStore::in_memory().expect("store");
    let mut now = chrono::DateTime::UNIX_EPOCH;
    let mut engine = Engine::new(engine_config.clone(), now);
    store
        .save_snapshot(&service, 0, engine.snapshot().expect("fresh"))
        .await
        .expect("first snapshot");
    // The driver's loop, journaling each input first; the planner's first plan has four items instead of five.
    let mut pending = vec![Input::SimulateOn];
    let mut seq = 0;
    let mut proposals = 0;
    while let Some(input) = pending.pop() {
        now += chrono::TimeDelta::milliseconds(10);
        seq += 1;
        store
            .append(
                &service,
                JournalEntry {
                    seq,
                    at: now,
                    input: Some(RecordedInput::from(&input)),
                },
            )
            .await
            .expect("append");
        let _ = engine.handle_input(now, input);
        while let Some(effect) = engine.poll_effect() {
            match effect {
                Effect::FetchContext { effect, .. } => pending.push(Input::ContextFetched {
                    effect,
                    result: Ok(IncidentContext::default()),
                }),
                Effect::RequestPlan {
                    effect, context, ..
                } => {
                    proposals += 1;
                    let mut plan = rule_plan(&context, PlanId::new(format!("p{proposals}")), now);
                    if proposals == 1 {
                        plan.items.pop();
                    }
                    pending.push(Input::PlanProposed { effect, plan });
                }
                _ => {}
            }
        }
    }
    let replayed = fixloop_server::replay::replay(&store, &service, None)
        .await
        .expect("the replay runs");
    let decisions: Vec<&Decision> = replayed
        .steps
        .iter()
        .flat_map(|step| &step.decisions)
        .collect();
    let rejected = decisions
        .iter()
        .find_map(|decision| match decision {
            Decision::PlanRejected { violations, first } => Some((*violations, first.clone())),
            _ => None,
        })
        .unwrap_or_else(|| panic!("a rejected plan: {decisions:?}"));
    assert!(rejected.0 >= 1);
    assert!(!rejected.1.is_empty());
    assert!(decisions.contains(&&Decision::PlanRequested {
        attempt: 2,
        planner: "configured".to_owned()
    }));
    assert!(
        decisions
            .iter()
            .any(|decision| matches!(decision, Decision::PlanValidated { tests: 5, .. })),
        "{decisions:?}"
    );
    let text = fixloop_server::replay::Replay::render_text(&replayed.shown(None).expect("steps"));
    assert!(
        text.contains(&format!(
            "plan rejected: {} violation(s), first: {}",
            rejected.0, rejected.1
        )),
        "{text}"
    );
}

/// A journal an older FixLoop wrote records no configuration: the replay needs it from the caller, refuses to guess,
/// and flags a wrong one.
#[tokio::test]
async fn a_journal_without_its_configuration_is_replayed_with_the_one_given_and_a_wrong_one_is_flagged()
 {
    use fixloop_adapters::{JournalEntry, SqliteStore, Store};
    use fixloop_core::engine::{Engine, Input, RecordedInput, Snapshot};
    use fixloop_server::replay::ReplayError;

    // A snapshot as an older build wrote it: the same image without its configuration.
    fn old(snapshot: Snapshot) -> Snapshot {
        let mut json = serde_json::to_value(snapshot).expect("serializes");
        json.as_object_mut().expect("an object").remove("config");
        serde_json::from_value(json).expect("an old snapshot reads")
    }

    let config = Config::from_env_map(&std::collections::HashMap::new()).expect("config");
    let right = engine_config(Mode::Demo, &config, &demo_profile("http://127.0.0.1:8001"));
    let service = right.service.name.clone();
    let store = SqliteStore::in_memory().expect("store");
    let mut now = chrono::DateTime::UNIX_EPOCH;
    let mut engine = Engine::new(right.clone(), now);
    store
        .save_snapshot(&service, 0, old(engine.snapshot().expect("fresh")))
        .await
        .expect("first snapshot");
    let inputs = [Input::SimulateOn];
    for (seq, input) in (1..).zip(inputs) {
        now += chrono::TimeDelta::milliseconds(10);
        let entry = JournalEntry {
            seq,
            at: now,
            input: Some(RecordedInput::from(&input)),
        };
        store.append(&service, entry).await.expect("append");
        let _ = engine.handle_input(now, input);
        while engine.poll_effect().is_some() {}
    }
    store
        .save_snapshot(&service, 1, old(engine.snapshot().expect("drained")))
        .await
        .expect("latest snapshot");

    let refused = fixloop_server::replay::replay(&store, &service, None).await;
    assert!(
        matches!(refused, Err(ReplayError::NoConfiguration(ref name)) if *name == service),
        "{refused:?}"
    );
    let exact = fixloop_server::replay::replay(&store, &service, Some(right.clone()))
        .await
        .expect("the replay runs");
    assert!(!exact.config_from_journal);
    assert!(exact.warnings.is_empty(), "{:?}", exact.warnings);
    // Another context deadline: the incident's context fetch is due at another time, and the replay says it is not
    // exact.
    let mut wrong = right;
    wrong.context_deadline *= 2;
    let flagged = fixloop_server::replay::replay(&store, &service, Some(wrong))
        .await
        .expect("the replay runs");
    assert!(
        flagged
            .warnings
            .iter()
            .any(|warning| warning.contains("differs from the snapshot")),
        "{:?}",
        flagged.warnings
    );
}
