//! The plan validator: the only way to build a [`ValidatedPlan`].
//!
//! [`validate`] checks a candidate plan (from the LLM, which is untrusted, or from the rule planner) against a
//! [`Policy`] and reports every violation with a JSON-pointer path, in this order: plan-level fields, then each item
//! in document order, then the plan-wide rules (missing priorities, coverage). The messages are one line each and
//! written to be fed back to the LLM when the plan is re-requested.
//!
//! What is checked:
//! - the plan: a non-empty `plan_id`; exactly five items; priorities 1 to 5, each once; unique `test_id`s made of
//!   `A-Z a-z 0-9 . _ -` (at most 64);
//! - each item: a one-line, non-empty `name` and a non-empty `what_it_checks`, within the policy's length limit;
//!   `pass_criteria` that parses (the message carries the parse error's column);
//! - each target URL: absolute `http`/`https`, ASCII without whitespace, control characters, backslashes,
//!   userinfo or fragment; no `.`/`..` (also as `..;x`) or empty path segments; no percent-encoded `.`, `/`, `\`, `%` or control
//!   character in the path; and inside one of the policy's allowed base URLs (same scheme, host compared
//!   case-insensitively, port with 80/443 as defaults, and a path equal to or under the base path);
//! - headers: at most [`Policy::max_headers`], names are RFC 7230 tokens, unique case-insensitively, and not
//!   `Host`, `Content-Length` or a hop-by-hop header; values have no control character but tab;
//! - bodies: `body_json` is an object (the type guarantees it), empty for `GET` and `DELETE`, at most
//!   [`Policy::max_body_bytes`];
//! - secrets: `${env:NAME}` only in header values and body strings, and only names in [`Policy::secrets`];
//! - coverage: every [`CoverageRule`] of the policy is satisfied by an item of its own.

use std::collections::BTreeMap;
use std::fmt;

use fixloop_contract::serde_json;
use fixloop_contract::{HttpMethod, Plan, PlanItem};

use crate::criteria::Criteria;
use crate::policy::{CoverageRule, Policy};
use crate::service::{body_strings, secret_references};

mod url;

use url::{ParsedUrl, parse_url};

/// The number of items a plan must have.
pub const PLAN_ITEMS: usize = 5;
/// Longest accepted `test_id`, in bytes.
pub const MAX_TEST_ID_LEN: usize = 64;
/// Longest accepted `plan_id`, in bytes.
pub const MAX_PLAN_ID_LEN: usize = 128;

/// Header names a plan may not set: `Host` (the URL decides it), `Content-Length` (the runner computes it) and the
/// hop-by-hop headers.
pub const FORBIDDEN_HEADERS: [&str; 11] = [
    "host",
    "content-length",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "proxy-authenticate",
    "proxy-authorization",
];

/// A plan that passed [`validate`]; it can be built in no other way.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedPlan {
    plan: Plan,
    criteria: Vec<Criteria>,
}

/// One reason a plan was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer into the plan (`/items/2/target/url`), `""` for the whole plan.
    pub path: String,
    /// What is wrong, in one line (fed back to the LLM on re-prompt).
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl ValidatedPlan {
    /// The plan as it goes on the wire, items sorted by priority.
    #[must_use]
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Each item with its parsed criteria, in priority order.
    pub fn tests(&self) -> impl Iterator<Item = (&PlanItem, &Criteria)> {
        self.plan.items.iter().zip(&self.criteria)
    }

    /// Gives the wire plan back.
    #[must_use]
    pub fn into_plan(self) -> Plan {
        self.plan
    }
}

