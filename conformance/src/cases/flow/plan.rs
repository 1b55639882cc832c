//! The plan stage: `plan.generated` arrives for the incident (`flow/plan.generated/1`) with exactly five items
//! (`/2`) covering what the seed requires (`/3`); and, while the bug is on, the plan's own checkout target answers
//! 500 (`flow/checkout/1`).

use serde_json::Value;

use super::steps::{
    CHECKOUT, Flow, PLAN_COVERAGE, PLAN_GENERATED, PLAN_SIZE, for_incident, types_after,
};
use crate::case::Outcome;
use crate::cases::context::Ctx;
use crate::cases::messages::find;
use crate::client::Body;
use crate::spec::{short_json, truncate};

/// Waits for the incident's plan (or reads it over REST when it is not announced) and judges its items; the
/// items, empty when there is no plan.
pub(super) async fn judge(ctx: &mut Ctx<'_>, flow: &Flow<'_>, incident_id: &str) -> Vec<Value> {
    let (recorder, start, timeout) = (flow.recorder, flow.start, flow.timeout);
    let generated = recorder
        .wait_for(ctx.flow_deadline(), |log| {
            find(log, start, "plan.generated", for_incident(incident_id))
        })
        .await;
    let (plan, plan_path) = match generated {
        Some((_, payload)) => {
            ctx.record(PLAN_GENERATED, Outcome::Pass);
            (payload["plan"].clone(), "/payload/plan/items")
        }
        None => {
            ctx.record(
                PLAN_GENERATED,
                Outcome::fail(
                    format!("plan.generated for incident {incident_id} within {timeout:?}"),
                    format!("none; types received: {}", types_after(recorder, start)),
                    "",
                ),
            );
            // Judge the plan through REST so one missing event fails one case.
            let plan = match flow.http.get("/api/incidents/current").await {
                Ok(reply) => reply
                    .json
                    .map(|card| card["plan"].clone())
                    .unwrap_or(Value::Null),
                Err(_) => Value::Null,
            };
            (plan, "/plan/items (GET /api/incidents/current)")
        }
    };
    let items = plan["items"].as_array().cloned().unwrap_or_default();
    match plan["items"].as_array() {
        Some(items) => {
            let outcome = if items.len() == 5 {
                Outcome::Pass
            } else {
                Outcome::fail(
                    "exactly 5 plan items",
                    format!("{} items", items.len()),
                    plan_path,
                )
            };
            ctx.record(PLAN_SIZE, outcome);
            let gaps = coverage_gaps(items);
            let outcome = if gaps.is_empty() {
                Outcome::Pass
            } else {
                Outcome::fail(
                    "items covering /health, /checkout, /catalog, a negative checkout test expecting a 4xx, and an auth check",
                    format!(
                        "missing: {}; items: {}",
                        gaps.join(", "),
                        describe_items(items)
                    ),
                    plan_path,
                )
            };
            ctx.record(PLAN_COVERAGE, outcome);
        }
        None => {
            let outcome = Outcome::fail("a plan with an items array", short_json(&plan), plan_path);
            ctx.record(PLAN_SIZE, outcome.clone());
            ctx.record(PLAN_COVERAGE, outcome);
        }
    }
    items
}

/// `flow/checkout/1`: the plan's positive checkout target, called as the plan describes it, answers 500.
pub(super) async fn checkout_breaks(ctx: &Ctx<'_>, items: &[Value]) -> Outcome {
    if !ctx.wants(CHECKOUT) {
        return Outcome::Pass;
    }
    let is_checkout = |item: &&Value| {
        url_path(item["target"]["url"].as_str().unwrap_or("")).ends_with("/checkout")
    };
    let target = items
        .iter()
        .filter(is_checkout)
        .find(|item| !mentions_client_error(item["pass_criteria"].as_str().unwrap_or("")))
        .or_else(|| items.iter().find(is_checkout));
    let Some(item) = target else {
        return Outcome::skip(
            "precondition failed: the plan names no /checkout target to find the demo app by (flow/plan.generated/3)",
        );
    };
    let url = item["target"]["url"].as_str().unwrap_or("");
    if !url.starts_with("http://") && !url.starts_with("https://") {
        return Outcome::skip(format!(
            "the plan's checkout target {url:?} is not an absolute http(s) URL"
        ));
    }
    let method = item["target"]["method"].as_str().unwrap_or("POST");
    let headers: Vec<(String, String)> = item["target"]["headers"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(name, value)| value.as_str().map(|v| (name.clone(), v.to_owned())))
        .filter(|(name, _)| !name.eq_ignore_ascii_case("content-type"))
        .collect();
    let body = match &item["target"]["body_json"] {
        Value::Null => Body::None,
        body => Body::Json(body.clone()),
    };
    match ctx.http().send_to(method, url, &headers, body).await {
        // The demo app is another server: one the runner cannot reach says nothing about the backend.
        Err(error) => Outcome::skip(format!(
            "the plan's checkout target {method} {url} did not answer: {}",
            truncate(&error, 200)
        )),
        Ok(reply) if reply.status == 500 => Outcome::Pass,
        Ok(reply) => Outcome::fail(
            format!("status 500 from {method} {url} while the bug is on"),
            format!(
                "status {} with body {}",
                reply.status,
                truncate(&reply.text, 200)
            ),
            "status",
        ),
    }
}

