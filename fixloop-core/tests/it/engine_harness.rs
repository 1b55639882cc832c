//! A test harness for the engine: a fake clock, a driver that follows the driving contract, answers to the
//! latest effects, and a rendered input/effect trace for snapshots.

use std::fmt::Write as _;

use fixloop_contract::chrono::{DateTime, TimeDelta, Utc};
use fixloop_contract::{IncidentState, Plan, RunStatus, Signal, TestStatus, WsMessage};
use fixloop_core::engine::{
    Alert, Config, Effect, Engine, IncidentContext, Input, PlannerChoice, PortFailure, Rejected,
    SignalSample,
};
use fixloop_core::{EffectId, IncidentId, PlanContext, PlanId, RunId, rule_plan};

use crate::shop::{shop_context, shop_spec};

/// Base URL of the service under test in every scenario.
pub(crate) const BASE_URL: &str = "http://127.0.0.1:8001";

/// The time scenarios start at.
pub(crate) fn start_time() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-21T10:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(DateTime::UNIX_EPOCH)
}

/// The demo configuration the scenarios use (ids `inc-t-1`, `run-t-1`, ...).
pub(crate) fn demo_config() -> Config {
    Config::short_windows(shop_spec(BASE_URL), "t")
}

/// A plan the final validator accepts: the rule planner's.
pub(crate) fn valid_plan() -> Plan {
    let context = PlanContext {
        incident_id: IncidentId::new("inc-any"),
        service: "demo-checkout".to_owned(),
        base_url: BASE_URL.to_owned(),
        signal: Signal {
            error_rate_5m: 20.0,
            p95_latency_ms_5m: 300.0,
            top_error: None,
        },
        title: "checkout failing".to_owned(),
        ..shop_context(BASE_URL)
    };
    rule_plan(&context, PlanId::new("llm-plan"), start_time())
}

/// A plan no validator accepts: four items.
pub(crate) fn invalid_plan() -> Plan {
    let mut plan = valid_plan();
    plan.items.pop();
    plan
}

/// The latest outstanding request of each kind.
#[derive(Debug, Default, Clone)]
pub(crate) struct Outstanding {
    pub(crate) fetch: Option<EffectId>,
    pub(crate) plan: Option<(EffectId, u32, PlannerChoice, usize)>,
    pub(crate) run: Option<(EffectId, RunId, Vec<String>)>,
    /// The latest remediation action requested and not answered, cancelled or superseded.
    pub(crate) action: Option<EffectId>,
    /// The latest model's pick requested and not answered, with its candidates.
    pub(crate) choice: Option<(EffectId, Vec<String>)>,
}

/// Drives one engine with a fake clock.
pub(crate) struct Harness {
    pub(crate) engine: Engine,
    pub(crate) now: DateTime<Utc>,
    start: DateTime<Utc>,
    trace: String,
    /// Every effect so far, in order.
    pub(crate) effects: Vec<Effect>,
    /// The latest requests.
    pub(crate) outstanding: Outstanding,
    /// Every call made on the engine, in order: `(now, Some(input))` for an input, `(now, None)` for a timeout; a
    /// journal of the story, replayed by the snapshot properties.
    pub(crate) log: Vec<(DateTime<Utc>, Option<Input>)>,
    /// Effects taken from the engine but not drained yet.
    pending: std::collections::VecDeque<Effect>,
}

impl Harness {
    pub(crate) fn new(config: Config) -> Self {
        let start = start_time();
        Self {
            engine: Engine::new(config, start),
            now: start,
            start,
            trace: String::new(),
            effects: Vec::new(),
            outstanding: Outstanding::default(),
            log: Vec::new(),
            pending: std::collections::VecDeque::new(),
        }
    }

    pub(crate) fn demo() -> Self {
        Self::new(demo_config())
    }

    /// The rendered trace.
    pub(crate) fn trace(&self) -> &str {
        &self.trace
    }

    /// How many effects were emitted so far (a mark for [`Harness::effects_since`]).
    pub(crate) fn mark(&self) -> usize {
        self.effects.len()
    }

    pub(crate) fn effects_since(&self, mark: usize) -> &[Effect] {
        &self.effects[mark..]
    }

    pub(crate) fn status(&self) -> IncidentState {
        self.engine.status().status
    }

