//! TestSprite runner over MCP against scripted stubs: a wiremock Streamable HTTP server answering JSON-RPC (JSON
//! and SSE bodies, session id, protocol version header, Bearer key) and a scripted stdio child process (a Python
//! script written to a temp dir that answers newline-delimited JSON-RPC), plus the shared test-runner contract.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use fixloop_adapters::testsprite::assumed::RUN_TOOL;
use fixloop_adapters::testsprite::{TestSpriteConfig, TestSpriteRunner, TestSpriteTransport};
use fixloop_adapters::{ErrorKind, TestProgress, TestRunner};
use fixloop_contract::TestStatus;
use fixloop_core::{RunId, ValidatedPlan};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::contract::test_runner::{self, RunnerScenario, ServiceBehaviour, validated_rule_plan};

const KEY: &str = "sk-user-testsprite-secret";
const BASE_URL: &str = "http://127.0.0.1:8080";

fn http_config(server: &MockServer) -> TestSpriteConfig {
    TestSpriteConfig {
        request_timeout: Duration::from_millis(800),
        run_timeout: Duration::from_millis(800),
        ..TestSpriteConfig::http(KEY, format!("{}/mcp", server.uri()), "/work/demo")
    }
}

fn initialize_result() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "result": {
        "protocolVersion": "2025-06-18",
        "capabilities": {"tools": {"listChanged": true}},
        "serverInfo": {"name": "TestSprite", "version": "1.0.0"}}})
}

/// Answers `tools/call` from the request's `testIds`: a test fails when `fails` says so, with `details`.
struct ToolStub {
    fails: fn(&str) -> Option<&'static str>,
    sse: bool,
}

impl Respond for ToolStub {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
        let ids: Vec<String> = body
            .pointer("/params/arguments/testIds")
            .and_then(Value::as_array)
            .map(|ids| {
                ids.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let results: Vec<Value> = ids
            .iter()
            .map(|id| match (self.fails)(id) {
                Some(error) => json!({"testId": id, "status": "failed", "error": error}),
                None => json!({"testId": id, "status": "passed"}),
            })
            .collect();
        let text = format!(
            "Execution finished.\n```json\n{}\n```",
            json!({"results": results})
        );
        let response = json!({"jsonrpc": "2.0", "id": body["id"], "result": {
            "content": [{"type": "text", "text": text}], "isError": false}});
        if self.sse {
            let stream = format!(
                "event: message\nid: 0\ndata: \n\nevent: message\ndata: {}\n\nevent: message\ndata: {response}\n\n",
                json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progress": 1}})
            );
            ResponseTemplate::new(200).set_body_raw(stream, "text/event-stream")
        } else {
            ResponseTemplate::new(200).set_body_json(response)
        }
    }
}

async fn mount_mcp(server: &MockServer, tool: impl Respond + 'static) {
    Mock::given(method("POST"))
        .and(path("/mcp"))
        .and(body_partial_json(json!({"method": "initialize"})))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("mcp-session-id", "test-session-1")
                .set_body_json(initialize_result()),
        )
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/mcp"))
        .and(body_partial_json(
            json!({"method": "notifications/initialized"}),
        ))
        .and(header("mcp-session-id", "test-session-1"))
        .respond_with(ResponseTemplate::new(202))
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/mcp"))
        .and(body_partial_json(
            json!({"method": "tools/call", "params": {"name": RUN_TOOL}}),
        ))
        .and(header("mcp-session-id", "test-session-1"))
        .and(header("mcp-protocol-version", "2025-06-18"))
        .respond_with(tool)
        .mount(server)
        .await;
}

async fn run(
    runner: &TestSpriteRunner,
    plan: &ValidatedPlan,
) -> (
    Result<(), fixloop_adapters::AdapterError>,
    Vec<TestProgress>,
) {
    let (sender, mut receiver) = mpsc::channel(64);
    let result = tokio::time::timeout(
        Duration::from_secs(20),
        runner.run(&RunId::new("run-1"), plan, sender),
    )
    .await
    .expect("the run is bounded");
    let mut reports = Vec::new();
    while let Ok(progress) = receiver.try_recv() {
        reports.push(progress);
    }
    (result, reports)
}

fn verdict<'a>(reports: &'a [TestProgress], id: &str) -> &'a TestProgress {
    reports
        .iter()
        .rev()
        .find(|report| report.test_id == id)
        .unwrap_or_else(|| panic!("no report for {id}: {reports:?}"))
}

