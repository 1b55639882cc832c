//! Checking a profile file while converting it ([`Checker`]): every problem is collected with its path, none
//! stops the check.

use std::collections::{BTreeMap, BTreeSet};

use fixloop_adapters::Secret;
use fixloop_adapters::prometheus::parse_template;
use fixloop_core::policy::{CoverageCheck, CoverageRule};
use fixloop_core::service::{body_strings, is_secret_name, secret_references};
use fixloop_core::validate::{MAX_TEST_ID_LEN, PLAN_ITEMS};
use fixloop_core::{Criteria, Journey, Policy, ServiceSpec, validate};

use self::file::{CheckFile, JourneyFile, ServiceFile, SignalsFile, ThresholdsFile};
use super::*;

/// Collects problems while converting a [`ProfileFile`].
#[derive(Debug, Default)]
pub(super) struct Checker {
    pub(super) problems: Vec<ProfileProblem>,
    /// The service being checked says `allow_metadata_targets = true`.
    allow_metadata: bool,
}

impl Checker {
    pub(super) fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(ProfileProblem {
            path: path.into(),
            message: message.into(),
        });
    }

    pub(super) fn service(
        &mut self,
        at: &str,
        file: ServiceFile,
        secrets: Secrets<'_>,
    ) -> Option<ServiceProfile> {
        let before = self.problems.len();
        self.allow_metadata = file.allow_metadata_targets;
        if !is_service_name(&file.name) {
            self.push(
                format!("{at}.name"),
                format!(
                    "`{}` is not a service name: use 1 to 64 of a-z, 0-9, `-`, `_` and `.`",
                    file.name
                ),
            );
        }
        let base_url = self.base_url(&format!("{at}.base_url"), &file.base_url);
        let mut allowed = vec![base_url.clone()];
        for (index, url) in file.allowed_base_urls.iter().enumerate() {
            allowed.push(self.base_url(&format!("{at}.allowed_base_urls[{index}]"), url));
        }
        self.thresholds(&format!("{at}.thresholds"), &file.thresholds);
        self.signals(at, &file);
        if file.journeys.len() < PLAN_ITEMS {
            self.push(
                format!("{at}.journeys"),
                format!(
                    "a service needs at least {PLAN_ITEMS} journeys (a plan has {PLAN_ITEMS} tests), found {}",
                    file.journeys.len()
                ),
            );
        }
        let mut ids = BTreeSet::new();
        let mut referenced: BTreeMap<String, String> = BTreeMap::new();
        let journeys: Vec<Journey> = file
            .journeys
            .iter()
            .enumerate()
            .map(|(index, journey)| {
                let at = format!("{at}.journeys[{index}]");
                if !ids.insert(journey.id.clone()) {
                    self.push(
                        format!("{at}.id"),
                        format!("journey id `{}` is used twice", journey.id),
                    );
                }
                self.journey(&at, journey, &mut referenced)
            })
            .collect();
        let coverage = file
            .coverage
            .iter()
            .map(|rule| CoverageRule {
                name: rule.name.clone(),
                path: rule.path.clone(),
                method: rule.method,
                check: match rule.check {
                    CheckFile::Any => CoverageCheck::Any,
                    CheckFile::ExpectsSuccess => CoverageCheck::ExpectsSuccess,
                    CheckFile::ExpectsClientError => CoverageCheck::ExpectsClientError,
                    CheckFile::SendsAuthorization => CoverageCheck::SendsAuthorization,
                },
            })
            .collect();
        for (index, rule) in file.coverage.iter().enumerate() {
            if !rule.path.starts_with('/') {
                self.push(
                    format!("{at}.coverage[{index}].path"),
                    format!("`{}` must start with `/`", rule.path),
                );
            }
        }
        let mut resolved = BTreeMap::new();
        if let Secrets::From(env) = secrets {
            for (name, first_use) in &referenced {
                match env.get(name).map(|value| value.trim()) {
                    Some(value) if !value.is_empty() => {
                        resolved.insert(name.clone(), Secret::new(value));
                    }
                    _ => self.push(
                        first_use.clone(),
                        format!(
                            "secret {name} is not set in the environment (set {name}; its value is never stored in the profile)"
                        ),
                    ),
                }
            }
        }
        let remediation = file
            .remediation
            .as_ref()
            .map(|remediation| remediation::check(self, &format!("{at}.remediation"), remediation))
            .unwrap_or_default();
        let actions = file
            .remediation
            .as_ref()
            .map(|remediation| remediation.actions.clone())
            .unwrap_or_default();
        let action_secrets =
            actions::resolve(self, &format!("{at}.remediation"), &actions, secrets);
        let mut policy = Policy::new(allowed);
        policy.coverage = coverage;
        policy.secrets = referenced.into_keys().collect();
        let spec = ServiceSpec {
            name: file.name.clone(),
            description: file.description.clone(),
            base_url,
            policy,
            journeys,
        };
        let service = ServiceProfile {
            spec,
            alert_labels: file.alert_labels,
            signals: file.signals,
            thresholds: file.thresholds,
            secrets: resolved,
            remediation,
            actions,
            action_secrets,
        };
        if self.problems.len() > before {
            return None;
        }
        // The journeys must be able to make a valid plan: run the rule planner and the validator on it.
        if let Err(violations) = validate(service.rule_plan(None), &service.spec.policy) {
            for violation in violations {
                self.push(
                    at,
                    format!(
                        "the rule plan built from these journeys is invalid: {}",
                        describe_violation(&violation.path, &violation.message)
                    ),
                );
            }
            return None;
        }
        Some(service)
    }

    fn journey(
        &mut self,
        at: &str,
        journey: &JourneyFile,
        referenced: &mut BTreeMap<String, String>,
    ) -> Journey {
        if journey.id.is_empty()
            || journey.id.len() > MAX_TEST_ID_LEN
            || !journey
                .id
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || b"._-".contains(&byte))
        {
            self.push(
                format!("{at}.id"),
                format!(
                    "`{}` is not a journey id: use 1 to {MAX_TEST_ID_LEN} of A-Z, a-z, 0-9, `.`, `_` and `-`",
                    journey.id
                ),
            );
        }
        if !journey.path.starts_with('/') || journey.path.contains("${env:") {
            self.push(
                format!("{at}.path"),
                format!(
                    "`{}` must start with `/` (it is appended to the base URL) and may not hold a secret",
                    journey.path
                ),
            );
        }
        if let Err(parse) = Criteria::parse(&journey.pass_criteria) {
            self.push(format!("{at}.pass_criteria"), parse.to_string());
        }
        if journey.name.trim().is_empty() {
            self.push(format!("{at}.name"), "must not be blank");
        }
        if journey.method == fixloop_contract::HttpMethod::Get && !journey.safe {
            let path = journey.path.split('?').next().unwrap_or(&journey.path);
            let named = [("id", journey.id.as_str()), ("path", path)]
                .into_iter()
                .find_map(|(what, text)| {
                    init::safety::side_effect_word(text).map(|word| (what, word))
                });
            if let Some((what, word)) = named {
                self.push(
                    format!("{at}.safe"),
                    format!(
                        "this GET journey's {what} names a side effect (`{word}`): FixLoop calls it on every run and probe; set `safe = true` only if calling it changes nothing"
                    ),
                );
            }
        }
        let mut note = |path: String, text: &str| {
            for name in secret_references(text) {
                referenced.entry(name.to_owned()).or_insert(path.clone());
            }
            // A `${env:` that is not a well-formed reference, or a placeholder of another spelling (`${ENV:X}`,
            // `$X`, `${X}`, `{env:X}`), is a typo that would be sent as it is.
            if text.matches("${env:").count() != secret_references(text).count() {
                self.problems.push(ProfileProblem {
                    path,
                    message: "a secret reference must look like ${env:NAME} with NAME made of A-Z, 0-9 and _"
                        .to_owned(),
                });
            } else if let Some(typo) = placeholder_typo(text) {
                self.problems.push(ProfileProblem {
                    path,
                    message: format!(
                        "`{typo}` looks like a placeholder but is not a secret reference: write ${{env:NAME}} \
                         (lowercase `env`, NAME made of A-Z, 0-9 and _)"
                    ),
                });
            }
        };
        for (name, value) in &journey.headers {
            note(format!("{at}.headers.{name}"), value);
        }
        for text in body_strings(&journey.body) {
            note(format!("{at}.body"), text);
        }
        Journey {
            id: journey.id.clone(),
            name: journey.name.clone(),
            kind: journey.kind,
            method: journey.method,
            path: journey.path.clone(),
            headers: journey.headers.clone(),
            body: journey.body.clone(),
            pass_criteria: journey.pass_criteria.clone(),
            priority: journey.priority,
            what_it_checks: if journey.what_it_checks.trim().is_empty() {
                journey.name.clone()
            } else {
                journey.what_it_checks.clone()
            },
            route: journey.route.clone(),
        }
    }

    /// Checks a base URL (absolute http(s), no query, fragment or credentials) and returns it without a trailing
    /// slash.
    fn base_url(&mut self, at: &str, url: &str) -> String {
        match reqwest::Url::parse(url) {
            Ok(parsed)
                if matches!(parsed.scheme(), "http" | "https")
                    && parsed.host_str().is_some()
                    && parsed.query().is_none()
                    && parsed.fragment().is_none()
                    && parsed.username().is_empty()
                    && parsed.password().is_none() =>
            {
                if !self.allow_metadata && is_metadata_target(&parsed) {
                    self.push(
                        at,
                        format!(
                            "`{url}` is a link-local or cloud metadata address, where a cloud keeps its credentials; \
                             FixLoop refuses to send requests there unless the service says `allow_metadata_targets = true`"
                        ),
                    );
                }
            }
            Ok(_) => self.push(
                at,
                format!(
                    "`{url}` must be an absolute http or https URL without query, fragment or credentials"
                ),
            ),
            Err(error) => self.push(at, format!("`{url}` is not a URL: {error}")),
        }
        url.trim_end_matches('/').to_owned()
    }

    fn thresholds(&mut self, at: &str, thresholds: &ThresholdsFile) {
        let mut percent = |key: &str, value: Option<f64>| {
            let Some(value) = value else { return };
            if !value.is_finite() || value <= 0.0 || value > 100.0 {
                self.push(
                    format!("{at}.{key}"),
                    format!("{value} is not a percentage in (0, 100]"),
                );
            } else if value < SMALLEST_PERCENT {
                self.push(
                    format!("{at}.{key}"),
                    format!(
                        "{value} looks like a ratio, but this key is in percent: write {} for {}%",
                        value * 100.0,
                        value * 100.0
                    ),
                );
            }
        };
        percent("trigger_error_percent", thresholds.trigger_error_percent);
        percent("recovery_error_percent", thresholds.recovery_error_percent);
        let trigger = thresholds.trigger_error_percent.unwrap_or(5.0);
        let recovery = thresholds.recovery_error_percent.unwrap_or(1.0);
        if recovery >= trigger {
            self.push(
                format!("{at}.recovery_error_percent"),
                format!(
                    "the recovery error rate ({recovery}%) must be below the trigger error rate ({trigger}%)"
                ),
            );
        }
        if thresholds.window_secs == Some(0) {
            self.push(format!("{at}.window_secs"), "must be at least 1");
        }
        if let Some(seconds) = thresholds.poll_interval_secs
            && !(0.1..=3600.0).contains(&seconds)
        {
            self.push(
                format!("{at}.poll_interval_secs"),
                format!("{seconds} is outside 0.1 to 3600 seconds"),
            );
        }
        for (key, value) in [
            ("min_samples", thresholds.min_samples),
            ("recovery_samples", thresholds.recovery_samples),
        ] {
            if value == Some(0) {
                self.push(format!("{at}.{key}"), "must be at least 1");
            }
        }
    }

    fn signals(&mut self, at: &str, service: &ServiceFile) {
        let at = format!("{at}.signals");
        match &service.signals {
            SignalsFile::Scrape(scrape) => {
                if fixloop_adapters::scrape::is_absolute_url(&scrape.metrics_path) {
                    if let Some(problem) = same_origin(&service.base_url, &scrape.metrics_path) {
                        self.push(format!("{at}.metrics_path"), problem);
                    }
                } else if !scrape.metrics_path.starts_with('/') {
                    self.push(
                        format!("{at}.metrics_path"),
                        "must start with `/` (a path under the base URL), or be an http(s) URL on the base URL's \
                         origin",
                    );
                }
                for (key, value) in [
                    ("requests_metric", &scrape.requests_metric),
                    ("duration_metric", &scrape.duration_metric),
                ] {
                    if !is_metric_name(value) {
                        self.push(
                            format!("{at}.{key}"),
                            format!("`{value}` is not a Prometheus metric name"),
                        );
                    }
                }
            }
            SignalsFile::Prometheus(prometheus) => {
                if let Some(url) = &prometheus.url {
                    self.base_url(&format!("{at}.url"), url);
                }
                // Each query is parsed as it will be sent (placeholders replaced): PromQL that does not parse is
                // a profile error, not a read that fails forever.
                for (key, query) in [
                    ("error_ratio_query", Some(&prometheus.error_ratio_query)),
                    ("p95_ms_query", Some(&prometheus.p95_ms_query)),
                    ("requests_query", Some(&prometheus.requests_query)),
                    ("top_error_query", prometheus.top_error_query.as_ref()),
                ] {
                    if let Some(Err(why)) = query.map(|query| parse_template(query)) {
                        self.push(format!("{at}.{key}"), format!("is not PromQL: {why}"));
                    }
                }
            }
            SignalsFile::Datadog(datadog) => {
                if !datadog.p95_to_ms.is_finite() || datadog.p95_to_ms <= 0.0 {
                    self.push(format!("{at}.p95_to_ms"), "must be a positive number");
                }
            }
            SignalsFile::Synthetic(synthetic) => {
                for (index, id) in synthetic.journeys.iter().enumerate() {
                    if !service.journeys.iter().any(|journey| journey.id == *id) {
                        self.push(
                            format!("{at}.journeys[{index}]"),
                            format!("no journey has id `{id}`"),
                        );
                    }
                }
                let probes_get = service
                    .journeys
                    .iter()
                    .any(|journey| journey.method == fixloop_contract::HttpMethod::Get);
                if synthetic.journeys.is_empty() && !probes_get {
                    self.push(
                        format!("{at}.journeys"),
                        "the synthetic source probes the GET journeys, and this service has none: list the journeys to probe",
                    );
                }
            }
        }
    }
}

