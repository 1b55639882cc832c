//! [`FakePlanner`]: scripted candidate plans, defaulting to the core's rule plan, and [`PlanDefect`]s: the rule
//! plan spoiled in one known way, so a script can make the engine reject a candidate without writing a plan.

use async_trait::async_trait;
use fixloop_contract::Plan;

use super::pause;
use super::script::{Script, scripted_methods};
use crate::error::AdapterError;
use crate::ports::{PlanRequest, Planner};

/// A scriptable [`Planner`]. With an empty queue and no failure set, it answers the core's rule plan.
#[derive(Debug, Default)]
pub struct FakePlanner {
    script: Script<Answer, PlanRequest>,
}

/// One way to spoil the rule plan, so the engine's validator rejects the candidate (see
/// [`FakePlanner::push_defect`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlanDefect {
    /// Only the first three of the five tests (a plan needs exactly five).
    TooFewTests,
    /// The first test targets a host outside the policy's allowlisted base URLs.
    OffAllowlist,
}

/// A queued answer: a plan as is, or the rule plan with a defect.
#[derive(Debug)]
enum Answer {
    Plan(Plan),
    Defect(PlanDefect),
}

impl FakePlanner {
    /// A planner that answers the rule plan.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues a candidate plan (returned as is, even if invalid: the core must reject it).
    pub fn push_plan(&self, plan: Plan) {
        self.script.push(Ok(Answer::Plan(plan)));
    }

    /// Queues the rule plan for the request, spoiled by `defect` (the core must reject it).
    pub fn push_defect(&self, defect: PlanDefect) {
        self.script.push(Ok(Answer::Defect(defect)));
    }
}

scripted_methods!(FakePlanner, "call", PlanRequest, "Every request so far.");

#[async_trait]
impl Planner for FakePlanner {
    async fn propose(&self, request: &PlanRequest) -> Result<Plan, AdapterError> {
        let turn = self.script.turn(request.clone());
        pause(turn.delay).await;
        let rule_plan =
            || fixloop_core::rule_plan(&request.context, request.plan_id.clone(), request.now);
        match turn.answer {
            None => Ok(rule_plan()),
            Some(Err(error)) => Err(error),
            Some(Ok(Answer::Plan(plan))) => Ok(plan),
            Some(Ok(Answer::Defect(defect))) => Ok(defect.apply(rule_plan())),
        }
    }
}

impl PlanDefect {
    /// `plan` spoiled by this defect.
    #[must_use]
    pub fn apply(self, mut plan: Plan) -> Plan {
        match self {
            Self::TooFewTests => plan.items.truncate(3),
            Self::OffAllowlist => {
                if let Some(item) = plan.items.first_mut() {
                    let path = crate::url_path(&item.target.url);
                    item.target.url = format!("http://not-allowlisted.invalid{path}");
                }
            }
        }
        plan
    }
}