#[tokio::test]
async fn http_run_reports_running_then_verdicts_and_sends_the_mcp_handshake() {
    let server = MockServer::start().await;
    mount_mcp(
        &server,
        ToolStub {
            fails: |id| {
                id.contains("checkout-valid")
                    .then_some("POST /checkout answered 500")
            },
            sse: true,
        },
    )
    .await;
    let plan = validated_rule_plan(BASE_URL);
    let runner = TestSpriteRunner::new(http_config(&server), reqwest::Client::new());
    let (result, reports) = run(&runner, &plan).await;
    result.unwrap();
    let ids: Vec<String> = plan.tests().map(|(item, _)| item.test_id.clone()).collect();
    assert_eq!(reports.len(), 2 * ids.len(), "{reports:?}");
    for (index, id) in ids.iter().enumerate() {
        assert_eq!(reports[index].test_id, *id);
        assert_eq!(
            reports[index].status,
            TestStatus::Running,
            "RUNNING comes first"
        );
    }
    let failed = verdict(&reports, "t1-checkout-valid");
    assert_eq!(failed.status, TestStatus::Fail);
    assert_eq!(
        failed.details.as_deref(),
        Some("POST /checkout answered 500")
    );
    assert_eq!(verdict(&reports, "t3-health").status, TestStatus::Pass);

    let requests = server.received_requests().await.unwrap();
    let bodies: Vec<Value> = requests
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    let methods: Vec<&str> = bodies
        .iter()
        .map(|b| b["method"].as_str().unwrap())
        .collect();
    assert_eq!(
        methods,
        ["initialize", "notifications/initialized", "tools/call"]
    );
    assert_eq!(bodies[0]["jsonrpc"], "2.0");
    assert_eq!(bodies[0]["params"]["protocolVersion"], "2025-06-18");
    assert_eq!(bodies[0]["params"]["clientInfo"]["name"], "fixloop");
    assert!(bodies[1].get("id").is_none(), "a notification has no id");
    assert!(requests[0].headers.get("mcp-session-id").is_none());
    for request in &requests {
        assert_eq!(
            request.headers.get("authorization").unwrap(),
            &format!("Bearer {KEY}")
        );
        assert_eq!(
            request.headers.get("accept").unwrap(),
            "application/json, text/event-stream"
        );
    }
    let arguments = &bodies[2]["params"]["arguments"];
    assert_eq!(arguments["projectPath"], "/work/demo");
    assert_eq!(arguments["projectName"], "demo");
    assert_eq!(arguments["testIds"], json!(ids));
    let instruction = arguments["additionalInstruction"].as_str().unwrap();
    assert!(
        instruction.contains(&format!("{BASE_URL}/checkout")),
        "{instruction}"
    );
    assert!(instruction.contains("run-1"), "{instruction}");
}

#[tokio::test]
async fn a_test_without_a_result_fails_and_json_bodies_work() {
    let server = MockServer::start().await;
    mount_mcp(
        &server,
        ToolStub {
            fails: |_| None,
            sse: false,
        },
    )
    .await;
    let plan = validated_rule_plan(BASE_URL);
    let runner = TestSpriteRunner::new(http_config(&server), reqwest::Client::new());
    let (result, reports) = run(&runner, &plan).await;
    result.unwrap();
    for (item, _) in plan.tests() {
        assert_eq!(verdict(&reports, &item.test_id).status, TestStatus::Pass);
    }

    // A server whose result mentions no test (the `next_action` shape seen in user scripts).
    struct Silent;
    impl Respond for Silent {
        fn respond(&self, request: &Request) -> ResponseTemplate {
            let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
            ResponseTemplate::new(200).set_body_json(json!({"jsonrpc": "2.0", "id": body["id"],
                "result": {"content": [{"type": "text", "text": "{\"status\":\"ok\",\"next_action\":[]}"}], "isError": false}}))
        }
    }
    let server = MockServer::start().await;
    mount_mcp(&server, Silent).await;
    let runner = TestSpriteRunner::new(http_config(&server), reqwest::Client::new());
    let (result, reports) = run(&runner, &plan).await;
    result.unwrap();
    for (item, _) in plan.tests() {
        let report = verdict(&reports, &item.test_id);
        assert_eq!(report.status, TestStatus::Fail, "never PASS by default");
        assert!(report.details.as_deref().unwrap().contains("no result"));
    }
}

async fn failing_http_run(tool: ResponseTemplate) -> (ErrorKind, Vec<TestProgress>) {
    let server = MockServer::start().await;
    mount_mcp(&server, tool).await;
    let runner = TestSpriteRunner::new(http_config(&server), reqwest::Client::new());
    let (result, reports) = run(&runner, &validated_rule_plan(BASE_URL)).await;
    (result.unwrap_err().kind(), reports)
}

