//! Service profiles: the declarative file that tells FixLoop which services to watch and how.
//!
//! A profile (TOML, format in [`file`](mod@file)) lists one or more services: base URL, alert labels, the signal source and
//! how to read it, thresholds (error rates in percent), the journeys (candidate tests) and the coverage rules every
//! plan must satisfy. [`Profile::parse`] turns the text into plain core types ([`ServiceSpec`]) plus the server's
//! own settings, and reports **every** problem at once, each with the file, the path of the bad key and the
//! reason. Secrets are referenced as `${env:NAME}` in header values and body strings; their values come from the
//! environment map handed in (only `main` reads the environment), are held as [`Secret`], and never leave the test
//! runner: plans, prompts, logs and the wire keep the placeholder.
//!
//! The demo shop is one profile among others: [`demo_profile`] (embedded `profiles/demo.toml`).

mod actions;
pub mod ci;
pub mod file;
pub mod init;
pub mod live;
pub mod notify;
pub mod reload;
pub mod remediation;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::time::Duration;

use fixloop_adapters::Secret;
use fixloop_contract::chrono::{DateTime, Utc};
use fixloop_contract::{Plan, Signal};
use fixloop_core::engine::Config as EngineConfig;
use fixloop_core::{IncidentId, PlanContext, PlanId, ServiceSpec, rule_plan};

mod check;

use self::check::Checker;
pub use self::check::is_metadata_target;
use self::file::{ProfileFile, SignalsFile, ThresholdsFile};

/// The built-in demo profile (the shop that `fixloop demo` starts), as text.
pub const DEMO_PROFILE: &str = include_str!("../../profiles/demo.toml");

/// The `[service.remediation]` that `fixloop demo --remediate` adds to [`DEMO_PROFILE`], as text: a safe step that
/// turns the shop's `payment_provider` flag off, then a risky "restart the shop" (its actions name the shop at
/// `http://localhost:8001`, replaced with its real address, and send the shop's admin token as the secret
/// [`DEMO_ADMIN_SECRET`]).
pub const DEMO_REMEDIATION: &str = include_str!("../../profiles/demo-remediation.toml");

/// The name of the secret the demo's actions send as `Authorization: Bearer …`: the admin token of the shop this
/// `fixloop demo` process started (never read from the environment).
pub const DEMO_ADMIN_SECRET: &str = "FIXLOOP_DEMO_ADMIN_TOKEN";

/// Below this, an error-rate threshold in percent is almost surely a ratio written in the wrong unit.
const SMALLEST_PERCENT: f64 = 0.1;

/// A checked profile: one or more services.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// The services, in file order; names are unique.
    pub services: Vec<ServiceProfile>,
    /// The SHA-256 of the profile's text, in lowercase hex (what `sha256sum` prints for the file): journaled with
    /// the configuration each service runs with, so a replay says which profile a decision was made under.
    pub sha256: String,
    /// The `[ci]` self-heal section, if any (read at start; a reload does not change it).
    pub ci: Option<ci::CiProfile>,
    /// Where notifications go (`[[notify]]`), in file order; names are unique.
    pub notify: Vec<notify::NotifySink>,
}

/// One watched service, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceProfile {
    /// What the core knows: name, base URL, policy (allowlist, coverage, secret names), journeys.
    pub spec: ServiceSpec,
    /// Labels an alert must carry to be routed here.
    pub alert_labels: BTreeMap<String, String>,
    /// Where the signals come from.
    pub signals: SignalsFile,
    /// Threshold overrides (unset keys keep the mode's defaults).
    pub thresholds: ThresholdsFile,
    /// The secrets the journeys reference, by name; empty when parsed without the environment.
    pub secrets: BTreeMap<String, Secret>,
    /// The service's remediation as the engine sees it (default: no strategy, nothing proposed).
    pub remediation: fixloop_core::remediation::RemediationSpec,
    /// The declared actions with their executor settings, checked (what the driver's executors are built from).
    pub actions: Vec<remediation::ActionFile>,
    /// The secrets the actions reference (header values, kubernetes tokens), by name; empty when parsed without the
    /// environment. Kept apart from [`ServiceProfile::secrets`]: a plan's test may never send an action's secret.
    pub action_secrets: BTreeMap<String, Secret>,
}

/// One problem in a profile: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileProblem {
    /// Path of the bad key (`service[0].journeys[2].pass_criteria`), empty for the whole file.
    pub path: String,
    /// What is wrong, in one line; never a secret's value.
    pub message: String,
}

/// A profile that cannot be used: every problem found, with the file it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ProfileError {
    /// The file (or `<built-in demo profile>`).
    pub origin: String,
    /// Every problem, in file order.
    pub problems: Vec<ProfileProblem>,
}

