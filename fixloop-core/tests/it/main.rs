//! Integration tests of fixloop-core: one binary, one module per area.

mod ci_corpus;
mod criteria_cases;
mod engine_harness;
mod engine_scenarios;
mod history_cases;
mod polling_scenarios;
mod prop_criteria;
mod prop_engine;
mod prop_remediation;
mod prop_snapshot;
mod prop_validate;
mod remediation_choice;
mod remediation_scenarios;
mod restart_cases;
mod rule_planner_cases;
#[path = "../fixtures/shop.rs"]
mod shop;
mod tidy;
mod validate_cases;
