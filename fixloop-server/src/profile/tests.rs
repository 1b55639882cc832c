//! Tests of profile parsing: the built-in demo profile, and one test per kind of bad profile.

use std::collections::HashMap;

use super::*;

// The core's shop fixture: the demo profile must become exactly this spec, so the core's golden plans are the demo's.
#[path = "../../../fixloop-core/tests/fixtures/shop.rs"]
#[allow(unreachable_pub, dead_code)]
mod shop;

/// A valid two-service profile: an orders service with a bearer secret, and a synthetic-only one.
const GOOD: &str = r#"
[[service]]
name = "orders"
description = "Takes and lists orders."
base_url = "http://127.0.0.1:9100"
alert_labels = { service = "orders" }

[service.signals]
source = "scrape"
requests_metric = "http_requests_total"
duration_metric = "http_request_duration_seconds"

[service.thresholds]
trigger_error_percent = 10
recovery_error_percent = 2

[[service.journeys]]
id = "health"
name = "Health"
path = "/healthz"
pass_criteria = "status == 200"
priority = 1

[[service.journeys]]
id = "list"
name = "List orders"
path = "/v1/orders?limit=1"
headers = { authorization = "Bearer ${env:ORDERS_TOKEN}" }
pass_criteria = "status == 200"
priority = 2

[[service.journeys]]
id = "create"
name = "Create an order"
method = "POST"
path = "/v1/orders"
headers = { authorization = "Bearer ${env:ORDERS_TOKEN}" }
body = { item = "x", count = 1 }
pass_criteria = "status == 201"
priority = 3

[[service.journeys]]
id = "create-invalid"
name = "Reject an empty order"
method = "POST"
path = "/v1/orders"
headers = { authorization = "Bearer ${env:ORDERS_TOKEN}" }
body = { count = 0 }
pass_criteria = "status == 422"
priority = 4

[[service.journeys]]
id = "unauthenticated"
name = "Reject a request without a token"
path = "/v1/orders"
pass_criteria = "status == 401"
priority = 5

[[service.coverage]]
name = "negative order test"
path = "/v1/orders"
method = "POST"
check = "expects_client_error"

[[service]]
name = "status-page"
base_url = "https://status.example.test"

[[service.journeys]]
id = "a"
name = "Home"
path = "/"
pass_criteria = "status == 200"

[[service.journeys]]
id = "b"
name = "Feed"
path = "/feed"
pass_criteria = "status == 200"

[[service.journeys]]
id = "c"
name = "About"
path = "/about"
pass_criteria = "status == 200"

[[service.journeys]]
id = "d"
name = "History"
path = "/history"
pass_criteria = "status == 200"

[[service.journeys]]
id = "e"
name = "Subscribe"
path = "/subscribe"
pass_criteria = "status in [200, 204]"
"#;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

/// The problems of `text` (with `ORDERS_TOKEN` set), as `path: message` lines.
fn problems(text: &str) -> Vec<String> {
    let env = env(&[("ORDERS_TOKEN", "s3cr3t-value")]);
    match Profile::parse(text, "test.toml", Secrets::From(&env)) {
        Ok(_) => Vec::new(),
        Err(error) => {
            assert_eq!(error.origin, "test.toml");
            error.problems.iter().map(ToString::to_string).collect()
        }
    }
}

fn assert_problem(text: &str, path: &str, needle: &str) {
    let found = problems(text);
    assert!(
        found
            .iter()
            .any(|problem| problem.starts_with(path) && problem.contains(needle)),
        "expected a problem at {path} containing {needle:?}, found {found:#?}"
    );
}

#[test]
fn the_demo_profile_is_the_shop_the_core_tests_plan_for() {
    let demo = demo_profile("http://127.0.0.1:8001");
    assert_eq!(demo.spec, shop::shop_spec("http://127.0.0.1:8001"));
    assert_eq!(
        demo.alert_labels.get("service").map(String::as_str),
        Some("demo-checkout")
    );
    assert!(matches!(demo.signals, SignalsFile::Scrape(_)));
}

