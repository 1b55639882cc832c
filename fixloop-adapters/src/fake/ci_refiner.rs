//! [`FakeCiRefiner`]: scripted refinement proposals (failures, delays), with every request recorded.

use std::time::Duration;

use async_trait::async_trait;

use super::pause;
use super::script::Script;
use crate::ci_refiner::{CiRefiner, Proposal, RefineRequest};
use crate::error::{AdapterError, ErrorKind};

/// A scriptable [`CiRefiner`].
///
/// A refinement answers, in this order: the next queued answer ([`push_proposal`](Self::push_proposal),
/// [`push_error`](Self::push_error)), else the sticky failure ([`set_failure`](Self::set_failure)), else the
/// classifier's own answer as a proposal (agreeing). Every call is delayed by [`set_delay`](Self::set_delay) on
/// the tokio clock and recorded ([`calls`](Self::calls)).
#[derive(Debug)]
pub struct FakeCiRefiner {
    script: Script<Proposal, RefineRequest>,
}

impl Default for FakeCiRefiner {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeCiRefiner {
    /// A refiner that agrees with the classifier until told otherwise.
    #[must_use]
    pub fn new() -> Self {
        Self {
            script: Script::new(()),
        }
    }

    /// Queues one proposal.
    pub fn push_proposal(&self, proposal: Proposal) {
        self.script.push(Ok(proposal));
    }

    /// Queues one failure.
    pub fn push_error(&self, error: AdapterError) {
        self.script.push(Err(error));
    }

    /// Makes every call (once the queue is empty) fail with `kind`, or stops failing with `None`.
    pub fn set_failure(&self, kind: Option<ErrorKind>) {
        self.script.set_failure(kind);
    }

    /// Delays every call by `delay` (tokio clock).
    pub fn set_delay(&self, delay: Duration) {
        self.script.set_delay(delay);
    }

    /// Every request, in order.
    #[must_use]
    pub fn calls(&self) -> Vec<RefineRequest> {
        self.script.calls()
    }
}

#[async_trait]
impl CiRefiner for FakeCiRefiner {
    fn refiner(&self) -> &'static str {
        "fake"
    }

    async fn refine(&self, request: &RefineRequest) -> Result<Proposal, AdapterError> {
        let turn = self.script.turn(request.clone());
        pause(turn.delay).await;
        turn.answer.unwrap_or_else(|| {
            Ok(Proposal {
                class: request.rules.class.as_str().to_owned(),
                confidence: request.rules.confidence,
                evidence: request
                    .rules
                    .evidence
                    .iter()
                    .map(|evidence| evidence.text.clone())
                    .collect(),
            })
        })
    }
}
