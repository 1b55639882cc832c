//! The vocabulary of the runner: a case's identity (id, description, clause), its outcome, and which phase of the
//! suite produces it.

use serde::{Deserialize, Serialize};

use crate::spec::truncate;

/// What a case is, independent of any run: the data `--list` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseInfo {
    /// `area/operation/n`, for example `shapes/getStatus/1`.
    pub id: String,
    /// One line saying what the case checks.
    pub description: String,
    /// The contract clause and schema it checks (`seed §5.3 #1; operationId getStatus; #/components/schemas/…`).
    pub clause: String,
    /// The smallest profile the case belongs to: a `seed` case also runs under `fixloop`.
    pub profile: Profile,
    /// Whether the case runs only when a webhook secret is given (`--webhook-secret`).
    #[serde(skip)]
    pub needs_webhook_secret: bool,
    /// The phase of the suite that produces the case's outcome.
    #[serde(skip)]
    pub phase: Phase,
}

/// Which promises a run checks.
///
/// `Seed` checks exactly what the seed's contract (its section 5 and the behaviours it states) requires, so that
/// any backend written from the seed alone can be judged by what a frontend built on the seed relies on.
/// `Fixloop` adds FixLoop's own documented guarantees: the `ErrorBody` shape of every error, the join snapshot a
/// new WebSocket client receives, value ranges and string bounds, timestamps with a UTC offset, the additive
/// endpoints and the alert webhooks.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// The seed's contract only.
    Seed,
    /// The seed's contract and FixLoop's documented additions (the default).
    #[default]
    Fixloop,
}

impl Profile {
    /// `seed` or `fixloop`, as the CLI and the reports spell it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Seed => "seed",
            Self::Fixloop => "fixloop",
        }
    }

    /// Whether a case of profile `case` belongs to a run of this profile (the profiles are nested).
    #[must_use]
    pub fn includes(self, case: Self) -> bool {
        case <= self
    }
}

impl std::str::FromStr for Profile {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "seed" => Ok(Self::Seed),
            "fixloop" => Ok(Self::Fixloop),
            other => Err(format!(
                "unknown profile {other:?} (expected seed or fixloop)"
            )),
        }
    }
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The phases of a run, in execution order. A selected case makes its phase run; the flow phase also produces
/// the messages the WebSocket phase judges, so selecting a WebSocket case runs the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Stateless REST calls made before the flow.
    Stateless,
    /// Generated invalid requests.
    BadInput,
    /// The alert webhooks (only with a webhook secret).
    Webhook,
    /// The demo flow over REST and WebSocket (and the REST shapes that need its state).
    Flow,
    /// Judgements over the WebSocket messages recorded during the flow.
    WebSocket,
}

/// The outcome of one case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum Outcome {
    /// The server met the requirement.
    Pass,
    /// The server broke the requirement.
    Fail {
        /// What the contract asks for.
        expected: String,
        /// What the server did.
        actual: String,
        /// Where: a JSON pointer into the response or message, or a short location such as `status`.
        path: String,
    },
    /// The case could not be judged (or was judged only through a fallback the server needed).
    Skip {
        /// Why.
        reason: String,
    },
}

/// A case together with its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseResult {
    /// The case's id.
    pub id: String,
    /// The case's one-line description.
    pub description: String,
    /// The clause and schema the case checks.
    pub clause: String,
    /// The smallest profile the case belongs to.
    pub profile: Profile,
    /// The outcome.
    #[serde(flatten)]
    pub outcome: Outcome,
}

impl Outcome {
    /// A failure.
    pub fn fail(
        expected: impl Into<String>,
        actual: impl Into<String>,
        path: impl Into<String>,
    ) -> Self {
        Self::Fail {
            expected: expected.into(),
            actual: actual.into(),
            path: path.into(),
        }
    }

    /// A skip.
    pub fn skip(reason: impl Into<String>) -> Self {
        Self::Skip {
            reason: reason.into(),
        }
    }

    /// Whether this is a failure.
    #[must_use]
    pub fn is_fail(&self) -> bool {
        matches!(self, Self::Fail { .. })
    }

    /// `PASS`, `FAIL` or `SKIP`.
    #[must_use]
    pub fn label(&self) -> &'static str {
        match self {
            Self::Pass => "PASS",
            Self::Fail { .. } => "FAIL",
            Self::Skip { .. } => "SKIP",
        }
    }

    /// [`Self::short_reason`] cut to at most `max` characters, the cut marked with `…` (what the CLI prints).
    #[must_use]
    pub fn short_reason_at_most(&self, max: usize) -> String {
        truncate(&self.short_reason(), max)
    }

    /// A one-line reason (empty for a pass).
    #[must_use]
    pub fn short_reason(&self) -> String {
        match self {
            Self::Pass => String::new(),
            Self::Fail {
                expected,
                actual,
                path,
            } => {
                let at = if path.is_empty() {
                    String::new()
                } else {
                    format!("at {path}: ")
                };
                format!("{at}expected {expected}; got {actual}")
            }
            Self::Skip { reason } => reason.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_reason_is_cut_to_the_bound_and_marked() {
        let long = Outcome::skip("x".repeat(300));
        assert_eq!(
            long.short_reason_at_most(240),
            format!("{}…", "x".repeat(240))
        );
        assert_eq!(Outcome::skip("short").short_reason_at_most(240), "short");
    }
}
