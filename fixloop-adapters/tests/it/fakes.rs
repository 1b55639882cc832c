//! The fakes: every port contract suite against its fake, plus the scripting API (queues, sticky failures,
//! delays on the tokio clock, holds, recorded calls, reading cycles, plan defects, cleared verdicts).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use fixloop_adapters::fake::{
    DemoModel, FakeContextSource, FakeCopilot, FakePlanner, FakeSignalSource, FakeTestRunner,
    PlanDefect, erroring_reading, healthy_reading, incident_findings,
};
use fixloop_adapters::{
    AdapterError, ContextFindings, ContextQuery, ContextSource, Copilot, CopilotReply, ErrorKind,
    NoLookup, Planner, SignalSource, TestRunner,
};
use fixloop_contract::{Link, TestStatus};
use fixloop_core::RunId;
use tokio::sync::mpsc;

use crate::contract::context_source::{self, ContextScenario, Situation};
use crate::contract::copilot::{self, NothingToArrange, states};
use crate::contract::planner::{self, PlannerBehaviour, PlannerScenario};
use crate::contract::signal_source::{self, SignalScenario, Traffic};
use crate::contract::test_runner::{
    self, RunnerScenario, ServiceBehaviour, run_and_collect, validated_rule_plan,
};
use crate::contract::{bounded, plan_request};

const BASE_URL: &str = "http://127.0.0.1:8080";

struct SignalFakeScenario(Arc<FakeSignalSource>);

#[async_trait]
impl SignalScenario for SignalFakeScenario {
    async fn arrange(&self, traffic: Traffic) {
        match traffic {
            Traffic::Healthy => self.0.set_reading(healthy_reading()),
            Traffic::Erroring => self.0.set_reading(erroring_reading()),
            Traffic::Slow => self.0.set_failure(Some(ErrorKind::Timeout)),
            Traffic::Down => self.0.set_failure(Some(ErrorKind::Unavailable)),
        }
    }
}

struct ContextFakeScenario(Arc<FakeContextSource>);

#[async_trait]
impl ContextScenario for ContextFakeScenario {
    async fn arrange(&self, situation: Situation) {
        match situation {
            Situation::Incident => self.0.set_findings(incident_findings()),
            Situation::Quiet => self.0.set_findings(ContextFindings::default()),
            Situation::Slow => self.0.set_failure(Some(ErrorKind::Timeout)),
            Situation::Failing | Situation::Unreachable => {
                self.0.set_failure(Some(ErrorKind::Unavailable));
            }
        }
    }
}

struct PlannerFakeScenario(Arc<FakePlanner>);

#[async_trait]
impl PlannerScenario for PlannerFakeScenario {
    async fn arrange(&self, behaviour: PlannerBehaviour) -> bool {
        let kind = match behaviour {
            PlannerBehaviour::Valid => None,
            PlannerBehaviour::Unauthorized => Some(ErrorKind::Unauthorized),
            PlannerBehaviour::RateLimited(retry_after) => {
                self.0.push_error(AdapterError::rate_limited(retry_after));
                return true;
            }
            PlannerBehaviour::Malformed => Some(ErrorKind::InvalidResponse),
            PlannerBehaviour::Down => Some(ErrorKind::Unavailable),
            PlannerBehaviour::Slow => Some(ErrorKind::Timeout),
        };
        self.0.set_failure(kind);
        true
    }
}

struct RunnerFakeScenario(Arc<FakeTestRunner>);

#[async_trait]
impl RunnerScenario for RunnerFakeScenario {
    async fn arrange(&self, behaviour: ServiceBehaviour) -> String {
        let model = self.0.model();
        model.set_bug(behaviour == ServiceBehaviour::CheckoutBroken);
        model.set_down(behaviour == ServiceBehaviour::Unreachable);
        BASE_URL.to_owned()
    }
}

#[tokio::test]
async fn fake_signal_source_meets_the_signal_source_contract() {
    signal_source::check_all(|| async {
        let fake = Arc::new(FakeSignalSource::new());
        let source: Arc<dyn SignalSource> = fake.clone();
        let scenario: Box<dyn SignalScenario> = Box::new(SignalFakeScenario(fake));
        (source, scenario)
    })
    .await;
}

