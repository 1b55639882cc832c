//! Contract of [`Executor`]: a declared action completes or fails as its target says, within its deadline and
//! reaching the target once; an undeclared action or an argument that does not fit is refused before any I/O (by
//! `execute` and by `describe` alike); a description names the action and never shows a secret; a slow target is
//! a timeout at the request's deadline; a chatty target's output is capped and redacted; an unreachable target is
//! unavailable.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fixloop_adapters::{ActionRequest, ActionStatus, ErrorKind, Executor};
use tokio::time::Instant;

use super::bounded;

/// The deadline of every request of the suite but the slow one.
pub(crate) const DEADLINE: Duration = Duration::from_secs(10);

/// The deadline of the slow case: far below the slow target's delay.
pub(crate) const SHORT_DEADLINE: Duration = Duration::from_millis(400);

/// What the target behind the executor does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// Performs the action and says so.
    Completes,
    /// Answers that the action failed (non-2xx, non-zero exit status, no such container).
    Fails,
    /// Answers much later than [`SHORT_DEADLINE`].
    Slow,
    /// Answers with far more output than the executor keeps, the scenario's secret (if any) first.
    Chatty,
    /// Cannot be reached.
    Unreachable,
}

/// Puts an executor's target into a situation, and says what reached it.
#[async_trait]
pub(crate) trait ExecutorScenario: Send + Sync {
    /// Arranges for the next request to meet `target`.
    async fn arrange(&self, target: Target);
    /// A valid request of a declared action (with its arguments), for the arranged target.
    fn request(&self) -> ActionRequest;
    /// How many times the target has been reached so far (requests at the stub, commands run).
    async fn attempts(&self) -> usize;
    /// The executor's output limit, in bytes.
    fn output_limit(&self) -> usize;
    /// A secret the executor holds (a header, an environment variable), if any.
    fn secret(&self) -> Option<String>;
}

/// Runs every case, each on a fresh `(executor, scenario)` from `make`.
pub(crate) async fn check_all<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = (Arc<dyn Executor>, Box<dyn ExecutorScenario>)>,
{
    let (executor, scenario) = make().await;
    declared_action_completes_once_within_its_deadline(executor, scenario.as_ref()).await;
    let (executor, scenario) = make().await;
    target_that_reports_failure_is_a_failed_outcome(executor, scenario.as_ref()).await;
    let (executor, scenario) = make().await;
    undeclared_action_is_refused_before_any_io(executor, scenario.as_ref()).await;
    let (executor, scenario) = make().await;
    arguments_that_do_not_fit_are_refused_before_any_io(executor, scenario.as_ref()).await;
    let (executor, scenario) = make().await;
    description_names_the_action_and_hides_secrets(executor, scenario.as_ref()).await;
    let (executor, scenario) = make().await;
    slow_target_is_a_timeout_at_the_deadline(executor, scenario.as_ref()).await;
    let (executor, scenario) = make().await;
    chatty_output_is_capped_and_redacted(executor, scenario.as_ref()).await;
    let (executor, scenario) = make().await;
    unreachable_target_is_unavailable(executor, scenario.as_ref()).await;
}

/// A declared action completes: a detail, a duration within the deadline, the target reached exactly once, and
/// the action among the executor's ids.
pub(crate) async fn declared_action_completes_once_within_its_deadline(
    executor: Arc<dyn Executor>,
    scenario: &dyn ExecutorScenario,
) {
    scenario.arrange(Target::Completes).await;
    let request = scenario.request();
    assert!(
        executor.action_ids().contains(&request.action_id),
        "{:?} not in {:?}",
        request.action_id,
        executor.action_ids()
    );
    let outcome = bounded("execute", executor.execute(&request))
        .await
        .unwrap_or_else(|error| panic!("the action failed to run: {}", error.detail()));
    assert_eq!(outcome.status, ActionStatus::Completed, "{outcome:?}");
    assert!(!outcome.detail.trim().is_empty(), "{outcome:?}");
    assert!(outcome.duration <= request.deadline, "{outcome:?}");
    assert_eq!(scenario.attempts().await, 1, "the target is reached once");
}

/// A target that answers that the action failed gives a failed outcome with a detail, not an error.
pub(crate) async fn target_that_reports_failure_is_a_failed_outcome(
    executor: Arc<dyn Executor>,
    scenario: &dyn ExecutorScenario,
) {
    scenario.arrange(Target::Fails).await;
    let outcome = bounded("execute", executor.execute(&scenario.request()))
        .await
        .unwrap_or_else(|error| panic!("the action failed to run: {}", error.detail()));
    assert_eq!(outcome.status, ActionStatus::Failed, "{outcome:?}");
    assert!(!outcome.detail.trim().is_empty(), "{outcome:?}");
}

