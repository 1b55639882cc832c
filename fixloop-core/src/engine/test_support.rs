//! Helpers for the concept modules' unit tests: a shared state over a five-journey service with the
//! short-windows preset, fixed times, an opened incident, a validating one, and the effects drained.

use fixloop_contract::chrono::{DateTime, TimeDelta, Utc};
use fixloop_contract::{HttpMethod, PlanItemType};

use super::detection::{self, Opening};
use super::phase::{IncidentActive, OpenIncident, Phase, Validating};
use super::planning;
use super::shared::Shared;
use super::{Config, Effect};
use crate::ids::PlanId;
use crate::rule_planner::rule_plan;
use crate::service::{Journey, ServiceSpec};
use crate::validate::validate;

/// `seconds` after the tests' epoch.
pub(super) fn at(seconds: i64) -> DateTime<Utc> {
    let epoch: DateTime<Utc> = "2026-11-21T10:00:00Z".parse().expect("a valid time");
    epoch + TimeDelta::seconds(seconds)
}

/// A service with five GET journeys.
pub(super) fn spec() -> ServiceSpec {
    let mut service = ServiceSpec::new("orders", "http://127.0.0.1:9000");
    for (priority, path) in (1..).zip(["/health", "/orders", "/orders/1", "/customers", "/search"])
    {
        service.journeys.push(Journey {
            id: format!("j{priority}"),
            name: format!("GET {path} answers"),
            kind: PlanItemType::Api,
            method: HttpMethod::Get,
            path: path.to_owned(),
            headers: Default::default(),
            body: Default::default(),
            pass_criteria: "status == 200".to_owned(),
            priority,
            what_it_checks: "The route answers.".to_owned(),
            route: None,
        });
    }
    service
}

/// The shared state of a fresh engine at [`at`]`(0)`.
pub(super) fn shared() -> Shared {
    Shared::new(Config::short_windows(spec(), "t"), at(0))
}

/// Every queued effect, in order.
pub(super) fn drain(shared: &mut Shared) -> Vec<Effect> {
    shared.effects.drain(..).collect()
}

/// The kinds of the published messages among `effects`.
pub(super) fn published(effects: &[Effect]) -> Vec<&'static str> {
    effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Publish(envelope) => Some(envelope.message.kind()),
            _ => None,
        })
        .collect()
}

/// An incident opened by an operator's simulation at `now`, fetching its context (effects drained).
pub(super) fn active(shared: &mut Shared, now: DateTime<Utc>) -> IncidentActive {
    let Phase::IncidentActive(active) = detection::open_incident(shared, now, Opening::Simulated)
    else {
        panic!("a simulation opens an incident");
    };
    drain(shared);
    active
}

/// An open incident (its planning dropped).
pub(super) fn incident(shared: &mut Shared, now: DateTime<Utc>) -> OpenIncident {
    active(shared, now).incident
}

/// An incident validating the rule plan, its first run in flight (effects drained).
pub(super) fn validating(shared: &mut Shared, now: DateTime<Utc>) -> Validating {
    let incident = incident(shared, now);
    let context = planning::plan_context(shared, &incident);
    let plan = validate(
        rule_plan(&context, PlanId::new("plan-t-1"), now),
        &shared.config.service.policy,
    )
    .expect("the rule plan of five journeys is valid");
    let Phase::Validating(validating) = planning::start_validating(incident, shared, now, plan)
    else {
        panic!("a validated plan starts validation");
    };
    drain(shared);
    validating
}