    /// Feeds an input at the current time and drains the effects.
    pub(crate) fn input(&mut self, input: Input) -> Result<(), Rejected> {
        let line = render_input(&input);
        self.log.push((self.now, Some(input.clone())));
        let result = self.engine.handle_input(self.now, input);
        let _ = writeln!(self.trace, "{} > {line}", self.offset());
        if let Err(rejected) = &result {
            let _ = writeln!(self.trace, "        ! rejected: {rejected}");
        }
        self.drain();
        result
    }

    /// Feeds an input that must be accepted.
    pub(crate) fn ok(&mut self, input: Input) {
        let result = self.input(input);
        assert_eq!(result, Ok(()), "input rejected");
    }

    /// Moves the clock by `seconds`, firing every timer that comes due on the way, in order.
    pub(crate) fn advance(&mut self, seconds: i64) {
        self.advance_ms(seconds.saturating_mul(1000));
    }

    /// Moves the clock by `millis` milliseconds, firing every timer that comes due on the way, in order.
    pub(crate) fn advance_ms(&mut self, millis: i64) {
        self.advance_to(self.now + TimeDelta::milliseconds(millis));
    }

    /// Moves the clock to `target`, firing every timer that comes due on the way, in order.
    pub(crate) fn advance_to(&mut self, target: DateTime<Utc>) {
        let mut fired = 0;
        while let Some(due) = self.engine.poll_timeout() {
            if due > target || fired > 100 {
                break;
            }
            self.now = self.now.max(due);
            self.log.push((self.now, None));
            self.engine.handle_timeout(self.now);
            // A timeout whose only effect is the engine's next read is written on one line (`poll`), so a trace
            // stays readable at one read per second.
            let mut effects = Vec::new();
            while let Some(effect) = self.engine.poll_effect() {
                effects.push(effect);
            }
            match effects.as_slice() {
                [Effect::SampleSignals { window }] => {
                    let _ = writeln!(
                        self.trace,
                        "{} > poll window={}",
                        self.offset(),
                        duration_text(*window)
                    );
                    self.effects.append(&mut effects);
                    self.check_invariants();
                }
                _ => {
                    let _ = writeln!(self.trace, "{} > timeout", self.offset());
                    self.pending.extend(effects);
                    self.drain();
                }
            }
            fired += 1;
        }
        self.now = target;
    }

    pub(crate) fn sample(&mut self, error_rate: Option<f64>, requests: u64) {
        let at = self.now;
        self.ok(Input::SignalSampled(SignalSample {
            at,
            error_rate,
            p95_latency_ms: error_rate.map(|_| 120.0),
            top_error: error_rate
                .filter(|rate| *rate > 0.05)
                .map(|_| "HTTP 500 POST /checkout".to_owned()),
            requests,
        }));
    }

    /// `count` samples one second apart (the first one now).
    pub(crate) fn samples(&mut self, count: usize, error_rate: Option<f64>, requests: u64) {
        for index in 0..count {
            if index > 0 {
                self.advance(1);
            }
            self.sample(error_rate, requests);
        }
    }

    pub(crate) fn hot(&mut self, count: usize) {
        self.samples(count, Some(0.25), 50);
    }

    pub(crate) fn healthy(&mut self, count: usize) {
        self.samples(count, Some(0.0), 50);
    }

    pub(crate) fn alert(&mut self, dedupe_key: &str) {
        self.ok(Input::AlertFired(Alert {
            source: "datadog".to_owned(),
            dedupe_key: dedupe_key.to_owned(),
            monitor_id: Some("mon-42".to_owned()),
            title: "High 5xx rate on demo-checkout".to_owned(),
        }));
    }

    pub(crate) fn context_ok(&mut self) {
        let effect = self
            .outstanding
            .fetch
            .expect("a context fetch is outstanding");
        self.ok(Input::ContextFetched {
            effect,
            result: Ok(IncidentContext {
                error_rate: 0.25,
                p95_latency_ms: 340.0,
                top_error: Some("HTTP 500 POST /checkout".to_owned()),
                evidence_links: vec![fixloop_contract::Link {
                    label: "Datadog".to_owned(),
                    url: "https://app.datadoghq.com/monitors/42".to_owned(),
                }],
            }),
        });
    }

    pub(crate) fn plan_effect(&self) -> EffectId {
        self.outstanding
            .plan
            .expect("a plan request is outstanding")
            .0
    }

    pub(crate) fn propose(&mut self, plan: Plan) {
        let effect = self.plan_effect();
        self.ok(Input::PlanProposed { effect, plan });
    }

