//! Remediation as plain data: the actions a service declares, the strategies that order them per incident kind, the
//! risk tier of each step, and the mode FixLoop runs them in ([`RemediationSpec`]). A server parses them from the
//! service profile (where each action also has its executor's settings, which the core never sees) and hands them
//! to the engine inside its [`Config`](crate::engine::Config); the engine's `remediation` module decides with them.
//!
//! [`RemediationSpec::check`] reports every problem of a spec at once (unknown action ids, duplicates, zero
//! limits); [`validate_choice`] is the gate a model's choice goes through: a model may only pick, among the
//! actions a strategy declares, one the spec knows (the model proposes, code decides).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

/// The default time budget of an incident: after this long without recovery, it is escalated (the PRD's 5
/// minutes).
pub const DEFAULT_TIME_BUDGET: Duration = Duration::from_secs(5 * 60);
/// How long a proposal waits for an approval by default before it lapses.
pub const DEFAULT_APPROVAL_EXPIRY: Duration = Duration::from_secs(2 * 60);
/// How long after an action the engine ignores alerts and drops the signals by default (the action's own side
/// effects: a restart's failed requests).
pub const DEFAULT_SUPPRESS_WINDOW: Duration = Duration::from_secs(10);
/// How long after the suppression window the engine waits for a verdict on the action by default; without one it
/// is inconclusive.
pub const DEFAULT_JUDGE_WINDOW: Duration = Duration::from_secs(60);
/// The default deadline of one action's execution.
pub const DEFAULT_ACTION_DEADLINE: Duration = Duration::from_secs(60);
/// Ineffective or inconclusive outcomes per (incident fingerprint, action) after which the action is not tried
/// again for that fingerprint (the 3-strike rule).
pub const DEFAULT_MAX_STRIKES: u32 = 3;
/// How long the engine waits for a model's choice of step by default ([`RemediationSpec::choice_deadline`]);
/// without an answer by then, the rules choose.
pub const DEFAULT_CHOICE_DEADLINE: Duration = Duration::from_secs(30);
/// The label of the service that selects a step's tier ([`StrategyStep::tiers_by_environment`]).
pub const ENVIRONMENT_LABEL: &str = "environment";

/// How far FixLoop may go on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum RemediationMode {
    /// Propose and record; never act (the default).
    #[default]
    MonitorOnly,
    /// Decide and record "would have run X", and what the verdict then was; never act.
    Shadow,
    /// Go through every rule (approvals included) but ask the driver to log the action instead of carrying it out.
    DryRun,
    /// Safe steps run; risky ones wait for an approval; never-auto ones are left to a human.
    Auto,
}

impl RemediationMode {
    /// Every mode, in the order of autonomy.
    pub const ALL: [Self; 4] = [Self::MonitorOnly, Self::Shadow, Self::DryRun, Self::Auto];

    /// The mode's name in profiles and `FIXLOOP_REMEDIATION_MODE` (`monitor-only`, `shadow`, `dry-run`, `auto`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MonitorOnly => "monitor-only",
            Self::Shadow => "shadow",
            Self::DryRun => "dry-run",
            Self::Auto => "auto",
        }
    }

    /// The mode named `name` ([`RemediationMode::as_str`]), if any.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|mode| mode.as_str() == name)
    }

    /// Whether the mode ever asks the driver to execute something (for real or as a dry run).
    #[must_use]
    pub fn executes(self) -> bool {
        matches!(self, Self::DryRun | Self::Auto)
    }
}

impl fmt::Display for RemediationMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who picks the next step of a strategy among those that may be proposed now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Chooser {
    /// Rank, then success rate, then declared order (the default, and the fallback of [`Chooser::Model`]).
    #[default]
    Rules,
    /// A configured model picks one of the ready steps by id; its pick passes [`validate_choice`] and must be
    /// ready now, else (or without an answer in time) the rules pick. Either way the same tiers and approvals
    /// apply.
    Model,
}

impl Chooser {
    /// Every chooser.
    pub const ALL: [Self; 2] = [Self::Rules, Self::Model];

    /// The chooser's name in profiles and `FIXLOOP_REMEDIATION_CHOOSER` (`rules`, `model`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rules => "rules",
            Self::Model => "model",
        }
    }

    /// The chooser named `name` ([`Chooser::as_str`]), if any.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|chooser| chooser.as_str() == name)
    }
}

