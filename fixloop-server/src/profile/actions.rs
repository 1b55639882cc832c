//! The settings of `[[service.remediation.actions]]` that carry credentials or reach beyond the service: an `http`
//! action's `headers`, a `kubernetes-rollout` action's `api_server`, `token` and `ca_file`; and the secrets they
//! reference, resolved from the environment apart from the journeys' (a plan's test may name the journeys' secrets,
//! never an action's).
//!
//! ```toml
//! [[service.remediation.actions]]
//! id = "flag-off"
//! executor = "http"
//! settings = { url = "http://127.0.0.1:8001/admin/flags/payment", headers = { Authorization = "Bearer ${env:SHOP_TOKEN}" } }
//!
//! [[service.remediation.actions]]
//! id = "restart-shop"
//! executor = "kubernetes-rollout"
//! settings = { api_server = "https://k8s.example.com:6443", token = "${env:K8S_TOKEN}", namespace = "shop", deployment = "shop" }
//! ```
//!
//! A header value is sent as written, its `${env:NAME}` references replaced with the secrets' values; a header that
//! references a secret is a secret as a whole (`[redacted]` in `Debug`, in dry-run logs and in `describe`
//! summaries). The kubernetes token must be exactly one `${env:NAME}` reference.

use std::collections::BTreeMap;

use fixloop_adapters::Secret;
use fixloop_core::service::{is_secret_name, secret_references};
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::Value;

use super::Secrets;
use super::check::Checker;
use super::remediation::ActionFile;

/// Headers an action may not set: the transport's own, and the one that marks FixLoop's traffic.
const RESERVED_HEADERS: [&str; 6] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    fixloop_adapters::TRAFFIC_HEADER,
];

/// Checks an `http` action's `headers` at `at`: a table of header names to string values, each name valid and not
/// reserved, each value a valid header value whose placeholders are well-formed `${env:NAME}` references.
pub(super) fn check_headers(checker: &mut Checker, at: &str, value: &Value) {
    let Some(headers) = value.as_object() else {
        checker.push(
            at,
            "`headers` must be a table of header names to string values",
        );
        return;
    };
    for (name, value) in headers {
        let at = format!("{at}.{name}");
        match HeaderName::from_bytes(name.as_bytes()) {
            Ok(header) if RESERVED_HEADERS.contains(&header.as_str()) => checker.push(
                &at,
                format!("`{name}` is set by FixLoop's HTTP client: an action may not set it"),
            ),
            Ok(_) => {}
            Err(_) => checker.push(
                &at,
                format!("`{name}` is not a header name: use letters, digits and -"),
            ),
        }
        let Some(text) = value.as_str() else {
            checker.push(&at, "a header value must be a string");
            continue;
        };
        if text.matches("${env:").count() != secret_references(text).count() {
            checker.push(
                &at,
                "a secret reference must look like ${env:NAME} with NAME made of A-Z, 0-9 and _",
            );
        } else if let Some(typo) = super::check::placeholder_typo(text) {
            checker.push(
                &at,
                format!(
                    "`{typo}` looks like a placeholder but is not a secret reference: write ${{env:NAME}} \
                     (lowercase `env`, NAME made of A-Z, 0-9 and _)"
                ),
            );
        } else if HeaderValue::from_str(text).is_err() {
            checker.push(
                &at,
                "a header value may hold printable characters only (no line breaks)",
            );
        }
    }
}

/// Checks a `kubernetes-rollout` action's `api_server` at `at`: an https URL with a host and no path, query or user
/// info; plain http only on a loopback host (`kubectl proxy`).
pub(super) fn check_api_server(checker: &mut Checker, at: &str, value: &Value) {
    let url = value
        .as_str()
        .and_then(|text| reqwest::Url::parse(text).ok());
    let sound = url.as_ref().is_some_and(|url| {
        let loopback = url.host_str().is_some_and(|host| {
            host == "localhost"
                || host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        });
        (url.scheme() == "https" || (url.scheme() == "http" && loopback))
            && url.host().is_some()
            && url.path() == "/"
            && url.query().is_none()
            && url.fragment().is_none()
            && url.username().is_empty()
            && url.password().is_none()
    });
    if !sound {
        checker.push(
            at,
            "`api_server` must be the API server's https URL without a path (http only on a loopback host, as \
             `kubectl proxy` serves)",
        );
    }
}

