//! `[service.remediation]`: the actions a service declares (each with its executor kind and settings), the
//! strategies that order them per incident kind, each step's risk tier (per environment), cooldown and limit, and
//! the mode. `check` turns the file's tables into the core's [`RemediationSpec`] and reports every problem at
//! once: unknown modes, tiers or executor kinds, missing or wrong executor settings, steps naming undeclared
//! actions, duplicate ids, zero durations and limits.
//!
//! ```toml
//! [service.remediation]
//! mode = "auto"                   # monitor-only (default) | shadow | dry-run | auto
//! chooser = "model"               # rules (default) | model: MiniMax picks among the ready steps, code checks it
//! environment = "production"      # selects each step's tier in `tiers`
//! time_budget_secs = 300
//!
//! [[service.remediation.actions]]
//! id = "payment-flag-off"
//! executor = "http"               # http | command | docker-restart | kubernetes-rollout
//! settings = { method = "POST", url = "http://127.0.0.1:8001/admin/flags/payment?enabled=false", headers = { Authorization = "Bearer ${env:SHOP_TOKEN}" } }
//!
//! [[service.remediation.strategies]]
//! kind = "payment-errors"
//! match = { top_error = "/payment" }
//! steps = [
//!   { action = "payment-flag-off", tier = "safe", tiers = { production = "risky" }, cooldown_secs = 30 },
//! ]
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use fixloop_core::remediation::{
    ActionSpec, Chooser, ENVIRONMENT_LABEL, IncidentMatch, RemediationMode, RemediationSpec,
    RiskTier, Strategy, StrategyStep,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::check::Checker;

/// The executor kinds a profile may name, with the settings each requires.
pub const EXECUTOR_KINDS: [(&str, &[&str]); 4] = [
    ("http", &["url"]),
    ("command", &["argv"]),
    ("docker-restart", &["container"]),
    (
        "kubernetes-rollout",
        &["api_server", "token", "namespace", "deployment"],
    ),
];

/// `[service.remediation]`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RemediationFile {
    /// `monitor-only` (default), `shadow`, `dry-run` or `auto`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// The service's environment label (`production`, `staging`): selects each step's tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Seconds after detection without recovery before the incident is escalated (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_budget_secs: Option<f64>,
    /// Seconds a proposal waits for an approval (default 120).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_expiry_secs: Option<f64>,
    /// Seconds after an action during which alerts are ignored and signals dropped (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppress_window_secs: Option<f64>,
    /// Seconds after the suppression window within which the action must be judged (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge_window_secs: Option<f64>,
    /// Seconds one action may take (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_deadline_secs: Option<f64>,
    /// Ineffective outcomes per (incident fingerprint, action) before the action is struck out (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_strikes: Option<u32>,
    /// Who picks the step among the ready ones: `rules` (default) or `model` (the configured MiniMax model, its
    /// pick checked by the engine; without `MINIMAX_API_KEY` the rules pick).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chooser: Option<String>,
    /// Seconds the engine waits for the model's pick before the rules pick (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choice_deadline_secs: Option<f64>,
    /// The declared actions.
    #[serde(default)]
    pub actions: Vec<ActionFile>,
    /// The strategies, first match wins.
    #[serde(default)]
    pub strategies: Vec<StrategyFile>,
}

/// One `[[service.remediation.actions]]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ActionFile {
    /// Unique id, the only name a model may use.
    pub id: String,
    /// The executor kind ([`EXECUTOR_KINDS`]).
    pub executor: String,
    /// What it does, in a sentence.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The executor's settings (`url`, `method`, `body` and `headers` for `http`, `argv` for `command`,
    /// `container` for `docker-restart`, `api_server`, `token`, `ca_file`, `namespace` and `deployment` for
    /// `kubernetes-rollout`; checked in `profile/actions.rs`).
    #[serde(default)]
    pub settings: BTreeMap<String, Value>,
}