    pub(crate) fn plan_failed(&mut self) {
        let effect = self.plan_effect();
        self.ok(Input::PlanGenerationFailed {
            effect,
            failure: PortFailure::Unavailable("model overloaded".to_owned()),
        });
    }

    /// Simulate on, context, a valid plan: the incident is VALIDATING with its first run in progress.
    pub(crate) fn open_and_plan(&mut self) {
        self.ok(Input::SimulateOn);
        self.context_ok();
        self.propose(valid_plan());
        assert_eq!(self.status(), IncidentState::Validating);
    }

    pub(crate) fn run_effect(&self) -> EffectId {
        self.outstanding.run.as_ref().expect("a run was started").0
    }

    pub(crate) fn progress(&mut self, test_id: &str, status: TestStatus, details: Option<&str>) {
        let effect = self.run_effect();
        self.ok(Input::TestProgressed {
            effect,
            test_id: test_id.to_owned(),
            status,
            details: details.map(str::to_owned),
        });
    }

    /// Every test of the latest run PASS, then the run finishes.
    pub(crate) fn pass_all(&mut self) {
        self.verdicts(&[]);
    }

    /// Every test PASS except those named (FAIL), then the run finishes.
    pub(crate) fn verdicts(&mut self, failing: &[&str]) {
        let tests = self
            .outstanding
            .run
            .as_ref()
            .expect("a run was started")
            .2
            .clone();
        for test_id in &tests {
            if failing.contains(&test_id.as_str()) {
                self.progress(
                    test_id,
                    TestStatus::Fail,
                    Some("status was 500, expected 200"),
                );
            } else {
                self.progress(test_id, TestStatus::Pass, Some("status 200"));
            }
        }
        self.finish(Ok(()));
    }

    /// Answers the outstanding remediation action.
    pub(crate) fn action_done(&mut self, result: Result<(), PortFailure>) {
        let effect = self
            .outstanding
            .action
            .take()
            .expect("an action is outstanding");
        self.ok(Input::ActionFinished { effect, result });
    }

    /// Answers the outstanding model's pick with `action`.
    pub(crate) fn choose(&mut self, action: Option<&str>, reason: &str) {
        let (effect, _) = self
            .outstanding
            .choice
            .take()
            .expect("a model's pick is outstanding");
        self.ok(Input::ActionChosen {
            effect,
            action: action.map(str::to_owned),
            reason: reason.to_owned(),
        });
    }

    pub(crate) fn finish(&mut self, result: Result<(), PortFailure>) {
        let effect = self.run_effect();
        self.ok(Input::RunFinished { effect, result });
    }

    /// Published messages among `effects`.
    pub(crate) fn published(effects: &[Effect]) -> Vec<&WsMessage> {
        effects
            .iter()
            .filter_map(|effect| match effect {
                Effect::Publish(envelope) => Some(&envelope.message),
                _ => None,
            })
            .collect()
    }

