//! The configuration in force, as a journal stores it: [`RecordedConfig`], an explicit image of a [`Config`] (its
//! service's spec included), and [`Recorded`], a journal entry read back.
//!
//! A driver journals the configuration it runs an engine with whenever it (re)starts one (at start, after a
//! restart, after a reload changed the service), and every [`Snapshot`](super::Snapshot) carries the configuration
//! the engine had when it was taken. So a replay needs nothing but the journal: it restores the first snapshot with
//! the configuration recorded in it, and switches configuration where the journal says the driver did. Like the
//! snapshot, the image is separate from the in-memory types, so a journal outlives changes of their shape.
//!
//! The image holds the spec as the driver had it: secret *references* (`${env:NAME}`), never their values (the
//! core never sees a secret's value).

use std::collections::BTreeMap;
use std::time::Duration;

use fixloop_contract::{HttpMethod, JsonObject, PlanItemType};
use serde::{Deserialize, Serialize};

use super::remediation::SpecImage;
use super::{Config, Input};
use crate::policy::{CoverageCheck, CoverageRule, Policy};
use crate::service::{Journey, ServiceSpec};

/// An image of a [`Config`], with its service's spec. Make one with `RecordedConfig::from(&config)`, turn it back
/// with [`RecordedConfig::into_config`]; the round trip is exact (thresholds are finite numbers, durations are
/// kept in whole nanoseconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedConfig {
    service: ServiceImage,
    id_prefix: String,
    trigger_error_rate: f64,
    recovery_error_rate: f64,
    detection_window_ns: u64,
    min_samples: u32,
    recovery_samples: u32,
    min_requests: u64,
    rerun_interval_ns: u64,
    soak_window_ns: u64,
    cooldown_ns: u64,
    context_deadline_ns: u64,
    plan_deadline_ns: u64,
    plan_budget_ns: u64,
    run_deadline_ns: u64,
    max_plan_attempts: u32,
    poll_interval_ns: u64,
    confirm_delay_ns: u64,
    max_measurement_ns: u64,
    inconclusive_limit: u32,
    signal_max_age_ns: u64,
    blind_after: u32,
    /// Added within format 1: a configuration recorded before remediation existed has none (nothing proposed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    remediation: Option<SpecImage>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ServiceImage {
    name: String,
    description: String,
    base_url: String,
    policy: PolicyImage,
    journeys: Vec<JourneyImage>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PolicyImage {
    allowed_base_urls: Vec<String>,
    coverage: Vec<CoverageImage>,
    secrets: Vec<String>,
    max_string_len: usize,
    max_body_bytes: usize,
    max_headers: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct CoverageImage {
    name: String,
    path: String,
    method: Option<HttpMethod>,
    check: CheckImage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum CheckImage {
    Any,
    ExpectsClientError,
    ExpectsSuccess,
    SendsAuthorization,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct JourneyImage {
    id: String,
    name: String,
    kind: PlanItemType,
    method: HttpMethod,
    path: String,
    headers: BTreeMap<String, String>,
    body: JsonObject,
    pass_criteria: String,
    priority: u32,
    what_it_checks: String,
    route: Option<String>,
}

/// A journal entry read back ([`RecordedInput::into_recorded`](super::RecordedInput::into_recorded)): an input to
/// feed the engine, or the configuration the driver (re)started the engine with from there on.
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    /// Feed this input to the engine.
    Input(Input),
    /// From here on the engine ran with `config`: a replay restores its current state with it (as the driver did
    /// when it started).
    Configured {
        /// The configuration in force.
        config: Box<Config>,
        /// Where it came from, in the driver's words (for example the profile file's SHA-256); `None` when the
        /// driver did not say.
        origin: Option<String>,
    },
}

impl RecordedConfig {
    /// The configuration this image stands for.
    #[must_use]
    pub fn into_config(self) -> Config {
        Config {
            service: self.service.into_spec(),
            id_prefix: self.id_prefix,
            trigger_error_rate: self.trigger_error_rate,
            recovery_error_rate: self.recovery_error_rate,
            detection_window: nanos(self.detection_window_ns),
            min_samples: self.min_samples,
            recovery_samples: self.recovery_samples,
            min_requests: self.min_requests,
            rerun_interval: nanos(self.rerun_interval_ns),
            soak_window: nanos(self.soak_window_ns),
            cooldown: nanos(self.cooldown_ns),
            context_deadline: nanos(self.context_deadline_ns),
            plan_deadline: nanos(self.plan_deadline_ns),
            plan_budget: nanos(self.plan_budget_ns),
            run_deadline: nanos(self.run_deadline_ns),
            max_plan_attempts: self.max_plan_attempts,
            poll_interval: nanos(self.poll_interval_ns),
            confirm_delay: nanos(self.confirm_delay_ns),
            max_measurement: nanos(self.max_measurement_ns),
            inconclusive_limit: self.inconclusive_limit,
            signal_max_age: nanos(self.signal_max_age_ns),
            blind_after: self.blind_after,
            remediation: self
                .remediation
                .map(SpecImage::into_spec)
                .unwrap_or_default(),
        }
    }

    /// The name of the service this configuration watches.
    #[must_use]
    pub fn service(&self) -> &str {
        &self.service.name
    }
}

impl From<&Config> for RecordedConfig {
    fn from(config: &Config) -> Self {
        Self {
            service: ServiceImage::of(&config.service),
            id_prefix: config.id_prefix.clone(),
            trigger_error_rate: config.trigger_error_rate,
            recovery_error_rate: config.recovery_error_rate,
            detection_window_ns: ns(config.detection_window),
            min_samples: config.min_samples,
            recovery_samples: config.recovery_samples,
            min_requests: config.min_requests,
            rerun_interval_ns: ns(config.rerun_interval),
            soak_window_ns: ns(config.soak_window),
            cooldown_ns: ns(config.cooldown),
            context_deadline_ns: ns(config.context_deadline),
            plan_deadline_ns: ns(config.plan_deadline),
            plan_budget_ns: ns(config.plan_budget),
            run_deadline_ns: ns(config.run_deadline),
            max_plan_attempts: config.max_plan_attempts,
            poll_interval_ns: ns(config.poll_interval),
            confirm_delay_ns: ns(config.confirm_delay),
            max_measurement_ns: ns(config.max_measurement),
            inconclusive_limit: config.inconclusive_limit,
            signal_max_age_ns: ns(config.signal_max_age),
            blind_after: config.blind_after,
            remediation: config
                .remediation
                .is_enabled()
                .then(|| SpecImage::of(&config.remediation)),
        }
    }
}

impl ServiceImage {
    fn of(spec: &ServiceSpec) -> Self {
        let policy = &spec.policy;
        Self {
            name: spec.name.clone(),
            description: spec.description.clone(),
            base_url: spec.base_url.clone(),
            policy: PolicyImage {
                allowed_base_urls: policy.allowed_base_urls.clone(),
                coverage: policy
                    .coverage
                    .iter()
                    .map(|rule| CoverageImage {
                        name: rule.name.clone(),
                        path: rule.path.clone(),
                        method: rule.method,
                        check: match rule.check {
                            CoverageCheck::Any => CheckImage::Any,
                            CoverageCheck::ExpectsClientError => CheckImage::ExpectsClientError,
                            CoverageCheck::ExpectsSuccess => CheckImage::ExpectsSuccess,
                            CoverageCheck::SendsAuthorization => CheckImage::SendsAuthorization,
                        },
                    })
                    .collect(),
                secrets: policy.secrets.clone(),
                max_string_len: policy.max_string_len,
                max_body_bytes: policy.max_body_bytes,
                max_headers: policy.max_headers,
            },
            journeys: spec
                .journeys
                .iter()
                .map(|journey| JourneyImage {
                    id: journey.id.clone(),
                    name: journey.name.clone(),
                    kind: journey.kind,
                    method: journey.method,
                    path: journey.path.clone(),
                    headers: journey.headers.clone(),
                    body: journey.body.clone(),
                    pass_criteria: journey.pass_criteria.clone(),
                    priority: journey.priority,
                    what_it_checks: journey.what_it_checks.clone(),
                    route: journey.route.clone(),
                })
                .collect(),
        }
    }

    fn into_spec(self) -> ServiceSpec {
        let policy = self.policy;
        ServiceSpec {
            name: self.name,
            description: self.description,
            base_url: self.base_url,
            policy: Policy {
                allowed_base_urls: policy.allowed_base_urls,
                coverage: policy
                    .coverage
                    .into_iter()
                    .map(|rule| CoverageRule {
                        name: rule.name,
                        path: rule.path,
                        method: rule.method,
                        check: match rule.check {
                            CheckImage::Any => CoverageCheck::Any,
                            CheckImage::ExpectsClientError => CoverageCheck::ExpectsClientError,
                            CheckImage::ExpectsSuccess => CoverageCheck::ExpectsSuccess,
                            CheckImage::SendsAuthorization => CoverageCheck::SendsAuthorization,
                        },
                    })
                    .collect(),
                secrets: policy.secrets,
                max_string_len: policy.max_string_len,
                max_body_bytes: policy.max_body_bytes,
                max_headers: policy.max_headers,
            },
            journeys: self
                .journeys
                .into_iter()
                .map(|journey| Journey {
                    id: journey.id,
                    name: journey.name,
                    kind: journey.kind,
                    method: journey.method,
                    path: journey.path,
                    headers: journey.headers,
                    body: journey.body,
                    pass_criteria: journey.pass_criteria,
                    priority: journey.priority,
                    what_it_checks: journey.what_it_checks,
                    route: journey.route,
                })
                .collect(),
        }
    }
}

/// A duration in whole nanoseconds (saturating: no configured duration comes near 584 years).
fn ns(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

fn nanos(ns: u64) -> Duration {
    Duration::from_nanos(ns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::test_support::spec;

    #[test]
    fn a_config_survives_its_image_exactly() {
        let mut config = Config::seed(spec(), "p");
        config.trigger_error_rate = 0.123_456_789;
        config.confirm_delay = Duration::from_secs(1) / 3;
        config.service.policy.coverage.push(CoverageRule {
            name: "negative".to_owned(),
            path: "/orders".to_owned(),
            method: Some(HttpMethod::Post),
            check: CoverageCheck::ExpectsClientError,
        });
        config.service.policy.secrets.push("TOKEN".to_owned());
        let image = RecordedConfig::from(&config);
        let json = serde_json::to_string(&image).expect("serialize");
        let back: RecordedConfig = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back.service(), config.service.name);
        assert_eq!(back.into_config(), config);
    }

    #[test]
    fn the_image_keeps_secret_references_not_values() {
        let mut config = Config::seed(spec(), "p");
        config.service.journeys[0].headers.insert(
            "authorization".to_owned(),
            "Bearer ${env:SHOP_TOKEN}".to_owned(),
        );
        let json = serde_json::to_string(&RecordedConfig::from(&config)).expect("serialize");
        assert!(json.contains("Bearer ${env:SHOP_TOKEN}"), "{json}");
    }
}
