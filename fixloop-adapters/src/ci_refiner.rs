//! The [`CiRefiner`] port: asks a model to refine the deterministic classification of a failed CI job's log.
//!
//! The answer is a [`Proposal`] as the model said it, nothing checked: the caller passes it through the core's
//! rule (`fixloop_core::ci::refine::refine`), which keeps a known class, a confidence in 0..=1 and only the quoted
//! lines that occur in the excerpt, and never lets the model be surer than the classifier without such a line.
//! One attempt per call; a refusal, a timeout or an answer that is not a proposal is an [`AdapterError`], and the
//! caller keeps the classifier's answer.
//!
//! The request holds the log excerpt (already size-capped by the intake) and the classifier's answer: nothing
//! secret. Real refiner: [`MiniMaxCiRefiner`](crate::minimax::MiniMaxCiRefiner). Fake:
//! [`FakeCiRefiner`](crate::fake::FakeCiRefiner).

use std::fmt;

use async_trait::async_trait;
use fixloop_core::ci::Classification;
pub use fixloop_core::ci::refine::Proposal;

use crate::error::AdapterError;

/// What a refiner is asked about.
#[derive(Debug, Clone, PartialEq)]
pub struct RefineRequest {
    /// The log excerpt the classifier read (at most the intake's cap).
    pub log_excerpt: String,
    /// The classifier's answer on it.
    pub rules: Classification,
}

/// Refines a CI classification.
#[async_trait]
pub trait CiRefiner: Send + Sync + fmt::Debug {
    /// The refiner's name for reports (`minimax`, `fake`).
    fn refiner(&self) -> &'static str;

    /// One proposal for `request`.
    ///
    /// # Errors
    ///
    /// An [`AdapterError`] when the model cannot be asked, refuses, or answers something that is not a proposal.
    async fn refine(&self, request: &RefineRequest) -> Result<Proposal, AdapterError>;
}
