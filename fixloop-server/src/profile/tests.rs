//! Tests of profile parsing: the built-in demo profile, and one test per kind of bad profile.

use std::collections::HashMap;

use fixloop_adapters::prometheus::parse_template;
use fixloop_core::validate;

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
    let mut engine = EngineConfig::short_windows(orders.spec.clone(), "t");
    let min_samples = engine.min_samples;
    orders.apply_thresholds(&mut engine);
    assert!((engine.trigger_error_rate - 0.10).abs() < 1e-12);
    assert!((engine.recovery_error_rate - 0.02).abs() < 1e-12);
    assert_eq!(
        engine.min_samples, min_samples,
        "unset keys keep the mode's default"
    );
    // A profile's polling interval brings what the core derives from it (a third of it to confirm a breach).
    let text = GOOD.replacen(
        "recovery_error_percent = 2",
        "recovery_error_percent = 2\npoll_interval_secs = 6",
        1,
    );
    let profile = Profile::parse(&text, "good.toml", Secrets::From(&env)).expect("valid");
    let mut engine = EngineConfig::seed(profile.services[0].spec.clone(), "t");
    profile.services[0].apply_thresholds(&mut engine);
    assert_eq!(engine.poll_interval, Duration::from_secs(6));
    assert_eq!(engine.confirm_delay, Duration::from_secs(2));
    assert!(engine.signal_max_age >= Duration::from_secs(30));
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
fn a_metrics_url_outside_the_base_path_must_be_on_the_base_urls_origin() {
    let with = |metrics_path: &str| {
        GOOD.replacen(
            "source = \"scrape\"\n",
            &format!("source = \"scrape\"\nmetrics_path = \"{metrics_path}\"\n"),
            1,
        )
    };
    // The orders service is at http://127.0.0.1:9100: its metrics may be anywhere on that origin.
    for ok in [
        "/internal/metrics",
        "http://127.0.0.1:9100/metrics",
        "HTTP://127.0.0.1:9100/actuator/prometheus",
    ] {
        assert_eq!(problems(&with(ok)), Vec::<String>::new(), "{ok}");
    }
    for (bad, reason) in [
        (
            "http://127.0.0.1:9101/metrics",
            "not on the base URL's origin",
        ),
        (
            "https://127.0.0.1:9100/metrics",
            "not on the base URL's origin",
        ),
        (
            "http://169.254.169.254/metrics",
            "not on the base URL's origin",
        ),
        ("http://user:pw@127.0.0.1:9100/metrics", "credentials"),
        ("http://127.0.0.1:9100/metrics?x=1", "a query"),
        ("metrics", "must start with `/`"),
    ] {
        assert_problem(&with(bad), "service[0].signals.metrics_path", reason);
    }
    let profile = Profile::parse(
        &with("http://127.0.0.1:9100/metrics"),
        "test.toml",
        Secrets::From(&env(&[("ORDERS_TOKEN", "t")])),
    )
    .expect("valid");
    let SignalsFile::Scrape(scrape) = &profile.services[0].signals else {
        panic!("a scrape source")
    };
    let config = crate::runtime::ports::scrape_config("http://127.0.0.1:9100/api", scrape);
    assert_eq!(config.metrics_url(), "http://127.0.0.1:9100/metrics");
}