/// An action the executor does not declare is refused by `describe` and `execute`, and nothing is reached.
pub(crate) async fn undeclared_action_is_refused_before_any_io(
    executor: Arc<dyn Executor>,
    scenario: &dyn ExecutorScenario,
) {
    scenario.arrange(Target::Completes).await;
    let request = ActionRequest {
        action_id: "not-declared-anywhere".to_owned(),
        ..scenario.request()
    };
    let error = executor
        .describe(&request)
        .expect_err("describe must refuse");
    assert_eq!(error.kind(), ErrorKind::Refused, "{}", error.detail());
    let error = bounded("execute", executor.execute(&request))
        .await
        .expect_err("execute must refuse");
    assert_eq!(error.kind(), ErrorKind::Refused, "{}", error.detail());
    assert_eq!(
        scenario.attempts().await,
        0,
        "a refused action reaches nothing"
    );
}

/// An argument the action does not declare, or a declared one left out, is refused before any I/O.
pub(crate) async fn arguments_that_do_not_fit_are_refused_before_any_io(
    executor: Arc<dyn Executor>,
    scenario: &dyn ExecutorScenario,
) {
    scenario.arrange(Target::Completes).await;
    let valid = scenario.request();
    let extra = valid.clone().with_argument("not-declared", "x");
    let error = bounded("execute", executor.execute(&extra))
        .await
        .expect_err("an unexpected argument must be refused");
    assert_eq!(error.kind(), ErrorKind::Refused, "{}", error.detail());
    if let Some(name) = valid.arguments.keys().next() {
        let mut missing = valid.clone();
        missing.arguments.remove(&name.clone());
        let error = executor
            .describe(&missing)
            .expect_err("a missing argument must be refused");
        assert_eq!(error.kind(), ErrorKind::Refused, "{}", error.detail());
        let error = bounded("execute", executor.execute(&missing))
            .await
            .expect_err("a missing argument must be refused");
        assert_eq!(error.kind(), ErrorKind::Refused, "{}", error.detail());
    }
    assert_eq!(
        scenario.attempts().await,
        0,
        "a refused action reaches nothing"
    );
}

/// `describe` of a valid request names the action, shows its arguments' values, never a secret, and reaches
/// nothing.
pub(crate) async fn description_names_the_action_and_hides_secrets(
    executor: Arc<dyn Executor>,
    scenario: &dyn ExecutorScenario,
) {
    scenario.arrange(Target::Completes).await;
    let request = scenario.request();
    let description = executor
        .describe(&request)
        .unwrap_or_else(|error| panic!("describe failed: {}", error.detail()));
    assert_eq!(description.action_id, request.action_id);
    assert!(!description.summary.trim().is_empty());
    for value in request.arguments.values() {
        assert!(
            description.summary.contains(value.as_str()),
            "{value:?} not in {:?}",
            description.summary
        );
    }
    if let Some(secret) = scenario.secret() {
        assert!(!description.summary.contains(&secret), "{description:?}");
        assert!(!format!("{executor:?}").contains(&secret), "{executor:?}");
    }
    assert_eq!(scenario.attempts().await, 0, "describe reaches nothing");
}

/// A target slower than the request's deadline is a timeout, returned at about the deadline.
pub(crate) async fn slow_target_is_a_timeout_at_the_deadline(
    executor: Arc<dyn Executor>,
    scenario: &dyn ExecutorScenario,
) {
    scenario.arrange(Target::Slow).await;
    let request = ActionRequest {
        deadline: SHORT_DEADLINE,
        ..scenario.request()
    };
    let started = Instant::now();
    let error = bounded("execute", executor.execute(&request))
        .await
        .expect_err("a slow target must time out");
    assert_eq!(error.kind(), ErrorKind::Timeout, "{}", error.detail());
    assert!(
        started.elapsed() < SHORT_DEADLINE + Duration::from_secs(3),
        "returned after {:?}",
        started.elapsed()
    );
}

/// Output longer than the limit is cut to it and marked truncated; the secret never shows.
pub(crate) async fn chatty_output_is_capped_and_redacted(
    executor: Arc<dyn Executor>,
    scenario: &dyn ExecutorScenario,
) {
    scenario.arrange(Target::Chatty).await;
    let outcome = bounded("execute", executor.execute(&scenario.request()))
        .await
        .unwrap_or_else(|error| panic!("the action failed to run: {}", error.detail()));
    let limit = scenario.output_limit();
    for captured in [&outcome.output, &outcome.error_output] {
        assert!(
            captured.text.len() <= limit,
            "{} > {limit}",
            captured.text.len()
        );
    }
    assert!(outcome.output.truncated, "{:?}", outcome.output.total_bytes);
    assert!(outcome.output.total_bytes > limit as u64);
    if let Some(secret) = scenario.secret() {
        assert!(!outcome.output.text.contains(&secret), "the secret leaked");
        assert!(
            !outcome.error_output.text.contains(&secret),
            "the secret leaked"
        );
    }
}

/// A target nobody answers for is unavailable.
pub(crate) async fn unreachable_target_is_unavailable(
    executor: Arc<dyn Executor>,
    scenario: &dyn ExecutorScenario,
) {
    scenario.arrange(Target::Unreachable).await;
    let error = bounded("execute", executor.execute(&scenario.request()))
        .await
        .expect_err("an unreachable target must fail");
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{}", error.detail());
    if let Some(secret) = scenario.secret() {
        assert!(!error.detail().contains(&secret), "{}", error.detail());
    }
}