#[tokio::test]
async fn fake_context_source_meets_the_context_source_contract() {
    context_source::check_all(|| async {
        let fake = Arc::new(FakeContextSource::new());
        let source: Arc<dyn ContextSource> = fake.clone();
        let scenario: Box<dyn ContextScenario> = Box::new(ContextFakeScenario(fake));
        (source, scenario)
    })
    .await;
}

#[tokio::test]
async fn fake_planner_meets_the_planner_contract() {
    planner::check_all(|| async {
        let fake = Arc::new(FakePlanner::new());
        let planner: Arc<dyn Planner> = fake.clone();
        let scenario: Box<dyn PlannerScenario> = Box::new(PlannerFakeScenario(fake));
        (planner, scenario)
    })
    .await;
}

#[tokio::test]
async fn fake_test_runner_meets_the_test_runner_contract() {
    test_runner::check_all(|| async {
        let fake = Arc::new(FakeTestRunner::new());
        let runner: Arc<dyn TestRunner> = fake.clone();
        let scenario: Box<dyn RunnerScenario> = Box::new(RunnerFakeScenario(fake));
        (runner, scenario)
    })
    .await;
}

#[tokio::test]
async fn fake_copilot_meets_the_copilot_contract() {
    copilot::check_all(|| async {
        let copilot: Arc<dyn Copilot> = Arc::new(FakeCopilot::new());
        let scenario: Box<dyn copilot::CopilotScenario> = Box::new(NothingToArrange);
        (copilot, scenario)
    })
    .await;
}

#[tokio::test]
async fn signal_source_serves_the_queue_first_then_the_sticky_reading_and_records_windows() {
    let fake = FakeSignalSource::new();
    fake.push_reading(erroring_reading());
    fake.push_error(AdapterError::unauthorized("bad key"));
    let first = fake
        .read(Duration::from_secs(60))
        .await
        .expect("queued reading");
    assert_eq!(first, erroring_reading());
    let second = fake
        .read(Duration::from_secs(120))
        .await
        .expect_err("queued error");
    assert_eq!(second.kind(), ErrorKind::Unauthorized);
    let third = fake
        .read(Duration::from_secs(180))
        .await
        .expect("sticky reading");
    assert_eq!(third, healthy_reading());
    fake.set_failure(Some(ErrorKind::Unavailable));
    assert_eq!(
        fake.read(Duration::from_secs(1))
            .await
            .expect_err("sticky failure")
            .kind(),
        ErrorKind::Unavailable
    );
    fake.set_failure(None);
    assert!(fake.read(Duration::from_secs(1)).await.is_ok());
    assert_eq!(
        fake.calls(),
        [60, 120, 180, 1, 1].map(Duration::from_secs).to_vec()
    );
}

#[tokio::test(start_paused = true)]
async fn delays_run_on_the_tokio_clock() {
    let fake = FakeSignalSource::new();
    fake.set_delay(Duration::from_secs(30));
    let started = tokio::time::Instant::now();
    let read = fake.read(Duration::from_secs(60));
    tokio::pin!(read);
    // Not ready before the delay has elapsed on the (paused) clock.
    assert!(
        tokio::time::timeout(Duration::from_secs(29), &mut read)
            .await
            .is_err(),
        "the read must wait for its delay"
    );
    let reading = tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .expect("ready after the delay")
        .expect("a reading");
    assert_eq!(reading, healthy_reading());
    assert!(started.elapsed() >= Duration::from_secs(30));
}