impl fmt::Display for Chooser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How much trust a step needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RiskTier {
    /// May run automatically (in `auto` and `dry-run`).
    Safe,
    /// Runs only after an operator's approval.
    Risky,
    /// FixLoop never carries it out: it is proposed for a human to do by hand.
    NeverAuto,
}

impl RiskTier {
    /// Every tier.
    pub const ALL: [Self; 3] = [Self::Safe, Self::Risky, Self::NeverAuto];

    /// The tier's name in profiles (`safe`, `risky`, `never-auto`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Safe => "safe",
            Self::Risky => "risky",
            Self::NeverAuto => "never-auto",
        }
    }

    /// The tier named `name` ([`RiskTier::as_str`]), if any.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|tier| tier.as_str() == name)
    }
}

impl fmt::Display for RiskTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An action the service declares: an id and the kind of executor that carries it out (`http`, `command`,
/// `docker-restart`, `kubernetes-rollout`); its settings stay with the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionSpec {
    /// Unique id (`A-Z a-z 0-9 . _ -`, at most 64 bytes), the only thing a model may name.
    pub id: String,
    /// The executor kind, as the profile names it.
    pub executor: String,
    /// What the action does, in a sentence, for people and models.
    pub description: String,
}

/// Which incidents a strategy is for: every condition given must hold; none given matches every incident.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IncidentMatch {
    /// The incident's top error contains this text.
    pub top_error: Option<String>,
    /// The incident's title (an alert's name for an alert-opened incident) contains this text.
    pub alert: Option<String>,
    /// The service's labels have these values.
    pub labels: BTreeMap<String, String>,
}

/// One step of a strategy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrategyStep {
    /// The declared action it runs.
    pub action: String,
    /// Its risk tier.
    pub tier: RiskTier,
    /// The tier in a given environment (the service's [`ENVIRONMENT_LABEL`] label), overriding `tier`.
    pub tiers_by_environment: BTreeMap<String, RiskTier>,
    /// Least time between two proposals of this step in one incident.
    pub cooldown: Duration,
    /// Most proposals of this step in one incident (at least 1).
    pub max_per_incident: u32,
    /// Steps are tried by rank (lower first); among steps of the same rank, the one with the better success rate
    /// for the incident kind first, then in declared order. A profile's default is the step's position.
    pub rank: u32,
}

impl StrategyStep {
    /// The tier that applies in `environment`.
    #[must_use]
    pub fn tier_in(&self, environment: Option<&str>) -> RiskTier {
        environment
            .and_then(|environment| self.tiers_by_environment.get(environment))
            .copied()
            .unwrap_or(self.tier)
    }
}

/// The ordered steps for one kind of incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Strategy {
    /// The incident kind's name (`payment-errors`), unique; success rates are kept per kind and action.
    pub kind: String,
    /// Which incidents it is for.
    pub matches: IncidentMatch,
    /// Its steps.
    pub steps: Vec<StrategyStep>,
}

impl Strategy {
    /// Whether this strategy is for an incident with this top error and title on a service with these labels.
    #[must_use]
    pub fn applies(
        &self,
        top_error: Option<&str>,
        title: &str,
        labels: &BTreeMap<String, String>,
    ) -> bool {
        let matches = &self.matches;
        matches
            .top_error
            .as_deref()
            .is_none_or(|needle| top_error.is_some_and(|error| error.contains(needle)))
            && matches
                .alert
                .as_deref()
                .is_none_or(|needle| title.contains(needle))
            && matches
                .labels
                .iter()
                .all(|(key, value)| labels.get(key) == Some(value))
    }
}