#[test]
fn a_good_profile_parses_with_secrets_resolved_and_never_printed() {
    let env = env(&[("ORDERS_TOKEN", "s3cr3t-value")]);
    let profile = Profile::parse(GOOD, "good.toml", Secrets::From(&env)).expect("valid");
    assert_eq!(profile.services.len(), 2);
    let orders = profile.service("orders").expect("orders");
    assert_eq!(orders.spec.policy.secrets, ["ORDERS_TOKEN"]);
    assert_eq!(
        orders.secrets.get("ORDERS_TOKEN").map(Secret::expose),
        Some("s3cr3t-value")
    );
    // The journeys keep the placeholder; the value never leaves the secret map.
    assert_eq!(
        orders.spec.journeys[1].headers["authorization"],
        "Bearer ${env:ORDERS_TOKEN}"
    );
    let printed = format!("{profile:?}");
    assert!(!printed.contains("s3cr3t-value"), "{printed}");
    let status_page = profile.service("status-page").expect("status page");
    assert!(matches!(status_page.signals, SignalsFile::Synthetic(_)));
    assert_eq!(status_page.spec.journeys[4].what_it_checks, "Subscribe");
}

#[test]
fn thresholds_in_percent_become_the_engines_ratios() {
    let env = env(&[("ORDERS_TOKEN", "t")]);
    let profile = Profile::parse(GOOD, "good.toml", Secrets::From(&env)).expect("valid");
    let orders = profile.service("orders").expect("orders");
    let mut engine = EngineConfig::demo(orders.spec.clone(), "t");
    let min_samples = engine.min_samples;
    orders.apply_thresholds(&mut engine);
    assert!((engine.trigger_error_rate - 0.10).abs() < 1e-12);
    assert!((engine.recovery_error_rate - 0.02).abs() < 1e-12);
    assert_eq!(
        engine.min_samples, min_samples,
        "unset keys keep the mode's default"
    );
}

#[test]
fn the_rule_plan_puts_the_journey_on_the_failing_route_first() {
    let profile = Profile::parse(GOOD, "good.toml", Secrets::Unresolved).expect("valid");
    let orders = profile.service("orders").expect("orders");
    let plan = orders.rule_plan(Some("GET /v1/orders -> 503 database down"));
    let ids: Vec<&str> = plan
        .items
        .iter()
        .map(|item| item.test_id.as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "list",
            "create",
            "create-invalid",
            "unauthenticated",
            "health"
        ]
    );
    assert!(validate(plan, &orders.spec.policy).is_ok());
    // Without a top error, the priority hints decide (the coverage rule's journey is picked first).
    let plan = orders.rule_plan(None);
    let ids: Vec<&str> = plan
        .items
        .iter()
        .map(|item| item.test_id.as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "health",
            "list",
            "create",
            "create-invalid",
            "unauthenticated"
        ]
    );
    let plan = orders.rule_plan(Some("GET /healthz -> 500"));
    assert_eq!(plan.items[0].test_id, "health");
}

#[test]
fn unknown_keys_are_rejected_with_their_path() {
    let text = GOOD.replacen("method = \"POST\"", "methd = \"POST\"", 1);
    assert_problem(
        &text,
        "service[0].journeys[2].methd",
        "unknown field `methd`",
    );
    let text = GOOD.replacen("trigger_error_percent", "trigger_error_rate", 1);
    assert_problem(
        &text,
        "service[0].thresholds.trigger_error_rate",
        "unknown field",
    );
}

#[test]
fn bad_urls_are_rejected() {
    let text = GOOD.replacen("http://127.0.0.1:9100", "ftp://127.0.0.1:9100", 1);
    assert_problem(&text, "service[0].base_url", "absolute http or https URL");
    let text = GOOD.replacen("http://127.0.0.1:9100", "not a url", 1);
    assert_problem(&text, "service[0].base_url", "is not a URL");
    let text = GOOD.replacen("path = \"/healthz\"", "path = \"healthz\"", 1);
    assert_problem(&text, "service[0].journeys[0].path", "must start with `/`");
}

/// Regression: `profile check` accepted cloud metadata addresses as targets (a plan could then read credentials).
#[test]
fn link_local_and_metadata_targets_are_refused_unless_allowed() {
    for url in [
        "http://169.254.169.254",
        "http://169.254.169.254/latest",
        "http://0xA9FEA9FE",
        "http://169.254.1.1:8080",
        "http://[fd00:ec2::254]",
        "http://[fe80::1]:80",
        "http://[::ffff:169.254.169.254]",
        "http://metadata.google.internal",
        "http://METADATA.google.internal.",
        "http://metadata",
    ] {
        let text = GOOD.replacen("http://127.0.0.1:9100", url, 1);
        assert_problem(&text, "service[0].base_url", "cloud metadata address");
        let text = GOOD.replacen(
            "base_url = \"http://127.0.0.1:9100\"",
            &format!("base_url = \"http://127.0.0.1:9100\"\nallowed_base_urls = [\"{url}\"]"),
            1,
        );
        assert_problem(
            &text,
            "service[0].allowed_base_urls[0]",
            "allow_metadata_targets",
        );
        let allowed = GOOD.replacen(
            "base_url = \"http://127.0.0.1:9100\"",
            &format!("base_url = \"{url}\"\nallow_metadata_targets = true"),
            1,
        );
        assert_eq!(problems(&allowed), Vec::<String>::new(), "{url}");
    }
    for url in [
        "http://169.253.1.1",
        "http://10.0.0.1",
        "http://metadata.example.com",
        "http://[fd00::1]",
    ] {
        let text = GOOD.replacen("http://127.0.0.1:9100", url, 1);
        assert_eq!(problems(&text), Vec::<String>::new(), "{url}");
    }
}

