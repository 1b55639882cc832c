//! The suite: the catalog of cases (one module per contract section), the run context that records outcomes, and
//! the checks the sections share (a reply's status and body against the spec).

mod bad_input;
pub(crate) mod data;
mod flow;
mod shapes;
mod webhook;
mod ws;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use crate::case::{CaseInfo, CaseResult, Outcome, Phase, Profile};
use crate::client::{Http, Recorder, Reply};
use crate::report::{REPORT_FORMAT_VERSION, Report, SpecInfo, Summary, Timings};
use crate::spec::{Operation, Spec, truncate};
use crate::{Selection, Target};

/// Every case for `spec`, in execution order.
pub(crate) fn catalog(spec: &Spec) -> Vec<CaseInfo> {
    let mut all = shapes::stateless_cases(spec);
    all.extend(bad_input::cases(spec));
    all.extend(webhook::cases());
    all.extend(flow::cases());
    all.extend(shapes::flow_cases());
    all.extend(ws::cases());
    all.sort_by_key(|case| case.phase);
    all
}

/// The longest wait for a run to start by itself (the seed does not promise one) before `POST /api/tests/run`.
const AUTO_RUN_WAIT: Duration = Duration::from_secs(8);

/// The part of the budget kept for every case not judged yet: a wait ends early enough to leave the cases after
/// it this much time each (at most a quarter of the budget in all).
const PER_CASE_RESERVE: Duration = Duration::from_millis(500);

/// The part of the budget kept for the flow's clean-up (bug off, incident closed), at most.
const CLEANUP_RESERVE: Duration = Duration::from_secs(5);

/// Whether `case` is run under `selection` against `target`: selected by prefix, in the selection's profile, and
/// (for the webhook cases) with a webhook secret to send.
fn applicable(case: &CaseInfo, selection: &Selection, target: &Target) -> bool {
    selection.matches(&case.id)
        && selection.profile.includes(case.profile)
        && (!case.needs_webhook_secret || target.webhook_secret.is_some())
}