/// Checks a `kubernetes-rollout` action's `token` at `at`: exactly one `${env:NAME}` reference.
pub(super) fn check_token(checker: &mut Checker, at: &str, value: &Value) {
    if value.as_str().and_then(whole_reference).is_none() {
        checker.push(
            at,
            "the token must be a secret reference, ${env:NAME} (NAME made of A-Z, 0-9 and _), never the token itself",
        );
    }
}

/// Checks a `kubernetes-rollout` action's `ca_file` at `at`: an absolute path of a readable PEM file holding at
/// least one certificate.
pub(super) fn check_ca_file(checker: &mut Checker, at: &str, value: &Value) {
    let Some(path) = value.as_str().filter(|path| path.starts_with('/')) else {
        checker.push(
            at,
            "`ca_file` must be the absolute path of a PEM file of CA certificates",
        );
        return;
    };
    match std::fs::read(path) {
        Ok(pem) => {
            if let Err(problem) = fixloop_adapters::check_ca_pem(&pem) {
                checker.push(at, format!("{path}: {problem}"));
            }
        }
        Err(error) => checker.push(at, format!("cannot read {path}: {error}")),
    }
}

/// The name of `text` when it is exactly one `${env:NAME}` reference.
pub(crate) fn whole_reference(text: &str) -> Option<&str> {
    text.strip_prefix("${env:")
        .and_then(|rest| rest.strip_suffix('}'))
        .filter(|name| is_secret_name(name))
}

/// The secrets `actions` reference (header values, kubernetes tokens), each with the path of its first use.
fn references(at: &str, actions: &[ActionFile]) -> BTreeMap<String, String> {
    let mut referenced = BTreeMap::new();
    for (index, action) in actions.iter().enumerate() {
        let action_at = format!("{at}.actions[{index}].settings");
        let headers = action
            .settings
            .get("headers")
            .and_then(Value::as_object)
            .filter(|_| action.executor == "http");
        for (name, value) in headers.into_iter().flatten() {
            for secret in value.as_str().map(secret_references).into_iter().flatten() {
                referenced
                    .entry(secret.to_owned())
                    .or_insert_with(|| format!("{action_at}.headers.{name}"));
            }
        }
        if action.executor == "kubernetes-rollout"
            && let Some(name) = action
                .settings
                .get("token")
                .and_then(Value::as_str)
                .and_then(whole_reference)
        {
            referenced
                .entry(name.to_owned())
                .or_insert_with(|| format!("{action_at}.token"));
        }
    }
    referenced
}