/// Validates a candidate plan against a policy, reporting every violation.
///
/// # Errors
///
/// Every [`Violation`] found: plan-level fields first, then each item in document order, then the plan-wide
/// rules (missing priorities, coverage).
pub fn validate(plan: Plan, policy: &Policy) -> Result<ValidatedPlan, Vec<Violation>> {
    let mut report = Report::default();
    let bases: Vec<Option<ParsedUrl<'_>>> = policy
        .allowed_base_urls
        .iter()
        .map(|base| parse_url(base).ok())
        .collect();

    check_plan_id(&plan.plan_id, &mut report);
    if plan.items.len() != PLAN_ITEMS {
        report.push(
            "/items",
            format!(
                "a plan needs exactly {PLAN_ITEMS} items, found {}",
                plan.items.len()
            ),
        );
    }

    let mut criteria: Vec<Option<Criteria>> = Vec::with_capacity(plan.items.len());
    let mut relative_paths: Vec<Option<String>> = Vec::with_capacity(plan.items.len());
    let mut priorities: BTreeMap<u32, usize> = BTreeMap::new();
    let mut test_ids: BTreeMap<&str, usize> = BTreeMap::new();
    for (index, item) in plan.items.iter().enumerate() {
        let prefix = format!("/items/{index}/");
        let at = |field: &str| [prefix.as_str(), field].concat();

        check_test_id(&item.test_id, &at("test_id"), &mut report);
        if let Some(first) = test_ids.get(item.test_id.as_str()) {
            report.push(
                at("test_id"),
                format!(
                    "test_id {} is already used by /items/{first}; test ids must be unique",
                    shown(&item.test_id)
                ),
            );
        } else {
            test_ids.insert(&item.test_id, index);
        }

        check_text(&item.name, "name", true, policy, &at("name"), &mut report);
        if !(1..=5).contains(&item.priority) {
            report.push(
                at("priority"),
                format!("priority must be between 1 and 5, found {}", item.priority),
            );
        } else if let Some(first) = priorities.get(&item.priority) {
            report.push(
                at("priority"),
                format!(
                    "priority {} is already used by /items/{first}; use 1, 2, 3, 4 and 5, each once",
                    item.priority
                ),
            );
        } else {
            priorities.insert(item.priority, index);
        }
        check_text(
            &item.what_it_checks,
            "what_it_checks",
            false,
            policy,
            &at("what_it_checks"),
            &mut report,
        );

        relative_paths.push(check_url(
            &item.target.url,
            &policy.allowed_base_urls,
            &bases,
            policy,
            &at("target/url"),
            &mut report,
        ));
        check_headers(item, policy, index, &mut report);
        check_body(item, policy, &at("target/body_json"), &mut report);
        check_secret_references(item, policy, index, &mut report);
        criteria.push(check_criteria(
            &item.pass_criteria,
            policy,
            &at("pass_criteria"),
            &mut report,
        ));
    }

    for priority in 1..=5 {
        if !priorities.contains_key(&priority) {
            report.push("/items", format!("no item has priority {priority}"));
        }
    }
    check_coverage(&plan, &criteria, &relative_paths, policy, &mut report);

    if !report.violations.is_empty() {
        return Err(report.violations);
    }
    let mut tests: Vec<(PlanItem, Criteria)> = plan
        .items
        .into_iter()
        .zip(criteria.into_iter().flatten())
        .collect();
    tests.sort_by_key(|(item, _)| item.priority);
    let (items, criteria) = tests.into_iter().unzip();
    Ok(ValidatedPlan {
        plan: Plan {
            plan_id: plan.plan_id,
            generated_at: plan.generated_at,
            items,
        },
        criteria,
    })
}

#[derive(Default)]
struct Report {
    violations: Vec<Violation>,
}

impl Report {
    fn push(&mut self, path: impl Into<String>, message: String) {
        self.violations.push(Violation {
            path: path.into(),
            message,
        });
    }
}

/// A value quoted for a message: one line, at most 120 characters.
fn shown(value: &str) -> String {
    const MAX: usize = 120;
    let mut text: String = value
        .chars()
        .take(MAX)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if value.chars().count() > MAX {
        text.push('…');
    }
    format!("`{text}`")
}

/// The URL with any userinfo replaced by `***`, so that credentials never reach a message or a log.
fn redact_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => url.to_owned(),
    }
}

/// Escapes a JSON-pointer reference token (RFC 6901).
fn pointer_token(token: &str) -> String {
    if token.contains(['~', '/']) {
        token.replace('~', "~0").replace('/', "~1")
    } else {
        token.to_owned()
    }
}

