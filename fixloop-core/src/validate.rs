//! The plan validator: the only way to build a [`ValidatedPlan`] (SKELETON).

use std::fmt;

use fixloop_contract::{Plan, PlanItem};

use crate::criteria::Criteria;
use crate::policy::Policy;

/// A plan that passed [`validate`]; it can be built in no other way.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedPlan {
    plan: Plan,
    criteria: Vec<Criteria>,
}

/// One reason a plan was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer into the plan (`/items/2/target/url`), `""` for the whole plan.
    pub path: String,
    /// What is wrong, in one line (fed back to the LLM on re-prompt).
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl ValidatedPlan {
    /// The plan as it goes on the wire, items sorted by priority.
    #[must_use]
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Each item with its parsed criteria, in priority order.
    pub fn tests(&self) -> impl Iterator<Item = (&PlanItem, &Criteria)> {
        self.plan.items.iter().zip(&self.criteria)
    }

    /// Gives the wire plan back.
    #[must_use]
    pub fn into_plan(self) -> Plan {
        self.plan
    }
}

/// Validates a candidate plan against a policy, reporting every violation.
///
/// # Errors
///
/// Every [`Violation`] found, in document order.
pub fn validate(plan: Plan, policy: &Policy) -> Result<ValidatedPlan, Vec<Violation>> {
    let _ = policy;
    let mut criteria = Vec::new();
    let mut violations = Vec::new();
    for (index, item) in plan.items.iter().enumerate() {
        match Criteria::parse(&item.pass_criteria) {
            Ok(c) => criteria.push(c),
            Err(e) => violations.push(Violation {
                path: format!("/items/{index}/pass_criteria"),
                message: e.to_string(),
            }),
        }
    }
    if violations.is_empty() {
        Ok(ValidatedPlan { plan, criteria })
    } else {
        Err(violations)
    }
}
