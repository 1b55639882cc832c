//! [`FakePlanner`]: scripted candidate plans, defaulting to the core's rule plan.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use fixloop_contract::Plan;

use super::{injected, lock, pause};
use crate::error::{AdapterError, ErrorKind};
use crate::ports::{PlanRequest, Planner};

/// A scriptable [`Planner`]. With an empty queue and no failure set, it answers the core's rule plan.
#[derive(Debug, Default)]
pub struct FakePlanner {
    script: Mutex<Script>,
}

#[derive(Debug, Default)]
struct Script {
    queue: VecDeque<Result<Plan, AdapterError>>,
    failure: Option<ErrorKind>,
    delay: Duration,
    calls: Vec<PlanRequest>,
}

impl FakePlanner {
    /// A planner that answers the rule plan.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues a candidate plan (returned as is, even if invalid: the core must reject it).
    pub fn push_plan(&self, plan: Plan) {
        lock(&self.script).queue.push_back(Ok(plan));
    }

    /// Queues one failure.
    pub fn push_error(&self, error: AdapterError) {
        lock(&self.script).queue.push_back(Err(error));
    }

    /// Makes every call (once the queue is empty) fail with `kind`, or stops failing with `None`.
    pub fn set_failure(&self, kind: Option<ErrorKind>) {
        lock(&self.script).failure = kind;
    }

    /// Delays every call by `delay` (tokio clock).
    pub fn set_delay(&self, delay: Duration) {
        lock(&self.script).delay = delay;
    }

    /// Every request so far.
    #[must_use]
    pub fn calls(&self) -> Vec<PlanRequest> {
        lock(&self.script).calls.clone()
    }
}

#[async_trait]
impl Planner for FakePlanner {
    async fn propose(&self, request: &PlanRequest) -> Result<Plan, AdapterError> {
        let (answer, delay) = {
            let mut script = lock(&self.script);
            script.calls.push(request.clone());
            let answer = match script.queue.pop_front() {
                Some(answer) => answer,
                None => match script.failure {
                    Some(kind) => Err(injected(kind)),
                    None => Ok(fixloop_core::rule_plan(
                        &request.context,
                        request.plan_id.clone(),
                        request.now,
                    )),
                },
            };
            (answer, script.delay)
        };
        pause(delay).await;
        answer
    }
}
