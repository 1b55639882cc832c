//! The WebSocket hub and connection loop, over channels and over real sockets: a stalled client is dropped without
//! delaying the others, pings are answered, and the server closes dropped clients with 1008.

use std::time::Duration;

use axum::extract::ws::Message;
use fixloop_contract::{IncidentState, SystemStatus, WsEnvelope, WsMessage};
use fixloop_server::http::routes::ws::{
    CLOSE_TOO_SLOW, ConnectionConfig, ConnectionEnd, run_connection,
};
use fixloop_server::runtime::stream::Hub;
use futures_util::{Stream, sink};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(10);

fn envelope(index: u32) -> WsEnvelope {
    let now = "2026-11-21T10:15:00Z".parse().unwrap();
    WsMessage::SystemStatus(SystemStatus {
        status: IncidentState::Healthy,
        error_rate_5m: 0.0,
        p95_latency_ms_5m: f64::from(index),
        active_incident_id: None,
        updated_at: now,
        service: None,
        signals_degraded: None,
    })
    .at(now)
}

/// A client-to-server stream that never yields (the client sends nothing) until `close` is dropped.
fn silent_client(
    close: mpsc::Receiver<()>,
) -> impl Stream<Item = Result<Message, std::convert::Infallible>> + Unpin {
    Box::pin(futures_util::stream::unfold(
        close,
        |mut close| async move {
            let _ = close.recv().await;
            None
        },
    ))
}

#[tokio::test]
async fn stalled_client_does_not_delay_another_clients_events() {
    let mut hub = Hub::new(16);
    let config = ConnectionConfig {
        ping_interval: Duration::from_secs(3600),
        write_timeout: Duration::from_secs(3600),
    };
    // The stalled client: its socket accepts one frame and then never completes a write again.
    let stalled_queue = hub.subscribe(&[]);
    let (stalled_writes, _stalled_reader) = mpsc::channel::<Message>(1);
    let stalled_sink = Box::pin(sink::unfold(
        stalled_writes,
        |writes, message: Message| async move {
            writes.send(message).await.map_err(|_| ())?;
            Ok::<_, ()>(writes)
        },
    ));
    let (_stalled_close, stalled_input) = mpsc::channel(1);
    let stalled = tokio::spawn(run_connection(
        stalled_sink,
        silent_client(stalled_input),
        stalled_queue,
        config,
    ));
    // The healthy client reads everything.
    let healthy_queue = hub.subscribe(&[]);
    let (healthy_writes, mut healthy_reader) = mpsc::unbounded_channel::<Message>();
    let healthy_sink = Box::pin(sink::unfold(
        healthy_writes,
        |writes, message: Message| async move {
            writes.send(message).map_err(|_| ())?;
            Ok::<_, ()>(writes)
        },
    ));
    let (_healthy_close, healthy_input) = mpsc::channel(1);
    let healthy = tokio::spawn(run_connection(
        healthy_sink,
        silent_client(healthy_input),
        healthy_queue,
        config,
    ));

    let total = 200;
    let mut dropped = 0;
    for index in 0..total {
        dropped += hub.broadcast(&envelope(index));
        // The healthy client gets each event while the stalled one is stuck.
        let message = tokio::time::timeout(WAIT, healthy_reader.recv())
            .await
            .expect("the healthy client is not delayed")
            .expect("the healthy connection is open");
        let Message::Text(text) = message else {
            panic!("expected a text frame, got {message:?}")
        };
        let received: WsEnvelope = serde_json::from_str(text.as_str()).unwrap();
        assert_eq!(received.message, envelope(index).message, "in order");
        assert_eq!(received.seq, Some(u64::from(index) + 1), "numbered from 1");
    }
    assert_eq!(
        dropped, 1,
        "the stalled client was dropped once its queue was full"
    );
    assert_eq!(hub.len(), 1);
    assert!(
        !stalled.is_finished(),
        "the stalled connection is stuck in its write, alone"
    );
    stalled.abort();
    hub.close_all();
    let end = tokio::time::timeout(WAIT, healthy).await.unwrap().unwrap();
    assert_eq!(end, ConnectionEnd::ServerClosed);
}