fn check_plan_id(plan_id: &str, report: &mut Report) {
    if plan_id.trim().is_empty() {
        report.push("/plan_id", "plan_id must not be empty".to_owned());
    } else if plan_id.len() > MAX_PLAN_ID_LEN {
        report.push(
            "/plan_id",
            format!(
                "plan_id is {} bytes long, the limit is {MAX_PLAN_ID_LEN}",
                plan_id.len()
            ),
        );
    } else if plan_id.chars().any(char::is_control) {
        report.push(
            "/plan_id",
            "plan_id must not contain control characters".to_owned(),
        );
    }
}

fn check_test_id(test_id: &str, path: &str, report: &mut Report) {
    if test_id.is_empty() {
        report.push(path, "test_id must not be empty".to_owned());
    } else if test_id.len() > MAX_TEST_ID_LEN {
        report.push(
            path,
            format!(
                "test_id is {} bytes long, the limit is {MAX_TEST_ID_LEN}",
                test_id.len()
            ),
        );
    } else if !test_id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        report.push(
            path,
            format!(
                "test_id {} may only contain letters, digits, `.`, `_` and `-` (for example `t1-orders-create`)",
                shown(test_id)
            ),
        );
    }
}

fn check_text(
    text: &str,
    field: &str,
    one_line: bool,
    policy: &Policy,
    path: &str,
    report: &mut Report,
) {
    if text.trim().is_empty() {
        report.push(path, format!("{field} must not be empty"));
    } else if text.len() > policy.max_string_len {
        report.push(
            path,
            format!(
                "{field} is {} bytes long, the limit is {}",
                text.len(),
                policy.max_string_len
            ),
        );
    } else if one_line && text.chars().any(char::is_control) {
        report.push(
            path,
            format!("{field} must be one line without control characters"),
        );
    }
}

fn check_criteria(
    source: &str,
    policy: &Policy,
    path: &str,
    report: &mut Report,
) -> Option<Criteria> {
    if source.len() > policy.max_string_len {
        report.push(
            path,
            format!(
                "pass_criteria is {} bytes long, the limit is {}",
                source.len(),
                policy.max_string_len
            ),
        );
        return None;
    }
    match Criteria::parse(source) {
        Ok(criteria) => Some(criteria),
        Err(error) => {
            report.push(
                path,
                format!(
                    "pass_criteria does not parse at column {}: {} (example of valid criteria: `status == 200 && json.status == \"ok\" && latency_ms < 800`)",
                    error.column, error.message
                ),
            );
            None
        }
    }
}

/// Checks a target URL; returns its path relative to the allowed base it is under, when it is allowed.
fn check_url(
    url: &str,
    allowed: &[String],
    bases: &[Option<ParsedUrl<'_>>],
    policy: &Policy,
    path: &str,
    report: &mut Report,
) -> Option<String> {
    if url.len() > policy.max_string_len {
        report.push(
            path,
            format!(
                "url is {} bytes long, the limit is {}",
                url.len(),
                policy.max_string_len
            ),
        );
        return None;
    }
    let target = match parse_url(url) {
        Ok(target) => target,
        Err(problem) => {
            report.push(
                path,
                format!("url {} {problem}", shown(&redact_userinfo(url))),
            );
            return None;
        }
    };
    let relative = bases
        .iter()
        .flatten()
        .find_map(|base| target.relative_to(base));
    if relative.is_none() {
        let list = if allowed.is_empty() {
            "none are configured".to_owned()
        } else {
            allowed
                .iter()
                .map(|base| shown(base))
                .collect::<Vec<_>>()
                .join(", ")
        };
        report.push(
            path,
            format!(
                "url {} is outside the allowed base URLs ({list}): the scheme, host and port must match and the path must be under the base path",
                shown(url)
            ),
        );
    }
    relative
}

fn check_headers(item: &PlanItem, policy: &Policy, index: usize, report: &mut Report) {
    let headers = &item.target.headers;
    if headers.len() > policy.max_headers {
        report.push(
            format!("/items/{index}/target/headers"),
            format!(
                "{} headers, the limit is {}",
                headers.len(),
                policy.max_headers
            ),
        );
    }
    // Header lists are short (`max_headers`): a linear, case-insensitive scan allocates nothing.
    let mut seen: Vec<&str> = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        // Built only when there is something to report.
        let path = || format!("/items/{index}/target/headers/{}", pointer_token(name));
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            report.push(
                path(),
                format!(
                    "header name {} is not a valid HTTP token (letters, digits and !#$%&'*+-.^_`|~)",
                    shown(name)
                ),
            );
        } else if FORBIDDEN_HEADERS
            .iter()
            .any(|forbidden| forbidden.eq_ignore_ascii_case(name))
        {
            report.push(
                path(),
                format!(
                    "header {} may not be set by a plan (Host, Content-Length and hop-by-hop headers are set by the runner)",
                    shown(name)
                ),
            );
        }
        if let Some(first) = seen.iter().find(|seen| seen.eq_ignore_ascii_case(name)) {
            report.push(
                path(),
                format!(
                    "header {} duplicates {} (header names are case-insensitive)",
                    shown(name),
                    shown(first)
                ),
            );
        } else {
            seen.push(name);
        }
        if value.len() > policy.max_string_len {
            report.push(
                path(),
                format!(
                    "header value is {} bytes long, the limit is {}",
                    value.len(),
                    policy.max_string_len
                ),
            );
        } else if value.chars().any(|c| c.is_control() && c != '\t') {
            report.push(
                path(),
                "header value must not contain CR, LF, NUL or other control characters".to_owned(),
            );
        }
    }
}

