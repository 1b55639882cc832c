//! A [`ContextSource`] over Datadog's remote MCP server ([`DatadogMcpContext`]), spoken with the official Rust MCP
//! SDK through [`crate::mcp`].
//!
//! Per gather: connect over Streamable HTTP to `DATADOG_MCP_URL` and run the handshake, list the tools, then call
//! the logs, metric and monitors tools that the server lists (current names first, preview names as fallback) for the
//! service over the window, and build [`ContextFindings`]: the top error from the logs, evidence links into the
//! Datadog UI (Log Explorer, Metric Explorer, monitors of the service), and notes (the tools' text lines, untrusted,
//! at most [`DatadogMcpConfig::max_notes`] lines, each of its tool's name and at most
//! [`DatadogMcpConfig::max_note_chars`] characters of its text).
//! Every call is bounded by [`DatadogMcpConfig::timeout`]; one attempt; any tool failure fails the gather with the
//! classified [`AdapterError`] (a tool's `isError` result is [`Unavailable`](crate::ErrorKind::Unavailable)).
//!
//! Verified and assumed shapes: see [`assumed`]. The credential headers `DD_API_KEY` and `DD_APPLICATION_KEY` are
//! verified; sending `DATADOG_MCP_AUTH` as a Bearer token is assumed.

pub mod assumed;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use fixloop_contract::Link;

use super::DatadogSite;
use super::links::{logs_url, metric_explorer_url};
use crate::error::AdapterError;
use crate::mcp::{self, McpEndpoint, McpSession, ToolResult};
use crate::ports::{ContextFindings, ContextQuery, ContextSource};
use crate::secret::Secret;

/// The header carrying the API key (verified; underscores, unlike the REST API's `DD-API-KEY`).
pub const API_KEY_HEADER: &str = "DD_API_KEY";
/// The header carrying the application key (verified).
pub const APPLICATION_KEY_HEADER: &str = "DD_APPLICATION_KEY";

/// How FixLoop authenticates to Datadog's MCP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatadogMcpAuth {
    /// The documented non-interactive headers `DD_API_KEY` and `DD_APPLICATION_KEY`.
    Keys {
        /// `DD_API_KEY`.
        api_key: Secret,
        /// `DD_APP_KEY`, sent as `DD_APPLICATION_KEY`.
        application_key: Secret,
    },
    /// `Authorization: Bearer <token>` (assumption 3 of [`assumed`]): an OAuth access token obtained outside FixLoop.
    Bearer(Secret),
    /// No credential (a proxy in front of the server authenticates).
    None,
}

/// Configuration of the Datadog MCP context source.
#[derive(Debug, Clone, PartialEq)]
pub struct DatadogMcpConfig {
    /// The MCP endpoint, for example `https://mcp.datadoghq.com/api/unstable/mcp-server/mcp`.
    pub url: String,
    /// The credential.
    pub auth: DatadogMcpAuth,
    /// The site, for the UI links.
    pub site: DatadogSite,
    /// UI base URL replacing the site's app host in evidence links.
    pub app_url_override: Option<String>,
    /// `DD_ENV`: the env tag the queries filter on, if any.
    pub env: Option<String>,
    /// Metric queries over the service; `{scope}` is replaced by the tags (`service:X,env:Y`).
    pub metric_queries: Vec<String>,
    /// Timeout of the handshake, of the tool list and of each tool call. A gather makes at most five such calls
    /// one after the other, so it takes at most five times this, plus closing the session
    /// ([`CLOSE_TIMEOUT`](crate::mcp::CLOSE_TIMEOUT)).
    pub timeout: Duration,
    /// Most notes returned.
    pub max_notes: usize,
    /// Longest vendor text of a note, and longest top error, in characters. A note adds its tool's prefix
    /// (`logs: `, `metrics: `, `monitors: `), and text that was cut ends in `…`.
    pub max_note_chars: usize,
}

impl DatadogMcpConfig {
    /// A configuration with the defaults: US1, no env, APM `trace.http.request` hits and errors, 15 s per call, at
    /// most 20 notes of 200 characters.
    #[must_use]
    pub fn new(url: impl Into<String>, auth: DatadogMcpAuth) -> Self {
        Self {
            url: url.into(),
            auth,
            site: DatadogSite::default(),
            app_url_override: None,
            env: None,
            metric_queries: vec![
                "sum:trace.http.request.hits{{scope}}.as_count()".to_owned(),
                "sum:trace.http.request.errors{{scope}}.as_count()".to_owned(),
            ],
            timeout: Duration::from_secs(15),
            max_notes: 20,
            max_note_chars: 200,
        }
    }

