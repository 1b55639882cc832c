//! Cases of the plan validator: one test per kind of violation, plus acceptance and ordering.

use fixloop_contract::chrono::{TimeZone, Utc};
use fixloop_contract::serde_json::json;
use fixloop_contract::{HttpMethod, Plan, Signal};
use fixloop_core::policy::CoverageCheck;
use fixloop_core::{
    CoverageRule, IncidentId, PlanContext, PlanId, Policy, Violation, rule_plan, validate,
};

use crate::shop::{shop_context, shop_spec};

const BASE: &str = "http://127.0.0.1:8081";

fn good_plan() -> Plan {
    let context = PlanContext {
        incident_id: IncidentId::new("inc-1"),
        service: "demo-shop".to_owned(),
        base_url: BASE.to_owned(),
        signal: Signal {
            error_rate_5m: 42.0,
            p95_latency_ms_5m: 1200.0,
            top_error: Some("payment provider timeout".to_owned()),
        },
        title: "Checkout errors above 5%".to_owned(),
        ..shop_context(BASE)
    };
    let now = Utc.with_ymd_and_hms(2026, 11, 21, 10, 15, 0).unwrap();
    rule_plan(&context, PlanId::new("plan-1"), now)
}

fn violations(plan: Plan) -> Vec<Violation> {
    validate(plan, &shop_spec(BASE).policy).expect_err("plan should be rejected")
}

/// Asserts that the plan is rejected with exactly one violation at `path` whose message contains `needle`.
fn assert_single(plan: Plan, path: &str, needle: &str) {
    let found = violations(plan);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].path, path, "{found:#?}");
    assert!(found[0].message.contains(needle), "{found:#?}");
}

/// Points item 2 (the health check, which no other coverage rule depends on) at `url` and expects a url violation.
fn assert_url_rejected(url: &str, needle: &str) {
    let mut plan = good_plan();
    plan.items[2].target.url = url.to_owned();
    let found = violations(plan);
    assert!(
        found
            .iter()
            .any(|v| v.path == "/items/2/target/url" && v.message.contains(needle)),
        "{url}: {found:#?}"
    );
}

#[test]
fn rule_plan_is_accepted() {
    let validated = validate(good_plan(), &shop_spec(BASE).policy).expect("valid");
    assert_eq!(validated.plan(), &good_plan());
}

#[test]
fn validated_plan_items_are_sorted_by_priority() {
    let mut plan = good_plan();
    plan.items.reverse();
    let validated = validate(plan, &shop_spec(BASE).policy).expect("valid");
    let priorities: Vec<u32> = validated.plan().items.iter().map(|i| i.priority).collect();
    assert_eq!(priorities, [1, 2, 3, 4, 5]);
    for (item, criteria) in validated.tests() {
        assert_eq!(criteria.to_string(), item.pass_criteria);
    }
    assert_eq!(validated.into_plan(), good_plan());
}

#[test]
fn plan_with_four_items_is_rejected() {
    let mut plan = good_plan();
    plan.items.remove(2);
    let found = violations(plan);
    assert_eq!(found[0].path, "/items");
    assert_eq!(found[0].message, "a plan needs exactly 5 items, found 4");
    assert!(found.iter().any(|v| v.message == "no item has priority 3"));
    assert!(
        found
            .iter()
            .any(|v| v.message.starts_with("no test covers the health check")),
        "{found:#?}"
    );
}

#[test]
fn plan_with_six_items_is_rejected() {
    let mut plan = good_plan();
    let mut extra = plan.items[2].clone();
    extra.test_id = "t6-extra".to_owned();
    extra.priority = 5;
    plan.items.push(extra);
    let found = violations(plan);
    assert_eq!(found[0].message, "a plan needs exactly 5 items, found 6");
    assert!(found.iter().any(|v| v.path == "/items/5/priority"));
}

#[test]
fn empty_plan_id_is_rejected() {
    let mut plan = good_plan();
    plan.plan_id = " ".to_owned();
    assert_single(plan, "/plan_id", "must not be empty");
}

