//! [`FakeCopilot`]: scripted copilot replies, defaulting to the grounded copilot's answer.

use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;

use super::pause;
use super::script::{Script, scripted_methods};
use crate::embedded::GroundedCopilot;
use crate::error::AdapterError;
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

    /// Makes the fake say that its answers come from a language model ([`Copilot::answers_with_model`]), as a
    /// model copilot would: the server then applies the model's side of the safety rule to its scripted replies.
    pub fn set_answers_with_model(&self, model: bool) {
        self.model.store(model, Ordering::Relaxed);
    }
}

scripted_methods!(
    FakeCopilot,
    "call",
    (String, CopilotState),
    "Every question so far, with the state it was asked in."
);

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
