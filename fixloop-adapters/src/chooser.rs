//! The [`RemediationChooser`] port: asks a model to pick the next remediation step among the ones the engine says
//! are ready (`fixloop_core::engine::Effect::ChooseAction`).
//!
//! The answer is a [`ChoiceAnswer`] as the model said it, nothing checked: the engine proposes the pick only when
//! it passes `fixloop_core::remediation::validate_choice` and is one of the ready steps at that moment, else the
//! rules' pick (the model proposes, code decides). One attempt per call; a refusal, a timeout or an answer that is
//! not a pick is an [`AdapterError`], and the rules pick.
//!
//! The request holds action ids, executor kinds, the profile's descriptions, tiers, success figures and the
//! incident's title, top error and error rate: no executor settings, headers or secrets, and no credential of any
//! kind. Real chooser: [`MiniMaxRemediationChooser`](crate::minimax::MiniMaxRemediationChooser). Fake:
//! [`FakeRemediationChooser`](crate::fake::FakeRemediationChooser).

use std::fmt;

use async_trait::async_trait;
pub use fixloop_core::engine::ChoiceCandidate;

use crate::error::AdapterError;

/// What a chooser is asked about.
#[derive(Debug, Clone, PartialEq)]
pub struct ChoiceRequest {
    /// The incident.
    pub incident_id: String,
    /// The strategy's incident kind.
    pub kind: String,
    /// The incident's title.
    pub title: String,
    /// The incident's top error, if any (text from the monitored service: untrusted).
    pub top_error: Option<String>,
    /// The error rate at detection, in percent.
    pub error_rate: f64,
    /// The steps it may pick, in the rules' order (the first is the rules' pick).
    pub candidates: Vec<ChoiceCandidate>,
}

/// A model's pick, unchecked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChoiceAnswer {
    /// The action id it named.
    pub action: String,
    /// Its reason, in a line (may be empty).
    pub reason: String,
}

/// Picks a remediation step.
#[async_trait]
pub trait RemediationChooser: Send + Sync + fmt::Debug {
    /// The chooser's name for reports (`minimax`, `fake`).
    fn chooser(&self) -> &'static str;

    /// One pick for `request`.
    ///
    /// # Errors
    ///
    /// An [`AdapterError`] when the model cannot be asked, refuses, or answers something that is not a pick.
    async fn choose(&self, request: &ChoiceRequest) -> Result<ChoiceAnswer, AdapterError>;
}