    /// The `type`s of the messages published among `effects`.
    pub(crate) fn kinds(effects: &[Effect]) -> Vec<&'static str> {
        Self::published(effects)
            .into_iter()
            .map(WsMessage::kind)
            .collect()
    }

    /// How many runs were started among `effects`.
    pub(crate) fn runs_started(effects: &[Effect]) -> usize {
        effects
            .iter()
            .filter(|effect| matches!(effect, Effect::StartRun { .. }))
            .count()
    }

    fn offset(&self) -> String {
        let millis = (self.now - self.start).num_milliseconds();
        if millis % 1000 == 0 {
            format!("+{:>3}s", millis / 1000)
        } else {
            format!("+{:>3}.{:03}s", millis / 1000, millis % 1000)
        }
    }

    fn drain(&mut self) {
        while let Some(effect) = self
            .pending
            .pop_front()
            .or_else(|| self.engine.poll_effect())
        {
            if let Effect::Publish(envelope) = &effect {
                assert_eq!(envelope.ts, self.now, "published envelopes carry ts = now");
            }
            match &effect {
                Effect::FetchContext { effect, .. } => self.outstanding.fetch = Some(*effect),
                Effect::RequestPlan {
                    effect,
                    attempt,
                    planner,
                    previous_violations,
                    ..
                } => {
                    self.outstanding.plan =
                        Some((*effect, *attempt, *planner, previous_violations.len()));
                }
                Effect::StartRun {
                    effect,
                    run_id,
                    plan,
                } => {
                    let tests = plan
                        .plan()
                        .items
                        .iter()
                        .map(|item| item.test_id.clone())
                        .collect();
                    self.outstanding.run = Some((*effect, run_id.clone(), tests));
                }
                Effect::ExecuteAction { effect, .. } => {
                    assert_eq!(
                        self.outstanding.action, None,
                        "at most one action runs at a time"
                    );
                    self.outstanding.action = Some(*effect);
                }
                Effect::CancelAction { effect } if self.outstanding.action == Some(*effect) => {
                    self.outstanding.action = None;
                }
                Effect::ChooseAction {
                    effect, candidates, ..
                } => {
                    let ids = candidates.iter().map(|c| c.action_id.clone()).collect();
                    self.outstanding.choice = Some((*effect, ids));
                }
                _ => {}
            }
            let _ = writeln!(self.trace, "        < {}", render_effect(&effect));
            self.effects.push(effect);
        }
        self.check_invariants();
    }

    fn check_invariants(&self) {
        let status = self.engine.status();
        let incident = self.engine.current_incident();
        assert_eq!(
            status.active_incident_id.as_deref(),
            incident.map(|card| card.incident_id.as_str()),
            "the status names the open incident"
        );
        assert_eq!(
            status.status == IncidentState::Healthy,
            incident.is_none(),
            "an incident is open exactly when the status is not HEALTHY"
        );
        if status.status == IncidentState::Recovered {
            let run = self.engine.current_run().expect("RECOVERED has a run");
            assert_eq!(run.status, RunStatus::Completed);
            assert!(run.tests.iter().all(|test| test.status == TestStatus::Pass));
            assert_eq!(self.engine.recovery_blocker(), None);
        }
    }
}

/// A wire error rate, already in percent.
fn percent_value(percent: f64) -> String {
    format!("{percent:.1}%")
}

fn percent(ratio: f64) -> String {
    format!("{:.1}%", ratio * 100.0)
}

/// One line per input.
pub(crate) fn render_input(input: &Input) -> String {
    match input {
        Input::SignalSampled(sample) => match sample.error_rate {
            Some(rate) => format!(
                "sample error_rate={} requests={}",
                percent(rate),
                sample.requests
            ),
            None => format!("sample no-data requests={}", sample.requests),
        },
        Input::AlertFired(alert) => format!(
            "alert fired key={} monitor={}",
            alert.dedupe_key,
            alert.monitor_id.as_deref().unwrap_or("-")
        ),
        Input::AlertResolved { dedupe_key } => format!("alert resolved key={dedupe_key}"),
        Input::SimulateOn => "simulate on".to_owned(),
        Input::SimulateOff => "simulate off".to_owned(),
        Input::ServiceChanged { repair } => format!("service changed repair={repair}"),
        Input::ContextFetched { effect, result } => match result {
            Ok(_) => format!("context fetched {effect} ok"),
            Err(failure) => format!("context fetched {effect} err={failure:?}"),
        },
        Input::PlanProposed { effect, plan } => {
            format!("plan proposed {effect} items={}", plan.items.len())
        }
        Input::PlanGenerationFailed { effect, failure } => {
            format!("plan generation failed {effect} {failure:?}")
        }
        Input::TestProgressed {
            effect,
            test_id,
            status,
            details,
        } => format!(
            "test progressed {effect} {test_id} {status:?}{}",
            details
                .as_deref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        ),
        Input::RunFinished { effect, result } => match result {
            Ok(()) => format!("run finished {effect} ok"),
            Err(failure) => format!("run finished {effect} err={failure:?}"),
        },
        Input::OperatorRequestedRun { incident_id } => {
            format!("operator requested run {incident_id}")
        }
        Input::CopilotAnswered(answer) => format!("copilot answered {:?}", answer.question),
        Input::ApprovalGiven {
            proposal,
            version,
            by,
        } => format!("approval given {proposal} version={version} by={by}"),
        Input::ApprovalRejected {
            proposal,
            version,
            by,
        } => format!("approval rejected {proposal} version={version} by={by}"),
        Input::ActionFinished { effect, result } => match result {
            Ok(()) => format!("action finished {effect} ok"),
            Err(failure) => format!("action finished {effect} err={failure:?}"),
        },
        Input::KillSwitchSet { engaged, by } => {
            format!("kill switch engaged={engaged} by={by}")
        }
        Input::ActionChosen {
            effect,
            action,
            reason,
        } => format!(
            "action chosen {effect} {} ({reason:?})",
            action
                .as_deref()
                .map_or("-".to_owned(), |action| format!("{action:?}"))
        ),
        other => format!("{other:?}"),
    }
}

