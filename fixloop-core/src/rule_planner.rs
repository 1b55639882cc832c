//! The deterministic rule planner: the embedded default planner and the LLM fallback.
//!
//! [`rule_plan`] picks five of the service's [`Journey`]s, most relevant first:
//!
//! 1. journeys are ranked by relevance: a journey whose route the incident's top error names comes first
//!    ([`Journey::matches_error_under`], behind the base URL's path too), then by priority hint (lower first), then in the order the service lists them;
//! 2. for each coverage rule of the policy, in order, the most relevant journey not picked yet that satisfies it
//!    is picked, so the plan covers what the validator demands;
//! 3. the most relevant remaining journeys fill the plan up to five;
//! 4. the picked journeys, in relevance order, get priorities 1 to 5.
//!
//! Each journey becomes a plan item whose `test_id` is the journey's id and whose URL is the service's base URL
//! followed by the journey's path. The plan is a pure function of its arguments: no clock, no randomness. A
//! service whose journeys cannot satisfy its own coverage (a profile mistake) gets a plan the validator rejects,
//! with the violations saying why; a profile checker runs this planner to catch that before start-up.

use fixloop_contract::chrono::{DateTime, Utc};
use fixloop_contract::{Plan, PlanItem, Signal, Target};

use crate::criteria::Criteria;
use crate::ids::{IncidentId, PlanId};
use crate::service::Journey;
use crate::validate::PLAN_ITEMS;

/// What a planner knows about an incident.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanContext {
    /// The incident.
    pub incident_id: IncidentId,
    /// The monitored service's name.
    pub service: String,
    /// What the service does (from its profile), for an LLM planner.
    pub description: String,
    /// Base URL of the service under test (the policy's allowlisted base), without a trailing slash.
    pub base_url: String,
    /// Signal values at detection.
    pub signal: Signal,
    /// Title of the incident.
    pub title: String,
    /// Links to the telemetry gathered for this incident (empty until its context arrives, or when it failed).
    pub evidence_links: Vec<fixloop_contract::Link>,
    /// The service's candidate tests; header values may hold `${env:NAME}` placeholders, never secret values.
    pub journeys: Vec<Journey>,
    /// The coverage rules a plan must satisfy.
    pub coverage: Vec<crate::policy::CoverageRule>,
}

/// Builds the rule plan: five of `context.journeys`, most relevant first (see the [module docs](self)).
///
/// A trailing slash on the base URL is tolerated. With fewer than five journeys the plan has fewer items (and the
/// validator rejects it).
#[must_use]
pub fn rule_plan(context: &PlanContext, plan_id: PlanId, now: DateTime<Utc>) -> Plan {
    let base = context.base_url.trim_end_matches('/');
    let top_error = context.signal.top_error.as_deref();
    let mut ranked: Vec<(usize, &Journey)> = context.journeys.iter().enumerate().collect();
    ranked.sort_by_key(|(index, journey)| {
        let off_route = !top_error.is_some_and(|error| journey.matches_error_under(error, base));
        (off_route, journey.priority, *index)
    });
    let criteria: Vec<Option<Criteria>> = ranked
        .iter()
        .map(|(_, journey)| Criteria::parse(&journey.pass_criteria).ok())
        .collect();
    let mut picked = vec![false; ranked.len()];
    let mut count = 0;
    for rule in &context.coverage {
        if count >= PLAN_ITEMS {
            break;
        }
        let candidate = ranked.iter().enumerate().position(|(rank, (_, journey))| {
            !picked[rank]
                && rule.is_met_by(
                    journey.method,
                    &journey.path,
                    &journey.headers,
                    criteria[rank].as_ref(),
                )
        });
        if let Some(rank) = candidate {
            picked[rank] = true;
            count += 1;
        }
    }
    for taken in &mut picked {
        if count >= PLAN_ITEMS {
            break;
        }
        if !*taken {
            *taken = true;
            count += 1;
        }
    }
    let items = ranked
        .iter()
        .zip(&picked)
        .filter(|(_, taken)| **taken)
        .map(|((_, journey), _)| journey)
        .zip(1..)
        .map(|(journey, priority)| item(journey, base, priority))
        .collect();
    Plan {
        plan_id: plan_id.as_str().to_owned(),
        generated_at: now,
        items,
    }
}