#[test]
fn duplicate_priority_is_rejected() {
    let mut plan = good_plan();
    plan.items[4].priority = 1;
    let found = violations(plan);
    assert_eq!(
        found,
        [
            Violation {
                path: "/items/4/priority".to_owned(),
                message: "priority 1 is already used by /items/0; use 1, 2, 3, 4 and 5, each once"
                    .to_owned(),
            },
            Violation {
                path: "/items".to_owned(),
                message: "no item has priority 5".to_owned(),
            },
        ]
    );
}

#[test]
fn priority_out_of_range_is_rejected() {
    let mut plan = good_plan();
    plan.items[0].priority = 0;
    plan.items[1].priority = 6;
    let found = violations(plan);
    assert_eq!(found.len(), 4, "{found:#?}");
    assert_eq!(found[0].path, "/items/0/priority");
    assert_eq!(
        found[0].message,
        "priority must be between 1 and 5, found 0"
    );
    assert_eq!(found[1].path, "/items/1/priority");
}

#[test]
fn duplicate_test_id_is_rejected() {
    let mut plan = good_plan();
    plan.items[3].test_id = plan.items[1].test_id.clone();
    assert_single(
        plan,
        "/items/3/test_id",
        "`t2-checkout-invalid` is already used by /items/1",
    );
}

#[test]
fn test_id_with_unsafe_characters_is_rejected() {
    for test_id in ["", "t1 checkout", "t1/../x", "t1\n", &"t".repeat(65)] {
        let mut plan = good_plan();
        plan.items[0].test_id = test_id.to_owned();
        let found = violations(plan);
        assert_eq!(found.len(), 1, "{test_id:?}: {found:#?}");
        assert_eq!(found[0].path, "/items/0/test_id");
    }
}

#[test]
fn empty_name_is_rejected() {
    let mut plan = good_plan();
    plan.items[1].name = String::new();
    assert_single(plan, "/items/1/name", "name must not be empty");
}

#[test]
fn multi_line_name_is_rejected() {
    let mut plan = good_plan();
    plan.items[1].name = "two\nlines".to_owned();
    assert_single(plan, "/items/1/name", "one line");
}

#[test]
fn overlong_what_it_checks_is_rejected() {
    let mut plan = good_plan();
    plan.items[1].what_it_checks = "x".repeat(2049);
    assert_single(
        plan,
        "/items/1/what_it_checks",
        "what_it_checks is 2049 bytes long, the limit is 2048",
    );
}

#[test]
fn unparsable_pass_criteria_is_rejected_with_column() {
    let mut plan = good_plan();
    plan.items[2].pass_criteria = "status == 200 and body contains \"ok\"".to_owned();
    assert_single(
        plan,
        "/items/2/pass_criteria",
        "pass_criteria does not parse at column 15: expected `&&`, `||` or the end of the criteria, found `and`",
    );
}

#[test]
fn plan_with_target_outside_allowlist_is_rejected() {
    assert_url_rejected(
        "http://evil.example:8081/health",
        "outside the allowed base URLs",
    );
}

#[test]
fn other_port_is_rejected() {
    assert_url_rejected(
        "http://127.0.0.1:8082/health",
        "outside the allowed base URLs",
    );
    assert_url_rejected("http://127.0.0.1/health", "outside the allowed base URLs");
}

#[test]
fn other_scheme_is_rejected() {
    assert_url_rejected(
        "https://127.0.0.1:8081/health",
        "outside the allowed base URLs",
    );
    assert_url_rejected("ftp://127.0.0.1:8081/health", "only http and https");
    assert_url_rejected("file:///etc/passwd", "only http and https");
}

#[test]
fn relative_url_is_rejected() {
    assert_url_rejected("/health", "must start with http:// or https://");
    assert_url_rejected(
        "//127.0.0.1:8081/health",
        "must start with http:// or https://",
    );
}

#[test]
fn userinfo_in_url_is_rejected() {
    assert_url_rejected("http://127.0.0.1:8081@evil.example/health", "userinfo");
    assert_url_rejected("http://user:pass@127.0.0.1:8081/health", "userinfo");
}