/// Resolves the secrets the actions of `[service.remediation]` at `at` reference; a missing or empty one, or one
/// whose value cannot be sent in a header, is a problem naming the variable (never its value).
pub(super) fn resolve(
    checker: &mut Checker,
    at: &str,
    actions: &[ActionFile],
    secrets: Secrets<'_>,
) -> BTreeMap<String, Secret> {
    let Secrets::From(env) = secrets else {
        return BTreeMap::new();
    };
    let mut resolved = BTreeMap::new();
    for (name, first_use) in references(at, actions) {
        match env.get(&name).map(|value| value.trim()) {
            Some(value) if !value.is_empty() => {
                if HeaderValue::from_str(value).is_err() {
                    checker.push(
                        first_use,
                        format!(
                            "secret {name} holds characters a header cannot carry (a line break?): set it to the bare value"
                        ),
                    );
                } else {
                    resolved.insert(name, Secret::new(value));
                }
            }
            _ => checker.push(
                first_use,
                format!(
                    "secret {name} is not set in the environment (set {name}; its value is never stored in the profile)"
                ),
            ),
        }
    }
    resolved
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::super::{Profile, ProfileError};
    use super::*;

    /// A minimal valid profile (the demo's services) with `actions` as its remediation's actions.
    fn profile(actions: &str, env: &[(&str, &str)]) -> Result<Profile, ProfileError> {
        let text = format!(
            "{}\n[service.remediation]\nmode = \"auto\"\n{actions}",
            super::super::DEMO_PROFILE
        );
        let env: HashMap<String, String> = env
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        Profile::parse(&text, "test.toml", Secrets::From(&env))
    }

    fn problems(error: &ProfileError) -> Vec<String> {
        error
            .problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    }

    const HEADERS: &str = r#"
[[service.remediation.actions]]
id = "flag-off"
executor = "http"
settings = { url = "http://127.0.0.1:8001/admin/flags/payment", headers = { Authorization = "Bearer ${env:SHOP_TOKEN}", X-Reason = "fixloop" } }
"#;

    #[test]
    fn header_secrets_are_resolved_apart_from_the_journeys_and_never_shown() {
        let parsed = profile(HEADERS, &[("SHOP_TOKEN", "s3cr3t-admin")]).expect("valid");
        let service = &parsed.services[0];
        assert_eq!(
            service.action_secrets.get("SHOP_TOKEN").map(Secret::expose),
            Some("s3cr3t-admin")
        );
        assert!(
            !service
                .spec
                .policy
                .secrets
                .iter()
                .any(|name| name == "SHOP_TOKEN"),
            "a plan's test may not name an action's secret"
        );
        assert!(!service.secrets.contains_key("SHOP_TOKEN"));
        let debug = format!("{parsed:?}");
        assert!(!debug.contains("s3cr3t-admin"), "{debug}");
    }

    #[test]
    fn a_missing_header_secret_is_named_not_shown() {
        let error = profile(HEADERS, &[]).expect_err("SHOP_TOKEN is not set");
        assert_eq!(
            problems(&error),
            [
                "service[0].remediation.actions[0].settings.headers.Authorization: secret SHOP_TOKEN is not set in \
              the environment (set SHOP_TOKEN; its value is never stored in the profile)"
            ]
        );
        let error =
            profile(HEADERS, &[("SHOP_TOKEN", "line\nbreak-value")]).expect_err("bad value");
        let text = problems(&error).join("\n");
        assert!(
            text.contains("secret SHOP_TOKEN holds characters"),
            "{text}"
        );
        assert!(!text.contains("break-value"), "{text}");
    }

    #[test]
    fn bad_headers_are_reported_with_their_paths() {
        let error = profile(
            r#"
[[service.remediation.actions]]
id = "a"
executor = "http"
settings = { url = "http://127.0.0.1:8001/admin/a", headers = { "bad name" = "x", Host = "evil", x-fixloop-traffic = "none", X-Num = 5, X-Typo = "Bearer $SHOP_TOKEN", X-Bad-Ref = "${env:shop}", X-Line = "a\nb" } }

[[service.remediation.actions]]
id = "b"
executor = "http"
settings = { url = "http://127.0.0.1:8001/admin/b", headers = "Authorization: x" }
"#,
            &[],
        )
        .expect_err("bad headers");
        let at = "service[0].remediation.actions";
        assert_eq!(
            problems(&error),
            [
                format!(
                    "{at}[0].settings.headers.Host: `Host` is set by FixLoop's HTTP client: an action may not set it"
                ),
                format!(
                    "{at}[0].settings.headers.X-Bad-Ref: a secret reference must look like ${{env:NAME}} with NAME made of A-Z, 0-9 and _"
                ),
                format!(
                    "{at}[0].settings.headers.X-Line: a header value may hold printable characters only (no line breaks)"
                ),
                format!("{at}[0].settings.headers.X-Num: a header value must be a string"),
                format!(
                    "{at}[0].settings.headers.X-Typo: `$SHOP_TOKEN` looks like a placeholder but is not a secret reference: write ${{env:NAME}} (lowercase `env`, NAME made of A-Z, 0-9 and _)"
                ),
                format!(
                    "{at}[0].settings.headers.bad name: `bad name` is not a header name: use letters, digits and -"
                ),
                format!(
                    "{at}[0].settings.headers.x-fixloop-traffic: `x-fixloop-traffic` is set by FixLoop's HTTP client: an action may not set it"
                ),
                format!(
                    "{at}[1].settings.headers: `headers` must be a table of header names to string values"
                ),
            ]
        );
    }

    const ROLLOUT: &str = r#"
[[service.remediation.actions]]
id = "restart"
executor = "kubernetes-rollout"
settings = { api_server = "https://k8s.example.com:6443", token = "${env:K8S_TOKEN}", namespace = "shop", deployment = "shop" }
"#;

    #[test]
    fn a_rollout_may_trust_a_ca_file() {
        let ca = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/kubernetes-ca.pem"
        );
        let actions = ROLLOUT.replace(
            "deployment = \"shop\" }",
            &format!("deployment = \"shop\", ca_file = \"{ca}\" }}"),
        );
        assert!(actions.contains("ca_file"), "{actions}");
        let parsed = profile(&actions, &[("K8S_TOKEN", "k8s-sa-token")]).expect("valid");
        assert_eq!(
            parsed.services[0].actions[0].settings["ca_file"].as_str(),
            Some(ca)
        );
        let not_pem = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
        let actions = ROLLOUT.replace(
            "deployment = \"shop\" }",
            &format!("deployment = \"shop\", ca_file = \"{not_pem}\" }}"),
        );
        let error = profile(&actions, &[("K8S_TOKEN", "k8s-sa-token")]).expect_err("not PEM");
        let text = problems(&error).join("\n");
        assert!(text.contains("holds no PEM certificate"), "{text}");
    }

    #[test]
    fn a_rollout_needs_an_api_server_and_a_token_reference_resolved_from_the_environment() {
        let parsed = profile(ROLLOUT, &[("K8S_TOKEN", "k8s-sa-token")]).expect("valid");
        assert_eq!(
            parsed.services[0]
                .action_secrets
                .get("K8S_TOKEN")
                .map(Secret::expose),
            Some("k8s-sa-token")
        );
        let error = profile(ROLLOUT, &[]).expect_err("K8S_TOKEN is not set");
        assert_eq!(
            problems(&error),
            [
                "service[0].remediation.actions[0].settings.token: secret K8S_TOKEN is not set in the environment \
              (set K8S_TOKEN; its value is never stored in the profile)"
            ]
        );
        let error = profile(
            r#"
[[service.remediation.actions]]
id = "a"
executor = "kubernetes-rollout"
settings = { api_server = "http://k8s.example.com", token = "eyJhbGciOi-literal", namespace = "shop", deployment = "shop", ca_file = "relative.pem" }

[[service.remediation.actions]]
id = "b"
executor = "kubernetes-rollout"
settings = { api_server = "https://k8s.example.com/api?x=1", token = "${env:K8S_TOKEN}", namespace = "shop", deployment = "shop", ca_file = "/nonexistent/ca.pem" }

[[service.remediation.actions]]
id = "c"
executor = "kubernetes-rollout"
settings = { api_server = "http://127.0.0.1:8001", namespace = "shop", deployment = "shop" }
"#,
            &[("K8S_TOKEN", "k8s-sa-token")],
        )
        .expect_err("bad settings");
        let text = problems(&error);
        let at = "service[0].remediation.actions";
        assert_eq!(text.len(), 6, "{text:#?}");
        assert!(
            text[0].starts_with(&format!(
                "{at}[0].settings.api_server: `api_server` must be the API server's https URL"
            )),
            "{text:#?}"
        );
        assert_eq!(
            text[1],
            format!(
                "{at}[0].settings.ca_file: `ca_file` must be the absolute path of a PEM file of CA certificates"
            )
        );
        assert!(
            text[2].starts_with(&format!(
                "{at}[0].settings.token: the token must be a secret reference"
            )),
            "{text:#?}"
        );
        assert!(!text[2].contains("eyJhbGciOi"), "{text:#?}");
        assert!(
            text[3].starts_with(&format!("{at}[1].settings.api_server: ")),
            "{text:#?}"
        );
        assert!(
            text[4].starts_with(&format!(
                "{at}[1].settings.ca_file: cannot read /nonexistent/ca.pem"
            )),
            "{text:#?}"
        );
        assert_eq!(
            text[5],
            format!("{at}[2].settings.token: a `kubernetes-rollout` action needs `token`"),
            "loopback http is kubectl proxy: allowed"
        );
    }
}