#[tokio::test]
async fn dropped_client_is_closed_with_1008_and_pings_are_answered() {
    let mut hub = Hub::new(2);
    let queue = hub.subscribe(&[envelope(0)]);
    let (writes, mut written) = mpsc::unbounded_channel::<Message>();
    let sink = Box::pin(sink::unfold(
        writes,
        |writes, message: Message| async move {
            writes.send(message).map_err(|_| ())?;
            Ok::<_, ()>(writes)
        },
    ));
    let (client, client_frames) =
        mpsc::unbounded_channel::<Result<Message, std::convert::Infallible>>();
    let incoming = Box::pin(futures_util::stream::unfold(
        client_frames,
        |mut frames| async move { frames.recv().await.map(|frame| (frame, frames)) },
    ));
    let connection = tokio::spawn(run_connection(
        sink,
        incoming,
        queue,
        ConnectionConfig::default(),
    ));
    let first = tokio::time::timeout(WAIT, written.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(first, Message::Text(_)),
        "the snapshot comes first"
    );
    client
        .send(Ok(Message::Ping(axum::body::Bytes::from_static(b"hi"))))
        .unwrap();
    let pong = tokio::time::timeout(WAIT, written.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pong, Message::Pong(axum::body::Bytes::from_static(b"hi")));
    // Overflow: the connection task is parked on its input, so three events exceed the queue of two.
    let mut dropped = 0;
    for index in 1..=3 {
        dropped += hub.broadcast(&envelope(index));
    }
    assert_eq!(dropped, 1);
    let mut close = None;
    while let Some(message) = tokio::time::timeout(WAIT, written.recv()).await.unwrap() {
        if let Message::Close(frame) = message {
            close = frame;
            break;
        }
    }
    assert_eq!(close.map(|frame| frame.code), Some(CLOSE_TOO_SLOW));
    let end = tokio::time::timeout(WAIT, connection)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(end, ConnectionEnd::ServerClosed);
}

