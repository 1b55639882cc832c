//! [`FakePlanner`]: scripted candidate plans, defaulting to the core's rule plan.

use std::time::Duration;

use async_trait::async_trait;
use fixloop_contract::Plan;

use super::pause;
use super::script::Script;
use crate::error::{AdapterError, ErrorKind};
use crate::ports::{PlanRequest, Planner};

/// A scriptable [`Planner`]. With an empty queue and no failure set, it answers the core's rule plan.
#[derive(Debug, Default)]
pub struct FakePlanner {
    script: Script<Plan, PlanRequest>,
}

impl FakePlanner {
    /// A planner that answers the rule plan.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues a candidate plan (returned as is, even if invalid: the core must reject it).
    pub fn push_plan(&self, plan: Plan) {
        self.script.push(Ok(plan));
    }

    /// Queues one failure.
    pub fn push_error(&self, error: AdapterError) {
        self.script.push(Err(error));
    }

    /// Makes every call (once the queue is empty) fail with `kind`, or stops failing with `None`.
    pub fn set_failure(&self, kind: Option<ErrorKind>) {
        self.script.set_failure(kind);
    }

    /// Delays every call by `delay` (tokio clock).
    pub fn set_delay(&self, delay: Duration) {
        self.script.set_delay(delay);
    }

    /// Every request so far.
    #[must_use]
    pub fn calls(&self) -> Vec<PlanRequest> {
        self.script.calls()
    }
}

#[async_trait]
impl Planner for FakePlanner {
    async fn propose(&self, request: &PlanRequest) -> Result<Plan, AdapterError> {
        let turn = self.script.turn(request.clone());
        pause(turn.delay).await;
        turn.answer.unwrap_or_else(|| {
            Ok(fixloop_core::rule_plan(
                &request.context,
                request.plan_id.clone(),
                request.now,
            ))
        })
    }
}
