//! Cases of the rule planner: its plan is valid, deterministic, and pinned by a golden snapshot.

use fixloop_contract::chrono::{DateTime, TimeZone, Utc};
use fixloop_contract::{HttpMethod, Plan, Signal};
use fixloop_core::{IncidentId, Observation, PlanContext, PlanId, rule_plan, validate};

use crate::shop::{shop_context, shop_spec};

fn context(base_url: &str) -> PlanContext {
    PlanContext {
        incident_id: IncidentId::new("inc-20261121-0001"),
        service: "demo-shop".to_owned(),
        base_url: base_url.to_owned(),
        signal: Signal {
            error_rate_5m: 42.0,
            p95_latency_ms_5m: 1250.0,
            top_error: Some("payment provider timeout".to_owned()),
        },
        title: "Checkout error rate above 5%".to_owned(),
        ..shop_context(base_url)
    }
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 10, 15, 0).unwrap()
}

fn plan() -> Plan {
    rule_plan(
        &context("http://127.0.0.1:8081"),
        PlanId::new("plan-rule-1"),
        now(),
    )
}

#[test]
fn rule_plan_matches_golden_snapshot() {
    insta::assert_json_snapshot!("rule_plan", plan());
}

#[test]
fn rule_plan_is_deterministic() {
    assert_eq!(plan(), plan());
}

#[test]
fn rule_plan_passes_the_seed_policy() {
    let validated = validate(plan(), &shop_spec("http://127.0.0.1:8081").policy)
        .unwrap_or_else(|violations| panic!("rule plan rejected: {violations:#?}"));
    let ids: Vec<&str> = validated
        .plan()
        .items
        .iter()
        .map(|item| item.test_id.as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "t1-checkout-valid",
            "t2-checkout-invalid",
            "t3-health",
            "t4-catalog",
            "t5-auth"
        ]
    );
}

#[test]
fn rule_plan_posts_json_to_checkout() {
    for item in plan().items {
        if item.target.method == HttpMethod::Post {
            assert_eq!(
                item.target.headers.get("content-type").map(String::as_str),
                Some("application/json"),
                "{}",
                item.test_id
            );
        } else {
            assert!(item.target.body_json.is_empty(), "{}", item.test_id);
        }
    }
}

/// What the demo service answers to each rule-plan request, healthy or with the checkout bug on.
fn demo_response(test_id: &str, bug: bool) -> Observation {
    let (status, body) = match test_id {
        "t1-checkout-valid" if bug => (
            500,
            r#"{"error":"internal_error","message":"payment provider timeout"}"#,
        ),
        "t2-checkout-invalid" if bug => (
            500,
            r#"{"error":"internal_error","message":"payment provider timeout"}"#,
        ),
        "t1-checkout-valid" => (
            200,
            r#"{"order_id":"ord-1","status":"confirmed","sku":"sku-1","quantity":1,"total_cents":1299}"#,
        ),
        "t2-checkout-invalid" => (
            422,
            r#"{"error":"invalid_order","message":"quantity must be at least 1"}"#,
        ),
        "t3-health" => (200, r#"{"status":"ok"}"#),
        "t4-catalog" => (
            200,
            r#"{"products":[{"sku":"sku-1","name":"Mug","price_cents":1299}]}"#,
        ),
        "t5-auth" => (200, r#"{"user":"demo"}"#),
        other => panic!("unknown test {other}"),
    };
    Observation {
        status,
        headers: vec![("content-type".to_owned(), "application/json".to_owned())],
        body: body.to_owned(),
        latency_ms: 15,
    }
}

#[test]
fn rule_plan_criteria_pass_against_the_healthy_demo_service() {
    let validated = validate(plan(), &shop_spec("http://127.0.0.1:8081").policy).unwrap();
    for (item, criteria) in validated.tests() {
        let verdict = criteria.evaluate(&demo_response(&item.test_id, false));
        assert!(verdict.passed, "{}: {}", item.test_id, verdict.explanation);
    }
}

#[test]
fn rule_plan_checkout_tests_fail_while_the_bug_is_on() {
    let validated = validate(plan(), &shop_spec("http://127.0.0.1:8081").policy).unwrap();
    let failed: Vec<(String, String)> = validated
        .tests()
        .filter_map(|(item, criteria)| {
            let verdict = criteria.evaluate(&demo_response(&item.test_id, true));
            (!verdict.passed).then(|| (item.test_id.clone(), verdict.explanation))
        })
        .collect();
    assert_eq!(
        failed,
        [
            (
                "t1-checkout-valid".to_owned(),
                "expected status == 200, got 500".to_owned()
            ),
            (
                "t2-checkout-invalid".to_owned(),
                "expected status in [400, 422], got 500".to_owned()
            ),
        ]
    );
}

#[test]
fn auth_test_fails_without_the_demo_token() {
    let validated = validate(plan(), &shop_spec("http://127.0.0.1:8081").policy).unwrap();
    let (_, criteria) = validated
        .tests()
        .find(|(item, _)| item.test_id == "t5-auth")
        .unwrap();
    let unauthorized = Observation {
        status: 401,
        body: r#"{"error":"unauthorized"}"#.to_owned(),
        ..Observation::default()
    };
    assert!(!criteria.evaluate(&unauthorized).passed);
}