#[tokio::test]
async fn http_failures_are_classified() {
    let (kind, _) = failing_http_run(
        ResponseTemplate::new(200).set_body_json(json!({"jsonrpc": "2.0", "id": 2,
        "result": {"content": [{"type": "text", "text": "API key invalid"}], "isError": true}})),
    )
    .await;
    assert_eq!(kind, ErrorKind::Unavailable);
    let (kind, _) = failing_http_run(
        ResponseTemplate::new(200).set_body_json(json!({"jsonrpc": "2.0", "id": 2,
        "error": {"code": -32602, "message": "Unknown tool"}})),
    )
    .await;
    assert_eq!(kind, ErrorKind::InvalidResponse);
    let (kind, reports) =
        failing_http_run(ResponseTemplate::new(200).set_delay(Duration::from_secs(3))).await;
    assert_eq!(kind, ErrorKind::Timeout);
    assert!(
        reports.iter().all(|r| r.status == TestStatus::Running),
        "no verdict without a result"
    );
    assert_eq!(
        failing_http_run(ResponseTemplate::new(200).set_body_string("{"))
            .await
            .0,
        ErrorKind::InvalidResponse
    );
    assert_eq!(
        failing_http_run(ResponseTemplate::new(200)).await.0,
        ErrorKind::InvalidResponse
    );
    assert_eq!(
        failing_http_run(ResponseTemplate::new(500)).await.0,
        ErrorKind::Unavailable
    );
    assert_eq!(
        failing_http_run(ResponseTemplate::new(429).insert_header("retry-after", "60"))
            .await
            .0,
        ErrorKind::RateLimited {
            retry_after: Some(Duration::from_secs(60))
        }
    );

    // Credentials rejected at initialize.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"error": {"code": "AUTH_INVALID", "message": "bad key"}})),
        )
        .mount(&server)
        .await;
    let runner = TestSpriteRunner::new(http_config(&server), reqwest::Client::new());
    let (result, reports) = run(&runner, &validated_rule_plan(BASE_URL)).await;
    assert_eq!(result.unwrap_err().kind(), ErrorKind::Unauthorized);
    assert!(reports.is_empty());
}

static SCRIPT_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Writes `body` as a Python script in a fresh temp dir and returns (script, record file).
fn write_script(body: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "fixloop-testsprite-{}-{}",
        std::process::id(),
        SCRIPT_COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("server.py");
    std::fs::write(&script, body).unwrap();
    (script, dir.join("record.jsonl"))
}