fn check_body(item: &PlanItem, policy: &Policy, path: &str, report: &mut Report) {
    let body = &item.target.body_json;
    if body.is_empty() {
        return;
    }
    if matches!(item.target.method, HttpMethod::Get | HttpMethod::Delete) {
        report.push(
            path,
            format!(
                "a {} request must not have a body; use {{}}",
                item.target.method.as_str()
            ),
        );
    }
    let mut counter = ByteCounter(0);
    let size = serde_json::to_writer(&mut counter, body).map_or(usize::MAX, |()| counter.0);
    if size > policy.max_body_bytes {
        report.push(
            path,
            format!(
                "body_json is {size} bytes long, the limit is {}",
                policy.max_body_bytes
            ),
        );
    }
}

/// Secrets (`${env:NAME}`) may appear in header values and body strings, and only the policy's; never in a URL,
/// where they would end up in access logs.
fn check_secret_references(item: &PlanItem, policy: &Policy, index: usize, report: &mut Report) {
    if item.target.url.contains("${env:") {
        report.push(
            format!("/items/{index}/target/url"),
            "a url may not reference a secret (${env:...}); send it in a header".to_owned(),
        );
    }
    let mut undeclared = |path: String, text: &str| {
        for name in secret_references(text) {
            if !policy.secrets.iter().any(|secret| secret == name) {
                report.push(
                    &path,
                    format!("secret {} is not one the service declares", shown(name)),
                );
            }
        }
    };
    for (name, value) in &item.target.headers {
        undeclared(
            format!("/items/{index}/target/headers/{}", pointer_token(name)),
            value,
        );
    }
    for text in body_strings(&item.target.body_json) {
        undeclared(format!("/items/{index}/target/body_json"), text);
    }
}

/// A writer that only counts bytes: the size of a body's compact JSON without building the text.
struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

