//! (owned by the validator/criteria/rule-planner work; to be written)
