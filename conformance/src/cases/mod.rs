//! The suite: the catalog of cases (one module per contract section), the run context that records outcomes, and
//! the checks the sections share (a reply's status and body against the spec).

mod bad_input;
pub(crate) mod data;
mod flow;
mod shapes;
mod ws;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use crate::case::{CaseInfo, CaseResult, Outcome, Phase};
use crate::client::{Http, Recorder, Reply};
use crate::report::{REPORT_FORMAT_VERSION, Report, SpecInfo, Summary, Timings};
use crate::spec::{Operation, Spec, truncate};
use crate::{Selection, Target};

/// Every case for `spec`, in execution order.
pub(crate) fn catalog(spec: &Spec) -> Vec<CaseInfo> {
    let mut all = shapes::stateless_cases(spec);
    all.extend(bad_input::cases(spec));
    all.extend(flow::cases());
    all.extend(shapes::flow_cases());
    all.extend(ws::cases());
    all.sort_by_key(|case| case.phase);
    all
}

/// Runs the selected phases and collects the outcomes.
pub(crate) async fn run(
    target: &Target,
    selection: &Selection,
    on_case: &mut (dyn FnMut(&CaseResult) + Send),
) -> Report {
    let started = Instant::now();
    let spec = &*target.spec;
    let catalog = catalog(spec);
    let wanted = |phase: Phase| {
        catalog
            .iter()
            .any(|case| case.phase == phase && selection.matches(&case.id))
    };
    let run_stateless = wanted(Phase::Stateless);
    let run_bad_input = wanted(Phase::BadInput);
    let run_flow = wanted(Phase::Flow) || wanted(Phase::WebSocket);

    let http = match Http::new(&target.base_url, target.request_timeout) {
        Ok(http) => http,
        Err(error) => {
            // Nothing can run: every selected case fails with the reason.
            let cases: Vec<CaseResult> = catalog
                .iter()
                .filter(|case| selection.matches(&case.id))
                .map(|case| CaseResult {
                    id: case.id.clone(),
                    description: case.description.clone(),
                    clause: case.clause.clone(),
                    outcome: Outcome::fail(
                        "an HTTP client",
                        format!("none could be built: {error}"),
                        "",
                    ),
                })
                .inspect(|result| on_case(result))
                .collect();
            return report(target, selection, cases, started, BTreeMap::new());
        }
    };
    let mut ctx = Ctx {
        target,
        spec,
        selection,
        catalog: catalog
            .iter()
            .map(|case| (case.id.clone(), case.clone()))
            .collect(),
        results: Vec::new(),
        recorded: BTreeSet::new(),
        timings: BTreeMap::new(),
        last: started,
        on_case,
        http,
    };

    // The main recorder connects first, so it sees every message the suite causes.
    let main = if run_flow {
        Some(ws::connect_main(&mut ctx).await)
    } else {
        None
    };
    if run_stateless {
        shapes::run_stateless(&mut ctx).await;
    }
    if run_bad_input {
        bad_input::run(&mut ctx).await;
    }
    if let Some(main) = main {
        let flow = flow::run(&mut ctx, &main).await;
        ws::judge(&mut ctx, &main, &flow).await;
    }

    // Every selected case appears in the report exactly once.
    for case in &catalog {
        if selection.matches(&case.id) && !ctx.recorded.contains(&case.id) {
            ctx.record(&case.id, Outcome::skip("the suite did not reach this case"));
        }
    }
    report(target, selection, ctx.results, started, ctx.timings)
}

fn report(
    target: &Target,
    selection: &Selection,
    cases: Vec<CaseResult>,
    started: Instant,
    cases_ms: BTreeMap<String, u64>,
) -> Report {
    let spec = &*target.spec;
    Report {
        format_version: REPORT_FORMAT_VERSION,
        tool: "fixloop-conformance".to_owned(),
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        target: target.base_url.clone(),
        spec: SpecInfo {
            title: spec.title().to_owned(),
            version: spec.version().to_owned(),
        },
        strict: selection.strict,
        summary: Summary::of(&cases),
        cases,
        timings: Timings {
            total_ms: millis(started.elapsed()),
            cases_ms,
        },
    }
}

/// The state of a run: what to report and how to reach the server.
pub(crate) struct Ctx<'a> {
    pub(crate) target: &'a Target,
    pub(crate) spec: &'a Spec,
    selection: &'a Selection,
    catalog: BTreeMap<String, CaseInfo>,
    results: Vec<CaseResult>,
    recorded: BTreeSet<String>,
    timings: BTreeMap<String, u64>,
    last: Instant,
    on_case: &'a mut (dyn FnMut(&CaseResult) + Send),
    http: Http,
}