fn check_coverage(
    plan: &Plan,
    criteria: &[Option<Criteria>],
    relative_paths: &[Option<String>],
    policy: &Policy,
    report: &mut Report,
) {
    // candidates[rule] lists the items that could satisfy the rule on their own.
    let candidates: Vec<Vec<usize>> = policy
        .coverage
        .iter()
        .map(|rule| {
            (0..plan.items.len())
                .filter(|&index| {
                    satisfies(
                        rule,
                        &plan.items[index],
                        criteria[index].as_ref(),
                        relative_paths[index].as_deref(),
                    )
                })
                .collect()
        })
        .collect();
    // Each rule needs an item of its own: a maximum bipartite matching (Kuhn's algorithm; at most a few rules).
    let mut owner: Vec<Option<usize>> = vec![None; plan.items.len()];
    for rule in 0..candidates.len() {
        let mut visited = vec![false; plan.items.len()];
        augment(rule, &candidates, &mut owner, &mut visited);
    }
    for (rule_index, rule) in policy.coverage.iter().enumerate() {
        if owner.contains(&Some(rule_index)) {
            continue;
        }
        let requirement = describe_rule(rule);
        if candidates[rule_index].is_empty() {
            report.push(
                "/items",
                format!("no test covers the {}: add {requirement}", rule.name),
            );
        } else {
            let shared = candidates[rule_index]
                .iter()
                .map(|index| format!("/items/{index}"))
                .collect::<Vec<_>>()
                .join(", ");
            report.push(
                "/items",
                format!(
                    "the {} needs a test of its own ({requirement}); {shared} already cover(s) another rule",
                    rule.name
                ),
            );
        }
    }
}

fn augment(
    rule: usize,
    candidates: &[Vec<usize>],
    owner: &mut [Option<usize>],
    visited: &mut [bool],
) -> bool {
    for &item in &candidates[rule] {
        if visited[item] {
            continue;
        }
        visited[item] = true;
        let free = match owner[item] {
            None => true,
            Some(other) => augment(other, candidates, owner, visited),
        };
        if free {
            owner[item] = Some(rule);
            return true;
        }
    }
    false
}

fn satisfies(
    rule: &CoverageRule,
    item: &PlanItem,
    criteria: Option<&Criteria>,
    relative_path: Option<&str>,
) -> bool {
    relative_path.is_some_and(|path| {
        rule.is_met_by(item.target.method, path, &item.target.headers, criteria)
    })
}

fn describe_rule(rule: &CoverageRule) -> String {
    rule.requirement()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(target: &str, base: &str) -> bool {
        let base = parse_url(base).unwrap();
        parse_url(target)
            .ok()
            .and_then(|target| target.relative_to(&base))
            .is_some()
    }

    #[test]
    fn default_ports_are_equivalent_to_explicit_ones() {
        assert!(allowed("http://demo:80/health", "http://demo"));
        assert!(allowed("https://demo/health", "https://demo:443"));
        assert!(!allowed("https://demo:80/health", "http://demo"));
    }

    #[test]
    fn host_comparison_is_case_insensitive() {
        assert!(allowed("http://DEMO.Example/x", "http://demo.example"));
    }

    #[test]
    fn base_path_must_be_a_whole_segment_prefix() {
        assert!(allowed("http://demo/api/health", "http://demo/api"));
        assert!(allowed("http://demo/api", "http://demo/api/"));
        assert!(!allowed("http://demo/apiv2/health", "http://demo/api"));
        assert!(!allowed("http://demo/health", "http://demo/api"));
    }

    #[test]
    fn relative_path_drops_base_path_and_query() {
        let base = parse_url("http://demo/api").unwrap();
        let target = parse_url("http://demo/api/orders?x=1").unwrap();
        assert_eq!(target.relative_to(&base).as_deref(), Some("/orders"));
    }

    #[test]
    fn ipv6_hosts_parse() {
        assert!(allowed("http://[::1]:8080/health", "http://[::1]:8080"));
        assert!(parse_url("http://[::1/").is_err());
    }

    #[test]
    fn malformed_ports_are_rejected() {
        for url in [
            "http://demo:/x",
            "http://demo:0/x",
            "http://demo:99999/x",
            "http://demo:8a/x",
            "http://demo:1:2/x",
        ] {
            assert!(parse_url(url).is_err(), "{url}");
        }
    }

    #[test]
    fn userinfo_is_redacted_from_messages() {
        assert_eq!(
            redact_userinfo("http://user:secret@demo/x@y"),
            "http://***@demo/x@y"
        );
        assert_eq!(redact_userinfo("http://demo/x@y"), "http://demo/x@y");
    }

    #[test]
    fn pointer_tokens_are_escaped() {
        assert_eq!(pointer_token("a/b~c"), "a~1b~0c");
    }
}