/// Reads text frames until a `copilot.answer` whose question is `question`.
async fn read_answer(
    socket: &mut tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    question: &str,
) {
    use futures_util::StreamExt;
    loop {
        let frame = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("the reading client is not delayed")
            .expect("its socket stays open")
            .expect("no socket error");
        if let tokio_tungstenite::tungstenite::Message::Text(text) = frame {
            let envelope: WsEnvelope = serde_json::from_str(text.as_str()).unwrap();
            if matches!(&envelope.message, WsMessage::CopilotAnswer(answer) if answer.question == question)
            {
                return;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_socket_that_never_reads_is_dropped_while_another_client_keeps_up() {
    let (server, address) = start_fake_orchestrator().await;
    let ws_url = format!("ws://{address}/ws");
    // The stalled client: a tiny receive buffer, and it never reads.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(2048).unwrap();
    let stream = tokio::time::timeout(WAIT, socket.connect(address))
        .await
        .unwrap()
        .unwrap();
    let (_stalled, _) =
        tokio::time::timeout(WAIT, tokio_tungstenite::client_async(&ws_url, stream))
            .await
            .unwrap()
            .unwrap();
    let stream = tokio::time::timeout(WAIT, tokio::net::TcpStream::connect(address))
        .await
        .unwrap()
        .unwrap();
    let (mut reader, _) =
        tokio::time::timeout(WAIT, tokio_tungstenite::client_async(&ws_url, stream))
            .await
            .unwrap()
            .unwrap();
    let client = fixloop_adapters::default_client();
    let padding = "x".repeat(3000);
    let mut dropped = false;
    for index in 0..3000 {
        let question = format!("question {index} {padding}");
        let response = tokio::time::timeout(
            WAIT,
            client
                .post(format!("{}/api/copilot/ask", server.orchestrator_url))
                .json(&serde_json::json!({"question": question}))
                .send(),
        )
        .await
        .unwrap()
        .unwrap();
        assert!(response.status().is_success());
        read_answer(&mut reader, &question).await;
        if index % 25 == 0 {
            let metrics = tokio::time::timeout(WAIT, async {
                client
                    .get(format!("{}/metrics", server.orchestrator_url))
                    .send()
                    .await?
                    .text()
                    .await
            })
            .await
            .unwrap()
            .unwrap();
            if metrics.contains("fixloop_websocket_clients_dropped_total 1") {
                dropped = true;
                break;
            }
        }
    }
    assert!(dropped, "the stalled client was dropped");
    // After the drop, the reader still gets every event at once.
    let question = format!("after the drop {padding}");
    let response = tokio::time::timeout(
        WAIT,
        client
            .post(format!("{}/api/copilot/ask", server.orchestrator_url))
            .json(&serde_json::json!({"question": question}))
            .send(),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(response.status().is_success());
    read_answer(&mut reader, &question).await;
    tokio::time::timeout(WAIT, server.shutdown())
        .await
        .expect("stops in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_client_message_ends_the_connection() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message as ClientMessage;

    // A client only sends pings, pongs and a close; the server's socket limits (small buffers, 64 KiB messages)
    // must be applied to the real `/ws` route, so a larger message ends the connection.
    let (server, address) = start_fake_orchestrator().await;
    let stream = tokio::time::timeout(WAIT, tokio::net::TcpStream::connect(address))
        .await
        .unwrap()
        .unwrap();
    let (mut client, _) = tokio::time::timeout(
        WAIT,
        tokio_tungstenite::client_async(format!("ws://{address}/ws"), stream),
    )
    .await
    .unwrap()
    .unwrap();
    let oversized =
        "x".repeat(fixloop_server::http::routes::ws::SOCKET_LIMITS.max_message_size + 1);
    tokio::time::timeout(WAIT, client.send(ClientMessage::text(oversized)))
        .await
        .unwrap()
        .unwrap();
    loop {
        let frame = tokio::time::timeout(WAIT, client.next())
            .await
            .expect("the server ends the connection instead of waiting for more");
        match frame {
            Some(Ok(ClientMessage::Text(_) | ClientMessage::Ping(_) | ClientMessage::Pong(_))) => {}
            Some(Ok(ClientMessage::Close(_)) | Err(_)) | None => break,
            Some(Ok(other)) => panic!("unexpected frame {other:?}"),
        }
    }
    tokio::time::timeout(WAIT, server.shutdown())
        .await
        .expect("stops in time");
}

/// An orchestrator with fake ports on an ephemeral loopback port, and its address.
pub(crate) async fn start_fake_orchestrator()
-> (fixloop_server::RunningServer, std::net::SocketAddr) {
    use std::sync::Arc;

    use fixloop_adapters::fake::{FakeCopilot, FakePlanner, FakeSignalSource, FakeTestRunner};
    use fixloop_server::{Mode, Ports, ServeOptions, start_serve};

    let ports = Ports {
        signals: Arc::new(FakeSignalSource::new()),
        planner: Arc::new(FakePlanner::new()),
        rule_planner: Arc::new(fixloop_adapters::RulePlanner),
        runner: Arc::new(FakeTestRunner::new()),
        copilot: Arc::new(FakeCopilot::new()),
        prober: Arc::new(FakeSignalSource::new()),
        context: None,
    };
    // The copilot is this file's event generator (thousands of questions): lift its rate limit.
    let mut config =
        fixloop_server::Config::from_env_map(&std::collections::HashMap::new()).unwrap();
    config.copilot_rate_limit = fixloop_server::http::auth::RateLimit {
        per_minute: 100_000,
        burst: 10_000,
    };
    let server = start_serve(ServeOptions {
        port: 0,
        mode: Mode::Demo,
        ports: Some(ports),
        config,
        ..ServeOptions::default()
    })
    .await
    .expect("the orchestrator starts");
    let address = server
        .orchestrator_url
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    (server, address)
}

/// Sends `GET /ws` with exactly `headers` (plus `Host`) over a fresh connection; the status and the body.
async fn handshake(address: std::net::SocketAddr, headers: &[(&str, &str)]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut stream = tokio::time::timeout(WAIT, tokio::net::TcpStream::connect(address))
        .await
        .expect("connects in time")
        .expect("connects");
    let mut request = format!("GET /ws HTTP/1.1\r\nHost: {address}\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    tokio::time::timeout(WAIT, stream.write_all(request.as_bytes()))
        .await
        .expect("writes in time")
        .expect("writes");
    let mut received = Vec::new();
    let head_end = loop {
        if let Some(at) = received.windows(4).position(|window| window == b"\r\n\r\n") {
            break at + 4;
        }
        let mut chunk = [0_u8; 1024];
        let read = tokio::time::timeout(WAIT, stream.read(&mut chunk))
            .await
            .expect("answers in time")
            .expect("reads");
        assert!(read > 0, "the server closed before answering");
        received.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&received[..head_end]).into_owned();
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    if status == 101 {
        return (status, String::new());
    }
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .expect("a content-length");
    while received.len() < head_end + length {
        let mut chunk = [0_u8; 1024];
        let read = tokio::time::timeout(WAIT, stream.read(&mut chunk))
            .await
            .expect("the body arrives in time")
            .expect("reads");
        assert!(read > 0, "the server closed inside the body");
        received.extend_from_slice(&chunk[..read]);
    }
    (
        status,
        String::from_utf8_lossy(&received[head_end..head_end + length]).into_owned(),
    )
}

/// `openapi.yaml` declares the opening handshake's headers as required parameters of `GET /ws`, so that a client
/// (or a fuzzer) sending what the spec says is valid gets 101, and one missing or breaking a header gets the
/// documented 400. A fuzzer once found the spec silent about them: a schema-valid `GET /ws` got 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_handshake_needs_exactly_the_headers_the_spec_declares() {
    let (server, address) = start_fake_orchestrator().await;
    let spec: serde_json::Value =
        serde_json::from_str(&fixloop_contract::openapi::openapi_json()).unwrap();
    let declared: Vec<(String, String)> = spec["paths"]["/ws"]["get"]["parameters"]
        .as_array()
        .expect("GET /ws declares its headers")
        .iter()
        .filter(|parameter| parameter["in"] != "query")
        .map(|parameter| {
            assert_eq!(parameter["in"], "header");
            assert_eq!(parameter["required"], true);
            (
                parameter["name"].as_str().unwrap().to_owned(),
                parameter["example"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let with = |replace: &str, value: Option<&'static str>| -> Vec<(String, String)> {
        declared
            .iter()
            .filter_map(|(name, example)| {
                if name == replace {
                    value.map(|value| (name.clone(), value.to_owned()))
                } else {
                    Some((name.clone(), example.clone()))
                }
            })
            .collect()
    };
    let send = |headers: Vec<(String, String)>| async move {
        let borrowed: Vec<(&str, &str)> = headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        handshake(address, &borrowed).await
    };

    let (status, _) = send(with("", None)).await;
    assert_eq!(status, 101, "the spec's examples make a valid handshake");
    // What the patterns allow beyond the examples: any case, and `upgrade` as one token of several.
    for (name, value) in [
        ("Connection", "keep-alive, UPGRADE"),
        ("Upgrade", "WebSocket"),
    ] {
        let (status, _) = send(with(name, Some(value))).await;
        assert_eq!(status, 101, "{name}: {value}");
    }
    for (name, _) in &declared {
        let (status, body) = send(with(name, None)).await;
        assert_eq!(status, 400, "without {name}");
        assert!(body.contains("websocket_upgrade_required"), "{body}");
    }
    for (name, value) in [
        ("Connection", "keep-alive"),
        ("Upgrade", "h2c"),
        ("Sec-WebSocket-Version", "8"),
    ] {
        let (status, body) = send(with(name, Some(value))).await;
        assert_eq!(status, 400, "{name}: {value} breaks the declared pattern");
        assert!(body.contains("websocket_upgrade_required"), "{body}");
    }
    tokio::time::timeout(WAIT, server.shutdown())
        .await
        .expect("stops in time");
}

/// Regression: `/ws` accepted any `Origin` (an evil page got 101 and could read every event of an open server).
/// A browser page may open it from the server's own origin or a configured CORS origin; a client that sends no
/// `Origin` (not a browser) is not affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_origin_cannot_open_the_websocket() {
    let (server, address) = start_fake_orchestrator().await;
    let upgrade = [
        ("Connection", "Upgrade"),
        ("Upgrade", "websocket"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    let own = format!("http://{address}");
    let with_origin = |origin: Option<&str>| {
        let mut headers: Vec<(String, String)> = upgrade
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        if let Some(origin) = origin {
            headers.push(("Origin".to_owned(), origin.to_owned()));
        }
        headers
    };
    let send = |headers: Vec<(String, String)>| async move {
        let borrowed: Vec<(&str, &str)> = headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        handshake(address, &borrowed).await
    };
    for origin in [None, Some(own.as_str()), Some("http://localhost:3000")] {
        let (status, body) = send(with_origin(origin)).await;
        assert_eq!(status, 101, "{origin:?}: {body}");
    }
    for origin in [
        "http://evil.example",
        "https://evil.example:443",
        "null",
        "http://127.0.0.1:1",
    ] {
        let (status, body) = send(with_origin(Some(origin))).await;
        assert_eq!(status, 403, "{origin}: {body}");
        let body: fixloop_contract::ErrorBody = serde_json::from_str(&body).expect("an ErrorBody");
        assert_eq!(
            body.code,
            fixloop_contract::codes::ORIGIN_NOT_ALLOWED,
            "{origin}"
        );
    }
    tokio::time::timeout(WAIT, server.shutdown())
        .await
        .expect("stops in time");
}

#[tokio::test]
async fn framed_connection_writes_the_hubs_frames_answers_pings_and_closes() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message as ClientMessage;
    use tokio_tungstenite::tungstenite::protocol::Role;

    let mut hub = Hub::new(8);
    let queue = hub.subscribe(&[envelope(0)]);
    let (server_io, client_io) = tokio::io::duplex(64 * 1024);
    let marker = fixloop_server::runtime::stream::SharedText::from("marker");
    let connection = tokio::spawn(fixloop_server::http::routes::ws::run_framed_connection(
        server_io,
        Some(marker.frame().clone()),
        queue,
        ConnectionConfig::default(),
    ));
    let mut client =
        tokio_tungstenite::WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
    assert_eq!(
        next_message(&mut client).await,
        ClientMessage::text("marker"),
        "the marker first"
    );
    let ClientMessage::Text(snapshot) = next_message(&mut client).await else {
        panic!("the snapshot is a text frame");
    };
    let snapshot: WsEnvelope = serde_json::from_str(snapshot.as_str()).unwrap();
    assert_eq!(snapshot.message, envelope(0).message);
    hub.broadcast(&envelope(1));
    let ClientMessage::Text(live) = next_message(&mut client).await else {
        panic!("a live event is a text frame");
    };
    let live: WsEnvelope = serde_json::from_str(live.as_str()).unwrap();
    assert_eq!((live.message, live.seq), (envelope(1).message, Some(1)));
    client
        .send(ClientMessage::Ping(b"hi".to_vec().into()))
        .await
        .unwrap();
    let pong = next_message(&mut client).await;
    assert_eq!(pong, ClientMessage::Pong(b"hi".to_vec().into()));
    hub.close_all();
    let close = next_message(&mut client).await;
    let ClientMessage::Close(Some(frame)) = close else {
        panic!("expected a close frame, got {close:?}");
    };
    assert_eq!(
        u16::from(frame.code),
        fixloop_server::http::routes::ws::CLOSE_GOING_AWAY
    );
    let end = tokio::time::timeout(WAIT, connection)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(end, ConnectionEnd::ServerClosed);
}

#[tokio::test]
async fn framed_connection_ends_when_the_client_closes_and_echoes_the_close() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message as ClientMessage;
    use tokio_tungstenite::tungstenite::protocol::Role;

    let mut hub = Hub::new(8);
    let queue = hub.subscribe(&[]);
    let (server_io, client_io) = tokio::io::duplex(64 * 1024);
    let connection = tokio::spawn(fixloop_server::http::routes::ws::run_framed_connection(
        server_io,
        None,
        queue,
        ConnectionConfig::default(),
    ));
    let mut client =
        tokio_tungstenite::WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
    client.close(None).await.unwrap();
    let end = tokio::time::timeout(WAIT, connection)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(end, ConnectionEnd::ClientClosed);
    // The server answered the close: the client's stream ends cleanly.
    let rest = tokio::time::timeout(WAIT, client.next()).await.unwrap();
    assert!(
        matches!(rest, None | Some(Ok(ClientMessage::Close(_)))),
        "{rest:?}"
    );
}

/// The next message a test client gets.
async fn next_message(
    client: &mut tokio_tungstenite::WebSocketStream<tokio::io::DuplexStream>,
) -> tokio_tungstenite::tungstenite::Message {
    use futures_util::StreamExt;
    tokio::time::timeout(WAIT, client.next())
        .await
        .expect("in time")
        .expect("open")
        .expect("a valid frame")
}