/// A service's remediation: actions, strategies, mode and limits. The default has no strategy, so the engine
/// never proposes anything.
#[derive(Debug, Clone, PartialEq)]
pub struct RemediationSpec {
    /// The mode (default `monitor-only`).
    pub mode: RemediationMode,
    /// The service's labels; `environment` selects the steps' tiers.
    pub labels: BTreeMap<String, String>,
    /// The declared actions.
    pub actions: Vec<ActionSpec>,
    /// The strategies, first match wins.
    pub strategies: Vec<Strategy>,
    /// After this long without recovery since detection, the incident is escalated (default 5 minutes).
    pub time_budget: Duration,
    /// A proposal waiting for approval lapses after this long (default 2 minutes).
    pub approval_expiry: Duration,
    /// After an action, alerts are ignored and the signals dropped for this long (default 10 s).
    pub suppress_window: Duration,
    /// After the suppression window, the verdict on the action must come within this long (default 60 s).
    pub judge_window: Duration,
    /// Deadline of one action's execution (default 60 s).
    pub action_deadline: Duration,
    /// The strike limit per (incident fingerprint, action) (default 3).
    pub max_strikes: u32,
    /// Who picks the step (default the rules).
    pub chooser: Chooser,
    /// How long the engine waits for a model's pick before the rules pick (default 30 s).
    pub choice_deadline: Duration,
}

impl Default for RemediationSpec {
    fn default() -> Self {
        Self {
            mode: RemediationMode::default(),
            labels: BTreeMap::new(),
            actions: Vec::new(),
            strategies: Vec::new(),
            time_budget: DEFAULT_TIME_BUDGET,
            approval_expiry: DEFAULT_APPROVAL_EXPIRY,
            suppress_window: DEFAULT_SUPPRESS_WINDOW,
            judge_window: DEFAULT_JUDGE_WINDOW,
            action_deadline: DEFAULT_ACTION_DEADLINE,
            max_strikes: DEFAULT_MAX_STRIKES,
            chooser: Chooser::default(),
            choice_deadline: DEFAULT_CHOICE_DEADLINE,
        }
    }
}

/// A problem of a [`RemediationSpec`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecProblem {
    /// An action or strategy id is empty, too long, or uses other characters than `A-Z a-z 0-9 . _ -`.
    #[error("{what} id {id:?} is not valid (1 to 64 of A-Z a-z 0-9 . _ -)")]
    InvalidId {
        /// `action` or `strategy`.
        what: &'static str,
        /// The id.
        id: String,
    },
    /// Two actions share an id.
    #[error("action id {0:?} is declared twice")]
    DuplicateAction(String),
    /// Two strategies share a kind.
    #[error("strategy {0:?} is declared twice")]
    DuplicateStrategy(String),
    /// A strategy has no step.
    #[error("strategy {0:?} has no step")]
    EmptyStrategy(String),
    /// A step names an action the spec does not declare.
    #[error("strategy {strategy:?} names unknown action {action:?}")]
    UnknownAction {
        /// The strategy.
        strategy: String,
        /// The undeclared action id.
        action: String,
    },
    /// A strategy names the same action twice.
    #[error("strategy {strategy:?} names action {action:?} twice")]
    DuplicateStep {
        /// The strategy.
        strategy: String,
        /// The action.
        action: String,
    },
    /// A step allows no proposal at all.
    #[error("strategy {strategy:?}: step {action:?} has max_per_incident 0")]
    ZeroMaxPerIncident {
        /// The strategy.
        strategy: String,
        /// The action.
        action: String,
    },
    /// A duration that must be positive is zero.
    #[error("{0} must be longer than zero")]
    ZeroDuration(&'static str),
    /// The strike limit is zero.
    #[error("max_strikes must be at least 1")]
    ZeroStrikes,
}

/// Why a model's choice of action was refused ([`validate_choice`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChoiceError {
    /// No strategy has this kind.
    #[error("no strategy for incident kind {0:?}")]
    UnknownKind(String),
    /// The action id is not declared.
    #[error("action {0:?} is not declared")]
    UndeclaredAction(String),
    /// The action is declared but not a step of the incident kind's strategy.
    #[error("action {action:?} is not a step of strategy {kind:?}")]
    NotInStrategy {
        /// The strategy.
        kind: String,
        /// The action.
        action: String,
    },
}