#[tokio::test]
async fn context_source_serves_the_queue_first_then_the_failure_then_the_sticky_findings() {
    let fake = FakeContextSource::new();
    let query = |service: &str| ContextQuery {
        service: service.to_owned(),
        incident_id: None,
        window: Duration::from_secs(300),
    };
    assert_eq!(
        fake.gather(&query("a")).await.expect("default findings"),
        ContextFindings::default()
    );
    fake.push_findings(incident_findings());
    fake.push_error(AdapterError::unauthorized("bad key"));
    fake.set_failure(Some(ErrorKind::Unavailable));
    assert_eq!(
        fake.gather(&query("b")).await.expect("queued findings"),
        incident_findings()
    );
    let queued = fake.gather(&query("c")).await.expect_err("queued error");
    assert_eq!(queued.kind(), ErrorKind::Unauthorized);
    let sticky = fake.gather(&query("d")).await.expect_err("sticky failure");
    assert_eq!(sticky.kind(), ErrorKind::Unavailable);
    fake.set_failure(None);
    let mut quiet = incident_findings();
    quiet.top_error = None;
    fake.set_findings(quiet.clone());
    assert_eq!(
        fake.gather(&query("e")).await.expect("sticky findings"),
        quiet
    );
    assert_eq!(fake.gather(&query("f")).await.expect("still sticky"), quiet);
    let services: Vec<String> = fake.calls().into_iter().map(|call| call.service).collect();
    assert_eq!(services, ["a", "b", "c", "d", "e", "f"]);
    let mut recorded = query("x");
    recorded.incident_id = Some("inc-0007".to_owned());
    fake.gather(&recorded).await.expect("findings");
    assert_eq!(fake.calls().last(), Some(&recorded));
}

#[tokio::test(start_paused = true)]
async fn context_source_delays_run_on_the_tokio_clock_and_record_the_query_at_once() {
    let fake = FakeContextSource::with_findings(incident_findings());
    fake.set_delay(Duration::from_secs(30));
    let query = context_source::query();
    let gather = fake.gather(&query);
    tokio::pin!(gather);
    // Not ready before the delay has elapsed on the (paused) clock, but already recorded.
    assert!(
        tokio::time::timeout(Duration::from_secs(29), &mut gather)
            .await
            .is_err(),
        "the gather must wait for its delay"
    );
    assert_eq!(fake.calls(), std::slice::from_ref(&query));
    let findings = tokio::time::timeout(Duration::from_secs(5), gather)
        .await
        .expect("ready after the delay")
        .expect("findings");
    assert_eq!(findings, incident_findings());
}

#[tokio::test]
async fn planner_returns_queued_plans_verbatim_and_records_requests() {
    let fake = FakePlanner::new();
    let mut invalid = fixloop_core::rule_plan(
        &plan_request(BASE_URL).context,
        fixloop_core::PlanId::new("plan-x"),
        crate::contract::fixed_now(),
    );
    invalid.items.truncate(2);
    fake.push_plan(invalid.clone());
    let mut request = plan_request(BASE_URL);
    assert_eq!(fake.propose(&request).await.expect("queued plan"), invalid);
    request.attempt = 2;
    let plan = fake.propose(&request).await.expect("rule plan");
    assert_eq!(plan.items.len(), 5);
    let calls = fake.calls();
    assert_eq!(
        calls.iter().map(|call| call.attempt).collect::<Vec<_>>(),
        [1, 2]
    );
}

#[tokio::test]
async fn runner_table_overrides_the_model_and_calls_are_recorded() {
    let fake = FakeTestRunner::new();
    fake.set_result("t3-health", TestStatus::Fail, Some("forced"));
    let plan = validated_rule_plan(BASE_URL);
    let reports = run_and_collect(&fake, &RunId::new("run-7"), &plan).await;
    let health = reports["t3-health"].last().expect("a verdict");
    assert_eq!(
        (health.status, health.details.as_deref()),
        (TestStatus::Fail, Some("forced"))
    );
    let checkout = reports["t1-checkout-valid"].last().expect("a verdict");
    assert_eq!(checkout.status, TestStatus::Pass, "{checkout:?}");
    let calls = fake.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].run_id, RunId::new("run-7"));
    assert_eq!(&calls[0].plan, plan.plan());
}