#[test]
fn placeholder_typos_are_rejected_naming_the_typo() {
    for typo in [
        "${ENV:ORDERS_TOKEN}",
        "${Env:ORDERS_TOKEN}",
        "${ORDERS_TOKEN}",
        "${env: ORDERS_TOKEN}",
        "$ORDERS_TOKEN",
        "$X",
        "{env:ORDERS_TOKEN}",
        "${{ env.ORDERS_TOKEN }}",
    ] {
        let text = GOOD.replacen("${env:ORDERS_TOKEN}", typo, 1);
        let found = problems(&text);
        assert!(
            found.iter().any(|problem| problem
                .starts_with("service[0].journeys[1].headers.authorization")
                && problem.contains("${env:NAME}")),
            "{typo}: {found:#?}"
        );
    }
    // In a body string too, and the message quotes the typo.
    let text = GOOD.replacen("count = 1 }", "count = 1, note = \"${ENV:X}\" }", 1);
    assert_problem(&text, "service[0].journeys[2].body", "`${ENV:X}`");
    // Dollar signs that are not placeholders stay ordinary text.
    for text in [
        "costs $5",
        "$ref",
        "a $ sign",
        "${env:ORDERS_TOKEN} and $4.50",
    ] {
        let profile = GOOD.replacen(
            "count = 1 }",
            &format!("count = 1, note = \"{text}\" }}"),
            1,
        );
        assert_eq!(problems(&profile), Vec::<String>::new(), "{text}");
    }
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

#[test]
fn promql_that_does_not_parse_is_rejected_naming_the_field_and_the_parser_message() {
    let prometheus = r#"source = "prometheus"
url = "http://127.0.0.1:9090"
error_ratio_query = 'sum(rate(http_requests_total{code=~"5.."}{range})) / sum(rate(http_requests_total{range}))'
p95_ms_query = 'histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{range}))) * 1000'
requests_query = 'sum(increase(http_requests_total{range})'
top_error_query = 'topk(1, sum by (code, handler) (increase(http_requests_total{code=~"5.."}{range})))'"#;
    let text = GOOD.replacen(
        "source = \"scrape\"\nrequests_metric = \"http_requests_total\"\nduration_metric = \"http_request_duration_seconds\"",
        prometheus,
        1,
    );
    let found = problems(&text);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with("service[0].signals.requests_query: is not PromQL: "),
        "{found:#?}"
    );
    let parser_message =
        parse_template("sum(increase(http_requests_total{range})").expect_err("unbalanced");
    assert!(found[0].ends_with(&parser_message), "{found:#?}");
    // Balanced, it parses: the placeholders are replaced before parsing.
    let text = text.replacen(
        "sum(increase(http_requests_total{range})'",
        "sum(increase(http_requests_total{range}))'",
        1,
    );
    assert_eq!(problems(&text), Vec::<String>::new());
}

#[test]
fn a_get_journey_naming_a_side_effect_needs_safe_true() {
    let unsafe_path = GOOD.replacen("path = \"/about\"", "path = \"/apps.uninstall\"", 1);
    assert_ne!(unsafe_path, GOOD);
    assert_problem(
        &unsafe_path,
        "service[1].journeys[2].safe",
        "this GET journey's path names a side effect (`uninstall`)",
    );
    let unsafe_id = GOOD.replacen("id = \"c\"", "id = \"cache-purge\"", 1);
    assert_problem(
        &unsafe_id,
        "service[1].journeys[2].safe",
        "id names a side effect (`purge`)",
    );
    // Saying it is safe makes it usable; a look-alike never needed it.
    let marked = unsafe_path.replacen(
        "path = \"/apps.uninstall\"",
        "path = \"/apps.uninstall\"\nsafe = true",
        1,
    );
    assert_eq!(problems(&marked), Vec::<String>::new());
    let look_alike = GOOD.replacen("path = \"/about\"", "path = \"/resetting-docs\"", 1);
    assert_eq!(problems(&look_alike), Vec::<String>::new());
}

#[test]
fn an_inactive_journey_written_by_init_is_usable_once_uncommented_with_safe_true() {
    let document = include_str!("../../tests/fixtures/openapi/openapi30-unsafe-gets.yaml");
    let output = init::init_from_openapi(
        document,
        &init::InitOptions {
            source_name: "unsafe.yaml".to_owned(),
            ..init::InitOptions::default()
        },
    )
    .expect("a profile");
    let start = output
        .toml
        .find("# [[service.journeys]]\n# id = \"purge-cache\"")
        .expect("the purge journey is written commented out");
    let block: String = output.toml[start..]
        .lines()
        .take_while(|line| line.starts_with("# ") || *line == "#")
        .map(|line| format!("{}\n", line.strip_prefix("# ").unwrap_or("")))
        .collect();
    let uncommented = format!("{}\n{block}", output.toml);
    assert_problem(
        &uncommented,
        "service[0].journeys[6].safe",
        "names a side effect (`purge`)",
    );
    let marked = format!("{uncommented}safe = true\n");
    assert_eq!(problems(&marked), Vec::<String>::new());
}

