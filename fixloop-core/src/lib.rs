//! The sans-IO brain of FixLoop (to be built): the incident state machine, the plan validator, the pass-criteria
//! language and the rule planner. Inputs and time in, effects out; no tokio, no sockets, no clock reads.
