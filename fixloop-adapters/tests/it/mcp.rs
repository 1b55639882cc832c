//! The rmcp-based MCP client wrapper (`fixloop_adapters::mcp`) against local rmcp servers, over stdio (a child
//! process) and Streamable HTTP (in-process): handshake, tool listing, tool errors, timeouts, a server that dies
//! mid-call, refused credentials, and a server that cannot be reached.

use std::time::Duration;

use fixloop_adapters::ErrorKind;
use fixloop_adapters::mcp::{McpEndpoint, McpSession, mcp_http_client};
use fixloop_adapters::{AdapterError, Secret};
use serde_json::json;

use crate::mcp_fakes::{FakeTools, HttpFake, stdio_command};

/// Every await of these tests is bounded by this (the configured timeouts are much shorter).
const BOUND: Duration = Duration::from_secs(20);
/// The configured timeout of calls that are expected to answer.
const CALL: Duration = Duration::from_secs(10);
/// The configured timeout of calls that are expected to time out.
const SHORT: Duration = Duration::from_millis(300);

const TOKEN: &str = "mcp-bearer-secret";

fn stdio(kind: &str) -> McpEndpoint {
    let (command, args) = stdio_command(kind);
    McpEndpoint::Stdio {
        command,
        args,
        env: Vec::new(),
    }
}

fn http_fake() -> HttpFake {
    HttpFake::start(
        |killer| FakeTools::new(Some(killer)),
        vec![("authorization", format!("Bearer {TOKEN}"))],
    )
}

fn http(fake: &HttpFake, token: &str) -> McpEndpoint {
    McpEndpoint::Http {
        url: fake.url.clone(),
        bearer: Some(Secret::new(token)),
        headers: vec![("x-extra-credential".to_owned(), Secret::new("extra"))],
    }
}

async fn connect(endpoint: &McpEndpoint, timeout: Duration) -> Result<McpSession, AdapterError> {
    let client = mcp_http_client(CALL).expect("an http client");
    tokio::time::timeout(BOUND, McpSession::connect(endpoint, &client, timeout, None))
        .await
        .expect("connect is bounded")
}

async fn bounded<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, future)
        .await
        .expect("the call is bounded")
}

/// Handshake, listing, a call, both kinds of tool errors and an unknown tool, on one session.
async fn check_session(endpoint: &McpEndpoint) {
    let session = connect(endpoint, CALL)
        .await
        .expect("the handshake succeeds");
    let mut tools = bounded(session.list_tools(CALL)).await.expect("tools/list");
    tools.sort();
    assert_eq!(tools, ["die", "echo", "fail", "hang", "pid", "reject"]);

    let result = bounded(session.call_tool("echo", json!({"text": "hi"}), CALL))
        .await
        .expect("echo");
    assert_eq!(result.texts, ["echo: hi"]);
    assert!(!result.is_error);

    let result = bounded(session.call_tool("fail", json!({}), CALL))
        .await
        .expect("a tool-level failure is a result");
    assert!(result.is_error);
    assert_eq!(result.excerpt(), "the tool ran and failed");

    let error = bounded(session.call_tool("reject", json!({}), CALL))
        .await
        .expect_err("a json-rpc error");
    assert_eq!(error.kind(), ErrorKind::InvalidResponse);
    assert!(error.to_string().contains("-32602"), "{error}");
    assert!(error.to_string().contains("rejected on purpose"), "{error}");

    let error = bounded(session.call_tool("no_such_tool", json!({}), CALL))
        .await
        .expect_err("an unknown tool");
    assert_eq!(error.kind(), ErrorKind::InvalidResponse);
    bounded(session.close()).await;
}

/// A call that never answers times out after the configured timeout, and the session stays usable.
async fn check_timeout(endpoint: &McpEndpoint) {
    let session = connect(endpoint, CALL)
        .await
        .expect("the handshake succeeds");
    let error = bounded(session.call_tool("hang", json!({}), SHORT))
        .await
        .expect_err("a timeout");
    assert_eq!(error.kind(), ErrorKind::Timeout, "{}", error.detail());
    let result = bounded(session.call_tool("echo", json!({"text": "still here"}), CALL))
        .await
        .expect("the session survives a timed-out call");
    assert_eq!(result.texts, ["echo: still here"]);
    bounded(session.close()).await;
}

