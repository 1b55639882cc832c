//! The sans-IO brain of FixLoop: inputs and time in, effects out.
//!
//! (Crate docs to be completed: what it is, what it does not do, the driving contract with a runnable example,
//! the criteria grammar.)

pub mod criteria;
pub mod engine;
pub mod ids;
pub mod policy;
pub mod rule_planner;
pub mod validate;

pub use criteria::{Criteria, Observation, ParseError, Verdict};
pub use ids::{EffectId, IncidentId, PlanId, RunId};
pub use policy::{CoverageRule, Policy};
pub use rule_planner::{PlanContext, rule_plan};
pub use validate::{ValidatedPlan, Violation, validate};
