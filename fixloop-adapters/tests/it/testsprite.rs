//! The TestSprite runner over MCP against a fake TestSprite written with rmcp (`mcp_fakes::FakeTestSprite`, answering
//! in the shapes `testsprite::assumed` expects), over Streamable HTTP (in-process) and stdio (a child process): the
//! per-test progress (from progress notifications, and from polling the status tool), the full run, failures, and
//! the shared test-runner contract.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fixloop_adapters::testsprite::assumed::{RUN_TOOL, STATUS_TOOL};
use fixloop_adapters::testsprite::{
    PollBackoff, TestSpriteConfig, TestSpriteRunner, TestSpriteTransport,
};
use fixloop_adapters::{AdapterError, ErrorKind, ProgressModel, TestProgress, TestRunner};
use fixloop_contract::TestStatus;
use fixloop_core::{RunId, ValidatedPlan};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::contract::test_runner::{self, RunnerScenario, ServiceBehaviour, validated_rule_plan};
use crate::mcp_fakes::{
    FakeTestSprite, FakeTools, HttpFake, TESTSPRITE_KEY, TestSpriteBehaviour, stdio_command,
};

const BASE_URL: &str = "http://127.0.0.1:8080";
/// Every await of these tests is bounded by this.
const BOUND: Duration = Duration::from_secs(20);

/// Fast polls: the fake answers per poll, not per unit of time.
fn fast_polls() -> PollBackoff {
    PollBackoff {
        initial: Duration::from_millis(5),
        factor: 2.0,
        cap: Duration::from_millis(20),
    }
}

fn http_config(url: &str) -> TestSpriteConfig {
    TestSpriteConfig {
        request_timeout: Duration::from_secs(10),
        run_timeout: Duration::from_secs(10),
        poll: fast_polls(),
        ..TestSpriteConfig::http(TESTSPRITE_KEY, url, "/work/demo")
    }
}

fn testsprite_fake(fake: &FakeTestSprite) -> HttpFake {
    let fake = fake.clone();
    HttpFake::start(
        move |_| fake.clone(),
        vec![("authorization", format!("Bearer {TESTSPRITE_KEY}"))],
    )
}

fn runner(config: TestSpriteConfig) -> TestSpriteRunner {
    TestSpriteRunner::new(config).expect("a runner")
}

/// Runs the plan and collects every report once the run returned.
async fn run(
    runner: &TestSpriteRunner,
    plan: &ValidatedPlan,
) -> (Result<(), AdapterError>, Vec<TestProgress>) {
    let (sender, mut receiver) = mpsc::channel(64);
    let result = tokio::time::timeout(BOUND, runner.run(&RunId::new("run-1"), plan, sender))
        .await
        .expect("the run is bounded");
    let mut reports = Vec::new();
    while let Ok(progress) = receiver.try_recv() {
        reports.push(progress);
    }
    (result, reports)
}

async fn next(receiver: &mut mpsc::Receiver<TestProgress>) -> TestProgress {
    tokio::time::timeout(BOUND, receiver.recv())
        .await
        .expect("a report comes")
        .expect("the run is not over")
}

fn verdicts(reports: &[TestProgress]) -> Vec<(String, TestStatus)> {
    reports
        .iter()
        .filter(|report| report.status != TestStatus::Running)
        .map(|report| (report.test_id.clone(), report.status))
        .collect()
}

fn plan_ids(plan: &ValidatedPlan) -> Vec<String> {
    plan.tests().map(|(item, _)| item.test_id.clone()).collect()
}

fn checkout_fails(id: &str) -> Option<&'static str> {
    id.contains("checkout-valid")
        .then_some("POST /checkout answered 500")
}

#[tokio::test]
async fn http_run_reports_each_verdict_as_its_progress_notification_arrives() {
    let fake = FakeTestSprite::new(TestSpriteBehaviour::Progress);
    *fake.state.fails.lock().unwrap() = checkout_fails;
    let server = testsprite_fake(&fake);
    let runner = runner(http_config(&server.url));
    let plan = validated_rule_plan(BASE_URL);
    let ids = plan_ids(&plan);
    let (sender, mut receiver) = mpsc::channel(64);
    let run_id = RunId::new("run-1");
    let running = runner.run(&run_id, &plan, sender);
    let observe = async {
        for id in &ids {
            let report = next(&mut receiver).await;
            assert_eq!((&report.test_id, report.status), (id, TestStatus::Running));
        }
        // The fake holds the run until the test saw each verdict: every verdict comes while the run goes on.
        for id in &ids {
            let report = next(&mut receiver).await;
            assert_eq!(&report.test_id, id, "{report:?}");
            let expected = if checkout_fails(id).is_some() {
                (TestStatus::Fail, "POST /checkout answered 500")
            } else {
                (TestStatus::Pass, "passed on TestSprite")
            };
            assert_eq!(
                (report.status, report.details.as_deref()),
                (expected.0, Some(expected.1))
            );
            fake.state.gate.add_permits(1);
        }
    };
    let (result, ()) = tokio::time::timeout(BOUND, async { tokio::join!(running, observe) })
        .await
        .expect("bounded");
    result.expect("the run succeeds");
    assert!(
        receiver.try_recv().is_err(),
        "one verdict per test, no more"
    );
}

