//! The Datadog MCP context source against a fake Datadog MCP server written with rmcp (the documented tool names,
//! sample text results) over Streamable HTTP: the shared context source contract, then what is Datadog's own: the
//! tools' arguments, the evidence links into the Datadog UI, the documented credential headers, the preview tool
//! names, and rejected calls, refused keys and missing tools as classified `AdapterError`s.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fixloop_adapters::datadog::mcp::{API_KEY_HEADER, APPLICATION_KEY_HEADER};
use fixloop_adapters::{
    ContextQuery, ContextSource, DatadogMcpAuth, DatadogMcpConfig, DatadogMcpContext, ErrorKind,
    Secret,
};
use rmcp::model::{CallToolResult, JsonObject};
use rmcp::{ErrorData as McpError, tool, tool_router};
use serde_json::{Value, json};

use crate::contract::context_source::{self, ContextScenario, Situation};
use crate::mcp_fakes::{HttpFake, names, text};

const API_KEY: &str = "dd-api-secret";
const APP_KEY: &str = "dd-app-secret";
/// Every await of these tests is bounded by this.
const BOUND: Duration = Duration::from_secs(20);

/// How the fake Datadog answers the logs tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DatadogBehaviour {
    /// Sample data.
    Normal,
    /// No error logs in the window (the CSV header only); metrics and monitors as usual.
    LogsQuiet,
    /// `isError: true`.
    LogsFail,
    /// A JSON-RPC error.
    LogsReject,
    /// Never answers.
    LogsHang,
}

/// Sample logs text in the CSV-like shape Datadog describes; one line is very long.
pub(crate) fn sample_logs() -> String {
    format!(
        "timestamp,service,status,message\n\
         2026-03-14T09:29:01Z,checkout,error,\"POST /checkout -> 500 payment provider timeout\"\n\
         2026-03-14T09:29:02Z,checkout,error,db pool exhausted\n\
         2026-03-14T09:29:03Z,checkout,error,\"POST /checkout -> 500 payment provider timeout\"\n\
         2026-03-14T09:29:04Z,checkout,error,{}\n",
        "x".repeat(5000)
    )
}

/// A fake Datadog MCP server with the documented core tool names.
#[derive(Clone)]
pub(crate) struct FakeDatadog {
    /// Shared by every session of the server, so it can change while the server runs.
    behaviour: Arc<Mutex<DatadogBehaviour>>,
    /// Every tool call: (tool, arguments).
    pub(crate) calls: Arc<Mutex<Vec<(String, Value)>>>,
}