/// How secrets are treated while parsing.
#[derive(Debug, Clone, Copy)]
pub enum Secrets<'a> {
    /// Resolve every referenced secret from this environment; a missing one is a problem.
    From(&'a HashMap<String, String>),
    /// Do not resolve (for `fixloop plan`, which never sends a request): the placeholders are kept as they are.
    Unresolved,
}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.problems.len();
        write!(
            f,
            "{}: {count} problem{}",
            self.origin,
            if count == 1 { "" } else { "s" }
        )?;
        for problem in &self.problems {
            write!(f, "\n  {problem}")?;
        }
        Ok(())
    }
}

impl fmt::Display for ProfileProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl Profile {
    /// Parses and checks a profile's text; `origin` names it in errors (usually the file path).
    ///
    /// # Errors
    ///
    /// A [`ProfileError`] listing every problem: TOML syntax, unknown keys and wrong types (first one only, as the
    /// TOML reader stops there), then every semantic problem (bad URLs, criteria, secrets, duplicate names, fewer
    /// than five journeys, coverage the journeys cannot satisfy, thresholds in the wrong unit).
    pub fn parse(text: &str, origin: &str, secrets: Secrets<'_>) -> Result<Self, ProfileError> {
        let error = |problems| ProfileError {
            origin: origin.to_owned(),
            problems,
        };
        let mut file: ProfileFile = toml::from_str(text).map_err(|parse| {
            error(vec![ProfileProblem {
                path: parse_error_path(text, &parse),
                message: parse.message().trim().to_owned(),
            }])
        })?;
        let mut checker = Checker::default();
        if file.service.is_empty() {
            checker.push("service", "a profile needs at least one [[service]]");
        }
        let mut names = BTreeSet::new();
        let mut services = Vec::new();
        for (index, service) in std::mem::take(&mut file.service).into_iter().enumerate() {
            let at = format!("service[{index}]");
            if !names.insert(service.name.clone()) {
                checker.push(
                    format!("{at}.name"),
                    format!("service name `{}` is used twice", service.name),
                );
            }
            if let Some(service) = checker.service(&at, service, secrets) {
                services.push(service);
            }
        }
        let ci = file
            .ci
            .and_then(|section| ci::check(section, secrets, &mut checker.problems));
        let notify = checker.notify(file.notify, secrets);
        if checker.problems.is_empty() {
            Ok(Self {
                services,
                sha256: sha256_hex(text.as_bytes()),
                ci,
                notify,
            })
        } else {
            Err(error(checker.problems))
        }
    }

    /// Reads and parses a profile file.
    ///
    /// # Errors
    ///
    /// A [`ProfileError`] when the file cannot be read or is not a valid profile.
    pub fn load(path: &std::path::Path, secrets: Secrets<'_>) -> Result<Self, ProfileError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|io| ProfileError {
            origin: origin.clone(),
            problems: vec![ProfileProblem {
                path: String::new(),
                message: format!("cannot read the file: {io}"),
            }],
        })?;
        Self::parse(&text, &origin, secrets)
    }

    /// The service called `name`.
    #[must_use]
    pub fn service(&self, name: &str) -> Option<&ServiceProfile> {
        self.services
            .iter()
            .find(|service| service.spec.name == name)
    }
}

impl ServiceProfile {
    /// The same service at another base URL (the demo shop's port is only known once it is bound): the base URL
    /// and its entry in the allowlist are replaced.
    #[must_use]
    pub fn with_base_url(mut self, base_url: &str) -> Self {
        let base_url = base_url.trim_end_matches('/').to_owned();
        let old = std::mem::replace(&mut self.spec.base_url, base_url.clone());
        for allowed in &mut self.spec.policy.allowed_base_urls {
            if *allowed == old {
                allowed.clone_from(&base_url);
            }
        }
        self
    }

    /// Applies the profile's thresholds to an engine configuration built with the mode's defaults.
    pub fn apply_thresholds(&self, engine: &mut EngineConfig) {
        let thresholds = &self.thresholds;
        if let Some(percent) = thresholds.trigger_error_percent {
            engine.trigger_error_rate = percent / 100.0;
        }
        if let Some(percent) = thresholds.recovery_error_percent {
            engine.recovery_error_rate = percent / 100.0;
        }
        if let Some(window) = thresholds.window_secs {
            engine.detection_window = Duration::from_secs(window);
        }
        if let Some(samples) = thresholds.min_samples {
            engine.min_samples = samples;
        }
        if let Some(samples) = thresholds.recovery_samples {
            engine.recovery_samples = samples;
        }
        if let Some(requests) = thresholds.min_requests {
            engine.min_requests = requests;
        }
        if let Some(seconds) = thresholds.poll_interval_secs {
            // The core owns what follows from the interval (the confirmation delay, how long a sample stays fresh).
            *engine = engine
                .clone()
                .with_poll_interval(Duration::from_secs_f64(seconds));
        }
    }

    /// The rule plan for an incident on this service whose top error is `top_error` (for `fixloop plan` and the
    /// profile check). Deterministic: fixed incident id, plan id and time.
    #[must_use]
    pub fn rule_plan(&self, top_error: Option<&str>) -> Plan {
        let context = self.plan_context(IncidentId::new("inc-profile"), top_error);
        rule_plan(
            &context,
            PlanId::new("plan-profile"),
            DateTime::<Utc>::UNIX_EPOCH,
        )
    }

