//! Local MCP servers written with rmcp, for the MCP client tests: a generic one ([`FakeTools`]: echo, a failing
//! tool, a rejecting tool, a tool that never answers, a tool that kills its server) and a fake TestSprite
//! ([`FakeTestSprite`], answering in the shapes `testsprite::assumed` expects). The fake Datadog MCP server is in the
//! `datadog_mcp` tests.
//!
//! Over Streamable HTTP they run in-process ([`HttpFake`]: their own runtime on their own thread, so "the server
//! dies" is the runtime shutting down). Over stdio they run in a child process: this very test executable, started
//! with [`stdio_command`], runs [`serve_when_spawned`] in server mode (libtest's own lines on stdout are not JSON,
//! and rmcp skips them).

use std::net::TcpListener as StdTcpListener;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ContentBlock, JsonObject, ProgressNotificationParam, RequestMetaObject,
};
use rmcp::tool_router;
use rmcp::transport::stdio;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData as McpError, Peer, RoleServer, ServerHandler, ServiceExt, schemars, tool};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, oneshot, watch};

/// The argument that puts this test executable into server mode, followed by the kind of server.
const SERVE_MARKER: &str = "fake-mcp-server=";

/// The TestSprite key the stdio fake expects in `API_KEY`.
pub(crate) const TESTSPRITE_KEY: &str = "sk-user-testsprite-secret";

/// The command and arguments that start this executable as a stdio MCP server of `kind` (`generic`, `testsprite`
/// or `silent`, a process that never answers).
pub(crate) fn stdio_command(kind: &str) -> (String, Vec<String>) {
    let exe = std::env::current_exe().expect("the test executable has a path");
    (
        exe.display().to_string(),
        vec![
            "-q".to_owned(),
            "--exact".to_owned(),
            "mcp_fakes::serve_when_spawned".to_owned(),
            "--nocapture".to_owned(),
            "--test-threads=1".to_owned(),
            format!("{SERVE_MARKER}{kind}"),
        ],
    )
}

/// The sorted names of `tools` (what a fake server lists).
pub(crate) fn names(tools: Vec<rmcp::model::Tool>) -> Vec<String> {
    let mut names: Vec<String> = tools
        .into_iter()
        .map(|tool| tool.name.into_owned())
        .collect();
    names.sort();
    names
}

/// In server mode, serves on stdio until stdin closes; otherwise checks the fakes list the tools the tests rely on.
#[test]
fn serve_when_spawned() {
    let kind = std::env::args().find_map(|arg| arg.strip_prefix(SERVE_MARKER).map(str::to_owned));
    let Some(kind) = kind else {
        assert_eq!(
            names(FakeTools::tool_router().list_all()),
            ["die", "echo", "fail", "hang", "pid", "reject"]
        );
        assert_eq!(
            names(FakeTestSprite::tool_router().list_all()),
            [
                "testsprite_generate_code_and_execute",
                "testsprite_get_test_results"
            ]
        );
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        match kind.as_str() {
            "generic" => {
                let service = FakeTools::new(None).serve(stdio()).await.expect("serve");
                let _ = service.waiting().await;
            }
            "testsprite" => {
                let fake = FakeTestSprite::new(TestSpriteBehaviour::Polling);
                fake.state.expect_env_key(TESTSPRITE_KEY);
                let service = fake.serve(stdio()).await.expect("serve");
                let _ = service.waiting().await;
            }
            "silent" => {
                // Reads and ignores everything until the client goes away.
                let _ = tokio::io::copy(&mut tokio::io::stdin(), &mut tokio::io::sink()).await;
            }
            other => panic!("unknown fake server {other}"),
        }
    });
}

/// Ends a fake server: the stdio fakes exit the process; the HTTP fakes shut their runtime down.
#[derive(Clone, Default)]
pub(crate) struct Killer(Arc<Mutex<Option<oneshot::Sender<()>>>>);

impl Killer {
    fn kill(&self) {
        match self.0.lock().expect("not poisoned").take() {
            Some(stop) => {
                let _ = stop.send(());
            }
            None => std::process::exit(3),
        }
    }
}

/// An MCP server on `127.0.0.1:0` over Streamable HTTP, on a runtime of its own.
pub(crate) struct HttpFake {
    /// The MCP endpoint.
    pub(crate) url: String,
    /// The headers of every request received.
    pub(crate) headers: Arc<Mutex<Vec<HeaderMap>>>,
    killer: Killer,
    thread: Option<JoinHandle<()>>,
}