/// A scripted MCP server: answers initialize, ignores notifications, prints a log line and a progress
/// notification before the tools/call result, pings the client once, and records what it received and its
/// API_KEY in the record file (argv[1]).
const STDIO_SERVER: &str = r#"
import json, os, sys
record = open(sys.argv[1], "a")
record.write(json.dumps({"api_key": os.environ.get("API_KEY")}) + "\n")
for line in sys.stdin:
    message = json.loads(line)
    record.write(json.dumps(message) + "\n"); record.flush()
    method = message.get("method")
    if method == "initialize":
        print(json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": {"protocolVersion": "2025-06-18",
              "capabilities": {"tools": {}}, "serverInfo": {"name": "scripted", "version": "0"}}}), flush=True)
    elif method == "tools/call":
        print("starting TestSprite run (log line on stdout)", flush=True)
        print(json.dumps({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progress": 1}}), flush=True)
        print(json.dumps({"jsonrpc": "2.0", "id": "srv-1", "method": "ping"}), flush=True)
        pong = json.loads(sys.stdin.readline())
        record.write(json.dumps(pong) + "\n"); record.flush()
        ids = message["params"]["arguments"]["testIds"]
        results = [{"testId": i, "status": "failed" if "checkout-valid" in i else "passed",
                    "error": "status 500" if "checkout-valid" in i else None} for i in ids]
        text = "Report:\n" + json.dumps({"results": results})
        print(json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": {"content": [{"type": "text", "text": text}], "isError": False}}), flush=True)
"#;

fn stdio_config(script: &Path, record: &Path) -> TestSpriteConfig {
    TestSpriteConfig {
        transport: TestSpriteTransport::Stdio {
            command: "python3".to_owned(),
            args: vec![script.display().to_string(), record.display().to_string()],
        },
        request_timeout: Duration::from_secs(10),
        run_timeout: Duration::from_secs(10),
        ..TestSpriteConfig::stdio(KEY, "/work/demo")
    }
}

#[tokio::test]
async fn stdio_run_speaks_newline_delimited_json_rpc_to_a_child() {
    let (script, record) = write_script(STDIO_SERVER);
    let runner = TestSpriteRunner::new(stdio_config(&script, &record), reqwest::Client::new());
    let plan = validated_rule_plan(BASE_URL);
    let (result, reports) = run(&runner, &plan).await;
    result.unwrap();
    assert_eq!(
        verdict(&reports, "t1-checkout-valid").status,
        TestStatus::Fail
    );
    assert_eq!(
        verdict(&reports, "t1-checkout-valid").details.as_deref(),
        Some("status 500")
    );
    assert_eq!(verdict(&reports, "t3-health").status, TestStatus::Pass);

    let lines: Vec<Value> = std::fs::read_to_string(&record)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(
        lines[0]["api_key"], KEY,
        "the key reaches the server as API_KEY"
    );
    let methods: Vec<&str> = lines[1..]
        .iter()
        .filter_map(|m| m["method"].as_str())
        .collect();
    assert_eq!(
        methods,
        ["initialize", "notifications/initialized", "tools/call"]
    );
    let pong = lines
        .iter()
        .find(|m| m["id"] == "srv-1")
        .expect("the ping was answered");
    assert_eq!(pong["result"], json!({}));
    let _ = std::fs::remove_dir_all(script.parent().unwrap());
}

#[tokio::test]
async fn stdio_failures_are_bounded_and_classified() {
    // A server that exits at once.
    let (script, record) = write_script("import sys\nsys.exit(0)\n");
    let first_dir = script.parent().unwrap().to_path_buf();
    let runner = TestSpriteRunner::new(stdio_config(&script, &record), reqwest::Client::new());
    let (result, _) = run(&runner, &validated_rule_plan(BASE_URL)).await;
    assert_eq!(result.unwrap_err().kind(), ErrorKind::Unavailable);

    // A server that never answers.
    let (script, record) =
        write_script("import sys, time\nfor line in sys.stdin:\n    time.sleep(60)\n");
    let mut config = stdio_config(&script, &record);
    config.request_timeout = Duration::from_millis(300);
    let runner = TestSpriteRunner::new(config, reqwest::Client::new());
    let (result, _) = run(&runner, &validated_rule_plan(BASE_URL)).await;
    assert_eq!(result.unwrap_err().kind(), ErrorKind::Timeout);

    // A command that does not exist.
    let mut config = stdio_config(&script, &record);
    config.transport = TestSpriteTransport::Stdio {
        command: "/nonexistent/testsprite-mcp".to_owned(),
        args: Vec::new(),
    };
    let runner = TestSpriteRunner::new(config, reqwest::Client::new());
    let (result, _) = run(&runner, &validated_rule_plan(BASE_URL)).await;
    assert_eq!(result.unwrap_err().kind(), ErrorKind::Unavailable);
    let _ = std::fs::remove_dir_all(first_dir);
    let _ = std::fs::remove_dir_all(script.parent().unwrap());
}

#[test]
fn defaults_launch_the_documented_package_and_debug_hides_the_key() {
    let config = TestSpriteConfig::stdio(KEY, "/work/demo/");
    assert_eq!(
        config.transport,
        TestSpriteTransport::Stdio {
            command: "npx".to_owned(),
            args: vec![
                "-y".to_owned(),
                "@testsprite/testsprite-mcp@latest".to_owned()
            ],
        }
    );
    assert_eq!(config.project_name, "demo");
    let runner = TestSpriteRunner::new(config.clone(), reqwest::Client::new());
    for debug in [format!("{config:?}"), format!("{runner:?}")] {
        assert!(!debug.contains(KEY), "{debug}");
    }
}

/// The MCP stub standing in for TestSprite testing a service that behaves as arranged.
struct McpScenario {
    server: MockServer,
}

#[async_trait]
impl RunnerScenario for McpScenario {
    async fn arrange(&self, behaviour: ServiceBehaviour) -> String {
        self.server.reset().await;
        let fails: fn(&str) -> Option<&'static str> = match behaviour {
            ServiceBehaviour::Healthy => |_| None,
            ServiceBehaviour::CheckoutBroken => |id| {
                id.contains("checkout-valid")
                    .then_some("POST /checkout answered 500, expected 200")
            },
            ServiceBehaviour::Unreachable => |_| Some("connection refused by the target"),
        };
        mount_mcp(&self.server, ToolStub { fails, sse: true }).await;
        BASE_URL.to_owned()
    }
}

#[tokio::test]
async fn testsprite_runner_meets_the_test_runner_contract() {
    test_runner::check_all(|| async {
        let server = MockServer::start().await;
        let runner: Arc<dyn TestRunner> = Arc::new(TestSpriteRunner::new(
            http_config(&server),
            reqwest::Client::new(),
        ));
        (
            runner,
            Box::new(McpScenario { server }) as Box<dyn RunnerScenario>,
        )
    })
    .await;
}