    /// What a planner is told about an incident `incident_id` on this service whose top error is `top_error`, with
    /// no signal figures (for `fixloop plan` and `fixloop verify`, which plan without an incident).
    #[must_use]
    pub fn plan_context(&self, incident_id: IncidentId, top_error: Option<&str>) -> PlanContext {
        let spec = &self.spec;
        PlanContext {
            incident_id,
            service: spec.name.clone(),
            description: spec.description.clone(),
            base_url: spec.base_url.clone(),
            signal: Signal {
                error_rate_5m: 0.0,
                p95_latency_ms_5m: 0.0,
                top_error: top_error.map(str::to_owned),
            },
            title: format!("{}: profile plan", spec.name),
            evidence_links: Vec::new(),
            journeys: spec.journeys.clone(),
            coverage: spec.policy.coverage.clone(),
        }
    }
}

/// The built-in demo profile: the shop `fixloop demo` starts, at `base_url`.
#[must_use]
pub fn demo_profile(base_url: &str) -> ServiceProfile {
    builtin_demo(DEMO_PROFILE, base_url)
}

/// The built-in demo profile with its remediation ([`DEMO_REMEDIATION`], `fixloop demo --remediate`): the shop at
/// `base_url`, whose actions call its admin endpoints at `base_url` with `admin_token` (the shop's, when its admin
/// endpoints are guarded; `None` leaves the header out, as the endpoints are open).
#[must_use]
pub fn demo_profile_remediating(
    base_url: &str,
    environment: Option<&str>,
    admin_token: Option<&Secret>,
) -> ServiceProfile {
    let base = base_url.trim_end_matches('/');
    let remediation = DEMO_REMEDIATION.replace("http://localhost:8001", base);
    let mut profile = builtin_demo(&format!("{DEMO_PROFILE}\n{remediation}"), base_url);
    match admin_token {
        Some(token) => {
            profile
                .action_secrets
                .insert(DEMO_ADMIN_SECRET.to_owned(), token.clone());
        }
        None => {
            for action in &mut profile.actions {
                action.settings.remove("headers");
            }
        }
    }
    if let Some(environment) = environment {
        profile.remediation.labels.insert(
            fixloop_core::remediation::ENVIRONMENT_LABEL.to_owned(),
            environment.to_owned(),
        );
    }
    profile
}

fn builtin_demo(text: &str, base_url: &str) -> ServiceProfile {
    let profile = Profile::parse(text, "<built-in demo profile>", Secrets::Unresolved)
        // The embedded file is checked by a unit test; a broken one is a build defect, not an input error.
        .unwrap_or_else(|error| unreachable!("the built-in demo profile is valid: {error}"));
    profile
        .services
        .into_iter()
        .next()
        .unwrap_or_else(|| unreachable!("the built-in demo profile has one service"))
        .with_base_url(base_url)
}

/// The TOML path of a parse error, from the error's span: the table header above it (array tables numbered) and
/// the key on its line, for example `service[0].journeys[1].methd`; `line N` when there is no key to name.
/// The SHA-256 of `bytes` in lowercase hex.
fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    use std::fmt::Write as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

fn parse_error_path(text: &str, error: &toml::de::Error) -> String {
    let Some(span) = error.span() else {
        return String::new();
    };
    let start = span.start.min(text.len());
    let line_number = text[..start].matches('\n').count() + 1;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut table = String::new();
    for line in text.lines().take(line_number.saturating_sub(1)) {
        let line = line.trim();
        if let Some(name) = line
            .strip_prefix("[[")
            .and_then(|rest| rest.split("]]").next())
        {
            let name = name.trim().to_owned();
            counts.retain(|key, _| !key.starts_with(&format!("{name}.")));
            *counts.entry(name.clone()).or_default() += 1;
            table = name;
        } else if let Some(name) = line
            .strip_prefix('[')
            .and_then(|rest| rest.split(']').next())
        {
            table = name.trim().to_owned();
        }
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for part in table.split('.').filter(|part| !part.is_empty()) {
        if !prefix.is_empty() {
            prefix.push('.');
        }
        prefix.push_str(part);
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(part);
        if let Some(count) = counts.get(&prefix) {
            path.push_str(&format!("[{}]", count.saturating_sub(1)));
        }
    }
    let key = text
        .lines()
        .nth(line_number - 1)
        .and_then(|line| line.split_once('='))
        .map(|(key, _)| key.trim().trim_matches('"'))
        .filter(|key| !key.is_empty() && !key.starts_with('['));
    match key {
        Some(key) if path.is_empty() => format!("{key} (line {line_number})"),
        Some(key) => format!("{path}.{key} (line {line_number})"),
        None if path.is_empty() => format!("line {line_number}"),
        None => format!("{path} (line {line_number})"),
    }
}

#[cfg(test)]
mod tests;