impl HttpFake {
    /// Serves `make()` sessions; requests whose headers lack one of `required` (name, value) get a 401.
    pub(crate) fn start<S, F>(make: F, required: Vec<(&'static str, String)>) -> Self
    where
        S: ServerHandler,
        F: Fn(Killer) -> S + Send + Sync + 'static,
    {
        let listener = StdTcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).expect("nonblocking");
        let url = format!("http://{}/mcp", listener.local_addr().expect("an address"));
        let (stop, stopped) = oneshot::channel();
        let killer = Killer(Arc::new(Mutex::new(Some(stop))));
        let headers = Arc::new(Mutex::new(Vec::new()));
        let (session_killer, recorded) = (killer.clone(), Arc::clone(&headers));
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                let service = StreamableHttpService::new(
                    move || Ok(make(session_killer.clone())),
                    LocalSessionManager::default().into(),
                    StreamableHttpServerConfig::default(),
                );
                let app = axum::Router::new().nest_service("/mcp", service).layer(
                    axum::middleware::from_fn(
                        move |request: axum::extract::Request, next: axum::middleware::Next| {
                            let (recorded, required) = (Arc::clone(&recorded), required.clone());
                            async move {
                                recorded
                                    .lock()
                                    .expect("not poisoned")
                                    .push(request.headers().clone());
                                let refused = required.iter().any(|(name, value)| {
                                    request.headers().get(*name).and_then(|v| v.to_str().ok())
                                        != Some(value.as_str())
                                });
                                if refused {
                                    return (StatusCode::UNAUTHORIZED, "bad key").into_response();
                                }
                                next.run(request).await
                            }
                        },
                    ),
                );
                let listener = tokio::net::TcpListener::from_std(listener).expect("a listener");
                tokio::spawn(async move {
                    let _ = axum::serve(listener, app).await;
                });
                let _ = stopped.await;
            });
            // Every connection and session task dies here, mid-call or not.
            runtime.shutdown_background();
        });
        Self {
            url,
            headers,
            killer,
            thread: Some(thread),
        }
    }

    /// The recorded values of header `name`.
    pub(crate) fn header_values(&self, name: &str) -> Vec<String> {
        self.headers
            .lock()
            .expect("not poisoned")
            .iter()
            .filter_map(|headers| headers.get(name)?.to_str().ok().map(str::to_owned))
            .collect()
    }
}

impl Drop for HttpFake {
    fn drop(&mut self) {
        if let Some(stop) = self.killer.0.lock().expect("not poisoned").take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

pub(crate) fn text(text: impl Into<String>) -> Vec<ContentBlock> {
    vec![ContentBlock::text(text)]
}

/// The arguments of `echo`.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub(crate) struct EchoArgs {
    /// What to say back.
    pub(crate) text: String,
}

/// A generic server.
#[derive(Clone)]
pub(crate) struct FakeTools {
    killer: Killer,
}

impl FakeTools {
    /// A server; `killer` ends it on `die` (`None`: the process exits).
    pub(crate) fn new(killer: Option<Killer>) -> Self {
        Self {
            killer: killer.unwrap_or_default(),
        }
    }
}

#[tool_router(server_handler)]
impl FakeTools {
    #[tool(description = "Say the text back")]
    async fn echo(
        &self,
        Parameters(args): Parameters<EchoArgs>,
    ) -> Result<CallToolResult, McpError> {
        Ok(CallToolResult::success(text(format!(
            "echo: {}",
            args.text
        ))))
    }

    #[tool(description = "The server's process id")]
    async fn pid(&self) -> Result<CallToolResult, McpError> {
        Ok(CallToolResult::success(text(
            std::process::id().to_string(),
        )))
    }

    #[tool(description = "Run and fail (isError)")]
    async fn fail(&self) -> Result<CallToolResult, McpError> {
        Ok(CallToolResult::error(text("the tool ran and failed")))
    }

    #[tool(description = "Refuse the request (JSON-RPC error)")]
    async fn reject(&self) -> Result<CallToolResult, McpError> {
        Err(McpError::invalid_params("rejected on purpose", None))
    }

    #[tool(description = "Never answer")]
    async fn hang(&self) -> Result<CallToolResult, McpError> {
        std::future::pending().await
    }

    #[tool(description = "Kill the server mid-call")]
    async fn die(&self) -> Result<CallToolResult, McpError> {
        self.killer.kill();
        std::future::pending().await
    }
}

/// How the fake TestSprite answers the run tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TestSpriteBehaviour {
    /// One progress notification per test (a per-test result in its message), each followed by a wait for a
    /// permit of [`TestSpriteState::gate`]; then the full result.
    Progress,
    /// Reveals one more test (in reverse plan order) per call of the status tool; answers the run once every test
    /// was revealed, with the full result.
    Polling,
    /// A result naming no test (the `next_action` shape of user scripts).
    Silent,
    /// `isError: true`.
    Failing,
    /// Never answers.
    Hanging,
}

/// What the fake TestSprite knows and records.
pub(crate) struct TestSpriteState {
    behaviour: Mutex<TestSpriteBehaviour>,
    /// Which tests fail, with the failure's text.
    pub(crate) fails: Mutex<fn(&str) -> Option<&'static str>>,
    /// Permits for the progress behaviour: one per test, released by the test.
    pub(crate) gate: Semaphore,
    /// Every tool call: (tool, arguments).
    pub(crate) calls: Mutex<Vec<(String, Value)>>,
    order: Mutex<Vec<String>>,
    revealed: watch::Sender<usize>,
    env_key: Mutex<Option<&'static str>>,
}