#[test]
fn bad_criteria_are_rejected_with_the_column() {
    let text = GOOD.replacen(
        "pass_criteria = \"status == 201\"",
        "pass_criteria = \"status = 201\"",
        1,
    );
    assert_problem(&text, "service[0].journeys[2].pass_criteria", "column");
}

#[test]
fn a_missing_secret_is_rejected_where_it_is_first_used() {
    let found = match Profile::parse(GOOD, "test.toml", Secrets::From(&HashMap::new())) {
        Ok(_) => panic!("a missing secret must be rejected"),
        Err(error) => error.problems,
    };
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(
        found[0].path,
        "service[0].journeys[1].headers.authorization"
    );
    assert!(
        found[0].message.contains("secret ORDERS_TOKEN is not set"),
        "{found:#?}"
    );
    let text = GOOD.replacen("${env:ORDERS_TOKEN}", "${env:orders-token}", 1);
    assert_problem(
        &text,
        "service[0].journeys[1].headers.authorization",
        "${env:NAME}",
    );
}

#[test]
fn fewer_than_five_journeys_are_rejected() {
    let cut = GOOD
        .find("[[service.journeys]]\nid = \"e\"")
        .expect("journey e");
    assert_problem(
        &GOOD[..cut],
        "service[1].journeys",
        "needs at least 5 journeys",
    );
}

#[test]
fn duplicate_names_are_rejected() {
    let text = GOOD.replacen("name = \"status-page\"", "name = \"orders\"", 1);
    assert_problem(
        &text,
        "service[1].name",
        "service name `orders` is used twice",
    );
    let text = GOOD.replacen("id = \"list\"", "id = \"health\"", 1);
    assert_problem(
        &text,
        "service[0].journeys[1].id",
        "journey id `health` is used twice",
    );
}

#[test]
fn thresholds_in_the_wrong_unit_are_rejected() {
    let text = GOOD
        .replacen(
            "trigger_error_percent = 10",
            "trigger_error_percent = 0.05",
            1,
        )
        .replacen(
            "recovery_error_percent = 2",
            "recovery_error_percent = 0.01",
            1,
        );
    assert_problem(
        &text,
        "service[0].thresholds.trigger_error_percent",
        "looks like a ratio",
    );
    let text = GOOD.replacen(
        "recovery_error_percent = 2",
        "recovery_error_percent = 20",
        1,
    );
    assert_problem(
        &text,
        "service[0].thresholds.recovery_error_percent",
        "must be below",
    );
}

#[test]
fn coverage_the_journeys_cannot_satisfy_is_rejected() {
    let text = GOOD.replacen(
        "path = \"/v1/orders\"\nmethod = \"POST\"\ncheck",
        "path = \"/v2/orders\"\nmethod = \"POST\"\ncheck",
        1,
    );
    assert_problem(
        &text,
        "service[0]",
        "no test covers the negative order test",
    );
}

#[test]
fn an_empty_profile_and_syntax_errors_are_rejected() {
    assert_problem("", "service", "at least one [[service]]");
    assert_problem("[[service]\nname = 1", "", "");
    let found = problems("[[service]]\nname = 1\n");
    assert!(found[0].contains("line 2"), "{found:#?}");
}

#[test]
fn the_readme_example_profile_is_valid() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("the README");
    let section = readme
        .split("## Watch your own service")
        .nth(1)
        .expect("the README has the section");
    let example = section
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the section has a toml block");
    let env = env(&[("ORDERS_TOKEN", "t")]);
    let profile = Profile::parse(example, "README.md", Secrets::From(&env))
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(profile.services[0].spec.journeys.len(), 5);
}
