//! WebSocket resume over real loopback sockets: a client that reconnects with `GET /ws?since=SEQ` gets exactly the
//! events it missed, in `seq` order, then the live ones; a `since` the server cannot replay from gets a
//! `stream.reset` marker and then the join snapshot; a client without `since` sees what a v1 client always saw;
//! a `since` that is not a non-negative integer is 400 `invalid_since`, and an `events` that names no known group
//! is 400 `invalid_events`.

use std::net::SocketAddr;
use std::time::Duration;

use fixloop_contract::{StreamResetReason, WsEnvelope, WsMessage, codes};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use crate::ws::start_fake_orchestrator;

const WAIT: Duration = Duration::from_secs(10);

type Socket = WebSocketStream<tokio::net::TcpStream>;

/// One text frame as received: its exact text, and the envelope it holds.
#[derive(Debug, Clone)]
struct Frame {
    text: String,
    envelope: WsEnvelope,
}

impl Frame {
    fn seq(&self) -> u64 {
        self.envelope
            .seq
            .expect("this server numbers every message")
    }

    fn kind(&self) -> &'static str {
        self.envelope.message.kind()
    }
}

async fn connect(address: SocketAddr, query: &str) -> Socket {
    let stream = tokio::time::timeout(WAIT, tokio::net::TcpStream::connect(address))
        .await
        .expect("connects in time")
        .expect("connects");
    let (socket, _) = tokio::time::timeout(
        WAIT,
        tokio_tungstenite::client_async(format!("ws://{address}/ws{query}"), stream),
    )
    .await
    .expect("upgrades in time")
    .expect("upgrades");
    socket
}

/// The next text frame (pings are answered by tungstenite and skipped here).
async fn next_frame(socket: &mut Socket) -> Frame {
    loop {
        let frame = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("a message in time")
            .expect("the socket stays open")
            .expect("no socket error");
        if let Message::Text(text) = frame {
            let envelope = serde_json::from_str(text.as_str()).expect("a WsEnvelope");
            return Frame {
                text: text.as_str().to_owned(),
                envelope,
            };
        }
    }
}

/// Frames until (and with) the first that `done` accepts.
async fn frames_until(socket: &mut Socket, done: impl Fn(&Frame) -> bool) -> Vec<Frame> {
    let mut frames = Vec::new();
    loop {
        let frame = next_frame(socket).await;
        let last = done(&frame);
        frames.push(frame);
        if last {
            return frames;
        }
    }
}

fn answers(question: &str) -> impl Fn(&Frame) -> bool + '_ {
    move |frame| matches!(&frame.envelope.message, WsMessage::CopilotAnswer(answer) if answer.question == question)
}

async fn post(client: &reqwest::Client, url: String, body: Value) {
    let response = tokio::time::timeout(WAIT, client.post(url).json(&body).send())
        .await
        .expect("answers in time")
        .expect("answers");
    assert!(response.status().is_success(), "{}", response.status());
}

async fn ask(client: &reqwest::Client, server: &fixloop_server::RunningServer, question: &str) {
    post(
        client,
        format!("{}/api/copilot/ask", server.orchestrator_url),
        json!({ "question": question }),
    )
    .await;
}