#[tokio::test]
async fn http_run_polls_the_status_tool_and_reports_verdicts_in_the_order_they_arrive() {
    let fake = FakeTestSprite::new(TestSpriteBehaviour::Polling);
    *fake.state.fails.lock().unwrap() = checkout_fails;
    let server = testsprite_fake(&fake);
    let plan = validated_rule_plan(BASE_URL);
    let ids = plan_ids(&plan);
    let (result, reports) = run(&runner(http_config(&server.url)), &plan).await;
    result.expect("the run succeeds");

    let running: Vec<&str> = reports[..ids.len()]
        .iter()
        .map(|r| r.test_id.as_str())
        .collect();
    assert_eq!(running, ids, "RUNNING comes first, for every test");
    assert!(
        reports[..ids.len()]
            .iter()
            .all(|r| r.status == TestStatus::Running)
    );
    // The fake reveals the tests in reverse plan order, one per poll, and answers the run only when all are out:
    // the verdicts arrive in the fake's order, from the polls.
    let expected: Vec<(String, TestStatus)> = ids
        .iter()
        .rev()
        .map(|id| {
            let status = if checkout_fails(id).is_some() {
                TestStatus::Fail
            } else {
                TestStatus::Pass
            };
            (id.clone(), status)
        })
        .collect();
    assert_eq!(verdicts(&reports), expected);

    let calls = fake.state.calls.lock().unwrap().clone();
    assert_eq!(calls[0].0, RUN_TOOL);
    let arguments = &calls[0].1;
    assert_eq!(arguments["projectPath"], "/work/demo");
    assert_eq!(arguments["projectName"], "demo");
    assert_eq!(arguments["testIds"], json!(ids));
    let instruction = arguments["additionalInstruction"].as_str().unwrap();
    assert!(
        instruction.contains(&format!("{BASE_URL}/checkout")),
        "{instruction}"
    );
    assert!(instruction.contains("run-1"), "{instruction}");
    let polls: Vec<&Value> = calls
        .iter()
        .filter(|(tool, _)| tool == STATUS_TOOL)
        .map(|(_, a)| a)
        .collect();
    assert!(polls.len() >= ids.len(), "{polls:?}");
    assert_eq!(polls[0]["runId"], "run-1");
    let authorizations = server.header_values("authorization");
    assert!(
        authorizations
            .iter()
            .all(|value| *value == format!("Bearer {TESTSPRITE_KEY}"))
    );
}

#[tokio::test]
async fn stdio_run_passes_the_key_to_the_child_and_reports_polled_verdicts() {
    let (command, args) = stdio_command("testsprite");
    let config = TestSpriteConfig {
        transport: TestSpriteTransport::Stdio { command, args },
        ..http_config("unused")
    };
    let plan = validated_rule_plan(BASE_URL);
    let (result, reports) = run(&runner(config.clone()), &plan).await;
    result.expect("the child knows the key (API_KEY) and runs the plan");
    let expected: Vec<(String, TestStatus)> = plan_ids(&plan)
        .into_iter()
        .rev()
        .map(|id| (id, TestStatus::Pass))
        .collect();
    assert_eq!(verdicts(&reports), expected);

    // A wrong key: the fake answers isError, which fails the run.
    let wrong = TestSpriteConfig {
        api_key: "sk-user-wrong".into(),
        ..config
    };
    let (result, _) = run(&runner(wrong), &plan).await;
    let error = result.expect_err("the key is refused");
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert!(error.to_string().contains("API key invalid"), "{error}");
}

#[tokio::test]
async fn a_test_without_a_result_fails_and_is_never_passed_by_default() {
    let fake = FakeTestSprite::new(TestSpriteBehaviour::Silent);
    let server = testsprite_fake(&fake);
    let plan = validated_rule_plan(BASE_URL);
    let (result, reports) = run(&runner(http_config(&server.url)), &plan).await;
    result.expect("the run itself succeeds");
    let verdicts: Vec<&TestProgress> = reports
        .iter()
        .filter(|r| r.status != TestStatus::Running)
        .collect();
    assert_eq!(verdicts.len(), plan_ids(&plan).len());
    for report in verdicts {
        assert_eq!(report.status, TestStatus::Fail, "never PASS by default");
        assert!(report.details.as_deref().unwrap().contains("no result"));
    }
}