/// One `[[service.remediation.strategies]]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StrategyFile {
    /// The incident kind's name, unique.
    pub kind: String,
    /// Which incidents it is for; none matches every incident.
    #[serde(default, rename = "match")]
    pub matches: MatchFile,
    /// The steps, in order.
    #[serde(default)]
    pub steps: Vec<StepFile>,
}

/// A strategy's `match`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MatchFile {
    /// The top error contains this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_error: Option<String>,
    /// The incident's title (an alert's name) contains this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
    /// The service's labels have these values (`environment` is the remediation's `environment`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// One step of a strategy.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StepFile {
    /// A declared action's id.
    pub action: String,
    /// `safe`, `risky` or `never-auto`.
    pub tier: String,
    /// The tier per environment, overriding `tier`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tiers: BTreeMap<String, String>,
    /// Least seconds between two proposals of this step in one incident (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown_secs: Option<f64>,
    /// Most proposals of this step in one incident (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_incident: Option<u32>,
    /// Steps are tried by rank, then by success rate; default the step's position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rank: Option<u32>,
}

/// Checks `[service.remediation]` at `at` and turns it into the core's spec; problems go to `checker`.
pub(super) fn check(checker: &mut Checker, at: &str, file: &RemediationFile) -> RemediationSpec {
    let mut spec = RemediationSpec::default();
    if let Some(mode) = &file.mode {
        match RemediationMode::parse(mode) {
            Some(mode) => spec.mode = mode,
            None => checker.push(
                format!("{at}.mode"),
                format!("unknown mode `{mode}`: use monitor-only, shadow, dry-run or auto"),
            ),
        }
    }
    if let Some(chooser) = &file.chooser {
        match Chooser::parse(chooser) {
            Some(chooser) => spec.chooser = chooser,
            None => checker.push(
                format!("{at}.chooser"),
                format!("unknown chooser `{chooser}`: use rules or model"),
            ),
        }
    }
    if let Some(environment) = &file.environment {
        spec.labels
            .insert(ENVIRONMENT_LABEL.to_owned(), environment.clone());
    }
    let mut seconds = |name: &str, value: Option<f64>, default: Duration| match value {
        None => default,
        Some(secs) if secs.is_finite() && secs > 0.0 && secs <= 86_400.0 => {
            Duration::from_secs_f64(secs)
        }
        Some(secs) => {
            checker.push(
                format!("{at}.{name}"),
                format!("{secs} is not a duration: use seconds above 0, at most 86400"),
            );
            default
        }
    };
    spec.time_budget = seconds("time_budget_secs", file.time_budget_secs, spec.time_budget);
    spec.approval_expiry = seconds(
        "approval_expiry_secs",
        file.approval_expiry_secs,
        spec.approval_expiry,
    );
    spec.suppress_window = seconds(
        "suppress_window_secs",
        file.suppress_window_secs,
        spec.suppress_window,
    );
    spec.judge_window = seconds(
        "judge_window_secs",
        file.judge_window_secs,
        spec.judge_window,
    );
    spec.action_deadline = seconds(
        "action_deadline_secs",
        file.action_deadline_secs,
        spec.action_deadline,
    );
    spec.choice_deadline = seconds(
        "choice_deadline_secs",
        file.choice_deadline_secs,
        spec.choice_deadline,
    );
    if let Some(strikes) = file.max_strikes {
        spec.max_strikes = strikes;
    }
    for (index, action) in file.actions.iter().enumerate() {
        check_settings(checker, &format!("{at}.actions[{index}]"), action);
        spec.actions.push(ActionSpec {
            id: action.id.clone(),
            executor: action.executor.clone(),
            description: action.description.clone(),
        });
    }
    for (index, strategy) in file.strategies.iter().enumerate() {
        let strategy_at = format!("{at}.strategies[{index}]");
        let steps = strategy
            .steps
            .iter()
            .enumerate()
            .map(|(position, step)| {
                let step_at = format!("{strategy_at}.steps[{position}]");
                let tier = parse_tier(checker, &format!("{step_at}.tier"), &step.tier);
                let tiers_by_environment = step
                    .tiers
                    .iter()
                    .map(|(environment, name)| {
                        let at = format!("{step_at}.tiers.{environment}");
                        (environment.clone(), parse_tier(checker, &at, name))
                    })
                    .collect();
                let cooldown = match step.cooldown_secs {
                    None => Duration::ZERO,
                    Some(secs) if secs.is_finite() && (0.0..=86_400.0).contains(&secs) => {
                        Duration::from_secs_f64(secs)
                    }
                    Some(secs) => {
                        checker.push(
                            format!("{step_at}.cooldown_secs"),
                            format!("{secs} is not a cooldown: use 0 to 86400 seconds"),
                        );
                        Duration::ZERO
                    }
                };
                StrategyStep {
                    action: step.action.clone(),
                    tier,
                    tiers_by_environment,
                    cooldown,
                    max_per_incident: step.max_per_incident.unwrap_or(1),
                    rank: step
                        .rank
                        .unwrap_or_else(|| u32::try_from(position).unwrap_or(u32::MAX)),
                }
            })
            .collect();
        spec.strategies.push(Strategy {
            kind: strategy.kind.clone(),
            matches: IncidentMatch {
                top_error: strategy.matches.top_error.clone(),
                alert: strategy.matches.alert.clone(),
                labels: strategy.matches.labels.clone(),
            },
            steps,
        });
    }
    // The core's own rules (ids, duplicates, steps naming undeclared actions, zero limits), with a path each.
    for problem in spec.check() {
        checker.push(at, problem.to_string());
    }
    spec
}