fn assert_strictly_increasing(frames: &[Frame], after: u64) {
    let mut previous = after;
    for frame in frames {
        assert!(
            frame.seq() > previous,
            "seq {} after {previous} ({})",
            frame.seq(),
            frame.kind()
        );
        previous = frame.seq();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_reconnects_with_since_gets_exactly_the_missed_events_then_live_ones() {
    let (server, address) = start_fake_orchestrator().await;
    let client = fixloop_adapters::default_client();
    let mut dashboard = connect(address, "").await;
    // The observer stays connected throughout: it sees every event the dashboard misses.
    let mut observer = connect(address, "").await;
    ask(&client, &server, "before the disconnect").await;
    let seen = frames_until(&mut dashboard, answers("before the disconnect")).await;
    let last_seen = seen.iter().map(Frame::seq).max().unwrap();
    assert_eq!(seen.last().unwrap().seq(), last_seen);
    drop(dashboard);

    // Several events while the dashboard is away: an incident, its run's tests.updated, two copilot answers.
    post(
        &client,
        format!("{}/api/incidents/simulate", server.orchestrator_url),
        json!({ "mode": "INCIDENT_ON" }),
    )
    .await;
    let observed = frames_until(&mut observer, |frame| frame.kind() == "tests.updated").await;
    ask(&client, &server, "while away 1").await;
    ask(&client, &server, "while away 2").await;
    let mut observed = [
        observed,
        frames_until(&mut observer, answers("while away 2")).await,
    ]
    .concat();
    observed.retain(|frame| frame.seq() > last_seen);
    for kind in ["incident.created", "tests.updated", "copilot.answer"] {
        assert!(
            observed.iter().any(|frame| frame.kind() == kind),
            "the dashboard missed a {kind}"
        );
    }
    assert_strictly_increasing(&observed, last_seen);

    let mut resumed = connect(address, &format!("?since={last_seen}")).await;
    let replayed = frames_until(&mut resumed, answers("while away 2")).await;
    assert_eq!(
        replayed.iter().map(|frame| &frame.text).collect::<Vec<_>>(),
        observed.iter().map(|frame| &frame.text).collect::<Vec<_>>(),
        "exactly the missed events, byte for byte, in order, without a snapshot"
    );
    assert!(
        replayed
            .iter()
            .all(|frame| WsMessage::TYPES.contains(&frame.kind()))
    );
    // Then the live events continue the same sequence.
    ask(&client, &server, "after the resume").await;
    let live = frames_until(&mut resumed, answers("after the resume")).await;
    assert_strictly_increasing(&live, replayed.last().unwrap().seq());
    tokio::time::timeout(WAIT, server.shutdown())
        .await
        .expect("stops in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_since_the_server_cannot_replay_gets_a_marker_then_the_snapshot() {
    let (server, address) = start_fake_orchestrator().await;
    let client = fixloop_adapters::default_client();

    // The current seq, from a plain join snapshot.
    let mut socket = connect(address, "").await;
    let current = next_frame(&mut socket).await.seq();
    drop(socket);

    // Too new: a seq this process has not issued yet; and too old: one of an earlier process (the server's
    // sequence starts at its start time, above every earlier process's numbers).
    for (since, reason) in [
        (current + 1_000_000, StreamResetReason::TooNew),
        (1, StreamResetReason::TooOld),
    ] {
        let mut socket = connect(address, &format!("?since={since}")).await;
        let marker = next_frame(&mut socket).await;
        let WsMessage::StreamReset(reset) = &marker.envelope.message else {
            panic!("expected stream.reset first, got {}", marker.kind());
        };
        assert_eq!(reset.since, since);
        assert_eq!(reset.reason, reason);
        let snapshot = next_frame(&mut socket).await;
        assert_eq!(
            snapshot.kind(),
            "system.status",
            "the join snapshot follows"
        );
        drop(socket);
    }

    // Too old: more events than the ring keeps, with nobody connected.
    let total = fixloop_server::runtime::stream::DEFAULT_REPLAY_CAPACITY + 5;
    for index in 0..total {
        ask(&client, &server, &format!("filler {index}")).await;
    }
    let mut socket = connect(address, "?since=0").await;
    let marker = next_frame(&mut socket).await;
    let WsMessage::StreamReset(reset) = &marker.envelope.message else {
        panic!("expected stream.reset first, got {}", marker.kind());
    };
    assert_eq!(reset.since, 0);
    assert_eq!(reset.reason, StreamResetReason::TooOld);
    assert!(reset.oldest_available > 1);
    let snapshot = next_frame(&mut socket).await;
    assert_eq!(
        snapshot.kind(),
        "system.status",
        "the join snapshot follows"
    );
    let latest = snapshot.seq();
    assert!(latest >= current + u64::try_from(total).unwrap());
    drop(socket);

    // Resuming right before the oldest kept event replays the whole ring, and nothing else.
    let since = reset.oldest_available - 1;
    let mut socket = connect(address, &format!("?since={since}")).await;
    let last_question = format!("filler {}", total - 1);
    let replayed = frames_until(&mut socket, answers(&last_question)).await;
    assert_eq!(replayed.first().unwrap().seq(), reset.oldest_available);
    assert_eq!(replayed.last().unwrap().seq(), latest);
    assert_eq!(
        replayed.len(),
        fixloop_server::runtime::stream::DEFAULT_REPLAY_CAPACITY,
        "one service keeps the latest 1,024 events"
    );
    assert_strictly_increasing(&replayed, since);
    tokio::time::timeout(WAIT, server.shutdown())
        .await
        .expect("stops in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_since_sees_the_snapshot_and_live_events_as_before() {
    let (server, address) = start_fake_orchestrator().await;
    let client = fixloop_adapters::default_client();
    for index in 0..3 {
        ask(&client, &server, &format!("earlier {index}")).await;
    }
    let mut socket = connect(address, "").await;
    ask(&client, &server, "live").await;
    let frames = frames_until(&mut socket, answers("live")).await;
    assert_eq!(frames[0].kind(), "system.status", "the join snapshot first");
    assert!(
        frames
            .iter()
            .all(|frame| WsMessage::TYPES.contains(&frame.kind())),
        "no new message type without since: {:?}",
        frames.iter().map(Frame::kind).collect::<Vec<_>>()
    );
    assert!(
        !frames.iter().any(answers("earlier 0")),
        "no history is replayed to a client that did not ask"
    );
    // Without its additive `seq`, every message is the v1 envelope it always was.
    for frame in &frames {
        let mut value: Value = serde_json::from_str(&frame.text).unwrap();
        value.as_object_mut().unwrap().remove("seq");
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys.len(), 3, "{keys:?}");
        let v1 = WsEnvelope {
            seq: None,
            ..frame.envelope.clone()
        };
        assert_eq!(serde_json::to_value(&v1).unwrap(), value);
    }
    let snapshot_seq = frames[0].seq();
    assert_strictly_increasing(&frames[frames.len() - 1..], snapshot_seq);
    tokio::time::timeout(WAIT, server.shutdown())
        .await
        .expect("stops in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn since_that_is_not_a_non_negative_integer_is_400_invalid_since() {
    let (server, _) = start_fake_orchestrator().await;
    let client = fixloop_adapters::default_client();
    for bad in [
        "since=-1",
        "since=abc",
        "since=",
        "since=1.5",
        "since=%2B3",
        "since=99999999999999999999999",
        "since=1&since=2",
    ] {
        let response = tokio::time::timeout(
            WAIT,
            client
                .get(format!("{}/ws?{bad}", server.orchestrator_url))
                .send(),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(response.status(), 400, "{bad}");
        let body: fixloop_contract::ErrorBody = response.json().await.unwrap();
        assert_eq!(body.code, codes::INVALID_SINCE, "{bad}");
    }
    tokio::time::timeout(WAIT, server.shutdown())
        .await
        .expect("stops in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_that_name_an_unknown_group_or_are_malformed_is_400_invalid_events() {
    let (server, address) = start_fake_orchestrator().await;
    let client = fixloop_adapters::default_client();
    for bad in [
        "events=",
        "events=audit",
        "events=remediation,",
        "events=,remediation",
        "events=REMEDIATION",
        "events=remediation&events=remediation",
    ] {
        let response = tokio::time::timeout(
            WAIT,
            client
                .get(format!("{}/ws?{bad}", server.orchestrator_url))
                .send(),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(response.status(), 400, "{bad}");
        let body: fixloop_contract::ErrorBody = response.json().await.unwrap();
        assert_eq!(body.code, codes::INVALID_EVENTS, "{bad}");
    }
    // A known group upgrades, alone or with `since`, and starts with the join snapshot as usual.
    for good in [
        "?events=remediation",
        "?events=remediation,remediation&since=0",
    ] {
        let mut socket = connect(address, good).await;
        let first = next_frame(&mut socket).await;
        assert!(
            matches!(first.kind(), "system.status" | "stream.reset"),
            "{good}: {}",
            first.text
        );
    }
    tokio::time::timeout(WAIT, server.shutdown())
        .await
        .expect("stops in time");
}
