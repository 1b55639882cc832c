//! Properties of the validator: no URL outside the allowlist is ever accepted, the rule plan always is, and no
//! input makes it panic.

use fixloop_contract::chrono::{TimeZone, Utc};
use fixloop_contract::{Plan, Signal};
use fixloop_core::{IncidentId, PlanContext, PlanId, Policy, rule_plan, validate};
use proptest::prelude::*;

use crate::shop::{shop_context, shop_spec};

const BASE: &str = "http://127.0.0.1:8081";

/// The seed policy without coverage rules, so that moving one target elsewhere only tests the URL checks.
fn url_policy() -> Policy {
    Policy {
        coverage: Vec::new(),
        ..shop_spec(BASE).policy
    }
}

fn plan_for(base_url: &str) -> Plan {
    let context = PlanContext {
        incident_id: IncidentId::new("inc-1"),
        service: "demo-shop".to_owned(),
        base_url: base_url.to_owned(),
        signal: Signal {
            error_rate_5m: 20.0,
            p95_latency_ms_5m: 300.0,
            top_error: None,
        },
        title: "Checkout failing".to_owned(),
        ..shop_context(base_url)
    };
    let now = Utc.with_ymd_and_hms(2026, 11, 21, 10, 15, 0).unwrap();
    rule_plan(&context, PlanId::new("plan-1"), now)
}

/// URLs assembled from parts, most of them hostile.
fn hostile_url() -> impl Strategy<Value = String> {
    let scheme = prop::sample::select(vec![
        "http://",
        "https://",
        "HTTP://",
        "ftp://",
        "file://",
        "javascript:",
        "",
        "//",
        "http:/",
    ]);
    let userinfo =
        prop::sample::select(vec!["", "", "user@", "user:pw@", "127.0.0.1:8081@", "%40@"]);
    let host = prop::sample::select(vec![
        "127.0.0.1",
        "127.0.0.1",
        "evil.example",
        "127.0.0.2",
        "localhost",
        "127.0.0.1.evil.example",
        "[::1]",
        "127.0.0.1%2e",
        "0x7f.0.0.1",
    ]);
    let port = prop::sample::select(vec![
        "", ":8081", ":8081", ":8082", ":80", ":0", ":65536", ":", ":8081:80",
    ]);
    let segment = prop::sample::select(vec![
        "health",
        "checkout",
        "..",
        ".",
        "%2e%2e",
        "%2E.",
        "%2f",
        "%5c",
        "%252e",
        "",
        "a b",
        "\\",
        "#x",
        "..;",
        "..;x",
        "a;b",
        "%00",
        "%",
        "é",
        "@evil",
        "x?y=..%2f",
    ]);
    let query = prop::sample::select(vec!["", "", "?a=1", "?next=http://evil.example/", "#frag"]);
    (
        scheme,
        userinfo,
        host,
        port,
        prop::collection::vec(segment, 0..4),
        query,
    )
        .prop_map(|(scheme, userinfo, host, port, segments, query)| {
            let path: String = segments.iter().map(|s| format!("/{s}")).collect();
            format!("{scheme}{userinfo}{host}{port}{path}{query}")
        })
}

/// An independent, deliberately simple oracle: what an accepted URL must look like.
fn is_inside_allowlist(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    let Some(rest) = lower.strip_prefix("http://127.0.0.1:8081") else {
        return false;
    };
    let path = rest.split('?').next().unwrap_or_default();
    // The exact prefix leaves no room for userinfo, another host or another port; `@` in the path is harmless.
    (rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'))
        && !lower.contains('\\')
        && !lower.contains('#')
        && !lower
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || !c.is_ascii())
        && !["%2e", "%2f", "%5c", "%25", "%00"]
            .iter()
            .any(|bad| path.contains(bad))
        && !path.split('/').any(|segment| {
            let name = segment.split(';').next().unwrap_or_default();
            name == ".." || name == "."
        })
}

fn base_url() -> impl Strategy<Value = String> {
    let host = prop_oneof![
        "[a-z][a-z0-9-]{0,10}(\\.[a-z]{1,6}){0,2}",
        (any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>())
            .prop_map(|(a, b, c, d)| format!("{a}.{b}.{c}.{d}")),
    ];
    (
        prop::sample::select(vec!["http", "https"]),
        host,
        prop::option::of(1u16..=65535),
        prop::collection::vec("[a-z0-9_-]{1,8}", 0..3),
        any::<bool>(),
    )
        .prop_map(|(scheme, host, port, path, trailing_slash)| {
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            let path: String = path.iter().map(|s| format!("/{s}")).collect();
            let slash = if trailing_slash { "/" } else { "" };
            format!("{scheme}://{host}{port}{path}{slash}")
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn no_url_outside_the_allowlist_is_ever_accepted(url in hostile_url()) {
        let mut plan = plan_for(BASE);
        plan.items[2].target.url = url.clone();
        let accepted = validate(plan, &url_policy()).is_ok();
        prop_assert!(!accepted || is_inside_allowlist(&url), "accepted {:?}", url);
    }

    #[test]
    fn arbitrary_strings_as_urls_are_only_accepted_inside_the_allowlist(url in "\\PC{0,60}") {
        let mut plan = plan_for(BASE);
        plan.items[2].target.url = url.clone();
        let accepted = validate(plan, &url_policy()).is_ok();
        prop_assert!(!accepted || is_inside_allowlist(&url), "accepted {:?}", url);
    }

    #[test]
    fn plain_paths_under_the_base_are_accepted(segments in prop::collection::vec("[A-Za-z0-9_-]{1,10}", 0..4)) {
        let mut plan = plan_for(BASE);
        let path: String = segments.iter().map(|s| format!("/{s}")).collect();
        plan.items[2].target.url = format!("{BASE}{path}");
        prop_assert!(validate(plan, &url_policy()).is_ok());
    }

    #[test]
    fn rule_plan_is_always_accepted(base in base_url()) {
        let plan = plan_for(&base);
        let policy = shop_spec(base.trim_end_matches('/')).policy;
        let result = validate(plan, &policy);
        prop_assert!(result.is_ok(), "{}: {:?}", base, result.err());
    }

    #[test]
    fn validator_never_panics_on_arbitrary_fields(
        test_id in "\\PC{0,20}",
        name in "\\PC{0,20}",
        criteria in "\\PC{0,40}",
        header in ("\\PC{0,12}", "\\PC{0,12}"),
        priority in any::<u32>(),
        url in "\\PC{0,40}",
    ) {
        let mut plan = plan_for(BASE);
        plan.items[3].test_id = test_id;
        plan.items[3].name = name;
        plan.items[3].pass_criteria = criteria;
        plan.items[3].priority = priority;
        plan.items[3].target.url = url;
        plan.items[3].target.headers.insert(header.0, header.1);
        if let Err(violations) = validate(plan, &shop_spec(BASE).policy) {
            prop_assert!(!violations.is_empty());
            for violation in violations {
                prop_assert!(violation.path.is_empty() || violation.path.starts_with('/'));
                prop_assert!(!violation.message.contains('\n'), "{}", violation.message);
            }
        }
    }
}