#[tokio::test]
async fn runner_with_a_verdict_function_uses_it() {
    let fake = FakeTestRunner::with_verdict(|item, _| {
        (
            TestStatus::Fail,
            Some(format!("scripted failure of {}", item.test_id)),
        )
    });
    let plan = validated_rule_plan(BASE_URL);
    let reports = run_and_collect(&fake, &RunId::new("run-8"), &plan).await;
    let verdict = reports["t4-catalog"].last().expect("a verdict");
    assert_eq!(
        verdict.details.as_deref(),
        Some("scripted failure of t4-catalog")
    );
}

#[tokio::test]
async fn held_runner_reports_running_and_waits_for_release() {
    let fake = Arc::new(FakeTestRunner::new());
    fake.hold();
    let plan = validated_rule_plan(BASE_URL);
    let (sender, mut receiver) = mpsc::channel(16);
    let run = tokio::spawn({
        let fake = Arc::clone(&fake);
        let plan = plan.clone();
        async move { fake.run(&RunId::new("run-9"), &plan, sender).await }
    });
    for _ in 0..5 {
        let progress = bounded("running report", receiver.recv())
            .await
            .expect("a report");
        assert_eq!(progress.status, TestStatus::Running);
    }
    // While held, no verdict arrives: the runner is parked on the hold, not racing.
    assert!(
        tokio::time::timeout(Duration::from_millis(50), receiver.recv())
            .await
            .is_err(),
        "no verdict while held"
    );
    fake.release();
    for _ in 0..5 {
        let progress = bounded("verdict", receiver.recv())
            .await
            .expect("a verdict");
        assert_eq!(progress.status, TestStatus::Pass, "{progress:?}");
    }
    bounded("run", run)
        .await
        .expect("no panic")
        .expect("the run succeeds");
}

#[tokio::test]
async fn runner_failure_is_returned_before_any_progress() {
    let fake = FakeTestRunner::new();
    fake.push_error(AdapterError::unavailable("runner offline"));
    let plan = validated_rule_plan(BASE_URL);
    let (sender, mut receiver) = mpsc::channel(16);
    let error = fake
        .run(&RunId::new("run-10"), &plan, sender)
        .await
        .expect_err("injected failure");
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert!(receiver.recv().await.is_none(), "no progress was reported");
}

#[tokio::test]
async fn demo_model_follows_a_shared_bug_flag() {
    let flag = Arc::new(AtomicBool::new(false));
    let fake = FakeTestRunner::with_model(Arc::new(DemoModel::with_bug_flag(Arc::clone(&flag))));
    let plan = validated_rule_plan(BASE_URL);
    let reports = run_and_collect(&fake, &RunId::new("run-11"), &plan).await;
    assert_eq!(
        reports["t1-checkout-valid"].last().map(|p| p.status),
        Some(TestStatus::Pass)
    );
    flag.store(true, Ordering::SeqCst);
    let reports = run_and_collect(&fake, &RunId::new("run-12"), &plan).await;
    let checkout = reports["t1-checkout-valid"].last().expect("a verdict");
    assert_eq!(checkout.status, TestStatus::Fail);
    assert!(
        checkout
            .details
            .as_deref()
            .is_some_and(|d| d.contains("500")),
        "{checkout:?}"
    );
    let invalid = reports["t2-checkout-invalid"].last().expect("a verdict");
    assert_eq!(
        invalid.status,
        TestStatus::Fail,
        "like the demo service, the bug fails every checkout: {invalid:?}"
    );
    flag.store(false, Ordering::SeqCst);
    let reports = run_and_collect(&fake, &RunId::new("run-13"), &plan).await;
    assert_eq!(
        reports["t2-checkout-invalid"].last().map(|p| p.status),
        Some(TestStatus::Pass),
        "the negative test gets its 422 again"
    );
}

