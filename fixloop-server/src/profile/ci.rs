//! The profile's `[ci]` section: CI self-heal through one CI provider. Parsed from [`CiFile`] into a checked
//! [`CiProfile`]: the provider, its base URL, its token (a `${env:NAME}` reference, resolved from the environment
//! like every profile secret), the repositories it may act on, and the policy ([`HealPolicy`]: eligible classes,
//! reruns per (run, class), minimum confidence).
//!
//! ```toml
//! [ci]
//! provider = "github"                 # or "gitlab"
//! token = "${env:GITHUB_TOKEN}"       # actions: write (GitHub), api scope (GitLab)
//! eligible = ["infrastructure", "network", "timeout"]
//! max_attempts = 2                    # reruns per (run, class); default 2
//!
//! [ci.repositories]                   # the intake's repository = the provider's project
//! "acme/shop" = "acme/shop"
//! ```

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use fixloop_adapters::Secret;
use fixloop_core::ci::FailureClass;
use fixloop_core::ci::heal::{
    DEFAULT_MAX_ATTEMPTS, DEFAULT_MIN_CONFIDENCE, HealPolicy, MAX_MAX_ATTEMPTS,
};
use serde::{Deserialize, Serialize};

use super::{ProfileProblem, Secrets};

/// The longest rerun request timeout a profile may set, in seconds.
pub const MAX_CI_TIMEOUT_SECS: u64 = 60;

/// `[ci]` as written.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CiFile {
    /// `github` or `gitlab`.
    pub provider: CiProviderKind,
    /// The API's base URL: default `https://api.github.com` (GitHub Enterprise Server: `https://<host>/api/v3`) or
    /// `https://gitlab.com` (a self-hosted instance's URL). The token is sent only there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// The provider's token as a secret reference, `${env:NAME}`.
    pub token: String,
    /// The classes a rerun may fix (the classifier's names); at least one, never `unknown`.
    pub eligible: Vec<String>,
    /// Most reruns per (run, class), 1 to 10. Default 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// The classifier's confidence a rerun needs, 0 to 1. Default 0.5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_confidence: Option<f64>,
    /// How long one rerun request may take, in seconds (1 to 60). Default 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
    /// The repositories self-heal may act on: the intake's `repository` → the provider's project (`owner/repo`, a
    /// GitLab project id or path). An intake of another repository is never rerun.
    pub repositories: BTreeMap<String, String>,
}

/// The CI provider of `[ci]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CiProviderKind {
    /// GitHub Actions.
    Github,
    /// GitLab CI.
    Gitlab,
}

/// `[ci]`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct CiProfile {
    /// The provider.
    pub provider: CiProviderKind,
    /// The API's base URL (the default filled in).
    pub base_url: String,
    /// The token's environment name.
    pub token_name: String,
    /// The token; empty when parsed without the environment.
    pub token: Secret,
    /// The intake's repository → the provider's project.
    pub repositories: BTreeMap<String, String>,
    /// What may be rerun, and how often.
    pub policy: HealPolicy,
    /// How long one rerun request may take.
    pub timeout: Duration,
}