/// The seed's coverage requirements a plan's items miss.
pub(super) fn coverage_gaps(items: &[Value]) -> Vec<&'static str> {
    fn path_of(item: &Value) -> &str {
        url_path(item["target"]["url"].as_str().unwrap_or(""))
    }
    let covers = |suffix: &str| items.iter().any(|item| path_of(item).ends_with(suffix));
    let mut gaps = Vec::new();
    if !covers("/health") {
        gaps.push("/health");
    }
    if !covers("/checkout") {
        gaps.push("/checkout");
    }
    if !covers("/catalog") {
        gaps.push("/catalog");
    }
    let negative = items.iter().any(|item| {
        path_of(item).ends_with("/checkout")
            && mentions_client_error(item["pass_criteria"].as_str().unwrap_or(""))
    });
    if !negative {
        gaps.push("a negative checkout test whose pass_criteria expect a 4xx");
    }
    let auth = items.iter().any(|item| {
        let headers = item["target"]["headers"].as_object();
        let sends_authorization =
            headers.is_some_and(|h| h.keys().any(|k| k.eq_ignore_ascii_case("authorization")));
        sends_authorization || path_of(item).to_ascii_lowercase().contains("auth")
    });
    if !auth {
        gaps.push("an auth check (an Authorization header or an auth endpoint)");
    }
    gaps
}

/// The path of a URL (`http://h:1/a/b?q` → `/a/b`); a relative reference is returned as is, minus any query.
fn url_path(url: &str) -> &str {
    let after_scheme = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest.find('/').map_or("", |i| &rest[i..]));
    let end = after_scheme.find(['?', '#']).unwrap_or(after_scheme.len());
    &after_scheme[..end]
}

/// Whether pass criteria name a 4xx status (`status == 422`, `status in [400, 422]`, `4xx`).
fn mentions_client_error(criteria: &str) -> bool {
    if criteria.to_ascii_lowercase().contains("4xx") {
        return true;
    }
    let bytes = criteria.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if criteria[start..i]
                .parse::<u32>()
                .is_ok_and(|n| (400..500).contains(&n))
            {
                return true;
            }
        } else {
            i += 1;
        }
    }
    false
}

fn describe_items(items: &[Value]) -> String {
    let described: Vec<String> = items
        .iter()
        .map(|item| {
            format!(
                "{} {} ({})",
                item["target"]["method"].as_str().unwrap_or("?"),
                url_path(item["target"]["url"].as_str().unwrap_or("")),
                item["pass_criteria"].as_str().unwrap_or("?")
            )
        })
        .collect();
    format!("[{}]", described.join("; "))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn item(method: &str, url: &str, criteria: &str, headers: Value) -> Value {
        json!({"target": {"method": method, "url": url, "headers": headers}, "pass_criteria": criteria})
    }

    #[test]
    fn the_seed_plan_has_no_coverage_gap() {
        let items = [
            item(
                "GET",
                "http://127.0.0.1:8001/health",
                "status == 200",
                json!({}),
            ),
            item(
                "POST",
                "http://127.0.0.1:8001/checkout",
                "status == 200",
                json!({}),
            ),
            item(
                "GET",
                "http://127.0.0.1:8001/catalog?x=1",
                "status == 200",
                json!({}),
            ),
            item(
                "POST",
                "http://127.0.0.1:8001/checkout",
                "status in [400, 422]",
                json!({}),
            ),
            item(
                "GET",
                "http://127.0.0.1:8001/auth/me",
                "status == 200",
                json!({"Authorization": "Bearer demo-token"}),
            ),
        ];
        assert!(
            coverage_gaps(&items).is_empty(),
            "{:?}",
            coverage_gaps(&items)
        );
    }

    #[test]
    fn a_plan_without_negative_or_auth_tests_names_both_gaps() {
        let items = [
            item("GET", "http://h/health", "status == 200", json!({})),
            item("POST", "http://h/checkout", "status == 200", json!({})),
            item(
                "GET",
                "http://h/catalog",
                "status == 200 && latency_ms < 800",
                json!({}),
            ),
        ];
        let gaps = coverage_gaps(&items);
        assert_eq!(gaps.len(), 2, "{gaps:?}");
        assert!(gaps[0].contains("negative checkout"));
        assert!(gaps[1].contains("auth"));
    }

    #[test]
    fn client_error_mentions_need_a_4xx_number() {
        assert!(mentions_client_error("status == 422"));
        assert!(mentions_client_error("status >= 400 && status < 500"));
        assert!(mentions_client_error("a 4xx"));
        assert!(!mentions_client_error("status == 200 && latency_ms < 4000"));
        assert!(!mentions_client_error("status == 500"));
    }
}