#[test]
fn a_profile_carries_the_sha256_of_its_text() {
    assert_eq!(
        sha256_hex(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let profile = Profile::parse(GOOD, "test", Secrets::Unresolved).expect("valid");
    assert_eq!(profile.sha256, sha256_hex(GOOD.as_bytes()));
    let edited = format!("{GOOD}\n# a comment\n");
    let other = Profile::parse(&edited, "test", Secrets::Unresolved).expect("valid");
    assert_ne!(other.sha256, profile.sha256, "any edit changes the digest");
}

#[test]
fn a_ci_section_parses_with_its_token_resolved_and_never_printed() {
    let text = format!(
        "{GOOD}\n[ci]\nprovider = \"github\"\ntoken = \"${{env:GITHUB_TOKEN}}\"\neligible = [\"infrastructure\", \"network\"]\nmax_attempts = 3\n\n[ci.repositories]\n\"acme/shop\" = \"acme/shop\"\n"
    );
    let env = env(&[("ORDERS_TOKEN", "t"), ("GITHUB_TOKEN", "ghp-secret-value")]);
    let profile = Profile::parse(&text, "ci.toml", Secrets::From(&env)).expect("valid");
    let ci = profile.ci.as_ref().expect("a ci section");
    assert_eq!(ci.base_url, "https://api.github.com");
    assert_eq!(ci.token.expose(), "ghp-secret-value");
    assert_eq!(ci.policy.max_attempts, 3);
    assert_eq!(ci.repositories["acme/shop"], "acme/shop");
    assert!(!format!("{profile:?}").contains("ghp-secret-value"));
    // Without it, a profile has no self-heal.
    let plain = Profile::parse(GOOD, "good.toml", Secrets::From(&env)).expect("valid");
    assert_eq!(plain.ci, None);
}

#[test]
fn a_bad_ci_section_is_rejected_with_its_paths() {
    let text = format!(
        "{GOOD}\n[ci]\nprovider = \"gitlab\"\ntoken = \"glpat-literal\"\neligible = [\"unknown\"]\nrepositories = {{}}\n"
    );
    assert_problem(&text, "ci.token", "${env:NAME}");
    assert_problem(&text, "ci.eligible[0]", "never eligible");
    assert_problem(&text, "ci.repositories", "list the repositories");
    assert!(
        problems(&text)
            .iter()
            .all(|problem| !problem.contains("glpat-literal"))
    );
    let unknown_provider = format!(
        "{GOOD}\n[ci]\nprovider = \"jenkins\"\ntoken = \"${{env:X}}\"\neligible = [\"network\"]\nrepositories = {{}}\n"
    );
    assert_problem(&unknown_provider, "ci.provider", "jenkins");
}

/// [`GOOD`] with `[[notify]]` tables after it.
fn with_notify(tables: &str) -> String {
    format!("{GOOD}\n{tables}")
}

const NOTIFY: &str = r#"
[[notify]]
name = "ops"
type = "webhook"
url = "${env:OPS_HOOK_URL}"
signing_secret = "${env:OPS_HOOK_SECRET}"

[[notify]]
name = "chat"
type = "slack"
url = "https://hooks.example.com/services/T0/B0/x"

[[notify]]
name = "pager"
type = "pagerduty"
routing_key = "${env:PD_KEY}"
"#;

#[test]
fn notify_sinks_parse_with_their_secrets_resolved_and_never_printed() {
    let env = env(&[
        ("ORDERS_TOKEN", "s3cr3t-value"),
        (
            "OPS_HOOK_URL",
            "https://ops.example.com/hook?token=hook-s3cr3t",
        ),
        ("OPS_HOOK_SECRET", "whsec_c2VjcmV0"),
        ("PD_KEY", "pd-s3cr3t-key"),
    ]);
    let profile =
        Profile::parse(&with_notify(NOTIFY), "notify.toml", Secrets::From(&env)).expect("valid");
    let names: Vec<&str> = profile
        .notify
        .iter()
        .map(|sink| sink.name.as_str())
        .collect();
    assert_eq!(names, ["ops", "chat", "pager"]);
    match &profile.notify[0].target {
        notify::NotifyTarget::Webhook {
            url,
            signing_secret,
        } => {
            assert_eq!(
                url.expose(),
                "https://ops.example.com/hook?token=hook-s3cr3t"
            );
            assert_eq!(
                signing_secret.as_ref().map(Secret::expose),
                Some("whsec_c2VjcmV0")
            );
        }
        other => panic!("not a webhook: {other:?}"),
    }
    match &profile.notify[2].target {
        notify::NotifyTarget::PagerDuty { url, routing_key } => {
            assert_eq!(url, &None);
            assert_eq!(routing_key.expose(), "pd-s3cr3t-key");
        }
        other => panic!("not pagerduty: {other:?}"),
    }
    let printed = format!("{profile:?}");
    for secret in ["hook-s3cr3t", "c2VjcmV0", "pd-s3cr3t-key"] {
        assert!(!printed.contains(secret), "{secret} printed");
    }
    // Without the environment (`fixloop plan`), the references are kept as written.
    let unresolved =
        Profile::parse(&with_notify(NOTIFY), "notify.toml", Secrets::Unresolved).expect("valid");
    assert_eq!(unresolved.notify.len(), 3);
}

#[test]
fn bad_notify_sinks_are_rejected_with_their_path() {
    let env = env(&[("ORDERS_TOKEN", "s3cr3t-value")]);
    let problems = |tables: &str| -> Vec<String> {
        match Profile::parse(&with_notify(tables), "test.toml", Secrets::From(&env)) {
            Ok(_) => Vec::new(),
            Err(error) => error.problems.iter().map(ToString::to_string).collect(),
        }
    };
    let has = |found: &[String], needle: &str| {
        assert!(
            found.iter().any(|problem| problem.contains(needle)),
            "{needle} not in {found:#?}"
        );
    };
    let found = problems(NOTIFY);
    has(&found, "notify[0].url: secret OPS_HOOK_URL is not set");
    has(&found, "notify[2].routing_key: secret PD_KEY is not set");
    let found = problems(
        r#"
[[notify]]
name = "Ops Team"
type = "webhook"

[[notify]]
name = "meta"
type = "webhook"
url = "http://169.254.169.254/latest"
routing_key = "x"

[[notify]]
name = "meta"
type = "slack"
url = "ftp://hooks.example.com/x"

[[notify]]
name = "pd"
type = "pagerduty"
url = "https://user:pw@events.example.com/v2/enqueue"
"#,
    );
    has(&found, "notify[0].name: `Ops Team` is not a sink name");
    has(&found, "notify[0].url: a Webhook sink needs `url`");
    has(
        &found,
        "notify[1].routing_key: a Webhook sink has no `routing_key`",
    );
    has(&found, "notify[2].name: sink name `meta` is used twice");
    has(
        &found,
        "notify[3].routing_key: a Pagerduty sink needs `routing_key`",
    );
    let found = problems(
        r#"
[[notify]]
name = "meta"
type = "webhook"
url = "http://169.254.169.254/latest"

[[notify]]
name = "ftp"
type = "slack"
url = "ftp://hooks.example.com/x"

[[notify]]
name = "typo"
type = "slack"
url = "${ENV:HOOK}"
"#,
    );
    has(
        &found,
        "notify[0].url: a link-local or cloud metadata address",
    );
    has(
        &found,
        "notify[1].url: must be an absolute http or https URL",
    );
    has(
        &found,
        "notify[2].url: a secret reference must look like ${env:NAME}",
    );
    assert!(
        problems("[[notify]]\nname = \"x\"\ntype = \"email\"\n")
            .iter()
            .any(|problem| problem.contains("unknown variant")),
        "an unknown sink type is refused"
    );
}

#[test]
fn the_remediating_demo_profile_adds_a_safe_flag_step_then_a_risky_restart_at_the_shops_address() {
    use fixloop_core::remediation::{RemediationMode, RiskTier};
    let plain = demo_profile("http://127.0.0.1:8001");
    assert!(plain.actions.is_empty(), "without --remediate: unchanged");
    assert!(plain.remediation.strategies.is_empty());
    let shop = "http://127.0.0.1:40123";
    let demo = demo_profile_remediating(shop, None, None);
    assert_eq!(demo.spec.base_url, shop);
    assert!(
        demo.actions
            .iter()
            .all(|action| !action.settings.contains_key("headers")),
        "the shop's admin endpoints are open without API tokens: no header"
    );
    let token = Secret::new("shop-admin-token");
    let guarded = demo_profile_remediating(shop, None, Some(&token));
    assert_eq!(guarded.action_secrets.get(DEMO_ADMIN_SECRET), Some(&token));
    assert!(
        guarded
            .actions
            .iter()
            .all(|action| action.settings["headers"]["Authorization"]
                == "Bearer ${env:FIXLOOP_DEMO_ADMIN_TOKEN}"),
        "{:?}",
        guarded.actions
    );
    assert_eq!(demo.remediation.mode, RemediationMode::Auto);
    let urls: Vec<&str> = demo
        .actions
        .iter()
        .map(|action| action.settings["url"].as_str().unwrap())
        .collect();
    assert_eq!(
        urls,
        [
            "http://127.0.0.1:40123/admin/flags/payment_provider",
            "http://127.0.0.1:40123/admin/restart"
        ]
    );
    let steps = &demo.remediation.strategies[0].steps;
    let tiers: Vec<(&str, RiskTier)> = steps
        .iter()
        .map(|step| {
            (
                step.action.as_str(),
                step.tier_in(demo.remediation.environment()),
            )
        })
        .collect();
    assert_eq!(
        tiers,
        [
            ("payment-provider-off", RiskTier::Safe),
            ("restart-shop", RiskTier::Risky)
        ]
    );
    // `--environment production`: even the flag step waits for an operator.
    let production = demo_profile_remediating(shop, Some("production"), None);
    assert_eq!(production.remediation.environment(), Some("production"));
    let tiers: Vec<RiskTier> = production.remediation.strategies[0]
        .steps
        .iter()
        .map(|step| step.tier_in(production.remediation.environment()))
        .collect();
    assert_eq!(tiers, [RiskTier::Risky, RiskTier::Risky]);
}