#[tokio::test]
async fn copilot_serves_scripted_replies_then_grounded_answers() {
    let fake = FakeCopilot::new();
    let scripted = CopilotReply {
        answer: "scripted".to_owned(),
        citations: vec![Link {
            label: "x".to_owned(),
            url: "http://x.invalid".to_owned(),
        }],
        claim: fixloop_adapters::copilot_safety::Claim::None,
    };
    fake.push_reply(scripted.clone());
    fake.push_error(AdapterError::rate_limited(None));
    let (_, state) = states().remove(2);
    assert_eq!(
        fake.answer("q1", &state, &NoLookup)
            .await
            .expect("scripted"),
        scripted
    );
    assert!(matches!(
        fake.answer("q2", &state, &NoLookup)
            .await
            .expect_err("queued error")
            .kind(),
        ErrorKind::RateLimited { retry_after: None }
    ));
    let grounded = fake
        .answer("What caused this?", &state, &NoLookup)
        .await
        .expect("grounded");
    assert!(
        grounded.answer.contains("POST /checkout"),
        "{}",
        grounded.answer
    );
    let questions: Vec<String> = fake
        .calls()
        .into_iter()
        .map(|(question, _)| question)
        .collect();
    assert_eq!(questions, ["q1", "q2", "What caused this?"]);
}

#[tokio::test]
async fn signal_source_cycles_through_its_readings_one_per_read_after_the_queue() {
    let fake = FakeSignalSource::new();
    fake.set_cycle(vec![
        erroring_reading(),
        erroring_reading(),
        healthy_reading(),
    ]);
    fake.push_reading(healthy_reading());
    let mut rates = Vec::new();
    for _ in 0..7 {
        let reading = bounded("read", fake.read(Duration::from_secs(1)))
            .await
            .expect("a reading");
        rates.push(reading.error_rate);
    }
    let (hot, ok) = (erroring_reading().error_rate, healthy_reading().error_rate);
    // The queued reading first, then the cycle, over and over.
    assert_eq!(rates, [ok, hot, hot, ok, hot, hot, ok]);
    fake.set_reading(erroring_reading());
    for _ in 0..2 {
        let reading = bounded("read", fake.read(Duration::from_secs(1)))
            .await
            .expect("a reading");
        assert_eq!(
            reading,
            erroring_reading(),
            "one reading is a sticky reading"
        );
    }
    fake.set_cycle(Vec::new());
    let reading = bounded("read", fake.read(Duration::from_secs(1)))
        .await
        .expect("a reading");
    assert_eq!(
        reading,
        healthy_reading(),
        "an empty cycle reads as healthy"
    );
}

#[tokio::test]
async fn planner_defects_spoil_the_rule_plan_so_that_the_validator_rejects_it() {
    let fake = FakePlanner::new();
    fake.push_defect(PlanDefect::OffAllowlist);
    fake.push_defect(PlanDefect::TooFewTests);
    let policy = crate::shop::shop_spec(BASE_URL).policy;
    let request = plan_request(BASE_URL);
    let off = bounded("propose", fake.propose(&request))
        .await
        .expect("a plan");
    assert_eq!(off.items.len(), 5);
    assert!(
        off.items[0]
            .target
            .url
            .starts_with("http://not-allowlisted.invalid/"),
        "{off:?}"
    );
    let violations = fixloop_core::validate(off, &policy).expect_err("off the allowlist");
    assert!(
        violations.iter().any(|v| v.path.starts_with("/items/0/")),
        "{violations:?}"
    );
    let short = bounded("propose", fake.propose(&request))
        .await
        .expect("a plan");
    assert_eq!(short.items.len(), 3);
    assert!(fixloop_core::validate(short, &policy).is_err());
    let valid = bounded("propose", fake.propose(&request))
        .await
        .expect("the rule plan");
    assert!(
        fixloop_core::validate(valid, &policy).is_ok(),
        "then the rule plan"
    );
}

#[tokio::test]
async fn runner_forgets_forced_verdicts_when_cleared() {
    let fake = FakeTestRunner::new();
    fake.set_result("t3-health", TestStatus::Fail, Some("forced"));
    fake.clear_results();
    let plan = validated_rule_plan(BASE_URL);
    let reports = bounded("run", run_and_collect(&fake, &RunId::new("run-9"), &plan)).await;
    let health = reports["t3-health"].last().expect("a verdict");
    assert_eq!(health.status, TestStatus::Pass, "{health:?}");
}