#[test]
fn dot_segment_is_rejected() {
    assert_url_rejected("http://127.0.0.1:8081/../admin", "dot segments");
    assert_url_rejected("http://127.0.0.1:8081/./health", "dot segments");
    assert_url_rejected("http://127.0.0.1:8081/health/..", "dot segments");
    assert_url_rejected("http://127.0.0.1:8081/..;/admin", "dot segments");
}

#[test]
fn encoded_dot_segment_is_rejected() {
    assert_url_rejected("http://127.0.0.1:8081/%2e%2e/admin", "`%2e`");
    assert_url_rejected("http://127.0.0.1:8081/%2E./admin", "`%2E`");
}

#[test]
fn encoded_slash_and_backslash_are_rejected() {
    assert_url_rejected("http://127.0.0.1:8081/health%2f..%2fadmin", "`%2f`");
    assert_url_rejected("http://127.0.0.1:8081/health%5c..", "`%5c`");
    assert_url_rejected("http://127.0.0.1:8081/health%252e", "`%25`");
    assert_url_rejected("http://127.0.0.1:8081/health%00", "`%00`");
    assert_url_rejected("http://127.0.0.1:8081/health%zz", "two hex digits");
}

#[test]
fn backslash_in_url_is_rejected() {
    assert_url_rejected("http://127.0.0.1:8081\\@evil.example/", "backslash");
}

#[test]
fn whitespace_and_control_characters_in_url_are_rejected() {
    assert_url_rejected("http://127.0.0.1:8081/health x", "whitespace");
    assert_url_rejected("http://127.0.0.1:8081/health\r\nHost: evil", "whitespace");
    assert_url_rejected(" http://127.0.0.1:8081/health", "whitespace");
}

#[test]
fn fragment_in_url_is_rejected() {
    assert_url_rejected("http://127.0.0.1:8081/health#top", "fragment");
}

#[test]
fn non_ascii_host_is_rejected() {
    assert_url_rejected("http://127.0.0.1:8081.évil/health", "non-ASCII");
}

#[test]
fn empty_path_segment_is_rejected() {
    assert_url_rejected("http://127.0.0.1:8081//health", "empty path segment");
}

#[test]
fn host_comparison_ignores_case_and_default_port() {
    let policy = shop_spec("http://Demo.Local").policy;
    let mut plan = good_plan();
    for item in &mut plan.items {
        item.target.url = item.target.url.replace(BASE, "http://DEMO.local:80");
    }
    assert!(validate(plan, &policy).is_ok());
}

#[test]
fn target_must_be_under_the_base_path() {
    let policy = shop_spec("http://127.0.0.1:8081/shop").policy;
    let mut plan = good_plan();
    for item in &mut plan.items {
        item.target.url = item.target.url.replace(BASE, "http://127.0.0.1:8081/shop");
    }
    assert!(validate(plan.clone(), &policy).is_ok());
    plan.items[2].target.url = "http://127.0.0.1:8081/shopping/health".to_owned();
    let found = validate(plan, &policy).expect_err("outside base path");
    assert!(found.iter().any(|v| v.path == "/items/2/target/url"));
}

#[test]
fn host_header_is_rejected() {
    let mut plan = good_plan();
    plan.items[2]
        .target
        .headers
        .insert("Host".to_owned(), "evil.example".to_owned());
    assert_single(
        plan,
        "/items/2/target/headers/Host",
        "may not be set by a plan",
    );
}

#[test]
fn hop_by_hop_and_content_length_headers_are_rejected() {
    for name in [
        "Connection",
        "keep-alive",
        "Proxy-Connection",
        "Transfer-Encoding",
        "Upgrade",
        "TE",
        "Trailer",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "Content-Length",
    ] {
        let mut plan = good_plan();
        plan.items[2]
            .target
            .headers
            .insert(name.to_owned(), "x".to_owned());
        assert_single(
            plan,
            &format!("/items/2/target/headers/{name}"),
            "may not be set",
        );
    }
}

