//! The deterministic rule planner: the embedded default planner and the LLM fallback (SKELETON).

use fixloop_contract::chrono::{DateTime, Utc};
use fixloop_contract::{Plan, Signal};

use crate::ids::{IncidentId, PlanId};

/// What a planner knows about an incident.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanContext {
    /// The incident.
    pub incident_id: IncidentId,
    /// The monitored service's name.
    pub service: String,
    /// Base URL of the service under test (the policy's allowlisted base), without a trailing slash.
    pub base_url: String,
    /// Signal values at detection.
    pub signal: Signal,
    /// Title of the incident.
    pub title: String,
}

/// Builds the rule plan: five tests against the demo service's endpoints under `context.base_url`.
#[must_use]
pub fn rule_plan(context: &PlanContext, plan_id: PlanId, now: DateTime<Utc>) -> Plan {
    let _ = context;
    Plan {
        plan_id: plan_id.as_str().to_owned(),
        generated_at: now,
        items: Vec::new(),
    }
}