/// A violation of the rule plan, with the plan path it is at (the plan's items are the journeys it picked).
/// Why `url` (an absolute metrics URL) is not acceptable for a service at `base_url`: it must be on the same origin
/// (scheme, host and port), without credentials, query or fragment. `None` when it is.
fn same_origin(base_url: &str, url: &str) -> Option<String> {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return Some(format!("`{url}` is not a URL"));
    };
    if !parsed.username().is_empty()
        || parsed.password().is_some()
        || parsed.query().is_some()
        || parsed.fragment().is_some()
    {
        return Some(format!(
            "`{url}` must not carry credentials, a query or a fragment"
        ));
    }
    let base = reqwest::Url::parse(base_url).ok()?;
    (parsed.origin() != base.origin()).then(|| {
        format!(
            "`{url}` is not on the base URL's origin ({}): metrics are read from the watched service only",
            base.origin().ascii_serialization()
        )
    })
}

/// The first placeholder in `text` that is not a well-formed `${env:NAME}` reference but looks meant as one: `${…}`
/// of any other spelling (`${ENV:X}`, `${X}`, `${env: X}`), `$NAME` with an environment-style name (`$TOKEN`,
/// `$FIXLOOP_TOKEN`), or `{env:NAME}` without its `$`. A `$` before a digit or a lowercase word (`$5`, `$ref`) is
/// ordinary text.
pub(super) fn placeholder_typo(text: &str) -> Option<&str> {
    let well_formed: Vec<usize> = text
        .match_indices("${env:")
        .map(|(start, _)| start)
        .collect();
    for (start, _) in text.match_indices('$') {
        let rest = &text[start + 1..];
        if rest.starts_with('{') {
            if well_formed.contains(&start) {
                continue;
            }
            let end = rest.find('}').map_or(text.len(), |end| start + 1 + end + 1);
            return Some(&text[start..end]);
        }
        let name_len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let name = &rest[..name_len];
        if is_secret_name(name) {
            return Some(&text[start..=start + name_len]);
        }
    }
    text.match_indices("{env:")
        .find(|(start, _)| *start == 0 || !text[..*start].ends_with('$'))
        .map(|(start, _)| {
            let end = text[start..]
                .find('}')
                .map_or(text.len(), |end| start + end + 1);
            &text[start..end]
        })
}