/// Checks `[ci]`, pushing every problem.
pub(super) fn check(
    file: CiFile,
    secrets: Secrets<'_>,
    problems: &mut Vec<ProfileProblem>,
) -> Option<CiProfile> {
    let before = problems.len();
    let mut push = |path: &str, message: String| {
        problems.push(ProfileProblem {
            path: format!("ci.{path}"),
            message,
        });
    };
    let base_url = file.base_url.unwrap_or_else(|| {
        match file.provider {
            CiProviderKind::Github => "https://api.github.com",
            CiProviderKind::Gitlab => "https://gitlab.com",
        }
        .to_owned()
    });
    match reqwest::Url::parse(&base_url) {
        Ok(url)
            if matches!(url.scheme(), "http" | "https")
                && url.host_str().is_some_and(|host| !host.is_empty())
                && url.query().is_none()
                && url.fragment().is_none() => {}
        _ => push(
            "base_url",
            format!("expected an http or https URL with a host and no query, got {base_url:?}"),
        ),
    }
    let token_name = file
        .token
        .strip_prefix("${env:")
        .and_then(|rest| rest.strip_suffix('}'))
        .filter(|name| fixloop_core::service::is_secret_name(name))
        .map(str::to_owned);
    let mut token = Secret::default();
    match (&token_name, secrets) {
        (None, _) => push(
            "token",
            "the token must be a secret reference, ${env:NAME} (NAME made of A-Z, 0-9 and _), never the token itself"
                .to_owned(),
        ),
        (Some(name), Secrets::From(environment)) => match lookup(environment, name) {
            Some(value) => token = Secret::new(value),
            None => push(
                "token",
                format!("the environment has no {name} (or it is empty)"),
            ),
        },
        (Some(_), Secrets::Unresolved) => {}
    }
    let mut eligible = Vec::new();
    if file.eligible.is_empty() {
        push(
            "eligible",
            "list at least one class a rerun may fix (infrastructure, network, timeout…)"
                .to_owned(),
        );
    }
    for (index, name) in file.eligible.iter().enumerate() {
        match name.parse::<FailureClass>() {
            Ok(FailureClass::Unknown) => push(
                &format!("eligible[{index}]"),
                "`unknown` is never eligible: nothing says the failure is transient".to_owned(),
            ),
            Ok(class) => eligible.push(class),
            Err(_) => push(
                &format!("eligible[{index}]"),
                format!(
                    "unknown class {name:?}; the classes are {}",
                    FailureClass::ALL
                        .iter()
                        .filter(|class| **class != FailureClass::Unknown)
                        .map(|class| class.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
        }
    }
    let max_attempts = file.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS);
    if !(1..=MAX_MAX_ATTEMPTS).contains(&max_attempts) {
        push(
            "max_attempts",
            format!("expected 1 to {MAX_MAX_ATTEMPTS} reruns, got {max_attempts}"),
        );
    }
    let min_confidence = file.min_confidence.unwrap_or(DEFAULT_MIN_CONFIDENCE);
    if !(0.0..=1.0).contains(&min_confidence) {
        push(
            "min_confidence",
            format!("expected a confidence from 0 to 1, got {min_confidence}"),
        );
    }
    let timeout_secs = file.timeout_secs.unwrap_or(10);
    if !(1..=MAX_CI_TIMEOUT_SECS).contains(&timeout_secs) {
        push(
            "timeout_secs",
            format!("expected 1 to {MAX_CI_TIMEOUT_SECS} seconds, got {timeout_secs}"),
        );
    }
    if file.repositories.is_empty() {
        push(
            "repositories",
            "list the repositories self-heal may act on: \"owner/name\" = \"<the provider's project>\"".to_owned(),
        );
    }
    for (repository, project) in &file.repositories {
        if repository.trim().is_empty() || project.trim().is_empty() {
            push(
                "repositories",
                format!(
                    "a repository and its project must not be blank ({repository:?} = {project:?})"
                ),
            );
        }
    }
    (problems.len() == before).then(|| CiProfile {
        provider: file.provider,
        base_url,
        token_name: token_name.unwrap_or_default(),
        token,
        repositories: file.repositories,
        policy: HealPolicy {
            eligible: eligible.into_iter().collect(),
            max_attempts,
            min_confidence,
        },
        timeout: Duration::from_secs(timeout_secs),
    })
}

fn lookup<'a>(environment: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    environment
        .get(name)
        .map(|value| value.trim())
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> CiFile {
        CiFile {
            provider: CiProviderKind::Gitlab,
            base_url: Some("https://gitlab.internal.example".to_owned()),
            token: "${env:GITLAB_TOKEN}".to_owned(),
            eligible: vec!["infrastructure".to_owned(), "network".to_owned()],
            max_attempts: None,
            min_confidence: None,
            timeout_secs: None,
            repositories: BTreeMap::from([("acme/shop".to_owned(), "42".to_owned())]),
        }
    }

    #[test]
    fn a_valid_section_resolves_its_token_and_takes_the_defaults() {
        let environment = HashMap::from([("GITLAB_TOKEN".to_owned(), "glpat-secret".to_owned())]);
        let mut problems = Vec::new();
        let ci = check(file(), Secrets::From(&environment), &mut problems).expect("valid");
        assert!(problems.is_empty());
        assert_eq!(ci.token.expose(), "glpat-secret");
        assert_eq!(ci.policy.max_attempts, DEFAULT_MAX_ATTEMPTS);
        assert_eq!(ci.timeout, Duration::from_secs(10));
        assert!(!format!("{ci:?}").contains("glpat-secret"));
    }

    #[test]
    fn every_problem_is_reported() {
        let bad = CiFile {
            base_url: Some("ftp://ci".to_owned()),
            token: "glpat-literal".to_owned(),
            eligible: vec!["unknown".to_owned(), "flaky".to_owned()],
            max_attempts: Some(0),
            min_confidence: Some(1.5),
            timeout_secs: Some(600),
            repositories: BTreeMap::new(),
            ..file()
        };
        let mut problems = Vec::new();
        assert!(check(bad, Secrets::Unresolved, &mut problems).is_none());
        let paths: Vec<&str> = problems
            .iter()
            .map(|problem| problem.path.as_str())
            .collect();
        assert_eq!(
            paths,
            [
                "ci.base_url",
                "ci.token",
                "ci.eligible[0]",
                "ci.eligible[1]",
                "ci.max_attempts",
                "ci.min_confidence",
                "ci.timeout_secs",
                "ci.repositories"
            ]
        );
        assert!(
            problems
                .iter()
                .all(|problem| !problem.message.contains("glpat-literal"))
        );
    }

    #[test]
    fn a_missing_token_is_a_problem_when_resolving() {
        let mut problems = Vec::new();
        assert!(check(file(), Secrets::From(&HashMap::new()), &mut problems).is_none());
        assert!(problems[0].message.contains("GITLAB_TOKEN"));
    }
}
