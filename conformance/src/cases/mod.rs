//! The suite: the catalog of cases (one module per contract section) and the run that executes their phases in
//! order. What the sections share sits below them: the run context that records outcomes ([`context`]), the checks
//! of a reply against the spec ([`check`]) and the queries over a WebSocket log ([`messages`]); no section uses
//! another's items except that `ws` judges what `flow` left ([`flow::FlowResult`]) and the flow calls `shapes`.

mod bad_input;
mod check;
mod context;
pub(crate) mod data;
mod flow;
mod messages;
mod shapes;
mod webhook;
mod ws;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicBool;

use tokio::time::Instant;

use self::context::{CLEANUP_RESERVE, Ctx, millis};
use crate::case::{CaseInfo, CaseResult, Outcome, Phase, Profile};
use crate::client::Http;
use crate::report::{REPORT_FORMAT_VERSION, Report, SpecInfo, Summary, Timings};
use crate::spec::{Spec, truncate};
use crate::target::{Selection, Target};

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
