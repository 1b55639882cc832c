//! EVERY UNVERIFIED shape of Datadog's MCP server lives here, and only here.
//!
//! Verified (vendor reference §2.11, from Datadog's documentation): the remote server speaks Streamable HTTP at
//! `https://mcp.<site>/api/unstable/mcp-server/mcp`; non-interactive clients authenticate with the headers
//! `DD_API_KEY` and `DD_APPLICATION_KEY`; the current core tool names `search_datadog_logs`, `get_datadog_metric`
//! and `search_datadog_monitors`, and their preview names `search_logs`, `get_metrics` and `get_monitors`.
//! Everything below is an ASSUMPTION, written down so it can be checked the day a key is available:
//!
//! 1. **Arguments.** Datadog publishes no input schema. FixLoop sends `{"query", "from", "to"}` to the logs tool,
//!    `{"queries": [...], "from", "to"}` to the metric tool and `{"query"}` to the monitors tool, with Datadog's
//!    relative time syntax (`now-900s`, `now`) and search syntax (`service:checkout status:error`).
//! 2. **Results** are text (Datadog says token-efficient CSV/YAML-like text, not JSON). FixLoop keeps non-empty
//!    lines as notes, and reads the top error from the logs text: the most frequent value of a `message` column
//!    when the text is CSV with such a header, else of `message:` lines, else the first data line.
//! 3. **Bearer.** `DATADOG_MCP_AUTH` is sent as `Authorization: Bearer <token>`: the MCP authorization spec's
//!    header for an OAuth access token, which Datadog's server uses by default; that a token obtained outside
//!    FixLoop is accepted non-interactively is not documented.

use std::collections::HashMap;

use serde_json::{Value, json};

/// The logs tool: current name, then the preview name.
pub const LOGS_TOOLS: [&str; 2] = ["search_datadog_logs", "search_logs"];
/// The metric tool: current name, then the preview name.
pub const METRIC_TOOLS: [&str; 2] = ["get_datadog_metric", "get_metrics"];
/// The monitors tool: current name, then the preview name.
pub const MONITOR_TOOLS: [&str; 2] = ["search_datadog_monitors", "get_monitors"];

/// Datadog's relative start of a window of `seconds` (assumption 1).
#[must_use]
pub fn from_of(seconds: u64) -> String {
    format!("now-{seconds}s")
}

/// The arguments of the logs tool (assumption 1).
#[must_use]
pub fn logs_arguments(query: &str, window_seconds: u64) -> Value {
    json!({"query": query, "from": from_of(window_seconds), "to": "now"})
}

/// The arguments of the metric tool (assumption 1).
#[must_use]
pub fn metric_arguments(queries: &[String], window_seconds: u64) -> Value {
    json!({"queries": queries, "from": from_of(window_seconds), "to": "now"})
}

/// The arguments of the monitors tool (assumption 1).
#[must_use]
pub fn monitor_arguments(query: &str) -> Value {
    json!({"query": query})
}

/// The most frequent error message in the logs tool's text (assumption 2), if any.
#[must_use]
pub fn top_error(text: &str) -> Option<String> {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    let first = *lines.first()?;
    let header: Vec<String> = split_csv(first)
        .iter()
        .map(|cell| cell.to_ascii_lowercase())
        .collect();
    let candidates: Vec<String> =
        if let Some(column) = header.iter().position(|cell| cell == "message") {
            lines[1..]
                .iter()
                .filter_map(|line| split_csv(line).get(column).cloned())
                .collect()
        } else {
            let tagged: Vec<String> = lines
                .iter()
                .filter_map(|line| line.trim_start_matches("- ").strip_prefix("message:"))
                .map(|message| message.trim().trim_matches('"').to_owned())
                .collect();
            if tagged.is_empty() {
                vec![first.to_owned()]
            } else {
                tagged
            }
        };
    let mut counts: HashMap<&str, (usize, usize)> = HashMap::new();
    for (index, candidate) in candidates.iter().enumerate() {
        let entry = counts.entry(candidate.as_str()).or_insert((0, index));
        entry.0 += 1;
    }
    // Most frequent first; ties go to the earliest.
    counts
        .into_iter()
        .filter(|(message, _)| !message.is_empty())
        .max_by(|a, b| a.1.0.cmp(&b.1.0).then(b.1.1.cmp(&a.1.1)))
        .map(|(message, _)| message.to_owned())
}

/// Splits one CSV line into cells (double quotes group, `""` is a quote).
fn split_csv(line: &str) -> Vec<String> {
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cell.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => cells.push(std::mem::take(&mut cell).trim().to_owned()),
            c => cell.push(c),
        }
    }
    cells.push(cell.trim().to_owned());
    cells
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_error_is_the_most_frequent_message_of_csv() {
        let text = "timestamp,status,message\n1,error,\"payment provider timeout, retrying\"\n2,error,db down\n3,error,\"payment provider timeout, retrying\"\n";
        assert_eq!(
            top_error(text).as_deref(),
            Some("payment provider timeout, retrying")
        );
    }

    #[test]
    fn top_error_reads_yaml_like_lines_and_plain_text() {
        let text =
            "- timestamp: 1\n  message: db down\n- message: \"db down\"\n- message: cache miss\n";
        assert_eq!(top_error(text).as_deref(), Some("db down"));
        assert_eq!(
            top_error("\nPOST /checkout -> 500\nmore\n").as_deref(),
            Some("POST /checkout -> 500")
        );
        assert_eq!(top_error("  \n"), None);
    }
}