impl Ctx<'_> {
    /// The HTTP client.
    pub(crate) fn http(&self) -> &Http {
        &self.http
    }

    /// Whether the strict rules apply.
    pub(crate) fn strict(&self) -> bool {
        self.selection.strict
    }

    /// A flow fallback: a skip, or under `--strict` a failure.
    pub(crate) fn fallback(&self, expected: &str, reason: &str) -> Outcome {
        if self.strict() {
            Outcome::fail(expected, format!("{reason} (a failure under --strict)"), "")
        } else {
            Outcome::skip(reason)
        }
    }

    /// The deadline of one flow wait starting now.
    pub(crate) fn flow_deadline(&self) -> Instant {
        Instant::now() + self.target.flow_timeout
    }

    /// A short bound for things that must happen promptly: the flow timeout, at most 5 s.
    pub(crate) fn prompt_deadline(&self) -> Instant {
        Instant::now() + self.target.flow_timeout.min(Duration::from_secs(5))
    }

    /// Records the outcome of case `id` (once; unselected cases are dropped).
    pub(crate) fn record(&mut self, id: &str, outcome: Outcome) {
        let now = Instant::now();
        let elapsed = millis(now - self.last);
        self.last = now;
        if !self.selection.matches(id) || !self.recorded.insert(id.to_owned()) {
            return;
        }
        let (description, clause) = self.catalog.get(id).map_or_else(
            || {
                (
                    "(a case missing from the catalog)".to_owned(),
                    String::new(),
                )
            },
            |info| (info.description.clone(), info.clause.clone()),
        );
        let result = CaseResult {
            id: id.to_owned(),
            description,
            clause,
            outcome,
        };
        (self.on_case)(&result);
        self.timings.insert(id.to_owned(), elapsed);
        self.results.push(result);
    }
}

/// A catalog entry.
pub(crate) fn info(id: &str, description: &str, clause: &str, phase: Phase) -> CaseInfo {
    CaseInfo {
        id: id.to_owned(),
        description: description.to_owned(),
        clause: clause.to_owned(),
        phase,
    }
}

/// Checks a reply to `operation`: transport success, the expected status, a status the spec documents, and a
/// body valid against the spec's schema for that status. Returns the JSON body, or the failure.
pub(crate) fn check_reply(
    spec: &Spec,
    operation: &Operation,
    reply: &Result<Reply, String>,
    expected_status: u16,
) -> Result<Value, Outcome> {
    let reply = match reply {
        Ok(reply) => reply,
        Err(error) => {
            return Err(Outcome::fail(
                format!("an HTTP response with status {expected_status}"),
                format!("no response: {error}"),
                "status",
            ));
        }
    };
    if reply.status != expected_status {
        return Err(Outcome::fail(
            format!("status {expected_status}"),
            format!(
                "status {} with body {}",
                reply.status,
                truncate(&reply.text, 300)
            ),
            "status",
        ));
    }
    check_body(spec, operation, reply)
}

/// Checks the body of a reply against the schema the spec documents for its status.
pub(crate) fn check_body(
    spec: &Spec,
    operation: &Operation,
    reply: &Reply,
) -> Result<Value, Outcome> {
    let status = reply.status.to_string();
    let Some(schema) = operation.responses.get(&status) else {
        let documented: Vec<&str> = operation.responses.keys().map(String::as_str).collect();
        return Err(Outcome::fail(
            format!(
                "a status documented for {} ({})",
                operation.id,
                documented.join(", ")
            ),
            format!("status {status}"),
            "status",
        ));
    };
    let json = reply.json.clone().map_err(|error| {
        Outcome::fail(
            "a JSON body",
            format!("{error}: {}", truncate(&reply.text, 200)),
            "",
        )
    })?;
    if let Some(schema) = schema {
        let schema_name = schema_name(schema);
        violations_outcome(&spec.check(schema, &json), &schema_name)?;
    }
    Ok(json)
}

/// The failure for a list of violations (the first, with a count of the rest), or `Ok` when there are none.
pub(crate) fn violations_outcome(
    violations: &[crate::spec::Violation],
    schema_name: &str,
) -> Result<(), Outcome> {
    let Some(first) = violations.first() else {
        return Ok(());
    };
    let mut actual = first.actual.clone();
    if violations.len() > 1 {
        let others: Vec<String> = violations[1..]
            .iter()
            .take(5)
            .map(|v| {
                format!(
                    "{} ({})",
                    if v.path.is_empty() { "/" } else { &v.path },
                    v.expected
                )
            })
            .collect();
        actual.push_str(&format!(
            " [and {} more violation(s): {}]",
            violations.len() - 1,
            others.join("; ")
        ));
    }
    Err(Outcome::fail(
        format!("{} per {schema_name}", first.expected),
        actual,
        first.path.clone(),
    ))
}

/// A readable name for a schema: its `$ref`, or `inline schema`.
pub(crate) fn schema_name(schema: &Value) -> String {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        return reference.to_owned();
    }
    if let Some(branches) = schema.get("oneOf").and_then(Value::as_array) {
        let names: Vec<String> = branches
            .iter()
            .map(|branch| {
                branch
                    .get("$ref")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .or_else(|| branch.get("type").map(Value::to_string))
                    .unwrap_or_else(|| "inline".to_owned())
            })
            .collect();
        return format!("oneOf[{}]", names.join(", "));
    }
    "an inline schema".to_owned()
}

/// The operation, or a skip naming what the spec lacks.
pub(crate) fn operation<'s>(spec: &'s Spec, id: &str) -> Result<&'s Operation, Outcome> {
    spec.operation(id)
        .ok_or_else(|| Outcome::skip(format!("the spec has no operation {id}")))
}

/// Whether a status is a client error.
pub(crate) fn is_client_error(status: u16) -> bool {
    (400..500).contains(&status)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The main recorder, or the reason it is missing.
pub(crate) type MainRecorder = Result<Recorder, String>;
