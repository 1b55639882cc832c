//! The deterministic rule planner: the embedded default planner and the LLM fallback.
//!
//! [`rule_plan`] builds the same five tests for every incident, against the demo service's endpoints under the
//! context's base URL, so that `validate(rule_plan(..), &Policy::seed_default(base_url))` always succeeds:
//!
//! | priority | test id | request | pass criteria |
//! | --- | --- | --- | --- |
//! | 1 | `t1-checkout-valid` | `POST /checkout` `{"sku":"sku-1","quantity":1}` | 200, `status == "confirmed"`, an `order_id` |
//! | 2 | `t2-checkout-invalid` | `POST /checkout` `{"sku":"sku-1","quantity":0}` | 400 or 422 with `error == "invalid_order"` |
//! | 3 | `t3-health` | `GET /health` | 200 with `status == "ok"` |
//! | 4 | `t4-catalog` | `GET /catalog` | 200 with a non-empty `products` list whose first item has a `sku` |
//! | 5 | `t5-auth` | `GET /auth/me` with `Authorization: Bearer demo-token` | 200 with `user == "demo"` |
//!
//! Checkout comes first because the incident the demo stages is a checkout failure. The plan is a pure function
//! of its arguments: no clock, no randomness.

use std::collections::BTreeMap;

use fixloop_contract::chrono::{DateTime, Utc};
use fixloop_contract::serde_json::{Value, json};
use fixloop_contract::{HttpMethod, JsonObject, Plan, PlanItem, PlanItemType, Signal, Target};

use crate::ids::{IncidentId, PlanId};

/// The bearer token the demo service accepts on `GET /auth/me`.
pub const DEMO_BEARER_TOKEN: &str = "demo-token";

/// Latency budget, in milliseconds, of the rule plan's positive tests.
pub const LATENCY_BUDGET_MS: u64 = 2000;

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
///
/// A trailing slash on the base URL is tolerated. The plan is accepted by
/// [`validate`](crate::validate::validate) with [`Policy::seed_default`](crate::policy::Policy::seed_default) of
/// the same base URL.
#[must_use]
pub fn rule_plan(context: &PlanContext, plan_id: PlanId, now: DateTime<Utc>) -> Plan {
    let base = context.base_url.trim_end_matches('/');
    let url = |path: &str| format!("{base}{path}");
    let json_headers =
        || BTreeMap::from([("content-type".to_owned(), "application/json".to_owned())]);
    let items = vec![
        item(
            ItemSpec {
                test_id: "t1-checkout-valid",
                name: "Checkout accepts a valid order",
                priority: 1,
                what_it_checks: "A valid order for an existing SKU is confirmed again, so customers can pay.",
                pass_criteria: format!(
                    "status == 200 && json.status == \"confirmed\" && json.order_id exists && latency_ms < {LATENCY_BUDGET_MS}"
                ),
            },
            Target {
                method: HttpMethod::Post,
                url: url("/checkout"),
                headers: json_headers(),
                body_json: object(json!({"sku": "sku-1", "quantity": 1})),
            },
        ),
        item(
            ItemSpec {
                test_id: "t2-checkout-invalid",
                name: "Checkout rejects an invalid order",
                priority: 2,
                what_it_checks: "An order with quantity 0 is refused with a client error, not a server error.",
                pass_criteria: "status in [400, 422] && json.error == \"invalid_order\"".to_owned(),
            },
            Target {
                method: HttpMethod::Post,
                url: url("/checkout"),
                headers: json_headers(),
                body_json: object(json!({"sku": "sku-1", "quantity": 0})),
            },
        ),
        item(
            ItemSpec {
                test_id: "t3-health",
                name: "Health endpoint is up",
                priority: 3,
                what_it_checks: "The service reports itself healthy.",
                pass_criteria: format!(
                    "status == 200 && json.status == \"ok\" && latency_ms < {LATENCY_BUDGET_MS}"
                ),
            },
            get(url("/health"), BTreeMap::new()),
        ),
        item(
            ItemSpec {
                test_id: "t4-catalog",
                name: "Catalog lists products",
                priority: 4,
                what_it_checks: "The product catalog is served and not empty.",
                pass_criteria: format!(
                    "status == 200 && len(json.products) > 0 && json.products[0].sku exists && latency_ms < {LATENCY_BUDGET_MS}"
                ),
            },
            get(url("/catalog"), BTreeMap::new()),
        ),
        item(
            ItemSpec {
                test_id: "t5-auth",
                name: "Authenticated user is recognised",
                priority: 5,
                what_it_checks: "A request with the demo bearer token is authenticated.",
                pass_criteria: "status == 200 && json.user == \"demo\"".to_owned(),
            },
            get(
                url("/auth/me"),
                BTreeMap::from([(
                    "authorization".to_owned(),
                    format!("Bearer {DEMO_BEARER_TOKEN}"),
                )]),
            ),
        ),
    ];
    Plan {
        plan_id: plan_id.as_str().to_owned(),
        generated_at: now,
        items,
    }
}

struct ItemSpec {
    test_id: &'static str,
    name: &'static str,
    priority: u32,
    what_it_checks: &'static str,
    pass_criteria: String,
}

fn item(spec: ItemSpec, target: Target) -> PlanItem {
    PlanItem {
        test_id: spec.test_id.to_owned(),
        name: spec.name.to_owned(),
        kind: PlanItemType::Api,
        priority: spec.priority,
        what_it_checks: spec.what_it_checks.to_owned(),
        target,
        pass_criteria: spec.pass_criteria,
    }
}

fn get(url: String, headers: BTreeMap<String, String>) -> Target {
    Target {
        method: HttpMethod::Get,
        url,
        headers,
        body_json: JsonObject::new(),
    }
}

fn object(value: Value) -> JsonObject {
    match value {
        Value::Object(map) => map,
        // Only called with `json!({..})` literals above, which are always objects.
        _ => JsonObject::new(),
    }
}

#[cfg(test)]
mod tests {
    use fixloop_contract::chrono::TimeZone;

    use super::*;
    use crate::policy::Policy;
    use crate::validate::validate;

    fn context(base_url: &str) -> PlanContext {
        PlanContext {
            incident_id: IncidentId::new("inc-1"),
            service: "demo".to_owned(),
            base_url: base_url.to_owned(),
            signal: Signal {
                error_rate_5m: 0.3,
                p95_latency_ms_5m: 900.0,
                top_error: Some("payment provider timeout".to_owned()),
            },
            title: "Checkout failing".to_owned(),
        }
    }

    #[test]
    fn rule_plan_tolerates_a_trailing_slash() {
        let now = Utc.with_ymd_and_hms(2026, 11, 21, 10, 0, 0).unwrap();
        let plan = rule_plan(&context("http://demo:8081/"), PlanId::new("p"), now);
        assert_eq!(plan.items[2].target.url, "http://demo:8081/health");
        assert!(validate(plan, &Policy::seed_default("http://demo:8081")).is_ok());
    }
}