#[test]
fn invalid_header_name_is_rejected() {
    for name in ["", "X Bad", "X:Bad", "X-Ünicode", "a/b"] {
        let mut plan = good_plan();
        plan.items[2]
            .target
            .headers
            .insert(name.to_owned(), "x".to_owned());
        let found = violations(plan);
        assert_eq!(found.len(), 1, "{name:?}: {found:#?}");
        assert!(
            found[0].message.contains("not a valid HTTP token"),
            "{found:#?}"
        );
    }
}

#[test]
fn header_path_escapes_json_pointer_characters() {
    let mut plan = good_plan();
    plan.items[2]
        .target
        .headers
        .insert("a/b~c".to_owned(), "x".to_owned());
    assert_single(
        plan,
        "/items/2/target/headers/a~1b~0c",
        "not a valid HTTP token",
    );
}

#[test]
fn header_value_with_crlf_is_rejected() {
    for value in ["a\r\nX-Injected: 1", "a\nb", "a\0b"] {
        let mut plan = good_plan();
        plan.items[2]
            .target
            .headers
            .insert("x-trace".to_owned(), value.to_owned());
        assert_single(plan, "/items/2/target/headers/x-trace", "CR, LF, NUL");
    }
}

#[test]
fn duplicate_header_names_are_rejected() {
    let mut plan = good_plan();
    plan.items[0]
        .target
        .headers
        .insert("Content-Type".to_owned(), "application/json".to_owned());
    assert_single(
        plan,
        "/items/0/target/headers/content-type",
        "duplicates `Content-Type`",
    );
}

#[test]
fn too_many_headers_are_rejected() {
    let mut plan = good_plan();
    for index in 0..40 {
        plan.items[2]
            .target
            .headers
            .insert(format!("x-h{index}"), "1".to_owned());
    }
    assert_single(
        plan,
        "/items/2/target/headers",
        "40 headers, the limit is 32",
    );
}

#[test]
fn get_with_body_is_rejected() {
    let mut plan = good_plan();
    plan.items[2]
        .target
        .body_json
        .insert("probe".to_owned(), json!(true));
    assert_single(
        plan,
        "/items/2/target/body_json",
        "a GET request must not have a body",
    );
}

#[test]
fn oversized_body_is_rejected() {
    let mut plan = good_plan();
    plan.items[0]
        .target
        .body_json
        .insert("padding".to_owned(), json!("x".repeat(20_000)));
    assert_single(plan, "/items/0/target/body_json", "the limit is 16384");
}

#[test]
fn missing_negative_checkout_test_is_rejected() {
    let mut plan = good_plan();
    plan.items[1].pass_criteria = "status == 200".to_owned();
    assert_single(
        plan,
        "/items",
        "no test covers the negative checkout test: add a POST request to /checkout whose pass_criteria only pass on a 4xx status",
    );
}

#[test]
fn negative_test_must_use_the_required_method() {
    let mut plan = good_plan();
    plan.items[1].target.method = HttpMethod::Put;
    assert_single(plan, "/items", "negative checkout test");
}

#[test]
fn auth_check_without_authorization_header_is_rejected() {
    let mut plan = good_plan();
    plan.items[4].target.headers.clear();
    assert_single(
        plan,
        "/items",
        "no test covers the auth check: add a request to /auth/me that sends an `Authorization` header",
    );
}

#[test]
fn two_negative_checkouts_leave_the_positive_rule_uncovered() {
    let mut plan = good_plan();
    plan.items[0].pass_criteria = "status == 422".to_owned();
    assert_single(
        plan,
        "/items",
        "no test covers the checkout: add a POST request to /checkout whose pass_criteria only pass on a 2xx status",
    );
}

#[test]
fn one_item_cannot_satisfy_two_rules() {
    let policy = Policy {
        coverage: vec![
            CoverageRule {
                name: "health check".to_owned(),
                path: "/health".to_owned(),
                method: None,
                check: CoverageCheck::Any,
            },
            CoverageRule {
                name: "second health check".to_owned(),
                path: "/health".to_owned(),
                method: Some(HttpMethod::Get),
                check: CoverageCheck::Any,
            },
        ],
        ..shop_spec(BASE).policy
    };
    let found = validate(good_plan(), &policy).expect_err("one health item for two rules");
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0]
            .message
            .starts_with("the second health check needs a test of its own"),
        "{found:#?}"
    );
}