fn parse_tier(checker: &mut Checker, at: &str, name: &str) -> RiskTier {
    RiskTier::parse(name).unwrap_or_else(|| {
        checker.push(
            at,
            format!("unknown tier `{name}`: use safe, risky or never-auto"),
        );
        RiskTier::NeverAuto
    })
}

/// The executor kind must be known and its settings complete and of the right shape.
fn check_settings(checker: &mut Checker, at: &str, action: &ActionFile) {
    let Some((_, required)) = EXECUTOR_KINDS
        .iter()
        .find(|(kind, _)| *kind == action.executor)
    else {
        let kinds: Vec<&str> = EXECUTOR_KINDS.iter().map(|(kind, _)| *kind).collect();
        checker.push(
            format!("{at}.executor"),
            format!(
                "unknown executor `{}`: use one of {}",
                action.executor,
                kinds.join(", ")
            ),
        );
        return;
    };
    for key in *required {
        if !action.settings.contains_key(*key) {
            checker.push(
                format!("{at}.settings.{key}"),
                format!("a `{}` action needs `{key}`", action.executor),
            );
        }
    }
    for (key, value) in &action.settings {
        let at = format!("{at}.settings.{key}");
        match (action.executor.as_str(), key.as_str()) {
            ("http", "url") => match value.as_str().map(reqwest::Url::parse) {
                Some(Ok(url)) if matches!(url.scheme(), "http" | "https") => {}
                _ => checker.push(at, "`url` must be an http or https URL"),
            },
            ("http", "headers") => super::actions::check_headers(checker, &at, value),
            ("kubernetes-rollout", "api_server") => {
                super::actions::check_api_server(checker, &at, value);
            }
            ("kubernetes-rollout", "token") => super::actions::check_token(checker, &at, value),
            ("kubernetes-rollout", "ca_file") => super::actions::check_ca_file(checker, &at, value),
            ("command", "argv") => {
                let argv: Option<Vec<&str>> = value
                    .as_array()
                    .and_then(|items| items.iter().map(Value::as_str).collect());
                match argv.as_deref() {
                    Some([program, ..]) if program.starts_with('/') => {}
                    _ => checker.push(
                        at,
                        "`argv` must be a non-empty list of strings starting with an absolute program path (no shell)",
                    ),
                }
            }
            _ if !value.is_string() && !value.is_number() && !value.is_boolean() => {
                checker.push(
                    at,
                    format!("`{key}` must be a string, a number or a boolean"),
                );
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> (RemediationSpec, Vec<String>) {
        let file: RemediationFile = toml::from_str(toml_text).expect("parses");
        let mut checker = Checker::default();
        let spec = check(&mut checker, "service[0].remediation", &file);
        let problems = checker
            .problems
            .iter()
            .map(|problem| format!("{}: {}", problem.path, problem.message))
            .collect();
        (spec, problems)
    }

    #[test]
    fn a_sound_remediation_becomes_the_cores_spec() {
        let (spec, problems) = parse(
            r#"
            mode = "auto"
            chooser = "model"
            choice_deadline_secs = 12
            environment = "production"
            time_budget_secs = 120

            [[actions]]
            id = "flag-off"
            executor = "http"
            settings = { method = "POST", url = "http://127.0.0.1:8001/admin/flags/payment?enabled=false" }

            [[actions]]
            id = "restart"
            executor = "docker-restart"
            settings = { container = "shop" }

            [[strategies]]
            kind = "payment-errors"
            match = { top_error = "/payment" }
            steps = [
              { action = "flag-off", tier = "safe", tiers = { production = "risky" }, cooldown_secs = 30, max_per_incident = 2 },
              { action = "restart", tier = "risky" },
            ]
            "#,
        );
        assert_eq!(problems, Vec::<String>::new());
        assert_eq!(spec.mode, RemediationMode::Auto);
        assert_eq!(spec.chooser, Chooser::Model);
        assert_eq!(spec.choice_deadline, Duration::from_secs(12));
        assert_eq!(spec.environment(), Some("production"));
        assert_eq!(spec.time_budget, Duration::from_secs(120));
        let steps = &spec.strategies[0].steps;
        assert_eq!(steps[0].tier_in(spec.environment()), RiskTier::Risky);
        assert_eq!(steps[0].cooldown, Duration::from_secs(30));
        assert_eq!((steps[0].rank, steps[1].rank), (0, 1));
        assert_eq!(steps[1].max_per_incident, 1);
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let (_, problems) = parse(
            r#"
            mode = "yolo"
            chooser = "oracle"
            judge_window_secs = 0

            [[actions]]
            id = "flag-off"
            executor = "http"
            settings = { url = "ftp://example" }

            [[actions]]
            id = "run"
            executor = "command"
            settings = { argv = ["sh", "-c", "reboot"] }

            [[actions]]
            id = "pod"
            executor = "kubernetes-rollout"
            settings = { api_server = "https://k8s.example.com", token = "${env:K8S_TOKEN}", namespace = "shop" }

            [[actions]]
            id = "magic"
            executor = "ssh"

            [[actions]]
            id = "flag-off"
            executor = "docker-restart"
            settings = { container = "shop" }

            [[strategies]]
            kind = "any"
            steps = [
              { action = "flag-off", tier = "sometimes" },
              { action = "reboot-the-world", tier = "safe", cooldown_secs = -1 },
            ]
            "#,
        );
        assert_eq!(
            problems,
            [
                "service[0].remediation.mode: unknown mode `yolo`: use monitor-only, shadow, dry-run or auto",
                "service[0].remediation.chooser: unknown chooser `oracle`: use rules or model",
                "service[0].remediation.judge_window_secs: 0 is not a duration: use seconds above 0, at most 86400",
                "service[0].remediation.actions[0].settings.url: `url` must be an http or https URL",
                "service[0].remediation.actions[1].settings.argv: `argv` must be a non-empty list of strings starting with an absolute program path (no shell)",
                "service[0].remediation.actions[2].settings.deployment: a `kubernetes-rollout` action needs `deployment`",
                "service[0].remediation.actions[3].executor: unknown executor `ssh`: use one of http, command, docker-restart, kubernetes-rollout",
                "service[0].remediation.strategies[0].steps[0].tier: unknown tier `sometimes`: use safe, risky or never-auto",
                "service[0].remediation.strategies[0].steps[1].cooldown_secs: -1 is not a cooldown: use 0 to 86400 seconds",
                "service[0].remediation: action id \"flag-off\" is declared twice",
                "service[0].remediation: strategy \"any\" names unknown action \"reboot-the-world\"",
            ]
        );
    }
}
