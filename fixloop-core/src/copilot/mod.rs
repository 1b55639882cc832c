//! The copilot's pure half, for every embedder of the core: what a copilot is given ([`CopilotState`], a snapshot
//! of the engine's state), what it answers ([`CopilotReply`], with the author's [`Claim`] about recovery), and the
//! safety rule ([`safety`]) that decides, in code, what an answer may say about the service's health before the
//! status is RECOVERED. Asking a model, looking things up and the fallback are I/O and belong to the server and
//! the adapters; the rule is applied once to every answer, whichever copilot wrote it.

use fixloop_contract::{IncidentCard, Link, SystemStatus, TestRun};

mod claims;
pub mod safety;
mod text;
mod topics;

/// What the copilot may know: a snapshot of the state.
#[derive(Debug, Clone, PartialEq)]
pub struct CopilotState {
    /// The system status.
    pub status: SystemStatus,
    /// The open incident, if any.
    pub incident: Option<IncidentCard>,
    /// The latest run of the incident, if any.
    pub run: Option<TestRun>,
    /// Why the status is VALIDATING and not RECOVERED, if known.
    pub recovery_blocker: Option<String>,
    /// Absolute URL of the current run (`GET /api/tests/runs/{id}`), for citations.
    pub run_url: Option<String>,
}

/// The copilot's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct CopilotReply {
    /// The answer, in plain text.
    pub answer: String,
    /// Links backing the answer; each URL appears in the state the copilot was given.
    pub citations: Vec<Link>,
    /// What the author says the answer claims about recovery: a model's structured `claim` field, or
    /// [`Claim::None`] (copilots without one). The safety rule ([`safety::guard`]) reads it.
    pub claim: Claim,
}

/// What a model says its answer claims about recovery (the `claim` field of its structured reply).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Claim {
    /// The answer says the service recovered or that it is safe to resume (`"recovered"`).
    Recovered,
    /// The answer says it has not recovered (`"not_recovered"`).
    NotRecovered,
    /// The answer makes no claim about recovery (`"none"`, and anything absent or unknown).
    #[default]
    None,
}

impl Claim {
    /// Reads the model's `claim` field, leniently: unknown or absent values are [`Claim::None`] (the detector still
    /// reads the answer).
    #[must_use]
    pub fn parse(value: Option<&str>) -> Self {
        let Some(value) = value else {
            return Self::None;
        };
        match value
            .trim()
            .to_ascii_lowercase()
            .replace(['-', ' '], "_")
            .as_str()
        {
            "recovered" | "safe" | "resolved" => Self::Recovered,
            "not_recovered" | "unsafe" | "not_safe" => Self::NotRecovered,
            _ => Self::None,
        }
    }
}