#[test]
fn embedding_service_can_state_its_own_coverage() {
    let policy = Policy {
        coverage: vec![CoverageRule {
            name: "orders listing".to_owned(),
            path: "/orders".to_owned(),
            method: Some(HttpMethod::Get),
            check: CoverageCheck::Any,
        }],
        ..shop_spec(BASE).policy
    };
    let found = validate(good_plan(), &policy).expect_err("no /orders test");
    assert_eq!(
        found,
        [Violation {
            path: "/items".to_owned(),
            message: "no test covers the orders listing: add a GET request to /orders".to_owned(),
        }]
    );
    let relaxed = Policy {
        coverage: Vec::new(),
        ..shop_spec(BASE).policy
    };
    assert!(validate(good_plan(), &relaxed).is_ok());
}

#[test]
fn empty_allowlist_rejects_every_target() {
    let policy = Policy {
        allowed_base_urls: Vec::new(),
        coverage: Vec::new(),
        ..shop_spec(BASE).policy
    };
    let found = validate(good_plan(), &policy).expect_err("nothing allowed");
    assert_eq!(found.len(), 5);
    assert!(
        found[0].message.contains("none are configured"),
        "{found:#?}"
    );
}

#[test]
fn all_violations_are_reported_not_only_the_first() {
    let mut plan = good_plan();
    plan.plan_id = String::new();
    plan.items[0].priority = 3;
    plan.items[1].test_id = "t1-checkout-valid".to_owned();
    plan.items[1].pass_criteria = "status in [400 422]".to_owned();
    plan.items[2].target.url = "http://admin@127.0.0.1:8081/%2e%2e/health".to_owned();
    plan.items[3].target.url = "https://evil.example/catalog".to_owned();
    plan.items[3]
        .target
        .headers
        .insert("Transfer-Encoding".to_owned(), "chunked".to_owned());
    plan.items[4]
        .target
        .headers
        .insert("x-evil".to_owned(), "1\r\nHost: evil".to_owned());
    plan.items[4].name = String::new();
    let rendered: Vec<String> = violations(plan).iter().map(ToString::to_string).collect();
    insta::assert_snapshot!(rendered.join("\n"));
}

#[test]
fn a_declared_secret_in_a_header_or_body_is_accepted() {
    let mut plan = good_plan();
    plan.items[4].target.headers.insert(
        "authorization".to_owned(),
        "Bearer ${env:SHOP_TOKEN}".to_owned(),
    );
    plan.items[0]
        .target
        .body_json
        .insert("coupon".to_owned(), "${env:SHOP_TOKEN}".into());
    let mut policy = shop_spec(BASE).policy;
    policy.secrets.push("SHOP_TOKEN".to_owned());
    assert!(validate(plan, &policy).is_ok());
}

#[test]
fn an_undeclared_secret_is_rejected_where_it_is_referenced() {
    let mut plan = good_plan();
    plan.items[4].target.headers.insert(
        "authorization".to_owned(),
        "Bearer ${env:AWS_SECRET_ACCESS_KEY}".to_owned(),
    );
    assert_single(
        plan,
        "/items/4/target/headers/authorization",
        "secret `AWS_SECRET_ACCESS_KEY` is not one the service declares",
    );
    let mut plan = good_plan();
    plan.items[0]
        .target
        .body_json
        .insert("nested".to_owned(), json!({"list": ["${env:HOME_TOKEN}"]}));
    assert_single(plan, "/items/0/target/body_json", "HOME_TOKEN");
}

#[test]
fn a_secret_in_a_url_is_rejected_even_when_declared() {
    let mut plan = good_plan();
    plan.items[2].target.url = format!("{BASE}/health?token=${{env:SHOP_TOKEN}}");
    let mut policy = shop_spec(BASE).policy;
    policy.secrets.push("SHOP_TOKEN".to_owned());
    let violations = validate(plan, &policy).expect_err("rejected");
    assert!(
        violations
            .iter()
            .any(|v| v.path == "/items/2/target/url"
                && v.message.contains("may not reference a secret")),
        "{violations:#?}"
    );
}