#[tokio::test]
async fn run_failures_are_classified_and_bounded() {
    let plan = validated_rule_plan(BASE_URL);

    let fake = FakeTestSprite::new(TestSpriteBehaviour::Failing);
    let server = testsprite_fake(&fake);
    let (result, _) = run(&runner(http_config(&server.url)), &plan).await;
    assert_eq!(result.unwrap_err().kind(), ErrorKind::Unavailable);

    // A run that never answers ends at `run_timeout`, with every test still RUNNING and no verdict.
    fake.state.set_behaviour(TestSpriteBehaviour::Hanging);
    let config = TestSpriteConfig {
        run_timeout: Duration::from_millis(300),
        ..http_config(&server.url)
    };
    let (result, reports) = run(&runner(config), &plan).await;
    assert_eq!(result.unwrap_err().kind(), ErrorKind::Timeout);
    assert!(!reports.is_empty());
    assert!(
        reports.iter().all(|r| r.status == TestStatus::Running),
        "{reports:?}"
    );

    // Refused key at the handshake: no report at all.
    let config = TestSpriteConfig {
        api_key: "sk-user-wrong".into(),
        ..http_config(&server.url)
    };
    let (result, reports) = run(&runner(config), &plan).await;
    assert_eq!(result.unwrap_err().kind(), ErrorKind::Unauthorized);
    assert!(reports.is_empty());

    // A server without TestSprite's run tool.
    let other = HttpFake::start(|killer| FakeTools::new(Some(killer)), Vec::new());
    let (result, reports) = run(&runner(http_config(&other.url)), &plan).await;
    let error = result.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidResponse);
    assert!(error.to_string().contains(RUN_TOOL), "{error}");
    assert!(reports.is_empty());
}

#[test]
fn expectations_are_per_test_and_cover_the_handshake_and_the_run() {
    let config = TestSpriteConfig::stdio(TESTSPRITE_KEY, "/work/demo");
    let expectations = runner(config.clone()).expectations();
    assert_eq!(expectations.progress, ProgressModel::PerTest);
    assert!(expectations.max_run_duration >= config.request_timeout + config.run_timeout);
    assert!(expectations.max_run_duration <= 3 * config.request_timeout + config.run_timeout);
}

#[test]
fn defaults_launch_the_documented_package_and_debug_hides_the_key() {
    let config = TestSpriteConfig::stdio(TESTSPRITE_KEY, "/work/demo/");
    assert_eq!(
        config.transport,
        TestSpriteTransport::Stdio {
            command: "npx".to_owned(),
            args: vec![
                "-y".to_owned(),
                "@testsprite/testsprite-mcp@latest".to_owned()
            ],
        }
    );
    assert_eq!(config.project_name, "demo");
    assert_eq!(config.poll, PollBackoff::default());
    let runner = runner(config.clone());
    for debug in [format!("{config:?}"), format!("{runner:?}")] {
        assert!(!debug.contains(TESTSPRITE_KEY), "{debug}");
    }
}

#[test]
fn poll_back_off_grows_by_its_factor_up_to_its_cap() {
    let backoff = PollBackoff {
        initial: Duration::from_secs(5),
        factor: 2.0,
        cap: Duration::from_secs(30),
    };
    let mut interval = backoff.initial;
    let mut seen = vec![interval];
    for _ in 0..4 {
        interval = backoff.next(interval);
        seen.push(interval);
    }
    assert_eq!(seen, [5, 10, 20, 30, 30].map(Duration::from_secs));
    let flat = PollBackoff {
        factor: 0.5,
        ..backoff
    };
    assert_eq!(flat.next(Duration::from_secs(5)), Duration::from_secs(5));
}

/// The fake TestSprite standing in for TestSprite testing a service that behaves as arranged.
struct McpScenario {
    fake: FakeTestSprite,
    _server: HttpFake,
}

#[async_trait]
impl RunnerScenario for McpScenario {
    async fn arrange(&self, behaviour: ServiceBehaviour) -> String {
        let fails: fn(&str) -> Option<&'static str> = match behaviour {
            ServiceBehaviour::Healthy => |_| None,
            ServiceBehaviour::CheckoutBroken => |id| {
                id.contains("checkout-valid")
                    .then_some("POST /checkout answered 500, expected 200")
            },
            ServiceBehaviour::Unreachable => |_| Some("connection refused by the target"),
        };
        *self.fake.state.fails.lock().unwrap() = fails;
        BASE_URL.to_owned()
    }
}

#[tokio::test]
async fn testsprite_runner_meets_the_test_runner_contract() {
    test_runner::check_all(|| async {
        let fake = FakeTestSprite::new(TestSpriteBehaviour::Polling);
        let server = testsprite_fake(&fake);
        let runner: Arc<dyn TestRunner> = Arc::new(runner(http_config(&server.url)));
        (
            runner,
            Box::new(McpScenario {
                fake,
                _server: server,
            }) as Box<dyn RunnerScenario>,
        )
    })
    .await;
}
