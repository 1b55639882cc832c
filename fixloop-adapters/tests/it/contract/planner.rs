//! Contract of [`Planner`]: a valid request gives a plan of five items that the core's validator accepts under
//! the seed policy (on the first attempt and on a re-request), and each failure has the right [`ErrorKind`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fixloop_adapters::{ErrorKind, Planner};
use fixloop_core::{Violation, validate};

use super::{bounded, plan_request};

/// What the planner (or the vendor behind it) does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PlannerBehaviour {
    /// Answers a valid plan.
    Valid,
    /// Rejects the credentials.
    Unauthorized,
    /// Asks to slow down, with this retry-after.
    RateLimited(Option<Duration>),
    /// Answers something that is not a plan.
    Malformed,
    /// Fails (5xx).
    Down,
    /// Answers later than the adapter's timeout.
    Slow,
}

/// Puts a planner into a situation.
#[async_trait]
pub(crate) trait PlannerScenario: Send + Sync {
    /// Arranges for the next `propose` to meet `behaviour`; returns `false` when the implementation cannot be in
    /// that situation (the rule planner never fails), and the case is skipped.
    async fn arrange(&self, behaviour: PlannerBehaviour) -> bool;

    /// The service's base URL the plan must target.
    fn base_url(&self) -> String {
        "http://127.0.0.1:8080".to_owned()
    }
}

/// Runs every case, each on a fresh `(planner, scenario)` from `make`.
pub(crate) async fn check_all<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = (Arc<dyn Planner>, Box<dyn PlannerScenario>)>,
{
    let (planner, scenario) = make().await;
    valid_request_gives_five_items_the_validator_accepts(planner, scenario.as_ref()).await;
    for (behaviour, expected) in [
        (PlannerBehaviour::Unauthorized, ErrorKind::Unauthorized),
        (
            PlannerBehaviour::RateLimited(Some(Duration::from_secs(7))),
            ErrorKind::RateLimited {
                retry_after: Some(Duration::from_secs(7)),
            },
        ),
        (
            PlannerBehaviour::RateLimited(None),
            ErrorKind::RateLimited { retry_after: None },
        ),
        (PlannerBehaviour::Malformed, ErrorKind::InvalidResponse),
        (PlannerBehaviour::Down, ErrorKind::Unavailable),
        (PlannerBehaviour::Slow, ErrorKind::Timeout),
    ] {
        let (planner, scenario) = make().await;
        failure_has_the_right_kind(planner, scenario.as_ref(), behaviour, expected).await;
    }
}

/// A valid request gives a five-item plan with the request's id that `validate` accepts, on attempt 1 and on a
/// re-request carrying violations.
pub(crate) async fn valid_request_gives_five_items_the_validator_accepts(
    planner: Arc<dyn Planner>,
    scenario: &dyn PlannerScenario,
) {
    assert!(scenario.arrange(PlannerBehaviour::Valid).await);
    let base_url = scenario.base_url();
    let mut request = plan_request(&base_url);
    let policy = crate::shop::shop_spec(&base_url).policy;
    for attempt in 1..=2 {
        request.attempt = attempt;
        let plan = bounded("propose", planner.propose(&request))
            .await
            .unwrap_or_else(|error| panic!("attempt {attempt} failed: {}", error.detail()));
        assert_eq!(plan.items.len(), 5, "{plan:?}");
        assert_eq!(plan.plan_id, request.plan_id.as_str());
        if let Err(violations) = validate(plan, &policy) {
            panic!("attempt {attempt}: the plan was rejected: {violations:?}");
        }
        request.previous_violations = vec![Violation {
            path: "/items/0/pass_criteria".to_owned(),
            message: "expected a comparison".to_owned(),
        }];
        if attempt == 1 {
            assert!(scenario.arrange(PlannerBehaviour::Valid).await);
        }
    }
}

/// A failing planner fails with `expected`.
pub(crate) async fn failure_has_the_right_kind(
    planner: Arc<dyn Planner>,
    scenario: &dyn PlannerScenario,
    behaviour: PlannerBehaviour,
    expected: ErrorKind,
) {
    if !scenario.arrange(behaviour).await {
        return;
    }
    let request = plan_request(&scenario.base_url());
    let error = bounded("propose", planner.propose(&request))
        .await
        .expect_err("the planner must fail");
    assert_eq!(error.kind(), expected, "{behaviour:?}: {}", error.detail());
}