/// One line per effect.
pub(crate) fn render_effect(effect: &Effect) -> String {
    match effect {
        Effect::Publish(envelope) => match &envelope.message {
            WsMessage::SystemStatus(status) => format!(
                "publish system.status {:?} active={} error_rate={} p95={}ms{}",
                status.status,
                status.active_incident_id.as_deref().unwrap_or("-"),
                percent_value(status.error_rate_5m),
                status.p95_latency_ms_5m,
                status
                    .signals_degraded
                    .as_deref()
                    .map(|why| format!(" degraded={why:?}"))
                    .unwrap_or_default()
            ),
            WsMessage::IncidentCreated(card) => format!(
                "publish incident.created {} {:?} monitor={} plan={} items={} error_rate={} links={}",
                card.incident_id,
                card.title,
                card.datadog_summary.monitor_id.as_deref().unwrap_or("-"),
                card.plan.plan_id,
                card.plan.items.len(),
                percent_value(card.datadog_summary.signal.error_rate_5m),
                card.datadog_summary.evidence_links.len()
            ),
            WsMessage::PlanGenerated(generated) => format!(
                "publish plan.generated {} {} [{}]",
                generated.incident_id,
                generated.plan.plan_id,
                generated
                    .plan
                    .items
                    .iter()
                    .map(|item| item.test_id.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            WsMessage::TestsUpdated(run) => format!(
                "publish tests.updated {} {:?} [{}]",
                run.run_id,
                run.status,
                run.tests
                    .iter()
                    .map(|test| match &test.details {
                        Some(details) if test.status == TestStatus::Fail => {
                            format!("{}:{:?}({details})", test.test_id, test.status)
                        }
                        _ => format!("{}:{:?}", test.test_id, test.status),
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            WsMessage::CopilotAnswer(answer) => {
                format!("publish copilot.answer {:?}", answer.answer)
            }
            // The server's resume marker; the engine never publishes it.
            WsMessage::StreamReset(reset) => format!("publish stream.reset {reset:?}"),
            // The driver's remediation events; the engine never publishes them.
            other => format!("publish {}", other.kind()),
        },
        Effect::FetchContext {
            effect,
            incident_id,
        } => format!("fetch context {effect} {incident_id}"),
        Effect::RequestPlan {
            effect,
            plan_id,
            context,
            attempt,
            previous_violations,
            planner,
        } => format!(
            "request plan {effect} {} {plan_id} attempt={attempt} planner={planner:?} previous_violations={}",
            context.incident_id,
            previous_violations.len()
        ),
        Effect::StartRun {
            effect,
            run_id,
            plan,
        } => format!("start run {effect} {run_id} plan={}", plan.plan().plan_id),
        Effect::CancelRun { effect } => format!("cancel run {effect}"),
        Effect::ProbeService { effect } => format!("probe service {effect}"),
        Effect::SampleSignals { window } => {
            format!("sample signals window={}", duration_text(*window))
        }
        Effect::ExecuteAction {
            effect,
            proposal,
            incident_id,
            action_id,
            dry_run,
        } => format!(
            "execute action {effect} {proposal} {incident_id} {action_id}{}",
            if *dry_run { " dry-run" } else { "" }
        ),
        Effect::CancelAction { effect } => format!("cancel action {effect}"),
        Effect::ChooseAction {
            effect,
            incident_id,
            kind,
            candidates,
            ..
        } => format!(
            "choose action {effect} {incident_id} {kind} among [{}]",
            candidates
                .iter()
                .map(|c| format!("{} {} {}/{}", c.action_id, c.tier, c.effective, c.attempts))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Effect::Notify(notification) => format!(
            "notify {:?} {} {}: {}",
            notification.kind,
            notification.incident_id,
            notification
                .proposal
                .as_ref()
                .map_or("-", fixloop_core::ProposalId::as_str),
            notification.summary
        ),
    }
}

/// A duration in seconds with up to three decimals (`1.5s`).
pub(crate) fn duration_text(duration: std::time::Duration) -> String {
    format!("{}s", duration.as_millis() as f64 / 1000.0)
}