impl RemediationSpec {
    /// Whether the engine has anything to decide: at least one strategy.
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        !self.strategies.is_empty()
    }

    /// The service's environment label, if any.
    #[must_use]
    pub fn environment(&self) -> Option<&str> {
        self.labels.get(ENVIRONMENT_LABEL).map(String::as_str)
    }

    /// The declared action `id`.
    #[must_use]
    pub fn action(&self, id: &str) -> Option<&ActionSpec> {
        self.actions.iter().find(|action| action.id == id)
    }

    /// The first strategy for an incident with this top error and title.
    #[must_use]
    pub fn strategy_for(&self, top_error: Option<&str>, title: &str) -> Option<&Strategy> {
        self.strategies
            .iter()
            .find(|strategy| strategy.applies(top_error, title, &self.labels))
    }

    /// The strategy of kind `kind`.
    #[must_use]
    pub fn strategy(&self, kind: &str) -> Option<&Strategy> {
        self.strategies
            .iter()
            .find(|strategy| strategy.kind == kind)
    }

    /// Every problem of this spec, in order; empty when it is sound.
    #[must_use]
    pub fn check(&self) -> Vec<SpecProblem> {
        let mut problems = Vec::new();
        let mut actions = BTreeSet::new();
        for action in &self.actions {
            if !valid_id(&action.id) {
                problems.push(SpecProblem::InvalidId {
                    what: "action",
                    id: action.id.clone(),
                });
            }
            if !actions.insert(action.id.as_str()) {
                problems.push(SpecProblem::DuplicateAction(action.id.clone()));
            }
        }
        let mut kinds = BTreeSet::new();
        for strategy in &self.strategies {
            if !valid_id(&strategy.kind) {
                problems.push(SpecProblem::InvalidId {
                    what: "strategy",
                    id: strategy.kind.clone(),
                });
            }
            if !kinds.insert(strategy.kind.as_str()) {
                problems.push(SpecProblem::DuplicateStrategy(strategy.kind.clone()));
            }
            if strategy.steps.is_empty() {
                problems.push(SpecProblem::EmptyStrategy(strategy.kind.clone()));
            }
            let mut steps = BTreeSet::new();
            for step in &strategy.steps {
                if !actions.contains(step.action.as_str()) {
                    problems.push(SpecProblem::UnknownAction {
                        strategy: strategy.kind.clone(),
                        action: step.action.clone(),
                    });
                }
                if !steps.insert(step.action.as_str()) {
                    problems.push(SpecProblem::DuplicateStep {
                        strategy: strategy.kind.clone(),
                        action: step.action.clone(),
                    });
                }
                if step.max_per_incident == 0 {
                    problems.push(SpecProblem::ZeroMaxPerIncident {
                        strategy: strategy.kind.clone(),
                        action: step.action.clone(),
                    });
                }
            }
        }
        for (name, duration) in [
            ("time_budget", self.time_budget),
            ("approval_expiry", self.approval_expiry),
            ("judge_window", self.judge_window),
            ("action_deadline", self.action_deadline),
            ("choice_deadline", self.choice_deadline),
        ] {
            if duration.is_zero() {
                problems.push(SpecProblem::ZeroDuration(name));
            }
        }
        if self.max_strikes == 0 {
            problems.push(SpecProblem::ZeroStrikes);
        }
        problems
    }
}