    fn endpoint(&self) -> McpEndpoint {
        let (bearer, headers) = match &self.auth {
            DatadogMcpAuth::Keys {
                api_key,
                application_key,
            } => (
                None,
                vec![
                    (API_KEY_HEADER.to_owned(), api_key.clone()),
                    (APPLICATION_KEY_HEADER.to_owned(), application_key.clone()),
                ],
            ),
            DatadogMcpAuth::Bearer(token) => (Some(token.clone()), Vec::new()),
            DatadogMcpAuth::None => (None, Vec::new()),
        };
        McpEndpoint::Http {
            url: self.url.clone(),
            bearer,
            headers,
        }
    }

    fn app_base(&self) -> String {
        self.app_url_override
            .clone()
            .unwrap_or_else(|| self.site.app_base())
            .trim_end_matches('/')
            .to_owned()
    }

    fn tags(&self, service: &str) -> Vec<String> {
        let mut tags = vec![format!("service:{service}")];
        if let Some(env) = self.env.as_deref().filter(|env| !env.is_empty()) {
            tags.push(format!("env:{env}"));
        }
        tags
    }
}

/// The Datadog MCP context source.
#[derive(Debug, Clone)]
pub struct DatadogMcpContext {
    config: DatadogMcpConfig,
    http: reqwest::Client,
}

impl DatadogMcpContext {
    /// A context source.
    ///
    /// # Errors
    ///
    /// [`Unavailable`](crate::ErrorKind::Unavailable) when the HTTP client of the MCP transport cannot be built.
    pub fn new(config: DatadogMcpConfig) -> Result<Self, AdapterError> {
        let http = mcp::mcp_http_client(config.timeout)?;
        Ok(Self { config, http })
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &DatadogMcpConfig {
        &self.config
    }

    async fn gather_in(
        &self,
        session: &McpSession,
        query: &ContextQuery,
    ) -> Result<ContextFindings, AdapterError> {
        let config = &self.config;
        let tools = session.list_tools(config.timeout).await?;
        let pick = |names: [&'static str; 2]| {
            names
                .into_iter()
                .find(|name| tools.iter().any(|tool| tool == name))
        };
        let (logs_tool, metric_tool, monitor_tool) = (
            pick(assumed::LOGS_TOOLS),
            pick(assumed::METRIC_TOOLS),
            pick(assumed::MONITOR_TOOLS),
        );
        if logs_tool.is_none() && metric_tool.is_none() && monitor_tool.is_none() {
            return Err(AdapterError::invalid_response(
                "the datadog mcp server lists no logs, metric or monitors tool",
            ));
        }
        let tags = config.tags(&query.service);
        let window = query.window.as_secs().max(1);
        let (to_ms, from_ms) = window_ms(query.window);
        let app = config.app_base();
        let mut findings = ContextFindings::default();
        let mut notes = Notes::new(config.max_notes, config.max_note_chars);

        if let Some(tool) = logs_tool {
            let search = format!("{} status:error", tags.join(" "));
            let result = call(
                session,
                tool,
                assumed::logs_arguments(&search, window),
                config.timeout,
            )
            .await?;
            let text = result.texts.join("\n");
            findings.top_error = assumed::top_error(&text)
                .map(|message| mcp::bounded(&message, config.max_note_chars));
            notes.add("logs", &text);
            findings.evidence_links.push(Link {
                label: format!("Datadog error logs of {}", query.service),
                url: logs_url(&app, &search, from_ms, to_ms),
            });
        }
        if let Some(tool) = metric_tool {
            let scope = tags.join(",");
            let queries: Vec<String> = config
                .metric_queries
                .iter()
                .map(|query| query.replace("{scope}", &scope))
                .collect();
            let result = call(
                session,
                tool,
                assumed::metric_arguments(&queries, window),
                config.timeout,
            )
            .await?;
            notes.add("metrics", &result.texts.join("\n"));
            if let Some(first) = queries.first() {
                let metric = first
                    .split_once(':')
                    .map_or(first.as_str(), |(_, rest)| rest)
                    .split('{')
                    .next()
                    .unwrap_or_default();
                findings.evidence_links.push(Link {
                    label: format!("Datadog metrics of {}", query.service),
                    url: metric_explorer_url(&app, metric, &scope, from_ms, to_ms),
                });
            }
        }
        if let Some(tool) = monitor_tool {
            let search = tags.join(" ");
            let result = call(
                session,
                tool,
                assumed::monitor_arguments(&search),
                config.timeout,
            )
            .await?;
            notes.add("monitors", &result.texts.join("\n"));
            findings.evidence_links.push(Link {
                label: format!("Datadog monitors of {}", query.service),
                url: monitors_url(&app, &search),
            });
        }
        findings.notes = notes.into_lines();
        Ok(findings)
    }
}

#[async_trait]
impl ContextSource for DatadogMcpContext {
    async fn gather(&self, query: &ContextQuery) -> Result<ContextFindings, AdapterError> {
        let session = McpSession::connect(
            &self.config.endpoint(),
            &self.http,
            self.config.timeout,
            None,
        )
        .await?;
        let findings = self.gather_in(&session, query).await;
        session.close().await;
        findings
    }
}

/// Calls `tool`; a result with `isError: true` is a failure.
async fn call(
    session: &McpSession,
    tool: &str,
    arguments: serde_json::Value,
    timeout: Duration,
) -> Result<ToolResult, AdapterError> {
    let result = session.call_tool(tool, arguments, timeout).await?;
    if result.is_error {
        return Err(AdapterError::unavailable(format!(
            "datadog mcp tool {tool} failed: {}",
            result.excerpt()
        )));
    }
    Ok(result)
}

/// Bounded notes: at most `max` lines of at most `chars` characters, each prefixed with the tool it came from.
struct Notes {
    lines: Vec<String>,
    max: usize,
    chars: usize,
}

impl Notes {
    fn new(max: usize, chars: usize) -> Self {
        Self {
            lines: Vec::new(),
            max,
            chars,
        }
    }

