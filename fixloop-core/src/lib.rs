//! The sans-IO brain of FixLoop: facts and time in, effects out.
//!
//! When production breaks, FixLoop detects an incident, gathers its signals, has a planner produce a Recovery
//! Validation Plan of exactly five tests, validates that plan, runs it against the service, streams every step
//! to dashboards, and declares RECOVERED only when every test passes *and* the signals are back to normal.
//! This crate makes every one of those decisions and carries out none of them.
//!
//! # What it does not do
//!
//! No I/O of any kind: no sockets, files, threads, environment variables, randomness, and no clock reads (time
//! is an argument of every mutating call). No `async` and no runtime. It depends only on `fixloop-contract`
//! (whose plain data types it uses where they are the domain), `serde` (for the explicit, versioned persistence
//! images of [`engine::Snapshot`], [`engine::RecordedInput`] and [`engine::RecordedConfig`], and nowhere else), `thiserror` and `tracing`. A server embeds it
//! and performs the [`Effect`](engine::Effect)s it asks for through adapters.
//!
//! # Main types
//!
//! - [`engine::Engine`]: the system-level incident state machine (HEALTHY → INCIDENT_ACTIVE → VALIDATING →
//!   RECOVERED), configured by [`engine::Config`] ([`Config::seed`](engine::Config::seed) and
//!   [`Config::short_windows`](engine::Config::short_windows)), fed [`engine::Input`]s, producing [`engine::Effect`]s. The
//!   [`engine`] module documents every rule (detection, planning retries, reruns, the two recovery gates,
//!   soak and cooldown).
//! - [`ServiceSpec`] and [`Journey`]: the watched service as plain data (name, base URL, [`Policy`], candidate
//!   tests), which a server parses from a service profile; the core knows no particular service.
//! - [`validate()`]: the plan validator, the only way to build a [`ValidatedPlan`]; [`Policy`] says what a plan
//!   may target and must cover.
//! - [`Criteria`]: the pass-criteria language (grammar in the [`criteria`] module).
//! - [`engine::SignalGate`]: the engine's signal gate on its own (the same rules as RECOVERED) for a caller with no
//!   incident, such as a post-deploy verification: holds, unhealthy, or inconclusive (no data is never health).
//! - [`rule_plan`]: the deterministic planner (five of the service's journeys, most relevant first), default and
//!   LLM fallback.
//! - [`copilot`]: the copilot's pure half: [`copilot::CopilotState`] (what a copilot may know),
//!   [`copilot::CopilotReply`] and the safety rule [`copilot::safety::guard`], which decides in code what an
//!   answer may say about the service's health, recovery, safety or traffic before the status is RECOVERED (a
//!   model's answer opens with a status sentence written from the state, and its sentences on those topics are
//!   left out). An embedder that lets a model answer operators applies [`guard`](copilot::safety::guard) to every
//!   answer before showing it.
//! - [`ci`]: the CI failure classifier, [`ci::classify`] over a failed job's log: a [`ci::FailureClass`] (stable
//!   snake_case names), a confidence from the evidence's strength and its margin over the runner-up, and the
//!   evidence lines.
//! - [`remediation`]: a service's remediation as plain data ([`remediation::RemediationSpec`]: actions, strategies,
//!   risk tiers per environment, the mode) with [`remediation::RemediationSpec::check`] and
//!   [`remediation::validate_choice`], the gate a model's choice of action must pass; the engine proposes, asks for
//!   approvals, requests executions and judges them ([`engine::Proposal`], [`engine::Effect::ExecuteAction`]).
//! - Id newtypes: [`IncidentId`], [`RunId`], [`PlanId`], [`ProposalId`], [`EffectId`].
//!
//! # The driving contract
//!
//! After **every** `handle_*` call, drain [`Engine::poll_effect`](engine::Engine::poll_effect) until it returns
//! `None` and carry out each effect; then read [`Engine::poll_timeout`](engine::Engine::poll_timeout) and wait
//! until that moment (or until the next input arrives, whichever is first), and call
//! [`Engine::handle_timeout`](engine::Engine::handle_timeout) when it comes. Never apply two inputs without
//! draining in between. Feed non-decreasing `now`. Effects that expect an answer carry an
//! [`EffectId`]; answer with the input naming it (answers to ids the engine no longer waits for are ignored).
//!
//! ```
//! use fixloop_contract::chrono::{DateTime, TimeDelta, Utc};
//! use fixloop_contract::{HttpMethod, PlanItemType, TestStatus};
//! use fixloop_core::engine::{Config, Effect, Engine, IncidentContext, Input, SignalSample};
//! use fixloop_core::{Journey, ServiceSpec, rule_plan};
//!
//! // The service: five journeys, each a GET that must answer 200.
//! let mut service = ServiceSpec::new("orders", "http://127.0.0.1:9000");
//! for (priority, path) in (1..).zip(["/health", "/orders", "/orders/1", "/customers", "/search?q=x"]) {
//!     service.journeys.push(Journey {
//!         id: format!("j{priority}"),
//!         name: format!("GET {path} answers"),
//!         kind: PlanItemType::Api,
//!         method: HttpMethod::Get,
//!         path: path.to_owned(),
//!         headers: Default::default(),
//!         body: Default::default(),
//!         pass_criteria: "status == 200".to_owned(),
//!         priority,
//!         what_it_checks: "The route answers.".to_owned(),
//!         route: None,
//!     });
//! }
//! let mut now: DateTime<Utc> = "2026-11-21T10:00:00Z".parse().unwrap();
//! let mut engine = Engine::new(Config::short_windows(service, "doc"), now);
//! let mut inputs = vec![Input::SimulateOn];
//! let mut published = Vec::new();
//!
//! for _ in 0..50 {
//!     // One input, then drain every effect; answers become the next inputs.
//!     if let Some(input) = inputs.pop() {
//!         engine.handle_input(now, input).unwrap();
//!     } else if let Some(deadline) = engine.poll_timeout() {
//!         now = now.max(deadline);
//!         engine.handle_timeout(now);
//!     }
//!     while let Some(effect) = engine.poll_effect() {
//!         match effect {
//!             Effect::Publish(envelope) => published.push(envelope.message.kind()),
//!             Effect::FetchContext { effect, .. } => inputs.push(Input::ContextFetched {
//!                 effect,
//!                 result: Ok(IncidentContext::default()),
//!             }),
//!             Effect::RequestPlan { effect, plan_id, context, .. } => inputs.push(Input::PlanProposed {
//!                 effect,
//!                 plan: rule_plan(&context, plan_id, now),
//!             }),
//!             Effect::StartRun { effect, plan, .. } => {
//!                 // The world: every test passes, and the signals are healthy.
//!                 inputs.push(Input::RunFinished { effect, result: Ok(()) });
//!                 for (item, _criteria) in plan.tests() {
//!                     inputs.push(Input::TestProgressed {
//!                         effect,
//!                         test_id: item.test_id.clone(),
//!                         status: TestStatus::Pass,
//!                         details: Some("status 200".to_owned()),
//!                     });
//!                 }
//!                 for _ in 0..2 {
//!                     inputs.push(Input::SignalSampled(SignalSample {
//!                         at: now,
//!                         error_rate: Some(0.0),
//!                         p95_latency_ms: Some(80.0),
//!                         top_error: None,
//!                         requests: 100,
//!                     }));
//!                 }
//!             }
//!             Effect::CancelRun { .. } => {}
//!             _ => {}
//!         }
//!     }
//!     now += TimeDelta::milliseconds(100);
//! }
//! // The soak window elapsed without relapse: the incident went all the way round.
//! assert_eq!(
//!     published,
//!     [
//!         "system.status",    // INCIDENT_ACTIVE
//!         "incident.created", // empty plan
//!         "plan.generated",
//!         "system.status",    // VALIDATING
//!         "tests.updated",    // all PENDING
//!         "system.status",    // numbers of the first sample
//!         "tests.updated", "tests.updated", "tests.updated", "tests.updated", "tests.updated",
//!         "tests.updated",    // COMPLETED
//!         "system.status",    // RECOVERED
//!         "tests.updated",
//!         "system.status",    // HEALTHY
//!     ]
//! );
//! ```

pub mod ci;
pub mod copilot;
pub mod criteria;
pub mod engine;
pub mod ids;
pub mod policy;
pub mod remediation;
pub mod rule_planner;
pub mod service;
pub mod validate;

pub use criteria::{Criteria, Observation, ParseError, Verdict};
pub use ids::{EffectId, IncidentId, PlanId, ProposalId, RunId};
pub use policy::{CoverageRule, Policy};
pub use rule_planner::{PlanContext, rule_plan};
pub use service::{Journey, ServiceSpec};
pub use validate::{ValidatedPlan, Violation, validate};
