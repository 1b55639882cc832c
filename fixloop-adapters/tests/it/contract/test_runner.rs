//! Contract of [`TestRunner`]: every test is reported RUNNING then exactly one verdict, a failure's details
//! explain it, and an unreachable target fails every test instead of hanging.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use fixloop_adapters::{TestProgress, TestRunner};
use fixloop_contract::TestStatus;
use fixloop_core::{PlanId, RunId, ValidatedPlan, rule_plan, validate};
use tokio::sync::mpsc;

use super::{bounded, fixed_now, plan_request};

/// What the service under test does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ServiceBehaviour {
    /// Every endpoint of the rule plan answers as the plan expects.
    Healthy,
    /// `POST /checkout` with a valid order answers 500; everything else is healthy.
    CheckoutBroken,
    /// Nothing listens at the base URL.
    Unreachable,
}

/// Puts the service behind a runner into a situation.
#[async_trait]
pub(crate) trait RunnerScenario: Send + Sync {
    /// Arranges `behaviour` and returns the base URL the plan must target.
    async fn arrange(&self, behaviour: ServiceBehaviour) -> String;
}

/// The rule plan against `base_url`, validated with the seed policy.
pub(crate) fn validated_rule_plan(base_url: &str) -> ValidatedPlan {
    let plan = rule_plan(
        &plan_request(base_url).context,
        PlanId::new("plan-0001"),
        fixed_now(),
    );
    validate(plan, &crate::shop::shop_spec(base_url).policy)
        .unwrap_or_else(|violations| panic!("the rule plan must validate: {violations:?}"))
}

/// Runs `plan` and returns the progress reports per test, in order, once the runner returned.
pub(crate) async fn run_and_collect(
    runner: &dyn TestRunner,
    run_id: &RunId,
    plan: &ValidatedPlan,
) -> BTreeMap<String, Vec<TestProgress>> {
    let (sender, mut receiver) = mpsc::channel::<TestProgress>(64);
    let collect = async {
        let mut reports: BTreeMap<String, Vec<TestProgress>> = BTreeMap::new();
        while let Some(progress) = receiver.recv().await {
            reports
                .entry(progress.test_id.clone())
                .or_default()
                .push(progress);
        }
        reports
    };
    let (result, reports) = bounded("run", async {
        tokio::join!(runner.run(run_id, plan, sender), collect)
    })
    .await;
    if let Err(error) = result {
        panic!("the run failed: {}", error.detail());
    }
    reports
}

/// Runs every case, each on a fresh `(runner, scenario)` from `make`.
pub(crate) async fn check_all<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = (Arc<dyn TestRunner>, Box<dyn RunnerScenario>)>,
{
    let (runner, scenario) = make().await;
    every_test_is_reported_running_then_one_verdict(runner, scenario.as_ref()).await;
    let (runner, scenario) = make().await;
    broken_checkout_fails_with_details_that_explain(runner, scenario.as_ref()).await;
    let (runner, scenario) = make().await;
    unreachable_target_fails_every_test_without_hanging(runner, scenario.as_ref()).await;
}

/// Checks the RUNNING-then-one-verdict shape for every test of the plan, and returns the verdicts.
fn verdicts(
    plan: &ValidatedPlan,
    reports: &BTreeMap<String, Vec<TestProgress>>,
) -> BTreeMap<String, (TestStatus, Option<String>)> {
    let mut verdicts = BTreeMap::new();
    assert_eq!(reports.len(), plan.plan().items.len(), "{reports:?}");
    for (item, _) in plan.tests() {
        let reports = reports
            .get(&item.test_id)
            .unwrap_or_else(|| panic!("no report for {}", item.test_id));
        assert_eq!(
            reports.first().map(|report| report.status),
            Some(TestStatus::Running),
            "{reports:?}"
        );
        let terminal: Vec<_> = reports
            .iter()
            .filter(|report| matches!(report.status, TestStatus::Pass | TestStatus::Fail))
            .collect();
        assert_eq!(terminal.len(), 1, "exactly one verdict: {reports:?}");
        let last = reports.last().expect("reports are not empty");
        assert!(
            matches!(last.status, TestStatus::Pass | TestStatus::Fail),
            "the verdict comes last: {reports:?}"
        );
        verdicts.insert(item.test_id.clone(), (last.status, last.details.clone()));
    }
    verdicts
}

/// A healthy service: every test RUNNING then PASS.
pub(crate) async fn every_test_is_reported_running_then_one_verdict(
    runner: Arc<dyn TestRunner>,
    scenario: &dyn RunnerScenario,
) {
    let base_url = scenario.arrange(ServiceBehaviour::Healthy).await;
    let plan = validated_rule_plan(&base_url);
    let reports = run_and_collect(runner.as_ref(), &RunId::new("run-0001"), &plan).await;
    for (test_id, (status, details)) in verdicts(&plan, &reports) {
        assert_eq!(status, TestStatus::Pass, "{test_id}: {details:?}");
    }
}

/// A broken checkout: the valid-checkout test fails with details, the health check passes.
pub(crate) async fn broken_checkout_fails_with_details_that_explain(
    runner: Arc<dyn TestRunner>,
    scenario: &dyn RunnerScenario,
) {
    let base_url = scenario.arrange(ServiceBehaviour::CheckoutBroken).await;
    let plan = validated_rule_plan(&base_url);
    let reports = run_and_collect(runner.as_ref(), &RunId::new("run-0002"), &plan).await;
    let verdicts = verdicts(&plan, &reports);
    let (status, details) = &verdicts["t1-checkout-valid"];
    assert_eq!(*status, TestStatus::Fail, "{details:?}");
    let details = details.as_deref().unwrap_or_default();
    assert!(
        details.contains("500"),
        "the details name the status: {details:?}"
    );
    assert_eq!(verdicts["t3-health"].0, TestStatus::Pass, "{verdicts:?}");
}

/// Nothing listening: every test FAILs with details, and the run returns.
pub(crate) async fn unreachable_target_fails_every_test_without_hanging(
    runner: Arc<dyn TestRunner>,
    scenario: &dyn RunnerScenario,
) {
    let base_url = scenario.arrange(ServiceBehaviour::Unreachable).await;
    let plan = validated_rule_plan(&base_url);
    let reports = run_and_collect(runner.as_ref(), &RunId::new("run-0003"), &plan).await;
    for (test_id, (status, details)) in verdicts(&plan, &reports) {
        assert_eq!(status, TestStatus::Fail, "{test_id}");
        assert!(
            details.is_some_and(|details| !details.trim().is_empty()),
            "{test_id}: a failure explains itself"
        );
    }
}