fn item(journey: &Journey, base: &str, priority: u32) -> PlanItem {
    PlanItem {
        test_id: journey.id.clone(),
        name: journey.name.clone(),
        kind: journey.kind,
        priority,
        what_it_checks: journey.what_it_checks.clone(),
        target: Target {
            method: journey.method,
            url: format!("{base}{}", journey.path),
            headers: journey.headers.clone(),
            body_json: journey.body.clone(),
        },
        pass_criteria: journey.pass_criteria.clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use fixloop_contract::chrono::TimeZone;
    use fixloop_contract::{HttpMethod, JsonObject, PlanItemType};

    use super::*;
    use crate::policy::{CoverageCheck, CoverageRule, Policy};
    use crate::validate::validate;

    fn journey(id: &str, method: HttpMethod, path: &str, priority: u32) -> Journey {
        Journey {
            id: id.to_owned(),
            name: format!("journey {id}"),
            kind: PlanItemType::Api,
            method,
            path: path.to_owned(),
            headers: BTreeMap::new(),
            body: JsonObject::new(),
            pass_criteria: "status == 200".to_owned(),
            priority,
            what_it_checks: "it answers".to_owned(),
            route: None,
        }
    }

    fn context(base_url: &str, top_error: Option<&str>) -> PlanContext {
        let mut refund = journey("refund-negative", HttpMethod::Post, "/refunds", 9);
        refund.pass_criteria = "status == 422".to_owned();
        refund.body = JsonObject::from_iter([("amount".to_owned(), (-1).into())]);
        PlanContext {
            incident_id: IncidentId::new("inc-1"),
            service: "ledger".to_owned(),
            description: "books money".to_owned(),
            base_url: base_url.to_owned(),
            signal: Signal {
                error_rate_5m: 0.3,
                p95_latency_ms_5m: 900.0,
                top_error: top_error.map(str::to_owned),
            },
            title: "ledger failing".to_owned(),
            evidence_links: Vec::new(),
            journeys: vec![
                journey("health", HttpMethod::Get, "/health", 1),
                journey("accounts", HttpMethod::Get, "/accounts?limit=1", 2),
                journey("balance", HttpMethod::Get, "/balance", 3),
                journey("statements", HttpMethod::Get, "/statements", 4),
                journey("rates", HttpMethod::Get, "/rates", 5),
                journey("transfers", HttpMethod::Get, "/transfers", 6),
                refund,
            ],
            coverage: vec![CoverageRule {
                name: "negative refund".to_owned(),
                path: "/refunds".to_owned(),
                method: Some(HttpMethod::Post),
                check: CoverageCheck::ExpectsClientError,
            }],
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, 10, 0, 0).unwrap()
    }

    fn ids(plan: &Plan) -> Vec<(&str, u32)> {
        plan.items
            .iter()
            .map(|item| (item.test_id.as_str(), item.priority))
            .collect()
    }

    fn policy(context: &PlanContext) -> Policy {
        Policy {
            coverage: context.coverage.clone(),
            ..Policy::new(vec![context.base_url.trim_end_matches('/').to_owned()])
        }
    }

    #[test]
    fn coverage_is_picked_first_then_the_plan_is_filled_by_priority() {
        let context = context("http://ledger:9000", None);
        let plan = rule_plan(&context, PlanId::new("p"), now());
        assert_eq!(
            ids(&plan),
            [
                ("health", 1),
                ("accounts", 2),
                ("balance", 3),
                ("statements", 4),
                ("refund-negative", 5)
            ]
        );
        assert!(validate(plan, &policy(&context)).is_ok());
    }

    #[test]
    fn the_journey_on_the_top_error_route_comes_first() {
        let context = context(
            "http://ledger:9000",
            Some("GET /transfers -> 503 upstream down"),
        );
        let plan = rule_plan(&context, PlanId::new("p"), now());
        assert_eq!(
            ids(&plan),
            [
                ("transfers", 1),
                ("health", 2),
                ("accounts", 3),
                ("balance", 4),
                ("refund-negative", 5)
            ]
        );
    }

    #[test]
    fn the_top_error_route_matches_behind_a_base_url_path_and_with_a_trailing_slash() {
        // The service's own metrics name the full path (`/v1/transfers/`); its journeys are relative to the base URL.
        for base_url in ["http://ledger:9000/v1", "http://ledger:9000/v1/"] {
            let context = context(base_url, Some("GET /v1/transfers/ -> 503 upstream down"));
            let plan = rule_plan(&context, PlanId::new("p"), now());
            assert_eq!(ids(&plan)[0], ("transfers", 1), "base URL {base_url}");
        }
    }

    #[test]
    fn rule_plan_tolerates_a_trailing_slash_and_keeps_the_query() {
        let context = context("http://ledger:9000/", None);
        let plan = rule_plan(&context, PlanId::new("p"), now());
        assert_eq!(
            plan.items[1].target.url,
            "http://ledger:9000/accounts?limit=1"
        );
        assert!(validate(plan, &policy(&context)).is_ok());
    }

    #[test]
    fn too_few_journeys_give_a_plan_the_validator_rejects() {
        let mut context = context("http://ledger:9000", None);
        context.journeys.truncate(3);
        let plan = rule_plan(&context, PlanId::new("p"), now());
        assert_eq!(plan.items.len(), 3);
        assert!(validate(plan, &policy(&context)).is_err());
    }
}