/// The gate for a model's choice: `action` must be declared and be a step of the strategy for incident kind
/// `kind`. On success, the step (whose tier, cooldown and limits still apply: the choice goes through the same
/// approvals as the rule-based one).
///
/// # Errors
///
/// [`ChoiceError`] says why the choice is refused; the caller falls back to the rule-based choice.
pub fn validate_choice<'a>(
    spec: &'a RemediationSpec,
    kind: &str,
    action: &str,
) -> Result<&'a StrategyStep, ChoiceError> {
    let strategy = spec
        .strategy(kind)
        .ok_or_else(|| ChoiceError::UnknownKind(kind.to_owned()))?;
    if spec.action(action).is_none() {
        return Err(ChoiceError::UndeclaredAction(action.to_owned()));
    }
    strategy
        .steps
        .iter()
        .find(|step| step.action == action)
        .ok_or_else(|| ChoiceError::NotInStrategy {
            kind: kind.to_owned(),
            action: action.to_owned(),
        })
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(action: &str, tier: RiskTier) -> StrategyStep {
        StrategyStep {
            action: action.to_owned(),
            tier,
            tiers_by_environment: BTreeMap::new(),
            cooldown: Duration::ZERO,
            max_per_incident: 1,
            rank: 0,
        }
    }

    fn spec() -> RemediationSpec {
        RemediationSpec {
            actions: vec![ActionSpec {
                id: "flag-off".to_owned(),
                executor: "http".to_owned(),
                description: String::new(),
            }],
            strategies: vec![Strategy {
                kind: "payments".to_owned(),
                matches: IncidentMatch {
                    top_error: Some("/payments".to_owned()),
                    ..IncidentMatch::default()
                },
                steps: vec![step("flag-off", RiskTier::Safe)],
            }],
            ..RemediationSpec::default()
        }
    }

    #[test]
    fn check_reports_every_problem_at_once() {
        let mut spec = spec();
        spec.actions.push(spec.actions[0].clone());
        spec.actions.push(ActionSpec {
            id: "bad id".to_owned(),
            executor: "http".to_owned(),
            description: String::new(),
        });
        let mut strategy = spec.strategies[0].clone();
        strategy.steps.push(step("restart", RiskTier::Risky));
        strategy.steps.push(step("flag-off", RiskTier::Safe));
        strategy.steps[0].max_per_incident = 0;
        spec.strategies.push(strategy);
        spec.strategies.push(Strategy {
            kind: "empty".to_owned(),
            matches: IncidentMatch::default(),
            steps: Vec::new(),
        });
        spec.time_budget = Duration::ZERO;
        spec.max_strikes = 0;
        let problems: Vec<String> = spec.check().iter().map(ToString::to_string).collect();
        assert_eq!(
            problems,
            [
                "action id \"flag-off\" is declared twice",
                "action id \"bad id\" is not valid (1 to 64 of A-Z a-z 0-9 . _ -)",
                "strategy \"payments\" is declared twice",
                "strategy \"payments\": step \"flag-off\" has max_per_incident 0",
                "strategy \"payments\" names unknown action \"restart\"",
                "strategy \"payments\" names action \"flag-off\" twice",
                "strategy \"empty\" has no step",
                "time_budget must be longer than zero",
                "max_strikes must be at least 1",
            ]
        );
        assert!(self::spec().check().is_empty());
    }

    #[test]
    fn a_model_may_only_choose_a_declared_step_of_the_kinds_strategy() {
        let mut spec = spec();
        spec.actions.push(ActionSpec {
            id: "restart".to_owned(),
            executor: "docker-restart".to_owned(),
            description: String::new(),
        });
        assert!(validate_choice(&spec, "payments", "flag-off").is_ok());
        assert_eq!(
            validate_choice(&spec, "payments", "rm-rf"),
            Err(ChoiceError::UndeclaredAction("rm-rf".to_owned()))
        );
        assert!(matches!(
            validate_choice(&spec, "payments", "restart"),
            Err(ChoiceError::NotInStrategy { .. })
        ));
        assert!(matches!(
            validate_choice(&spec, "other", "flag-off"),
            Err(ChoiceError::UnknownKind(_))
        ));
    }

    #[test]
    fn strategies_match_on_top_error_title_and_labels_and_tiers_follow_the_environment() {
        let mut spec = spec();
        assert!(
            spec.strategy_for(Some("POST /payments -> 500"), "x")
                .is_some()
        );
        assert!(spec.strategy_for(None, "x").is_none());
        spec.strategies[0]
            .matches
            .labels
            .insert(ENVIRONMENT_LABEL.to_owned(), "production".to_owned());
        assert!(
            spec.strategy_for(Some("POST /payments -> 500"), "x")
                .is_none()
        );
        spec.labels
            .insert(ENVIRONMENT_LABEL.to_owned(), "production".to_owned());
        assert!(
            spec.strategy_for(Some("POST /payments -> 500"), "x")
                .is_some()
        );
        let mut step = step("flag-off", RiskTier::Safe);
        step.tiers_by_environment
            .insert("production".to_owned(), RiskTier::Risky);
        assert_eq!(step.tier_in(spec.environment()), RiskTier::Risky);
        assert_eq!(step.tier_in(Some("staging")), RiskTier::Safe);
        assert_eq!(
            RemediationMode::parse("dry-run"),
            Some(RemediationMode::DryRun)
        );
        assert_eq!(RiskTier::parse("never-auto"), Some(RiskTier::NeverAuto));
    }
}
