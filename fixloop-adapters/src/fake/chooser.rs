//! [`FakeRemediationChooser`]: scripted picks (failures, delays), with every request recorded.

use std::time::Duration;

use async_trait::async_trait;

use super::pause;
use super::script::Script;
use crate::chooser::{ChoiceAnswer, ChoiceRequest, RemediationChooser};
use crate::error::{AdapterError, ErrorKind};

/// A scriptable [`RemediationChooser`].
///
/// A pick answers, in this order: the next queued answer ([`push_choice`](Self::push_choice),
/// [`push_error`](Self::push_error)), else the sticky failure ([`set_failure`](Self::set_failure)), else the
/// first candidate (the rules' own pick). Every call is delayed by [`set_delay`](Self::set_delay) on the tokio
/// clock and recorded ([`calls`](Self::calls)).
#[derive(Debug)]
pub struct FakeRemediationChooser {
    script: Script<ChoiceAnswer, ChoiceRequest>,
}

impl Default for FakeRemediationChooser {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeRemediationChooser {
    /// A chooser that agrees with the rules until told otherwise.
    #[must_use]
    pub fn new() -> Self {
        Self {
            script: Script::new(()),
        }
    }

    /// Queues one pick of `action`, with `reason`.
    pub fn push_choice(&self, action: &str, reason: &str) {
        self.script.push(Ok(ChoiceAnswer {
            action: action.to_owned(),
            reason: reason.to_owned(),
        }));
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
    pub fn calls(&self) -> Vec<ChoiceRequest> {
        self.script.calls()
    }
}

#[async_trait]
impl RemediationChooser for FakeRemediationChooser {
    fn chooser(&self) -> &'static str {
        "fake"
    }

    async fn choose(&self, request: &ChoiceRequest) -> Result<ChoiceAnswer, AdapterError> {
        let turn = self.script.turn(request.clone());
        pause(turn.delay).await;
        turn.answer.unwrap_or_else(|| {
            request
                .candidates
                .first()
                .map(|candidate| ChoiceAnswer {
                    action: candidate.action_id.clone(),
                    reason: "the rules' own pick".to_owned(),
                })
                .ok_or_else(|| AdapterError::invalid_response("fake: no candidate to pick"))
        })
    }
}