    /// Adds the non-empty lines of `text`; each tool gets at most a third of the notes, so one tool cannot crowd
    /// out the others.
    fn add(&mut self, kind: &str, text: &str) {
        let share = self.max.div_ceil(3).max(1);
        let room = self.max.saturating_sub(self.lines.len()).min(share);
        self.lines.extend(
            text.lines()
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .take(room)
                .map(|line| format!("{kind}: {}", mcp::bounded(line, self.chars))),
        );
    }

    fn into_lines(self) -> Vec<String> {
        self.lines
    }
}

/// `(now, now - window)` in epoch milliseconds, for the UI links.
fn window_ms(window: Duration) -> (i64, i64) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        });
    let window = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
    (now, now.saturating_sub(window))
}

/// The monitor list of the UI filtered by `query`.
fn monitors_url(app_base: &str, query: &str) -> String {
    match reqwest::Url::parse(&format!("{app_base}/monitors/manage")) {
        Ok(mut url) => {
            url.query_pairs_mut().append_pair("q", query);
            url.into()
        }
        Err(_) => format!("{app_base}/monitors/manage"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_bounded_in_count_and_length() {
        let mut notes = Notes::new(4, 5);
        notes.add("logs", "aaaaaaaa\n\nb\nc\nd\n");
        notes.add("metrics", "m1\nm2\nm3");
        notes.add("monitors", "x");
        let lines = notes.into_lines();
        assert_eq!(
            lines,
            ["logs: aaaaa…", "logs: b", "metrics: m1", "metrics: m2"]
        );
    }

    #[test]
    fn keys_are_sent_as_the_documented_headers_and_never_printed() {
        let config = DatadogMcpConfig::new(
            "https://mcp.datadoghq.com/api/unstable/mcp-server/mcp",
            DatadogMcpAuth::Keys {
                api_key: Secret::new("dd-api-secret"),
                application_key: Secret::new("dd-app-secret"),
            },
        );
        let McpEndpoint::Http {
            headers, bearer, ..
        } = config.endpoint()
        else {
            panic!("http");
        };
        assert!(bearer.is_none());
        let names: Vec<&str> = headers.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["DD_API_KEY", "DD_APPLICATION_KEY"]);
        let printed = format!("{config:?}");
        assert!(!printed.contains("secret"), "{printed}");
    }
}