/// Runs the selected phases and collects the outcomes.
pub(crate) async fn run(
    target: &Target,
    selection: &Selection,
    on_case: &mut (dyn FnMut(&CaseResult) + Send),
) -> Report {
    let started = Instant::now();
    let end = started + target.budget;
    let work_end = end - CLEANUP_RESERVE.min(target.budget / 10);
    // The seed profile judges bodies by the seed's types only (see `Spec::relaxed_for_seed`).
    let relaxed;
    let spec: &Spec = match selection.profile {
        Profile::Seed => {
            relaxed = target.spec.relaxed_for_seed();
            &relaxed
        }
        Profile::Fixloop => &target.spec,
    };
    // Ids and generated cases always come from the spec as given, so they are the same under every profile.
    let catalog = catalog(&target.spec);
    let wanted: BTreeSet<String> = catalog
        .iter()
        .filter(|case| applicable(case, selection, target))
        .map(|case| case.id.clone())
        .collect();
    let phase_wanted = |phase: Phase| {
        catalog
            .iter()
            .any(|case| case.phase == phase && wanted.contains(&case.id))
    };
    let run_stateless = phase_wanted(Phase::Stateless);
    let run_bad_input = phase_wanted(Phase::BadInput);
    let run_webhook = phase_wanted(Phase::Webhook);
    let run_flow = phase_wanted(Phase::Flow) || phase_wanted(Phase::WebSocket);

    let http = match Http::new(&target.base_url, target.request_timeout) {
        Ok(http) => http,
        Err(error) => {
            // Nothing can run: every selected case fails with the reason.
            let cases: Vec<CaseResult> = catalog
                .iter()
                .filter(|case| wanted.contains(&case.id))
                .map(|case| CaseResult {
                    id: case.id.clone(),
                    description: case.description.clone(),
                    clause: case.clause.clone(),
                    profile: case.profile,
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
        order: catalog.iter().map(|case| case.id.clone()).collect(),
        wanted,
        results: Vec::new(),
        recorded: BTreeSet::new(),
        timings: BTreeMap::new(),
        last: started,
        work_end,
        end,
        cut_short: AtomicBool::new(false),
        on_case,
        http: http.with_deadline(work_end),
        cleanup_http: http.with_deadline(end),
    };

    // The main recorder connects first, so it sees every message the suite causes.
    let main = if run_flow {
        Some(ws::connect_main(&mut ctx).await)
    } else {
        None
    };
    // The precondition of every other case: the server answers HTTP at all. A server that accepts connections
    // and never answers would otherwise cost a request timeout per case.
    if let Err(error) = ctx.http().get("/api/status").await {
        ctx.record(
            "shapes/getStatus/1",
            Outcome::fail(
                "an HTTP response with status 200",
                format!("no response: {error}"),
                "status",
            ),
        );
        let reason = format!(
            "precondition failed: the server did not answer GET /api/status ({})",
            truncate(&error, 200)
        );
        ctx.skip_unrecorded(&reason);
        return report(target, selection, ctx.results, started, ctx.timings);
    }
    if run_stateless {
        shapes::run_stateless(&mut ctx).await;
    }
    if run_bad_input && ctx.budget_left() {
        bad_input::run(&mut ctx).await;
    }
    if run_webhook && ctx.budget_left() {
        webhook::run(&mut ctx).await;
    }
    if let Some(main) = main {
        let flow = flow::run(&mut ctx, &main).await;
        ws::judge(&mut ctx, &main, &flow).await;
    }

    // Every selected case appears in the report exactly once.
    let reason = if ctx.budget_left() {
        "the suite did not reach this case".to_owned()
    } else {
        ctx.budget_reason()
    };
    ctx.skip_unrecorded(&reason);
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
        profile: selection.profile,
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
    /// The case ids in execution order.
    order: Vec<String>,
    /// The ids reported by this run: selected and applicable.
    wanted: BTreeSet<String>,
    results: Vec<CaseResult>,
    recorded: BTreeSet<String>,
    timings: BTreeMap<String, u64>,
    last: Instant,
    /// When the budget for judging ends (the rest is kept for the clean-up).
    work_end: Instant,
    /// When the whole budget ends.
    end: Instant,
    /// Whether a wait since the last recorded case was cut short by the budget.
    cut_short: AtomicBool,
    on_case: &'a mut (dyn FnMut(&CaseResult) + Send),
    http: Http,
    cleanup_http: Http,
}

impl Ctx<'_> {
    /// The HTTP client; no request outlives the budget.
    pub(crate) fn http(&self) -> &Http {
        &self.http
    }

    /// The HTTP client for the flow's clean-up, which may use the part of the budget kept for it.
    pub(crate) fn cleanup_http(&self) -> &Http {
        &self.cleanup_http
    }

    /// The run's profile.
    pub(crate) fn profile(&self) -> Profile {
        self.selection.profile
    }

    /// Whether the case with this id is reported by this run.
    pub(crate) fn wants(&self, id: &str) -> bool {
        self.wanted.contains(id)
    }

    /// Whether some of the budget is left for judging.
    pub(crate) fn budget_left(&self) -> bool {
        Instant::now() < self.work_end
    }

    /// The time left for judging, for a handshake timeout: at most `bound`.
    pub(crate) fn bounded_by_budget(&self, bound: Duration) -> Duration {
        bound.min(self.work_end.saturating_duration_since(Instant::now()))
    }

    /// Why a case was not judged once the budget ran out.
    fn budget_reason(&self) -> String {
        format!(
            "the run's budget of {} s ran out before this case could be judged (raise it with --budget)",
            self.target.budget.as_secs()
        )
    }

    /// Records a skip with `reason` for every reported case that has no outcome yet.
    fn skip_unrecorded(&mut self, reason: &str) {
        let missing: Vec<String> = self
            .order
            .iter()
            .filter(|id| self.wanted.contains(*id) && !self.recorded.contains(*id))
            .cloned()
            .collect();
        for id in missing {
            self.record(&id, Outcome::skip(reason));
        }
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

    /// The latest end of a wait: the end of the budget for judging, minus [`PER_CASE_RESERVE`] for every case not
    /// judged yet (at most a quarter of the budget), so one long wait cannot use the time of the cases after it.
    fn wait_limit(&self) -> Instant {
        let unjudged = self.wanted.len().saturating_sub(self.recorded.len());
        let reserve = PER_CASE_RESERVE
            .saturating_mul(u32::try_from(unjudged).unwrap_or(u32::MAX))
            .min(self.target.budget / 4);
        self.work_end.checked_sub(reserve).unwrap_or(self.work_end)
    }

    /// The end of a wait of `length` starting now, cut at [`Self::wait_limit`]; a cut is remembered, so the
    /// failure of the case waiting is reported as a skip naming the budget (see [`Self::record`]).
    fn bounded_wait(&self, length: Duration) -> Instant {
        let wanted = Instant::now() + length;
        let limit = self.wait_limit();
        if wanted > limit {
            self.cut_short.store(true, Ordering::Relaxed);
        }
        wanted.min(limit)
    }

    /// The deadline of one flow wait starting now (never after the budget's end).
    pub(crate) fn flow_deadline(&self) -> Instant {
        self.bounded_wait(self.target.flow_timeout)
    }

    /// How long the flow waits for something the seed does not promise (a run starting by itself) before it
    /// uses the contract's own operation instead: the flow timeout, at most [`AUTO_RUN_WAIT`].
    pub(crate) fn auto_run_wait(&self) -> Duration {
        self.target.flow_timeout.min(AUTO_RUN_WAIT)
    }

    /// The deadline of the wait for a run starting by itself ([`Self::auto_run_wait`] from now).
    pub(crate) fn auto_run_deadline(&self) -> Instant {
        self.bounded_wait(self.auto_run_wait())
    }

    /// A short bound for things that must happen promptly: the flow timeout, at most 5 s.
    pub(crate) fn prompt_deadline(&self) -> Instant {
        self.bounded_wait(self.target.flow_timeout.min(Duration::from_secs(5)))
    }

    /// The deadline of a wait for something already due, such as the last messages of a sequence: at most 2 s.
    pub(crate) fn grace_deadline(&self) -> Instant {
        (Instant::now() + self.target.flow_timeout.min(Duration::from_secs(2))).min(self.end)
    }

    /// Records the outcome of case `id` (once; cases this run does not report are dropped). A failure seen
    /// after the budget ran out, or after a wait the budget cut short, is not a judgement of the server, so it is
    /// reported as a skip naming the budget.
    pub(crate) fn record(&mut self, id: &str, outcome: Outcome) {
        let now = Instant::now();
        let elapsed = millis(now - self.last);
        self.last = now;
        if !self.wanted.contains(id) || !self.recorded.insert(id.to_owned()) {
            return;
        }
        let cut_short = self.cut_short.swap(false, Ordering::Relaxed);
        // A failure, or a fallback to the contract's own operation, after a wait the budget cut short says nothing
        // about the server: it might have answered in the time the wait was owed. Either is a skip naming the budget.
        let judged_on_a_cut_wait = outcome.is_fail() || matches!(outcome, Outcome::Skip { .. });
        let outcome = if judged_on_a_cut_wait && (cut_short || !self.budget_left()) {
            Outcome::skip(format!(
                "{}; what was seen: {}",
                self.budget_reason(),
                truncate(&outcome.short_reason(), 300)
            ))
        } else {
            outcome
        };
        let (description, clause, profile) = self.catalog.get(id).map_or_else(
            || {
                (
                    "(a case missing from the catalog)".to_owned(),
                    String::new(),
                    Profile::Fixloop,
                )
            },
            |info| (info.description.clone(), info.clause.clone(), info.profile),
        );
        let result = CaseResult {
            id: id.to_owned(),
            description,
            clause,
            profile,
            outcome,
        };
        (self.on_case)(&result);
        self.timings.insert(id.to_owned(), elapsed);
        self.results.push(result);
    }
}

/// A catalog entry of the given profile.
pub(crate) fn info(
    profile: Profile,
    id: &str,
    description: &str,
    clause: &str,
    phase: Phase,
) -> CaseInfo {
    CaseInfo {
        id: id.to_owned(),
        description: description.to_owned(),
        clause: clause.to_owned(),
        profile,
        needs_webhook_secret: false,
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