/// A server that dies mid-call fails the call as unavailable, without hanging.
async fn check_death(endpoint: &McpEndpoint) {
    let session = connect(endpoint, CALL)
        .await
        .expect("the handshake succeeds");
    let error = bounded(session.call_tool("die", json!({}), CALL))
        .await
        .expect_err("the server died");
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{}", error.detail());
    bounded(session.close()).await;
}

#[tokio::test]
async fn stdio_session_lists_tools_calls_them_and_classifies_tool_errors() {
    check_session(&stdio("generic")).await;
}

#[tokio::test]
async fn http_session_lists_tools_calls_them_and_classifies_tool_errors() {
    let fake = http_fake();
    check_session(&http(&fake, TOKEN)).await;
    let authorizations = fake.header_values("authorization");
    assert!(!authorizations.is_empty());
    assert!(
        authorizations
            .iter()
            .all(|value| *value == format!("Bearer {TOKEN}"))
    );
    assert!(
        fake.header_values("x-extra-credential")
            .iter()
            .all(|value| value == "extra")
    );
}

#[tokio::test]
async fn stdio_server_is_gone_once_the_session_is_closed() {
    let session = connect(&stdio("generic"), CALL)
        .await
        .expect("the handshake succeeds");
    let pid = bounded(session.call_tool("pid", json!({}), CALL))
        .await
        .expect("pid");
    let proc = std::path::PathBuf::from(format!("/proc/{}", pid.texts[0]));
    assert!(proc.exists(), "the server runs while the session is open");
    bounded(session.close()).await;
    // Closing ends the server (stdin closed, then SIGTERM, then SIGKILL) and reaps it.
    assert!(!proc.exists(), "the server is gone after close");
}

#[tokio::test]
async fn stdio_call_that_never_answers_times_out() {
    check_timeout(&stdio("generic")).await;
}

#[tokio::test]
async fn http_call_that_never_answers_times_out() {
    let fake = http_fake();
    check_timeout(&http(&fake, TOKEN)).await;
}

#[tokio::test]
async fn stdio_server_dying_mid_call_is_unavailable() {
    check_death(&stdio("generic")).await;
}

#[tokio::test]
async fn http_server_dying_mid_call_is_unavailable() {
    let fake = http_fake();
    check_death(&http(&fake, TOKEN)).await;
}

#[tokio::test]
async fn stdio_server_that_never_answers_the_handshake_times_out() {
    let error = connect(&stdio("silent"), SHORT)
        .await
        .expect_err("no handshake");
    assert_eq!(error.kind(), ErrorKind::Timeout, "{}", error.detail());
}

#[tokio::test]
async fn stdio_command_that_cannot_start_is_unavailable() {
    let endpoint = McpEndpoint::Stdio {
        command: "/nonexistent/mcp-server".to_owned(),
        args: Vec::new(),
        env: vec![("API_KEY".to_owned(), Secret::new("never-printed"))],
    };
    let error = connect(&endpoint, CALL).await.expect_err("no such command");
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert!(
        !error.detail().contains("never-printed"),
        "{}",
        error.detail()
    );
    assert!(!format!("{endpoint:?}").contains("never-printed"));
}

#[tokio::test]
async fn http_refused_credentials_are_unauthorized() {
    let fake = http_fake();
    let error = connect(&http(&fake, "wrong-token"), CALL)
        .await
        .expect_err("refused");
    assert_eq!(error.kind(), ErrorKind::Unauthorized, "{}", error.detail());
    assert!(
        !error.detail().contains("wrong-token"),
        "{}",
        error.detail()
    );
}

#[tokio::test]
async fn http_server_that_is_not_there_is_unavailable() {
    let url = {
        let fake = http_fake();
        fake.url.clone()
    };
    let endpoint = McpEndpoint::Http {
        url,
        bearer: None,
        headers: Vec::new(),
    };
    let error = connect(&endpoint, CALL).await.expect_err("nothing listens");
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{}", error.detail());
}