fn describe_violation(path: &str, message: &str) -> String {
    if path.is_empty() {
        message.to_owned()
    } else {
        format!("{message} (at {path})")
    }
}

/// Whether `url` points at a link-local address or a cloud metadata endpoint: 169.254.0.0/16 (AWS, Azure, GCP and
/// others at 169.254.169.254), `fe80::/10`, AWS's IPv6 `fd00:ec2::254`, and the names `metadata.google.internal`
/// and `metadata`. The URL parser has already normalized the address forms (`0xA9FEA9FE`, `[::ffff:169.254.169.254]`).
pub fn is_metadata_target(url: &reqwest::Url) -> bool {
    use std::net::{IpAddr, Ipv6Addr};
    const AWS_IPV6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254);
    let Some(host) = url.host_str() else {
        return false;
    };
    match host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        Ok(IpAddr::V4(v4)) => v4.is_link_local(),
        Ok(IpAddr::V6(v6)) => {
            v6 == AWS_IPV6
                || v6.segments()[0] & 0xffc0 == 0xfe80
                || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_link_local())
        }
        Err(_) => {
            let name = host.trim_end_matches('.').to_ascii_lowercase();
            name == "metadata.google.internal" || name == "metadata"
        }
    }
}

pub(super) fn is_service_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.bytes().all(|byte| {
            byte.is_ascii_lowercase() || byte.is_ascii_digit() || b"-_.".contains(&byte)
        })
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}
