//! [`FakeCopilot`]: scripted copilot replies, defaulting to the grounded copilot's answer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use super::pause;
use super::script::Script;
use crate::embedded::GroundedCopilot;
use crate::error::{AdapterError, ErrorKind};
use crate::ports::{Copilot, CopilotLookup, CopilotReply, CopilotState};

/// A scriptable [`Copilot`]. With an empty queue and no failure set, it answers like [`GroundedCopilot`].
#[derive(Debug, Default)]
pub struct FakeCopilot {
    script: Script<CopilotReply, (String, CopilotState)>,
    model: AtomicBool,
}

impl FakeCopilot {
    /// A copilot that answers like the grounded copilot.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues a reply (returned as is).
    pub fn push_reply(&self, reply: CopilotReply) {
        self.script.push(Ok(reply));
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

    /// Makes the fake say that its answers come from a language model ([`Copilot::answers_with_model`]), as a
    /// model copilot would: the server then applies the model's side of the safety rule to its scripted replies.
    pub fn set_answers_with_model(&self, model: bool) {
        self.model.store(model, Ordering::Relaxed);
    }

    /// Every question so far, with the state it was asked in.
    #[must_use]
    pub fn calls(&self) -> Vec<(String, CopilotState)> {
        self.script.calls()
    }
}

#[async_trait]
impl Copilot for FakeCopilot {
    fn answers_with_model(&self) -> bool {
        self.model.load(Ordering::Relaxed)
    }

    async fn answer(
        &self,
        question: &str,
        state: &CopilotState,
        lookup: &dyn CopilotLookup,
    ) -> Result<CopilotReply, AdapterError> {
        let turn = self.script.turn((question.to_owned(), state.clone()));
        pause(turn.delay).await;
        match turn.answer {
            Some(answer) => answer,
            None => GroundedCopilot.answer(question, state, lookup).await,
        }
    }
}