impl TestSpriteState {
    /// Sets the behaviour of the next runs.
    pub(crate) fn set_behaviour(&self, behaviour: TestSpriteBehaviour) {
        *self.behaviour.lock().expect("not poisoned") = behaviour;
    }

    fn expect_env_key(&self, key: &'static str) {
        *self.env_key.lock().expect("not poisoned") = Some(key);
    }

    fn result_of(&self, id: &str) -> Value {
        match (self.fails.lock().expect("not poisoned"))(id) {
            Some(error) => json!({"testId": id, "status": "failed", "error": error}),
            None => json!({"testId": id, "status": "passed"}),
        }
    }

    fn refused(&self) -> Option<CallToolResult> {
        let expected = (*self.env_key.lock().expect("not poisoned"))?;
        (std::env::var("API_KEY").ok().as_deref() != Some(expected))
            .then(|| CallToolResult::error(text("API key invalid")))
    }
}

/// A fake TestSprite MCP server.
#[derive(Clone)]
pub(crate) struct FakeTestSprite {
    /// Shared by every session of the server.
    pub(crate) state: Arc<TestSpriteState>,
}

impl FakeTestSprite {
    /// A server behaving as `behaviour`, where every test passes.
    pub(crate) fn new(behaviour: TestSpriteBehaviour) -> Self {
        Self {
            state: Arc::new(TestSpriteState {
                behaviour: Mutex::new(behaviour),
                fails: Mutex::new(|_| None),
                gate: Semaphore::new(0),
                calls: Mutex::new(Vec::new()),
                order: Mutex::new(Vec::new()),
                revealed: watch::Sender::new(0),
                env_key: Mutex::new(None),
            }),
        }
    }

    fn record(&self, tool: &str, args: &JsonObject) {
        self.state
            .calls
            .lock()
            .expect("not poisoned")
            .push((tool.to_owned(), Value::Object(args.clone())));
    }
}

#[tool_router(server_handler)]
impl FakeTestSprite {
    #[tool(
        name = "testsprite_generate_code_and_execute",
        description = "Generate and run tests"
    )]
    async fn run(
        &self,
        args: JsonObject,
        meta: RequestMetaObject,
        client: Peer<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        self.record("testsprite_generate_code_and_execute", &args);
        if let Some(refused) = self.state.refused() {
            return Ok(refused);
        }
        let ids: Vec<String> = args
            .get("testIds")
            .and_then(Value::as_array)
            .map(|ids| {
                ids.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let behaviour = *self.state.behaviour.lock().expect("not poisoned");
        match behaviour {
            TestSpriteBehaviour::Progress => {
                let token = meta.get_progress_token().ok_or_else(|| {
                    McpError::invalid_params("a progress token is required", None)
                })?;
                for (index, id) in ids.iter().enumerate() {
                    let message = format!("finished {id}: {}", self.state.result_of(id));
                    let _ = client
                        .notify_progress(
                            ProgressNotificationParam::new(token.clone(), (index + 1) as f64)
                                .with_total(ids.len() as f64)
                                .with_message(message),
                        )
                        .await;
                    self.state
                        .gate
                        .acquire()
                        .await
                        .expect("never closed")
                        .forget();
                }
            }
            TestSpriteBehaviour::Polling => {
                *self.state.order.lock().expect("not poisoned") =
                    ids.iter().rev().cloned().collect();
                self.state.revealed.send_replace(0);
                let mut revealed = self.state.revealed.subscribe();
                let _ = revealed.wait_for(|count| *count >= ids.len()).await;
            }
            TestSpriteBehaviour::Silent => {
                return Ok(CallToolResult::success(text(
                    "{\"status\":\"ok\",\"next_action\":[]}",
                )));
            }
            TestSpriteBehaviour::Failing => {
                return Ok(CallToolResult::error(text("API key invalid")));
            }
            TestSpriteBehaviour::Hanging => return std::future::pending().await,
        }
        let results: Vec<Value> = ids.iter().map(|id| self.state.result_of(id)).collect();
        Ok(CallToolResult::success(text(format!(
            "Execution finished.\n```json\n{}\n```",
            json!({"results": results})
        ))))
    }

    #[tool(
        name = "testsprite_get_test_results",
        description = "Results of the tests run so far"
    )]
    async fn status(&self, args: JsonObject) -> Result<CallToolResult, McpError> {
        self.record("testsprite_get_test_results", &args);
        let order = self.state.order.lock().expect("not poisoned").clone();
        let mut count = 0;
        self.state.revealed.send_modify(|revealed| {
            *revealed = (*revealed + 1).min(order.len());
            count = *revealed;
        });
        let results: Vec<Value> = order[..count]
            .iter()
            .map(|id| self.state.result_of(id))
            .collect();
        Ok(CallToolResult::success(text(
            json!({"results": results}).to_string(),
        )))
    }
}