impl FakeDatadog {
    /// A server behaving as `behaviour`.
    pub(crate) fn new(behaviour: DatadogBehaviour) -> Self {
        Self {
            behaviour: Arc::new(Mutex::new(behaviour)),
            calls: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Changes how the next tool calls are answered.
    pub(crate) fn set_behaviour(&self, behaviour: DatadogBehaviour) {
        *self.behaviour.lock().expect("not poisoned") = behaviour;
    }

    fn record(&self, tool: &str, args: &JsonObject) {
        self.calls
            .lock()
            .expect("not poisoned")
            .push((tool.to_owned(), Value::Object(args.clone())));
    }
}

#[tool_router(server_handler)]
impl FakeDatadog {
    #[tool(description = "Search logs")]
    async fn search_datadog_logs(&self, args: JsonObject) -> Result<CallToolResult, McpError> {
        self.record("search_datadog_logs", &args);
        let behaviour = *self.behaviour.lock().expect("not poisoned");
        match behaviour {
            DatadogBehaviour::Normal => Ok(CallToolResult::success(text(sample_logs()))),
            DatadogBehaviour::LogsQuiet => Ok(CallToolResult::success(text(
                "timestamp,service,status,message\n",
            ))),
            DatadogBehaviour::LogsFail => Ok(CallToolResult::error(text(
                "Forbidden: MCP Read permission missing",
            ))),
            DatadogBehaviour::LogsReject => {
                Err(McpError::invalid_params("unknown argument from", None))
            }
            DatadogBehaviour::LogsHang => std::future::pending().await,
        }
    }

    #[tool(description = "Get metric timeseries")]
    async fn get_datadog_metric(&self, args: JsonObject) -> Result<CallToolResult, McpError> {
        self.record("get_datadog_metric", &args);
        Ok(CallToolResult::success(text(
            "query,min,max,last\nsum:trace.http.request.errors{service:checkout}.as_count(),0,41,38\n",
        )))
    }

    #[tool(description = "Search monitors")]
    async fn search_datadog_monitors(&self, args: JsonObject) -> Result<CallToolResult, McpError> {
        self.record("search_datadog_monitors", &args);
        Ok(CallToolResult::success(text(
            "id,name,status\n123,Checkout error rate is high,Alert\n",
        )))
    }
}

/// A Datadog MCP server of the preview, with only the old logs tool name.
#[derive(Clone, Default)]
pub(crate) struct FakeDatadogPreview;

#[tool_router(server_handler)]
impl FakeDatadogPreview {
    #[tool(description = "Search logs (preview name)")]
    async fn search_logs(&self) -> Result<CallToolResult, McpError> {
        Ok(CallToolResult::success(text(
            "message: cache stampede on /products",
        )))
    }
}

fn keys() -> DatadogMcpAuth {
    DatadogMcpAuth::Keys {
        api_key: Secret::new(API_KEY),
        application_key: Secret::new(APP_KEY),
    }
}

fn datadog_fake(fake: &FakeDatadog) -> HttpFake {
    let fake = fake.clone();
    HttpFake::start(
        move |_| fake.clone(),
        vec![
            ("dd_api_key", API_KEY.to_owned()),
            ("dd_application_key", APP_KEY.to_owned()),
        ],
    )
}

fn config(url: &str, auth: DatadogMcpAuth) -> DatadogMcpConfig {
    DatadogMcpConfig {
        env: Some("prod".to_owned()),
        timeout: Duration::from_secs(10),
        ..DatadogMcpConfig::new(url, auth)
    }
}

fn query() -> ContextQuery {
    context_source::query()
}

/// The fake Datadog MCP server behind a context source, switched per contract case; `Unreachable` stops it.
struct DatadogMcpScenario {
    fake: FakeDatadog,
    server: Mutex<Option<HttpFake>>,
}

#[async_trait::async_trait]
impl ContextScenario for DatadogMcpScenario {
    async fn arrange(&self, situation: Situation) {
        let behaviour = match situation {
            Situation::Incident => DatadogBehaviour::Normal,
            Situation::Quiet => DatadogBehaviour::LogsQuiet,
            Situation::Slow => DatadogBehaviour::LogsHang,
            Situation::Failing => DatadogBehaviour::LogsFail,
            Situation::Unreachable => {
                // Dropping the fake shuts its runtime down and joins its thread: nothing listens any more.
                drop(self.server.lock().expect("not poisoned").take());
                return;
            }
        };
        self.fake.set_behaviour(behaviour);
    }
}

#[tokio::test]
async fn datadog_mcp_context_meets_the_context_source_contract() {
    context_source::check_all(|| async {
        let fake = FakeDatadog::new(DatadogBehaviour::Normal);
        let server = datadog_fake(&fake);
        let mut config = config(&server.url, keys());
        // Every call of a gather has this timeout; in the slow case only the logs tool never answers. The notes'
        // caps stay the defaults, which the contract's bounds are derived from.
        config.timeout = Duration::from_secs(2);
        let source: Arc<dyn ContextSource> =
            Arc::new(DatadogMcpContext::new(config).expect("a context source"));
        let scenario = DatadogMcpScenario {
            fake,
            server: Mutex::new(Some(server)),
        };
        (source, Box::new(scenario) as Box<dyn ContextScenario>)
    })
    .await;
}

async fn gather(
    config: DatadogMcpConfig,
) -> Result<fixloop_adapters::ContextFindings, fixloop_adapters::AdapterError> {
    let source = DatadogMcpContext::new(config).expect("a context source");
    tokio::time::timeout(BOUND, source.gather(&query()))
        .await
        .expect("the gather is bounded")
}

#[tokio::test]
async fn findings_come_from_the_logs_metric_and_monitor_tools() {
    let fake = FakeDatadog::new(DatadogBehaviour::Normal);
    let server = datadog_fake(&fake);
    let mut config = config(&server.url, keys());
    config.max_note_chars = 120;
    let findings = gather(config).await.expect("findings");

    assert_eq!(
        findings.top_error.as_deref(),
        Some("POST /checkout -> 500 payment provider timeout")
    );
    let labels: Vec<&str> = findings
        .evidence_links
        .iter()
        .map(|link| link.label.as_str())
        .collect();
    assert_eq!(
        labels,
        [
            "Datadog error logs of checkout",
            "Datadog metrics of checkout",
            "Datadog monitors of checkout"
        ]
    );
    let urls: Vec<&str> = findings
        .evidence_links
        .iter()
        .map(|link| link.url.as_str())
        .collect();
    assert!(
        urls[0].starts_with("https://app.datadoghq.com/logs?query=service%3Acheckout"),
        "{urls:?}"
    );
    assert!(
        urls[1].contains("exp_metric=trace.http.request.hits"),
        "{urls:?}"
    );
    assert!(
        urls[2].starts_with("https://app.datadoghq.com/monitors/manage?q=service%3Acheckout"),
        "{urls:?}"
    );

    // Notes: untrusted vendor text, bounded in length and count, from every tool.
    assert!(!findings.notes.is_empty());
    assert!(findings.notes.len() <= 20);
    assert!(
        findings
            .notes
            .iter()
            .all(|note| note.chars().count() <= 120 + "monitors: …".len())
    );
    assert!(findings.notes.iter().any(|note| note.starts_with("logs: ")));
    assert!(
        findings
            .notes
            .iter()
            .any(|note| note.starts_with("metrics: ") && note.contains("0,41,38"))
    );
    assert!(
        findings
            .notes
            .iter()
            .any(|note| note == "monitors: 123,Checkout error rate is high,Alert")
    );

    let calls = fake.calls.lock().unwrap().clone();
    let tools: Vec<&str> = calls.iter().map(|(tool, _)| tool.as_str()).collect();
    assert_eq!(
        tools,
        [
            "search_datadog_logs",
            "get_datadog_metric",
            "search_datadog_monitors"
        ]
    );
    assert_eq!(
        calls[0].1,
        json!({"query": "service:checkout env:prod status:error", "from": "now-900s", "to": "now"})
    );
    assert_eq!(
        calls[1].1["queries"],
        json!([
            "sum:trace.http.request.hits{service:checkout,env:prod}.as_count()",
            "sum:trace.http.request.errors{service:checkout,env:prod}.as_count()"
        ])
    );
    assert_eq!(calls[2].1, json!({"query": "service:checkout env:prod"}));

    // The documented headers carry the keys; nothing else does.
    assert!(
        server
            .header_values(&API_KEY_HEADER.to_ascii_lowercase())
            .iter()
            .all(|v| v == API_KEY)
    );
    assert!(
        !server
            .header_values(&APPLICATION_KEY_HEADER.to_ascii_lowercase())
            .is_empty()
    );
    assert!(server.header_values("authorization").is_empty());
}

#[tokio::test]
async fn preview_tool_names_are_used_when_the_current_ones_are_missing() {
    let server = HttpFake::start(|_| FakeDatadogPreview, Vec::new());
    let findings = gather(config(&server.url, DatadogMcpAuth::None))
        .await
        .expect("findings");
    assert_eq!(
        findings.top_error.as_deref(),
        Some("cache stampede on /products")
    );
    assert_eq!(findings.evidence_links.len(), 1);
    assert_eq!(
        findings.notes,
        ["logs: message: cache stampede on /products"]
    );
}

#[tokio::test]
async fn rejected_calls_refused_keys_and_missing_tools_are_classified() {
    // A tool failing with `isError`, a hanging tool and a server that is gone are contract cases (above).
    let fake = FakeDatadog::new(DatadogBehaviour::LogsReject);
    let server = datadog_fake(&fake);
    let error = gather(config(&server.url, keys()))
        .await
        .expect_err("rejected");
    assert_eq!(error.kind(), ErrorKind::InvalidResponse);

    let fake = FakeDatadog::new(DatadogBehaviour::Normal);
    let server = datadog_fake(&fake);
    let wrong = DatadogMcpAuth::Keys {
        api_key: Secret::new("wrong"),
        application_key: Secret::new(APP_KEY),
    };
    let error = gather(config(&server.url, wrong))
        .await
        .expect_err("refused");
    assert_eq!(error.kind(), ErrorKind::Unauthorized);
    assert!(!error.detail().contains(APP_KEY), "{}", error.detail());
    assert!(fake.calls.lock().unwrap().is_empty());

    // A server without any of the tools.
    let other = HttpFake::start(
        |killer| crate::mcp_fakes::FakeTools::new(Some(killer)),
        Vec::new(),
    );
    let error = gather(config(&other.url, DatadogMcpAuth::None))
        .await
        .expect_err("no tools");
    assert_eq!(error.kind(), ErrorKind::InvalidResponse);
}

#[test]
fn debug_output_never_shows_a_key_and_the_fake_lists_the_documented_tools() {
    let config = config(
        "https://mcp.datadoghq.com/api/unstable/mcp-server/mcp",
        keys(),
    );
    let source = DatadogMcpContext::new(config.clone()).expect("a context source");
    for printed in [format!("{config:?}"), format!("{source:?}")] {
        assert!(
            !printed.contains(API_KEY) && !printed.contains(APP_KEY),
            "{printed}"
        );
    }
    assert_eq!(
        names(FakeDatadog::tool_router().list_all()),
        [
            "get_datadog_metric",
            "search_datadog_logs",
            "search_datadog_monitors"
        ]
    );
}

#[tokio::test]
async fn bearer_auth_sends_datadog_mcp_auth_as_a_bearer_token() {
    let fake = FakeDatadog::new(DatadogBehaviour::Normal);
    let server = {
        let fake = fake.clone();
        HttpFake::start(
            move |_| fake.clone(),
            vec![("authorization", "Bearer oauth-token".to_owned())],
        )
    };
    let findings = gather(config(
        &server.url,
        DatadogMcpAuth::Bearer(Secret::new("oauth-token")),
    ))
    .await
    .expect("findings");
    assert_eq!(findings.evidence_links.len(), 3);
    assert!(server.header_values("dd_api_key").is_empty());
}
