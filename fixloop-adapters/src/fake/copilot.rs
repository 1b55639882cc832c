//! [`FakeCopilot`]: scripted copilot replies, defaulting to the grounded copilot's answer.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use super::{injected, lock, pause};
use crate::embedded::GroundedCopilot;
use crate::error::{AdapterError, ErrorKind};
use crate::ports::{Copilot, CopilotReply, CopilotState};

/// A scriptable [`Copilot`]. With an empty queue and no failure set, it answers like [`GroundedCopilot`].
#[derive(Debug, Default)]
pub struct FakeCopilot {
    script: Mutex<Script>,
}

#[derive(Debug, Default)]
struct Script {
    queue: VecDeque<Result<CopilotReply, AdapterError>>,
    failure: Option<ErrorKind>,
    delay: Duration,
    calls: Vec<(String, CopilotState)>,
}

impl FakeCopilot {
    /// A copilot that answers like the grounded copilot.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues a reply (returned as is).
    pub fn push_reply(&self, reply: CopilotReply) {
        lock(&self.script).queue.push_back(Ok(reply));
    }

    /// Queues one failure.
    pub fn push_error(&self, error: AdapterError) {
        lock(&self.script).queue.push_back(Err(error));
    }

    /// Makes every call (once the queue is empty) fail with `kind`, or stops failing with `None`.
    pub fn set_failure(&self, kind: Option<ErrorKind>) {
        lock(&self.script).failure = kind;
    }

    /// Delays every call by `delay` (tokio clock).
    pub fn set_delay(&self, delay: Duration) {
        lock(&self.script).delay = delay;
    }

    /// Every question so far, with the state it was asked in.
    #[must_use]
    pub fn calls(&self) -> Vec<(String, CopilotState)> {
        lock(&self.script).calls.clone()
    }
}

#[async_trait]
impl Copilot for FakeCopilot {
    async fn answer(
        &self,
        question: &str,
        state: &CopilotState,
    ) -> Result<CopilotReply, AdapterError> {
        let (scripted, delay) = {
            let mut script = lock(&self.script);
            script.calls.push((question.to_owned(), state.clone()));
            let scripted = match script.queue.pop_front() {
                Some(answer) => Some(answer),
                None => script.failure.map(|kind| Err(injected(kind))),
            };
            (scripted, script.delay)
        };
        pause(delay).await;
        match scripted {
            Some(answer) => answer,
            None => GroundedCopilot.answer(question, state).await,
        }
    }
}
